//! LayerNorm in place over a layer's output buffer.
//!
//! candle's LayerNorm op allocates a new output per call and reduces each row
//! in a scalar loop; after the layers moved to their own kernels it was ~5% of
//! an e5 forward pass. Here each row is normalised where the fully connected
//! layer left it, its two reductions over 16 independent lanes so they
//! vectorise (`cpu::lane_sum`, as softmax's sum in `attention.rs`).

use candle_core::Result;
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::cpu::lane_sum;

/// Rows per parallel job: large enough that a job outweighs its scheduling.
const JOB_ROWS: usize = 64;

pub(crate) struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Loads `weight` and `bias` of a `size`-wide LayerNorm (as `candle_nn::layer_norm`).
    pub(crate) fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let norm = candle_nn::layer_norm(size, eps, vb)?;
        let Some(bias) = norm.bias() else {
            candle_core::bail!("a LayerNorm without bias")
        };
        Ok(Self {
            gamma: norm.weight().to_vec1()?,
            beta: bias.to_vec1()?,
            eps: eps as f32,
        })
    }

    /// Normalises every `gamma.len()`-wide row of `x` in place.
    pub(crate) fn apply(&self, x: &mut [f32]) {
        let width = self.gamma.len();
        x.par_chunks_mut(JOB_ROWS * width)
            .for_each(|rows| rows_dispatch(self, rows));
    }
}

fn rows_dispatch(n: &LayerNorm, x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F support was just checked.
        return unsafe { rows_avx512(n, x) };
    }
    rows(n, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn rows_avx512(n: &LayerNorm, x: &mut [f32]) {
    rows(n, x)
}

#[inline(always)]
fn rows(n: &LayerNorm, x: &mut [f32]) {
    let width = n.gamma.len();
    for row in x.chunks_exact_mut(width) {
        let mean = lane_sum(row, |v| v) / width as f32;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / width as f32;
        let inv = 1.0 / (var + n.eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&n.gamma).zip(&n.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Tensor};

    const WIDTH: usize = 40;

    /// Random gamma and beta, as tensors (for candle's LayerNorm) and ours.
    fn random_norm() -> (Tensor, Tensor, LayerNorm) {
        let d = Device::Cpu;
        let gamma = Tensor::randn(1f32, 0.3, WIDTH, &d).unwrap();
        let beta = Tensor::randn(0f32, 0.3, WIDTH, &d).unwrap();
        let ours = LayerNorm {
            gamma: gamma.to_vec1().unwrap(),
            beta: beta.to_vec1().unwrap(),
            eps: 1e-12,
        };
        (gamma, beta, ours)
    }

    #[test]
    fn matches_candle_layer_norm() {
        let (gamma, beta, n) = random_norm();
        let x = Tensor::randn(0f32, 2.0, (130, WIDTH), &Device::Cpu).unwrap();
        let theirs = candle_nn::LayerNorm::new(gamma, beta, 1e-12)
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut ours = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        n.apply(&mut ours);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
    }

    /// Rows far from zero: the variance is taken around the mean (two passes),
    /// so it keeps its digits where `E[x²] − E[x]²` would not.
    #[test]
    fn rows_far_from_zero_match_f64() {
        let (_, _, n) = random_norm();
        let x = (Tensor::randn(0f32, 2.0, (130, WIDTH), &Device::Cpu).unwrap() + 50.0).unwrap();
        let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut ours = x.clone();
        n.apply(&mut ours);
        for (row, got) in x.chunks(WIDTH).zip(ours.chunks(WIDTH)) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / WIDTH as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / WIDTH as f64;
            for (i, (&v, &g)) in row.iter().zip(got).enumerate() {
                let want =
                    (v as f64 - mean) / (var + 1e-12).sqrt() * n.gamma[i] as f64 + n.beta[i] as f64;
                assert!((g as f64 - want).abs() <= 1e-4, "{g} vs {want}");
            }
        }
    }
}
