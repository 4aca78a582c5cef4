//! Issue 4: the sync never loses, never leaks, never goes stale. Each test changes the
//! emulator's world between syncs, or breaks its answers, and checks store and index.

use crate::support::*;
use helpdex_core::model::{Access, Audience};
use helpdex_core::store::StoreRead;
use helpdex_emulator::{EmulatorConfig, RateLimit};
use std::time::Duration;

/// A published, public article with a German translation, and one without.
fn public_ids() -> (u64, u64) {
    let arts = fixture_articles();
    let public = |f: &&serde_json::Value| is_public_fixture(f);
    let has_de = |f: &serde_json::Value| {
        f["translations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["locale"] == "de" && !t["draft"].as_bool().unwrap_or(false))
    };
    let with_de = arts.iter().filter(public).find(|f| has_de(f)).unwrap()["article"]["id"]
        .as_u64()
        .unwrap();
    let without = arts.iter().filter(public).find(|f| !has_de(f)).unwrap()["article"]["id"]
        .as_u64()
        .unwrap();
    (with_de, without)
}

fn ids(resp: &helpdex_core::search::SearchResponse) -> Vec<u64> {
    resp.hits.iter().map(|h| h.article_id).collect()
}

#[tokio::test]
async fn german_edit_reindexes_german_only() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let (id, _) = public_ids();
    env.emu
        .edit_body(id, "de", "<p>Wombatfutter wird monatlich abgerechnet.</p>");
    let r = env.sync().await;
    ok(&r);
    assert_eq!(r.updated, 1, "{r:?}");
    assert_eq!(r.index_writes, 1, "only the de translation: {r:?}");
    let hits = env.customer("Wombatfutter").hits;
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].article_id, hits[0].locale.as_str()), (id, "de"));
}

#[tokio::test]
async fn unpublish_archive_and_republish() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let (a, b) = public_ids();
    let title_a = db(&env.engine, |s| s.translations_of("default", a))
        .into_iter()
        .find(|t| t.locale == "en-us")
        .unwrap()
        .title;
    let title_b = db(&env.engine, |s| s.translations_of("default", b))
        .into_iter()
        .find(|t| t.locale == "en-us")
        .unwrap()
        .title;
    assert!(ids(&env.agent(&title_a)).contains(&a));
    env.emu.set_draft(a, "en-us", true);
    env.emu.archive(b);
    let r = env.sync().await;
    ok(&r);
    assert_eq!(r.removed, 1, "{r:?}");
    assert!(
        env.agent(&title_a)
            .hits
            .iter()
            .all(|h| !(h.article_id == a && h.locale == "en-us")),
        "an unpublished translation leaves search at once"
    );
    assert!(
        env.agent(&title_b).hits.iter().all(|h| h.article_id != b),
        "archived article gone"
    );
    assert!(db(&env.engine, |s| s.article("default", b)).is_none());
    env.emu.set_draft(a, "en-us", false);
    ok(&env.sync().await);
    assert!(
        env.customer(&title_a)
            .hits
            .iter()
            .any(|h| h.article_id == a && h.locale == "en-us")
    );
}

#[tokio::test]
async fn visibility_downgrade_and_section_move() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let (a, _) = public_ids();
    let title = db(&env.engine, |s| s.translations_of("default", a))
        .into_iter()
        .find(|t| t.locale == "en-us")
        .unwrap()
        .title;
    let segs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("user_segments.json")).unwrap(),
    )
    .unwrap();
    let staff = segs["user_segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user_type"] == "staff" && s["built_in"] == true)
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    env.emu.set_segments(a, vec![staff]);
    let r = env.sync().await;
    ok(&r);
    assert_eq!(r.updated, 1);
    assert!(
        env.customer(&title).hits.iter().all(|h| h.article_id != a),
        "downgraded article left customer search"
    );
    let agent = env.agent(&title);
    let hit = agent
        .hits
        .iter()
        .find(|h| h.article_id == a)
        .expect("agents still see it");
    assert_eq!(hit.visibility.as_str(), "internal");
    // Every locale of the article was downgraded in the same commit.
    let ex = helpdex_core::explain::explain(env.engine.reader(), a).unwrap();
    assert!(
        ex.len() >= 2 && ex.iter().all(|e| e.visibility.as_str() == "internal"),
        "{ex:#?}"
    );
    assert!(ex[0].visibility_rule.contains("staff"));

    let sections: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("sections.json")).unwrap())
            .unwrap();
    let target = sections["sections"].as_array().unwrap().last().unwrap();
    env.emu.move_section(a, target["id"].as_u64().unwrap());
    ok(&env.sync().await);
    let hit = env
        .agent(&title)
        .hits
        .into_iter()
        .find(|h| h.article_id == a)
        .unwrap();
    assert_eq!(hit.section.as_deref(), target["name"].as_str());
}

#[tokio::test]
async fn customer_segments_and_sign_in_see_what_zendesk_would_show() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let segs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("user_segments.json")).unwrap(),
    )
    .unwrap();
    let custom = segs["user_segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user_type"] == "signed_in_users" && s["built_in"] == false)
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let arts = fixture_articles();
    let restricted = arts
        .iter()
        .find(|f| {
            f["article"]["user_segment_ids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x.as_u64() == Some(custom))
                && !f["article"]["draft"].as_bool().unwrap()
        })
        .unwrap();
    let (id, title) = (
        restricted["article"]["id"].as_u64().unwrap(),
        restricted["article"]["title"].as_str().unwrap(),
    );
    let sees = |access: Access| {
        env.search(title, access)
            .hits
            .iter()
            .any(|h| h.article_id == id)
    };
    assert!(!sees(Access::anonymous()));
    assert!(!sees(Access {
        audience: Audience::Customer,
        signed_in: true,
        segments: vec![]
    }));
    assert!(sees(Access {
        audience: Audience::Customer,
        signed_in: true,
        segments: vec![custom]
    }));
    assert!(sees(Access::agent()));
}

#[tokio::test]
async fn edits_without_updated_at_are_caught_by_the_full_sweep() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let (a, _) = public_ids();
    env.emu
        .bulk_edit_without_timestamp(a, "en-us", "<p>Platypus ledger reconciliation.</p>");
    let r = env.sync().await;
    ok(&r);
    assert_eq!(r.index_writes, 0, "invisible to the incremental export");
    let r = env
        .sync_with(&helpdex_sync::SyncOptions {
            full: true,
            ..Default::default()
        })
        .await;
    ok(&r);
    assert!(r.full_sweep);
    assert_eq!((r.updated, r.index_writes), (1, 1), "{r:?}");
    assert_eq!(ids(&env.customer("platypus ledger")), vec![a]);
}

#[tokio::test]
async fn many_changes_in_one_second_do_not_stall_the_export() {
    let env = Env::start_with(
        EmulatorConfig {
            incremental_page_size: 5,
            ..Default::default()
        },
        ADMIN_EMAIL,
        ADMIN_TOKEN,
    )
    .await;
    ok(&env.sync().await);
    let all: Vec<u64> = fixture_articles()
        .iter()
        .filter(|f| !f["archived"].as_bool().unwrap_or(false))
        .map(|f| f["article"]["id"].as_u64().unwrap())
        .collect();
    env.emu.touch_many_same_second(&all[..20]);
    let (a, _) = public_ids();
    let r = tokio::time::timeout(Duration::from_secs(60), env.sync())
        .await
        .expect("no endless loop");
    ok(&r);
    assert_eq!(
        r.updated, 0,
        "touching without content change re-indexes nothing: {r:?}"
    );
    env.emu
        .edit_body(a, "en-us", "<p>Narwhal invoices arrive late.</p>");
    let r = env.sync().await;
    ok(&r);
    assert_eq!(ids(&env.customer("narwhal")), vec![a]);
    assert!(ids(&env.customer("narwhal invoices")).contains(&a));
}

#[tokio::test]
async fn first_sync_costs_few_requests_and_a_noop_sync_almost_none() {
    let env = Env::start().await;
    let r = env.sync().await;
    ok(&r);
    let n = fixture_articles().len() as u64;
    assert!(
        r.requests < n / 2,
        "first sync must not cost a request per article: {} requests for {n} articles",
        r.requests
    );
    env.emu.reset_requests();
    let r = env.sync().await;
    ok(&r);
    let exports = env
        .emu
        .requests()
        .iter()
        .filter(|q| q.path.contains("incremental"))
        .count();
    assert_eq!(exports, 1, "one export request per no-op sync");
    assert!(
        r.requests <= 10,
        "no-op sync: {} requests ({:?})",
        r.requests,
        env.emu.requests()
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_reported() {
    let ec = EmulatorConfig {
        // A first sync of the fixtures costs 6 requests: a budget of 3 is met twice.
        rate_limit: Some(RateLimit {
            per_window: 3,
            window: Duration::from_secs(1),
        }),
        ..Default::default()
    };
    let mut env = Env::start_with(ec, ADMIN_EMAIL, ADMIN_TOKEN).await;
    // No reserve: spend the whole budget, meet 429s and wait out their Retry-After.
    env.cfg.sync.sources[0].client.retry.reserve_share = 0.0;
    env.cfg.sync.sources[0].client.retry.low_budget_pause = Duration::ZERO;
    let r = env.sync().await;
    ok(&r);
    assert!(r.retries > 0 && r.rate_limit_wait_secs > 0.0, "{r:?}");
    assert!(env.emu.requests().iter().any(|q| q.status == 429));
    assert!(!env.customer("payout").hits.is_empty());
}

#[tokio::test]
async fn pacing_keeps_a_reserve_of_the_budget_and_avoids_429s() {
    let ec = EmulatorConfig {
        rate_limit: Some(RateLimit {
            per_window: 4,
            window: Duration::from_secs(1),
        }),
        ..Default::default()
    };
    let mut env = Env::start_with(ec, ADMIN_EMAIL, ADMIN_TOKEN).await;
    // Keep half the budget for the customer's other integrations; pause past the window reset.
    env.cfg.sync.sources[0].client.retry.reserve_share = 0.5;
    env.cfg.sync.sources[0].client.retry.low_budget_pause = Duration::from_millis(1100);
    let r = env.sync().await;
    ok(&r);
    assert!(
        r.rate_limit_wait_secs > 0.0,
        "slowed down before the budget ran out: {r:?}"
    );
    assert!(
        env.emu.requests().iter().all(|q| q.status != 429),
        "never hit the limit"
    );
    assert!(!env.customer("payout").hits.is_empty());
}

#[tokio::test]
async fn server_errors_and_truncated_pages_are_retried() {
    let env = Env::start().await;
    env.emu.fail_next(2, 503);
    env.emu.truncate_next(1);
    let r = env.sync().await;
    ok(&r);
    assert!(r.retries >= 3, "{r:?}");
    assert!(!env.customer("payout").hits.is_empty());
}

#[tokio::test]
async fn persistent_failure_stops_the_run_without_moving_the_cursor() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let before = db(&env.engine, |s| s.source("default")).unwrap().cursor;
    let dump = db(&env.engine, |s| s.dump());
    let (a, _) = public_ids();
    env.emu.edit_body(a, "en-us", "<p>Ocelot refund.</p>");
    env.emu.truncate_next(50);
    let r = env.sync().await;
    assert!(
        r.error.as_deref().unwrap_or_default().contains("malformed"),
        "{r:?}"
    );
    assert_eq!(
        db(&env.engine, |s| s.source("default")).unwrap().cursor,
        before
    );
    assert_eq!(db(&env.engine, |s| s.dump()), dump);
    env.emu.truncate_next(0);
    ok(&env.sync().await);
    assert_eq!(ids(&env.customer("ocelot")), vec![a]);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let env = Env::start().await;
    let mut cfg = env.cfg.clone();
    cfg.sync.sources[0].client.timeout = Duration::from_millis(300);
    env.emu.delay_next(1, Duration::from_secs(2));
    let r = helpdex_sync::sync_all(env.engine.clone(), &cfg.sync, &Default::default()).await;
    assert!(r.ok(), "{:?}", r.sources[0].error);
    assert!(r.sources[0].retries >= 1);
}

#[tokio::test]
async fn normalizer_change_renormalizes_from_stored_html_without_refetch() {
    let env = Env::start().await;
    ok(&env.sync().await);
    // Simulate rows written by an older normalizer.
    let n = db(&env.engine, |s| s.dump()).len();
    let conn = rusqlite::Connection::open(env.dir.path().join("helpdex.sqlite3")).unwrap();
    conn.execute("UPDATE translations SET normalizer_version = 0", [])
        .unwrap();
    drop(conn);
    env.emu.reset_requests();
    let r = env.sync().await;
    ok(&r);
    assert_eq!(r.renormalized as usize, n, "{r:?}");
    assert!(
        env.emu
            .requests()
            .iter()
            .all(|q| !q.path.contains("/translations")),
        "no refetch of bodies"
    );
}

/// Several help centers in one helpdex: keyed by source, each with its own cursor; a brand whose
/// help center is restricted has nothing public; one failing source does not stop the others.
#[tokio::test]
async fn several_help_centers_one_failing_one_restricted() {
    use helpdex_service::config::{Config, RawConfig, SourceFlags};
    // A second brand: the same articles, but its help center is restricted to signed-in users.
    let copy = tempfile::tempdir().unwrap();
    let src = fixtures();
    std::fs::create_dir_all(copy.path().join("articles")).unwrap();
    for e in std::fs::read_dir(src.join("articles")).unwrap().flatten() {
        std::fs::copy(e.path(), copy.path().join("articles").join(e.file_name())).unwrap();
    }
    for f in ["categories.json", "sections.json", "user_segments.json"] {
        std::fs::copy(src.join(f), copy.path().join(f)).unwrap();
    }
    let mut hc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("help_center.json")).unwrap())
            .unwrap();
    hc["brand"]["help_center_state"] = "restricted".into();
    hc["brand"]["name"] = "Lumen Pay Partners".into();
    std::fs::write(copy.path().join("help_center.json"), hc.to_string()).unwrap();

    let a = emulator_on(&src).await;
    let b = emulator_on(copy.path()).await;
    let toml_text = format!(
        r#"
[[sources]]
name = "main"
url = "{}"
email = "{ADMIN_EMAIL}"
token = "{ADMIN_TOKEN}"

[[sources]]
name = "broken"
url = "{}"
email = "{ADMIN_EMAIL}"
token = "not-the-token"

[[sources]]
name = "partners"
url = "{}"
email = "{ADMIN_EMAIL}"
token = "{ADMIN_TOKEN}"
"#,
        a.base_url(),
        a.base_url(),
        b.base_url()
    );
    let raw: RawConfig = toml::from_str(&toml_text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::resolve(
        raw,
        Some(dir.path().to_path_buf()),
        SourceFlags::default(),
        &|_| None,
    )
    .unwrap();
    let engine = std::sync::Arc::new(
        helpdex_core::engine::Engine::open(dir.path(), cfg.normalize.clone()).unwrap(),
    );
    let report = helpdex_sync::sync_all(engine.clone(), &cfg.sync, &Default::default()).await;
    let by_name = |n: &str| {
        report
            .sources
            .iter()
            .find(|s| s.source == n)
            .unwrap()
            .clone()
    };
    assert!(
        by_name("main").error.is_none() && by_name("partners").error.is_none(),
        "{report:?}"
    );
    let broken = by_name("broken");
    assert!(
        broken.error.as_deref().unwrap_or_default().contains("401"),
        "{broken:?}"
    );
    let cursors: Vec<(String, i64)> = db(&engine, |s| s.sources())
        .iter()
        .map(|s| (s.name.clone(), s.cursor))
        .collect();
    assert!(cursors.iter().any(|(n, c)| n == "main" && *c > 0));
    assert!(
        cursors.iter().any(|(n, c)| n == "broken" && *c == 0),
        "{cursors:?}"
    );

    let search = |q: &str, access: Access| search_in(&engine, q, access, 50);
    let customer = search("payout delayed", Access::anonymous());
    assert!(!customer.hits.is_empty());
    assert!(
        customer.hits.iter().all(|h| h.source == "main"),
        "the restricted brand has nothing public"
    );
    let signed_in = search(
        "payout delayed",
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
            .any(|h| h.source == "partners" && h.visibility.as_str() == "signed_in")
    );
    let agent = search("payout delayed", Access::agent());
    let sources: std::collections::HashSet<_> =
        agent.hits.iter().map(|h| h.source.as_str()).collect();
    assert!(
        sources.contains("main") && sources.contains("partners"),
        "{sources:?}"
    );
    assert!(
        agent
            .hits
            .iter()
            .any(|h| h.brand.as_deref() == Some("Lumen Pay Partners"))
    );
}

/// Changing the normalizer's options (here: a new drop selector) is a normalizer change too: the
/// next sync re-normalizes stored bodies, without refetching them.
#[tokio::test]
async fn changed_normalizer_options_renormalize_without_refetch() {
    let env = Env::start().await;
    ok(&env.sync().await);
    assert!(!env.customer("RSK-214").hits.is_empty());
    let mut cfg = env.cfg.clone();
    cfg.normalize.drop_selectors = vec![".agent-only".into()];
    drop(env.engine);
    let engine = std::sync::Arc::new(
        helpdex_core::engine::Engine::open(env.dir.path(), cfg.normalize.clone()).unwrap(),
    );
    env.emu.reset_requests();
    let r = helpdex_sync::sync_all(engine.clone(), &cfg.sync, &Default::default()).await;
    assert!(r.ok(), "{r:?}");
    assert!(r.sources[0].renormalized > 40, "{:?}", r.sources[0]);
    assert!(
        env.emu
            .requests()
            .iter()
            .all(|q| !q.path.contains("/translations")),
        "no refetch"
    );
    let resp = search_in(&engine, "RSK-214", Access::anonymous(), 10);
    assert!(
        resp.hits.iter().all(|h| !h.text.contains("RSK-214")),
        "{:#?}",
        resp.hits
    );
    // A second sync with the same options re-normalizes nothing.
    let r = helpdex_sync::sync_all(engine, &cfg.sync, &Default::default()).await;
    assert_eq!(r.sources[0].renormalized, 0);
}

fn segments(engine: &helpdex_core::engine::Engine) -> usize {
    engine
        .reader()
        .generation()
        .unwrap()
        .reader
        .searcher()
        .segment_readers()
        .len()
}

/// Merging the segments changes nothing a reader sees: the same hits in the same order (and,
/// for customers, the same scores: their statistics count only live documents they may read;
/// an agent's are tantivy's own, which count replaced passages until a merge drops them), the
/// same generation after a restart (the commit payload survives, no rebuild or replay), and
/// the next sync still has nothing to do.
#[tokio::test]
async fn merging_segments_changes_no_answer() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let (id, _) = public_ids();
    for round in 0..3 {
        env.emu.edit_body(
            id,
            "en-us",
            &format!("<p>Capybara settlement window, revision {round}.</p>"),
        );
        ok(&env.sync().await);
    }
    let before = segments(&env.engine);
    assert!(before >= 2, "the edits made {before} segment(s)");
    let questions = ["refund", "capybara settlement", "two-factor", "Rechnung"];
    let answers = |engine: &helpdex_core::engine::Engine| -> Vec<Vec<String>> {
        questions
            .iter()
            .flat_map(|q| [Access::anonymous(), Access::agent()].map(|a| (q, a)))
            .map(|(q, a)| {
                let customer = a.audience == Audience::Customer;
                search_in(engine, q, a, 20)
                    .hits
                    .iter()
                    .map(|h| match customer {
                        true => format!("{} {:.4}", h.passage_id, h.score),
                        false => h.passage_id.clone(),
                    })
                    .collect()
            })
            .collect()
    };
    let want = answers(&env.engine);
    assert!(want.iter().any(|a| !a.is_empty()));
    let generation = env.engine.reader().generation().unwrap().name.clone();

    let sizes: Vec<(tantivy::index::SegmentId, u32)> = env
        .engine
        .reader()
        .generation()
        .unwrap()
        .index
        .searchable_segment_metas()
        .unwrap()
        .iter()
        .map(|m| (m.id(), m.num_docs()))
        .collect();
    let full = helpdex_core::engine::Compaction::Full;
    assert_eq!(
        helpdex_core::engine::segments_to_merge(&sizes, full).len(),
        before
    );
    assert_eq!(env.engine.compact(full).unwrap(), before);
    let after = 1;
    assert_eq!(segments(&env.engine), after);
    assert_eq!(answers(&env.engine), want);
    assert_eq!(
        env.engine.compact(full).unwrap(),
        0,
        "nothing left to merge"
    );

    let Env {
        emu,
        dir,
        engine,
        cfg,
    } = env;
    drop(engine);
    let engine = std::sync::Arc::new(
        helpdex_core::engine::Engine::open(dir.path(), cfg.normalize.clone()).unwrap(),
    );
    assert_eq!(engine.reader().generation().unwrap().name, generation);
    assert_eq!(segments(&engine), after);
    assert_eq!(answers(&engine), want);
    let env = Env {
        emu,
        dir,
        engine,
        cfg,
    };
    let r = env.sync().await;
    ok(&r);
    assert_eq!(r.index_writes, 0, "{r:?}");
}
