//! RFC 3463 enhanced status codes and SMTP reply codes, read out of the
//! free text where mail servers put them.
//!
//! Servers write the code in many shapes: a bare `5.1.1` in a DSN's
//! `Status` field, `550 5.1.1 ...` or `550-5.1.1` in a reply, `#550 5.1.1`
//! in Exchange reports, `(#5.1.1)` in qmail's. What they share is that the
//! code stands as a token of its own: no digit or dot right before or after
//! it. That rule is what keeps IP addresses (`192.0.2.5.1`) and version
//! numbers out.

use std::fmt;
use std::str::FromStr;

/// An RFC 3463 enhanced status code: `class.subject.detail`, such as
/// `5.1.1` (bad destination mailbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent).
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A text that holds no enhanced status code where one was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an enhanced status code (class.subject.detail, such as 5.1.1)")]
pub struct NotAStatus;

impl FromStr for EnhancedStatus {
    type Err = NotAStatus;

    /// A code at the start of the text (`5.1.1`, `5.0.0 (permanent
    /// failure)`): the form of a DSN's `Status` field, where words after
    /// the code are tolerated but words before it are not.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim_start();
        code_at(s.as_bytes(), 0)
            .map(|(status, _)| status)
            .ok_or(NotAStatus)
    }
}

impl EnhancedStatus {
    /// The first enhanced status code standing alone in a server's text:
    /// `550 5.1.1 <a@example.net>: unknown`, `550-5.1.1 The email account`,
    /// `#550 5.1.1 RESOLVER.ADR.RecipNotFound`, `(#5.1.1)`.
    pub fn find(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        (0..bytes.len())
            .filter(|&i| starts_token(bytes, i))
            .find_map(|i| code_at(bytes, i).map(|(status, _)| status))
    }

    /// The class of a bare SMTP reply code (`550 No such user` -> 5.0.0),
    /// for texts that carry no enhanced code: RFC 3463 makes `X.0.0` the
    /// "other or undefined" status of each class.
    pub fn from_reply_code(text: &str) -> Option<Self> {
        reply_code(text).map(|code| EnhancedStatus {
            // `reply_code` only returns codes from 200 to 599.
            class: (code / 100) as u8,
            subject: 0,
            detail: 0,
        })
    }

    /// What a server's text says: its enhanced code, else the class of its
    /// SMTP reply code.
    pub fn in_text(text: &str) -> Option<Self> {
        Self::find(text).or_else(|| Self::from_reply_code(text))
    }
}

/// The first SMTP reply code (2xx, 4xx or 5xx) standing alone in the text,
/// followed by a space, `-`, `:` or the end of the text.
pub(super) fn reply_code(text: &str) -> Option<u16> {
    let b = text.as_bytes();
    (0..b.len()).filter(|&i| starts_token(b, i)).find_map(|i| {
        let digits = b.get(i..i + 3)?;
        if !matches!(digits[0], b'2' | b'4' | b'5')
            || !(b'0'..=b'5').contains(&digits[1])
            || !digits[2].is_ascii_digit()
        {
            return None;
        }
        match b.get(i + 3) {
            None | Some(b' ' | b'-' | b':' | b'\t' | b'\r' | b'\n' | b'\'' | b'>' | b')') => {}
            _ => return None,
        }
        let value = digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        Some(value)
    })
}

/// A code can start at `i` only if nothing that belongs to a number or word
/// comes right before it.
fn starts_token(b: &[u8], i: usize) -> bool {
    i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.' || b[i - 1] == b'_')
}

/// `class.subject.detail` at `i`, with 1 to 3 digits for subject and detail
/// (RFC 3463), and no further digits or `.digit` after it. Returns the code
/// and the index after it.
fn code_at(b: &[u8], i: usize) -> Option<(EnhancedStatus, usize)> {
    let class = *b.get(i)?;
    if !matches!(class, b'2' | b'4' | b'5') || b.get(i + 1) != Some(&b'.') {
        return None;
    }
    let (subject, j) = number(b, i + 2)?;
    if b.get(j) != Some(&b'.') {
        return None;
    }
    let (detail, end) = number(b, j + 1)?;
    let dotted_on = b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit);
    if dotted_on {
        return None;
    }
    let status = EnhancedStatus {
        class: class - b'0',
        subject,
        detail,
    };
    Some((status, end))
}

/// One to three digits at `i`, and not a fourth.
fn number(b: &[u8], i: usize) -> Option<(u16, usize)> {
    let len = b[i.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if !(1..=3).contains(&len) {
        return None;
    }
    let value = b[i..i + len]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    Some((value, i + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(class: u8, subject: u16, detail: u16) -> EnhancedStatus {
        EnhancedStatus {
            class,
            subject,
            detail,
        }
    }

    #[test]
    fn bare_codes_parse_and_display_the_same() {
        for text in ["5.1.1", "4.4.7", "2.0.0", "5.7.26", "5.123.999"] {
            let status: EnhancedStatus = text.parse().unwrap();
            assert_eq!(status.to_string(), text);
        }
        assert_eq!(
            "5.0.0 (permanent failure)".parse::<EnhancedStatus>(),
            Ok(st(5, 0, 0))
        );
        assert_eq!(" 4.2.2".parse::<EnhancedStatus>(), Ok(st(4, 2, 2)));
    }

    #[test]
    fn malformed_codes_are_refused() {
        for text in [
            "", "5", "5.", "5.1", "5.1.", "3.1.1", "6.1.1", "5.1234.1", "5.1.1234", "5.1.1.1",
            "x5.1.1", "5,1,1", "550",
        ] {
            assert_eq!(text.parse::<EnhancedStatus>(), Err(NotAStatus), "{text:?}");
        }
    }

    #[test]
    fn codes_are_found_in_server_replies() {
        let cases = [
            (
                "550 5.1.1 <a@example.net>: Recipient address rejected",
                st(5, 1, 1),
            ),
            (
                "550-5.1.1 The email account that you tried to reach",
                st(5, 1, 1),
            ),
            (
                "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##",
                st(5, 1, 1),
            ),
            ("Sorry, no mailbox here by that name. (#5.1.1)", st(5, 1, 1)),
            ("host [192.0.2.25]: 452 4.2.2 Mailbox full", st(4, 2, 2)),
            ("Remote Server returned '554 5.7.1 SPF fail'", st(5, 7, 1)),
        ];
        for (text, want) in cases {
            assert_eq!(EnhancedStatus::find(text), Some(want), "{text:?}");
        }
    }

    #[test]
    fn addresses_and_versions_are_not_codes() {
        for text in [
            "connect to 10.5.1.2 failed",
            "host 5.1.1.1 said",
            "Postfix 3.5.1 here",
            "id 45.2.2x",
            "abc5.1.1",
        ] {
            assert_eq!(EnhancedStatus::find(text), None, "{text:?}");
        }
    }

    #[test]
    fn reply_codes_give_the_class() {
        assert_eq!(
            EnhancedStatus::from_reply_code("host said: 550 No such user"),
            Some(st(5, 0, 0))
        );
        assert_eq!(
            EnhancedStatus::from_reply_code("554: delivery error: dd This user doesn't have"),
            Some(st(5, 0, 0))
        );
        assert_eq!(
            EnhancedStatus::from_reply_code("451-Try again later"),
            Some(st(4, 0, 0))
        );
        for text in [
            "in 2026 we",
            "port 25",
            "192.0.2.250 said",
            "code 599x",
            "size 5500",
        ] {
            assert_eq!(EnhancedStatus::from_reply_code(text), None, "{text:?}");
        }
        assert_eq!(
            EnhancedStatus::in_text("550 5.2.2 full"),
            Some(st(5, 2, 2)),
            "the enhanced code wins over the reply code"
        );
    }
}
