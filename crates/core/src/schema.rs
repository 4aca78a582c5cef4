//! JSON Schema helpers for wire shapes that serde accepts in more than one form (feature
//! `schema`). The front ends derive their OpenAPI document and MCP output schemas from the
//! types themselves; these only describe what a custom deserializer accepts.

use schemars::JsonSchema;

/// Zendesk user segment ids: a JSON list of numbers, or one comma-separated string (the form a
/// URL query carries, `segments=3,9`).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SegmentIds {
    /// `[3, 9]`
    List(Vec<u64>),
    /// `"3,9"`
    CommaSeparated(String),
}
