//! Feed generation: RSS 2.0, Atom 1.0 and JSON Feed 1.1 from the issue model.
//!
//! [`build`] is a pure function of its inputs (no clock, no randomness): the
//! same issues give byte-identical feeds, so [`write()`] can leave unchanged files
//! untouched and HTTP validators (ETag / Last-Modified) keep working.
//!
//! What the three feeds share:
//! - entries: the first `items` articles, issues newest first, articles in
//!   issue order;
//! - dates: an article's date at 00:00 in the publication's time zone, as a
//!   fixed offset; the feed-level date is the newest entry's date;
//! - ids: RFC 4151 tag URIs `tag:HOST,ISSUE-DATE:ISSUE-SLUG/ARTICLE-SLUG`,
//!   stable across re-saves of a file; the Atom feed id is its own URL;
//! - links: absolute, `{base}issues/{issue}#{article}`, self links
//!   `{base}feeds/rss.xml`, `{base}feeds/atom.xml`, `{base}feeds/feed.json`;
//! - authors: one per by-line name, the publication when there is none;
//! - text: characters XML 1.0 forbids are dropped from RSS and Atom.
//!
//! Feeds of more than 64 entries are built on all cores (`parallel.rs`), in
//! chunks, with output identical to the one-piece build. `build` is CPU-bound
//! (about 80 ms for 10,000 articles on two cores): call it from blocking
//! context (e.g. `tokio::task::spawn_blocking`) in async code.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, Offset, TimeZone};

use crate::config::Publication;
use crate::content::{Article, Issue};

mod atom;
mod format;
mod json;
mod parallel;
mod rss;
mod write;

pub use write::{WriteReport, write};

/// File names of the three feeds, inside `feeds.dir` and under `{base}feeds/`.
pub const RSS_FILE: &str = "rss.xml";
pub const ATOM_FILE: &str = "atom.xml";
pub const JSON_FILE: &str = "feed.json";

/// Media types the feeds are served with.
pub const RSS_MEDIA_TYPE: &str = "application/rss+xml";
pub const ATOM_MEDIA_TYPE: &str = "application/atom+xml";
pub const JSON_MEDIA_TYPE: &str = "application/feed+json";

/// Name written into the feeds' generator fields.
pub const GENERATOR: &str = "gazette";

/// The three serialized feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSet {
    pub rss: String,
    pub atom: String,
    pub json: String,
}

/// Something went wrong building or writing the feeds.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The publication's base URL has no host to build tag URIs from.
    #[error("publication.base_url {url} has no host name (needed for feed ids)")]
    NoHost { url: String },
    /// A serializer failed (not expected with in-memory buffers).
    #[error("cannot serialize the {format} feed: {message}")]
    Serialize {
        format: &'static str,
        message: String,
    },
    /// A filesystem operation failed; `path` is the file or folder concerned.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Builds the three feeds from `issues` (newest first): the first `items`
/// articles, taken in issue order.
pub fn build(
    publication: &Publication,
    issues: &[Issue],
    items: usize,
) -> Result<FeedSet, FeedError> {
    let ctx = Context::new(publication, issues, items)?;
    if ctx.entries.len() > parallel::CHUNK {
        build_in_pieces(&ctx, parallel::CHUNK)
    } else {
        Ok(FeedSet {
            rss: rss::render(&ctx)?,
            atom: atom::render(&ctx)?,
            json: json::render(&ctx)?,
        })
    }
}

/// Builds only the RSS 2.0 feed (same content as [`build`]'s `rss`), on the
/// calling thread.
pub fn build_rss(
    publication: &Publication,
    issues: &[Issue],
    items: usize,
) -> Result<String, FeedError> {
    rss::render(&Context::new(publication, issues, items)?)
}

/// Builds only the Atom 1.0 feed (same content as [`build`]'s `atom`), on
/// the calling thread.
pub fn build_atom(
    publication: &Publication,
    issues: &[Issue],
    items: usize,
) -> Result<String, FeedError> {
    atom::render(&Context::new(publication, issues, items)?)
}

/// Builds only the JSON Feed 1.1 (same content as [`build`]'s `json`), on
/// the calling thread.
pub fn build_json(
    publication: &Publication,
    issues: &[Issue],
    items: usize,
) -> Result<String, FeedError> {
    json::render(&Context::new(publication, issues, items)?)
}

/// The three feeds built on all cores in chunks of `chunk` entries (see
/// [`parallel`]): byte for byte what the `render` functions write.
pub(crate) fn build_in_pieces(ctx: &Context<'_>, chunk: usize) -> Result<FeedSet, FeedError> {
    let [atom, rss, json] = parallel::build::<atom::Atom, rss::Rss, json::Json>(ctx, chunk)?;
    Ok(FeedSet { rss, atom, json })
}

/// Everything the three serializers share, computed once.
pub(crate) struct Context<'a> {
    pub publication: &'a Publication,
    pub home_url: String,
    pub rss_url: String,
    pub atom_url: String,
    pub json_url: String,
    /// Newest entry date (see [`feed_updated`]).
    pub updated: DateTime<FixedOffset>,
    pub entries: Vec<Entry<'a>>,
    /// Every entry's id and link, one after the other (one allocation
    /// instead of two per entry).
    text: String,
    /// The distinct entry dates, formatted once ([`Entry::stamp`] indexes it).
    pub stamps: Vec<Stamp>,
    /// Total bytes of entry HTML, to pre-size output buffers.
    pub html_bytes: usize,
}

/// An entry date in the forms the feeds write.
pub(crate) struct Stamp {
    pub at: DateTime<FixedOffset>,
    /// RFC 822/2822, for RSS: `Fri, 19 Nov 2021 00:00:00 -0500`.
    pub rfc2822: String,
    /// RFC 3339, for JSON Feed: `2021-11-19T00:00:00-05:00`.
    pub rfc3339: String,
}

/// One feed entry: an article with its derived id, link and date.
pub(crate) struct Entry<'a> {
    pub article: &'a Article,
    /// The tag URI, in [`Context::text`].
    id: Range<usize>,
    /// The absolute link, in [`Context::text`].
    link: Range<usize>,
    pub date: DateTime<FixedOffset>,
    /// Index of the date in [`Context::stamps`].
    pub stamp: usize,
}

impl<'a> Entry<'a> {
    /// By-line names, or the publication's title when there are none.
    pub fn author_names(&self, publication: &'a Publication) -> impl Iterator<Item = &'a str> {
        let fallback = self
            .article
            .authors
            .is_empty()
            .then_some(publication.title.as_str());
        self.article
            .authors
            .iter()
            .map(String::as_str)
            .chain(fallback)
    }
}

impl<'a> Context<'a> {
    /// The formatted forms of `entry`'s date.
    pub fn stamp(&self, entry: &Entry<'_>) -> &Stamp {
        &self.stamps[entry.stamp]
    }

    /// `entry`'s id: `tag:HOST,ISSUE-DATE:ISSUE-SLUG/ARTICLE-SLUG`.
    pub fn id(&self, entry: &Entry<'_>) -> &str {
        &self.text[entry.id.clone()]
    }

    /// `entry`'s absolute link: `{base}issues/ISSUE-SLUG#ARTICLE-SLUG`.
    pub fn link(&self, entry: &Entry<'_>) -> &str {
        &self.text[entry.link.clone()]
    }

    fn new(
        publication: &'a Publication,
        issues: &'a [Issue],
        items: usize,
    ) -> Result<Self, FeedError> {
        let host = publication
            .base_url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| FeedError::NoHost {
                url: publication.base_url.to_string(),
            })?;
        let tz = publication.timezone;
        let mut entries =
            Vec::with_capacity(items.min(issues.iter().map(|i| i.articles.len()).sum()));
        let mut html_bytes = 0;
        let mut stamps = Vec::new();
        let mut text = String::with_capacity(entries.capacity() * 160);
        let mut push = |parts: &[&str]| {
            let start = text.len();
            parts.iter().for_each(|p| text.push_str(p));
            start..text.len()
        };
        let mut stamp_of: HashMap<NaiveDate, usize> = HashMap::new();
        'outer: for issue in issues {
            let issue_seg = encode_segment(&issue.slug);
            let issue_page = publication.url(&format!("issues/{issue_seg}"));
            let tag_prefix = format!("tag:{host},{}:{issue_seg}/", issue.date.format("%Y-%m-%d"));
            for article in &issue.articles {
                if entries.len() >= items {
                    break 'outer;
                }
                let article_seg = encode_segment(&article.slug);
                html_bytes += article.html.len();
                // Articles share dates: convert and format each date once.
                let stamp = *stamp_of.entry(article.date).or_insert_with(|| {
                    let at = local_midnight(article.date, tz);
                    stamps.push(Stamp {
                        at,
                        rfc2822: at.to_rfc2822(),
                        rfc3339: at.to_rfc3339(),
                    });
                    stamps.len() - 1
                });
                entries.push(Entry {
                    article,
                    id: push(&[&tag_prefix, &article_seg]),
                    link: push(&[&issue_page, "#", &article_seg]),
                    date: stamps[stamp].at,
                    stamp,
                });
            }
        }
        let updated = feed_updated(&entries, issues, tz);
        Ok(Context {
            publication,
            home_url: publication.url(""),
            rss_url: publication.url(&format!("feeds/{RSS_FILE}")),
            atom_url: publication.url(&format!("feeds/{ATOM_FILE}")),
            json_url: publication.url(&format!("feeds/{JSON_FILE}")),
            updated,
            entries,
            text,
            stamps,
            html_bytes,
        })
    }
}

/// The feed-level date: the newest entry's; with no entries, the newest
/// issue's; with no issues, the Unix epoch (never the clock: output must be a
/// pure function of the content).
fn feed_updated(
    entries: &[Entry<'_>],
    issues: &[Issue],
    tz: chrono_tz::Tz,
) -> DateTime<FixedOffset> {
    if let Some(newest) = entries.iter().map(|e| e.date).max() {
        return newest;
    }
    match issues.iter().map(|i| i.date).max() {
        Some(date) => local_midnight(date, tz),
        None => DateTime::UNIX_EPOCH.fixed_offset(),
    }
}

/// `date` at 00:00 in `tz`, as a fixed offset. When midnight is ambiguous (a
/// DST fall-back at midnight) the earlier instant is taken; when it does not
/// exist (a spring-forward gap at midnight) the first instant after the gap.
pub(crate) fn local_midnight(date: NaiveDate, tz: chrono_tz::Tz) -> DateTime<FixedOffset> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt.fixed_offset(),
        LocalResult::None => {
            // Read midnight with the offset in force before the gap: that
            // instant lies just after the gap, shown in the new offset.
            let before = tz
                .offset_from_utc_datetime(&(midnight - chrono::Duration::days(1)))
                .fix();
            let instant = midnight - chrono::Duration::seconds(i64::from(before.local_minus_utc()));
            tz.from_utc_datetime(&instant).fixed_offset()
        }
    }
}

/// Appends `text` to `out` without the characters XML 1.0 does not allow
/// (C0 controls other than tab, LF and CR; U+FFFE and U+FFFF): one stray form
/// feed in an article would otherwise make the whole XML feed unreadable.
pub(crate) fn push_xml_text(out: &mut String, text: &str) {
    if may_need_cleaning(text.as_bytes()) {
        out.extend(text.chars().filter(|&c| is_xml_char(c)));
    } else {
        out.push_str(text);
    }
}

/// `text` without the characters XML 1.0 does not allow (see [`push_xml_text`]).
pub(crate) fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_xml_text(&mut out, text);
    out
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A quick over-approximation: a C0 control byte other than tab, LF and CR,
/// or the lead byte of U+F000..=U+FFFF. A branch-free fold, so that it
/// vectorizes.
fn may_need_cleaning(bytes: &[u8]) -> bool {
    bytes.chunks(64).any(|chunk| {
        chunk.iter().fold(false, |found, &b| {
            found | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF)
        })
    })
}

/// Percent-encodes a slug for use as one URL path segment, fragment, or the
/// specific part of a tag URI: keeps RFC 3986 unreserved characters and the
/// sub-delimiters that are safe everywhere we put it.
pub(crate) fn encode_segment(s: &str) -> Cow<'_, str> {
    fn keep(b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            )
    }
    if s.bytes().all(keep) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
pub(crate) mod tests;
