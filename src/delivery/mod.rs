//! Delivery: from the ledger's due rows to the transport and back.
//!
//! `mail` composes messages; this module decides who gets what and when,
//! hands messages to a [`transport::Transport`], and records every outcome in
//! the ledger (`store::deliveries`). One-off mails outside the ledger
//! (sign-up mails, test copies) go through [`notice`].
//!
//! [`Outcome`] (what became of one attempt) and the reading of a refusal
//! live here, beside the modules: the transport and the SMTP client both
//! speak them, and neither imports the other for it.

pub mod compose;
pub mod notice;
pub mod publish;
pub mod ratelimit;
pub mod send;
mod smtp_client;
pub mod test_copy;
pub mod tls;
pub mod transport;

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

/// RFC 3463: 5.1.x is an addressing failure (no such mailbox, bad domain...).
fn is_bad_mailbox(reply: &str) -> bool {
    reply
        .split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .any(|w| w.starts_with("5.1.") && w.len() > 4)
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
}
