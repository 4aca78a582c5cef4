//! BM25 statistics of what one audience may read.
//!
//! tantivy scores with statistics over every document of the index (document frequencies,
//! average field lengths). For a customer that would let hidden content move their scores: a
//! public article's score would change with the number of internal articles containing a word,
//! and so would the order of their results. Here the statistics count only the documents the
//! caller's access tokens grant ([`super::filter`]), so nothing about hidden content reaches a
//! customer's scores, ranking, snippets or "nothing relevant" decision. Agents see every
//! published document, so theirs are the index's own.

use super::filter::DocFilter;
use crate::model::Audience;
use std::sync::Arc;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Searcher, TERMINATED, Term};

/// The statistics provider of one search.
pub struct AudienceStats<'a> {
    searcher: &'a Searcher,
    /// `None` for agents: the index's own statistics are theirs.
    visible: Option<Arc<DocFilter>>,
}

impl<'a> AudienceStats<'a> {
    /// Statistics over `visible` (what the caller may read), or the index's own for agents.
    pub fn new(
        searcher: &'a Searcher,
        audience: Audience,
        visible: Arc<DocFilter>,
    ) -> AudienceStats<'a> {
        AudienceStats {
            searcher,
            visible: (audience == Audience::Customer).then_some(visible),
        }
    }

    /// Inverse document frequency of `term` among the visible documents (BM25's form).
    pub fn idf(&self, term: &Term) -> f32 {
        let n = self.total_num_docs().unwrap_or(0) as f32;
        let df = self.doc_freq(term).unwrap_or(0) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }
}

impl Bm25StatisticsProvider for AudienceStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let Some(v) = &self.visible else {
            return self.searcher.total_num_tokens(field);
        };
        if let Some(n) = v
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&field)
        {
            return Ok(*n);
        }
        let mut total = 0u64;
        for (ord, reader) in self.searcher.segment_readers().iter().enumerate() {
            let norms = reader.get_fieldnorms_reader(field)?;
            let Some(bits) = v.segment(ord) else { continue };
            for doc in 0..reader.max_doc() {
                if bits.contains(doc) {
                    total += norms.fieldnorm(doc) as u64;
                }
            }
        }
        v.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(field, total);
        Ok(total)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        match &self.visible {
            Some(v) => Ok(v.docs),
            None => self.searcher.total_num_docs(),
        }
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let Some(v) = &self.visible else {
            return self.searcher.doc_freq(term);
        };
        if let Some(n) = v
            .doc_freq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(term)
        {
            return Ok(*n);
        }
        let mut df = 0u64;
        for (ord, reader) in self.searcher.segment_readers().iter().enumerate() {
            let Some(bits) = v.segment(ord) else { continue };
            let inverted = reader.inverted_index(term.field())?;
            let Some(mut postings) = inverted.read_postings(term, IndexRecordOption::Basic)? else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if bits.contains(doc) {
                    df += 1;
                }
                doc = postings.advance();
            }
        }
        v.doc_freq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(term.clone(), df);
        Ok(df)
    }
}
