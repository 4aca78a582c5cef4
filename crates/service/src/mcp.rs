//! The Model Context Protocol server: over stdio (`helpdex mcp`, which an AI runtime launches)
//! and over Streamable HTTP at `/mcp` of `helpdex serve` ([`http_service`]).
//!
//! Four read-only tools ground answers in the help center: `search_help_center` (cited
//! passages), `get_context` (a prompt-ready block with numbered citations), `get_article`
//! (one article's readable translations) and `verify_citations` (are the citations an answer
//! used still current?). Every result carries a human-readable text item that shows the
//! citation urls, and `structuredContent` holding the same JSON the CLI and HTTP API return;
//! each tool declares that JSON's schema as its `outputSchema`, derived with schemars from the
//! very types that are serialized.
//!
//! Audience is the security boundary. Over stdio the operator sets [`McpPolicy::max_audience`]
//! on the command line; over HTTP it is the scope of the request's API key, checked before the
//! request reaches the handler, exactly as on `/v1`. A call asking for more is refused with an
//! `isError` result, never silently downgraded or
//! elevated. A call that names no audience is answered for a customer, so internal content is
//! only ever returned on an explicit, permitted `"audience": "agent"`. Customer calls may widen
//! their view only through `signed_in` and `segments`, which agent calls ignore.
//!
//! The protocol is handled by the official `rmcp` SDK rather than a hand-written JSON-RPC loop.
//! It adds 17 small crates to the lock file (rmcp, schemars, a second sha2/digest; no version
//! conflicts, `macros` feature unused). In exchange, version negotiation (the client's version
//! when supported, else the newest one with an `initialize` handshake), ping, cancellation,
//! concurrent requests, JSON-RPC error codes and per-revision wire differences stay correct as
//! the spec moves, without us maintaining them. Input that is not JSON at all is ignored, as in
//! the other official SDKs (a reply could start an error loop with a confused peer); JSON that
//! is not a JSON-RPC message gets `-32600`. Logs go through `tracing`, which the binary must
//! send to stderr: stdout carries protocol messages only.

use helpdex_core::article::{self, ArticleView};
use helpdex_core::error::ErrorCode;
use helpdex_core::model::{Access, Audience};
use helpdex_core::query::{
    self as contract, DEFAULT_LIMIT, DEFAULT_MAX_CHARS, MAX_LIMIT, MAX_MAX_CHARS, MIN_MAX_CHARS,
    QueryInput,
};
use helpdex_core::reader::{LazyReader, ReadError, Reader};
use helpdex_core::search::{self, ContextResponse, QueryError, SearchResponse};
use helpdex_core::verify::{CitationRef, CitationStatus, VerifyResponse};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, ServerInitializeError};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

/// Tool name: cited passages for a question.
pub const TOOL_SEARCH: &str = "search_help_center";
/// Tool name: a grounded context block with numbered citations.
pub const TOOL_CONTEXT: &str = "get_context";
/// Tool name: one article's text, by id.
pub const TOOL_ARTICLE: &str = "get_article";
/// Tool name: the stale-citation check.
pub const TOOL_VERIFY: &str = "verify_citations";

/// How much of each passage the text item of `search_help_center` shows; the full text stays in
/// `structuredContent` and `get_context` / `get_article` return whole passages.
const TEXT_PASSAGE_CHARS: usize = 1200;

/// What the operator allows this server to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct McpPolicy {
    /// The widest audience a tool call may ask for. `Customer` (the default) refuses every
    /// `"audience": "agent"` call, so internal articles cannot leave the process.
    pub max_audience: Audience,
}

/// The MCP session could not start or failed while running.
#[derive(Debug, thiserror::Error)]
#[error("mcp session failed: {0}")]
pub struct McpError(String);

/// The MCP service of `helpdex serve` at `/mcp`: Streamable HTTP, stateless (each POST carries
/// one JSON-RPC message and gets its answer as JSON), over the server's own reader. The
/// audience of each call is bounded by the scope [`crate::api::require_key`] put on the request.
pub fn http_service(
    state: crate::api::AppState,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    HelpdexMcp,
    rmcp::transport::streamable_http_server::session::never::NeverSessionManager,
> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(crate::http::MAX_BODY_BYTES);
    if !state.keys.is_empty() {
        // Keys authenticate every request, so the Host check against DNS rebinding (which
        // only matters for a keyless server on loopback) would only refuse real host names.
        config = config.disable_allowed_hosts();
    }
    let reader = Arc::new(LazyReader::ready(state.engine.reader().clone()));
    let metrics = state.metrics.clone();
    StreamableHttpService::new(
        move || {
            Ok(HelpdexMcp {
                reader: reader.clone(),
                bound: Bound::PerKey,
                metrics: Some(metrics.clone()),
            })
        },
        Arc::new(Default::default()),
        config,
    )
}

/// Serves MCP on stdin/stdout until the client closes the stream.
pub async fn serve_stdio(reader: Arc<LazyReader>, policy: McpPolicy) -> Result<(), McpError> {
    let (stdin, stdout) = rmcp::transport::stdio();
    serve(reader, policy, stdin, stdout).await
}

/// Serves MCP over any byte stream pair (newline-delimited JSON-RPC) until the reader ends.
pub async fn serve<R, W>(
    reader: Arc<LazyReader>,
    policy: McpPolicy,
    input: R,
    output: W,
) -> Result<(), McpError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    tracing::info!(
        max_audience = policy.max_audience.as_str(),
        "mcp server starting"
    );
    let running = match HelpdexMcp::new(reader, policy).serve((input, output)).await {
        Ok(r) => r,
        // A client that goes away before initializing is not a server failure.
        Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(e) => return Err(McpError(format!("could not start: {e}"))),
    };
    let reason = running
        .waiting()
        .await
        .map_err(|e| McpError(e.to_string()))?;
    tracing::info!(reason = ?reason, "mcp server stopped");
    Ok(())
}

/// Where the audience bound of a call comes from.
#[derive(Clone, Copy, Debug)]
enum Bound {
    /// The operator's `--audience` (stdio).
    Fixed(McpPolicy),
    /// The scope of the request's API key (HTTP); no scope, no answer.
    PerKey,
}

/// The MCP handler: a reader, where the audience bound comes from, and (in `serve`) metrics.
#[derive(Clone)]
pub struct HelpdexMcp {
    reader: Arc<LazyReader>,
    bound: Bound,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl HelpdexMcp {
    fn new(reader: Arc<LazyReader>, policy: McpPolicy) -> Self {
        HelpdexMcp {
            reader,
            bound: Bound::Fixed(policy),
            metrics: None,
        }
    }

    /// The policy of this call: fixed, or from the HTTP request's key scope.
    fn policy(&self, context: &RequestContext<RoleServer>) -> Result<McpPolicy, ErrorData> {
        match self.bound {
            Bound::Fixed(p) => Ok(p),
            Bound::PerKey => context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<crate::auth::Scope>())
                .map(|scope| McpPolicy {
                    max_audience: scope.max_audience(),
                })
                .ok_or_else(|| {
                    ErrorData::invalid_request("no API key: send Authorization: Bearer KEY", None)
                }),
        }
    }
}

impl ServerHandler for HelpdexMcp {
    fn get_info(&self) -> ServerConfig {
        let policy = match self.bound {
            Bound::Fixed(p) => p,
            // The key of the initialize request is not known here: describe the customer
            // bound; agent keys see the agent audience offered in their tool schemas.
            Bound::PerKey => McpPolicy::default(),
        };
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("helpdex", env!("CARGO_PKG_VERSION")))
            .with_instructions(instructions(&policy))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools(
            &self.policy(&context)?,
        )))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools(&McpPolicy::default())
            .into_iter()
            .find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let policy = self.policy(&context)?;
        let args = Value::Object(request.arguments.unwrap_or_default());
        let call = match parse_call(&policy, &request.name, args) {
            Ok(c) => c,
            Err(CallError::UnknownTool(name)) => {
                // Unroutable: a protocol error, as the MCP spec shows for unknown tools.
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool '{name}'; available: {TOOL_SEARCH}, {TOOL_CONTEXT}, {TOOL_ARTICLE}, {TOOL_VERIFY}"
                    ),
                    None,
                ));
            }
            Err(e) => {
                tracing::info!(tool = %request.name, error = %e, "mcp tool call refused");
                return Ok(error_result(e.to_string()).into());
            }
        };
        let reader = self.reader.clone();
        let metrics = self.metrics.clone();
        // tantivy and SQLite block: keep them off the async workers, a bounded number at once.
        let result = match crate::reads::run(move || {
            let started = std::time::Instant::now();
            let kind = call.kind();
            let r = execute(&*reader.get()?, call);
            if let Some(m) = &metrics {
                m.observe_search(kind, "mcp", started.elapsed());
            }
            r
        })
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(tool = %request.name, error = %e, "mcp tool call failed");
                error_result(e.public_message())
            }
            Err(e) => {
                tracing::error!(tool = %request.name, error = %e, "mcp tool task panicked");
                error_result(
                    "internal error in helpdex; the help center cannot be searched right now"
                        .into(),
                )
            }
        };
        Ok(result.into())
    }
}

fn error_result(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// A tool call that cannot run as asked.
#[derive(Debug, Error, PartialEq)]
enum CallError {
    /// No such tool.
    #[error("unknown tool '{0}'")]
    UnknownTool(String),
    /// Arguments do not match the tool's schema.
    #[error("invalid request: {message}")]
    InvalidArguments {
        /// Tool.
        tool: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Arguments break the query contract (the same message as over HTTP and the CLI).
    #[error(transparent)]
    Contract(#[from] contract::InvalidQuery),
    /// The call asks for more than the operator allows.
    #[error(
        "audience '{asked}' is not allowed on this server (the operator limited it to '{max}'); \
         call again without \"audience\" or with \"audience\": \"customer\""
    )]
    AudienceNotAllowed {
        /// Requested.
        asked: &'static str,
        /// Allowed maximum.
        max: &'static str,
    },
}

/// A failure while running a valid call.
#[derive(Debug, Error)]
#[error(transparent)]
struct ToolError(#[from] QueryError);

impl From<ReadError> for ToolError {
    fn from(e: ReadError) -> Self {
        ToolError(e.into())
    }
}

impl ToolError {
    /// What the AI runtime may read: caller mistakes and "not synced yet" verbatim (they say
    /// what to do), internal failures without details (those go to the log).
    fn public_message(&self) -> String {
        match self.0.code() {
            ErrorCode::Internal => {
                "internal error in helpdex; the help center cannot be searched right now".into()
            }
            _ => self.0.to_string(),
        }
    }
}

/// A validated tool call, ready to run.
#[derive(Debug, Clone)]
enum ToolCall {
    Search(contract::Query),
    Context(contract::Query),
    Article {
        article_id: u64,
        locale: Option<String>,
        access: Access,
    },
    Verify {
        citations: Vec<CitationRef>,
        access: Access,
    },
}

impl ToolCall {
    fn kind(&self) -> crate::metrics::SearchKind {
        use crate::metrics::SearchKind;
        match self {
            ToolCall::Search(_) => SearchKind::Search,
            ToolCall::Context(_) => SearchKind::Context,
            ToolCall::Article { .. } => SearchKind::Article,
            ToolCall::Verify { .. } => SearchKind::Verify,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyArgs {
    citations: Vec<CitationRef>,
    #[serde(default)]
    audience: Option<Audience>,
    #[serde(default)]
    signed_in: Option<bool>,
    #[serde(default)]
    segments: Option<Vec<u64>>,
}

// The argument shapes. Unknown fields are refused so a misspelt access parameter is reported
// instead of silently changing what the caller sees.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArticleArgs {
    article_id: u64,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    audience: Option<Audience>,
    #[serde(default)]
    signed_in: Option<bool>,
    #[serde(default)]
    segments: Option<Vec<u64>>,
}

/// Checks a call's name and arguments against the tools and the policy. Pure.
fn parse_call(policy: &McpPolicy, name: &str, args: Value) -> Result<ToolCall, CallError> {
    fn de<T: serde::de::DeserializeOwned>(tool: &'static str, args: Value) -> Result<T, CallError> {
        serde_json::from_value(args).map_err(|e| CallError::InvalidArguments {
            tool,
            message: e.to_string(),
        })
    }
    match name {
        TOOL_SEARCH | TOOL_CONTEXT => {
            let tool = if name == TOOL_SEARCH {
                TOOL_SEARCH
            } else {
                TOOL_CONTEXT
            };
            let input: QueryInput = de(tool, args)?;
            let access = resolve_access(
                policy,
                input.audience,
                input.signed_in,
                input.segments.clone(),
            )?;
            let q = input.validate(access)?;
            Ok(if tool == TOOL_SEARCH {
                ToolCall::Search(q)
            } else {
                ToolCall::Context(q)
            })
        }
        TOOL_ARTICLE => {
            let a: ArticleArgs = de(TOOL_ARTICLE, args)?;
            let access = resolve_access(policy, a.audience, a.signed_in, a.segments)?;
            Ok(ToolCall::Article {
                article_id: a.article_id,
                locale: a.locale.as_deref().map(contract::normalize_locale),
                access,
            })
        }
        TOOL_VERIFY => {
            let a: VerifyArgs = de(TOOL_VERIFY, args)?;
            let access = resolve_access(policy, a.audience, a.signed_in, a.segments)?;
            Ok(ToolCall::Verify {
                citations: a.citations,
                access,
            })
        }
        other => Err(CallError::UnknownTool(other.to_string())),
    }
}

/// The access a call gets: customer unless it asks for (and the policy allows) agent. Agents see
/// everything published, so their sign-in and segments are dropped.
fn resolve_access(
    policy: &McpPolicy,
    audience: Option<Audience>,
    signed_in: Option<bool>,
    segments: Option<Vec<u64>>,
) -> Result<Access, CallError> {
    // The operator's `--audience` plays the part of an API key's scope: same rule as HTTP.
    let scope = match policy.max_audience {
        Audience::Customer => crate::auth::Scope::Customer,
        Audience::Agent => crate::auth::Scope::Agent,
    };
    let mut segments = segments.unwrap_or_default();
    segments.sort_unstable();
    segments.dedup();
    crate::auth::grant(scope, audience, signed_in.unwrap_or(false), segments).map_err(|_| {
        CallError::AudienceNotAllowed {
            asked: Audience::Agent.as_str(),
            max: policy.max_audience.as_str(),
        }
    })
}

/// Runs a validated call (blocking: tantivy and SQLite).
fn execute(reader: &Reader, call: ToolCall) -> Result<CallToolResult, ToolError> {
    Ok(match call {
        ToolCall::Search(req) => {
            let resp = search::search(reader, &req)?;
            tool_result(search_text(&resp), &resp)
        }
        ToolCall::Context(req) => {
            let resp = search::context(reader, &req)?;
            tool_result(context_text(&resp), &resp)
        }
        ToolCall::Article {
            article_id,
            locale,
            access,
        } => {
            reader.ensure_ready()?;
            let views = article::get(reader, article_id, locale.as_deref(), &access)?;
            if views.is_empty() {
                // Same answer for unknown and not-readable: existence must not leak.
                error_result(format!(
                    "no article {article_id}{} is available to this audience",
                    locale
                        .map(|l| format!(" in locale {l}"))
                        .unwrap_or_default()
                ))
            } else {
                let text = article_text(&views);
                let structured = crate::api::ArticleResponse {
                    article_id,
                    translations: views,
                };
                tool_result(text, &structured)
            }
        }
        ToolCall::Verify { citations, access } => {
            let resp =
                helpdex_core::verify::verify(reader, &citations, &access).map_err(|e| match e {
                    helpdex_core::verify::VerifyError::Invalid(i) => {
                        ToolError(QueryError::Invalid(i))
                    }
                    helpdex_core::verify::VerifyError::Read(r) => ToolError(QueryError::Read(r)),
                })?;
            tool_result(verify_text(&resp), &resp)
        }
    })
}

/// The text item of `verify_citations`: one line per citation.
fn verify_text(resp: &VerifyResponse) -> String {
    let mut out = if resp.all_current {
        "Every citation is current.\n".to_string()
    } else {
        "Some citations are stale: re-ground the answer (search again) before using them.\n"
            .to_string()
    };
    for (i, c) in resp.results.iter().enumerate() {
        let what = c
            .passage_id
            .as_deref()
            .or(c.url.as_deref())
            .unwrap_or("citation");
        let status = match c.status {
            CitationStatus::Current => "current".to_string(),
            CitationStatus::Changed => format!(
                "changed (now {})",
                c.current_url.as_deref().unwrap_or("see the article")
            ),
            CitationStatus::Gone => "gone: do not cite it".to_string(),
        };
        out.push_str(&format!("[{}] {what}: {status}\n", i + 1));
    }
    out
}

fn tool_result<T: serde::Serialize>(text: String, structured: &T) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    // These types always serialize (plain structs of strings and numbers).
    r.structured_content = serde_json::to_value(structured).ok();
    r
}

fn heading_of(title: &str, heading: &str) -> String {
    if heading.is_empty() {
        title.to_string()
    } else {
        format!("{title} › {heading}")
    }
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The text item of `search_help_center`: numbered passages, each with its citation url.
fn search_text(resp: &SearchResponse) -> String {
    if resp.hits.is_empty() {
        return format!(
            "No help center content matches \"{}\" for this audience. Say that the help center does \
             not cover it rather than guessing.",
            resp.query
        );
    }
    let mut out = format!(
        "{} passage(s) from the help center for \"{}\" (audience: {}). Cite the url of every passage \
         you use.\n",
        resp.hits.len(),
        resp.query,
        resp.audience.as_str()
    );
    for (i, h) in resp.hits.iter().enumerate() {
        out.push_str(&format!(
            "\n[{}] {}\n{}\n{}{}\n",
            i + 1,
            heading_of(&h.title, &h.heading),
            h.url,
            clip(&h.text, TEXT_PASSAGE_CHARS),
            if h.outdated {
                "\n(this translation is marked outdated)"
            } else {
                ""
            }
        ));
    }
    out
}

/// The text item of `get_context`: the context block, then the numbered sources.
fn context_text(resp: &ContextResponse) -> String {
    if !resp.found {
        return format!(
            "No help center content matches \"{}\" for this audience. Say that the help center does \
             not cover it rather than guessing.",
            resp.query
        );
    }
    let mut out = format!("{}\n\nSources:\n", resp.context);
    for c in &resp.citations {
        out.push_str(&format!(
            "[{}] {} {}\n",
            c.n,
            heading_of(&c.title, &c.heading),
            c.url
        ));
    }
    out.push_str(
        "\nAnswer only from these passages and cite each source you use as [n] with its url.",
    );
    out
}

/// The text item of `get_article`: every readable translation, section by section with urls.
fn article_text(views: &[ArticleView]) -> String {
    let mut out = String::new();
    for v in views {
        out.push_str(&format!(
            "# {} ({}, {})\n{}\n",
            v.title, v.locale, v.visibility, v.url
        ));
        if v.outdated {
            out.push_str("(this translation is marked outdated)\n");
        }
        for s in &v.sections {
            out.push('\n');
            if !s.heading.is_empty() {
                out.push_str(&format!("## {}\n", s.heading));
            }
            out.push_str(&format!("{}\nSource: {}\n", s.text, s.url));
        }
        out.push('\n');
    }
    out.push_str("Cite the Source url of each part you use.");
    out
}

fn instructions(policy: &McpPolicy) -> String {
    let mut s = String::from(
        "helpdex answers from the company's Zendesk Help Center. Use search_help_center or \
         get_context before answering any product, account, billing or how-to question, answer only \
         from what they return, and cite the url of every passage you rely on. If nothing is found, \
         say so instead of guessing.",
    );
    if policy.max_audience == Audience::Agent {
        s.push_str(
            " Results are for customers unless a call sets \"audience\": \"agent\"; do that only when \
             assisting a support agent, never when the answer goes to a customer.",
        );
    }
    s
}

/// The access parameters every tool shares, described for the policy in force.
fn access_properties(policy: &McpPolicy) -> serde_json::Map<String, Value> {
    let audience = match policy.max_audience {
        Audience::Customer => json!({
            "type": "string",
            "enum": ["customer"],
            "default": "customer",
            "description": "Whose answer this grounds. This server only answers for customers: \
                            results never include internal (agent-only) articles."
        }),
        Audience::Agent => json!({
            "type": "string",
            "enum": ["customer", "agent"],
            "default": "customer",
            "description": "Whose answer this grounds. \"customer\" (default): only what the end \
                            user may see. \"agent\": also internal, agent-only articles; use it only \
                            when assisting a support agent, never for text shown to a customer."
        }),
    };
    let props = json!({
        "audience": audience,
        "signed_in": {
            "type": "boolean",
            "default": false,
            "description": "Customer audience only: the end user is signed in to the help center, \
                            which adds articles for signed-in users. Ignored for agents."
        },
        "segments": {
            "type": "array",
            "items": { "type": "integer", "minimum": 0 },
            "description": "Customer audience only: the Zendesk user segment ids the end user \
                            belongs to, which add articles restricted to those segments (implies \
                            signed in). Ignored for agents."
        }
    });
    match props {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn object_schema(
    mut properties: serde_json::Map<String, Value>,
    policy: &McpPolicy,
    required: &[&str],
) -> JsonObject {
    properties.extend(access_properties(policy));
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    });
    match schema {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

fn props(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The three tools, with schemas and descriptions written for the model that picks them.
fn tools(policy: &McpPolicy) -> Vec<Tool> {
    let read_only = ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false);
    let locale = json!({
        "type": "string",
        "description": "Only this help center locale, e.g. \"en-us\" or \"de\". Omit to search all locales."
    });
    let search = Tool::new(
        TOOL_SEARCH,
        "Search the company's Zendesk Help Center for passages relevant to a question. Use it \
         before answering any product, account, billing or how-to question. Returns the best \
         passages, each with its article title, heading and citation url. Answer only from these \
         passages and cite the url of each one you use; if nothing is returned, say the help \
         center does not cover it.",
        object_schema(
            props(json!({
                "query": { "type": "string", "description": "The question or keywords, in the user's words." },
                "locale": locale,
                "limit": {
                    "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                    "description": "Maximum number of passages."
                },
                "max_chars": {
                    "type": "integer", "minimum": MIN_MAX_CHARS, "maximum": MAX_MAX_CHARS,
                    "default": DEFAULT_MAX_CHARS,
                    "description": "Unused by this tool (the context budget of get_context); accepted so both tools take the same request."
                }
            })),
            policy,
            &["query"],
        ),
    )
    .with_title("Search the help center")
    .with_output_schema::<SearchResponse>()
    .with_annotations(read_only.clone());
    let context = Tool::new(
        TOOL_CONTEXT,
        "Get a ready-to-quote grounding context for a question: the most relevant help center \
         passages within a character budget, numbered [1], [2], … with a source list (title, \
         heading, url). Use it when you are about to write an answer. Answer only from the \
         context and cite sources as [n] with their url; if it reports nothing found, say so \
         instead of guessing.",
        object_schema(
            props(json!({
                "query": { "type": "string", "description": "The question to ground, in the user's words." },
                "locale": locale,
                "max_chars": {
                    "type": "integer", "minimum": MIN_MAX_CHARS, "maximum": MAX_MAX_CHARS,
                    "default": DEFAULT_MAX_CHARS,
                    "description": "Character budget for the context block."
                },
                "limit": {
                    "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                    "description": "Maximum number of passages considered."
                }
            })),
            policy,
            &["query"],
        ),
    )
    .with_title("Grounding context with citations")
    .with_output_schema::<ContextResponse>()
    .with_annotations(read_only.clone());
    let article = Tool::new(
        TOOL_ARTICLE,
        "Read one help center article in full, by its Zendesk article id (from a search result or \
         a help center url such as /articles/123-title). Returns every readable translation, \
         section by section, each with its citation url. Cite the url of each section you use.",
        object_schema(
            props(json!({
                "article_id": { "type": "integer", "minimum": 1, "description": "Zendesk article id." },
                "locale": locale
            })),
            policy,
            &["article_id"],
        ),
    )
    .with_title("Read a help center article")
    .with_output_schema::<crate::api::ArticleResponse>()
    .with_annotations(read_only.clone());
    let verify = Tool::new(
        TOOL_VERIFY,
        "Check whether citations you used are still current before reusing an answer (a cached \
         answer, or an earlier turn of a long conversation). Send the hits or citations exactly \
         as search_help_center or get_context returned them. Each comes back current, changed \
         (quote it again from its current url) or gone (do not cite it).",
        object_schema(
            props(json!({
                "citations": {
                    "type": "array", "minItems": 1, "maxItems": helpdex_core::verify::MAX_CITATIONS,
                    "description": "Hits or citations as returned: each needs its passage_id, or its url and content_hash; other fields are ignored.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "passage_id": { "type": "string" },
                            "url": { "type": "string" },
                            "content_hash": { "type": "string" }
                        }
                    }
                }
            })),
            policy,
            &["citations"],
        ),
    )
    .with_title("Check citations for staleness")
    .with_output_schema::<VerifyResponse>()
    .with_annotations(read_only);
    vec![search, context, article, verify]
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdex_core::engine::Engine;
    use helpdex_core::model::Visibility;
    use helpdex_core::normalize::NormalizeOptions;
    use helpdex_core::store::Batch;
    use helpdex_core::visibility::Decision;
    use helpdex_sync::plan::{ArticleMeta, TranslationIn, plan_article};
    use std::collections::HashMap;
    use std::time::Duration;
    use tokio::io::{
        AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
    };
    use tokio::task::JoinHandle;

    const SOURCE: &str = "default";
    const PUBLIC_ID: u64 = 1001;
    const INTERNAL_ID: u64 = 1002;
    const RESTRICTED_ID: u64 = 1003;
    const SEGMENT: u64 = 42;
    /// Words only the internal article contains; no customer-audience output may include them.
    const SECRETS: [&str; 2] = ["zanzibar", "7731"];

    fn url(id: u64) -> String {
        format!("https://help.example.com/hc/en-us/articles/{id}-article")
    }

    fn add(batch: &mut Batch, id: u64, title: &str, body: &str, decision: Decision) {
        let meta = ArticleMeta {
            id,
            section_id: Some(7),
            source_locale: "en-us".into(),
            segments: Some(vec![]),
            labels: vec![],
            updated_at: Some("2024-05-01T10:00:00Z".into()),
            outdated_locales: vec![],
        };
        let tr = TranslationIn {
            locale: "en-us".into(),
            title: title.into(),
            body: Some(body.into()),
            draft: false,
            outdated: false,
            html_url: url(id),
            updated_at: Some("2024-05-01T10:00:00Z".into()),
        };
        plan_article(
            SOURCE,
            &meta,
            &[tr],
            None,
            &decision,
            &HashMap::new(),
            &NormalizeOptions::default(),
            true,
            batch,
        );
    }

    fn decision(visibility: Visibility, access: &[&str]) -> Decision {
        Decision {
            visibility,
            access: access.iter().map(|s| s.to_string()).collect(),
            rule: "test".into(),
        }
    }

    /// A real engine in a tempdir holding a public, an internal and a segment-restricted article,
    /// all about resetting a password.
    fn engine() -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path(), NormalizeOptions::default()).expect("engine opens");
        engine
            .start_run(SOURCE, "https://help.example.com")
            .expect("source");
        let mut batch = Batch::default();
        add(
            &mut batch,
            PUBLIC_ID,
            "Reset your password",
            "<p>Forgot your password? You can reset it yourself.</p>\
             <h2 id=\"steps\">Steps to reset your password</h2>\
             <p>Open Settings, choose Reset password and follow the link in the reset email.</p>",
            decision(Visibility::Public, &["public", "staff"]),
        );
        add(
            &mut batch,
            INTERNAL_ID,
            "Password reset escalation",
            "<p>Agents may reset a password without the reset email using the zanzibar override code \
             7731 after verifying identity.</p>",
            decision(Visibility::Internal, &["staff"]),
        );
        add(
            &mut batch,
            RESTRICTED_ID,
            "Premium vault password reset",
            "<p>Premium members reset the vault password from the vault page.</p>",
            decision(Visibility::Restricted, &["segment:42", "staff"]),
        );
        engine.apply(SOURCE, &batch).expect("batch applies");
        engine
            .finish_run(SOURCE, None, &json!({}), None)
            .expect("run recorded");
        (dir, Arc::new(engine))
    }

    /// A JSON-RPC client on the other end of an in-memory pipe.
    struct Client {
        writer: WriteHalf<DuplexStream>,
        lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
        server: JoinHandle<Result<(), McpError>>,
        next_id: i64,
        _engine: Arc<Engine>,
        _dir: tempfile::TempDir,
    }

    impl Client {
        fn start(policy: McpPolicy) -> Client {
            let (dir, engine) = engine();
            let (client, server) = tokio::io::duplex(1 << 20);
            let (sr, sw) = tokio::io::split(server);
            let reader = Arc::new(LazyReader::ready(engine.reader().clone()));
            let server = tokio::spawn(serve(reader, policy, sr, sw));
            let (cr, cw) = tokio::io::split(client);
            Client {
                writer: cw,
                lines: BufReader::new(cr).lines(),
                server,
                next_id: 0,
                _engine: engine,
                _dir: dir,
            }
        }

        /// Started and through the initialize handshake.
        async fn ready(policy: McpPolicy) -> Client {
            let mut c = Client::start(policy);
            let (_, init) = c
                .request(
                    "initialize",
                    json!({
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": { "name": "test", "version": "0" }
                    }),
                )
                .await;
            assert!(init.get("result").is_some(), "initialize failed: {init}");
            c.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
                .await;
            c
        }

        async fn send_raw(&mut self, line: &str) {
            self.writer.write_all(line.as_bytes()).await.expect("write");
            self.writer.write_all(b"\n").await.expect("write");
            self.writer.flush().await.expect("flush");
        }

        async fn send(&mut self, msg: Value) {
            self.send_raw(&msg.to_string()).await;
        }

        /// The next message from the server, raw and parsed.
        async fn recv(&mut self) -> (String, Value) {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .expect("server answered in time")
                .expect("read")
                .expect("server still connected");
            let v = serde_json::from_str(&line).expect("server writes JSON lines");
            (line, v)
        }

        /// Sends a request and returns its response (raw line and parsed), skipping notifications.
        async fn request(&mut self, method: &str, params: Value) -> (String, Value) {
            self.next_id += 1;
            let id = self.next_id;
            self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
                .await;
            loop {
                let (raw, v) = self.recv().await;
                if v["id"] == json!(id) {
                    return (raw, v);
                }
            }
        }

        /// Calls a tool; returns the raw response line and the `result` object.
        async fn call(&mut self, tool: &str, args: Value) -> (String, Value) {
            let (raw, v) = self
                .request("tools/call", json!({ "name": tool, "arguments": args }))
                .await;
            let result = v
                .get("result")
                .cloned()
                .unwrap_or_else(|| panic!("tools/call failed: {v}"));
            (raw, result)
        }
    }

    fn assert_no_secrets(raw: &str) {
        for s in SECRETS {
            assert!(!raw.contains(s), "internal content '{s}' leaked: {raw}");
        }
    }

    fn text_of(result: &Value) -> String {
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn hit_ids(result: &Value) -> Vec<u64> {
        let mut ids: Vec<u64> = result["structuredContent"]["hits"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h["article_id"].as_u64()).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[tokio::test]
    async fn initialize_list_and_search_with_citations() {
        let mut c = Client::start(McpPolicy::default());
        let (_, init) = c
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": { "name": "test", "version": "0" }
                }),
            )
            .await;
        let r = &init["result"];
        assert_eq!(r["protocolVersion"], "2025-06-18");
        assert_eq!(r["serverInfo"]["name"], "helpdex");
        assert_eq!(r["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(r["capabilities"]["tools"].is_object(), "{r}");
        c.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;

        let (_, list) = c.request("tools/list", json!({})).await;
        let tools = list["result"]["tools"]
            .as_array()
            .expect("tools array")
            .clone();
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(
            names,
            [TOOL_SEARCH, TOOL_CONTEXT, TOOL_ARTICLE, TOOL_VERIFY]
        );
        for t in &tools {
            let schema = &t["inputSchema"];
            assert_eq!(schema["type"], "object", "{t}");
            for p in ["audience", "signed_in", "segments"] {
                assert!(
                    schema["properties"][p].is_object(),
                    "{} lacks {p}",
                    t["name"]
                );
            }
            if t["name"] != TOOL_VERIFY {
                assert!(schema["properties"]["locale"].is_object(), "{t}");
            }
            // Output schemas are derived from the serialized types.
            let out = &t["outputSchema"];
            assert_eq!(out["type"], "object", "{t}");
            assert!(out["properties"].is_object(), "{t}");
            // A customer-only server does not offer the agent audience.
            assert_eq!(
                schema["properties"]["audience"]["enum"],
                json!(["customer"])
            );
            assert!(
                t["description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("url"),
                "{t}"
            );
            assert_eq!(t["annotations"]["readOnlyHint"], true);
        }
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["query"]));
        assert_eq!(
            tools[0]["inputSchema"]["properties"]["limit"]["maximum"],
            50
        );
        assert_eq!(
            tools[1]["inputSchema"]["properties"]["max_chars"]["default"],
            6000
        );
        assert_eq!(tools[2]["inputSchema"]["required"], json!(["article_id"]));

        let (raw, res) = c
            .call(
                TOOL_SEARCH,
                json!({ "query": "how do I reset my password" }),
            )
            .await;
        assert_eq!(res["isError"], false, "{res}");
        assert_eq!(hit_ids(&res), [PUBLIC_ID]);
        assert_eq!(res["structuredContent"]["audience"], "customer");
        assert_eq!(
            res["structuredContent"]["query"],
            "how do I reset my password"
        );
        let text = text_of(&res);
        assert!(text.contains("[1] Reset your password"), "{text}");
        assert!(text.contains(&url(PUBLIC_ID)), "{text}");
        assert_no_secrets(&raw);
    }

    #[tokio::test]
    async fn customer_policy_refuses_agent_audience_on_every_tool() {
        let mut c = Client::ready(McpPolicy::default()).await;
        for (tool, args) in [
            (
                TOOL_SEARCH,
                json!({ "query": "zanzibar override", "audience": "agent" }),
            ),
            (
                TOOL_CONTEXT,
                json!({ "query": "zanzibar override", "audience": "agent" }),
            ),
            (
                TOOL_ARTICLE,
                json!({ "article_id": INTERNAL_ID, "audience": "agent" }),
            ),
        ] {
            let (raw, res) = c.call(tool, args).await;
            assert_eq!(res["isError"], true, "{tool}: {res}");
            assert!(
                text_of(&res).contains("audience 'agent' is not allowed"),
                "{tool}: {res}"
            );
            assert!(res.get("structuredContent").is_none(), "{tool}: {res}");
            // The refusal text itself must not echo the query's secret words back as content.
            assert!(!raw.contains("7731"), "{raw}");
        }
        // Without audience the internal article stays invisible, even when asked by its words.
        let (raw, res) = c
            .call(TOOL_SEARCH, json!({ "query": "zanzibar override code" }))
            .await;
        assert_eq!(res["isError"], false);
        assert!(hit_ids(&res).is_empty(), "{res}");
        assert!(raw.contains("No help center content matches"), "{raw}");
        let (raw, res) = c
            .call(
                TOOL_CONTEXT,
                json!({ "query": "how do I reset my password" }),
            )
            .await;
        assert_eq!(res["structuredContent"]["found"], true, "{res}");
        assert!(!hit_ids(&res).contains(&INTERNAL_ID));
        assert_no_secrets(&raw);
        // What only the internal article answers is "nothing relevant" for a customer: no
        // citations at all, rather than the closest public passages.
        let (raw, res) = c
            .call(
                TOOL_CONTEXT,
                json!({ "query": "password reset override code for agents" }),
            )
            .await;
        assert_eq!(res["structuredContent"]["found"], false, "{res}");
        assert!(
            res["structuredContent"]["citations"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_no_secrets(&raw);
    }

    #[tokio::test]
    async fn agent_policy_returns_internal_only_when_asked() {
        let mut c = Client::ready(McpPolicy {
            max_audience: Audience::Agent,
        })
        .await;
        let (_, list) = c.request("tools/list", json!({})).await;
        assert_eq!(
            list["result"]["tools"][0]["inputSchema"]["properties"]["audience"]["enum"],
            json!(["customer", "agent"])
        );

        let (raw, res) = c
            .call(TOOL_SEARCH, json!({ "query": "reset password" }))
            .await;
        assert_eq!(res["structuredContent"]["audience"], "customer");
        assert!(!hit_ids(&res).contains(&INTERNAL_ID));
        assert_no_secrets(&raw);

        // Agents ignore customer narrowing: segments do not hide internal content from them.
        let (_, res) =
            c.call(TOOL_SEARCH, json!({ "query": "reset password", "audience": "agent", "segments": [], "signed_in": false })).await;
        assert_eq!(res["structuredContent"]["audience"], "agent");
        assert_eq!(hit_ids(&res), [PUBLIC_ID, INTERNAL_ID, RESTRICTED_ID]);
        assert!(text_of(&res).contains("zanzibar"));
    }

    #[tokio::test]
    async fn segments_widen_what_a_customer_sees() {
        let mut c = Client::ready(McpPolicy::default()).await;
        let (_, res) = c
            .call(TOOL_SEARCH, json!({ "query": "vault password" }))
            .await;
        assert!(!hit_ids(&res).contains(&RESTRICTED_ID), "{res}");
        let (_, res) = c
            .call(
                TOOL_SEARCH,
                json!({ "query": "vault password", "segments": [SEGMENT] }),
            )
            .await;
        assert!(hit_ids(&res).contains(&RESTRICTED_ID), "{res}");
        let (_, res) = c
            .call(
                TOOL_SEARCH,
                json!({ "query": "vault password", "segments": [SEGMENT + 1] }),
            )
            .await;
        assert!(!hit_ids(&res).contains(&RESTRICTED_ID), "{res}");
    }

    #[tokio::test]
    async fn get_context_gives_numbered_citations() {
        let mut c = Client::ready(McpPolicy::default()).await;
        let (raw, res) = c
            .call(
                TOOL_CONTEXT,
                json!({ "query": "reset password", "locale": "EN-US" }),
            )
            .await;
        assert_eq!(res["isError"], false, "{res}");
        let s = &res["structuredContent"];
        assert_eq!(s["found"], true);
        assert_eq!(s["citations"][0]["n"], 1);
        assert_eq!(s["citations"][0]["article_id"], PUBLIC_ID);
        let text = text_of(&res);
        assert!(text.starts_with("[1] Reset your password"), "{text}");
        assert!(text.contains("Sources:\n[1] Reset your password"), "{text}");
        assert!(
            text.contains(s["citations"][0]["url"].as_str().unwrap_or("missing url")),
            "{text}"
        );
        assert_no_secrets(&raw);

        let (_, res) = c
            .call(TOOL_CONTEXT, json!({ "query": "quantum entanglement" }))
            .await;
        assert_eq!(res["structuredContent"]["found"], false);
        assert!(text_of(&res).starts_with("No help center content matches"));
    }

    #[tokio::test]
    async fn get_article_hides_unreadable_articles_like_unknown_ones() {
        let mut c = Client::ready(McpPolicy::default()).await;
        let (_, res) = c
            .call(TOOL_ARTICLE, json!({ "article_id": PUBLIC_ID }))
            .await;
        assert_eq!(res["isError"], false, "{res}");
        assert_eq!(res["structuredContent"]["article_id"], PUBLIC_ID);
        assert_eq!(
            res["structuredContent"]["translations"][0]["title"],
            "Reset your password"
        );
        let text = text_of(&res);
        assert!(
            text.starts_with(&format!(
                "# Reset your password (en-us, public)\n{}\n",
                url(PUBLIC_ID)
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("Source: {}", url(PUBLIC_ID))),
            "{text}"
        );

        let (raw, internal) = c
            .call(TOOL_ARTICLE, json!({ "article_id": INTERNAL_ID }))
            .await;
        assert_eq!(internal["isError"], true);
        assert_no_secrets(&raw);
        let (_, unknown) = c.call(TOOL_ARTICLE, json!({ "article_id": 999_999 })).await;
        assert_eq!(unknown["isError"], true);
        assert_eq!(
            text_of(&internal).replace(&INTERNAL_ID.to_string(), "N"),
            text_of(&unknown).replace("999999", "N"),
            "an unreadable article must look exactly like a missing one"
        );
    }

    #[tokio::test]
    async fn bad_arguments_are_tool_errors_and_unknown_tools_protocol_errors() {
        let mut c = Client::ready(McpPolicy::default()).await;
        for (tool, args, expect) in [
            (
                TOOL_SEARCH,
                json!({ "query": "password", "limit": 0 }),
                "limit: must be between 1 and 50",
            ),
            (
                TOOL_SEARCH,
                json!({ "query": "password", "limit": 51 }),
                "limit: must be between 1 and 50",
            ),
            (
                TOOL_SEARCH,
                json!({ "limit": 3 }),
                "query: must not be empty",
            ),
            (
                TOOL_SEARCH,
                json!({ "query": "  " }),
                "query: must not be empty",
            ),
            (
                TOOL_SEARCH,
                json!({ "query": "password", "segment": [42] }),
                "unknown field `segment`",
            ),
            (
                TOOL_SEARCH,
                json!({ "query": "password", "audience": "admin" }),
                "unknown variant `admin`",
            ),
            (
                TOOL_CONTEXT,
                json!({ "query": "password", "max_chars": 10 }),
                "max_chars: must be between",
            ),
            (TOOL_ARTICLE, json!({ "article_id": "abc" }), "invalid type"),
        ] {
            let (_, res) = c.call(tool, args.clone()).await;
            assert_eq!(res["isError"], true, "{tool} {args}: {res}");
            assert!(text_of(&res).contains(expect), "{tool} {args}: {res}");
        }
        let (_, v) = c
            .request(
                "tools/call",
                json!({ "name": "delete_everything", "arguments": {} }),
            )
            .await;
        assert_eq!(v["error"]["code"], -32602, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("unknown tool 'delete_everything'")
        );
        let (_, v) = c.request("no/such/method", json!({})).await;
        assert_eq!(v["error"]["code"], -32601, "{v}");
    }

    #[tokio::test]
    async fn malformed_input_does_not_break_the_session() {
        let mut c = Client::ready(McpPolicy::default()).await;
        // Not JSON: ignored (no id to answer to), and the session goes on.
        c.send_raw("{this is not json").await;
        c.send(json!({ "jsonrpc": "2.0", "id": "after-garbage", "method": "ping" }))
            .await;
        let (_, v) = c.recv().await;
        assert_eq!(
            v["id"], "after-garbage",
            "garbage must not produce a reply: {v}"
        );
        assert_eq!(v["result"], json!({}));
        // JSON, but not a JSON-RPC message: Invalid Request.
        c.send_raw(r#"{"hello":"world"}"#).await;
        let (_, v) = c.recv().await;
        assert_eq!(v["error"]["code"], -32600, "{v}");
        // Unknown notifications are ignored.
        c.send(json!({ "jsonrpc": "2.0", "method": "notifications/something_new" }))
            .await;
        let (_, res) = c
            .call(TOOL_SEARCH, json!({ "query": "reset password" }))
            .await;
        assert_eq!(hit_ids(&res), [PUBLIC_ID]);
    }

    #[tokio::test]
    async fn unsupported_protocol_version_falls_back_and_close_ends_serve() {
        let mut c = Client::start(McpPolicy::default());
        let (_, init) = c
            .request(
                "initialize",
                json!({
                    "protocolVersion": "1999-01-01",
                    "capabilities": {},
                    "clientInfo": { "name": "old", "version": "0" }
                }),
            )
            .await;
        let v = init["result"]["protocolVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            v.as_str() >= "2025-06-18" && v.len() == 10,
            "negotiated {v}"
        );
        let Client {
            writer,
            lines,
            server,
            ..
        } = c;
        drop(writer);
        drop(lines);
        let done = tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("serve returns after EOF");
        assert!(done.expect("no panic").is_ok());
    }

    #[tokio::test]
    async fn client_leaving_before_initialize_is_a_clean_exit() {
        let Client {
            writer,
            lines,
            server,
            ..
        } = Client::start(McpPolicy::default());
        drop(writer);
        drop(lines);
        let done = tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("serve returns");
        assert!(done.expect("no panic").is_ok());
    }

    #[test]
    fn access_is_customer_unless_agent_is_asked_and_allowed() {
        let customer_only = McpPolicy::default();
        let agent_ok = McpPolicy {
            max_audience: Audience::Agent,
        };
        assert_eq!(
            resolve_access(&agent_ok, None, None, None),
            Ok(Access::anonymous())
        );
        assert_eq!(
            resolve_access(
                &customer_only,
                Some(Audience::Customer),
                Some(true),
                Some(vec![9, 3, 9])
            ),
            Ok(Access {
                audience: Audience::Customer,
                signed_in: true,
                segments: vec![3, 9]
            })
        );
        assert_eq!(
            resolve_access(&agent_ok, Some(Audience::Agent), Some(false), Some(vec![3])),
            Ok(Access::agent())
        );
        assert_eq!(
            resolve_access(&customer_only, Some(Audience::Agent), None, None),
            Err(CallError::AudienceNotAllowed {
                asked: "agent",
                max: "customer"
            })
        );
    }

    #[test]
    fn parse_call_applies_defaults() {
        let p = McpPolicy::default();
        let ToolCall::Search(s) =
            parse_call(&p, TOOL_SEARCH, json!({ "query": "q", "locale": " De " })).expect("valid")
        else {
            panic!("not a search")
        };
        assert_eq!((s.limit, s.locale.as_deref()), (DEFAULT_LIMIT, Some("de")));
        let ToolCall::Context(c) =
            parse_call(&p, TOOL_CONTEXT, json!({ "query": "q", "locale": "" })).expect("valid")
        else {
            panic!("not a context")
        };
        assert_eq!((c.max_chars, c.locale), (DEFAULT_MAX_CHARS, None));
        assert_eq!(
            parse_call(&p, "nope", json!({})).err(),
            Some(CallError::UnknownTool("nope".into()))
        );
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("héllo", 5), "héllo");
    }
}
