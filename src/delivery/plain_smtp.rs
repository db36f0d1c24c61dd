//! A small SMTP client for plain connections (`mail.smtp.security = "none"`,
//! typically the local MTA that relays a big send).
//!
//! lettre re-scans every message byte by byte for dot-stuffing and sends each
//! command in its own round trip; at thousands of messages a second that was
//! most of gazette's CPU (measured with perf: `ClientCodec::encode` alone was
//! 22%). Here a message without a line starting with "." goes out as it is,
//! and MAIL, RCPT and DATA go in one write when the server offers PIPELINING
//! (RFC 2920). TLS connections keep using lettre.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::transport::Outcome;

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
    stream: BufReader<TcpStream>,
    pipelining: bool,
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
    /// Nothing was sent: the message cannot go over this connection (an
    /// address that needs SMTPUTF8, which the server does not offer). It
    /// would not go next time either, so the delivery fails.
    Unsendable(String),
}

pub struct PlainSmtp {
    host: String,
    port: u16,
    /// (user, password) for AUTH PLAIN.
    auth: Option<(String, String)>,
    hello: String,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Conn>>,
}

const IDLE_LIMIT: Duration = Duration::from_secs(30);

impl PlainSmtp {
    pub fn new(
        host: &str,
        port: u16,
        auth: Option<(String, String)>,
        max_idle: usize,
    ) -> PlainSmtp {
        let hello = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        PlainSmtp {
            host: host.to_string(),
            port,
            auth,
            hello,
            timeout: Duration::from_secs(30),
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn read_reply(&self, conn: &mut BufReader<TcpStream>) -> Result<Reply, Fail> {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.timeout, conn.read_line(&mut line))
                .await
                .map_err(|_| Fail::Io("timed out waiting for the server".into()))?
                .map_err(|e| Fail::Io(format!("connection lost: {e}")))?;
            if n == 0 {
                return Err(Fail::Io("connection closed by the server".into()));
            }
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

    async fn expect(
        &self,
        conn: &mut BufReader<TcpStream>,
        ok: impl Fn(u16) -> bool,
    ) -> Result<Reply, Fail> {
        let r = self.read_reply(conn).await?;
        if ok(r.code) {
            Ok(r)
        } else {
            Err(Fail::Reply(r))
        }
    }

    async fn write(&self, conn: &mut BufReader<TcpStream>, bytes: &[u8]) -> Result<(), Fail> {
        tokio::time::timeout(self.timeout, conn.get_mut().write_all(bytes))
            .await
            .map_err(|_| Fail::Io("timed out writing to the server".into()))?
            .map_err(|e| Fail::Io(format!("connection lost: {e}")))
    }

    /// A refusal while setting up (greeting, EHLO, AUTH) is not about any
    /// recipient: it is reported like no answer, so the run stops and every
    /// message stays queued instead of failing one by one.
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
        let stream = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| {
            Fail::Io(format!(
                "cannot connect to {}:{}: timed out",
                self.host, self.port
            ))
        })?
        .map_err(|e| {
            Fail::Io(format!(
                "cannot connect to {}:{}: {e}",
                self.host, self.port
            ))
        })?;
        // See smtp_pool.rs: without this, small writes wait for delayed ACKs.
        let _ = stream.set_nodelay(true);
        let mut conn = BufReader::new(stream);
        self.expect(&mut conn, |c| c == 220).await?;
        self.write(&mut conn, format!("EHLO {}\r\n", self.hello).as_bytes())
            .await?;
        let ehlo = self.expect(&mut conn, |c| c == 250).await?;
        let offers = |ext: &str| {
            ehlo.text
                .split_whitespace()
                .any(|w| w.eq_ignore_ascii_case(ext))
        };
        let pipelining = offers("PIPELINING");
        let smtputf8 = offers("SMTPUTF8");
        if let Some((user, password)) = &self.auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            self.write(&mut conn, format!("AUTH PLAIN {token}\r\n").as_bytes())
                .await?;
            self.expect(&mut conn, |c| c == 235).await?;
        }
        Ok(Conn {
            stream: conn,
            pipelining,
            smtputf8,
            since: Instant::now(),
        })
    }

    async fn transaction(
        &self,
        conn: &mut Conn,
        from: &str,
        to: &str,
        bytes: &[u8],
    ) -> Result<Reply, Fail> {
        // The domain is already IDNA (ASCII); only a Unicode local part
        // makes an address non-ASCII, and that needs SMTPUTF8 (RFC 6531 3.4).
        let utf8 = !(from.is_ascii() && to.is_ascii());
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
        let body = dot_stuff(bytes);
        self.write(s, &body).await?;
        let end: &[u8] = if body.ends_with(b"\r\n") {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        };
        self.write(s, end).await?;
        let r = self.read_reply(s).await?;
        if r.code / 100 == 2 {
            Ok(r)
        } else {
            Err(Fail::Reply(r))
        }
    }

    /// Send one message; the outcome as the ledger wants it.
    pub async fn send(&self, from: &str, to: &str, bytes: &[u8]) -> Outcome {
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
        let mut result = self.transaction(&mut conn, from, to, bytes).await;
        if was_reused && matches!(result, Err(Fail::Io(_))) {
            // The server closed an idle connection: once more on a new one.
            conn = match self.connect().await {
                Ok(c) => c,
                Err(f) => return outcome(f),
            };
            result = self.transaction(&mut conn, from, to, bytes).await;
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

    pub async fn close(&self) {
        let idle: Vec<Conn> = self
            .idle
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for mut c in idle {
            if self.write(&mut c.stream, b"QUIT\r\n").await.is_ok() {
                let _ = self.read_reply(&mut c.stream).await;
            }
        }
    }
}

fn outcome(f: Fail) -> Outcome {
    match f {
        Fail::Unsendable(reply) => Outcome::Failed {
            reply,
            bounce: false,
        },
        Fail::Io(reply) => Outcome::Retry {
            reply,
            answered: false,
        },
        Fail::Reply(r) if r.code / 100 == 4 => Outcome::Retry {
            reply: r.line(),
            answered: true,
        },
        Fail::Reply(r) => {
            let bounce = r
                .text
                .split_whitespace()
                .any(|w| w.starts_with("5.1.") && w.len() > 4);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
