//! Mail that comes back to gazette: bounces, complaints, mailto unsubscribes.

pub mod smtpd;
