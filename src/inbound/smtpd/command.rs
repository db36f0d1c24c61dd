//! One command line of the client, parsed; and the replies to it.
//!
//! Parsing is a pure function of the line's bytes, so everything a client
//! can type is tested here without a socket. Nothing is trusted: the line
//! may hold any bytes (it is at most [`super::conn::MAX_LINE`] long), and
//! every outcome is a [`Command`] or a [`Reply`] saying what was wrong.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The longest path (address with its angle brackets) taken, as RFC 5321
/// (4.5.3.1.3) sets it.
const MAX_PATH: usize = 256;

/// A command the session acts on.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command {
    /// EHLO with the client's name (only logged: the peer's address is
    /// what identifies it, and a relay on loopback has nothing to prove).
    Ehlo(String),
    Helo(String),
    /// MAIL FROM: the reverse path (empty for the null sender `<>` of
    /// bounces) and the SIZE the client announced, if it did.
    Mail {
        from: String,
        size: Option<u64>,
    },
    /// RCPT TO: the address without brackets or source route.
    Rcpt {
        to: String,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    /// A command of RFC 5321 or a common extension that this server does
    /// not offer (EXPN, STARTTLS, AUTH, ...): 502, not the 500 of a typo.
    NotImplemented,
}

/// One reply line: code, enhanced status (RFC 3463; empty for the few
/// replies RFC 2034 leaves without one) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub code: u16,
    pub status: &'static str,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub(super) const fn new(code: u16, status: &'static str, text: &'static str) -> Reply {
        Reply {
            code,
            status,
            text: Cow::Borrowed(text),
        }
    }

    /// A reply whose text comes from elsewhere (an inbox's error): control
    /// characters become spaces and the text is cut to a sane length, so
    /// it can neither end the reply line early nor inject another.
    pub(super) fn with_text(code: u16, status: &'static str, text: &str) -> Reply {
        const MAX_TEXT: usize = 400;
        let mut clean = String::with_capacity(text.len().min(MAX_TEXT));
        for c in text.chars() {
            if clean.len() + c.len_utf8() > MAX_TEXT {
                break;
            }
            clean.push(if c.is_control() { ' ' } else { c });
        }
        let clean = clean.trim();
        Reply {
            code,
            status,
            text: Cow::Owned(if clean.is_empty() {
                "no reason given".to_string()
            } else {
                clean.to_string()
            }),
        }
    }

    /// Append the reply line, CRLF included, to `out`.
    pub(super) fn write_to(&self, out: &mut Vec<u8>) {
        let mut line = String::with_capacity(8 + self.status.len() + self.text.len());
        let _ = write!(line, "{}", self.code);
        line.push(' ');
        if !self.status.is_empty() {
            line.push_str(self.status);
            line.push(' ');
        }
        line.push_str(&self.text);
        line.push_str("\r\n");
        out.extend_from_slice(line.as_bytes());
    }

    /// A reply that counts towards the session's bad-command limit: the
    /// client said something this server cannot make sense of, as opposed
    /// to a refused address or message.
    pub(super) fn is_protocol_error(&self) -> bool {
        matches!(self.code, 500 | 501 | 502 | 503 | 555)
    }
}

pub(super) const UNKNOWN: Reply = Reply::new(500, "5.5.2", "command not recognized");
pub(super) const TOO_LONG: Reply = Reply::new(500, "5.5.2", "line too long");
pub(super) const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1", "command not implemented");
const HELLO_SYNTAX: Reply = Reply::new(501, "5.5.4", "syntax: EHLO hostname");
const MAIL_SYNTAX: Reply = Reply::new(501, "5.5.4", "syntax: MAIL FROM:<address>");
const RCPT_SYNTAX: Reply = Reply::new(501, "5.5.4", "syntax: RCPT TO:<address>");
const BAD_SENDER: Reply = Reply::new(501, "5.1.7", "bad sender address syntax");
const BAD_RECIPIENT: Reply = Reply::new(501, "5.1.3", "bad recipient address syntax");
const BAD_SIZE: Reply = Reply::new(501, "5.5.4", "bad SIZE parameter");
const NO_ARGUMENTS: Reply = Reply::new(501, "5.5.4", "no arguments allowed");
const UNKNOWN_PARAMETER: Reply = Reply::new(555, "5.5.4", "unsupported parameter");

/// Parse one command line (its line end included or not).
pub(super) fn parse(line: &[u8]) -> Result<Command, Reply> {
    let line = strip_line_end(line);
    let (verb, args) = match memchr::memchr(b' ', line) {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &line[line.len()..]),
    };
    let is = |name: &str| verb.eq_ignore_ascii_case(name.as_bytes());
    if is("EHLO") || is("HELO") {
        let name = hello_name(args)?;
        return Ok(if is("EHLO") {
            Command::Ehlo(name)
        } else {
            Command::Helo(name)
        });
    }
    if is("MAIL") {
        return mail(args);
    }
    if is("RCPT") {
        return rcpt(args);
    }
    // RFC 5321 gives these no arguments; clients that add spaces at the
    // end are forgiven.
    let bare = |c: Command| {
        if args.iter().all(|&b| b == b' ') {
            Ok(c)
        } else {
            Err(NO_ARGUMENTS)
        }
    };
    if is("DATA") {
        return bare(Command::Data);
    }
    if is("RSET") {
        return bare(Command::Rset);
    }
    if is("QUIT") {
        return bare(Command::Quit);
    }
    // NOOP, VRFY and HELP take an argument, which is ignored.
    if is("NOOP") {
        return Ok(Command::Noop);
    }
    if is("VRFY") {
        return Ok(Command::Vrfy);
    }
    if is("HELP") {
        return Ok(Command::Help);
    }
    const OTHERS: [&str; 8] = [
        "EXPN", "STARTTLS", "AUTH", "TURN", "ETRN", "BDAT", "ATRN", "SEND",
    ];
    if OTHERS.iter().any(|&v| is(v)) {
        return Ok(Command::NotImplemented);
    }
    Err(UNKNOWN)
}

/// The line without its CRLF or bare LF.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The name after EHLO/HELO: one word of printable ASCII or UTF-8 without
/// controls (it is only logged, escaped).
fn hello_name(args: &[u8]) -> Result<String, Reply> {
    let args = std::str::from_utf8(args).map_err(|_| HELLO_SYNTAX)?;
    let name = args.trim_matches(' ');
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(HELLO_SYNTAX);
    }
    Ok(name.to_string())
}

/// `MAIL FROM:<path> [params]`.
fn mail(args: &[u8]) -> Result<Command, Reply> {
    let args = std::str::from_utf8(args).map_err(|_| BAD_SENDER)?;
    let rest = strip_keyword(args, "FROM:").ok_or(MAIL_SYNTAX)?;
    let (from, params) = path(rest).map_err(|_| BAD_SENDER)?;
    let from = match from {
        Path::Null => String::new(),
        Path::Mailbox(m) if is_mailbox(m) => m.to_string(),
        Path::Mailbox(_) => return Err(BAD_SENDER),
    };
    let mut size = None;
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        if key.eq_ignore_ascii_case("SIZE") {
            size = Some(size_value(value)?);
        } else if key.eq_ignore_ascii_case("BODY") {
            // 8BITMIME is offered, and 7BIT is the default; BINARYMIME
            // would need CHUNKING, which is not.
            match value {
                Some(v) if v.eq_ignore_ascii_case("8BITMIME") || v.eq_ignore_ascii_case("7BIT") => {
                }
                _ => return Err(UNKNOWN_PARAMETER),
            }
        } else if key.eq_ignore_ascii_case("SMTPUTF8") {
            // Offered: addresses and headers may be UTF-8, which they may
            // anyway here (nothing in this server is ASCII-only).
            if value.is_some() {
                return Err(UNKNOWN_PARAMETER);
            }
        } else {
            // RFC 5321 (4.1.1.11): an unrecognized parameter is 555.
            return Err(UNKNOWN_PARAMETER);
        }
    }
    Ok(Command::Mail { from, size })
}

/// `RCPT TO:<path>`. No RCPT parameter is offered (no DSN extension), so
/// any is 555.
fn rcpt(args: &[u8]) -> Result<Command, Reply> {
    let args = std::str::from_utf8(args).map_err(|_| BAD_RECIPIENT)?;
    let rest = strip_keyword(args, "TO:").ok_or(RCPT_SYNTAX)?;
    let (to, params) = path(rest).map_err(|_| BAD_RECIPIENT)?;
    let to = match to {
        Path::Mailbox(m) if is_mailbox(m) || m.eq_ignore_ascii_case("postmaster") => m,
        _ => return Err(BAD_RECIPIENT),
    };
    if params.split(' ').any(|p| !p.is_empty()) {
        return Err(UNKNOWN_PARAMETER);
    }
    Ok(Command::Rcpt { to: to.to_string() })
}

/// `args` after `keyword` (any case); spaces after the colon are forgiven
/// (`MAIL FROM: <a@b>` is common, though RFC 5321 has none).
fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    Some(args[keyword.len()..].trim_start_matches(' '))
}

fn size_value(value: Option<&str>) -> Result<u64, Reply> {
    let v = value.ok_or(BAD_SIZE)?;
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_SIZE);
    }
    // Twenty digits may still overflow: such a size is over any limit.
    Ok(v.parse().unwrap_or(u64::MAX))
}

#[derive(Debug, PartialEq, Eq)]
enum Path<'a> {
    /// `<>`: the null reverse path of bounces and other automatic mail.
    Null,
    Mailbox(&'a str),
}

/// The address at the start of `s` and what follows it (the parameters).
///
/// `<mailbox>` is the form RFC 5321 has; a bare `mailbox` up to the first
/// space is taken too (older clients send it, and nothing is gained by
/// refusing a bounce over it). A source route (`<@a,@b:user@c>`, which
/// RFC 5321 says to accept and ignore) is removed. A quoted local part is
/// kept as it is, quotes included, and may hold spaces and `>`.
fn path(s: &str) -> Result<(Path<'_>, &str), ()> {
    let (inner, rest) = match s.strip_prefix('<') {
        Some(after) => {
            let close = closing_bracket(after).ok_or(())?;
            (&after[..close], &after[close + 1..])
        }
        None if s.is_empty() || s.starts_with(' ') => return Err(()),
        None => match s.find(' ') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        },
    };
    if !(rest.is_empty() || rest.starts_with(' ')) || inner.len() + 2 > MAX_PATH {
        return Err(());
    }
    let mailbox = match inner.strip_prefix('@') {
        // The route ends at the first colon: domains hold none.
        Some(route) => &route[route.find(':').ok_or(())? + 1..],
        None => inner,
    };
    if mailbox.is_empty() {
        // `<@a:>` is no null path; `<>` is.
        return if inner.is_empty() {
            Ok((Path::Null, rest))
        } else {
            Err(())
        };
    }
    Ok((Path::Mailbox(mailbox), rest))
}

/// The index of the `>` that closes a path, skipping a quoted string
/// (with its backslash escapes).
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            match b {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => quoted = true,
                b'>' => return Some(i),
                _ => {}
            }
        }
    }
    None
}

/// `local@domain` with a non-empty local part (a dot-string or a quoted
/// string) and domain, and no control characters; outside quotes no
/// spaces or brackets either. The domain is not checked further: whether
/// gazette owns the address is the inbox's question, and an address it
/// does not own is refused there.
fn is_mailbox(m: &str) -> bool {
    if m.chars().any(char::is_control) {
        return false;
    }
    let at = if m.starts_with('"') {
        // The quoted string ends at its closing quote, then comes '@'.
        let mut escaped = false;
        let mut end = None;
        for (i, b) in m.bytes().enumerate().skip(1) {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                end = Some(i);
                break;
            }
        }
        match end {
            Some(e) if m.as_bytes().get(e + 1) == Some(&b'@') && e > 1 => e + 1,
            _ => return false,
        }
    } else {
        match m.rfind('@') {
            Some(i) if i > 0 => {
                let local = &m[..i];
                if local.contains(['"', ' ', '<', '>', '@', '\\']) {
                    return false;
                }
                i
            }
            _ => return false,
        }
    };
    let domain = &m[at + 1..];
    !domain.is_empty() && !domain.contains([' ', '<', '>', '@', '"', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt_of(line: &str) -> Result<String, Reply> {
        match parse(line.as_bytes())? {
            Command::Rcpt { to } => Ok(to),
            other => panic!("not RCPT: {other:?}"),
        }
    }

    fn mail_of(line: &str) -> Result<(String, Option<u64>), Reply> {
        match parse(line.as_bytes())? {
            Command::Mail { from, size } => Ok((from, size)),
            other => panic!("not MAIL: {other:?}"),
        }
    }

    #[test]
    fn verbs_in_any_case_with_either_line_end() {
        assert_eq!(parse(b"quit\r\n"), Ok(Command::Quit));
        assert_eq!(parse(b"QuIt\n"), Ok(Command::Quit));
        assert_eq!(parse(b"DATA"), Ok(Command::Data));
        assert_eq!(parse(b"RSET  \r\n"), Ok(Command::Rset));
        assert_eq!(parse(b"NOOP anything at all\r\n"), Ok(Command::Noop));
        assert_eq!(parse(b"VRFY postmaster\r\n"), Ok(Command::Vrfy));
        assert_eq!(parse(b"HELP\r\n"), Ok(Command::Help));
        assert_eq!(
            parse(b"ehlo mta.example.net\r\n"),
            Ok(Command::Ehlo("mta.example.net".into()))
        );
        assert_eq!(
            parse(b"HELO [192.0.2.1]\r\n"),
            Ok(Command::Helo("[192.0.2.1]".into()))
        );
    }

    #[test]
    fn unknown_unoffered_and_malformed_commands() {
        assert_eq!(parse(b"FOO bar\r\n"), Err(UNKNOWN));
        assert_eq!(parse(b"\r\n"), Err(UNKNOWN));
        assert_eq!(parse(b"\x00\xff\xfe garbage\r\n"), Err(UNKNOWN));
        assert_eq!(parse(b"STARTTLS\r\n"), Ok(Command::NotImplemented));
        assert_eq!(parse(b"AUTH PLAIN AGF\r\n"), Ok(Command::NotImplemented));
        assert_eq!(parse(b"EXPN staff\r\n"), Ok(Command::NotImplemented));
        assert_eq!(parse(b"DATA now\r\n"), Err(NO_ARGUMENTS));
        assert_eq!(parse(b"EHLO\r\n"), Err(HELLO_SYNTAX));
        assert_eq!(parse(b"EHLO   \r\n"), Err(HELLO_SYNTAX));
        assert_eq!(parse(b"EHLO a\x07b\r\n"), Err(HELLO_SYNTAX));
        assert_eq!(parse(b"EHLO \xff\r\n"), Err(HELLO_SYNTAX));
        assert_eq!(parse(b"MAIL <a@example.org>\r\n"), Err(MAIL_SYNTAX));
        assert_eq!(parse(b"MAIL\r\n"), Err(MAIL_SYNTAX));
        assert_eq!(parse(b"RCPT FROM:<a@example.org>\r\n"), Err(RCPT_SYNTAX));
    }

    #[test]
    fn the_null_sender_and_plain_senders() {
        assert_eq!(mail_of("MAIL FROM:<>\r\n"), Ok((String::new(), None)));
        assert_eq!(
            mail_of("mail from:<MAILER-DAEMON@mx.example.net>"),
            Ok(("MAILER-DAEMON@mx.example.net".into(), None))
        );
        // A space after the colon, and no brackets at all, are forgiven.
        assert_eq!(
            mail_of("MAIL FROM: <a@example.net>"),
            Ok(("a@example.net".into(), None))
        );
        assert_eq!(
            mail_of("MAIL FROM:a@example.net SIZE=10"),
            Ok(("a@example.net".into(), Some(10)))
        );
    }

    #[test]
    fn mail_parameters() {
        assert_eq!(
            mail_of("MAIL FROM:<> SIZE=2048 BODY=8BITMIME SMTPUTF8"),
            Ok((String::new(), Some(2048)))
        );
        assert_eq!(
            mail_of("MAIL FROM:<a@example.net> body=7bit size=0"),
            Ok(("a@example.net".into(), Some(0)))
        );
        assert_eq!(
            mail_of("MAIL FROM:<> SIZE=99999999999999999999"),
            Ok((String::new(), Some(u64::MAX)))
        );
        assert_eq!(mail_of("MAIL FROM:"), Err(BAD_SENDER));
        assert_eq!(mail_of("MAIL FROM:<> SIZE=12k"), Err(BAD_SIZE));
        assert_eq!(mail_of("MAIL FROM:<> SIZE="), Err(BAD_SIZE));
        assert_eq!(mail_of("MAIL FROM:<> SIZE"), Err(BAD_SIZE));
        assert_eq!(mail_of("MAIL FROM:<> SIZE=-1"), Err(BAD_SIZE));
        assert_eq!(
            mail_of("MAIL FROM:<> SIZE=123456789012345678901"),
            Err(BAD_SIZE)
        );
        assert_eq!(
            mail_of("MAIL FROM:<> BODY=BINARYMIME"),
            Err(UNKNOWN_PARAMETER)
        );
        assert_eq!(mail_of("MAIL FROM:<> SMTPUTF8=yes"), Err(UNKNOWN_PARAMETER));
        assert_eq!(mail_of("MAIL FROM:<> RET=HDRS"), Err(UNKNOWN_PARAMETER));
        assert_eq!(mail_of("MAIL FROM:<a@example.net>SIZE=1"), Err(BAD_SENDER));
    }

    #[test]
    fn recipients_lose_brackets_and_source_routes() {
        assert_eq!(
            rcpt_of("RCPT TO:<bounces+AbC.12=x-y@news.example.org>\r\n"),
            Ok("bounces+AbC.12=x-y@news.example.org".into())
        );
        assert_eq!(
            rcpt_of("rcpt to:<@relay.example.net,@hub.example.com:u@example.org>"),
            Ok("u@example.org".into())
        );
        assert_eq!(rcpt_of("RCPT TO:<Postmaster>"), Ok("Postmaster".into()));
        assert_eq!(
            rcpt_of("RCPT TO:<unsubscribe@[192.0.2.7]>"),
            Ok("unsubscribe@[192.0.2.7]".into())
        );
        assert_eq!(
            rcpt_of("RCPT TO:<jürgen@bücher.example>"),
            Ok("jürgen@bücher.example".into())
        );
    }

    #[test]
    fn quoted_local_parts_are_kept_whole() {
        assert_eq!(
            rcpt_of(r#"RCPT TO:<"john doe"@example.org>"#),
            Ok(r#""john doe"@example.org"#.into())
        );
        assert_eq!(
            rcpt_of(r#"RCPT TO:<"a>b\"c@d"@example.org>"#),
            Ok(r#""a>b\"c@d"@example.org"#.into())
        );
    }

    #[test]
    fn bad_recipients() {
        for line in [
            "RCPT TO:<>",
            "RCPT TO:<nobody>",
            "RCPT TO:<@example.org>",
            "RCPT TO:<a@>",
            "RCPT TO:<a b@example.org>",
            "RCPT TO:<a@example.org",
            "RCPT TO:<a@example.org>junk",
            "RCPT TO:<@relay.example.net>",
            "RCPT TO:<@relay.example.net:>",
            "RCPT TO:<\"unterminated@example.org>",
            "RCPT TO:<\"\"@example.org>",
            "RCPT TO:<a\u{7}b@example.org>",
            "RCPT TO:<a@b@example.org>",
        ] {
            assert_eq!(rcpt_of(line), Err(BAD_RECIPIENT), "{line}");
        }
        let long = format!("RCPT TO:<{}@example.org>", "a".repeat(250));
        assert_eq!(rcpt_of(&long), Err(BAD_RECIPIENT));
        assert_eq!(
            parse(b"RCPT TO:<a@example.org> NOTIFY=NEVER"),
            Err(UNKNOWN_PARAMETER)
        );
        assert_eq!(parse(b"RCPT TO:<a@\xffexample.org>"), Err(BAD_RECIPIENT));
    }

    #[test]
    fn reply_text_from_elsewhere_cannot_break_the_line() {
        let r = Reply::with_text(451, "4.3.0", "database\r\n250 busy\u{0}");
        let mut out = Vec::new();
        r.write_to(&mut out);
        assert_eq!(out, b"451 4.3.0 database  250 busy\r\n");
        let r = Reply::with_text(554, "5.6.0", &"é".repeat(1000));
        let mut out = Vec::new();
        r.write_to(&mut out);
        assert!(out.len() < 420 && out.ends_with(b"\r\n"));
        assert_eq!(
            Reply::with_text(554, "5.6.0", " \r\n").text,
            "no reason given"
        );
    }

    #[test]
    fn replies_without_status() {
        let mut out = Vec::new();
        Reply::new(354, "", "go ahead").write_to(&mut out);
        assert_eq!(out, b"354 go ahead\r\n");
    }
}
