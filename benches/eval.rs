//! Retrieval quality on labelled support questions, through the whole pipeline: each set's
//! corpus becomes a help center served by the emulator, helpdex syncs it over loopback HTTP, and
//! every question is searched as a customer (no locale given). Baselines are built and queried
//! in the same run over the same content:
//!
//! - **FTS5**: SQLite FTS5 (unicode61 tokenizer, BM25 with title ×2 and heading ×1.5) over the
//!   very passages helpdex stores: the same contract (cited passages), plainly implemented.
//! - **tantivy/article**: one tantivy document per article translation (title + text), default
//!   tokenizer, default query parser (OR): the usual "just index the articles" setup.
//!
//! Sets: WixQA (real Wix tickets), TechQA (IBM technotes; 96 questions have no answer in the
//! corpus), the multilingual fixture set (`fixtures/eval/multilingual.jsonl`, en/de/ja/fr over
//! `fixtures/helpcenter`) and the unanswerable sets (`fixtures/eval/unanswerable_*.jsonl`).
//!
//! Reported per engine: hit@1/5/10, MRR@10, nDCG@10 (article level: hits deduplicated by
//! article in rank order), passage@1 (the gold answer text inside the top passage, where a set
//! has verbatim answers), distinct articles in the top 10, search latency p50/p99; for helpdex,
//! the "nothing relevant" rule's false negatives (answerable, `found: false`) and false
//! positives (unanswerable, `found: true`).
//!
//! With `HELPDEX_EMBEDDING_MODEL=DIR` (`scripts/fetch-model [multilingual-e5-small]`), every
//! passage is embedded after the sync (passages/s reported) and two more rows are measured:
//! `dense` (vectors alone) and `hybrid` (the default fusion); latencies then include embedding
//! the question. `HELPDEX_EVAL_TRACE=1` prints each question's rank (to diff two runs).
//! `HELPDEX_EVAL_SWEEP=vector` sweeps the fusion weight,
//! `HELPDEX_EVAL_SWEEP=candidates` the BM25 candidates per place and beyond, `fields` the title and
//! heading weights.
//!
//! `cargo bench --bench eval [-- wix|techqa|multi|all]` (default all). The labelled sets are read
//! from `$HELPDEX_EVAL_DIR`, else `../shared/eval` beside the repository. `HELPDEX_EVAL_SWEEP=1`
//! also runs helpdex over a grid of ranking settings and "nothing relevant" thresholds (how the
//! defaults were chosen); `HELPDEX_EVAL_SWEEP=found` only the thresholds.

#[path = "support/embedding_env.rs"]
mod embedding_env;
use embedding_env::{int8, max_tokens};

use anyhow::{Context, bail};
use helpdex_core::engine::Engine;
use helpdex_core::model::Access;
use helpdex_core::query::QueryInput;
use helpdex_core::search::{Tuning, search_with};
use helpdex_core::store::{ReadStore, StoreRead};
use helpdex_emulator::{Emulator, EmulatorConfig, World};
use helpdex_service::config::{Config, RawConfig, SourceFlags};
use helpdex_sync::{SyncOptions, sync_all};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, Schema, TEXT, Value as _};
use tantivy::{Index, TantivyDocument, doc};

/// Hits asked of each engine per question.
const LIMIT: usize = 10;
/// Article ids of generated corpora start here, as Zendesk ids are large integers.
const FIRST_ID: u64 = 4_100_000_000_001;
const EMAIL: &str = "eval@helpdex.test";
const TOKEN: &str = "eval-admin-token";

/// One gold document of a generated corpus, as plain text.
struct Doc {
    key: String,
    title: String,
    body: String,
}

/// One labelled question.
struct Question {
    text: String,
    /// Gold article ids; empty for an unanswerable question.
    gold: HashSet<u64>,
    /// The answer text, when it is verbatim in the gold passage (passage@1).
    answer: Option<String>,
    /// The end user is signed in (signed-in-only answers).
    signed_in: bool,
}

/// Where a set's help center comes from.
enum Corpus {
    /// Plain-text documents turned into one-locale articles.
    Generated(Vec<Doc>),
    /// A fixture help center directory.
    Fixtures(PathBuf),
}

struct Dataset {
    name: &'static str,
    corpus: Corpus,
    questions: Vec<Question>,
    skipped: usize,
}

fn split_title(text: &str) -> Option<(String, String)> {
    let text = text.trim_start();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let title = first.trim();
    (!title.is_empty()).then(|| (title.to_string(), rest.to_string()))
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Value>> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Numeric ids of a generated corpus, in key order.
fn ids_of(docs: &[Doc]) -> HashMap<String, u64> {
    docs.iter()
        .enumerate()
        .map(|(i, d)| (d.key.clone(), FIRST_ID + i as u64))
        .collect()
}

/// WixQA: `question`, `article_ids`, `contexts[] {id, text}` (first line = title); plus the
/// project's unanswerable Wix questions.
fn load_wix(dir: &Path, repo: &Path) -> anyhow::Result<Dataset> {
    let rows = read_jsonl(&dir.join("wixqa_public_rag_sample.jsonl"))?;
    let mut docs: BTreeMap<String, Doc> = BTreeMap::new();
    for row in &rows {
        for c in row["contexts"].as_array().into_iter().flatten() {
            if let (Some(id), Some(text)) = (c["id"].as_str(), c["text"].as_str())
                && let Some((title, body)) = split_title(text)
            {
                docs.entry(id.to_string()).or_insert(Doc {
                    key: id.to_string(),
                    title,
                    body,
                });
            }
        }
    }
    let docs: Vec<Doc> = docs.into_values().collect();
    let ids = ids_of(&docs);
    let mut questions = Vec::new();
    let mut skipped = 0;
    for row in &rows {
        let gold: HashSet<u64> = row["article_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().and_then(|k| ids.get(k).copied()))
            .collect();
        match row["question"].as_str().map(str::trim) {
            Some(q) if !q.is_empty() && !gold.is_empty() => questions.push(Question {
                text: q.to_string(),
                gold,
                // Expert-written replies, not passages: no verbatim answer.
                answer: None,
                signed_in: false,
            }),
            _ => skipped += 1,
        }
    }
    for row in read_jsonl(&repo.join("fixtures/eval/unanswerable_wixqa.jsonl"))? {
        if let Some(q) = row["question"].as_str() {
            questions.push(Question {
                text: q.to_string(),
                gold: HashSet::new(),
                answer: None,
                signed_in: false,
            });
        }
    }
    Ok(Dataset {
        name: "WixQA",
        corpus: Corpus::Generated(docs),
        questions,
        skipped,
    })
}

/// TechQA: `question`, `is_impossible`, `answer`, `contexts[] {filename, text}` (`Title: …\n\n
/// Text:\n…`, labels dropped).
fn load_techqa(dir: &Path, _repo: &Path) -> anyhow::Result<Dataset> {
    let rows = read_jsonl(&dir.join("techqa_rag_eval_sample.jsonl"))?;
    let mut docs: BTreeMap<String, Doc> = BTreeMap::new();
    let mut gold_keys = Vec::new();
    for row in &rows {
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
        gold_keys.push(gold);
    }
    let docs: Vec<Doc> = docs.into_values().collect();
    let ids = ids_of(&docs);
    let mut questions = Vec::new();
    let mut skipped = 0;
    for (row, gold) in rows.iter().zip(gold_keys) {
        let impossible = row["is_impossible"].as_bool().unwrap_or(false);
        let gold: HashSet<u64> = if impossible {
            HashSet::new()
        } else {
            gold.iter().filter_map(|k| ids.get(k).copied()).collect()
        };
        match row["question"].as_str().map(str::trim) {
            Some(q) if !q.is_empty() && (impossible || !gold.is_empty()) => {
                questions.push(Question {
                    text: q.to_string(),
                    gold,
                    answer: row["answer"]
                        .as_str()
                        .filter(|a| !impossible && !a.trim().is_empty())
                        .map(str::to_string),
                    signed_in: false,
                })
            }
            _ => skipped += 1,
        }
    }
    Ok(Dataset {
        name: "TechQA",
        corpus: Corpus::Generated(docs),
        questions,
        skipped,
    })
}

/// The multilingual fixture set and the unanswerable fixture questions.
fn load_multi(_dir: &Path, repo: &Path) -> anyhow::Result<Dataset> {
    let mut questions = Vec::new();
    for file in ["multilingual.jsonl", "unanswerable_fixtures.jsonl"] {
        for row in read_jsonl(&repo.join("fixtures/eval").join(file))? {
            let Some(q) = row["question"].as_str() else {
                continue;
            };
            questions.push(Question {
                text: q.to_string(),
                gold: row["article_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                    .collect(),
                answer: row["answer"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                    .map(str::to_string),
                signed_in: row["signed_in"].as_bool().unwrap_or(false),
            });
        }
    }
    Ok(Dataset {
        name: "Multilingual",
        corpus: Corpus::Fixtures(repo.join("fixtures/helpcenter")),
        questions,
        skipped: 0,
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

/// Writes a generated corpus as a one-brand, one-locale help center in the fixture format.
fn write_help_center(dir: &Path, docs: &[Doc]) -> anyhow::Result<()> {
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
    let ids = ids_of(docs);
    for (i, d) in docs.iter().enumerate() {
        let id = ids[&d.key];
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
    }
    Ok(())
}

/// One engine's answer to one question: passages in rank order as (article id, text).
struct Ranked {
    passages: Vec<(u64, String)>,
    found: Option<bool>,
    /// helpdex's relevance (coverage of the question by the best article).
    relevance: Option<f32>,
    micros: f64,
}

/// A stored passage as the baselines index it.
struct Stored {
    article_id: u64,
    locale: String,
    title: String,
    heading: String,
    text: String,
    public: bool,
    signed_in: bool,
}

/// Every published passage helpdex stored (the baselines index exactly the same content).
fn stored_passages(data: &Path) -> anyhow::Result<Vec<Stored>> {
    let store = ReadStore::open(data)?;
    let mut st = store.conn().prepare(
        "SELECT p.article_id, p.locale, t.title, p.heading_path, p.text, a.visibility
         FROM passages p JOIN translations t USING (source, article_id, locale)
         JOIN articles a USING (source, article_id)
         WHERE t.draft = 0 ORDER BY p.article_id, p.locale, p.ordinal",
    )?;
    let rows = st.query_map([], |r| {
        let path: Vec<String> = serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default();
        let vis: String = r.get(5)?;
        Ok(Stored {
            article_id: r.get::<_, i64>(0)? as u64,
            locale: r.get(1)?,
            title: r.get(2)?,
            heading: path.join(" › "),
            text: r.get(4)?,
            public: vis == "public",
            signed_in: vis == "signed_in",
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The FTS5 baseline over helpdex's passages.
struct Fts5 {
    conn: rusqlite::Connection,
}

impl Fts5 {
    fn build(passages: &[Stored]) -> anyhow::Result<Fts5> {
        let conn = rusqlite::Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE VIRTUAL TABLE p USING fts5(title, heading, text, article_id UNINDEXED,
                 public UNINDEXED, signed_in UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');",
        )?;
        {
            let mut ins = conn.prepare(
                "INSERT INTO p(title, heading, text, article_id, public, signed_in) VALUES (?,?,?,?,?,?)",
            )?;
            for s in passages {
                ins.execute(rusqlite::params![
                    s.title,
                    s.heading,
                    s.text,
                    s.article_id as i64,
                    s.public,
                    s.signed_in
                ])?;
            }
        }
        Ok(Fts5 { conn })
    }

    fn search(&self, q: &Question) -> anyhow::Result<Ranked> {
        let started = Instant::now();
        let words: Vec<String> = q
            .text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| format!("\"{w}\""))
            .collect();
        let mut passages = Vec::new();
        if !words.is_empty() {
            let mut st = self.conn.prepare_cached(
                "SELECT article_id, text FROM p WHERE p MATCH ?1 AND (public OR (?2 AND signed_in))
                 ORDER BY bm25(p, 2.0, 1.5, 1.0) LIMIT ?3",
            )?;
            let rows = st.query_map(
                rusqlite::params![words.join(" OR "), q.signed_in, (LIMIT * 5) as i64],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
            )?;
            for r in rows {
                passages.push(r?);
            }
        }
        Ok(Ranked {
            passages,
            found: None,
            relevance: None,
            micros: started.elapsed().as_secs_f64() * 1e6,
        })
    }
}

/// The tantivy baseline: one document per article translation, default tokenizer and parser.
struct ArticleIndex {
    reader: tantivy::IndexReader,
    parser: QueryParser,
    id: tantivy::schema::Field,
    text: tantivy::schema::Field,
}

impl ArticleIndex {
    fn build(passages: &[Stored]) -> anyhow::Result<ArticleIndex> {
        let mut sb = Schema::builder();
        let id = sb.add_u64_field("id", STORED);
        let title = sb.add_text_field("title", TEXT);
        let body = sb.add_text_field("body", TEXT | STORED);
        let index = Index::create_in_ram(sb.build());
        let mut w: tantivy::IndexWriter = index.writer(50_000_000)?;
        let mut by: BTreeMap<(u64, String), (String, Vec<&str>)> = BTreeMap::new();
        for s in passages.iter().filter(|s| s.public) {
            by.entry((s.article_id, s.locale.clone()))
                .or_insert_with(|| (s.title.clone(), Vec::new()))
                .1
                .push(&s.text);
        }
        for ((n, _), (t, texts)) in by {
            w.add_document(doc!(id => n, title => t, body => texts.join("\n")))?;
        }
        w.commit()?;
        let reader = index.reader()?;
        let parser = QueryParser::for_index(&index, vec![title, body]);
        Ok(ArticleIndex {
            reader,
            parser,
            id,
            text: body,
        })
    }

    fn search(&self, q: &Question) -> anyhow::Result<Ranked> {
        let started = Instant::now();
        let clean: String = q
            .text
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let (query, _) = self.parser.parse_query_lenient(&clean);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(LIMIT).order_by_score())?;
        let mut passages = Vec::new();
        for (_, addr) in &top {
            let d: TantivyDocument = searcher.doc(*addr)?;
            if let Some(n) = d.get_first(self.id).and_then(|v| v.as_u64()) {
                let text = d
                    .get_first(self.text)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                passages.push((n, text.to_string()));
            }
        }
        Ok(Ranked {
            passages,
            found: None,
            relevance: None,
            micros: started.elapsed().as_secs_f64() * 1e6,
        })
    }
}

fn helpdex(engine: &Engine, q: &Question, tuning: &Tuning) -> anyhow::Result<Ranked> {
    let access = Access {
        signed_in: q.signed_in,
        ..Access::anonymous()
    };
    let text: String = q.text.chars().take(4000).collect();
    let query = QueryInput {
        limit: Some(LIMIT),
        ..QueryInput::new(text)
    }
    .validate(access)?;
    let started = Instant::now();
    let resp = search_with(engine.reader(), &query, tuning)?;
    let micros = started.elapsed().as_secs_f64() * 1e6;
    Ok(Ranked {
        passages: resp
            .hits
            .into_iter()
            .map(|h| (h.article_id, h.text))
            .collect(),
        found: Some(resp.found),
        relevance: Some(resp.relevance),
        micros,
    })
}

/// Scores of one engine over one set.
#[derive(Default)]
struct Scores {
    answerable: usize,
    hit1: f64,
    hit5: f64,
    hit10: f64,
    mrr: f64,
    ndcg: f64,
    with_answer: usize,
    passage1: f64,
    distinct: f64,
    unanswerable: usize,
    false_negatives: usize,
    false_positives: usize,
    latencies: Vec<f64>,
    errors: usize,
    pos_relevance: Vec<f32>,
    neg_relevance: Vec<f32>,
}

/// Probability that a random answerable question's relevance beats a random unanswerable one's
/// (ties count half): how well the signal behind `found` separates them (0.5 = not at all).
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

fn norm_text(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Scores {
    fn record(&mut self, q: &Question, r: anyhow::Result<Ranked>) {
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                self.errors += 1;
                Ranked {
                    passages: Vec::new(),
                    found: None,
                    relevance: None,
                    micros: 0.0,
                }
            }
        };
        self.latencies.push(r.micros);
        if let Some(rel) = r.relevance {
            if q.gold.is_empty() {
                self.neg_relevance.push(rel);
            } else {
                self.pos_relevance.push(rel);
            }
        }
        if q.gold.is_empty() {
            self.unanswerable += 1;
            if r.found == Some(true) {
                self.false_positives += 1;
            }
            return;
        }
        self.answerable += 1;
        if r.found == Some(false) {
            self.false_negatives += 1;
        }
        let mut seen = HashSet::new();
        let articles: Vec<u64> = r
            .passages
            .iter()
            .map(|p| p.0)
            .filter(|a| seen.insert(*a))
            .take(LIMIT)
            .collect();
        self.distinct += articles.len() as f64;
        if let Some(pos) = articles.iter().position(|a| q.gold.contains(a)) {
            let rank = pos + 1;
            self.hit1 += f64::from(rank <= 1);
            self.hit5 += f64::from(rank <= 5);
            self.hit10 += 1.0;
            self.mrr += 1.0 / rank as f64;
        }
        let dcg: f64 = articles
            .iter()
            .enumerate()
            .filter(|(_, a)| q.gold.contains(a))
            .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
            .sum();
        let ideal: f64 = (0..q.gold.len().min(LIMIT))
            .map(|i| 1.0 / (i as f64 + 2.0).log2())
            .sum();
        if ideal > 0.0 {
            self.ndcg += dcg / ideal;
        }
        let mut passage1 = None;
        if let Some(answer) = &q.answer {
            self.with_answer += 1;
            let hit = r.passages.first().is_some_and(|p| {
                q.gold.contains(&p.0) && norm_text(&p.1).contains(&norm_text(answer))
            });
            self.passage1 += f64::from(hit);
            passage1 = Some(hit);
        }
        // `HELPDEX_EVAL_TRACE=1`: one line per answerable question, to diff two runs.
        if std::env::var_os("HELPDEX_EVAL_TRACE").is_some() {
            let rank = articles
                .iter()
                .position(|a| q.gold.contains(a))
                .map(|p| p + 1);
            eprintln!("TRACE rank={rank:?} passage1={passage1:?} {}", q.text);
        }
    }

    fn rate(&self, x: f64) -> f64 {
        x / self.answerable.max(1) as f64
    }

    fn metrics(&self) -> Vec<(&'static str, String)> {
        let mut lat = self.latencies.clone();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if lat.is_empty() {
                0.0
            } else {
                lat[((lat.len() - 1) as f64 * p).round() as usize] / 1000.0
            }
        };
        let mut m = vec![
            ("hit@1", format!("{:.3}", self.rate(self.hit1))),
            ("hit@5", format!("{:.3}", self.rate(self.hit5))),
            ("hit@10", format!("{:.3}", self.rate(self.hit10))),
            ("MRR@10", format!("{:.3}", self.rate(self.mrr))),
            ("nDCG@10", format!("{:.3}", self.rate(self.ndcg))),
        ];
        m.push((
            "passage@1",
            if self.with_answer > 0 {
                format!("{:.3}", self.passage1 / self.with_answer as f64)
            } else {
                "-".into()
            },
        ));
        m.push(("articles/10", format!("{:.1}", self.rate(self.distinct))));
        m.push(("p50 ms", format!("{:.2}", pct(0.5))));
        m.push(("p99 ms", format!("{:.2}", pct(0.99))));
        m
    }
}

fn config(url: &str, dir: &Path, email: &str, token: &str) -> anyhow::Result<Config> {
    let flags = SourceFlags {
        url: Some(url.into()),
        email: Some(email.into()),
        token: Some(token.into()),
        ..SourceFlags::default()
    };
    Ok(Config::resolve(
        RawConfig::default(),
        Some(dir.to_path_buf()),
        flags,
        &|_| None,
    )?)
}

/// The emulator serving a set's corpus, helpdex synced from it.
struct Synced {
    _tmp: tempfile::TempDir,
    emu: Emulator,
    engine: Arc<Engine>,
    data: PathBuf,
    sync_secs: f64,
}

async fn sync_set(set: &Dataset) -> anyhow::Result<Synced> {
    let tmp = tempfile::tempdir()?;
    let world = match &set.corpus {
        Corpus::Generated(docs) => {
            let dir = tmp.path().join("world");
            write_help_center(&dir, docs)?;
            World::load(&dir)?
        }
        Corpus::Fixtures(dir) => World::load(dir)?,
    };
    let emu = Emulator::start(world, EmulatorConfig::default(), "127.0.0.1:0".parse()?).await?;
    let data = tmp.path().join("data");
    let mut cfg = match &set.corpus {
        Corpus::Generated(_) => config(&emu.base_url(), &data, EMAIL, TOKEN)?,
        // The fixture help center's own admin credentials (fixtures/helpcenter/help_center.json).
        Corpus::Fixtures(_) => config(
            &emu.base_url(),
            &data,
            "sync@lumenpay.test",
            "demo-admin-token",
        )?,
    };
    if matches!(set.corpus, Corpus::Fixtures(_)) {
        // The fixture help center marks agent-only notes; its normalizer setting drops them.
        cfg.normalize.drop_selectors = vec![".agent-only".into()];
    }
    let engine = Arc::new(Engine::open(&data, cfg.normalize.clone())?);
    let started = Instant::now();
    let report = sync_all(engine.clone(), &cfg.sync, &SyncOptions::default()).await;
    let sync_secs = started.elapsed().as_secs_f64();
    if let Some(e) = report.sources.first().and_then(|s| s.error.clone()) {
        bail!("sync failed: {e}");
    }
    Ok(Synced {
        _tmp: tmp,
        emu,
        engine,
        data,
        sync_secs,
    })
}

fn print_table(set: &str, rows: &[(&str, &Scores)]) {
    let names: Vec<&str> = rows[0].1.metrics().iter().map(|m| m.0).collect();
    print!("{:<22}", "engine");
    for n in &names {
        print!("{n:>12}");
    }
    println!();
    for (engine, s) in rows {
        print!("{engine:<22}");
        for (_, v) in s.metrics() {
            print!("{v:>12}");
        }
        println!();
        // Machine-readable line for the README table.
        let kv: Vec<String> = s
            .metrics()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!("RESULT set={set} engine={engine} {}", kv.join(" "));
    }
}

/// Embeds every passage with the model in `HELPDEX_EMBEDDING_MODEL` and turns hybrid
/// retrieval on; `None` without a model.
fn embed_set(engine: &Engine) -> anyhow::Result<Option<(f64, bool, u64, f64)>> {
    let Some(dir) = std::env::var_os("HELPDEX_EMBEDDING_MODEL") else {
        return Ok(None);
    };
    let load = Instant::now();
    let model = helpdex_service::embeddings::load(Path::new(&dir), max_tokens(), int8())?;
    let load_ms = load.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let r = engine.embed_pending(
        model.as_ref(),
        helpdex_core::engine::EmbedPass::default(),
        &mut |_, _| true,
    )?;
    let secs = started.elapsed().as_secs_f64();
    let int8 = model.int8();
    engine.reader().set_embedder(model);
    Ok(Some((load_ms, int8, r.embedded, secs)))
}

async fn evaluate(set: &Dataset, sweep: &str) -> anyhow::Result<()> {
    let synced = sync_set(set).await?;
    let embedded = embed_set(&synced.engine)?;
    if let Some((load_ms, int8, n, secs)) = embedded {
        println!(
            "embedding: model loaded in {load_ms:.0} ms (int8 layers: {int8}); {n} passages in {secs:.1}s = {:.1} passages/s",
            n as f64 / secs.max(1e-9)
        );
        eprintln!(
            "RESULT set={} engine=embedding passages={n} seconds={secs:.1}",
            set.name
        );
    }
    let passages = stored_passages(&synced.data)?;
    let fts = Fts5::build(&passages)?;
    let plain = ArticleIndex::build(&passages)?;
    let answerable = set.questions.iter().filter(|q| !q.gold.is_empty()).count();
    println!();
    println!("== {} ==", set.name);
    println!(
        "corpus: {} passages in {} articles; questions: {answerable} answerable ({} with a verbatim answer), {} unanswerable, {} rows skipped; sync {:.2}s",
        synced.engine.reader().index_status()?.passages,
        passages
            .iter()
            .map(|p| p.article_id)
            .collect::<HashSet<_>>()
            .len(),
        set.questions.iter().filter(|q| q.answer.is_some()).count(),
        set.questions.len() - answerable,
        set.skipped,
        synced.sync_secs,
    );
    // BM25 alone: the vector side off, whether a model is loaded or not.
    let tuning = Tuning {
        vector_weight: 0.0,
        ..Tuning::default()
    };
    let dense = Tuning {
        bm25_weight: 0.0,
        vector_weight: 1.0,
        ..Tuning::default()
    };
    let hybrid = Tuning::default();
    // Warm up caches (per-audience statistics, vectors) as a long-lived service would have them.
    for q in set.questions.iter().take(20) {
        let _ = helpdex(&synced.engine, q, &tuning);
        let _ = helpdex(&synced.engine, q, &hybrid);
    }
    let (mut hd, mut f5, mut ti) = (Scores::default(), Scores::default(), Scores::default());
    let (mut de, mut hy) = (Scores::default(), Scores::default());
    for q in &set.questions {
        hd.record(q, helpdex(&synced.engine, q, &tuning));
        f5.record(q, fts.search(q));
        ti.record(q, plain.search(q));
        if embedded.is_some() {
            de.record(q, helpdex(&synced.engine, q, &dense));
            hy.record(q, helpdex(&synced.engine, q, &hybrid));
        }
    }
    let mut rows = vec![
        ("helpdex", &hd),
        ("fts5/passages", &f5),
        ("tantivy/article", &ti),
    ];
    if embedded.is_some() {
        rows.push(("helpdex dense", &de));
        rows.push(("helpdex hybrid", &hy));
    }
    print_table(set.name, &rows);
    if embedded.is_some() {
        println!(
            "hybrid \"nothing relevant\": false negatives {}/{}, false positives {}/{}",
            hy.false_negatives, hy.answerable, hy.false_positives, hy.unanswerable
        );
    }
    println!(
        "helpdex \"nothing relevant\" (relevance >= {}): false negatives {}/{} answerable ({:.1}%), false positives {}/{} unanswerable ({:.1}%)",
        tuning.found_relevance,
        hd.false_negatives,
        hd.answerable,
        100.0 * hd.false_negatives as f64 / hd.answerable.max(1) as f64,
        hd.false_positives,
        hd.unanswerable,
        100.0 * hd.false_positives as f64 / hd.unanswerable.max(1) as f64,
    );
    if let Some(a) = auroc(&hd.pos_relevance, &hd.neg_relevance) {
        println!("separation of answerable from unanswerable by relevance: AUROC {a:.3}");
    }
    eprintln!(
        "RESULT set={} engine=helpdex-found fn={} answerable={} fp={} unanswerable={}",
        set.name, hd.false_negatives, hd.answerable, hd.false_positives, hd.unanswerable
    );
    if hd.errors + f5.errors + ti.errors > 0 {
        println!(
            "errors (scored as misses): helpdex {}, fts5 {}, tantivy {}",
            hd.errors, f5.errors, ti.errors
        );
    }
    match sweep {
        "1" => run_sweep(set, &synced.engine, true),
        "found" => run_sweep(set, &synced.engine, false),
        "vector" => sweep_vector(set, &synced.engine),
        "candidates" => sweep_candidates(set, &synced.engine),
        "fields" => sweep_fields(set, &synced.engine),
        _ => {}
    }
    synced.emu.shutdown().await;
    Ok(())
}

/// Every question of `set` answered with `t`.
fn scores_with(set: &Dataset, engine: &Engine, t: &Tuning) -> Scores {
    let mut s = Scores::default();
    for q in &set.questions {
        s.record(q, helpdex(engine, q, t));
    }
    s
}

/// The grid the defaults were chosen on: MRR@10, hit@1 and passage@1 for each setting, and
/// the found rule's error rates at several thresholds.
fn run_sweep(set: &Dataset, engine: &Engine, ranking: bool) {
    if ranking {
        sweep_ranking(set, engine);
    }
    sweep_found(set, engine);
}

fn sweep_ranking(set: &Dataset, engine: &Engine) {
    println!("-- sweep (title, heading, pairs, per_article): hit@1 MRR@10 hit@10 passage@1");
    for title in [0.5, 1.0, 2.0] {
        for heading in [0.0, 0.5, 1.0, 1.5] {
            for pairs in [0.0, 0.25, 0.5, 1.0] {
                for per_article in [1, 2, 3] {
                    let t = Tuning {
                        title,
                        heading,
                        pairs,
                        per_article,
                        ..Tuning::default()
                    };
                    let s = scores_with(set, engine, &t);
                    let m = s.metrics();
                    println!(
                        "   {title:>4} {heading:>4} {pairs:>5} {per_article}   {} {} {} {}",
                        m[0].1, m[3].1, m[2].1, m[5].1
                    );
                }
            }
        }
    }
}

/// The fusion weight of the standardised cosine against normalised BM25.
fn sweep_vector(set: &Dataset, engine: &Engine) {
    println!("-- sweep vector_weight: hit@1 MRR@10 hit@10 passage@1");
    for w in [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0] {
        let t = Tuning {
            vector_weight: w,
            ..Tuning::default()
        };
        let s = scores_with(set, engine, &t);
        let m = s.metrics();
        println!("   {w:>5}   {} {} {} {}", m[0].1, m[3].1, m[2].1, m[5].1);
        eprintln!(
            "RESULT set={} sweep=vector w={w} hit1={} mrr={} hit10={} p1={}",
            set.name, m[0].1, m[3].1, m[2].1, m[5].1
        );
    }
}

/// BM25 candidates gathered per place before grouping (fewer is faster at scale).
fn sweep_candidates(set: &Dataset, engine: &Engine) {
    println!("-- sweep candidates: hit@1 MRR@10 hit@10 passage@1");
    for (c, extra) in [
        (1, 16),
        (2, 16),
        (3, 16),
        (4, 16),
        (6, 16),
        (1, 0),
        (1, 4),
        (1, 8),
    ] {
        let t = Tuning {
            candidates: c,
            extra_candidates: extra,
            ..Tuning::default()
        };
        let s = scores_with(set, engine, &t);
        let m = s.metrics();
        println!(
            "   {c:>2} +{extra:>2}   {} {} {} {}",
            m[0].1, m[3].1, m[2].1, m[5].1
        );
    }
}

/// Which fields a question's words are looked up in (each field is one more posting list per
/// word, the main cost of a search at scale).
fn sweep_fields(set: &Dataset, engine: &Engine) {
    println!("-- sweep (title, heading): hit@1 MRR@10 hit@10 passage@1");
    for (title, heading) in [(1.0, 1.0), (1.0, 0.0), (1.5, 0.0), (0.0, 1.0), (0.5, 0.5)] {
        let t = Tuning {
            title,
            heading,
            ..Tuning::default()
        };
        let s = scores_with(set, engine, &t);
        let m = s.metrics();
        println!(
            "   {title:>4} {heading:>4}   {} {} {} {}",
            m[0].1, m[3].1, m[2].1, m[5].1
        );
    }
}

fn sweep_found(set: &Dataset, engine: &Engine) {
    println!("-- found threshold: false negatives / false positives");
    for c in [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6] {
        let t = Tuning {
            found_relevance: c,
            ..Tuning::default()
        };
        let s = scores_with(set, engine, &t);
        println!(
            "   {c:.2}   FN {}/{}  FP {}/{}",
            s.false_negatives, s.answerable, s.false_positives, s.unanswerable
        );
    }
}

type Loader = fn(&Path, &Path) -> anyhow::Result<Dataset>;

fn main() -> anyhow::Result<()> {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name || w == "all");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("HELPDEX_EVAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/eval"));
    let sweep = std::env::var("HELPDEX_EVAL_SWEEP").unwrap_or_default();
    let rt = tokio::runtime::Runtime::new()?;
    println!(
        "retrieval quality; every engine answers from the same synced content, as an anonymous customer (signed in where a question says so), no locale given"
    );
    let sets: [(&str, Loader); 3] = [
        ("wix", load_wix),
        ("techqa", load_techqa),
        ("multi", load_multi),
    ];
    for (name, load) in sets {
        if !want(name) {
            continue;
        }
        match load(&dir, &repo) {
            Ok(set) => rt.block_on(evaluate(&set, &sweep))?,
            Err(e) => println!("\n{name}: skipped ({e:#})"),
        }
    }
    Ok(())
}
