//! Publishing: the moment an issue's recipients are fixed.
//!
//! Every issue ingest records starts `unpublished`. Once it is released (not
//! a draft, its publication moment passed; see [`crate::release`]) the cycle
//! either publishes it (one ledger row per subscriber active at that moment,
//! made in pieces: see [`Store::publish_issue`]) or, when the issue was already older than
//! `mail.skip_older_than` when it was released (an archive being imported,
//! say, or a draft left lying for months), skips it: it stays in the feeds
//! but is mailed only if an admin runs `gazette issues send SLUG`. The age
//! is measured at the release, not when ingest first saw the files: an
//! issue held or kept as a draft is not "seen" by anyone meanwhile.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::store::{Published, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    Published {
        slug: String,
        recipients: u64,
    },
    Skipped {
        slug: String,
        reason: String,
    },
    /// A row that does not read (a hand-edited date or release time): the
    /// issue stays unpublished, the others go on. The reason names it.
    Unreadable {
        reason: String,
    },
}

/// True when an issue dated `date` (midnight in `tz`) was more than `limit`
/// old at `first_seen`.
pub fn too_old(
    date: NaiveDate,
    tz: chrono_tz::Tz,
    first_seen: DateTime<Utc>,
    limit: Duration,
) -> bool {
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest());
    match (midnight, chrono::Duration::from_std(limit)) {
        (Some(m), Ok(limit)) => first_seen.signed_duration_since(m.with_timezone(&Utc)) > limit,
        _ => false,
    }
}

/// Publish or skip every unpublished issue.
pub async fn publish_pending(
    store: &Store,
    tz: chrono_tz::Tz,
    skip_older_than: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, StoreError> {
    // A publish cut short between pieces (a crash, a stop) goes on first.
    let mut decisions: Vec<Decision> = store
        .finish_publishing(now)
        .await?
        .into_iter()
        .map(|(slug, recipients)| Decision::Published { slug, recipients })
        .collect();
    for issue in store.unpublished_issues().await? {
        let issue = match issue {
            Ok(issue) => issue,
            Err(e @ StoreError::Corrupt { .. }) => {
                decisions.push(Decision::Unreadable {
                    reason: e.to_string(),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let (slug, date) = (issue.slug, issue.issue_date);
        if too_old(date, tz, issue.released_at, skip_older_than) {
            let days = skip_older_than.as_secs() / 86_400;
            let reason = format!(
                "dated {date}, already more than {days} days old (mail.skip_older_than) when gazette released it; `gazette issues send {slug}` mails it"
            );
            store.skip_issue(&slug, &reason).await?;
            decisions.push(Decision::Skipped { slug, reason });
            continue;
        }
        if let Published::Now { recipients } = store.publish_issue(&slug, now).await? {
            decisions.push(Decision::Published { slug, recipients });
        }
    }
    Ok(decisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_is_measured_from_local_midnight() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let thirty = Duration::from_secs(30 * 86_400);
        let ny = chrono_tz::America::New_York;
        // Midnight 1 Oct in New York is 04:00 UTC; 30 days later is 31 Oct 04:00 UTC.
        assert!(!too_old(
            d,
            ny,
            Utc.with_ymd_and_hms(2026, 10, 31, 3, 59, 0).unwrap(),
            thirty
        ));
        assert!(too_old(
            d,
            ny,
            Utc.with_ymd_and_hms(2026, 10, 31, 4, 1, 0).unwrap(),
            thirty
        ));
        // A future-dated issue is never too old.
        assert!(!too_old(
            d,
            ny,
            Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap(),
            thirty
        ));
    }

    fn issue(
        slug: &str,
        date: NaiveDate,
        publish_at: chrono::NaiveDateTime,
    ) -> crate::content::Issue {
        crate::content::Issue {
            slug: slug.into(),
            title: slug.into(),
            date,
            number: None,
            volume: None,
            summary: None,
            publication: None,
            dir: std::path::PathBuf::from(slug),
            articles: Vec::new(),
            hash: crate::content::ContentHash::of(slug.as_bytes()),
            draft: false,
            publish_at: Some(crate::content::PublishAt::Local(publish_at)),
        }
    }

    #[tokio::test]
    async fn held_issues_wait_and_their_age_is_measured_at_the_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        let tz = chrono_tz::UTC;
        let thirty = Duration::from_secs(30 * 86_400);
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let release = day(12, 15).and_hms_opt(0, 0, 0).unwrap();
        // Dated 1 November, held until 15 December: 44 days old when it
        // comes out, though only a day old when ingest first saw it.
        let stale = issue("stale", day(11, 1), release);
        // Dated the day before its release.
        let fresh = issue("fresh", day(12, 14), release);
        let issues = [stale, fresh];

        let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
        store.record_issues(&issues, tz, t0).await.unwrap();
        let d = publish_pending(&store, tz, thirty, t0).await.unwrap();
        assert!(d.is_empty(), "held issues are not published: {d:?}");

        let t1 = Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 1).unwrap();
        store.record_issues(&issues, tz, t1).await.unwrap();
        let mut d = publish_pending(&store, tz, thirty, t1).await.unwrap();
        d.sort_by_key(|d| format!("{d:?}"));
        assert!(
            matches!(&d[..], [Decision::Published { slug: p, .. }, Decision::Skipped { slug: s, reason }]
                if p == "fresh" && s == "stale" && reason.contains("when gazette released it")),
            "{d:?}"
        );
    }

    #[tokio::test]
    async fn an_issue_row_that_does_not_read_waits_named_and_the_others_go_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        let tz = chrono_tz::UTC;
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let midnight = |d| day(d).and_hms_opt(0, 0, 0).unwrap();
        let issues = [
            issue("first", day(1), midnight(1)),
            issue("second", day(2), midnight(2)),
        ];
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        store.record_issues(&issues, tz, now).await.unwrap();
        sqlx::query("UPDATE issues SET issue_date = 'someday' WHERE slug = 'first'")
            .execute(store.pool())
            .await
            .unwrap();
        let week = Duration::from_secs(7 * 86_400);
        let d = publish_pending(&store, tz, week, now).await.unwrap();
        assert!(
            matches!(&d[..], [Decision::Published { slug, .. }, Decision::Unreadable { reason }]
                if reason.contains("issues row first, column issue_date") && slug == "second"),
            "{d:?}"
        );
    }
}
