//! The API's one error shape, `{"error": {"code", "message"}}`, and the middleware that gives
//! it to every error response, including those axum, tower-http and rmcp produce themselves
//! (405, 408, 413, 414, 415, a path that is not UTF-8, ...), which would otherwise have an empty
//! or plain-text body.

use crate::auth::Denied;
use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{Operation, Response as DocResponse};
use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use helpdex_core::error::ErrorCode as CoreCode;
use helpdex_core::reader::ReadError;
use helpdex_core::search::QueryError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The documented error codes, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400 (also 405, 408, 413, 414, 415 with their own status): the request is wrong; the
    /// message says how.
    BadRequest,
    /// 401: no API key, an unknown one, or a webhook with a bad signature.
    Unauthorized,
    /// 403: the key's scope does not allow this.
    Forbidden,
    /// 404: no such resource within the caller's audience.
    NotFound,
    /// 409: the index is being written by another process.
    Busy,
    /// 429 or 503: not ready, overloaded, or a feature is not configured.
    Unavailable,
    /// 500: something failed on our side; details are in the server log.
    Internal,
}

impl ErrorCode {
    /// The HTTP status of a handler's error.
    pub fn status(self) -> StatusCode {
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

    /// The code of any error status (for responses helpdex did not build itself).
    fn of_status(status: StatusCode) -> ErrorCode {
        match status.as_u16() {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Busy,
            429 | 503 => ErrorCode::Unavailable,
            400..=499 => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What happened and what to do; never internal details or secrets.
    pub message: String,
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
    /// An error with a code and a message for the caller.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// 400 with a message saying what to fix.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// Logs the real cause and answers a generic 500.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
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

impl From<helpdex_core::verify::VerifyError> for ApiError {
    fn from(e: helpdex_core::verify::VerifyError) -> Self {
        match e.code() {
            CoreCode::Internal => ApiError::internal("verify", e),
            code => ApiError::new(code.into(), e.to_string()),
        }
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

fn body(code: ErrorCode, message: String) -> ErrorBody {
    ErrorBody {
        error: ErrorDetail { code, message },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.code.status(), Json(body(self.code, self.message))).into_response();
        if self.code == ErrorCode::Unauthorized {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl OperationOutput for ApiError {
    type Inner = ErrorBody;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        Json::<ErrorBody>::operation_response(ctx, operation)
    }
}

/// The message of an error response helpdex did not build itself.
fn message_for(status: StatusCode, allow: Option<&str>, original: &str) -> String {
    match status.as_u16() {
        405 => format!(
            "method not allowed on this endpoint{}; see /openapi.json",
            allow
                .filter(|a| !a.is_empty())
                .map(|a| format!(" (allowed: {a})"))
                .unwrap_or_default()
        ),
        408 => "the request took too long (slow body or query); send it again, faster".into(),
        413 => format!(
            "request body too large (at most {} bytes)",
            crate::http::MAX_BODY_BYTES
        ),
        414 => format!(
            "URI too long (at most {} bytes); send long input in a POST body",
            crate::http::MAX_URI_BYTES
        ),
        415 => "unsupported Content-Type: send application/json".into(),
        406 => {
            "not acceptable: send Accept: application/json (and text/event-stream for /mcp)".into()
        }
        s @ 400..=499 => {
            // axum's and rmcp's rejection texts say what is wrong with the caller's own input
            // (never a secret): keep them, bounded.
            let text: String = original.trim().chars().take(300).collect();
            if text.is_empty() {
                format!("request refused ({s})")
            } else {
                text
            }
        }
        _ => "internal error; the server log has the details".into(),
    }
}

/// Gives every error response without a JSON body the documented error shape.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, original) = resp.into_parts();
    // Error bodies of this kind are short texts; never buffer more than a few kB of one.
    let original = axum::body::to_bytes(original, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let allow = parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let code = ErrorCode::of_status(status);
    let json = serde_json::to_vec(&body(
        code,
        message_for(status, allow.as_deref(), &original),
    ))
    .unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    if status == StatusCode::UNAUTHORIZED && !parts.headers.contains_key(header::WWW_AUTHENTICATE) {
        parts
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    Response::from_parts(parts, Body::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_documented_codes() {
        assert_eq!(
            ErrorCode::of_status(StatusCode::METHOD_NOT_ALLOWED),
            ErrorCode::BadRequest
        );
        assert_eq!(
            ErrorCode::of_status(StatusCode::PAYLOAD_TOO_LARGE),
            ErrorCode::BadRequest
        );
        assert_eq!(
            ErrorCode::of_status(StatusCode::TOO_MANY_REQUESTS),
            ErrorCode::Unavailable
        );
        assert_eq!(
            ErrorCode::of_status(StatusCode::BAD_GATEWAY),
            ErrorCode::Internal
        );
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Busy,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(ErrorCode::of_status(code.status()), code);
        }
    }

    #[test]
    fn messages_say_what_to_do_and_never_echo_server_text() {
        assert_eq!(
            message_for(StatusCode::METHOD_NOT_ALLOWED, Some("GET,HEAD"), ""),
            "method not allowed on this endpoint (allowed: GET,HEAD); see /openapi.json"
        );
        assert!(message_for(StatusCode::PAYLOAD_TOO_LARGE, None, "").contains("at most"));
        assert_eq!(
            message_for(StatusCode::INTERNAL_SERVER_ERROR, None, "panic at src/x.rs"),
            "internal error; the server log has the details"
        );
        assert_eq!(
            message_for(StatusCode::BAD_REQUEST, None, "Invalid URL: bad `%FF`"),
            "Invalid URL: bad `%FF`"
        );
    }
}
