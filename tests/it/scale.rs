//! Issue 11: a sync that costs Zendesk almost nothing. Request counts are deterministic, so
//! they are asserted against the formulas for N articles in L locales:
//! - first sync ≤ ⌈N/1000⌉ + (L−1)·⌈N/100⌉ + 6
//! - no-op and one-edit syncs ≤ ⌈N/1000⌉ + L + 6, removals still detected every sync
//! - a webhook sync ≤ 3
//!
//! Times are never asserted here; `cargo bench --bench sync` measures them.

use crate::support::*;
use helpdex_core::store::StoreRead;
use helpdex_emulator::{FIRST_ID, Synthetic};

fn spec(n: usize, shares: &[(&str, f64)]) -> Synthetic {
    Synthetic {
        articles: n,
        translations: shares.iter().map(|(l, s)| (l.to_string(), *s)).collect(),
        newest: chrono::Utc::now().timestamp() - 3_600,
        ..Synthetic::default()
    }
}

fn first_budget(n: u64, l: u64) -> u64 {
    n.div_ceil(1000) + (l - 1) * n.div_ceil(100) + 6
}

fn steady_budget(n: u64, l: u64) -> u64 {
    n.div_ceil(1000) + l + 6
}

/// Every locale fully translated: the worst case of the first-sync formula.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_hold_the_formulas() {
    let n = 1_200u64;
    let env = Env::synthetic(&spec(n as usize, &[("de", 1.0), ("fr", 1.0)])).await;
    let l = 3;

    let r = env.sync().await;
    ok(&r);
    assert!(
        r.requests <= first_budget(n, l),
        "first sync: {} requests > {} ({:?})",
        r.requests,
        first_budget(n, l),
        r
    );
    assert_eq!(
        env.count("/translations"),
        0,
        "no request per article on a first sync"
    );
    let stored = db(&env.engine, |s| s.article_ids("default")).len() as u64;
    assert_eq!(stored, n, "every article stored");

    // No-op: the export from 0 (removal detection), one listing page per other locale.
    env.emu.reset_requests();
    let r = env.sync().await;
    ok(&r);
    assert!(r.reconciled, "removals are checked every sync by default");
    assert_eq!(
        (r.added, r.updated, r.removed, r.index_writes),
        (0, 0, 0, 0),
        "{r:?}"
    );
    assert!(
        r.requests <= steady_budget(n, l),
        "no-op sync: {} > {} ({:?})",
        r.requests,
        steady_budget(n, l),
        env.emu.requests()
    );

    // One edit of a source translation, one of a German one.
    for (locale, words) in [("en-us", "Quokka ledger"), ("de", "Wombat Konto")] {
        env.emu.edit_body(
            FIRST_ID + 17,
            locale,
            &format!("<h2 id=\"h_01XYZ\">{words}</h2><p>{words} edited.</p>"),
        );
        env.emu.reset_requests();
        let r = env.sync().await;
        ok(&r);
        assert_eq!((r.updated, r.index_writes), (1, 1), "{locale}: {r:?}");
        assert!(
            r.requests <= steady_budget(n, l),
            "{locale} edit: {} > {}",
            r.requests,
            steady_budget(n, l)
        );
        let hits = env.agent(words).hits;
        assert_eq!(hits.first().map(|h| h.article_id), Some(FIRST_ID + 17));
        assert_eq!(hits[0].locale, locale);
    }

    // An archived article is gone after one sync, for one show request more.
    env.emu.archive(FIRST_ID + 5);
    env.emu.reset_requests();
    let r = env.sync().await;
    ok(&r);
    assert_eq!(r.removed, 1, "{r:?}");
    assert_eq!(env.count(&format!("/articles/{}", FIRST_ID + 5)), 1);
    assert!(r.requests <= steady_budget(n, l) + 1);
    assert!(db(&env.engine, |s| s.article("default", FIRST_ID + 5)).is_none());
}

/// The realistic case: translations for some articles only; the first sync lists each other
/// locale once, the rest comes from the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_translations_cost_their_own_listing_only() {
    let n = 2_100u64;
    let env = Env::synthetic(&spec(n as usize, &[("de", 0.5)])).await;
    let r = env.sync().await;
    ok(&r);
    let de = db(&env.engine, |s| s.counts(None))
        .iter()
        .filter(|c| c.locale == "de")
        .map(|c| c.translations)
        .sum::<i64>();
    assert!(de > 900, "{de} German translations published");
    let exports = env.count("/incremental/");
    let listings = env.count("/help_center/de/articles");
    assert!(
        exports as u64 <= n.div_ceil(1000) + 1,
        "{exports} export pages"
    );
    assert!(
        (listings as u64) <= (n / 2 + 200).div_ceil(100),
        "{listings} German listing pages"
    );
    assert!(r.requests <= first_budget(n, 2), "{r:?}");
    assert_eq!(
        env.count("/help_center/en-us/articles"),
        0,
        "the export carries en-us"
    );
}

/// A webhook sync reads nothing but the article: no segments, brands, sections or locales.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_sync_costs_at_most_three_requests() {
    let env = Env::synthetic(&spec(300, &[("de", 1.0)])).await;
    ok(&env.sync().await);
    env.emu.edit_body(
        FIRST_ID + 9,
        "de",
        "<p>Axolotl Rechnung sofort sichtbar.</p>",
    );
    env.emu.reset_requests();
    let r = env
        .sync_with(&helpdex_sync::SyncOptions {
            only_articles: Some(vec![FIRST_ID + 9]),
            ..Default::default()
        })
        .await;
    ok(&r);
    assert!(r.requests <= 3, "{:?}", env.emu.requests());
    assert_eq!((r.updated, r.index_writes), (1, 1), "{r:?}");
    // Searchable as soon as the sync returns: the engine's reader follows its own commits.
    let hits = env.agent("Axolotl").hits;
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].article_id, hits[0].locale.as_str()),
        (FIRST_ID + 9, "de")
    );
}

/// `reconcile_every = 3`: two of three syncs export from the cursor (one page when little
/// changed) and leave removals for the third, which reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_removal_cadence_is_configurable_and_reported() {
    let mut env = Env::synthetic(&spec(2_500, &[("de", 0.5)])).await;
    env.cfg.sync.reconcile_every = 3;
    let r = env.sync().await; // syncs = 0: a multiple of 3
    ok(&r);
    assert!(r.reconciled);
    env.emu.archive(FIRST_ID + 3);
    for _ in 0..2 {
        env.emu.reset_requests();
        let r = env.sync().await;
        ok(&r);
        assert!(!r.reconciled && r.removed == 0, "{r:?}");
        assert_eq!(env.count("/incremental/"), 1, "from the cursor: one page");
    }
    let r = env.sync().await;
    ok(&r);
    assert!(r.reconciled);
    assert_eq!(r.removed, 1);
}
