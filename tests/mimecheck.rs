//! The checker the mail tests rely on (`tests/support/mimecheck.py`) is held
//! to hand-written messages: good ones pass, and each rule fails a message
//! that breaks it, so a passing mail test means something.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::mail::{Kind, mimecheck};
use common::{python, stderr, stdout};

const PLAIN: &str = "Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 on the quay.\r\n";
const HTML: &str = "Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>Caf=C3=A9 on the quay.</p>\r\n";

const HEAD: &str = "From: The Test Ledger <ledger@example.org>\r\n\
To: Ann Lee <ann@example.org>\r\n\
Subject: Winter 2026\r\n\
Date: Fri, 20 Nov 2026 09:00:00 +0000\r\n\
Message-ID: <2026-winter.4f2a@example.org>\r\n\
MIME-Version: 1.0\r\n\
List-Unsubscribe: <https://example.org/unsubscribe/t0k>,\r\n \
<mailto:ledger+unsubscribe@example.org?subject=unsubscribe%20t0k>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";

/// A digest as a mailbox provider wants it: text, then HTML.
fn digest() -> String {
    format!(
        "{HEAD}Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\n{PLAIN}--b1\r\n{HTML}--b1--\r\n"
    )
}

/// The same for a subscriber who asked for plain text: one text/plain part.
fn plain_digest() -> String {
    format!("{HEAD}{PLAIN}")
}

struct Checked {
    ok: bool,
    report: String,
}

fn check(message: &[u8], kind: Kind) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, message).unwrap();
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/support/mimecheck.py"]
        .iter()
        .collect();
    // Looked up once: each look-up starts Python to check the test packages.
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    let mut command = Command::new(PYTHON.get_or_init(python));
    command.arg(script);
    if kind == Kind::Bulk {
        command.arg("--bulk");
    }
    let out = command.arg(&path).output().expect("run mimecheck.py");
    let report = format!("{}{}", stdout(&out), stderr(&out));
    // Exit 0 exactly when nothing was found; 1 (not a crash) otherwise.
    let ok = match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("mimecheck.py exited {other:?}:\n{report}"),
    };
    assert_eq!(ok, !report.contains("ERROR"), "{report}");
    Checked { ok, report }
}

/// `message` must fail with an `ERROR rule:` line.
#[track_caller]
fn fails(rule: &str, message: impl AsRef<[u8]>, kind: Kind) {
    let c = check(message.as_ref(), kind);
    assert!(
        !c.ok && c.report.contains(&format!("ERROR {rule}:")),
        "expected {rule}:\n{}\n--- message\n{}",
        c.report,
        String::from_utf8_lossy(message.as_ref())
    );
}

#[test]
fn good_messages_pass() {
    let c = check(digest().as_bytes(), Kind::Bulk);
    assert!(c.ok, "{}", c.report);
    assert!(
        c.report
            .contains(": ok multipart/alternative [text/plain, text/html]"),
        "{}",
        c.report
    );
    let c = check(plain_digest().as_bytes(), Kind::Bulk);
    assert!(
        c.ok && c.report.contains(": ok text/plain [text/plain]"),
        "{}",
        c.report
    );
    // An http:// test site: no one-click header, the link and the mailto remain.
    let http = digest()
        .replace("https://example.org", "http://127.0.0.1:8080")
        .replace("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", "");
    assert!(check(http.as_bytes(), Kind::Bulk).ok);
    // A confirmation to one person needs no list headers.
    let personal = digest()
        .replace(
            "List-Unsubscribe: <https://example.org/unsubscribe/t0k>,\r\n \
             <mailto:ledger+unsubscribe@example.org?subject=unsubscribe%20t0k>\r\n",
            "",
        )
        .replace("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", "");
    assert!(check(personal.as_bytes(), Kind::Personal).ok);
    // A file saved with LF line ends throughout is fine (the SMTP wire adds CR).
    assert!(check(digest().replace("\r\n", "\n").as_bytes(), Kind::Bulk).ok);
    // The harness helper agrees, and says the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.eml");
    std::fs::write(&path, digest()).unwrap();
    assert!(mimecheck(&[path], Kind::Bulk).contains(": ok "));
}

#[test]
fn missing_and_duplicated_headers_fail() {
    for name in [
        "From",
        "To",
        "Date",
        "Message-ID",
        "Subject",
        "MIME-Version",
    ] {
        let line = digest()
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap()
            .to_string();
        fails(
            "missing-header",
            digest().replacen(&format!("{line}\r\n"), "", 1),
            Kind::Bulk,
        );
        if name != "From" {
            fails(
                "duplicate-header",
                digest().replacen(&line, &format!("{line}\r\n{line}"), 1),
                Kind::Bulk,
            );
        }
    }
    fails(
        "duplicate-header",
        digest().replacen("From: The", "From: Someone <x@example.org>\r\nFrom: The", 1),
        Kind::Bulk,
    );
}

#[test]
fn malformed_headers_fail() {
    let swap = |from: &str, to: &str| digest().replacen(from, to, 1);
    fails(
        "bad-header",
        swap("Date: Fri, 20 Nov 2026 09:00:00 +0000", "Date: next Friday"),
        Kind::Bulk,
    );
    fails(
        "bad-header",
        swap("<2026-winter.4f2a@example.org>", "2026-winter.4f2a"),
        Kind::Bulk,
    );
    fails(
        "bad-header",
        swap("MIME-Version: 1.0", "MIME-Version: 2.0"),
        Kind::Bulk,
    );
    fails(
        "bad-header",
        swap(
            "From: The Test Ledger <ledger@example.org>",
            "From: a@example.org, b@example.org",
        ),
        Kind::Bulk,
    );
    fails(
        "non-ascii-header",
        swap("Subject: Winter 2026", "Subject: Hiver à Gdańsk"),
        Kind::Bulk,
    );
    fails(
        "parse-defect",
        swap(
            "To: Ann Lee <ann@example.org>",
            "To: Ann Lee <ann@example.org",
        ),
        Kind::Bulk,
    );
}

#[test]
fn line_limits_and_line_ends_fail() {
    let long = format!("Caf=C3=A9 {}\r\n", "x".repeat(1000));
    fails(
        "line-too-long",
        digest().replacen("Caf=C3=A9 on the quay.\r\n", &long, 1),
        Kind::Bulk,
    );
    fails(
        "line-endings",
        digest().replacen("Subject: Winter 2026\r\n", "Subject: Winter 2026\n", 1),
        Kind::Bulk,
    );
    fails(
        "line-endings",
        digest().replacen("Subject: Winter 2026\r\n", "Subject: Winter\r2026\r\n", 1),
        Kind::Bulk,
    );
}

#[test]
fn wrong_structure_fails() {
    // HTML first: clients show the last part they can, so text would win.
    let html_first = format!(
        "{HEAD}Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\n{HTML}--b1\r\n{PLAIN}--b1--\r\n"
    );
    fails("structure", html_first, Kind::Bulk);
    fails("structure", format!("{HEAD}{HTML}"), Kind::Bulk);
    fails(
        "structure",
        digest().replacen("multipart/alternative", "multipart/mixed", 1),
        Kind::Bulk,
    );
    let text_only = format!(
        "{HEAD}Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\n{PLAIN}--b1--\r\n"
    );
    fails("structure", text_only, Kind::Bulk);
    // No closing boundary: the parser records the defect.
    fails(
        "parse-defect",
        digest().replacen("--b1--\r\n", "", 1),
        Kind::Bulk,
    );
}

#[test]
fn charsets_that_are_missing_unknown_or_wrong_fail() {
    fails(
        "charset",
        digest().replacen("text/plain; charset=utf-8", "text/plain", 1),
        Kind::Bulk,
    );
    fails(
        "charset",
        digest().replacen(
            "text/html; charset=utf-8",
            "text/html; charset=x-no-such",
            1,
        ),
        Kind::Bulk,
    );
    // Declared 8bit UTF-8, but the bytes are Latin-1.
    let mut latin1 = digest()
        .replacen(
            "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9",
            "Content-Transfer-Encoding: 8bit\r\n\r\nCaf~",
            1,
        )
        .into_bytes();
    let at = latin1.iter().position(|&b| b == b'~').unwrap();
    latin1[at] = 0xe9;
    fails("charset", &latin1, Kind::Bulk);
    // Raw UTF-8 in a part declared quoted-printable (7-bit).
    fails(
        "charset",
        digest().replacen("Caf=C3=A9 on the quay.", "Café on the quay.", 1),
        Kind::Bulk,
    );
    fails(
        "charset",
        digest().replacen(
            "Content-Transfer-Encoding: quoted-printable",
            "Content-Transfer-Encoding: uuencode",
            1,
        ),
        Kind::Bulk,
    );
}

#[test]
fn unsubscribe_headers_that_break_rfc_2369_or_8058_fail() {
    let lu = "List-Unsubscribe: <https://example.org/unsubscribe/t0k>,\r\n \
              <mailto:ledger+unsubscribe@example.org?subject=unsubscribe%20t0k>\r\n";
    let post = "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
    let without = |h: &str| digest().replacen(h, "", 1);
    fails(
        "list-unsubscribe",
        without(lu).replacen(post, "", 1),
        Kind::Bulk,
    );
    fails(
        "list-unsubscribe",
        digest().replacen(
            "<mailto:ledger+unsubscribe@example.org?subject=unsubscribe%20t0k>",
            "<https://example.org/u2>",
            1,
        ),
        Kind::Bulk,
    );
    fails(
        "list-unsubscribe",
        digest().replacen(
            "<https://example.org/unsubscribe/t0k>",
            "<mailto:x@example.org>",
            1,
        ),
        Kind::Bulk,
    );
    // Not in angle brackets: checked on any message that carries the header.
    fails(
        "list-unsubscribe",
        digest().replacen(
            "<https://example.org/unsubscribe/t0k>",
            "https://example.org/unsubscribe/t0k",
            1,
        ),
        Kind::Personal,
    );
    fails("one-click", without(post), Kind::Bulk);
    fails(
        "one-click",
        digest().replacen("List-Unsubscribe=One-Click", "One-Click=yes", 1),
        Kind::Personal,
    );
    fails("one-click", without(lu), Kind::Personal);
    fails(
        "one-click",
        digest().replacen("https://example.org", "http://example.org", 1),
        Kind::Personal,
    );
}
