//! helpdex as a service: the configuration, the HTTP API ([`api`], [`http`], [`server`]), the
//! MCP server over stdio and Streamable HTTP ([`mcp`]), the scheduled sync ([`schedule`],
//! [`scheduler`]), Zendesk webhooks ([`webhook`]) and Prometheus metrics ([`metrics`]). Every
//! front end reads through `helpdex_core` and writes through `helpdex_sync`; see
//! `ARCHITECTURE.md`.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod embeddings;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod reads;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod webhook;

/// What this build is: reported by `/version`, `helpdex --version` and `helpdex_build_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// Release version.
    pub version: &'static str,
    /// The git commit (`unknown` when built outside a git checkout).
    pub commit: &'static str,
}

impl Default for BuildInfo {
    fn default() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            commit: "unknown",
        }
    }
}
