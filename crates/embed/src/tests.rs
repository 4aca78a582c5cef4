//! Unit tests on the tiny generated model: nothing is downloaded.

use std::fs;
use std::path::{Path, PathBuf};

use crate::tiny_model::{self, TinySpec};
use crate::{EmbedError, EmbedOptions, Embedder, Pooling, Prefixes};

fn tiny(seed: u64) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-model");
    tiny_model::write(&dir, seed).unwrap();
    (tmp, dir)
}

fn load(dir: &Path) -> Embedder {
    Embedder::load(dir, EmbedOptions::default()).unwrap()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn long_text(words: usize) -> String {
    (0..words)
        .map(|i| ["reset", "your", "password", "in", "account", "settings"][i % 6])
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn loads_tiny_model_and_embeds() {
    let (_tmp, dir) = tiny(1);
    let m = load(&dir);
    assert_eq!(m.dim(), tiny_model::HIDDEN);
    // sentence_bert_config.json wins over the stale 16 in tokenizer.json.
    assert_eq!(m.max_tokens(), tiny_model::MAX_SEQ_LENGTH);
    assert_eq!(m.pooling(), Pooling::Mean);
    assert!(m.normalizes());
    assert_eq!(m.query_prefix(), "");
    assert_eq!(m.fingerprint().len(), 64);

    let v = m
        .embed_passages(&["How do I reset my password?", "Refund an order"])
        .unwrap();
    assert_eq!(v.len(), 2);
    assert!(
        v.iter()
            .all(|v| v.len() == m.dim() && v.iter().all(|x| x.is_finite()))
    );
    assert!(
        max_diff(&v[0], &v[1]) > 1e-3,
        "different texts, different vectors"
    );
    let q = m.embed_query("reset password").unwrap();
    assert_eq!(q.len(), m.dim());
    assert!(m.embed_passages(&[]).unwrap().is_empty());
    assert_eq!(m.embed_passages(&[""]).unwrap()[0].len(), m.dim());
}

#[test]
fn output_is_deterministic() {
    let (_tmp, dir) = tiny(1);
    let texts = ["billing and invoices", "cancel my subscription plan please"];
    let a = load(&dir).embed_passages(&texts).unwrap();
    let b = load(&dir).embed_passages(&texts).unwrap();
    assert_eq!(a, b, "bit-identical across loads and runs");
}

#[test]
fn long_input_is_truncated_to_max_tokens() {
    let (_tmp, dir) = tiny(1);
    let m = load(&dir);
    let long = long_text(200);
    assert_eq!(m.token_count(&long).unwrap(), 200);
    let enc = m.tokenizer.encode_fast(long.as_str(), true).unwrap();
    assert_eq!(enc.len(), m.max_tokens());
    // Everything past the window is ignored: appending text changes nothing.
    let more = format!("{long} refund shipping delivery error");
    let v = m.embed_passages(&[&long, &more]).unwrap();
    assert_eq!(v[0], v[1]);
    // A short text is not padded to a fixed length (the stale Fixed(16)).
    assert_eq!(m.tokenizer.encode_fast("help", true).unwrap().len(), 3);
}

#[test]
fn max_tokens_option_overrides_and_is_checked() {
    let (_tmp, dir) = tiny(1);
    let opts = EmbedOptions {
        max_tokens: Some(8),
        ..Default::default()
    };
    let m = Embedder::load(&dir, opts).unwrap();
    assert_eq!(m.max_tokens(), 8);
    let too_many = EmbedOptions {
        max_tokens: Some(tiny_model::MAX_POSITIONS + 1),
        ..Default::default()
    };
    assert!(matches!(
        Embedder::load(&dir, too_many),
        Err(EmbedError::InvalidOption(_))
    ));
}

#[test]
fn batching_equals_one_by_one() {
    let (_tmp, dir) = tiny(3);
    let texts: Vec<String> = (1..=11)
        .map(|n| long_text(n * 3))
        .chain(["a".into(), "".into()])
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let single = load(&dir);
    let one_by_one: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| single.embed_passages(&[t]).unwrap().remove(0))
        .collect();
    for (batch_size, batch_tokens) in [(4, 10_000), (32, 10_000), (32, 40), (1, 1)] {
        let opts = EmbedOptions {
            batch_size,
            batch_tokens,
            ..Default::default()
        };
        let batched = Embedder::load(&dir, opts)
            .unwrap()
            .embed_passages(&texts)
            .unwrap();
        for ((text, b), one) in texts.iter().zip(&batched).zip(&one_by_one) {
            assert!(
                max_diff(one, b) < 1e-5,
                "{batch_size}/{batch_tokens} {text:?}: {}",
                max_diff(one, b)
            );
        }
    }
}

#[test]
fn vectors_are_normalised_as_configured() {
    let (_tmp, dir) = tiny(4);
    let texts = ["order refund", "how do i install the app on my phone"];
    let unit = load(&dir).embed_passages(&texts).unwrap();
    for v in &unit {
        assert!((norm(v) - 1.0).abs() < 1e-5);
    }
    let raw = Embedder::load(
        &dir,
        EmbedOptions {
            normalize: Some(false),
            ..Default::default()
        },
    )
    .unwrap()
    .embed_passages(&texts)
    .unwrap();
    for (u, r) in unit.iter().zip(&raw) {
        assert!(
            (norm(r) - 1.0).abs() > 1e-3,
            "raw mean pooling is not unit length"
        );
        let cos = u.iter().zip(r).map(|(a, b)| a * b).sum::<f32>() / norm(r);
        assert!((cos - 1.0).abs() < 1e-5, "same direction");
    }

    // A model without a Normalize module is left alone.
    let tmp = tempfile::tempdir().unwrap();
    tiny_model::write_spec(
        tmp.path(),
        &TinySpec {
            normalize: false,
            ..TinySpec::new(4)
        },
    )
    .unwrap();
    let m = load(tmp.path());
    assert!(!m.normalizes());
    assert_eq!(m.embed_passages(&texts).unwrap(), raw);
}

#[test]
fn cls_pooling_is_supported() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model::write_spec(
        tmp.path(),
        &TinySpec {
            cls_pooling: true,
            ..TinySpec::new(1)
        },
    )
    .unwrap();
    let m = load(tmp.path());
    assert_eq!(m.pooling(), Pooling::Cls);
    let (_t, mean_dir) = tiny(1);
    let text = ["contact support by email"];
    assert!(
        max_diff(
            &m.embed_passages(&text).unwrap()[0],
            &load(&mean_dir).embed_passages(&text).unwrap()[0]
        ) > 1e-3
    );
    assert_ne!(m.fingerprint(), load(&mean_dir).fingerprint());
}

#[test]
fn fingerprint_tracks_weights_and_settings() {
    let (_a, dir_a) = tiny(1);
    let (_b, dir_b) = tiny(1);
    let (_c, dir_c) = tiny(2);
    let fa = load(&dir_a).fingerprint().to_owned();
    assert_eq!(
        fa,
        load(&dir_b).fingerprint(),
        "same files elsewhere: same fingerprint"
    );
    // Seed 2 differs only in weight values: the safetensors header is identical.
    let header = |d: &Path| {
        let b = fs::read(d.join("model.safetensors")).unwrap();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        b[..8 + n].to_vec()
    };
    assert_eq!(header(&dir_a), header(&dir_c));
    assert_ne!(fa, load(&dir_c).fingerprint(), "weights changed");

    let custom = EmbedOptions {
        prefixes: Prefixes::Custom {
            query: "q: ".into(),
            passage: "p: ".into(),
        },
        ..Default::default()
    };
    assert_ne!(
        fa,
        Embedder::load(&dir_a, custom).unwrap().fingerprint(),
        "prefixes changed"
    );
    let shorter = EmbedOptions {
        max_tokens: Some(16),
        ..Default::default()
    };
    assert_ne!(
        fa,
        Embedder::load(&dir_a, shorter).unwrap().fingerprint(),
        "truncation changed"
    );
    let batch = EmbedOptions {
        batch_size: 3,
        ..Default::default()
    };
    assert_eq!(
        fa,
        Embedder::load(&dir_a, batch).unwrap().fingerprint(),
        "batch size is not a model property"
    );
}

#[test]
fn generator_is_deterministic() {
    let (_a, a) = tiny(9);
    let (_b, b) = tiny(9);
    for f in ["model.safetensors", "tokenizer.json", "config.json"] {
        assert_eq!(
            fs::read(a.join(f)).unwrap(),
            fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn prefixes_auto_custom_and_prompts() {
    let tmp = tempfile::tempdir().unwrap();
    let e5 = tmp.path().join("tiny-e5-small");
    tiny_model::write(&e5, 1).unwrap();
    let m = load(&e5);
    assert_eq!(
        (m.query_prefix(), m.passage_prefix()),
        ("query: ", "passage: ")
    );
    // The prefix goes into the text: "query: x" is embedded like raw "query: x".
    let q = m.embed_query("reset password").unwrap();
    assert_eq!(q, m.embed_raw(&["query: reset password"]).unwrap()[0]);
    let none = Embedder::load(
        &e5,
        EmbedOptions {
            prefixes: Prefixes::None,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(none.query_prefix(), "");

    let (_t, dir) = tiny(1);
    fs::write(
        dir.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "Represent this: ", "document": ""}}"#,
    )
    .unwrap();
    let m = load(&dir);
    assert_eq!(
        (m.query_prefix(), m.passage_prefix()),
        ("Represent this: ", "")
    );
}

/// Loads `dir` after `edit`, expecting an error.
fn load_err(edit: impl FnOnce(&Path)) -> EmbedError {
    let (_tmp, dir) = tiny(1);
    edit(&dir);
    let e = Embedder::load(&dir, EmbedOptions::default()).expect_err("load must fail");
    eprintln!("{e}"); // shown with --nocapture: the messages are part of the API
    e
}

fn patch_config(dir: &Path, file: &str, key: &str, value: serde_json::Value) {
    let path = dir.join(file);
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json[key] = value;
    fs::write(path, json.to_string()).unwrap();
}

#[test]
fn bad_directories_give_clear_errors() {
    let e = Embedder::load("/nonexistent/model", EmbedOptions::default()).unwrap_err();
    assert!(matches!(e, EmbedError::NotADirectory(_)), "{e}");

    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let e = load_err(|d| fs::remove_file(d.join(file)).unwrap());
        assert!(
            matches!(&e, EmbedError::MissingFile { path, .. } if path.ends_with(file)),
            "{e}"
        );
    }

    let e = load_err(|d| patch_config(d, "config.json", "model_type", "xlm-roberta".into()));
    let msg = e.to_string();
    assert!(
        matches!(e, EmbedError::Unsupported { .. })
            && msg.contains("config.json")
            && msg.contains("xlm-roberta"),
        "{msg}"
    );

    let e = load_err(|d| fs::write(d.join("config.json"), "{ not json").unwrap());
    assert!(matches!(e, EmbedError::Json { .. }), "{e}");

    let e = load_err(|d| patch_config(d, "config.json", "hidden_size", 64.into()));
    // Pooling dimension no longer matches.
    assert!(matches!(e, EmbedError::Unsupported { .. }), "{e}");

    let e = load_err(|d| {
        patch_config(d, "config.json", "intermediate_size", 48.into());
    });
    let msg = e.to_string();
    assert!(
        matches!(e, EmbedError::Weights { .. })
            && msg.contains("model.safetensors")
            && msg.contains("shape"),
        "{msg}"
    );

    let e = load_err(|d| patch_config(d, "config.json", "num_hidden_layers", 3.into()));
    assert!(matches!(e, EmbedError::Weights { .. }), "{e}");

    let e = load_err(|d| patch_config(d, "config.json", "vocab_size", 10.into()));
    assert!(
        matches!(&e, EmbedError::Unsupported { path, .. } if path.ends_with("config.json")),
        "{e}"
    );

    let e = load_err(|d| {
        let path = d.join("model.safetensors");
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(matches!(e, EmbedError::Weights { .. }), "{e}");

    let e = load_err(|d| fs::write(d.join("model.safetensors"), b"garbage").unwrap());
    assert!(matches!(e, EmbedError::Weights { .. }), "{e}");

    let e = load_err(|d| fs::write(d.join("tokenizer.json"), r#"{"model": 1}"#).unwrap());
    assert!(matches!(e, EmbedError::Tokenizer { .. }), "{e}");

    let e = load_err(|d| {
        patch_config(
            d,
            "1_Pooling/config.json",
            "pooling_mode_max_tokens",
            true.into(),
        );
    });
    assert!(
        matches!(&e, EmbedError::Unsupported { path, .. } if path.ends_with("1_Pooling/config.json")),
        "{e}"
    );

    let e = load_err(|d| {
        fs::write(
            d.join("modules.json"),
            r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#,
        )
        .unwrap();
    });
    assert!(
        matches!(&e, EmbedError::Unsupported { message, .. } if message.contains("Dense")),
        "{e}"
    );

    let e = load_err(|d| fs::remove_dir_all(d.join("1_Pooling")).unwrap());
    assert!(matches!(e, EmbedError::MissingFile { .. }), "{e}");
}

#[test]
fn embedder_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Embedder>();
}

/// Int8 layers where the CPU has them, f32 otherwise; the fingerprint tells
/// the two apart, and their vectors agree closely.
#[test]
fn int8_layers_run_where_the_cpu_can_and_change_the_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model::write_spec(
        tmp.path(),
        &TinySpec {
            hidden: 64,
            ..TinySpec::new(7)
        },
    )
    .unwrap();
    let with = |int8| {
        Embedder::load(
            tmp.path(),
            EmbedOptions {
                int8,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let (q, f) = (with(true), with(false));
    assert!(!f.int8(), "int8 = false always runs f32");
    assert_eq!(q.int8(), crate::int8::available());
    assert_eq!(q.fingerprint() == f.fingerprint(), !q.int8());
    let texts = ["reset your password", &long_text(40), "refund for my order"];
    for (a, b) in q
        .embed_passages(&texts)
        .unwrap()
        .iter()
        .zip(&f.embed_passages(&texts).unwrap())
    {
        let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cos > 0.99, "cosine int8 vs f32 {cos}");
    }
}
