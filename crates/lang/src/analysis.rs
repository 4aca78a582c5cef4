//! Analyzer chains per [`Family`], their names, and registration with tantivy.
//!
//! Every family has three analyzers, all starting with [`CjkBigramTokenizer`] → (Turkish
//! dotted/dotless I) → `LowerCaser`:
//!
//! | name | used for | chain after lowercasing |
//! |---|---|---|
//! | `hx_<code>` | indexing title/heading/text | stem + fold |
//! | `hx_<code>_q` | query terms for those fields | stop words → stem + fold |
//! | `hx_<code>_pairs` | the pair field, index *and* query | stop words → stem + fold → [`PairFilter`] |
//!
//! where `<code>` is [`Family::code`] (`en`, `de`, …, `cjk`, `plain`). The Snowball stop lists
//! are accented (`für`, `où`) or not (`como`); the sets hold both spellings, so stop words go
//! whether they are removed before or after folding, and whatever the user typed. Families
//! without a stemmer skip stemming; families without a stop-word list skip that step.
//!
//! Stemming happens after folding ("fold, then stem") except for French, Spanish, Italian and
//! Portuguese, whose Snowball stemmers need the accents (`annulée` → `annul`); see
//! [`fold_before_stem`] and the REPORT.

use crate::cjk::CjkBigramTokenizer;
use crate::filters::{DropEmpty, StopFilter, TurkishLowerCaser};
use crate::lang::{Family, family_for_locale};
use crate::pairs::PairFilter;
use std::collections::HashMap;
use std::sync::OnceLock;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, TextAnalyzer, TextAnalyzerBuilder,
    Token, TokenStream, TokenizerManager,
};

/// Which of a family's analyzers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Index analyzer of the title/heading/text fields: keeps stop words.
    Index,
    /// Query analyzer for those fields: drops stop words.
    Query,
    /// Pair-field analyzer (index and query): drops stop words, emits adjacent pairs.
    Pairs,
}

/// The registered name of a family's analyzer.
pub fn analyzer_name(family: Family, variant: Variant) -> String {
    match variant {
        Variant::Index => format!("hx_{}", family.code()),
        Variant::Query => format!("hx_{}_q", family.code()),
        Variant::Pairs => format!("hx_{}_pairs", family.code()),
    }
}

/// Whether to ASCII-fold before stemming (true) or after (false).
///
/// Folding first makes matching accent-insensitive (`telefono` and `teléfono` stem alike);
/// stemming first lets the stemmer see the accents its suffix rules are written with. Measured
/// in `examples/fold_order.rs` (10 inflected/base pairs per language): French, Italian and
/// Portuguese conflate far more pairs when stemmed first (9/10 vs 4/10, 10 vs 6, 8 vs 5) and an
/// unaccented query does no worse than with folding first; Hungarian, Turkish and Romanian do
/// better folded first (unaccented queries 9 vs 5, 4 vs 3, 6 vs 5); the rest tie.
pub fn fold_before_stem(lang: Language) -> bool {
    !accent_insensitive_stops(lang)
}

/// Whether stop words are looked up without accents (`cómo` is the stop word `como`, `où` is
/// `ou`, `è` is `e`): for the Romance languages, where accents on function words mark stress or
/// grammar, not a different word. Elsewhere accents tell words apart (German `ändern`, "change",
/// is not the stop word `andern`, "other"), so lookup is exact; the set still holds the folded
/// spellings of the accented stop words (`für` → `fur`).
pub fn accent_insensitive_stops(lang: Language) -> bool {
    matches!(
        lang,
        Language::French | Language::Spanish | Language::Portuguese | Language::Italian
    )
}

/// English query stop words: articles, pronouns, auxiliaries, question words, and the
/// fragments that splitting at apostrophes leaves (`driver's` → `driver` `s`, `don't` → `don`
/// `t`). Particles that carry meaning in support questions stay searchable: `in`, `out`, `on`,
/// `off`, `up`, `down`, `not`, `no`, `all`, `new`, `over`. Greetings and conversational filler
/// ("Hi, I was wondering…") carry no topic either.
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "thanks",
    "thank",
    "cheers",
    "regards",
    "wondering",
    "wonder",
    "kindly",
    "anyone",
    "someone",
    "know",
    "tell",
    "get",
    "got",
    "getting",
    "want",
    "wanted",
    "need",
    "needs",
    "a",
    "about",
    "am",
    "an",
    "and",
    "any",
    "are",
    "aren",
    "as",
    "at",
    "be",
    "been",
    "being",
    "but",
    "by",
    "can",
    "could",
    "d",
    "did",
    "didn",
    "do",
    "does",
    "doesn",
    "doing",
    "don",
    "each",
    "either",
    "for",
    "from",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "into",
    "is",
    "isn",
    "it",
    "its",
    "just",
    "ll",
    "m",
    "may",
    "me",
    "might",
    "must",
    "my",
    "myself",
    "of",
    "or",
    "our",
    "ours",
    "please",
    "re",
    "s",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "too",
    "us",
    "ve",
    "very",
    "via",
    "was",
    "wasn",
    "we",
    "were",
    "weren",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "won",
    "would",
    "you",
    "your",
    "yours",
];

/// Stop words of a family (lowercase, plus folded spellings), or `None` when there is no list
/// (Arabic, Greek, Romanian, Tamil, Turkish, CJK, plain).
pub fn stop_words(family: Family) -> Option<Vec<String>> {
    let lang = family.stemmer()?;
    let base: Vec<String> = if lang == Language::English {
        ENGLISH_STOP_WORDS.iter().map(|s| s.to_string()).collect()
    } else {
        stop_word_list(lang)?
    };
    let mut fold = TextAnalyzer::builder(RawTokenizer::default())
        .filter(AsciiFoldingFilter)
        .build();
    let mut out = base.clone();
    for w in &base {
        let mut s = fold.token_stream(w);
        while let Some(t) = s.next() {
            out.push(t.text.clone());
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// tantivy's Snowball list for `lang`, as strings.
fn stop_word_list(lang: Language) -> Option<Vec<String>> {
    crate::stopwords::list(lang).map(|l| l.iter().map(|s| s.to_string()).collect())
}

fn lowercased(family: Family) -> TextAnalyzerBuilder {
    let b = TextAnalyzer::builder(CjkBigramTokenizer::default());
    if family == Family::Snowball(Language::Turkish) {
        b.filter(TurkishLowerCaser).filter(LowerCaser).dynamic()
    } else {
        b.filter(LowerCaser).dynamic()
    }
}

/// Builds a family's analyzer, with an explicit fold/stem order (for experiments; use
/// [`analyzer`] otherwise).
///
/// lowercase → stop words (not in the index variant) → fold (if `fold_first`) → stem → fold
/// (unless `fold_first`) → drop emptied tokens → pairs (pair variant). Stop words are matched right after
/// lowercasing, accent-insensitively where [`accent_insensitive_stops`] says so.
pub fn analyzer_with_order(family: Family, variant: Variant, fold_first: bool) -> TextAnalyzer {
    let mut b = lowercased(family);
    let stemmer = family.stemmer();
    let fold_first = fold_first || stemmer.is_none();
    if variant != Variant::Index
        && let Some(words) = stop_words(family)
    {
        let insensitive = stemmer.is_some_and(accent_insensitive_stops);
        b = b.filter_dynamic(StopFilter::new(words, insensitive));
    }
    if fold_first {
        b = b.filter_dynamic(AsciiFoldingFilter);
    }
    if let Some(lang) = stemmer {
        b = b.filter_dynamic(crate::stem::MemoStemmer(lang));
    }
    if !fold_first {
        b = b.filter_dynamic(AsciiFoldingFilter);
    }
    if stemmer.is_some() {
        b = b.filter_dynamic(DropEmpty);
    }
    if variant == Variant::Pairs {
        b = b.filter_dynamic(PairFilter);
    }
    b.build()
}

/// A family's analyzer (a clone of one built once per process; stop sets are shared).
pub fn analyzer(family: Family, variant: Variant) -> TextAnalyzer {
    static CACHE: OnceLock<HashMap<(Family, Variant), TextAnalyzer>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        let mut m = HashMap::new();
        for &f in crate::lang::ALL_FAMILIES {
            for v in [Variant::Index, Variant::Query, Variant::Pairs] {
                m.insert((f, v), build(f, v));
            }
        }
        m
    });
    cache
        .get(&(family, variant))
        .cloned()
        .unwrap_or_else(|| build(family, variant))
}

fn build(family: Family, variant: Variant) -> TextAnalyzer {
    let fold_first = family.stemmer().is_none_or(fold_before_stem);
    analyzer_with_order(family, variant, fold_first)
}

/// The index analyzer for a Zendesk locale, with its registered name.
pub fn analyzer_for(locale: &str) -> (String, TextAnalyzer) {
    let f = family_for_locale(locale);
    (
        analyzer_name(f, Variant::Index),
        analyzer(f, Variant::Index),
    )
}

/// The query analyzer (stop words dropped) for a locale, with its registered name.
pub fn query_analyzer_for(locale: &str) -> (String, TextAnalyzer) {
    let f = family_for_locale(locale);
    (
        analyzer_name(f, Variant::Query),
        analyzer(f, Variant::Query),
    )
}

/// The pair-field analyzer for a locale, with its registered name.
pub fn pair_analyzer_for(locale: &str) -> (String, TextAnalyzer) {
    let f = family_for_locale(locale);
    (
        analyzer_name(f, Variant::Pairs),
        analyzer(f, Variant::Pairs),
    )
}

/// Registers the three analyzers of every family (60 in all). Tokenizers are not persisted
/// with an index: call this on every open, as `index.rs` does today with `helpdex_text`.
pub fn register_all(manager: &TokenizerManager) {
    for &f in crate::lang::ALL_FAMILIES {
        for v in [Variant::Index, Variant::Query, Variant::Pairs] {
            manager.register(&analyzer_name(f, v), analyzer(f, v));
        }
    }
}

/// Runs an analyzer over `text` and collects the tokens.
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut s = analyzer.token_stream(text);
    while let Some(t) = s.next() {
        out.push(t.clone());
    }
    out
}

/// Token texts of `text` under a family's analyzer.
pub fn terms(family: Family, variant: Variant, text: &str) -> Vec<String> {
    tokens(&mut analyzer(family, variant), text)
        .into_iter()
        .map(|t| t.text)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;

    fn t(locale: &str, v: Variant, text: &str) -> Vec<String> {
        terms(family_for_locale(locale), v, text)
    }

    #[test]
    fn german_inflection() {
        assert_eq!(
            t("de", Variant::Index, "Rechnungen"),
            t("de", Variant::Index, "Rechnung")
        );
        assert_eq!(t("de-ch", Variant::Index, "Rechnungen"), ["rechnung"]);
        assert_eq!(
            t("de", Variant::Index, "Passwörter"),
            t("de", Variant::Index, "Passwort")
        );
        assert_eq!(
            t("de", Variant::Index, "Häuser"),
            t("de", Variant::Index, "Hauser")
        );
    }

    #[test]
    fn french_and_spanish_verbs() {
        let fr = |s| t("fr", Variant::Index, s);
        assert_eq!(fr("annuler"), fr("annulé"));
        assert_eq!(fr("annulez"), fr("annuler"));
        assert_eq!(fr("réinitialiser"), fr("reinitialisez"));
        let es = |s| t("es", Variant::Index, s);
        assert_eq!(es("cancelar"), es("cancelado"));
        assert_eq!(es("cambiar"), es("cambié"));
        assert_eq!(es("contraseñas"), es("contraseña"));
        assert_eq!(es("teléfono"), es("telefono"));
    }

    #[test]
    fn stop_words_per_language() {
        assert_eq!(
            t("en-us", Variant::Query, "How do I reset my password?"),
            ["reset", "password"]
        );
        assert_eq!(
            t("en-us", Variant::Index, "How do I reset my password?").len(),
            6
        );
        assert_eq!(
            t("de", Variant::Query, "Wie kann ich mein Passwort ändern"),
            t("de", Variant::Index, "Passwort andern")
        );
        assert_eq!(
            t(
                "fr",
                Variant::Query,
                "Comment changer l'adresse de la carte"
            ),
            ["comment", "chang", "adress", "cart"]
        );
        assert_eq!(
            t(
                "es",
                Variant::Query,
                "cómo cambio la contraseña de mi cuenta"
            ),
            ["cambi", "contrasen", "cuent"]
        );
        assert_eq!(
            t("it", Variant::Query, "modificare l'indirizzo dell'account"),
            ["modific", "indirizz", "account"]
        );
        // Unaccented spellings of stop words are dropped too.
        assert_eq!(
            t("de", Variant::Query, "fur die Rechnung"),
            t("de", Variant::Query, "für die Rechnung")
        );
        // No list: nothing dropped.
        assert_eq!(t("tr", Variant::Query, "ve bir").len(), 2);
        assert_eq!(t("ja", Variant::Query, "の").len(), 1);
    }

    #[test]
    fn apostrophes() {
        assert_eq!(
            t("en-us", Variant::Index, "driver's license"),
            ["driver", "s", "licens"]
        );
        assert_eq!(
            t("en-us", Variant::Query, "driver's license"),
            ["driver", "licens"]
        );
        assert_eq!(
            t("en-us", Variant::Query, "driver’s license"),
            ["driver", "licens"]
        );
        assert_eq!(
            t("en-us", Variant::Pairs, "driver's license"),
            ["driver_licens"]
        );
        assert_eq!(t("en-us", Variant::Query, "I don't see it"), ["see"]);
        assert_eq!(t("fr", Variant::Query, "l'application"), ["appliqu"]);
    }

    #[test]
    fn pairs_per_language() {
        assert_eq!(
            t("en-us", Variant::Pairs, "Refund of the amount"),
            ["refund_amount"]
        );
        assert_eq!(
            t("en-us", Variant::Pairs, "refunded amounts"),
            ["refund_amount"]
        );
        assert_eq!(
            t("de", Variant::Pairs, "Rückerstattung des Betrags"),
            ["ruckerstatt_betrag"]
        );
        assert_eq!(
            t("zh-tw", Variant::Pairs, "客服中心"),
            ["客服_服中", "服中_中心"]
        );
    }

    #[test]
    fn turkish_i() {
        assert_eq!(
            t("tr", Variant::Index, "KAYIT"),
            t("tr", Variant::Index, "kayıt")
        );
        assert_eq!(
            t("tr", Variant::Index, "İPTAL"),
            t("tr", Variant::Index, "iptal")
        );
    }

    #[test]
    fn cjk_and_plain() {
        assert_eq!(
            t("zh-cn", Variant::Index, "客服中心"),
            ["客服", "服中", "中心"]
        );
        assert_eq!(
            t("ja", Variant::Index, "iPhoneの設定"),
            ["iphone", "の設", "設定"]
        );
        assert_eq!(t("pl", Variant::Index, "Zażółć GĘŚLĄ"), ["zazolc", "gesla"]);
        assert_eq!(t("he", Variant::Index, "שלום עולם"), ["שלום", "עולם"]);
    }

    #[test]
    fn names_are_unique_and_registered() {
        let m = TokenizerManager::default();
        register_all(&m);
        let mut names = std::collections::BTreeSet::new();
        for &f in crate::lang::ALL_FAMILIES {
            for v in [Variant::Index, Variant::Query, Variant::Pairs] {
                let n = analyzer_name(f, v);
                assert!(m.get(&n).is_some(), "{n}");
                assert!(names.insert(n));
            }
        }
        assert_eq!(names.len(), 60);
        assert_eq!(analyzer_for("EN_us").0, "hx_en");
        assert_eq!(analyzer_for("zh-TW").0, "hx_cjk");
        assert_eq!(analyzer_for("cs").0, "hx_plain");
        assert_eq!(
            Lang::for_locale("nb").map(|l| l.family().code()),
            Some("no")
        );
    }
}
