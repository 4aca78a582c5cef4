//! The tantivy index: one document per citable passage, tagged with the access tokens that may
//! read it. Derived from SQLite and rebuildable at any time; its commit payload records the last
//! applied change-log seq (see `ARCHITECTURE.md`, crash safety).

use crate::model::doc_key;
use helpdex_lang::schema::{LangSchema, add_passage};
use helpdex_lang::{Family, family_for_locale};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tantivy::directory::error::OpenReadError;
use tantivy::schema::{FAST, Field, INDEXED, STORED, STRING, Schema};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use thiserror::Error;

/// Bump on any change of fields, tokenizers or tantivy version: the next open rebuilds the
/// index from SQLite into a new generation.
///
/// v4: one analysed field set per language family (`helpdex-lang`), passage ids, source flag.
/// v5: fast grouping keys (article, locale).
/// v6: fast `embed_key`, the passage's vector key (hybrid retrieval).
pub const SCHEMA_VERSION: u32 = 6;

/// Index-layer errors.
#[derive(Debug, Error)]
pub enum IndexError {
    /// tantivy failed.
    #[error("search index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The index directory is held by another process's writer.
    #[error(
        "the index in {0} is being written by another helpdex process (a running `helpdex serve`?); stop it or use its admin API"
    )]
    Busy(PathBuf),
    /// Filesystem error.
    #[error("index directory {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Field handles.
#[derive(Debug, Clone)]
pub struct Fields {
    /// `source/article_id/locale`; groups all passages of a translation for `delete_term`.
    pub doc_key: Field,
    /// Source (help center) name.
    pub source: Field,
    /// Zendesk article id.
    pub article_id: Field,
    /// Locale.
    pub locale: Field,
    /// The analyzer family of the locale ([`Family::code`]).
    pub family: Field,
    /// 1 when this translation is in the article's source locale (the fallback of a missing
    /// translation).
    pub is_source: Field,
    /// Stable passage id: `source:article_id:locale:hash16` (see [`passage_id`]).
    pub passage_id: Field,
    /// Fast: [`article_key`] of (source, article id), to group hits without loading documents.
    pub article_key: Field,
    /// Fast: [`locale_key`] of the locale.
    pub locale_key: Field,
    /// Fast: [`crate::vectors::embed_key`] of the passage, where its vector is found.
    pub embed_key: Field,
    /// Article title (stored; searched through the family fields).
    pub title: Field,
    /// Heading path joined with " › " (stored).
    pub heading: Field,
    /// Heading path as JSON (stored).
    pub heading_path: Field,
    /// Anchor id when the page has one.
    pub anchor: Field,
    /// Citation URL.
    pub url: Field,
    /// Passage text (stored).
    pub text: Field,
    /// Access tokens (multi-valued); the query requires one the caller holds.
    pub access: Field,
    /// Visibility label.
    pub visibility: Field,
    /// Section id.
    pub section_id: Field,
    /// Section name.
    pub section: Field,
    /// Labels.
    pub labels: Field,
    /// Brand (help center) name, when known.
    pub brand: Field,
    /// Content hash of the translation.
    pub content_hash: Field,
    /// Hash of the passage.
    pub passage_hash: Field,
    /// Translation updated_at.
    pub updated_at: Field,
    /// Outdated translation flag (0/1).
    pub outdated: Field,
    /// Position of the passage in its translation.
    pub ordinal: Field,
    /// The analysed fields of every language family: a passage fills its family's
    /// `title_*`, `heading_*`, `text_*` and `pairs_*`.
    pub lang: LangSchema,
}

/// Builds the schema.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let lang = LangSchema::add_to(&mut b);
    let f = Fields {
        doc_key: b.add_text_field("doc_key", STRING | STORED),
        source: b.add_text_field("source", STRING | STORED),
        article_id: b.add_u64_field("article_id", INDEXED | STORED | FAST),
        locale: b.add_text_field("locale", STRING | STORED),
        family: b.add_text_field("family", STRING | STORED),
        is_source: b.add_u64_field("is_source", INDEXED | STORED),
        passage_id: b.add_text_field("passage_id", STRING | STORED),
        article_key: b.add_u64_field("article_key", FAST),
        locale_key: b.add_u64_field("locale_key", FAST),
        embed_key: b.add_i64_field("embed_key", FAST),
        title: b.add_text_field("title", STORED),
        heading: b.add_text_field("heading", STORED),
        heading_path: b.add_text_field("heading_path", STORED),
        anchor: b.add_text_field("anchor", STORED),
        url: b.add_text_field("url", STORED),
        text: b.add_text_field("text", STORED),
        access: b.add_text_field("access", STRING | STORED),
        visibility: b.add_text_field("visibility", STRING | STORED),
        section_id: b.add_u64_field("section_id", INDEXED | STORED),
        section: b.add_text_field("section", STORED),
        labels: b.add_text_field("labels", STRING | STORED),
        brand: b.add_text_field("brand", STRING | STORED),
        content_hash: b.add_text_field("content_hash", STORED),
        passage_hash: b.add_text_field("passage_hash", STORED),
        updated_at: b.add_text_field("updated_at", STORED),
        outdated: b.add_u64_field("outdated", STORED),
        ordinal: b.add_u64_field("ordinal", STORED),
        lang,
    };
    (b.build(), f)
}

/// A 64-bit key of one article of one source (grouping; collisions are astronomically rare and
/// would only merge two articles' places in a ranked list).
pub fn article_key(source: &str, article_id: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(source.as_bytes());
    h.update(&[0]);
    h.update(&article_id.to_le_bytes());
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

/// A 64-bit key of a locale.
pub fn locale_key(locale: &str) -> u64 {
    u64::from_le_bytes(
        blake3::hash(locale.as_bytes()).as_bytes()[..8]
            .try_into()
            .expect("8 bytes"),
    )
}

/// The stable id of a passage: which translation it belongs to and what it says. It stays the
/// same while the passage's heading, anchor and text do, whatever else in the article changes;
/// integrators cite and deduplicate by it, and `verify` checks it.
pub fn passage_id(source: &str, article_id: u64, locale: &str, passage_hash: &str) -> String {
    let short = passage_hash.get(..16).unwrap_or(passage_hash);
    format!("{source}:{article_id}:{locale}:{short}")
}

/// Everything the index holds for one translation (built from SQLite).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexDoc {
    /// Source name.
    pub source: String,
    /// Article id.
    pub article_id: u64,
    /// Locale.
    pub locale: String,
    /// The article's source locale.
    pub source_locale: String,
    /// Title.
    pub title: String,
    /// Article URL (no anchor).
    pub html_url: String,
    /// Access tokens.
    pub access: Vec<String>,
    /// Decided visibility.
    pub visibility: crate::model::Visibility,
    /// Section id.
    pub section_id: Option<u64>,
    /// Section name.
    pub section: Option<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Brand name of the source's help center, when known.
    pub brand: Option<String>,
    /// Content hash.
    pub content_hash: String,
    /// updated_at of the translation.
    pub updated_at: String,
    /// Outdated translation.
    pub outdated: bool,
    /// Passages, in order.
    pub passages: Vec<crate::normalize::Passage>,
}

/// A generation directory as a reader opens it. tantivy takes its meta lock while it loads a
/// commit, so the writer's garbage collection cannot delete files under it; the lock is a file
/// in the directory. A reader without write access (a read-only mount, another user) cannot
/// create it and reads without it: at worst a reload races a merge, fails, and the next commit
/// reloads again. With write access, the lock is taken as usual.
#[derive(Clone, Debug)]
struct ReaderDirectory(tantivy::directory::MmapDirectory);

impl tantivy::Directory for ReaderDirectory {
    fn get_file_handle(
        &self,
        path: &Path,
    ) -> Result<std::sync::Arc<dyn tantivy::directory::FileHandle>, OpenReadError> {
        self.0.get_file_handle(path)
    }
    fn open_read(&self, path: &Path) -> Result<tantivy::directory::FileSlice, OpenReadError> {
        self.0.open_read(path)
    }
    fn delete(&self, path: &Path) -> Result<(), tantivy::directory::error::DeleteError> {
        self.0.delete(path)
    }
    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.0.exists(path)
    }
    fn open_write(
        &self,
        path: &Path,
    ) -> Result<tantivy::directory::WritePtr, tantivy::directory::error::OpenWriteError> {
        self.0.open_write(path)
    }
    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.0.atomic_read(path)
    }
    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.0.atomic_write(path, data)
    }
    fn sync_directory(&self) -> std::io::Result<()> {
        self.0.sync_directory()
    }
    fn watch(
        &self,
        callback: tantivy::directory::WatchCallback,
    ) -> tantivy::Result<tantivy::directory::WatchHandle> {
        self.0.watch(callback)
    }
    fn acquire_lock(
        &self,
        lock: &tantivy::directory::Lock,
    ) -> Result<tantivy::directory::DirectoryLock, tantivy::directory::error::LockError> {
        use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
        use tantivy::directory::error::LockError;
        match self.0.acquire_lock(lock) {
            Err(LockError::IoError(e))
                if matches!(e.kind(), PermissionDenied | ReadOnlyFilesystem) =>
            {
                tracing::debug!(lock = %lock.filepath.display(), "read-only index directory: reading without tantivy's lock");
                Ok(tantivy::directory::DirectoryLock::from(Box::new(())))
            }
            other => other,
        }
    }
}

/// A generation directory as the writer's own tantivy `Index` reads it: every read is a
/// positioned read (`pread`) into a buffer that is freed when tantivy lets go of it, never a
/// memory map.
///
/// Why: a merge reads every byte of the segments it merges, and through a map each page read
/// stays resident, counted in the process's RSS, until the merge ends and the segments are
/// unmapped. Merging a 100k-article index into one segment mapped its 1.1 GB (peak RSS 1.3 GB
/// for 252 MB of heap). Read by `pread`, a merge holds what it is working on: a term's
/// postings, one segment's document store while it is copied. Searches do not go through
/// here: the generation's reader opens the same files through its own mapped `Index`
/// ([`Generation::create`]), where zero-copy reads are what make a search cheap.
#[derive(Clone, Debug)]
struct WriterDirectory {
    root: PathBuf,
    inner: tantivy::directory::MmapDirectory,
}

/// An open file read by `pread` (see [`WriterDirectory`]).
#[derive(Debug)]
struct PreadFile {
    file: std::fs::File,
    len: usize,
}

impl tantivy::HasLen for PreadFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl tantivy::directory::FileHandle for PreadFile {
    fn read_bytes(
        &self,
        range: std::ops::Range<usize>,
    ) -> std::io::Result<tantivy::directory::OwnedBytes> {
        if range.end > self.len || range.start > range.end {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("read of {range:?} past the end of a {}-byte file", self.len),
            ));
        }
        let mut buf = vec![0u8; range.len()];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut buf, range.start as u64)?;
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.file,
                    &mut buf[done..],
                    (range.start + done) as u64,
                )?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
        }
        Ok(tantivy::directory::OwnedBytes::new(buf))
    }
}

impl tantivy::Directory for WriterDirectory {
    fn get_file_handle(
        &self,
        path: &Path,
    ) -> Result<std::sync::Arc<dyn tantivy::directory::FileHandle>, OpenReadError> {
        let full = self.root.join(path);
        let file = match std::fs::File::open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(path.to_path_buf()));
            }
            Err(e) => return Err(OpenReadError::wrap_io_error(e, path.to_path_buf())),
        };
        let len = file
            .metadata()
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))?
            .len() as usize;
        Ok(std::sync::Arc::new(PreadFile { file, len }))
    }
    fn delete(&self, path: &Path) -> Result<(), tantivy::directory::error::DeleteError> {
        self.inner.delete(path)
    }
    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }
    fn open_write(
        &self,
        path: &Path,
    ) -> Result<tantivy::directory::WritePtr, tantivy::directory::error::OpenWriteError> {
        self.inner.open_write(path)
    }
    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }
    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.inner.atomic_write(path, data)
    }
    fn sync_directory(&self) -> std::io::Result<()> {
        self.inner.sync_directory()
    }
    fn watch(
        &self,
        callback: tantivy::directory::WatchCallback,
    ) -> tantivy::Result<tantivy::directory::WatchHandle> {
        self.inner.watch(callback)
    }
    fn acquire_lock(
        &self,
        lock: &tantivy::directory::Lock,
    ) -> Result<tantivy::directory::DirectoryLock, tantivy::directory::error::LockError> {
        self.inner.acquire_lock(lock)
    }
}

/// Switches `w` between bulk loading (`true`: no background merges) and tantivy's log merge
/// policy (groups of similar-size segments, and segments with 30% deleted documents).
///
/// A first sync and a rebuild write every passage and then merge everything into one segment
/// ([`crate::engine::Compaction::Full`]). Merges in the background meanwhile would rewrite the
/// same passages several times over, and one still running when the full merge starts makes
/// that merge fail at its end ("segments ... could not be found"), leaving the index in many
/// segments (seen at 100k articles: 17).
pub fn set_bulk(w: &IndexWriter, bulk: bool) {
    if bulk {
        w.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
    } else {
        let mut policy = tantivy::indexer::LogMergePolicy::default();
        policy.set_del_docs_ratio_before_merge(0.3);
        w.set_merge_policy(Box::new(policy));
    }
}

/// One open index generation (a `tantivy/gen-*` directory): the index, its reader and the
/// field handles. Readers and the writer share this type; only the writer creates one or asks
/// it for an [`IndexWriter`].
pub struct Generation {
    /// Generation id (directory name).
    pub name: String,
    /// Directory.
    pub dir: PathBuf,
    /// tantivy index (memory-mapped: what searches read).
    pub index: Index,
    /// The same directory as the writer's tantivy sees it ([`WriterDirectory`]): present in a
    /// generation opened by the writer ([`Generation::create`]), which writes and merges
    /// through it.
    write_index: Option<Index>,
    /// Reader. It follows commits by itself (tantivy polls `meta.json` every 500 ms, across
    /// processes); the writer also reloads it right after each commit of its own, unless
    /// reloads are deferred ([`Generation::defer_reloads`]).
    pub reader: IndexReader,
    /// Reloads deferred (the writer's generation only).
    deferred: Arc<AtomicBool>,
    /// Keeps the writer's own `meta.json` watch alive (see [`Generation::create`]).
    _watch: Option<tantivy::directory::WatchHandle>,
    /// Field handles.
    pub fields: Fields,
}

/// The commit payload: last applied change seq and schema version.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Payload {
    /// Last change-log seq reflected in this commit.
    pub seq: i64,
    /// Schema version the index was built with.
    pub schema: u32,
}

impl Generation {
    /// Creates or opens the generation directory `dir` for the writer.
    pub fn create(dir: &Path, name: &str) -> Result<Generation, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, _) = schema();
        let mmap = || {
            tantivy::directory::MmapDirectory::open(dir)
                .map_err(|e| IndexError::Tantivy(tantivy::TantivyError::from(e)))
        };
        let write_index = Index::open_or_create(
            WriterDirectory {
                root: dir.to_path_buf(),
                inner: mmap()?,
            },
            schema,
        )?;
        helpdex_lang::register_all(write_index.tokenizers());
        let mut generation =
            Self::with_index(Index::open(mmap()?)?, dir, name, ReloadPolicy::Manual)?;
        generation.write_index = Some(write_index);
        // What `ReloadPolicy::OnCommitWithDelay` does (reload when `meta.json` changes: a
        // background merge's commit), except while reloads are deferred.
        use tantivy::Directory as _;
        let (reader, deferred) = (generation.reader.clone(), generation.deferred.clone());
        let watch = generation
            .index
            .directory()
            .watch(tantivy::directory::WatchCallback::new(move || {
                if !deferred.load(Ordering::Relaxed)
                    && let Err(e) = reader.reload()
                {
                    tracing::warn!(error = %e, "could not reload the index after a commit");
                }
            }))?;
        generation._watch = Some(watch);
        Ok(generation)
    }

    /// Opens an existing generation without writing anything (readers).
    pub fn open(dir: &Path, name: &str) -> Result<Generation, IndexError> {
        let mmap = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| IndexError::Tantivy(tantivy::TantivyError::from(e)))?;
        Self::with_index(
            Index::open(ReaderDirectory(mmap))?,
            dir,
            name,
            ReloadPolicy::OnCommitWithDelay,
        )
    }

    fn with_index(
        index: Index,
        dir: &Path,
        name: &str,
        reload: ReloadPolicy,
    ) -> Result<Generation, IndexError> {
        let (_, fields) = schema();
        helpdex_lang::register_all(index.tokenizers());
        let reader = index.reader_builder().reload_policy(reload).try_into()?;
        Ok(Generation {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            index,
            write_index: None,
            reader,
            deferred: Arc::new(AtomicBool::new(false)),
            _watch: None,
            fields,
        })
    }

    /// Defers (`true`) or resumes reloading the reader after commits; resuming reloads now.
    ///
    /// A first sync defers them: its passages become searchable together when it ends
    /// (`serve` reports not ready until then anyway), and reloading after each of its commits
    /// mapped every new segment into the writer's process for nothing (about 40 MB of RSS by
    /// the end of a 100k-article first sync, 176 segments).
    pub fn defer_reloads(&self, defer: bool) -> Result<(), IndexError> {
        self.deferred.store(defer, Ordering::Relaxed);
        if !defer {
            self.reader.reload()?;
        }
        Ok(())
    }

    /// The payload of the last commit (zero when none).
    pub fn payload(&self) -> Payload {
        self.index
            .load_metas()
            .ok()
            .and_then(|m| m.payload)
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default()
    }

    /// A single-threaded writer (deterministic doc order; a help center is small).
    pub fn writer(&self) -> Result<IndexWriter, IndexError> {
        match self
            .write_index
            .as_ref()
            .unwrap_or(&self.index)
            .writer_with_num_threads::<TantivyDocument>(1, 50_000_000)
        {
            Ok(w) => {
                set_bulk(&w, false);
                // A process killed mid-write leaves files its commit never referenced (for
                // example `<segment>.<opstamp>.del`); the next writer would reuse the same
                // opstamp and fail on "file already exists". Delete them before writing.
                if let Err(e) = w.garbage_collect_files().wait() {
                    tracing::warn!(error = %e, "could not collect unreferenced index files");
                }
                Ok(w)
            }
            Err(tantivy::TantivyError::LockFailure(..)) => Err(IndexError::Busy(self.dir.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces every passage of one translation: delete by key, then add `doc`'s passages.
    pub fn put(
        &self,
        w: &IndexWriter,
        key: &str,
        doc: Option<&IndexDoc>,
    ) -> Result<(), IndexError> {
        let f = &self.fields;
        w.delete_term(Term::from_field_text(f.doc_key, key));
        let Some(d) = doc else { return Ok(()) };
        debug_assert_eq!(doc_key(&d.source, d.article_id, &d.locale), key);
        let family: Family = family_for_locale(&d.locale);
        let lang = f.lang.fields(family);
        let is_source = d.locale.eq_ignore_ascii_case(&d.source_locale);
        for s in &d.passages {
            let mut t = TantivyDocument::default();
            let heading = s.heading_path.join(" › ");
            t.add_text(f.doc_key, key);
            t.add_text(f.source, &d.source);
            t.add_u64(f.article_id, d.article_id);
            t.add_text(f.locale, &d.locale);
            t.add_text(f.family, family.code());
            t.add_u64(f.is_source, is_source as u64);
            t.add_text(
                f.passage_id,
                passage_id(&d.source, d.article_id, &d.locale, &s.hash),
            );
            t.add_u64(f.article_key, article_key(&d.source, d.article_id));
            t.add_u64(f.locale_key, locale_key(&d.locale));
            t.add_i64(f.embed_key, crate::vectors::embed_key(&d.title, &s.text));
            t.add_text(f.title, &d.title);
            t.add_text(f.heading, &heading);
            add_passage(&mut t, &lang, &d.title, &heading, &s.text);
            t.add_text(
                f.heading_path,
                serde_json::to_string(&s.heading_path).unwrap_or_default(),
            );
            if let Some(a) = &s.anchor {
                t.add_text(f.anchor, a);
            }
            let url = match &s.anchor {
                Some(a) => format!("{}#{a}", d.html_url),
                None => d.html_url.clone(),
            };
            t.add_text(f.url, url);
            t.add_text(f.text, &s.text);
            for a in &d.access {
                t.add_text(f.access, a);
            }
            t.add_text(f.visibility, d.visibility.as_str());
            if let Some(id) = d.section_id {
                t.add_u64(f.section_id, id);
            }
            if let Some(n) = &d.section {
                t.add_text(f.section, n);
            }
            for l in &d.labels {
                t.add_text(f.labels, l);
            }
            if let Some(b) = &d.brand {
                t.add_text(f.brand, b);
            }
            t.add_text(f.content_hash, &d.content_hash);
            t.add_text(f.passage_hash, &s.hash);
            t.add_text(f.updated_at, &d.updated_at);
            t.add_u64(f.outdated, d.outdated as u64);
            t.add_u64(f.ordinal, s.ordinal as u64);
            w.add_document(t)?;
        }
        Ok(())
    }

    /// Commits with the payload, then reloads the reader so searches see the commit at once.
    pub fn commit(&self, w: &mut IndexWriter, payload: Payload) -> Result<(), IndexError> {
        let mut pc = w.prepare_commit()?;
        pc.set_payload(&serde_json::to_string(&payload).unwrap_or_default());
        pc.commit()?;
        if !self.deferred.load(Ordering::Relaxed) {
            self.reader.reload()?;
        }
        Ok(())
    }

    /// Number of indexed passages (all audiences).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::Directory;

    #[test]
    fn the_writer_reads_exactly_the_bytes_asked_for() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"0123456789").unwrap();
        let dir = WriterDirectory {
            root: tmp.path().to_path_buf(),
            inner: tantivy::directory::MmapDirectory::open(tmp.path()).unwrap(),
        };
        let f = dir.get_file_handle(Path::new("f")).unwrap();
        assert_eq!(f.len(), 10);
        assert_eq!(f.read_bytes(2..5).unwrap().as_slice(), b"234");
        assert_eq!(f.read_bytes(0..10).unwrap().as_slice(), b"0123456789");
        assert!(f.read_bytes(7..7).unwrap().is_empty());
        assert!(
            f.read_bytes(8..11).is_err(),
            "a read past the end is an error"
        );
        let slice = dir.open_read(Path::new("f")).unwrap();
        assert_eq!(slice.slice(4..6).read_bytes().unwrap().as_slice(), b"45");
        assert!(matches!(
            dir.get_file_handle(Path::new("missing")),
            Err(OpenReadError::FileDoesNotExist(_))
        ));
    }

    #[test]
    fn deferred_reloads_show_nothing_until_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let g = Generation::create(tmp.path(), "gen-test").unwrap();
        let mut w = g.writer().unwrap();
        let add = |w: &mut IndexWriter, key: &str| {
            let mut d = TantivyDocument::default();
            d.add_text(g.fields.doc_key, key);
            w.add_document(d).unwrap();
            g.commit(
                w,
                Payload {
                    seq: 1,
                    schema: SCHEMA_VERSION,
                },
            )
            .unwrap();
        };
        add(&mut w, "a");
        assert_eq!(g.num_docs(), 1, "a commit is searchable at once");
        g.defer_reloads(true).unwrap();
        add(&mut w, "b");
        add(&mut w, "c");
        // Longer than tantivy's 500 ms meta.json poll: the watch does not reload either.
        std::thread::sleep(std::time::Duration::from_millis(1_200));
        assert_eq!(g.num_docs(), 1, "deferred");
        g.defer_reloads(false).unwrap();
        assert_eq!(g.num_docs(), 3, "resumed: every commit searchable");
        add(&mut w, "d");
        assert_eq!(g.num_docs(), 4);
    }

    /// Ten commits of one document each: tantivy's log merge policy merges them (8 or more
    /// segments of a size), bulk loading leaves them for the one merge at the end.
    #[test]
    fn bulk_loading_merges_nothing_in_the_background() {
        for bulk in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let g = Generation::create(tmp.path(), "gen-test").unwrap();
            let mut w = g.writer().unwrap();
            set_bulk(&w, bulk);
            for i in 0..10 {
                let mut d = TantivyDocument::default();
                d.add_text(g.fields.doc_key, format!("key-{i}"));
                w.add_document(d).unwrap();
                w.commit().unwrap();
            }
            w.wait_merging_threads().unwrap();
            let segments = g.index.searchable_segment_metas().unwrap().len();
            if bulk {
                assert_eq!(segments, 10);
            } else {
                assert!(
                    segments < 10,
                    "the log merge policy left {segments} segments"
                );
            }
            g.reader.reload().unwrap();
            assert_eq!(g.num_docs(), 10, "bulk {bulk}: every document searchable");
        }
    }
}
