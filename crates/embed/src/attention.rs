//! Self-attention over each text's real tokens, as one candle op.
//!
//! The input is the fused query|key|value projection, (rows, len, 3 × hidden),
//! query already scaled by `1/sqrt(head_dim)`. Every (text, head) pair is an
//! independent job on the rayon pool: two small matrix products read the
//! projection in place through gemm's strides (no permuted copies) around a
//! softmax whose `exp` vectorises. Built from candle ops instead, the same
//! work took a loop of ~10 tensor ops per text, each allocating its result and
//! splitting a few microseconds of work over the pool, and a scalar libm `exp`
//! per attention score (~7% of a forward pass on its own).
//!
//! Padded positions (beyond a text's length) get a zero context, as before:
//! callers pool under the mask, so padding never changes a vector.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::cpu::{contiguous_f32, matmul};

/// The attention context of every text, (rows, len, hidden).
pub(crate) fn attention(qkv: &Tensor, heads: usize, lengths: &[usize]) -> Result<Tensor> {
    qkv.apply_op1_no_bwd(&Attention { heads, lengths })
}

struct Attention<'a> {
    heads: usize,
    lengths: &'a [usize],
}

/// A raw pointer the jobs share; each job writes a disjoint set of elements.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: jobs write disjoint (text, head) blocks of the output, and the
// buffer outlives the parallel loop.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// A method, so closures capture the whole (Send) wrapper, not its field.
    fn get(self) -> *mut f32 {
        self.0
    }
}

impl CustomOp1 for Attention<'_> {
    fn name(&self) -> &'static str {
        "helpdex-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout, "helpdex-attention")?;
        let (rows, len, h3) = layout.shape().dims3()?;
        let heads = self.heads;
        if h3 % 3 != 0 || heads == 0 || (h3 / 3) % heads != 0 {
            candle_core::bail!(
                "helpdex-attention: width {h3} is not 3 × heads ({heads}) × head_dim"
            )
        }
        if self.lengths.len() != rows || self.lengths.iter().any(|&n| n > len) {
            candle_core::bail!("helpdex-attention: lengths do not fit ({rows}, {len})")
        }
        let h = h3 / 3;
        let hd = h / heads;
        let mut out = vec![0f32; rows * len * h];
        let out_ptr = OutPtr(out.as_mut_ptr());
        let kernel = avx512::fits(hd);
        (0..rows * heads).into_par_iter().for_each_init(
            || (Vec::new(), Vec::new()),
            |(scores, kt), job| {
                let (row, head) = (job / heads, job % heads);
                let n = self.lengths[row];
                if n == 0 {
                    return;
                }
                let text = &src[row * len * h3..(row * len + n) * h3];
                #[cfg(target_arch = "x86_64")]
                if kernel {
                    // SAFETY: `fits` checked the CPU and head_dim; `text` holds n
                    // tokens of 3h values, and this job's block of `out` is n rows
                    // (stride h) of hd values from column head·hd of text `row`.
                    unsafe {
                        let dst = out_ptr.get().add(row * len * h + head * hd);
                        avx512::head(text, h, head * hd, hd, dst, scores, kt);
                    }
                    return;
                }
                scores.clear();
                scores.resize(n * n, 0f32);
                // SAFETY: every pointer + stride below stays inside `text`
                // (n tokens of 3h values), `scores` (n × n) or this job's block of
                // `out` (n tokens × head_dim values at column head·hd of a text's
                // rows); gemm reads and writes nothing else.
                unsafe {
                    let q = text.as_ptr().add(head * hd);
                    let k = text.as_ptr().add(h + head * hd);
                    let v = text.as_ptr().add(2 * h + head * hd);
                    // scores (n × n) = Q (n × hd) · Kᵀ (hd × n)
                    matmul(
                        (n, n, hd),
                        scores.as_mut_ptr(),
                        n,
                        false,
                        q,
                        h3,
                        k,
                        (1, h3),
                        Parallelism::None,
                    );
                    softmax_rows(scores, n);
                    // context (n × hd) = P (n × n) · V (n × hd), into the output rows.
                    let dst = out_ptr.get().add(row * len * h + head * hd);
                    matmul(
                        (n, hd, n),
                        dst,
                        h,
                        false,
                        scores.as_ptr(),
                        n,
                        v,
                        (h3, 1),
                        Parallelism::None,
                    );
                }
            },
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, len, h))))
    }
}

/// Softmax of each `width`-long row of `x`, in place.
fn softmax_rows(x: &mut [f32], width: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F support was just checked.
            return unsafe { softmax_rows_avx512(x, width) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: AVX2 and FMA support were just checked.
            return unsafe { softmax_rows_avx2(x, width) };
        }
    }
    softmax_rows_portable(x, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn softmax_rows_avx512(x: &mut [f32], width: usize) {
    softmax_rows_portable(x, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_rows_avx2(x: &mut [f32], width: usize) {
    softmax_rows_portable(x, width)
}

#[inline(always)]
fn softmax_rows_portable(x: &mut [f32], width: usize) {
    // Reductions run over 16 independent lanes: a single float accumulator
    // is a serial dependency LLVM may not reorder, so it would not vectorise.
    const L: usize = 16;
    for row in x.chunks_exact_mut(width) {
        let mut lanes = [f32::NEG_INFINITY; L];
        let mut chunks = row.chunks_exact(L);
        for c in &mut chunks {
            for (m, &v) in lanes.iter_mut().zip(c) {
                *m = m.max(v);
            }
        }
        let max = chunks
            .remainder()
            .iter()
            .chain(&lanes)
            .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / crate::cpu::lane_sum(row, |v| v);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Replaces each score x by `e^(x − max)` and returns their sum (16 lanes, as
/// [`crate::cpu::lane_sum`]): softmax without its division, which the
/// attention kernel applies to the context instead.
#[inline(always)]
fn exp_sum(x: &mut [f32], max: f32) -> f32 {
    const L: usize = 16;
    let mut lanes = [0f32; L];
    let mut chunks = x.chunks_exact_mut(L);
    for c in &mut chunks {
        for (s, v) in lanes.iter_mut().zip(c) {
            *v = exp(*v - max);
            *s += *v;
        }
    }
    let mut sum = 0f32;
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        sum += *v;
    }
    sum + lanes.iter().sum::<f32>()
}

/// `e^x`, relative error below 2·10⁻⁷ (Cephes `expf`: x = n·ln 2 + r with
/// |r| ≤ ln 2 / 2, a degree-6 polynomial for e^r, 2^n from the exponent
/// bits). Branch-free, so LLVM vectorises the loops that call it; inputs
/// below −87.3 give ~0 and above 88.3 saturate (softmax only passes x ≤ 0).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5·2²³ rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from n's bits: n + 127 + 2²³ holds n + 127 in its low mantissa
    // bits, which the shift moves into the exponent field. (`n as i32`
    // saturates, which LLVM does not vectorise.)
    let scale = f32::from_bits((n + (127.0 + 8_388_608.0)).to_bits() << 23);
    e * scale
}

/// Attention for one (text, head) in AVX-512 registers, for head_dim a
/// multiple of 16 up to 64 (MiniLM and e5-small: 32). gemm's general kernels
/// pack both operands on every call, which on these 128 × 128 × 32 products
/// cost as much as the arithmetic; here K is transposed once per job and
/// every other operand is read where it lies. Each step takes 8 query rows
/// (4 for head_dim 48 and 64, whose values fill more registers): their scores'
/// maxima are taken from the registers as the scores are stored, the exponents
/// are summed as they are written, and the context rows are divided by the sum
/// once at the end, so softmax costs one pass over the scores instead of three.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    pub(super) fn fits(hd: usize) -> bool {
        matches!(hd, 16 | 32 | 48 | 64) && std::arch::is_x86_feature_detected!("avx512f")
    }

    /// `text`: n tokens × 3h (query | key | value); the head's columns start
    /// at `col` in each third. Writes the n × hd context to `out` (row stride h).
    ///
    /// # Safety
    /// AVX-512F present, `fits(hd)`, and `out` valid for n rows of stride h.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn head(
        text: &[f32],
        h: usize,
        col: usize,
        hd: usize,
        out: *mut f32,
        p: &mut Vec<f32>,
        kt: &mut Vec<f32>,
    ) {
        // SAFETY: as the caller guarantees.
        unsafe {
            match hd / 16 {
                1 => head_d::<1, 8>(text, h, col, out, p, kt),
                2 => head_d::<2, 8>(text, h, col, out, p, kt),
                3 => head_d::<3, 4>(text, h, col, out, p, kt),
                _ => head_d::<4, 4>(text, h, col, out, p, kt),
            }
        }
    }

    /// Head size 16·D, R query rows per step (R × 2 score accumulators and
    /// R × D context accumulators stay within the 32 registers).
    #[target_feature(enable = "avx512f")]
    unsafe fn head_d<const D: usize, const R: usize>(
        text: &[f32],
        h: usize,
        col: usize,
        out: *mut f32,
        p: &mut Vec<f32>,
        kt: &mut Vec<f32>,
    ) {
        let (h3, hd) = (3 * h, 16 * D);
        let n = text.len() / h3;
        // Keys padded to whole pairs of 16-lane blocks; padded scores are
        // computed from zeros and never read.
        let np = n.div_ceil(32) * 32;
        kt.clear();
        kt.resize(hd * np, 0.0);
        for j in 0..n {
            let key = &text[j * h3 + h + col..][..hd];
            for (d, &x) in key.iter().enumerate() {
                kt[d * np + j] = x;
            }
        }
        p.clear();
        p.resize(R * np, 0.0);
        let (q0, v0) = (text[col..].as_ptr(), text[2 * h + col..].as_ptr());
        let mut i = 0;
        while i < n {
            // Rows past the end repeat the last one and are not stored.
            let row = |r: usize| (i + r).min(n - 1);
            // SAFETY: rows < n, columns < hd of a 3h-wide token; kt holds hd × np,
            // p R × np; out n rows of stride h.
            unsafe {
                let mut max = [_mm512_set1_ps(f32::NEG_INFINITY); R];
                for jb in (0..np).step_by(32) {
                    let mut acc = [[_mm512_setzero_ps(); 2]; R];
                    for d in 0..hd {
                        let k = kt.as_ptr().add(d * np + jb);
                        let kv = [_mm512_loadu_ps(k), _mm512_loadu_ps(k.add(16))];
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let q = _mm512_set1_ps(*q0.add(row(r) * h3 + d));
                            acc[0] = _mm512_fmadd_ps(q, kv[0], acc[0]);
                            acc[1] = _mm512_fmadd_ps(q, kv[1], acc[1]);
                        }
                    }
                    // Lanes of real keys: the padded ones hold 0, not a score.
                    let live = |at: usize| -> __mmask16 {
                        let left = n.saturating_sub(at).min(16);
                        ((1u32 << left) - 1) as __mmask16
                    };
                    let (m0, m1) = (live(jb), live(jb + 16));
                    for (r, acc) in acc.iter().enumerate() {
                        let dst = p.as_mut_ptr().add(r * np + jb);
                        _mm512_storeu_ps(dst, acc[0]);
                        _mm512_storeu_ps(dst.add(16), acc[1]);
                        max[r] = _mm512_mask_max_ps(max[r], m0, max[r], acc[0]);
                        max[r] = _mm512_mask_max_ps(max[r], m1, max[r], acc[1]);
                    }
                }
                let mut inv = [0f32; R];
                for (r, inv) in inv.iter_mut().enumerate() {
                    let m = _mm512_reduce_max_ps(max[r]);
                    let scores = &mut p[r * np..r * np + n];
                    *inv = 1.0 / super::exp_sum(scores, m);
                }
                let mut acc = [[_mm512_setzero_ps(); D]; R];
                for j in 0..n {
                    let v = v0.add(j * h3);
                    let mut vv = [_mm512_setzero_ps(); D];
                    for (c, vv) in vv.iter_mut().enumerate() {
                        *vv = _mm512_loadu_ps(v.add(16 * c));
                    }
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let w = _mm512_set1_ps(*p.as_ptr().add(r * np + j));
                        for (acc, vv) in acc.iter_mut().zip(&vv) {
                            *acc = _mm512_fmadd_ps(w, *vv, *acc);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate().take(n - i) {
                    let inv = _mm512_set1_ps(inv[r]);
                    for (c, acc) in acc.iter().enumerate() {
                        _mm512_storeu_ps(out.add((i + r) * h + 16 * c), _mm512_mul_ps(*acc, inv));
                    }
                }
            }
            i += R;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub(super) fn fits(_: usize) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    #[test]
    fn exp_is_within_a_few_ulps_of_libm() {
        let mut worst = 0f32;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp(-1e9) < 1e-37 && exp(-1e9) >= 0.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(0.0) == 1.0);
    }

    #[test]
    fn softmax_rows_matches_candle() {
        let x = Tensor::randn(0f32, 3.0, (7, 33), &Device::Cpu).unwrap();
        let theirs = candle_nn::ops::softmax_last_dim(&x).unwrap();
        let mut ours = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        softmax_rows(&mut ours, 33);
        let theirs = theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
        }
    }

    /// The reference: candle ops on one text at a time, as `bert.rs` did.
    fn reference(qkv: &Tensor, heads: usize, lengths: &[usize]) -> Tensor {
        let (_, len, h3) = qkv.dims3().unwrap();
        let h = h3 / 3;
        let hd = h / heads;
        let mut rows = Vec::new();
        for (row, &n) in lengths.iter().enumerate() {
            let t = qkv
                .i(row)
                .unwrap()
                .narrow(0, 0, n)
                .unwrap()
                .reshape((n, 3, heads, hd))
                .unwrap()
                .permute((1, 2, 0, 3))
                .unwrap();
            let q = t.i(0).unwrap().contiguous().unwrap();
            let k = t.i(1).unwrap().contiguous().unwrap();
            let v = t.i(2).unwrap().contiguous().unwrap();
            let p = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t().unwrap()).unwrap()).unwrap();
            let c = p
                .matmul(&v)
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((n, h))
                .unwrap();
            rows.push(c.pad_with_zeros(0, 0, len - n).unwrap());
        }
        Tensor::stack(&rows, 0).unwrap()
    }

    #[test]
    fn attention_matches_candle_ops_and_zeroes_padding() {
        let (heads, hd, len) = (4, 8, 11);
        let lengths = [11, 5, 1];
        let qkv = Tensor::randn(0f32, 1.0, (3, len, 3 * heads * hd), &Device::Cpu).unwrap();
        let ours = attention(&qkv, heads, &lengths).unwrap();
        let theirs = reference(&qkv, heads, &lengths);
        let diff = crate::cpu::max_abs_diff(&ours, &theirs);
        assert!(diff < 1e-5, "max difference {diff}");
        // Text 1 has 5 real tokens: its 6 padded positions are zero.
        let pad = ours.i((1, 5..)).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(pad.to_scalar::<f32>().unwrap(), 0.0);
    }

    /// Head sizes the AVX-512 kernel takes (16 … 64), with lengths that leave
    /// every tail of its 4-row and 32-key steps.
    #[test]
    fn kernel_head_sizes_match_candle_ops() {
        for (heads, hd) in [(2, 16), (3, 32), (1, 48), (2, 64)] {
            let len = 70;
            let lengths = [70, 33, 32, 5, 1, 2, 3];
            let qkv = Tensor::randn(
                0f32,
                1.0,
                (lengths.len(), len, 3 * heads * hd),
                &Device::Cpu,
            )
            .unwrap();
            let ours = attention(&qkv, heads, &lengths).unwrap();
            let theirs = reference(&qkv, heads, &lengths);
            let diff = crate::cpu::max_abs_diff(&ours, &theirs);
            assert!(diff < 1e-5, "hd {hd}: max difference {diff}");
        }
    }

    #[test]
    fn attention_refuses_shapes_that_do_not_fit() {
        let qkv = Tensor::zeros((2, 4, 24), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(attention(&qkv, 3, &[4, 4]).is_err(), "24 is not 3 × 3 × hd");
        assert!(attention(&qkv, 2, &[4]).is_err(), "one length for two rows");
        assert!(attention(&qkv, 2, &[4, 5]).is_err(), "longer than the row");
    }
}
