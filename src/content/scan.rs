//! Walking `content.dir`: one folder per issue.
use std::path::{Path, PathBuf};

use url::Url;

use super::{ContentHash, Issue, Problem};

/// What parsing needs to know beyond the files themselves.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Relative links in Markdown are made absolute against this (ends with '/').
    pub base_url: Url,
    /// Larger article files are reported and skipped.
    pub max_article_bytes: u64,
}

/// A problem that stops the whole ingest (the content folder itself).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("content folder {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One source file of an issue folder, read into memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// File name, e.g. `issue.toml` or `some-article.md`.
    pub name: String,
    pub bytes: Vec<u8>,
    pub hash: ContentHash,
}

/// One issue folder, read but not parsed.
#[derive(Debug, Clone)]
pub struct SourceFolder {
    pub slug: String,
    pub dir: PathBuf,
    /// `issue.toml` and the `.txt` / `.md` files, in name order.
    pub files: Vec<SourceFile>,
}

/// The content folder, read but not parsed.
#[derive(Debug, Clone, Default)]
pub struct SourceTree {
    /// In slug order.
    pub folders: Vec<SourceFolder>,
    /// Problems found while reading (unreadable files, clashing slugs, ...).
    pub problems: Vec<Problem>,
}

impl SourceTree {
    /// One hash over every file's name and content hash: equal fingerprints mean
    /// the parse would give the same issues.
    pub fn fingerprint(&self) -> ContentHash {
        todo!()
    }
}

/// The outcome of an ingest: every issue that parsed, and every problem found.
#[derive(Debug, Clone, Default)]
pub struct Ingest {
    /// Newest first (date, then slug).
    pub issues: Vec<Issue>,
    pub problems: Vec<Problem>,
}

pub fn read_tree(_dir: &Path, _opts: &ScanOptions) -> Result<SourceTree, ScanError> {
    todo!()
}

pub fn parse_tree(_tree: &SourceTree, _opts: &ScanOptions) -> Ingest {
    todo!()
}
