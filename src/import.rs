//! Importing a subscriber list: the one use case behind `gazette subscribers
//! import`, `POST /api/v1/subscribers/import` and the admin console. Check
//! the whole file's encoding, then read the CSV (`subscribers::csv`) a piece
//! at a time and put each piece's good rows into the store in a write
//! transaction of its own (a file of any size in bounded memory, and the
//! database free for sign-ups between pieces), and say what happened to
//! every row, by its line in the file.
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

use std::io::Read;

use crate::store::{IMPORT_TRANSACTION, Store, StoreError};
use crate::subscribers::csv::{self as subscriber_csv, CsvError, LineNote, ReadRow};
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

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read as a whole (no `email` column, not UTF-8...);
    /// [`CsvError::line`] says where. Nothing was imported.
    #[error(transparent)]
    File(#[from] CsvError),
    /// The database refused a piece, or the file could not be read on,
    /// after `imported` new subscribers were saved: they stay, and the same
    /// import run again adds the rest (addresses already there are left
    /// as they are).
    #[error(
        "{source} (the import stopped after {imported} new subscribers were saved; run it again to add the rest)"
    )]
    Stopped {
        imported: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> ImportError {
        ImportError::Stopped {
            imported: 0,
            source: Box::new(e),
        }
    }
}

/// Import the subscriber CSV `data` held in memory (the API's body): see
/// [`open`] and [`ImportFile::import`].
pub async fn subscribers(
    store: &Store,
    data: &[u8],
    options: ImportOptions,
) -> Result<ImportOutcome, ImportError> {
    open_bytes(data.to_vec(), options.smtputf8)?
        .import(store, options.now)
        .await
}

/// [`check_encoding`] then [`open`], for a file held in memory (the API's
/// body, the console's upload).
pub fn open_bytes(
    data: Vec<u8>,
    smtputf8: bool,
) -> Result<ImportFile<std::io::Cursor<Vec<u8>>>, CsvError> {
    check_encoding(&data[..])?;
    open(std::io::Cursor::new(data), smtputf8)
}

/// Refuse an input that is not UTF-8 throughout, naming the line of the
/// first bad byte, before anything is saved: a file in another encoding
/// would otherwise be imported garbled, or stop half-way. Reads `input` in
/// blocks (a file of any size in constant memory).
pub fn check_encoding(input: impl Read) -> Result<(), CsvError> {
    subscriber_csv::check_utf8(input)
}

/// Read the header of a subscriber CSV: a file that cannot be imported at
/// all (empty, no `email` column) is refused here, before a caller opens
/// the store for it (the CLI creates no database for such a file). Call
/// [`check_encoding`] on the same input first.
pub fn open<R: Read>(input: R, smtputf8: bool) -> Result<ImportFile<R>, CsvError> {
    Ok(ImportFile {
        reader: subscriber_csv::Reader::new(input, smtputf8)?,
    })
}

/// How far an import has come, for the console's progress page and the
/// CLI's progress bar: shared between the task that imports and those that
/// look (atomics, no lock: a look never waits for a piece of the import).
#[derive(Debug, Default)]
pub struct Progress {
    /// 0 reading, 1 saving, 2 finished.
    stage: AtomicU8,
    /// Lines of the file (the header included), when known before reading.
    lines: AtomicU64,
    /// Rows expected: the lines after the header, when known.
    rows: AtomicU64,
    /// Good rows handled so far (imported, already there or erased).
    saved: AtomicU64,
    /// Bytes of the input read so far.
    bytes: AtomicU64,
}

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Checking the file of `lines` lines before saving anything.
    Reading {
        lines: u64,
    },
    /// Saving: `saved` of about `rows` rows handled.
    Saving {
        saved: u64,
        rows: u64,
    },
    Finished,
}

impl Progress {
    /// Checking has begun; counts the lines of `data` (cheap next to
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

    /// Bytes of the input read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A subscriber file whose header was read, ready to import ([`open`]).
pub struct ImportFile<R> {
    reader: subscriber_csv::Reader<R>,
}

impl<R> fmt::Debug for ImportFile<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ImportFile")
    }
}

/// The line of each row an import added, by the row's id, kept as runs:
/// ids are handed out one after the other within a transaction and a clean
/// file's rows are one a line, so a run (first id, its line, length) holds
/// every row until a skipped row, a multi-line field or another writer's id
/// breaks it. A million clean rows are a run per piece, not 8 MB of lines.
#[derive(Debug, Default)]
struct IdLines {
    runs: Vec<IdRun>,
}

#[derive(Debug, Clone, Copy)]
struct IdRun {
    id: i64,
    line: u64,
    len: u64,
}

impl IdLines {
    /// Ids must come in increasing order.
    fn push(&mut self, id: i64, line: u64) {
        if let Some(r) = self.runs.last_mut()
            && i64::try_from(r.len).is_ok_and(|len| r.id + len == id)
            && r.line + r.len == line
        {
            r.len += 1;
            return;
        }
        self.runs.push(IdRun { id, line, len: 1 });
    }

    fn line_of(&self, id: i64) -> Option<u64> {
        let r = match self.runs.binary_search_by_key(&id, |r| r.id) {
            Ok(r) => r,
            Err(0) => return None,
            Err(r) => r - 1,
        };
        let run = self.runs[r];
        let offset = u64::try_from(id - run.id).ok()?;
        (offset < run.len).then_some(run.line + offset)
    }
}

/// Pieces read ahead while the store saves the one before: parsing and
/// saving run side by side, and memory holds at most this many more.
const PIECES_AHEAD: usize = 1;

impl<R: Read + Send + 'static> ImportFile<R> {
    /// Import the file's good rows, a piece of [`IMPORT_TRANSACTION`] rows
    /// per write transaction ([`Store::import_chunk`]), and say what
    /// happened to every row, by its line.
    pub async fn import(
        self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<ImportOutcome, ImportError> {
        self.import_with(store, now, &Progress::default()).await
    }

    /// [`ImportFile::import`], telling `progress` how far it has come after
    /// each piece. The file is read on the blocking pool (checking a
    /// million addresses is CPU work), a piece ahead of the store.
    pub async fn import_with(
        self,
        store: &Store,
        now: DateTime<Utc>,
        progress: &Progress,
    ) -> Result<ImportOutcome, ImportError> {
        let lines = progress.lines.load(Ordering::Relaxed);
        progress
            .rows
            .store(lines.saturating_sub(1), Ordering::Relaxed);
        progress.saved.store(0, Ordering::Relaxed);
        progress.stage.store(1, Ordering::Release);

        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<ReadRow>, u64)>(PIECES_AHEAD);
        let mut reader = self.reader;
        let producer = tokio::task::spawn_blocking(move || {
            let end = loop {
                match reader.next_rows(IMPORT_TRANSACTION) {
                    Ok(rows) if rows.is_empty() => break Ok(()),
                    Ok(rows) => {
                        let bytes = reader.bytes_read();
                        // The saving side stopped (an error): so does reading.
                        if tx.blocking_send((rows, bytes)).is_err() {
                            break Ok(());
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            (reader, end)
        });

        let mut imported = 0;
        let mut already_subscribed = 0;
        let mut skipped: Vec<SkippedRow> = Vec::new();
        let mut ours = IdLines::default();
        // Older subscribers met in this file, by id: the line of the first
        // row that had each, so a repeat is named a duplicate here too.
        let mut met: std::collections::HashMap<i64, u64> = std::collections::HashMap::new();
        let mut refused = None;
        while let Some((rows, bytes)) = rx.recv().await {
            let refs: Vec<&SubscriberRow> = rows.iter().map(|r| &r.row).collect();
            let done = match store.import_chunk(&refs, now).await {
                Ok(d) => d,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            };
            imported += done.inserted.len();
            for &(i, id) in &done.inserted {
                if let Some(r) = rows.get(i) {
                    ours.push(id, r.line);
                }
            }
            for (i, holder) in done.present {
                let Some(r) = rows.get(i) else { continue };
                // The row that has the address: one this import added or
                // an older subscriber an earlier row already met (a
                // duplicate, named by that row's line), or an older one.
                let first = ours.line_of(holder).or_else(|| {
                    let first = met.get(&holder).copied();
                    met.entry(holder).or_insert(r.line);
                    first
                });
                match first {
                    Some(first) => skipped.push(SkippedRow {
                        line: r.line,
                        reason: SkipReason::Invalid(subscriber_csv::duplicate_reason(
                            first,
                            &r.row.email,
                        )),
                    }),
                    None => already_subscribed += 1,
                }
            }
            skipped.extend(done.erased.iter().filter_map(|&i| {
                let r = rows.get(i)?;
                Some(SkippedRow {
                    line: r.line,
                    reason: SkipReason::Erased(r.row.email.clone()),
                })
            }));
            progress
                .saved
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            progress.bytes.store(bytes, Ordering::Relaxed);
        }
        drop(rx);
        let (reader, end) = match producer.await {
            Ok(r) => r,
            Err(e) => {
                return Err(ImportError::Stopped {
                    imported,
                    source: Box::new(e),
                });
            }
        };
        if let Some(e) = refused {
            return Err(ImportError::Stopped {
                imported,
                source: Box::new(e),
            });
        }
        if let Err(e) = end {
            return Err(if imported == 0 {
                ImportError::File(e)
            } else {
                ImportError::Stopped {
                    imported,
                    source: Box::new(e),
                }
            });
        }
        progress.bytes.store(reader.bytes_read(), Ordering::Relaxed);
        skipped.extend(reader.skipped.into_iter().map(|n| SkippedRow {
            line: n.line,
            reason: SkipReason::Invalid(n.reason),
        }));
        skipped.sort_by_key(|s| s.line);
        Ok(ImportOutcome {
            imported,
            already_subscribed,
            skipped,
            warnings: reader.warnings,
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
        let file = open(std::io::Cursor::new(csv.clone().into_bytes()), false).unwrap();
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
            // About: the rows are the lines after the header, the bad one too.
            seen.contains(&Stage::Saving {
                saved: 2500,
                rows: 2501
            }),
            "{seen:?}"
        );
        for w in seen.windows(2) {
            if let (Stage::Saving { saved: a, .. }, Stage::Saving { saved: b, .. }) = (w[0], w[1]) {
                assert!(a <= b, "{seen:?}");
            }
        }
    }

    #[tokio::test]
    async fn pieces_of_a_long_file_are_saved_apart_and_duplicates_across_them_are_told() {
        let (_d, store) = store().await;
        let now = options().now;
        let old = SubscriberRow {
            email: email("old@example.org"),
            name: None,
            status: Status::Active,
        };
        store.add_subscriber(&old, now).await.unwrap();
        let n = IMPORT_TRANSACTION * 2 + 10;
        let mut csv = String::from("email\n");
        for i in 0..n {
            csv.push_str(&format!("r{i}@example.org\n"));
        }
        // In the third piece: a row of the first, one already on the list,
        // and one repeated within the piece.
        csv.push_str("R5@Example.org\nOLD@example.org\nlast@example.org\nLAST@example.org\n");
        let file = open(std::io::Cursor::new(csv.into_bytes()), false).unwrap();
        let got = file.import(&store, now).await.unwrap();
        assert_eq!(got.imported, n + 1);
        assert_eq!(got.already_subscribed, 1);
        let first = n as u64 + 2;
        assert_eq!(
            shown(&got),
            vec![
                format!("{first}: duplicate of line 7 (R5@example.org)"),
                format!(
                    "{}: duplicate of line {} (LAST@example.org)",
                    first + 3,
                    first + 2
                ),
            ]
        );
        assert_eq!(store.listed_emails().await.len(), n + 2);
    }

    #[tokio::test]
    async fn a_file_in_another_encoding_is_refused_before_anything_is_saved() {
        let (_d, store) = store().await;
        let mut csv = b"email,name\n".to_vec();
        for i in 0..(IMPORT_TRANSACTION + 5) {
            csv.extend_from_slice(format!("r{i}@example.org,R\n").as_bytes());
        }
        csv.extend_from_slice(b"zoe@example.org,Zo\xeb\n");
        let e = subscribers(&store, &csv, options()).await.unwrap_err();
        let ImportError::File(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(e.line(), IMPORT_TRANSACTION as u64 + 7);
        assert_eq!(store.subscribers(None).await.unwrap(), vec![]);
    }

    #[test]
    fn lines_are_found_by_id_across_runs_and_gaps() {
        let mut m = IdLines::default();
        // Runs break where a line was skipped (12 is on line 5) and where
        // another writer took ids 13 and 14 between pieces.
        for (id, line) in [(10, 2), (11, 3), (12, 5), (15, 6), (16, 9)] {
            m.push(id, line);
        }
        assert_eq!(m.runs.len(), 4);
        let mut clean = IdLines::default();
        for n in 0..100_000 {
            clean.push(1 + n, 2 + n as u64);
        }
        assert_eq!(clean.runs.len(), 1, "a clean file is one run");
        assert_eq!(clean.line_of(50_000), Some(50_001));
        let found: Vec<Option<u64>> = (9..=17).map(|id| m.line_of(id)).collect();
        assert_eq!(
            found,
            [
                None,
                Some(2),
                Some(3),
                Some(5),
                None,
                None,
                Some(6),
                Some(9),
                None
            ]
        );
        assert_eq!(IdLines::default().line_of(1), None);
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
