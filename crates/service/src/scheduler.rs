//! The run queue of `serve`: cron-scheduled, manual ("sync now") and webhook syncs, one at a
//! time.
//!
//! - One worker runs jobs in arrival order, so syncs never overlap (they share the SQLite
//!   writer and the Zendesk rate limit).
//! - Each source with a schedule has a timer that queues a `scheduled` job at each fire, plus a
//!   random jitter of up to [`Schedule::jitter_max`]. A fire while a job covering that source
//!   is still queued is folded into it, so runs missed during a long sync collapse into one.
//! - Identical manual requests still queued are merged; webhook requests still queued are
//!   merged into one job syncing the union of their articles.
//! - A failing or panicking run is recorded as `failed`; the schedule goes on.
//! - On cancellation the timers stop, the run in progress finishes (it gets the same token, so
//!   the sync can stop after the page it is committing), queued jobs are marked `cancelled`,
//!   and [`Scheduler::run`] returns.
//!
//! The sync itself is a [`Runner`] closure, so the queue is tested without a network.

use super::schedule::Schedule;
use chrono::{DateTime, TimeDelta, Utc};
use helpdex_sync::{SyncOptions, SyncReport};
use rand::Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Does the work of one job. It is called on the worker only, one job at a time; a panic
/// inside is caught and recorded as a failed job.
pub type Runner = Arc<dyn Fn(JobRun) -> BoxFuture<RunOutcome> + Send + Sync>;

/// Job ids count up from 1 in each process.
pub type JobId = u64;

/// Timers re-read the clock at least this often, so a clock step or a suspended host delays
/// a fire by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Why a job exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A cron fire of one source's schedule.
    Scheduled,
    /// An admin's "sync now".
    Manual,
    /// A Zendesk webhook naming articles.
    Webhook,
    /// The sync of every source `serve` runs when it starts.
    Startup,
}

/// What to sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncRequest {
    /// Source names; `None` = every source.
    pub sources: Option<Vec<String>>,
    /// Force the full hash sweep.
    pub full: bool,
    /// Only these article ids (webhooks).
    pub only_articles: Option<Vec<u64>>,
    /// Why.
    pub reason: JobKind,
}

impl SyncRequest {
    /// An admin's "sync now" of some (`None` = all) sources.
    pub fn manual(sources: Option<Vec<String>>, full: bool) -> SyncRequest {
        SyncRequest {
            sources,
            full,
            only_articles: None,
            reason: JobKind::Manual,
        }
    }

    /// A webhook's "sync these articles" in some (`None` = all) sources.
    pub fn webhook(article_ids: Vec<u64>, sources: Option<Vec<String>>) -> SyncRequest {
        SyncRequest {
            sources,
            full: false,
            only_articles: Some(article_ids),
            reason: JobKind::Webhook,
        }
    }

    /// The start-up sync of every source.
    pub fn startup() -> SyncRequest {
        SyncRequest {
            sources: None,
            full: false,
            only_articles: None,
            reason: JobKind::Startup,
        }
    }

    /// A cron fire of one source.
    pub fn scheduled(source: &str) -> SyncRequest {
        SyncRequest {
            sources: Some(vec![source.to_string()]),
            full: false,
            only_articles: None,
            reason: JobKind::Scheduled,
        }
    }

    /// Whether the request includes the source named `name`.
    pub fn selects(&self, name: &str) -> bool {
        self.sources
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == name))
    }

    /// The options to pass to `sync::sync_source` for each selected source.
    pub fn sync_options(&self) -> SyncOptions {
        SyncOptions {
            full: self.full,
            only_articles: self.only_articles.clone(),
            ..SyncOptions::default()
        }
    }

    /// Whether running this request also does everything a scheduled sync of `source` does.
    fn covers(&self, source: &str) -> bool {
        self.only_articles.is_none() && self.selects(source)
    }
}

/// What the runner is given.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The job.
    pub id: JobId,
    /// What to sync.
    pub request: SyncRequest,
    /// Cancelled on shutdown (a child of the scheduler's token): stop after the page being
    /// committed.
    pub cancel: CancellationToken,
}

/// How a job ended.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunOutcome {
    /// Whether everything succeeded.
    pub ok: bool,
    /// One line for people.
    pub summary: String,
    /// The sync's report, when the runner produced one: per source, the counts `helpdex sync
    /// --json` prints.
    #[schemars(with = "Option<crate::api::SyncReportDoc>")]
    pub report: Option<SyncReport>,
}

impl RunOutcome {
    /// The outcome of a sync; failed when any source failed.
    pub fn from_report(report: SyncReport) -> RunOutcome {
        let summary = if report.sources.is_empty() {
            "no sources synced".to_string()
        } else {
            let parts: Vec<String> = report
                .sources
                .iter()
                .map(|s| match &s.error {
                    Some(e) => format!("{}: error: {e}", s.source),
                    None => format!(
                        "{}: ok, {} added, {} updated, {} removed in {:.1} s",
                        s.source, s.added, s.updated, s.removed, s.seconds
                    ),
                })
                .collect();
            parts.join("; ")
        };
        RunOutcome {
            ok: report.ok(),
            summary,
            report: Some(report),
        }
    }

    /// A failure without a report.
    pub fn failed(summary: impl Into<String>) -> RunOutcome {
        RunOutcome {
            ok: false,
            summary: summary.into(),
            report: None,
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for the worker.
    Queued,
    /// Being run.
    Running,
    /// Finished successfully.
    Done,
    /// Finished with an error (or a panic).
    Failed,
    /// Dropped unrun at shutdown.
    Cancelled,
}

impl JobState {
    fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// One job, for `GET /v1/admin/jobs/{id}`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobStatus {
    /// Id.
    pub id: JobId,
    /// Why it exists.
    pub kind: JobKind,
    /// Sources; `None` = all.
    pub sources: Option<Vec<String>>,
    /// Full hash sweep forced.
    pub full: bool,
    /// Only these articles (webhooks).
    pub articles: Option<Vec<u64>>,
    /// Where it is.
    pub state: JobState,
    /// How many triggers (fires, requests, webhook deliveries) it serves.
    pub triggers: u32,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended, in one line.
    pub summary: Option<String>,
    /// The sync's report: per source, the counts `helpdex sync --json` prints.
    #[schemars(with = "Option<crate::api::SyncReportDoc>")]
    pub report: Option<SyncReport>,
}

/// One source's schedule.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ScheduleStatus {
    /// Source name.
    pub source: String,
    /// Normalized cron expression.
    pub schedule: String,
    /// When it will next queue a sync (jitter included); `None` when it never fires again.
    pub next_run: Option<DateTime<Utc>>,
}

/// The queue as a whole, for `GET /v1/admin/status`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SchedulerStatus {
    /// Shutdown has begun: no new jobs are accepted.
    pub shutting_down: bool,
    /// The job being run.
    pub running: Option<JobId>,
    /// Jobs waiting, in the order they will run.
    pub queued: Vec<JobId>,
    /// Per-source schedules.
    pub schedules: Vec<ScheduleStatus>,
    /// Recent jobs, newest first.
    pub jobs: Vec<JobStatus>,
}

/// Refusals of [`Scheduler::trigger`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchedulerError {
    /// The process is stopping.
    #[error("helpdex is shutting down and accepts no new syncs")]
    ShuttingDown,
}

/// Where times come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock (production).
    #[default]
    System,
    /// The system time at construction plus tokio's elapsed time, so tests running with
    /// paused time (`#[tokio::test(start_paused = true)]`) drive the schedules.
    Tokio,
}

/// Tuning of a [`Scheduler`].
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Time source.
    pub clock: Clock,
    /// Add random jitter to scheduled fires.
    pub jitter: bool,
    /// Finished jobs kept for status.
    pub history: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            clock: Clock::System,
            jitter: true,
            history: 100,
        }
    }
}

/// Awaits one job.
#[derive(Debug, Clone)]
pub struct JobHandle {
    id: JobId,
    rx: watch::Receiver<Option<RunOutcome>>,
}

impl JobHandle {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Waits for the job to finish; a job cancelled at shutdown ends not ok.
    pub async fn wait(mut self) -> RunOutcome {
        match self.rx.wait_for(Option::is_some).await {
            Ok(v) => v
                .clone()
                .unwrap_or_else(|| RunOutcome::failed("job ended without an outcome")),
            Err(_) => RunOutcome::failed("job dropped: the scheduler stopped"),
        }
    }
}

/// The run queue; cheap to clone (all clones share one queue).
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("schedules", &self.inner.schedules)
            .finish_non_exhaustive()
    }
}

struct Inner {
    runner: Runner,
    schedules: Vec<(String, Schedule)>,
    cancel: CancellationToken,
    options: SchedulerOptions,
    /// Anchor of [`Clock::Tokio`].
    anchor: (DateTime<Utc>, tokio::time::Instant),
    wake: Notify,
    started: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: JobId,
    queue: VecDeque<JobId>,
    running: Option<JobId>,
    jobs: BTreeMap<JobId, Job>,
    next_runs: HashMap<String, Option<DateTime<Utc>>>,
}

struct Job {
    request: SyncRequest,
    state: JobState,
    triggers: u32,
    queued_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    outcome: Option<RunOutcome>,
    tx: watch::Sender<Option<RunOutcome>>,
}

impl Job {
    fn status(&self, id: JobId) -> JobStatus {
        JobStatus {
            id,
            kind: self.request.reason,
            sources: self.request.sources.clone(),
            full: self.request.full,
            articles: self.request.only_articles.clone(),
            state: self.state,
            triggers: self.triggers,
            queued_at: self.queued_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            summary: self.outcome.as_ref().map(|o| o.summary.clone()),
            report: self.outcome.as_ref().and_then(|o| o.report.clone()),
        }
    }

    fn handle(&self, id: JobId) -> JobHandle {
        JobHandle {
            id,
            rx: self.tx.subscribe(),
        }
    }
}

impl Scheduler {
    /// A queue over `schedules` (source name, schedule) that runs jobs with `runner` and stops
    /// when `cancel` is cancelled. Nothing runs until [`Scheduler::run`] is awaited.
    pub fn new(
        schedules: Vec<(String, Schedule)>,
        runner: Runner,
        cancel: CancellationToken,
    ) -> Scheduler {
        Scheduler::with_options(schedules, runner, cancel, SchedulerOptions::default())
    }

    /// [`Scheduler::new`] with explicit options.
    pub fn with_options(
        schedules: Vec<(String, Schedule)>,
        runner: Runner,
        cancel: CancellationToken,
        options: SchedulerOptions,
    ) -> Scheduler {
        let state = State {
            next_id: 1,
            ..State::default()
        };
        Scheduler {
            inner: Arc::new(Inner {
                runner,
                schedules,
                cancel,
                options,
                anchor: (Utc::now(), tokio::time::Instant::now()),
                wake: Notify::new(),
                started: AtomicBool::new(false),
                state: Mutex::new(state),
            }),
        }
    }

    /// Runs the timers and the worker until the cancellation token fires, then lets the job in
    /// progress finish, cancels the queued ones and returns. Only the first call runs; later
    /// calls return at once (two workers would overlap runs).
    pub async fn run(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            tracing::warn!("scheduler already running");
            return;
        }
        let mut timers = JoinSet::new();
        for (source, schedule) in &self.inner.schedules {
            if schedule.fires_more_than_once_a_minute() {
                tracing::warn!(source = %source, schedule = %schedule, "schedule fires more than once a minute; fires during a run are merged");
            }
            timers.spawn(timer(self.inner.clone(), source.clone(), schedule.clone()));
        }
        worker(&self.inner).await;
        while timers.join_next().await.is_some() {}
    }

    /// Queues a job, or joins a queued one that already does the same work (identical
    /// request; for webhooks, any queued webhook job on the same sources, which then also
    /// syncs these articles).
    pub fn trigger(&self, request: SyncRequest) -> Result<JobHandle, SchedulerError> {
        if self.inner.cancel.is_cancelled() {
            return Err(SchedulerError::ShuttingDown);
        }
        let mut st = self.inner.lock();
        let joinable = st.queue.iter().copied().find(|id| {
            st.jobs.get(id).is_some_and(|j| match request.reason {
                JobKind::Webhook => {
                    j.request.reason == JobKind::Webhook
                        && j.request.sources == request.sources
                        && j.request.full == request.full
                }
                _ => j.request == request,
            })
        });
        if let Some(id) = joinable
            && let Some(job) = st.jobs.get_mut(&id)
        {
            job.triggers += 1;
            if let (Some(have), Some(add)) = (
                job.request.only_articles.as_mut(),
                request.only_articles.as_ref(),
            ) {
                have.extend(add);
                have.sort_unstable();
                have.dedup();
            }
            return Ok(job.handle(id));
        }
        let now = self.inner.now();
        let handle = st.push(request, now);
        drop(st);
        self.inner.wake.notify_one();
        Ok(handle)
    }

    /// One job, while it is queued, running or among the recent ones.
    pub fn job(&self, id: JobId) -> Option<JobStatus> {
        self.inner.lock().jobs.get(&id).map(|j| j.status(id))
    }

    /// Awaits an existing job (e.g. `GET /v1/admin/jobs/{id}?wait=true`).
    pub fn handle(&self, id: JobId) -> Option<JobHandle> {
        self.inner.lock().jobs.get(&id).map(|j| j.handle(id))
    }

    /// When `source`'s schedule will next queue a sync (jitter included once its timer has
    /// planned it); `None` for a source without a schedule or whose schedule has ended.
    pub fn next_run(&self, source: &str) -> Option<DateTime<Utc>> {
        let (_, schedule) = self.inner.schedules.iter().find(|(s, _)| s == source)?;
        if let Some(planned) = self.inner.lock().next_runs.get(source) {
            return *planned;
        }
        schedule.next_after(self.inner.now())
    }

    /// The queue, the schedules and the recent jobs.
    pub fn status(&self) -> SchedulerStatus {
        let schedules = self
            .inner
            .schedules
            .iter()
            .map(|(source, schedule)| ScheduleStatus {
                source: source.clone(),
                schedule: schedule.to_string(),
                next_run: self.next_run(source),
            })
            .collect();
        let st = self.inner.lock();
        SchedulerStatus {
            shutting_down: self.inner.cancel.is_cancelled(),
            running: st.running,
            queued: st.queue.iter().copied().collect(),
            schedules,
            jobs: st.jobs.iter().rev().map(|(id, j)| j.status(*id)).collect(),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        match self.options.clock {
            Clock::System => Utc::now(),
            Clock::Tokio => {
                let elapsed = self.anchor.1.elapsed();
                self.anchor.0 + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
            }
        }
    }

    /// A cron fire: queue a scheduled job unless a queued job already covers the source.
    fn fire(&self, source: &str) {
        if self.cancel.is_cancelled() {
            return;
        }
        let mut st = self.lock();
        let covering = st
            .queue
            .iter()
            .copied()
            .find(|id| st.jobs.get(id).is_some_and(|j| j.request.covers(source)));
        if let Some(id) = covering
            && let Some(job) = st.jobs.get_mut(&id)
        {
            job.triggers += 1;
            tracing::debug!(source, job = id, "scheduled fire merged into a queued job");
            return;
        }
        let now = self.now();
        st.push(SyncRequest::scheduled(source), now);
        drop(st);
        self.wake.notify_one();
    }

    /// Takes the next queued job and marks it running.
    fn start_next(&self) -> Option<(JobId, SyncRequest)> {
        let now = self.now();
        let mut st = self.lock();
        let id = st.queue.pop_front()?;
        let job = st.jobs.get_mut(&id)?;
        job.state = JobState::Running;
        job.started_at = Some(now);
        let request = job.request.clone();
        st.running = Some(id);
        Some((id, request))
    }

    fn finish(&self, id: JobId, outcome: RunOutcome) {
        let now = self.now();
        let mut st = self.lock();
        st.running = None;
        if let Some(job) = st.jobs.get_mut(&id) {
            job.state = if outcome.ok {
                JobState::Done
            } else {
                JobState::Failed
            };
            job.finished_at = Some(now);
            job.tx.send_replace(Some(outcome.clone()));
            job.outcome = Some(outcome);
        }
        st.prune(self.options.history);
    }

    /// Shutdown: every queued job ends cancelled.
    fn cancel_queued(&self) {
        let now = self.now();
        let mut st = self.lock();
        let queued: Vec<JobId> = st.queue.drain(..).collect();
        for id in queued {
            if let Some(job) = st.jobs.get_mut(&id) {
                let outcome = RunOutcome::failed("cancelled: helpdex is shutting down");
                job.state = JobState::Cancelled;
                job.finished_at = Some(now);
                job.tx.send_replace(Some(outcome.clone()));
                job.outcome = Some(outcome);
            }
        }
        st.prune(self.options.history);
    }
}

impl State {
    fn push(&mut self, request: SyncRequest, now: DateTime<Utc>) -> JobHandle {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, _) = watch::channel(None);
        let job = Job {
            request,
            state: JobState::Queued,
            triggers: 1,
            queued_at: now,
            started_at: None,
            finished_at: None,
            outcome: None,
            tx,
        };
        let handle = job.handle(id);
        tracing::info!(job = id, kind = ?job.request.reason, sources = ?job.request.sources, "sync queued");
        self.jobs.insert(id, job);
        self.queue.push_back(id);
        handle
    }

    /// Forgets the oldest finished jobs beyond `keep`.
    fn prune(&mut self, keep: usize) {
        let finished: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.state.is_finished())
            .map(|(id, _)| *id)
            .collect();
        let excess = finished.len().saturating_sub(keep);
        for id in finished.into_iter().take(excess) {
            self.jobs.remove(&id);
        }
    }
}

/// Runs jobs one at a time until cancelled, then cancels what is still queued.
async fn worker(inner: &Arc<Inner>) {
    loop {
        if inner.cancel.is_cancelled() {
            break;
        }
        let Some((id, request)) = inner.start_next() else {
            tokio::select! {
                _ = inner.wake.notified() => continue,
                _ = inner.cancel.cancelled() => break,
            }
        };
        tracing::info!(job = id, kind = ?request.reason, sources = ?request.sources, "sync started");
        let run = JobRun {
            id,
            request,
            cancel: inner.cancel.child_token(),
        };
        let runner = inner.runner.clone();
        // Its own task, so that a panic (even in the call that builds the future) is caught.
        let outcome = match tokio::spawn(async move { runner(run).await }).await {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => {
                RunOutcome::failed(format!("sync panicked: {}", panic_message(e.into_panic())))
            }
            Err(e) => RunOutcome::failed(format!("sync task ended: {e}")),
        };
        if outcome.ok {
            tracing::info!(job = id, summary = %outcome.summary, "sync finished");
        } else {
            tracing::warn!(job = id, summary = %outcome.summary, "sync failed");
        }
        inner.finish(id, outcome);
    }
    inner.cancel_queued();
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Queues `source`'s scheduled syncs until cancelled.
async fn timer(inner: Arc<Inner>, source: String, schedule: Schedule) {
    let mut after = inner.now();
    loop {
        let Some(fire) = schedule.next_after(after) else {
            inner.lock().next_runs.insert(source.clone(), None);
            tracing::info!(source = %source, "schedule has no further fires");
            return;
        };
        let max = schedule.jitter_max();
        let jitter = if inner.options.jitter && !max.is_zero() {
            Duration::from_millis(rand::rng().random_range(0..=max.as_millis() as u64))
        } else {
            Duration::ZERO
        };
        let at = fire + TimeDelta::from_std(jitter).unwrap_or_default();
        inner.lock().next_runs.insert(source.clone(), Some(at));
        loop {
            let now = inner.now();
            if now >= at {
                break;
            }
            let wait = (at - now).to_std().unwrap_or_default().min(MAX_SLEEP);
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        inner.fire(&source);
        // From now, not from `fire`: fires missed while the host was suspended collapse.
        after = inner.now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdex_sync::SourceReport;
    use std::sync::atomic::AtomicUsize;
    use tokio::time::{Instant, sleep};

    /// What the fake runner does on its n-th call (0-based).
    #[derive(Clone, Copy)]
    enum Plan {
        Ok(u64),
        Fail(u64),
        Panic,
    }

    #[derive(Debug, Clone)]
    struct Call {
        id: JobId,
        request: SyncRequest,
        start: Instant,
        end: Option<Instant>,
        saw_cancel: bool,
    }

    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<Call>>,
        running: AtomicUsize,
        max_running: AtomicUsize,
    }

    impl Fake {
        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }
    }

    fn fake(
        plan: impl Fn(usize, &SyncRequest) -> Plan + Send + Sync + 'static,
    ) -> (Runner, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        let f = fake.clone();
        let plan = Arc::new(plan);
        let runner: Runner = Arc::new(move |run: JobRun| {
            let f = f.clone();
            let plan = plan.clone();
            Box::pin(async move {
                let n = {
                    let mut calls = f.calls.lock().unwrap();
                    calls.push(Call {
                        id: run.id,
                        request: run.request.clone(),
                        start: Instant::now(),
                        end: None,
                        saw_cancel: false,
                    });
                    calls.len() - 1
                };
                let now_running = f.running.fetch_add(1, Ordering::SeqCst) + 1;
                f.max_running.fetch_max(now_running, Ordering::SeqCst);
                let p = plan(n, &run.request);
                let secs = match p {
                    Plan::Ok(s) | Plan::Fail(s) => s,
                    Plan::Panic => 0,
                };
                sleep(Duration::from_secs(secs)).await;
                f.running.fetch_sub(1, Ordering::SeqCst);
                {
                    let mut calls = f.calls.lock().unwrap();
                    calls[n].end = Some(Instant::now());
                    calls[n].saw_cancel = run.cancel.is_cancelled();
                }
                match p {
                    Plan::Ok(_) => RunOutcome::from_report(SyncReport {
                        sources: vec![SourceReport {
                            source: "a".into(),
                            result: "ok".into(),
                            added: 1,
                            ..Default::default()
                        }],
                    }),
                    Plan::Fail(_) => RunOutcome::failed("zendesk said 500"),
                    Plan::Panic => panic!("runner exploded"),
                }
            })
        });
        (runner, fake)
    }

    fn options() -> SchedulerOptions {
        SchedulerOptions {
            clock: Clock::Tokio,
            jitter: false,
            history: 100,
        }
    }

    fn every_minute(sources: &[&str]) -> Vec<(String, Schedule)> {
        sources
            .iter()
            .map(|s| (s.to_string(), Schedule::parse("* * * * *").unwrap()))
            .collect()
    }

    fn start(s: &Scheduler) -> tokio::task::JoinHandle<()> {
        let s = s.clone();
        tokio::spawn(async move { s.run().await })
    }

    /// Consecutive calls never overlap.
    fn assert_serial(calls: &[Call]) {
        for w in calls.windows(2) {
            let end = w[0].end.expect("an earlier run finished");
            assert!(
                w[1].start >= end,
                "run {} started before run {} ended",
                w[1].id,
                w[0].id
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn scheduled_runs_never_overlap_and_missed_fires_collapse() {
        // Every minute, but each run takes 150 s.
        let (runner, fake) = fake(|_, _| Plan::Ok(150));
        let cancel = CancellationToken::new();
        let s = Scheduler::with_options(every_minute(&["a"]), runner, cancel.clone(), options());
        let task = start(&s);
        sleep(Duration::from_secs(20 * 60)).await;
        cancel.cancel();
        task.await.unwrap();

        let calls = fake.calls();
        assert_eq!(fake.max_running.load(Ordering::SeqCst), 1);
        assert_serial(&calls);
        // 20 fires, but runs of 150 s leave room for at most 9 runs, and each run's missed
        // fires were merged into one queued job rather than stacked up.
        assert!((7..=9).contains(&calls.len()), "{} runs", calls.len());
        let st = s.status();
        let triggers: u32 = st.jobs.iter().map(|j| j.triggers).sum();
        assert!((19..=20).contains(&triggers), "{triggers} fires recorded");
        assert!(
            st.jobs.iter().any(|j| j.triggers >= 2),
            "no fire was merged"
        );
        assert!(
            st.jobs
                .iter()
                .filter(|j| j.state == JobState::Queued)
                .count()
                == 0
        );
        // Between runs the queue never held more than one job for the source: one successor.
        for w in calls.windows(2) {
            let gap = w[1].start - w[0].end.unwrap();
            assert!(
                gap <= Duration::from_secs(1),
                "the next run waited {gap:?} although fires were missed"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn two_sources_run_one_after_the_other() {
        let (runner, fake) = fake(|_, _| Plan::Ok(40));
        let cancel = CancellationToken::new();
        let s =
            Scheduler::with_options(every_minute(&["a", "b"]), runner, cancel.clone(), options());
        let task = start(&s);
        sleep(Duration::from_secs(5 * 60)).await;
        cancel.cancel();
        task.await.unwrap();
        let calls = fake.calls();
        assert_eq!(fake.max_running.load(Ordering::SeqCst), 1);
        assert_serial(&calls);
        assert!(
            calls
                .iter()
                .any(|c| c.request.sources == Some(vec!["a".into()]))
        );
        assert!(
            calls
                .iter()
                .any(|c| c.request.sources == Some(vec!["b".into()]))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn manual_trigger_waits_behind_the_running_job_and_can_be_awaited() {
        let (runner, fake) = fake(|n, _| Plan::Ok(if n == 0 { 100 } else { 5 }));
        let cancel = CancellationToken::new();
        let s = Scheduler::with_options(vec![], runner, cancel.clone(), options());
        let task = start(&s);
        let first = s.trigger(SyncRequest::manual(None, true)).unwrap();
        sleep(Duration::from_secs(10)).await;
        let second = s
            .trigger(SyncRequest::manual(Some(vec!["a".into()]), false))
            .unwrap();
        assert_ne!(first.id(), second.id());
        let st = s.status();
        assert_eq!(st.running, Some(first.id()));
        assert_eq!(st.queued, vec![second.id()]);
        assert_eq!(s.job(second.id()).unwrap().state, JobState::Queued);

        let waited_from = Instant::now();
        let outcome = second.wait().await;
        assert!(outcome.ok, "{}", outcome.summary);
        assert!(outcome.summary.contains("1 added"), "{}", outcome.summary);
        // It had to wait for the 100 s job (90 s left) and then ran its own 5 s.
        assert!(waited_from.elapsed() >= Duration::from_secs(95));
        let calls = fake.calls();
        assert_eq!(calls.len(), 2);
        assert_serial(&calls);
        assert!(calls[0].request.full && calls[0].request.sources.is_none());
        let first_status = s.job(first.id()).unwrap();
        let second_status = s.job(calls[1].id).unwrap();
        assert_eq!(
            (first_status.state, second_status.state),
            (JobState::Done, JobState::Done)
        );
        assert!(second_status.started_at.unwrap() >= first_status.finished_at.unwrap());
        // A finished job can still be awaited.
        assert!(first.wait().await.ok);
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn failures_and_panics_do_not_stop_the_schedule() {
        let (runner, fake) = fake(|n, _| match n {
            0 => Plan::Fail(5),
            1 => Plan::Panic,
            _ => Plan::Ok(5),
        });
        let cancel = CancellationToken::new();
        let s = Scheduler::with_options(every_minute(&["a"]), runner, cancel.clone(), options());
        let task = start(&s);
        sleep(Duration::from_secs(5 * 60 + 30)).await;
        let st = s.status();
        cancel.cancel();
        task.await.unwrap();

        assert!(fake.calls().len() >= 4, "{} runs", fake.calls().len());
        let mut jobs = st.jobs.clone();
        jobs.reverse();
        assert_eq!(jobs[0].state, JobState::Failed);
        assert_eq!(jobs[0].summary.as_deref(), Some("zendesk said 500"));
        assert_eq!(jobs[1].state, JobState::Failed);
        assert_eq!(
            jobs[1].summary.as_deref(),
            Some("sync panicked: runner exploded")
        );
        assert!(
            jobs[2..]
                .iter()
                .filter(|j| j.state.is_finished())
                .all(|j| j.state == JobState::Done)
        );
        assert!(jobs[2..].iter().any(|j| j.state == JobState::Done));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_is_reported_to_the_waiting_caller() {
        let (runner, _) = fake(|_, _| Plan::Panic);
        let s = Scheduler::with_options(vec![], runner, CancellationToken::new(), options());
        let _task = start(&s);
        let outcome = s
            .trigger(SyncRequest::manual(None, false))
            .unwrap()
            .wait()
            .await;
        assert!(!outcome.ok);
        assert!(outcome.summary.contains("runner exploded"));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_the_running_job_finish_and_cancels_the_queue() {
        let (runner, fake) = fake(|_, _| Plan::Ok(100));
        let cancel = CancellationToken::new();
        let s = Scheduler::with_options(every_minute(&["a"]), runner, cancel.clone(), options());
        let running = s.trigger(SyncRequest::manual(None, false)).unwrap();
        let queued = s
            .trigger(SyncRequest::manual(Some(vec!["a".into()]), true))
            .unwrap();
        let task = start(&s);
        sleep(Duration::from_secs(10)).await;
        let began = Instant::now();
        cancel.cancel();
        task.await.unwrap();

        // run() returned only after the in-flight job's remaining 90 s.
        assert!(
            began.elapsed() >= Duration::from_secs(90),
            "{:?}",
            began.elapsed()
        );
        let calls = fake.calls();
        assert_eq!(
            calls.len(),
            1,
            "the queued job must not start during shutdown"
        );
        assert!(calls[0].end.is_some());
        assert!(
            calls[0].saw_cancel,
            "the runner is handed the shutdown token"
        );
        assert!(running.wait().await.ok);
        let q = queued.wait().await;
        assert!(
            !q.ok && q.summary.contains("shutting down"),
            "{}",
            q.summary
        );
        let st = s.status();
        assert!(st.shutting_down);
        assert!(st.queued.is_empty());
        assert!(st.jobs.iter().any(|j| j.state == JobState::Cancelled));
        assert_eq!(
            s.trigger(SyncRequest::manual(None, false)).unwrap_err(),
            SchedulerError::ShuttingDown
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queued_duplicates_are_merged() {
        let (runner, fake) = fake(|_, _| Plan::Ok(1));
        let cancel = CancellationToken::new();
        let s = Scheduler::with_options(vec![], runner, cancel.clone(), options());
        // Not running yet, so everything stays queued.
        let w1 = s.trigger(SyncRequest::webhook(vec![7], None)).unwrap();
        let w2 = s.trigger(SyncRequest::webhook(vec![3, 7], None)).unwrap();
        let other_source = s
            .trigger(SyncRequest::webhook(vec![7], Some(vec!["b".into()])))
            .unwrap();
        let m1 = s.trigger(SyncRequest::manual(None, false)).unwrap();
        let m2 = s.trigger(SyncRequest::manual(None, false)).unwrap();
        let m3 = s.trigger(SyncRequest::manual(None, true)).unwrap();
        assert_eq!(w1.id(), w2.id());
        assert_ne!(w1.id(), other_source.id());
        assert_eq!(m1.id(), m2.id());
        assert_ne!(m1.id(), m3.id());
        let j = s.job(w1.id()).unwrap();
        assert_eq!(
            (j.articles, j.triggers, j.kind),
            (Some(vec![3, 7]), 2, JobKind::Webhook)
        );
        assert_eq!(s.status().queued.len(), 4);

        let task = start(&s);
        assert!(m3.wait().await.ok);
        let calls = fake.calls();
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[0].request.only_articles, Some(vec![3, 7]));
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_fire_joins_a_queued_job_that_covers_its_source() {
        let (runner, fake) = fake(|_, _| Plan::Ok(120));
        let cancel = CancellationToken::new();
        let s = Scheduler::with_options(every_minute(&["a"]), runner, cancel.clone(), options());
        let busy = s
            .trigger(SyncRequest::manual(Some(vec!["x".into()]), false))
            .unwrap();
        let all = s.trigger(SyncRequest::manual(None, false)).unwrap();
        let task = start(&s);
        // The 120 s busy job lets at least one fire of `a` happen while `all` is queued.
        sleep(Duration::from_secs(100)).await;
        assert!(
            s.job(all.id()).unwrap().triggers >= 2,
            "the fire was not merged into the queued all-sources job"
        );
        assert_eq!(s.status().queued, vec![all.id()]);
        drop(busy);
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(fake.calls().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn next_run_follows_the_schedule_with_bounded_jitter() {
        let (runner, fake) = fake(|_, _| Plan::Ok(1));
        let cancel = CancellationToken::new();
        let schedule = Schedule::parse("*/5 * * * *").unwrap();
        let opts = SchedulerOptions {
            jitter: true,
            ..options()
        };
        let s = Scheduler::with_options(
            vec![("a".into(), schedule.clone())],
            runner,
            cancel.clone(),
            opts,
        );
        assert_eq!(s.next_run("nope"), None);
        let task = start(&s);
        sleep(Duration::from_millis(10)).await;
        let planned = s.next_run("a").unwrap();
        let cron = schedule.next_after(s.inner.anchor.0).unwrap();
        assert!(
            planned >= cron && planned <= cron + TimeDelta::seconds(30),
            "{planned} vs {cron}"
        );
        let st = s.status();
        assert_eq!(st.schedules[0].schedule, "0 */5 * * * *");
        assert_eq!(st.schedules[0].next_run, Some(planned));
        // The job is queued at the planned time, not before.
        let until = (planned - s.inner.now()).to_std().unwrap();
        sleep(until - Duration::from_millis(500)).await;
        assert!(fake.calls().is_empty());
        sleep(Duration::from_secs(1)).await;
        assert_eq!(fake.calls().len(), 1);
        assert!(s.next_run("a").unwrap() > planned + TimeDelta::seconds(200));
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn history_is_bounded_and_status_serializes() {
        let (runner, _) = fake(|_, _| Plan::Ok(1));
        let cancel = CancellationToken::new();
        let opts = SchedulerOptions {
            history: 3,
            ..options()
        };
        let s = Scheduler::with_options(vec![], runner, cancel.clone(), opts);
        let task = start(&s);
        let mut handles = Vec::new();
        for i in 0..5 {
            let h = s.trigger(SyncRequest::manual(None, i % 2 == 0)).unwrap();
            handles.push(h.clone());
            h.wait().await;
        }
        // A job forgotten by the history still answers handles taken before.
        assert!(handles[0].clone().wait().await.ok);
        let st = s.status();
        assert_eq!(
            st.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![5, 4, 3]
        );
        assert!(s.job(1).is_none());
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["jobs"][0]["kind"], "manual");
        assert_eq!(json["jobs"][0]["state"], "done");
        assert_eq!(json["jobs"][0]["report"]["sources"][0]["source"], "a");
        assert!(json["jobs"][0]["finished_at"].is_string());
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_run_call_does_not_start_a_second_worker() {
        let (runner, fake) = fake(|_, _| Plan::Ok(30));
        let cancel = CancellationToken::new();
        let s = Scheduler::with_options(vec![], runner, cancel.clone(), options());
        let t1 = start(&s);
        tokio::task::yield_now().await;
        // The first run() owns the worker; a second one returns at once.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), s.run())
                .await
                .is_ok()
        );
        let a = s.trigger(SyncRequest::manual(None, false)).unwrap();
        let b = s.trigger(SyncRequest::manual(None, true)).unwrap();
        a.wait().await;
        b.wait().await;
        assert_eq!(fake.max_running.load(Ordering::SeqCst), 1);
        cancel.cancel();
        t1.await.unwrap();
    }

    #[test]
    fn request_helpers() {
        let r = SyncRequest::manual(Some(vec!["a".into()]), true);
        assert!(r.selects("a") && !r.selects("b"));
        assert!(r.covers("a"));
        assert!(!SyncRequest::webhook(vec![1], None).covers("a"));
        let o = SyncRequest::webhook(vec![1, 2], None).sync_options();
        assert_eq!((o.full, o.only_articles), (false, Some(vec![1, 2])));
    }

    #[test]
    fn outcome_summaries() {
        let report = SyncReport {
            sources: vec![
                SourceReport {
                    source: "a".into(),
                    result: "ok".into(),
                    added: 2,
                    updated: 1,
                    seconds: 1.25,
                    ..Default::default()
                },
                SourceReport {
                    source: "b".into(),
                    result: "error".into(),
                    error: Some("401".into()),
                    ..Default::default()
                },
            ],
        };
        let o = RunOutcome::from_report(report);
        assert!(!o.ok);
        assert_eq!(
            o.summary,
            "a: ok, 2 added, 1 updated, 0 removed in 1.2 s; b: error: 401"
        );
    }
}
