//! One RFC 5322 message per recipient, built with lettre: multipart/alternative
//! (text/plain, then text/html, UTF-8), the list headers of RFC 2369/2919/8058
//! (`List-Unsubscribe-Post` only when the unsubscribe URL is https, as RFC 8058
//! requires),
//! a Message-ID stable per (issue, subscriber), optional DKIM.
//!
//! Bodies go 7bit when they are ASCII with lines of at most 998 octets (a
//! link then stays whole on its line of the raw message), else
//! quoted-printable; lettre RFC 2047-encodes non-ASCII subjects and display
//! names, and folds headers. `List-Id` is written here (lettre has no phrase
//! encoder for non-mailbox headers).

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::dkim::DkimConfig;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use crate::config::Config;
use crate::subscribers::{SubscriberEmail, SubscriberName};

use super::dkim::{KeyFileError, signer};
use super::{Recipient, RenderError};

/// A finished message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// With the angle brackets, as in the header.
    pub message_id: String,
    /// The envelope sender (MAIL FROM): the address of `mail.from`.
    pub envelope_from: String,
    /// The recipient: its [`SubscriberEmail::envelope`] form is in `To:`
    /// and goes into `RCPT TO`.
    pub to: SubscriberEmail,
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
}

/// The bodies of a message, already encoded (CRLF, ASCII only): 7bit when
/// the text allows it (see [`super::qp::seven_bit`]), else quoted-printable.
/// Without `html` the message is a single text/plain part (a subscriber who
/// chose plain text).
pub(crate) struct EncodedParts {
    pub html: Option<EncodedBody>,
    pub text: EncodedBody,
}

/// One encoded body and its Content-Transfer-Encoding.
pub(crate) struct EncodedBody {
    pub body: String,
    pub encoding: ContentTransferEncoding,
}

impl EncodedBody {
    pub fn seven_bit(body: String) -> EncodedBody {
        EncodedBody {
            body,
            encoding: ContentTransferEncoding::SevenBit,
        }
    }

    pub fn quoted_printable(body: String) -> EncodedBody {
        EncodedBody {
            body,
            encoding: ContentTransferEncoding::QuotedPrintable,
        }
    }
}

/// Why mail cannot be sent with this config: `mail.from`, `mail.reply_to`
/// or `[mail.dkim]`. Cloned into every [`RenderError::Sender`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    #[error(
        "mail.from is not set in {}: mail needs a sender such as from = \"{title} <news@example.org>\"",
        config.display()
    )]
    NoFrom { config: PathBuf, title: String },
    #[error("mail.from {value:?} is not a usable address: {reason}")]
    From { value: String, reason: String },
    #[error("mail.from {value:?}: the address must be ASCII (gazette does not use SMTPUTF8)")]
    FromNotAscii { value: String },
    #[error("mail.reply_to {value:?} is not a usable address: {reason}")]
    ReplyTo { value: String, reason: String },
    /// The `[mail.dkim]` key file: [`KeyFileError`]'s words (the key's line
    /// and the file), kept as text so that this error stays `Clone + Eq`.
    #[error("{0}")]
    Dkim(String),
}

/// What every message of a publication shares: From, Reply-To, List-Id, DKIM.
pub struct Sender {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// `List-Id` value as written (raw) and folded/encoded.
    list_id: (String, String),
    /// `mailto:` address for List-Unsubscribe, percent-encoded.
    mailto: String,
    dkim: Option<DkimConfig>,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("from", &self.from.to_string())
            .field("dkim", &self.dkim.is_some())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// From `mail.from`, `mail.reply_to`, `[mail.dkim]` and the publication.
    pub fn from_config(config: &Config) -> Result<Sender, SenderError> {
        let from_s = config
            .mail
            .from
            .as_deref()
            .ok_or_else(|| SenderError::NoFrom {
                config: config.path.clone(),
                title: config.publication.title.clone(),
            })?;
        let from: Mailbox = from_s.parse().map_err(|e| SenderError::From {
            value: from_s.to_string(),
            reason: format!("{e}"),
        })?;
        if !from.email.to_string().is_ascii() {
            return Err(SenderError::FromNotAscii {
                value: from_s.to_string(),
            });
        }
        let reply_to = match config.mail.reply_to.as_deref() {
            None => None,
            Some(s) => Some(s.parse::<Mailbox>().map_err(|e| SenderError::ReplyTo {
                value: s.to_string(),
                reason: format!("{e}"),
            })?),
        };
        let domain = from.email.domain().to_ascii_lowercase();
        let title = &config.publication.title;
        let id = format!("{}.{domain}", list_slug(title));
        let raw = format!("{title} <{id}>");
        let encoded = fold("List-Id", &[encode_phrase(title), format!("<{id}>")]);
        let mailto = {
            let address = unsubscribe_address(&from);
            let (local, domain) = address.rsplit_once('@').unwrap_or((&address, ""));
            format!("{}@{domain}", percent_encode_local(local))
        };
        let dkim = match &config.mail.dkim {
            None => None,
            Some(d) => Some(signer(d).map_err(|e: KeyFileError| SenderError::Dkim(e.to_string()))?),
        };
        Ok(Sender {
            from,
            reply_to,
            list_id: (raw, encoded),
            mailto,
            dkim,
        })
    }

    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }
}

/// The Message-ID of an issue's message, the same for the same (issue,
/// subscriber) and never showing the token:
/// - a delivery row's: `<{issue slug}.{its TAG}@{domain of mail.from}>`
///   (`TAG` = `d42-<mac>`, [`super::verp`]). A report that quotes it names
///   the row by id (`Verp::message_tag`), so the ledger needs no index over
///   every Message-ID sent: with random ids, that index's inserts were the
///   largest cost of recording outcomes at a million rows;
/// - otherwise (a preview, a test copy):
///   `<{issue slug}.{first 16 hex of blake3(token)}@{domain}>`, which is
///   also the form of every row sent before migration 0012.
pub fn message_id(issue_slug: &str, token: &str, tag: Option<&str>, domain: &str) -> String {
    match tag {
        Some(tag) => format!("<{}.{tag}@{domain}>", dot_atom(issue_slug)),
        None => {
            let h = blake3::hash(token.as_bytes()).to_hex();
            format!("<{}.{}@{domain}>", dot_atom(issue_slug), &h[..16])
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn build_message(
    sender: &Sender,
    issue_slug: &str,
    subject: &str,
    date: DateTime<Utc>,
    r: &Recipient<'_>,
    name: Option<&str>,
    unsubscribe_url: &str,
    parts: EncodedParts,
) -> Result<Outgoing, RenderError> {
    let addr = wire_address(r.email)?;
    let message_id = message_id(issue_slug, r.token.as_str(), r.tag, sender.domain());
    let list_unsubscribe = format!(
        "<{unsubscribe_url}>, <mailto:{}?subject=unsubscribe%20{}>",
        sender.mailto, r.token
    );

    let mut b = Message::builder()
        .from(sender.from.clone())
        .to(Mailbox::new(name.map(str::to_string), addr))
        .subject(subject)
        .date(SystemTime::from(date))
        .message_id(Some(message_id.clone()));
    if let Some(rt) = &sender.reply_to {
        b = b.reply_to(rt.clone());
    }
    let mut b = b
        .raw_header(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("List-Id"),
            sender.list_id.0.clone(),
            sender.list_id.1.clone(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            list_unsubscribe,
        ));
    // RFC 8058 one-click needs an https URI: with an http base_url (a test
    // site) the mailto and the http link remain, but one-click is not claimed.
    if unsubscribe_url.starts_with("https://") {
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".into(),
        ));
    }
    let text = encoded_part(ContentType::TEXT_PLAIN, parts.text);
    let built = match parts.html {
        Some(html) => b.multipart(
            MultiPart::alternative()
                .singlepart(text)
                .singlepart(encoded_part(ContentType::TEXT_HTML, html)),
        ),
        None => b.singlepart(text),
    };
    let mut msg = built.map_err(|e| RenderError::Message {
        to: r.email.as_str().to_string(),
        message: e.to_string(),
    })?;
    if let Some(dkim) = &sender.dkim {
        msg.sign(dkim);
    }
    Ok(Outgoing {
        message_id,
        envelope_from: sender.from.email.to_string(),
        to: r.email.clone(),
        bytes: msg.formatted(),
    })
}

/// A one-off message from the publication to one address (a sign-up
/// confirmation, or the notice that an address is subscribed already):
/// multipart/alternative, From/Reply-To/DKIM as for digests, a fresh random
/// Message-ID, and `Auto-Submitted: auto-generated` (RFC 3834) so that
/// auto-responders leave it alone. No list headers: it is not list mail.
pub fn notice(
    sender: &Sender,
    to_email: &SubscriberEmail,
    to_name: Option<&SubscriberName>,
    subject: &str,
    text: String,
    html: String,
    date: DateTime<Utc>,
) -> Result<Outgoing, RenderError> {
    let failed = |message: String| RenderError::Message {
        to: to_email.as_str().to_string(),
        message,
    };
    let addr = wire_address(to_email)?;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| failed(format!("no random bytes: {e}")))?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let message_id = format!("<signup.{hex}@{}>", sender.domain());
    let mut b = Message::builder()
        .from(sender.from.clone())
        .to(Mailbox::new(to_name.map(|n| n.as_str().to_string()), addr))
        .subject(subject.split_whitespace().collect::<Vec<_>>().join(" "))
        .date(SystemTime::from(date))
        .message_id(Some(message_id.clone()));
    if let Some(rt) = &sender.reply_to {
        b = b.reply_to(rt.clone());
    }
    let mut msg = b
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .multipart(
            MultiPart::alternative()
                .singlepart(notice_part(ContentType::TEXT_PLAIN, text))
                .singlepart(notice_part(ContentType::TEXT_HTML, html)),
        )
        .map_err(|e| failed(e.to_string()))?;
    if let Some(dkim) = &sender.dkim {
        msg.sign(dkim);
    }
    Ok(Outgoing {
        message_id,
        envelope_from: sender.from.email.to_string(),
        to: to_email.clone(),
        bytes: msg.formatted(),
    })
}

/// The recipient for the `To:` header: [`SubscriberEmail::mailbox`] (the
/// domain in its IDNA A-label form, which every server and mail client
/// takes); an address read from an older row that has no wire form fails
/// here, with the reason.
fn wire_address(email: &SubscriberEmail) -> Result<lettre::Address, RenderError> {
    email.mailbox().map_err(|reason| RenderError::Recipient {
        email: email.as_str().to_string(),
        reason,
    })
}

/// A part whose body was encoded already (see [`EncodedParts`]): lettre
/// would otherwise encode the whole body again for every recipient.
fn encoded_part(content_type: ContentType, encoded: EncodedBody) -> SinglePart {
    SinglePart::builder()
        .header(content_type)
        .body(Body::dangerous_pre_encoded(
            encoded.body.into_bytes(),
            encoded.encoding,
        ))
}

/// A sign-up mail's part: 7bit when it can be, so the confirmation link
/// stays whole on one line of the raw message; else lettre's choice.
fn notice_part(content_type: ContentType, text: String) -> SinglePart {
    match super::qp::seven_bit(&text) {
        Some(body) => encoded_part(content_type, EncodedBody::seven_bit(body)),
        None => SinglePart::builder().header(content_type).body(text),
    }
}

/// `The Harbour Ledger` -> `the-harbour-ledger` (ASCII letters and digits).
fn list_slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "list".into()
    } else {
        s.into()
    }
}

/// The id-left of a Message-ID must be a dot-atom: keep atext, turn anything
/// else (and dots that would lead, trail or repeat) into '-'.
fn dot_atom(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let ok = c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if ok || (c == '.' && !out.is_empty() && !out.ends_with('.')) {
            out.push(c);
        } else {
            out.push('-');
        }
    }
    while out.ends_with('.') {
        out.pop();
    }
    if out.is_empty() { "issue".into() } else { out }
}

/// RFC 6068: the local part inside a `mailto:` URI.
/// The List-Unsubscribe `mailto:` address of a sender: `LOCAL+unsubscribe@DOMAIN`
/// (the domain lowercased), unencoded. The header ([`Sender`]) and the
/// inbound listener that reads what is sent to it (`mail::verp`) both take
/// it from here.
pub fn unsubscribe_address(from: &Mailbox) -> String {
    format!(
        "{}+unsubscribe@{}",
        from.email.user(),
        from.email.domain().to_ascii_lowercase()
    )
}

fn percent_encode_local(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$'*+".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An RFC 5322 phrase: atoms as they are, a quoted-string when ASCII
/// specials occur, RFC 2047 encoded-words (base64, at most 75 characters
/// each) when there is anything non-ASCII. Words are separated by spaces.
pub(crate) fn encode_phrase(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if s.chars().all(|c| c == ' ' || atext(c)) {
        return s;
    }
    if s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        let mut q = String::from("\"");
        for c in s.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        return q;
    }
    // "=?utf-8?b?" + base64 + "?=": 36 bytes make a 60-character word,
    // short enough to share the first line with a header name.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 36 {
            words.push(format!("=?utf-8?b?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?b?{}?=", STANDARD.encode(&chunk)));
    }
    words.join(" ")
}

/// Fold a header value (space-separated words) so lines stay within 78
/// characters where a space allows.
fn fold(name: &str, parts: &[String]) -> String {
    let mut out = String::new();
    let mut col = name.len() + 2;
    for word in parts.iter().flat_map(|p| p.split(' ')) {
        if !out.is_empty() {
            if col + 1 + word.len() > 78 {
                out.push_str("\r\n ");
                col = 1;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_slug_and_dot_atom() {
        assert_eq!(list_slug("The Harbour Ledger"), "the-harbour-ledger");
        assert_eq!(list_slug("News & Letters!"), "news-letters");
        assert_eq!(list_slug("Żółć"), "list");
        assert_eq!(dot_atom("2026-winter"), "2026-winter");
        assert_eq!(dot_atom("v1.2"), "v1.2");
        assert_eq!(dot_atom(".a..b."), "-a.-b");
        assert_eq!(dot_atom("a b@c"), "a-b-c");
    }

    #[test]
    fn phrases() {
        assert_eq!(encode_phrase("The Ledger"), "The Ledger");
        assert_eq!(
            encode_phrase("News, \"Letters\""),
            "\"News, \\\"Letters\\\"\""
        );
        let e = encode_phrase("Zoë's Paper");
        assert!(e.starts_with("=?utf-8?b?") && e.is_ascii(), "{e}");
        let long = encode_phrase(&"ł".repeat(100));
        assert!(long.split(' ').all(|w| w.len() <= 75), "{long}");
        assert!(long.split(' ').count() >= 5);
    }

    #[test]
    fn folding_keeps_lines_short() {
        let words: Vec<String> = (0..30).map(|i| format!("word{i}")).collect();
        let f = fold("List-Id", &words);
        assert!(
            f.split("\r\n")
                .all(|l| l.len() <= 78 - "List-Id: ".len() + 9)
        );
        assert!(f.contains("\r\n "));
    }

    #[test]
    fn message_id_hides_the_token() {
        let id = message_id("2026-winter", "tok_123", None, "example.org");
        assert!(id.starts_with("<2026-winter.") && id.ends_with("@example.org>"));
        assert!(!id.contains("tok_123"));
        assert_eq!(
            id,
            message_id("2026-winter", "tok_123", None, "example.org")
        );
        assert_ne!(
            id,
            message_id("2026-winter", "tok_124", None, "example.org")
        );
        assert_eq!(id.len(), "<2026-winter.@example.org>".len() + 16);
        // A delivery row's carries its TAG instead, and still not the token.
        let row = message_id("2026-winter", "tok_123", Some("d42-abcd"), "example.org");
        assert_eq!(row, "<2026-winter.d42-abcd@example.org>");
    }

    #[test]
    fn sender_errors_are_typed_and_say_which_setting() {
        let sender = |mail: &str| {
            let text = format!(
                "[publication]\ntitle = \"T\"\nbase_url = \"https://x.org/\"\n[mail]\n{mail}"
            );
            let config =
                Config::parse(std::path::Path::new("/site/config.toml"), &text, &[]).unwrap();
            Sender::from_config(&config).err()
        };
        let e = sender("").unwrap();
        assert!(matches!(e, SenderError::NoFrom { .. }));
        assert_eq!(
            e.to_string(),
            "mail.from is not set in /site/config.toml: mail needs a sender such as from = \"T <news@example.org>\""
        );
        let e = sender("from = \"T <zoë@x.org>\"\n").unwrap();
        assert_eq!(
            e,
            SenderError::FromNotAscii {
                value: "T <zoë@x.org>".into()
            }
        );
        assert_eq!(sender("from = \"a@x.org\"\n"), None);
    }

    #[test]
    fn mailto_local_part_is_percent_encoded() {
        assert_eq!(percent_encode_local("news"), "news");
        assert_eq!(percent_encode_local("a%b?c"), "a%25b%3Fc");
    }
}
