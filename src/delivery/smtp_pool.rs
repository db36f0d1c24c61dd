//! SMTP connections of our own for STARTTLS servers, with TCP_NODELAY set.
//!
//! lettre writes a message's body and its final "." in two writes. On a
//! socket with Nagle's algorithm on, the second small write waits for the
//! server's ACK of the first, and the server delays that ACK (40 ms on
//! Linux): every message stalls for 40 ms, which capped a send at about 200
//! messages a second over 10 connections (measured, bench/send.sh). lettre
//! does not set TCP_NODELAY on the sockets it opens, so for `none` and
//! `starttls` we open them ourselves and hand them to lettre's connection;
//! implicit TLS (`tls`, port 465) still goes through lettre's own pool.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

/// Why a connection could not be made or used.
#[derive(Debug)]
pub enum PoolError {
    /// No server to talk to (refused, unreachable, timed out).
    Connect(String),
    /// lettre's error from the SMTP dialogue.
    Smtp(lettre::transport::smtp::Error),
}

pub struct SmtpPool {
    host: String,
    port: u16,
    starttls: TlsParameters,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// A connection idle longer than this may have been closed by the server:
/// test it (NOOP) before use.
const TEST_AFTER: Duration = Duration::from_secs(5);
/// Close connections idle this long rather than reuse them.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

impl SmtpPool {
    pub fn new(
        host: &str,
        port: u16,
        starttls: TlsParameters,
        credentials: Option<Credentials>,
        max_idle: usize,
    ) -> SmtpPool {
        SmtpPool {
            host: host.to_string(),
            port,
            starttls,
            credentials,
            hello: ClientId::default(),
            timeout: Duration::from_secs(30),
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, PoolError> {
        let addr = (self.host.as_str(), self.port);
        let stream =
            match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return Err(PoolError::Connect(format!(
                        "cannot connect to {}:{}: {e}",
                        self.host, self.port
                    )));
                }
                Err(_) => {
                    return Err(PoolError::Connect(format!(
                        "cannot connect to {}:{}: timed out",
                        self.host, self.port
                    )));
                }
            };
        stream
            .set_nodelay(true)
            .map_err(|e| PoolError::Connect(format!("cannot set TCP_NODELAY: {e}")))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(PoolError::Smtp)?;
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(PoolError::Connect(format!(
                "{} does not offer STARTTLS (mail.smtp.security = \"starttls\")",
                self.host
            )));
        }
        conn.starttls(self.starttls.clone(), &self.hello)
            .await
            .map_err(PoolError::Smtp)?;
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(PoolError::Smtp)?;
        }
        Ok(conn)
    }

    /// An idle connection that still answers, else a new one.
    async fn checkout(&self) -> Result<(AsyncSmtpConnection, bool), PoolError> {
        loop {
            let candidate = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
            let Some((mut conn, since)) = candidate else {
                break;
            };
            let age = since.elapsed();
            if age > IDLE_LIMIT {
                conn.abort().await;
                continue;
            }
            if age > TEST_AFTER && !conn.test_connected().await {
                conn.abort().await;
                continue;
            }
            return Ok((conn, true));
        }
        Ok((self.connect().await?, false))
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push((conn, Instant::now()));
        }
    }

    /// One message over a pooled connection. A reused connection that turns
    /// out dead (the server closed it) is replaced once (lettre#743).
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, PoolError> {
        let (mut conn, reused) = self.checkout().await?;
        match conn.send(envelope, bytes).await {
            Ok(r) => {
                self.checkin(conn);
                Ok(r)
            }
            Err(e) if reused && e.status().is_none() => {
                conn.abort().await;
                let mut fresh = self.connect().await?;
                let r = fresh.send(envelope, bytes).await.map_err(PoolError::Smtp);
                self.checkin(fresh);
                r
            }
            Err(e) => {
                // lettre closes the connection on any error; checkin keeps
                // only connections that are not broken.
                self.checkin(conn);
                Err(PoolError::Smtp(e))
            }
        }
    }

    /// Say goodbye to idle connections.
    pub async fn close(&self) {
        let idle: Vec<_> = self
            .idle
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for (mut conn, _) in idle {
            let _ = conn.quit().await;
        }
    }
}
