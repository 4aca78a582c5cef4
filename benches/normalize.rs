//! Normalization throughput against its floor (raw html5ever parsing of the same bytes) and
//! against html2text, measured in the same run: `cargo bench --bench normalize`.
//!
//! A plain timing binary (no criterion) keeps `cargo test` lean. The corpus is every fixture body
//! repeated to about 4 MB; each figure is the median of several passes over it.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use helpdex_core::normalize::{NormalizeOptions, normalize};

const TARGET_BYTES: usize = 4 << 20;
const PASSES: usize = 9;

fn corpus() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/helpcenter/articles");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture articles")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut bodies = Vec::new();
    for p in paths {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
        for t in v["translations"].as_array().into_iter().flatten() {
            if let Some(body) = t["body"].as_str() {
                bodies.push((
                    t["title"].as_str().unwrap_or_default().to_string(),
                    body.to_string(),
                ));
            }
        }
    }
    let one: usize = bodies.iter().map(|(_, b)| b.len()).sum();
    let copies = TARGET_BYTES.div_ceil(one.max(1));
    let mut out = Vec::with_capacity(bodies.len() * copies);
    for _ in 0..copies {
        out.extend(bodies.iter().cloned());
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time of this thread, from `/proc/thread-self/schedstat` (Linux): on a machine shared with
/// other work, wall time also counts the time other processes held the core.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// (CPU time when available else wall time, wall time) of one call.
fn time(f: &mut impl FnMut()) -> (Duration, Duration) {
    let c = cpu_time();
    let t = Instant::now();
    f();
    let wall = t.elapsed();
    let cpu = c.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    (cpu.unwrap_or(wall), wall)
}

fn main() {
    let corpus = corpus();
    let bytes: usize = corpus.iter().map(|(_, b)| b.len()).sum();
    let articles = corpus.len();
    let plain = NormalizeOptions::default();
    let with_selectors = NormalizeOptions {
        drop_selectors: vec![".agent-only".into(), "[data-internal]".into()],
        ..Default::default()
    };

    let mut parse = || {
        for (_, b) in &corpus {
            black_box(scraper::Html::parse_fragment(black_box(b)));
        }
    };
    let mut norm = || {
        for (t, b) in &corpus {
            black_box(normalize(t, Some(black_box(b)), &plain));
        }
    };
    let mut norm_sel = || {
        for (t, b) in &corpus {
            black_box(normalize(t, Some(black_box(b)), &with_selectors));
        }
    };
    let mut h2t = || {
        for (_, b) in &corpus {
            black_box(html2text::from_read(black_box(b.as_bytes()), 100).ok());
        }
    };

    // `cargo bench --bench normalize -- profile`: normalization only, for a profiler.
    if std::env::args().any(|a| a == "profile") {
        for _ in 0..PASSES {
            norm();
        }
        return;
    }

    // Warm up, then interleave the passes so load from other processes hits all alike.
    parse();
    norm();
    let mut runs: [Vec<(Duration, Duration)>; 4] = Default::default();
    for _ in 0..PASSES {
        runs[0].push(time(&mut parse));
        runs[1].push(time(&mut norm));
        runs[2].push(time(&mut norm_sel));
        runs[3].push(time(&mut h2t));
    }
    let cpu = |i: usize| median(runs[i].iter().map(|r| r.0).collect());
    let wall = |i: usize| median(runs[i].iter().map(|r| r.1).collect());
    let (tp, tn, ts, th) = (cpu(0), cpu(1), cpu(2), cpu(3));

    let mb = bytes as f64 / 1e6;
    let line = |name: &str, d: Duration| {
        let s = d.as_secs_f64();
        println!(
            "{name:<34} {:>8.1} ms  {:>8.1} MB/s  {:>9.0} articles/s",
            s * 1e3,
            mb / s,
            articles as f64 / s
        );
    };
    let clock = if cpu_time().is_some() {
        "thread CPU time"
    } else {
        "wall time"
    };
    println!("corpus: {articles} bodies, {mb:.2} MB, median of {PASSES} passes, {clock}");
    line("raw parse (scraper/html5ever)", tp);
    line("normalize (default options)", tn);
    line("normalize (2 drop_selectors)", ts);
    line("html2text::from_read (width 100)", th);
    println!(
        "(wall-clock medians: parse {:.1} ms, normalize {:.1} ms, html2text {:.1} ms)",
        wall(0).as_secs_f64() * 1e3,
        wall(1).as_secs_f64() * 1e3,
        wall(3).as_secs_f64() * 1e3
    );
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!(
        "normalize / raw parse throughput:  {:.2} (goal >= 0.50)",
        ratio(tn, tp)
    );
    println!("normalize+selectors / raw parse:   {:.2}", ratio(ts, tp));
    println!("normalize / html2text throughput:  {:.2}", ratio(tn, th));
}
