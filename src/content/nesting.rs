//! A bound on how deeply article HTML nests.
//!
//! Every later stage walks the element tree: the sanitizer's HTML parser
//! checks "is this element in scope" against the whole stack of open
//! elements at each tag (so its time grows with the square of the depth),
//! and the serializers, the CSS inliner and the HTML-to-text converter
//! recurse once per level (so a few thousand levels overflow a thread's
//! stack, which aborts the process). A 24 KB article of nested `<span>`s is
//! enough. So before any of them sees an article, the markup is cut to
//! [`MAX_DEPTH`] open elements: a start tag that would open one more is
//! dropped, and so is the end tag that would close it. The text is kept,
//! only the extra nesting goes, and the caller reports where it was cut.
//!
//! The scanner follows the HTML tokenizer's rules for what is a tag (names,
//! attribute values quoted only right after `=`, comments, raw-text
//! elements such as `<script>`) so that no text it takes for an attribute or
//! a comment can be a tag to the real parser. Where its idea of the open
//! elements differs from the parser's (elements the parser closes
//! implicitly, such as a `<p>` before a `<div>`), it counts more open
//! elements than the parser does, never fewer: it may cut a little early,
//! never too late.

use std::collections::HashMap;

/// Most elements open at once in an article's HTML. Real articles use a
/// handful (a list in a quote in a footnote); 64 leaves room for any of
/// them and keeps every later stage's stack and time small.
pub const MAX_DEPTH: usize = 64;

/// Most elements in an article's HTML. Every later stage's time and memory
/// grow with the number of elements (three renderings of the digest, each
/// parsed again to inline CSS and to make the text part): a clipping of a
/// few hundred thousand one-letter paragraphs took more than a gigabyte.
/// A long real article has a few hundred.
pub const MAX_ELEMENTS: usize = 20_000;

/// The bounds [`bound`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Elements open at once.
    pub depth: usize,
    /// Elements in all.
    pub elements: usize,
}

/// The bounds for article HTML.
pub const ARTICLE: Limits = Limits {
    depth: MAX_DEPTH,
    elements: MAX_ELEMENTS,
};

/// HTML with its nesting bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded {
    pub html: String,
    /// Byte offsets (in the input) of the start tags dropped for the depth.
    pub cut: Vec<usize>,
    /// Byte offsets (in the input) of the start tags dropped for the count.
    pub over_count: Vec<usize>,
}

/// Elements that never have content (no end tag).
const VOID: [&str; 16] = [
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source",
];

/// More void elements (split to keep the lists short).
const VOID_MORE: [&str; 3] = ["track", "wbr", "image"];

/// Elements whose content is text up to their own end tag.
const RAW_TEXT: [&str; 9] = [
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
];

fn is_void(name: &str) -> bool {
    VOID.contains(&name) || VOID_MORE.contains(&name)
}

/// `html` with at most `limits.depth` elements open at any point and
/// `limits.elements` in all.
pub fn bound(html: &str, limits: Limits) -> Bounded {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut cut = Vec::new();
    let mut over_count = Vec::new();
    let mut elements = 0;
    // Names of the open elements that were kept.
    let mut open: Vec<String> = Vec::new();
    // Dropped start tags whose end tag has not been seen yet, by name.
    let mut dropped: HashMap<String, usize> = HashMap::new();
    let mut copied = 0; // html[..copied] is in `out` or was dropped
    let mut i = 0;
    while let Some(lt) = memchr(b'<', bytes, i) {
        i = lt + 1;
        match bytes.get(i) {
            Some(b) if b.is_ascii_alphabetic() => {
                let (name, end, self_closing) = scan_tag(bytes, i);
                let name = name.to_ascii_lowercase();
                let leaf = is_void(&name) || (self_closing && is_foreign_leaf(&name));
                let too_many = elements >= limits.elements;
                let drop = too_many || (!leaf && open.len() >= limits.depth);
                if drop {
                    out.push_str(&html[copied..lt]);
                    copied = end;
                    if too_many {
                        over_count.push(lt);
                    } else {
                        cut.push(lt);
                    }
                } else {
                    elements += 1;
                }
                i = end;
                if leaf {
                    continue;
                }
                if drop {
                    // Without its start tag, a `<script>`'s text is markup
                    // to the parser too: it is scanned, not skipped.
                    *dropped.entry(name).or_default() += 1;
                } else if name == "plaintext" {
                    // Everything after it is text.
                    i = bytes.len();
                } else {
                    i = skip_raw_text(bytes, end, &name);
                    if !RAW_TEXT.contains(&name.as_str()) {
                        open.push(name);
                    }
                }
            }
            Some(b'/') if bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => {
                let (name, end, _) = scan_tag(bytes, i + 1);
                let name = name.to_ascii_lowercase();
                // A dropped start tag was opened inside the kept ones: its
                // end tag comes first.
                if let Some(count) = dropped.get_mut(&name).filter(|c| **c > 0) {
                    *count -= 1;
                    out.push_str(&html[copied..lt]);
                    copied = end;
                } else if let Some(at) = open.iter().rposition(|n| *n == name) {
                    open.truncate(at);
                }
                i = end;
            }
            Some(b'!') if bytes[i..].starts_with(b"!--") => i = comment_end(bytes, i + 3),
            Some(b'!' | b'?' | b'/') => i = to_gt(bytes, i),
            _ => {}
        }
    }
    out.push_str(&html[copied..]);
    Bounded {
        html: out,
        cut,
        over_count,
    }
}

/// SVG and MathML leaves written `<x/>` do not nest; in HTML, `<span/>`
/// does (the slash is ignored), so only these few are trusted to close.
fn is_foreign_leaf(name: &str) -> bool {
    matches!(
        name,
        "path" | "circle" | "rect" | "line" | "ellipse" | "polygon" | "polyline" | "use" | "stop"
    )
}

fn memchr(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|p| from + p)
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b' ' | b'\r')
}

/// Scans a tag whose name starts at `i`: (name, offset after its `>` or
/// the end of the text, whether it ends with `/>`). Attribute values are
/// quoted only when the quote follows the `=`, as the tokenizer reads them.
fn scan_tag(bytes: &[u8], mut i: usize) -> (String, usize, bool) {
    let start = i;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'/' && bytes[i] != b'>' {
        i += 1;
    }
    let name = String::from_utf8_lossy(&bytes[start..i]).into_owned();
    let mut self_closing = false;
    loop {
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        match bytes.get(i) {
            None => return (name, bytes.len(), false),
            Some(b'>') => return (name, i + 1, self_closing),
            Some(b'/') => {
                i += 1;
                self_closing = bytes.get(i) == Some(&b'>');
                continue;
            }
            Some(_) => {}
        }
        self_closing = false;
        // An attribute name (a leading '=' belongs to it).
        i += 1;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => match memchr(q, bytes, i + 1) {
                Some(close) => i = close + 1,
                None => return (name, bytes.len(), false),
            },
            _ => {
                while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                    i += 1;
                }
            }
        }
    }
}

/// After the start tag of a raw-text element ending at `i`: the offset of
/// its end tag (the text between holds no tags). Other elements: `i`.
fn skip_raw_text(bytes: &[u8], i: usize, name: &str) -> usize {
    if !RAW_TEXT.contains(&name) {
        return i;
    }
    let mut at = i;
    while let Some(lt) = memchr(b'<', bytes, at) {
        let rest = &bytes[lt + 1..];
        if rest.first() == Some(&b'/')
            && rest.len() > name.len()
            && rest[1..=name.len()].eq_ignore_ascii_case(name.as_bytes())
            && rest
                .get(name.len() + 1)
                .is_none_or(|&b| is_space(b) || b == b'/' || b == b'>')
        {
            return lt;
        }
        at = lt + 1;
    }
    bytes.len()
}

/// The offset after the comment whose text starts at `i` (after `<!--`).
fn comment_end(bytes: &[u8], i: usize) -> usize {
    // `<!-->` and `<!--->` end at once.
    if bytes[i..].starts_with(b">") {
        return i + 1;
    }
    if bytes[i..].starts_with(b"->") {
        return i + 2;
    }
    let mut at = i;
    while let Some(dash) = memchr(b'-', bytes, at) {
        if bytes[dash..].starts_with(b"-->") {
            return dash + 3;
        }
        if bytes[dash..].starts_with(b"--!>") {
            return dash + 4;
        }
        at = dash + 1;
    }
    bytes.len()
}

/// The offset after the next `>` from `i` (bogus comments, doctypes).
fn to_gt(bytes: &[u8], i: usize) -> usize {
    memchr(b'>', bytes, i).map_or(bytes.len(), |gt| gt + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(depth: usize) -> Limits {
        Limits {
            depth,
            elements: MAX_ELEMENTS,
        }
    }

    fn depth_of(html: &str) -> usize {
        // The deepest run of start tags without an end tag between (the
        // inputs here close what they open, innermost first).
        let mut depth: usize = 0;
        let mut deepest = 0;
        let mut rest = html;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            if rest.starts_with('/') {
                depth = depth.saturating_sub(1);
            } else if !rest.starts_with("br") && !rest.starts_with("img") {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
        deepest
    }

    #[test]
    fn shallow_markup_is_untouched() {
        let html = "<blockquote><p>a <em>b</em> <img src=x> <br/> <span/>c</p></blockquote>\n<ul><li>x</li></ul>";
        let b = bound(html, depth(4));
        assert_eq!(b.html, html);
        assert!(b.cut.is_empty());
    }

    #[test]
    fn deep_nesting_is_cut_and_the_text_kept() {
        let html = format!("{}x{}", "<span>".repeat(10), "</span>".repeat(10));
        let b = bound(&html, depth(3));
        assert_eq!(b.html, "<span><span><span>x</span></span></span>");
        assert_eq!(b.cut.len(), 7);
        assert_eq!(b.cut[0], 18, "the fourth <span>");
        // Unclosed and mixed, as an attacker writes them.
        let html = format!("{}text", "<div><b>".repeat(1000));
        let b = bound(&html, ARTICLE);
        assert_eq!(depth_of(&b.html), MAX_DEPTH);
        assert!(b.html.ends_with("text"));
    }

    #[test]
    fn tags_hidden_from_a_naive_scanner_are_still_counted() {
        // A quote that does not follow '=' starts no value: the tag ends at '>'.
        let html = format!("<span x\">{}", "<span>".repeat(10));
        assert_eq!(bound(&html, depth(3)).cut.len(), 8);
        // An unterminated comment-like thing that is not a comment.
        let html = format!("<!-><p>{}", "<i>".repeat(10));
        assert_eq!(bound(&html, depth(3)).cut.len(), 8);
        // `<!-->` closes at once.
        let html = format!("<!-->{}", "<i>".repeat(10));
        assert_eq!(bound(&html, depth(3)).cut.len(), 7);
        // Self-closing HTML elements nest.
        assert_eq!(bound(&"<div/>".repeat(10), depth(3)).cut.len(), 7);
    }

    #[test]
    fn elements_past_the_count_are_dropped() {
        let html = "<p>a</p><p>b<br>c</p><p>d</p>";
        let b = bound(
            html,
            Limits {
                depth: 8,
                elements: 3,
            },
        );
        assert_eq!(b.html, "<p>a</p><p>b<br>c</p>d");
        assert_eq!(b.over_count, [html.len() - 8]);
        assert!(b.cut.is_empty());
    }

    #[test]
    fn a_dropped_script_tag_does_not_hide_what_follows() {
        let html = format!("<b><script>{}</script></b>", "<i>".repeat(10));
        let b = bound(&html, depth(1));
        assert_eq!(b.cut.len(), 11, "{}", b.html);
        assert_eq!(b.html, format!("<b>{}</b>", ""));
    }

    #[test]
    fn comments_quoted_values_and_raw_text_are_not_tags() {
        let html = format!(
            "<!-- {} --><a title=\"{}\">x</a><script>{}</script><p>y</p>",
            "<i>".repeat(10),
            "<i>".repeat(10),
            "<i>".repeat(10)
        );
        let b = bound(&html, depth(2));
        assert_eq!(b.html, html);
        assert!(b.cut.is_empty());
    }
}
