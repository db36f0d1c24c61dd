//! Inbound mail: what comes back to the publication (bounces, complaints,
//! mailto unsubscribes), read from an SMTP listener or from mailboxes.

pub mod mailbox;
