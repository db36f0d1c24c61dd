//! Writing the feed files: atomically, and not at all when nothing changed.
//!
//! A file whose bytes are already the ones to write is left alone, so its
//! mtime (and the ETag / Last-Modified derived from it) stays put. Any other
//! file is written to a temporary file in the same folder, fsynced, and
//! renamed over the old one: readers see the old feed or the new one, never
//! half of one. The temporary file is removed when anything fails.

use std::fs::{self, File};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ATOM_FILE, FeedError, FeedSet, JSON_FILE, RSS_FILE};

/// Which feed files [`write()`] replaced and which it left untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files written (new or changed), in the order rss, atom, json.
    pub written: Vec<PathBuf>,
    /// Files that already held exactly these bytes.
    pub unchanged: Vec<PathBuf>,
}

impl WriteReport {
    /// True when at least one file was written.
    pub fn changed(&self) -> bool {
        !self.written.is_empty()
    }
}

/// Writes `rss.xml`, `atom.xml` and `feed.json` into `dir` (created when
/// missing). On an error, which names the path concerned, no temporary file
/// is left; when a temporary file could not be written, no feed was
/// replaced; when a rename failed, the files before it are new and the
/// others old. Each file is whole either way.
pub fn write(dir: &Path, set: &FeedSet) -> Result<WriteReport, FeedError> {
    fs::create_dir_all(dir).map_err(|source| io_error("create", dir, source))?;
    let files = [
        (RSS_FILE, &set.rss),
        (ATOM_FILE, &set.atom),
        (JSON_FILE, &set.json),
    ];
    // Compared, written and fsynced on a thread each: a big archive's feeds
    // are ~30 MB apiece, and one after the other their three fsyncs were
    // most of a cold `feeds build` on a slow disk. Only the renames go in
    // order.
    let staged = std::thread::scope(|scope| {
        files
            .map(|(name, content)| scope.spawn(move || stage(dir, name, content.as_bytes())))
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
    });
    let mut temps: [Option<PathBuf>; 3] = [None, None, None];
    let mut failed = None;
    for (slot, staged) in temps.iter_mut().zip(staged) {
        match staged {
            Ok(tmp) => *slot = tmp,
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    let remove = |temps: &[Option<PathBuf>]| {
        for tmp in temps.iter().flatten() {
            // Best effort: it is ours, and nothing refers to it.
            let _ = fs::remove_file(tmp);
        }
    };
    if let Some(e) = failed {
        remove(&temps);
        return Err(e);
    }
    let mut report = WriteReport::default();
    for (i, (name, _)) in files.iter().enumerate() {
        let target = dir.join(name);
        let Some(tmp) = &temps[i] else {
            report.unchanged.push(target);
            continue;
        };
        if let Err(source) = fs::rename(tmp, &target) {
            remove(&temps[i..]);
            return Err(io_error("replace", &target, source));
        }
        report.written.push(target);
    }
    if report.changed() {
        sync_dir(dir);
    }
    Ok(report)
}

/// `None` when `dir/name` already holds `bytes`; else a temporary file in
/// `dir` with `bytes`, fsynced, for [`write`] to rename over it.
fn stage(dir: &Path, name: &str, bytes: &[u8]) -> Result<Option<PathBuf>, FeedError> {
    if holds(&dir.join(name), bytes) {
        return Ok(None);
    }
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    // Unique per process and call, so that two gazette processes (say `serve`
    // and a manual `feeds build`) never write into the same temporary file.
    let tmp = dir.join(format!("{name}.{}.{n}.tmp", std::process::id()));
    match write_new(&tmp, bytes) {
        Ok(()) => Ok(Some(tmp)),
        Err(e) => {
            // Best effort: the file may never have been created.
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// True when `path` is a regular file with exactly `bytes` (any error reading
/// it means "no": the file is then rewritten, or the write reports why not).
/// Compared a block at a time, not read whole: the three feeds of a big
/// archive are compared at once, ~30 MB each, beside the new ones in memory.
fn holds(path: &Path, bytes: &[u8]) -> bool {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == bytes.len() as u64 => {
            File::open(path).is_ok_and(|file| same_bytes(file, bytes))
        }
        _ => false,
    }
}

/// Whether `reader` yields exactly `bytes`, then ends.
fn same_bytes(mut reader: impl Read, mut bytes: &[u8]) -> bool {
    let mut block = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut block) {
            Ok(0) => return bytes.is_empty(),
            Ok(n) => match bytes.strip_prefix(&block[..n]) {
                Some(rest) => bytes = rest,
                None => return false,
            },
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Distinguishes temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates `path` (which must not exist), writes `bytes` and fsyncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), FeedError> {
    let mut file = File::create_new(path).map_err(|source| io_error("write", path, source))?;
    file.write_all(bytes)
        .map_err(|source| io_error("write", path, source))?;
    file.sync_all()
        .map_err(|source| io_error("sync", path, source))
}

/// Makes the renames durable. Best effort: some file systems refuse to fsync
/// a directory, and the files themselves are already complete either way.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> FeedError {
    FeedError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use super::*;

    fn set(tag: &str) -> FeedSet {
        FeedSet {
            rss: format!("<rss>{tag}</rss>\n"),
            atom: format!("<feed>{tag}</feed>\n"),
            json: format!("{{\"v\": \"{tag}\"}}\n"),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path).unwrap().modified().unwrap()
    }

    #[test]
    fn creates_the_folder_and_writes_all_three() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public/feeds");
        let report = write(&dir, &set("one")).unwrap();
        assert_eq!(
            report.written,
            [
                dir.join("rss.xml"),
                dir.join("atom.xml"),
                dir.join("feed.json")
            ]
        );
        assert!(report.unchanged.is_empty());
        assert!(report.changed());
        assert_eq!(names(&dir), ["atom.xml", "feed.json", "rss.xml"]);
        assert_eq!(
            fs::read_to_string(dir.join("atom.xml")).unwrap(),
            "<feed>one</feed>\n"
        );
    }

    #[test]
    fn unchanged_files_keep_their_mtime() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, &set("one")).unwrap();
        // Age the files, so that any rewrite would show in the mtime.
        let old = SystemTime::now() - Duration::from_secs(3600);
        for name in ["rss.xml", "atom.xml", "feed.json"] {
            fs::File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let report = write(dir, &set("one")).unwrap();
        assert!(!report.changed());
        assert_eq!(report.unchanged.len(), 3);
        for name in ["rss.xml", "atom.xml", "feed.json"] {
            assert_eq!(mtime(&dir.join(name)), old, "{name}");
        }
        // Only the file that changed is rewritten.
        let mut next = set("one");
        next.json = "{\"v\": \"two\"}\n".to_owned();
        let report = write(dir, &next).unwrap();
        assert_eq!(report.written, [dir.join("feed.json")]);
        assert_eq!(
            report.unchanged,
            [dir.join("rss.xml"), dir.join("atom.xml")]
        );
        assert_eq!(mtime(&dir.join("rss.xml")), old);
        assert_ne!(mtime(&dir.join("feed.json")), old);
        assert_eq!(
            fs::read_to_string(dir.join("feed.json")).unwrap(),
            next.json
        );
        assert_eq!(names(dir), ["atom.xml", "feed.json", "rss.xml"]);
    }

    /// A folder nobody may write into. As root (or with CAP_DAC_OVERRIDE),
    /// permissions do not stop writes, so then `None`.
    #[cfg(unix)]
    fn read_only_dir(dir: &Path) -> Option<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
        let probe = dir.join(".probe");
        if fs::write(&probe, b"x").is_ok() {
            fs::remove_file(&probe).unwrap();
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
            return None;
        }
        Some(())
    }

    #[cfg(unix)]
    #[test]
    fn unwritable_folder_gives_an_error_naming_the_path_and_keeps_old_feeds() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("feeds");
        write(&dir, &set("old")).unwrap();
        if read_only_dir(&dir).is_some() {
            let err = write(&dir, &set("new")).unwrap_err();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
            let message = err.to_string();
            let tmp_name = format!("{}", dir.join("rss.xml.").display());
            assert!(
                message.starts_with(&format!("cannot write {tmp_name}")),
                "{message}"
            );
            assert!(message.contains(".tmp: "), "{message}");
            assert!(
                matches!(&err, FeedError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied)
            );
            assert_eq!(names(&dir), ["atom.xml", "feed.json", "rss.xml"]);
            assert_eq!(
                fs::read_to_string(dir.join("rss.xml")).unwrap(),
                "<rss>old</rss>\n"
            );
        } else {
            // Running as root: make the folder impossible by putting it under a
            // regular file.
            let file = tmp.path().join("file.txt");
            fs::write(&file, b"not a folder").unwrap();
            let bad = file.join("feeds");
            let err = write(&bad, &set("new")).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("cannot create {}: ", bad.display())),
                "{message}"
            );
            assert_eq!(fs::read(&file).unwrap(), b"not a folder");
            // The existing feeds elsewhere were not touched either.
            assert_eq!(
                fs::read_to_string(dir.join("rss.xml")).unwrap(),
                "<rss>old</rss>\n"
            );
        }
    }

    #[test]
    fn failed_rename_removes_the_temp_file_and_names_the_target() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, &set("old")).unwrap();
        // A non-empty folder where atom.xml should go: the rename must fail.
        fs::remove_file(dir.join("atom.xml")).unwrap();
        fs::create_dir(dir.join("atom.xml")).unwrap();
        fs::write(dir.join("atom.xml/keep"), b"x").unwrap();
        let err = write(dir, &set("new")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "cannot replace {}: ",
                dir.join("atom.xml").display()
            )),
            "{message}"
        );
        // No temporary file left behind; rss.xml (before the failure) is new,
        // feed.json (after it) still old, and each file is whole.
        assert_eq!(names(dir), ["atom.xml", "feed.json", "rss.xml"]);
        assert_eq!(
            fs::read_to_string(dir.join("rss.xml")).unwrap(),
            "<rss>new</rss>\n"
        );
        assert_eq!(
            fs::read_to_string(dir.join("feed.json")).unwrap(),
            "{\"v\": \"old\"}\n"
        );
    }

    #[test]
    fn same_bytes_compares_block_by_block_to_the_end() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert!(same_bytes(&big[..], &big));
        let mut other = big.clone();
        other[150_000] ^= 1;
        assert!(!same_bytes(&other[..], &big));
        assert!(!same_bytes(&big[..199_999], &big), "shorter");
        assert!(!same_bytes(&big[..], &big[..199_999]), "longer");
        assert!(same_bytes(&b""[..], b""));
    }

    #[test]
    fn a_stale_temp_file_does_not_block_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("rss.xml.tmp"), b"half a feed").unwrap();
        write(dir, &set("one")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("rss.xml")).unwrap(),
            "<rss>one</rss>\n"
        );
    }
}
