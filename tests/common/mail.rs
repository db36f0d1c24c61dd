//! Reading the mail gazette sent (outbox files or what the test SMTP
//! server saved) and the links in it, for the tests that follow a reader
//! from the sign-up form to their inbox and back (tests/pages.rs,
//! tests/browser.rs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders};

use super::smtp::SmtpServer;

/// `publication.base_url` of [`super::CONFIG`], without the trailing '/'.
pub const BASE: &str = "https://news.example.org/ledger";

/// One message: the raw bytes, the decoded parts and a few headers.
pub struct Mail {
    pub raw: Vec<u8>,
    pub subject: String,
    /// The first `To` address.
    pub to: Option<String>,
    /// The first text part (the HTML converted when there is none).
    pub text: String,
    pub html: Option<String>,
    /// `type/subtype` of the whole message.
    pub content_type: String,
    pub parts: usize,
}

/// Parse the message in `path`; panics when it cannot be read or parsed.
pub fn read_mail(path: &Path) -> Mail {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(raw).unwrap_or_else(|| panic!("{} does not parse", path.display()))
}

fn parse(raw: Vec<u8>) -> Option<Mail> {
    let m = MessageParser::default().parse(&raw)?;
    let ct = m.content_type()?;
    let content_type = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""));
    let html = m
        .parts
        .iter()
        .find(|p| p.is_content_type("text", "html"))
        .and_then(|p| p.text_contents())
        .map(str::to_string);
    let text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let to = m
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    let subject = m.subject().unwrap_or("").to_string();
    let parts = m.parts.len();
    Some(Mail {
        raw,
        subject,
        to,
        text,
        html,
        content_type,
        parts,
    })
}

impl Mail {
    /// The header block as written, folded lines joined.
    pub fn head(&self) -> String {
        String::from_utf8_lossy(&self.raw)
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .replace("\r\n ", " ")
    }

    /// One header's value as written (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head().lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// The messages the test SMTP server saved for `to`, oldest first.
pub fn mail_to(smtp: &SmtpServer, to: &str) -> Vec<Mail> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(smtp.messages_dir())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // Saved as 1.eml, 2.eml, ... in the order they arrived.
    files.sort_by_key(|p| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    });
    // A file still being written does not parse yet: it is left for the
    // next look.
    files
        .iter()
        .filter_map(|p| parse(std::fs::read(p).ok()?))
        .filter(|m| m.to.as_deref() == Some(to))
        .collect()
}

/// Waits (at most 30 s) until `to` has at least `n` messages, and returns them.
pub fn wait_for_mail(smtp: &SmtpServer, to: &str, n: usize) -> Vec<Mail> {
    let start = Instant::now();
    loop {
        let got = mail_to(smtp, to);
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{to} got {} messages, expected {n}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most 30 s) for the message to `to` whose subject contains
/// `subject`; on failure, says which subjects did arrive.
pub fn wait_for_subject(smtp: &SmtpServer, to: &str, subject: &str) -> Mail {
    let start = Instant::now();
    loop {
        if let Some(m) = mail_to(smtp, to)
            .into_iter()
            .find(|m| m.subject.contains(subject))
        {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {subject:?} for {to}: {:?}",
            mail_to(smtp, to)
                .iter()
                .map(|m| m.subject.clone())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The token after `{BASE}/{kind}/` in `text`.
pub fn link_token(text: &str, kind: &str) -> Option<String> {
    let marker = format!("{BASE}/{kind}/");
    let at = text.find(&marker)? + marker.len();
    let token: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Some(token)
}

/// The path under `BASE` (`/{kind}/TOKEN`) of the first such link in
/// `text`; panics when there is none.
pub fn link_path(text: &str, kind: &str) -> String {
    let token =
        link_token(text, kind).unwrap_or_else(|| panic!("no {BASE}/{kind}/ link in:\n{text}"));
    format!("/{kind}/{token}")
}

/// What a message is, for `tests/support/mimecheck.py`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A digest to the list: the unsubscribe headers (RFC 2369, RFC 8058) are required.
    Bulk,
    /// A message to one person (a sign-up confirmation): checked only if present.
    Personal,
}

/// Holds each file to `tests/support/mimecheck.py` (Python's stdlib `email`
/// parser, independent of the crates gazette uses); panics with its report
/// on any problem. Returns the report.
#[track_caller]
pub fn mimecheck(files: &[PathBuf], kind: Kind) -> String {
    assert!(!files.is_empty(), "no message to check");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mimecheck.py");
    let mut report = String::new();
    // A few hundred paths at a time stay well under the argument limit.
    for chunk in files.chunks(400) {
        let mut command = std::process::Command::new(super::python());
        command.arg(&script);
        if kind == Kind::Bulk {
            command.arg("--bulk");
        }
        let out = command
            .args(chunk)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        let text = format!("{}{}", super::stdout(&out), super::stderr(&out));
        assert!(
            out.status.success() && !text.contains("ERROR"),
            "mimecheck:\n{text}"
        );
        report.push_str(&text);
    }
    report
}
