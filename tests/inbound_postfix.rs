//! A real Postfix (Debian's package) as the relay in front of gazette:
//! it refuses or defers some recipients, writes its own DSNs to the VERP
//! envelope sender, and its `transport_maps` line (tests/common/postfix.rs)
//! routes them to the bounce port with the TAG intact. Here a catcher
//! (aiosmtpd) listens on that port; the DSNs it gets are what gazette's
//! inbound listener will get from such a setup.
//!
//! `GZ_POSTFIX_FIXTURES=DIR cargo test --test inbound_postfix` also saves
//! the DSNs as `postfix-real-{hard,delayed,expired}.eml` in DIR: that is
//! how tests/fixtures/inbound/postfix-real-*.eml were made.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::postfix::{Bounces, Postfix, Setup};
use common::smtp::SmtpServer;
use gazette::inbound::mailbox;
use mail_parser::MimeHeaders;

const OK: &str = "bounces+d1-aaaaaaaaaaaaaaaa@news.example.org";
const HARD: &str = "bounces+d2-bbbbbbbbbbbbbbbb@news.example.org";
const SOFT: &str = "bounces+d3-cccccccccccccccc@news.example.org";

/// A digest-like message from the publication to `to`.
fn digest(to: &str, n: u32) -> String {
    format!(
        "From: The Test Ledger <ledger@news.example.org>\r\n\
         To: {to}\r\n\
         Subject: The Test Ledger: Winter 2026\r\n\
         Message-ID: <2026-winter.{n}@news.example.org>\r\n\
         Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Two cranes came back to the quay this week.\r\n"
    )
}

/// One message the catcher got: its envelope recipients and bytes.
struct Caught {
    rcpt: Vec<String>,
    raw: Vec<u8>,
}

/// Everything the catcher got, in arrival order.
fn caught(catcher: &SmtpServer) -> Vec<Caught> {
    catcher
        .received()
        .into_iter()
        .enumerate()
        .map(|(i, m)| Caught {
            rcpt: m.rcpt,
            // smtp_server.py saves the Nth message as msg/N.eml.
            raw: std::fs::read(catcher.messages_dir().join(format!("{}.eml", i + 1)))
                .expect("saved message"),
        })
        .collect()
}

/// Waits (at most 60 s) until the catcher holds `n` messages.
fn wait_for(catcher: &SmtpServer, n: usize, postfix: &Postfix) -> Vec<Caught> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut flushed = Instant::now();
    loop {
        let got = caught(catcher);
        if got.len() >= n {
            return got;
        }
        if flushed.elapsed() > Duration::from_secs(5) {
            postfix.flush();
            flushed = Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the catcher got {} of {n} messages in 60 s\n--- maillog\n{}",
            got.len(),
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The per-recipient fields of the `message/delivery-status` part
/// (`Action`, `Status`, ...), of its first recipient block.
fn delivery_status(raw: &[u8]) -> BTreeMap<String, String> {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a MIME message");
    let part = message
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "message" && c.subtype() == Some("delivery-status"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no message/delivery-status part in:\n{}",
                String::from_utf8_lossy(raw)
            )
        });
    let text = String::from_utf8_lossy(part.contents()).replace("\r\n", "\n");
    // The per-message block, a blank line, then one block per recipient.
    let recipient = text
        .split("\n\n")
        .find(|block| block.contains("Final-Recipient:"))
        .expect("a per-recipient block");
    recipient
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn postfix_dsns_reach_the_bounce_port_at_the_exact_verp_address() {
    let relay = SmtpServer::start(&[
        "--bounce-rcpt",
        "^gone@",
        "--tempfail-rcpt",
        "^later@:1000000",
    ]);
    let catcher = SmtpServer::start(&[]);
    // A deferred message expires after 4 s: the expiry DSN comes too.
    let postfix = Postfix::start_with(Setup {
        relay_port: relay.port,
        bounces: Bounces::Port(catcher.port),
        queue_lifetime: "4s",
    });

    postfix.submit(OK, &["ok@example.com"], &digest("ok@example.com", 1));
    postfix.submit(HARD, &["gone@example.com"], &digest("gone@example.com", 2));
    postfix.submit(
        SOFT,
        &["later@example.com"],
        &digest("later@example.com", 3),
    );

    // gone@: failed at once; later@: delayed, then expired.
    let got = wait_for(&catcher, 3, &postfix);
    let show = || postfix.log();

    let mut by_kind = BTreeMap::new();
    for m in &got {
        assert_eq!(m.rcpt.len(), 1, "one recipient per DSN\n{}", show());
        let status = delivery_status(&m.raw);
        let kind = match (m.rcpt[0].as_str(), status["Action"].as_str()) {
            (HARD, "failed") => "hard",
            (SOFT, "delayed") => "delayed",
            (SOFT, "failed") => "expired",
            other => panic!(
                "unexpected DSN {other:?}:\n{}",
                String::from_utf8_lossy(&m.raw)
            ),
        };
        // To: is the VERP address too (what `inbound import` reads).
        assert_eq!(
            mailbox::header_recipients(&m.raw),
            [m.rcpt[0].as_str()],
            "{kind}"
        );
        assert!(
            by_kind.insert(kind, (status, m.raw.clone())).is_none(),
            "two {kind} DSNs\n{}",
            show()
        );
    }

    let (hard, _) = &by_kind["hard"];
    assert_eq!(hard["Status"], "5.1.1");
    assert_eq!(hard["Final-Recipient"], "rfc822; gone@example.com");
    assert!(
        hard["Diagnostic-Code"].starts_with("smtp; 550 5.1.1"),
        "{hard:?}"
    );
    let (delayed, _) = &by_kind["delayed"];
    assert_eq!(delayed["Status"], "4.2.0");
    assert_eq!(delayed["Final-Recipient"], "rfc822; later@example.com");
    assert!(
        delayed["Diagnostic-Code"].starts_with("smtp; 450 4.2.0"),
        "{delayed:?}"
    );
    let (expired, _) = &by_kind["expired"];
    assert_eq!(expired["Status"], "4.2.0", "{expired:?}");

    // ok@ was relayed with the VERP sender, and no DSN came for it.
    let relayed: Vec<serde_json::Value> =
        std::fs::read_to_string(relay.dir.path().join("log.jsonl"))
            .expect("relay log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect();
    assert_eq!(relayed.len(), 1, "{relayed:?}");
    assert_eq!(relayed[0]["rcpt"], serde_json::json!(["ok@example.com"]));
    assert_eq!(relayed[0]["mail_from"], OK);
    assert!(got.iter().all(|m| m.rcpt[0] != OK));

    // The same DSNs read back from a folder of saved messages.
    let read: Vec<_> = mailbox::read(&[catcher.messages_dir()], 1 << 20)
        .map(|m| m.expect("a saved DSN").raw)
        .collect();
    assert_eq!(read.len(), 3);
    assert!(got.iter().all(|m| read.contains(&m.raw)));

    if let Some(dir) = std::env::var_os("GZ_POSTFIX_FIXTURES") {
        let dir = PathBuf::from(dir);
        for (kind, (_, raw)) in &by_kind {
            std::fs::write(dir.join(format!("postfix-real-{kind}.eml")), raw).expect("save");
        }
    }
}

#[test]
fn a_return_from_outside_keeps_its_tag_through_the_transport_line() {
    let relay = SmtpServer::start(&[]);
    let catcher = SmtpServer::start(&[]);
    let postfix = Postfix::start(relay.port, catcher.port);
    let tagged = "bounces+d4-dddddddddddddddd@news.example.org";

    // As a remote MTA returns a message: null sender, to the VERP address
    // and, from a report that lost it, the plain bounce address.
    postfix.submit(
        "",
        &[tagged, common::postfix::BOUNCE_ADDRESS],
        "From: Mail Delivery Subsystem <mailer-daemon@mx.example.com>\r\n\
         To: bounces+d4-dddddddddddddddd@news.example.org\r\n\
         Subject: Delivery Status Notification (Failure)\r\n\
         \r\n\
         .A line starting with a dot.\r\n",
    );

    let got = wait_for(&catcher, 1, &postfix);
    let mut rcpts: Vec<String> = got.iter().flat_map(|m| m.rcpt.clone()).collect();
    // Both may come in one transaction or two.
    if rcpts.len() < 2 {
        rcpts = wait_for(&catcher, 2, &postfix)
            .into_iter()
            .flat_map(|m| m.rcpt)
            .collect();
    }
    rcpts.sort();
    assert_eq!(
        rcpts,
        [tagged, common::postfix::BOUNCE_ADDRESS],
        "{}",
        postfix.log()
    );
    assert!(
        String::from_utf8_lossy(&got[0].raw).contains("\n.A line starting with a dot."),
        "the dot-stuffing is undone on the way"
    );
    assert!(relay.received().is_empty(), "nothing went to the relayhost");
}

/// Two hard bounces, delivered by Postfix's virtual(8) into `bounces`
/// (a Maildir or an mbox), read back as `inbound import` reads them.
fn returns_delivered_into(bounces: Bounces) {
    let relay = SmtpServer::start(&["--bounce-rcpt", "^gone@"]);
    let postfix = Postfix::start_with(Setup {
        relay_port: relay.port,
        bounces,
        queue_lifetime: "1h",
    });
    let other = "bounces+d5-eeeeeeeeeeeeeeee@news.example.org";
    // A body line that an mbox must quote (">From ") and the reader unquote.
    let body = "\r\nFrom the quay, the cranes are back.\r\n";
    postfix.submit(
        HARD,
        &["gone@example.com"],
        &(digest("gone@example.com", 2) + body),
    );
    postfix.submit(
        other,
        &["gone@example.net"],
        &(digest("gone@example.net", 5) + body),
    );

    let delivered = |log: &str| {
        log.matches("status=sent (delivered to maildir)").count()
            + log.matches("status=sent (delivered to mailbox)").count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&postfix.log()) < 2 {
        assert!(
            Instant::now() < deadline,
            "two returns not delivered in 60 s\n--- maillog\n{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let path = postfix.mailbox(bounces);
    let found: Vec<mailbox::Found> = mailbox::read(std::slice::from_ref(&path), 1 << 20)
        .map(|m| m.expect("a delivered return"))
        .collect();
    assert_eq!(
        found.len(),
        2,
        "{:?}",
        found.iter().map(|f| &f.origin).collect::<Vec<_>>()
    );
    let mut tags = Vec::new();
    for f in &found {
        let text = String::from_utf8_lossy(&f.raw);
        // virtual(8) names the full VERP address, first in our order.
        let recipients = mailbox::header_recipients(&f.raw);
        assert!(
            text.starts_with("Return-Path: <>\n"),
            "{}: {text}",
            f.origin
        );
        assert_eq!(recipients.len(), 3, "{recipients:?}");
        assert!(
            recipients.iter().all(|r| r == &recipients[0]),
            "{recipients:?}"
        );
        tags.push(recipients[0].clone());
        let status = delivery_status(&f.raw);
        assert_eq!(
            (status["Action"].as_str(), status["Status"].as_str()),
            ("failed", "5.1.1")
        );
        assert!(
            text.contains("\nFrom the quay, the cranes are back."),
            "{text}"
        );
        assert!(!text.contains(">From the quay"), "{text}");
        match bounces {
            Bounces::Mbox => assert!(
                f.origin.starts_with(&format!("{}:", path.display())),
                "{}",
                f.origin
            ),
            _ => assert!(
                f.origin.starts_with(&format!("{}/new/", path.display())),
                "{}",
                f.origin
            ),
        }
    }
    tags.sort();
    assert_eq!(tags, [HARD, other]);
    if let Bounces::Mbox = bounces {
        let raw = std::fs::read(&path).expect("the mbox");
        assert!(
            String::from_utf8_lossy(&raw).contains("\n>From the quay"),
            "Postfix quoted the line in the mbox (so the reader had something to undo)"
        );
    }
}

#[test]
fn postfix_returns_in_a_maildir_are_read_with_their_verp_address() {
    returns_delivered_into(Bounces::Maildir);
}

#[test]
fn postfix_returns_in_an_mbox_are_split_and_unquoted() {
    returns_delivered_into(Bounces::Mbox);
}

/// The whole setup users will have: gazette sends through Postfix, which
/// relays to a server that refuses gone@ and defers later@; Postfix's own
/// DSNs go to the VERP addresses, which its `transport_maps` line hands to
/// `gazette serve`'s listener; the list shows the effect.
#[test]
fn gazette_behind_postfix_learns_from_postfixs_own_dsns() {
    let relay = SmtpServer::start(&[
        "--bounce-rcpt",
        "^gone@",
        "--tempfail-rcpt",
        "^later@:1000000",
    ]);
    let listener = common::smtp::free_port();
    let postfix = Postfix::start(relay.port, listener);
    let site = common::Site::mailing_now(
        &format!(
            "bounce_address = \"{}\"\n{}",
            common::postfix::BOUNCE_ADDRESS,
            common::smtp::via(postfix.smtpd_port, "none")
        ),
        &[
            "ok@example.com,Ok,active",
            "gone@example.com,Gone,active",
            "later@example.com,Later,active",
        ],
    );
    site.remove("content/2026-autumn");
    // serve's first cycle mails the issue through Postfix.
    let listen = format!("127.0.0.1:{listener}");
    let server = site.serve_with(common::serve::Opts {
        env: &[("GAZETTE_INBOUND_LISTEN", &listen)],
        ..Default::default()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let kinds = loop {
        let (_, body) = server.api("GET", "/inbound", None, None);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let kinds: BTreeMap<String, String> = v["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| {
                Some((
                    i["email"].as_str()?.to_string(),
                    i["kind"].as_str()?.to_string(),
                ))
            })
            .collect();
        if kinds.len() >= 2 {
            break kinds;
        }
        assert!(
            Instant::now() < deadline,
            "Postfix's DSNs did not reach gazette in 60 s: {v}\n--- gazette\n{}\n--- maillog\n{}",
            server.log_text(),
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(kinds["gone@example.com"], "hard", "{kinds:?}");
    assert_eq!(kinds["later@example.com"], "soft", "{kinds:?}");
    assert!(!kinds.contains_key("ok@example.com"), "{kinds:?}");
    assert_eq!(site.status_of("gone@example.com"), "bounced");
    assert_eq!(site.status_of("later@example.com"), "active");
    assert_eq!(site.status_of("ok@example.com"), "active");
    // The ledger keeps Postfix's words for the dead address.
    let deliveries = common::json(&site.gazette(&["--json", "deliveries", "2026-winter"]));
    let gone = deliveries["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["email"] == "gone@example.com")
        .cloned()
        .unwrap_or_default();
    assert_eq!(gone["status"], "bounced", "{deliveries}");
    assert!(
        gone["last_reply"]
            .as_str()
            .unwrap_or_default()
            .contains("5.1.1"),
        "{deliveries}"
    );
}

#[test]
fn digests_go_to_a_real_postfix_as_bdat_chunks_and_arrive_whole() {
    let relay = SmtpServer::start(&[]);
    let bounces = SmtpServer::start(&[]);
    let postfix = Postfix::start(relay.port, bounces.port);
    let site = common::Site::mailing_to_readers(3, &common::smtp::via(postfix.smtpd_port, "none"));
    // A line of the plain-text part that starts with ".": DATA would
    // double it and the server take one off; BDAT carries it as it is.
    site.write(
        "content/2026-winter/dots.txt",
        "Dots ahead\r\n\r\nNovember 18, 2026\r\n\r\nFrom the Winter 2026 issue of The Test Ledger\r\n\r\n\
         .NET and .io walked into a bar.\r\n",
    );
    let out = site.gazette(&["--json", "run"]);
    common::expect_code(&out, 0);
    let report = common::json(&out);
    assert_eq!(report["mail"]["send"]["sent"], 3, "{report}");

    let got = wait_for(&relay, 3, &postfix);
    // smtpd's side of the log (debug_peer_list): what gazette sent.
    let log = postfix.log();
    let smtpd: Vec<&str> = log.lines().filter(|l| l.contains("/smtpd[")).collect();
    assert!(
        smtpd.iter().filter(|l| l.contains("]: BDAT ")).count() == 3
            && !smtpd.iter().any(|l| l.ends_with("]: DATA")),
        "gazette did not use BDAT\n--- maillog\n{log}"
    );
    for m in &got {
        let text = String::from_utf8_lossy(&m.raw);
        assert!(
            text.contains("\r\n.NET and .io walked into a bar.") && !text.contains("..NET"),
            "{text}"
        );
    }
    // smtp_server.py saves the Nth message as msg/N.eml.
    let files: Vec<PathBuf> = (1..=got.len())
        .map(|i| relay.messages_dir().join(format!("{i}.eml")))
        .collect();
    common::mail::mimecheck(&files, common::mail::Kind::Bulk);
}
