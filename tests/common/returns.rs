//! Returned mail for the inbound tests and bench: messages shaped as the
//! common MTAs and mailbox providers write them (built here, with the real
//! VERP address and Message-ID of a delivery), and a small SMTP client that
//! hands them to gazette's listener the way an MTA would, with every reply
//! kept. Stands alone (no other harness code) so that benches/ can include
//! it with `#[path]`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What a return quotes of our message: to whom it went, its envelope
/// sender (VERP) and its Message-ID.
#[derive(Debug, Clone)]
pub struct Original<'a> {
    pub rcpt: &'a str,
    pub verp: &'a str,
    pub message_id: &'a str,
}

/// Postfix's DSN (RFC 3464), delivered to `to`: `action` "failed" or "delayed".
pub fn postfix_dsn(
    to: &str,
    s: &Original<'_>,
    action: &str,
    status: &str,
    diagnostic: &str,
) -> String {
    let boundary = "B4C1D2E3F4.1764673200/relay.example.net";
    let (subject, intro) = if action == "failed" {
        (
            "Undelivered Mail Returned to Sender",
            "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.",
        )
    } else {
        (
            "Delayed Mail (still being retried)",
            "This is just a warning: your message has not yet been delivered.\r\nThe mail system will keep trying.",
        )
    };
    format!(
        "Return-Path: <>\r\nDelivered-To: {to}\r\nReceived: by relay.example.net (Postfix)\r\n\tid B4C1D2E3F4; Tue,  1 Dec 2026 10:00:00 +0000 (UTC)\r\n\
Date: Tue,  1 Dec 2026 10:00:00 +0000 (UTC)\r\nFrom: MAILER-DAEMON@relay.example.net (Mail Delivery System)\r\n\
Subject: {subject}\r\nTo: {to}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
Content-Transfer-Encoding: 8bit\r\nMessage-Id: <20261201100000.B4C1D2E3F4@relay.example.net>\r\n\r\n\
This is a MIME-encapsulated message.\r\n\r\n--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
This is the mail system at host relay.example.net.\r\n\r\n{intro}\r\n\r\n<{rcpt}>: host mx.example.org[192.0.2.25] said: {diagnostic}\r\n\r\n\
--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; relay.example.net\r\nX-Postfix-Queue-ID: B4C1D2E3F4\r\nX-Postfix-Sender: rfc822; {verp}\r\nArrival-Date: Tue,  1 Dec 2026 09:59:58 +0000 (UTC)\r\n\r\n\
Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\nAction: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.org\r\n\
Diagnostic-Code: smtp; {diagnostic}\r\n\r\n--{boundary}\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n\
Return-Path: <{verp}>\r\nFrom: The Test Ledger <ledger@example.org>\r\nTo: {rcpt}\r\nSubject: The issue\r\nMessage-ID: {mid}\r\n\r\n--{boundary}--\r\n",
        rcpt = s.rcpt,
        verp = s.verp,
        mid = s.message_id,
    )
}

/// An ARF complaint (RFC 5965) as a mailbox provider's feedback loop sends it.
pub fn arf(to: &str, s: &Original<'_>) -> String {
    let b = "----=_arf_7d1c";
    format!(
        "Delivered-To: {to}\r\nFrom: Feedback Loop <fbl@mail.example.net>\r\nTo: {to}\r\nSubject: Complaint about your message\r\n\
Date: Tue, 1 Dec 2026 11:00:00 +0000\r\nMessage-ID: <fbl.1@mail.example.net>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"{b}\"\r\n\r\n--{b}\r\n\
Content-Type: text/plain; charset=\"US-ASCII\"\r\n\r\nThis is an email abuse report for a message received from IP 192.0.2.1.\r\n\r\n--{b}\r\n\
Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ExampleFBL/2.0\r\nVersion: 1\r\nOriginal-Mail-From: <{verp}>\r\n\
Arrival-Date: Tue, 1 Dec 2026 10:30:00 +0000\r\nSource-IP: 192.0.2.1\r\nReported-Domain: example.org\r\n\r\n--{b}\r\n\
Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nReturn-Path: <{verp}>\r\nFrom: The Test Ledger <ledger@example.org>\r\n\
To: redacted@mail.example.net\r\nSubject: The issue\r\nMessage-ID: {mid}\r\n\r\nThe digest body.\r\n\r\n--{b}--\r\n",
        verp = s.verp,
        mid = s.message_id,
    )
}

/// A reader's mail client answering the List-Unsubscribe mailto.
pub fn unsubscribe_mail(to: &str, from: &str, subject: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Tue, 1 Dec 2026 12:00:00 +0000\r\n\
Message-ID: <u.{n}@mail.example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThis message was sent to unsubscribe.\r\n",
        n = subject.len()
    )
}

/// An out-of-office reply (RFC 3834).
pub fn out_of_office(to: &str, from: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: Automatic reply: The issue\r\nAuto-Submitted: auto-replied\r\n\
Date: Tue, 1 Dec 2026 12:00:00 +0000\r\nMessage-ID: <ooo.1@mail.example.net>\r\n\r\nI am away until Monday.\r\n"
    )
}

/// A client session with gazette's listener; every reply is kept.
pub struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    pub fn connect(port: u16) -> (Session, String) {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the listener");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let mut s = Session {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        };
        let greeting = s.reply();
        (s, greeting)
    }

    /// One whole reply (all its lines), or "" when the connection closed.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub fn command(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        self.reply()
    }

    /// DATA, the message (dot-stuffed), the final dot, in writes of `chunk`
    /// bytes; the reply to the end of data.
    pub fn data(&mut self, message: &[u8], chunk: usize) -> String {
        let go = self.command("DATA");
        if !go.starts_with("354") {
            return go;
        }
        let mut body = Vec::with_capacity(message.len() + 16);
        let mut at_line_start = true;
        for &b in message {
            if at_line_start && b == b'.' {
                body.push(b'.');
            }
            body.push(b);
            at_line_start = b == b'\n';
        }
        if !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        for piece in body.chunks(chunk.max(1)) {
            if self.writer.write_all(piece).is_err() {
                break;
            }
        }
        self.reply()
    }
}

/// A whole transaction: EHLO, MAIL FROM:<>, RCPT TO each of `to`, DATA.
/// Returns the replies to RCPT (one per address) and to the data.
pub fn deliver(port: u16, to: &[&str], message: &[u8]) -> (Vec<String>, String) {
    let (mut s, greeting) = Session::connect(port);
    assert!(greeting.starts_with("220"), "greeting: {greeting}");
    let ehlo = s.command("EHLO relay.example.net");
    assert!(ehlo.starts_with("250"), "EHLO: {ehlo}");
    let mail = s.command("MAIL FROM:<>");
    assert!(mail.starts_with("250"), "MAIL FROM: {mail}");
    let rcpts: Vec<String> = to
        .iter()
        .map(|r| s.command(&format!("RCPT TO:<{r}>")))
        .collect();
    let data = if rcpts.iter().any(|r| r.starts_with("250")) {
        s.data(message, 64 * 1024)
    } else {
        String::new()
    };
    s.command("QUIT");
    (rcpts, data)
}
