//! Closed-loop HTTP load: `conns` keep-alive connections, each sending its next request as soon
//! as the last one answered, for a fixed time. Shared by the benches that measure `helpdex
//! serve` (`#[path = "support/http_load.rs"] mod http_load;`).

use std::time::{Duration, Instant};

/// What one load run measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Answered requests per second.
    pub qps: f64,
    /// Median latency (ms).
    pub p50: f64,
    /// 99th percentile latency (ms).
    pub p99: f64,
    /// Requests that failed or answered other than 2xx.
    pub errors: usize,
}

/// GETs `{url}{query}` (the query URL-encoded, cycling through `queries`) over `conns`
/// connections for `duration`, with `bearer` as the key when given.
pub async fn load(
    url: &str,
    queries: &'static [&'static str],
    conns: usize,
    duration: Duration,
    bearer: Option<&'static str>,
) -> Load {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            // One client per connection: each task keeps exactly one connection alive.
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut i = c;
            while Instant::now() < deadline {
                let q = queries[i % queries.len()];
                i += 1;
                let started = Instant::now();
                let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
                let mut req = http.get(format!("{url}{encoded}"));
                if let Some(key) = bearer {
                    req = req.bearer_auth(key);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(_) => lat.push(started.elapsed().as_secs_f64() * 1e3),
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("join");
        all.extend(l);
        errors += e;
    }
    Load {
        qps: all.len() as f64 / duration.as_secs_f64(),
        p50: pct(&mut all, 0.5),
        p99: pct(&mut all, 0.99),
        errors,
    }
}

/// The `p` quantile of `v` (sorted in place), 0 when empty.
pub fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
