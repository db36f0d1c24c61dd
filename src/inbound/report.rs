//! What a returned message says, decided from its bytes alone: a bounce
//! (RFC 3464 DSN, or the text of an MTA that writes none), a complaint
//! (RFC 5965 ARF), an auto-reply (RFC 3834 and its non-standard kin), or
//! anything else.
//!
//! No database, no configuration and no knowledge of which delivery the
//! message is about: the caller matches [`Report::original_message_id`] or
//! the address the message came in on. Keeping this pure lets the listener
//! and `inbound import` share it and the fixtures pin it down.
//!
//! mail-parser reads the MIME tree, transfer encodings and charsets; the
//! report fields (`message/delivery-status`, `message/feedback-report`)
//! come out of it as opaque bytes, and [`fields`] reads them. Every input
//! gives a [`Report`]: garbage and truncated messages are [`ReportKind::Other`]
//! or whatever their readable part says, never an error or a panic.

mod fields;
mod legacy;
mod status;
#[cfg(test)]
mod tests;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use fields::Field;
pub use status::{EnhancedStatus, NotAStatus};

/// What a returned message says, decided from its content alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    /// Message-ID (with angle brackets, as in the header) of OUR original
    /// message quoted in the report: the `message/rfc822` or
    /// `text/rfc822-headers` part (also `message/global*`), else the
    /// `In-Reply-To` / `References` of the message; else a quoted
    /// `Message-ID:` line in a text body of a bounce or complaint.
    pub original_message_id: Option<String>,
    /// The message's own Subject, decoded (RFC 2047), control characters
    /// removed, for the mailto unsubscribe (`unsubscribe TOKEN`).
    pub subject: Option<String>,
}

/// The kinds of returned message, each with what the caller acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    /// RFC 3464 DSN (or a recognised non-standard bounce): one entry per
    /// per-recipient block that is failed or delayed (delivered, relayed
    /// and expanded ones are skipped, so a success notice is an empty list:
    /// nothing to act on).
    Bounce(Vec<BounceRecipient>),
    /// RFC 5965 ARF: `Feedback-Type` lowercased (`abuse`, `fraud`,
    /// `not-spam`, ...).
    Feedback { feedback_type: String },
    /// RFC 3834 auto-reply / out-of-office / vacation with no report part.
    AutoReply,
    /// Everything else (a human reply, spam, an `unsubscribe` mail).
    Other,
}

/// One recipient of a bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceRecipient {
    /// `Final-Recipient` (else `Original-Recipient`), the address only
    /// (`rfc822;` removed). A non-standard bounce may name none.
    pub recipient: Option<String>,
    pub action: Action,
    /// `Status`, else the enhanced code in the diagnostic, else the class
    /// of the SMTP reply code in it (`550` -> 5.0.0).
    pub status: Option<EnhancedStatus>,
    /// `Diagnostic-Code` without its type (`smtp; `), unfolded, control
    /// characters removed, at most 1000 characters. For a non-standard
    /// bounce, the MTA's text about this recipient.
    pub diagnostic: Option<String>,
}

/// The DSN actions worth acting on (the others are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
}

/// Whom a bounce is about, for the caller's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The address is gone: mark the subscriber bounced.
    Hard,
    /// Try again with the next issue; count it.
    Soft,
    /// The refusal is about our sending side (authentication, reputation,
    /// our message): record it, never hold it against the subscriber.
    Sender,
}

/// Longest diagnostic kept, in characters.
const MAX_DIAGNOSTIC: usize = 1000;
/// Longest subject kept, in characters: an `unsubscribe TOKEN` subject is
/// 55, anything near this is not one.
const MAX_SUBJECT: usize = 1000;
/// Most recipients read from one bounce: a return to a VERP address is
/// about one delivery, and a report to the plain address rarely lists
/// more than a few.
const MAX_RECIPIENTS: usize = 256;
/// Most bytes of one report part, quoted header or text body looked at.
/// Reports put everything that matters first; this bounds the work per
/// part whatever the message size.
const MAX_PART_SCAN: usize = 256 * 1024;
/// Most `message/*` parts (and digests, whose parts default to messages)
/// handed to the MIME parser. Every nested message is one level of
/// recursion when the parsed tree is dropped; a real report nests two or
/// three, a hostile one thousands (each costs ~30 bytes of input), which
/// would overflow the stack. The input is cut before the one past this.
const MAX_NESTED_MESSAGES: usize = 64;

impl BounceRecipient {
    /// How much this failure says about the subscriber's address. The
    /// rules, in order:
    ///
    /// - `Delayed`, or class 4 even with `failed` (Postfix gives up on a
    ///   4.4.1 timeout with `failed`): **Soft**. The server never said the
    ///   address is bad.
    /// - Class 5 and 5.1.7 / 5.1.8 (our sender address), 5.7.x (policy:
    ///   SPF, DKIM, DMARC, block lists, "message looks like spam"), 5.2.3 /
    ///   5.3.4 (our message too large): **Sender**. Also a 5.0.0 (or no
    ///   status) whose diagnostic names SPF, DKIM, DMARC or a block list,
    ///   since older servers refuse policy with a generic code. These
    ///   would recur for every recipient at that provider; marking them
    ///   bounced would empty the list for our own fault (Mailman, which
    ///   counts them, has an open issue asking not to).
    /// - Any other class 5, 5.2.2 (mailbox full) and 5.4.x included:
    ///   **Hard**, as the contract says of every failed 5.x.x not about
    ///   our side. (Amazon SES reports a full mailbox as transient, and
    ///   RFC 3463 allows 5.2.2 for persistent transient errors; but a
    ///   server that answers 5xx has stopped retrying, and a mailbox full
    ///   for days is in practice abandoned.) 5.4.x looks like
    ///   routing trouble, but in practice it is Office 365's 5.4.1 for an
    ///   unknown recipient and Postfix's 5.4.4 for a domain that does not
    ///   exist: facts about the address.
    /// - No status: a 5xx reply code in the diagnostic is **Hard**, a 4xx
    ///   one **Soft**; a failure that says nothing is **Hard** (the MTA
    ///   gave up on the address; Mailman too says "when in doubt, hard").
    pub fn severity(&self) -> Severity {
        if self.action == Action::Delayed {
            return Severity::Soft;
        }
        let diagnostic = self.diagnostic.as_deref().unwrap_or("");
        let status = self
            .status
            .or_else(|| EnhancedStatus::from_reply_code(diagnostic));
        let Some(status) = status else {
            return if names_sender_policy(diagnostic) {
                Severity::Sender
            } else {
                Severity::Hard
            };
        };
        match (status.class, status.subject, status.detail) {
            (5, 1, 7 | 8) | (5, 7, _) | (5, 2, 3) | (5, 3, 4) => Severity::Sender,
            (5, 0, 0) if names_sender_policy(diagnostic) => Severity::Sender,
            (5, _, _) => Severity::Hard,
            // Class 4, and a class 2 "failure", which contradicts itself.
            _ => Severity::Soft,
        }
    }
}

/// A generic refusal whose words show it is about the sending host.
fn names_sender_policy(diagnostic: &str) -> bool {
    const WORDS: [&str; 9] = [
        "spf",
        "dkim",
        "dmarc",
        "spamhaus",
        "blocklist",
        "blacklist",
        "block list",
        "black list",
        "rbl",
    ];
    let lower = diagnostic.to_ascii_lowercase();
    WORDS.iter().any(|w| contains_word(&lower, w))
}

/// `word` in `text` with no letter or digit right before or after it.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Classifies one returned message. Never panics; the work is linear in
/// `raw`, which the caller bounds (the listener's and import's size limit).
#[tracing::instrument(level = "debug", skip_all, fields(bytes = raw.len()))]
pub fn classify(raw: &[u8]) -> Report {
    let raw = cut_nested(raw);
    // mail-parser returns no message rather than one without parts, and
    // `subject()` relies on that; the filter keeps it so here.
    let parsed = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.parts.is_empty());
    let Some(message) = parsed else {
        return Report {
            kind: ReportKind::Other,
            original_message_id: None,
            subject: None,
        };
    };
    let report = classify_parsed(&message);
    drop_flat(message);
    report
}

/// mail-parser's tree is dropped recursively, one stack frame per nested
/// message: a message nesting some hundred thousand levels (a few MB, in
/// spellings such as `message /rfc822` that no byte scan can list in
/// full) would overflow the stack and abort the whole process. The parse
/// itself keeps its own stack; this takes the tree apart with ours.
fn drop_flat(message: Message<'_>) {
    let mut stack = vec![message];
    while let Some(mut m) = stack.pop() {
        for part in &mut m.parts {
            if matches!(part.body, PartType::Message(_))
                && let PartType::Message(inner) = std::mem::take(&mut part.body)
            {
                stack.push(inner);
            }
        }
    }
}

/// What a parsed message says.
fn classify_parsed(message: &Message<'_>) -> Report {
    let header = fields::header(&header_text(message));
    let subject = message
        .subject()
        .map(|s| fields::clean_line(s, MAX_SUBJECT))
        .filter(|s| !s.is_empty());

    let mut kind = None;
    let mut original = None;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let subtype = ct.subtype().unwrap_or("");
        match (ct.ctype(), subtype) {
            ("message", "delivery-status" | "global-delivery-status") if kind.is_none() => {
                kind = Some(ReportKind::Bounce(delivery_status(&part_text(&part.body))));
            }
            ("message", "feedback-report") if kind.is_none() => {
                kind = Some(feedback(&part_text(&part.body)));
            }
            ("message", "rfc822" | "global" | "rfc822-headers" | "global-headers")
            | ("text", "rfc822-headers")
                if original.is_none() =>
            {
                original = quoted_message_id(&part.body);
            }
            _ => {}
        }
    }

    let body = text_body(message);
    let kind = kind
        .or_else(|| embedded_report(&body))
        .or_else(|| legacy::bounce(&header, subject.as_deref(), &body).map(ReportKind::Bounce))
        .unwrap_or_else(|| {
            if !is_unsubscribe(subject.as_deref()) && is_auto_reply(&header, subject.as_deref()) {
                ReportKind::AutoReply
            } else {
                ReportKind::Other
            }
        });

    let original = original
        .or_else(|| reply_target(&header))
        .or_else(|| match kind {
            ReportKind::Bounce(_) | ReportKind::Feedback { .. } => quoted_id_line(&body),
            _ => None,
        });

    Report {
        kind,
        original_message_id: original,
        subject,
    }
}

/// `raw` up to the start of its `MAX_NESTED_MESSAGES + 1`th `message/` or
/// `multipart/digest` (any case), so that the parsed tree stays shallow.
/// One pass over the bytes.
fn cut_nested(raw: &[u8]) -> &[u8] {
    let mut seen = 0;
    for i in memchr::memchr_iter(b'/', raw) {
        let before =
            |word: &[u8]| i >= word.len() && raw[i - word.len()..i].eq_ignore_ascii_case(word);
        let nests = before(b"message")
            || (before(b"multipart")
                && raw
                    .get(i + 1..i + 7)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"digest")));
        if nests {
            seen += 1;
            if seen > MAX_NESTED_MESSAGES {
                let start = if before(b"message") { i - 7 } else { i - 9 };
                return &raw[..start];
            }
        }
    }
    raw
}

/// The raw header block of the message (bounded), as text.
fn header_text(message: &Message<'_>) -> String {
    let Some(root) = message.parts.first() else {
        return String::new();
    };
    let start = root.offset_header as usize;
    let end = (root.offset_body as usize).min(start.saturating_add(MAX_PART_SCAN));
    let bytes = message.raw_message.get(start..end).unwrap_or_default();
    String::from_utf8_lossy(bytes).into_owned()
}

/// The bytes of a report part as text, bounded. mail-parser gives
/// `message/delivery-status` and `message/feedback-report` as binary
/// (decoded from base64 or quoted-printable when so sent), or as text when
/// it found them malformed.
fn part_text(body: &PartType<'_>) -> String {
    let bytes: &[u8] = match body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b,
        // A nested message's `raw_message` may be the whole outer input;
        // its root part's offsets say where it lies.
        PartType::Message(m) => m
            .parts
            .first()
            .and_then(|root| {
                m.raw_message
                    .get(root.offset_header as usize..root.offset_end as usize)
            })
            .unwrap_or_default(),
        PartType::Multipart(_) => &[],
    };
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_PART_SCAN)]).into_owned()
}

/// The Message-ID of a quoted original (a whole message or its header).
fn quoted_message_id(body: &PartType<'_>) -> Option<String> {
    let text = match body {
        PartType::Message(m) => header_text(m),
        other => part_text(other),
    };
    let header = fields::header(&text);
    fields::get(&header, "message-id").and_then(fields::message_id)
}

/// The text parts of the message itself (not of messages quoted in it),
/// joined, bounded: where non-standard bounces say what happened.
fn text_body(message: &Message<'_>) -> String {
    let mut out = String::new();
    for part in &message.parts {
        if let PartType::Text(text) = &part.body {
            let room = MAX_PART_SCAN.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            out.push_str(fields::cut(text, room));
            out.push('\n');
        }
    }
    out
}

/// A report part the MIME parser could not see as one (a broken boundary
/// or a second Content-Type leaves the whole message one text part): its
/// `Content-Type` line in the text, the part's header after it, then its
/// fields up to the next boundary line.
fn embedded_report(body: &str) -> Option<ReportKind> {
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        let lower = line.trim().to_ascii_lowercase();
        let Some(value) = lower.strip_prefix("content-type:") else {
            continue;
        };
        let ctype = value.split(';').next().unwrap_or("").trim();
        let dsn = matches!(
            ctype,
            "message/delivery-status" | "message/global-delivery-status"
        );
        if !dsn && ctype != "message/feedback-report" {
            continue;
        }
        lines.by_ref().find(|l| l.trim().is_empty());
        let mut text = String::new();
        for l in lines.by_ref().take_while(|l| !l.starts_with("--")) {
            text.push_str(l);
            text.push('\n');
        }
        return Some(if dsn {
            ReportKind::Bounce(delivery_status(&text))
        } else {
            feedback(&text)
        });
    }
    None
}

/// RFC 3464: the per-message block, then one block per recipient. Blocks
/// are also split where a recipient's fields repeat without a blank line
/// between (seen from hand-rolled MTAs), so two recipients never merge.
fn delivery_status(text: &str) -> Vec<BounceRecipient> {
    let mut out = Vec::new();
    for block in fields::blocks(text, MAX_RECIPIENTS * 2 + 1) {
        for record in split_records(block) {
            if out.len() >= MAX_RECIPIENTS {
                return out;
            }
            if let Some(recipient) = recipient_record(&record) {
                out.push(recipient);
            }
        }
    }
    out
}

fn split_records(block: Vec<Field>) -> Vec<Vec<Field>> {
    const KEYS: [&str; 4] = ["original-recipient", "final-recipient", "action", "status"];
    let mut records: Vec<Vec<Field>> = vec![Vec::new()];
    for field in block {
        // Only a repeat splits: MTAs disagree on whether Original- or
        // Final-Recipient comes first.
        let repeats = KEYS.contains(&field.name.as_str())
            && records
                .last()
                .is_some_and(|r| r.iter().any(|f| f.name == field.name));
        if repeats {
            records.push(Vec::new());
        }
        if let Some(last) = records.last_mut() {
            last.push(field);
        }
    }
    records
}

/// One per-recipient record, or `None` for the per-message block and for
/// recipients that were delivered, relayed or expanded.
fn recipient_record(record: &[Field]) -> Option<BounceRecipient> {
    let recipient = fields::get(record, "final-recipient")
        .and_then(address_of)
        .or_else(|| fields::get(record, "original-recipient").and_then(address_of));
    let action_field =
        fields::get(record, "action").map(|a| fields::strip_comments(a).to_ascii_lowercase());
    if recipient.is_none() && action_field.is_none() {
        return None;
    }
    let diagnostic = fields::get(record, "diagnostic-code")
        .map(|d| fields::clean_line(strip_type(d), MAX_DIAGNOSTIC))
        .filter(|d| !d.is_empty());
    let status = fields::get(record, "status")
        .and_then(|s| fields::strip_comments(s).parse::<EnhancedStatus>().ok())
        .or_else(|| diagnostic.as_deref().and_then(EnhancedStatus::in_text));
    let action = match action_field
        .as_deref()
        .and_then(|a| a.split_whitespace().next())
    {
        Some("failed") => Action::Failed,
        Some("delayed") => Action::Delayed,
        Some("delivered" | "relayed" | "expanded") => return None,
        // Missing or unknown: what the status says.
        _ => match status.map(|s| s.class) {
            Some(2) => return None,
            Some(4) => Action::Delayed,
            _ => Action::Failed,
        },
    };
    Some(BounceRecipient {
        recipient,
        action,
        status,
        diagnostic,
    })
}

/// `rfc822; a@example.net` -> `a@example.net` (also `<a@example.net>` and
/// the value without a type).
fn address_of(value: &str) -> Option<String> {
    let value = fields::strip_comments(value);
    let address = strip_type(&value)
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let address = fields::clean_line(address, 320);
    (!address.is_empty() && !address.contains(' ')).then_some(address)
}

/// The value after a leading `type;` (`smtp; 550 ...`, `rfc822; a@b`,
/// `X-Postfix; ...`): a type is one token without spaces.
fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest))
            if !kind.trim().is_empty() && !kind.trim().contains(char::is_whitespace) =>
        {
            rest.trim()
        }
        _ => value.trim(),
    }
}

/// RFC 5965: the report's `Feedback-Type`. The field is required; a
/// feedback report without one is still a complaint loop's report, whose
/// only purpose is "this is spam", so it counts as `abuse`.
fn feedback(text: &str) -> ReportKind {
    let feedback_type = fields::blocks(text, 4)
        .iter()
        .find_map(|b| fields::get(b, "feedback-type").map(str::to_owned))
        .map(|v| {
            fields::strip_comments(&v)
                .split(|c: char| c.is_whitespace() || c == ';')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
        .map(|v| fields::clean_line(&v, 64))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "abuse".to_owned());
    ReportKind::Feedback { feedback_type }
}

/// The message this one answers: `In-Reply-To`, else the last of
/// `References` (the direct parent, RFC 5322 3.6.4).
fn reply_target(header: &[Field]) -> Option<String> {
    fields::get(header, "in-reply-to")
        .and_then(|v| fields::message_ids(v).next())
        .or_else(|| fields::get(header, "references").and_then(|v| fields::message_ids(v).last()))
        .map(str::to_owned)
}

/// A `Message-ID:` line quoted in a bounce's text (qmail and Exchange copy
/// the original header into the body), possibly indented or behind `>`.
fn quoted_id_line(body: &str) -> Option<String> {
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == '>');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim_end().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let value = if value.trim().is_empty() {
            lines.next().unwrap_or("")
        } else {
            value
        };
        if let Some(id) = fields::message_id(value) {
            return Some(id);
        }
    }
    None
}

/// `unsubscribe TOKEN`, the subject the List-Unsubscribe `mailto:` asks
/// for. Such a mail is the reader's request even when the client that
/// sent it marks it `Auto-Submitted` (a one-click unsubscribe by mail), so
/// it is never taken for an auto-reply.
fn is_unsubscribe(subject: Option<&str>) -> bool {
    let Some(subject) = subject else {
        return false;
    };
    let mut words = subject.split_whitespace();
    let verb = words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("unsubscribe"));
    let token = words.next().is_some_and(|t| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    verb && token && words.next().is_none()
}

/// RFC 3834 and what vacation programs and Exchange write instead:
/// `Auto-Submitted` other than `no`, `X-Autoreply`, `X-Autorespond`,
/// `Precedence: auto_reply` (also `bulk` and `junk`, which vacation(1)
/// puts on its replies and no person's reply carries), or a subject that
/// starts as out-of-office notices do (alone, or with Exchange's
/// `X-Auto-Response-Suppress`). Mistaking one way or the other costs
/// little: both kinds are ignored and only counted apart.
fn is_auto_reply(header: &[Field], subject: Option<&str>) -> bool {
    let token = |name: &str| {
        fields::get(header, name).map(|v| {
            fields::strip_comments(v)
                .split(|c: char| c == ';' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
    };
    if token("auto-submitted").is_some_and(|v| !v.is_empty() && v != "no") {
        return true;
    }
    let flagged =
        |name: &str| token(name).is_some_and(|v| !matches!(v.as_str(), "no" | "false" | "0"));
    if flagged("x-autoreply") || flagged("x-autorespond") || flagged("x-autogenerated") {
        return true;
    }
    if token("precedence").is_some_and(|v| matches!(v.as_str(), "auto_reply" | "bulk" | "junk")) {
        return true;
    }
    subject.is_some_and(is_auto_subject)
}

/// Subjects of out-of-office and vacation notices in the languages our
/// readers' mail servers answer in.
fn is_auto_subject(subject: &str) -> bool {
    const PREFIXES: [&str; 20] = [
        "automatic reply",
        "auto reply",
        "auto-reply",
        "autoreply",
        "auto response",
        "auto-response",
        "autoresponse",
        "out of office",
        "out of the office",
        "abwesenheit",
        "automatische antwort",
        "réponse automatique",
        "absence",
        "respuesta automática",
        "fuera de la oficina",
        "risposta automatica",
        "automatisch antwoord",
        "afwezig",
        "frånvaro",
        "on vacation",
    ];
    let lower = subject.trim_start().to_lowercase();
    PREFIXES.iter().any(|p| lower.starts_with(p))
}
