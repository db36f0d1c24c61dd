//! Header-like fields, read leniently: a message's own header, the quoted
//! original's, and the blocks of a `message/delivery-status` or
//! `message/feedback-report` part.
//!
//! mail-parser hands those report parts over as opaque bytes, and the MTAs
//! that write them are not strict: LF or CRLF, any case, folded lines,
//! comments, missing or doubled blank lines. One reader for all of them
//! keeps these quirks in one place. Work is linear in the text, and each
//! value is capped so that a hostile part cannot make one field huge.

/// One field: the name lowercased, the value unfolded (continuation lines
/// joined with a single space) and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Field {
    pub name: String,
    pub value: String,
}

/// Longest value kept for one field; the rest of its continuation lines
/// are dropped. Diagnostics are cut to 1000 characters later anyway.
const MAX_VALUE: usize = 8 * 1024;

/// Splits the text into blocks of fields at blank lines (a line of only
/// spaces counts as blank: RFC 3464 blocks are never separated by folding
/// whitespace). Lines that are neither a field nor a continuation are
/// skipped. At most `max_blocks` blocks are read.
pub(super) fn blocks(text: &str, max_blocks: usize) -> Vec<Vec<Field>> {
    let mut out: Vec<Vec<Field>> = Vec::new();
    let mut current: Vec<Field> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                if out.len() >= max_blocks {
                    return out;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = current.last_mut() {
                append(&mut last.value, line.trim());
            }
            continue;
        }
        if let Some(field) = field(line) {
            current.push(field);
        }
    }
    if !current.is_empty() && out.len() < max_blocks {
        out.push(current);
    }
    out
}

/// The fields of the first block only: a message's header.
pub(super) fn header(text: &str) -> Vec<Field> {
    blocks(text, 1).into_iter().next().unwrap_or_default()
}

/// The first value of the named field (`name` lowercase).
pub(super) fn get<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
}

fn field(line: &str) -> Option<Field> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim_end();
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !valid {
        return None;
    }
    let mut v = String::new();
    append(&mut v, value.trim());
    Some(Field {
        name: name.to_ascii_lowercase(),
        value: v,
    })
}

fn append(value: &mut String, piece: &str) {
    if piece.is_empty() || value.len() >= MAX_VALUE {
        return;
    }
    if !value.is_empty() {
        value.push(' ');
    }
    let room = MAX_VALUE.saturating_sub(value.len());
    value.push_str(cut(piece, room));
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
pub(super) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The value without RFC 5322 comments (`(...)`, nested, outside quoted
/// strings), with runs of whitespace as one space: `5.0.0 (permanent
/// failure)` -> `5.0.0`. An unclosed comment runs to the end.
pub(super) fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every `<...>` message identifier in the value, brackets kept: no
/// whitespace or `<` inside, at most 998 bytes (a header line's limit).
pub(super) fn message_ids(value: &str) -> impl Iterator<Item = &str> {
    value.match_indices('<').filter_map(move |(start, _)| {
        let rest = &value[start + 1..];
        let end = rest.find(|c: char| c == '>' || c == '<' || c.is_whitespace())?;
        let inner = &rest[..end];
        let closed = rest[end..].starts_with('>');
        (closed && !inner.is_empty() && inner.len() <= 996 && !inner.chars().any(char::is_control))
            .then(|| &value[start..start + end + 2])
    })
}

/// One message identifier from a `Message-ID` value: the bracketed form,
/// else a lone `local@domain` token, to which brackets are added (some
/// MTAs quote the header without them).
pub(super) fn message_id(value: &str) -> Option<String> {
    if let Some(id) = message_ids(value).next() {
        return Some(id.to_owned());
    }
    let token = strip_comments(value);
    let bare = !token.is_empty()
        && token.len() <= 996
        && token.contains('@')
        && !token.contains(|c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    bare.then(|| format!("<{token}>"))
}

/// Control characters removed (a diagnostic or subject goes to a terminal,
/// a log and a web page), whitespace runs made one space, trimmed, and at
/// most `max_chars` characters.
pub(super) fn clean_line(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        let mut chars = word
            .chars()
            .filter(|c| !c.is_control() && !is_invisible(*c))
            .peekable();
        if chars.peek().is_none() {
            continue;
        }
        if !out.is_empty() {
            // Room for the space and at least one character after it.
            if count + 1 >= max_chars {
                break;
            }
            out.push(' ');
            count += 1;
        }
        for c in chars {
            if count >= max_chars {
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// Bidirectional controls and zero-width characters: format characters
/// that could make a logged diagnostic read other than it is.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_unfold_and_split_at_blank_lines() {
        let text = "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822;\r\n a@example.net\r\nACTION: failed\r\n   \r\n\r\nfinal-recipient: rfc822; b@example.net\nnot a field\nStatus: 4.2.2";
        let b = blocks(text, 10);
        assert_eq!(b.len(), 3);
        assert_eq!(get(&b[1], "final-recipient"), Some("rfc822; a@example.net"));
        assert_eq!(get(&b[1], "action"), Some("failed"));
        assert_eq!(get(&b[2], "status"), Some("4.2.2"));
        assert_eq!(blocks(text, 2).len(), 2);
    }

    #[test]
    fn values_are_capped() {
        let long = format!("X: {}\n{}", "a".repeat(20_000), " b\n".repeat(10_000));
        let b = blocks(&long, 1);
        assert!(b[0][0].value.len() <= MAX_VALUE);
    }

    #[test]
    fn comments_are_stripped_outside_quotes() {
        assert_eq!(
            strip_comments("5.0.0 (permanent (nested) failure)"),
            "5.0.0"
        );
        assert_eq!(
            strip_comments("rfc822; \"a (b)\"@example.net (c)"),
            "rfc822; \"a (b)\"@example.net"
        );
        assert_eq!(strip_comments("failed (unclosed"), "failed");
        assert_eq!(strip_comments("a \\) b"), "a \\) b");
    }

    #[test]
    fn message_ids_keep_their_brackets() {
        let v = "<a@example.org> junk <b c@x> <> <d@example.org";
        assert_eq!(message_ids(v).collect::<Vec<_>>(), vec!["<a@example.org>"]);
        assert_eq!(
            message_id(" x@example.org (c)"),
            Some("<x@example.org>".into())
        );
        assert_eq!(message_id("no id here"), None);
    }

    #[test]
    fn clean_line_removes_controls_and_cuts_on_chars() {
        assert_eq!(clean_line(" a\u{1b}[31m\tb\u{7}\r\n c ", 100), "a[31m b c");
        assert_eq!(clean_line("ééééé", 3), "ééé");
        assert_eq!(clean_line("a\u{202e}b", 10), "ab");
        assert_eq!(cut("ééé", 3), "é");
    }
}
