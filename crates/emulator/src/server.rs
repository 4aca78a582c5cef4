//! The HTTP side: path parsing, authentication, the rate-limit budget, scripted faults and the
//! handlers for each Help Center endpoint, with Zendesk's bodies and headers.
//!
//! Paths are parsed by hand rather than with axum's router: Zendesk makes `.json` optional on
//! every path and puts an optional locale where a resource name could be
//! (`/help_center/{locale}/articles` vs `/help_center/articles/{id}`), and unknown paths must
//! answer Zendesk's `InvalidEndpoint` body. One parser covers all of that and is unit-tested.

use super::RequestRecord;
use super::faults::{Charge, Fault, Faults, RateLimiter};
use super::pagination::{self, Key, LinkBase, PageReq, SortVal};
use super::world::{ArticleRec, Credential, Role, TranslationRec, Urls, World, fmt_ts};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// State shared by the server and the [`super::Emulator`] handle.
pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub faults: Mutex<Faults>,
    pub limiter: Option<Mutex<RateLimiter>>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub segments_forbidden: AtomicBool,
    /// Every credential answers 401 (a token revoked in Zendesk).
    pub revoked: AtomicBool,
    /// The sections listing's cursor points back at its first page, forever.
    pub sections_loop: AtomicBool,
    /// Answer this `end_time` on every export page (a recorded far-future value, say).
    pub export_end_time: Mutex<Option<i64>>,
    /// Archive an article right after the first answer to a path containing a string.
    pub archive_after: Mutex<Vec<(String, u64)>>,
    /// Sorted listings by world version, so paging through 100,000 articles stays linear.
    pub cache: Mutex<HashMap<String, (u64, Sorted)>>,
    /// Base of API URLs (`url`, `next_page`, links), e.g. `http://127.0.0.1:7701`.
    pub api_base: String,
    /// Base of `html_url`s.
    pub public_base: String,
    pub page_size: usize,
}

/// A sorted listing: sort key and article id, in order.
pub(crate) type Sorted = Arc<Vec<(Key, u64)>>;

/// Locks, ignoring poisoning: a panicked request must not take the emulator down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The axum app: every request goes through [`handle`].
pub(crate) fn app(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

// ---- routes ----

/// Which articles a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Section(u64),
    Category(u64),
}

/// An API endpoint, with the locale from the path when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Export,
    Locales,
    UserSegments,
    UserSegment(u64),
    Brands,
    Brand(u64),
    Articles {
        locale: Option<String>,
        scope: Scope,
    },
    Article {
        locale: Option<String>,
        id: u64,
    },
    ArchiveArticle(u64),
    Translations(u64),
    Translation(u64, String),
    MissingTranslations(u64),
    Sections {
        locale: Option<String>,
        category: Option<u64>,
    },
    Section {
        locale: Option<String>,
        id: u64,
    },
    Categories {
        locale: Option<String>,
    },
    Category {
        locale: Option<String>,
        id: u64,
    },
}

/// A public Help Center page (`html_url` targets).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PageRoute {
    Article(String, u64),
    Section(String, u64),
    Category(String, u64),
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Anonymous callers too (they see public content only).
    Anyone,
    /// Any authenticated user.
    SignedIn,
    /// Agents and admins.
    Agent,
    /// Guide admins (Help Center managers).
    Admin,
}

fn looks_like_locale(s: &str) -> bool {
    (2..=10).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn segments(path: &str) -> Vec<&str> {
    let p = path.strip_suffix(".json").unwrap_or(path);
    p.split('/').filter(|s| !s.is_empty()).collect()
}

fn parse_route(method: &Method, path: &str) -> Option<Route> {
    let segs = segments(path);
    let rest = segs.strip_prefix(&["api", "v2"])?;
    let id = |s: &str| s.parse::<u64>().ok();
    if *method == Method::DELETE {
        return match rest {
            ["help_center", "articles", i] | ["help_center", _, "articles", i] => {
                Some(Route::ArchiveArticle(id(i)?))
            }
            _ => None,
        };
    }
    if *method != Method::GET && *method != Method::HEAD {
        return None;
    }
    match rest {
        ["brands"] => return Some(Route::Brands),
        ["brands", i] => return Some(Route::Brand(id(i)?)),
        ["help_center", "incremental", "articles"] => return Some(Route::Export),
        ["help_center", "locales"] => return Some(Route::Locales),
        ["help_center", "user_segments"] => return Some(Route::UserSegments),
        ["help_center", "user_segments", i] => return Some(Route::UserSegment(id(i)?)),
        _ => {}
    }
    let hc = rest.strip_prefix(&["help_center"])?;
    let (locale, r) = match hc.first() {
        Some(&("articles" | "sections" | "categories")) => (None, hc),
        Some(l) if looks_like_locale(l) => (Some(l.to_string()), &hc[1..]),
        _ => return None,
    };
    Some(match r {
        ["articles"] => Route::Articles {
            locale,
            scope: Scope::All,
        },
        ["articles", i] => Route::Article { locale, id: id(i)? },
        ["articles", i, "translations"] => Route::Translations(id(i)?),
        ["articles", i, "translations", "missing"] => Route::MissingTranslations(id(i)?),
        ["articles", i, "translations", l] if looks_like_locale(l) => {
            Route::Translation(id(i)?, l.to_string())
        }
        ["sections"] => Route::Sections {
            locale,
            category: None,
        },
        ["sections", i] => Route::Section { locale, id: id(i)? },
        ["sections", i, "articles"] => Route::Articles {
            locale,
            scope: Scope::Section(id(i)?),
        },
        ["categories"] => Route::Categories { locale },
        ["categories", i] => Route::Category { locale, id: id(i)? },
        ["categories", i, "sections"] => Route::Sections {
            locale,
            category: Some(id(i)?),
        },
        ["categories", i, "articles"] => Route::Articles {
            locale,
            scope: Scope::Category(id(i)?),
        },
        _ => return None,
    })
}

/// `/hc/{locale}/articles/{id}-{slug}`: the id is the digits before the first `-`.
fn parse_page(path: &str) -> Option<PageRoute> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ["hc", locale, kind, idslug] = segs.as_slice() else {
        return None;
    };
    let digits: String = idslug.chars().take_while(char::is_ascii_digit).collect();
    let id = digits.parse().ok()?;
    let locale = locale.to_string();
    match *kind {
        "articles" => Some(PageRoute::Article(locale, id)),
        "sections" => Some(PageRoute::Section(locale, id)),
        "categories" => Some(PageRoute::Category(locale, id)),
        _ => None,
    }
}

impl Route {
    fn need(&self) -> Need {
        match self {
            Route::Export
            | Route::Brands
            | Route::Brand(_)
            | Route::ArchiveArticle(_)
            | Route::MissingTranslations(_) => Need::Agent,
            Route::UserSegments | Route::UserSegment(_) => Need::Admin,
            Route::Locales | Route::Translations(_) | Route::Translation(..) => Need::Anyone,
            // "Locale in path: required for end users and anonymous users" (§0).
            Route::Articles { locale, .. } | Route::Article { locale, .. } => {
                if locale.is_some() {
                    Need::Anyone
                } else {
                    Need::Agent
                }
            }
            Route::Sections { locale, .. }
            | Route::Section { locale, .. }
            | Route::Categories { locale }
            | Route::Category { locale, .. } => {
                if locale.is_some() {
                    Need::Anyone
                } else {
                    Need::SignedIn
                }
            }
        }
    }
}

fn allowed(need: Need, role: Option<Role>) -> bool {
    match (need, role) {
        (Need::Anyone, _) => true,
        (_, None) => false,
        (Need::SignedIn, Some(_)) => true,
        (Need::Agent, Some(r)) => matches!(r, Role::Admin | Role::Agent),
        (Need::Admin, Some(r)) => r == Role::Admin,
    }
}

// ---- authentication ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Anonymous,
    User(Role),
    /// Wrong Basic credentials (or an unknown scheme).
    BadBasic,
    /// Unknown, expired or malformed OAuth token.
    BadBearer,
}

fn authenticate(headers: &HeaderMap, creds: &[Credential]) -> Auth {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Auth::Anonymous;
    };
    let Ok(value) = value.to_str() else {
        return Auth::BadBasic;
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return creds
            .iter()
            .find_map(|c| match c {
                Credential::OAuth { token, role } if token == rest => Some(Auth::User(*role)),
                _ => None,
            })
            .unwrap_or(Auth::BadBearer);
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Auth::BadBasic;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Auth::BadBasic;
    };
    // Only API tokens: password access is off, as Zendesk recommends.
    let Some(email) = user.strip_suffix("/token") else {
        return Auth::BadBasic;
    };
    creds
        .iter()
        .find_map(|c| match c {
            Credential::ApiToken {
                email: e,
                token,
                role,
            } if e.eq_ignore_ascii_case(email) && token == secret => Some(Auth::User(*role)),
            _ => None,
        })
        .unwrap_or(Auth::BadBasic)
}

// ---- replies ----

/// What a handler answers, before the common headers and faults are applied.
struct Reply {
    status: StatusCode,
    body: Payload,
    headers: Vec<(header::HeaderName, String)>,
}

enum Payload {
    Json(Value),
    Text(&'static str, String),
    Empty,
}

impl Reply {
    fn json(status: StatusCode, v: Value) -> Reply {
        Reply {
            status,
            body: Payload::Json(v),
            headers: Vec::new(),
        }
    }

    fn ok(v: Value) -> Reply {
        Reply::json(StatusCode::OK, v)
    }

    fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    fn record_not_found() -> Reply {
        Reply::json(
            StatusCode::NOT_FOUND,
            json!({"error": "RecordNotFound", "description": "Not found"}),
        )
    }

    fn invalid_endpoint() -> Reply {
        Reply::json(
            StatusCode::NOT_FOUND,
            json!({"error": "InvalidEndpoint", "description": "Not found"}),
        )
    }

    fn forbidden() -> Reply {
        Reply::json(
            StatusCode::FORBIDDEN,
            json!({"error": {"title": "Forbidden", "message": "You do not have access to this page. Please contact the account owner of this help desk for further help."}}),
        )
    }

    fn unauthenticated() -> Reply {
        Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Couldn't authenticate you"}),
        )
        .header(header::WWW_AUTHENTICATE, "Basic realm=\"Web Password\"")
    }

    fn invalid_token() -> Reply {
        Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons."}),
        )
        .header(header::WWW_AUTHENTICATE, "Bearer realm=\"Web Password\", error=\"invalid_token\"")
    }

    fn bad_request(error: &str, description: impl Into<String>) -> Reply {
        Reply::json(
            StatusCode::BAD_REQUEST,
            json!({"error": error, "description": description.into()}),
        )
    }

    fn rate_limited(retry_after: u64) -> Reply {
        Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: Payload::Text(
                "text/plain",
                "Number of allowed API requests per minute exceeded".into(),
            ),
            headers: vec![(header::RETRY_AFTER, retry_after.to_string())],
        }
    }

    /// A scripted failure: Zendesk's 5xx fixture shape, or a plain error for other statuses.
    fn failure(status: u16) -> Reply {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = code.canonical_reason().unwrap_or("Error");
        let mut r = if code.is_server_error() {
            Reply::json(code, json!({"status": code.as_u16(), "error": reason}))
        } else {
            Reply::json(code, json!({"error": reason}))
        };
        if code == StatusCode::TOO_MANY_REQUESTS {
            r = r.header(header::RETRY_AFTER, "1");
        }
        r
    }

    fn into_response(self, truncate: bool, head: bool) -> Response {
        let (ctype, mut bytes) = match self.body {
            Payload::Json(v) => (
                "application/json; charset=utf-8",
                serde_json::to_vec(&v).unwrap_or_default(),
            ),
            Payload::Text(ct, s) => (ct, s.into_bytes()),
            Payload::Empty => ("", Vec::new()),
        };
        if truncate {
            bytes.truncate(bytes.len() / 2);
        }
        if head {
            bytes.clear();
        }
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        if !ctype.is_empty() {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        }
        resp
    }
}

// ---- request handling ----

fn query_pairs(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let head = method == Method::HEAD;
    let (response, role) = if path.starts_with("/api/") {
        api(&shared, &method, &path, &query, &headers, head).await
    } else if let Some(page) = (method == Method::GET || head)
        .then(|| parse_page(&path))
        .flatten()
    {
        (public_page(&shared, &page).into_response(false, head), None)
    } else {
        (Reply::invalid_endpoint().into_response(false, head), None)
    };
    let status = response.status().as_u16();
    tracing::debug!(method = %method, path = %path, status, "emulator request");
    lock(&shared.log).push(RequestRecord {
        method: method.to_string(),
        path,
        query,
        status,
        role: role.map(|r: Role| r.as_str().to_string()),
    });
    response
}

/// One API request: auth, budget, faults, access, then the endpoint.
async fn api(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    head: bool,
) -> (Response, Option<Role>) {
    let auth = {
        let world = lock(&shared.world);
        match authenticate(headers, &world.credentials) {
            Auth::User(_) if shared.revoked.load(Ordering::Relaxed) => {
                if headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"))
                {
                    Auth::BadBearer
                } else {
                    Auth::BadBasic
                }
            }
            a => a,
        }
    };
    let role = match auth {
        Auth::User(r) => Some(r),
        Auth::Anonymous => None,
        Auth::BadBasic => {
            return (
                finish(shared, Reply::unauthenticated(), false, false, head),
                None,
            );
        }
        Auth::BadBearer => {
            return (
                finish(shared, Reply::invalid_token(), false, false, head),
                None,
            );
        }
    };
    let Some(route) = parse_route(method, path) else {
        return (
            finish(shared, Reply::invalid_endpoint(), false, false, head),
            role,
        );
    };
    let need = route.need();
    if role.is_none() && need != Need::Anyone {
        return (
            finish(shared, Reply::unauthenticated(), false, false, head),
            role,
        );
    }
    // Anonymous requests do not count toward the account's limit (§7).
    let mut remaining = None;
    if let (Some(limiter), Some(_)) = (&shared.limiter, role) {
        let mut l = lock(limiter);
        match l.charge(Instant::now()) {
            Charge::Allowed { remaining: r } => remaining = Some((l.per_window(), r)),
            Charge::Limited { retry_after } => {
                let per = l.per_window();
                drop(l);
                let reply = Reply::rate_limited(retry_after)
                    .header(
                        header::HeaderName::from_static("x-rate-limit"),
                        per.to_string(),
                    )
                    .header(
                        header::HeaderName::from_static("x-rate-limit-remaining"),
                        "0",
                    );
                return (finish(shared, reply, true, false, head), role);
            }
        }
    }
    let fault = lock(&shared.faults).take(path);
    let mut truncate = false;
    let mut reset = false;
    let early = |reply: Reply| {
        with_budget(
            finish(shared, reply, remaining.is_some(), false, head),
            remaining,
        )
    };
    match fault {
        Some(Fault::Fail(status)) => return (early(Reply::failure(status)), role),
        Some(Fault::RateLimited(retry_after)) => {
            // The recorded shape: the 429 itself says `remaining: 0`.
            let per = shared
                .limiter
                .as_ref()
                .map(|l| lock(l).per_window())
                .unwrap_or(700);
            let mut reply = Reply::rate_limited(0)
                .header(
                    header::HeaderName::from_static("x-rate-limit"),
                    per.to_string(),
                )
                .header(
                    header::HeaderName::from_static("x-rate-limit-remaining"),
                    "0",
                );
            reply.headers.retain(|(n, _)| *n != header::RETRY_AFTER);
            reply = reply.header(header::RETRY_AFTER, retry_after);
            return (finish(shared, reply, true, false, head), role);
        }
        Some(Fault::EchoAuthorization(status)) => {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let reply = Reply::json(
                code,
                json!({"error": "InvalidRequest",
                       "description": format!("Invalid request: Authorization: {auth}"),
                       "details": {"headers": {"authorization": [auth]}}}),
            );
            return (early(reply), role);
        }
        Some(Fault::Garbage) => {
            let reply = Reply {
                status: StatusCode::OK,
                body: Payload::Text(
                    "application/json; charset=utf-8",
                    "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
                ),
                headers: Vec::new(),
            };
            return (early(reply), role);
        }
        Some(Fault::Reset) => reset = true,
        Some(Fault::Truncate) => truncate = true,
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let reply = if !allowed(need, role) {
        Reply::forbidden()
    } else {
        let q = query_pairs(query);
        let urls = Urls {
            api: &shared.api_base,
            public: &shared.public_base,
        };
        let link_url = format!("{}{}", shared.api_base, path);
        let mut world = lock(&shared.world);
        let ctx = Ctx {
            role,
            q: &q,
            urls: &urls,
            link_url: &link_url,
        };
        let reply = endpoint(shared, &mut world, &route, &ctx);
        // Scripted races: an article archived right after this answer (between the export
        // and the translations request of a sync, say).
        let mut triggers = lock(&shared.archive_after);
        triggers.retain(|(p, id)| {
            if path.contains(p.as_str()) {
                world.archive(*id);
                false
            } else {
                true
            }
        });
        reply
    };
    let resp = with_budget(
        finish(shared, reply, remaining.is_some(), truncate, head),
        remaining,
    );
    (if reset { cut_off(resp).await } else { resp }, role)
}

/// The answer's status and headers, then half its body and a broken connection.
async fn cut_off(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by the emulator",
        )),
    ];
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)))
}

/// Adds the common API headers; the rate-limit pair when a budget is configured (`charged`
/// responses already carry theirs).
fn finish(shared: &Shared, reply: Reply, charged: bool, truncate: bool, head: bool) -> Response {
    let mut resp = reply.into_response(truncate, head);
    let h = resp.headers_mut();
    h.insert("x-zendesk-api-version", HeaderValue::from_static("v2"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, private, must-revalidate"),
    );
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-request-id", v);
    }
    if !charged && let Some(limiter) = &shared.limiter {
        let mut l = lock(limiter);
        let (per, left) = (l.per_window(), l.remaining(Instant::now()));
        drop(l);
        set_budget(h, per, left);
    }
    resp
}

fn set_budget(h: &mut HeaderMap, per: u32, left: u32) {
    h.insert("x-rate-limit", HeaderValue::from(per));
    h.insert("x-rate-limit-remaining", HeaderValue::from(left));
}

fn with_budget(mut resp: Response, remaining: Option<(u32, u32)>) -> Response {
    if let Some((per, left)) = remaining {
        set_budget(resp.headers_mut(), per, left);
    }
    resp
}

/// What every endpoint handler needs to know about the request.
struct Ctx<'a> {
    role: Option<Role>,
    q: &'a [(String, String)],
    urls: &'a Urls<'a>,
    link_url: &'a str,
}

/// Whether the caller may see this translation (§5.3; drafts only for agents and admins).
fn visible(world: &World, role: Option<Role>, a: &ArticleRec, t: &TranslationRec) -> bool {
    match role {
        Some(Role::Admin | Role::Agent) => true,
        Some(Role::EndUser) => {
            !t.draft
                && (a.user_segment_ids.is_empty()
                    || a.user_segment_ids.iter().any(|s| {
                        world.segment(*s).is_some_and(|seg| {
                            seg.get("built_in").and_then(Value::as_bool) == Some(true)
                                && seg.get("user_type").and_then(Value::as_str)
                                    == Some("signed_in_users")
                        })
                    }))
        }
        None => !t.draft && a.user_segment_ids.is_empty(),
    }
}

fn endpoint(shared: &Shared, world: &mut World, route: &Route, ctx: &Ctx) -> Reply {
    match route {
        Route::Export => export(shared, world, ctx),
        Route::Locales => {
            Reply::ok(json!({"default_locale": world.default_locale, "locales": world.locales}))
        }
        Route::UserSegments => {
            if shared.segments_forbidden.load(Ordering::Relaxed) {
                return Reply::forbidden();
            }
            let items = world
                .user_segments
                .iter()
                .map(|s| {
                    (
                        (
                            SortVal::Int(0),
                            s.get("id").and_then(Value::as_u64).unwrap_or(0),
                        ),
                        Value::Object(s.clone()),
                    )
                })
                .collect();
            list(items, false, "user_segments", ctx, ("id", "asc"), |v| v)
        }
        Route::UserSegment(id) => {
            if shared.segments_forbidden.load(Ordering::Relaxed) {
                return Reply::forbidden();
            }
            match world.segment(*id) {
                Some(s) => Reply::ok(json!({"user_segment": s})),
                None => Reply::record_not_found(),
            }
        }
        Route::Brands => {
            let b = world.brand_json(ctx.urls);
            let id = b.get("id").and_then(Value::as_u64).unwrap_or(0);
            list(
                vec![((SortVal::Int(0), id), b)],
                false,
                "brands",
                ctx,
                ("id", "asc"),
                |v| v,
            )
        }
        Route::Brand(id) => {
            let b = world.brand_json(ctx.urls);
            if b.get("id").and_then(Value::as_u64) == Some(*id) {
                Reply::ok(json!({"brand": b}))
            } else {
                Reply::record_not_found()
            }
        }
        Route::Articles { locale, scope } => {
            articles(shared, world, locale.as_deref(), *scope, ctx)
        }
        Route::Article { locale, id } => {
            let Some(a) = world.live(*id) else {
                return Reply::record_not_found();
            };
            let t = match locale {
                Some(l) => a.translation(l),
                None => a.source(),
            };
            match t.filter(|t| visible(world, ctx.role, a, t)) {
                Some(t) => {
                    let embed =
                        includes(ctx.q, "translations").then(|| translations_of(world, a, ctx));
                    Reply::ok(json!({"article": world.article_json(a, t, ctx.urls, embed)}))
                }
                None => Reply::record_not_found(),
            }
        }
        Route::ArchiveArticle(id) => {
            if world.live(*id).is_none() {
                return Reply::record_not_found();
            }
            world.archive(*id);
            Reply {
                status: StatusCode::NO_CONTENT,
                body: Payload::Empty,
                headers: Vec::new(),
            }
        }
        Route::Translations(id) => {
            let Some(a) = world.live(*id) else {
                return Reply::record_not_found();
            };
            if !a
                .translations
                .iter()
                .any(|t| visible(world, ctx.role, a, t))
            {
                return Reply::record_not_found();
            }
            let locales: Option<Vec<&str>> =
                param(ctx.q, "locales").map(|l| l.split(',').map(str::trim).collect());
            let flag = |name: &str| param(ctx.q, name).and_then(|v| v.parse::<bool>().ok());
            let (draft, outdated) = (flag("draft"), flag("outdated"));
            let items = a
                .translations
                .iter()
                .filter(|t| visible(world, ctx.role, a, t))
                .filter(|t| {
                    locales
                        .as_ref()
                        .is_none_or(|ls| ls.contains(&t.locale.as_str()))
                })
                .filter(|t| draft.is_none_or(|d| t.draft == d))
                .filter(|t| outdated.is_none_or(|o| t.outdated == o))
                .map(|t| ((SortVal::Int(0), t.id), t))
                .collect::<Vec<_>>();
            let mut items = items;
            items.sort_by(|x, y| x.0.cmp(&y.0));
            list(items, false, "translations", ctx, ("id", "asc"), |t| {
                world.translation_json(a, t, ctx.urls)
            })
        }
        Route::Translation(id, locale) => {
            let Some(a) = world.live(*id) else {
                return Reply::record_not_found();
            };
            match a
                .translation(locale)
                .filter(|t| visible(world, ctx.role, a, t))
            {
                Some(t) => {
                    Reply::ok(json!({"translation": world.translation_json(a, t, ctx.urls)}))
                }
                None => Reply::record_not_found(),
            }
        }
        Route::MissingTranslations(id) => {
            let Some(a) = world.live(*id) else {
                return Reply::record_not_found();
            };
            let missing: Vec<&String> = world
                .locales
                .iter()
                .filter(|l| a.translation(l).is_none())
                .collect();
            Reply::ok(json!({"locales": missing}))
        }
        Route::Sections { locale, category } => {
            let loc = locale
                .clone()
                .unwrap_or_else(|| world.default_locale.clone());
            let looping = shared.sections_loop.load(Ordering::Relaxed);
            // A looping listing serves its first page again whatever cursor it is given.
            let q: Vec<(String, String)> = ctx
                .q
                .iter()
                .filter(|(k, _)| !(looping && k == "page[after]"))
                .cloned()
                .collect();
            let ctx = Ctx { q: &q, ..*ctx };
            let items = world
                .sections
                .iter()
                .filter(|s| {
                    category.is_none_or(|c| s.get("category_id").and_then(Value::as_u64) == Some(c))
                })
                .map(|s| {
                    (
                        position_key(s),
                        world.container_json("sections", s, &loc, ctx.urls),
                    )
                })
                .collect();
            let mut reply = list(
                sorted(items),
                false,
                "sections",
                &ctx,
                ("position", "asc"),
                |v| v,
            );
            if let Payload::Json(Value::Object(body)) = &mut reply.body {
                if includes(ctx.q, "categories") {
                    // Sideloaded: the categories of this page's sections, top-level.
                    let ids: Vec<u64> = body
                        .get("sections")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.get("category_id").and_then(Value::as_u64))
                        .collect();
                    let cats: Vec<Value> = world
                        .categories
                        .iter()
                        .filter(|c| {
                            c.get("id")
                                .and_then(Value::as_u64)
                                .is_some_and(|id| ids.contains(&id))
                        })
                        .map(|c| world.container_json("categories", c, &loc, ctx.urls))
                        .collect();
                    body.insert("categories".into(), Value::Array(cats));
                }
                if looping && let Some(meta) = body.get_mut("meta").and_then(Value::as_object_mut) {
                    meta.insert("has_more".into(), Value::Bool(true));
                }
            }
            reply
        }
        Route::Categories { locale } => {
            let loc = locale
                .clone()
                .unwrap_or_else(|| world.default_locale.clone());
            let items = world
                .categories
                .iter()
                .map(|c| {
                    (
                        position_key(c),
                        world.container_json("categories", c, &loc, ctx.urls),
                    )
                })
                .collect();
            list(
                sorted(items),
                false,
                "categories",
                ctx,
                ("position", "asc"),
                |v| v,
            )
        }
        Route::Section { locale, id } => {
            container(world, "sections", "section", locale.as_deref(), *id, ctx)
        }
        Route::Category { locale, id } => {
            container(world, "categories", "category", locale.as_deref(), *id, ctx)
        }
    }
}

fn includes(q: &[(String, String)], what: &str) -> bool {
    param(q, "include").is_some_and(|v| v.split(',').any(|x| x.trim() == what))
}

fn translations_of(world: &World, a: &ArticleRec, ctx: &Ctx) -> Vec<Value> {
    a.translations
        .iter()
        .filter(|t| visible(world, ctx.role, a, t))
        .map(|t| world.translation_json(a, t, ctx.urls))
        .collect()
}

fn position_key(o: &serde_json::Map<String, Value>) -> Key {
    (
        SortVal::Int(o.get("position").and_then(Value::as_i64).unwrap_or(0)),
        o.get("id").and_then(Value::as_u64).unwrap_or(0),
    )
}

fn sorted(mut items: Vec<(Key, Value)>) -> Vec<(Key, Value)> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

fn container(
    world: &World,
    kind: &str,
    one: &str,
    locale: Option<&str>,
    id: u64,
    ctx: &Ctx,
) -> Reply {
    let objs = if kind == "sections" {
        &world.sections
    } else {
        &world.categories
    };
    let loc = locale.unwrap_or(&world.default_locale);
    match objs
        .iter()
        .find(|o| o.get("id").and_then(Value::as_u64) == Some(id))
    {
        Some(o) => Reply::ok(json!({ one: world.container_json(kind, o, loc, ctx.urls) })),
        None => Reply::record_not_found(),
    }
}

/// A paginated list response under `key`, with the `Link` header of cursor mode. Only the
/// page's items are rendered, so paging through a large world stays linear.
fn list<T>(
    items: Vec<(Key, T)>,
    desc: bool,
    key: &str,
    ctx: &Ctx,
    sort: (&str, &str),
    render: impl Fn(T) -> Value,
) -> Reply {
    let req = match pagination::parse(ctx.q) {
        Ok(r) => r,
        Err(e) => return Reply::bad_request("InvalidPaginationParameter", e.0),
    };
    let keep: Vec<(String, String)> = ctx
        .q
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "page" | "per_page" | "page[size]" | "page[after]" | "page[before]"
            )
        })
        .cloned()
        .collect();
    let base = LinkBase {
        url: ctx.link_url,
        keep: &keep,
    };
    let p = pagination::paginate(items, desc, &req, &base, sort);
    let mut body = p.fields;
    body.insert(
        key.to_string(),
        Value::Array(p.items.into_iter().map(render).collect()),
    );
    let mut reply = Reply::ok(Value::Object(body));
    if let (Some(next), PageReq::Cursor { .. }) = (p.next, &req) {
        reply = reply.header(header::LINK, format!("<{next}>; rel=\"next\""));
    }
    reply
}

/// A sorted listing, from the cache while the world has not changed since it was built.
fn cached(
    shared: &Shared,
    world: &World,
    key: String,
    build: impl FnOnce() -> Vec<(Key, u64)>,
) -> Arc<Vec<(Key, u64)>> {
    if let Some((v, items)) = lock(&shared.cache).get(&key)
        && *v == world.version
    {
        return items.clone();
    }
    let items = Arc::new(build());
    let mut c = lock(&shared.cache);
    if c.len() > 64 {
        c.clear();
    }
    c.insert(key, (world.version, items.clone()));
    items
}

fn role_class(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Admin | Role::Agent) => "staff",
        Some(Role::EndUser) => "end_user",
        None => "anonymous",
    }
}

/// `/articles` and `/{locale}/articles` (optionally within a section or category).
fn articles(
    shared: &Shared,
    world: &World,
    locale: Option<&str>,
    scope: Scope,
    ctx: &Ctx,
) -> Reply {
    let start_time = match param(ctx.q, "start_time") {
        Some(s) => match s.parse::<i64>() {
            Ok(t) => Some(t),
            Err(_) => {
                return Reply::bad_request(
                    "InvalidParameter",
                    format!("start_time must be epoch seconds, got {s:?}"),
                );
            }
        },
        None => None,
    };
    let labels: Vec<&str> = param(ctx.q, "label_names")
        .map(|l| l.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let default_sort = if start_time.is_some() {
        "updated_at"
    } else {
        "position"
    };
    let sort_by = param(ctx.q, "sort_by").unwrap_or(default_sort);
    if !matches!(
        sort_by,
        "position" | "title" | "created_at" | "updated_at" | "edited_at"
    ) {
        return Reply::bad_request(
            "InvalidParameter",
            format!(
                "sort_by {sort_by:?} is not one of position, title, created_at, updated_at, edited_at"
            ),
        );
    }
    let desc = param(ctx.q, "sort_order") == Some("desc");
    let section_category = |sid: Option<u64>| {
        world
            .sections
            .iter()
            .find(|s| sid.is_some() && s.get("id").and_then(Value::as_u64) == sid)
            .and_then(|s| s.get("category_id").and_then(Value::as_u64))
    };
    fn shown<'w>(a: &'w ArticleRec, locale: Option<&str>) -> Option<&'w TranslationRec> {
        match locale {
            Some(l) => a.translation(l),
            None => a.source(),
        }
    }
    let build = || {
        let mut items: Vec<(Key, u64)> = Vec::new();
        for a in world.articles.values().filter(|a| !a.archived) {
            let in_scope = match scope {
                Scope::All => true,
                Scope::Section(s) => a.section_id == Some(s),
                Scope::Category(c) => section_category(a.section_id) == Some(c),
            };
            let Some(t) = shown(a, locale).filter(|t| in_scope && visible(world, ctx.role, a, t))
            else {
                continue;
            };
            if start_time.is_some_and(|s| a.updated_at() < s)
                || !labels.iter().all(|l| a.label_names.iter().any(|x| x == l))
            {
                continue;
            }
            let sv = match sort_by {
                "title" => SortVal::Text(t.title.clone().unwrap_or_default().to_lowercase()),
                "created_at" => SortVal::Int(a.created_at),
                "updated_at" => SortVal::Int(a.updated_at()),
                "edited_at" => SortVal::Int(t.updated_at),
                _ => SortVal::Int(a.position),
            };
            items.push(((sv, a.id), a.id));
        }
        items.sort_by(|x, y| if desc { y.0.cmp(&x.0) } else { x.0.cmp(&y.0) });
        items
    };
    let keys = if scope == Scope::All && labels.is_empty() && start_time.is_none() {
        cached(
            shared,
            world,
            format!(
                "articles:{locale:?}:{sort_by}:{desc}:{}",
                role_class(ctx.role)
            ),
            build,
        )
    } else {
        Arc::new(build())
    };
    let embed = includes(ctx.q, "translations");
    list(
        keys.as_ref().clone(),
        desc,
        "articles",
        ctx,
        (sort_by, if desc { "desc" } else { "asc" }),
        |id| {
            let Some(a) = world.articles.get(&id) else {
                return Value::Null;
            };
            let Some(t) = shown(a, locale) else {
                return Value::Null;
            };
            let embedded = embed.then(|| translations_of(world, a, ctx));
            world.article_json(a, t, ctx.urls, embedded)
        },
    )
}

/// The incremental export (§1): inclusive `start_time`, ordered by `updated_at` then id,
/// `next_page` restarting at the last item's second (so the boundary repeats, and a second
/// holding more than a page repeats forever), `end_time: 1` on an empty page. Drafts are in,
/// archived articles are out. Raw records (fault injection) are served at their second.
fn export(shared: &Shared, world: &World, ctx: &Ctx) -> Reply {
    let Some(start) = param(ctx.q, "start_time").and_then(|s| s.parse::<i64>().ok()) else {
        return Reply::bad_request("InvalidParameter", "start_time is required: epoch seconds");
    };
    let all = cached(shared, world, "export".into(), || {
        let mut v: Vec<(Key, u64)> = world
            .articles
            .values()
            .filter(|a| !a.archived && a.source().is_some())
            .map(|a| ((SortVal::Int(a.updated_at()), a.id), a.id))
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    });
    let from = all.partition_point(|((sv, _), _)| *sv < SortVal::Int(start));
    // Raw records sort after the articles of their second (id u64::MAX - index).
    let mut matching: Vec<(i64, u64, Option<usize>)> = Vec::new();
    let raw: Vec<(i64, u64, Option<usize>)> = world
        .raw_records
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t >= start)
        .map(|(i, (t, _))| (*t, u64::MAX - i as u64, Some(i)))
        .collect();
    let page_size = shared.page_size.max(1);
    let needed = page_size + 1;
    let (mut ai, mut ri) = (from, 0);
    let mut raw_sorted = raw;
    raw_sorted.sort();
    while matching.len() < needed && (ai < all.len() || ri < raw_sorted.len()) {
        let a = all.get(ai).map(|((sv, id), _)| match sv {
            SortVal::Int(t) => (*t, *id),
            SortVal::Text(_) => (i64::MAX, *id),
        });
        let r = raw_sorted.get(ri).map(|(t, k, _)| (*t, *k));
        match (a, r) {
            (Some(x), Some(y)) if y < x => {
                matching.push(raw_sorted[ri]);
                ri += 1;
            }
            (Some(x), _) => {
                matching.push((x.0, x.1, None));
                ai += 1;
            }
            (None, Some(_)) => {
                matching.push(raw_sorted[ri]);
                ri += 1;
            }
            (None, None) => break,
        }
    }
    let more = matching.len() > page_size;
    matching.truncate(page_size);
    let end_time = matching.last().map(|m| m.0).unwrap_or(1);
    let next_page = more.then(|| {
        format!(
            "{}/api/v2/help_center/incremental/articles.json?start_time={end_time}",
            ctx.urls.api
        )
    });
    let articles: Vec<Value> = matching
        .iter()
        .filter_map(|(_, id, raw)| match raw {
            Some(i) => world.raw_records.get(*i).map(|(_, v)| v.clone()),
            None => world
                .articles
                .get(id)
                .and_then(|a| a.source().map(|t| world.article_json(a, t, ctx.urls, None))),
        })
        .collect();
    let end_time = lock(&shared.export_end_time).unwrap_or(end_time);
    Reply::ok(
        json!({"articles": articles, "count": articles.len(), "next_page": next_page, "end_time": end_time}),
    )
}

// ---- public pages ----

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(status: StatusCode, lang: &str, title: &str, inner: &str) -> Reply {
    let t = escape(title);
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body><main><h1>{t}</h1>\n{inner}\n</main></body></html>\n",
        escape(lang)
    );
    Reply {
        status,
        body: Payload::Text("text/html; charset=utf-8", page),
        headers: Vec::new(),
    }
}

fn page_not_found() -> Reply {
    html(
        StatusCode::NOT_FOUND,
        "en-us",
        "Oops, we couldn't find that page",
        "<p>The page you were looking for does not exist.</p>",
    )
}

/// `html_url` targets: published articles, and section/category pages listing them.
fn public_page(shared: &Shared, page: &PageRoute) -> Reply {
    let world = lock(&shared.world);
    let urls = Urls {
        api: &shared.api_base,
        public: &shared.public_base,
    };
    let link = |a: &ArticleRec, t: &TranslationRec| {
        let v = world.article_json(a, t, &urls, None);
        let href = v
            .get("html_url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        format!(
            "<li><a href=\"{}\">{}</a></li>",
            escape(&href),
            escape(t.title.as_deref().unwrap_or_default())
        )
    };
    match page {
        PageRoute::Article(locale, id) => {
            let found = world
                .live(*id)
                .and_then(|a| a.translation(locale).map(|t| (a, t)))
                .filter(|(_, t)| !t.draft);
            match found {
                Some((a, t)) => {
                    let meta = format!("<p class=\"meta\">Updated {}</p>", fmt_ts(a.updated_at()));
                    html(
                        StatusCode::OK,
                        locale,
                        t.title.as_deref().unwrap_or_default(),
                        &format!(
                            "{meta}\n<article>{}</article>",
                            t.body.as_ref().map(|b| b.text()).unwrap_or_default()
                        ),
                    )
                }
                None => page_not_found(),
            }
        }
        PageRoute::Section(locale, id) => {
            let Some(s) = world
                .sections
                .iter()
                .find(|s| s.get("id").and_then(Value::as_u64) == Some(*id))
            else {
                return page_not_found();
            };
            let items: String = world
                .articles
                .values()
                .filter(|a| !a.archived && a.section_id == Some(*id))
                .filter_map(|a| {
                    a.translation(locale)
                        .filter(|t| visible(&world, None, a, t))
                        .map(|t| link(a, t))
                })
                .collect();
            html(
                StatusCode::OK,
                locale,
                s.get("name").and_then(Value::as_str).unwrap_or_default(),
                &format!("<ul>{items}</ul>"),
            )
        }
        PageRoute::Category(locale, id) => {
            let Some(c) = world
                .categories
                .iter()
                .find(|c| c.get("id").and_then(Value::as_u64) == Some(*id))
            else {
                return page_not_found();
            };
            let items: String = world
                .sections
                .iter()
                .filter(|s| s.get("category_id").and_then(Value::as_u64) == Some(*id))
                .map(|s| {
                    let v = world.container_json("sections", s, locale, &urls);
                    format!(
                        "<li><a href=\"{}\">{}</a></li>",
                        escape(
                            v.get("html_url")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                        ),
                        escape(s.get("name").and_then(Value::as_str).unwrap_or_default())
                    )
                })
                .collect();
            html(
                StatusCode::OK,
                locale,
                c.get("name").and_then(Value::as_str).unwrap_or_default(),
                &format!("<ul>{items}</ul>"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<Route> {
        parse_route(&Method::GET, path)
    }

    #[test]
    fn json_suffix_and_locale_are_optional() {
        let all = Some(Route::Articles {
            locale: None,
            scope: Scope::All,
        });
        assert_eq!(get("/api/v2/help_center/articles"), all);
        assert_eq!(get("/api/v2/help_center/articles.json"), all);
        assert_eq!(
            get("/api/v2/help_center/pt-br/articles.json"),
            Some(Route::Articles {
                locale: Some("pt-br".into()),
                scope: Scope::All
            })
        );
        assert_eq!(
            get("/api/v2/help_center/articles/42.json"),
            Some(Route::Article {
                locale: None,
                id: 42
            })
        );
        assert_eq!(
            get("/api/v2/help_center/de/articles/42"),
            Some(Route::Article {
                locale: Some("de".into()),
                id: 42
            })
        );
        assert_eq!(
            get("/api/v2/help_center/incremental/articles.json"),
            Some(Route::Export)
        );
        assert_eq!(
            get("/api/v2/help_center/articles/42/translations.json"),
            Some(Route::Translations(42))
        );
        assert_eq!(
            get("/api/v2/help_center/articles/42/translations/de"),
            Some(Route::Translation(42, "de".into()))
        );
        assert_eq!(
            get("/api/v2/help_center/articles/42/translations/missing"),
            Some(Route::MissingTranslations(42))
        );
        assert_eq!(
            get("/api/v2/help_center/en-us/sections/7/articles"),
            Some(Route::Articles {
                locale: Some("en-us".into()),
                scope: Scope::Section(7)
            })
        );
        assert_eq!(
            get("/api/v2/help_center/categories/3/sections"),
            Some(Route::Sections {
                locale: None,
                category: Some(3)
            })
        );
        assert_eq!(
            get("/api/v2/help_center/user_segments.json"),
            Some(Route::UserSegments)
        );
        assert_eq!(get("/api/v2/brands.json"), Some(Route::Brands));
        assert_eq!(
            parse_route(&Method::DELETE, "/api/v2/help_center/articles/9"),
            Some(Route::ArchiveArticle(9))
        );
    }

    #[test]
    fn unknown_paths_are_not_routes() {
        for p in [
            "/api/v2/help_center/articles/search",
            "/api/v2/help_center/Foo/articles",
            "/api/v2/tickets",
            "/api/v1/help_center/articles",
            "/",
        ] {
            assert_eq!(get(p), None, "{p}");
        }
        assert_eq!(
            parse_route(&Method::POST, "/api/v2/help_center/articles"),
            None
        );
    }

    #[test]
    fn public_page_ids_ignore_the_slug() {
        assert_eq!(
            parse_page("/hc/en-us/articles/360001-Some-Title-"),
            Some(PageRoute::Article("en-us".into(), 360001))
        );
        assert_eq!(
            parse_page("/hc/de/articles/5"),
            Some(PageRoute::Article("de".into(), 5))
        );
        assert_eq!(
            parse_page("/hc/de/sections/5-Billing"),
            Some(PageRoute::Section("de".into(), 5))
        );
        assert_eq!(parse_page("/hc/de/articles/x5"), None);
    }

    fn creds() -> Vec<Credential> {
        vec![
            Credential::ApiToken {
                email: "a@x.test".into(),
                token: "tok".into(),
                role: Role::Admin,
            },
            Credential::OAuth {
                token: "oa".into(),
                role: Role::Agent,
            },
        ]
    }

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn basic(user_pass: &str) -> HeaderMap {
        with_auth(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        ))
    }

    #[test]
    fn authentication_accepts_api_tokens_and_bearer_only() {
        assert_eq!(authenticate(&HeaderMap::new(), &creds()), Auth::Anonymous);
        assert_eq!(
            authenticate(&basic("a@x.test/token:tok"), &creds()),
            Auth::User(Role::Admin)
        );
        assert_eq!(
            authenticate(&basic("A@X.test/token:tok"), &creds()),
            Auth::User(Role::Admin),
            "emails are case-insensitive"
        );
        assert_eq!(
            authenticate(&basic("a@x.test/token:nope"), &creds()),
            Auth::BadBasic
        );
        assert_eq!(
            authenticate(&basic("a@x.test:tok"), &creds()),
            Auth::BadBasic,
            "password access is off"
        );
        assert_eq!(
            authenticate(&with_auth("Basic %%%"), &creds()),
            Auth::BadBasic
        );
        assert_eq!(
            authenticate(&with_auth("Bearer oa"), &creds()),
            Auth::User(Role::Agent)
        );
        assert_eq!(
            authenticate(&with_auth("Bearer expired"), &creds()),
            Auth::BadBearer
        );
        assert_eq!(
            authenticate(&with_auth("Digest x"), &creds()),
            Auth::BadBasic
        );
    }

    #[test]
    fn access_rules() {
        assert!(allowed(Need::Anyone, None));
        assert!(!allowed(Need::SignedIn, None));
        assert!(allowed(Need::SignedIn, Some(Role::EndUser)));
        assert!(!allowed(Need::Agent, Some(Role::EndUser)));
        assert!(allowed(Need::Agent, Some(Role::Agent)));
        assert!(!allowed(Need::Admin, Some(Role::Agent)));
        assert!(allowed(Need::Admin, Some(Role::Admin)));
        assert_eq!(
            Route::Articles {
                locale: None,
                scope: Scope::All
            }
            .need(),
            Need::Agent
        );
        assert_eq!(
            Route::Articles {
                locale: Some("de".into()),
                scope: Scope::All
            }
            .need(),
            Need::Anyone
        );
    }
}
