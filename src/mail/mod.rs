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
