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

pub mod plan;
pub mod relevance;
pub mod stats;

use crate::error::ErrorCode;
use crate::index::{Fields, Generation};
use crate::model::{Access, Audience, Visibility};
use crate::query::{self as contract, InvalidQuery};
use crate::reader::{ReadError, Reader};
use helpdex_lang::schema::{LangFields, question_pairs, question_terms};
use helpdex_lang::{Family, Variant, analyzer};
use serde::{Deserialize, Serialize};
use stats::AudienceStats;
use std::collections::{BTreeMap, HashMap, HashSet};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
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
}

impl QueryError {
    /// The kind of this error, for the wire.
    pub fn code(&self) -> ErrorCode {
        match self {
            QueryError::Invalid(_) | QueryError::UnknownLocale { .. } => ErrorCode::BadRequest,
            QueryError::Read(e) => e.code(),
            QueryError::Index(_) => ErrorCode::Internal,
        }
    }
}

/// The ranking knobs, chosen on the project's own question sets (figures in the README).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Weight of a title match.
    pub title: f32,
    /// Weight of a heading match.
    pub heading: f32,
    /// Weight of a text match.
    pub text: f32,
    /// Weight of a matching adjacent word pair.
    pub pairs: f32,
    /// Most passages of one article in the ranked list.
    pub per_article: usize,
    /// Relevance at or above which the best article answers the question ([`relevance`]).
    pub found_relevance: f32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            title: 1.0,
            heading: 1.0,
            text: 1.0,
            pairs: 0.5,
            per_article: 2,
            found_relevance: relevance::FOUND_RELEVANCE,
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
    /// Relevance score (BM25 over what the caller may read).
    pub score: f32,
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
    let stats = AudienceStats::new(reader.stats_cache(), &g, &searcher, &q.access)?;
    let locales = indexed_locales(&g, &searcher)?;
    let plan = plan::plan(&q.text, q.locale.as_deref(), &locales);
    let resp = Ranker {
        g: &g,
        searcher: &searcher,
        stats: &stats,
        q,
        tuning,
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

fn filter(q: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(q, 0.0))
}

/// The question in one family's fields: each content word over title, heading and text, each
/// adjacent word pair over the pair field. `None` when it has no terms in that language.
fn question_query(fields: &LangFields, question: &str, t: &Tuning) -> Option<Box<dyn Query>> {
    let weighted = |field, text: &str, w: f32| -> (Occur, Box<dyn Query>) {
        let q = TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::WithFreqs,
        );
        (Occur::Should, Box::new(BoostQuery::new(Box::new(q), w)))
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in question_terms(fields.family, question) {
        clauses.push((
            Occur::Should,
            Box::new(BooleanQuery::new(vec![
                weighted(fields.title, &word, t.title),
                weighted(fields.heading, &word, t.heading),
                weighted(fields.text, &word, t.text),
            ])),
        ));
    }
    if clauses.is_empty() {
        return None;
    }
    if t.pairs > 0.0 {
        for p in question_pairs(fields.family, question) {
            clauses.push(weighted(fields.pairs, &p, t.pairs));
        }
    }
    Some(Box::new(BooleanQuery::new(clauses)))
}

/// One ranked passage before grouping.
struct Candidate {
    score: f32,
    doc: TantivyDocument,
    fallback: bool,
}

struct Ranker<'a> {
    g: &'a Generation,
    searcher: &'a Searcher,
    stats: &'a AudienceStats<'a>,
    q: &'a contract::Query,
    tuning: &'a Tuning,
}

impl Ranker<'_> {
    fn run(&self, plan: &plan::Plan) -> Result<SearchResponse, QueryError> {
        let f = &self.g.fields;
        let mut resp = SearchResponse {
            query: self.q.text.clone(),
            audience: self.q.access.audience,
            found: false,
            relevance: 0.0,
            hits: vec![],
        };
        let mut branches: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for b in &plan.branches {
            let Some(user) = question_query(&f.lang.fields(b.family), &self.q.text, self.tuning)
            else {
                continue;
            };
            let locales = b.locales.iter().map(|l| Term::from_field_text(f.locale, l));
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
                (Occur::Must, user),
                (Occur::Must, filter(Box::new(TermSetQuery::new(locales)))),
            ];
            if b.fallback {
                clauses.push((
                    Occur::Must,
                    filter(Box::new(TermQuery::new(
                        Term::from_field_u64(f.is_source, 1),
                        IndexRecordOption::Basic,
                    ))),
                ));
            }
            branches.push((Occur::Should, Box::new(BooleanQuery::new(clauses))));
        }
        if branches.is_empty() {
            return Ok(resp);
        }
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(BooleanQuery::new(branches)) as Box<dyn Query>,
            ),
            (Occur::Must, access_filter(f, &self.q.access)),
        ]);
        // Enough candidates to fill the list with distinct articles after grouping.
        let pool = (self.q.limit * 6 + 20).min(400);
        let top: Vec<(f32, DocAddress)> = self.searcher.search_with_statistics_provider(
            &query,
            &TopDocs::with_limit(pool).order_by_score(),
            self.stats,
        )?;
        let mut candidates = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = self.searcher.doc(addr)?;
            // Defense in depth: the stored access tokens must grant this caller.
            if !self.q.access.allows(&all_str(&doc, f.access)) {
                tracing::error!(
                    article_id = first_u64(&doc, f.article_id),
                    "index returned a hit outside the caller's access; dropped"
                );
                continue;
            }
            let fallback =
                !plan.preferred.is_empty() && !plan.preferred.contains(&first_str(&doc, f.locale));
            candidates.push(Candidate {
                score,
                doc,
                fallback,
            });
        }
        // An article found in the question's language is answered in it: its source-locale
        // passages give way. One found only in its source locale keeps them (marked).
        let answered_in_language: HashSet<(String, u64)> = candidates
            .iter()
            .filter(|c| !c.fallback)
            .map(|c| (first_str(&c.doc, f.source), first_u64(&c.doc, f.article_id)))
            .collect();
        candidates.retain(|c| {
            !c.fallback
                || !answered_in_language
                    .contains(&(first_str(&c.doc, f.source), first_u64(&c.doc, f.article_id)))
        });
        let mut snippets = Snippets::new(self);
        let mut by_article: HashMap<(String, u64), (usize, usize)> = HashMap::new();
        // Everything matched of the best article, for the "nothing relevant" decision.
        let mut best: Option<((String, u64), Vec<String>)> = None;
        for c in candidates {
            let key = (first_str(&c.doc, f.source), first_u64(&c.doc, f.article_id));
            let best = best.get_or_insert_with(|| (key.clone(), Vec::new()));
            if best.0 == key {
                best.1.push(first_str(&c.doc, f.title));
                best.1.push(first_str(&c.doc, f.heading));
                best.1.push(first_str(&c.doc, f.text));
            }
            match by_article.get_mut(&key) {
                Some((first, n)) if *n >= self.tuning.per_article => {
                    let host = &mut resp.hits[*first];
                    if host.also.len() < 5 {
                        host.also.push(AlsoPassage {
                            passage_id: first_str(&c.doc, f.passage_id),
                            heading: first_str(&c.doc, f.heading),
                            url: first_str(&c.doc, f.url),
                            score: c.score,
                        });
                    }
                }
                Some((_, n)) => {
                    if resp.hits.len() < self.q.limit {
                        *n += 1;
                        resp.hits.push(snippets.hit(&c)?);
                    }
                }
                None => {
                    if resp.hits.len() < self.q.limit {
                        by_article.insert(key, (resp.hits.len(), 1));
                        resp.hits.push(snippets.hit(&c)?);
                    }
                }
            }
        }
        resp.relevance = match (resp.hits.first(), &best) {
            (Some(top), Some((_, texts))) => self.covers(&top.locale, texts),
            _ => 0.0,
        };
        resp.found = !resp.hits.is_empty() && resp.relevance >= self.tuning.found_relevance;
        Ok(resp)
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
        let tokens = |variant| {
            let mut out = HashSet::new();
            let mut a = analyzer(family, variant);
            for text in texts {
                let mut stream = a.token_stream(text);
                while stream.advance() {
                    out.insert(stream.token().text.clone());
                }
            }
            out
        };
        relevance::relevance(
            &words,
            &tokens(Variant::Index),
            &pairs,
            &tokens(Variant::Pairs),
        )
    }
}

/// Snippet generators per language, weighted by the caller's statistics.
struct Snippets<'a> {
    ranker: &'a Ranker<'a>,
    by_family: HashMap<Family, SnippetGenerator>,
}

impl<'a> Snippets<'a> {
    fn new(ranker: &'a Ranker<'a>) -> Self {
        Snippets {
            ranker,
            by_family: HashMap::new(),
        }
    }

    fn generator(&mut self, family: Family) -> &SnippetGenerator {
        let r = self.ranker;
        self.by_family.entry(family).or_insert_with(|| {
            let field = r.g.fields.lang.fields(family).text;
            // Content words only (no stop words highlighted), weighted by their idf among
            // what the caller may read.
            let terms: BTreeMap<String, f32> = question_terms(family, &r.q.text)
                .into_iter()
                .map(|t| {
                    let w = r.stats.idf(&Term::from_field_text(field, &t));
                    (t, w)
                })
                .collect();
            SnippetGenerator::new(terms, analyzer(family, Variant::Index), field, 240)
        })
    }

    fn hit(&mut self, c: &Candidate) -> Result<Hit, QueryError> {
        let f = &self.ranker.g.fields;
        let doc = &c.doc;
        let family = Family::from_code(&first_str(doc, f.family)).unwrap_or(Family::Plain);
        let text = first_str(doc, f.text);
        let snip = self.generator(family).snippet(&text);
        let mut plain = snip.fragment().to_string();
        let mut ranges: Vec<[usize; 2]> = snip
            .highlighted()
            .iter()
            .map(|r| [r.start, r.end])
            .collect();
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
            locale_fallback: c.fallback,
            title: first_str(doc, f.title),
            heading: first_str(doc, f.heading),
            url: first_str(doc, f.url),
            text,
            snippet: marked,
            highlights: ranges,
            snippet_plain: plain,
            visibility: Visibility::parse(&first_str(doc, f.visibility))
                .unwrap_or(Visibility::Internal),
            score: c.score,
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
