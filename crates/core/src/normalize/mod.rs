//! Article HTML → clean, citable passages. Pure: no I/O, no clock.
//!
//! What the AI reads and what a citation points at are decided here. The output is
//! deterministic, so its blake3 hash (`content_hash`) is what sync compares to decide whether an
//! article changed: cosmetic markup edits do not change it, any change to visible text does.
//!
//! One parse (html5ever through `scraper`), then one iterative walk of the tree (`dom`) that
//! builds the output as it goes; `passages` cuts long sections. Rules, in short:
//! - sections split at `h1`–`h6`, with the heading path and the heading's *real* anchor (its
//!   `id`, or the `id`/`name` of an `a` inside it; never invented);
//! - tables of contents (lists of same-page `#…` links, TOC containers) and hidden or
//!   non-content elements (`script`, `style`, `display:none`, `hidden`, configured
//!   `drop_selectors`…) are left out;
//! - tables read as header-aware rows (`tables`), lists keep markers and nesting, `pre` keeps
//!   its whitespace, images read as their alt text, links as their text (links to other articles
//!   are returned as [`ArticleLink`] edges).
//!
//! `html2text` is not used here, deliberately: it has no notion of headings (so no sections or
//! anchors), it wraps lines, and running it per section would mean a second parse of every
//! section. The benchmark (`cargo bench --bench normalize`) measures it beside this normalizer.

mod depth;
mod dom;
mod links;
mod passages;
mod tables;
mod text;

use scraper::{Html, Selector};
use serde::{Deserialize, Serialize};

/// Bump whenever the output of [`normalize`] can change for the same input: the next sync then
/// re-normalizes every stored raw body and re-indexes what changed, without a network refetch.
///
/// v2: segmentation at headings with real anchors, header-aware tables, lists, TOC removal,
/// passages, article links, hash over the links too.
/// v3: every passage starts with its heading; a heading without text opens the next passage.
pub const NORMALIZER_VERSION: u32 = 3;

/// Knobs for [`normalize`]; part of the configuration file (`[normalize]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeOptions {
    /// Upper bound, in characters (Unicode scalar values, not bytes), of one passage's `text`;
    /// default 1500. Longer sections are split at line (paragraph, list item, table row)
    /// boundaries, a line longer than the bound at a sentence end or whitespace, and only as a
    /// last resort in the middle of a word. Values below 1 act as 1.
    pub max_passage_chars: usize,
    /// CSS selectors whose elements (and their content) are dropped before extraction, e.g.
    /// `.agent-only` or `[data-internal]`. Check them with [`validate_selectors`] when loading
    /// configuration: [`normalize`] silently ignores a selector that does not parse.
    pub drop_selectors: Vec<String>,
}

impl NormalizeOptions {
    /// Identifies what the normalizer produces: [`NORMALIZER_VERSION`] together with these
    /// options. Stored with every translation, so that changing the version *or* the options
    /// (a new drop selector, another passage bound) re-normalizes stored bodies on the next sync.
    pub fn fingerprint(&self) -> u32 {
        let mut h = blake3::Hasher::new();
        h.update(&NORMALIZER_VERSION.to_le_bytes());
        h.update(&(self.max_passage_chars as u64).to_le_bytes());
        for s in &self.drop_selectors {
            h.update(s.as_bytes());
            h.update(&[0]);
        }
        let b = h.finalize();
        // Keep it positive in SQLite's signed integers and distinct from small version numbers.
        u32::from_le_bytes([
            b.as_bytes()[0],
            b.as_bytes()[1],
            b.as_bytes()[2],
            b.as_bytes()[3] & 0x7f,
        ]) | 0x1000_0000
    }
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self {
            max_passage_chars: 1500,
            drop_selectors: Vec::new(),
        }
    }
}

/// One citable passage of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// Position in the article over all passages, from 0.
    pub ordinal: u32,
    /// Heading texts from the outermost to this passage's heading; empty for the intro (text
    /// before the first heading, "under the article title").
    pub heading_path: Vec<String>,
    /// The heading's anchor id, only when it really exists in the page (the heading's `id`, or
    /// the `id`/`name` of an `a` inside it); cite `html_url#anchor` only then.
    pub anchor: Option<String>,
    /// Normalized text, no markup; lines separated by `\n`; at most
    /// [`NormalizeOptions::max_passage_chars`] chars; never empty.
    pub text: String,
    /// blake3 hex of the passage (heading path, anchor, text).
    pub hash: String,
}

/// A link from this article to another Help Center article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleLink {
    /// Target article id.
    pub article_id: u64,
    /// Locale part of the link path (lower-cased), when it had one.
    pub locale: Option<String>,
    /// The link's text (first occurrence when the same target is linked several times).
    pub text: String,
}

/// Result of normalizing one article translation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    /// Passages in document order; never empty strings.
    pub passages: Vec<Passage>,
    /// Article-to-article edges found in the body, deduplicated per target and locale.
    pub links: Vec<ArticleLink>,
    /// blake3 hex over [`NORMALIZER_VERSION`], the title, every passage and every link (see
    /// [`output_hash`]); equals [`content_hash`] when the body links to no article.
    pub content_hash: String,
    /// The body nested elements deeper than the parser handles in linear time: the deepest
    /// levels were flattened (their text kept). Sync reports it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flattened: bool,
}

/// A `drop_selectors` entry that is not a valid CSS selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid drop selector `{selector}`: {reason}")]
pub struct SelectorError {
    /// The selector as configured.
    pub selector: String,
    /// What the CSS parser objected to.
    pub reason: String,
}

/// Checks every selector, so configuration loading can reject a bad one with a clear message
/// instead of [`normalize`] ignoring it.
pub fn validate_selectors(selectors: &[String]) -> Result<(), SelectorError> {
    for s in selectors {
        if let Err(e) = Selector::parse(s) {
            return Err(SelectorError {
                selector: s.clone(),
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}

/// Normalizes one translation. Never panics, whatever the input. A translation without a body
/// (Zendesk sends `"body": null` for title-only translations) gets one passage, its title, so it
/// can still be found and cited.
pub fn normalize(title: &str, html: Option<&str>, opts: &NormalizeOptions) -> Normalized {
    let extract = match html {
        Some(html) if !html.trim().is_empty() => {
            let drop: Vec<Selector> = opts
                .drop_selectors
                .iter()
                .filter_map(|s| Selector::parse(s).ok())
                .collect();
            // Drop selectors cannot be checked on flattened markup: with any, nothing nested
            // deeper than the cap is kept.
            let (html, flattened) = depth::cap_depth(html, depth::MAX_DEPTH, drop.is_empty());
            let doc = Html::parse_fragment(&html);
            let mut extract = dom::extract(&doc, &drop);
            extract.flattened = flattened;
            extract
        }
        _ => dom::Extract::default(),
    };
    let mut passages = Vec::new();
    // Headings whose section has no text of its own (an h2 directly followed by an h3): they
    // open the next passage instead of standing alone, so no passage is a bare heading.
    let mut carried: Vec<String> = Vec::new();
    let count = extract.sections.len();
    for (i, section) in extract.sections.into_iter().enumerate() {
        let mut lead = std::mem::take(&mut carried);
        lead.extend(section.path.last().cloned());
        let has_text = section.lines.iter().any(|l| !l.trim().is_empty());
        if !has_text && i + 1 < count {
            carried = lead;
            continue;
        }
        for text in passages::split_under(&lead, &section.lines, opts.max_passage_chars) {
            let ordinal = u32::try_from(passages.len()).unwrap_or(u32::MAX);
            let hash = passage_hash(&section.path, section.anchor.as_deref(), &text);
            passages.push(Passage {
                ordinal,
                heading_path: section.path.clone(),
                anchor: section.anchor.clone(),
                text,
                hash,
            });
        }
    }
    if passages.is_empty() && !title.trim().is_empty() {
        // Within the bound like any text (a title longer than it is cut as a long line is).
        for text in passages::split(&[text::line(title)], opts.max_passage_chars) {
            let ordinal = u32::try_from(passages.len()).unwrap_or(u32::MAX);
            let hash = passage_hash(&[], None, &text);
            passages.push(Passage {
                ordinal,
                heading_path: Vec::new(),
                anchor: None,
                text,
                hash,
            });
        }
    }
    let content_hash = output_hash(title, &passages, &extract.links);
    Normalized {
        passages,
        links: extract.links,
        content_hash,
        flattened: extract.flattened,
    }
}

/// blake3 of one passage: heading path, anchor (an anchor change changes citations, so it counts)
/// and text, with separators that cannot occur in them ambiguously.
fn passage_hash(path: &[String], anchor: Option<&str>, text: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&(path.len() as u64).to_le_bytes());
    for p in path {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    match anchor {
        Some(a) => {
            h.update(&[1]);
            h.update(&(a.len() as u64).to_le_bytes());
            h.update(a.as_bytes());
        }
        None => {
            h.update(&[0]);
        }
    }
    h.update(text.as_bytes());
    h.finalize().to_hex().to_string()
}

/// blake3 over the normalizer version, the title and the passages.
pub fn content_hash(title: &str, passages: &[Passage]) -> String {
    hasher(title, passages).finalize().to_hex().to_string()
}

/// [`content_hash`] extended with the article links: a link retargeted without a text change
/// still changes the stored output (the link edges), so sync must rewrite it.
pub fn output_hash(title: &str, passages: &[Passage], links: &[ArticleLink]) -> String {
    let mut h = hasher(title, passages);
    for l in links {
        h.update(b"\x00link");
        h.update(&l.article_id.to_le_bytes());
        h.update(l.locale.as_deref().unwrap_or("").as_bytes());
        h.update(&[0]);
        h.update(l.text.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

fn hasher(title: &str, passages: &[Passage]) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(&NORMALIZER_VERSION.to_le_bytes());
    h.update(title.as_bytes());
    h.update(&[0]);
    for s in passages {
        h.update(s.hash.as_bytes());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(html: &str) -> Vec<(Vec<String>, Option<String>, String)> {
        normalize("T", Some(html), &NormalizeOptions::default())
            .passages
            .into_iter()
            .map(|s| (s.heading_path, s.anchor, s.text))
            .collect()
    }

    #[test]
    fn headings_nest_by_level() {
        let out = texts("<p>intro</p><h2 id=a>A</h2><p>a</p><h3>B</h3><p>b</p><h2>C</h2><p>c</p>");
        let paths: Vec<_> = out
            .iter()
            .map(|(p, a, t)| (p.join(" › "), a.clone(), t.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("".into(), None, "intro"),
                ("A".into(), Some("a".into()), "A\na"),
                ("A › B".into(), None, "B\nb"),
                ("C".into(), None, "C\nc"),
            ]
        );
    }

    /// A heading with no text of its own opens the next passage; a last one stands alone.
    /// See: issue 10 (8% of passages were a heading alone; an answer that is a heading was
    /// unfindable at passage level).
    #[test]
    fn passages_start_with_their_heading_and_no_heading_stands_alone() {
        let out = texts(
            "<h2>Billing</h2><h3 id=r>Refunds</h3><p>Refund within 30 days.</p>\
             <h2>Can I change my currency?</h2><p>No.</p><h2>Still stuck?</h2>",
        );
        let got: Vec<_> = out
            .iter()
            .map(|(p, _, t)| (p.join(" › "), t.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "Billing › Refunds".into(),
                    "Billing\nRefunds\nRefund within 30 days."
                ),
                (
                    "Can I change my currency?".into(),
                    "Can I change my currency?\nNo."
                ),
                ("Still stuck?".into(), "Still stuck?"),
            ]
        );
        // Every continuation of a long section starts with the heading too, within the bound.
        let long = format!(
            "<h2>Limits</h2><p>{}</p>",
            "Sentence one is here. ".repeat(200)
        );
        let opts = NormalizeOptions {
            max_passage_chars: 300,
            ..NormalizeOptions::default()
        };
        let n = normalize("T", Some(&long), &opts);
        assert!(n.passages.len() > 5);
        for p in &n.passages {
            assert!(p.text.starts_with("Limits\n"), "{}", p.text);
            assert!(p.text.chars().count() <= 300);
        }
    }

    /// The title standing in for an empty body keeps the passage bound too. Found by the fuzz
    /// target `normalize_tag_soup` (issue 12): `<p>` with a bound of 0 gave a 5-char passage.
    #[test]
    fn a_title_passage_keeps_the_bound() {
        let opts = NormalizeOptions {
            max_passage_chars: 0,
            ..NormalizeOptions::default()
        };
        let n = normalize("Title", Some("<p>"), &opts);
        let texts: Vec<_> = n.passages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["T", "i", "t", "l", "e"]);
        assert!(
            n.passages
                .iter()
                .enumerate()
                .all(|(i, p)| p.ordinal as usize == i)
        );
        let n = normalize("Title", None, &NormalizeOptions::default());
        assert_eq!(n.passages[0].text, "Title");
    }

    #[test]
    fn selectors_validate() {
        assert!(validate_selectors(&[".agent-only".into(), "[data-internal]".into()]).is_ok());
        let err = validate_selectors(&["div[".into()]).unwrap_err();
        assert_eq!(err.selector, "div[");
        assert!(
            err.to_string().starts_with("invalid drop selector `div[`"),
            "{err}"
        );
    }
}
