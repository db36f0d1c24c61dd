//! The browser plumbing the end-to-end tests stand on: headless Chromium
//! (Debian's), driven by playwright-core from tests/browser/, reaches a
//! running `gazette serve` and reads what it answers.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Site, tool};
use serde_json::Value;

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// `node tests/browser/smoke.mjs URL`, parsed.
fn open_in_chromium(url: &str) -> Value {
    let node = tool("node", "nodejs");
    let chromium = tool("chromium", "chromium");
    assert!(
        Path::new(BROWSER_DIR)
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed in tests/browser: run `bash .ci/test` \
         (or `cd tests/browser && npm ci`)"
    );
    let out = Command::new(node)
        .arg(Path::new(BROWSER_DIR).join("smoke.mjs"))
        .arg(url)
        .env("GZ_CHROMIUM", chromium)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "smoke.mjs {url}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("smoke.mjs printed no JSON ({e}): {line}"))
}

#[test]
fn headless_chromium_reads_health_and_the_atom_feed_from_gazette_serve() {
    let site = Site::new();
    let server = site.serve();

    let health = open_in_chromium(&server.url("/healthz"));
    assert_eq!(health["status"], 200, "{health}");
    assert_eq!(
        health["text"].as_str().map(str::trim),
        Some("ok"),
        "{health}"
    );

    let atom = open_in_chromium(&server.url("/feeds/atom.xml"));
    assert_eq!(atom["status"], 200, "{atom}");
    assert_eq!(atom["contentType"], "application/atom+xml", "{atom}");
    let text = atom["text"].as_str().unwrap_or_default();
    for want in [
        "The Test Ledger",
        "Harbour cranes return",
        "tag:news.example.org",
    ] {
        assert!(
            text.contains(want),
            "Chromium's page lacks {want:?}: {atom}"
        );
    }
}
