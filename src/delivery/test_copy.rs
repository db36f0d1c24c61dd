//! A test copy of an issue to one address, outside the ledger: what
//! `gazette issues send SLUG --to EMAIL` and the admin console's "send a
//! test copy" both do, so the two cannot drift apart.
//!
//! The copy is the digest as a subscriber gets it: when the address is on
//! the list, with that subscriber's own name and links (it goes to their
//! own address); otherwise with a placeholder token whose links find
//! nobody. It goes through [`super::notice`] on a connection of its own and
//! is not recorded: the caller reports the outcome (and the console audits
//! the action).

use std::time::Duration;

use super::notice::{Notice, NoticeError, NoticeOutcome};
use crate::config::Config;
use crate::content::Issue;
use crate::mail::{Recipient, TemplateError};
use crate::mail::{RenderError, Renderer};
use crate::store::{Store, StoreError};
use crate::subscribers::{SubscriberEmail, Token};

/// Why no test copy could be handed over.
#[derive(Debug, thiserror::Error)]
pub enum TestCopyError {
    #[error(
        "mail.from is not set in {}: add `from = \"Name <address@example.org>\"` under [mail]",
        .0.display()
    )]
    NoSender(std::path::PathBuf),
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notice(#[from] NoticeError),
}

/// What became of a test copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCopy {
    pub outcome: NoticeOutcome,
    /// The copy's Message-ID, to find it in a mailbox or a server's log.
    pub message_id: String,
}

impl TestCopy {
    /// The server took it (or it is in the outbox).
    pub fn sent(&self) -> bool {
        matches!(self.outcome, NoticeOutcome::Sent { .. })
    }

    /// The server's reply, or why there is none.
    pub fn reply(&self) -> &str {
        match &self.outcome {
            NoticeOutcome::Sent { reply } | NoticeOutcome::NotAccepted { reply } => reply,
            NoticeOutcome::NoAnswer => "no answer",
        }
    }
}

/// Render `issue` for `email` and send it once. `store`, when there is one,
/// gives a subscriber's own name and links; `wait` bounds the handover
/// (`None`: the transport's own timeouts answer).
#[tracing::instrument(skip_all, fields(issue = %issue.slug))]
pub async fn send_test_copy(
    config: &Config,
    store: Option<&Store>,
    issue: &Issue,
    email: &SubscriberEmail,
    wait: Option<Duration>,
) -> Result<TestCopy, TestCopyError> {
    if config.mail.from.is_none() {
        return Err(TestCopyError::NoSender(config.path.clone()));
    }
    let known = match store {
        Some(store) => store.subscriber_by_email(email).await?,
        None => None,
    };
    let placeholder = Token::placeholder("test-copy");
    let digest = Renderer::load(config)?.prepare(issue)?;
    let out = digest.message(&Recipient {
        email,
        name: known.as_ref().and_then(|s| s.name.as_ref()),
        token: known.as_ref().map_or(&placeholder, |s| &s.token),
        // A test copy is no delivery row: nothing returned can name one.
        tag: None,
    })?;
    let stem = format!("{}/test-copy", issue.slug);
    let notice = Notice {
        message: &out,
        file_stem: &stem,
    };
    let outcome = notice.send(&config.mail, wait).await?;
    Ok(TestCopy {
        outcome,
        message_id: out.message_id,
    })
}
