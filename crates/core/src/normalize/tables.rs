//! Tables as header-aware rows, so a passage cut from the middle of a long table still says what
//! each cell means: `Plan: Pro | Price: 20 USD | Seats: 5`.
//!
//! A table is buffered while it is walked (its header decides how every row reads) and rendered
//! when it closes. Rules:
//! - header = the `thead` rows, else the first row when every non-empty cell in it is a `th` or
//!   entirely bold (Word and Google Docs tables mark headers with bold, not `th`);
//! - with a header and at least two columns, each body row reads `Header: value | …`;
//! - layout tables (one column, or no header) read as plain text: a row of short single-line
//!   cells becomes `a | b | c`, any other cell contributes its lines in order;
//! - nested tables are rendered inside their cell first, then read as that cell's lines;
//! - `colspan` advances the column (capped), `rowspan` is ignored.

/// Widest `colspan` honoured; larger values are clamped so a hostile attribute cannot make us
/// allocate a huge header row.
const MAX_COLSPAN: usize = 64;
/// Join of several lines inside one cell of a header-aware row.
const CELL_LINE_SEP: &str = "; ";

/// One table cell, rendered to lines.
#[derive(Debug, Default)]
pub(crate) struct Cell {
    pub(crate) lines: Vec<String>,
    /// A `th` element.
    pub(crate) th: bool,
    /// Every visible character of the cell was bold.
    pub(crate) bold: bool,
    pub(crate) colspan: usize,
}

impl Cell {
    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn is_header_like(&self) -> bool {
        self.th || self.bold
    }

    fn joined(&self, sep: &str) -> String {
        let mut s = String::new();
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                s.push_str(sep);
            }
            s.push_str(l.trim());
        }
        s
    }
}

/// One table row.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub(crate) cells: Vec<Cell>,
    /// Inside `thead`.
    pub(crate) head: bool,
}

/// A table being walked.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) rows: Vec<Row>,
    /// Depth of open `thead` elements.
    pub(crate) in_head: u32,
}

impl Table {
    /// The row cells are added to, opening one for cells outside any `tr` (html5ever always
    /// makes one, but this keeps the walk independent of that).
    pub(crate) fn current_row(&mut self) -> &mut Row {
        if self.rows.is_empty() {
            self.start_row();
        }
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    pub(crate) fn start_row(&mut self) {
        let head = self.in_head > 0;
        self.rows.push(Row {
            cells: Vec::new(),
            head,
        });
    }

    /// Renders the table into `out`, one line per element.
    pub(crate) fn render(self, out: &mut Vec<String>) {
        let mut rows: Vec<Row> = self
            .rows
            .into_iter()
            .filter(|r| r.cells.iter().any(|c| !c.is_empty()))
            .collect();
        let columns = rows
            .iter()
            .map(|r| r.cells.iter().map(span).sum::<usize>())
            .max()
            .unwrap_or(0);
        let mut head_rows = rows.iter().take_while(|r| r.head).count();
        if head_rows == 0 {
            // A first row holding one header-like cell over a wider table is a title, not labels:
            // it reads as its own line and the next row gets the chance to be the header.
            if columns >= 2
                && rows.len() > 1
                && rows[0].cells.iter().filter(|c| !c.is_empty()).count() == 1
                && rows[0]
                    .cells
                    .iter()
                    .all(|c| c.is_empty() || c.is_header_like())
            {
                let title = rows.remove(0);
                out.extend(title.cells.into_iter().flat_map(|c| c.lines));
            }
            // Bold marks a header only when it sets the first row apart: in a table that is
            // bold throughout (an unclosed `<b>` before it), no row is a header by boldness.
            let all = |r: &Row, f: fn(&Cell) -> bool| {
                r.cells.iter().filter(|c| !c.is_empty()).all(f)
                    && r.cells.iter().filter(|c| !c.is_empty()).count() >= 2
            };
            if rows.first().is_some_and(|r| {
                all(r, |c| c.th)
                    || (all(r, Cell::is_header_like)
                        && !rows.get(1).is_some_and(|n| all(n, |c| c.bold)))
            }) {
                head_rows = 1;
            }
        }
        if head_rows == 0 || columns < 2 {
            render_plain(&rows, out);
            return;
        }
        let labels = labels(&rows[..head_rows], columns);
        let body = &rows[head_rows..];
        if body.is_empty() {
            let line = labels
                .iter()
                .filter(|l| !l.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ");
            if !line.is_empty() {
                out.push(line);
            }
            return;
        }
        // A header label no body value reads under (its column empty in every row) is still
        // visible text: it goes on a line of its own before the rows.
        let mut used: Vec<&str> = Vec::new();
        for row in body {
            let mut col = 0;
            for cell in &row.cells {
                if !cell.is_empty() {
                    used.extend(labels.iter().skip(col).take(span(cell)).map(String::as_str));
                }
                col += span(cell);
            }
        }
        let mut unused: Vec<&str> = Vec::new();
        for l in &labels {
            if !l.is_empty() && !used.contains(&l.as_str()) && !unused.contains(&l.as_str()) {
                unused.push(l);
            }
        }
        if !unused.is_empty() {
            out.push(unused.join(" | "));
        }
        for row in body {
            let mut line = String::new();
            let mut col = 0;
            for cell in &row.cells {
                let value = cell.joined(CELL_LINE_SEP);
                let label = labels.get(col).map(String::as_str).unwrap_or("");
                col += span(cell);
                if value.is_empty() {
                    continue;
                }
                if !line.is_empty() {
                    line.push_str(" | ");
                }
                if !label.is_empty() && label != value {
                    line.push_str(label);
                    line.push_str(": ");
                }
                line.push_str(&value);
            }
            if !line.is_empty() {
                out.push(line);
            }
        }
    }
}

fn span(c: &Cell) -> usize {
    c.colspan.clamp(1, MAX_COLSPAN)
}

/// Column labels from the header rows; several header rows stack as `Top / Sub`.
fn labels(head: &[Row], columns: usize) -> Vec<String> {
    let mut labels = vec![String::new(); columns];
    for row in head {
        let mut col = 0;
        for cell in &row.cells {
            let text = cell.joined(" ");
            for label in labels.iter_mut().skip(col).take(span(cell)) {
                if text.is_empty() || *label == text {
                    continue;
                }
                if !label.is_empty() {
                    label.push_str(" / ");
                }
                label.push_str(&text);
            }
            col += span(cell);
        }
    }
    labels
}

/// Layout tables: cells in reading order.
fn render_plain(rows: &[Row], out: &mut Vec<String>) {
    for row in rows {
        let filled = row.cells.iter().filter(|c| !c.is_empty()).count();
        if filled >= 2 && row.cells.iter().all(|c| c.lines.len() <= 1) {
            let line = row
                .cells
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| c.lines[0].trim())
                .collect::<Vec<_>>();
            out.push(line.join(" | "));
        } else {
            for cell in &row.cells {
                out.extend(cell.lines.iter().cloned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(text: &str, th: bool) -> Cell {
        Cell {
            lines: if text.is_empty() {
                vec![]
            } else {
                vec![text.to_string()]
            },
            th,
            bold: false,
            colspan: 1,
        }
    }

    fn render(rows: Vec<Row>) -> Vec<String> {
        let mut out = Vec::new();
        Table { rows, in_head: 0 }.render(&mut out);
        out
    }

    #[test]
    fn header_row_labels_cells() {
        let out = render(vec![
            Row {
                cells: vec![cell("Plan", true), cell("Price", true)],
                head: false,
            },
            Row {
                cells: vec![cell("Pro", false), cell("20 USD", false)],
                head: false,
            },
            Row {
                cells: vec![cell("Free", false), cell("", false)],
                head: false,
            },
        ]);
        assert_eq!(out, ["Plan: Pro | Price: 20 USD", "Plan: Free"]);
    }

    /// A header over a column no row fills is kept as a line. Found by the fuzz target
    /// `normalize_visible_text_survives` (issue 12): its text was in no passage.
    #[test]
    fn header_of_an_empty_column_is_kept() {
        let out = render(vec![
            Row {
                cells: vec![cell("Plan", true), cell("Notes", true)],
                head: false,
            },
            Row {
                cells: vec![cell("Pro", false)],
                head: false,
            },
        ]);
        assert_eq!(out, ["Notes", "Plan: Pro"]);
    }

    #[test]
    fn colspan_shifts_labels_and_empty_corner_is_fine() {
        let mut wide = cell("Both", false);
        wide.colspan = 2;
        let out = render(vec![
            Row {
                cells: vec![cell("", false), cell("A", true), cell("B", true)],
                head: false,
            },
            Row {
                cells: vec![cell("x", true), wide],
                head: false,
            },
        ]);
        assert_eq!(out, ["x | A: Both"]);
    }

    #[test]
    fn no_header_is_plain() {
        let out = render(vec![
            Row {
                cells: vec![cell("Fee", false), cell("2.9%", false)],
                head: false,
            },
            Row {
                cells: vec![cell("Payout", false), cell("", false)],
                head: false,
            },
        ]);
        assert_eq!(out, ["Fee | 2.9%", "Payout"]);
    }

    #[test]
    fn huge_colspan_is_clamped() {
        let mut c = cell("H", true);
        c.colspan = usize::MAX;
        let out = render(vec![
            Row {
                cells: vec![c, cell("I", true)],
                head: false,
            },
            Row {
                cells: vec![cell("v", false)],
                head: false,
            },
        ]);
        // "I" heads a column no row fills: kept on a line of its own.
        assert_eq!(out, ["I", "H: v"]);
    }

    #[test]
    fn bold_everywhere_is_no_header() {
        let bold = |t: &str| Cell {
            bold: true,
            ..cell(t, false)
        };
        let out = render(vec![
            Row {
                cells: vec![bold("a"), bold("b")],
                head: false,
            },
            Row {
                cells: vec![bold("c"), bold("d")],
                head: false,
            },
        ]);
        assert_eq!(out, ["a | b", "c | d"]);
        let out = render(vec![
            Row {
                cells: vec![bold("Plan"), bold("Price")],
                head: false,
            },
            Row {
                cells: vec![cell("Pro", false), cell("20", false)],
                head: false,
            },
        ]);
        assert_eq!(out, ["Plan: Pro | Price: 20"]);
    }

    #[test]
    fn title_row_is_not_a_header() {
        let mut title = cell("Pricing", true);
        title.colspan = 2;
        let out = render(vec![
            Row {
                cells: vec![title],
                head: false,
            },
            Row {
                cells: vec![cell("Plan", true), cell("Price", true)],
                head: false,
            },
            Row {
                cells: vec![cell("Pro", false), cell("20", false)],
                head: false,
            },
        ]);
        assert_eq!(out, ["Pricing", "Plan: Pro | Price: 20"]);
    }
}
