//! The engine: the SQLite store and the live tantivy generation, kept consistent.
//!
//! Write protocol (crash safety, see `ARCHITECTURE.md`): a [`Batch`] is committed to SQLite
//! first, rows + change-log + cursor in one transaction; then the changed doc keys are applied
//! to tantivy, whose commit payload records the last applied change seq. On open, the index
//! replays whatever the store has beyond that seq, or is rebuilt from the store when it is
//! missing, corrupt, of another schema, or ahead of the store.

use crate::index::{IndexError, IndexHandle, Payload, SCHEMA_VERSION};
use crate::normalize::NormalizeOptions;
use crate::store::{Batch, Store, StoreError};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tantivy::IndexWriter;
use thiserror::Error;

/// Engine errors.
#[derive(Debug, Error)]
pub enum EngineError {
    /// From the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// From the index.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The engine was opened read-only.
    #[error(
        "this helpdex process opened the data directory read-only (another process is writing it)"
    )]
    ReadOnly,
}

type Result<T> = std::result::Result<T, EngineError>;

/// The live index generation in brief.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexStatus {
    /// Generation directory name.
    pub generation: String,
    /// Indexed passages.
    pub segments: u64,
    /// Last change-log sequence applied to it.
    pub applied_seq: i64,
}

/// Named crash points, honoured when `HELPDEX_FAILPOINT` names one: the process aborts there.
/// Used by the crash-recovery tests against the real binary; inert otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// SQLite committed a batch, tantivy not yet touched.
    AfterSqliteCommit,
    /// tantivy documents added, commit not yet made.
    BeforeTantivyCommit,
    /// tantivy committed, changes not yet pruned.
    AfterTantivyCommit,
    /// Halfway through a rebuild into a new generation.
    MidRebuild,
    /// New generation live in SQLite, old directory not yet deleted.
    AfterSwapBeforeGc,
}

impl CrashPoint {
    fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterSqliteCommit => "after_sqlite_commit",
            CrashPoint::BeforeTantivyCommit => "before_tantivy_commit",
            CrashPoint::AfterTantivyCommit => "after_tantivy_commit",
            CrashPoint::MidRebuild => "mid_rebuild",
            CrashPoint::AfterSwapBeforeGc => "after_swap_before_gc",
        }
    }
}

fn failpoint(p: CrashPoint) {
    if std::env::var("HELPDEX_FAILPOINT").is_ok_and(|v| v == p.name()) {
        eprintln!("helpdex: failpoint {} reached, aborting", p.name());
        std::process::abort();
    }
}

/// Outcome of a rebuild.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildReport {
    /// New live generation.
    pub generation: String,
    /// Translations indexed.
    pub translations: usize,
    /// Segments indexed.
    pub segments: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// Store + live index.
pub struct Engine {
    data_dir: PathBuf,
    store: Mutex<Store>,
    live: ArcSwap<IndexHandle>,
    writer: Mutex<Option<IndexWriter>>,
    writable: bool,
    /// Normalizer options used by sync.
    pub normalize: NormalizeOptions,
}

fn tantivy_root(data_dir: &Path) -> PathBuf {
    data_dir.join("tantivy")
}

impl Engine {
    /// Opens the data directory for writing, repairing the index from the store if needed.
    pub fn open(data_dir: &Path, normalize: NormalizeOptions) -> Result<Engine> {
        let store = Store::open(data_dir)?;
        let root = tantivy_root(data_dir);
        let state = store.index_state()?;
        let mut rebuild_reason = None;
        let handle = match &state {
            Some((generation, schema)) if *schema == SCHEMA_VERSION => {
                match IndexHandle::open(&root.join(generation), generation) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        rebuild_reason =
                            Some(format!("index generation {generation} unreadable: {e}"));
                        None
                    }
                }
            }
            Some((_, schema)) => {
                rebuild_reason = Some(format!("index schema {schema} != {SCHEMA_VERSION}"));
                None
            }
            None => None,
        };
        // An empty bootstrap generation when none is usable; rebuilt right below if the store
        // has content.
        let (handle, fresh) = match handle {
            Some(h) => (h, false),
            None => {
                let generation = new_generation();
                (
                    IndexHandle::open(&root.join(&generation), &generation)?,
                    true,
                )
            }
        };
        let writer = handle.writer()?;
        let engine = Engine {
            data_dir: data_dir.to_path_buf(),
            store: Mutex::new(store),
            live: ArcSwap::from_pointee(handle),
            writer: Mutex::new(Some(writer)),
            writable: true,
            normalize,
        };
        let high = engine.store().high_water()?;
        let payload = engine.live.load().payload();
        if fresh {
            if let Some(r) = rebuild_reason {
                tracing::warn!(reason = %r, "rebuilding the index from the state database");
            }
            engine.rebuild_in_place()?;
        } else if payload.schema != SCHEMA_VERSION || payload.seq > high {
            tracing::warn!(
                payload_seq = payload.seq,
                store_seq = high,
                "index is ahead of or incompatible with the state database; rebuilding from it"
            );
            engine.rebuild()?;
        } else if payload.seq < high {
            let n = engine.apply_pending()?;
            tracing::info!(replayed = n, "index caught up with the state database");
        }
        engine.gc_generations();
        Ok(engine)
    }

    /// Opens without a writer, for searches while another process owns the data directory.
    pub fn open_read_only(data_dir: &Path) -> Result<Engine> {
        let store = Store::open(data_dir)?;
        let Some((generation, _)) = store.index_state()? else {
            return Err(EngineError::Index(IndexError::Io {
                path: tantivy_root(data_dir),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no index yet: run `helpdex sync` first",
                ),
            }));
        };
        let handle = IndexHandle::open(&tantivy_root(data_dir).join(&generation), &generation)?;
        Ok(Engine {
            data_dir: data_dir.to_path_buf(),
            store: Mutex::new(store),
            live: ArcSwap::from_pointee(handle),
            writer: Mutex::new(None),
            writable: false,
            normalize: NormalizeOptions::default(),
        })
    }

    /// Opens for writing, or read-only when another process holds the writer.
    pub fn open_for_search(data_dir: &Path) -> Result<Engine> {
        match Engine::open(data_dir, NormalizeOptions::default()) {
            Err(EngineError::Index(IndexError::Busy(_))) => Engine::open_read_only(data_dir),
            other => other,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether this engine can write.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The state database (locked).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live index generation, for one consistent search.
    pub fn live(&self) -> Arc<IndexHandle> {
        self.live.load_full()
    }

    /// What `status`, `/readyz` and `/v1/admin/status` report about the live index.
    pub fn index_status(&self) -> IndexStatus {
        let live = self.live();
        IndexStatus {
            generation: live.generation.clone(),
            segments: live.num_docs(),
            applied_seq: live.payload().seq,
        }
    }

    /// Commits a batch to SQLite, then brings the index up to date. Returns the number of
    /// translations re-indexed (0 means the index was not written at all).
    pub fn apply(&self, source: &str, batch: &Batch) -> Result<usize> {
        if !self.writable {
            return Err(EngineError::ReadOnly);
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.store().apply(source, batch)?;
        failpoint(CrashPoint::AfterSqliteCommit);
        self.apply_pending_locked(&mut writer)
    }

    /// Applies every change the index has not seen yet.
    pub fn apply_pending(&self) -> Result<usize> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.apply_pending_locked(&mut writer)
    }

    fn apply_pending_locked(&self, writer: &mut Option<IndexWriter>) -> Result<usize> {
        let w = writer.as_mut().ok_or(EngineError::ReadOnly)?;
        let live = self.live.load_full();
        let applied = live.payload().seq;
        let (keys, max) = self.store().changes_after(applied)?;
        if keys.is_empty() {
            return Ok(0);
        }
        for key in &keys {
            let doc = self.store().index_doc(key)?;
            live.put(w, key, doc.as_ref())?;
        }
        failpoint(CrashPoint::BeforeTantivyCommit);
        live.commit(
            w,
            Payload {
                seq: max,
                schema: SCHEMA_VERSION,
            },
        )?;
        failpoint(CrashPoint::AfterTantivyCommit);
        self.store().prune_changes(max)?;
        Ok(keys.len())
    }

    /// Rebuilds the whole index from the store into a new generation, while searches keep
    /// using the old one, then swaps atomically (zero downtime).
    pub fn rebuild(&self) -> Result<RebuildReport> {
        if !self.writable {
            return Err(EngineError::ReadOnly);
        }
        let started = std::time::Instant::now();
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let generation = new_generation();
        let dir = tantivy_root(&self.data_dir).join(&generation);
        let handle = IndexHandle::open(&dir, &generation)?;
        let mut w = handle.writer()?;
        let (n, seq) = self.fill(&handle, &mut w)?;
        let old = self.live.load_full();
        self.store().set_index_state(&generation, SCHEMA_VERSION)?;
        failpoint(CrashPoint::AfterSwapBeforeGc);
        let segments = handle.num_docs();
        self.live.store(Arc::new(handle));
        *writer = Some(w);
        drop(writer);
        self.store().prune_changes(seq)?;
        if old.dir != dir {
            remove_dir_logged(&old.dir);
        }
        Ok(RebuildReport {
            generation,
            translations: n,
            segments,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// First build of a fresh bootstrap generation (nothing to keep serving meanwhile).
    fn rebuild_in_place(&self) -> Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.live.load_full();
        let w = writer.as_mut().ok_or(EngineError::ReadOnly)?;
        let (_, seq) = self.fill(&live, w)?;
        self.store()
            .set_index_state(&live.generation, SCHEMA_VERSION)?;
        self.store().prune_changes(seq)?;
        Ok(())
    }

    /// Indexes every published translation into `handle` and commits at the store's current
    /// change seq; then catches up with anything newer.
    fn fill(&self, handle: &IndexHandle, w: &mut IndexWriter) -> Result<(usize, i64)> {
        let (keys, seq) = {
            let s = self.store();
            (s.all_doc_keys()?, s.high_water()?)
        };
        w.delete_all_documents().map_err(IndexError::from)?;
        let half = keys.len() / 2;
        for (i, key) in keys.iter().enumerate() {
            if i == half {
                failpoint(CrashPoint::MidRebuild);
            }
            let doc = self.store().index_doc(key)?;
            handle.put(w, key, doc.as_ref())?;
        }
        handle.commit(
            w,
            Payload {
                seq,
                schema: SCHEMA_VERSION,
            },
        )?;
        Ok((keys.len(), seq))
    }

    /// A canonical, sorted dump of the live index (doc key, ordinal, segment hash, visibility,
    /// access tokens): what tests compare to prove two data directories hold the same index.
    pub fn dump_index(&self) -> Result<Vec<String>> {
        use tantivy::schema::Value;
        let live = self.live();
        let f = live.fields;
        let searcher = live.reader.searcher();
        let mut out = Vec::new();
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            for doc_id in reader.doc_ids_alive() {
                let addr = tantivy::DocAddress::new(ord as u32, doc_id);
                let d: tantivy::TantivyDocument = searcher.doc(addr).map_err(IndexError::from)?;
                let s = |fl| {
                    d.get_first(fl)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let mut access: Vec<String> = d
                    .get_all(f.access)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                access.sort();
                let n = d
                    .get_first(f.ordinal)
                    .and_then(|v| v.as_u64())
                    .unwrap_or_default();
                out.push(format!(
                    "{} #{n} {} {} {}",
                    s(f.doc_key),
                    s(f.segment_hash),
                    s(f.visibility),
                    access.join(",")
                ));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes every generation directory that is not live (crashed rebuilds, old generations).
    fn gc_generations(&self) {
        let live = self.live.load().generation.clone();
        let root = tantivy_root(&self.data_dir);
        let Ok(entries) = std::fs::read_dir(&root) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy() != live && e.path().is_dir() {
                remove_dir_logged(&e.path());
            }
        }
    }
}

fn remove_dir_logged(dir: &Path) {
    // Linux unlinks files still mmapped by in-flight searches safely; their Arc keeps the
    // mappings valid until the last search finishes.
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not delete an old index generation");
    }
}

fn new_generation() -> String {
    format!("gen-{}", uuid::Uuid::new_v4().simple())
}
