//! Conservative language detection for short support questions, for when the caller gives no
//! locale. The engine prefers the detected language's translation and falls back to the
//! source locale where one is missing, so a wrong guess costs more than no guess: these
//! functions return `None` unless the evidence is clear.
//!
//! 1. Scripts decide first. Kana means Japanese, Hangul Korean, Han alone Chinese; Thai,
//!    Hebrew, Greek, Georgian, Armenian and Tamil have one language each. Latin product names
//!    inside CJK text (`iPhoneの設定`) are normal and do not make the input mixed, but CJK
//!    characters inside a mostly Latin question (`How do I change 設定 in the app`) do.
//! 2. Other text needs at least [`MIN_WORDS`] words and [`MIN_LETTERS`] letters.
//! 3. [`whichlang`] (quickwit's linear model; 16 languages, by far the best on short
//!    questions in our measurements) names the language. When every allowed language is one
//!    whichlang knows, its answer stands (if allowed). Otherwise whichlang may be mislabelling
//!    a language it does not know (Danish as Swedish, Polish as Turkish), so [`whatlang`] (70
//!    languages, restricted to the allowed ones) is asked too. whichlang's answer stands when
//!    whatlang agrees; whatlang's is taken when it names, with confidence at least
//!    [`MIN_CONFIDENCE`], a language whichlang does not know; otherwise the result is `None`.
//!    (Trusting whichlang whenever whatlang is unsure answers 2 more of our 40 English-…-Korean
//!    questions in the all-languages mode but gets 2 more Nordic/Czech questions wrong.)
//!
//! Deterministic (both models are pure functions), and panic-free on any input.

use crate::lang::Lang;

/// Fewest words (letter runs) of an alphabetic-script question we try to detect. Keyword
/// queries of two or three words are guessed wrong too often (both detectors read "payout on
/// hold" as French); undetected, a question is searched in every language as itself.
pub const MIN_WORDS: usize = 4;
/// Fewest letters of an alphabetic-script question we try to detect.
pub const MIN_LETTERS: usize = 10;
/// Lowest whatlang confidence we accept on its own (its "reliable" mark is > 0.9).
pub const MIN_CONFIDENCE: f64 = 0.5;
/// Below this many words, whichlang needs whatlang to agree.
pub const SHORT_WORDS: usize = 5;
/// Fewest CJK characters for a Han-only guess (one character is too ambiguous).
pub const MIN_HAN: usize = 2;

/// The languages whichlang 0.1 can name.
pub const WHICHLANG_LANGS: [Lang; 16] = [
    Lang::Arabic,
    Lang::Chinese,
    Lang::German,
    Lang::English,
    Lang::French,
    Lang::Hindi,
    Lang::Italian,
    Lang::Japanese,
    Lang::Korean,
    Lang::Dutch,
    Lang::Portuguese,
    Lang::Russian,
    Lang::Spanish,
    Lang::Swedish,
    Lang::Turkish,
    Lang::Vietnamese,
];

/// Which model decides text that the script rules leave open (for comparisons; the public
/// functions use [`Strategy::Combined`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// whatlang among the allowed languages, confidence ≥ [`MIN_CONFIDENCE`].
    Whatlang,
    /// whichlang alone (answer dropped if not allowed).
    Whichlang,
    /// whichlang, checked by whatlang when the allowed set has languages whichlang lacks.
    Combined,
}

/// Detects the language of `query` among all languages helpdex knows; `None` when unsure.
/// Prefer [`detect_language_among`] with the help center's languages: it answers more often.
pub fn detect_language(query: &str) -> Option<Lang> {
    detect_language_among(query, crate::lang::ALL_LANGS)
}

/// Detects the language of `query` among `allowed` (typically the languages of the help
/// center's locales); `None` when unsure or when the answer is not in `allowed`.
pub fn detect_language_among(query: &str, allowed: &[Lang]) -> Option<Lang> {
    detect_with(query, allowed, Strategy::Combined)
}

/// [`detect_language_among`] with an explicit [`Strategy`].
pub fn detect_with(query: &str, allowed: &[Lang], strategy: Strategy) -> Option<Lang> {
    let counts = Counts::of(query);
    let allow = |l: Lang| allowed.contains(&l).then_some(l);

    // CJK: weigh a CJK character as half a word against the words of other scripts.
    let cjk = counts.han + counts.kana + counts.hangul;
    if cjk > 0 {
        let cjk_weight = cjk as f64 / 2.0;
        let share = cjk_weight / (cjk_weight + counts.alpha_words as f64);
        if share < 0.5 {
            return None; // mostly non-CJK with some CJK: mixed
        }
        if counts.kana > 0 && counts.kana * 3 >= counts.hangul {
            return allow(Lang::Japanese);
        }
        if counts.hangul > 0 {
            return allow(Lang::Korean);
        }
        if counts.han < MIN_HAN {
            return None;
        }
        // Han only: Chinese, unless only Japanese is allowed.
        return allow(Lang::Chinese).or_else(|| allow(Lang::Japanese));
    }

    if counts.alpha_words < MIN_WORDS || counts.letters < MIN_LETTERS {
        return None;
    }
    if let Some(l) = counts.single_language_script() {
        return allow(l);
    }
    match strategy {
        Strategy::Whatlang => whatlang_among(query, allowed)
            .filter(|&(_, c)| c >= MIN_CONFIDENCE)
            .map(|(l, _)| l),
        Strategy::Whichlang => allow(whichlang_lang(query)),
        Strategy::Combined => {
            let w = allow(whichlang_lang(query));
            // A few keywords ("payout on hold") are too little for whichlang alone (it said
            // French): short questions need whatlang's agreement too.
            if counts.alpha_words >= SHORT_WORDS
                && allowed.iter().all(|l| WHICHLANG_LANGS.contains(l))
            {
                return w;
            }
            // Agreement, or whatlang confident of a language whichlang cannot know. Anything
            // else is a disagreement: unsure.
            let (v, conf) = whatlang_among(query, allowed)?;
            if Some(v) == w {
                w
            } else if !WHICHLANG_LANGS.contains(&v) && conf >= MIN_CONFIDENCE {
                Some(v)
            } else {
                None
            }
        }
    }
}

fn whichlang_lang(query: &str) -> Lang {
    use whichlang::Lang as W;
    match whichlang::detect_language(query) {
        W::Ara => Lang::Arabic,
        W::Cmn => Lang::Chinese,
        W::Deu => Lang::German,
        W::Eng => Lang::English,
        W::Fra => Lang::French,
        W::Hin => Lang::Hindi,
        W::Ita => Lang::Italian,
        W::Jpn => Lang::Japanese,
        W::Kor => Lang::Korean,
        W::Nld => Lang::Dutch,
        W::Por => Lang::Portuguese,
        W::Rus => Lang::Russian,
        W::Spa => Lang::Spanish,
        W::Swe => Lang::Swedish,
        W::Tur => Lang::Turkish,
        W::Vie => Lang::Vietnamese,
    }
}

/// whatlang's best allowed language and its confidence.
fn whatlang_among(query: &str, allowed: &[Lang]) -> Option<(Lang, f64)> {
    let wl: Vec<whatlang::Lang> = allowed.iter().filter_map(|&l| to_whatlang(l)).collect();
    if wl.is_empty() {
        return None;
    }
    let info = whatlang::Detector::with_allowlist(wl).detect(query)?;
    from_whatlang(info.lang()).map(|l| (l, info.confidence()))
}

/// Letter statistics of a question.
#[derive(Debug, Default)]
struct Counts {
    han: usize,
    kana: usize,
    hangul: usize,
    /// Letters outside CJK.
    letters: usize,
    /// Runs of non-CJK letters.
    alpha_words: usize,
    /// Letters per single-language script.
    thai: usize,
    hebrew: usize,
    greek: usize,
    georgian: usize,
    armenian: usize,
    tamil: usize,
}

impl Counts {
    fn of(text: &str) -> Counts {
        let mut c = Counts::default();
        let mut in_word = false;
        for ch in text.chars() {
            let cp = ch as u32;
            match cp {
                0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9D => {
                    // ー and ・ are in the Katakana block but are not kana letters.
                    if ch != 'ー' && ch != '・' {
                        c.kana += 1;
                    }
                    in_word = false;
                }
                0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => {
                    c.hangul += 1;
                    in_word = false;
                }
                0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x323AF => {
                    c.han += 1;
                    in_word = false;
                }
                _ if ch.is_alphabetic() => {
                    c.letters += 1;
                    if !in_word {
                        c.alpha_words += 1;
                        in_word = true;
                    }
                    match cp {
                        0x0E00..=0x0E7F => c.thai += 1,
                        0x0590..=0x05FF => c.hebrew += 1,
                        0x0370..=0x03FF | 0x1F00..=0x1FFF => c.greek += 1,
                        0x10A0..=0x10FF => c.georgian += 1,
                        0x0530..=0x058F => c.armenian += 1,
                        0x0B80..=0x0BFF => c.tamil += 1,
                        _ => {}
                    }
                }
                // Marks continue a word (Tamil, Hindi, Thai vowel signs); apostrophes too.
                _ if ch == '\'' || ch == '’' => {}
                _ if unicode_general_category::get_general_category(ch)
                    .abbreviation()
                    .starts_with('M') => {}
                _ => in_word = false,
            }
        }
        c
    }

    /// A script used by one language only, when it makes up at least 80 % of the letters.
    fn single_language_script(&self) -> Option<Lang> {
        let scripts = [
            (self.thai, Lang::Thai),
            (self.hebrew, Lang::Hebrew),
            (self.greek, Lang::Greek),
            (self.georgian, Lang::Georgian),
            (self.armenian, Lang::Armenian),
            (self.tamil, Lang::Tamil),
        ];
        scripts
            .into_iter()
            .find(|&(n, _)| n * 5 >= self.letters * 4 && n > 0)
            .map(|(_, l)| l)
    }
}

fn to_whatlang(l: Lang) -> Option<whatlang::Lang> {
    use whatlang::Lang as W;
    Some(match l {
        Lang::Arabic => W::Ara,
        Lang::Danish => W::Dan,
        Lang::Dutch => W::Nld,
        Lang::English => W::Eng,
        Lang::Finnish => W::Fin,
        Lang::French => W::Fra,
        Lang::German => W::Deu,
        Lang::Greek => W::Ell,
        Lang::Hungarian => W::Hun,
        Lang::Italian => W::Ita,
        Lang::Norwegian => W::Nob,
        Lang::Portuguese => W::Por,
        Lang::Romanian => W::Ron,
        Lang::Russian => W::Rus,
        Lang::Spanish => W::Spa,
        Lang::Swedish => W::Swe,
        Lang::Tamil => W::Tam,
        Lang::Turkish => W::Tur,
        Lang::Chinese => W::Cmn,
        Lang::Japanese => W::Jpn,
        Lang::Korean => W::Kor,
        Lang::Thai => W::Tha,
        Lang::Afrikaans => W::Afr,
        Lang::Armenian => W::Hye,
        Lang::Bengali => W::Ben,
        Lang::Bulgarian => W::Bul,
        Lang::Catalan => W::Cat,
        Lang::Croatian => W::Hrv,
        Lang::Czech => W::Ces,
        Lang::Estonian => W::Est,
        Lang::Filipino => W::Tgl,
        Lang::Georgian => W::Kat,
        Lang::Hebrew => W::Heb,
        Lang::Hindi => W::Hin,
        Lang::Indonesian => W::Ind,
        Lang::Latvian => W::Lav,
        Lang::Lithuanian => W::Lit,
        Lang::Macedonian => W::Mkd,
        Lang::Persian => W::Pes,
        Lang::Polish => W::Pol,
        Lang::Serbian => W::Srp,
        Lang::Slovak => W::Slk,
        Lang::Slovenian => W::Slv,
        Lang::Ukrainian => W::Ukr,
        Lang::Urdu => W::Urd,
        Lang::Vietnamese => W::Vie,
        Lang::Welsh => W::Cym,
        Lang::Basque | Lang::Icelandic | Lang::Irish | Lang::Malay => return None,
    })
}

fn from_whatlang(w: whatlang::Lang) -> Option<Lang> {
    crate::lang::ALL_LANGS
        .iter()
        .copied()
        .find(|&l| to_whatlang(l) == Some(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_questions() {
        assert_eq!(
            detect_language("Can I change the billing address on my invoice?"),
            Some(Lang::English)
        );
        let hc = [Lang::English, Lang::German, Lang::Japanese];
        assert_eq!(
            detect_language_among("How do I reset my password?", &hc),
            Some(Lang::English)
        );
        assert_eq!(
            detect_language("Wie kann ich mein Passwort zurücksetzen?"),
            Some(Lang::German)
        );
        assert_eq!(
            detect_language("iPhoneの設定を変更したい"),
            Some(Lang::Japanese)
        );
        assert_eq!(detect_language("如何重置我的密码？"), Some(Lang::Chinese));
        assert_eq!(
            detect_language("為什麼我的信用卡付款被拒絕？"),
            Some(Lang::Chinese)
        );
        assert_eq!(
            detect_language("아직 환불을 받지 못했습니다"),
            Some(Lang::Korean)
        );
        assert_eq!(
            detect_language("שלום, איך מאפסים סיסמה"),
            Some(Lang::Hebrew)
        );
    }

    #[test]
    fn unsure_is_none() {
        for q in [
            "",
            "   ",
            "12345",
            "😀😀",
            "iPhone",
            "ok",
            "Rechnung",
            "How do I change 設定 in the app",
            "設",
        ] {
            assert_eq!(detect_language(q), None, "{q:?}");
        }
    }

    #[test]
    fn allowlist() {
        let allowed = [Lang::English, Lang::Japanese];
        assert_eq!(
            detect_language_among("設定変更", &allowed),
            Some(Lang::Japanese)
        );
        // Forced among the allowed languages a German question may come out English, which is
        // harmless: English is where the engine would fall back to anyway.
        assert_ne!(
            detect_language_among("Wie kann ich mein Passwort zurücksetzen?", &allowed),
            Some(Lang::Japanese)
        );
        assert_eq!(detect_language_among("anything at all here", &[]), None);
    }

    fn rows(data: &str) -> Vec<(&str, &str)> {
        data.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split_once('\t'))
            .collect()
    }

    /// (correct, none, wrong) over a labelled set.
    fn score(data: &str, allowed: &[Lang], s: Strategy) -> (usize, usize, usize) {
        let (mut ok, mut none, mut wrong) = (0, 0, 0);
        for (want, q) in rows(data) {
            match detect_with(q, allowed, s) {
                Some(l) if want.split('|').any(|w| w == l.code()) => ok += 1,
                None => none += 1,
                Some(_) => wrong += 1,
            }
        }
        (ok, none, wrong)
    }

    const CLEAN: &str = include_str!("../eval/questions.tsv");
    const MORE: &str = include_str!("../eval/questions_more.tsv");
    const HARD: &str = include_str!("../eval/hard.tsv");

    fn ten() -> Vec<Lang> {
        ["en", "de", "fr", "es", "pt", "it", "nl", "ja", "zh", "ko"]
            .iter()
            .filter_map(|c| Lang::for_locale(c))
            .collect()
    }

    #[test]
    fn question_set() {
        let ten = ten();
        let (ok, _, wrong) = score(CLEAN, &ten, Strategy::Combined);
        assert_eq!((ok, wrong), (40, 0));
        let (ok, _, wrong) = score(CLEAN, crate::lang::ALL_LANGS, Strategy::Combined);
        assert!(ok >= 30 && wrong == 0, "{ok} {wrong}");
        // Short, mixed and neutral input: never a wrong language.
        for allowed in [&ten[..], crate::lang::ALL_LANGS] {
            let (_, _, wrong) = score(HARD, allowed, Strategy::Combined);
            assert_eq!(wrong, 0);
        }
        // Languages whichlang does not know: whatlang must confirm, so no wrong answers.
        let nordic: Vec<Lang> = ["en", "de", "da", "sv", "no", "pl", "fi", "cs", "tr", "ru"]
            .iter()
            .filter_map(|c| Lang::for_locale(c))
            .collect();
        let (_, _, wrong) = score(MORE, &nordic, Strategy::Combined);
        assert!(wrong <= 1, "{wrong}");
    }
}
