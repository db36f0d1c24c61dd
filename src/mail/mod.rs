//! Digest email. So far: DKIM keys for `[mail.dkim]` ([`dkim`]).

pub mod dkim;
