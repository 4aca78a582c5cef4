//! Who may ask what: API keys, their scopes, and the access a request is granted.
//!
//! Pure: the HTTP layer extracts the bearer token and the requested audience, this module
//! decides. The rule that matters: the audience of a request never exceeds the scope of its key.

use crate::config::ServerConfig;
use helpdex_core::model::{Access, Audience};
use serde::Serialize;

/// What a key may do, from the least to the most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Public content, plus what the request's segments and signed-in state allow.
    Customer,
    /// Internal content too.
    Agent,
    /// Everything, and the admin endpoints.
    Admin,
}

impl Scope {
    /// The highest audience this scope may search with.
    pub fn max_audience(self) -> Audience {
        match self {
            Scope::Customer => Audience::Customer,
            Scope::Agent | Scope::Admin => Audience::Agent,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No key, or an unknown one.
    Unauthenticated,
    /// The key is valid but its scope is too small.
    Forbidden(String),
}

/// The configured keys. Stored as blake3 hashes so that comparing them takes the same time
/// whatever the input (blake3's `Hash` equality is constant-time) and the raw keys are not kept.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(blake3::Hash, Scope)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.keys.len())
    }
}

impl ApiKeys {
    /// Keys from the `[server]` settings (file and environment).
    pub fn from_config(server: &ServerConfig) -> ApiKeys {
        let mut keys = Vec::new();
        for (list, scope) in [
            (&server.customer_keys, Scope::Customer),
            (&server.agent_keys, Scope::Agent),
            (&server.admin_keys, Scope::Admin),
        ] {
            keys.extend(
                list.iter()
                    .map(|k| (blake3::hash(k.expose().as_bytes()), scope)),
            );
        }
        ApiKeys { keys }
    }

    /// No key configured: the server then binds to loopback only and treats every caller as
    /// an admin (a developer's machine).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The scope of a presented bearer token. With no keys configured everyone is an admin.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Scope, Denied> {
        if self.keys.is_empty() {
            return Ok(Scope::Admin);
        }
        let token = bearer.ok_or(Denied::Unauthenticated)?;
        let h = blake3::hash(token.as_bytes());
        // Highest scope wins if a key was listed twice; scan all keys either way.
        let mut found = None;
        for (k, scope) in &self.keys {
            if *k == h {
                found = found.max(Some(*scope));
            }
        }
        found.ok_or(Denied::Unauthenticated)
    }
}

/// Extracts the token from an `Authorization: Bearer KEY` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let v = header?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The access a request gets: the audience it asks for (default customer), never more than its
/// key allows. Segments and signed-in state only shape what a customer sees.
pub fn grant(
    scope: Scope,
    requested: Option<Audience>,
    signed_in: bool,
    segments: Vec<u64>,
) -> Result<Access, Denied> {
    let audience = requested.unwrap_or(Audience::Customer);
    if audience == Audience::Agent && scope.max_audience() != Audience::Agent {
        return Err(Denied::Forbidden(
            "this API key has the customer scope: it cannot ask for the agent audience".into(),
        ));
    }
    Ok(match audience {
        Audience::Agent => Access::agent(),
        Audience::Customer => Access {
            audience,
            signed_in,
            segments,
        },
    })
}

/// Refuses anything below the admin scope.
pub fn require_admin(scope: Scope) -> Result<(), Denied> {
    if scope == Scope::Admin {
        Ok(())
    } else {
        Err(Denied::Forbidden(
            "this endpoint needs an admin API key".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keys() -> ApiKeys {
        ApiKeys::from_config(&ServerConfig {
            customer_keys: vec![Secret::new("cust-key-0123456789")],
            agent_keys: vec![Secret::new("agent-key-0123456789")],
            admin_keys: vec![Secret::new("admin-key-0123456789")],
            ..ServerConfig::default()
        })
    }

    #[test]
    fn scopes_from_keys() {
        let k = keys();
        assert_eq!(
            k.authenticate(Some("cust-key-0123456789")),
            Ok(Scope::Customer)
        );
        assert_eq!(
            k.authenticate(Some("agent-key-0123456789")),
            Ok(Scope::Agent)
        );
        assert_eq!(
            k.authenticate(Some("admin-key-0123456789")),
            Ok(Scope::Admin)
        );
        assert_eq!(k.authenticate(Some("nope")), Err(Denied::Unauthenticated));
        assert_eq!(k.authenticate(None), Err(Denied::Unauthenticated));
        assert_eq!(ApiKeys::default().authenticate(None), Ok(Scope::Admin));
    }

    #[test]
    fn customer_key_cannot_become_agent() {
        assert!(matches!(
            grant(Scope::Customer, Some(Audience::Agent), false, vec![]),
            Err(Denied::Forbidden(_))
        ));
        let a = grant(Scope::Customer, None, true, vec![5]).unwrap();
        assert_eq!(a.audience, Audience::Customer);
        assert_eq!(a.segments, vec![5]);
        let a = grant(Scope::Agent, Some(Audience::Agent), true, vec![5]).unwrap();
        assert_eq!(a, Access::agent());
        assert!(require_admin(Scope::Agent).is_err());
        assert!(require_admin(Scope::Admin).is_ok());
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
