//! Walking `content.dir`: one folder per issue.
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use chrono::{NaiveDate, TimeZone};
use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;
use url::Url;

use super::cache::{ArticleFields, ArticleParse, ParseCache};
use super::text::{self, TomlSource, strip_bom};
use super::{Article, ContentHash, Issue, Problem, PublishAt, SourceFormat, clipping, markdown};

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
    ///
    /// The problems found while reading (files skipped as too large or
    /// unreadable, bad folder names) are part of it, so a change to a skipped
    /// file that changes its problem changes the fingerprint too. The options
    /// given to [`parse_tree`] are not: compare them separately.
    pub fn fingerprint(&self) -> ContentHash {
        let mut hasher = blake3::Hasher::new();
        for folder in &self.folders {
            hash_folder(&mut hasher, folder);
        }
        for problem in &self.problems {
            hash_field(&mut hasher, b"problem");
            hash_field(&mut hasher, problem.to_string().as_bytes());
        }
        ContentHash(*hasher.finalize().as_bytes())
    }
}

/// Length-prefixed, so that no two sequences of fields hash alike.
fn hash_field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn hash_folder(hasher: &mut blake3::Hasher, folder: &SourceFolder) {
    hash_field(hasher, b"folder");
    hash_field(hasher, folder.slug.as_bytes());
    for file in &folder.files {
        hash_field(hasher, file.name.as_bytes());
        hash_field(hasher, &file.hash.0);
    }
}

/// The outcome of an ingest: every issue that parsed, and every problem found.
#[derive(Debug, Clone, Default)]
pub struct Ingest {
    /// Newest first (date, then slug).
    pub issues: Vec<Issue>,
    pub problems: Vec<Problem>,
}

const ISSUE_TOML: &str = "issue.toml";

/// Issue and article slugs: `[A-Za-z0-9][A-Za-z0-9._-]*`.
pub fn is_valid_slug(slug: &str) -> bool {
    let mut bytes = slug.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

const SLUG_RULE: &str = "use letters, digits, '.', '_' and '-', starting with a letter or digit";

/// The article slug and format of a source file name; None for `issue.toml`
/// and names that are not articles.
fn article_name(name: &str) -> Option<(&str, SourceFormat)> {
    if let Some(stem) = name.strip_suffix(".txt") {
        Some((stem, SourceFormat::Clipping))
    } else {
        name.strip_suffix(".md")
            .map(|stem| (stem, SourceFormat::Markdown))
    }
}

/// Reads the content folder: every issue folder's `issue.toml`, `.txt` and
/// `.md` files into memory with their hashes. No parsing: this is the cheap
/// step that tells whether anything changed.
///
/// Only a missing or unreadable content folder is an error; everything else
/// becomes a problem in the tree.
pub fn read_tree(dir: &Path, opts: &ScanOptions) -> Result<SourceTree, ScanError> {
    let mut problems = Vec::new();
    let root = content_root(dir)?;
    let listings = list_issue_folders(dir, &root, &mut problems)?;
    let folders = read_listings(listings, &root, opts, &mut problems);
    Ok(SourceTree { folders, problems })
}

/// Reads one issue folder, `dir/slug`, the way [`read_tree`] reads them
/// all: for showing one issue (the web version) without reading the whole
/// archive. A slug that is not valid, or names no folder, gives an empty
/// tree; only an unreadable folder is an error.
pub fn read_issue_folder(
    dir: &Path,
    slug: &str,
    opts: &ScanOptions,
) -> Result<SourceTree, ScanError> {
    let mut problems = Vec::new();
    let path = dir.join(slug);
    let root = content_root(dir)?;
    let inside = is_valid_slug(slug) && resolve_inside(&path, &root).is_ok();
    if !inside || !path.is_dir() {
        return Ok(SourceTree {
            folders: Vec::new(),
            problems,
        });
    }
    let names = list_source_files(&path, &mut problems).map_err(|source| ScanError::Dir {
        path: path.clone(),
        source,
    })?;
    let listing = Listing {
        slug: slug.to_string(),
        dir: path,
        names,
    };
    let folders = read_listings(vec![listing], &root, opts, &mut problems);
    Ok(SourceTree { folders, problems })
}

/// The content folder with every symbolic link resolved: symbolic links
/// are followed only to what resolves inside it.
fn content_root(dir: &Path) -> Result<PathBuf, ScanError> {
    fs::canonicalize(dir).map_err(|source| ScanError::Dir {
        path: dir.to_path_buf(),
        source,
    })
}

/// `path` itself when it is not a symbolic link; else what it resolves to,
/// if that is inside `root` (the resolved content folder).
fn resolve_inside(path: &Path, root: &Path) -> Result<PathBuf, ReadError> {
    if !fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Ok(path.to_path_buf());
    }
    match fs::canonicalize(path) {
        Ok(real) if real.starts_with(root) => Ok(real),
        Ok(_) => Err(ReadError::Outside),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err(ReadError::Dangling),
        Err(err) => Err(ReadError::Io(err)),
    }
}

/// The files of each listed folder, read with their hashes.
fn read_listings(
    listings: Vec<Listing>,
    root: &Path,
    opts: &ScanOptions,
    problems: &mut Vec<Problem>,
) -> Vec<SourceFolder> {
    let paths: Vec<PathBuf> = listings
        .iter()
        .flat_map(|l| l.names.iter().map(|name| l.dir.join(name)))
        .collect();
    let mut contents = read_files(&paths, root, opts.max_article_bytes).into_iter();
    let mut paths = paths.into_iter();

    let mut folders = Vec::with_capacity(listings.len());
    for listing in listings {
        let mut files = Vec::with_capacity(listing.names.len());
        for name in listing.names {
            let (Some(path), Some(content)) = (paths.next(), contents.next()) else {
                break; // one path and one content per name
            };
            match content {
                Ok((bytes, hash)) => files.push(SourceFile {
                    path,
                    name,
                    bytes,
                    hash,
                }),
                Err(ReadError::NotRegular(kind)) => problems.push(Problem::new(
                    path,
                    None,
                    format!("is {kind}, not a regular file; it is skipped"),
                )),
                Err(ReadError::Outside) => problems.push(Problem::new(
                    path,
                    None,
                    "is a symbolic link that leads out of the content folder; \
                     it is not followed and is skipped",
                )),
                Err(ReadError::Dangling) => problems.push(Problem::new(
                    path,
                    None,
                    "is a symbolic link to nothing; it is skipped",
                )),
                Err(ReadError::TooBig(len)) => problems.push(Problem::new(
                    path,
                    None,
                    format!(
                        "the file is {len} bytes, over the limit of {} bytes \
                         (config content.max_article_bytes); it is skipped",
                        opts.max_article_bytes
                    ),
                )),
                Err(ReadError::Io(err)) => problems.push(Problem::new(
                    path,
                    None,
                    format!("cannot read the file: {err}; it is skipped"),
                )),
            }
        }
        folders.push(SourceFolder {
            slug: listing.slug,
            dir: listing.dir,
            files,
        });
    }
    folders
}

/// An issue folder and the names of its source files, in order.
struct Listing {
    slug: String,
    dir: PathBuf,
    names: Vec<String>,
}

/// The issue folders of the content folder in byte order of their names,
/// without those with a bad or clashing slug (they are problems).
fn list_issue_folders(
    dir: &Path,
    root: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Vec<Listing>, ScanError> {
    let fatal = |source| ScanError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let mut folders = Vec::new();
    for entry in fs::read_dir(dir).map_err(fatal)? {
        let entry = entry.map_err(fatal)?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => match resolve_inside(&entry.path(), root) {
                Ok(real) => real.is_dir(),
                Err(ReadError::Outside) => {
                    problems.push(Problem::new(
                        entry.path(),
                        None,
                        "is a symbolic link that leads out of the content folder; \
                         it is not followed and is skipped",
                    ));
                    false
                }
                Err(_) => false,
            },
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            folders.push((name, entry.path()));
        }
    }
    folders.sort_unstable_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));

    let mut listings: Vec<Listing> = Vec::with_capacity(folders.len());
    // Lowercased slug -> the folder that has it.
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (name, path) in folders {
        let Some(slug) = name.to_str().filter(|s| is_valid_slug(s)) else {
            problems.push(Problem::new(
                &path,
                None,
                format!("folder name {name:?} is not a valid issue slug ({SLUG_RULE}); the folder is skipped"),
            ));
            continue;
        };
        let key = slug.to_ascii_lowercase();
        if let Some(first) = seen.get(&key) {
            problems.push(Problem::new(
                &path,
                None,
                format!(
                    "issue folder {} differs from {} only in case; slugs must differ in more than case, \
                     so {} is skipped",
                    path.display(),
                    first.display(),
                    path.display()
                ),
            ));
            continue;
        }
        match list_source_files(&path, problems) {
            Ok(names) => listings.push(Listing {
                slug: slug.to_string(),
                dir: path.clone(),
                names,
            }),
            Err(err) => problems.push(Problem::new(
                &path,
                None,
                format!("cannot read the folder: {err}"),
            )),
        }
        seen.insert(key, path);
    }
    Ok(listings)
}

/// Names of the source files of an issue folder, in byte order.
fn list_source_files(dir: &Path, problems: &mut Vec<Problem>) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else {
            let lossy = name.to_string_lossy();
            if article_name(&lossy).is_some() && !lossy.starts_with('.') {
                problems.push(Problem::new(
                    dir.join(&name),
                    None,
                    "file name is not UTF-8; the file is skipped",
                ));
            }
            continue;
        };
        if !name.starts_with('.') && (name == ISSUE_TOML || article_name(name).is_some()) {
            names.push(name.to_string());
        }
    }
    names.sort_unstable();
    Ok(names)
}

enum ReadError {
    TooBig(u64),
    /// What the path is instead ("a folder", "a named pipe (FIFO)", ...).
    NotRegular(&'static str),
    /// A symbolic link that resolves outside the content folder.
    Outside,
    /// A symbolic link to nothing.
    Dangling,
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(err: io::Error) -> Self {
        ReadError::Io(err)
    }
}

type FileContent = Result<(Vec<u8>, ContentHash), ReadError>;

/// Below this many files per core, threads cost more than they save.
const FILES_PER_WORKER: usize = 64;

/// [`read_file`] for every path, in order. The time goes into system calls
/// (open, stat, read, close), so the files are read on all cores.
fn read_files(paths: &[PathBuf], root: &Path, max: u64) -> Vec<FileContent> {
    map_in_order(paths, FILES_PER_WORKER, |path| read_file(path, root, max))
}

/// `f` of every item, in the items' order, on all cores when there are at
/// least `per_worker` items for each; the items are taken one at a time
/// by whichever worker is free, so a slow one holds up no other.
fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    per_worker: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let workers = cores.min(items.len() / per_worker.max(1));
    if workers <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    thread::scope(|scope| {
        let handles: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        // The calling thread is one of the workers.
        let mine = work();
        for done in handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .chain([mine])
        {
            for (i, r) in done {
                slots[i] = Some(r);
            }
        }
    });
    // Every index was taken by exactly one worker.
    slots.into_iter().flatten().collect()
}

/// What a file that is not a regular file is, for a problem's words (the
/// content reader and `inbound import` open files alike: without blocking,
/// and read only what fstat calls a regular file).
pub(crate) fn not_a_file(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "something other than a file"
    }
}

/// The bytes and hash of a regular file no larger than `max`; a larger one is
/// not read (only its metadata).
///
/// Only regular files are read. The file is opened without blocking and
/// without following a symbolic link (`O_NONBLOCK | O_NOFOLLOW`), and its
/// type is checked on the open descriptor: a named pipe, which would block
/// an open or a read until some writer comes (holding the run lock, or a
/// web request's thread, for ever), or a device, socket or folder named
/// like an article, is a problem and is never read. A symbolic link is
/// followed only to a file inside the content folder (`root`), so nothing
/// outside it (say `/etc/passwd`) can end up quoted in a problem.
fn read_file(path: &Path, root: &Path, max: u64) -> FileContent {
    let target = resolve_inside(path, root)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&target)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(not_a_file(kind)));
    }
    let len = meta.len();
    if len > max {
        return Err(ReadError::TooBig(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // Up to the size seen by the stat: no extra read to find the end, and a
    // file growing meanwhile cannot pass the limit.
    file.take(len).read_to_end(&mut bytes)?;
    let hash = ContentHash::of(&bytes);
    Ok((bytes, hash))
}

/// Below this many issue folders per core, parsing stays on one thread (a
/// folder of a few articles parses in well under a millisecond).
const FOLDERS_PER_WORKER: usize = 4;

/// Parses every issue folder of the tree. A bad file is a problem and is
/// skipped; the rest of its issue is still ingested.
pub fn parse_tree(tree: &SourceTree, opts: &ScanOptions) -> Ingest {
    parse_tree_with(tree, opts, None)
}

/// [`parse_tree`], taking each article file's parse from `cache` when it
/// holds one for the same path and bytes (and putting the others in it).
/// The outcome is the same as without a cache, problems included.
pub fn parse_tree_with(
    tree: &SourceTree,
    opts: &ScanOptions,
    cache: Option<&ParseCache>,
) -> Ingest {
    let mut ingest = Ingest {
        issues: Vec::new(),
        problems: tree.problems.clone(),
    };
    // Folders are parsed on all cores (Markdown, sanitizing and the text
    // of every article are CPU work); problems keep the folders' order.
    let parsed = map_in_order(&tree.folders, FOLDERS_PER_WORKER, |folder| {
        let mut problems = Vec::new();
        (parse_folder(folder, opts, cache, &mut problems), problems)
    });
    for (issue, mut problems) in parsed {
        ingest.problems.append(&mut problems);
        ingest.issues.extend(issue);
    }
    ingest
        .issues
        .sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.slug.cmp(&b.slug)));
    ingest
}

/// `issue.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueToml {
    title: Spanned<String>,
    date: Spanned<Datetime>,
    number: Option<u32>,
    volume: Option<u32>,
    summary: Option<Spanned<String>>,
    articles: Option<Vec<Spanned<String>>>,
    /// Any TOML value: a wrong type gets a message that says what is wanted.
    draft: Option<Spanned<toml::Value>>,
    publish_at: Option<Spanned<toml::Value>>,
}

struct IssueMeta {
    title: String,
    date: NaiveDate,
    number: Option<u32>,
    volume: Option<u32>,
    summary: Option<String>,
    /// (slug, file line) in reading order.
    order: Vec<(String, usize)>,
    draft: bool,
    publish_at: Option<PublishAt>,
}

/// Control characters removed from the title and summary go to `warnings`.
fn parse_issue_toml(file: &SourceFile, warnings: &mut Vec<Problem>) -> Result<IssueMeta, Problem> {
    let text = strip_bom(text::utf8(&file.path, &file.bytes)?);
    let source = TomlSource {
        path: &file.path,
        text,
        first_line: 1,
    };
    let toml: IssueToml = toml::from_str(text).map_err(|err| source.error(&err))?;
    let title = text::clean_field(
        &file.path,
        source.line(toml.title.span().start),
        "title",
        toml.title.get_ref(),
        warnings,
    );
    if title.is_empty() {
        return Err(source.at(toml.title.span(), "title is empty"));
    }
    let draft = match &toml.draft {
        None => false,
        Some(v) => match v.get_ref() {
            toml::Value::Boolean(b) => *b,
            other => {
                return Err(source.at(
                    v.span(),
                    format!("draft must be true or false, not {other}"),
                ));
            }
        },
    };
    let publish_at = match &toml.publish_at {
        None => None,
        Some(v) => Some(publish_at(v.get_ref()).ok_or_else(|| {
            source.at(
                v.span(),
                format!(
                    "publish_at = {} is not a date-time: write a local date-time in \
                     publication.timezone, e.g. publish_at = 2026-12-20T08:00:00",
                    v.get_ref()
                ),
            )
        })?),
    };
    Ok(IssueMeta {
        draft,
        publish_at,
        title,
        date: source.date(&toml.date)?,
        number: toml.number,
        volume: toml.volume,
        summary: toml
            .summary
            .map(|s| {
                text::clean_field(
                    &file.path,
                    source.line(s.span().start),
                    "summary",
                    s.get_ref(),
                    warnings,
                )
            })
            .filter(|s| !s.is_empty()),
        order: toml
            .articles
            .unwrap_or_default()
            .into_iter()
            .map(|entry| (source.line(entry.span().start), entry.into_inner()))
            .map(|(line, slug)| (slug, line))
            .collect(),
    })
}

/// A `publish_at` value: a TOML date-time (local, or with an offset), a
/// local date (its start), or the same written as a string; None for
/// anything else (a time without a day, "tomorrow", a number).
fn publish_at(value: &toml::Value) -> Option<PublishAt> {
    let parsed;
    let dt = match value {
        toml::Value::Datetime(dt) => dt,
        toml::Value::String(s) => {
            // A space for the `T` is allowed in TOML too.
            parsed = s.trim().parse::<Datetime>().ok()?;
            &parsed
        }
        _ => return None,
    };
    let d = dt.date?;
    let day = NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())?;
    let local = match dt.time {
        None => day.and_hms_opt(0, 0, 0)?,
        Some(t) => day.and_time(chrono::NaiveTime::from_hms_nano_opt(
            t.hour.into(),
            t.minute.into(),
            t.second.into(),
            t.nanosecond,
        )?),
    };
    let offset = match dt.offset {
        None => return Some(PublishAt::Local(local)),
        // Only a date-time can carry an offset in TOML.
        Some(toml::value::Offset::Z) => 0,
        Some(toml::value::Offset::Custom { minutes }) => i32::from(minutes) * 60,
    };
    let exact = chrono::FixedOffset::east_opt(offset)?
        .from_local_datetime(&local)
        .single()?;
    Some(PublishAt::Exact(exact))
}

/// An article parsed from its file, before the issue's date is known.
struct Parsed<'a> {
    file: &'a SourceFile,
    slug: &'a str,
    format: SourceFormat,
    fields: ArticleFields,
}

/// Problems that do not stop the article (it is published as changed)
/// go to `warnings`.
fn parse_article(
    file: &SourceFile,
    format: SourceFormat,
    opts: &ScanOptions,
    warnings: &mut Vec<Problem>,
) -> Result<ArticleFields, Problem> {
    let text = text::utf8(&file.path, &file.bytes)?;
    Ok(match format {
        SourceFormat::Clipping => {
            let mut c = clipping::parse(&file.path, text)?;
            warnings.append(&mut c.warnings);
            ArticleFields {
                title: c.title,
                authors: c.authors,
                date: Some(c.date),
                section: None,
                dateline: c.dateline,
                summary: c.summary,
                html: c.html,
                from: Some((c.issue_name, c.publication, c.from_line)),
            }
        }
        SourceFormat::Markdown => {
            let mut m = markdown::parse(&file.path, text, &opts.base_url)?;
            warnings.append(&mut m.warnings);
            ArticleFields {
                title: m.title,
                authors: m.authors,
                date: m.date,
                section: m.section,
                dateline: m.dateline,
                summary: m.summary,
                html: m.html,
                from: None,
            }
        }
    })
}

/// [`parse_article`], or its kept result when `cache` has one for these
/// bytes at this path.
fn parse_or_reuse(
    file: &SourceFile,
    format: SourceFormat,
    opts: &ScanOptions,
    cache: Option<&ParseCache>,
) -> ArticleParse {
    let parse = || {
        let mut warnings = Vec::new();
        let outcome = parse_article(file, format, opts, &mut warnings);
        ArticleParse { outcome, warnings }
    };
    match cache {
        Some(cache) => cache.get_or_parse(file, parse),
        None => parse(),
    }
}

fn parse_folder(
    folder: &SourceFolder,
    opts: &ScanOptions,
    cache: Option<&ParseCache>,
    problems: &mut Vec<Problem>,
) -> Option<Issue> {
    let mut meta = None;
    let mut meta_failed = false;
    let mut parsed: Vec<Parsed> = Vec::new();
    // Lowercased article slug -> the file that has it.
    let mut slugs: HashMap<String, &Path> = HashMap::new();
    for file in &folder.files {
        if file.name == ISSUE_TOML {
            match parse_issue_toml(file, problems) {
                Ok(m) => meta = Some(m),
                Err(mut problem) => {
                    problem.message.push_str(" (the issue is skipped)");
                    problems.push(problem);
                    meta_failed = true;
                }
            }
            continue;
        }
        let Some((slug, format)) = article_name(&file.name) else {
            continue;
        };
        if !is_valid_slug(slug) {
            problems.push(Problem::new(
                &file.path,
                None,
                format!("{slug:?} is not a valid article slug ({SLUG_RULE}); the file is skipped"),
            ));
            continue;
        }
        if let Some(first) = slugs.get(&slug.to_ascii_lowercase()) {
            problems.push(Problem::new(
                &file.path,
                None,
                format!(
                    "same article slug as {}; article slugs must be unique in an issue (ignoring case), so this file is skipped",
                    first.display()
                ),
            ));
            continue;
        }
        slugs.insert(slug.to_ascii_lowercase(), &file.path);
        let ArticleParse {
            outcome,
            mut warnings,
        } = parse_or_reuse(file, format, opts, cache);
        problems.append(&mut warnings);
        match outcome {
            Ok(fields) => parsed.push(Parsed {
                file,
                slug,
                format,
                fields,
            }),
            Err(problem) => problems.push(problem),
        }
    }
    if meta_failed {
        return None;
    }
    if parsed.is_empty() {
        problems.push(Problem::new(
            &folder.dir,
            None,
            "no articles: the issue is skipped",
        ));
        return None;
    }

    let clippings: Vec<(&Path, &str, &str, usize)> = parsed
        .iter()
        .filter_map(|a| {
            a.fields.from.as_ref().map(|(issue, publ, line)| {
                (a.file.path.as_path(), issue.as_str(), publ.as_str(), *line)
            })
        })
        .collect();
    let publication = clippings.first().map(|&(_, _, publ, _)| publ.to_string());
    if let Some(&(first_path, _, first_publ, _)) = clippings.first() {
        for &(path, _, publ, line) in &clippings[1..] {
            if publ != first_publ {
                problems.push(Problem::new(
                    path,
                    Some(line),
                    format!(
                        "names the publication {publ:?}, but {} names {first_publ:?}",
                        first_path.display()
                    ),
                ));
            }
        }
    }

    let meta = match meta {
        Some(meta) => meta,
        None => {
            let Some(&(first_path, first_issue, _, _)) = clippings.first() else {
                problems.push(Problem::new(
                    &folder.dir,
                    None,
                    "no issue.toml and no clipping that names the issue: add an issue.toml with title and date; the issue is skipped",
                ));
                return None;
            };
            let mut agree = true;
            for &(path, issue, _, line) in &clippings[1..] {
                if issue != first_issue {
                    agree = false;
                    problems.push(Problem::new(
                        path,
                        Some(line),
                        format!(
                            "names the issue {issue:?}, but {} names it {first_issue:?}; make them agree or add an issue.toml (the issue is skipped)",
                            first_path.display()
                        ),
                    ));
                }
            }
            if !agree {
                return None;
            }
            IssueMeta {
                title: first_issue.to_string(),
                // Clippings always have a date.
                date: parsed.iter().filter_map(|a| a.fields.date).max()?,
                number: None,
                volume: None,
                summary: None,
                order: Vec::new(),
                draft: false,
                publish_at: None,
            }
        }
    };

    let mut articles: Vec<Article> = parsed
        .into_iter()
        .map(|p| Article {
            slug: p.slug.to_string(),
            title: p.fields.title,
            authors: p.fields.authors,
            date: p.fields.date.unwrap_or(meta.date),
            section: p.fields.section,
            dateline: p.fields.dateline,
            summary: p.fields.summary,
            html: p.fields.html,
            source: p.file.path.clone(),
            format: p.format,
            hash: p.file.hash,
        })
        .collect();
    articles.sort_by(|a, b| {
        a.date
            .cmp(&b.date)
            .then_with(|| a.title.cmp(&b.title))
            .then_with(|| a.slug.cmp(&b.slug))
    });
    let articles = order_articles(folder, &meta.order, articles, &slugs, problems);

    let mut hasher = blake3::Hasher::new();
    hash_folder(&mut hasher, folder);
    Some(Issue {
        slug: folder.slug.clone(),
        title: meta.title,
        date: meta.date,
        number: meta.number,
        volume: meta.volume,
        summary: meta.summary,
        publication,
        dir: folder.dir.clone(),
        articles,
        hash: ContentHash(*hasher.finalize().as_bytes()),
        draft: meta.draft,
        publish_at: meta.publish_at,
    })
}

/// The articles of the `articles` list first, in its order, then the others
/// in their (default) order. `files` holds every article slug of the folder,
/// lowercased, parsed or not.
fn order_articles(
    folder: &SourceFolder,
    order: &[(String, usize)],
    mut rest: Vec<Article>,
    files: &HashMap<String, &Path>,
    problems: &mut Vec<Problem>,
) -> Vec<Article> {
    let toml_path = folder.dir.join(ISSUE_TOML);
    let mut ordered = Vec::with_capacity(rest.len());
    let mut listed: HashMap<&str, usize> = HashMap::new();
    for (slug, line) in order {
        if let Some(first_line) = listed.insert(slug, *line) {
            problems.push(Problem::new(
                &toml_path,
                Some(*line),
                format!("articles lists {slug:?} again (first on line {first_line})"),
            ));
            continue;
        }
        if let Some(i) = rest.iter().position(|a| a.slug == *slug) {
            ordered.push(rest.remove(i));
        } else if !files.contains_key(&slug.to_ascii_lowercase()) {
            problems.push(Problem::new(
                &toml_path,
                Some(*line),
                format!(
                    "articles lists {slug:?}, but there is no {slug}.txt or {slug}.md in {}",
                    folder.dir.display()
                ),
            ));
        }
    }
    ordered.append(&mut rest);
    ordered
}

#[cfg(test)]
mod tests;
