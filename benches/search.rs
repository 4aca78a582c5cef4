//! In-process search latency at help-center scale: a synthetic help center (default 100,000
//! articles on 2,000 topics, real support-text vocabulary at its real frequencies, headings and
//! paragraphs, every visibility) is written through the
//! engine exactly as sync writes it, then questions are answered with snippets, as a customer
//! and as an agent. A plain tantivy index of the same articles (one document per article,
//! default tokenizer and query parser, no snippets) is queried in the same run as the baseline.
//!
//! `cargo bench --bench search [-- ARTICLES]` (default 100000). The vocabulary comes from the
//! labelled eval sets beside the repository (`../shared/eval`), else from the fixture help
//! center.

use helpdex_core::engine::Engine;
use helpdex_core::model::Access;
use helpdex_core::normalize::NormalizeOptions;
use helpdex_core::query::QueryInput;
use helpdex_core::search::{Tuning, search, search_with};
use helpdex_core::store::Batch;
use helpdex_core::visibility::Decision;
use helpdex_sync::plan::{ArticleMeta, TranslationIn, plan_article};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, Schema, TEXT};
use tantivy::{Index, doc};

const SOURCE: &str = "bench";

/// Words with their frequencies, from real support text.
fn vocabulary(repo: &Path) -> Vec<String> {
    let mut text = String::new();
    for f in [
        "wixqa_public_rag_sample.jsonl",
        "techqa_rag_eval_sample.jsonl",
    ] {
        text.push_str(
            &std::fs::read_to_string(repo.join("../shared/eval").join(f)).unwrap_or_default(),
        );
    }
    if text.is_empty() {
        for e in std::fs::read_dir(repo.join("fixtures/helpcenter/articles"))
            .into_iter()
            .flatten()
            .flatten()
        {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    // Every occurrence stays: sampling from this list follows the real word frequencies.
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| (2..=14).contains(&w.len()) && w.chars().all(|c| c.is_ascii_lowercase()))
        .map(str::to_string)
        .collect()
}

/// Words for one article: most from its topic's vocabulary, the rest from the whole language
/// (at its real frequencies), as help-center articles are about something.
struct Words<'a> {
    all: &'a [String],
    topic: &'a [String],
}

fn words(rng: &mut StdRng, vocab: &Words, range: std::ops::Range<usize>) -> String {
    let n = rng.random_range(range);
    (0..n)
        .map(|_| {
            if rng.random_bool(0.6) {
                vocab.topic[rng.random_range(0..vocab.topic.len())].as_str()
            } else {
                vocab.all[rng.random_range(0..vocab.all.len())].as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Topics: each a few hundred distinct words drawn from the language beyond its most common
/// ones.
fn topics(rng: &mut StdRng, all: &[String], n: usize) -> Vec<Vec<String>> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in all {
        *counts.entry(w.as_str()).or_default() += 1;
    }
    let mut distinct: Vec<(&str, usize)> = counts.into_iter().collect();
    distinct.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let rest: Vec<&str> = distinct.iter().skip(300).map(|(w, _)| *w).collect();
    (0..n)
        .map(|_| {
            (0..200)
                .map(|_| rest[rng.random_range(0..rest.len())].to_string())
                .collect()
        })
        .collect()
}

/// One synthetic article: title, sections with headings and paragraphs.
fn article(rng: &mut StdRng, vocab: &Words) -> (String, String) {
    let title = words(rng, vocab, 4..9);
    let mut body = format!("<p>{}.</p>", words(rng, vocab, 15..40));
    for s in 0..rng.random_range(2..6) {
        body.push_str(&format!(
            "<h2 id=\"h_{s}\">{}</h2>",
            words(rng, vocab, 3..6)
        ));
        for _ in 0..rng.random_range(1..4) {
            body.push_str(&format!("<p>{}.</p>", words(rng, vocab, 15..45)));
        }
    }
    (title, body)
}

fn decision(i: u64) -> Decision {
    let (visibility, access): (helpdex_core::model::Visibility, &[&str]) = match i % 100 {
        0..=89 => (
            helpdex_core::model::Visibility::Public,
            &["public", "staff"],
        ),
        90..=94 => (
            helpdex_core::model::Visibility::SignedIn,
            &["signed_in", "staff"],
        ),
        95..=97 => (helpdex_core::model::Visibility::Internal, &["staff"]),
        _ => (
            helpdex_core::model::Visibility::Restricted,
            &["segment:42", "staff"],
        ),
    };
    Decision {
        visibility,
        access: access.iter().map(|s| s.to_string()).collect(),
        rule: "bench".into(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vocab = vocabulary(repo);
    let mut rng = StdRng::seed_from_u64(7);
    let topics = topics(&mut rng, &vocab, 2000);
    let tmp = tempfile::tempdir()?;
    let engine = Engine::open(tmp.path(), NormalizeOptions::default())?;
    engine.start_run(SOURCE, "https://bench.zendesk.com")?;

    let mut sb = Schema::builder();
    let bid = sb.add_u64_field("id", STORED);
    let btitle = sb.add_text_field("title", TEXT);
    let bbody = sb.add_text_field("body", TEXT);
    let baseline = Index::create_in_ram(sb.build());
    let mut bw: tantivy::IndexWriter = baseline.writer(200_000_000)?;

    let started = Instant::now();
    let mut texts: Vec<String> = Vec::new();
    let mut batch = Batch::default();
    let sections = HashMap::new();
    for i in 0..n {
        let id = 1_000_000 + i;
        let topic = &topics[rng.random_range(0..topics.len())];
        let (title, body) = article(&mut rng, &Words { all: &vocab, topic });
        if i % 50 == 0 {
            texts.push(body.clone());
        }
        let url = format!("https://bench.zendesk.com/hc/en-us/articles/{id}");
        let meta = ArticleMeta {
            id,
            section_id: Some(7),
            source_locale: "en-us".into(),
            segments: Some(vec![]),
            labels: vec![],
            updated_at: Some("2024-05-01T10:00:00Z".into()),
            outdated_locales: vec![],
        };
        let t = TranslationIn {
            locale: "en-us".into(),
            title: title.clone(),
            body: Some(body.clone()),
            draft: false,
            outdated: false,
            html_url: url,
            updated_at: Some("2024-05-01T10:00:00Z".into()),
        };
        plan_article(
            SOURCE,
            &meta,
            &[t],
            None,
            &decision(i),
            &sections,
            &NormalizeOptions::default(),
            true,
            &mut batch,
        );
        if i % 100 < 90 {
            bw.add_document(doc!(bid => id, btitle => title, bbody => body))?;
        }
        if batch.articles.len() >= 1000 {
            engine.apply(SOURCE, &std::mem::take(&mut batch))?;
        }
    }
    engine.apply(SOURCE, &batch)?;
    engine.finish_run(SOURCE, None, &serde_json::json!({}), None)?;
    bw.commit()?;
    let build = started.elapsed().as_secs_f64();
    let status = engine.reader().index_status()?;
    let segments = engine
        .reader()
        .generation()?
        .reader
        .searcher()
        .segment_readers()
        .len();
    println!(
        "{n} articles -> {} passages indexed in {build:.1}s ({:.0} articles/s, normalize + SQLite + tantivy), {segments} segments",
        status.passages,
        n as f64 / build
    );

    // Questions: a few words of a random passage, in a support question's frame.
    let strip = |h: &str| -> Vec<String> {
        h.split(['<', '>'])
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .flat_map(|(_, t)| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let frames = [
        "How do I {} ?",
        "Why is my {} ?",
        "{}",
        "Can I {} please",
        "What happens when {} ?",
    ];
    let mut questions = Vec::new();
    for _ in 0..1000 {
        let w = strip(&texts[rng.random_range(0..texts.len())]);
        let len = rng.random_range(3..8).min(w.len());
        let start = rng.random_range(0..=w.len() - len);
        let q = w[start..start + len].join(" ").replace('.', "");
        questions.push(frames[rng.random_range(0..frames.len())].replace("{}", &q));
    }

    let reader = engine.reader();
    let bparser = QueryParser::for_index(&baseline, vec![btitle, bbody]);
    let breader = baseline.reader()?;
    for (who, access) in [
        ("customer", Access::anonymous()),
        ("agent", Access::agent()),
    ] {
        // Warm-up: per-audience statistics are cached per index state, as in a service.
        for q in questions.iter().take(50) {
            let query = QueryInput::new(q.as_str()).validate(access.clone())?;
            search(reader, &query)?;
        }
        // `HELPDEX_BENCH_REPEAT=N`: N unmeasured rounds first (to attach a profiler).
        let repeat: usize = std::env::var("HELPDEX_BENCH_REPEAT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        for _ in 0..repeat {
            for q in &questions {
                let query = QueryInput::new(q.as_str()).validate(access.clone())?;
                search(reader, &query)?;
            }
        }
        let mut lat = Vec::new();
        let mut found = 0;
        for q in &questions {
            let query = QueryInput::new(q.as_str()).validate(access.clone())?;
            let t = Instant::now();
            let r = search(reader, &query)?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            found += usize::from(!r.hits.is_empty() && r.hits[0].snippet.contains("**"));
        }
        lat.sort_by(f64::total_cmp);
        let mut base = Vec::new();
        let searcher = breader.searcher();
        for q in &questions {
            let clean: String = q
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { ' ' })
                .collect();
            let t = Instant::now();
            let (query, _) = bparser.parse_query_lenient(&clean);
            let _ = searcher.search(&query, &TopDocs::with_limit(8).order_by_score())?;
            base.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        base.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        let (b50, b99) = (percentile(&base, 0.5), percentile(&base, 0.99));
        println!(
            "{who:<8} helpdex (8 hits, snippets, grouped, found rule): p50 {p50:.3} ms, p99 {p99:.3} ms; \
             plain tantivy/article (8 ids, no snippets): p50 {b50:.3} ms, p99 {b99:.3} ms; ratio p50 {:.1}x, p99 {:.1}x; \
             highlighted top hit on {found}/{} questions",
            p50 / b50,
            p99 / b99,
            questions.len()
        );
    }
    // `HELPDEX_BENCH_SWEEP=1`: what each ranking knob costs (customer, p50/p99).
    if std::env::var("HELPDEX_BENCH_SWEEP").is_ok_and(|v| v == "1") {
        let d = Tuning::default();
        for (name, t) in [
            ("default", d),
            ("heading 0", Tuning { heading: 0.0, ..d }),
            ("pairs 0", Tuning { pairs: 0.0, ..d }),
            (
                "extra 0",
                Tuning {
                    extra_candidates: 0,
                    ..d
                },
            ),
            (
                "extra 4",
                Tuning {
                    extra_candidates: 4,
                    ..d
                },
            ),
            (
                "extra 8",
                Tuning {
                    extra_candidates: 8,
                    ..d
                },
            ),
            ("candidates 2", Tuning { candidates: 2, ..d }),
            ("candidates 4", Tuning { candidates: 4, ..d }),
        ] {
            let mut lat = Vec::new();
            for round in 0..2 {
                for q in &questions {
                    let query = QueryInput::new(q.as_str()).validate(Access::anonymous())?;
                    let t0 = Instant::now();
                    search_with(reader, &query, &t)?;
                    if round == 1 {
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            }
            lat.sort_by(f64::total_cmp);
            println!(
                "sweep {name:<14} p50 {:.3} ms, p99 {:.3} ms",
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            );
        }
    }
    Ok(())
}
