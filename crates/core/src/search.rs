//! Cited search over the live index. Visibility is part of the tantivy query itself (a required
//! clause over access tokens), and every hit is re-checked against the caller's access before it
//! leaves (defense in depth).

use crate::error::ErrorCode;
use crate::index::{Fields, Generation};
use crate::model::{Access, Audience, Visibility};
use crate::query::{self as contract, InvalidQuery};
use crate::reader::{ReadError, Reader};
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, TantivyDocument, Term};
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

/// One cited passage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Hit {
    /// Zendesk article id.
    pub article_id: u64,
    /// Help center (source) name.
    pub source: String,
    /// Locale.
    pub locale: String,
    /// Article title.
    pub title: String,
    /// Heading path joined with " › " (empty for the intro).
    pub heading: String,
    /// Citation: the article's html_url, plus `#anchor` when the passage has a real one.
    pub url: String,
    /// The passage's normalized text.
    pub text: String,
    /// Best fragment, matched terms wrapped in `**`.
    pub snippet: String,
    /// Byte ranges of matches within `snippet_plain`.
    pub highlights: Vec<[usize; 2]>,
    /// The fragment without highlighting marks.
    pub snippet_plain: String,
    /// `public`, `signed_in`, `restricted` or `internal`.
    pub visibility: Visibility,
    /// BM25 score.
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
}

/// Search results.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchResponse {
    /// The query as given.
    pub query: String,
    /// Audience it was answered for.
    pub audience: Audience,
    /// Hits, best first.
    pub hits: Vec<Hit>,
}

/// Builds the query: the user's text (lenient parse, title and headings boosted) AND one of the
/// caller's access tokens AND the locale when given. Pure over the index schema.
pub fn build_query(
    handle: &Generation,
    text: &str,
    access: &Access,
    locale: Option<&str>,
) -> (Box<dyn Query>, Box<dyn Query>) {
    let f = &handle.fields;
    let mut parser = QueryParser::for_index(&handle.index, vec![f.title, f.heading, f.text]);
    parser.set_field_boost(f.title, 2.0);
    parser.set_field_boost(f.heading, 1.5);
    let (user, _errors) = parser.parse_query_lenient(&sanitize(text));
    let filter = access_filter(f, access);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        vec![(Occur::Must, user.box_clone()), (Occur::Must, filter)];
    if let Some(l) = locale {
        let q = TermQuery::new(Term::from_field_text(f.locale, l), IndexRecordOption::Basic);
        clauses.push((
            Occur::Must,
            Box::new(ConstScoreQuery::new(Box::new(q), 0.0)),
        ));
    }
    (Box::new(BooleanQuery::new(clauses)), user)
}

/// Query syntax is for people; AI runtimes send prose. Keep words, drop operators that would
/// change meaning (`-`, `+`, `:`, quotes, brackets).
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect()
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

/// Runs a search on the reader's live generation.
pub fn search(reader: &Reader, q: &contract::Query) -> Result<SearchResponse, QueryError> {
    reader.ensure_ready()?;
    let generation = reader.generation()?;
    let resp = search_generation(&generation, q)?;
    if resp.hits.is_empty()
        && let Some(locale) = &q.locale
    {
        let known = known_locales(&generation, &q.access)?;
        if !known.contains(locale) {
            return Err(QueryError::UnknownLocale {
                locale: locale.clone(),
                known,
            });
        }
    }
    Ok(resp)
}

/// The locales holding something `access` may read (the unknown-locale error lists them; it
/// never names a locale only hidden content is in).
fn known_locales(g: &Generation, access: &Access) -> Result<Vec<String>, QueryError> {
    use tantivy::collector::Count;
    let f = &g.fields;
    let searcher = g.reader.searcher();
    let mut all = std::collections::BTreeSet::new();
    for seg in searcher.segment_readers() {
        let inverted = seg.inverted_index(f.locale)?;
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
    let mut known = Vec::new();
    for l in all {
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.locale, &l),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (Occur::Must, access_filter(f, access)),
        ]);
        if searcher.search(&q, &Count)? > 0 {
            known.push(l);
        }
    }
    Ok(known)
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

/// Runs a search on one index generation.
pub fn search_generation(
    handle: &Generation,
    req: &contract::Query,
) -> Result<SearchResponse, QueryError> {
    let mut resp = SearchResponse {
        query: req.text.clone(),
        audience: req.access.audience,
        hits: vec![],
    };
    let f: &Fields = &handle.fields;
    let (query, user) = build_query(handle, &req.text, &req.access, req.locale.as_deref());
    let searcher = handle.reader.searcher();
    let top: Vec<(f32, DocAddress)> =
        searcher.search(&query, &TopDocs::with_limit(req.limit).order_by_score())?;
    let mut snippets = SnippetGenerator::create(&searcher, &*user, f.text)?;
    snippets.set_max_num_chars(240);
    for (score, addr) in top {
        let doc: TantivyDocument = searcher.doc(addr)?;
        // Defense in depth: the stored access tokens must grant this caller, or the hit is dropped.
        if !req.access.allows(&all_str(&doc, f.access)) {
            tracing::error!(
                article_id = first_u64(&doc, f.article_id),
                "index returned a hit outside the caller's access; dropped"
            );
            continue;
        }
        let text = first_str(&doc, f.text);
        let snip = snippets.snippet(&text);
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
        let section = first_str(&doc, f.section);
        let brand = first_str(&doc, f.brand);
        resp.hits.push(Hit {
            article_id: first_u64(&doc, f.article_id),
            source: first_str(&doc, f.source),
            locale: first_str(&doc, f.locale),
            title: first_str(&doc, f.title),
            heading: first_str(&doc, f.heading),
            url: first_str(&doc, f.url),
            text,
            snippet: marked,
            highlights: ranges,
            snippet_plain: plain,
            visibility: Visibility::parse(&first_str(&doc, f.visibility))
                .unwrap_or(Visibility::Internal),
            score,
            content_hash: first_str(&doc, f.content_hash),
            updated_at: first_str(&doc, f.updated_at),
            outdated: first_u64(&doc, f.outdated) == 1,
            section: (!section.is_empty()).then_some(section),
            brand: (!brand.is_empty()).then_some(brand),
        });
    }
    Ok(resp)
}

/// One numbered source of a context.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Citation {
    /// The number used in `context` (`[1]`).
    pub n: usize,
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
    /// False when nothing relevant was found: the runtime should say so rather than guess.
    pub found: bool,
}

/// Assembles a grounding context from the best passages, within the budget (in characters).
pub fn context(reader: &Reader, req: &contract::Query) -> Result<ContextResponse, QueryError> {
    let resp = search(reader, req)?;
    let mut out = String::new();
    let mut citations: Vec<Citation> = Vec::new();
    let mut used = Vec::new();
    let mut used_chars = 0;
    for h in &resp.hits {
        let block = format!(
            "[{}] {}{}\n{}\n\n",
            citations.len() + 1,
            h.title,
            if h.heading.is_empty() {
                String::new()
            } else {
                format!(" › {}", h.heading)
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
