//! Internationalized addresses against the real binary and real servers: a
//! Unicode domain is mailed as IDNA, a Unicode local part with SMTPUTF8 (or
//! refused where it enters), one subscriber per domain spelling, and names
//! without invisible direction tricks.

mod common;

use common::serve::StatusCode;
use common::smtp::{SmtpServer, via};
use common::{Site, expect_code, json, sent_and, stderr, stdout};

/// A site whose issues are always recent enough to mail, with `mail` added
/// to the `[mail]` section and `subscribers` imported (exit 0 expected).
fn site_with(mail: &str, subscribers: &[&str]) -> Site {
    let site = Site::mailing_now(mail, subscribers);
    // One issue is enough.
    site.remove("content/2026-autumn");
    site
}

fn smtp(port: u16, smtputf8: bool) -> String {
    format!("smtputf8 = {smtputf8}\n{}", via(port, "none"))
}

/// The addresses `subscribers list` shows, in its order.
fn emails(site: &Site) -> Vec<String> {
    let list = json(&site.gazette(&["--json", "subscribers", "list"]));
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap().to_string())
        .collect()
}

/// The saved messages' `To:` header lines.
fn to_headers(server: &SmtpServer) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(server.messages_dir()).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let text = String::from_utf8(bytes).expect("UTF-8 message");
        let to = text
            .lines()
            .find(|l| l.starts_with("To: "))
            .unwrap_or_else(|| panic!("no To: in {text}"));
        out.push(to.to_string());
    }
    out.sort();
    out
}

#[test]
fn a_unicode_domain_imports_and_its_digest_reaches_the_server_as_idna() {
    let server = SmtpServer::start(&[]);
    let site = site_with(
        &smtp(server.port, false),
        &[
            "zoe@bücher.example,Zoë,active",
            "ann@example.org,Ann,active",
        ],
    );
    assert_eq!(emails(&site), ["zoe@bücher.example", "ann@example.org"]);

    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v = json(&out);
    assert_eq!(v["mail"]["send"]["sent"], 2, "{v}");
    // The envelope the server recorded: the domain as IDNA, no SMTPUTF8.
    let mut rcpts: Vec<String> = server
        .received()
        .iter()
        .flat_map(|m| {
            assert!(m.mail_options.is_empty(), "{m:?}");
            m.rcpt.clone()
        })
        .collect();
    rcpts.sort();
    assert_eq!(rcpts, ["ann@example.org", "zoe@xn--bcher-kva.example"]);
    let to = to_headers(&server);
    assert!(
        to.iter()
            .any(|t| t.ends_with("<zoe@xn--bcher-kva.example>") && t.is_ascii()),
        "{to:?}"
    );

    // The file outbox writes what SMTP would send.
    let site = site_with("", &["zoe@BÜCHER.example,,active"]);
    expect_code(&site.gazette(&["run"]), 0);
    let files: Vec<_> = walk(&site.path("outbox"));
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("To: zoe@xn--bcher-kva.example\r\n"), "{text}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_unicode_local_part_is_refused_where_it_enters_when_smtputf8_is_off() {
    let site = site_with("", &["ann@example.org,,active"]);
    let why = "needs SMTPUTF8";

    // CSV: the row, by FILE:LINE; the other rows still import.
    site.write(
        "more.csv",
        "email,name\nbob@example.org,Bob\nzoë@bücher.example,Zoë\n",
    );
    let out = site.gazette(&["subscribers", "import", "more.csv"]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("more.csv:3:") && all.contains("zoë@bücher.example") && all.contains(why),
        "{all}"
    );
    // CLI.
    let out = site.gazette(&["subscribers", "add", "zoë@bücher.example", "--confirmed"]);
    expect_code(&out, 1);
    assert!(stderr(&out).contains(why), "{}", stderr(&out));

    // API and form.
    let server = site.serve();
    let (status, body) = server.api(
        "POST",
        "/subscribers",
        None,
        Some(r#"{"email": "zoë@bücher.example"}"#),
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains(why), "{body}");
    let (status, body) = server.api(
        "POST",
        "/subscribers/import",
        None,
        Some("email\nzoë@bücher.example\n"),
    );
    assert!(body.contains(why) && body.contains('2'), "{status} {body}");
    let (status, page) = server.post_form(
        "/subscribe",
        &[("email", "zoë@bücher.example"), ("name", "")],
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("That address cannot be used"), "{page}");
    // A Unicode domain with an ASCII local part signs up fine.
    let (status, page) = server.post_form(
        "/subscribe",
        &[("email", "zoe@bücher.example"), ("name", "")],
    );
    assert_eq!(status, StatusCode::OK, "{page}");
    drop(server);

    let emails = emails(&site);
    assert!(!emails.iter().any(|e| e.starts_with("zoë")), "{emails:?}");
    assert!(emails.iter().any(|e| e == "bob@example.org"), "{emails:?}");
    assert!(
        emails.iter().any(|e| e == "zoe@bücher.example"),
        "{emails:?}"
    );
}

#[test]
fn with_smtputf8_on_a_unicode_local_part_goes_with_smtputf8_to_a_server_that_offers_it() {
    let server = SmtpServer::start(&["--smtputf8"]);
    let site = site_with(
        &smtp(server.port, true),
        &["zoë@bücher.example,Zoë,active", "ann@example.org,,active"],
    );
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    assert_eq!(json(&out)["mail"]["send"]["sent"], 2, "{}", stdout(&out));
    let got = server.received();
    let zoe = got
        .iter()
        .find(|m| m.rcpt == ["zoë@xn--bcher-kva.example"])
        .unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(zoe.mail_options, ["SMTPUTF8"]);
    let ann = got.iter().find(|m| m.rcpt == ["ann@example.org"]).unwrap();
    assert!(ann.mail_options.is_empty(), "{ann:?}");
    let to = to_headers(&server);
    assert!(
        to.iter().any(|t| t.contains("<zoë@xn--bcher-kva.example>")),
        "{to:?}"
    );
}

#[test]
fn a_server_without_smtputf8_fails_that_delivery_with_the_reason_once() {
    let server = SmtpServer::start(&[]);
    let site = site_with(
        &smtp(server.port, true),
        &["zoë@bücher.example,,active", "ann@example.org,,active"],
    );
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v = json(&out);
    assert_eq!(sent_and(&v, "failed"), (Some(1), Some(1)), "{v}");
    assert_eq!(server.per_recipient().len(), 1);
    let text = stdout(&site.gazette(&["deliveries", "2026-winter"]));
    assert!(
        text.contains("zoë@bücher.example")
            && text.contains("needs SMTPUTF8")
            && text.contains("does not offer"),
        "{text}"
    );
    // Failed, not retried: nothing is due next time.
    let out = site.gazette(&["run"]);
    assert!(
        stdout(&out).contains("Mail: nothing due"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn punycode_and_unicode_spellings_of_a_domain_are_one_subscriber() {
    let site = site_with("", &["reader@bücher.example,Reader,active"]);
    for spelling in ["reader@xn--bcher-kva.example", "READER@BÜCHER.EXAMPLE"] {
        let out = site.gazette(&["subscribers", "add", spelling, "--confirmed"]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.contains("already"), "{spelling}: {all}");
    }
    site.write("again.csv", "email\nreader@xn--bcher-kva.example\n");
    let out = site.gazette(&["--json", "subscribers", "import", "again.csv"]);
    expect_code(&out, 0);
    let list = json(&site.gazette(&["--json", "subscribers", "list"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["email"], "reader@bücher.example");
    // Removing by the other spelling finds the same subscriber.
    let out = site.gazette(&["subscribers", "remove", "reader@xn--bcher-kva.example"]);
    expect_code(&out, 0);
    assert_eq!(site.status_of("reader@bücher.example"), "unsubscribed");
}

#[test]
fn names_with_direction_overrides_or_zero_width_characters_are_refused_everywhere() {
    let site = site_with("", &[]);
    let evil = "Ann \u{202e}gnp.exe";
    site.says_on_stderr(
        &["subscribers", "add", "ann@example.org", "--name", evil],
        1,
        "invisible direction control (U+202E)",
    );
    site.write(
        "names.csv",
        "email,name\nbob@example.org,Bob\ncy@example.org,C\u{200b}y\n",
    );
    let out = site.gazette(&["subscribers", "import", "names.csv"]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("names.csv:3:") && all.contains("zero-width character (U+200B)"),
        "{all}"
    );
    // Joiners some scripts need are kept.
    let persian = "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}";
    let out = site.gazette(&["subscribers", "add", "dee@example.org", "--name", persian]);
    expect_code(&out, 0);

    let server = site.serve();
    let body = serde_json::json!({"email": "eve@example.org", "name": evil}).to_string();
    let (status, text) = server.api("POST", "/subscribers", None, Some(&body));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("U+202E"), "{text}");
    let (status, page) = server.post_form(
        "/subscribe",
        &[("email", "fay@example.org"), ("name", evil)],
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("That name cannot be used"), "{page}");
}

/// A self-signed certificate for 127.0.0.1 (not a CA), trusted as
/// `mail.smtp.ca_file`: (cert, key).
fn self_signed(dir: &std::path::Path) -> (String, String) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .output()
        .expect("openssl (Debian package openssl) is needed for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = |f: &str| dir.join(f).display().to_string();
    (p("cert.pem"), p("key.pem"))
}

#[test]
fn over_starttls_and_tls_smtputf8_is_used_when_offered_and_its_absence_fails_the_delivery() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let tls = format!("{cert}:{key}");
    for (flag, security) in [("--starttls", "starttls"), ("--tls", "tls")] {
        for offered in [false, true] {
            let mut args = vec![flag, tls.as_str()];
            if offered {
                args.push("--smtputf8");
            }
            let server = SmtpServer::start(&args);
            let mail = format!(
                "smtputf8 = true\n{}ca_file = \"{cert}\"\n",
                via(server.port, security)
            );
            let site = site_with(
                &mail,
                &["zoë@bücher.example,,active", "ann@bücher.example,,active"],
            );
            let out = site.gazette(&["--json", "run"]);
            expect_code(&out, 0);
            let v = json(&out);
            let want = if offered { (2, 0) } else { (1, 1) };
            assert_eq!(
                sent_and(&v, "failed"),
                (Some(want.0), Some(want.1)),
                "{security} offered={offered}: {v}"
            );
            let got = server.received();
            let ann = got
                .iter()
                .find(|m| m.rcpt == ["ann@xn--bcher-kva.example"])
                .unwrap_or_else(|| panic!("{security}: {got:?}"));
            assert!(ann.mail_options.is_empty(), "{ann:?}");
            if offered {
                let zoe = got
                    .iter()
                    .find(|m| m.rcpt == ["zoë@xn--bcher-kva.example"])
                    .unwrap_or_else(|| panic!("{security}: {got:?}"));
                assert!(zoe.mail_options.iter().any(|o| o == "SMTPUTF8"), "{zoe:?}");
            } else {
                let text = stdout(&site.gazette(&["deliveries", "2026-winter"]));
                assert!(text.contains("SMTPUTF8"), "{security}: {text}");
                let out = site.gazette(&["run"]);
                assert!(
                    stdout(&out).contains("Mail: nothing due"),
                    "{security}: {}",
                    stdout(&out)
                );
            }
        }
    }
}
