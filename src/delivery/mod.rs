//! Delivery: from the ledger's due rows to the transport and back.
//!
//! `mail` composes messages; this module decides who gets what and when,
//! hands messages to a [`transport::Transport`], and records every outcome in
//! the ledger (`store::deliveries`). One-off mails outside the ledger
//! (sign-up mails, test copies) go through [`notice`].

pub mod compose;
pub mod notice;
mod plain_smtp;
pub mod publish;
pub mod ratelimit;
pub mod send;
pub mod tls;
pub mod transport;
