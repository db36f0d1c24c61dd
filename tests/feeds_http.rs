//! Real feed readers polling a running `gazette serve` over HTTP: feedparser
//! (what most readers and aggregators use) and newsboat (a reader people
//! run). Each must get the feed with every entry on the first poll, and a
//! 304 Not Modified when it revalidates with what it was given.

mod common;

use std::process::Command;

use common::serve::{Server, StatusCode};
use common::{Site, python, tool};
use serde_json::Value;

/// The fixture's entries as every feed lists them: newest issue first,
/// then the order.
const TITLES: [&str; 3] = [
    "Harbour cranes return",
    "Rents > wages & “temporary” < permanent",
    "Autumn notes",
];

/// (200s, 304s) the server has answered for one feed file.
fn answered(server: &Server, feed: &str) -> (u64, u64) {
    let get = |status: &str| {
        server
            .metric(&format!(
                "gazette_feed_requests_total{{feed=\"{feed}\",status=\"{status}\"}}"
            ))
            .unwrap_or_else(|| panic!("no feed request counter for {feed} {status}")) as u64
    };
    (get("200"), get("304"))
}

#[test]
fn feedparser_polls_rss_and_atom_and_revalidates_with_a_304() {
    let site = Site::new();
    let server = site.serve();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/poll_feed.py");
    for (feed, version, media) in [
        ("rss.xml", "rss20", "application/rss+xml"),
        ("atom.xml", "atom10", "application/atom+xml"),
    ] {
        let before = answered(&server, feed);
        let out = Command::new(python())
            .arg(script)
            .arg(server.url(&format!("/feeds/{feed}")))
            .output()
            .expect("run poll_feed.py");
        assert!(
            out.status.success(),
            "poll_feed.py {feed}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from poll_feed.py");
        let (first, second) = (&v["first"], &v["second"]);

        assert_eq!(first["status"], 200, "{feed}: {first}");
        assert_eq!(first["bozo"], 0, "{feed}: {}", first["bozo_exception"]);
        assert_eq!(first["version"], version, "{feed}");
        assert_eq!(first["content_type"], media, "{feed}");
        // feedparser asks for gzip, and gets it.
        assert_eq!(first["content_encoding"], "gzip", "{feed}");
        assert_eq!(first["feed_title"], "The Test Ledger", "{feed}");
        assert_eq!(first["titles"], serde_json::json!(TITLES), "{feed}");
        let ids = first["ids"].as_array().unwrap();
        assert!(
            ids.iter()
                .all(|id| id.as_str().is_some_and(|s| !s.is_empty())),
            "{feed}: every entry has an id: {ids:?}"
        );
        assert!(first["etag"].is_string(), "{feed}: no ETag kept: {first}");
        assert!(
            first["modified"].is_string(),
            "{feed}: no Last-Modified kept: {first}"
        );

        // The second poll sends If-None-Match and If-Modified-Since.
        assert_eq!(second["status"], 304, "{feed}: {second}");
        assert_eq!(second["titles"], serde_json::json!([]), "{feed}");
        assert_eq!(
            second["etag"], first["etag"],
            "{feed}: the 304 repeats the tag"
        );

        let after = answered(&server, feed);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (1, 1),
            "{feed}: one full answer, then one 304"
        );
    }
}

/// `newsboat -x reload` with its own cache file: returns the titles in the
/// cache and the ETag it stored for the feed.
fn newsboat_reload(home: &std::path::Path, url: &str) -> (Vec<String>, Option<String>) {
    let newsboat = tool("newsboat", "newsboat");
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join("urls"), format!("{url}\n")).unwrap();
    let out = Command::new(newsboat)
        .current_dir(home)
        // newsboat keeps its lock and history under $HOME.
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .args([
            "-u",
            "urls",
            "-c",
            "cache.db",
            "-C",
            "/dev/null",
            "-x",
            "reload",
        ])
        .output()
        .expect("run newsboat");
    assert!(
        out.status.success(),
        "newsboat reload {url}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // newsboat's cache is SQLite: read it with Python's sqlite3.
    let read = Command::new(python())
        .args([
            "-c",
            "import json, sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1])\n\
             items = [r[0] for r in db.execute('SELECT title FROM rss_item WHERE feedurl = ? ORDER BY id', (sys.argv[2],))]\n\
             feed = db.execute('SELECT etag FROM rss_feed WHERE rssurl = ?', (sys.argv[2],)).fetchone()\n\
             print(json.dumps({'titles': items, 'etag': feed[0] if feed else None}))",
        ])
        .arg(home.join("cache.db"))
        .arg(url)
        .output()
        .expect("read newsboat's cache");
    assert!(
        read.status.success(),
        "reading newsboat's cache: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    let v: Value = serde_json::from_slice(&read.stdout).unwrap();
    let titles = v["titles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect();
    (
        titles,
        v["etag"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    )
}

#[test]
fn newsboat_reads_rss_and_atom_over_http_and_revalidates_with_a_304() {
    let site = Site::new();
    let server = site.serve();
    for feed in ["rss.xml", "atom.xml"] {
        // One cache per feed: newsboat drops guids it saw in another feed.
        let home = site.path(&format!("newsboat-{feed}"));
        let url = server.url(&format!("/feeds/{feed}"));
        // Each reload's answers: (200s, 304s).
        let reload = || {
            let before = answered(&server, feed);
            let (titles, etag) = newsboat_reload(&home, &url);
            let after = answered(&server, feed);
            (titles, etag, (after.0 - before.0, after.1 - before.1))
        };

        let (titles, _, answers) = reload();
        let mut want: Vec<String> = TITLES.iter().map(|t| t.to_string()).collect();
        let mut got = titles.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{feed}: the items in newsboat's cache");
        assert_eq!(answers, (1, 0), "{feed}: the first reload fetched the feed");

        // newsboat 2.21 records a feed's validators only once the feed is in
        // its cache, so the first reload keeps none and the second is a
        // plain GET; from then on it keeps the ETag the server gave out...
        let (_, etag, answers) = reload();
        assert_eq!(answers, (1, 0), "{feed}: the second reload");
        let served = server.get_bytes(&format!("/feeds/{feed}"), &[("Accept-Encoding", "gzip")]);
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(
            etag.as_deref(),
            served.headers()["etag"].to_str().ok(),
            "{feed}: newsboat stored the (gzip) ETag"
        );

        // ...and revalidates with it: a 304, and the items stay.
        let (titles, _, answers) = reload();
        assert_eq!(answers, (0, 1), "{feed}: the third reload was answered 304");
        assert_eq!(titles.len(), TITLES.len(), "{feed}: {titles:?}");
    }
}

#[test]
fn feed_answers_carry_the_headers_every_answer_carries() {
    // Feeds are answered before the router (the polling hot path): they must
    // still look like every other answer, and the router still answers the
    // rest of /feeds/.
    let site = Site::new();
    let server = site.serve();
    let (_, health, _) = server.get("/healthz");
    for path in ["/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json"] {
        let r = server.get_bytes(path, &[]);
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        for h in ["x-content-type-options", "referrer-policy"] {
            assert_eq!(r.headers().get(h), health.get(h), "{path}: {h}");
            assert!(r.headers().get(h).is_some(), "{path}: {h}");
        }
        // HEAD goes through the router: same headers, no body.
        let head = server
            .agent()
            .head(&server.url(path))
            .call()
            .unwrap_or_else(|e| panic!("HEAD {path}: {e}"));
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            head.headers()["etag"],
            r.headers()["etag"],
            "HEAD {path}: the same tag"
        );
        assert_eq!(head.headers()["content-type"], r.headers()["content-type"]);
    }
    let (status, _, body) = server.get("/feeds/podcast.xml");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no such feed"), "{body}");
    let (status, _, _) = server.get("/feeds/atom.xml/");
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A query string does not change the answer.
    let r = server.get_bytes("/feeds/atom.xml?utm_source=reader", &[]);
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.body(),
        &std::fs::read(site.path("feeds/atom.xml")).unwrap()
    );
}
