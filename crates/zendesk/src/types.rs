//! Wire types of the Help Center API and their validation, one record at a time.
//!
//! Pages are decoded as JSON values first and each record is then checked on its own
//! ([`Article::from_value`], [`Translation::from_value`]): one malformed record (an id of `-5`,
//! `"1002"`, `null`, `1.5` or 2^64, string segment ids...) is quarantined by the caller while the
//! rest of the page goes on. Errors name the field and the JSON type found, never the value, so
//! no article text or credential can reach a log through them.
//!
//! Fields that decide who may read an article are kept as "absent" when the record does not
//! carry them ([`Article::segments`], [`Article::draft`]): the caller treats absence as "not
//! public", never as "everyone".

use serde::Deserialize;
use serde_json::{Map, Value};

/// Why one record was refused. `record` is its id when readable, else its position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordError {
    /// The article id, or `#N` (position in the page) when the id itself is unusable.
    pub record: String,
    /// The article id, when it was readable.
    #[serde(skip)]
    pub id: Option<u64>,
    /// Which field is wrong and how (names JSON types, never values).
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {}: {}", self.record, self.reason)
    }
}

/// The JSON type of a value, for error messages that must not quote content.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a non-integer number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An id as Zendesk sends it: a JSON integer in `1..=i64::MAX` (what SQLite can hold).
pub fn id_of(v: &Value) -> Option<u64> {
    v.as_u64().filter(|n| (1..=i64::MAX as u64).contains(n))
}

fn bad(record: &str, field: &str, v: &Value, want: &str) -> RecordError {
    RecordError {
        id: None,
        record: record.to_string(),
        reason: format!("{field} is {}, expected {want}", kind(v)),
    }
}

/// A locale as found in paths and records: `en-us`, `pt-br`, `es-419`, `de`.
pub fn valid_locale(s: &str) -> bool {
    (2..=16).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Epoch seconds of a Zendesk timestamp (`2024-09-06T23:09:57Z`).
pub fn epoch(ts: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|d| d.timestamp())
}

/// Field readers over one JSON object, each failing with a [`RecordError`].
struct Fields<'a> {
    o: &'a Map<String, Value>,
    record: String,
}

impl Fields<'_> {
    fn get(&self, k: &str) -> Option<&Value> {
        self.o.get(k).filter(|v| !v.is_null())
    }

    fn string(&self, k: &str) -> Result<Option<String>, RecordError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(bad(&self.record, k, v, "a string")),
        }
    }

    fn boolean(&self, k: &str) -> Result<Option<bool>, RecordError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(bad(&self.record, k, v, "a boolean")),
        }
    }

    fn id(&self, k: &str) -> Result<Option<u64>, RecordError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => id_of(v)
                .map(Some)
                .ok_or_else(|| bad(&self.record, k, v, "a positive integer id")),
        }
    }

    fn ids(&self, k: &str) -> Result<Option<Vec<u64>>, RecordError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| id_of(v).ok_or_else(|| bad(&self.record, k, v, "integer ids")))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(bad(&self.record, k, v, "an array of ids")),
        }
    }

    fn strings(&self, k: &str) -> Result<Vec<String>, RecordError> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(bad(&self.record, k, v, "strings")),
                })
                .collect(),
            Some(v) => Err(bad(&self.record, k, v, "an array of strings")),
        }
    }

    fn locale(&self, k: &str) -> Result<Option<String>, RecordError> {
        match self.string(k)? {
            Some(l) if valid_locale(&l) => Ok(Some(l.to_ascii_lowercase())),
            Some(_) => Err(RecordError {
                id: None,
                record: self.record.clone(),
                reason: format!("{k} is not a locale"),
            }),
            None => Ok(None),
        }
    }

    fn timestamp(&self, k: &str) -> Result<Option<String>, RecordError> {
        match self.string(k)? {
            Some(t) if epoch(&t).is_some() => Ok(Some(t)),
            Some(_) => Err(RecordError {
                id: None,
                record: self.record.clone(),
                reason: format!("{k} is not an ISO 8601 timestamp"),
            }),
            None => Ok(None),
        }
    }
}

fn object<'a>(v: &'a Value, position: usize) -> Result<Fields<'a>, RecordError> {
    let o = v.as_object().ok_or_else(|| RecordError {
        id: None,
        record: format!("#{position}"),
        reason: format!("the record is {}, expected an object", kind(v)),
    })?;
    Ok(Fields {
        o,
        record: format!("#{position}"),
    })
}

/// An article as returned by the export, list and show endpoints (shown in one locale).
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// Article id.
    pub id: u64,
    /// Public page as Zendesk gave it (with or without slug); canonicalized by the sync.
    pub html_url: Option<String>,
    /// Section the article lives in.
    pub section_id: Option<u64>,
    /// Title in `locale`.
    pub title: Option<String>,
    /// HTML body in `locale`; may be `null`.
    pub body: Option<String>,
    /// Locale of `title`/`body`.
    pub locale: String,
    /// The article's source locale.
    pub source_locale: String,
    /// This locale's translation is a draft; `None` when the record does not say (treated as
    /// a draft: not customer-visible).
    pub draft: Option<bool>,
    /// Locales whose translation is outdated.
    pub outdated_locales: Vec<String>,
    /// Who may view: the union of `user_segment_ids` and the legacy `user_segment_id`; `[]` =
    /// everyone; `None` when the record carries neither field (treated as internal).
    pub segments: Option<Vec<u64>>,
    /// Labels.
    pub label_names: Vec<String>,
    /// Max over translations; moves for comments too. Always present (validated).
    pub updated_at: String,
    /// Last edit of the displayed locale.
    pub edited_at: Option<String>,
    /// Embedded with `include=translations` (raw, validated by the caller).
    pub translations: Option<Vec<Value>>,
}

impl Article {
    /// Validates one article record; `position` names it when its id is unusable.
    pub fn from_value(v: &Value, position: usize) -> Result<Article, RecordError> {
        let mut f = object(v, position)?;
        let id = match f.o.get("id") {
            Some(raw) => {
                id_of(raw).ok_or_else(|| bad(&f.record, "id", raw, "a positive integer"))?
            }
            None => {
                return Err(RecordError {
                    id: None,
                    record: f.record,
                    reason: "id is missing".into(),
                });
            }
        };
        f.record = id.to_string();
        Self::fields(&f, id).map_err(|mut e| {
            e.id = Some(id);
            e
        })
    }

    fn fields(f: &Fields<'_>, id: u64) -> Result<Article, RecordError> {
        // `user_segment_ids: []` or `user_segment_id: null` say "everyone"; neither field
        // present says nothing, which is not the same.
        let list = f.ids("user_segment_ids")?;
        let single = f.id("user_segment_id")?;
        let single_present = f.o.contains_key("user_segment_id");
        let segments = match (list, single, single_present) {
            (Some(mut ids), s, _) => {
                if let Some(s) = s
                    && !ids.contains(&s)
                {
                    ids.push(s);
                }
                ids.sort_unstable();
                ids.dedup();
                Some(ids)
            }
            (None, Some(s), _) => Some(vec![s]),
            (None, None, true) => Some(Vec::new()),
            (None, None, false) => None,
        };
        let source_locale = f.locale("source_locale")?;
        let locale = f.locale("locale")?;
        let (locale, source_locale) = match (locale, source_locale) {
            (Some(l), Some(s)) => (l, s),
            (Some(l), None) => (l.clone(), l),
            (None, Some(s)) => (s.clone(), s),
            (None, None) => {
                return Err(RecordError {
                    id: None,
                    record: f.record.clone(),
                    reason: "locale and source_locale are missing".into(),
                });
            }
        };
        let updated_at = f.timestamp("updated_at")?.ok_or_else(|| RecordError {
            id: None,
            record: f.record.clone(),
            reason: "updated_at is missing".into(),
        })?;
        let translations = match f.get("translations") {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(v) => return Err(bad(&f.record, "translations", v, "an array")),
        };
        Ok(Article {
            id,
            html_url: f.string("html_url")?,
            section_id: f.id("section_id")?,
            title: f.string("title")?.or(f.string("name")?),
            body: f.string("body")?,
            locale,
            source_locale,
            draft: f.boolean("draft")?,
            outdated_locales: f.strings("outdated_locales")?,
            segments,
            label_names: f.strings("label_names")?,
            updated_at,
            edited_at: f.timestamp("edited_at")?,
            translations,
        })
    }

    /// The translation this record shows (its `locale`), as the translations endpoint would
    /// give it.
    pub fn shown_translation(&self) -> Translation {
        Translation {
            locale: self.locale.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            draft: self.draft,
            outdated: self.outdated_locales.contains(&self.locale),
            html_url: self.html_url.clone(),
            updated_at: self.edited_at.clone().or(Some(self.updated_at.clone())),
        }
    }
}

/// One translation of an article.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// Locale.
    pub locale: String,
    /// Title.
    pub title: Option<String>,
    /// HTML body; may be `null`.
    pub body: Option<String>,
    /// Unpublished in this locale; `None` when the record does not say (treated as a draft).
    pub draft: Option<bool>,
    /// Flagged outdated against the source.
    pub outdated: bool,
    /// Public page of this translation, as Zendesk gave it.
    pub html_url: Option<String>,
    /// Last change of this translation.
    pub updated_at: Option<String>,
}

impl Translation {
    /// Validates one translation record of article `article_id`.
    pub fn from_value(v: &Value, article_id: u64) -> Result<Translation, RecordError> {
        let mut f = object(v, 0).map_err(|mut e| {
            e.id = Some(article_id);
            e.record = format!("{article_id} (translation)");
            e
        })?;
        f.record = format!("{article_id} (translation)");
        let locale = f.locale("locale")?.ok_or_else(|| RecordError {
            id: Some(article_id),
            record: f.record.clone(),
            reason: "locale is missing".into(),
        })?;
        Ok(Translation {
            locale,
            title: f.string("title")?,
            body: f.string("body")?,
            draft: f.boolean("draft")?,
            outdated: f.boolean("outdated")?.unwrap_or(false),
            html_url: f.string("html_url")?,
            updated_at: f.timestamp("updated_at")?,
        })
    }
}

/// One page of the incremental article export, records still unvalidated.
#[derive(Debug, Clone, Default)]
pub struct ExportPage {
    /// Article records, in the order served.
    pub records: Vec<Value>,
    /// Next page URL, `null` on the last page.
    pub next_page: Option<String>,
    /// Epoch seconds of the last item's change (`1` on an empty page, a recorded quirk; may be
    /// anything at all, so the sync never trusts it for its cursor).
    pub end_time: Option<i64>,
}

/// One page of a cursor-paginated list, items still unvalidated.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The items under the list's key.
    pub items: Vec<Value>,
    /// Sideloaded arrays (`include=`), by key.
    pub sideloads: Map<String, Value>,
    /// Cursor of the next page, when there is one.
    pub after: Option<String>,
}

/// A user segment (`/user_segments`).
#[derive(Debug, Clone, Deserialize)]
pub struct UserSegment {
    /// Segment id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `signed_in_users` or `staff`.
    #[serde(default)]
    pub user_type: String,
    /// Built-in segment.
    #[serde(default)]
    pub built_in: bool,
}

/// A section.
#[derive(Debug, Clone, Deserialize)]
pub struct Section {
    /// Id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Parent category.
    #[serde(default)]
    pub category_id: Option<u64>,
    /// Public page.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A category.
#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    /// Id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Public page.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A brand (`/api/v2/brands`).
#[derive(Debug, Clone, Deserialize)]
pub struct Brand {
    /// Id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `enabled`, `disabled` or `restricted`.
    #[serde(default)]
    pub help_center_state: Option<String>,
    /// Brand subdomain.
    #[serde(default)]
    pub subdomain: Option<String>,
    /// Custom help center host, when the brand has one.
    #[serde(default)]
    pub host_mapping: Option<String>,
    /// `https://{subdomain}.zendesk.com`.
    #[serde(default)]
    pub brand_url: Option<String>,
}

/// `/help_center/locales`.
#[derive(Debug, Clone, Deserialize)]
pub struct Locales {
    /// Default locale.
    #[serde(default)]
    pub default_locale: String,
    /// Every enabled locale.
    #[serde(default)]
    pub locales: Vec<String>,
}

/// Decodes the well-formed items of a small list (segments, sections, brands), deduplicated by
/// id; malformed items are dropped and counted (a dropped segment makes its articles internal,
/// a dropped section only loses a name).
pub fn decode_items<T: serde::de::DeserializeOwned>(
    items: Vec<Value>,
    id: impl Fn(&T) -> u64,
) -> (Vec<T>, usize) {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    let mut dropped = 0;
    for v in items {
        match serde_json::from_value::<T>(v) {
            Ok(t) if seen.insert(id(&t)) => out.push(t),
            Ok(_) => {}
            Err(_) => dropped += 1,
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"id": 7, "html_url": "https://x/hc/en-us/articles/7-T", "title": "T", "body": "<p>b</p>",
               "locale": "en-us", "source_locale": "en-us", "draft": false,
               "user_segment_id": null, "user_segment_ids": [], "updated_at": "2024-01-01T00:00:00Z"})
    }

    #[test]
    fn a_well_formed_record_parses() {
        let a = Article::from_value(&base(), 0).unwrap();
        assert_eq!(
            (a.id, a.segments.clone(), a.draft),
            (7, Some(vec![]), Some(false))
        );
        assert_eq!(a.shown_translation().locale, "en-us");
    }

    #[test]
    fn malformed_ids_are_refused_without_quoting_values() {
        for (id, what) in [
            (json!(-5), "an integer"),
            (json!("1002"), "a string"),
            (json!(null), "null"),
            (json!(1.5), "a non-integer number"),
            (
                json!(18446744073709551616u128 as f64),
                "a non-integer number",
            ),
            (json!(9223372036854775808u64), "an integer"),
        ] {
            let mut v = base();
            v["id"] = id;
            let e = Article::from_value(&v, 3).unwrap_err();
            assert_eq!(e.record, "#3");
            assert!(e.reason.contains(what), "{e}");
        }
        let mut v = base();
        v["user_segment_ids"] = json!(["12", 5]);
        let e = Article::from_value(&v, 0).unwrap_err();
        assert_eq!(e.record, "7");
        assert!(
            e.reason.contains("user_segment_ids") && !e.reason.contains("12"),
            "{e}"
        );
    }

    #[test]
    fn absent_visibility_fields_stay_absent() {
        let mut v = base();
        let o = v.as_object_mut().unwrap();
        o.remove("user_segment_ids");
        o.remove("user_segment_id");
        o.remove("draft");
        let a = Article::from_value(&v, 0).unwrap();
        assert_eq!((a.segments, a.draft), (None, None));
        // The legacy field alone, even null, does say "everyone".
        let mut v = base();
        v.as_object_mut().unwrap().remove("user_segment_ids");
        assert_eq!(Article::from_value(&v, 0).unwrap().segments, Some(vec![]));
        let mut v = base();
        v["user_segment_ids"] = json!([9, 3]);
        v["user_segment_id"] = json!(4);
        assert_eq!(
            Article::from_value(&v, 0).unwrap().segments,
            Some(vec![3, 4, 9])
        );
    }

    #[test]
    fn timestamps_and_locales_are_checked() {
        let mut v = base();
        v["updated_at"] = json!("yesterday");
        assert!(Article::from_value(&v, 0).is_err());
        let mut v = base();
        v["locale"] = json!("<script>");
        assert!(Article::from_value(&v, 0).is_err());
        assert!(valid_locale("es-419") && valid_locale("en_us") && !valid_locale("e"));
    }

    #[test]
    fn small_lists_drop_malformed_items_and_duplicates() {
        let (s, dropped) = decode_items::<Section>(
            vec![
                json!({"id": 1, "name": "a"}),
                json!({"id": "x"}),
                json!({"id": 1, "name": "again"}),
            ],
            |s| s.id,
        );
        assert_eq!((s.len(), dropped, s[0].name.as_str()), (1, 1, "a"));
    }
}
