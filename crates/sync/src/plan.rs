//! The pure heart of sync: given what Zendesk says now and what the store holds, decide which
//! rows to write and which indexed translations changed. No I/O.
//!
//! An article is planned in two parts, because its facts arrive in different requests: its own
//! row (segments, section, labels: the export record) and its translations (the export record
//! is the source-locale one; the others come from per-locale listings). A plan over translations
//! is *complete* when it was given every translation the article has (then stored locales not
//! given are deleted), *partial* otherwise (only the given locales are upserted).

use helpdex_core::model::doc_key;
use helpdex_core::normalize::{NormalizeOptions, normalize};
use helpdex_core::store::{ArticleRow, Batch, StoredArticle, TranslationRow, encode_fragment};
use helpdex_core::visibility::{Decision, UNSTATED_SEGMENTS};
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

/// The article-level facts a plan depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleMeta {
    /// Article id.
    pub id: u64,
    /// Section.
    pub section_id: Option<u64>,
    /// Source locale.
    pub source_locale: String,
    /// User segment ids; `None` when the record did not say (fail-closed: internal).
    pub segments: Option<Vec<u64>>,
    /// Labels.
    pub labels: Vec<String>,
    /// Zendesk updated_at (max over translations).
    pub updated_at: Option<String>,
    /// Locales flagged outdated.
    pub outdated_locales: Vec<String>,
}

impl ArticleMeta {
    /// The facts of a validated Zendesk record.
    pub fn of(a: &Article) -> ArticleMeta {
        ArticleMeta {
            id: a.id,
            section_id: a.section_id,
            source_locale: a.source_locale.clone(),
            segments: a.segments.clone(),
            labels: a.label_names.clone(),
            updated_at: Some(a.updated_at.clone()),
            outdated_locales: a.outdated_locales.clone(),
        }
    }

    /// Segment ids as stored: an unstated audience is stored as
    /// [`UNSTATED_SEGMENTS`], which every later decision reads as internal.
    pub fn stored_segment_ids(&self) -> Vec<u64> {
        self.segments
            .clone()
            .unwrap_or_else(|| vec![UNSTATED_SEGMENTS])
    }
}

/// One translation to plan, its citation URL already canonical (see [`crate::urls`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TranslationIn {
    /// Locale.
    pub locale: String,
    /// Title.
    pub title: String,
    /// Raw HTML body.
    pub body: Option<String>,
    /// Draft (a record that does not say is a draft: never indexed).
    pub draft: bool,
    /// Outdated against the source.
    pub outdated: bool,
    /// Canonical citation URL.
    pub html_url: String,
    /// Translation updated_at.
    pub updated_at: Option<String>,
}

impl TranslationIn {
    /// From a validated Zendesk translation; `html_url` is the canonical URL for it.
    pub fn of(t: &Translation, meta: &ArticleMeta, html_url: String) -> TranslationIn {
        TranslationIn {
            locale: t.locale.clone(),
            title: t.title.clone().unwrap_or_default(),
            body: t.body.clone(),
            draft: t.draft.unwrap_or(true),
            outdated: t.outdated || meta.outdated_locales.contains(&t.locale),
            html_url,
            updated_at: t.updated_at.clone(),
        }
    }
}

/// Hash of everything the index holds for a translation besides its passages' text.
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

/// Writes the article's own row.
pub fn plan_row(meta: &ArticleMeta, decision: &Decision, batch: &mut Batch) {
    batch.articles.push(ArticleRow {
        article_id: meta.id,
        section_id: meta.section_id,
        source_locale: meta.source_locale.clone(),
        segment_ids: meta.stored_segment_ids(),
        labels: meta.labels.clone(),
        visibility: decision.visibility,
        access: decision.access.clone(),
        visibility_rule: decision.rule.clone(),
        updated_at: meta.updated_at.clone(),
    });
}

/// Plans the given translations of one article against the store; with `complete`, stored
/// locales that were not given are deleted. Returns whether anything the index holds changed.
#[allow(clippy::too_many_arguments)] // each input is one fact the plan depends on; a struct would only rename them
pub fn plan_translations(
    source: &str,
    meta: &ArticleMeta,
    translations: &[TranslationIn],
    stored: Option<&StoredArticle>,
    decision: &Decision,
    section_names: &HashMap<u64, String>,
    opts: &NormalizeOptions,
    complete: bool,
    batch: &mut Batch,
) -> bool {
    let section_name = meta
        .section_id
        .and_then(|s| section_names.get(&s))
        .map(String::as_str);
    let mut changed = false;
    let mut seen: Vec<&str> = Vec::new();
    for t in translations {
        if seen.contains(&t.locale.as_str()) || t.locale.is_empty() {
            continue;
        }
        seen.push(&t.locale);
        let mut normalized = normalize(&t.title, t.body.as_deref(), opts);
        // Heading ids are Zendesk data: encoded here, once, so a citation's fragment can never
        // break out of a link or an attribute (the index build encodes again, idempotently).
        for p in &mut normalized.passages {
            if let Some(a) = p.anchor.as_mut() {
                *a = encode_fragment(a);
            }
        }
        let ih = index_hash(
            &normalized.content_hash,
            decision,
            meta.section_id,
            section_name,
            &meta.labels,
            &t.html_url,
            t.draft,
            t.outdated,
        );
        let before = stored.and_then(|s| s.translations.get(&t.locale));
        if before.is_some_and(|b| b.index_hash == ih && b.normalizer_version == opts.fingerprint())
        {
            continue;
        }
        changed = true;
        if normalized.flattened {
            tracing::warn!(
                source,
                article_id = meta.id,
                locale = %t.locale,
                "article body nests elements deeper than the normalizer keeps (256 levels): the deeper levels were flattened (their text kept, hidden content dropped)"
            );
        }
        batch.changed.push(doc_key(source, meta.id, &t.locale));
        batch.translations.push(TranslationRow {
            article_id: meta.id,
            locale: t.locale.clone(),
            title: t.title.clone(),
            html_url: t.html_url.clone(),
            draft: t.draft,
            outdated: t.outdated,
            updated_at: t.updated_at.clone(),
            body: t.body.clone(),
            normalized,
            index_hash: ih,
            normalizer: opts.fingerprint(),
        });
    }
    if complete && let Some(s) = stored {
        let mut gone: Vec<&String> = s
            .translations
            .keys()
            .filter(|l| !seen.contains(&l.as_str()))
            .collect();
        gone.sort();
        for l in gone {
            changed = true;
            batch.delete_translations.push((meta.id, l.clone()));
            batch.changed.push(doc_key(source, meta.id, l));
        }
    }
    changed
}

/// Plans an article (its row and the given translations) and says how it compares.
#[allow(clippy::too_many_arguments)]
pub fn plan_article(
    source: &str,
    meta: &ArticleMeta,
    translations: &[TranslationIn],
    stored: Option<&StoredArticle>,
    decision: &Decision,
    section_names: &HashMap<u64, String>,
    opts: &NormalizeOptions,
    complete: bool,
    batch: &mut Batch,
) -> Outcome {
    plan_row(meta, decision, batch);
    let changed = plan_translations(
        source,
        meta,
        translations,
        stored,
        decision,
        section_names,
        opts,
        complete,
        batch,
    );
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

/// Epoch seconds of a Zendesk timestamp.
pub fn epoch(ts: Option<&str>) -> Option<i64> {
    helpdex_zendesk::types::epoch(ts?)
}

/// Where the cursor goes after a complete run: the newest change actually received, but never
/// beyond the moment the run started (changes made while it ran are read again next time) nor
/// beyond now. `end_time` is not trusted at all: a page answering `end_time: 99999999999` would
/// otherwise freeze the cursor in the future and hide every later edit.
pub fn next_cursor(
    saved: i64,
    newest_received: Option<i64>,
    run_started: i64,
    now: i64,
) -> Option<i64> {
    let c = newest_received?.min(run_started).min(now);
    // A saved cursor in the future (an older helpdex trusted `end_time`) is replaced.
    (c > saved || saved > now).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdex_core::model::Visibility;

    fn meta(id: u64) -> ArticleMeta {
        ArticleMeta {
            id,
            section_id: Some(5),
            source_locale: "en-us".into(),
            segments: Some(vec![]),
            labels: vec![],
            updated_at: Some("2024-01-01T00:00:00Z".into()),
            outdated_locales: vec![],
        }
    }

    fn tr(locale: &str, body: &str) -> TranslationIn {
        TranslationIn {
            locale: locale.into(),
            title: format!("T {locale}"),
            body: Some(body.into()),
            draft: false,
            outdated: false,
            html_url: format!("https://x/hc/{locale}/articles/1"),
            updated_at: None,
        }
    }

    fn both() -> Vec<TranslationIn> {
        vec![tr("en-us", "<p>Hello</p>"), tr("de", "<p>Hallo</p>")]
    }

    fn public() -> Decision {
        helpdex_core::visibility::decide(&[], None, false)
    }

    fn stored_from(b: &Batch) -> StoredArticle {
        StoredArticle {
            updated_at: None,
            visibility: Visibility::Public,
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

    fn plan(
        ts: &[TranslationIn],
        stored: Option<&StoredArticle>,
        d: &Decision,
        complete: bool,
        b: &mut Batch,
    ) -> Outcome {
        plan_article(
            "s",
            &meta(1),
            ts,
            stored,
            d,
            &HashMap::new(),
            &Default::default(),
            complete,
            b,
        )
    }

    #[test]
    fn unchanged_article_plans_no_change() {
        let mut b = Batch::default();
        assert_eq!(plan(&both(), None, &public(), true, &mut b), Outcome::Added);
        assert_eq!(b.changed, vec!["s/1/en-us", "s/1/de"]);
        let stored = stored_from(&b);
        let mut b2 = Batch::default();
        assert_eq!(
            plan(&both(), Some(&stored), &public(), true, &mut b2),
            Outcome::Unchanged
        );
        assert!(b2.changed.is_empty() && b2.translations.is_empty());
    }

    #[test]
    fn one_locale_edit_changes_one_doc() {
        let mut b = Batch::default();
        plan(&both(), None, &public(), true, &mut b);
        let stored = stored_from(&b);
        let mut t = both();
        t[1].body = Some("<p>Hallo Welt</p>".into());
        let mut b2 = Batch::default();
        assert_eq!(
            plan(&t, Some(&stored), &public(), true, &mut b2),
            Outcome::Updated
        );
        assert_eq!(b2.changed, vec!["s/1/de"]);
    }

    #[test]
    fn only_complete_plans_delete_missing_locales() {
        let mut b = Batch::default();
        plan(&both(), None, &public(), true, &mut b);
        let stored = stored_from(&b);
        let internal = helpdex_core::visibility::decide(&[9], None, false);
        assert_eq!(internal.visibility, Visibility::Internal);
        let mut partial = Batch::default();
        plan(&both()[..1], Some(&stored), &internal, false, &mut partial);
        assert_eq!(partial.changed, vec!["s/1/en-us"]);
        assert!(partial.delete_translations.is_empty());
        let mut full = Batch::default();
        plan(&both()[..1], Some(&stored), &internal, true, &mut full);
        assert_eq!(full.changed, vec!["s/1/en-us", "s/1/de"]);
        assert_eq!(full.delete_translations, vec![(1, "de".to_string())]);
    }

    #[test]
    fn anchors_are_stored_encoded() {
        let t = vec![tr(
            "en-us",
            r#"<h2 id='x" onclick="alert(1)'>Refunds</h2><p>Money back.</p>"#,
        )];
        let mut b = Batch::default();
        plan(&t, None, &public(), true, &mut b);
        let anchors: Vec<_> = b.translations[0]
            .normalized
            .passages
            .iter()
            .filter_map(|p| p.anchor.clone())
            .collect();
        assert_eq!(anchors, vec!["x%22%20onclick=%22alert(1)"]);
    }

    /// Collects the warnings logged while `f` runs, one `message field=value …` line each.
    pub(crate) fn warnings(f: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        use tracing::field::{Field, Visit};
        struct Lines(Arc<Mutex<Vec<String>>>);
        struct Line(String);
        impl Visit for Line {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={:?}", field.name(), value));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.push_str(&format!(" {}={}", field.name(), value));
            }
        }
        impl tracing::Subscriber for Lines {
            fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
                *m.level() <= tracing::Level::WARN
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, e: &tracing::Event<'_>) {
                let mut line = Line(String::new());
                e.record(&mut line);
                self.0.lock().unwrap().push(line.0.trim().to_string());
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Lines(lines.clone()), f);
        lines.lock().unwrap().clone()
    }

    /// A body nested past the normalizer's cap is flagged and the sync says which one it was.
    /// See: issue 12.
    #[test]
    fn a_flattened_body_is_logged_with_its_article_and_locale() {
        let deep = format!("{}<p>deep text</p>", "<div>".repeat(300));
        let t = vec![tr("en-us", "<p>Hello</p>"), tr("de", &deep)];
        let mut b = Batch::default();
        let logged = warnings(|| {
            plan(&t, None, &public(), true, &mut b);
        });
        let flags: Vec<_> = b
            .translations
            .iter()
            .map(|t| (t.locale.as_str(), t.normalized.flattened))
            .collect();
        assert_eq!(flags, [("en-us", false), ("de", true)]);
        assert_eq!(logged.len(), 1, "{logged:?}");
        let line = &logged[0];
        assert!(line.contains("nests elements deeper"), "{line}");
        assert!(
            line.contains("source=s")
                && line.contains("article_id=1")
                && line.contains("locale=de"),
            "{line}"
        );
        // Planned again unchanged, it is not written, so not logged again.
        let stored = stored_from(&b);
        let mut b2 = Batch::default();
        let logged = warnings(|| {
            plan(&t, Some(&stored), &public(), true, &mut b2);
        });
        assert!(
            b2.translations.is_empty() && logged.is_empty(),
            "{logged:?}"
        );
    }

    #[test]
    fn an_unstated_audience_is_stored_as_such() {
        let mut m = meta(1);
        m.segments = None;
        assert_eq!(m.stored_segment_ids(), vec![UNSTATED_SEGMENTS]);
        let d = helpdex_core::visibility::decide(&m.stored_segment_ids(), None, false);
        assert_eq!(d.visibility, Visibility::Internal);
    }

    #[test]
    fn cursor_rules() {
        // Far-future end_time or updated_at never moves the cursor past the run's start.
        assert_eq!(next_cursor(100, Some(99_999_999_999), 500, 600), Some(500));
        assert_eq!(next_cursor(100, Some(150), 500, 600), Some(150));
        assert_eq!(
            next_cursor(100, Some(90), 500, 600),
            None,
            "never backwards"
        );
        assert_eq!(next_cursor(100, None, 500, 600), None);
        // A cursor saved in the future by an older helpdex comes back to now.
        assert_eq!(next_cursor(99_999_999_999, Some(550), 580, 600), Some(550));
        assert_eq!(epoch(Some("1970-01-01T00:01:00Z")), Some(60));
    }
}
