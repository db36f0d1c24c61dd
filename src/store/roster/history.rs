//! A subscriber's history for the console's subscriber page: every
//! delivery with the server's reply, and every change of status (recorded
//! by migration 0009's trigger, whichever path made it).

use sqlx::Row;

use super::unknown;
use crate::store::{DeliveryStatus, Store, StoreError, column, corrupt};
use crate::subscribers::Status;

/// One delivery of one issue to the subscriber.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryEntry {
    pub issue_slug: String,
    pub issue_title: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The server's last answer, or why it was not sent.
    pub last_reply: Option<String>,
    /// When the ledger row was made (the issue was published).
    pub created_at: String,
    pub sent_at: Option<String>,
    /// The last change of the row (an attempt, a cancellation).
    pub updated_at: String,
}

/// One change of status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusEvent {
    pub at: String,
    pub from: Status,
    pub to: Status,
}

/// Newest first, both lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SubscriberHistory {
    pub deliveries: Vec<DeliveryEntry>,
    pub events: Vec<StatusEvent>,
}

impl Store {
    /// The history of a listed subscriber; an unknown or erased id is
    /// [`StoreError::UnknownSubscriber`] (an erased row's history is only
    /// counts, kept for the issues, not a person's record).
    #[tracing::instrument(skip(self))]
    pub async fn subscriber_history(&self, id: i64) -> Result<SubscriberHistory, StoreError> {
        let mut tx = self.pool.begin().await?;
        let listed: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM subscribers WHERE id = $1 AND erased_at IS NULL")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if listed.is_none() {
            return Err(unknown(id));
        }
        // deliveries_subscriber (0003) finds the rows.
        let rows = sqlx::query(
            "SELECT d.id, i.slug, i.title, d.status, d.attempts, d.last_reply, d.created_at,
                    d.sent_at, d.updated_at
             FROM deliveries d JOIN issues i ON i.id = d.issue_id
             WHERE d.subscriber_id = $1 ORDER BY d.id DESC",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let mut deliveries = Vec::with_capacity(rows.len());
        for r in &rows {
            let did: i64 = r.try_get("id")?;
            let status: String = column(r, "deliveries", &did, "status")?;
            let attempts: i64 = column(r, "deliveries", &did, "attempts")?;
            deliveries.push(DeliveryEntry {
                issue_slug: column(r, "issues", &did, "slug")?,
                issue_title: column(r, "issues", &did, "title")?,
                status: DeliveryStatus::parse(&status).ok_or_else(|| {
                    corrupt("deliveries", &did, "status", &format!("unknown {status:?}"))
                })?,
                attempts: u32::try_from(attempts)
                    .map_err(|_| corrupt("deliveries", &did, "attempts", &format!("{attempts}")))?,
                last_reply: column(r, "deliveries", &did, "last_reply")?,
                created_at: column(r, "deliveries", &did, "created_at")?,
                sent_at: column(r, "deliveries", &did, "sent_at")?,
                updated_at: column(r, "deliveries", &did, "updated_at")?,
            });
        }
        let rows = sqlx::query(
            "SELECT id, at, from_status, to_status FROM subscriber_events
             WHERE subscriber_id = $1 ORDER BY id DESC",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let eid: i64 = r.try_get("id")?;
            let status = |name: &str| -> Result<Status, StoreError> {
                let s: String = column(r, "subscriber_events", &eid, name)?;
                Status::parse(&s).ok_or_else(|| {
                    corrupt("subscriber_events", &eid, name, &format!("unknown {s:?}"))
                })
            };
            events.push(StatusEvent {
                at: column(r, "subscriber_events", &eid, "at")?,
                from: status("from_status")?,
                to: status("to_status")?,
            });
        }
        tx.commit().await?;
        Ok(SubscriberHistory { deliveries, events })
    }
}
