//! helpdex keeps AI support agents grounded in a Zendesk Help Center.
//!
//! A scheduled, incremental sync pulls articles through the Help Center API ([`zendesk`]),
//! normalizes their HTML into citable segments ([`normalize`]), records blake3 content hashes in
//! SQLite ([`store`]) and keeps a visibility-tagged tantivy index ([`index`]) that answers cited
//! searches ([`search`]). [`emulator`] is a faithful stand-in for the Help Center API used by the
//! tests, the demo and the benchmarks. See `ARCHITECTURE.md` for the invariants.
#![warn(missing_docs)]

pub mod api;
pub mod article;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod emulator;
pub mod engine;
pub mod explain;
pub mod index;
pub mod mcp;
pub mod model;
pub mod normalize;
pub mod search;
pub mod server;
pub mod service;
pub mod store;
pub mod sync;
pub mod visibility;
pub mod zendesk;
