//! `gazette issues preview` end to end, held to independent checkers:
//! `tests/support/mimecheck.py` (stdlib Python: MIME structure, headers,
//! line limits, RFC 8058) and dkimpy (a real DKIM verifier). A missing checker
//! fails the test; it never skips.

mod common;

use std::path::Path;
use std::process::Command;

use common::mail::{Kind, mimecheck};
use common::{Site, expect_code, python, stderr, stdout};

const MAIL: &str = "
[mail]
from = \"The Test Ledger <ledger@news.example.org>\"
reply_to = \"letters@news.example.org\"
";

fn site(extra: &str) -> Site {
    let site = Site::new();
    site.write("config.toml", &format!("{}{MAIL}{extra}", common::CONFIG));
    site
}

/// The digest must pass mimecheck as a list message; returns its report.
fn assert_mimecheck(eml: &Path) -> String {
    mimecheck(&[eml.to_path_buf()], Kind::Bulk)
}

#[test]
fn preview_writes_a_message_that_passes_mimecheck() {
    let site = site("");
    let out_dir = site.path("out");
    let o = site.gazette(&["issues", "preview", "2026-winter", "--out", "out"]);
    expect_code(&o, 0);
    let eml = out_dir.join("2026-winter.eml");
    for ext in ["eml", "html", "txt"] {
        let p = out_dir.join(format!("2026-winter.{ext}"));
        assert!(p.is_file(), "{} missing", p.display());
        let shown = format!("out/2026-winter.{ext}");
        assert!(stdout(&o).contains(&shown), "{}", stdout(&o));
    }
    let report = assert_mimecheck(&eml);
    assert!(
        report.contains(": ok multipart/alternative [text/plain, text/html]"),
        "{report}"
    );

    let raw = std::fs::read(&eml).unwrap();
    assert!(raw.is_ascii());
    let head = String::from_utf8_lossy(&raw)
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ");
    assert!(
        head.contains("\r\nTo: \"Preview Reader\" <preview@example.org>"),
        "{head}"
    );
    assert!(
        head.contains("\r\nSubject: Winter 2026 | The Test Ledger"),
        "{head}"
    );
    assert!(head.contains("List-Unsubscribe: <https://news.example.org/ledger/unsubscribe/preview-token>, <mailto:ledger+unsubscribe@news.example.org?subject=unsubscribe%20preview-token>"), "{head}");
    assert!(head.contains("Message-ID: <2026-winter."), "{head}");

    let html = site.read("out/2026-winter.html");
    assert!(
        html.contains("Rents &gt; wages &amp; “temporary” &lt; permanent"),
        "{html}"
    );
    assert!(html.contains("Dear Preview Reader,"));
    assert!(html.contains("href=\"#rents\""));
    assert!(html.contains("https://news.example.org/ledger/issues/2026-winter#harbour-cranes"));
    for bad in ["<script", "onerror", "javascript:", "<style"] {
        assert!(!html.contains(bad), "{bad} in the HTML part");
    }
    assert!(
        html.contains("max-width: 100%"),
        "images are not constrained"
    );

    let text = site.read("out/2026-winter.txt");
    assert!(
        text.contains("Zoë Álvarez and Dariusz Łukasiewicz"),
        "{text}"
    );
    assert!(text.contains("https://news.example.org/ledger/unsubscribe/preview-token"));
    assert!(text.contains("https://news.example.org/ledger/feeds/atom.xml"));
    assert!(!text.contains("<script>"), "{text}");
    for line in text.lines() {
        assert!(
            line.chars().count() <= 78 || line.contains("https://"),
            "long line: {line}"
        );
    }
}

#[test]
fn preview_defaults_to_preview_beside_the_config() {
    let site = site("");
    let o = site.gazette(&["issues", "preview", "2026-autumn"]);
    expect_code(&o, 0);
    assert!(
        site.path("preview/2026-autumn.eml").is_file(),
        "{}",
        stdout(&o)
    );
    assert_mimecheck(&site.path("preview/2026-autumn.eml"));
}

#[test]
fn an_http_base_url_still_passes_mimecheck() {
    let site = Site::new();
    let config =
        common::CONFIG.replace("https://news.example.org/ledger/", "http://127.0.0.1:8080/");
    site.write("config.toml", &format!("{config}{MAIL}"));
    let o = site.gazette(&["issues", "preview", "2026-winter", "--out", "out"]);
    expect_code(&o, 0);
    let eml = site.path("out/2026-winter.eml");
    assert_mimecheck(&eml);
    let raw = site.read("out/2026-winter.eml");
    assert!(raw.contains("<http://127.0.0.1:8080/unsubscribe/preview-token>"));
    assert!(
        !raw.contains("List-Unsubscribe-Post"),
        "one-click without https"
    );
}

#[test]
fn preview_without_mail_from_says_what_to_set() {
    let site = Site::new();
    let o = site.gazette(&["issues", "preview", "2026-winter"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("mail.from"), "{}", stderr(&o));

    let site = self::site("");
    let o = site.gazette(&["issues", "preview", "no-such-issue"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("no-such-issue"), "{}", stderr(&o));
}

#[test]
fn check_reports_a_broken_template_with_file_and_line() {
    let site = site("");
    let o = site.gazette(&["check"]);
    expect_code(&o, 0);
    site.write(
        "templates/digest.txt",
        "{% extends \"layout.txt\" %}\n{% block body %}\n{{ issue.title | nosuchfilter }}\n{% endblock %}\n",
    );
    let o = site.gazette(&["check"]);
    expect_code(&o, 1);
    let want = format!("{}:3:", site.path("templates/digest.txt").display());
    assert!(stdout(&o).contains(&want), "{}", stdout(&o));
    site.write("templates/digest.txt", "{% if %}\n");
    let o = site.gazette(&["check"]);
    expect_code(&o, 1);
    let want = format!(
        "{}:1: syntax error",
        site.path("templates/digest.txt").display()
    );
    assert!(stdout(&o).contains(&want), "{}", stdout(&o));
    // A bad subject template too.
    let site = self::site("subject = \"{{ issue.title\"\n");
    let o = site.gazette(&["check"]);
    expect_code(&o, 1);
    assert!(stdout(&o).contains("mail.subject in"), "{}", stdout(&o));
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed for the DKIM tests (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// Sign with a fresh key (made now, never committed) and verify with dkimpy;
/// then change a signed header and see the verification fail.
fn dkim_round_trip(genpkey: &[&str], algorithm: &str) {
    let site = site("\n[mail.dkim]\nselector = \"gz2026\"\nkey_file = \"keys/dkim.pem\"\n");
    std::fs::create_dir_all(site.path("keys")).unwrap();
    let key = site.path("keys/dkim.pem");
    let public = site.path("keys/dkim.pub.pem");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend(["-out", key.to_str().unwrap()]);
    openssl(&args);
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);

    let o = site.gazette(&["issues", "preview", "2026-winter", "--out", "out"]);
    expect_code(&o, 0);
    let eml = site.path("out/2026-winter.eml");
    assert_mimecheck(&eml);
    let verifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    let verify = |eml: &Path| {
        Command::new(python())
            .arg(&verifier)
            .arg(eml)
            .arg(&public)
            .args(["gz2026", "news.example.org"])
            .output()
            .expect("run dkim_verify.py")
    };
    let o = verify(&eml);
    assert!(
        o.status.success() && stdout(&o).contains(&format!("dkim pass ({algorithm})")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );

    let raw = std::fs::read_to_string(&eml).unwrap();
    let tampered = raw.replace("unsubscribe%20preview-token", "unsubscribe%20someone-else");
    assert_ne!(raw, tampered);
    let bad = site.path("out/tampered.eml");
    std::fs::write(&bad, tampered).unwrap();
    let o = verify(&bad);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn dkim_rsa_signature_verifies_with_dkimpy() {
    dkim_round_trip(
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "rsa",
    );
}

#[test]
fn dkim_ed25519_signature_verifies_with_dkimpy() {
    dkim_round_trip(&["-algorithm", "ed25519"], "ed25519");
}
