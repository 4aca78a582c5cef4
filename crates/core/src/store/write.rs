//! The writer's connection: migrations and every write, each in one IMMEDIATE transaction.

use super::*;

/// The state database, opened for writing by the one writer of a data directory.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl StoreRead for Store {
    fn conn(&self) -> &Connection {
        &self.conn
    }
}

impl Store {
    /// Opens (creating and migrating) `dir/helpdex.sqlite3`. Only the writer of a data
    /// directory calls this (it holds the data-directory lock).
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        persist_wal(&conn);
        // FULL: with WAL, NORMAL may lose the last commits on power loss, and the index must
        // never be ahead of SQLite.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn, &path)?;
        Ok(Store { conn, path })
    }

    /// Database file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Registers a source (idempotent), keeping its cursor.
    pub fn ensure_source(&self, name: &str, base_url: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sources(name, base_url) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET base_url = excluded.base_url",
            params![name, base_url],
        )?;
        Ok(())
    }

    /// Records the start of a run.
    pub fn mark_started(&self, name: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE sources SET last_started_at = ?2 WHERE name = ?1",
            params![name, now_iso()],
        )?;
        Ok(())
    }

    /// Records the end of a run.
    pub fn mark_finished(
        &self,
        name: &str,
        error: Option<&str>,
        report: &serde_json::Value,
        full_sweep_at: Option<i64>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE sources SET last_finished_at = ?2, last_result = ?3, last_error = ?4,
                 last_report = ?5, syncs = syncs + (?3 = 'ok'),
                 last_full_sweep = COALESCE(?6, last_full_sweep)
             WHERE name = ?1",
            params![
                name,
                now_iso(),
                if error.is_some() { "error" } else { "ok" },
                error,
                report.to_string(),
                full_sweep_at
            ],
        )?;
        Ok(())
    }

    /// Saves the user segment list (`None` = unreadable), the help center state, the brand and
    /// the hosts citations may point at.
    pub fn save_user_segments(
        &mut self,
        source: &str,
        segments: Option<&[UserSegment]>,
        help_center_state: Option<&str>,
        brand: Option<&str>,
        hosts: &[String],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE sources SET segments_readable = ?2, help_center_state = ?3, brand = COALESCE(?4, brand),
                 hosts = ?5 WHERE name = ?1",
            params![source, segments.is_some() as i64, help_center_state, brand, json(&hosts)],
        )?;
        if let Some(segs) = segments {
            tx.execute("DELETE FROM user_segments WHERE source = ?1", [source])?;
            for s in segs {
                tx.execute(
                    "INSERT OR REPLACE INTO user_segments(source, id, name, user_type, built_in) VALUES (?1,?2,?3,?4,?5)",
                    params![source, s.id as i64, s.name, s.user_type, s.built_in],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces the section and category names of a source.
    pub fn save_structure(
        &mut self,
        source: &str,
        sections: &[SectionRow],
        categories: &[CategoryRow],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM sections WHERE source = ?1", [source])?;
        tx.execute("DELETE FROM categories WHERE source = ?1", [source])?;
        for x in sections {
            tx.execute(
                "INSERT OR REPLACE INTO sections(source, id, name, category_id, html_url) VALUES (?1,?2,?3,?4,?5)",
                params![source, x.id as i64, x.name, x.category_id.map(|c| c as i64), x.html_url],
            )?;
        }
        for x in categories {
            tx.execute(
                "INSERT OR REPLACE INTO categories(source, id, name, html_url) VALUES (?1,?2,?3,?4)",
                params![source, x.id as i64, x.name, x.html_url],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Applies one batch in a single transaction and returns the last change seq it wrote.
    pub fn apply(&mut self, source: &str, b: &Batch) -> Result<i64> {
        let now = now_iso();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in &b.delete_articles {
            tx.execute(
                "DELETE FROM articles WHERE source = ?1 AND article_id = ?2",
                params![source, *id as i64],
            )?;
        }
        for a in &b.articles {
            tx.execute(
                "INSERT INTO articles(source, article_id, section_id, source_locale, segment_ids, labels,
                     visibility, access, visibility_rule, updated_at, synced_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
                 ON CONFLICT(source, article_id) DO UPDATE SET
                     section_id = excluded.section_id, source_locale = excluded.source_locale,
                     segment_ids = excluded.segment_ids, labels = excluded.labels,
                     visibility = excluded.visibility, access = excluded.access,
                     visibility_rule = excluded.visibility_rule, updated_at = excluded.updated_at,
                     synced_at = excluded.synced_at",
                params![
                    source,
                    a.article_id as i64,
                    a.section_id.map(|s| s as i64),
                    a.source_locale,
                    json(&a.segment_ids),
                    json(&a.labels),
                    a.visibility,
                    json(&a.access),
                    a.visibility_rule,
                    a.updated_at,
                    now
                ],
            )?;
        }
        for (id, locale) in &b.delete_translations {
            tx.execute(
                "DELETE FROM translations WHERE source = ?1 AND article_id = ?2 AND locale = ?3",
                params![source, *id as i64, locale],
            )?;
        }
        for t in &b.translations {
            let id = t.article_id as i64;
            tx.execute(
                "DELETE FROM translations WHERE source = ?1 AND article_id = ?2 AND locale = ?3",
                params![source, id, t.locale],
            )?;
            tx.execute(
                "INSERT INTO translations(source, article_id, locale, title, html_url, draft, outdated,
                     updated_at, body, normalizer_version, content_hash, index_hash, synced_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                params![
                    source,
                    id,
                    t.locale,
                    t.title,
                    t.html_url,
                    t.draft,
                    t.outdated,
                    t.updated_at,
                    t.body,
                    t.normalizer,
                    t.normalized.content_hash,
                    t.index_hash,
                    now
                ],
            )?;
            let mut seg = tx.prepare_cached(
                "INSERT INTO passages(source, article_id, locale, ordinal, heading_path, anchor, text, hash)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            )?;
            for s in &t.normalized.passages {
                seg.execute(params![
                    source,
                    id,
                    t.locale,
                    s.ordinal,
                    json(&s.heading_path),
                    s.anchor,
                    s.text,
                    s.hash
                ])?;
            }
            let mut link = tx.prepare_cached(
                "INSERT INTO links(source, article_id, locale, target_id, target_locale, text)
                 VALUES (?1,?2,?3,?4,?5,?6)",
            )?;
            for l in &t.normalized.links {
                link.execute(params![
                    source,
                    id,
                    t.locale,
                    l.article_id as i64,
                    l.locale,
                    l.text
                ])?;
            }
        }
        let mut last = 0;
        for key in &b.changed {
            tx.execute("INSERT INTO changes(doc_key) VALUES (?1)", [key])?;
            last = tx.last_insert_rowid();
        }
        if let Some(c) = b.cursor {
            // Never backwards, and never beyond now: a far-future cursor (written by a hostile
            // `end_time`) would hide every later edit, so one found in the future is replaced.
            let now = chrono::Utc::now().timestamp();
            tx.execute(
                "UPDATE sources SET cursor = MIN(CASE WHEN cursor > ?3 THEN ?2 ELSE MAX(cursor, ?2) END, ?3)
                 WHERE name = ?1",
                params![source, c, now],
            )?;
        }
        tx.commit()?;
        Ok(last)
    }

    /// Records the records a sync refused: `replace` (a complete pass over the help center)
    /// forgets those no longer refused; otherwise the new ones are added.
    pub fn save_quarantine(
        &mut self,
        source: &str,
        records: &[Quarantined],
        replace: bool,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if replace {
            tx.execute("DELETE FROM quarantine WHERE source = ?1", [source])?;
        }
        let now = now_iso();
        for q in records {
            tx.execute(
                "INSERT INTO quarantine(source, record, reason, seen_at) VALUES (?1,?2,?3,?4)
                 ON CONFLICT(source, record) DO UPDATE SET reason = excluded.reason, seen_at = excluded.seen_at",
                params![source, q.record, q.reason, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops change rows the index has applied.
    pub fn prune_changes(&self, upto: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM changes WHERE seq <= ?1", [upto])?;
        Ok(())
    }

    /// Points at a new live generation (the atomic swap of a rebuild).
    pub fn set_index_state(&self, generation: &str, schema_version: u32) -> Result<()> {
        self.conn.execute(
            "INSERT INTO index_state(id, generation, schema_version) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET generation = excluded.generation,
                 schema_version = excluded.schema_version",
            params![generation, schema_version],
        )?;
        Ok(())
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > MIGRATIONS.len() as i64 {
        return Err(StoreError::FromTheFuture {
            path: path.to_path_buf(),
            found: current,
            supported: MIGRATIONS.len() as i64,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

/// Keeps `-wal` and `-shm` on disk when the last connection closes, so a read-only reader can
/// always open the database (SQLite cannot create them without write access).
fn persist_wal(conn: &Connection) {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: `conn.handle()` is a live connection for the duration of the call, the schema
    // name is a NUL-terminated literal, and SQLITE_FCNTL_PERSIST_WAL takes a pointer to an int.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        tracing::warn!(
            rc,
            "could not keep the WAL files on close; read-only readers may need write access"
        );
    }
}
