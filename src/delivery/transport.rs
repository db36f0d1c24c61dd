//! Getting one message to the next hop: the file outbox or SMTP (lettre).
//!
//! A transport never decides what happens to a delivery; it says what the
//! server said, classified as [`Outcome`], and the sender records it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::plain_smtp::PlainSmtp;
use super::smtp_pool::{PoolError, SmtpPool};
use crate::config::{MailConfig, Security, Transport as TransportKind};

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server took it (SMTP 250), or it is in the outbox.
    Sent { reply: String },
    /// Try again later: a 4xx reply (`answered`), or no answer at all
    /// (refused, dropped, timed out). The message may or may not have arrived.
    Retry { reply: String, answered: bool },
    /// A 5xx reply: never retried. `bounce` when the reply says the mailbox
    /// does not exist (enhanced status 5.1.x).
    Failed { reply: String, bounce: bool },
}

/// One message ready for the wire.
#[derive(Debug, Clone, Copy)]
pub struct Wire<'a> {
    pub envelope_from: &'a str,
    pub to: &'a str,
    /// RFC 5322 message, CRLF line ends.
    pub bytes: &'a [u8],
    /// A stable name for the outbox file, e.g. the issue slug and a per-
    /// recipient key: writing the same message twice replaces one file.
    pub file_stem: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot create the outbox folder {}: {source}", path.display())]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mail.smtp.host {host:?}: {source}")]
    Smtp {
        host: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("mail.smtp.ca_file {}: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    #[error("mail.smtp.password_env names {var}, which is not set")]
    Password { var: String },
}

/// The configured way out.
#[derive(Clone)]
pub enum Transport {
    File {
        dir: PathBuf,
    },
    /// Implicit TLS: lettre's own pool.
    Smtp {
        smtp: AsyncSmtpTransport<Tokio1Executor>,
        host: String,
    },
    /// Plain SMTP: our own client (see `plain_smtp`).
    Plain {
        smtp: Arc<PlainSmtp>,
        host: String,
    },
    /// STARTTLS: lettre connections in our pool, with TCP_NODELAY (see `smtp_pool`).
    Pooled {
        pool: Arc<SmtpPool>,
        host: String,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::File { dir } => write!(f, "file transport into {}", dir.display()),
            Transport::Smtp { host, .. }
            | Transport::Pooled { host, .. }
            | Transport::Plain { host, .. } => {
                write!(f, "SMTP via {host}")
            }
        }
    }
}

impl Transport {
    /// Build from `[mail]`. SMTP connects lazily, on the first message.
    pub fn from_config(mail: &MailConfig) -> Result<Transport, TransportError> {
        match mail.transport {
            TransportKind::File => {
                std::fs::create_dir_all(&mail.outbox).map_err(|source| TransportError::Outbox {
                    path: mail.outbox.clone(),
                    source,
                })?;
                Ok(Transport::File {
                    dir: mail.outbox.clone(),
                })
            }
            TransportKind::Smtp if mail.smtp.security != Security::Tls => {
                let s = &mail.smtp;
                let login = match &s.username {
                    Some(user) => {
                        let password = match &s.password_env {
                            Some(var) => std::env::var(var)
                                .map_err(|_| TransportError::Password { var: var.clone() })?,
                            None => String::new(),
                        };
                        Some((user.clone(), password))
                    }
                    None => None,
                };
                if s.security == Security::None {
                    let smtp = PlainSmtp::new(&s.host, s.port, login, mail.concurrency);
                    return Ok(Transport::Plain {
                        smtp: Arc::new(smtp),
                        host: s.host.clone(),
                    });
                }
                let credentials = login.map(|(u, p)| Credentials::new(u, p));
                let pool = SmtpPool::new(
                    &s.host,
                    s.port,
                    tls_parameters(s)?,
                    credentials,
                    mail.concurrency,
                );
                Ok(Transport::Pooled {
                    pool: Arc::new(pool),
                    host: s.host.clone(),
                })
            }
            TransportKind::Smtp => {
                let s = &mail.smtp;
                let host = s.host.clone();
                let smtp_err = |source| TransportError::Smtp {
                    host: host.clone(),
                    source,
                };
                // Implicit TLS (port 465): lettre's own transport and pool.
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                    .map_err(smtp_err)?
                    .tls(Tls::Wrapper(tls_parameters(s)?));
                if let Some(user) = &s.username {
                    let password = match &s.password_env {
                        Some(var) => std::env::var(var)
                            .map_err(|_| TransportError::Password { var: var.clone() })?,
                        None => String::new(),
                    };
                    builder = builder.credentials(Credentials::new(user.clone(), password));
                }
                // Idle connections are closed before a typical server's own
                // idle timeout, so a pooled connection is rarely found dead
                // (lettre#743); when it is, the attempt is retried.
                let pool = PoolConfig::new()
                    .max_size(mail.concurrency as u32)
                    .idle_timeout(Duration::from_secs(20));
                let smtp = builder
                    .port(s.port)
                    .timeout(Some(Duration::from_secs(30)))
                    .pool_config(pool)
                    .build();
                Ok(Transport::Smtp { smtp, host })
            }
        }
    }

    /// Close idle connections politely (QUIT).
    pub async fn close(&self) {
        match self {
            Transport::Pooled { pool, .. } => pool.close().await,
            Transport::Plain { smtp, .. } => smtp.close().await,
            _ => {}
        }
    }

    /// Hand one message over.
    #[tracing::instrument(level = "debug", skip_all, fields(to = wire.to))]
    pub async fn send(&self, wire: Wire<'_>) -> Outcome {
        match self {
            Transport::File { dir } => write_eml(dir, wire).await,
            Transport::Plain { smtp, .. } => {
                smtp.send(wire.envelope_from, wire.to, wire.bytes).await
            }
            Transport::Pooled { pool, .. } => match envelope(wire) {
                Err(failed) => failed,
                Ok(envelope) => match pool.send(&envelope, wire.bytes).await {
                    Err(PoolError::Connect(reply)) => Outcome::Retry {
                        reply,
                        answered: false,
                    },
                    Err(PoolError::Smtp(e)) => lettre_outcome(Err(e)),
                    Ok(resp) => lettre_outcome(Ok(resp)),
                },
            },
            Transport::Smtp { smtp, .. } => match envelope(wire) {
                Err(failed) => failed,
                Ok(envelope) => lettre_outcome(smtp.send_raw(&envelope, wire.bytes).await),
            },
        }
    }
}

/// TLS settings for the server: the system's roots (webpki), plus
/// `mail.smtp.ca_file` when set.
fn tls_parameters(s: &crate::config::SmtpConfig) -> Result<TlsParameters, TransportError> {
    let mut builder = TlsParameters::builder(s.host.clone());
    if let Some(path) = &s.ca_file {
        let bad = |message: String| TransportError::CaFile {
            path: path.clone(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let cert = lettre::transport::smtp::client::Certificate::from_pem(&pem)
            .map_err(|e| bad(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|source| TransportError::Smtp {
        host: s.host.clone(),
        source,
    })
}

fn reply_text(resp: &lettre::transport::smtp::response::Response) -> String {
    format!(
        "{} {}",
        resp.code(),
        resp.message().collect::<Vec<_>>().join(" ")
    )
}

/// The SMTP envelope; addresses lettre cannot take fail the delivery.
fn envelope(wire: Wire<'_>) -> Result<Envelope, Outcome> {
    let failed = |reply: String| Outcome::Failed {
        reply,
        bounce: false,
    };
    let from: Address = wire
        .envelope_from
        .parse()
        .map_err(|e| failed(format!("bad sender address {:?}: {e}", wire.envelope_from)))?;
    let to: Address = wire
        .to
        .parse()
        .map_err(|e| failed(format!("bad recipient address {:?}: {e}", wire.to)))?;
    Envelope::new(Some(from), vec![to]).map_err(|e| failed(e.to_string()))
}

fn lettre_outcome(
    result: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
) -> Outcome {
    match result {
        Ok(resp) => Outcome::Sent {
            reply: reply_text(&resp),
        },
        Err(e) => classify(&e),
    }
}

/// Sort an SMTP error into retry / fail / bounce.
///
/// lettre refuses, before sending anything, a message the server's EHLO
/// says it cannot take (an address that needs SMTPUTF8, 8-bit content
/// without 8BITMIME): another try would meet the same refusal, so those
/// fail. lettre has no error kind for them, only a client error naming the
/// extension; other client errors (STARTTLS, AUTH) are about the session
/// and are retried like no answer.
fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let reply = one_line(&e.to_string());
    if e.is_client() && (reply.contains("SMTPUTF8") || reply.contains("8BITMIME")) {
        return Outcome::Failed {
            reply: format!("not sent: {reply}"),
            bounce: false,
        };
    }
    if e.is_permanent() {
        let bounce = is_bad_mailbox(&reply);
        Outcome::Failed { reply, bounce }
    } else {
        // 4xx, or no answer: refused, dropped, timed out, TLS trouble.
        Outcome::Retry {
            reply,
            answered: e.status().is_some(),
        }
    }
}

/// RFC 3463: 5.1.x is an addressing failure (no such mailbox, bad domain...).
fn is_bad_mailbox(reply: &str) -> bool {
    reply
        .split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .any(|w| w.starts_with("5.1.") && w.len() > 4)
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(500).collect()
}

/// The outbox: one `.eml` per message, written whole (temp + rename) under a
/// stable name, so a message written twice after a crash is still one file.
async fn write_eml(dir: &Path, wire: Wire<'_>) -> Outcome {
    let name: String = wire
        .file_stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.eml"));
    let tmp = dir.join(format!(".{name}.eml.tmp"));
    let result = async {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&tmp, wire.bytes).await?;
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    match result {
        Ok(()) => Outcome::Sent {
            reply: format!("written to {}", path.display()),
        },
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            // A full disk or a permission problem: worth another try later.
            Outcome::Retry {
                reply: format!("cannot write {}: {e}", path.display()),
                answered: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_mailbox_replies_are_bounces() {
        assert!(is_bad_mailbox(
            "permanent error (550): 5.1.1 <x@example.org>: Recipient address rejected"
        ));
        assert!(is_bad_mailbox("permanent error (550): 5.1.10 null MX"));
        assert!(!is_bad_mailbox("permanent error (554): 5.7.1 spam"));
        assert!(!is_bad_mailbox(
            "permanent error (550): mailbox unavailable"
        ));
    }

    #[tokio::test]
    async fn the_outbox_replaces_a_message_written_twice() {
        let dir = tempfile::tempdir().unwrap();
        let t = Transport::File {
            dir: dir.path().to_path_buf(),
        };
        let wire = Wire {
            envelope_from: "a@example.org",
            to: "b@example.org",
            bytes: b"Subject: x\r\n\r\nhi\r\n",
            file_stem: "issue/1 2",
        };
        assert!(matches!(t.send(wire).await, Outcome::Sent { .. }));
        assert!(matches!(t.send(wire).await, Outcome::Sent { .. }));
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
        assert_eq!(
            std::fs::read(dir.path().join("issue_1_2.eml")).unwrap(),
            wire.bytes
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_not_failed() {
        // Port 9 on loopback: nothing listens there.
        let mail = crate::config::Config::parse(
            Path::new("/tmp/x/config.toml"),
            "[publication]\ntitle = \"T\"\nbase_url = \"https://x.org/\"\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\n",
            &[],
        )
        .unwrap()
        .mail;
        let t = Transport::from_config(&mail).unwrap();
        let wire = Wire {
            envelope_from: "a@example.org",
            to: "b@example.org",
            bytes: b"Subject: x\r\n\r\nhi\r\n",
            file_stem: "x",
        };
        assert!(
            matches!(
                t.send(wire).await,
                Outcome::Retry {
                    answered: false,
                    ..
                }
            ),
            "{:?}",
            t.send(wire).await
        );
    }
}
