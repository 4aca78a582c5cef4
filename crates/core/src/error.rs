//! The small, closed set of error kinds every front end maps its wire contract from (HTTP
//! status, MCP tool error, CLI exit). Each layer keeps its own typed error and says which kind
//! it is.

use serde::Serialize;

/// What kind of failure an error is, for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request breaks the contract; the message says how to fix it.
    BadRequest,
    /// Nothing the caller may see has that id.
    NotFound,
    /// The data is not there yet or not readable right now (not synced, index rebuilding);
    /// the message says what to run.
    Unavailable,
    /// helpdex failed; details go to the log only.
    Internal,
}

impl ErrorCode {
    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl crate::reader::ReadError {
    /// The kind of this error.
    pub fn code(&self) -> ErrorCode {
        use crate::reader::ReadError::*;
        match self {
            NoDataDir { .. } | NotSynced { .. } | IndexUnavailable { .. } => ErrorCode::Unavailable,
            Store(crate::store::StoreError::FromTheFuture { .. })
            | Store(crate::store::StoreError::NeedsUpgrade { .. }) => ErrorCode::Unavailable,
            Store(_) => ErrorCode::Internal,
        }
    }
}
