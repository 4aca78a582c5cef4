//! helpdex's engine: everything that turns Help Center articles into cited, visibility-safe
//! passages, with no network and no front end.
//!
//! [`normalize`] turns article HTML into citable passages and blake3 hashes; [`visibility`]
//! decides who may read an article (fail-closed); [`store`] is the SQLite source of truth;
//! [`index`] is the derived tantivy index; [`engine`] keeps the two consistent (one writer per
//! data directory); [`search`], [`article`] and [`explain`] are the read models the front ends
//! serve. See `ARCHITECTURE.md` for the invariants.
#![warn(missing_docs)]

pub mod article;
pub mod backup;
pub mod engine;
pub mod error;
pub mod explain;
pub mod index;
pub mod model;
pub mod normalize;
pub mod query;
pub mod reader;
#[cfg(feature = "schema")]
pub mod schema;
pub mod search;
pub mod store;
pub mod vectors;
pub mod verify;
pub mod visibility;
