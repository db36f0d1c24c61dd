//! One `gazette run` at a time per database.
//!
//! SQLite alone would keep the file consistent, but two runs would both build
//! feeds and (later) both send mail. An exclusive OS file lock beside the
//! database serializes them; the OS drops it when the process dies, so a
//! crashed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another gazette run is still working on this database ({holder}); gave up after waiting {waited}s for {}",
        path.display()
    )]
    Busy {
        path: PathBuf,
        holder: String,
        waited: u64,
    },
}

/// Held for the length of a run; released on drop (or process exit).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file for a database file: `gazette.db` -> `gazette.db.lock`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".lock");
        db.with_file_name(name)
    }

    /// Take the lock, waiting up to `wait` for another run to finish.
    /// `on_wait` is called once if we have to wait (to tell the user why).
    pub fn acquire(
        db: &Path,
        wait: Duration,
        on_wait: impl FnOnce(&str),
    ) -> Result<RunLock, LockError> {
        let path = RunLock::path_for(db);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        let start = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&path)
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    let holder = if holder.is_empty() {
                        "unknown process".to_string()
                    } else {
                        holder
                    };
                    if start.elapsed() >= wait {
                        return Err(LockError::Busy {
                            path,
                            holder,
                            waited: wait.as_secs(),
                        });
                    }
                    if let Some(f) = on_wait.take() {
                        f(&holder);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::Error(source)) => return Err(LockError::Open { path, source }),
            }
        }
        let mut lock = RunLock { file, path };
        // Who holds it, for the next process's message; best effort.
        let _ = lock.file.set_len(0);
        let _ = writeln!(lock.file, "pid {}", std::process::id());
        Ok(lock)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gives_up_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gazette.db");
        let first = RunLock::acquire(&db, Duration::ZERO, |_| {}).unwrap();
        let mut told = None;
        let e = RunLock::acquire(&db, Duration::from_millis(300), |h| {
            told = Some(h.to_string())
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("another gazette run")
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(told.is_some());
        drop(first);
        RunLock::acquire(&db, Duration::ZERO, |_| {}).unwrap();
    }
}
