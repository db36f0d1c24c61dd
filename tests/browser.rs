//! A reader's whole journey, end to end, with real parts only: headless
//! Chromium (JavaScript off, phone-sized) on the pages of `gazette serve`,
//! aiosmtpd receiving the mail, and a raw one-click POST as a mail provider
//! sends it (RFC 8058).

mod common;

use std::path::Path;
use std::process::Command;

use common::mail::{link_path, mail_to, wait_for_mail, wait_for_subject};
use common::serve::StatusCode;
use common::smtp::SmtpServer;
use common::{Site, expect_code, stderr, stdout, tool};
use serde_json::Value;

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

#[test]
fn subscribe_confirm_receive_and_one_click_unsubscribe() {
    let smtp = SmtpServer::start(&[]);
    let site = Site::mailing(&common::smtp::via(smtp.port, "none"));
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
    assert_eq!(site.status_of(reader), "pending");

    // 2. The confirmation mail, sent at once; its link, opened in the
    //    browser, shows one button and changes nothing (a mail scanner
    //    opening it would not confirm); pressing the button confirms.
    let mail = wait_for_mail(&smtp, reader, 1);
    let confirm = link_path(&mail[0].text, "confirm");
    let page = chromium("open", &server.url(&confirm), &[]);
    assert_page("the confirm page", &page, 200);
    assert!(
        page["text"]
            .as_str()
            .unwrap_or("")
            .contains("Confirm your subscription"),
        "{page}"
    );
    assert_eq!(site.status_of(reader), "pending");
    let page = chromium("press", &server.url(&confirm), &[]);
    assert_page("the confirmed page", &page, 200);
    assert!(
        page["text"]
            .as_str()
            .unwrap_or("")
            .contains("You are subscribed"),
        "{page}"
    );
    assert_eq!(site.status_of(reader), "active");

    // 3. The next issue arrives.
    site.add_issue("2026-12-first", "December 2026");
    server.cycle();
    let mail = wait_for_mail(&smtp, reader, 2);
    let digest = &mail[1];
    assert!(
        digest.subject.starts_with("December 2026"),
        "{}",
        digest.subject
    );
    let unsubscribe = link_path(
        &digest
            .header("List-Unsubscribe")
            .unwrap_or_else(|| panic!("no List-Unsubscribe in:\n{}", digest.head())),
        "unsubscribe",
    );
    assert_eq!(
        digest.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "{}",
        digest.head()
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
    assert_eq!(site.status_of(reader), "unsubscribed");
    assert_eq!(site.status_of("old.hand@example.org"), "active");

    // 5. Nothing more for them; the others still get the next issue.
    site.add_issue("2026-12-second", "Late December 2026");
    server.cycle();
    let late = wait_for_subject(&smtp, "old.hand@example.org", "Late December 2026");
    assert_eq!(
        mail_to(&smtp, reader).len(),
        2,
        "nothing after unsubscribing"
    );

    // 6. The unsubscribe page's own button works in the browser too (for
    //    the one who is left), and the page says so.
    let link = link_path(
        &late.header("List-Unsubscribe").expect("List-Unsubscribe"),
        "unsubscribe",
    );
    let page = chromium("press", &server.url(&link), &[]);
    assert_page("the unsubscribed page", &page, 200);
    assert!(
        page["text"]
            .as_str()
            .unwrap_or("")
            .contains("You are unsubscribed"),
        "{page}"
    );
    assert_eq!(site.status_of("old.hand@example.org"), "unsubscribed");

    // The server logged every request (at debug level), but no token: each
    // one acts for its subscriber.
    let log = server.log_text();
    assert!(
        log.contains("/unsubscribe/…"),
        "requests are logged:\n{log}"
    );
    for path in [&confirm, &unsubscribe, &link] {
        let token = path.rsplit('/').next().unwrap_or_default();
        assert!(token.len() >= 40, "{path}");
        assert!(!log.contains(token), "the log holds the token of {path}");
    }
}
