use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use tempfile::TempDir;
use url::Url;

use super::*;
use crate::content::nesting;

fn opts() -> ScanOptions {
    ScanOptions {
        base_url: Url::parse("https://ledger.example/").unwrap(),
        max_article_bytes: 1_000_000,
    }
}

fn write(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    path
}

fn clip(title: &str, date: &str, issue: &str) -> String {
    format!(
        "{title}\n\n{date}\n\nFrom the {issue} issue of The Harbour Ledger\n\nby Ana Reyes\n\nBody of {title}.\n"
    )
}

fn md(front: &str) -> String {
    format!("+++\n{front}\n+++\nSome *text*.\n")
}

fn ingest(root: &Path) -> Ingest {
    parse_tree(&read_tree(root, &opts()).unwrap(), &opts())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn article_slugs(issue: &Issue) -> Vec<&str> {
    issue.articles.iter().map(|a| a.slug.as_str()).collect()
}

/// The only problem, which must be about `path`.
fn only_problem<'a>(ingest: &'a Ingest, path: &Path) -> &'a Problem {
    assert_eq!(ingest.problems.len(), 1, "{:#?}", ingest.problems);
    let p = &ingest.problems[0];
    assert_eq!(p.path, path, "{p}");
    p
}

/// A folder with one good clipping and one good Markdown article beside whatever the test adds.
fn tree_with_good_issue() -> TempDir {
    let tmp = TempDir::new().unwrap();
    write(
        tmp.path(),
        "2024-03/issue.toml",
        "title = \"Spring 2024\"\ndate = 2024-03-01\n",
    );
    write(
        tmp.path(),
        "2024-03/good.txt",
        clip("Good clipping", "March 1, 2024", "Spring 2024"),
    );
    write(tmp.path(), "2024-03/notes.md", md("title = \"Notes\""));
    tmp
}

fn assert_good_ones_ingested(ingest: &Ingest) {
    assert_eq!(ingest.issues.len(), 1, "{:#?}", ingest.problems);
    let slugs = article_slugs(&ingest.issues[0]);
    assert!(
        slugs.contains(&"good") && slugs.contains(&"notes"),
        "{slugs:?}"
    );
}

#[test]
fn reads_issues_newest_first() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    // Without issue.toml: title from the clippings, date from the newest.
    write(
        root,
        "2021-11/b.txt",
        clip("Beta", "November 19, 2021", "November-December 2021"),
    );
    write(
        root,
        "2021-11/a.txt",
        clip("Alpha", "November 20, 2021", "November-December 2021"),
    );
    write(
        root,
        "2021-11/z.txt",
        clip("Aardvark", "November 19, 2021", "November-December 2021"),
    );
    write(
        root,
        "2021-11/undated.md",
        md("title = \"Undated\"\nauthors = [\"Zoë Álvarez\", \"Dariusz Łukasiewicz\"]"),
    );
    // Ignored: hidden and other files, hidden folders, files at the top.
    write(root, "2021-11/.draft.txt", "not a clipping");
    write(root, "2021-11/cover.jpg", "jpeg");
    write(root, ".git/x.txt", "x");
    write(root, "README", "hello");
    write(
        root,
        "2022-01/issue.toml",
        "title = \"January 2022\"\ndate = 2022-01-05\nnumber = 3\nvolume = 67\nsummary = \"New year.\"\n",
    );
    write(
        root,
        "2022-01/only.md",
        md("title = \"Only\"\ndate = 2022-01-04"),
    );
    write(
        root,
        "2020-06/issue.toml",
        "title = \"June 2020\"\ndate = 2020-06-01T12:00:00Z\n",
    );
    write(root, "2020-06/old.md", md("title = \"Old\""));

    let ingest = ingest(root);
    assert!(ingest.problems.is_empty(), "{:#?}", ingest.problems);
    let slugs: Vec<&str> = ingest.issues.iter().map(|i| i.slug.as_str()).collect();
    assert_eq!(slugs, ["2022-01", "2021-11", "2020-06"]);

    let jan = &ingest.issues[0];
    assert_eq!(
        (jan.title.as_str(), jan.date, jan.number, jan.volume),
        ("January 2022", date(2022, 1, 5), Some(3), Some(67))
    );
    assert_eq!(jan.summary.as_deref(), Some("New year."));
    assert_eq!(jan.publication, None);
    assert_eq!(jan.dir, root.join("2022-01"));

    let nov = &ingest.issues[1];
    assert_eq!(nov.title, "November-December 2021");
    assert_eq!(nov.date, date(2021, 11, 20));
    assert_eq!(nov.publication.as_deref(), Some("The Harbour Ledger"));
    // Date, then title: Nov 19 "Aardvark", Nov 19 "Beta", Nov 20 "Alpha" and "Undated" (issue date).
    assert_eq!(article_slugs(nov), ["z", "b", "a", "undated"]);
    let undated = &nov.articles[3];
    assert_eq!(undated.date, date(2021, 11, 20));
    assert_eq!(undated.format, SourceFormat::Markdown);
    assert_eq!(undated.authors, ["Zoë Álvarez", "Dariusz Łukasiewicz"]);
    assert_eq!(undated.source, root.join("2021-11/undated.md"));
    let a = &nov.articles[2];
    assert_eq!(
        (a.format, a.authors.as_slice()),
        (SourceFormat::Clipping, &["Ana Reyes".to_string()][..])
    );
    assert_eq!(
        a.hash,
        ContentHash::of(clip("Alpha", "November 20, 2021", "November-December 2021").as_bytes())
    );

    assert_eq!(ingest.issues[2].date, date(2020, 6, 1));
}

#[test]
fn issue_toml_articles_list() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let toml = write(
        root,
        "i/issue.toml",
        "title = \"I\"\ndate = 2024-01-01\narticles = [\n  \"c\",\n  \"missing\",\n  \"a\",\n  \"c\",\n  \"broken\",\n]\n",
    );
    for (slug, title) in [("a", "Zed"), ("b", "Bee"), ("c", "Cee"), ("d", "Dee")] {
        write(
            root,
            &format!("i/{slug}.md"),
            md(&format!("title = \"{title}\"")),
        );
    }
    let broken = write(root, "i/broken.md", "+++\ntitle = 1\n+++\nx\n");
    let ingest = ingest(root);
    assert_eq!(article_slugs(&ingest.issues[0]), ["c", "a", "b", "d"]);
    let problems: Vec<String> = ingest.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("{}:2:", broken.display()))),
        "{problems:#?}"
    );
    let missing = format!(
        "{}:5: articles lists \"missing\", but there is no missing.txt or missing.md",
        toml.display()
    );
    assert!(
        problems.iter().any(|p| p.starts_with(&missing)),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("{}:7: articles lists \"c\" again", toml.display()))),
        "{problems:#?}"
    );
}

#[test]
fn issue_toml_unknown_key_or_wrong_type_skips_the_issue() {
    let tmp = tree_with_good_issue();
    let root = tmp.path();
    let bad = write(
        root,
        "2024-04/issue.toml",
        "title = \"April\"\ndate = 2024-04-01\n\ncolour = \"red\"\n",
    );
    write(root, "2024-04/x.md", md("title = \"X\""));
    let ingest = ingest(root);
    let p = only_problem(&ingest, &bad);
    assert_eq!(p.line, Some(4));
    assert!(
        p.message.contains("unknown field `colour`") && p.message.contains("skipped"),
        "{p}"
    );
    assert_good_ones_ingested(&ingest);

    let bad = write(
        root,
        "2024-04/issue.toml",
        "title = \"April\"\ndate = 2024-04-01\nnumber = \"three\"\n",
    );
    let ingest = self::ingest(root);
    let p = only_problem(&ingest, &bad);
    assert_eq!(p.line, Some(3));
    assert!(p.message.contains("invalid type"), "{p}");
    assert_good_ones_ingested(&ingest);
}

#[test]
fn clipping_without_date_line() {
    let tmp = tree_with_good_issue();
    let bad = write(
        tmp.path(),
        "2024-03/bad.txt",
        "Title\n\nFrom the Spring 2024 issue of The Harbour Ledger\n\nText.\n",
    );
    let ingest = ingest(tmp.path());
    let p = only_problem(&ingest, &bad);
    assert_eq!(p.line, Some(3));
    assert!(
        p.message.starts_with(
            "expected a date like \"November 19, 2021\" after the title, found \"From the"
        ),
        "{p}"
    );
    assert_good_ones_ingested(&ingest);
}

#[test]
fn clipping_with_unparseable_date() {
    let tmp = tree_with_good_issue();
    let bad = write(
        tmp.path(),
        "2024-03/bad.txt",
        clip("Title", "Febtober 40, 2024", "Spring 2024"),
    );
    let ingest = ingest(tmp.path());
    let p = only_problem(&ingest, &bad);
    assert_eq!(p.line, Some(3));
    assert!(
        p.message
            .contains("cannot read the date \"Febtober 40, 2024\""),
        "{p}"
    );
    assert_good_ones_ingested(&ingest);
}

#[test]
fn non_utf8_file() {
    let tmp = tree_with_good_issue();
    let mut bytes = clip("Title", "March 1, 2024", "Spring 2024").into_bytes();
    let at = bytes.iter().position(|&b| b == b'B').unwrap(); // "Body of Title." on line 9
    bytes[at] = 0xe9; // Latin-1 "é"
    let bad = write(tmp.path(), "2024-03/latin1.txt", bytes);
    let ingest = ingest(tmp.path());
    let p = only_problem(&ingest, &bad);
    assert_eq!(p.line, Some(9));
    assert!(p.message.contains("not UTF-8"), "{p}");
    assert_good_ones_ingested(&ingest);
}

#[test]
fn empty_files() {
    for (name, bytes) in [
        ("empty.txt", ""),
        ("empty.md", ""),
        ("blank.txt", "\u{feff}\r\n\r\n"),
    ] {
        let tmp = tree_with_good_issue();
        let bad = write(tmp.path(), &format!("2024-03/{name}"), bytes);
        let ingest = ingest(tmp.path());
        let p = only_problem(&ingest, &bad);
        assert_eq!(p.message, "empty file");
        assert_good_ones_ingested(&ingest);
    }
}

#[test]
fn article_over_the_size_limit_is_skipped() {
    let tmp = tree_with_good_issue();
    let big = tmp.path().join("2024-03/huge.txt");
    let file = fs::File::create(&big).unwrap();
    file.set_len(5 * 1024 * 1024).unwrap();
    drop(file);
    let tree = read_tree(tmp.path(), &opts()).unwrap();
    assert!(tree.folders[0].files.iter().all(|f| f.name != "huge.txt"));
    let ingest = parse_tree(&tree, &opts());
    let p = only_problem(&ingest, &big);
    for part in [
        "5242880 bytes",
        "1000000 bytes",
        "content.max_article_bytes",
    ] {
        assert!(p.message.contains(part), "{part} not in {p}");
    }
    assert_good_ones_ingested(&ingest);
}

#[test]
fn front_matter_unknown_key() {
    let tmp = tree_with_good_issue();
    let bad = write(
        tmp.path(),
        "2024-03/bad.md",
        "+++\ntitle = \"T\"\nsubtitle = \"S\"\n+++\nText.\n",
    );
    let ingest = ingest(tmp.path());
    let p = only_problem(&ingest, &bad);
    assert_eq!(p.line, Some(3));
    assert!(p.message.contains("unknown field `subtitle`"), "{p}");
    assert_good_ones_ingested(&ingest);
}

#[test]
fn front_matter_wrong_type() {
    let tmp = tree_with_good_issue();
    let bad = write(
        tmp.path(),
        "2024-03/bad.md",
        "\u{feff}+++\r\ntitle = \"T\"\r\n\r\nauthors = \"Not A List\"\r\n+++\r\nText.\r\n",
    );
    let ingest = ingest(tmp.path());
    let p = only_problem(&ingest, &bad);
    assert_eq!(p.line, Some(4));
    assert!(p.message.contains("invalid type"), "{p}");
    assert_good_ones_ingested(&ingest);
}

#[test]
fn folders_differing_only_in_case() {
    let tmp = tree_with_good_issue();
    let root = tmp.path();
    write(
        root,
        "Winter/a.txt",
        clip("A", "Jan 2, 2025", "Winter 2025"),
    );
    write(
        root,
        "winter/b.txt",
        clip("B", "Jan 3, 2025", "Winter 2025"),
    );
    let ingest = ingest(root);
    // "Winter" < "winter" in byte order: the first is kept.
    let p = only_problem(&ingest, &root.join("winter"));
    assert!(
        p.message
            .contains(&root.join("winter").display().to_string())
            && p.message
                .contains(&root.join("Winter").display().to_string()),
        "{p}"
    );
    let slugs: Vec<&str> = ingest.issues.iter().map(|i| i.slug.as_str()).collect();
    assert_eq!(slugs, ["Winter", "2024-03"]);
}

#[test]
fn invalid_folder_name() {
    let tmp = tree_with_good_issue();
    write(
        tmp.path(),
        "bad name/a.txt",
        clip("A", "Jan 2, 2025", "Winter 2025"),
    );
    write(
        tmp.path(),
        "-dash/a.txt",
        clip("A", "Jan 2, 2025", "Winter 2025"),
    );
    let ingest = ingest(tmp.path());
    assert_eq!(ingest.problems.len(), 2, "{:#?}", ingest.problems);
    assert!(
        ingest
            .problems
            .iter()
            .all(|p| p.message.contains("not a valid issue slug"))
    );
    assert_good_ones_ingested(&ingest);
}

#[test]
fn missing_content_folder_is_fatal() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("content");
    match read_tree(&missing, &opts()) {
        Err(err @ ScanError::Dir { .. }) => assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        ),
        Ok(tree) => panic!("read a missing folder: {tree:?}"),
    }
    let file = write(tmp.path(), "file", "x");
    assert!(read_tree(&file, &opts()).is_err());
}

#[test]
fn clippings_that_disagree_on_the_issue() {
    let tmp = tree_with_good_issue();
    let root = tmp.path();
    write(root, "w/a.txt", clip("A", "Jan 2, 2025", "Winter 2025"));
    let odd = write(root, "w/b.txt", clip("B", "Jan 3, 2025", "Winter 2024"));
    let ingest = ingest(root);
    let p = only_problem(&ingest, &odd);
    assert_eq!(p.line, Some(5));
    assert!(
        p.message.contains("\"Winter 2024\"")
            && p.message.contains("\"Winter 2025\"")
            && p.message.contains("skipped"),
        "{p}"
    );
    assert_good_ones_ingested(&ingest);
}

#[test]
fn issue_without_toml_or_clippings() {
    let tmp = tree_with_good_issue();
    write(tmp.path(), "md-only/x.md", md("title = \"X\""));
    let ingest = ingest(tmp.path());
    let p = only_problem(&ingest, &tmp.path().join("md-only"));
    assert!(p.message.contains("no issue.toml"), "{p}");
    assert_good_ones_ingested(&ingest);
}

#[test]
fn issue_without_good_articles() {
    let tmp = tree_with_good_issue();
    let root = tmp.path();
    write(
        root,
        "empty/issue.toml",
        "title = \"Empty\"\ndate = 2025-01-01\n",
    );
    let ingest = self::ingest(root);
    let p = only_problem(&ingest, &root.join("empty"));
    assert_eq!(p.message, "no articles: the issue is skipped");
    write(root, "empty/bad.md", "+++\n+++\nx");
    let ingest = self::ingest(root);
    assert_eq!(ingest.problems.len(), 2, "{:#?}", ingest.problems);
    assert_good_ones_ingested(&ingest);
}

#[test]
fn two_articles_with_one_slug() {
    let tmp = tree_with_good_issue();
    write(tmp.path(), "2024-03/good.md", md("title = \"Other\""));
    let ingest = ingest(tmp.path());
    // good.md comes first in name order and is kept.
    let p = only_problem(&ingest, &tmp.path().join("2024-03/good.txt"));
    assert!(p.message.contains("good.md"), "{p}");
    assert_good_ones_ingested(&ingest);
    let good = ingest.issues[0]
        .articles
        .iter()
        .find(|a| a.slug == "good")
        .unwrap();
    assert_eq!(good.title, "Other");
}

#[test]
fn fingerprint_and_issue_hash_follow_the_files() {
    let tmp = tree_with_good_issue();
    let root = tmp.path();
    let fp = |root: &Path| read_tree(root, &opts()).unwrap().fingerprint();
    let issue_hash = |root: &Path| ingest(root).issues[0].hash;
    let (fp0, hash0) = (fp(root), issue_hash(root));
    assert_eq!(fp(root), fp0);
    write(root, "2024-03/cover.jpg", "ignored");
    assert_eq!(fp(root), fp0);

    write(root, "2024-03/notes.md", md("title = \"Notes, changed\""));
    let fp1 = fp(root);
    assert_ne!(fp1, fp0);
    assert_ne!(issue_hash(root), hash0);

    // A skipped file counts too.
    let big = root.join("2024-03/big.md");
    fs::File::create(&big).unwrap().set_len(2_000_000).unwrap();
    let fp2 = fp(root);
    assert_ne!(fp2, fp1);
    fs::File::create(&big).unwrap().set_len(3_000_000).unwrap();
    assert_ne!(fp(root), fp2);

    // Moving a file to another issue changes it.
    let tree = read_tree(root, &opts()).unwrap();
    let mut moved = tree.clone();
    moved.folders[0].slug = "2024-04".into();
    assert_ne!(moved.fingerprint(), tree.fingerprint());
}

#[test]
fn repository_sample_content() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
    let opts = ScanOptions {
        base_url: Url::parse("https://harbour-ledger.example/").unwrap(),
        max_article_bytes: 1_000_000,
    };
    let ingest = parse_tree(&read_tree(&dir, &opts).unwrap(), &opts);
    assert!(ingest.problems.is_empty(), "{:#?}", ingest.problems);
    assert_eq!(ingest.issues.len(), 1);
    let issue = &ingest.issues[0];
    assert_eq!(issue.slug, "2026-11-winter-reading");
    assert_eq!(issue.title, "Winter Reading 2026");
    assert_eq!(issue.date, date(2026, 11, 20));
    assert_eq!(issue.publication.as_deref(), Some("The Harbour Ledger"));
    let got: Vec<(&str, &str, Vec<&str>)> = issue
        .articles
        .iter()
        .map(|a| {
            (
                a.slug.as_str(),
                a.title.as_str(),
                a.authors.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "ferry-fares",
                "Rents > wages & “temporary” < permanent on the ferry",
                vec!["Zoë Álvarez", "Dariusz Łukasiewicz"]
            ),
            (
                "winter-books",
                "Seven books for the long nights",
                vec!["Maren Østergaard"]
            ),
            (
                "letters",
                "Letters: the lighthouse, the library and the bus",
                vec![]
            ),
        ]
    );
    let ferry = &issue.articles[0];
    assert_eq!(ferry.dateline.as_deref(), Some("Porthcarrow"));
    assert!(
        ferry.html.contains("<hr>") && !ferry.html.contains("Leave a Reply"),
        "{}",
        ferry.html
    );
    let books = &issue.articles[1];
    assert!(
        books.html.contains("<ul>")
            && books.html.contains("<blockquote>")
            && books.html.contains("href=\"https://"),
        "{}",
        books.html
    );
}

#[test]
fn one_folder_reads_and_parses_like_the_whole_tree() {
    let tmp = tree_with_good_issue();
    write(
        tmp.path(),
        "2024-04/a.txt",
        clip("Other", "April 2, 2024", "April 2024"),
    );
    let all = ingest(tmp.path());
    let whole = all.issues.iter().find(|i| i.slug == "2024-03").unwrap();
    let tree = read_issue_folder(tmp.path(), "2024-03", &opts()).unwrap();
    assert_eq!(tree.folders.len(), 1);
    let one = parse_tree(&tree, &opts());
    assert_eq!(one.issues.len(), 1);
    assert_eq!(&one.issues[0], whole, "same issue, same content hash");
    for slug in ["nope", "../2024-03", ".hidden", ""] {
        let tree = read_issue_folder(tmp.path(), slug, &opts()).unwrap();
        assert!(tree.folders.is_empty(), "{slug:?}");
    }
}

#[test]
fn issue_toml_draft_and_publish_at() {
    let tmp = tree_with_good_issue();
    let toml = |extra: &str| format!("title = \"Spring 2024\"\ndate = 2024-03-01\n{extra}");
    let local = |h, m, s| date(2024, 3, 2).and_hms_opt(h, m, s).unwrap();
    let cases: &[(&str, bool, Option<PublishAt>)] = &[
        ("", false, None),
        ("draft = true\n", true, None),
        ("draft = false\n", false, None),
        (
            "publish_at = 2024-03-02T08:30:00\n",
            false,
            Some(PublishAt::Local(local(8, 30, 0))),
        ),
        // TOML 1.1: seconds may be left out; a space for the T.
        (
            "publish_at = 2024-03-02 08:30\n",
            false,
            Some(PublishAt::Local(local(8, 30, 0))),
        ),
        (
            "publish_at = \"2024-03-02T08:30:15\"\n",
            false,
            Some(PublishAt::Local(local(8, 30, 15))),
        ),
        // A day alone: its start.
        (
            "publish_at = 2024-03-02\n",
            false,
            Some(PublishAt::Local(local(0, 0, 0))),
        ),
        (
            "publish_at = 2024-03-02T08:30:00+01:00\n",
            false,
            Some(PublishAt::Exact(
                chrono::FixedOffset::east_opt(3600)
                    .unwrap()
                    .from_local_datetime(&local(8, 30, 0))
                    .unwrap(),
            )),
        ),
    ];
    for (extra, draft, publish_at) in cases {
        write(tmp.path(), "2024-03/issue.toml", toml(extra));
        let ingest = ingest(tmp.path());
        assert_good_ones_ingested(&ingest);
        assert!(ingest.problems.is_empty(), "{extra}: {:?}", ingest.problems);
        let issue = &ingest.issues[0];
        assert_eq!(
            (issue.draft, issue.publish_at),
            (*draft, *publish_at),
            "{extra}"
        );
    }
}

#[test]
fn bad_draft_or_publish_at_is_a_problem_with_its_line_and_skips_the_issue() {
    let tmp = tree_with_good_issue();
    let cases = [
        (
            "publish_at = \"tomorrow\"",
            "publish_at = \"tomorrow\" is not a date-time",
        ),
        ("publish_at = 08:30:00", "is not a date-time"),
        ("publish_at = 20241201", "is not a date-time"),
        ("publish_at = \"2024-02-30T08:00:00\"", "is not a date-time"),
        (
            "draft = \"yes\"",
            "draft must be true or false, not \"yes\"",
        ),
        ("draft = 1", "draft must be true or false"),
    ];
    for (line, message) in cases {
        let path = write(
            tmp.path(),
            "2024-03/issue.toml",
            format!("title = \"Spring 2024\"\n\ndate = 2024-03-01\n{line}\n"),
        );
        let ingest = ingest(tmp.path());
        assert!(ingest.issues.is_empty(), "{line}");
        let p = only_problem(&ingest, &path);
        assert_eq!(p.line, Some(4), "{line}: {p}");
        assert!(
            p.message.contains(message) && p.message.contains("the issue is skipped"),
            "{line}: {p}"
        );
    }
}

/// Runs `f` on a thread and fails the test if it takes more than 20 s (a
/// read that blocks for ever would otherwise hang the whole test run).
fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the read did not finish: it blocked")
}

#[test]
fn only_regular_files_are_read_and_links_stay_inside() {
    let tmp = tree_with_good_issue();
    let dir = tmp.path().join("2024-03");
    let fifo =
        std::ffi::CString::new(dir.join("pipe.md").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    fs::create_dir(dir.join("folder.md")).unwrap();
    let outside = TempDir::new().unwrap();
    write(outside.path(), "secret.md", md("title = \"SECRET\""));
    std::os::unix::fs::symlink(outside.path().join("secret.md"), dir.join("out.md")).unwrap();
    std::os::unix::fs::symlink(outside.path(), tmp.path().join("2024-09")).unwrap();
    std::os::unix::fs::symlink(dir.join("nothing.md"), dir.join("dangling.md")).unwrap();
    write(tmp.path(), "2024-05/real.md", md("title = \"Inside\""));
    std::os::unix::fs::symlink("../2024-05/real.md", dir.join("linked.md")).unwrap();

    let root = tmp.path().to_path_buf();
    let got = within_20s(move || ingest(&root));
    let problems: Vec<String> = got.problems.iter().map(ToString::to_string).collect();
    let has = |end: &str, what: &str| problems.iter().any(|p| p.contains(end) && p.contains(what));
    assert!(
        has("pipe.md", "is a named pipe (FIFO), not a regular file"),
        "{problems:#?}"
    );
    assert!(
        has("folder.md", "is a folder, not a regular file"),
        "{problems:#?}"
    );
    assert!(
        has("out.md", "leads out of the content folder"),
        "{problems:#?}"
    );
    assert!(
        has("2024-09", "leads out of the content folder"),
        "{problems:#?}"
    );
    assert!(
        has("dangling.md", "symbolic link to nothing"),
        "{problems:#?}"
    );
    assert!(
        !problems.iter().any(|p| p.contains("SECRET")),
        "{problems:#?}"
    );
    let issue = got.issues.iter().find(|i| i.slug == "2024-03").unwrap();
    assert!(
        issue
            .articles
            .iter()
            .any(|a| a.slug == "linked" && a.title == "Inside"),
        "a link inside the content folder is followed"
    );

    // The web version reads one folder the same way.
    let root = tmp.path().to_path_buf();
    let tree = within_20s(move || read_issue_folder(&root, "2024-03", &opts()).unwrap());
    assert!(
        tree.problems
            .iter()
            .any(|p| p.message.contains("named pipe"))
    );
    let root = tmp.path().to_path_buf();
    let tree = within_20s(move || read_issue_folder(&root, "2024-09", &opts()).unwrap());
    assert!(tree.folders.is_empty(), "a folder outside is not read");
}

#[test]
fn control_characters_and_deep_nesting_are_problems_and_the_articles_stay() {
    let tmp = TempDir::new().unwrap();
    write(
        tmp.path(),
        "x/issue.toml",
        "title = \"Issue\\u0007\"\ndate = 2024-03-01\nsummary = \"S\\u009b\"\n",
    );
    write(
        tmp.path(),
        "x/a.md",
        format!(
            "+++\ntitle = \"T\"\nsection = \"S\\u001b\"\ndateline = \"D\\u0000\"\nsummary = \"Y\\u0085z\"\n+++\nBody\u{7}.\n\n{}deep\n",
            "<div>".repeat(100)
        ),
    );
    write(
        tmp.path(),
        "x/b.txt",
        format!(
            "Clip\n\nMarch 1, 2024\n\nFrom the March issue of P\n\n{}",
            "para\n\n".repeat(nesting::MAX_ELEMENTS + 5)
        ),
    );
    let got = ingest(tmp.path());
    let problems: Vec<String> = got.problems.iter().map(ToString::to_string).collect();
    let expected = [
        "issue.toml:1: title has the control character U+0007",
        "issue.toml:3: summary has the control character U+009B",
        "a.md:3: section has the control character U+001B",
        "a.md:4: dateline has the control character U+0000",
        "a.md:7: control character U+0007 (1 in the file)",
        "a.md:9: markup nested more than 64 elements deep from here: 36 tag(s) dropped",
        &format!(
            "b.txt:{}: more than 20000 paragraphs",
            7 + 2 * nesting::MAX_ELEMENTS
        ),
    ];
    for e in expected {
        assert!(
            problems.iter().any(|p| p.contains(e)),
            "{e:?} in {problems:#?}"
        );
    }
    assert_eq!(got.issues.len(), 1);
    let issue = &got.issues[0];
    assert_eq!(
        (issue.title.as_str(), issue.summary.as_deref()),
        ("Issue", Some("S"))
    );
    let by_slug = |slug: &str| issue.articles.iter().find(|a| a.slug == slug).unwrap();
    let a = by_slug("a");
    assert_eq!(a.section.as_deref(), Some("S"));
    assert_eq!(a.dateline.as_deref(), Some("D"));
    assert_eq!(a.summary, "Y z");
    assert!(
        a.html.contains("Body.") && a.html.contains("deep"),
        "{}",
        a.html
    );
    let b = by_slug("b");
    assert_eq!(b.html.matches("<p>").count(), nesting::MAX_ELEMENTS);
    assert_eq!(b.html.matches("para").count(), nesting::MAX_ELEMENTS + 5);
}

#[test]
fn many_folders_parse_on_all_cores_in_the_same_order() {
    // Enough folders for every core, each with a good article and every
    // third with a bad one too: the issues come newest first and the
    // problems in the folders' (sorted) order, however the work was split.
    let tmp = TempDir::new().unwrap();
    let n = FOLDERS_PER_WORKER * 8 + 3;
    for i in 0..n {
        let slug = format!("issue-{i:03}");
        write(
            tmp.path(),
            &format!("{slug}/issue.toml"),
            format!("title = \"Issue {i}\"\ndate = 2024-01-01\n"),
        );
        write(
            tmp.path(),
            &format!("{slug}/good.md"),
            md("title = \"Good\""),
        );
        if i % 3 == 0 {
            write(
                tmp.path(),
                &format!("{slug}/bad.md"),
                "+++\ntitle = \n+++\n",
            );
        }
    }
    let ingest = ingest(tmp.path());
    let slugs: Vec<String> = ingest.issues.iter().map(|i| i.slug.clone()).collect();
    let expected: Vec<String> = (0..n).map(|i| format!("issue-{i:03}")).collect();
    assert_eq!(slugs, expected, "same date: by slug");
    let bad: Vec<PathBuf> = ingest.problems.iter().map(|p| p.path.clone()).collect();
    let expected: Vec<PathBuf> = (0..n)
        .filter(|i| i % 3 == 0)
        .map(|i| tmp.path().join(format!("issue-{i:03}/bad.md")))
        .collect();
    assert_eq!(bad, expected);
}

#[test]
fn map_in_order_keeps_the_order_whoever_is_slow() {
    let items: Vec<u64> = (0..200).collect();
    let out = map_in_order(&items, 2, |&i| {
        if i % 17 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        i * 3
    });
    assert_eq!(out, items.iter().map(|i| i * 3).collect::<Vec<_>>());
    assert!(map_in_order(&[] as &[u64], 2, |&i| i).is_empty());
}
