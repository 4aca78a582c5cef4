//! Model fingerprint: a blake3 hash of everything that determines the vectors.
//!
//! Hashed, in order, each framed by its name and length:
//! the JSON files that define the model (config.json, modules.json, pooling
//! config, sentence_bert_config.json, config_sentence_transformers.json),
//! tokenizer.json, the resolved settings (pooling, normalisation, max tokens,
//! prefixes, this crate's embedding algorithm version) and the **whole**
//! `model.safetensors` file.
//!
//! Hashing only the safetensors header is not enough: two checkpoints of the
//! same architecture (say a fine-tune) have byte-identical headers, because
//! the header only lists names, dtypes, shapes and offsets.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::EmbedError;
use crate::model_dir::{ModelDir, TOKENIZER, WEIGHTS};

/// Bump when a code change alters the vectors produced for the same model
/// (pooling, normalisation, truncation rules), so stored vectors get rebuilt.
pub(crate) const ALGORITHM_VERSION: u32 = 1;

pub(crate) fn compute(dir: &ModelDir, settings: &str) -> Result<String, EmbedError> {
    let mut h = blake3::Hasher::new_derive_key("helpdex-embed model fingerprint v1");
    for path in &dir.json_files {
        hash_file(&mut h, &dir.dir, path)?;
    }
    hash_file(&mut h, &dir.dir, &dir.path(TOKENIZER))?;
    frame(&mut h, "settings", settings.as_bytes());

    let weights = dir.path(WEIGHTS);
    let file = File::open(&weights).map_err(|e| EmbedError::io(&weights, e))?;
    let len = file
        .metadata()
        .map_err(|e| EmbedError::io(&weights, e))?
        .len();
    h.update(b"weights");
    h.update(&len.to_le_bytes());
    // Plain reads, not a memory map: the page cache serves them just as fast without adding
    // the file to the process RSS. Each 16 MiB read is hashed on every core (blake3 splits
    // it; the hash is the same as one thread's): e5's 470 MB took ~145 ms on one core, which
    // a CLI search paid on every call.
    const CHUNK: u64 = 16 << 20;
    let mut file = file;
    let mut buf = Vec::with_capacity(CHUNK as usize);
    loop {
        buf.clear();
        (&mut file)
            .take(CHUNK)
            .read_to_end(&mut buf)
            .map_err(|e| EmbedError::io(&weights, e))?;
        if buf.is_empty() {
            break;
        }
        h.update_rayon(&buf);
    }
    Ok(h.finalize().to_hex().to_string())
}

fn hash_file(h: &mut blake3::Hasher, root: &Path, path: &Path) -> Result<(), EmbedError> {
    let bytes = std::fs::read(path).map_err(|e| EmbedError::io(path, e))?;
    let name = path.strip_prefix(root).unwrap_or(path).to_string_lossy();
    frame(h, &name, &bytes);
    Ok(())
}

fn frame(h: &mut blake3::Hasher, name: &str, bytes: &[u8]) {
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}
