//! The HTTP API of `helpdex serve` (axum): cited search and grounding context for the AI
//! runtime, article views, the stale-citation check, MCP over Streamable HTTP, admin
//! sync/reindex/status, health, version, metrics, the OpenAPI document and Zendesk webhooks.
//!
//! Every route that reads content sits behind [`require_key`], which authenticates the bearer
//! key *before* the request body is read, and every content handler resolves the caller's
//! access with [`crate::auth::grant`]: the audience of a request never exceeds the scope of its
//! key. Errors are one JSON shape ([`error::ApiError`]); internal failures are logged and
//! answered with a generic message. The OpenAPI document is generated from the handlers' own
//! request and response types ([`docs`]) and served at `/openapi.json`.

pub mod docs;
pub mod error;

use crate::auth::{self, ApiKeys, Scope};
use crate::config::Config;
use crate::metrics::{Metrics, SearchKind};
use crate::scheduler::{
    JobId, JobStatus, RunOutcome, Scheduler, SchedulerError, SchedulerStatus, SyncRequest,
};
use crate::webhook;
use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use aide::openapi::OpenApi;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
pub use error::{ApiError, ErrorBody, ErrorCode};
use helpdex_core::article::ArticleView;
use helpdex_core::engine::{Engine, RebuildReport};
use helpdex_core::model::{Access, Audience};
use helpdex_core::query::QueryInput;
use helpdex_core::reader::IndexStatus;
use helpdex_core::search::{ContextResponse, SearchResponse};
use helpdex_core::store::{Count, SourceState, StoreRead};
use helpdex_core::verify::{CitationRef, VerifyResponse};
use schemars::JsonSchema;
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
    /// Webhook deliveries already accepted within the tolerance window.
    pub replays: Arc<webhook::ReplayGuard>,
    /// Version and commit of this build.
    pub build: crate::BuildInfo,
    /// The key `helpdex reindex` checks this server with (see [`crate::server::Advert`]).
    pub instance_key: Arc<[u8; 32]>,
}

impl AppState {
    /// The state of a server over `engine`, with fresh replay memory and instance key.
    pub fn new(
        engine: Arc<Engine>,
        cfg: Arc<Config>,
        metrics: Arc<Metrics>,
        scheduler: Scheduler,
        build: crate::BuildInfo,
    ) -> AppState {
        let tolerance = cfg.server.webhook_tolerance;
        AppState {
            keys: ApiKeys::from_config(&cfg.server),
            engine,
            cfg,
            metrics,
            scheduler,
            replays: Arc::new(webhook::ReplayGuard::new(tolerance, 10_000)),
            build,
            instance_key: Arc::new(rand::random()),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejection (not JSON, wrong shape, unknown field) is the documented 400.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            // Over the body limit while streaming: 413 (in the JSON shape, by json_errors).
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(e.into_response()),
            Err(e) => {
                Err(ApiError::bad(format!("invalid JSON body: {}", e.body_text())).into_response())
            }
        }
    }
}

impl<T: JsonSchema> aide::OperationInput for JsonBody<T> {
    fn operation_input(ctx: &mut aide::generate::GenContext, op: &mut aide::openapi::Operation) {
        Json::<T>::operation_input(ctx, op);
    }
}

/// Query parameters whose rejection is the documented 400.
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    axum::extract::Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(e) => Err(ApiError::bad(e.body_text())),
        }
    }
}

impl<T: JsonSchema> aide::OperationInput for QueryParams<T> {
    fn operation_input(ctx: &mut aide::generate::GenContext, op: &mut aide::openapi::Operation) {
        axum::extract::Query::<T>::operation_input(ctx, op);
    }
}

/// Authenticates the bearer key before anything else (the body in particular) is read, and
/// hands the key's scope to the handler as an extension. The keys come from an extension that
/// [`crate::http::layers`] sets on every request; without it nobody is let in.
pub async fn require_key(mut req: Request, next: Next) -> Response {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(keys) = req.extensions().get::<ApiKeys>() else {
        return ApiError::from(auth::Denied::Unauthenticated).into_response();
    };
    match keys.authenticate(auth::bearer(h)) {
        Ok(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Err(d) => ApiError::from(d).into_response(),
    }
}

/// Builds the router: every documented route, the OpenAPI document, and the middleware of
/// [`crate::http::layers`].
pub fn router(state: AppState) -> Router {
    let mut api = docs::base();
    let app = routes(state.clone()).finish_api_with(&mut api, docs::finish);
    let doc: Arc<str> = docs::render(&api).to_string().into();
    let app = app
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .fallback(|| async {
            ApiError::new(ErrorCode::NotFound, "no such endpoint; see /openapi.json")
        });
    crate::http::layers(app, &state)
}

/// The OpenAPI document of this build, exactly as `/openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    let mut api: OpenApi = docs::base();
    let _ = documented(&crate::http::HttpLimits::default()).finish_api_with(&mut api, docs::finish);
    docs::render(&api)
}

fn routes(state: AppState) -> ApiRouter<AppState> {
    let limits = state.cfg.server.http.clone();
    let mcp = crate::mcp::http_service(state);
    documented(&limits).route_service(
        "/mcp",
        tower::ServiceBuilder::new()
            .layer(timeout(&limits))
            .layer(middleware::from_fn(require_key))
            .service(mcp),
    )
}

fn timeout(limits: &crate::http::HttpLimits) -> tower_http::timeout::TimeoutLayer {
    tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    )
}

/// Every documented route. Content and webhook routes answer within the request timeout;
/// content and admin routes need a key, checked before the body is read.
fn documented(limits: &crate::http::HttpLimits) -> ApiRouter<AppState> {
    use docs::{Doc, DocExt};
    let content = ApiRouter::new()
        .api_route(
            "/v1/search",
            get_with(search, |op| {
                op.doc(Doc::content(
                    "Cited passages for a question",
                    "The query contract of every front end: `q` (or `query`), `audience`, `signed_in`, \
                     `segments` (comma-separated ids), `locale`, `limit`. The same JSON as `helpdex \
                     search --json`.",
                ))
                .with(docs::query_string_params)
            }),
        )
        .api_route(
            "/v1/context",
            post_with(context, |op| {
                op.doc(Doc::content(
                    "A prompt-ready grounding context with numbered citations",
                    "The best passages within `max_chars` characters, numbered [1], [2], …, with their \
                     citations; `found: false` when nothing relevant exists. The same JSON as `helpdex \
                     context --json`.",
                ))
            }),
        )
        .api_route(
            "/v1/articles/{id}",
            get_with(article, |op| {
                op.doc(
                    Doc::content(
                        "One article's readable translations",
                        "What helpdex holds for an article, per locale, within the caller's audience. \
                         An article the caller may not read answers 404, exactly like a missing one.",
                    )
                    .not_found(),
                )
                .with(docs::query_string_params)
            }),
        )
        .api_route(
            "/v1/verify",
            post_with(verify, |op| {
                op.doc(Doc::content(
                    "Check citations for staleness",
                    "Send citations exactly as hits returned them (whole hits are fine: only `passage_id`, \
                     `url` and `content_hash` are read) and get, for each, `current`, `changed` (with the \
                     current hash) or `gone`, under the caller's audience: a citation the caller may no \
                     longer read is `gone`.",
                ))
            }),
        )
        .route_layer(timeout(limits));
    let admin = ApiRouter::new()
        .api_route(
            "/v1/admin/sync",
            post_with(admin_sync, |op| {
                op.doc(Doc::admin(
                    "Sync now",
                    "Queues a sync of every (or the named) source and waits for it; `\"wait\": false` \
                     answers 202 with a job id at once.",
                ))
                .response_with::<200, Json<SyncDone>, _>(|r| r.description("The run finished"))
                .response_with::<202, Json<JobAccepted>, _>(|r| {
                    r.description("Queued (`\"wait\": false`)")
                })
            }),
        )
        .api_route(
            "/v1/admin/reindex",
            post_with(admin_reindex, |op| {
                op.doc(Doc::admin(
                    "Rebuild the index",
                    "Rebuilds the index into a new generation while searches go on and swaps it \
                     atomically; `refetch` first re-pulls everything from Zendesk.",
                ))
            }),
        )
        .api_route(
            "/v1/admin/status",
            get_with(admin_status, |op| {
                op.doc(Doc::admin(
                    "Sources, counts, index and jobs",
                    "Per source: last sync, result, error, cursor, counts by visibility and locale, next \
                     scheduled run; the index generation; recent jobs.",
                ))
            }),
        )
        .api_route(
            "/v1/admin/jobs/{id}",
            get_with(admin_job, |op| {
                op.doc(Doc::admin("One job", "A job's state and, once finished, its report.").not_found())
            }),
        );
    let keyed = content.merge(admin);
    let open = ApiRouter::new()
        .api_route(
            "/healthz",
            get_with(healthz, |op| op.doc(Doc::open("Liveness", "Always 200 while the process serves."))),
        )
        .api_route(
            "/readyz",
            get_with(readyz, |op| {
                op.doc(
                    Doc::open(
                        "Readiness",
                        "200 once a sync has completed in the data directory; 503 with what to do before.",
                    )
                    .unavailable(),
                )
            }),
        )
        .api_route(
            "/version",
            get_with(version, |op| op.doc(Doc::open("Version and commit of this build", ""))),
        )
        .api_route(
            "/metrics",
            get_with(metrics, |op| {
                op.doc(Doc::open(
                    "Prometheus metrics",
                    "Prometheus text format 0.0.4, or OpenMetrics 1.0 when the `Accept` header asks for \
                     `application/openmetrics-text`.",
                ))
                .with(docs::metrics_response)
            }),
        )
        .api_route(
            "/v1/instance/proof",
            get_with(instance_proof, |op| {
                op.doc(
                    Doc::open(
                        "Prove this is the server DATA_DIR/server.json names",
                        "Answers blake3-keyed(instance key, nonce); `helpdex reindex` checks it with the key \
                         in server.json before it sends an admin key.",
                    )
                    .bad_request(),
                )
                .with(docs::query_string_params)
            }),
        )
        .api_route(
            "/v1/webhooks/zendesk",
            post_with(zendesk_webhook, |op| {
                op.doc(
                    Doc::open(
                        "Zendesk article events",
                        "Signed by Zendesk (X-Zendesk-Webhook-Signature over the timestamp and body); \
                         syncs the article at once. A delivery already accepted within the tolerance \
                         window is acknowledged without syncing again.",
                    )
                    .bad_request()
                    .unauthorized()
                    .unavailable(),
                )
                .response_with::<200, Json<WebhookAck>, _>(|r| {
                    r.description("Already accepted within the tolerance window: nothing done")
                })
                .response_with::<202, Json<WebhookAck>, _>(|r| {
                    r.description("Accepted: the article syncs now (or the event is ignored)")
                })
            }),
        )
        .route_layer(timeout(limits));
    let keyed = keyed.route_layer(middleware::from_fn(require_key));
    open.merge(keyed)
}

/// Request latency histogram and one log line per request (no query strings: they can carry
/// customer questions, which are not ours to log). Labels are bounded: the matched route
/// template (or `unmatched`), one of a fixed set of methods (or `other`), the status code.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = crate::metrics::method_label(req.method());
    let request_id = req
        .headers()
        .get(crate::http::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    metrics.record_http(&route, method, status, elapsed);
    tracing::debug!(%route, method, status, request_id, ms = elapsed.as_millis() as u64, "http request");
    resp
}

/// `GET /healthz`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// `GET /readyz` once ready.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    /// The live index generation.
    pub generation: String,
    /// Indexed passages.
    pub passages: u64,
}

/// Ready once a sync has completed in the data directory (503 before, with what to do).
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Ready>> {
    let reader = state.engine.reader().clone();
    let index = blocking(move || {
        reader.ensure_ready()?;
        reader.index_status()
    })
    .await?;
    Ok(Json(Ready {
        status: "ready".into(),
        generation: index.generation,
        passages: index.passages,
    }))
}

/// `GET /version`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Version {
    /// `helpdex`.
    pub name: String,
    /// Release version.
    pub version: String,
    /// The git commit it was built from (`unknown` outside a git checkout).
    pub commit: String,
}

async fn version(State(state): State<AppState>) -> Json<Version> {
    Json(Version {
        name: "helpdex".into(),
        version: state.build.version.to_string(),
        commit: state.build.commit.to_string(),
    })
}

/// Runs a read on the blocking pool (SQLite and tantivy never run on the async runtime), a
/// bounded number at a time ([`crate::reads`]).
async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> ApiResult<T> {
    crate::reads::run(f)
        .await
        .map_err(|e| ApiError::internal("blocking task", e))?
        .map_err(Into::into)
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let reader = state.engine.reader().clone();
    let data_dir = state.cfg.data_dir.clone();
    let snapshot = blocking(move || {
        crate::metrics::StoreSnapshot::read(&reader, &data_dir).map_err(ApiError::from)
    })
    .await?;
    state.metrics.set_store(&snapshot);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = crate::metrics::Format::negotiate(accept);
    Ok((
        [(header::CONTENT_TYPE, format.content_type())],
        state.metrics.render(format),
    )
        .into_response())
}

/// The query contract, with the audience bounded by the caller's key.
fn validate(scope: Scope, input: QueryInput) -> ApiResult<helpdex_core::query::Query> {
    let access = grant(scope, &input)?;
    input
        .validate(access)
        .map_err(|e| ApiError::from(helpdex_core::search::QueryError::from(e)))
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
    Extension(scope): Extension<Scope>,
    QueryParams(input): QueryParams<QueryInput>,
) -> ApiResult<Json<SearchResponse>> {
    let q = validate(scope, input)?;
    let reader = state.engine.reader().clone();
    let metrics = state.metrics.clone();
    let resp = blocking(move || {
        let started = Instant::now();
        let r = helpdex_core::search::search(&reader, &q);
        metrics.observe_search(SearchKind::Search, "http", started.elapsed());
        r
    })
    .await?;
    Ok(Json(resp))
}

async fn context(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    JsonBody(input): JsonBody<QueryInput>,
) -> ApiResult<Json<ContextResponse>> {
    let q = validate(scope, input)?;
    let reader = state.engine.reader().clone();
    let metrics = state.metrics.clone();
    let resp = blocking(move || {
        let started = Instant::now();
        let r = helpdex_core::search::context(&reader, &q);
        metrics.observe_search(SearchKind::Context, "http", started.elapsed());
        r
    })
    .await?;
    Ok(Json(resp))
}

/// Query parameters of `GET /v1/articles/{id}`: who is asking, and one locale.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleParams {
    /// `customer` (default) or `agent` (within the key's scope).
    #[serde(default)]
    pub audience: Option<Audience>,
    /// Customer audience: the end user is signed in.
    #[serde(default)]
    pub signed_in: Option<bool>,
    /// Customer audience: the end user's Zendesk user segment ids, comma-separated.
    #[serde(default)]
    pub segments: Option<String>,
    /// Only this locale.
    #[serde(default)]
    pub locale: Option<String>,
}

/// `GET /v1/articles/{id}`: every readable translation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ArticleResponse {
    /// The article id.
    pub article_id: u64,
    /// Readable translations, by locale.
    pub translations: Vec<ArticleView>,
}

/// Path of `/v1/articles/{id}` and `/v1/admin/jobs/{id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct IdPath {
    /// A numeric id.
    pub id: String,
}

async fn article(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    Path(IdPath { id }): Path<IdPath>,
    QueryParams(p): QueryParams<ArticleParams>,
) -> ApiResult<Json<ArticleResponse>> {
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
    Ok(Json(ArticleResponse {
        article_id: id,
        translations: views,
    }))
}

/// Body of `POST /v1/verify`: the citations, and who is asking (as for a search).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Citations as hits returned them (at most 100).
    pub citations: Vec<CitationRef>,
    /// `customer` (default) or `agent` (within the key's scope).
    #[serde(default)]
    pub audience: Option<Audience>,
    /// Customer audience: the end user is signed in.
    #[serde(default)]
    pub signed_in: Option<bool>,
    /// Customer audience: the end user's Zendesk user segment ids.
    #[serde(default)]
    pub segments: Option<Vec<u64>>,
}

impl VerifyRequest {
    /// The access it asks for, bounded by `scope`.
    pub fn access(&self, scope: Scope) -> Result<Access, auth::Denied> {
        let mut segments = self.segments.clone().unwrap_or_default();
        segments.sort_unstable();
        segments.dedup();
        auth::grant(
            scope,
            self.audience,
            self.signed_in.unwrap_or(false),
            segments,
        )
    }
}

async fn verify(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    let access = req.access(scope)?;
    let reader = state.engine.reader().clone();
    let metrics = state.metrics.clone();
    let resp = blocking(move || {
        let started = Instant::now();
        let r = helpdex_core::verify::verify(&reader, &req.citations, &access);
        metrics.observe_search(SearchKind::Verify, "http", started.elapsed());
        r
    })
    .await?;
    Ok(Json(resp))
}

/// Body of `POST /v1/admin/sync`.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyncBody {
    /// Run the full hash sweep.
    pub full: bool,
    /// Only these sources (default all).
    pub sources: Option<Vec<String>>,
    /// Wait for the run to finish (default true); false answers 202 with a job id.
    pub wait: Option<bool>,
}

/// A sync report as `helpdex sync --json` prints it (documented loosely: its fields are the
/// sync crate's, one object per source).
#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncReportDoc {
    /// One report per source: counts of requests, articles fetched, added, updated,
    /// unchanged, removed, translations re-indexed, retries, rate-limit wait, and the error.
    pub sources: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /v1/admin/sync` with `"wait": false`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobAccepted {
    /// The job (see `/v1/admin/jobs/{id}`).
    pub job_id: JobId,
    /// Always `queued`.
    pub state: String,
}

/// `POST /v1/admin/sync` once the run finished.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncDone {
    /// The job.
    pub job_id: JobId,
    /// How it ended.
    pub outcome: RunOutcome,
}

fn shutting_down(_: SchedulerError) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        "helpdex is shutting down; retry against the next instance",
    )
}

/// An optional JSON body: empty means every default.
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: for<'de> Deserialize<'de> + Default,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => e.into_response(),
                _ => ApiError::bad(e.body_text()).into_response(),
            })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&body)
            .map(OptionalJson)
            .map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")).into_response())
    }
}

impl<T: JsonSchema> aide::OperationInput for OptionalJson<T> {
    fn operation_input(ctx: &mut aide::generate::GenContext, op: &mut aide::openapi::Operation) {
        Json::<T>::operation_input(ctx, op);
        if let Some(aide::openapi::ReferenceOr::Item(b)) = op.request_body.as_mut() {
            b.required = false;
        }
    }
}

async fn admin_sync(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    OptionalJson(b): OptionalJson<SyncBody>,
) -> ApiResult<Response> {
    auth::require_admin(scope)?;
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
            Json(JobAccepted {
                job_id: job.id(),
                state: "queued".into(),
            }),
        )
            .into_response());
    }
    let job_id = job.id();
    let outcome = job.wait().await;
    Ok(Json(SyncDone { job_id, outcome }).into_response())
}

/// Body of `POST /v1/admin/reindex`.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReindexBody {
    /// Re-pull everything from Zendesk first (a full sync), then rebuild.
    pub refetch: bool,
}

/// `POST /v1/admin/reindex`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Reindexed {
    /// The new generation.
    pub reindex: RebuildReport,
    /// The full sync run first (`refetch`).
    pub sync: Option<RunOutcome>,
}

async fn admin_reindex(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    OptionalJson(b): OptionalJson<ReindexBody>,
) -> ApiResult<Json<Reindexed>> {
    auth::require_admin(scope)?;
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
    Ok(Json(Reindexed {
        reindex: report,
        sync,
    }))
}

/// One source in `GET /v1/admin/status`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SourceStatus {
    /// Stored state: cursor, last run, result, error.
    pub source: SourceState,
    /// Published translations by visibility and locale.
    pub counts: Vec<Count>,
    /// When the schedule next queues a sync.
    pub next_run: Option<DateTime<Utc>>,
}

/// `GET /v1/admin/status`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AdminStatus {
    /// Per source.
    pub sources: Vec<SourceStatus>,
    /// All sources together.
    pub counts: Vec<Count>,
    /// The live index, once built.
    pub index: Option<IndexStatus>,
    /// The sync queue.
    pub jobs: SchedulerStatus,
    /// Passage vectors of the embedding model (hybrid retrieval), when one embeds here.
    pub vectors: Option<helpdex_core::vectors::VectorStatus>,
}

async fn admin_status(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
) -> ApiResult<Json<AdminStatus>> {
    auth::require_admin(scope)?;
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
        let vectors = helpdex_core::vectors::status(&reader)?;
        Ok::<_, ApiError>((sources, counts, (reader.index_status().ok(), vectors)))
    })
    .await?;
    let (index, vectors) = index;
    let sources = sources
        .into_iter()
        .map(|(s, counts)| SourceStatus {
            next_run: state.scheduler.next_run(&s.name),
            source: s,
            counts,
        })
        .collect();
    Ok(Json(AdminStatus {
        sources,
        counts,
        index,
        jobs: state.scheduler.status(),
        vectors,
    }))
}

async fn admin_job(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<JobStatus>> {
    auth::require_admin(scope)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad("job ids are numbers"))?;
    match state.scheduler.job(id) {
        Some(j) => Ok(Json(j)),
        None => Err(ApiError::new(ErrorCode::NotFound, format!("no job {id}"))),
    }
}

/// Query of `GET /v1/instance/proof`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofParams {
    /// 16 to 128 hex characters chosen by the caller.
    pub nonce: String,
}

/// `GET /v1/instance/proof`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Proof {
    /// Hex of blake3's keyed hash of the nonce under the instance key.
    pub proof: String,
}

async fn instance_proof(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<ProofParams>,
) -> ApiResult<Json<Proof>> {
    let nonce = p.nonce.trim();
    if !(16..=128).contains(&nonce.len()) || !nonce.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad("nonce: 16 to 128 hex characters"));
    }
    Ok(Json(Proof {
        proof: crate::server::prove(&state.instance_key, nonce),
    }))
}

/// `POST /v1/webhooks/zendesk`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookAck {
    /// The sync job queued for the article.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// The article named by the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article_id: Option<u64>,
    /// Why the event was acknowledged without a sync (not an article event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// True when the same delivery was already accepted (replayed or retried): nothing is done.
    pub duplicate: bool,
}

async fn zendesk_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<WebhookAck>)> {
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
    let now = Utc::now();
    if let Err(e) = webhook::verify(
        secret.expose().as_bytes(),
        ts,
        &body,
        sig,
        now,
        state.cfg.server.webhook_tolerance,
    ) {
        tracing::warn!(error = %e, "webhook rejected");
        return Err(ApiError::new(ErrorCode::Unauthorized, e.to_string()));
    }
    let ack = |ignored: Option<String>, duplicate: bool| WebhookAck {
        job_id: None,
        article_id: None,
        ignored,
        duplicate,
    };
    let event = match webhook::parse(&body) {
        Ok(ev) => ev,
        // Zendesk retries what is not acknowledged: say yes to events we do not act on.
        Err(e @ webhook::WebhookError::UnsupportedEvent(_)) => {
            tracing::info!(error = %e, "webhook ignored");
            return Ok((StatusCode::ACCEPTED, Json(ack(Some(e.to_string()), false))));
        }
        Err(e) => return Err(ApiError::bad(e.to_string())),
    };
    if !state
        .replays
        .first_time(&webhook::delivery_key(&event, sig), now)
    {
        tracing::info!(article_id = event.article_id, event_id = ?event.event_id, "webhook delivery already accepted; ignored");
        state.metrics.record_webhook("duplicate");
        return Ok((
            StatusCode::OK,
            Json(WebhookAck {
                article_id: Some(event.article_id),
                ..ack(None, true)
            }),
        ));
    }
    tracing::info!(article_id = event.article_id, kind = %event.event_type, "webhook: syncing article now");
    state.metrics.record_webhook("accepted");
    let job = state
        .scheduler
        .trigger(SyncRequest::webhook(vec![event.article_id], None))
        .map_err(shutting_down)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookAck {
            job_id: Some(job.id()),
            article_id: Some(event.article_id),
            ..ack(None, false)
        }),
    ))
}
