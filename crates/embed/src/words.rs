//! The word embedding table, read in place from the memory-mapped weights.
//!
//! It is most of a model's bytes where the vocabulary is large: multilingual-e5-small's
//! 250,037 × 384 table is 384 MB of its 470 MB. Copied out at load, as candle does, every CLI
//! search paid that copy (and its page faults) and the process kept 384 MB it mostly never
//! reads; mapped, a question touches only its own tokens' rows, and the page cache shares the
//! rest between processes. The other weights are copied and, for int8, quantized at load.
//!
//! The map lives as long as the [`crate::Embedder`]: the weights file must not be rewritten in
//! place while a process uses it (a truncated file would fault on read). Model directories are
//! replaced by writing a new one, as `scripts/fetch-model` and the model-id download do.

use std::fs::File;
use std::path::Path;

use candle_core::{Result, Tensor};

/// An f32 (rows × dim) table inside a memory-mapped safetensors file.
pub(crate) struct MappedTable {
    map: memmap2::Mmap,
    /// Where the table's bytes start in the file.
    start: usize,
    rows: usize,
    dim: usize,
}

impl MappedTable {
    /// Maps `path` and finds `names[0]` (or the next name present) as a little-endian f32
    /// table of `dim` columns. `Ok(None)` when it is there in another dtype or shape: the
    /// caller then loads it as any other tensor.
    pub(crate) fn open(path: &Path, names: &[&str], dim: usize) -> Result<Option<Self>> {
        let file = File::open(path)?;
        // SAFETY: read-only map of a file that is not modified while in use (module docs);
        // every read below is bounds-checked against the header's offsets.
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        let (header, meta) = safetensors::SafeTensors::read_metadata(&map)
            .map_err(|e| candle_core::Error::Msg(format!("safetensors header: {e}")))?;
        let Some(info) = names.iter().find_map(|n| meta.info(n)) else {
            return Ok(None);
        };
        let (from, to) = info.data_offsets;
        let start = 8 + header + from;
        let ok = info.dtype == safetensors::Dtype::F32
            && info.shape.len() == 2
            && info.shape[1] == dim
            && to - from == info.shape[0] * dim * 4
            && 8 + header + to <= map.len();
        if !ok {
            return Ok(None);
        }
        Ok(Some(Self {
            map,
            start,
            rows: info.shape[0],
            dim,
        }))
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Row `id` added to `out` (dim values); float addition commutes, so this equals candle's
    /// `embedding + positions` bit for bit.
    pub(crate) fn add_row(&self, id: u32, out: &mut [f32]) -> Result<()> {
        let id = id as usize;
        if id >= self.rows {
            candle_core::bail!(
                "token id {id} is outside the {}-row embedding table",
                self.rows
            )
        }
        let at = self.start + id * self.dim * 4;
        let bytes = &self.map[at..at + self.dim * 4];
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o += f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
}

/// `rows × len` token ids → (rows × len × dim) `table[id] + positions[t] + token_type`,
/// summed in that order.
pub(crate) fn embed_ids(
    table: &MappedTable,
    ids: &Tensor,
    positions: &[f32],
    token_type: &[f32],
) -> Result<Vec<f32>> {
    let ids = ids.to_vec2::<u32>()?;
    let dim = table.dim;
    let len = ids.first().map_or(0, Vec::len);
    if positions.len() < len * dim || token_type.len() != dim {
        candle_core::bail!("inputs of {len} tokens exceed the position embeddings")
    }
    let mut out = vec![0f32; ids.len() * len * dim];
    for (row, ids) in out.chunks_exact_mut(len * dim).zip(&ids) {
        for ((t, dst), &id) in row.chunks_exact_mut(dim).enumerate().zip(ids) {
            // word + position first, then the token type, as candle's broadcast adds do.
            dst.copy_from_slice(&positions[t * dim..(t + 1) * dim]);
            table.add_row(id, dst)?;
            for (d, &tt) in dst.iter_mut().zip(token_type) {
                *d += tt;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Module};
    use std::collections::HashMap;

    fn table(rows: usize, dim: usize, dtype: DType) -> Tensor {
        let v: Vec<f32> = (0..rows * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        Tensor::from_vec(v, (rows, dim), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn save(dir: &Path, tensors: &[(&str, Tensor)]) -> std::path::PathBuf {
        let path = dir.join("model.safetensors");
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    /// Rows read in place sum to exactly what candle's embedding and broadcast adds give.
    #[test]
    fn mapped_rows_equal_candles_embedding() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, dim, len) = (50, 12, 5);
        let words = table(rows, dim, DType::F32);
        let positions = table(len, dim, DType::F32).affine(0.5, 0.1).unwrap();
        let token_type = table(1, dim, DType::F32).get(0).unwrap();
        let path = save(
            dir.path(),
            &[("other", table(3, 4, DType::F32)), ("w", words.clone())],
        );
        let mapped = MappedTable::open(&path, &["missing", "w"], dim)
            .unwrap()
            .unwrap();
        assert_eq!(mapped.rows(), rows);

        let ids = Tensor::new(&[[3u32, 0, 49, 7, 7], [1, 2, 3, 4, 5]], &Device::Cpu).unwrap();
        let ours = embed_ids(
            &mapped,
            &ids,
            &positions.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &token_type.to_vec1::<f32>().unwrap(),
        )
        .unwrap();
        let theirs = candle_nn::Embedding::new(words, dim)
            .forward(&ids)
            .unwrap()
            .broadcast_add(&positions)
            .unwrap()
            .broadcast_add(&token_type)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ours, theirs);

        let out_of_range = Tensor::new(&[[50u32]], &Device::Cpu).unwrap();
        let err = embed_ids(&mapped, &out_of_range, &[0.0; 12], &[0.0; 12]).unwrap_err();
        assert!(err.to_string().contains("token id 50"), "{err}");
    }

    /// Tables in another dtype or width, or absent, are left to candle's loader.
    #[test]
    fn other_tables_are_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(
            dir.path(),
            &[
                ("half", table(8, 4, DType::F16)),
                ("w", table(8, 4, DType::F32)),
            ],
        );
        assert!(MappedTable::open(&path, &["half"], 4).unwrap().is_none());
        assert!(MappedTable::open(&path, &["w"], 5).unwrap().is_none());
        assert!(MappedTable::open(&path, &["nothing"], 4).unwrap().is_none());
        assert!(MappedTable::open(&path, &["w"], 4).unwrap().is_some());
        let garbage = dir.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"not a safetensors file").unwrap();
        assert!(MappedTable::open(&garbage, &["w"], 4).is_err());
    }
}
