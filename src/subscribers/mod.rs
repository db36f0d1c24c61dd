//! Subscribers: who gets the digest. Domain types that parse (never just
//! validate), so an address or name that reached the store is known good.
//!
//! - [`SubscriberEmail`]: a checked address (no header or recipient smuggling),
//!   domain lowercased, unique case-insensitively by its [`key`](SubscriberEmail::key).
//! - [`SubscriberName`]: a display name without control characters.
//! - [`Token`]: 256 random bits, URL-safe base64.
//! - [`MailFormat`]: HTML (multipart) or plain-text digests.
//! - [`csv`]: the import/export file format.

pub mod csv;
mod email;
mod format;
mod name;
mod token;

use std::fmt;

pub use email::{EmailError, SubscriberEmail};
pub use format::MailFormat;
pub use name::{NameError, SubscriberName};
pub use token::{Token, TokenError};

/// A subscriber as the store knows it. Times are RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Subscriber {
    pub id: i64,
    pub email: SubscriberEmail,
    pub name: Option<SubscriberName>,
    pub status: Status,
    /// Never serialized: it is the subscriber's secret.
    #[serde(skip)]
    pub token: Token,
    pub created_at: String,
    pub confirmed_at: Option<String>,
    pub unsubscribed_at: Option<String>,
}

/// One line of a subscriber list: what `add`, `import` and `export` carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberRow {
    pub email: SubscriberEmail,
    pub name: Option<SubscriberName>,
    pub status: Status,
}

/// Where a subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Signed up, not yet confirmed: gets no issues.
    Pending,
    /// Gets every issue published while active.
    Active,
    Unsubscribed,
    /// A permanent failure (5.1.x) marked the address dead.
    Bounced,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pending,
        Status::Active,
        Status::Unsubscribed,
        Status::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Unsubscribed => "unsubscribed",
            Status::Bounced => "bounced",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
