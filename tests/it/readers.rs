//! One writer, live readers (issue 9), proven with real processes: `helpdex mcp` and CLI
//! searches read while `helpdex sync` / `helpdex serve` write, see every commit and generation
//! swap within two seconds, and say what is wrong instead of answering nothing. The same
//! request gets the same answer, and the same validation error, through CLI, HTTP and MCP.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

fn helpdex(data: &Path) -> Command {
    let mut c = binary();
    c.args(["--data-dir", data.to_str().unwrap()]);
    c
}

fn cli(data: &Path, args: &[&str]) -> Output {
    helpdex(data).args(args).output().unwrap()
}

fn sync_cmd(data: &Path, url: &str) -> Output {
    helpdex(data)
        .arg("sync")
        .env("ZENDESK_URL", url)
        .env("ZENDESK_EMAIL", ADMIN_EMAIL)
        .env("ZENDESK_API_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout_json(o: &Output) -> Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `helpdex mcp` in its own process, through the initialize handshake.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Mcp {
    fn start(data: &Path) -> Mcp {
        let mut child = helpdex(data)
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut m = Mcp {
            child,
            stdin,
            stdout,
            next: 0,
        };
        let init = m.request(
            "initialize",
            json!({"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
        );
        assert!(init["result"].is_object(), "{init}");
        writeln!(
            m.stdin,
            "{}",
            json!({"jsonrpc":"2.0","method":"notifications/initialized"})
        )
        .unwrap();
        m
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc":"2.0","id":id,"method":method,"params":params})
        )
        .unwrap();
        self.stdin.flush().unwrap();
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "mcp exited");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    /// A tool call's `result`.
    fn call(&mut self, tool: &str, args: Value) -> Value {
        let v = self.request("tools/call", json!({"name": tool, "arguments": args}));
        v["result"].clone()
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `helpdex serve` on a loopback port with an admin key, no schedule.
struct Serve {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Serve {
    fn start(data: &Path, zendesk: &str, token: &str) -> Serve {
        let mut child = helpdex(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("ZENDESK_URL", zendesk)
            .env("ZENDESK_EMAIL", ADMIN_EMAIL)
            .env("ZENDESK_API_TOKEN", token)
            .env("HELPDEX_ADMIN_KEY", ADMIN_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "serve did not start: {line}"
        );
        Serve {
            child,
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Waits for the start-up sync (`/readyz` turns 200).
    async fn ready(&self) {
        for _ in 0..200 {
            if self.get("/readyz").await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve never became ready");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

/// The public article the edit tests change.
fn public_article() -> u64 {
    fixture_articles()
        .into_iter()
        .find(is_public_fixture)
        .unwrap()["article"]["id"]
        .as_u64()
        .unwrap()
}

/// An MCP session opened first does not stop `sync` or `serve` from writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_mcp_session_never_blocks_the_writer() {
    let emu = emulator_on(&fixtures()).await;
    let dir = tempfile::tempdir().unwrap();
    let (d, u) = (dir.path().to_path_buf(), emu.base_url());
    let mut mcp = blocking(move || Mcp::start(&d));
    // Before any sync, the tool says what to run instead of "nothing matches".
    let r = blocking(move || {
        let r = mcp.call("search_help_center", json!({"query": "refund"}));
        (mcp, r)
    });
    let (mut mcp, first) = r;
    assert_eq!(first["isError"], true, "{first}");
    let msg = first["content"][0]["text"].as_str().unwrap().to_string();
    assert!(
        msg.contains("helpdex sync") && msg.contains(dir.path().to_str().unwrap()),
        "{msg}"
    );
    let d = dir.path().to_path_buf();
    let out = blocking(move || sync_cmd(&d, &u));
    assert!(
        out.status.success(),
        "sync beside an mcp session: {}",
        stderr(&out)
    );
    let serve = Serve::start(dir.path(), &emu.base_url(), ADMIN_TOKEN);
    serve.ready().await;
    let r = blocking(move || {
        let r = mcp.call("search_help_center", json!({"query": "refund"}));
        (mcp, r)
    });
    assert_ne!(r.1["isError"], true, "{}", r.1);
    assert!(
        !r.1["structuredContent"]["hits"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// `serve` syncs an edit; an MCP session that was already open and a fresh CLI search both
/// return the new text within two seconds. Then reindexes (generation swaps) run under the open
/// reader: every answer is whole, none is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_commits_and_generation_swaps_of_another_process() {
    let emu = emulator_on(&fixtures()).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &emu.base_url(), ADMIN_TOKEN);
    serve.ready().await;
    let d = dir.path().to_path_buf();
    let mut mcp = blocking(move || Mcp::start(&d));
    let id = public_article();
    emu.edit_body(
        id,
        "en-us",
        "<p>Quokkas approve every partial refund instantly.</p>",
    );
    let (s, body) = serve.post("/v1/admin/sync", json!({})).await;
    assert_eq!(s, 200, "{body}");
    let synced = Instant::now();
    let (mcp_after, mcp_seen) = blocking(move || {
        while synced.elapsed() < Duration::from_secs(2) {
            let r = mcp.call("search_help_center", json!({"query": "quokkas"}));
            if r["structuredContent"]["hits"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
            {
                return (mcp, Some(synced.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (mcp, None)
    });
    mcp = mcp_after;
    let seen = mcp_seen.expect("the open MCP session saw the edit within 2 s");
    let d = dir.path().to_path_buf();
    let cli_hits = blocking(move || {
        stdout_json(&cli(&d, &["search", "quokkas", "--json"]))["hits"]
            .as_array()
            .unwrap()
            .len()
    });
    assert!(cli_hits > 0, "a CLI search sees the edit");
    assert!(seen < Duration::from_secs(2));

    // Generation swaps under the open reader.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let searcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut n, mut bad) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 5 {
                let r = mcp.call("search_help_center", json!({"query": "refund"}));
                n += 1;
                let empty = r["structuredContent"]["hits"]
                    .as_array()
                    .is_none_or(|h| h.is_empty());
                if r["isError"] == true || empty {
                    bad.push(r);
                }
            }
            (n, bad)
        })
    };
    let before = serve.get("/v1/admin/status").await.1["index"]["generation"].clone();
    for _ in 0..3 {
        let (s, body) = serve.post("/v1/admin/reindex", json!({})).await;
        assert_eq!(s, 200, "{body}");
    }
    // Long enough for the reader to follow the last swap.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, bad) = searcher.join().unwrap();
    assert!(
        bad.is_empty(),
        "{} of {n} answers broke: {:?}",
        bad.len(),
        bad.first()
    );
    let after = serve.get("/v1/admin/status").await.1["index"]["generation"].clone();
    assert_ne!(before, after);
    // Old generations are gone from disk: the reader followed the pointer, not the files.
    let gens = std::fs::read_dir(dir.path().join("tantivy"))
        .unwrap()
        .count();
    assert_eq!(gens, 1);
}

/// A reader needs no write access: on a read-only data directory, as a user who owns
/// nothing in it, `search`, `context`, `explain` and `status` all answer, and nothing in the
/// directory is created or changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_need_no_write_access() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let emu = emulator_on(&fixtures()).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (d, u) = (data.clone(), emu.base_url());
    assert!(blocking(move || sync_cmd(&d, &u)).status.success());
    let id = public_article().to_string();
    // Read-only for everyone; the binary too must be reachable by the unprivileged user.
    let bin = dir.path().join("helpdex");
    std::fs::copy(env!("CARGO_BIN_EXE_helpdex"), &bin).unwrap();
    let mut stack = vec![data.clone()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    for f in &files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let snapshot = |files: &[std::path::PathBuf]| -> Vec<(u64, i64)> {
        files
            .iter()
            .map(|f| {
                let m = std::fs::metadata(f).unwrap();
                (m.len(), m.mtime_nsec() + m.mtime() * 1_000_000_000)
            })
            .collect()
    };
    let before = snapshot(&files);
    let count = || walk_count(&data);
    let entries = count();
    // Root ignores permission bits: drop to an unprivileged user to make them count.
    let root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
    let d = data.clone();
    let results = blocking(move || {
        let mut out = Vec::new();
        for args in [
            vec!["search", "refund", "--json"],
            vec!["context", "payout delayed", "--json"],
            vec!["explain", id.as_str()],
            vec!["status"],
        ] {
            let mut c = if root {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(&bin);
                c
            } else {
                Command::new(&bin)
            };
            let o = c
                .args(["--data-dir", d.to_str().unwrap()])
                .args(&args)
                .env("HELPDEX_LOG", "warn")
                .output()
                .unwrap();
            out.push((args.join(" "), o));
        }
        out
    });
    for (args, o) in &results {
        assert!(o.status.success(), "{args}: {}", stderr(o));
        assert!(!o.stdout.is_empty(), "{args}: no output");
    }
    assert_eq!(snapshot(&files), before, "a reader changed a file");
    assert_eq!(count(), entries, "a reader created a file");
}

fn walk_count(p: &Path) -> usize {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                1 + walk_count(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Nothing to read is an error that names the directory and the command, never an empty answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unsynced_data_is_an_error_not_an_empty_answer() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let m = missing.clone();
    let o = blocking(move || cli(&m, &["search", "refund"]));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(missing.to_str().unwrap()) && e.contains("helpdex sync"),
        "{e}"
    );
    assert!(!missing.exists(), "a reader never creates the directory");

    // Never synced: the first sync failed (wrong credentials), so nothing is searchable yet.
    let emu = emulator_on(&fixtures()).await;
    let fresh = dir.path().join("fresh");
    let (f, u) = (fresh.clone(), emu.base_url());
    let o = blocking(move || {
        helpdex(&f)
            .arg("sync")
            .env("ZENDESK_URL", &u)
            .env("ZENDESK_EMAIL", ADMIN_EMAIL)
            .env("ZENDESK_API_TOKEN", "wrong")
            .output()
            .unwrap()
    });
    assert_eq!(o.status.code(), Some(1));
    let f = fresh.clone();
    let o = blocking(move || cli(&f, &["search", "refund"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("has not been synced yet"),
        "{}",
        stderr(&o)
    );

    // HTTP: 503 until the first successful sync, for /readyz and searches alike.
    let serve = Serve::start(&fresh, &emu.base_url(), "wrong");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, body) = serve.get("/readyz").await;
    assert_eq!(s, 503, "{body}");
    let (s, body) = serve.get("/v1/search?q=refund").await;
    assert_eq!(s, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not been synced yet"),
        "{body}"
    );
    // The start-up sync ran (and failed) without waiting for a schedule.
    let (_, st) = serve.get("/v1/admin/status").await;
    assert_eq!(st["sources"][0]["source"]["last_result"], "error", "{st}");
}

/// `helpdex status | head -1` ends quietly (no panic on the closed pipe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_quietly() {
    let emu = emulator_on(&fixtures()).await;
    let dir = tempfile::tempdir().unwrap();
    let (d, u) = (dir.path().to_path_buf(), emu.base_url());
    assert!(blocking(move || sync_cmd(&d, &u)).status.success());
    let d = dir.path().to_path_buf();
    let status = blocking(move || {
        let mut child = helpdex(&d)
            .args(["search", "payment", "--limit", "50"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line, then close the pipe as `head -1` does.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        drop(out);
        let o = child.wait_with_output().unwrap();
        (o.status, String::from_utf8_lossy(&o.stderr).to_string())
    });
    assert!(status.0.success(), "{:?}: {}", status.0, status.1);
    assert!(!status.1.contains("panicked"), "{}", status.1);
}

/// The same request through CLI, HTTP and MCP: the same hits, and the same validation errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_contract_through_cli_http_and_mcp() {
    let emu = emulator_on(&fixtures()).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &emu.base_url(), ADMIN_TOKEN);
    serve.ready().await;
    let d = dir.path().to_path_buf();
    let mut mcp = blocking(move || Mcp::start(&d));
    let key = |h: &Value| {
        h["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| format!("{} {} {}", h["article_id"], h["url"], h["text"]))
            .collect::<Vec<_>>()
    };
    for (q, locale, limit) in [
        ("how do I refund a payment", "EN-us", 3),
        ("Zwei-Faktor", "de", 8),
    ] {
        let d = dir.path().to_path_buf();
        let via_cli = blocking(move || {
            stdout_json(&cli(
                &d,
                &[
                    "search",
                    q,
                    "--locale",
                    locale,
                    "--limit",
                    &limit.to_string(),
                    "--json",
                ],
            ))
        });
        let (s, via_http) = serve
            .get(&format!(
                "/v1/search?q={}&locale={locale}&limit={limit}",
                q.replace(' ', "+")
            ))
            .await;
        assert_eq!(s, 200, "{via_http}");
        let r = blocking(move || {
            let r = mcp.call(
                "search_help_center",
                json!({"query": q, "locale": locale, "limit": limit}),
            );
            (mcp, r)
        });
        mcp = r.0;
        let via_mcp = r.1["structuredContent"].clone();
        assert!(!key(&via_cli).is_empty(), "{q}: no hits");
        assert_eq!(key(&via_cli), key(&via_http), "{q}: CLI vs HTTP");
        assert_eq!(key(&via_cli), key(&via_mcp), "{q}: CLI vs MCP");
    }
    // Validation errors: word for word the same.
    for (args, query, expect) in [
        (
            vec!["--limit", "0"],
            "limit=0",
            "limit: must be between 1 and 50, got 0",
        ),
        (
            vec!["--locale", "xx-nowhere"],
            "locale=xx-nowhere",
            "locale: no content in 'xx-nowhere'; known locales: de, en-us, fr, ja",
        ),
    ] {
        let d = dir.path().to_path_buf();
        let mut cli_args = vec!["search", "refund"];
        cli_args.extend(args.iter().copied());
        let cli_args: Vec<String> = cli_args.into_iter().map(String::from).collect();
        let o = blocking(move || cli(&d, &cli_args.iter().map(String::as_str).collect::<Vec<_>>()));
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(expect), "CLI: {}", stderr(&o));
        let (s, body) = serve.get(&format!("/v1/search?q=refund&{query}")).await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(body["error"]["message"], expect, "HTTP");
        let mut mcp_args = json!({"query": "refund"});
        let (k, v) = query.split_once('=').unwrap();
        mcp_args[k] = match v.parse::<u64>() {
            Ok(n) => json!(n),
            Err(_) => json!(v),
        };
        let r = blocking(move || {
            let r = mcp.call("search_help_center", mcp_args);
            (mcp, r)
        });
        mcp = r.0;
        assert_eq!(r.1["isError"], true);
        assert_eq!(r.1["content"][0]["text"], expect, "MCP");
    }
}

/// `helpdex demo` from a copied binary in an empty directory: the fixtures travel inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_from_a_copied_binary_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("helpdex");
    std::fs::copy(env!("CARGO_BIN_EXE_helpdex"), &bin).unwrap();
    let d = dir.path().to_path_buf();
    let o = blocking(move || {
        Command::new(&bin)
            .arg("demo")
            .current_dir(&d)
            .env("HELPDEX_LOG", "warn")
            .env_remove("HELPDEX_DATA_DIR")
            .output()
            .unwrap()
    });
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("45 added"), "{text}");
    assert!(dir.path().join("index/helpdex.sqlite3").exists());
}

/// The core crate holds no front-end dependency: no clap, axum, rmcp or anyhow in its tree.
#[test]
fn the_core_crate_has_no_front_end_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "helpdex-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tree = String::from_utf8_lossy(&o.stdout);
    assert!(tree.contains("tantivy v"), "{tree}");
    for forbidden in ["clap ", "axum ", "rmcp ", "anyhow ", "reqwest "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(forbidden)),
            "helpdex-core depends on {forbidden}"
        );
    }
}
