//! `helpdex serve` (the real binary) syncing the demo help center from an emulator, for the
//! benches that load it (`#[path = "support/demo_serve.rs"] mod demo_serve;`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `helpdex --data-dir DATA [ARGS...] serve --listen 127.0.0.1:0` against the emulator
/// at `emulator_url` with the demo fixtures' credentials and `env` added; returns the child
/// and the URL it printed. `HELPDEX_BENCH_BIN` names another `helpdex` binary to run instead of
/// this build's (an earlier commit's, to compare two builds on the same machine in one sitting).
pub fn spawn(
    data_dir: &Path,
    emulator_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    let bin = std::env::var_os("HELPDEX_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_helpdex").into());
    let mut cmd = Command::new(bin);
    cmd.args(["--data-dir", data_dir.to_str().expect("utf-8 path")])
        .args(args)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HELPDEX_LOG", "warn")
        .env("ZENDESK_URL", emulator_url)
        .env("ZENDESK_EMAIL", "sync@lumenpay.test")
        .env("ZENDESK_API_TOKEN", "demo-admin-token")
        .env_remove("HELPDEX_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("helpdex serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("serve prints its address");
    let url = line.trim().rsplit(' ').next().expect("address").to_string();
    (child, url)
}

/// Waits until `/readyz` answers 2xx (`serve` syncs as it starts and is ready once that sync
/// is committed), at most `patience`; whether it did.
pub async fn wait_ready(http: &reqwest::Client, url: &str, patience: Duration) -> bool {
    for _ in 0..patience.as_millis().div_ceil(100) {
        if http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
