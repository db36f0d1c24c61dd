//! Importing a subscriber list: the one use case behind `gazette subscribers
//! import`, `POST /api/v1/subscribers/import` and the admin console. Read the
//! CSV (`subscribers::csv`), put the good rows into the store in one
//! transaction, and say what happened to every row, by its line in the file.
//!
//! It sits at the top of the library beside `cycle`, the other use case,
//! rather than in `subscribers`: it calls the store, and the store is built
//! on `subscribers`' types, so inside `subscribers` the two modules would
//! import each other. `subscribers::csv` stays a pure file format, `store`
//! knows no files, and callers only print or serialize the [`ImportOutcome`].

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::store::{Store, StoreError};
use crate::subscribers::csv::{self as subscriber_csv, CsvError, LineNote};
use crate::subscribers::{SubscriberEmail, SubscriberRow};

/// How to import.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// `mail.smtputf8`: whether an address with a Unicode local part can be
    /// mailed, so imported (see [`SubscriberEmail::parse_new`]).
    pub smtputf8: bool,
    /// The time recorded as the new subscribers' sign-up.
    pub now: DateTime<Utc>,
}

/// What an import did. Serialized (the CLI's `--json`, the API's answer)
/// as `{"already_subscribed", "erased", "imported", "skipped": [{"line",
/// "reason"}], "warnings": [{"line", "reason"}]}`, `erased` being a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// New subscribers.
    pub imported: usize,
    /// Addresses already on the list (ignoring case), left as they were.
    pub already_subscribed: usize,
    /// Every row that was not imported, in file order.
    pub skipped: Vec<SkippedRow>,
    /// Notes that skip nothing (columns gazette does not use).
    pub warnings: Vec<LineNote>,
}

impl ImportOutcome {
    /// Rows skipped because their address was erased at the person's request.
    pub fn erased(&self) -> usize {
        self.skipped
            .iter()
            .filter(|s| matches!(s.reason, SkipReason::Erased(_)))
            .count()
    }
}

impl Serialize for ImportOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ImportOutcome", 5)?;
        s.serialize_field("already_subscribed", &self.already_subscribed)?;
        s.serialize_field("erased", &self.erased())?;
        s.serialize_field("imported", &self.imported)?;
        s.serialize_field("skipped", &self.skipped)?;
        s.serialize_field("warnings", &self.warnings)?;
        s.end()
    }
}

/// A row of the file that was not imported. Shown as `FILE:LINE: reason`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedRow {
    pub line: u64,
    pub reason: SkipReason,
}

impl SkippedRow {
    /// The row's address, when it was a good one.
    pub fn address(&self) -> Option<&SubscriberEmail> {
        match &self.reason {
            SkipReason::Erased(email) => Some(email),
            SkipReason::Invalid(_) => None,
        }
    }
}

/// Why a row was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The row itself is wrong: every problem `subscribers::csv` found in it
    /// (bad address, name or status, a duplicate of an earlier row...).
    Invalid(String),
    /// The address was erased at the person's request; only they can bring
    /// it back, by signing up again.
    Erased(SubscriberEmail),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Invalid(reason) => f.write_str(reason),
            SkipReason::Erased(email) => write!(
                f,
                "{email} was erased at their request, or complained of spam; it is not imported again"
            ),
        }
    }
}

impl Serialize for SkipReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read as a whole (no `email` column, not UTF-8...);
    /// [`CsvError::line`] says where.
    #[error(transparent)]
    File(#[from] CsvError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Import the subscriber CSV `data`: all good rows in one transaction,
/// addresses already on the list left as they are, erased ones refused.
pub async fn subscribers(
    store: &Store,
    data: &[u8],
    options: ImportOptions,
) -> Result<ImportOutcome, ImportError> {
    Ok(read(data, options.smtputf8)?
        .import(store, options.now)
        .await?)
}

/// The first half of [`subscribers`], for a caller that must not open the
/// store for a file that cannot be read (the CLI does not create a
/// database for it).
pub fn read(data: &[u8], smtputf8: bool) -> Result<ImportFile, CsvError> {
    let parsed = subscriber_csv::read(data, smtputf8)?;
    let (lines, rows) = parsed.rows.into_iter().unzip();
    Ok(ImportFile {
        lines,
        rows,
        skipped: parsed.skipped,
        warnings: parsed.warnings,
    })
}

/// How far an import has come, for the console's progress page: shared
/// between the task that imports and the requests that look (atomics, no
/// lock: a look never waits for a chunk of the import).
#[derive(Debug, Default)]
pub struct Progress {
    /// 0 reading, 1 saving, 2 finished.
    stage: AtomicU8,
    /// Lines of the file (the header included), known before reading it.
    lines: AtomicU64,
    /// Good rows read, to save.
    rows: AtomicU64,
    /// Rows handled so far (imported, already there, or erased).
    saved: AtomicU64,
}

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Reading and checking every row of a file of `lines` lines.
    Reading {
        lines: u64,
    },
    /// Saving: `saved` of `rows` good rows handled.
    Saving {
        saved: u64,
        rows: u64,
    },
    Finished,
}

impl Progress {
    /// Reading has begun; counts the lines of `data` (cheap next to
    /// checking every address).
    pub fn reading(&self, data: &[u8]) {
        let lines = memchr::memchr_iter(b'\n', data).count() as u64
            + u64::from(!data.is_empty() && !data.ends_with(b"\n"));
        self.lines.store(lines, Ordering::Relaxed);
        self.stage.store(0, Ordering::Release);
    }

    /// The import is over, one way or the other.
    pub fn finish(&self) {
        self.stage.store(2, Ordering::Release);
    }

    pub fn stage(&self) -> Stage {
        match self.stage.load(Ordering::Acquire) {
            0 => Stage::Reading {
                lines: self.lines.load(Ordering::Relaxed),
            },
            1 => Stage::Saving {
                saved: self.saved.load(Ordering::Relaxed),
                rows: self.rows.load(Ordering::Relaxed),
            },
            _ => Stage::Finished,
        }
    }
}

/// A subscriber file that was read: its good rows, ready for the store.
#[derive(Debug)]
pub struct ImportFile {
    /// The line of each of `rows`.
    lines: Vec<u64>,
    rows: Vec<SubscriberRow>,
    skipped: Vec<LineNote>,
    warnings: Vec<LineNote>,
}

impl ImportFile {
    /// The second half of [`subscribers`]: the good rows into the store.
    pub async fn import(
        self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<ImportOutcome, StoreError> {
        self.import_with(store, now, &Progress::default()).await
    }

    /// [`ImportFile::import`], telling `progress` how far it has come after
    /// each chunk the store saves.
    pub async fn import_with(
        self,
        store: &Store,
        now: DateTime<Utc>,
        progress: &Progress,
    ) -> Result<ImportOutcome, StoreError> {
        progress
            .rows
            .store(self.rows.len() as u64, Ordering::Relaxed);
        progress.saved.store(0, Ordering::Relaxed);
        progress.stage.store(1, Ordering::Release);
        let report = store
            .import_subscribers_with(&self.rows, now, |n| {
                progress.saved.store(n as u64, Ordering::Relaxed);
            })
            .await?;
        let mut skipped: Vec<SkippedRow> = self
            .skipped
            .into_iter()
            .map(|n| SkippedRow {
                line: n.line,
                reason: SkipReason::Invalid(n.reason),
            })
            .collect();
        // The store names erased rows by their position among `rows`.
        skipped.extend(report.erased.iter().filter_map(|&i| {
            Some(SkippedRow {
                line: *self.lines.get(i)?,
                reason: SkipReason::Erased(self.rows.get(i)?.email.clone()),
            })
        }));
        skipped.sort_by_key(|s| s.line);
        Ok(ImportOutcome {
            imported: report.imported,
            already_subscribed: report.already_subscribed,
            skipped,
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::Status;

    fn options() -> ImportOptions {
        ImportOptions {
            smtputf8: false,
            now: "2026-11-20T10:00:00Z".parse().unwrap(),
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        (dir, store)
    }

    fn email(s: &str) -> SubscriberEmail {
        SubscriberEmail::parse(s).unwrap()
    }

    fn shown(o: &ImportOutcome) -> Vec<String> {
        o.skipped
            .iter()
            .map(|s| format!("{}: {}", s.line, s.reason))
            .collect()
    }

    #[tokio::test]
    async fn imports_good_rows_and_names_every_other_line_in_file_order() {
        let (_d, store) = store().await;
        let now = options().now;
        for (address, status) in [
            ("kept@example.org", Status::Pending),
            ("gone@example.org", Status::Active),
        ] {
            let row = SubscriberRow {
                email: email(address),
                name: None,
                status,
            };
            store.add_subscriber(&row, now).await.unwrap();
        }
        store
            .erase_subscriber_by_email(&email("gone@example.org"), now)
            .await
            .unwrap();
        let csv = "email,name,phone\n\
                   ann@example.org,Ann,1\n\
                   GONE@example.org,Again,2\n\
                   bob@example,Bob,3\n\
                   KEPT@example.org,Kept,4\n\
                   cat@example.org,Cat,5\n\
                   ann@example.org,Ann twice,6\n";
        let got = subscribers(&store, csv.as_bytes(), options())
            .await
            .unwrap();
        assert_eq!((got.imported, got.already_subscribed), (2, 1));
        assert_eq!(
            shown(&got),
            vec![
                "3: GONE@example.org was erased at their request, or complained of spam; it is not imported again",
                "4: invalid address \"bob@example\": the domain \"example\" has no dot",
                "7: duplicate of line 2 (ann@example.org)",
            ]
        );
        assert_eq!(got.erased(), 1);
        assert_eq!(
            got.skipped[0].address().map(SubscriberEmail::as_str),
            Some("GONE@example.org"),
            "as the file spells it"
        );
        assert_eq!(got.skipped[1].address(), None);
        assert_eq!(
            got.warnings,
            vec![LineNote {
                line: 1,
                reason: "ignoring a column gazette does not use: \"phone\"".into()
            }]
        );
        let listed = store.listed_emails().await;
        assert_eq!(
            listed,
            vec!["kept@example.org", "ann@example.org", "cat@example.org"]
        );
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_read_imports_nothing() {
        let (_d, store) = store().await;
        let e = subscribers(&store, b"address,name\nann@example.org,Ann\n", options())
            .await
            .unwrap_err();
        let ImportError::File(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(e.line(), 1);
        assert!(e.to_string().contains("no `email` column"), "{e}");
        assert_eq!(store.subscribers(None).await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn progress_counts_lines_then_saved_rows_chunk_by_chunk() {
        let (_d, store) = store().await;
        let mut csv = String::from("email,name\n");
        for i in 0..2500 {
            csv.push_str(&format!("r{i}@example.org,R {i}\n"));
        }
        csv.push_str("bad,row");
        let progress = Progress::default();
        progress.reading(csv.as_bytes());
        assert_eq!(progress.stage(), Stage::Reading { lines: 2502 });
        let file = read(csv.as_bytes(), false).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        // The store calls back per chunk; what a looker sees in between.
        let outcome = {
            let store = store.clone();
            let p = &progress;
            let seen = &seen;
            let watch = async {
                loop {
                    let st = p.stage();
                    seen.lock().unwrap().push(st);
                    if matches!(st, Stage::Saving { saved: 2500, .. }) {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            };
            let (outcome, ()) = tokio::join!(file.import_with(&store, options().now, p), watch);
            outcome.unwrap()
        };
        progress.finish();
        assert_eq!(outcome.imported, 2500);
        assert_eq!(outcome.skipped.len(), 1);
        assert_eq!(progress.stage(), Stage::Finished);
        let seen = seen.into_inner().unwrap();
        assert!(
            seen.contains(&Stage::Saving {
                saved: 2500,
                rows: 2500
            }),
            "{seen:?}"
        );
        for w in seen.windows(2) {
            if let (Stage::Saving { saved: a, .. }, Stage::Saving { saved: b, .. }) = (w[0], w[1]) {
                assert!(a <= b, "{seen:?}");
            }
        }
    }

    #[test]
    fn serializes_counts_and_notes_as_the_cli_and_api_show_them() {
        let outcome = ImportOutcome {
            imported: 2,
            already_subscribed: 1,
            skipped: vec![
                SkippedRow {
                    line: 3,
                    reason: SkipReason::Erased(email("gone@example.org")),
                },
                SkippedRow {
                    line: 4,
                    reason: SkipReason::Invalid("no address".into()),
                },
            ],
            warnings: vec![LineNote {
                line: 1,
                reason: "ignoring a column".into(),
            }],
        };
        assert_eq!(
            serde_json::to_string(&outcome).unwrap(),
            "{\"already_subscribed\":1,\"erased\":1,\"imported\":2,\"skipped\":[\
             {\"line\":3,\"reason\":\"gone@example.org was erased at their request, or complained of spam; it is not imported again\"},\
             {\"line\":4,\"reason\":\"no address\"}],\
             \"warnings\":[{\"line\":1,\"reason\":\"ignoring a column\"}]}"
        );
    }
}
