//! The issue model: what the rest of gazette (feeds, ledger, mail, web) reads.
//!
//! Everything here is already parsed and sanitized; later stages never look at
//! the source files again.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};

/// One issue of the periodical: a folder under `content.dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Folder name; the stable key of the issue (URLs, ids, the ledger).
    pub slug: String,
    pub title: String,
    pub date: NaiveDate,
    pub number: Option<u32>,
    pub volume: Option<u32>,
    /// Plain text.
    pub summary: Option<String>,
    /// The publication named by the clippings' "From the … issue of …" line, if any.
    pub publication: Option<String>,
    pub dir: PathBuf,
    /// In reading order (the `articles` list of issue.toml, else date then title).
    pub articles: Vec<Article>,
    /// Hash over issue.toml and every article file of the folder, in name order.
    pub hash: ContentHash,
    /// `draft = true` in issue.toml: `gazette check` reads it, nothing else
    /// (no feeds, pages, archive or mail) until it is set back to false.
    pub draft: bool,
    /// `publish_at` in issue.toml: held until then. None: held until the
    /// start of `date` (see [`crate::release`]).
    pub publish_at: Option<PublishAt>,
}

/// When an issue may go out, as `issue.toml` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishAt {
    /// A wall-clock time in `publication.timezone` (the usual form,
    /// `publish_at = 2026-12-20T08:00:00`).
    Local(NaiveDateTime),
    /// A date-time with an explicit UTC offset: one instant whatever the zone.
    Exact(DateTime<FixedOffset>),
}

/// Which of the two source layouts an article came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// A plain-text clipping of a web article (`.txt`).
    Clipping,
    /// Markdown with TOML front matter between `+++` lines (`.md`).
    Markdown,
}

/// One article of an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// File stem; unique within its issue.
    pub slug: String,
    /// Plain text (never HTML); escaped by whoever writes it out.
    pub title: String,
    /// People from the by-line, in order. Empty when there is none: the feeds
    /// then name the publication.
    pub authors: Vec<String>,
    pub date: NaiveDate,
    pub section: Option<String>,
    /// Place name from a leading "Place—" or the front matter.
    pub dateline: Option<String>,
    /// Plain text: the front matter's summary, else the first paragraph, shortened.
    pub summary: String,
    /// Sanitized HTML fragment of the body: safe to embed in feeds, mail and pages.
    pub html: String,
    pub source: PathBuf,
    pub format: SourceFormat,
    /// Hash of the source file's bytes.
    pub hash: ContentHash,
}

/// BLAKE3 hash of source bytes; shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A problem with one content file: reported, and the rest is still ingested.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based line, where the problem has one.
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}
