//! A nesting cap applied before parsing. html5ever's tree builder checks its stack of open
//! elements on every tag, so a body of tens of thousands of nested `<div>`s parses in time
//! quadratic in the depth (100k levels took half a minute). No real article nests more than a
//! few dozen levels; beyond [`MAX_DEPTH`], tags are dropped and their text kept, in one linear
//! pass over the raw HTML, and the translation is flagged.
//!
//! The pass is a tolerant tag scanner, not a parser: it tracks element depth from start and end
//! tags, skips comments, doctypes, `<![CDATA[…]]>` and the raw text of `script`, `style`,
//! `textarea` and `title`, and treats void and self-closing elements as depth-neutral. On
//! malformed input it can only misjudge the depth, which at worst flattens or keeps a level:
//! the text is never dropped.

use std::borrow::Cow;

/// Deepest element nesting kept; deeper start and end tags are dropped.
pub const MAX_DEPTH: usize = 256;

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "noscript"];

/// `html` with elements nested deeper than `cap` flattened (their tags dropped, text kept), and
/// whether anything was dropped. Borrows when nothing is.
pub(crate) fn cap_depth(html: &str, cap: usize) -> (Cow<'_, str>, bool) {
    let b = html.as_bytes();
    // Fast path: fewer start tags than the cap cannot nest deeper than it.
    if bytecount(b, b'<') <= cap {
        return (Cow::Borrowed(html), false);
    }
    let mut out = String::new();
    let mut copied = 0; // bytes of `html` before this are in `out` (or dropped)
    let mut depth = 0usize;
    let mut dropped = false;
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let at = i + off;
        let rest = &html[at..];
        // Comments, doctypes, CDATA and processing instructions: skip to their end.
        if let Some(end) = special_end(rest) {
            i = at + end;
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            i = at + 1;
            continue;
        };
        let end = at + tag.len;
        if tag.closing {
            if !VOID.contains(&tag.name.as_str()) {
                if depth > cap {
                    out.push_str(&html[copied..at]);
                    copied = end;
                    dropped = true;
                }
                depth = depth.saturating_sub(1);
            }
        } else if !tag.self_closing && !VOID.contains(&tag.name.as_str()) {
            depth += 1;
            if depth > cap {
                out.push_str(&html[copied..at]);
                copied = end;
                dropped = true;
            }
            if RAW_TEXT.contains(&tag.name.as_str()) {
                // Its content is text up to the matching end tag.
                let close = format!("</{}", tag.name);
                match find_ci(&html[end..], &close) {
                    Some(p) => {
                        i = end + p;
                        continue;
                    }
                    None => break,
                }
            }
        }
        i = end;
    }
    if !dropped {
        return (Cow::Borrowed(html), false);
    }
    out.push_str(&html[copied..]);
    (Cow::Owned(out), true)
}

fn bytecount(b: &[u8], c: u8) -> usize {
    b.iter().filter(|&&x| x == c).count()
}

/// The length of a comment, doctype, CDATA section or processing instruction at the start of
/// `s`, or `None` when `s` does not start with one. Unterminated: the rest of the input.
fn special_end(s: &str) -> Option<usize> {
    let (open, close) = if s.starts_with("<!--") {
        ("<!--", "-->")
    } else if s.starts_with("<![CDATA[") {
        ("<![CDATA[", "]]>")
    } else if s.starts_with("<!") || s.starts_with("<?") {
        ("<!", ">")
    } else {
        return None;
    };
    Some(
        s[open.len()..]
            .find(close)
            .map_or(s.len(), |p| open.len() + p + close.len()),
    )
}

/// Case-insensitive ASCII search.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.len();
    hay.as_bytes()
        .windows(n)
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A start or end tag at the start of the input.
struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    /// Bytes up to and including the closing `>`.
    len: usize,
}

impl Tag {
    fn parse(s: &str) -> Option<Tag> {
        let b = s.as_bytes();
        let mut i = 1;
        let closing = b.get(i) == Some(&b'/');
        if closing {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i == start || !b[start].is_ascii_alphabetic() {
            return None;
        }
        let name = s[start..i].to_ascii_lowercase();
        // To the end of the tag, skipping quoted attribute values.
        let mut quote = None;
        while i < b.len() {
            match (quote, b[i]) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(b[i]),
                (None, b'>') => {
                    let self_closing = i > 0 && b[i - 1] == b'/';
                    return Some(Tag {
                        name,
                        closing,
                        self_closing,
                        len: i + 1,
                    });
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_html_is_borrowed_untouched() {
        let html = "<div><p>a <b>b</b></p><br><img src=x /></div>";
        let (out, flagged) = cap_depth(html, 3);
        assert!(matches!(out, Cow::Borrowed(_)) && !flagged);
    }

    #[test]
    fn deep_nesting_is_flattened_and_text_kept() {
        let html = format!("{}deep text{}", "<div>".repeat(10), "</div>".repeat(10));
        let (out, flagged) = cap_depth(&html, 4);
        assert!(flagged);
        assert_eq!(out, "<div><div><div><div>deep text</div></div></div></div>");
    }

    #[test]
    fn comments_raw_text_and_quotes_do_not_count() {
        let html = "<div title='<div>'><!-- <div><div> --><script>if (a<b) { '<div>' }</script>\
                    <p>x</p></div>";
        let (out, flagged) = cap_depth(html, 2);
        assert!(!flagged, "{out}");
    }

    #[test]
    fn unterminated_input_never_panics() {
        for s in [
            "<",
            "<div",
            "<div class='",
            "<!--",
            "<script>",
            "</",
            "<<<>>>",
            "<a/",
        ] {
            let deep = format!("{}{s}", "<i>".repeat(5));
            let _ = cap_depth(&deep, 2);
        }
    }
}
