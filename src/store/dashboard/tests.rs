use chrono::TimeZone;

use super::*;
use crate::store::{Attempt, DeliveryStatus};
use crate::subscribers::Token;

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("g.db")).await.unwrap();
    (dir, store)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 21, 0, 0).unwrap()
}

/// A subscriber row to seed, built from `Sub::active(joined)`: active and
/// confirmed the moment they joined, with the changes each test needs.
#[derive(Clone, Copy)]
struct Sub {
    status: &'static str,
    created: &'static str,
    confirmed: Option<&'static str>,
    unsubscribed: Option<&'static str>,
    bounced: Option<&'static str>,
}

impl Sub {
    fn active(created: &'static str) -> Sub {
        Sub {
            status: "active",
            created,
            confirmed: Some(created),
            unsubscribed: None,
            bounced: None,
        }
    }

    fn confirmed(self, at: &'static str) -> Sub {
        Sub {
            confirmed: Some(at),
            ..self
        }
    }

    fn unconfirmed(self) -> Sub {
        Sub {
            confirmed: None,
            ..self
        }
    }

    fn unsubscribed(self, at: &'static str) -> Sub {
        Sub {
            status: "unsubscribed",
            unsubscribed: Some(at),
            ..self
        }
    }

    fn bounced(self, at: &'static str) -> Sub {
        Sub {
            status: "bounced",
            bounced: Some(at),
            ..self
        }
    }

    /// Active again after a bounce: the stamp stays.
    fn reactivated(self) -> Sub {
        Sub {
            status: "active",
            ..self
        }
    }

    /// Insert `n` such subscribers (addresses `s{id}@example.org`).
    async fn add(self, store: &Store, n: usize) {
        for _ in 0..n {
            let id: (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM subscribers")
                .fetch_one(store.pool())
                .await
                .unwrap();
            let email = format!("s{}@example.org", id.0);
            sqlx::query(
                "INSERT INTO subscribers (email, email_key, status, token, created_at, confirmed_at, unsubscribed_at, bounced_at, updated_at)
                 VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $4)",
            )
            .bind(&email)
            .bind(self.status)
            .bind(Token::generate().unwrap().as_str().to_string())
            .bind(self.created)
            .bind(self.confirmed)
            .bind(self.unsubscribed)
            .bind(self.bounced)
            .execute(store.pool())
            .await
            .unwrap();
        }
    }
}

/// An issue row to seed, built from `Issue::out(slug, date)`: released at
/// 08:00 UTC of its date and not yet mailed, with the changes each test needs.
struct Issue {
    slug: &'static str,
    date: &'static str,
    release_at: String,
    draft: bool,
    released: bool,
    mail_state: &'static str,
}

impl Issue {
    fn out(slug: &'static str, date: &'static str) -> Issue {
        Issue {
            slug,
            date,
            release_at: format!("{date}T08:00:00Z"),
            draft: false,
            released: true,
            mail_state: "unpublished",
        }
    }

    fn held_until(self, at: &str) -> Issue {
        Issue {
            release_at: at.to_string(),
            released: false,
            ..self
        }
    }

    fn draft(self) -> Issue {
        Issue {
            draft: true,
            released: false,
            ..self
        }
    }

    /// Released when too old, as the cycle leaves it.
    fn skipped(self) -> Issue {
        Issue {
            mail_state: "skipped",
            ..self
        }
    }

    async fn insert(self, store: &Store) {
        sqlx::query(
            "INSERT INTO issues (slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at,
                                 draft, release_at, released_at, mail_state, mail_note)
             VALUES ($1, 'Title ' || $1, $2, 'h', 1, $3, $3, $4, $3, CASE WHEN $5 THEN $3 END, $6,
                     CASE WHEN $6 = 'skipped' THEN 'too old when released' END)",
        )
        .bind(self.slug)
        .bind(self.date)
        .bind(&self.release_at)
        .bind(self.draft)
        .bind(self.released)
        .bind(self.mail_state)
        .execute(store.pool())
        .await
        .unwrap();
    }
}

#[test]
fn the_walk_back_starts_at_now_and_never_goes_below_zero() {
    let mut months: Vec<MonthGrowth> = (1..=3)
        .map(|m| MonthGrowth {
            month: format!("2026-0{m}"),
            confirmations: [5, 10, 4][m - 1],
            ..Default::default()
        })
        .collect();
    // Now: 12 active; 2 left in month 3, 1 in month 2.
    walk_back(&mut months, &[0, 1, 2], 12);
    let active: Vec<u64> = months.iter().map(|m| m.active).collect();
    // End of 3 = 12; end of 2 = 12 - 4 + 2 = 10; end of 1 = 10 - 10 + 1 = 1.
    assert_eq!(active, [1, 10, 12]);

    // Data that does not add up (a hand edit): 0, not a wrapped u64.
    let mut months = vec![MonthGrowth::default(), MonthGrowth::default()];
    months[1].confirmations = 50;
    walk_back(&mut months, &[0, 0], 3);
    assert_eq!((months[0].active, months[1].active), (0, 3));
}

#[tokio::test]
async fn growth_counts_each_event_per_utc_month_and_derives_the_active_count() {
    let (_d, store) = open().await;
    // Older than the window: counted in neither month nor event.
    Sub::active("2025-11-30T23:59:59Z").add(&store, 3).await;
    // Joined in January, two confirmed in January, one in March.
    Sub::active("2026-01-15T10:00:00Z")
        .confirmed("2026-01-16T10:00:00Z")
        .add(&store, 2)
        .await;
    Sub::active("2026-01-31T23:59:59Z")
        .confirmed("2026-03-01T00:00:00Z")
        .add(&store, 1)
        .await;
    // Confirmed in February, unsubscribed in June.
    Sub::active("2026-02-01T00:00:00Z")
        .confirmed("2026-02-01T00:10:00Z")
        .unsubscribed("2026-06-10T00:00:00Z")
        .add(&store, 1)
        .await;
    // Pending that unsubscribed in June: never active, does not move the walk.
    Sub::active("2026-06-01T00:00:00Z")
        .unconfirmed()
        .unsubscribed("2026-06-02T00:00:00Z")
        .add(&store, 1)
        .await;
    // An old subscriber bounced in November.
    Sub::active("2025-05-01T00:00:00Z")
        .bounced("2026-11-20T00:00:00Z")
        .add(&store, 1)
        .await;
    // Bounced in October, reactivated since: active now, counted once.
    Sub::active("2025-05-01T00:00:00Z")
        .bounced("2026-10-05T00:00:00Z")
        .reactivated()
        .add(&store, 1)
        .await;
    // Erased (as roster.rs leaves them): still an unsubscribe in December.
    Sub::active("2026-12-01T08:00:00Z")
        .confirmed("2026-12-01T09:00:00Z")
        .unsubscribed("2026-12-02T08:00:00Z")
        .add(&store, 1)
        .await;
    sqlx::query("UPDATE subscribers SET erased_at = '2026-12-02T08:00:00Z' WHERE created_at = '2026-12-01T08:00:00Z'")
        .execute(store.pool())
        .await
        .unwrap();

    let months = store.growth(now()).await.unwrap();
    assert_eq!(months.len(), GROWTH_MONTHS as usize);
    let keys: Vec<&str> = months.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(keys.first(), Some(&"2026-01"));
    assert_eq!(keys.last(), Some(&"2026-12"), "the current month is last");
    let at = |key: &str| months.iter().find(|m| m.month == key).unwrap();
    let events = |key: &str| {
        let m = at(key);
        (m.signups, m.confirmations, m.unsubscribes, m.bounces)
    };
    assert_eq!(events("2026-01"), (3, 2, 0, 0));
    assert_eq!(events("2026-02"), (1, 1, 0, 0));
    assert_eq!(events("2026-03"), (0, 1, 0, 0));
    assert_eq!(events("2026-06"), (1, 0, 2, 0));
    assert_eq!(events("2026-10"), (0, 0, 0, 1));
    assert_eq!(events("2026-11"), (0, 0, 0, 1));
    assert_eq!(events("2026-12"), (1, 1, 1, 0));

    // Active now: 3 old + 3 of January + the reactivated one = 7.
    assert_eq!(store.subscriber_counts().await.unwrap().active, 7);
    let active: Vec<u64> = months.iter().map(|m| m.active).collect();
    // Walking back from 7 (now, December): December's confirmation and
    // its erasure cancel out → November ends at 7; November's bounce was
    // active before → October 8 (October's bounce was reactivated: not
    // counted); June's unsubscribe of a confirmed one → May 9 (the pending
    // one that left in June was never active); March's confirmation → end
    // of February 8; February's → January 7 (and 5 before January: the 3
    // old ones and the 2 that bounced later).
    assert_eq!(active, [7, 8, 9, 9, 9, 8, 8, 8, 8, 8, 7, 7]);
}

#[tokio::test]
async fn growth_reads_each_column_through_an_index_not_the_whole_table() {
    let (_d, store) = open().await;
    for sql in [
        SIGNUPS_SQL,
        CONFIRMATIONS_SQL,
        UNSUBSCRIBES_SQL,
        BOUNCES_SQL,
    ] {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind("2026-01-01T00:00:00Z")
                .bind("2027-01-01T00:00:00Z")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let detail: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
        assert!(
            detail
                .iter()
                .any(|d| d.contains("USING") && d.contains("INDEX subscribers_by_")),
            "{sql}: {detail:?}"
        );
        assert!(!detail.contains(&"SCAN subscribers"), "{sql}: {detail:?}");
    }
}

#[tokio::test]
async fn an_empty_list_has_twelve_empty_months() {
    let (_d, store) = open().await;
    let months = store.growth(now()).await.unwrap();
    assert_eq!(months.len(), 12);
    assert!(months.iter().all(|m| m
        == &MonthGrowth {
            month: m.month.clone(),
            ..Default::default()
        }));
    // Across a year's start: December 2025 .. November 2026.
    let nov = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
    let months = store.growth(nov).await.unwrap();
    assert_eq!(months[0].month, "2025-12");
    assert_eq!(months[11].month, "2026-11");
}

/// Publish `slug` to every active subscriber and give the rows outcomes in
/// order: "sent", "failed", "bounced", anything else stays queued.
async fn publish_with(store: &Store, slug: &str, outcomes: &[&str]) {
    store.publish_issue(slug, now()).await.unwrap();
    let claimed = store.claim_due(now(), 1000).await.unwrap().rows;
    let mut results = Vec::new();
    let mut unsent = Vec::new();
    for (c, o) in claimed
        .iter()
        .zip(outcomes.iter().chain(std::iter::repeat(&"")))
    {
        let attempt = match *o {
            "sent" => Attempt::Sent {
                reply: "250 ok".into(),
            },
            "failed" => Attempt::Failed {
                reply: "554 5.7.1 refused by policy".into(),
            },
            "bounced" => Attempt::Bounced {
                reply: "550 5.1.1 no such user".into(),
            },
            _ => {
                unsent.push(c.delivery_id);
                continue;
            }
        };
        results.push((
            c.clone(),
            format!("<{}@example.org>", c.delivery_id),
            attempt,
        ));
    }
    store
        .record_attempts(&results, now(), std::time::Duration::from_secs(60), 3)
        .await
        .unwrap();
    store.release_unsent(&unsent, now()).await.unwrap();
}

async fn four_active(store: &Store) {
    Sub::active("2026-01-01T00:00:00Z").add(store, 4).await;
}

#[tokio::test]
async fn issues_have_a_state_and_progress_and_the_latest_come_first() {
    let (_d, store) = open().await;
    four_active(&store).await;
    Issue::out("done", "2026-11-01").insert(&store).await;
    Issue::out("mailing", "2026-11-08").insert(&store).await;
    Issue::out("old", "2020-01-01")
        .skipped()
        .insert(&store)
        .await;
    Issue::out("due", "2026-11-15").insert(&store).await;
    Issue::out("held", "2026-12-24")
        .held_until("2026-12-24T17:00:00Z")
        .insert(&store)
        .await;
    Issue::out("draft", "2026-12-31")
        .draft()
        .insert(&store)
        .await;
    publish_with(&store, "done", &["sent", "sent", "failed", "bounced"]).await;
    // The bounced subscriber is not a recipient of the next one.
    publish_with(&store, "mailing", &["sent"]).await;

    let all = store.issue_progress().await.unwrap();
    let states: Vec<(&str, &IssueState)> =
        all.iter().map(|p| (p.slug.as_str(), &p.state)).collect();
    assert_eq!(
        states,
        [
            ("draft", &IssueState::Draft),
            (
                "held",
                &IssueState::Held {
                    until: Some("2026-12-24T17:00:00Z".into())
                }
            ),
            ("due", &IssueState::Due),
            ("mailing", &IssueState::Mailing),
            ("done", &IssueState::Done),
            ("old", &IssueState::Skipped),
        ]
    );
    let done = all.iter().find(|p| p.slug == "done").unwrap();
    assert_eq!(
        (
            done.counts.sent,
            done.counts.failed,
            done.counts.bounced,
            done.total,
            done.settled
        ),
        (2, 1, 1, 4, 4)
    );
    let mailing = all.iter().find(|p| p.slug == "mailing").unwrap();
    assert_eq!(
        (
            mailing.counts.sent,
            mailing.counts.queued,
            mailing.total,
            mailing.settled
        ),
        (1, 2, 3, 1)
    );
    assert_eq!(
        all.iter()
            .find(|p| p.slug == "old")
            .unwrap()
            .note
            .as_deref(),
        Some("too old when released")
    );
    // The state as a template sees it.
    assert_eq!(
        serde_json::to_value(&all[1].state).unwrap(),
        serde_json::json!({"state": "held", "until": "2026-12-24T17:00:00Z"})
    );

    let latest = store.latest_issues(3).await.unwrap();
    assert_eq!(
        latest,
        all[..3].to_vec(),
        "the same rows, counted per issue"
    );
    let latest = store.latest_issues(5).await.unwrap();
    assert_eq!(latest[3], *mailing);
    assert_eq!(
        store.issue_progress_of("done").await.unwrap().as_ref(),
        Some(done)
    );
    assert_eq!(store.issue_progress_of("nope").await.unwrap(), None);
}

#[tokio::test]
async fn attention_names_failures_recent_bounces_held_drafts_and_skipped_issues() {
    let (_d, store) = open().await;
    assert!(store.attention(now()).await.unwrap().is_empty());
    four_active(&store).await;
    Issue::out("a", "2026-11-01").insert(&store).await;
    Issue::out("old", "2020-01-01")
        .skipped()
        .insert(&store)
        .await;
    Issue::out("later", "2027-01-07")
        .held_until("2027-01-07T08:00:00Z")
        .insert(&store)
        .await;
    Issue::out("sooner", "2026-12-24")
        .held_until("2026-12-24T17:00:00Z")
        .insert(&store)
        .await;
    Issue::out("draft", "2026-12-31")
        .draft()
        .insert(&store)
        .await;
    publish_with(&store, "a", &["failed", "failed", "bounced", "sent"]).await;
    // A bounce from long ago is not recent.
    Sub::active("2025-01-01T00:00:00Z")
        .bounced("2025-06-01T00:00:00Z")
        .add(&store, 1)
        .await;

    let a = store.attention(now()).await.unwrap();
    assert!(!a.is_empty());
    assert_eq!(
        a.failed,
        [IssueNote {
            slug: "a".into(),
            title: "Title a".into(),
            count: 2,
            detail: None
        }]
    );
    assert_eq!(a.recent_bounces, 1);
    let held: Vec<_> = a
        .held
        .iter()
        .map(|n| (n.slug.as_str(), n.detail.as_deref()))
        .collect();
    assert_eq!(
        held,
        [
            ("sooner", Some("2026-12-24T17:00:00Z")),
            ("later", Some("2027-01-07T08:00:00Z"))
        ]
    );
    assert_eq!(a.drafts.len(), 1);
    assert_eq!(a.drafts[0].slug, "draft");
    assert_eq!(
        (a.skipped[0].slug.as_str(), a.skipped[0].detail.as_deref()),
        ("old", Some("too old when released"))
    );
}

#[tokio::test]
async fn a_retry_queues_the_failed_rows_of_active_subscribers_only() {
    let (_d, store) = open().await;
    four_active(&store).await;
    Issue::out("a", "2026-11-01").insert(&store).await;
    Issue::out("b", "2026-11-08").insert(&store).await;
    // Subscriber 1 and 2 fail, 3 bounces, 4 is sent.
    publish_with(&store, "a", &["failed", "failed", "bounced", "sent"]).await;
    publish_with(&store, "b", &["failed"]).await;
    // Subscriber 2 left since: their row stays failed.
    store
        .set_subscriber_status(2, crate::subscribers::Status::Unsubscribed, now())
        .await
        .unwrap();

    let later = now() + chrono::Duration::minutes(5);
    assert_eq!(store.retry_failed("a", later).await.unwrap(), 1);
    assert_eq!(store.retry_failed("nope", later).await.unwrap(), 0);
    let rows: Vec<(i64, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT d.subscriber_id, d.status, d.attempts, d.last_reply FROM deliveries d
         JOIN issues i ON i.id = d.issue_id WHERE i.slug = 'a' ORDER BY d.subscriber_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (
                1,
                "queued".into(),
                0,
                Some("554 5.7.1 refused by policy".into())
            ),
            (
                2,
                "failed".into(),
                1,
                Some("554 5.7.1 refused by policy".into())
            ),
            (
                3,
                "bounced".into(),
                1,
                Some("550 5.1.1 no such user".into())
            ),
            (4, "sent".into(), 1, Some("250 ok".into())),
        ]
    );
    // Issue b's failure is its own.
    let b = store.delivery_counts(Some("b")).await.unwrap();
    assert_eq!(b[0].counts.failed, 1);
    // The sender claims the retried row at once, as a first attempt (b's
    // rows left queued by `publish_with` come along).
    let claimed: Vec<_> = (store.claim_due(later, 10).await.unwrap().rows)
        .into_iter()
        .filter(|c| c.issue_slug == "a")
        .collect();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (
            claimed[0].issue_slug.as_str(),
            claimed[0].subscriber_id,
            claimed[0].attempts
        ),
        ("a", 1, 1)
    );
    let problems = store.delivery_problems("a").await.unwrap();
    assert!(problems.iter().any(|p| p.status == DeliveryStatus::Sending));
}

#[tokio::test]
async fn the_last_cycle_survives_a_reopen_and_a_bad_value_reads_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.last_cycle().await.unwrap(), None);
    let last = LastCycle::new(
        now(),
        false,
        "cannot take the run lock: <denied>".into(),
        "admin",
    );
    store.set_last_cycle(&last).await.unwrap();
    store.close().await;
    let store = Store::open(&path).await.unwrap();
    let read = store.last_cycle().await.unwrap().unwrap();
    assert_eq!(read, last);
    assert_eq!(read.finished(), Some(now()));
    assert_eq!(read.finished_at, "2026-12-02T21:00:00Z");
    store.set_meta("last_cycle", "{not json").await.unwrap();
    assert_eq!(store.last_cycle().await.unwrap(), None);
}

#[tokio::test]
async fn subscribers_are_counted_by_status_from_an_index() {
    let (_d, store) = open().await;
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT status, COUNT(*) AS n FROM subscribers WHERE erased_at IS NULL GROUP BY status",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|p| p.3.contains("subscribers_live_by_status")),
        "{plan:?}"
    );
}
