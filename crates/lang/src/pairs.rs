//! [`PairFilter`]: turns a token stream into the stream of its adjacent pairs
//! (`refund`, `amount` → `refund_amount`), for a word-pair ("shingle") field with its own IDF.
//!
//! Put it last in a chain, after stop-word removal and stemming, so pairs skip stop words
//! (`refund of the amount` → `refund_amount`) and conflate inflections (`refunded amounts` →
//! `refund_amount`). Two tokens pair when
//!
//! * they are consecutive in the filtered stream,
//! * at most [`MAX_GAP`] − 1 tokens were removed between them (position gap ≤ `MAX_GAP`), and
//! * the original text between them holds no clause boundary (`.` `!` `?` `;` `:` `,` `…`
//!   brackets, quotes, `›`, `|`, `•`, line breaks, and their CJK full-width forms). A `.` only
//!   counts when followed by whitespace, so `v1.2` or `example.com` do not break.
//!
//! Overlapping tokens (CJK bigrams) always pair: `客服`, `服中` → `客服_服中`, which stands for
//! the three-character run `客服中`. The separator `_` never occurs inside tokens of
//! [`crate::CjkBigramTokenizer`], so pair terms cannot collide with word terms.
//!
//! A pair token has the position of its first word, `position_length` covering both words,
//! and the offsets of the whole span (`offset_from` of the first, `offset_to` of the second):
//! positions are strictly increasing and offsets are valid slices of the original text.

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Separator between the two words of a pair term.
pub const PAIR_SEPARATOR: char = '_';

/// Largest position gap (first word to second word) that still pairs.
pub const MAX_GAP: usize = 3;

/// Emits adjacent pairs instead of single tokens. See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct PairFilter;

impl TokenFilter for PairFilter {
    type Tokenizer<T: Tokenizer> = PairFilterWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> PairFilterWrapper<T> {
        PairFilterWrapper { inner: tokenizer }
    }
}

/// The tokenizer [`PairFilter`] produces.
#[derive(Clone)]
pub struct PairFilterWrapper<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for PairFilterWrapper<T> {
    type TokenStream<'a> = PairTokenStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        PairTokenStream {
            text,
            tail: self.inner.token_stream(text),
            prev: None,
            token: Token::default(),
        }
    }
}

/// Token stream of [`PairFilter`].
pub struct PairTokenStream<'a, T> {
    text: &'a str,
    tail: T,
    prev: Option<Token>,
    token: Token,
}

/// True when the text between two tokens ends a clause.
fn has_boundary(between: &str) -> bool {
    let mut chars = between.chars().peekable();
    while let Some(c) = chars.next() {
        let hit = match c {
            '.' => chars.peek().is_some_and(|n| n.is_whitespace()),
            '!' | '?' | ';' | ':' | ',' | '…' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | '“'
            | '”' | '«' | '»' | '›' | '‹' | '|' | '•' | '·' | '\n' | '\r' | '\u{2028}'
            | '\u{2029}' => true,
            '。' | '！' | '？' | '；' | '：' | '，' | '、' | '（' | '）' | '「' | '」' | '『'
            | '』' | '【' | '】' | '｡' | '､' | '｢' | '｣' => true,
            _ => false,
        };
        if hit {
            return true;
        }
    }
    false
}

impl<T: TokenStream> PairTokenStream<'_, T> {
    fn pairs_with(&self, prev: &Token, cur: &Token) -> bool {
        if cur.position <= prev.position || cur.position - prev.position > MAX_GAP {
            return false;
        }
        if prev.offset_to > cur.offset_from {
            return true; // overlapping (CJK bigrams)
        }
        match self.text.get(prev.offset_to..cur.offset_from) {
            Some(between) => !has_boundary(between),
            None => false,
        }
    }
}

impl<T: TokenStream> TokenStream for PairTokenStream<'_, T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            let cur = self.tail.token();
            let pair = match &self.prev {
                Some(prev) if self.pairs_with(prev, cur) => {
                    let t = &mut self.token;
                    t.text.clear();
                    t.text.push_str(&prev.text);
                    t.text.push(PAIR_SEPARATOR);
                    t.text.push_str(&cur.text);
                    t.offset_from = prev.offset_from;
                    t.offset_to = cur.offset_to.max(prev.offset_to);
                    t.position = prev.position;
                    t.position_length = (cur.position + cur.position_length)
                        .saturating_sub(prev.position)
                        .max(1);
                    true
                }
                _ => false,
            };
            match &mut self.prev {
                Some(p) => p.clone_from(cur),
                None => self.prev = Some(cur.clone()),
            }
            if pair {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CjkBigramTokenizer;
    use tantivy::tokenizer::{LowerCaser, StopWordFilter, TextAnalyzer};

    fn pairs(text: &str) -> Vec<Token> {
        let mut a = TextAnalyzer::builder(CjkBigramTokenizer::default())
            .filter(LowerCaser)
            .filter(StopWordFilter::remove(
                ["of", "the", "a", "s"].map(String::from),
            ))
            .filter(PairFilter)
            .build();
        let mut s = a.token_stream(text);
        let mut out = vec![];
        while let Some(t) = s.next() {
            out.push(t.clone());
        }
        out
    }

    fn texts(text: &str) -> Vec<String> {
        pairs(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn adjacent_pairs_skip_stop_words() {
        assert_eq!(texts("Refund of the amount"), ["refund_amount"]);
        assert_eq!(texts("refund amount due"), ["refund_amount", "amount_due"]);
        assert_eq!(texts("driver's license"), ["driver_license"]);
        assert_eq!(texts("one"), Vec::<String>::new());
        assert_eq!(texts(""), Vec::<String>::new());
    }

    #[test]
    fn boundaries() {
        assert_eq!(texts("Refunds. Amount"), Vec::<String>::new());
        assert_eq!(texts("refunds, amounts"), Vec::<String>::new());
        assert_eq!(texts("Billing › Refunds"), Vec::<String>::new());
        assert_eq!(
            texts("see example.com now"),
            ["see_example", "example_com", "com_now"]
        );
        // Too many removed words between.
        assert_eq!(texts("refund of the a the amount"), Vec::<String>::new());
    }

    #[test]
    fn positions_and_offsets() {
        let text = "refund of the amount due";
        let p = pairs(text);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].position, p[0].position_length), (0, 4));
        assert_eq!(
            &text[p[0].offset_from..p[0].offset_to],
            "refund of the amount"
        );
        assert_eq!((p[1].position, p[1].position_length), (3, 2));
        assert_eq!(&text[p[1].offset_from..p[1].offset_to], "amount due");
    }

    #[test]
    fn cjk_pairs_are_trigrams() {
        assert_eq!(texts("客服中心"), ["客服_服中", "服中_中心"]);
        assert_eq!(texts("客服。中心"), Vec::<String>::new());
        assert_eq!(texts("iPhoneの設定"), ["iphone_の設", "の設_設定"]);
    }
}
