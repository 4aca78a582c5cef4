//! HTTP plumbing of `helpdex serve`: the middleware every route shares (tower-http request ids,
//! CORS, compression, body limits and timeouts; the JSON error shape; metrics) and the
//! connection loop, which bounds what a slow or idle client can hold.
//!
//! Limits, and what each stops:
//!
//! | limit | default | stops |
//! |---|---|---|
//! | connections | 512, and never more than the open-file limit allows | idle sockets exhausting file descriptors (`accept: Too many open files`) |
//! | header read timeout | 10 s (also between keep-alive requests) | header-trickling and idle connections held forever |
//! | request timeout | 30 s on content, MCP and webhook routes | slow bodies and slow queries |
//! | body size | 256 KiB, checked on `Content-Length` before reading and while streaming | bodies buffered into memory |
//! | URI length | 8 KiB (414) | query strings as a memory lever |
//!
//! Keys are checked before any body is read ([`crate::api::require_key`]), so an
//! unauthenticated client cannot make the server buffer anything on a keyed route. Admin
//! routes have no request timeout (a sync with `wait` can take minutes) and are reached only
//! with an admin key.

use crate::api::{AppState, error};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::Service;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Largest request body, in bytes (a context query is at most 4,000 characters; a verify
/// request at most 100 citations).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest request URI, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The request id header, set when the client sent none and returned on every response.
pub const REQUEST_ID: &str = "x-request-id";
/// File descriptors kept for SQLite, tantivy and outgoing Zendesk connections.
const FD_RESERVE: usize = 128;

/// How much a client may hold, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// Most open connections; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time to send a request's headers, and the longest idle time between requests.
    pub header_read_timeout: Duration,
    /// Time to answer a content, MCP or webhook request, body read included.
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl HttpLimits {
    /// The connection cap actually used: the configured one, lowered to what the process's
    /// open-file limit leaves after [`FD_RESERVE`].
    pub fn effective_connections(&self) -> usize {
        let cap = self.max_connections.max(1);
        match open_file_limit() {
            Some(n) if (n as usize) < cap + FD_RESERVE => {
                (n as usize).saturating_sub(FD_RESERVE).max(8)
            }
            _ => cap,
        }
    }
}

/// The soft open-file limit of this process (`/proc/self/limits`, Linux); `None` elsewhere.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The middleware every route shares. Per route (inside the router, where the matched route
/// is known): metrics and the keys for [`crate::api::require_key`]. Around the whole router
/// (so they also see what routing itself answers, e.g. 405 with its `Allow`), outermost last:
/// body limit, URI limit and loopback guard, the JSON error shape, CORS, request ids,
/// compression.
pub fn layers(app: Router<AppState>, state: &AppState) -> Router {
    let loopback_only = state.keys.is_empty();
    let cors = CorsLayer::new()
        .allow_origin(match state.cfg.server.cors_origins.as_slice() {
            [] => AllowOrigin::any(),
            list => AllowOrigin::list(
                list.iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok())
                    .collect::<Vec<_>>(),
            ),
        })
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static(REQUEST_ID),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            HeaderName::from_static(REQUEST_ID),
            HeaderName::from_static("mcp-session-id"),
        ])
        .max_age(Duration::from_secs(3600));
    let request_id = HeaderName::from_static(REQUEST_ID);
    let routed = app
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::api::observe,
        ))
        .layer(axum::Extension(state.keys.clone()))
        .with_state(state.clone());
    let outer = tower::ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(cors)
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            guard(req, next, loopback_only)
        }))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .service(routed);
    Router::new().fallback_service(outer)
}

/// Refuses overlong URIs (414, before anything parses them) and, when no key is configured
/// (every loopback caller is an admin), requests whose `Host` is not loopback: a web page
/// cannot reach the keyless API by DNS rebinding.
async fn guard(req: Request, next: Next, loopback_only: bool) -> Response {
    let uri_len = req.uri().to_string().len();
    if uri_len > MAX_URI_BYTES {
        return StatusCode::URI_TOO_LONG.into_response();
    }
    if loopback_only {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_loopback_host(host) {
            return error::ApiError::new(
                error::ErrorCode::Forbidden,
                "no API key is configured, so only requests to localhost are served; configure keys to serve other hosts",
            )
            .into_response();
        }
    }
    next.run(req).await
}

fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Serves `app` on `listener` until `shutdown` fires, then lets requests in flight finish (for
/// at most [`HttpLimits::shutdown_grace`]). HTTP/1.1 only: every AI runtime, MCP client and
/// Prometheus speaks it, and it has the fewest ways to hold a server.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let cap = limits.effective_connections();
    if cap < limits.max_connections {
        tracing::warn!(
            cap,
            configured = limits.max_connections,
            "the open-file limit lowers the connection cap; raise LimitNOFILE (ulimit -n)"
        );
    }
    let permits = Arc::new(Semaphore::new(cap));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; connections in flight
                    // free descriptors.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut app = app.clone();
                async move {
                    let resp: Result<Response, Infallible> =
                        app.call(req.map(axum::body::Body::new)).await;
                    resp
                }
            });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are clients going away or timing out: nothing to report.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("requests still in flight after the shutdown grace period; closing");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:7700",
            "127.0.0.1:80",
            "[::1]:7700",
            "[::1]",
            "127.0.0.1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "attacker.test:7700",
            "10.0.0.1",
            "",
            "[2001:db8::1]:1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn the_connection_cap_respects_the_file_limit() {
        let l = HttpLimits {
            max_connections: usize::MAX / 2,
            ..HttpLimits::default()
        };
        match open_file_limit() {
            Some(n) => assert!(l.effective_connections() <= (n as usize).max(8 + FD_RESERVE)),
            None => assert_eq!(l.effective_connections(), usize::MAX / 2),
        }
    }
}
