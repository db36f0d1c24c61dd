//! The inbound SMTP server (RFC 5321, server side, ESMTP) through which an
//! MTA relays to gazette what comes back for it: bounces to the VERP
//! addresses, complaints, mails to the `List-Unsubscribe` address.
//!
//! It listens on loopback or a private network, behind the MTA that faces
//! the internet, and speaks only what such a relay needs: EHLO/HELO, MAIL
//! (with SIZE, BODY=8BITMIME, SMTPUTF8), RCPT, DATA, RSET, NOOP, VRFY
//! (252), HELP, QUIT, with PIPELINING (RFC 2920) and ENHANCEDSTATUSCODES
//! (RFC 2034). There is no STARTTLS and no AUTH: the relay in front does
//! TLS with the world, the hop to gazette is local, and who may relay is
//! decided by where the listener is bound (and the firewall). What gazette
//! accepts is decided per address by the [`Inbox`], at RCPT: every other
//! address is refused there, so the server is no open relay either way.
//!
//! Nothing a client sends can hurt the rest of `serve`:
//! - a command line is at most 1000 octets, longer ones are dropped as they
//!   arrive (`500 5.5.2`), and after [`MAX_ERRORS`] bad commands the session
//!   ends (`421`); binary garbage is just bad commands;
//! - a message is stored up to [`Limits::max_message_bytes`]; past it the
//!   rest is read and counted, not stored, and refused (`552 5.3.4`), and
//!   the session goes on;
//! - every wait for the client ends at [`Limits::command_timeout`], every
//!   session at [`Limits::session_timeout`] (`421 4.4.2`);
//! - at most [`Limits::max_sessions`] run at once; more are told `421
//!   4.3.2` at once and closed;
//! - each session is a task of its own: a panic (there should be none) ends
//!   that session only, and is logged;
//! - a failed accept (out of descriptors) is logged and retried after a
//!   pause.
//!
//! Each message accepted is handed to [`Inbox::deliver`] before the reply to
//! its final dot, so a `250` means gazette has it, and the inbox's errors
//! become the reply (`451` to try again later, `554` refused). The message
//! is handed over as it came (no `Received` or `Return-Path` header added:
//! the envelope travels beside it in [`Envelope`]).

mod command;
mod conn;
mod session;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Bad commands after which a session is closed (`421 4.7.0`): a real
/// MTA makes none, and a client sending garbage gets no more of our time.
pub const MAX_ERRORS: u32 = 10;

/// How long a session in the middle of a message may take to finish it
/// once the server stops (sessions between commands are told `421` at
/// once).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long the accept loop pauses after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What one client may take of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message taken (its bytes after dot-unstuffing, header
    /// included). A larger one is refused `552 5.3.4`: at MAIL when its
    /// SIZE says so, else after its final dot; the session goes on.
    pub max_message_bytes: usize,
    /// The whole session, greeting to QUIT; then `421 4.4.2` and close.
    pub session_timeout: Duration,
    /// The longest wait for the client's next bytes (RFC 5321 gives
    /// clients 5 minutes; a relay on the same host needs far less).
    pub command_timeout: Duration,
    /// Sessions at once; one more is told `421 4.3.2` at its greeting.
    pub max_sessions: usize,
    /// Recipients per message; one more is told `452 4.5.3` (the client
    /// sends the rest in another transaction).
    pub max_recipients: usize,
}

impl Default for Limits {
    /// Bounces quote at most the original message, which for gazette is
    /// a digest (well under a megabyte); complaints and replies are
    /// smaller. RFC 5321 (4.5.3.1.8) wants 100 recipients taken.
    fn default() -> Limits {
        Limits {
            max_message_bytes: 10 * 1024 * 1024,
            session_timeout: Duration::from_secs(10 * 60),
            command_timeout: Duration::from_secs(60),
            max_sessions: 32,
            max_recipients: 100,
        }
    }
}

/// One message as the client handed it over.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (`MAIL FROM`) without brackets: empty for the
    /// null sender `<>` that bounces and reports come from.
    pub mail_from: String,
    /// The accepted recipients (`RCPT TO`, each once), without brackets or
    /// source route, as the client spelled them.
    pub recipients: Vec<String>,
    /// The message, dot-unstuffed, line ends as they came (CRLF, or the
    /// bare LF some clients send).
    pub data: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
}

/// The message's size, not its bytes: an envelope in a log line must not
/// carry a reader's mail into it.
impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("mail_from", &self.mail_from)
            .field("recipients", &self.recipients)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("peer", &self.peer)
            .finish()
    }
}

/// The inbox's answer about one recipient address at `RCPT TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcpt {
    Accept,
    /// `550 5.1.1 mailbox unknown`.
    Refuse,
}

/// Why the inbox did not take a message.
#[derive(thiserror::Error, Debug)]
pub enum DeliverError {
    /// `451 4.3.0`: the client keeps the message and tries again later.
    #[error("{0}")]
    Temporary(String),
    /// `554 5.6.0`: the client gives up on it.
    #[error("{0}")]
    Rejected(String),
}

/// Where accepted mail goes: gazette's classification and ledger.
pub trait Inbox: Send + Sync + 'static {
    /// Whether mail to `address` (no brackets; a quoted local part keeps
    /// its quotes) is taken. Called at each `RCPT TO`, on the session's
    /// task: it should not block for long.
    fn recipient(&self, address: &str) -> Rcpt;

    /// Take one message; the client's reply waits for it, bounded by the
    /// session's deadline (and the stop's grace): past it, the session
    /// ends with `421` and the client tries again later.
    fn deliver(&self, envelope: Envelope) -> impl Future<Output = Result<(), DeliverError>> + Send;
}

/// What every session of one server shares.
struct Shared<I> {
    inbox: Arc<I>,
    limits: Limits,
    /// The name in the greeting and replies, as [`safe_hostname`] left it.
    hostname: String,
}

/// Serve until `stop` resolves: stop accepting, let sessions in DATA finish
/// within a short grace ([`STOP_GRACE`]), answer others 421.
///
/// Returns once every session has ended. Errors of single connections are
/// logged, never returned (nothing a client does makes this fail). Dropping
/// the future instead of resolving `stop` aborts every session at once,
/// without a reply.
#[tracing::instrument(skip_all, fields(listen = ?listener.local_addr().ok()))]
pub async fn serve<I: Inbox>(
    listener: TcpListener,
    inbox: Arc<I>,
    limits: Limits,
    hostname: String,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        inbox,
        limits,
        hostname: safe_hostname(&hostname),
    });
    let places = Arc::new(Semaphore::new(
        limits.max_sessions.min(Semaphore::MAX_PERMITS),
    ));
    let busy = format!(
        "421 4.3.2 {} too many sessions, try again later\r\n",
        shared.hostname
    );
    let (stopping, stop_signal) = watch::channel(None);
    let mut sessions = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    let mut told_full = false;
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                ended(done);
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors (EMFILE, ENFILE) or memory, or a
                // connection reset before it was accepted: the listener
                // is fine; pause so as not to spin.
                tracing::warn!(error = %e, "cannot accept an SMTP connection; retrying");
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            if !told_full {
                tracing::warn!(
                    max = limits.max_sessions,
                    %peer,
                    "SMTP session limit reached: refusing connections"
                );
                told_full = true;
            }
            // A fresh socket's send buffer is empty: this never blocks,
            // and a client that does not read it loses nothing of ours.
            let _ = tcp.try_write(busy.as_bytes());
            continue;
        };
        if places.available_permits() > limits.max_sessions / 2 {
            told_full = false;
        }
        // Replies are small and the client waits for each (or for each
        // pipelined group): Nagle's algorithm would hold them back.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let shared = shared.clone();
        let stop_signal = stop_signal.clone();
        sessions.spawn(async move {
            session::run(tcp, peer, shared, stop_signal).await;
            drop(place);
        });
    }
    drop(listener);
    let grace_end = tokio::time::Instant::now() + STOP_GRACE;
    stopping.send_replace(Some(grace_end));
    tracing::info!(sessions = sessions.len(), "inbound SMTP stopping");
    // Sessions end themselves by the grace; the margin is for their last
    // reply. Whatever is still running after it is cut off.
    let all_ended = async {
        while let Some(done) = sessions.join_next().await {
            ended(done);
        }
    };
    if tokio::time::timeout_at(grace_end + Duration::from_secs(2), all_ended)
        .await
        .is_err()
    {
        tracing::warn!(
            sessions = sessions.len(),
            "inbound SMTP sessions did not end in time; cut off"
        );
        sessions.shutdown().await;
    }
    Ok(())
}

/// Log a session task that did not end normally.
fn ended(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "an SMTP session panicked; the server goes on");
        } else {
            tracing::debug!(error = %e, "an SMTP session was cancelled");
        }
    }
}

/// The host name as replies may carry it: printable ASCII without spaces
/// (it ends up in reply lines, where CR or LF would forge a reply).
fn safe_hostname(name: &str) -> String {
    let clean: String = name.chars().filter(char::is_ascii_graphic).collect();
    if clean.is_empty() {
        "localhost".to_string()
    } else {
        clean
    }
}
