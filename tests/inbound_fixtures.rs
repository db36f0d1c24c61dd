//! Every fixture of tests/fixtures/inbound through the real binary, twice:
//! handed to `serve`'s SMTP listener, and read by `inbound import` from a
//! Maildir. Each is about its own delivery (its placeholder TAG address is
//! replaced by a real one), so each must end as the table below says, in
//! the inbound record and in its subscriber's status.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::returns::deliver;
use common::serve::Opts;
use common::smtp::free_port;
use common::{Site, expect_code, json};
use gazette::mail::verp::{Tag, Verp};

/// The fixture, what gazette must record it as, and the subscriber's
/// status after it.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("postfix-hard.eml", "hard", "bounced"),
    ("postfix-delayed.eml", "soft", "active"),
    ("postfix-real-hard.eml", "hard", "bounced"),
    ("postfix-real-delayed.eml", "soft", "active"),
    ("postfix-real-expired.eml", "soft", "active"),
    ("exim-hard.eml", "hard", "bounced"),
    ("exim-delayed.eml", "soft", "active"),
    ("exim-text-hard.eml", "hard", "bounced"),
    ("sendmail-hard.eml", "hard", "bounced"),
    ("sendmail-delayed.eml", "soft", "active"),
    ("exchange-hard.eml", "hard", "bounced"),
    ("exchange-delayed.eml", "soft", "active"),
    ("exchange-text-hard.eml", "hard", "bounced"),
    ("exchange2003-text-hard.eml", "hard", "bounced"),
    ("gmail-hard.eml", "hard", "bounced"),
    ("gmail-delayed.eml", "soft", "active"),
    ("gmail-text-hard.eml", "hard", "bounced"),
    ("qmail-hard.eml", "hard", "bounced"),
    ("yahoo-hard.eml", "hard", "bounced"),
    ("arf-abuse-yahoo.eml", "complaint", "unsubscribed"),
    ("arf-abuse-aol.eml", "complaint", "unsubscribed"),
    ("arf-abuse-jmrp.eml", "complaint", "unsubscribed"),
    ("arf-not-spam.eml", "other", "active"),
    ("autoreply-rfc3834.eml", "auto_reply", "active"),
    ("autoreply-exchange-oof.eml", "auto_reply", "active"),
    ("autoreply-vacation.eml", "auto_reply", "active"),
    ("human-reply.eml", "other", "active"),
    ("garbage.eml", "other", "active"),
    ("empty.eml", "other", "active"),
    ("malformed-8bit-dsn.eml", "hard", "bounced"),
    ("dsn-dmarc-refusal.eml", "sender", "active"),
    ("dsn-two-recipients.eml", "hard", "bounced"),
    // To the List-Unsubscribe address: the token in the subject acts (this
    // test puts the subscriber's real token there), no token does nothing.
    ("unsubscribe-token.eml", "unsubscribe", "unsubscribed"),
    (
        "unsubscribe-auto-submitted.eml",
        "unsubscribe",
        "unsubscribed",
    ),
    ("unsubscribe-no-token.eml", "unsubscribe", "active"),
];

/// The placeholder TAG address the fixtures quote, and their token.
const PLACEHOLDER_TAG: &str = "bounces+d42-ab12cd34ef56gh7i@news.example.org";
const PLACEHOLDER_TOKEN: &str = "Jx3vQk9rT2mWc8LpZ0aY5dHn1sEfGuBi7oKqRw4tXyA";
const MAILTO: &str = "ledger+unsubscribe@example.org";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inbound")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn replace(haystack: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from.as_bytes()) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to.as_bytes());
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A delivery of the site's issue: its row, subscriber and token.
struct Row {
    delivery: i64,
    email: String,
    token: String,
}

#[test]
fn every_fixture_ends_as_expected_through_the_listener_and_through_import() {
    // The table covers every fixture: a new one needs its row here too.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inbound");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(f, _, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every fixture needs a row in EXPECTED");

    let n = EXPECTED.len() * 2;
    let site = Site::mailing_to_readers(n, "bounce_address = \"bounces@news.example.org\"\n");
    expect_code(&site.gazette(&["run"]), 0);
    let (verp, rows) = site.with_db(async |store| {
        let key = store.verp_key().await.expect("key");
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT d.id, s.email, s.token FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.status = 'sent' ORDER BY d.id",
        )
        .fetch_all(store.pool())
        .await
        .expect("deliveries");
        (key, rows)
    });
    assert_eq!(rows.len(), n);
    let config = gazette::config::Config::load(&site.path("config.toml")).expect("config");
    let verp = Verp::from_config(&config, verp).expect("bounce address set");
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(delivery, email, token)| Row {
            delivery,
            email,
            token,
        })
        .collect();

    // Which message is about whom, and what it must become.
    let message = |file: &str, row: &Row| -> (String, Vec<u8>) {
        let raw = fixture(file);
        if file.starts_with("unsubscribe-") {
            // That fixture's subject is RFC 2047 Q-encoded, where '_'
            // means a space: a token's '_' is written =5F there.
            let token = if file == "unsubscribe-auto-submitted.eml" {
                row.token.replace('_', "=5F")
            } else {
                row.token.clone()
            };
            let raw = replace(&raw, PLACEHOLDER_TOKEN, &token);
            let mut with = format!("Delivered-To: {MAILTO}\r\n").into_bytes();
            with.extend(raw);
            (MAILTO.to_string(), with)
        } else {
            let tag = verp.envelope_sender(Tag::Delivery(row.delivery));
            let raw = replace(&raw, PLACEHOLDER_TAG, &tag);
            // As the local delivery agent writes it into a Maildir.
            let mut with = format!("Delivered-To: {tag}\r\n").into_bytes();
            with.extend(raw);
            (tag, with)
        }
    };

    // The first half through the listener.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = site.serve_with(Opts {
        env: &[("GAZETTE_INBOUND_LISTEN", &listen)],
        ..Opts::default()
    });
    let mut want: BTreeMap<String, (&str, &str, &str)> = BTreeMap::new();
    for (i, (file, kind, status)) in EXPECTED.iter().enumerate() {
        let row = &rows[i];
        let (to, raw) = message(file, row);
        let (rcpt, data) = deliver(port, &[&to], &raw);
        assert!(rcpt[0].starts_with("250"), "{file}: {rcpt:?}");
        assert!(data.starts_with("250"), "{file}: {data}");
        want.insert(row.email.clone(), (file, kind, status));
    }
    drop(server);

    // The second half from a Maildir.
    for (i, (file, kind, status)) in EXPECTED.iter().enumerate() {
        let row = &rows[EXPECTED.len() + i];
        let (_, raw) = message(file, row);
        let path = site.path(&format!("returns/new/{i:03}-{file}"));
        std::fs::create_dir_all(path.parent().expect("folder")).expect("maildir");
        std::fs::write(&path, raw).expect("write");
        want.insert(row.email.clone(), (file, kind, status));
    }
    std::fs::create_dir_all(site.path("returns/cur")).expect("maildir");
    let out = site.gazette(&["--json", "inbound", "import", "returns"]);
    expect_code(&out, 0);
    assert_eq!(json(&out)["processed"], EXPECTED.len());

    // Every record and every subscriber as the table says.
    let listed = json(&site.gazette(&["--json", "inbound", "list", "--limit", "500"]));
    let records = listed.as_array().expect("list");
    assert_eq!(records.len(), n);
    let statuses = site.subscribers();
    let mut wrong = Vec::new();
    for (email, (file, kind, status)) in &want {
        let got_status = statuses[email]["status"].as_str().unwrap_or_default();
        // A mailto without a token names nobody: counted below.
        let got_kind = if *file == "unsubscribe-no-token.eml" {
            "unsubscribe"
        } else {
            records
                .iter()
                .find(|r| r["email"].as_str() == Some(email))
                .and_then(|r| r["kind"].as_str())
                .unwrap_or("(no record)")
        };
        if got_kind != *kind || got_status != *status {
            wrong.push(format!(
                "{file} for {email}: recorded {got_kind}, subscriber {got_status}; want {kind}, {status}"
            ));
        }
    }
    let nobody = records
        .iter()
        .filter(|r| r["kind"] == "unsubscribe" && r["subscriber_id"].is_null())
        .count();
    assert_eq!(nobody, 2, "the two token-less unsubscribes: {listed}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
