//! Issues 12 and 14, service side, against the real binary: slow, idle and oversized
//! requests; protocol errors in the documented JSON; query bounds on every endpoint; blank keys
//! and bad log filters; webhook replays; `reindex` proving the server before it sends a key;
//! operator tools (config check, backup and restore, completions, version); the stale-citation
//! check; the systemd unit; the OpenAPI document in docs/.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const CUSTOMER_KEY: &str = "customer-key-0123456789";
const AGENT_KEY: &str = "agent-key-0123456789abc";
const ADMIN_KEY: &str = "admin-key-0123456789abcd";
const WEBHOOK_SECRET: &str = "whsec-service-tests";

fn helpdex() -> Command {
    binary()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `helpdex serve` on a loopback port, with a key of each scope and a webhook secret.
struct Serve {
    child: Child,
    url: String,
    addr: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Serves `zendesk` with `server_toml` in a config file's `[server]` section;
    /// `shell_prefix` runs first in the same `sh -c` (e.g. `ulimit -n 256`).
    fn start(zendesk: &str, server_toml: &str, shell_prefix: Option<&str>) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("helpdex.toml");
        std::fs::write(&config, format!("[server]\n{server_toml}\n")).unwrap();
        let exe = env!("CARGO_BIN_EXE_helpdex");
        let args = [
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ];
        let mut cmd = match shell_prefix {
            Some(prefix) => {
                let mut sh = Command::new("sh");
                clean_env(&mut sh);
                sh.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(exe)
                    .args(args);
                sh
            }
            None => {
                let mut c = helpdex();
                c.args(args);
                c
            }
        };
        let mut child = cmd
            .env("ZENDESK_URL", zendesk)
            .env("ZENDESK_EMAIL", ADMIN_EMAIL)
            .env("ZENDESK_API_TOKEN", ADMIN_TOKEN)
            .env("HELPDEX_CUSTOMER_KEY", CUSTOMER_KEY)
            .env("HELPDEX_AGENT_KEY", AGENT_KEY)
            .env("HELPDEX_ADMIN_KEY", ADMIN_KEY)
            .env("HELPDEX_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "serve did not start: {line}"
        );
        let addr = url.trim_start_matches("http://").to_string();
        let s = Serve {
            child,
            url,
            addr,
            data,
            _dir: dir,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        for _ in 0..600 {
            if self
                .raw("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .starts_with("HTTP/1.1 200")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve never became ready");
    }

    /// One raw HTTP exchange; the whole answer as text.
    fn raw(&self, request: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn http(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let r = self
            .http()
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http()
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of a raw HTTP answer, parsed as the documented error.
fn error_of(answer: &str) -> (u16, String, String) {
    let status: u16 = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

/// Whether the server closes an open connection (reads EOF) within a generous bound.
fn closed_by_server(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_but_blank_key_and_a_bad_log_filter_stop_the_binary() {
    for value in [",", "   ", ""] {
        let o = helpdex()
            .args(["--data-dir", "/nonexistent-helpdex", "serve"])
            .env("HELPDEX_CUSTOMER_KEY", value)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{value:?}: {}", text(&o));
        assert!(
            text(&o).contains("HELPDEX_CUSTOMER_KEY is set but"),
            "{value:?}: {}",
            text(&o)
        );
    }
    let o = helpdex()
        .args(["--data-dir", "/nonexistent-helpdex", "status"])
        .env("HELPDEX_LOG", "[[[")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("HELPDEX_LOG=\"[[[\" is not a log filter"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_connections_are_closed_before_authentication() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let s = Serve::start(&url, "header_read_timeout_secs = 1", None);
        // Silent after connecting.
        let idle = TcpStream::connect(&s.addr).unwrap();
        // Headers one byte at a time, never finished.
        let mut trickle = TcpStream::connect(&s.addr).unwrap();
        let t = std::thread::spawn(move || {
            for b in b"GET /v1/search?q=x HTTP/1.1\r\nHost: x\r\nX-Slow: " {
                if trickle.write_all(&[*b]).is_err() {
                    return trickle;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            trickle
        });
        // Idle after a complete request on a kept-alive connection.
        let mut kept = TcpStream::connect(&s.addr).unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 12];
        kept.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        assert!(closed_by_server(idle), "an idle connection stays open");
        assert!(
            closed_by_server(kept),
            "an idle keep-alive connection stays open"
        );
        assert!(
            closed_by_server(t.join().unwrap()),
            "a trickling request stays open"
        );
        // The server is still fine.
        assert_eq!(s.get("/healthz", CUSTOMER_KEY).0, 200);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_sockets_under_a_small_file_limit_does_not_starve_requests() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let s = Serve::start(&url, "header_read_timeout_secs = 2", Some("ulimit -n 256"));
        let limits =
            std::fs::read_to_string(format!("/proc/{}/limits", s.child.id())).unwrap_or_default();
        assert!(
            limits
                .lines()
                .any(|l| l.starts_with("Max open files") && l.contains(" 256 ")),
            "{limits}"
        );
        let flood: Vec<TcpStream> = (0..300)
            .filter_map(|_| TcpStream::connect(&s.addr).ok())
            .collect();
        assert!(
            flood.len() >= 250,
            "only {} connections opened",
            flood.len()
        );
        // Idle sockets either wait in the backlog or time out; a real request gets through.
        let (status, body) = s.get("/v1/search?q=refund", CUSTOMER_KEY);
        assert_eq!(status, 200, "{body}");
        assert!(!body["hits"].as_array().unwrap().is_empty());
        drop(flood);
        assert_eq!(s.get("/healthz", CUSTOMER_KEY).0, 200);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_before_they_are_read() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let s = Serve::start(&url, "", None);
        // Bodies announced but never sent: every answer below comes without the body, so the
        // server waited for none of it.
        let head = |key: Option<&str>, length: usize| {
            format!(
                "POST /v1/context HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n{}\r\n",
                key.map(|k| format!("Authorization: Bearer {k}\r\n"))
                    .unwrap_or_default()
            )
        };
        for key in [None, Some(CUSTOMER_KEY)] {
            let (status, code, message) = error_of(&s.raw(&head(key, 2_000_000)));
            assert_eq!((status, code.as_str()), (413, "bad_request"), "{message}");
            assert!(message.contains("at most 262144 bytes"), "{message}");
        }
        // Within the limit but without a key: refused before the body is read.
        let (status, code, _) = error_of(&s.raw(&head(None, 1000)));
        assert_eq!((status, code.as_str()), (401, "unauthorized"));
        // Chunked, no length: cut off while streaming.
        let big = format!("{{\"query\": \"{}\"}}", "a".repeat(300 * 1024));
        let r = s
            .http()
            .post(format!("{}/v1/context", s.url))
            .bearer_auth(CUSTOMER_KEY)
            .header("content-type", "application/json")
            .body(reqwest::blocking::Body::new(std::io::Cursor::new(big)))
            .send();
        match r {
            Ok(r) => {
                assert_eq!(r.status().as_u16(), 413);
                assert_eq!(r.json::<Value>().unwrap()["error"]["code"], "bad_request");
            }
            // The server answered 413 and closed while the client was still streaming the
            // rest: the body was cut off either way (which side sees what is a race).
            Err(e) => assert!(e.is_body() || e.is_request(), "{e}"),
        }
        // And it goes on serving.
        let (status, _, _) = error_of(&s.raw(&head(None, 1000)));
        assert_eq!(status, 401);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_are_the_documented_json_and_the_plumbing_works() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let s = Serve::start(&url, "", None);
        let auth = format!("Authorization: Bearer {CUSTOMER_KEY}\r\n");
        let ask = |line: &str, extra: &str| {
            s.raw(&format!("{line} HTTP/1.1\r\nHost: x\r\n{auth}{extra}Connection: close\r\n\r\n"))
        };
        let (status, code, message) = error_of(&ask("DELETE /v1/search", ""));
        assert_eq!((status, code.as_str()), (405, "bad_request"));
        assert!(message.contains("allowed: GET,HEAD"), "{message}");
        let long = format!("GET /v1/search?q={}", "a".repeat(10_000));
        let (status, _, message) = error_of(&ask(&long, ""));
        assert_eq!(status, 414, "{message}");
        let (status, code, message) = error_of(&ask("GET /v1/articles/%FF%FE", ""));
        assert_eq!((status, code.as_str()), (400, "bad_request"));
        assert!(message.contains("UTF-8"), "{message}");
        let (status, code, _) = error_of(&ask("GET /v1/no-such-thing", ""));
        assert_eq!((status, code.as_str()), (404, "not_found"));
        // CORS preflight, request ids, compression.
        let pre = s.raw(
            "OPTIONS /v1/search HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n",
        )
        .to_ascii_lowercase();
        assert!(pre.starts_with("http/1.1 200"), "{pre}");
        assert!(pre.contains("access-control-allow-origin: *"), "{pre}");
        assert!(pre.contains("access-control-allow-headers: authorization"), "{pre}");
        let answer = ask("GET /v1/search?q=refund", "X-Request-Id: trace-me-42\r\n");
        assert!(answer.to_ascii_lowercase().contains("x-request-id: trace-me-42"), "{answer}");
        let answer = ask("GET /healthz", "").to_ascii_lowercase();
        assert!(answer.contains("x-request-id: "), "{answer}");
        let gz = ask("GET /v1/search?q=refund&limit=20", "Accept-Encoding: gzip\r\n").to_ascii_lowercase();
        assert!(gz.contains("content-encoding: gzip"), "{}", &gz[..300.min(gz.len())]);
        assert!(s.get("/version", CUSTOMER_KEY).1["commit"].is_string());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_bounds_are_a_clear_400_on_every_endpoint() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let s = Serve::start(&url, "", None);
        let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
        let (status, v) = s.get(&format!("/v1/search?q={}", "a".repeat(4001)), CUSTOMER_KEY);
        assert_eq!(status, 400);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("query: at most 4000 characters")
        );
        let (status, v) = s.post(
            "/v1/context",
            CUSTOMER_KEY,
            &json!({"query": words.join(" ")}),
        );
        assert_eq!(status, 400);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 256 distinct words"),
            "{v}"
        );
        let (status, v) = s.post(
            "/v1/verify",
            CUSTOMER_KEY,
            &json!({"citations": vec![json!({"passage_id": "a:1:en-us:0123456789abcdef"}); 101]}),
        );
        assert_eq!(status, 400);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 100"),
            "{v}"
        );
        // MCP over HTTP: the same contract, as a tool error.
        let r = s
            .http()
            .post(format!("{}/mcp", s.url))
            .bearer_auth(CUSTOMER_KEY)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "get_context", "arguments": {"query": words.join(" ")}}}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().unwrap();
        assert_eq!(v["result"]["isError"], true, "{v}");
        assert!(
            v["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("at most 256 distinct words")
        );
    })
    .await
    .unwrap();
}

fn signed(body: &Value) -> (Vec<u8>, String, String) {
    let raw = serde_json::to_vec(body).unwrap();
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let sig = helpdex_service::webhook::sign(WEBHOOK_SECRET.as_bytes(), &ts, &raw);
    (raw, ts, sig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_webhook_deliveries_sync_once() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    let article = fixture_articles()[0]["article"]["id"].as_u64().unwrap();
    tokio::task::spawn_blocking(move || {
        let s = Serve::start(&url, "", None);
        let deliver = |body: &Value| {
            let (raw, ts, sig) = signed(body);
            let r = s
                .http()
                .post(format!("{}/v1/webhooks/zendesk", s.url))
                .header("content-type", "application/json")
                .header(helpdex_service::webhook::SIGNATURE_HEADER, sig)
                .header(helpdex_service::webhook::TIMESTAMP_HEADER, ts)
                .body(raw)
                .send()
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().unwrap())
        };
        let event = json!({"id": "01HXYZREPLAY", "type": "zen:event-type:article.published",
            "detail": {"id": article.to_string()}, "time": "2025-01-01T00:00:00Z"});
        let (status, first) = deliver(&event);
        assert_eq!(status, 202, "{first}");
        assert!(
            first["job_id"].is_u64() && first["duplicate"] == false,
            "{first}"
        );
        // The same event again (a replay, or Zendesk retrying), freshly signed or not.
        for _ in 0..3 {
            let (status, again) = deliver(&event);
            assert_eq!(status, 200, "{again}");
            assert_eq!(again["duplicate"], true, "{again}");
            assert!(again.get("job_id").is_none(), "{again}");
        }
        let (_, status) = s.get("/v1/admin/status", ADMIN_KEY);
        let webhook_jobs = status["jobs"]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == "webhook")
            .count();
        assert_eq!(webhook_jobs, 1, "{status}");
        // Another event for the same article is new work.
        let (status, other) = deliver(
            &json!({"id": "01HXYZOTHER", "type": "zen:event-type:article.published",
            "detail": {"id": article.to_string()}}),
        );
        assert_eq!(status, 202, "{other}");
    })
    .await
    .unwrap();
}

/// A TCP server that answers every request with `answer` and records what it received.
fn fake_server(answer: &'static str) -> (String, std::sync::Arc<std::sync::Mutex<String>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            s.set_read_timeout(Some(Duration::from_millis(500))).ok();
            let mut buf = [0u8; 8192];
            if let Ok(n) = s.read(&mut buf) {
                rec.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let _ = s.write_all(answer.as_bytes());
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_never_sends_the_admin_key_to_a_server_that_cannot_prove_itself() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap().to_string();
        let o = helpdex()
            .args(["--data-dir", &data, "sync"])
            .env("ZENDESK_URL", &url)
            .env("ZENDESK_EMAIL", ADMIN_EMAIL)
            .env("ZENDESK_API_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let advert = dir.path().join("server.json");
        // Something else now listens where server.json points, with a live pid (ours).
        let (impostor, seen) = fake_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"proof\":\"x\"}",
        );
        std::fs::write(
            &advert,
            json!({"url": impostor, "pid": std::process::id(), "key": "ab".repeat(32)}).to_string(),
        )
        .unwrap();
        let o = helpdex()
            .args(["--data-dir", &data, "reindex"])
            .env("HELPDEX_ADMIN_KEY", ADMIN_KEY)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("is not the helpdex server of this data directory"), "{}", text(&o));
        assert!(text(&o).contains("the admin key was not sent"), "{}", text(&o));
        std::thread::sleep(Duration::from_millis(200));
        let received = seen.lock().unwrap().clone();
        assert!(received.contains("GET /v1/instance/proof?nonce="), "{received}");
        assert!(!received.contains(ADMIN_KEY), "the key reached the impostor: {received}");
        assert!(!received.to_ascii_lowercase().contains("authorization"), "{received}");
        // A pid that is gone: the file is stale, nothing is asked, the rebuild is local.
        let mut dead = Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        std::fs::write(
            &advert,
            json!({"url": impostor, "pid": dead_pid, "key": "ab".repeat(32)}).to_string(),
        )
        .unwrap();
        seen.lock().unwrap().clear();
        let o = helpdex()
            .args(["--data-dir", &data, "reindex"])
            .env("HELPDEX_ADMIN_KEY", ADMIN_KEY)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).starts_with("reindexed "), "{}", text(&o));
        assert!(seen.lock().unwrap().is_empty());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_tools_through_the_binary() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        // config check: no secret set, no network; a bad schedule is refused.
        let cfg = dir.path().join("helpdex.toml");
        std::fs::write(
            &cfg,
            "data_dir = \"/var/lib/helpdex\"\n[server]\nwebhook_secret_env = \"HOOK\"\n[[sources]]\nname = \"acme\"\nurl = \"https://acme.zendesk.com\"\nemail = \"bot@acme.com\"\ntoken_env = \"ACME_TOKEN\"\nschedule = \"*/10 * * * *\"\n",
        )
        .unwrap();
        let o = helpdex()
            .args(["--config", cfg.to_str().unwrap(), "config", "check"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("configuration is valid"), "{t}");
        assert!(t.contains("not set here (sync and serve need it): ACME_TOKEN"), "{t}");
        assert!(t.contains("not set here (sync and serve need it): HOOK"), "{t}");
        std::fs::write(
            &cfg,
            "[[sources]]\nname = \"acme\"\nurl = \"https://acme.zendesk.com\"\nschedule = \"every 10 minutes\"\n",
        )
        .unwrap();
        let o = helpdex()
            .args(["--config", cfg.to_str().unwrap(), "config", "check"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("source 'acme': invalid schedule 'every 10 minutes'"), "{}", text(&o));
        // The example configuration of the repository is valid as shipped.
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("helpdex.example.toml");
        let o = helpdex()
            .args(["--config", example.to_str().unwrap(), "config", "check"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        // ZENDESK_URL beside a file's sources is refused, not silently preferred.
        let o = helpdex()
            .args(["--config", cfg.to_str().unwrap(), "sync"])
            .env("ZENDESK_URL", "https://other.zendesk.com")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("both --zendesk-url / ZENDESK_URL"), "{}", text(&o));
        // A help center page is not a base URL.
        let o = helpdex()
            .args(["--data-dir", dir.path().join("x").to_str().unwrap(), "sync"])
            .env("ZENDESK_URL", "https://acme.zendesk.com/hc/en-us")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("(use https://acme.zendesk.com)"), "{}", text(&o));
        // A closed port names the help center.
        let o = helpdex()
            .args(["--data-dir", dir.path().join("y").to_str().unwrap(), "sync"])
            .env("ZENDESK_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("default (http://127.0.0.1:9): FAILED: could not reach zendesk"), "{}", text(&o));
        // --version names the commit; completions are generated.
        let o = helpdex().arg("--version").output().unwrap();
        let v = text(&o);
        assert!(v.starts_with(&format!("helpdex {} (", env!("CARGO_PKG_VERSION"))), "{v}");
        let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().unwrap();
        if head.status.success() {
            assert!(v.contains(String::from_utf8_lossy(&head.stdout).trim()), "{v}");
        }
        let o = helpdex().args(["completions", "bash"]).output().unwrap();
        assert!(o.status.success() && text(&o).contains("_helpdex()"), "{}", text(&o));
        let o = helpdex().args(["completions", "zsh"]).output().unwrap();
        assert!(o.status.success() && text(&o).contains("#compdef helpdex"));

        // Backup while serve writes, restore into a fresh directory: the same answers.
        let s = Serve::start(&url, "", None);
        let backup = dir.path().join("backup");
        let o = helpdex()
            .args(["--data-dir", s.data.to_str().unwrap(), "backup", backup.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(report["articles"].as_i64().unwrap() > 40, "{report}");
        let o = helpdex()
            .args(["--data-dir", s.data.to_str().unwrap(), "backup", backup.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "never overwrites a backup");
        // A restore into the directory serve holds is refused.
        let o = helpdex()
            .args(["--data-dir", s.data.to_str().unwrap(), "restore", backup.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("stop `helpdex serve`"), "{}", text(&o));
        let restored = dir.path().join("restored");
        let o = helpdex()
            .args(["--data-dir", restored.to_str().unwrap(), "restore", backup.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("index rebuilt"), "{}", text(&o));
        let search = |d: &Path| {
            let o = helpdex()
                .args(["--data-dir", d.to_str().unwrap(), "search", "refund", "--audience", "agent", "--limit", "20", "--json"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h["url"].as_str().unwrap().to_string(), h["content_hash"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        };
        let live = search(&s.data);
        assert!(!live.is_empty());
        assert_eq!(search(&restored), live);
        // `verify` reads hits as `search --json` prints them.
        let hits = helpdex()
            .args(["--data-dir", restored.to_str().unwrap(), "search", "refund", "--json"])
            .output()
            .unwrap();
        let mut verify = helpdex()
            .args(["--data-dir", restored.to_str().unwrap(), "verify", "--from", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        verify.stdin.take().unwrap().write_all(&hits.stdout).unwrap();
        let o = verify.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let lines: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
        assert!(!lines.is_empty() && lines.iter().all(|l| l.starts_with("current ")), "{lines:?}");
        let o = helpdex()
            .args(["--data-dir", restored.to_str().unwrap(), "verify", "default:1:en-us:0123456789abcdef"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).starts_with("gone "), "{}", text(&o));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn verify_answers_current_changed_and_gone_under_the_callers_audience() {
    use helpdex_core::model::Access;
    use helpdex_core::store::StoreRead;
    use helpdex_core::verify::{CitationRef, CitationStatus, passage_id, verify};
    let env = Env::start().await;
    ok(&env.sync().await);
    let internal = env
        .agent("fraud review")
        .hits
        .into_iter()
        .find(|h| h.visibility == helpdex_core::model::Visibility::Internal)
        .expect("an internal article about fraud review");
    let public = env.customer("refund").hits.remove(0);
    let pid = |h: &helpdex_core::search::Hit| {
        let passages = db(&env.engine, |s| {
            s.passages_of(&h.source, h.article_id, &h.locale)
        });
        let p = passages
            .iter()
            .find(|p| p.text == h.text)
            .expect("the hit's passage");
        passage_id(&h.source, h.article_id, &h.locale, &p.hash)
    };
    let by_id = |h| CitationRef {
        passage_id: Some(pid(h)),
        ..CitationRef::default()
    };
    let by_url = |h: &helpdex_core::search::Hit| CitationRef {
        url: Some(h.url.clone()),
        content_hash: Some(h.content_hash.clone()),
        ..CitationRef::default()
    };
    let statuses = |cites: &[CitationRef], access: &Access| {
        verify(env.engine.reader(), cites, access)
            .unwrap()
            .results
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>()
    };
    let cites = [
        by_id(&public),
        by_url(&public),
        by_id(&internal),
        by_url(&internal),
    ];
    use CitationStatus::*;
    assert_eq!(statuses(&cites, &Access::agent()), [Current; 4]);
    // A customer may not read the internal article: gone, exactly like a missing one.
    assert_eq!(
        statuses(&cites, &Access::anonymous()),
        [Current, Current, Gone, Gone]
    );
    let r = verify(env.engine.reader(), &cites[2..], &Access::anonymous()).unwrap();
    assert!(
        r.results
            .iter()
            .all(|c| c.current_hash.is_none() && c.current_url.is_none())
    );
    // Edited: the passage and the translation changed; the answer carries the current hash.
    env.emu.edit_body(
        public.article_id,
        &public.locale,
        "<p>Refunds now take exactly seventeen days.</p>",
    );
    ok(&env.sync().await);
    let r = verify(env.engine.reader(), &cites[..2], &Access::anonymous()).unwrap();
    assert_eq!(
        r.results.iter().map(|c| c.status).collect::<Vec<_>>(),
        [Changed, Changed]
    );
    assert!(!r.all_current);
    let now = db(&env.engine, |s| {
        s.translations_of(&public.source, public.article_id)
    })
    .into_iter()
    .find(|t| t.locale == public.locale)
    .unwrap();
    assert_eq!(
        r.results[1].current_hash.as_deref(),
        Some(now.content_hash.as_str())
    );
    // Archived: gone for everyone.
    env.emu.archive(internal.article_id);
    ok(&env.sync().await);
    assert_eq!(statuses(&cites[2..], &Access::agent()), [Gone, Gone]);
}

#[test]
fn the_systemd_unit_is_hardened_and_creates_its_user() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("deploy/helpdex.service")).unwrap();
    for line in [
        "User=helpdex",
        "LimitNOFILE=65536",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    let sysusers = std::fs::read_to_string(root.join("deploy/helpdex.sysusers")).unwrap();
    assert!(
        sysusers.lines().any(|l| l.starts_with("u helpdex ")),
        "{sysusers}"
    );
    assert!(
        std::fs::read_to_string(root.join("LICENSE"))
            .unwrap()
            .starts_with("MIT License")
    );
    // Where systemd-analyze exists (CI's machine has it), the sandbox is scored.
    if let Ok(o) = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(root.join("deploy/helpdex.service"))
        .output()
    {
        let t = text(&o);
        let score: f64 = t
            .lines()
            .find_map(|l| {
                l.split("Overall exposure level for helpdex.service: ")
                    .nth(1)
            })
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no score in: {t}"));
        assert!(score <= 2.0, "exposure {score}: {t}");
    }
}

#[test]
fn docs_openapi_json_is_the_document_the_server_serves() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let served = serde_json::to_string_pretty(&helpdex_service::api::openapi()).unwrap() + "\n";
    if std::env::var_os("HELPDEX_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json is not what /openapi.json serves; regenerate it with \
         HELPDEX_UPDATE_DOCS=1 cargo test --test it docs_openapi_json"
    );
}

/// `serve` with a model embeds in its background lane: coverage shows in admin status and
/// metrics, a webhook's edit is searchable at once by BM25 and gets its vector shortly after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_embeds_in_the_background_and_reports_coverage() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    let article = fixture_articles()[0]["article"]["id"].as_u64().unwrap();
    let models = tempfile::tempdir().unwrap();
    helpdex_embed::tiny_model::write(models.path(), 11).unwrap();
    let model = models.path().to_str().unwrap().to_string();
    let emu = std::sync::Arc::new(emu);
    let e = emu.clone();
    tokio::task::spawn_blocking(move || {
        let s = Serve::start(&url, &format!("\n[embeddings]\nmodel = {model:?}"), None);
        let status = |s: &Serve| s.get("/v1/admin/status", ADMIN_KEY).1;
        let settled = |s: &Serve| {
            for _ in 0..400 {
                let st = status(s);
                let v = &st["vectors"];
                if v["embedded"].as_u64().unwrap_or(0) > 0 && v["pending"] == 0 {
                    return st;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("vectors never caught up: {}", status(s));
        };
        let first = settled(&s)["vectors"].clone();
        assert!(first["model"].as_str().unwrap().len() == 64, "{first}");
        let metrics = s
            .http()
            .get(format!("{}/metrics", s.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains(&format!("helpdex_vectors_embedded {}", first["embedded"])),
            "{metrics}"
        );
        assert!(metrics.contains("helpdex_vectors_pending 0"), "{metrics}");

        // An edit through a webhook: new words, a new passage to embed.
        e.edit_body(
            article,
            "en-us",
            "<p>Quokkas now approve every payout.</p><h2>Quokka review</h2><p>The quokka checks twice.</p>",
        );
        let (raw, ts, sig) = signed(&json!({"id": "01HXYZEMBED", "type": "zen:event-type:article.published",
            "detail": {"id": article.to_string()}}));
        let r = s
            .http()
            .post(format!("{}/v1/webhooks/zendesk", s.url))
            .header("content-type", "application/json")
            .header(helpdex_service::webhook::SIGNATURE_HEADER, sig)
            .header(helpdex_service::webhook::TIMESTAMP_HEADER, ts)
            .body(raw)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let mut found = false;
        for _ in 0..200 {
            let (code, v) = s.get("/v1/search?q=quokka%20review&limit=3", CUSTOMER_KEY);
            assert_eq!(code, 200, "{v}");
            if v["hits"][0]["article_id"] == article {
                found = true;
                assert!(v["hits"][0]["matched_by"].is_string(), "{v}");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(found, "the edit became searchable");
        let after = settled(&s)["vectors"].clone();
        assert!(after["embedded"] != first["embedded"] || after["passages"] != first["passages"], "{first} {after}");
    })
    .await
    .unwrap();
}
