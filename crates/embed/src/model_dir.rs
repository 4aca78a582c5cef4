//! Reading a sentence-transformers model directory in the Hugging Face layout.
//!
//! ```text
//! config.json                         BERT architecture (required)
//! tokenizer.json                      fast tokenizer (required)
//! model.safetensors                   weights (required)
//! modules.json                        module pipeline: Transformer, Pooling, Normalize (optional)
//! 1_Pooling/config.json               pooling mode (optional, else mean pooling)
//! sentence_bert_config.json           max_seq_length (optional)
//! tokenizer_config.json               model_max_length (optional)
//! config_sentence_transformers.json   prompts, e.g. {"query": "query: "} (optional)
//! ```
//!
//! Everything here is plain parsing and validation; nothing touches the weights.

use std::fs;
use std::path::{Path, PathBuf};

use crate::bert::{BertConfig, HiddenAct};
use serde::Deserialize;

use crate::EmbedError;

pub(crate) const CONFIG: &str = "config.json";
pub(crate) const TOKENIZER: &str = "tokenizer.json";
pub(crate) const WEIGHTS: &str = "model.safetensors";
pub(crate) const MODULES: &str = "modules.json";
pub(crate) const POOLING_DEFAULT_DIR: &str = "1_Pooling";
pub(crate) const SBERT_CONFIG: &str = "sentence_bert_config.json";
pub(crate) const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub(crate) const ST_CONFIG: &str = "config_sentence_transformers.json";

/// How token vectors are turned into one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Average of the token vectors under the attention mask (all-MiniLM, e5, …).
    Mean,
    /// The vector of the first token, `[CLS]` (bge, …).
    Cls,
}

impl Pooling {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

/// Everything the loader learned from the JSON files of a model directory.
#[derive(Debug, Clone)]
pub(crate) struct ModelDir {
    pub dir: PathBuf,
    pub bert: BertConfig,
    pub pooling: Pooling,
    pub normalize: bool,
    /// Files that define the model, in a fixed order, for the fingerprint.
    pub json_files: Vec<PathBuf>,
    /// `sentence_bert_config.json` → `max_seq_length`.
    pub max_seq_length: Option<usize>,
    /// `tokenizer_config.json` → `model_max_length` (ignored when absurd).
    pub model_max_length: Option<usize>,
    /// `config_sentence_transformers.json` → `prompts.query`.
    pub query_prompt: Option<String>,
    /// `config_sentence_transformers.json` → `prompts.passage` / `prompts.document`.
    pub passage_prompt: Option<String>,
}

impl ModelDir {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Parses and validates the JSON files of `dir`. Checks that the required
    /// files exist, so later steps can assume they do.
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::NotADirectory(dir.to_path_buf()));
        }
        require(
            &dir.join(TOKENIZER),
            "the model directory needs the fast tokenizer file tokenizer.json \
             (sentence-transformers saves it with the model)",
        )?;
        require(
            &dir.join(WEIGHTS),
            "the model directory needs its weights as model.safetensors \
             (pytorch_model.bin is not supported: convert it to safetensors)",
        )?;
        let config_path = dir.join(CONFIG);
        require(
            &config_path,
            "the model directory needs the Hugging Face config.json of a BERT model",
        )?;
        let bert = parse_bert_config(&config_path)?;

        let mut json_files = vec![config_path];
        let (pooling_path, normalize) = read_modules(dir, &mut json_files)?;
        let pooling = match pooling_path {
            Some(path) => {
                let pooling = parse_pooling(&path, bert.hidden_size)?;
                json_files.push(path);
                pooling
            }
            // sentence-transformers itself falls back to mean pooling for a
            // plain transformer directory.
            None => Pooling::Mean,
        };

        let sbert_path = dir.join(SBERT_CONFIG);
        let max_seq_length = match read_optional::<SbertConfig>(&sbert_path)? {
            Some(c) => {
                json_files.push(sbert_path);
                c.max_seq_length
            }
            None => None,
        };
        // tokenizer_config.json is not hashed: tokenizer.json is what runs.
        let model_max_length = read_optional::<TokenizerConfig>(&dir.join(TOKENIZER_CONFIG))?
            .and_then(|c| c.model_max_length)
            .filter(|&n| n > 0.0 && n <= 1_000_000.0)
            .map(|n| n as usize);

        let st_path = dir.join(ST_CONFIG);
        let (query_prompt, passage_prompt) = match read_optional::<StConfig>(&st_path)? {
            Some(c) => {
                json_files.push(st_path);
                let mut prompts = c.prompts.unwrap_or_default();
                let query = prompts.remove("query").filter(|p| !p.is_empty());
                let passage = prompts
                    .remove("passage")
                    .or_else(|| prompts.remove("document"))
                    .filter(|p| !p.is_empty());
                (query, passage)
            }
            None => (None, None),
        };

        Ok(Self {
            dir: dir.to_path_buf(),
            bert,
            pooling,
            normalize,
            json_files,
            max_seq_length,
            model_max_length,
            query_prompt,
            passage_prompt,
        })
    }
}

fn require(path: &Path, hint: &'static str) -> Result<(), EmbedError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(EmbedError::MissingFile {
            path: path.to_path_buf(),
            hint,
        })
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, EmbedError> {
    let bytes = fs::read(path).map_err(|e| EmbedError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| EmbedError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, EmbedError> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The subset of a Hugging Face `config.json` that a BERT encoder needs, with
/// the defaults of `transformers.BertConfig` for fields that may be absent.
#[derive(Debug, Deserialize)]
struct RawBertConfig {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: Option<usize>,
    position_embedding_type: Option<String>,
}

fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

fn parse_bert_config(path: &Path) -> Result<BertConfig, EmbedError> {
    let raw: RawBertConfig = read_json(path)?;
    let is_bert = match raw.model_type.as_deref() {
        Some(t) => t == "bert",
        None => raw.architectures.iter().any(|a| a.starts_with("Bert")),
    };
    if !is_bert {
        return Err(EmbedError::unsupported(
            path,
            format!(
                "model_type {:?} is not supported: helpdex-embed runs BERT encoders \
                 (model_type \"bert\", e.g. all-MiniLM-L6-v2, bge-small-en-v1.5, e5-small-v2); \
                 pick a BERT-based sentence-transformers model",
                raw.model_type.as_deref().unwrap_or("(none)")
            ),
        ));
    }
    let hidden_act = match raw.hidden_act.as_str() {
        "gelu" => HiddenAct::Gelu,
        "gelu_new" | "gelu_fast" | "gelu_pytorch_tanh" => HiddenAct::GeluTanh,
        "relu" => HiddenAct::Relu,
        other => {
            return Err(EmbedError::unsupported(
                path,
                format!("hidden_act {other:?} is not supported (gelu, gelu_new, relu are)"),
            ));
        }
    };
    if let Some(t) = raw.position_embedding_type.as_deref()
        && t != "absolute"
    {
        return Err(EmbedError::unsupported(
            path,
            format!("position_embedding_type {t:?} is not supported (only \"absolute\")"),
        ));
    }
    let positive = [
        ("vocab_size", raw.vocab_size),
        ("hidden_size", raw.hidden_size),
        ("num_hidden_layers", raw.num_hidden_layers),
        ("num_attention_heads", raw.num_attention_heads),
        ("intermediate_size", raw.intermediate_size),
        ("max_position_embeddings", raw.max_position_embeddings),
        ("type_vocab_size", raw.type_vocab_size),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Err(EmbedError::unsupported(path, format!("{name} must be > 0")));
    }
    if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
        return Err(EmbedError::unsupported(
            path,
            format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                raw.hidden_size, raw.num_attention_heads
            ),
        ));
    }
    Ok(BertConfig {
        vocab_size: raw.vocab_size,
        hidden_size: raw.hidden_size,
        num_hidden_layers: raw.num_hidden_layers,
        num_attention_heads: raw.num_attention_heads,
        intermediate_size: raw.intermediate_size,
        hidden_act,
        max_position_embeddings: raw.max_position_embeddings,
        type_vocab_size: raw.type_vocab_size,
        layer_norm_eps: raw.layer_norm_eps,
        pad_token_id: raw.pad_token_id.unwrap_or(0),
    })
}

#[derive(Debug, Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Reads `modules.json`: returns the pooling config path (if any) and whether
/// a Normalize module ends the pipeline. Without `modules.json`, looks for
/// `1_Pooling/config.json` and a `2_Normalize` directory.
fn read_modules(
    dir: &Path,
    json_files: &mut Vec<PathBuf>,
) -> Result<(Option<PathBuf>, bool), EmbedError> {
    let modules_path = dir.join(MODULES);
    let Some(modules) = read_optional::<Vec<ModuleEntry>>(&modules_path)? else {
        let pooling = dir.join(POOLING_DEFAULT_DIR).join(CONFIG);
        let normalize = dir.join("2_Normalize").is_dir();
        return Ok((pooling.is_file().then_some(pooling), normalize));
    };
    json_files.push(modules_path.clone());
    let mut pooling = None;
    let mut normalize = false;
    for m in &modules {
        // Newer sentence-transformers write "sentence_transformers.base.modules.…"
        // style names; the last path segment is the module class.
        match m.kind.rsplit('.').next().unwrap_or("") {
            "Transformer" => {}
            "Pooling" => {
                let path = dir.join(&m.path).join(CONFIG);
                require(
                    &path,
                    "modules.json lists a Pooling module whose config.json is absent; \
                     restore the pooling directory from the original model",
                )?;
                pooling = Some(path);
            }
            // The Normalize module has no files; its directory may be absent.
            "Normalize" => normalize = true,
            other => {
                return Err(EmbedError::unsupported(
                    &modules_path,
                    format!(
                        "module type {other:?} ({}) is not supported: helpdex-embed runs \
                         Transformer → Pooling → optional Normalize pipelines",
                        m.kind
                    ),
                ));
            }
        }
    }
    Ok((pooling, normalize))
}

#[derive(Debug, Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: Option<usize>,
    /// Newer sentence-transformers versions write one string instead of flags.
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

fn parse_pooling(path: &Path, hidden_size: usize) -> Result<Pooling, EmbedError> {
    let c: PoolingConfig = read_json(path)?;
    if let Some(dim) = c.word_embedding_dimension
        && dim != hidden_size
    {
        return Err(EmbedError::unsupported(
            path,
            format!(
                "word_embedding_dimension {dim} differs from config.json hidden_size {hidden_size}"
            ),
        ));
    }
    let pooling = match c.pooling_mode.as_deref() {
        Some("mean") => Some(Pooling::Mean),
        Some("cls") => Some(Pooling::Cls),
        Some(_) => None,
        None => {
            let others = c.pooling_mode_max_tokens
                || c.pooling_mode_mean_sqrt_len_tokens
                || c.pooling_mode_weightedmean_tokens
                || c.pooling_mode_lasttoken;
            match (c.pooling_mode_mean_tokens, c.pooling_mode_cls_token, others) {
                (true, false, false) => Some(Pooling::Mean),
                (false, true, false) => Some(Pooling::Cls),
                _ => None,
            }
        }
    };
    pooling.ok_or_else(|| {
        EmbedError::unsupported(
            path,
            "unsupported pooling: exactly one of mean (pooling_mode_mean_tokens) or \
             CLS (pooling_mode_cls_token) pooling must be enabled",
        )
    })
}

#[derive(Debug, Deserialize)]
struct SbertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct TokenizerConfig {
    /// Often a huge float sentinel (1e30) when unset.
    model_max_length: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct StConfig {
    prompts: Option<std::collections::BTreeMap<String, String>>,
}

/// The e5 family needs "query: " / "passage: " prefixes; their directories
/// carry no machine-readable hint in older exports, so we look at the name
/// (`e5-small-v2`, `multilingual-e5-base`, `intfloat_e5-large`, …).
pub(crate) fn looks_like_e5(dir: &Path) -> bool {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_default();
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word == "e5")
}
