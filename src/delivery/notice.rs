//! One message, once: a mail that is not a digest to the list and has no
//! row in the ledger (a sign-up confirmation, the "already subscribed"
//! notice, an `issues send --to` test copy), handed to the configured
//! transport on a connection of its own and closed after it.
//!
//! Such mails are rare (sign-ups are rate-limited, test copies are typed by
//! hand), so a connection kept open between them would mostly sit idle
//! until the server dropped it. The send loop ([`super::send`]) is the
//! other way a message reaches the wire; nothing else builds a
//! [`Wire`].
//!
//! Nothing is retried or recorded here: the caller says what happened
//! (the sign-up logs it, the CLI prints it).

use std::time::Duration;

use super::transport::{Outcome, Transport, TransportError, Wire};
use crate::config::MailConfig;
use crate::mail::Outgoing;

/// A composed one-off message.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    /// The whole message, its envelope included.
    pub message: &'a Outgoing,
    /// The outbox file's name with the file transport (see [`Wire`]).
    pub file_stem: &'a str,
}

/// What became of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// The server took it (or it is in the outbox); its reply.
    Sent { reply: String },
    /// Refused, for now or for good, or no server answered the connection:
    /// the reply or the reason. Not tried again.
    NotAccepted { reply: String },
    /// No answer within the time the caller allowed: it may or may not
    /// arrive.
    NoAnswer,
}

/// Why a notice could not be handed over at all.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// The configured transport cannot be set up (outbox folder, TLS
    /// settings, password variable).
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl Notice<'_> {
    /// Send through the transport `[mail]` configures, waiting at most
    /// `wait` for the handover when given, then close the connection.
    pub async fn send(
        self,
        mail: &MailConfig,
        wait: Option<Duration>,
    ) -> Result<NoticeOutcome, NoticeError> {
        let transport = Transport::from_config(mail)?;
        let wire = Wire {
            envelope_from: &self.message.envelope_from,
            to: &self.message.to,
            bytes: &self.message.bytes,
            file_stem: self.file_stem,
        };
        let outcome = match wait {
            Some(wait) => tokio::time::timeout(wait, transport.send(wire)).await.ok(),
            None => Some(transport.send(wire).await),
        };
        transport.close().await;
        Ok(match outcome {
            Some(Outcome::Sent { reply }) => NoticeOutcome::Sent { reply },
            Some(Outcome::Retry { reply, .. } | Outcome::Failed { reply, .. }) => {
                NoticeOutcome::NotAccepted { reply }
            }
            None => NoticeOutcome::NoAnswer,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn message() -> Outgoing {
        Outgoing {
            message_id: "<n.1@example.org>".into(),
            envelope_from: "news@example.org".into(),
            to: "ann@example.org".into(),
            bytes: b"Subject: hello\r\n\r\nhi\r\n".to_vec(),
        }
    }

    fn mail_config(dir: &Path, mail: &str) -> MailConfig {
        Config::parse(
            &dir.join("config.toml"),
            &format!("[publication]\ntitle = \"T\"\nbase_url = \"https://x.org/\"\n[mail]\n{mail}"),
            &[],
        )
        .unwrap()
        .mail
    }

    #[tokio::test]
    async fn a_notice_goes_to_the_outbox_under_its_stem() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mail = mail_config(
            dir.path(),
            &format!("transport = \"file\"\noutbox = {:?}\n", outbox),
        );
        let m = message();
        let notice = Notice {
            message: &m,
            file_stem: "signup-abc",
        };
        let outcome = notice.send(&mail, None).await.unwrap();
        assert!(
            matches!(&outcome, NoticeOutcome::Sent { reply } if reply.contains("signup-abc.eml")),
            "{outcome:?}"
        );
        assert_eq!(
            std::fs::read(outbox.join("signup-abc.eml")).unwrap(),
            m.bytes
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_accepted() {
        let dir = tempfile::tempdir().unwrap();
        // Port 9 on loopback: nothing listens there.
        let mail = mail_config(
            dir.path(),
            "transport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\n",
        );
        let m = message();
        let notice = Notice {
            message: &m,
            file_stem: "x",
        };
        let outcome = notice.send(&mail, Some(Duration::from_secs(20))).await;
        assert!(
            matches!(outcome, Ok(NoticeOutcome::NotAccepted { .. })),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_no_answer_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        // Accepts the connection and never says a word (no greeting).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(conn);
        });
        let mail = mail_config(
            dir.path(),
            &format!(
                "transport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n"
            ),
        );
        let m = message();
        let notice = Notice {
            message: &m,
            file_stem: "x",
        };
        let outcome = notice
            .send(&mail, Some(Duration::from_millis(200)))
            .await
            .unwrap();
        assert_eq!(outcome, NoticeOutcome::NoAnswer);
        held.abort();
    }

    #[tokio::test]
    async fn a_transport_that_cannot_be_set_up_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mail = mail_config(
            dir.path(),
            "transport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nusername = \"u\"\npassword_env = \"GAZETTE_TEST_NOTICE_UNSET_PASSWORD\"\n",
        );
        let m = message();
        let notice = Notice {
            message: &m,
            file_stem: "x",
        };
        let err = notice.send(&mail, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "mail.smtp.password_env names GAZETTE_TEST_NOTICE_UNSET_PASSWORD, which is not set"
        );
    }
}
