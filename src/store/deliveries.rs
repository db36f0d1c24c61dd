//! The delivery ledger: who gets which issue, and what happened.
//!
//! Correctness rests on three rules:
//! - publishing an issue fixes its recipients (the subscribers up to the
//!   highest id at that moment), then creates their rows in pieces, each one
//!   transaction that also moves the issue's mark of how far it got; a cut
//!   short publish goes on from that mark (UNIQUE per issue and subscriber,
//!   so nothing is queued twice);
//! - a row is `sending` from before the SMTP transaction until its outcome is
//!   recorded, so a crash can only leave rows `sending`, which the next run
//!   sends again: duplicates are bounded by the messages in flight, and no
//!   message is ever skipped;
//! - outcomes are recorded in small batches, each one transaction.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::time::{self, ledger_time};
use super::{Store, StoreError, column, corrupt};
use crate::subscribers::{MailFormat, SubscriberEmail, SubscriberName, Token};

/// Where one delivery row stands. The database keeps the text
/// ([`DeliveryStatus::as_str`]); reading an unknown text is
/// [`StoreError::Corrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its `next_attempt_at`.
    Queued,
    /// Claimed by a sender; its outcome is not recorded yet.
    Sending,
    Sent,
    Failed,
    /// Failed, and the subscriber was marked bounced.
    Bounced,
    /// Never sent: the subscriber left (or was erased) first.
    Cancelled,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Sending,
        DeliveryStatus::Sent,
        DeliveryStatus::Failed,
        DeliveryStatus::Bounced,
        DeliveryStatus::Cancelled,
    ];

    /// The text the `deliveries.status` column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so table columns (`{:<9}`) line up.
        f.pad(self.as_str())
    }
}

/// Whether an issue has been mailed: `issues.mail_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailState {
    /// Recorded, not yet published nor skipped.
    #[default]
    Unpublished,
    /// Its recipients are fixed: one ledger row each.
    Published,
    /// Too old when released; mailed only on `gazette issues send`.
    Skipped,
}

impl MailState {
    pub const ALL: [MailState; 3] = [
        MailState::Unpublished,
        MailState::Published,
        MailState::Skipped,
    ];

    /// The text the `issues.mail_state` column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Unpublished => "unpublished",
            MailState::Published => "published",
            MailState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<MailState> {
        MailState::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for MailState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A released issue that is neither published nor skipped yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpublishedIssue {
    pub slug: String,
    pub issue_date: NaiveDate,
    /// When a cycle let it out (its age for `mail.skip_older_than` is
    /// measured from here).
    pub released_at: DateTime<Utc>,
}

/// An issue's `mail_state` column, parsed.
fn mail_state(r: &sqlx::sqlite::SqliteRow, slug: &str) -> Result<MailState, StoreError> {
    let text: String = column(r, "issues", &slug, "mail_state")?;
    MailState::parse(&text).ok_or_else(|| {
        corrupt(
            "issues",
            &slug,
            "mail_state",
            &format!("unknown state {text:?}"),
        )
    })
}

/// A delivery's `status` column, parsed.
fn delivery_status(
    r: &sqlx::sqlite::SqliteRow,
    id: &dyn std::fmt::Display,
) -> Result<DeliveryStatus, StoreError> {
    let text: String = column(r, "deliveries", id, "status")?;
    DeliveryStatus::parse(&text).ok_or_else(|| {
        corrupt(
            "deliveries",
            id,
            "status",
            &format!("unknown status {text:?}"),
        )
    })
}

/// A count from an aggregate column.
fn count(r: &sqlx::sqlite::SqliteRow, slug: &str, name: &str) -> Result<u64, StoreError> {
    let n: i64 = column(r, "issues", &slug, name)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Subscribers whose rows one publishing transaction creates: 120-140 ms of
/// holding the write lock on a database of a million subscribers and their
/// rows (measured with SQLite alone on bench/send.sh's database). A whole
/// publish of that million took about 12 s of `gazette run` back to back;
/// with the pauses that let other writers in ([`WRITERS_GET_IN`]), about
/// twice that.
pub const PUBLISH_PIECE: i64 = 10_000;

/// The least pause between two pieces of a publish: longer than the longest
/// sleep of SQLite's busy handler (100 ms), so a writer waiting for the lock
/// always gets it between pieces. A piece that took longer is followed by
/// as long a pause: the publish holds the lock at most half the time.
const WRITERS_GET_IN: Duration = Duration::from_millis(110);

/// What publishing an issue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Rows queued for this many active subscribers (by this call: when it
    /// finished a publish cut short, the rest).
    Now { recipients: u64 },
    /// It had been published before (at that time); nothing changed.
    Already,
    /// No such issue recorded.
    Unknown,
}

/// A row claimed for sending, with what the message needs, parsed: the
/// address, name and token travel as their types to the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub delivery_id: i64,
    pub issue_slug: String,
    pub subscriber_id: i64,
    /// As [`SubscriberEmail::from_stored`] reads it: an older row whose
    /// domain IDNA refuses is here, and its message fails with the reason.
    pub email: SubscriberEmail,
    pub name: Option<SubscriberName>,
    pub token: Token,
    /// Multipart or plain text, as the subscriber chose.
    pub format: MailFormat,
    /// Including this one.
    pub attempts: u32,
}

/// What one claim took: rows ready to compose, and how many claimed rows
/// held a subscriber value that does not parse (a hand-edited database).
/// Those are failed at once, each with the reason as its reply, and the
/// rest of the batch goes on, as a message that cannot be composed would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub rows: Vec<Claimed>,
    pub failed: u64,
}

impl Claims {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.failed == 0
    }
}

/// One row of [`Store::unpublished_issues`].
fn unpublished_issue(r: &sqlx::sqlite::SqliteRow) -> Result<UnpublishedIssue, StoreError> {
    let slug: String = column(r, "issues", &"?", "slug")?;
    let date: String = column(r, "issues", &slug, "issue_date")?;
    let released: String = column(r, "issues", &slug, "released_at")?;
    Ok(UnpublishedIssue {
        issue_date: NaiveDate::parse_from_str(&date, "%Y-%m-%d")
            .map_err(|e| corrupt("issues", &slug, "issue_date", &format!("{date:?}: {e}")))?,
        released_at: time::parse(&released).ok_or_else(|| {
            corrupt(
                "issues",
                &slug,
                "released_at",
                &format!("{released:?} is not a time"),
            )
        })?,
        slug,
    })
}

/// One claimed row, its subscriber values parsed with the rules for stored
/// values. A bad one is [`StoreError::Corrupt`] naming the row and column
/// with the reason; the reason may quote a domain, so it goes to the
/// ledger's reply for that row (which erasure strips), never to the log.
/// (An older row that reads but has no wire form fails when its message is
/// built, with the reason, like any message that cannot be composed.)
fn claimed_row(r: &sqlx::sqlite::SqliteRow, id: i64) -> Result<Claimed, StoreError> {
    let attempts: i64 = column(r, "deliveries", &id, "attempts")?;
    let subscriber_id: i64 = column(r, "deliveries", &id, "subscriber_id")?;
    let sid = &subscriber_id;
    let email: String = column(r, "subscribers", sid, "email")?;
    let name: Option<String> = column(r, "subscribers", sid, "name")?;
    let token: String = column(r, "subscribers", sid, "token")?;
    let email = SubscriberEmail::from_stored(&email)
        .map_err(|e| corrupt("subscribers", sid, "email", &e.to_string()))?;
    let name = match name {
        Some(n) => SubscriberName::from_stored(&n)
            .map_err(|e| corrupt("subscribers", sid, "name", &e.to_string()))?,
        None => None,
    };
    // Never the token itself in a message: it is the subscriber's secret.
    let token =
        Token::parse(&token).map_err(|e| corrupt("subscribers", sid, "token", &e.to_string()))?;
    Ok(Claimed {
        delivery_id: id,
        issue_slug: column(r, "deliveries", &id, "slug")?,
        subscriber_id,
        email,
        name,
        token,
        format: if column::<bool>(r, "deliveries", &id, "text_only")? {
            MailFormat::Text
        } else {
            MailFormat::Html
        },
        attempts: u32::try_from(attempts).unwrap_or(0),
    })
}

/// The outcome of one attempt, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent {
        reply: String,
    },
    /// Back to `queued` for another try at `retry_at`, unless attempts are used up.
    Retry {
        reply: String,
    },
    Failed {
        reply: String,
    },
    /// Failed, and the subscriber is marked bounced.
    Bounced {
        reply: String,
    },
}

/// How many of an issue's ledger rows are in each status. One struct for
/// every reader of the counts (CLI, API, metrics, console), filled by one
/// query ([`Store::delivery_counts`]), so a new status is added in one place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    pub bounced: u64,
    pub cancelled: u64,
}

impl DeliveryCounts {
    /// Rows still to be sent or being sent.
    pub fn pending(&self) -> u64 {
        self.queued + self.sending
    }

    /// Rows whose outcome is final (not queued, not sending).
    pub fn settled(&self) -> u64 {
        self.sent + self.failed + self.bounced + self.cancelled
    }

    /// Every row: the recipients fixed at publication.
    pub fn total(&self) -> u64 {
        self.settled() + self.pending()
    }

    /// Each status with its count, in the ledger's order.
    pub fn by_status(&self) -> [(&'static str, u64); 6] {
        [
            ("queued", self.queued),
            ("sending", self.sending),
            ("sent", self.sent),
            ("failed", self.failed),
            ("bounced", self.bounced),
            ("cancelled", self.cancelled),
        ]
    }
}

impl std::ops::Add for DeliveryCounts {
    type Output = DeliveryCounts;
    fn add(self, o: DeliveryCounts) -> DeliveryCounts {
        DeliveryCounts {
            queued: self.queued + o.queued,
            sending: self.sending + o.sending,
            sent: self.sent + o.sent,
            failed: self.failed + o.failed,
            bounced: self.bounced + o.bounced,
            cancelled: self.cancelled + o.cancelled,
        }
    }
}

impl std::iter::Sum for DeliveryCounts {
    fn sum<I: Iterator<Item = DeliveryCounts>>(iter: I) -> DeliveryCounts {
        iter.fold(DeliveryCounts::default(), |a, b| a + b)
    }
}

/// Counts per status for one issue.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IssueDeliveries {
    pub slug: String,
    pub title: String,
    pub mail_state: MailState,
    pub published_at: Option<String>,
    pub note: Option<String>,
    /// Serialized flat (`"queued": 3, …`), as the API has always answered.
    #[serde(flatten)]
    pub counts: DeliveryCounts,
}

/// One delivery that did not (yet) succeed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryProblem {
    pub email: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_reply: Option<String>,
    pub next_attempt_at: String,
    pub updated_at: String,
}

/// Exponential backoff: `base`, 2×, 4×, … capped at a day.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    (base * factor).min(Duration::from_secs(86_400))
}

impl Store {
    /// Publish: fix the recipients of `slug` as the subscribers active now,
    /// and queue a row for each. The issue is marked published first, with
    /// the highest subscriber id at this moment; the rows then go in
    /// [`PUBLISH_PIECE`] subscribers at a time, each piece its own short
    /// transaction, so a big list does not hold the write lock (sign-ups
    /// and the console wait at most one piece). An issue whose pieces were
    /// cut short (a crash, a stop) is finished by the next call, here or
    /// through [`Store::finish_publishing`]; a row for a subscriber who
    /// left meanwhile is cancelled by the sender, as for any queued row.
    pub async fn publish_issue(
        &self,
        slug: &str,
        now: DateTime<Utc>,
    ) -> Result<Published, StoreError> {
        self.publish_issue_in(slug, now, PUBLISH_PIECE).await
    }

    async fn publish_issue_in(
        &self,
        slug: &str,
        now: DateTime<Utc>,
        piece: i64,
    ) -> Result<Published, StoreError> {
        let stamp = ledger_time(now);
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT id, mail_state, queued_up_to FROM issues WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(Published::Unknown);
        };
        let issue_id: i64 = column(&row, "issues", &slug, "id")?;
        let unfinished: Option<i64> = column(&row, "issues", &slug, "queued_up_to")?;
        if mail_state(&row, slug)? == MailState::Published && unfinished.is_none() {
            return Ok(Published::Already);
        }
        if unfinished.is_none() {
            sqlx::query(
                "UPDATE issues SET mail_state = 'published', published_at = $1, mail_note = NULL,
                     recipients_up_to = (SELECT COALESCE(MAX(id), 0) FROM subscribers), queued_up_to = 0
                 WHERE id = $2",
            )
            .bind(&stamp)
            .bind(issue_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let recipients = self.queue_pieces(issue_id, &stamp, piece).await?;
        Ok(Published::Now { recipients })
    }

    /// Queue the rest of an issue's rows, a piece at a time; returns how
    /// many rows this call created.
    async fn queue_pieces(
        &self,
        issue_id: i64,
        stamp: &str,
        piece: i64,
    ) -> Result<u64, StoreError> {
        let mut queued = 0;
        loop {
            let started = std::time::Instant::now();
            let mut tx = self.write().await?;
            let (from, up_to): (Option<i64>, Option<i64>) =
                sqlx::query_as("SELECT queued_up_to, recipients_up_to FROM issues WHERE id = $1")
                    .bind(issue_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let (Some(from), Some(up_to)) = (from, up_to) else {
                return Ok(queued);
            };
            let to = from.saturating_add(piece).min(up_to);
            let done = sqlx::query(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, next_attempt_at, created_at, updated_at)
                 SELECT $1, id, 'queued', $2, $2, $2 FROM subscribers
                 WHERE status = 'active' AND id > $3 AND id <= $4
                 ON CONFLICT (issue_id, subscriber_id) DO NOTHING",
            )
            .bind(issue_id)
            .bind(stamp)
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
            queued += done.rows_affected();
            let query = if to >= up_to {
                "UPDATE issues SET queued_up_to = NULL, recipients_up_to = NULL WHERE id = $1"
            } else {
                "UPDATE issues SET queued_up_to = $2 WHERE id = $1"
            };
            sqlx::query(query)
                .bind(issue_id)
                .bind(to)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            if to < up_to {
                // Let waiting writers in. SQLite's lock is not fair: a
                // writer waits in its busy handler, which retries at most
                // 100 ms apart, so a publisher starting its next piece at
                // once took the lock again every time and a sign-up could
                // wait out its whole busy timeout (a CI run caught it).
                tokio::time::sleep(started.elapsed().max(WRITERS_GET_IN)).await;
            }
        }
    }

    /// Issues whose publishing was cut short (a crash or a stop between
    /// pieces): their remaining rows are queued now. Returns each such
    /// issue's slug and the rows added.
    pub async fn finish_publishing(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let open: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, slug FROM issues WHERE queued_up_to IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let stamp = ledger_time(now);
        let mut finished = Vec::with_capacity(open.len());
        for (id, slug) in open {
            let rows = self.queue_pieces(id, &stamp, PUBLISH_PIECE).await?;
            finished.push((slug, rows));
        }
        Ok(finished)
    }

    /// Released issues neither published nor skipped yet, oldest first.
    /// Drafts and held issues wait. One entry a row: a row whose date or
    /// release time does not read (a hand edit) is its own `Corrupt` error,
    /// so it waits, named, while the other issues go out.
    pub async fn unpublished_issues(
        &self,
    ) -> Result<Vec<Result<UnpublishedIssue, StoreError>>, StoreError> {
        let rows = sqlx::query("SELECT slug, issue_date, released_at FROM issues WHERE mail_state = 'unpublished' AND released_at IS NOT NULL ORDER BY issue_date, slug")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(unpublished_issue).collect())
    }

    /// Slugs of issues with rows due now (they need composing).
    pub async fn issues_due(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT i.slug FROM deliveries d JOIN issues i ON i.id = d.issue_id
             WHERE d.status IN ('queued', 'sending') AND d.next_attempt_at <= $1 ORDER BY i.slug",
        )
        .bind(ledger_time(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// When an issue was published (its digest's Date), if it was.
    pub async fn published_at(&self, slug: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let r: Option<(Option<String>,)> =
            sqlx::query_as("SELECT published_at FROM issues WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
        Ok(r.and_then(|(t,)| t).and_then(|t| time::parse(&t)))
    }

    /// Note that a new issue is not mailed automatically (too old when first seen).
    pub async fn skip_issue(&self, slug: &str, note: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE issues SET mail_state = 'skipped', mail_note = $1 WHERE slug = $2 AND mail_state = 'unpublished'")
            .bind(note)
            .bind(slug)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Crash recovery: rows a dead process left `sending` are due again now.
    /// Call only while holding the run lock (no live sender owns them).
    pub async fn requeue_stale(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = ledger_time(now);
        let r = sqlx::query(
            "UPDATE deliveries SET status = 'queued', next_attempt_at = $1, updated_at = $1,
                 last_reply = 'interrupted while sending; sent again'
             WHERE status = 'sending'",
        )
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// An admin's retry: the failed rows of `slug` go back to `queued`, due
    /// at `now`, for the next cycle's sender. Their attempts start over, so
    /// a retry gets the whole backoff again (a row failed because its
    /// attempts ran out would otherwise fail at its first 4xx). Only rows
    /// of subscribers who are still active and not erased: anyone else's
    /// row would only be cancelled. Bounced rows stay as they are (the
    /// address is dead). The last reply stays until the next attempt
    /// replaces it. Returns how many rows were queued.
    #[tracing::instrument(skip(self))]
    pub async fn retry_failed(&self, slug: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE deliveries SET status = 'queued', attempts = 0, next_attempt_at = $1, updated_at = $1
             WHERE status = 'failed'
               AND issue_id = (SELECT id FROM issues WHERE slug = $2)
               AND subscriber_id IN (SELECT id FROM subscribers WHERE status = 'active' AND erased_at IS NULL)",
        )
        .bind(ledger_time(now))
        .bind(slug)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Claimed rows that were never handed to the transport (a stop came
    /// first) go back to `queued`, due as before, the claim's attempt not
    /// counted.
    pub async fn release_unsent(&self, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let r = sqlx::query(
            "UPDATE deliveries SET status = 'queued', attempts = MAX(attempts - 1, 0), updated_at = $1
             WHERE status = 'sending' AND id IN (SELECT value FROM json_each($2))",
        )
        .bind(ledger_time(now))
        .bind(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Queued rows of subscribers who are no longer active will never go out.
    pub async fn cancel_inactive(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = ledger_time(now);
        let r = sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', updated_at = $1,
                 last_reply = 'not sent: the subscriber is ' || (SELECT status FROM subscribers s WHERE s.id = deliveries.subscriber_id)
             WHERE status = 'queued'
               AND subscriber_id IN (SELECT id FROM subscribers WHERE status != 'active')",
        )
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// The send loop's own connection (see [`Ledger`]).
    pub async fn ledger(&self) -> Result<Ledger, StoreError> {
        Ok(Ledger {
            conn: self.pool.acquire().await?,
        })
    }

    /// [`Ledger::claim_due`] on a connection of its own: for tests, which
    /// claim once or twice; the send loop holds a [`Ledger`] for its run.
    #[cfg(test)]
    pub async fn claim_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Claims, StoreError> {
        self.ledger().await?.claim_due(now, limit).await
    }

    /// [`Ledger::record_attempts`] on a connection of its own (for tests).
    #[cfg(test)]
    pub async fn record_attempts(
        &self,
        results: &[(Claimed, String, Attempt)],
        now: DateTime<Utc>,
        retry_base: Duration,
        max_attempts: u32,
    ) -> Result<(), StoreError> {
        self.ledger()
            .await?
            .record_attempts(results, now, retry_base, max_attempts)
            .await
    }

    /// How many rows are due now (for a progress bar).
    pub async fn count_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.status IN ('queued', 'sending') AND d.next_attempt_at <= $1 AND s.status = 'active'",
        )
        .bind(ledger_time(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    /// The earliest time a queued row becomes due, if any is queued.
    pub async fn next_due(&self) -> Result<Option<String>, StoreError> {
        let r: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT MIN(d.next_attempt_at) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.status = 'queued' AND s.status = 'active'",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.and_then(|(t,)| t))
    }

    /// Counts per status for every issue (newest first), or for one: from
    /// `delivery_counts` (migration 0013), which triggers keep, not by
    /// counting the ledger.
    pub async fn delivery_counts(
        &self,
        slug: Option<&str>,
    ) -> Result<Vec<IssueDeliveries>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.slug, i.title, i.mail_state, i.published_at, i.mail_note,
                    COALESCE(SUM(c.n) FILTER (WHERE c.status = 'queued'), 0)    AS queued,
                    COALESCE(SUM(c.n) FILTER (WHERE c.status = 'sending'), 0)   AS sending,
                    COALESCE(SUM(c.n) FILTER (WHERE c.status = 'sent'), 0)      AS sent,
                    COALESCE(SUM(c.n) FILTER (WHERE c.status = 'failed'), 0)    AS failed,
                    COALESCE(SUM(c.n) FILTER (WHERE c.status = 'bounced'), 0)   AS bounced,
                    COALESCE(SUM(c.n) FILTER (WHERE c.status = 'cancelled'), 0) AS cancelled
             FROM issues i LEFT JOIN delivery_counts c ON c.issue_id = i.id
             WHERE $1 IS NULL OR i.slug = $1
             GROUP BY i.id ORDER BY i.issue_date DESC, i.slug",
        )
        .bind(slug)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let slug: String = column(r, "issues", &"?", "slug")?;
                Ok(IssueDeliveries {
                    title: column(r, "issues", &slug, "title")?,
                    mail_state: mail_state(r, &slug)?,
                    published_at: column(r, "issues", &slug, "published_at")?,
                    note: column(r, "issues", &slug, "mail_note")?,
                    counts: DeliveryCounts {
                        queued: count(r, &slug, "queued")?,
                        sending: count(r, &slug, "sending")?,
                        sent: count(r, &slug, "sent")?,
                        failed: count(r, &slug, "failed")?,
                        bounced: count(r, &slug, "bounced")?,
                        cancelled: count(r, &slug, "cancelled")?,
                    },
                    slug,
                })
            })
            .collect()
    }

    /// Deliveries of one issue that did not go out, with the last reply:
    /// failed, bounced, cancelled, waiting for a retry, or being sent (or
    /// left so by a crash). Rows waiting for their first try are no
    /// problem and not listed (the counts have them). At most
    /// [`PROBLEMS_SHOWN`], by status then address; [`Store::delivery_problem_count`]
    /// says how many there are: a million rows failed by a dead server are
    /// not read into memory.
    pub async fn delivery_problems(&self, slug: &str) -> Result<Vec<DeliveryProblem>, StoreError> {
        let rows = sqlx::query(PROBLEMS_SQL)
            .bind(slug)
            .bind(PROBLEMS_SHOWN)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = column(r, "deliveries", &"?", "id")?;
                let attempts: i64 = column(r, "deliveries", &id, "attempts")?;
                Ok(DeliveryProblem {
                    email: column(r, "deliveries", &id, "email")?,
                    status: delivery_status(r, &id)?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    last_reply: column(r, "deliveries", &id, "last_reply")?,
                    next_attempt_at: column(r, "deliveries", &id, "next_attempt_at")?,
                    updated_at: column(r, "deliveries", &id, "updated_at")?,
                })
            })
            .collect()
    }

    /// How many deliveries of one issue [`Store::delivery_problems`] would
    /// list without its limit.
    pub async fn delivery_problem_count(&self, slug: &str) -> Result<u64, StoreError> {
        // The list's rule (every status but `queued` and `sent`, and the
        // queued rows already tried), from the counts the triggers keep and
        // the retries' own index.
        let (n,): (i64,) = sqlx::query_as(
            "SELECT (SELECT COALESCE(SUM(c.n), 0) FROM delivery_counts c
                     WHERE c.issue_id = i.id AND c.status NOT IN ('queued', 'sent'))
                  + (SELECT COUNT(*) FROM deliveries d
                     WHERE d.status = 'queued' AND d.attempts > 0 AND d.issue_id = i.id)
             FROM issues i WHERE i.slug = $1",
        )
        .bind(slug)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Two branches, each on its own index (`deliveries_due` by status,
/// `deliveries_retrying`), so that a million queued or sent rows
/// are not read to find the few that are problems. The first takes
/// every status but `queued` and `sent` as ranges of the index (in
/// text order: bounced, cancelled, failed < queued < sending <
/// sent), so a hand-edited unknown status is listed too, and fails
/// to read with a message that says where. The unary `+`s (no-ops on
/// the values) keep the planner off the issue's own index and off a walk
/// of all of `deliveries_due` in status order: each holds every row.
const PROBLEMS_SQL: &str =
    "SELECT p.id, s.email, p.status, p.attempts, p.last_reply, p.next_attempt_at, p.updated_at
     FROM (SELECT id, subscriber_id, status, attempts, last_reply, next_attempt_at, updated_at
           FROM deliveries
           WHERE (status < 'queued' OR status = 'sending' OR status > 'sent')
             AND +issue_id = (SELECT id FROM issues WHERE slug = $1)
           UNION ALL
           SELECT id, subscriber_id, status, attempts, last_reply, next_attempt_at, updated_at
           FROM deliveries
           WHERE status = 'queued' AND attempts > 0
             AND issue_id = (SELECT id FROM issues WHERE slug = $1)) AS p
     JOIN subscribers s ON s.id = p.subscriber_id
     ORDER BY +p.status, s.email LIMIT $2";

/// How many rows [`Store::delivery_problems`] lists at most.
pub const PROBLEMS_SHOWN: u32 = 1000;

/// The send loop's own connection to the ledger. Its claims and outcomes
/// all go through one connection, so that connection's page cache stays
/// warm: through the pool, each statement could land on a connection whose
/// cache the last write of another connection had invalidated, and perf
/// showed SQLite re-reading those pages (`pread`) for every batch.
pub struct Ledger {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
}

impl Ledger {
    /// Claim up to `limit` due rows of active subscribers: they become
    /// `sending` (attempts + 1) before anything is sent. A row whose
    /// subscriber values do not parse is failed here with the reason (see
    /// [`Claims`]).
    pub async fn claim_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Claims, StoreError> {
        let now = ledger_time(now);
        // One statement (a round trip to sqlx's SQLite thread each costs
        // more than the work): claim and return what the messages need.
        let rows = sqlx::query(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = $1
             WHERE id IN (
                 SELECT d.id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE d.status = 'queued' AND d.next_attempt_at <= $1 AND s.status = 'active'
                 ORDER BY d.next_attempt_at, d.id LIMIT $2)
             RETURNING id, subscriber_id, attempts,
                 (SELECT slug FROM issues i WHERE i.id = deliveries.issue_id) AS slug,
                 (SELECT email FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS email,
                 (SELECT name FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS name,
                 (SELECT token FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS token,
                 (SELECT format = 'text' FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS text_only",
        )
        .bind(&now)
        .bind(limit as i64)
        .fetch_all(&mut *self.conn)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for r in &rows {
            // Without its id a row cannot be failed alone.
            let id: i64 = column(r, "deliveries", &"?", "id")?;
            match claimed_row(r, id) {
                Ok(row) => claimed.push(row),
                Err(e) => {
                    // The reason (which may quote the address) goes to
                    // the row's reply; the log names only the row.
                    tracing::error!(
                        delivery = id,
                        "a claimed row holds a value that does not read; failed (`gazette deliveries` says why)"
                    );
                    bad.push(serde_json::json!([id, format!("not sent: {e}")]));
                }
            }
        }
        claimed.sort_by_key(|c| c.delivery_id);
        let failed = bad.len() as u64;
        if !bad.is_empty() {
            sqlx::query(
                "UPDATE deliveries SET status = 'failed', last_reply = j.value ->> 1, next_attempt_at = $1, updated_at = $1
                 FROM json_each($2) AS j
                 WHERE deliveries.id = j.value ->> 0 AND deliveries.status = 'sending'",
            )
            .bind(&now)
            .bind(serde_json::Value::from(bad).to_string())
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(Claims {
            rows: claimed,
            failed,
        })
    }

    /// Record outcomes, in one transaction. `results` are (claimed row,
    /// Message-ID, outcome); a retry goes back to `queued` after
    /// [`backoff`]`(retry_base, attempts)`, or fails once `max_attempts` are used.
    pub async fn record_attempts(
        &mut self,
        results: &[(Claimed, String, Attempt)],
        now: DateTime<Utc>,
        retry_base: Duration,
        max_attempts: u32,
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let stamp = ledger_time(now);
        // One statement for the whole batch: each statement is a round trip
        // to sqlx's SQLite thread, and at a few thousand messages a second
        // those round trips were the cost. The rows travel as one flat JSON
        // array of scalars, six per row, pivoted back by `key / 6`: nested
        // arrays made SQLite re-parse every row once per field (perf).
        let mut rows = Vec::with_capacity(results.len());
        let mut bounced = Vec::new();
        for (row, message_id, attempt) in results {
            let (status, reply, next) = match attempt {
                Attempt::Sent { reply } => (DeliveryStatus::Sent, reply, stamp.clone()),
                Attempt::Retry { reply } if row.attempts < max_attempts => {
                    let at = now
                        + chrono::Duration::from_std(backoff(retry_base, row.attempts))
                            .unwrap_or_default();
                    (DeliveryStatus::Queued, reply, ledger_time(at))
                }
                Attempt::Retry { reply } => (DeliveryStatus::Failed, reply, stamp.clone()),
                Attempt::Failed { reply } => (DeliveryStatus::Failed, reply, stamp.clone()),
                Attempt::Bounced { reply } => (DeliveryStatus::Bounced, reply, stamp.clone()),
            };
            if status == DeliveryStatus::Bounced {
                bounced.push(row.subscriber_id);
            }
            let sent_at = (status == DeliveryStatus::Sent).then_some(stamp.as_str());
            // Flat: six values per row (see the statement below).
            rows.extend([
                serde_json::json!(row.delivery_id),
                serde_json::json!(status.as_str()),
                serde_json::json!(reply),
                serde_json::json!(next),
                serde_json::json!(message_id),
                serde_json::json!(sent_at),
            ]);
        }
        let rows = serde_json::Value::from(rows).to_string();
        let update = sqlx::query(
            "UPDATE deliveries SET status = j.status, last_reply = j.reply, next_attempt_at = j.next,
                 message_id = j.mid, sent_at = COALESCE(j.sent_at, deliveries.sent_at), updated_at = $2
             FROM (SELECT MAX(CASE WHEN key % 6 = 0 THEN value END) AS id,
                          MAX(CASE WHEN key % 6 = 1 THEN value END) AS status,
                          MAX(CASE WHEN key % 6 = 2 THEN value END) AS reply,
                          MAX(CASE WHEN key % 6 = 3 THEN value END) AS next,
                          MAX(CASE WHEN key % 6 = 4 THEN value END) AS mid,
                          MAX(CASE WHEN key % 6 = 5 THEN value END) AS sent_at
                   FROM json_each($1) GROUP BY key / 6) AS j
             WHERE deliveries.id = j.id AND deliveries.status = 'sending'",
        )
        .bind(rows)
        .bind(&stamp);
        if bounced.is_empty() {
            update.execute(&mut *self.conn).await?;
            return Ok(());
        }
        let mut tx = sqlx::Connection::begin_with(&mut *self.conn, "BEGIN IMMEDIATE").await?;
        update.execute(&mut *tx).await?;
        sqlx::query("UPDATE subscribers SET status = 'bounced', bounced_at = $1, updated_at = $1 WHERE id IN (SELECT value FROM json_each($2))")
            .bind(&stamp)
            .bind(serde_json::Value::from(bounced).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// The counts the triggers keep (migration 0013) are the rows' own.
    async fn counts_match_the_rows(store: &Store) {
        let kept: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT issue_id, status, n FROM delivery_counts WHERE n != 0 ORDER BY 1, 2",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let counted: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT issue_id, status, COUNT(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(kept, counted);
    }

    async fn store_with(subscribers: &[(&str, &str)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        sqlx::query(
            "INSERT INTO issues (slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at)
             VALUES ('i1', 'Issue 1', '2026-11-20', 'h', 1, 'now', 'now'), ('i2', 'Issue 2', '2026-11-27', 'h', 1, 'now', 'now')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        for (email, status) in subscribers {
            sqlx::query(
                "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at) VALUES ($1, $2, $3, $4, 'now', 'now')",
            )
            .bind(email)
            .bind(email.to_lowercase())
            .bind(status)
            .bind(Token::generate().unwrap().as_str().to_string())
            .execute(store.pool())
            .await
            .unwrap();
        }
        (dir, store)
    }

    fn t(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, min, 0).unwrap()
    }

    async fn statuses(store: &Store) -> Vec<(String, String)> {
        sqlx::query_as("SELECT s.email, d.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id ORDER BY s.email")
            .fetch_all(store.pool())
            .await
            .unwrap()
    }

    /// A sign-up during a cycle: another connection holds the write lock
    /// while publishing starts. Publishing reads before it writes; in a
    /// deferred transaction its write could not wait for the lock (its read
    /// snapshot is stale once the other commits) and failed at once with
    /// "database is locked". A write transaction starts IMMEDIATE and waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_waits_for_another_writer_instead_of_failing() {
        let (_d, store) = store_with(&[("a@x.org", "active")]).await;
        let mut other = store.pool().acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *other)
            .await
            .unwrap();
        sqlx::query("UPDATE subscribers SET updated_at = 'later'")
            .execute(&mut *other)
            .await
            .unwrap();
        let publishing = tokio::spawn({
            let store = store.clone();
            async move { store.publish_issue("i1", t(0)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::query("COMMIT").execute(&mut *other).await.unwrap();
        drop(other);
        assert_eq!(
            publishing.await.unwrap().unwrap(),
            Published::Now { recipients: 1 }
        );
    }

    #[tokio::test]
    async fn publishing_fixes_the_recipients_once() {
        let (_d, store) = store_with(&[
            ("a@x.org", "active"),
            ("b@x.org", "pending"),
            ("c@x.org", "active"),
        ])
        .await;
        assert_eq!(
            store.publish_issue("i1", t(0)).await.unwrap(),
            Published::Now { recipients: 2 }
        );
        // Someone who joins later does not get this issue, even if it is published "again".
        sqlx::query("UPDATE subscribers SET status = 'active' WHERE email = 'b@x.org'")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            store.publish_issue("i1", t(1)).await.unwrap(),
            Published::Already
        );
        assert_eq!(
            store.publish_issue("nope", t(1)).await.unwrap(),
            Published::Unknown
        );
        assert_eq!(
            statuses(&store).await,
            vec![
                ("a@x.org".into(), "queued".into()),
                ("c@x.org".into(), "queued".into())
            ]
        );
        // But gets the next one.
        assert_eq!(
            store.publish_issue("i2", t(2)).await.unwrap(),
            Published::Now { recipients: 3 }
        );
    }

    async fn add_subscribers(store: &Store, n: usize, status: &str) {
        for _ in 0..n {
            sqlx::query(
                "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at)
                 VALUES ('r' || (SELECT COALESCE(MAX(id), 0) + 1 FROM subscribers) || '@x.org',
                         'r' || (SELECT COALESCE(MAX(id), 0) + 1 FROM subscribers) || '@x.org', $1, $2, 'now', 'now')",
            )
            .bind(status)
            .bind(Token::generate().unwrap().as_str().to_string())
            .execute(store.pool())
            .await
            .unwrap();
        }
    }

    async fn queued_for(store: &Store, issue: &str) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT d.subscriber_id FROM deliveries d JOIN issues i ON i.id = d.issue_id
             WHERE i.slug = $1 ORDER BY d.subscriber_id",
        )
        .bind(issue)
        .fetch_all(store.pool())
        .await
        .unwrap()
    }

    async fn marks(store: &Store, issue: &str) -> (Option<i64>, Option<i64>) {
        sqlx::query_as("SELECT queued_up_to, recipients_up_to FROM issues WHERE slug = $1")
            .bind(issue)
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    /// Issue i1 as a run that died with rows up to subscriber `at` left it.
    async fn cut_short(store: &Store, at: i64, up_to: i64) {
        sqlx::query("DELETE FROM deliveries WHERE subscriber_id > $1")
            .bind(at)
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE issues SET queued_up_to = $1, recipients_up_to = $2 WHERE slug = 'i1'")
            .bind(at)
            .bind(up_to)
            .execute(store.pool())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn publishing_in_pieces_queues_every_active_subscriber_once() {
        let (_d, store) = store_with(&[]).await;
        add_subscribers(&store, 10, "active").await;
        add_subscribers(&store, 3, "pending").await;
        add_subscribers(&store, 12, "active").await;
        assert_eq!(
            store.publish_issue_in("i1", t(0), 4).await.unwrap(),
            Published::Now { recipients: 22 }
        );
        let pending: Vec<i64> = vec![11, 12, 13];
        let expected: Vec<i64> = (1..=25).filter(|id| !pending.contains(id)).collect();
        assert_eq!(queued_for(&store, "i1").await, expected);
        assert_eq!(
            marks(&store, "i1").await,
            (None, None),
            "done: no marks left"
        );
        assert_eq!(
            store.publish_issue_in("i1", t(1), 4).await.unwrap(),
            Published::Already
        );
        counts_match_the_rows(&store).await;
    }

    /// A publish stopped between pieces (a crash): the issue is published,
    /// its mark says how far the rows go. The next cycle finishes it, for
    /// the recipients fixed at the start: not for someone who joined since.
    #[tokio::test]
    async fn a_publish_cut_short_goes_on_from_its_mark_for_the_same_recipients() {
        let (_d, store) = store_with(&[]).await;
        add_subscribers(&store, 20, "active").await;
        store.publish_issue_in("i1", t(0), 5).await.unwrap();
        // As if the run died after the second piece.
        cut_short(&store, 10, 20).await;
        add_subscribers(&store, 2, "active").await; // ids 21 and 22 join meanwhile
        assert_eq!(
            store.finish_publishing(t(5)).await.unwrap(),
            vec![("i1".to_string(), 10)]
        );
        assert_eq!(queued_for(&store, "i1").await, (1..=20).collect::<Vec<_>>());
        assert_eq!(marks(&store, "i1").await, (None, None));
        assert!(store.finish_publishing(t(6)).await.unwrap().is_empty());
        // `issues send` on an issue cut short finishes it too, and then
        // it is published as any other.
        cut_short(&store, 15, 20).await;
        assert_eq!(
            store.publish_issue("i1", t(7)).await.unwrap(),
            Published::Now { recipients: 5 }
        );
        assert_eq!(
            store.publish_issue("i1", t(8)).await.unwrap(),
            Published::Already
        );
    }

    /// The point of the pieces: while a big list is published, other
    /// writers (a sign-up) get the lock between pieces, and readers see the
    /// rows grow. Made in one transaction, a reader would only ever see
    /// none or all of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_writers_get_in_between_the_pieces_of_a_publish() {
        let (_d, store) = store_with(&[]).await;
        add_subscribers(&store, 20, "active").await;
        let publishing = tokio::spawn({
            let store = store.clone();
            async move { store.publish_issue_in("i1", t(0), 2).await }
        });
        let mut seen_between = Vec::new();
        while !publishing.is_finished() {
            add_subscribers(&store, 1, "pending").await;
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deliveries")
                .fetch_one(store.pool())
                .await
                .unwrap();
            if n > 0 && n < 20 {
                seen_between.push(n);
            }
        }
        assert_eq!(
            publishing.await.unwrap().unwrap(),
            Published::Now { recipients: 20 }
        );
        assert!(
            seen_between.len() >= 5,
            "sign-ups and reads went on while the rows were made: {seen_between:?}"
        );
    }

    #[tokio::test]
    async fn claim_send_record_with_retries_failures_and_bounces() {
        let (_d, store) = store_with(&[
            ("a@x.org", "active"),
            ("b@x.org", "active"),
            ("c@x.org", "active"),
            ("d@x.org", "active"),
        ])
        .await;
        store.publish_issue("i1", t(0)).await.unwrap();
        let claimed = store.claim_due(t(0), 10).await.unwrap().rows;
        assert_eq!(claimed.len(), 4);
        assert!(
            claimed
                .iter()
                .all(|c| c.attempts == 1 && c.issue_slug == "i1")
        );
        // Claimed rows are not claimed again.
        assert!(store.claim_due(t(0), 10).await.unwrap().rows.is_empty());

        let outcome = |c: &Claimed| match c.email.as_str() {
            "a@x.org" => Attempt::Sent {
                reply: "250 ok".into(),
            },
            "b@x.org" => Attempt::Retry {
                reply: "451 try later".into(),
            },
            "c@x.org" => Attempt::Failed {
                reply: "554 no".into(),
            },
            _ => Attempt::Bounced {
                reply: "550 5.1.1 unknown".into(),
            },
        };
        let results: Vec<_> = claimed
            .iter()
            .map(|c| (c.clone(), format!("<{}@x>", c.delivery_id), outcome(c)))
            .collect();
        store
            .record_attempts(&results, t(0), Duration::from_secs(60), 2)
            .await
            .unwrap();
        assert_eq!(
            statuses(&store).await,
            vec![
                ("a@x.org".into(), "sent".into()),
                ("b@x.org".into(), "queued".into()),
                ("c@x.org".into(), "failed".into()),
                ("d@x.org".into(), "bounced".into())
            ]
        );
        let (st,): (String,) =
            sqlx::query_as("SELECT status FROM subscribers WHERE email = 'd@x.org'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(st, "bounced");

        // The retry is not due before its backoff...
        assert!(store.claim_due(t(0), 10).await.unwrap().rows.is_empty());
        assert_eq!(
            store.next_due().await.unwrap().as_deref(),
            Some("2026-11-27T12:01:00.000Z")
        );
        // ...and fails for good when its attempts are used up.
        let again = store.claim_due(t(1), 10).await.unwrap().rows;
        assert_eq!((again.len(), again[0].attempts), (1, 2));
        let results = vec![(
            again[0].clone(),
            "<m>".to_string(),
            Attempt::Retry {
                reply: "421 busy".into(),
            },
        )];
        store
            .record_attempts(&results, t(1), Duration::from_secs(60), 2)
            .await
            .unwrap();
        let counts = store.delivery_counts(Some("i1")).await.unwrap();
        assert_eq!(
            (
                counts[0].counts.sent,
                counts[0].counts.failed,
                counts[0].counts.bounced,
                counts[0].counts.queued
            ),
            (1, 2, 1, 0)
        );
        let problems = store.delivery_problems("i1").await.unwrap();
        assert_eq!(problems.len(), 3);
        assert!(
            problems
                .iter()
                .any(|p| p.last_reply.as_deref() == Some("421 busy"))
        );
        counts_match_the_rows(&store).await;
    }

    #[tokio::test]
    async fn a_crash_leaves_rows_sending_and_the_next_run_sends_them_again() {
        let (_d, store) = store_with(&[("a@x.org", "active"), ("b@x.org", "active")]).await;
        store.publish_issue("i1", t(0)).await.unwrap();
        let claimed = store.claim_due(t(0), 1).await.unwrap().rows;
        assert_eq!(claimed.len(), 1);
        // ... the process dies here ...
        assert_eq!(store.requeue_stale(t(5)).await.unwrap(), 1);
        let all = store.claim_due(t(5), 10).await.unwrap().rows;
        assert_eq!(all.len(), 2);
        assert_eq!(
            all.iter()
                .find(|c| c.delivery_id == claimed[0].delivery_id)
                .unwrap()
                .attempts,
            2
        );
    }

    #[tokio::test]
    async fn leaving_while_an_issue_goes_out_cancels_what_is_left() {
        let (_d, store) = store_with(&[("a@x.org", "active"), ("b@x.org", "active")]).await;
        store.publish_issue("i1", t(0)).await.unwrap();
        sqlx::query("UPDATE subscribers SET status = 'unsubscribed' WHERE email = 'b@x.org'")
            .execute(store.pool())
            .await
            .unwrap();
        let claimed = store.claim_due(t(0), 10).await.unwrap().rows;
        assert_eq!(
            claimed.iter().map(|c| c.email.as_str()).collect::<Vec<_>>(),
            ["a@x.org"]
        );
        assert_eq!(store.cancel_inactive(t(0)).await.unwrap(), 1);
        let problems = store.delivery_problems("i1").await.unwrap();
        let b = problems.iter().find(|p| p.email == "b@x.org").unwrap();
        assert_eq!(
            (b.status, b.last_reply.as_deref()),
            (
                DeliveryStatus::Cancelled,
                Some("not sent: the subscriber is unsubscribed")
            )
        );
        counts_match_the_rows(&store).await;
    }

    #[tokio::test]
    async fn a_claimed_row_carries_the_subscribers_mail_format() {
        let (_d, store) = store_with(&[("a@x.org", "active"), ("b@x.org", "active")]).await;
        sqlx::query("UPDATE subscribers SET format = 'text' WHERE email = 'b@x.org'")
            .execute(store.pool())
            .await
            .unwrap();
        store.publish_issue("i1", t(0)).await.unwrap();
        let claimed = store.claim_due(t(0), 10).await.unwrap().rows;
        let formats: Vec<_> = claimed
            .iter()
            .map(|c| (c.email.as_str(), c.format))
            .collect();
        assert_eq!(
            formats,
            [("a@x.org", MailFormat::Html), ("b@x.org", MailFormat::Text)]
        );
    }

    #[tokio::test]
    async fn problems_leave_out_first_tries_and_stop_at_the_limit_with_the_total() {
        let (_d, store) = store_with(&[]).await;
        let n = i64::from(PROBLEMS_SHOWN) + 5;
        // n + 3 subscribers: n failed, one waiting for a retry, one never
        // tried yet, one sent.
        sqlx::query(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $1 + 3)
             INSERT INTO subscribers (id, email, email_key, status, token, created_at, updated_at)
             SELECT i, 'r' || i || '@x.org', 'r' || i || '@x.org', 'active', printf('t%042d', i), 'now', 'now' FROM k",
        )
        .bind(n)
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, last_reply, created_at, updated_at)
             SELECT 1, id,
                    CASE WHEN id <= $1 THEN 'failed' WHEN id = $1 + 3 THEN 'sent' ELSE 'queued' END,
                    CASE WHEN id = $1 + 2 THEN 0 ELSE 1 END,
                    'now', '550 no', 'now', 'now'
             FROM subscribers",
        )
        .bind(n)
        .execute(store.pool())
        .await
        .unwrap();
        let problems = store.delivery_problems("i1").await.unwrap();
        assert_eq!(problems.len(), PROBLEMS_SHOWN as usize);
        assert_eq!(
            store.delivery_problem_count("i1").await.unwrap(),
            n as u64 + 1
        );
        // By status then address: the retry (queued) sorts after "failed"
        // and is cut.
        assert!(problems.windows(2).all(|w| w[0].email <= w[1].email));
        assert!(problems.iter().all(|p| p.status == DeliveryStatus::Failed));
        assert!(
            !problems
                .iter()
                .any(|p| p.email == format!("r{}@x.org", n + 2))
        );
    }

    #[tokio::test]
    async fn the_problem_list_reads_the_status_and_retry_indexes_not_the_issues_rows() {
        let (_d, store) = store_with(&[]).await;
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {PROBLEMS_SQL}"
        )))
        .bind("i1")
        .bind(PROBLEMS_SHOWN)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let plan: Vec<String> = plan.into_iter().map(|r| r.3).collect();
        let on = |index: &str| plan.iter().any(|step| step.contains(index));
        assert!(on("USING INDEX deliveries_due (status<?)"), "{plan:#?}");
        assert!(
            on("USING INDEX deliveries_retrying (issue_id=?)"),
            "{plan:#?}"
        );
        // The issue's own (issue_id, subscriber_id) index would read all
        // its rows: a million while its send runs.
        assert!(!on("sqlite_autoindex_deliveries_1"), "{plan:#?}");
        assert!(!on("SCAN deliveries"), "{plan:#?}");
    }

    #[tokio::test]
    async fn rows_come_back_typed_and_a_bad_stored_value_names_table_row_and_column() {
        let (_d, store) = store_with(&[("a@x.org", "active")]).await;
        sqlx::query("UPDATE issues SET released_at = '2026-11-27T12:00:00Z'")
            .execute(store.pool())
            .await
            .unwrap();
        let unpublished = store.unpublished_issues().await.unwrap();
        assert_eq!(
            *unpublished[0].as_ref().unwrap(),
            UnpublishedIssue {
                slug: "i1".into(),
                issue_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
                released_at: t(0),
            }
        );
        store.publish_issue("i1", t(0)).await.unwrap();
        // Tried once and waiting for a retry: a problem to list.
        sqlx::query("UPDATE deliveries SET attempts = 1")
            .execute(store.pool())
            .await
            .unwrap();
        let counts = store.delivery_counts(None).await.unwrap();
        let states: Vec<_> = counts
            .iter()
            .map(|c| (c.slug.as_str(), c.mail_state))
            .collect();
        assert_eq!(
            states,
            [("i2", MailState::Unpublished), ("i1", MailState::Published)]
        );
        assert_eq!(
            serde_json::to_value(&counts[1]).unwrap()["mail_state"],
            "published"
        );
        let problems = store.delivery_problems("i1").await.unwrap();
        assert_eq!(problems[0].status, DeliveryStatus::Queued);
        assert_eq!(format!("[{:<8}]", problems[0].status), "[queued  ]");

        // A hand-edited database: errors, not panics, saying where.
        // (The CHECK constraints are off only for this connection.)
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::query("PRAGMA ignore_check_constraints = ON")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("UPDATE deliveries SET status = 'lost'")
            .execute(&mut *conn)
            .await
            .unwrap();
        let e = store.delivery_problems("i1").await.unwrap_err().to_string();
        assert!(
            e.contains("deliveries row 1, column status: unknown status \"lost\""),
            "{e}"
        );
        sqlx::query("UPDATE issues SET issue_date = 'someday' WHERE slug = 'i2'")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE issues SET mail_state = 'mailed', title = x'ff' WHERE slug = 'i1'")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let rows = store.unpublished_issues().await.unwrap();
        let e = rows[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("issues row i2, column issue_date"), "{e}");
        let e = store.delivery_counts(None).await.unwrap_err().to_string();
        assert!(e.contains("issues row i1, column title"), "{e}");
        sqlx::query("UPDATE issues SET title = 'Issue 1' WHERE slug = 'i1'")
            .execute(store.pool())
            .await
            .unwrap();
        let e = store.delivery_counts(None).await.unwrap_err().to_string();
        assert!(
            e.contains("issues row i1, column mail_state: unknown state \"mailed\""),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_claimed_row_with_a_bad_stored_value_fails_alone_with_the_reason() {
        let (_d, store) = store_with(&[
            ("a@x.org", "active"),
            ("b@x.org", "active"),
            ("c@x.org", "active"),
            ("d@bücher.example", "active"),
        ])
        .await;
        // Hand edits: a token that is not one, an address with a space.
        sqlx::query("UPDATE subscribers SET token = 'abc' WHERE email = 'b@x.org'")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE subscribers SET email = 'c @x.org' WHERE email = 'c@x.org'")
            .execute(store.pool())
            .await
            .unwrap();
        store.publish_issue("i1", t(0)).await.unwrap();
        let claims = store.claim_due(t(0), 10).await.unwrap();
        assert_eq!(claims.failed, 2);
        let good: Vec<_> = claims.rows.iter().map(|c| c.email.as_str()).collect();
        assert_eq!(good, ["a@x.org", "d@bücher.example"]);
        // Typed all the way: the wire form is decided by SubscriberEmail.
        assert_eq!(
            claims.rows[1].email.envelope().unwrap(),
            "d@xn--bcher-kva.example"
        );
        let problems = store.delivery_problems("i1").await.unwrap();
        let reply = |email: &str| {
            let p = problems.iter().find(|p| p.email == email).unwrap();
            assert_eq!((p.status, p.attempts), (DeliveryStatus::Failed, 1));
            p.last_reply.clone().unwrap()
        };
        let b = reply("b@x.org");
        assert!(
            b.starts_with(
                "not sent: the database holds a bad value (subscribers row 2, column token:"
            ),
            "{b}"
        );
        assert!(!b.contains("abc"), "the token stays secret: {b}");
        let c = reply("c @x.org");
        assert!(
            c.contains("subscribers row 3, column email: contains whitespace"),
            "{c}"
        );
        // Nothing else is due; the failed rows are not claimed again.
        assert!(store.claim_due(t(1), 10).await.unwrap().is_empty());
    }

    #[test]
    fn statuses_read_back_what_they_write() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for m in MailState::ALL {
            assert_eq!(MailState::parse(m.as_str()), Some(m));
        }
        assert_eq!(DeliveryStatus::parse("Sent"), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_secs(60);
        assert_eq!(backoff(b, 1), b);
        assert_eq!(backoff(b, 2), b * 2);
        assert_eq!(backoff(b, 4), b * 8);
        assert_eq!(backoff(b, 40), Duration::from_secs(86_400));
    }
}
