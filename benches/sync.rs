//! Sync at scale: a synthetic help center (default 100,000 articles, en-us + de for half of
//! them + fr for a quarter, realistic bodies, every visibility case) served by the emulator
//! over loopback HTTP, synced by the real `helpdex` binary and, in the same run, by a plain
//! per-article client (the export, then one translations request per new or changed article,
//! and a 100-per-page id listing for removals: what most integrations do).
//!
//! Both clients run as child processes, so their CPU seconds and peak RSS are their own
//! (`wait4`). Measured: first sync, no-op sync, 1% edits, 1% archived (requests counted by the
//! emulator, wall time, CPU, peak RSS, data size); then in-process search latency, HTTP search
//! throughput at 16 connections against `helpdex serve` (beside `/healthz` on the same server:
//! the HTTP floor), and edit → searchable through a signed webhook (beside a sync requested
//! through the admin API, the path without webhooks).
//!
//! `cargo bench --bench sync [-- N]`; prints a Markdown table.

#[path = "support/http_load.rs"]
mod http_load;
#[path = "support/measure.rs"]
mod measure;

use helpdex_core::model::Access;
use helpdex_core::query::QueryInput;
use helpdex_core::reader::Reader;
use helpdex_emulator::{
    Emulator, EmulatorConfig, FIRST_ID, SYNTHETIC_EMAIL, SYNTHETIC_TOKEN, Synthetic,
};
use http_load::{load, pct};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CUSTOMER_KEY: &str = "bench-customer-key-0123456789";
const ADMIN_KEY: &str = "bench-admin-key-0123456789abc";
const WEBHOOK_SECRET: &str = "bench-webhook-secret";

/// What one child process cost.
#[derive(Debug, Clone, Default)]
struct Cost {
    requests: usize,
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    anon_mb: f64,
    data_mb: f64,
    ok: bool,
}

/// Runs a child through the launcher; returns its stdout and what it cost.
fn run_measured(cmd: Command) -> (String, Cost) {
    let m = measure::run_measured(&cmd);
    let cost = Cost {
        wall: m.wall,
        cpu: m.cpu,
        rss_mb: m.rss_mb,
        anon_mb: m.anon_mb,
        ok: m.ok,
        ..Cost::default()
    };
    (m.stdout, cost)
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn helpdex(data: &Path, url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helpdex"));
    c.args(["--data-dir", data.to_str().expect("utf-8 path")])
        .env("ZENDESK_URL", url)
        .env("ZENDESK_EMAIL", SYNTHETIC_EMAIL)
        .env("ZENDESK_API_TOKEN", SYNTHETIC_TOKEN)
        .env("HELPDEX_LOG", "warn");
    c
}

/// One sync by each client, from the same world state.
async fn both(emu: &Emulator, url: &str, hd: &Path, plain: &Path) -> (Cost, Cost) {
    emu.reset_requests();
    let mut cmd = helpdex(hd, url);
    cmd.args(["sync", "--json"]);
    let (out, mut h) = tokio::task::spawn_blocking(move || run_measured(cmd))
        .await
        .expect("join");
    h.requests = emu.request_count();
    h.data_mb = dir_size(hd) as f64 / 1e6;
    if let Ok(v) = serde_json::from_str::<Value>(&out) {
        let s = &v["sources"][0];
        if s["error"].is_string() {
            eprintln!("helpdex sync error: {}", s["error"]);
            h.ok = false;
        }
    }
    emu.reset_requests();
    let mut cmd = Command::new(std::env::current_exe().expect("bench exe"));
    cmd.args(["--plain-client", url, plain.to_str().expect("utf-8 path")]);
    let (_, mut p) = tokio::task::spawn_blocking(move || run_measured(cmd))
        .await
        .expect("join");
    p.requests = emu.request_count();
    p.data_mb = dir_size(plain) as f64 / 1e6;
    (h, p)
}

const QUERIES: &[&str] = &[
    "refund payment",
    "reset password login",
    "export invoice report",
    "cancel subscription plan",
    "payout bank transfer delayed",
    "webhook token integration",
    "two factor security",
    "chargeback dispute fraud",
    "tax receipt currency",
    "mobile app notification email",
    "team member role permission",
    "shipping order tracking delivery",
    "api request timeout retry",
    "backup restore file upload",
    "discount coupon checkout cart",
    "Konto Zahlung",
    "facture paiement",
    "trial license seat quota",
    "dashboard chart metric alert",
    "verification identity document",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = measure::launcher() {
        std::process::exit(code);
    }
    if let Some(i) = args.iter().position(|a| a == "--plain-client") {
        plain::main(&args[i + 1], Path::new(&args[i + 2]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        // For profiling by hand: serves the synthetic help center of N articles on PORT;
        // each line on stdin ("edit" or "archive") applies 1% edits or archives.
        let n: usize = args[i + 1].parse().expect("N");
        let port: u16 = args[i + 2].parse().expect("PORT");
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(serve_only(n, port));
        return;
    }
    let n: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench(n));
}

async fn serve_only(n: usize, port: u16) {
    let spec = Synthetic {
        articles: n,
        newest: chrono::Utc::now().timestamp() - 7 * 86_400,
        ..Synthetic::default()
    };
    let emu = Emulator::start(
        spec.world(),
        EmulatorConfig::default(),
        format!("127.0.0.1:{port}").parse().expect("addr"),
    )
    .await
    .expect("emulator");
    println!("serving {} on {}", n, emu.base_url());
    let mut round = 0u64;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        round += 1;
        for i in 0..(n / 100).max(1) {
            let id = FIRST_ID + (i as u64 * 97 + round) % n as u64;
            if line.trim() == "archive" {
                emu.archive(id);
            } else {
                emu.revise(id, if i % 3 == 0 { "de" } else { "en-us" });
            }
        }
        println!("{line} applied");
    }
    std::future::pending::<()>().await;
}

async fn bench(n: usize) {
    let spec = Synthetic {
        articles: n,
        newest: chrono::Utc::now().timestamp() - 7 * 86_400,
        ..Synthetic::default()
    };
    let started = Instant::now();
    let world = spec.world();
    let translations = world.translation_count();
    println!(
        "synthetic help center: {n} articles, {translations} translations (en-us, de 50%, fr 25%), generated in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let emu = Emulator::start(
        world,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("emulator");
    let url = emu.base_url();
    let tmp = tempfile::tempdir().expect("tmp");
    let hd = tmp.path().join("helpdex");
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).expect("dir");

    let mut rows: Vec<(String, Cost, Cost)> = Vec::new();
    let (h, p) = both(&emu, &url, &hd, &plain).await;
    report("first sync", &h, &p, &mut rows);
    let (h, p) = both(&emu, &url, &hd, &plain).await;
    report("no-op sync", &h, &p, &mut rows);
    // 1% edits: most in the source locale, some in the translations.
    let k = (n / 100).max(1);
    for i in 0..k {
        let id = FIRST_ID + (i as u64 * 97) % n as u64;
        let locale = match i % 10 {
            0..=6 => "en-us",
            7 | 8 => "de",
            _ => "fr",
        };
        emu.revise(id, locale);
    }
    let (h, p) = both(&emu, &url, &hd, &plain).await;
    report("1% edits", &h, &p, &mut rows);
    for i in 0..k {
        emu.archive(FIRST_ID + (i as u64 * 89 + 13) % n as u64);
    }
    let (h, p) = both(&emu, &url, &hd, &plain).await;
    report("1% archived", &h, &p, &mut rows);

    // In-process search on the synced data directory (a reader, as the CLI and MCP use).
    let reader = Reader::open(&hd).expect("reader");
    let mut lat = Vec::new();
    let started = Instant::now();
    for i in 0..2_000 {
        let q = QueryInput::new(QUERIES[i % QUERIES.len()])
            .validate(Access::anonymous())
            .expect("query");
        let t = Instant::now();
        let r = helpdex_core::search::search(&reader, &q).expect("search");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(r);
    }
    let in_secs = started.elapsed().as_secs_f64();
    let (s50, s99) = (pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.99));
    drop(reader);

    // The service: HTTP throughput and webhook freshness.
    let port = free_port();
    let mut serve = helpdex(&hd, &url);
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("HELPDEX_CUSTOMER_KEY", CUSTOMER_KEY)
        .env("HELPDEX_ADMIN_KEY", ADMIN_KEY)
        .env("HELPDEX_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut server = serve.spawn().expect("serve");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(
            ready.elapsed() < Duration::from_secs(600),
            "serve never ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `serve` syncs every source as it starts: measure once that sync is over.
    loop {
        let st: Value = http
            .get(format!("{base}/v1/admin/status"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("status json");
        let jobs = &st["jobs"];
        if jobs["running"].is_null() && jobs["queued"].as_array().is_none_or(|q| q.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dur = Duration::from_secs(10);
    let search = load(
        &format!("{base}/v1/search?limit=8&q="),
        QUERIES,
        16,
        dur,
        Some(CUSTOMER_KEY),
    )
    .await;
    let health = load(&format!("{base}/healthz?x="), QUERIES, 16, dur, None).await;
    let (qps, p50, p99, errs) = (search.qps, search.p50, search.p99, search.errors);
    let (hqps, h50, h99, herrs) = (health.qps, health.p50, health.p99, health.errors);

    // Edit → searchable: through a signed webhook, and through an admin sync (no webhook).
    let mut hook = Vec::new();
    let mut hook_requests = Vec::new();
    let mut admin = Vec::new();
    for round in 0..10u64 {
        let id = FIRST_ID + 1_000 + round;
        let word = format!("zyzzyva{round}webhook");
        emu.edit_body(id, "en-us", &format!("<p>The {word} note.</p>"));
        emu.reset_requests();
        let body = serde_json::json!({
            "account_id": 1, "detail": {"brand_id": "4200000001", "id": id.to_string()},
            "event": {"locale": "en-us"}, "id": format!("01BENCH{round}"),
            "subject": format!("zen:article:{id}"), "time": chrono::Utc::now().to_rfc3339(),
            "type": "zen:event-type:article.published", "zendesk_event_version": "2022-06-20"
        })
        .to_string();
        let ts = chrono::Utc::now().to_rfc3339();
        let sig = helpdex_service::webhook::sign(WEBHOOK_SECRET.as_bytes(), &ts, body.as_bytes());
        let t = Instant::now();
        let r = http
            .post(format!("{base}/v1/webhooks/zendesk"))
            .header(helpdex_service::webhook::SIGNATURE_HEADER, sig)
            .header(helpdex_service::webhook::TIMESTAMP_HEADER, ts)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook");
        assert!(r.status().is_success(), "webhook answered {}", r.status());
        let job = r.json::<Value>().await.expect("job")["job_id"].clone();
        hook.push(until_found(&http, &base, &word, t).await);
        until_done(&http, &base, &job).await;
        hook_requests.push(emu.request_count());

        let word = format!("zyzzyva{round}admin");
        emu.edit_body(id, "en-us", &format!("<p>The {word} note.</p>"));
        let t = Instant::now();
        let r = http
            .post(format!("{base}/v1/admin/sync"))
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({"wait": false}))
            .send()
            .await
            .expect("admin sync");
        assert!(
            r.status().is_success(),
            "admin sync answered {}",
            r.status()
        );
        let job = r.json::<Value>().await.expect("job")["job_id"].clone();
        admin.push(until_found(&http, &base, &word, t).await);
        until_done(&http, &base, &job).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    let mb = |p: &Path| dir_size(p) as f64 / 1e6;
    let file_mb = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "helpdex data: SQLite {:.0} MB (+ WAL {:.0} MB), tantivy {:.0} MB",
        file_mb(&hd.join("helpdex.sqlite3")),
        file_mb(&hd.join("helpdex.sqlite3-wal")),
        mb(&hd.join("tantivy"))
    );

    println!();
    println!(
        "| {n} articles, {translations} translations | helpdex | plain per-article client | ratio |"
    );
    println!("|---|---|---|---|");
    for (label, h, p) in &rows {
        let r = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.3}×", a / b)
            } else {
                "–".into()
            }
        };
        println!(
            "| {label}: requests | {} | {} | {} |",
            h.requests,
            p.requests,
            r(h.requests as f64, p.requests as f64)
        );
        println!(
            "| {label}: wall / CPU s | {:.1} s / {:.1} s | {:.1} s / {:.1} s | {} |",
            h.wall,
            h.cpu,
            p.wall,
            p.cpu,
            r(h.wall, p.wall)
        );
        println!(
            "| {label}: peak RSS (of it heap) / data | {:.0} MB ({:.0} MB) / {:.0} MB | {:.0} MB ({:.0} MB) / {:.0} MB | |",
            h.rss_mb, h.anon_mb, h.data_mb, p.rss_mb, p.anon_mb, p.data_mb
        );
    }
    let budget_first = n.div_ceil(1000) + 2 * n.div_ceil(100) + 6;
    let budget_steady = n.div_ceil(1000) + 3 + 6;
    println!(
        "| budgets (issue 11) | first ≤ {budget_first}, no-op or one edit ≤ {budget_steady} | | |"
    );
    println!(
        "| in-process search p50 / p99 ({:.0} q/s, one thread) | {s50:.2} ms / {s99:.2} ms | | |",
        2_000.0 / in_secs
    );
    println!(
        "| HTTP /v1/search, 16 connections: QPS, p50 / p99 | {qps:.0} QPS, {p50:.2} / {p99:.2} ms ({errs} errors) | /healthz: {hqps:.0} QPS, {h50:.2} / {h99:.2} ms ({herrs} errors) | {:.2}× |",
        qps / hqps.max(1.0)
    );
    let (w50, wmax) = (pct(&mut hook.clone(), 0.5), pct(&mut hook, 1.0));
    let (a50, amax) = (pct(&mut admin.clone(), 0.5), pct(&mut admin, 1.0));
    println!(
        "| edit → searchable, p50 / max (10 edits) | webhook: {:.0} / {:.0} ms, {} requests each | admin sync: {:.0} / {:.0} ms | {:.3}× |",
        w50,
        wmax,
        hook_requests.iter().max().copied().unwrap_or(0),
        a50,
        amax,
        w50 / a50.max(1e-9)
    );
    emu.shutdown().await;
}

fn report(label: &str, h: &Cost, p: &Cost, rows: &mut Vec<(String, Cost, Cost)>) {
    println!(
        "{label:<12} helpdex {:>6} requests {:>7.1}s wall {:>6.1}s cpu {:>5.0} MB rss ({:.0} heap) {:>5.0} MB data{} | plain {:>6} requests {:>7.1}s wall {:>6.1}s cpu {:>5.0} MB rss ({:.0} heap) {:>5.0} MB data{}",
        h.requests,
        h.wall,
        h.cpu,
        h.rss_mb,
        h.anon_mb,
        h.data_mb,
        if h.ok { "" } else { " FAILED" },
        p.requests,
        p.wall,
        p.cpu,
        p.rss_mb,
        p.anon_mb,
        p.data_mb,
        if p.ok { "" } else { " FAILED" },
    );
    rows.push((label.to_string(), h.clone(), p.clone()));
}

/// Milliseconds from `t` until a customer search finds `word`.
async fn until_found(http: &reqwest::Client, base: &str, word: &str, t: Instant) -> f64 {
    loop {
        let r = http
            .get(format!("{base}/v1/search?q={word}"))
            .bearer_auth(CUSTOMER_KEY)
            .send()
            .await;
        if let Ok(r) = r
            && let Ok(v) = r.json::<Value>().await
            && v["hits"].as_array().is_some_and(|h| !h.is_empty())
        {
            return t.elapsed().as_secs_f64() * 1e3;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "{word} never searchable"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until a job of the server's scheduler has finished.
async fn until_done(http: &reqwest::Client, base: &str, job: &Value) {
    let started = Instant::now();
    loop {
        let state = http
            .get(format!("{base}/v1/admin/jobs/{job}"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .ok();
        let state = match state {
            Some(r) => r.json::<Value>().await.ok(),
            None => None,
        };
        if state
            .as_ref()
            .and_then(|v| v["state"].as_str())
            .is_some_and(|s| matches!(s, "done" | "failed" | "cancelled"))
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "job {job} never ends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The plain per-article client: what an integration without per-locale listings does.
mod plain {
    use super::*;
    use rusqlite::params;

    pub fn main(url: &str, dir: &Path) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(sync(url, dir));
    }

    async fn get(http: &reqwest::Client, url: &str) -> Option<Value> {
        for _ in 0..5 {
            match http
                .get(url)
                .basic_auth(format!("{SYNTHETIC_EMAIL}/token"), Some(SYNTHETIC_TOKEN))
                .send()
                .await
            {
                Ok(r) if r.status().as_u16() == 404 => return None,
                Ok(r) if r.status().is_success() => return r.json().await.ok(),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("{url} keeps failing");
    }

    async fn sync(url: &str, dir: &Path) {
        let db = rusqlite::Connection::open(dir.join("plain.sqlite3")).expect("db");
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v INTEGER);
             CREATE TABLE IF NOT EXISTS articles (id INTEGER PRIMARY KEY, updated_at TEXT, translations TEXT);",
        )
        .expect("schema");
        let cursor: i64 = db
            .query_row("SELECT v FROM state WHERE k = 'cursor'", [], |r| r.get(0))
            .unwrap_or(0);
        let first = cursor == 0;
        let http = reqwest::Client::new();
        let mut newest = cursor;
        let mut changed: Vec<(u64, String)> = Vec::new();
        let mut start = cursor;
        loop {
            let v = get(
                &http,
                &format!("{url}/api/v2/help_center/incremental/articles.json?start_time={start}"),
            )
            .await
            .expect("export");
            let arts = v["articles"].as_array().cloned().unwrap_or_default();
            for a in &arts {
                let (Some(id), Some(ts)) = (a["id"].as_u64(), a["updated_at"].as_str()) else {
                    continue;
                };
                let known: Option<String> = db
                    .query_row(
                        "SELECT updated_at FROM articles WHERE id = ?1",
                        [id as i64],
                        |r| r.get(0),
                    )
                    .ok();
                if known.as_deref() != Some(ts) && !changed.iter().any(|(c, _)| *c == id) {
                    changed.push((id, ts.to_string()));
                }
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) {
                    newest = newest.max(t.timestamp());
                }
            }
            let end = v["end_time"].as_i64().unwrap_or(start);
            if v["next_page"].is_null() || arts.is_empty() || end <= start {
                break;
            }
            start = end;
        }
        let tx = db.unchecked_transaction().expect("tx");
        for (id, updated_at) in &changed {
            let ts = get(
                &http,
                &format!("{url}/api/v2/help_center/articles/{id}/translations.json"),
            )
            .await;
            match ts {
                Some(v) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO articles(id, updated_at, translations) VALUES (?1, ?2, ?3)",
                        params![*id as i64, updated_at, v.to_string()],
                    )
                    .expect("write");
                }
                None => {
                    tx.execute("DELETE FROM articles WHERE id = ?1", [*id as i64])
                        .expect("delete");
                }
            }
        }
        tx.commit().expect("commit");
        if !first {
            // Removal detection: every id, 100 per page, then show for the absent ones.
            let mut present = std::collections::HashSet::new();
            let mut next = Some(format!(
                "{url}/api/v2/help_center/articles.json?page[size]=100"
            ));
            while let Some(u) = next.take() {
                let v = get(&http, &u).await.expect("listing");
                for a in v["articles"].as_array().into_iter().flatten() {
                    if let Some(id) = a["id"].as_u64() {
                        present.insert(id);
                    }
                }
                if v["meta"]["has_more"].as_bool() == Some(true) {
                    next = v["links"]["next"].as_str().map(str::to_string);
                }
            }
            let known: Vec<i64> = db
                .prepare("SELECT id FROM articles")
                .expect("prepare")
                .query_map([], |r| r.get(0))
                .expect("query")
                .flatten()
                .collect();
            for id in known {
                if !present.contains(&(id as u64))
                    && get(
                        &http,
                        &format!("{url}/api/v2/help_center/articles/{id}.json"),
                    )
                    .await
                    .is_none()
                {
                    db.execute("DELETE FROM articles WHERE id = ?1", [id])
                        .expect("delete");
                }
            }
        }
        db.execute(
            "INSERT OR REPLACE INTO state(k, v) VALUES ('cursor', ?1)",
            [newest.max(1)],
        )
        .expect("cursor");
    }
}
