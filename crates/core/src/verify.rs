//! Stale-citation check: is a citation an AI runtime holds still what the help center says?
//!
//! A runtime that cached an answer, or holds a long conversation, sends the citations it used
//! exactly as a hit returned them (extra fields are ignored) and gets, for each, one of
//! [`CitationStatus::Current`], [`CitationStatus::Changed`] (with the current hash) or
//! [`CitationStatus::Gone`]. A citation is read one of two ways:
//!
//! - `passage_id` (`"{source}:{article_id}:{locale}:{16 hex}"`, the first 16 hex characters of
//!   the passage's blake3 hash): current while that translation still has a passage with that
//!   hash;
//! - `url` + `content_hash` (a hit's citation url and its translation's content hash): current
//!   while the translation at that url still has that hash.
//!
//! Everything is answered under the caller's access: a citation the caller may no longer read
//! (made internal, restricted to another segment, unpublished, archived) is `gone`, exactly like
//! one that never existed, so the answer never tells a customer that hidden content exists.

use crate::model::{Access, Audience};
use crate::query::InvalidQuery;
use crate::reader::{ReadError, Reader};
use crate::store::{StoreError, StoreRead, TranslationRecord};
use serde::{Deserialize, Serialize};

/// Most citations one request may check.
pub const MAX_CITATIONS: usize = 100;
/// Longest accepted `url` or `passage_id`, in bytes.
const MAX_FIELD_LEN: usize = 2_048;
/// Hex characters of a passage hash kept in a passage id.
pub const PASSAGE_HASH_CHARS: usize = 16;

/// One citation as the caller holds it: a hit or a context citation as returned. Only
/// `passage_id`, `url` and `content_hash` are read; other fields are ignored, so whole hits can
/// be sent back as they came.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CitationRef {
    /// The hit's `passage_id`; checked first when present.
    #[serde(default)]
    pub passage_id: Option<String>,
    /// The hit's `url` (with its `#anchor`, if any).
    #[serde(default)]
    pub url: Option<String>,
    /// The hit's `content_hash` (needed with `url`).
    #[serde(default)]
    pub content_hash: Option<String>,
}

/// What became of a citation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CitationStatus {
    /// The cited content is unchanged.
    Current,
    /// The article is still there for this caller, but its content changed: quote it again.
    Changed,
    /// Nothing this caller may read is there any more (or never was).
    Gone,
}

/// The answer for one citation, in the order sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CitationCheck {
    /// What became of it.
    pub status: CitationStatus,
    /// The passage id as sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub passage_id: Option<String>,
    /// The url as sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    /// `changed` only: the translation's current content hash.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current_hash: Option<String>,
    /// `changed` only: where the content is now (the section's url when its anchor still
    /// exists, else the article's).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current_url: Option<String>,
}

/// The answer to one verify request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VerifyResponse {
    /// The audience the citations were checked for.
    pub audience: Audience,
    /// True when every citation is `current`.
    pub all_current: bool,
    /// One answer per citation, in the order sent.
    pub results: Vec<CitationCheck>,
}

/// A citation, validated: which of the two forms it is.
#[derive(Debug, Clone, PartialEq)]
enum Cited {
    Passage {
        source: String,
        article_id: u64,
        locale: String,
        hash_prefix: String,
    },
    Url {
        url: String,
        content_hash: String,
    },
}

fn invalid(message: String) -> InvalidQuery {
    InvalidQuery {
        field: "citations",
        message,
    }
}

/// Splits a passage id into (source, article id, locale, hash prefix).
pub fn parse_passage_id(id: &str) -> Option<(String, u64, String, String)> {
    // Source names are letters, digits, '-' and '_'; locales have no ':'.
    let mut parts = id.split(':');
    let (source, article, locale, hash) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || source.is_empty()
        || locale.is_empty()
        || hash.len() != PASSAGE_HASH_CHARS
        || !hash.chars().all(|c| c.is_ascii_hexdigit())
    {
        return None;
    }
    let article_id = article.parse().ok()?;
    Some((
        source.to_string(),
        article_id,
        locale.to_string(),
        hash.to_ascii_lowercase(),
    ))
}

/// The passage id of a stored passage (what hits carry).
pub fn passage_id(source: &str, article_id: u64, locale: &str, passage_hash: &str) -> String {
    let prefix: String = passage_hash.chars().take(PASSAGE_HASH_CHARS).collect();
    format!("{source}:{article_id}:{locale}:{prefix}")
}

fn validate(citations: &[CitationRef]) -> Result<Vec<Cited>, InvalidQuery> {
    if citations.is_empty() {
        return Err(invalid(
            "send at least one citation (a hit's passage_id, or its url and content_hash)".into(),
        ));
    }
    if citations.len() > MAX_CITATIONS {
        return Err(invalid(format!(
            "at most {MAX_CITATIONS} per request, got {}",
            citations.len()
        )));
    }
    citations
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let too_long = [&c.passage_id, &c.url, &c.content_hash]
                .iter()
                .any(|f| f.as_ref().is_some_and(|s| s.len() > MAX_FIELD_LEN));
            if too_long {
                return Err(invalid(format!(
                    "[{i}]: fields are at most {MAX_FIELD_LEN} bytes"
                )));
            }
            if let Some(id) = c.passage_id.as_deref().filter(|s| !s.trim().is_empty()) {
                let (source, article_id, locale, hash_prefix) = parse_passage_id(id.trim())
                    .ok_or_else(|| {
                        invalid(format!(
                            "[{i}]: passage_id '{}' is not SOURCE:ARTICLE_ID:LOCALE:HASH16, as hits carry it",
                            id.chars().take(80).collect::<String>()
                        ))
                    })?;
                return Ok(Cited::Passage {
                    source,
                    article_id,
                    locale,
                    hash_prefix,
                });
            }
            match (
                c.url.as_deref().map(str::trim).filter(|s| !s.is_empty()),
                c.content_hash
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty()),
            ) {
                (Some(url), Some(hash)) => Ok(Cited::Url {
                    url: url.to_string(),
                    content_hash: hash.to_ascii_lowercase(),
                }),
                (Some(_), None) => Err(invalid(format!(
                    "[{i}]: a url needs the content_hash the hit carried (or send its passage_id)"
                ))),
                _ => Err(invalid(format!(
                    "[{i}]: needs a passage_id, or a url with its content_hash"
                ))),
            }
        })
        .collect()
}

/// Why a verify request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The request breaks the contract.
    #[error(transparent)]
    Invalid(#[from] InvalidQuery),
    /// The data directory cannot answer.
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl VerifyError {
    /// The kind of this error, for the wire.
    pub fn code(&self) -> crate::error::ErrorCode {
        match self {
            VerifyError::Invalid(_) => crate::error::ErrorCode::BadRequest,
            VerifyError::Read(e) => e.code(),
        }
    }
}

/// Checks each citation against the store, under `access`.
pub fn verify(
    reader: &Reader,
    citations: &[CitationRef],
    access: &Access,
) -> Result<VerifyResponse, VerifyError> {
    let cited = validate(citations)?;
    reader.ensure_ready()?;
    let results = reader.store(|store| {
        store.snapshot(|store| {
            citations
                .iter()
                .zip(&cited)
                .map(|(sent, c)| check(store, sent, c, access))
                .collect::<Result<Vec<_>, StoreError>>()
        })
    })?;
    Ok(VerifyResponse {
        audience: access.audience,
        all_current: results.iter().all(|r| r.status == CitationStatus::Current),
        results,
    })
}

/// A published translation the caller may read, with its source name.
fn readable(
    store: &impl StoreRead,
    source: &str,
    article_id: u64,
    locale: &str,
    access: &Access,
) -> Result<Option<TranslationRecord>, StoreError> {
    let Some(row) = store.article_row(source, article_id)? else {
        return Ok(None);
    };
    if !access.allows(&row.access) {
        return Ok(None);
    }
    Ok(store
        .translations_of(source, article_id)?
        .into_iter()
        .find(|t| t.locale == locale && !t.draft))
}

fn check(
    store: &impl StoreRead,
    sent: &CitationRef,
    cited: &Cited,
    access: &Access,
) -> Result<CitationCheck, StoreError> {
    let mut out = CitationCheck {
        status: CitationStatus::Gone,
        passage_id: sent
            .passage_id
            .clone()
            .filter(|_| matches!(cited, Cited::Passage { .. })),
        url: sent
            .url
            .clone()
            .filter(|_| matches!(cited, Cited::Url { .. })),
        current_hash: None,
        current_url: None,
    };
    match cited {
        Cited::Passage {
            source,
            article_id,
            locale,
            hash_prefix,
        } => {
            let Some(t) = readable(store, source, *article_id, locale, access)? else {
                return Ok(out);
            };
            let passages = store.passages_of(source, *article_id, locale)?;
            if passages
                .iter()
                .any(|p| p.hash.to_ascii_lowercase().starts_with(hash_prefix))
            {
                out.status = CitationStatus::Current;
            } else {
                out.status = CitationStatus::Changed;
                out.current_hash = Some(t.content_hash);
                out.current_url = Some(t.html_url);
            }
        }
        Cited::Url { url, content_hash } => {
            let (base, anchor) = match url.split_once('#') {
                Some((b, a)) => (b, Some(a)),
                None => (url.as_str(), None),
            };
            let Some((source, article_id, t)) = translation_at(store, base, access)? else {
                return Ok(out);
            };
            if t.content_hash.eq_ignore_ascii_case(content_hash) {
                out.status = CitationStatus::Current;
            } else {
                let still_there = match anchor {
                    Some(a) => store
                        .passages_of(&source, article_id, &t.locale)?
                        .iter()
                        .any(|p| p.anchor.as_deref().is_some_and(|x| anchor_eq(x, a))),
                    None => false,
                };
                out.status = CitationStatus::Changed;
                out.current_url = Some(match (still_there, anchor) {
                    (true, Some(a)) => format!("{}#{a}", t.html_url),
                    _ => t.html_url.clone(),
                });
                out.current_hash = Some(t.content_hash);
            }
        }
    }
    Ok(out)
}

/// An anchor as stored against a url fragment, which may be percent-encoded.
fn anchor_eq(stored: &str, fragment: &str) -> bool {
    stored == fragment || percent_decode(fragment).is_some_and(|d| d == stored)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The article id and locale a Help Center article url names:
/// `…/hc/{locale}/articles/{id}[-slug]`.
fn ids_in_url(url: &str) -> Option<(u64, Option<String>)> {
    let path = url.split(['?', '#']).next()?;
    let mut segs = path.split('/').peekable();
    let mut locale = None;
    while let Some(seg) = segs.next() {
        if seg == "hc"
            && let Some(l) = segs.peek()
            && *l != "articles"
        {
            locale = Some(l.to_ascii_lowercase());
        }
        if seg == "articles" {
            let id: String = segs
                .next()?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return Some((id.parse().ok()?, locale));
        }
    }
    None
}

/// The readable translation a citation url points at: the one whose `html_url` it is, or,
/// when the url has another form (with or without the slug), the one whose article id and
/// locale it names.
fn translation_at(
    store: &impl StoreRead,
    base: &str,
    access: &Access,
) -> Result<Option<(String, u64, TranslationRecord)>, StoreError> {
    let Some((article_id, locale)) = ids_in_url(base) else {
        return Ok(None);
    };
    let mut by_locale = None;
    for source in store.sources_of(article_id)? {
        for t in store.translations_of(&source, article_id)? {
            if t.html_url == base {
                return Ok(readable(store, &source, article_id, &t.locale, access)?
                    .map(|t| (source.clone(), article_id, t)));
            }
            if by_locale.is_none() && locale.as_deref() == Some(t.locale.as_str()) {
                by_locale = Some((source.clone(), t.locale.clone()));
            }
        }
    }
    let Some((source, locale)) = by_locale else {
        return Ok(None);
    };
    Ok(readable(store, &source, article_id, &locale, access)?.map(|t| (source, article_id, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passage_ids_round_trip() {
        let id = passage_id("acme-eu", 42, "pt-br", &"ab".repeat(32));
        assert_eq!(id, "acme-eu:42:pt-br:abababababababab");
        assert_eq!(
            parse_passage_id(&id),
            Some((
                "acme-eu".into(),
                42,
                "pt-br".into(),
                "abababababababab".into()
            ))
        );
        for bad in [
            "acme:42:en-us",
            "acme:x:en-us:abababababababab",
            "acme:42:en-us:abab",
            "acme:42:en-us:zzzzzzzzzzzzzzzz",
            ":42:en-us:abababababababab",
            "a:42:en-us:abababababababab:extra",
        ] {
            assert_eq!(parse_passage_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_name_article_and_locale() {
        assert_eq!(
            ids_in_url("https://h.example.com/hc/en-us/articles/360001-reset-password"),
            Some((360001, Some("en-us".into())))
        );
        assert_eq!(
            ids_in_url("https://h.example.com/hc/articles/77"),
            Some((77, None))
        );
        assert_eq!(
            ids_in_url("https://h.example.com/hc/en-us/sections/5"),
            None
        );
        assert_eq!(ids_in_url("javascript:alert(1)"), None);
    }

    #[test]
    fn every_citation_is_checked_for_shape() {
        let ok = CitationRef {
            passage_id: Some("s:1:en-us:0123456789abcdef".into()),
            ..CitationRef::default()
        };
        assert!(validate(std::slice::from_ref(&ok)).is_ok());
        assert!(validate(&[]).unwrap_err().message.contains("at least one"));
        let many = vec![ok; MAX_CITATIONS + 1];
        assert!(validate(&many).unwrap_err().message.contains("at most 100"));
        let url_only = CitationRef {
            url: Some("https://h/hc/en-us/articles/1".into()),
            ..CitationRef::default()
        };
        assert!(
            validate(&[url_only])
                .unwrap_err()
                .to_string()
                .starts_with("citations: [0]: a url needs the content_hash")
        );
        let bad_id = CitationRef {
            passage_id: Some("nope".into()),
            ..CitationRef::default()
        };
        assert!(
            validate(&[bad_id])
                .unwrap_err()
                .message
                .contains("SOURCE:ARTICLE_ID")
        );
    }

    #[test]
    fn fragments_match_encoded_anchors() {
        assert!(anchor_eq("h_01", "h_01"));
        assert!(anchor_eq("étape 1", "%C3%A9tape%201"));
        assert!(!anchor_eq("h_01", "h_02"));
        assert!(!anchor_eq("x", "%zz"));
    }
}
