//! Subscribers in the store: add, look up, list, remove, import, export.
//!
//! Rows are never deleted: removing a subscriber marks them `unsubscribed`,
//! so the delivery ledger keeps its history. An address already on the list
//! is never changed by `add` or `import`. Addresses are unique ignoring case
//! and domain spelling (the `email_key` column holds
//! [`SubscriberEmail::key`]: the local part lowercased, the domain as IDNA
//! normalizes it).
//!
//! Erased subscribers (see `roster.rs`) keep an anonymized row that lists,
//! counts and exports leave out, and an import skips their addresses.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite};

use super::time::stamp;
use super::{Store, StoreError};
use crate::subscribers::{
    Status, Subscriber, SubscriberEmail, SubscriberName, SubscriberRow, Token,
};

/// What `add_subscriber` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Added(Subscriber),
    /// The address (ignoring case) was already on the list; left as it is.
    AlreadyThere(Subscriber),
}

/// What `remove_subscriber` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Now unsubscribed (the row is kept).
    Removed(Subscriber),
    /// Was unsubscribed already; nothing changed.
    AlreadyUnsubscribed(Subscriber),
}

/// What one piece of an import did ([`Store::import_chunk`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChunkReport {
    /// Positions of rows whose address was on the list already (an
    /// earlier row of the same import included), with the id of the row
    /// that has it: left as they were.
    pub present: Vec<(usize, i64)>,
    /// Positions of the rows inserted, with their new ids, in id order.
    pub inserted: Vec<(usize, i64)>,
    /// Positions of rows whose address was erased at the person's request.
    pub erased: Vec<usize>,
}

/// What one import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// New subscribers.
    pub imported: usize,
    /// Addresses already on the list (or repeated in the rows), left as they were.
    pub already_subscribed: usize,
    /// Positions in the imported rows of addresses that were erased at the
    /// person's request: not imported, so callers can name their lines.
    pub erased: Vec<usize>,
}

/// Subscribers by status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    pub pending: u64,
    pub active: u64,
    pub unsubscribed: u64,
    pub bounced: u64,
}

impl StatusCounts {
    pub fn get(&self, status: Status) -> u64 {
        match status {
            Status::Pending => self.pending,
            Status::Active => self.active,
            Status::Unsubscribed => self.unsubscribed,
            Status::Bounced => self.bounced,
        }
    }

    pub fn total(&self) -> u64 {
        self.pending + self.active + self.unsubscribed + self.bounced
    }
}

/// The columns a [`Subscriber`] is read from, as a literal (sqlx takes only
/// static SQL).
macro_rules! columns {
    () => {
        "id, email, name, status, token, created_at, confirmed_at, unsubscribed_at"
    };
}

macro_rules! insert {
    () => {
        "INSERT INTO subscribers (email, email_key, name, status, token, created_at, confirmed_at, unsubscribed_at, bounced_at, updated_at) "
    };
}

/// Rows per write transaction of an import ([`Store::import_chunk`]):
/// well under a second of holding the write lock. Each commit rewrites the
/// index pages the piece touched (addresses and tokens land all over their
/// indexes), so smaller pieces cost time; larger ones cost memory, as a
/// piece is in the reader, in its JSON and in SQLite at once. Measured on
/// a million rows (bench/import.sh): 10,000 took 81 s at 78 MB peak RSS,
/// 5,000 took 104 s at 57 MB; the bound for the whole run is 60.
pub const IMPORT_TRANSACTION: usize = 5_000;

/// The `meta` key that records which address form the rows hold: absent
/// before IDNA normalization, [`ADDRESS_FORM`] after.
const ADDRESS_FORM_KEY: &str = "address_form";
const ADDRESS_FORM: &str = "idna-uts46";

/// Bring rows written before addresses were IDNA-normalized to the current
/// form: `email` with the domain in Unicode form and `email_key` as
/// [`SubscriberEmail::key`] computes it, so `reader@xn--bcher-kva.example`
/// and `reader@bücher.example` are found as one subscriber. Runs once per
/// database (recorded in `meta`), in one transaction.
///
/// Nothing is lost: a row whose new key another row already holds (the same
/// person added under two spellings) keeps its old address and key, and a
/// row whose domain IDNA refuses is left as it is. Both are returned, one
/// line each, for the caller to report; while there are any the step is not
/// recorded as done, so they are reported again until someone resolves them
/// (erase or unsubscribe one of the two rows).
pub(super) async fn normalize_addresses(
    pool: &sqlx::SqlitePool,
) -> Result<Vec<String>, StoreError> {
    let done: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
        .bind(ADDRESS_FORM_KEY)
        .fetch_optional(pool)
        .await?;
    if done.is_some_and(|(v,)| v == ADDRESS_FORM) {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, email, email_key FROM subscribers WHERE erased_at IS NULL ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut taken: std::collections::HashMap<String, i64> =
        rows.iter().map(|(id, _, key)| (key.clone(), *id)).collect();
    let mut problems = Vec::new();
    for (id, email, key) in &rows {
        let parsed = match SubscriberEmail::from_stored(email) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("subscriber {id} ({email}): {e}; left as it is"));
                continue;
            }
        };
        if let Err(e) = parsed.envelope() {
            problems.push(format!(
                "subscriber {id} ({email}): {e}; it cannot be mailed (erase or unsubscribe it)"
            ));
        }
        let new_key = parsed.key();
        if parsed.as_str() == email && &new_key == key {
            continue;
        }
        if let Some(other) = taken
            .get(&new_key)
            .filter(|other| new_key != *key && **other != *id)
        {
            problems.push(format!(
                "subscriber {id} ({email}) is the same address as subscriber {other}; both rows are kept unchanged: erase or unsubscribe one of them"
            ));
            continue;
        }
        sqlx::query("UPDATE subscribers SET email = $1, email_key = $2 WHERE id = $3")
            .bind(parsed.as_str())
            .bind(&new_key)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        taken.remove(key);
        taken.insert(new_key, *id);
    }
    if problems.is_empty() {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(ADDRESS_FORM_KEY)
        .bind(ADDRESS_FORM)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(problems)
}

/// A row of `id, email, name, status` as the export writes it.
fn export_row(r: &SqliteRow) -> Result<SubscriberRow, StoreError> {
    let id: i64 = r.try_get("id")?;
    let email: String = r.try_get("email")?;
    let name: Option<String> = r.try_get("name")?;
    let status: String = r.try_get("status")?;
    Ok(SubscriberRow {
        email: SubscriberEmail::parse(&email)
            .map_err(|e| corrupt(id, format!("address {email:?} {e}")))?,
        name: match name {
            Some(n) => {
                SubscriberName::parse(&n).map_err(|e| corrupt(id, format!("name {n:?} {e}")))?
            }
            None => None,
        },
        status: Status::parse(&status)
            .ok_or_else(|| corrupt(id, format!("unknown status {status:?}")))?,
    })
}

fn corrupt(id: i64, what: String) -> StoreError {
    StoreError::Corrupt {
        what: format!("subscriber {id}: {what}"),
    }
}

fn subscriber(r: &SqliteRow) -> Result<Subscriber, StoreError> {
    let id: i64 = r.try_get("id")?;
    let email: String = r.try_get("email")?;
    let name: Option<String> = r.try_get("name")?;
    let status: String = r.try_get("status")?;
    let token: String = r.try_get("token")?;
    Ok(Subscriber {
        id,
        email: SubscriberEmail::from_stored(&email)
            .map_err(|e| corrupt(id, format!("address {email:?} {e}")))?,
        name: match name {
            Some(n) => SubscriberName::from_stored(&n)
                .map_err(|e| corrupt(id, format!("name {n:?} {e}")))?,
            None => None,
        },
        status: Status::parse(&status)
            .ok_or_else(|| corrupt(id, format!("unknown status {status:?}")))?,
        token: Token::parse(&token).map_err(|e| corrupt(id, format!("bad token: {e}")))?,
        created_at: r.try_get("created_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
        unsubscribed_at: r.try_get("unsubscribed_at")?,
    })
}

/// The time columns a new row in `status` starts with:
/// (confirmed_at, unsubscribed_at, bounced_at).
fn initial_times(status: Status, now: &str) -> [Option<String>; 3] {
    let at = |s: Status| (status == s).then(|| now.to_string());
    [
        at(Status::Active),
        at(Status::Unsubscribed),
        at(Status::Bounced),
    ]
}

/// [`Store::add_subscriber`] on one connection, so the admin API can check
/// suppression and add in one transaction.
pub(super) async fn add_on(
    conn: &mut SqliteConnection,
    row: &SubscriberRow,
    now: DateTime<Utc>,
) -> Result<AddOutcome, StoreError> {
    let now = stamp(now);
    let token = Token::generate().map_err(StoreError::Random)?;
    let [confirmed, unsubscribed, bounced] = initial_times(row.status, &now);
    let sql = concat!(
        insert!(),
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6) ON CONFLICT (email_key) DO NOTHING RETURNING ",
        columns!()
    );
    let inserted = sqlx::query(sql)
        .bind(row.email.as_str())
        .bind(row.email.key())
        .bind(row.name.as_ref().map(|n| n.as_str()))
        .bind(row.status.as_str())
        .bind(token.as_str())
        .bind(&now)
        .bind(confirmed)
        .bind(unsubscribed)
        .bind(bounced)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(r) = inserted {
        return Ok(AddOutcome::Added(subscriber(&r)?));
    }
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM subscribers WHERE email_key = $1"
    );
    let existing = sqlx::query(sql)
        .bind(row.email.key())
        .fetch_optional(&mut *conn)
        .await?;
    match existing {
        Some(r) => Ok(AddOutcome::AlreadyThere(subscriber(&r)?)),
        None => Err(StoreError::UnknownSubscriber {
            who: row.email.to_string(),
        }),
    }
}

/// [`Store::set_subscriber_status`] on any executor (the pool, or a
/// transaction of the admin API's edit). Erased rows are never changed: an
/// erased subscriber must not become active again at a placeholder address.
pub(super) async fn set_status_on<'c, E>(
    exec: E,
    id: i64,
    status: Status,
    now: DateTime<Utc>,
) -> Result<Subscriber, StoreError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let sql = concat!(
        "UPDATE subscribers SET
            confirmed_at = CASE WHEN $1 = 'active' THEN COALESCE(confirmed_at, $2) ELSE confirmed_at END,
            unsubscribed_at = CASE
                WHEN status = $1 THEN unsubscribed_at
                WHEN $1 = 'unsubscribed' THEN $2
                WHEN $1 IN ('pending', 'active') THEN NULL
                ELSE unsubscribed_at END,
            bounced_at = CASE WHEN $1 = 'bounced' AND status <> $1 THEN $2 ELSE bounced_at END,
            updated_at = CASE WHEN status = $1 THEN updated_at ELSE $2 END,
            status = $1
         WHERE id = $3 AND erased_at IS NULL
         RETURNING ",
        columns!()
    );
    let row = sqlx::query(sql)
        .bind(status.as_str())
        .bind(stamp(now))
        .bind(id)
        .fetch_optional(exec)
        .await?;
    match row {
        Some(r) => subscriber(&r),
        None => Err(StoreError::UnknownSubscriber {
            who: format!("subscriber {id}"),
        }),
    }
}

impl Store {
    /// Add one subscriber with a fresh token. An address already on the list
    /// (ignoring case) is returned as it is, unchanged.
    pub async fn add_subscriber(
        &self,
        row: &SubscriberRow,
        now: DateTime<Utc>,
    ) -> Result<AddOutcome, StoreError> {
        let mut conn = self.pool.acquire().await?;
        add_on(&mut conn, row, now).await
    }

    /// The subscriber with this address, ignoring case.
    pub async fn subscriber_by_email(
        &self,
        email: &SubscriberEmail,
    ) -> Result<Option<Subscriber>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM subscribers WHERE email_key = $1"
        );
        let row = sqlx::query(sql)
            .bind(email.key())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscriber).transpose()
    }

    /// The subscriber a confirm/unsubscribe/preferences link belongs to.
    pub async fn subscriber_by_token(
        &self,
        token: &Token,
    ) -> Result<Option<Subscriber>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM subscribers WHERE token = $1");
        let row = sqlx::query(sql)
            .bind(token.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscriber).transpose()
    }

    /// Every subscriber, or those with one status, in sign-up order.
    pub async fn subscribers(&self, status: Option<Status>) -> Result<Vec<Subscriber>, StoreError> {
        let rows = match status {
            Some(st) => {
                let sql = concat!(
                    "SELECT ",
                    columns!(),
                    " FROM subscribers WHERE status = $1 AND erased_at IS NULL ORDER BY created_at, id"
                );
                sqlx::query(sql)
                    .bind(st.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = concat!(
                    "SELECT ",
                    columns!(),
                    " FROM subscribers WHERE erased_at IS NULL ORDER BY created_at, id"
                );
                sqlx::query(sql).fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(subscriber).collect()
    }

    /// Unsubscribe an address (ignoring case). The row stays, so deliveries
    /// keep their history. An address not on the list is
    /// [`StoreError::UnknownSubscriber`].
    pub async fn remove_subscriber(
        &self,
        email: &SubscriberEmail,
        now: DateTime<Utc>,
    ) -> Result<RemoveOutcome, StoreError> {
        let Some(s) = self.subscriber_by_email(email).await? else {
            return Err(StoreError::UnknownSubscriber {
                who: email.to_string(),
            });
        };
        if s.status == Status::Unsubscribed {
            return Ok(RemoveOutcome::AlreadyUnsubscribed(s));
        }
        let s = self
            .set_subscriber_status(s.id, Status::Unsubscribed, now)
            .await?;
        Ok(RemoveOutcome::Removed(s))
    }

    /// Move a subscriber to `status`, keeping the times right: becoming
    /// active sets `confirmed_at` (once), unsubscribing sets
    /// `unsubscribed_at`, bouncing sets `bounced_at`, and becoming pending or
    /// active again clears `unsubscribed_at`. Setting the status a subscriber
    /// already has changes nothing.
    pub async fn set_subscriber_status(
        &self,
        id: i64,
        status: Status,
        now: DateTime<Utc>,
    ) -> Result<Subscriber, StoreError> {
        set_status_on(&self.pool, id, status, now).await
    }

    /// How many subscribers have each status (erased ones left out): one
    /// small table that triggers of migration 0009 keep, not a count of
    /// the rows.
    pub async fn subscriber_counts(&self) -> Result<StatusCounts, StoreError> {
        let rows = sqlx::query("SELECT status, n FROM subscriber_counts")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = StatusCounts::default();
        for r in rows {
            let status: String = r.try_get("status")?;
            let n: i64 = r.try_get("n")?;
            let n = u64::try_from(n).unwrap_or(0);
            match Status::parse(&status) {
                Some(Status::Pending) => counts.pending = n,
                Some(Status::Active) => counts.active = n,
                Some(Status::Unsubscribed) => counts.unsubscribed = n,
                Some(Status::Bounced) => counts.bounced = n,
                None => {
                    return Err(StoreError::Corrupt {
                        what: format!("unknown subscriber status {status:?}"),
                    });
                }
            }
        }
        Ok(counts)
    }

    /// Add many subscribers, each with a fresh token, in pieces of
    /// [`IMPORT_TRANSACTION`] rows ([`Store::import_chunk`]); addresses
    /// already on the list (or repeated in `rows`) are left as they are and
    /// counted. Addresses erased at the person's request are never added
    /// back: their positions are in [`ImportReport::erased`]. An error keeps
    /// the pieces saved before it.
    pub async fn import_subscribers(
        &self,
        rows: &[SubscriberRow],
        now: DateTime<Utc>,
    ) -> Result<ImportReport, StoreError> {
        let mut report = ImportReport::default();
        for (n, piece) in rows.chunks(IMPORT_TRANSACTION).enumerate() {
            let refs: Vec<&SubscriberRow> = piece.iter().collect();
            let done = self.import_chunk(&refs, now).await?;
            report.imported += done.inserted.len();
            report.already_subscribed += done.present.len();
            let base = n * IMPORT_TRANSACTION;
            report.erased.extend(done.erased.iter().map(|i| base + i));
        }
        Ok(report)
    }

    /// One piece of an import, in a write transaction of its own: rows
    /// whose address was erased at the person's request are refused, the
    /// others inserted unless their address is already on the list (an
    /// earlier piece of the same import included). Says which, by position
    /// in `rows`.
    ///
    /// A piece per transaction, not the whole file: the write lock is held
    /// for one piece (tens of milliseconds), so sign-ups, the console and
    /// the API go on during a million-row import. An import cut short keeps
    /// the pieces before the cut, and running it again adds the rest:
    /// addresses already there are left as they are.
    pub async fn import_chunk(
        &self,
        rows: &[&SubscriberRow],
        now: DateTime<Utc>,
    ) -> Result<ChunkReport, StoreError> {
        let now = stamp(now);
        let mut report = ChunkReport::default();
        if rows.is_empty() {
            return Ok(report);
        }
        // One random draw for the piece's tokens (a syscall per token was
        // measurable at a million rows).
        let tokens = Token::generate_many(rows.len()).map_err(StoreError::Random)?;
        // IMMEDIATE: the suppression check and the inserts see one state of
        // the database, so an erasure cannot slip in between them.
        let mut tx = self.write().await?;
        let key = super::suppression::suppression_key(&mut tx).await?;
        let hashes: Vec<String> = rows
            .iter()
            .map(|r| super::suppression::address_hash(&key, &r.email))
            .collect();
        let erased: HashSet<String> =
            super::suppression::suppressed_among(&mut tx, &hashes).await?;
        // Each kept row with its uniqueness key, computed once (Unicode
        // lowercasing, then used to insert, match and look up).
        let mut keep: Vec<(usize, &SubscriberRow, &Token, String)> = Vec::with_capacity(rows.len());
        for (i, ((row, hash), token)) in rows.iter().zip(&hashes).zip(&tokens).enumerate() {
            if erased.contains(hash) {
                report.erased.push(i);
            } else {
                keep.push((i, row, token, row.email.key()));
            }
        }
        // The piece as one JSON parameter, taken apart by SQLite itself:
        // binding ten parameters a row through the driver cost as much as
        // the insert.
        let piece: Vec<_> = keep
            .iter()
            .map(|(_, row, token, key)| {
                // The time stamps by the one rule every insert follows.
                let [confirmed, unsubscribed, bounced] = initial_times(row.status, &now);
                (
                    row.email.as_str(),
                    key.as_str(),
                    row.name.as_ref().map(|n| n.as_str()),
                    row.status.as_str(),
                    token.as_str(),
                    confirmed,
                    unsubscribed,
                    bounced,
                )
            })
            .collect();
        // Strings and nulls only: serializing them cannot fail.
        let list = serde_json::to_string(&piece).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let keys: Vec<(i64, String)> = sqlx::query_as(concat!(
            insert!(),
            "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, $2,
                    value ->> 5, value ->> 6, value ->> 7, $2
             FROM json_each($1) WHERE true
             ON CONFLICT (email_key) DO NOTHING RETURNING id, email_key"
        ))
        .bind(list)
        .bind(&now)
        .fetch_all(&mut *tx)
        .await?;
        let mut inserted: HashMap<String, i64> = keys.into_iter().map(|(id, k)| (k, id)).collect();
        let mut present = Vec::new();
        for (i, _, _, key) in keep {
            // A key inserted once: a second row with it in the same piece
            // was a duplicate, not a second insert.
            match inserted.remove(&key) {
                Some(id) => report.inserted.push((i, id)),
                None => present.push((i, key)),
            }
        }
        report.inserted.sort_by_key(|&(_, id)| id);
        // Which row holds each address that was there: the caller tells a
        // row of its own file (a duplicate) from an older subscriber.
        if !present.is_empty() {
            let keys: Vec<&str> = present.iter().map(|(_, k)| k.as_str()).collect();
            let holders: HashMap<String, i64> = sqlx::query_as(
                "SELECT email_key, id FROM subscribers WHERE email_key IN (SELECT value FROM json_each($1))",
            )
            .bind(serde_json::Value::from(keys).to_string())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            report.present = present
                .into_iter()
                .map(|(i, k)| (i, holders.get(&k).copied().unwrap_or(0)))
                .collect();
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Up to `limit` listed subscribers with an id above `after`, as list
    /// rows, in id order, and the `after` of the next call (`None` at the
    /// end): an export streamed in pieces, each its own short read, so a
    /// million-row export neither sits in memory nor holds one read
    /// transaction (and the WAL) open while a slow client downloads it.
    pub async fn export_page(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<SubscriberRow>, Option<i64>), StoreError> {
        let limit = limit.max(1);
        let rows = sqlx::query(
            "SELECT id, email, name, status FROM subscribers
             WHERE erased_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(i64::MIN))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let last = rows.last().map(|r| r.try_get::<i64, _>("id")).transpose()?;
        let next = if rows.len() == limit as usize {
            last
        } else {
            None
        };
        let out = rows.iter().map(export_row).collect::<Result<_, _>>()?;
        Ok((out, next))
    }

    /// Every subscriber as a list row (address, name, status), in sign-up
    /// order: what `subscribers export` writes.
    pub async fn export_subscribers(&self) -> Result<Vec<SubscriberRow>, StoreError> {
        let rows =
            sqlx::query("SELECT id, email, name, status FROM subscribers WHERE erased_at IS NULL ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(export_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(email: &str, name: &str, status: Status) -> SubscriberRow {
        SubscriberRow {
            email: SubscriberEmail::parse(email).unwrap(),
            name: SubscriberName::parse(name).unwrap(),
            status,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("gazette.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn adding_twice_leaves_the_first_as_it_is_ignoring_case() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let AddOutcome::Added(ann) = store
            .add_subscriber(&row("Ann@Example.org", "Ann", Status::Pending), now)
            .await
            .unwrap()
        else {
            panic!("not added")
        };
        assert_eq!(ann.email.as_str(), "Ann@example.org");
        assert_eq!(ann.status, Status::Pending);
        assert_eq!(ann.created_at, "2026-11-20T10:00:00Z");
        assert_eq!(ann.confirmed_at, None);

        let again = store
            .add_subscriber(
                &row("ann@EXAMPLE.org", "Other", Status::Active),
                t("2026-11-21T10:00:00Z"),
            )
            .await
            .unwrap();
        assert_eq!(again, AddOutcome::AlreadyThere(ann.clone()));

        let by_email = store
            .subscriber_by_email(&SubscriberEmail::parse("ANN@example.ORG").unwrap())
            .await
            .unwrap();
        assert_eq!(by_email.as_ref(), Some(&ann));
        let by_token = store.subscriber_by_token(&ann.token).await.unwrap();
        assert_eq!(by_token.as_ref(), Some(&ann));
        let stranger = Token::generate().unwrap();
        assert_eq!(store.subscriber_by_token(&stranger).await.unwrap(), None);

        let AddOutcome::Added(bob) = store
            .add_subscriber(&row("bob@example.org", "", Status::Active), now)
            .await
            .unwrap()
        else {
            panic!("not added")
        };
        assert_eq!(bob.confirmed_at.as_deref(), Some("2026-11-20T10:00:00Z"));
        assert_eq!(bob.name, None);
        assert_ne!(bob.token, ann.token);
    }

    #[tokio::test]
    async fn the_database_refuses_a_second_row_for_the_same_address() {
        let (_d, store) = store().await;
        let insert = "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at) VALUES ($1, $2, 'active', $3, 'x', 'x')";
        for (email, ok) in [("a@example.org", true), ("A@example.org", false)] {
            let r = sqlx::query(insert)
                .bind(email)
                .bind(email.to_lowercase())
                .bind(Token::generate().unwrap().as_str())
                .execute(store.pool())
                .await;
            assert_eq!(r.is_ok(), ok, "{email}");
        }
        let bad_status = sqlx::query("INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at) VALUES ('b@example.org', 'b@example.org', 'gone', 't', 'x', 'x')")
            .execute(store.pool())
            .await;
        assert!(bad_status.is_err(), "CHECK on status");
    }

    #[tokio::test]
    async fn rows_from_before_idna_get_the_new_form_once_and_duplicates_are_kept_and_reported() {
        let (_d, store) = store().await;
        // As an older gazette wrote them: domain lowercased as given, key the
        // whole address lowercased.
        sqlx::query("DELETE FROM meta WHERE key = 'address_form'")
            .execute(store.pool())
            .await
            .unwrap();
        let insert = "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at) VALUES ($1, $2, 'active', $3, 'x', 'x')";
        for email in [
            "Reader@xn--bcher-kva.example",
            "Ann@bücher.example",
            "ann@xn--bcher-kva.example",
            "old@xn--a.example",
            "bob@example.org",
        ] {
            sqlx::query(insert)
                .bind(email)
                .bind(email.to_lowercase())
                .bind(Token::generate().unwrap().as_str())
                .execute(store.pool())
                .await
                .unwrap();
        }
        let problems = normalize_addresses(store.pool()).await.unwrap();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].contains(
                "subscriber 3 (ann@xn--bcher-kva.example) is the same address as subscriber 2"
            ),
            "{problems:#?}"
        );
        assert!(
            problems[1].contains("subscriber 4 (old@xn--a.example)"),
            "{problems:#?}"
        );
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT email, email_key FROM subscribers ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let want = [
            ("Reader@bücher.example", "reader@bücher.example"),
            ("Ann@bücher.example", "ann@bücher.example"),
            ("ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example"),
            ("old@xn--a.example", "old@xn--a.example"),
            ("bob@example.org", "bob@example.org"),
        ];
        let got: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, want);
        // Every row still reads, and the punycode spelling finds the new form.
        assert_eq!(store.subscribers(None).await.unwrap().len(), 5);
        let found = store
            .subscriber_by_email(&SubscriberEmail::parse("reader@xn--bcher-kva.example").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.email.as_str(), "Reader@bücher.example");
        // With the duplicate left, the step is not recorded as done; once
        // it is resolved, it is.
        sqlx::query("DELETE FROM subscribers WHERE id IN (3, 4)")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(normalize_addresses(store.pool()).await.unwrap().is_empty());
        let form: (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'address_form'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(form.0, ADDRESS_FORM);
    }

    #[tokio::test]
    async fn remove_keeps_the_row_and_unknown_addresses_are_an_error() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        store
            .add_subscriber(&row("ann@example.org", "Ann", Status::Active), now)
            .await
            .unwrap();
        let ann = SubscriberEmail::parse("ANN@example.org").unwrap();
        let later = t("2026-12-01T08:00:00Z");
        let RemoveOutcome::Removed(s) = store.remove_subscriber(&ann, later).await.unwrap() else {
            panic!("not removed")
        };
        assert_eq!(s.status, Status::Unsubscribed);
        assert_eq!(s.unsubscribed_at.as_deref(), Some("2026-12-01T08:00:00Z"));
        assert_eq!(s.confirmed_at.as_deref(), Some("2026-11-20T10:00:00Z"));
        let again = store
            .remove_subscriber(&ann, t("2026-12-02T08:00:00Z"))
            .await
            .unwrap();
        assert_eq!(again, RemoveOutcome::AlreadyUnsubscribed(s.clone()));
        assert_eq!(store.subscribers(None).await.unwrap(), vec![s]);

        let nobody = SubscriberEmail::parse("nobody@example.org").unwrap();
        let e = store.remove_subscriber(&nobody, later).await.unwrap_err();
        assert!(matches!(e, StoreError::UnknownSubscriber { .. }), "{e}");
        assert_eq!(e.to_string(), "nobody@example.org is not on the list");
    }

    #[tokio::test]
    async fn status_changes_keep_the_times_right() {
        let (_d, store) = store().await;
        let AddOutcome::Added(s) = store
            .add_subscriber(
                &row("ann@example.org", "", Status::Pending),
                t("2026-01-01T00:00:00Z"),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        let s = store
            .set_subscriber_status(s.id, Status::Active, t("2026-01-02T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.confirmed_at.as_deref(), Some("2026-01-02T00:00:00Z"));
        let s = store
            .set_subscriber_status(s.id, Status::Unsubscribed, t("2026-01-03T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.unsubscribed_at.as_deref(), Some("2026-01-03T00:00:00Z"));
        let s = store
            .set_subscriber_status(s.id, Status::Unsubscribed, t("2026-01-04T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.unsubscribed_at.as_deref(), Some("2026-01-03T00:00:00Z"));
        let s = store
            .set_subscriber_status(s.id, Status::Active, t("2026-01-05T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.unsubscribed_at, None);
        assert_eq!(s.confirmed_at.as_deref(), Some("2026-01-02T00:00:00Z"));
        let s = store
            .set_subscriber_status(s.id, Status::Bounced, t("2026-01-06T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.status, Status::Bounced);
        let (bounced_at,): (Option<String>,) =
            sqlx::query_as("SELECT bounced_at FROM subscribers WHERE id = $1")
                .bind(s.id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(bounced_at.as_deref(), Some("2026-01-06T00:00:00Z"));
        let e = store
            .set_subscriber_status(9999, Status::Active, t("2026-01-06T00:00:00Z"))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::UnknownSubscriber { .. }));
    }

    #[tokio::test]
    async fn imported_names_and_addresses_come_back_exactly_and_times_follow_the_status() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        // Quotes, backslashes, JSON-looking text, astral and RTL characters:
        // the piece travels to SQLite as one JSON text.
        let names = [
            "Ann \"The Quill\" O'Neil",
            "C:\\path\\to \\u0041",
            "[\"not\", \"json\"] {}",
            "Zoë 🦉 Ødegård",
            "نور الهدى",
        ];
        let statuses = [
            Status::Active,
            Status::Pending,
            Status::Unsubscribed,
            Status::Bounced,
            Status::Active,
        ];
        let rows: Vec<SubscriberRow> = names
            .iter()
            .zip(statuses)
            .enumerate()
            .map(|(i, (n, st))| row(&format!("Name{i}@Example.org"), n, st))
            .collect();
        let report = store.import_subscribers(&rows, now).await.unwrap();
        assert_eq!(report.imported, 5);
        let back = store.subscribers(None).await.unwrap();
        for (r, b) in rows.iter().zip(&back) {
            assert_eq!(b.email.as_str(), r.email.as_str());
            assert_eq!(b.name, r.name);
            assert_eq!(b.status, r.status);
        }
        type Stamps = (String, Option<String>, Option<String>, Option<String>);
        let stamps: Vec<Stamps> = sqlx::query_as(
            "SELECT status, confirmed_at, unsubscribed_at, bounced_at FROM subscribers ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let at = Some("2026-11-20T10:00:00Z".to_string());
        assert_eq!(stamps[0], ("active".into(), at.clone(), None, None));
        assert_eq!(stamps[1], ("pending".into(), None, None, None));
        assert_eq!(stamps[2], ("unsubscribed".into(), None, at.clone(), None));
        assert_eq!(stamps[3], ("bounced".into(), None, None, at.clone()));
    }

    #[tokio::test]
    async fn import_counts_new_and_existing_and_lists_filter_by_status() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        store
            .add_subscriber(&row("ann@example.org", "Ann", Status::Pending), now)
            .await
            .unwrap();
        let rows = vec![
            row("ANN@example.org", "Ann Active", Status::Active),
            row("bob@example.org", "Bob", Status::Active),
            row("cat@example.org", "", Status::Unsubscribed),
            row("dan@example.org", "Dan", Status::Bounced),
            row("BOB@example.org", "Bob twice", Status::Pending),
        ];
        let later = t("2026-11-21T10:00:00Z");
        let report = store.import_subscribers(&rows, later).await.unwrap();
        assert_eq!(
            report,
            ImportReport {
                imported: 3,
                already_subscribed: 2,
                erased: Vec::new(),
            }
        );
        let ann = store
            .subscriber_by_email(&rows[0].email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ann.status, Status::Pending, "left as it was");
        assert_eq!(ann.name.unwrap().as_str(), "Ann");

        let counts = store.subscriber_counts().await.unwrap();
        assert_eq!(
            counts,
            StatusCounts {
                pending: 1,
                active: 1,
                unsubscribed: 1,
                bounced: 1
            }
        );
        assert_eq!(counts.total(), 4);
        let active: Vec<_> = store
            .subscribers(Some(Status::Active))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.email.to_string())
            .collect();
        assert_eq!(active, vec!["bob@example.org"]);
        let all = store.listed_emails().await;
        assert_eq!(
            all,
            vec![
                "ann@example.org",
                "bob@example.org",
                "cat@example.org",
                "dan@example.org"
            ]
        );
        let cat = store
            .subscriber_by_email(&rows[2].email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cat.unsubscribed_at.as_deref(), Some("2026-11-21T10:00:00Z"));
        assert_eq!(cat.confirmed_at, None);
    }

    #[tokio::test]
    async fn export_then_import_into_an_empty_store_gives_the_same_list() {
        let (_d, store) = store().await;
        let mut rows = vec![
            row("zoe@example.net", "Zoë Álvarez", Status::Active),
            row("Ann@example.org", "Lee, Ann \"Annie\"", Status::Pending),
            row("old@example.org", "", Status::Unsubscribed),
        ];
        for i in 0..2500 {
            rows.push(row(&format!("reader{i}@example.org"), "", Status::Active));
        }
        let report = store
            .import_subscribers(&rows, t("2026-11-20T10:00:00Z"))
            .await
            .unwrap();
        assert_eq!(report.imported, rows.len());
        let exported = store.export_subscribers().await.unwrap();
        assert_eq!(exported, rows, "sign-up order is the import order");

        let mut csv_bytes = Vec::new();
        crate::subscribers::csv::write(&mut csv_bytes, &exported).unwrap();
        let read = crate::subscribers::csv::read(&csv_bytes[..], false).unwrap();
        let back: Vec<SubscriberRow> = read.rows.into_iter().map(|(_, r)| r).collect();

        let (_d2, fresh) = self::store().await;
        fresh
            .import_subscribers(&back, t("2026-12-01T10:00:00Z"))
            .await
            .unwrap();
        assert_eq!(fresh.export_subscribers().await.unwrap(), rows);
        let tokens: std::collections::HashSet<_> = fresh
            .subscribers(None)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.token)
            .collect();
        assert_eq!(
            tokens.len(),
            rows.len(),
            "every subscriber has their own token"
        );
    }
}
