//! Drafts and scheduled publication through the binary: a draft or an issue
//! held until its publication moment is in no feed, page or mail; the first
//! cycle at or after the moment publishes it once, also when the moment
//! passed while the daemon was down, and `serve` wakes for it between cron
//! slots.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use common::serve::StatusCode;
use common::{Site, expect_code, stdout};

/// The fixture config's zone.
const TZ: Tz = chrono_tz::America::New_York;

/// Once a year: in these tests only the start cycle and held issues make
/// the daemon cycle.
const FAR_CRON: &str = "0 0 1 1 *";

/// A site with mail (file outbox) and two active subscribers. The
/// fixture's own issues are old enough to be mailed too; the tests count
/// only their own issue's messages.
fn site() -> Site {
    let site = Site::mailing(&format!(
        "rate_per_second = 100000\n\n[schedule]\ncron = \"{FAR_CRON}\"\n"
    ));
    site.import_subscribers(
        "email,name,status",
        &["ann@example.org,Ann,active", "bob@example.org,Bob,active"],
    );
    site
}

/// An issue folder with one article, `extra` added to its issue.toml.
fn add_issue(site: &Site, slug: &str, title: &str, date: &str, extra: &str) {
    site.write(
        &format!("content/{slug}/issue.toml"),
        &format!("title = \"{title}\"\ndate = {date}\n{extra}"),
    );
    site.write(
        &format!("content/{slug}/notes.md"),
        &format!("+++\ntitle = \"Notes for {slug}\"\n+++\n\nWhat {slug} says.\n"),
    );
}

/// `publish_at` for `at`, as a local date-time in the config's zone.
fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&TZ)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Today's date in the config's zone, plus `days`.
fn day_from_today(days: i64) -> String {
    (Utc::now().with_timezone(&TZ).date_naive() + chrono::Duration::days(days)).to_string()
}

/// The outbox messages of one issue.
fn mailed(site: &Site, slug: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(site.path("outbox")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{slug}_")) && n.ends_with(".eml"))
        .collect();
    names.sort();
    names
}

/// The three feed files, concatenated.
fn feeds(site: &Site) -> String {
    ["rss.xml", "atom.xml", "feed.json"]
        .iter()
        .map(|f| site.read(&format!("feeds/{f}")))
        .collect()
}

/// `issues list --json`, the row of `slug`.
fn listed(site: &Site, slug: &str) -> serde_json::Value {
    let out = site.gazette(&["--json", "issues", "list"]);
    expect_code(&out, 0);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    rows.into_iter()
        .find(|r| r["slug"] == slug)
        .unwrap_or_else(|| panic!("{slug} not listed: {}", stdout(&out)))
}

/// The sent count `deliveries --json` has for `slug`.
fn sent(site: &Site, slug: &str) -> u64 {
    let out = site.gazette(&["--json", "deliveries", slug]);
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["issues"][0]["sent"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sent count: {v}"))
}

#[test]
fn a_draft_is_checked_but_not_published_anywhere() {
    let site = site();
    add_issue(
        &site,
        "december",
        "December (DRAFT, not finished)",
        &day_from_today(-1),
        "draft = true\n",
    );
    let out = site.gazette(&["check"]);
    expect_code(&out, 0);
    // check reads it: a broken article in a draft is reported.
    site.write("content/december/broken.md", "+++\ntitle = 3\n+++\nx\n");
    site.says(&["check"], 1, "content/december/broken.md");
    std::fs::remove_file(site.path("content/december/broken.md")).unwrap();

    site.says(&["run"], 0, "1 draft (draft = true)");
    assert!(mailed(&site, "december").is_empty());
    assert!(
        !feeds(&site).contains("December (DRAFT"),
        "a draft in the feeds"
    );
    assert!(!feeds(&site).contains("Notes for december"));
    assert_eq!(listed(&site, "december")["status"], "draft");
    let out = site.gazette(&["issues", "list"]);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains("december") && l.contains("draft")),
        "{}",
        stdout(&out)
    );
    // Sending it to the list is refused; a test copy is how it is proofread.
    site.says_on_stderr(&["issues", "send", "december"], 1, "is a draft");
    assert!(mailed(&site, "december").is_empty());

    // The pages do not know it, exactly as an unknown slug.
    let server = site.serve();
    let (status, _, body) = server.get("/issues/december");
    let (unknown_status, _, unknown_body) = server.get("/issues/no-such-issue");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        (status, body.replace("december", "no-such-issue")),
        (unknown_status, unknown_body)
    );
    let (_, _, archive) = server.get("/");
    assert!(
        archive.contains("Winter 2026") && !archive.contains("December"),
        "{archive}"
    );
    let (_, _, feed_body) = server.get("/feeds/atom.xml");
    assert!(!feed_body.contains("December"));
    let (status, list) = server.api("GET", "/issues", None, None);
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let row = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["slug"] == "december")
        .cloned()
        .unwrap_or_else(|| panic!("the API lists drafts: {list}"));
    assert_eq!(
        (&row["status"], &row["draft"]),
        (&"draft".into(), &true.into())
    );
    drop(server);

    // Finished: out at the next cycle, mailed once.
    site.write(
        "content/december/issue.toml",
        &format!("title = \"December\"\ndate = {}\n", day_from_today(-1)),
    );
    site.says(&["run"], 0, "Published december to 2");
    assert_eq!(mailed(&site, "december").len(), 2);
    assert!(feeds(&site).contains("Notes for december"));
}

#[test]
fn an_issue_dated_ahead_is_held_until_its_day() {
    let site = site();
    let date = day_from_today(18);
    add_issue(&site, "december", "December", &date, "");
    site.says(&["run"], 0, "1 issue held; the next goes out at");
    assert!(mailed(&site, "december").is_empty());
    assert!(!feeds(&site).contains("Notes for december"));
    // `feeds build` (no database) leaves it out too.
    expect_code(&site.gazette(&["feeds", "build"]), 0);
    assert!(!feeds(&site).contains("Notes for december"));
    // The list says when it goes out: the start of its date, local time.
    let out = site.gazette(&["issues", "list"]);
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains("december"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        line.contains(&format!("held until {date} 00:00 EST")),
        "{}",
        stdout(&out)
    );
    let row = listed(&site, "december");
    assert_eq!(row["status"], "held");
    assert_eq!(row["publish_at"], format!("{date}T00:00:00-05:00"));
    // Nobody can mail it early by hand.
    site.says_on_stderr(&["issues", "send", "december"], 1, "is held until");
    // Running again changes nothing.
    let out = site.gazette(&["run"]);
    assert!(stdout(&out).contains("nothing changed"), "{}", stdout(&out));
    assert!(mailed(&site, "december").is_empty());
}

/// Adds issue "flash", dated today and held until 10 s from now (whole
/// seconds); returns that moment.
fn add_flash_held_10s(site: &Site) -> DateTime<Utc> {
    let moment = (Utc::now() + chrono::Duration::seconds(10)).trunc_subsecs(0);
    add_issue(
        site,
        "flash",
        "Flash",
        &day_from_today(0),
        &format!("publish_at = {}\n", local(moment)),
    );
    moment
}

#[test]
fn a_moment_that_passed_while_the_daemon_was_down_is_published_once_at_start() {
    let site = site();
    let moment = add_flash_held_10s(&site);
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    assert!(
        Utc::now() < moment,
        "`gazette run` took over 10 s: the test's margin is too small here"
    );
    assert!(stdout(&out).contains("1 issue held"), "{}", stdout(&out));
    assert!(mailed(&site, "flash").is_empty());
    assert!(!feeds(&site).contains("Notes for flash"));
    assert_eq!(listed(&site, "flash")["status"], "held");

    // The daemon is down while the moment passes.
    while Utc::now() <= moment + chrono::Duration::seconds(1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed(&site, "flash")["status"], "due");
    let server = site.serve();
    assert_eq!(mailed(&site, "flash").len(), 2, "{}", server.log_text());
    assert!(feeds(&site).contains("Notes for flash"));
    let (status, _, page) = server.get("/issues/flash");
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Notes for flash"));
    // Once: more cycles send nothing more.
    server.cycle();
    let (code, _, log) = server.terminate();
    assert!(code.success(), "{log}");
    site.says(&["run"], 0, "Mail: nothing due");
    assert_eq!(mailed(&site, "flash").len(), 2);
    assert_eq!(sent(&site, "flash"), 2);
    assert_eq!(listed(&site, "flash")["status"], "out");
}

#[test]
fn serve_wakes_for_a_held_issue_between_cron_slots() {
    let site = site();
    let far = day_from_today(18);
    add_issue(&site, "december", "December", &far, "");
    let moment = add_flash_held_10s(&site);
    let server = site.serve();
    assert!(
        Utc::now() < moment,
        "serve took over 10 s to start: the test's margin is too small here"
    );
    assert!(mailed(&site, "flash").is_empty());
    let (status, _, _) = server.get("/issues/flash");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = server.api("GET", "/issues", None, None);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let row = |slug: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["slug"] == slug)
            .cloned()
            .unwrap_or_else(|| panic!("{slug} not in the API's list: {list}"))
    };
    assert_eq!(row("flash")["status"], "held");
    assert_eq!(row("december")["status"], "held");
    assert_eq!(
        row("flash")["release_at"],
        moment.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );

    // No cron slot comes for months; the held issue's moment wakes it.
    let start = Instant::now();
    while mailed(&site, "flash").len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not released 60 s later:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(Utc::now() >= moment);
    let (_, _, atom) = server.get("/feeds/atom.xml");
    assert!(atom.contains("Notes for flash"), "{atom}");
    assert!(!atom.contains("Notes for december"));
    let (status, _, _) = server.get("/issues/flash");
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = server.get("/issues/december");
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The start cycle and the one it woke for; no slot.
    assert_eq!(server.metric("gazette_cycles_total"), Some(2.0));
    let (code, _, log) = server.terminate();
    assert!(code.success());
    assert!(log.contains("publication moment came"), "{log}");
    assert_eq!(mailed(&site, "flash").len(), 2);
}

#[test]
fn bad_draft_or_publish_at_values_are_reported_with_file_and_line() {
    let site = site();
    add_issue(
        &site,
        "soon",
        "Soon",
        "2026-11-27",
        "publish_at = \"tomorrow\"\n",
    );
    add_issue(&site, "maybe", "Maybe", "2026-11-27", "draft = \"yes\"\n");
    let out = site.gazette(&["check"]);
    expect_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("content/soon/issue.toml:3: publish_at = \"tomorrow\" is not a date-time"),
        "{text}"
    );
    assert!(
        text.contains("content/maybe/issue.toml:3: draft must be true or false"),
        "{text}"
    );
    // Both issues are skipped, the rest goes on.
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    assert!(mailed(&site, "soon").is_empty() && mailed(&site, "maybe").is_empty());
    assert!(feeds(&site).contains("Winter 2026") || feeds(&site).contains("Rents"));
    assert!(!feeds(&site).contains("Notes for soon"));
}
