//! Our SMTP client, for all three `mail.smtp.security` modes (`none`,
//! `starttls`, `tls`; the TLS part is in `tls.rs`).
//!
//! lettre re-scans every message byte by byte for dot-stuffing and sends each
//! command in its own round trip; at thousands of messages a second that was
//! most of gazette's CPU (measured with perf: `ClientCodec::encode` alone was
//! 22%). Here a message without a line starting with "." goes out as it is,
//! and MAIL, RCPT and DATA go in one write when the server offers PIPELINING
//! (RFC 2920). Every socket has TCP_NODELAY: the body and its final "." are
//! two writes, and with Nagle's algorithm the second waits for the server's
//! delayed ACK of the first (40 ms on Linux), which held lettre's implicit
//! TLS to about 200 messages a second.
//!
//! The server is not trusted: a reply is read within [`MAX_REPLY_LINE`]
//! bytes a line, [`MAX_REPLY_BYTES`] in all, and one deadline for the whole
//! reply (not per line), so neither a flood of continuation lines nor a
//! trickle of them can hold memory or a run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::tls::{Security, Stream};
use super::{Outcome, is_bad_mailbox};
use crate::subscribers::SubscriberEmail;

/// The longest reply line taken, CRLF included. RFC 5321 (4.5.3.1.5) allows
/// 512 octets; real servers stay well below; 4 KiB leaves room for the odd
/// long text without letting a line grow without end.
pub const MAX_REPLY_LINE: usize = 4096;
/// The most a whole reply (all its lines) may take. An EHLO reply of a big
/// provider is under 1 KiB.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// One SMTP reply: code and text (lines joined).
#[derive(Debug, Clone)]
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    fn line(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

struct Conn {
    stream: BufReader<Stream>,
    pipelining: bool,
    /// The server offered CHUNKING (RFC 3030) as well as PIPELINING: a
    /// message goes as `BDAT n LAST` in the same write as MAIL and RCPT.
    chunking: bool,
    /// The server offered SMTPUTF8 (RFC 6531) in its EHLO reply.
    smtputf8: bool,
    since: Instant,
}

/// Why a transaction ended early.
enum Fail {
    /// The connection is gone (or never was): no answer.
    Io(String),
    /// The server answered with this reply (4xx or 5xx).
    Reply(Reply),
    /// The server broke a bound on its reply (too long, too slow): no
    /// answer either, but not worth an immediate second try.
    Bound(String),
    /// Nothing was sent: the message cannot go over this connection (an
    /// address that needs SMTPUTF8, which the server does not offer). It
    /// would not go next time either, so the delivery fails.
    Unsendable(String),
}

pub struct SmtpClient {
    host: String,
    port: u16,
    security: Security,
    /// (user, password) for AUTH PLAIN or LOGIN.
    auth: Option<(String, String)>,
    hello: String,
    /// For connecting, each write, and each whole reply.
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Conn>>,
}

const IDLE_LIMIT: Duration = Duration::from_secs(30);
/// How long saying goodbye to all idle connections may take.
const QUIT_LIMIT: Duration = Duration::from_secs(2);

impl SmtpClient {
    pub fn new(
        host: &str,
        port: u16,
        security: Security,
        auth: Option<(String, String)>,
        max_idle: usize,
        timeout: Duration,
    ) -> SmtpClient {
        let hello = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        SmtpClient {
            host: host.to_string(),
            port,
            security,
            auth,
            hello,
            timeout,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// One whole reply within [`SmtpClient::timeout`].
    async fn read_reply(&self, conn: &mut BufReader<Stream>) -> Result<Reply, Fail> {
        match tokio::time::timeout(self.timeout, read_bounded_reply(conn)).await {
            Ok(reply) => reply,
            Err(_) => Err(Fail::Bound(format!(
                "the server's reply did not complete within {} s (mail.smtp.timeout)",
                self.timeout.as_secs_f64()
            ))),
        }
    }

    async fn expect(
        &self,
        conn: &mut BufReader<Stream>,
        ok: impl Fn(u16) -> bool,
    ) -> Result<Reply, Fail> {
        let r = self.read_reply(conn).await?;
        if ok(r.code) {
            Ok(r)
        } else {
            Err(Fail::Reply(r))
        }
    }

    async fn write(&self, conn: &mut BufReader<Stream>, bytes: &[u8]) -> Result<(), Fail> {
        let stream = conn.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            // TLS holds bytes back until flushed; for TCP this does nothing.
            stream.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| Fail::Io("timed out writing to the server".into()))?
            .map_err(|e| Fail::Io(format!("connection lost: {e}")))
    }

    /// A refusal while setting up (greeting, EHLO, STARTTLS, AUTH) is not
    /// about any recipient: it is reported like no answer, so the run stops
    /// and every message stays queued instead of failing one by one.
    async fn connect(&self) -> Result<Conn, Fail> {
        self.setup().await.map_err(|f| match f {
            Fail::Reply(r) => Fail::Io(format!(
                "{}:{} refused the session: {}",
                self.host,
                self.port,
                r.line()
            )),
            io => io,
        })
    }

    async fn setup(&self) -> Result<Conn, Fail> {
        let at = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| Fail::Io(format!("cannot connect to {at}: timed out")))?
        .map_err(|e| Fail::Io(format!("cannot connect to {at}: {e}")))?;
        // Without this, small writes wait for delayed ACKs (see the top).
        let _ = tcp.set_nodelay(true);
        let handshake_timeout = || {
            Fail::Io(format!(
                "{at}: no TLS handshake within {} s",
                self.timeout.as_secs_f64()
            ))
        };
        let stream = match &self.security {
            Security::Implicit(tls) => {
                tokio::time::timeout(self.timeout, tls.handshake(tcp, self.port, true))
                    .await
                    .map_err(|_| handshake_timeout())?
                    .map_err(|e| Fail::Io(e.to_string()))?
            }
            Security::None | Security::Starttls(_) => Stream::Tcp(tcp),
        };
        let mut conn = BufReader::new(stream);
        self.expect(&mut conn, |c| c == 220).await?;
        let mut ehlo = self.ehlo(&mut conn).await?;
        if let Security::Starttls(tls) = &self.security {
            if !offers(&ehlo, "STARTTLS") {
                return Err(Fail::Io(format!(
                    "{at} does not offer STARTTLS (its EHLO reply does not list it), so \
                     security = \"starttls\" cannot protect the session. Check mail.smtp.port \
                     (STARTTLS is usually on 587; a port that expects TLS from the first byte, \
                     usually 465, needs security = \"tls\")"
                )));
            }
            self.write(&mut conn, b"STARTTLS\r\n").await?;
            self.expect(&mut conn, |c| c == 220).await?;
            // Anything already buffered was sent before TLS began and could
            // be an injected reply (CVE-2011-0411): never read it as if
            // it came over TLS.
            if !conn.buffer().is_empty() {
                return Err(Fail::Io(format!(
                    "{at} sent more after its STARTTLS reply, before TLS began: not trusted"
                )));
            }
            let Stream::Tcp(tcp) = conn.into_inner() else {
                return Err(Fail::Io(format!("{at}: STARTTLS on a TLS connection")));
            };
            let stream = tokio::time::timeout(self.timeout, tls.handshake(tcp, self.port, false))
                .await
                .map_err(|_| handshake_timeout())?
                .map_err(|e| Fail::Io(e.to_string()))?;
            conn = BufReader::new(stream);
            // RFC 3207: forget what was learned before TLS; ask again.
            ehlo = self.ehlo(&mut conn).await?;
        }
        let pipelining = offers(&ehlo, "PIPELINING");
        let chunking = pipelining && offers(&ehlo, "CHUNKING");
        let smtputf8 = offers(&ehlo, "SMTPUTF8");
        if let Some((user, password)) = &self.auth {
            self.authenticate(&mut conn, &ehlo, user, password).await?;
        }
        Ok(Conn {
            stream: conn,
            pipelining,
            chunking,
            smtputf8,
            since: Instant::now(),
        })
    }

    async fn ehlo(&self, conn: &mut BufReader<Stream>) -> Result<Reply, Fail> {
        self.write(conn, format!("EHLO {}\r\n", self.hello).as_bytes())
            .await?;
        self.expect(conn, |c| c == 250).await
    }

    /// AUTH PLAIN, or LOGIN when the server offers only that (RFC 4954).
    async fn authenticate(
        &self,
        conn: &mut BufReader<Stream>,
        ehlo: &Reply,
        user: &str,
        password: &str,
    ) -> Result<(), Fail> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        if offers(ehlo, "LOGIN") && !offers(ehlo, "PLAIN") {
            self.write(conn, b"AUTH LOGIN\r\n").await?;
            self.expect(conn, |c| c == 334).await?;
            self.write(conn, format!("{}\r\n", b64(user)).as_bytes())
                .await?;
            self.expect(conn, |c| c == 334).await?;
            self.write(conn, format!("{}\r\n", b64(password)).as_bytes())
                .await?;
        } else {
            let token = b64(&format!("\0{user}\0{password}"));
            self.write(conn, format!("AUTH PLAIN {token}\r\n").as_bytes())
                .await?;
        }
        self.expect(conn, |c| c == 235).await.map(|_| ())
    }

    /// One MAIL/RCPT/DATA exchange. `to` is the recipient's
    /// [`SubscriberEmail::envelope`]; `utf8` when it (or `from`) needs SMTPUTF8.
    async fn transaction(
        &self,
        conn: &mut Conn,
        from: &str,
        to: &str,
        utf8: bool,
        bytes: &[u8],
    ) -> Result<Reply, Fail> {
        if utf8 && !conn.smtputf8 {
            return Err(Fail::Unsendable(format!(
                "not sent: the address {to:?} needs SMTPUTF8, which {}:{} does not offer",
                self.host, self.port
            )));
        }
        let s = &mut conn.stream;
        let mail = if utf8 {
            format!("MAIL FROM:<{from}> SMTPUTF8\r\n")
        } else {
            format!("MAIL FROM:<{from}>\r\n")
        };
        let rcpt = format!("RCPT TO:<{to}>\r\n");
        if conn.chunking {
            return self.chunked(s, &mail, &rcpt, bytes).await;
        }
        if conn.pipelining {
            self.write(s, format!("{mail}{rcpt}DATA\r\n").as_bytes())
                .await?;
            let m = self.read_reply(s).await?;
            let r = self.read_reply(s).await?;
            let d = self.read_reply(s).await?;
            // Report the first refusal; a DATA that was accepted after a
            // refused RCPT is ended empty-handed with RSET.
            let refusal = [&m, &r].into_iter().find(|x| x.code / 100 != 2).cloned();
            if let Some(refused) = refusal {
                if d.code == 354 {
                    self.write(s, b".\r\n").await?;
                    let _ = self.read_reply(s).await?;
                }
                self.write(s, b"RSET\r\n").await?;
                let _ = self.read_reply(s).await?;
                return Err(Fail::Reply(refused));
            }
            if d.code != 354 {
                return Err(Fail::Reply(d));
            }
        } else {
            self.write(s, mail.as_bytes()).await?;
            self.expect(s, |c| c / 100 == 2).await?;
            self.write(s, rcpt.as_bytes()).await?;
            if let Err(e) = self.expect(s, |c| c / 100 == 2).await {
                if matches!(e, Fail::Reply(_)) {
                    self.write(s, b"RSET\r\n").await?;
                    let _ = self.read_reply(s).await?;
                }
                return Err(e);
            }
            self.write(s, b"DATA\r\n").await?;
            self.expect(s, |c| c == 354).await?;
        }
        // The body and its end in one write: written apart, the end went
        // as a packet of its own, a second wakeup of the server per message.
        self.write(s, &with_end(dot_stuff(bytes))).await?;
        let r = self.read_reply(s).await?;
        if r.code / 100 == 2 {
            Ok(r)
        } else {
            Err(Fail::Reply(r))
        }
    }

    /// The whole transaction in one write and one round trip (RFC 3030
    /// with RFC 2920): MAIL, RCPT, then `BDAT n LAST` and the message as
    /// it is: no dot-stuffing, no end-of-data line, and no wait for a 354.
    /// With DATA a message takes two round trips (the envelope and its 354,
    /// then the body and its 250), so over a relay 20 ms away, CHUNKING
    /// nearly doubles what each connection carries.
    async fn chunked(
        &self,
        s: &mut BufReader<Stream>,
        mail: &str,
        rcpt: &str,
        bytes: &[u8],
    ) -> Result<Reply, Fail> {
        // Ended by CRLF, as the DATA path ends it before its ".".
        let end: &[u8] = if bytes.ends_with(b"\r\n") {
            b""
        } else {
            b"\r\n"
        };
        let bdat = format!("BDAT {} LAST\r\n", bytes.len() + end.len());
        let mut out = Vec::with_capacity(mail.len() + rcpt.len() + bdat.len() + bytes.len() + 2);
        for part in [
            mail.as_bytes(),
            rcpt.as_bytes(),
            bdat.as_bytes(),
            bytes,
            end,
        ] {
            out.extend_from_slice(part);
        }
        self.write(s, &out).await?;
        let m = self.read_reply(s).await?;
        let r = self.read_reply(s).await?;
        let b = self.read_reply(s).await?;
        // The server reads the chunk whatever it said to MAIL and RCPT (its
        // length was given) and then refuses it: report the first refusal.
        // A refused BDAT leaves the transaction undefined (RFC 3030 4.2):
        // RSET, and should that fail, the refusal still stands (a broken
        // connection is found when it is next used, and replaced).
        let refused = match [m, r].into_iter().find(|x| x.code / 100 != 2) {
            Some(refused) => refused,
            None if b.code / 100 == 2 => return Ok(b),
            None => b,
        };
        if refused.code != 421 && self.write(s, b"RSET\r\n").await.is_ok() {
            let _ = self.read_reply(s).await;
        }
        Err(Fail::Reply(refused))
    }

    /// Send one message; the outcome as the ledger wants it.
    pub async fn send(&self, from: &str, to: &SubscriberEmail, bytes: &[u8]) -> Outcome {
        // What can be mailed is SubscriberEmail's decision: its envelope form
        // (IDNA domain) goes into RCPT TO as it is, and only a Unicode local
        // part needs SMTPUTF8 (RFC 6531 3.4).
        let utf8 = !from.is_ascii() || to.needs_smtputf8();
        let to = match to.envelope() {
            Ok(wire) => wire,
            Err(e) => {
                return Outcome::Failed {
                    reply: format!(
                        "not sent: the address {:?} cannot be mailed: {e}",
                        to.as_str()
                    ),
                    bounce: false,
                };
            }
        };
        let to = to.as_str();
        let reused = self
            .idle
            .lock()
            .map(|mut v| v.pop())
            .unwrap_or(None)
            .filter(|c| c.since.elapsed() < IDLE_LIMIT);
        let was_reused = reused.is_some();
        let mut conn = match reused {
            Some(c) => c,
            None => match self.connect().await {
                Ok(c) => c,
                Err(f) => return outcome(f),
            },
        };
        let mut result = self.transaction(&mut conn, from, to, utf8, bytes).await;
        if was_reused && matches!(result, Err(Fail::Io(_))) {
            // The server closed an idle connection: once more on a new one.
            conn = match self.connect().await {
                Ok(c) => c,
                Err(f) => return outcome(f),
            };
            result = self.transaction(&mut conn, from, to, utf8, bytes).await;
        }
        match result {
            Ok(reply) => {
                self.checkin(conn);
                Outcome::Sent {
                    reply: reply.line(),
                }
            }
            Err(Fail::Unsendable(reply)) => {
                // Nothing was said on the connection: it is as good as before.
                self.checkin(conn);
                Outcome::Failed {
                    reply,
                    bounce: false,
                }
            }
            Err(Fail::Reply(r)) => {
                // The server answered: the connection is still good, unless it said 421.
                if r.code != 421 {
                    self.checkin(conn);
                }
                outcome(Fail::Reply(r))
            }
            Err(f) => outcome(f),
        }
    }

    fn checkin(&self, mut conn: Conn) {
        conn.since = Instant::now();
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(conn);
        }
    }

    /// QUIT on every idle connection: a courtesy, so a server slow to
    /// answer it gets [`QUIT_LIMIT`] for all of them.
    pub async fn close(&self) {
        let idle: Vec<Conn> = self
            .idle
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        let quit_all = async {
            for mut c in idle {
                if self.write(&mut c.stream, b"QUIT\r\n").await.is_ok() {
                    let _ = self.read_reply(&mut c.stream).await;
                }
            }
        };
        let _ = tokio::time::timeout(QUIT_LIMIT, quit_all).await;
    }
}

/// One reply, read within [`MAX_REPLY_LINE`] bytes a line and
/// [`MAX_REPLY_BYTES`] in all (the caller bounds its time).
async fn read_bounded_reply<R: AsyncBufRead + Unpin>(conn: &mut R) -> Result<Reply, Fail> {
    let mut text = Vec::new();
    let mut total = 0;
    let mut raw = Vec::with_capacity(128);
    loop {
        raw.clear();
        let n = (&mut *conn)
            .take(MAX_REPLY_LINE as u64)
            .read_until(b'\n', &mut raw)
            .await
            .map_err(|e| Fail::Io(format!("connection lost: {e}")))?;
        if n == 0 {
            return Err(Fail::Io("connection closed by the server".into()));
        }
        if raw.last() != Some(&b'\n') {
            return Err(if n >= MAX_REPLY_LINE {
                Fail::Bound(format!(
                    "a line of the server's reply exceeded {MAX_REPLY_LINE} bytes"
                ))
            } else {
                Fail::Io("connection closed by the server in the middle of a reply".into())
            });
        }
        total += n;
        if total > MAX_REPLY_BYTES {
            return Err(Fail::Bound(format!(
                "the server's reply exceeded {MAX_REPLY_BYTES} bytes"
            )));
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end();
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| Fail::Io(format!("not an SMTP reply: {line:?}")))?;
        text.push(line.get(4..).unwrap_or("").to_string());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(Reply {
                code,
                text: text.join(" "),
            });
        }
    }
}

/// Whether an EHLO reply lists `keyword` (an extension, or an AUTH mechanism).
fn offers(ehlo: &Reply, keyword: &str) -> bool {
    ehlo.text
        .split_whitespace()
        .any(|w| w.eq_ignore_ascii_case(keyword))
}

fn outcome(f: Fail) -> Outcome {
    match f {
        Fail::Unsendable(reply) => Outcome::Failed {
            reply,
            bounce: false,
        },
        Fail::Io(reply) | Fail::Bound(reply) => Outcome::Retry {
            reply,
            answered: false,
        },
        Fail::Reply(r) if r.code / 100 == 4 => Outcome::Retry {
            reply: r.line(),
            answered: true,
        },
        Fail::Reply(r) => {
            let bounce = is_bad_mailbox(&r.text);
            Outcome::Failed {
                reply: r.line(),
                bounce,
            }
        }
    }
}

/// RFC 5321 4.5.2: a line starting with "." gets another one. Borrowed
/// as-is when no line does (the usual case for quoted-printable bodies).
fn dot_stuff(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let needs = bytes.first() == Some(&b'.') || memchr::memmem::find(bytes, b"\n.").is_some();
    if !needs {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut at_line_start = true;
    for &b in bytes {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    std::borrow::Cow::Owned(out)
}

/// A (dot-stuffed) body followed by the end-of-data line.
fn with_end(body: std::borrow::Cow<'_, [u8]>) -> Vec<u8> {
    let end: &[u8] = if body.ends_with(b"\r\n") {
        b".\r\n"
    } else {
        b"\r\n.\r\n"
    };
    let mut out = body.into_owned();
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_data_follows_the_body_on_a_line_of_its_own() {
        assert_eq!(with_end(dot_stuff(b"a\r\n")), b"a\r\n.\r\n");
        assert_eq!(with_end(dot_stuff(b"a")), b"a\r\n.\r\n");
        assert_eq!(with_end(dot_stuff(b".a\r\n")), b"..a\r\n.\r\n");
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(&*dot_stuff(b"a\r\nb\r\n"), b"a\r\nb\r\n");
        assert!(matches!(
            dot_stuff(b"a\r\nb\r\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            &*dot_stuff(b".a\r\n.\r\nb.c\r\n..d\r\n"),
            b"..a\r\n..\r\nb.c\r\n...d\r\n"
        );
    }

    async fn reply_from(bytes: &[u8]) -> Result<Reply, Fail> {
        read_bounded_reply(&mut BufReader::new(bytes)).await
    }

    fn bound(r: Result<Reply, Fail>) -> String {
        match r {
            Err(Fail::Bound(why)) => why,
            Err(Fail::Io(why) | Fail::Unsendable(why)) => panic!("not a bound: {why}"),
            Err(Fail::Reply(r)) => panic!("not a bound but a reply: {}", r.line()),
            Ok(r) => panic!("not a bound but Ok: {}", r.line()),
        }
    }

    #[tokio::test]
    async fn a_multiline_reply_is_one_reply() {
        let r = reply_from(b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            .await
            .unwrap_or_else(|_| panic!("a good reply"));
        assert_eq!(r.code, 250);
        assert_eq!(r.text, "mx.example.org PIPELINING 8BITMIME");
        assert!(offers(&r, "pipelining") && !offers(&r, "STARTTLS"));
    }

    #[tokio::test]
    async fn endless_continuation_lines_stop_at_the_reply_bound() {
        let flood = b"250-still going\r\n".repeat(MAX_REPLY_BYTES / 8);
        let why = bound(reply_from(&flood).await);
        assert!(
            why.contains(&format!("exceeded {MAX_REPLY_BYTES} bytes")),
            "{why}"
        );
    }

    #[tokio::test]
    async fn a_line_without_end_stops_at_the_line_bound() {
        let mut long = b"250 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_REPLY_LINE * 4));
        long.extend(b"\r\n");
        let why = bound(reply_from(&long).await);
        assert!(
            why.contains(&format!("exceeded {MAX_REPLY_LINE} bytes")),
            "{why}"
        );
    }

    #[tokio::test]
    async fn a_reply_cut_short_is_a_lost_connection() {
        assert!(matches!(reply_from(b"250-a\r\n25").await, Err(Fail::Io(_))));
        assert!(matches!(reply_from(b"").await, Err(Fail::Io(_))));
    }

    #[test]
    fn replies_map_to_outcomes() {
        let r = |code, text: &str| {
            Fail::Reply(Reply {
                code,
                text: text.into(),
            })
        };
        assert!(matches!(
            outcome(r(450, "4.2.0 busy")),
            Outcome::Retry { answered: true, .. }
        ));
        assert!(matches!(
            outcome(r(550, "5.1.1 no such user")),
            Outcome::Failed { bounce: true, .. }
        ));
        assert!(matches!(
            outcome(r(554, "5.7.1 no")),
            Outcome::Failed { bounce: false, .. }
        ));
        assert!(matches!(
            outcome(Fail::Io("x".into())),
            Outcome::Retry {
                answered: false,
                ..
            }
        ));
    }

    /// A scripted server for one session on 127.0.0.1: greets, answers
    /// EHLO with `ehlo_lines` (after the host line), then for each command
    /// reads what the client sends (with BDAT, the chunk by its length;
    /// with DATA, up to the "." line) and answers from `replies` in order.
    /// Returns its port and, once the client hangs up, every byte it read
    /// after EHLO.
    async fn scripted(
        ehlo_lines: &'static [&'static str],
        replies: &'static [&'static str],
    ) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(tcp);
            let mut seen = Vec::new();
            let mut line = Vec::new();
            conn.get_mut()
                .write_all(b"220 script.test\r\n")
                .await
                .unwrap();
            conn.read_until(b'\n', &mut line).await.unwrap();
            let mut ehlo = String::from("250-script.test\r\n");
            for (i, l) in ehlo_lines.iter().enumerate() {
                let sep = if i + 1 == ehlo_lines.len() { ' ' } else { '-' };
                ehlo += &format!("250{sep}{l}\r\n");
            }
            conn.get_mut().write_all(ehlo.as_bytes()).await.unwrap();
            let mut replies = replies.iter();
            loop {
                line.clear();
                if conn.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    return seen;
                }
                seen.extend_from_slice(&line);
                let text = String::from_utf8_lossy(&line).to_string();
                if let Some(n) = text.strip_prefix("BDAT ") {
                    let n: usize = n.split_whitespace().next().unwrap().parse().unwrap();
                    let mut chunk = vec![0; n];
                    conn.read_exact(&mut chunk).await.unwrap();
                    seen.extend_from_slice(&chunk);
                } else if text == "QUIT\r\n" {
                    conn.get_mut().write_all(b"221 bye\r\n").await.unwrap();
                    return seen;
                }
                let reply = replies.next().copied().unwrap_or("250 ok");
                conn.get_mut()
                    .write_all(format!("{reply}\r\n").as_bytes())
                    .await
                    .unwrap();
                if text == "DATA\r\n" && reply.starts_with("354") {
                    loop {
                        line.clear();
                        conn.read_until(b'\n', &mut line).await.unwrap();
                        seen.extend_from_slice(&line);
                        if line == b".\r\n" {
                            break;
                        }
                    }
                    let reply = replies.next().copied().unwrap_or("250 ok");
                    conn.get_mut()
                        .write_all(format!("{reply}\r\n").as_bytes())
                        .await
                        .unwrap();
                }
            }
        });
        (port, task)
    }

    async fn send_one(port: u16, body: &[u8]) -> Outcome {
        let client = SmtpClient::new(
            "127.0.0.1",
            port,
            Security::None,
            None,
            1,
            Duration::from_secs(5),
        );
        let to = SubscriberEmail::parse("reader@example.org").unwrap();
        let outcome = client.send("news@example.org", &to, body).await;
        client.close().await;
        outcome
    }

    const BODY: &[u8] = b"Subject: x\r\n\r\n.NET and a dot line:\r\n.\r\nend\r\n";

    #[tokio::test]
    async fn with_chunking_the_whole_message_goes_in_one_write_as_it_is() {
        let (port, server) = scripted(
            &["PIPELINING", "CHUNKING"],
            &["250 2.1.0 ok", "250 2.1.5 ok", "250 2.0.0 queued as K1"],
        )
        .await;
        let outcome = send_one(port, BODY).await;
        assert!(
            matches!(&outcome, Outcome::Sent { reply } if reply == "250 2.0.0 queued as K1"),
            "{outcome:?}"
        );
        let mut want = format!(
            "MAIL FROM:<news@example.org>\r\nRCPT TO:<reader@example.org>\r\nBDAT {} LAST\r\n",
            BODY.len()
        )
        .into_bytes();
        // Not dot-stuffed: BDAT carries the bytes as they are.
        want.extend_from_slice(BODY);
        want.extend_from_slice(b"QUIT\r\n");
        assert_eq!(
            String::from_utf8_lossy(&server.await.unwrap()),
            String::from_utf8_lossy(&want)
        );
    }

    #[tokio::test]
    async fn a_message_without_a_final_line_end_gets_one_in_the_chunk() {
        let (port, server) = scripted(&["PIPELINING", "CHUNKING"], &[]).await;
        let outcome = send_one(port, b"Subject: x\r\n\r\nno end").await;
        assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
        let seen = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(
            seen.contains("BDAT 22 LAST\r\nSubject: x\r\n\r\nno end\r\nQUIT\r\n"),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_recipient_with_chunking_is_that_refusal_and_the_session_is_reset() {
        let (port, server) = scripted(
            &["PIPELINING", "CHUNKING"],
            &[
                "250 2.1.0 ok",
                "550 5.1.1 <reader@example.org>: no such user",
                "554 5.5.1 no valid recipients",
                "250 2.0.0 reset",
            ],
        )
        .await;
        let outcome = send_one(port, BODY).await;
        assert!(
            matches!(&outcome, Outcome::Failed { reply, bounce: true } if reply.starts_with("550 5.1.1")),
            "{outcome:?}"
        );
        let seen = String::from_utf8_lossy(&server.await.unwrap()).to_string();
        assert!(seen.ends_with("end\r\nRSET\r\nQUIT\r\n"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_refused_chunk_is_the_outcome() {
        let (port, _server) = scripted(
            &["PIPELINING", "CHUNKING"],
            &["250 ok", "250 ok", "452 4.3.1 insufficient storage"],
        )
        .await;
        let outcome = send_one(port, BODY).await;
        assert!(
            matches!(&outcome, Outcome::Retry { reply, answered: true } if reply.starts_with("452")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn without_chunking_data_is_used_and_the_body_dot_stuffed() {
        let (port, server) = scripted(&["PIPELINING"], &["250 ok", "250 ok", "354 go on"]).await;
        let outcome = send_one(port, BODY).await;
        assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
        let seen = String::from_utf8_lossy(&server.await.unwrap()).to_string();
        assert_eq!(
            seen,
            "MAIL FROM:<news@example.org>\r\nRCPT TO:<reader@example.org>\r\nDATA\r\n\
             Subject: x\r\n\r\n..NET and a dot line:\r\n..\r\nend\r\n.\r\nQUIT\r\n"
        );
    }
}
