//! Prometheus metrics for `GET /metrics`, in the OpenMetrics text format.
//!
//! Built on `prometheus-client`, the Prometheus project's Rust client. It appends `_total` to
//! counter names, so the counter registered as `helpdex_sync_runs` is exposed as
//! `helpdex_sync_runs_total`. Serve [`Metrics::render`] with [`CONTENT_TYPE`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `helpdex_sync_runs_total` | counter | `source`, `result` (`ok`/`error`) |
//! | `helpdex_sync_articles_total` | counter | `source`, `change` (`added`/`updated`/`removed`) |
//! | `helpdex_sync_duration_seconds` | histogram | `source` |
//! | `helpdex_last_sync_success_timestamp_seconds` | gauge | `source` |
//! | `helpdex_zendesk_requests_total` | counter | `source` |
//! | `helpdex_rate_limit_wait_seconds_total` | counter | `source` |
//! | `helpdex_articles` | gauge | `visibility` |
//! | `helpdex_http_request_duration_seconds` | histogram | `route`, `method`, `status` |
//! | `helpdex_index_generation_info` | info (always 1) | `generation` |

use helpdex_sync::SourceReport;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Sync durations: from a quiet incremental run to a first full sync of a large help center.
const SYNC_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// API latencies: searches answer in milliseconds.
const HTTP_BUCKETS: [f64; 12] = [
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
struct VisibilityLabels {
    visibility: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: String,
}

/// The live generation as an OpenMetrics info metric, read at scrape time (the library's
/// `Info` is fixed at registration, but a rebuild swaps the generation).
#[derive(Debug, Clone, Default)]
struct GenerationInfo(Arc<RwLock<Option<String>>>);

impl Collector for GenerationInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let current = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(generation) = current else {
            return Ok(());
        };
        let info = Info::new(vec![("generation".to_string(), generation)]);
        let metric = encoder.encode_descriptor(
            "helpdex_index_generation",
            "The live index generation",
            None,
            info.metric_type(),
        )?;
        info.encode(metric)
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
    rate_limit_wait: Family<SourceLabels, Counter<f64, AtomicU64>>,
    articles: Family<VisibilityLabels, Gauge>,
    http_duration: HistogramFamily<HttpLabels>,
    generation: GenerationInfo,
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
            rate_limit_wait: Family::default(),
            articles: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS)),
            generation: GenerationInfo::default(),
            registry: Registry::default(),
        };
        m.registry.register(
            "helpdex_sync_runs",
            "Sync runs per source and result",
            m.sync_runs.clone(),
        );
        m.registry.register(
            "helpdex_sync_articles",
            "Articles added, updated or removed by syncs",
            m.sync_articles.clone(),
        );
        m.registry.register(
            "helpdex_sync_duration_seconds",
            "Wall time of one source's sync",
            m.sync_duration.clone(),
        );
        m.registry.register(
            "helpdex_last_sync_success_timestamp_seconds",
            "Unix time of the last successful sync per source",
            m.last_success.clone(),
        );
        m.registry.register(
            "helpdex_zendesk_requests",
            "HTTP requests made to Zendesk, retries included",
            m.zendesk_requests.clone(),
        );
        m.registry.register(
            "helpdex_rate_limit_wait_seconds",
            "Seconds spent waiting on Zendesk rate limits",
            m.rate_limit_wait.clone(),
        );
        m.registry.register(
            "helpdex_articles",
            "Indexed articles per visibility",
            m.articles.clone(),
        );
        m.registry.register(
            "helpdex_http_request_duration_seconds",
            "Latency of helpdex API requests",
            m.http_duration.clone(),
        );
        m.registry
            .register_collector(Box::new(m.generation.clone()));
        m
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

    /// Records one API request. `route` must be the matched route template (axum's
    /// `MatchedPath`, e.g. `/v1/admin/jobs/{id}`), never the raw path, to bound the number of
    /// series; use `"unmatched"` for 404s.
    pub fn record_http(&self, route: &str, method: &str, status: u16, duration: Duration) {
        let labels = HttpLabels {
            route: route.into(),
            method: method.into(),
            status: status.to_string(),
        };
        self.http_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Sets the number of indexed articles of one visibility (`public`, `internal`); call at
    /// scrape time from the store's counts.
    pub fn set_articles(&self, visibility: &str, n: u64) {
        let labels = VisibilityLabels {
            visibility: visibility.into(),
        };
        self.articles
            .get_or_create(&labels)
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the live index generation, replacing the previous one.
    pub fn set_index_generation(&self, generation: &str) {
        *self.generation.0.write().unwrap_or_else(|e| e.into_inner()) =
            Some(generation.to_string());
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
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
        m.record_sync(&report("acme", Some("zendesk unreachable")));
        let text = m.render();
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
            text.contains(r#"helpdex_sync_duration_seconds_sum{source="acme"} 12.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_sync_duration_seconds_bucket{le="5.0",source="acme"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helpdex_sync_duration_seconds_bucket{le="2.5",source="acme"} 0"#),
            "{text}"
        );
        assert!(text.contains("# TYPE helpdex_sync_runs counter"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn last_success_only_moves_on_success() {
        let m = Metrics::new();
        m.record_sync(&SourceReport {
            rate_limit_wait_secs: 0.0,
            ..report("broken", Some("401"))
        });
        // Series exist from the first sync, even at zero.
        assert!(
            m.render()
                .contains("helpdex_rate_limit_wait_seconds_total{source=\"broken\"} 0.0\n")
        );
        assert!(
            !m.render()
                .contains(r#"helpdex_last_sync_success_timestamp_seconds{source="broken"}"#)
        );
        m.record_sync(&report("fine", None));
        let text = m.render();
        let l = line(
            &text,
            r#"helpdex_last_sync_success_timestamp_seconds{source="fine"}"#,
        )
        .unwrap();
        let t: i64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((t - chrono::Utc::now().timestamp()).abs() < 60);
    }

    #[test]
    fn http_requests_are_a_latency_histogram() {
        let m = Metrics::new();
        m.record_http("/v1/search", "GET", 200, Duration::from_millis(3));
        m.record_http("/v1/search", "GET", 200, Duration::from_millis(40));
        m.record_http("/v1/search", "GET", 400, Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains("# TYPE helpdex_http_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains(r#"helpdex_http_request_duration_seconds_count{route="/v1/search",method="GET",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"helpdex_http_request_duration_seconds_bucket{le="0.005",route="/v1/search",method="GET",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"helpdex_http_request_duration_seconds_count{route="/v1/search",method="GET",status="400"} 1"#), "{text}");
    }

    #[test]
    fn gauges_are_set_not_added() {
        let m = Metrics::new();
        assert!(
            !m.render().contains("helpdex_index_generation"),
            "no generation before one is set"
        );
        m.set_articles("public", 10);
        m.set_articles("public", 7);
        m.set_articles("internal", 2);
        m.set_index_generation("g1");
        m.set_index_generation("g2");
        m.set_index_generation("g2");
        let text = m.render();
        assert!(
            text.contains("helpdex_articles{visibility=\"public\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("helpdex_articles{visibility=\"internal\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE helpdex_index_generation info\n"),
            "{text}"
        );
        assert!(
            text.contains("helpdex_index_generation_info{generation=\"g2\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("generation=\"g1\""), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.record_http("/v1/\"odd\"", "GET", 200, Duration::from_millis(1));
        assert!(
            m.render().contains(r#"route="/v1/\"odd\"""#),
            "{}",
            m.render()
        );
    }
}
