//! The HTTP API of `helpdex serve`, in-process over real HTTP: key scopes on every endpoint,
//! reindex under continuous search, webhooks, admin sync, metrics.

use crate::support::*;
use helpdex_service::api::{AppState, router};
use helpdex_service::config::Secret;
use helpdex_service::metrics::Metrics;
use helpdex_service::scheduler::Scheduler;
use helpdex_service::webhook;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

const CUSTOMER_KEY: &str = "customer-key-0123456789";
const AGENT_KEY: &str = "agent-key-0123456789abc";
const ADMIN_KEY: &str = "admin-key-0123456789abcd";
const WEBHOOK_SECRET: &str = "whsec-test-secret";

struct Api {
    env: Env,
    url: String,
    http: reqwest::Client,
    cancel: CancellationToken,
}

impl Api {
    async fn start() -> Api {
        let mut env = Env::start().await;
        ok(&env.sync().await);
        env.cfg.server.customer_keys = vec![Secret::new(CUSTOMER_KEY)];
        env.cfg.server.agent_keys = vec![Secret::new(AGENT_KEY)];
        env.cfg.server.admin_keys = vec![Secret::new(ADMIN_KEY)];
        env.cfg.server.webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
        let cfg = Arc::new(env.cfg.clone());
        let metrics = Arc::new(Metrics::new());
        let cancel = CancellationToken::new();
        let runner =
            helpdex_service::server::sync_runner(env.engine.clone(), cfg.clone(), metrics.clone());
        let scheduler = Scheduler::new(Vec::new(), runner, cancel.clone());
        tokio::spawn({
            let s = scheduler.clone();
            async move { s.run().await }
        });
        let state = AppState::new(
            env.engine.clone(),
            cfg,
            metrics,
            scheduler,
            helpdex_service::BuildInfo::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let c = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(c.cancelled_owned())
                .await
                .unwrap();
        });
        Api {
            env,
            url,
            http: reqwest::Client::new(),
            cancel,
        }
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, serde_json::Value) {
        let mut r = self.http.get(format!("{}{path}", self.url));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut r = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// (id, title, a distinctive sentence of its body text) of internal (staff-segment) fixture articles.
fn internal_articles() -> Vec<(u64, String)> {
    fixture_articles()
        .iter()
        .filter(|f| {
            !f["archived"].as_bool().unwrap_or(false)
                && !f["article"]["draft"].as_bool().unwrap_or(false)
        })
        .filter(|f| {
            f["article"]["user_segment_ids"]
                .as_array()
                .is_some_and(|v| {
                    v.iter().any(|x| {
                        x.as_u64() == Some(3600000070023) || x.as_u64() == Some(3600000070047)
                    })
                })
        })
        .map(|f| {
            (
                f["article"]["id"].as_u64().unwrap(),
                f["article"]["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn hit_ids(v: &serde_json::Value) -> Vec<u64> {
    v["hits"]
        .as_array()
        .map(|h| h.iter().filter_map(|x| x["article_id"].as_u64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn keys_bound_the_audience_on_every_endpoint() {
    let api = Api::start().await;
    let internal = internal_articles();
    assert!(internal.len() >= 4);

    // No key, or an unknown one: 401 with a JSON error code.
    let (s, body) = api.get("/v1/search?q=refund", None).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        api.get("/v1/search?q=refund", Some("not-a-key-at-all-xyz"))
            .await
            .0,
        401
    );

    for (id, title) in &internal {
        let q = urlencode(title);
        // A customer key asking for the agent audience is refused, not downgraded silently.
        let (s, body) = api
            .get(
                &format!("/v1/search?q={q}&audience=agent"),
                Some(CUSTOMER_KEY),
            )
            .await;
        assert_eq!(s, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
        // As a customer: the internal article never appears, and no internal text either.
        let (s, body) = api
            .get(&format!("/v1/search?q={q}"), Some(CUSTOMER_KEY))
            .await;
        assert_eq!(s, 200);
        assert!(
            !hit_ids(&body).contains(id),
            "customer search leaked {id}: {body}"
        );
        let (s, body) = api
            .post(
                "/v1/context",
                Some(CUSTOMER_KEY),
                serde_json::json!({"query": title}),
            )
            .await;
        assert_eq!(s, 200);
        assert!(!hit_ids(&body).contains(id));
        assert!(
            body["citations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["visibility"] == "public"),
            "{body}"
        );
        let (s, _) = api
            .post(
                "/v1/context",
                Some(CUSTOMER_KEY),
                serde_json::json!({"query": title, "audience": "agent"}),
            )
            .await;
        assert_eq!(s, 403);
        let (s, body) = api
            .get(&format!("/v1/articles/{id}"), Some(CUSTOMER_KEY))
            .await;
        assert_eq!(s, 404, "customer read internal article {id}: {body}");
        assert!(
            !body.to_string().contains(title.as_str()),
            "404 body names the article: {body}"
        );
        let (s, _) = api
            .get(
                &format!("/v1/articles/{id}?audience=agent"),
                Some(CUSTOMER_KEY),
            )
            .await;
        assert_eq!(s, 403);
        // An agent key sees it.
        let (s, body) = api
            .get(&format!("/v1/search?q={q}&audience=agent"), Some(AGENT_KEY))
            .await;
        assert_eq!(s, 200);
        assert!(hit_ids(&body).contains(id), "agent finds {id}: {body}");
        let (s, body) = api
            .get(
                &format!("/v1/articles/{id}?audience=agent"),
                Some(AGENT_KEY),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["translations"][0]["visibility"], "internal");
    }
    // Admin endpoints need the admin scope.
    for key in [CUSTOMER_KEY, AGENT_KEY] {
        assert_eq!(api.get("/v1/admin/status", Some(key)).await.0, 403);
        assert_eq!(
            api.post("/v1/admin/sync", Some(key), serde_json::json!({}))
                .await
                .0,
            403
        );
        assert_eq!(
            api.post("/v1/admin/reindex", Some(key), serde_json::json!({}))
                .await
                .0,
            403
        );
    }
    // Metrics and health carry no content.
    let (s, m) = api.get("/metrics", None).await;
    assert_eq!(s, 200);
    let m = m.as_str().unwrap().to_string();
    assert!(m.contains("helpdex_articles"), "{m}");
    for (_, title) in &internal {
        assert!(!m.contains(title.as_str()));
    }
    assert_eq!(api.get("/healthz", None).await.0, 200);
    assert_eq!(api.get("/readyz", None).await.0, 200);
    // Bad parameters: 400 with a code, never a trace.
    let (s, body) = api.get("/v1/search?q=x&limit=0", Some(CUSTOMER_KEY)).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (s, body) = api
        .get("/v1/search?q=x&segments=abc", Some(CUSTOMER_KEY))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (s, body) = api
        .get("/v1/search?q=x&audience=admin", Some(CUSTOMER_KEY))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (s, body) = api.get("/v1/nope", Some(CUSTOMER_KEY)).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn customer_segments_open_exactly_their_articles() {
    let api = Api::start().await;
    let enterprise: Vec<(u64, String)> = fixture_articles()
        .iter()
        .filter(|f| {
            !f["article"]["draft"].as_bool().unwrap_or(false)
                && f["article"]["user_segment_ids"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x.as_u64() == Some(3600000070035)))
        })
        .map(|f| {
            (
                f["article"]["id"].as_u64().unwrap(),
                f["article"]["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!enterprise.is_empty());
    for (id, title) in &enterprise {
        let q = urlencode(title);
        let (_, plain) = api
            .get(&format!("/v1/search?q={q}"), Some(CUSTOMER_KEY))
            .await;
        assert!(!hit_ids(&plain).contains(id));
        let (_, seg) = api
            .get(
                &format!("/v1/search?q={q}&segments=3600000070035"),
                Some(CUSTOMER_KEY),
            )
            .await;
        assert!(
            hit_ids(&seg).contains(id),
            "segment member sees {id}: {seg}"
        );
    }
}

#[tokio::test]
async fn searches_keep_answering_through_a_reindex() {
    let api = Arc::new(Api::start().await);
    let stop = Arc::new(AtomicBool::new(false));
    let (errors, empty, total) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut tasks = Vec::new();
    for q in [
        "refund",
        "payout",
        "webhook signature",
        "two-factor authentication",
    ] {
        let (api, stop, errors, empty, total) = (
            api.clone(),
            stop.clone(),
            errors.clone(),
            empty.clone(),
            total.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (s, body) = api
                    .get(
                        &format!("/v1/search?q={}", urlencode(q)),
                        Some(CUSTOMER_KEY),
                    )
                    .await;
                total.fetch_add(1, Ordering::Relaxed);
                if s != 200 {
                    errors.fetch_add(1, Ordering::Relaxed);
                } else if hit_ids(&body).is_empty() {
                    empty.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let before = api.env.engine.reader().index_status().unwrap().generation;
    for _ in 0..3 {
        let (s, body) = api
            .post("/v1/admin/reindex", Some(ADMIN_KEY), serde_json::json!({}))
            .await;
        assert_eq!(s, 200, "{body}");
        assert!(body["reindex"]["generation"].as_str().is_some());
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let after = api.env.engine.reader().index_status().unwrap().generation;
    assert_ne!(before, after, "a new generation is live");
    assert!(
        total.load(Ordering::Relaxed) >= 8,
        "searches ran during the reindex"
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    assert_eq!(empty.load(Ordering::Relaxed), 0);
    // Old generations are gone once no search holds them.
    let gens: Vec<_> = std::fs::read_dir(api.env.dir.path().join("tantivy"))
        .unwrap()
        .flatten()
        .collect();
    assert!(gens.len() <= 2, "old generations collected: {}", gens.len());
}

#[tokio::test]
async fn webhook_syncs_the_article_at_once_and_rejects_bad_signatures() {
    let api = Api::start().await;
    let id = 3600000112014u64;
    api.env
        .emu
        .edit_body(id, "en-us", "<p>Capybara settlement window explained.</p>");
    let body = serde_json::json!({
        "type": "zen:event-type:article.published",
        "account_id": 1, "id": "01J0000000000000000000000", "time": chrono::Utc::now().to_rfc3339(),
        "zendesk_event_version": "2022-11-06", "subject": format!("zen:article:{id}"),
        "detail": {"id": id.to_string(), "brand_id": "360001234567"},
        "event": {"author_id": "1", "category_id": "1", "locale": "en-us", "section_id": "1", "title": "x"}
    })
    .to_string();
    let ts = chrono::Utc::now().to_rfc3339();
    let sig = webhook::sign(WEBHOOK_SECRET.as_bytes(), &ts, body.as_bytes());
    let send = |sig: String, ts: String, body: String| {
        api.http
            .post(format!("{}/v1/webhooks/zendesk", api.url))
            .header("x-zendesk-webhook-signature", sig)
            .header("x-zendesk-webhook-signature-timestamp", ts)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Wrong secret, tampered body, stale timestamp: 401, nothing synced.
    let bad = webhook::sign(b"other-secret", &ts, body.as_bytes());
    assert_eq!(
        send(bad, ts.clone(), body.clone())
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        send(
            sig.clone(),
            ts.clone(),
            body.replace("published", "unpublished")
        )
        .await
        .unwrap()
        .status()
        .as_u16(),
        401
    );
    let old = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let old_sig = webhook::sign(WEBHOOK_SECRET.as_bytes(), &old, body.as_bytes());
    assert_eq!(
        send(old_sig, old, body.clone())
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert!(api.env.customer("capybara settlement").hits.is_empty());

    api.env.emu.reset_requests();
    let resp = send(sig, ts, body).await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let job: serde_json::Value = resp.json().await.unwrap();
    let job_id = job["job_id"].as_u64().unwrap();
    // Wait for the job.
    let mut done = false;
    for _ in 0..100 {
        let (_, j) = api
            .get(&format!("/v1/admin/jobs/{job_id}"), Some(ADMIN_KEY))
            .await;
        if j["state"] == "done" || j["state"] == "failed" {
            assert_eq!(j["state"], "done", "{j}");
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(done, "webhook job finished");
    let hits = api.env.customer("capybara settlement").hits;
    assert_eq!(hits.first().map(|h| h.article_id), Some(id));
    // One article, not the whole export.
    assert!(
        api.env
            .emu
            .requests()
            .iter()
            .all(|r| !r.path.contains("incremental")),
        "a webhook syncs that article only: {:?}",
        api.env.emu.requests()
    );
}

#[tokio::test]
async fn admin_sync_and_status() {
    let api = Api::start().await;
    api.env.emu.edit_body(
        3600000112026,
        "en-us",
        "<p>Axolotl onboarding checklist.</p>",
    );
    let (s, body) = api
        .post("/v1/admin/sync", Some(ADMIN_KEY), serde_json::json!({}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        api.env
            .customer("axolotl onboarding")
            .hits
            .first()
            .map(|h| h.article_id),
        Some(3600000112026)
    );
    let (s, body) = api
        .post(
            "/v1/admin/sync",
            Some(ADMIN_KEY),
            serde_json::json!({"wait": false}),
        )
        .await;
    assert_eq!(s, 202);
    assert!(body["job_id"].as_u64().is_some());
    let (s, st) = api.get("/v1/admin/status", Some(ADMIN_KEY)).await;
    assert_eq!(s, 200);
    let src = &st["sources"][0];
    assert_eq!(src["source"]["name"], "default");
    assert!(src["source"]["cursor"].as_i64().unwrap() > 0);
    assert!(!src["counts"].as_array().unwrap().is_empty());
    assert!(st["index"]["generation"].as_str().is_some());
    let (s, body) = api
        .post(
            "/v1/admin/sync",
            Some(ADMIN_KEY),
            serde_json::json!({"sources": ["nope"]}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
