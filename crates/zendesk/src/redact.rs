//! Keeps credentials out of everything derived from a response: error details, logs, the
//! SQLite `last_error`, `status` and `sync --json`.
//!
//! Zendesk's 400/422 bodies can echo the request, `Authorization` header included. Known
//! secrets (the token, the OAuth token, their Basic/base64 forms) are replaced wherever they
//! appear; so are credential-shaped text (`Basic …`, `Bearer …`, `token:…`, long base64 or hex
//! runs) and the userinfo of URLs.

use base64::Engine as _;

/// What replaces a credential.
pub const REDACTED: &str = "[redacted]";

/// Replaces known secrets and credential patterns in text that came from a response.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these credentials (empty strings are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut all: Vec<String> = Vec::new();
        for s in secrets.into_iter().filter(|s| s.len() >= 4) {
            // The forms a server could echo: raw, Basic's base64, and its URL-safe variant.
            all.push(base64::engine::general_purpose::STANDARD.encode(&s));
            all.push(base64::engine::general_purpose::URL_SAFE.encode(&s));
            all.push(s);
        }
        // Longest first, so a secret inside a longer one does not leave a tail behind.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        Redactor { secrets: all }
    }

    /// `text` with every known secret and credential pattern replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        redact_patterns(&out)
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.' | '~' | ':' | '@')
}

/// Credential-shaped text: the word after `Basic`/`Bearer`/`token:`/`password`/`api_key`, URL
/// userinfo, and any run of 32 or more base64/hex characters.
pub fn redact_patterns(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
    let starts = |i: usize, w: &str| {
        let w: Vec<char> = w.chars().collect();
        lower.len() >= i + w.len() && lower[i..i + w.len()] == w[..]
    };
    let mut i = 0;
    while i < chars.len() {
        // A keyword followed by a credential: keep the keyword, drop the credential.
        let kw = [
            "basic ", "bearer ", "token:", "token=", "password", "api_key", "apikey",
        ]
        .iter()
        .find(|w| starts(i, w) && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()));
        if let Some(w) = kw {
            let n = w.chars().count();
            out.extend(&chars[i..i + n]);
            i += n;
            // Skip separators such as `": "` between a key and its value.
            while i < chars.len() && matches!(chars[i], ' ' | ':' | '=' | '"' | '\'') {
                out.push(chars[i]);
                i += 1;
            }
            let start = i;
            while i < chars.len() && is_token_char(chars[i]) {
                i += 1;
            }
            if i > start {
                out.push_str(REDACTED);
            }
            continue;
        }
        // URL userinfo: `scheme://user:pass@host`.
        if starts(i, "://") {
            out.push_str("://");
            i += 3;
            let rest: String = chars[i..].iter().take(256).collect();
            let end = rest
                .find(['/', '?', '#', ' ', '"', '\''])
                .unwrap_or(rest.len());
            if let Some(at) = rest[..end].rfind('@') {
                out.push_str(REDACTED);
                out.push('@');
                i += rest[..at].chars().count() + 1;
            }
            continue;
        }
        // Long base64/hex runs (tokens, Basic credentials without their keyword).
        if chars[i].is_ascii_alphanumeric() || matches!(chars[i], '+' | '=' | '-' | '_') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '+' | '=' | '-' | '_'))
            {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            let mixed = run.chars().any(|c| c.is_ascii_digit())
                && run.chars().any(|c| c.is_ascii_alphabetic());
            if run.len() >= 32 && mixed {
                out.push_str(REDACTED);
            } else {
                out.push_str(&run);
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// A URL without its userinfo (`https://user:pass@host/` → `https://host/`); text that does
/// not parse as a URL goes through [`redact_patterns`].
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => {
            // `user:pw@host` without a scheme: drop everything up to the last `@`.
            let s = redact_patterns(url);
            match s.rfind('@') {
                Some(at) if s[..at].contains(':') => format!("{REDACTED}@{}", &s[at + 1..]),
                _ => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_authorization_is_redacted() {
        let r = Redactor::new([
            "s3cr3t-token-value".to_string(),
            "me@x.test/token:s3cr3t-token-value".to_string(),
        ]);
        let basic =
            base64::engine::general_purpose::STANDARD.encode("me@x.test/token:s3cr3t-token-value");
        let body = format!(
            r#"{{"error":"InvalidRequest","description":"bad header Authorization: Basic {basic}","token":"s3cr3t-token-value"}}"#
        );
        let out = r.redact(&body);
        assert!(!out.contains(&basic) && !out.contains("s3cr3t"), "{out}");
        assert!(
            out.contains("InvalidRequest") && out.contains(REDACTED),
            "{out}"
        );
    }

    #[test]
    fn unknown_credentials_are_caught_by_shape() {
        for s in [
            "Authorization: Bearer abc.def-ghi",
            "authorization: basic Zm9vOmJhcg==",
            "api_key=hunter2hunter2",
            "password: \"letmein\"",
            "key 0123456789abcdef0123456789abcdef0123",
            "see https://bob:pw@acme.zendesk.com/api",
        ] {
            let out = redact_patterns(s);
            for secret in [
                "abc.def-ghi",
                "Zm9vOmJhcg==",
                "hunter2hunter2",
                "letmein",
                "0123456789abcdef0123",
                "bob:pw",
            ] {
                assert!(!out.contains(secret), "{s} -> {out}");
            }
        }
        let plain =
            "zendesk answered 422 for /api/v2/help_center/articles/123.json: Invalid search";
        assert_eq!(redact_patterns(plain), plain, "ordinary text is kept");
    }

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(
            redact_url("https://user:pass@acme.zendesk.com/"),
            "https://acme.zendesk.com/"
        );
        assert_eq!(
            redact_url("https://acme.zendesk.com"),
            "https://acme.zendesk.com/"
        );
        assert!(!redact_url("not a url user:pw@host").contains("pw@"));
    }
}
