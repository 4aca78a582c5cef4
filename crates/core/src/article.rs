//! `GET /v1/articles/{id}`, the `get_article` MCP tool: what helpdex holds for one article, per
//! locale, within the caller's access. Drafts are never shown; nothing outside the caller's
//! access is returned (the answer is the same as for an unknown article).

use crate::engine::Engine;
use crate::model::Access;
use crate::store::StoreError;
use serde::Serialize;

/// One passage of an article.
#[derive(Debug, Clone, Serialize)]
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
    /// Visibility label.
    pub visibility: String,
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
    engine: &Engine,
    article_id: u64,
    locale: Option<&str>,
    access: &Access,
) -> Result<Vec<ArticleView>, StoreError> {
    let store = engine.store();
    let mut out = Vec::new();
    for source in store.sources_of(article_id)? {
        let Some(row) = store.article_row(&source, article_id)? else {
            continue;
        };
        if !access.allows(&row.access) {
            continue;
        }
        for (loc, title, url, draft, outdated, content_hash, _ih, _synced, updated_at) in
            store.translation_summaries(&source, article_id)?
        {
            if draft || locale.is_some_and(|l| l != loc) {
                continue;
            }
            let sections = store
                .segments_of(&source, article_id, &loc)?
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
                locale: loc,
                title,
                url,
                visibility: row.visibility.clone(),
                outdated,
                updated_at,
                content_hash,
                sections,
            });
        }
    }
    Ok(out)
}
