use chrono::TimeZone;

use super::*;
use crate::store::DeliveryStatus;
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

fn query(status: Option<Status>, search: Option<&str>, limit: u32) -> SubscriberQuery {
    SubscriberQuery {
        status,
        search: search.map(str::to_string),
        limit,
        ..SubscriberQuery::default()
    }
}

/// The counts the triggers keep are the counts of the rows.
async fn assert_counts_agree(store: &Store) {
    let kept: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, n FROM subscriber_counts WHERE n <> 0 ORDER BY status")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM subscribers WHERE erased_at IS NULL GROUP BY status ORDER BY status",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(kept, counted);
}

fn emails(p: &SubscriberPage) -> Vec<String> {
    p.items.iter().map(|s| s.email.to_string()).collect()
}

/// Every page of a query, following `next`: the ids in the order seen.
async fn walk(store: &Store, mut q: SubscriberQuery) -> Vec<i64> {
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let page = store.subscriber_page(&q).await.unwrap();
        assert!(page.items.len() <= q.limit as usize);
        ids.extend(page.items.iter().map(|s| s.id));
        match page.next {
            Some(next) => {
                assert_eq!(Some(next), page.items.last().map(|s| s.id));
                q.after = Some(next);
            }
            None => return ids,
        }
    }
    panic!("no last page");
}

/// The emails a search finds, over every page.
async fn found(store: &Store, status: Option<Status>, needle: &str) -> Vec<String> {
    let ids = walk(store, query(status, Some(needle), 2)).await;
    let mut out = Vec::new();
    for id in ids {
        out.push(
            store
                .subscriber_record(id)
                .await
                .unwrap()
                .unwrap()
                .email
                .to_string(),
        );
    }
    out
}

#[tokio::test]
async fn keyset_pages_lose_and_repeat_no_row_and_filter_by_status() {
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

    let p1 = store.subscriber_page(&query(None, None, 50)).await.unwrap();
    assert_eq!((p1.items.len(), p1.total), (50, Total::Exact(123)));
    assert_eq!(p1.items[0].email.as_str(), "reader000@example.org");
    assert_eq!(p1.next, Some(p1.items[49].id));
    let p2 = store
        .subscriber_page(&SubscriberQuery {
            after: p1.next,
            ..query(None, None, 50)
        })
        .await
        .unwrap();
    assert_eq!(p2.items[0].email.as_str(), "reader050@example.org");
    assert_eq!(p2.total, Total::Exact(123), "the total is of all pages");

    let all = walk(&store, query(None, None, 7)).await;
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(all, sorted, "id order, no repeats");
    assert_eq!(all.len(), 123, "no row lost");

    // An exact fit: the page that ends the list says so (no empty page after).
    let fit = store
        .subscriber_page(&query(None, None, 123))
        .await
        .unwrap();
    assert_eq!((fit.items.len(), fit.next), (123, None));
    // Past the end: empty, same total.
    let past = store
        .subscriber_page(&SubscriberQuery {
            after: all.last().copied(),
            ..query(None, None, 50)
        })
        .await
        .unwrap();
    assert_eq!(
        (past.items.len(), past.next, past.total),
        (0, None, Total::Exact(123))
    );
    // The API's page numbers: skip.
    let skipped = store
        .subscriber_page(&SubscriberQuery {
            skip: 100,
            ..query(None, None, 50)
        })
        .await
        .unwrap();
    assert_eq!(skipped.items.len(), 23);
    assert_eq!(skipped.items[22].email.as_str(), "per%cent@example.net");

    // A row added between two pages is neither repeated nor hides another.
    let first = store.subscriber_page(&query(None, None, 60)).await.unwrap();
    store
        .add_subscriber(&row("late@example.org", "", Status::Active), t(2))
        .await
        .unwrap();
    let rest = walk(
        &store,
        SubscriberQuery {
            after: first.next,
            ..query(None, None, 60)
        },
    )
    .await;
    assert_eq!(first.items.len() + rest.len(), 124);

    let pending = walk(&store, query(Some(Status::Pending), None, 9)).await;
    assert_eq!(pending.len(), 40);
    let p = store
        .subscriber_page(&query(Some(Status::Pending), None, 500))
        .await
        .unwrap();
    assert_eq!(p.total, Total::Exact(40));
    assert!(p.items.iter().all(|s| s.status == Status::Pending));
    let bounced = store
        .subscriber_page(&query(Some(Status::Bounced), None, 5))
        .await
        .unwrap();
    assert_eq!(emails(&bounced), vec!["under_score@example.net"]);
    assert_eq!(bounced.next, None);
    assert_counts_agree(&store).await;
}

#[tokio::test]
async fn search_any_case_beyond_ascii_literally_on_address_and_name() {
    let (_d, store) = store().await;
    let rows = vec![
        row("emile@example.org", "émile zola", Status::Active),
        row("ÉMILIE@example.org", "", Status::Pending),
        row("oster@example.net", "Kari øster", Status::Active),
        row("nikos@example.gr", "Νίκος Παπαδόπουλος", Status::Active),
        row("ivan@example.com", "Иван Петров", Status::Unsubscribed),
        row("quote@example.org", "Say \"hi\" now", Status::Active),
        row("percent@example.org", "100% Reader", Status::Active),
        row("under_score@example.net", "", Status::Bounced),
        row("plain@example.com", "Plain Reader", Status::Active),
    ];
    store.import_subscribers(&rows, t(1)).await.unwrap();

    // Trigram index (3+ characters), any case, Unicode.
    assert_eq!(
        found(&store, None, "ÉMILE").await,
        vec!["emile@example.org"]
    );
    assert_eq!(
        found(&store, None, "émili").await,
        vec!["ÉMILIE@example.org"]
    );
    assert_eq!(
        found(&store, None, "ØSTER").await,
        vec!["oster@example.net"]
    );
    assert_eq!(found(&store, None, "ΠΑΠΑΔ").await, vec!["nikos@example.gr"]);
    assert_eq!(
        found(&store, None, "петров").await,
        vec!["ivan@example.com"]
    );
    assert_eq!(
        found(&store, None, "  EXAMPLE.GR ").await,
        vec!["nikos@example.gr"]
    );
    // Diacritics are kept: "oster" is the address, not Kari øster's name.
    assert_eq!(
        found(&store, None, "OSTER").await,
        vec!["oster@example.net"]
    );
    // Query syntax is text: quotes, %, _, *, AND.
    assert_eq!(
        found(&store, None, "\"hi\"").await,
        vec!["quote@example.org"]
    );
    assert_eq!(
        found(&store, None, "y \"h").await,
        vec!["quote@example.org"]
    );
    assert_eq!(
        found(&store, None, "00%").await,
        vec!["percent@example.org"]
    );
    assert_eq!(
        found(&store, None, "r_s").await,
        vec!["under_score@example.net"]
    );
    assert!(found(&store, None, "r*s").await.is_empty());
    assert!(found(&store, None, "emile AND zola").await.is_empty());
    assert_eq!(
        found(&store, None, "reader").await,
        vec!["percent@example.org", "plain@example.com"]
    );
    // Short needles (no trigram): a scan, with the same rules.
    assert_eq!(found(&store, None, "%").await, vec!["percent@example.org"]);
    assert_eq!(
        found(&store, None, "_").await,
        vec!["under_score@example.net"]
    );
    assert_eq!(found(&store, None, "\"").await, vec!["quote@example.org"]);
    assert_eq!(found(&store, None, "Ø").await, vec!["oster@example.net"]);
    let em = vec!["emile@example.org", "ÉMILIE@example.org"];
    assert_eq!(found(&store, None, "ÉM").await, em);
    assert_eq!(found(&store, None, "ém").await, em);
    assert_eq!(found(&store, None, "иВ").await, vec!["ivan@example.com"]);
    assert_eq!(found(&store, None, "ΊΚ").await, vec!["nikos@example.gr"]);
    assert_eq!(
        found(&store, None, ".G").await,
        vec!["nikos@example.gr"],
        "on the address too"
    );
    // With a status.
    assert_eq!(
        found(&store, Some(Status::Pending), "EXAMPLE.ORG").await,
        vec!["ÉMILIE@example.org"]
    );
    assert!(found(&store, Some(Status::Active), "петр").await.is_empty());
    assert_eq!(
        found(&store, Some(Status::Active), "Z").await,
        vec!["emile@example.org"]
    );
    assert_eq!(
        found(&store, Some(Status::Unsubscribed), "ИВ").await,
        vec!["ivan@example.com"]
    );
    assert!(found(&store, Some(Status::Active), "ИВ").await.is_empty());
    // Counted exactly while few.
    let p = store
        .subscriber_page(&query(None, Some("example.org"), 2))
        .await
        .unwrap();
    assert_eq!((p.items.len(), p.total), (2, Total::Exact(4)));
    assert!(p.next.is_some());
    // Blank is no search.
    let blank = store
        .subscriber_page(&query(None, Some("  "), 50))
        .await
        .unwrap();
    assert_eq!(blank.total, Total::Exact(9));
}

#[tokio::test]
async fn a_search_counts_up_to_the_cap_and_pages_through_every_match() {
    let (_d, store) = store().await;
    let n = SEARCH_COUNT_CAP as usize + 30;
    let rows: Vec<SubscriberRow> = (0..n)
        .map(|i| {
            let status = if i % 2 == 0 {
                Status::Active
            } else {
                Status::Pending
            };
            row(
                &format!("r{i:05}@example.org"),
                &format!("Ödön {i}"),
                status,
            )
        })
        .collect();
    store.import_subscribers(&rows, t(1)).await.unwrap();
    let p = store
        .subscriber_page(&query(None, Some("ÖDÖN"), 50))
        .await
        .unwrap();
    assert_eq!(p.total, Total::AtLeast(SEARCH_COUNT_CAP));
    assert_eq!(p.items.len(), 50);
    let short = store
        .subscriber_page(&query(None, Some("Ö"), 50))
        .await
        .unwrap();
    // No index for one letter: the count stops at the page it read...
    assert_eq!(short.total, Total::AtLeast(50));
    // ...and is exact when the page holds every match.
    let few = store
        .subscriber_page(&query(None, Some("99"), 50))
        .await
        .unwrap();
    let expected = (0..n)
        .filter(|i| format!("r{i:05} Ödön {i}").contains("99"))
        .count();
    assert!(expected > 1 && expected < 50, "{expected}");
    assert_eq!(few.total, Total::Exact(expected as u64));
    assert_eq!(few.items.len(), expected);
    assert_eq!(few.next, None);
    // Every match, once, in id order, on both paths.
    for needle in ["ödön", "ö"] {
        let ids = walk(&store, query(None, Some(needle), 97)).await;
        assert_eq!(ids.len(), n, "{needle}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{needle}");
    }
    let active = walk(&store, query(Some(Status::Active), Some("ÖDÖN 1"), 10)).await;
    // "Ödön 1", "Ödön 1x", "Ödön 1xx", "Ödön 1xxx" with an even number.
    let expected = (0..n)
        .filter(|i| i % 2 == 0 && i.to_string().starts_with('1'))
        .count();
    assert_eq!(active.len(), expected);
    let p = store
        .subscriber_page(&query(Some(Status::Active), Some("ÖDÖN 1"), 10))
        .await
        .unwrap();
    assert_eq!(p.total, Total::Exact(expected as u64));
}

#[tokio::test]
async fn an_erased_address_leaves_no_trigram_behind() {
    let (_d, store) = store().await;
    let address = "zq9w@example.org";
    let CheckedAdd::Added(s) = store
        .add_subscriber_unless_erased(&row(address, "Ůrsula Þorvaldsdottir", Status::Active), t(1))
        .await
        .unwrap()
    else {
        panic!("not added")
    };
    let filler: Vec<SubscriberRow> = (0..50)
        .map(|i| row(&format!("other{i}@example.org"), "Someone", Status::Active))
        .collect();
    store.import_subscribers(&filler, t(1)).await.unwrap();
    // The index pages hold these trigrams whole: index terms are sorted
    // and stored as the bytes they share with the term before plus the
    // rest, and no other term starts with the same byte as each of these.
    let in_index = |needle: &'static str| {
        let store = store.clone();
        async move {
            let blobs: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT block FROM subscribers_fts_data")
                .fetch_all(store.pool())
                .await
                .unwrap();
            blobs
                .iter()
                .any(|(b,)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        }
    };
    let trigrams = ["zq9", "q9w", "ůrs", "þor"];
    for t in trigrams {
        assert!(in_index(t).await, "the test must see {t} first");
    }
    assert_eq!(found(&store, None, "ZQ9").await, vec![address]);

    store.erase_subscriber(s.id, t(2)).await.unwrap();
    for needle in ["zq9w", "ZQ", "9w@", "ůrsula", "ÞORVALD", "dottir"] {
        assert!(found(&store, None, needle).await.is_empty(), "{needle}");
    }
    for t in trigrams {
        assert!(!in_index(t).await, "{t} left in the FTS pages");
    }
    // The placeholder is indexed, but an erased row is never listed.
    assert!(found(&store, None, "erased").await.is_empty());
    assert_eq!(
        store
            .subscriber_page(&query(None, Some("example.org"), 100))
            .await
            .unwrap()
            .total,
        Total::Exact(50)
    );
    assert_counts_agree(&store).await;
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
                format: Some(MailFormat::Text),
            },
            t(2),
        )
        .await
        .unwrap();
    assert_eq!(edited.name.as_ref().map(|n| n.as_str()), Some("Ann Lee"));
    assert_eq!(edited.status, Status::Active);
    assert_eq!(edited.format, MailFormat::Text);
    assert_eq!(edited.confirmed_at.as_deref(), Some("2026-11-02T12:00:00Z"));
    let edited = store
        .edit_subscriber(
            ann.id,
            &SubscriberEdit {
                name: Some(None),
                status: None,
                format: None,
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
    c.counts.by_status().map(|(_, n)| n)
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
        .subscriber_page(&query(None, Some("erased"), 50))
        .await
        .unwrap();
    assert_eq!(page.total, Total::Exact(0));
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
                format: None,
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

#[tokio::test]
async fn every_status_change_is_an_event_and_history_shows_each_delivery() {
    let (_d, store) = store().await;
    let CheckedAdd::Added(ann) = store
        .add_subscriber_unless_erased(&row("ann@example.org", "Ann", Status::Pending), t(1))
        .await
        .unwrap()
    else {
        panic!("not added")
    };
    store
        .import_subscribers(&[row("bob@example.org", "", Status::Active)], t(1))
        .await
        .unwrap();
    // Each path that changes a status: an admin edit, the store's status
    // change (sign-up, links, bounces use it), a hand-made UPDATE.
    store
        .edit_subscriber(
            ann.id,
            &SubscriberEdit {
                status: Some(Status::Active),
                ..SubscriberEdit::default()
            },
            t(2),
        )
        .await
        .unwrap();
    publish(&store, "first-issue", t(3)).await;
    sqlx::query(
        "UPDATE deliveries SET status = 'failed', attempts = 3,
             last_reply = '550 5.1.1 mailbox unavailable', updated_at = 'x'
         WHERE subscriber_id = $1",
    )
    .bind(ann.id)
    .execute(store.pool())
    .await
    .unwrap();
    store
        .set_subscriber_status(ann.id, Status::Bounced, t(4))
        .await
        .unwrap();
    // The same status again, and edits of other columns, are no events.
    store
        .set_subscriber_status(ann.id, Status::Bounced, t(5))
        .await
        .unwrap();
    store
        .edit_subscriber(
            ann.id,
            &SubscriberEdit {
                name: Some(None),
                format: Some(MailFormat::Text),
                ..SubscriberEdit::default()
            },
            t(5),
        )
        .await
        .unwrap();
    sqlx::query("UPDATE subscribers SET status = 'active' WHERE id = $1")
        .bind(ann.id)
        .execute(store.pool())
        .await
        .unwrap();
    publish(&store, "second-issue", t(6)).await;

    let h = store.subscriber_history(ann.id).await.unwrap();
    let steps: Vec<(Status, Status)> = h.events.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        steps,
        vec![
            (Status::Bounced, Status::Active),
            (Status::Active, Status::Bounced),
            (Status::Pending, Status::Active),
        ],
        "newest first"
    );
    for e in &h.events {
        assert!(
            e.at.len() == 20 && e.at.ends_with('Z') && crate::store::time::parse(&e.at).is_some(),
            "{e:?}"
        );
    }
    let ds: Vec<(&str, DeliveryStatus, u32, Option<&str>)> = h
        .deliveries
        .iter()
        .map(|d| {
            (
                d.issue_slug.as_str(),
                d.status,
                d.attempts,
                d.last_reply.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        ds,
        vec![
            ("second-issue", DeliveryStatus::Queued, 0, None),
            (
                "first-issue",
                DeliveryStatus::Failed,
                3,
                Some("550 5.1.1 mailbox unavailable")
            ),
        ]
    );
    assert_eq!(h.deliveries[1].issue_title, "first-issue");
    // Bob's history is his own.
    let bob = store
        .subscriber_by_email(&SubscriberEmail::parse("bob@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    let hb = store.subscriber_history(bob.id).await.unwrap();
    assert_eq!((hb.deliveries.len(), hb.events.len()), (2, 0));

    // Unknown and erased: no history.
    let e = store.subscriber_history(9999).await.unwrap_err();
    assert!(matches!(e, StoreError::UnknownSubscriber { .. }), "{e}");
    store.erase_subscriber(ann.id, t(7)).await.unwrap();
    let e = store.subscriber_history(ann.id).await.unwrap_err();
    assert!(matches!(e, StoreError::UnknownSubscriber { .. }), "{e}");
    assert_counts_agree(&store).await;
    // A row deleted by hand leaves the counts too.
    sqlx::query("DELETE FROM deliveries WHERE subscriber_id = $1")
        .bind(bob.id)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM subscribers WHERE id = $1")
        .bind(bob.id)
        .execute(store.pool())
        .await
        .unwrap();
    assert_counts_agree(&store).await;
    assert_eq!(store.subscriber_counts().await.unwrap().total(), 0);
}

#[tokio::test]
async fn an_export_in_pieces_is_the_whole_export() {
    let (_d, store) = store().await;
    let rows: Vec<SubscriberRow> = (0..23)
        .map(|i| {
            row(
                &format!("r{i}@example.org"),
                &format!("Ödön, \"{i}\""),
                Status::Active,
            )
        })
        .collect();
    store.import_subscribers(&rows, t(1)).await.unwrap();
    let gone = store
        .subscriber_by_email(&rows[4].email)
        .await
        .unwrap()
        .unwrap();
    store.erase_subscriber(gone.id, t(2)).await.unwrap();
    let mut pieces = Vec::new();
    let mut after = None;
    let mut calls = 0;
    loop {
        let (part, next) = store.export_page(after, 5).await.unwrap();
        csv::write_part(&mut pieces, after.is_none(), &part).unwrap();
        calls += 1;
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(calls, 5, "22 rows in pieces of 5 (the last one short)");
    let mut whole = Vec::new();
    csv::write(&mut whole, &store.export_subscribers().await.unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(pieces).unwrap(),
        String::from_utf8(whole).unwrap()
    );
}
