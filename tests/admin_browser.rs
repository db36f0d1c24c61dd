//! The admin console in a real browser, with real parts only: `gazette
//! serve` with an admin and a list, an issue mailed through aiosmtpd,
//! and headless Chromium driving the console's forms by their labels
//! (tests/browser/admin.mjs), once with JavaScript on and once with it
//! off. Every console page is screenshotted at phone and desktop sizes
//! into `target/admin-screenshots/{js,nojs}/` (kept as CI artifacts) and
//! checked with axe-core: no serious or critical violation, and no
//! sideways scrolling on a phone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::admin::{ADMIN, PASSWORD};
use common::mail::wait_for_subject;
use common::smtp::{SmtpServer, via};
use common::{NO_WAIT, Site, expect_code, stderr, stdout, tool};
use serde_json::{Value, json};

/// The subscriber found by a search in another case, beyond ASCII.
const UNICODE_NAME: &str = "Ærøskøbing Ødegård";
const UNICODE_EMAIL: &str = "aero@example.org";
/// The subscriber erased through the console.
const ERASED_NAME: &str = "Erin Erasable";
const ERASED_EMAIL: &str = "erin.erasable@example.net";
/// Where the test copy goes.
const PROOF: &str = "proof.reader@example.com";

/// The file imported through the form: two good rows and two bad ones,
/// each bad row on a line of its own (the header is line 1).
const IMPORT_CSV: &str = "email,name\n\
new.one@example.com,New One\n\
not-an-address,Bad Address\n\
new.two@example.com,New Two\n\
,Nobody At All\n";
/// The lines of `IMPORT_CSV` that must be named as bad.
const BAD_LINES: [u32; 2] = [3, 5];

/// The issue of the site, and its article's title.
const ISSUE: &str = "December 2026";
const ARTICLE: &str = "Late news";

/// A site with an admin, a few subscribers and one issue mailed to them
/// through `smtp`. The issue is a plain one: the fixture's winter issue
/// carries hostile HTML on purpose (an <img> without alt among it), which
/// axe would rightly flag in the preview, and that is the author's
/// content, not the console's.
fn site(smtp: &SmtpServer) -> Site {
    let site = Site::mailing(&format!("{NO_WAIT}{}", via(smtp.port, "none")));
    site.remove("content/2026-autumn");
    site.remove("content/2026-winter");
    site.add_issue("2026-12-late", ISSUE);
    site.import_subscribers(
        "email,name",
        &[
            format!("{UNICODE_EMAIL},{UNICODE_NAME}"),
            format!("{ERASED_EMAIL},{ERASED_NAME}"),
            "reader.one@example.org,Reader One".to_string(),
            "reader.two@example.net,Reader Two".to_string(),
        ],
    );
    expect_code(&site.add_admin(ADMIN, PASSWORD), 0);
    site
}

/// `target/admin-screenshots`: inside the target dir, which CI keeps.
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("admin-screenshots")
}

/// Runs tests/browser/admin.mjs (`mode` js or nojs) and returns its
/// findings; the screenshots go to `target/admin-screenshots/{shots}/`.
fn journey(server_url: &str, mode: &str, plan: &Value, shots: &str) -> Value {
    let node = tool("node", "nodejs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    for (what, file) in [
        (
            "playwright-core",
            "node_modules/playwright-core/package.json",
        ),
        ("axe-core", "node_modules/axe-core/axe.min.js"),
    ] {
        assert!(
            dir.join(file).is_file(),
            "{what} is not installed in tests/browser: run `bash .ci/test` \
             (or `cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci`)"
        );
    }
    let chromium = std::env::var("GZ_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is needed: apt-get install chromium (or run `bash .ci/test`)"
    );
    let work = tempfile::tempdir().expect("tempdir");
    let plan_file = work.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).expect("write the plan");
    let out_dir = screenshots().join(shots);
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(node)
        .arg(dir.join("admin.mjs"))
        .args([server_url, ADMIN, PASSWORD])
        .arg(&out_dir)
        .arg(mode)
        .arg(&plan_file)
        .current_dir(&dir)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "admin.mjs {mode}: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("admin.mjs printed no JSON ({e}): {}", stdout(&out)))
}

/// The step called `name`, or a failure listing the steps there are.
fn step<'a>(findings: &'a Value, name: &str) -> &'a Value {
    findings["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name:?} in {}", names(findings)))
}

fn names(findings: &Value) -> String {
    findings["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["name"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn text(step: &Value) -> &str {
    step["text"].as_str().unwrap_or_default()
}

/// `step`'s text holds `needle` (case-insensitively).
#[track_caller]
fn says(step: &Value, needle: &str) {
    assert!(
        text(step).to_lowercase().contains(&needle.to_lowercase()),
        "{} ({}) should say {needle:?}:\n{}",
        step["name"],
        step["url"],
        text(step)
    );
}

/// Whether `text` names line `n` ("line 3", "Line 3:", "3:" in a list, or
/// a table row starting with the number).
fn names_line(text: &str, n: u32) -> bool {
    let lower = text.to_lowercase();
    lower.contains(&format!("line {n}"))
        || lower.lines().any(|l| {
            let l = l.trim_start();
            l.strip_prefix(&n.to_string())
                .is_some_and(|rest| rest.starts_with(['\t', ':', ' ']))
        })
}

/// What is wrong with the pages of a journey. Every page must be: a 200
/// (the sign-in page included), one <h1>, no serious or critical axe
/// violation, no sideways scroll on a phone, no console error (a CSP
/// refusal included) or failed request, two screenshots.
fn page_problems(findings: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for s in findings["steps"].as_array().expect("steps") {
        let name = s["name"].as_str().unwrap_or_default();
        if s["status"] != 200 {
            problems.push(format!("{name}: status {} at {}", s["status"], s["url"]));
        }
        let html = s["content_type"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/html"));
        // The digest preview is the mail as a subscriber gets it, not a
        // console page: it has its own headings.
        if html && name != "preview-html" && s["h1"].as_array().map(Vec::len) != Some(1) {
            problems.push(format!("{name}: not one <h1>: {}", s["h1"]));
        }
        if html {
            match s["axe"].as_array() {
                None => problems.push(format!("{name}: axe did not run")),
                Some(v) if !v.is_empty() => problems.push(format!(
                    "{name}: axe found serious or critical violations:\n{}",
                    serde_json::to_string_pretty(v).unwrap_or_default()
                )),
                Some(_) => {}
            }
            if s["axe_passes"].as_u64().unwrap_or(0) == 0 {
                problems.push(format!("{name}: axe checked nothing"));
            }
        }
        for o in s["overflow"].as_array().into_iter().flatten() {
            if o["sideways"] != false {
                problems.push(format!("{name}: scrolls sideways on a phone: {o}"));
            }
        }
        if let Some(noise) = s["noise"].as_array()
            && !noise.is_empty()
        {
            problems.push(format!("{name}: errors in the browser: {noise:?}"));
        }
        for kind in ["phone", "desktop"] {
            let shot = s["shots"][kind].as_str().unwrap_or_default();
            let ok = std::fs::read(shot)
                .map(|b| b.starts_with(b"\x89PNG") && b.len() > 1000)
                .unwrap_or(false);
            if !ok {
                problems.push(format!("{name}: no {kind} screenshot at {shot:?}"));
            }
        }
    }
    problems
}

fn admin_journey(mode: &str) {
    let smtp = SmtpServer::start(&[]);
    let site = site(&smtp);
    let server = site.serve();
    // The start cycle mailed the issue to the list, through SMTP.
    wait_for_subject(&smtp, UNICODE_EMAIL, ISSUE);
    site.write("import.csv", IMPORT_CSV);

    let plan = json!({
        // Another case, beyond ASCII.
        "search": UNICODE_NAME.to_lowercase(),
        // A row's link is the subscriber's address.
        "open": UNICODE_EMAIL,
        "import": {
            "file": site.path("import.csv"),
            "wait": BAD_LINES.iter().map(|n| format!(r"(line\s*{n}\b|^\s*{n}\b)")).collect::<Vec<_>>(),
        },
        "erase": { "search": "erin.erasable", "open": ERASED_EMAIL, "email": ERASED_EMAIL },
        "issue": { "title": ISSUE },
        "test_to": PROOF,
    });
    let findings = journey(&server.base, mode, &plan, mode);
    let failed = &findings["failed"];
    assert!(
        failed.is_null(),
        "{mode}: the journey stopped at {} after [{}]: {}\nthe page ({}):\n{}\n(screenshots in {})",
        failed["step"],
        names(&findings),
        failed["error"],
        failed["url"],
        failed["text"].as_str().unwrap_or_default(),
        screenshots().join(mode).display()
    );
    let problems = page_problems(&findings);
    assert!(
        problems.is_empty(),
        "{mode}: {} problem(s) (screenshots in {}):\n{}",
        problems.len(),
        screenshots().join(mode).display(),
        problems.join("\n")
    );

    // Without a session, a console URL is the sign-in page.
    let login = step(&findings, "login");
    assert!(
        login["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/admin/login"),
        "{login}"
    );
    assert_eq!(login["h1"], json!(["Sign in"]));

    let dashboard = step(&findings, "dashboard");
    says(dashboard, "dashboard");
    says(dashboard, ISSUE);

    // The search found the Unicode name in another case, and only them.
    let found = step(&findings, "subscribers-search");
    says(found, UNICODE_NAME);
    assert!(
        !text(found).contains("reader.one@example.org"),
        "{}",
        text(found)
    );
    let subscriber = step(&findings, "subscriber");
    says(subscriber, UNICODE_NAME);
    says(subscriber, UNICODE_EMAIL);

    // The import named each bad row by its line, and took the good ones.
    let import = step(&findings, "import-result");
    for n in BAD_LINES {
        assert!(
            names_line(text(import), n),
            "line {n} not named:\n{}",
            text(import)
        );
    }
    let list = site.subscribers();
    for good in ["new.one@example.com", "new.two@example.com"] {
        assert!(list.contains_key(good), "{good} was not imported: {list:?}");
    }

    // The erasure went through its confirmation step, and the subscriber
    // is gone: not on the list, not in the audit log.
    says(step(&findings, "erase-subscriber"), ERASED_EMAIL);
    says(step(&findings, "subscriber-erase"), "erase");
    assert!(
        !list.contains_key(ERASED_EMAIL),
        "{ERASED_EMAIL} is still on the list: {:?}",
        list.get(ERASED_EMAIL)
    );
    let audit = step(&findings, "audit");
    assert!(!text(audit).contains(ERASED_EMAIL), "{}", text(audit));
    for action in ["erase", "import", "test"] {
        says(audit, action);
    }

    // The issue and its previews, as a subscriber gets them.
    says(step(&findings, "issues"), ISSUE);
    says(step(&findings, "issue"), ISSUE);
    let html = step(&findings, "preview-html");
    says(html, ARTICLE);
    let txt = step(&findings, "preview-text");
    assert!(
        txt["content_type"]
            .as_str()
            .unwrap_or_default()
            .starts_with("text/plain"),
        "{txt}"
    );
    says(txt, ARTICLE);

    // The test copy arrived, with the issue's subject.
    says(step(&findings, "test-copy"), "test copy was sent");
    let copy = wait_for_subject(&smtp, PROOF, ISSUE);
    assert!(copy.text.contains(ARTICLE), "{}", copy.text);

    // Signed out: the sign-out lands on the sign-in page, and a console
    // URL shows it too, nothing else.
    for (name, lands) in [
        ("signed-out", "/admin/login?signed_out=1"),
        ("after-sign-out", "/admin/login"),
    ] {
        let s = step(&findings, name);
        assert!(
            s["url"].as_str().unwrap_or_default().ends_with(lands),
            "{name}: {s}"
        );
        assert_eq!(s["h1"], json!(["Sign in"]), "{name}");
        assert!(!text(s).contains(UNICODE_EMAIL), "{name}: {}", text(s));
    }
    says(step(&findings, "signed-out"), "You are signed out.");
}

#[test]
fn the_console_in_chromium_with_javascript() {
    admin_journey("js");
}

#[test]
fn the_console_in_chromium_without_javascript() {
    admin_journey("nojs");
}

/// The checks are not blind: a dashboard (overriding the built-in one)
/// with an image without a text alternative, an input without a label, a
/// word too wide for a phone and an inline style the CSP refuses is
/// caught on each count.
#[test]
fn the_checks_catch_a_broken_page() {
    let site = Site::new();
    expect_code(&site.add_admin(ADMIN, PASSWORD), 0);
    site.write(
        "templates/admin/dashboard.html",
        &format!(
            "{{% extends \"admin/layout.html\" %}}{{% block title %}}Broken{{% endblock %}}\
             {{% block main %}}<h1>Broken</h1><p>{}</p>\
             <img src=\"{{{{ base }}}}static/admin.css\">\
             <form method=\"post\"><input name=\"q\"></form>\
             <p style=\"color: red\">red</p>{{% endblock %}}",
            "w".repeat(120)
        ),
    );
    let server = site.serve();
    let findings = journey(
        &server.base,
        "nojs",
        &json!({ "stop_after": "dashboard" }),
        "broken-on-purpose",
    );
    assert!(findings["failed"].is_null(), "{}", findings["failed"]);
    assert_eq!(names(&findings), "login, dashboard");
    let problems = page_problems(&findings).join("\n");
    for caught in [
        "dashboard: axe found",
        "\"image-alt\"",
        "\"label\"",
        "dashboard: scrolls sideways",
        "Content Security Policy",
    ] {
        assert!(
            problems.contains(caught),
            "{caught} not caught:\n{problems}"
        );
    }
    assert!(!problems.contains("login:"), "{problems}");
}
