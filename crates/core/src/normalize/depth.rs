//! A nesting cap applied before parsing. html5ever's tree builder checks its stack of open
//! elements on every tag, so a body of tens of thousands of nested elements parses in time
//! quadratic in the depth (100k levels took half a minute). No real article nests more than a
//! few dozen levels; beyond [`MAX_DEPTH`], tags are dropped and their text kept, in one linear
//! pass over the raw HTML, and the translation is flagged.
//!
//! The pass tokenizes tags as html5 does (attribute quoting, comments, bogus comments, raw text
//! and script-data escapes) and keeps a model of the parser's stack of open elements: end tags
//! close what html5 closes (the nearest match within scope), and the end tags html5 leaves out
//! are implied where html5 implies them (`<p>` and `<li>` need no end tag, cells close cells).
//! The model never closes what html5 would keep open, so the real nesting cannot exceed the
//! cap by more than what html5 adds on its own (a `tbody` per table); where it is unsure it
//! keeps an element open, which can only flatten earlier, never let the parser go deeper.
//! Every search of the stack looks at most [`MAX_WALK`] elements, so the pass stays linear.
//!
//! Beyond the cap, nothing hidden may become visible: an element that hides its content
//! (`script`, `style`, `hidden`, `display:none`, a table of contents…, as the walk in `dom`
//! decides) is dropped with everything in it, not flattened. Drop selectors cannot be checked
//! on markup that is not parsed, so with any configured, all content beyond the cap is
//! dropped (fail-closed).

use std::borrow::Cow;

use scraper::{ElementRef, Html};

use super::dom;

/// Deepest element nesting kept; deeper start and end tags are dropped.
pub const MAX_DEPTH: usize = 256;

/// Most open elements looked at when searching the stack for an element to close. Past it the
/// element is assumed to stay open: the depth is over-estimated, never under-estimated.
const MAX_WALK: usize = 64;

/// Elements without content or end tag (`image` is read as `img`).
#[rustfmt::skip]
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
    "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is text up to their end tag (in HTML content). html5ever parses
/// fragments with scripting enabled, so `noscript` is one of them.
#[rustfmt::skip]
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
    "noscript",
];

/// html5's "special" elements: a generic end tag does not close past them, and `li`/`dd`/`dt`
/// start tags stop looking for an open item at them.
#[rustfmt::skip]
const SPECIAL: &[&str] = &[
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound",
    "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd",
    "details", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure",
    "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head",
    "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link",
    "listing", "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript",
    "object", "ol", "p", "param", "plaintext", "pre", "script", "search", "section",
    "select", "source", "style", "summary", "table", "tbody", "td", "template", "textarea",
    "tfoot", "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp", "mi", "mo", "mn",
    "ms", "mtext", "annotation-xml", "foreignobject", "desc",
];

/// Elements that end html5's default scope (an end tag does not close past them).
#[rustfmt::skip]
const SCOPE: &[&str] = &[
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "mi",
    "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc", "title", "select",
];

/// Start tags that close an open `p` (in button scope) before they open. `table` is left out:
/// in quirks mode it does not, and leaving it out can only over-estimate.
#[rustfmt::skip]
const CLOSES_P: &[&str] = &[
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir",
    "div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main",
    "menu", "nav", "ol", "p", "search", "section", "summary", "ul", "h1", "h2", "h3", "h4",
    "h5", "h6", "pre", "listing", "form", "plaintext", "xmp", "li", "dd", "dt",
];

/// End tags that close the nearest open element of their name within the default scope,
/// whatever is open above it.
#[rustfmt::skip]
const SCOPED_END: &[&str] = &[
    "address", "article", "aside", "blockquote", "button", "center", "details", "dialog",
    "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup",
    "listing", "main", "menu", "nav", "ol", "pre", "search", "section", "summary", "ul",
    "dd", "dt",
];

#[rustfmt::skip]
const TABLE_PARTS: &[&str] = &[
    "table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup",
];

fn is_heading(n: &str) -> bool {
    matches!(n, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// `html` with elements nested deeper than `cap` flattened (their tags dropped, their text
/// kept; hiding elements dropped whole), and whether anything was dropped. Borrows when nothing
/// is. With `keep_deep_text` false, everything nested deeper than `cap` is dropped.
pub(crate) fn cap_depth(html: &str, cap: usize, keep_deep_text: bool) -> (Cow<'_, str>, bool) {
    // Fast path: fewer start tags than the cap cannot nest deeper than it.
    if bytecount(html.as_bytes(), b'<') <= cap {
        return (Cow::Borrowed(html), false);
    }
    let mut c = Capper {
        html,
        cap,
        keep_deep_text,
        stack: Vec::new(),
        kept: 0,
        tables: 0,
        out: String::new(),
        copied: 0,
        dropped: false,
        skip: None,
        skip_own_end: false,
        hidden_open: 0,
        exhausted: std::cell::Cell::new(false),
        rest_hidden: false,
    };
    c.run();
    if !c.dropped {
        return (Cow::Borrowed(html), false);
    }
    if c.skip.is_none() {
        c.out.push_str(&html[c.copied..]);
    }
    (Cow::Owned(c.out), true)
}

/// One open element of the model.
struct Open {
    name: String,
    /// Its tags are in the output (within the cap).
    kept: bool,
    /// An SVG or MathML element (inside `svg` or `math`, html5 nests by other rules).
    foreign: bool,
    /// It hides its content (as the walk in `dom` decides).
    hides: bool,
}

/// html5's formatting elements, which it re-opens after an implied close.
#[rustfmt::skip]
const FORMATTING: &[&str] = &[
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt",
    "u",
];

/// Foreign elements inside which html5 reads start tags and text as HTML.
fn is_integration_point(n: &str) -> bool {
    matches!(
        n,
        "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml" | "foreignobject" | "desc" | "title"
    )
}

/// Start tags that break out of foreign content: html5 closes the SVG or MathML elements
/// first (`font` too, with some attributes; left out, which can only over-estimate).
#[rustfmt::skip]
const BREAKOUT: &[&str] = &[
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em",
    "embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing",
    "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike",
    "sub", "sup", "table", "tt", "u", "ul", "var",
];

struct Capper<'a> {
    html: &'a str,
    cap: usize,
    keep_deep_text: bool,
    stack: Vec<Open>,
    /// Kept elements on the stack: they are its bottom part.
    kept: usize,
    /// Open HTML `table` and `template` elements (outside both, html5 ignores table parts).
    tables: usize,
    out: String,
    /// Bytes of `html` before this are in `out` or dropped.
    copied: usize,
    dropped: bool,
    /// A hiding element beyond the cap is open at this stack index: everything is dropped
    /// until it closes.
    skip: Option<usize>,
    /// Only its own end tag ends the skip. Closed by anything else (an implied end, an
    /// enclosing element's end tag, a breakout), the model may disagree with html5: html5
    /// may keep it open, or re-open copies of it (a formatting element: `<b class="toc">`)
    /// around what follows. Fail-closed: the rest of the input is then dropped.
    skip_own_end: bool,
    rest_hidden: bool,
    /// Open elements that hide their content.
    hidden_open: usize,
    /// A stack search of the current tag gave up at [`MAX_WALK`]: html5 may close more.
    exhausted: std::cell::Cell<bool>,
}

impl Capper<'_> {
    fn run(&mut self) {
        let html = self.html;
        let mut i = 0;
        while let Some(off) = html[i..].find('<') {
            let at = i + off;
            let rest = &html[at..];
            if let Some(len) = markup_declaration(rest) {
                i = at + len;
                continue;
            }
            let Some(tag) = Tag::parse(rest) else {
                i = at + 1;
                continue;
            };
            let end = at + tag.len;
            i = if tag.closing {
                self.end_tag(&tag.name, at, end);
                end
            } else {
                match self.start_tag(&tag, at, end) {
                    Some(next) => next,
                    None => break,
                }
            };
            if self.rest_hidden {
                break;
            }
        }
        if self.skip.is_some() || self.rest_hidden {
            // The hidden element never closes: the rest of the input is inside it.
            self.copied = html.len();
        }
    }

    /// Leaves out `html[at..end]` (a tag), keeping what came before.
    fn drop_tag(&mut self, at: usize, end: usize) {
        self.dropped = true;
        if self.skip.is_none() {
            self.out.push_str(&self.html[self.copied..at]);
            self.copied = end;
        }
    }

    /// Tokens are read by html5's rules for foreign content: the current element is an SVG
    /// or MathML one that is not an integration point. Implied end tags and raw text do not
    /// apply there.
    fn in_foreign(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|o| o.foreign && !is_integration_point(&o.name))
    }

    fn push(&mut self, name: &str, kept: bool, hides: bool) {
        let foreign = matches!(name, "svg" | "math") || self.in_foreign();
        if kept {
            self.kept += 1;
        }
        if !foreign && matches!(name, "table" | "template") {
            self.tables += 1;
        }
        if hides {
            self.hidden_open += 1;
        }
        self.stack.push(Open {
            name: name.to_string(),
            kept,
            foreign,
            hides,
        });
    }

    /// Closes the SVG and MathML elements open above the nearest HTML element or integration
    /// point, as html5 does before a tag that breaks out of foreign content.
    fn break_out(&mut self, at: usize) {
        let keep = self
            .stack
            .iter()
            .rposition(|o| !o.foreign || is_integration_point(&o.name))
            .map_or(0, |i| i + 1);
        if keep < self.stack.len() {
            self.pop_to(keep, at);
        }
    }

    /// Closes every element from `idx` up. A hidden element closed this way ends its skip at
    /// `resume` (the byte after which the output continues).
    fn pop_to(&mut self, idx: usize, resume: usize) {
        // A formatting element that may hide, opened inside the hidden element and closed
        // with it, is re-opened by html5 around what follows.
        let reopened = self.skip.is_some_and(|s| s >= idx)
            && self.stack[idx..]
                .iter()
                .skip(1)
                .any(|o| o.hides && FORMATTING.contains(&o.name.as_str()));
        for o in self.stack.drain(idx..) {
            if o.kept {
                self.kept -= 1;
            }
            if !o.foreign && matches!(o.name.as_str(), "table" | "template") {
                self.tables -= 1;
            }
            if o.hides {
                self.hidden_open -= 1;
            }
        }
        if self.skip.is_some_and(|s| s >= idx) {
            if !self.skip_own_end || reopened {
                self.rest_hidden = true;
            } else {
                self.skip = None;
                self.copied = resume;
            }
        }
    }

    /// The nearest open HTML element (at most [`MAX_WALK`] down) for which `hit` holds,
    /// unless `stop` holds for one above it.
    fn find(&self, hit: impl Fn(&str) -> bool, stop: impl Fn(&str) -> bool) -> Option<usize> {
        for (idx, o) in self.stack.iter().enumerate().rev().take(MAX_WALK) {
            if !o.foreign && hit(&o.name) {
                return Some(idx);
            }
            if stop(&o.name) {
                return None;
            }
        }
        if self.stack.len() > MAX_WALK {
            self.exhausted.set(true);
        }
        None
    }

    /// The end tags html5 implies before a start tag `name` opens (at byte `at`).
    fn implied_ends(&mut self, name: &str, at: usize) {
        let special_item_stop = |n: &str| {
            n == "select" || (SPECIAL.contains(&n) && !matches!(n, "address" | "div" | "p"))
        };
        let table_stop = |n: &str| matches!(n, "html" | "template" | "select");
        match name {
            "li" => {
                if let Some(i) = self.find(|n| n == "li", special_item_stop) {
                    self.pop_to(i, at);
                }
            }
            "dd" | "dt" => {
                if let Some(i) = self.find(|n| n == "dd" || n == "dt", special_item_stop) {
                    self.pop_to(i, at);
                }
            }
            "td" | "th" => {
                // A cell closes the open cell (and all in it); else what is open above the row
                // or table section (foster-parented elements) closes.
                let cell = self.find(
                    |n| matches!(n, "td" | "th"),
                    |n| table_stop(n) || matches!(n, "tr" | "tbody" | "thead" | "tfoot" | "table"),
                );
                match cell {
                    Some(i) => self.pop_to(i, at),
                    None => self.clear_to(
                        |n| matches!(n, "tr" | "tbody" | "thead" | "tfoot" | "table"),
                        table_stop,
                        at,
                    ),
                }
            }
            "tr" => {
                // A row closes the open row, with its cells.
                let row = self.find(
                    |n| n == "tr",
                    |n| table_stop(n) || matches!(n, "tbody" | "thead" | "tfoot" | "table"),
                );
                match row {
                    Some(i) => self.pop_to(i, at),
                    None => self.clear_to(
                        |n| matches!(n, "tbody" | "thead" | "tfoot" | "table"),
                        table_stop,
                        at,
                    ),
                }
            }
            "tbody" | "thead" | "tfoot" | "caption" | "colgroup" => {
                self.clear_to(|n| n == "table", table_stop, at);
            }
            "option" | "optgroup" => {
                if self.stack.last().is_some_and(|o| o.name == "option") {
                    let i = self.stack.len() - 1;
                    self.pop_to(i, at);
                }
                if name == "optgroup" && self.stack.last().is_some_and(|o| o.name == "optgroup") {
                    let i = self.stack.len() - 1;
                    self.pop_to(i, at);
                }
            }
            "button" => {
                if let Some(i) = self.find(|n| n == "button", |n| SCOPE.contains(&n)) {
                    self.pop_to(i, at);
                }
            }
            _ => {}
        }
        if CLOSES_P.contains(&name) {
            if let Some(i) = self.find(|n| n == "p", |n| SCOPE.contains(&n) || n == "button") {
                self.pop_to(i, at);
            }
            if is_heading(name) && self.stack.last().is_some_and(|o| is_heading(&o.name)) {
                let i = self.stack.len() - 1;
                self.pop_to(i, at);
            }
        }
    }

    /// Closes the select open in scope, if any; whether there was one.
    fn close_select(&mut self, at: usize) -> bool {
        let found = self.find(|n| n == "select", |n| n != "select" && SCOPE.contains(&n));
        if let Some(i) = found {
            self.pop_to(i, at);
        }
        found.is_some()
    }

    /// Closes what is open above the nearest element for which `to` holds (html5's "clear the
    /// stack back to a table context").
    fn clear_to(&mut self, to: impl Fn(&str) -> bool, stop: impl Fn(&str) -> bool, at: usize) {
        if let Some(i) = self.find(to, stop) {
            self.pop_to(i + 1, at);
        }
    }

    /// A start tag at `html[at..end]`; returns where scanning goes on (`None`: the rest of the
    /// input is text).
    fn start_tag(&mut self, tag: &Tag, at: usize, end: usize) -> Option<usize> {
        let name = tag.name.as_str();
        self.exhausted.set(false);
        if VOID.contains(&name) {
            if name == "input" && !self.in_foreign() {
                // html5ever (customizable `<select>`) closes an open select at an input.
                self.close_select(at);
            }
            return Some(end);
        }
        if self.in_foreign() && BREAKOUT.contains(&name) {
            self.break_out(at);
            if self.rest_hidden {
                return None;
            }
        }
        let html_rules = !self.in_foreign();
        if html_rules {
            // Start tags html5 ignores in a body: they open nothing.
            let ignored = matches!(name, "html" | "body" | "head" | "frameset")
                || (name != "table" && TABLE_PARTS.contains(&name) && self.tables == 0);
            if ignored {
                if self.kept < self.stack.len() {
                    self.drop_tag(at, end);
                }
                return Some(end);
            }
        }
        if tag.self_closing && (!html_rules || matches!(name, "svg" | "math")) {
            // Foreign elements can be self-closing (html5 ignores the slash on HTML ones).
            return Some(end);
        }
        if html_rules {
            self.implied_ends(name, at);
        }
        if self.rest_hidden {
            return None;
        }
        if html_rules && name == "select" && self.close_select(at) {
            // A select inside a select closes it and opens nothing.
            return Some(end);
        }
        if html_rules && name == "colgroup" {
            // It holds only `col`s: html5 closes it at anything else, so it nests nothing.
            return Some(end);
        }
        let raw = html_rules && RAW_TEXT.contains(&name);
        if self.skip.is_none() && self.kept < self.cap {
            // Counted generously (no parse): it only makes the cap fail closed more often.
            let hides = dom::is_dropped_tag(name) || attrs_may_hide(&self.html[at..end], tag);
            self.push(name, true, hides);
            if raw {
                return self.after_raw_text(name, end);
            }
            if name == "plaintext" && html_rules {
                return None;
            }
            return Some(end);
        }
        // Beyond the cap.
        // `math` goes whole too: without its tag, its content would be read as HTML (an
        // `<xmp>` in it would show markup as text).
        let hides = self.skip.is_none()
            && (!self.keep_deep_text
                || dom::is_dropped_tag(name)
                || name == "math"
                || attrs_hide(&self.html[at..end], tag));
        if hides {
            self.drop_tag(at, end);
            self.skip = Some(self.stack.len());
            self.skip_own_end = false;
            self.push(name, false, true);
            if html_rules && name == "plaintext" {
                // Hidden, with all the text after it.
                return None;
            }
            // Inside foreign content its body is read as markup, which ends it no earlier
            // than html5 would (whether html5 reads it as markup or, after a breakout, as
            // raw text): more is dropped, never less.
            if raw {
                return self.after_raw_text(name, end);
            }
            return Some(end);
        }
        if html_rules && name == "plaintext" {
            // Everything after it is its text: it stays (or, inside a hidden element, goes
            // with it), rather than have that text read as markup, which could close a
            // hidden element around it.
            return None;
        }
        if self.skip.is_none() && self.exhausted.get() && self.hidden_open > 0 {
            // html5 may have closed more than the model could look at (a cell clears back to
            // its table), placing what follows inside a hidden element the model cannot see
            // from here. Fail-closed: the rest is hidden.
            self.drop_tag(at, end);
            self.rest_hidden = true;
            return None;
        }
        if raw && self.skip.is_none() {
            // A raw text element (`textarea`, `xmp`) holds no elements: it stays whole, one
            // level past the cap, rather than have its text read as markup.
            let close = self.after_raw_text(name, end)?;
            return Some(match Tag::parse(&self.html[close..]) {
                Some(t) if close < self.html.len() => close + t.len,
                _ => close,
            });
        }
        self.drop_tag(at, end);
        // Inside a hidden element, a formatting element that may hide is re-opened by html5
        // after the hidden one closes (see `pop_to`).
        let reopens_hidden = self.skip.is_some()
            && FORMATTING.contains(&name)
            && attrs_may_hide(&self.html[at..end], tag);
        self.push(name, false, reopens_hidden);
        if raw {
            return self.after_raw_text(name, end);
        }
        Some(end)
    }

    /// Where the text content of raw text element `name` opened before `end` ends: its end tag,
    /// which is then read as a tag.
    fn after_raw_text(&self, name: &str, end: usize) -> Option<usize> {
        let rest = &self.html[end..];
        let off = if name == "script" {
            script_end(rest)
        } else {
            find_end_tag(rest.as_bytes(), 0, name)
        };
        // Unterminated: the rest of the input is its text.
        Some(off.map_or(self.html.len(), |o| end + o))
    }

    /// An end tag at `html[at..end]`.
    fn end_tag(&mut self, name: &str, at: usize, end: usize) {
        if VOID.contains(&name) {
            // html5 reads `</br>` as `<br>` and ignores the others.
            return;
        }
        let found = self.end_match(name, at);
        match found {
            Some(idx) if self.skip.is_some_and(|s| idx < s) => {
                // The end tag of an element around the hidden one: if the model's stack is
                // wrong there (an element html5 closed earlier, which the model kept), html5
                // keeps the hidden element open. Fail-closed: the rest is hidden.
                self.rest_hidden = true;
            }
            Some(idx) => {
                let kept = self.stack[idx].kept;
                let hidden_closes = self.skip == Some(idx);
                if hidden_closes {
                    self.skip_own_end = true;
                }
                self.pop_to(idx, at);
                if hidden_closes {
                    // The hidden element's own end tag goes with it.
                    self.copied = end;
                } else if !kept {
                    self.drop_tag(at, end);
                }
            }
            // Ignored by html5. Beyond the cap it is left out, so it cannot close in the output
            // an element that was still open in the input (the dropped ones are missing there).
            None if self.kept < self.stack.len() => self.drop_tag(at, end),
            None => {}
        }
    }

    /// The open element an end tag `name` closes (at most [`MAX_WALK`] down), as html5
    /// decides; `None` when html5 ignores it.
    fn end_match(&mut self, name: &str, at: usize) -> Option<usize> {
        if self.stack.last().is_some_and(|o| o.foreign) {
            if name == "p" {
                // Breaks out of foreign content, then read as HTML.
                self.break_out(at);
            } else {
                // The nearest foreign element of that name, above any HTML element; past one,
                // html5 reads the end tag as HTML.
                for (idx, o) in self.stack.iter().enumerate().rev().take(MAX_WALK) {
                    if !o.foreign {
                        break;
                    }
                    if o.name == name {
                        return Some(idx);
                    }
                }
            }
        }
        match name {
            "p" => self.find(|n| n == "p", |n| SCOPE.contains(&n) || n == "button"),
            "li" => self.find(
                |n| n == "li",
                |n| SCOPE.contains(&n) || n == "ol" || n == "ul",
            ),
            "body" | "html" => None,
            "form" => self
                .stack
                .last()
                .is_some_and(|o| o.name == "form")
                .then(|| self.stack.len() - 1),
            "template" => self.find(|n| n == "template", |_| false),
            n if is_heading(n) => self.find(is_heading, |n| SCOPE.contains(&n)),
            n if TABLE_PARTS.contains(&n) => {
                self.find(|o| o == n, |o| matches!(o, "html" | "table" | "template"))
            }
            n if SCOPED_END.contains(&n) => self.find(|o| o == n, |o| SCOPE.contains(&o)),
            // Any other end tag, formatting elements included (when nothing special is open
            // above them, html5's adoption agency closes them just like this).
            n => self.find(|o| o == n, |o| SPECIAL.contains(&o)),
        }
    }
}

/// Whether a start tag's attributes hide its element, as the walk in `dom` decides. The tag is
/// parsed alone (as a `div`) only when it can hide at all.
fn attrs_hide(src: &str, tag: &Tag) -> bool {
    if !attrs_may_hide(src, tag) {
        return false;
    }
    let attrs = &src[tag.name_end..];
    let doc = Html::parse_fragment(&format!("<div{attrs}"));
    doc.root_element()
        .children()
        .find_map(ElementRef::wrap)
        .is_none_or(|e| dom::attrs_hide(e.value()))
}

/// Whether a start tag's attributes can hide its element at all (a quick check: every way the
/// walk hides by attribute names one of these words; values may hide behind character
/// references).
fn attrs_may_hide(src: &str, tag: &Tag) -> bool {
    let lower = src[tag.name_end..].to_ascii_lowercase();
    ["hidden", "none", "collapse", "mso-hide", "toc", "&"]
        .iter()
        .any(|k| lower.contains(k))
}

fn bytecount(b: &[u8], c: u8) -> usize {
    b.iter().filter(|&&x| x == c).count()
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0C | b'\r' | b' ')
}

/// The length of a comment, doctype, processing instruction, bogus comment or empty end tag
/// (`</>`) at the start of `s`, as html5 tokenizes them; `None` when `s` does not start with
/// one. Unterminated: the rest of the input.
fn markup_declaration(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let to_gt = |from: usize| s[from..].find('>').map_or(s.len(), |p| from + p + 1);
    if let Some(body) = s.strip_prefix("<!--") {
        // `<!-->` and `<!--->` are whole (empty) comments; else up to `-->` or `--!>`.
        if body.starts_with('>') {
            return Some(5);
        }
        if body.starts_with("->") {
            return Some(6);
        }
        let end = [("-->", 3), ("--!>", 4)]
            .iter()
            .filter_map(|(t, n)| body.find(t).map(|p| p + n))
            .min();
        return Some(end.map_or(s.len(), |e| 4 + e));
    }
    if s.starts_with("<!") || s.starts_with("<?") {
        // Doctypes, and everything else html5 reads as a bogus comment (CDATA in HTML
        // content, processing instructions), end at the first `>`.
        return Some(to_gt(2));
    }
    if s.starts_with("</") {
        return match b.get(2) {
            Some(b'>') => Some(3),
            Some(c) if !c.is_ascii_alphabetic() => Some(to_gt(2)),
            _ => None,
        };
    }
    None
}

/// Offset in `b` (from `from`) of the first end tag `</name` that html5 accepts as ending raw
/// text: followed by whitespace, `/` or `>`.
fn find_end_tag(b: &[u8], from: usize, name: &str) -> Option<usize> {
    let n = name.len();
    let mut i = from;
    while i + 2 + n < b.len() {
        if b[i] == b'<'
            && b[i + 1] == b'/'
            && b[i + 2..i + 2 + n].eq_ignore_ascii_case(name.as_bytes())
            && (is_space(b[i + 2 + n]) || matches!(b[i + 2 + n], b'/' | b'>'))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Offset of the `</script` that ends script data, following html5's escape states: inside
/// `<!--`, a `<script>` starts a double-escaped part in which `</script>` does not end it.
fn script_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let tag_at = |i: usize, close: bool| {
        let (open, skip) = if close {
            (&b"</script"[..], 8)
        } else {
            (&b"<script"[..], 7)
        };
        b.len() > i + skip
            && b[i..i + skip].eq_ignore_ascii_case(open)
            && (is_space(b[i + skip]) || matches!(b[i + skip], b'/' | b'>'))
    };
    #[derive(PartialEq)]
    enum State {
        Data,
        Escaped,
        DoubleEscaped,
    }
    let mut state = State::Data;
    let mut i = 0;
    while i < b.len() {
        match state {
            State::Data => {
                if b[i..].starts_with(b"<!--") {
                    state = State::Escaped;
                    // `<!-->` and `<!--->` end the escape at once.
                    i += 4;
                    if b[i..].starts_with(b">") || b[i..].starts_with(b"->") {
                        state = State::Data;
                    }
                    continue;
                }
                if tag_at(i, true) {
                    return Some(i);
                }
            }
            State::Escaped => {
                if b[i..].starts_with(b"-->") {
                    state = State::Data;
                    i += 3;
                    continue;
                }
                if tag_at(i, true) {
                    return Some(i);
                }
                if tag_at(i, false) {
                    state = State::DoubleEscaped;
                    i += 7;
                    continue;
                }
            }
            State::DoubleEscaped => {
                if b[i..].starts_with(b"-->") {
                    state = State::Data;
                    i += 3;
                    continue;
                }
                if tag_at(i, true) {
                    state = State::Escaped;
                    i += 8;
                    continue;
                }
            }
        }
        i += 1;
    }
    None
}

/// A start or end tag at the start of the input, tokenized as html5 does.
struct Tag {
    /// Lower-cased (ASCII) name: everything up to whitespace, `/` or `>`.
    name: String,
    /// Bytes of `<` (or `</`) and the name.
    name_end: usize,
    closing: bool,
    /// Ends with `/>`.
    self_closing: bool,
    /// Bytes up to and including the closing `>`.
    len: usize,
}

impl Tag {
    fn parse(s: &str) -> Option<Tag> {
        let b = s.as_bytes();
        let closing = b.get(1) == Some(&b'/');
        let start = if closing { 2 } else { 1 };
        if !b.get(start).is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let mut i = start;
        while i < b.len() && !is_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
            i += 1;
        }
        // Both ends are ASCII bytes (or the end): char boundaries.
        let name = s[start..i].to_ascii_lowercase();
        let name_end = i;
        let done = |i: usize, self_closing: bool| {
            Some(Tag {
                name: name.clone(),
                name_end,
                closing,
                self_closing,
                len: i + 1,
            })
        };
        let skip_space = |mut i: usize| {
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            i
        };
        loop {
            i = skip_space(i);
            match b.get(i)? {
                b'>' => return done(i, false),
                b'/' if b.get(i + 1) == Some(&b'>') => return done(i + 1, true),
                b'/' => i += 1,
                _ => {
                    // An attribute name (its first character may be `=`), then maybe a value.
                    i += 1;
                    while i < b.len() && !is_space(b[i]) && !matches!(b[i], b'/' | b'>' | b'=') {
                        i += 1;
                    }
                    let j = skip_space(i);
                    if b.get(j) != Some(&b'=') {
                        i = j;
                        continue;
                    }
                    i = skip_space(j + 1);
                    match b.get(i)? {
                        q @ (b'"' | b'\'') => {
                            let q = *q;
                            i += 1 + b[i + 1..].iter().position(|&c| c == q)? + 1;
                        }
                        b'>' => return done(i, false),
                        _ => {
                            while i < b.len() && !is_space(b[i]) && b[i] != b'>' {
                                i += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cap(html: &str, n: usize) -> (Cow<'_, str>, bool) {
        cap_depth(html, n, true)
    }

    #[test]
    fn shallow_html_is_borrowed_untouched() {
        let html = "<div><p>a <b>b</b></p><br><img src=x /></div>";
        let (out, flagged) = cap(html, 3);
        assert!(matches!(out, Cow::Borrowed(_)) && !flagged);
    }

    #[test]
    fn deep_nesting_is_flattened_and_text_kept() {
        let html = format!("{}deep text{}", "<div>".repeat(10), "</div>".repeat(10));
        let (out, flagged) = cap(&html, 4);
        assert!(flagged);
        assert_eq!(out, "<div><div><div><div>deep text</div></div></div></div>");
    }

    #[test]
    fn comments_raw_text_and_quotes_do_not_count() {
        let html = "<div title='<div>'><!-- <div><div> --><script>if (a<b) { '<div>' }</script>\
                    <p>x</p></div>";
        let (out, flagged) = cap(html, 2);
        assert!(!flagged, "{out}");
    }

    #[test]
    fn unterminated_input_never_panics() {
        for s in [
            "<",
            "<div",
            "<div class='",
            "<div a=",
            "<div a= ",
            "<!--",
            "<!-",
            "<script>",
            "<script><!--",
            "<script><!--<script>",
            "</",
            "</x",
            "<<<>>>",
            "<a/",
            "<textarea></textarea",
            "é<é</é",
        ] {
            let deep = format!("{}{s}", "<i>".repeat(5));
            let _ = cap(&deep, 2);
            let _ = cap_depth(&deep, 2, false);
        }
    }

    /// Optional end tags are implied as html5 implies them: 300 items or paragraphs without
    /// end tags are one level deep, not 300. See: issue 12 (the headings after such a list were
    /// flattened into its last item).
    #[test]
    fn implied_end_tags_do_not_count() {
        let items: String = (0..300).map(|i| format!("<li>item {i}")).collect();
        let html = format!("<ul>{items}</ul><h2>Heading</h2>");
        assert!(!cap(&html, 8).1);
        let paras: String = (0..300).map(|i| format!("<p>para <b>{i}</b>")).collect();
        assert!(!cap(&paras, 8).1);
        let rows: String = (0..300).map(|i| format!("<tr><td>{i}<td>x")).collect();
        assert!(!cap(&format!("<table>{rows}</table>"), 8).1);
        let defs: String = (0..300).map(|i| format!("<dt>{i}<dd>x")).collect();
        assert!(!cap(&format!("<dl>{defs}</dl>"), 8).1);
    }

    /// End tags html5 ignores (nothing of that name open, or out of scope) and self-closing
    /// non-void tags (which html5 opens) cannot hide nesting from the cap. See: issue 12
    /// (100k `<div></i>` parsed for 12 s in release).
    #[test]
    fn ignored_end_tags_and_self_closing_do_not_hide_nesting() {
        for unit in [
            "<div></i>",
            "<div/>",
            "<div></span>",
            "<div><table><td></div>",
        ] {
            let html = format!("{}x", unit.repeat(1_000));
            assert!(cap(&html, 64).1, "{unit}");
        }
        // Foreign content ends where html5 breaks out of it, and a column group at once.
        for unit in ["<svg><span></svg>", "<math><mi><div></math>"] {
            let html = format!("{}x", unit.repeat(1_000));
            assert!(cap(&html, 64).1, "{unit}");
        }
        assert!(
            !cap(
                &format!("<table>{}</table>", "<colgroup><col>".repeat(100)),
                8
            )
            .1
        );
        // A cell far below an open table is a cell (html5 closes what is open above it).
        let html = format!(
            "<table><tr><td>{}<td hidden><xmp>SECRET",
            "<div>".repeat(100)
        );
        assert!(!cap(&html, 8).0.contains("SECRET"));
        // A plaintext past the cap, hidden or not, keeps the rest of the input as its text.
        for plain in [
            "<p hidden><plaintext></p>SECRET",
            "<plaintext hidden></plaintext>SECRET",
        ] {
            let html = format!("{}{plain}", "<div>".repeat(10));
            assert!(!cap(&html, 4).0.contains("SECRET"), "{plain}");
        }
        // Past the cap, a hidden element closed by an end tag around it hides the rest.
        let html = format!(
            "{}<select><input><span hidden></select>SECRET",
            "<div>".repeat(10)
        );
        assert!(!cap(&html, 4).0.contains("SECRET"));
        // Comments end where html5 ends them.
        for unit in [
            "<!--><div>-->",
            "<!---><div>-->",
            "<![CDATA[>]]><div>",
            "</ x><div>",
        ] {
            let html = format!("{}x", unit.repeat(1_000));
            assert!(cap(&html, 64).1, "{unit}");
        }
    }

    /// Beyond the cap, hiding elements go whole: their content never becomes text.
    /// See: issue 12 (a script 300 levels deep was indexed as text).
    #[test]
    fn hidden_content_beyond_the_cap_is_dropped() {
        for hidden in [
            "<script>SECRET</script>",
            "<script><!--<script></script>SECRET--></script>",
            "<style>SECRET</style>",
            "<div hidden><p>SECRET</div>",
            "<span style=\"display:none\">SECRET</span>",
            "<p style=\"visibility:collapse\"><textarea>SECRET</textarea></p>",
            "<p style=\"mso-hide:all\">SECRET</p>",
            "<p style=\"display:&#110;one\">SECRET</p>",
            "<div class=\"toc\"><ul><li>SECRET</ul></div>",
            "<template><p>SECRET</template>",
            "<select><option>SECRET</select>",
        ] {
            let html = format!("{}<p>before</p>{hidden}<p>after</p>", "<div>".repeat(10));
            let (out, flagged) = cap(&html, 4);
            assert!(flagged);
            assert!(!out.contains("SECRET"), "{hidden}: {out}");
            assert!(
                out.contains("before") && out.contains("after"),
                "{hidden}: {out}"
            );
        }
    }

    /// A hiding formatting element past the cap that something else closes is re-opened by
    /// html5 around what follows: all that follows is hidden. Found by `normalize_tag_soup`
    /// at 200k cases (issue 12).
    #[test]
    fn a_hiding_formatting_element_closed_early_hides_the_rest() {
        let html = format!(
            "{}deep<article><b class=\"toc\"></article><div>SECRET</div>",
            "<div>".repeat(10)
        );
        let (out, flagged) = cap(&html, 4);
        assert!(flagged);
        assert!(out.contains("deep") && !out.contains("SECRET"), "{out}");
        // Closed by its own end tag, only its content goes.
        let html = format!(
            "{}deep<b class=\"toc\">SECRET</b><div>after</div>",
            "<div>".repeat(10)
        );
        let (out, _) = cap(&html, 4);
        assert!(out.contains("after") && !out.contains("SECRET"), "{out}");
    }

    /// Inside foreign content a hiding element's body is read as markup: a `</script>` in an
    /// attribute does not end it. Found by `normalize_tag_soup` at 200k cases (issue 12).
    #[test]
    fn a_hiding_element_in_foreign_content_is_not_cut_short() {
        let html = format!(
            "{}deep<math><script></p><style><p title=\"</script>\"><div>SECRET</div>",
            "<div>".repeat(10)
        );
        let (out, flagged) = cap(&html, 4);
        assert!(flagged);
        assert!(out.contains("deep") && !out.contains("SECRET"), "{out}");
    }

    /// A raw text element past the cap stays whole: its text is not read as markup (which
    /// would nest without the cap seeing it).
    #[test]
    fn raw_text_past_the_cap_stays_text() {
        let inner = "<div>".repeat(1_000);
        let html = format!("{}<textarea>{inner}</textarea>after", "<div>".repeat(10));
        let (out, flagged) = cap(&html, 4);
        assert!(flagged);
        assert!(
            out.contains(&format!("<textarea>{inner}</textarea>after")),
            "{out}"
        );
    }

    /// With drop selectors, nothing beyond the cap is kept: they cannot be checked there.
    #[test]
    fn without_deep_text_everything_beyond_the_cap_goes() {
        let html = format!(
            "{}<p>deep</p>{}shallow",
            "<div>".repeat(10),
            "</div>".repeat(6)
        );
        let (out, flagged) = cap_depth(&html, 4, false);
        assert!(flagged);
        assert!(!out.contains("deep") && out.contains("shallow"), "{out}");
    }

    /// Cases for the property below: `HELPDEX_FUZZ_CASES` for a long run, else 256.
    fn cases() -> u32 {
        std::env::var("HELPDEX_FUZZ_CASES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(256)
    }

    /// The deepest nesting html5ever builds for `html`.
    fn real_depth(html: &str) -> usize {
        let doc = Html::parse_fragment(html);
        doc.tree
            .nodes()
            .map(|n| n.ancestors().count())
            .max()
            .unwrap_or(0)
    }

    fn piece() -> impl Strategy<Value = String> {
        use proptest::sample::select;
        #[rustfmt::skip]
        let tags = select(vec![
            "p", "div", "span", "b", "i", "a", "li", "ul", "ol", "dl", "dt", "dd", "table",
            "tbody", "thead", "tr", "td", "th", "caption", "colgroup", "h2", "h3", "pre",
            "button", "select", "option", "optgroup", "form", "svg", "math", "mi", "g",
            "foreignObject", "template", "head", "body", "html", "frameset", "ruby", "rt",
            "nobr", "font", "script", "style", "textarea", "xmp", "iframe", "noscript",
            "plaintext", "title", "br", "img", "hr", "x-y",
        ]);
        prop_oneof![
            6 => (tags.clone(), select(vec!["", " class=x", " hidden", "/", " a='>'"]))
                .prop_map(|(t, a)| format!("<{t}{a}>")),
            3 => tags.prop_map(|t| format!("</{t}>")),
            2 => select(vec!["x", " ", "<!--", "-->", "<!-->", "</ x>", "<![CDATA[>", "]]>",
                "<", "</>", "'", "\""]).prop_map(str::to_string),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: cases(),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// The cap bounds what html5ever really builds from its output (up to the levels html5
        /// adds on its own, a `tbody` and `tr` per table), whatever the markup: the parse stays
        /// linear. See: issue 12.
        #[test]
        fn fuzz_cap_bounds_real_depth(v in proptest::collection::vec(piece(), 0..600)) {
            let html = v.concat();
            let (out, _) = cap_depth(&html, 24, true);
            let d = real_depth(&out);
            proptest::prop_assert!(d <= 4 * 24 + 16, "depth {} from {:?}", d, html);
        }
    }

    #[test]
    fn tags_are_tokenized_as_html5_does() {
        let t = Tag::parse("<p title=x'y class=\"a>b\" data-x = 'q' / >rest").unwrap();
        assert_eq!(t.name, "p");
        assert_eq!(t.len, "<p title=x'y class=\"a>b\" data-x = 'q' / >".len());
        assert_eq!(Tag::parse("<scr<script>").unwrap().name, "scr<script");
        assert!(Tag::parse("<svg/>").unwrap().self_closing);
        assert!(!Tag::parse("<a href=/x/>").unwrap().self_closing);
        assert!(Tag::parse("<1>").is_none());
        assert_eq!(markup_declaration("<!-->x"), Some(5));
        assert_eq!(markup_declaration("<!-- a --!> b"), Some(11));
        assert_eq!(markup_declaration("</<script>x"), Some(10));
        assert_eq!(markup_declaration("</>"), Some(3));
        assert_eq!(markup_declaration("</p>"), None);
        assert_eq!(script_end("a</scripts></script>"), Some(11));
        assert_eq!(script_end("<!--<script></script>--></script >"), Some(24));
        assert_eq!(script_end("<!--></script>"), Some(5));
    }
}
