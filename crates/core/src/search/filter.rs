//! Who-may-read and which-locale filters as precomputed document sets.
//!
//! The access clause of a customer's query ("public", plus signed-in and segments) matches most
//! of the index; evaluated as a term-set query it walks those whole posting lists on every
//! search, and as a required clause it stops tantivy from pruning the disjunction of the
//! question's terms (block-max WAND). It only changes when the index does, so it is computed
//! once per index state (each commit is a new searcher generation) and access set, kept as one
//! bitset per segment, and tested on every document the search produces, before ranking
//! ([`FilteredTopK`]): nothing outside it can enter the results, and the cost is a bit test. The
//! same sets restrict BM25's statistics to what the caller may read ([`super::stats`]).

use crate::index::Generation;
use crate::model::Access;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tantivy::index::SegmentId;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, TermQuery, TermSetQuery, Weight};
use tantivy::schema::IndexRecordOption;
use tantivy::{BitSet, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

/// What a filter keeps: documents one of `access` grants, optionally only in `locales` and only
/// source-locale translations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterKey {
    /// Sorted access terms of the caller.
    pub access: Vec<String>,
    /// Sorted locales, or all.
    pub locales: Option<Vec<String>>,
    /// Only source-locale translations.
    pub source_only: bool,
}

impl FilterKey {
    /// The filter of everything `access` may read.
    pub fn access(access: &Access) -> FilterKey {
        let mut terms = access.terms();
        terms.sort();
        FilterKey {
            access: terms,
            locales: None,
            source_only: false,
        }
    }
}

/// The documents a filter keeps, per segment of one index state, with the BM25 statistics of
/// those documents as they are asked for.
#[derive(Debug)]
pub struct DocFilter {
    /// Per segment ordinal of the searcher: its id and the kept (alive) documents.
    pub segments: Vec<(SegmentId, BitSet)>,
    /// Documents kept.
    pub docs: u64,
    /// Document frequencies among the kept documents.
    pub(crate) doc_freq: Mutex<HashMap<Term, u64>>,
    /// Token totals per field among the kept documents.
    pub(crate) tokens: Mutex<HashMap<tantivy::schema::Field, u64>>,
}

impl DocFilter {
    /// A filter that keeps the documents `keep` accepts in each segment (tests).
    #[cfg(test)]
    pub(crate) fn keeping(
        searcher: &Searcher,
        keep: impl Fn(&SegmentReader, DocId) -> bool,
    ) -> DocFilter {
        let segments: Vec<(SegmentId, BitSet)> = searcher
            .segment_readers()
            .iter()
            .map(|r| {
                let mut b = BitSet::with_max_value(r.max_doc());
                for d in (0..r.max_doc()).filter(|&d| keep(r, d)) {
                    b.insert(d);
                }
                (r.segment_id(), b)
            })
            .collect();
        DocFilter {
            docs: segments.iter().map(|(_, b)| b.len() as u64).sum(),
            segments,
            doc_freq: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn compute(g: &Generation, searcher: &Searcher, key: &FilterKey) -> tantivy::Result<Self> {
        let f = &g.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(TermSetQuery::new(
                key.access
                    .iter()
                    .map(|t| Term::from_field_text(f.access, t)),
            )),
        )];
        if let Some(locales) = &key.locales {
            clauses.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    locales.iter().map(|l| Term::from_field_text(f.locale, l)),
                )),
            ));
        }
        if key.source_only {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.is_source, 1),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        let mut segments = Vec::new();
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
            segments.push((reader.segment_id(), set));
        }
        Ok(DocFilter {
            segments,
            docs,
            doc_freq: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The kept documents of the segment at `ord`.
    pub fn segment(&self, ord: usize) -> Option<&BitSet> {
        self.segments.get(ord).map(|(_, b)| b)
    }
}

/// (index generation, searcher generation): one index state.
type StateId = (String, u64);

/// The filters of one index state, by key.
type Filters = HashMap<FilterKey, Arc<DocFilter>>;

/// Filters of the current index state, computed on first use and dropped at the next commit.
#[derive(Default)]
pub struct FilterCache {
    inner: Mutex<Option<(StateId, Filters)>>,
}

impl FilterCache {
    /// The filter `key` over `searcher`'s index state.
    pub fn get(
        &self,
        g: &Generation,
        searcher: &Searcher,
        key: &FilterKey,
    ) -> tantivy::Result<Arc<DocFilter>> {
        // Searcher generation ids restart with every index generation: key on both.
        let id = (g.name.clone(), searcher.generation().generation_id());
        {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((state, map)) = guard.as_ref()
                && *state == id
                && let Some(v) = map.get(key)
            {
                return Ok(v.clone());
            }
        }
        let v = Arc::new(DocFilter::compute(g, searcher, key)?);
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some((state, map)) if *state == id => {
                // Bounded: callers could send many distinct segment lists.
                if map.len() > 256 {
                    map.clear();
                }
                map.insert(key.clone(), v.clone());
            }
            _ => *guard = Some((id, HashMap::from([(key.clone(), v.clone())]))),
        }
        Ok(v)
    }
}

/// Several filters read as their union: a document passes when any of them keeps it. Nothing
/// is copied: the filters are the cached ones, tested in turn (one in the common case).
#[derive(Clone, Default)]
pub struct Keep {
    filters: Vec<Arc<DocFilter>>,
}

impl Keep {
    /// The union of `filters`.
    pub fn new(filters: Vec<Arc<DocFilter>>) -> Keep {
        Keep { filters }
    }

    /// Whether there is no filter at all (nothing passes).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The bitsets of segment `ord` (empty: nothing of that segment passes).
    pub fn segment(&self, ord: usize) -> SegmentKeep<'_> {
        SegmentKeep(self.filters.iter().filter_map(|f| f.segment(ord)).collect())
    }
}

/// [`Keep`] within one segment.
pub struct SegmentKeep<'a>(Vec<&'a BitSet>);

impl SegmentKeep<'_> {
    /// Whether any filter keeps `doc`.
    #[inline]
    pub fn contains(&self, doc: DocId) -> bool {
        match self.0.as_slice() {
            [one] => one.contains(doc),
            many => many.iter().any(|b| b.contains(doc)),
        }
    }

    /// Whether nothing of the segment passes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Top-k by score among the documents a per-segment filter keeps. It drives the query with
/// `for_each_pruning`, so a plain disjunction of terms keeps tantivy's block-max WAND (a
/// required filter clause in the query would turn it off): the filter is tested on each
/// document the disjunction produces, before it can enter the top k.
///
/// The pruning threshold carries over from one segment to the next: once a segment has
/// filled its top k, a document of a later segment scoring at or below that segment's k-th
/// score can never enter the overall top k (ties go to the earlier segment), so WAND skips it
/// from the first block instead of scoring every segment's first k matches.
pub struct FilteredTopK {
    /// How many documents.
    pub k: usize,
    /// The documents that may be returned.
    pub keep: Keep,
    /// The best k-th score of the segments collected so far.
    floor: std::sync::Mutex<Score>,
}

impl FilteredTopK {
    /// The best `k` documents among those `keep` keeps.
    pub fn new(k: usize, keep: Keep) -> Self {
        FilteredTopK {
            k,
            keep,
            floor: std::sync::Mutex::new(Score::MIN),
        }
    }

    fn floor(&self) -> Score {
        *self.floor.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn raise_floor(&self, to: Score) {
        let mut f = self.floor.lock().unwrap_or_else(|p| p.into_inner());
        if to > *f {
            *f = to;
        }
    }
}

/// A (score, doc) ordered by score for the heap (lowest score first).
#[derive(PartialEq)]
struct Entry(Score, DocId);

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reverse on score (a min-heap of the best k); ties by lower doc id first, as TopDocs.
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

/// The per-segment part of [`FilteredTopK`] (unused: collection goes through
/// `collect_segment`).
pub struct NoChild;

impl tantivy::collector::SegmentCollector for NoChild {
    type Fruit = Vec<(Score, tantivy::DocAddress)>;
    fn collect(&mut self, _doc: DocId, _score: Score) {}
    fn harvest(self) -> Self::Fruit {
        Vec::new()
    }
}

impl tantivy::collector::Collector for FilteredTopK {
    type Fruit = Vec<(Score, tantivy::DocAddress)>;
    type Child = NoChild;

    fn for_segment(&self, _: u32, _: &SegmentReader) -> tantivy::Result<NoChild> {
        Ok(NoChild)
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(Score, tantivy::DocAddress)> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.segment_ord.cmp(&b.1.segment_ord))
                .then_with(|| a.1.doc_id.cmp(&b.1.doc_id))
        });
        all.truncate(self.k);
        Ok(all)
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Fruit> {
        let keep = self.keep.segment(segment_ord as usize);
        if keep.is_empty() || self.k == 0 {
            return Ok(Vec::new());
        }
        let mut heap = std::collections::BinaryHeap::with_capacity(self.k + 1);
        let floor = self.floor();
        let mut threshold = floor;
        weight.for_each_pruning(floor, reader, &mut |doc, score| {
            if !keep.contains(doc) {
                return threshold;
            }
            heap.push(Entry(score, doc));
            if heap.len() > self.k {
                heap.pop();
            }
            if heap.len() == self.k {
                threshold = heap.peek().map_or(floor, |e| e.0.max(floor));
            }
            threshold
        })?;
        if heap.len() == self.k
            && let Some(e) = heap.peek()
        {
            self.raise_floor(e.0);
        }
        Ok(heap
            .into_iter()
            .map(|Entry(s, d)| (s, tantivy::DocAddress::new(segment_ord, d)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::indexer::NoMergePolicy;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, IndexWriter, TantivyDocument};

    /// The carried-over threshold prunes nothing that belongs in the top k: over several
    /// segments and a filter, the scores kept are those of an exhaustive search.
    #[test]
    fn the_top_k_is_the_exhaustive_one_across_segments() {
        let mut sb = Schema::builder();
        let body = sb.add_text_field("body", TEXT);
        let index = Index::create_in_ram(sb.build());
        let mut w: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        w.set_merge_policy(Box::new(NoMergePolicy));
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _segment in 0..5 {
            for _ in 0..400 {
                let len = 3 + next(40);
                let text: Vec<String> = (0..len).map(|_| format!("w{}", next(60))).collect();
                let mut d = TantivyDocument::default();
                d.add_text(body, text.join(" "));
                w.add_document(d).unwrap();
            }
            w.commit().unwrap();
        }
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 5);
        let filter = Arc::new(DocFilter::keeping(&searcher, |_, d| d % 3 != 0));
        for words in [&["w1", "w2"][..], &["w3", "w17", "w40", "w59"], &["w5"]] {
            let query = BooleanQuery::new(
                words
                    .iter()
                    .map(|t| -> (Occur, Box<dyn Query>) {
                        (
                            Occur::Should,
                            Box::new(TermQuery::new(
                                Term::from_field_text(body, t),
                                IndexRecordOption::WithFreqs,
                            )),
                        )
                    })
                    .collect(),
            );
            let mut all: Vec<(Score, tantivy::DocAddress)> = searcher
                .search(&query, &TopDocs::with_limit(10_000).order_by_score())
                .unwrap()
                .into_iter()
                .filter(|(_, a)| a.doc_id % 3 != 0)
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            for k in [1, 8, 48, 500] {
                let got = searcher
                    .search(
                        &query,
                        &FilteredTopK::new(k, Keep::new(vec![filter.clone()])),
                    )
                    .unwrap();
                assert_eq!(got.len(), k.min(all.len()), "{words:?} k={k}");
                for (g, want) in got.iter().zip(&all) {
                    assert!(
                        (g.0 - want.0).abs() < 1e-4,
                        "{words:?} k={k}: {} vs {}",
                        g.0,
                        want.0
                    );
                    assert_ne!(g.1.doc_id % 3, 0, "a filtered-out document was returned");
                }
            }
        }
    }
}
