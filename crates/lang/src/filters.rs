//! Small token filters used by the analyzer chains.

use std::collections::HashSet;
use std::sync::Arc;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Removes stop words. Unlike tantivy's `StopWordFilter` it can match accent-insensitively
/// (`cómo` against `como`) without changing the tokens it keeps.
#[derive(Clone)]
pub struct StopFilter {
    words: Arc<HashSet<String>>,
    accent_insensitive: bool,
}

/// `s` without combining accents (NFD, marks dropped); ASCII is returned as is.
pub fn strip_accents(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    s.nfd().filter(|&c| !is_combining_mark(c)).nfc().collect()
}

impl StopFilter {
    /// A filter removing `words` (expected lowercase).
    pub fn new(words: impl IntoIterator<Item = String>, accent_insensitive: bool) -> StopFilter {
        let words = words
            .into_iter()
            .map(|w| {
                if accent_insensitive {
                    strip_accents(&w)
                } else {
                    w
                }
            })
            .collect();
        StopFilter {
            words: Arc::new(words),
            accent_insensitive,
        }
    }

    fn is_stop(&self, text: &str) -> bool {
        if self.accent_insensitive && !text.is_ascii() {
            self.words.contains(&strip_accents(text))
        } else {
            self.words.contains(text)
        }
    }
}

impl TokenFilter for StopFilter {
    type Tokenizer<T: Tokenizer> = StopFilterWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> StopFilterWrapper<T> {
        StopFilterWrapper {
            filter: self,
            inner: tokenizer,
        }
    }
}

/// Tokenizer produced by [`StopFilter`].
#[derive(Clone)]
pub struct StopFilterWrapper<T> {
    filter: StopFilter,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for StopFilterWrapper<T> {
    type TokenStream<'a> = StopFilterStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        StopFilterStream {
            filter: &self.filter,
            tail: self.inner.token_stream(text),
        }
    }
}

/// Token stream of [`StopFilter`].
pub struct StopFilterStream<'a, T> {
    filter: &'a StopFilter,
    tail: T,
}

impl<T: TokenStream> TokenStream for StopFilterStream<'_, T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            if !self.filter.is_stop(&self.tail.token().text) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Drops tokens whose text became empty (the Arabic stemmer reduces a lone tatweel `ـ` or
/// some presentation forms to nothing).
#[derive(Clone, Copy, Debug, Default)]
pub struct DropEmpty;

impl TokenFilter for DropEmpty {
    type Tokenizer<T: Tokenizer> = DropEmptyWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> DropEmptyWrapper<T> {
        DropEmptyWrapper { inner: tokenizer }
    }
}

/// Tokenizer produced by [`DropEmpty`].
#[derive(Clone)]
pub struct DropEmptyWrapper<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for DropEmptyWrapper<T> {
    type TokenStream<'a> = DropEmptyStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        DropEmptyStream {
            tail: self.inner.token_stream(text),
        }
    }
}

/// Token stream of [`DropEmpty`].
pub struct DropEmptyStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for DropEmptyStream<T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            if !self.tail.token().text.is_empty() {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Maps `I` → `ı` and `İ` → `i` before general lowercasing, as Turkish orthography needs
/// (`KAYIT` → `kayıt`, not `kayit`). Only in the Turkish chain.
#[derive(Clone, Copy, Debug, Default)]
pub struct TurkishLowerCaser;

impl TokenFilter for TurkishLowerCaser {
    type Tokenizer<T: Tokenizer> = TurkishLowerCaserWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> TurkishLowerCaserWrapper<T> {
        TurkishLowerCaserWrapper { inner: tokenizer }
    }
}

/// Tokenizer produced by [`TurkishLowerCaser`].
#[derive(Clone)]
pub struct TurkishLowerCaserWrapper<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for TurkishLowerCaserWrapper<T> {
    type TokenStream<'a> = TurkishLowerCaserStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        TurkishLowerCaserStream {
            tail: self.inner.token_stream(text),
        }
    }
}

/// Token stream of [`TurkishLowerCaser`].
pub struct TurkishLowerCaserStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for TurkishLowerCaserStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let t = self.tail.token_mut();
        if t.text.contains(['I', 'İ']) {
            t.text = t
                .text
                .chars()
                .map(|c| match c {
                    'I' => 'ı',
                    'İ' => 'i',
                    c => c,
                })
                .collect();
        }
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

    #[test]
    fn strip() {
        assert_eq!(strip_accents("cómo"), "como");
        assert_eq!(strip_accents("où"), "ou");
        assert_eq!(strip_accents("straße"), "straße");
        assert_eq!(strip_accents("ändern"), "andern");
        assert_eq!(strip_accents(""), "");
    }

    #[test]
    fn stop_lookup() {
        let exact = StopFilter::new(["andern".to_string(), "für".to_string()], false);
        assert!(!exact.is_stop("ändern"));
        assert!(exact.is_stop("für"));
        let loose = StopFilter::new(["como".to_string(), "où".to_string()], true);
        assert!(loose.is_stop("cómo"));
        assert!(loose.is_stop("ou"));
        assert!(loose.is_stop("où"));
        assert!(!loose.is_stop("cambio"));
    }
}
