//! The emulator over real HTTP: what a Zendesk client sees, quirks included.

use helpdex_emulator::{Emulator, EmulatorConfig, RateLimit, World, slug};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("sync@lumenpay.test", "demo-admin-token");
const AGENT: (&str, &str) = ("agent@lumenpay.test", "demo-agent-token");
const OAUTH: &str = "demo-oauth-token";
const ARCHIVED: u64 = 3600000117015;
const ENGLISH_ONLY: u64 = 3600000112065;
const WITH_DE: u64 = 3600000112014;
const DE_DRAFT: u64 = 3600000112155;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/helpcenter")
}

fn fixture(id: u64) -> Value {
    let text = std::fs::read_to_string(fixtures().join(format!("articles/{id}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Ids of every fixture article file, and which of them are archived.
fn fixture_ids() -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut all = BTreeSet::new();
    let mut archived = BTreeSet::new();
    for e in std::fs::read_dir(fixtures().join("articles"))
        .unwrap()
        .flatten()
    {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        let id = v["article"]["id"].as_u64().unwrap();
        all.insert(id);
        if v["archived"].as_bool() == Some(true) {
            archived.insert(id);
        }
    }
    (all, archived)
}

fn live_ids() -> BTreeSet<u64> {
    let (all, archived) = fixture_ids();
    all.difference(&archived).copied().collect()
}

fn epoch(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap()
        .timestamp()
}

enum Who {
    Anonymous,
    Basic(&'static str, &'static str),
    Bearer(&'static str),
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct T {
    emu: Emulator,
    http: reqwest::Client,
}

impl T {
    async fn start() -> T {
        T::with(EmulatorConfig::default()).await
    }

    async fn with(cfg: EmulatorConfig) -> T {
        let world = World::load(&fixtures()).expect("fixtures load");
        let emu = Emulator::start(world, cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator starts");
        T {
            emu,
            http: reqwest::Client::new(),
        }
    }

    async fn get_as(&self, who: Who, path_and_query: &str) -> Resp {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_string()
        } else {
            format!("{}{}", self.emu.base_url(), path_and_query)
        };
        let mut req = self.http.get(url);
        req = match who {
            Who::Anonymous => req,
            Who::Basic(email, token) => req.basic_auth(format!("{email}/token"), Some(token)),
            Who::Bearer(t) => req.bearer_auth(t),
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Resp {
            status,
            headers,
            text: r.text().await.unwrap(),
        }
    }

    /// As the admin, expecting 200 and JSON.
    async fn get(&self, path_and_query: &str) -> Value {
        let r = self
            .get_as(Who::Basic(ADMIN.0, ADMIN.1), path_and_query)
            .await;
        assert_eq!(r.status, 200, "{path_and_query}: {}", r.text);
        r.json()
    }

    async fn export(&self, start: i64) -> Value {
        self.get(&format!(
            "/api/v2/help_center/incremental/articles.json?start_time={start}"
        ))
        .await
    }

    async fn article(&self, id: u64) -> Value {
        self.get(&format!("/api/v2/help_center/articles/{id}.json"))
            .await["article"]
            .clone()
    }

    async fn translation(&self, id: u64, locale: &str) -> Value {
        self.get(&format!(
            "/api/v2/help_center/articles/{id}/translations/{locale}.json"
        ))
        .await["translation"]
            .clone()
    }
}

fn ids(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn basic_and_bearer_authenticate_and_bad_credentials_get_zendesks_401() {
    let t = T::start().await;
    let path = "/api/v2/help_center/articles.json";
    assert_eq!(
        t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await.status,
        200
    );
    assert_eq!(
        t.get_as(Who::Basic(AGENT.0, AGENT.1), path).await.status,
        200
    );
    assert_eq!(t.get_as(Who::Bearer(OAUTH), path).await.status, 200);

    let wrong = t.get_as(Who::Basic(ADMIN.0, "wrong-token"), path).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json(), json!({"error": "Couldn't authenticate you"}));
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Basic realm=\"Web Password\"")
    );
    assert!(
        wrong
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let other_users_token = t.get_as(Who::Basic(AGENT.0, ADMIN.1), path).await;
    assert_eq!(
        other_users_token.status, 401,
        "email and token must belong together"
    );

    let bad_bearer = t.get_as(Who::Bearer("expired-token"), path).await;
    assert_eq!(bad_bearer.status, 401);
    assert_eq!(bad_bearer.json()["error"], "invalid_token");

    for agent_only in [
        path,
        "/api/v2/help_center/incremental/articles.json?start_time=0",
        "/api/v2/help_center/user_segments.json",
    ] {
        let anon = t.get_as(Who::Anonymous, agent_only).await;
        assert_eq!(anon.status, 401, "{agent_only}");
        assert_eq!(anon.json(), json!({"error": "Couldn't authenticate you"}));
    }
    let roles: Vec<Option<String>> = t.emu.requests().into_iter().map(|r| r.role).collect();
    assert_eq!(
        roles[..3],
        [
            Some("admin".to_string()),
            Some("agent".to_string()),
            Some("admin".to_string())
        ]
    );
    assert!(roles[3..].iter().all(Option::is_none));
}

#[tokio::test]
async fn anonymous_callers_see_only_published_public_content_in_locale_paths() {
    let t = T::start().await;
    let r = t
        .get_as(
            Who::Anonymous,
            "/api/v2/help_center/en-us/articles.json?per_page=100",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let arts = r.json()["articles"].clone();
    let anon: BTreeSet<u64> = ids(&arts).into_iter().collect();
    let admin: BTreeSet<u64> = ids(&t
        .get("/api/v2/help_center/en-us/articles.json?per_page=100")
        .await["articles"])
    .into_iter()
    .collect();
    assert!(
        anon.len() >= 20 && anon.len() < admin.len(),
        "{} of {}",
        anon.len(),
        admin.len()
    );
    for a in arts.as_array().unwrap() {
        assert_eq!(a["draft"], false);
        assert_eq!(a["user_segment_ids"], json!([]));
    }
    let restricted: u64 = 3600000113017; // signed-in users only
    assert_eq!(
        t.get_as(
            Who::Anonymous,
            &format!("/api/v2/help_center/en-us/articles/{restricted}.json")
        )
        .await
        .status,
        404
    );
    assert_eq!(
        t.get_as(
            Who::Anonymous,
            &format!("/api/v2/help_center/en-us/articles/{WITH_DE}.json")
        )
        .await
        .status,
        200
    );
    let locales = t
        .get_as(Who::Anonymous, "/api/v2/help_center/locales.json")
        .await;
    assert_eq!(
        locales.json(),
        json!({"default_locale": "en-us", "locales": ["en-us", "de", "ja", "fr"]})
    );
}

#[tokio::test]
async fn export_is_inclusive_and_repeats_the_boundary_record_on_the_next_page() {
    let t = T::with(EmulatorConfig {
        incremental_page_size: 5,
        ..Default::default()
    })
    .await;
    // Inclusive: an article updated exactly at start_time is returned.
    let a = t.article(ENGLISH_ONLY).await;
    let at = epoch(a["updated_at"].as_str().unwrap());
    let first = t.export(at).await;
    assert!(ids(&first["articles"]).contains(&ENGLISH_ONLY));

    let mut start = 0;
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    loop {
        let page = t.export(start).await;
        pages += 1;
        let arts = page["articles"].as_array().unwrap().clone();
        assert_eq!(page["count"], arts.len(), "count is the page's size");
        let stamps: Vec<i64> = arts
            .iter()
            .map(|a| epoch(a["updated_at"].as_str().unwrap()))
            .collect();
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "ordered by updated_at: {stamps:?}"
        );
        assert!(
            stamps.iter().all(|s| *s >= start),
            "nothing before start_time"
        );
        assert_eq!(
            page["end_time"],
            *stamps.last().unwrap(),
            "end_time is the last item's updated_at"
        );
        seen.extend(ids(&page["articles"]));
        if page["next_page"].is_null() {
            break;
        }
        let next = page["next_page"].as_str().unwrap();
        let end = page["end_time"].as_i64().unwrap();
        assert_eq!(
            next,
            format!(
                "{}/api/v2/help_center/incremental/articles.json?start_time={end}",
                t.emu.base_url()
            )
        );
        // Following next_page as given: the last record of this page opens the next one.
        let following = t.get(next).await;
        let last = *ids(&page["articles"]).last().unwrap();
        assert!(
            ids(&following["articles"]).contains(&last),
            "boundary record {last} repeats"
        );
        start = end;
        assert!(pages < 50, "export terminates");
    }
    assert!(pages >= 9, "{pages} pages of 5");
    assert_eq!(seen, live_ids(), "every live article, archived ones absent");

    // Nothing changed since: the recorded empty-page answer.
    let empty = t.export(4_000_000_000).await;
    assert_eq!(
        empty,
        json!({"articles": [], "count": 0, "next_page": null, "end_time": 1})
    );
}

#[tokio::test]
async fn more_than_a_page_in_one_second_makes_next_page_repeat_forever() {
    let t = T::with(EmulatorConfig {
        incremental_page_size: 5,
        ..Default::default()
    })
    .await;
    let touched: Vec<u64> = live_ids().into_iter().take(12).collect();
    t.emu.touch_many_same_second(&touched);
    let newest = t.article(touched[0]).await;
    let second = epoch(newest["updated_at"].as_str().unwrap());
    for id in &touched {
        assert_eq!(
            t.article(*id).await["updated_at"],
            newest["updated_at"],
            "one identical second"
        );
    }
    let page = t.export(second).await;
    assert_eq!(page["count"], 5);
    assert_eq!(page["end_time"], second);
    let again = t.get(page["next_page"].as_str().unwrap()).await;
    assert_eq!(
        ids(&again["articles"]),
        ids(&page["articles"]),
        "the same page again: the stall quirk"
    );
    assert_eq!(again["next_page"], page["next_page"]);
}

#[tokio::test]
async fn drafts_are_exported_archived_articles_are_gone_and_show_404s() {
    let t = T::start().await;
    let export = t.export(0).await;
    let drafts: Vec<u64> = export["articles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["draft"] == true)
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        drafts.len(),
        3,
        "draft articles are in the export: {drafts:?}"
    );
    assert!(!ids(&export["articles"]).contains(&ARCHIVED));
    assert_eq!(
        t.article(drafts[0]).await["draft"],
        true,
        "agents can show drafts"
    );

    for id in [ARCHIVED, 42] {
        let r = t
            .get_as(
                Who::Basic(ADMIN.0, ADMIN.1),
                &format!("/api/v2/help_center/articles/{id}.json"),
            )
            .await;
        assert_eq!(r.status, 404);
        assert_eq!(
            r.json(),
            json!({"error": "RecordNotFound", "description": "Not found"})
        );
    }
    let listed = ids(&t
        .get("/api/v2/help_center/articles.json?per_page=100")
        .await["articles"]);
    assert!(!listed.contains(&ARCHIVED));
    let unknown = t
        .get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            "/api/v2/help_center/widgets.json",
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (
            404,
            json!({"error": "InvalidEndpoint", "description": "Not found"})
        )
    );
}

#[tokio::test]
async fn cursor_listing_pages_of_100_through_every_id() {
    let t = T::start().await;
    // 160 more articles, so the listing needs more than one page of 100.
    let template = fixture(ENGLISH_ONLY);
    for i in 0..160u64 {
        let mut doc = template.clone();
        doc["article"]["id"] = json!(9_000_000 + i);
        doc["translations"][0]["id"] = json!(8_000_000 + i);
        t.emu.add_article(doc);
    }
    let mut expected = live_ids();
    expected.extend((0..160).map(|i| 9_000_000 + i));

    let mut got = Vec::new();
    let mut url =
        "/api/v2/help_center/articles.json?sort_by=updated_at&sort_order=asc&page[size]=100"
            .to_string();
    let mut pages = 0;
    loop {
        let r = t.get_as(Who::Basic(ADMIN.0, ADMIN.1), &url).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        pages += 1;
        assert!(body["articles"].as_array().unwrap().len() <= 100);
        got.extend(ids(&body["articles"]));
        assert!(
            body["links"]["first"]
                .as_str()
                .unwrap()
                .contains("page%5Bsize%5D=100")
        );
        if body["meta"]["has_more"] == false {
            assert!(
                body["links"].get("next").is_none(),
                "no next link on the last page"
            );
            assert!(r.header("link").is_none());
            break;
        }
        let next = body["links"]["next"].as_str().unwrap().to_string();
        assert!(
            next.contains("sort_by=updated_at"),
            "other parameters survive: {next}"
        );
        assert_eq!(
            r.header("link"),
            Some(format!("<{next}>; rel=\"next\"").as_str())
        );
        let after = body["meta"]["after_cursor"].as_str().unwrap();
        assert!(
            next.contains(
                &url::form_urlencoded::byte_serialize(after.as_bytes()).collect::<String>()
            )
        );
        url = next;
    }
    assert_eq!(pages, 3);
    assert_eq!(got.len(), expected.len(), "no id twice");
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn offset_listing_has_zendesk_fields_and_stops_after_page_100() {
    let t = T::start().await;
    let live = live_ids().len();
    let p = t
        .get("/api/v2/help_center/articles.json?page=2&per_page=10")
        .await;
    assert_eq!(p["articles"].as_array().unwrap().len(), 10);
    assert_eq!(
        (p["page"].clone(), p["per_page"].clone(), p["count"].clone()),
        (json!(2), json!(10), json!(live))
    );
    assert_eq!(p["page_count"], live.div_ceil(10));
    assert!(
        p["next_page"]
            .as_str()
            .unwrap()
            .ends_with("/api/v2/help_center/articles.json?page=3&per_page=10")
    );
    assert!(
        p["previous_page"]
            .as_str()
            .unwrap()
            .ends_with("page=1&per_page=10")
    );
    let default = t.get("/api/v2/help_center/articles.json").await;
    assert_eq!(
        (
            default["per_page"].clone(),
            default["articles"].as_array().unwrap().len()
        ),
        (json!(30), 30)
    );
    assert_eq!(default["sort_by"], "position");

    assert_eq!(
        t.get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            "/api/v2/help_center/articles.json?page=100"
        )
        .await
        .status,
        200
    );
    let r = t
        .get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            "/api/v2/help_center/articles.json?page=101&per_page=100",
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["description"].as_str().unwrap().contains("cursor"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn listing_start_time_returns_articles_updated_at_or_after_it_by_updated_at() {
    let t = T::start().await;
    let all = t.export(0).await["articles"].as_array().unwrap().clone();
    let pivot = epoch(all[all.len() / 2]["updated_at"].as_str().unwrap());
    let r = t
        .get(&format!(
            "/api/v2/help_center/articles.json?start_time={pivot}&page[size]=100"
        ))
        .await;
    let stamps: Vec<i64> = r["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| epoch(a["updated_at"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stamps.len(),
        all.iter()
            .filter(|a| epoch(a["updated_at"].as_str().unwrap()) >= pivot)
            .count()
    );
    assert!(
        stamps.iter().all(|s| *s >= pivot) && stamps.windows(2).all(|w| w[0] <= w[1]),
        "{stamps:?}"
    );
}

#[tokio::test]
async fn locale_listing_serves_each_articles_translation_in_that_locale() {
    let t = T::start().await;
    let de = t
        .get("/api/v2/help_center/de/articles.json?page[size]=100")
        .await;
    let arts = de["articles"].as_array().unwrap();
    let listed: BTreeSet<u64> = ids(&de["articles"]).into_iter().collect();
    assert!(
        !listed.contains(&ENGLISH_ONLY),
        "articles without a German translation are absent"
    );
    assert!(listed.contains(&WITH_DE) && listed.contains(&DE_DRAFT));
    let fx = fixture(WITH_DE);
    let fx_de = fx["translations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["locale"] == "de")
        .unwrap();
    let a = arts.iter().find(|a| a["id"] == WITH_DE).unwrap();
    assert_eq!(a["locale"], "de");
    assert_eq!(a["source_locale"], "en-us");
    assert_eq!(a["title"], fx_de["title"]);
    assert_eq!(a["body"], fx_de["body"]);
    assert_eq!(
        a["edited_at"], fx_de["updated_at"],
        "edited_at is this locale's last edit"
    );
    assert_eq!(
        a["updated_at"], fx["article"]["updated_at"],
        "updated_at is the max over translations"
    );
    assert_eq!(
        a["html_url"],
        format!(
            "{}/hc/de/articles/{WITH_DE}-{}",
            t.emu.base_url(),
            slug(fx_de["title"].as_str().unwrap())
        )
    );
    assert_eq!(
        arts.iter().find(|a| a["id"] == DE_DRAFT).unwrap()["draft"],
        true,
        "per-locale draft flag"
    );
    let anon = t
        .get_as(
            Who::Anonymous,
            "/api/v2/help_center/de/articles.json?page[size]=100",
        )
        .await
        .json();
    assert!(
        !ids(&anon["articles"]).contains(&DE_DRAFT),
        "the public never sees a draft translation"
    );
}

#[tokio::test]
async fn translations_endpoint_lists_every_translation_of_one_article() {
    let t = T::start().await;
    let r = t
        .get(&format!(
            "/api/v2/help_center/articles/{WITH_DE}/translations.json?page[size]=100"
        ))
        .await;
    let ts = r["translations"].as_array().unwrap();
    let locales: BTreeSet<&str> = ts.iter().map(|t| t["locale"].as_str().unwrap()).collect();
    assert_eq!(locales, BTreeSet::from(["en-us", "de", "fr", "ja"]));
    for tr in ts {
        assert_eq!(tr["source_id"], WITH_DE);
        assert_eq!(tr["source_type"], "Article");
        assert!(
            tr["body"].is_string() && tr["updated_at"].is_string() && tr["html_url"].is_string()
        );
    }
    let only_de = t
        .get(&format!(
            "/api/v2/help_center/articles/{WITH_DE}/translations.json?locales=de"
        ))
        .await;
    assert_eq!(only_de["translations"].as_array().unwrap().len(), 1);
    let missing = t
        .get(&format!(
            "/api/v2/help_center/articles/{ENGLISH_ONLY}/translations/missing.json"
        ))
        .await;
    assert_eq!(missing, json!({"locales": ["de", "ja", "fr"]}));
    let archived = t
        .get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            &format!("/api/v2/help_center/articles/{ARCHIVED}/translations.json"),
        )
        .await;
    assert_eq!(archived.status, 404);
}

#[tokio::test]
async fn user_segments_are_for_guide_admins_only() {
    let t = T::start().await;
    let segs = t
        .get("/api/v2/help_center/user_segments.json?page[size]=100")
        .await;
    assert_eq!(segs["user_segments"].as_array().unwrap().len(), 4);
    let agent = t
        .get_as(
            Who::Basic(AGENT.0, AGENT.1),
            "/api/v2/help_center/user_segments.json",
        )
        .await;
    assert_eq!(agent.status, 403);
    assert_eq!(agent.json()["error"]["title"], "Forbidden");
    t.emu.set_segments_forbidden(true);
    assert_eq!(
        t.get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            "/api/v2/help_center/user_segments.json"
        )
        .await
        .status,
        403
    );
    t.emu.set_segments_forbidden(false);
    assert_eq!(
        t.get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            "/api/v2/help_center/user_segments.json"
        )
        .await
        .status,
        200
    );
    // What the agent may list: structure and the brand.
    for path in [
        "/api/v2/help_center/sections.json",
        "/api/v2/help_center/categories.json",
        "/api/v2/brands.json",
    ] {
        assert_eq!(
            t.get_as(Who::Basic(AGENT.0, AGENT.1), path).await.status,
            200,
            "{path}"
        );
    }
    let brands = t.get("/api/v2/brands.json?page[size]=100").await;
    assert_eq!(brands["brands"][0]["subdomain"], "lumenpay");
    assert_eq!(brands["brands"][0]["help_center_state"], "enabled");
}

#[tokio::test]
async fn rate_limit_budget_answers_429_with_retry_after_and_counts_down() {
    let rl = RateLimit {
        per_window: 3,
        window: Duration::from_secs(2),
    };
    let t = T::with(EmulatorConfig {
        rate_limit: Some(rl),
        ..Default::default()
    })
    .await;
    let path = "/api/v2/help_center/locales.json";
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-rate-limit"), Some("3"));
        remaining.push(r.header("x-rate-limit-remaining").unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let limited = t.get_as(Who::Bearer(OAUTH), path).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.text,
        "Number of allowed API requests per minute exceeded"
    );
    assert_eq!(limited.header("content-type"), Some("text/plain"));
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(limited.header("x-rate-limit-remaining"), Some("0"));
    // Anonymous public reads do not count, and still see the budget.
    let anon = t.get_as(Who::Anonymous, path).await;
    assert_eq!(
        (anon.status, anon.header("x-rate-limit-remaining")),
        (200, Some("0"))
    );
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let r = t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await;
    assert_eq!(
        (r.status, r.header("x-rate-limit-remaining")),
        (200, Some("2")),
        "a new window"
    );
    assert!(t.emu.requests().iter().any(|q| q.status == 429));
}

#[tokio::test]
async fn without_a_budget_there_are_no_rate_limit_headers() {
    let t = T::start().await;
    let r = t
        .get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            "/api/v2/help_center/locales.json",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-rate-limit").is_none() && r.header("x-rate-limit-remaining").is_none());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("x-zendesk-api-version"), Some("v2"));
}

#[tokio::test]
async fn scripted_faults_fail_truncate_and_delay_the_next_requests_in_order() {
    let t = T::start().await;
    let path = "/api/v2/help_center/incremental/articles.json?start_time=0";
    t.emu.fail_next(2, 503);
    t.emu.truncate_next(1);
    t.emu.delay_next(1, Duration::from_millis(400));
    for _ in 0..2 {
        let r = t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await;
        assert_eq!(r.status, 503);
        assert_eq!(
            r.json(),
            json!({"status": 503, "error": "Service Unavailable"})
        );
    }
    let cut = t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await;
    assert_eq!(cut.status, 200);
    assert!(
        serde_json::from_str::<Value>(&cut.text).is_err(),
        "half a JSON body"
    );
    let started = Instant::now();
    let slow = t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(slow.status, 200);
    assert_eq!(
        slow.json()["articles"].as_array().unwrap().len(),
        live_ids().len(),
        "whole again"
    );
    let started = Instant::now();
    assert_eq!(
        t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await.status,
        200
    );
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "faults are used up"
    );

    t.emu.truncate_next(5);
    t.emu.truncate_next(0);
    assert!(
        serde_json::from_str::<Value>(&t.get_as(Who::Basic(ADMIN.0, ADMIN.1), path).await.text)
            .is_ok()
    );
    let statuses: Vec<u16> = t.emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200, 200, 200, 200]);
    assert_eq!(t.emu.request_count(), 6);
    let first = &t.emu.requests()[0];
    assert_eq!(
        (
            first.method.as_str(),
            first.path.as_str(),
            first.query.as_str()
        ),
        (
            "GET",
            "/api/v2/help_center/incremental/articles.json",
            "start_time=0"
        )
    );
    t.emu.reset_requests();
    assert_eq!(t.emu.request_count(), 0);
}

#[tokio::test]
async fn editing_one_translation_moves_the_article_and_that_translation_only() {
    let t = T::start().await;
    let before = t.article(WITH_DE).await;
    let en_before = t.translation(WITH_DE, "en-us").await;
    let cursor = t.export(0).await["end_time"].as_i64().unwrap();

    t.emu.edit_body(WITH_DE, "de", "<p>Wombatfutter</p>");
    let after = t.article(WITH_DE).await;
    let de = t.translation(WITH_DE, "de").await;
    assert_eq!(de["body"], "<p>Wombatfutter</p>");
    assert_eq!(
        after["updated_at"], de["updated_at"],
        "article updated_at = max over translations"
    );
    assert!(
        epoch(after["updated_at"].as_str().unwrap()) > cursor,
        "visible to the next export"
    );
    assert_eq!(
        t.translation(WITH_DE, "en-us").await,
        en_before,
        "English translation untouched"
    );
    assert_eq!(after["body"], before["body"]);
    assert_eq!(
        after["edited_at"], before["edited_at"],
        "the source locale was not edited"
    );
    assert_eq!(ids(&t.export(cursor + 1).await["articles"]), vec![WITH_DE]);

    // Two edits in a row get distinct seconds.
    t.emu.edit_title(WITH_DE, "en-us", "Renamed");
    let renamed = t.article(WITH_DE).await;
    assert!(
        epoch(renamed["updated_at"].as_str().unwrap())
            > epoch(after["updated_at"].as_str().unwrap())
    );
    assert_eq!(renamed["title"], "Renamed");
    assert_eq!(renamed["name"], "Renamed");
    assert!(
        renamed["html_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/hc/en-us/articles/{WITH_DE}-Renamed"))
    );

    // Editing a locale the article lacks adds that translation.
    let fresh: u64 = 3600000112233; // English only
    assert_eq!(
        t.get(&format!(
            "/api/v2/help_center/articles/{fresh}/translations/missing.json"
        ))
        .await,
        json!({"locales": ["de", "ja", "fr"]})
    );
    t.emu.edit_body(fresh, "de", "<p>Neu übersetzt</p>");
    let ts = t
        .get(&format!(
            "/api/v2/help_center/articles/{fresh}/translations.json"
        ))
        .await;
    let ts = ts["translations"].as_array().unwrap();
    assert_eq!(ts.len(), 2);
    assert_ne!(
        ts[0]["id"], ts[1]["id"],
        "the new translation has its own id"
    );
    let de_list = t
        .get("/api/v2/help_center/de/articles.json?page[size]=100")
        .await;
    assert!(ids(&de_list["articles"]).contains(&fresh));

    // The bulk-import quirk: the body changes, no timestamp does.
    let cursor = t.export(0).await["end_time"].as_i64().unwrap() + 1;
    t.emu
        .bulk_edit_without_timestamp(ENGLISH_ONLY, "en-us", "<p>Platypus</p>");
    let quiet = t.article(ENGLISH_ONLY).await;
    assert_eq!(quiet["body"], "<p>Platypus</p>");
    assert_eq!(
        quiet["updated_at"],
        fixture(ENGLISH_ONLY)["article"]["updated_at"]
    );
    assert!(
        t.export(cursor).await["articles"]
            .as_array()
            .unwrap()
            .is_empty(),
        "invisible to the export"
    );
}

#[tokio::test]
async fn unpublish_archive_segments_section_and_delete_as_zendesk_shows_them() {
    let t = T::start().await;
    t.emu.set_clock(1_900_000_000);
    t.emu.set_draft(WITH_DE, "en-us", true);
    let a = t.article(WITH_DE).await;
    assert_eq!(
        (a["draft"].clone(), a["updated_at"].clone()),
        (json!(true), json!("2030-03-17T17:46:40Z"))
    );
    assert_eq!(
        t.translation(WITH_DE, "de").await["draft"],
        false,
        "other locales keep their state"
    );

    t.emu.set_segments(WITH_DE, vec![3600000070023]);
    let a = t.article(WITH_DE).await;
    assert_eq!(
        (a["user_segment_id"].clone(), a["user_segment_ids"].clone()),
        (json!(3600000070023u64), json!([3600000070023u64]))
    );
    assert_eq!(a["updated_at"], "2030-03-17T17:46:41Z");
    assert_eq!(
        a["edited_at"], "2030-03-17T17:46:40Z",
        "a permission change is not an edit"
    );
    t.emu.set_segments(WITH_DE, vec![]);
    assert_eq!(t.article(WITH_DE).await["user_segment_id"], Value::Null);

    t.emu.move_section(WITH_DE, 3600000061025);
    assert_eq!(t.article(WITH_DE).await["section_id"], 3600000061025u64);
    let in_section = t
        .get("/api/v2/help_center/sections/3600000061025/articles.json?per_page=100")
        .await;
    assert!(ids(&in_section["articles"]).contains(&WITH_DE));

    t.emu.archive(ENGLISH_ONLY);
    t.emu.delete(DE_DRAFT);
    for id in [ENGLISH_ONLY, DE_DRAFT] {
        let show = t
            .get_as(
                Who::Basic(ADMIN.0, ADMIN.1),
                &format!("/api/v2/help_center/articles/{id}.json"),
            )
            .await;
        assert_eq!(show.status, 404);
        assert!(!ids(&t.export(0).await["articles"]).contains(&id));
    }
    assert_eq!(t.export(0).await["count"], live_ids().len() - 2);
}

#[tokio::test]
async fn html_urls_use_the_slug_rule_and_resolve_to_the_public_page() {
    let t = T::start().await;
    let a = t.article(WITH_DE).await;
    let title = a["title"].as_str().unwrap();
    let html_url = a["html_url"].as_str().unwrap();
    assert_eq!(
        html_url,
        format!(
            "{}/hc/en-us/articles/{WITH_DE}-{}",
            t.emu.base_url(),
            slug(title)
        )
    );
    assert_eq!(
        a["url"],
        format!(
            "{}/api/v2/help_center/en-us/articles/{WITH_DE}.json",
            t.emu.base_url()
        )
    );
    let page = t.get_as(Who::Anonymous, html_url).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text.contains(a["body"].as_str().unwrap()),
        "the page carries the body and its anchors"
    );
    let without_slug = t
        .get_as(Who::Anonymous, &format!("/hc/de/articles/{WITH_DE}"))
        .await;
    assert_eq!(without_slug.status, 200, "the slug is cosmetic");
    assert_eq!(
        t.get_as(Who::Anonymous, &format!("/hc/en-us/articles/{ARCHIVED}"))
            .await
            .status,
        404
    );

    let sections = t.get("/api/v2/help_center/sections.json").await;
    let s = &sections["sections"][0];
    assert!(s["html_url"].as_str().unwrap().starts_with(&format!(
        "{}/hc/en-us/sections/{}-",
        t.emu.base_url(),
        s["id"]
    )));
    assert_eq!(
        t.get_as(Who::Anonymous, s["html_url"].as_str().unwrap())
            .await
            .status,
        200
    );

    let public = T::with(EmulatorConfig {
        public_url: Some("https://help.lumenpay.test/".into()),
        ..Default::default()
    })
    .await;
    let a = public.article(WITH_DE).await;
    assert!(a["html_url"].as_str().unwrap().starts_with(&format!(
        "https://help.lumenpay.test/hc/en-us/articles/{WITH_DE}-"
    )));
    assert!(
        a["url"]
            .as_str()
            .unwrap()
            .starts_with(&public.emu.base_url()),
        "API urls stay on the server"
    );
}

#[tokio::test]
async fn added_articles_are_created_now_and_exported() {
    let t = T::start().await;
    let cursor = t.export(0).await["end_time"].as_i64().unwrap();
    let mut doc = fixture(ENGLISH_ONLY);
    doc["article"]["id"] = json!(77);
    doc["article"]["title"] = json!("Brand new");
    doc["translations"] = json!([{"locale": "en-us", "title": "Brand new", "body": "<p>new</p>", "updated_at": "2020-01-01T00:00:00Z"}]);
    t.emu.add_article(doc);
    t.emu.add_article(json!({"not": "an article"})); // logged and ignored
    let page = t.export(cursor + 1).await;
    assert_eq!(ids(&page["articles"]), vec![77]);
    assert_eq!(page["articles"][0]["body"], "<p>new</p>");
    assert_eq!(t.translation(77, "en-us").await["title"], "Brand new");
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let t = T::start().await;
    let base = t.emu.base_url();
    assert_eq!(
        t.get_as(
            Who::Basic(ADMIN.0, ADMIN.1),
            "/api/v2/help_center/locales.json"
        )
        .await
        .status,
        200
    );
    t.emu.shutdown().await;
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v2/help_center/locales.json"))
        .send()
        .await;
    assert!(r.is_err(), "nothing listens any more");
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| std::fs::copy(fixtures().join(name), dir.path().join(name)).unwrap();
    let missing = World::load(dir.path()).unwrap_err().to_string();
    assert!(missing.contains("help_center.json"), "{missing}");
    copy("help_center.json");
    copy("categories.json");
    copy("sections.json");
    std::fs::create_dir(dir.path().join("articles")).unwrap();
    std::fs::write(
        dir.path().join("articles/1.json"),
        r#"{"article": {"id": 1, "created_at": "soon"}}"#,
    )
    .unwrap();
    let bad = World::load(dir.path()).unwrap_err().to_string();
    assert!(
        bad.contains("articles/1.json") && bad.contains("created_at"),
        "{bad}"
    );
    std::fs::write(dir.path().join("articles/1.json"), "{not json").unwrap();
    let bad = World::load(dir.path()).unwrap_err().to_string();
    assert!(
        bad.contains("articles/1.json") && bad.contains("not valid JSON"),
        "{bad}"
    );
    std::fs::remove_file(dir.path().join("articles/1.json")).unwrap();
    assert_eq!(
        World::load(dir.path()).unwrap().article_count(),
        0,
        "user_segments.json is optional"
    );
}
