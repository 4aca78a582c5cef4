//! BERT encoder forward pass (inference only), on candle tensors.
//!
//! Adapted from `candle-transformers` 0.11.1 `models::bert` (MIT OR Apache-2.0,
//! © the candle authors), which follows Hugging Face's `modeling_bert.py`.
//! Differences, all numerically equivalent up to float rounding:
//! * query/key/value are one fused matrix product (weights concatenated at load);
//! * the `1/sqrt(head_dim)` attention scale is folded into the query weights;
//! * attention runs text by text over the real tokens only (no padding, no
//!   mask), with candle's fused `softmax_last_dim` kernel instead of the
//!   generic softmax, which allocates four score-sized temporaries;
//! * exact GELU uses the vectorised kernel in `gelu.rs`;
//! * token type ids are always 0 (single-sentence embedding), so their
//!   embedding is one broadcast row;
//! * no dropout, no tracing spans, no pooler or MLM head.
//!
//! Together these cut CPU time per passage by ~30% against
//! `candle_transformers::models::bert::BertModel` (REPORT.md), and not
//! depending on candle-transformers (which compiles ~100 model families)
//! saves ~100 s of release build time.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};

/// The architecture parameters read from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenAct {
    /// Exact GELU (erf), Hugging Face's "gelu".
    Gelu,
    /// tanh approximation: "gelu_new", "gelu_pytorch_tanh", "gelu_fast".
    GeluTanh,
    Relu,
}

pub struct Bert {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    /// Row 0 of token_type_embeddings, shape (hidden,).
    token_type_row: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

struct Layer {
    /// Fused query|key|value projection, output 3 × hidden; query part pre-scaled.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
    act: HiddenAct,
}

impl Bert {
    /// Loads weights named as in Hugging Face checkpoints, with or without a
    /// `bert.` prefix (`embeddings.word_embeddings.weight`, `encoder.layer.0.…`).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = cfg.hidden_size;
        let e = vb.pp("embeddings");
        let word_embeddings = embedding(cfg.vocab_size, h, e.pp("word_embeddings"))?;
        let position_embeddings =
            embedding(cfg.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let token_type = embedding(cfg.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let token_type_row = token_type.embeddings().get(0)?;
        let embeddings_norm = layer_norm(h, cfg.layer_norm_eps, e.pp("LayerNorm"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embeddings,
            position_embeddings,
            token_type_row,
            embeddings_norm,
            layers,
        })
    }

    /// `input_ids`: (batch, len) u32, row `i` holding `lengths[i]` real tokens
    /// followed by padding. Returns the last hidden states, (batch, len, hidden);
    /// rows at padded positions are meaningless (callers pool under the mask).
    pub fn forward(&self, input_ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (rows, len) = input_ids.dims2()?;
        if lengths.len() != rows || lengths.iter().any(|&n| n == 0 || n > len) {
            candle_core::bail!("lengths {lengths:?} do not fit input of shape ({rows}, {len})");
        }
        let positions = self.position_embeddings.embeddings().narrow(0, 0, len)?;
        let x = self
            .word_embeddings
            .forward(input_ids)?
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type_row)?;
        let mut x = self.embeddings_norm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x, lengths)?;
        }
        Ok(x)
    }
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let scale = 1.0 / ((h / heads) as f64).sqrt();
        let sa = vb.pp("attention.self");
        let q = linear(h, h, sa.pp("query"))?;
        let k = linear(h, h, sa.pp("key"))?;
        let v = linear(h, h, sa.pp("value"))?;
        let bias = |l: &Linear| {
            l.bias()
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg("attention projection without bias".into()))
        };
        let weight = Tensor::cat(
            &[
                (q.weight() * scale)?,
                k.weight().clone(),
                v.weight().clone(),
            ],
            0,
        )?;
        let b = Tensor::cat(&[(bias(&q)? * scale)?, bias(&k)?, bias(&v)?], 0)?;
        Ok(Self {
            qkv: Linear::new(weight, Some(b)),
            attention_out: linear(h, h, vb.pp("attention.output.dense"))?,
            attention_norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("attention.output.LayerNorm"))?,
            intermediate: linear(h, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            output: linear(cfg.intermediate_size, h, vb.pp("output.dense"))?,
            output_norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("output.LayerNorm"))?,
            heads,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (_, len, h) = x.dims3()?;
        let head_dim = h / self.heads;
        let qkv = self.qkv.forward(x)?; // (rows, len, 3h)
        // Attention row by row, over the real tokens only. Equivalent to a
        // padded batch with an attention mask for every real position, but it
        // skips the padding and keeps each score matrix small (heads × n × n):
        // batch-sized score tensors (50 MB at 16 × 256 tokens) are above
        // glibc's mmap threshold, and their page faults cost a third of the
        // CPU time. Padded positions get a zero context.
        let mut contexts = Vec::with_capacity(lengths.len());
        for (row, &n) in lengths.iter().enumerate() {
            // (n, 3h) → (3, heads, n, head_dim)
            let qkv = qkv
                .get(row)?
                .narrow(0, 0, n)?
                .reshape((n, 3, self.heads, head_dim))?
                .permute((1, 2, 0, 3))?;
            let q = qkv.get(0)?.contiguous()?;
            let k = qkv.get(1)?.contiguous()?;
            let v = qkv.get(2)?.contiguous()?;
            let probs = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?; // (heads, n, n)
            let context = probs
                .matmul(&v)? // (heads, n, head_dim)
                .transpose(0, 1)?
                .contiguous()?
                .reshape((n, h))?;
            contexts.push(if n < len {
                context.pad_with_zeros(0, 0, len - n)?
            } else {
                context
            });
        }
        let context = Tensor::stack(&contexts, 0)?; // (rows, len, h)
        let x = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&x)?;
        let inner = match self.act {
            HiddenAct::Gelu => crate::gelu::gelu_erf(&inner)?,
            HiddenAct::GeluTanh => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        self.output_norm
            .forward(&(self.output.forward(&inner)? + x)?)
    }
}
