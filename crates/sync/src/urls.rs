//! Citation URLs: one canonical, safe URL per translation. Pure.
//!
//! Zendesk gives an article's page in two forms (the article object with its slug, the
//! translation without it), and a sync that stored whichever it saw last re-indexed unchanged
//! articles each time the form flipped. The canonical form is `{origin}/hc/{locale}/articles/{id}`:
//! the id resolves the page, the slug is cosmetic and changes with the title.
//!
//! Only `http(s)` URLs on the source's own host or its brand's hosts are kept; anything else
//! (`javascript:`, `data:`, another site) is replaced by the same path on the brand's host, so a
//! hostile `html_url` can never reach a customer as a link.

use url::Url;

/// The hosts a source's citations may point at, and where to point when Zendesk's URL is not
/// acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// Lower-case `host[:port]` (port only when not the scheme's default).
    allowed: Vec<String>,
    /// `scheme://host[:port]` used when the given URL is refused.
    fallback: String,
}

fn authority(u: &Url) -> Option<String> {
    let host = u.host_str()?.to_ascii_lowercase();
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

fn origin_of(u: &Url) -> Option<String> {
    Some(format!("{}://{}", u.scheme(), authority(u)?))
}

fn web_url(s: &str) -> Option<Url> {
    let u = Url::parse(s.trim()).ok()?;
    (matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some()
        && u.username().is_empty()
        && u.password().is_none())
    .then_some(u)
}

impl Hosts {
    /// The source's base URL plus the brand's hosts (`host_mapping`, `brand_url`, the
    /// `{subdomain}.zendesk.com` host). Citations fall back to the mapped host when the brand has
    /// one (that is where its public pages live), else to the base URL's origin.
    pub fn new(base: &Url, host_mapping: Option<&str>, brand_urls: &[String]) -> Hosts {
        let mut allowed = Vec::new();
        let mut push = |a: String| {
            if !allowed.contains(&a) {
                allowed.push(a);
            }
        };
        if let Some(a) = authority(base) {
            push(a);
        }
        let mapping = host_mapping
            .map(|m| m.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|m| !m.is_empty())
            .and_then(|m| web_url(&format!("https://{m}")));
        if let Some(a) = mapping.as_ref().and_then(authority) {
            push(a);
        }
        for b in brand_urls {
            if let Some(a) = web_url(b).as_ref().and_then(authority) {
                push(a);
            }
        }
        let fallback = mapping
            .as_ref()
            .and_then(origin_of)
            .or_else(|| origin_of(base))
            .unwrap_or_default();
        Hosts { allowed, fallback }
    }

    /// Rebuilds from what was stored (`hosts` as [`Hosts::to_stored`] wrote them).
    pub fn from_stored(base: &Url, stored: &[String]) -> Hosts {
        let mut h = Hosts::new(base, None, &[]);
        for s in stored {
            if let Some(f) = s.strip_prefix("fallback=") {
                if web_url(f).is_some() {
                    h.fallback = f.to_string();
                }
            } else if !h.allowed.contains(s) {
                h.allowed.push(s.clone());
            }
        }
        h
    }

    /// What to store so a run without network access to brands (a webhook) rebuilds the same
    /// [`Hosts`].
    pub fn to_stored(&self) -> Vec<String> {
        let mut v = self.allowed.clone();
        v.push(format!("fallback={}", self.fallback));
        v
    }

    /// Whether `u` points at one of the allowed hosts over http(s).
    pub fn allows(&self, u: &Url) -> bool {
        matches!(u.scheme(), "http" | "https")
            && authority(u).is_some_and(|a| self.allowed.contains(&a))
    }

    /// The canonical citation URL of translation `locale` of article `id`, from the URL
    /// Zendesk gave (`raw`), or from the fallback host when `raw` is missing or refused.
    pub fn canonical(&self, raw: Option<&str>, id: u64, locale: &str) -> String {
        let locale: String = locale
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let (origin, prefix) = match raw.and_then(web_url).filter(|u| self.allows(u)) {
            Some(u) => {
                // A help center served under a path keeps it: `/support/hc/...`.
                let path = u.path();
                let prefix = path.find("/hc/").map(|i| &path[..i]).unwrap_or("");
                (origin_of(&u).unwrap_or_default(), prefix.to_string())
            }
            None => (self.fallback.clone(), String::new()),
        };
        format!("{origin}{prefix}/hc/{locale}/articles/{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Hosts {
        Hosts::new(
            &Url::parse("https://acme.zendesk.com/").unwrap(),
            Some("help.acme.test"),
            &["https://acme.zendesk.com".to_string()],
        )
    }

    #[test]
    fn slug_and_slugless_forms_give_one_url() {
        let h = hosts();
        let a = h.canonical(
            Some("https://help.acme.test/hc/en-us/articles/42-Refund-policy"),
            42,
            "en-us",
        );
        let b = h.canonical(
            Some("https://help.acme.test/hc/en-us/articles/42"),
            42,
            "en-us",
        );
        assert_eq!(a, b);
        assert_eq!(a, "https://help.acme.test/hc/en-us/articles/42");
        assert_eq!(
            h.canonical(
                Some("https://acme.zendesk.com/hc/de/articles/42-X?x=1#frag"),
                42,
                "de"
            ),
            "https://acme.zendesk.com/hc/de/articles/42"
        );
    }

    #[test]
    fn hostile_or_foreign_urls_fall_back_to_the_brand_host() {
        let h = hosts();
        for raw in [
            "javascript:alert(document.cookie)//",
            "data:text/html,<script>alert(1)</script>",
            "https://evil.test/hc/en-us/articles/42",
            "https://user:pw@help.acme.test/hc/en-us/articles/42",
            "//help.acme.test/hc/en-us/articles/42",
            "not a url",
        ] {
            assert_eq!(
                h.canonical(Some(raw), 42, "en-us"),
                "https://help.acme.test/hc/en-us/articles/42",
                "{raw}"
            );
        }
        assert_eq!(
            h.canonical(None, 7, "en-us\"><x"),
            "https://help.acme.test/hc/en-usx/articles/7"
        );
    }

    #[test]
    fn ports_and_paths_are_kept_and_stored_hosts_round_trip() {
        let base = Url::parse("http://127.0.0.1:7701/").unwrap();
        let h = Hosts::new(&base, None, &[]);
        assert_eq!(
            h.canonical(
                Some("http://127.0.0.1:7701/support/hc/de/articles/5-T"),
                5,
                "de"
            ),
            "http://127.0.0.1:7701/support/hc/de/articles/5"
        );
        assert_eq!(
            h.canonical(Some("http://127.0.0.1:9999/hc/de/articles/5"), 5, "de"),
            "http://127.0.0.1:7701/hc/de/articles/5",
            "another port is another site"
        );
        let h2 = hosts();
        assert_eq!(
            Hosts::from_stored(
                &Url::parse("https://acme.zendesk.com/").unwrap(),
                &h2.to_stored()
            ),
            h2
        );
    }
}
