//! The model settings the embedding benches read from the environment, for comparing runs.

/// `HELPDEX_EMBEDDING_MAX_TOKENS` (what `[embeddings] max_tokens` sets).
pub fn max_tokens() -> Option<usize> {
    std::env::var("HELPDEX_EMBEDDING_MAX_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// `HELPDEX_EMBEDDING_INT8=0` (what `[embeddings] int8 = false` sets): f32 layers.
pub fn int8() -> bool {
    std::env::var("HELPDEX_EMBEDDING_INT8").map_or(true, |v| v != "0" && v != "false")
}
