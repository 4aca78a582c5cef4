//! Cited search over the live index.
//!
//! A question is analysed in each language it is searched in ([`plan`]): content words after
//! stop words and stemming query the title, heading and text fields of that language, and its
//! adjacent word pairs query the pair field. Visibility is part of the tantivy query itself (a
//! required clause over access tokens), the BM25 statistics count only what the caller may read
//! ([`stats`]), and every hit is re-checked against the caller's access before it leaves
//! (defense in depth). Results are grouped by article (at most [`Tuning::per_article`] passages
//! of one article in the ranked list; its further matching passages are listed under its best
//! hit), and [`relevance`] decides whether anything found answers the question at all.

pub mod analysed;
pub mod filter;
pub mod plan;
pub mod relevance;
pub mod stats;

use crate::error::ErrorCode;
use crate::index::locale_key;
use crate::index::{Fields, Generation};
use crate::model::{Access, Audience, Visibility};
use crate::query::{self as contract, InvalidQuery};
use crate::reader::{ReadError, Reader};
use filter::{DocFilter, FilterCache, FilterKey, FilteredTopK};
use helpdex_lang::schema::{LangFields, question_pairs, question_terms};
use helpdex_lang::{Family, Variant};
use serde::{Deserialize, Serialize};
use stats::AudienceStats;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tantivy::collector::Count;
use tantivy::columnar::Column;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};
use thiserror::Error;

/// Why a query got no answer; each says what to do.
#[derive(Debug, Error)]
pub enum QueryError {
    /// The request breaks the query contract.
    #[error(transparent)]
    Invalid(#[from] InvalidQuery),
    /// The locale asked for holds nothing this caller may read.
    #[error("locale: no content in '{locale}'; known locales: {}", known.join(", "))]
    UnknownLocale {
        /// The locale asked for.
        locale: String,
        /// The locales this caller may search.
        known: Vec<String>,
    },
    /// The data directory cannot answer (not synced, missing, unreadable).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// tantivy failed.
    #[error("search failed: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The embedding model failed on the question.
    #[error(transparent)]
    Embed(#[from] crate::vectors::EmbedFailed),
}

impl QueryError {
    /// The kind of this error, for the wire.
    pub fn code(&self) -> ErrorCode {
        match self {
            QueryError::Invalid(_) | QueryError::UnknownLocale { .. } => ErrorCode::BadRequest,
            QueryError::Read(e) => e.code(),
            QueryError::Index(_) | QueryError::Embed(_) => ErrorCode::Internal,
        }
    }
}

/// Default [`Tuning::vector_weight`], chosen on the project's sets (README, hybrid retrieval).
pub const VECTOR_WEIGHT: f32 = 0.2;

/// How a hit was found.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Among the best BM25 (word) matches only.
    #[default]
    Bm25,
    /// Among the nearest passage vectors only.
    Vector,
    /// Both.
    Both,
}

/// Most further passages listed under one hit.
const MAX_ALSO: usize = 3;

/// Longest snippet, in bytes of the passage text (tantivy's `max_num_chars`).
const SNIPPET_CHARS: usize = 240;

/// Most candidates gathered for one list.
const MAX_CANDIDATES: usize = 256;

/// Least BM25 candidates per place when the vector side is fused in.
const HYBRID_CANDIDATES: usize = 4;

/// Least BM25 candidates beyond those when the vector side is fused in.
const HYBRID_EXTRA_CANDIDATES: usize = 16;

/// A place in the list: its passage, and the article's further passages listed under it.
type Place = (Candidate, Vec<Candidate>);

/// The ranking knobs, chosen on the project's own question sets (figures in the README).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Weight of a title match.
    pub title: f32,
    /// Weight of a match in the passage's heading field. Each field is one more posting list
    /// per question word (dropping this one made a search at 100k articles 18% faster, and
    /// ranked the shared sets the same, HELPDEX_EVAL_SWEEP=fields), but a heading that names
    /// the answer ("How long refunds take") is what lets its passage win over a passage that
    /// merely shares words: kept.
    pub heading: f32,
    /// Weight of a text match.
    pub text: f32,
    /// Weight of a matching adjacent word pair.
    pub pairs: f32,
    /// Most passages of one article in the ranked list.
    pub per_article: usize,
    /// BM25 candidates gathered per place in the list (before grouping by article; plus
    /// `extra_candidates`).
    /// 1 to 6 rank identically on the project's sets (HELPDEX_EVAL_SWEEP=candidates); fewer
    /// is faster at scale, and a list that grouping leaves short is gathered again, wider.
    pub candidates: usize,
    /// BM25 candidates gathered beyond `candidates` per place. 0 to 16 rank identically on
    /// the project's sets, and each one lowers the top-k score that lets block-max WAND skip
    /// (16 → 0: a search at 100k articles 7–13% faster). With 0, a passage is still never
    /// dropped by grouping: when the cap per article displaces one from the top `limit`, the
    /// list comes up short, the search gathers again wider, and it is listed under its
    /// article. Passages further down are not gathered to fill those lists.
    pub extra_candidates: usize,
    /// Relevance at or above which the best article answers the question ([`relevance`]).
    pub found_relevance: f32,
    /// Weight of the BM25 score (normalised by the best one) in the fused score; 0 ranks by
    /// vectors alone (the bench's "dense").
    pub bm25_weight: f32,
    /// Weight of the standardised cosine in the fused score when the reader has an embedding
    /// model; 0 turns the vector side off.
    pub vector_weight: f32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            title: 1.0,
            heading: 1.0,
            text: 1.0,
            pairs: 0.5,
            per_article: 2,
            candidates: 1,
            extra_candidates: 0,
            found_relevance: relevance::FOUND_RELEVANCE,
            bm25_weight: 1.0,
            vector_weight: VECTOR_WEIGHT,
        }
    }
}

/// Another matching passage of an article, listed under the article's best hit instead of
/// taking a place in the ranked list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlsoPassage {
    /// Stable passage id.
    pub passage_id: String,
    /// Heading path joined with " › ".
    pub heading: String,
    /// Citation URL.
    pub url: String,
    /// Score.
    pub score: f32,
}

/// One cited passage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Hit {
    /// Stable id of the passage (`source:article_id:locale:hash16`): cite and deduplicate by it.
    pub passage_id: String,
    /// Zendesk article id.
    pub article_id: u64,
    /// Help center (source) name.
    pub source: String,
    /// Locale.
    pub locale: String,
    /// True when the question's language was detected and this passage is not in it: the
    /// article was found only in its source locale (no translation in that language matched).
    #[serde(default)]
    pub locale_fallback: bool,
    /// Article title.
    pub title: String,
    /// Heading path joined with " › " (empty for the intro).
    pub heading: String,
    /// Citation: the article's html_url, plus `#anchor` when the passage has a real one.
    pub url: String,
    /// The passage's normalized text (it starts with its heading).
    pub text: String,
    /// Best fragment, matched terms wrapped in `**`.
    pub snippet: String,
    /// Byte ranges of matches within `snippet_plain`.
    pub highlights: Vec<[usize; 2]>,
    /// The fragment without highlighting marks.
    pub snippet_plain: String,
    /// `public`, `signed_in`, `restricted` or `internal`.
    pub visibility: Visibility,
    /// Ranking score: BM25 over what the caller may read; with hybrid retrieval, the BM25
    /// score normalised by the best one plus a weight times the standardised cosine.
    pub score: f32,
    /// How the passage was found: `bm25`, `vector` or `both`.
    #[serde(default)]
    pub matched_by: MatchedBy,
    /// blake3 of the translation's normalized content.
    pub content_hash: String,
    /// When Zendesk last changed this translation.
    pub updated_at: String,
    /// The translation is flagged outdated against its source.
    pub outdated: bool,
    /// Section name, when known.
    pub section: Option<String>,
    /// Brand (help center) name, when known.
    #[serde(default)]
    pub brand: Option<String>,
    /// Further matching passages of the same article, beyond the per-article cap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<AlsoPassage>,
}

/// Search results.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchResponse {
    /// The query as given.
    pub query: String,
    /// Audience it was answered for.
    pub audience: Audience,
    /// False when nothing found answers the question ([`relevance`]): the hits are the
    /// closest passages, not an answer.
    pub found: bool,
    /// How much of the question the best article covers (0–1, [`relevance::relevance`]):
    /// `found` is this against the threshold.
    pub relevance: f32,
    /// Hits, best first.
    pub hits: Vec<Hit>,
}

/// One numbered source of a context.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Citation {
    /// The number used in `context` (`[1]`).
    pub n: usize,
    /// Stable passage id.
    pub passage_id: String,
    /// Article title.
    pub title: String,
    /// Heading path.
    pub heading: String,
    /// Citation URL.
    pub url: String,
    /// Article id.
    pub article_id: u64,
    /// Locale.
    pub locale: String,
    /// Visibility.
    pub visibility: Visibility,
}

/// Prompt-ready grounding text with numbered citations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextResponse {
    /// The query.
    pub query: String,
    /// Audience.
    pub audience: Audience,
    /// Passages, each prefixed with its citation number.
    pub context: String,
    /// Sources, in order of `n`.
    pub citations: Vec<Citation>,
    /// The hits the context was assembled from.
    pub hits: Vec<Hit>,
    /// False when nothing relevant was found: no citations are given and the runtime should
    /// say the help center does not cover the question rather than guess.
    pub found: bool,
}

/// Runs a search on the reader's live generation.
pub fn search(reader: &Reader, q: &contract::Query) -> Result<SearchResponse, QueryError> {
    search_with(reader, q, &Tuning::default())
}

/// [`search`] with explicit ranking knobs (the evaluation bench compares settings).
pub fn search_with(
    reader: &Reader,
    q: &contract::Query,
    tuning: &Tuning,
) -> Result<SearchResponse, QueryError> {
    reader.ensure_ready()?;
    let g = reader.generation()?;
    let searcher = g.reader.searcher();
    let visible = reader
        .filters()
        .get(&g, &searcher, &FilterKey::access(&q.access))?;
    let stats = AudienceStats::new(&searcher, q.access.audience, visible.clone());
    let locales = indexed_locales(&g, &searcher)?;
    let plan = plan::plan(&q.text, q.locale.as_deref(), &locales);
    let resp = Ranker {
        reader,
        g: &g,
        searcher: &searcher,
        stats: &stats,
        filters: reader.filters(),
        visible,
        locales: &locales,
        q,
        tuning,
        question_vector: std::cell::OnceCell::new(),
    }
    .run(&plan)?;
    if resp.hits.is_empty()
        && let Some(locale) = &q.locale
    {
        let known = known_locales(&g, &searcher, &locales, &q.access)?;
        if !known.contains(locale) {
            return Err(QueryError::UnknownLocale {
                locale: locale.clone(),
                known,
            });
        }
    }
    Ok(resp)
}

/// Every locale in the index.
fn indexed_locales(g: &Generation, searcher: &Searcher) -> Result<Vec<String>, QueryError> {
    let mut all = std::collections::BTreeSet::new();
    for seg in searcher.segment_readers() {
        let inverted = seg.inverted_index(g.fields.locale)?;
        let mut terms = inverted
            .terms()
            .stream()
            .map_err(|e| QueryError::Index(e.into()))?;
        while terms.advance() {
            if let Ok(l) = std::str::from_utf8(terms.key()) {
                all.insert(l.to_string());
            }
        }
    }
    Ok(all.into_iter().collect())
}

/// The locales holding something `access` may read (the unknown-locale error lists them; it
/// never names a locale only hidden content is in).
fn known_locales(
    g: &Generation,
    searcher: &Searcher,
    locales: &[String],
    access: &Access,
) -> Result<Vec<String>, QueryError> {
    let f = &g.fields;
    let mut known = Vec::new();
    for l in locales {
        let q = BooleanQuery::new(vec![
            (Occur::Must, term(f.locale, l)),
            (Occur::Must, access_filter(f, access)),
        ]);
        if searcher.search(&q, &Count)? > 0 {
            known.push(l.clone());
        }
    }
    Ok(known)
}

fn term(field: tantivy::schema::Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

fn access_filter(f: &Fields, access: &Access) -> Box<dyn Query> {
    let allowed = access
        .terms()
        .into_iter()
        .map(|t| Term::from_field_text(f.access, &t));
    Box::new(ConstScoreQuery::new(
        Box::new(TermSetQuery::new(allowed)),
        0.0,
    ))
}

/// The question in one family's fields, as flat weighted term clauses: each content word over
/// title, heading and text, each adjacent word pair over the pair field. A flat disjunction of
/// terms is what lets tantivy prune with block-max WAND. Empty when the question has no terms in
/// that language.
fn question_clauses(
    fields: &LangFields,
    question: &str,
    t: &Tuning,
    out: &mut Vec<(Occur, Box<dyn Query>)>,
) -> bool {
    let mut weighted = |field, text: &str, w: f32| {
        let q = TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::WithFreqs,
        );
        out.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), w))));
    };
    let words = question_terms(fields.family, question);
    if words.is_empty() {
        return false;
    }
    for word in &words {
        for (field, w) in [
            (fields.title, t.title),
            (fields.heading, t.heading),
            (fields.text, t.text),
        ] {
            if w > 0.0 {
                weighted(field, word, w);
            }
        }
    }
    if t.pairs > 0.0 {
        for p in question_pairs(fields.family, question) {
            weighted(fields.pairs, &p, t.pairs);
        }
    }
    true
}

/// One ranked passage before grouping: what the fast fields say of it. Its stored document
/// is only read if it is shown.
struct Candidate {
    score: f32,
    addr: DocAddress,
    article: u64,
    fallback: bool,
    matched: MatchedBy,
}

struct Ranker<'a> {
    reader: &'a Reader,
    g: &'a Generation,
    searcher: &'a Searcher,
    stats: &'a AudienceStats<'a>,
    filters: &'a FilterCache,
    /// Everything the caller may read.
    visible: Arc<DocFilter>,
    /// Every locale in the index.
    locales: &'a [String],
    q: &'a contract::Query,
    tuning: &'a Tuning,
    /// The question's embedding, once computed.
    question_vector: std::cell::OnceCell<Vec<f32>>,
}

impl Ranker<'_> {
    /// The documents a branch may answer from: what the caller may read, in the branch's
    /// locales, and only source-locale translations for a fallback. A single branch over every
    /// locale is just what the caller may read.
    fn branch_filter(&self, b: &plan::Branch, single: bool) -> tantivy::Result<Arc<DocFilter>> {
        if single && !b.fallback && self.locales.iter().all(|l| b.locales.contains(l)) {
            return Ok(self.visible.clone());
        }
        let mut key = FilterKey::access(&self.q.access);
        let mut locales = b.locales.clone();
        locales.sort();
        key.locales = Some(locales);
        key.source_only = b.fallback;
        self.filters.get(self.g, self.searcher, &key)
    }

    fn run(&self, plan: &plan::Plan) -> Result<SearchResponse, QueryError> {
        let f = &self.g.fields;
        let mut resp = SearchResponse {
            query: self.q.text.clone(),
            audience: self.q.access.audience,
            found: false,
            relevance: 0.0,
            hits: vec![],
        };
        // One flat disjunction over every branch's language fields (a document only has the
        // fields of its own language, so only its own branch's terms can match it), restricted
        // to each branch's documents by the collector.
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut keep = Vec::new();
        let single = plan.branches.len() == 1;
        let model = self
            .reader
            .embedder()
            .filter(|_| self.tuning.vector_weight > 0.0);
        for b in &plan.branches {
            let words = self.tuning.bm25_weight > 0.0
                && question_clauses(
                    &f.lang.fields(b.family),
                    &self.q.text,
                    self.tuning,
                    &mut clauses,
                );
            // The vector side reads every branch's documents, worded or not.
            if words || model.is_some() {
                keep.push(self.branch_filter(b, single)?);
            }
        }
        if keep.is_empty() {
            return Ok(resp);
        }
        let keep = filter::Keep::new(keep);
        let query = (!clauses.is_empty()).then(|| BooleanQuery::new(clauses));
        // Candidates for the list: `candidates` per place, plus some. When one article's
        // passages crowd them so that grouping cannot fill the list, gather again, wider.
        // Fused ranking lifts BM25 candidates far down the list (4 per place plus 16: with 1
        // per place, WixQA's hybrid hit@10 fell from .988 to .975); next to embedding the
        // question they cost nothing.
        let (per_place, extra) = match model {
            Some(_) => (
                self.tuning.candidates.max(HYBRID_CANDIDATES),
                self.tuning.extra_candidates.max(HYBRID_EXTRA_CANDIDATES),
            ),
            None => (self.tuning.candidates, self.tuning.extra_candidates),
        };
        let mut k = (self.q.limit * per_place + extra).min(MAX_CANDIDATES);
        let places = loop {
            let (places, exhausted) =
                self.places(query.as_ref(), model.as_ref(), plan, &keep, k)?;
            if places.len() >= self.q.limit || exhausted || k >= MAX_CANDIDATES {
                break places;
            }
            k = (k * 4).min(MAX_CANDIDATES);
        };
        let best_article = places.first().map(|(c, _)| c.article);
        let mut best_texts = Vec::new();
        let mut snippets = Snippets::new(self);
        for (c, also) in places {
            let doc: TantivyDocument = self.searcher.doc(c.addr)?;
            // Defense in depth: the stored access tokens must grant this caller.
            if !self.q.access.allows(&all_str(&doc, f.access)) {
                tracing::error!(
                    article_id = first_u64(&doc, f.article_id),
                    "index returned a hit outside the caller's access; dropped"
                );
                continue;
            }
            let mut hit = snippets.hit(&doc, c.score, c.fallback)?;
            hit.matched_by = c.matched;
            if Some(c.article) == best_article {
                best_texts.extend([hit.title.clone(), hit.heading.clone(), hit.text.clone()]);
            }
            for a in also {
                let d: TantivyDocument = self.searcher.doc(a.addr)?;
                if !self.q.access.allows(&all_str(&d, f.access)) {
                    continue;
                }
                if Some(a.article) == best_article {
                    best_texts.extend([first_str(&d, f.heading), first_str(&d, f.text)]);
                }
                hit.also.push(AlsoPassage {
                    passage_id: first_str(&d, f.passage_id),
                    heading: first_str(&d, f.heading),
                    url: first_str(&d, f.url),
                    score: a.score,
                });
            }
            resp.hits.push(hit);
        }
        resp.relevance = match resp.hits.first() {
            Some(top) => self.covers(&top.locale, &best_texts),
            None => 0.0,
        };
        resp.found = !resp.hits.is_empty() && resp.relevance >= self.tuning.found_relevance;
        Ok(resp)
    }

    /// The best `k` candidates (BM25, fused with the vector side when there is a model),
    /// grouped into the list's places: at most `per_article` places per article, the rest
    /// listed under its best hit. Also says whether the candidates were all there are (fewer
    /// than `k` matched), so that a wider gathering would find nothing more.
    fn places(
        &self,
        query: Option<&BooleanQuery>,
        model: Option<&Arc<dyn crate::vectors::TextEmbedder>>,
        plan: &plan::Plan,
        keep: &filter::Keep,
        k: usize,
    ) -> Result<(Vec<Place>, bool), QueryError> {
        let top: Vec<(f32, DocAddress)> = match query {
            None => Vec::new(),
            Some(query) => self.searcher.search_with_statistics_provider(
                query,
                &FilteredTopK::new(k, keep.clone()),
                self.stats,
            )?,
        };
        let mut exhausted = top.len() < k;
        let top = match model {
            Some(model) => {
                let fused = self.fuse(model.as_ref(), top, keep, k)?;
                exhausted &= fused.len() < k;
                fused
            }
            None => top
                .into_iter()
                .map(|(s, a)| (s, a, MatchedBy::Bm25))
                .collect(),
        };
        let preferred: HashSet<u64> = plan.preferred.iter().map(|l| locale_key(l)).collect();
        let mut columns: HashMap<u32, (Column<u64>, Column<u64>)> = HashMap::new();
        let mut candidates = Vec::with_capacity(top.len());
        for (score, addr, matched) in top {
            let (articles, locales) = match columns.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let fast = self.searcher.segment_reader(addr.segment_ord).fast_fields();
                    e.insert((fast.u64("article_key")?, fast.u64("locale_key")?))
                }
            };
            let article = articles.first(addr.doc_id).unwrap_or_default();
            let locale = locales.first(addr.doc_id).unwrap_or_default();
            candidates.push(Candidate {
                score,
                addr,
                article,
                fallback: !preferred.is_empty() && !preferred.contains(&locale),
                matched,
            });
        }
        // An article found in the question's language is answered in it: its source-locale
        // passages give way. One found only in its source locale keeps them (marked).
        let in_language: HashSet<u64> = candidates
            .iter()
            .filter(|c| !c.fallback)
            .map(|c| c.article)
            .collect();
        candidates.retain(|c| !c.fallback || !in_language.contains(&c.article));

        // Group: at most `per_article` places per article; the rest listed under its best hit.
        let mut places: Vec<Place> = Vec::new();
        let mut by_article: HashMap<u64, (usize, usize)> = HashMap::new();
        for c in candidates {
            match by_article.get_mut(&c.article) {
                Some((first, n)) if *n >= self.tuning.per_article => {
                    if places[*first].1.len() < MAX_ALSO {
                        places[*first].1.push(c);
                    }
                }
                Some((_, n)) => {
                    if places.len() < self.q.limit {
                        *n += 1;
                        places.push((c, Vec::new()));
                    }
                }
                None => {
                    if places.len() < self.q.limit {
                        by_article.insert(c.article, (places.len(), 1));
                        places.push((c, Vec::new()));
                    }
                }
            }
        }
        Ok((places, exhausted))
    }

    /// Hybrid ranking: the BM25 candidates and the nearest passage vectors (both among `keep`,
    /// the caller's documents), each scored `bm25_weight × BM25 / best BM25 + vector_weight ×
    /// standardised cosine`. The cosine is standardised over every passage the caller may read
    /// in these locales, so the weight means the same on any help center. A passage without a
    /// vector yet (just synced, model still embedding) scores by BM25 alone. No vectors
    /// stored for the model: BM25 as is.
    fn fuse(
        &self,
        model: &dyn crate::vectors::TextEmbedder,
        bm25: Vec<(f32, DocAddress)>,
        keep: &filter::Keep,
        k: usize,
    ) -> Result<Vec<(f32, DocAddress, MatchedBy)>, QueryError> {
        let plain = |bm25: Vec<(f32, DocAddress)>| {
            bm25.into_iter()
                .map(|(s, a)| (s, a, MatchedBy::Bm25))
                .collect()
        };
        let cache = crate::vectors::refreshed(self.reader, model.model_id())?;
        if cache.is_empty(model.model_id()) {
            return Ok(plain(bm25));
        }
        // Embedded once per search, though a crowded list gathers candidates twice.
        let query = match self.question_vector.get() {
            Some(v) => v,
            None => {
                let v = model.embed_query(&self.q.text)?;
                self.question_vector.get_or_init(|| v)
            }
        };
        let Some(dense) = cache.scan(self.searcher, keep, query, k) else {
            return Ok(plain(bm25));
        };
        let best = bm25.first().map_or(1.0, |b| b.0).max(f32::EPSILON);
        let mut all: HashMap<DocAddress, (f32, MatchedBy)> = HashMap::new();
        for (s, a) in bm25 {
            all.insert(a, (s / best, MatchedBy::Bm25));
        }
        for (_, a) in &dense.top {
            all.entry(*a)
                .and_modify(|e| e.1 = MatchedBy::Both)
                .or_insert((0.0, MatchedBy::Vector));
        }
        let t = self.tuning;
        let all: Vec<(DocAddress, (f32, MatchedBy))> = all.into_iter().collect();
        let addrs: Vec<DocAddress> = all.iter().map(|(a, _)| *a).collect();
        let zs = dense.z(cache, &addrs);
        let mut out: Vec<(f32, DocAddress, MatchedBy)> = all
            .into_iter()
            .zip(zs)
            .map(|((a, (b, m)), z)| (t.bm25_weight * b + t.vector_weight * z.unwrap_or(0.0), a, m))
            .collect();
        out.sort_by(|x, y| {
            y.0.total_cmp(&x.0)
                .then_with(|| x.1.segment_ord.cmp(&y.1.segment_ord))
                .then_with(|| x.1.doc_id.cmp(&y.1.doc_id))
        });
        Ok(out)
    }

    /// [`relevance::relevance`] of the question to the best article's matching passages (their
    /// titles, headings and texts), in the article's language.
    fn covers(&self, locale: &str, texts: &[String]) -> f32 {
        let family = helpdex_lang::family_for_locale(locale);
        let fields = self.g.fields.lang.fields(family);
        let weigh = |terms: Vec<String>, field| -> Vec<(String, f32)> {
            terms
                .into_iter()
                .map(|t| {
                    let idf = self.stats.idf(&Term::from_field_text(field, &t));
                    (t, idf)
                })
                .collect()
        };
        let words = weigh(question_terms(family, &self.q.text), fields.text);
        let pairs = weigh(question_pairs(family, &self.q.text), fields.pairs);
        // Each distinct text once: the title comes with every passage, and a heading the text
        // starts with (its own line) adds no word and no pair the text lacks.
        let mut seen = HashSet::new();
        let texts: Vec<&str> = texts
            .iter()
            .map(String::as_str)
            .filter(|t| {
                !t.is_empty()
                    && !texts.iter().any(|o| {
                        o.len() > t.len() && o.starts_with(t) && o.as_bytes()[t.len()] == b'\n'
                    })
                    && seen.insert(*t)
            })
            .collect();
        // Which of the question's terms (words, then pairs) occur in any of the texts, from
        // the texts' remembered analyses.
        let found = |terms: &[(String, f32)], variant| -> HashSet<String> {
            let analyses: Vec<_> = texts
                .iter()
                .map(|t| analysed::analysed(family, variant, t))
                .collect();
            terms
                .iter()
                .filter(|(t, _)| analyses.iter().any(|a| a.contains(t)))
                .map(|(t, _)| t.clone())
                .collect()
        };
        relevance::relevance(
            &words,
            &found(&words, Variant::Index),
            &pairs,
            &found(&pairs, Variant::Pairs),
        )
    }
}

/// The question's snippet terms per language, weighted by the caller's statistics.
struct Snippets<'a> {
    ranker: &'a Ranker<'a>,
    by_family: HashMap<Family, BTreeMap<String, f32>>,
}

impl<'a> Snippets<'a> {
    fn new(ranker: &'a Ranker<'a>) -> Self {
        Snippets {
            ranker,
            by_family: HashMap::new(),
        }
    }

    fn terms(&mut self, family: Family) -> &BTreeMap<String, f32> {
        let r = self.ranker;
        self.by_family.entry(family).or_insert_with(|| {
            let field = r.g.fields.lang.fields(family).text;
            // Content words only (no stop words highlighted), weighted by their idf among
            // what the caller may read.
            question_terms(family, &r.q.text)
                .into_iter()
                .map(|t| {
                    let w = r.stats.idf(&Term::from_field_text(field, &t));
                    (t, w)
                })
                .collect()
        })
    }

    fn hit(
        &mut self,
        doc: &TantivyDocument,
        score: f32,
        fallback: bool,
    ) -> Result<Hit, QueryError> {
        let f = &self.ranker.g.fields;
        let family = Family::from_code(&first_str(doc, f.family)).unwrap_or(Family::Plain);
        let text = first_str(doc, f.text);
        let analysis = analysed::analysed(family, Variant::Index, &text);
        let snip = analysed::snippet(&analysis, self.terms(family), SNIPPET_CHARS);
        let mut plain = text[snip.fragment].to_string();
        let mut ranges: Vec<[usize; 2]> =
            snip.highlighted.iter().map(|r| [r.start, r.end]).collect();
        if plain.is_empty() {
            plain = text.chars().take(240).collect();
            ranges.clear();
        }
        let mut marked = String::with_capacity(plain.len() + 8 * ranges.len());
        let mut at = 0;
        for [s, e] in &ranges {
            if *s < at
                || *e > plain.len()
                || !plain.is_char_boundary(*s)
                || !plain.is_char_boundary(*e)
            {
                continue;
            }
            marked.push_str(&plain[at..*s]);
            marked.push_str("**");
            marked.push_str(&plain[*s..*e]);
            marked.push_str("**");
            at = *e;
        }
        marked.push_str(&plain[at..]);
        let section = first_str(doc, f.section);
        let brand = first_str(doc, f.brand);
        Ok(Hit {
            passage_id: first_str(doc, f.passage_id),
            article_id: first_u64(doc, f.article_id),
            source: first_str(doc, f.source),
            locale: first_str(doc, f.locale),
            locale_fallback: fallback,
            title: first_str(doc, f.title),
            heading: first_str(doc, f.heading),
            url: first_str(doc, f.url),
            text,
            snippet: marked,
            highlights: ranges,
            snippet_plain: plain,
            visibility: Visibility::parse(&first_str(doc, f.visibility))
                .unwrap_or(Visibility::Internal),
            score,
            matched_by: MatchedBy::Bm25,
            content_hash: first_str(doc, f.content_hash),
            updated_at: first_str(doc, f.updated_at),
            outdated: first_u64(doc, f.outdated) == 1,
            section: (!section.is_empty()).then_some(section),
            brand: (!brand.is_empty()).then_some(brand),
            also: Vec::new(),
        })
    }
}

fn first_str(doc: &TantivyDocument, field: tantivy::schema::Field) -> String {
    doc.get_first(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn first_u64(doc: &TantivyDocument, field: tantivy::schema::Field) -> u64 {
    doc.get_first(field)
        .and_then(|v| v.as_u64())
        .unwrap_or_default()
}

fn all_str(doc: &TantivyDocument, field: tantivy::schema::Field) -> Vec<String> {
    doc.get_all(field)
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Assembles a grounding context from the best passages, within the budget (in characters).
/// Nothing relevant found: no passages and no citations.
pub fn context(reader: &Reader, req: &contract::Query) -> Result<ContextResponse, QueryError> {
    let resp = search(reader, req)?;
    let mut out = String::new();
    let mut citations: Vec<Citation> = Vec::new();
    let mut used = Vec::new();
    let mut used_chars = 0;
    let hits = if resp.found { resp.hits } else { Vec::new() };
    for h in &hits {
        // The passage text starts with its own heading: the header names the title and the
        // headings above it.
        let parents: Vec<&str> = h.heading.split(" › ").filter(|s| !s.is_empty()).collect();
        let above = parents
            .len()
            .checked_sub(1)
            .map(|n| parents[..n].join(" › "))
            .unwrap_or_default();
        let block = format!(
            "[{}] {}{}\n{}\n\n",
            citations.len() + 1,
            h.title,
            if above.is_empty() {
                String::new()
            } else {
                format!(" › {above}")
            },
            h.text
        );
        let block_chars = block.chars().count();
        if used_chars + block_chars > req.max_chars && !citations.is_empty() {
            break;
        }
        let block: String = block.chars().take(req.max_chars).collect();
        used_chars += block_chars.min(req.max_chars);
        out.push_str(&block);
        citations.push(Citation {
            n: citations.len() + 1,
            passage_id: h.passage_id.clone(),
            title: h.title.clone(),
            heading: h.heading.clone(),
            url: h.url.clone(),
            article_id: h.article_id,
            locale: h.locale.clone(),
            visibility: h.visibility,
        });
        used.push(h.clone());
    }
    Ok(ContextResponse {
        query: resp.query,
        audience: resp.audience,
        context: out.trim_end().to_string(),
        found: !citations.is_empty(),
        citations,
        hits: used,
    })
}
