//! The binary end to end: check, run, feeds build, issues, and every kind of
//! bad input the contract names.

mod common;

use std::time::Duration;

use common::{Site, expect_code, stderr, stdout};

fn mtime(site: &Site, rel: &str) -> std::time::SystemTime {
    std::fs::metadata(site.path(rel))
        .unwrap()
        .modified()
        .unwrap()
}

#[test]
fn the_repository_sample_checks_clean() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["--config", &format!("{root}/config.toml"), "check"])
        .env_remove("GAZETTE_CONFIG")
        .output()
        .unwrap();
    expect_code(&out, 0);
    assert!(stdout(&out).starts_with("ok:"), "{}", stdout(&out));
}

#[test]
fn run_ingests_records_builds_feeds_and_then_has_nothing_to_do() {
    let site = Site::new();
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    let summary = stdout(&out);
    assert!(summary.contains("2 issues with 3 articles"), "{summary}");
    assert!(summary.contains("2 new"), "{summary}");
    assert!(
        summary.contains("wrote rss.xml, atom.xml, feed.json"),
        "{summary}"
    );
    for f in [
        "feeds/rss.xml",
        "feeds/atom.xml",
        "feeds/feed.json",
        "gazette.db",
    ] {
        assert!(site.path(f).is_file(), "{f} missing");
    }
    let before: Vec<_> = ["rss.xml", "atom.xml", "feed.json"]
        .iter()
        .map(|f| {
            (
                site.read(&format!("feeds/{f}")),
                mtime(&site, &format!("feeds/{f}")),
            )
        })
        .collect();

    std::thread::sleep(Duration::from_millis(20));
    site.says(
        &["run"],
        0,
        "nothing changed since the last run (2 issues, 3 articles)",
    );
    let after: Vec<_> = ["rss.xml", "atom.xml", "feed.json"]
        .iter()
        .map(|f| {
            (
                site.read(&format!("feeds/{f}")),
                mtime(&site, &format!("feeds/{f}")),
            )
        })
        .collect();
    assert_eq!(
        before, after,
        "feeds must be untouched when nothing changed"
    );

    // A forced rebuild (feeds build) gives byte-identical files and leaves them untouched.
    site.says(&["feeds", "build"], 0, "none written");
    let again: Vec<_> = ["rss.xml", "atom.xml", "feed.json"]
        .iter()
        .map(|f| {
            (
                site.read(&format!("feeds/{f}")),
                mtime(&site, &format!("feeds/{f}")),
            )
        })
        .collect();
    assert_eq!(before, again);
}

#[test]
fn a_new_issue_is_noticed_by_the_next_run() {
    let site = Site::new();
    expect_code(&site.gazette(&["run"]), 0);
    site.write("content/2026-spring/first.txt", "Spring opens\n\nDecember 1, 2026\n\nFrom the Spring 2026 issue of The Test Ledger\n\nby Ana Ruiz\n\nBuds.\n");
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["new_issues"], serde_json::json!(["2026-spring"]));
    assert_eq!(v["issues"], 3);
    assert_eq!(v["feeds"]["status"], "built");
    let atom = site.read("feeds/atom.xml");
    let first = atom.find("Spring opens").expect("new article in atom");
    assert!(
        first < atom.find("Harbour cranes return").unwrap(),
        "newest issue first"
    );
}

#[test]
fn only_changed_article_files_are_parsed_again_through_the_cache_beside_the_database() {
    let site = Site::new();
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["article_files"],
        serde_json::json!({"parsed": 3, "reused": 0})
    );
    assert!(site.path("gazette.db.parsed").is_file());

    // One article edited: it alone is parsed, and the feeds say what it says now.
    let rss = site.read("feeds/rss.xml");
    let rel = "content/2026-winter/harbour-cranes.txt";
    let old = common::HARBOUR_TXT;
    assert!(rss.contains("Harbour cranes return"), "{rss}");
    site.write(
        rel,
        &old.replace("Harbour cranes return", "Harbour cranes are back"),
    );
    let out = site.gazette(&["--json", "run"]);
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["article_files"],
        serde_json::json!({"parsed": 1, "reused": 2})
    );
    assert_eq!(v["changed_issues"].as_array().map(Vec::len), Some(1));
    let rss = site.read("feeds/rss.xml");
    assert!(
        rss.contains("Harbour cranes are back") && !rss.contains("Harbour cranes return"),
        "{rss}"
    );

    // feeds build, which has no database, shares the cache.
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    let out = site.gazette(&["--json", "feeds", "build"]);
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["article_files"],
        serde_json::json!({"parsed": 0, "reused": 3})
    );
    assert_eq!(site.read("feeds/rss.xml"), rss);

    // A cache that cannot be written is a warning; the run is whole.
    std::fs::remove_file(site.path("gazette.db.parsed")).unwrap();
    std::fs::create_dir(site.path("gazette.db.parsed")).unwrap();
    site.write(rel, old);
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    assert!(
        stderr(&out).contains("parse cache not written"),
        "{}",
        stderr(&out)
    );
    assert!(site.read("feeds/rss.xml").contains("Harbour cranes return"));
}

#[test]
fn issues_list_and_show() {
    let site = Site::new();
    let out = site.gazette(&["issues", "list"]);
    expect_code(&out, 0);
    let text = stdout(&out);
    let winter = text.find("2026-winter").expect("winter listed");
    assert!(
        winter < text.find("2026-autumn").expect("autumn listed"),
        "{text}"
    );
    assert!(text.contains("not yet run"), "{text}");

    expect_code(&site.gazette(&["run"]), 0);
    let out = site.gazette(&["--json", "issues", "list"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["slug"], "2026-winter");
    assert_eq!(v[0]["articles"], 2);
    assert!(v[0]["first_seen"].is_string(), "{v}");

    let out = site.gazette(&["issues", "show", "2026-winter"]);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("Winter 2026") && text.contains("Zoë Álvarez, Dariusz Łukasiewicz"),
        "{text}"
    );
    assert!(
        text.contains("https://news.example.org/ledger/issues/2026-winter"),
        "{text}"
    );

    let out = site.gazette(&["issues", "show", "2026-nope"]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("no issue \"2026-nope\"") && stderr(&out).contains("2026-winter"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_files_are_reported_with_path_and_line_and_the_rest_is_ingested() {
    let site = Site::new();
    site.write(
        "content/2026-winter/no-date.txt",
        "A title\n\nFrom the Winter 2026 issue of The Test Ledger\n\nBody.\n",
    );
    site.write(
        "content/2026-winter/bad-date.txt",
        "A title\n\nNovember 45, 2026\n\nFrom the Winter 2026 issue of The Test Ledger\n\nBody.\n",
    );
    site.write("content/2026-winter/empty.md", "");
    site.write(
        "content/2026-winter/unknown-key.md",
        "+++\ntitle = \"x\"\ncolour = \"red\"\n+++\nBody\n",
    );
    site.write(
        "content/2026-winter/wrong-type.md",
        "+++\ntitle = \"x\"\ndate = \"soon\"\nsection = 4\n+++\nBody\n",
    );
    std::fs::write(
        site.path("content/2026-winter/latin1.txt"),
        b"Caf\xe9 news\n\nNovember 1, 2026\n",
    )
    .unwrap();
    std::fs::write(
        site.path("content/2026-winter/huge.md"),
        vec![b'a'; 5 * 1024 * 1024],
    )
    .unwrap();

    let out = site.gazette(&["check"]);
    expect_code(&out, 1);
    let text = stdout(&out);
    for (file, line) in [
        ("no-date.txt", Some(3)),
        ("bad-date.txt", Some(3)),
        ("empty.md", None),
        ("unknown-key.md", Some(3)),
        ("wrong-type.md", None),
        ("latin1.txt", Some(1)),
        ("huge.md", None),
    ] {
        let path = site
            .path(&format!("content/2026-winter/{file}"))
            .display()
            .to_string();
        let hit = text
            .lines()
            .find(|l| l.starts_with(&path))
            .unwrap_or_else(|| panic!("{file} not reported:\n{text}"));
        if let Some(line) = line {
            assert!(
                hit.starts_with(&format!("{path}:{line}: ")),
                "{file} line: {hit}"
            );
        }
    }
    assert!(text.contains("7 problems"), "{text}");

    // run does its job with the good files and warns about the bad ones.
    let out = site.says(&["run"], 0, "3 articles");
    assert!(stderr(&out).contains("latin1.txt"), "{}", stderr(&out));
    // The problems are repeated by the next run even though nothing changed.
    let out = site.gazette(&["run"]);
    assert!(
        stdout(&out).contains("nothing changed") && stderr(&out).contains("huge.md"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn slugs_differing_only_in_case_are_reported() {
    let site = Site::new();
    site.write("content/2026-Winter/other.txt", HARBOUR);
    let out = site.gazette(&["check"]);
    expect_code(&out, 1);
    assert!(
        stdout(&out).contains("2026-Winter") && stdout(&out).contains("2026-winter"),
        "{}",
        stdout(&out)
    );
}

const HARBOUR: &str = common::HARBOUR_TXT;

#[test]
fn a_missing_content_folder_is_an_error_naming_it() {
    let site = Site::empty();
    for args in [
        &["check"][..],
        &["run"],
        &["feeds", "build"],
        &["issues", "list"],
    ] {
        let out = site.gazette(args);
        expect_code(&out, 1);
        let e = stderr(&out);
        assert!(
            e.contains(&site.path("content").display().to_string()),
            "{args:?}: {e}"
        );
        assert_eq!(
            e.matches("No such file or directory").count(),
            1,
            "the OS error once: {e}"
        );
    }
}

#[test]
fn run_help_says_it_emails_the_subscribers() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("EMAIL each new issue to every active subscriber"),
        "{text}"
    );
}

#[test]
fn a_missing_or_unreadable_config_is_an_error_naming_it() {
    let site = Site::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["--config", "/nonexistent/g.toml", "check"])
        .output()
        .unwrap();
    expect_code(&out, 1);
    let e = stderr(&out);
    assert!(
        e.contains("/nonexistent/g.toml") && e.contains("--config") && e.contains("GAZETTE_CONFIG"),
        "{e}"
    );
    // A folder where the file should be cannot be read, even by root.
    std::fs::create_dir(site.path("dir.toml")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args([
            "--config",
            &site.path("dir.toml").display().to_string(),
            "run",
        ])
        .output()
        .unwrap();
    expect_code(&out, 1);
    assert!(stderr(&out).contains("dir.toml"), "{}", stderr(&out));
    // GAZETTE_CONFIG is honoured.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("check")
        .env("GAZETTE_CONFIG", "/nonexistent/env.toml")
        .output()
        .unwrap();
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("/nonexistent/env.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_config_key_is_named_with_its_line() {
    let site = Site::new();
    site.write(
        "config.toml",
        &format!("{}\n[schedule]\ncron = \"0 9 * * 9\"\n", common::CONFIG),
    );
    let out = site.gazette(&["run"]);
    expect_code(&out, 1);
    let e = stderr(&out);
    assert!(e.contains("config.toml:12: schedule.cron"), "{e}");
    assert!(
        !site.path("gazette.db").exists(),
        "nothing done on a bad config"
    );

    let out = site.gazette_env(&["check"], &[("GAZETTE_FEEDS_ITEMS", "many")]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("GAZETTE_FEEDS_ITEMS"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_config_mistake_is_reported_in_one_run() {
    let site = Site::new();
    // CONFIG is 9 lines; the mistakes follow, of every kind.
    site.write(
        "config.toml",
        &format!(
            "{}colour = \"red\"\n[mail]\ntransport = \"pigeon\"\nconcurency = 4\n[schedule]\ncron = \"0 9 * * 9\"\n",
            common::CONFIG
        ),
    );
    let out = site.gazette_env(&["check"], &[("GAZETTE_FEEDS_ITEMS", "many")]);
    expect_code(&out, 1);
    let e = stderr(&out);
    for want in [
        "config.toml:10: feeds.colour: unknown key `colour`",
        "config.toml:12: mail.transport: unknown variant `pigeon`",
        "config.toml:13: mail.concurency: unknown key `concurency`",
        "config.toml:15: schedule.cron:",
        "environment variable GAZETTE_FEEDS_ITEMS: feeds.items: invalid type",
    ] {
        assert!(e.contains(want), "{want:?} missing from:\n{e}");
    }
}

/// A bad DKIM key file refuses `check`, `run` and `serve` before they do
/// anything, naming the key, its line and the file.
#[test]
fn a_bad_dkim_key_file_is_refused_before_anything_is_done() {
    let site = Site::new();
    // CONFIG is 9 lines: key_file is on line 14.
    site.write(
        "config.toml",
        &format!(
            "{}[mail]\nfrom = \"Ledger <news@example.org>\"\n[mail.dkim]\nselector = \"s1\"\nkey_file = \"keys/dkim.pem\"\n",
            common::CONFIG
        ),
    );
    let key = site.path("keys/dkim.pem").display().to_string();
    let refused = |want: &str| {
        for args in [&["check"][..], &["run"], &["serve"]] {
            // serve listens on a free port if it does not refuse, and is stopped.
            let mut child = site
                .command(args)
                .env("GAZETTE_HTTP_LISTEN", "127.0.0.1:0")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run gazette");
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    child.kill().unwrap();
                    panic!("gazette {args:?} did not refuse the key file");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let out = child.wait_with_output().unwrap();
            expect_code(&out, 1);
            let e = stderr(&out);
            assert!(
                e.contains(&format!("config.toml:14: mail.dkim.key_file: {want}")),
                "{args:?}: {e}"
            );
            assert!(e.contains(&key), "{args:?}: {e}");
        }
    };
    refused("cannot read");
    site.write(
        "keys/dkim.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    refused(&format!("{key}: not a PKCS#8 private key"));
    assert!(
        !site.path("gazette.db").exists() && !site.path("feeds").exists(),
        "nothing done with a bad key"
    );
}

#[test]
fn env_overrides_reach_the_feeds() {
    let site = Site::new();
    let out = site.gazette_env(
        &["feeds", "build"],
        &[
            ("GAZETTE_FEEDS_ITEMS", "1"),
            ("GAZETTE_FEEDS_DIR", "public"),
        ],
    );
    expect_code(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&site.read("public/feed.json")).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 1);
}

#[test]
fn usage_errors_exit_2() {
    let site = Site::new();
    expect_code(&site.gazette(&["frobnicate"]), 2);
    expect_code(&site.gazette(&["issues", "show"]), 2);
    expect_code(&site.gazette(&["run", "--wait", "soon"]), 2);
}

#[test]
fn an_unwritable_feeds_folder_fails_the_run_and_leaves_old_feeds_whole() {
    let site = Site::new();
    expect_code(&site.gazette(&["run"]), 0);
    let old = site.read("feeds/atom.xml");
    // A regular file where the feeds folder's parent should be: no user, not
    // even root, can create the folder.
    site.write("blocker", "x");
    let out = site.gazette_env(&["run"], &[("GAZETTE_FEEDS_DIR", "blocker/feeds")]);
    expect_code(&out, 1);
    assert!(stderr(&out).contains("blocker"), "{}", stderr(&out));
    // A read-only feed folder (effective for non-root users) is covered by the unit tests.
    assert_eq!(site.read("feeds/atom.xml"), old);
    // The failed cycle is not remembered as done: once the folder can be
    // made, the same run writes the feeds there.
    std::fs::remove_file(site.path("blocker")).unwrap();
    let out = site.gazette_env(&["run"], &[("GAZETTE_FEEDS_DIR", "blocker/feeds")]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("wrote rss.xml, atom.xml, feed.json"),
        "{}",
        stdout(&out)
    );
    assert_eq!(site.read("blocker/feeds/atom.xml"), old);
}

#[test]
fn a_second_run_waits_for_the_first_or_says_why_it_gave_up() {
    let site = Site::new();
    expect_code(&site.gazette(&["run"]), 0);
    let db = site.path("gazette.db");
    let held = gazette::store::RunLock::acquire(&db, Duration::ZERO, |_| {}).unwrap();
    site.says_on_stderr(&["run", "--wait", "1"], 1, "another gazette run");
    drop(held);

    // Two at once on a fresh database: both succeed, nothing recorded twice.
    let site = Site::new();
    let (a, b) = site.two_at_once(&["--json", "run"]);
    expect_code(&a, 0);
    expect_code(&b, 0);
    let va: serde_json::Value = serde_json::from_str(&stdout(&a)).unwrap();
    let vb: serde_json::Value = serde_json::from_str(&stdout(&b)).unwrap();
    let new =
        va["new_issues"].as_array().unwrap().len() + vb["new_issues"].as_array().unwrap().len();
    assert_eq!(new, 2, "each issue is new exactly once: {va} {vb}");
}

#[test]
fn backup_copies_the_live_database_and_never_replaces_a_file() {
    let site = Site::mailing("");
    site.import_subscribers(
        "email,name,status",
        &["ann@example.org,Ann Lee,active", "bob@example.org,,pending"],
    );
    // Nothing to copy yet in a site that has never run: said, not created.
    let empty = Site::empty();
    empty.says_on_stderr(&["backup", "copy.db"], 1, "no database");
    assert!(!empty.path("gazette.db").exists() && !empty.path("copy.db").exists());

    // While the daemon holds the database open and has run its first cycle.
    let server = site.serve();
    let out = site.gazette(&["--json", "backup", "backups/copy.db"]);
    expect_code(&out, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let copy = site.path("backups/copy.db");
    assert_eq!(
        report["bytes"].as_u64(),
        Some(std::fs::metadata(&copy).unwrap().len())
    );
    // A second backup to the same name is refused and leaves the first whole.
    let before = std::fs::read(&copy).unwrap();
    site.says_on_stderr(&["backup", "backups/copy.db"], 1, "exists already");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    let (status, _, log) = server.terminate();
    assert!(status.success(), "{log}");

    // The copy is a whole gazette database: the same subscribers and issues.
    let on = |db: &std::path::Path, args: &[&str]| {
        let url = format!("sqlite://{}", db.display());
        let out = site.gazette_env(args, &[("GAZETTE_DATABASE_URL", &url)]);
        expect_code(&out, 0);
        stdout(&out)
    };
    let live = site.path("gazette.db");
    for args in [
        &["--json", "subscribers", "list"][..],
        &["--json", "issues", "list"],
        &["--json", "deliveries"],
    ] {
        let (a, b) = (on(&live, args), on(&copy, args));
        assert_eq!(a, b, "{args:?}");
        assert!(
            a.contains("ann@example.org") || a.contains("2026-winter"),
            "{a}"
        );
    }
}

/// A database file truncated to 0 bytes is refused with what to do, not
/// silently made a new, empty database; a missing one is still created.
#[test]
fn an_empty_database_file_is_refused_not_started_over() {
    let site = Site::new();
    site.write("gazette.db", "");
    for args in [&["run"][..], &["subscribers", "list"]] {
        let out = site.gazette(args);
        expect_code(&out, 1);
        let e = stderr(&out);
        assert!(
            e.contains(&site.path("gazette.db").display().to_string())
                && e.contains("0 bytes")
                && e.contains("delete it"),
            "{args:?}: {e}"
        );
    }
    assert_eq!(site.read("gazette.db"), "", "left as it was");
    std::fs::remove_file(site.path("gazette.db")).unwrap();
    expect_code(&site.gazette(&["run"]), 0);
    assert!(std::fs::metadata(site.path("gazette.db")).unwrap().len() > 0);
}
