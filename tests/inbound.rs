//! Returned mail against the real binary: digests go out over SMTP with VERP
//! envelope senders, returns come back to `serve`'s SMTP listener (and
//! through `inbound import`), and the ledger, the list and the next issue's
//! recipients show the effect.

mod common;

use std::time::{Duration, Instant};

use common::returns::{self, Original, deliver};
use common::serve::{Opts, Server};
use common::smtp::{self, SmtpServer, free_port};
use common::{Site, expect_code, json, stdout};

const BOUNCE_TO: &str = "bounces@example.org";

/// A delivery as the test SMTP server received it: whom it was for, the
/// VERP envelope sender it came from, and its Message-ID.
#[derive(Debug, Clone)]
struct Sent {
    rcpt: String,
    verp: String,
    message_id: String,
    /// The token of the List-Unsubscribe mailto subject.
    token: String,
    mailto: String,
}

/// Every message the test server got, with what the returns need.
fn sent(server: &SmtpServer) -> Vec<Sent> {
    let mut out = Vec::new();
    for (i, r) in server.received().into_iter().enumerate() {
        let raw = std::fs::read_to_string(server.messages_dir().join(format!("{}.eml", i + 1)))
            .unwrap_or_default();
        let unfolded = raw.replace("\r\n ", " ").replace("\r\n\t", " ");
        let mailto = unfolded
            .split("<mailto:")
            .nth(1)
            .and_then(|m| m.split('>').next())
            .unwrap_or_default();
        let (addr, subject) = mailto.split_once("?subject=").unwrap_or((mailto, ""));
        out.push(Sent {
            rcpt: r.rcpt[0].clone(),
            verp: r.mail_from.clone(),
            message_id: r.message_id.clone().unwrap_or_default(),
            token: subject.trim_start_matches("unsubscribe%20").to_string(),
            mailto: addr.to_string(),
        });
    }
    out
}

impl Sent {
    fn original(&self) -> Original<'_> {
        Original {
            rcpt: &self.rcpt,
            verp: &self.verp,
            message_id: &self.message_id,
        }
    }
}

/// A site mailing over SMTP with a bounce address, its first issue sent to
/// `rows` (`email,name,status`), and what the SMTP server received.
fn sent_site(smtp: &SmtpServer, rows: &[&str]) -> (Site, Vec<Sent>) {
    let site = Site::mailing_now(
        &format!(
            "bounce_address = \"{BOUNCE_TO}\"\n{}",
            smtp::via(smtp.port, "none")
        ),
        rows,
    );
    site.remove("content/2026-autumn");
    expect_code(&site.gazette(&["run"]), 0);
    let sent = sent(smtp);
    assert_eq!(sent.len(), rows.len(), "{sent:?}");
    (site, sent)
}

fn of<'a>(sent: &'a [Sent], rcpt: &str) -> &'a Sent {
    sent.iter()
        .find(|s| s.rcpt == rcpt)
        .unwrap_or_else(|| panic!("nothing sent to {rcpt}: {sent:?}"))
}

fn serve_inbound(site: &Site) -> (Server, u16) {
    serve_inbound_with(site, &[])
}

fn serve_inbound_with(site: &Site, env: &[(&str, &str)]) -> (Server, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec![("GAZETTE_INBOUND_LISTEN", listen.as_str())];
    all.extend_from_slice(env);
    let server = site.serve_with(Opts {
        env: &all,
        ..Opts::default()
    });
    (server, port)
}

/// Effects must show within 20 s of the message being accepted (they are
/// recorded before the 250, so at once here).
fn inbound_items(server: &Server) -> Vec<serde_json::Value> {
    let (status, body) = server.api("GET", "/inbound?limit=100", None, None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn returns_through_the_listener_change_the_ledger_the_list_and_the_next_issue() {
    let smtp = SmtpServer::start(&[]);
    let rows = [
        "hard@example.net,Hard,active",
        "soft@example.net,Soft,active",
        "complains@example.net,Complains,active",
        "leaves@example.net,Leaves,active",
        "stays@example.net,Stays,active",
    ];
    let (site, sent) = sent_site(&smtp, &rows);
    // Every message went out from its own VERP address.
    let mut verps: Vec<&str> = sent.iter().map(|s| s.verp.as_str()).collect();
    verps.sort();
    verps.dedup();
    assert_eq!(verps.len(), rows.len());
    for s in &sent {
        assert!(
            s.verp.starts_with("bounces+d") && s.verp.ends_with("@example.org"),
            "{s:?}"
        );
        let tag = &s.verp["bounces+".len()..s.verp.len() - "@example.org".len()];
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._=-".contains(&b)),
            "{tag}"
        );
    }
    let (server, port) = serve_inbound(&site);

    let hard = of(&sent, "hard@example.net");
    let (rcpt, data) = deliver(
        port,
        &[&hard.verp],
        returns::postfix_dsn(
            &hard.verp,
            &hard.original(),
            "failed",
            "5.1.1",
            "550 5.1.1 <hard@example.net>: Recipient address rejected: User unknown",
        )
        .as_bytes(),
    );
    assert!(rcpt[0].starts_with("250"), "{rcpt:?}");
    assert!(data.starts_with("250"), "{data}");

    let soft = of(&sent, "soft@example.net");
    let (_, data) = deliver(
        port,
        &[&soft.verp],
        returns::postfix_dsn(
            &soft.verp,
            &soft.original(),
            "delayed",
            "4.2.2",
            "452 4.2.2 Mailbox full",
        )
        .as_bytes(),
    );
    assert!(data.starts_with("250"), "{data}");

    let complains = of(&sent, "complains@example.net");
    let (_, data) = deliver(
        port,
        &[&complains.verp],
        returns::arf(&complains.verp, &complains.original()).as_bytes(),
    );
    assert!(data.starts_with("250"), "{data}");

    let leaves = of(&sent, "leaves@example.net");
    assert_eq!(leaves.mailto, "ledger+unsubscribe@example.org");
    // Without the token (From can be forged): nothing changes.
    let (_, data) = deliver(
        port,
        &[&leaves.mailto],
        returns::unsubscribe_mail(&leaves.mailto, "leaves@example.net", "unsubscribe").as_bytes(),
    );
    assert!(data.starts_with("250"), "{data}");
    assert_eq!(site.status_of("leaves@example.net"), "active");
    let (_, data) = deliver(
        port,
        &[&leaves.mailto],
        returns::unsubscribe_mail(
            &leaves.mailto,
            "someone@example.net",
            &format!("unsubscribe {}", leaves.token),
        )
        .as_bytes(),
    );
    assert!(data.starts_with("250"), "{data}");

    // An out-of-office reply to a digest: counted, nothing else.
    let stays = of(&sent, "stays@example.net");
    let (_, data) = deliver(
        port,
        &[&stays.verp],
        returns::out_of_office(&stays.verp, "stays@example.net").as_bytes(),
    );
    assert!(data.starts_with("250"), "{data}");

    // The list and the ledger show it.
    assert_eq!(site.status_of("hard@example.net"), "bounced");
    assert_eq!(site.status_of("soft@example.net"), "active");
    assert_eq!(site.status_of("complains@example.net"), "unsubscribed");
    assert_eq!(site.status_of("leaves@example.net"), "unsubscribed");
    assert_eq!(site.status_of("stays@example.net"), "active");
    let deliveries = json(&site.gazette(&["--json", "deliveries", "2026-winter"]));
    let problems = deliveries["problems"].as_array().expect("problems");
    let bounced: Vec<&serde_json::Value> = problems
        .iter()
        .filter(|p| p["status"] == "bounced")
        .collect();
    assert_eq!(bounced.len(), 1, "{deliveries}");
    let reply = bounced[0]["last_reply"].as_str().unwrap_or_default();
    assert!(
        reply.contains("5.1.1") && reply.contains("User unknown"),
        "{deliveries}"
    );

    // The API and the CLI say what was decided, and why.
    let items = inbound_items(&server);
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    for k in ["hard", "soft", "complaint", "unsubscribe", "auto_reply"] {
        assert!(kinds.contains(&k), "{k} missing: {items:?}");
    }
    let hard_row = items.iter().find(|i| i["kind"] == "hard").expect("hard");
    assert_eq!(hard_row["email"], "hard@example.net");
    assert_eq!(hard_row["issue"], "2026-winter");
    assert_eq!(hard_row["status"], "5.1.1");
    let list = stdout(&site.gazette(&["inbound", "list"]));
    assert!(
        list.contains("hard bounce: subscriber marked bounced"),
        "{list}"
    );
    assert_eq!(
        server.metric("gazette_inbound_messages{kind=\"hard\"}"),
        Some(1.0)
    );
    assert_eq!(
        server.metric("gazette_inbound_messages{kind=\"unsubscribe\"}"),
        Some(2.0)
    );

    // A complaint is suppressed like an erasure: no admin add brings the
    // address back.
    let add = site.gazette(&["subscribers", "add", "complains@example.net", "--confirmed"]);
    assert_ne!(add.status.code(), Some(0), "{}", stdout(&add));
    assert_eq!(site.status_of("complains@example.net"), "unsubscribed");
    // Nor an edit through the API, nor an import.
    let (_, body) = server.api("GET", "/subscribers?q=complains", None, None);
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let id = listed["items"][0]["id"].as_i64().expect("id");
    let (status, body) = server.api(
        "PATCH",
        &format!("/subscribers/{id}"),
        None,
        Some(r#"{"status": "active"}"#),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("spam complaint"), "{body}");
    let (status, body) = server.api(
        "POST",
        "/subscribers/import",
        None,
        Some("email,name\ncomplains@example.net,Again\n"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"imported\":0"), "{body}");
    assert_eq!(site.status_of("complains@example.net"), "unsubscribed");

    // The next issue goes to the soft-bounced and the untouched readers only.
    site.add_issue("2026-spring", "Spring");
    let before = smtp.received().len();
    server.cycle();
    let next: Vec<String> = smtp.received()[before..]
        .iter()
        .flat_map(|r| r.rcpt.clone())
        .collect();
    let mut next = next;
    next.sort();
    assert_eq!(next, ["soft@example.net", "stays@example.net"]);
    drop(server);
}

#[test]
fn the_listener_refuses_what_is_not_ours_and_survives_garbage_floods_and_crowds() {
    let smtp = SmtpServer::start(&[]);
    let (site, sent) = sent_site(&smtp, &["one@example.net,One,active"]);
    let (server, port) = serve_inbound_with(&site, &[("GAZETTE_INBOUND_MAX_SESSIONS", "3")]);
    let one = &sent[0];

    // More sessions than inbound.max_sessions: the one past it is turned
    // away at the greeting; once one closes, a new one is served.
    let crowd: Vec<_> = (0..3)
        .map(|_| {
            let (s, greeting) = returns::Session::connect(port);
            assert!(greeting.starts_with("220"), "{greeting}");
            s
        })
        .collect();
    let (_, greeting) = returns::Session::connect(port);
    assert!(greeting.starts_with("421"), "{greeting}");
    drop(crowd);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, greeting) = returns::Session::connect(port);
        if greeting.starts_with("220") {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed: {greeting}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Forged and foreign addresses are refused at RCPT.
    let forged = {
        let (head, mac) = one.verp.split_once('-').expect("tag");
        let mut m: Vec<char> = mac.chars().collect();
        m[0] = if m[0] == 'a' { 'b' } else { 'a' };
        format!("{head}-{}", m.into_iter().collect::<String>())
    };
    let other_row = one.verp.replacen("+d", "+d9", 1);
    for not_ours in [
        forged.as_str(),
        other_row.as_str(),
        "postmaster@example.org",
        "someone@example.net",
    ] {
        let (rcpt, data) = deliver(port, &[not_ours], b"Subject: x\r\n\r\nx\r\n");
        assert!(rcpt[0].starts_with("550"), "{not_ours}: {rcpt:?}");
        assert!(data.is_empty());
    }

    // A 20 MB message: refused whole (552), the session and serve go on.
    let big = {
        let mut m = returns::postfix_dsn(&one.verp, &one.original(), "failed", "5.1.1", "550 gone")
            .into_bytes();
        m.extend(std::iter::repeat_n(b'x', 20 << 20).collect::<Vec<u8>>());
        m
    };
    let (rcpt, data) = deliver(port, &[&one.verp], &big);
    assert!(rcpt[0].starts_with("250"), "{rcpt:?}");
    assert!(data.starts_with("552"), "{data}");
    assert_eq!(site.status_of("one@example.net"), "active");

    // Garbage bytes as a message: accepted and counted as other mail.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..50_000)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 24) as u8
        })
        .collect();
    let (_, data) = deliver(port, &[&one.verp], &garbage);
    assert!(data.starts_with("250"), "{data}");
    // Garbage commands: an error each, and the server answers the next one.
    let (mut s, _) = returns::Session::connect(port);
    for junk in [
        "\u{1}\u{2}\u{3}",
        "EHLO",
        "MAIL TO:<x>",
        "RCPT TO:<>",
        "DATA",
    ] {
        let r = s.command(junk);
        assert!(r.starts_with('5'), "{junk:?}: {r}");
    }
    assert!(s.command("NOOP").starts_with("250"));

    // A report split into one-byte writes still arrives whole.
    let dsn = returns::postfix_dsn(
        &one.verp,
        &one.original(),
        "failed",
        "5.1.1",
        "550 5.1.1 user unknown",
    );
    let (mut s, _) = returns::Session::connect(port);
    assert!(s.command("HELO relay.example.net").starts_with("250"));
    assert!(s.command("MAIL FROM:<>").starts_with("250"));
    assert!(
        s.command(&format!("RCPT TO:<{}>", one.verp))
            .starts_with("250")
    );
    let r = s.data(dsn.as_bytes(), 1);
    assert!(r.starts_with("250"), "{r}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while site.status_of("one@example.net") != "bounced" {
        assert!(Instant::now() < deadline, "not bounced within 20 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // HTTP kept answering all along.
    let (status, _, _) = server.get("/healthz");
    assert_eq!(status, 200);
    let kinds: Vec<String> = inbound_items(&server)
        .iter()
        .filter_map(|i| i["kind"].as_str().map(str::to_string))
        .collect();
    assert_eq!(kinds, ["hard", "other"], "newest first");
}

#[test]
fn inbound_import_reads_files_maildirs_and_mboxes_once() {
    let smtp = SmtpServer::start(&[]);
    let (site, sent) = sent_site(
        &smtp,
        &[
            "a@example.net,A,active",
            "b@example.net,B,active",
            "c@example.net,C,active",
        ],
    );
    let (a, b, c) = (
        of(&sent, "a@example.net"),
        of(&sent, "b@example.net"),
        of(&sent, "c@example.net"),
    );
    // A Maildir with a hard bounce (Delivered-To names the TAG address),
    // an mbox with a complaint and a report to the plain address, matched
    // by the Message-ID inside it.
    site.write(
        "returns/Maildir/new/1.eml",
        &returns::postfix_dsn(
            &a.verp,
            &a.original(),
            "failed",
            "5.1.1",
            "550 5.1.1 no such user",
        ),
    );
    site.write("returns/Maildir/cur/.keep", "");
    // A TAG with a MAC gazette did not make: recorded as forged, nobody
    // touched.
    let forged_tag = {
        let (local, domain) = a.verp.split_once('@').expect("address");
        let (head, mac) = local.split_once('-').expect("tag");
        let flipped: String = mac.chars().rev().collect();
        format!("{head}-{flipped}@{domain}")
    };
    assert_ne!(forged_tag, a.verp);
    let c_original = c.original();
    site.write(
        "returns/Maildir/new/2.eml",
        &returns::postfix_dsn(
            &forged_tag,
            &Original {
                verp: &forged_tag,
                ..c_original
            },
            "failed",
            "5.1.1",
            "550 5.1.1 forged",
        ),
    );
    let mbox = format!(
        "From MAILER-DAEMON Tue Dec  1 10:00:00 2026\n{}\nFrom fbl@mail.example.net Tue Dec  1 11:00:00 2026\n{}\n",
        returns::arf(&b.verp, &b.original()).replace("\r\n", "\n"),
        returns::postfix_dsn(
            BOUNCE_TO,
            &c.original(),
            "failed",
            "5.2.1",
            "550 5.2.1 mailbox disabled"
        )
        .replace("\r\n", "\n"),
    );
    site.write("returns/inbox.mbox", &mbox);
    let out = site.gazette(&[
        "inbound",
        "import",
        &site.path("returns/Maildir").display().to_string(),
        &site.path("returns/inbox.mbox").display().to_string(),
    ]);
    expect_code(&out, 0);
    let said = stdout(&out);
    assert!(said.contains("4 processed"), "{said}");
    assert!(said.contains("1 forged"), "{said}");
    assert_eq!(site.status_of("a@example.net"), "bounced");
    assert_eq!(site.status_of("b@example.net"), "unsubscribed");
    assert_eq!(site.status_of("c@example.net"), "bounced");

    // Again: nothing new, nothing changed.
    let out = site.gazette(&[
        "--json",
        "inbound",
        "import",
        &site.path("returns").display().to_string(),
        &site.path("returns/Maildir").display().to_string(),
        &site.path("returns/inbox.mbox").display().to_string(),
    ]);
    let v = json(&out);
    assert_eq!(v["processed"], 0, "{v}");
    // The folder holds both again (its mbox file and its Maildir): eight
    // sightings of the four messages.
    assert_eq!(v["seen_before"], 8, "{v}");

    // A 20 MB message is named and skipped, unread (inbound.max_message_bytes).
    let big = format!(
        "{}{}",
        returns::postfix_dsn(&a.verp, &a.original(), "failed", "5.1.1", "550 big"),
        "x".repeat(20 << 20)
    );
    site.write("big/huge.eml", &big);
    let out = site.gazette(&["inbound", "import", "big"]);
    expect_code(&out, 1);
    let err = common::stderr(&out);
    assert!(
        err.contains("huge.eml") && err.contains("over the limit"),
        "{err}"
    );

    // A path that does not exist is named; the rest still count.
    let out = site.gazette(&["inbound", "import", "/nonexistent/returns"]);
    expect_code(&out, 1);
    assert!(
        common::stderr(&out).contains("/nonexistent/returns"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn without_a_bounce_address_mail_goes_out_from_mail_from_and_import_says_why() {
    let smtp = SmtpServer::start(&[]);
    let site = Site::mailing_now(&smtp::via(smtp.port, "none"), &["a@example.net,A,active"]);
    site.remove("content/2026-autumn");
    expect_code(&site.gazette(&["run"]), 0);
    assert_eq!(smtp.received()[0].mail_from, "ledger@example.org");
    site.write("r.eml", "Subject: x\r\n\r\nx\r\n");
    let out = site.gazette(&["inbound", "import", "r.eml"]);
    expect_code(&out, 1);
    assert!(
        common::stderr(&out).contains("mail.bounce_address is not set"),
        "{}",
        common::stderr(&out)
    );
}
