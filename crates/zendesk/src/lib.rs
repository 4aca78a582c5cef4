//! The Help Center API client: auth, timeouts, retries, rate-limit pacing, pagination.
//!
//! Every request goes through [`Client::get_json`], which retries 429 (honouring `Retry-After`
//! up to a cap), 5xx, timeouts and malformed bodies with jittered backoff, and slows down when
//! the account's remaining budget falls under the configured reserve. Errors name the path and
//! what to fix, never a credential.

pub mod retry;
mod secret;
pub mod types;

use retry::{RetryPolicy, parse_retry_after};
pub use secret::Secret;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use types::*;

/// How helpdex authenticates to Zendesk.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `email/token:API_TOKEN` Basic auth.
    ApiToken {
        /// Agent or admin email.
        email: String,
        /// API token.
        token: Secret,
    },
    /// OAuth access token, sent as Bearer.
    OAuth(Secret),
    /// No credentials: public content only (the export is not available).
    Anonymous,
}

impl Auth {
    fn describe(&self) -> &'static str {
        match self {
            Auth::ApiToken { .. } => "the API token (--zendesk-email / --zendesk-token)",
            Auth::OAuth(_) => "the OAuth token (--zendesk-oauth-token)",
            Auth::Anonymous => {
                "no credentials were given (set --zendesk-email and --zendesk-token)"
            }
        }
    }
}

/// Errors of the Zendesk layer.
#[derive(Debug, Error)]
pub enum ZendeskError {
    /// 401: wrong credentials.
    #[error("zendesk rejected the credentials on {path} (401): check {what}")]
    Unauthorized {
        /// Request path.
        path: String,
        /// Which credential to check.
        what: &'static str,
    },
    /// 403: authenticated but not allowed.
    #[error("zendesk refused access to {path} (403): {hint}")]
    Forbidden {
        /// Request path.
        path: String,
        /// Which permission is missing.
        hint: String,
    },
    /// 404 on a path that should exist.
    #[error("zendesk answered 404 for {path}")]
    NotFound {
        /// Request path.
        path: String,
    },
    /// Rate limited for longer than the configured cap allows.
    #[error(
        "zendesk rate limit on {path}: asked to wait {wait:?}, more than the cap of {cap:?}; the next run resumes from the saved cursor"
    )]
    RateLimited {
        /// Request path.
        path: String,
        /// Requested wait.
        wait: Duration,
        /// Configured cap.
        cap: Duration,
    },
    /// 5xx after all retries.
    #[error("zendesk server error {status} on {path} after {attempts} attempts")]
    Server {
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// Other 4xx.
    #[error("zendesk answered {status} for {path}: {detail}")]
    Client {
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Excerpt of the body.
        detail: String,
    },
    /// Connection failure or timeout after all retries.
    #[error("could not reach zendesk at {path} after {attempts} attempts: {detail}")]
    Transport {
        /// Request path.
        path: String,
        /// Attempts made.
        attempts: u32,
        /// What failed (timeout, connection refused...).
        detail: String,
    },
    /// Body that is not the JSON expected, after all retries.
    #[error("malformed response from zendesk on {path} after {attempts} attempts: {detail}")]
    Malformed {
        /// Request path.
        path: String,
        /// Attempts made.
        attempts: u32,
        /// Parser message.
        detail: String,
    },
    /// The configured URL is unusable.
    #[error("invalid zendesk url: {0}")]
    BadUrl(String),
}

impl ZendeskError {
    /// Authentication or permission problems: stop the source, change nothing.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ZendeskError::Unauthorized { .. } | ZendeskError::Forbidden { .. }
        )
    }
}

/// Counters of one client, reported per source by `sync --json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RequestStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests that were retried.
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Seconds spent waiting on rate limits (Retry-After and reserve pacing).
    pub rate_limit_wait_secs: f64,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL such as `https://acme.zendesk.com` (any http(s) URL).
    pub base_url: String,
    /// Credentials.
    pub auth: Auth,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retry and pacing policy.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults for a base URL and credentials.
    pub fn new(base_url: impl Into<String>, auth: Auth) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            auth,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// A Help Center API client for one help center.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    auth: Auth,
    retry: RetryPolicy,
    stats: Arc<Mutex<RequestStats>>,
    pace: Arc<Mutex<Option<Duration>>>,
}

/// A page of a cursor-paginated list.
#[derive(serde::Deserialize)]
struct CursorPage<T> {
    #[serde(flatten)]
    items: std::collections::HashMap<String, serde_json::Value>,
    #[serde(default)]
    meta: Option<Meta>,
    #[serde(skip)]
    _t: std::marker::PhantomData<T>,
}

impl Client {
    /// Builds a client; fails only on an unusable base URL.
    pub fn new(cfg: ClientConfig) -> Result<Client, ZendeskError> {
        let mut base = url::Url::parse(cfg.base_url.trim())
            .map_err(|e| ZendeskError::BadUrl(format!("{}: {e}", cfg.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(ZendeskError::BadUrl(format!(
                "{}: expected http(s)://host, e.g. https://acme.zendesk.com",
                cfg.base_url
            )));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "helpdex/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/helpdex)"
            ))
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| ZendeskError::BadUrl(e.to_string()))?;
        Ok(Client {
            http,
            base,
            auth: cfg.auth,
            retry: cfg.retry,
            stats: Arc::default(),
            pace: Arc::default(),
        })
    }

    /// Request counters so far.
    pub fn stats(&self) -> RequestStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Whether the client holds credentials.
    pub fn is_authenticated(&self) -> bool {
        !matches!(self.auth, Auth::Anonymous)
    }

    fn url(&self, path: &str) -> Result<url::Url, ZendeskError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ZendeskError::BadUrl(e.to_string()))
    }

    fn bump(&self, f: impl FnOnce(&mut RequestStats)) {
        f(&mut self.stats.lock().expect("stats lock"));
    }

    /// GET `path` with `query`, retrying what is transient, and decode the JSON body.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ZendeskError> {
        let url = self.url(path)?;
        let shown = url.path().to_string();
        let mut attempt = 0u32;
        let mut limited = 0u32;
        loop {
            attempt += 1;
            let pause = self.pace.lock().expect("pace lock").take();
            if let Some(p) = pause {
                tracing::info!(
                    pause_ms = p.as_millis() as u64,
                    "rate-limit budget under the reserve; pausing"
                );
                tokio::time::sleep(p).await;
                self.bump(|s| s.rate_limit_wait_secs += p.as_secs_f64());
            }
            let mut req = self.http.get(url.clone()).query(query);
            req = match &self.auth {
                Auth::ApiToken { email, token } => {
                    req.basic_auth(format!("{email}/token"), Some(token.expose()))
                }
                Auth::OAuth(t) => req.bearer_auth(t.expose()),
                Auth::Anonymous => req,
            };
            self.bump(|s| s.requests += 1);
            let started = Instant::now();
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let detail = transport_detail(&e);
                    if attempt >= self.retry.max_attempts {
                        return Err(ZendeskError::Transport {
                            path: shown,
                            attempts: attempt,
                            detail,
                        });
                    }
                    tracing::warn!(path = %shown, attempt, error = %detail, "zendesk request failed; retrying");
                    self.backoff(attempt).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let limit = header("x-rate-limit").and_then(|v| v.parse().ok());
            let remaining = header("x-rate-limit-remaining").and_then(|v| v.parse().ok());
            *self.pace.lock().expect("pace lock") = self.retry.pacing(limit, remaining);
            tracing::debug!(path = %shown, status, elapsed_ms = started.elapsed().as_millis() as u64, "zendesk response");
            match status {
                200..=299 => {
                    let body = match resp.bytes().await {
                        Ok(b) => b,
                        Err(e) => {
                            let detail = transport_detail(&e);
                            if attempt >= self.retry.max_attempts {
                                return Err(ZendeskError::Transport {
                                    path: shown,
                                    attempts: attempt,
                                    detail,
                                });
                            }
                            self.backoff(attempt).await;
                            continue;
                        }
                    };
                    match serde_json::from_slice::<T>(&body) {
                        Ok(v) => return Ok(v),
                        Err(e) => {
                            if attempt >= self.retry.max_attempts {
                                return Err(ZendeskError::Malformed {
                                    path: shown,
                                    attempts: attempt,
                                    detail: e.to_string(),
                                });
                            }
                            tracing::warn!(path = %shown, attempt, error = %e, "malformed zendesk response; retrying");
                            self.backoff(attempt).await;
                        }
                    }
                }
                429 => {
                    limited += 1;
                    self.bump(|s| s.rate_limited += 1);
                    let wait = header("retry-after")
                        .and_then(|v| parse_retry_after(&v, chrono::Utc::now()))
                        .unwrap_or_else(|| {
                            // Airbyte's fallback: one request's share of the minute.
                            Duration::from_secs_f64(60.0 / limit.unwrap_or(60).max(1) as f64)
                        });
                    if wait > self.retry.max_retry_after || limited > self.retry.max_rate_limited {
                        return Err(ZendeskError::RateLimited {
                            path: shown,
                            wait,
                            cap: self.retry.max_retry_after,
                        });
                    }
                    tracing::warn!(path = %shown, wait_ms = wait.as_millis() as u64, "zendesk rate limit (429); waiting as Retry-After says");
                    tokio::time::sleep(wait).await;
                    self.bump(|s| {
                        s.retries += 1;
                        s.rate_limit_wait_secs += wait.as_secs_f64();
                    });
                    attempt -= 1; // a 429 is not a failed attempt
                    continue;
                }
                401 => {
                    return Err(ZendeskError::Unauthorized {
                        path: shown,
                        what: self.auth.describe(),
                    });
                }
                403 => {
                    let hint = if shown.contains("user_segments") {
                        "listing user segments needs a Guide admin (Help Center manager); use an admin's API token".to_string()
                    } else if shown.contains("incremental") {
                        "the incremental export needs an agent or admin account; use an agent's or admin's API token".to_string()
                    } else {
                        "the account behind the credentials lacks permission; use an agent's or admin's API token".to_string()
                    };
                    return Err(ZendeskError::Forbidden { path: shown, hint });
                }
                404 => return Err(ZendeskError::NotFound { path: shown }),
                500..=599 => {
                    if attempt >= self.retry.max_attempts {
                        return Err(ZendeskError::Server {
                            path: shown,
                            status,
                            attempts: attempt,
                        });
                    }
                    tracing::warn!(path = %shown, status, attempt, "zendesk server error; retrying");
                    self.backoff(attempt).await;
                }
                _ => {
                    let text = resp.text().await.unwrap_or_default();
                    let detail: String = text.chars().take(200).collect();
                    return Err(ZendeskError::Client {
                        path: shown,
                        status,
                        detail,
                    });
                }
            }
        }
    }

    async fn backoff(&self, attempt: u32) {
        self.bump(|s| s.retries += 1);
        let d = self.retry.backoff(attempt, rand::random::<f64>());
        tokio::time::sleep(d).await;
    }

    /// One page of the incremental export starting at `start_time` (inclusive).
    pub async fn incremental_page(&self, start_time: i64) -> Result<IncrementalPage, ZendeskError> {
        self.get_json(
            "api/v2/help_center/incremental/articles.json",
            &[("start_time", start_time.to_string())],
        )
        .await
    }

    /// Every item of a cursor-paginated list (`page[size]=100`), following `after_cursor`.
    async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        extra: &[(&str, String)],
    ) -> Result<Vec<T>, ZendeskError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = extra.to_vec();
            q.push(("page[size]", "100".to_string()));
            if let Some(a) = &after {
                q.push(("page[after]", a.clone()));
            }
            let mut page: CursorPage<T> = self.get_json(path, &q).await?;
            let items = page
                .items
                .remove(key)
                .unwrap_or(serde_json::Value::Array(vec![]));
            let items: Vec<T> =
                serde_json::from_value(items).map_err(|e| ZendeskError::Malformed {
                    path: path.to_string(),
                    attempts: 1,
                    detail: e.to_string(),
                })?;
            let n = items.len();
            out.extend(items);
            let meta = page.meta.unwrap_or_default();
            // Zenpy's quirk: a last page can come back empty while has_more was true.
            match (meta.has_more, meta.after_cursor) {
                (true, Some(c)) if n > 0 && after.as_deref() != Some(c.as_str()) => after = Some(c),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Every article (source locale, drafts included), or only those updated at or after
    /// `start_time`, in `locale` when given (then only articles translated into it).
    pub async fn list_articles(
        &self,
        locale: Option<&str>,
        start_time: Option<i64>,
    ) -> Result<Vec<Article>, ZendeskError> {
        let path = match locale {
            Some(l) => format!("api/v2/help_center/{l}/articles.json"),
            None => "api/v2/help_center/articles.json".to_string(),
        };
        let mut q = vec![
            ("sort_by", "updated_at".to_string()),
            ("sort_order", "asc".to_string()),
        ];
        if let Some(t) = start_time {
            q.push(("start_time", t.to_string()));
        }
        self.list_all(&path, "articles", &q).await
    }

    /// One article, `None` when Zendesk answers 404 (archived or deleted).
    pub async fn show_article(&self, id: u64) -> Result<Option<Article>, ZendeskError> {
        #[derive(serde::Deserialize)]
        struct Show {
            article: Article,
        }
        match self
            .get_json::<Show>(&format!("api/v2/help_center/articles/{id}.json"), &[])
            .await
        {
            Ok(s) => Ok(Some(s.article)),
            Err(ZendeskError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every translation of one article, drafts included.
    pub async fn translations(&self, id: u64) -> Result<Vec<Translation>, ZendeskError> {
        self.list_all(
            &format!("api/v2/help_center/articles/{id}/translations.json"),
            "translations",
            &[],
        )
        .await
    }

    /// All user segments; 403 when the token is not a Guide admin's.
    pub async fn user_segments(&self) -> Result<Vec<UserSegment>, ZendeskError> {
        self.list_all(
            "api/v2/help_center/user_segments.json",
            "user_segments",
            &[],
        )
        .await
    }

    /// All sections.
    pub async fn sections(&self) -> Result<Vec<Section>, ZendeskError> {
        self.list_all("api/v2/help_center/sections.json", "sections", &[])
            .await
    }

    /// All categories.
    pub async fn categories(&self) -> Result<Vec<Category>, ZendeskError> {
        self.list_all("api/v2/help_center/categories.json", "categories", &[])
            .await
    }

    /// The help center's locales.
    pub async fn locales(&self) -> Result<Locales, ZendeskError> {
        self.get_json("api/v2/help_center/locales.json", &[]).await
    }

    /// The account's brands.
    pub async fn brands(&self) -> Result<Vec<Brand>, ZendeskError> {
        self.list_all("api/v2/brands.json", "brands", &[]).await
    }
}

fn transport_detail(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, never credentials (they travel in headers).
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "response body interrupted".to_string()
    } else {
        let mut s = e.to_string();
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), "");
        }
        s
    }
}
