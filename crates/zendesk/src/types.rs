//! Wire types of the Help Center API, lenient where Zendesk is loose (missing fields, `null`s).

use serde::Deserialize;

/// An article as returned by the export, list and show endpoints (one locale).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Article {
    /// Article id.
    pub id: u64,
    /// Public page; the citation link.
    #[serde(default)]
    pub html_url: String,
    /// Section the article lives in.
    #[serde(default)]
    pub section_id: Option<u64>,
    /// Title in `locale`.
    #[serde(default)]
    pub title: Option<String>,
    /// HTML body in `locale`; may be `null`.
    #[serde(default)]
    pub body: Option<String>,
    /// Locale of `title`/`body`.
    #[serde(default)]
    pub locale: String,
    /// The article's source locale.
    #[serde(default)]
    pub source_locale: String,
    /// This locale's translation is a draft.
    #[serde(default)]
    pub draft: bool,
    /// Locales whose translation is outdated.
    #[serde(default)]
    pub outdated_locales: Vec<String>,
    /// Who may view; `[]` = everyone.
    #[serde(default)]
    pub user_segment_ids: Vec<u64>,
    /// Legacy single-segment form, merged into `user_segment_ids`.
    #[serde(default)]
    pub user_segment_id: Option<u64>,
    /// Labels.
    #[serde(default)]
    pub label_names: Vec<String>,
    /// Max over translations; moves for comments too.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Last edit of the displayed locale.
    #[serde(default)]
    pub edited_at: Option<String>,
    /// Embedded with `include=translations`.
    #[serde(default)]
    pub translations: Option<Vec<Translation>>,
}

impl Article {
    /// Segment ids from both the list and the legacy single-id field.
    pub fn segment_ids(&self) -> Vec<u64> {
        let mut ids = self.user_segment_ids.clone();
        if let Some(id) = self.user_segment_id
            && !ids.contains(&id)
        {
            ids.push(id);
        }
        ids.sort_unstable();
        ids
    }
}

/// One translation of an article.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Translation {
    /// Locale.
    pub locale: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// HTML body; may be `null`.
    #[serde(default)]
    pub body: Option<String>,
    /// Unpublished in this locale.
    #[serde(default)]
    pub draft: bool,
    /// Flagged outdated against the source.
    #[serde(default)]
    pub outdated: bool,
    /// Public page of this translation.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Last change of this translation.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// One page of the incremental article export.
#[derive(Debug, Clone, Deserialize)]
pub struct IncrementalPage {
    /// Articles changed at or after `start_time`.
    #[serde(default)]
    pub articles: Vec<Article>,
    /// Next page URL, `null` on the last page.
    #[serde(default)]
    pub next_page: Option<String>,
    /// Epoch seconds of the last item's change (`1` on an empty page, a recorded quirk).
    #[serde(default)]
    pub end_time: Option<i64>,
}

/// Cursor pagination metadata.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Meta {
    /// More pages follow.
    #[serde(default)]
    pub has_more: bool,
    /// Cursor of the next page.
    #[serde(default)]
    pub after_cursor: Option<String>,
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
