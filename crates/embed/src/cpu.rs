//! Raw f32 access to candle's CPU tensors, row-major products through gemm, and
//! the small loops the kernels of this crate (attention, dense layers, GELU,
//! LayerNorm) share.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};
use gemm::Parallelism;

/// The values of a contiguous f32 CPU storage; an error naming `op` otherwise.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let (CpuStorage::F32(data), Some((start, end))) = (storage, layout.contiguous_offsets()) else {
        candle_core::bail!("{op} needs a contiguous f32 tensor")
    };
    Ok(&data[start..end])
}

/// Runs `f` on a contiguous f32 CPU tensor's values.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expected a contiguous f32 CPU tensor")
    };
    f(contiguous_f32(cpu, layout, "helpdex-embed")?)
}

/// Runs `f` on an optional contiguous f32 CPU tensor's values (a residual).
pub(crate) fn with_opt_f32<R>(
    t: Option<&Tensor>,
    f: impl FnOnce(Option<&[f32]>) -> Result<R>,
) -> Result<R> {
    match t {
        Some(t) => with_f32(t, |v| f(Some(v))),
        None => f(None),
    }
}

/// `m` rows of `bias (+ the residual's row)`: where an f32 fully connected
/// layer's product then accumulates.
pub(crate) fn bias_rows(m: usize, bias: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
    let Some(res) = residual else {
        return bias.repeat(m);
    };
    assert!(res.len() == m * bias.len(), "residual of another size");
    let mut out = Vec::with_capacity(res.len());
    for row in res.chunks_exact(bias.len()) {
        out.extend(row.iter().zip(bias).map(|(v, b)| v + b));
    }
    out
}

/// `Σ f(v)` over 16 independent lanes (one float accumulator is a serial
/// dependency LLVM does not reorder, so it would not vectorise).
#[inline(always)]
pub(crate) fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    const L: usize = 16;
    let mut lanes = [0f32; L];
    let mut chunks = row.chunks_exact(L);
    for c in &mut chunks {
        for (s, &v) in lanes.iter_mut().zip(c) {
            *s += f(v);
        }
    }
    chunks.remainder().iter().map(|&v| f(v)).chain(lanes).sum()
}

/// `dst (m × n) = lhs (m × k) · rhs (k × n)`, or `dst += …` when `accumulate`.
/// `dst` and `lhs` are row-major with row strides `dst_rs` and `lhs_rs`; element
/// (i, j) of `rhs` is at `rhs + i·rhs_rs + j·rhs_cs`, so a transposed or
/// interleaved matrix is read in place.
///
/// # Safety
/// Every element these sizes and strides address must be inside its buffer,
/// and `dst` must not overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: *const f32,
    (rhs_rs, rhs_cs): (usize, usize),
    parallelism: Parallelism,
) {
    // SAFETY: as the caller guarantees. gemm computes
    // dst := alpha·dst + beta·lhs·rhs, reading dst only when asked.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            1,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1f32 } else { 0f32 },
            1f32,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Largest absolute difference of two tensors of the same shape (tests).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
