//! The sync runner: pulls what changed from each help center and commits it page by page.
//!
//! Per source: user segments (fail-closed when unreadable), structure (sections, categories),
//! a re-normalization of stored bodies when the normalizer changed (no network), the
//! incremental export from the saved cursor (one SQLite transaction per page, cursor included),
//! then, when due, the reconcile (removals) and the full hash sweep. One failing source never
//! stops the others.

pub mod plan;

use helpdex_core::engine::{Engine, EngineError};
use helpdex_core::store::{
    Batch, CategoryRow, ReadStore, SectionRow, StoreError, StoreRead, StoredArticle,
};
use helpdex_core::visibility::{Decision, UserSegment, decide};
use helpdex_zendesk::types::{Article, Translation};
use helpdex_zendesk::{Client, ClientConfig, ZendeskError};
use plan::{Outcome, epoch, next_cursor, plan_article, plan_removal};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

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
    /// Run the reconcile (removal detection) every N syncs (0 = never).
    pub reconcile_every: u32,
    /// Full hash sweep cadence (None = never).
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
    /// Article records received from Zendesk (export, listings, stall recovery).
    pub articles_fetched: u64,
    /// Articles new to helpdex.
    pub added: u64,
    /// Articles whose content, visibility or metadata changed.
    pub updated: u64,
    /// Articles fetched whose indexed form did not change.
    pub unchanged: u64,
    /// Articles removed (archived or deleted in Zendesk).
    pub removed: u64,
    /// Translations re-indexed.
    pub index_writes: u64,
    /// Translations re-normalized from stored HTML after a normalizer change.
    pub renormalized: u64,
    /// Retried requests.
    pub retries: u64,
    /// Seconds spent waiting on rate limits.
    pub rate_limit_wait_secs: f64,
    /// The reconcile (removal detection) ran.
    pub reconciled: bool,
    /// The full hash sweep ran.
    pub full_sweep: bool,
    /// User segments could not be read; segmented articles were treated as internal.
    pub segments_unreadable: bool,
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
    /// Only these article ids (webhooks): fetched with show + translations.
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
    };
    let _ = blocking(&engine, {
        let (n, u) = (src.name.clone(), src.client.base_url.clone());
        move |e| Ok(e.start_run(&n, &u)?)
    })
    .await;
    let outcome = run.run(opts, &mut rep).await;
    let stats = client.stats();
    rep.requests = stats.requests;
    rep.retries = stats.retries;
    rep.rate_limit_wait_secs = stats.rate_limit_wait_secs;
    rep.seconds = started.elapsed().as_secs_f64();
    let (full_at, err) = match &outcome {
        Ok(full) => (full.then(|| chrono::Utc::now().timestamp()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    rep.result = if err.is_some() {
        "error".into()
    } else {
        "ok".into()
    };
    rep.error = err.clone();
    match &err {
        Some(e) => tracing::error!(error = %e, "sync failed"),
        None => tracing::info!(
            fetched = rep.articles_fetched,
            added = rep.added,
            updated = rep.updated,
            removed = rep.removed,
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

async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || f(&e))
        .await
        .map_err(|e| SyncError::Internal(e.to_string()))?
}

struct SourceRun<'a> {
    engine: Arc<Engine>,
    cfg: &'a SyncConfig,
    src: &'a SourceConfig,
    client: Client,
    cancel: Option<tokio_util::sync::CancellationToken>,
    progress: Option<Progress>,
}

/// Context shared by the plans of one run.
struct RunCtx {
    segments: Option<HashMap<u64, UserSegment>>,
    restricted: bool,
    sections: HashMap<u64, String>,
    locales: Vec<String>,
    /// Per-locale listings fetched this run (article id → translation).
    listings: Option<HashMap<u64, Vec<Translation>>>,
}

impl RunCtx {
    fn decide(&self, a: &Article) -> Decision {
        decide(&a.segment_ids(), self.segments.as_ref(), self.restricted)
    }
}

impl SourceRun<'_> {
    fn name(&self) -> String {
        self.src.name.clone()
    }

    /// Returns whether the full sweep ran.
    async fn run(&self, opts: &SyncOptions, rep: &mut SourceReport) -> Result<bool, SyncError> {
        let mut ctx = self.context(rep).await?;
        self.renormalize(&ctx, rep).await?;
        self.revisibility(&ctx, rep).await?;
        if let Some(ids) = &opts.only_articles {
            for id in ids {
                self.sync_one(&ctx, *id, rep).await?;
            }
            return Ok(false);
        }
        self.export(&mut ctx, rep).await?;
        let name = self.name();
        let state = blocking(&self.engine, move |e| {
            read(e, |s| Ok(s.source(&name)?.unwrap_or_default()))
        })
        .await?;
        let full_due = opts.full
            || self.cfg.full_sweep_every.is_some_and(|every| {
                state
                    .last_full_sweep
                    .is_none_or(|t| chrono::Utc::now().timestamp() - t >= every.as_secs() as i64)
            });
        let reconcile_due = self.cfg.reconcile_every > 0
            && (state.syncs as u64).is_multiple_of(self.cfg.reconcile_every as u64);
        if full_due || reconcile_due {
            self.reconcile_and_sweep(&mut ctx, full_due, rep).await?;
        }
        Ok(full_due)
    }

    /// Segments, brand state, structure and locales.
    async fn context(&self, rep: &mut SourceReport) -> Result<RunCtx, SyncError> {
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
        // The brand decides whether the whole help center is restricted; optional information.
        let host = url::Url::parse(&self.src.client.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        let (state, brand) = match self.client.brands().await {
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
                (
                    b.and_then(|b| b.help_center_state.clone()),
                    b.map(|b| b.name.clone()).filter(|n| !n.is_empty()),
                )
            }
            Err(e) if e.is_auth() || matches!(e, ZendeskError::NotFound { .. }) => (None, None),
            Err(e) => return Err(e.into()),
        };
        let sections = self.client.sections().await?;
        let categories = self.client.categories().await?;
        let locales = self.client.locales().await?;
        let name = self.name();
        let segs = segments.clone();
        let st = state.clone();
        blocking(&self.engine, move |e| {
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
            e.save_help_center(
                &name,
                segs.as_deref(),
                st.as_deref(),
                brand.as_deref(),
                &secs,
                &cats,
            )?;
            Ok(())
        })
        .await?;
        let name = self.name();
        let sections = blocking(&self.engine, move |e| read(e, |s| s.section_names(&name))).await?;
        let mut locs = locales.locales;
        if locs.is_empty() && !locales.default_locale.is_empty() {
            locs.push(locales.default_locale);
        }
        Ok(RunCtx {
            segments: segments.map(|v| v.into_iter().map(|s| (s.id, s)).collect()),
            restricted: state.as_deref() == Some("restricted"),
            sections,
            locales: locs,
            listings: None,
        })
    }

    /// Re-normalizes translations stored by an older normalizer, from their stored HTML.
    async fn renormalize(&self, ctx: &RunCtx, rep: &mut SourceReport) -> Result<(), SyncError> {
        let name = self.name();
        let sections = ctx.sections.clone();
        let segs = ctx.segments.clone();
        let restricted = ctx.restricted;
        let n = blocking(&self.engine, move |e| {
            let fingerprint = e.normalize_options().fingerprint();
            let stale = read(e, |s| s.stale_normalized(&name, fingerprint))?;
            if stale.is_empty() {
                return Ok(0);
            }
            let mut batch = Batch::default();
            let mut ids: Vec<u64> = stale.iter().map(|(id, _)| *id).collect();
            ids.dedup();
            for id in ids {
                let (wire, stored) = read(e, |s| {
                    s.snapshot(|s| Ok((stored_as_wire(s, &name, id)?, s.article(&name, id)?)))
                })?;
                let (Some((article, translations)), Some(stored)) = (wire, stored) else {
                    continue;
                };
                let d = decide(&article.segment_ids(), segs.as_ref(), restricted);
                plan_article(
                    &name,
                    &article,
                    &translations,
                    Some(&stored),
                    &d,
                    &sections,
                    e.normalize_options(),
                    &mut batch,
                );
            }
            let n = batch.translations.len() as u64;
            e.apply(&name, &batch)?;
            Ok(n)
        })
        .await?;
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
    async fn revisibility(&self, ctx: &RunCtx, rep: &mut SourceReport) -> Result<(), SyncError> {
        let name = self.name();
        let sections = ctx.sections.clone();
        let segs = ctx.segments.clone();
        let restricted = ctx.restricted;
        let n = blocking(&self.engine, move |e| {
            let ids = read(e, |s| s.article_ids(&name))?;
            let mut batch = Batch::default();
            let mut n = 0;
            for id in ids {
                let Some(row) = read(e, |s| s.article_row(&name, id))? else {
                    continue;
                };
                let d = decide(&row.segment_ids, segs.as_ref(), restricted);
                if d.access == row.access && d.visibility == row.visibility {
                    continue;
                }
                let (wire, stored) = read(e, |s| {
                    s.snapshot(|s| Ok((stored_as_wire(s, &name, id)?, s.article(&name, id)?)))
                })?;
                let (Some((article, translations)), Some(stored)) = (wire, stored) else {
                    continue;
                };
                n += 1;
                plan_article(
                    &name,
                    &article,
                    &translations,
                    Some(&stored),
                    &d,
                    &sections,
                    e.normalize_options(),
                    &mut batch,
                );
            }
            e.apply(&name, &batch)?;
            Ok(n)
        })
        .await?;
        rep.updated += n;
        Ok(())
    }

    /// The incremental export from the saved cursor, one transaction per page.
    async fn export(&self, ctx: &mut RunCtx, rep: &mut SourceReport) -> Result<(), SyncError> {
        let name = self.name();
        let mut start = blocking(&self.engine, move |e| {
            read(e, |s| Ok(s.source(&name)?.map(|s| s.cursor).unwrap_or(0)))
        })
        .await?;
        let mut pages = 0u32;
        loop {
            pages += 1;
            if pages > 100_000 {
                return Err(SyncError::Stalled(start));
            }
            let page = self.client.incremental_page(start).await?;
            rep.articles_fetched += page.articles.len() as u64;
            let end = page.end_time;
            let stalled =
                page.next_page.is_some() && !page.articles.is_empty() && end == Some(start);
            let mut records = page.articles;
            let mut cursor = next_cursor(start, end, records.len());
            if stalled {
                // More than a page changed within one second: next_page would repeat forever.
                // Page through that second with the cursor-paginated list instead, then step past it.
                tracing::warn!(
                    start_time = start,
                    "more than one export page shares one second; paging it through the list endpoint"
                );
                let listed = self.client.list_articles(None, Some(start)).await?;
                rep.articles_fetched += listed.len() as u64;
                records.extend(
                    listed
                        .into_iter()
                        .filter(|a| epoch(a.updated_at.as_deref()) == Some(start)),
                );
                cursor = start + 1;
            }
            self.process(ctx, records, Some(cursor), rep).await?;
            if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                return Err(SyncError::Cancelled);
            }
            if stalled {
                start = cursor;
                continue;
            }
            if page.next_page.is_none() || cursor == start {
                break;
            }
            start = cursor;
        }
        Ok(())
    }

    /// Plans and commits one page of article records (deduplicated), with the cursor.
    async fn process(
        &self,
        ctx: &mut RunCtx,
        records: Vec<Article>,
        cursor: Option<i64>,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        // Dedupe: the inclusive start_time repeats records across pages and runs.
        let mut by_id: HashMap<u64, Article> = HashMap::new();
        for a in records {
            by_id.insert(a.id, a);
        }
        let name = self.name();
        let ids: Vec<u64> = by_id.keys().copied().collect();
        let stored: HashMap<u64, StoredArticle> = blocking(&self.engine, move |e| {
            read(e, |s| {
                let mut m = HashMap::new();
                for id in ids {
                    if let Some(a) = s.article(&name, id)? {
                        m.insert(id, a);
                    }
                }
                Ok(m)
            })
        })
        .await?;
        let mut needing: Vec<Article> = Vec::new();
        for (id, a) in by_id {
            match stored.get(&id) {
                Some(s)
                    if s.updated_at == a.updated_at
                        && s.visibility == ctx.decide(&a).visibility =>
                {
                    rep.unchanged += 1
                }
                _ => needing.push(a),
            }
        }
        needing.sort_by_key(|a| a.id);
        let translations = self.translations_for(ctx, &needing).await?;
        let mut batch = Batch {
            cursor,
            ..Batch::default()
        };
        for a in &needing {
            let ts = translations.get(&a.id).cloned().unwrap_or_default();
            let ts = with_source_translation(a, ts);
            let d = ctx.decide(a);
            match plan_article(
                &self.src.name,
                a,
                &ts,
                stored.get(&a.id),
                &d,
                &ctx.sections,
                self.engine.normalize_options(),
                &mut batch,
            ) {
                Outcome::Added => rep.added += 1,
                Outcome::Updated => rep.updated += 1,
                Outcome::Unchanged => rep.unchanged += 1,
            }
        }
        let name = self.name();
        let n = blocking(&self.engine, move |e| Ok(e.apply(&name, &batch)?)).await?;
        rep.index_writes += n as u64;
        if let Some(p) = &self.progress {
            (p.0)(&self.src.name, rep.articles_fetched);
        }
        Ok(())
    }

    /// Translations of the articles that need them: per article when few, per-locale listings
    /// (L × N/100 requests) when many, whichever costs fewer requests.
    async fn translations_for(
        &self,
        ctx: &mut RunCtx,
        needing: &[Article],
    ) -> Result<HashMap<u64, Vec<Translation>>, SyncError> {
        if needing.is_empty() {
            return Ok(HashMap::new());
        }
        let name = self.name();
        let known = blocking(&self.engine, move |e| {
            read(e, |s| Ok(s.article_ids(&name)?.len()))
        })
        .await?;
        let total = known.max(needing.len());
        let listing_cost = ctx.locales.len().max(1) * total.div_ceil(100);
        if ctx.listings.is_none() && needing.len() <= listing_cost {
            let mut out = HashMap::new();
            for a in needing {
                out.insert(a.id, self.client.translations(a.id).await?);
            }
            return Ok(out);
        }
        if ctx.listings.is_none() {
            ctx.listings = Some(self.fetch_listings(ctx).await?);
        }
        let listings = ctx.listings.as_ref().expect("just set");
        let mut out = HashMap::new();
        for a in needing {
            match listings.get(&a.id) {
                Some(ts) => {
                    out.insert(a.id, ts.clone());
                }
                // Changed after the listing was taken: ask for it directly.
                None => {
                    out.insert(a.id, self.client.translations(a.id).await?);
                }
            }
        }
        Ok(out)
    }

    async fn fetch_listings(
        &self,
        ctx: &RunCtx,
    ) -> Result<HashMap<u64, Vec<Translation>>, SyncError> {
        let mut by_article: HashMap<u64, Vec<Translation>> = HashMap::new();
        for locale in &ctx.locales {
            for a in self.client.list_articles(Some(locale), None).await? {
                let t = Translation {
                    locale: if a.locale.is_empty() {
                        locale.clone()
                    } else {
                        a.locale.clone()
                    },
                    outdated: a.outdated_locales.contains(locale),
                    title: a.title,
                    body: a.body,
                    draft: a.draft,
                    html_url: Some(a.html_url),
                    updated_at: a.edited_at.or(a.updated_at),
                };
                by_article.entry(a.id).or_default().push(t);
            }
        }
        Ok(by_article)
    }

    /// One article by id (webhooks): show + translations; 404 removes it.
    async fn sync_one(
        &self,
        ctx: &RunCtx,
        id: u64,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        let name = self.name();
        let stored = blocking(&self.engine, move |e| read(e, |s| s.article(&name, id))).await?;
        let mut batch = Batch::default();
        match self.client.show_article(id).await? {
            None => {
                if let Some(s) = &stored {
                    plan_removal(&self.src.name, id, s, &mut batch);
                    rep.removed += 1;
                }
            }
            Some(a) => {
                rep.articles_fetched += 1;
                let ts = with_source_translation(&a, self.client.translations(id).await?);
                let d = ctx.decide(&a);
                match plan_article(
                    &self.src.name,
                    &a,
                    &ts,
                    stored.as_ref(),
                    &d,
                    &ctx.sections,
                    self.engine.normalize_options(),
                    &mut batch,
                ) {
                    Outcome::Added => rep.added += 1,
                    Outcome::Updated => rep.updated += 1,
                    Outcome::Unchanged => rep.unchanged += 1,
                }
            }
        }
        let name = self.name();
        let n = blocking(&self.engine, move |e| Ok(e.apply(&name, &batch)?)).await?;
        rep.index_writes += n as u64;
        Ok(())
    }

    /// Removal detection (list every id, confirm absentees with a 404 on show) and, when
    /// `full`, a hash comparison of every article (catches edits that did not move updated_at).
    async fn reconcile_and_sweep(
        &self,
        ctx: &mut RunCtx,
        full: bool,
        rep: &mut SourceReport,
    ) -> Result<(), SyncError> {
        let listed = self.client.list_articles(None, None).await?;
        rep.articles_fetched += listed.len() as u64;
        rep.reconciled = true;
        let present: HashSet<u64> = listed.iter().map(|a| a.id).collect();
        let name = self.name();
        let stored_ids = blocking(&self.engine, move |e| read(e, |s| s.article_ids(&name))).await?;
        let mut batch = Batch::default();
        for id in stored_ids.into_iter().filter(|id| !present.contains(id)) {
            // The listing is not proof: only a 404 on show is.
            if self.client.show_article(id).await?.is_none() {
                let name = self.name();
                if let Some(s) =
                    blocking(&self.engine, move |e| read(e, |s| s.article(&name, id))).await?
                {
                    tracing::info!(
                        article_id = id,
                        "article archived or deleted in zendesk; removing"
                    );
                    plan_removal(&self.src.name, id, &s, &mut batch);
                    rep.removed += 1;
                }
            }
        }
        let name = self.name();
        let n = blocking(&self.engine, move |e| Ok(e.apply(&name, &batch)?)).await?;
        rep.index_writes += n as u64;
        if full {
            rep.full_sweep = true;
            ctx.listings = Some(self.fetch_listings(ctx).await?);
            // Every article goes through the hash comparison, regardless of updated_at.
            let name = self.name();
            let ids: Vec<u64> = listed.iter().map(|a| a.id).collect();
            let stored: HashMap<u64, StoredArticle> = blocking(&self.engine, move |e| {
                read(e, |s| {
                    let mut m = HashMap::new();
                    for id in ids {
                        if let Some(a) = s.article(&name, id)? {
                            m.insert(id, a);
                        }
                    }
                    Ok(m)
                })
            })
            .await?;
            let listings = ctx.listings.clone().unwrap_or_default();
            let mut batch = Batch::default();
            for a in &listed {
                let ts =
                    with_source_translation(a, listings.get(&a.id).cloned().unwrap_or_default());
                let d = ctx.decide(a);
                match plan_article(
                    &self.src.name,
                    a,
                    &ts,
                    stored.get(&a.id),
                    &d,
                    &ctx.sections,
                    self.engine.normalize_options(),
                    &mut batch,
                ) {
                    Outcome::Added => rep.added += 1,
                    Outcome::Updated => rep.updated += 1,
                    Outcome::Unchanged => {}
                }
            }
            let name = self.name();
            let n = blocking(&self.engine, move |e| Ok(e.apply(&name, &batch)?)).await?;
            rep.index_writes += n as u64;
        }
        Ok(())
    }
}

/// Ensures the source-locale translation is present, from the article record itself when the
/// translation list lacks it.
fn with_source_translation(a: &Article, mut ts: Vec<Translation>) -> Vec<Translation> {
    if !a.locale.is_empty() && !ts.iter().any(|t| t.locale == a.locale) {
        ts.push(Translation {
            locale: a.locale.clone(),
            title: a.title.clone(),
            body: a.body.clone(),
            draft: a.draft,
            outdated: a.outdated_locales.contains(&a.locale),
            html_url: Some(a.html_url.clone()),
            updated_at: a.edited_at.clone().or(a.updated_at.clone()),
        });
    }
    ts
}

/// Rebuilds the wire form of a stored article (for re-normalization without refetching).
fn stored_as_wire(
    s: &impl StoreRead,
    source: &str,
    id: u64,
) -> Result<Option<(Article, Vec<Translation>)>, StoreError> {
    let Some(row) = s.article_row(source, id)? else {
        return Ok(None);
    };
    let mut translations = Vec::new();
    let mut html_url = String::new();
    for t in s.translations_of(source, id)? {
        if t.locale == row.source_locale || html_url.is_empty() {
            html_url = t.html_url.clone();
        }
        let body = s.translation_body(source, id, &t.locale)?;
        translations.push(Translation {
            locale: t.locale,
            title: Some(t.title),
            body,
            draft: t.draft,
            outdated: t.outdated,
            html_url: Some(t.html_url),
            updated_at: t.updated_at,
        });
    }
    let article = Article {
        id,
        html_url,
        section_id: row.section_id,
        title: None,
        body: None,
        locale: row.source_locale.clone(),
        source_locale: row.source_locale,
        draft: false,
        outdated_locales: translations
            .iter()
            .filter(|t| t.outdated)
            .map(|t| t.locale.clone())
            .collect(),
        user_segment_ids: row.segment_ids,
        user_segment_id: None,
        label_names: row.labels,
        updated_at: row.updated_at,
        edited_at: None,
        translations: None,
    };
    Ok(Some((article, translations)))
}
