//! Retrieval-quality benchmark on labelled support questions (see `/work/shared/eval/README.md`):
//! the gold articles of a set become a help center served by the emulator, helpdex syncs it over
//! loopback HTTP (so sync, normalize, index and search are all measured), and every question is
//! searched as an anonymous customer. A plain tantivy index over the same raw texts (default
//! tokenizer, default query parser over title + body: no normalization, segmentation or
//! stemming) is built and queried in the same run as the baseline.
//!
//! Scores are per article: helpdex returns passages, so hits are deduplicated by article id in
//! rank order before the rank of the first gold article is taken. Reported: hit@1/5/10, MRR@10,
//! nDCG@10 (binary relevance), sync time, per-query search latency (median, p95) and, for sets
//! with unanswerable questions, how well the top score separates answerable ones (AUROC).
//!
//! `cargo bench --bench eval [-- wix|techqa|all]` (default `all`). The data directory is
//! `$HELPDEX_EVAL_DIR`, else `/work/shared/eval`; a missing set is reported and skipped.

use anyhow::{Context, bail};
use helpdex_core::engine::Engine;
use helpdex_core::model::Access;
use helpdex_core::query::QueryInput;
use helpdex_core::search::search;
use helpdex_emulator::{Emulator, EmulatorConfig, World};
use helpdex_service::config::{Config, RawConfig, SourceFlags};
use helpdex_sync::{SyncOptions, sync_all};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, Schema, TEXT, Value as _};
use tantivy::{Index, TantivyDocument, doc};

/// Hits asked of each engine per question (helpdex: passages; baseline: articles).
const LIMIT: usize = 10;
/// Article ids start here, as Zendesk ids are large integers.
const FIRST_ID: u64 = 4_100_000_000_001;
const EMAIL: &str = "eval@helpdex.test";
const TOKEN: &str = "eval-admin-token";

/// Reads one labelled set.
type Loader = fn(&Path) -> anyhow::Result<Dataset>;

/// One gold document, as plain text.
struct Doc {
    key: String,
    title: String,
    /// Text after the title line, line structure kept.
    body: String,
}

/// One labelled question.
struct Question {
    text: String,
    /// Keys of the gold documents present in the corpus; empty for unanswerable questions.
    gold: Vec<String>,
}

/// A labelled set: the corpus is the union of the gold contexts.
struct Dataset {
    name: &'static str,
    docs: Vec<Doc>,
    questions: Vec<Question>,
    /// Rows that could not be used (bad JSON, no question, no usable gold context).
    skipped: usize,
}

/// Splits a context into title (first non-empty line) and body (the rest).
fn split_title(text: &str) -> Option<(String, String)> {
    let text = text.trim_start();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let title = first.trim();
    (!title.is_empty()).then(|| (title.to_string(), rest.to_string()))
}

/// WixQA rows: `question`, `article_ids`, `contexts[] {id, text}`; the text's first line is
/// the title.
fn load_wix(path: &Path) -> anyhow::Result<Dataset> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut docs: BTreeMap<String, Doc> = BTreeMap::new();
    let mut pending = Vec::new();
    let mut skipped = 0;
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(row) = serde_json::from_str::<Value>(line) else {
            skipped += 1;
            continue;
        };
        for c in row["contexts"].as_array().into_iter().flatten() {
            let (Some(id), Some(text)) = (c["id"].as_str(), c["text"].as_str()) else {
                continue;
            };
            if let Some((title, body)) = split_title(text) {
                docs.entry(id.to_string()).or_insert(Doc {
                    key: id.to_string(),
                    title,
                    body,
                });
            }
        }
        let gold: Vec<String> = row["article_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        match row["question"].as_str().map(str::trim) {
            Some(q) if !q.is_empty() && !gold.is_empty() => pending.push((q.to_string(), gold)),
            _ => skipped += 1,
        }
    }
    let mut questions = Vec::new();
    for (text, gold) in pending {
        let gold: Vec<String> = gold.into_iter().filter(|g| docs.contains_key(g)).collect();
        if gold.is_empty() {
            skipped += 1;
        } else {
            questions.push(Question { text, gold });
        }
    }
    Ok(Dataset {
        name: "WixQA",
        docs: docs.into_values().collect(),
        questions,
        skipped,
    })
}

/// TechQA rows: `question`, `is_impossible`, `contexts[] {filename, text}`; the text reads
/// `Title: …\n\nText:\n…`, whose labels are dropped.
fn load_techqa(path: &Path) -> anyhow::Result<Dataset> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut docs: BTreeMap<String, Doc> = BTreeMap::new();
    let mut questions = Vec::new();
    let mut skipped = 0;
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(row) = serde_json::from_str::<Value>(line) else {
            skipped += 1;
            continue;
        };
        let mut gold = Vec::new();
        for c in row["contexts"].as_array().into_iter().flatten() {
            let (Some(id), Some(text)) = (c["filename"].as_str(), c["text"].as_str()) else {
                continue;
            };
            let Some((title, body)) = split_title(text) else {
                continue;
            };
            let title = title
                .strip_prefix("Title:")
                .map(str::trim)
                .unwrap_or(&title)
                .to_string();
            let body = body.trim_start();
            let body = body.strip_prefix("Text:").unwrap_or(body).to_string();
            docs.entry(id.to_string()).or_insert(Doc {
                key: id.to_string(),
                title,
                body,
            });
            gold.push(id.to_string());
        }
        gold.dedup();
        let impossible = row["is_impossible"].as_bool().unwrap_or(false);
        match row["question"].as_str().map(str::trim) {
            Some(q) if !q.is_empty() && (impossible || !gold.is_empty()) => {
                let gold = if impossible { Vec::new() } else { gold };
                questions.push(Question {
                    text: q.to_string(),
                    gold,
                });
            }
            _ => skipped += 1,
        }
    }
    Ok(Dataset {
        name: "TechQA",
        docs: docs.into_values().collect(),
        questions,
        skipped,
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Plain text → the simple HTML an editor would produce: one paragraph per non-empty line.
fn to_html(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("<p>{}</p>", escape(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the corpus as a one-brand, one-locale help center in the fixture format; returns the
/// numeric article id of each document key.
fn write_help_center(dir: &Path, docs: &[Doc]) -> anyhow::Result<HashMap<String, u64>> {
    let articles = dir.join("articles");
    std::fs::create_dir_all(&articles)?;
    let (brand_id, category_id, section_id, group_id) = (
        4_100_000_000u64,
        4_100_000_100u64,
        4_100_000_200u64,
        4_100_000_300u64,
    );
    let ts0 = "2025-01-01T00:00:00Z";
    let hc = json!({
        "brand": {"id": brand_id, "name": "Eval", "subdomain": "eval", "host_mapping": null,
                  "has_help_center": true, "help_center_state": "enabled", "active": true, "default": true},
        "default_locale": "en-us",
        "locales": ["en-us"],
        "credentials": [{"email": EMAIL, "api_token": TOKEN, "role": "admin"}]
    });
    let categories = json!({"categories": [{
        "id": category_id, "position": 0, "created_at": ts0, "updated_at": ts0, "name": "Help",
        "description": "", "locale": "en-us", "source_locale": "en-us", "outdated": false}]});
    let sections = json!({"sections": [{
        "id": section_id, "category_id": category_id, "position": 0, "sorting": "manual",
        "created_at": ts0, "updated_at": ts0, "name": "Articles", "description": "",
        "locale": "en-us", "source_locale": "en-us", "outdated": false,
        "parent_section_id": null, "theme_template": "section_page"}]});
    std::fs::write(dir.join("help_center.json"), hc.to_string())?;
    std::fs::write(dir.join("categories.json"), categories.to_string())?;
    std::fs::write(dir.join("sections.json"), sections.to_string())?;
    std::fs::write(
        dir.join("user_segments.json"),
        json!({"user_segments": []}).to_string(),
    )?;
    let base = chrono::DateTime::parse_from_rfc3339(ts0)?.to_utc();
    let mut ids = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        let id = FIRST_ID + i as u64;
        // One second apart, as real edits are; the export orders by time.
        let ts = (base + chrono::Duration::seconds(i as i64))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let body = to_html(&d.body);
        let article = json!({
            "article": {
                "id": id, "author_id": 1, "comments_disabled": false, "draft": false,
                "promoted": false, "position": i, "vote_sum": 0, "vote_count": 0,
                "section_id": section_id, "created_at": ts, "updated_at": ts, "edited_at": ts,
                "name": d.title, "title": d.title, "body": body, "source_locale": "en-us",
                "locale": "en-us", "outdated": false, "outdated_locales": [],
                "permission_group_id": group_id, "user_segment_id": null, "user_segment_ids": [],
                "label_names": [], "content_tag_ids": []
            },
            "translations": [{
                "id": id + 1_000_000, "source_id": id, "source_type": "Article", "locale": "en-us",
                "title": d.title, "body": body, "outdated": false, "draft": false,
                "created_at": ts, "updated_at": ts, "created_by_id": 1, "updated_by_id": 1
            }],
            "archived": false
        });
        std::fs::write(articles.join(format!("{id}.json")), article.to_string())?;
        ids.insert(d.key.clone(), id);
    }
    Ok(ids)
}

/// Per-question outcome: distinct article ids in rank order, top score, latency.
struct Ranked {
    articles: Vec<u64>,
    top_score: Option<f32>,
    micros: f64,
}

/// The baseline: one tantivy document per article, raw title + text, default tokenizer, the
/// default query parser (OR) over both fields without boosts.
struct Baseline {
    reader: tantivy::IndexReader,
    parser: QueryParser,
    id: tantivy::schema::Field,
}

impl Baseline {
    fn build(docs: &[Doc], ids: &HashMap<String, u64>) -> anyhow::Result<Baseline> {
        let mut sb = Schema::builder();
        let id = sb.add_u64_field("id", STORED);
        let title = sb.add_text_field("title", TEXT);
        let body = sb.add_text_field("body", TEXT);
        let index = Index::create_in_ram(sb.build());
        let mut w: tantivy::IndexWriter = index.writer(50_000_000)?;
        for d in docs {
            if let Some(&n) = ids.get(&d.key) {
                w.add_document(doc!(id => n, title => d.title.clone(), body => d.body.clone()))?;
            }
        }
        w.commit()?;
        let reader = index.reader()?;
        let parser = QueryParser::for_index(&index, vec![title, body]);
        Ok(Baseline { reader, parser, id })
    }

    fn search(&self, q: &str) -> anyhow::Result<Ranked> {
        let started = Instant::now();
        // Only query-syntax characters are removed (as helpdex does), so the baseline is not
        // penalised for `:` or quotes in prose; the text itself goes in as is.
        let (query, _) = self.parser.parse_query_lenient(&syntax_free(q));
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(LIMIT).order_by_score())?;
        let mut articles = Vec::new();
        for (_, addr) in &top {
            let d: TantivyDocument = searcher.doc(*addr)?;
            if let Some(n) = d.get_first(self.id).and_then(|v| v.as_u64()) {
                articles.push(n);
            }
        }
        let micros = started.elapsed().as_secs_f64() * 1e6;
        Ok(Ranked {
            articles,
            top_score: top.first().map(|t| t.0),
            micros,
        })
    }
}

fn syntax_free(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect()
}

/// helpdex: passages as an anonymous customer, deduplicated by article in rank order.
fn helpdex_search(engine: &Engine, q: &str, limit: usize) -> anyhow::Result<Ranked> {
    let req = QueryInput {
        limit: Some(limit),
        ..QueryInput::new(q)
    }
    .validate(Access::anonymous())?;
    let started = Instant::now();
    let resp = search(engine.reader(), &req)?;
    let micros = started.elapsed().as_secs_f64() * 1e6;
    let mut seen = HashSet::new();
    let articles = resp
        .hits
        .iter()
        .map(|h| h.article_id)
        .filter(|id| seen.insert(*id))
        .collect();
    Ok(Ranked {
        articles,
        top_score: resp.hits.first().map(|h| h.score),
        micros,
    })
}

/// Article-level scores over the answerable questions.
#[derive(Default, Clone, Copy)]
struct Scores {
    n: usize,
    hit1: f64,
    hit5: f64,
    hit10: f64,
    mrr: f64,
    ndcg: f64,
}

impl Scores {
    fn add(&mut self, ranked: &[u64], gold: &HashSet<u64>) {
        let top: Vec<u64> = ranked.iter().copied().take(LIMIT).collect();
        self.n += 1;
        if let Some(pos) = top.iter().position(|a| gold.contains(a)) {
            let rank = pos + 1;
            self.hit1 += f64::from(rank <= 1);
            self.hit5 += f64::from(rank <= 5);
            self.hit10 += 1.0;
            self.mrr += 1.0 / rank as f64;
        }
        let dcg: f64 = top
            .iter()
            .enumerate()
            .filter(|(_, a)| gold.contains(a))
            .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
            .sum();
        let ideal: f64 = (0..gold.len().min(LIMIT))
            .map(|i| 1.0 / (i as f64 + 2.0).log2())
            .sum();
        if ideal > 0.0 {
            self.ndcg += dcg / ideal;
        }
    }

    fn values(&self) -> [f64; 5] {
        let n = self.n.max(1) as f64;
        [
            self.hit1 / n,
            self.hit5 / n,
            self.hit10 / n,
            self.mrr / n,
            self.ndcg / n,
        ]
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Probability that a random answerable question's top score beats a random unanswerable
/// one's (ties count half); a missing top score counts as the lowest.
fn auroc(pos: &[f32], neg: &[f32]) -> Option<f64> {
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in pos {
        for n in neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

/// One system's run over a set.
struct Run {
    scores: Scores,
    latencies: Vec<f64>,
    pos_top: Vec<f32>,
    neg_top: Vec<f32>,
    distinct: usize,
    errors: usize,
}

impl Run {
    fn new() -> Run {
        Run {
            scores: Scores::default(),
            latencies: Vec::new(),
            pos_top: Vec::new(),
            neg_top: Vec::new(),
            distinct: 0,
            errors: 0,
        }
    }

    fn record(&mut self, r: anyhow::Result<Ranked>, gold: &HashSet<u64>) {
        let Ok(r) = r else {
            self.errors += 1;
            if !gold.is_empty() {
                self.scores.add(&[], gold);
            }
            return;
        };
        self.latencies.push(r.micros);
        let top = r.top_score.unwrap_or(f32::MIN);
        if gold.is_empty() {
            self.neg_top.push(top);
        } else {
            self.distinct += r.articles.len().min(LIMIT);
            self.pos_top.push(top);
            self.scores.add(&r.articles, gold);
        }
    }
}

fn config(url: &str, dir: &Path) -> anyhow::Result<Config> {
    let flags = SourceFlags {
        url: Some(url.into()),
        email: Some(EMAIL.into()),
        token: Some(TOKEN.into()),
        ..SourceFlags::default()
    };
    Ok(Config::resolve(
        RawConfig::default(),
        Some(dir.to_path_buf()),
        flags,
        &|_| None,
    )?)
}

fn progress(len: usize, label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} {elapsed}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(label.to_string());
    pb
}

async fn evaluate(set: &Dataset) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let world_dir = tmp.path().join("world");
    let ids = write_help_center(&world_dir, &set.docs)?;
    let emu = Emulator::start(
        World::load(&world_dir)?,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let data = tmp.path().join("data");
    let cfg = config(&emu.base_url(), &data)?;
    let engine = Arc::new(Engine::open(&data, cfg.normalize.clone())?);
    let started = Instant::now();
    let report = sync_all(engine.clone(), &cfg.sync, &SyncOptions::default()).await;
    let sync_secs = started.elapsed().as_secs_f64();
    let Some(s) = report.sources.first() else {
        bail!("sync reported no source")
    };
    if let Some(e) = &s.error {
        bail!("sync failed: {e}");
    }
    let passages = engine.reader().index_status()?.passages;

    let started = Instant::now();
    let baseline = Baseline::build(&set.docs, &ids)?;
    let baseline_build_secs = started.elapsed().as_secs_f64();

    let answerable = set.questions.iter().filter(|q| !q.gold.is_empty()).count();
    let multi = set.questions.iter().filter(|q| q.gold.len() > 1).count();
    println!();
    println!("== {} ==", set.name);
    println!(
        "corpus: {} articles -> {} indexed passages; questions: {} answerable ({} with several gold articles), {} unanswerable, {} rows skipped",
        set.docs.len(),
        passages,
        answerable,
        multi,
        set.questions.len() - answerable,
        set.skipped
    );
    println!(
        "helpdex sync over loopback HTTP: {sync_secs:.2}s ({} requests, {} added); baseline index build: {baseline_build_secs:.2}s",
        s.requests, s.added
    );

    let (mut hd, mut hd_wide, mut base) = (Run::new(), Run::new(), Run::new());
    let pb = progress(set.questions.len(), set.name);
    for q in &set.questions {
        let gold: HashSet<u64> = q.gold.iter().filter_map(|g| ids.get(g).copied()).collect();
        hd.record(helpdex_search(&engine, &q.text, LIMIT), &gold);
        hd_wide.record(helpdex_search(&engine, &q.text, 5 * LIMIT), &gold);
        base.record(baseline.search(&q.text), &gold);
        pb.inc(1);
    }
    pb.finish_and_clear();

    let names = ["hit@1", "hit@5", "hit@10", "MRR@10", "nDCG@10"];
    let (h, w, b) = (
        hd.scores.values(),
        hd_wide.scores.values(),
        base.scores.values(),
    );
    println!();
    println!(
        "{:<10} {:>9} {:>9} {:>8}   {:>17}",
        "metric", "helpdex", "baseline", "ratio", "helpdex limit 50*"
    );
    for i in 0..names.len() {
        let ratio = if b[i] > 0.0 {
            format!("{:.3}x", h[i] / b[i])
        } else {
            "-".into()
        };
        println!(
            "{:<10} {:>9.3} {:>9.3} {:>8}   {:>17.3}",
            names[i], h[i], b[i], ratio, w[i]
        );
    }
    let lat = |r: &mut Run| {
        r.latencies.sort_by(f64::total_cmp);
        (
            percentile(&r.latencies, 0.5) / 1000.0,
            percentile(&r.latencies, 0.95) / 1000.0,
        )
    };
    let ((hm, hp), (bm, bp)) = (lat(&mut hd), lat(&mut base));
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".into()
        }
    };
    println!(
        "{:<10} {:>7.3}ms {:>7.3}ms {:>8}",
        "lat p50",
        hm,
        bm,
        ratio(hm, bm)
    );
    println!(
        "{:<10} {:>7.3}ms {:>7.3}ms {:>8}",
        "lat p95",
        hp,
        bp,
        ratio(hp, bp)
    );
    println!(
        "* helpdex asked for 50 passages, first 10 distinct articles scored (is the passage limit what costs?)"
    );
    let n = hd.scores.n.max(1) as f64;
    println!(
        "distinct articles in helpdex's top {LIMIT} passages: {:.2} on average (baseline: {:.2})",
        hd.distinct as f64 / n,
        base.distinct as f64 / base.scores.n.max(1) as f64
    );
    if let (Some(ha), Some(ba)) = (
        auroc(&hd.pos_top, &hd.neg_top),
        auroc(&base.pos_top, &base.neg_top),
    ) {
        println!(
            "answerable vs unanswerable by top-1 score (AUROC, 0.5 = no signal): helpdex {ha:.3}, baseline {ba:.3}"
        );
    }
    if hd.errors + base.errors > 0 {
        println!(
            "search errors: helpdex {}, baseline {} (scored as misses)",
            hd.errors, base.errors
        );
    }
    emu.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name || w == "all");
    let dir = std::env::var_os("HELPDEX_EVAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/eval"));
    let rt = tokio::runtime::Runtime::new()?;
    println!(
        "retrieval quality at article level; helpdex = full pipeline (emulator -> sync -> normalize -> index -> search, anonymous customer, {LIMIT} passages)"
    );
    println!(
        "baseline = tantivy, one doc per article, raw title + text, default tokenizer and QueryParser (OR, no boosts)"
    );
    println!(
        "reference (README, SQLite FTS5 BM25, title weight 2): WixQA hit@1 0.66 hit@10 0.93 MRR@10 0.76; TechQA answerable hit@1 0.76 hit@10 0.94 MRR@10 0.82"
    );
    let sets: [(&str, &str, Loader); 2] = [
        ("wix", "wixqa_public_rag_sample.jsonl", load_wix),
        ("techqa", "techqa_rag_eval_sample.jsonl", load_techqa),
    ];
    for (name, file, load) in sets {
        if !want(name) {
            continue;
        }
        let path = dir.join(file);
        if !path.exists() {
            println!("\n{name}: {} not found, skipped", path.display());
            continue;
        }
        let set = load(&path)?;
        rt.block_on(evaluate(&set))?;
    }
    Ok(())
}
