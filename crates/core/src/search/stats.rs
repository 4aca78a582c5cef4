//! BM25 statistics of what one audience may read.
//!
//! tantivy scores with statistics over every document of the index (document frequencies,
//! average field lengths). For a customer that would let hidden content move their scores: a
//! public article's score would change with the number of internal articles containing a word,
//! and so would the order of their results. Here the statistics count only the documents the
//! caller's access tokens grant, so nothing about hidden content reaches a customer's scores,
//! ranking, snippets or "nothing relevant" decision. Agents see every published document, so
//! theirs are the index's own.
//!
//! A per-segment bitset of the visible documents is computed once per index state (searcher
//! generation) and access set, and document frequencies and token totals are cached with it.

use crate::index::Generation;
use crate::model::{Access, Audience};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tantivy::query::{Bm25StatisticsProvider, EnableScoring, Query, TermSetQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocSet, Searcher, TERMINATED, Term};

/// Visible documents and cached statistics for one access set in one index state.
pub struct Visible {
    /// Per segment ordinal: the documents this access may read (alive ones only).
    bits: Vec<BitSet>,
    docs: u64,
    doc_freq: Mutex<HashMap<Term, u64>>,
    tokens: Mutex<HashMap<Field, u64>>,
}

/// (index generation, searcher generation): one index state.
type StateId = (String, u64);

/// Visible sets of one index state, by sorted access terms.
type BySet = HashMap<Vec<String>, Arc<Visible>>;

/// Per-index-state caches: one [`Visible`] per distinct access set. Replaced whenever the
/// searcher generation changes (every commit).
#[derive(Default)]
pub struct StatsCache {
    inner: Mutex<Option<(StateId, BySet)>>,
}

impl StatsCache {
    /// The visible set of `access` in `searcher`'s index state (computed on first use).
    pub fn visible(
        &self,
        g: &Generation,
        searcher: &Searcher,
        access: &Access,
    ) -> tantivy::Result<Arc<Visible>> {
        // Searcher generation ids restart with every index generation: key on both.
        let id = (g.name.clone(), searcher.generation().generation_id());
        let mut terms = access.terms();
        terms.sort();
        {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((gen_id, map)) = guard.as_ref()
                && *gen_id == id
                && let Some(v) = map.get(&terms)
            {
                return Ok(v.clone());
            }
        }
        let v = Arc::new(Visible::compute(g, searcher, &terms)?);
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some((gen_id, map)) if *gen_id == id => {
                // Bounded: access sets are few in practice (segments × sign-in), but a caller
                // could send many distinct segment lists; forget them all past a bound.
                if map.len() > 256 {
                    map.clear();
                }
                map.insert(terms, v.clone());
            }
            _ => *guard = Some((id, HashMap::from([(terms, v.clone())]))),
        }
        Ok(v)
    }
}

impl Visible {
    fn compute(g: &Generation, searcher: &Searcher, terms: &[String]) -> tantivy::Result<Visible> {
        let f = &g.fields;
        let query = TermSetQuery::new(terms.iter().map(|t| Term::from_field_text(f.access, t)));
        let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        let mut bits = Vec::new();
        let mut docs = 0u64;
        for reader in searcher.segment_readers() {
            let mut set = BitSet::with_max_value(reader.max_doc().max(1));
            let mut scorer = weight.scorer(reader, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if !reader.is_deleted(doc) {
                    set.insert(doc);
                    docs += 1;
                }
                doc = scorer.advance();
            }
            bits.push(set);
        }
        Ok(Visible {
            bits,
            docs,
            doc_freq: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Number of visible documents.
    pub fn num_docs(&self) -> u64 {
        self.docs
    }
}

/// The statistics provider of one search.
pub struct AudienceStats<'a> {
    searcher: &'a Searcher,
    /// `None` for agents: the index's own statistics are theirs.
    visible: Option<Arc<Visible>>,
}

impl<'a> AudienceStats<'a> {
    /// Statistics for `access` over `searcher`.
    pub fn new(
        cache: &StatsCache,
        g: &Generation,
        searcher: &'a Searcher,
        access: &Access,
    ) -> tantivy::Result<AudienceStats<'a>> {
        let visible = match access.audience {
            Audience::Agent => None,
            Audience::Customer => Some(cache.visible(g, searcher, access)?),
        };
        Ok(AudienceStats { searcher, visible })
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
            let Some(bits) = v.bits.get(ord) else {
                continue;
            };
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
            let Some(bits) = v.bits.get(ord) else {
                continue;
            };
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
