//! The real binary, as the AI runtime and admins call it.

use crate::support::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn run(data: &Path, url: &str, token: &str, args: &[&str]) -> Output {
    binary_on(data, url, token).args(args).output().unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_search_explain_through_the_binary() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || run(&d, &u, ADMIN_TOKEN, &["sync", "--json"]))
        .await
        .unwrap();
    let rep = json(&out);
    let s = &rep["sources"][0];
    for k in [
        "requests",
        "articles_fetched",
        "added",
        "updated",
        "unchanged",
        "removed",
        "retries",
        "rate_limit_wait_secs",
    ] {
        assert!(s[k].is_number(), "sync --json reports {k}: {s}");
    }
    assert!(s["added"].as_u64().unwrap() >= 40);

    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &d,
            &u,
            ADMIN_TOKEN,
            &["search", "payout delayed", "--json", "--limit", "3"],
        )
    })
    .await
    .unwrap();
    let v = json(&out);
    assert_eq!(v["audience"], "customer");
    assert_eq!(v["query"], "payout delayed");
    let hits = v["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 3);
    for h in hits {
        for k in [
            "article_id",
            "locale",
            "title",
            "heading",
            "url",
            "text",
            "snippet",
            "visibility",
            "score",
            "content_hash",
            "updated_at",
        ] {
            assert!(!h[k].is_null(), "hit has {k}: {h}");
        }
        assert_eq!(h["visibility"], "public");
    }
    let id = hits[0]["article_id"].as_u64().unwrap().to_string();

    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out =
        tokio::task::spawn_blocking(move || run(&d, &u, ADMIN_TOKEN, &["explain", &id, "--json"]))
            .await
            .unwrap();
    let ex = json(&out);
    assert!(
        ex[0]["visibility_rule"]
            .as_str()
            .unwrap()
            .contains("visible to everyone")
    );
    assert!(!ex[0]["passages"].as_array().unwrap().is_empty());

    // Wrong credentials: non-zero exit, actionable message, no secret, nothing changed.
    let d = dir.path().to_path_buf();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || run(&d, &u, "not-the-token", &["sync"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("401") && all.contains("ZENDESK_API_TOKEN") || all.contains("--zendesk-token"),
        "{all}"
    );
    assert!(
        !all.contains("not-the-token"),
        "the token never appears in output: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_fields_and_never_a_secret() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    let dir = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    for token in [ADMIN_TOKEN, "wrong-secret-token-value"] {
        let (d, u, t) = (dir.path().to_path_buf(), url.clone(), token.to_string());
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_helpdex"))
                .args([
                    "--data-dir",
                    d.to_str().unwrap(),
                    "--log-format",
                    "json",
                    "sync",
                ])
                .env("ZENDESK_URL", &u)
                .env("ZENDESK_EMAIL", ADMIN_EMAIL)
                .env("ZENDESK_API_TOKEN", &t)
                .env("HELPDEX_LOG", "trace")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{ADMIN_EMAIL}/token:{token}"));
        assert!(!all.contains(token), "token in output");
        assert!(!all.contains(&basic), "basic credentials in output");
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert!(!lines.is_empty(), "json logs on stderr");
        let with_run = lines
            .iter()
            .find(|l| l["span"]["run"].is_string() || l["spans"].to_string().contains("\"run\""));
        let with_run = with_run.unwrap_or_else(|| {
            panic!(
                "a log line carries the run id: {:?}",
                &lines[..lines.len().min(5)]
            )
        });
        assert!(
            with_run.to_string().contains("\"source\":\"default\""),
            "{with_run}"
        );
    }
}

/// One JSON-RPC exchange with `helpdex mcp` over its stdio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_speaks_json_rpc_over_stdio_with_audience_rules() {
    use std::io::{BufRead, BufReader, Write};
    let emu = emulator_on(&fixtures()).await;
    let dir = tempfile::tempdir().unwrap();
    let (d, u) = (dir.path().to_path_buf(), emu.base_url());
    let out = tokio::task::spawn_blocking(move || run(&d, &u, ADMIN_TOKEN, &["sync"]))
        .await
        .unwrap();
    assert!(out.status.success());
    let internal = fixture_articles()
        .into_iter()
        .find(|f| {
            f["article"]["user_segment_ids"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x.as_u64() == Some(3600000070023)))
        })
        .unwrap();
    let internal_id = internal["article"]["id"].as_u64().unwrap();
    let internal_title = internal["article"]["title"].as_str().unwrap().to_string();

    let d = dir.path().to_path_buf();
    let title = internal_title.clone();
    let replies = tokio::task::spawn_blocking(move || {
        let internal_title = title;
        let mut child = Command::new(env!("CARGO_BIN_EXE_helpdex"))
            .args(["--data-dir", d.to_str().unwrap(), "mcp"])
            .env("HELPDEX_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ask = |msg: serde_json::Value, expect_reply: bool| -> Option<serde_json::Value> {
            writeln!(stdin, "{msg}").unwrap();
            stdin.flush().unwrap();
            if !expect_reply {
                return None;
            }
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")))
        };
        let mut r = Vec::new();
        r.push(ask(serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}), true).unwrap());
        ask(serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"}), false);
        r.push(ask(serde_json::json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}), true).unwrap());
        r.push(ask(serde_json::json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_help_center","arguments":{"query":"payout delayed"}}}), true).unwrap());
        r.push(ask(serde_json::json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search_help_center","arguments":{"query":internal_title,"audience":"agent"}}}), true).unwrap());
        r.push(ask(serde_json::json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_article","arguments":{"article_id":internal_id}}}), true).unwrap());
        r.push(ask(serde_json::json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get_context","arguments":{"query":internal_title}}}), true).unwrap());
        drop(stdin);
        let status = child.wait().unwrap();
        (r, status)
    })
    .await
    .unwrap();
    let (r, status) = replies;
    assert!(status.success(), "mcp exits cleanly when stdin closes");
    assert_eq!(r[0]["id"], 1);
    assert!(
        r[0]["result"]["capabilities"]["tools"].is_object(),
        "{}",
        r[0]
    );
    let tools: Vec<String> = r[1]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    for t in ["search_help_center", "get_context", "get_article"] {
        assert!(tools.contains(&t.to_string()), "{tools:?}");
    }
    let search = &r[2]["result"];
    assert_ne!(search["isError"], true, "{search}");
    let text = search["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("http"), "cites urls: {text}");
    // Customer policy (the default): agent audience refused, internal article invisible.
    assert_eq!(r[3]["result"]["isError"], true, "{}", r[3]);
    assert!(
        !r[4].to_string().contains(&internal_title),
        "get_article leaked: {}",
        r[4]
    );
    assert!(
        !r[5]
            .to_string()
            .contains(&format!("\"article_id\":{internal_id}")),
        "get_context leaked: {}",
        r[5]
    );
}

/// `helpdex serve` as deployed: scheduled sync, `helpdex reindex` through the running server,
/// graceful shutdown on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_schedules_syncs_reindexes_through_the_server_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let emu = emulator_on(&fixtures()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdex"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--schedule",
            "* * * * * *",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("ZENDESK_URL", emu.base_url())
        .env("ZENDESK_EMAIL", ADMIN_EMAIL)
        .env("ZENDESK_API_TOKEN", ADMIN_TOKEN)
        .env("HELPDEX_ADMIN_KEY", "admin-key-0123456789abcd")
        .env("HELPDEX_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let http = reqwest::Client::new();
    // The every-second schedule syncs without being asked.
    let mut synced = false;
    for _ in 0..100 {
        let st: serde_json::Value = http
            .get(format!("{url}/v1/admin/status"))
            .bearer_auth("admin-key-0123456789abcd")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if st["sources"][0]["source"]["syncs"].as_i64().unwrap_or(0) >= 2 {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(synced, "scheduled syncs ran");
    // `helpdex reindex` finds the running server through DATA_DIR/server.json.
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_helpdex"))
            .args(["--data-dir", d.to_str().unwrap(), "reindex"])
            .env("HELPDEX_ADMIN_KEY", "admin-key-0123456789abcd")
            .env("HELPDEX_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("by the running server"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SIGTERM: finishes what it is doing and exits 0, removing its advert.
    let pid = child.id() as i32;
    kill_term(pid);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(!dir.path().join("server.json").exists());
}

fn kill_term(pid: i32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
