//! SQLite state: sources and cursors, articles and translations with their hashes, segments,
//! the change log (outbox) that drives the index, and the live index generation.
//!
//! Every sync page is applied in one IMMEDIATE transaction ([`Store::apply`]) that writes the
//! rows, appends change-log entries and advances the cursor together: the cursor never moves
//! without the data it covers.

use crate::index::IndexDoc;
use crate::normalize::{Normalized, Segment};
use crate::visibility::SegmentInfo;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Store-layer errors.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("state database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer helpdex.
    #[error(
        "the state database {path} has schema version {found}, newer than this helpdex ({supported}); upgrade helpdex"
    )]
    FromTheFuture {
        /// File.
        path: PathBuf,
        /// Version found.
        found: i64,
        /// Highest known.
        supported: i64,
    },
    /// Could not create the data directory.
    #[error("cannot create data directory {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    "ALTER TABLE sources ADD COLUMN brand TEXT;",
];

/// Stored state of one source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceState {
    /// Name.
    pub name: String,
    /// Base URL.
    pub base_url: String,
    /// Export cursor (epoch seconds).
    pub cursor: i64,
    /// Whether user segments were readable at the last sync.
    pub segments_readable: Option<bool>,
    /// Brand help center state.
    pub help_center_state: Option<String>,
    /// Completed syncs.
    pub syncs: i64,
    /// Last full hash sweep (epoch seconds).
    pub last_full_sweep: Option<i64>,
    /// Last run start.
    pub last_started_at: Option<String>,
    /// Last run end.
    pub last_finished_at: Option<String>,
    /// `ok` or `error`.
    pub last_result: Option<String>,
    /// Last error message.
    pub last_error: Option<String>,
    /// Last report (JSON).
    pub last_report: Option<serde_json::Value>,
}

/// What the store holds of one translation, for change detection.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTranslation {
    /// Normalized content hash.
    pub content_hash: String,
    /// Hash of the indexed form.
    pub index_hash: String,
    /// Draft.
    pub draft: bool,
    /// Normalizer version the stored segments came from.
    pub normalizer_version: u32,
}

/// What the store holds of one article, for change detection.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredArticle {
    /// Zendesk updated_at.
    pub updated_at: Option<String>,
    /// Visibility label.
    pub visibility: String,
    /// Translations by locale.
    pub translations: HashMap<String, StoredTranslation>,
}

/// An article row to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleRow {
    /// Article id.
    pub article_id: u64,
    /// Section.
    pub section_id: Option<u64>,
    /// Source locale.
    pub source_locale: String,
    /// Zendesk user segment ids.
    pub segment_ids: Vec<u64>,
    /// Labels.
    pub labels: Vec<String>,
    /// Visibility label.
    pub visibility: String,
    /// Access tokens.
    pub access: Vec<String>,
    /// Rule that decided visibility.
    pub visibility_rule: String,
    /// Zendesk updated_at.
    pub updated_at: Option<String>,
}

/// Published translations of one visibility and locale (`status`, `/v1/admin/status`, metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    /// Visibility name.
    pub visibility: String,
    /// Locale.
    pub locale: String,
    /// Number of published translations.
    pub translations: i64,
}

/// A translation row to write, with its normalized content.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslationRow {
    /// Article id.
    pub article_id: u64,
    /// Locale.
    pub locale: String,
    /// Title.
    pub title: String,
    /// Public URL.
    pub html_url: String,
    /// Draft.
    pub draft: bool,
    /// Outdated.
    pub outdated: bool,
    /// Translation updated_at.
    pub updated_at: Option<String>,
    /// Raw body.
    pub body: Option<String>,
    /// Normalized form.
    pub normalized: Normalized,
    /// Hash of the indexed form.
    pub index_hash: String,
    /// [`crate::normalize::NormalizeOptions::fingerprint`] of the normalizer that produced it.
    pub normalizer: u32,
}

/// Everything one sync step writes, atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Articles to insert or replace (metadata only; translations listed separately).
    pub articles: Vec<ArticleRow>,
    /// Translations to insert or replace.
    pub translations: Vec<TranslationRow>,
    /// Translations to delete (article id, locale).
    pub delete_translations: Vec<(u64, String)>,
    /// Articles to delete with all their translations.
    pub delete_articles: Vec<u64>,
    /// Doc keys whose indexed form changed.
    pub changed: Vec<String>,
    /// Advance the cursor to at least this (never backwards).
    pub cursor: Option<i64>,
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
            && self.translations.is_empty()
            && self.delete_translations.is_empty()
            && self.delete_articles.is_empty()
            && self.changed.is_empty()
            && self.cursor.is_none()
    }
}

/// The SQLite state database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

impl Store {
    /// Opens (creating and migrating) `dir/helpdex.sqlite3`.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("helpdex.sqlite3");
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
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

    /// State of a source.
    pub fn source(&self, name: &str) -> Result<Option<SourceState>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, base_url, cursor, segments_readable, help_center_state, syncs,
                        last_full_sweep, last_started_at, last_finished_at, last_result, last_error,
                        last_report
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
                    })
                },
            )
            .optional()?)
    }

    /// All sources.
    pub fn sources(&self) -> Result<Vec<SourceState>> {
        let names: Vec<String> = self
            .conn
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

    /// Saves the segment list (`None` = unreadable) and the help center state.
    pub fn save_segments(
        &mut self,
        source: &str,
        segments: Option<&[SegmentInfo]>,
        help_center_state: Option<&str>,
        brand: Option<&str>,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE sources SET segments_readable = ?2, help_center_state = ?3, brand = COALESCE(?4, brand) WHERE name = ?1",
            params![source, segments.is_some() as i64, help_center_state, brand],
        )?;
        if let Some(segs) = segments {
            tx.execute("DELETE FROM user_segments WHERE source = ?1", [source])?;
            for s in segs {
                tx.execute(
                    "INSERT INTO user_segments(source, id, name, user_type, built_in) VALUES (?1,?2,?3,?4,?5)",
                    params![source, s.id as i64, s.name, s.user_type, s.built_in],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Segments as last read, `None` when they were not readable.
    pub fn segments(&self, source: &str) -> Result<Option<HashMap<u64, SegmentInfo>>> {
        let readable: Option<Option<i64>> = self
            .conn
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
            .conn
            .prepare("SELECT id, name, user_type, built_in FROM user_segments WHERE source = ?1")?;
        let rows = st.query_map([source], |r| {
            Ok(SegmentInfo {
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

    /// Replaces the section and category names of a source.
    pub fn save_structure(
        &mut self,
        source: &str,
        sections: &[(u64, String, Option<u64>, Option<String>)],
        categories: &[(u64, String, Option<String>)],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM sections WHERE source = ?1", [source])?;
        tx.execute("DELETE FROM categories WHERE source = ?1", [source])?;
        for (id, name, cat, url) in sections {
            tx.execute(
                "INSERT INTO sections(source, id, name, category_id, html_url) VALUES (?1,?2,?3,?4,?5)",
                params![source, *id as i64, name, cat.map(|c| c as i64), url],
            )?;
        }
        for (id, name, url) in categories {
            tx.execute(
                "INSERT INTO categories(source, id, name, html_url) VALUES (?1,?2,?3,?4)",
                params![source, *id as i64, name, url],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Section name by id.
    pub fn section_names(&self, source: &str) -> Result<HashMap<u64, String>> {
        let mut st = self
            .conn
            .prepare("SELECT id, name FROM sections WHERE source = ?1")?;
        let rows = st.query_map([source], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// What is stored of one article, for change detection.
    pub fn article(&self, source: &str, id: u64) -> Result<Option<StoredArticle>> {
        let head: Option<(Option<String>, String)> = self
            .conn
            .query_row(
                "SELECT updated_at, visibility FROM articles WHERE source = ?1 AND article_id = ?2",
                params![source, id as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((updated_at, visibility)) = head else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
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
    pub fn article_ids(&self, source: &str) -> Result<Vec<u64>> {
        let mut st = self
            .conn
            .prepare("SELECT article_id FROM articles WHERE source = ?1 ORDER BY article_id")?;
        let rows = st.query_map([source], |r| Ok(r.get::<_, i64>(0)? as u64))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
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
                "INSERT INTO segments(source, article_id, locale, ordinal, heading_path, anchor, text, hash)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            )?;
            for s in &t.normalized.segments {
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
            tx.execute(
                "UPDATE sources SET cursor = MAX(cursor, ?2) WHERE name = ?1",
                params![source, c],
            )?;
        }
        tx.commit()?;
        Ok(last)
    }

    /// Highest change seq ever written (survives pruning).
    pub fn high_water(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Changed doc keys after `seq`, deduplicated, with the highest seq seen.
    pub fn changes_after(&self, seq: i64) -> Result<(Vec<String>, i64)> {
        let mut st = self
            .conn
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

    /// Drops change rows the index has applied.
    pub fn prune_changes(&self, upto: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM changes WHERE seq <= ?1", [upto])?;
        Ok(())
    }

    /// Every doc key that should be in the index (published translations).
    pub fn all_doc_keys(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare(
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
    pub fn index_doc(&self, key: &str) -> Result<Option<IndexDoc>> {
        let mut parts = key.rsplitn(3, '/');
        let (Some(locale), Some(id), Some(source)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let Ok(id) = id.parse::<u64>() else {
            return Ok(None);
        };
        let row = self
            .conn
            .prepare_cached(
                "SELECT t.title, t.html_url, a.access, a.visibility, a.section_id, s.name, a.labels,
                        t.content_hash, COALESCE(t.updated_at, ''), t.outdated, t.draft, src.brand
                 FROM translations t JOIN articles a USING (source, article_id)
                 LEFT JOIN sections s ON s.source = a.source AND s.id = a.section_id
                 LEFT JOIN sources src ON src.name = a.source
                 WHERE t.source = ?1 AND t.article_id = ?2 AND t.locale = ?3",
            )?
            .query_row(params![source, id as i64, locale], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, bool>(9)?,
                    r.get::<_, bool>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ))
            })
            .optional()?;
        let Some((
            title,
            html_url,
            access,
            visibility,
            section_id,
            section,
            labels,
            hash,
            updated,
            outdated,
            draft,
            brand,
        )) = row
        else {
            return Ok(None);
        };
        if draft {
            return Ok(None);
        }
        Ok(Some(IndexDoc {
            source: source.to_string(),
            article_id: id,
            locale: locale.to_string(),
            title,
            html_url,
            access: from_json(&access),
            visibility,
            section_id: section_id.map(|s| s as u64),
            section,
            labels: from_json(&labels),
            brand,
            content_hash: hash,
            updated_at: updated,
            outdated,
            segments: self.segments_of(source, id, locale)?,
        }))
    }

    /// Stored segments of one translation, in order.
    pub fn segments_of(&self, source: &str, id: u64, locale: &str) -> Result<Vec<Segment>> {
        let mut st = self.conn.prepare_cached(
            "SELECT ordinal, heading_path, anchor, text, hash FROM segments
             WHERE source = ?1 AND article_id = ?2 AND locale = ?3 ORDER BY ordinal",
        )?;
        let rows = st.query_map(params![source, id as i64, locale], |r| {
            Ok(Segment {
                ordinal: r.get(0)?,
                heading_path: from_json(&r.get::<_, String>(1)?),
                anchor: r.get(2)?,
                text: r.get(3)?,
                hash: r.get(4)?,
            })
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// The live index generation and its schema version.
    pub fn index_state(&self) -> Result<Option<(String, u32)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT generation, schema_version FROM index_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
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

    /// Translations normalized by another normalizer version or other options.
    pub fn stale_normalized(&self, source: &str, fingerprint: u32) -> Result<Vec<(u64, String)>> {
        let mut st = self.conn.prepare(
            "SELECT article_id, locale FROM translations WHERE source = ?1 AND normalizer_version != ?2",
        )?;
        let rows = st.query_map(params![source, fingerprint], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Raw stored translation fields (title, html_url, draft, outdated, updated_at, body).
    #[allow(clippy::type_complexity)]
    pub fn raw_translation(
        &self,
        source: &str,
        id: u64,
        locale: &str,
    ) -> Result<Option<(String, String, bool, bool, Option<String>, Option<String>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT title, html_url, draft, outdated, updated_at, body FROM translations
                 WHERE source = ?1 AND article_id = ?2 AND locale = ?3",
                params![source, id as i64, locale],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()?)
    }

    /// Stored article metadata row.
    pub fn article_row(&self, source: &str, id: u64) -> Result<Option<ArticleRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT section_id, source_locale, segment_ids, labels, visibility, access,
                        visibility_rule, updated_at
                 FROM articles WHERE source = ?1 AND article_id = ?2",
                params![source, id as i64],
                |r| {
                    Ok(ArticleRow {
                        article_id: id,
                        section_id: r.get::<_, Option<i64>>(0)?.map(|s| s as u64),
                        source_locale: r.get(1)?,
                        segment_ids: from_json(&r.get::<_, String>(2)?),
                        labels: from_json(&r.get::<_, String>(3)?),
                        visibility: r.get(4)?,
                        access: from_json(&r.get::<_, String>(5)?),
                        visibility_rule: r.get(6)?,
                        updated_at: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// Sources holding an article id.
    pub fn sources_of(&self, id: u64) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT source FROM articles WHERE article_id = ?1 ORDER BY source")?;
        let rows = st.query_map([id as i64], |r| r.get(0))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Locales stored for an article with (draft, outdated, content_hash, synced_at, updated_at).
    #[allow(clippy::type_complexity)]
    pub fn translation_summaries(
        &self,
        source: &str,
        id: u64,
    ) -> Result<
        Vec<(
            String,
            String,
            String,
            bool,
            bool,
            String,
            String,
            String,
            Option<String>,
        )>,
    > {
        let mut st = self.conn.prepare(
            "SELECT locale, title, html_url, draft, outdated, content_hash, index_hash, synced_at, updated_at
             FROM translations WHERE source = ?1 AND article_id = ?2 ORDER BY locale",
        )?;
        let rows = st.query_map(params![source, id as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// Counts of published translations by (visibility, locale).
    pub fn counts(&self, source: Option<&str>) -> Result<Vec<Count>> {
        let mut st = self.conn.prepare(
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

    /// A canonical dump of the content state, for tests comparing two stores.
    pub fn dump(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare(
            "SELECT t.source || '/' || t.article_id || '/' || t.locale || ' ' || a.visibility || ' ' ||
                    t.draft || ' ' || t.content_hash || ' ' || t.index_hash
             FROM translations t JOIN articles a USING (source, article_id) ORDER BY 1",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.ensure_source("a", "http://x").unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.source("a").unwrap().unwrap().cursor, 0);
    }

    #[test]
    fn cursor_never_moves_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.ensure_source("a", "http://x").unwrap();
        s.apply(
            "a",
            &Batch {
                cursor: Some(100),
                ..Batch::default()
            },
        )
        .unwrap();
        s.apply(
            "a",
            &Batch {
                cursor: Some(1),
                ..Batch::default()
            },
        )
        .unwrap();
        assert_eq!(s.source("a").unwrap().unwrap().cursor, 100);
    }

    #[test]
    fn refuses_database_from_the_future() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("helpdex.sqlite3")).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::FromTheFuture { .. })
        ));
    }
}
