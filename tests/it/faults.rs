//! Issue 12's fault matrix: the emulator breaks the sync in every way Zendesk does (429
//! storms, 5xx, timeouts, truncated and malformed JSON, resets, revoked credentials,
//! malformed records, far-future times). In each case the world also changed since the last
//! sync; once the fault is over, the data directory must equal a clean sync of the same world
//! into an empty one: 0 lost, 0 duplicated, 0 leaked.

use crate::support::*;
use helpdex_core::store::StoreRead;
use helpdex_emulator::{Emulator, Fault};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const EDITED: u64 = 3600000112167; // public, en-us + de
const ARCHIVED: u64 = 3600000112182; // public
const DOWNGRADED: u64 = 3600000112038; // public, becomes staff-only
const STAFF_SEGMENT: u64 = 3600000070023;

/// Changes the world the way a working day does: an edit in each locale, an archive, a
/// visibility downgrade.
fn change_world(emu: &Emulator) {
    emu.edit_body(
        EDITED,
        "en-us",
        "<h2 id=\"h_01FAULT\">Capybara refunds</h2><p>Capybara refund steps.</p>",
    );
    emu.edit_body(EDITED, "de", "<p>Capybara Erstattung.</p>");
    emu.archive(ARCHIVED);
    emu.set_segments(DOWNGRADED, vec![STAFF_SEGMENT]);
}

/// Runs one case: a good first sync, a changed world, the fault during the next sync, then
/// syncs (at most three) once the fault is over; compares with a clean sync.
async fn case(inject: impl Fn(&Env), heal: impl Fn(&Env)) -> Env {
    let env = Env::start().await;
    ok(&env.sync().await);
    change_world(&env.emu);
    inject(&env);
    let _ = env.sync().await; // may fail: that is the point
    heal(&env);
    let mut last = None;
    for _ in 0..3 {
        let r = env.sync().await;
        if r.error.is_none() {
            last = Some(r);
            break;
        }
        last = Some(r);
    }
    let r = last.unwrap();
    ok(&r);
    compare_with_clean(&env, &HashSet::new()).await;
    env
}

/// Store and index equal a clean sync into an empty directory, except for `quarantined` ids
/// the clean run must not hold either; no passage twice; nothing non-public for customers.
async fn compare_with_clean(env: &Env, quarantined: &HashSet<u64>) {
    let (_dir, clean, r) = env.fresh_sync().await;
    ok(&r);
    let mine = db(&env.engine, |s| s.dump());
    let theirs = db(&clean, |s| s.dump());
    let lost: Vec<&String> = theirs.iter().filter(|l| !mine.contains(l)).collect();
    let extra: Vec<&String> = mine.iter().filter(|l| !theirs.contains(l)).collect();
    assert!(lost.is_empty(), "lost: {lost:#?}");
    assert!(extra.is_empty(), "stale or extra: {extra:#?}");
    let index = env.engine.reader().dump_index().unwrap();
    assert_eq!(index, clean.reader().dump_index().unwrap(), "index differs");
    let unique: HashSet<&String> = index.iter().collect();
    assert_eq!(unique.len(), index.len(), "a passage is indexed twice");
    for id in quarantined {
        assert!(
            !index.iter().any(|l| l.contains(&format!("/{id}/"))),
            "{id} indexed"
        );
    }
    // Nothing non-public reaches a customer, the downgraded and archived articles included.
    for q in [
        "Create and send your first invoice",
        "payout delayed",
        "Kestrel rail migration",
        "Refund override authority",
    ] {
        for h in env.customer(q).hits {
            assert_eq!(h.visibility.as_str(), "public", "{q}: {h:?}");
            assert!(
                h.article_id != DOWNGRADED && h.article_id != ARCHIVED,
                "{q}: {h:?}"
            );
        }
    }
    assert_eq!(env.customer("Capybara refund").hits[0].article_id, EDITED);
}

#[tokio::test]
async fn a_429_storm() {
    case(
        |e| e.emu.fault_next(40, "", Fault::RateLimited("0".into())),
        |e| e.emu.clear_faults(),
    )
    .await;
}

#[tokio::test]
async fn server_errors_short_and_long() {
    // Short: retried within the run.
    case(|e| e.emu.fail_next(3, 503), |_| {}).await;
    // An outage longer than the retries: the run fails, the next one recovers.
    case(|e| e.emu.fail_next(200, 500), |e| e.emu.clear_faults()).await;
}

#[tokio::test]
async fn timeouts() {
    let env = Env::start().await;
    ok(&env.sync().await);
    change_world(&env.emu);
    let mut cfg = env.cfg.clone();
    cfg.sync.sources[0].client.timeout = Duration::from_millis(300);
    env.emu.delay_next(3, Duration::from_secs(2));
    let r = helpdex_sync::sync_all(env.engine.clone(), &cfg.sync, &Default::default()).await;
    assert!(r.ok(), "{:?}", r.sources[0].error);
    assert!(r.sources[0].retries >= 3);
    compare_with_clean(&env, &HashSet::new()).await;
}

#[tokio::test]
async fn truncated_and_malformed_json() {
    case(|e| e.emu.truncate_next(3), |_| {}).await;
    case(|e| e.emu.fault_next(3, "/articles", Fault::Garbage), |_| {}).await;
    // Beyond the retries: the run fails without moving the cursor, the next one recovers.
    case(
        |e| e.emu.fault_next(20, "/incremental/", Fault::Garbage),
        |e| e.emu.clear_faults(),
    )
    .await;
}

#[tokio::test]
async fn connection_resets() {
    case(|e| e.emu.fault_next(4, "", Fault::Reset), |_| {}).await;
    case(
        |e| e.emu.fault_next(30, "/de/articles", Fault::Reset),
        |e| e.emu.clear_faults(),
    )
    .await;
}

#[tokio::test]
async fn revoked_credentials() {
    case(
        |e| e.emu.revoke_credentials(true),
        |e| e.emu.revoke_credentials(false),
    )
    .await;
}

#[tokio::test]
async fn far_future_times() {
    case(
        |e| {
            e.emu.set_export_end_time(Some(99_999_999_999));
            e.emu
                .patch_article(3600000112206, json!({"updated_at": "9999-12-31T23:59:59Z"}));
        },
        |_| {},
    )
    .await;
}

#[tokio::test]
async fn malformed_records() {
    let env = Env::start().await;
    ok(&env.sync().await);
    change_world(&env.emu);
    let bad = [3600000112206u64, 3600000112221];
    env.emu
        .patch_article(bad[0], json!({"id": "3600000112206"}));
    env.emu
        .patch_article(bad[1], json!({"user_segment_ids": [null]}));
    let r = env.sync().await;
    ok(&r);
    assert_eq!(
        r.removed, 3,
        "the archived one and the two now malformed: {r:?}"
    );
    compare_with_clean(&env, &bad.into_iter().collect()).await;
}
