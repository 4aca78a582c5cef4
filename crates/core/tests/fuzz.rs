//! Fuzzing of the normalizer and the query path at scale (issue 12, "hostile input").
//!
//! Every target is a proptest run with `HELPDEX_FUZZ_CASES` cases (default 256, so a plain
//! `cargo test` stays fast). A long run:
//!
//! ```text
//! HELPDEX_FUZZ_CASES=200000 cargo test --release -p helpdex-core --test fuzz -- --nocapture
//! ```
//!
//! Each target prints its case count and wall time. A panic anywhere in a target is a failure
//! (proptest catches it and shrinks the input); a shrunk failing input is kept in
//! `fuzz.proptest-regressions` and as a named regression test at the end of this file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::OnceLock;
use std::time::Instant;

use helpdex_core::engine::Engine;
use helpdex_core::model::{Access, Audience, Visibility, doc_key};
use helpdex_core::normalize::{NormalizeOptions, Normalized, normalize};
use helpdex_core::query::{self, InvalidQuery, Query, QueryInput};
use helpdex_core::search::plan::plan;
use helpdex_core::search::{QueryError, context, search};
use helpdex_core::store::{ArticleRow, Batch, TranslationRow};
use helpdex_core::visibility::{UserSegment, decide};
use helpdex_lang::ALL_FAMILIES;
use helpdex_lang::schema::{question_pairs, question_terms};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseResult, TestRunner};
use scraper::{ElementRef, Html};

// ---------------------------------------------------------------------------------------------
// The runner

/// Cases per target: `HELPDEX_FUZZ_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("HELPDEX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Runs one target and reports its figures; panics with the shrunk input on a failure.
fn fuzz<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: Debug,
{
    let n = cases(256);
    let mut runner = TestRunner::new(Config {
        cases: n,
        // Relative to the package: `cargo test` runs integration tests there.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz.proptest-regressions",
        ))),
        // Shrinking a large soup is slow; a few thousand steps find a small enough input.
        max_shrink_iters: 4_096,
        ..Config::default()
    });
    let started = Instant::now();
    let result = runner.run(&strategy, test);
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => eprintln!(
            "fuzz {name}: {n} cases in {secs:.1} s ({:.0} cases/s), 0 failures",
            f64::from(n) / secs.max(1e-9)
        ),
        Err(e) => panic!("fuzz {name}: failed after {secs:.1} s: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile HTML

/// Markers inside content that must never be shown. They occur nowhere else in the inputs.
const SCRIPT_MARK: &str = "XSCRIPTX";
const STYLE_MARK: &str = "XSTYLEX";
const HIDDEN_MARK: &str = "XHIDDENX";
const AGENT_MARK: &str = "XAGENTX";
/// The word whose `<p>` must survive wherever it is inserted.
const WORD: &str = "ZQXWORD";

/// Hostile text: scripts of every direction, invisible and control characters, entities valid
/// and broken, NUL, surrogates as references, emoji sequences, CJK without spaces.
fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "refund", "Konto", "password", "ログインできない", "客服中心", "비밀번호를",
            "مرحبا بكم", "שלום עולם", "Καλημέρα", "İPTAL", "ｉＰｈｏｎｅ", "ｶﾞ", "e\u{301}",
            "\u{301}", "\u{0}", "a\u{0}b", "\u{200B}", "\u{200D}", "\u{200E}", "\u{200F}",
            "\u{202E}evil\u{202C}", "\u{2066}iso\u{2069}", "\u{FEFF}", "\u{AD}", "\u{2028}",
            "\u{3000}", "\u{A0}", "\r\n", "\r", "\t", "\u{1F}", "\u{7F}", "\u{85}", "👩‍💻",
            "🇩🇪", "👍🏽", "🏳️‍🌈", "𠀀𠀁", "\u{10FFFF}", "\u{FFFD}", "\u{E000}", "ﷺ", "ǅ",
            "日本語。中文，한국어", "ไทยภาษา", "  ", " ", ".", "!", "?", ";", "a < b", "x > y",
            "1 & 2", "\"quoted\"", "'single'", "`tick`", "C:\\path\\file", "// comment",
        ]).prop_map(str::to_string),
        2 => prop::sample::select(vec![
            "&amp;", "&nbsp;", "&lt;", "&gt;", "&quot;", "&#0;", "&#x0;", "&#xD800;",
            "&#xDFFF;", "&#99999999;", "&#x110000;", "&#x202E;", "&#8203;", "&bogus;", "&amp",
            "&", "&#", "&#x;", "&#;", "&nbsp", "&NotAnEntity;", "&zwj;", "&shy;", "&ZeroWidthSpace;",
            "&#128105;&#8205;&#128187;", "&#13;", "&#x85;", "&#x80;", "&#9;",
        ]).prop_map(str::to_string),
        2 => "[a-zA-Z0-9 .,!?:;'\"()\\-]{0,40}",
        1 => "[^<&]{0,24}",
    ]
}

#[rustfmt::skip]
const TAGS: &[&str] = &[
    "p", "div", "span", "b", "strong", "i", "em", "u", "s", "a", "h1", "h2", "h3", "h4",
    "h5", "h6", "ul", "ol", "li", "menu", "dir", "table", "thead", "tbody", "tfoot", "tr",
    "td", "th", "caption", "colgroup", "col", "pre", "code", "listing", "blockquote", "br",
    "img", "image", "hr", "wbr", "section", "article", "aside", "header", "footer", "main",
    "o:p", "w:sdt", "foo-bar", "font", "center", "nobr", "marquee", "script", "style",
    "template", "iframe", "noscript", "noembed", "noframes", "nav", "figure", "figcaption",
    "dl", "dt", "dd", "sup", "sub", "select", "option", "optgroup", "datalist", "svg",
    "math", "mi", "body", "html", "head", "title", "meta", "link", "base", "form", "input",
    "button", "label", "fieldset", "legend", "details", "summary", "dialog", "object",
    "embed", "canvas", "video", "audio", "source", "ruby", "rt", "rp", "bdi", "bdo",
    "frameset", "frame", "xmp", "textarea", "plaintext", "H2", "TaBlE", "SCRIPT", "Style",
];

fn tag_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(TAGS.to_vec())
}

/// Attributes, weird ones first: hrefs that look like article links and are not, numbers out
/// of range, styles with multi-byte characters where `!important` is looked for.
fn attr() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "", " id=\"h_01ABC\"", " id=\"x1\"", " id=\"\"", " id=\" \"", " id='a\"b'",
            " id=\"x&quot; onclick=&quot;alert(1)\"", " name=\"n1\"", " class=\"toc\"",
            " class=\"TOC other\"", " class=\"agent-only\"", " hidden", " HIDDEN=hidden",
            " style=\"display:none\"", " style=\"DISPLAY : None !IMPORTANT\"",
            " style=\"visibility:collapse\"", " style=\"mso-hide:all\"",
            " style=\"font-weight:700\"", " style=\"font-weight:normal\"",
            " style=\"font-weight:9999999999999\"", " style=\";;;:\"",
            " style=\"display:ééééé\"", " style=\"x:é!important\"", " style=\"display\"",
            " href=\"#h_01ABC\"", " href=\"#\"", " href=\" #x \"", " href=\"javascript:alert(1)\"",
            " href=\"/hc/en-us/articles/12-x\"", " href=\"https://x.zendesk.com/hc/articles/34\"",
            " href=\"/hc/en-us/articles/99999999999999999999999\"",
            " href=\"/hc/en-us/articles/18446744073709551615\"",
            " href=\"//h/hc/pt-BR/articles/7#frag\"", " href=\"HTTPS://X/HC/EN-US/ARTICLES/5\"",
            " href=\"/hc/ü/articles/1\"", " href=\"/hc/\"", " href=\"//\"", " href=\"http://\"",
            " href=\"https://ä\"", " href=\"/hc/xx-yy-zz-aa-bb-cc/articles/3\"",
            " href=\"data:text/html,<script>\"", " href", " alt=\"alt text\"", " alt=\"\"",
            " alt=\"\u{202E}txet\"", " alt=\"日本語\"", " alt", " colspan=\"2\"",
            " colspan=\"99999999\"", " colspan=\"-1\"", " colspan=\"18446744073709551616\"",
            " colspan=\" 3 \"", " start=\"5\"", " start=\"-9223372036854775808\"",
            " start=\"99999999999999999999\"", " value=\"9223372036854775807\"",
            " value=\"-3\"", " data-internal", " title=\"<script>XSCRIPTX</script>\"",
            " onclick=\"XSCRIPTX()\"", " class=\"a\" id=\"b\" style=\"color:red\"",
            " id=a id=b", " =x", " a=b=c", " \"q\"", " type=\"text/template\"",
        ]).prop_map(str::to_string),
        1 => ("[a-z]{1,8}", "[^\"]{0,30}").prop_map(|(k, v)| format!(" {k}=\"{v}\"")),
        1 => (1usize..6000).prop_map(|n| format!(" data-long=\"{}\"", "x".repeat(n))),
    ]
}

/// Markup that hides what it holds: scripts (with script-data escapes), styles, hidden and
/// non-content elements. Each holds a marker that must never reach the output.
const HIDING: &[&str] = &[
    "<script>XSCRIPTX</script>",
    "<SCRIPT type=\"text/template\"><p>XSCRIPTX</p></SCRIPT >",
    "<script>if (a<b) { '<div>' } XSCRIPTX</script>",
    "<script><!--XSCRIPTX--></script>",
    "<script><!--<script>XSCRIPTX</script>-->XSCRIPTX</script>",
    "<script>document.write('</scr'+'ipt>') XSCRIPTX</script>",
    "<script>XSCRIPTX",
    "<style>p { color: red } XSTYLEX</style>",
    "<style>XSTYLEX",
    "<div hidden>XHIDDENX</div>",
    "<span style=\"display: none !important\">XHIDDENX</span>",
    "<p style=\"VISIBILITY:hidden\">XHIDDENX</p>",
    "<div class=\"toc\"><p>XHIDDENX</p></div>",
    "<nav>XHIDDENX</nav>",
    "<template><p>XHIDDENX</p></template>",
    "<noscript>XHIDDENX</noscript>",
    "<iframe>XHIDDENX</iframe>",
    "<select><option>XHIDDENX</option></select>",
    "<svg><text>XHIDDENX</text></svg>",
    "<div class=\"agent-only\">XAGENTX</div>",
];

fn hiding() -> impl Strategy<Value = String> {
    prop::sample::select(HIDING.to_vec()).prop_map(str::to_string)
}

/// The hiding markup that closes what it opens (it cannot swallow what follows).
fn closed_hiding() -> impl Strategy<Value = String> {
    let closed: Vec<&str> = HIDING
        .iter()
        .copied()
        .filter(|h| h.contains("</"))
        .collect();
    prop::sample::select(closed).prop_map(str::to_string)
}

/// Deep nesting: one opener repeated up to 1,500 times (past the 256-level cap), closed or
/// not.
fn depth_bomb() -> impl Strategy<Value = String> {
    let openers = prop::sample::select(vec![
        ("<div>", "</div>"),
        ("<span>", "</span>"),
        ("<b>", "</b>"),
        ("<p>", "</p>"),
        ("<li>", "</li>"),
        ("<ul><li>", "</li></ul>"),
        ("<table><tr><td>", "</td></tr></table>"),
        ("<blockquote>", "</blockquote>"),
        ("<div><span>", "</span></div>"),
        ("<a href=\"/hc/articles/1\">", "</a>"),
        ("<h2>", "</h2>"),
        ("<pre>", "</pre>"),
    ]);
    let n = prop_oneof![6 => 0usize..400, 1 => 400usize..1500];
    (openers, n, any::<bool>()).prop_map(|((open, close), n, closed)| {
        let mut s = open.repeat(n);
        s.push_str("deep");
        if closed {
            s.push_str(&close.repeat(n));
        }
        s
    })
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (tag_name(), prop::collection::vec(attr(), 0..3), any::<bool>()).prop_map(|(t, a, slash)| {
            format!("<{t}{}{}>", a.concat(), if slash { " /" } else { "" })
        }),
        4 => tag_name().prop_map(|t| format!("</{t}>")),
        8 => text_piece(),
        1 => hiding(),
        1 => prop::sample::select(vec![
            "<!-- comment <p> -->", "<!--", "-->", "<!---->", "<!-->", "<![if !supportLists]>",
            "<![endif]>", "<!DOCTYPE html>", "<?xml version=\"1.0\"?>", "<![CDATA[ cdata ]]>",
            "<", ">", "</", "<>", "</>", "<<p>>", "<p/>", "< p>", "<p", "<a href='", "<1>",
            "<scr<script>ipt>", "</p id=x>", "<br/>", "</br>", "<p<p>",
        ]).prop_map(str::to_string),
        1 => depth_bomb(),
    ]
}

/// Token soup: tags (closed, unclosed, misnested), attributes, text, hiding markup, deep
/// nesting.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..120).prop_map(|v| v.concat())
}

/// Random bytes, read as the sync reads a body (UTF-8, invalid sequences replaced), with some
/// markup bytes made frequent.
fn bytes_html() -> impl Strategy<Value = String> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        1 => prop::sample::select(b"<>/=\"'&#;! \n".to_vec()),
    ];
    prop::collection::vec(byte, 0..3000).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn options() -> impl Strategy<Value = NormalizeOptions> {
    let selectors = prop::collection::vec(
        prop::sample::select(vec![
            ".agent-only",
            "[data-internal]",
            "div[",
            "p > b",
            ":not(p)",
            "li:nth-child(2n+1)",
            "*",
            "",
            "h2 ~ p",
        ])
        .prop_map(str::to_string),
        0..3,
    );
    (
        prop_oneof![3 => Just(1500usize), 1 => 0usize..40, 1 => 40usize..4000],
        selectors,
    )
        .prop_map(|(max, drop_selectors)| NormalizeOptions {
            max_passage_chars: max,
            drop_selectors,
        })
}

/// What html5 itself (the same parser, without the nesting cap) shows of a body: for each
/// marker, whether any occurrence is in visible text, and all visible text. "Hidden" is decided
/// as the normalizer decides it (dropped elements, `hidden`, hiding styles, table-of-contents
/// classes, an `.agent-only` drop selector); a marker whose every occurrence is hidden there must
/// not reach the output, and no capping or flattening may reveal it.
struct Reference {
    visible_marks: BTreeSet<&'static str>,
    visible_text: String,
}

const DROPPED: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
    "video", "audio", "head", "title", "meta", "link", "base", "select", "datalist", "xml", "nav",
    "noembed", "noframes",
];

fn style_hides(style: &str) -> bool {
    style.split(';').any(|d| {
        let Some((p, v)) = d.split_once(':') else {
            return false;
        };
        let (p, v) = (p.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        let v = v.strip_suffix("!important").unwrap_or(&v).trim();
        (p == "display" && v == "none")
            || (p == "visibility" && (v == "hidden" || v == "collapse"))
            || (p == "mso-hide" && v == "all")
    })
}

fn element_hides(e: &scraper::node::Element, agent_only: bool) -> bool {
    let toc = [
        "toc",
        "table-of-contents",
        "article-toc",
        "toc-container",
        "zd-toc",
    ];
    DROPPED.contains(&e.name())
        || e.attr("hidden").is_some()
        || e.attr("style").is_some_and(style_hides)
        || e.attr("class").is_some_and(|c| {
            c.split_ascii_whitespace().any(|k| {
                toc.iter().any(|t| k.eq_ignore_ascii_case(t)) || (agent_only && k == "agent-only")
            })
        })
}

fn reference(html: &str, opts: &NormalizeOptions) -> Reference {
    let agent_only = opts.drop_selectors.iter().any(|s| s == ".agent-only");
    let doc = Html::parse_fragment(html);
    // The fragment's root: an `<html hidden>` in a body sets its attributes, but the walk
    // (like a reader of the article) only looks at what is under it.
    let root = doc.root_element().id();
    let mut r = Reference {
        visible_marks: BTreeSet::new(),
        visible_text: String::new(),
    };
    for node in doc.tree.nodes() {
        let scraper::Node::Text(t) = node.value() else {
            continue;
        };
        let hidden = node
            .ancestors()
            .filter_map(ElementRef::wrap)
            .filter(|e| e.id() != root)
            .any(|e| element_hides(e.value(), agent_only));
        if hidden {
            continue;
        }
        for mark in [SCRIPT_MARK, STYLE_MARK, HIDDEN_MARK, AGENT_MARK] {
            if t.contains(mark) {
                r.visible_marks.insert(mark);
            }
        }
        r.visible_text.push_str(t);
    }
    // What the normalizer drops as invisible could join `<` and `script` in its output.
    r.visible_text.retain(|c| {
        !(c.is_control()
            || matches!(
                c,
                '\u{AD}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
            ))
    });
    r
}

fn all_text(n: &Normalized) -> String {
    let mut s = String::new();
    for p in &n.passages {
        s.push_str(&p.text);
        s.push('\n');
        s.push_str(&p.heading_path.join("\n"));
        s.push('\n');
    }
    for l in &n.links {
        s.push_str(&l.text);
        s.push('\n');
    }
    s
}

/// The invariants every output satisfies, whatever the input.
fn check_output(html: &str, opts: &NormalizeOptions, n: &Normalized) -> TestCaseResult {
    let max = opts.max_passage_chars.max(1);
    for (i, p) in n.passages.iter().enumerate() {
        prop_assert_eq!(p.ordinal as usize, i, "ordinals are positions");
        prop_assert!(!p.text.trim().is_empty(), "empty passage {:?}", p);
        prop_assert!(
            p.text.chars().count() <= max,
            "passage of {} chars over the bound {}",
            p.text.chars().count(),
            max
        );
        prop_assert_eq!(p.hash.len(), 64);
        prop_assert!(p.heading_path.iter().all(|h| !h.trim().is_empty()));
    }
    prop_assert_eq!(n.content_hash.len(), 64);
    let text = all_text(n);
    let r = reference(html, opts);
    if !r.visible_text.to_ascii_lowercase().contains("<script") {
        prop_assert!(
            !text.to_ascii_lowercase().contains("<script"),
            "raw <script in the output: {:?}",
            text
        );
    }
    for mark in [SCRIPT_MARK, STYLE_MARK, HIDDEN_MARK, AGENT_MARK] {
        if !r.visible_marks.contains(mark) {
            prop_assert!(!text.contains(mark), "{} leaked: {:?}", mark, text);
        }
    }
    // Deterministic: the same input gives the same output, hashes included.
    let again = normalize("Title", Some(html), opts);
    prop_assert_eq!(&again, n, "not deterministic");
    Ok(())
}

fn normalize_checked(html: &str, opts: &NormalizeOptions) -> Result<Normalized, TestCaseError> {
    let n = normalize("Title", Some(html), opts);
    check_output(html, opts, &n)?;
    Ok(n)
}

#[test]
fn fuzz_normalize_tag_soup() {
    fuzz("normalize_tag_soup", (soup(), options()), |(html, opts)| {
        normalize_checked(&html, &opts).map(drop)
    });
}

#[test]
fn fuzz_normalize_random_bytes() {
    fuzz(
        "normalize_random_bytes",
        (bytes_html(), options()),
        |(html, opts)| normalize_checked(&html, &opts).map(drop),
    );
}

// ---------------------------------------------------------------------------------------------
// Visible text survives

/// A document tree whose hiding parts are self-contained leaves, so everything else in it is
/// visible: a `<p>WORD</p>` inserted at any child position of any element must be in the output.
#[derive(Debug, Clone)]
enum Node {
    Text(String),
    /// Self-contained markup that cannot swallow what follows it.
    Leaf(String),
    El {
        tag: &'static str,
        attrs: String,
        closed: bool,
        children: Vec<Node>,
    },
    /// `open` repeated `n` times around the children, closed or not.
    Deep {
        open: &'static str,
        close: &'static str,
        n: usize,
        closed: bool,
        children: Vec<Node>,
    },
}

impl Node {
    fn render(&self, out: &mut String) {
        match self {
            Node::Text(t) | Node::Leaf(t) => out.push_str(t),
            Node::El {
                tag,
                attrs,
                closed,
                children,
            } => {
                out.push_str(&format!("<{tag}{attrs}>"));
                children.iter().for_each(|c| c.render(out));
                if *closed {
                    out.push_str(&format!("</{tag}>"));
                }
            }
            Node::Deep {
                open,
                close,
                n,
                closed,
                children,
            } => {
                out.push_str(&open.repeat(*n));
                children.iter().for_each(|c| c.render(out));
                if *closed {
                    out.push_str(&close.repeat(*n));
                }
            }
        }
    }

    fn children_mut(&mut self) -> Option<&mut Vec<Node>> {
        match self {
            Node::El { children, .. } | Node::Deep { children, .. } => Some(children),
            _ => None,
        }
    }

    fn children(&self) -> &[Node] {
        match self {
            Node::El { children, .. } | Node::Deep { children, .. } => children,
            _ => &[],
        }
    }
}

fn render(nodes: &[Node]) -> String {
    let mut s = String::new();
    nodes.iter().for_each(|n| n.render(&mut s));
    s
}

/// Insertion points of a child list and of every list below it.
fn points(nodes: &[Node]) -> usize {
    nodes.len() + 1 + nodes.iter().map(points_below).sum::<usize>()
}

fn points_below(n: &Node) -> usize {
    match n {
        Node::El { .. } | Node::Deep { .. } => points(n.children()),
        _ => 0,
    }
}

/// Inserts `node` at insertion point `k` (this list's positions first, then each child's
/// lists in order); gives back what is left of `k` and the node when it is not in here.
fn insert_at(nodes: &mut Vec<Node>, k: usize, node: Node) -> Result<(), (usize, Node)> {
    if k <= nodes.len() {
        nodes.insert(k, node);
        return Ok(());
    }
    let (mut k, mut node) = (k - nodes.len() - 1, node);
    for n in nodes.iter_mut() {
        if let Some(children) = n.children_mut() {
            match insert_at(children, k, node) {
                Ok(()) => return Ok(()),
                Err((rest, back)) => (k, node) = (rest, back),
            }
        }
    }
    Err((k, node))
}

fn insert(nodes: &mut Vec<Node>, at: Index, node: Node) {
    let k = at.index(points(nodes));
    assert!(
        insert_at(nodes, k, node).is_ok(),
        "insertion point in range"
    );
}

/// Elements that show what they hold, whatever the nesting (html5 may move them, as a browser
/// does, but never hides their text).
#[rustfmt::skip]
const VISIBLE_TAGS: &[&str] = &[
    "p", "div", "span", "b", "strong", "i", "em", "u", "code", "pre", "listing",
    "blockquote", "section", "article", "center", "font", "sup", "sub", "h1", "h2", "h3",
    "h4", "h5", "h6", "ul", "ol", "li", "table", "thead", "tbody", "tr", "td", "th",
    "caption", "dl", "dt", "dd", "details", "summary", "figure", "figcaption", "a", "form",
    "label", "button", "bdi", "bdo", "o:p", "foo-bar",
];

fn visible_tag() -> impl Strategy<Value = &'static str> {
    prop::sample::select(VISIBLE_TAGS.to_vec())
}

fn visible_attr() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        " id=\"h_01ABC\"",
        " id=\"\"",
        " name=\"n1\"",
        " class=\"a b\"",
        " style=\"font-weight:700\"",
        " style=\"font-weight:normal\"",
        " style=\"display:ééééé\"",
        " href=\"/hc/en-us/articles/12-x\"",
        " href=\"javascript:alert(1)\"",
        " href=\"https://x.zendesk.com/hc/articles/99999999999999999999999\"",
        " href=\"//h/hc/pt-BR/articles/7#frag\"",
        " colspan=\"2\"",
        " colspan=\"99999999\"",
        " start=\"-9223372036854775808\"",
        " value=\"9223372036854775807\"",
        " dir=\"rtl\"",
        " title=\"<script>XSCRIPTX</script>\"",
    ])
}

fn visible_leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        8 => text_piece().prop_map(Node::Text),
        2 => closed_hiding().prop_map(Node::Leaf),
        1 => prop::sample::select(vec![
            "<br>", "<br/>", "<hr>", "<img alt=\"an image\">", "<img>", "<wbr>",
            "<a href=\"#h_01ABC\">toc entry</a>", "<!-- comment <p> -->", "<![if !supportLists]>",
            "<![endif]>", "</p>", "</span>",
        ])
        .prop_map(|s| Node::Leaf(s.to_string())),
    ]
}

fn visible_tree() -> impl Strategy<Value = Vec<Node>> {
    let node = visible_leaf().prop_recursive(6, 120, 8, |inner| {
        let children = prop::collection::vec(inner, 0..8);
        prop_oneof![
            6 => (visible_tag(), visible_attr(), prop::bool::weighted(0.8), children.clone())
                .prop_map(|(tag, attrs, closed, children)| Node::El {
                    tag,
                    attrs: attrs.to_string(),
                    closed,
                    children,
                }),
            1 => (
                prop::sample::select(vec![
                    ("<div>", "</div>"),
                    ("<span>", "</span>"),
                    ("<b>", "</b>"),
                    ("<p>", "</p>"),
                    ("<li>", "</li>"),
                    ("<ul><li>", "</li></ul>"),
                    ("<table><tr><td>", "</td></tr></table>"),
                    ("<blockquote>", "</blockquote>"),
                ]),
                prop_oneof![3 => 0usize..300, 1 => 300usize..1200],
                any::<bool>(),
                children,
            )
                .prop_map(|((open, close), n, closed, children)| Node::Deep {
                    open,
                    close,
                    n,
                    closed,
                    children,
                }),
        ]
    });
    prop::collection::vec(node, 0..10)
}

#[test]
fn fuzz_normalize_visible_text_survives() {
    let strategy = (visible_tree(), any::<Index>(), 64usize..3000);
    fuzz(
        "normalize_visible_text_survives",
        strategy,
        |(mut tree, at, max)| {
            insert(&mut tree, at, Node::Leaf(format!("<p> {WORD} </p>")));
            let html = render(&tree);
            let opts = NormalizeOptions {
                max_passage_chars: max,
                ..NormalizeOptions::default()
            };
            let n = normalize_checked(&html, &opts)?;
            if n.flattened {
                // Past the 256-level cap the normalizer fails closed (it drops what it cannot
                // place for sure); the other properties still hold there.
                return Ok(());
            }
            // In a passage's text, or in its heading (a heading longer than half the bound is
            // cut in the text, whole in the heading path).
            let text: String = n
                .passages
                .iter()
                .flat_map(|p| p.heading_path.iter().chain([&p.text]))
                .map(String::as_str)
                .collect();
            prop_assert!(
                text.contains(WORD),
                "{} lost from {:?}: {:?}",
                WORD,
                html,
                n.passages
            );
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The query contract

/// Query text: arbitrary strings, hostile pieces, long and many-worded ones near the bounds.
fn query_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        3 => prop::collection::vec(prop_oneof![text_piece(), vocabulary()], 0..30)
            .prop_map(|v| v.join(" ")),
        1 => (3990usize..4010, prop::sample::select(vec!["a", "ab ", "中", "😀 ", "\u{301}"]))
            .prop_map(|(n, unit)| unit.repeat(n).chars().take(n).collect()),
        1 => (250usize..262).prop_map(|n| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")),
        1 => prop::sample::select(vec!["", " ", "\u{0}", "\u{3000}", "\u{FEFF}", "\n\t", "\"", "'",
            "\"unclosed phrase", "a\"b\"c", "\\", "*", "?", "+-", "AND OR NOT", "(", ")", "[", "]",
            "{", "}", "title:x", "^2", "~", "field:\"x\"", "_", "__", "a_b"]).prop_map(str::to_string),
    ]
}

/// Locale strings: valid codes in every spelling, codes of no language, garbage.
fn locale() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        4 => prop::sample::select(vec![
            "en-us", "EN-US", "en_US", " de ", "ja", "fr", "pt-br", "zh-cn", "ru", "ar", "tr",
            "el", "ta", "he", "xx", "xx-yy", "zh-Hant-TW", "en-x-1", "", " ", "-", "-en", "1a",
            "e", "en-", "a".repeat(16).leak(), "a".repeat(17).leak(), "İ", "ｅｎ", "en us",
            "en\u{0}", "de\u{200B}", "🇩🇪",
        ]).prop_map(str::to_string),
        1 => any::<String>(),
        1 => "[a-zA-Z_-]{0,20}",
    ])
}

fn access() -> impl Strategy<Value = Access> {
    (
        prop_oneof![Just(Audience::Customer), Just(Audience::Agent)],
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![4 => prop::sample::select(vec![7u64, 9, 11]), 1 => any::<u64>()],
            0..4,
        ),
    )
        .prop_map(|(audience, signed_in, segments)| Access {
            audience,
            signed_in,
            segments,
        })
}

fn query_input() -> impl Strategy<Value = QueryInput> {
    (
        query_text(),
        prop::option::of(prop_oneof![Just(Audience::Customer), Just(Audience::Agent)]),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::collection::vec(any::<u64>(), 0..5)),
        locale(),
        prop::option::of(prop_oneof![3 => 0usize..60, 1 => any::<usize>()]),
        prop::option::of(prop_oneof![3 => 150usize..60_000, 1 => any::<usize>()]),
    )
        .prop_map(
            |(query, audience, signed_in, segments, locale, limit, max_chars)| QueryInput {
                query,
                audience,
                signed_in,
                segments,
                locale,
                limit,
                max_chars,
            },
        )
}

/// The contract's invariants on one validation.
fn check_validation(input: &QueryInput, r: &Result<Query, InvalidQuery>) -> TestCaseResult {
    match r {
        Ok(q) => {
            prop_assert!(!q.text.is_empty() && q.text == q.text.trim());
            prop_assert!(q.text.chars().count() <= query::MAX_QUERY_CHARS);
            prop_assert!((1..=query::MAX_LIMIT).contains(&q.limit));
            prop_assert!((query::MIN_MAX_CHARS..=query::MAX_MAX_CHARS).contains(&q.max_chars));
            if let Some(l) = &q.locale {
                prop_assert!((2..=16).contains(&l.len()));
                prop_assert!(
                    l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                );
                prop_assert_eq!(
                    l,
                    &query::normalize_locale(input.locale.as_deref().unwrap_or(""))
                );
            }
        }
        Err(e) => {
            prop_assert!(["query", "limit", "max_chars", "locale"].contains(&e.field));
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.to_string().starts_with(e.field));
            // The message quotes at most a bounded part of what was sent.
            prop_assert!(e.message.chars().count() < 300, "{}", e.message);
        }
    }
    Ok(())
}

#[test]
fn fuzz_query_contract() {
    fuzz("query_contract", query_input(), |input| {
        let access = input.requested_access();
        let r = input.clone().validate(access);
        check_validation(&input, &r)?;
        // Validation is a function of the input.
        prop_assert_eq!(r, input.clone().validate(input.requested_access()));
        // The wire form decodes to the same input, and arbitrary JSON never panics.
        let json = serde_json::to_string(&input).expect("serializes");
        let back: QueryInput = serde_json::from_str(&json).expect("round trip");
        prop_assert_eq!(back, input);
        Ok(())
    });
}

/// Arbitrary JSON objects in the shape of a query, with wrong types, unknown fields and
/// segments as strings.
fn query_json() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "query",
        "q",
        "audience",
        "signed_in",
        "segments",
        "locale",
        "limit",
        "max_chars",
        "limt",
        "",
    ]);
    let value = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
        prop::sample::select(vec![
            "\"customer\"",
            "\"agent\"",
            "\"Agent\"",
            "\"3, 9\"",
            "\"3,a\"",
            "\",,,\"",
            "\"18446744073709551616\"",
            "[3,9]",
            "[-1]",
            "[1.5]",
            "[]",
            "{}",
            "[\"3\"]",
        ])
        .prop_map(str::to_string),
    ];
    prop::collection::vec((key, value), 0..8).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

#[test]
fn fuzz_query_json() {
    fuzz("query_json", query_json(), |json| {
        if let Ok(input) = serde_json::from_str::<QueryInput>(&json) {
            let r = input.clone().validate(input.requested_access());
            check_validation(&input, &r)?;
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Language analysis and search planning

#[test]
fn fuzz_query_analysis() {
    let locales = prop::collection::btree_set(
        prop::sample::select(vec![
            "en-us", "de", "fr", "ja", "zh-cn", "ko", "th", "ar", "he", "ru", "tr", "el", "ta",
            "pt-br", "es", "sv", "xx", "en-gb", "nb", "fi",
        ]),
        0..10,
    );
    fuzz(
        "query_analysis",
        (query_text(), locales, prop::option::of(locale())),
        |(q, locales, given)| {
            for &family in ALL_FAMILIES {
                let terms = question_terms(family, &q);
                prop_assert_eq!(
                    &terms,
                    &question_terms(family, &q),
                    "{} not deterministic",
                    family
                );
                let distinct: BTreeSet<&String> = terms.iter().collect();
                prop_assert_eq!(distinct.len(), terms.len(), "{} terms repeat", family);
                for t in &terms {
                    prop_assert!(!t.is_empty() && !t.contains('_'), "{} term {:?}", family, t);
                }
                for p in question_pairs(family, &q) {
                    prop_assert_eq!(p.matches('_').count(), 1, "{} pair {:?}", family, p);
                }
            }
            let locales: Vec<String> = locales.into_iter().map(str::to_string).collect();
            let given = given.flatten().map(|l| query::normalize_locale(&l));
            let p = plan(&q, given.as_deref(), &locales);
            match &given {
                Some(l) => {
                    prop_assert_eq!(p.branches.len(), 1);
                    prop_assert_eq!(&p.branches[0].locales, &vec![l.clone()]);
                    prop_assert!(!p.branches[0].fallback);
                }
                None => {
                    // Every locale is searched exactly once, in its own language's family.
                    let mut searched: Vec<&String> =
                        p.branches.iter().flat_map(|b| &b.locales).collect();
                    searched.sort();
                    prop_assert_eq!(searched, locales.iter().collect::<Vec<_>>());
                    for b in &p.branches {
                        for l in &b.locales {
                            let own = helpdex_lang::family_for_locale(l);
                            prop_assert!(b.family == own, "{} searched as {}", l, b.family);
                        }
                    }
                    prop_assert!(p.preferred.iter().all(|l| locales.contains(l)));
                    prop_assert_eq!(
                        p.preferred.is_empty(),
                        p.detected.is_none() || p.branches.iter().all(|b| b.fallback)
                    );
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Search over a small index

const SOURCE: &str = "s";
/// Custom end-user segments of the test help center; 11 is a staff segment.
const SEGMENTS: [(u64, &str, bool); 4] = [
    (7, "signed_in_users", false),
    (9, "signed_in_users", false),
    (5, "signed_in_users", true),
    (11, "staff", false),
];

/// Words of the indexed articles, also drawn by the query generator so queries match.
fn vocabulary() -> impl Strategy<Value = String> {
    prop::sample::select(VOCABULARY.to_vec()).prop_map(str::to_string)
}

#[rustfmt::skip]
const VOCABULARY: &[&str] = &[
    "refund", "refunds", "password", "reset", "invoice", "export", "login", "locked",
    "account", "Rechnung", "Rechnungen", "exportieren", "Passwort", "facture", "exporter",
    "mot de passe", "ログイン", "パスワード", "請求書", "退款", "密码", "비밀번호", "รหัสผ่าน", "فاتورة",
    "סיסמה", "пароль", "счёт", "şifre", "κωδικός", "கடவுச்சொல்", "secret", "internal",
    "how", "the", "and", "wie", "die", "le", "de", "の", "👍", "e\u{301}", "İ",
];

/// One indexed translation as the test knows it: who may read it, independently of the index.
#[derive(Debug, Clone)]
struct Truth {
    visibility: Visibility,
    access: Vec<String>,
    draft: bool,
}

struct Corpus {
    _dir: tempfile::TempDir,
    engine: Engine,
    truth: HashMap<(u64, String), Truth>,
}

const LOCALES: &[&str] = &[
    "en-us", "de", "fr", "ja", "zh-cn", "ko", "ar", "he", "ru", "tr", "el", "ta", "th", "xx",
];

/// A help center of every visibility in every locale, bodies drawn deterministically from the
/// vocabulary, plus drafts (never searchable) and hostile bodies.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path(), NormalizeOptions::default()).expect("engine");
        engine
            .start_run(SOURCE, "https://help.example.com")
            .expect("start");
        let known: HashMap<u64, UserSegment> = SEGMENTS
            .iter()
            .map(|&(id, user_type, built_in)| {
                (
                    id,
                    UserSegment {
                        id,
                        name: format!("segment {id}"),
                        user_type: user_type.into(),
                        built_in,
                    },
                )
            })
            .collect();
        let segment_sets: [&[u64]; 7] = [&[], &[5], &[7], &[9], &[7, 9], &[11], &[404]];
        let mut batch = Batch::default();
        let mut truth = HashMap::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for id in 1..=60u64 {
            let segs = segment_sets[(id as usize) % segment_sets.len()];
            let d = decide(segs, Some(&known), false);
            batch.articles.push(ArticleRow {
                article_id: id,
                section_id: None,
                source_locale: "en-us".into(),
                segment_ids: segs.to_vec(),
                labels: vec![],
                visibility: d.visibility,
                access: d.access.clone(),
                visibility_rule: d.rule.clone(),
                updated_at: Some("2024-01-01T00:00:00Z".into()),
            });
            for (li, locale) in LOCALES.iter().enumerate() {
                if (id as usize + li).is_multiple_of(3) {
                    continue;
                }
                let mut words = |n: usize| -> String {
                    (0..n)
                        .map(|_| VOCABULARY[(next() as usize) % VOCABULARY.len()])
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let title = words(3);
                let body = if id % 13 == 0 {
                    format!(
                        "<h2 id=\"x&quot;y\">{}</h2>{}<p>{}</p><script>{SCRIPT_MARK}</script>",
                        words(2),
                        "<div>".repeat(300),
                        words(40)
                    )
                } else {
                    format!(
                        "<p>{}</p><h2 id=\"h{id}\">{}</h2><p>{}</p><ul><li>{}</li></ul>",
                        words(12),
                        words(2),
                        words(30),
                        words(5)
                    )
                };
                let draft = id % 11 == 0 && li % 2 == 0;
                let normalized = normalize(&title, Some(&body), &NormalizeOptions::default());
                batch.translations.push(TranslationRow {
                    article_id: id,
                    locale: locale.to_string(),
                    title,
                    html_url: format!("https://help.example.com/hc/{locale}/articles/{id}"),
                    draft,
                    outdated: false,
                    updated_at: Some("2024-01-01T00:00:00Z".into()),
                    body: Some(body),
                    index_hash: normalized.content_hash.clone(),
                    normalized,
                    normalizer: NormalizeOptions::default().fingerprint(),
                });
                batch.changed.push(doc_key(SOURCE, id, locale));
                truth.insert(
                    (id, locale.to_string()),
                    Truth {
                        visibility: d.visibility,
                        access: d.access.clone(),
                        draft,
                    },
                );
            }
        }
        engine.apply(SOURCE, &batch).expect("apply");
        engine
            .finish_run(SOURCE, None, &serde_json::json!({}), None)
            .expect("finish");
        Corpus {
            _dir: dir,
            engine,
            truth,
        }
    })
}

/// Who may read a passage, by the test's own account of the corpus.
fn readable(c: &Corpus, access: &Access, article_id: u64, locale: &str) -> bool {
    c.truth
        .get(&(article_id, locale.to_string()))
        .is_some_and(|t| !t.draft && access.allows(&t.access))
}

fn search_input() -> impl Strategy<Value = (String, Option<String>, Access, usize)> {
    (
        prop_oneof![
            3 => prop::collection::vec(
                prop_oneof![4 => vocabulary(), 1 => text_piece()],
                1..8,
            )
            .prop_map(|v| v.join(" ")),
            1 => query_text(),
        ],
        prop_oneof![
            2 => Just(None),
            2 => prop::sample::select(LOCALES.to_vec()).prop_map(|l| Some(l.to_string())),
            1 => locale(),
        ],
        access(),
        prop_oneof![3 => 1usize..=50, 1 => any::<usize>()],
    )
}

#[test]
fn fuzz_search_respects_access() {
    let c = corpus();
    fuzz(
        "search_respects_access",
        search_input(),
        |(text, locale, access, limit)| {
            let input = QueryInput {
                limit: Some(limit),
                locale,
                ..QueryInput::new(text)
            };
            let Ok(q) = input.validate(access.clone()) else {
                return Ok(());
            };
            let resp = match search(c.engine.reader(), &q) {
                Ok(r) => r,
                Err(QueryError::UnknownLocale { locale, known }) => {
                    // Only locales holding something this caller may read are named.
                    for k in &known {
                        prop_assert!(
                            c.truth
                                .iter()
                                .any(|((id, l), _)| l == k && readable(c, &access, *id, l)),
                            "{} named to a caller who can read nothing in it",
                            k
                        );
                    }
                    prop_assert!(!known.contains(&locale));
                    return Ok(());
                }
                Err(e) => return Err(TestCaseError::fail(format!("search failed: {e}"))),
            };
            prop_assert!(resp.hits.len() <= q.limit);
            prop_assert!(resp.relevance.is_finite());
            for h in &resp.hits {
                prop_assert!(
                    readable(c, &access, h.article_id, &h.locale),
                    "hit {} ({}, {}) not readable by {:?}",
                    h.passage_id,
                    h.article_id,
                    h.locale,
                    access
                );
                let t = &c.truth[&(h.article_id, h.locale.clone())];
                prop_assert_eq!(h.visibility, t.visibility);
                if let Some(l) = &q.locale {
                    prop_assert_eq!(&h.locale, l);
                }
                prop_assert!(h.score.is_finite());
                prop_assert!(!h.text.contains(SCRIPT_MARK));
                for [s, e] in &h.highlights {
                    prop_assert!(s <= e && *e <= h.snippet_plain.len());
                    prop_assert!(
                        h.snippet_plain.is_char_boundary(*s)
                            && h.snippet_plain.is_char_boundary(*e)
                    );
                }
                for a in &h.also {
                    let mut parts = a.passage_id.split(':');
                    let (_, id, l) = (parts.next(), parts.next(), parts.next());
                    let id: u64 = id.and_then(|i| i.parse().ok()).unwrap_or(0);
                    prop_assert!(
                        readable(c, &access, id, l.unwrap_or("")),
                        "also {} not readable",
                        a.passage_id
                    );
                }
            }
            // The context is assembled from these hits only.
            let ctx = context(c.engine.reader(), &q)
                .map_err(|e| TestCaseError::fail(format!("context failed: {e}")))?;
            prop_assert!(ctx.context.chars().count() <= q.max_chars);
            for cit in &ctx.citations {
                prop_assert!(readable(c, &access, cit.article_id, &cit.locale));
            }
            Ok(())
        },
    );
}

/// The corpus itself is what the test thinks: every readable translation is findable by an
/// agent, and the access rule matches the visibility decided for each.
#[test]
fn fuzz_corpus_sanity() {
    let c = corpus();
    let by_vis: BTreeMap<Visibility, usize> = c.truth.values().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.visibility).or_default() += 1;
        m
    });
    assert_eq!(
        by_vis.len(),
        4,
        "every visibility is in the corpus: {by_vis:?}"
    );
    let q = QueryInput::new("password refund Rechnung ログイン")
        .validate(Access::agent())
        .unwrap();
    let r = search(c.engine.reader(), &q).unwrap();
    assert!(!r.hits.is_empty());
    let q = QueryInput::new("password refund Rechnung ログイン")
        .validate(Access::anonymous())
        .unwrap();
    let r = search(c.engine.reader(), &q).unwrap();
    assert!(r.hits.iter().all(|h| h.visibility == Visibility::Public
        && readable(c, &Access::anonymous(), h.article_id, &h.locale)));
}

// ---------------------------------------------------------------------------------------------
// Regressions: what the targets above found (issue 12), shrunk.

fn texts(html: &str) -> Vec<String> {
    normalize("Title", Some(html), &NormalizeOptions::default())
        .passages
        .into_iter()
        .map(|p| p.text)
        .collect()
}

/// `normalize_visible_text_survives` and `search_respects_access`: a script nested past the
/// 256-level cap lost its tag and its code was indexed as text.
#[test]
fn regression_script_past_the_cap_stays_hidden() {
    let html = format!(
        "<p> {WORD} </p><p>{}<p><p><script><!--<script>{SCRIPT_MARK}</script>-->{SCRIPT_MARK}</script>",
        "<div>".repeat(254)
    );
    let t = texts(&html).join("\n");
    assert!(t.contains(WORD) && !t.contains(SCRIPT_MARK), "{t}");
    let html = format!(
        "{}<script>{SCRIPT_MARK}</script><div hidden>{HIDDEN_MARK}</div><p>after</p>",
        "<div>".repeat(300)
    );
    assert_eq!(texts(&html), ["after"]);
}

/// Found while shrinking the above: the cap counted every start tag as a level, so 256
/// paragraphs or list items without end tags (valid HTML) flattened everything after them —
/// headings became text, and a hidden element whose end tag fell past the cap swallowed the
/// visible text that followed it.
#[test]
fn regression_optional_end_tags_are_not_nesting() {
    let items: String = (0..300).map(|i| format!("<li>item {i}")).collect();
    let n = normalize(
        "Title",
        Some(&format!("<ul>{items}</ul><h2>Heading</h2><p>after</p>")),
        &NormalizeOptions::default(),
    );
    assert!(!n.flattened);
    assert!(n.passages.iter().any(|p| p.heading_path == ["Heading"]));
    let paras: String = (0..300).map(|i| format!("<p>para {i}")).collect();
    let t = texts(&format!("<div hidden>{paras}</div><p>visible after</p>"));
    assert_eq!(t, ["visible after"]);
}

/// Found while shrinking the above: end tags that close nothing (and self-closing `<div/>`)
/// lowered the cap's count while html5 nested on; 100k `<div></i>` parsed for 12 s (release).
#[test]
fn regression_ignored_end_tags_cannot_hide_nesting() {
    for unit in ["<div></i>", "<div/>", "<!--><div>-->"] {
        let html = format!("{}deep", unit.repeat(20_000));
        let n = normalize("Title", Some(&html), &NormalizeOptions::default());
        assert!(n.flattened, "{unit}");
        assert!(n.passages.last().is_some_and(|p| p.text.ends_with("deep")));
    }
}

/// `normalize_tag_soup`: the title standing in for an empty body ignored the passage bound.
#[test]
fn regression_title_passage_keeps_the_bound() {
    let opts = NormalizeOptions {
        max_passage_chars: 0,
        ..NormalizeOptions::default()
    };
    let n = normalize("Title", Some("<p>"), &opts);
    assert!(n.passages.iter().all(|p| p.text.chars().count() == 1));
}

/// With drop selectors configured, nothing past the cap is kept (they cannot be checked on
/// markup that is not parsed).
#[test]
fn regression_drop_selectors_past_the_cap_fail_closed() {
    let opts = NormalizeOptions {
        drop_selectors: vec![".agent-only".into()],
        ..NormalizeOptions::default()
    };
    let html = format!(
        "<p>shallow</p>{}<div class=\"agent-only\">{AGENT_MARK}</div>",
        "<div>".repeat(300)
    );
    let n = normalize("Title", Some(&html), &opts);
    assert!(n.flattened);
    let t: Vec<_> = n.passages.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(t, ["shallow"]);
}

/// `normalize_tag_soup` at 20k cases: past the cap, `visibility:collapse` was not seen as
/// hiding (the cap's quick check for hiding attributes missed it), so a textarea inside it
/// showed its text.
#[test]
fn regression_collapsed_element_past_the_cap_stays_hidden() {
    let html = format!(
        "{}deep<p style=\"visibility:collapse\"><textarea><script>{SCRIPT_MARK}</script>",
        "<div>".repeat(256)
    );
    assert_eq!(texts(&html), ["deep"]);
}

/// `normalize_tag_soup` at 200k cases: a `<b class="toc">` past the cap, closed by its
/// parent's end tag, is re-opened by html5 around what follows (which is then hidden); the
/// cap let that text through.
#[test]
fn regression_hiding_formatting_element_past_the_cap() {
    let html = format!(
        "{}deep<article><b class=\"toc\"></article><div class=\"agent-only\">{AGENT_MARK}</div>",
        "<div>".repeat(257)
    );
    assert_eq!(texts(&html), ["deep"]);
}

/// `normalize_visible_text_survives` at 200k cases: flattened past the cap, paragraphs
/// became part of an unclosed heading longer than half the passage bound; the heading is
/// cut in the passage text and whole in the heading path, where the word is.
#[test]
fn regression_long_flattened_heading_keeps_its_text_in_the_path() {
    let html = format!(
        "<h1>{}{}<p>{}<p> {WORD} </p>refund",
        "refund".repeat(7),
        "<span>".repeat(260),
        "refund".repeat(6)
    );
    let opts = NormalizeOptions {
        max_passage_chars: 64,
        ..NormalizeOptions::default()
    };
    let n = normalize("Title", Some(&html), &opts);
    assert!(
        n.passages
            .iter()
            .any(|p| p.heading_path.iter().any(|h| h.contains(WORD)))
    );
}

/// `normalize_tag_soup` at 200k cases: past the cap inside `<math>`, a hiding `script` (a
/// MathML element there, its body markup) was skipped as raw text up to a `</script>` inside
/// an attribute; html5 had broken out of the math at `</p>` and read the rest as a `<style>`.
#[test]
fn regression_hiding_element_in_foreign_content_past_the_cap() {
    let html = format!(
        "{}deep<math><script></p id=x><style><p><p title=\"<script>{SCRIPT_MARK}</script>\"><div class=\"agent-only\">{AGENT_MARK}</div>",
        "<div>".repeat(256)
    );
    assert_eq!(texts(&html), ["deep"]);
}

/// `normalize_tag_soup` at 200k cases: a hidden `<section class="toc">` foster-parented out of
/// a `<colgroup>` was closed early by `</colgroup>` (which html5 ignores: the column group had
/// closed at the section), and the `xmp` after it showed its text.
#[test]
fn regression_column_group_nests_nothing() {
    let html = format!(
        "{}deep<table><colgroup><section class=\"toc\"></colgroup><xmp><script>",
        "<ul><li>".repeat(127)
    );
    let t = texts(&html).join("\n");
    assert!(t.ends_with("- deep"), "{t}");
}

/// Found while fixing the above: html5 leaves `<svg>` at a `<span>` (a breakout), so
/// `<svg><span></svg>` nests a span each time while the cap counted none (100k: 19 s).
#[test]
fn regression_foreign_content_breakouts_count() {
    let html = format!("{}x", "<svg><span></svg>".repeat(20_000));
    assert!(normalize("Title", Some(&html), &NormalizeOptions::default()).flattened);
}

/// `normalize_tag_soup` at 200k cases: a `<td class="toc">` whose table was more than 64
/// open elements down was taken for a cell html5 ignores (outside any table); html5 closed
/// the open cell and opened the hidden one, which held an `xmp`.
#[test]
fn regression_cell_far_below_its_table_hides() {
    let html = format!(
        "<table><tr><td>deep{}deep<td class=\"toc\"><xmp><script>{SCRIPT_MARK}</script>",
        "<div>".repeat(400)
    );
    assert_eq!(texts(&html), ["deep\ndeep"]);
}

/// `normalize_tag_soup` at 200k cases: the model did not find a select opened more than 64
/// elements down, so it took the `<select>` that closes it (html5ever's customizable select)
/// for a hidden one opening, and the next `<select>` for its end; html5 opened a hidden
/// select there. A hidden element closed by anything but its own end tag now hides the rest.
#[test]
fn regression_hidden_element_closed_implicitly_past_the_cap() {
    let html = format!(
        "<select>{}deep<select><select><option>{HIDDEN_MARK}</option></select>",
        "<blockquote>".repeat(255)
    );
    let t = texts(&html).join("\n");
    assert!(!t.contains(HIDDEN_MARK), "{t}");
}

/// `normalize_visible_text_survives` at 200k cases: a header cell over a column no body row
/// fills was in no passage (its text read only as the label of values that do not exist).
#[test]
fn regression_header_of_an_empty_column_is_kept() {
    let html =
        format!("<b><table><tr><td>Plan<td><p> {WORD} </p></td></tr><tr><td>Pro</td></tr></table>");
    let t = texts(&html).join("\n");
    assert!(t.contains(WORD), "{t}");
}

/// `normalize_tag_soup` at 200k cases: a `<plaintext>` past the cap lost its tag, so the
/// text after it was read as markup, and a `</h2>` in it closed the hidden heading around it.
#[test]
fn regression_plaintext_past_the_cap_stays() {
    let html = format!(
        "{}deep<h1 hidden><plaintext></H2><div class=\"agent-only\">{AGENT_MARK}</div>",
        "<div>".repeat(255)
    );
    assert_eq!(texts(&html), ["deep"]);
}

/// `normalize_tag_soup` at 200k cases: divs foster-parented out of a hidden table, then a
/// `<td>`: html5 clears the stack back to the table (more than the model's 64-element
/// search) and puts the cell in it; flattened, the cell's content stayed in the divs.
#[test]
fn regression_cell_clearing_back_to_a_hidden_table() {
    let html = format!(
        "<p><p><TaBlE class=\"toc\">{}deep<td><div class=\"agent-only\">{AGENT_MARK}</div>",
        "<div>".repeat(254)
    );
    let t = texts(&html).join("\n");
    assert!(!t.contains(AGENT_MARK), "{t}");
}

/// `normalize_tag_soup` at 200k cases: past the cap a `<math>` lost its tag, so an `<xmp/>`
/// in it (a MathML element there) became an HTML raw text element showing markup as text.
#[test]
fn regression_math_past_the_cap_goes_whole() {
    let html = format!(
        "{}deep<math><xmp /><thead title=\"<script>{SCRIPT_MARK}</script>\" />",
        "<div>".repeat(400)
    );
    assert_eq!(texts(&html), ["deep"]);
}

/// `normalize_tag_soup` at 200k cases: a `<b class="toc">` inside a hidden `details` past
/// the cap, closed with it, is re-opened by html5 around the text that follows.
#[test]
fn regression_hiding_formatting_element_inside_hidden_past_the_cap() {
    let html = format!(
        "{}deep<details class=\"toc\"><b class=\"toc\"></details><div class=\"agent-only\">{AGENT_MARK}</div>",
        "<ul><li>".repeat(128)
    );
    let t = texts(&html).join("\n");
    assert!(!t.contains(AGENT_MARK), "{t}");
}
