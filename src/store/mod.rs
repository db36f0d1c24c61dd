//! The SQLite store: what gazette has seen and done, kept between runs.
//!
//! One file, WAL mode, a busy timeout, and short transactions. Migrations are
//! compiled into the binary, so a new version upgrades the file on open.

mod admins;
mod backup;
mod dashboard;
mod deliveries;
mod inbound;
mod issues;
mod lock;
mod roster;
mod signup;
mod subscribers;
mod suppression;
mod time;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use admins::{AdminAdded, AdminLogin, AdminRecord, AdminSession, AuditEntry, AuditRecord};
pub use backup::{Backup, BackupError};
pub use dashboard::{
    Attention, FAILED_SHOWN, FailedDelivery, GROWTH_MONTHS, IssueNote, IssueProgress, IssueState,
    LastCycle, MonthGrowth, RECENT_BOUNCE_DAYS,
};
pub use deliveries::{
    Attempt, Claimed, Claims, DeliveryCounts, DeliveryProblem, DeliveryStatus, IssueDeliveries,
    MailState, Published, UnpublishedIssue, backoff,
};
pub use inbound::{
    About, BounceRules, InboundKind, InboundQuery, InboundRecord, NewInbound, Recorded, Via,
};
pub use issues::{IssueRecord, RecordReport};
pub use lock::{LockError, RunLock};
pub use roster::{
    CheckedAdd, DeliveryEntry, Erasure, SEARCH_COUNT_CAP, StatusEvent, SubscriberEdit,
    SubscriberHistory, SubscriberPage, SubscriberQuery, SubscriberRecord, Total,
};
pub use signup::{
    CONFIRM_TTL, Confirmation, Preferences, PreferencesChange, SIGNUP_MAILS_PER_DAY, Signup,
};
pub use subscribers::{
    AddOutcome, ChunkReport, IMPORT_TRANSACTION, ImportReport, RemoveOutcome, StatusCounts,
};
pub use time::ledger_time;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the database folder {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {}: {source}", path.display())]
    Open { path: PathBuf, source: sqlx::Error },
    #[error(
        "the database {} is an empty file (0 bytes): truncated, or replaced by a failed copy or restore? Restore it from a backup; if it really is new, delete it and gazette creates it",
        path.display()
    )]
    EmptyFile { path: PathBuf },
    #[error("cannot upgrade the database {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{who} is not on the list")]
    UnknownSubscriber { who: String },
    #[error(
        "{who} asked not to be mailed (erased at their request, or a spam complaint): only their own confirmed sign-up brings them back"
    )]
    Suppressed { who: String },
    #[error("cannot get random bytes for a subscriber token: {0}")]
    Random(getrandom::Error),
    #[error("the database holds a bad value ({what}); was it edited by hand?")]
    Corrupt { what: String },
}

/// One column of a row read back from the store: a value of the wrong type
/// is [`StoreError::Corrupt`] naming the table, the row and the column (a
/// hand-edited database), never a panic.
pub(crate) fn column<'r, T>(
    row: &'r sqlx::sqlite::SqliteRow,
    table: &str,
    id: &dyn std::fmt::Display,
    name: &str,
) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    use sqlx::Row;
    row.try_get(name).map_err(|e| match e {
        sqlx::Error::ColumnDecode { source, .. } => corrupt(table, id, name, &source.to_string()),
        other => StoreError::Sql(other),
    })
}

/// [`StoreError::Corrupt`] for one column of one row.
pub(crate) fn corrupt(
    table: &str,
    id: &dyn std::fmt::Display,
    column: &str,
    what: &str,
) -> StoreError {
    StoreError::Corrupt {
        what: format!("{table} row {id}, column {column}: {what}"),
    }
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Open (creating it and its folder when missing) and migrate. An
    /// existing file of 0 bytes is refused: SQLite would take it for a new
    /// database and gazette would start over with an empty list and ledger
    /// (every issue mailed again to no one, every subscriber gone) without a
    /// word, where it is almost always a truncated file or a failed restore.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if is_empty_file(path) {
            return Err(StoreError::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Freed space is zeroed, so an erased subscriber's address or an
            // old reply does not survive in a page's free space (roster.rs).
            .pragma("secure_delete", "on");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        for problem in subscribers::normalize_addresses(&pool).await? {
            tracing::warn!("{}: {problem}", path.display());
        }
        Ok(Store {
            pool,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that writes. It starts `IMMEDIATE`, taking the write
    /// lock first (waiting up to the busy timeout for another writer), so it
    /// never has to upgrade a read: in WAL mode a deferred transaction that
    /// read and then wants to write while, or after, another connection
    /// wrote fails at once with "database is locked" (its snapshot is
    /// stale), whatever the busy timeout. A sign-up during a cycle did that.
    /// Every transaction in `store` that writes starts here.
    pub(crate) async fn write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let v: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.map(|(s,)| s))
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A time kept in `meta` (e.g. the cycle's next held moment), written
    /// and read as every stored time is (`time.rs`); `None` when unset or
    /// not a time.
    pub async fn meta_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.meta(key).await?.as_deref().and_then(time::parse))
    }

    /// Set (or, with `None`, clear) a time kept in `meta`.
    pub async fn set_meta_time(
        &self,
        key: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.set_meta(key, &at.map(time::ledger_time).unwrap_or_default())
            .await
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// A database file of 0 bytes with no write-ahead log holding its pages
/// (a database that was never checkpointed keeps them in `-wal`).
fn is_empty_file(path: &Path) -> bool {
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    len(path) == Some(0) && len(Path::new(&wal)).unwrap_or(0) == 0
}

/// The listed subscribers' addresses, in list order, for tests' asserts.
#[cfg(test)]
impl Store {
    pub(crate) async fn listed_emails(&self) -> Vec<String> {
        let listed = self.subscribers(None).await.expect("list subscribers");
        listed.iter().map(|s| s.email.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_meta_time_reads_back_and_clears_and_older_forms_still_read() {
        use chrono::TimeZone;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 24, 17, 0, 0).unwrap();
        assert_eq!(store.meta_time("k").await.unwrap(), None);
        store.set_meta_time("k", Some(at)).await.unwrap();
        assert_eq!(store.meta_time("k").await.unwrap(), Some(at));
        store.set_meta_time("k", None).await.unwrap();
        assert_eq!(store.meta_time("k").await.unwrap(), None);
        // What cycles wrote before (`AutoSi`, any offset) still reads.
        store
            .set_meta("k", "2026-12-24T18:00:00+01:00")
            .await
            .unwrap();
        assert_eq!(store.meta_time("k").await.unwrap(), Some(at));
    }

    #[tokio::test]
    async fn opens_in_wal_mode_and_creates_missing_folders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/gazette.db");
        let store = Store::open(&path).await.unwrap();
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        store.set_meta("k", "1").await.unwrap();
        store.set_meta("k", "2").await.unwrap();
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("2"));
        assert_eq!(store.meta("missing").await.unwrap(), None);
        store.close().await;
        // Reopening runs no migration twice and keeps the data.
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gazette.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let e = Store::open(&path).await.unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[tokio::test]
    async fn an_empty_existing_file_is_refused_not_made_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gazette.db");
        std::fs::write(&path, b"").unwrap();
        let e = Store::open(&path).await.unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string())
                && e.contains("0 bytes")
                && e.contains("delete it"),
            "{e}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
        // A missing file is still created.
        std::fs::remove_file(&path).unwrap();
        Store::open(&path).await.unwrap().close().await;
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
    }
}
