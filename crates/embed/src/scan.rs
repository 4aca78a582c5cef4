//! Exact top-k search by dot product over L2-normalised vectors.
//!
//! Two stores, both flat row-major buffers:
//! * [`top_k_f32`] over `&[f32]` (`n × dim`), 4 bytes per dimension;
//! * [`Int8Vectors`]: each vector scaled by its own `max |x| / 127` and rounded
//!   to `i8` (1 byte per dimension + one `f32` scale); the query is quantised
//!   the same way and scored with an integer dot product.
//!
//! The inner loops are plain `chunks_exact` loops with several accumulators
//! that LLVM vectorises. On x86-64 the scan is compiled twice, for the
//! baseline (SSE2) and for AVX2, and picks AVX2 at run time when the CPU has
//! it, so no `-C target-cpu` is needed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One search result: row index in the store and its dot-product score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub index: usize,
    pub score: f32,
}

/// Min-heap entry: the worst kept hit is on top. Ties prefer the lower index,
/// so results are deterministic.
struct Worst(Hit);

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.index.cmp(&other.0.index))
    }
}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}

/// Keeps the `k` best hits seen.
struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    #[inline(always)]
    fn push(&mut self, index: usize, score: f32) {
        if self.heap.len() < self.k {
            self.heap.push(Worst(Hit { index, score }));
        } else if let Some(worst) = self.heap.peek()
            && score > worst.0.score
        {
            self.heap.pop();
            self.heap.push(Worst(Hit { index, score }));
        }
    }

    fn into_sorted(self) -> Vec<Hit> {
        // into_sorted_vec is ascending by Ord, i.e. best hit first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

/// Dot product of two equal-length `f32` slices.
#[inline(always)]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Dot product of two equal-length `i8` slices, accumulated in `i32`
/// (exact for any `dim` below 2^17).
#[inline(always)]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 32;
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: i32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x as i32 * y as i32)
        .sum();
    let mut acc = [0i32; LANES];
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    acc.iter().sum::<i32>() + tail
}

#[inline(always)]
fn scan_f32(vectors: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<Hit> {
    let mut top = TopK::new(k);
    for (i, v) in vectors.chunks_exact(dim).enumerate() {
        top.push(i, dot_f32(v, query));
    }
    top.into_sorted()
}

#[inline(always)]
fn scan_i8(codes: &[i8], scales: &[f32], dim: usize, query: &[i8], k: usize) -> Vec<Hit> {
    let mut top = TopK::new(k);
    for (i, (v, &s)) in codes.chunks_exact(dim).zip(scales).enumerate() {
        top.push(i, dot_i8(v, query) as f32 * s);
    }
    top.into_sorted()
}

/// Which instruction set the scan loops were compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// The build's target (SSE2 for the default x86-64 target).
    Baseline,
    /// AVX2 (x86-64 only, chosen at run time).
    Avx2,
}

impl Simd {
    /// The best level this CPU supports.
    pub fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
        Simd::Baseline
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_f32_avx2(vectors: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<Hit> {
    scan_f32(vectors, dim, query, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_i8_avx2(codes: &[i8], scales: &[f32], dim: usize, query: &[i8], k: usize) -> Vec<Hit> {
    scan_i8(codes, scales, dim, query, k)
}

/// The `k` rows of `vectors` (`n × dim`, row-major) with the highest dot
/// product with `query`, best first.
pub fn top_k_f32(vectors: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<Hit> {
    top_k_f32_with(Simd::detect(), vectors, dim, query, k)
}

/// [`top_k_f32`] with an explicit instruction set (for benchmarks).
///
/// # Panics
/// If `query.len() != dim` or `simd` is not supported by this CPU.
pub fn top_k_f32_with(
    simd: Simd,
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
) -> Vec<Hit> {
    assert_eq!(query.len(), dim, "query length must equal dim");
    match simd {
        Simd::Baseline => scan_f32(vectors, dim, query, k),
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => {
            assert!(
                std::arch::is_x86_feature_detected!("avx2"),
                "CPU lacks AVX2"
            );
            // SAFETY: AVX2 support was just checked.
            unsafe { scan_f32_avx2(vectors, dim, query, k) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Simd::Avx2 => panic!("AVX2 exists only on x86-64"),
    }
}

/// Vectors stored as `i8` codes with one `f32` scale each (4× smaller than f32).
#[derive(Debug, Clone, Default)]
pub struct Int8Vectors {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

/// Symmetric per-vector quantisation: `x ≈ code * scale`, `scale = max|x| / 127`.
pub fn quantize_i8(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

impl Int8Vectors {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            codes: Vec::new(),
            scales: Vec::new(),
        }
    }

    /// Quantises every row of `vectors` (`n × dim`).
    pub fn from_f32(vectors: &[f32], dim: usize) -> Self {
        let mut s = Self::new(dim);
        s.codes.reserve(vectors.len());
        for v in vectors.chunks_exact(dim) {
            s.push(v);
        }
        s
    }

    /// Appends one vector.
    ///
    /// # Panics
    /// If `v.len() != dim`.
    pub fn push(&mut self, v: &[f32]) {
        assert_eq!(v.len(), self.dim, "vector length must equal dim");
        let scale = quantize_i8(v, &mut self.codes);
        self.scales.push(scale);
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `k` rows with the highest (approximate) dot product with `query`,
    /// best first. Scores are in the units of the f32 dot product.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<Hit> {
        self.top_k_with(Simd::detect(), query, k)
    }

    /// [`Int8Vectors::top_k`] with an explicit instruction set (for benchmarks).
    pub fn top_k_with(&self, simd: Simd, query: &[f32], k: usize) -> Vec<Hit> {
        assert_eq!(query.len(), self.dim, "query length must equal dim");
        let mut q = Vec::with_capacity(self.dim);
        let qs = quantize_i8(query, &mut q);
        let mut hits = match simd {
            Simd::Baseline => scan_i8(&self.codes, &self.scales, self.dim, &q, k),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => {
                assert!(
                    std::arch::is_x86_feature_detected!("avx2"),
                    "CPU lacks AVX2"
                );
                // SAFETY: AVX2 support was just checked.
                unsafe { scan_i8_avx2(&self.codes, &self.scales, self.dim, &q, k) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Simd::Avx2 => panic!("AVX2 exists only on x86-64"),
        };
        for h in &mut hits {
            h.score *= qs;
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                })
                .collect();
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            out.extend(v.iter().map(|a| a / norm));
        }
        out
    }

    fn naive(vectors: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<usize> {
        let mut all: Vec<(usize, f32)> = vectors
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, v)| (i, v.iter().zip(q).map(|(a, b)| a * b).sum()))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.into_iter().take(k).map(|(i, _)| i).collect()
    }

    #[test]
    fn f32_matches_naive_on_every_level() {
        let dim = 37; // not a multiple of the lane count
        let v = rows(500, dim, 1);
        let q = &rows(1, dim, 2)[..];
        let expected = naive(&v, dim, q, 10);
        for simd in [Simd::Baseline, Simd::detect()] {
            let got: Vec<usize> = top_k_f32_with(simd, &v, dim, q, 10)
                .iter()
                .map(|h| h.index)
                .collect();
            assert_eq!(got, expected, "{simd:?}");
        }
    }

    #[test]
    fn hits_are_sorted_and_k_is_capped() {
        let dim = 16;
        let v = rows(5, dim, 3);
        let hits = top_k_f32(&v, dim, &v[..dim], 10);
        assert_eq!(hits.len(), 5);
        assert_eq!(hits[0].index, 0);
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(top_k_f32(&v, dim, &v[..dim], 0).is_empty());
    }

    #[test]
    fn int8_scores_track_f32() {
        let dim = 384;
        let v = rows(2000, dim, 4);
        let store = Int8Vectors::from_f32(&v, dim);
        assert_eq!(store.len(), 2000);
        let q = &v[7 * dim..8 * dim];
        for simd in [Simd::Baseline, Simd::detect()] {
            let hits = store.top_k_with(simd, q, 5);
            assert_eq!(hits[0].index, 7, "{simd:?}");
            assert!((hits[0].score - 1.0).abs() < 0.02, "{}", hits[0].score);
            for h in &hits {
                let exact = dot_f32(&v[h.index * dim..(h.index + 1) * dim], q);
                assert!((h.score - exact).abs() < 0.02, "{} vs {exact}", h.score);
            }
        }
    }

    #[test]
    fn dot_i8_is_exact() {
        let a: Vec<i8> = (0..100).map(|i| (i as i8).wrapping_mul(7)).collect();
        let b: Vec<i8> = (0..100).map(|i| 127 - i as i8).collect();
        let want: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
        assert_eq!(dot_i8(&a, &b), want);
    }
}
