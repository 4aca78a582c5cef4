//! Crash safety against the real binary: named crash points, and SIGKILL at random moments.
//! After each crash, a plain restart must converge to exactly the state of a clean sync.

use crate::support::*;
use helpdex_core::engine::Engine;
use helpdex_core::store::StoreRead;
use helpdex_emulator::{Emulator, EmulatorConfig, World};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn helpdex(data: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helpdex"));
    c.args([
        "--data-dir",
        data.to_str().unwrap(),
        "--zendesk-url",
        url,
        "--zendesk-email",
        ADMIN_EMAIL,
    ])
    .args(args)
    .env("ZENDESK_API_TOKEN", ADMIN_TOKEN)
    .env("HELPDEX_LOG", "error")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

fn state(data: &Path) -> (Vec<String>, Vec<String>) {
    let e = Engine::open(data, Default::default()).expect("reopen repairs");
    let store = db(&e, |s| s.dump());
    let index = e.reader().dump_index().unwrap();
    (store, index)
}

async fn run_ok(data: &Path, url: &str, args: &[&str]) {
    let out = tokio::task::spawn_blocking({
        let mut c = helpdex(data, url, args);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "helpdex {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn emulator() -> Emulator {
    let world = World::load(&fixtures()).unwrap();
    // Small export pages so a sync commits many times.
    let ec = EmulatorConfig {
        incremental_page_size: 4,
        ..Default::default()
    };
    Emulator::start(world, ec, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_crash_point_is_repaired_on_restart() {
    let emu = emulator().await;
    let url = emu.base_url();
    let clean = tempfile::tempdir().unwrap();
    run_ok(clean.path(), &url, &["sync"]).await;
    let expected = state(clean.path());
    assert!(expected.1.len() > 50, "the index has content");

    for point in [
        "after_sqlite_commit",
        "before_tantivy_commit",
        "after_tantivy_commit",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = helpdex(dir.path(), &url, &["sync"])
            .env("HELPDEX_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the process crashed");
        run_ok(dir.path(), &url, &["sync"]).await;
        assert_eq!(state(dir.path()), expected, "after crash at {point}");
    }
    for point in ["mid_rebuild", "after_swap_before_gc"] {
        let dir = tempfile::tempdir().unwrap();
        run_ok(dir.path(), &url, &["sync"]).await;
        let out = helpdex(dir.path(), &url, &["reindex"])
            .env("HELPDEX_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the process crashed");
        run_ok(dir.path(), &url, &["sync"]).await;
        assert_eq!(state(dir.path()), expected, "after crash at {point}");
        let gens = std::fs::read_dir(dir.path().join("tantivy"))
            .unwrap()
            .count();
        assert_eq!(gens, 1, "{point}: stale generations are swept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_converges_to_a_clean_sync() {
    let emu = emulator().await;
    let url = emu.base_url();
    // How long does an uninterrupted first sync take?
    let probe = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    run_ok(probe.path(), &url, &["sync"]).await;
    let full = t.elapsed().as_millis().max(20) as u64;

    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<u64> = fixture_articles()
        .iter()
        .map(|f| f["article"]["id"].as_u64().unwrap())
        .collect();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut killed = 0;
    let mut round = 0;
    // Keep going until enough runs were really interrupted (timing varies by machine).
    while (killed < 8 || round < 16) && round < 120 {
        if round % 2 == 1 {
            // Change the world between crashes, so later runs have real work again.
            for _ in 0..3 {
                let id = ids[(next() % ids.len() as u64) as usize];
                emu.edit_body(
                    id,
                    "en-us",
                    &format!("<h2>Round {round}</h2><p>Edited in round {round}.</p>"),
                );
            }
        }
        let mut child = helpdex(dir.path(), &url, &["sync"]).spawn().unwrap();
        let wait = next() % (full / 2 + 1);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            killed += 1;
        }
        child.wait().unwrap();
        round += 1;
    }
    assert!(
        killed >= 8,
        "the test really interrupted syncs ({killed} kills in {round} rounds)"
    );
    run_ok(dir.path(), &url, &["sync"]).await;
    let got = state(dir.path());
    let clean = tempfile::tempdir().unwrap();
    run_ok(clean.path(), &url, &["sync"]).await;
    assert_eq!(got, state(clean.path()), "after {killed} SIGKILLs");
}
