//! Splits a passage's lines into passages of bounded size.
//!
//! The unit is a line (a paragraph, list item, table row or preformatted block). Lines are packed
//! greedily, joined by `\n`, while the passage stays within the bound. A line longer than the
//! bound is first cut into pieces — at a line break (preformatted text), else a sentence end,
//! else whitespace, preferring cuts in the second half of the window so pieces stay large, and
//! only as a last resort at an arbitrary character — and the pieces are then packed like lines.
//! Sizes are counted in `char`s, never bytes, and every cut is on a char boundary.

/// Passages of one section that each start with its heading lines (`lead`: the section's own
/// heading, after any text-less headings carried over from before it), so the heading a
/// passage answers under is part of what is searched and quoted. The bound includes the lead;
/// a lead too long to leave room for text is cut to half the bound. A section with a heading
/// and no text still gives one passage: the heading itself.
pub(crate) fn split_under(lead: &[String], lines: &[String], max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lead: Vec<&str> = lead
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    // The lead takes at most half the bound: carried headings that do not fit go first, as a
    // passage of their own (nothing visible is dropped); the own heading is cut if it must be.
    let mut out = Vec::new();
    let mut overflow = Vec::new();
    while lead.len() > 1 && lead.join("\n").chars().count() > max / 2 {
        overflow.push(lead.remove(0).to_string());
    }
    if !overflow.is_empty() {
        out.extend(split(&[overflow.join("\n")], max));
    }
    let full = lead.join("\n");
    let head = if full.chars().count() > max / 2 {
        cut(&full, max / 2).0
    } else {
        full.as_str()
    };
    let head_chars = head.chars().count();
    // Too small a bound to hold a heading and text side by side: text alone.
    let with_head = !head.is_empty() && max > head_chars + 1;
    let bodies = split(lines, if with_head { max - head_chars - 1 } else { max });
    match (bodies.is_empty(), with_head) {
        (true, _) if full.is_empty() => {}
        (true, _) => out.extend(split(&[full], max)),
        (false, false) => out.extend(bodies),
        (false, true) => out.extend(bodies.into_iter().map(|b| format!("{head}\n{b}"))),
    }
    out
}

/// Packs `lines` into passages of at most `max` chars each (`max` is raised to 1).
pub(crate) fn split(lines: &[String], max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_chars = 0;
    let mut add = |piece: &str, n: usize, out: &mut Vec<String>| {
        if piece.trim().is_empty() {
            return;
        }
        if cur_chars > 0 && cur_chars + 1 + n > max {
            out.push(std::mem::take(&mut cur));
            cur_chars = 0;
        }
        if cur_chars > 0 {
            cur.push('\n');
            cur_chars += 1;
        }
        cur.push_str(piece);
        cur_chars += n;
    };
    for line in lines {
        let n = line.chars().count();
        if n <= max {
            add(line, n, &mut out);
        } else {
            let mut rest = line.as_str();
            while !rest.is_empty() {
                let (piece, tail) = cut(rest, max);
                add(piece, piece.chars().count(), &mut out);
                rest = tail;
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Cuts one piece of at most `max` chars off the front of `s`: returns the piece (trimmed at its
/// end) and the rest (with the separator removed; indentation after a line break is kept).
fn cut(s: &str, max: usize) -> (&str, &str) {
    let Some((window_end, _)) = s.char_indices().nth(max) else {
        return (s.trim_end(), "");
    };
    let window = &s[..window_end];
    // Last candidate per class, as (cut position, resume position, after a line break).
    let mut newline = None;
    let mut sentence = None;
    let mut space = None;
    let mut prev = '\0';
    let mut consider = |i: usize, c: char, prev: char| {
        let resume = i + c.len_utf8();
        if c == '\n' {
            newline = Some((i, resume, true));
        } else if c.is_whitespace() {
            if matches!(prev, '.' | '!' | '?' | ':' | ';') {
                sentence = Some((i, resume, false));
            }
            space = Some((i, resume, false));
        } else if matches!(c, '。' | '！' | '？' | '；') {
            sentence = Some((resume, resume, false));
        }
    };
    for (i, c) in window.char_indices() {
        consider(i, c, prev);
        prev = c;
    }
    // A separator right after the window is a boundary exactly at the bound.
    if let Some(c) = s[window_end..].chars().next().filter(|c| c.is_whitespace()) {
        consider(window_end, c, prev);
    }
    let half = window.len() / 2;
    let classes = [newline, sentence, space];
    let good = classes
        .into_iter()
        .flatten()
        .find(|&(at, _, _)| at >= half && at > 0);
    let any = || classes.into_iter().flatten().find(|&(at, _, _)| at > 0);
    let (at, resume, after_newline) = good.or_else(any).unwrap_or((window_end, window_end, true));
    let piece = s[..at].trim_end();
    if piece.is_empty() {
        // Nothing but whitespace before the cut: a hard cut still makes progress.
        return (&s[..window_end], &s[window_end..]);
    }
    let rest = &s[resume..];
    let rest = if after_newline {
        rest.trim_start_matches('\n')
    } else {
        rest.trim_start()
    };
    (piece, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn packs_lines_greedily() {
        let p = split(&lines(&["aaaa", "bbbb", "cccc"]), 9);
        assert_eq!(p, ["aaaa\nbbbb", "cccc"]);
    }

    #[test]
    fn long_line_cut_at_sentence() {
        let s = "One two three. Four five six. Seven eight nine.";
        let p = split(&lines(&[s]), 32);
        assert_eq!(p, ["One two three. Four five six.", "Seven eight nine."]);
    }

    #[test]
    fn hard_cut_on_char_boundary() {
        let s = "日本語のテキストは空白がありません";
        let p = split(&lines(&[s]), 5);
        assert!(p.iter().all(|x| x.chars().count() <= 5), "{p:?}");
        assert_eq!(p.concat(), s);
    }

    #[test]
    fn cjk_sentence_end() {
        let s = "これは文です。これも文です。最後の文。";
        let p = split(&lines(&[s]), 10);
        assert_eq!(p, ["これは文です。", "これも文です。", "最後の文。"]);
    }

    #[test]
    fn pre_cut_keeps_indentation() {
        let s = "fn main() {\n    let x = 1;\n    let y = 2;\n}";
        let p = split(&lines(&[s]), 26);
        assert_eq!(p, ["fn main() {\n    let x = 1;", "    let y = 2;\n}"]);
    }

    #[test]
    fn bound_of_one_terminates() {
        let p = split(&lines(&["a b  c"]), 0);
        assert_eq!(p, ["a", "b", "c"]);
    }
}
