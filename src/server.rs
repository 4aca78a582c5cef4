//! `helpdex serve`: one long-lived process per deployment running the HTTP API and the
//! scheduled sync over one engine, with graceful shutdown on SIGTERM/SIGINT.
//!
//! The process advertises itself in `DATA_DIR/server.json` (its URL and pid) so that
//! `helpdex reindex` on the same machine asks it to rebuild instead of fighting it for the index
//! writer lock.

use crate::api::{self, AppState};
use crate::auth::ApiKeys;
use crate::config::Config;
use crate::engine::Engine;
use crate::service::metrics::Metrics;
use crate::service::schedule::Schedule;
use crate::service::scheduler::{JobRun, RunOutcome, Runner, Scheduler};
use crate::sync::{SyncReport, sync_source};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Default listen address: loopback, so nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

/// What `DATA_DIR/server.json` records about a running server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Advert {
    /// Base URL of the API.
    pub url: String,
    /// Process id.
    pub pid: u32,
}

/// Path of the advert file in a data directory.
pub fn advert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server.json")
}

/// Reads the advert of a server using this data directory, if any.
pub fn read_advert(data_dir: &Path) -> Option<Advert> {
    serde_json::from_str(&std::fs::read_to_string(advert_path(data_dir)).ok()?).ok()
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
            for src in cfg.sources.iter().filter(|s| run.request.selects(&s.name)) {
                let r = sync_source(engine.clone(), &cfg, src, &opts).await;
                metrics.record_sync(&r);
                report.sources.push(r);
            }
            RunOutcome::from_report(report)
        })
    })
}

/// Runs the service until SIGTERM/SIGINT.
pub async fn run(cfg: Config, listen: Option<String>) -> Result<()> {
    let keys = ApiKeys::from_config(&cfg.server);
    let listen = listen
        .or_else(|| cfg.server.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr: SocketAddr = tokio::net::lookup_host(&listen)
        .await
        .with_context(|| format!("cannot resolve listen address {listen}"))?
        .next()
        .with_context(|| format!("listen address {listen} resolves to nothing"))?;
    if keys.is_empty() {
        if !addr.ip().is_loopback() {
            bail!(
                "no API key is configured, so helpdex serve only listens on loopback (asked for {addr}); \
                 set HELPDEX_CUSTOMER_KEY / HELPDEX_AGENT_KEY / HELPDEX_ADMIN_KEY or [server] keys, or listen on 127.0.0.1"
            );
        }
        tracing::warn!(%addr, "no API key configured: listening on loopback only, and every local caller is an admin");
    }
    let mut schedules = Vec::new();
    for s in &cfg.sources {
        if let Some(expr) = &s.schedule {
            let sched = Schedule::parse(expr)
                .with_context(|| format!("source '{}': invalid schedule", s.name))?;
            schedules.push((s.name.clone(), sched));
        }
    }
    if cfg.sources.is_empty() {
        tracing::warn!("no help center configured: serving the existing index only (no sync)");
    } else if schedules.is_empty() {
        tracing::warn!(
            "no schedule configured (--schedule / HELPDEX_SCHEDULE / sources.schedule): syncs run only on demand and on webhooks"
        );
    }

    let data_dir = cfg.data_dir.clone();
    let normalize = cfg.normalize.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(&data_dir, normalize))
        .await?
        .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    let engine = Arc::new(engine);
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::new());
    let cancel = CancellationToken::new();
    let scheduler = Scheduler::new(
        schedules,
        sync_runner(engine.clone(), cfg.clone(), metrics.clone()),
        cancel.clone(),
    );
    let worker = tokio::spawn({
        let s = scheduler.clone();
        async move { s.run().await }
    });

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let advert = Advert {
        url: format!("http://{local}"),
        pid: std::process::id(),
    };
    std::fs::write(advert_path(&cfg.data_dir), serde_json::to_vec(&advert)?)
        .with_context(|| format!("writing {}", advert_path(&cfg.data_dir).display()))?;
    tracing::info!(url = %advert.url, sources = cfg.sources.len(), "helpdex serving");
    // Also on stdout, for scripts that start the server and wait for its address.
    println!("helpdex listening on {}", advert.url);

    tokio::spawn(shutdown_signal(cancel.clone()));
    let state = AppState {
        engine: engine.clone(),
        cfg: cfg.clone(),
        keys,
        metrics,
        scheduler: scheduler.clone(),
    };
    let served = axum::serve(listener, api::router(state))
        .with_graceful_shutdown(cancel.clone().cancelled_owned())
        .await;
    tracing::info!("shutting down: waiting for the sync in progress to commit its page");
    cancel.cancel();
    let _ = worker.await;
    let _ = std::fs::remove_file(advert_path(&cfg.data_dir));
    served.context("HTTP server failed")?;
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
