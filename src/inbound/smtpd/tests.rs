//! The server over real TCP on 127.0.0.1, with a recording inbox.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

/// How long any one expected thing may take before the test fails (a
/// bound for liveness, not a measure of speed).
const PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Take,
    Temporary,
    Rejected,
    /// Never answers.
    Hang,
}

/// Takes `…@example.org` except `unknown…`; panics on `panic@example.org`.
struct Recorder {
    delivered: Mutex<Vec<Envelope>>,
    answer: Mutex<Answer>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            delivered: Mutex::new(Vec::new()),
            answer: Mutex::new(Answer::Take),
        }
    }

    fn answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    fn delivered(&self) -> Vec<Envelope> {
        self.delivered.lock().unwrap().clone()
    }
}

impl Inbox for Recorder {
    fn recipient(&self, address: &str) -> Rcpt {
        if address == "panic@example.org" {
            panic!("a recipient check that panics");
        }
        if address.ends_with("@example.org") && !address.starts_with("unknown") {
            Rcpt::Accept
        } else {
            Rcpt::Refuse
        }
    }

    fn deliver(&self, envelope: Envelope) -> impl Future<Output = Result<(), DeliverError>> + Send {
        let answer = *self.answer.lock().unwrap();
        async move {
            match answer {
                Answer::Take => {
                    self.delivered.lock().unwrap().push(envelope);
                    Ok(())
                }
                Answer::Temporary => Err(DeliverError::Temporary(
                    "database busy,\r\ntry later".into(),
                )),
                Answer::Rejected => Err(DeliverError::Rejected("not for us".into())),
                Answer::Hang => std::future::pending().await,
            }
        }
    }
}

fn limits() -> Limits {
    Limits {
        max_message_bytes: 64 * 1024,
        session_timeout: Duration::from_secs(30),
        command_timeout: Duration::from_secs(10),
        max_sessions: 8,
        max_recipients: 5,
    }
}

struct Server {
    addr: SocketAddr,
    inbox: Arc<Recorder>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: Limits) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inbox = Arc::new(Recorder::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            inbox.clone(),
            limits,
            "mx.example.org".into(),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            inbox,
            stop: Some(stop),
            task,
        }
    }

    async fn client(&self) -> Client {
        let mut c = Client::connect(self.addr).await;
        let greeting = c.reply().await;
        assert_eq!(greeting, "220 mx.example.org ESMTP gazette");
        c
    }

    /// Stop the server and wait until `serve` returns.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE + STOP_GRACE, &mut self.task)
            .await
            .expect("serve returns after the stop")
            .unwrap()
            .unwrap();
    }
}

struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (r, w) = tcp.into_split();
        Client {
            r: BufReader::new(r),
            w,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.unwrap();
    }

    /// One whole reply, its lines joined with '\n'.
    async fn reply(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.reply_now())
            .await
            .expect("a reply in time")
    }

    async fn reply_now(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.r.read_until(b'\n', &mut line).await.unwrap();
            assert!(n > 0, "connection closed; reply so far: {lines:?}");
            assert!(
                line.ends_with(b"\r\n"),
                "a reply line ends in CRLF: {line:?}"
            );
            let line = String::from_utf8(line).unwrap();
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) == Some(&b' ') || line.len() == 3;
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// The server closed the connection (after whatever it still said).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(PATIENCE, self.r.read_to_end(&mut rest)).await {
            Ok(Ok(_)) => rest.is_empty(),
            Ok(Err(e)) => panic!("connection failed instead of closing: {e}"),
            Err(_) => false,
        }
    }

    async fn hello(&mut self) {
        let r = self.cmd("EHLO client.example.net").await;
        assert!(r.starts_with("250-mx.example.org\n"), "{r}");
    }

    /// MAIL, RCPT, DATA with `body` (already dot-stuffed, with its end).
    async fn transaction(&mut self, from: &str, to: &[&str], body: &[u8]) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert!(r.starts_with("250 2.1.0"), "{r}");
        for to in to {
            let r = self.cmd(&format!("RCPT TO:<{to}>")).await;
            assert!(r.starts_with("250 2.1.5"), "{r}");
        }
        let r = self.cmd("DATA").await;
        assert!(r.starts_with("354 "), "{r}");
        self.send(body).await;
        self.reply().await
    }
}

/// A bounce as an MTA writes it (a short DSN, our own words).
const BOUNCE: &[u8] = b"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
To: bounces+t1@example.org\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
The message could not be delivered.\r\n\
--b1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; reader@example.com\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
--b1--\r\n";

fn with_end(body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    b.extend_from_slice(b".\r\n");
    b
}

#[tokio::test]
async fn a_full_session() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    let ehlo = c.cmd("EHLO relay.example.net").await;
    let lines: Vec<&str> = ehlo.lines().collect();
    assert_eq!(
        lines,
        [
            "250-mx.example.org",
            "250-PIPELINING",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250-SIZE 65536",
            "250 ENHANCEDSTATUSCODES"
        ]
    );
    let r = c
        .transaction("", &["bounces+t1@example.org"], &with_end(BOUNCE))
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    assert_eq!(
        c.cmd("QUIT").await,
        "221 2.0.0 mx.example.org closing connection"
    );
    assert!(c.closed().await);
    let got = server.inbox.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "");
    assert_eq!(got[0].recipients, ["bounces+t1@example.org"]);
    assert_eq!(got[0].data, BOUNCE);
    assert!(got[0].peer.ip().is_loopback());
    server.stop().await;
}

#[tokio::test]
async fn helo_sessions_and_several_messages_with_many_recipients() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    assert_eq!(c.cmd("HELO relay.example.net").await, "250 mx.example.org");
    let to = [
        "a@example.org",
        "b@example.org",
        "c@example.org",
        "d@example.org",
        "e@example.org",
    ];
    assert!(
        c.cmd("MAIL FROM:<sender@example.net>")
            .await
            .starts_with("250")
    );
    for t in to {
        assert!(
            c.cmd(&format!("RCPT TO:<{t}>"))
                .await
                .starts_with("250 2.1.5")
        );
    }
    assert_eq!(
        c.cmd("RCPT TO:<f@example.org>").await,
        "452 4.5.3 too many recipients"
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: one\r\n\r\nhi\r\n.\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 message accepted");
    // The same recipient twice is one recipient.
    let r = c
        .transaction(
            "sender@example.net",
            &["a@example.org", "a@example.org"],
            b"Subject: two\r\n\r\n.\r\n",
        )
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    let got = server.inbox.delivered();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].recipients, to);
    assert_eq!(got[0].mail_from, "sender@example.net");
    assert_eq!(got[1].recipients, ["a@example.org"]);
    assert_eq!(got[1].data, b"Subject: two\r\n\r\n");
    server.stop().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    c.send(
        b"EHLO relay.example.net\r\nMAIL FROM:<> SIZE=200 BODY=8BITMIME\r\n\
          RCPT TO:<bounces+x@example.org>\r\nRCPT TO:<unknown@example.org>\r\n\
          RCPT TO:<unsubscribe@example.org>\r\nDATA\r\n",
    )
    .await;
    assert!(c.reply().await.ends_with("250 ENHANCEDSTATUSCODES"));
    assert_eq!(c.reply().await, "250 2.1.0 sender OK");
    assert_eq!(c.reply().await, "250 2.1.5 recipient OK");
    assert_eq!(c.reply().await, "550 5.1.1 mailbox unknown");
    assert_eq!(c.reply().await, "250 2.1.5 recipient OK");
    assert!(c.reply().await.starts_with("354 "));
    // After the final dot, the next transaction in the same write.
    c.send(
        b"Subject: first\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@example.net>\r\n\
          RCPT TO:<x@example.org>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(c.reply().await, "250 2.0.0 message accepted");
    assert_eq!(c.reply().await, "250 2.1.0 sender OK");
    assert_eq!(c.reply().await, "250 2.1.5 recipient OK");
    assert!(c.reply().await.starts_with("354 "));
    c.send(b".\r\nRSET\r\nNOOP\r\nQUIT\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 message accepted");
    assert_eq!(c.reply().await, "250 2.0.0 OK");
    assert_eq!(c.reply().await, "250 2.0.0 OK");
    assert!(c.reply().await.starts_with("221 2.0.0"));
    assert!(c.closed().await);
    let got = server.inbox.delivered();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].recipients,
        ["bounces+x@example.org", "unsubscribe@example.org"]
    );
    assert_eq!(got[0].data, b"Subject: first\r\n\r\nbody\r\n");
    assert_eq!(got[1].mail_from, "a@example.net");
    assert!(got[1].data.is_empty());
    server.stop().await;
}

/// Write `bytes` one at a time, each in its own segment (TCP_NODELAY and a
/// pause), so that the server sees every boundary.
async fn trickle(c: &mut Client, bytes: &[u8]) {
    for b in bytes {
        c.send(&[*b]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_session_in_one_byte_writes() {
    let server = Server::start(limits()).await;
    let mut c = Client::connect(server.addr).await;
    assert!(c.reply().await.starts_with("220 "));
    trickle(&mut c, b"EHLO relay.example.net\r\n").await;
    assert!(c.reply().await.ends_with("250 ENHANCEDSTATUSCODES"));
    trickle(&mut c, b"MAIL FROM:<>\r\n").await;
    assert_eq!(c.reply().await, "250 2.1.0 sender OK");
    trickle(&mut c, b"RCPT TO:<bounces+t2@example.org>\r\n").await;
    assert_eq!(c.reply().await, "250 2.1.5 recipient OK");
    trickle(&mut c, b"DATA\r\n").await;
    assert!(c.reply().await.starts_with("354 "));
    let body = b"Subject: slow\r\n\r\n..dot\r\n.\r\r\nlast\r\n";
    trickle(&mut c, body).await;
    trickle(&mut c, b".\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 message accepted");
    trickle(&mut c, b"QUIT\r\n").await;
    assert!(c.reply().await.starts_with("221 "));
    let got = server.inbox.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"Subject: slow\r\n\r\n.dot\r\n\r\r\nlast\r\n");
    server.stop().await;
}

#[tokio::test]
async fn dot_stuffed_lines_and_bare_line_feeds() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    c.hello().await;
    let r = c
        .transaction(
            "",
            &["bounces+t3@example.org"],
            b"Subject: dots\r\n\r\n..\r\n...\r\n..leading\r\nmid.dle\r\n.\r\n",
        )
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    let r = c
        .transaction(
            "",
            &["bounces+t4@example.org"],
            b"Subject: lf\n\n..x\ny\n.\n",
        )
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    let got = server.inbox.delivered();
    assert_eq!(
        got[0].data,
        b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmid.dle\r\n"
    );
    assert_eq!(got[1].data, b"Subject: lf\n\n.x\ny\n");
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_message_is_refused_and_the_session_goes_on() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    c.hello().await;
    // Five times the limit, without SIZE: refused after its dot.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() < 5 * 64 * 1024 {
        big.extend_from_slice(&[b'x'; 98]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b".\r\n");
    let r = c.transaction("", &["bounces+big@example.org"], &big).await;
    assert_eq!(r, "552 5.3.4 message too big (the limit is 65536 bytes)");
    let r = c
        .transaction(
            "",
            &["bounces+small@example.org"],
            b"Subject: small\r\n\r\n.\r\n",
        )
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    let got = server.inbox.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients, ["bounces+small@example.org"]);
    server.stop().await;
}

#[tokio::test]
async fn a_size_over_the_limit_is_refused_at_mail() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    c.hello().await;
    assert_eq!(
        c.cmd("MAIL FROM:<> SIZE=65537").await,
        "552 5.3.4 message too big (the limit is 65536 bytes)"
    );
    // No transaction was opened.
    assert_eq!(
        c.cmd("RCPT TO:<a@example.org>").await,
        "503 5.5.1 send MAIL first"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<> SIZE=x").await,
        "501 5.5.4 bad SIZE parameter"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<> SIZE=65536").await,
        "250 2.1.0 sender OK"
    );
    server.stop().await;
}

#[tokio::test]
async fn refused_recipients_and_commands_out_of_order() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    assert_eq!(
        c.cmd("MAIL FROM:<>").await,
        "503 5.5.1 send EHLO or HELO first"
    );
    c.hello().await;
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 send MAIL first");
    assert_eq!(
        c.cmd("RCPT TO:<a@example.org>").await,
        "503 5.5.1 send MAIL first"
    );
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    assert_eq!(
        c.cmd("MAIL FROM:<>").await,
        "503 5.5.1 a transaction is open; send RSET first"
    );
    assert_eq!(
        c.cmd("RCPT TO:<someone@example.net>").await,
        "550 5.1.1 mailbox unknown"
    );
    assert_eq!(
        c.cmd("RCPT TO:<unknown@example.org>").await,
        "550 5.1.1 mailbox unknown"
    );
    assert_eq!(c.cmd("DATA").await, "554 5.5.1 no valid recipients");
    assert_eq!(
        c.cmd("RCPT TO:<no brackets@example.org>").await,
        "501 5.1.3 bad recipient address syntax"
    );
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 OK");
    assert_eq!(
        c.cmd("RCPT TO:<a@example.org>").await,
        "503 5.5.1 send MAIL first"
    );
    assert!(server.inbox.delivered().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_small_commands() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    assert!(c.cmd("VRFY reader").await.starts_with("252 2.5.0 "));
    assert!(c.cmd("HELP").await.starts_with("214 2.0.0 commands:"));
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(c.cmd("STARTTLS").await, "502 5.5.1 command not implemented");
    assert_eq!(
        c.cmd("AUTH PLAIN AHVzZXIAcGFzcw==").await,
        "502 5.5.1 command not implemented"
    );
    assert_eq!(c.cmd("XYZZY").await, "500 5.5.2 command not recognized");
    assert_eq!(c.cmd("EHLO").await, "501 5.5.4 syntax: EHLO hostname");
    server.stop().await;
}

#[tokio::test]
async fn ten_bad_commands_end_the_session() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    for _ in 0..MAX_ERRORS - 1 {
        assert!(c.cmd("BOGUS").await.starts_with("500 "));
    }
    // Good commands in between do not reset the count.
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
    c.send(b"BOGUS\r\n").await;
    assert_eq!(c.reply().await, "500 5.5.2 command not recognized");
    assert_eq!(
        c.reply().await,
        "421 4.7.0 mx.example.org too many errors, closing"
    );
    assert!(c.closed().await);
    server.stop().await;
}

/// Deterministic bytes of every value (xorshift), line feeds included.
fn garbage(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_ends_that_session_only() {
    let server = Server::start(limits()).await;
    let c = server.client().await;
    let Client { mut r, mut w } = c;
    let writer = tokio::spawn(async move {
        // The server may close while this is still writing.
        let _ = w.write_all(&garbage(256 * 1024)).await;
        let _ = w.shutdown().await;
    });
    let mut all = Vec::new();
    tokio::time::timeout(PATIENCE, r.read_to_end(&mut all))
        .await
        .expect("the server closes the session")
        .unwrap();
    let text = String::from_utf8(all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), MAX_ERRORS as usize + 1, "{text}");
    assert!(
        lines[..MAX_ERRORS as usize]
            .iter()
            .all(|l| l.starts_with("500 5.5.2")),
        "{text}"
    );
    assert_eq!(
        lines[MAX_ERRORS as usize],
        "421 4.7.0 mx.example.org too many errors, closing"
    );
    writer.await.unwrap();
    // The server goes on.
    let mut c = server.client().await;
    c.hello().await;
    let r = c
        .transaction(
            "",
            &["bounces+t5@example.org"],
            b"Subject: after\r\n\r\n.\r\n",
        )
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    server.stop().await;
}

#[tokio::test]
async fn long_lines_are_refused_and_dropped() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    let mut long = b"NOOP ".to_vec();
    long.extend(std::iter::repeat_n(b'A', 5000));
    long.extend(b"\r\n");
    c.send(&long).await;
    assert_eq!(c.reply().await, "500 5.5.2 line too long");
    // A megabyte without a line end, then one: one bad line.
    let mega = vec![b'B'; 1024 * 1024];
    c.send(&mega).await;
    c.send(b"\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await, "500 5.5.2 line too long");
    assert_eq!(c.reply().await, "250 2.0.0 OK");
    // A line just at the bound is fine.
    let at_bound = format!("NOOP {}\r\n", "c".repeat(conn::MAX_LINE - 7));
    assert_eq!(at_bound.len(), conn::MAX_LINE);
    c.send(at_bound.as_bytes()).await;
    assert_eq!(c.reply().await, "250 2.0.0 OK");
    server.stop().await;
}

#[tokio::test]
async fn sessions_past_the_limit_are_told_to_come_back() {
    let server = Server::start(Limits {
        max_sessions: 2,
        ..limits()
    })
    .await;
    let mut first = server.client().await;
    let _second = server.client().await;
    let mut third = Client::connect(server.addr).await;
    assert_eq!(
        third.reply().await,
        "421 4.3.2 mx.example.org too many sessions, try again later"
    );
    assert!(third.closed().await);
    assert!(first.cmd("QUIT").await.starts_with("221"));
    assert!(first.closed().await);
    drop(first);
    // The place is free once the first session has ended.
    let again = async {
        loop {
            let mut c = Client::connect(server.addr).await;
            if c.reply().await.starts_with("220 ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, again)
        .await
        .expect("a place frees up");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_client_is_told_and_closed() {
    let server = Server::start(Limits {
        command_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    let mut c = server.client().await;
    assert_eq!(
        c.reply().await,
        "421 4.4.2 mx.example.org idle too long, closing"
    );
    assert!(c.closed().await);
    // Idle in the middle of a message: nothing is delivered.
    let mut c = server.client().await;
    c.hello().await;
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<a@example.org>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: half\r\n").await;
    assert_eq!(
        c.reply().await,
        "421 4.4.2 mx.example.org idle too long, closing"
    );
    assert!(c.closed().await);
    assert!(server.inbox.delivered().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_session_ends_at_its_time_limit_however_busy() {
    let server = Server::start(Limits {
        session_timeout: Duration::from_millis(400),
        ..limits()
    })
    .await;
    let mut c = server.client().await;
    let busy = async {
        loop {
            let r = c.cmd("NOOP").await;
            if r.starts_with("421") {
                return r;
            }
            assert_eq!(r, "250 2.0.0 OK");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let r = tokio::time::timeout(PATIENCE, busy)
        .await
        .expect("the session ends");
    assert_eq!(
        r,
        "421 4.4.2 mx.example.org session time limit reached, closing"
    );
    assert!(c.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn an_inbox_that_never_answers_is_bounded_by_the_session_limit() {
    let server = Server::start(Limits {
        session_timeout: Duration::from_millis(500),
        ..limits()
    })
    .await;
    server.inbox.answer(Answer::Hang);
    let mut c = server.client().await;
    c.hello().await;
    let r = c
        .transaction("", &["bounces+t6@example.org"], b"Subject: x\r\n\r\n.\r\n")
        .await;
    assert_eq!(
        r,
        "421 4.4.2 mx.example.org session time limit reached, closing"
    );
    assert!(c.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn inbox_errors_become_replies() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    c.hello().await;
    server.inbox.answer(Answer::Temporary);
    let r = c
        .transaction("", &["bounces+t7@example.org"], b"Subject: x\r\n\r\n.\r\n")
        .await;
    assert_eq!(r, "451 4.3.0 database busy,  try later");
    server.inbox.answer(Answer::Rejected);
    let r = c
        .transaction("", &["bounces+t7@example.org"], b"Subject: x\r\n\r\n.\r\n")
        .await;
    assert_eq!(r, "554 5.6.0 not for us");
    server.inbox.answer(Answer::Take);
    let r = c
        .transaction("", &["bounces+t7@example.org"], b"Subject: x\r\n\r\n.\r\n")
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    assert_eq!(server.inbox.delivered().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_session_leaves_the_server_running() {
    let server = Server::start(limits()).await;
    let mut c = server.client().await;
    c.hello().await;
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    c.send(b"RCPT TO:<panic@example.org>\r\n").await;
    assert!(c.closed().await, "the panicking session is gone");
    let mut c = server.client().await;
    c.hello().await;
    let r = c
        .transaction("", &["bounces+t8@example.org"], b"Subject: x\r\n\r\n.\r\n")
        .await;
    assert_eq!(r, "250 2.0.0 message accepted");
    server.stop().await;
}

#[tokio::test]
async fn a_stop_tells_idle_sessions_and_closes_the_listener() {
    let server = Server::start(limits()).await;
    let addr = server.addr;
    let mut c = server.client().await;
    c.hello().await;
    server.stop().await;
    assert_eq!(c.reply().await, "421 4.3.2 mx.example.org shutting down");
    assert!(c.closed().await);
    assert!(TcpStream::connect(addr).await.is_err(), "nobody listens");
}

#[tokio::test]
async fn a_stop_lets_a_message_in_progress_finish() {
    let mut server = Server::start(limits()).await;
    let mut c = server.client().await;
    c.hello().await;
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<bounces+t9@example.org>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: in flight\r\n\r\nfirst half\r\n").await;
    let _ = server.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.send(b"second half\r\n.\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 message accepted");
    assert_eq!(c.reply().await, "421 4.3.2 mx.example.org shutting down");
    assert!(c.closed().await);
    tokio::time::timeout(PATIENCE, &mut server.task)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
    let got = server.inbox.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].data,
        b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"
    );
}

#[test]
fn host_names_cannot_forge_reply_lines() {
    assert_eq!(safe_hostname("mx.example.org"), "mx.example.org");
    assert_eq!(
        safe_hostname("mx.example.org\r\n250 x"),
        "mx.example.org250x"
    );
    assert_eq!(safe_hostname(" \t"), "localhost");
}

#[test]
fn an_envelope_in_a_log_line_shows_no_body() {
    let e = Envelope {
        mail_from: String::new(),
        recipients: vec!["bounces+t@example.org".into()],
        data: b"Subject: private\r\n\r\nDear reader\r\n".to_vec(),
        peer: "127.0.0.1:2525".parse().unwrap(),
    };
    let shown = format!("{e:?}");
    assert!(
        shown.contains("<33 bytes>") && shown.contains("bounces+t@example.org"),
        "{shown}"
    );
    assert!(
        !shown.contains("private") && !shown.contains("83, 117"),
        "{shown}"
    );
}
