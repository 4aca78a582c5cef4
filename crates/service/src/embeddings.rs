//! Hybrid retrieval's embedding model: which one (`[embeddings] model` in the config file, or
//! `HELPDEX_EMBEDDING_MODEL`), loading it, and the background lane of `serve` that embeds what
//! syncs and webhooks bring.
//!
//! A model is a local directory in the Hugging Face sentence-transformers layout
//! (`config.json`, `tokenizer.json`, `model.safetensors`, `modules.json`, `1_Pooling/`), or a
//! model id (`sentence-transformers/all-MiniLM-L6-v2`) that is downloaded once into
//! `DATA_DIR/models/` and used from there afterwards. No model: BM25 only.

use crate::config::ConfigError;
use helpdex_core::engine::{EmbedPass, Engine};
use helpdex_core::vectors::TextEmbedder;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// The environment variable naming the model (beats the config file).
pub const MODEL_ENV: &str = "HELPDEX_EMBEDDING_MODEL";

/// Passages per model call by default: enough for the model to sort them by length (less
/// padding) and run one length-sorted batch per core.
pub const DEFAULT_BATCH: usize = 256;

/// Tokens read of each passage by default (below the model's own limit): all-MiniLM-L6-v2 was
/// trained on 128-token inputs and ranked better at 128 than at its configured 256 on every
/// eval set, at half the embedding cost (README, hybrid retrieval).
pub const DEFAULT_MAX_TOKENS: usize = 128;

/// `[embeddings]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEmbeddings {
    /// A model directory, or a Hugging Face model id downloaded once into the data directory.
    pub model: Option<String>,
    /// Passages per model call (default 32).
    pub batch: Option<usize>,
    /// Tokens the model reads of each passage (default 128, or the model's own
    /// `max_seq_length` when lower). Fewer is proportionally faster to embed.
    pub max_tokens: Option<usize>,
    /// Run the model's fully connected layers in int8 on CPUs with AVX-512 VNNI (default
    /// true): about twice as fast, vectors at cosine ≥ 0.998 to f32's. Elsewhere f32.
    pub int8: Option<bool>,
}

/// The resolved model setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsConfig {
    /// The model as configured (directory or model id).
    pub model: String,
    /// Passages per model call.
    pub batch: usize,
    /// Tokens read of each passage; `None`: [`DEFAULT_MAX_TOKENS`] or the model's own limit,
    /// whichever is lower.
    pub max_tokens: Option<usize>,
    /// int8 layers where the CPU has them.
    pub int8: bool,
}

impl EmbeddingsConfig {
    /// `HELPDEX_EMBEDDING_MODEL` if set and not blank, else `[embeddings] model`; `None`: BM25
    /// only.
    pub fn resolve(
        raw: &RawEmbeddings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<EmbeddingsConfig>, ConfigError> {
        let model = env(MODEL_ENV)
            .filter(|m| !m.trim().is_empty())
            .or_else(|| raw.model.clone().filter(|m| !m.trim().is_empty()));
        let batch = raw.batch.unwrap_or(DEFAULT_BATCH);
        if !(1..=1024).contains(&batch) {
            return Err(ConfigError::Invalid(format!(
                "[embeddings] batch must be between 1 and 1024 (got {batch})"
            )));
        }
        if raw.max_tokens.is_some_and(|t| t < 8) {
            return Err(ConfigError::Invalid(
                "[embeddings] max_tokens must be at least 8".into(),
            ));
        }
        Ok(model.map(|m| EmbeddingsConfig {
            model: m.trim().to_string(),
            batch,
            max_tokens: raw.max_tokens,
            int8: raw.int8.unwrap_or(true),
        }))
    }
}

/// Why the model cannot be used; each says what to do.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The directory does not hold a usable model.
    #[error("embedding model {dir}: {error}")]
    Load {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong with it (its message names the file and what to do).
        error: Box<helpdex_embed::EmbedError>,
    },
    /// Neither a directory nor a model id.
    #[error(
        "embedding model '{0}' is neither an existing directory nor a model id like 'sentence-transformers/all-MiniLM-L6-v2'; set {MODEL_ENV} or [embeddings] model to one"
    )]
    NotFound(String),
    /// Loading stopped abnormally.
    #[error("loading the embedding model failed: {0}")]
    Crashed(String),
    /// The download of a model id failed.
    #[error(
        "could not download embedding model '{id}' into {dir} ({reason}); download it yourself (a sentence-transformers directory with config.json, tokenizer.json, model.safetensors) and set {MODEL_ENV} to its path"
    )]
    Download {
        /// Model id.
        id: String,
        /// Where it was going.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Where a model id is kept in a data directory.
pub fn model_cache_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("models").join(id.replace('/', "--"))
}

/// A model id as Hugging Face names them: `owner/name`, letters, digits, `-`, `_`, `.`.
fn is_model_id(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// The directory of the configured model: the path itself when it is a directory; for a model
/// id, its copy in `DATA_DIR/models/`, downloaded first if missing.
pub async fn model_dir(cfg: &EmbeddingsConfig, data_dir: &Path) -> Result<PathBuf, ModelError> {
    let path = PathBuf::from(&cfg.model);
    if path.is_dir() {
        return Ok(path);
    }
    if !is_model_id(&cfg.model) {
        return Err(ModelError::NotFound(cfg.model.clone()));
    }
    let dir = model_cache_dir(data_dir, &cfg.model);
    if dir.join("model.safetensors").is_file() {
        return Ok(dir);
    }
    download(&cfg.model, &dir)
        .await
        .map_err(|reason| ModelError::Download {
            id: cfg.model.clone(),
            dir: dir.clone(),
            reason,
        })?;
    Ok(dir)
}

/// Files of a sentence-transformers model; the first three are required.
const MODEL_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "modules.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
];

/// Downloads a model id from the Hugging Face hub into `dir` (through a temporary directory
/// renamed at the end, so a failed download never leaves half a model).
async fn download(id: &str, dir: &Path) -> Result<(), String> {
    let base =
        std::env::var("HELPDEX_MODEL_HUB").unwrap_or_else(|_| "https://huggingface.co".into());
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    for (i, file) in MODEL_FILES.iter().enumerate() {
        let url = format!("{base}/{id}/resolve/main/{file}");
        tracing::info!(%url, "downloading embedding model file");
        let resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND && i >= 3 {
            continue;
        }
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        let to = tmp.join(file);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&to, &bytes).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Loads the model in `dir` (weights memory-mapped), vectors always L2-normalised: the engine
/// scores by dot product. `int8`: [`RawEmbeddings::int8`].
pub fn load(
    dir: &Path,
    max_tokens: Option<usize>,
    int8: bool,
) -> Result<Arc<helpdex_embed::Embedder>, ModelError> {
    let options = helpdex_embed::EmbedOptions {
        normalize: Some(true),
        max_tokens,
        cap_tokens: Some(DEFAULT_MAX_TOKENS),
        int8,
        ..Default::default()
    };
    let started = Instant::now();
    let model = helpdex_embed::Embedder::load(dir, options).map_err(|source| ModelError::Load {
        dir: dir.to_path_buf(),
        error: Box::new(source),
    })?;
    tracing::debug!(dir = %dir.display(), ms = started.elapsed().as_millis() as u64, dim = model.dim(), int8 = model.int8(), "embedding model loaded");
    Ok(Arc::new(model))
}

/// Resolves and loads the configured model (blocking work on the blocking pool).
pub async fn open(
    cfg: &EmbeddingsConfig,
    data_dir: &Path,
) -> Result<Arc<helpdex_embed::Embedder>, ModelError> {
    let dir = model_dir(cfg, data_dir).await?;
    let (max_tokens, int8) = (cfg.max_tokens, cfg.int8);
    tokio::task::spawn_blocking(move || load(&dir, max_tokens, int8))
        .await
        .unwrap_or_else(|e| Err(ModelError::Crashed(e.to_string())))
}

/// How often the lane looks for passages without a vector.
const LANE_POLL: Duration = Duration::from_secs(2);

/// How often the lane deletes vectors nothing reads any more.
const LANE_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The background embedding lane of `serve`: embeds every passage without a vector of
/// `model` at start (all of them after a model change), then whatever syncs and webhooks add,
/// a batch at a time on the blocking pool. BM25 serves new passages meanwhile; searches use
/// each vector as soon as its batch is stored.
pub fn spawn_lane(
    engine: Arc<Engine>,
    model: Arc<dyn TextEmbedder>,
    batch: usize,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut from = 0i64;
        let mut pruned_at = Instant::now();
        let mut backoff = LANE_POLL;
        loop {
            let e = engine.clone();
            let newest = tokio::task::spawn_blocking(move || e.last_passage_rowid())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            if from == 0 || newest > from {
                let prune = from == 0 || pruned_at.elapsed() >= LANE_PRUNE_EVERY;
                let (e, m, c) = (engine.clone(), model.clone(), cancel.clone());
                let pass = EmbedPass { from, batch, prune };
                let run = tokio::task::spawn_blocking(move || {
                    e.embed_pending(m.as_ref(), pass, &mut |_, _| !c.is_cancelled())
                })
                .await;
                match run {
                    Ok(Ok(r)) => {
                        if r.embedded > 0 || r.pruned > 0 {
                            tracing::info!(
                                embedded = r.embedded,
                                pruned = r.pruned,
                                seconds = r.seconds,
                                "passages embedded"
                            );
                        }
                        if prune {
                            pruned_at = Instant::now();
                        }
                        // A pass over nothing (fresh directory) stays a full pass next time.
                        if r.complete && r.last_rowid > 0 {
                            from = r.last_rowid;
                        }
                        backoff = LANE_POLL;
                    }
                    Ok(Err(err)) => {
                        tracing::error!(error = %err, "embedding failed; BM25 serves the passages meanwhile, retrying");
                        backoff = (backoff * 2).min(Duration::from_secs(300));
                    }
                    Err(join) => {
                        tracing::error!(error = %join, "embedding lane task failed; retrying");
                        backoff = (backoff * 2).min(Duration::from_secs(300));
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_beats_the_file_and_blank_means_none() {
        let raw = RawEmbeddings {
            model: Some("/models/a".into()),
            ..RawEmbeddings::default()
        };
        let env = |k: &str| (k == MODEL_ENV).then(|| "/models/b".to_string());
        assert_eq!(
            EmbeddingsConfig::resolve(&raw, &env)
                .unwrap()
                .unwrap()
                .model,
            "/models/b"
        );
        let blank = |k: &str| (k == MODEL_ENV).then(|| "  ".to_string());
        assert_eq!(
            EmbeddingsConfig::resolve(&raw, &blank)
                .unwrap()
                .unwrap()
                .model,
            "/models/a"
        );
        let none = |_: &str| None;
        assert!(
            EmbeddingsConfig::resolve(&RawEmbeddings::default(), &none)
                .unwrap()
                .is_none()
        );
        let bad = RawEmbeddings {
            model: Some("m".into()),
            batch: Some(0),
            ..RawEmbeddings::default()
        };
        assert!(EmbeddingsConfig::resolve(&bad, &none).is_err());
    }

    #[test]
    fn model_ids_are_told_from_paths() {
        assert!(is_model_id("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(is_model_id("intfloat/multilingual-e5-small"));
        assert!(!is_model_id("/models/x"));
        assert!(!is_model_id("../x/y"));
        assert!(!is_model_id("a/b/c"));
        assert!(!is_model_id("minilm"));
    }
}
