use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use url::Url;

use super::*;
use crate::content::scan::{Ingest, SourceTree, parse_tree, parse_tree_with, read_tree};

fn opts_at(base: &str) -> ScanOptions {
    ScanOptions {
        base_url: Url::parse(base).unwrap(),
        max_article_bytes: 1_000_000,
    }
}

fn opts() -> ScanOptions {
    opts_at("https://ledger.example/")
}

fn write(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    path
}

/// Two issues: a clipping (with its "From the … issue of …"), Markdown
/// with a relative link and a warning (a control character), a file that
/// does not parse (a problem), and a Markdown article without a date.
fn archive() -> TempDir {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    write(
        root,
        "2024-03/issue.toml",
        "title = \"Spring 2024\"\ndate = 2024-03-01\n",
    );
    write(
        root,
        "2024-03/harbour.txt",
        "Harbour dues rise\n\nMarch 1, 2024\n\nFrom the Spring 2024 issue of The Harbour Ledger\n\n\
         by Ana Reyes\n\nPORTO—The dues went up at dawn.\n",
    );
    write(
        root,
        "2024-03/notes.md",
        "+++\ntitle = \"Notes\"\ndateline = \"Vigo\u{7}\"\n+++\nSee [the map](maps/vigo.html).\n",
    );
    write(root, "2024-03/broken.md", "+++\ntitle = \n+++\nNo title.\n");
    write(
        root,
        "2024-04/issue.toml",
        "title = \"April 2024\"\ndate = 2024-04-02\n",
    );
    write(
        root,
        "2024-04/tides.md",
        "+++\ntitle = \"Tides\"\nauthors = [\"Zoë Álvarez\"]\n+++\nHigh water at *six*.\n",
    );
    tmp
}

fn tree(root: &Path, opts: &ScanOptions) -> SourceTree {
    read_tree(root, opts).unwrap()
}

/// The parse of `root` through the cache file at `path`, and its counts.
fn cached(root: &Path, opts: &ScanOptions, path: &Path) -> (Ingest, ParseCounts) {
    let cache = ParseCache::load(opts, path);
    let ingest = parse_tree_with(&tree(root, opts), opts, Some(&cache));
    let counts = cache.counts();
    cache.save().unwrap();
    (ingest, counts)
}

fn assert_same(a: &Ingest, b: &Ingest) {
    assert_eq!(a.issues, b.issues);
    assert_eq!(a.problems, b.problems);
}

fn counts(parsed: usize, reused: usize) -> ParseCounts {
    ParseCounts { parsed, reused }
}

#[test]
fn a_kept_parse_gives_what_a_fresh_one_gives_problems_included() {
    let content = archive();
    let dir = TempDir::new().unwrap();
    let path = ParseCache::path_for(&dir.path().join("gazette.db"));
    assert_eq!(path, dir.path().join("gazette.db.parsed"));
    let fresh = parse_tree(&tree(content.path(), &opts()), &opts());
    // The archive has what the entries must carry: a warning, a problem,
    // a clipping's issue name and a relative link made absolute.
    let messages: Vec<String> = fresh.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        messages.iter().any(|m| m.contains("broken.md")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("control character")),
        "{messages:?}"
    );
    assert_eq!(fresh.issues.len(), 2);

    let (first, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(4, 0));
    assert_same(&fresh, &first);
    let (second, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(0, 4));
    assert_same(&fresh, &second);
    let notes = &second.issues[1].articles;
    assert!(
        notes
            .iter()
            .any(|a| a.html.contains("https://ledger.example/maps/vigo.html")),
        "{notes:#?}"
    );
}

#[test]
fn only_the_changed_file_is_parsed_again() {
    let content = archive();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("gazette.db.parsed");
    cached(content.path(), &opts(), &path);
    write(
        content.path(),
        "2024-04/tides.md",
        "+++\ntitle = \"Tides\"\n+++\nLow water at *noon*.\n",
    );
    let (ingest, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(1, 3));
    assert_same(
        &parse_tree(&tree(content.path(), &opts()), &opts()),
        &ingest,
    );
    assert!(ingest.issues[0].articles[0].html.contains("noon"));
    // A file moved to another issue is another path: parsed again.
    fs::rename(
        content.path().join("2024-04/tides.md"),
        content.path().join("2024-03/tides.md"),
    )
    .unwrap();
    let (moved, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(1, 3));
    assert!(
        moved
            .problems
            .iter()
            .any(|p| p.message.contains("no articles"))
    );
}

#[test]
fn another_base_url_parses_every_file_again() {
    let content = archive();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("gazette.db.parsed");
    cached(content.path(), &opts(), &path);
    let moved = opts_at("https://news.example/ledger/");
    let (ingest, c) = cached(content.path(), &moved, &path);
    assert_eq!(c, counts(4, 0));
    let html: String = ingest.issues[1]
        .articles
        .iter()
        .map(|a| a.html.as_str())
        .collect();
    assert!(
        html.contains("https://news.example/ledger/maps/vigo.html"),
        "{html}"
    );
}

/// Where the entry whose payload holds `needle` sits in the file.
fn entry_with(bytes: &[u8], needle: &str) -> Range<usize> {
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + KEY..at + KEY + LEN].try_into().unwrap()) as usize;
        let entry = at..at + HEAD + len;
        if String::from_utf8_lossy(&bytes[at + HEAD..entry.end]).contains(needle) {
            return entry;
        }
        at = entry.end;
    }
    panic!("no entry holds {needle:?}");
}

#[test]
fn a_sound_entry_is_used_as_it_is_without_parsing() {
    // Proof that the file is not read through the parser: an entry edited
    // (with a matching check) shows in the outcome.
    let content = archive();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("gazette.db.parsed");
    cached(content.path(), &opts(), &path);
    let mut bytes = fs::read(&path).unwrap();
    let entry = entry_with(&bytes, "High water");
    let key: [u8; KEY] = bytes[entry.start..entry.start + KEY].try_into().unwrap();
    let payload = String::from_utf8(bytes[entry.start + HEAD..entry.end].to_vec()).unwrap();
    let edited = payload.replace("High water", "Kept water");
    let sum = check(&ContentHash(key), edited.as_bytes());
    bytes[entry.start + KEY + LEN..entry.start + HEAD].copy_from_slice(&sum);
    bytes[entry.start + HEAD..entry.end].copy_from_slice(edited.as_bytes());
    fs::write(&path, &bytes).unwrap();
    let (ingest, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(0, 4));
    assert!(ingest.issues[0].articles[0].html.contains("Kept water"));
}

#[test]
fn a_damaged_or_cut_file_only_means_parsing_again() {
    let content = archive();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("gazette.db.parsed");
    let fresh = parse_tree(&tree(content.path(), &opts()), &opts());
    cached(content.path(), &opts(), &path);

    // One byte of one payload flipped: that entry fails its check.
    let mut bytes = fs::read(&path).unwrap();
    let entry = entry_with(&bytes, "High water");
    let at = entry.start + HEAD + (entry.end - entry.start - HEAD) / 2;
    bytes[at] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    let (ingest, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(1, 3));
    assert_same(&fresh, &ingest);
    // ... and the file was written again whole.
    let (_, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(0, 4));

    // Cut in the middle of the last entry: those before it are kept.
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let (ingest, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(1, 3));
    assert_same(&fresh, &ingest);

    // Not a cache file at all.
    fs::write(&path, "something else entirely").unwrap();
    let (ingest, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(4, 0));
    assert_same(&fresh, &ingest);
}

#[test]
fn the_file_holds_only_the_files_there_are_and_is_left_alone_when_nothing_changed() {
    let content = archive();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("gazette.db.parsed");
    cached(content.path(), &opts(), &path);
    let before = fs::metadata(&path).unwrap();
    cached(content.path(), &opts(), &path);
    let after = fs::metadata(&path).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec()),
        "rewritten though nothing changed"
    );

    assert!(String::from_utf8_lossy(&fs::read(&path).unwrap()).contains("High water"));
    fs::remove_file(content.path().join("2024-04/tides.md")).unwrap();
    let (_, c) = cached(content.path(), &opts(), &path);
    assert_eq!(c, counts(0, 3));
    let kept = fs::read(&path).unwrap();
    assert!(!String::from_utf8_lossy(&kept).contains("High water"));
    // No temporary file left beside it.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("gazette.db.parsed")]);
}

#[test]
fn a_cache_that_cannot_be_written_is_an_error_and_the_parse_is_whole() {
    let content = archive();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("missing-folder/gazette.db.parsed");
    let cache = ParseCache::load(&opts(), &path);
    let ingest = parse_tree_with(&tree(content.path(), &opts()), &opts(), Some(&cache));
    assert!(cache.save().is_err());
    assert_same(
        &parse_tree(&tree(content.path(), &opts()), &opts()),
        &ingest,
    );
    assert!(!dir.path().join("missing-folder").exists());
}
