//! Killing `gazette run` with SIGKILL in the middle of a 5,000-subscriber
//! send, several times, then running it to the end: every subscriber ends
//! with one `sent` row and at least one message, and the duplicates at the
//! server are at most the messages that were in flight at the kills.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::smtp::{SmtpSink, via};
use common::{Site, expect_code, json};

const SUBSCRIBERS: usize = 5000;

fn smtp_site(port: u16) -> Site {
    let mail = format!(
        "concurrency = 8\nrate_per_second = 2000\nretry_base = \"0s\"\n{}",
        via(port, "none")
    );
    Site::mailing_to_readers(SUBSCRIBERS, &mail)
}

fn sqlite_count(site: &Site, sql: &'static str) -> i64 {
    site.with_db(async |store| {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(store.pool()).await.unwrap();
        n
    })
}

#[test]
fn sigkill_mid_send_never_loses_a_message_and_duplicates_stay_within_the_in_flight() {
    let server = SmtpSink::start();
    let site = smtp_site(server.port);
    let mut in_flight_at_kills = Vec::new();
    // Kill at different moments: early (publishing), and mid-send.
    for delay_ms in [300u64, 900, 1200, 1700] {
        let mut child = site
            .command(&["run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        in_flight_at_kills.push(sqlite_count(
            &site,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sending'",
        ));
    }
    let received_before_last: usize = server.per_recipient().values().sum();
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v = json(&out);

    assert_eq!(
        sqlite_count(
            &site,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'"
        ),
        SUBSCRIBERS as i64,
        "{v}"
    );
    assert_eq!(
        sqlite_count(&site, "SELECT COUNT(*) FROM deliveries"),
        SUBSCRIBERS as i64
    );

    let per_rcpt: HashMap<String, usize> = server.per_recipient();
    assert_eq!(
        per_rcpt.len(),
        SUBSCRIBERS,
        "every subscriber got at least one message"
    );
    let duplicates: usize = per_rcpt.values().map(|n| n - 1).sum();
    let bound: i64 = in_flight_at_kills.iter().sum();
    eprintln!(
        "kills: {}; in flight at each kill: {in_flight_at_kills:?}; messages before the last run: {received_before_last}; duplicates at the server: {duplicates} (bound {bound})",
        in_flight_at_kills.len()
    );
    assert!(
        received_before_last > 0,
        "the kills must have hit a send in progress"
    );
    assert!(
        duplicates as i64 <= bound,
        "duplicates {duplicates} exceed the messages in flight at the kills {in_flight_at_kills:?}"
    );
}
