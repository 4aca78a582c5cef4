//! The sync runner: pulls what changed from each help center and commits it page by page.
//!
//! Per source and run (requests for N articles in L locales):
//! 1. **Context** (4 requests): user segments (fail-closed when unreadable), brands (restricted
//!    help center, citation hosts), sections with their categories sideloaded, locales.
//! 2. **Local repairs** (no network): re-normalization of stored bodies after a normalizer
//!    change, visibility after segment changes.
//! 3. **Export** (⌈N/1000⌉ pages): the incremental export from `start_time=0` when removal
//!    detection is due (every sync by default), else from the cursor. It carries every live
//!    article's own fields and its source-locale translation; an article whose `updated_at`
//!    and visibility did not move is not even normalized. One transaction per page.
//! 4. **Listings** (one request per other locale when nothing changed; ⌈N/100⌉ each on a
//!    first sync): `/{locale}/articles` sorted by `updated_at` descending, read until the cursor
//!    is passed. They bring the other translations, whose edits need not move the export.
//! 5. **Removals**: stored articles absent from a complete export from 0 are confirmed with a
//!    404 on show before they are removed.
//! 6. The cursor moves last, to the newest change received but never past the run's start nor
//!    now, so it only ever covers data already committed.
//!
//! A webhook run syncs one article from the stored context: show (translations embedded) and,
//! only when Zendesk did not embed them, the translations: at most 2 requests.
//!
//! Records are validated one by one: a malformed one is quarantined (reported, never indexed)
//! and the rest commits; a record that does not say who may read it is indexed as internal, one
//! that does not say whether it is a draft as a draft. CPU work (JSON decoding of large pages,
//! normalization, SQLite, tantivy) runs on the blocking pool, one page at a time, so memory is
//! bounded by a page, not by the help center. One failing source never stops the others.

pub mod plan;
pub mod urls;

use helpdex_core::engine::{Engine, EngineError};
use helpdex_core::store::{
    ArticleRow, Batch, CategoryRow, Quarantined, ReadStore, SectionRow, StoreError, StoreRead,
    StoredArticle,
};
use helpdex_core::visibility::{Decision, UNSTATED_SEGMENTS, UserSegment, decide};
use helpdex_zendesk::types::{Article, Translation, valid_locale};
use helpdex_zendesk::{Client, ClientConfig, ZendeskError};
use plan::{ArticleMeta, Outcome, TranslationIn, epoch, next_cursor, plan_article, plan_removal};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use urls::Hosts;

/// A help center to sync.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name.
    pub name: String,
    /// Client settings.
    pub client: ClientConfig,
    /// Cron schedule, as written (used by the service's scheduler).
    pub schedule: Option<String>,
}

/// What to sync and how often the expensive checks run.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Help centers.
    pub sources: Vec<SourceConfig>,
    /// Detect removals (export from `start_time=0`) every N syncs: 1 = every sync (default),
    /// 0 = never.
    pub reconcile_every: u32,
    /// Full hash sweep cadence: every translation listed and compared, which also finds edits
    /// that did not move `updated_at` and deleted translations (None = never).
    pub full_sweep_every: Option<Duration>,
}

/// Sync errors of one source.
#[derive(Debug, Error)]
pub enum SyncError {
    /// Zendesk failed.
    #[error(transparent)]
    Zendesk(#[from] ZendeskError),
    /// Local state failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Local state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Local state could not be read.
    #[error(transparent)]
    Read(#[from] helpdex_core::reader::ReadError),
    /// Shutdown was requested; the pages committed so far are kept and the cursor covers them.
    #[error("stopped by shutdown; the next run resumes from the saved cursor")]
    Cancelled,
    /// The export kept answering the same cursor.
    #[error("the incremental export did not advance past start_time={0}")]
    Stalled(i64),
    /// A blocking task died.
    #[error("internal error: {0}")]
    Internal(String),
}

/// At most this many quarantined or fail-closed records are listed in a report (all are
/// counted).
const REPORT_LIST_CAP: usize = 100;

/// Listing pages are committed together once they hold this many changed translations: one
/// SQLite and one tantivy commit per ~1,000 translations instead of one per 100.
const APPLY_EVERY: usize = 1_000;

/// What one sync did for one source (`helpdex sync --json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceReport {
    /// Source name.
    pub source: String,
    /// `ok` or `error`.
    pub result: String,
    /// Error message, when the source failed.
    pub error: Option<String>,
    /// HTTP requests made (retries included).
    pub requests: u64,
    /// Response bytes read.
    pub bytes: u64,
    /// Article records received from Zendesk (export, listings, stall recovery).
    pub articles_fetched: u64,
    /// Articles new to helpdex (committed).
    pub added: u64,
    /// Articles whose content, visibility or metadata changed (committed).
    pub updated: u64,
    /// Articles fetched whose indexed form did not change.
    pub unchanged: u64,
    /// Articles removed (archived or deleted in Zendesk; committed).
    pub removed: u64,
    /// Translations re-indexed.
    pub index_writes: u64,
    /// Translations re-normalized from stored HTML after a normalizer change.
    pub renormalized: u64,
    /// Translations written whose HTML nested elements deeper than the normalizer keeps
    /// (256 levels): the deeper levels were flattened, their text kept and hidden content
    /// dropped. Each is logged (warning) with its article and locale.
    pub flattened: u64,
    /// Retried requests.
    pub retries: u64,
    /// Seconds spent waiting on rate limits.
    pub rate_limit_wait_secs: f64,
    /// Removal detection ran (a complete export from `start_time=0`).
    pub reconciled: bool,
    /// The full hash sweep ran.
    pub full_sweep: bool,
    /// User segments could not be read; segmented articles were treated as internal.
    pub segments_unreadable: bool,
    /// Records refused as malformed (never indexed).
    pub quarantined_count: u64,
    /// The first of them, with the reason.
    pub quarantined: Vec<Quarantined>,
    /// Records that did not say who may read them or whether they are drafts, indexed as
    /// internal or as drafts (never public).
    pub fail_closed_count: u64,
    /// The first of them, with the reason.
    pub fail_closed: Vec<Quarantined>,
    /// Cursor after the run.
    pub cursor: i64,
    /// Wall time.
    pub seconds: f64,
}

/// What a sync did, per source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// One entry per source.
    pub sources: Vec<SourceReport>,
}

impl SyncReport {
    /// Whether every source succeeded.
    pub fn ok(&self) -> bool {
        self.sources.iter().all(|s| s.error.is_none())
    }
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Force the full hash sweep (also what `reindex --refetch` does).
    pub full: bool,
    /// Only these article ids (webhooks): show (+ translations), from the stored context.
    pub only_articles: Option<Vec<u64>>,
    /// Graceful shutdown: checked after each committed page, so a run stops between pages
    /// with the cursor matching what was stored.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// Called after each committed page (progress bars).
    pub progress: Option<Progress>,
}

/// A progress callback: source name and articles fetched so far in this run.
#[derive(Clone)]
pub struct Progress(pub Arc<ProgressFn>);

/// The signature of a progress callback.
pub type ProgressFn = dyn Fn(&str, u64) + Send + Sync;

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// Syncs every configured source, one after the other.
pub async fn sync_all(engine: Arc<Engine>, cfg: &SyncConfig, opts: &SyncOptions) -> SyncReport {
    let mut report = SyncReport::default();
    for src in &cfg.sources {
        report
            .sources
            .push(sync_source(engine.clone(), cfg, src, opts).await);
    }
    report
}

/// Syncs one source; never panics, reports its error instead.
pub async fn sync_source(
    engine: Arc<Engine>,
    cfg: &SyncConfig,
    src: &SourceConfig,
    opts: &SyncOptions,
) -> SourceReport {
    use tracing::Instrument;
    // The run id ties together every log line of one run, across awaits.
    let span =
        tracing::info_span!("sync", source = %src.name, run = %uuid::Uuid::new_v4().simple());
    run_source(engine, cfg, src, opts).instrument(span).await
}

async fn run_source(
    engine: Arc<Engine>,
    cfg: &SyncConfig,
    src: &SourceConfig,
    opts: &SyncOptions,
) -> SourceReport {
    let started = Instant::now();
    let mut rep = SourceReport {
        source: src.name.clone(),
        ..SourceReport::default()
    };
    let client = match Client::new(src.client.clone()) {
        Ok(c) => c,
        Err(e) => {
            rep.result = "error".into();
            rep.error = Some(e.to_string());
            return rep;
        }
    };
    let run = SourceRun {
        engine: engine.clone(),
        cfg,
        src,
        client: client.clone(),
        cancel: opts.cancel.clone(),
        progress: opts.progress.clone(),
        state: RunState::default(),
    };
    // Only the URL without its userinfo is ever stored or shown.
    let shown_url = client.base_url().to_string();
    let _ = blocking(&engine, {
        let n = src.name.clone();
        move |e| Ok(e.start_run(&n, &shown_url)?)
    })
    .await;
    let (outcome, run) = run.run(opts, &mut rep).await;
    run.state.report(&mut rep);
    let stats = client.stats();
    rep.requests = stats.requests;
    rep.bytes = stats.bytes;
    rep.retries = stats.retries;
    rep.rate_limit_wait_secs = stats.rate_limit_wait_secs;
    rep.seconds = started.elapsed().as_secs_f64();
    let (full_at, err) = match &outcome {
        Ok(full) => (full.then(|| chrono::Utc::now().timestamp()), None),
        Err(e) => (None, Some(client.redact(&e.to_string()))),
    };
    rep.result = if err.is_some() { "error" } else { "ok" }.into();
    rep.error = err.clone();
    match &err {
        Some(e) => tracing::error!(error = %e, "sync failed"),
        None => tracing::info!(
            fetched = rep.articles_fetched,
            added = rep.added,
            updated = rep.updated,
            removed = rep.removed,
            quarantined = rep.quarantined_count,
            flattened = rep.flattened,
            requests = rep.requests,
            seconds = rep.seconds,
            "sync finished"
        ),
    }
    let name = src.name.clone();
    let json = serde_json::to_value(&rep).unwrap_or_default();
    let cursor = blocking(&engine, move |e| {
        e.finish_run(&name, err.as_deref(), &json, full_at)?;
        read(e, |s| {
            Ok(s.source(&name)?.map(|s| s.cursor).unwrap_or_default())
        })
    })
    .await
    .unwrap_or_default();
    rep.cursor = cursor;
    rep
}

/// Runs `f` on a read connection of the engine's data directory (never behind the writer).
fn read<T>(
    e: &Engine,
    f: impl FnOnce(&mut ReadStore) -> Result<T, StoreError>,
) -> Result<T, SyncError> {
    Ok(e.reader().store(f)?)
}

/// Runs `f` on the blocking pool: SQLite, tantivy and normalization never run on the async
/// workers that also answer the HTTP API.
async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || f(&e))
        .await
        .map_err(|e| SyncError::Internal(e.to_string()))?
}

/// What a run knows of the help center; shared read-only with the blocking tasks.
struct Ctx {
    source: String,
    segments: Option<HashMap<u64, UserSegment>>,
    restricted: bool,
    sections: HashMap<u64, String>,
    hosts: Hosts,
    locales: Vec<String>,
    default_locale: String,
}

impl Ctx {
    fn decide(&self, meta: &ArticleMeta) -> Decision {
        decide(
            &meta.stored_segment_ids(),
            self.segments.as_ref(),
            self.restricted,
        )
    }

    fn translation(&self, t: &Translation, meta: &ArticleMeta) -> TranslationIn {
        let url = self
            .hosts
            .canonical(t.html_url.as_deref(), meta.id, &t.locale);
        TranslationIn::of(t, meta, url)
    }
}

/// What one page (or chunk of pages) produced. Its counts only reach the report once its batch
/// is committed, so a failed commit (a full disk) leaves the report matching the store.
#[derive(Default)]
struct PageResult {
    batch: Batch,
    outcomes: Vec<(u64, Outcome)>,
    removed: u64,
    seen: Vec<u64>,
    seen_translations: Vec<(u64, String)>,
    newest: Option<i64>,
    quarantined: Vec<Quarantined>,
    fail_closed: Vec<Quarantined>,
    foreign: Vec<u64>,
    reached_older: bool,
}

impl PageResult {
    fn merge(&mut self, o: PageResult) {
        let b = o.batch;
        self.batch.articles.extend(b.articles);
        self.batch.translations.extend(b.translations);
        self.batch.delete_translations.extend(b.delete_translations);
        self.batch.delete_articles.extend(b.delete_articles);
        self.batch.changed.extend(b.changed);
        self.outcomes.extend(o.outcomes);
        self.removed += o.removed;
        self.seen.extend(o.seen);
        self.seen_translations.extend(o.seen_translations);
        self.newest = self.newest.max(o.newest);
        self.quarantined.extend(o.quarantined);
        self.fail_closed.extend(o.fail_closed);
        self.foreign.extend(o.foreign);
        self.reached_older |= o.reached_older;
    }

    fn quarantine(&mut self, record: String, reason: String) {
        self.quarantined.push(Quarantined { record, reason });
    }
}

/// What the run has committed so far.
#[derive(Default)]
struct RunState {
    outcomes: HashMap<u64, Outcome>,
    removed: u64,
    index_writes: u64,
    /// Committed translations whose body the normalizer flattened.
    flattened: u64,
    seen: HashSet<u64>,
    seen_translations: HashSet<(u64, String)>,
    newest: Option<i64>,
    quarantined: BTreeMap<String, String>,
    fail_closed: BTreeMap<String, String>,
    foreign: Vec<u64>,
}

/// Translations of a batch whose body the normalizer flattened (each was logged when planned).
fn flattened(b: &Batch) -> u64 {
    b.translations
        .iter()
        .filter(|t| t.normalized.flattened)
        .count() as u64
}

fn rank(o: Outcome) -> u8 {
    match o {
        Outcome::Unchanged => 0,
        Outcome::Updated => 1,
        Outcome::Added => 2,
    }
}

impl RunState {
    /// Takes in a committed page.
    fn absorb(&mut self, r: PageResult, index_writes: usize) {
        for (id, o) in r.outcomes {
            let e = self.outcomes.entry(id).or_insert(o);
            if rank(o) > rank(*e) {
                *e = o;
            }
        }
        self.removed += r.removed;
        self.index_writes += index_writes as u64;
        self.flattened += flattened(&r.batch);
        self.seen.extend(r.seen);
        self.seen_translations.extend(r.seen_translations);
        self.newest = self.newest.max(r.newest);
        for q in r.quarantined {
            self.quarantined.insert(q.record, q.reason);
        }
        for q in r.fail_closed {
            self.fail_closed.insert(q.record, q.reason);
        }
        self.foreign.extend(r.foreign);
    }

    fn report(&self, rep: &mut SourceReport) {
        for o in self.outcomes.values() {
            match o {
                Outcome::Added => rep.added += 1,
                Outcome::Updated => rep.updated += 1,
                Outcome::Unchanged => rep.unchanged += 1,
            }
        }
        rep.removed = self.removed;
        rep.index_writes = self.index_writes;
        rep.flattened = self.flattened;
        let list = |m: &BTreeMap<String, String>| {
            m.iter()
                .take(REPORT_LIST_CAP)
                .map(|(r, why)| Quarantined {
                    record: r.clone(),
                    reason: why.clone(),
                })
                .collect()
        };
        rep.quarantined_count = self.quarantined.len() as u64;
        rep.quarantined = list(&self.quarantined);
        rep.fail_closed_count = self.fail_closed.len() as u64;
        rep.fail_closed = list(&self.fail_closed);
    }

    fn quarantine_list(&self) -> Vec<Quarantined> {
        self.quarantined
            .iter()
            .map(|(r, why)| Quarantined {
                record: r.clone(),
                reason: why.clone(),
            })
            .collect()
    }
}

struct SourceRun<'a> {
    engine: Arc<Engine>,
    cfg: &'a SyncConfig,
    src: &'a SourceConfig,
    client: Client,
    cancel: Option<tokio_util::sync::CancellationToken>,
    progress: Option<Progress>,
    state: RunState,
}

impl SourceRun<'_> {
    fn name(&self) -> String {
        self.src.name.clone()
    }

    fn cancelled(&self) -> Result<(), SyncError> {
        if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(SyncError::Cancelled);
        }
        Ok(())
    }

    fn progress(&self, rep: &SourceReport) {
        if let Some(p) = &self.progress {
            (p.0)(&self.src.name, rep.articles_fetched);
        }
    }

    /// Runs the sync and gives itself back (its state holds the committed counts). The result
    /// says whether this run counts as a full sweep.
    async fn run(
        mut self,
        opts: &SyncOptions,
        rep: &mut SourceReport,
    ) -> (Result<bool, SyncError>, Self) {
        let r = self.run_inner(opts, rep).await;
        (r, self)
    }

    async fn run_inner(
        &mut self,
        opts: &SyncOptions,
        rep: &mut SourceReport,
    ) -> Result<bool, SyncError> {
        let local_start = chrono::Utc::now().timestamp();
        if let Some(ids) = &opts.only_articles {
            let ctx = Arc::new(self.stored_context(rep).await?);
            for id in ids {
                self.sync_one(&ctx, *id, rep).await?;
            }
            let (name, quarantine) = (self.name(), self.state.quarantine_list());
            if !quarantine.is_empty() {
                blocking(&self.engine, move |e| {
                    Ok(e.save_quarantine(&name, &quarantine, false)?)
                })
                .await?;
            }
            return Ok(false);
        }
        let phase = |name: &str, t: Instant| {
            tracing::debug!(
                phase = name,
                ms = t.elapsed().as_millis() as u64,
                "sync phase done"
            )
        };
        let t = Instant::now();
        let ctx = Arc::new(self.context(rep).await?);
        phase("context", t);
        let t = Instant::now();
        self.renormalize(&ctx, rep).await?;
        self.revisibility(&ctx).await?;
        phase("local repairs", t);
        let name = self.name();
        let state = blocking(&self.engine, move |e| {
            read(e, |s| Ok(s.source(&name)?.unwrap_or_default()))
        })
        .await?;
        // A cursor saved in the future (an older helpdex trusted `end_time`) counts as now.
        let since = state.cursor.min(local_start).max(0);
        let full = opts.full
            || (since > 0
                && self.cfg.full_sweep_every.is_some_and(|every| {
                    state
                        .last_full_sweep
                        .is_none_or(|t| local_start - t >= every.as_secs() as i64)
                }));
        let reconcile = full
            || (self.cfg.reconcile_every > 0
                && (state.syncs as u64).is_multiple_of(self.cfg.reconcile_every as u64));
        rep.full_sweep = full;
        let t = Instant::now();
        self.export(&ctx, if reconcile { 0 } else { since }, rep)
            .await?;
        phase("export", t);
        let t = Instant::now();
        self.listings(&ctx, since, full, rep).await?;
        phase("listings", t);
        let t = Instant::now();
        if reconcile {
            self.removals(&ctx, rep).await?;
            rep.reconciled = true;
        }
        if full {
            self.deleted_translations(&ctx).await?;
        }
        phase("removals", t);
        // Everything this run read is committed: only now may the cursor move.
        let run_started = self
            .client
            .server_time()
            .unwrap_or(local_start)
            .min(local_start + 300);
        let now = chrono::Utc::now().timestamp();
        let cursor = next_cursor(state.cursor, self.state.newest, run_started, now);
        let quarantine = self.state.quarantine_list();
        let name = self.name();
        blocking(&self.engine, move |e| {
            e.save_quarantine(&name, &quarantine, reconcile)?;
            if let Some(c) = cursor {
                e.apply(
                    &name,
                    &Batch {
                        cursor: Some(c),
                        ..Batch::default()
                    },
                )?;
            }
            Ok(())
        })
        .await?;
        // A first sync read everything: it counts as a sweep.
        Ok(full || since == 0)
    }

    /// Segments, brand state and hosts, structure and locales: 4 requests when each fits a
    /// page.
    async fn context(&self, rep: &mut SourceReport) -> Result<Ctx, SyncError> {
        let segments = match self.client.user_segments().await {
            Ok(list) => Some(
                list.into_iter()
                    .map(|s| UserSegment {
                        id: s.id,
                        name: s.name,
                        user_type: s.user_type,
                        built_in: s.built_in,
                    })
                    .collect::<Vec<_>>(),
            ),
            Err(ZendeskError::Forbidden { .. }) => {
                rep.segments_unreadable = true;
                tracing::warn!(
                    "cannot read user segments (the token is not a Guide admin's): every article with a user segment is treated as internal; use a Guide admin's API token to fix this"
                );
                None
            }
            Err(e) => return Err(e.into()),
        };
        // The brand decides whether the whole help center is restricted, and which hosts its
        // citations may point at; optional information.
        let base = self.client.base_url().clone();
        let host = base.host_str().map(str::to_string);
        let (state, brand, hosts) = match self.client.brands().await {
            Ok(brands) => {
                let first_label = host
                    .as_deref()
                    .and_then(|h| h.split('.').next())
                    .unwrap_or_default()
                    .to_string();
                let b = brands
                    .iter()
                    .find(|b| {
                        b.host_mapping
                            .as_deref()
                            .is_some_and(|m| Some(m) == host.as_deref())
                    })
                    .or_else(|| {
                        brands
                            .iter()
                            .find(|b| b.subdomain.as_deref() == Some(first_label.as_str()))
                    })
                    .or_else(|| (brands.len() == 1).then(|| &brands[0]));
                let urls: Vec<String> = b
                    .into_iter()
                    .flat_map(|b| {
                        b.brand_url.clone().into_iter().chain(
                            b.subdomain
                                .as_ref()
                                .map(|s| format!("https://{s}.zendesk.com")),
                        )
                    })
                    .collect();
                (
                    b.and_then(|b| b.help_center_state.clone()),
                    b.map(|b| b.name.clone()).filter(|n| !n.is_empty()),
                    Hosts::new(&base, b.and_then(|b| b.host_mapping.as_deref()), &urls),
                )
            }
            Err(e) if e.is_auth() || matches!(e, ZendeskError::NotFound { .. }) => {
                (None, None, Hosts::new(&base, None, &[]))
            }
            Err(e) => return Err(e.into()),
        };
        let (sections, categories) = self.client.sections_and_categories().await?;
        let locales = self.client.locales().await?;
        let name = self.name();
        let segs = segments.clone();
        let st = state.clone();
        let stored_hosts = hosts.to_stored();
        let secs: Vec<_> = sections
            .iter()
            .map(|x| SectionRow {
                id: x.id,
                name: x.name.clone(),
                category_id: x.category_id,
                html_url: x.html_url.clone(),
            })
            .collect();
        let cats: Vec<_> = categories
            .iter()
            .map(|x| CategoryRow {
                id: x.id,
                name: x.name.clone(),
                html_url: x.html_url.clone(),
            })
            .collect();
        blocking(&self.engine, move |e| {
            e.save_help_center(
                &name,
                segs.as_deref(),
                st.as_deref(),
                brand.as_deref(),
                &stored_hosts,
                &secs,
                &cats,
            )?;
            Ok(())
        })
        .await?;
        let mut locale_list: Vec<String> = Vec::new();
        for l in locales.locales.iter().chain([&locales.default_locale]) {
            let l = l.to_ascii_lowercase();
            if valid_locale(&l) && !locale_list.contains(&l) {
                locale_list.push(l);
            }
        }
        Ok(Ctx {
            source: self.name(),
            segments: segments.map(|v| v.into_iter().map(|s| (s.id, s)).collect()),
            restricted: state.as_deref() == Some("restricted"),
            sections: sections.into_iter().map(|s| (s.id, s.name)).collect(),
            hosts,
            default_locale: locales.default_locale.to_ascii_lowercase(),
            locales: locale_list,
        })
    }

    /// The context as the last full sync stored it (webhooks: no request for it).
    async fn stored_context(&self, rep: &mut SourceReport) -> Result<Ctx, SyncError> {
        let name = self.name();
        let base = self.client.base_url().clone();
        let stored = blocking(&self.engine, move |e| {
            read(e, |s| {
                let Some(st) = s.source(&name)? else {
                    return Ok(None);
                };
                Ok(Some((st, s.user_segments(&name)?, s.section_names(&name)?)))
            })
        })
        .await?;
        let Some((state, segments, sections)) = stored else {
            // Never synced: learn the context the long way once.
            return self.context(rep).await;
        };
        rep.segments_unreadable = segments.is_none();
        Ok(Ctx {
            source: self.name(),
            segments,
            restricted: state.help_center_state.as_deref() == Some("restricted"),
            sections,
            hosts: Hosts::from_stored(&base, &state.hosts),
            locales: Vec::new(),
            default_locale: String::new(),
        })
    }

    /// Re-normalizes stored bodies written by another normalizer (no network).
    async fn renormalize(
        &mut self,
        ctx: &Arc<Ctx>,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        let ctx = ctx.clone();
        let (n, flat) = blocking(&self.engine, move |e| {
            let name = ctx.source.clone();
            let fingerprint = e.normalize_options().fingerprint();
            let stale = read(e, |s| s.stale_normalized(&name, fingerprint))?;
            if stale.is_empty() {
                return Ok((0, 0));
            }
            let mut ids: Vec<u64> = stale.iter().map(|(id, _)| *id).collect();
            ids.dedup();
            let (mut n, mut flat) = (0, 0);
            for chunk in ids.chunks(500) {
                let mut batch = Batch::default();
                for id in chunk {
                    let Some((meta, ts, stored, d)) = stored_plan_input(e, &ctx, *id)? else {
                        continue;
                    };
                    plan_article(
                        &name,
                        &meta,
                        &ts,
                        Some(&stored),
                        &d,
                        &ctx.sections,
                        e.normalize_options(),
                        false,
                        &mut batch,
                    );
                }
                n += batch.translations.len() as u64;
                e.apply(&name, &batch)?;
                flat += flattened(&batch);
            }
            Ok((n, flat))
        })
        .await?;
        self.state.flattened += flat;
        if n > 0 {
            tracing::info!(
                translations = n,
                "re-normalized stored bodies after a normalizer change"
            );
        }
        rep.renormalized = n;
        Ok(())
    }

    /// Recomputes visibility of stored articles when segment definitions changed (no network).
    async fn revisibility(&mut self, ctx: &Arc<Ctx>) -> Result<(), SyncError> {
        let ctx = ctx.clone();
        let (outcomes, writes, flat) = blocking(&self.engine, move |e| {
            let name = ctx.source.clone();
            let rows = read(e, |s| s.article_rows(&name))?;
            let mut outcomes = Vec::new();
            let (mut writes, mut flat) = (0, 0);
            let mut batch = Batch::default();
            for row in rows {
                let d = decide(&row.segment_ids, ctx.segments.as_ref(), ctx.restricted);
                if d.access == row.access && d.visibility == row.visibility {
                    continue;
                }
                let Some((meta, ts, stored, d)) = stored_plan_input(e, &ctx, row.article_id)?
                else {
                    continue;
                };
                plan_article(
                    &name,
                    &meta,
                    &ts,
                    Some(&stored),
                    &d,
                    &ctx.sections,
                    e.normalize_options(),
                    false,
                    &mut batch,
                );
                outcomes.push((row.article_id, Outcome::Updated));
                if batch.translations.len() >= APPLY_EVERY {
                    writes += e.apply(&name, &batch)?;
                    flat += flattened(&std::mem::take(&mut batch));
                }
            }
            writes += e.apply(&name, &batch)?;
            flat += flattened(&batch);
            Ok((outcomes, writes, flat))
        })
        .await?;
        self.state.flattened += flat;
        self.state.absorb(
            PageResult {
                outcomes,
                ..PageResult::default()
            },
            writes,
        );
        Ok(())
    }

    /// The incremental export from `from`, one transaction per page.
    async fn export(
        &mut self,
        ctx: &Arc<Ctx>,
        from: i64,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        let mut start = from;
        let mut pages = 0u32;
        // The next page is fetched while this one is planned and committed (only when Zendesk
        // announced it, so no request is spent that the sync would not make anyway).
        let mut prefetched = AbortOnDrop(None);
        loop {
            pages += 1;
            if pages > 100_000 {
                return Err(SyncError::Stalled(start));
            }
            let page = match prefetched.0.take() {
                Some(h) => h.await.map_err(|e| SyncError::Internal(e.to_string()))??,
                None => self.client.incremental_page(start).await?,
            };
            let n = page.records.len();
            rep.articles_fetched += n as u64;
            let newest = page
                .records
                .iter()
                .filter_map(|v| epoch(v.get("updated_at").and_then(Value::as_str)))
                .max();
            let mut records = page.records;
            // More than a page changed within one second: `next_page` would repeat forever.
            // Page through that second with the cursor-paginated list instead, then step past
            // it.
            let stalled = page.next_page.is_some() && n > 0 && newest == Some(start);
            if stalled {
                tracing::warn!(
                    start_time = start,
                    "more than one export page shares one second; paging it through the list endpoint"
                );
                let mut p = self
                    .client
                    .articles_pager(None, "updated_at", "asc", Some(start));
                'second: while let Some(lp) = p.next().await? {
                    rep.articles_fetched += lp.items.len() as u64;
                    for v in lp.items {
                        match epoch(v.get("updated_at").and_then(Value::as_str)) {
                            Some(t) if t > start => break 'second,
                            _ => records.push(v),
                        }
                    }
                }
            }
            let more = page.next_page.is_some() && n > 0;
            let next = if stalled {
                start + 1
            } else {
                newest.unwrap_or(start)
            };
            if more && next <= start {
                return Err(SyncError::Stalled(start));
            }
            if more {
                let c = self.client.clone();
                prefetched.0 = Some(tokio::spawn(async move { c.incremental_page(next).await }));
            }
            let kind = PageKind::Export { start };
            let res = self.page(ctx, kind, records).await?;
            self.commit(res).await?;
            self.progress(rep);
            self.cancelled()?;
            if !more {
                return Ok(());
            }
            start = next;
        }
    }

    /// The other translations: per-locale listings, newest first, read until the cursor.
    async fn listings(
        &mut self,
        ctx: &Arc<Ctx>,
        since: i64,
        full: bool,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        let name = self.name();
        let default = ctx.default_locale.clone();
        let foreign = blocking(&self.engine, move |e| {
            read(e, |s| s.articles_not_in(&name, &default))
        })
        .await?;
        for locale in ctx.locales.clone() {
            if locale == ctx.default_locale && !full {
                // The export carries every default-locale source translation; the listing is
                // only needed for articles written in another locale.
                if foreign == 0 {
                    continue;
                }
                let ids = self.state.foreign.clone();
                let listing_cost = self.state.seen.len().div_ceil(100);
                if since == 0 && ids.len() <= listing_cost {
                    self.per_article(ctx, &ids, rep).await?;
                    continue;
                }
            }
            self.list_locale(ctx, &locale, since, full, rep).await?;
        }
        Ok(())
    }

    async fn list_locale(
        &mut self,
        ctx: &Arc<Ctx>,
        locale: &str,
        since: i64,
        full: bool,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        let pager = self
            .client
            .articles_pager(Some(locale), "updated_at", "desc", None);
        let since = if full { i64::MIN } else { since };
        // Reading to the end (a first sync, a sweep): the next page is fetched while this one is
        // planned. Reading to the cursor: exactly the pages needed, one after the other.
        let mut pages = Pages::new(pager, since <= 0);
        let mut pending = PageResult::default();
        while let Some(page) = pages.next().await? {
            rep.articles_fetched += page.items.len() as u64;
            let kind = PageKind::Listing {
                locale: locale.to_string(),
                since,
            };
            let res = self.page(ctx, kind, page.items).await?;
            let older = res.reached_older;
            pending.merge(res);
            if pending.batch.translations.len() >= APPLY_EVERY {
                self.commit(std::mem::take(&mut pending)).await?;
                self.progress(rep);
                self.cancelled()?;
            }
            if older {
                break;
            }
        }
        self.commit(pending).await?;
        self.progress(rep);
        self.cancelled()
    }

    /// Complete translations of a few articles, one request each (first sync of articles
    /// written in another locale than the default).
    async fn per_article(
        &mut self,
        ctx: &Arc<Ctx>,
        ids: &[u64],
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        for chunk in ids.chunks(100) {
            let mut fetched = Vec::new();
            for id in chunk {
                let f = match self.client.translations(*id).await? {
                    Some(ts) => Fetched::Translations(ts),
                    // Archived since the export: only a 404 on show proves it.
                    None => match self.client.show_article(*id).await? {
                        None => Fetched::Gone,
                        Some(v) => Fetched::Shown(v),
                    },
                };
                rep.articles_fetched += 1;
                fetched.push((*id, f));
            }
            let res = self
                .page(ctx, PageKind::Complete(fetched), Vec::new())
                .await?;
            self.commit(res).await?;
            self.cancelled()?;
        }
        Ok(())
    }

    /// Stored articles absent from a complete export: removed once show answers 404.
    async fn removals(&mut self, ctx: &Arc<Ctx>, rep: &mut SourceReport) -> Result<(), SyncError> {
        let name = self.name();
        let stored = blocking(&self.engine, move |e| read(e, |s| s.article_ids(&name))).await?;
        let absent: Vec<u64> = stored
            .into_iter()
            .filter(|id| !self.state.seen.contains(id))
            .collect();
        for chunk in absent.chunks(100) {
            let mut fetched = Vec::new();
            for id in chunk {
                // The export is not proof: only a 404 on show is.
                let f = match self.client.show_article(*id).await? {
                    None => Fetched::Gone,
                    Some(v) => Fetched::Shown(v),
                };
                fetched.push((*id, f));
            }
            let res = self
                .page(ctx, PageKind::Confirm(fetched), Vec::new())
                .await?;
            self.commit(res).await?;
            self.progress(rep);
            self.cancelled()?;
        }
        Ok(())
    }

    /// After a full sweep: stored translations no listing showed, of articles that still
    /// exist, were deleted in Zendesk.
    async fn deleted_translations(&mut self, ctx: &Arc<Ctx>) -> Result<(), SyncError> {
        let name = self.name();
        let keys = blocking(&self.engine, move |e| {
            read(e, |s| s.translation_keys(&name))
        })
        .await?;
        let gone: Vec<(u64, String)> = keys
            .into_iter()
            .filter(|(id, l)| {
                self.state.seen.contains(id)
                    && ctx.locales.contains(l)
                    && !self.state.seen_translations.contains(&(*id, l.clone()))
            })
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let mut res = PageResult::default();
        for (id, l) in gone {
            tracing::info!(article_id = id, locale = %l, "translation deleted in zendesk; removing");
            res.batch.delete_translations.push((id, l.clone()));
            res.batch
                .changed
                .push(helpdex_core::model::doc_key(&ctx.source, id, &l));
            res.outcomes.push((id, Outcome::Updated));
        }
        self.commit(res).await
    }

    /// One article by id (webhooks): show with translations embedded, or show + translations;
    /// 404 removes it.
    async fn sync_one(
        &mut self,
        ctx: &Arc<Ctx>,
        id: u64,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        let f = match self.client.show_article(id).await? {
            None => Fetched::Gone,
            Some(v) => {
                rep.articles_fetched += 1;
                let embedded = v.get("translations").is_some_and(Value::is_array);
                if embedded {
                    Fetched::Shown(v)
                } else {
                    match self.client.translations(id).await? {
                        Some(ts) => Fetched::ShownWith(v, ts),
                        // Archived between the two requests: confirm with show.
                        None => match self.client.show_article(id).await? {
                            None => Fetched::Gone,
                            Some(v) => Fetched::Shown(v),
                        },
                    }
                }
            }
        };
        let res = self
            .page(ctx, PageKind::Complete(vec![(id, f)]), Vec::new())
            .await?;
        self.commit(res).await
    }

    /// Plans one page on the blocking pool (normalization is CPU work).
    async fn page(
        &self,
        ctx: &Arc<Ctx>,
        kind: PageKind,
        records: Vec<Value>,
    ) -> Result<PageResult, SyncError> {
        let ctx = ctx.clone();
        let t = Instant::now();
        let r = blocking(&self.engine, move |e| plan_page(e, &ctx, kind, records)).await;
        tracing::trace!(ms = t.elapsed().as_millis() as u64, "page planned");
        r
    }

    /// Commits a planned page and takes its counts into the run.
    async fn commit(&mut self, res: PageResult) -> Result<(), SyncError> {
        let name = self.name();
        let t = Instant::now();
        let (res, writes) = blocking(&self.engine, move |e| {
            let writes = e.apply(&name, &res.batch)?;
            Ok((res, writes))
        })
        .await?;
        tracing::trace!(
            ms = t.elapsed().as_millis() as u64,
            writes,
            "page committed"
        );
        self.state.absorb(res, writes);
        Ok(())
    }
}

/// Aborts a prefetch nobody will wait for (the run failed or was cancelled).
struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// Listing pages, optionally fetched one ahead by a task (bounded: at most two pages wait).
enum Pages {
    Direct(Box<helpdex_zendesk::Pager>),
    Ahead {
        rx: tokio::sync::mpsc::Receiver<Result<helpdex_zendesk::types::ListPage, ZendeskError>>,
        /// Held so the fetching task stops when the listing is left early.
        _task: AbortOnDrop<()>,
    },
}

impl Pages {
    fn new(mut pager: helpdex_zendesk::Pager, ahead: bool) -> Pages {
        if !ahead {
            return Pages::Direct(Box::new(pager));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(async move {
            loop {
                let next = pager.next().await.transpose();
                let Some(item) = next else { break };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Pages::Ahead {
            rx,
            _task: AbortOnDrop(Some(task)),
        }
    }

    async fn next(&mut self) -> Result<Option<helpdex_zendesk::types::ListPage>, ZendeskError> {
        match self {
            Pages::Direct(p) => p.next().await,
            Pages::Ahead { rx, .. } => rx.recv().await.transpose(),
        }
    }
}

/// What a per-article request brought back.
enum Fetched {
    /// 404 on show: archived or deleted.
    Gone,
    /// The translations list (the export record is the article's own data).
    Translations(Vec<Value>),
    /// The show record, translations embedded or not.
    Shown(Value),
    /// The show record and the translations list.
    ShownWith(Value, Vec<Value>),
}

/// What [`plan_page`] is given.
enum PageKind {
    /// Export records (starting at `start`).
    Export { start: i64 },
    /// Listing records of `locale`; those older than `since` end the listing.
    Listing { locale: String, since: i64 },
    /// Articles fetched one by one, with every translation when the answer had them.
    Complete(Vec<(u64, Fetched)>),
    /// Show answers for stored articles the export did not list.
    Confirm(Vec<(u64, Fetched)>),
}

/// Plans one page against the store. Pure but for the store reads.
fn plan_page(
    e: &Engine,
    ctx: &Ctx,
    kind: PageKind,
    records: Vec<Value>,
) -> Result<PageResult, SyncError> {
    let mut res = PageResult::default();
    match kind {
        PageKind::Export { start } => plan_export(e, ctx, start, records, &mut res)?,
        PageKind::Listing { locale, since } => {
            plan_listing(e, ctx, &locale, since, records, &mut res)?
        }
        PageKind::Complete(items) | PageKind::Confirm(items) => {
            for (id, f) in items {
                plan_fetched(e, ctx, id, f, &mut res)?;
            }
        }
    }
    Ok(res)
}

/// Removes a stored article whose current record cannot be trusted (fail-closed: whatever it
/// says now, the old version may no longer be what Zendesk shows).
fn remove_if_stored(e: &Engine, ctx: &Ctx, id: u64, res: &mut PageResult) -> Result<(), SyncError> {
    let name = ctx.source.clone();
    if let Some(s) = read(e, |st| st.article(&name, id))? {
        plan_removal(&ctx.source, id, &s, &mut res.batch);
        res.removed += 1;
    }
    Ok(())
}

fn note_fail_closed(a: &Article, res: &mut PageResult) {
    let mut why = Vec::new();
    if a.segments.is_none() {
        why.push("no user_segment_ids: indexed as internal");
    }
    if a.draft.is_none() {
        why.push(if a.locale == a.source_locale {
            "no draft flag: treated as a draft"
        } else {
            "no draft flag on this translation: treated as a draft"
        });
    }
    if !why.is_empty() {
        res.fail_closed.push(Quarantined {
            record: format!("{} ({})", a.id, a.locale),
            reason: why.join("; "),
        });
    }
}

fn plan_export(
    e: &Engine,
    ctx: &Ctx,
    start: i64,
    records: Vec<Value>,
    res: &mut PageResult,
) -> Result<(), SyncError> {
    // Dedupe: the inclusive start_time repeats records across pages and runs.
    let mut by_id: BTreeMap<u64, Article> = BTreeMap::new();
    for (pos, v) in records.iter().enumerate() {
        match Article::from_value(v, pos) {
            Ok(a) => {
                res.newest = res.newest.max(epoch(Some(&a.updated_at)));
                by_id.insert(a.id, a);
            }
            Err(err) => {
                let record = match err.id {
                    Some(_) => err.record.clone(),
                    None => format!("{} of the export page at start_time={start}", err.record),
                };
                tracing::warn!(record = %record, reason = %err.reason, "malformed article record quarantined");
                if let Some(id) = err.id {
                    // Known article, unusable record: its stored version goes (fail-closed),
                    // and the removal check needs no show for it.
                    remove_if_stored(e, ctx, id, res)?;
                    res.seen.push(id);
                }
                res.quarantine(record, err.reason);
            }
        }
    }
    let name = ctx.source.clone();
    for (id, a) in by_id {
        if res.batch.delete_articles.contains(&id) {
            continue;
        }
        res.seen.push(id);
        note_fail_closed(&a, res);
        if a.source_locale != ctx.default_locale {
            res.foreign.push(id);
        }
        let meta = ArticleMeta::of(&a);
        let d = ctx.decide(&meta);
        let head = read(e, |s| s.article_head(&name, id))?;
        if head.is_some_and(|h| {
            h.updated_at.as_deref() == Some(a.updated_at.as_str())
                && h.visibility == d.visibility
                && h.access == d.access
        }) {
            res.outcomes.push((id, Outcome::Unchanged));
            continue;
        }
        let stored = read(e, |s| s.article(&name, id))?;
        let mut ts = vec![ctx.translation(&a.shown_translation(), &meta)];
        if stored.is_some() {
            // The article's own fields (visibility, section, outdated flags) reach every
            // stored translation, re-planned from its stored body.
            ts.extend(stored_translations(e, ctx, &meta, Some(&a.locale))?);
        }
        let o = plan_article(
            &name,
            &meta,
            &ts,
            stored.as_ref(),
            &d,
            &ctx.sections,
            e.normalize_options(),
            false,
            &mut res.batch,
        );
        res.outcomes.push((id, o));
    }
    Ok(())
}

fn plan_listing(
    e: &Engine,
    ctx: &Ctx,
    locale: &str,
    since: i64,
    records: Vec<Value>,
    res: &mut PageResult,
) -> Result<(), SyncError> {
    let name = ctx.source.clone();
    for (pos, v) in records.iter().enumerate() {
        let a = match Article::from_value(v, pos) {
            Ok(a) => a,
            Err(err) => {
                let record = match err.id {
                    Some(id) => {
                        // Its stored translation in this locale goes (fail-closed).
                        if read(e, |s| s.article(&name, id))?
                            .is_some_and(|s| s.translations.contains_key(locale))
                        {
                            res.batch.delete_translations.push((id, locale.to_string()));
                            res.batch
                                .changed
                                .push(helpdex_core::model::doc_key(&name, id, locale));
                            res.outcomes.push((id, Outcome::Updated));
                        }
                        format!("{id} ({locale})")
                    }
                    None => format!("{} of the {locale} listing", err.record),
                };
                tracing::warn!(record = %record, reason = %err.reason, "malformed article record quarantined");
                res.quarantine(record, err.reason);
                continue;
            }
        };
        let t = epoch(Some(&a.updated_at)).unwrap_or(i64::MIN);
        res.newest = res.newest.max(Some(t));
        if t < since {
            res.reached_older = true;
            continue;
        }
        if a.locale != locale {
            continue;
        }
        res.seen_translations.push((a.id, a.locale.clone()));
        // Only articles the export stored: one created since is picked up by the next run,
        // one whose record was quarantined stays out.
        let Some(row) = read(e, |s| s.article_row(&name, a.id))? else {
            continue;
        };
        note_fail_closed(&a, res);
        let mut meta = meta_of_row(&row);
        meta.outdated_locales = a.outdated_locales.clone();
        let d = Decision {
            visibility: row.visibility,
            access: row.access.clone(),
            rule: row.visibility_rule.clone(),
        };
        let stored = read(e, |s| s.article(&name, a.id))?;
        let t = ctx.translation(&a.shown_translation(), &meta);
        let changed = plan::plan_translations(
            &name,
            &meta,
            &[t],
            stored.as_ref(),
            &d,
            &ctx.sections,
            e.normalize_options(),
            false,
            &mut res.batch,
        );
        res.outcomes.push((
            a.id,
            if changed {
                Outcome::Updated
            } else {
                Outcome::Unchanged
            },
        ));
    }
    Ok(())
}

fn plan_fetched(
    e: &Engine,
    ctx: &Ctx,
    id: u64,
    f: Fetched,
    res: &mut PageResult,
) -> Result<(), SyncError> {
    let name = ctx.source.clone();
    let (record, list) = match f {
        Fetched::Gone => {
            let stored = read(e, |s| s.article(&name, id))?;
            if let Some(s) = stored {
                tracing::info!(
                    article_id = id,
                    "article archived or deleted in zendesk; removing"
                );
                plan_removal(&name, id, &s, &mut res.batch);
                res.removed += 1;
            }
            return Ok(());
        }
        Fetched::Translations(ts) => {
            // The export stored the article's own row: plan from it.
            let Some(row) = read(e, |s| s.article_row(&name, id))? else {
                return Ok(());
            };
            let meta = meta_of_row(&row);
            let d = ctx.decide(&meta);
            return plan_complete(e, ctx, &meta, &d, ts, res);
        }
        Fetched::Shown(mut v) => {
            let list = v
                .get_mut("translations")
                .map(Value::take)
                .and_then(|t| match t {
                    Value::Array(a) => Some(a),
                    _ => None,
                });
            (v, list)
        }
        Fetched::ShownWith(v, ts) => (v, Some(ts)),
    };
    let parsed = Article::from_value(&record, 0).and_then(|a| {
        if a.id == id {
            Ok(a)
        } else {
            Err(helpdex_zendesk::types::RecordError {
                id: Some(id),
                record: id.to_string(),
                reason: "show answered another article's id".into(),
            })
        }
    });
    let a = match parsed {
        Ok(a) => a,
        Err(err) => {
            tracing::warn!(article_id = id, reason = %err.reason, "malformed article record quarantined");
            remove_if_stored(e, ctx, id, res)?;
            res.seen.push(id);
            res.quarantine(id.to_string(), err.reason);
            return Ok(());
        }
    };
    res.seen.push(id);
    note_fail_closed(&a, res);
    let meta = ArticleMeta::of(&a);
    let d = ctx.decide(&meta);
    match list {
        Some(ts) => {
            plan::plan_row(&meta, &d, &mut res.batch);
            let is_new = read(e, |s| s.article_head(&name, id))?.is_none();
            plan_complete(e, ctx, &meta, &d, ts, res)?;
            if is_new && let Some(last) = res.outcomes.last_mut() {
                last.1 = Outcome::Added;
            }
        }
        None => {
            // Only the shown translation: a partial plan keeps the other stored ones.
            let stored = read(e, |s| s.article(&name, id))?;
            let mut ts = vec![ctx.translation(&a.shown_translation(), &meta)];
            if stored.is_some() {
                ts.extend(stored_translations(e, ctx, &meta, Some(&a.locale))?);
            }
            let o = plan_article(
                &name,
                &meta,
                &ts,
                stored.as_ref(),
                &d,
                &ctx.sections,
                e.normalize_options(),
                false,
                &mut res.batch,
            );
            res.outcomes.push((id, o));
        }
    }
    Ok(())
}

/// Plans every translation of an article from a complete list; malformed ones are
/// quarantined, and since the list is complete their stored versions go.
fn plan_complete(
    e: &Engine,
    ctx: &Ctx,
    meta: &ArticleMeta,
    d: &Decision,
    list: Vec<Value>,
    res: &mut PageResult,
) -> Result<(), SyncError> {
    let name = ctx.source.clone();
    let mut ts = Vec::new();
    for v in &list {
        match Translation::from_value(v, meta.id) {
            Ok(t) => {
                if t.draft.is_none() {
                    res.fail_closed.push(Quarantined {
                        record: format!("{} ({})", meta.id, t.locale),
                        reason: "no draft flag on this translation: treated as a draft".into(),
                    });
                }
                ts.push(ctx.translation(&t, meta));
            }
            Err(err) => res.quarantine(err.record, err.reason),
        }
    }
    let stored = read(e, |s| s.article(&name, meta.id))?;
    let changed = plan::plan_translations(
        &name,
        meta,
        &ts,
        stored.as_ref(),
        d,
        &ctx.sections,
        e.normalize_options(),
        true,
        &mut res.batch,
    );
    res.outcomes.push((
        meta.id,
        if changed {
            Outcome::Updated
        } else {
            Outcome::Unchanged
        },
    ));
    Ok(())
}

/// The article-level facts as stored.
fn meta_of_row(row: &ArticleRow) -> ArticleMeta {
    ArticleMeta {
        id: row.article_id,
        section_id: row.section_id,
        source_locale: row.source_locale.clone(),
        segments: (!row.segment_ids.contains(&UNSTATED_SEGMENTS)).then(|| row.segment_ids.clone()),
        labels: row.labels.clone(),
        updated_at: row.updated_at.clone(),
        outdated_locales: Vec::new(),
    }
}

/// Stored translations of an article as plan input (bodies from SQLite), except `skip`. Their
/// `outdated` flag follows `meta` (the article record is authoritative) and their URL is
/// re-canonicalized (rows written by older versions converge to one form).
fn stored_translations(
    e: &Engine,
    ctx: &Ctx,
    meta: &ArticleMeta,
    skip: Option<&str>,
) -> Result<Vec<TranslationIn>, SyncError> {
    let name = ctx.source.clone();
    let id = meta.id;
    let rows = read(e, |s| {
        s.snapshot(|s| {
            let mut out = Vec::new();
            for t in s.translations_of(&name, id)? {
                if Some(t.locale.as_str()) == skip {
                    continue;
                }
                let body = s.translation_body(&name, id, &t.locale)?;
                out.push((t, body));
            }
            Ok(out)
        })
    })?;
    Ok(rows
        .into_iter()
        .map(|(t, body)| TranslationIn {
            html_url: ctx.hosts.canonical(Some(&t.html_url), id, &t.locale),
            outdated: meta.outdated_locales.contains(&t.locale),
            locale: t.locale,
            title: t.title,
            body,
            draft: t.draft,
            updated_at: t.updated_at,
        })
        .collect())
}

/// A stored article as plan input: its facts, translations, hashes and current decision.
type StoredInput = (ArticleMeta, Vec<TranslationIn>, StoredArticle, Decision);

/// Everything needed to re-plan a stored article without the network.
fn stored_plan_input(e: &Engine, ctx: &Ctx, id: u64) -> Result<Option<StoredInput>, SyncError> {
    let name = ctx.source.clone();
    let (row, stored) = read(e, |s| {
        s.snapshot(|s| Ok((s.article_row(&name, id)?, s.article(&name, id)?)))
    })?;
    let (Some(row), Some(stored)) = (row, stored) else {
        return Ok(None);
    };
    let mut meta = meta_of_row(&row);
    // Re-planned locally, each stored translation keeps its own outdated flag.
    let recs = read(e, |s| s.translations_of(&name, id))?;
    meta.outdated_locales = recs
        .iter()
        .filter(|r| r.outdated)
        .map(|r| r.locale.clone())
        .collect();
    let ts = stored_translations(e, ctx, &meta, None)?;
    let d = ctx.decide(&meta);
    Ok(Some((meta, ts, stored, d)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdex_core::normalize::{NormalizeOptions, normalize};
    use helpdex_core::store::TranslationRow;

    fn row(locale: &str, body: &str) -> TranslationRow {
        TranslationRow {
            article_id: 1,
            locale: locale.into(),
            title: "T".into(),
            html_url: "https://x/hc/articles/1".into(),
            draft: false,
            outdated: false,
            updated_at: None,
            body: Some(body.into()),
            normalized: normalize("T", Some(body), &NormalizeOptions::default()),
            index_hash: String::new(),
            normalizer: 0,
        }
    }

    /// Committed flattened translations are counted in the report. See: issue 12.
    #[test]
    fn flattened_translations_are_counted_once_committed() {
        let deep = format!("{}x", "<div>".repeat(300));
        let mut page = PageResult::default();
        page.batch.translations =
            vec![row("en-us", "<p>x</p>"), row("de", &deep), row("fr", &deep)];
        let mut state = RunState::default();
        state.absorb(page, 3);
        let mut rep = SourceReport::default();
        state.report(&mut rep);
        assert_eq!(rep.flattened, 2);
        let json = serde_json::to_value(&rep).unwrap();
        assert_eq!(json["flattened"], 2);
    }
}
