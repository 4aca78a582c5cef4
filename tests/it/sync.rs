//! End-to-end: sync the fixture help center from the emulator over HTTP, then search.

use crate::support::*;
use helpdex_core::model::{Access, Audience};
use helpdex_core::store::StoreRead;
use std::collections::HashMap;

/// (id, title, segment_ids, draft of the source translation, archived) for each fixture article.
fn catalogue() -> Vec<(u64, String, Vec<u64>, bool, bool)> {
    fixture_articles()
        .iter()
        .map(|f| {
            let a = &f["article"];
            let segs: Vec<u64> = a["user_segment_ids"]
                .as_array()
                .map(|v| v.iter().filter_map(|x| x.as_u64()).collect())
                .unwrap_or_default();
            (
                a["id"].as_u64().unwrap(),
                a["title"].as_str().unwrap_or_default().to_string(),
                segs,
                a["draft"].as_bool().unwrap_or(false),
                f["archived"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[tokio::test]
async fn first_sync_indexes_everything_and_answers_with_citations() {
    let env = Env::start().await;
    let r = env.sync().await;
    ok(&r);
    let live = catalogue().iter().filter(|c| !c.4).count() as u64;
    assert_eq!(r.added, live, "every non-archived article is added: {r:?}");
    assert_eq!(r.updated + r.removed, 0);
    assert!(r.index_writes > live, "translations indexed: {r:?}");

    let resp = env.customer("refund part of a payment");
    assert!(!resp.hits.is_empty());
    for h in &resp.hits {
        assert_eq!(h.visibility.as_str(), "public");
        assert!(h.url.starts_with(&env.emu.base_url()), "{}", h.url);
        assert!(h.url.contains(&format!("/articles/{}", h.article_id)));
        assert!(!h.text.is_empty() && !h.text.contains('<'), "{}", h.text);
        assert!(!h.content_hash.is_empty());
        assert_eq!(
            h.brand.as_deref(),
            Some("Lumen Pay"),
            "hits name their brand"
        );
    }
    // Deep links only to anchors that exist in the page.
    let anchored = resp.hits.iter().filter(|h| h.url.contains('#')).count();
    assert!(anchored > 0, "some hits cite a section: {:#?}", resp.hits);
    for h in resp.hits.iter().filter(|h| h.url.contains('#')) {
        let anchor = h.url.split('#').nth(1).unwrap();
        let body = fixture_articles()
            .into_iter()
            .find(|f| f["article"]["id"].as_u64() == Some(h.article_id))
            .unwrap();
        let bodies: String = body["translations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["body"].as_str())
            .collect();
        assert!(
            bodies.contains(anchor),
            "anchor {anchor} exists in article {}",
            h.article_id
        );
    }
}

#[tokio::test]
async fn customers_never_see_restricted_internal_or_draft_text() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let cat = catalogue();
    let non_public: Vec<&(u64, String, Vec<u64>, bool, bool)> = cat
        .iter()
        .filter(|c| !c.2.is_empty() || c.3 || c.4)
        .collect();
    assert!(
        non_public.len() >= 10,
        "fixture has restricted, internal, draft and archived articles"
    );
    let mut agent_found = 0;
    for (id, title, segs, draft, archived) in non_public {
        let resp = env.customer(title);
        for h in &resp.hits {
            assert_ne!(
                h.article_id, *id,
                "customer search for {title:?} returned restricted article {id}"
            );
            assert_eq!(h.visibility.as_str(), "public", "{h:?}");
        }
        let signed_in = env.search(
            title,
            Access {
                audience: Audience::Customer,
                signed_in: true,
                segments: vec![],
            },
        );
        assert!(
            signed_in
                .hits
                .iter()
                .all(|h| h.visibility.as_str() == "public" || h.visibility.as_str() == "signed_in")
        );
        let agent = env.agent(title);
        let found = agent.hits.iter().any(|h| h.article_id == *id);
        if *draft || *archived {
            assert!(
                !found,
                "drafts and archived articles are never returned: {id}"
            );
        } else {
            assert!(
                found,
                "agents see {segs:?}-segmented article {id} {title:?}"
            );
            agent_found += 1;
        }
    }
    assert!(agent_found >= 5);
}

#[tokio::test]
async fn an_edit_updates_exactly_that_article() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let (id, ..) = catalogue()
        .into_iter()
        .find(|c| c.2.is_empty() && !c.3 && !c.4)
        .unwrap();
    env.emu.edit_body(id, "en-us", "<h2 id=\"h_01JZZZZZZZZZZZZZZZZZZZZZZZ\">Zebra crossing</h2><p>Quokka marmalade procedure.</p>");
    let r = env.sync().await;
    ok(&r);
    assert_eq!((r.added, r.updated, r.removed), (0, 1, 0), "{r:?}");
    assert_eq!(
        r.index_writes, 1,
        "only the edited translation is re-indexed: {r:?}"
    );
    let hits = env.customer("quokka marmalade").hits;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].article_id, id);
    assert!(hits[0].url.ends_with("#h_01JZZZZZZZZZZZZZZZZZZZZZZZ"));
    assert_eq!(hits[0].heading, "Zebra crossing");
}

fn index_files(env: &Env) -> Vec<(String, Vec<u8>)> {
    let live = env.engine.reader().generation().unwrap();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&live.dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with(".tantivy"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_second_sync_with_no_change_writes_nothing_to_the_index() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let before = index_files(&env);
    let payload = env.engine.reader().generation().unwrap().payload();
    let r = env.sync().await;
    ok(&r);
    assert_eq!(
        (r.added, r.updated, r.removed, r.index_writes),
        (0, 0, 0, 0),
        "{r:?}"
    );
    assert_eq!(env.engine.reader().generation().unwrap().payload(), payload);
    assert_eq!(
        index_files(&env),
        before,
        "index directory unchanged, meta.json included"
    );
}

#[tokio::test]
async fn wrong_credentials_give_a_clear_error_and_change_nothing() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let dump = db(&env.engine, |s| s.dump());
    let cursor = db(&env.engine, |s| s.source("default")).unwrap().cursor;
    env.emu
        .edit_body(catalogue()[0].0, "en-us", "<p>changed</p>");
    let bad = config_for(
        &env.emu.base_url(),
        ADMIN_EMAIL,
        "wrong-token",
        env.dir.path(),
    );
    let r = helpdex_sync::sync_all(env.engine.clone(), &bad.sync, &Default::default()).await;
    let e = r.sources[0].error.clone().expect("sync fails");
    assert!(
        e.contains("401") && e.contains("--zendesk-token"),
        "actionable: {e}"
    );
    assert!(!e.contains("wrong-token"), "no secret in errors: {e}");
    assert_eq!(db(&env.engine, |s| s.dump()), dump);
    assert_eq!(
        db(&env.engine, |s| s.source("default")).unwrap().cursor,
        cursor
    );
}

#[tokio::test]
async fn agent_token_without_segment_rights_fails_closed() {
    let env = Env::start_with(Default::default(), AGENT_EMAIL, AGENT_TOKEN).await;
    let r = env.sync().await;
    ok(&r);
    assert!(r.segments_unreadable);
    let cat = catalogue();
    let counts: HashMap<String, i64> =
        db(&env.engine, |s| s.counts(None))
            .into_iter()
            .fold(HashMap::new(), |mut m, c| {
                *m.entry(c.visibility.as_str().to_string()).or_default() += c.translations;
                m
            });
    assert!(
        !counts.contains_key("signed_in") && !counts.contains_key("restricted"),
        "{counts:?}"
    );
    for (id, title, segs, ..) in cat.iter().filter(|c| !c.2.is_empty()) {
        assert!(
            env.customer(title).hits.iter().all(|h| h.article_id != *id),
            "{segs:?}"
        );
    }
}

/// Agent-only notes inside public articles, marked with a class, never reach customers once the
/// class is in `drop_selectors`; without it they are ordinary public text (that is the default,
/// because helpdex cannot guess a team's convention).
#[tokio::test]
async fn drop_selectors_keep_agent_only_notes_out_of_the_index() {
    let env = Env::start().await;
    ok(&env.sync().await);
    assert!(
        !env.customer("RSK-214").hits.is_empty(),
        "without the selector the note is public text"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_for(&env.emu.base_url(), ADMIN_EMAIL, ADMIN_TOKEN, dir.path());
    cfg.normalize.drop_selectors = vec![".agent-only".into()];
    let engine = std::sync::Arc::new(
        helpdex_core::engine::Engine::open(dir.path(), cfg.normalize.clone()).unwrap(),
    );
    let r = helpdex_sync::sync_all(engine.clone(), &cfg.sync, &Default::default()).await;
    assert!(r.ok());
    for audience in [Access::anonymous(), Access::agent()] {
        let resp = search_in(&engine, "RSK-214 payout_hold_risk", audience, 20);
        assert!(
            resp.hits.iter().all(|h| !h.text.contains("RSK-214")),
            "{:#?}",
            resp.hits
        );
    }
    // The rest of the article is still there.
    let resp = search_in(&engine, "payout on hold", Access::anonymous(), 5);
    assert!(resp.hits.iter().any(|h| h.article_id == 3600000112182));
}
