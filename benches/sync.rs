//! Sync cost benchmark: requests and wall time of a first, a no-op and an incremental sync of a
//! scaled copy of the fixture help center served by the emulator over loopback HTTP, beside a
//! naive baseline measured in the same run (the export, then one translations request per
//! article: what a client that ignores per-locale listings does).
//!
//! `cargo bench --bench sync [-- SCALE]` (default SCALE 40: 45 live articles × 40 ≈ 1,800
//! articles, 2 locales).

use helpdex_core::engine::Engine;
use helpdex_emulator::{Emulator, EmulatorConfig, World};
use helpdex_service::config::{Config, RawConfig, SourceFlags};
use helpdex_sync::{SyncOptions, sync_all};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Copies the fixture help center with every article repeated `scale` times under new ids.
fn scaled_world(src: &Path, dst: &Path, scale: u64) -> usize {
    std::fs::create_dir_all(dst.join("articles")).unwrap();
    for f in [
        "help_center.json",
        "categories.json",
        "sections.json",
        "user_segments.json",
    ] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let mut n = 0;
    for entry in std::fs::read_dir(src.join("articles")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let id = v["article"]["id"].as_u64().unwrap();
        for k in 0..scale {
            let new_id = id + k * 10_000_000;
            let mut c = v.clone();
            c["article"]["id"] = new_id.into();
            if let Some(ts) = c["translations"].as_array_mut() {
                for (i, t) in ts.iter_mut().enumerate() {
                    t["source_id"] = new_id.into();
                    t["id"] = (t["id"].as_u64().unwrap_or(1) + k * 10_000_000 + i as u64).into();
                }
            }
            std::fs::write(
                dst.join("articles").join(format!("{new_id}.json")),
                c.to_string(),
            )
            .unwrap();
            n += 1;
        }
    }
    n
}

fn config(url: &str, dir: &Path) -> Config {
    let flags = SourceFlags {
        url: Some(url.into()),
        email: Some("sync@lumenpay.test".into()),
        token: Some("demo-admin-token".into()),
        ..SourceFlags::default()
    };
    Config::resolve(
        RawConfig::default(),
        Some(dir.to_path_buf()),
        flags,
        &|_| None,
    )
    .unwrap()
}

/// The naive client: every export page, then one translations request per article.
async fn naive(url: &str) -> (usize, f64) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut requests = 0;
    let mut ids = Vec::new();
    let mut next = Some(format!(
        "{url}/api/v2/help_center/incremental/articles?start_time=0"
    ));
    let mut last = String::new();
    while let Some(u) = next.take() {
        if u == last {
            break;
        }
        last = u.clone();
        let v: serde_json::Value = http
            .get(&u)
            .basic_auth("sync@lumenpay.test/token", Some("demo-admin-token"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        requests += 1;
        let page: Vec<u64> = v["articles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["id"].as_u64())
            .collect();
        let empty = page.is_empty();
        ids.extend(page);
        next = if empty {
            None
        } else {
            v["next_page"].as_str().map(String::from)
        };
    }
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let r = http
            .get(format!(
                "{url}/api/v2/help_center/articles/{id}/translations"
            ))
            .basic_auth("sync@lumenpay.test/token", Some("demo-admin-token"))
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await.unwrap();
        requests += 1;
    }
    (requests, started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let scale: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(40);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/helpcenter");
    let tmp = tempfile::tempdir().unwrap();
    let world_dir = tmp.path().join("world");
    let n = scaled_world(&fixtures, &world_dir, scale);
    let emu = Emulator::start(
        World::load(&world_dir).unwrap(),
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = emu.base_url();
    println!(
        "help center: {n} articles (fixtures × {scale}), 2 locales, served over loopback HTTP"
    );

    emu.reset_requests();
    let (naive_requests, naive_secs) = naive(&url).await;
    println!(
        "baseline (export + translations per article): {naive_requests} requests, {naive_secs:.2}s"
    );

    let data = tmp.path().join("data");
    let cfg = config(&url, &data);
    let engine = Arc::new(Engine::open(&data, cfg.normalize.clone()).unwrap());
    let run = |label: &'static str| {
        let (engine, cfg, emu) = (engine.clone(), cfg.clone(), &emu);
        async move {
            emu.reset_requests();
            let started = Instant::now();
            let r = sync_all(engine, &cfg.sync, &SyncOptions::default()).await;
            let secs = started.elapsed().as_secs_f64();
            let s = &r.sources[0];
            assert!(s.error.is_none(), "{:?}", s.error);
            println!(
                "{label:<12} {:>5} requests  {:>7.2}s  fetched {:>5}  added {:>5}  updated {:>4}  unchanged {:>5}  index writes {:>5}",
                s.requests,
                secs,
                s.articles_fetched,
                s.added,
                s.updated,
                s.unchanged,
                s.index_writes
            );
            (s.requests, secs)
        }
    };
    let (first_req, first_secs) = run("first sync").await;
    let (noop_req, noop_secs) = run("no-op sync").await;
    for k in 0..10u64 {
        emu.edit_body(
            3600000112014 + k * 10_000_000,
            "en-us",
            &format!("<h2>Changed</h2><p>Edit number {k}.</p>"),
        );
    }
    let (incr_req, incr_secs) = run("10 edits").await;
    let expected = (n as f64 / 1000.0).ceil() + 2.0 * (n as f64 / 100.0).ceil();
    println!();
    println!(
        "first sync requests: {first_req} (order N/1000 + L×N/100 = {expected:.0} plus structure and reconcile)"
    );
    println!(
        "ratios vs baseline: requests {:.3}×, wall time {:.2}× (sync includes normalize + SQLite + tantivy)",
        first_req as f64 / naive_requests as f64,
        first_secs / naive_secs
    );
    println!(
        "no-op sync: {noop_req} requests in {noop_secs:.3}s; 10 edits: {incr_req} requests in {incr_secs:.3}s"
    );
    println!(
        "throughput: {:.0} articles/s on the first sync",
        n as f64 / first_secs
    );
}
