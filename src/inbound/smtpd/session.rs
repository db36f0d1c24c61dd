//! One SMTP session: the state machine of RFC 5321 (greeting, hello, mail
//! transactions, quit) over a [`Conn`].

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::command::{self, Command, Reply};
use super::conn::{Conn, End, Line, StopSignal, after};
use super::{DeliverError, Envelope, Inbox, MAX_ERRORS, Rcpt, Shared};

const NEED_HELLO: Reply = Reply::new(503, "5.5.1", "send EHLO or HELO first");
const NEED_MAIL: Reply = Reply::new(503, "5.5.1", "send MAIL first");
const NESTED_MAIL: Reply = Reply::new(503, "5.5.1", "a transaction is open; send RSET first");
const NO_RECIPIENTS: Reply = Reply::new(554, "5.5.1", "no valid recipients");
const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, "4.5.3", "too many recipients");
const UNKNOWN_MAILBOX: Reply = Reply::new(550, "5.1.1", "mailbox unknown");
const OK: Reply = Reply::new(250, "2.0.0", "OK");
const SENDER_OK: Reply = Reply::new(250, "2.1.0", "sender OK");
const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5", "recipient OK");
const ACCEPTED: Reply = Reply::new(250, "2.0.0", "message accepted");
const GO_AHEAD: Reply = Reply::new(354, "", "end data with <CR><LF>.<CR><LF>");
const VRFY: Reply = Reply::new(
    252,
    "2.5.0",
    "cannot VRFY user, but will take mail for it if it is ours",
);
const HELP: Reply = Reply::new(
    214,
    "2.0.0",
    "commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
);

/// One mail transaction: from MAIL to the end of DATA (or RSET).
struct Transaction {
    from: String,
    recipients: Vec<String>,
    /// What MAIL's SIZE announced: the first allocation for the body.
    size: Option<u64>,
}

struct Session<'a, I> {
    shared: &'a Shared<I>,
    peer: SocketAddr,
    greeted: bool,
    tx: Option<Transaction>,
    errors: u32,
    messages: u32,
}

/// What comes after a command.
enum Next {
    Go,
    Quit,
    TooManyErrors,
    End(End),
}

/// Run one session to its end. Never fails: every way a session can end is
/// a reply (or the client gone), and is logged.
#[tracing::instrument(skip_all, fields(%peer))]
pub(super) async fn run<I: Inbox>(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<I>>,
    stop: StopSignal,
) {
    let limits = &shared.limits;
    let host = &shared.hostname;
    let mut conn = Conn::new(
        tcp,
        limits.command_timeout,
        after(limits.session_timeout),
        stop,
    );
    if conn.stopping() {
        conn.close(Some(
            format!("421 4.3.2 {host} shutting down\r\n").as_bytes(),
        ))
        .await;
        return;
    }
    conn.queue(format!("220 {host} ESMTP gazette\r\n").as_bytes());
    let mut session = Session {
        shared: &shared,
        peer,
        greeted: false,
        tx: None,
        errors: 0,
        messages: 0,
    };
    let next = loop {
        if conn.stopping() {
            break Next::End(End::Stopped);
        }
        let parsed = match conn.line().await {
            Ok(Line::Text(line)) => command::parse(line),
            Ok(Line::TooLong) => Err(command::TOO_LONG),
            Err(end) => break Next::End(end),
        };
        let next = match parsed {
            Ok(cmd) => session.command(&mut conn, cmd).await,
            Err(reply) => session.reply(&mut conn, &reply),
        };
        if !matches!(next, Next::Go) {
            break next;
        }
    };
    let last = match &next {
        Next::Go | Next::End(End::Closed) | Next::End(End::Io(_)) => None,
        Next::Quit => Some(format!("221 2.0.0 {host} closing connection\r\n")),
        Next::TooManyErrors => Some(format!("421 4.7.0 {host} too many errors, closing\r\n")),
        Next::End(End::Idle) => Some(format!("421 4.4.2 {host} idle too long, closing\r\n")),
        Next::End(End::SessionOver) => Some(format!(
            "421 4.4.2 {host} session time limit reached, closing\r\n"
        )),
        Next::End(End::Stopped) => Some(format!("421 4.3.2 {host} shutting down\r\n")),
    };
    match &next {
        Next::End(End::Io(e)) => {
            tracing::debug!(error = %e, messages = session.messages, "SMTP session lost")
        }
        Next::TooManyErrors => tracing::info!(
            errors = session.errors,
            messages = session.messages,
            "SMTP session closed after too many bad commands"
        ),
        _ => tracing::debug!(
            messages = session.messages,
            errors = session.errors,
            end = ?last.as_deref().map(str::trim_end),
            "SMTP session ended"
        ),
    }
    conn.close(last.as_deref().map(str::as_bytes)).await;
}

impl<I: Inbox> Session<'_, I> {
    /// Queue `reply`, counting it if it is a bad command.
    fn reply(&mut self, conn: &mut Conn<TcpStream>, reply: &Reply) -> Next {
        reply.write_to(conn.out());
        if reply.is_protocol_error() {
            self.errors += 1;
            if self.errors >= MAX_ERRORS {
                return Next::TooManyErrors;
            }
        }
        Next::Go
    }

    async fn command(&mut self, conn: &mut Conn<TcpStream>, cmd: Command) -> Next {
        let limits = self.shared.limits;
        match cmd {
            // A hello also ends any transaction, as RSET (RFC 5321 4.1.4).
            Command::Ehlo(name) => {
                tracing::debug!(helo = %name.escape_debug(), "EHLO");
                self.hello(conn, true)
            }
            Command::Helo(name) => {
                tracing::debug!(helo = %name.escape_debug(), "HELO");
                self.hello(conn, false)
            }
            Command::Mail { .. } if !self.greeted => self.reply(conn, &NEED_HELLO),
            Command::Mail { .. } if self.tx.is_some() => self.reply(conn, &NESTED_MAIL),
            Command::Mail { size: Some(s), .. }
                if s > u64::try_from(limits.max_message_bytes).unwrap_or(u64::MAX) =>
            {
                let r = self.too_big();
                self.reply(conn, &r)
            }
            Command::Mail { from, size } => {
                self.tx = Some(Transaction {
                    from,
                    recipients: Vec::new(),
                    size,
                });
                self.reply(conn, &SENDER_OK)
            }
            Command::Rcpt { to } => {
                let Some(tx) = self.tx.as_mut() else {
                    return self.reply(conn, &NEED_MAIL);
                };
                if tx.recipients.len() >= limits.max_recipients {
                    return self.reply(conn, &TOO_MANY_RECIPIENTS);
                }
                match self.shared.inbox.recipient(&to) {
                    Rcpt::Accept => {
                        if !tx.recipients.contains(&to) {
                            tx.recipients.push(to);
                        }
                        self.reply(conn, &RECIPIENT_OK)
                    }
                    Rcpt::Refuse => {
                        tracing::debug!(recipient = %to.escape_debug(), "recipient refused");
                        self.reply(conn, &UNKNOWN_MAILBOX)
                    }
                }
            }
            Command::Data => self.data(conn).await,
            Command::Rset => {
                self.tx = None;
                self.reply(conn, &OK)
            }
            Command::Noop => self.reply(conn, &OK),
            Command::Vrfy => self.reply(conn, &VRFY),
            Command::Help => self.reply(conn, &HELP),
            Command::Quit => {
                // The 221 is written on the way out.
                Next::Quit
            }
            Command::NotImplemented => self.reply(conn, &command::NOT_IMPLEMENTED),
        }
    }

    /// The EHLO reply names the extensions; the HELO reply only the host.
    fn hello(&mut self, conn: &mut Conn<TcpStream>, extended: bool) -> Next {
        self.greeted = true;
        self.tx = None;
        let host = &self.shared.hostname;
        let text = if extended {
            format!(
                "250-{host}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                 250-SIZE {}\r\n250 ENHANCEDSTATUSCODES\r\n",
                self.shared.limits.max_message_bytes
            )
        } else {
            format!("250 {host}\r\n")
        };
        conn.queue(text.as_bytes());
        Next::Go
    }

    fn too_big(&self) -> Reply {
        Reply {
            code: 552,
            status: "5.3.4",
            text: Cow::Owned(format!(
                "message too big (the limit is {} bytes)",
                self.shared.limits.max_message_bytes
            )),
        }
    }

    /// DATA: the body, then the inbox's answer as the reply to its dot.
    async fn data(&mut self, conn: &mut Conn<TcpStream>) -> Next {
        if !self.greeted {
            return self.reply(conn, &NEED_HELLO);
        }
        let Some(tx) = &self.tx else {
            return self.reply(conn, &NEED_MAIL);
        };
        if tx.recipients.is_empty() {
            return self.reply(conn, &NO_RECIPIENTS);
        }
        let max = self.shared.limits.max_message_bytes;
        let capacity = tx
            .size
            .map_or(16 * 1024, |s| usize::try_from(s).unwrap_or(max));
        GO_AHEAD.write_to(conn.out());
        let body = match conn.body(max, capacity).await {
            Ok(body) => body,
            Err(end) => {
                tracing::debug!(peer = %self.peer, "the client did not finish its message");
                return Next::End(end);
            }
        };
        let Some(tx) = self.tx.take() else {
            return self.reply(conn, &NEED_MAIL);
        };
        if body.over_limit {
            tracing::info!(
                bytes = body.size,
                limit = max,
                "message over the size limit refused"
            );
            let r = self.too_big();
            return self.reply(conn, &r);
        }
        let recipients = tx.recipients.len();
        let envelope = Envelope {
            mail_from: tx.from,
            recipients: tx.recipients,
            data: body.data,
            peer: self.peer,
        };
        let outcome = match conn.bounded(self.shared.inbox.deliver(envelope)).await {
            Ok(outcome) => outcome,
            Err(end) => {
                tracing::warn!("the inbox took too long over a message; session ended");
                return Next::End(end);
            }
        };
        match outcome {
            Ok(()) => {
                self.messages += 1;
                tracing::debug!(recipients, bytes = body.size, "message accepted");
                self.reply(conn, &ACCEPTED)
            }
            Err(DeliverError::Temporary(why)) => {
                tracing::info!(recipients, bytes = body.size, reason = %why, "message deferred by the inbox");
                self.reply(conn, &Reply::with_text(451, "4.3.0", &why))
            }
            Err(DeliverError::Rejected(why)) => {
                tracing::info!(recipients, bytes = body.size, reason = %why, "message rejected by the inbox");
                self.reply(conn, &Reply::with_text(554, "5.6.0", &why))
            }
        }
    }
}
