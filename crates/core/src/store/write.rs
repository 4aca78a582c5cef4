//! The writer's connection: migrations and every write, each in one IMMEDIATE transaction.

use super::*;

/// A passage waiting for its vector: (embed key, article title, passage text).
pub type PendingPassage = (i64, String, String);

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
        fill_embed_keys(&mut conn)?;
        Ok(Store { conn, path })
    }

    /// Vectors of passages pending for `model`: passages after `after` (a `passages` rowid),
    /// in rowid order, whose input has no vector of `model` yet. Returns the last rowid
    /// looked at and the (key, title, text) to embed, distinct keys only.
    pub fn pending_vectors(
        &self,
        model: &str,
        after: i64,
        limit: usize,
    ) -> Result<(i64, Vec<PendingPassage>)> {
        let mut st = self.conn.prepare_cached(
            "SELECT p.rowid, p.embed_key, t.title, p.text,
                    EXISTS (SELECT 1 FROM vectors v WHERE v.model = ?1 AND v.key = p.embed_key)
             FROM passages p
             JOIN translations t USING (source, article_id, locale)
             WHERE p.rowid > ?2 AND p.embed_key IS NOT NULL
             ORDER BY p.rowid LIMIT ?3",
        )?;
        let mut last = after;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut rows = st.query(params![model, after, limit as i64])?;
        while let Some(r) = rows.next()? {
            last = r.get(0)?;
            let key: i64 = r.get(1)?;
            let done: bool = r.get(4)?;
            if !done && seen.insert(key) {
                out.push((key, r.get(2)?, r.get(3)?));
            }
        }
        Ok((last, out))
    }

    /// Records the model the writer embeds with.
    pub fn set_vector_model(&self, model: &str) -> Result<()> {
        self.conn
            .execute("UPDATE vector_state SET model = ?1 WHERE id = 1", [model])?;
        Ok(())
    }

    /// Highest passage rowid (new passages always get a higher one).
    pub fn last_passage_rowid(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(rowid), 0) FROM passages", [], |r| {
                r.get(0)
            })?)
    }

    /// Stores vectors of `model` in one transaction (an input already embedded is kept).
    pub fn put_vectors(&mut self, model: &str, vectors: &[(i64, Vec<f32>)]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO vectors (model, key, vector) VALUES (?1, ?2, ?3)",
            )?;
            for (key, v) in vectors {
                st.execute(params![model, key, crate::vectors::to_blob(v)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes vectors nothing reads any more: those of other models, and those of `model`
    /// whose input no passage has now. Readers reload when anything went.
    pub fn prune_vectors(&mut self, model: &str) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = tx.execute("DELETE FROM vectors WHERE model <> ?1", [model])?;
        n += tx.execute(
            "DELETE FROM vectors WHERE model = ?1
               AND NOT EXISTS (SELECT 1 FROM passages p WHERE p.embed_key = vectors.key)",
            [model],
        )?;
        if n > 0 {
            tx.execute("UPDATE vector_state SET epoch = epoch + 1 WHERE id = 1", [])?;
        }
        tx.commit()?;
        Ok(n)
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
        // New passages get rowids above every one ever given (see `vector_state`).
        let mut next_rowid: i64 = tx.query_row(
            "SELECT max(passage_hwm, (SELECT coalesce(max(rowid), 0) FROM passages))
             FROM vector_state WHERE id = 1",
            [],
            |r| r.get(0),
        )?;
        let first_rowid = next_rowid;
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
                "INSERT INTO passages(rowid, source, article_id, locale, ordinal, heading_path, anchor, text, hash, embed_key)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
            )?;
            for s in &t.normalized.passages {
                next_rowid += 1;
                seg.execute(params![
                    next_rowid,
                    source,
                    id,
                    t.locale,
                    s.ordinal,
                    json(&s.heading_path),
                    s.anchor,
                    s.text,
                    s.hash,
                    crate::vectors::embed_key(&t.title, &s.text)
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
        if next_rowid > first_rowid {
            tx.execute(
                "UPDATE vector_state SET passage_hwm = ?1 WHERE id = 1",
                [next_rowid],
            )?;
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

/// Fills `passages.embed_key` of rows written before it existed (migration 5), in one
/// transaction; a no-op afterwards.
fn fill_embed_keys(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let todo: Vec<(i64, String, String)> = {
        let mut st = tx.prepare(
            "SELECT p.rowid, t.title, p.text FROM passages p
             JOIN translations t USING (source, article_id, locale)
             WHERE p.embed_key IS NULL",
        )?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    {
        let mut up = tx.prepare("UPDATE passages SET embed_key = ?2 WHERE rowid = ?1")?;
        for (rowid, title, text) in &todo {
            up.execute(params![rowid, crate::vectors::embed_key(title, text)])?;
        }
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
