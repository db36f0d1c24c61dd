//! The generated feeds held to real clients: feedparser (what most readers
//! use) must read every feed with bozo = 0 and see the right titles, authors,
//! dates and content; xmllint must find the XML well-formed.

mod common;

use std::process::Command;

use common::{Site, expect_code, python, tool};
use serde_json::Value;

fn read_with_feedparser(site: &Site) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/read_feeds.py");
    let files: Vec<String> = ["rss.xml", "atom.xml", "feed.json"]
        .iter()
        .map(|f| site.path(&format!("feeds/{f}")).display().to_string())
        .collect();
    let out = Command::new(python())
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "read_feeds.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Re-key by file name.
    let mut by_name = serde_json::Map::new();
    for (path, feed) in v.as_object().unwrap() {
        by_name.insert(path.rsplit('/').next().unwrap().to_string(), feed.clone());
    }
    Value::Object(by_name)
}

#[test]
fn feedparser_reads_every_feed_as_written() {
    let site = Site::new();
    expect_code(&site.gazette(&["feeds", "build"]), 0);
    let feeds = read_with_feedparser(&site);

    for (name, version) in [
        ("rss.xml", "rss20"),
        ("atom.xml", "atom10"),
        ("feed.json", "json11"),
    ] {
        let f = &feeds[name];
        assert_eq!(f["bozo"], 0, "{name}: {}", f["bozo_exception"]);
        assert_eq!(f["version"], version, "{name}");
        assert_eq!(f["feed"]["title"], "The Test Ledger", "{name}");
        let entries = f["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 3, "{name}");

        // Newest issue first, then the order (date, then title).
        let titles: Vec<&str> = entries
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "Harbour cranes return",
                "Rents > wages & “temporary” < permanent",
                "Autumn notes"
            ],
            "{name}"
        );

        let rents = &entries[1];
        assert_eq!(
            rents["authors"],
            serde_json::json!(["Zoë Álvarez", "Dariusz Łukasiewicz"]),
            "{name}: {rents}"
        );
        // Midnight in New York on the article's date.
        assert_eq!(rents["published"], "2026-11-20T05:00:00Z", "{name}");
        assert_eq!(
            rents["link"], "https://news.example.org/ledger/issues/2026-winter#rents",
            "{name}"
        );
        assert_eq!(rents["tags"], serde_json::json!(["Housing"]), "{name}");
        assert_eq!(
            rents["summary"], "Tenants count the cost of a “temporary” rise.",
            "{name}"
        );
        let content = rents["content"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no content: {rents}"));
        assert!(content.contains("<em>Tuesday</em>"), "{name}: {content}");
        assert!(
            content.contains("https://news.example.org/minutes/2026-11.html"),
            "{name}: relative link made absolute: {content}"
        );
        for bad in ["<script", "onerror", "javascript:"] {
            assert!(
                !content.to_lowercase().contains(bad),
                "{name}: {bad} in {content}"
            );
        }

        // No by-line: the publication is the author.
        assert_eq!(
            entries[0]["authors"],
            serde_json::json!(["The Test Ledger"]),
            "{name}"
        );
        assert_eq!(
            entries[2]["authors"],
            serde_json::json!(["Ana Ruiz", "Bo Chen"]),
            "{name}"
        );

        let ids: std::collections::HashSet<&str> =
            entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 3, "{name}: ids unique");
    }
    // Self links point at the feeds' own public addresses.
    let self_of = |name: &str| -> Vec<String> {
        feeds[name]["feed"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["rel"] == "self")
            .map(|l| l["href"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        self_of("atom.xml"),
        ["https://news.example.org/ledger/feeds/atom.xml"]
    );
    assert_eq!(
        self_of("rss.xml"),
        ["https://news.example.org/ledger/feeds/rss.xml"]
    );
}

#[test]
fn xmllint_finds_the_xml_feeds_well_formed() {
    let site = Site::new();
    expect_code(&site.gazette(&["feeds", "build"]), 0);
    let xmllint = tool("xmllint", "libxml2-utils");
    for f in ["rss.xml", "atom.xml"] {
        let out = Command::new(&xmllint)
            .arg("--noout")
            .arg(site.path(&format!("feeds/{f}")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And the check can fail: a truncated file is refused.
    let atom = site.read("feeds/atom.xml");
    site.write("broken.xml", &atom[..atom.len() / 2]);
    let out = Command::new(&xmllint)
        .arg("--noout")
        .arg(site.path("broken.xml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_repository_sample_reads_clean_in_feedparser() {
    let site = Site::empty();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["--config", &format!("{root}/config.toml"), "feeds", "build"])
        .env("GAZETTE_FEEDS_DIR", site.path("feeds"))
        .output()
        .unwrap();
    expect_code(&out, 0);
    let feeds = read_with_feedparser(&site);
    for name in ["rss.xml", "atom.xml", "feed.json"] {
        assert_eq!(
            feeds[name]["bozo"], 0,
            "{name}: {}",
            feeds[name]["bozo_exception"]
        );
        assert!(
            feeds[name]["entries"].as_array().unwrap().len() >= 3,
            "{name}"
        );
    }
}

/// The checks above can fail: broken feeds are flagged.
#[test]
fn the_readers_flag_broken_feeds() {
    let site = Site::new();
    expect_code(&site.gazette(&["feeds", "build"]), 0);
    let atom = site.read("feeds/atom.xml");
    site.write("feeds/atom.xml", &atom.replacen("</entry>", "", 1));
    let mut json: Value = serde_json::from_str(&site.read("feeds/feed.json")).unwrap();
    json["items"][1]["id"] = json["items"][0]["id"].clone();
    json["items"][0]["url"] = Value::from("/issues/x");
    json["items"][2]["date_published"] = Value::from("20 Nov 2026");
    site.write("feeds/feed.json", &json.to_string());
    let feeds = read_with_feedparser(&site);
    assert_eq!(feeds["atom.xml"]["bozo"], 1);
    assert_eq!(feeds["rss.xml"]["bozo"], 0);
    let why = feeds["feed.json"]["bozo_exception"].as_str().unwrap();
    assert!(
        why.contains("repeats") && why.contains("absolute") && why.contains("RFC 3339"),
        "{why}"
    );
}
