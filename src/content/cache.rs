//! Article parses kept between runs, so that an unchanged file is not
//! parsed again when another one changes.
//!
//! Parsing (Markdown, the sanitizer, clipping rules) is most of an ingest's
//! CPU; reading and hashing every file is cheap. A file's parse depends only
//! on its path (problems name it; the name gives slug and format), its bytes,
//! the base URL (Markdown links are made absolute against it) and this
//! program's version, so those make an entry's key.
//!
//! The entries live in one file beside the database (`gazette.db.parsed`,
//! as the run lock is `gazette.db.lock`), not in it: a cold run over
//! 10,000 articles parses ~30 MB of HTML, which SQLite took 1.5 s to store
//! row by row against ~30 ms for a plain file. It is a cache: each new
//! entry goes to a temporary file as soon as it is parsed (so no copy of
//! them all is held in memory), the entries reused are copied after them,
//! and the file is renamed over the old one; never fsynced. Every entry
//! carries a BLAKE3 of its key and bytes, checked when it is used, so a
//! torn or damaged file only means those files are parsed again. A file
//! that cannot be read or written is a warning, never a failed run.
//!
//! An entry holds a failed parse too (its problem), and the warnings of a
//! good one, so a file served from the cache reports exactly what a fresh
//! parse would.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::scan::{ScanOptions, SourceFile};
use super::{ContentHash, Problem};

/// The file's first bytes. Bump the number when the entries' format or
/// the parse of the same bytes changes within one version of the program
/// (a new version already misses every entry: it is in the keys).
const MAGIC: &[u8] = b"gazette parse cache 1\n";

/// An entry: key, payload length (u32 LE), check, payload (JSON).
const KEY: usize = 32;
const LEN: usize = 4;
const CHECK: usize = 32;
const HEAD: usize = KEY + LEN + CHECK;

/// What a good article parse gives, before the date is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ArticleFields {
    pub title: String,
    pub authors: Vec<String>,
    /// None for Markdown without a date: the date applies.
    pub date: Option<NaiveDate>,
    pub section: Option<String>,
    pub dateline: Option<String>,
    pub summary: String,
    pub html: String,
    /// (issue name, publication, line) of a clipping's "From the … issue of …".
    pub from: Option<(String, String, usize)>,
}

/// One article file's parse: the article or the problem that stopped it,
/// and the warnings either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ArticleParse {
    pub outcome: Result<ArticleFields, Problem>,
    pub warnings: Vec<Problem>,
}

/// Where an entry of the loaded file is.
struct Kept {
    /// The whole entry, head included (copied as is when saved again).
    entry: Range<usize>,
    check: [u8; CHECK],
    payload: Range<usize>,
}

/// The entries loaded from the cache file, and what this ingest adds.
/// Shared by the parsing threads (the maps sit behind locks taken once
/// per file, next to a parse that costs tens of microseconds).
pub struct ParseCache {
    path: PathBuf,
    /// Over the program's version and the base URL.
    salt: blake3::Hasher,
    bytes: Vec<u8>,
    known: Mutex<HashMap<ContentHash, Kept>>,
    /// Entries of `bytes` this ingest used.
    reused: Mutex<Vec<Range<usize>>>,
    /// The new file, opened at the first entry parsed now.
    out: Mutex<Option<io::Result<Draft>>>,
    parsed: AtomicUsize,
}

/// The temporary file the new cache is written to; removed unless it
/// was renamed into place.
struct Draft {
    tmp: PathBuf,
    file: io::BufWriter<fs::File>,
    renamed: bool,
}

impl Draft {
    fn create(path: &Path) -> io::Result<Draft> {
        let mut tmp_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(format!(".tmp.{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let mut file = io::BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?);
        file.write_all(MAGIC)?;
        Ok(Draft {
            tmp,
            file,
            renamed: false,
        })
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// How an ingest went through the cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParseCounts {
    /// Article files parsed, and those whose kept parse was used.
    pub parsed: usize,
    pub reused: usize,
}

impl ParseCache {
    /// The cache file that goes with a database file:
    /// `gazette.db` -> `gazette.db.parsed`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".parsed");
        db.with_file_name(name)
    }

    /// The entries of the file at `path`, which [`ParseCache::save`]
    /// replaces; a missing file is an empty cache, and so, with a
    /// warning, is one that cannot be read.
    pub fn load(opts: &ScanOptions, path: &Path) -> Self {
        let bytes = fs::read(path).unwrap_or_else(|err| {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), %err, "parse cache not read; parsing every file");
            }
            Vec::new()
        });
        Self::from_bytes(opts, path, bytes)
    }

    /// Entries up to the first that does not fit in `bytes` (a file cut
    /// short keeps those before the cut); none if the magic is wrong.
    fn from_bytes(opts: &ScanOptions, path: &Path, bytes: Vec<u8>) -> Self {
        let mut salt = blake3::Hasher::new();
        for part in [env!("CARGO_PKG_VERSION"), opts.base_url.as_str()] {
            salt.update(&(part.len() as u64).to_le_bytes());
            salt.update(part.as_bytes());
        }
        let mut known = HashMap::new();
        if bytes.starts_with(MAGIC) {
            let mut at = MAGIC.len();
            while let Some(head) = bytes.get(at..at + HEAD) {
                let key: [u8; KEY] = head[..KEY].try_into().unwrap_or([0; KEY]);
                let len = u32::from_le_bytes(head[KEY..KEY + LEN].try_into().unwrap_or([0; LEN]));
                let check: [u8; CHECK] = head[KEY + LEN..].try_into().unwrap_or([0; CHECK]);
                let payload = at + HEAD..at + HEAD + len as usize;
                if payload.end > bytes.len() {
                    break;
                }
                let entry = at..payload.end;
                at = payload.end;
                known.insert(
                    ContentHash(key),
                    Kept {
                        entry,
                        check,
                        payload,
                    },
                );
            }
        }
        ParseCache {
            path: path.to_path_buf(),
            salt,
            bytes,
            known: Mutex::new(known),
            reused: Mutex::new(Vec::new()),
            out: Mutex::new(None),
            parsed: AtomicUsize::new(0),
        }
    }

    /// The key of a file's parse: path, bytes (by their hash) and the salt.
    /// None for a path that is not UTF-8 (such a file is always parsed).
    fn key(&self, file: &SourceFile) -> Option<ContentHash> {
        let path = file.path.to_str()?;
        let mut h = self.salt.clone();
        h.update(&(path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(&file.hash.0);
        Some(ContentHash(*h.finalize().as_bytes()))
    }

    /// The kept parse of `file` when there is a sound one, else `parse()`,
    /// kept for next time.
    pub(crate) fn get_or_parse(
        &self,
        file: &SourceFile,
        parse: impl FnOnce() -> ArticleParse,
    ) -> ArticleParse {
        let Some(key) = self.key(file) else {
            self.parsed.fetch_add(1, Ordering::Relaxed);
            return parse();
        };
        let kept = lock(&self.known).remove(&key);
        // An entry whose check fails (a torn write, a damaged disk) or
        // that does not read back is parsed again, never trusted.
        if let Some(kept) = kept {
            let payload = &self.bytes[kept.payload.clone()];
            if check(&key, payload) == kept.check
                && let Ok(entry) = serde_json::from_slice(payload)
            {
                lock(&self.reused).push(kept.entry);
                return entry;
            }
        }
        self.parsed.fetch_add(1, Ordering::Relaxed);
        let entry = parse();
        if let Ok(json) = serde_json::to_vec(&entry)
            && let Ok(len) = u32::try_from(json.len())
        {
            let sum = check(&key, &json);
            let mut out = lock(&self.out);
            if let Ok(draft) = out.get_or_insert_with(|| Draft::create(&self.path)) {
                let written = [&key.0[..], &len.to_le_bytes(), &sum, &json]
                    .iter()
                    .try_for_each(|part| draft.file.write_all(part));
                if let Err(err) = written {
                    *out = Some(Err(err));
                }
            }
        }
        entry
    }

    /// How many article files were parsed so far, and taken from here.
    pub fn counts(&self) -> ParseCounts {
        ParseCounts {
            parsed: self.parsed.load(Ordering::Relaxed),
            reused: lock(&self.reused).len(),
        }
    }

    /// [`ParseCache::save`], a failure to write being a warning, as one
    /// to read is in [`ParseCache::load`]: the files parsed now are parsed
    /// again next time.
    pub fn keep(self) {
        let path = self.path.clone();
        if let Err(err) = self.save() {
            tracing::warn!(path = %path.display(), %err, "parse cache not written; the files parsed now will be parsed again next time");
        }
    }

    /// Puts the new cache file in place: the entries parsed now (already
    /// written) and those reused, so that it holds the files there are (a
    /// deleted draft's text does not linger). Nothing is written when
    /// nothing changed.
    ///
    /// The file is renamed over the old one: a reader sees the old file or
    /// the new one. Its folder must exist (a cache makes none).
    pub fn save(self) -> io::Result<()> {
        let known = self.known.into_inner().unwrap_or_else(|e| e.into_inner());
        let reused = self.reused.into_inner().unwrap_or_else(|e| e.into_inner());
        let out = self.out.into_inner().unwrap_or_else(|e| e.into_inner());
        // Every entry used was taken out of `known`: what is left belongs
        // to files changed or gone.
        let whole = self.bytes.starts_with(MAGIC)
            && reused.iter().map(|r| r.len()).sum::<usize>() + MAGIC.len() == self.bytes.len();
        let mut draft = match out {
            None if known.is_empty() && whole => return Ok(()),
            None => Draft::create(&self.path)?,
            Some(draft) => draft?,
        };
        for range in reused {
            draft.file.write_all(&self.bytes[range])?;
        }
        draft.file.flush()?;
        fs::rename(&draft.tmp, &self.path)?;
        draft.renamed = true;
        Ok(())
    }
}

/// An entry's check: BLAKE3 over its key and payload.
fn check(key: &ContentHash, payload: &[u8]) -> [u8; CHECK] {
    let mut h = blake3::Hasher::new();
    h.update(&key.0);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// A lock whose holder panicked still guards a consistent map (every
/// critical section here is one push or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
