//! Subscribers: who gets the digest. Domain types that parse (never just
//! validate), so an address or name that reached the store is known good.

use std::fmt;

/// Where a subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
