//! Hostile content folders against the real binary: deeply nested markup,
//! named pipes and symbolic links where articles are expected, and control
//! characters in titles. `check` names each problem, `run` and `preview`
//! finish, and `serve` keeps answering.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::serve::StatusCode;
use common::{CONFIG, Site, stderr, stdout};
use mail_parser::MessageParser;

const MAIL: &str = "\n[mail]\nfrom = \"The Test Ledger <ledger@example.org>\"\ntransport = \"file\"\noutbox = \"outbox\"\nskip_older_than = \"3650d\"\n";

fn site() -> Site {
    let site = Site::new();
    site.write("config.toml", &format!("{CONFIG}{MAIL}"));
    site
}

/// Runs `gazette ARGS` and fails the test (instead of hanging it) when it
/// takes longer than a minute.
fn finishes(site: &Site, args: &[&str]) -> Output {
    let mut child = site
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gazette");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gazette {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// The process ended with an exit code (no signal, no abort).
fn exited(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}\n{}", o.status, stderr(o)))
}

/// 4,000 nested `<span>`s and 5,000 nested quotes: before nesting was
/// bounded, the issue page overflowed a request thread's stack and the
/// abort took `serve` down.
const DEEP_MD: &str = "+++\ntitle = \"Deep\"\n+++\nFirst paragraph.\n\n";

fn deep_article() -> String {
    format!(
        "{DEEP_MD}{}deep text\n\n{} quoted\n",
        "<span>".repeat(4000),
        ">".repeat(5000)
    )
}

#[test]
fn a_deeply_nested_article_is_reported_flattened_published_and_served() {
    let site = site();
    site.write(
        "content/hostile/issue.toml",
        "title = \"Hostile\"\ndate = 2026-11-26\n",
    );
    site.write("content/hostile/deep.md", &deep_article());

    let o = finishes(&site, &["check"]);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(exited(&o), 1, "{out}");
    assert!(
        out.contains("deep.md:6: markup nested more than 64 elements deep"),
        "{out}"
    );

    let o = finishes(&site, &["run"]);
    assert_eq!(exited(&o), 0, "{}", stderr(&o));
    let o = finishes(&site, &["issues", "preview", "hostile", "--out", "out"]);
    assert_eq!(exited(&o), 0, "{}", stderr(&o));
    assert!(site.read("out/hostile.txt").contains("deep text"));

    let server = site.serve();
    for _ in 0..3 {
        let (status, _, body) = server.get("/issues/hostile");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("deep text") && body.contains("quoted"));
    }
    let (status, _, _) = server.get("/healthz");
    assert_eq!(status, StatusCode::OK);
    let (status, _, log) = server.terminate();
    assert!(
        status.success(),
        "serve did not stop cleanly: {status:?}\n{log}"
    );
}

fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads line")
}

#[test]
fn a_named_pipe_or_an_outside_link_is_a_problem_and_blocks_nothing() {
    let site = site();
    let fifo = site.path("content/2026-winter/pipe.md");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils) is needed");
    assert!(made.success());
    // A link out of the content folder, and one that stays inside.
    site.write("secret.txt", "root:x:0:0:SECRET-CONTENT\n");
    std::os::unix::fs::symlink(
        site.path("secret.txt"),
        site.path("content/2026-winter/outside.md"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(
        "../2026-autumn/autumn-notes.txt",
        site.path("content/2026-winter/inside.txt"),
    )
    .expect("symlink");

    let o = finishes(&site, &["check"]);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(exited(&o), 1, "{out}");
    assert!(
        out.contains("pipe.md: is a named pipe (FIFO), not a regular file; it is skipped"),
        "{out}"
    );
    assert!(
        out.contains("outside.md: is a symbolic link that leads out of the content folder"),
        "{out}"
    );
    assert!(
        !out.contains("SECRET-CONTENT") && !out.contains("root:x"),
        "{out}"
    );
    assert!(
        !out.contains("inside.txt"),
        "a link inside is followed: {out}"
    );

    let o = finishes(&site, &["run"]);
    assert_eq!(exited(&o), 0, "{}", stderr(&o));
    let o = finishes(&site, &["--json", "issues", "show", "2026-winter"]);
    assert!(stdout(&o).contains("inside"), "{}", stdout(&o));

    let server = site.serve();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let get = || {
        let r = agent
            .get(&server.url("/issues/2026-winter"))
            .call()
            .expect("the page answers within 10 s");
        r.status()
    };
    assert_eq!(get(), StatusCode::OK);
    let before = threads(server.pid());
    for _ in 0..40 {
        assert_eq!(get(), StatusCode::OK);
    }
    let after = threads(server.pid());
    assert!(
        after <= before + 2,
        "threads grew from {before} to {after} over 40 page requests"
    );
    let (status, _, log) = server.terminate();
    assert!(status.success(), "{status:?}\n{log}");
}

fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
}

#[test]
fn control_characters_in_titles_reach_no_subject_text_part_or_terminal() {
    let site = site();
    site.write(
        "content/2026-winter/issue.toml",
        "title = \"Winter\\u0007 2026\\u001b[2J\"\ndate = 2026-11-20\nnumber = 7\n",
    );
    site.write(
        "content/2026-winter/rents.md",
        "+++\ntitle = \"Rents\\u0007 \\u001b]0;owned\\u0007 up\"\nauthor = \"Zoë\\u0000\"\n+++\nBody.\n",
    );
    site.write(
        "content/2026-winter/harbour-cranes.txt",
        "Harbour\u{7} cranes\u{1b}[31m return\0\n\nNovember 18, 2026\n\nFrom the Winter 2026 issue of The Test Ledger\n\nDockers cheered.\n",
    );

    let o = finishes(&site, &["check"]);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(exited(&o), 1, "{out}");
    for expected in [
        "issue.toml:1: title has the control character U+0007",
        "rents.md:2: title has the control character U+0007",
        "rents.md:3: author has the control character U+0000",
        "harbour-cranes.txt:1: control character U+0007 (3 in the file)",
    ] {
        assert!(out.contains(expected), "{expected:?} missing in\n{out}");
    }
    assert!(!has_control(&out), "{out:?}");

    let o = finishes(&site, &["issues", "list"]);
    assert_eq!(exited(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Winter 2026"), "{}", stdout(&o));
    assert!(!has_control(&stdout(&o)), "{:?}", stdout(&o));

    let o = finishes(&site, &["issues", "preview", "2026-winter", "--out", "out"]);
    assert_eq!(exited(&o), 0, "{}", stderr(&o));
    let eml = std::fs::read(site.path("out/2026-winter.eml")).expect("eml");
    let message = MessageParser::default().parse(&eml[..]).expect("parse eml");
    let subject = message.subject().expect("Subject");
    assert!(subject.contains("Winter 2026"), "{subject:?}");
    assert!(!has_control(subject), "{subject:?}");
    let text = message.body_text(0).expect("text part");
    assert!(text.contains("Harbour cranes[31m return"), "{text}");
    assert!(text.contains("Rents ]0;owned up"), "{text}");
    assert!(!has_control(&text), "{text:?}");
    assert!(!has_control(&site.read("out/2026-winter.txt")));
}
