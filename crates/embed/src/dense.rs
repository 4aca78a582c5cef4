//! A fully connected layer whose bias and residual ride in the product.
//!
//! `candle_nn::Linear` followed by `+ residual` makes three passes over a
//! batch-sized output (zeroed product, bias added, residual added), each into
//! a new allocation. Here the output buffer starts as `residual + bias` and
//! gemm accumulates `x · Wᵀ` into it: one allocation, one pass before the
//! product. In a MiniLM forward pass the two element-wise passes alone were
//! ~6% of CPU time.

use candle_core::{Result, Tensor};
use gemm::Parallelism;

use crate::cpu::{bias_rows, matmul, with_f32, with_opt_f32};
use crate::int8::Int8Dense;

/// What a layer does to its input before the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    AsIs,
    /// Exact GELU first: in int8, applied row by row as the row is quantized,
    /// so the activated (tokens × 1536) matrix is never written out.
    Gelu,
}

pub(crate) struct Dense {
    weight: Weight,
    bias: Vec<f32>,
    n_in: usize,
    n_out: usize,
}

/// The weight, in the one form the layer runs.
enum Weight {
    /// (out, in), row-major: as stored in the checkpoint.
    F32(Vec<f32>),
    /// Quantized and packed for the int8 kernel (`int8.rs`).
    Int8(Int8Dense),
}

impl Dense {
    /// From a (out, in) weight and an (out,) bias; in int8 when `int8` is
    /// set, the CPU has the kernel and the sizes fit it.
    pub(crate) fn new(weight: &Tensor, bias: &Tensor, int8: bool) -> Result<Self> {
        let (n_out, n_in) = weight.dims2()?;
        if bias.dims1()? != n_out {
            candle_core::bail!("bias of {} for {n_out} outputs", bias.dims1()?)
        }
        let weight = weight.flatten_all()?.to_vec1::<f32>()?;
        let weight = match (int8 && crate::int8::available())
            .then(|| Int8Dense::new(&weight, n_in, n_out))
            .flatten()
        {
            Some(q) => Weight::Int8(q),
            None => Weight::F32(weight),
        };
        Ok(Self {
            weight,
            bias: bias.to_vec1::<f32>()?,
            n_in,
            n_out,
        })
    }

    /// Whether this layer runs in int8.
    pub(crate) fn is_int8(&self) -> bool {
        matches!(self.weight, Weight::Int8(_))
    }

    /// `x · Wᵀ + b (+ residual)`; `x` is (…, in), the result (…, out).
    pub(crate) fn forward(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let out = self.forward_vec(x, residual, Input::AsIs)?;
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("forward_vec checked the shape") = self.n_out;
        Tensor::from_vec(out, dims, x.device())
    }

    /// `input(x) · Wᵀ + b (+ residual)` as a row-major (rows × out) buffer, for
    /// a caller that goes on in place (LayerNorm).
    pub(crate) fn forward_vec(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        input: Input,
    ) -> Result<Vec<f32>> {
        let dims = x.dims().to_vec();
        if dims.last() != Some(&self.n_in) {
            candle_core::bail!("input {dims:?} for a layer of {} inputs", self.n_in)
        }
        let m = x.elem_count() / self.n_in;
        if let Some(r) = residual
            && r.elem_count() != m * self.n_out
        {
            candle_core::bail!("residual {:?} for output ({m}, {})", r.dims(), self.n_out)
        }
        with_f32(x, |x| {
            with_opt_f32(residual, |residual| {
                let weight = match &self.weight {
                    Weight::Int8(q) => {
                        return Ok(q.forward(x, &self.bias, residual, input == Input::Gelu));
                    }
                    Weight::F32(w) => w,
                };
                let mut out = bias_rows(m, &self.bias, residual);
                let activated;
                let x = match input {
                    Input::AsIs => x,
                    Input::Gelu => {
                        activated = crate::gelu::apply(x);
                        &activated[..]
                    }
                };
                // SAFETY: x is (m, n_in), weight (n_out, n_in) read transposed
                // through its strides, out (m, n_out); all contiguous and of
                // exactly these sizes.
                unsafe {
                    matmul(
                        (m, self.n_out, self.n_in),
                        out.as_mut_ptr(),
                        self.n_out,
                        true,
                        x.as_ptr(),
                        self.n_in,
                        weight.as_ptr(),
                        (1, self.n_in),
                        Parallelism::Rayon(0),
                    );
                }
                Ok(out)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};

    #[test]
    fn equals_linear_plus_residual() {
        let d = Device::Cpu;
        let w = Tensor::randn(0f32, 0.5, (24, 40), &d).unwrap();
        let b = Tensor::randn(0f32, 0.5, 24, &d).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 7, 40), &d).unwrap();
        let r = Tensor::randn(0f32, 1.0, (3, 7, 24), &d).unwrap();
        let linear = candle_nn::Linear::new(w.clone(), Some(b.clone()));
        let dense = Dense::new(&w, &b, false).unwrap();
        let max_diff = crate::cpu::max_abs_diff;
        let plain = linear.forward(&x).unwrap();
        assert!(max_diff(&dense.forward(&x, None).unwrap(), &plain) < 1e-5);
        let with_residual = (&plain + &r).unwrap();
        assert!(max_diff(&dense.forward(&x, Some(&r)).unwrap(), &with_residual) < 1e-5);
    }

    #[test]
    fn refuses_shapes_that_do_not_fit() {
        let d = Device::Cpu;
        let w = Tensor::zeros((4, 6), candle_core::DType::F32, &d).unwrap();
        let b = Tensor::zeros(4, candle_core::DType::F32, &d).unwrap();
        assert!(
            Dense::new(
                &w,
                &Tensor::zeros(5, candle_core::DType::F32, &d).unwrap(),
                false
            )
            .is_err()
        );
        let dense = Dense::new(&w, &b, false).unwrap();
        let x = Tensor::zeros((2, 5), candle_core::DType::F32, &d).unwrap();
        assert!(dense.forward(&x, None).is_err(), "5 inputs for 6");
        let x = Tensor::zeros((2, 6), candle_core::DType::F32, &d).unwrap();
        let r = Tensor::zeros((3, 4), candle_core::DType::F32, &d).unwrap();
        assert!(
            dense.forward(&x, Some(&r)).is_err(),
            "residual of 3 rows for 2"
        );
    }
}
