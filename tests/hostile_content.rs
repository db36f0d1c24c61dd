//! Hostile content, generated: deep nesting of every construct, long runs
//! of markup characters, many paragraphs, CRLF, BOM and control characters,
//! in Markdown articles and clippings. Each case goes through ingest, the
//! feeds, the digest and the web version in this process, on a thread with
//! the stack tokio gives its blocking threads (2 MiB): before nesting was
//! bounded, a few thousand nested elements overflowed it, which aborts the
//! process. The cases are deterministic (a seeded generator), so a failure
//! names a case that can be replayed. Time per case is measured by
//! bench-style runs, not asserted here.

use std::path::Path;

use chrono::{TimeZone, Utc};
use gazette::config::Config;
use gazette::content::nesting::{self, MAX_DEPTH, MAX_ELEMENTS};
use gazette::cycle;
use gazette::feeds;
use gazette::mail::Renderer;

/// The harness's seeded PRNG: the same cases on every machine.
#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// Openers that nest when repeated (Markdown and raw HTML).
const NESTERS: &[&str] = &[
    "<span>",
    "<div>",
    "<b><i>",
    "<ul><li>",
    "<table><tr><td>",
    "<blockquote>",
    "<a href=\"x\">",
    "<span/>",
    "<p><em>",
    "<svg><g>",
    "<font x=\"\">",
    "> ",
    "- ",
    "1. ",
    "* ",
    "[",
    "*",
    "**",
    "_",
    "~~",
    "`",
    "![",
    "[^n]: ",
];

/// Characters repeated in long runs.
const RUNS: &[&str] = &[
    ">",
    "*",
    "_",
    "[",
    "]",
    "<",
    "&",
    "`",
    "#",
    "|",
    "\\",
    "-",
    "\r\n",
    "\n\n",
    "<!--",
    "&#7;",
    "\u{7}",
    "\u{1b}[31m",
    "\u{0}",
    "\u{85}",
    "\u{feff}",
    "\t",
];

/// One hostile body of roughly `size` bytes.
fn body(rng: &mut Rng, size: usize) -> String {
    let mut out = String::new();
    while out.len() < size {
        match rng.below(4) {
            0 | 1 => {
                let opener = rng.pick(NESTERS);
                let depth = 100 + rng.below(3000);
                for _ in 0..depth {
                    out.push_str(opener);
                }
                out.push_str("deep");
                if rng.below(2) == 0 {
                    // Closed, at least partly.
                    let closer = opener.replace('<', "</");
                    for _ in 0..rng.below(depth) {
                        out.push_str(&closer);
                    }
                }
            }
            2 => {
                let run = rng.pick(RUNS);
                for _ in 0..1000 + rng.below(10_000) {
                    out.push_str(run);
                }
            }
            _ => {
                for i in 0..rng.below(8_000) {
                    out.push_str(if i % 7 == 0 { "w\r\n\r\n" } else { "w\n\n" });
                }
            }
        }
        out.push_str("\n\n");
    }
    out
}

fn markdown(rng: &mut Rng, size: usize) -> String {
    format!(
        "\u{feff}+++\ntitle = \"Hostile \\u0007\\u001b[2J \\u0000 {}\"\nauthor = \"A\\u0007\"\n+++\n{}",
        rng.next(),
        body(rng, size)
    )
}

fn clipping(rng: &mut Rng, size: usize) -> String {
    format!(
        "Hostile\u{7}\u{1b}[31m clipping\r\n\r\nNovember 19, 2021\r\n\r\nFrom the Winter\u{0} issue of The Ledger\r\n\r\nby Ana Ruiz\u{9b}\r\n\r\n{}",
        body(rng, size)
    )
}

const CONFIG: &str = r#"[publication]
title = "The Test Ledger"
description = "Fixture"
base_url = "https://news.example.org/"
language = "en"
timezone = "UTC"

[mail]
from = "The Test Ledger <ledger@example.org>"
"#;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Ingest, feeds, digest and web version of one content folder; panics on
/// anything unbounded.
fn run_case(dir: &Path, what: &str) {
    let config = Config::parse(&dir.join("config.toml"), CONFIG, &[]).expect("config");
    let (_, ingest) = cycle::ingest(&config).expect("ingest");
    let issue = ingest
        .issues
        .first()
        .unwrap_or_else(|| panic!("{what}: no issue; problems {:?}", ingest.problems));
    let input: usize = issue
        .articles
        .iter()
        .map(|a| std::fs::metadata(&a.source).map_or(0, |m| m.len() as usize))
        .sum();
    for a in &issue.articles {
        let again = nesting::bound(&a.html, nesting::ARTICLE);
        assert!(
            again.cut.is_empty() && again.over_count.is_empty(),
            "{what}: {} is nested deeper than {MAX_DEPTH} or has more than {MAX_ELEMENTS} elements",
            a.source.display()
        );
        for field in [&a.title, &a.summary]
            .into_iter()
            .chain(&a.authors)
            .chain(a.dateline.as_ref())
        {
            assert!(
                !has_control(field),
                "{what}: control character in {field:?}"
            );
        }
    }
    assert!(!has_control(&issue.title), "{what}: {:?}", issue.title);
    feeds::build(&config.publication, &ingest.issues, 50).expect("feeds");
    let renderer = Renderer::load(&config).expect("templates");
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
    let digest = renderer
        .prepare_at(issue, at)
        .unwrap_or_else(|e| panic!("{what}: digest: {e}"));
    assert!(
        !has_control(digest.subject()),
        "{what}: {:?}",
        digest.subject()
    );
    let web = renderer
        .web_html(issue)
        .unwrap_or_else(|e| panic!("{what}: web version: {e}"));
    // Bounded output: nothing multiplies the input (the templates add a
    // fixed amount, inlined CSS a bounded one per element).
    let bound = 64 * input + 200_000;
    for (part, len) in [
        ("web", web.len()),
        ("html", digest.html_web().len()),
        ("text", digest.text().len()),
    ] {
        assert!(len <= bound, "{what}: {part} is {len} bytes for {input} in");
    }
    let text = digest.text();
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{what}: control character in the text part"
    );
}

#[test]
fn hostile_markdown_and_clippings_render_within_bounds() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..16 {
        let size = 2_000 + rng.below(30_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let issue = dir.path().join("content/hostile");
        std::fs::create_dir_all(&issue).expect("mkdir");
        std::fs::write(dir.path().join("config.toml"), CONFIG).expect("config");
        std::fs::write(
            issue.join("issue.toml"),
            "title = \"Hostile \\u0007 issue\"\ndate = 2026-11-20\n",
        )
        .expect("issue.toml");
        let (name, text) = if case % 3 == 2 {
            ("piece.txt", clipping(&mut rng, size))
        } else {
            ("piece.md", markdown(&mut rng, size))
        };
        std::fs::write(issue.join(name), &text).expect("article");
        let what = format!("case {case} ({name}, {} bytes)", text.len());
        let root = dir.path().to_path_buf();
        // The stack a tokio blocking thread has, where `serve` renders.
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || run_case(&root, &what))
            .expect("thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
    }
}
