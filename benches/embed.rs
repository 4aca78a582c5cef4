//! Hybrid retrieval's costs with a real model, beside BM25 alone in the same run:
//!
//! - first sync of a synthetic help center of N articles by the real binary,
//!   with the model (it embeds every passage before returning) and without: wall, CPU, peak RSS,
//!   passages embedded per second;
//! - in-process search latency p50/p99, BM25 alone vs hybrid (question embedding included);
//! - CLI `search` wall time per process (model loaded each time) vs without a model, and its
//!   peak RSS;
//! - the exact vector scan alone at the synthetic size.
//!
//! `HELPDEX_EMBEDDING_MODEL=$(scripts/fetch-model) cargo bench --bench embed [-- N]` (N defaults
//! to 2,000: embedding is what costs, and it is linear in passages, so larger help centers are
//! extrapolated from the measured rate). `HELPDEX_EMBEDDING_MAX_TOKENS` sets `[embeddings]
//! max_tokens`, `HELPDEX_EMBEDDING_INT8=0` sets `int8 = false`, and `-- N one-locale` generates
//! the help center without its translations (German for half the articles, French for a
//! quarter by default). `HELPDEX_BENCH_KEEP=DIR` keeps the two data directories in DIR.

#[allow(dead_code)] // shared with the sync bench, which reports more of it
#[path = "support/measure.rs"]
mod measure;

#[path = "support/embedding_env.rs"]
mod embedding_env;
use embedding_env::{int8, max_tokens};

use helpdex_core::engine::Engine;
use helpdex_core::model::Access;
use helpdex_core::normalize::NormalizeOptions;
use helpdex_core::query::QueryInput;
use helpdex_core::search::{Tuning, search_with};
use helpdex_emulator::{Emulator, EmulatorConfig, SYNTHETIC_EMAIL, SYNTHETIC_TOKEN, Synthetic};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Wall seconds, CPU seconds and peak RSS (MB) of one run of the binary.
struct Run {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    ok: bool,
    stdout: String,
}

/// Runs the binary through the launcher ([`measure`]): this process holds a help center and a
/// model, which a child would otherwise count as its own until it execs.
fn run(data: &Path, url: &str, model: Option<&str>, args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helpdex"));
    c.args(["--data-dir", data.to_str().expect("utf-8")])
        .env("ZENDESK_URL", url)
        .env("ZENDESK_EMAIL", SYNTHETIC_EMAIL)
        .env("ZENDESK_API_TOKEN", SYNTHETIC_TOKEN)
        .env("HELPDEX_LOG", "warn");
    c.env_remove("HELPDEX_EMBEDDING_MODEL");
    if let Some(m) = model {
        // Through the config file, as a deployment would (max_tokens has no variable).
        let file = data.with_extension("toml");
        let mut toml = format!("[embeddings]\nmodel = {m:?}\n");
        if let Some(t) = max_tokens() {
            toml.push_str(&format!("max_tokens = {t}\n"));
        }
        if !int8() {
            toml.push_str("int8 = false\n");
        }
        std::fs::write(&file, toml).expect("config file");
        c.args(["--config", file.to_str().expect("utf-8")]);
    }
    c.args(args);
    let m = measure::run_measured(&c);
    Run {
        wall: m.wall,
        cpu: m.cpu,
        rss_mb: m.rss_mb,
        ok: m.ok,
        stdout: m.stdout,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

const QUESTIONS: &[&str] = &[
    "how do I reset my password",
    "refund was not received",
    "change the billing address on an invoice",
    "export my data to a spreadsheet",
    "two factor authentication lost phone",
    "why was my payout delayed",
    "add a team member with limited access",
    "cancel my subscription",
    "connect a custom domain",
    "the app crashes when uploading photos",
];

fn main() -> anyhow::Result<()> {
    if let Some(code) = measure::launcher() {
        std::process::exit(code);
    }
    let Some(model) = std::env::var("HELPDEX_EMBEDDING_MODEL").ok() else {
        println!(
            "set HELPDEX_EMBEDDING_MODEL to a model directory (scripts/fetch-model fetches all-MiniLM-L6-v2, scripts/fetch-model multilingual-e5-small the multilingual model)"
        );
        return Ok(());
    };
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let rt = tokio::runtime::Runtime::new()?;
    let one_locale = std::env::args().any(|a| a == "one-locale");
    let mut spec = Synthetic {
        articles: n,
        newest: chrono::Utc::now().timestamp() - 7 * 86_400,
        ..Synthetic::default()
    };
    if one_locale {
        spec.translations.clear();
    }
    let emu: Emulator = rt.block_on(Emulator::start(
        spec.world(),
        EmulatorConfig::default(),
        "127.0.0.1:0".parse()?,
    ))?;
    let url = emu.base_url();
    let tmp = tempfile::tempdir()?;
    // HELPDEX_BENCH_KEEP=DIR: the data directories stay there (DIR/bm25, DIR/hybrid, and the
    // hybrid one's config DIR/hybrid.toml) to time or inspect afterwards.
    let root = match std::env::var_os("HELPDEX_BENCH_KEEP") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => tmp.path().to_path_buf(),
    };
    let (plain, hybrid) = (root.join("bm25"), root.join("hybrid"));

    println!(
        "synthetic help center: {n} articles, locales {:?}; machine: {} cores",
        spec.locales(),
        num_cpus()
    );
    let a = run(&plain, &url, None, &["sync", "--json"]);
    let b = run(&hybrid, &url, Some(&model), &["sync", "--json"]);
    assert!(a.ok && b.ok, "sync failed");
    let engine = Engine::open(&hybrid, NormalizeOptions::default())?;
    let status = helpdex_core::vectors::status(engine.reader())?.expect("vectors");
    let embed_secs = b.wall - a.wall;
    println!(
        "first sync, BM25 only: {:.1} s wall, {:.1} s CPU, peak RSS {:.0} MB",
        a.wall, a.cpu, a.rss_mb
    );
    println!(
        "first sync with the model: {:.1} s wall ({:.2}x), {:.1} s CPU, peak RSS {:.0} MB; {} passages embedded, {} pending; ~{:.1} passages/s",
        b.wall,
        b.wall / a.wall,
        b.cpu,
        b.rss_mb,
        status.embedded,
        status.pending,
        status.embedded as f64 / embed_secs.max(1e-9)
    );
    let _ = b.stdout;

    // In-process latency, question embedding included.
    let m = helpdex_service::embeddings::load(Path::new(&model), max_tokens(), int8())?;
    engine.reader().set_embedder(m);
    let bm25 = Tuning {
        vector_weight: 0.0,
        ..Tuning::default()
    };
    let hybrid_t = Tuning::default();
    let lat = |t: &Tuning| -> anyhow::Result<(f64, f64)> {
        let mut v = Vec::new();
        for round in 0..20 {
            for q in QUESTIONS {
                let query = QueryInput {
                    limit: Some(8),
                    ..QueryInput::new(*q)
                }
                .validate(Access::anonymous())?;
                let s = Instant::now();
                search_with(engine.reader(), &query, t)?;
                if round > 0 {
                    v.push(s.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
        Ok((pct(&mut v, 0.5), pct(&mut v, 0.99)))
    };
    let (b50, b99) = lat(&bm25)?;
    let (h50, h99) = lat(&hybrid_t)?;
    println!(
        "search in process (one thread): BM25 p50 {b50:.2} ms p99 {b99:.2} ms; hybrid p50 {h50:.2} ms ({:.1}x) p99 {h99:.2} ms",
        h50 / b50
    );
    drop(engine);

    // One process per question, as an AI tool shelling out would.
    let cli = |model: Option<&str>, dir: &Path| {
        let mut walls = Vec::new();
        let mut rss: f64 = 0.0;
        for q in QUESTIONS {
            let r = run(dir, &url, model, &["search", q, "--json"]);
            assert!(r.ok, "search failed");
            walls.push(r.wall * 1000.0);
            rss = rss.max(r.rss_mb);
        }
        (pct(&mut walls, 0.5), pct(&mut walls, 0.99), rss)
    };
    let (c50, c99, crss) = cli(None, &hybrid);
    let (m50, m99, mrss) = cli(Some(&model), &hybrid);
    println!(
        "CLI search per process: BM25 p50 {c50:.0} ms p99 {c99:.0} ms, peak RSS {crss:.0} MB; with the model p50 {m50:.0} ms ({:.1}x) p99 {m99:.0} ms, peak RSS {mrss:.0} MB",
        m50 / c50
    );
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
