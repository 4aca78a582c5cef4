//! Typed errors. Every error about a file names that file and says what to do.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model directory or embedding text.
///
/// Loading never panics on bad input files: a missing file, malformed JSON, an
/// unsupported architecture or weights whose shapes disagree with `config.json`
/// all come back as one of these variants.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model path does not exist or is not a directory.
    #[error(
        "model directory {0} does not exist or is not a directory: point it at a \
         sentence-transformers model directory (config.json, tokenizer.json, model.safetensors)"
    )]
    NotADirectory(PathBuf),

    /// A file the loader needs is absent.
    #[error("{path}: file is missing; {hint}")]
    MissingFile { path: PathBuf, hint: &'static str },

    /// A file exists but cannot be read (or written, for the tiny model generator).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file is malformed or lacks a required field.
    #[error("{path}: not a valid model file: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A configuration file is well-formed but describes something this crate
    /// does not support (another architecture, another pooling mode, …) or is
    /// inconsistent with the rest of the directory.
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },

    /// `tokenizer.json` could not be loaded or configured.
    #[error(
        "{path}: cannot load the tokenizer ({message}); the directory needs a Hugging Face \
         `tokenizer.json` (fast tokenizer format)"
    )]
    Tokenizer { path: PathBuf, message: String },

    /// `model.safetensors` is not a valid safetensors file, or its tensors do not
    /// match `config.json` (missing tensor, wrong shape, wrong dtype).
    #[error(
        "{path}: weights do not load ({source}); the file must be the safetensors \
         checkpoint that goes with this directory's config.json"
    )]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },

    /// Tokenising an input text failed.
    #[error("tokenization failed: {0}")]
    Tokenize(String),

    /// The forward pass failed (should not happen once a model loaded).
    #[error("inference failed: {0}")]
    Inference(#[source] candle_core::Error),

    /// An option passed in [`crate::EmbedOptions`] is invalid for this model.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

impl From<candle_core::Error> for EmbedError {
    fn from(e: candle_core::Error) -> Self {
        Self::Inference(without_backtrace(e))
    }
}

/// candle attaches a backtrace to its errors when `RUST_BACKTRACE` is set and
/// prints it in `Display`; our messages already say where the error is.
pub(crate) fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        candle_core::Error::WithPath { inner, .. } => without_backtrace(*inner),
        e => e,
    }
}

impl EmbedError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsupported(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.into(),
            message: message.into(),
        }
    }
}
