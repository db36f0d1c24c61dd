//! The bridge from `mail` to the send loop: one prepared digest per issue,
//! one message per claimed row.

use std::collections::HashMap;
use std::sync::Arc;

use crate::mail::verp::{Tag, Verp, VerpKey};
use crate::mail::{Digest, Recipient, RenderError};
use crate::store::Claimed;

/// A message for one claimed row.
#[derive(Debug, Clone)]
pub struct Composed {
    /// With angle brackets; stable per (issue, subscriber).
    pub message_id: String,
    pub envelope_from: String,
    pub bytes: Vec<u8>,
}

/// Turns a claimed row into its message. Implemented by the mail renderer;
/// an `Err` is recorded as a failed delivery with that reason.
pub trait Composer: Send + Sync {
    fn compose(&self, row: &Claimed) -> Result<Composed, ComposeError>;
}

/// Why an issue's digest is not ready: every row of that issue fails with it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unprepared {
    #[error("cannot render issue {slug}: {error}")]
    Render {
        slug: String,
        /// Shared by every row of the issue.
        error: Arc<RenderError>,
    },
    #[error(
        "issue {slug} is no longer in the content folder, or has a problem (see `gazette check`)"
    )]
    Missing { slug: String },
}

/// Why one row has no message; recorded as its reply (after "not sent: ").
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Unprepared(#[from] Unprepared),
    #[error("issue {slug} was not prepared")]
    NotPrepared { slug: String },
    #[error(transparent)]
    Message(#[from] RenderError),
}

/// Digests of the issues being sent, by slug. An issue that could not be
/// prepared carries the reason, and its rows fail with it.
#[derive(Default)]
pub struct DigestComposer {
    digests: HashMap<String, Result<Digest, Unprepared>>,
    /// The database's key: each Message-ID carries its row's TAG
    /// ([`crate::mail::message::message_id`]). `None` only in unit tests.
    key: Option<VerpKey>,
    /// With `mail.bounce_address`: each message's envelope sender names
    /// its delivery row (VERP).
    verp: Option<Arc<Verp>>,
}

impl DigestComposer {
    pub fn new(key: VerpKey, verp: Option<Arc<Verp>>) -> DigestComposer {
        DigestComposer {
            digests: HashMap::new(),
            key: Some(key),
            verp,
        }
    }

    pub fn insert(&mut self, slug: &str, digest: Result<Digest, Unprepared>) {
        self.digests.insert(slug.to_string(), digest);
    }
}

impl Composer for DigestComposer {
    fn compose(&self, row: &Claimed) -> Result<Composed, ComposeError> {
        let digest = match self.digests.get(&row.issue_slug) {
            Some(Ok(d)) => d,
            Some(Err(why)) => return Err(why.clone().into()),
            None => {
                return Err(ComposeError::NotPrepared {
                    slug: row.issue_slug.clone(),
                });
            }
        };
        let tag = self
            .key
            .as_ref()
            .map(|k| k.tag(Tag::Delivery(row.delivery_id)));
        let recipient = Recipient {
            email: &row.email,
            name: row.name.as_ref(),
            token: &row.token,
            tag: tag.as_deref(),
        };
        let out = digest.message_as(&recipient, row.format)?;
        let envelope_from = match &self.verp {
            Some(v) => v.envelope_sender(Tag::Delivery(row.delivery_id)),
            None => out.envelope_from,
        };
        Ok(Composed {
            message_id: out.message_id,
            envelope_from,
            bytes: out.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::{MailFormat, SubscriberEmail, Token};

    fn row(slug: &str) -> Claimed {
        Claimed {
            delivery_id: 1,
            issue_slug: slug.into(),
            subscriber_id: 1,
            email: SubscriberEmail::parse("a@example.org").unwrap(),
            name: None,
            token: Token::generate().unwrap(),
            format: MailFormat::Html,
            attempts: 1,
        }
    }

    #[test]
    fn a_row_of_an_issue_that_is_not_ready_fails_with_the_issues_reason() {
        let mut composer = DigestComposer::default();
        composer.insert(
            "gone",
            Err(Unprepared::Missing {
                slug: "gone".into(),
            }),
        );
        let e = composer.compose(&row("gone")).unwrap_err();
        assert!(matches!(
            e,
            ComposeError::Unprepared(Unprepared::Missing { .. })
        ));
        assert_eq!(
            e.to_string(),
            "issue gone is no longer in the content folder, or has a problem (see `gazette check`)"
        );
        let e = composer.compose(&row("other")).unwrap_err();
        assert_eq!(e.to_string(), "issue other was not prepared");
    }
}
