//! `serve`'s side of returned mail: the [`smtpd::Inbox`] that accepts only
//! our addresses at RCPT and processes each message before answering 250,
//! so its effect is in the database when the MTA in front hears "accepted".

use std::sync::Arc;
use std::time::Duration;

use super::smtpd::{self, DeliverError, Envelope, Inbox, Limits, Rcpt};
use super::{Incoming, Processor};
use crate::config::InboundConfig;
use crate::store::Via;

/// The inbox of `serve`'s SMTP listener.
#[derive(Debug, Clone)]
pub struct Listener {
    processor: Processor,
}

impl Listener {
    pub fn new(processor: Processor) -> Listener {
        Listener { processor }
    }

    /// The listener's limits from `[inbound]`.
    pub fn limits(config: &InboundConfig) -> Limits {
        Limits {
            max_message_bytes: config.max_message_bytes,
            session_timeout: config.session_timeout,
            command_timeout: Duration::from_secs(60).min(config.session_timeout),
            max_sessions: config.max_sessions,
            // One recipient per transaction: each return is about the one
            // address it came to, and recorded once by its bytes; a second
            // RCPT gets 452 and the MTA sends it again on its own.
            max_recipients: 1,
        }
    }

    /// Serve on `listener` until `stop` resolves.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        limits: Limits,
        stop: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "gazette".to_string());
        smtpd::serve(listener, Arc::new(self), limits, hostname, stop).await
    }
}

impl Inbox for Listener {
    fn recipient(&self, address: &str) -> Rcpt {
        match self.processor.verp().owns(address) {
            Some(_) => Rcpt::Accept,
            None => Rcpt::Refuse,
        }
    }

    async fn deliver(&self, envelope: Envelope) -> Result<(), DeliverError> {
        let peer = envelope.peer.to_string();
        self.processor
            .process(Incoming {
                via: Via::Smtp,
                origin: Some(&peer),
                recipients: &envelope.recipients,
                raw: envelope.data,
            })
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "returned mail: cannot record it; the sender is asked to try again");
                DeliverError::Temporary("cannot record the message now; try again later".into())
            })
    }
}
