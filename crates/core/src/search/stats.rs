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
use tantivy::{Searcher, Term};

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
            // Block by block (128 decoded doc ids at a time): a common word's list is walked
            // once per index state, on its first search, and this is that search's main cost.
            let Some(mut block) = inverted.read_block_postings(term, IndexRecordOption::Basic)?
            else {
                continue;
            };
            loop {
                let docs = block.docs();
                if docs.is_empty() {
                    break;
                }
                df += docs.iter().filter(|&&d| bits.contains(d)).count() as u64;
                block.advance();
            }
        }
        v.doc_freq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(term.clone(), df);
        Ok(df)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{STORED, STRING, Schema};
    use tantivy::{Index, TantivyDocument, doc};

    /// The visible document frequency, counted block by block, is the number of kept documents
    /// that contain the term: across segments, past the 128-document block size, with deleted
    /// documents (absent from the kept bitsets) not counted.
    #[test]
    fn doc_freq_counts_only_kept_documents() {
        let mut sb = Schema::builder();
        let word = sb.add_text_field("word", STRING | STORED);
        let index = Index::create_in_ram(sb.build());
        let mut w = index
            .writer_with_num_threads::<TantivyDocument>(1, 15_000_000)
            .unwrap();
        w.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        for seg in 0..3u32 {
            for i in 0..700u32 {
                let mut d = doc!(word => format!("w{}", i % 7));
                if i % 5 == 0 {
                    d.add_text(word, "rare");
                }
                d.add_text(word, format!("seg{seg}"));
                w.add_document(d).unwrap();
            }
            w.commit().unwrap();
        }
        w.delete_term(Term::from_field_text(word, "w3"));
        w.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 3);
        let keep = |r: &tantivy::SegmentReader, d: u32| {
            !d.is_multiple_of(3) && r.alive_bitset().is_none_or(|a| a.is_alive(d))
        };
        let filter = Arc::new(DocFilter::keeping(&searcher, keep));
        let stats = AudienceStats::new(&searcher, Audience::Customer, filter);
        for t in ["w0", "w3", "w6", "rare", "seg1", "absent"] {
            let term = Term::from_field_text(word, t);
            let mut want = 0u64;
            for r in searcher.segment_readers() {
                let store = r.get_store_reader(0).unwrap();
                for d in 0..r.max_doc() {
                    let doc: TantivyDocument = store.get(d).unwrap();
                    let has = doc
                        .get_all(word)
                        .any(|v| tantivy::schema::Value::as_str(&v) == Some(t));
                    want += u64::from(has && keep(r, d));
                }
            }
            assert_eq!(stats.doc_freq(&term).unwrap(), want, "{t}");
            // Cached: asked again, the same.
            assert_eq!(stats.doc_freq(&term).unwrap(), want, "{t}");
        }
    }
}
