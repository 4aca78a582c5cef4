//! Zendesk's two pagination modes for list endpoints (`zendesk-api.md` §2.4): cursor
//! (`page[size]`, `page[after]`, `page[before]`; `meta` + `links`) and offset (`page`,
//! `per_page`; 400 beyond page 100). Pure: the server sorts, this slices and links.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;

/// Largest page Zendesk serves.
const MAX_PAGE_SIZE: usize = 100;
/// Offset pagination stops here (10,000 records at 100 per page).
const MAX_OFFSET_PAGE: usize = 100;
/// Default `per_page` of Help Center lists.
const DEFAULT_PER_PAGE: usize = 30;
/// `page[before]` value of `links.last`: base64 of `last_page`, as Zendesk sends it.
const LAST_PAGE: &str = "bGFzdF9wYWdl";

/// The value a list is sorted on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum SortVal {
    Int(i64),
    Text(String),
}

/// Sort value plus id as tie-breaker: a total order, so a cursor names one position.
pub(crate) type Key = (SortVal, u64);

/// What the request asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PageReq {
    Cursor {
        size: usize,
        after: Option<Key>,
        before: Option<Option<Key>>,
    },
    Offset {
        page: usize,
        per_page: usize,
    },
}

/// A 400 answer: which parameter and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageError(pub String);

fn encode(k: &Key) -> String {
    B64.encode(serde_json::to_vec(k).unwrap_or_default())
}

fn decode(c: &str) -> Option<Key> {
    serde_json::from_slice(&B64.decode(c).ok()?).ok()
}

fn get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Reads the pagination parameters; `page[size]` selects cursor mode, as in Zendesk.
pub(crate) fn parse(q: &[(String, String)]) -> Result<PageReq, PageError> {
    if let Some(size) = get(q, "page[size]") {
        let size: usize = size.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            PageError(format!(
                "page[size] must be a positive integer, got {size:?}"
            ))
        })?;
        let after = match get(q, "page[after]") {
            Some(c) => Some(
                decode(c).ok_or_else(|| PageError("page[after] is not a valid cursor".into()))?,
            ),
            None => None,
        };
        let before = match get(q, "page[before]") {
            Some(LAST_PAGE) => Some(None),
            Some(c) => Some(Some(decode(c).ok_or_else(|| {
                PageError("page[before] is not a valid cursor".into())
            })?)),
            None => None,
        };
        return Ok(PageReq::Cursor {
            size: size.min(MAX_PAGE_SIZE),
            after,
            before,
        });
    }
    let page = match get(q, "page") {
        Some(p) => p
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| PageError(format!("page must be a positive integer, got {p:?}")))?,
        None => 1,
    };
    if page > MAX_OFFSET_PAGE {
        return Err(PageError(format!(
            "offset pagination is limited to the first {MAX_OFFSET_PAGE} pages; use cursor pagination (page[size]) instead"
        )));
    }
    let per_page = get(q, "per_page")
        .and_then(|p| p.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PER_PAGE);
    Ok(PageReq::Offset {
        page,
        per_page: per_page.min(MAX_PAGE_SIZE),
    })
}

/// One page ready to serialize.
#[derive(Debug)]
pub(crate) struct Paged<T> {
    /// The page's items, still unrendered (only these get serialized).
    pub items: Vec<T>,
    /// `meta`/`links` or `page`/`next_page`/... to merge into the response object.
    pub fields: Map<String, Value>,
    /// For the `Link: <...>; rel="next"` header.
    pub next: Option<String>,
}

/// Where links point: the requested URL without its pagination parameters.
pub(crate) struct LinkBase<'a> {
    pub url: &'a str,
    pub keep: &'a [(String, String)],
}

impl LinkBase<'_> {
    fn with(&self, extra: &[(&str, String)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.keep {
            s.append_pair(k, v);
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        format!("{}?{}", self.url, s.finish())
    }
}

/// Slices `items` (already sorted by `key` in the requested direction) into the requested page.
pub(crate) fn paginate<T>(
    items: Vec<(Key, T)>,
    desc: bool,
    req: &PageReq,
    base: &LinkBase,
    sort: (&str, &str),
) -> Paged<T> {
    let ord = |a: &Key, b: &Key| if desc { b.cmp(a) } else { a.cmp(b) };
    match req {
        PageReq::Cursor {
            size,
            after,
            before,
        } => {
            let (start, end) = match (before, after) {
                (Some(b), _) => {
                    let end = match b {
                        Some(k) => items.partition_point(|(x, _)| ord(x, k) == Ordering::Less),
                        None => items.len(),
                    };
                    (end.saturating_sub(*size), end)
                }
                (None, Some(a)) => {
                    let start = items.partition_point(|(x, _)| ord(x, a) != Ordering::Greater);
                    (start, (start + size).min(items.len()))
                }
                (None, None) => (0, (*size).min(items.len())),
            };
            let has_more = if before.is_some() {
                start > 0
            } else {
                end < items.len()
            };
            let page = &items[start..end];
            let after_cursor = page.last().map(|(k, _)| encode(k));
            let before_cursor = page.first().map(|(k, _)| encode(k));
            let size_s = size.to_string();
            let mut links = Map::new();
            links.insert(
                "first".into(),
                json!(base.with(&[("page[size]", size_s.clone())])),
            );
            links.insert(
                "last".into(),
                json!(base.with(&[
                    ("page[before]", LAST_PAGE.into()),
                    ("page[size]", size_s.clone())
                ])),
            );
            let next = match (&after_cursor, end < items.len()) {
                (Some(c), true) => {
                    Some(base.with(&[("page[after]", c.clone()), ("page[size]", size_s.clone())]))
                }
                _ => None,
            };
            if let Some(n) = &next {
                links.insert("next".into(), json!(n));
            }
            if let (Some(c), true) = (&before_cursor, start > 0) {
                links.insert(
                    "prev".into(),
                    json!(base.with(&[("page[before]", c.clone()), ("page[size]", size_s)])),
                );
            }
            let mut fields = Map::new();
            fields.insert(
                "meta".into(),
                json!({"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor}),
            );
            fields.insert("links".into(), Value::Object(links));
            let items = items
                .into_iter()
                .skip(start)
                .take(end - start)
                .map(|(_, v)| v)
                .collect();
            Paged {
                items,
                fields,
                next,
            }
        }
        PageReq::Offset { page, per_page } => {
            let count = items.len();
            let page_count = count.div_ceil(*per_page);
            let start = (page - 1).saturating_mul(*per_page).min(count);
            let end = (start + per_page).min(count);
            let link = |p: usize| {
                json!(base.with(&[("page", p.to_string()), ("per_page", per_page.to_string())]))
            };
            let next = (*page < page_count).then(|| link(page + 1));
            let mut fields = Map::new();
            fields.insert("page".into(), json!(page));
            fields.insert(
                "previous_page".into(),
                if *page > 1 {
                    link(page - 1)
                } else {
                    Value::Null
                },
            );
            fields.insert("next_page".into(), next.clone().unwrap_or(Value::Null));
            fields.insert("per_page".into(), json!(per_page));
            fields.insert("page_count".into(), json!(page_count));
            fields.insert("count".into(), json!(count));
            fields.insert("sort_by".into(), json!(sort.0));
            fields.insert("sort_order".into(), json!(sort.1));
            let items = items
                .into_iter()
                .skip(start)
                .take(end - start)
                .map(|(_, v)| v)
                .collect();
            Paged {
                items,
                fields,
                next: next.and_then(|v| v.as_str().map(str::to_string)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn items(n: u64) -> Vec<(Key, Value)> {
        (1..=n)
            .map(|i| ((SortVal::Int(i as i64 / 2), i), json!(i)))
            .collect()
    }

    fn ids(p: &Paged<Value>) -> Vec<u64> {
        p.items.iter().map(|v| v.as_u64().unwrap()).collect()
    }

    const BASE: LinkBase = LinkBase {
        url: "http://h/api/v2/help_center/articles.json",
        keep: &[],
    };

    #[test]
    fn cursor_pages_cover_everything_once_and_link_forward() {
        let mut req = parse(&q(&[("page[size]", "3")])).unwrap();
        let mut seen = Vec::new();
        loop {
            let p = paginate(items(8), false, &req, &BASE, ("position", "asc"));
            seen.extend(ids(&p));
            let meta = &p.fields["meta"];
            if !meta["has_more"].as_bool().unwrap() {
                assert!(p.next.is_none() && p.fields["links"].get("next").is_none());
                break;
            }
            let next = p.next.clone().unwrap();
            assert!(
                next.contains("page%5Bafter%5D=") && next.contains("page%5Bsize%5D=3"),
                "{next}"
            );
            let after = meta["after_cursor"].as_str().unwrap();
            req = parse(&q(&[("page[size]", "3"), ("page[after]", after)])).unwrap();
        }
        assert_eq!(seen, (1..=8).collect::<Vec<_>>());
    }

    #[test]
    fn cursor_before_and_last_page() {
        let last = parse(&q(&[("page[size]", "3"), ("page[before]", LAST_PAGE)])).unwrap();
        let p = paginate(items(8), false, &last, &BASE, ("position", "asc"));
        assert_eq!(ids(&p), vec![6, 7, 8]);
        let before = p.fields["meta"]["before_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        let prev = parse(&q(&[("page[size]", "3"), ("page[before]", &before)])).unwrap();
        assert_eq!(
            ids(&paginate(
                items(8),
                false,
                &prev,
                &BASE,
                ("position", "asc")
            )),
            vec![3, 4, 5]
        );
    }

    #[test]
    fn descending_order_pages_too() {
        let req = parse(&q(&[("page[size]", "5")])).unwrap();
        let mut v = items(7);
        v.reverse();
        let p = paginate(v.clone(), true, &req, &BASE, ("position", "desc"));
        assert_eq!(ids(&p), vec![7, 6, 5, 4, 3]);
        let after = p.fields["meta"]["after_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        let req = parse(&q(&[("page[size]", "5"), ("page[after]", &after)])).unwrap();
        assert_eq!(
            ids(&paginate(v, true, &req, &BASE, ("position", "desc"))),
            vec![2, 1]
        );
    }

    #[test]
    fn offset_mode_defaults_caps_and_limit() {
        assert_eq!(
            parse(&[]).unwrap(),
            PageReq::Offset {
                page: 1,
                per_page: 30
            }
        );
        assert_eq!(
            parse(&q(&[("per_page", "500")])).unwrap(),
            PageReq::Offset {
                page: 1,
                per_page: 100
            }
        );
        assert!(parse(&q(&[("page", "100")])).is_ok());
        assert!(parse(&q(&[("page", "101")])).is_err());
        assert!(parse(&q(&[("page[size]", "0")])).is_err());
        assert!(parse(&q(&[("page[size]", "2"), ("page[after]", "%%%")])).is_err());
        let p = paginate(
            items(7),
            false,
            &PageReq::Offset {
                page: 2,
                per_page: 3,
            },
            &BASE,
            ("position", "asc"),
        );
        assert_eq!(ids(&p), vec![4, 5, 6]);
        assert_eq!(p.fields["count"], 7);
        assert_eq!(p.fields["page_count"], 3);
        assert_eq!(
            p.fields["next_page"],
            "http://h/api/v2/help_center/articles.json?page=3&per_page=3"
        );
        assert_eq!(
            p.fields["previous_page"],
            "http://h/api/v2/help_center/articles.json?page=1&per_page=3"
        );
    }
}
