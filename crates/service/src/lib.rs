//! helpdex as a service: the configuration, the HTTP API ([`api`], [`server`]), the MCP server
//! ([`mcp`]), the scheduled sync ([`schedule`], [`scheduler`]), Zendesk webhooks ([`webhook`]) and
//! Prometheus metrics ([`metrics`]). Every front end reads through `helpdex_core` and writes
//! through `helpdex_sync`; see `ARCHITECTURE.md`.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod mcp;
pub mod metrics;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod webhook;
