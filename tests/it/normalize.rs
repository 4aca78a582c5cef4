//! The normalizer: golden snapshots over every fixture body and the nasty cases in
//! `fixtures/html/`, one assertion test per rule, and property tests.
//!
//! Update snapshots with `INSTA_UPDATE=always cargo test --test it normalize`, then review them.

use std::path::{Path, PathBuf};

use helpdex_core::normalize::{
    ArticleLink, NORMALIZER_VERSION, NormalizeOptions, Normalized, Passage, content_hash,
    normalize, validate_selectors,
};
use proptest::prelude::*;
use serde::Serialize;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn opts() -> NormalizeOptions {
    NormalizeOptions::default()
}

fn norm(html: &str) -> Normalized {
    normalize("Title", Some(html), &opts())
}

fn texts(n: &Normalized) -> Vec<&str> {
    n.passages.iter().map(|s| s.text.as_str()).collect()
}

fn all_text(n: &Normalized) -> String {
    texts(n).join("\n")
}

/// What a snapshot shows: everything but the per-passage hashes (they are covered by
/// `content_hash`, which is shown).
#[derive(Serialize)]
struct View<'a> {
    passages: Vec<SegView<'a>>,
    links: &'a [ArticleLink],
    content_hash: &'a str,
}

#[derive(Serialize)]
struct SegView<'a> {
    ordinal: u32,
    heading_path: String,
    anchor: Option<&'a str>,
    text: &'a str,
}

fn view(n: &Normalized) -> View<'_> {
    View {
        passages: n
            .passages
            .iter()
            .map(|s| SegView {
                ordinal: s.ordinal,
                heading_path: s.heading_path.join(" › "),
                anchor: s.anchor.as_deref(),
                text: &s.text,
            })
            .collect(),
        links: &n.links,
        content_hash: &n.content_hash,
    }
}

/// Invariants every output must satisfy, whatever the input.
fn check_invariants(html: &str, n: &Normalized, max: usize) {
    for (i, s) in n.passages.iter().enumerate() {
        assert_eq!(s.ordinal as usize, i, "ordinals are positions");
        assert!(!s.text.trim().is_empty(), "no empty passage: {s:?}");
        assert!(
            s.text.chars().count() <= max.max(1),
            "passage bound {max}: {} chars",
            s.text.chars().count()
        );
        if let Some(a) = &s.anchor {
            assert!(
                html.contains(a.as_str()),
                "anchor {a:?} must exist in the page"
            );
        }
        assert!(
            s.heading_path.iter().all(|h| !h.is_empty()),
            "no empty heading in a path"
        );
    }
    assert_eq!(n.content_hash.len(), 64);
}

// ---------------------------------------------------------------------------------------------
// Golden snapshots

fn fixture_files() -> Vec<PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(root().join("fixtures/helpcenter/articles"))
        .expect("fixture articles")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn golden_fixture_help_center() {
    let mut seen = 0;
    for path in fixture_files() {
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let id = file["article"]["id"].as_u64().unwrap();
        for t in file["translations"].as_array().unwrap() {
            let locale = t["locale"].as_str().unwrap();
            let title = t["title"].as_str().unwrap_or_default();
            let body = t["body"].as_str();
            let n = normalize(title, body, &opts());
            check_invariants(body.unwrap_or(""), &n, 1500);
            insta::assert_yaml_snapshot!(format!("helpcenter_{id}_{locale}"), view(&n));
            seen += 1;
        }
    }
    assert!(seen >= 60, "every fixture translation is covered ({seen})");
}

fn nasty_opts() -> NormalizeOptions {
    NormalizeOptions {
        drop_selectors: vec![".agent-only".into(), "[data-internal]".into()],
        ..opts()
    }
}

#[test]
fn golden_nasty_html() {
    let mut paths: Vec<_> = std::fs::read_dir(root().join("fixtures/html"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 8);
    for path in paths {
        let html = std::fs::read_to_string(&path).unwrap();
        let n = normalize("Nasty", Some(&html), &nasty_opts());
        check_invariants(&html, &n, 1500);
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        insta::assert_yaml_snapshot!(format!("html_{stem}"), view(&n));
    }
}

/// About 1 MB of realistic article HTML, generated.
fn big_body() -> String {
    let mut html = String::new();
    let mut i = 0;
    while html.len() < 1_000_000 {
        html.push_str(&format!("<h2 id=\"h_{i:026}\">Section {i}</h2>\n"));
        html.push_str("<p>Lumen Pay sends payouts every business day. ");
        for k in 0..30 {
            html.push_str(&format!(
                "Sentence {k} of section {i} explains one more detail about fees &amp; limits. "
            ));
        }
        html.push_str("</p>\n<h3>Limits</h3>\n<table><tr><th>Plan</th><th>Limit</th></tr>");
        for k in 0..8 {
            html.push_str(&format!(
                "<tr><td>Plan {k}</td><td>{} EUR</td></tr>",
                k * 1000
            ));
        }
        html.push_str("</table>\n<ul>");
        for k in 0..6 {
            html.push_str(&format!(
                "<li>Item {k} with <a href=\"/hc/en-us/articles/{}\">a link</a></li>",
                1000 + (i * 7 + k) % 50
            ));
        }
        html.push_str("</ul>\n");
        i += 1;
    }
    html
}

#[derive(Serialize)]
struct Summary {
    input_bytes: usize,
    passages: usize,
    max_passage_chars: usize,
    total_chars: usize,
    distinct_anchors: usize,
    links: usize,
    first: String,
    last: String,
    content_hash: String,
}

#[test]
fn golden_one_megabyte_body() {
    let html = big_body();
    let n = normalize("Big", Some(&html), &opts());
    check_invariants(&html, &n, 1500);
    let anchors: std::collections::HashSet<_> =
        n.passages.iter().filter_map(|s| s.anchor.clone()).collect();
    let summary = Summary {
        input_bytes: html.len(),
        passages: n.passages.len(),
        max_passage_chars: n
            .passages
            .iter()
            .map(|s| s.text.chars().count())
            .max()
            .unwrap_or(0),
        total_chars: n.passages.iter().map(|s| s.text.chars().count()).sum(),
        distinct_anchors: anchors.len(),
        links: n.links.len(),
        first: format!(
            "{} :: {}",
            n.passages[0].heading_path.join(" › "),
            &n.passages[0].text[..60]
        ),
        last: n
            .passages
            .last()
            .map(|s| s.heading_path.join(" › "))
            .unwrap_or_default(),
        content_hash: n.content_hash.clone(),
    };
    insta::assert_yaml_snapshot!("big_body_summary", summary);
}

// ---------------------------------------------------------------------------------------------
// Passages and citations

#[test]
fn anchors_are_real_never_invented() {
    let html = r##"
        <ul><li><a href="#h_01AAAAAAAAAAAAAAAAAAAAAAAA">Linked from the TOC but no id</a></li></ul>
        <h2>Linked from the TOC but no id</h2><p>a</p>
        <h2 id="h_01HV3T479W2WWJH2BEM5D50F14">Editor heading</h2><p>b</p>
        <h2><a name="old-style"></a>Named anchor</h2><p>c</p>
        <h2><a id="inner" href="#x">Inner id</a></h2><p>d</p>
        <div id="wrapper"><h2>Id on a wrapper only</h2><p>e</p></div>
        <h2 id="  ">Blank id</h2><p>f</p>
        <h2 id="h_own"><a name="ignored">Own id wins</a></h2><p>g</p>
    "##;
    let n = norm(html);
    let got: Vec<_> = n
        .passages
        .iter()
        .map(|s| (s.heading_path[0].as_str(), s.anchor.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("Linked from the TOC but no id", None),
            ("Editor heading", Some("h_01HV3T479W2WWJH2BEM5D50F14")),
            ("Named anchor", Some("old-style")),
            ("Inner id", Some("inner")),
            ("Id on a wrapper only", None),
            ("Blank id", None),
            ("Own id wins", Some("h_own")),
        ]
    );
}

#[test]
fn heading_path_follows_levels() {
    let n = norm(
        "<h2>Billing</h2><h3>Refunds</h3><h4>Partial refunds</h4><p>p</p><h3>Disputes</h3><p>d</p><h2>Payouts</h2><p>x</p>",
    );
    let paths: Vec<_> = n
        .passages
        .iter()
        .map(|s| s.heading_path.join(" › "))
        .collect();
    assert_eq!(
        paths,
        [
            "Billing › Refunds › Partial refunds",
            "Billing › Disputes",
            "Payouts"
        ]
    );
}

#[test]
fn intro_empty_and_leaf_headings() {
    let n = norm(
        r#"<p>Intro before any heading.</p>
        <h2 id="h_01KV6Y327PSQF9DJE2J8TY1HW5"> </h2>
        <h2>Parent</h2><h3>Child</h3><p>child text</p>
        <h2>Still need help?</h2>"#,
    );
    let got: Vec<_> = n
        .passages
        .iter()
        .map(|s| (s.heading_path.join(" › "), s.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("".to_string(), "Intro before any heading."),
            ("Parent › Child".to_string(), "Parent\nChild\nchild text"),
            ("Still need help?".to_string(), "Still need help?"),
        ]
    );
}

#[test]
fn unclosed_heading_ends_at_its_first_block() {
    let n = norm("<h2 id=\"h_x\">Broken<p>Body text</p><h3>Inner</h3><p>inner body</p>");
    let got: Vec<_> = n
        .passages
        .iter()
        .map(|s| {
            (
                s.heading_path.join(" › "),
                s.anchor.as_deref(),
                s.text.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Broken".to_string(), Some("h_x"), "Broken\nBody text"),
            ("Broken › Inner".to_string(), None, "Inner\ninner body")
        ]
    );
    // A block before any heading text is still part of the heading.
    assert_eq!(
        norm("<h2><div>Wrapped</div></h2><p>x</p>").passages[0].heading_path,
        ["Wrapped"]
    );
}

#[test]
fn table_of_contents_is_dropped() {
    let n = norm(
        r##"<ul><li><a href="#h_1">One</a></li><li><a href="#h_2">Two</a><ul><li><a href="#h_3">Three</a></li></ul></li></ul>
        <div class="toc"><a href="#h_1">One</a></div>
        <nav><a href="#h_2">Two</a></nav>
        <p>Intro.</p>
        <ul><li><a href="#h_1">One</a> is about setup.</li></ul>
        <h2 id="h_1">One</h2><p>one</p>"##,
    );
    assert_eq!(texts(&n), ["Intro.\n- One is about setup.", "One\none"]);
}

#[test]
fn passages_respect_the_bound_and_keep_heading() {
    let sentence = "Payouts are sent every business day, except on bank holidays in your country. ";
    let html = format!(
        "<h2 id=\"h_long\">Long</h2><p>{}</p><ul>{}</ul>",
        sentence.repeat(40),
        "<li>A list item that is fairly short.</li>".repeat(30)
    );
    // The heading line ("Long") opens every passage: 120 leaves room for a whole sentence.
    for max in [120, 200, 1500] {
        let n = normalize(
            "T",
            Some(&html),
            &NormalizeOptions {
                max_passage_chars: max,
                ..opts()
            },
        );
        assert!(n.passages.len() > 1, "split at {max}");
        for s in &n.passages {
            assert!(
                s.text.chars().count() <= max,
                "{max}: {}",
                s.text.chars().count()
            );
            assert_eq!(s.heading_path, ["Long"]);
            assert_eq!(s.anchor.as_deref(), Some("h_long"));
        }
        // Cut at sentence ends and item boundaries, never inside a word.
        for s in &n.passages {
            assert!(s.text.ends_with('.'), "{max}: {:?}", s.text);
        }
        // Every passage starts with its heading line; the rest is the text, in order.
        let words: Vec<_> = all_text(&n)
            .split_whitespace()
            .filter(|w| *w != "-" && *w != "Long")
            .map(str::to_string)
            .collect();
        let expected: Vec<_> = norm(&html)
            .passages
            .iter()
            .flat_map(|s| s.text.split_whitespace())
            .filter(|w| *w != "-" && *w != "Long")
            .map(str::to_string)
            .collect();
        assert_eq!(words, expected, "no text lost or reordered at {max}");
    }
}

#[test]
fn passage_bound_counts_chars_not_bytes() {
    let html = format!("<p>{}</p>", "日本語のテキスト。".repeat(300));
    let n = normalize(
        "T",
        Some(&html),
        &NormalizeOptions {
            max_passage_chars: 100,
            ..opts()
        },
    );
    assert!(n.passages.iter().all(|s| s.text.chars().count() <= 100));
    assert!(
        n.passages.iter().any(|s| s.text.len() > 100),
        "bytes may exceed the bound"
    );
    assert!(n.passages.iter().all(|s| s.text.ends_with('。')));
}

// ---------------------------------------------------------------------------------------------
// Text that keeps meaning

#[test]
fn tables_become_header_aware_rows() {
    let n = norm(
        "<table><thead><tr><th>Plan</th><th>Price</th><th>Seats</th></tr></thead>
         <tbody><tr><td>Pro</td><td>20 USD</td><td>5</td></tr><tr><td>Team</td><td>50 USD</td><td>20</td></tr></tbody></table>
         <table><tr><td><b>Country</b></td><td><strong>Arrives</strong></td></tr><tr><td>DE</td><td>next day</td></tr></table>
         <table><tr><td>Layout cell one</td></tr><tr><td>Layout cell two</td></tr></table>",
    );
    assert_eq!(
        all_text(&n),
        "Plan: Pro | Price: 20 USD | Seats: 5\nPlan: Team | Price: 50 USD | Seats: 20\n\
         Country: DE | Arrives: next day\nLayout cell one\nLayout cell two"
    );
}

#[test]
fn nested_tables_read_inside_their_cell() {
    let n = norm(
        "<table><tr><th>Plan</th><th>Limits</th></tr><tr><td>Starter</td><td>
         <table><tr><th>Invoices</th><th>Users</th></tr><tr><td>10</td><td>1</td></tr></table></td></tr></table>",
    );
    assert_eq!(
        all_text(&n),
        "Plan: Starter | Limits: Invoices: 10 | Users: 1"
    );
}

#[test]
fn lists_keep_items_and_nesting() {
    let n = norm(
        "<ol start=\"2\"><li>Open<ul><li>sub <b>a</b></li><li>sub b</li></ul></li><li>Save</li></ol>",
    );
    assert_eq!(all_text(&n), "2. Open\n  - sub a\n  - sub b\n3. Save");
}

#[test]
fn pre_keeps_whitespace_verbatim() {
    let n = norm(
        "<p>Run:</p><pre><code>fn main() {\n    let  x =\t1;\n\n    println!(\"{x}\");\n}</code></pre>",
    );
    assert_eq!(
        texts(&n),
        ["Run:\nfn main() {\n    let  x =\t1;\n\n    println!(\"{x}\");\n}"]
    );
}

#[test]
fn images_links_quotes_and_entities() {
    let n = norm(
        "<blockquote>Quoted&nbsp;text &amp; more</blockquote>\
         <p><img alt=\"Settings page\" width=\"10\"><img src=\"x.png\"> see <a href=\"https://example.com\">docs</a></p>\
         <p>zero\u{200B}width\u{FEFF} soft\u{AD}hyphen &lt;tag&gt; &eacute;</p>",
    );
    assert_eq!(
        texts(&n),
        ["Quoted text & more\nSettings page see docs\nzerowidth softhyphen <tag> é"]
    );
}

#[test]
fn links_to_articles_become_edges() {
    let html = std::fs::read_to_string(root().join("fixtures/html/links.html")).unwrap();
    let n = norm(&html);
    let edges: Vec<_> = n
        .links
        .iter()
        .map(|l| (l.article_id, l.locale.as_deref(), l.text.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            (3600000112026, Some("en-us"), "the profile article"),
            (3600000112038, Some("de"), "die Rechnung"),
            (3600000112041, None, "no locale"),
        ]
    );
    assert!(all_text(&n).contains("a same-page link and an external page."));
}

#[test]
fn hidden_and_non_content_elements_are_dropped() {
    let html =
        std::fs::read_to_string(root().join("fixtures/html/hidden_and_dropped.html")).unwrap();
    let text = all_text(&normalize("T", Some(&html), &opts()));
    for gone in [
        "secret",
        "color: red",
        "Enable JavaScript",
        "Template content",
        "Iframe fallback",
        "editor comment",
        "Inline display none",
        "Important none",
        "Hidden attribute",
    ] {
        assert!(!text.contains(gone), "{gone:?} leaked into {text:?}");
    }
    for kept in [
        "Visible paragraph.",
        "Shown despite a display style.",
        "Video: how refunds work",
        "Agent-only note",
    ] {
        assert!(text.contains(kept), "{kept:?} missing from {text:?}");
    }
}

#[test]
fn drop_selectors_remove_agent_only_content() {
    let html = "<p>Public.</p><div class=\"note agent-only\"><p>Offer a credit.</p></div><p data-internal>Internal.</p>";
    let with = normalize("T", Some(html), &nasty_opts());
    assert_eq!(texts(&with), ["Public."]);
    let without = norm(html);
    assert_eq!(texts(&without), ["Public.\nOffer a credit.\nInternal."]);
    // An invalid selector is reported by validation and ignored (never a panic) by normalize.
    let bad = NormalizeOptions {
        drop_selectors: vec!["div[".into(), ".agent-only".into()],
        ..opts()
    };
    assert!(validate_selectors(&bad.drop_selectors).is_err());
    assert_eq!(
        texts(&normalize("T", Some(html), &bad)),
        ["Public.\nInternal."]
    );
}

// ---------------------------------------------------------------------------------------------
// Change detection

const BASE: &str = r#"<h2 id="h_01A">Refunds</h2><p>We refund unused time within <strong>14 days</strong>.</p>
<p><img src="/hc/article_attachments/1" alt="Refund form" width="800" height="600"></p>
<ul><li>Open Billing</li><li>Click Refund</li></ul>"#;

#[test]
fn cosmetic_changes_keep_the_hash() {
    let base = norm(BASE);
    let cosmetic = [
        // classes, inline styles, attribute order, whitespace, wysiwyg spans, image size
        r#"<h2 class="x" id="h_01A">Refunds</h2>
           <p style="color:red" class="wysiwyg-text-align-center">We   refund <span class="wysiwyg-font-size-large">unused</span>
           time within <strong class="b">14&nbsp;days</strong>.</p>
           <p><img height="300" alt="Refund form" width="400" src="/hc/article_attachments/2"></p>
           <ul>
             <li data-list-item-id="e1">Open Billing</li>
             <li><span class="wysiwyg-color-black">Click</span> Refund</li>
           </ul>"#,
        r#"<div class="table-wrap"><h2 id="h_01A">Refunds</h2></div><p>We refund unused time within <b>14 days</b>.</p><!-- note --><p><img alt="Refund form"></p><ul><li>Open Billing<li>Click Refund</ul>"#,
    ];
    for c in cosmetic {
        let n = norm(c);
        assert_eq!(texts(&n), texts(&base));
        assert_eq!(n.content_hash, base.content_hash, "{c}");
        assert_eq!(n.passages[0].hash, base.passages[0].hash);
    }
}

#[test]
fn visible_changes_change_the_hash() {
    let base = norm(BASE);
    for changed in [
        BASE.replace("14 days", "30 days"),
        BASE.replace(">Refunds<", ">Refund policy<"),
        BASE.replace("Refund form", "Refund dialog"),
        BASE.replace(
            "<li>Click Refund</li>",
            "<li>Click Refund</li><li>Confirm</li>",
        ),
        BASE.replace("unused", "unused,"),
    ] {
        assert_ne!(norm(&changed).content_hash, base.content_hash, "{changed}");
    }
    // The anchor is what a citation points at: a regenerated heading id is a change too.
    assert_ne!(
        norm(&BASE.replace("h_01A", "h_01B")).content_hash,
        base.content_hash
    );
    // So is a retargeted article link, though its text is unchanged.
    let a = norm(r#"<p><a href="/hc/en-us/articles/1">see</a></p>"#);
    let b = norm(r#"<p><a href="/hc/en-us/articles/2">see</a></p>"#);
    assert_eq!(texts(&a), texts(&b));
    assert_ne!(a.content_hash, b.content_hash);
}

/// A title-only translation (`"body": null`, as Zendesk sends for a ja translation with no
/// body) is its title: one passage, so it can be found and cited. See: issue 10.
#[test]
fn null_body_is_its_title() {
    assert_eq!(NORMALIZER_VERSION, 3);
    let a = normalize("  A  title ", None, &opts());
    let b = normalize("B", None, &opts());
    assert_eq!(texts(&a), ["A title"]);
    assert!(a.passages[0].heading_path.is_empty() && a.links.is_empty());
    assert_ne!(a.content_hash, b.content_hash);
    assert_eq!(a.content_hash, content_hash("  A  title ", &a.passages));
    assert!(normalize(" ", None, &opts()).passages.is_empty());
    assert_eq!(
        normalize("  A  title ", Some("  \n "), &opts()).content_hash,
        a.content_hash
    );
    assert_ne!(
        normalize("  A  title ", Some("<p>x</p>"), &opts()).content_hash,
        a.content_hash
    );
}

#[test]
fn content_hash_without_links_matches_content_hash_fn() {
    let n = norm(BASE);
    assert!(n.links.is_empty());
    assert_eq!(n.content_hash, content_hash("Title", &n.passages));
}

// ---------------------------------------------------------------------------------------------
// Defensive behaviour

#[test]
fn deep_nesting_does_not_overflow() {
    // Deep enough to overflow a recursive walk on a 2 MB test thread; html5ever itself is
    // quadratic in nesting depth, so deeper would only slow the test down.
    let depth = 8_000;
    let mut html = String::new();
    for _ in 0..depth {
        html.push_str("<div><span>");
    }
    html.push_str("deep text");
    let n = norm(&html);
    assert_eq!(texts(&n), ["deep text"]);
    let lists = format!("{}deep item", "<ul><li>".repeat(3_000));
    let n = norm(&lists);
    let t = all_text(&n);
    assert_eq!(
        t,
        format!("{}- deep item", "  ".repeat(9)),
        "indentation is capped"
    );
    let tables = format!("{}cell", "<table><tr><td>".repeat(2_000));
    assert_eq!(all_text(&norm(&tables)), "cell");
}

// ---------------------------------------------------------------------------------------------
// Property tests

/// Tags, attributes and text for arbitrary, often malformed, HTML. Text never contains `<`
/// (nor an entity for it), so any `<` in the output would have to come from markup.
fn tag() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "p",
        "div",
        "span",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "a",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "table",
        "thead",
        "tbody",
        "tr",
        "td",
        "th",
        "caption",
        "pre",
        "code",
        "blockquote",
        "br",
        "img",
        "hr",
        "section",
        "o:p",
        "font",
        "script",
        "style",
        "template",
        "iframe",
        "noscript",
        "nav",
        "figure",
        "figcaption",
        "dl",
        "dt",
        "dd",
        "sup",
        "select",
        "option",
        "svg",
        "body",
        "html",
        "head",
        "title",
    ])
}

fn attr() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        " id=\"h_01ABC\"",
        " id=\"x1\"",
        " class=\"toc\"",
        " class=\"agent-only\"",
        " hidden",
        " style=\"display:none\"",
        " style=\"font-weight:700\"",
        " style=\"font-weight:normal\"",
        " href=\"#h_01ABC\"",
        " href=\"/hc/en-us/articles/12-x\"",
        " href=\"https://x.zendesk.com/hc/articles/34\"",
        " name=\"n1\"",
        " alt=\"alt text\"",
        " colspan=\"2\"",
        " colspan=\"99999999\"",
        " start=\"5\"",
        " value=\"-3\"",
        " data-internal",
        " class=\"a\" id=\"b\" style=\"color:red\"",
    ])
}

fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,!?:;'\"()\\-]{0,30}",
        Just("&amp;".to_string()),
        Just("&nbsp;".to_string()),
        Just("&#8203;".to_string()),
        Just("&eacute;&gt;".to_string()),
        Just("\u{FEFF}\u{AD}\u{200D}".to_string()),
        Just(" \n\t  ".to_string()),
        Just("مرحبا بالعالم".to_string()),
        Just("שלום".to_string()),
        Just("日本語。中文，한국어".to_string()),
        Just("👩‍💻🎉🇩🇪".to_string()),
        Just("&bogus; & &#0; &#xD800; &#99999999;".to_string()),
    ]
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (tag(), attr()).prop_map(|(t, a)| format!("<{t}{a}>")),
        2 => tag().prop_map(|t| format!("</{t}>")),
        4 => text_piece(),
        1 => Just("<!-- comment <p> -->".to_string()),
        1 => Just("<![if !supportLists]>".to_string()),
        1 => Just("<!DOCTYPE html>".to_string()),
    ]
}

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..120).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_html_never_panics_and_has_no_markup(html in soup(), max in 1usize..400) {
        let n = normalize("T", Some(&html), &NormalizeOptions { max_passage_chars: max, ..nasty_opts() });
        check_invariants(&html, &n, max);
        for s in &n.passages {
            prop_assert!(!s.text.contains('<'), "markup leaked: {:?}", s.text);
            prop_assert!(s.heading_path.iter().all(|h| !h.contains('<')));
            let invisible = ['\u{200B}', '\u{A0}', '\u{FEFF}', '\u{AD}'];
            prop_assert!(!s.text.contains(invisible), "invisible characters left: {:?}", s.text);
        }
        prop_assert!(n.links.iter().all(|l| !l.text.contains('<')));
    }

    #[test]
    fn arbitrary_bytes_never_panic(html in ".{0,400}") {
        let n = normalize("T", Some(&html), &opts());
        check_invariants(&html, &n, 1500);
    }

    #[test]
    // From 100 characters up every lead (headings carried into a passage) fits beside text;
    // smaller bounds are covered by the invariants above.
    fn normalizing_rendered_output_is_stable(doc in document(), max in 100usize..400) {
        let o = NormalizeOptions { max_passage_chars: max, ..opts() };
        let first = normalize("T", Some(&doc), &o);
        let again = normalize("T", Some(&render(&first)), &o);
        prop_assert_eq!(shape(&again), shape(&first), "rendered: {}", render(&first));
    }
}

/// Well-formed documents for the round trip: headings (unique texts, some with ids), paragraphs
/// with inline markup, lists, tables and quotes; no `pre` (its blank lines are not representable
/// as paragraphs).
fn document() -> impl Strategy<Value = String> {
    let words = prop::collection::vec(
        prop_oneof![
            "[a-zA-Z]{1,12}",
            Just("refund.".to_string()),
            Just("&amp;".to_string()),
            Just("&nbsp;".to_string()),
            Just("<b>bold words</b>".to_string()),
            Just("<i>it</i>al".to_string()),
            Just("<a href=\"/hc/de/articles/7\">link</a>".to_string()),
            Just("<img alt=\"an image\">".to_string()),
            Just("日本語。".to_string()),
            Just("👩‍💻".to_string()),
            Just("<br>".to_string()),
        ],
        1..25,
    )
    .prop_map(|w| w.join(" "));
    let block = prop_oneof![
        4 => words.clone().prop_map(|w| format!("<p>{w}</p>")),
        1 => prop::collection::vec(words.clone(), 1..4).prop_map(|items| {
            format!("<ul>{}</ul>", items.iter().map(|i| format!("<li>{i}</li>")).collect::<String>())
        }),
        1 => prop::collection::vec(words.clone(), 1..3).prop_map(|items| {
            format!("<ol><li>{}<ul><li>{}</li></ul></li></ol>", items[0], items.last().cloned().unwrap_or_default())
        }),
        1 => (words.clone(), words.clone(), any::<bool>()).prop_map(|(a, b, head)| {
            let h = if head { "<tr><th>Key</th><th>Value</th></tr>" } else { "" };
            format!("<table>{h}<tr><td>{a}</td><td>{b}</td></tr><tr><td>x</td><td></td></tr></table>")
        }),
        1 => words.clone().prop_map(|w| format!("<blockquote><div>{w}</div></blockquote>")),
        1 => (1u8..=6, any::<bool>()).prop_map(|(l, id)| {
            let id = if id { format!(" id=\"h_{l}ID\"") } else { String::new() };
            format!("<h{l}{id}>HEADING</h{l}>")
        }),
    ];
    prop::collection::vec(block, 0..25).prop_map(|blocks| {
        // Unique heading texts and ids, so consecutive sections are distinguishable.
        let mut out = String::new();
        for (i, b) in blocks.iter().enumerate() {
            out.push_str(
                &b.replace("HEADING", &format!("Heading {i}"))
                    .replace("ID\"", &format!("{i}\"")),
            );
        }
        out
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders normalized output back to HTML: headings for each change of heading path (the anchor
/// as the last heading's id), then one `<p>` per line (`<pre>` when the line is indented).
fn render(n: &Normalized) -> String {
    let mut html = String::new();
    let mut prev: Option<&Passage> = None;
    for s in &n.passages {
        let same = prev.is_some_and(|p| p.heading_path == s.heading_path && p.anchor == s.anchor);
        let lines: Vec<&str> = s.text.split('\n').collect();
        // The lead: headings carried from text-less sections, then the passage's own heading.
        let own = s.heading_path.last().map(String::as_str);
        let lead = own
            .and_then(|h| lines.iter().position(|l| *l == h))
            .map_or(0, |j| j + 1);
        if !same {
            let common = prev
                .map(|p| {
                    p.heading_path
                        .iter()
                        .zip(&s.heading_path)
                        .take_while(|(a, b)| a == b)
                        .count()
                })
                .unwrap_or(0)
                .min(s.heading_path.len().saturating_sub(1));
            let depth = s.heading_path.len();
            let mut heading = |level: usize, text: &str| {
                let id = match &s.anchor {
                    Some(a) if level == depth => format!(" id=\"{}\"", escape(a)),
                    _ => String::new(),
                };
                html.push_str(&format!("<h{level}{id}>{}</h{level}>\n", escape(text)));
            };
            // The lead in order: path headings at their level; a carried heading that is not
            // on the path was a text-less sibling of the next one, at that one's level.
            let mut k = common;
            for line in &lines[..lead] {
                if k < depth && *line == s.heading_path[k] {
                    heading(k + 1, line);
                    k += 1;
                } else {
                    heading(k + 1, line);
                }
            }
            for (i, h) in s.heading_path.iter().enumerate().skip(k) {
                heading(i + 1, h);
            }
        }
        for line in &lines[lead..] {
            if line.starts_with(char::is_whitespace) {
                html.push_str(&format!("<pre>{}</pre>\n", escape(line)));
            } else {
                html.push_str(&format!("<p>{}</p>\n", escape(line)));
            }
        }
        prev = Some(s);
    }
    html
}

fn shape(n: &Normalized) -> Vec<(Vec<String>, Option<String>, String)> {
    n.passages
        .iter()
        .map(|s| (s.heading_path.clone(), s.anchor.clone(), s.text.clone()))
        .collect()
}

/// 100,000 nested `<div>`s took half a minute (html5ever checks its open-element stack on every
/// tag). The nesting beyond 256 levels is flattened before parsing, the text kept and the
/// translation flagged. See: issue 12.
#[test]
fn deep_nesting_is_flattened_not_quadratic() {
    let depth = 100_000;
    let html = format!(
        "<h2 id=\"h_1\">Deep</h2>{}needle text{}<p>after</p>",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    );
    let n = norm(&html);
    assert!(n.flattened);
    assert_eq!(texts(&n), ["Deep\nneedle text\nafter"]);
    assert!(!norm(BASE).flattened);
}
