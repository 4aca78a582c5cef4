//! A tiny random BERT sentence-transformers model, for tests.
//!
//! [`write()`] creates a complete Hugging Face–layout directory — `config.json`,
//! `tokenizer.json` (BERT WordPiece, ~200 tokens), `model.safetensors`,
//! `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json` — with
//! weights drawn from a seeded generator: the same seed gives byte-identical
//! files, a different seed different weights. Hidden size 32, 2 layers,
//! 2 heads; it loads in milliseconds and makes tests independent of any
//! download. Its vectors are meaningless, only their mechanics are real.
//!
//! Like exported real models, its `tokenizer.json` carries a stale
//! truncation/padding (16 tokens, fixed padding) that the loader must ignore in
//! favour of `max_seq_length` ([`MAX_SEQ_LENGTH`]).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{Value, json};

use crate::EmbedError;

/// Width of the tiny model's vectors.
pub const HIDDEN: usize = 32;
/// `max_seq_length` written to `sentence_bert_config.json`.
pub const MAX_SEQ_LENGTH: usize = 32;
/// `max_position_embeddings` written to `config.json`.
pub const MAX_POSITIONS: usize = 64;
const LAYERS: usize = 2;
const HEADS: usize = 2;

/// What to write; [`TinySpec::new`] gives the defaults used by [`write()`].
#[derive(Debug, Clone)]
pub struct TinySpec {
    /// Seed of the weight generator.
    pub seed: u64,
    /// Write CLS pooling instead of mean pooling.
    pub cls_pooling: bool,
    /// List a Normalize module in `modules.json`.
    pub normalize: bool,
    /// Hidden size (default [`HIDDEN`]); the feed-forward layer is twice as
    /// wide. 64 makes every fully connected layer one the int8 kernel tiles.
    pub hidden: usize,
}

impl TinySpec {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            cls_pooling: false,
            normalize: true,
            hidden: HIDDEN,
        }
    }
}

/// Writes a tiny model (mean pooling, normalised) into `dir`, creating it.
pub fn write(dir: impl AsRef<Path>, seed: u64) -> Result<(), EmbedError> {
    write_spec(dir, &TinySpec::new(seed))
}

/// Writes a tiny model as `spec` says into `dir`, creating it.
pub fn write_spec(dir: impl AsRef<Path>, spec: &TinySpec) -> Result<(), EmbedError> {
    let dir = dir.as_ref();
    fs::create_dir_all(dir.join("1_Pooling")).map_err(|e| EmbedError::io(dir, e))?;
    let vocab = vocabulary();

    write_json(
        dir,
        "config.json",
        &json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": vocab.len(),
            "hidden_size": spec.hidden,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "intermediate_size": 2 * spec.hidden,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": MAX_POSITIONS,
            "type_vocab_size": 2,
            "initializer_range": 0.02,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
        }),
    )?;
    write_json(dir, "tokenizer.json", &tokenizer_json(&vocab))?;
    write_json(
        dir,
        "tokenizer_config.json",
        &json!({
            "do_lower_case": true,
            "model_max_length": 512,
            "tokenizer_class": "BertTokenizer",
        }),
    )?;
    write_json(
        dir,
        "sentence_bert_config.json",
        &json!({
            "max_seq_length": MAX_SEQ_LENGTH,
            "do_lower_case": false,
        }),
    )?;
    let mut modules = vec![
        json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    if spec.normalize {
        modules.push(json!({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}));
    }
    write_json(dir, "modules.json", &Value::Array(modules))?;
    write_json(
        dir,
        "1_Pooling/config.json",
        &json!({
            "word_embedding_dimension": spec.hidden,
            "pooling_mode_cls_token": spec.cls_pooling,
            "pooling_mode_mean_tokens": !spec.cls_pooling,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false,
        }),
    )?;
    write_weights(&dir.join("model.safetensors"), vocab.len(), spec)
}

fn write_json(dir: &Path, name: &str, value: &Value) -> Result<(), EmbedError> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    fs::write(&path, text).map_err(|e| EmbedError::io(&path, e))
}

/// Special tokens, single characters, `##` continuations and some support
/// vocabulary: every lowercase ASCII word tokenises without `[UNK]`.
fn vocabulary() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    let chars = ('a'..='z').chain('0'..='9');
    v.extend(chars.clone().map(String::from));
    v.extend(".,?!'\"-:;/()&@#%$*+=_".chars().map(String::from));
    v.extend(chars.map(|c| format!("##{c}")));
    v.extend(
        "the a an to of and in is it for on how do i my you your can what why when where \
         not with this that be are was from by at or if no yes me we our us get set use \
         password reset account email login log sign order refund billing invoice payment \
         card ship shipping delivery return cancel subscription plan upgrade change update \
         help support contact phone app install error team user admin settings profile"
            .split_whitespace()
            .map(String::from),
    );
    v.extend(["##s", "##ing", "##ed", "##er", "##ly"].map(String::from));
    v
}

fn tokenizer_json(vocab: &[String]) -> Value {
    let id = |t: &str| {
        vocab
            .iter()
            .position(|v| v == t)
            .expect("special token in vocab")
    };
    let added: Vec<Value> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|t| {
            json!({"id": id(t), "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let vocab_map: serde_json::Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let special = |t: &str, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |s: &str, type_id: u32| json!({"Sequence": {"id": s, "type_id": type_id}});
    json!({
        "version": "1.0",
        // Stale settings, as in real exports: the loader must override them.
        "truncation": {"direction": "Right", "max_length": 16, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("[CLS]", 0), seq("A", 0), special("[SEP]", 0)],
            "pair": [special("[CLS]", 0), seq("A", 0), special("[SEP]", 0), seq("B", 1), special("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [id("[CLS]")], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [id("[SEP]")], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab_map},
    })
}

/// SplitMix64: tiny, seedable, stable across versions (unlike `rand`'s
/// algorithms, whose streams may change between releases).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    fn uniform(&mut self, scale: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
        (unit * 2.0 - 1.0) * scale
    }
}

fn write_weights(path: &Path, vocab_size: usize, spec: &TinySpec) -> Result<(), EmbedError> {
    let mut rng = SplitMix64(spec.seed);
    let (hidden, intermediate) = (spec.hidden, 2 * spec.hidden);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    // Sorted names and a fixed draw order make the file a pure function of the seed.
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![vocab_size, hidden],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![MAX_POSITIONS, hidden],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, hidden],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![hidden]),
        ("embeddings.LayerNorm.bias".into(), vec![hidden]),
    ];
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", hidden, hidden),
            ("attention.self.key", hidden, hidden),
            ("attention.self.value", hidden, hidden),
            ("attention.output.dense", hidden, hidden),
            ("intermediate.dense", intermediate, hidden),
            ("output.dense", hidden, intermediate),
        ] {
            shapes.push((format!("{p}.{name}.weight"), vec![out, inp]));
            shapes.push((format!("{p}.{name}.bias"), vec![out]));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            shapes.push((format!("{p}.{norm}.weight"), vec![hidden]));
            shapes.push((format!("{p}.{norm}.bias"), vec![hidden]));
        }
    }
    shapes.sort();
    for (name, shape) in shapes {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if name.ends_with("LayerNorm.weight") {
            (0..n).map(|_| 1.0 + rng.uniform(0.1)).collect()
        } else if name.ends_with("LayerNorm.bias") || name.ends_with(".bias") {
            (0..n).map(|_| rng.uniform(0.02)).collect()
        } else if name.starts_with("embeddings.") {
            (0..n).map(|_| rng.uniform(1.0)).collect()
        } else {
            // Roughly Xavier: keeps activations in range through the layers.
            let fan_in = shape[1] as f32;
            (0..n).map(|_| rng.uniform((3.0 / fan_in).sqrt())).collect()
        };
        let t = Tensor::from_vec(data, shape, &Device::Cpu).expect("shape matches data");
        tensors.insert(name, t);
    }
    candle_core::safetensors::save(&tensors, path).map_err(|source| EmbedError::Weights {
        path: path.to_path_buf(),
        source: crate::error::without_backtrace(source),
    })
}
