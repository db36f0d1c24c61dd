//! Digest delivery through the binary: who gets an issue, over the file
//! outbox and over real SMTP, and what `deliveries` reports.

mod common;

use std::collections::HashMap;

use common::mail::{Kind, mimecheck};
use common::smtp::{SmtpServer, SmtpSink, via};
use common::{Site, expect_code, json, sent_and, stderr, stdout};

/// SMTP to `port` with four connections at once.
fn smtp(port: u16) -> String {
    format!("concurrency = 4\n{}", via(port, "none"))
}

#[test]
fn the_file_outbox_gets_one_digest_per_active_subscriber_once() {
    let site = Site::mailing_now(
        "",
        &[
            "ann@example.org,Ann Ó Briain,active",
            "bob@example.org,,active",
            "cy@example.org,Cy,pending",
            "dee@example.org,Dee,unsubscribed",
        ],
    );
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    let summary = stdout(&out);
    assert!(
        summary.contains("Published 2026-winter to 2 active subscribers")
            && summary.contains("Published 2026-autumn to 2"),
        "{summary}"
    );
    assert!(summary.contains("Mail: 4 sent"), "{summary}");
    let files: Vec<_> = std::fs::read_dir(site.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 4, "{files:?}");
    mimecheck(&files, Kind::Bulk);
    let all: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(all.contains("ann@example.org") && all.contains("bob@example.org"));
    assert!(
        !all.contains("cy@example.org") && !all.contains("dee@example.org"),
        "pending and unsubscribed get nothing"
    );

    // Nothing twice: the next run has nothing due.
    let out = site.gazette(&["run"]);
    assert!(
        stdout(&out).contains("Mail: nothing due"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_dir(site.path("outbox")).unwrap().count(), 4);

    // A later joiner gets the next issue only.
    expect_code(
        &site.gazette(&["subscribers", "add", "eve@example.org", "--confirmed"]),
        0,
    );
    site.write("content/2026-spring/first.txt", "Spring opens\n\nDecember 1, 2026\n\nFrom the Spring 2026 issue of The Test Ledger\n\nBuds.\n");
    let out = site.gazette(&["--json", "run"]);
    let v = json(&out);
    assert_eq!(v["mail"]["send"]["sent"], 3, "{v}");
    let out = site.gazette(&["--json", "deliveries"]);
    let v = json(&out);
    let sent: HashMap<String, u64> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["slug"].as_str().unwrap().to_string(),
                i["sent"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        HashMap::from([
            ("2026-spring".into(), 3),
            ("2026-winter".into(), 2),
            ("2026-autumn".into(), 2)
        ])
    );
}

#[test]
fn an_issue_too_old_when_first_seen_is_only_mailed_by_issues_send() {
    let site = Site::mailing_now("", &["ann@example.org,Ann,active"]);
    // 30 days: both fixture issues (October and November 2026) are older than
    // that today, or will be. Pin "today" far ahead instead of depending on the clock.
    site.edit_config("skip_older_than = \"100000d\"", "skip_older_than = \"1d\"");
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("Not mailing 2026-winter")
            && stdout(&out).contains("gazette issues send 2026-winter"),
        "{}",
        stdout(&out)
    );
    assert!(
        !site.path("outbox").exists()
            || std::fs::read_dir(site.path("outbox")).unwrap().count() == 0
    );
    let out = site.gazette(&["deliveries", "2026-winter"]);
    assert!(
        stdout(&out).contains("skipped") && stdout(&out).contains("mail.skip_older_than"),
        "{}",
        stdout(&out)
    );

    let out = site.gazette(&["issues", "send", "2026-winter"]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("Published 2026-winter to 1 active subscribers")
            && stdout(&out).contains("Sent 1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_dir(site.path("outbox")).unwrap().count(), 1);
    // The other old issue stays unmailed.
    let out = site.gazette(&["--json", "deliveries", "2026-autumn"]);
    assert_eq!(json(&out)["issues"][0]["mail_state"], "skipped");

    // --to sends one test copy and records nothing.
    site.says(
        &[
            "issues",
            "send",
            "2026-autumn",
            "--to",
            "editor@example.org",
        ],
        0,
        "not recorded",
    );
    let out = site.gazette(&["--json", "deliveries", "2026-autumn"]);
    assert_eq!(json(&out)["issues"][0]["sent"], 0);
}

#[test]
fn a_thousand_subscribers_over_smtp_each_get_one_message_that_passes_mimecheck() {
    let sink = SmtpSink::start();
    let subscribers: Vec<String> = (0..1000)
        .map(|n| format!("reader{n}@example.org,Reader {n},active"))
        .collect();
    let site = Site::mailing_now(&smtp(sink.port), &subscribers);
    site.remove("content/2026-autumn");
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v = json(&out);
    assert_eq!(v["mail"]["send"]["sent"], 1000, "{v}");
    let counts = sink.per_recipient();
    assert_eq!(counts.len(), 1000);
    assert!(counts.values().all(|&n| n == 1));
    let out = site.gazette(&["--json", "deliveries"]);
    assert_eq!(json(&out)["issues"][0]["sent"], 1000);
    // The sink prefixes its own trace headers; mimecheck reads the message after them.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (n, f) in sink.files().iter().enumerate() {
        let raw = std::fs::read(f).unwrap();
        let start = raw
            .windows(6)
            .position(|w| w == b"\nFrom:")
            .map(|p| p + 1)
            .unwrap_or(0);
        let path = dir.path().join(format!("{n}.eml"));
        std::fs::write(&path, &raw[start..]).unwrap();
        files.push(path);
    }
    mimecheck(&files, Kind::Bulk);
}

#[test]
fn faults_at_the_server_are_retried_bounces_are_recorded_and_deliveries_explains() {
    let server = SmtpServer::start(&[
        "--tempfail-rcpt",
        r"^slow@:2",
        "--421-rcpt",
        r"^busy@:1",
        "--bounce-rcpt",
        r"^gone@",
        "--drop-data-every",
        "5",
    ]);
    let names = ["slow", "busy", "gone", "a", "b", "c", "d", "e", "f", "g"];
    let rows: Vec<String> = names
        .iter()
        .map(|n| format!("{n}@example.org,,active"))
        .collect();
    let site = Site::mailing_now(&smtp(server.port), &rows);
    site.remove("content/2026-autumn");
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v = json(&out);
    assert_eq!(sent_and(&v, "bounced"), (Some(9), Some(1)), "{v}");
    let per = server.per_recipient();
    assert_eq!(per.len(), 9);
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    let out = site.gazette(&["deliveries", "2026-winter"]);
    let text = stdout(&out);
    assert!(
        text.contains("gone@example.org") && text.contains("bounced") && text.contains("5.1.1"),
        "{text}"
    );
    let out = site.gazette(&["--json", "subscribers", "list", "--status", "bounced"]);
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
}

#[test]
fn two_runs_at_once_never_send_a_message_twice() {
    let sink = SmtpSink::start();
    let subscribers: Vec<String> = (0..300)
        .map(|n| format!("r{n}@example.org,,active"))
        .collect();
    let site = Site::mailing_now(&smtp(sink.port), &subscribers);
    let (a, b) = site.two_at_once(&["run"]);
    expect_code(&a, 0);
    expect_code(&b, 0);
    let counts = sink.per_recipient();
    assert_eq!(counts.len(), 300);
    // Two issues each: one message per (issue, subscriber), never more.
    assert!(
        counts.values().all(|&n| n == 2),
        "{:?}",
        counts.values().filter(|n| **n != 2).count()
    );
}

#[test]
fn no_sender_address_is_a_clear_error_and_nothing_is_lost() {
    let site = Site::mailing_now("", &["ann@example.org,Ann,active"]);
    site.edit_config("from = \"The Test Ledger <ledger@example.org>\"\n", "");
    let cfg = site.read("config.toml");
    site.says_on_stderr(&["run"], 1, "mail.from is not set");
    site.write(
        "config.toml",
        &format!("{cfg}from = \"Ledger <l@example.org>\"\n"),
    );
    site.says(&["run"], 0, "Mail: 2 sent");
}

#[test]
fn smtp_auth_with_the_password_from_the_environment_and_a_wrong_one_loses_nothing() {
    let server = SmtpServer::start(&["--auth", "ledger:s3cret"]);
    let rows = ["a@example.org,,active", "b@example.org,,active"];
    let mail = format!(
        "{}username = \"ledger\"\npassword_env = \"LEDGER_SMTP_PASSWORD\"\n",
        smtp(server.port)
    );
    let site = Site::mailing_now(&mail, &rows);
    site.remove("content/2026-autumn");
    // Wrong password: the server refuses the session; nothing fails, all
    // stays queued, and the run says so with exit code 3.
    let out = site.gazette_env(&["--json", "run"], &[("LEDGER_SMTP_PASSWORD", "wrong")]);
    expect_code(&out, 3);
    let v = json(&out);
    assert_eq!(sent_and(&v, "failed"), (Some(0), Some(0)), "{v}");
    assert_eq!(
        json(&site.gazette(&["--json", "deliveries"]))["issues"][0]["queued"],
        2
    );
    assert!(server.received().is_empty());
    // The right one: both go out, once.
    let out = site.gazette_env(&["--json", "run"], &[("LEDGER_SMTP_PASSWORD", "s3cret")]);
    expect_code(&out, 0);
    assert_eq!(json(&out)["mail"]["send"]["sent"], 2);
    assert_eq!(server.received().len(), 2);
}

#[test]
fn starttls_and_implicit_tls_deliver_with_a_private_ca_and_refuse_without_it() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::smtp::test_ca(certs.path());
    for (flag, security) in [("--starttls", "starttls"), ("--tls", "tls")] {
        let server = SmtpServer::start(&[flag, &format!("{cert}:{key}")]);
        let mail = format!("concurrency = 2\n{}", via(server.port, security));
        let site = Site::mailing_now(&mail, &["a@example.org,,active", "b@example.org,,active"]);
        site.remove("content/2026-autumn");
        // The server's certificate is not trusted: nothing goes out, nothing
        // is lost, and the run says so with exit code 3.
        let out = site.gazette(&["--json", "run"]);
        nothing_went_out(&out, &server, security);
        // Recorded in words that name the host and what to check.
        for reply in last_replies(&site) {
            assert!(
                reply.contains("the TLS certificate of 127.0.0.1 is not trusted")
                    && reply.contains("mail.smtp.ca_file"),
                "{security}: {reply}"
            );
        }
        // Trusting the private CA: both delivered, once.
        let cfg = site.read("config.toml");
        site.write("config.toml", &format!("{cfg}ca_file = \"{ca}\"\n"));
        let out = site.gazette(&["--json", "run"]);
        expect_code(&out, 0);
        assert_eq!(json(&out)["mail"]["send"]["sent"], 2, "{security}");
        assert_eq!(server.received().len(), 2, "{security}");
    }
}

/// AUTH over both TLS modes: a provider's submission port (STARTTLS on
/// 587) or its SMTPS port (implicit TLS on 465), where the server offers
/// AUTH only inside TLS. A wrong password loses nothing; the right one
/// delivers each message once.
#[test]
fn auth_inside_starttls_and_implicit_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::smtp::test_ca(certs.path());
    for (flag, security) in [("--starttls", "starttls"), ("--tls", "tls")] {
        let server =
            SmtpServer::start(&[flag, &format!("{cert}:{key}"), "--auth", "ledger:s3cret"]);
        let mail = format!(
            "concurrency = 2\n{}ca_file = \"{ca}\"\nusername = \"ledger\"\npassword_env = \"LEDGER_SMTP_PASSWORD\"\n",
            via(server.port, security)
        );
        let site = Site::mailing_now(&mail, &["a@example.org,,active", "b@example.org,,active"]);
        site.remove("content/2026-autumn");
        let out = site.gazette_env(&["--json", "run"], &[("LEDGER_SMTP_PASSWORD", "wrong")]);
        nothing_went_out(&out, &server, security);
        let out = site.gazette_env(&["--json", "run"], &[("LEDGER_SMTP_PASSWORD", "s3cret")]);
        assert_eq!(out.status.code(), Some(0), "{security}: {}", json(&out));
        assert_eq!(json(&out)["mail"]["send"]["sent"], 2, "{security}");
        assert_eq!(server.received().len(), 2, "{security}");
    }
}

/// A run the server never let in (untrusted certificate, wrong password):
/// exit code 3, nothing sent, nothing failed, nothing received.
fn nothing_went_out(out: &std::process::Output, server: &SmtpServer, security: &str) {
    expect_code(out, 3);
    let v = json(out);
    assert_eq!(
        sent_and(&v, "failed"),
        (Some(0), Some(0)),
        "{security}: {v}"
    );
    assert!(server.received().is_empty(), "{security}");
}

/// The last reply recorded for each row of 2026-winter not sent.
fn last_replies(site: &Site) -> Vec<String> {
    let out = site.gazette(&["--json", "deliveries", "2026-winter"]);
    expect_code(&out, 0);
    let problems = json(&out)["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!problems.is_empty(), "no row recorded a problem");
    problems
        .iter()
        .map(|p| p["last_reply"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A site mailing five subscribers one at a time with `security` to a
/// plain aiosmtpd (no TLS, no STARTTLS), after one `gazette run`.
fn run_against_plain_server(security: &str) -> (Site, std::process::Output) {
    let server = SmtpServer::start(&[]);
    let mail = format!("concurrency = 1\n{}", via(server.port, security));
    let subscribers: Vec<String> = (0..5)
        .map(|n| format!("r{n}@example.org,,active"))
        .collect();
    let site = Site::mailing_now(&mail, &subscribers);
    site.remove("content/2026-autumn");
    let out = site.gazette(&["run"]);
    // No answer from the server at all: exit code 3.
    expect_code(&out, 3);
    assert!(server.received().is_empty());
    (site, out)
}

#[test]
fn implicit_tls_against_a_plaintext_port_says_so_and_suggests_starttls() {
    let (site, out) = run_against_plain_server("tls");
    let said = stdout(&out);
    for text in [&said, &last_replies(&site)[0]] {
        assert!(
            text.contains("127.0.0.1:")
                && text.contains("does not speak TLS on this port")
                && text.contains("security = \"starttls\""),
            "{text}"
        );
        assert!(!text.contains("corrupt message"), "{text}");
    }
    assert!(said.contains("0 sent"), "{said}");
}

#[test]
fn starttls_against_a_server_without_it_says_so() {
    let (site, out) = run_against_plain_server("starttls");
    let said = stdout(&out);
    for text in [&said, &last_replies(&site)[0]] {
        assert!(
            text.contains("does not offer STARTTLS") && text.contains("mail.smtp.port"),
            "{text}"
        );
    }
}

/// A run whose mail server never answers sends nothing and says so with its
/// own exit code (3), so cron and alerts notice; the messages stay queued
/// and the next run, with the server back, sends each once.
#[test]
fn a_mail_server_that_never_answers_is_exit_code_3_and_loses_nothing() {
    let port = common::smtp::free_port();
    let site = Site::mailing_now(
        &smtp(port),
        &["a@example.org,,active", "b@example.org,,active"],
    );
    site.remove("content/2026-autumn");
    let out = site.gazette(&["run"]);
    expect_code(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "no message got through to the mail server (127.0.0.1:{port})"
        )) && err.contains("2 messages wait in the queue"),
        "{err}"
    );
    assert_eq!(
        json(&site.gazette(&["--json", "deliveries"]))["issues"][0]["queued"],
        2
    );
    let server = SmtpServer::start_on(port, &[]);
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    assert_eq!(json(&out)["mail"]["send"]["sent"], 2);
    assert_eq!(server.received().len(), 2);
}

/// A digest whose text is ASCII goes 7bit: the unsubscribe URL is whole on
/// one line of the raw `.eml`, and the message passes the MIME checks.
#[test]
fn an_ascii_digest_keeps_the_unsubscribe_url_whole_in_the_raw_message() {
    let site = Site::mailing_now("", &["bob@example.org,Bob,active"]);
    for old in ["content/2026-autumn", "content/2026-winter"] {
        std::fs::remove_dir_all(site.path(old)).unwrap();
    }
    site.write(
        "content/2026-winter/issue.toml",
        "title = \"Winter 2026\"\ndate = 2026-11-20\n",
    );
    site.write(
        "content/2026-winter/ferry.txt",
        "Ferry fares rise\n\nNovember 18, 2026\n\nFrom the Winter 2026 issue of The Test Ledger\n\nThe ferry costs more from Monday.\n",
    );
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("Mail: 1 sent"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let files: Vec<_> = std::fs::read_dir(site.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    mimecheck(&files, Kind::Bulk);
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    let mail = common::mail::read_mail(&files[0]);
    let token = common::mail::link_token(&mail.text, "unsubscribe").expect("an unsubscribe link");
    let url = format!("{}/unsubscribe/{token}", common::mail::BASE);
    assert!(
        url.len() > 76,
        "the link must be longer than a QP line: {url}"
    );
    let text_part = raw
        .split("Content-Type: text/plain")
        .nth(1)
        .expect("a text part");
    assert!(
        text_part
            .lines()
            .any(|l| l.trim_end() == format!("Unsubscribe: {url}")),
        "{url} not whole in:\n{raw}"
    );
}

/// Runs `sql` on the site's database, as an admin's hand edit would.
fn hand_edit(site: &Site, sql: &'static str) {
    site.with_db(async |store| {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    });
}

#[test]
fn hand_edited_bad_values_fail_those_deliveries_alone_and_say_why_but_not_in_the_log() {
    let site = Site::mailing_now(
        "",
        &[
            "ann@example.org,Ann,active",
            "bob@example.org,Bob,active",
            "cy@example.org,Cy,active",
        ],
    );
    // An admin's hand edits break bob's token and cy's address.
    hand_edit(
        &site,
        "UPDATE subscribers SET token = 'not a token' WHERE email = 'bob@example.org'",
    );
    hand_edit(
        &site,
        "UPDATE subscribers SET email = 'cy@nodot' WHERE email = 'cy@example.org'",
    );
    // The run goes on (exit 0, as with any refused message): ann gets both
    // issues, bob's and cy's deliveries are failed.
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v = json(&out);
    assert_eq!(sent_and(&v, "failed"), (Some(2), Some(4)), "{v}");
    let log = stderr(&out);
    assert!(
        log.contains("a claimed row holds a value that does not read")
            && !log.contains("cy@")
            && !log.contains("nodot")
            && !log.contains("not a token"),
        "the log names rows, not values: {log}"
    );
    let files: Vec<_> = std::fs::read_dir(site.path("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files.len(), 2);
    assert!(
        files
            .iter()
            .all(|f| f.contains("ann@example.org") && !f.contains("bob@") && !f.contains("cy@"))
    );
    let out = site.gazette(&["deliveries", "2026-winter"]);
    let text = stdout(&out);
    assert!(
        text.contains("the database holds a bad value (subscribers row")
            && text.contains("column token")
            && text.contains("column email: the domain \"nodot\" has no dot")
            && !text.contains("not a token"),
        "{text}"
    );
}
