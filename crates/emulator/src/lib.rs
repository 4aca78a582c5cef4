//! A faithful stand-in for the Zendesk Help Center API, served over real HTTP.
//!
//! Nobody can reach a live Zendesk from the tests, the demo or the benchmarks, so this module
//! serves a fixture directory ([`World::load`], layout in `fixtures/README.md`) with Zendesk's
//! paths, bodies, headers and quirks as recorded in `zendesk-api.md`: the inclusive
//! incremental export whose boundary records repeat (and stall when more than a page shares a
//! second), cursor and offset pagination, per-locale translations, 404 for archived articles,
//! Basic/Bearer auth with Zendesk's 401 bodies, 403 on `/user_segments` for non-admins, and a
//! per-window request budget answering 429 with `Retry-After`.
//!
//! Tests script the world while the server runs ([`Emulator::edit_body`], [`Emulator::archive`]
//! ...) and break it on purpose ([`Emulator::fail_next`], [`Emulator::fault_next`] with the
//! recorded failure shapes of [`Fault`], [`Emulator::patch_article`] for malformed or hostile
//! records, [`Emulator::revoke_credentials`]...); every request is recorded
//! ([`Emulator::requests`]). [`Synthetic`] generates a help center of any size (benchmarks,
//! request-budget tests).

mod faults;
mod pagination;
mod server;
mod synthetic;
mod world;

pub use faults::Fault;
pub use synthetic::{FIRST_ID, SYNTHETIC_EMAIL, SYNTHETIC_TOKEN, Synthetic};
pub use world::{World, slug};

use faults::{Faults, RateLimiter};
use server::{Shared, lock};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// Errors of the emulator: fixture loading and binding the listener.
#[derive(Debug, Error)]
pub enum EmulatorError {
    /// A fixture file or directory cannot be read.
    #[error("cannot read fixture {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A fixture file is not valid JSON.
    #[error("fixture {path} is not valid JSON: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where parsing failed.
        source: serde_json::Error,
    },
    /// A fixture file is JSON but not in the expected shape.
    #[error("fixture {path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        what: String,
    },
    /// The listen address cannot be bound.
    #[error("emulator cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("emulator server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A request budget per window: Zendesk plans allow 200 to 2500 requests per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (`X-Rate-Limit`).
    pub per_window: u32,
    /// Window length (a minute on Zendesk; shorter in tests).
    pub window: Duration,
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Request budget; `None` serves without limit and without the `X-Rate-Limit` headers
    /// (so clients never pace themselves against a budget that does not exist).
    pub rate_limit: Option<RateLimit>,
    /// Articles per incremental export page (Zendesk: 1000; small values exercise paging).
    pub incremental_page_size: usize,
    /// Base of `html_url`s; default the brand's `host_mapping` when set, else the bound address.
    pub public_url: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            rate_limit: None,
            incremental_page_size: 1000,
            public_url: None,
        }
    }
}

/// One request the emulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// URL path, e.g. `/api/v2/help_center/incremental/articles.json`.
    pub path: String,
    /// Raw query string (still percent-encoded), empty when absent.
    pub query: String,
    /// Status answered.
    pub status: u16,
    /// Role of the authenticated caller (`admin`, `agent`, `end_user`); `None` when anonymous
    /// or not authenticated.
    pub role: Option<String>,
}

/// `http://{addr}`, with an unspecified bind address (`0.0.0.0`) shown as loopback.
fn base_for(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn shared(world: World, cfg: &EmulatorConfig, addr: SocketAddr) -> Arc<Shared> {
    let api_base = base_for(addr);
    let public_base = cfg
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_string())
        .or_else(|| world.mapped_host())
        .unwrap_or_else(|| api_base.clone());
    Arc::new(Shared {
        world: std::sync::Mutex::new(world),
        faults: std::sync::Mutex::new(Faults::default()),
        limiter: cfg
            .rate_limit
            .map(|r| std::sync::Mutex::new(RateLimiter::new(r))),
        log: std::sync::Mutex::new(Vec::new()),
        segments_forbidden: AtomicBool::new(false),
        revoked: AtomicBool::new(false),
        sections_loop: AtomicBool::new(false),
        export_end_time: std::sync::Mutex::new(None),
        archive_after: std::sync::Mutex::new(Vec::new()),
        cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        api_base,
        public_base,
        page_size: cfg.incremental_page_size.max(1),
    })
}

/// Serves `world` on `listener` until Ctrl-C (`helpdex emulate`).
pub async fn serve(
    world: World,
    cfg: EmulatorConfig,
    listener: tokio::net::TcpListener,
) -> Result<(), EmulatorError> {
    let addr = listener.local_addr().map_err(EmulatorError::Serve)?;
    let app = server::app(shared(world, &cfg, addr));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .map_err(EmulatorError::Serve)
}

/// A running emulator on a local port. Stops when dropped or on [`Emulator::shutdown`].
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Binds `addr` (port 0 picks a free port) and serves `world` in the background.
    pub async fn start(
        world: World,
        cfg: EmulatorConfig,
        addr: SocketAddr,
    ) -> Result<Emulator, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let shared = shared(world, &cfg, bound);
        let cancel = CancellationToken::new();
        let app = server::app(shared.clone());
        let stop = cancel.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        Ok(Emulator {
            shared,
            addr: bound,
            cancel,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.api_base.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests and waits (up to 5 s) for in-flight ones to finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        lock(&self.shared.world)
    }

    // ---- world mutations ----

    /// Replaces the body of one translation (created from the source title if missing);
    /// that translation's `updated_at` and the article's move to a new second.
    pub fn edit_body(&self, id: u64, locale: &str, body: &str) {
        self.world().edit_body(id, locale, body);
    }

    /// Replaces the title of one translation, like [`Emulator::edit_body`].
    pub fn edit_title(&self, id: u64, locale: &str, title: &str) {
        self.world().edit_title(id, locale, title);
    }

    /// Unpublishes (`draft: true`) or republishes one translation; the source locale's draft
    /// flag is the article's.
    pub fn set_draft(&self, id: u64, locale: &str, draft: bool) {
        self.world().set_draft(id, locale, draft);
    }

    /// Archives the article: gone from the export and listings, 404 on show.
    pub fn archive(&self, id: u64) {
        self.world().archive(id);
    }

    /// Deletes the article (the API cannot tell this from archiving).
    pub fn delete(&self, id: u64) {
        self.world().delete(id);
    }

    /// Sets `user_segment_ids` (and `user_segment_id` = the first, or null); `updated_at` moves.
    pub fn set_segments(&self, id: u64, segment_ids: Vec<u64>) {
        self.world().set_segments(id, segment_ids);
    }

    /// Moves the article to another section; `updated_at` moves.
    pub fn move_section(&self, id: u64, section_id: u64) {
        self.world().move_section(id, section_id);
    }

    /// Adds (or replaces) an article given as an `articles/<id>.json` document; it is created
    /// now (timestamps from the emulator clock). An invalid document is logged and ignored.
    pub fn add_article(&self, article: serde_json::Value) {
        if let Err(e) = self.world().add_article(&article) {
            tracing::error!(error = %e, "emulator: add_article ignored an invalid article");
        }
    }

    /// Gives these articles' source translations one identical new `updated_at` second, like a
    /// bulk import: with more of them than an export page, `next_page` repeats forever.
    pub fn touch_many_same_second(&self, ids: &[u64]) {
        self.world().touch_many_same_second(ids);
    }

    /// Changes a body without moving any timestamp (Zendesk's bulk-import quirk): invisible to
    /// the incremental export, only a full comparison finds it.
    pub fn bulk_edit_without_timestamp(&self, id: u64, locale: &str, body: &str) {
        self.world().bulk_edit_without_timestamp(id, locale, body);
    }

    /// A new revision of a translation's body (synthetic bodies are regenerated; given text
    /// gets a sentence more); its `updated_at` moves.
    pub fn revise(&self, id: u64, locale: &str) {
        self.world().revise(id, locale);
    }

    /// Deletes a translation other than the source one, moving no timestamp: only a complete
    /// listing (helpdex's full sweep) can notice it.
    pub fn delete_translation(&self, id: u64, locale: &str) {
        self.world().delete_translation(id, locale);
    }

    /// Forces fields into every rendering of an article (export, listings, show): malformed or
    /// hostile values as recorded in the wild (`{"id": "1002"}`, `{"user_segment_ids":
    /// ["12"]}`, `{"html_url": "javascript:alert(1)//"}`, a far-future `updated_at`...). The
    /// string `"$remove"` removes a field (`{"draft": "$remove"}`).
    pub fn patch_article(&self, id: u64, fields: serde_json::Value) {
        if let serde_json::Value::Object(m) = fields {
            self.world().patch(id, m);
        }
    }

    /// Serves `record` as it is in the export, at the emulator's latest second (a malformed
    /// record without a usable id, say).
    pub fn add_raw_record(&self, record: serde_json::Value) {
        let mut w = self.world();
        let at = w.last_tick();
        w.add_raw_record(at, record);
    }

    /// Every live article id.
    pub fn live_ids(&self) -> Vec<u64> {
        self.world().live_ids()
    }

    /// Fixes the emulator clock: the next mutation is stamped `unix_secs`, each later one a
    /// second more (wall time is no longer used).
    pub fn set_clock(&self, unix_secs: i64) {
        self.world().set_clock(unix_secs);
    }

    // ---- faults ----

    /// Answers the next `n` API requests with `status` (5xx: Zendesk's JSON error body).
    pub fn fail_next(&self, n: usize, status: u16) {
        lock(&self.shared.faults).fail_next(n, status);
    }

    /// Answers the next `n` API requests with 200 and the first half of the JSON body;
    /// `truncate_next(0)` clears.
    pub fn truncate_next(&self, n: usize) {
        lock(&self.shared.faults).truncate_next(n);
    }

    /// Sleeps `d` before answering each of the next `n` API requests.
    pub fn delay_next(&self, n: usize, d: Duration) {
        lock(&self.shared.faults).delay_next(n, d);
    }

    /// Breaks the next `n` API requests whose path contains `path_contains` (`""` for any) in
    /// the way `fault` says; these go before the untargeted faults.
    pub fn fault_next(&self, n: usize, path_contains: &str, fault: Fault) {
        lock(&self.shared.faults).add(n, path_contains, fault);
    }

    /// Forgets every pending fault (scripted failures, delays, targeted faults).
    pub fn clear_faults(&self) {
        *lock(&self.shared.faults) = Faults::default();
    }

    /// Makes every credential answer 401, as a token revoked in Zendesk does.
    pub fn revoke_credentials(&self, yes: bool) {
        self.shared.revoked.store(yes, Ordering::Relaxed);
    }

    /// Makes the sections listing loop: its cursor always leads back to its first page.
    pub fn set_sections_loop(&self, yes: bool) {
        self.shared.sections_loop.store(yes, Ordering::Relaxed);
    }

    /// Answers this `end_time` on every export page (`Some(99999999999)`: recorded far-future
    /// value); `None` restores the real one.
    pub fn set_export_end_time(&self, end_time: Option<i64>) {
        *lock(&self.shared.export_end_time) = end_time;
    }

    /// Archives article `id` right after the first answer to a path containing
    /// `path_contains`: the race of an article archived in the middle of a sync.
    pub fn archive_after(&self, path_contains: &str, id: u64) {
        lock(&self.shared.archive_after).push((path_contains.to_string(), id));
    }

    /// Makes `/user_segments` answer 403 even for admins (a token that lost its Guide role).
    pub fn set_segments_forbidden(&self, yes: bool) {
        self.shared.segments_forbidden.store(yes, Ordering::Relaxed);
    }

    // ---- request log ----

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// How many requests were answered so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// Forgets the recorded requests.
    pub fn reset_requests(&self) {
        lock(&self.shared.log).clear();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
