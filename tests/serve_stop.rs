//! Stopping `gazette serve` in the middle of a send, with a real SMTP
//! server (aiosmtpd) counting what arrives.
//!
//! The contract: serve exits 0 within 10 s of SIGTERM or SIGINT. The stop
//! takes no new messages and finishes (and records) the ones in flight, so
//! the ledger is consistent at the exit: no row left `sending`, every row
//! `sent` or still `queued`, and `sent` is exactly what the server received.
//! The next start finishes the issue, and every subscriber gets it exactly
//! once. (The bound the contract allows is "duplicates <= messages in
//! flight at the stop", i.e. rows left `sending`; a graceful stop leaves
//! none, so the bound asserted is 0.)

mod common;

use std::time::{Duration, Instant};

use common::serve::{Opts, Server};
use common::smtp::{SmtpServer, via};
use common::{Site, expect_code, json, stderr, stdout};

/// A site with one issue to mail over SMTP to `subscribers` active
/// subscribers, at most `rate` messages a second.
fn site(smtp_port: u16, subscribers: usize, rate: u32) -> Site {
    // One issue: the other one is old enough to be skipped anyway.
    let mail = format!(
        "concurrency = 4\nrate_per_second = {rate}\nretry_base = \"0s\"\n{}",
        via(smtp_port, "none")
    );
    Site::mailing_to_readers(subscribers, &mail)
}

/// Messages the SMTP server has accepted so far (one log line each).
fn received(smtp: &SmtpServer) -> usize {
    std::fs::read_to_string(smtp.dir.path().join("log.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// `gazette serve` started on the site, without waiting for its start
/// cycle (which is the long send).
fn start(site: &Site, env: &[(&str, &str)]) -> Server {
    site.serve_with(Opts {
        env,
        wait_first_cycle: false,
        ..Opts::default()
    })
}

/// Wait until the server has received at least `n` messages.
fn wait_for_messages(smtp: &SmtpServer, server: &Server, n: usize) {
    let start = Instant::now();
    while received(smtp) < n {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {} messages after 120 s:\n{}",
            received(smtp),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The issue's ledger counts from `gazette --json deliveries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ledger {
    queued: u64,
    sending: u64,
    sent: u64,
    failed: u64,
    bounced: u64,
}

fn ledger(site: &Site) -> Ledger {
    let out = site.gazette(&["--json", "deliveries"]);
    expect_code(&out, 0);
    let v = json(&out);
    let issues = v["issues"].as_array().expect("issues");
    let winter = issues
        .iter()
        .find(|i| i["slug"] == "2026-winter")
        .unwrap_or_else(|| panic!("no 2026-winter in {v}"));
    let n = |k: &str| {
        winter[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {winter}"))
    };
    Ledger {
        queued: n("queued"),
        sending: n("sending"),
        sent: n("sent"),
        failed: n("failed"),
        bounced: n("bounced"),
    }
}

/// Stop `server` with `sig` mid-send and check the exit and the ledger.
/// Returns the ledger at the stop.
fn stop_mid_send(site: &Site, smtp: &SmtpServer, server: Server, sig: &str, total: u64) -> Ledger {
    let (status, took, log) = server.stop_with(sig);
    assert!(status.success(), "SIG{sig} mid-send: exit {status}\n{log}");
    assert!(
        took < Duration::from_secs(10),
        "SIG{sig} mid-send: exited {took:?} after the signal (the contract: within 10 s)\n{log}"
    );
    assert!(log.contains("stopped"), "{log}");
    let at_stop = ledger(site);
    let got = received(smtp) as u64;
    eprintln!("SIG{sig}: exit after {took:?}; ledger {at_stop:?}; the server received {got}");
    assert_eq!(
        at_stop.sending, 0,
        "SIG{sig}: the messages in flight were finished and recorded: {at_stop:?}"
    );
    assert_eq!(
        (at_stop.failed, at_stop.bounced),
        (0, 0),
        "SIG{sig}: nothing failed: {at_stop:?}"
    );
    assert_eq!(
        at_stop.sent + at_stop.queued,
        total,
        "SIG{sig}: every row sent or still queued: {at_stop:?}"
    );
    assert_eq!(
        at_stop.sent, got,
        "SIG{sig}: `sent` is what the server received: {at_stop:?}"
    );
    assert!(
        at_stop.queued > 0,
        "SIG{sig}: the signal must come mid-send (rate too high?): {at_stop:?}"
    );
    at_stop
}

/// Every subscriber got exactly one message.
fn each_exactly_once(smtp: &SmtpServer, total: usize) {
    let per = smtp.per_recipient();
    let duplicates: usize = per.values().map(|n| n - 1).sum();
    assert_eq!(per.len(), total, "every subscriber got the issue");
    assert_eq!(
        duplicates, 0,
        "no duplicates (no row was left `sending` at the stop)"
    );
    for n in 0..total {
        assert_eq!(
            per.get(&format!("reader{n}@example.org")),
            Some(&1),
            "reader{n}"
        );
    }
}

#[test]
fn sigterm_mid_send_exits_zero_within_10s_and_the_next_start_finishes_the_issue_once() {
    const SUBSCRIBERS: usize = 3000;
    let smtp = SmtpServer::start(&[]);
    // 100 a second: the send would take 30 s.
    let site = site(smtp.port, SUBSCRIBERS, 100);
    let server = start(&site, &[]);
    wait_for_messages(&smtp, &server, 50);
    let at_stop = stop_mid_send(&site, &smtp, server, "TERM", SUBSCRIBERS as u64);
    assert!(at_stop.sent >= 50, "{at_stop:?}");

    // The next start sends the rest in its start cycle (faster now: the
    // rate comes from the environment, as an admin could set it).
    let server = start(&site, &[("GAZETTE_MAIL_RATE_PER_SECOND", "2000")]);
    let t = Instant::now();
    while server.metric("gazette_cycles_total").unwrap_or(0.0) < 1.0 {
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "the restart did not finish its start cycle:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server.metric("gazette_last_cycle_success"),
        Some(1.0),
        "{}",
        server.log_text()
    );
    let (status, took, log) = server.terminate();
    assert!(
        status.success() && took < Duration::from_secs(10),
        "{status} {took:?}\n{log}"
    );

    let end = ledger(&site);
    assert_eq!(
        end,
        Ledger {
            queued: 0,
            sending: 0,
            sent: SUBSCRIBERS as u64,
            failed: 0,
            bounced: 0
        }
    );
    assert_eq!(received(&smtp), SUBSCRIBERS);
    each_exactly_once(&smtp, SUBSCRIBERS);
}

#[test]
fn sigint_mid_send_at_a_very_low_rate_behaves_the_same() {
    // One message a second: most of a claimed batch is waiting for the rate
    // limit at the signal. Those are not sent but queued again, so the stop
    // is prompt and leaves nothing `sending` (waiting them out would take
    // longer than the 10 s the contract allows).
    const SUBSCRIBERS: usize = 200;
    let smtp = SmtpServer::start(&[]);
    let site = site(smtp.port, SUBSCRIBERS, 1);
    let server = start(&site, &[]);
    // The first few go at once (the bucket's burst), then one a second.
    wait_for_messages(&smtp, &server, 5);
    let at_stop = stop_mid_send(&site, &smtp, server, "INT", SUBSCRIBERS as u64);
    assert!(at_stop.sent >= 5, "{at_stop:?}");

    // The command line finishes what the daemon left queued.
    let out = site.gazette_env(&["run"], &[("GAZETTE_MAIL_RATE_PER_SECOND", "2000")]);
    expect_code(&out, 0);
    assert_eq!(ledger(&site).sent, SUBSCRIBERS as u64, "{}", stdout(&out));
    each_exactly_once(&smtp, SUBSCRIBERS);
}

#[test]
fn a_mail_write_that_never_returns_does_not_keep_serve_from_exiting() {
    // The file outbox writes through the runtime's blocking threads. Here
    // the first digest's temporary file is a FIFO nobody reads, so that
    // write blocks for good: the stop must still exit 0 within 10 s,
    // leaving the row to crash recovery, not wait for the thread.
    let site = Site::mailing("concurrency = 1\n");
    site.import_subscribers("email,name", &["ann@example.org,Ann"]);
    std::fs::create_dir_all(site.path("outbox")).expect("outbox");
    for slug in ["2026-winter", "2026-autumn"] {
        let fifo = site.path(&format!("outbox/.{slug}_1.eml.tmp"));
        let out = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .output()
            .expect("mkfifo");
        assert!(out.status.success(), "mkfifo: {}", stderr(&out));
    }
    let server = start(&site, &[]);
    let t = Instant::now();
    while sending(&site) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the start cycle did not begin sending:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Time for the write to reach the FIFO.
    std::thread::sleep(Duration::from_millis(500));
    let (status, took, log) = server.terminate();
    assert!(
        status.success() && took < Duration::from_secs(10),
        "{status} after {took:?}\n{log}"
    );
}

/// Rows `sending` across all issues (none before the first is published).
fn sending(site: &Site) -> u64 {
    let out = site.gazette(&["--json", "deliveries"]);
    expect_code(&out, 0);
    let v = json(&out);
    v["issues"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["sending"].as_u64()).sum())
        .unwrap_or(0)
}
