//! Bounded soak of `helpdex serve` (issue 12): the real binary under continuous search and
//! context load while scheduled syncs (every 10 s, with the emulator's articles edited between
//! them), signed webhooks (every 2 s) and reindexes (every 20 s) run. Every 5 s it prints the
//! requests, errors, p99 latency and the server's RSS; at the end, the figures of a quiet phase
//! measured first in the same run (search load only, no sync, webhook or reindex) beside the
//! mixed phase, and the RSS trend after warm-up.
//!
//! `cargo bench --bench soak [-- SECONDS]` (default 60; `-- 600` is the full ten minutes). Exits
//! non-zero when a request failed or the RSS of the last quarter of the mixed phase is more than
//! 20% above that of its second quarter (the first quarter is warm-up).

#[path = "support/demo_serve.rs"]
mod demo_serve;

use helpdex_emulator::{Emulator, EmulatorConfig, World};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CUSTOMER_KEY: &str = "soak-customer-key-0123456789";
const ADMIN_KEY: &str = "soak-admin-key-0123456789ab";
const WEBHOOK_SECRET: &str = "soak-webhook-secret";
const CLIENTS: usize = 4;
const WINDOW: Duration = Duration::from_secs(5);
const QUERIES: &[&str] = &[
    "refund",
    "export invoices to CSV",
    "reset my password",
    "two-factor authentication",
    "payout schedule",
    "chargeback dispute",
    "API keys",
    "Rechnung herunterladen",
];

#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    errors: u64,
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn p(lat: &mut [Duration], q: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    lat.sort_unstable();
    let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
    lat[i].as_secs_f64() * 1000.0
}

struct Phase {
    requests: u64,
    errors: u64,
    p50: f64,
    p99: f64,
    rss_kb: Vec<u64>,
    seconds: f64,
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/helpcenter");
    let world = World::load(&fixtures).expect("fixtures load");
    let articles: Vec<u64> = std::fs::read_dir(fixtures.join("articles"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.path()
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
        })
        .collect();
    let emu = Arc::new(
        Emulator::start(
            world,
            EmulatorConfig::default(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("emulator starts"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = demo_serve::spawn(
        dir.path(),
        &emu.base_url(),
        &["--schedule", "*/10 * * * * *"],
        &[
            ("HELPDEX_CUSTOMER_KEY", CUSTOMER_KEY),
            ("HELPDEX_ADMIN_KEY", ADMIN_KEY),
            ("HELPDEX_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ],
    );
    let pid = child.id();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    demo_serve::wait_ready(&http, &url, Duration::from_secs(60)).await;
    println!(
        "soak: helpdex serve (pid {pid}) at {url}; {CLIENTS} clients; {seconds} s mixed after a {} s quiet phase",
        (seconds / 6).max(10)
    );
    println!("phase  t(s)  requests  errors  p50(ms)  p99(ms)  rss(MB)");
    let quiet = phase(
        "quiet",
        &http,
        &url,
        pid,
        Duration::from_secs((seconds / 6).max(10)),
        None,
    )
    .await;
    let mixed = phase(
        "mixed",
        &http,
        &url,
        pid,
        Duration::from_secs(seconds),
        Some((emu.clone(), articles)),
    )
    .await;
    let status: serde_json::Value = http
        .get(format!("{url}/v1/admin/status"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let syncs = status["sources"][0]["source"]["syncs"]
        .as_i64()
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();

    // The first quarter of the mixed phase is warm-up (caches, the allocator's pools, the
    // index's segments settle); growth is the last quarter against the quarter after it.
    let quarter = (mixed.rss_kb.len() / 4).max(1);
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let early = median(
        &mixed.rss_kb[quarter.min(mixed.rss_kb.len() - 1)..(2 * quarter).min(mixed.rss_kb.len())],
    );
    let late = median(&mixed.rss_kb[mixed.rss_kb.len() - quarter..]);
    let growth = (late as f64 / early.max(1) as f64 - 1.0) * 100.0;
    println!();
    println!(
        "| phase | seconds | requests | req/s | errors | p50 ms | p99 ms | RSS MB (first → last) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, ph) in [("quiet (baseline)", &quiet), ("mixed", &mixed)] {
        println!(
            "| {name} | {:.0} | {} | {:.0} | {} | {:.2} | {:.2} | {:.1} → {:.1} |",
            ph.seconds,
            ph.requests,
            ph.requests as f64 / ph.seconds,
            ph.errors,
            ph.p50,
            ph.p99,
            *ph.rss_kb.first().unwrap_or(&0) as f64 / 1024.0,
            *ph.rss_kb.last().unwrap_or(&0) as f64 / 1024.0
        );
    }
    println!(
        "mixed/quiet p99 ratio {:.2}; syncs completed {syncs}; RSS median after warm-up (2nd quarter) {:.1} MB, last quarter {:.1} MB ({growth:+.1}%)",
        mixed.p99 / quiet.p99.max(1e-9),
        early as f64 / 1024.0,
        late as f64 / 1024.0
    );
    let failed = quiet.errors + mixed.errors > 0 || growth > 20.0;
    if failed {
        println!("FAIL: errors or RSS growth above 20%");
        std::process::exit(1);
    }
}

async fn phase(
    name: &str,
    http: &reqwest::Client,
    url: &str,
    pid: u32,
    length: Duration,
    writers: Option<(Arc<Emulator>, Vec<u64>)>,
) -> Phase {
    let window = Arc::new(std::sync::Mutex::new(Window::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (http, url, window, stop, requests) = (
            http.clone(),
            url.to_string(),
            window.clone(),
            stop.clone(),
            requests.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let q = QUERIES[i % QUERIES.len()];
                i += 1;
                let started = Instant::now();
                let r = if i % 2 == 0 {
                    http.get(format!("{url}/v1/search"))
                        .query(&[("q", q)])
                        .bearer_auth(CUSTOMER_KEY)
                        .send()
                        .await
                } else {
                    http.post(format!("{url}/v1/context"))
                        .json(&serde_json::json!({"query": q, "max_chars": 3000}))
                        .bearer_auth(CUSTOMER_KEY)
                        .send()
                        .await
                };
                let ok = match r {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let took = started.elapsed();
                requests.fetch_add(1, Ordering::Relaxed);
                let mut w = window.lock().unwrap();
                w.latencies.push(took);
                if !ok {
                    w.errors += 1;
                }
            }
        }));
    }
    if let Some((emu, articles)) = writers {
        let (http, url, stop) = (http.clone(), url.to_string(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                n += 1;
                let id = articles[n as usize % articles.len()];
                // An edit for the next scheduled sync to pick up, and a webhook about it.
                emu.edit_body(
                    id,
                    "en-us",
                    &format!(
                        "<h2 id=\"s\">Soak edit {n}</h2><p>Edited at {:?} for the soak.</p>",
                        started.elapsed()
                    ),
                );
                let body = serde_json::to_vec(&serde_json::json!({
                    "id": format!("soak-{n}"),
                    "type": "zen:event-type:article.published",
                    "detail": {"id": id.to_string()},
                }))
                .unwrap();
                let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
                let sig = helpdex_service::webhook::sign(WEBHOOK_SECRET.as_bytes(), &ts, &body);
                let _ = http
                    .post(format!("{url}/v1/webhooks/zendesk"))
                    .header(helpdex_service::webhook::SIGNATURE_HEADER, sig)
                    .header(helpdex_service::webhook::TIMESTAMP_HEADER, ts)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                if n.is_multiple_of(10) {
                    let _ = http
                        .post(format!("{url}/v1/admin/reindex"))
                        .bearer_auth(ADMIN_KEY)
                        .send()
                        .await;
                }
            }
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut rss = Vec::new();
    while started.elapsed() < length {
        tokio::time::sleep(WINDOW.min(length.saturating_sub(started.elapsed()))).await;
        let mut w = std::mem::take(&mut *window.lock().unwrap());
        let r = rss_kb(pid);
        rss.push(r);
        errors += w.errors;
        println!(
            "{name:<6} {:>4.0} {:>9} {:>7} {:>8.2} {:>8.2} {:>8.1}",
            started.elapsed().as_secs_f64(),
            w.latencies.len(),
            w.errors,
            p(&mut w.latencies, 0.5),
            p(&mut w.latencies, 0.99),
            r as f64 / 1024.0
        );
        all.append(&mut w.latencies);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let leftover = std::mem::take(&mut *window.lock().unwrap());
    errors += leftover.errors;
    all.extend(leftover.latencies);
    Phase {
        requests: requests.load(Ordering::Relaxed),
        errors,
        p50: p(&mut all, 0.5),
        p99: p(&mut all, 0.99),
        rss_kb: rss,
        seconds: started.elapsed().as_secs_f64(),
    }
}
