//! The pure heart of sync: given what Zendesk says now and what the store holds, decide which
//! rows to write and which indexed translations changed. No I/O.

use helpdex_core::model::doc_key;
use helpdex_core::normalize::{NormalizeOptions, normalize};
use helpdex_core::store::{ArticleRow, Batch, StoredArticle, TranslationRow};
use helpdex_core::visibility::Decision;
use helpdex_zendesk::types::{Article, Translation};
use std::collections::HashMap;

/// How one article compared with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not stored before.
    Added,
    /// Content, visibility or metadata of at least one translation changed.
    Updated,
    /// Nothing the index holds changed.
    Unchanged,
}

/// Hash of everything the index holds for a translation besides its segments' text.
#[allow(clippy::too_many_arguments)]
pub fn index_hash(
    content_hash: &str,
    decision: &Decision,
    section_id: Option<u64>,
    section_name: Option<&str>,
    labels: &[String],
    html_url: &str,
    draft: bool,
    outdated: bool,
) -> String {
    let mut h = blake3::Hasher::new();
    for part in [
        content_hash,
        decision.visibility.as_str(),
        &decision.access.join(","),
        &section_id.map(|s| s.to_string()).unwrap_or_default(),
        section_name.unwrap_or(""),
        &labels.join(","),
        html_url,
        if draft { "draft" } else { "published" },
        if outdated { "outdated" } else { "current" },
    ] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex().to_string()
}

/// Plans one article: its current translations (all locales it has now) against the store.
/// Appends to `batch` and returns the outcome.
#[allow(clippy::too_many_arguments)] // each input is one fact the plan depends on; a struct would only rename them
pub fn plan_article(
    source: &str,
    article: &Article,
    translations: &[Translation],
    stored: Option<&StoredArticle>,
    decision: &Decision,
    section_names: &HashMap<u64, String>,
    opts: &NormalizeOptions,
    batch: &mut Batch,
) -> Outcome {
    let section_name = article
        .section_id
        .and_then(|s| section_names.get(&s))
        .map(String::as_str);
    batch.articles.push(ArticleRow {
        article_id: article.id,
        section_id: article.section_id,
        source_locale: article.source_locale.clone(),
        segment_ids: article.segment_ids(),
        labels: article.label_names.clone(),
        visibility: decision.visibility,
        access: decision.access.clone(),
        visibility_rule: decision.rule.clone(),
        updated_at: article.updated_at.clone(),
    });
    let mut changed = false;
    let mut seen = Vec::new();
    for t in translations {
        if seen.contains(&t.locale) || t.locale.is_empty() {
            continue;
        }
        seen.push(t.locale.clone());
        let title = t.title.clone().unwrap_or_default();
        let normalized = normalize(&title, t.body.as_deref(), opts);
        let html_url = t
            .html_url
            .clone()
            .filter(|u| u.contains("/articles/"))
            .unwrap_or_else(|| localized_url(&article.html_url, &article.locale, &t.locale));
        let outdated = t.outdated || article.outdated_locales.contains(&t.locale);
        let ih = index_hash(
            &normalized.content_hash,
            decision,
            article.section_id,
            section_name,
            &article.label_names,
            &html_url,
            t.draft,
            outdated,
        );
        let before = stored.and_then(|s| s.translations.get(&t.locale));
        if before.is_some_and(|b| b.index_hash == ih && b.normalizer_version == opts.fingerprint())
        {
            continue;
        }
        changed = true;
        batch.changed.push(doc_key(source, article.id, &t.locale));
        batch.translations.push(TranslationRow {
            article_id: article.id,
            locale: t.locale.clone(),
            title,
            html_url,
            draft: t.draft,
            outdated,
            updated_at: t.updated_at.clone(),
            body: t.body.clone(),
            normalized,
            index_hash: ih,
            normalizer: opts.fingerprint(),
        });
    }
    if let Some(s) = stored {
        let mut gone: Vec<&String> = s
            .translations
            .keys()
            .filter(|l| !seen.contains(l))
            .collect();
        gone.sort();
        for l in gone {
            changed = true;
            batch.delete_translations.push((article.id, l.clone()));
            batch.changed.push(doc_key(source, article.id, l));
        }
    }
    match (stored, changed) {
        (None, _) => Outcome::Added,
        (Some(_), true) => Outcome::Updated,
        (Some(_), false) => Outcome::Unchanged,
    }
}

/// Plans the removal of an article and all its stored translations.
pub fn plan_removal(source: &str, id: u64, stored: &StoredArticle, batch: &mut Batch) {
    batch.delete_articles.push(id);
    let mut locales: Vec<&String> = stored.translations.keys().collect();
    locales.sort();
    for l in locales {
        batch.changed.push(doc_key(source, id, l));
    }
}

/// The html_url of another locale: Zendesk's URLs carry the locale as `/hc/{locale}/`.
pub fn localized_url(url: &str, from: &str, to: &str) -> String {
    if from.is_empty() || from == to {
        return url.to_string();
    }
    url.replacen(&format!("/hc/{from}/"), &format!("/hc/{to}/"), 1)
}

/// Epoch seconds of a Zendesk timestamp.
pub fn epoch(ts: Option<&str>) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts?)
        .ok()
        .map(|d| d.timestamp())
}

/// Where the cursor goes after a page: forward to `end_time` when the page had data, never
/// backwards (an empty page may answer `end_time: 1`).
pub fn next_cursor(start: i64, end_time: Option<i64>, page_len: usize) -> i64 {
    match end_time {
        Some(e) if page_len > 0 && e > start => e,
        _ => start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdex_core::model::Visibility;

    fn art(id: u64, body: &str) -> (Article, Vec<Translation>) {
        let a: Article = serde_json::from_value(serde_json::json!({
            "id": id, "html_url": format!("https://x/hc/en-us/articles/{id}-T"), "section_id": 5,
            "title": "T", "body": body, "locale": "en-us", "source_locale": "en-us",
            "updated_at": "2024-01-01T00:00:00Z"
        }))
        .unwrap();
        let t = vec![
            Translation {
                locale: "en-us".into(),
                title: Some("T".into()),
                body: Some(body.into()),
                draft: false,
                outdated: false,
                html_url: None,
                updated_at: None,
            },
            Translation {
                locale: "de".into(),
                title: Some("T de".into()),
                body: Some("<p>Hallo</p>".into()),
                draft: false,
                outdated: false,
                html_url: None,
                updated_at: None,
            },
        ];
        (a, t)
    }

    fn public() -> Decision {
        helpdex_core::visibility::decide(&[], None, false)
    }

    fn stored_from(b: &Batch) -> StoredArticle {
        StoredArticle {
            updated_at: None,
            visibility: helpdex_core::model::Visibility::Public,
            translations: b
                .translations
                .iter()
                .map(|t| {
                    (
                        t.locale.clone(),
                        helpdex_core::store::StoredTranslation {
                            content_hash: t.normalized.content_hash.clone(),
                            index_hash: t.index_hash.clone(),
                            draft: t.draft,
                            normalizer_version: t.normalizer,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn unchanged_article_plans_no_change() {
        let (a, t) = art(1, "<p>Hello</p>");
        let mut b = Batch::default();
        let o = plan_article(
            "s",
            &a,
            &t,
            None,
            &public(),
            &HashMap::new(),
            &Default::default(),
            &mut b,
        );
        assert_eq!(o, Outcome::Added);
        assert_eq!(b.changed, vec!["s/1/en-us", "s/1/de"]);
        assert_eq!(b.translations[1].html_url, "https://x/hc/de/articles/1-T");
        let stored = stored_from(&b);
        let mut b2 = Batch::default();
        let o = plan_article(
            "s",
            &a,
            &t,
            Some(&stored),
            &public(),
            &HashMap::new(),
            &Default::default(),
            &mut b2,
        );
        assert_eq!(o, Outcome::Unchanged);
        assert!(b2.changed.is_empty() && b2.translations.is_empty());
    }

    #[test]
    fn one_locale_edit_changes_one_doc() {
        let (a, mut t) = art(1, "<p>Hello</p>");
        let mut b = Batch::default();
        plan_article(
            "s",
            &a,
            &t,
            None,
            &public(),
            &HashMap::new(),
            &Default::default(),
            &mut b,
        );
        let stored = stored_from(&b);
        t[1].body = Some("<p>Hallo Welt</p>".into());
        let mut b2 = Batch::default();
        let o = plan_article(
            "s",
            &a,
            &t,
            Some(&stored),
            &public(),
            &HashMap::new(),
            &Default::default(),
            &mut b2,
        );
        assert_eq!(o, Outcome::Updated);
        assert_eq!(b2.changed, vec!["s/1/de"]);
    }

    #[test]
    fn visibility_change_touches_every_locale_and_removed_locale_is_deleted() {
        let (a, t) = art(1, "<p>Hello</p>");
        let mut b = Batch::default();
        plan_article(
            "s",
            &a,
            &t,
            None,
            &public(),
            &HashMap::new(),
            &Default::default(),
            &mut b,
        );
        let stored = stored_from(&b);
        let internal = helpdex_core::visibility::decide(&[9], None, false);
        assert_eq!(internal.visibility, Visibility::Internal);
        let mut b2 = Batch::default();
        plan_article(
            "s",
            &a,
            &t[..1],
            Some(&stored),
            &internal,
            &HashMap::new(),
            &Default::default(),
            &mut b2,
        );
        assert_eq!(b2.changed, vec!["s/1/en-us", "s/1/de"]);
        assert_eq!(b2.delete_translations, vec![(1, "de".to_string())]);
    }

    #[test]
    fn cursor_rules() {
        assert_eq!(next_cursor(100, Some(1), 0), 100);
        assert_eq!(next_cursor(100, Some(150), 3), 150);
        assert_eq!(next_cursor(100, Some(100), 3), 100);
        assert_eq!(next_cursor(100, None, 3), 100);
        assert_eq!(epoch(Some("1970-01-01T00:01:00Z")), Some(60));
    }
}
