//! A reader's whole journey, end to end, with real parts only: headless
//! Chromium (JavaScript off, phone-sized) on the pages of `gazette serve`,
//! aiosmtpd receiving the mail, and a raw one-click POST as a mail provider
//! sends it (RFC 8058).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::StatusCode;
use common::smtp::SmtpServer;
use common::{Site, expect_code, stderr, stdout, tool};
use mail_parser::MessageParser;
use serde_json::Value;

const BASE: &str = "https://news.example.org/ledger";

/// One step of tests/browser/flow.mjs, parsed.
fn chromium(step: &str, url: &str, args: &[&str]) -> Value {
    let node = tool("node", "nodejs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed in tests/browser: run `bash .ci/test` \
         (or `cd tests/browser && npm ci`)"
    );
    let out = Command::new(node)
        .arg(dir.join("flow.mjs"))
        .arg(step)
        .arg(url)
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "flow.mjs {step} {url}: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("flow.mjs printed no JSON ({e}): {}", stdout(&out)))
}

/// A page as the browser saw it: HTML, in a language, with the three feed
/// links, and no script.
fn assert_page(what: &str, page: &Value, status: u64) {
    assert_eq!(page["status"], status, "{what}: {page}");
    assert!(
        !page["lang"].as_str().unwrap_or("").is_empty(),
        "{what}: no lang"
    );
    assert_eq!(page["scripts"], 0, "{what}: has <script>");
    let feeds: Vec<&str> = page["feeds"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for t in [
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
    ] {
        assert!(
            feeds.contains(&t),
            "{what}: no {t} autodiscovery link: {feeds:?}"
        );
    }
}

/// The messages the SMTP server received for `to`, oldest first.
fn mail_for(smtp: &SmtpServer, to: &str) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(smtp.messages_dir())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    });
    files
        .iter()
        .filter_map(|p| {
            let raw = std::fs::read(p).ok()?;
            let m = MessageParser::default().parse(&raw)?;
            let rcpt = m.to()?.first()?.address()?.to_string();
            (rcpt == to).then(|| {
                let head = String::from_utf8_lossy(&raw)
                    .split("\r\n\r\n")
                    .next()
                    .unwrap_or("")
                    .replace("\r\n ", " ");
                let text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
                (head, format!("{}\n{text}", m.subject().unwrap_or("")))
            })
        })
        .collect()
}

fn wait_for_mail(smtp: &SmtpServer, to: &str, n: usize) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let got = mail_for(smtp, to);
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{to} got {} messages, expected {n}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for the message to `to` whose subject starts with `subject`.
fn wait_for_subject(smtp: &SmtpServer, to: &str, subject: &str) -> (String, String) {
    let start = Instant::now();
    loop {
        if let Some(m) = mail_for(smtp, to)
            .into_iter()
            .find(|(_, b)| b.starts_with(subject))
        {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {subject:?} for {to}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The path (under base_url) of the first `BASE/kind/TOKEN` link in `text`.
fn link_path(text: &str, kind: &str) -> String {
    let marker = format!("{BASE}/{kind}/");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} link in:\n{text}"))
        + BASE.len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
        .collect()
}

fn status_of(site: &Site, email: &str) -> String {
    let out = site.gazette(&["--json", "subscribers", "list"]);
    expect_code(&out, 0);
    let list: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("json");
    list.iter()
        .find(|s| s["email"] == email)
        .and_then(|s| s["status"].as_str())
        .unwrap_or("(not on the list)")
        .to_string()
}

fn add_issue(site: &Site, slug: &str, title: &str) {
    site.write(
        &format!("content/{slug}/issue.toml"),
        &format!("title = \"{title}\"\ndate = 2026-11-27\n"),
    );
    site.write(
        &format!("content/{slug}/news.md"),
        &format!(
            "+++\ntitle = \"News of {title}\"\ndate = 2026-11-27\n+++\n\nThe quay reopened.\n"
        ),
    );
}

#[test]
fn subscribe_confirm_receive_and_one_click_unsubscribe() {
    let smtp = SmtpServer::start(&[]);
    let site = Site::new();
    site.write(
        "config.toml",
        &format!(
            "{}\n[mail]\nfrom = \"The Test Ledger <ledger@example.org>\"\nskip_older_than = \"100000d\"\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
            common::CONFIG,
            smtp.port
        ),
    );
    // Someone already on the list, to show the others are not touched.
    site.write("list.csv", "email,name\nold.hand@example.org,Old Hand\n");
    expect_code(&site.gazette(&["subscribers", "import", "list.csv"]), 0);
    let server = site.serve();

    // 1. The archive, the form, the answer.
    let reader = "rea.der@example.net";
    let page = chromium("subscribe", &server.url("/"), &[reader, "Rea Der"]);
    assert_page("the answer to subscribing", &page, 200);
    assert!(
        page["text"]
            .as_str()
            .unwrap_or("")
            .contains("Check your inbox"),
        "{page}"
    );
    assert_eq!(status_of(&site, reader), "pending");

    // 2. The confirmation mail, sent at once; its link, opened in the browser.
    let mail = wait_for_mail(&smtp, reader, 1);
    let confirm = link_path(&mail[0].1, "confirm");
    let page = chromium("open", &server.url(&confirm), &[]);
    assert_page("the confirm page", &page, 200);
    assert!(
        page["text"]
            .as_str()
            .unwrap_or("")
            .contains("You are subscribed"),
        "{page}"
    );
    assert_eq!(status_of(&site, reader), "active");

    // 3. The next issue arrives.
    add_issue(&site, "2026-12-first", "December 2026");
    server.cycle();
    let mail = wait_for_mail(&smtp, reader, 2);
    let (head, body) = &mail[1];
    assert!(body.starts_with("December 2026"), "{body}");
    let unsubscribe = link_path(
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("list-unsubscribe:"))
            .unwrap_or_else(|| panic!("no List-Unsubscribe in:\n{head}")),
        "unsubscribe",
    );
    assert!(
        head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{head}"
    );

    // 4. One-click, as a mail provider does it: a bare POST, no cookie, no
    //    page, no CSRF token.
    let mut r = server
        .agent()
        .post(&server.url(&unsubscribe))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("List-Unsubscribe=One-Click")
        .expect("POST");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{:?}",
        r.body_mut().read_to_string()
    );
    assert_eq!(status_of(&site, reader), "unsubscribed");
    assert_eq!(status_of(&site, "old.hand@example.org"), "active");

    // 5. Nothing more for them; the others still get the next issue.
    add_issue(&site, "2026-12-second", "Late December 2026");
    server.cycle();
    let (head, _) = wait_for_subject(&smtp, "old.hand@example.org", "Late December 2026");
    assert_eq!(
        mail_for(&smtp, reader).len(),
        2,
        "nothing after unsubscribing"
    );

    // 6. The unsubscribe page's own button works in the browser too (for
    //    the one who is left), and the page says so.
    let link = link_path(
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("list-unsubscribe:"))
            .expect("List-Unsubscribe"),
        "unsubscribe",
    );
    let page = chromium("unsubscribe", &server.url(&link), &[]);
    assert_page("the unsubscribed page", &page, 200);
    assert!(
        page["text"]
            .as_str()
            .unwrap_or("")
            .contains("You are unsubscribed"),
        "{page}"
    );
    assert_eq!(status_of(&site, "old.hand@example.org"), "unsubscribed");
}
