//! `GET /v1/articles/{id}`, the `get_article` MCP tool: what helpdex holds for one article, per
//! locale, within the caller's access. Drafts are never shown; nothing outside the caller's
//! access is returned (the answer is the same as for an unknown article).

use crate::model::{Access, Visibility};
use crate::reader::{ReadError, Reader};
use crate::store::{StoreError, StoreRead};
use serde::Serialize;

/// One passage of an article.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ArticleSection {
    /// Heading path joined with " › " (empty for the intro).
    pub heading: String,
    /// Citation URL (with `#anchor` when the section has one).
    pub url: String,
    /// Text.
    pub text: String,
}

/// One translation of an article, as a caller may read it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ArticleView {
    /// Source (help center) name.
    pub source: String,
    /// Article id.
    pub article_id: u64,
    /// Locale.
    pub locale: String,
    /// Title.
    pub title: String,
    /// Article URL.
    pub url: String,
    /// Decided visibility.
    pub visibility: Visibility,
    /// Flagged outdated against its source translation.
    pub outdated: bool,
    /// Zendesk updated_at of the translation.
    pub updated_at: Option<String>,
    /// blake3 of the normalized content.
    pub content_hash: String,
    /// Passages in order.
    pub sections: Vec<ArticleSection>,
}

/// Every readable translation of `article_id` (optionally one locale) for `access`.
pub fn get(
    reader: &Reader,
    article_id: u64,
    locale: Option<&str>,
    access: &Access,
) -> Result<Vec<ArticleView>, ReadError> {
    reader.store(|store| store.snapshot(|store| get_in(store, article_id, locale, access)))
}

fn get_in(
    store: &impl StoreRead,
    article_id: u64,
    locale: Option<&str>,
    access: &Access,
) -> Result<Vec<ArticleView>, StoreError> {
    let mut out = Vec::new();
    for source in store.sources_of(article_id)? {
        let Some(row) = store.article_row(&source, article_id)? else {
            continue;
        };
        if !access.allows(&row.access) {
            continue;
        }
        for t in store.translations_of(&source, article_id)? {
            if t.draft || locale.is_some_and(|l| l != t.locale) {
                continue;
            }
            let url = t.html_url;
            let sections = store
                .passages_of(&source, article_id, &t.locale)?
                .into_iter()
                .map(|s| ArticleSection {
                    heading: s.heading_path.join(" › "),
                    url: match &s.anchor {
                        Some(a) => format!("{url}#{a}"),
                        None => url.clone(),
                    },
                    text: s.text,
                })
                .collect();
            out.push(ArticleView {
                source: source.clone(),
                article_id,
                locale: t.locale,
                title: t.title,
                url,
                visibility: row.visibility,
                outdated: t.outdated,
                updated_at: t.updated_at,
                content_hash: t.content_hash,
                sections,
            });
        }
    }
    Ok(out)
}
