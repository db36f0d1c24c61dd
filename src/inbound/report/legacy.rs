//! Bounces without a `message/delivery-status` part: the plain-text
//! reports of qmail, older Exim, Yahoo, older Exchange, Sendmail without
//! its DSN part, Gmail's text, and,
//! last, any message from a mailer daemon whose subject says it is a
//! bounce.
//!
//! Each format is recognised by a sentence its MTA always writes (people
//! do not write "Hi. This is the qmail-send program"), then read as
//! records: a line naming one address, followed by the lines that explain
//! it, up to a blank line. Only the part before the quoted copy of the
//! original is read, so our own digest's text is never taken for a reason.

use super::fields::{self, Field};
use super::{Action, BounceRecipient, EnhancedStatus, MAX_DIAGNOSTIC, MAX_RECIPIENTS};

/// How one format marks itself, and what its records are.
struct Format {
    /// Sentences (lowercase) of which one must appear.
    markers: &'static [&'static str],
    /// Sentences (lowercase) that make it a delay notice, not a failure.
    delayed: &'static [&'static str],
    /// Where the records start: just after the first of these lines
    /// (lowercase, matched inside the line); the whole text if none is
    /// found.
    records_after: &'static [&'static str],
}

const QMAIL: Format = Format {
    markers: &["this is the qmail-send program"],
    delayed: &["this is a temporary error", "will continue trying"],
    records_after: &[],
};

const YAHOO: Format = Format {
    markers: &[
        "sorry, we were unable to deliver your message to the following address",
        "unable to deliver message to the following address",
    ],
    delayed: &[],
    records_after: &[],
};

const EXIM: Format = Format {
    markers: &["this message was created automatically by mail delivery software"],
    delayed: &["has not yet been delivered", "not yet been delivered to"],
    records_after: &[
        "failed:",
        "has not yet been delivered is:",
        "have not yet been delivered are:",
        "has not yet been delivered are:",
    ],
};

const EXCHANGE: Format = Format {
    markers: &[
        "delivery has failed to these recipients or groups",
        "delivery is delayed to these recipients or groups",
        "the following recipient(s) cannot be reached",
        "your message did not reach some or all of the intended recipients",
    ],
    delayed: &["delivery is delayed to these recipients or groups"],
    // The part for administrators names each address with the server's
    // reply; the part for people above it only paraphrases.
    records_after: &[
        "diagnostic information for administrators",
        "the following recipient(s) cannot be reached",
        "delivery has failed to these recipients or groups",
        "delivery is delayed to these recipients or groups",
    ],
};

/// Sendmail without DSN support (or with its DSN part lost): the
/// addresses under a dashed heading, each with "(reason: ...)".
const SENDMAIL: Format = Format {
    markers: &[
        "----- the following addresses had permanent fatal errors -----",
        "----- the following addresses had transient non-fatal errors -----",
    ],
    delayed: &["the following addresses had transient non-fatal errors"],
    records_after: &[
        "the following addresses had permanent fatal errors",
        "the following addresses had transient non-fatal errors",
    ],
};

const FORMATS: [&Format; 5] = [&QMAIL, &YAHOO, &EXIM, &EXCHANGE, &SENDMAIL];

/// Lines (lowercase, matched at the start of the trimmed line) where an
/// MTA starts quoting the original: nothing after them is the MTA's.
const COPY_MARKERS: [&str; 11] = [
    "----- original message follows -----",
    "----- message header follows -----",
    "--- below this line is a copy of the message",
    "------ this is a copy of the message",
    "------ this is a copy of your message",
    "original message headers",
    "----- original message -----",
    "-----original message-----",
    "--- the header of the original message",
    "content-type: message/rfc822",
    "received: from",
];

/// The recipients of a non-standard bounce, or `None` if the message is
/// not recognisably one.
pub(super) fn bounce(
    header: &[Field],
    subject: Option<&str>,
    body: &str,
) -> Option<Vec<BounceRecipient>> {
    let text = before_copy(body);
    let lower = text.to_lowercase();
    for format in FORMATS {
        if format.markers.iter().any(|m| lower.contains(m)) {
            let action = if format.delayed.iter().any(|d| lower.contains(d)) {
                Action::Delayed
            } else {
                Action::Failed
            };
            let region = after_any(text, format.records_after);
            let mut found = records(region, action);
            if found.is_empty() {
                found = records(text, action);
            }
            return Some(or_unnamed(found, header, text, action));
        }
    }
    if let Some(found) = gmail(text, &lower) {
        return Some(found);
    }
    if from_mailer_daemon(header) && subject.is_some_and(is_bounce_subject) {
        let delayed = subject.is_some_and(|s| {
            let s = s.to_lowercase();
            s.contains("delay") || s.contains("warning")
        }) || lower.contains("not yet been delivered")
            || lower.contains("will retry")
            || lower.contains("will continue to try");
        let action = if delayed {
            Action::Delayed
        } else {
            Action::Failed
        };
        return Some(or_unnamed(Vec::new(), header, text, action));
    }
    None
}

/// A bounce that is one for sure but names no address in a form we read:
/// the addresses of `X-Failed-Recipients` (Exim, Gmail), else one entry
/// without a recipient (the caller knows the delivery from the address the
/// bounce came to); each with the first line of the text that holds a
/// code.
fn or_unnamed(
    found: Vec<BounceRecipient>,
    header: &[Field],
    text: &str,
    action: Action,
) -> Vec<BounceRecipient> {
    if !found.is_empty() {
        return found;
    }
    let line = text
        .lines()
        .find(|l| EnhancedStatus::in_text(l).is_some())
        .map(|l| fields::clean_line(l, MAX_DIAGNOSTIC));
    let entry = |recipient: Option<String>| BounceRecipient {
        recipient,
        action,
        status: line.as_deref().and_then(EnhancedStatus::in_text),
        diagnostic: line.clone(),
    };
    let named: Vec<BounceRecipient> = fields::get(header, "x-failed-recipients")
        .unwrap_or("")
        .split(',')
        .map(|a| a.trim().trim_start_matches('<').trim_end_matches('>'))
        .filter(|a| is_address(a))
        .take(MAX_RECIPIENTS)
        .map(|a| entry(Some(a.to_owned())))
        .collect();
    if named.is_empty() {
        vec![entry(None)]
    } else {
        named
    }
}

/// The text up to the first line where the original is quoted.
fn before_copy(body: &str) -> &str {
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim().to_lowercase();
        if COPY_MARKERS.iter().any(|m| trimmed.starts_with(m)) {
            return &body[..offset];
        }
        offset += line.len();
    }
    body
}

/// The text after the line that holds the first of `starts` found
/// (earlier entries win), else all of it.
fn after_any<'a>(text: &'a str, starts: &[&str]) -> &'a str {
    for start in starts {
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            offset += line.len();
            if line.to_lowercase().contains(start) {
                return &text[offset..];
            }
        }
    }
    text
}

/// Records: a line that names one address (`<a@example.net>:`,
/// `a@example.net`, `a@example.net on 5/3/2026 ...`), then its reason
/// lines up to a blank line or the next address line.
fn records(text: &str, action: Action) -> Vec<BounceRecipient> {
    let mut out: Vec<BounceRecipient> = Vec::new();
    let mut open: Option<(String, Vec<&str>)> = None;
    for line in text.lines() {
        if let Some(address) = address_line(line) {
            close(open.take(), action, &mut out);
            open = Some((address, Vec::new()));
        } else if line.trim().is_empty() {
            close(open.take(), action, &mut out);
        } else if let Some((_, reason)) = open.as_mut()
            && reason.len() < 64
        {
            reason.push(line.trim());
        }
    }
    close(open, action, &mut out);
    out
}

/// Ends one record. The same address twice (Exchange names it for people,
/// then for administrators): the one with a reason wins, the later of two.
fn close(open: Option<(String, Vec<&str>)>, action: Action, out: &mut Vec<BounceRecipient>) {
    let Some((address, reason)) = open else {
        return;
    };
    let diagnostic = fields::clean_line(&reason.join(" "), MAX_DIAGNOSTIC);
    let entry = BounceRecipient {
        recipient: Some(address),
        action,
        status: EnhancedStatus::in_text(&diagnostic),
        diagnostic: (!diagnostic.is_empty()).then_some(diagnostic),
    };
    if let Some(earlier) = out.iter_mut().find(|r| r.recipient == entry.recipient) {
        if entry.diagnostic.is_some() {
            *earlier = entry;
        }
    } else if out.len() < MAX_RECIPIENTS {
        out.push(entry);
    }
}

/// The address a line names on its own, if it does.
fn address_line(line: &str) -> Option<String> {
    let line = line.trim();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let rest: Vec<&str> = words.collect();
    // Exchange 2003: "a@example.net on 5/3/2026 9:15 AM".
    let trailer_ok = rest.is_empty() || rest[0].eq_ignore_ascii_case("on");
    if !trailer_ok {
        return None;
    }
    let token = first.strip_suffix(':').unwrap_or(first);
    let token = token
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(token);
    is_address(token).then(|| token.to_owned())
}

/// `local@domain`, one `@`, no brackets, quotes or colons, a dot in the
/// domain: enough to tell an address line from a sentence.
fn is_address(token: &str) -> bool {
    let Some((local, domain)) = token.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && token.len() <= 320
        && !token.contains(|c: char| {
            matches!(c, '<' | '>' | ':' | '"' | '(' | ')' | ',' | ';' | '[' | ']')
                || c.is_whitespace()
                || c.is_control()
        })
        && !domain.contains('@')
}

/// Gmail's text (when it comes without its DSN part): "Address not
/// found", "Your message wasn't delivered to X because ...", "The response
/// from the remote server was:" and the reply on the next lines.
fn gmail(text: &str, lower: &str) -> Option<Vec<BounceRecipient>> {
    const FAILED: [&str; 3] = [
        "** address not found **",
        "** message not delivered **",
        "delivery to the following recipient failed permanently",
    ];
    const DELAYED: [&str; 3] = [
        "** delivery incomplete **",
        "delivery to the following recipient has been delayed",
        "there was a temporary problem delivering your message",
    ];
    let action = if FAILED.iter().any(|m| lower.contains(m)) {
        Action::Failed
    } else if DELAYED.iter().any(|m| lower.contains(m)) {
        Action::Delayed
    } else {
        return None;
    };
    let recipient = gmail_recipient(text);
    let diagnostic = paragraph_after(
        text,
        &[
            "the response from the remote server was:",
            "the response was:",
            "the error that the other server returned was:",
        ],
    );
    Some(vec![BounceRecipient {
        recipient,
        action,
        status: diagnostic.as_deref().and_then(EnhancedStatus::in_text),
        diagnostic,
    }])
}

fn gmail_recipient(text: &str) -> Option<String> {
    // "Your message wasn't delivered to a@example.net because ..." and
    // "... delivering your message to a@example.net. Gmail will retry".
    for phrase in [
        "wasn't delivered to ",
        "wasn\u{2019}t delivered to ",
        "delivering your message to ",
    ] {
        if let Some(i) = text.find(phrase) {
            let word = text[i + phrase.len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            let word = word.trim_end_matches(['.', ',']);
            if is_address(word) {
                return Some(word.to_owned());
            }
        }
    }
    // "Delivery to the following recipient failed permanently:" then the
    // address alone on a later line.
    let after = after_any(
        text,
        &[
            "delivery to the following recipient failed permanently",
            "delivery to the following recipient has been delayed",
        ],
    );
    after.lines().take(4).find_map(address_line)
}

/// The lines after the first line that holds one of `starts` (any case),
/// up to a blank line once some text was read, joined and cleaned.
fn paragraph_after(text: &str, starts: &[&str]) -> Option<String> {
    let mut lines = text.lines();
    lines.find(|l| {
        let l = l.to_lowercase();
        starts.iter().any(|s| l.contains(s))
    })?;
    let mut taken: Vec<&str> = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            if taken.is_empty() {
                continue;
            }
            break;
        }
        if taken.len() >= 32 {
            break;
        }
        taken.push(line);
    }
    let joined = fields::clean_line(&taken.join(" "), MAX_DIAGNOSTIC);
    (!joined.is_empty()).then_some(joined)
}

/// From a mailer daemon or postmaster, or with the null return path.
fn from_mailer_daemon(header: &[Field]) -> bool {
    let from = fields::get(header, "from")
        .unwrap_or("")
        .to_ascii_lowercase();
    let null_path = fields::get(header, "return-path").is_some_and(|v| v.trim() == "<>");
    null_path
        || from.contains("mailer-daemon")
        || from.contains("postmaster@")
        || from.contains("<postmaster")
}

fn is_bounce_subject(subject: &str) -> bool {
    const WORDS: [&str; 17] = [
        "undeliver",
        "unzustellbar",
        "non remis",
        "non distribu",
        "onbestelbaar",
        "non recapitabile",
        "no se pudo entregar",
        "delivery status notification",
        "returned mail",
        "delivery failure",
        "failure notice",
        "mail delivery failed",
        "delivery failed",
        "could not be delivered",
        "not delivered",
        "non-delivery",
        "nondeliver",
    ];
    let lower = subject.to_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}
