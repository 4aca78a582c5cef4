//! Prometheus metrics of `helpdex serve`, served at `/metrics` as Prometheus text 0.0.4 or, when
//! the `Accept` header asks for it, OpenMetrics 1.0 ([`Format::negotiate`]). Counts, sizes and
//! latencies only: never content, never a query, never a secret. Every label has a bounded set
//! of values (routes are templates, unknown methods are `other`, statuses are codes, Zendesk
//! errors are classes).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `helpdex_build_info` | gauge (1) | `version`, `commit` |
//! | `helpdex_sync_runs_total` | counter | `source`, `result` (`ok`/`error`) |
//! | `helpdex_sync_articles_total` | counter | `source`, `change` (`added`/`updated`/`removed`) |
//! | `helpdex_sync_duration_seconds` | histogram | `source` |
//! | `helpdex_last_sync_success_timestamp_seconds` | gauge | `source` |
//! | `helpdex_zendesk_requests_total` | counter | `source` |
//! | `helpdex_zendesk_errors_total` | counter | `source`, `status` (`401`, `403`, `404`, `429`, `4xx`, `5xx`, `transport`, `malformed`, `other`) |
//! | `helpdex_rate_limit_wait_seconds_total` | counter | `source` |
//! | `helpdex_webhooks_total` | counter | `outcome` (`accepted`, `duplicate`) |
//! | `helpdex_articles` | gauge | `visibility` (articles with a published translation) |
//! | `helpdex_translations` | gauge | `visibility`, `locale` |
//! | `helpdex_index_passages` | gauge | |
//! | `helpdex_vectors_embedded`, `helpdex_vectors_pending` | gauge | (passages with / still without a vector of the embedding model; absent without one) |
//! | `helpdex_index_bytes`, `helpdex_store_bytes` | gauge | |
//! | `helpdex_index_generation` | gauge (1) | `generation` |
//! | `helpdex_search_duration_seconds` | histogram | `kind` (`search`/`context`/`verify`/`article`), `surface` (`http`/`mcp`) |
//! | `helpdex_http_request_duration_seconds` | histogram | `route`, `method`, `status` |
//! | `process_*` | | CPU seconds, resident and virtual memory, open and max fds, threads, start time (Linux) |

use helpdex_core::model::Visibility;
use helpdex_core::reader::{ReadError, Reader};
use helpdex_core::store::{Count, StoreRead};
use helpdex_sync::SourceReport;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain`): what every scraper and `promtool` read.
    Classic,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics when it is asked for at least as
    /// strongly as plain text, else the classic format.
    pub fn negotiate(accept: &str) -> Format {
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Classic
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The `method` label of an HTTP request: one of a fixed set, else `other`, so a client
/// sending made-up methods cannot grow the label set.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// What a timed read was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// Cited passages.
    Search,
    /// A grounding context.
    Context,
    /// A stale-citation check.
    Verify,
    /// An article view.
    Article,
}

impl SearchKind {
    fn as_str(self) -> &'static str {
        match self {
            SearchKind::Search => "search",
            SearchKind::Context => "context",
            SearchKind::Verify => "verify",
            SearchKind::Article => "article",
        }
    }
}

/// The class of a failed sync's Zendesk error, from the error's message (the sync report
/// carries it as text): the HTTP status where there is one, else the kind of failure.
pub fn zendesk_error_class(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("(401)") {
        "401"
    } else if e.contains("(403)") {
        "403"
    } else if e.contains("answered 404") {
        "404"
    } else if e.contains("rate limit") {
        "429"
    } else if e.contains("server error 5") {
        "5xx"
    } else if e.contains("could not reach zendesk") {
        "transport"
    } else if e.contains("malformed response") {
        "malformed"
    } else if let Some(at) = e.find("zendesk answered 4") {
        let _ = at;
        "4xx"
    } else {
        "other"
    }
}

/// Sync durations: from a quiet incremental run to a first full sync of a large help center.
const SYNC_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// API and search latencies: searches answer in milliseconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    source: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    source: String,
    change: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    source: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SearchLabels {
    kind: String,
    surface: String,
}

/// What the store and index hold, read at scrape time so the gauges are never stale.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreSnapshot {
    /// Articles with a published translation, by visibility.
    pub articles: Vec<(Visibility, i64)>,
    /// Published translations by visibility and locale.
    pub translations: Vec<Count>,
    /// The live generation and its passages, once built.
    pub index: Option<(String, u64)>,
    /// Bytes of the live generation's directory.
    pub index_bytes: u64,
    /// Bytes of the state database (with its WAL).
    pub store_bytes: u64,
    /// Passages embedded and pending, when a model embeds in this directory.
    pub vectors: Option<(u64, u64)>,
}

impl StoreSnapshot {
    /// Reads counts and sizes of a data directory.
    pub fn read(reader: &Reader, data_dir: &Path) -> Result<StoreSnapshot, ReadError> {
        let (articles, translations) =
            reader.store(|s| s.snapshot(|s| Ok((s.article_counts()?, s.counts(None)?))))?;
        let index = reader.index_status().ok();
        let index_bytes = index
            .as_ref()
            .map(|i| {
                dir_bytes(
                    &data_dir
                        .join(helpdex_core::engine::TANTIVY_DIR)
                        .join(&i.generation),
                )
            })
            .unwrap_or(0);
        let store_bytes = ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                std::fs::metadata(
                    data_dir.join(format!("{}{suffix}", helpdex_core::store::DB_FILE)),
                )
                .ok()
            })
            .map(|m| m.len())
            .sum();
        let vectors = helpdex_core::vectors::status(reader)?.map(|v| (v.embedded, v.pending));
        Ok(StoreSnapshot {
            articles,
            translations,
            index: index.map(|i| (i.generation, i.passages)),
            index_bytes,
            store_bytes,
            vectors,
        })
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

type LabelPairs = Vec<(String, String)>;

/// Gauges whose value is 1 and whose meaning is their labels (build, live generation): the
/// current label set only, replaced when it changes. A gauge rather than an OpenMetrics
/// `info`, which the classic format and older `promtool` do not know.
#[derive(Debug, Clone)]
struct InfoGauge {
    name: &'static str,
    help: &'static str,
    labels: Arc<RwLock<Option<LabelPairs>>>,
}

impl InfoGauge {
    fn new(name: &'static str, help: &'static str) -> InfoGauge {
        InfoGauge {
            name,
            help,
            labels: Arc::default(),
        }
    }

    fn set(&self, labels: LabelPairs) {
        *self.labels.write().unwrap_or_else(|e| e.into_inner()) = Some(labels);
    }
}

impl Collector for InfoGauge {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let current = self
            .labels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(labels) = current else {
            return Ok(());
        };
        let mut metric =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Gauge)?;
        ConstGauge::new(1i64).encode(metric.encode_family(&labels)?)
    }
}

/// The process's own resources, read from `/proc` at scrape time (Linux; nothing elsewhere).
#[derive(Debug, Clone, Copy)]
struct ProcessCollector;

/// What [`ProcessCollector`] reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    threads: u64,
    start_time_seconds: Option<f64>,
    open_fds: u64,
    max_fds: Option<u64>,
}

/// Linux reports `/proc/self/stat` times in clock ticks of 100 Hz (`USER_HZ`, fixed by the ABI).
const CLOCK_TICKS: f64 = 100.0;

fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime) = (field(14)?, field(15)?);
    let threads = field(20)?;
    let start_ticks = field(22)?;
    let virtual_bytes = field(23)?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let resident_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    // `/proc/stat` is hidden under systemd's ProcSubset=pid: then the start time is left out.
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / CLOCK_TICKS,
        resident_bytes: resident_kb * 1024,
        virtual_bytes,
        threads,
        start_time_seconds: boot.map(|b| b as f64 + start_ticks as f64 / CLOCK_TICKS),
        open_fds,
        max_fds: crate::http::open_file_limit(),
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = process_stats() else {
            return Ok(());
        };
        let m = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(p.cpu_seconds).encode(m)?;
        let mut gauge = |name: &str, help: &str, v: f64| -> Result<(), std::fmt::Error> {
            let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(m)
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            p.resident_bytes as f64,
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            p.virtual_bytes as f64,
        )?;
        gauge("process_threads", "Number of OS threads", p.threads as f64)?;
        if let Some(t) = p.start_time_seconds {
            gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                t,
            )?;
        }
        gauge(
            "process_open_fds",
            "Number of open file descriptors",
            p.open_fds as f64,
        )?;
        if let Some(max) = p.max_fds {
            gauge(
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The process's metrics; share it as `Arc<Metrics>`, every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sync_runs: Family<RunLabels, Counter>,
    sync_articles: Family<ChangeLabels, Counter>,
    sync_duration: HistogramFamily<SourceLabels>,
    last_success: Family<SourceLabels, Gauge>,
    zendesk_requests: Family<SourceLabels, Counter>,
    zendesk_errors: Family<StatusLabels, Counter>,
    rate_limit_wait: Family<SourceLabels, Counter<f64, AtomicU64>>,
    webhooks: Family<OutcomeLabels, Counter>,
    articles: Family<Vec<(String, String)>, Gauge>,
    translations: Family<Vec<(String, String)>, Gauge>,
    passages: Gauge,
    vectors_embedded: Gauge,
    vectors_pending: Gauge,
    index_bytes: Gauge,
    store_bytes: Gauge,
    search_duration: HistogramFamily<SearchLabels>,
    http_duration: HistogramFamily<HttpLabels>,
    generation: InfoGauge,
    build: InfoGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every helpdex metric.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            sync_runs: Family::default(),
            sync_articles: Family::default(),
            sync_duration: Family::new_with_constructor(|| Histogram::new(SYNC_BUCKETS)),
            last_success: Family::default(),
            zendesk_requests: Family::default(),
            zendesk_errors: Family::default(),
            rate_limit_wait: Family::default(),
            webhooks: Family::default(),
            articles: Family::default(),
            translations: Family::default(),
            passages: Gauge::default(),
            vectors_embedded: Gauge::default(),
            vectors_pending: Gauge::default(),
            index_bytes: Gauge::default(),
            store_bytes: Gauge::default(),
            search_duration: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            http_duration: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            generation: InfoGauge::new("helpdex_index_generation", "The live index generation (1)"),
            build: InfoGauge::new("helpdex_build_info", "Version and commit of this build (1)"),
            registry: Registry::default(),
        };
        let r = &mut m.registry;
        r.register_collector(Box::new(m.build.clone()));
        r.register(
            "helpdex_sync_runs",
            "Sync runs per source and result",
            m.sync_runs.clone(),
        );
        r.register(
            "helpdex_sync_articles",
            "Articles added, updated or removed by syncs",
            m.sync_articles.clone(),
        );
        r.register(
            "helpdex_sync_duration_seconds",
            "Wall time of one source's sync",
            m.sync_duration.clone(),
        );
        r.register(
            "helpdex_last_sync_success_timestamp_seconds",
            "Unix time of the last successful sync per source",
            m.last_success.clone(),
        );
        r.register(
            "helpdex_zendesk_requests",
            "HTTP requests made to Zendesk, retries included",
            m.zendesk_requests.clone(),
        );
        r.register(
            "helpdex_zendesk_errors",
            "Sync runs that failed on a Zendesk error, by HTTP status or kind",
            m.zendesk_errors.clone(),
        );
        r.register(
            "helpdex_rate_limit_wait_seconds",
            "Seconds spent waiting on Zendesk rate limits",
            m.rate_limit_wait.clone(),
        );
        r.register(
            "helpdex_webhooks",
            "Zendesk webhook deliveries accepted or recognised as duplicates",
            m.webhooks.clone(),
        );
        r.register(
            "helpdex_articles",
            "Articles with a published translation, per visibility",
            m.articles.clone(),
        );
        r.register(
            "helpdex_translations",
            "Published translations per visibility and locale",
            m.translations.clone(),
        );
        r.register(
            "helpdex_index_passages",
            "Passages in the live index",
            m.passages.clone(),
        );
        r.register(
            "helpdex_vectors_embedded",
            "Passages with a vector of the embedding model",
            m.vectors_embedded.clone(),
        );
        r.register(
            "helpdex_vectors_pending",
            "Passages still waiting for their vector (ranked by BM25 alone meanwhile)",
            m.vectors_pending.clone(),
        );
        r.register(
            "helpdex_index_bytes",
            "Size of the live index generation on disk",
            m.index_bytes.clone(),
        );
        r.register(
            "helpdex_store_bytes",
            "Size of the state database on disk, WAL included",
            m.store_bytes.clone(),
        );
        r.register_collector(Box::new(m.generation.clone()));
        r.register(
            "helpdex_search_duration_seconds",
            "Time to answer a search, context, verify or article read, HTTP and MCP alike",
            m.search_duration.clone(),
        );
        r.register(
            "helpdex_http_request_duration_seconds",
            "Latency of helpdex API requests",
            m.http_duration.clone(),
        );
        r.register_collector(Box::new(ProcessCollector));
        m
    }

    /// Sets the build info (version and commit).
    pub fn set_build(&self, build: &crate::BuildInfo) {
        self.build.set(vec![
            ("version".into(), build.version.to_string()),
            ("commit".into(), build.commit.to_string()),
        ]);
    }

    /// Records one source's sync (call once per entry of a `SyncReport`).
    pub fn record_sync(&self, report: &SourceReport) {
        let source = SourceLabels {
            source: report.source.clone(),
        };
        let failed = report.error.is_some() || report.result == "error";
        let result = if failed { "error" } else { "ok" };
        self.sync_runs
            .get_or_create(&RunLabels {
                source: report.source.clone(),
                result: result.into(),
            })
            .inc();
        if let Some(e) = &report.error {
            self.zendesk_errors
                .get_or_create(&StatusLabels {
                    source: report.source.clone(),
                    status: zendesk_error_class(e).into(),
                })
                .inc();
        }
        for (change, n) in [
            ("added", report.added),
            ("updated", report.updated),
            ("removed", report.removed),
        ] {
            let labels = ChangeLabels {
                source: report.source.clone(),
                change: change.into(),
            };
            self.sync_articles.get_or_create(&labels).inc_by(n);
        }
        if report.seconds.is_finite() && report.seconds >= 0.0 {
            self.sync_duration
                .get_or_create(&source)
                .observe(report.seconds);
        }
        if !failed {
            let now = chrono::Utc::now().timestamp();
            self.last_success.get_or_create(&source).set(now);
        }
        self.zendesk_requests
            .get_or_create(&source)
            .inc_by(report.requests);
        let wait = report.rate_limit_wait_secs;
        let wait = if wait.is_finite() && wait > 0.0 {
            wait
        } else {
            0.0
        };
        self.rate_limit_wait.get_or_create(&source).inc_by(wait);
    }

    /// Records a webhook delivery (`accepted` or `duplicate`).
    pub fn record_webhook(&self, outcome: &'static str) {
        self.webhooks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Records one API request. `route` must be the matched route template (axum's
    /// `MatchedPath`, e.g. `/v1/admin/jobs/{id}`), never the raw path, and `method` one of
    /// [`method_label`]'s values, to bound the number of series; use `"unmatched"` for 404s.
    pub fn record_http(&self, route: &str, method: &'static str, status: u16, duration: Duration) {
        let labels = HttpLabels {
            route: route.into(),
            method: method.into(),
            status: status.to_string(),
        };
        self.http_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Records the time of one read (search, context, verify, article) on a surface (`http`,
    /// `mcp`), measured around the read itself.
    pub fn observe_search(&self, kind: SearchKind, surface: &'static str, took: Duration) {
        self.search_duration
            .get_or_create(&SearchLabels {
                kind: kind.as_str().into(),
                surface: surface.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// Sets the store and index gauges from a scrape-time snapshot. Series of visibilities
    /// and locales that no longer exist are dropped.
    pub fn set_store(&self, s: &StoreSnapshot) {
        self.articles.clear();
        for v in ["public", "signed_in", "restricted", "internal"] {
            let n = s
                .articles
                .iter()
                .filter(|(vis, _)| vis.as_str() == v)
                .map(|(_, n)| *n)
                .sum::<i64>();
            self.articles
                .get_or_create(&vec![("visibility".into(), v.into())])
                .set(n);
        }
        self.translations.clear();
        for c in &s.translations {
            self.translations
                .get_or_create(&vec![
                    ("visibility".into(), c.visibility.as_str().into()),
                    ("locale".into(), c.locale.clone()),
                ])
                .set(c.translations);
        }
        if let Some((generation, passages)) = &s.index {
            self.generation
                .set(vec![("generation".into(), generation.clone())]);
            self.passages
                .set(i64::try_from(*passages).unwrap_or(i64::MAX));
        }
        if let Some((embedded, pending)) = s.vectors {
            self.vectors_embedded
                .set(i64::try_from(embedded).unwrap_or(i64::MAX));
            self.vectors_pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        self.index_bytes
            .set(i64::try_from(s.index_bytes).unwrap_or(i64::MAX));
        self.store_bytes
            .set(i64::try_from(s.store_bytes).unwrap_or(i64::MAX));
    }

    /// The exposition of every metric in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        match format {
            Format::OpenMetrics => out,
            Format::Classic => to_classic(&out),
        }
    }
}

/// OpenMetrics text to Prometheus text 0.0.4: counter families are named with their `_total`
/// suffix (the classic format names a family after its samples), `info` becomes a gauge named
/// `_info`, and `# UNIT` and `# EOF` lines go.
fn to_classic(om: &str) -> String {
    let mut renamed = std::collections::HashMap::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split(' ');
            if let (Some(name), Some(ty)) = (p.next(), p.next()) {
                match ty {
                    "counter" => {
                        renamed.insert(name.to_string(), (format!("{name}_total"), "counter"));
                    }
                    "info" => {
                        renamed.insert(name.to_string(), (format!("{name}_info"), "gauge"));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((new, ty)) = renamed.get(name) {
                let tail = if prefix == "# TYPE " { *ty } else { tail };
                out.push_str(&format!("{prefix}{new} {tail}\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(source: &str, error: Option<&str>) -> SourceReport {
        SourceReport {
            source: source.into(),
            result: if error.is_some() { "error" } else { "ok" }.into(),
            error: error.map(str::to_string),
            requests: 12,
            added: 3,
            updated: 2,
            removed: 1,
            rate_limit_wait_secs: 1.5,
            seconds: 4.0,
            ..SourceReport::default()
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn sync_reports_become_counters_and_histograms() {
        let m = Metrics::new();
        m.record_sync(&report("acme", None));
        m.record_sync(&report("acme", None));
        m.record_sync(&report(
            "acme",
            Some("could not reach zendesk at acme.test after 5 attempts: connection refused"),
        ));
        let text = m.render(Format::OpenMetrics);
        assert_eq!(
            line(
                &text,
                r#"helpdex_sync_runs_total{source="acme",result="ok"}"#
            ),
            Some(r#"helpdex_sync_runs_total{source="acme",result="ok"} 2"#)
        );
        assert_eq!(
            line(
                &text,
                r#"helpdex_sync_runs_total{source="acme",result="error"}"#
            ),
            Some(r#"helpdex_sync_runs_total{source="acme",result="error"} 1"#)
        );
        assert!(
            text.contains(r#"helpdex_zendesk_errors_total{source="acme",status="transport"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_sync_articles_total{source="acme",change="added"} 9"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_zendesk_requests_total{source="acme"} 36"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_rate_limit_wait_seconds_total{source="acme"} 4.5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_sync_duration_seconds_count{source="acme"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_sync_duration_seconds_bucket{le="5.0",source="acme"} 3"#),
            "{text}"
        );
        assert!(text.contains("# TYPE helpdex_sync_runs counter"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn zendesk_errors_are_classed_by_status_from_the_client_s_own_messages() {
        use helpdex_zendesk::ZendeskError as Z;
        let p = || "/api/v2/help_center/incremental/articles.json".to_string();
        let cases = [
            (
                Z::Unauthorized {
                    path: p(),
                    what: "the API token",
                }
                .to_string(),
                "401",
            ),
            (
                Z::Forbidden {
                    path: p(),
                    hint: "admin".into(),
                }
                .to_string(),
                "403",
            ),
            (Z::NotFound { path: p() }.to_string(), "404"),
            (
                Z::RateLimited {
                    path: p(),
                    wait: Duration::from_secs(900),
                    cap: Duration::from_secs(300),
                }
                .to_string(),
                "429",
            ),
            (
                Z::Server {
                    path: p(),
                    status: 503,
                    attempts: 5,
                }
                .to_string(),
                "5xx",
            ),
            (
                Z::Client {
                    path: p(),
                    status: 422,
                    detail: "x".into(),
                }
                .to_string(),
                "4xx",
            ),
            (
                Z::Transport {
                    path: p(),
                    attempts: 5,
                    detail: "connection failed".into(),
                }
                .to_string(),
                "transport",
            ),
            (
                Z::Malformed {
                    path: p(),
                    attempts: 5,
                    detail: "eof".into(),
                }
                .to_string(),
                "malformed",
            ),
            ("disk full".to_string(), "other"),
        ];
        for (message, class) in cases {
            assert_eq!(
                zendesk_error_class(&format!("syncing acme: {message}")),
                class,
                "{message}"
            );
        }
    }

    #[test]
    fn unknown_methods_share_one_label() {
        use axum::http::Method;
        let m = Metrics::new();
        for i in 0..100 {
            let method = Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
            m.record_http(
                "unmatched",
                method_label(&method),
                405,
                Duration::from_millis(1),
            );
        }
        let text = m.render(Format::Classic);
        let series = text
            .lines()
            .filter(|l| l.starts_with("helpdex_http_request_duration_seconds_count"))
            .count();
        assert_eq!(series, 1, "{text}");
        assert!(text.contains(r#"method="other""#), "{text}");
    }

    #[test]
    fn classic_names_counter_families_after_their_samples() {
        let m = Metrics::new();
        m.record_sync(&report("acme", None));
        m.set_build(&crate::BuildInfo {
            version: "1.2.3",
            commit: "abc123",
        });
        let text = m.render(Format::Classic);
        assert!(
            text.contains("# TYPE helpdex_sync_runs_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP helpdex_sync_runs_total Sync runs"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("# UNIT"), "{text}");
        assert!(
            text.contains("# TYPE helpdex_sync_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_build_info{version="1.2.3",commit="abc123"} 1"#),
            "{text}"
        );
        // Every sample belongs to the family its TYPE line names.
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap_or("");
            assert!(
                families.iter().any(|f| name == *f
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name == format!("{f}{s}"))),
                "{name} has no family in {families:?}"
            );
        }
    }

    #[test]
    fn negotiation_prefers_what_the_scraper_asks_for() {
        assert_eq!(Format::negotiate(""), Format::Classic);
        assert_eq!(Format::negotiate("text/plain"), Format::Classic);
        assert_eq!(
            Format::negotiate(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate("text/plain;q=1, application/openmetrics-text;q=0.5"),
            Format::Classic
        );
        assert_eq!(
            Format::negotiate("application/openmetrics-text;q=0"),
            Format::Classic
        );
    }

    #[test]
    fn store_gauges_count_articles_and_drop_vanished_series() {
        let m = Metrics::new();
        let mut s = StoreSnapshot {
            articles: vec![(Visibility::Public, 10), (Visibility::Internal, 2)],
            translations: vec![Count {
                visibility: Visibility::Public,
                locale: "de".into(),
                translations: 7,
            }],
            index: Some(("g1".into(), 120)),
            index_bytes: 4096,
            store_bytes: 8192,
            vectors: Some((100, 30)),
        };
        m.set_store(&s);
        s.translations.clear();
        s.index = Some(("g2".into(), 130));
        m.set_store(&s);
        let text = m.render(Format::Classic);
        assert!(
            text.contains("helpdex_articles{visibility=\"public\"} 10\n"),
            "{text}"
        );
        assert!(
            text.contains("helpdex_articles{visibility=\"signed_in\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("helpdex_translations{"), "{text}");
        assert!(
            text.contains("helpdex_index_generation{generation=\"g2\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("g1"), "{text}");
        assert!(text.contains("helpdex_index_passages 130\n"), "{text}");
        assert!(text.contains("helpdex_index_bytes 4096\n"), "{text}");
        assert!(text.contains("helpdex_vectors_embedded 100\n"), "{text}");
        assert!(text.contains("helpdex_vectors_pending 30\n"), "{text}");
    }

    #[test]
    fn process_metrics_are_read_on_linux() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        let p = process_stats().expect("readable /proc");
        assert!(
            p.resident_bytes > 0 && p.threads >= 1 && p.open_fds >= 3,
            "{p:?}"
        );
        let text = Metrics::new().render(Format::Classic);
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }
}
