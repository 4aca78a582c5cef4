//! The HTTP API of `helpdex serve` (axum): cited search and grounding context for the AI
//! runtime, article views, admin sync/reindex/status, health, metrics and Zendesk webhooks.
//!
//! Every content endpoint resolves the caller's access with [`crate::auth::grant`] first: the
//! audience of a request never exceeds the scope of its key. Errors are a small set of codes
//! with a JSON body ([`ApiError`]); internal failures are logged and answered with a generic
//! message, so no stack trace, internal text or secret ever reaches a caller.
//! The request and response shapes are documented in `docs/openapi.yaml`.

use crate::auth::{self, ApiKeys, Denied, Scope};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::scheduler::{Scheduler, SchedulerError, SyncRequest};
use crate::webhook;
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use helpdex_core::engine::Engine;
use helpdex_core::error::ErrorCode as CoreCode;
use helpdex_core::model::Access;
use helpdex_core::query::QueryInput;
use helpdex_core::reader::ReadError;
use helpdex_core::search::QueryError;
use helpdex_core::store::StoreRead;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engine (store + live index).
    pub engine: Arc<Engine>,
    /// Resolved configuration.
    pub cfg: Arc<Config>,
    /// API keys and scopes.
    pub keys: ApiKeys,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The sync queue.
    pub scheduler: Scheduler,
}

/// The documented error codes, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a parameter is missing or wrong.
    BadRequest,
    /// 401: no API key, an unknown one, or a webhook with a bad signature.
    Unauthorized,
    /// 403: the key's scope does not allow this.
    Forbidden,
    /// 404: no such resource within the caller's audience.
    NotFound,
    /// 409: the index is being written by another process.
    Busy,
    /// 503: not ready, or a feature is not configured.
    Unavailable,
    /// 500: something failed on our side; details are in the server log.
    Internal,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Busy => StatusCode::CONFLICT,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug)]
pub struct ApiError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What happened and what to do; never internal details.
    pub message: String,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// Logs the real cause and answers a generic 500.
    fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }
}

impl From<CoreCode> for ErrorCode {
    fn from(c: CoreCode) -> ErrorCode {
        match c {
            CoreCode::BadRequest => ErrorCode::BadRequest,
            CoreCode::NotFound => ErrorCode::NotFound,
            CoreCode::Unavailable => ErrorCode::Unavailable,
            CoreCode::Internal => ErrorCode::Internal,
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e.code() {
            CoreCode::Internal => ApiError::internal("query", e),
            code => ApiError::new(code.into(), e.to_string()),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        QueryError::from(e).into()
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Unauthenticated => ApiError::new(
                ErrorCode::Unauthorized,
                "missing or unknown API key: send Authorization: Bearer KEY",
            ),
            Denied::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.code.status(), Json(body)).into_response();
        if self.code == ErrorCode::Unauthorized {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The caller's scope, from the `Authorization` header.
fn scope(state: &AppState, headers: &HeaderMap) -> ApiResult<Scope> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Ok(state.keys.authenticate(auth::bearer(h))?)
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/search", get(search))
        .route("/v1/context", post(context))
        .route("/v1/articles/{id}", get(article))
        .route("/v1/admin/sync", post(admin_sync))
        .route("/v1/admin/reindex", post(admin_reindex))
        .route("/v1/admin/status", get(admin_status))
        .route("/v1/admin/jobs/{id}", get(admin_job))
        .route("/v1/webhooks/zendesk", post(zendesk_webhook))
        .fallback(|| async {
            ApiError::new(
                ErrorCode::NotFound,
                "no such endpoint; see docs/openapi.yaml",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Request latency histogram and one log line per request (no query strings: they can carry
/// customer questions, which are not ours to log).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.record_http(&route, &method, status, elapsed);
    tracing::debug!(%route, %method, status, ms = elapsed.as_millis() as u64, "http request");
    resp
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready once a sync has completed in the data directory (503 before, with what to do).
async fn readyz(State(state): State<AppState>) -> ApiResult<Response> {
    let reader = state.engine.reader().clone();
    let index = blocking(move || {
        reader.ensure_ready()?;
        reader.index_status()
    })
    .await?;
    Ok(Json(serde_json::json!({"status": "ready", "generation": index.generation, "passages": index.passages})).into_response())
}

/// Runs a read on the blocking pool (SQLite and tantivy never run on the async runtime).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("blocking task", e))?
        .map_err(ApiError::from)
}

async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let reader = state.engine.reader().clone();
    let (counts, generation) = blocking(move || {
        let counts = reader.store(|s| s.counts(None))?;
        let generation = reader.generation().map(|g| g.name.clone()).ok();
        Ok((counts, generation))
    })
    .await?;
    let mut by_vis = std::collections::BTreeMap::<&str, i64>::new();
    for c in &counts {
        *by_vis.entry(c.visibility.as_str()).or_default() += c.translations;
    }
    for v in ["public", "signed_in", "restricted", "internal"] {
        state
            .metrics
            .set_articles(v, by_vis.get(v).copied().unwrap_or(0).max(0) as u64);
    }
    if let Some(g) = generation {
        state.metrics.set_index_generation(&g);
    }
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response())
}

/// The query contract, from a query string or a JSON body, with the audience bounded by the
/// caller's key.
fn validate(scope: Scope, input: QueryInput) -> ApiResult<helpdex_core::query::Query> {
    let access = grant(scope, &input)?;
    input
        .validate(access)
        .map_err(|e| ApiError::from(QueryError::from(e)))
}

fn grant(scope: Scope, input: &QueryInput) -> ApiResult<Access> {
    let wanted = input.requested_access();
    Ok(auth::grant(
        scope,
        input.audience,
        wanted.signed_in,
        wanted.segments,
    )?)
}

async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Result<Query<QueryInput>, QueryRejection>,
) -> ApiResult<Response> {
    let scope = scope(&state, &headers)?;
    let Query(input) = p.map_err(|e| ApiError::bad(e.body_text()))?;
    let q = validate(scope, input)?;
    let reader = state.engine.reader().clone();
    let resp = tokio::task::spawn_blocking(move || helpdex_core::search::search(&reader, &q))
        .await
        .map_err(|e| ApiError::internal("search task", e))??;
    Ok(Json(resp).into_response())
}

async fn context(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let scope = scope(&state, &headers)?;
    let input: QueryInput = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))?;
    let q = validate(scope, input)?;
    let reader = state.engine.reader().clone();
    let resp = tokio::task::spawn_blocking(move || helpdex_core::search::context(&reader, &q))
        .await
        .map_err(|e| ApiError::internal("context task", e))??;
    Ok(Json(resp).into_response())
}

/// Query parameters of `GET /v1/articles/{id}`: who is asking, and one locale.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArticleParams {
    #[serde(default)]
    audience: Option<helpdex_core::model::Audience>,
    #[serde(default)]
    signed_in: Option<bool>,
    #[serde(default)]
    segments: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

async fn article(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Result<Query<ArticleParams>, QueryRejection>,
) -> ApiResult<Response> {
    let scope = scope(&state, &headers)?;
    let Query(p) = p.map_err(|e| ApiError::bad(e.body_text()))?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad("the article id must be a number"))?;
    let input: QueryInput = serde_json::from_value(serde_json::json!({
        "audience": p.audience, "signed_in": p.signed_in, "segments": p.segments,
    }))
    .map_err(|e| ApiError::bad(e.to_string()))?;
    let access = grant(scope, &input)?;
    let locale = p
        .locale
        .as_deref()
        .map(helpdex_core::query::normalize_locale);
    let reader = state.engine.reader().clone();
    let views = blocking(move || {
        reader.ensure_ready()?;
        helpdex_core::article::get(&reader, id, locale.as_deref(), &access)
    })
    .await?;
    if views.is_empty() {
        // Same answer for "absent" and "not visible to you": existence is not leaked.
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no article {id} within your audience"),
        ));
    }
    Ok(Json(serde_json::json!({"article_id": id, "translations": views})).into_response())
}

/// Body of `POST /v1/admin/sync`.
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SyncBody {
    /// Run the full hash sweep.
    full: bool,
    /// Only these sources (default all).
    sources: Option<Vec<String>>,
    /// Wait for the run to finish (default true); false answers 202 with a job id.
    wait: Option<bool>,
}

fn shutting_down(_: SchedulerError) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        "helpdex is shutting down; retry against the next instance",
    )
}

fn body_or_default<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

async fn admin_sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    auth::require_admin(scope(&state, &headers)?)?;
    let b: SyncBody = body_or_default(&body)?;
    if let Some(names) = &b.sources {
        for n in names {
            if !state.cfg.sync.sources.iter().any(|s| &s.name == n) {
                return Err(ApiError::bad(format!("unknown source '{n}'")));
            }
        }
    }
    let job = state
        .scheduler
        .trigger(SyncRequest::manual(b.sources, b.full))
        .map_err(shutting_down)?;
    if b.wait == Some(false) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"job_id": job.id(), "state": "queued"})),
        )
            .into_response());
    }
    let id = job.id();
    let outcome = job.wait().await;
    Ok(Json(serde_json::json!({"job_id": id, "outcome": outcome})).into_response())
}

/// Body of `POST /v1/admin/reindex`.
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ReindexBody {
    /// Re-pull everything from Zendesk first (a full sync), then rebuild.
    refetch: bool,
}

async fn admin_reindex(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    auth::require_admin(scope(&state, &headers)?)?;
    let b: ReindexBody = body_or_default(&body)?;
    let mut sync = None;
    if b.refetch {
        let job = state
            .scheduler
            .trigger(SyncRequest::manual(None, true))
            .map_err(shutting_down)?;
        sync = Some(job.wait().await);
    }
    let engine = state.engine.clone();
    let report = tokio::task::spawn_blocking(move || engine.rebuild())
        .await
        .map_err(|e| ApiError::internal("reindex task", e))?
        .map_err(|e| ApiError::internal("reindex", e))?;
    Ok(Json(serde_json::json!({"reindex": report, "sync": sync})).into_response())
}

async fn admin_status(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    auth::require_admin(scope(&state, &headers)?)?;
    let reader = state.engine.reader().clone();
    let (sources, counts, index) = blocking(move || {
        let (sources, counts) = reader.store(|s| {
            s.snapshot(|s| {
                let mut sources = Vec::new();
                for src in s.sources()? {
                    let counts = s.counts(Some(&src.name))?;
                    sources.push((src, counts));
                }
                Ok((sources, s.counts(None)?))
            })
        })?;
        Ok((sources, counts, reader.index_status().ok()))
    })
    .await?;
    let per_source: Vec<_> = sources
        .into_iter()
        .map(|(s, counts)| {
            let next_run = state.scheduler.next_run(&s.name);
            serde_json::json!({"source": s, "counts": counts, "next_run": next_run})
        })
        .collect();
    Ok(Json(serde_json::json!({
        "sources": per_source,
        "counts": counts,
        "index": index,
        "jobs": state.scheduler.status(),
    }))
    .into_response())
}

async fn admin_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    auth::require_admin(scope(&state, &headers)?)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad("job ids are numbers"))?;
    match state.scheduler.job(id) {
        Some(j) => Ok(Json(j).into_response()),
        None => Err(ApiError::new(ErrorCode::NotFound, format!("no job {id}"))),
    }
}

async fn zendesk_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let Some(secret) = &state.cfg.server.webhook_secret else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "webhooks are not configured: set server.webhook_secret or HELPDEX_WEBHOOK_SECRET",
        ));
    };
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (sig, ts) = (h(webhook::SIGNATURE_HEADER), h(webhook::TIMESTAMP_HEADER));
    if let Err(e) = webhook::verify(
        secret.expose().as_bytes(),
        ts,
        &body,
        sig,
        chrono::Utc::now(),
        state.cfg.server.webhook_tolerance,
    ) {
        tracing::warn!(error = %e, "webhook rejected");
        return Err(ApiError::new(ErrorCode::Unauthorized, e.to_string()));
    }
    let event = match webhook::parse(&body) {
        Ok(ev) => ev,
        // Zendesk retries what is not acknowledged: say yes to events we do not act on.
        Err(e @ webhook::WebhookError::UnsupportedEvent(_)) => {
            tracing::info!(error = %e, "webhook ignored");
            return Ok((
                StatusCode::ACCEPTED,
                Json(serde_json::json!({"ignored": e.to_string()})),
            )
                .into_response());
        }
        Err(e) => return Err(ApiError::bad(e.to_string())),
    };
    tracing::info!(article_id = event.article_id, kind = %event.event_type, "webhook: syncing article now");
    let job = state
        .scheduler
        .trigger(SyncRequest::webhook(vec![event.article_id], None))
        .map_err(shutting_down)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"job_id": job.id(), "article_id": event.article_id})),
    )
        .into_response())
}
