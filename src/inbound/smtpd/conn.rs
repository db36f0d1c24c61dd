//! The session's side of the socket: a fixed read buffer cut into command
//! lines or a message body, replies gathered and written before the next
//! read, and every wait bounded by the idle limit, the session's deadline
//! and the server's stop.
//!
//! Memory per session is the read buffer ([`BUF`]) plus the message being
//! received (bounded by the size limit): a line longer than [`MAX_LINE`]
//! is thrown away as it arrives, never gathered, and a body past the limit
//! is counted, not stored.
//!
//! Replies go out when the session is about to wait for the client, not
//! one by one: commands a client pipelined (RFC 2920) are all in the
//! buffer already, get their replies in order, and the replies leave in
//! one write; a client that waits for each reply gets it at once, since
//! the server then waits too.

use std::time::Duration;

use memchr::memmem;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// The longest command line, its line end included. RFC 5321 (4.5.3.1.4)
/// allows 512 octets, but its extensions (SIZE, BODY, SMTPUTF8 addresses)
/// lengthen MAIL, and common servers take about 1000.
pub(super) const MAX_LINE: usize = 1000;

/// The read buffer of a session: a few network reads' worth, and well over
/// [`MAX_LINE`].
const BUF: usize = 32 * 1024;

/// The most a body's buffer reserves before its bytes arrive.
const MAX_FIRST_ALLOCATION: usize = 256 * 1024;

/// How long a last reply (a 421 on the way out) may take to write, and
/// how long the input is then drained so that closing does not reset the
/// connection before the client has read that reply.
const FAREWELL: Duration = Duration::from_secs(1);

/// Why a session cannot go on.
#[derive(Debug)]
pub(super) enum End {
    /// The client closed the connection.
    Closed,
    /// Nothing came for the idle limit (`command_timeout`).
    Idle,
    /// The whole-session limit passed.
    SessionOver,
    /// The server is stopping (at once between commands; in a message
    /// after the grace).
    Stopped,
    /// The socket failed (or a reply could not be written in time).
    Io(std::io::Error),
}

/// What the stop looks like from a session: `None` while serving, then
/// the moment by which a session in a message must have finished.
pub(super) type StopSignal = watch::Receiver<Option<Instant>>;

/// Whether the server's stop ends a wait at once (between commands) or
/// only at the end of the grace (within a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Command,
    Message,
}

/// A command line, or a line that was too long (and is gone).
#[derive(Debug)]
pub(super) enum Line<'a> {
    Text(&'a [u8]),
    TooLong,
}

/// A message body read to its final dot.
#[derive(Debug)]
pub(super) struct Body {
    /// The bytes, unstuffed; empty when over the limit.
    pub data: Vec<u8>,
    /// All bytes of the body, also those past the limit.
    pub size: usize,
    pub over_limit: bool,
}

pub(super) struct Conn<S> {
    stream: S,
    buf: Box<[u8]>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Replies not written yet.
    out: Vec<u8>,
    idle: Duration,
    deadline: Instant,
    stop: StopSignal,
    /// False once the server's side of the stop signal is gone; then only
    /// the value last seen counts.
    stop_open: bool,
    dot_line: memmem::Finder<'static>,
}

/// `now + d`, or far in the future when that does not fit (a limit of
/// `Duration::MAX` means none).
pub(super) fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(super) fn new(stream: S, idle: Duration, deadline: Instant, stop: StopSignal) -> Self {
        Conn {
            stream,
            buf: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            out: Vec::with_capacity(512),
            idle,
            deadline,
            stop,
            stop_open: true,
            dot_line: memmem::Finder::new(b"\n."),
        }
    }

    /// The server is stopping.
    pub(super) fn stopping(&self) -> bool {
        self.stop.borrow().is_some()
    }

    /// Queue a reply; it is written before the next wait for the client.
    pub(super) fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub(super) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// The next command line: at most [`MAX_LINE`] bytes with its LF
    /// (CRLF or a bare LF). A longer line is read to its end and dropped,
    /// holding no more than the buffer.
    pub(super) async fn line(&mut self) -> Result<Line<'_>, End> {
        let mut too_long = false;
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(i) = memchr::memchr(b'\n', unread) {
                let line = self.start..self.start + i + 1;
                self.start = line.end;
                if too_long || line.len() > MAX_LINE {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Text(&self.buf[line]));
            }
            if unread.len() >= MAX_LINE {
                too_long = true;
                self.start = self.end;
            }
            self.fill(Phase::Command).await?;
        }
    }

    /// The body after `354`, up to the line holding a lone dot (CRLF or
    /// bare LF), dot-unstuffed (RFC 5321 4.5.2). Past `max` bytes nothing
    /// more is stored, but the body is read to its end so that the
    /// session can answer 552 and go on.
    pub(super) async fn body(&mut self, max: usize, capacity: usize) -> Result<Body, End> {
        // The client's SIZE is a hint, not a promise: a session that
        // announces the limit and sends nothing reserves little.
        let mut data = Vec::with_capacity(capacity.min(max).min(MAX_FIRST_ALLOCATION));
        let mut size = 0usize;
        let mut over_limit = false;
        // At the start of a line (the body starts with one).
        let mut line_start = true;
        loop {
            if self.start == self.end {
                self.fill(Phase::Message).await?;
                continue;
            }
            if line_start {
                let unread = &self.buf[self.start..self.end];
                if unread[0] == b'.' {
                    // ".\r\n" or ".\n" ends the body; ".\r" needs one byte
                    // more to tell; any other leading dot is a stuffed one.
                    match (unread.get(1).copied(), unread.get(2).copied()) {
                        (Some(b'\n'), _) => {
                            self.start += 2;
                            break;
                        }
                        (Some(b'\r'), Some(b'\n')) => {
                            self.start += 3;
                            break;
                        }
                        (None, _) | (Some(b'\r'), None) => {
                            self.fill(Phase::Message).await?;
                            continue;
                        }
                        _ => self.start += 1,
                    }
                }
                line_start = false;
                continue;
            }
            let unread = &self.buf[self.start..self.end];
            // Everything up to the next line that starts with a dot is
            // taken in one piece.
            let take = match self.dot_line.find(unread) {
                Some(i) => {
                    line_start = true;
                    i + 1
                }
                None => {
                    line_start = unread.last() == Some(&b'\n');
                    unread.len()
                }
            };
            let piece = &unread[..take];
            size = size.saturating_add(take);
            if !over_limit {
                if size > max {
                    over_limit = true;
                    data = Vec::new();
                } else {
                    data.extend_from_slice(piece);
                }
            }
            self.start += take;
        }
        Ok(Body {
            data,
            size,
            over_limit,
        })
    }

    /// Run `work` (the inbox taking a message) while the client waits for
    /// the reply to its final dot: bounded by the session's deadline and
    /// the stop's grace, not by the idle limit (the client is not idle).
    pub(super) async fn bounded<F: Future>(&mut self, work: F) -> Result<F::Output, End> {
        self.flush().await?;
        let mut work = std::pin::pin!(work);
        loop {
            let (limit, why) = self.limit(Phase::Message, false);
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = tokio::time::sleep_until(limit) => return Err(why),
                r = self.stop.changed(), if self.stop_open => {
                    if r.is_err() {
                        self.stop_open = false;
                    }
                }
            }
        }
    }

    /// Write the queued replies, within the idle limit (a client that
    /// reads nothing holds no session for longer).
    pub(super) async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let (limit, why) = self.limit(Phase::Message, true);
        match tokio::time::timeout_at(limit, self.stream.write_all(&self.out)).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(End::Io(e)),
            Err(_) => Err(why),
        }
    }

    /// Say `last` (if any) and close: the write is best effort, within
    /// [`FAREWELL`], and the input is drained as long again so that the
    /// client reads the reply instead of a reset.
    pub(super) async fn close(mut self, last: Option<&[u8]>) {
        if let Some(last) = last {
            self.out.extend_from_slice(last);
        }
        let stream = &mut self.stream;
        let out = &self.out;
        let buf = &mut self.buf;
        let _ = tokio::time::timeout(FAREWELL, async {
            stream.write_all(out).await?;
            stream.shutdown().await?;
            while stream.read(&mut buf[..]).await? > 0 {}
            Ok::<(), std::io::Error>(())
        })
        .await;
    }

    /// Read more into the buffer: after writing the queued replies, since
    /// the client may be waiting for them. Bounded by the idle limit, the
    /// session's deadline, and in the command phase the stop.
    async fn fill(&mut self, phase: Phase) -> Result<(), End> {
        self.flush().await?;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Both readers take bytes long before the buffer fills; a
            // full one would make the read below return 0 (closed).
            return Err(End::Io(std::io::Error::other("read buffer full")));
        }
        loop {
            if phase == Phase::Command && self.stopping() {
                return Err(End::Stopped);
            }
            let (limit, why) = self.limit(phase, true);
            tokio::select! {
                r = self.stream.read(&mut self.buf[self.end..]) => {
                    return match r {
                        Ok(0) => Err(End::Closed),
                        Ok(n) => {
                            self.end += n;
                            Ok(())
                        }
                        Err(e) => Err(End::Io(e)),
                    };
                }
                _ = tokio::time::sleep_until(limit) => return Err(why),
                r = self.stop.changed(), if self.stop_open => {
                    if r.is_err() {
                        self.stop_open = false;
                    }
                }
            }
        }
    }

    /// The earliest of the limits on a wait, and what passing it means.
    fn limit(&self, phase: Phase, idle: bool) -> (Instant, End) {
        let mut limit = (self.deadline, End::SessionOver);
        if idle {
            let idle_end = after(self.idle);
            if idle_end < limit.0 {
                limit = (idle_end, End::Idle);
            }
        }
        if phase == Phase::Message
            && let Some(grace_end) = *self.stop.borrow()
            && grace_end < limit.0
        {
            limit = (grace_end, End::Stopped);
        }
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn conn_over(input: &[u8]) -> Conn<tokio::io::DuplexStream> {
        let (ours, mut theirs) = duplex(1 << 20);
        let input = input.to_vec();
        tokio::spawn(async move {
            theirs.write_all(&input).await.unwrap();
            // Keep the other end open until ours is dropped.
            let mut sink = Vec::new();
            let _ = theirs.read_to_end(&mut sink).await;
        });
        // The sender dropped at once: a server that never stops.
        let (_, rx) = watch::channel(None);
        Conn::new(
            ours,
            Duration::from_secs(5),
            after(Duration::from_secs(5)),
            rx,
        )
    }

    async fn body_of(input: &[u8], max: usize) -> (Body, Vec<u8>) {
        let mut c = conn_over(input);
        let body = c.body(max, 16).await.unwrap();
        let rest = c.buf[c.start..c.end].to_vec();
        (body, rest)
    }

    #[tokio::test]
    async fn lines_end_in_crlf_or_bare_lf() {
        let mut c = conn_over(b"NOOP\r\nQUIT\nRSET\r\n");
        for want in [&b"NOOP\r\n"[..], b"QUIT\n", b"RSET\r\n"] {
            match c.line().await.unwrap() {
                Line::Text(t) => assert_eq!(t, want),
                Line::TooLong => panic!("too long"),
            }
        }
    }

    #[tokio::test]
    async fn a_long_line_is_dropped_and_the_next_one_read() {
        let mut input = vec![b'x'; BUF * 3];
        input.extend(b"\r\nNOOP\r\n");
        let mut c = conn_over(&input);
        assert!(matches!(c.line().await.unwrap(), Line::TooLong));
        assert!(matches!(c.line().await.unwrap(), Line::Text(b"NOOP\r\n")));
        let mut just_over = vec![b'y'; MAX_LINE - 1];
        just_over.extend(b"\r\n");
        let mut c = conn_over(&just_over);
        assert!(matches!(c.line().await.unwrap(), Line::TooLong));
        let mut just_in = vec![b'y'; MAX_LINE - 2];
        just_in.extend(b"\r\n");
        let mut c = conn_over(&just_in);
        assert!(matches!(c.line().await.unwrap(), Line::Text(t) if t.len() == MAX_LINE));
    }

    #[tokio::test]
    async fn bodies_are_unstuffed_and_end_at_the_lone_dot() {
        let (b, rest) = body_of(b"Subject: x\r\n\r\n..a\r\n.\r\nNOOP\r\n", 1000).await;
        assert_eq!(b.data, b"Subject: x\r\n\r\n.a\r\n");
        assert_eq!(b.size, b.data.len());
        assert_eq!(rest, b"NOOP\r\n");
        let (b, _) = body_of(b".\r\n", 1000).await;
        assert!(b.data.is_empty() && !b.over_limit);
        let (b, _) = body_of(b"..\r\n...\r\n.x.\r\n.\r\n", 1000).await;
        assert_eq!(b.data, b".\r\n..\r\nx.\r\n");
        // Bare LF line ends, and a dot followed by a lone CR.
        let (b, _) = body_of(b"a\n..b\n.\rc\n.\n", 1000).await;
        assert_eq!(b.data, b"a\n.b\n\rc\n");
        // A dot inside a line, and "\r\n." not at a line start, stay.
        let (b, _) = body_of(b"a.b\r\nx\r.\r\n.\r\n", 1000).await;
        assert_eq!(b.data, b"a.b\r\nx\r.\r\n");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_counted_to_its_end() {
        let mut input = b"line of text\r\n".repeat(10_000);
        input.extend(b".\r\nQUIT\r\n");
        let (b, rest) = body_of(&input, 1000).await;
        assert!(b.over_limit && b.data.is_empty());
        assert_eq!(b.size, 14 * 10_000);
        assert_eq!(rest, b"QUIT\r\n");
        let exact = b"0123456789\r\n.\r\n";
        let (b, _) = body_of(exact, 12).await;
        assert!(!b.over_limit);
        assert_eq!(b.data, b"0123456789\r\n");
        let (b, _) = body_of(exact, 11).await;
        assert!(b.over_limit);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_closed_connection() {
        let (ours, mut theirs) = duplex(1024);
        let (_tx, rx) = watch::channel(None);
        let mut c = Conn::new(
            ours,
            Duration::from_secs(5),
            after(Duration::from_secs(5)),
            rx,
        );
        theirs.write_all(b"half a message\r\n.").await.unwrap();
        drop(theirs);
        assert!(matches!(c.body(100, 16).await, Err(End::Closed)));
    }

    #[test]
    fn a_limit_of_duration_max_is_no_limit_and_no_overflow() {
        let far = after(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(365 * 86_400));
    }
}
