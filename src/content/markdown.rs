//! Markdown articles with TOML front matter.
//!
//! ```text
//! +++
//! title = "Winter reading"          # required
//! author = "Zoë Álvarez"            # or authors = ["A", "B"], not both
//! date = 2026-11-20                 # optional: the issue date otherwise
//! section = "Books"
//! dateline = "Lisbon"
//! summary = "Plain text."           # else the first paragraph, shortened
//! +++
//! Markdown body (tables, strikethrough and footnotes on; raw HTML sanitized).
//! ```

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use ammonia::{UrlRelative, UrlRelativeEvaluate};
use chrono::NaiveDate;
use pulldown_cmark::{Options, Parser};
use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;
use url::Url;

use super::Problem;
use super::nesting::{self, MAX_DEPTH, MAX_ELEMENTS};
use super::text::{
    TomlSource, clean_field, collapse_whitespace, is_stray_control, line_at, strip_bom, summarize,
    without_controls,
};

/// A parsed Markdown article.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkdownArticle {
    pub title: String,
    pub authors: Vec<String>,
    /// None when the front matter has no date: the issue's date applies.
    pub date: Option<NaiveDate>,
    pub section: Option<String>,
    pub dateline: Option<String>,
    /// Plain text.
    pub summary: String,
    /// Sanitized HTML, nested at most [`MAX_DEPTH`] elements deep.
    pub html: String,
    /// What was changed to make the article safe to publish (nesting cut,
    /// control characters removed): reported, the article still published.
    pub warnings: Vec<Problem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: Spanned<String>,
    author: Option<Spanned<String>>,
    authors: Option<Spanned<Vec<String>>>,
    date: Option<Spanned<Datetime>>,
    section: Option<Spanned<String>>,
    dateline: Option<Spanned<String>>,
    summary: Option<Spanned<String>>,
}

const FENCE: &str = "+++";

/// Parses a Markdown article. `path` names the file in problems; its stem
/// prefixes the footnote ids so that articles side by side do not clash.
/// Relative links and images are made absolute against `base_url`.
pub fn parse(path: &Path, text: &str, base_url: &Url) -> Result<MarkdownArticle, Problem> {
    let mut warnings = Vec::new();
    let (text, controls) = without_controls(path, strip_bom(text));
    warnings.extend(controls);
    let text = &*text;
    if text.trim().is_empty() {
        return Err(Problem::new(path, None, "empty file"));
    }
    let (front, body, body_line) = split_front_matter(path, text)?;
    let source = TomlSource {
        path,
        text: front,
        first_line: 2,
    };
    let fm: FrontMatter = toml::from_str(front).map_err(|err| source.error(&err))?;

    // TOML escapes (`\u0007`, `\e`) can still make control characters.
    let mut field = |span: std::ops::Range<usize>, name: &str, value: &str| {
        clean_field(path, source.line(span.start), name, value, &mut warnings)
    };
    let title = field(fm.title.span(), "title", fm.title.get_ref());
    if title.is_empty() {
        return Err(source.at(fm.title.span(), "title is empty"));
    }
    let authors = match (fm.author, fm.authors) {
        (Some(_), Some(list)) => {
            return Err(source.at(list.span(), "give either author or authors, not both"));
        }
        (Some(one), None) => vec![(one.span(), one.into_inner())],
        (None, Some(list)) => {
            let span = list.span();
            list.into_inner()
                .into_iter()
                .map(|a| (span.clone(), a))
                .collect()
        }
        (None, None) => Vec::new(),
    };
    let authors = authors
        .into_iter()
        .map(|(span, name)| {
            let name = field(span.clone(), "author", &name);
            if name.is_empty() {
                Err(source.at(span, "an author's name is empty"))
            } else {
                Ok(name)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let date = fm.date.as_ref().map(|d| source.date(d)).transpose()?;

    if body.trim().is_empty() {
        return Err(Problem::new(
            path,
            Some(body_line),
            "no article text after the front matter",
        ));
    }
    let stem = path
        .file_stem()
        .map_or(Cow::Borrowed("article"), |s| s.to_string_lossy());
    let mut optional = |value: Option<Spanned<String>>, name: &str| {
        value
            .map(|v| field(v.span(), name, v.get_ref()))
            .filter(|s| !s.is_empty())
    };
    let section = optional(fm.section, "section");
    let dateline = optional(fm.dateline, "dateline");
    let given_summary = optional(fm.summary, "summary");
    let (html, cuts) = render(body, base_url, &format!("{stem}-"));
    warnings.extend(cuts.problems(path, body_line));
    let summary = match given_summary {
        Some(summary) => summarize(&summary),
        None => summarize(&first_paragraph_text(&html)),
    };
    Ok(MarkdownArticle {
        title,
        authors,
        date,
        section,
        dateline,
        summary,
        html,
        warnings,
    })
}

/// (front matter TOML, body Markdown, 1-based line the body starts on).
fn split_front_matter<'a>(
    path: &Path,
    text: &'a str,
) -> Result<(&'a str, &'a str, usize), Problem> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end() != FENCE {
        return Err(Problem::new(
            path,
            Some(1),
            format!(
                "expected {FENCE} on the first line to open the TOML front matter (title = \"…\" is required)"
            ),
        ));
    }
    let front_start = first.len();
    let mut offset = front_start;
    for (i, line) in lines.enumerate() {
        if line.trim_end() == FENCE {
            // Line 1 is the opening fence; this is line i + 2.
            return Ok((
                &text[front_start..offset],
                &text[offset + line.len()..],
                i + 3,
            ));
        }
        offset += line.len();
    }
    Err(Problem::new(
        path,
        Some(1),
        format!("the front matter opened here is never closed by a {FENCE} line"),
    ))
}

/// Markdown -> sanitized HTML, nested at most [`MAX_DEPTH`] deep and with
/// at most [`MAX_ELEMENTS`] elements (see [`nesting`]). `id_prefix` is put
/// before footnote ids and fragment links. Lines in the [`Cuts`] are lines
/// of `markdown`.
fn render(markdown: &str, base_url: &Url, id_prefix: &str) -> (String, Cuts) {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    // (offset in the HTML, offset in the Markdown) at the start of each
    // event: maps a cut in the HTML back to a line of the file.
    let written = Rc::new(Cell::new(0usize));
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut raw = Counting {
        out: String::with_capacity(markdown.len() * 3 / 2),
        written: written.clone(),
    };
    let events = Parser::new_ext(markdown, options)
        .into_offset_iter()
        .map(|(event, range)| {
            starts.push((written.get(), range.start));
            event
        });
    // Writing into a String cannot fail.
    let _ = pulldown_cmark::html::write_html_fmt(&mut raw, events);
    let bounded = nesting::bound(&raw.out, nesting::ARTICLE);
    let line_of = |at: usize| {
        let i = starts.partition_point(|&(html, _)| html <= at);
        let source = i.checked_sub(1).map_or(0, |i| starts[i].1);
        line_at(markdown.as_bytes(), source)
    };
    let cuts = Cuts {
        deep: bounded
            .cut
            .first()
            .map(|&at| (line_of(at), bounded.cut.len())),
        many: (bounded.over_count.first()).map(|&at| (line_of(at), bounded.over_count.len())),
    };

    let resolve = ResolveUrl {
        base: base_url.clone(),
        id_prefix: id_prefix.to_string(),
    };
    let clean = ammonia::Builder::default()
        .url_relative(UrlRelative::Custom(Box::new(resolve)))
        .id_prefix(Some(id_prefix))
        .add_tag_attributes("div", &["id"])
        .add_allowed_classes("sup", &["footnote-reference", "footnote-definition-label"])
        .add_allowed_classes("div", &["footnote-definition"])
        .clean(&bounded.html)
        .to_string();
    // The sanitizer's parser can add a few elements (a `<tbody>`, formatting
    // reopened after a block): bound its output too, so that the depth is a
    // property of every article, whatever the parser did.
    // A character reference (`&#7;`) still makes a control character.
    let html = nesting::bound(&clean, nesting::ARTICLE).html;
    let html = if html.contains(is_stray_control) {
        html.replace(is_stray_control, "")
    } else {
        html
    };
    (html, cuts)
}

/// Where [`render`] cut the markup: (1-based line of the first cut, start
/// tags dropped), for the nesting and for the number of elements.
struct Cuts {
    deep: Option<(usize, usize)>,
    many: Option<(usize, usize)>,
}

impl Cuts {
    /// A problem per kind of cut; `body_line` is the file line of the
    /// body's first line.
    fn problems(&self, path: &Path, body_line: usize) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some((line, dropped)) = self.deep {
            problems.push(Problem::new(
                path,
                Some(body_line + line - 1),
                format!(
                    "markup nested more than {MAX_DEPTH} elements deep from here: {dropped} \
                     tag(s) dropped, the text is kept (the article is published flattened)"
                ),
            ));
        }
        if let Some((line, dropped)) = self.many {
            problems.push(Problem::new(
                path,
                Some(body_line + line - 1),
                format!(
                    "more than {MAX_ELEMENTS} elements (paragraphs, list items, links...) \
                     from here: {dropped} tag(s) dropped, the text is kept"
                ),
            ));
        }
        problems
    }
}

/// A `fmt::Write` into a String that tells how much it holds so far.
struct Counting {
    out: String,
    written: Rc<Cell<usize>>,
}

impl fmt::Write for Counting {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.out.push_str(s);
        self.written.set(self.out.len());
        Ok(())
    }
}

/// Relative URLs: fragments point at the prefixed ids, the rest is made
/// absolute against the base URL.
struct ResolveUrl {
    base: Url,
    id_prefix: String,
}

impl UrlRelativeEvaluate<'_> for ResolveUrl {
    fn evaluate<'url>(&self, url: &'url str) -> Option<Cow<'url, str>> {
        match url.strip_prefix('#') {
            Some(id) if id.starts_with(&self.id_prefix) => Some(Cow::Borrowed(url)),
            Some(id) => Some(Cow::Owned(format!("#{}{id}", self.id_prefix))),
            None => self.base.join(url).ok().map(|u| Cow::Owned(u.into())),
        }
    }
}

/// Plain text of the first non-empty `<p>` of sanitized HTML: tags stripped,
/// entities decoded, whitespace collapsed.
fn first_paragraph_text(html: &str) -> String {
    let mut rest = html;
    while let Some(start) = find_p_open(rest) {
        let after = &rest[start..];
        let content_start = tag_end(after);
        let content = &after[content_start..];
        let end = content.find("</p>").unwrap_or(content.len());
        let text = collapse_whitespace(&decode_entities(&strip_tags(&content[..end])));
        if !text.is_empty() {
            return text;
        }
        rest = &content[end..];
    }
    String::new()
}

fn find_p_open(html: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = html[from..].find("<p") {
        let at = from + i;
        if matches!(html.as_bytes().get(at + 2), Some(b'>' | b' ')) {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

/// Length of the tag at the start of `html` (through its '>', quotes respected).
fn tag_end(html: &str) -> usize {
    let mut quoted = false;
    for (i, c) in html.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => return i + 1,
            _ => {}
        }
    }
    html.len()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        rest = &after[tag_end(after)..];
    }
    out.push_str(rest);
    out
}

/// Decodes the entities an HTML serializer writes: the named few and numeric ones.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let c = match &rest[1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                num => {
                    let code = match num.strip_prefix("#x").or_else(|| num.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.strip_prefix('#')?.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://ledger.example/news/").unwrap()
    }

    fn parse_ok(text: &str) -> MarkdownArticle {
        parse(Path::new("issue/piece.md"), text, &base()).unwrap()
    }

    fn parse_err(text: &str) -> Problem {
        parse(Path::new("issue/piece.md"), text, &base()).unwrap_err()
    }

    #[test]
    fn front_matter_and_body() {
        let a = parse_ok(
            "\u{feff}+++\r\ntitle = \"Rents > wages & “temporary” < permanent\"\r\nauthors = [\"Zoë Álvarez\", \"Dariusz Łukasiewicz\"]\r\n\
             date = 2026-11-20T08:00:00Z\r\nsection = \"Housing\"\r\ndateline = \"Gdańsk\"\r\n+++\r\n\r\n\
             First *paragraph* with a [link](../about/) & \"quotes\".\r\n\r\n- one\r\n- two\r\n\r\n> quoted\r\n",
        );
        assert_eq!(a.title, "Rents > wages & “temporary” < permanent");
        assert_eq!(a.authors, ["Zoë Álvarez", "Dariusz Łukasiewicz"]);
        assert_eq!(a.date, NaiveDate::from_ymd_opt(2026, 11, 20));
        assert_eq!(a.section.as_deref(), Some("Housing"));
        assert_eq!(a.dateline.as_deref(), Some("Gdańsk"));
        assert_eq!(a.summary, "First paragraph with a link & \"quotes\".");
        assert!(
            a.html.contains(
                r#"<a href="https://ledger.example/about/" rel="noopener noreferrer">link</a>"#
            ),
            "{}",
            a.html
        );
        assert!(
            a.html.contains("<li>one</li>") && a.html.contains("<blockquote>"),
            "{}",
            a.html
        );
        // No smart punctuation.
        assert!(a.html.contains("&amp; \"quotes\""), "{}", a.html);
    }

    #[test]
    fn optional_fields() {
        let a = parse_ok(
            "+++\ntitle = \"T\"\nauthor = \"Ana Reyes\"\nsummary = \"Given.\"\n+++\nBody.\n",
        );
        assert_eq!(a.authors, ["Ana Reyes"]);
        assert_eq!(a.date, None);
        assert_eq!(a.summary, "Given.");
        assert_eq!(a.dateline, None);
        let a = parse_ok(
            "+++\ntitle = \"T\"\ndate = 2021-11-19\n+++\n# Heading\n\n<p></p>\n\nSecond &amp; real paragraph.",
        );
        assert_eq!(a.date, NaiveDate::from_ymd_opt(2021, 11, 19));
        assert!(a.authors.is_empty());
        assert_eq!(a.summary, "Second & real paragraph.");
    }

    #[test]
    fn tables_strikethrough_footnotes_images() {
        let a = parse_ok(
            "+++\ntitle = \"T\"\n+++\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~ and a note[^n].\n\n[^n]: The note.\n\n![alt](img/x.png \"t\")\n",
        );
        assert!(
            a.html.contains("<table>") && a.html.contains("<td>1</td>"),
            "{}",
            a.html
        );
        assert!(a.html.contains("<del>gone</del>"), "{}", a.html);
        assert!(a.html.contains(r##"<a href="#piece-n""##), "{}", a.html);
        assert!(a.html.contains(r#"id="piece-n""#), "{}", a.html);
        assert!(
            a.html.contains(
                r#"<img src="https://ledger.example/news/img/x.png" alt="alt" title="t">"#
            ),
            "{}",
            a.html
        );
    }

    #[test]
    fn hostile_html_is_sanitized() {
        let a = parse_ok(concat!(
            "+++\ntitle = \"T\"\n+++\n",
            "Hello <script>alert(1)</script> there.\n\n",
            "<script>document.write('x')</script>\n\n",
            "<style>body { display: none }</style>\n\n",
            "<img src=x onerror=alert(1)>\n\n",
            "<a href=\"javascript:alert(1)\">one</a> <a href=\"JaVaScRiPt:alert(2)\">two</a> ",
            "<a href=\" javascript:alert(3)\">three</a> <a href=\"jav&#x09;ascript:alert(4)\">four</a>\n\n",
            "<svg onload=alert(1)><circle r=\"1\"/></svg>\n\n",
            "<iframe src=\"https://evil.example/\"></iframe>\n\n",
            "<p onclick=\"alert(1)\" style=\"color:red\">styled</p>\n\n",
            "[md link](javascript:alert(5))\n",
        ));
        let lower = a.html.to_lowercase();
        for bad in [
            "<script",
            "<style",
            "onerror",
            "onload",
            "onclick",
            "javascript:",
            "<iframe",
            "<svg",
            "style=",
            "alert(1)</",
        ] {
            assert!(!lower.contains(bad), "{bad} survived in {}", a.html);
        }
        assert!(
            !lower.contains(" on"),
            "an on* attribute survived in {}",
            a.html
        );
        assert!(a.html.contains("styled"));
        assert!(
            a.html
                .contains(r#"<img src="https://ledger.example/news/x">"#),
            "{}",
            a.html
        );
        assert_eq!(a.summary, "Hello there.");
    }

    #[test]
    fn unknown_key_names_the_file_line() {
        let p = parse_err("+++\ntitle = \"T\"\n\nsubtitle = \"x\"\n+++\nBody.\n");
        assert_eq!(p.path, Path::new("issue/piece.md"));
        assert_eq!(p.line, Some(4));
        assert!(
            p.message.contains("unknown field `subtitle`"),
            "{}",
            p.message
        );
    }

    #[test]
    fn wrong_type_names_the_file_line() {
        let p = parse_err("+++\ntitle = \"T\"\nauthors = \"Just One\"\n+++\nBody.\n");
        assert_eq!(p.line, Some(3));
        assert!(p.message.contains("invalid type"), "{}", p.message);
        let p = parse_err("+++\ntitle = \"T\"\ndate = \"2021-11-19\"\n+++\nBody.\n");
        assert_eq!(p.line, Some(3), "{p}");
        let p = parse_err("+++\ntitle = 7\n+++\nBody.\n");
        assert_eq!(p.line, Some(2), "{p}");
    }

    #[test]
    fn other_front_matter_problems() {
        let p = parse_err("+++\ntitle = \"T\"\nauthor = \"A\"\nauthors = [\"B\"]\n+++\nBody.\n");
        assert_eq!(p.line, Some(4));
        assert!(p.message.contains("not both"), "{}", p.message);
        let p = parse_err("+++\nauthor = \"A\"\n+++\nBody.\n");
        assert!(p.message.contains("missing field `title`"), "{}", p.message);
        let p = parse_err("+++\ntitle = \"T\"\ndate = 08:00:00\n+++\nBody.\n");
        assert_eq!(p.line, Some(3));
        let p = parse_err("# No front matter\n");
        assert_eq!(p.line, Some(1));
        let p = parse_err("+++\ntitle = \"T\"\nBody.\n");
        assert!(p.message.contains("never closed"), "{}", p.message);
        let p = parse_err("+++\ntitle = \"T\"\n+++\n\n  \n");
        assert_eq!(p.line, Some(4));
        assert!(p.message.contains("no article text"), "{}", p.message);
        let p = parse_err("\u{feff} \n");
        assert_eq!((p.line, p.message.as_str()), (None, "empty file"));
    }

    #[test]
    fn entities_and_tags() {
        assert_eq!(
            decode_entities("a &amp; b &lt;c&gt; &#233; &#xe9; &bogus; & x"),
            "a & b <c> é é &bogus; & x"
        );
        assert_eq!(
            first_paragraph_text("<h1>x</h1><p title=\"a>b\">One <em>two</em></p><p>three</p>"),
            "One two"
        );
    }
}
