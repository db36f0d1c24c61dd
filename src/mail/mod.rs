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

pub use message::{Outgoing, Sender};
pub use render::{Digest, Parts, Recipient, RenderError, Renderer, TemplateError};
