//! Digest email: templates rendered once per issue ([`render`]), one message
//! per recipient ([`message`]), optional DKIM signing ([`dkim`]).
//!
//! ```text
//! Renderer::load(config) ──► Renderer::prepare(issue) ──► Digest ──► Digest::message(recipient) ──► Outgoing
//!  (templates, subject)       (render + inline CSS once)              (fill slots, lettre, DKIM)
//! ```

pub mod dkim;
pub mod message;
mod qp;
pub mod render;
pub mod verp;

pub use message::{Outgoing, Sender, SenderError};
pub use render::{Digest, Parts, Renderer, TemplateError};

use crate::subscribers::{SubscriberEmail, SubscriberName, Token};

// `Recipient` and `RenderError` are shared by `render` (which fills a
// digest in) and `message` (which builds the mail): they live here so that
// neither of the two imports the other for them.

/// One subscriber, as [`Digest::message`] needs them: parsed values, so
/// nothing is checked again here (what can be mailed is
/// [`SubscriberEmail`]'s decision).
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub email: &'a SubscriberEmail,
    pub name: Option<&'a SubscriberName>,
    /// URL-safe: the last segment of the unsubscribe and preferences URLs.
    pub token: &'a Token,
    /// The delivery row's TAG (`d42-<mac>`, [`verp::VerpKey::tag`]) when
    /// the message is one of the ledger's: the Message-ID carries it, so a
    /// report quoting that Message-ID names its row by id. `None` for a
    /// preview or a test copy (no row): the Message-ID hides the token.
    pub tag: Option<&'a str>,
}

/// The sample reader of a preview (`gazette issues preview`, the admin
/// console's preview): an address and name at example.org and a
/// placeholder token whose links find nobody, so a preview shows every
/// recipient part filled in, exactly as a subscriber's copy has them, and
/// acts on no one.
#[derive(Debug, Clone)]
pub struct SampleReader {
    email: SubscriberEmail,
    name: Option<SubscriberName>,
    token: Token,
}

impl SampleReader {
    pub const EMAIL: &'static str = "preview@example.org";
    pub const NAME: &'static str = "Preview Reader";

    /// The constants parse (a unit test says so); the error is typed all
    /// the same rather than a panic.
    pub fn new() -> Result<SampleReader, RenderError> {
        let email =
            SubscriberEmail::parse(Self::EMAIL).map_err(|reason| RenderError::Recipient {
                email: Self::EMAIL.to_string(),
                reason,
            })?;
        Ok(SampleReader {
            email,
            // A name that did not parse would leave the preview nameless.
            name: SubscriberName::parse(Self::NAME).ok().flatten(),
            token: Token::placeholder("preview-token"),
        })
    }

    pub fn recipient(&self) -> Recipient<'_> {
        Recipient {
            email: &self.email,
            name: self.name.as_ref(),
            token: &self.token,
            tag: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Template(#[from] TemplateError),
    // (The cause is in the message, not a `source`: reports that print the
    // chain would say it twice.)
    #[error("article {article}: cannot convert its HTML to text: {error}")]
    Text {
        article: String,
        error: render::TextError,
    },
    #[error("cannot inline the CSS of {template}: {message}")]
    Css { template: String, message: String },
    /// `mail.from` / `mail.reply_to` / `[mail.dkim]` unusable for sending.
    #[error(transparent)]
    Sender(#[from] SenderError),
    #[error("recipient {email:?}: cannot be mailed: {reason}")]
    Recipient {
        email: String,
        reason: crate::subscribers::EmailError,
    },
    #[error("cannot build the message for {to}: {message}")]
    Message { to: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_reader_has_every_recipient_part() {
        let reader = SampleReader::new().unwrap();
        let r = reader.recipient();
        assert_eq!(r.email.as_str(), SampleReader::EMAIL);
        assert_eq!(r.name.map(|n| n.as_str()), Some(SampleReader::NAME));
        // A token no link accepts: a preview acts on no one.
        assert_eq!(r.token.as_str(), "preview-token");
        assert!(Token::parse(r.token.as_str()).is_err());
    }
}
