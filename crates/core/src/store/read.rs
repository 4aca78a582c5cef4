//! Read queries, valid on any connection: the writer's own, or a reader's read-only one.
//!
//! Readers ([`ReadStore`]) open SQLite read-only, never migrate and never write, so a process
//! that only answers questions needs no write access to the data directory (see
//! `ARCHITECTURE.md`, one writer and live readers).

use super::*;

/// The read queries of the state database, shared by the writer ([`Store`]) and readers
/// ([`ReadStore`]).
pub trait StoreRead {
    /// The connection the queries run on.
    fn conn(&self) -> &Connection;

    /// State of a source.
    fn source(&self, name: &str) -> Result<Option<SourceState>> {
        self.conn()
            .query_row(
                "SELECT name, base_url, cursor, segments_readable, help_center_state, syncs,
                        last_full_sweep, last_started_at, last_finished_at, last_result, last_error,
                        last_report, hosts
                 FROM sources WHERE name = ?1",
                [name],
                |r| {
                    Ok(SourceState {
                        name: r.get(0)?,
                        base_url: r.get(1)?,
                        cursor: r.get(2)?,
                        segments_readable: r.get::<_, Option<i64>>(3)?.map(|v| v != 0),
                        help_center_state: r.get(4)?,
                        syncs: r.get(5)?,
                        last_full_sweep: r.get(6)?,
                        last_started_at: r.get(7)?,
                        last_finished_at: r.get(8)?,
                        last_result: r.get(9)?,
                        last_error: r.get(10)?,
                        last_report: r
                            .get::<_, Option<String>>(11)?
                            .and_then(|s| serde_json::from_str(&s).ok()),
                        hosts: r
                            .get::<_, Option<String>>(12)?
                            .map(|s| from_json(&s))
                            .unwrap_or_default(),
                        quarantined: Vec::new(),
                    })
                },
            )
            .optional()?
            .map(|mut s| {
                s.quarantined = self.quarantined(name)?;
                Ok::<_, StoreError>(s)
            })
            .transpose()
    }

    /// Records the last syncs refused, by record.
    fn quarantined(&self, source: &str) -> Result<Vec<Quarantined>> {
        let mut st = self.conn().prepare_cached(
            "SELECT record, reason FROM quarantine WHERE source = ?1 ORDER BY record",
        )?;
        let rows = st.query_map([source], |r| {
            Ok(Quarantined {
                record: r.get(0)?,
                reason: r.get(1)?,
            })
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// An article's own row (no translations), for the cheap change test of a sync.
    fn article_head(&self, source: &str, id: u64) -> Result<Option<ArticleHead>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT updated_at, visibility, access FROM articles WHERE source = ?1 AND article_id = ?2",
            )?
            .query_row(params![source, id as i64], |r| {
                Ok(ArticleHead {
                    updated_at: r.get(0)?,
                    visibility: r.get(1)?,
                    access: from_json(&r.get::<_, String>(2)?),
                })
            })
            .optional()?)
    }

    /// How many articles of a source have another source locale than `locale`.
    fn articles_not_in(&self, source: &str, locale: &str) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM articles WHERE source = ?1 AND source_locale != ?2",
            params![source, locale],
            |r| r.get(0),
        )?)
    }

    /// All sources.
    fn sources(&self) -> Result<Vec<SourceState>> {
        let names: Vec<String> = self
            .conn()
            .prepare("SELECT name FROM sources ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        let mut out = Vec::new();
        for n in names {
            if let Some(s) = self.source(&n)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// User segments as last read, `None` when they were not readable.
    fn user_segments(&self, source: &str) -> Result<Option<HashMap<u64, UserSegment>>> {
        let readable: Option<Option<i64>> = self
            .conn()
            .query_row(
                "SELECT segments_readable FROM sources WHERE name = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()?;
        if readable.flatten() != Some(1) {
            return Ok(None);
        }
        let mut st = self
            .conn()
            .prepare("SELECT id, name, user_type, built_in FROM user_segments WHERE source = ?1")?;
        let rows = st.query_map([source], |r| {
            Ok(UserSegment {
                id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                user_type: r.get(2)?,
                built_in: r.get(3)?,
            })
        })?;
        let mut m = HashMap::new();
        for s in rows {
            let s = s?;
            m.insert(s.id, s);
        }
        Ok(Some(m))
    }

    /// Section name by id.
    fn section_names(&self, source: &str) -> Result<HashMap<u64, String>> {
        let mut st = self
            .conn()
            .prepare("SELECT id, name FROM sections WHERE source = ?1")?;
        let rows = st.query_map([source], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// What is stored of one article, for change detection.
    fn article(&self, source: &str, id: u64) -> Result<Option<StoredArticle>> {
        let head: Option<(Option<String>, Visibility)> = self
            .conn()
            .prepare_cached(
                "SELECT updated_at, visibility FROM articles WHERE source = ?1 AND article_id = ?2",
            )?
            .query_row(params![source, id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((updated_at, visibility)) = head else {
            return Ok(None);
        };
        let mut st = self.conn().prepare_cached(
            "SELECT locale, content_hash, index_hash, draft, normalizer_version FROM translations
             WHERE source = ?1 AND article_id = ?2",
        )?;
        let rows = st.query_map(params![source, id as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                StoredTranslation {
                    content_hash: r.get(1)?,
                    index_hash: r.get(2)?,
                    draft: r.get(3)?,
                    normalizer_version: r.get(4)?,
                },
            ))
        })?;
        let translations = rows.collect::<std::result::Result<_, _>>()?;
        Ok(Some(StoredArticle {
            updated_at,
            visibility,
            translations,
        }))
    }

    /// Every stored article id of a source.
    fn article_ids(&self, source: &str) -> Result<Vec<u64>> {
        let mut st = self
            .conn()
            .prepare("SELECT article_id FROM articles WHERE source = ?1 ORDER BY article_id")?;
        let rows = st.query_map([source], |r| Ok(r.get::<_, i64>(0)? as u64))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Highest change seq ever written (survives pruning).
    fn high_water(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Changed doc keys after `seq`, deduplicated, with the highest seq seen.
    fn changes_after(&self, seq: i64) -> Result<(Vec<String>, i64)> {
        let mut st = self
            .conn()
            .prepare("SELECT seq, doc_key FROM changes WHERE seq > ?1 ORDER BY seq")?;
        let rows = st.query_map([seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut keys = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut max = seq;
        for r in rows {
            let (s, k) = r?;
            max = max.max(s);
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
        Ok((keys, max))
    }

    /// Every doc key that should be in the index (published translations).
    fn all_doc_keys(&self) -> Result<Vec<String>> {
        let mut st = self.conn().prepare(
            "SELECT source, article_id, locale FROM translations WHERE draft = 0
             ORDER BY source, article_id, locale",
        )?;
        let rows = st.query_map([], |r| {
            Ok(crate::model::doc_key(
                &r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                &r.get::<_, String>(2)?,
            ))
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// The indexed form of a translation; `None` when it is gone or a draft.
    fn index_doc(&self, key: &str) -> Result<Option<IndexDoc>> {
        let mut parts = key.rsplitn(3, '/');
        let (Some(locale), Some(id), Some(source)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let Ok(id) = id.parse::<u64>() else {
            return Ok(None);
        };
        let doc = self
            .conn()
            .prepare_cached(
                "SELECT t.title, t.html_url, a.access, a.visibility, a.section_id, s.name, a.labels,
                        t.content_hash, COALESCE(t.updated_at, ''), t.outdated, t.draft, src.brand,
                        a.source_locale
                 FROM translations t JOIN articles a USING (source, article_id)
                 LEFT JOIN sections s ON s.source = a.source AND s.id = a.section_id
                 LEFT JOIN sources src ON src.name = a.source
                 WHERE t.source = ?1 AND t.article_id = ?2 AND t.locale = ?3",
            )?
            .query_row(params![source, id as i64, locale], |r| {
                let draft: bool = r.get(10)?;
                Ok((!draft).then_some(IndexDoc {
                    source: source.to_string(),
                    article_id: id,
                    locale: locale.to_string(),
                    source_locale: r.get(12)?,
                    title: r.get(0)?,
                    html_url: Some(r.get::<_, String>(1)?)
                        .filter(|u| is_web_url(u))
                        .unwrap_or_default(),
                    access: from_json(&r.get::<_, String>(2)?),
                    visibility: r.get(3)?,
                    section_id: r.get::<_, Option<i64>>(4)?.map(|s| s as u64),
                    section: r.get(5)?,
                    labels: from_json(&r.get::<_, String>(6)?),
                    content_hash: r.get(7)?,
                    updated_at: r.get(8)?,
                    outdated: r.get(9)?,
                    brand: r.get(11)?,
                    passages: Vec::new(),
                }))
            })
            .optional()?
            .flatten();
        let Some(mut doc) = doc else {
            return Ok(None);
        };
        doc.passages = self.passages_of(source, id, locale)?;
        Ok(Some(doc))
    }

    /// Stored passages of one translation, in order.
    fn passages_of(&self, source: &str, id: u64, locale: &str) -> Result<Vec<Passage>> {
        let mut st = self.conn().prepare_cached(
            "SELECT ordinal, heading_path, anchor, text, hash FROM passages
             WHERE source = ?1 AND article_id = ?2 AND locale = ?3 ORDER BY ordinal",
        )?;
        let rows = st.query_map(params![source, id as i64, locale], |r| {
            Ok(Passage {
                ordinal: r.get(0)?,
                heading_path: from_json(&r.get::<_, String>(1)?),
                // The sync stores anchors encoded; encoding is idempotent, so rows written by
                // older versions are made safe here too.
                anchor: r.get::<_, Option<String>>(2)?.map(|a| encode_fragment(&a)),
                text: r.get(3)?,
                hash: r.get(4)?,
            })
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// The live index generation and its schema version.
    fn index_state(&self) -> Result<Option<IndexState>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT generation, schema_version FROM index_state WHERE id = 1",
                [],
                |r| {
                    Ok(IndexState {
                        generation: r.get(0)?,
                        schema_version: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Translations normalized by another normalizer version or other options.
    fn stale_normalized(&self, source: &str, fingerprint: u32) -> Result<Vec<(u64, String)>> {
        let mut st = self.conn().prepare(
            "SELECT article_id, locale FROM translations WHERE source = ?1 AND normalizer_version != ?2",
        )?;
        let rows = st.query_map(params![source, fingerprint], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// The raw HTML body of one stored translation (`None` when it has none or is not stored).
    fn translation_body(&self, source: &str, id: u64, locale: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT body FROM translations WHERE source = ?1 AND article_id = ?2 AND locale = ?3",
            )?
            .query_row(params![source, id as i64, locale], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Stored article metadata row.
    fn article_row(&self, source: &str, id: u64) -> Result<Option<ArticleRow>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT article_id, section_id, source_locale, segment_ids, labels, visibility, access,
                        visibility_rule, updated_at
                 FROM articles WHERE source = ?1 AND article_id = ?2",
            )?
            .query_row(params![source, id as i64], article_row)
            .optional()?)
    }

    /// Every stored article row of a source, in id order (one scan instead of one query per
    /// article).
    fn article_rows(&self, source: &str) -> Result<Vec<ArticleRow>> {
        let mut st = self.conn().prepare(
            "SELECT article_id, section_id, source_locale, segment_ids, labels, visibility, access,
                    visibility_rule, updated_at
             FROM articles WHERE source = ?1 ORDER BY article_id",
        )?;
        let rows = st.query_map([source], article_row)?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Every stored (article id, locale) of a source.
    fn translation_keys(&self, source: &str) -> Result<Vec<(u64, String)>> {
        let mut st = self.conn().prepare(
            "SELECT article_id, locale FROM translations WHERE source = ?1 ORDER BY article_id, locale",
        )?;
        let rows = st.query_map([source], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Sources holding an article id.
    fn sources_of(&self, id: u64) -> Result<Vec<String>> {
        let mut st = self
            .conn()
            .prepare("SELECT source FROM articles WHERE article_id = ?1 ORDER BY source")?;
        let rows = st.query_map([id as i64], |r| r.get(0))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Every stored translation of an article, by locale (bodies are read separately, with
    /// [`StoreRead::translation_body`]).
    fn translations_of(&self, source: &str, id: u64) -> Result<Vec<TranslationRecord>> {
        let mut st = self.conn().prepare_cached(
            "SELECT locale, title, html_url, draft, outdated, content_hash, index_hash, synced_at, updated_at
             FROM translations WHERE source = ?1 AND article_id = ?2 ORDER BY locale",
        )?;
        let rows = st.query_map(params![source, id as i64], |r| {
            Ok(TranslationRecord {
                locale: r.get(0)?,
                title: r.get(1)?,
                html_url: r.get(2)?,
                draft: r.get(3)?,
                outdated: r.get(4)?,
                content_hash: r.get(5)?,
                index_hash: r.get(6)?,
                synced_at: r.get(7)?,
                updated_at: r.get(8)?,
            })
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Counts of published translations by (visibility, locale).
    fn counts(&self, source: Option<&str>) -> Result<Vec<Count>> {
        let mut st = self.conn().prepare(
            "SELECT a.visibility, t.locale, COUNT(*) FROM translations t JOIN articles a USING (source, article_id)
             WHERE t.draft = 0 AND (?1 IS NULL OR t.source = ?1)
             GROUP BY a.visibility, t.locale ORDER BY 1, 2",
        )?;
        let rows = st.query_map([source], |r| {
            Ok(Count {
                visibility: r.get(0)?,
                locale: r.get(1)?,
                translations: r.get(2)?,
            })
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Articles with at least one published translation, by visibility (metrics count
    /// articles, not translations).
    fn article_counts(&self) -> Result<Vec<(Visibility, i64)>> {
        let mut st = self.conn().prepare(
            "SELECT a.visibility, COUNT(*) FROM articles a
             WHERE EXISTS (SELECT 1 FROM translations t
                           WHERE t.source = a.source AND t.article_id = a.article_id AND t.draft = 0)
             GROUP BY a.visibility ORDER BY 1",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// A canonical dump of the content state, for tests comparing two stores.
    fn dump(&self) -> Result<Vec<String>> {
        let mut st = self.conn().prepare(
            "SELECT t.source || '/' || t.article_id || '/' || t.locale || ' ' || a.visibility || ' ' ||
                    t.draft || ' ' || t.content_hash || ' ' || t.index_hash
             FROM translations t JOIN articles a USING (source, article_id) ORDER BY 1",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }
    /// The vector deletion counter (readers reload everything when it moves).
    fn vectors_epoch(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT epoch FROM vector_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    /// Vectors of `model` stored after `after` (a `vectors.id`), in id order: `each(id, key,
    /// blob)` with the blob read in place (little-endian f32, [`crate::vectors::to_blob`]), so
    /// loading 100,000 vectors allocates nothing per vector. The caller skips torn blobs (their
    /// input stays pending, so they are re-embedded).
    fn vectors_after(
        &self,
        model: &str,
        after: i64,
        each: &mut dyn FnMut(i64, i64, &[u8]),
    ) -> Result<()> {
        let mut st = self.conn().prepare_cached(
            "SELECT id, key, vector FROM vectors WHERE model = ?1 AND id > ?2 ORDER BY id",
        )?;
        let mut rows = st.query(params![model, after])?;
        while let Some(r) = rows.next()? {
            let blob = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            each(r.get(0)?, r.get(1)?, blob);
        }
        Ok(())
    }

    /// The model the writer last embedded with.
    fn vector_model(&self) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT model FROM vector_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?
            .flatten())
    }

    /// How many passages have a vector of `model`.
    fn vector_coverage(&self, model: &str) -> Result<crate::vectors::Coverage> {
        let (passages, embedded): (i64, i64) = self.conn().query_row(
            "SELECT count(*),
                    count(*) FILTER (WHERE EXISTS
                        (SELECT 1 FROM vectors v WHERE v.model = ?1 AND v.key = p.embed_key))
             FROM passages p",
            [model],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(crate::vectors::Coverage {
            passages: passages as u64,
            embedded: embedded as u64,
        })
    }
}

fn article_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArticleRow> {
    Ok(ArticleRow {
        article_id: r.get::<_, i64>(0)? as u64,
        section_id: r.get::<_, Option<i64>>(1)?.map(|s| s as u64),
        source_locale: r.get(2)?,
        segment_ids: from_json(&r.get::<_, String>(3)?),
        labels: from_json(&r.get::<_, String>(4)?),
        visibility: r.get(5)?,
        access: from_json(&r.get::<_, String>(6)?),
        visibility_rule: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// A read-only connection to a data directory's state database, owned by a reader.
///
/// Opened with `SQLITE_OPEN_READ_ONLY`: it never migrates, never writes and never creates a
/// file, so it needs no write access. The writer keeps the WAL files in place
/// (`SQLITE_FCNTL_PERSIST_WAL`) so that such a connection can always open them.
pub struct ReadStore {
    conn: Connection,
}

impl StoreRead for ReadStore {
    fn conn(&self) -> &Connection {
        &self.conn
    }
}

impl ReadStore {
    /// Opens `dir`'s state database read-only; a missing file or another schema version is an
    /// error that says what to run.
    pub fn open(dir: &Path) -> Result<ReadStore> {
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::Missing { path });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if found > supported {
            return Err(StoreError::FromTheFuture {
                path,
                found,
                supported,
            });
        }
        if found < supported {
            return Err(StoreError::NeedsUpgrade {
                path,
                found,
                supported,
            });
        }
        Ok(ReadStore { conn })
    }

    /// Runs `f` inside one read transaction: every query sees the same snapshot, even while
    /// the writer commits.
    pub fn snapshot<T>(&mut self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let out = f(self);
        // A read transaction has nothing to commit; ending it releases the snapshot.
        let end = self.conn.execute_batch("COMMIT");
        let out = out?;
        end?;
        Ok(out)
    }
}
