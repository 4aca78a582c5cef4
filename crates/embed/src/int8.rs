//! Int8 fully connected layers for CPUs with AVX-512 VNNI.
//!
//! The f32 products already run near the FMA units' peak, and they are three
//! quarters of a forward pass; one `vpdpbusd` does 64 byte multiply-adds where
//! an f32 FMA does 16. So the layers' products run in int8 where the CPU has
//! it, as ONNX Runtime's dynamic quantization does:
//!
//! * weights: per output column, symmetric, `w ≈ s_j · q` with q in −127..127,
//!   quantized once at load;
//! * activations: per token, asymmetric, `x ≈ s_r · (a − z_r)` with a in
//!   0..255 spanning the row's [min, max] (0 included), quantized on the fly
//!   (vpdpbusd multiplies unsigned by signed bytes). A GELU output lies in
//!   [−0.17, max]: a symmetric range would leave half the codes unused;
//! * `out = s_r · s_j · (Σ_k a·q − z_r · Σ_k q[j, k]) + bias (+ residual)`, i32
//!   sums (no overflow: k · 255 · 127 < 2³¹ for k < 66,000).
//!
//! [`Int8Dense::forward`] is exact integer arithmetic plus one rounding per
//! output, so the kernel is tested against a plain-Rust evaluation of the
//! same formula ([`reference`]) on every machine that has VNNI, and that
//! formula against f32 everywhere. Layers whose sizes the kernel does not
//! tile (outputs not a multiple of 64, inputs not of 4) stay f32.

use rayon::prelude::*;

/// Output columns per block: four 16-lane vectors.
const COLS: usize = 64;
/// Tokens per kernel call (6 × 4 accumulators + 4 weight vectors + 1 broadcast
/// fit the 32 vector registers).
const ROWS: usize = 6;
/// Tokens per parallel job: each job quantizes its tokens once and reuses a
/// block of weights across all of them.
const JOB_ROWS: usize = ROWS * 8;

/// Whether this CPU runs the int8 kernel.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether a layer of these sizes can run in int8.
pub(crate) fn fits(n_in: usize, n_out: usize) -> bool {
    n_in > 0 && n_in.is_multiple_of(4) && n_in < 66_000 && n_out > 0 && n_out.is_multiple_of(COLS)
}

/// A (n_out × n_in) weight quantized per output column and packed for the
/// kernel: per block of 64 columns, per group of 4 inputs, 64 columns × 4
/// bytes (what one vpdpbusd row reads for 16 columns, four times).
pub(crate) struct Int8Dense {
    packed: Vec<i8>,
    /// s_j per output column.
    scale: Vec<f32>,
    /// Σ_k q[j, k] per output column.
    colsum: Vec<i32>,
    n_in: usize,
    n_out: usize,
}

impl Int8Dense {
    /// Quantizes a row-major (n_out × n_in) weight; `None` when the sizes do
    /// not [`fits`].
    pub(crate) fn new(weight: &[f32], n_in: usize, n_out: usize) -> Option<Self> {
        if !fits(n_in, n_out) || weight.len() != n_in * n_out {
            return None;
        }
        let mut q = vec![0i8; n_in * n_out];
        let mut scale = vec![0f32; n_out];
        let mut colsum = vec![0i32; n_out];
        for j in 0..n_out {
            let row = &weight[j * n_in..(j + 1) * n_in];
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if max > 0.0 && max.is_finite() {
                max / 127.0
            } else {
                1.0
            };
            let mut sum = 0i32;
            for (d, &v) in q[j * n_in..(j + 1) * n_in].iter_mut().zip(row) {
                *d = (v / s).round().clamp(-127.0, 127.0) as i8;
                sum += *d as i32;
            }
            scale[j] = s;
            colsum[j] = sum;
        }
        let groups = n_in / 4;
        let mut packed = vec![0i8; n_in * n_out];
        for block in 0..n_out / COLS {
            for g in 0..groups {
                for c in 0..COLS {
                    let j = block * COLS + c;
                    let dst = ((block * groups + g) * COLS + c) * 4;
                    packed[dst..dst + 4]
                        .copy_from_slice(&q[j * n_in + 4 * g..j * n_in + 4 * g + 4]);
                }
            }
        }
        Some(Self {
            packed,
            scale,
            colsum,
            n_in,
            n_out,
        })
    }

    /// `x · Wᵀ + bias (+ residual)` for `m` tokens, `x` (m × n_in), `residual`
    /// (m × n_out); with `gelu`, `gelu(x) · Wᵀ + …`. Runs on the current rayon pool.
    ///
    /// The kernel adds `bias` and `residual` as it stores each output, so
    /// every output is written once and never read back: filling the rows with
    /// `bias + residual` first cost a pass over the output (~5% of a forward
    /// pass), and a batch-wide fill had left the cache before the kernel read it.
    ///
    /// # Panics
    /// If the CPU lacks AVX-512 VNNI (check [`available`]) or the sizes are off.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        bias: &[f32],
        residual: Option<&[f32]>,
        gelu: bool,
    ) -> Vec<f32> {
        assert!(available(), "the int8 kernel needs AVX-512 VNNI");
        let (k, n) = (self.n_in, self.n_out);
        let m = x.len() / k;
        assert!(
            x.len() == m * k && bias.len() == n && residual.is_none_or(|r| r.len() == m * n),
            "sizes do not fit"
        );
        let mut out = Vec::<f32>::with_capacity(m * n);
        out.spare_capacity_mut()[..m * n]
            .par_chunks_mut(JOB_ROWS * n)
            .zip(x.par_chunks(JOB_ROWS * k))
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (job, (out, x))| {
                let first = job * JOB_ROWS * n;
                let residual = residual.map(|r| &r[first..first + out.len()]);
                let rows = x.len() / k;
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `available()` was asserted; `scratch.a` holds rows × k
                // bytes, `out` and `residual` rows × n values, `bias` n, `packed`
                // n × k bytes; the kernel writes every element of `out`.
                unsafe {
                    vnni::quantize_rows(x, k, gelu, scratch);
                    let epilogue = Epilogue {
                        bias,
                        residual,
                        out: out.as_mut_ptr() as *mut f32,
                    };
                    vnni::rows(self, &scratch.a, &scratch.sa, rows, epilogue)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (rows, out, gelu, scratch, residual);
            });
        // SAFETY: the jobs' chunks cover all m × n elements, each written by the kernel.
        unsafe { out.set_len(m * n) };
        out
    }
}

/// Where a job's products go: `out = product + bias (+ residual)`, rows of n.
#[cfg(target_arch = "x86_64")]
struct Epilogue<'a> {
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    out: *mut f32,
}

/// A job's quantized input, reused from job to job.
#[derive(Default)]
struct Scratch {
    /// The rows' bytes.
    a: Vec<u8>,
    /// (scale, zero point) per row.
    sa: Vec<(f32, i32)>,
    /// One row of `gelu(x)` while it is quantized.
    row: Vec<f32>,
}

/// Quantizes each k-long row of `x` (or of `gelu(x)`, computed a row at a
/// time) into `s`: plain Rust, the test oracle of [`vnni::quantize_rows`].
#[cfg(test)]
fn quantize_rows(x: &[f32], k: usize, gelu: bool, s: &mut Scratch) {
    let Scratch { a, sa, row } = s;
    a.clear();
    a.resize(x.len(), 0);
    sa.clear();
    for (src, dst) in x.chunks_exact(k).zip(a.chunks_exact_mut(k)) {
        let src = if gelu {
            row.clear();
            row.extend(src.iter().map(|&v| crate::gelu::gelu(v)));
            &row[..]
        } else {
            src
        };
        let (lo, hi) = min_max(src);
        let (s, inv, z) = row_scale(lo, hi);
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = quantize(v, inv, z);
        }
        sa.push((s, z as i32));
    }
}

/// A row's scale, its inverse and its zero point (a whole number in 0..=255)
/// from its range [lo, hi] (lo ≤ 0 ≤ hi).
#[inline(always)]
fn row_scale(lo: f32, hi: f32) -> (f32, f32, f32) {
    let s = if hi > lo && (hi - lo).is_finite() {
        (hi - lo) / 255.0
    } else {
        1.0
    };
    let inv = 1.0 / s;
    (s, inv, (-lo * inv).round().clamp(0.0, 255.0))
}

/// `round(v · inv) + z` clamped to a byte: adding 1.5 · 2²³ rounds to an
/// integer held in the low mantissa bits, so this vectorises (an `as` cast
/// saturates, which does not).
#[cfg(test)]
fn quantize(v: f32, inv: f32, z: f32) -> u8 {
    const ROUND: f32 = 12_582_912.0;
    let t = (v * inv + z).clamp(0.0, 255.0) + ROUND;
    (t.to_bits() & 0xFF) as u8
}

/// The smallest and largest value with 0 (NaNs ignored), so 0 is exact.
/// 64 lanes: independent vector minima and maxima per step, so the loop is
/// not bound by one chain of latencies.
#[cfg(test)]
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([0f32; 64], [0f32; 64]);
    let mut chunks = x.chunks_exact(64);
    for c in &mut chunks {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(c) {
            *l = if v < *l { v } else { *l };
            *h = if v > *h { v } else { *h };
        }
    }
    let rest = chunks.remainder();
    let lo = rest
        .iter()
        .chain(&lo)
        .fold(0f32, |m, &v| if v < m { v } else { m });
    let hi = rest
        .iter()
        .chain(&hi)
        .fold(0f32, |m, &v| if v > m { v } else { m });
    (lo, hi)
}

/// The same formula in plain Rust: the kernel's test oracle.
#[cfg(test)]
pub(crate) fn reference(layer: &Int8Dense, x: &[f32], out: &mut [f32]) {
    let (k, n) = (layer.n_in, layer.n_out);
    let mut s = Scratch::default();
    quantize_rows(x, k, false, &mut s);
    let (a, sa) = (&s.a, &s.sa);
    let groups = k / 4;
    for (r, &(s_r, z_r)) in sa.iter().enumerate() {
        for j in 0..n {
            let (block, c) = (j / COLS, j % COLS);
            let mut acc = 0i32;
            for g in 0..groups {
                let w = ((block * groups + g) * COLS + c) * 4;
                for i in 0..4 {
                    acc += a[r * k + 4 * g + i] as i32 * layer.packed[w + i] as i32;
                }
            }
            out[r * n + j] += (acc - z_r * layer.colsum[j]) as f32 * (s_r * layer.scale[j]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{COLS, Epilogue, Int8Dense, ROWS, Scratch};
    use std::arch::x86_64::*;

    /// Quantizes each k-long row of `x` (or of `gelu(x)`) into `s`, as
    /// [`super::quantize_rows`] does: one pass takes the row's range (and
    /// computes GELU into `s.row` on the way), one writes the bytes. Written
    /// with intrinsics because LLVM kept the plain loop's 64 running minima
    /// and maxima in memory, and GELU's division became a reciprocal.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn quantize_rows(x: &[f32], k: usize, gelu: bool, s: &mut Scratch) {
        let Scratch { a, sa, row } = s;
        let rows = x.len() / k;
        a.clear();
        a.reserve(x.len());
        sa.clear();
        row.clear();
        if gelu {
            row.resize(k, 0.0);
        }
        let body = k - k % 16;
        let tail = ((1u32 << (k % 16)) - 1) as __mmask16;
        // SAFETY: every access is within row r of `x` (k values), `row` (k)
        // or the first rows × k bytes of `a`'s capacity; the tail's masked
        // loads and stores touch only its k % 16 lanes.
        unsafe {
            for r in 0..rows {
                let src = x.as_ptr().add(r * k);
                let zero = _mm512_setzero_ps();
                let (mut lo, mut hi) = (zero, zero);
                // `min_ps(v, lo)` returns lo when v is NaN: NaNs are ignored,
                // and the masked tail's zeros change nothing (0 is in range).
                let data = if gelu {
                    let dst = row.as_mut_ptr();
                    for c in (0..body).step_by(16) {
                        let g = gelu16(_mm512_loadu_ps(src.add(c)));
                        _mm512_storeu_ps(dst.add(c), g);
                        (lo, hi) = (_mm512_min_ps(g, lo), _mm512_max_ps(g, hi));
                    }
                    if body < k {
                        let g = gelu16(_mm512_maskz_loadu_ps(tail, src.add(body)));
                        _mm512_mask_storeu_ps(dst.add(body), tail, g);
                        (lo, hi) = (_mm512_min_ps(g, lo), _mm512_max_ps(g, hi));
                    }
                    dst as *const f32
                } else {
                    for c in (0..body).step_by(16) {
                        let v = _mm512_loadu_ps(src.add(c));
                        (lo, hi) = (_mm512_min_ps(v, lo), _mm512_max_ps(v, hi));
                    }
                    if body < k {
                        let v = _mm512_maskz_loadu_ps(tail, src.add(body));
                        (lo, hi) = (_mm512_min_ps(v, lo), _mm512_max_ps(v, hi));
                    }
                    src
                };
                let (s, inv, z) =
                    super::row_scale(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
                let (vinv, vz, top) = (
                    _mm512_set1_ps(inv),
                    _mm512_set1_ps(z),
                    _mm512_set1_ps(255.0),
                );
                // max_ps(t, 0) turns a NaN into 0, as the oracle's bit trick does.
                let code = |v: __m512| {
                    let t = _mm512_add_ps(_mm512_mul_ps(v, vinv), vz);
                    _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(t, zero), top))
                };
                let dst = a.as_mut_ptr().add(r * k);
                for c in (0..body).step_by(16) {
                    let q = code(_mm512_loadu_ps(data.add(c)));
                    _mm_storeu_si128(dst.add(c) as *mut __m128i, _mm512_cvtepi32_epi8(q));
                }
                if body < k {
                    let q = code(_mm512_maskz_loadu_ps(tail, data.add(body)));
                    _mm512_mask_cvtepi32_storeu_epi8(dst.add(body) as *mut i8, tail, q);
                }
                sa.push((s, z as i32));
            }
            a.set_len(rows * k);
        }
    }

    /// [`crate::gelu::gelu`] on 16 lanes, its division by a reciprocal
    /// estimate refined by one Newton step (≈ 2⁻²⁸ relative error, below f32's
    /// rounding; the byte it is quantized to is the same but for rare ties).
    /// z is capped at 10, where erfc(z) < 10⁻⁴⁴, so p¹⁶ stays finite.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn gelu16(x: __m512) -> __m512 {
        use crate::gelu::A;
        let z = _mm512_abs_ps(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
        ));
        let z = _mm512_min_ps(z, _mm512_set1_ps(10.0));
        let mut p = _mm512_set1_ps(A[5]);
        for a in A[..5].iter().rev() {
            p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(*a));
        }
        let p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.0));
        let p2 = _mm512_mul_ps(p, p);
        let p4 = _mm512_mul_ps(p2, p2);
        let p8 = _mm512_mul_ps(p4, p4);
        let p16 = _mm512_mul_ps(p8, p8);
        let r = _mm512_rcp14_ps(p16);
        let tail = _mm512_mul_ps(r, _mm512_fnmadd_ps(p16, r, _mm512_set1_ps(2.0)));
        // 1 + erf(x/√2): erfc(z) for x < 0, 2 − erfc(z) otherwise.
        let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
        let one_plus_erf =
            _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0), tail), tail);
        _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5), x), one_plus_erf)
    }

    /// All column blocks for `rows` quantized tokens.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn rows(
        layer: &Int8Dense,
        a: &[u8],
        sa: &[(f32, i32)],
        rows: usize,
        e: Epilogue,
    ) {
        // SAFETY: the caller checked the CPU and that `e.out` (and
        // `e.residual`) hold rows × n values; other sizes as debug-asserted.
        unsafe {
            let (k, n) = (layer.n_in, layer.n_out);
            debug_assert!(a.len() == rows * k && sa.len() == rows && e.bias.len() == n);
            debug_assert!(e.residual.is_none_or(|r| r.len() == rows * n));
            for block in 0..n / COLS {
                let w = layer.packed.as_ptr().add(block * k * COLS);
                let mut r0 = 0;
                while r0 < rows {
                    let a = a.as_ptr().add(r0 * k);
                    let at = r0 * n + block * COLS;
                    let t = Tile {
                        o: e.out.add(at),
                        res: e.residual.map(|r| r.as_ptr().add(at)),
                        bias: e.bias.as_ptr().add(block * COLS),
                        n,
                    };
                    let sa = &sa[r0..];
                    match rows - r0 {
                        1 => tile::<1>(layer, block, w, a, k, sa, t),
                        2 => tile::<2>(layer, block, w, a, k, sa, t),
                        3 => tile::<3>(layer, block, w, a, k, sa, t),
                        4 => tile::<4>(layer, block, w, a, k, sa, t),
                        5 => tile::<5>(layer, block, w, a, k, sa, t),
                        _ => tile::<ROWS>(layer, block, w, a, k, sa, t),
                    }
                    r0 += ROWS;
                }
            }
        }
    }

    /// A tile's outputs: R rows of stride n from `o`, `res` laid out alike,
    /// and the 64 biases of its columns.
    #[derive(Clone, Copy)]
    struct Tile {
        o: *mut f32,
        res: Option<*const f32>,
        bias: *const f32,
        n: usize,
    }

    /// R tokens × 64 columns: `o[r, c] = s_r · s_c · (Σ a·q − z_r · colsum_c)
    /// + bias_c (+ res[r, c])`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn tile<const R: usize>(
        layer: &Int8Dense,
        block: usize,
        w: *const i8,
        a: *const u8,
        k: usize,
        sa: &[(f32, i32)],
        t: Tile,
    ) {
        // SAFETY: `w` holds k/4 groups of 256 bytes, `a` R rows of k bytes,
        // `t.o` and `t.res` R rows (stride n) of 64 values, `t.bias` 64.
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); 4]; R];
            for g in 0..k / 4 {
                let wg = w.add(g * COLS * 4);
                let wv = [
                    _mm512_loadu_si512(wg as *const _),
                    _mm512_loadu_si512(wg.add(64) as *const _),
                    _mm512_loadu_si512(wg.add(128) as *const _),
                    _mm512_loadu_si512(wg.add(192) as *const _),
                ];
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av =
                        _mm512_set1_epi32((a.add(r * k + 4 * g) as *const i32).read_unaligned());
                    for (c, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_dpbusd_epi32(*acc, av, wv[c]);
                    }
                }
            }
            let col0 = block * COLS;
            for (r, acc) in acc.iter().enumerate() {
                let (s_r, z_r) = sa[r];
                let (s_r, z_r) = (_mm512_set1_ps(s_r), _mm512_set1_epi32(z_r));
                for (c, acc) in acc.iter().enumerate() {
                    let j = col0 + c * 16;
                    let colsum = _mm512_loadu_si512(layer.colsum.as_ptr().add(j) as *const _);
                    let off = _mm512_mullo_epi32(z_r, colsum);
                    let s = _mm512_mul_ps(s_r, _mm512_loadu_ps(layer.scale.as_ptr().add(j)));
                    let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(*acc, off));
                    let at = r * t.n + c * 16;
                    let mut add = _mm512_loadu_ps(t.bias.add(c * 16));
                    if let Some(res) = t.res {
                        add = _mm512_add_ps(add, _mm512_loadu_ps(res.add(at)));
                    }
                    _mm512_storeu_ps(t.o.add(at), _mm512_fmadd_ps(v, s, add));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(len: usize, seed: u64, spread: f32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * spread
            })
            .collect()
    }

    fn f32_product(w: &[f32], x: &[f32], k: usize, n: usize) -> Vec<f32> {
        x.chunks_exact(k)
            .flat_map(|row| {
                (0..n).map(move |j| row.iter().zip(&w[j * k..]).map(|(a, b)| a * b).sum::<f32>())
            })
            .collect()
    }

    #[test]
    fn sizes_it_does_not_tile_stay_f32() {
        assert!(fits(384, 1152) && fits(1536, 384));
        assert!(!fits(384, 100) && !fits(30, 64) && !fits(0, 64));
        assert!(Int8Dense::new(&[0.0; 30 * 64], 30, 64).is_none());
    }

    #[test]
    fn quantize_rounds_to_nearest_byte_from_the_zero_point() {
        assert_eq!(quantize(0.0, 1.0, 128.0), 128);
        assert_eq!(quantize(127.0, 1.0, 128.0), 255);
        assert_eq!(quantize(-128.0, 1.0, 128.0), 0);
        assert_eq!(quantize(-1000.0, 1.0, 128.0), 0, "clamped");
        assert_eq!(quantize(1000.0, 1.0, 0.0), 255, "clamped");
        assert_eq!(quantize(2.4, 1.0, 128.0), 130);
        assert_eq!(quantize(-2.6, 1.0, 128.0), 125);
        assert_eq!(quantize(0.0, 1.0, 7.0), 7, "zero is exact");
    }

    /// A row in [−0.17, 4] (a GELU output) uses the whole byte: its zero
    /// point sits near the bottom, not at 128.
    #[test]
    fn rows_use_the_whole_byte() {
        let x: Vec<f32> = (0..64).map(|i| -0.17 + 4.17 * i as f32 / 63.0).collect();
        let mut q = Scratch::default();
        quantize_rows(&x, 64, false, &mut q);
        let a = &q.a;
        assert_eq!((a[0], a[63]), (0, 255));
        let (s, z) = q.sa[0];
        assert!((z - 10).abs() <= 1, "zero point {z}");
        for (&v, &q) in x.iter().zip(a) {
            assert!((s * (q as i32 - z) as f32 - v).abs() <= s / 2.0 + 1e-6);
        }
    }

    /// The AVX-512 quantizer against the plain one, on widths with and
    /// without a 16-lane tail and a NaN: the same scales and bytes; with GELU
    /// (whose reciprocal rounds differently), within one code, rarely.
    #[test]
    fn kernel_quantizer_matches_the_plain_one() {
        if !available() {
            eprintln!("no AVX-512 VNNI here: the kernel is not used on this CPU");
            return;
        }
        for (k, gelu) in [(384, false), (100, false), (1536, true), (100, true)] {
            let mut x = random(7 * k, 11 + k as u64, 8.0);
            x[3] = f32::NAN;
            let (mut ours, mut theirs) = (Scratch::default(), Scratch::default());
            // SAFETY: `available()` was checked.
            unsafe { vnni::quantize_rows(&x, k, gelu, &mut ours) };
            quantize_rows(&x, k, gelu, &mut theirs);
            assert_eq!(ours.a.len(), theirs.a.len(), "k={k}");
            assert_eq!(ours.a[3], theirs.a[3], "k={k}: NaN");
            if !gelu {
                assert_eq!(ours.a, theirs.a, "k={k}");
                assert_eq!(ours.sa, theirs.sa, "k={k}");
                continue;
            }
            for (&(s1, z1), &(s2, z2)) in ours.sa.iter().zip(&theirs.sa) {
                assert!(
                    (s1 - s2).abs() <= 1e-6 * s2 && (z1 - z2).abs() <= 1,
                    "k={k}"
                );
            }
            let off: Vec<i32> = ours
                .a
                .iter()
                .zip(&theirs.a)
                .map(|(&a, &b)| (a as i32 - b as i32).abs())
                .filter(|&d| d > 0)
                .collect();
            assert!(
                off.iter().all(|&d| d == 1) && off.len() * 200 <= x.len(),
                "k={k}: {} codes differ, by up to {:?}",
                off.len(),
                off.iter().max()
            );
        }
    }

    /// The formula (run everywhere) is within int8's rounding of f32.
    #[test]
    fn reference_is_close_to_f32() {
        let (m, k, n) = (13, 96, 128);
        let w = random(n * k, 1, 0.2);
        let x = random(m * k, 2, 4.0);
        let layer = Int8Dense::new(&w, k, n).unwrap();
        let mut out = vec![0f32; m * n];
        reference(&layer, &x, &mut out);
        let exact = f32_product(&w, &x, k, n);
        let (mut err, mut norm) = (0f32, 0f32);
        for (a, b) in out.iter().zip(&exact) {
            err += (a - b) * (a - b);
            norm += b * b;
        }
        let rel = (err / norm).sqrt();
        assert!(rel < 0.02, "relative error {rel}");
    }

    /// The kernel computes exactly the formula (up to float summation order
    /// of one product per output) for every tail size of a tile.
    #[test]
    fn kernel_matches_reference() {
        if !available() {
            eprintln!("no AVX-512 VNNI here: the kernel is not used on this CPU");
            return;
        }
        let (k, n) = (1536, 192);
        let w = random(n * k, 3, 0.1);
        let layer = Int8Dense::new(&w, k, n).unwrap();
        let bias = random(n, 9, 1.0);
        for m in [1, 5, 6, 7, 48, 49, 100] {
            let x = random(m * k, 4 + m as u64, 2.0);
            let residual = random(m * n, 5, 1.0);
            let ours = layer.forward(&x, &bias, Some(&residual), false);
            let mut theirs: Vec<f32> = residual
                .chunks(n)
                .flat_map(|r| r.iter().zip(&bias).map(|(a, b)| a + b))
                .collect();
            reference(&layer, &x, &mut theirs);
            let plain = layer.forward(&x, &bias, None, false);
            for ((p, o), r) in plain.iter().zip(&ours).zip(&residual) {
                assert!(
                    (p + r - o).abs() <= 1e-5 * (1.0 + o.abs()),
                    "{p} + {r} vs {o}"
                );
            }
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "m={m} [{i}]: {a} vs {b}"
                );
            }
        }
    }

    /// With `gelu`, the layer's input is activated row by row as it is
    /// quantized: the same as activating the whole input first.
    #[test]
    fn gelu_input_equals_activating_first() {
        if !available() {
            eprintln!("no AVX-512 VNNI here: the kernel is not used on this CPU");
            return;
        }
        let (m, k, n) = (50, 256, 128);
        let w = random(n * k, 6, 0.1);
        let layer = Int8Dense::new(&w, k, n).unwrap();
        let x = random(m * k, 7, 6.0);
        let bias = random(n, 8, 1.0);
        let fused = layer.forward(&x, &bias, None, true);
        let first = layer.forward(&crate::gelu::apply(&x), &bias, None, false);
        for (a, b) in fused.iter().zip(&first) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
