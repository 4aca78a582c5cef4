//! The recommended schema shape: one set of indexed fields per analyzer [`Family`]
//! (`title_de`, `heading_de`, `text_de`, `pairs_de`, …; 20 families × 4 = 80 fields), each with
//! its family's analyzer, so that tantivy picks the right tokenizer per field and each language
//! has its own term statistics (IDF). A passage fills only the four fields of its locale's
//! family; the display text stays in stored-only fields. And the query builder that matches a
//! question against one family's fields.
//!
//! Queries are built from analyzed terms rather than with `QueryParser`: the parser would turn
//! every whitespace-free run (`如何重置我的密码`, `driver's`) into one phrase query, which for
//! CJK means "the whole question verbatim". Terms are OR-ed (BM25 sums), title and heading
//! boosted as today, and the question's adjacent pairs query the pair field.

use crate::analysis::{Variant, analyzer, analyzer_name, tokens};
use crate::lang::{ALL_FAMILIES, Family};
use tantivy::Term;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, SchemaBuilder, TextFieldIndexing, TextOptions};

/// The indexed fields of one family.
#[derive(Debug, Clone, Copy)]
pub struct LangFields {
    /// The family.
    pub family: Family,
    /// Article title, analysed with `hx_<code>`.
    pub title: Field,
    /// Heading path, analysed with `hx_<code>`.
    pub heading: Field,
    /// Passage text, analysed with `hx_<code>` (stop words kept; positions for phrases).
    pub text: Field,
    /// Heading + text as adjacent pairs, analysed with `hx_<code>_pairs` (no positions).
    pub pairs: Field,
}

/// All families' field sets.
#[derive(Debug, Clone)]
pub struct LangSchema {
    sets: Vec<LangFields>,
}

fn indexed(tokenizer: &str, record: IndexRecordOption) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    )
}

impl LangSchema {
    /// Adds `title_<code>`, `heading_<code>`, `text_<code>` and `pairs_<code>` for every family.
    /// None is stored: keep the display text in stored-only fields.
    pub fn add_to(b: &mut SchemaBuilder) -> LangSchema {
        let sets = ALL_FAMILIES
            .iter()
            .map(|&family| {
                let c = family.code();
                let idx = analyzer_name(family, Variant::Index);
                let pos = IndexRecordOption::WithFreqsAndPositions;
                LangFields {
                    family,
                    title: b.add_text_field(&format!("title_{c}"), indexed(&idx, pos)),
                    heading: b.add_text_field(&format!("heading_{c}"), indexed(&idx, pos)),
                    text: b.add_text_field(&format!("text_{c}"), indexed(&idx, pos)),
                    pairs: b.add_text_field(
                        &format!("pairs_{c}"),
                        indexed(
                            &analyzer_name(family, Variant::Pairs),
                            IndexRecordOption::WithFreqs,
                        ),
                    ),
                }
            })
            .collect();
        LangSchema { sets }
    }

    /// The fields of `family`.
    pub fn fields(&self, family: Family) -> LangFields {
        // `add_to` creates a set for every family, so the lookup cannot fail; fall back to the
        // last (plain) set rather than panic anyway.
        self.sets
            .iter()
            .copied()
            .find(|s| s.family == family)
            .unwrap_or_else(|| self.sets[self.sets.len() - 1])
    }

    /// All field sets.
    pub fn all(&self) -> &[LangFields] {
        &self.sets
    }
}

/// Boosts of the question query.
#[derive(Debug, Clone, Copy)]
pub struct Weights {
    /// Title match.
    pub title: f32,
    /// Heading match.
    pub heading: f32,
    /// Text match.
    pub text: f32,
    /// Pair-field match.
    pub pairs: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            title: 2.0,
            heading: 1.5,
            text: 1.0,
            // Measured on WixQA/TechQA (`cargo bench --bench eval`): 0.25–1.0 all help a little; not tuned further.
            pairs: 0.5,
        }
    }
}

/// Distinct token texts, first occurrence order.
fn distinct(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|t| seen.insert(t.clone()));
    v
}

/// The query terms of a question in `family`: stop words dropped, or all words when the
/// question consists of stop words only (`how to`, `wie kann ich`).
pub fn question_terms(family: Family, question: &str) -> Vec<String> {
    let q = tokens(&mut analyzer(family, Variant::Query), question);
    let q = if q.is_empty() {
        tokens(&mut analyzer(family, Variant::Index), question)
    } else {
        q
    };
    distinct(q.into_iter().map(|t| t.text).collect())
}

/// The pair terms of a question in `family`.
pub fn question_pairs(family: Family, question: &str) -> Vec<String> {
    distinct(
        tokens(&mut analyzer(family, Variant::Pairs), question)
            .into_iter()
            .map(|t| t.text)
            .collect(),
    )
}

fn term_query(field: Field, text: &str, boost: f32) -> (Occur, Box<dyn Query>) {
    let q = TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    );
    (Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost)))
}

/// The question as a query over `fields` (`None` when it has no terms at all). With
/// `use_pairs` false the pair field is left out (for comparisons).
pub fn question_query(
    fields: &LangFields,
    question: &str,
    weights: &Weights,
    use_pairs: bool,
) -> Option<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for t in question_terms(fields.family, question) {
        let per_field = vec![
            term_query(fields.title, &t, weights.title),
            term_query(fields.heading, &t, weights.heading),
            term_query(fields.text, &t, weights.text),
        ];
        clauses.push((Occur::Should, Box::new(BooleanQuery::new(per_field))));
    }
    if clauses.is_empty() {
        return None;
    }
    if use_pairs {
        for p in question_pairs(fields.family, question) {
            clauses.push(term_query(fields.pairs, &p, weights.pairs));
        }
    }
    Some(Box::new(BooleanQuery::new(clauses)))
}

/// A quoted phrase as an exact phrase query on the text field, analysed with the index
/// analyzer (stop words included, so `"log in"` and `"log out"` differ). One-token phrases
/// become a term query; empty ones `None`.
pub fn phrase_query(fields: &LangFields, phrase: &str) -> Option<Box<dyn Query>> {
    let toks = tokens(&mut analyzer(fields.family, Variant::Index), phrase);
    match toks.len() {
        0 => None,
        1 => Some(Box::new(TermQuery::new(
            Term::from_field_text(fields.text, &toks[0].text),
            IndexRecordOption::WithFreqs,
        ))),
        _ => {
            let first = toks[0].position;
            let terms = toks
                .iter()
                .map(|t| {
                    (
                        t.position.saturating_sub(first),
                        Term::from_field_text(fields.text, &t.text),
                    )
                })
                .collect();
            Some(Box::new(PhraseQuery::new_with_offset(terms)))
        }
    }
}

/// A question searched in several families at once (no locale, detection unsure): the
/// union of each family's [`question_query`].
pub fn multi_family_query(
    schema: &LangSchema,
    families: &[Family],
    question: &str,
    weights: &Weights,
) -> Option<Box<dyn Query>> {
    let clauses: Vec<(Occur, Box<dyn Query>)> = families
        .iter()
        .filter_map(|&f| question_query(&schema.fields(f), question, weights, true))
        .map(|q| (Occur::Should, q))
        .collect();
    (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
}

/// Adds one passage's analysed fields to a tantivy document: title, heading and text in the
/// family's fields, and heading and text (as two values, so no pair spans them) in its pair
/// field.
pub fn add_passage(
    doc: &mut tantivy::TantivyDocument,
    fields: &LangFields,
    title: &str,
    heading: &str,
    text: &str,
) {
    doc.add_text(fields.title, title);
    doc.add_text(fields.heading, heading);
    doc.add_text(fields.text, text);
    doc.add_text(fields.pairs, heading);
    doc.add_text(fields.pairs, text);
}
