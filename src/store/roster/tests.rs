use chrono::TimeZone;

use super::*;
use crate::subscribers::csv;

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
}

fn row(email: &str, name: &str, status: Status) -> SubscriberRow {
    SubscriberRow {
        email: SubscriberEmail::parse(email).unwrap(),
        name: SubscriberName::parse(name).unwrap(),
        status,
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("gazette.db")).await.unwrap();
    (dir, store)
}

fn query(
    status: Option<Status>,
    search: Option<&str>,
    page: u32,
    per_page: u32,
) -> SubscriberQuery {
    SubscriberQuery {
        status,
        search: search.map(str::to_string),
        page,
        per_page,
    }
}

fn emails(p: &SubscriberPage) -> Vec<String> {
    p.items.iter().map(|s| s.email.to_string()).collect()
}

#[tokio::test]
async fn pages_filters_and_literal_unicode_search() {
    let (_d, store) = store().await;
    let mut rows: Vec<SubscriberRow> = (0..120)
        .map(|i| {
            let status = if i % 3 == 0 {
                Status::Pending
            } else {
                Status::Active
            };
            row(&format!("reader{i:03}@example.org"), "", status)
        })
        .collect();
    rows.push(row("zoe@example.net", "Zoë Álvarez", Status::Active));
    rows.push(row("under_score@example.net", "", Status::Bounced));
    rows.push(row(
        "per%cent@example.net",
        "100% Reader",
        Status::Unsubscribed,
    ));
    store.import_subscribers(&rows, t(1)).await.unwrap();

    let p1 = store
        .subscriber_page(&query(None, None, 1, 50))
        .await
        .unwrap();
    assert_eq!((p1.items.len(), p1.total), (50, 123));
    assert_eq!(p1.items[0].email.as_str(), "reader000@example.org");
    let p3 = store
        .subscriber_page(&query(None, None, 3, 50))
        .await
        .unwrap();
    assert_eq!(p3.items.len(), 23);
    assert_eq!(
        p3.items[22].email.as_str(),
        "per%cent@example.net",
        "sign-up order"
    );
    let p9 = store
        .subscriber_page(&query(None, None, 9, 50))
        .await
        .unwrap();
    assert_eq!(
        (p9.items.len(), p9.total),
        (0, 123),
        "past the end: empty, same total"
    );

    let pending = store
        .subscriber_page(&query(Some(Status::Pending), None, 1, 500))
        .await
        .unwrap();
    assert_eq!(pending.total, 40);
    assert!(pending.items.iter().all(|s| s.status == Status::Pending));

    // Case-insensitive, Unicode-aware, on address and name.
    let zoe = store
        .subscriber_page(&query(None, Some("ZOË"), 1, 50))
        .await
        .unwrap();
    assert_eq!(emails(&zoe), vec!["zoe@example.net"]);
    let zoe = store
        .subscriber_page(&query(None, Some("álVAREZ"), 1, 50))
        .await
        .unwrap();
    assert_eq!(zoe.total, 1);
    let by_addr = store
        .subscriber_page(&query(None, Some("READER11"), 1, 5))
        .await
        .unwrap();
    assert_eq!(by_addr.total, 10, "reader110..reader119");
    assert_eq!(by_addr.items.len(), 5);
    let page2 = store
        .subscriber_page(&query(None, Some("reader11"), 2, 5))
        .await
        .unwrap();
    assert_eq!(page2.items[0].email.as_str(), "reader115@example.org");
    // Wildcards are plain characters.
    let under = store
        .subscriber_page(&query(None, Some("_"), 1, 50))
        .await
        .unwrap();
    assert_eq!(emails(&under), vec!["under_score@example.net"]);
    let pct = store
        .subscriber_page(&query(None, Some("%"), 1, 50))
        .await
        .unwrap();
    assert_eq!(emails(&pct), vec!["per%cent@example.net"]);
    // Search and status together; blank search is no search.
    let both = store
        .subscriber_page(&query(Some(Status::Active), Some("reader00"), 1, 50))
        .await
        .unwrap();
    assert_eq!(
        emails(&both),
        vec![
            "reader001@example.org",
            "reader002@example.org",
            "reader004@example.org",
            "reader005@example.org",
            "reader007@example.org",
            "reader008@example.org"
        ]
    );
    let blank = store
        .subscriber_page(&query(None, Some("  "), 1, 50))
        .await
        .unwrap();
    assert_eq!(blank.total, 123);
}

#[tokio::test]
async fn edits_change_name_and_status_and_unknown_ids_are_errors() {
    let (_d, store) = store().await;
    let CheckedAdd::Added(ann) = store
        .add_subscriber_unless_erased(&row("ann@example.org", "Ann", Status::Pending), t(1))
        .await
        .unwrap()
    else {
        panic!("not added")
    };
    let edited = store
        .edit_subscriber(
            ann.id,
            &SubscriberEdit {
                name: Some(SubscriberName::parse("Ann Lee").unwrap()),
                status: Some(Status::Active),
            },
            t(2),
        )
        .await
        .unwrap();
    assert_eq!(edited.name.as_ref().map(|n| n.as_str()), Some("Ann Lee"));
    assert_eq!(edited.status, Status::Active);
    assert_eq!(edited.confirmed_at.as_deref(), Some("2026-11-02T12:00:00Z"));
    let edited = store
        .edit_subscriber(
            ann.id,
            &SubscriberEdit {
                name: Some(None),
                status: None,
            },
            t(3),
        )
        .await
        .unwrap();
    assert_eq!(edited.name, None);
    assert_eq!(edited.status, Status::Active, "status left as it was");
    assert_eq!(store.subscriber_record(ann.id).await.unwrap(), Some(edited));

    let e = store
        .edit_subscriber(999, &SubscriberEdit::default(), t(3))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownSubscriber { .. }), "{e}");
    assert_eq!(store.subscriber_record(999).await.unwrap(), None);

    let again = store
        .add_subscriber_unless_erased(&row("ANN@example.org", "", Status::Active), t(4))
        .await
        .unwrap();
    assert!(matches!(again, CheckedAdd::AlreadyThere(s) if s.id == ann.id));
}

/// A published issue with deliveries for every active subscriber.
async fn publish(store: &Store, slug: &str, at: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO issues (slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at)
         VALUES ($1, $1, '2026-11-20', 'h', 1, 'now', 'now')",
    )
    .bind(slug)
    .execute(store.pool())
    .await
    .unwrap();
    store.publish_issue(slug, at).await.unwrap();
}

fn counts(c: &super::super::IssueDeliveries) -> [u64; 6] {
    [
        c.queued,
        c.sending,
        c.sent,
        c.failed,
        c.bounced,
        c.cancelled,
    ]
}

#[tokio::test]
async fn erasure_anonymizes_keeps_counts_and_blocks_re_adding() {
    let (_d, store) = store().await;
    let rows = vec![
        row("Ann.Lee@Example.org", "Ann Lee", Status::Active),
        row("bob@example.org", "Bob", Status::Active),
    ];
    store.import_subscribers(&rows, t(1)).await.unwrap();
    let ann = store
        .subscriber_by_email(&rows[0].email)
        .await
        .unwrap()
        .unwrap();
    publish(&store, "i1", t(2)).await;
    // Ann's delivery of i1 failed with a reply that quotes her address.
    sqlx::query(
        "UPDATE deliveries SET status = 'failed', attempts = 1,
             last_reply = '550 5.1.1 <Ann.Lee@example.org>: mailbox unavailable'
         WHERE subscriber_id = $1",
    )
    .bind(ann.id)
    .execute(store.pool())
    .await
    .unwrap();
    publish(&store, "i2", t(3)).await; // queued for both
    let before = store.delivery_counts(None).await.unwrap();

    let erased = store.erase_subscriber(ann.id, t(4)).await.unwrap();
    assert_eq!(
        erased,
        Erasure {
            id: ann.id,
            deliveries_kept: 2,
            cancelled: 1
        }
    );

    // Counts per issue: same rows, the queued one now cancelled.
    let after = store.delivery_counts(None).await.unwrap();
    let by = |v: &[super::super::IssueDeliveries], s: &str| {
        counts(v.iter().find(|c| c.slug == s).unwrap())
    };
    assert_eq!(by(&after, "i1"), by(&before, "i1"), "history unchanged");
    assert_eq!(by(&before, "i2"), [2, 0, 0, 0, 0, 0]);
    assert_eq!(by(&after, "i2"), [1, 0, 0, 0, 0, 1]);
    let replies: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, last_reply FROM deliveries WHERE subscriber_id = $1 ORDER BY id",
    )
    .bind(ann.id)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        replies,
        vec![
            ("failed".into(), Some("550 (reply text erased)".into())),
            ("cancelled".into(), Some(ERASED_NOTE.into())),
        ]
    );
    // A reply recorded later (a message in flight at the erasure) is
    // stripped as well, by the trigger.
    sqlx::query("UPDATE deliveries SET last_reply = 'ok, queued as 7 for ann.lee@example.org' WHERE subscriber_id = $1")
        .bind(ann.id)
        .execute(store.pool())
        .await
        .unwrap();
    let (reply,): (String,) =
        sqlx::query_as("SELECT last_reply FROM deliveries WHERE subscriber_id = $1 LIMIT 1")
            .bind(ann.id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(reply, "(reply text erased)");

    // Gone from every view; the row is anonymized.
    assert_eq!(store.subscriber_record(ann.id).await.unwrap(), None);
    assert_eq!(
        store.subscriber_by_email(&rows[0].email).await.unwrap(),
        None
    );
    assert_eq!(store.subscriber_by_token(&ann.token).await.unwrap(), None);
    let listed = store.listed_emails().await;
    assert_eq!(listed, vec!["bob@example.org"]);
    assert_eq!(
        store.export_subscribers().await.unwrap(),
        vec![rows[1].clone()]
    );
    assert_eq!(store.subscriber_counts().await.unwrap().total(), 1);
    let page = store
        .subscriber_page(&query(None, Some("erased"), 1, 50))
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    let (email, name, status): (String, Option<String>, String) =
        sqlx::query_as("SELECT email, name, status FROM subscribers WHERE id = $1")
            .bind(ann.id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(email, format!("erased-{}@erased.invalid", ann.id));
    assert_eq!((name, status.as_str()), (None, "unsubscribed"));

    // Never again: not by id, not by edits, not by import or admin add, in any case.
    let e = store.erase_subscriber(ann.id, t(5)).await.unwrap_err();
    assert!(matches!(e, StoreError::UnknownSubscriber { .. }));
    let e = store
        .set_subscriber_status(ann.id, Status::Active, t(5))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownSubscriber { .. }), "{e}");
    assert!(
        store
            .is_suppressed(&SubscriberEmail::parse("ann.lee@EXAMPLE.org").unwrap())
            .await
            .unwrap()
    );
    assert!(!store.is_suppressed(&rows[1].email).await.unwrap());
    let again = store
        .add_subscriber_unless_erased(&row("ANN.LEE@example.org", "", Status::Active), t(5))
        .await
        .unwrap();
    assert_eq!(again, CheckedAdd::Erased);
    let report = store
        .import_subscribers(
            &[
                row("new@example.org", "", Status::Active),
                row("ann.lee@example.org", "Ann", Status::Active),
                row("bob@example.org", "", Status::Active),
            ],
            t(5),
        )
        .await
        .unwrap();
    assert_eq!((report.imported, report.already_subscribed), (1, 1));
    assert_eq!(report.erased, vec![1]);
    // The suppression list holds a hash, not the address.
    let (hash,): (String,) = sqlx::query_as("SELECT address_hash FROM suppressions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(hash.len(), 64);
    assert!(!hash.contains('@'));
}

#[tokio::test]
async fn erased_bytes_leave_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gazette.db");
    let store = Store::open(&db).await.unwrap();
    let address = "unique.reader.4711@example.org";
    let name = "Wilhelmina Quartermaine";
    let CheckedAdd::Added(s) = store
        .add_subscriber_unless_erased(&row(address, name, Status::Pending), t(1))
        .await
        .unwrap()
    else {
        panic!("not added")
    };
    // Rewrites leave old copies of a row in free space unless it is zeroed.
    store
        .set_subscriber_status(s.id, Status::Active, t(2))
        .await
        .unwrap();
    store
        .edit_subscriber(
            s.id,
            &SubscriberEdit {
                name: Some(SubscriberName::parse(&format!("{name} Jr.")).unwrap()),
                status: None,
            },
            t(3),
        )
        .await
        .unwrap();
    let filler: Vec<SubscriberRow> = (0..300)
        .map(|i| {
            row(
                &format!("other{i}@example.org"),
                "Someone Else",
                Status::Active,
            )
        })
        .collect();
    store.import_subscribers(&filler, t(3)).await.unwrap();
    let files = || -> Vec<u8> {
        let mut all = std::fs::read(&db).unwrap();
        all.extend(std::fs::read(db.with_extension("db-wal")).unwrap_or_default());
        all
    };
    let has = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    store.checkpoint().await;
    assert!(
        has(&files(), address),
        "the test must see the address first"
    );

    store.erase_subscriber(s.id, t(4)).await.unwrap();
    let bytes = files();
    assert!(!has(&bytes, address), "address left in the database files");
    assert!(!has(&bytes, name), "name left in the database files");
    assert!(!has(&bytes, "unique.reader.4711"), "local part left");
    store.close().await;
    let bytes = files();
    assert!(!has(&bytes, address) && !has(&bytes, name), "after close");
}

#[test]
fn export_of_the_remaining_rows_is_valid_csv() {
    // The erased placeholder never reaches an export, but if it did it would
    // still be a valid row: keep the placeholder a parseable address.
    let placeholder = SubscriberEmail::parse("erased-12@erased.invalid").unwrap();
    let mut out = Vec::new();
    csv::write(
        &mut out,
        &[SubscriberRow {
            email: placeholder,
            name: None,
            status: Status::Unsubscribed,
        }],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "email,name,status\nerased-12@erased.invalid,,unsubscribed\n"
    );
}
