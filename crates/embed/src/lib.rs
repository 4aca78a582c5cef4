//! Local sentence embeddings for helpdex's hybrid retrieval, in pure Rust.
//!
//! [`Embedder`] loads a BERT-family [sentence-transformers] model from a local
//! directory in the Hugging Face layout (`config.json`, `tokenizer.json`,
//! `model.safetensors`, `modules.json`, `1_Pooling/config.json`, …) and runs it
//! on the CPU with [candle]. Nothing is ever downloaded.
//!
//! ```no_run
//! use helpdex_embed::{EmbedOptions, Embedder};
//!
//! let model = Embedder::load("/models/all-MiniLM-L6-v2", EmbedOptions::default())?;
//! let passages = model.embed_passages(&["To reset your password, open Settings…"])?;
//! let query = model.embed_query("how do I reset my password")?;
//! let score: f32 = query.iter().zip(&passages[0]).map(|(a, b)| a * b).sum();
//! # let _ = score;
//! # Ok::<(), helpdex_embed::EmbedError>(())
//! ```
//!
//! * Pooling (mean or CLS) and L2 normalisation follow `modules.json` and the
//!   pooling config, as sentence-transformers does.
//! * Inputs are truncated to [`Embedder::max_tokens`] tokens (`[CLS]`/`[SEP]`
//!   included), by default `max_seq_length` of `sentence_bert_config.json`.
//!   The truncation/padding stored in `tokenizer.json` is ignored: exports
//!   often carry a stale one (all-MiniLM-L6-v2's says 128 tokens, padded).
//! * Inputs are sorted by length and batched (at most
//!   [`EmbedOptions::batch_size`] texts and [`EmbedOptions::batch_tokens`]
//!   padded tokens per forward pass); attention runs per text over its real
//!   tokens only, so padding never changes a vector. Output order is input order.
//! * [`Embedder::fingerprint`] changes whenever the vectors could change, so
//!   stored vectors can be rebuilt when the model is swapped.
//! * [`tiny_model::write`] writes a small random model for tests.
//! * [`scan`] is the exact (brute-force) top-k search over stored vectors.
//!
//! Threads: matrix products run on candle's rayon pool with
//! `RAYON_NUM_THREADS` threads (default: number of physical cores); candle's
//! element-wise kernels use `CANDLE_NUM_THREADS` (default: `RAYON_NUM_THREADS`).
//! Both are read from the environment when first needed, so a program that
//! wants another count sets them at startup, before any embedding.
//!
//! The default `x86-v4` feature switches on gemm's AVX-512 kernels (chosen
//! at run time; CPUs without AVX-512 use the AVX2/FMA ones). On the Zen 5
//! development machine they cut CPU time per passage by a third.
//!
//! [sentence-transformers]: https://www.sbert.net
//! [candle]: https://github.com/huggingface/candle

mod attention;
/// The BERT forward pass; public only for the benchmarks.
#[doc(hidden)]
pub mod bert;
mod cpu;
mod dense;
mod error;
mod fingerprint;
mod gelu;
mod int8;
mod model_dir;
mod norm;
pub mod scan;
pub mod tiny_model;
mod words;

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

pub use error::EmbedError;
pub use model_dir::Pooling;

/// Default of [`EmbedOptions::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Default of [`EmbedOptions::batch_tokens`]: 8 passages of 256 tokens.
pub const DEFAULT_BATCH_TOKENS: usize = 2048;

/// How many inputs are tokenised and length-sorted together. Bounds memory
/// (a tokenizer `Encoding` costs far more than its ids) while keeping most of
/// the padding saved by sorting.
const SORT_WINDOW: usize = 512;

/// Options for [`Embedder::load`]. `EmbedOptions::default()` does what the
/// model directory says.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Truncate every input to this many tokens, `[CLS]` and `[SEP]` included.
    /// `None`: `max_seq_length` from `sentence_bert_config.json`, else
    /// `model_max_length` from `tokenizer_config.json`, capped by the model's
    /// `max_position_embeddings`.
    pub max_tokens: Option<usize>,
    /// With `max_tokens: None`: at most this many tokens, below the model's own limit.
    pub cap_tokens: Option<usize>,
    /// Text put before queries and passages (e5 models need them).
    pub prefixes: Prefixes,
    /// Force L2 normalisation on or off. `None`: as `modules.json` says
    /// (a `Normalize` module). Dot-product search needs normalised vectors.
    pub normalize: Option<bool>,
    /// Most texts per forward pass.
    pub batch_size: usize,
    /// Most padded tokens (texts × longest text) per forward pass. Long
    /// passages then go 8 at a time, short texts up to `batch_size` at a time.
    /// Larger batches of long texts are no faster and cost more memory: their
    /// activations outgrow glibc's mmap threshold (32 MiB), so every
    /// temporary tensor is page-faulted afresh.
    pub batch_tokens: usize,
    /// Run the fully connected layers in int8 on CPUs with AVX-512 VNNI
    /// (`int8.rs`): ~2× the passages per second, vectors at cosine ≥ 0.998 to
    /// f32's on real models (the fingerprint says which ran, so a switch re-embeds). Elsewhere, or
    /// when false, f32.
    pub int8: bool,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            max_tokens: None,
            cap_tokens: None,
            prefixes: Prefixes::Auto,
            normalize: None,
            batch_size: DEFAULT_BATCH_SIZE,
            batch_tokens: DEFAULT_BATCH_TOKENS,
            int8: true,
        }
    }
}

/// Prefixes put before query and passage texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefixes {
    /// `prompts` of `config_sentence_transformers.json` if it has a `query`
    /// prompt; else `"query: "` / `"passage: "` when the directory name has an
    /// `e5` component (e5-small-v2, multilingual-e5-base, …); else none.
    Auto,
    /// No prefixes.
    None,
    /// These prefixes.
    Custom { query: String, passage: String },
}

/// A loaded sentence-embedding model. Cheap to share (`Send + Sync`); calls
/// may run concurrently, though each already uses all configured threads.
pub struct Embedder {
    model: bert::Bert,
    tokenizer: Tokenizer,
    /// Same tokenizer without truncation, for [`Embedder::token_count`]: made on first
    /// use, since cloning e5's 250,000-piece vocabulary takes ~150 ms and a CLI search,
    /// which loads the model per process, never counts.
    counter: OnceLock<Tokenizer>,
    device: Device,
    dim: usize,
    max_tokens: usize,
    pooling: Pooling,
    normalize: bool,
    query_prefix: String,
    passage_prefix: String,
    batch_size: usize,
    batch_tokens: usize,
    pad_id: u32,
    fingerprint: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dim", &self.dim)
            .field("max_tokens", &self.max_tokens)
            .field("pooling", &self.pooling)
            .field("normalize", &self.normalize)
            .field("query_prefix", &self.query_prefix)
            .field("passage_prefix", &self.passage_prefix)
            .field("batch_size", &self.batch_size)
            .field("batch_tokens", &self.batch_tokens)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the model in `dir`. The weights are memory-mapped and copied into
    /// tensors once; the fingerprint hashes every file (≈ 90 MB for MiniLM).
    pub fn load(dir: impl AsRef<Path>, options: EmbedOptions) -> Result<Self, EmbedError> {
        let dir = dir.as_ref();
        let md = model_dir::ModelDir::read(dir)?;
        let cfg = &md.bert;

        // Max tokens: the option, else what the directory says, never beyond
        // the position embeddings.
        let max_tokens = match options.max_tokens {
            Some(n) if n > cfg.max_position_embeddings => {
                return Err(EmbedError::InvalidOption(format!(
                    "max_tokens {n} exceeds the model's max_position_embeddings {}",
                    cfg.max_position_embeddings
                )));
            }
            Some(n) => n,
            None => md
                .max_seq_length
                .or(md.model_max_length)
                .unwrap_or(cfg.max_position_embeddings)
                .min(cfg.max_position_embeddings)
                .min(options.cap_tokens.unwrap_or(usize::MAX)),
        };
        if max_tokens < 3 {
            return Err(EmbedError::InvalidOption(format!(
                "max_tokens {max_tokens} is too small ([CLS] + [SEP] take two)"
            )));
        }
        if options.batch_size == 0 || options.batch_tokens == 0 {
            return Err(EmbedError::InvalidOption(
                "batch_size and batch_tokens must be at least 1".into(),
            ));
        }

        let tokenizer_path = md.path(model_dir::TOKENIZER);
        let tok_err = |message: String| EmbedError::Tokenizer {
            path: tokenizer_path.clone(),
            message,
        };
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| tok_err(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| tok_err(e.to_string()))?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > cfg.vocab_size {
            return Err(EmbedError::unsupported(
                md.path(model_dir::CONFIG),
                format!(
                    "vocab_size {} is smaller than the {vocab} tokens of tokenizer.json: \
                     the two files come from different models",
                    cfg.vocab_size
                ),
            ));
        }

        let weights = md.path(model_dir::WEIGHTS);
        let weights_err = |source| EmbedError::Weights {
            path: weights.clone(),
            source: error::without_backtrace(source),
        };
        let device = Device::Cpu;
        // The word embedding table stays in the file, mapped for the model's lifetime
        // (`words.rs`); the other tensors are copied out below.
        let mapped = words::MappedTable::open(
            &weights,
            &[
                "embeddings.word_embeddings.weight",
                "bert.embeddings.word_embeddings.weight",
            ],
            cfg.hidden_size,
        )
        .map_err(weights_err)?;
        // SAFETY: the safetensors file is memory-mapped read-only and this map
        // lives only until `Bert::load` has copied every tensor it loads out of
        // it (candle copies CPU tensors), i.e. until the end of this block. The
        // file must not be truncated or rewritten meanwhile (nor while the word
        // table above is mapped); model directories are replaced by writing a
        // new directory, never in place.
        let model = unsafe {
            let vb = VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device)
                .map_err(weights_err)?;
            bert::Bert::load(vb, cfg, options.int8, mapped).map_err(weights_err)?
        };

        let (query_prefix, passage_prefix) = match options.prefixes {
            Prefixes::None => (String::new(), String::new()),
            Prefixes::Custom { query, passage } => (query, passage),
            Prefixes::Auto => match (&md.query_prompt, &md.passage_prompt) {
                (Some(q), p) => (q.clone(), p.clone().unwrap_or_default()),
                (None, _) if model_dir::looks_like_e5(dir) => {
                    ("query: ".into(), "passage: ".into())
                }
                _ => (String::new(), String::new()),
            },
        };
        let normalize = options.normalize.unwrap_or(md.normalize);
        let mut settings = format!(
            "algorithm={};pooling={};normalize={normalize};max_tokens={max_tokens};\
             query_prefix={query_prefix:?};passage_prefix={passage_prefix:?}",
            fingerprint::ALGORITHM_VERSION,
            md.pooling.as_str(),
        );
        // Only when it ran, so f32 fingerprints stay those stored before int8 existed.
        if model.int8() {
            settings.push_str(";int8=vnni-asymmetric-per-token-per-column");
        }
        let fingerprint = fingerprint::compute(&md, &settings)?;

        Ok(Self {
            model,
            tokenizer,
            counter: OnceLock::new(),
            device,
            dim: cfg.hidden_size,
            max_tokens,
            pooling: md.pooling,
            normalize,
            query_prefix,
            passage_prefix,
            batch_size: options.batch_size,
            batch_tokens: options.batch_tokens,
            pad_id: cfg.pad_token_id as u32,
            fingerprint,
        })
    }

    /// Whether the fully connected layers run in int8 ([`EmbedOptions::int8`]).
    pub fn int8(&self) -> bool {
        self.model.int8()
    }

    /// Length of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Inputs are cut to this many tokens (`[CLS]` and `[SEP]` included);
    /// the rest of a longer text does not influence its vector.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// 64 hex digits (blake3) identifying the model files and the settings
    /// that shape the vectors. Store it with the vectors; re-embed on change.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The pooling the model directory asked for.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether vectors are L2-normalised (dot product = cosine similarity).
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// Prefix put before every query.
    pub fn query_prefix(&self) -> &str {
        &self.query_prefix
    }

    /// Prefix put before every passage.
    pub fn passage_prefix(&self) -> &str {
        &self.passage_prefix
    }

    /// Number of tokens of `text` without truncation and without `[CLS]`/`[SEP]`
    /// or prefixes, for sizing passages: a passage embeds fully only if this is
    /// at most `max_tokens() - 2 -` the prefix's tokens.
    pub fn token_count(&self, text: &str) -> Result<usize, EmbedError> {
        if self.counter.get().is_none() {
            let mut counter = self.tokenizer.clone();
            counter
                .with_truncation(None)
                .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
            let _ = self.counter.set(counter);
        }
        let counter = self.counter.get().expect("set above");
        let enc = counter
            .encode_fast(text, false)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        Ok(enc.len())
    }

    /// Embeds one search query (with the query prefix, if any).
    pub fn embed_query(&self, query: &str) -> Result<Vec<f32>, EmbedError> {
        let mut v = self.embed_with_prefix(&[query], &self.query_prefix)?;
        Ok(v.pop().expect("one input gives one vector"))
    }

    /// Embeds passages (with the passage prefix, if any); one vector per
    /// passage, in input order.
    pub fn embed_passages(&self, passages: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_prefix(passages, &self.passage_prefix)
    }

    /// Embeds texts exactly as given (no prefix).
    pub fn embed_raw(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_prefix(texts, "")
    }

    fn embed_with_prefix(&self, texts: &[&str], prefix: &str) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for window in texts.chunks(SORT_WINDOW) {
            let inputs: Vec<Cow<'_, str>> = window
                .iter()
                .map(|t| {
                    if prefix.is_empty() {
                        Cow::Borrowed(*t)
                    } else {
                        Cow::Owned(format!("{prefix}{t}"))
                    }
                })
                .collect();
            let inputs: Vec<&str> = inputs.iter().map(|s| s.as_ref()).collect();
            let encodings = self
                .tokenizer
                .encode_batch_fast(inputs, true)
                .map_err(|e| EmbedError::Tokenize(e.to_string()))?;

            // Longest first, so each batch holds texts of similar length and
            // its first text sets its padded length.
            let mut order: Vec<usize> = (0..encodings.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
            let mut batches: Vec<&[usize]> = Vec::new();
            let mut rest = &order[..];
            while let Some(&first) = rest.first() {
                let longest = encodings[first].len().max(1);
                let rows = (self.batch_tokens / longest).clamp(1, self.batch_size);
                let (batch, tail) = rest.split_at(rows.min(rest.len()));
                batches.push(batch);
                rest = tail;
            }
            // One batch per worker where there are several: a forward pass is
            // ~100 short parallel sections, and splitting each over the cores
            // left them waiting at every section's end (e5 on 2 cores: ~1.27×
            // the passages per second this way). A lone batch (a question)
            // still splits its sections over the pool.
            let results: Vec<Result<Vec<Vec<f32>>, EmbedError>> = self.device.with_context(|| {
                batches
                    .par_iter()
                    .map(|batch| {
                        let encs: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
                        self.forward(&encs)
                    })
                    .collect()
            });
            let mut vectors = vec![Vec::new(); encodings.len()];
            for (batch, result) in batches.iter().zip(results) {
                for (&i, v) in batch.iter().zip(result?) {
                    vectors[i] = v;
                }
            }
            out.extend(vectors);
        }
        Ok(out)
    }

    /// One padded forward pass, pooling and normalisation.
    fn forward(&self, encs: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let rows = encs.len();
        let len = encs.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; rows * len];
        let mut mask = vec![0f32; rows * len];
        let mut lengths = Vec::with_capacity(rows);
        for (row, e) in encs.iter().enumerate() {
            let n = e.len().max(1);
            ids[row * len..row * len + e.len()].copy_from_slice(e.get_ids());
            mask[row * len..row * len + n].fill(1.0);
            lengths.push(n);
        }
        let ids = Tensor::from_vec(ids, (rows, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, len, 1), &self.device)?;

        // Runs inside candle's own rayon pool, which stays warm between the
        // many short parallel sections of a forward pass.
        let hidden = self
            .device
            .with_context(|| self.model.forward(&ids, &lengths))?;

        let pooled = match self.pooling {
            Pooling::Mean => {
                let sum = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, dim)
                let count = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (rows, 1)
                sum.broadcast_div(&count)?
            }
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        };
        let pooled = if self.normalize {
            // As torch.nn.functional.normalize(eps = 1e-12).
            let norm = pooled
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            pooled.broadcast_div(&norm)?
        } else {
            pooled
        };
        Ok(pooled.to_vec2::<f32>()?)
    }
}

#[cfg(test)]
mod tests;

/// The engine's view of a model: hybrid retrieval in `helpdex-core` only knows this trait.
impl helpdex_core::vectors::TextEmbedder for Embedder {
    fn model_id(&self) -> &str {
        self.fingerprint()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, helpdex_core::vectors::EmbedFailed> {
        Embedder::embed_query(self, text)
            .map_err(|e| helpdex_core::vectors::EmbedFailed(e.to_string()))
    }

    fn embed_passages(
        &self,
        texts: &[&str],
    ) -> Result<Vec<Vec<f32>>, helpdex_core::vectors::EmbedFailed> {
        Embedder::embed_passages(self, texts)
            .map_err(|e| helpdex_core::vectors::EmbedFailed(e.to_string()))
    }
}
