//! Characters as a reader sees them, and a line buffer that collapses whitespace the way a
//! browser does.

/// What one source character becomes in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Invisible: zero-width characters, soft hyphens, control characters.
    Drop,
    /// Any kind of whitespace, including non-breaking and typographic spaces.
    Space,
    /// A line feed; only meaningful inside `pre`.
    Newline,
    /// A tab; only meaningful inside `pre`.
    Tab,
    /// Everything else, kept as is.
    Keep,
}

/// Classifies a character after entity decoding (html5ever has already decoded entities).
#[inline]
pub(crate) fn classify(c: char) -> Class {
    match c {
        ' ' | '\u{0C}' | '\u{0B}' | '\u{85}' => Class::Space,
        '\n' => Class::Newline,
        '\t' => Class::Tab,
        // Carriage returns only survive through `&#13;`; a line feed already follows them.
        '\r' => Class::Drop,
        c if (c as u32) < 0x80 => {
            if c.is_ascii_control() {
                Class::Drop
            } else {
                Class::Keep
            }
        }
        '\u{A0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200A}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => Class::Space,
        '\u{AD}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => Class::Drop,
        c if c.is_control() => Class::Drop,
        _ => Class::Keep,
    }
}

/// Emoji and their modifiers: a zero-width joiner between two of them builds one glyph
/// (👩‍💻), so it is kept there and dropped everywhere else.
#[inline]
pub(crate) fn is_pictographic(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xFE0F | 0x2B00..=0x2BFF)
}

/// A line under construction. Whitespace is collapsed lazily: a run of spaces becomes one space,
/// written only when visible text follows, so lines never start or end with a space.
#[derive(Debug, Default)]
pub(crate) struct Line {
    pub(crate) buf: String,
    pending_space: bool,
}

impl Line {
    /// True when nothing visible has been written yet.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Records a whitespace run; it becomes one space if more text follows on this line.
    #[inline]
    pub(crate) fn space(&mut self) {
        if !self.buf.is_empty() {
            self.pending_space = true;
        }
    }

    /// Appends a visible character.
    #[inline]
    pub(crate) fn push(&mut self, c: char) {
        if self.pending_space {
            self.buf.push(' ');
            self.pending_space = false;
        }
        self.buf.push(c);
    }

    /// Appends visible text without whitespace.
    #[inline]
    pub(crate) fn push_str(&mut self, s: &str) {
        if self.pending_space {
            self.buf.push(' ');
            self.pending_space = false;
        }
        self.buf.push_str(s);
    }

    /// Appends text verbatim (preformatted text).
    #[inline]
    pub(crate) fn push_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Appends a prefix (list marker, indentation) verbatim; only used on an empty line.
    pub(crate) fn push_prefix(&mut self, prefix: &str) {
        self.buf.push_str(prefix);
        self.pending_space = false;
    }

    /// Appends a character verbatim (preformatted text).
    #[inline]
    pub(crate) fn push_raw(&mut self, c: char) {
        self.buf.push(c);
    }

    /// Takes the line's text, leaving an empty buffer sized like the last line.
    pub(crate) fn take(&mut self) -> String {
        self.pending_space = false;
        let capacity = self.buf.len().max(32);
        std::mem::replace(&mut self.buf, String::with_capacity(capacity))
    }

    /// Drops everything written so far.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.pending_space = false;
    }
}

/// Plain text (a title) as one normalized line: whitespace collapsed, invisible characters
/// dropped, as the walk treats text in a body.
pub(crate) fn line(s: &str) -> String {
    let mut l = Line::default();
    for c in s.chars() {
        match classify(c) {
            Class::Space | Class::Newline | Class::Tab => l.space(),
            Class::Drop => {}
            Class::Keep => l.push(c),
        }
    }
    l.take()
}

/// Trims preformatted text: blank lines before the first line with content and all trailing
/// whitespace go, indentation of the first real line stays.
pub(crate) fn trim_pre(s: &str) -> &str {
    let s = s.trim_end();
    let mut start = 0;
    for line in s.split_inclusive('\n') {
        if line.trim().is_empty() {
            start += line.len();
        } else {
            break;
        }
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_spaces_and_invisibles() {
        assert_eq!(classify('\u{A0}'), Class::Space);
        assert_eq!(classify('\u{3000}'), Class::Space);
        assert_eq!(classify('\u{200B}'), Class::Drop);
        assert_eq!(classify('\u{FEFF}'), Class::Drop);
        assert_eq!(classify('\u{AD}'), Class::Drop);
        assert_eq!(classify('\u{7}'), Class::Drop);
        assert_eq!(classify('é'), Class::Keep);
        assert_eq!(
            classify('\u{200F}'),
            Class::Keep,
            "bidi marks are kept: they matter for RTL display"
        );
    }

    #[test]
    fn line_collapses_spaces() {
        let mut l = Line::default();
        l.space();
        l.push('a');
        l.space();
        l.space();
        l.push('b');
        l.space();
        assert_eq!(l.take(), "a b");
        assert!(l.is_empty());
    }

    #[test]
    fn pre_trim_keeps_indent() {
        assert_eq!(trim_pre("\n  \n  x = 1\n    y\n\n"), "  x = 1\n    y");
        assert_eq!(trim_pre("   \n"), "");
    }
}
