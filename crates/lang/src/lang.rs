//! Languages, Zendesk locale codes, and the analyzer family each language is indexed with.

use std::fmt;
use tantivy::tokenizer::Language;

/// A natural language that a Zendesk locale or a detected query can be in.
///
/// The list covers the 18 languages with a Snowball stemmer in tantivy 0.27, Chinese, Japanese
/// and Korean, and the other languages Zendesk Guide offers as locales (or that the query
/// detector can return). Each variant knows its ISO 639-1 code ([`Lang::code`]) and its
/// analyzer [`Family`] ([`Lang::family`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Lang {
    // Snowball stemmer in tantivy 0.27 (`tantivy::tokenizer::Language`).
    Arabic,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Greek,
    Hungarian,
    Italian,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Spanish,
    Swedish,
    Tamil,
    Turkish,
    // Written without spaces between words: indexed as character bigrams.
    Chinese,
    Japanese,
    Korean,
    Thai,
    // Everything else: lowercase + ASCII folding, no stemming, no stop words.
    Afrikaans,
    Armenian,
    Basque,
    Bengali,
    Bulgarian,
    Catalan,
    Croatian,
    Czech,
    Estonian,
    Filipino,
    Georgian,
    Hebrew,
    Hindi,
    Icelandic,
    Indonesian,
    Irish,
    Latvian,
    Lithuanian,
    Macedonian,
    Malay,
    Persian,
    Polish,
    Serbian,
    Slovak,
    Slovenian,
    Ukrainian,
    Urdu,
    Vietnamese,
    Welsh,
}

/// All languages, in declaration order.
pub const ALL_LANGS: &[Lang] = &[
    Lang::Arabic,
    Lang::Danish,
    Lang::Dutch,
    Lang::English,
    Lang::Finnish,
    Lang::French,
    Lang::German,
    Lang::Greek,
    Lang::Hungarian,
    Lang::Italian,
    Lang::Norwegian,
    Lang::Portuguese,
    Lang::Romanian,
    Lang::Russian,
    Lang::Spanish,
    Lang::Swedish,
    Lang::Tamil,
    Lang::Turkish,
    Lang::Chinese,
    Lang::Japanese,
    Lang::Korean,
    Lang::Thai,
    Lang::Afrikaans,
    Lang::Armenian,
    Lang::Basque,
    Lang::Bengali,
    Lang::Bulgarian,
    Lang::Catalan,
    Lang::Croatian,
    Lang::Czech,
    Lang::Estonian,
    Lang::Filipino,
    Lang::Georgian,
    Lang::Hebrew,
    Lang::Hindi,
    Lang::Icelandic,
    Lang::Indonesian,
    Lang::Irish,
    Lang::Latvian,
    Lang::Lithuanian,
    Lang::Macedonian,
    Lang::Malay,
    Lang::Persian,
    Lang::Polish,
    Lang::Serbian,
    Lang::Slovak,
    Lang::Slovenian,
    Lang::Ukrainian,
    Lang::Urdu,
    Lang::Vietnamese,
    Lang::Welsh,
];

/// How a language is analysed. One tantivy analyzer (and, in the recommended schema, one set of
/// fields) per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Snowball stemmer of that language (+ its stop-word list for queries and pairs, when
    /// tantivy has one).
    Snowball(Language),
    /// Chinese, Japanese, Korean (and Thai): character bigrams, no stemming, no stop words.
    Cjk,
    /// Lowercase + ASCII folding only.
    Plain,
}

/// All families: the 18 Snowball languages, then `Cjk`, then `Plain`.
pub const ALL_FAMILIES: &[Family] = &[
    Family::Snowball(Language::Arabic),
    Family::Snowball(Language::Danish),
    Family::Snowball(Language::Dutch),
    Family::Snowball(Language::English),
    Family::Snowball(Language::Finnish),
    Family::Snowball(Language::French),
    Family::Snowball(Language::German),
    Family::Snowball(Language::Greek),
    Family::Snowball(Language::Hungarian),
    Family::Snowball(Language::Italian),
    Family::Snowball(Language::Norwegian),
    Family::Snowball(Language::Portuguese),
    Family::Snowball(Language::Romanian),
    Family::Snowball(Language::Russian),
    Family::Snowball(Language::Spanish),
    Family::Snowball(Language::Swedish),
    Family::Snowball(Language::Tamil),
    Family::Snowball(Language::Turkish),
    Family::Cjk,
    Family::Plain,
];

impl Family {
    /// Short stable name used in analyzer and field names: the ISO 639-1 code of the stemmer's
    /// language (`en`, `de`, …), `cjk` or `plain`.
    pub fn code(self) -> &'static str {
        match self {
            Family::Snowball(l) => snowball_code(l),
            Family::Cjk => "cjk",
            Family::Plain => "plain",
        }
    }

    /// The Snowball language, if any.
    pub fn stemmer(self) -> Option<Language> {
        match self {
            Family::Snowball(l) => Some(l),
            _ => None,
        }
    }

    /// The family for an analyzer/field code produced by [`Family::code`].
    pub fn from_code(code: &str) -> Option<Family> {
        ALL_FAMILIES.iter().copied().find(|f| f.code() == code)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

fn snowball_code(l: Language) -> &'static str {
    match l {
        Language::Arabic => "ar",
        Language::Danish => "da",
        Language::Dutch => "nl",
        Language::English => "en",
        Language::Finnish => "fi",
        Language::French => "fr",
        Language::German => "de",
        Language::Greek => "el",
        Language::Hungarian => "hu",
        Language::Italian => "it",
        Language::Norwegian => "no",
        Language::Portuguese => "pt",
        Language::Romanian => "ro",
        Language::Russian => "ru",
        Language::Spanish => "es",
        Language::Swedish => "sv",
        Language::Tamil => "ta",
        Language::Turkish => "tr",
    }
}

impl Lang {
    /// ISO 639-1 code (`no` for Norwegian, `fil` for Filipino, which has none).
    pub fn code(self) -> &'static str {
        use Lang::*;
        match self {
            Arabic => "ar",
            Danish => "da",
            Dutch => "nl",
            English => "en",
            Finnish => "fi",
            French => "fr",
            German => "de",
            Greek => "el",
            Hungarian => "hu",
            Italian => "it",
            Norwegian => "no",
            Portuguese => "pt",
            Romanian => "ro",
            Russian => "ru",
            Spanish => "es",
            Swedish => "sv",
            Tamil => "ta",
            Turkish => "tr",
            Chinese => "zh",
            Japanese => "ja",
            Korean => "ko",
            Thai => "th",
            Afrikaans => "af",
            Armenian => "hy",
            Basque => "eu",
            Bengali => "bn",
            Bulgarian => "bg",
            Catalan => "ca",
            Croatian => "hr",
            Czech => "cs",
            Estonian => "et",
            Filipino => "fil",
            Georgian => "ka",
            Hebrew => "he",
            Hindi => "hi",
            Icelandic => "is",
            Indonesian => "id",
            Irish => "ga",
            Latvian => "lv",
            Lithuanian => "lt",
            Macedonian => "mk",
            Malay => "ms",
            Persian => "fa",
            Polish => "pl",
            Serbian => "sr",
            Slovak => "sk",
            Slovenian => "sl",
            Ukrainian => "uk",
            Urdu => "ur",
            Vietnamese => "vi",
            Welsh => "cy",
        }
    }

    /// The analyzer family this language is indexed and queried with.
    pub fn family(self) -> Family {
        use Lang::*;
        match self {
            Arabic => Family::Snowball(Language::Arabic),
            Danish => Family::Snowball(Language::Danish),
            Dutch => Family::Snowball(Language::Dutch),
            English => Family::Snowball(Language::English),
            Finnish => Family::Snowball(Language::Finnish),
            French => Family::Snowball(Language::French),
            German => Family::Snowball(Language::German),
            Greek => Family::Snowball(Language::Greek),
            Hungarian => Family::Snowball(Language::Hungarian),
            Italian => Family::Snowball(Language::Italian),
            Norwegian => Family::Snowball(Language::Norwegian),
            Portuguese => Family::Snowball(Language::Portuguese),
            Romanian => Family::Snowball(Language::Romanian),
            Russian => Family::Snowball(Language::Russian),
            Spanish => Family::Snowball(Language::Spanish),
            Swedish => Family::Snowball(Language::Swedish),
            Tamil => Family::Snowball(Language::Tamil),
            Turkish => Family::Snowball(Language::Turkish),
            Chinese | Japanese | Korean | Thai => Family::Cjk,
            _ => Family::Plain,
        }
    }

    /// The language of a Zendesk locale code (`en-us`, `de-CH`, `pt_BR`, `zh-tw`, `es-419`,
    /// `nb`, …): case-insensitive, `_` and `-` alike, surrounding whitespace ignored; region,
    /// script and private-use subtags (`zh-Hant-TW`, `en-x-1`) do not matter. `None` for codes
    /// that are not a known language (the caller falls back to [`Family::Plain`]).
    pub fn for_locale(locale: &str) -> Option<Lang> {
        let primary = locale.trim().split(['-', '_']).next()?;
        if primary.is_empty() || primary.len() > 3 || !primary.is_ascii() {
            return None;
        }
        let primary = primary.to_ascii_lowercase();
        Lang::from_iso(&primary)
    }

    /// The language for an ISO 639-1 (or a few ISO 639-2/3 and legacy) codes, lowercase.
    fn from_iso(code: &str) -> Option<Lang> {
        use Lang::*;
        Some(match code {
            "ar" | "ara" => Arabic,
            "da" | "dan" => Danish,
            "nl" | "nld" | "dut" => Dutch,
            "en" | "eng" => English,
            "fi" | "fin" => Finnish,
            "fr" | "fra" | "fre" => French,
            "de" | "deu" | "ger" => German,
            "el" | "ell" | "gre" => Greek,
            "hu" | "hun" => Hungarian,
            "it" | "ita" => Italian,
            // Zendesk uses `no`; `nb` (Bokmål) and `nn` (Nynorsk) also occur.
            "no" | "nb" | "nn" | "nor" | "nob" | "nno" => Norwegian,
            "pt" | "por" => Portuguese,
            "ro" | "ron" | "rum" | "mo" => Romanian,
            "ru" | "rus" => Russian,
            "es" | "spa" => Spanish,
            "sv" | "swe" => Swedish,
            "ta" | "tam" => Tamil,
            "tr" | "tur" => Turkish,
            "zh" | "zho" | "chi" | "cmn" | "yue" => Chinese,
            "ja" | "jpn" => Japanese,
            "ko" | "kor" => Korean,
            "th" | "tha" => Thai,
            "af" | "afr" => Afrikaans,
            "hy" | "hye" | "arm" => Armenian,
            "eu" | "eus" | "baq" => Basque,
            "bn" | "ben" => Bengali,
            "bg" | "bul" => Bulgarian,
            "ca" | "cat" => Catalan,
            "hr" | "hrv" => Croatian,
            "cs" | "ces" | "cze" => Czech,
            "et" | "est" => Estonian,
            "fil" | "tl" | "tgl" => Filipino,
            "ka" | "kat" | "geo" => Georgian,
            // `iw` is the pre-1989 code for Hebrew that some systems still emit.
            "he" | "iw" | "heb" => Hebrew,
            "hi" | "hin" => Hindi,
            "is" | "isl" | "ice" => Icelandic,
            // `in` is the legacy code for Indonesian.
            "id" | "in" | "ind" => Indonesian,
            "ga" | "gle" => Irish,
            "lv" | "lav" => Latvian,
            "lt" | "lit" => Lithuanian,
            "mk" | "mkd" | "mac" => Macedonian,
            "ms" | "msa" | "may" => Malay,
            "fa" | "fas" | "per" | "pes" => Persian,
            "pl" | "pol" => Polish,
            "sr" | "srp" => Serbian,
            "sk" | "slk" | "slo" => Slovak,
            "sl" | "slv" => Slovenian,
            "uk" | "ukr" => Ukrainian,
            "ur" | "urd" => Urdu,
            "vi" | "vie" => Vietnamese,
            "cy" | "cym" | "wel" => Welsh,
            _ => return None,
        })
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The analyzer family for a locale code; unknown or malformed codes get [`Family::Plain`].
pub fn family_for_locale(locale: &str) -> Family {
    Lang::for_locale(locale).map_or(Family::Plain, Lang::family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_normalisation() {
        assert_eq!(Lang::for_locale("en-us"), Some(Lang::English));
        assert_eq!(Lang::for_locale("EN-US"), Some(Lang::English));
        assert_eq!(Lang::for_locale("en_GB"), Some(Lang::English));
        assert_eq!(Lang::for_locale("  de-ch "), Some(Lang::German));
        assert_eq!(Lang::for_locale("de-CH"), Some(Lang::German));
        assert_eq!(Lang::for_locale("fr-ca"), Some(Lang::French));
        assert_eq!(Lang::for_locale("es-419"), Some(Lang::Spanish));
        assert_eq!(Lang::for_locale("pt-br"), Some(Lang::Portuguese));
        assert_eq!(Lang::for_locale("pt_BR"), Some(Lang::Portuguese));
        assert_eq!(Lang::for_locale("nb"), Some(Lang::Norwegian));
        assert_eq!(Lang::for_locale("no"), Some(Lang::Norwegian));
        assert_eq!(Lang::for_locale("zh-cn"), Some(Lang::Chinese));
        assert_eq!(Lang::for_locale("zh-TW"), Some(Lang::Chinese));
        assert_eq!(Lang::for_locale("zh-Hant-HK"), Some(Lang::Chinese));
        assert_eq!(Lang::for_locale("ja"), Some(Lang::Japanese));
        assert_eq!(Lang::for_locale("ko"), Some(Lang::Korean));
        assert_eq!(Lang::for_locale("iw"), Some(Lang::Hebrew));
        assert_eq!(Lang::for_locale("fil"), Some(Lang::Filipino));
        assert_eq!(Lang::for_locale("en-x-1"), Some(Lang::English));
        for bad in [
            "",
            "-",
            "_",
            "x",
            "xx-yy",
            "klingon",
            "ü",
            "日本",
            "e\u{301}n",
        ] {
            assert_eq!(Lang::for_locale(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn families() {
        assert_eq!(
            family_for_locale("de-ch"),
            Family::Snowball(Language::German)
        );
        assert_eq!(family_for_locale("zh-tw"), Family::Cjk);
        assert_eq!(family_for_locale("th"), Family::Cjk);
        assert_eq!(family_for_locale("pl"), Family::Plain);
        assert_eq!(family_for_locale("he"), Family::Plain);
        assert_eq!(family_for_locale("nonsense"), Family::Plain);
        assert_eq!(ALL_FAMILIES.len(), 20);
        for f in ALL_FAMILIES {
            assert_eq!(Family::from_code(f.code()), Some(*f));
        }
        // Every Snowball family is reachable from at least one language, and codes round-trip.
        for f in ALL_FAMILIES {
            assert!(ALL_LANGS.iter().any(|l| l.family() == *f), "{f}");
        }
        for l in ALL_LANGS {
            assert_eq!(Lang::for_locale(l.code()), Some(*l));
        }
    }
}
