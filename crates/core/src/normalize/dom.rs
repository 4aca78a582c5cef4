//! The one walk over the parsed tree: document order, iterative (an explicit stack, so nesting
//! depth cannot overflow the call stack), each node visited once, output built as it goes.
//!
//! The walk produces *sections* (a heading path, the heading's real anchor, and the section's
//! lines) plus the article-to-article links; `passages` then cuts sections into passages.
//! Lines are the unit of meaning: a paragraph, a list item (`- item`, `1. step`, nested items
//! indented by two spaces per level), a table row, or a whole preformatted block.

use std::collections::HashSet;

use ego_tree::NodeRef;
use scraper::node::Element;
use scraper::{ElementRef, Html, Node, Selector};

use super::ArticleLink;
use super::links::article_target;
use super::tables::{Cell, Table};
use super::text::{Class, Line, classify, is_pictographic, trim_pre};

/// Text under one heading (or before the first heading, with an empty path).
#[derive(Debug)]
pub(crate) struct Section {
    pub(crate) path: Vec<String>,
    pub(crate) anchor: Option<String>,
    pub(crate) lines: Vec<String>,
}

/// Everything the walk found.
#[derive(Debug, Default)]
pub(crate) struct Extract {
    pub(crate) sections: Vec<Section>,
    pub(crate) links: Vec<ArticleLink>,
    /// Set by the caller when the nesting cap flattened the body.
    pub(crate) flattened: bool,
}

/// Walks the parsed fragment once. `drop` elements (and everything inside them) are skipped.
pub(crate) fn extract(doc: &Html, drop: &[Selector]) -> Extract {
    let mut w = Walker::new(drop);
    let root = *doc.root_element();
    let mut stack: Vec<(NodeRef<Node>, Frame)> = Vec::new();
    let mut next = root.first_child();
    loop {
        let node = match next {
            Some(n) => n,
            None => match stack.pop() {
                Some((parent, frame)) => {
                    w.close(frame);
                    next = parent.next_sibling();
                    continue;
                }
                None => break,
            },
        };
        next = node.next_sibling();
        match node.value() {
            Node::Text(t) => w.text(&t.text),
            Node::Element(el) => {
                let attrs = Attrs::of(el);
                if w.is_dropped(el, &attrs, || ElementRef::wrap(node)) {
                    continue;
                }
                let frame = w.open(el, &attrs);
                match node.first_child() {
                    Some(child) => {
                        stack.push((node, frame));
                        next = Some(child);
                    }
                    None => w.close(frame),
                }
            }
            // Comments (including Word's conditional comments), doctypes, processing instructions.
            _ => {}
        }
    }
    w.finish()
}

/// Deepest list nesting shown as indentation; deeper items stay at this indent, so a hostile
/// nesting cannot turn one item into kilobytes of spaces.
const MAX_LIST_INDENT: usize = 10;

/// Elements whose content is never shown as text in an article.
pub(super) fn is_dropped_tag(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "iframe"
            | "object"
            | "embed"
            | "svg"
            | "canvas"
            | "video"
            | "audio"
            | "head"
            | "title"
            | "meta"
            | "link"
            | "base"
            | "select"
            | "datalist"
            | "xml"
            | "nav"
            | "noembed"
            | "noframes"
    )
}

/// Elements that start and end a line.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "section"
            | "article"
            | "aside"
            | "header"
            | "footer"
            | "main"
            | "blockquote"
            | "figure"
            | "figcaption"
            | "address"
            | "center"
            | "details"
            | "summary"
            | "dialog"
            | "dl"
            | "dt"
            | "dd"
            | "fieldset"
            | "legend"
            | "form"
            | "hgroup"
            | "hr"
            | "caption"
            | "tbody"
            | "tfoot"
            | "colgroup"
            | "option"
            | "dir"
            | "output"
    )
}

/// The attributes every element is checked for, read in one pass.
struct Attrs<'a> {
    style: Option<&'a str>,
    hidden: bool,
    toc_class: bool,
}

impl<'a> Attrs<'a> {
    fn of(el: &'a Element) -> Self {
        let mut a = Attrs {
            style: None,
            hidden: false,
            toc_class: false,
        };
        for (name, value) in el.attrs() {
            match name {
                "style" => a.style = Some(value),
                "hidden" => a.hidden = true,
                "class" => a.toc_class = value.split_ascii_whitespace().any(is_toc_class),
                _ => {}
            }
        }
        a
    }
}

/// Whether an element's attributes hide it and everything inside it (`hidden`, a hiding inline
/// style, a table-of-contents class); its name is checked by [`is_dropped_tag`].
pub(super) fn attrs_hide(el: &Element) -> bool {
    let a = Attrs::of(el);
    a.hidden || a.toc_class || a.style.is_some_and(style_hides)
}

/// Class names of table-of-contents containers (Zendesk themes and TOC apps).
fn is_toc_class(c: &str) -> bool {
    c.eq_ignore_ascii_case("toc")
        || c.eq_ignore_ascii_case("table-of-contents")
        || c.eq_ignore_ascii_case("article-toc")
        || c.eq_ignore_ascii_case("toc-container")
        || c.eq_ignore_ascii_case("zd-toc")
}

/// Iterates the `property: value` declarations of an inline style, values without `!important`.
fn declarations(style: &str) -> impl Iterator<Item = (&str, &str)> {
    style.split(';').filter_map(|d| {
        let (p, v) = d.split_once(':')?;
        let v = v.trim();
        let v = match v.len().checked_sub(10) {
            Some(i) if v.is_char_boundary(i) && v[i..].eq_ignore_ascii_case("!important") => {
                v[..i].trim_end()
            }
            _ => v,
        };
        Some((p.trim(), v))
    })
}

/// `display:none`, `visibility:hidden` and Word's `mso-hide:all`, any spacing or case.
fn style_hides(style: &str) -> bool {
    declarations(style).any(|(p, v)| {
        (p.eq_ignore_ascii_case("display") && v.eq_ignore_ascii_case("none"))
            || (p.eq_ignore_ascii_case("visibility")
                && (v.eq_ignore_ascii_case("hidden") || v.eq_ignore_ascii_case("collapse")))
            || (p.eq_ignore_ascii_case("mso-hide") && v.eq_ignore_ascii_case("all"))
    })
}

/// Whether an inline style makes text bold (`Some(true)`), explicitly not bold (`Some(false)`,
/// as in Google Docs' `<b style="font-weight:normal">` wrapper), or says nothing.
fn style_bold(style: &str) -> Option<bool> {
    let mut bold = None;
    for (p, v) in declarations(style) {
        if p.eq_ignore_ascii_case("font-weight") {
            bold = match v.to_ascii_lowercase().as_str() {
                "bold" | "bolder" => Some(true),
                "normal" | "lighter" => Some(false),
                n => n.parse::<u32>().ok().map(|w| w >= 600),
            };
        }
    }
    bold
}

/// Elements that begin a line of their own.
fn starts_block(name: &str) -> bool {
    is_block(name)
        || heading_level(name).is_some()
        || matches!(
            name,
            "ul" | "ol"
                | "menu"
                | "li"
                | "pre"
                | "listing"
                | "xmp"
                | "plaintext"
                | "table"
                | "thead"
                | "tr"
                | "td"
                | "th"
        )
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// An attribute's value, compared by name without interning the name as an atom
/// (`Element::attr` does, which costs more than the few attributes an element has).
fn attr<'a>(el: &'a Element, name: &str) -> Option<&'a str> {
    el.attrs().find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty()).map(str::to_string)
}

/// What closing an element must undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inline,
    Block,
    Heading,
    List,
    Item,
    Pre,
    Table,
    Head,
    Cell,
    HashLink,
    ArticleLink,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: Kind,
    /// Bold state to restore, when this element changed it.
    bold: Option<bool>,
}

struct HeadingCapture {
    level: u8,
    anchor: Option<String>,
    text: Line,
}

struct ListCtx {
    ordered: bool,
    next: i64,
    /// No letters seen so far outside same-page `#…` links.
    toc: bool,
    /// At least one same-page `#…` link seen.
    hash_links: bool,
    /// Where this list's lines start: (cell depth, line count in that sink).
    mark: (usize, usize),
}

struct CellState {
    th: bool,
    colspan: usize,
    any_text: bool,
    all_bold: bool,
    outer_list_base: usize,
}

struct LinkCapture {
    article_id: u64,
    locale: Option<String>,
    text: Line,
}

struct Walker<'s> {
    drop: &'s [Selector],
    sections: Vec<Section>,
    /// Open headings, outermost first: (level, text).
    path: Vec<(u8, String)>,
    /// Level of the heading the current section is under; 0 for the intro.
    level: u8,
    anchor: Option<String>,
    /// Lines of the current section.
    section: Vec<String>,
    /// Lines of open table cells, innermost last; text goes to the innermost.
    cell_lines: Vec<Vec<String>>,
    cells: Vec<CellState>,
    tables: Vec<Table>,
    line: Line,
    heading: Option<HeadingCapture>,
    lists: Vec<ListCtx>,
    /// `lists.len()` when the innermost cell opened: lists outside a cell do not indent it.
    list_base: usize,
    /// Marker for the next line started (`- `, `2. `, with indentation).
    marker: Option<String>,
    pre: u32,
    hash_links: u32,
    link: Option<LinkCapture>,
    links: Vec<ArticleLink>,
    seen_links: HashSet<(u64, Option<String>)>,
    bold: bool,
}

impl<'s> Walker<'s> {
    fn new(drop: &'s [Selector]) -> Self {
        Walker {
            drop,
            sections: Vec::new(),
            path: Vec::new(),
            level: 0,
            anchor: None,
            section: Vec::new(),
            cell_lines: Vec::new(),
            cells: Vec::new(),
            tables: Vec::new(),
            line: Line::default(),
            heading: None,
            lists: Vec::new(),
            list_base: 0,
            marker: None,
            pre: 0,
            hash_links: 0,
            link: None,
            links: Vec::new(),
            seen_links: HashSet::new(),
            bold: false,
        }
    }

    fn is_dropped<'a>(
        &self,
        el: &Element,
        attrs: &Attrs,
        node: impl FnOnce() -> Option<ElementRef<'a>>,
    ) -> bool {
        if is_dropped_tag(el.name())
            || attrs.hidden
            || attrs.toc_class
            || attrs.style.is_some_and(style_hides)
        {
            return true;
        }
        if self.drop.is_empty() {
            return false;
        }
        node().is_some_and(|e| self.drop.iter().any(|s| s.matches(&e)))
    }

    /// Where finished lines go: the innermost open cell, else the current section.
    fn sink(&mut self) -> &mut Vec<String> {
        self.cell_lines.last_mut().unwrap_or(&mut self.section)
    }

    /// Ends the current line (a block boundary).
    fn flush(&mut self) {
        if let Some(l) = &mut self.link {
            l.text.space();
        }
        if let Some(h) = &mut self.heading {
            h.text.space();
            return;
        }
        if self.pre > 0 {
            if !self.line.is_empty() && !self.line.buf.ends_with('\n') {
                self.line.push_raw('\n');
            }
            return;
        }
        if self.line.is_empty() {
            self.line.clear();
        } else {
            let l = self.line.take();
            self.sink().push(l);
        }
    }

    /// Called before the first visible character of a line: list marker or indentation.
    fn start_line(&mut self) {
        if let Some(m) = self.marker.take() {
            self.line.push_prefix(&m);
        } else {
            let depth = self
                .lists
                .len()
                .saturating_sub(self.list_base)
                .min(MAX_LIST_INDENT);
            for _ in 0..depth {
                self.line.push_prefix("  ");
            }
        }
    }

    /// Appends a text node. Runs of printable ASCII (most of any article) are copied as whole
    /// slices; other characters go through [`classify`] one by one.
    fn text(&mut self, s: &str) {
        let raw = self.pre > 0 && self.heading.is_none();
        if !raw && self.text_fast(s) {
            return;
        }
        let mut visible = false;
        let mut letters = false;
        let mut prev = '\0';
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_graphic() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_graphic() {
                    i += 1;
                }
                // ASCII bytes delimit the run, so both ends are char boundaries.
                let run = &s[start..i];
                visible = true;
                letters = letters || run.bytes().any(|b| b.is_ascii_alphabetic());
                self.keep_str(run, raw);
                prev = char::from(bytes[i - 1]);
                continue;
            }
            if bytes[i].is_ascii() {
                // ASCII whitespace and controls, without decoding.
                match bytes[i] {
                    b' ' | 0x0B | 0x0C => self.whitespace(Class::Space, raw),
                    b'\n' => self.whitespace(Class::Newline, raw),
                    b'\t' => self.whitespace(Class::Tab, raw),
                    _ => {}
                }
                prev = char::from(bytes[i]);
                i += 1;
                continue;
            }
            let Some(c) = s.get(i..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            i += c.len_utf8();
            let class = match classify(c) {
                Class::Drop
                    if c == '\u{200D}'
                        && is_pictographic(prev)
                        && s.get(i..)
                            .and_then(|r| r.chars().next())
                            .is_some_and(is_pictographic) =>
                {
                    Class::Keep
                }
                k => k,
            };
            prev = c;
            match class {
                Class::Drop => {}
                Class::Keep => {
                    visible = true;
                    letters = letters || c.is_alphabetic();
                    self.keep_char(c, raw);
                }
                ws => self.whitespace(ws, raw),
            }
        }
        if visible && let Some(cell) = self.cells.last_mut() {
            cell.any_text = true;
            cell.all_bold &= self.bold;
        }
        if letters
            && self.hash_links == 0
            && let Some(l) = self.lists.last_mut()
        {
            l.toc = false;
        }
    }

    /// The common cases, without a per-byte loop: whitespace-only nodes, and nodes of printable
    /// ASCII whose words are separated by single spaces. Returns false to take the general path.
    fn text_fast(&mut self, s: &str) -> bool {
        let bytes = s.as_bytes();
        if bytes
            .iter()
            .all(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
        {
            if !s.is_empty() {
                self.whitespace(Class::Space, false);
            }
            return true;
        }
        if !bytes.iter().all(|b| matches!(b, 0x20..=0x7E)) {
            return false;
        }
        let trimmed = s.trim_matches(' ');
        if trimmed.contains("  ") {
            return false;
        }
        if trimmed.len() < s.len() && s.starts_with(' ') {
            self.whitespace(Class::Space, false);
        }
        self.keep_str(trimmed, false);
        if s.ends_with(' ') {
            self.whitespace(Class::Space, false);
        }
        if let Some(cell) = self.cells.last_mut() {
            cell.any_text = true;
            cell.all_bold &= self.bold;
        }
        if self.hash_links == 0
            && let Some(l) = self.lists.last_mut()
            && l.toc
            && trimmed.bytes().any(|b| b.is_ascii_alphabetic())
        {
            l.toc = false;
        }
        true
    }

    fn keep_str(&mut self, run: &str, raw: bool) {
        if let Some(l) = &mut self.link {
            l.text.push_str(run);
        }
        if let Some(h) = &mut self.heading {
            h.text.push_str(run);
        } else if raw {
            self.line.push_raw_str(run);
        } else {
            if self.line.is_empty() {
                self.start_line();
            }
            self.line.push_str(run);
        }
    }

    fn keep_char(&mut self, c: char, raw: bool) {
        if let Some(l) = &mut self.link {
            l.text.push(c);
        }
        if let Some(h) = &mut self.heading {
            h.text.push(c);
        } else if raw {
            self.line.push_raw(c);
        } else {
            if self.line.is_empty() {
                self.start_line();
            }
            self.line.push(c);
        }
    }

    fn whitespace(&mut self, ws: Class, raw: bool) {
        if let Some(l) = &mut self.link {
            l.text.space();
        }
        if let Some(h) = &mut self.heading {
            h.text.space();
        } else if raw {
            self.line.push_raw(match ws {
                Class::Newline => '\n',
                Class::Tab => '\t',
                _ => ' ',
            });
        } else {
            self.line.space();
        }
    }

    fn open(&mut self, el: &Element, attrs: &Attrs) -> Frame {
        let name = el.name();
        let was_bold = self.bold;
        let style_bold = attrs.style.and_then(style_bold);
        self.bold = match name {
            "b" | "strong" => style_bold.unwrap_or(true),
            _ => style_bold.unwrap_or(was_bold),
        };
        let mut frame = Frame {
            kind: Kind::Inline,
            bold: (self.bold != was_bold).then_some(was_bold),
        };
        if self.heading.as_ref().is_some_and(|h| !h.text.is_empty()) && starts_block(name) {
            // A block inside a heading that already has text: the heading was never closed
            // (`<h2>Title<p>Body…`). End the heading here so the body reads as its content.
            self.close_heading();
        }
        if let Some(level) = heading_level(name) {
            if self.tables.is_empty() && self.heading.is_none() && self.pre == 0 {
                self.flush();
                if let Some(l) = self.lists.last_mut() {
                    l.toc = false;
                }
                self.heading = Some(HeadingCapture {
                    level,
                    anchor: non_empty(attr(el, "id")),
                    text: Line::default(),
                });
                frame.kind = Kind::Heading;
            } else {
                // Inside a table, another heading or preformatted text: an emphasized line.
                self.flush();
                frame.kind = Kind::Block;
            }
            return frame;
        }
        match name {
            "br" => {
                if let Some(h) = &mut self.heading {
                    h.text.space();
                } else if self.pre > 0 {
                    self.line.push_raw('\n');
                } else {
                    self.flush();
                }
            }
            "img" => {
                if let Some(alt) = attr(el, "alt") {
                    self.text(" ");
                    self.text(alt);
                    self.text(" ");
                }
            }
            "a" => {
                if let Some(h) = &mut self.heading
                    && h.anchor.is_none()
                {
                    h.anchor = non_empty(attr(el, "id")).or_else(|| non_empty(attr(el, "name")));
                }
                let href = attr(el, "href").unwrap_or("").trim();
                if href.len() > 1 && href.starts_with('#') {
                    self.hash_links += 1;
                    if let Some(l) = self.lists.last_mut() {
                        l.hash_links = true;
                    }
                    frame.kind = Kind::HashLink;
                } else if self.link.is_none()
                    && let Some((article_id, locale)) = article_target(href)
                {
                    self.link = Some(LinkCapture {
                        article_id,
                        locale,
                        text: Line::default(),
                    });
                    frame.kind = Kind::ArticleLink;
                }
            }
            "ul" | "ol" | "menu" => {
                self.flush();
                let ordered = name == "ol";
                let next = if ordered {
                    attr(el, "start")
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(1)
                } else {
                    1
                };
                let mark = (self.cell_lines.len(), self.sink().len());
                self.lists.push(ListCtx {
                    ordered,
                    next,
                    toc: true,
                    hash_links: false,
                    mark,
                });
                frame.kind = Kind::List;
            }
            "li" => {
                self.flush();
                let depth = self
                    .lists
                    .len()
                    .saturating_sub(self.list_base)
                    .clamp(1, MAX_LIST_INDENT);
                let mut marker = "  ".repeat(depth - 1);
                match self.lists.last_mut() {
                    Some(l) if l.ordered => {
                        let n = el
                            .attr("value")
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(l.next);
                        l.next = n.saturating_add(1);
                        marker.push_str(&n.to_string());
                        marker.push_str(". ");
                    }
                    _ => marker.push_str("- "),
                }
                self.marker = Some(marker);
                frame.kind = Kind::Item;
            }
            "pre" | "listing" | "xmp" | "plaintext" => {
                self.flush();
                self.pre += 1;
                frame.kind = Kind::Pre;
            }
            "table" => {
                self.flush();
                self.tables.push(Table::default());
                frame.kind = Kind::Table;
            }
            "thead" => {
                self.flush();
                if let Some(t) = self.tables.last_mut() {
                    t.in_head += 1;
                }
                frame.kind = Kind::Head;
            }
            "tr" => {
                self.flush();
                if let Some(t) = self.tables.last_mut() {
                    t.start_row();
                }
                frame.kind = Kind::Block;
            }
            "td" | "th" => {
                self.flush();
                if self.tables.is_empty() {
                    frame.kind = Kind::Block;
                } else {
                    let colspan = el
                        .attr("colspan")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(1);
                    self.cells.push(CellState {
                        th: name == "th",
                        colspan,
                        any_text: false,
                        all_bold: true,
                        outer_list_base: self.list_base,
                    });
                    self.cell_lines.push(Vec::new());
                    self.list_base = self.lists.len();
                    self.marker = None;
                    frame.kind = Kind::Cell;
                }
            }
            n if is_block(n) => {
                self.flush();
                frame.kind = Kind::Block;
            }
            _ => {}
        }
        frame
    }

    fn close(&mut self, frame: Frame) {
        if let Some(b) = frame.bold {
            self.bold = b;
        }
        match frame.kind {
            Kind::Inline => {}
            Kind::Block => self.flush(),
            Kind::Heading => self.close_heading(),
            Kind::List => {
                self.flush();
                self.marker = None;
                if let Some(list) = self.lists.pop() {
                    let (depth, len) = list.mark;
                    if list.toc && list.hash_links && depth == self.cell_lines.len() {
                        // A table of contents: navigation, not content.
                        self.sink().truncate(len);
                    } else if let Some(parent) = self.lists.last_mut() {
                        parent.toc &= list.toc;
                        parent.hash_links |= list.hash_links;
                    }
                }
            }
            Kind::Item => {
                self.flush();
                self.marker = None;
            }
            Kind::Pre => {
                self.pre = self.pre.saturating_sub(1);
                if self.pre == 0 {
                    let raw = self.line.take();
                    let text = trim_pre(&raw);
                    if !text.is_empty() {
                        let text = text.to_string();
                        self.sink().push(text);
                    }
                }
            }
            Kind::Table => {
                self.flush();
                if let Some(t) = self.tables.pop() {
                    let mut lines = Vec::new();
                    t.render(&mut lines);
                    self.sink().extend(lines);
                }
            }
            Kind::Head => {
                self.flush();
                if let Some(t) = self.tables.last_mut() {
                    t.in_head = t.in_head.saturating_sub(1);
                }
            }
            Kind::Cell => {
                self.flush();
                let lines = self.cell_lines.pop().unwrap_or_default();
                if let Some(state) = self.cells.pop() {
                    self.list_base = state.outer_list_base;
                    let cell = Cell {
                        lines,
                        th: state.th,
                        bold: state.any_text && state.all_bold,
                        colspan: state.colspan,
                    };
                    match self.tables.last_mut() {
                        Some(t) => t.current_row().cells.push(cell),
                        None => self.sink().extend(cell.lines),
                    }
                }
            }
            Kind::HashLink => self.hash_links = self.hash_links.saturating_sub(1),
            Kind::ArticleLink => {
                if let Some(mut l) = self.link.take() {
                    let key = (l.article_id, l.locale.clone());
                    if self.seen_links.insert(key) {
                        self.links.push(ArticleLink {
                            article_id: l.article_id,
                            locale: l.locale,
                            text: l.text.take(),
                        });
                    }
                }
            }
        }
    }

    fn close_heading(&mut self) {
        let Some(mut h) = self.heading.take() else {
            return;
        };
        let text = h.text.take();
        if text.is_empty() {
            // An empty heading (`<h2 id="h_…"> </h2>`) neither starts a section nor nests.
            return;
        }
        self.end_section(h.level);
        while self.path.last().is_some_and(|(l, _)| *l >= h.level) {
            self.path.pop();
        }
        self.path.push((h.level, text));
        self.level = h.level;
        self.anchor = h.anchor;
    }

    /// Closes the current section before a heading of `next_level` (0 at the end).
    ///
    /// A heading with nothing under it still ends a (text-less) section: the passage builder
    /// carries its text into the next passage, or keeps it as a passage of its own at the end,
    /// so no visible text escapes the index or the hash. An empty intro is no section.
    fn end_section(&mut self, _next_level: u8) {
        self.flush();
        let lines = std::mem::take(&mut self.section);
        if lines.is_empty() && self.level == 0 {
            return;
        }
        self.sections.push(Section {
            path: self.path.iter().map(|(_, t)| t.clone()).collect(),
            anchor: self.anchor.take(),
            lines,
        });
    }

    fn finish(mut self) -> Extract {
        if self.heading.is_some() {
            self.close_heading();
        }
        // Unbalanced state cannot happen with a parsed tree, but flush whatever is left.
        while let Some(lines) = self.cell_lines.pop() {
            self.section.extend(lines);
        }
        if self.pre > 0 {
            self.pre = 0;
            let raw = self.line.take();
            let text = trim_pre(&raw).to_string();
            if !text.is_empty() {
                self.section.push(text);
            }
        }
        self.end_section(0);
        Extract {
            sections: self.sections,
            links: self.links,
            flattened: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_parsing() {
        assert!(style_hides("display:none"));
        assert!(style_hides("color: red ;  DISPLAY :  None !IMPORTANT"));
        assert!(style_hides("visibility:hidden"));
        assert!(style_hides("mso-hide:all"));
        assert!(!style_hides("display: block; color: none"));
        assert!(!style_hides("displaynone"));
        assert_eq!(style_bold("font-weight:normal"), Some(false));
        assert_eq!(style_bold("font-weight: 700"), Some(true));
        assert_eq!(style_bold("font-weight:400;"), Some(false));
        assert_eq!(style_bold("color:red"), None);
    }
}
