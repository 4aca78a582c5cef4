//! Hybrid retrieval (issue 13) with tiny models generated here (random weights, real file
//! layout): hash-driven embedding, model change, visibility on the vector side, fallback to
//! BM25 for passages without a vector, and the one contract through the CLI.

use crate::support::*;
use helpdex_core::engine::{EmbedPass, Engine};
use helpdex_core::model::{Access, Visibility};
use helpdex_core::search::{MatchedBy, SearchResponse, Tuning};
use helpdex_core::store::StoreRead;
use helpdex_core::vectors::{TextEmbedder, embed_input};
use std::path::Path;
use std::sync::Arc;

fn tiny(dir: &Path, seed: u64) -> Arc<helpdex_embed::Embedder> {
    helpdex_embed::tiny_model::write(dir, seed).unwrap();
    helpdex_service::embeddings::load(dir, None, true).unwrap()
}

fn embed(engine: &Engine, model: &dyn TextEmbedder) -> helpdex_core::engine::EmbedReport {
    engine
        .embed_pending(model, EmbedPass::default(), &mut |_, _| true)
        .unwrap()
}

fn coverage(engine: &Engine, model: &dyn TextEmbedder) -> helpdex_core::vectors::Coverage {
    helpdex_core::vectors::coverage(engine.reader(), model.model_id()).unwrap()
}

fn vectors_stored(engine: &Engine) -> i64 {
    db(engine, |s| {
        Ok(s.conn()
            .query_row("SELECT count(*) FROM vectors", [], |r| r.get(0))?)
    })
}

fn ask(engine: &Engine, q: &str, access: Access, tuning: &Tuning) -> SearchResponse {
    search_tuned(engine, q, access, 10, tuning)
}

/// Ranks by vectors alone: what the vector side returns, unmixed.
fn dense() -> Tuning {
    Tuning {
        bm25_weight: 0.0,
        vector_weight: 1.0,
        ..Tuning::default()
    }
}

#[tokio::test]
async fn passages_are_embedded_once_and_again_only_when_their_text_changes() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let m = tempfile::tempdir().unwrap();
    let model = tiny(m.path(), 1);

    let first = embed(&env.engine, model.as_ref());
    let c = coverage(&env.engine, model.as_ref());
    assert!(first.embedded > 20, "{first:?}");
    assert_eq!(c.pending(), 0, "{c:?}");
    // Passages with the same title and text share one vector.
    assert_eq!(vectors_stored(&env.engine) as u64, first.embedded);

    // Nothing changed: nothing to embed.
    assert_eq!(embed(&env.engine, model.as_ref()).embedded, 0);

    // One translation edited: only its passages that changed are embedded.
    let (id, locale, n_before) = db(&env.engine, |s| {
        Ok(s.conn().query_row(
            "SELECT article_id, locale, count(*) FROM passages GROUP BY 1, 2 HAVING count(*) >= 2 LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)),
        )?)
    });
    assert!(n_before >= 2);
    let body: String = db(&env.engine, |s| {
        Ok(s.conn().query_row(
            "SELECT body FROM translations WHERE article_id = ?1 AND locale = ?2",
            rusqlite::params![id as i64, locale],
            |r| r.get(0),
        )?)
    });
    env.emu.edit_body(
        id,
        &locale,
        &format!("{body}<h2>Brand new section</h2><p>Wombats are handled by the new flow.</p>"),
    );
    ok(&env.sync().await);
    let again = embed(&env.engine, model.as_ref());
    assert_eq!(again.embedded, 1, "only the added passage: {again:?}");
    assert_eq!(coverage(&env.engine, model.as_ref()).pending(), 0);

    // A title edit changes what the model reads for every passage of that translation.
    env.emu.edit_title(id, &locale, "A renamed article");
    ok(&env.sync().await);
    let renamed = embed(&env.engine, model.as_ref());
    assert_eq!(renamed.embedded as i64, n_before + 1, "{renamed:?}");
    // The old title's vectors are no longer read by anything: pruned.
    assert_eq!(renamed.pruned as i64, n_before + 1);
}

#[tokio::test]
async fn a_new_model_re_embeds_everything_and_drops_the_old_vectors() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (one, two) = (tiny(a.path(), 1), tiny(b.path(), 2));
    assert_ne!(one.model_id(), two.model_id());
    let first = embed(&env.engine, one.as_ref());
    env.engine.reader().set_embedder(one.clone());
    let before = ask(&env.engine, "refund", Access::anonymous(), &dense());
    assert!(!before.hits.is_empty());

    let second = embed(&env.engine, two.as_ref());
    // Readers look for new vectors at most every 250 ms.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(second.embedded, first.embedded);
    assert_eq!(
        second.pruned as u64, first.embedded,
        "old model's vectors deleted"
    );
    assert_eq!(vectors_stored(&env.engine) as u64, first.embedded);
    let status = helpdex_core::vectors::status(env.engine.reader())
        .unwrap()
        .unwrap();
    assert_eq!(status.model, two.model_id());
    assert_eq!(status.pending, 0);

    // A reader still holding the old model finds no vector of it: BM25 alone, no error.
    let r = ask(
        &env.engine,
        "refund",
        Access::anonymous(),
        &Tuning::default(),
    );
    assert!(r.hits.iter().all(|h| h.matched_by == MatchedBy::Bm25));
    // Switched to the new model: hybrid again.
    env.engine.reader().set_embedder(two.clone());
    let r = ask(&env.engine, "refund", Access::anonymous(), &dense());
    assert!(r.hits.iter().all(|h| h.matched_by != MatchedBy::Bm25));
}

/// Every non-public passage, asked for with its own words by a customer through the vector
/// side alone: never returned. Agents get the internal ones.
#[tokio::test]
async fn the_vector_side_never_returns_what_the_caller_may_not_read() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let m = tempfile::tempdir().unwrap();
    let model = tiny(m.path(), 7);
    embed(&env.engine, model.as_ref());
    env.engine.reader().set_embedder(model.clone());
    let hidden: Vec<(u64, String, String, String)> = db(&env.engine, |s| {
        let mut st = s.conn().prepare(
            "SELECT p.article_id, a.visibility, t.title, p.text FROM passages p
             JOIN translations t USING (source, article_id, locale)
             JOIN articles a USING (source, article_id)
             WHERE a.visibility <> 'public'",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    });
    assert!(hidden.len() >= 5, "fixtures hold hidden passages");
    let mut agent_found = 0;
    for (id, visibility, title, text) in &hidden {
        let q: String = embed_input(title, text).chars().take(400).collect();
        for tuning in [dense(), Tuning::default()] {
            let r = ask(&env.engine, &q, Access::anonymous(), &tuning);
            for h in &r.hits {
                assert_eq!(h.visibility, Visibility::Public, "{q}: {h:#?}");
                assert_ne!(h.article_id, *id, "{q}");
            }
        }
        if visibility == "internal" {
            let r = ask(&env.engine, &q, Access::agent(), &dense());
            if r.hits.iter().any(|h| h.article_id == *id) {
                agent_found += 1;
            }
        }
    }
    assert!(
        agent_found > 0,
        "agents do find internal passages by vector"
    );
}

#[tokio::test]
async fn passages_without_a_vector_are_ranked_by_bm25() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let m = tempfile::tempdir().unwrap();
    let model = tiny(m.path(), 3);
    let plain = ask(
        &env.engine,
        "refund a payment",
        Access::anonymous(),
        &Tuning::default(),
    );
    // A model but no vector stored yet: exactly BM25.
    env.engine.reader().set_embedder(model.clone());
    let none_yet = ask(
        &env.engine,
        "refund a payment",
        Access::anonymous(),
        &Tuning::default(),
    );
    assert_eq!(plain.hits, none_yet.hits);

    // Half embedded (the pass stopped after its first batch): every passage still answers.
    let report = env
        .engine
        .embed_pending(
            model.as_ref(),
            EmbedPass {
                batch: 8,
                ..EmbedPass::default()
            },
            &mut |_, _| false,
        )
        .unwrap();
    assert_eq!(report.embedded, 8);
    assert!(!report.complete);
    assert!(coverage(&env.engine, model.as_ref()).pending() > 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let partial = ask(
        &env.engine,
        "refund a payment",
        Access::anonymous(),
        &Tuning::default(),
    );
    let ids = |r: &SearchResponse| {
        let mut v: Vec<u64> = r.hits.iter().map(|h| h.article_id).collect();
        v.sort();
        v.dedup();
        v
    };
    for id in ids(&plain) {
        assert!(
            ids(&partial).contains(&id) || partial.hits.len() == 10,
            "article {id} lost"
        );
    }
    assert!(
        partial
            .hits
            .iter()
            .any(|h| matches!(h.matched_by, MatchedBy::Bm25 | MatchedBy::Both))
    );
    // The rest of the pass resumes where it stopped.
    let rest = embed(&env.engine, model.as_ref());
    assert_eq!(
        rest.embedded + 8,
        coverage(&env.engine, model.as_ref()).embedded
    );
}

#[tokio::test]
async fn hits_say_how_they_were_found() {
    let env = Env::start().await;
    ok(&env.sync().await);
    let m = tempfile::tempdir().unwrap();
    let model = tiny(m.path(), 5);
    embed(&env.engine, model.as_ref());
    let r = ask(
        &env.engine,
        "refund",
        Access::anonymous(),
        &Tuning::default(),
    );
    assert!(r.hits.iter().all(|h| h.matched_by == MatchedBy::Bm25));
    env.engine.reader().set_embedder(model.clone());
    let r = ask(
        &env.engine,
        "refund",
        Access::anonymous(),
        &Tuning::default(),
    );
    assert!(!r.hits.is_empty());
    assert!(
        r.hits.iter().any(|h| h.matched_by != MatchedBy::Bm25),
        "{:#?}",
        r.hits
    );
    // A question with no word in the index still gets its nearest passages by vector.
    let r = ask(
        &env.engine,
        "zzqx wombatulation",
        Access::anonymous(),
        &Tuning::default(),
    );
    assert!(!r.hits.is_empty());
    assert!(r.hits.iter().all(|h| h.matched_by == MatchedBy::Vector));
    assert!(!r.found, "nothing lexically relevant: not an answer");
    let json = serde_json::to_value(&r.hits[0]).unwrap();
    assert_eq!(json["matched_by"], "vector");
}

fn helpdex(data: &Path, url: &str, model: &Path, args: &[&str]) -> std::process::Output {
    binary_on(data, url, ADMIN_TOKEN)
        .args(args)
        .env("HELPDEX_EMBEDDING_MODEL", model)
        .output()
        .unwrap()
}

/// A one-shot `sync` returns with every passage embedded; `search` and `status` through the
/// binary use the model; a model directory that is not one is an error that says so, never
/// an empty answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_syncs_embeds_and_searches_hybrid() {
    let emu = emulator_on(&fixtures()).await;
    let url = emu.base_url();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let model = dir.path().join("model");
        helpdex_embed::tiny_model::write(&model, 4).unwrap();
        let out = helpdex(&data, &url, &model, &["sync", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = helpdex(&data, &url, &model, &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let v = &status["vectors"];
        assert!(v["embedded"].as_u64().unwrap() > 20, "{status}");
        assert_eq!(v["pending"], 0, "{status}");

        let out = helpdex(
            &data,
            &url,
            &model,
            &["search", "refund a payment", "--json"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let hits = r["hits"].as_array().unwrap();
        assert!(!hits.is_empty());
        assert!(
            hits.iter().any(|h| h["matched_by"] != "bm25"),
            "the model was used: {r}"
        );

        let empty = dir.path().join("not-a-model");
        std::fs::create_dir_all(&empty).unwrap();
        let out = helpdex(&data, &url, &empty, &["search", "refund a payment"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not-a-model") && err.contains("missing"),
            "{err}"
        );
        assert_eq!(err.matches("missing").count(), 1, "said once: {err}");
        assert!(out.stdout.is_empty(), "no answer printed");
    })
    .await
    .unwrap();
}
