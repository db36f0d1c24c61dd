//! The delivery ledger: who gets which issue, and what happened.
//!
//! Correctness rests on three rules:
//! - publishing an issue and creating its rows is one transaction, and the
//!   rows are for the subscribers active at that moment (UNIQUE per issue and
//!   subscriber, so nothing is queued twice);
//! - a row is `sending` from before the SMTP transaction until its outcome is
//!   recorded, so a crash can only leave rows `sending`, which the next run
//!   sends again: duplicates are bounded by the messages in flight, and no
//!   message is ever skipped;
//! - outcomes are recorded in small batches, each one transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::time::{self, ledger_time};
use super::{Store, StoreError};
use crate::subscribers::MailFormat;

/// What publishing an issue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Rows queued for this many active subscribers.
    Now { recipients: u64 },
    /// It had been published before (at that time); nothing changed.
    Already,
    /// No such issue recorded.
    Unknown,
}

/// A row claimed for sending, with what the message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub delivery_id: i64,
    pub issue_slug: String,
    pub subscriber_id: i64,
    pub email: String,
    pub name: Option<String>,
    pub token: String,
    /// Multipart or plain text, as the subscriber chose.
    pub format: MailFormat,
    /// Including this one.
    pub attempts: u32,
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

/// Counts per status for one issue.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IssueDeliveries {
    pub slug: String,
    pub title: String,
    pub mail_state: String,
    pub published_at: Option<String>,
    pub note: Option<String>,
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    pub bounced: u64,
    pub cancelled: u64,
}

/// One delivery that did not (yet) succeed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryProblem {
    pub email: String,
    pub status: String,
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
    /// Publish: fix the recipients of `slug` as the subscribers active now.
    pub async fn publish_issue(
        &self,
        slug: &str,
        now: DateTime<Utc>,
    ) -> Result<Published, StoreError> {
        let now = ledger_time(now);
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT id, mail_state FROM issues WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(Published::Unknown);
        };
        let issue_id: i64 = row.get("id");
        if row.get::<String, _>("mail_state") == "published" {
            return Ok(Published::Already);
        }
        sqlx::query("UPDATE issues SET mail_state = 'published', published_at = $1, mail_note = NULL WHERE id = $2")
            .bind(&now)
            .bind(issue_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, next_attempt_at, created_at, updated_at)
             SELECT $1, id, 'queued', $2, $2, $2 FROM subscribers WHERE status = 'active'
             ON CONFLICT (issue_id, subscriber_id) DO NOTHING",
        )
        .bind(issue_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Published::Now {
            recipients: done.rows_affected(),
        })
    }

    /// Released issues neither published nor skipped yet: (slug, issue
    /// date, released at), oldest first. Drafts and held issues wait.
    pub async fn unpublished_issues(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT slug, issue_date, released_at FROM issues WHERE mail_state = 'unpublished' AND released_at IS NOT NULL ORDER BY issue_date, slug")
            .fetch_all(&self.pool)
            .await?)
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

    /// Claim up to `limit` due rows of active subscribers: they become
    /// `sending` (attempts + 1) before anything is sent.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
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
        .fetch_all(&self.pool)
        .await?;
        let mut claimed: Vec<Claimed> = rows
            .into_iter()
            .map(|r| Claimed {
                delivery_id: r.get("id"),
                issue_slug: r.get("slug"),
                subscriber_id: r.get("subscriber_id"),
                email: r.get("email"),
                name: r.get("name"),
                token: r.get("token"),
                format: if r.get::<bool, _>("text_only") {
                    MailFormat::Text
                } else {
                    MailFormat::Html
                },
                attempts: r.get::<i64, _>("attempts") as u32,
            })
            .collect();
        claimed.sort_by_key(|c| c.delivery_id);
        Ok(claimed)
    }

    /// Record outcomes, in one transaction. `results` are (claimed row,
    /// Message-ID, outcome); a retry goes back to `queued` after
    /// [`backoff`]`(retry_base, attempts)`, or fails once `max_attempts` are used.
    pub async fn record_attempts(
        &self,
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
                Attempt::Sent { reply } => ("sent", reply, stamp.clone()),
                Attempt::Retry { reply } if row.attempts < max_attempts => {
                    let at = now
                        + chrono::Duration::from_std(backoff(retry_base, row.attempts))
                            .unwrap_or_default();
                    ("queued", reply, ledger_time(at))
                }
                Attempt::Retry { reply } => ("failed", reply, stamp.clone()),
                Attempt::Failed { reply } => ("failed", reply, stamp.clone()),
                Attempt::Bounced { reply } => ("bounced", reply, stamp.clone()),
            };
            if status == "bounced" {
                bounced.push(row.subscriber_id);
            }
            let sent_at = (status == "sent").then_some(stamp.as_str());
            // Flat: six values per row (see the statement below).
            rows.extend([
                serde_json::json!(row.delivery_id),
                serde_json::json!(status),
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
            update.execute(&self.pool).await?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        update.execute(&mut *tx).await?;
        sqlx::query("UPDATE subscribers SET status = 'bounced', bounced_at = $1, updated_at = $1 WHERE id IN (SELECT value FROM json_each($2))")
            .bind(&stamp)
            .bind(serde_json::Value::from(bounced).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
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

    /// Counts per status for every issue (newest first), or for one.
    pub async fn delivery_counts(
        &self,
        slug: Option<&str>,
    ) -> Result<Vec<IssueDeliveries>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.slug, i.title, i.mail_state, i.published_at, i.mail_note,
                    COUNT(d.id) FILTER (WHERE d.status = 'queued')    AS queued,
                    COUNT(d.id) FILTER (WHERE d.status = 'sending')   AS sending,
                    COUNT(d.id) FILTER (WHERE d.status = 'sent')      AS sent,
                    COUNT(d.id) FILTER (WHERE d.status = 'failed')    AS failed,
                    COUNT(d.id) FILTER (WHERE d.status = 'bounced')   AS bounced,
                    COUNT(d.id) FILTER (WHERE d.status = 'cancelled') AS cancelled
             FROM issues i LEFT JOIN deliveries d ON d.issue_id = i.id
             WHERE $1 IS NULL OR i.slug = $1
             GROUP BY i.id ORDER BY i.issue_date DESC, i.slug",
        )
        .bind(slug)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| IssueDeliveries {
                slug: r.get("slug"),
                title: r.get("title"),
                mail_state: r.get("mail_state"),
                published_at: r.get("published_at"),
                note: r.get("mail_note"),
                queued: r.get::<i64, _>("queued") as u64,
                sending: r.get::<i64, _>("sending") as u64,
                sent: r.get::<i64, _>("sent") as u64,
                failed: r.get::<i64, _>("failed") as u64,
                bounced: r.get::<i64, _>("bounced") as u64,
                cancelled: r.get::<i64, _>("cancelled") as u64,
            })
            .collect())
    }

    /// Deliveries of one issue that are not `sent`, with the last reply.
    pub async fn delivery_problems(&self, slug: &str) -> Result<Vec<DeliveryProblem>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.email, d.status, d.attempts, d.last_reply, d.next_attempt_at, d.updated_at
             FROM deliveries d JOIN issues i ON i.id = d.issue_id JOIN subscribers s ON s.id = d.subscriber_id
             WHERE i.slug = $1 AND d.status != 'sent'
             ORDER BY d.status, s.email",
        )
        .bind(slug)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DeliveryProblem {
                email: r.get("email"),
                status: r.get("status"),
                attempts: r.get::<i64, _>("attempts") as u32,
                last_reply: r.get("last_reply"),
                next_attempt_at: r.get("next_attempt_at"),
                updated_at: r.get("updated_at"),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

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
        for (n, (email, status)) in subscribers.iter().enumerate() {
            sqlx::query(
                "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at) VALUES ($1, $2, $3, $4, 'now', 'now')",
            )
            .bind(email)
            .bind(email.to_lowercase())
            .bind(status)
            .bind(format!("token{n}"))
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
        let claimed = store.claim_due(t(0), 10).await.unwrap();
        assert_eq!(claimed.len(), 4);
        assert!(
            claimed
                .iter()
                .all(|c| c.attempts == 1 && c.issue_slug == "i1")
        );
        // Claimed rows are not claimed again.
        assert!(store.claim_due(t(0), 10).await.unwrap().is_empty());

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
        assert!(store.claim_due(t(0), 10).await.unwrap().is_empty());
        assert_eq!(
            store.next_due().await.unwrap().as_deref(),
            Some("2026-11-27T12:01:00.000Z")
        );
        // ...and fails for good when its attempts are used up.
        let again = store.claim_due(t(1), 10).await.unwrap();
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
                counts[0].sent,
                counts[0].failed,
                counts[0].bounced,
                counts[0].queued
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
    }

    #[tokio::test]
    async fn a_crash_leaves_rows_sending_and_the_next_run_sends_them_again() {
        let (_d, store) = store_with(&[("a@x.org", "active"), ("b@x.org", "active")]).await;
        store.publish_issue("i1", t(0)).await.unwrap();
        let claimed = store.claim_due(t(0), 1).await.unwrap();
        assert_eq!(claimed.len(), 1);
        // ... the process dies here ...
        assert_eq!(store.requeue_stale(t(5)).await.unwrap(), 1);
        let all = store.claim_due(t(5), 10).await.unwrap();
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
        let claimed = store.claim_due(t(0), 10).await.unwrap();
        assert_eq!(
            claimed.iter().map(|c| c.email.as_str()).collect::<Vec<_>>(),
            ["a@x.org"]
        );
        assert_eq!(store.cancel_inactive(t(0)).await.unwrap(), 1);
        let problems = store.delivery_problems("i1").await.unwrap();
        let b = problems.iter().find(|p| p.email == "b@x.org").unwrap();
        assert_eq!(
            (b.status.as_str(), b.last_reply.as_deref()),
            (
                "cancelled",
                Some("not sent: the subscriber is unsubscribed")
            )
        );
    }

    #[tokio::test]
    async fn a_claimed_row_carries_the_subscribers_mail_format() {
        let (_d, store) = store_with(&[("a@x.org", "active"), ("b@x.org", "active")]).await;
        sqlx::query("UPDATE subscribers SET format = 'text' WHERE email = 'b@x.org'")
            .execute(store.pool())
            .await
            .unwrap();
        store.publish_issue("i1", t(0)).await.unwrap();
        let claimed = store.claim_due(t(0), 10).await.unwrap();
        let formats: Vec<_> = claimed
            .iter()
            .map(|c| (c.email.as_str(), c.format))
            .collect();
        assert_eq!(
            formats,
            [("a@x.org", MailFormat::Html), ("b@x.org", MailFormat::Text)]
        );
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
