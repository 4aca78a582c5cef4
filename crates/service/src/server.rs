//! `helpdex serve`: one long-lived process per deployment running the HTTP API and the
//! scheduled sync over one engine, with graceful shutdown on SIGTERM/SIGINT.
//!
//! The process advertises itself in `DATA_DIR/server.json` (its URL and pid) so that
//! `helpdex reindex` on the same machine asks it to rebuild instead of fighting it for the index
//! writer lock.

use crate::api::{self, AppState};
use crate::auth::ApiKeys;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::schedule::Schedule;
use crate::scheduler::{JobRun, RunOutcome, Runner, Scheduler, SyncRequest};
use helpdex_core::engine::Engine;
use helpdex_sync::{SyncReport, sync_source};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why `helpdex serve` could not start or stopped with an error; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address is not usable.
    #[error("listen address {addr}: {reason}")]
    Listen {
        /// The address as given.
        addr: String,
        /// What is wrong.
        reason: String,
    },
    /// Keys are missing for a non-loopback address.
    #[error("{0}")]
    Refused(String),
    /// A source's schedule does not parse.
    #[error("source '{source_name}': invalid schedule: {reason}")]
    Schedule {
        /// Source name.
        source_name: String,
        /// Parse error.
        reason: String,
    },
    /// The data directory cannot be opened.
    #[error("opening data directory {dir}: {source}")]
    Engine {
        /// Directory.
        dir: PathBuf,
        /// Cause.
        source: helpdex_core::engine::EngineError,
    },
    /// A file of the data directory cannot be written.
    #[error("writing {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP server or a task failed.
    #[error("HTTP server failed: {0}")]
    Server(String),
}

/// Default listen address: loopback, so nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

/// What `DATA_DIR/server.json` records about a running server. The file is readable by its
/// owner only: `key` lets `helpdex reindex` check that whatever answers at `url` is this
/// server (and not another process on a reused port, after a kill -9 left the file behind)
/// before it sends an admin key there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Advert {
    /// Base URL of the API.
    pub url: String,
    /// Process id.
    pub pid: u32,
    /// Hex of the instance key `GET /v1/instance/proof` proves knowledge of.
    #[serde(default)]
    pub key: String,
}

/// Path of the advert file in a data directory.
pub fn advert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server.json")
}

/// Reads the advert of a server using this data directory, if any.
pub fn read_advert(data_dir: &Path) -> Option<Advert> {
    serde_json::from_str(&std::fs::read_to_string(advert_path(data_dir)).ok()?).ok()
}

/// The answer to a challenge: hex of blake3's keyed hash of `nonce` under the instance key.
pub fn prove(key: &[u8; 32], nonce: &str) -> String {
    blake3::keyed_hash(key, nonce.as_bytes())
        .to_hex()
        .to_string()
}

/// Whether `proof` answers `nonce` for the key an advert names (constant-time compare).
pub fn proof_matches(advert: &Advert, nonce: &str, proof: &str) -> bool {
    let Some(key) = decode_key(&advert.key) else {
        return false;
    };
    let Ok(given) = blake3::Hash::from_hex(proof.trim()) else {
        return false;
    };
    blake3::keyed_hash(&key, nonce.as_bytes()) == given
}

fn decode_key(hex: &str) -> Option<[u8; 32]> {
    let h = blake3::Hash::from_hex(hex.trim()).ok()?;
    Some(*h.as_bytes())
}

/// Whether a process with this id exists (Linux: `/proc/PID`; elsewhere assumed, and the
/// challenge decides).
pub fn pid_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        proc.join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Writes the advert, readable by its owner only.
fn write_advert(path: &Path, advert: &Advert) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    std::io::Write::write_all(
        &mut f,
        &serde_json::to_vec(advert).expect("an advert serializes"),
    )?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// How `helpdex serve` runs, besides its configuration.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Listen address (else `[server] listen`, else [`DEFAULT_LISTEN`]).
    pub listen: Option<String>,
    /// Version and commit, for `/version` and `helpdex_build_info`.
    pub build: crate::BuildInfo,
}

/// The sync work of one queued request: [`sync_source`] over the requested sources, recorded
/// in the metrics. The job's cancellation token reaches the sync, which stops after the page it
/// is committing.
pub fn sync_runner(engine: Arc<Engine>, cfg: Arc<Config>, metrics: Arc<Metrics>) -> Runner {
    Arc::new(move |run: JobRun| {
        let (engine, cfg, metrics) = (engine.clone(), cfg.clone(), metrics.clone());
        Box::pin(async move {
            let mut opts = run.request.sync_options();
            opts.cancel = Some(run.cancel.clone());
            let mut report = SyncReport::default();
            for src in cfg
                .sync
                .sources
                .iter()
                .filter(|s| run.request.selects(&s.name))
            {
                let r = sync_source(engine.clone(), &cfg.sync, src, &opts).await;
                metrics.record_sync(&r);
                report.sources.push(r);
            }
            RunOutcome::from_report(report)
        })
    })
}

/// Runs the service until SIGTERM/SIGINT.
pub async fn run(cfg: Config, opts: ServeOptions) -> Result<(), ServeError> {
    let keys = ApiKeys::from_config(&cfg.server);
    let listen = opts
        .listen
        .or_else(|| cfg.server.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let bad = |reason: String| ServeError::Listen {
        addr: listen.clone(),
        reason,
    };
    let addr: SocketAddr = tokio::net::lookup_host(&listen)
        .await
        .map_err(|e| bad(format!("cannot resolve it: {e}")))?
        .next()
        .ok_or_else(|| bad("it resolves to nothing".into()))?;
    if keys.is_empty() {
        if !addr.ip().is_loopback() {
            return Err(ServeError::Refused(format!(
                "no API key is configured, so helpdex serve only listens on loopback (asked for {addr}); \
                 set HELPDEX_CUSTOMER_KEY / HELPDEX_AGENT_KEY / HELPDEX_ADMIN_KEY or [server] keys, or listen on 127.0.0.1"
            )));
        }
        tracing::warn!(%addr, "no API key configured: listening on loopback only, and every local caller is an admin");
    }
    let mut schedules = Vec::new();
    for s in &cfg.sync.sources {
        if let Some(expr) = &s.schedule {
            let sched = Schedule::parse(expr).map_err(|e| ServeError::Schedule {
                source_name: s.name.clone(),
                reason: e.to_string(),
            })?;
            schedules.push((s.name.clone(), sched));
        }
    }
    if cfg.sync.sources.is_empty() {
        tracing::warn!("no help center configured: serving the existing index only (no sync)");
    } else if schedules.is_empty() {
        tracing::warn!(
            "no schedule configured (--schedule / HELPDEX_SCHEDULE / sources.schedule): syncs run only on demand and on webhooks"
        );
    }

    let data_dir = cfg.data_dir.clone();
    let normalize = cfg.normalize.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(&data_dir, normalize))
        .await
        .map_err(|e| ServeError::Server(e.to_string()))?
        .map_err(|source| ServeError::Engine {
            dir: cfg.data_dir.clone(),
            source,
        })?;
    let engine = Arc::new(engine);
    // A configured model that cannot be loaded stops the start: answering by BM25 alone
    // while the operator believes hybrid retrieval is on would be a silent downgrade.
    let model = match &cfg.embeddings {
        Some(e) => Some((
            crate::embeddings::open(e, &cfg.data_dir)
                .await
                .map_err(|e| ServeError::Server(e.to_string()))?,
            e.batch,
        )),
        None => None,
    };
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::new());
    metrics.set_build(&opts.build);
    let cancel = CancellationToken::new();
    let lane = model.map(|(model, batch)| {
        engine.reader().set_embedder(model.clone());
        crate::embeddings::spawn_lane(engine.clone(), model, batch, cancel.clone())
    });
    let scheduler = Scheduler::new(
        schedules,
        sync_runner(engine.clone(), cfg.clone(), metrics.clone()),
        cancel.clone(),
    );
    let worker = tokio::spawn({
        let s = scheduler.clone();
        async move { s.run().await }
    });
    // A fresh `serve` brings every source up to date at once rather than at the first cron
    // fire: `/readyz` and `admin/status` then tell the truth from the start.
    if !cfg.sync.sources.is_empty() && scheduler.trigger(SyncRequest::startup()).is_err() {
        tracing::warn!("the start-up sync could not be queued");
    }

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| bad(format!("cannot listen on it: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| bad(format!("no local address: {e}")))?;
    let state = AppState::new(
        engine.clone(),
        cfg.clone(),
        metrics,
        scheduler.clone(),
        opts.build,
    );
    let advert = Advert {
        url: format!("http://{local}"),
        pid: std::process::id(),
        key: blake3::Hash::from_bytes(*state.instance_key)
            .to_hex()
            .to_string(),
    };
    let advert_file = advert_path(&cfg.data_dir);
    write_advert(&advert_file, &advert).map_err(|source| ServeError::Io {
        path: advert_file.clone(),
        source,
    })?;
    tracing::info!(url = %advert.url, sources = cfg.sync.sources.len(), "helpdex serving");
    // Also on stdout, for scripts that start the server and wait for its address.
    println!("helpdex listening on {}", advert.url);

    tokio::spawn(shutdown_signal(cancel.clone()));
    let served = crate::http::serve(
        listener,
        api::router(state),
        &cfg.server.http,
        cancel.clone(),
    )
    .await;
    tracing::info!("shutting down: waiting for the sync in progress to commit its page");
    cancel.cancel();
    let _ = worker.await;
    if let Some(lane) = lane {
        // It stops after the batch in progress is stored.
        let _ = lane.await;
    }
    let _ = std::fs::remove_file(advert_path(&cfg.data_dir));
    served.map_err(|e| ServeError::Server(e.to_string()))?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = ctrl_c.await;
                cancel.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
    cancel.cancel();
}
