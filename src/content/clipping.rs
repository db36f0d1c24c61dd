//! Plain-text clippings of web articles.
//!
//! The layout (see DESIGN.md, "Content"), blank lines between the header lines
//! being one or several:
//!
//! ```text
//! <title>
//! <date, e.g. "November 19, 2021">
//! From the <issue name> issue of <publication>
//! by <author>[, <author> and <author>]          (optional)
//! <paragraphs, separated by blank lines; 2+ blank lines = section break>
//! [web-page trailer such as "Leave a Reply": dropped]
//! ```

use std::path::Path;

use chrono::NaiveDate;

use super::Problem;
use super::nesting::MAX_ELEMENTS;
use super::text::{push_escaped, strip_bom, summarize, without_controls};

/// A parsed clipping.
#[derive(Debug, Clone, PartialEq)]
pub struct Clipping {
    pub title: String,
    pub date: NaiveDate,
    /// The `<issue name>` of the "From the <issue name> issue of <publication>" line.
    pub issue_name: String,
    pub publication: String,
    /// 1-based line of the "From the … issue of …" line.
    pub from_line: usize,
    /// From the by-line; empty when there is none.
    pub authors: Vec<String>,
    /// "Place" when the first paragraph starts with "Place—".
    pub dateline: Option<String>,
    /// Plain-text paragraphs, grouped by section (2+ blank lines start a new
    /// one). Never empty, and no section is empty.
    pub sections: Vec<Vec<String>>,
    /// The first paragraph, shortened.
    pub summary: String,
    /// `<p>` per paragraph, `<hr>` between sections; all text escaped.
    pub html: String,
    /// What was changed to make the clipping safe to publish (control
    /// characters removed): reported, the clipping still published.
    pub warnings: Vec<Problem>,
}

const DATE_EXAMPLES: &str = r#""November 19, 2021", "19 November 2021" or "2021-11-19""#;

/// Parses the text of a clipping (BOM, CRLF and a missing final newline are fine).
/// `path` is only used to name the file in a problem.
pub fn parse(path: &Path, text: &str) -> Result<Clipping, Problem> {
    let (text, controls) = without_controls(path, strip_bom(text));
    let mut warnings: Vec<Problem> = controls.into_iter().collect();
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .collect();
    let problem = |line: usize, message: String| Problem::new(path, Some(line), message);
    let mut at = 0;
    let last_line = lines.last().map_or(1, |&(n, _)| n);

    let Some((title_line, title)) = next_nonblank(&lines, &mut at) else {
        return Err(Problem::new(path, None, "empty file"));
    };

    let Some((date_line, date_text)) = next_nonblank(&lines, &mut at) else {
        return Err(problem(
            title_line + 1,
            r#"expected a date like "November 19, 2021" after the title, found the end of the file"#.to_string(),
        ));
    };
    let date = match parse_date(date_text) {
        Ok(date) => date,
        Err(why) if looks_like_date(date_text) => {
            return Err(problem(
                date_line,
                format!(
                    "cannot read the date {date_text:?}: {why} (write it like {DATE_EXAMPLES})"
                ),
            ));
        }
        Err(_) => {
            return Err(problem(
                date_line,
                format!(
                    r#"expected a date like "November 19, 2021" after the title, found {date_text:?}"#
                ),
            ));
        }
    };

    let from_expected = r#"expected "From the <issue name> issue of <publication>" after the date"#;
    let Some((from_line, from_text)) = next_nonblank(&lines, &mut at) else {
        return Err(problem(
            date_line + 1,
            format!("{from_expected}, found the end of the file"),
        ));
    };
    let Some((issue_name, publication)) = parse_from_line(from_text) else {
        return Err(problem(
            from_line,
            format!("{from_expected}, found {from_text:?}"),
        ));
    };

    // The by-line is optional: only a short line of names, alone in its paragraph.
    let mut header_end = from_line;
    let mut authors = Vec::new();
    let mut peek = at;
    if let Some((by_line, by_text)) = next_nonblank(&lines, &mut peek) {
        let alone = lines.get(peek).is_none_or(|&(_, l)| l.is_empty());
        if let Some(names) = parse_by_line(by_text).filter(|_| alone) {
            authors = names;
            header_end = by_line;
            at = peek;
        }
    }

    let mut paragraphs = body_paragraphs(&lines[at..]);
    drop_trailer(&mut paragraphs);
    if paragraphs.is_empty() {
        return Err(problem(
            last_line.max(header_end),
            format!(
                "no article text after the header (line {header_end}); the clipping needs at least one paragraph"
            ),
        ));
    }

    let dateline = dateline(&paragraphs[0].text);
    let summary = summarize(&paragraphs[0].text);
    let mut sections: Vec<Vec<String>> = Vec::new();
    let mut html = String::new();
    // Elements written: past MAX_ELEMENTS, paragraphs are run on in the
    // last one, so that no clipping costs the renderers more than that.
    let mut elements = 0;
    let mut run_on: Option<(usize, usize)> = None;
    for para in paragraphs {
        let breaks = para.new_section && !sections.is_empty();
        if elements + 1 + usize::from(breaks) > MAX_ELEMENTS {
            let (_, count) = run_on.get_or_insert((para.line, 0));
            *count += 1;
            html.truncate(html.trim_end().len());
            if let Some(open) = html.strip_suffix("</p>").map(str::len) {
                html.truncate(open);
            }
            html.push(' ');
            push_escaped(&mut html, &para.text);
            html.push_str("</p>\n");
            if let Some(section) = sections.last_mut() {
                section.push(para.text);
            }
            continue;
        }
        if breaks || sections.is_empty() {
            if breaks {
                html.push_str("<hr>\n");
                elements += 1;
            }
            sections.push(Vec::new());
        }
        html.push_str("<p>");
        push_escaped(&mut html, &para.text);
        html.push_str("</p>\n");
        elements += 1;
        if let Some(section) = sections.last_mut() {
            section.push(para.text);
        }
    }
    html.truncate(html.trim_end().len());
    if let Some((line, count)) = run_on {
        warnings.push(problem(
            line,
            format!(
                "more than {MAX_ELEMENTS} paragraphs and breaks from here: the last {count} \
                 paragraph(s) are run on in one, the text is kept"
            ),
        ));
    }

    Ok(Clipping {
        title: title.to_string(),
        date,
        issue_name,
        publication,
        from_line,
        authors,
        dateline,
        sections,
        summary,
        html,
        warnings,
    })
}

/// The next non-blank line from `lines[*at..]`; `*at` moves past it.
fn next_nonblank<'a>(lines: &[(usize, &'a str)], at: &mut usize) -> Option<(usize, &'a str)> {
    while let Some(&(n, line)) = lines.get(*at) {
        *at += 1;
        if !line.is_empty() {
            return Some((n, line));
        }
    }
    None
}

/// Why a clipping's date is not one; the words go into the file's
/// [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Neither `YYYY-MM-DD` nor three words (four with a weekday).
    #[error("not a date")]
    NotADate,
    /// Three words, none of them a month's name or abbreviation.
    #[error("no month name")]
    NoMonth,
    #[error("{0:?} is not a four-digit year")]
    Year(String),
    /// A year, month or day that is not all digits (ordinal suffixes of a
    /// day aside).
    #[error("{0:?} is not a number")]
    NotANumber(String),
    /// Numbers that make no day of the calendar (November 31).
    #[error("there is no such day")]
    NoSuchDay,
}

/// Reads "November 19, 2021", "Nov. 19, 2021", "19 November 2021" and
/// "2021-11-19" (a leading weekday such as "Friday," is skipped). The error
/// says what is wrong.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let cleaned = text.replace(',', " ");
    let mut tokens: Vec<&str> = cleaned.split_whitespace().collect();
    if tokens.len() == 4 && is_weekday(tokens[0]) {
        tokens.remove(0);
    }
    let (year, month, day) = match tokens.as_slice() {
        [iso] => {
            let parts: Vec<&str> = iso.split('-').collect();
            match parts.as_slice() {
                [y, m, d]
                    if y.len() == 4 && (1..=2).contains(&m.len()) && (1..=2).contains(&d.len()) =>
                {
                    (number(y)?, number(m)?, number(d)?)
                }
                _ => return Err(DateError::NotADate),
            }
        }
        [a, b, y] => {
            let (month, day) = match (month_number(a), month_number(b)) {
                (Some(m), _) => (m, day_number(b)?),
                (None, Some(m)) => (m, day_number(a)?),
                (None, None) => return Err(DateError::NoMonth),
            };
            if y.len() != 4 {
                return Err(DateError::Year((*y).to_owned()));
            }
            (number(y)?, month, day)
        }
        _ => return Err(DateError::NotADate),
    };
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or(DateError::NoSuchDay)
}

fn number(text: &str) -> Result<u32, DateError> {
    let not_a_number = || DateError::NotANumber(text.to_owned());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    text.parse().map_err(|_| not_a_number())
}

fn day_number(text: &str) -> Result<u32, DateError> {
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|s| text.strip_suffix(s))
        .unwrap_or(text);
    number(digits)
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// 1-12 for a month name or abbreviation ("Nov", "Nov.", "Sept.").
fn month_number(word: &str) -> Option<u32> {
    let word = word.strip_suffix('.').unwrap_or(word).to_lowercase();
    if word == "sept" {
        return Some(9);
    }
    let position = MONTHS
        .iter()
        .position(|m| *m == word || (word.len() == 3 && m.starts_with(&word)))?;
    Some(position as u32 + 1)
}

fn is_weekday(word: &str) -> bool {
    let word = word.strip_suffix('.').unwrap_or(word).to_lowercase();
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .any(|d| *d == word || (word.len() == 3 && d.starts_with(&word)))
}

/// A short line with a digit that is not the next header line: a date written wrong.
fn looks_like_date(text: &str) -> bool {
    text.chars().count() <= 40
        && text.chars().any(|c| c.is_ascii_digit())
        && parse_from_line(text).is_none()
}

/// "From the <issue name> issue of <publication>" -> (issue name, publication).
fn parse_from_line(text: &str) -> Option<(String, String)> {
    let rest = strip_prefix_ignore_case(text, "from the ")?;
    let (issue, publication) = rest.split_once(" issue of ")?;
    let (issue, publication) = (issue.trim(), publication.trim());
    if issue.is_empty() || publication.is_empty() {
        return None;
    }
    Some((issue.to_string(), publication.to_string()))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// "by A", "by A and B", "by A, B and C", "By A, B, and C" -> the names.
/// None when the line is not a plausible by-line (e.g. a sentence starting
/// with "By").
fn parse_by_line(text: &str) -> Option<Vec<String>> {
    let rest = strip_prefix_ignore_case(text, "by ")?;
    let mut names = Vec::new();
    for piece in rest.split(',') {
        let piece = piece.trim();
        let piece = piece.strip_prefix("and ").unwrap_or(piece);
        for name in piece.split(" and ") {
            names.push(name.trim().to_string());
        }
    }
    let plausible = |name: &String| {
        let words = name.split_whitespace().count();
        (1..=6).contains(&words)
            && name.chars().next().is_some_and(|c| !c.is_lowercase())
            && !name.contains(['!', '?', ';', ':', '"', '“', '”'])
    };
    names.iter().all(plausible).then_some(names)
}

/// One paragraph of the body.
#[derive(Debug)]
struct Paragraph {
    text: String,
    /// 1-based line of its first line.
    line: usize,
    /// Two or more blank lines before it (ignored for the first).
    new_section: bool,
}

/// Paragraphs of the body lines: lines of one paragraph are joined by a space.
fn body_paragraphs(lines: &[(usize, &str)]) -> Vec<Paragraph> {
    let mut paragraphs: Vec<Paragraph> = Vec::new();
    let mut blank_run = 0;
    for &(n, line) in lines {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        match paragraphs.last_mut() {
            Some(para) if blank_run == 0 => {
                para.text.push(' ');
                para.text.push_str(line);
            }
            _ => paragraphs.push(Paragraph {
                text: line.to_string(),
                line: n,
                new_section: blank_run >= 2,
            }),
        }
        blank_run = 0;
    }
    paragraphs
}

/// Phrases of a web page's comment form; a trailer is made only of these.
/// Longer phrases come before their prefixes.
const TRAILER_PHRASES: [&str; 17] = [
    "save my name, email, and website in this browser for the next time i comment.",
    "your email address will not be published.",
    "your email address will not be published",
    "required fields are marked *",
    "required fields are marked",
    "leave a comment",
    "leave a reply",
    "cancel reply",
    "post comment",
    "comment *",
    "comment",
    "name *",
    "name",
    "email *",
    "email",
    "website",
    "*",
];

/// The phrases that mark a run of paragraphs as a trailer; the others alone
/// ("Name", "Website") could end an article.
const TRAILER_MARKERS: [&str; 4] = [
    "leave a",
    "cancel reply",
    "your email address",
    "required fields",
];

fn is_trailer_paragraph(text: &str) -> bool {
    let lower = text.to_lowercase();
    let mut rest = lower.trim();
    while !rest.is_empty() {
        let Some(phrase) = TRAILER_PHRASES.iter().find(|p| rest.starts_with(*p)) else {
            return false;
        };
        rest = rest[phrase.len()..].trim_start();
    }
    true
}

/// Drops the web page's comment-form trailer, only at the end of the text.
fn drop_trailer(paragraphs: &mut Vec<Paragraph>) {
    let keep = paragraphs
        .iter()
        .rposition(|p| !is_trailer_paragraph(&p.text))
        .map_or(0, |i| i + 1);
    let marked = paragraphs[keep..].iter().any(|p| {
        let lower = p.text.to_lowercase();
        TRAILER_MARKERS.iter().any(|m| lower.contains(m))
    });
    if marked {
        paragraphs.truncate(keep);
    }
}

/// "Place" of a first paragraph "Place—Text" (or "Place — Text"): a short
/// capitalized name, followed by a capitalized sentence.
fn dateline(first_paragraph: &str) -> Option<String> {
    let (place, rest) = first_paragraph.split_once('—')?;
    let place = place.trim();
    let starts_upper = |s: &str| s.chars().next().is_some_and(|c| c.is_uppercase());
    let words = place.split_whitespace().count();
    let ok = (1..=5).contains(&words)
        && place.chars().count() <= 60
        && starts_upper(place)
        && !place.contains(['!', '?', ';', ':', '"', '“', '”', '(', ')'])
        && rest
            .trim_start()
            .chars()
            .next()
            .is_some_and(|c| !c.is_lowercase());
    ok.then(|| place.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn parse_ok(text: &str) -> Clipping {
        parse(Path::new("fixture.txt"), text).unwrap()
    }

    fn parse_err(text: &str) -> Problem {
        parse(Path::new("dir/bad.txt"), text).unwrap_err()
    }

    /// An article as saved from a web page, kept in the repository so the
    /// test always runs: header lines, a three-name by-line, a "Place—"
    /// dateline, a paragraph wrapped over two lines, a section break and a
    /// comment-form trailer to drop.
    const WEB_CLIPPING: &str = include_str!("testdata/the-night-the-ferry-stopped.txt");

    fn assert_web_clipping(c: &Clipping) {
        assert_eq!(c.title, "The night the river ferry stopped");
        assert_eq!(c.date, date(2025, 3, 14));
        assert_eq!(c.issue_name, "Spring 2025");
        assert_eq!(c.publication, "The Lantern Quarterly");
        assert_eq!(c.from_line, 6);
        assert_eq!(c.authors, ["Mira Osei", "Jonas Feld", "Inês Duarte"]);
        assert_eq!(c.dateline.as_deref(), Some("Vellmouth"));
        let first = "Vellmouth—For the first time in forty years, the ferry that joins \
            the two halves of Vellmouth did not sail on a weekday. Its crew of eleven, with \
            the ticket office and the mechanics from the slipway, walked off at six in the \
            morning after the operator said the night sailings would end in April and two \
            deckhand posts with them.";
        let quote = "“We are not asking for more,” said the pilot, Rosa Keane. \
            “We are asking that the last boat home & the people on it still count.”";
        assert_eq!(
            c.sections,
            [
                vec![
                    first.to_string(),
                    "Commuters who had crossed by boat all their lives stood on the quay in \
                     the rain, reading the notice taped to the gate."
                        .to_string(),
                    quote.to_string(),
                ],
                vec![
                    "By noon the council had called both sides to the town hall <main chamber>, \
                     the first such meeting since the bridge tolls were raised."
                        .to_string(),
                    "The crews say they will sail again on Monday if the night timetable stays."
                        .to_string(),
                ],
            ]
        );
        assert_eq!(
            c.html,
            format!(
                "<p>{first}</p>\n\
                 <p>Commuters who had crossed by boat all their lives stood on the quay in the \
                 rain, reading the notice taped to the gate.</p>\n\
                 <p>“We are not asking for more,” said the pilot, Rosa Keane. “We are asking \
                 that the last boat home &amp; the people on it still count.”</p>\n\
                 <hr>\n\
                 <p>By noon the council had called both sides to the town hall \
                 &lt;main chamber&gt;, the first such meeting since the bridge tolls were \
                 raised.</p>\n\
                 <p>The crews say they will sail again on Monday if the night timetable \
                 stays.</p>"
            )
        );
        assert_eq!(
            c.summary,
            "Vellmouth—For the first time in forty years, the ferry that joins the two halves \
             of Vellmouth did not sail on a weekday. Its crew of eleven, with the ticket office \
             and the mechanics from the slipway, walked off at six in the morning after the \
             operator said the night sailings would end in April and…"
        );
    }

    #[test]
    fn web_clipping() {
        assert!(
            !WEB_CLIPPING.contains('\r'),
            "the fixture is stored with LF"
        );
        assert_web_clipping(&parse_ok(WEB_CLIPPING));
    }

    #[test]
    fn web_clipping_with_crlf_and_a_bom_and_no_final_newline() {
        let crlf = format!("\u{feff}{}", WEB_CLIPPING.trim_end().replace('\n', "\r\n"));
        assert_web_clipping(&parse_ok(&crlf));
    }

    /// CRLF, a BOM, no final newline, several blank lines between header lines,
    /// an em-dash dateline, a section break, two authors and the trailer.
    const FIXTURE: &str = "\u{feff}Tides & \"tolls\" at the <quay>\r\n\r\n\r\nMarch 3, 2024\r\n\r\n\r\n\r\nFrom the Spring 2024 issue of The Harbour Ledger\r\n\r\nby Ana Reyes and Tom O'Neill\r\n\r\nPort Aven—The ferry <b>fare</b> rose & rose again.\r\nA second line of the same paragraph.\r\n\r\nSecond paragraph.\r\n\r\n\r\nAfter the break.\r\n\r\nLeave a Reply\r\n\r\nYour email address will not be published. Required fields are marked *\r\n\r\nComment *\r\n\r\nName *\r\n\r\nEmail *\r\n\r\nWebsite\r\n\r\nCancel reply";

    #[test]
    fn fixture_clipping() {
        let c = parse_ok(FIXTURE);
        assert_eq!(c.title, "Tides & \"tolls\" at the <quay>");
        assert_eq!(c.date, date(2024, 3, 3));
        assert_eq!(c.issue_name, "Spring 2024");
        assert_eq!(c.publication, "The Harbour Ledger");
        assert_eq!(c.authors, ["Ana Reyes", "Tom O'Neill"]);
        assert_eq!(c.dateline.as_deref(), Some("Port Aven"));
        assert_eq!(
            c.sections,
            [
                vec![
                    "Port Aven—The ferry <b>fare</b> rose & rose again. A second line of the same paragraph.".to_string(),
                    "Second paragraph.".to_string()
                ],
                vec!["After the break.".to_string()],
            ]
        );
        assert_eq!(
            c.html,
            "<p>Port Aven—The ferry &lt;b&gt;fare&lt;/b&gt; rose &amp; rose again. A second line of the same paragraph.</p>\n\
             <p>Second paragraph.</p>\n<hr>\n<p>After the break.</p>"
        );
        assert_eq!(
            c.summary,
            "Port Aven—The ferry <b>fare</b> rose & rose again. A second line of the same paragraph."
        );
    }

    #[test]
    fn by_lines() {
        let with = |by: &str| {
            parse_ok(&format!(
                "T\nMay 1, 2020\nFrom the May issue of P\n{by}\n\nText.\n"
            ))
            .authors
        };
        assert_eq!(
            with("by A. Smith, B. Jones and C. Wu"),
            ["A. Smith", "B. Jones", "C. Wu"]
        );
        assert_eq!(
            with("By A. Smith, B. Jones, and C. Wu"),
            ["A. Smith", "B. Jones", "C. Wu"]
        );
        assert_eq!(with("BY Zoë Álvarez"), ["Zoë Álvarez"]);
        // A sentence starting with "By" is the body.
        let c = parse_ok(
            "T\nMay 1, 2020\nFrom the May issue of P\n\nBy the time we came, the tide was out.\n",
        );
        assert!(c.authors.is_empty());
        assert_eq!(
            c.sections,
            [vec!["By the time we came, the tide was out.".to_string()]]
        );
        // No by-line at all.
        let c = parse_ok("T\nMay 1, 2020\nFrom the May issue of P\n\nText.");
        assert!(c.authors.is_empty());
    }

    #[test]
    fn date_forms() {
        let d = date(2021, 11, 19);
        for text in [
            "November 19, 2021",
            "Nov. 19, 2021",
            "Nov 19 2021",
            "19 November 2021",
            "19 Nov. 2021",
            "2021-11-19",
            "Friday, November 19, 2021",
            "november 19th, 2021",
        ] {
            assert_eq!(parse_date(text), Ok(d), "{text}");
        }
        assert_eq!(parse_date("Sept. 5, 2021"), Ok(date(2021, 9, 5)));
        for (text, why) in [
            ("November 31, 2021", "there is no such day"),
            ("2021-13-01", "there is no such day"),
            ("Novembr 19, 2021", "no month name"),
            ("19/11/2021", "not a date"),
            ("Nov 19", "not a date"),
            ("November 19, 21", "\"21\" is not a four-digit year"),
            ("November 19x, 2021", "\"19x\" is not a number"),
            ("2021-1a-01", "\"1a\" is not a number"),
            (
                "November 99999999999, 2021",
                "\"99999999999\" is not a number",
            ),
        ] {
            let e = parse_date(text).unwrap_err();
            assert_eq!(e.to_string(), why, "{text}");
        }
        assert_eq!(
            parse_date("Nov 19th, 2O21"),
            Err(DateError::NotANumber("2O21".into()))
        );
    }

    #[test]
    fn datelines() {
        assert_eq!(
            dateline("Mexico City — Once again"),
            Some("Mexico City".into())
        );
        assert_eq!(
            dateline("Tapachula, Chiapas—The caravan"),
            Some("Tapachula, Chiapas".into())
        );
        assert_eq!(dateline("The caravan—primarily Haitians—walked on."), None);
        assert_eq!(
            dateline("It is a long way from here to there and back—Yes."),
            None
        );
        assert_eq!(dateline("Why? Because—No."), None);
        assert_eq!(dateline("No dash here."), None);
    }

    #[test]
    fn trailer_only_at_the_end() {
        let c = parse_ok(
            "T\nMay 1, 2020\nFrom the May issue of P\n\nLeave a Reply\n\nText.\n\nWebsite\n",
        );
        // "Leave a Reply" in the middle stays; a lone "Website" at the end is text.
        assert_eq!(
            c.sections,
            [vec![
                "Leave a Reply".to_string(),
                "Text.".to_string(),
                "Website".to_string()
            ]]
        );
        let c = parse_ok("T\nMay 1, 2020\nFrom the May issue of P\n\nText.\n\n\nLeave a Reply\n");
        assert_eq!(c.sections, [vec!["Text.".to_string()]]);
        assert!(!c.html.contains("<hr>"));
    }

    #[test]
    fn missing_date_line() {
        let p = parse_err("Title\n\nFrom the May issue of P\n\nText.\n");
        assert_eq!(p.line, Some(3));
        assert_eq!(p.path, Path::new("dir/bad.txt"));
        assert!(
            p.message.starts_with(
                r#"expected a date like "November 19, 2021" after the title, found "From the May"#
            ),
            "{}",
            p.message
        );
    }

    #[test]
    fn unparseable_date() {
        let p = parse_err("Title\n\nNovember 31, 2021\n\nFrom the May issue of P\n\nText.\n");
        assert_eq!(p.line, Some(3));
        assert!(
            p.message
                .contains("cannot read the date \"November 31, 2021\": there is no such day"),
            "{}",
            p.message
        );
        assert!(p.to_string().starts_with("dir/bad.txt:3: "), "{p}");
    }

    #[test]
    fn missing_from_line() {
        let p = parse_err("Title\nMay 1, 2020\nby Someone\n\nText.\n");
        assert_eq!(p.line, Some(3));
        assert!(
            p.message
                .contains("From the <issue name> issue of <publication>"),
            "{}",
            p.message
        );
    }

    #[test]
    fn empty_and_bodiless() {
        let p = parse_err("\u{feff}\r\n  \r\n");
        assert_eq!((p.line, p.message.as_str()), (None, "empty file"));
        let p = parse_err("Title\nMay 1, 2020\nFrom the May issue of P\nby A\n\nLeave a Reply\n");
        assert_eq!(p.line, Some(6));
        assert!(p.message.starts_with("no article text"), "{}", p.message);
        let p = parse_err("Title");
        assert_eq!(p.line, Some(2));
    }
}
