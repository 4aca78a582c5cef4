//! The base tokenizer of every helpdex analyzer: words for space-separated scripts, overlapping
//! character bigrams for scripts written without spaces (Lucene `CJKBigramFilter` style), in one
//! token stream so mixed text such as `iPhoneの設定` yields `iPhone`, `の設`, `設定`.
//!
//! Rules, applied left to right over the text:
//!
//! * A **word** is a maximal run of letters (`L*`) and numbers (`N*`) outside the bigram
//!   scripts, with combining marks (`M*`) attached. Everything else separates words
//!   (punctuation, symbols, emoji, spaces, apostrophes, hyphens, underscores). Words longer than
//!   [`MAX_WORD_CHARS`] characters are dropped (base64, hashes, minified junk), counted in
//!   characters, not bytes, so Tamil or Greek words are not dropped at a third of the length.
//! * A **bigram run** is a maximal run of characters of one bigram script family: Han, Hiragana,
//!   Katakana and Hangul together (Japanese mixes kanji and kana inside words); Thai; Lao; Khmer;
//!   Myanmar. Each unit is one base character with its combining marks. A run of one unit is
//!   emitted as that unit; a longer run as its overlapping bigrams (`客服中心` → `客服`, `服中`,
//!   `中心`). Spaces and punctuation end a run, as do characters of another script.
//! * Format characters (soft hyphen, zero-width joiners, bidi controls) and variation selectors
//!   inside a word or unit are skipped (`Rech\u{AD}nung` is `Rechnung`); elsewhere they separate.
//! * Token text is NFKC-normalised (full-width `ｉＰｈｏｎｅ` → `iPhone`, half-width `ｶﾞ` → `ガ`,
//!   `ﬁ` → `fi`, decomposed `e\u{301}` → `é`); case is left to `LowerCaser`.
//! * Offsets are byte offsets into the original text, always on char boundaries; positions
//!   increase by one per emitted token.
//!
//! Memory is constant in the input size (the stream is lazy), and every step advances the
//! cursor by at least one character, so the tokenizer terminates and never panics on any
//! `&str`.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use unicode_general_category::{GeneralCategory as G, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// Longest word kept, in characters (marks included).
pub const MAX_WORD_CHARS: usize = 40;

/// Most combining marks/ignorables attached to one bigram unit (Thai needs 2, Zalgo text more).
pub const MAX_UNIT_MARKS: usize = 8;

/// What a character does in tokenization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Letter or number of a space-separated script.
    Word,
    /// Combining mark: extends the preceding word or unit.
    Mark,
    /// Invisible: extends the preceding word or unit, dropped from the token text.
    Ignorable,
    /// Letter of a script written without spaces, bigrammed within its family.
    Bigram(Script),
    /// Separator.
    Other,
}

/// Families of scripts written without spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Han, Hiragana, Katakana, Hangul, Bopomofo.
    Cjk,
    Thai,
    Lao,
    Khmer,
    Myanmar,
}

fn bigram_script(c: char) -> Option<Script> {
    let cp = c as u32;
    let s = match cp {
        0x1100..=0x11FF // Hangul Jamo
        | 0x2E80..=0x2FDF // CJK radicals
        | 0x3005..=0x3007 // 々 〆 〇
        | 0x3021..=0x3029 // Hangzhou numerals
        | 0x3031..=0x3035 // kana repeat marks
        | 0x3038..=0x303C
        | 0x3040..=0x30FF // Hiragana, Katakana (incl. ー)
        | 0x3100..=0x318F // Bopomofo, Hangul compatibility Jamo
        | 0x31A0..=0x31FF // Bopomofo ext, Katakana phonetic ext
        | 0x3400..=0x4DBF // CJK ext A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xA960..=0xA97F // Hangul Jamo ext A
        | 0xAC00..=0xD7FF // Hangul syllables, Jamo ext B
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF66..=0xFF9D // half-width Katakana
        | 0xFFA0..=0xFFDC // half-width Hangul
        | 0x1AFF0..=0x1B16F // Kana supplement / extensions
        | 0x20000..=0x323AF => Script::Cjk, // CJK ext B..H, compatibility supplement
        0x0E00..=0x0E7F => Script::Thai,
        0x0E80..=0x0EFF => Script::Lao,
        0x1780..=0x17FF | 0x19E0..=0x19FF => Script::Khmer,
        0x1000..=0x109F | 0xA9E0..=0xA9FF | 0xAA60..=0xAA7F => Script::Myanmar,
        _ => return None,
    };
    Some(s)
}

fn classify(c: char) -> Class {
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() {
            Class::Word
        } else {
            Class::Other
        };
    }
    // Half-width (semi-)voiced sound marks are letters (Lm) but compose with the preceding
    // Katakana under NFKC: treat them as marks.
    if c == '\u{FF9E}' || c == '\u{FF9F}' {
        return Class::Mark;
    }
    if matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}') {
        return Class::Ignorable;
    }
    match get_general_category(c) {
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark => Class::Mark,
        G::Format => Class::Ignorable,
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter
        | G::LetterNumber => match bigram_script(c) {
            Some(s) => Class::Bigram(s),
            None => Class::Word,
        },
        G::DecimalNumber | G::OtherNumber => Class::Word,
        _ => Class::Other,
    }
}

/// Word + CJK-bigram tokenizer; see the module docs.
#[derive(Clone, Default)]
pub struct CjkBigramTokenizer {
    token: Token,
}

impl Tokenizer for CjkBigramTokenizer {
    type TokenStream<'a> = CjkBigramStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CjkBigramStream<'a> {
        self.token.reset();
        CjkBigramStream {
            text,
            cursor: 0,
            run: None,
            next_position: 0,
            token: &mut self.token,
        }
    }
}

/// An open bigram run: the byte range of its last unit, its script, and whether a bigram has
/// been emitted from it yet.
#[derive(Debug, Clone, Copy)]
struct Run {
    script: Script,
    prev_start: usize,
    prev_end: usize,
    emitted: bool,
}

/// Token stream of [`CjkBigramTokenizer`].
pub struct CjkBigramStream<'a> {
    text: &'a str,
    cursor: usize,
    run: Option<Run>,
    next_position: usize,
    token: &'a mut Token,
}

impl CjkBigramStream<'_> {
    fn char_at(&self, at: usize) -> Option<char> {
        self.text.get(at..).and_then(|s| s.chars().next())
    }

    /// End of the unit starting at `start`: its first char plus up to [`MAX_UNIT_MARKS`]
    /// trailing marks/ignorables (further ones separate, so a unit stays small whatever the
    /// input).
    fn unit_end(&self, start: usize, first: char) -> usize {
        let mut end = start + first.len_utf8();
        let mut marks = 0;
        while let Some(c) = self.char_at(end) {
            match classify(c) {
                Class::Mark | Class::Ignorable if marks < MAX_UNIT_MARKS => {
                    end += c.len_utf8();
                    marks += 1;
                }
                _ => break,
            }
        }
        end
    }

    /// Sets the current token to `text[from..to]`, normalised.
    fn emit(&mut self, from: usize, to: usize) {
        let raw = self.text.get(from..to).unwrap_or_default();
        let t = &mut *self.token;
        t.text.clear();
        if raw.is_ascii() {
            t.text.push_str(raw);
        } else {
            t.text.extend(
                raw.chars()
                    .filter(|&c| classify(c) != Class::Ignorable)
                    .nfkc(),
            );
        }
        t.offset_from = from;
        t.offset_to = to;
        t.position = self.next_position;
        t.position_length = 1;
        self.next_position += 1;
    }
}

impl TokenStream for CjkBigramStream<'_> {
    fn advance(&mut self) -> bool {
        loop {
            // Continue an open bigram run.
            if let Some(run) = self.run {
                let next = self.char_at(self.cursor);
                if let Some(c) = next
                    && classify(c) == Class::Bigram(run.script)
                {
                    let end = self.unit_end(self.cursor, c);
                    self.run = Some(Run {
                        prev_start: self.cursor,
                        prev_end: end,
                        emitted: true,
                        ..run
                    });
                    self.cursor = end;
                    self.emit(run.prev_start, end);
                    return true;
                }
                self.run = None;
                if !run.emitted {
                    self.emit(run.prev_start, run.prev_end);
                    return true;
                }
                continue;
            }
            let Some(c) = self.char_at(self.cursor) else {
                return false;
            };
            match classify(c) {
                Class::Bigram(script) => {
                    let end = self.unit_end(self.cursor, c);
                    self.run = Some(Run {
                        script,
                        prev_start: self.cursor,
                        prev_end: end,
                        emitted: false,
                    });
                    self.cursor = end;
                }
                Class::Word => {
                    let start = self.cursor;
                    let mut end = start;
                    let mut chars = 0usize;
                    while let Some(c) = self.char_at(end) {
                        match classify(c) {
                            Class::Word | Class::Mark => chars += 1,
                            Class::Ignorable => {}
                            _ => break,
                        }
                        end += c.len_utf8();
                    }
                    self.cursor = end;
                    if chars <= MAX_WORD_CHARS {
                        self.emit(start, end);
                        return true;
                    }
                }
                // Separators, and marks/ignorables with nothing to attach to.
                Class::Mark | Class::Ignorable | Class::Other => self.cursor += c.len_utf8(),
            }
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut t = CjkBigramTokenizer::default();
        let mut s = t.token_stream(text);
        let mut out = vec![];
        while let Some(tok) = s.next() {
            out.push((
                tok.text.clone(),
                tok.offset_from,
                tok.offset_to,
                tok.position,
            ));
        }
        out
    }

    fn texts(text: &str) -> Vec<String> {
        toks(text).into_iter().map(|t| t.0).collect()
    }

    #[test]
    fn words() {
        assert_eq!(texts("Hello, world!"), ["Hello", "world"]);
        assert_eq!(texts("driver's license"), ["driver", "s", "license"]);
        assert_eq!(texts("l’application"), ["l", "application"]);
        assert_eq!(
            texts("e-mail user_name v1.2"),
            ["e", "mail", "user", "name", "v1", "2"]
        );
        assert_eq!(texts(""), Vec::<String>::new());
        assert_eq!(texts("  \n\t "), Vec::<String>::new());
    }

    #[test]
    fn cjk_bigrams() {
        assert_eq!(texts("客服中心"), ["客服", "服中", "中心"]);
        assert_eq!(
            texts("歡迎來到您的客服中心！"),
            [
                "歡迎", "迎來", "來到", "到您", "您的", "的客", "客服", "服中", "中心"
            ]
        );
        assert_eq!(texts("我 是"), ["我", "是"]);
        assert_eq!(texts("iPhoneの設定"), ["iPhone", "の設", "設定"]);
        assert_eq!(texts("第3章"), ["第", "3", "章"]);
        assert_eq!(
            texts("비밀번호를 재설정"),
            ["비밀", "밀번", "번호", "호를", "재설", "설정"]
        );
    }

    #[test]
    fn offsets_and_positions() {
        let t = toks("iPhoneの設定");
        assert_eq!(t[0], ("iPhone".into(), 0, 6, 0));
        assert_eq!(t[1], ("の設".into(), 6, 12, 1));
        assert_eq!(t[2], ("設定".into(), 9, 15, 2));
    }

    #[test]
    fn normalisation() {
        assert_eq!(texts("ｉＰｈｏｎｅ"), ["iPhone"]);
        assert_eq!(texts("ｶﾞｲﾄﾞ"), ["ガイ", "イド"]);
        assert_eq!(texts("Rech\u{AD}nung"), ["Rechnung"]);
        assert_eq!(texts("cafe\u{301}"), ["café"]);
        assert_eq!(texts("ﬁle"), ["file"]);
    }

    #[test]
    fn combining_marks_stay_in_words() {
        // Tamil pulli and vowel signs, Hindi virama, Arabic harakat.
        assert_eq!(texts("கணக்கு உருவாக்கு"), ["கணக்கு", "உருவாக்கு"]);
        assert_eq!(texts("खाता बनाएं"), ["खाता", "बनाएं"]);
        assert_eq!(texts("مَرْحَبًا"), ["مَرْحَبًا"]);
    }

    #[test]
    fn thai_is_bigrammed_by_cluster() {
        // ที่ = ท + ี + ่ is one unit.
        assert_eq!(texts("ที่นี่"), ["ที่นี่"]);
        assert_eq!(texts("รหัสผ่าน"), ["รหั", "หัส", "สผ่", "ผ่า", "าน"]);
    }

    #[test]
    fn long_words_are_dropped_but_bigram_runs_are_not() {
        let long = "a".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(texts(&format!("x {long} y")), ["x", "y"]);
        let ok = "ப".repeat(MAX_WORD_CHARS); // 3 bytes each
        assert_eq!(texts(&ok), std::slice::from_ref(&ok));
        assert_eq!(texts(&"中".repeat(1000)).len(), 999);
    }
}
