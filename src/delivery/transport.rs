//! Getting one message to the next hop: the file outbox or SMTP (lettre).
//!
//! A transport never decides what happens to a delivery; it says what the
//! server said, classified as [`Outcome`], and the sender records it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use super::Outcome;
use super::smtp_client::SmtpClient;
use super::tls::{Security as TlsMode, Tls, TlsConfigError};
use crate::config::{MailConfig, Security, Transport as TransportKind};
use crate::subscribers::SubscriberEmail;

/// One message ready for the wire.
#[derive(Debug, Clone, Copy)]
pub struct Wire<'a> {
    pub envelope_from: &'a str,
    /// The recipient: its [`SubscriberEmail::envelope`] form goes into
    /// `RCPT TO`.
    pub to: &'a SubscriberEmail,
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
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("mail.smtp.password_env names {var}, which is not set")]
    Password { var: String },
}

/// The configured way out.
#[derive(Clone)]
pub enum Transport {
    File {
        dir: PathBuf,
    },
    /// SMTP, plain or TLS: our own client (see `smtp_client`).
    Smtp {
        smtp: Arc<SmtpClient>,
        host: String,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::File { dir } => write!(f, "file transport into {}", dir.display()),
            Transport::Smtp { host, .. } => write!(f, "SMTP via {host}"),
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
            TransportKind::Smtp => {
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
                let tls = || Tls::new(&s.host, s.ca_file.as_deref());
                let security = match s.security {
                    Security::None => TlsMode::None,
                    Security::Starttls => TlsMode::Starttls(tls()?),
                    Security::Tls => TlsMode::Implicit(tls()?),
                };
                let smtp = SmtpClient::new(
                    &s.host,
                    s.port,
                    security,
                    login,
                    mail.concurrency,
                    s.timeout,
                );
                Ok(Transport::Smtp {
                    smtp: Arc::new(smtp),
                    host: s.host.clone(),
                })
            }
        }
    }

    /// Close idle connections politely (QUIT).
    pub async fn close(&self) {
        if let Transport::Smtp { smtp, .. } = self {
            smtp.close().await;
        }
    }

    /// Hand one message over.
    #[tracing::instrument(level = "debug", skip_all, fields(to = wire.to.as_str()))]
    pub async fn send(&self, wire: Wire<'_>) -> Outcome {
        match self {
            Transport::File { dir } => write_eml(dir, wire).await,
            Transport::Smtp { smtp, .. } => {
                smtp.send(wire.envelope_from, wire.to, wire.bytes).await
            }
        }
    }
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

    #[tokio::test]
    async fn the_outbox_replaces_a_message_written_twice() {
        let dir = tempfile::tempdir().unwrap();
        let t = Transport::File {
            dir: dir.path().to_path_buf(),
        };
        let wire = Wire {
            envelope_from: "a@example.org",
            to: &SubscriberEmail::parse("b@example.org").unwrap(),
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
            to: &SubscriberEmail::parse("b@example.org").unwrap(),
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
