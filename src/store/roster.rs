//! The roster as admins see it: what the admin API, the console (and
//! `gazette subscribers erase`) need from the store: keyset listing with
//! search (`listing.rs`), a subscriber's history (`history.rs`), an add
//! that respects erasure, edits, and erasure itself.
//!
//! Erasure keeps the row (the delivery ledger references it, and its counts
//! must not change) but removes everything personal: address, name, token,
//! its open sign-up confirmations (they hold the name given with the
//! request), and the reply text of its deliveries (a trigger of migration
//! 0005 keeps later replies out too). A keyed hash of the address goes into
//! `suppressions` (see [`super::suppression`]), so no import or admin add
//! brings the address back.
//! SQLite runs with `secure_delete` (see `Store::open`) and erasure
//! checkpoints the WAL, so the old bytes do not linger in the files either.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::subscribers::{add_on, set_status_on};
use super::suppression;
use super::time::{ledger_time, stamp};
use super::{AddOutcome, Store, StoreError};
use crate::subscribers::{
    MailFormat, Status, Subscriber, SubscriberEmail, SubscriberName, SubscriberRow, Token,
};

mod history;
mod listing;

pub use history::{DeliveryEntry, StatusEvent, SubscriberHistory};
pub use listing::{SEARCH_COUNT_CAP, SubscriberPage, SubscriberQuery, Total};

/// A subscriber as the admin API shows them: no token (it is their secret),
/// but every time stamp.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriberRecord {
    pub id: i64,
    pub email: SubscriberEmail,
    pub name: Option<SubscriberName>,
    pub status: Status,
    /// HTML (multipart) or plain-text digests.
    pub format: MailFormat,
    pub created_at: String,
    pub confirmed_at: Option<String>,
    pub unsubscribed_at: Option<String>,
    pub bounced_at: Option<String>,
}

/// What [`Store::add_subscriber_unless_erased`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedAdd {
    Added(Subscriber),
    /// The address (ignoring case) was already on the list; left as it is.
    AlreadyThere(Subscriber),
    /// The address was erased at the person's request; nothing was added.
    Erased,
}

/// A change to a subscriber; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberEdit {
    /// `Some(None)` removes the name.
    pub name: Option<Option<SubscriberName>>,
    pub status: Option<Status>,
    pub format: Option<MailFormat>,
}

/// What erasing a subscriber did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    pub id: i64,
    /// Delivery rows kept (anonymized) for the issue counts.
    pub deliveries_kept: u64,
    /// Queued deliveries that will now never go out.
    pub cancelled: u64,
}

/// The columns a [`SubscriberRecord`] is read from.
macro_rules! record_columns {
    () => {
        "id, email, name, status, format, created_at, confirmed_at, unsubscribed_at, bounced_at"
    };
}

/// What a cancelled delivery of an erased subscriber says (the trigger of
/// migration 0005 leaves this text alone).
const ERASED_NOTE: &str = "not sent: the subscriber was erased";

fn record(r: &SqliteRow) -> Result<SubscriberRecord, StoreError> {
    let id: i64 = r.try_get("id")?;
    let corrupt = |what: String| StoreError::Corrupt {
        what: format!("subscriber {id}: {what}"),
    };
    let email: String = r.try_get("email")?;
    let name: Option<String> = r.try_get("name")?;
    let status: String = r.try_get("status")?;
    let format: String = r.try_get("format")?;
    Ok(SubscriberRecord {
        id,
        email: SubscriberEmail::parse(&email)
            .map_err(|e| corrupt(format!("address {email:?} {e}")))?,
        name: match name {
            Some(n) => SubscriberName::parse(&n).map_err(|e| corrupt(format!("name {n:?} {e}")))?,
            None => None,
        },
        status: Status::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status {status:?}")))?,
        format: MailFormat::parse(&format)
            .ok_or_else(|| corrupt(format!("unknown mail format {format:?}")))?,
        created_at: r.try_get("created_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
        unsubscribed_at: r.try_get("unsubscribed_at")?,
        bounced_at: r.try_get("bounced_at")?,
    })
}

fn unknown(id: i64) -> StoreError {
    StoreError::UnknownSubscriber {
        who: format!("subscriber {id}"),
    }
}

impl Store {
    /// One subscriber by id; `None` when there is none or they were erased.
    pub async fn subscriber_record(&self, id: i64) -> Result<Option<SubscriberRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            record_columns!(),
            " FROM subscribers WHERE id = $1 AND erased_at IS NULL"
        );
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(record).transpose()
    }

    /// Add a subscriber as an admin does: like [`Store::add_subscriber`],
    /// but an address erased at the person's request is refused. The check
    /// and the insert are one transaction, so an erasure cannot come between.
    pub async fn add_subscriber_unless_erased(
        &self,
        row: &SubscriberRow,
        now: DateTime<Utc>,
    ) -> Result<CheckedAdd, StoreError> {
        let mut tx = self.write().await?;
        if suppression::is_suppressed_on(&mut tx, &row.email).await? {
            return Ok(CheckedAdd::Erased);
        }
        let outcome = add_on(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(match outcome {
            AddOutcome::Added(s) => CheckedAdd::Added(s),
            AddOutcome::AlreadyThere(s) => CheckedAdd::AlreadyThere(s),
        })
    }

    /// Change a subscriber's name and/or status in one transaction (status
    /// times as [`Store::set_subscriber_status`] keeps them). Unknown or
    /// erased ids are [`StoreError::UnknownSubscriber`].
    pub async fn edit_subscriber(
        &self,
        id: i64,
        edit: &SubscriberEdit,
        now: DateTime<Utc>,
    ) -> Result<SubscriberRecord, StoreError> {
        let mut tx = self.write().await?;
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT email_key FROM subscribers WHERE id = $1 AND erased_at IS NULL")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((email_key,)) = exists else {
            return Err(unknown(id));
        };
        // A complaint suppresses the address like an erasure: no admin
        // puts it back on the list; only the person's confirmed sign-up.
        if matches!(edit.status, Some(Status::Active | Status::Pending))
            && suppression::is_key_suppressed(&mut tx, &email_key).await?
        {
            return Err(StoreError::Suppressed {
                who: format!("subscriber {id}"),
            });
        }
        if let Some(name) = &edit.name {
            sqlx::query(
                "UPDATE subscribers SET name = $1, updated_at = $2 WHERE id = $3 AND name IS NOT $1",
            )
            .bind(name.as_ref().map(SubscriberName::as_str))
            .bind(stamp(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(format) = edit.format {
            sqlx::query(
                "UPDATE subscribers SET format = $1, updated_at = $2 WHERE id = $3 AND format <> $1",
            )
            .bind(format.as_str())
            .bind(stamp(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(status) = edit.status {
            set_status_on(&mut *tx, id, status, now).await?;
        }
        let sql = concat!(
            "SELECT ",
            record_columns!(),
            " FROM subscribers WHERE id = $1"
        );
        let row = sqlx::query(sql).bind(id).fetch_one(&mut *tx).await?;
        let out = record(&row)?;
        tx.commit().await?;
        Ok(out)
    }

    /// Erase a subscriber at their request (see the module comment). The
    /// row stays, anonymized, with its delivery rows; queued deliveries are
    /// cancelled. Unknown or already erased ids are
    /// [`StoreError::UnknownSubscriber`].
    pub async fn erase_subscriber(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Erasure, StoreError> {
        let mut tx = self.write().await?;
        let key: Option<(String,)> =
            sqlx::query_as("SELECT email_key FROM subscribers WHERE id = $1 AND erased_at IS NULL")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((email_key,)) = key else {
            return Err(unknown(id));
        };
        let at = stamp(now);
        suppression::suppress(&mut tx, &email_key, &at, suppression::Reason::Erased).await?;
        // Returned mail tied to nobody (a mailto without a valid token, a
        // report naming no message of ours) may still quote the address:
        // its kept headers go too. (Rows tied to the subscriber are
        // cleared by migration 0007's trigger.)
        sqlx::query(
            "UPDATE inbound SET raw = NULL, origin = NULL, diagnostic = NULL
             WHERE subscriber_id IS NULL AND raw IS NOT NULL
               AND instr(lower(CAST(raw AS TEXT)), $1) > 0",
        )
        .bind(&email_key)
        .execute(&mut *tx)
        .await?;
        // Before the row is marked erased, so the trigger keeps this note.
        let cancelled = sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', last_reply = $1, updated_at = $2
             WHERE subscriber_id = $3 AND status = 'queued'",
        )
        .bind(ERASED_NOTE)
        .bind(ledger_time(now))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Open sign-up links go too: a confirmation keeps the name given
        // with the request, and using one would make the erased row active
        // again and bring that name back.
        sqlx::query("DELETE FROM confirmations WHERE subscriber_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // A fresh token: old confirm/unsubscribe links find nobody.
        let token = Token::generate().map_err(StoreError::Random)?;
        sqlx::query(
            "UPDATE subscribers SET
                email = 'erased-' || id || '@erased.invalid',
                email_key = 'erased:' || id,
                name = NULL,
                token = $1,
                unsubscribed_at = CASE WHEN status IN ('pending', 'active') THEN $2 ELSE unsubscribed_at END,
                status = CASE WHEN status IN ('pending', 'active') THEN 'unsubscribed' ELSE status END,
                erased_at = $2,
                updated_at = $2
             WHERE id = $3",
        )
        .bind(token.as_str())
        .bind(&at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Touching last_reply fires the trigger of migration 0005, which
        // keeps only the reply code: one definition of what stays.
        sqlx::query(
            "UPDATE deliveries SET last_reply = last_reply WHERE subscriber_id = $1 AND last_reply IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let (kept,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM deliveries WHERE subscriber_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        self.checkpoint().await;
        Ok(Erasure {
            id,
            deliveries_kept: u64::try_from(kept).unwrap_or(0),
            cancelled,
        })
    }

    /// [`Store::erase_subscriber`] by address (ignoring case), for the
    /// command line.
    pub async fn erase_subscriber_by_email(
        &self,
        email: &SubscriberEmail,
        now: DateTime<Utc>,
    ) -> Result<Erasure, StoreError> {
        let id: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM subscribers WHERE email_key = $1 AND erased_at IS NULL")
                .bind(email.key())
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some((id,)) => self.erase_subscriber(id, now).await,
            None => Err(StoreError::UnknownSubscriber {
                who: email.to_string(),
            }),
        }
    }

    /// Copy the WAL into the database file and truncate it, so pages that
    /// held erased data do not stay behind in the WAL. Best effort: a
    /// reader in the middle of a transaction can hold the WAL; the next
    /// checkpoint then finishes the job.
    async fn checkpoint(&self) {
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await
        {
            Ok((0, _, _)) => {}
            Ok(_) => tracing::info!("WAL checkpoint after erasure incomplete: a reader holds it"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint after erasure failed"),
        }
    }
}

#[cfg(test)]
mod tests;
