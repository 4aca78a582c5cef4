//! `helpdex explain`: what helpdex stored for an article, per locale, and why.

use crate::model::Visibility;
use crate::reader::{ReadError, Reader};
use crate::store::{StoreError, StoreRead};
use serde::Serialize;
use std::fmt::Write;

/// One stored translation of an article, as an admin needs to see it.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// Source name.
    pub source: String,
    /// Article id.
    pub article_id: u64,
    /// Locale.
    pub locale: String,
    /// Title.
    pub title: String,
    /// Citation URL.
    pub url: String,
    /// Decided visibility.
    pub visibility: Visibility,
    /// The rule that decided it.
    pub visibility_rule: String,
    /// Zendesk user segment ids.
    pub segment_ids: Vec<u64>,
    /// Access tokens indexed.
    pub access: Vec<String>,
    /// Draft (never searchable).
    pub draft: bool,
    /// Outdated translation.
    pub outdated: bool,
    /// Normalized content hash.
    pub content_hash: String,
    /// Hash of the indexed form.
    pub index_hash: String,
    /// Zendesk updated_at of the translation.
    pub updated_at: Option<String>,
    /// When helpdex last wrote it.
    pub last_synced: String,
    /// Passages: heading path, anchor, hash, length.
    pub passages: Vec<ExplainedPassage>,
}

/// One stored passage.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedPassage {
    /// Heading path.
    pub heading: String,
    /// Anchor.
    pub anchor: Option<String>,
    /// Passage hash.
    pub hash: String,
    /// Characters of text.
    pub chars: usize,
}

impl Explained {
    /// Human-readable rendering.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}/{} [{}] {}",
            self.source, self.article_id, self.locale, self.title
        );
        let _ = writeln!(s, "  url:          {}", self.url);
        let _ = writeln!(
            s,
            "  visibility:   {} ({})",
            self.visibility, self.visibility_rule
        );
        let _ = writeln!(
            s,
            "  user segment ids: {:?}; access tokens: {:?}",
            self.segment_ids, self.access
        );
        let _ = writeln!(
            s,
            "  draft: {}  outdated: {}  updated_at: {}  last synced: {}",
            self.draft,
            self.outdated,
            self.updated_at.as_deref().unwrap_or("-"),
            self.last_synced
        );
        let _ = writeln!(s, "  content hash: {}", self.content_hash);
        let _ = writeln!(s, "  index hash:   {}", self.index_hash);
        for seg in &self.passages {
            let _ = writeln!(
                s,
                "    - {} {} ({} chars, {})",
                if seg.heading.is_empty() {
                    "(intro)"
                } else {
                    &seg.heading
                },
                seg.anchor
                    .as_deref()
                    .map(|a| format!("#{a}"))
                    .unwrap_or_default(),
                seg.chars,
                &seg.hash[..12.min(seg.hash.len())]
            );
        }
        s
    }
}

/// Everything stored for an article id, in every source and locale.
pub fn explain(reader: &Reader, article_id: u64) -> Result<Vec<Explained>, ReadError> {
    reader.store(|store| store.snapshot(|store| explain_in(store, article_id)))
}

fn explain_in(store: &impl StoreRead, article_id: u64) -> Result<Vec<Explained>, StoreError> {
    let mut out = Vec::new();
    for source in store.sources_of(article_id)? {
        let Some(row) = store.article_row(&source, article_id)? else {
            continue;
        };
        for t in store.translations_of(&source, article_id)? {
            let passages = store
                .passages_of(&source, article_id, &t.locale)?
                .into_iter()
                .map(|s| ExplainedPassage {
                    heading: s.heading_path.join(" › "),
                    anchor: s.anchor,
                    hash: s.hash,
                    chars: s.text.chars().count(),
                })
                .collect();
            out.push(Explained {
                source: source.clone(),
                article_id,
                locale: t.locale,
                title: t.title,
                url: t.html_url,
                visibility: row.visibility,
                visibility_rule: row.visibility_rule.clone(),
                segment_ids: row.segment_ids.clone(),
                access: row.access.clone(),
                draft: t.draft,
                outdated: t.outdated,
                content_hash: t.content_hash,
                index_hash: t.index_hash,
                updated_at: t.updated_at,
                last_synced: t.synced_at,
                passages,
            });
        }
    }
    Ok(out)
}
