//! The one query contract of every front end (CLI, HTTP, MCP): what a caller may send, its
//! defaults and bounds, and the errors a bad request gets, word for word the same everywhere.
//!
//! A front end deserializes (or builds from flags) a [`QueryInput`], bounds its audience by
//! the caller's rights, and calls [`QueryInput::validate`]; the read models take the validated
//! [`Query`].

use crate::model::{Access, Audience};
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// Hits returned when the caller does not say.
pub const DEFAULT_LIMIT: usize = 8;
/// Most hits one query may ask for.
pub const MAX_LIMIT: usize = 50;
/// Default budget of an assembled context, in characters.
pub const DEFAULT_MAX_CHARS: usize = 6_000;
/// Smallest context budget (one useful passage).
pub const MIN_MAX_CHARS: usize = 200;
/// Largest context budget.
pub const MAX_MAX_CHARS: usize = 50_000;
/// Longest query text, in characters: a customer's question (with a pasted error message),
/// not a conversation. Bounds the memory and time one query can cost.
pub const MAX_QUERY_CHARS: usize = 4_000;
/// Most distinct words one query may hold, for the same reason.
pub const MAX_QUERY_TERMS: usize = 256;

/// A query as a caller sends it. Unknown fields are refused, so a misspelt option is an error
/// rather than silently ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct QueryInput {
    /// The question or keywords (`q` in a URL).
    #[serde(alias = "q", default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = MAX_QUERY_CHARS)))]
    pub query: String,
    /// `customer` (default) or `agent`.
    #[serde(default)]
    pub audience: Option<Audience>,
    /// For customers: the end user is signed in.
    #[serde(default)]
    pub signed_in: Option<bool>,
    /// For customers: their Zendesk user segment ids (a list, or comma-separated in a URL).
    #[serde(default, deserialize_with = "segment_ids")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<crate::schema::SegmentIds>")
    )]
    pub segments: Option<Vec<u64>>,
    /// Only this locale (case-insensitive: `en-US` is `en-us`).
    #[serde(default)]
    pub locale: Option<String>,
    /// Most hits (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = MAX_LIMIT)))]
    pub limit: Option<usize>,
    /// Budget of an assembled context, in characters ([`MIN_MAX_CHARS`] to [`MAX_MAX_CHARS`],
    /// default [`DEFAULT_MAX_CHARS`]); only `context` uses it.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = MIN_MAX_CHARS, max = MAX_MAX_CHARS)))]
    pub max_chars: Option<usize>,
}

/// A validated query: what the read models execute.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The question, trimmed.
    pub text: String,
    /// Who is asking.
    pub access: Access,
    /// Only this locale, normalised to Zendesk's lowercase form.
    pub locale: Option<String>,
    /// Most hits.
    pub limit: usize,
    /// Context budget, in characters.
    pub max_chars: usize,
}

/// A request that breaks the contract. The message names the field, the rule and what was
/// sent, and is the same through every front end.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct InvalidQuery {
    /// The offending field as the caller names it.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidQuery {
    InvalidQuery {
        field,
        message: message.into(),
    }
}

impl QueryInput {
    /// A customer's query for `text` with every default.
    pub fn new(text: impl Into<String>) -> QueryInput {
        QueryInput {
            query: text.into(),
            ..QueryInput::default()
        }
    }

    /// The access this input asks for (customer unless it says agent).
    pub fn requested_access(&self) -> Access {
        Access {
            audience: self.audience.unwrap_or_default(),
            signed_in: self.signed_in.unwrap_or(false),
            segments: self.segments.clone().unwrap_or_default(),
        }
    }

    /// Checks every bound and applies every default. `access` is what the front end granted
    /// (its own key or operator rules bound the requested audience).
    pub fn validate(self, access: Access) -> Result<Query, InvalidQuery> {
        let text = self.query.trim();
        if text.is_empty() {
            return Err(invalid("query", "must not be empty"));
        }
        let chars = text.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(invalid(
                "query",
                format!(
                    "at most {MAX_QUERY_CHARS} characters, got {chars}: send the customer's question, not the whole conversation"
                ),
            ));
        }
        let mut words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        words.sort_unstable();
        words.dedup();
        if words.len() > MAX_QUERY_TERMS {
            return Err(invalid(
                "query",
                format!(
                    "at most {MAX_QUERY_TERMS} distinct words, got {}",
                    words.len()
                ),
            ));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
        let max_chars = self.max_chars.unwrap_or(DEFAULT_MAX_CHARS);
        if !(MIN_MAX_CHARS..=MAX_MAX_CHARS).contains(&max_chars) {
            return Err(invalid(
                "max_chars",
                format!("must be between {MIN_MAX_CHARS} and {MAX_MAX_CHARS}, got {max_chars}"),
            ));
        }
        let locale = match self.locale.as_deref().map(normalize_locale) {
            None => None,
            Some(l) if l.is_empty() => None,
            Some(l) if is_locale_code(&l) => Some(l),
            Some(_) => {
                return Err(invalid(
                    "locale",
                    format!(
                        "'{}' is not a locale code (e.g. en-us, de, pt-br)",
                        self.locale
                            .unwrap_or_default()
                            .chars()
                            .take(40)
                            .collect::<String>()
                    ),
                ));
            }
        };
        Ok(Query {
            text: text.to_string(),
            access,
            locale,
            limit,
            max_chars,
        })
    }
}

/// Zendesk's form of a locale code: lowercase, `-` between parts (`en_US` → `en-us`).
pub fn normalize_locale(l: &str) -> String {
    l.trim().to_lowercase().replace('_', "-")
}

/// Letters, digits and dashes, 2 to 16 characters: what Zendesk locale codes look like.
fn is_locale_code(l: &str) -> bool {
    (2..=16).contains(&l.len())
        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && l.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// Segment ids as a JSON list of numbers or as a comma-separated string (`?segments=3,9`).
fn segment_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u64>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        List(Vec<u64>),
        Text(String),
    }
    match Option::<Ids>::deserialize(d)? {
        None => Ok(None),
        Some(Ids::List(v)) => Ok(Some(v)),
        Some(Ids::Text(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| {
                x.parse::<u64>().map_err(|_| {
                    serde::de::Error::custom(format!("segments: '{x}' is not a segment id"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(i: QueryInput) -> Query {
        let a = i.requested_access();
        i.validate(a).unwrap()
    }

    fn err(i: QueryInput) -> String {
        let a = i.requested_access();
        i.validate(a).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply() {
        let q = ok(QueryInput::new("  refund  "));
        assert_eq!(q.text, "refund");
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.max_chars, DEFAULT_MAX_CHARS);
        assert_eq!(q.access, Access::anonymous());
        assert_eq!(q.locale, None);
    }

    #[test]
    fn bounds_are_checked_with_one_message() {
        assert_eq!(err(QueryInput::new(" ")), "query: must not be empty");
        let mut i = QueryInput::new("x");
        i.limit = Some(0);
        assert_eq!(err(i.clone()), "limit: must be between 1 and 50, got 0");
        i.limit = Some(51);
        assert!(err(i).contains("got 51"));
        let mut i = QueryInput::new("x");
        i.max_chars = Some(100);
        assert!(err(i).starts_with("max_chars: must be between 200 and 50000"));
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert!(err(QueryInput::new(long)).contains("at most 4000 characters"));
        let many: Vec<String> = (0..=MAX_QUERY_TERMS).map(|i| format!("w{i}")).collect();
        assert!(err(QueryInput::new(many.join(" "))).contains("distinct words"));
    }

    #[test]
    fn locales_are_case_insensitive() {
        let mut i = QueryInput::new("x");
        i.locale = Some("en-US".into());
        assert_eq!(ok(i.clone()).locale.as_deref(), Some("en-us"));
        i.locale = Some("pt_BR".into());
        assert_eq!(ok(i.clone()).locale.as_deref(), Some("pt-br"));
        i.locale = Some("not a locale!".into());
        assert!(err(i).starts_with("locale: 'not a locale!' is not a locale code"));
    }

    #[test]
    fn unknown_fields_and_both_segment_forms() {
        let e = serde_json::from_str::<QueryInput>(r#"{"query":"x","limt":3}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `limt`"), "{e}");
        let a: QueryInput = serde_json::from_str(r#"{"q":"x","segments":"3, 9"}"#).unwrap();
        assert_eq!(a.segments, Some(vec![3, 9]));
        let b: QueryInput = serde_json::from_str(r#"{"query":"x","segments":[3,9]}"#).unwrap();
        assert_eq!(b.segments, Some(vec![3, 9]));
        assert!(serde_json::from_str::<QueryInput>(r#"{"query":"x","segments":"3,a"}"#).is_err());
    }
}
