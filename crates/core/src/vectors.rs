//! Passage vectors for hybrid retrieval: what the engine needs from an embedding model, the key
//! a vector is stored under, and the in-memory copy readers scan.
//!
//! Vectors are derived data, like the index. A passage's vector is stored in SQLite under
//! (model fingerprint, [`embed_key`]), the key being a hash of exactly what the model reads
//! (title and passage text), so a vector is computed once per distinct input and model: an
//! unchanged passage is never re-embedded, an edited one is, and a new model fingerprint makes
//! every passage pending again. The index carries each passage's key as a fast field, so the
//! vector side of a search runs over the very documents (and the very access and locale
//! filters) the BM25 side does: no second copy of visibility exists to drift.
//!
//! The model itself lives outside the core (`helpdex-embed`), behind [`TextEmbedder`].

use crate::reader::{ReadError, Reader};
use crate::store::StoreRead;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tantivy::index::SegmentId;
use tantivy::{DocAddress, Searcher};
use thiserror::Error;

/// A sentence-embedding model, as the engine uses it.
pub trait TextEmbedder: Send + Sync {
    /// Changes whenever the vectors could change (weights, tokenizer, pooling, prefixes).
    fn model_id(&self) -> &str;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The vector of a question (L2-normalised).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedFailed>;
    /// The vectors of passages, in input order (L2-normalised).
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedFailed>;
}

/// The model failed on an input.
#[derive(Debug, Error)]
#[error("embedding model failed: {0}")]
pub struct EmbedFailed(pub String);

/// What the model reads for a passage: the article title, then the passage (which starts with
/// its heading).
pub fn embed_input(title: &str, text: &str) -> String {
    if title.is_empty() || text.starts_with(title) {
        text.to_string()
    } else {
        format!("{title}\n{text}")
    }
}

/// The key a passage's vector is stored under: a hash of [`embed_input`]'s parts. Two passages
/// with the same title and text share a vector.
pub fn embed_key(title: &str, text: &str) -> i64 {
    let mut h = blake3::Hasher::new();
    h.update(title.as_bytes());
    h.update(&[0]);
    h.update(text.as_bytes());
    i64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Vector blobs in SQLite: little-endian f32.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`to_blob`]; `None` when the blob is not a whole number of f32.
pub fn from_blob(b: &[u8]) -> Option<Vec<f32>> {
    b.len().is_multiple_of(4).then(|| blob_values(b).collect())
}

/// A blob's values, read in place (a trailing partial value is ignored).
fn blob_values(b: &[u8]) -> impl Iterator<Item = f32> + Clone + '_ {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// How many passages have a vector of a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Coverage {
    /// Passages in the store.
    pub passages: u64,
    /// Of those, passages whose vector for the model is stored.
    pub embedded: u64,
}

impl Coverage {
    /// Passages still waiting for their vector.
    pub fn pending(&self) -> u64 {
        self.passages.saturating_sub(self.embedded)
    }
}

/// How often a reader looks for new vectors (at most; only when searching).
const VECTOR_CHECK: Duration = Duration::from_millis(250);

/// "No vector" in a segment's doc → row map.
const NONE: u32 = u32::MAX;

/// Int8 codes of L2-normalised vectors, one scale per vector: a quarter of f32's memory, and
/// the exact scan's ranking is practically unchanged (top-10 recall 1.0 on MiniLM vectors when
/// this was chosen).
#[derive(Default)]
struct Rows {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    by_key: HashMap<i64, u32>,
}

impl Rows {
    #[cfg(test)]
    fn push(&mut self, key: i64, v: &[f32]) {
        self.push_blob(key, &to_blob(v));
    }

    /// Appends a stored vector ([`to_blob`]'s bytes). The first one sets the dimension; a
    /// blob of another length (torn, or another model's) is skipped.
    fn push_blob(&mut self, key: i64, blob: &[u8]) {
        if self.dim == 0 && !blob.is_empty() && blob.len().is_multiple_of(4) {
            self.dim = blob.len() / 4;
        }
        if blob.len() != self.dim * 4 {
            return;
        }
        let row = self.scales.len() as u32;
        let scale = quantize(blob_values(blob), &mut self.codes);
        self.scales.push(scale);
        self.by_key.insert(key, row);
    }

    /// Appends `other`'s rows (of the same dimension; none otherwise).
    fn append(&mut self, other: Rows) {
        if self.dim == 0 {
            self.dim = other.dim;
        }
        if other.dim != self.dim {
            return;
        }
        let first = self.scales.len() as u32;
        self.codes.extend_from_slice(&other.codes);
        self.scales.extend_from_slice(&other.scales);
        self.by_key
            .extend(other.by_key.into_iter().map(|(k, r)| (k, first + r)));
    }

    fn score(&self, row: u32, q: &[i8], q_scale: f32) -> f32 {
        let at = row as usize * self.dim;
        dot_i8(q, &self.codes[at..at + self.dim]) as f32 * q_scale * self.scales[row as usize]
    }
}

/// Appends `v` as int8 codes to `out`; returns the scale (code × scale ≈ value).
fn quantize(v: impl Iterator<Item = f32> + Clone, out: &mut Vec<i8>) -> f32 {
    let max = v.clone().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(v.map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
    scale
}

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // Four accumulators over fixed chunks: LLVM vectorises this.
    let mut acc = [0i32; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let tail: i32 = ra.iter().zip(rb).map(|(x, y)| *x as i32 * *y as i32).sum();
    acc.iter().sum::<i32>() + tail
}

/// A reader's copy of one model's vectors, appended to as the writer embeds.
struct Loaded {
    model: String,
    rows: Rows,
    /// Highest `vectors.id` loaded.
    last_id: i64,
    /// `vectors_epoch` when loaded: deletions bump it and force a full reload.
    epoch: i64,
    checked: Instant,
    /// Per segment: doc id → row, built for `rows` of a given length.
    maps: HashMap<SegmentId, (usize, Arc<Vec<u32>>)>,
}

/// The vectors of a reader (see [`Reader::vectors`]), loaded lazily and refreshed as searches
/// come.
#[derive(Default)]
pub struct VectorCache {
    inner: RwLock<Option<Loaded>>,
    refresh: Mutex<()>,
}

/// The vector side of one search.
pub struct Dense {
    /// Best passages by cosine, best first.
    pub top: Vec<(f32, DocAddress)>,
    /// Cosines of every scanned passage: mean and standard deviation (to standardise).
    pub mean: f32,
    /// Standard deviation (never 0).
    pub std: f32,
    /// Passages scanned (those with a vector among the filtered ones).
    pub scanned: usize,
    q: Vec<i8>,
    q_scale: f32,
    maps: Vec<Option<Arc<Vec<u32>>>>,
}

impl Dense {
    /// Standardised cosines of `addrs` (`None` for a document without a vector), all read
    /// under one lock of the cache.
    pub fn z(&self, cache: &VectorCache, addrs: &[DocAddress]) -> Vec<Option<f32>> {
        let guard = cache.inner.read().unwrap_or_else(|p| p.into_inner());
        let Some(loaded) = guard.as_ref() else {
            return vec![None; addrs.len()];
        };
        addrs
            .iter()
            .map(|addr| {
                let map = self.maps.get(addr.segment_ord as usize)?.as_ref()?;
                let row = *map.get(addr.doc_id as usize)?;
                if row == NONE || row as usize >= loaded.rows.scales.len() {
                    return None;
                }
                Some((loaded.rows.score(row, &self.q, self.q_scale) - self.mean) / self.std)
            })
            .collect()
    }
}

impl VectorCache {
    /// Brings the copy up to date with the store (at most every [`VECTOR_CHECK`]): new vectors
    /// appended, a full reload after deletions or for another model.
    fn refresh(&self, reader: &Reader, model: &str) -> Result<(), ReadError> {
        let fresh = {
            let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
            matches!(g.as_ref(), Some(l) if l.model == model && l.checked.elapsed() < VECTOR_CHECK)
        };
        if fresh {
            return Ok(());
        }
        let _one = self.refresh.lock().unwrap_or_else(|p| p.into_inner());
        let (last_id, epoch) = {
            let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
            match g.as_ref() {
                Some(l) if l.model == model => (l.last_id, l.epoch),
                _ => (0, -1),
            }
        };
        // New vectors are quantized as SQLite hands them over, into rows of their own,
        // before the write lock is taken: searches go on meanwhile.
        let dim = {
            let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
            g.as_ref().map_or(0, |l| l.rows.dim)
        };
        let (now_epoch, new, new_last) = reader.store(|s| {
            s.snapshot(|s| {
                let e = s.vectors_epoch()?;
                let from = if e == epoch { last_id } else { 0 };
                let mut new = Rows {
                    dim: if e == epoch { dim } else { 0 },
                    ..Rows::default()
                };
                let mut last = 0;
                s.vectors_after(model, from, &mut |id, key, blob| {
                    new.push_blob(key, blob);
                    last = last.max(id);
                })?;
                Ok((e, new, last))
            })
        })?;
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let reset = match g.as_ref() {
            Some(l) => l.model != model || l.epoch != now_epoch,
            None => true,
        };
        if reset {
            *g = Some(Loaded {
                model: model.to_string(),
                rows: Rows::default(),
                last_id: 0,
                epoch: now_epoch,
                checked: Instant::now(),
                maps: HashMap::new(),
            });
        }
        let l = g.as_mut().expect("set above");
        l.checked = Instant::now();
        l.rows.append(new);
        l.last_id = l.last_id.max(new_last);
        Ok(())
    }

    /// Vectors loaded for `model`.
    pub fn len(&self, model: &str) -> usize {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        match g.as_ref() {
            Some(l) if l.model == model => l.rows.scales.len(),
            _ => 0,
        }
    }

    /// Whether no vector of `model` is loaded.
    pub fn is_empty(&self, model: &str) -> bool {
        self.len(model) == 0
    }

    /// The doc → row map of every segment, (re)built for the rows loaded now.
    fn maps(&self, searcher: &Searcher) -> Vec<Option<Arc<Vec<u32>>>> {
        // Usually all built already: a shared lock then, so searches run side by side.
        {
            let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
            if let Some(l) = guard.as_ref() {
                let n = l.rows.scales.len();
                let cached: Option<Vec<_>> = searcher
                    .segment_readers()
                    .iter()
                    .map(|seg| match l.maps.get(&seg.segment_id()) {
                        Some((len, m)) if *len == n => Some(Some(m.clone())),
                        _ => None,
                    })
                    .collect();
                if let Some(maps) = cached {
                    return maps;
                }
            }
        }
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let Some(l) = guard.as_mut() else {
            return vec![None; searcher.segment_readers().len()];
        };
        let n = l.rows.scales.len();
        let mut out = Vec::new();
        let mut alive = HashMap::new();
        for seg in searcher.segment_readers() {
            let id = seg.segment_id();
            let map = match l.maps.get(&id) {
                Some((len, m)) if *len == n => Some(m.clone()),
                _ => seg.fast_fields().i64("embed_key").ok().map(|keys| {
                    let mut m = vec![NONE; seg.max_doc() as usize];
                    for (doc, slot) in m.iter_mut().enumerate() {
                        if let Some(k) = keys.first(doc as u32)
                            && let Some(row) = l.rows.by_key.get(&k)
                        {
                            *slot = *row;
                        }
                    }
                    Arc::new(m)
                }),
            };
            if let Some(m) = &map {
                alive.insert(id, (n, m.clone()));
            }
            out.push(map);
        }
        // Only the segments of the current searcher are kept.
        l.maps = alive;
        out
    }

    /// Exact scan: the cosine of `query` with every vector among `keep`'s documents; the `k`
    /// best, and the mean and spread of all of them. `None` when nothing was scanned.
    pub fn scan(
        &self,
        searcher: &Searcher,
        keep: &crate::search::filter::Keep,
        query: &[f32],
        k: usize,
    ) -> Option<Dense> {
        let maps = self.maps(searcher);
        let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let l = guard.as_ref()?;
        if l.rows.dim != query.len() || l.rows.scales.is_empty() {
            return None;
        }
        let mut q = Vec::with_capacity(query.len());
        let q_scale = quantize(query.iter().copied(), &mut q);
        let mut heap = std::collections::BinaryHeap::new();
        let (mut n, mut sum, mut sum2) = (0usize, 0f64, 0f64);
        for (ord, map) in maps.iter().enumerate() {
            let Some(map) = map else {
                continue;
            };
            let keep = keep.segment(ord);
            if keep.is_empty() {
                continue;
            }
            for (doc, &row) in map.iter().enumerate() {
                if row == NONE || !keep.contains(doc as u32) {
                    continue;
                }
                let s = l.rows.score(row, &q, q_scale);
                n += 1;
                sum += s as f64;
                sum2 += (s as f64) * (s as f64);
                heap.push(std::cmp::Reverse(Scored(s, ord as u32, doc as u32)));
                if heap.len() > k {
                    heap.pop();
                }
            }
        }
        if n == 0 {
            return None;
        }
        let mean = sum / n as f64;
        let var = (sum2 / n as f64 - mean * mean).max(0.0);
        let mut top: Vec<(f32, DocAddress)> = heap
            .into_iter()
            .map(|std::cmp::Reverse(Scored(s, o, d))| (s, DocAddress::new(o, d)))
            .collect();
        top.sort_by(|a, b| b.0.total_cmp(&a.0));
        drop(guard);
        Some(Dense {
            top,
            mean: mean as f32,
            std: (var.sqrt() as f32).max(1e-4),
            scanned: n,
            q,
            q_scale,
            maps,
        })
    }
}

/// (score, segment, doc), ordered by score.
#[derive(PartialEq)]
struct Scored(f32, u32, u32);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.cmp(&self.1))
            .then_with(|| other.2.cmp(&self.2))
    }
}

/// The reader's vectors of `model`, refreshed.
pub(crate) fn refreshed<'a>(reader: &'a Reader, model: &str) -> Result<&'a VectorCache, ReadError> {
    let cache = reader.vector_cache();
    cache.refresh(reader, model)?;
    Ok(cache)
}

/// Vector coverage of the configured model.
pub fn coverage(reader: &Reader, model: &str) -> Result<Coverage, ReadError> {
    reader.store(|s| s.vector_coverage(model))
}

/// The vectors of the model the writer embeds with, for `status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VectorStatus {
    /// Fingerprint of the model (changes with its weights, tokenizer or settings).
    pub model: String,
    /// Passages in the store.
    pub passages: u64,
    /// Passages with a vector of that model.
    pub embedded: u64,
    /// Passages still waiting (ranked by BM25 alone until embedded).
    pub pending: u64,
}

/// [`VectorStatus`], or `None` when no model ever embedded in this data directory.
pub fn status(reader: &Reader) -> Result<Option<VectorStatus>, ReadError> {
    reader.store(|s| {
        s.snapshot(|s| {
            let Some(model) = s.vector_model()? else {
                return Ok(None);
            };
            let c = s.vector_coverage(&model)?;
            Ok(Some(VectorStatus {
                model,
                passages: c.passages,
                embedded: c.embedded,
                pending: c.pending(),
            }))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_reject_torn_ones() {
        let v = vec![0.5, -1.25, 3.0e-7];
        assert_eq!(from_blob(&to_blob(&v)).unwrap(), v);
        assert!(from_blob(&[1, 2, 3]).is_none());
    }

    #[test]
    fn int8_scores_track_f32_cosines() {
        let a: Vec<f32> = (0..384)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 20.0)
            .collect();
        let b: Vec<f32> = (0..384)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 17.0)
            .collect();
        let norm = |v: &[f32]| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / n).collect::<Vec<_>>()
        };
        let (a, b) = (norm(&a), norm(&b));
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let mut rows = Rows {
            dim: 384,
            ..Rows::default()
        };
        rows.push(1, &b);
        let mut q = Vec::new();
        let qs = quantize(a.iter().copied(), &mut q);
        assert!((rows.score(0, &q, qs) - exact).abs() < 0.01);
    }

    #[test]
    fn the_key_changes_with_title_or_text() {
        let k = embed_key("Reset", "Open settings");
        assert_eq!(k, embed_key("Reset", "Open settings"));
        assert_ne!(k, embed_key("Reset ", "Open settings"));
        assert_ne!(k, embed_key("Reset", "Open settings."));
        assert_ne!(embed_key("ab", "c"), embed_key("a", "bc"));
    }
}
