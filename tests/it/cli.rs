//! The real binary, as the AI runtime and admins call it.

use crate::support::*;
use helpdex::emulator::{Emulator, World};
use std::path::Path;
use std::process::{Command, Output};

fn run(data: &Path, url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_helpdex"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(args)
        .env("ZENDESK_URL", url)
        .env("ZENDESK_EMAIL", ADMIN_EMAIL)
        .env("ZENDESK_API_TOKEN", token)
        .env("HELPDEX_LOG", "warn")
        .output()
        .unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_search_explain_through_the_binary() {
    let emu = Emulator::start(World::load(&fixtures()).unwrap(), Default::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = emu.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || run(&d, &u, ADMIN_TOKEN, &["sync", "--json"])).await.unwrap();
    let rep = json(&out);
    let s = &rep["sources"][0];
    for k in ["requests", "articles_fetched", "added", "updated", "unchanged", "removed", "retries", "rate_limit_wait_secs"] {
        assert!(s[k].is_number(), "sync --json reports {k}: {s}");
    }
    assert!(s["added"].as_u64().unwrap() >= 40);

    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || run(&d, &u, ADMIN_TOKEN, &["search", "payout delayed", "--json", "--limit", "3"])).await.unwrap();
    let v = json(&out);
    assert_eq!(v["audience"], "customer");
    assert_eq!(v["query"], "payout delayed");
    let hits = v["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 3);
    for h in hits {
        for k in ["article_id", "locale", "title", "heading", "url", "text", "snippet", "visibility", "score", "content_hash", "updated_at"] {
            assert!(!h[k].is_null(), "hit has {k}: {h}");
        }
        assert_eq!(h["visibility"], "public");
    }
    let id = hits[0]["article_id"].as_u64().unwrap().to_string();

    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || run(&d, &u, ADMIN_TOKEN, &["explain", &id, "--json"])).await.unwrap();
    let ex = json(&out);
    assert!(ex[0]["visibility_rule"].as_str().unwrap().contains("visible to everyone"));
    assert!(ex[0]["segments"].as_array().unwrap().len() >= 1);

    // Wrong credentials: non-zero exit, actionable message, no secret, nothing changed.
    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || run(&d, &u, "not-the-token", &["sync"])).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("401") && all.contains("ZENDESK_API_TOKEN") || all.contains("--zendesk-token"), "{all}");
    assert!(!all.contains("not-the-token"), "the token never appears in output: {all}");
}
