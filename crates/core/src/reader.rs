//! Live readers of a data directory: every query (CLI `search`, `context`, `explain`,
//! `status`, MCP, the HTTP handlers) reads through a [`Reader`].
//!
//! A reader never takes the writer's lock and never writes: it opens SQLite read-only
//! connections of its own (WAL lets them read while the writer commits) and the live tantivy
//! generation read-only. It sees every commit within about a second, in the same process or
//! another: tantivy's reader follows `meta.json` by itself, and the generation pointer (a row in
//! SQLite that a rebuild switches) is re-read at most every [`POINTER_CHECK`] when the reader
//! is used.

use crate::index::{Generation, IndexError};
use crate::store::{ReadStore, StoreError, StoreRead};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How often a reader re-reads the live generation pointer (at most; only when used).
pub const POINTER_CHECK: Duration = Duration::from_millis(250);

/// Why a data directory cannot be read; each says what to do.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The directory does not exist.
    #[error(
        "no helpdex data directory at {dir}: check --data-dir / HELPDEX_DATA_DIR, or run `helpdex sync` to create it"
    )]
    NoDataDir {
        /// The directory given.
        dir: PathBuf,
    },
    /// The directory exists but no sync has completed there.
    #[error(
        "the data directory {dir} has not been synced yet: run `helpdex sync` (or wait for `helpdex serve` to finish its first sync)"
    )]
    NotSynced {
        /// The directory.
        dir: PathBuf,
    },
    /// The index is missing or unreadable; the writer rebuilds it from SQLite.
    #[error(
        "the search index in {dir} is missing or unreadable ({reason}); it is rebuilt from the state database by the next `helpdex sync` or `helpdex reindex`"
    )]
    IndexUnavailable {
        /// The data directory.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A live reader of one data directory.
pub struct Reader {
    dir: PathBuf,
    pool: Mutex<Vec<ReadStore>>,
    live: ArcSwap<Option<Arc<Generation>>>,
    checked: Mutex<Option<Instant>>,
    /// Set once a sync has completed: from then on the directory stays ready.
    ready: std::sync::atomic::AtomicBool,
    /// The writer of this process keeps the pointer itself; no need to poll SQLite for it.
    follows_writer: bool,
    /// Access and locale filters (and the BM25 statistics over them) of the current index
    /// state.
    filters: crate::search::filter::FilterCache,
    /// The model questions are embedded with, when hybrid retrieval is on.
    embedder: std::sync::RwLock<Option<Arc<dyn crate::vectors::TextEmbedder>>>,
    /// This reader's copy of the passage vectors of that model.
    vectors: crate::vectors::VectorCache,
}

impl Reader {
    /// Opens `dir` for reading. Fails when the directory or its state database does not exist;
    /// an index not built yet is reported when a query needs it.
    pub fn open(dir: &Path) -> Result<Reader, ReadError> {
        if !dir.is_dir() {
            return Err(ReadError::NoDataDir {
                dir: dir.to_path_buf(),
            });
        }
        let store = match ReadStore::open(dir) {
            Ok(s) => s,
            Err(StoreError::Missing { .. }) | Err(StoreError::NeedsUpgrade { found: 0, .. }) => {
                return Err(ReadError::NotSynced {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Reader {
            dir: dir.to_path_buf(),
            pool: Mutex::new(vec![store]),
            live: ArcSwap::from_pointee(None),
            checked: Mutex::new(None),
            ready: Default::default(),
            follows_writer: false,
            filters: Default::default(),
            embedder: Default::default(),
            vectors: Default::default(),
        })
    }

    /// The reader of the writer's own process: shares the writer's live generation, which the
    /// writer swaps itself.
    pub(crate) fn for_writer(dir: &Path, live: Arc<Generation>) -> Result<Reader, ReadError> {
        let r = Reader::open(dir)?;
        r.live.store(Arc::new(Some(live)));
        Ok(Reader {
            follows_writer: true,
            ..r
        })
    }

    /// Turns hybrid retrieval on: questions are embedded with `model` and searched against
    /// the stored passage vectors of that model beside BM25 (passages without a vector yet are
    /// ranked by BM25 alone).
    pub fn set_embedder(&self, model: Arc<dyn crate::vectors::TextEmbedder>) {
        *self.embedder.write().unwrap_or_else(|p| p.into_inner()) = Some(model);
    }

    /// The model set by [`Reader::set_embedder`].
    pub fn embedder(&self) -> Option<Arc<dyn crate::vectors::TextEmbedder>> {
        self.embedder
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// This reader's passage vectors.
    pub(crate) fn vector_cache(&self) -> &crate::vectors::VectorCache {
        &self.vectors
    }

    /// The filter cache of searches through this reader.
    pub(crate) fn filters(&self) -> &crate::search::filter::FilterCache {
        &self.filters
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on a pooled read-only connection (one is opened when none is free).
    pub fn store<T>(
        &self,
        f: impl FnOnce(&mut ReadStore) -> Result<T, StoreError>,
    ) -> Result<T, ReadError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => ReadStore::open(&self.dir)?,
        };
        let out = f(&mut conn);
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        Ok(out?)
    }

    /// Whether a sync has completed in this data directory (searches answer only then).
    pub fn is_ready(&self) -> Result<bool, ReadError> {
        use std::sync::atomic::Ordering;
        if self.ready.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let ready = self.store(|s| Ok(s.sources()?.iter().any(|s| s.syncs > 0)))?;
        if ready {
            self.ready.store(true, Ordering::Relaxed);
        }
        Ok(ready)
    }

    /// Fails with [`ReadError::NotSynced`] until a sync has completed.
    pub fn ensure_ready(&self) -> Result<(), ReadError> {
        if self.is_ready()? {
            Ok(())
        } else {
            Err(ReadError::NotSynced {
                dir: self.dir.clone(),
            })
        }
    }

    /// The live index generation, for one consistent search. Re-reads the generation pointer
    /// when the last check is older than [`POINTER_CHECK`].
    pub fn generation(&self) -> Result<Arc<Generation>, ReadError> {
        if !self.follows_writer {
            let due = {
                let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
                let due = checked.is_none_or(|t| t.elapsed() >= POINTER_CHECK);
                if due {
                    *checked = Some(Instant::now());
                }
                due
            };
            if due {
                self.follow_pointer()?;
            }
        }
        match self.live.load().as_ref() {
            Some(g) => Ok(g.clone()),
            None => Err(ReadError::NotSynced {
                dir: self.dir.clone(),
            }),
        }
    }

    /// Opens the generation SQLite names, when it is not the one already open.
    fn follow_pointer(&self) -> Result<(), ReadError> {
        let Some(state) = self.store(|s| s.index_state())? else {
            return Ok(());
        };
        if let Some(g) = self.live.load().as_ref()
            && g.name == state.generation
        {
            return Ok(());
        }
        let dir = self
            .dir
            .join(crate::engine::TANTIVY_DIR)
            .join(&state.generation);
        match Generation::open(&dir, &state.generation) {
            Ok(g) => {
                self.live.store(Arc::new(Some(Arc::new(g))));
                Ok(())
            }
            // Keep serving the generation already open (a rebuild may be deleting it right
            // now, in which case the pointer moves on and the next check follows it).
            Err(_) if self.live.load().is_some() => Ok(()),
            Err(e) => Err(ReadError::IndexUnavailable {
                dir: self.dir.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Points this process's reader at a new generation (the writer's swap).
    pub(crate) fn set_generation(&self, g: Arc<Generation>) {
        self.live.store(Arc::new(Some(g)));
    }

    /// What `status`, `/readyz` and `/v1/admin/status` report about the live index.
    pub fn index_status(&self) -> Result<IndexStatus, ReadError> {
        let g = self.generation()?;
        Ok(IndexStatus {
            generation: g.name.clone(),
            passages: g.num_docs(),
            applied_seq: g.payload().seq,
        })
    }

    /// A canonical, sorted dump of the live index (doc key, ordinal, passage hash,
    /// visibility, access tokens): what tests compare to prove two data directories hold the
    /// same index.
    pub fn dump_index(&self) -> Result<Vec<String>, ReadError> {
        use tantivy::schema::Value;
        let live = self.generation()?;
        let f = &live.fields;
        let searcher = live.reader.searcher();
        let unavailable = |e: tantivy::TantivyError| ReadError::IndexUnavailable {
            dir: self.dir.clone(),
            reason: IndexError::from(e).to_string(),
        };
        let mut out = Vec::new();
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            for doc_id in reader.doc_ids_alive() {
                let addr = tantivy::DocAddress::new(ord as u32, doc_id);
                let d: tantivy::TantivyDocument = searcher.doc(addr).map_err(unavailable)?;
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
                    s(f.passage_hash),
                    s(f.visibility),
                    access.join(",")
                ));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The live index generation in brief.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IndexStatus {
    /// Generation directory name.
    pub generation: String,
    /// Indexed passages.
    pub passages: u64,
    /// Last change-log sequence applied to it.
    pub applied_seq: i64,
}

/// A reader opened on first use and retried until it opens: a long-lived front end (`helpdex
/// mcp`) started before the first sync answers "not synced yet, run `helpdex sync`" on each
/// call instead of refusing to start, and serves as soon as the directory is synced.
pub struct LazyReader {
    dir: PathBuf,
    slot: Mutex<Option<Arc<Reader>>>,
    embedder: Option<Arc<dyn crate::vectors::TextEmbedder>>,
}

impl LazyReader {
    /// A reader of `dir`, opened when first needed.
    pub fn new(dir: &Path) -> LazyReader {
        LazyReader {
            dir: dir.to_path_buf(),
            slot: Mutex::new(None),
            embedder: None,
        }
    }

    /// Hybrid retrieval with `model` once the reader opens ([`Reader::set_embedder`]).
    pub fn with_embedder(mut self, model: Arc<dyn crate::vectors::TextEmbedder>) -> LazyReader {
        self.embedder = Some(model);
        self
    }

    /// A reader that is already open.
    pub fn ready(reader: Arc<Reader>) -> LazyReader {
        LazyReader {
            dir: reader.data_dir().to_path_buf(),
            slot: Mutex::new(Some(reader)),
            embedder: None,
        }
    }

    /// The reader, opening it now if it is not open yet.
    pub fn get(&self) -> Result<Arc<Reader>, ReadError> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let r = Arc::new(Reader::open(&self.dir)?);
        if let Some(m) = &self.embedder {
            r.set_embedder(m.clone());
        }
        *slot = Some(r.clone());
        Ok(r)
    }
}
