//! BERT encoder forward pass (inference only), on candle tensors.
//!
//! Adapted from `candle-transformers` 0.11.1 `models::bert` (MIT OR Apache-2.0,
//! © the candle authors), which follows Hugging Face's `modeling_bert.py`.
//! Differences, all numerically equivalent up to float rounding:
//! * query/key/value are one fused matrix product (weights concatenated at load);
//! * the `1/sqrt(head_dim)` attention scale is folded into the query weights;
//! * attention runs text by text over the real tokens only (no padding, no
//!   mask), in one op over all (text, head) pairs (`attention.rs`);
//! * exact GELU uses the vectorised kernel in `gelu.rs`, fused into the
//!   quantization of the next layer's input where that layer runs in int8;
//! * LayerNorm runs in place on the layer's output (`norm.rs`);
//! * fully connected layers add their bias and residual inside the product
//!   (`dense.rs`);
//! * token type ids are always 0 (single-sentence embedding), so their
//!   embedding is one broadcast row;
//! * no dropout, no tracing spans, no pooler or MLM head.
//!
//! The first five cut CPU time per passage by ~30% against
//! `candle_transformers::models::bert::BertModel`; the attention op and the
//! fused layers took all-MiniLM-L6-v2 from ~64 to ~90 passages/s on 2 cores
//! (600 eval passages of ~115 tokens, same sitting). Not depending on
//! candle-transformers (which compiles ~100 model families) saves ~100 s of
//! release build time.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, embedding, linear};

use crate::dense::{Dense, Input};
use crate::norm::LayerNorm;
use crate::words::MappedTable;

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
    word_embeddings: Words,
    position_embeddings: Embedding,
    /// Row 0 of token_type_embeddings, shape (hidden,).
    token_type_row: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// The word embedding table: read in place from the mapped weights where it is an f32 table
/// (`words.rs`), else loaded as candle loads any tensor.
enum Words {
    Mapped {
        table: MappedTable,
        /// The position embeddings and token type row as plain values.
        positions: Vec<f32>,
        token_type: Vec<f32>,
    },
    Loaded(Embedding),
}

struct Layer {
    /// Fused query|key|value projection, output 3 × hidden; query part pre-scaled.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
    heads: usize,
    act: HiddenAct,
}

impl Bert {
    /// Loads weights named as in Hugging Face checkpoints, with or without a
    /// `bert.` prefix (`embeddings.word_embeddings.weight`, `encoder.layer.0.…`).
    /// `int8`: run the fully connected layers in int8 where the CPU can (`int8.rs`).
    /// `mapped`: the word embedding table read in place from the weights file, if it is one
    /// ([`MappedTable::open`]); it must hold `vocab_size` rows.
    pub(crate) fn load(
        vb: VarBuilder,
        cfg: &BertConfig,
        int8: bool,
        mapped: Option<MappedTable>,
    ) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = cfg.hidden_size;
        let e = vb.pp("embeddings");
        let position_embeddings =
            embedding(cfg.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let token_type = embedding(cfg.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let token_type_row = token_type.embeddings().get(0)?;
        let word_embeddings = match mapped {
            Some(table) if table.rows() == cfg.vocab_size => Words::Mapped {
                table,
                positions: position_embeddings
                    .embeddings()
                    .flatten_all()?
                    .to_vec1::<f32>()?,
                token_type: token_type_row.to_vec1::<f32>()?,
            },
            _ => Words::Loaded(embedding(cfg.vocab_size, h, e.pp("word_embeddings"))?),
        };
        let embeddings_norm = LayerNorm::load(h, cfg.layer_norm_eps, e.pp("LayerNorm"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), cfg, int8))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embeddings,
            position_embeddings,
            token_type_row,
            embeddings_norm,
            layers,
        })
    }

    /// Whether any fully connected layer runs in int8.
    pub fn int8(&self) -> bool {
        self.layers.iter().any(|l| {
            [&l.qkv, &l.attention_out, &l.intermediate, &l.output]
                .iter()
                .any(|d| d.is_int8())
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
        let mut v = match &self.word_embeddings {
            Words::Mapped {
                table,
                positions,
                token_type,
            } => crate::words::embed_ids(table, input_ids, positions, token_type)?,
            Words::Loaded(words) => {
                let positions = self.position_embeddings.embeddings().narrow(0, 0, len)?;
                words
                    .forward(input_ids)?
                    .broadcast_add(&positions)?
                    .broadcast_add(&self.token_type_row)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
            }
        };
        self.embeddings_norm.apply(&mut v);
        let hidden = self.token_type_row.dim(0)?;
        let mut x = Tensor::from_vec(v, (rows, len, hidden), input_ids.device())?;
        for layer in &self.layers {
            x = layer.forward(&x, lengths)?;
        }
        Ok(x)
    }
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &BertConfig, int8: bool) -> Result<Self> {
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let scale = 1.0 / ((h / heads) as f64).sqrt();
        let sa = vb.pp("attention.self");
        let q = linear(h, h, sa.pp("query"))?;
        let k = linear(h, h, sa.pp("key"))?;
        let v = linear(h, h, sa.pp("value"))?;
        let bias = |l: &Linear| {
            l.bias().cloned().ok_or_else(|| {
                candle_core::Error::Msg("a fully connected layer without bias".into())
            })
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
        let dense = |l: Linear| Dense::new(l.weight(), &bias(&l)?, int8);
        Ok(Self {
            qkv: Dense::new(&weight, &b, int8)?,
            attention_out: dense(linear(h, h, vb.pp("attention.output.dense"))?)?,
            attention_norm: LayerNorm::load(
                h,
                cfg.layer_norm_eps,
                vb.pp("attention.output.LayerNorm"),
            )?,
            intermediate: dense(linear(
                h,
                cfg.intermediate_size,
                vb.pp("intermediate.dense"),
            )?)?,
            output: dense(linear(cfg.intermediate_size, h, vb.pp("output.dense"))?)?,
            output_norm: LayerNorm::load(h, cfg.layer_norm_eps, vb.pp("output.LayerNorm"))?,
            heads,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let qkv = self.qkv.forward(x, None)?; // (rows, len, 3h)
        // Over each text's real tokens only: equivalent to a padded batch with
        // an attention mask, without the padding's work (attention.rs).
        let context = crate::attention::attention(&qkv, self.heads, lengths)?; // (rows, len, h)
        let mut h = self
            .attention_out
            .forward_vec(&context, Some(x), Input::AsIs)?;
        self.attention_norm.apply(&mut h);
        let h = Tensor::from_vec(h, x.dims(), x.device())?;
        let inner = self.intermediate.forward(&h, None)?;
        let mut out = match self.act {
            HiddenAct::Gelu => self.output.forward_vec(&inner, Some(&h), Input::Gelu)?,
            HiddenAct::GeluTanh => {
                self.output
                    .forward_vec(&inner.gelu()?, Some(&h), Input::AsIs)?
            }
            HiddenAct::Relu => self
                .output
                .forward_vec(&inner.relu()?, Some(&h), Input::AsIs)?,
        };
        self.output_norm.apply(&mut out);
        Tensor::from_vec(out, x.dims(), x.device())
    }
}
