//! HTTP throughput of `helpdex serve` on the demo help center (the bundled fixtures, served by
//! the emulator): `/v1/search` (customer and agent) from 16 keep-alive connections, beside
//! `/healthz` on the same server in the same run (the floor of the HTTP stack and of this load
//! generator, which shares the machine's cores with the server).
//!
//! `cargo bench --bench http [-- SECONDS] [-- --connections N]`; prints a Markdown table.
//! The 100k-article figures are in the sync bench.

#[path = "support/demo_serve.rs"]
mod demo_serve;
#[path = "support/http_load.rs"]
mod http_load;

use helpdex_emulator::{Emulator, EmulatorConfig, World};
use http_load::{Load, load};
use std::path::Path;
use std::time::Duration;

const CUSTOMER_KEY: &str = "http-bench-customer-key-0123456789";
const AGENT_KEY: &str = "http-bench-agent-key-0123456789ab";
const QUERIES: &[&str] = &[
    "refund",
    "export invoices to CSV",
    "reset my password",
    "two-factor authentication",
    "payout schedule",
    "chargeback dispute",
    "API keys",
    "Rechnung herunterladen",
    "how long does a bank transfer take",
    "change the email on my account",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let conns: usize = args
        .iter()
        .position(|a| a == "--connections")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(16);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench(Duration::from_secs(seconds), conns));
}

async fn bench(duration: Duration, conns: usize) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/helpcenter");
    let emu = Emulator::start(
        World::load(&fixtures).expect("fixtures load"),
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("emulator starts");
    let dir = tempfile::tempdir().expect("tmp");
    let (mut child, url) = demo_serve::spawn(
        dir.path(),
        &emu.base_url(),
        &[],
        &[
            ("HELPDEX_CUSTOMER_KEY", CUSTOMER_KEY),
            ("HELPDEX_AGENT_KEY", AGENT_KEY),
        ],
    );
    let http = reqwest::Client::new();
    let ready = demo_serve::wait_ready(&http, &url, Duration::from_secs(120)).await;
    assert!(ready, "helpdex serve never became ready");
    let passages: serde_json::Value = http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("readyz json");
    println!(
        "helpdex serve on the demo help center ({} passages), {conns} connections, {} s per row",
        passages["passages"],
        duration.as_secs()
    );

    // Warm-up: the first searches open segments, fill the visible-statistics cache.
    load(
        &format!("{url}/v1/search?q="),
        QUERIES,
        conns,
        Duration::from_secs(2),
        Some(CUSTOMER_KEY),
    )
    .await;
    let rows: Vec<(&str, Load)> = vec![
        (
            "/v1/search, customer",
            load(
                &format!("{url}/v1/search?q="),
                QUERIES,
                conns,
                duration,
                Some(CUSTOMER_KEY),
            )
            .await,
        ),
        (
            "/v1/search, agent",
            load(
                &format!("{url}/v1/search?audience=agent&q="),
                QUERIES,
                conns,
                duration,
                Some(AGENT_KEY),
            )
            .await,
        ),
        (
            "/healthz (baseline)",
            load(&format!("{url}/healthz?x="), QUERIES, conns, duration, None).await,
        ),
    ];
    let _ = child.kill();
    let _ = child.wait();
    let floor = rows.last().map(|r| r.1.qps).unwrap_or(1.0).max(1.0);
    println!();
    println!("| endpoint | QPS | p50 ms | p99 ms | errors | QPS / healthz |");
    println!("|---|---|---|---|---|---|");
    for (name, l) in &rows {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} | {:.2}× |",
            l.qps,
            l.p50,
            l.p99,
            l.errors,
            l.qps / floor
        );
    }
    if rows.iter().any(|r| r.1.errors > 0) {
        println!("FAIL: some requests failed");
        std::process::exit(1);
    }
}
