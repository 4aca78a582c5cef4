//! Recognizes links to other Help Center articles (zendesk-api.md §9.4).

/// The article id and locale an `href` points at, when it is a Help Center article page:
/// `https://host/hc/en-us/articles/123-Slug`, `//host/hc/de/articles/123`, `/hc/articles/123`,
/// with or without slug, query or fragment. API URLs (`/api/v2/help_center/articles/…`),
/// sections, categories, community posts and attachments are not article pages.
///
/// Any host is accepted: the normalizer does not know the help center's host, and an edge to an
/// id that is not in the index is harmless (the consumer resolves ids against its own store).
pub(crate) fn article_target(href: &str) -> Option<(u64, Option<String>)> {
    let href = href.trim();
    let path = if let Some(rest) = strip_prefix_ci(href, "https://")
        .or_else(|| strip_prefix_ci(href, "http://"))
        .or_else(|| href.strip_prefix("//"))
    {
        &rest[rest.find('/')?..]
    } else if href.starts_with('/') {
        href
    } else {
        return None;
    };
    let rest = path.strip_prefix("/hc/")?;
    let (locale, rest) = match rest.strip_prefix("articles/") {
        Some(r) => (None, r),
        None => {
            let slash = rest.find('/')?;
            let locale = &rest[..slash];
            if !is_locale(locale) {
                return None;
            }
            (
                Some(locale.to_ascii_lowercase()),
                rest[slash + 1..].strip_prefix("articles/")?,
            )
        }
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    match rest.as_bytes().get(digits) {
        None | Some(b'-' | b'#' | b'?' | b'/') => {}
        Some(_) => return None,
    }
    let id = rest[..digits].parse().ok()?;
    Some((id, locale))
}

/// A Zendesk locale path segment: `en-us`, `de`, `pt-br`, `zh-tw`, `sr-me` …
fn is_locale(s: &str) -> bool {
    (2..=12).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_article_pages() {
        let t = |h| article_target(h);
        assert_eq!(
            t("https://x.zendesk.com/hc/en-us/articles/123-Slug"),
            Some((123, Some("en-us".into())))
        );
        assert_eq!(
            t("HTTP://x.zendesk.com/hc/de/articles/123"),
            Some((123, Some("de".into())))
        );
        assert_eq!(
            t("//help.example.com/hc/pt-BR/articles/9#h_01"),
            Some((9, Some("pt-br".into())))
        );
        assert_eq!(t("/hc/de/articles/123"), Some((123, Some("de".into()))));
        assert_eq!(t("/hc/articles/123"), Some((123, None)));
        assert_eq!(
            t(" /hc/en-us/articles/123?page=2 "),
            Some((123, Some("en-us".into())))
        );
        assert_eq!(
            t("/hc/en-us/articles/123/comments"),
            Some((123, Some("en-us".into())))
        );
    }

    #[test]
    fn rejects_everything_else() {
        for h in [
            "/api/v2/help_center/articles/123",
            "https://x.zendesk.com/api/v2/help_center/en-us/articles/123.json",
            "/hc/en-us/sections/123-Slug",
            "/hc/en-us/community/posts/123",
            "/hc/en-us/article_attachments/123/a.png",
            "/hc/en-us/articles/",
            "/hc/en-us/articles/12ab",
            "/hc/en-us/articles/99999999999999999999999",
            "hc/en-us/articles/1",
            "#h_01ABC",
            "mailto:a@b.c",
            "https://x.zendesk.com",
            "",
        ] {
            assert_eq!(article_target(h), None, "{h}");
        }
    }
}
