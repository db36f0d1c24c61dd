//! What the admin console's dashboard reads: the list's growth month by
//! month, the latest issues with their delivery progress, what needs an
//! admin's attention, and the last cycle (kept in `meta`, so a restart of
//! `serve` does not forget a cycle that failed).
//!
//! Every query here must stay cheap on a list of a million subscribers and
//! a ledger of many millions of rows: growth reads one index range per
//! event column (migration 0010), the attention items read only the failed
//! rows (`deliveries_due` starts with the status) and the recent bounces,
//! and delivery progress is counted for the few latest issues only.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

use super::time::{self, stamp};
use super::{DeliveryCounts, IssueDeliveries, IssueRecord, MailState, Store, StoreError, column};

/// How many calendar months [`Store::growth`] covers, this one included.
pub const GROWTH_MONTHS: u32 = 12;

/// How far back [`Attention::recent_bounces`] looks.
pub const RECENT_BOUNCE_DAYS: i64 = 30;

/// The `meta` key of [`LastCycle`].
const LAST_CYCLE_KEY: &str = "last_cycle";

/// The grouped counts of [`Store::growth`], one per event column, each a
/// range of its index (migration 0010; sign-ups: `subscribers_by_created`)
/// bounded by `$1 <= t < $2`. Rows: (month `YYYY-MM`, events, events that
/// took someone who had confirmed off the active list).
const SIGNUPS_SQL: &str =
    "SELECT substr(created_at, 1, 7) AS month, COUNT(*) AS n, 0 AS left_active
     FROM subscribers WHERE created_at >= $1 AND created_at < $2 GROUP BY month";
const CONFIRMATIONS_SQL: &str =
    "SELECT substr(confirmed_at, 1, 7) AS month, COUNT(*) AS n, 0 AS left_active
     FROM subscribers WHERE confirmed_at >= $1 AND confirmed_at < $2 GROUP BY month";
const UNSUBSCRIBES_SQL: &str = "SELECT substr(unsubscribed_at, 1, 7) AS month, COUNT(*) AS n,
            COUNT(*) FILTER (WHERE confirmed_at IS NOT NULL AND confirmed_at <= unsubscribed_at) AS left_active
     FROM subscribers WHERE unsubscribed_at >= $1 AND unsubscribed_at < $2 GROUP BY month";
/// Of bounces, only a bounced *status* left the list for good: a subscriber
/// reactivated after a bounce keeps `bounced_at` but is active now, and the
/// walk back must not count them twice.
const BOUNCES_SQL: &str = "SELECT substr(bounced_at, 1, 7) AS month, COUNT(*) AS n,
            COUNT(*) FILTER (WHERE confirmed_at IS NOT NULL AND status = 'bounced') AS left_active
     FROM subscribers WHERE bounced_at >= $1 AND bounced_at < $2 GROUP BY month";

/// One calendar month (UTC) of the list's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MonthGrowth {
    /// `YYYY-MM`.
    pub month: String,
    /// Rows created in the month (sign-up form, import, admin add).
    pub signups: u64,
    /// Subscribers whose first confirmation fell in the month.
    pub confirmations: u64,
    /// Subscribers whose last unsubscribe fell in the month (erasing an
    /// active subscriber unsubscribes them too).
    pub unsubscribes: u64,
    /// Subscribers marked bounced in the month.
    pub bounces: u64,
    /// Active subscribers at the end of the month (for the current month:
    /// now). See [`Store::growth`] for how it is derived.
    pub active: u64,
}

/// Counts of one event column per month key, and of the events that took
/// someone who had confirmed out of the active list.
#[derive(Debug, Default)]
struct EventCounts {
    all: std::collections::HashMap<String, u64>,
    left_active: std::collections::HashMap<String, u64>,
}

/// The first day of the month `n` months before the one holding `now`.
fn month_start(now: DateTime<Utc>, back: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(now.year(), now.month(), 1)?.checked_sub_months(Months::new(back))
}

/// `2026-03-01` → `2026-03-01T00:00:00Z`: a stored stamp compares with it
/// as text (time.rs: one width, UTC).
fn month_stamp(day: NaiveDate) -> String {
    stamp(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// The walk back from now's active count (see [`Store::growth`]): pure, so
/// it is tested alone. `months` is oldest first, its event counts filled
/// in; `left` is, per month, the unsubscribes and bounces of people who had
/// confirmed.
fn walk_back(months: &mut [MonthGrowth], left: &[u64], active_now: u64) {
    let mut active = active_now as i64;
    for (m, left) in months.iter_mut().zip(left).rev() {
        m.active = active.max(0) as u64;
        // The end of the month before = this end, minus who joined the
        // active list during this month, plus who left it.
        active = active - m.confirmations as i64 + *left as i64;
    }
}

/// Where an issue stands, as the console names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum IssueState {
    /// `draft = true`: never mailed nor shown to readers.
    Draft,
    /// Waiting for its publication moment (RFC 3339 UTC, when known).
    Held { until: Option<String> },
    /// Released, and the next cycle publishes it.
    Due,
    /// Released when too old: mailed only when an admin says so.
    Skipped,
    /// Published, with messages still queued or being sent.
    Mailing,
    /// Published, nothing left to send.
    Done,
}

impl IssueState {
    /// From what the store has: the issue's release columns and its ledger.
    pub fn of(record: &IssueRecord, counts: &IssueDeliveries) -> IssueState {
        if record.draft {
            return IssueState::Draft;
        }
        if !record.released() {
            return IssueState::Held {
                until: record.release_at.clone(),
            };
        }
        match counts.mail_state {
            MailState::Unpublished => IssueState::Due,
            MailState::Skipped => IssueState::Skipped,
            MailState::Published if counts.counts.pending() > 0 => IssueState::Mailing,
            MailState::Published => IssueState::Done,
        }
    }
}

/// An issue with its ledger counts and state: a row of the issues list and
/// of the dashboard's latest issues.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssueProgress {
    pub slug: String,
    pub title: String,
    pub issue_date: String,
    pub state: IssueState,
    pub published_at: Option<String>,
    /// Why it was skipped, etc.
    pub note: Option<String>,
    /// Flat in templates: `issue.queued`, `issue.failed`, …
    #[serde(flatten)]
    pub counts: DeliveryCounts,
    /// [`DeliveryCounts::total`], for the templates.
    pub total: u64,
    /// [`DeliveryCounts::settled`], for the templates.
    pub settled: u64,
}

impl IssueProgress {
    pub fn new(record: &IssueRecord, counts: &IssueDeliveries) -> IssueProgress {
        let c = counts;
        IssueProgress {
            slug: record.slug.clone(),
            title: record.title.clone(),
            issue_date: record.issue_date.clone(),
            state: IssueState::of(record, counts),
            published_at: c.published_at.clone(),
            note: c.note.clone(),
            counts: c.counts,
            total: c.counts.total(),
            settled: c.counts.settled(),
        }
    }
}

/// An issue named in the attention list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssueNote {
    pub slug: String,
    pub title: String,
    /// Failed rows for [`Attention::failed`], else 0.
    pub count: u64,
    /// The hold's end for a held issue; the skip's reason for a skipped one.
    pub detail: Option<String>,
}

/// What needs an admin's attention.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attention {
    /// Issues with failed deliveries (a retry may get them out), newest first.
    pub failed: Vec<IssueNote>,
    /// Subscribers marked bounced in the last [`RECENT_BOUNCE_DAYS`] days.
    pub recent_bounces: u64,
    /// Held until a later moment, soonest first.
    pub held: Vec<IssueNote>,
    pub drafts: Vec<IssueNote>,
    /// Released but not mailed (too old then): an admin may mail them.
    pub skipped: Vec<IssueNote>,
}

impl Attention {
    pub fn is_empty(&self) -> bool {
        self.failed.is_empty()
            && self.recent_bounces == 0
            && self.held.is_empty()
            && self.drafts.is_empty()
            && self.skipped.is_empty()
    }
}

/// A delivery that failed or bounced, for an issue's console page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedDelivery {
    pub delivery_id: i64,
    pub subscriber_id: i64,
    /// `None` for an erased subscriber: the page says "erased subscriber".
    pub email: Option<String>,
    pub status: super::DeliveryStatus,
    pub attempts: u32,
    /// The server's reply (only its code for an erased subscriber).
    pub last_reply: Option<String>,
    pub updated_at: String,
}

/// How many failed and bounced deliveries an issue page lists at most; the
/// counts above the list say how many there are in all.
pub const FAILED_SHOWN: u32 = 500;

/// The last cycle `serve` or `gazette run` finished: when, whether it
/// worked, and what it did (the report's summary) or why it failed. Kept in
/// `meta`: the in-memory stats of `cycles::Cycles` start empty at every
/// restart, and a cycle that failed just before one must still show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastCycle {
    /// RFC 3339 UTC, seconds.
    pub finished_at: String,
    pub ok: bool,
    /// The summary, or the error.
    pub summary: String,
    /// What started it: "schedule", "api", "admin", "run"...
    pub reason: String,
}

impl Store {
    /// The list's last [`GROWTH_MONTHS`] calendar months (UTC), oldest
    /// first, the current one last.
    ///
    /// Sign-ups, confirmations, unsubscribes and bounces are counted from
    /// the subscriber rows' time stamps, one grouped index range per column
    /// (erased rows included: their events happened). The active count at
    /// each month's end is *derived* by walking back from the exact active
    /// count now: the end of a month is the end of the next one minus its
    /// confirmations plus its unsubscribes and bounces of people who had
    /// confirmed. It is not computed from the stamps directly because the
    /// rows keep only each event's latest time (a re-subscribe clears
    /// `unsubscribed_at`, `confirmed_at` is the first), so a direct count
    /// would be wrong *now* for anyone who came back after a bounce, and it
    /// would cost a scan of every row per month; the walk is exact at the
    /// right end and costs nothing beyond the event counts. Going back, it
    /// is an estimate where people left and came back (clamped at 0).
    #[tracing::instrument(skip(self))]
    pub async fn growth(&self, now: DateTime<Utc>) -> Result<Vec<MonthGrowth>, StoreError> {
        let (Some(first), Some(next)) = (
            month_start(now, GROWTH_MONTHS - 1),
            month_start(now, 0).and_then(|m| m.checked_add_months(Months::new(1))),
        ) else {
            // Only at the ends of chrono's calendar.
            return Ok(Vec::new());
        };
        let (from, to) = (month_stamp(first), month_stamp(next));
        let signups = self.month_counts(SIGNUPS_SQL, &from, &to).await?;
        let confirmations = self.month_counts(CONFIRMATIONS_SQL, &from, &to).await?;
        let unsubscribes = self.month_counts(UNSUBSCRIBES_SQL, &from, &to).await?;
        let bounces = self.month_counts(BOUNCES_SQL, &from, &to).await?;
        let active_now = self.subscriber_counts().await?.active;
        let mut months = Vec::with_capacity(GROWTH_MONTHS as usize);
        let mut left = Vec::with_capacity(GROWTH_MONTHS as usize);
        for back in (0..GROWTH_MONTHS).rev() {
            let Some(start) = month_start(now, back) else {
                continue;
            };
            let key = start.format("%Y-%m").to_string();
            let get = |c: &EventCounts| c.all.get(&key).copied().unwrap_or(0);
            let gone = |c: &EventCounts| c.left_active.get(&key).copied().unwrap_or(0);
            left.push(gone(&unsubscribes) + gone(&bounces));
            months.push(MonthGrowth {
                signups: get(&signups),
                confirmations: get(&confirmations),
                unsubscribes: get(&unsubscribes),
                bounces: get(&bounces),
                active: 0,
                month: key,
            });
        }
        walk_back(&mut months, &left, active_now);
        Ok(months)
    }

    /// One grouped count: rows of (month, n, left_active).
    async fn month_counts(
        &self,
        sql: &'static str,
        from: &str,
        to: &str,
    ) -> Result<EventCounts, StoreError> {
        let rows = sqlx::query(sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let mut out = EventCounts::default();
        for r in &rows {
            let month: String = column(r, "subscribers", &"(by month)", "month")?;
            let n: i64 = column(r, "subscribers", &month, "n")?;
            let left: i64 = column(r, "subscribers", &month, "left_active")?;
            out.all.insert(month.clone(), u64::try_from(n).unwrap_or(0));
            out.left_active
                .insert(month, u64::try_from(left).unwrap_or(0));
        }
        Ok(out)
    }

    /// Every recorded issue (drafts and held ones too), newest issue date
    /// first, with its ledger counts and state: the console's issues list.
    #[tracing::instrument(skip(self))]
    pub async fn issue_progress(&self) -> Result<Vec<IssueProgress>, StoreError> {
        let records = self.all_issue_records().await?;
        let counts = self.delivery_counts(None).await?;
        let by_slug: std::collections::HashMap<&str, &IssueDeliveries> =
            counts.iter().map(|c| (c.slug.as_str(), c)).collect();
        let none = IssueDeliveries::default();
        Ok(records
            .iter()
            .map(|r| IssueProgress::new(r, by_slug.get(r.slug.as_str()).copied().unwrap_or(&none)))
            .collect())
    }

    /// The `limit` latest issues (by issue date) with their progress,
    /// counting the ledger of those issues only: on a long archive the
    /// dashboard does not count every row ever sent.
    #[tracing::instrument(skip(self))]
    pub async fn latest_issues(&self, limit: usize) -> Result<Vec<IssueProgress>, StoreError> {
        let records = self.all_issue_records().await?;
        let mut out = Vec::with_capacity(limit.min(records.len()));
        for r in records.iter().take(limit) {
            let counts = self.delivery_counts(Some(&r.slug)).await?;
            let none = IssueDeliveries::default();
            out.push(IssueProgress::new(r, counts.first().unwrap_or(&none)));
        }
        Ok(out)
    }

    /// One issue with its progress, drafts and held ones too (`None` when
    /// no such issue is recorded).
    pub async fn issue_progress_of(&self, slug: &str) -> Result<Option<IssueProgress>, StoreError> {
        let records = self.all_issue_records().await?;
        let Some(record) = records.iter().find(|r| r.slug == slug) else {
            return Ok(None);
        };
        let counts = self.delivery_counts(Some(slug)).await?;
        let none = IssueDeliveries::default();
        Ok(Some(IssueProgress::new(
            record,
            counts.first().unwrap_or(&none),
        )))
    }

    /// What needs an admin's attention at `now` (the last cycle aside:
    /// [`Store::last_cycle`]).
    #[tracing::instrument(skip(self))]
    pub async fn attention(&self, now: DateTime<Utc>) -> Result<Attention, StoreError> {
        let mut out = Attention::default();
        // The counts triggers keep (migration 0013), not the failed rows.
        let rows = sqlx::query(
            "SELECT i.slug, i.title, c.n AS n
             FROM delivery_counts c JOIN issues i ON i.id = c.issue_id
             WHERE c.status = 'failed' AND c.n > 0
             ORDER BY i.issue_date DESC, i.slug",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let slug: String = column(r, "issues", &"?", "slug")?;
            let n: i64 = column(r, "issues", &slug, "n")?;
            out.failed.push(IssueNote {
                title: column(r, "issues", &slug, "title")?,
                count: u64::try_from(n).unwrap_or(0),
                detail: None,
                slug,
            });
        }
        let since = stamp(now - chrono::Duration::days(RECENT_BOUNCE_DAYS));
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM subscribers WHERE bounced_at >= $1 AND status = 'bounced' AND erased_at IS NULL",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        out.recent_bounces = u64::try_from(n).unwrap_or(0);

        let skipped = sqlx::query(
            "SELECT slug, title, mail_note FROM issues
             WHERE mail_state = 'skipped' AND released_at IS NOT NULL
             ORDER BY issue_date DESC, slug",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &skipped {
            let slug: String = column(r, "issues", &"?", "slug")?;
            out.skipped.push(IssueNote {
                title: column(r, "issues", &slug, "title")?,
                detail: column(r, "issues", &slug, "mail_note")?,
                count: 0,
                slug,
            });
        }
        for r in self.all_issue_records().await? {
            let note = |detail| IssueNote {
                slug: r.slug.clone(),
                title: r.title.clone(),
                count: 0,
                detail,
            };
            if r.draft {
                out.drafts.push(note(None));
            } else if !r.released() {
                out.held.push(note(r.release_at.clone()));
            }
        }
        // Soonest first; stamps are one width, so text order is time order.
        out.held.sort_by(|a, b| a.detail.cmp(&b.detail));
        Ok(out)
    }

    /// The failed and bounced deliveries of `slug`, most recent first, at
    /// most `limit`: what the console's issue page lists with the server's
    /// replies.
    pub async fn failed_deliveries(
        &self,
        slug: &str,
        limit: u32,
    ) -> Result<Vec<FailedDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, d.subscriber_id, d.status, d.attempts, d.last_reply, d.updated_at,
                    CASE WHEN s.erased_at IS NULL THEN s.email END AS email
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.issue_id = (SELECT id FROM issues WHERE slug = $1)
               AND d.status IN ('failed', 'bounced')
             ORDER BY d.updated_at DESC, d.id DESC LIMIT $2",
        )
        .bind(slug)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = column(r, "deliveries", &"?", "id")?;
                let status: String = column(r, "deliveries", &id, "status")?;
                let attempts: i64 = column(r, "deliveries", &id, "attempts")?;
                Ok(FailedDelivery {
                    delivery_id: id,
                    subscriber_id: column(r, "deliveries", &id, "subscriber_id")?,
                    email: column(r, "subscribers", &id, "email")?,
                    status: super::DeliveryStatus::parse(&status).ok_or_else(|| {
                        super::corrupt(
                            "deliveries",
                            &id,
                            "status",
                            &format!("unknown status {status:?}"),
                        )
                    })?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    last_reply: column(r, "deliveries", &id, "last_reply")?,
                    updated_at: column(r, "deliveries", &id, "updated_at")?,
                })
            })
            .collect()
    }

    /// Remember how the last cycle ended (see [`LastCycle`]).
    pub async fn set_last_cycle(&self, last: &LastCycle) -> Result<(), StoreError> {
        let json = serde_json::to_string(last).map_err(|e| StoreError::Corrupt {
            what: format!("the last cycle cannot be written as JSON: {e}"),
        })?;
        self.set_meta(LAST_CYCLE_KEY, &json).await
    }

    /// How the last cycle ended, if one was recorded. A value that does
    /// not read (a hand edit, an older format) is none, not an error: the
    /// next cycle writes it again.
    pub async fn last_cycle(&self) -> Result<Option<LastCycle>, StoreError> {
        Ok(self
            .meta(LAST_CYCLE_KEY)
            .await?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }
}

impl LastCycle {
    /// A record for a cycle that ended `at`.
    pub fn new(at: DateTime<Utc>, ok: bool, summary: String, reason: &str) -> LastCycle {
        LastCycle {
            finished_at: stamp(at),
            ok,
            summary,
            reason: reason.to_string(),
        }
    }

    /// `finished_at` as a time, when it reads.
    pub fn finished(&self) -> Option<DateTime<Utc>> {
        time::parse(&self.finished_at)
    }
}

#[cfg(test)]
mod tests;
