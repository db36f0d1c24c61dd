//! Returned mail in the store: one `inbound` row per processed message
//! (migration 0007) and its effect on the ledger and the list, in one
//! transaction, so a message either counts once with its effect or not at
//! all (a crash in between leaves it to be delivered or imported again).
//!
//! What a message *is* (`InboundKind`) is decided above, in `inbound`, from
//! its content and the address it came to; what it *does* depends on the
//! database (the delivery it names, the subscriber's status, their earlier
//! soft bounces) and is decided here.

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use super::suppression::{self, meta_key};
use super::time::{ledger_time, stamp};
use super::{Store, StoreError, column, corrupt};
use crate::subscribers::Token;

/// What a returned message was, as the `inbound.kind` column keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InboundKind {
    /// A permanent failure (5.x.x): the address is dead.
    Hard,
    /// A temporary failure (4.x.x) or a delay.
    Soft,
    /// A refusal about our sending side (5.7.x policy, 5.1.7/5.1.8): not
    /// held against the subscriber.
    Sender,
    /// An ARF abuse report: the person marked an issue as spam.
    Complaint,
    /// The List-Unsubscribe mailto address.
    Unsubscribe,
    /// An RFC 3834 auto-reply, out-of-office.
    AutoReply,
    /// Anything else: ignored.
    Other,
    /// To a TAG address whose MAC is wrong (import only: the listener
    /// refuses such an address at RCPT).
    Forged,
    /// A report whose message gazette cannot find (no or unknown Message-ID,
    /// a delivery row that is gone).
    Unmatched,
}

impl InboundKind {
    pub const ALL: [InboundKind; 9] = [
        InboundKind::Hard,
        InboundKind::Soft,
        InboundKind::Sender,
        InboundKind::Complaint,
        InboundKind::Unsubscribe,
        InboundKind::AutoReply,
        InboundKind::Other,
        InboundKind::Forged,
        InboundKind::Unmatched,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboundKind::Hard => "hard",
            InboundKind::Soft => "soft",
            InboundKind::Sender => "sender",
            InboundKind::Complaint => "complaint",
            InboundKind::Unsubscribe => "unsubscribe",
            InboundKind::AutoReply => "auto_reply",
            InboundKind::Other => "other",
            InboundKind::Forged => "forged",
            InboundKind::Unmatched => "unmatched",
        }
    }

    pub fn parse(s: &str) -> Option<InboundKind> {
        InboundKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for InboundKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a message reached gazette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Smtp,
    Import,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Smtp => "smtp",
            Via::Import => "import",
        }
    }
}

/// Whom a message is about, as its address or content names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// A digest's delivery row (its TAG: in the address, or in the
    /// quoted Message-ID).
    Delivery(i64),
    /// A sign-up mail's subscriber (its TAG).
    Subscriber(i64),
    /// A Message-ID quoted in a report to the plain bounce address that
    /// carries no TAG: one of the token-hash ids sent before migration
    /// 0012 (`legacy_message_id`), or none of ours.
    MessageId(String),
    /// The token of a mailto unsubscribe's subject.
    Token(Token),
    Nobody,
}

/// A processed message, before the store looks at whom it is about.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    pub via: Via,
    /// The SMTP peer, or the file (and line) it was read from.
    pub origin: Option<&'a str>,
    /// The address of ours it came to.
    pub recipient: Option<&'a str>,
    pub raw: &'a [u8],
    pub kind: InboundKind,
    pub about: About,
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote server's words.
    pub diagnostic: Option<String>,
    /// Why, in words, when the kind alone does not say (e.g. "no token").
    pub note: Option<String>,
}

/// The rules a bounce is weighed by (`[inbound]`).
#[derive(Debug, Clone, Copy)]
pub struct BounceRules {
    /// Soft bounces for this many different issues within `soft_window`
    /// mark the subscriber bounced; 0: never.
    pub soft_limit: u32,
    pub soft_window: chrono::Duration,
    /// Bytes of the raw message kept.
    pub keep_raw_bytes: usize,
}

/// What the store made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The `inbound` row (the earlier one for a duplicate).
    pub id: i64,
    pub kind: InboundKind,
    /// Seen before: nothing was changed this time.
    pub duplicate: bool,
    pub delivery_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    /// What gazette did, in words.
    pub decision: String,
}

/// One `inbound` row, for `inbound list`, the API and the console.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InboundRecord {
    pub id: i64,
    pub received_at: String,
    pub via: String,
    pub origin: Option<String>,
    pub recipient: Option<String>,
    pub kind: String,
    pub delivery_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    /// The subscriber's address, unless they were erased.
    pub email: Option<String>,
    pub issue: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub decision: String,
    pub size: i64,
    /// Whether the raw message is still kept.
    pub raw_kept: bool,
}

/// Which rows `inbound list` wants: newest first, `before` an id for the
/// next page.
#[derive(Debug, Clone, Default)]
pub struct InboundQuery {
    pub kind: Option<InboundKind>,
    pub subscriber_id: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// The longest diagnostic kept (characters), as a delivery's reply too.
const DIAGNOSTIC_CHARS: usize = 1000;
/// Most header bytes kept of a message that names nobody.
const UNTIED_HEADER_BYTES: usize = 8 * 1024;

/// The header block of `raw` (up to its first empty line), at most `max` bytes.
fn header_block(raw: &[u8], max: usize) -> &[u8] {
    let head = &raw[..raw.len().min(max)];
    let end = memchr::memmem::find(head, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| memchr::memmem::find(head, b"\n\n").map(|i| i + 1))
        .unwrap_or(head.len());
    &head[..end]
}

impl Store {
    /// The VERP MAC key (`meta.verp_key`, random per database).
    pub async fn verp_key(&self) -> Result<[u8; 32], StoreError> {
        let mut conn = self.pool.acquire().await?;
        meta_key(&mut conn, "verp_key").await
    }

    /// Record a processed message and apply its effect, in one transaction.
    /// A message seen before (same bytes) changes nothing and returns the
    /// earlier row.
    pub async fn record_inbound(
        &self,
        msg: &NewInbound<'_>,
        rules: &BounceRules,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let mut got = self
            .record_inbound_batch(std::slice::from_ref(msg), rules, now)
            .await?;
        got.pop().ok_or_else(|| StoreError::Corrupt {
            what: "a batch of one recorded nothing".into(),
        })
    }

    /// [`Store::record_inbound`] for several messages in one transaction,
    /// in order (a later one sees what an earlier one did): SQLite takes one
    /// writer at a time, and many small transactions from parallel SMTP
    /// sessions would wait on each other. All or nothing.
    pub async fn record_inbound_batch(
        &self,
        msgs: &[NewInbound<'_>],
        rules: &BounceRules,
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut tx = self.write().await?;
        let mut out = Vec::with_capacity(msgs.len());
        for msg in msgs {
            out.push(record_on(&mut tx, msg, rules, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The latest processed messages, newest first.
    pub async fn inbound_list(&self, q: &InboundQuery) -> Result<Vec<InboundRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.received_at, m.via, m.origin, m.recipient, m.kind, m.delivery_id,
                    m.subscriber_id, m.status, m.diagnostic, m.decision, m.size,
                    m.raw IS NOT NULL AS raw_kept,
                    CASE WHEN s.erased_at IS NULL THEN s.email END AS email, i.slug AS issue
             FROM inbound m
             LEFT JOIN subscribers s ON s.id = m.subscriber_id
             LEFT JOIN deliveries d ON d.id = m.delivery_id
             LEFT JOIN issues i ON i.id = d.issue_id
             WHERE ($1 IS NULL OR m.kind = $1)
               AND ($2 IS NULL OR m.subscriber_id = $2)
               AND ($3 IS NULL OR m.id < $3)
             ORDER BY m.id DESC
             LIMIT $4",
        )
        .bind(q.kind.map(InboundKind::as_str))
        .bind(q.subscriber_id)
        .bind(q.before)
        .bind(i64::from(q.limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(inbound_row).collect()
    }

    /// The raw message kept for row `id` (cut to `inbound.keep_raw_bytes`),
    /// `None` once expired or erased.
    pub async fn inbound_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT raw FROM inbound WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(raw,)| raw))
    }

    /// How many messages of each kind were processed (every kind, zeros too).
    pub async fn inbound_counts(&self) -> Result<Vec<(InboundKind, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, COUNT(*) FROM inbound GROUP BY kind")
                .fetch_all(&self.pool)
                .await?;
        let mut counts: Vec<(InboundKind, u64)> =
            InboundKind::ALL.iter().map(|&k| (k, 0)).collect();
        for (kind, n) in rows {
            let k = InboundKind::parse(&kind)
                .ok_or_else(|| corrupt("inbound", &"(count)", "kind", &kind))?;
            if let Some(slot) = counts.iter_mut().find(|(c, _)| *c == k) {
                slot.1 = n.max(0) as u64;
            }
        }
        Ok(counts)
    }

    /// Drop the raw messages received before `before` (their decisions
    /// stay). Returns how many were dropped.
    pub async fn expire_inbound_raw(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // A read first: a cycle with nothing to expire writes nothing.
        let due: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM inbound WHERE raw IS NOT NULL AND received_at < $1 LIMIT 1",
        )
        .bind(ledger_time(before))
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let done =
            sqlx::query("UPDATE inbound SET raw = NULL WHERE raw IS NOT NULL AND received_at < $1")
                .bind(ledger_time(before))
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// One message of a batch, in the batch's transaction.
async fn record_on(
    conn: &mut SqliteConnection,
    msg: &NewInbound<'_>,
    rules: &BounceRules,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let digest = blake3::hash(msg.raw).to_hex().to_string();
    if let Some(earlier) = earlier(&mut *conn, &digest).await? {
        return Ok(earlier);
    }
    let target = resolve(&mut *conn, &msg.about).await?;
    let mut kind = msg.kind;
    // A report we cannot tie to anyone is only counted.
    if target.subscriber_id.is_none()
        && matches!(
            kind,
            InboundKind::Hard | InboundKind::Soft | InboundKind::Sender | InboundKind::Complaint
        )
    {
        kind = InboundKind::Unmatched;
    }
    let diagnostic = msg
        .diagnostic
        .as_deref()
        .map(|d| d.chars().take(DIAGNOSTIC_CHARS).collect::<String>());
    let decision = apply(
        &mut *conn,
        kind,
        &target,
        msg,
        diagnostic.as_deref(),
        rules,
        now,
    )
    .await?;
    let erased = target.erased;
    // What is kept: the message (cut) when it is about a subscriber;
    // only its header block when it names nobody (anyone can send such
    // mail to the public addresses; the headers still say who sent it
    // and why it was ignored); nothing about an erased subscriber.
    let keep = if erased {
        None
    } else if target.subscriber_id.is_none() {
        Some(header_block(
            msg.raw,
            rules.keep_raw_bytes.min(UNTIED_HEADER_BYTES),
        ))
    } else {
        Some(&msg.raw[..msg.raw.len().min(rules.keep_raw_bytes)])
    };
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO inbound (received_at, via, origin, recipient, digest, kind, delivery_id,
                              subscriber_id, status, diagnostic, decision, size, raw)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id",
    )
    .bind(ledger_time(now))
    .bind(msg.via.as_str())
    .bind(if erased { None } else { msg.origin })
    .bind(if erased { None } else { msg.recipient })
    .bind(&digest)
    .bind(kind.as_str())
    .bind(target.delivery_id)
    .bind(target.subscriber_id)
    .bind(msg.status.as_deref())
    .bind(if erased { None } else { diagnostic.as_deref() })
    .bind(&decision)
    .bind(msg.raw.len() as i64)
    .bind(keep)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Recorded {
        id,
        kind,
        duplicate: false,
        delivery_id: target.delivery_id,
        subscriber_id: target.subscriber_id,
        decision,
    })
}

/// The row of a message already processed (same digest).
async fn earlier(
    conn: &mut SqliteConnection,
    digest: &str,
) -> Result<Option<Recorded>, StoreError> {
    type Row = (i64, String, Option<i64>, Option<i64>, String);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, kind, delivery_id, subscriber_id, decision FROM inbound WHERE digest = $1",
    )
    .bind(digest)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, kind, delivery_id, subscriber_id, decision)) = row else {
        return Ok(None);
    };
    let kind = InboundKind::parse(&kind).ok_or_else(|| corrupt("inbound", &id, "kind", &kind))?;
    Ok(Some(Recorded {
        id,
        kind,
        duplicate: true,
        delivery_id,
        subscriber_id,
        decision: format!("seen before (message {id}: {decision}); nothing changed"),
    }))
}

/// Whom a message is about, as the database knows them.
#[derive(Debug, Default)]
struct Target {
    delivery_id: Option<i64>,
    issue_id: Option<i64>,
    subscriber_id: Option<i64>,
    status: Option<String>,
    email_key: Option<String>,
    erased: bool,
}

async fn resolve(conn: &mut SqliteConnection, about: &About) -> Result<Target, StoreError> {
    type Row = (
        Option<i64>,
        Option<i64>,
        i64,
        String,
        String,
        Option<String>,
    );
    let row: Option<Row> = match about {
        About::Delivery(id) => {
            sqlx::query_as(
                "SELECT d.id, d.issue_id, s.id, s.status, s.email_key, s.erased_at
                 FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        }
        About::MessageId(mid) => {
            sqlx::query_as(
                "SELECT d.id, d.issue_id, s.id, s.status, s.email_key, s.erased_at
                 FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE d.legacy_message_id = $1 ORDER BY d.id DESC LIMIT 1",
            )
            .bind(mid)
            .fetch_optional(&mut *conn)
            .await?
        }
        About::Subscriber(id) => sqlx::query_as(
            "SELECT NULL, NULL, id, status, email_key, erased_at FROM subscribers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?,
        About::Token(token) => sqlx::query_as(
            "SELECT NULL, NULL, id, status, email_key, erased_at FROM subscribers WHERE token = $1",
        )
        .bind(token.as_str())
        .fetch_optional(&mut *conn)
        .await?,
        About::Nobody => None,
    };
    Ok(match row {
        None => Target::default(),
        Some((delivery_id, issue_id, subscriber_id, status, email_key, erased_at)) => Target {
            delivery_id,
            issue_id,
            subscriber_id: Some(subscriber_id),
            status: Some(status),
            email_key: Some(email_key),
            erased: erased_at.is_some(),
        },
    })
}

/// Apply a message's effect; returns the decision in words.
async fn apply(
    conn: &mut SqliteConnection,
    kind: InboundKind,
    target: &Target,
    msg: &NewInbound<'_>,
    diagnostic: Option<&str>,
    rules: &BounceRules,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let status = target.status.as_deref().unwrap_or("");
    let listed = matches!(status, "active" | "pending");
    Ok(match (kind, target.subscriber_id) {
        (InboundKind::Hard, Some(sid)) => {
            if let Some(did) = target.delivery_id {
                let reply = bounce_reply(msg.status.as_deref(), diagnostic);
                sqlx::query(
                    // 'sending' too: a DSN can come back before the send
                    // loop records its batch, whose update then leaves a
                    // row that is no longer 'sending' alone.
                    "UPDATE deliveries SET status = 'bounced', last_reply = $2, updated_at = $3
                     WHERE id = $1 AND status IN ('sending', 'sent', 'failed', 'bounced')",
                )
                .bind(did)
                .bind(reply)
                .bind(ledger_time(now))
                .execute(&mut *conn)
                .await?;
            }
            if listed {
                mark_bounced(conn, sid, now).await?;
                "hard bounce: subscriber marked bounced".to_string()
            } else {
                format!("hard bounce: subscriber already {status}, left as is")
            }
        }
        (InboundKind::Soft, Some(sid)) => {
            let issues = soft_issues(conn, sid, target.issue_id, rules, now).await?;
            if rules.soft_limit > 0 && issues >= u64::from(rules.soft_limit) && listed {
                mark_bounced(conn, sid, now).await?;
                format!(
                    "soft bounce ({issues} issues within {} days): subscriber marked bounced",
                    rules.soft_window.num_days()
                )
            } else {
                format!(
                    "soft bounce: recorded ({issues} of {} issues)",
                    rules.soft_limit
                )
            }
        }
        (InboundKind::Sender, Some(_)) => {
            "refused for a reason about our sending side: recorded, not held against the subscriber"
                .to_string()
        }
        (InboundKind::Complaint, Some(sid)) => {
            if listed || status == "bounced" {
                super::subscribers::set_status_on(
                    &mut *conn,
                    sid,
                    crate::subscribers::Status::Unsubscribed,
                    now,
                )
                .await?;
            }
            if let Some(key) = &target.email_key
                && !target.erased
            {
                suppression::suppress(conn, key, &stamp(now), suppression::Reason::Complaint)
                    .await?;
            }
            "complaint: unsubscribed, and suppressed against imports and admin adds until they sign up again"
                .to_string()
        }
        (InboundKind::Unsubscribe, Some(sid)) => {
            if listed {
                super::subscribers::set_status_on(
                    &mut *conn,
                    sid,
                    crate::subscribers::Status::Unsubscribed,
                    now,
                )
                .await?;
                sqlx::query("DELETE FROM confirmations WHERE subscriber_id = $1")
                    .bind(sid)
                    .execute(&mut *conn)
                    .await?;
                "unsubscribed by mail".to_string()
            } else {
                format!("unsubscribe by mail: subscriber already {status}, left as is")
            }
        }
        (InboundKind::Unsubscribe, None) => match &msg.note {
            Some(n) => format!("ignored: {n}"),
            None => "ignored: the token names nobody; nothing changed".to_string(),
        },
        (InboundKind::Unmatched, _) => msg
            .note
            .clone()
            .unwrap_or_else(|| "ignored: names no message of ours".to_string()),
        (InboundKind::Forged, _) => {
            "ignored: the address's tag is not one gazette made".to_string()
        }
        (InboundKind::AutoReply, _) => "ignored: an automatic reply".to_string(),
        (InboundKind::Other, _) => msg
            .note
            .clone()
            .map(|n| format!("ignored: {n}"))
            .unwrap_or_else(|| "ignored: not a report gazette acts on".to_string()),
        (_, None) => "ignored: names no message of ours".to_string(),
    })
}

/// A hard bounce's reply on its delivery row: "bounced: 5.1.1 <words>".
fn bounce_reply(status: Option<&str>, diagnostic: Option<&str>) -> String {
    let mut s = String::from("bounced:");
    for part in [status, diagnostic].into_iter().flatten() {
        s.push(' ');
        s.push_str(part);
    }
    s
}

async fn mark_bounced(
    conn: &mut SqliteConnection,
    sid: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::subscribers::set_status_on(&mut *conn, sid, crate::subscribers::Status::Bounced, now)
        .await?;
    Ok(())
}

/// Different issues this subscriber soft-bounced within the window,
/// counting the one being recorded; only since they were last marked
/// bounced, so that someone who signs up again starts from nothing.
async fn soft_issues(
    conn: &mut SqliteConnection,
    sid: i64,
    this_issue: Option<i64>,
    rules: &BounceRules,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let since = ledger_time(now - rules.soft_window);
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT issue) FROM (
             SELECT d.issue_id AS issue FROM inbound m JOIN deliveries d ON d.id = m.delivery_id
             JOIN subscribers s ON s.id = m.subscriber_id
             WHERE m.subscriber_id = $1 AND m.kind = 'soft' AND m.received_at >= $2
               AND (s.bounced_at IS NULL OR m.received_at > s.bounced_at)
             UNION SELECT $3 WHERE $3 IS NOT NULL)",
    )
    .bind(sid)
    .bind(since)
    .bind(this_issue)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n.max(0) as u64)
}

fn inbound_row(r: &SqliteRow) -> Result<InboundRecord, StoreError> {
    let id: i64 = column(r, "inbound", &"?", "id")?;
    let c = |name: &str| column::<Option<String>>(r, "inbound", &id, name);
    Ok(InboundRecord {
        id,
        received_at: column(r, "inbound", &id, "received_at")?,
        via: column(r, "inbound", &id, "via")?,
        origin: c("origin")?,
        recipient: c("recipient")?,
        kind: column(r, "inbound", &id, "kind")?,
        delivery_id: column(r, "inbound", &id, "delivery_id")?,
        subscriber_id: column(r, "inbound", &id, "subscriber_id")?,
        email: c("email")?,
        issue: c("issue")?,
        status: c("status")?,
        diagnostic: c("diagnostic")?,
        decision: column(r, "inbound", &id, "decision")?,
        size: column(r, "inbound", &id, "size")?,
        raw_kept: column(r, "inbound", &id, "raw_kept")?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::subscribers::{Status, SubscriberEmail};

    /// Three issues, subscribers a (active), b (active), c (unsubscribed),
    /// each with a sent delivery of every issue; ids: delivery = 10 *
    /// issue + subscriber.
    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        for i in 1..=3 {
            sqlx::query(
                "INSERT INTO issues (id, slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at)
                 VALUES ($1, 'i' || $1, 'Issue', '2026-11-20', 'h', 1, 'now', 'now')",
            )
            .bind(i)
            .execute(store.pool())
            .await
            .unwrap();
        }
        for (id, email, status) in [
            (1, "a@example.org", "active"),
            (2, "b@example.org", "active"),
            (3, "c@example.org", "unsubscribed"),
        ] {
            sqlx::query(
                "INSERT INTO subscribers (id, email, email_key, status, token, created_at, updated_at)
                 VALUES ($1, $2, $2, $3, $4, 'now', 'now')",
            )
            .bind(id)
            .bind(email)
            .bind(status)
            .bind(Token::generate().unwrap().as_str().to_string())
            .execute(store.pool())
            .await
            .unwrap();
            for issue in 1..=3 {
                sqlx::query(
                    "INSERT INTO deliveries (id, issue_id, subscriber_id, status, next_attempt_at, message_id, created_at, updated_at, last_reply)
                     VALUES ($1, $2, $3, 'sent', 'now', $4, 'now', 'now', '250 ok')",
                )
                .bind(issue * 10 + id)
                .bind(issue)
                .bind(id)
                .bind(format!("<i{issue}.s{id}@news.example.org>"))
                .execute(store.pool())
                .await
                .unwrap();
            }
        }
        (dir, store)
    }

    const RULES: BounceRules = BounceRules {
        soft_limit: 3,
        soft_window: chrono::Duration::days(90),
        keep_raw_bytes: 16,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    fn msg<'a>(raw: &'a [u8], kind: InboundKind, about: About) -> NewInbound<'a> {
        NewInbound {
            via: Via::Smtp,
            origin: Some("127.0.0.1:40000"),
            recipient: Some("bounces+d11-x@news.example.org"),
            raw,
            kind,
            about,
            status: Some("5.1.1".into()),
            diagnostic: Some("550 5.1.1 <a@example.org>: user unknown".into()),
            note: None,
        }
    }

    async fn status_of(store: &Store, id: i64) -> String {
        let (s,): (String,) = sqlx::query_as("SELECT status FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        s
    }

    async fn delivery(store: &Store, id: i64) -> (String, String) {
        sqlx::query_as("SELECT status, last_reply FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_hard_bounce_marks_the_delivery_and_the_subscriber_once() {
        let (_d, store) = store().await;
        let raw = b"a hard bounce, longer than sixteen bytes";
        let r = store
            .record_inbound(
                &msg(raw, InboundKind::Hard, About::Delivery(11)),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!((r.kind, r.duplicate), (InboundKind::Hard, false));
        assert_eq!((r.delivery_id, r.subscriber_id), (Some(11), Some(1)));
        assert_eq!(status_of(&store, 1).await, "bounced");
        let (st, reply) = delivery(&store, 11).await;
        assert_eq!(st, "bounced");
        assert_eq!(
            reply,
            "bounced: 5.1.1 550 5.1.1 <a@example.org>: user unknown"
        );
        assert_eq!(status_of(&store, 2).await, "active");
        // The raw message is kept, cut to keep_raw_bytes.
        assert_eq!(store.inbound_raw(r.id).await.unwrap().unwrap(), &raw[..16]);

        // The same bytes again: the earlier row, nothing new.
        let again = store
            .record_inbound(
                &msg(raw, InboundKind::Hard, About::Delivery(11)),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(again.id, r.id);
        let counts = store.inbound_counts().await.unwrap();
        assert!(counts.contains(&(InboundKind::Hard, 1)), "{counts:?}");

        let listed = store
            .inbound_list(&InboundQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].email.as_deref(), Some("a@example.org"));
        assert_eq!(listed[0].issue.as_deref(), Some("i1"));
        assert_eq!(listed[0].status.as_deref(), Some("5.1.1"));
    }

    #[tokio::test]
    async fn soft_bounces_count_issues_not_messages() {
        let (_d, store) = store().await;
        let soft = |raw: &'static [u8], delivery: i64| {
            let mut m = msg(raw, InboundKind::Soft, About::Delivery(delivery));
            m.status = Some("4.2.2".into());
            m
        };
        // Two soft bounces of issue 1 and one of issue 2: two issues.
        for (raw, d) in [(&b"s1"[..], 12), (b"s2", 12), (b"s3", 22)] {
            let r = store
                .record_inbound(&soft(raw, d), &RULES, now())
                .await
                .unwrap();
            assert_eq!(r.kind, InboundKind::Soft);
            assert_eq!(status_of(&store, 2).await, "active", "{}", r.decision);
        }
        // A third issue reaches the limit.
        let r = store
            .record_inbound(&soft(b"s4", 32), &RULES, now())
            .await
            .unwrap();
        assert!(r.decision.contains("marked bounced"), "{}", r.decision);
        assert_eq!(status_of(&store, 2).await, "bounced");
        // The delivery rows are not bounced by a soft bounce.
        assert_eq!(delivery(&store, 32).await.0, "sent");
        // Back on the list (a new sign-up): the count starts again, and
        // one more soft bounce does not mark them.
        store
            .set_subscriber_status(2, Status::Active, now() + chrono::Duration::seconds(1))
            .await
            .unwrap();
        let later = now() + chrono::Duration::seconds(2);
        let r = store
            .record_inbound(&soft(b"s5", 12), &RULES, later)
            .await
            .unwrap();
        assert_eq!(status_of(&store, 2).await, "active", "{}", r.decision);

        // Older than the window: not counted.
        let (_d2, store) = self::store().await;
        let long_ago = now() - chrono::Duration::days(100);
        store
            .record_inbound(&soft(b"o1", 12), &RULES, long_ago)
            .await
            .unwrap();
        store
            .record_inbound(&soft(b"o2", 22), &RULES, long_ago)
            .await
            .unwrap();
        let r = store
            .record_inbound(&soft(b"o3", 32), &RULES, now())
            .await
            .unwrap();
        assert_eq!(status_of(&store, 2).await, "active", "{}", r.decision);
        // A limit of 0 never marks anyone.
        let never = BounceRules {
            soft_limit: 0,
            ..RULES
        };
        for (raw, d) in [(&b"n1"[..], 11), (b"n2", 21), (b"n3", 31)] {
            store
                .record_inbound(&soft(raw, d), &never, now())
                .await
                .unwrap();
        }
        assert_eq!(status_of(&store, 1).await, "active");
    }

    #[tokio::test]
    async fn a_complaint_unsubscribes_and_suppresses_until_sign_up() {
        let (_d, store) = store().await;
        let r = store
            .record_inbound(
                &msg(b"arf", InboundKind::Complaint, About::Delivery(21)),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(r.kind, InboundKind::Complaint);
        assert_eq!(status_of(&store, 1).await, "unsubscribed");
        let email = SubscriberEmail::parse("A@example.org").unwrap();
        assert!(store.is_suppressed(&email).await.unwrap());
        // No admin edit brings them back.
        let back = crate::store::SubscriberEdit {
            name: None,
            status: Some(Status::Active),
            format: None,
        };
        let e = store.edit_subscriber(1, &back, now()).await.unwrap_err();
        assert!(matches!(e, StoreError::Suppressed { .. }), "{e}");
        assert_eq!(status_of(&store, 1).await, "unsubscribed");
    }

    #[tokio::test]
    async fn sender_side_refusals_and_unknown_targets_change_nobody() {
        let (_d, store) = store().await;
        let r = store
            .record_inbound(
                &msg(b"policy", InboundKind::Sender, About::Delivery(11)),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(r.kind, InboundKind::Sender);
        assert_eq!(status_of(&store, 1).await, "active");
        assert_eq!(delivery(&store, 11).await.0, "sent");
        for about in [
            About::Delivery(999),
            About::MessageId("<nobody@example.org>".into()),
            About::Nobody,
        ] {
            let raw = format!("{about:?}");
            let r = store
                .record_inbound(
                    &msg(raw.as_bytes(), InboundKind::Hard, about),
                    &RULES,
                    now(),
                )
                .await
                .unwrap();
            assert_eq!(r.kind, InboundKind::Unmatched);
        }
        // Since migration 0012 a Message-ID is found by the TAG in it
        // (`inbound::Processor`), not by the ledger: the one a row records
        // matches nothing here.
        let r = store
            .record_inbound(
                &msg(
                    b"by id",
                    InboundKind::Hard,
                    About::MessageId("<i3.s2@news.example.org>".into()),
                ),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(r.kind, InboundKind::Unmatched);
        assert_eq!(status_of(&store, 2).await, "active");
    }

    #[tokio::test]
    async fn a_report_about_a_row_sent_before_migration_12_still_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        // A database as the release before left it: a row sent with a
        // token-hash Message-ID, found then by `deliveries_by_message_id`.
        let old = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        super::super::MIGRATOR.run_to(11, &old).await.unwrap();
        let mid = "<2026-winter.9f8e7d6c5b4a3f2e@news.example.org>";
        sqlx::query(
            "INSERT INTO issues (id, slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at)
             VALUES (1, '2026-winter', 'Issue', '2026-11-20', 'h', 1, 'now', 'now')",
        )
        .execute(&old)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO subscribers (id, email, email_key, status, token, created_at, updated_at)
             VALUES (5, 'a@example.org', 'a@example.org', 'active', $1, 'now', 'now')",
        )
        .bind(Token::generate().unwrap().as_str().to_string())
        .execute(&old)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO deliveries (id, issue_id, subscriber_id, status, next_attempt_at, message_id, created_at, updated_at)
             VALUES (7, 1, 5, 'sent', 'now', $1, 'now', 'now')",
        )
        .bind(mid)
        .execute(&old)
        .await
        .unwrap();
        old.close().await;

        let store = Store::open(&path).await.unwrap();
        let r = store
            .record_inbound(
                &msg(b"late", InboundKind::Hard, About::MessageId(mid.into())),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(
            (r.kind, r.delivery_id, r.subscriber_id),
            (InboundKind::Hard, Some(7), Some(5))
        );
        assert_eq!(status_of(&store, 5).await, "bounced");
        // What was sent stays recorded; the lookup's index holds only the
        // older rows, and the random one over every Message-ID is gone.
        let (sent, legacy): (String, String) =
            sqlx::query_as("SELECT message_id, legacy_message_id FROM deliveries WHERE id = 7")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((sent.as_str(), legacy.as_str()), (mid, mid));
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' AND sql LIKE '%message_id%'",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            indexes,
            vec![("deliveries_by_legacy_message_id".to_string(),)]
        );
        // Migration 0013 counted the row already there (sent: 1), and the
        // bounce moved it (sent: 0 left, bounced: 1).
        let counts: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT issue_id, status, n FROM delivery_counts ORDER BY status")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            counts,
            vec![(1, "bounced".to_string(), 1), (1, "sent".to_string(), 0)]
        );
    }

    #[tokio::test]
    async fn a_mailto_unsubscribe_needs_the_token_and_erasure_takes_the_raw_copy() {
        let (_d, store) = store().await;
        let (token,): (String,) = sqlx::query_as("SELECT token FROM subscribers WHERE id = 2")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let token = Token::parse(&token).unwrap();
        let r = store
            .record_inbound(
                &msg(b"unsub", InboundKind::Unsubscribe, About::Token(token)),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(r.decision, "unsubscribed by mail");
        assert_eq!(status_of(&store, 2).await, "unsubscribed");
        let r = store
            .record_inbound(
                &msg(
                    b"bad token",
                    InboundKind::Unsubscribe,
                    About::Token(Token::generate().unwrap()),
                ),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(r.subscriber_id, None);
        assert!(r.decision.starts_with("ignored"), "{}", r.decision);

        // Erasure: the kept message and the words about the person go.
        let hard = store
            .record_inbound(
                &msg(b"hard for a", InboundKind::Hard, About::Delivery(11)),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert!(store.inbound_raw(hard.id).await.unwrap().is_some());
        store
            .set_subscriber_status(1, Status::Active, now())
            .await
            .unwrap();
        store
            .erase_subscriber_by_email(&SubscriberEmail::parse("a@example.org").unwrap(), now())
            .await
            .unwrap();
        assert_eq!(store.inbound_raw(hard.id).await.unwrap(), None);
        let listed = store
            .inbound_list(&InboundQuery {
                subscriber_id: Some(1),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed[0].diagnostic, None);
        assert_eq!(listed[0].email, None);
    }

    #[tokio::test]
    async fn mail_naming_nobody_keeps_its_headers_only_and_erasure_finds_them() {
        let (_d, store) = store().await;
        let raw = b"From: <b@example.org>\r\nSubject: unsubscribe\r\n\r\nplease take me off\r\n";
        let wide = BounceRules {
            keep_raw_bytes: 1 << 20,
            ..RULES
        };
        let r = store
            .record_inbound(
                &msg(raw, InboundKind::Unsubscribe, About::Nobody),
                &wide,
                now(),
            )
            .await
            .unwrap();
        let kept = store.inbound_raw(r.id).await.unwrap().unwrap();
        assert_eq!(kept, b"From: <b@example.org>\r\nSubject: unsubscribe\r\n");
        store
            .erase_subscriber_by_email(&SubscriberEmail::parse("B@example.org").unwrap(), now())
            .await
            .unwrap();
        assert_eq!(store.inbound_raw(r.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn raw_copies_expire_and_decisions_stay() {
        let (_d, store) = store().await;
        let old = store
            .record_inbound(
                &msg(b"old", InboundKind::AutoReply, About::Nobody),
                &RULES,
                now() - chrono::Duration::days(40),
            )
            .await
            .unwrap();
        let new = store
            .record_inbound(
                &msg(b"new", InboundKind::Other, About::Nobody),
                &RULES,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .expire_inbound_raw(now() - chrono::Duration::days(30))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.inbound_raw(old.id).await.unwrap(), None);
        assert!(store.inbound_raw(new.id).await.unwrap().is_some());
        assert_eq!(
            store
                .inbound_list(&InboundQuery {
                    limit: 5,
                    ..Default::default()
                })
                .await
                .unwrap()
                .len(),
            2
        );
    }
}
