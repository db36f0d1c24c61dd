//! The send loop against a real SMTP server (aiosmtpd) with real faults:
//! every message arrives exactly once, whatever the server does.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::smtp::SmtpServer;
use gazette::config::Config;
use gazette::delivery::send::{
    ComposeError, Composed, Composer, Quiet, SendOptions, SendReport, send_due,
};
use gazette::delivery::transport::Transport;
use gazette::store::{Claimed, Store};

/// A plain message per row; the real digest is tested through the binary.
struct Plain;

impl Composer for Plain {
    fn compose(&self, row: &Claimed) -> Result<Composed, ComposeError> {
        let message_id = format!("<{}.{}@example.org>", row.issue_slug, row.subscriber_id);
        let bytes = format!(
            "From: a@example.org\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: {message_id}\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nHello.\r\n",
            row.email, row.issue_slug
        );
        Ok(Composed {
            message_id,
            envelope_from: "a@example.org".into(),
            bytes: bytes.into_bytes(),
        })
    }
}

async fn ledger(subscribers: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("g.db")).await.unwrap();
    sqlx::query(
        "INSERT INTO issues (slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at)
         VALUES ('i1', 'Issue 1', '2026-11-20', 'h', 1, 'now', 'now')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    for n in 0..subscribers {
        let email = format!("reader{n}@example.org");
        sqlx::query("INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at) VALUES ($1, $1, 'active', $2, 'now', 'now')")
            .bind(&email)
            .bind(gazette::subscribers::Token::generate().unwrap().to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    store.publish_issue("i1", chrono::Utc::now()).await.unwrap();
    (dir, store)
}

fn smtp_transport(port: u16, concurrency: usize) -> Transport {
    let text = format!(
        "[publication]\ntitle = \"T\"\nbase_url = \"https://x.org/\"\n[mail]\ntransport = \"smtp\"\nconcurrency = {concurrency}\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n"
    );
    let config = Config::parse(Path::new("/tmp/config.toml"), &text, &[]).unwrap();
    Transport::from_config(&config.mail).unwrap()
}

fn options(max_attempts: u32) -> SendOptions {
    SendOptions {
        concurrency: 4,
        rate_per_second: 100_000.0,
        retry_base: Duration::ZERO,
        max_attempts,
    }
}

async fn send(store: &Store, port: u16, max_attempts: u32) -> SendReport {
    send_due(
        store,
        &smtp_transport(port, 4),
        Arc::new(Plain),
        &options(max_attempts),
        &Quiet,
        &AtomicBool::new(false),
    )
    .await
    .unwrap()
}

async fn status_counts(store: &Store) -> HashMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_get_exactly_one_message_each() {
    let server = SmtpServer::start(&[]);
    let (_d, store) = ledger(1000).await;
    let report = send(&store, server.port, 5).await;
    assert_eq!(
        (report.sent, report.failed, report.deferred),
        (1000, 0, 0),
        "{report:?}"
    );
    let counts = server.per_recipient();
    assert_eq!(counts.len(), 1000);
    assert!(
        counts.values().all(|&n| n == 1),
        "duplicates: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(
        status_counts(&store).await,
        HashMap::from([("sent".to_string(), 1000)])
    );
    // Nothing is due any more: a second pass sends nothing.
    let again = send(&store, server.port, 5).await;
    assert_eq!(again.sent, 0);
    assert_eq!(server.received().len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failures_and_dropped_connections_are_retried_until_delivered_once() {
    // reader1x: 450 twice; reader2x: 421 + close once; every 7th DATA dropped unanswered.
    let server = SmtpServer::start(&[
        "--tempfail-rcpt",
        r"reader1\d@:2",
        "--421-rcpt",
        r"reader2\d@:1",
        "--drop-data-every",
        "7",
    ]);
    let (_d, store) = ledger(100).await;
    let report = send(&store, server.port, 10).await;
    assert_eq!(report.sent, 100, "{report:?}");
    assert!(
        report.deferred >= 30,
        "the faults must have caused retries: {report:?}"
    );
    let counts = server.per_recipient();
    assert_eq!(counts.len(), 100);
    assert!(counts.values().all(|&n| n == 1), "duplicates: {counts:?}");
    assert_eq!(
        status_counts(&store).await,
        HashMap::from([("sent".to_string(), 100)])
    );
    let (attempts,): (i64,) = sqlx::query_as("SELECT attempts FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = 'reader15@example.org'").fetch_one(store.pool()).await.unwrap();
    // Two 450s, then the delivery; plus up to one attempt for each of its
    // DATA the server dropped (which DATA is every 7th depends on timing).
    // Up to: a drop on a reused connection is tried once more at once on a
    // new one, within the same attempt (smtp_client: "the server closed an
    // idle connection"), so such a drop costs no attempt.
    let dropped = server.dropped_for("reader15@example.org") as i64;
    assert!(
        (3..=3 + dropped).contains(&attempts),
        "{attempts} attempts with {dropped} dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_mailbox_bounces_at_once_and_is_never_retried() {
    let server = SmtpServer::start(&["--bounce-rcpt", r"reader3@"]);
    let (_d, store) = ledger(5).await;
    let report = send(&store, server.port, 5).await;
    assert_eq!(
        (report.sent, report.bounced, report.deferred),
        (4, 1, 0),
        "{report:?}"
    );
    let (status, attempts, reply): (String, i64, String) = sqlx::query_as(
        "SELECT d.status, d.attempts, d.last_reply FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = 'reader3@example.org'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempts), ("bounced", 1));
    assert!(reply.contains("5.1.1"), "{reply}");
    let (sub,): (String,) =
        sqlx::query_as("SELECT status FROM subscribers WHERE email = 'reader3@example.org'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(sub, "bounced");
    let again = send(&store, server.port, 5).await;
    assert_eq!(
        (again.sent, again.bounced, again.failed),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(server.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_for_a_whole_run_loses_nothing_and_the_next_run_sends_everything() {
    let down = SmtpServer::start(&["--down"]);
    let port = down.port;
    let (_d, store) = ledger(200).await;
    let report = send(&store, port, 3).await;
    assert!(report.unreachable, "{report:?}");
    assert_eq!((report.sent, report.failed), (0, 0), "{report:?}");
    // One batch spent one attempt each; the rest were not touched.
    let (tried,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deliveries WHERE attempts > 0")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(tried > 0 && tried < 200, "{tried}");
    assert_eq!(
        status_counts(&store).await,
        HashMap::from([("queued".to_string(), 200)])
    );
    down.stop();

    let up = SmtpServer::start_on(port, &[]);
    let report = send(&store, up.port, 3).await;
    assert_eq!(report.sent, 200, "{report:?}");
    let counts = up.per_recipient();
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|&n| n == 1));
}
