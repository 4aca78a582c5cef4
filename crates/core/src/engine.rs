//! The writer of a data directory: the SQLite store and the live tantivy generation, kept
//! consistent. One process at a time writes a data directory (it holds
//! `DATA_DIR/writer.lock`); any number of [`Reader`]s read it meanwhile.
//!
//! Write protocol (crash safety, see `ARCHITECTURE.md`): a [`Batch`] is committed to SQLite
//! first, rows + change-log + cursor in one transaction; then the changed doc keys are applied
//! to tantivy, whose commit payload records the last applied change seq. On open, the index
//! replays whatever the store has beyond that seq, or is rebuilt from the store when it is
//! missing, corrupt, of another schema, or ahead of the store.

use crate::index::{Generation, IndexError, Payload, SCHEMA_VERSION};
use crate::normalize::NormalizeOptions;
use crate::reader::{ReadError, Reader};
use crate::store::{Batch, CategoryRow, SectionRow, Store, StoreError, StoreRead};
use crate::visibility::UserSegment;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tantivy::IndexWriter;
use thiserror::Error;

/// Directory of the index generations inside a data directory.
pub const TANTIVY_DIR: &str = "tantivy";
/// The writer's lock file inside a data directory.
pub const LOCK_FILE: &str = "writer.lock";

/// Engine (writer) errors.
#[derive(Debug, Error)]
pub enum EngineError {
    /// From the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// From the index.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// From this process's reader.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The embedding model failed.
    #[error(transparent)]
    Embed(#[from] crate::vectors::EmbedFailed),
    /// Another process writes this data directory.
    #[error(
        "the data directory {dir} is being written by another helpdex process{holder}; wait for it to finish, or ask the running `helpdex serve` through its admin API"
    )]
    Busy {
        /// The data directory.
        dir: PathBuf,
        /// " (pid N)" when the lock file names it.
        holder: String,
    },
    /// The data directory or its lock file cannot be created.
    #[error("cannot use data directory {dir}: {source}")]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, EngineError>;

/// How much [`Engine::compact`] merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// Everything into one segment: after a first sync into an empty index and after a
    /// rebuild, when every segment was just written anyway.
    Full,
    /// After any other run, when more than [`MAX_SEGMENTS`] are left: the small segments
    /// (under 1/16 of the documents each) into one, so a sync of edits merges about what it
    /// wrote, never the whole index.
    Small,
}

/// Segments tantivy's merge policy (groups of 8 similar-size segments) may leave before
/// [`Compaction::Small`] merges the small ones.
pub const MAX_SEGMENTS: usize = 8;

/// Which segments [`Engine::compact`] merges, given each one's id and live documents.
pub fn segments_to_merge<Id: Copy>(sizes: &[(Id, u32)], how: Compaction) -> Vec<Id> {
    match how {
        Compaction::Full => sizes.iter().map(|(id, _)| *id).collect(),
        Compaction::Small if sizes.len() <= MAX_SEGMENTS => Vec::new(),
        Compaction::Small => {
            let total: u64 = sizes.iter().map(|(_, n)| u64::from(*n)).sum();
            sizes
                .iter()
                .filter(|(_, n)| u64::from(*n) * 16 < total)
                .map(|(id, _)| *id)
                .collect()
        }
    }
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RebuildReport {
    /// New live generation.
    pub generation: String,
    /// Translations indexed.
    pub translations: usize,
    /// Passages indexed.
    pub passages: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// Which passages an embedding pass looks at ([`Engine::embed_pending`]).
#[derive(Debug, Clone, Copy)]
pub struct EmbedPass {
    /// Passage rowid after which to look (0: every passage).
    pub from: i64,
    /// Passages per model call.
    pub batch: usize,
    /// Delete unused vectors afterwards.
    pub prune: bool,
}

impl Default for EmbedPass {
    fn default() -> Self {
        EmbedPass {
            from: 0,
            batch: 32,
            prune: true,
        }
    }
}

/// What an embedding pass did ([`Engine::embed_pending`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmbedReport {
    /// Passages embedded.
    pub embedded: u64,
    /// Vectors deleted (other models, passages gone).
    pub pruned: usize,
    /// The last passage rowid looked at: where the next pass may start.
    pub last_rowid: i64,
    /// False when the pass was stopped early.
    pub complete: bool,
    /// Seconds taken.
    pub seconds: f64,
}

/// What the writer holds while it writes: the read-write connection, the live generation and
/// its tantivy writer. One mutex guards all three, so a batch's SQLite commit and its index
/// commit never interleave with another batch's.
struct Writer {
    store: Store,
    live: Arc<Generation>,
    index: IndexWriter,
}

/// The writer of one data directory, with the live [`Reader`] of its own process.
pub struct Engine {
    data_dir: PathBuf,
    writer: Mutex<Writer>,
    reader: Arc<Reader>,
    normalize: NormalizeOptions,
    /// Held for the engine's lifetime: the OS releases it when the process dies.
    _lock: File,
    /// A run started on an empty index (a first sync): it ends with one segment.
    fresh_run: std::sync::atomic::AtomicBool,
}

fn tantivy_root(data_dir: &Path) -> PathBuf {
    data_dir.join(TANTIVY_DIR)
}

/// Takes the data directory's writer lock before anything else is touched, so two writers
/// never race on a fresh directory.
fn lock_data_dir(dir: &Path) -> Result<File> {
    let io = |source| EngineError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(LOCK_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(EngineError::Busy {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // The pid is for the message above only; the lock itself is what counts.
    f.set_len(0).map_err(io)?;
    write!(f, "{}", std::process::id()).map_err(io)?;
    Ok(f)
}

impl Engine {
    /// Opens the data directory for writing, repairing the index from the store if needed.
    pub fn open(data_dir: &Path, normalize: NormalizeOptions) -> Result<Engine> {
        let lock = lock_data_dir(data_dir)?;
        let store = Store::open(data_dir)?;
        let root = tantivy_root(data_dir);
        let state = store.index_state()?;
        let mut rebuild_reason = None;
        let usable = match &state {
            Some(s) if s.schema_version == SCHEMA_VERSION => {
                match Generation::create(&root.join(&s.generation), &s.generation) {
                    Ok(g) => Some(g),
                    Err(e) => {
                        rebuild_reason =
                            Some(format!("index generation {} unreadable: {e}", s.generation));
                        None
                    }
                }
            }
            Some(s) => {
                rebuild_reason = Some(format!(
                    "index schema {} != {SCHEMA_VERSION}",
                    s.schema_version
                ));
                None
            }
            None => None,
        };
        // An empty bootstrap generation when none is usable; filled right below.
        let (live, fresh) = match usable {
            Some(g) => (g, false),
            None => {
                let name = new_generation();
                (Generation::create(&root.join(&name), &name)?, true)
            }
        };
        let index = live.writer()?;
        let live = Arc::new(live);
        let mut writer = Writer { store, live, index };
        let high = writer.store.high_water()?;
        let payload = writer.live.payload();
        if fresh {
            if let Some(r) = rebuild_reason {
                tracing::warn!(reason = %r, "rebuilding the index from the state database");
            }
            let live = writer.live.clone();
            let (_, seq) = fill(&mut writer.store, &live, &mut writer.index)?;
            writer.store.set_index_state(&live.name, SCHEMA_VERSION)?;
            writer.store.prune_changes(seq)?;
        } else if payload.schema != SCHEMA_VERSION || payload.seq > high {
            tracing::warn!(
                payload_seq = payload.seq,
                store_seq = high,
                "index is ahead of or incompatible with the state database; rebuilding from it"
            );
        } else if payload.seq < high {
            let n = apply_pending(&mut writer)?;
            tracing::info!(replayed = n, "index caught up with the state database");
        }
        let needs_rebuild = !fresh && (payload.schema != SCHEMA_VERSION || payload.seq > high);
        let reader = Arc::new(Reader::for_writer(data_dir, writer.live.clone())?);
        let engine = Engine {
            data_dir: data_dir.to_path_buf(),
            writer: Mutex::new(writer),
            reader,
            normalize,
            _lock: lock,
            fresh_run: std::sync::atomic::AtomicBool::new(false),
        };
        if needs_rebuild {
            engine.rebuild()?;
        }
        engine.gc_generations();
        Ok(engine)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The normalizer options sync uses.
    pub fn normalize_options(&self) -> &NormalizeOptions {
        &self.normalize
    }

    /// This process's live reader (it sees each commit of this engine at once).
    pub fn reader(&self) -> &Arc<Reader> {
        &self.reader
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a source (idempotent) and records the start of a run.
    pub fn start_run(&self, source: &str, base_url: &str) -> Result<()> {
        let w = self.lock();
        w.store.ensure_source(source, base_url)?;
        w.store.mark_started(source)?;
        let fresh = w.live.num_docs() == 0;
        if fresh {
            // Everything is about to be written once, then merged once and made searchable
            // (`finish_run`).
            crate::index::set_bulk(&w.index, true);
            w.live.defer_reloads(true)?;
        }
        self.fresh_run
            .store(fresh, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Records the end of a run: its result, report and, when it ran, the full sweep.
    pub fn finish_run(
        &self,
        source: &str,
        error: Option<&str>,
        report: &serde_json::Value,
        full_sweep_at: Option<i64>,
    ) -> Result<()> {
        // A failed merge costs search speed, not data: the run still counts as finished.
        let full = self
            .fresh_run
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        match self.compact(if full {
            Compaction::Full
        } else {
            Compaction::Small
        }) {
            Ok(0) => {}
            Ok(n) => tracing::info!(segments = n, "merged the index's segments into one"),
            Err(e) => tracing::warn!(error = %e, "could not merge the index's segments"),
        }
        if full {
            // Searchable now, merged or not (a reload that fails now happens at the next
            // commit). After the merge: reloading before it would map all the segments it
            // is about to replace.
            let w = self.lock();
            crate::index::set_bulk(&w.index, false);
            if let Err(e) = w.live.defer_reloads(false) {
                tracing::warn!(error = %e, "could not reload the index after the first sync");
            }
        }
        // Last: a finished first sync is what makes `serve` ready, and its passages must be
        // searchable by then.
        self.lock()
            .store
            .mark_finished(source, error, report, full_sweep_at)?;
        Ok(())
    }

    /// Saves what a run learnt of the help center itself: user segments (`None` when
    /// unreadable), help center state, brand, the hosts citations may point at, sections and
    /// categories.
    #[allow(clippy::too_many_arguments)] // each is one fact of the help center, saved together
    pub fn save_help_center(
        &self,
        source: &str,
        segments: Option<&[UserSegment]>,
        help_center_state: Option<&str>,
        brand: Option<&str>,
        hosts: &[String],
        sections: &[SectionRow],
        categories: &[CategoryRow],
    ) -> Result<()> {
        let mut w = self.lock();
        w.store
            .save_user_segments(source, segments, help_center_state, brand, hosts)?;
        w.store.save_structure(source, sections, categories)?;
        Ok(())
    }

    /// Records the records a sync refused (see [`crate::store::Quarantined`]).
    pub fn save_quarantine(
        &self,
        source: &str,
        records: &[crate::store::Quarantined],
        replace: bool,
    ) -> Result<()> {
        self.lock()
            .store
            .save_quarantine(source, records, replace)?;
        Ok(())
    }

    /// Commits a batch to SQLite, then brings the index up to date. Returns the number of
    /// translations re-indexed (0 means the index was not written at all).
    pub fn apply(&self, source: &str, batch: &Batch) -> Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut w = self.lock();
        w.store.apply(source, batch)?;
        failpoint(CrashPoint::AfterSqliteCommit);
        apply_pending(&mut w)
    }

    /// Rebuilds the whole index from the store into a new generation, while searches keep
    /// using the old one, then swaps atomically (zero downtime).
    pub fn rebuild(&self) -> Result<RebuildReport> {
        let started = std::time::Instant::now();
        let mut w = self.lock();
        let name = new_generation();
        let dir = tantivy_root(&self.data_dir).join(&name);
        let generation = Generation::create(&dir, &name)?;
        let mut index = generation.writer()?;
        crate::index::set_bulk(&index, true);
        let (n, seq) = fill(&mut w.store, &generation, &mut index)?;
        let old = w.live.clone();
        w.store.set_index_state(&name, SCHEMA_VERSION)?;
        failpoint(CrashPoint::AfterSwapBeforeGc);
        let passages = generation.num_docs();
        let generation = Arc::new(generation);
        w.live = generation.clone();
        w.index = index;
        self.reader.set_generation(generation);
        w.store.prune_changes(seq)?;
        drop(w);
        if old.dir != dir {
            remove_dir_logged(&old.dir);
        }
        if let Err(e) = self.compact(Compaction::Full) {
            tracing::warn!(error = %e, "could not merge the rebuilt index's segments");
        }
        crate::index::set_bulk(&self.lock().index, false);
        Ok(RebuildReport {
            generation: name,
            translations: n,
            passages,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Merges segments of the live index ([`segments_to_merge`]) and returns how many were
    /// merged (0: nothing to do). Each search looks every question term up and opens its
    /// postings once per segment (measured at 100k articles: 9 segments, search p50 1.31 ms;
    /// one, 1.15 ms). The merge is started under the writer lock and waited for outside it:
    /// syncs and webhooks go on committing, readers keep the old segments until the merged one
    /// is published with the same commit payload. A process killed mid-merge leaves only
    /// unreferenced files, collected by the next writer.
    pub fn compact(&self, how: Compaction) -> Result<usize> {
        let (merge, live, n) = {
            let mut w = self.lock();
            let metas = w
                .live
                .index
                .searchable_segment_metas()
                .map_err(IndexError::from)?;
            let sizes: Vec<_> = metas.iter().map(|m| (m.id(), m.num_docs())).collect();
            let ids = segments_to_merge(&sizes, how);
            if ids.len() < 2 {
                return Ok(0);
            }
            (w.index.merge(&ids), w.live.clone(), ids.len())
        };
        merge.wait().map_err(IndexError::from)?;
        // The merged segments' files go now, not at the next commit.
        let _ = self.lock().index.garbage_collect_files().wait();
        live.reader.reload().map_err(IndexError::from)?;
        Ok(n)
    }

    /// The highest passage rowid (see [`EmbedPass::from`]).
    pub fn last_passage_rowid(&self) -> Result<i64> {
        Ok(self.lock().store.last_passage_rowid()?)
    }

    /// Embeds the passages whose vector of `model` is missing among those stored after
    /// passage rowid `from` (0: all of them, e.g. after a model change; a later pass starts
    /// from the previous [`EmbedReport::last_rowid`], since new and edited passages always get
    /// higher rowids), `batch` passages per model call. With `prune`, then deletes vectors
    /// nothing reads any more. The store is locked only to read a page of pending passages
    /// and to write a batch of vectors, never while the model runs, so syncs go on
    /// meanwhile; what they add is picked up by the same pass. `progress(done, pending)` is
    /// called after each batch (`pending` known only for a pass from 0); returning false stops
    /// the pass (what was stored stays).
    pub fn embed_pending(
        &self,
        model: &dyn crate::vectors::TextEmbedder,
        pass: EmbedPass,
        progress: &mut dyn FnMut(u64, Option<u64>) -> bool,
    ) -> Result<EmbedReport> {
        let started = std::time::Instant::now();
        let id = model.model_id().to_string();
        let total = {
            let w = self.lock();
            w.store.set_vector_model(&id)?;
            if pass.from == 0 {
                Some(w.store.vector_coverage(&id)?.pending())
            } else {
                None
            }
        };
        let mut done = 0u64;
        let mut after = pass.from;
        let mut stopped = false;
        'pages: loop {
            let (last, todo) = self.lock().store.pending_vectors(&id, after, 1024)?;
            if last == after {
                break;
            }
            for chunk in todo.chunks(pass.batch.max(1)) {
                let inputs: Vec<String> = chunk
                    .iter()
                    .map(|(_, title, text)| crate::vectors::embed_input(title, text))
                    .collect();
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let vectors = model.embed_passages(&refs)?;
                if vectors.len() != chunk.len() || vectors.iter().any(|v| v.len() != model.dim()) {
                    return Err(crate::vectors::EmbedFailed(format!(
                        "the model returned {} vectors for {} passages (dimension {} expected)",
                        vectors.len(),
                        chunk.len(),
                        model.dim()
                    ))
                    .into());
                }
                let rows: Vec<(i64, Vec<f32>)> =
                    chunk.iter().map(|(k, _, _)| *k).zip(vectors).collect();
                self.lock().store.put_vectors(&id, &rows)?;
                done += rows.len() as u64;
                if !progress(done, total.map(|t| t.max(done))) {
                    stopped = true;
                    break 'pages;
                }
            }
            after = last;
        }
        let pruned = if pass.prune && !stopped {
            self.lock().store.prune_vectors(&id)?
        } else {
            0
        };
        Ok(EmbedReport {
            embedded: done,
            pruned,
            last_rowid: after,
            complete: !stopped,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Deletes every generation directory that is not live (crashed rebuilds, old generations).
    fn gc_generations(&self) {
        let live = self.lock().live.name.clone();
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

/// Applies every change the index has not seen yet.
fn apply_pending(w: &mut Writer) -> Result<usize> {
    let applied = w.live.payload().seq;
    let (keys, max) = w.store.changes_after(applied)?;
    if keys.is_empty() {
        return Ok(0);
    }
    for key in &keys {
        let doc = w.store.index_doc(key)?;
        w.live.put(&w.index, key, doc.as_ref())?;
    }
    failpoint(CrashPoint::BeforeTantivyCommit);
    w.live.commit(
        &mut w.index,
        Payload {
            seq: max,
            schema: SCHEMA_VERSION,
        },
    )?;
    failpoint(CrashPoint::AfterTantivyCommit);
    w.store.prune_changes(max)?;
    Ok(keys.len())
}

/// Indexes every published translation into `generation` and commits at the store's current
/// change seq.
fn fill(
    store: &mut Store,
    generation: &Generation,
    index: &mut IndexWriter,
) -> Result<(usize, i64)> {
    let keys = store.all_doc_keys()?;
    let seq = store.high_water()?;
    index.delete_all_documents().map_err(IndexError::from)?;
    let half = keys.len() / 2;
    for (i, key) in keys.iter().enumerate() {
        if i == half {
            failpoint(CrashPoint::MidRebuild);
        }
        let doc = store.index_doc(key)?;
        generation.put(index, key, doc.as_ref())?;
    }
    generation.commit(
        index,
        Payload {
            seq,
            schema: SCHEMA_VERSION,
        },
    )?;
    Ok((keys.len(), seq))
}

fn remove_dir_logged(dir: &Path) {
    // Linux unlinks files still mmapped by in-flight searches safely; their Arc keeps the
    // mappings valid until the last search finishes, in this process or a reader's.
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not delete an old index generation");
    }
}

fn new_generation() -> String {
    format!("gen-{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::segments_to_merge;

    #[test]
    fn a_first_sync_merges_everything_later_runs_only_the_small_segments() {
        use super::Compaction::{Full, Small};
        let first = [(1, 60_000), (2, 50_000), (3, 50_000), (4, 9_000)];
        assert_eq!(segments_to_merge(&first, Full), [1, 2, 3, 4]);
        // Few segments: nothing to do after an ordinary run.
        assert!(segments_to_merge(&first, Small).is_empty());
        // Edits after it: the big segments stay, the small ones merge.
        let edited = [
            (1, 250_000),
            (2, 240_000),
            (3, 260_000),
            (4, 400),
            (5, 300),
            (6, 500),
            (7, 100),
            (8, 90),
            (9, 700),
        ];
        assert_eq!(segments_to_merge(&edited, Small), [4, 5, 6, 7, 8, 9]);
        assert!(segments_to_merge::<u8>(&[], Full).is_empty());
    }
}
