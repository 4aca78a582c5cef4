//! Domain vocabulary shared by every layer: visibility, audiences and what a caller may see.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who may read a translation, from the most to the least permissive.
///
/// Decided by [`crate::visibility`] from Zendesk's user segments; unknown cases fail closed to
/// [`Visibility::Internal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Visible to everyone, anonymous visitors included.
    Public,
    /// Any signed-in end user.
    SignedIn,
    /// Members of custom (non-staff) user segments.
    Restricted,
    /// Agents and admins only.
    Internal,
}

impl Visibility {
    /// The stable wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::SignedIn => "signed_in",
            Visibility::Restricted => "restricted",
            Visibility::Internal => "internal",
        }
    }

    /// Parses [`Visibility::as_str`]; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "public" => Visibility::Public,
            "signed_in" => Visibility::SignedIn,
            "restricted" => Visibility::Restricted,
            "internal" => Visibility::Internal,
            _ => return None,
        })
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose answer a query grounds: a customer-facing surface or an agent-facing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Only what the customer may see (public, plus what their sign-in and segments allow).
    #[default]
    Customer,
    /// Everything published, internal content included. Drafts are never returned.
    Agent,
}

impl Audience {
    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Customer => "customer",
            Audience::Agent => "agent",
        }
    }
}

/// Exactly what one caller may read. Turned into index terms by [`Access::terms`], which the
/// query requires; nothing else grants visibility.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Access {
    /// Customer or agent; customer when absent.
    #[serde(default)]
    pub audience: Audience,
    /// For customers: the end user is signed in.
    #[serde(default)]
    pub signed_in: bool,
    /// For customers: the Zendesk user segment ids the end user belongs to.
    #[serde(default)]
    pub segments: Vec<u64>,
}

/// Access token stored on every indexed segment: the public marker.
pub const ACCESS_PUBLIC: &str = "public";
/// Access token: any signed-in end user.
pub const ACCESS_SIGNED_IN: &str = "signed_in";
/// Access token: agents and admins.
pub const ACCESS_STAFF: &str = "staff";

/// Access token for members of one custom end-user segment.
pub fn access_segment(id: u64) -> String {
    format!("segment:{id}")
}

impl Access {
    /// A customer with no sign-in: public content only.
    pub fn anonymous() -> Self {
        Access::default()
    }

    /// An agent: everything that is published.
    pub fn agent() -> Self {
        Access {
            audience: Audience::Agent,
            ..Access::default()
        }
    }

    /// The access tokens a document must carry (any one of them) for this caller to see it.
    /// Agents get the staff token, which every published document carries.
    pub fn terms(&self) -> Vec<String> {
        match self.audience {
            Audience::Agent => vec![ACCESS_STAFF.to_string()],
            Audience::Customer => {
                let mut t = vec![ACCESS_PUBLIC.to_string()];
                if self.signed_in || !self.segments.is_empty() {
                    // Segment membership implies a signed-in user.
                    t.push(ACCESS_SIGNED_IN.to_string());
                }
                t.extend(self.segments.iter().map(|id| access_segment(*id)));
                t
            }
        }
    }

    /// Whether a translation with these stored access tokens is readable by this caller; the
    /// same rule as the index query, used to re-check every hit before it leaves (defense in
    /// depth) and by paths that read SQLite directly.
    pub fn allows(&self, doc_tokens: &[String]) -> bool {
        let mine = self.terms();
        doc_tokens.iter().any(|t| mine.iter().any(|m| m == t))
    }
}

/// Identifies one article within helpdex: several help centers (sources) can hold the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ArticleRef {
    /// Configured source name.
    pub source: String,
    /// Zendesk article id.
    pub article_id: u64,
}

/// The key of one indexed translation: all its passages share it, so one delete removes them.
pub fn doc_key(source: &str, article_id: u64, locale: &str) -> String {
    format!("{source}/{article_id}/{locale}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_terms_never_include_staff() {
        let a = Access {
            audience: Audience::Customer,
            signed_in: true,
            segments: vec![7, 9],
        };
        let t = a.terms();
        assert!(!t.iter().any(|x| x == ACCESS_STAFF));
        assert_eq!(t, vec!["public", "signed_in", "segment:7", "segment:9"]);
        assert_eq!(Access::anonymous().terms(), vec!["public"]);
    }

    #[test]
    fn allows_matches_terms() {
        let internal = vec![ACCESS_STAFF.to_string()];
        let public = vec![ACCESS_PUBLIC.to_string(), ACCESS_STAFF.to_string()];
        assert!(!Access::anonymous().allows(&internal));
        assert!(Access::anonymous().allows(&public));
        assert!(Access::agent().allows(&internal));
    }
}
