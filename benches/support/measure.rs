//! Measuring a child process: its own CPU seconds, peak RSS and peak anonymous memory.
//!
//! Shared by the benches that run the real binary (`#[path = "support/measure.rs"] mod
//! measure;`). A child's `ru_maxrss` counts the address space it had before `exec`, so a child
//! forked from a big bench process (it holds an emulator, a help center, a model) would report
//! the bench's own RSS. Children therefore go through a small launcher: a fresh copy of the
//! bench started with `--measure`, which spawns the command, reaps it with `wait4` and writes
//! what it cost to a file.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of a child cost, and what it printed.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Wall seconds, launcher included.
    pub wall: f64,
    /// User + system CPU seconds of the child.
    pub cpu: f64,
    /// Peak RSS (MB): heap plus the file pages it mapped (tantivy's segments, the model).
    pub rss_mb: f64,
    /// Peak anonymous memory (MB), sampled every 50 ms: the heap without mapped files.
    pub anon_mb: f64,
    /// The child exited with 0.
    pub ok: bool,
    /// Its standard output.
    pub stdout: String,
}

/// When this process was started as the launcher (`--measure OUT PROGRAM ARGS...`), runs the
/// command and returns its exit code; `None` otherwise. Call first thing in `main`.
pub fn launcher() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--measure")?;
    Some(measure(
        Path::new(&args[i + 1]),
        &args[i + 2],
        &args[i + 3..],
    ))
}

/// Runs `cmd` (its program, arguments and environment) through the launcher and returns what
/// it cost. A failed child's stderr is echoed.
pub fn run_measured(cmd: &Command) -> Measured {
    let out_file = tempfile::NamedTempFile::new().expect("rusage file");
    let mut launcher = Command::new(std::env::current_exe().expect("bench exe"));
    launcher
        .arg("--measure")
        .arg(out_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => launcher.env(k, v),
            None => launcher.env_remove(k),
        };
    }
    let started = Instant::now();
    let mut child = launcher
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = child.wait().expect("wait");
    let wall = started.elapsed().as_secs_f64();
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    let ru: serde_json::Value = std::fs::read_to_string(out_file.path())
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let ok = status.success();
    if !ok {
        eprintln!("child failed: {stderr}");
    }
    Measured {
        wall,
        cpu: ru["cpu"].as_f64().unwrap_or(0.0),
        rss_mb: ru["max_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
        anon_mb: ru["max_anon_kb"].as_f64().unwrap_or(0.0) / 1024.0,
        ok,
        stdout,
    }
}

/// The launcher: runs the command with this process's stdio, waits for it with `wait4` and
/// writes its CPU seconds and peak RSS to `out` (JSON); exits with its code.
fn measure(out: &Path, program: &str, args: &[String]) -> i32 {
    // Reaped by wait4 below, which std's `wait` cannot do (it gives no rusage).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(program).args(args).spawn().expect("spawn");
    // Peak anonymous memory (heap), sampled: `ru_maxrss` also counts the index files the
    // kernel maps in while tantivy merges, pages it reclaims under pressure.
    let pid = child.id();
    // Sampled every 50 ms until the child is reaped; the channel (not a sleep) wakes the
    // sampler at once then, so short runs (a CLI search) are not timed 50 ms too long.
    let (done, stop) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        let mut max = 0u64;
        loop {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                && let Some(kb) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("RssAnon:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                max = max.max(kb);
            }
            match stop.recv_timeout(Duration::from_millis(50)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return max,
            }
        }
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child.id()` is our own unreaped child; status and ru are valid pointers.
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    drop(done);
    let anon = sampler.join().unwrap_or(0);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let v = serde_json::json!({
        "cpu": secs(ru.ru_utime) + secs(ru.ru_stime),
        "max_rss_kb": ru.ru_maxrss,
        "max_anon_kb": anon,
    });
    let _ = std::fs::write(out, v.to_string());
    if rc > 0 && libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    }
}
