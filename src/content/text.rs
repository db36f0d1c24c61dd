//! Small text helpers shared by the clipping, Markdown and issue.toml readers.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use chrono::NaiveDate;
use toml::Spanned;
use toml::value::Datetime;

use super::Problem;

/// Longest summary, in characters, including the trailing "…".
pub const SUMMARY_MAX_CHARS: usize = 300;

/// The text without a leading UTF-8 byte order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// 1-based line of a byte offset in `text`.
pub fn line_at(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// TOML text that starts on line `first_line` of the file at `path`: turns
/// spans into file lines for problems.
pub struct TomlSource<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub first_line: usize,
}

impl TomlSource<'_> {
    /// 1-based file line of a byte offset in the TOML text.
    pub fn line(&self, offset: usize) -> usize {
        self.first_line + line_at(self.text.as_bytes(), offset) - 1
    }

    /// A problem for a parse error (unknown key, wrong type, bad syntax).
    pub fn error(&self, err: &toml::de::Error) -> Problem {
        let line = err
            .span()
            .map_or(self.first_line, |span| self.line(span.start));
        let message = err.message().trim_end().replace('\n', " ");
        Problem::new(self.path, Some(line), message)
    }

    /// The day of a TOML date or datetime (`2021-11-19`, `2021-11-19T08:00:00Z`).
    pub fn date(&self, value: &Spanned<Datetime>) -> Result<NaiveDate, Problem> {
        value
            .get_ref()
            .date
            .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()))
            .ok_or_else(|| self.at(value.span(), "date needs a day, e.g. date = 2021-11-19"))
    }

    /// A problem about the value at `span`.
    pub fn at(&self, span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem::new(self.path, Some(self.line(span.start)), message)
    }
}

/// Control characters that have no place in content: C0 other than tab,
/// line feed and carriage return, DEL, and C1. They would reach a mail
/// header, a terminal or the plain-text part as they are (a BEL rings, an
/// ESC starts a terminal escape sequence).
pub fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// `text` without stray control characters ([`is_stray_control`]), and a
/// problem naming the line of the first one when there were any.
pub fn without_controls<'a>(path: &Path, text: &'a str) -> (Cow<'a, str>, Option<Problem>) {
    let Some(first) = text.find(is_stray_control) else {
        return (Cow::Borrowed(text), None);
    };
    let count = text.chars().filter(|&c| is_stray_control(c)).count();
    let c = text[first..].chars().next().map_or(0, u32::from);
    let problem = Problem::new(
        path,
        Some(line_at(text.as_bytes(), first)),
        format!(
            "control character U+{c:04X} ({count} in the file); control characters are removed"
        ),
    );
    (
        Cow::Owned(text.chars().filter(|&c| !is_stray_control(c)).collect()),
        Some(problem),
    )
}

/// A one-line field (title, author, section, dateline, summary): whitespace
/// collapsed and every control character removed; a problem at `line`
/// naming the field when one was.
pub fn clean_field(
    path: &Path,
    line: usize,
    field: &str,
    value: &str,
    warnings: &mut Vec<Problem>,
) -> String {
    let value = collapse_whitespace(value);
    let Some(c) = value.chars().find(|c| c.is_control()) else {
        return value;
    };
    warnings.push(Problem::new(
        path,
        Some(line),
        format!(
            "{field} has the control character U+{:04X}; control characters are removed",
            u32::from(c)
        ),
    ));
    collapse_whitespace(&value.replace(|c: char| c.is_control(), ""))
}

/// Appends `text` to `out` with `& < > " '` escaped.
pub fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Whitespace runs collapsed to one space, ends trimmed.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Plain text shortened at a word boundary to at most [`SUMMARY_MAX_CHARS`]
/// characters, ending with "…" when something was cut.
pub fn summarize(text: &str) -> String {
    let text = collapse_whitespace(text);
    if text.chars().count() <= SUMMARY_MAX_CHARS {
        return text;
    }
    // Room for the ellipsis.
    let limit = SUMMARY_MAX_CHARS - 1;
    let cut = text
        .char_indices()
        .nth(limit)
        .map_or(text.len(), |(i, _)| i);
    // `text[cut..]` starts with the first character that does not fit: when it
    // is a space, the word before it is whole.
    let head = if text[cut..].starts_with(' ') {
        &text[..cut]
    } else {
        match text[..cut].rfind(' ') {
            Some(space) => &text[..space],
            // One giant word: cut it.
            None => &text[..cut],
        }
    };
    let head = head.trim_end_matches(|c: char| c.is_whitespace() || ",;:—–-".contains(c));
    format!("{head}…")
}

/// The text of a UTF-8 file, or a problem naming the line of the first bad byte.
pub fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, Problem> {
    std::str::from_utf8(bytes).map_err(|err| {
        let at = err.valid_up_to();
        Problem::new(
            path,
            Some(line_at(bytes, at)),
            format!(
                "not UTF-8: invalid byte 0x{:02x} at byte offset {at}; save the file as UTF-8",
                bytes[at]
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarize_keeps_short_text() {
        assert_eq!(summarize("  Short\n text. "), "Short text.");
    }

    #[test]
    fn summarize_cuts_at_a_word_boundary() {
        let text = "word ".repeat(100);
        let s = summarize(&text);
        assert!(
            s.chars().count() <= SUMMARY_MAX_CHARS,
            "{}",
            s.chars().count()
        );
        assert!(s.ends_with("word…"), "{s}");
        let long = "x".repeat(400);
        let s = summarize(&long);
        assert_eq!(s.chars().count(), SUMMARY_MAX_CHARS);
        // Exactly at the limit: nothing cut.
        let exact = "é".repeat(SUMMARY_MAX_CHARS);
        assert_eq!(summarize(&exact), exact);
        // The cut falls right before a space: the last word stays whole.
        let text = format!("{} tail and more", "a".repeat(SUMMARY_MAX_CHARS - 1));
        assert_eq!(
            summarize(&text),
            format!("{}…", "a".repeat(SUMMARY_MAX_CHARS - 1))
        );
    }

    #[test]
    fn escapes_the_five_characters() {
        let mut out = String::new();
        push_escaped(&mut out, r#"a & b < c > d "e" 'f'"#);
        assert_eq!(out, "a &amp; b &lt; c &gt; d &quot;e&quot; &#39;f&#39;");
    }

    #[test]
    fn utf8_error_names_the_line() {
        let p = utf8(Path::new("x.txt"), b"ok\nok\nbad \xff here").unwrap_err();
        assert_eq!(p.line, Some(3));
        assert!(p.message.contains("not UTF-8"), "{}", p.message);
    }
}
