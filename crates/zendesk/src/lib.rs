//! The Help Center API client: auth, timeouts, retries, rate-limit pacing, pagination.
//!
//! Every request goes through one loop ([`Client::get_value`]) that retries 429 (honouring
//! `Retry-After` up to a cap), 5xx, timeouts, resets and malformed bodies with jittered backoff,
//! and slows down when the account's remaining budget falls under the configured reserve.
//! Bodies are read with a size cap and decoded off the async workers when large. Pages come
//! back as JSON values so the caller can refuse one bad record without losing the page
//! ([`types`]). Errors name the path and what to fix; anything taken from a response body goes
//! through [`redact::Redactor`] first, so no credential reaches an error, a log or the state
//! database.

mod redact;
pub mod retry;
mod secret;
pub mod types;

pub use redact::{REDACTED, Redactor, redact_patterns, redact_url};
use retry::{RetryPolicy, parse_retry_after};
pub use secret::Secret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashSet;
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

    /// Every form of the credentials a server could echo back.
    fn secrets(&self) -> Vec<String> {
        match self {
            Auth::ApiToken { email, token } => vec![
                token.expose().to_string(),
                format!("{email}/token:{}", token.expose()),
            ],
            Auth::OAuth(t) => vec![t.expose().to_string()],
            Auth::Anonymous => Vec::new(),
        }
    }
}

/// Errors of the Zendesk layer. Their messages never contain a credential or article text.
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
        /// Requested wait (clamped to [`retry::RETRY_AFTER_CEILING`]).
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
        /// Excerpt of the body, credentials redacted.
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
        /// What is wrong (kind and position, never the content).
        detail: String,
    },
    /// A body larger than [`ClientConfig::max_body_bytes`].
    #[error(
        "zendesk answered more than {limit} bytes on {path}, the cap of one response; nothing of it was used"
    )]
    TooLarge {
        /// Request path.
        path: String,
        /// The cap.
        limit: usize,
    },
    /// A cursor-paginated list handed out a cursor it had already given.
    #[error(
        "zendesk's pagination of {path} loops (a cursor came back); stopped after {pages} pages"
    )]
    PaginationLoop {
        /// Request path.
        path: String,
        /// Pages read before the loop was seen.
        pages: usize,
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
    /// Response body bytes read.
    pub bytes: u64,
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
    /// Largest response body accepted (a 1,000-article export page of long articles is tens
    /// of MB; anything far beyond is not a Help Center answer).
    pub max_body_bytes: usize,
}

/// Default [`ClientConfig::max_body_bytes`]: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// Bodies larger than this are decoded on the blocking pool, not on an async worker.
const INLINE_DECODE_BYTES: usize = 256 << 10;

/// Pages a cursor-paginated list may have before helpdex stops (10 million items).
const MAX_PAGES: usize = 100_000;

impl ClientConfig {
    /// Defaults for a base URL and credentials.
    pub fn new(base_url: impl Into<String>, auth: Auth) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            auth,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
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
    max_body: usize,
    redactor: Arc<Redactor>,
    stats: Arc<Mutex<RequestStats>>,
    pace: Arc<Mutex<Option<Duration>>>,
    server_time: Arc<Mutex<Option<i64>>>,
}

/// What one attempt ended with, before the retry decision.
enum Attempt {
    Done(Value),
    Retry { detail: String, kind: RetryKind },
    Fail(ZendeskError),
}

#[derive(Clone, Copy)]
enum RetryKind {
    Transport,
    Malformed,
    Server(u16),
}

impl Client {
    /// Builds a client; fails only on an unusable base URL. Userinfo in the URL is dropped
    /// (Zendesk ignores credentials in URLs, and it must never be stored or shown).
    pub fn new(cfg: ClientConfig) -> Result<Client, ZendeskError> {
        let shown = redact_url(&cfg.base_url);
        let mut base = url::Url::parse(cfg.base_url.trim())
            .map_err(|e| ZendeskError::BadUrl(format!("{shown}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(ZendeskError::BadUrl(format!(
                "{shown}: expected http(s)://host, e.g. https://acme.zendesk.com"
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            tracing::warn!(
                "the zendesk url carries credentials; they are ignored (use --zendesk-email / --zendesk-token)"
            );
            let _ = base.set_username("");
            let _ = base.set_password(None);
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
            .map_err(|e| ZendeskError::BadUrl(redact_patterns(&e.to_string())))?;
        Ok(Client {
            http,
            base,
            redactor: Arc::new(Redactor::new(cfg.auth.secrets())),
            auth: cfg.auth,
            retry: cfg.retry,
            max_body: cfg.max_body_bytes.max(1024),
            stats: Arc::default(),
            pace: Arc::default(),
            server_time: Arc::default(),
        })
    }

    /// The base URL without credentials, as it may be shown and stored.
    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    /// Request counters so far.
    pub fn stats(&self) -> RequestStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Zendesk's clock (epoch seconds) from the `Date` header of the first answer this client
    /// received; the sync bounds its cursor with it so changes made while it runs are not
    /// skipped next time.
    pub fn server_time(&self) -> Option<i64> {
        *self.server_time.lock().expect("server time lock")
    }

    /// Redacts credentials from text derived from a response (for callers that build their
    /// own messages).
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
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

    /// GET `path` with `query` and decode it as `T` (small, well-typed answers).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ZendeskError> {
        let v = self.get_value(path, query).await?;
        serde_json::from_value(v).map_err(|e| ZendeskError::Malformed {
            path: path.to_string(),
            attempts: 1,
            detail: json_error(&e),
        })
    }

    /// GET `path` with `query`, retrying what is transient, and decode the body as JSON.
    pub async fn get_value(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ZendeskError> {
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
            let outcome = match req.send().await {
                Err(e) => Attempt::Retry {
                    detail: transport_detail(&e),
                    kind: RetryKind::Transport,
                },
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    tracing::debug!(path = %shown, status, elapsed_ms = started.elapsed().as_millis() as u64, "zendesk response");
                    self.note_server_time(&resp);
                    if status == 429 {
                        limited += 1;
                        self.bump(|s| s.rate_limited += 1);
                        let wait = self.retry_after(&resp);
                        if wait > self.retry.max_retry_after
                            || limited > self.retry.max_rate_limited
                        {
                            return Err(ZendeskError::RateLimited {
                                path: shown,
                                wait,
                                cap: self.retry.max_retry_after,
                            });
                        }
                        tracing::warn!(path = %shown, wait_ms = wait.as_millis() as u64, "zendesk rate limit (429); waiting as Retry-After says");
                        tokio::time::sleep(wait).await;
                        // The wait covers the window: the 429's own `remaining: 0` must not
                        // add the reserve pause on top of it.
                        *self.pace.lock().expect("pace lock") = None;
                        self.bump(|s| {
                            s.retries += 1;
                            s.rate_limit_wait_secs += wait.as_secs_f64();
                        });
                        attempt -= 1; // a 429 is not a failed attempt
                        continue;
                    }
                    self.note_budget(&resp);
                    self.answer(resp, status, &shown).await
                }
            };
            match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { detail, kind } => {
                    if attempt >= self.retry.max_attempts {
                        return Err(match kind {
                            RetryKind::Transport => ZendeskError::Transport {
                                path: shown,
                                attempts: attempt,
                                detail,
                            },
                            RetryKind::Malformed => ZendeskError::Malformed {
                                path: shown,
                                attempts: attempt,
                                detail,
                            },
                            RetryKind::Server(status) => ZendeskError::Server {
                                path: shown,
                                status,
                                attempts: attempt,
                            },
                        });
                    }
                    tracing::warn!(path = %shown, attempt, error = %detail, "zendesk request failed; retrying");
                    self.backoff(attempt).await;
                }
            }
        }
    }

    /// Turns one non-429 answer into a value, a retry or a final error.
    async fn answer(&self, resp: reqwest::Response, status: u16, shown: &str) -> Attempt {
        match status {
            200..=299 => {
                let body = match self.read_body(resp, shown).await {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                match decode(body).await {
                    Ok(v) => Attempt::Done(v),
                    Err(detail) => Attempt::Retry {
                        detail,
                        kind: RetryKind::Malformed,
                    },
                }
            }
            401 => Attempt::Fail(ZendeskError::Unauthorized {
                path: shown.to_string(),
                what: self.auth.describe(),
            }),
            403 => {
                let hint = if shown.contains("user_segments") {
                    "listing user segments needs a Guide admin (Help Center manager); use an admin's API token"
                } else if shown.contains("incremental") {
                    "the incremental export needs an agent or admin account; use an agent's or admin's API token"
                } else {
                    "the account behind the credentials lacks permission; use an agent's or admin's API token"
                };
                Attempt::Fail(ZendeskError::Forbidden {
                    path: shown.to_string(),
                    hint: hint.to_string(),
                })
            }
            404 => Attempt::Fail(ZendeskError::NotFound {
                path: shown.to_string(),
            }),
            500..=599 => Attempt::Retry {
                detail: format!("server error {status}"),
                kind: RetryKind::Server(status),
            },
            _ => {
                let detail = match self.read_body(resp, shown).await {
                    Ok(b) => self.excerpt(&b),
                    Err(_) => String::new(),
                };
                Attempt::Fail(ZendeskError::Client {
                    path: shown.to_string(),
                    status,
                    detail,
                })
            }
        }
    }

    /// Reads a body, refusing more than the configured cap (checked as it streams in, so a
    /// huge answer never sits in memory).
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        shown: &str,
    ) -> Result<Vec<u8>, Attempt> {
        let too_large = || {
            Attempt::Fail(ZendeskError::TooLarge {
                path: shown.to_string(),
                limit: self.max_body,
            })
        };
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_large());
        }
        let mut buf: Vec<u8> = Vec::with_capacity(
            resp.content_length().unwrap_or(0).min(self.max_body as u64) as usize,
        );
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if buf.len() + c.len() > self.max_body {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Attempt::Retry {
                        detail: transport_detail(&e),
                        kind: RetryKind::Transport,
                    });
                }
            }
        }
        self.bump(|s| s.bytes += buf.len() as u64);
        Ok(buf)
    }

    /// A short, printable, credential-free excerpt of an error body.
    fn excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
        let flat: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let red = self.redactor.redact(&flat);
        let mut out: String = red.chars().take(300).collect();
        if red.chars().count() > 300 {
            out.push('…');
        }
        out
    }

    fn retry_after(&self, resp: &reqwest::Response) -> Duration {
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
        header("retry-after")
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
            .unwrap_or_else(|| {
                // Airbyte's fallback: one request's share of the minute.
                let limit: u64 = header("x-rate-limit")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(60);
                Duration::from_secs_f64(60.0 / limit.max(1) as f64)
            })
    }

    fn note_budget(&self, resp: &reqwest::Response) {
        let num = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        *self.pace.lock().expect("pace lock") = self
            .retry
            .pacing(num("x-rate-limit"), num("x-rate-limit-remaining"));
    }

    fn note_server_time(&self, resp: &reqwest::Response) {
        let mut t = self.server_time.lock().expect("server time lock");
        if t.is_none() {
            *t = resp
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
                .map(|d| d.timestamp());
        }
    }

    async fn backoff(&self, attempt: u32) {
        self.bump(|s| s.retries += 1);
        let d = self.retry.backoff(attempt, rand::random::<f64>());
        tokio::time::sleep(d).await;
    }

    /// One page of the incremental export starting at `start_time` (inclusive).
    pub async fn incremental_page(&self, start_time: i64) -> Result<ExportPage, ZendeskError> {
        let path = "api/v2/help_center/incremental/articles.json";
        let mut v = self
            .get_value(path, &[("start_time", start_time.to_string())])
            .await?;
        let malformed = |detail: &str| ZendeskError::Malformed {
            path: format!("/{path}"),
            attempts: 1,
            detail: detail.to_string(),
        };
        let o = v
            .as_object_mut()
            .ok_or_else(|| malformed("not a JSON object"))?;
        let records = match o.remove("articles") {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(malformed("articles is not an array")),
        };
        Ok(ExportPage {
            records,
            next_page: o
                .get("next_page")
                .and_then(Value::as_str)
                .map(str::to_string),
            end_time: o.get("end_time").and_then(Value::as_i64),
        })
    }

    /// A cursor pager over `path` (`page[size]=100`), detecting loops.
    pub fn pager(&self, path: &str, key: &str, query: &[(&str, String)]) -> Pager {
        Pager {
            client: self.clone(),
            path: path.to_string(),
            key: key.to_string(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            after: None,
            seen: HashSet::new(),
            pages: 0,
            done: false,
        }
    }

    /// Every item of a small cursor-paginated list. A pagination loop ends the list with what
    /// was read (deduplicated by the caller) and a warning.
    pub async fn list_all(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, String)],
    ) -> Result<(Vec<Value>, ListExtras), ZendeskError> {
        let mut p = self.pager(path, key, query);
        let mut out = Vec::new();
        let mut extras = ListExtras::default();
        loop {
            match p.next().await {
                Ok(Some(page)) => {
                    out.extend(page.items);
                    for (k, v) in page.sideloads {
                        if let Value::Array(items) = v {
                            extras.sideloads.entry(k).or_default().extend(items);
                        }
                    }
                }
                Ok(None) => break,
                Err(e @ ZendeskError::PaginationLoop { .. }) => {
                    tracing::warn!(error = %e, "keeping the items read before the loop");
                    extras.looped = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok((out, extras))
    }

    /// One article (any locale, drafts included), `None` when Zendesk answers 404 (archived or
    /// deleted). With `include=translations`, Zendesk may embed every translation.
    pub async fn show_article(&self, id: u64) -> Result<Option<Value>, ZendeskError> {
        match self
            .get_value(
                &format!("api/v2/help_center/articles/{id}.json"),
                &[("include", "translations".to_string())],
            )
            .await
        {
            Ok(mut v) => Ok(Some(
                v.get_mut("article").map(Value::take).unwrap_or(Value::Null),
            )),
            Err(ZendeskError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every translation of one article, drafts included; `None` on 404 (the article was
    /// archived or deleted meanwhile; confirm with [`Client::show_article`]).
    pub async fn translations(&self, id: u64) -> Result<Option<Vec<Value>>, ZendeskError> {
        match self
            .list_all(
                &format!("api/v2/help_center/articles/{id}/translations.json"),
                "translations",
                &[],
            )
            .await
        {
            Ok((items, _)) => Ok(Some(items)),
            Err(ZendeskError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All user segments (well-formed ones; see [`types::decode_items`]); 403 when the token is
    /// not a Guide admin's.
    pub async fn user_segments(&self) -> Result<Vec<UserSegment>, ZendeskError> {
        let (items, _) = self
            .list_all(
                "api/v2/help_center/user_segments.json",
                "user_segments",
                &[],
            )
            .await?;
        let (segs, dropped) = decode_items::<UserSegment>(items, |s| s.id);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "malformed user segments ignored; their articles are internal"
            );
        }
        Ok(segs)
    }

    /// All sections and categories in as few requests as Zendesk allows: the sections listing
    /// sideloads their categories (`include=categories`); the categories listing is only read
    /// when that sideload is absent.
    pub async fn sections_and_categories(
        &self,
    ) -> Result<(Vec<Section>, Vec<Category>), ZendeskError> {
        let (items, extras) = self
            .list_all(
                "api/v2/help_center/sections.json",
                "sections",
                &[("include", "categories".to_string())],
            )
            .await?;
        let (sections, _) = decode_items::<Section>(items, |s| s.id);
        let cats = match extras.sideloads.get("categories") {
            Some(c) => c.clone(),
            None => {
                self.list_all("api/v2/help_center/categories.json", "categories", &[])
                    .await?
                    .0
            }
        };
        let (categories, _) = decode_items::<Category>(cats, |c| c.id);
        Ok((sections, categories))
    }

    /// The help center's locales.
    pub async fn locales(&self) -> Result<Locales, ZendeskError> {
        self.get_json("api/v2/help_center/locales.json", &[]).await
    }

    /// The account's brands.
    pub async fn brands(&self) -> Result<Vec<Brand>, ZendeskError> {
        let (items, _) = self.list_all("api/v2/brands.json", "brands", &[]).await?;
        Ok(decode_items::<Brand>(items, |b| b.id).0)
    }

    /// A pager over the articles shown in `locale` (every article when `None`), drafts
    /// included, sorted by `sort_by` (`updated_at`, `edited_at`...) in `order`, optionally from
    /// `start_time` on.
    pub fn articles_pager(
        &self,
        locale: Option<&str>,
        sort_by: &str,
        order: &str,
        start_time: Option<i64>,
    ) -> Pager {
        let path = match locale {
            Some(l) => format!("api/v2/help_center/{l}/articles.json"),
            None => "api/v2/help_center/articles.json".to_string(),
        };
        let mut q = vec![
            ("sort_by", sort_by.to_string()),
            ("sort_order", order.to_string()),
        ];
        if let Some(t) = start_time {
            q.push(("start_time", t.to_string()));
        }
        self.pager(&path, "articles", &q)
    }
}

/// What a list read besides its items.
#[derive(Debug, Clone, Default)]
pub struct ListExtras {
    /// Sideloaded arrays, concatenated over pages.
    pub sideloads: std::collections::HashMap<String, Vec<Value>>,
    /// The pagination looped and was cut.
    pub looped: bool,
}

/// Walks a cursor-paginated list page by page, so a caller holds one page at a time.
/// Stops on the last page, on an empty page (Zenpy's quirk: `has_more` can be true on an empty
/// last page), and refuses a cursor it has seen before ([`ZendeskError::PaginationLoop`]).
pub struct Pager {
    client: Client,
    path: String,
    key: String,
    query: Vec<(String, String)>,
    after: Option<String>,
    seen: HashSet<String>,
    pages: usize,
    done: bool,
}

impl Pager {
    /// The next page, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<ListPage>, ZendeskError> {
        if self.done {
            return Ok(None);
        }
        if self.pages >= MAX_PAGES {
            self.done = true;
            return Err(ZendeskError::PaginationLoop {
                path: format!("/{}", self.path),
                pages: self.pages,
            });
        }
        let mut q: Vec<(&str, String)> = self
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        q.push(("page[size]", "100".to_string()));
        if let Some(a) = &self.after {
            q.push(("page[after]", a.clone()));
        }
        let mut v = self.client.get_value(&self.path, &q).await?;
        self.pages += 1;
        let path = format!("/{}", self.path);
        let o = v.as_object_mut().ok_or_else(|| ZendeskError::Malformed {
            path: path.clone(),
            attempts: 1,
            detail: "not a JSON object".into(),
        })?;
        let items = match o.remove(&self.key) {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(ZendeskError::Malformed {
                    path,
                    attempts: 1,
                    detail: format!("{} is not an array", self.key),
                });
            }
        };
        let meta = o.remove("meta").unwrap_or(Value::Null);
        let has_more = meta
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let cursor = meta
            .get("after_cursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.remove("links");
        let sideloads: serde_json::Map<String, Value> = std::mem::take(o)
            .into_iter()
            .filter(|(_, v)| v.is_array())
            .collect();
        let after = match (has_more, cursor) {
            (true, Some(c)) if !items.is_empty() => {
                if !self.seen.insert(c.clone()) {
                    self.done = true;
                    return Err(ZendeskError::PaginationLoop {
                        path,
                        pages: self.pages,
                    });
                }
                Some(c)
            }
            _ => None,
        };
        self.done = after.is_none();
        self.after = after.clone();
        Ok(Some(ListPage {
            items,
            sideloads,
            after,
        }))
    }
}

/// Decodes a JSON body, on the blocking pool when it is large (a 1,000-article page takes
/// tens of milliseconds, far beyond what an async worker may block).
async fn decode(body: Vec<u8>) -> Result<Value, String> {
    if body.len() <= INLINE_DECODE_BYTES {
        return serde_json::from_slice(&body).map_err(|e| json_error(&e));
    }
    tokio::task::spawn_blocking(move || serde_json::from_slice(&body).map_err(|e| json_error(&e)))
        .await
        .map_err(|e| format!("decoder task failed: {e}"))?
}

/// A JSON error without serde's quotes of the input (which could be article text).
fn json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

fn transport_detail(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "response body interrupted".to_string()
    } else if e.is_request() {
        "connection reset or closed".to_string()
    } else {
        let mut s = e.to_string();
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), "");
        }
        redact_patterns(&s)
    }
}
