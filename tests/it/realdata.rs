//! Issue 11: real-data failures found by replaying recorded Zendesk responses, each
//! reproduced with the recorded shape in the emulator.

use crate::support::*;
use helpdex_core::store::StoreRead;
use helpdex_emulator::Fault;
use std::time::Duration;

const PUBLIC: u64 = 3600000112167; // Refund a full or partial payment (en-us + de)
const OTHER: u64 = 3600000112182; // Why is my payout delayed? (en-us + de)

/// An article written in German (source locale `de`, with an English translation): its English
/// translation does not come with the export, so a first sync asks for its translations.
fn german_source_article(id: u64) -> serde_json::Value {
    serde_json::json!({
        "article": {"id": id, "source_locale": "de", "locale": "de", "section_id": null,
                    "title": "Sepa Lastschrift Mandat", "body": "<p>Mandat Kängurubeutel.</p>",
                    "created_at": "2024-01-01T00:00:00Z", "user_segment_ids": [], "draft": false},
        "translations": [
            {"locale": "de", "title": "Sepa Lastschrift Mandat", "body": "<p>Mandat Kängurubeutel.</p>"},
            {"locale": "en-us", "title": "SEPA mandate", "body": "<p>Kangaroo pouch mandate.</p>"}
        ]
    })
}

/// See issue 11: a 404 on `/articles/{id}/translations` (the article was archived between the
/// export and that call) stopped the sync for good. Now the removal is confirmed by a 404 on
/// show and the sync goes on.
#[tokio::test]
async fn an_article_archived_mid_sync_is_removed_and_the_sync_goes_on() {
    let env = Env::start().await;
    let id = 3600000199001;
    env.emu.add_article(german_source_article(id));
    // Archived right after the export page listed it.
    env.emu.archive_after("/incremental/articles", id);
    let r = env.sync().await;
    ok(&r);
    let asked: Vec<(String, u16)> = env
        .emu
        .requests()
        .into_iter()
        .filter(|q| q.path.contains(&id.to_string()))
        .map(|q| (q.path, q.status))
        .collect();
    assert_eq!(
        asked,
        vec![
            (
                format!("/api/v2/help_center/articles/{id}/translations.json"),
                404
            ),
            (format!("/api/v2/help_center/articles/{id}.json"), 404),
        ],
        "translations 404, confirmed by show 404"
    );
    assert!(db(&env.engine, |s| s.article("default", id)).is_none());
    assert!(env.agent("Kängurubeutel").hits.is_empty());
    // Everything else is there, and the next run is clean.
    assert!(!env.customer("refund part of a payment").hits.is_empty());
    env.emu
        .edit_body(OTHER, "en-us", "<p>Marmot payout waits.</p>");
    let r = env.sync().await;
    ok(&r);
    assert_eq!(env.customer("marmot").hits[0].article_id, OTHER);
}

/// The same race on the webhook path: show answered, then the article was archived.
#[tokio::test]
async fn a_webhook_for_an_article_archived_meanwhile_removes_it() {
    let env = Env::start().await;
    ok(&env.sync().await);
    env.emu.archive(PUBLIC);
    let r = env
        .sync_with(&helpdex_sync::SyncOptions {
            only_articles: Some(vec![PUBLIC]),
            ..Default::default()
        })
        .await;
    ok(&r);
    assert_eq!(r.removed, 1);
    assert!(db(&env.engine, |s| s.article("default", PUBLIC)).is_none());
}

/// See issue 11: translations carry `html_url` without the slug, articles with it; a sync
/// that kept whichever it saw last re-indexed unchanged articles at every flip. One canonical
/// URL per translation: a full sweep, a webhook sync and another sweep write nothing.
#[tokio::test]
async fn url_form_flips_never_reindex() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let full = helpdex_sync::SyncOptions {
        full: true,
        ..Default::default()
    };
    let r = env.sync_with(&full).await;
    ok(&r);
    assert!(r.full_sweep);
    assert_eq!(r.index_writes, 0, "{r:?}");
    let r = env
        .sync_with(&helpdex_sync::SyncOptions {
            only_articles: Some(vec![PUBLIC, OTHER]),
            ..Default::default()
        })
        .await;
    ok(&r);
    assert_eq!(r.index_writes, 0, "translations endpoint URLs: {r:?}");
    let r = env.sync_with(&full).await;
    ok(&r);
    assert_eq!(r.index_writes, 0, "{r:?}");
    for locale in ["en-us", "de"] {
        let url = db(&env.engine, |s| s.translations_of("default", PUBLIC))
            .into_iter()
            .find(|t| t.locale == locale)
            .unwrap()
            .html_url;
        assert_eq!(
            url,
            format!("{}/hc/{locale}/articles/{PUBLIC}", env.emu.base_url())
        );
    }
}

/// See issue 11: a real 429 carries `retry-after: 1` and `x-rate-limit-remaining: 0`; helpdex
/// waited the second, then paused 10 more for the reserve. The 429's own headers must not
/// trigger the reserve pause.
#[tokio::test]
async fn a_429_costs_its_retry_after_and_nothing_more() {
    let mut env = Env::start().await;
    env.cfg.sync.sources[0].client.retry.low_budget_pause = Duration::from_secs(10);
    env.emu
        .fault_next(1, "/incremental/", Fault::RateLimited("1".into()));
    let r = env.sync().await;
    ok(&r);
    assert_eq!(
        env.emu
            .requests()
            .iter()
            .filter(|q| q.status == 429)
            .count(),
        1
    );
    assert_eq!(
        r.rate_limit_wait_secs, 1.0,
        "Retry-After only, no reserve pause on top: {r:?}"
    );
}

/// See issue 11: `Retry-After: 99999999999999999999` panicked the sync (Duration overflow).
/// It is clamped, found longer than the cap, and the run stops cleanly; the next one resumes.
#[tokio::test]
async fn an_absurd_retry_after_stops_the_run_without_panicking() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let cursor = db(&env.engine, |s| s.source("default")).unwrap().cursor;
    env.emu.fault_next(
        1,
        "/incremental/",
        Fault::RateLimited("99999999999999999999".into()),
    );
    let r = env.sync().await;
    let e = r.error.clone().expect("the run stops");
    assert!(e.contains("rate limit") && e.contains("cap"), "{e}");
    assert_eq!(
        db(&env.engine, |s| s.source("default")).unwrap().cursor,
        cursor
    );
    ok(&env.sync().await);
}

/// An answer far larger than any Help Center page is refused without being held in memory.
#[tokio::test]
async fn oversized_answers_are_refused() {
    let mut env = Env::start().await;
    env.cfg.sync.sources[0].client.max_body_bytes = 16 * 1024;
    let r = env.sync().await;
    let e = r.error.expect("the export page is larger than 16 KiB");
    assert!(e.contains("more than 16384 bytes"), "{e}");
}

/// A deleted translation moves no timestamp: the daily full sweep (every listing read to its
/// end) finds it, as the documented cadence says.
#[tokio::test]
async fn deleted_translations_are_found_by_the_full_sweep() {
    let env = Env::start().await;
    ok(&env.sync().await);
    env.emu
        .edit_body(PUBLIC, "de", "<p>Erdferkel Erstattung.</p>");
    ok(&env.sync().await);
    assert_eq!(env.customer("Erdferkel").hits.len(), 1);
    env.emu.delete_translation(PUBLIC, "de");
    ok(&env.sync().await);
    let r = env
        .sync_with(&helpdex_sync::SyncOptions {
            full: true,
            ..Default::default()
        })
        .await;
    ok(&r);
    assert_eq!((r.updated, r.index_writes), (1, 1), "{r:?}");
    assert!(env.customer("Erdferkel").hits.is_empty());
    let locales: Vec<String> = db(&env.engine, |s| s.translations_of("default", PUBLIC))
        .into_iter()
        .map(|t| t.locale)
        .collect();
    assert!(!locales.contains(&"de".to_string()) && locales.contains(&"en-us".to_string()));
}
