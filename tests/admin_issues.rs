//! The console's dashboard, issues pages and audit log against the real
//! binary and a real SMTP server (aiosmtpd, tests/support/smtp_server.py):
//! a failed delivery's reply on its issue's page, a retry that gets it
//! out, a test copy that arrives, a skipped issue mailed, a cycle run from
//! the dashboard, and every action in the audit log.

mod common;

use std::time::{Duration, Instant};

use common::admin::{ADMIN, AdminClient, PASSWORD};
use common::serve::StatusCode;
use common::smtp::{SmtpServer, via};
use common::{CONFIG, Site, expect_code};

/// The fixture's winter issue, mailed at the start cycle; an issue from
/// 1900, skipped (older than `skip_older_than` when released); a held
/// issue and a draft.
fn site(smtp_port: u16) -> Site {
    let site = Site::new();
    site.remove("content/2026-autumn");
    site.write(
        "config.toml",
        &format!(
            "{CONFIG}\n[mail]\nfrom = \"The Test Ledger <ledger@example.org>\"\n\
             skip_older_than = \"36500d\"\nretry_base = \"0s\"\nrate_per_second = 100000\n\
             max_attempts = 1\n{}",
            via(smtp_port, "none")
        ),
    );
    for (slug, title, toml) in [
        ("1900-almanac", "Almanac 1900", "date = 1900-01-02\n"),
        ("2099-future", "Future issue", "date = 2099-01-01\n"),
        (
            "2026-draft",
            "Draft issue",
            "date = 2026-11-25\ndraft = true\n",
        ),
    ] {
        site.write(
            &format!("content/{slug}/issue.toml"),
            &format!("title = \"{title}\"\n{toml}"),
        );
        site.write(
            &format!("content/{slug}/note.md"),
            &format!("+++\ntitle = \"Note of {title}\"\ndate = 2026-11-01\n+++\n\nA short note.\n"),
        );
    }
    site.import_subscribers(
        "email,name,status",
        &[
            "reader0@example.org,Reader 0,active",
            "reader1@example.org,Reader 1,active",
            "reader2@example.org,Reader 2,active",
        ],
    );
    expect_code(&site.add_admin(ADMIN, PASSWORD), 0);
    site
}

/// Waits (at most 30 s) until `ok` holds.
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not within 30 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn messages_to(smtp: &SmtpServer, rcpt: &str) -> usize {
    smtp.per_recipient().get(rcpt).copied().unwrap_or(0)
}

#[test]
fn the_console_shows_issues_and_acts_on_them_through_a_real_mail_server() {
    // reader1's first try is refused for now (450) and, with one attempt
    // allowed, fails; its second would pass. reader2 does not exist (550).
    let smtp = SmtpServer::start(&["--tempfail-rcpt", "reader1@:1", "--bounce-rcpt", "reader2@"]);
    let site = site(smtp.port);
    let server = site.serve();
    assert_eq!(messages_to(&smtp, "reader0@example.org"), 1);
    let admin = AdminClient::sign_in(&server, ADMIN, PASSWORD);

    // The dashboard: counts, the chart and its table, the latest issues,
    // the last cycle (the start cycle), and what needs attention.
    let dash = admin.get("/admin/");
    assert_eq!(dash.status, StatusCode::OK);
    let body = &dash.body;
    assert!(
        body.contains(r#"<svg xmlns="http://www.w3.org/2000/svg""#),
        "{body}"
    );
    assert!(body.contains(r#"role="img""#));
    assert!(body.contains("<caption>Subscribers month by month (UTC)</caption>"));
    assert!(body.contains("<span class=\"n\">2</span> active"), "{body}");
    assert!(
        body.contains("<span class=\"n\">1</span> bounced"),
        "{body}"
    );
    assert!(body.contains("Winter 2026"));
    assert!(body.contains("<progress max=\"3\" value=\"3\""), "{body}");
    assert!(body.contains("1 of 3 sent"), "{body}");
    assert!(body.contains("(started by: start)"), "{body}");
    assert!(body.contains("1 failed delivery"), "{body}");
    assert!(
        body.contains("subscribers?status=bounced\">1 subscriber bounced"),
        "{body}"
    );
    assert!(body.contains("Almanac 1900</a> was skipped"), "{body}");
    assert!(
        body.contains("Future issue</a> is held until 2099-01-01"),
        "{body}"
    );
    assert!(body.contains("Draft issue</a> is a draft"), "{body}");

    // Every issue with its state.
    let list = admin.get("/admin/issues");
    assert_eq!(list.status, StatusCode::OK);
    for words in [
        "Published, done",
        "Skipped (not mailed)",
        "Held until 2099-01-01",
        "Draft (not mailed, not on the site)",
    ] {
        assert!(list.body.contains(words), "{words}: {}", list.body);
    }

    // The issue page names each failure with the server's own reply.
    let page = admin.get("/admin/issues/2026-winter");
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("450 4.2.0 &lt;reader1@example.org&gt;: mailbox busy"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("550 5.1.1 &lt;reader2@example.org&gt;: no such user")
    );
    assert!(page.body.contains(">reader1@example.org</a>"));
    assert!(page.body.contains("Retry the 1 failed delivery"));
    assert_eq!(
        admin.get("/admin/issues/no-such-issue").status,
        StatusCode::NOT_FOUND
    );

    // The preview: the digest's HTML under its own sandboxing policy, and
    // the text; both with the sample reader filled in.
    let html = admin.get("/admin/issues/2026-winter/preview.html");
    assert_eq!(html.status, StatusCode::OK);
    assert_eq!(
        html.headers["content-security-policy"],
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"
    );
    assert_eq!(html.headers["content-type"], "text/html; charset=utf-8");
    assert!(html.body.contains("Harbour cranes return"));
    assert!(html.body.contains("Preview Reader"), "{}", html.body);
    assert!(!html.body.contains("<script"));
    let text = admin.get("/admin/issues/2026-winter/preview.txt");
    assert_eq!(text.headers["content-type"], "text/plain; charset=utf-8");
    assert!(text.body.contains("Harbour cranes return"));
    // A draft previews too (that is what a preview is for).
    assert_eq!(
        admin.get("/admin/issues/2026-draft/preview.html").status,
        StatusCode::OK
    );

    // Without the form's token nothing happens.
    let refused = admin.post_plain("/admin/issues/2026-winter/retry", &[]);
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(messages_to(&smtp, "reader1@example.org"), 0);

    // Retry: the failed delivery is queued again and a cycle sends it.
    let retried = admin.post("/admin/issues/2026-winter/retry", &[]);
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.body);
    assert_eq!(
        retried.location(),
        Some("/admin/issues/2026-winter?notice=retried")
    );
    eventually("reader1 gets the retried issue", || {
        messages_to(&smtp, "reader1@example.org") == 1
    });
    eventually("the issue page counts it sent", || {
        admin
            .get("/admin/issues/2026-winter")
            .body
            .contains("<span class=\"n\">2</span> sent")
    });
    assert_eq!(
        messages_to(&smtp, "reader2@example.org"),
        0,
        "a bounce is not retried"
    );

    // A test copy reaches the server; a bad address is named on the page.
    let bad = admin.post(
        "/admin/issues/2026-winter/test",
        &[("email", "not an address")],
    );
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Email address:"), "{}", bad.body);
    assert!(bad.body.contains("value=\"not an address\""));
    let sent = admin.post(
        "/admin/issues/2026-winter/test",
        &[("email", "proof@example.net")],
    );
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    assert_eq!(
        sent.location(),
        Some("/admin/issues/2026-winter?notice=test-sent")
    );
    assert_eq!(messages_to(&smtp, "proof@example.net"), 1);
    let copy = smtp
        .received()
        .into_iter()
        .find(|m| m.rcpt == ["proof@example.net"])
        .unwrap();
    assert!(copy.message_id.is_some());

    // Mail the skipped issue: only a skipped one, then to the active list.
    let not_skipped = admin.post("/admin/issues/2026-winter/send", &[]);
    assert_eq!(not_skipped.status, StatusCode::CONFLICT);
    let mailed = admin.post("/admin/issues/1900-almanac/send", &[]);
    assert_eq!(mailed.status, StatusCode::SEE_OTHER, "{}", mailed.body);
    assert_eq!(
        mailed.location(),
        Some("/admin/issues/1900-almanac?notice=sending")
    );
    eventually("the active subscribers get the almanac", || {
        messages_to(&smtp, "reader0@example.org") == 2
            && messages_to(&smtp, "reader1@example.org") == 2
    });
    assert_eq!(messages_to(&smtp, "reader2@example.org"), 0);

    // A cycle from the dashboard: back to it, saying it finished.
    let cycle = admin.post("/admin/cycle", &[]);
    assert_eq!(cycle.status, StatusCode::SEE_OTHER, "{}", cycle.body);
    assert_eq!(cycle.location(), Some("/admin/?notice=cycle-done"));
    let dash = admin.get("/admin/?notice=cycle-done");
    assert!(
        dash.body.contains("The cycle ran and finished"),
        "{}",
        dash.body
    );
    assert!(dash.body.contains("(started by: admin)"), "{}", dash.body);

    // The audit log: every action, by whom, on which issue; never the
    // test copy's address.
    let audit = admin.get("/admin/audit");
    assert_eq!(audit.status, StatusCode::OK);
    for action in [
        "admin.login",
        "issue.retry",
        "issue.test",
        "issue.send",
        "cycle.run",
    ] {
        assert!(
            audit.body.contains(&format!("<code>{action}</code>")),
            "{action}: {}",
            audit.body
        );
    }
    assert!(audit.body.contains("issue 2026-winter"));
    assert!(audit.body.contains("issue 1900-almanac"));
    assert!(audit.body.contains(ADMIN));
    assert!(!audit.body.contains("proof@example.net"));
    assert_eq!(
        admin.get("/admin/audit?before=x").status,
        StatusCode::BAD_REQUEST
    );
    // Newest first: the cycle came last.
    let at = |s: &str| audit.body.find(s).unwrap();
    assert!(at("<code>cycle.run</code>") < at("<code>issue.retry</code>"));
    assert!(!server.log_text().contains("proof@example.net"));
}

#[test]
fn the_audit_log_pages_by_keyset_newest_first() {
    let smtp = SmtpServer::start(&[]);
    let site = site(smtp.port);
    // 60 lines before the server starts, as `admins` commands would log.
    site.with_db(async |store| {
        for n in 0..60 {
            let entry = gazette::store::AuditEntry {
                admin: "cli",
                action: "issue.retry",
                target: Some(format!("issue n{n:02}")),
                detail: None,
                client: None,
            };
            store.audit(&entry).await.unwrap();
        }
    });
    let server = site.serve();
    let admin = AdminClient::sign_in(&server, ADMIN, PASSWORD);
    let first = admin.get("/admin/audit");
    assert_eq!(first.status, StatusCode::OK);
    let targets = |body: &str| -> Vec<String> {
        body.match_indices("issue n")
            .map(|(i, _)| body[i..i + 9].to_string())
            .collect()
    };
    let page1 = targets(&first.body);
    // The sign-in is the newest line, so 49 of the 60 fit on page one.
    assert_eq!(page1.len(), 49, "{}", first.body);
    assert_eq!(page1[0], "issue n59");
    let next = first
        .body
        .split("audit?before=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a link to older entries")
        .to_string();
    let second = admin.get(&format!("/admin/audit?before={next}"));
    let page2 = targets(&second.body);
    assert_eq!(page2.len(), 11);
    assert_eq!(page2[0], "issue n10");
    assert_eq!(page2[10], "issue n00");
    assert!(
        !second.body.contains("audit?before="),
        "no page after the last"
    );
    assert!(second.body.contains("Newest entries"));
}

/// The issue-state words live in `admin/macros.html`: an override of that
/// one file beside config.toml changes them on the dashboard and the
/// issues list alike.
#[test]
fn an_override_of_the_macros_changes_every_page_that_uses_them() {
    let smtp = SmtpServer::start(&[]);
    let site = site(smtp.port);
    site.write(
        "templates/admin/macros.html",
        "{% macro issue_state(i) %}[state: {{ i.state.state }}]{% endmacro %}",
    );
    let server = site.serve();
    let admin = AdminClient::sign_in(&server, ADMIN, PASSWORD);
    let list = admin.get("/admin/issues");
    assert_eq!(list.status, StatusCode::OK);
    for words in [
        "[state: done]",
        "[state: skipped]",
        "[state: held]",
        "[state: draft]",
    ] {
        assert!(list.body.contains(words), "{words}: {}", list.body);
    }
    assert!(!list.body.contains("Published, done"), "{}", list.body);
    let dash = admin.get("/admin/");
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.body.contains("[state: done]"), "{}", dash.body);
}
