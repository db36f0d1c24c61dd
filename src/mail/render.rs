//! Digest rendering: minijinja templates -> (HTML with CSS inlined, plain text),
//! once per issue; per recipient only a few marked slots are filled in.
//!
//! Templates are looked up by name in `templates/` beside config.toml first,
//! then in the defaults compiled in from the repository's `templates/`
//! (loaded by [`crate::templates`], as the page templates are). Every error
//! names the template file and line.
//!
//! Per-recipient values (`recipient.name`, `.email`, `.unsubscribe_url`,
//! `.preferences_url`) are rendered as markers that no content can contain
//! (they embed the issue's content hash). [`Renderer::prepare`] renders and
//! inlines CSS once, then splits the output at the markers; [`Digest::message`]
//! only concatenates pieces, escaping the values for the HTML part. Templates
//! are rendered twice (with a name and without) so that `{% if recipient.name %}`
//! works, and once more without a recipient for the web version.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::value::Kwargs;
use minijinja::{Value, context};

use crate::config::{Config, DigestBody, Publication};
use crate::content::text::push_escaped;
use crate::content::{Article, ContentHash, Issue, SourceFormat};
use crate::subscribers::MailFormat;
use crate::templates::{Inline, TemplateSet};
pub use crate::templates::{TemplateError, templates_dir};

use super::message::{EncodedBody, EncodedParts, Outgoing, Sender, SenderError, build_message};
use super::qp;
use super::{Recipient, RenderError};

/// The editable defaults, compiled in. A file of the same name in the
/// `templates/` folder beside config.toml replaces one.
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("layout.txt", include_str!("../../templates/layout.txt")),
    ("digest.html", include_str!("../../templates/digest.html")),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("style.css", include_str!("../../templates/style.css")),
];

/// The name the `mail.subject` template is registered under.
const SUBJECT: &str = "mail.subject";

/// Longer subjects are cut (with "…"); mail clients show far fewer.
const MAX_SUBJECT: usize = 200;

/// Longer recipient names are cut: they go into the To header.
const MAX_NAME: usize = 200;

/// Width of the plain-text part (article bodies and wrapped lines).
pub const TEXT_WIDTH: usize = 72;

/// What [`Renderer`] needs from the config, kept so a renderer outlives it.
#[derive(Debug, Clone)]
struct Settings {
    publication: Publication,
    digest: DigestBody,
}

/// Compiled templates plus what the messages need from the config.
pub struct Renderer {
    templates: TemplateSet,
    settings: Arc<Settings>,
    /// `Err` when `mail.from` is missing or unusable: only sending needs it.
    sender: Result<Arc<Sender>, SenderError>,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer")
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// Compile the templates (overrides first, then the built-ins) and the
    /// subject. The first syntax error is returned; see [`Renderer::load_all`].
    pub fn load(config: &Config) -> Result<Renderer, TemplateError> {
        Renderer::load_all(config).map_err(|mut errors| errors.remove(0))
    }

    /// Like [`Renderer::load`], reporting every template that fails to compile.
    /// The error list is never empty.
    pub fn load_all(config: &Config) -> Result<Renderer, Vec<TemplateError>> {
        let subject = Inline {
            name: SUBJECT,
            source: config.mail.subject.clone(),
            described_as: format!("mail.subject in {}", config.path.display()),
        };
        let templates = TemplateSet::load(
            templates_dir(config),
            BUILTIN_TEMPLATES,
            vec![subject],
            |env| env.add_filter("wrap", wrap_filter),
        )?;
        Ok(Renderer {
            templates,
            settings: Arc::new(Settings {
                publication: config.publication.clone(),
                digest: config.mail.digest,
            }),
            sender: Sender::from_config(config).map(Arc::new),
        })
    }

    /// Render every template against a sample issue, in both digest modes,
    /// with and without a recipient name, and the web version; also check that
    /// mail could be sent (`mail.from`). For `gazette check`.
    pub fn check(&self) -> Result<(), RenderError> {
        let issue = sample_issue();
        for digest in [DigestBody::Full, DigestBody::Summary] {
            self.render_all(&issue, Utc::now(), digest)?;
        }
        match &self.sender {
            Ok(_) => Ok(()),
            Err(e) => Err(RenderError::Sender(e.clone())),
        }
    }

    /// Whether mail could be sent with this config (`mail.from` set and usable).
    pub fn sender_problem(&self) -> Option<&SenderError> {
        self.sender.as_ref().err()
    }

    /// Render and inline once for `issue`; the `Date` of every message is now.
    pub fn prepare(&self, issue: &Issue) -> Result<Digest, RenderError> {
        self.prepare_at(issue, Utc::now())
    }

    /// Like [`Renderer::prepare`], with the publication time for the `Date` header.
    pub fn prepare_at(&self, issue: &Issue, date: DateTime<Utc>) -> Result<Digest, RenderError> {
        self.render_all(issue, date, self.settings.digest)
    }

    fn render_all(
        &self,
        issue: &Issue,
        date: DateTime<Utc>,
        mode: DigestBody,
    ) -> Result<Digest, RenderError> {
        let slots = Slots::for_issue(&issue.hash);
        let ctx = self.context(issue, mode)?;
        let subject = self.render_subject(&ctx)?;

        let named = self.variant(&ctx, Some(slots.recipient(true)), &slots)?;
        let anonymous = self.variant(&ctx, Some(slots.recipient(false)), &slots)?;
        let web = self.variant(&ctx, None, &slots)?;
        let (html_web, text_web) = match (&web.html[..], &web.text[..]) {
            ([Piece::Text(h)], [Piece::Text(t)]) => (h.clone(), t.clone()),
            ([], [Piece::Text(t)]) => (String::new(), t.clone()),
            _ => {
                return Err(TemplateError {
                    file: self.templates.describe("digest.html"),
                    line: None,
                    message: "recipient values are used outside `{% if recipient %}`: the web version has no recipient".into(),
                }
                .into());
            }
        };
        Ok(Digest {
            issue_slug: issue.slug.clone(),
            subject,
            date,
            named,
            anonymous,
            html_web,
            text_web,
            publication: self.settings.clone(),
            sender: self.sender.clone(),
        })
    }

    /// The web version of `issue` alone: digest.html without a recipient,
    /// CSS inlined. Cheaper than [`Renderer::prepare`] (one rendering, no
    /// text part, no encoding), for the web pages.
    pub fn web_html(&self, issue: &Issue) -> Result<String, RenderError> {
        let ctx = self.context(issue, self.settings.digest)?;
        let ctx = context! { recipient => Value::from(()), ..ctx };
        let html = self.render("digest.html", &ctx)?;
        self.inline_css(&html)
    }

    fn inline_css(&self, html: &str) -> Result<String, RenderError> {
        let inliner = css_inline::CSSInliner::options()
            .load_remote_stylesheets(false)
            .build();
        Ok(inliner
            .inline(html)
            .map_err(|e| RenderError::Css {
                template: self.templates.describe("digest.html"),
                message: e.to_string(),
            })?
            .replace("\r\n", "\n"))
    }

    fn render_subject(&self, ctx: &Value) -> Result<String, RenderError> {
        let raw = self.templates.render(SUBJECT, ctx)?;
        // One line, whatever the template did, and short enough that no
        // header line can pass 998 octets.
        let mut subject = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if subject.chars().count() > MAX_SUBJECT {
            subject = subject.chars().take(MAX_SUBJECT - 1).collect::<String>() + "…";
        }
        if subject.is_empty() {
            return Err(TemplateError {
                file: self.templates.describe(SUBJECT),
                line: None,
                message: "the subject is empty".into(),
            }
            .into());
        }
        Ok(subject)
    }

    /// Render digest.html (CSS inlined) and digest.txt with `recipient`, and
    /// split both at the slot markers.
    fn variant(
        &self,
        ctx: &Value,
        recipient: Option<Value>,
        slots: &Slots,
    ) -> Result<Variant, RenderError> {
        let ctx = context! { recipient => recipient, ..ctx.clone() };
        let html = self.render("digest.html", &ctx)?;
        let html = self.inline_css(&html)?;
        let text = tidy_text(&self.render("digest.txt", &ctx)?);
        let html = slots
            .split(&html)
            .map_err(|m| self.slot_error("digest.html", m))?;
        let text = slots
            .split(&text)
            .map_err(|m| self.slot_error("digest.txt", m))?;
        Ok(Variant {
            html_qp: encode_pieces(&html),
            text_qp: encode_pieces(&text),
            html_ascii: all_ascii(&html),
            text_ascii: all_ascii(&text),
            html,
            text,
        })
    }

    fn slot_error(&self, name: &str, message: String) -> RenderError {
        TemplateError {
            file: self.templates.describe(name),
            line: None,
            message,
        }
        .into()
    }

    fn render(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        Ok(self.templates.render(name, ctx)?)
    }

    /// Everything but the recipient.
    fn context(&self, issue: &Issue, mode: DigestBody) -> Result<Value, RenderError> {
        let p = &self.settings.publication;
        let digest = match mode {
            DigestBody::Full => "full",
            DigestBody::Summary => "summary",
        };
        let issue_url = p.url(&format!("issues/{}", issue.slug));
        let mut articles = Vec::with_capacity(issue.articles.len());
        for a in &issue.articles {
            articles.push(article_value(a, &issue_url, mode)?);
        }
        let publication = context! {
            title => p.title.clone(),
            description => p.description.clone(),
            url => p.base_url.to_string(),
            language => p.language.clone(),
            feeds => context! {
                atom => p.url("feeds/atom.xml"),
                rss => p.url("feeds/rss.xml"),
                json => p.url("feeds/feed.json"),
            },
        };
        let issue_v = context! {
            slug => issue.slug.clone(),
            title => issue.title.clone(),
            date => issue.date.to_string(),
            date_human => human_date(issue.date),
            number => issue.number,
            volume => issue.volume,
            summary => issue.summary.clone(),
            url => issue_url,
            article_count => issue.articles.len(),
        };
        Ok(context! {
            publication => publication,
            issue => issue_v,
            articles => articles,
            digest => digest,
        })
    }
}

fn article_value(a: &Article, issue_url: &str, mode: DigestBody) -> Result<Value, RenderError> {
    let text = html_to_text(&a.html).map_err(|error| RenderError::Text {
        article: a.source.display().to_string(),
        error,
    })?;
    let (body_html, body_text) = match mode {
        DigestBody::Full => (a.html.clone(), text.clone()),
        DigestBody::Summary => {
            let mut h = String::from("<p>");
            push_escaped(&mut h, &a.summary);
            h.push_str("</p>");
            (h, wrap(&a.summary, TEXT_WIDTH, ""))
        }
    };
    Ok(context! {
        slug => a.slug.clone(),
        anchor => a.slug.clone(),
        title => a.title.clone(),
        authors => a.authors.clone(),
        byline => byline(&a.authors),
        date => a.date.to_string(),
        date_human => human_date(a.date),
        section => a.section.clone(),
        dateline => a.dateline.clone(),
        summary => a.summary.clone(),
        html => Value::from_safe_string(a.html.clone()),
        text => text,
        body_html => Value::from_safe_string(body_html),
        body_text => body_text,
        url => format!("{issue_url}#{}", a.slug),
    })
}

/// "A", "A and B", "A, B and C"; none when there is no by-line.
fn byline(authors: &[String]) -> Option<String> {
    match authors {
        [] => None,
        [one] => Some(one.clone()),
        [init @ .., last] => Some(format!("{} and {last}", init.join(", "))),
    }
}

/// "20 November 2026".
pub fn human_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// html2text could not read an article's HTML.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TextError(#[from] html2text::Error);

/// Article HTML as plain text, wrapped at [`TEXT_WIDTH`]; links become
/// numbered references with the URLs listed after the text (never broken).
pub fn html_to_text(html: &str) -> Result<String, TextError> {
    // Each quote level indents the text: deep (but bounded, see
    // content::nesting) quotes may need more than the width, and the text
    // is better too wide than missing.
    let text = html2text::config::plain()
        .no_link_wrapping()
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), TEXT_WIDTH)?;
    Ok(text.trim_end().to_string())
}

/// Greedy word wrap at `width` characters, paragraph by paragraph (existing
/// line breaks are kept); continuation lines start with `indent`. A word
/// longer than the line (a URL) gets a line of its own, unbroken.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut col = 0;
        let mut first = true;
        for word in line.split_whitespace() {
            let w = word.chars().count();
            if first {
                first = false;
            } else if col + 1 + w > width {
                out.push('\n');
                out.push_str(indent);
                col = indent.chars().count();
            } else {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += w;
        }
    }
    out
}

/// The `wrap` filter: `{{ text | wrap }}`, `{{ text | wrap(60) }}`,
/// `{{ text | wrap(indent="   ") }}`.
fn wrap_filter(
    value: &str,
    width: Option<usize>,
    kwargs: Kwargs,
) -> Result<String, minijinja::Error> {
    let width = match kwargs.get::<Option<usize>>("width")? {
        Some(w) => w,
        None => width.unwrap_or(TEXT_WIDTH),
    };
    let indent = kwargs.get::<Option<&str>>("indent")?.unwrap_or("");
    kwargs.assert_all_used()?;
    Ok(wrap(value, width.max(10), indent))
}

/// No trailing spaces (except a "-- " signature line), at most two blank
/// lines in a row, exactly one final newline.
fn tidy_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blanks = 0;
    for line in s.trim_start_matches('\n').lines() {
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            blanks += 1;
            if blanks > 2 {
                continue;
            }
        } else {
            blanks = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

// ---------------------------------------------------------------------------
// Per-recipient slots

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Name,
    Email,
    Unsubscribe,
    Preferences,
}

const SLOTS: [(Slot, &str); 4] = [
    (Slot::Name, "name"),
    (Slot::Email, "email"),
    (Slot::Unsubscribe, "unsubscribe_url"),
    (Slot::Preferences, "preferences_url"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Slot),
}

/// The markers of one issue: `gz{16 hex of the content hash}{slot}z`. Only
/// letters, digits and '_', so HTML escaping, URL encoding, CSS inlining and
/// text wrapping leave them alone.
struct Slots {
    prefix: String,
}

impl Slots {
    fn for_issue(hash: &ContentHash) -> Slots {
        Slots {
            prefix: format!("gz{}", &hash.to_hex()[..16]),
        }
    }

    fn marker(&self, slot: Slot) -> String {
        let name = SLOTS
            .iter()
            .find(|(s, _)| *s == slot)
            .map_or("", |(_, n)| n);
        format!("{}{name}z", self.prefix)
    }

    fn recipient(&self, with_name: bool) -> Value {
        context! {
            name => with_name.then(|| self.marker(Slot::Name)),
            email => self.marker(Slot::Email),
            unsubscribe_url => self.marker(Slot::Unsubscribe),
            preferences_url => self.marker(Slot::Preferences),
        }
    }

    /// Split rendered output at the markers. A marker that a filter changed
    /// (`upper`, `truncate`, ...) can't be filled in: that is an error.
    fn split(&self, s: &str) -> Result<Vec<Piece>, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(at) = find_ascii_ci(rest, &self.prefix) {
            let after = &rest[at + self.prefix.len()..];
            let Some((slot, len)) = SLOTS.iter().find_map(|(slot, name)| {
                let m = format!("{name}z");
                after.starts_with(&m).then_some((*slot, m.len()))
            }) else {
                return Err(
                    "a recipient value was changed by a filter; recipient.name, .email, .unsubscribe_url and .preferences_url are filled in per message and must be output as they are".into(),
                );
            };
            if at > 0 {
                pieces.push(Piece::Text(rest[..at].to_string()));
            }
            pieces.push(Piece::Slot(slot));
            rest = &after[len..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(pieces)
    }
}

/// Byte offset of `needle` (ASCII) in `hay`, ignoring ASCII case.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let first = n.first()?;
    let mut i = 0;
    while i + n.len() <= h.len() {
        let pos = h[i..=h.len() - n.len()]
            .iter()
            .position(|b| b.eq_ignore_ascii_case(first))?;
        let at = i + pos;
        if h[at..at + n.len()].eq_ignore_ascii_case(n) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// One rendering of the digest, split at the slots; the `_qp` pieces are the
/// same, quoted-printable encoded once (see [`super::qp`]).
#[derive(Debug, Clone)]
struct Variant {
    html: Vec<Piece>,
    text: Vec<Piece>,
    html_qp: Vec<Piece>,
    text_qp: Vec<Piece>,
    /// Every literal piece is ASCII: the filled body may go 7bit.
    html_ascii: bool,
    text_ascii: bool,
}

fn all_ascii(pieces: &[Piece]) -> bool {
    pieces.iter().all(|p| match p {
        Piece::Text(t) => qp::is_seven_bit_text(t),
        Piece::Slot(_) => true,
    })
}

fn encode_pieces(pieces: &[Piece]) -> Vec<Piece> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => {
                let mut enc = String::new();
                qp::encode_piece(t, &mut enc);
                Piece::Text(enc)
            }
            Piece::Slot(s) => Piece::Slot(*s),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The prepared digest

/// The two bodies of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub html: String,
    pub text: String,
}

/// An issue rendered once, ready to be filled in per recipient.
pub struct Digest {
    issue_slug: String,
    subject: String,
    date: DateTime<Utc>,
    named: Variant,
    anonymous: Variant,
    html_web: String,
    text_web: String,
    publication: Arc<Settings>,
    sender: Result<Arc<Sender>, SenderError>,
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digest")
            .field("issue_slug", &self.issue_slug)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Digest {
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn issue_slug(&self) -> &str {
        &self.issue_slug
    }

    /// The web version: the digest HTML (CSS inlined) with no recipient parts.
    pub fn html_web(&self) -> &str {
        &self.html_web
    }

    /// The plain text with no recipient parts.
    pub fn text(&self) -> &str {
        &self.text_web
    }

    pub fn unsubscribe_url(&self, token: &str) -> String {
        self.publication
            .publication
            .url(&format!("unsubscribe/{token}"))
    }

    pub fn preferences_url(&self, token: &str) -> String {
        self.publication
            .publication
            .url(&format!("preferences/{token}"))
    }

    /// The HTML and text bodies for one recipient.
    pub fn parts(&self, r: &Recipient<'_>) -> Result<Parts, RenderError> {
        let v = Values::new(self, r);
        let variant = v.variant(self);
        Ok(Parts {
            html: fill(&variant.html, |slot, out| push_escaped(out, v.get(slot))),
            text: fill(&variant.text, |slot, out| out.push_str(v.get(slot))),
        })
    }

    /// The complete message for one recipient: the pre-encoded pieces with
    /// the slot values encoded in between, then lettre for the headers.
    /// Multipart (text + HTML); see [`Digest::message_as`].
    pub fn message(&self, r: &Recipient<'_>) -> Result<Outgoing, RenderError> {
        self.message_as(r, MailFormat::Html)
    }

    /// [`Digest::message`] in the format the subscriber chose: with
    /// [`MailFormat::Text`] a single text/plain part (the HTML is not even
    /// filled in), every header the same.
    pub fn message_as(
        &self,
        r: &Recipient<'_>,
        format: MailFormat,
    ) -> Result<Outgoing, RenderError> {
        let sender = self
            .sender
            .as_ref()
            .map_err(|e| RenderError::Sender(e.clone()))?;
        let v = Values::new(self, r);
        let variant = v.variant(self);
        // 7bit when the filled body allows it (links stay whole on their
        // lines), else the pre-encoded quoted-printable pieces.
        let html = match format {
            MailFormat::Text => None,
            MailFormat::Html => Some(
                variant
                    .html_ascii
                    .then(|| {
                        qp::seven_bit(&fill(&variant.html, |slot, out| {
                            push_escaped(out, v.get(slot))
                        }))
                    })
                    .flatten()
                    .map(EncodedBody::seven_bit)
                    .unwrap_or_else(|| {
                        let mut scratch = String::new();
                        EncodedBody::quoted_printable(qp::finish(fill(
                            &variant.html_qp,
                            |slot, out| {
                                scratch.clear();
                                push_escaped(&mut scratch, v.get(slot));
                                qp::encode_piece(&scratch, out);
                            },
                        )))
                    }),
            ),
        };
        let text = variant
            .text_ascii
            .then(|| qp::seven_bit(&fill(&variant.text, |slot, out| out.push_str(v.get(slot)))))
            .flatten()
            .map(EncodedBody::seven_bit)
            .unwrap_or_else(|| {
                EncodedBody::quoted_printable(qp::finish(fill(&variant.text_qp, |slot, out| {
                    qp::encode_piece(v.get(slot), out)
                })))
            });
        build_message(
            sender,
            &self.issue_slug,
            &self.subject,
            self.date,
            r,
            v.name.as_deref(),
            &v.unsubscribe,
            EncodedParts { html, text },
        )
    }
}

/// The per-recipient values, checked.
struct Values<'a> {
    name: Option<String>,
    email: &'a str,
    unsubscribe: String,
    preferences: String,
}

impl<'a> Values<'a> {
    fn new(d: &Digest, r: &Recipient<'a>) -> Values<'a> {
        Values {
            name: r
                .name
                .map(|n| clean_name(n.as_str()))
                .filter(|n| !n.is_empty()),
            email: r.email.as_str(),
            unsubscribe: d.unsubscribe_url(r.token.as_str()),
            preferences: d.preferences_url(r.token.as_str()),
        }
    }

    fn variant<'d>(&self, d: &'d Digest) -> &'d Variant {
        if self.name.is_some() {
            &d.named
        } else {
            &d.anonymous
        }
    }

    fn get(&self, slot: Slot) -> &str {
        match slot {
            Slot::Name => self.name.as_deref().unwrap_or(""),
            Slot::Email => self.email,
            Slot::Unsubscribe => &self.unsubscribe,
            Slot::Preferences => &self.preferences,
        }
    }
}

/// Runs of spaces collapse (a [`SubscriberName`] holds no control
/// characters; any that reach here become spaces too), and the name is cut
/// at [`MAX_NAME`] characters.
fn clean_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    match out.char_indices().nth(MAX_NAME) {
        Some((at, _)) => out[..at].trim_end().to_string(),
        None => out,
    }
}

fn fill(pieces: &[Piece], mut slot: impl FnMut(Slot, &mut String)) -> String {
    let len: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.len(),
            Piece::Slot(_) => 96,
        })
        .sum();
    let mut out = String::with_capacity(len);
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Slot(s) => slot(*s, &mut out),
        }
    }
    out
}

/// The issue `gazette check` renders the templates against.
pub fn sample_issue() -> Issue {
    let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
    let article = |slug: &str, title: &str, authors: &[&str], html: &str| Article {
        slug: slug.into(),
        title: title.into(),
        authors: authors.iter().map(|a| a.to_string()).collect(),
        date,
        section: Some("Sample".into()),
        dateline: Some("Harbour Town".into()),
        summary: "A sample article for checking templates.".into(),
        html: html.into(),
        source: std::path::PathBuf::from(format!("sample/{slug}.md")),
        format: SourceFormat::Markdown,
        hash: ContentHash::of(html.as_bytes()),
    };
    let articles = vec![
        article(
            "first",
            "A sample article",
            &["Ana Ruiz", "Bo Chen"],
            "<p>Harbour Town—The <em>first</em> paragraph, with <a href=\"https://example.org/\">a link</a>.</p>",
        ),
        Article {
            section: None,
            dateline: None,
            ..article("second", "Another one", &[], "<p>No by-line here.</p>")
        },
    ];
    Issue {
        slug: "sample-issue".into(),
        title: "Sample issue".into(),
        date,
        number: Some(1),
        volume: Some(1),
        summary: Some("A sample issue.".into()),
        publication: None,
        draft: false,
        publish_at: None,
        dir: std::path::PathBuf::from("sample"),
        hash: ContentHash::of(b"gazette sample issue"),
        articles,
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
