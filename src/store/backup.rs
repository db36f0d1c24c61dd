//! `gazette backup`: a consistent copy of the database while it is in use.
//!
//! Copying `gazette.db` with `cp` while `serve` runs can catch a page half
//! written or miss what still sits in the WAL file. `VACUUM INTO` instead
//! reads one snapshot inside a read transaction (writers carry on) and
//! writes a compact, self-contained database. It is written under a
//! temporary name beside the target, checked with `PRAGMA integrity_check`,
//! and only then linked to the name asked for, which must not exist: a
//! backup never replaces a file, and a failed one leaves nothing behind.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::Store;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} exists already; a backup never replaces a file (choose a new name)", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write the backup {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot copy the database into {}: {source}", path.display())]
    Sql { path: PathBuf, source: sqlx::Error },
    #[error("the copy {} failed its integrity check: {report}", path.display())]
    Check { path: PathBuf, report: String },
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the database to `out`, which must not
    /// exist (its folder is created when missing).
    pub async fn backup(&self, out: &Path) -> Result<Backup, BackupError> {
        let io = |source| BackupError::Io {
            path: out.to_path_buf(),
            source,
        };
        if out.symlink_metadata().is_ok() {
            return Err(BackupError::Exists {
                path: out.to_path_buf(),
            });
        }
        let dir = out
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "backup".into());
        let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
        // A leftover of an earlier, killed backup by a process with our pid.
        let _ = std::fs::remove_file(&partial);

        let result = self.vacuum_into_checked(&partial).await.and_then(|()| {
            // A hard link fails when `out` appeared meanwhile, where a rename
            // would replace it.
            std::fs::hard_link(&partial, out).map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    BackupError::Exists {
                        path: out.to_path_buf(),
                    }
                } else {
                    io(source)
                }
            })
        });
        let _ = std::fs::remove_file(&partial);
        result?;
        let bytes = std::fs::metadata(out).map_err(io)?.len();
        Ok(Backup {
            path: out.to_path_buf(),
            bytes,
        })
    }

    async fn vacuum_into_checked(&self, partial: &Path) -> Result<(), BackupError> {
        let sql = |source| BackupError::Sql {
            path: partial.to_path_buf(),
            source,
        };
        let target = partial.to_str().ok_or_else(|| BackupError::Io {
            path: partial.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path is not valid UTF-8",
            ),
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(self.pool())
            .await
            .map_err(sql)?;

        // Read the copy back on its own connection, as a restore would.
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(sql)?
            .filename(partial)
            .read_only(true);
        let mut copy = SqliteConnection::connect_with(&options)
            .await
            .map_err(sql)?;
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&mut copy)
            .await
            .map_err(sql)?;
        copy.close().await.map_err(sql)?;
        let report: Vec<String> = rows.into_iter().map(|(line,)| line).collect();
        if report != ["ok"] {
            return Err(BackupError::Check {
                path: partial.to_path_buf(),
                report: report.join("; "),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_copy_holds_the_data_and_an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("gazette.db")).await.unwrap();
        store.set_meta("k", "kept").await.unwrap();

        let out = dir.path().join("backups/copy.db");
        let backup = store.backup(&out).await.unwrap();
        assert_eq!(backup.path, out);
        assert_eq!(backup.bytes, std::fs::metadata(&out).unwrap().len());
        let copy = Store::open(&out).await.unwrap();
        assert_eq!(copy.meta("k").await.unwrap().as_deref(), Some("kept"));
        copy.close().await;

        let before = std::fs::read(&out).unwrap();
        store.set_meta("k", "changed").await.unwrap();
        let err = store.backup(&out).await.unwrap_err();
        assert!(matches!(err, BackupError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("copy.db"), "{err}");
        assert_eq!(std::fs::read(&out).unwrap(), before);
        // No temporary copy is left behind.
        let partials: Vec<_> = std::fs::read_dir(dir.path().join("backups"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(partials.is_empty(), "{partials:?}");
    }
}
