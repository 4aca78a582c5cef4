//! Snowball stemming with a per-thread memo.
//!
//! A help center's vocabulary is small next to its text: the same few thousand words are
//! stemmed again in every passage indexed, every snippet and every relevance check. A stemmer is
//! a pure function of (language, word), so each thread remembers its answers (bounded: a
//! language's memo is cleared past 65,536 words; keys are hashed with foldhash, not SipHash: a
//! query's words are among them, so the hasher stays randomly seeded per process). The output is tantivy's `Stemmer`'s, token for
//! token (a test compares them on every Snowball language).

use foldhash::{HashMap, HashMapExt};
use std::borrow::Cow;
use std::cell::RefCell;
use tantivy::tokenizer::{Language, Token, TokenFilter, TokenStream, Tokenizer};

/// Most words remembered per language and thread.
const MAX_WORDS: usize = 1 << 16;

thread_local! {
    static MEMO: RefCell<HashMap<Language, HashMap<String, String>>> = RefCell::new(HashMap::new());
}

fn algorithm(l: Language) -> frostem::Algorithm {
    use frostem::Algorithm as A;
    match l {
        Language::Arabic => A::Arabic,
        Language::Danish => A::Danish,
        Language::Dutch => A::Dutch,
        Language::English => A::English,
        Language::Finnish => A::Finnish,
        Language::French => A::French,
        Language::German => A::German,
        Language::Greek => A::Greek,
        Language::Hungarian => A::Hungarian,
        Language::Italian => A::Italian,
        Language::Norwegian => A::Norwegian,
        Language::Portuguese => A::Portuguese,
        Language::Romanian => A::Romanian,
        Language::Russian => A::Russian,
        Language::Spanish => A::Spanish,
        Language::Swedish => A::Swedish,
        Language::Tamil => A::Tamil,
        Language::Turkish => A::Turkish,
    }
}

/// Stems each token in `Language`, remembering words already stemmed on this thread.
#[derive(Clone, Copy, Debug)]
pub struct MemoStemmer(pub Language);

impl TokenFilter for MemoStemmer {
    type Tokenizer<T: Tokenizer> = MemoStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MemoStemmerFilter<T> {
        MemoStemmerFilter {
            lang: self.0,
            inner: tokenizer,
        }
    }
}

/// The tokenizer [`MemoStemmer`] produces.
#[derive(Clone)]
pub struct MemoStemmerFilter<T> {
    lang: Language,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for MemoStemmerFilter<T> {
    type TokenStream<'a> = MemoStemmerStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MemoStemmerStream {
            lang: self.lang,
            stemmer: frostem::Stemmer::new(algorithm(self.lang)),
            tail: self.inner.token_stream(text),
        }
    }
}

/// Token stream of [`MemoStemmer`].
pub struct MemoStemmerStream<T> {
    lang: Language,
    stemmer: frostem::Stemmer,
    tail: T,
}

impl<T: TokenStream> TokenStream for MemoStemmerStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let (lang, stemmer) = (self.lang, &self.stemmer);
        let token = self.tail.token_mut();
        MEMO.with(|memo| {
            let mut memo = memo.borrow_mut();
            let words = memo.entry(lang).or_default();
            if let Some(stem) = words.get(token.text.as_str()) {
                if *stem != token.text {
                    token.text.clear();
                    token.text.push_str(stem);
                }
                return;
            }
            let stem = match stemmer.stem(&token.text) {
                Cow::Borrowed(s) => s.to_string(),
                Cow::Owned(s) => s,
            };
            if words.len() >= MAX_WORDS {
                words.clear();
            }
            let word = std::mem::replace(&mut token.text, stem.clone());
            words.insert(word, stem);
        });
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{SimpleTokenizer, Stemmer, TextAnalyzer};

    const LANGUAGES: [Language; 18] = [
        Language::Arabic,
        Language::Danish,
        Language::Dutch,
        Language::English,
        Language::Finnish,
        Language::French,
        Language::German,
        Language::Greek,
        Language::Hungarian,
        Language::Italian,
        Language::Norwegian,
        Language::Portuguese,
        Language::Romanian,
        Language::Russian,
        Language::Spanish,
        Language::Swedish,
        Language::Tamil,
        Language::Turkish,
    ];

    fn tokens(mut a: TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut out = Vec::new();
        let mut s = a.token_stream(text);
        while s.advance() {
            let t = s.token();
            out.push((t.text.clone(), t.offset_from, t.offset_to, t.position));
        }
        out
    }

    /// The memo changes nothing: every language, twice over (the second pass answers from
    /// the memo), token for token with tantivy's stemmer.
    #[test]
    fn memoized_stems_are_tantivys() {
        let text = "refunds refunded refunding payouts delayed running runs ran \
            Rechnungen Zahlungen erstattet remboursements remboursé pagamentos reembolsos \
            rimborsi terugbetalingen återbetalningar tilbagebetalinger maksut visszatérítések \
            rambursări возвраты ödemeler επιστροφές المبالغ திருப்பிச் ünïcödé 123 a";
        for lang in LANGUAGES {
            let want = tokens(
                TextAnalyzer::builder(SimpleTokenizer::default())
                    .filter(Stemmer::new(lang))
                    .build(),
                text,
            );
            for _ in 0..2 {
                let got = tokens(
                    TextAnalyzer::builder(SimpleTokenizer::default())
                        .filter(MemoStemmer(lang))
                        .build(),
                    text,
                );
                assert_eq!(got, want, "{lang:?}");
            }
        }
    }
}
