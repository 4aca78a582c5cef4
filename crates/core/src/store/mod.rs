//! SQLite state: sources and cursors, articles and translations with their hashes, passages,
//! the change log (outbox) that drives the index, and the live index generation.
//!
//! Every sync page is applied in one IMMEDIATE transaction ([`Store::apply`]) that writes the
//! rows, appends change-log entries and advances the cursor together: the cursor never moves
//! without the data it covers. The one writer holds a [`Store`]; readers hold [`ReadStore`]s;
//! both answer the queries of [`StoreRead`].

mod read;
mod write;

pub use read::{ReadStore, StoreRead};
pub use write::Store;

use crate::index::IndexDoc;
use crate::model::Visibility;
use crate::normalize::{Normalized, Passage};
use crate::visibility::UserSegment;
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
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
    /// There is no state database in the data directory.
    #[error("no helpdex state database at {path}")]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// A reader found a database an older helpdex wrote; only the writer migrates.
    #[error(
        "the state database {path} has schema version {found}, older than this helpdex ({supported}); run `helpdex sync` (or any command that writes) once to upgrade it"
    )]
    NeedsUpgrade {
        /// File.
        path: PathBuf,
        /// Version found.
        found: i64,
        /// Version this helpdex reads.
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

/// The state database's file name inside a data directory.
pub const DB_FILE: &str = "helpdex.sqlite3";

/// Migrations by `PRAGMA user_version`; only the writer runs them.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    "ALTER TABLE sources ADD COLUMN brand TEXT;",
    // "segment" meant three things; the citable unit is a passage.
    "ALTER TABLE segments RENAME TO passages;",
    // The hosts citations may point at (source and brand hosts), and records refused by the
    // last sync: never indexed, shown by `status`. Two indexes a sync at scale needs: without
    // the first, every translation deleted or replaced scanned all `links` for its cascade
    // (48 ms each at 10,000 articles); the second spares the per-sync normalizer check a scan
    // of every stored body.
    "ALTER TABLE sources ADD COLUMN hosts TEXT;
     CREATE TABLE quarantine (
         source  TEXT NOT NULL,
         record  TEXT NOT NULL,
         reason  TEXT NOT NULL,
         seen_at TEXT NOT NULL,
         PRIMARY KEY (source, record)
     );
     CREATE INDEX links_owner ON links (source, article_id, locale);
     CREATE INDEX translations_normalizer ON translations (source, normalizer_version, article_id, locale);",
    // Passage vectors (hybrid retrieval), stored once per (model, embedded input): see
    // `vectors.rs`. `embed_key` of existing passages is filled in by the writer on open.
    // Readers load new vectors by `id`; deletions bump `vector_state.epoch` so they reload;
    // `vector_state.model` is the model the writer embeds with (for `status`);
    // `passage_hwm` the highest passage rowid ever given, so that a new passage always gets a
    // higher one (plain rowids are reused after the last rows are deleted) and the embedding
    // lane finds what is new by rowid alone.
    "ALTER TABLE passages ADD COLUMN embed_key INTEGER;
     CREATE TABLE vectors (
         id     INTEGER PRIMARY KEY,
         model  TEXT NOT NULL,
         key    INTEGER NOT NULL,
         vector BLOB NOT NULL,
         UNIQUE (model, key)
     );
     CREATE TABLE vector_state (
         id    INTEGER PRIMARY KEY CHECK (id = 1),
         epoch INTEGER NOT NULL,
         model TEXT,
         passage_hwm INTEGER NOT NULL DEFAULT 0
     );
     INSERT INTO vector_state (id, epoch) VALUES (1, 0);
     CREATE INDEX passages_embed_key ON passages (embed_key);",
];

/// The schema version this helpdex writes and reads (`PRAGMA user_version`).
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

impl ToSql for Visibility {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Visibility {
    /// Fail-closed: a value this helpdex does not know reads as internal.
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Visibility::parse(value.as_str()?).unwrap_or(Visibility::Internal))
    }
}

/// Stored state of one source.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Hosts a citation URL may point at (the source's and its brand's).
    pub hosts: Vec<String>,
    /// Records the sync refused (malformed): never indexed until Zendesk serves them well-formed.
    pub quarantined: Vec<Quarantined>,
}

/// A record the sync refused, and why (the reason names fields and JSON types, never content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Quarantined {
    /// The article id, or where the record was when its id is unusable.
    pub record: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What the store holds of an article's own row, for the cheap "did it change?" test.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleHead {
    /// Zendesk updated_at.
    pub updated_at: Option<String>,
    /// Decided visibility.
    pub visibility: Visibility,
    /// Access tokens.
    pub access: Vec<String>,
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
    /// Normalizer fingerprint the stored passages came from.
    pub normalizer_version: u32,
}

/// What the store holds of one article, for change detection.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredArticle {
    /// Zendesk updated_at.
    pub updated_at: Option<String>,
    /// Decided visibility.
    pub visibility: Visibility,
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
    /// Decided visibility.
    pub visibility: Visibility,
    /// Access tokens.
    pub access: Vec<String>,
    /// Rule that decided visibility.
    pub visibility_rule: String,
    /// Zendesk updated_at.
    pub updated_at: Option<String>,
}

/// Published translations of one visibility and locale (`status`, `/v1/admin/status`, metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Count {
    /// Visibility.
    pub visibility: Visibility,
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

/// Which tantivy generation directory is live, and the index schema it was built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexState {
    /// Directory name under `tantivy/`.
    pub generation: String,
    /// [`crate::index::SCHEMA_VERSION`] it was built with.
    pub schema_version: u32,
}

/// One stored translation's metadata (its body is read on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationRecord {
    /// Locale.
    pub locale: String,
    /// Title.
    pub title: String,
    /// Canonical article URL of this translation.
    pub html_url: String,
    /// Draft (never indexed).
    pub draft: bool,
    /// Flagged outdated against the source translation.
    pub outdated: bool,
    /// blake3 of the normalized content.
    pub content_hash: String,
    /// blake3 of everything the index holds for it.
    pub index_hash: String,
    /// When helpdex last wrote it.
    pub synced_at: String,
    /// Zendesk updated_at.
    pub updated_at: Option<String>,
}

/// A section as the structure listing gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionRow {
    /// Section id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Parent category.
    pub category_id: Option<u64>,
    /// Section URL.
    pub html_url: Option<String>,
}

/// A category as the structure listing gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryRow {
    /// Category id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Category URL.
    pub html_url: Option<String>,
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

/// Percent-encodes what may not appear raw in a URL fragment (quotes, angle brackets, spaces,
/// controls, non-ASCII...), leaving `%` alone so that encoding twice changes nothing: a heading
/// id such as `x" onclick="alert(1)` can never break out of an attribute or a Markdown link.
pub fn encode_fragment(anchor: &str) -> String {
    let mut out = String::with_capacity(anchor.len());
    for b in anchor.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'?'
                    | b'%'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a stored citation URL may be emitted: http(s) only (a `javascript:` or `data:` URL
/// never leaves helpdex, whatever a state database written by another version holds).
pub fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '<' || c == '>' || c == ' ')
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
    fn a_far_future_cursor_is_clamped_to_now() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.ensure_source("a", "http://x").unwrap();
        s.apply(
            "a",
            &Batch {
                cursor: Some(99_999_999_999),
                ..Batch::default()
            },
        )
        .unwrap();
        let now = chrono::Utc::now().timestamp();
        let c = s.source("a").unwrap().unwrap().cursor;
        assert!(c <= now + 1, "cursor {c} clamped to now");
        // A cursor found in the future (an older helpdex) is replaced, not kept by MAX.
        s.conn()
            .execute("UPDATE sources SET cursor = 99999999999", [])
            .unwrap();
        s.apply(
            "a",
            &Batch {
                cursor: Some(1_000),
                ..Batch::default()
            },
        )
        .unwrap();
        assert_eq!(s.source("a").unwrap().unwrap().cursor, 1_000);
    }

    #[test]
    fn fragments_are_encoded_once() {
        let hostile = "x\" onclick=\"alert(1)";
        let e = encode_fragment(hostile);
        assert_eq!(e, "x%22%20onclick=%22alert(1)");
        assert_eq!(encode_fragment(&e), e, "idempotent");
        assert_eq!(
            encode_fragment("h_01HV3T479W2WWJH2BEM5D50F14"),
            "h_01HV3T479W2WWJH2BEM5D50F14"
        );
        assert_eq!(encode_fragment("über"), "%C3%BCber");
        assert!(is_web_url("https://x.test/hc/en-us/articles/1"));
        assert!(!is_web_url("javascript:alert(document.cookie)//"));
        assert!(!is_web_url("data:text/html,<b>"));
        assert!(!is_web_url("https://x.test/\"><script>"));
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
