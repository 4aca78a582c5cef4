//! Every analyzer, every input: no panic, deterministic, sane offsets and positions.

use helpdex_lang::analysis::{Variant, analyzer, tokens};
use helpdex_lang::{ALL_FAMILIES, Family, detect_language};
use proptest::prelude::*;
use tantivy::tokenizer::Token;

const VARIANTS: [Variant; 3] = [Variant::Index, Variant::Query, Variant::Pairs];

/// Checks the invariants of one analysis and returns its tokens.
fn check(family: Family, variant: Variant, text: &str) -> Vec<Token> {
    let toks = tokens(&mut analyzer(family, variant), text);
    let again = tokens(&mut analyzer(family, variant), text);
    assert_eq!(toks, again, "not deterministic: {family} {variant:?}");
    let mut last_pos: Option<usize> = None;
    for t in &toks {
        assert!(
            t.offset_from <= t.offset_to && t.offset_to <= text.len(),
            "{t:?}"
        );
        assert!(
            text.is_char_boundary(t.offset_from) && text.is_char_boundary(t.offset_to),
            "{t:?}"
        );
        assert!(!t.text.is_empty(), "empty token {t:?}");
        assert!(t.position_length >= 1);
        if let Some(p) = last_pos {
            assert!(t.position > p, "positions not increasing: {toks:?}");
        }
        last_pos = Some(t.position);
        if variant != Variant::Pairs {
            assert!(!t.text.contains('_'), "separator inside a word token {t:?}");
        } else {
            assert_eq!(t.text.matches('_').count(), 1, "{t:?}");
        }
    }
    toks
}

fn check_all(text: &str) {
    for &f in ALL_FAMILIES {
        for v in VARIANTS {
            check(f, v, text);
        }
    }
    let _ = detect_language(text);
}

/// Text drawn from the scripts and troublemakers a help center sees.
fn messy() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "Rechnung",
        "driver's",
        "l’application",
        "客服中心",
        "歡迎",
        "の設定",
        "iPhone",
        "비밀번호를",
        "รหัสผ่าน",
        "கணக்கு",
        "مَرْحَبًا",
        "שלום",
        "Καλημέρα",
        "İPTAL",
        "ｉＰｈｏｎｅ",
        "ｶﾞ",
        "e\u{301}",
        "\u{301}",
        "\u{200d}",
        "\u{200f}",
        "\u{202e}",
        "\u{ad}",
        "\u{fe0f}",
        "👍🏽",
        "👨‍👩‍👧",
        "🇩🇪",
        " ",
        "\n",
        ".",
        ", ",
        "›",
        "_",
        "-",
        "'",
        "\u{0}",
        "\u{feff}",
        "𠀀",
        "ー",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

/// Cases per property: `HELPDEX_FUZZ_CASES` for a long run (issue 12), else 100.
fn cases() -> u32 {
    std::env::var("HELPDEX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(100)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_string(s in any::<String>()) {
        check_all(&s);
    }

    #[test]
    fn messy_strings(s in messy()) {
        check_all(&s);
    }

    #[test]
    fn any_locale_code(s in any::<String>()) {
        let _ = helpdex_lang::Lang::for_locale(&s);
        let _ = helpdex_lang::analyzer_for(&s);
    }
}

#[test]
fn edge_cases() {
    let cases = [
        "",
        " ",
        "\u{0}",
        "\u{301}\u{301}\u{301}",
        "\u{200d}\u{200d}",
        "😀",
        "👨‍👩‍👧‍👦 🏳️‍🌈",
        "\u{202b}שלום עולם\u{202c}",
        "مرحبا بكم في مركز المساعدة",
        "a\u{301}\u{302}\u{303}",
        "中\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}文",
        "\u{FF9E}\u{FF9E}",
        "ﷺ",
        "ǅungla",
        "ΣΊΣΥΦΟΣ",
        "'''",
        "’s",
        "_ _ _",
        "...",
        "A_B",
    ];
    for c in cases {
        check_all(c);
    }
}

#[test]
fn one_megabyte_without_spaces() {
    for unit in ["a", "中", "ก", "😀", "é", "\u{301}", "ab中", "İ", "ｶﾞ"] {
        let text = unit.repeat(1_000_000 / unit.len());
        for &f in [Family::Cjk, helpdex_lang::family_for_locale("tr")].iter() {
            for v in [Variant::Index, Variant::Pairs] {
                let toks = check(f, v, &text);
                assert!(toks.len() <= text.chars().count(), "{unit}");
            }
        }
        let _ = detect_language(&text);
    }
}

#[test]
fn huge_text_indexes() {
    // A tantivy index accepts the output of every analyzer on hostile input.
    use helpdex_lang::schema::{LangSchema, add_passage};
    use tantivy::{Index, TantivyDocument, schema::Schema};
    let mut b = Schema::builder();
    let schema = LangSchema::add_to(&mut b);
    let index = Index::create_in_ram(b.build());
    helpdex_lang::register_all(index.tokenizers());
    let mut w = index
        .writer_with_num_threads(1, 50_000_000)
        .expect("writer");
    let nasty = format!(
        "{}{}{}",
        "中".repeat(100_000),
        "a".repeat(100_000),
        "👍🏽\u{301}".repeat(10_000)
    );
    for f in schema.all() {
        let mut d = TantivyDocument::default();
        add_passage(&mut d, f, &nasty, &nasty, &nasty);
        w.add_document(d).expect("add");
    }
    w.commit().expect("commit");
}

#[test]
fn every_bmp_character_alone() {
    // Found the Arabic stemmer emptying U+0640 (tatweel): every lone character must give
    // non-empty tokens in the families with stemmers that normalise aggressively.
    for loc in ["ar", "el", "ta", "ru", "tr", "ja"] {
        let f = helpdex_lang::family_for_locale(loc);
        let mut a = analyzer(f, Variant::Index);
        for cp in 0..0x10000u32 {
            if let Some(c) = char::from_u32(cp) {
                let s = c.to_string();
                for t in tokens(&mut a, &s) {
                    assert!(!t.text.is_empty(), "{loc}: U+{cp:04X}");
                }
            }
        }
    }
}
