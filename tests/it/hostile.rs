//! Issue 12, sync side: hostile and incomplete records fail closed, are quarantined, never
//! leak; credentials never reach a report, the state database or `status`.

use crate::support::*;
use base64::Engine as _;
use helpdex_core::store::StoreRead;
use helpdex_emulator::{EmulatorConfig, Fault};
use serde_json::json;

const PUBLIC: u64 = 3600000112167; // Refund a full or partial payment
const PUBLIC2: u64 = 3600000112182; // Why is my payout delayed?
const PUBLIC3: u64 = 3600000112038; // Create and send your first invoice
const PUBLIC4: u64 = 3600000112206; // Turn on two-factor authentication
const PUBLIC5: u64 = 3600000112221; // Team roles and permissions
const PUBLIC6: u64 = 3600000112245; // Create and manage API keys

/// How many translations besides the source one a fixture article has (each is one more view
/// of it, in that locale's listing).
fn other_locales(id: u64) -> u64 {
    let f = fixture_articles()
        .into_iter()
        .find(|f| f["article"]["id"] == json!(id))
        .expect("fixture article");
    f["translations"]
        .as_array()
        .map_or(0, |t| t.len() as u64 - 1)
}

fn marker(env: &Env, id: u64, word: &str) {
    env.emu
        .edit_body(id, "en-us", &format!("<p>{word} appears here only.</p>"));
}

/// See issue 12 (1): a record without `user_segment_ids` and `user_segment_id` was indexed
/// public; one without `draft` made a draft customer-visible. Absence means "not public".
#[tokio::test]
async fn missing_visibility_fields_fail_closed_and_are_reported() {
    let env = Env::start().await;
    marker(&env, PUBLIC, "Zebrafinch");
    marker(&env, PUBLIC2, "Okapiwool");
    env.emu.patch_article(
        PUBLIC,
        json!({"user_segment_ids": "$remove", "user_segment_id": "$remove"}),
    );
    env.emu.patch_article(PUBLIC2, json!({"draft": "$remove"}));
    let r = env.sync().await;
    ok(&r);
    assert!(env.customer("Zebrafinch").hits.is_empty(), "not public");
    let agent = env.agent("Zebrafinch").hits;
    assert_eq!(agent.len(), 1);
    assert_eq!(agent[0].visibility.as_str(), "internal");
    assert!(
        env.customer("Okapiwool").hits.is_empty(),
        "treated as a draft"
    );
    assert!(
        env.agent("Okapiwool").hits.is_empty(),
        "drafts are never indexed"
    );
    let noted: Vec<&str> = r.fail_closed.iter().map(|q| q.record.as_str()).collect();
    assert!(
        noted.contains(&format!("{PUBLIC} (en-us)").as_str()),
        "{r:?}"
    );
    assert!(
        noted.contains(&format!("{PUBLIC2} (en-us)").as_str()),
        "{r:?}"
    );
    // The next sync (visibility recomputed from stored rows) keeps it internal.
    ok(&env.sync().await);
    assert!(env.customer("Zebrafinch").hits.is_empty());
}

/// See issue 12 (4): one export page answering `end_time: 99999999999` froze the cursor in
/// the future; later edits were missed. The cursor follows what was received, bounded by now.
#[tokio::test]
async fn a_far_future_end_time_or_updated_at_never_freezes_the_cursor() {
    let env = Env::start().await;
    env.emu.set_export_end_time(Some(99_999_999_999));
    env.emu
        .patch_article(PUBLIC3, json!({"updated_at": "5138-11-16T09:46:39Z"}));
    ok(&env.sync().await);
    let now = chrono::Utc::now().timestamp();
    let cursor = db(&env.engine, |s| s.source("default")).unwrap().cursor;
    assert!(cursor <= now, "cursor {cursor} is not in the future");
    ok(&env.sync().await);
    // A German edit is found through the listing bounded by the cursor.
    env.emu
        .edit_body(PUBLIC, "de", "<p>Gürteltier Erstattung.</p>");
    let r = env.sync().await;
    ok(&r);
    assert_eq!(env.customer("Gürteltier").hits.len(), 1, "{r:?}");
}

/// See issue 12 (5): an id of `-5`, `"1002"`, `null`, `1.5` or 2^64, or string segment ids,
/// failed the whole page. The bad records are quarantined (reported, shown by `status`, never
/// indexed) and the rest commits.
#[tokio::test]
async fn malformed_records_are_quarantined_and_the_rest_commits() {
    let env = Env::start().await;
    let bad = [
        (PUBLIC, json!({"id": -5})),
        (PUBLIC2, json!({"id": "1002"})),
        (PUBLIC3, json!({"id": null})),
        (PUBLIC4, json!({"id": 1.5})),
        (PUBLIC5, json!({"id": 18446744073709551616u128 as f64})),
        (PUBLIC6, json!({"user_segment_ids": ["3600000070011"]})),
    ];
    for (id, patch) in &bad {
        env.emu.patch_article(*id, patch.clone());
    }
    env.emu.add_raw_record(json!("not even an object"));
    let r = env.sync().await;
    ok(&r);
    // Seven bad export records, and each other locale's listing view of the six articles.
    let views: u64 = bad.iter().map(|(id, _)| other_locales(*id)).sum();
    assert_eq!(r.quarantined_count, 7 + views, "{:#?}", r.quarantined);
    let live = fixture_articles()
        .iter()
        .filter(|f| !f["archived"].as_bool().unwrap_or(false))
        .count() as u64;
    assert_eq!(r.added, live - 6, "every other article is stored: {r:?}");
    for (id, _) in &bad {
        assert!(
            db(&env.engine, |s| s.article("default", *id)).is_none(),
            "{id}"
        );
    }
    let records: Vec<&str> = r.quarantined.iter().map(|q| q.record.as_str()).collect();
    assert!(
        records.contains(&PUBLIC6.to_string().as_str()),
        "named by its id: {records:?}"
    );
    assert!(
        records.contains(&format!("{PUBLIC6} (de)").as_str()),
        "{records:?}"
    );
    let reasons: String = r.quarantined.iter().map(|q| q.reason.clone()).collect();
    assert!(
        reasons.contains("user_segment_ids") && reasons.contains("id is"),
        "{reasons}"
    );
    assert!(
        !reasons.contains("3600000070011"),
        "values are never quoted: {reasons}"
    );
    let state = db(&env.engine, |s| s.source("default")).unwrap();
    assert_eq!(
        state.quarantined.len() as u64,
        r.quarantined_count,
        "status shows them: {state:?}"
    );
    // Never indexed, for anyone.
    for title in [
        "Refund a full or partial payment",
        "Create and manage API keys",
    ] {
        let hits = env.agent(title).hits;
        assert!(
            hits.iter()
                .all(|h| h.article_id != PUBLIC && h.article_id != PUBLIC6)
        );
    }
}

/// An article that was stored, then comes back malformed, is removed: whatever its record says
/// now, the stored version may no longer be what Zendesk shows.
#[tokio::test]
async fn a_stored_article_that_turns_malformed_is_removed() {
    let env = Env::start().await;
    ok(&env.sync().await);
    assert!(db(&env.engine, |s| s.article("default", PUBLIC6)).is_some());
    env.emu.patch_article(
        PUBLIC6,
        json!({"user_segment_ids": ["x"], "updated_at": "2030-01-01T00:00:00Z"}),
    );
    let r = env.sync().await;
    ok(&r);
    // The export record and each other locale's listing view of it.
    assert_eq!(
        (r.removed, r.quarantined_count),
        (1, 1 + other_locales(PUBLIC6)),
        "{r:?}"
    );
    assert!(db(&env.engine, |s| s.article("default", PUBLIC6)).is_none());
}

/// See issue 12 (6): `javascript:` and `data:` html_urls came back as a customer hit's url,
/// and heading ids unencoded. Only http(s) URLs on the source's hosts; fragments encoded.
#[tokio::test]
async fn hostile_citation_urls_are_never_emitted() {
    let env = Env::start().await;
    env.emu.patch_article(
        PUBLIC,
        json!({"html_url": "javascript:alert(document.cookie)//"}),
    );
    env.emu.patch_article(
        PUBLIC2,
        json!({"html_url": "data:text/html,<script>alert(1)</script>"}),
    );
    env.emu.edit_body(
        PUBLIC3,
        "en-us",
        r#"<h2 id='x" onclick="alert(1)'>Pangolin invoices</h2><p>Pangolin invoice steps.</p>"#,
    );
    ok(&env.sync().await);
    let base = env.emu.base_url();
    for q in [
        "refund part of a payment",
        "payout delayed",
        "Pangolin invoice",
    ] {
        let hits = env.customer(q).hits;
        assert!(!hits.is_empty(), "{q}");
        for h in hits {
            assert!(h.url.starts_with(&format!("{base}/hc/")), "{}", h.url);
            assert!(
                !h.url.contains('"') && !h.url.contains(' ') && !h.url.contains('<'),
                "{}",
                h.url
            );
        }
    }
    let hit = env.customer("Pangolin invoice").hits.remove(0);
    assert!(
        hit.url.ends_with("#x%22%20onclick=%22alert(1)"),
        "{}",
        hit.url
    );
}

/// See issue 12 (7): 400/422 bodies echoing `Authorization` put the token and the base64
/// credentials into `sync --json`, logs, SQLite `last_error` and `status`; userinfo in the
/// Zendesk URL appeared in `status`.
#[tokio::test]
async fn credentials_never_reach_reports_the_database_or_status() {
    let env = Env::start().await;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{ADMIN_EMAIL}/token:{ADMIN_TOKEN}"));
    for status in [400, 422] {
        env.emu
            .fault_next(1, "/incremental/", Fault::EchoAuthorization(status));
        let r = env.sync().await;
        let e = r.error.clone().expect("the 4xx stops the run");
        assert!(
            e.contains(&status.to_string()) && e.contains("InvalidRequest"),
            "{e}"
        );
        let state = db(&env.engine, |s| s.source("default")).unwrap();
        let everything = format!(
            "{} {} {:?}",
            serde_json::to_string(&r).unwrap(),
            serde_json::to_string(&state).unwrap(),
            state.last_error
        );
        assert!(everything.contains("[redacted]"), "{everything}");
        for secret in [ADMIN_TOKEN, basic.as_str()] {
            assert!(
                !everything.contains(secret),
                "{secret} leaked: {everything}"
            );
        }
    }
    // Userinfo in the configured URL: the configuration refuses it without echoing it...
    let with_userinfo = env
        .emu
        .base_url()
        .replace("http://", "http://someone:pa55word@");
    let flags = helpdex_service::config::SourceFlags {
        url: Some(with_userinfo.clone()),
        email: Some(ADMIN_EMAIL.into()),
        token: Some(ADMIN_TOKEN.into()),
        ..Default::default()
    };
    let e = helpdex_service::config::Config::resolve(
        Default::default(),
        Some(env.dir.path().to_path_buf()),
        flags,
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("carries credentials") && !e.contains("pa55word"),
        "{e}"
    );
    // ... and should one reach the sync anyway, it is dropped before anything is stored.
    let mut cfg = config_for(
        &env.emu.base_url(),
        ADMIN_EMAIL,
        ADMIN_TOKEN,
        env.dir.path(),
    );
    cfg.sync.sources[0].client.base_url = with_userinfo;
    let r = helpdex_sync::sync_all(env.engine.clone(), &cfg.sync, &Default::default()).await;
    assert!(r.ok(), "{:?}", r.sources[0].error);
    let state = db(&env.engine, |s| s.source("default")).unwrap();
    let shown = serde_json::to_string(&state).unwrap();
    assert!(
        !shown.contains("pa55word") && !shown.contains("someone"),
        "{shown}"
    );
}

/// See issue 12 (12): after a disk-full failure the report said `added=199` while 98 rows were
/// stored. Counts are taken after each commit.
#[tokio::test]
async fn after_a_failed_commit_the_report_matches_the_store() {
    let env = Env::start_with(
        EmulatorConfig {
            incremental_page_size: 10,
            ..Default::default()
        },
        ADMIN_EMAIL,
        ADMIN_TOKEN,
    )
    .await;
    // The disk fills up after 25 articles.
    let conn = rusqlite::Connection::open(env.dir.path().join("helpdex.sqlite3")).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER full_disk BEFORE INSERT ON articles
         WHEN (SELECT COUNT(*) FROM articles) >= 25
         BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
    )
    .unwrap();
    drop(conn);
    let r = env.sync().await;
    let e = r.error.clone().expect("the commit fails");
    assert!(e.contains("full"), "{e}");
    let stored = db(&env.engine, |s| s.article_ids("default")).len() as u64;
    assert!(stored > 0 && stored <= 25, "{stored}");
    assert_eq!(r.added, stored, "{r:?}");
    let last = db(&env.engine, |s| s.source("default")).unwrap();
    assert_eq!(
        last.last_report.unwrap()["added"].as_u64(),
        Some(stored),
        "the stored report agrees too"
    );
}

/// See issue 12 (12): a sections listing whose cursor leads back to its first page failed the
/// sync with "UNIQUE constraint failed". The loop is detected and the sections deduplicated.
#[tokio::test]
async fn a_looping_sections_listing_does_not_fail_the_sync() {
    let env = Env::start().await;
    env.emu.set_sections_loop(true);
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), env.sync())
        .await
        .expect("no endless loop");
    ok(&r);
    let sections = db(&env.engine, |s| s.section_names("default"));
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("sections.json")).unwrap())
            .unwrap();
    assert_eq!(
        sections.len(),
        fixture["sections"].as_array().unwrap().len()
    );
    assert!(env.count("/sections") <= 3, "{:?}", env.emu.requests());
}

/// See issue 12 (12) and (7): at `HELPDEX_LOG=trace` the real binary logs neither article text
/// nor credentials, even when Zendesk echoes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_article_text_and_no_credentials() {
    let emu = emulator_on(&fixtures()).await;
    emu.edit_body(
        PUBLIC,
        "en-us",
        "<h2 id=\"h_01TRACE\">Wallaby secret</h2><p>Quixotic wallaby marmalade sentence.</p>",
    );
    emu.fault_next(1, "/de/articles", Fault::EchoAuthorization(422));
    let dir = tempfile::tempdir().unwrap();
    let (d, url) = (dir.path().to_path_buf(), emu.base_url());
    let run = move |d: std::path::PathBuf, url: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_helpdex"))
            .args(["--data-dir", d.to_str().unwrap(), "sync", "--json"])
            .env("ZENDESK_URL", url)
            .env("ZENDESK_EMAIL", ADMIN_EMAIL)
            .env("ZENDESK_API_TOKEN", ADMIN_TOKEN)
            .env("HELPDEX_LOG", "trace")
            .output()
            .unwrap()
    };
    let (d2, url2) = (d.clone(), url.clone());
    let failed = tokio::task::spawn_blocking(move || run(d2, url2))
        .await
        .unwrap();
    let ok_run = tokio::task::spawn_blocking(move || run(d, url))
        .await
        .unwrap();
    assert!(
        ok_run.status.success(),
        "{}",
        String::from_utf8_lossy(&ok_run.stderr)
    );
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{ADMIN_EMAIL}/token:{ADMIN_TOKEN}"));
    for o in [&failed, &ok_run] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(all.len() > 1_000, "trace logging is on: {all}");
        for secret in [
            "Quixotic",
            "wallaby",
            "marmalade",
            ADMIN_TOKEN,
            basic.as_str(),
        ] {
            assert!(!all.contains(secret), "{secret} in the output");
        }
    }
    assert!(String::from_utf8_lossy(&failed.stdout).contains("[redacted]"));
}
