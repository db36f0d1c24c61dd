//! The mails a sign-up sends: the confirmation link, or, for an address
//! that is active already, a notice with its settings links. Composed from
//! the page templates (`confirm.*`, `already-subscribed.*`) and sent at
//! once, one connection per mail.

use std::time::Duration;

use chrono::Utc;
use minijinja::context;

use super::Pages;
use crate::config::Config;
use crate::delivery::notice::{Notice, NoticeOutcome};
use crate::mail::verp::{Tag, Verp};
use crate::mail::{Outgoing, RenderError, SenderError, TemplateError};
use crate::store::{CONFIRM_TTL, Preferences};

/// How long a sign-up waits for its mail to be handed over before
/// answering anyway (the answer is the same either way).
const MAIL_TIMEOUT: Duration = Duration::from_secs(20);

/// The two mails a sign-up can send.
#[derive(Debug, Clone, Copy)]
pub(super) enum SignupMail<'a> {
    /// The link to confirm with.
    Confirm { url: &'a str },
    /// The address is active already: its settings and unsubscribe links.
    Already,
}

impl SignupMail<'_> {
    fn name(self) -> &'static str {
        match self {
            SignupMail::Confirm { .. } => "confirmation",
            SignupMail::Already => "already subscribed",
        }
    }
}

impl Pages {
    /// The subject, text and HTML of a sign-up mail to `p`.
    pub(super) fn signup_bodies(
        &self,
        mail: SignupMail<'_>,
        p: &Preferences,
    ) -> Result<(String, String, String), TemplateError> {
        let title = &self.site.title;
        let (stem, subject, ctx) = match mail {
            SignupMail::Confirm { url } => (
                "confirm",
                format!("Confirm your subscription to {title}"),
                context! {
                    confirm_url => url,
                    confirm_days => CONFIRM_TTL.as_secs() / 86_400,
                },
            ),
            SignupMail::Already => (
                "already-subscribed",
                format!("You are subscribed to {title}"),
                context! {
                    preferences_url => self.site.url(&format!("preferences/{}", p.token)),
                    unsubscribe_url => self.site.url(&format!("unsubscribe/{}", p.token)),
                },
            ),
        };
        let ctx = context! {
            publication => self.publication.clone(),
            email => p.email.as_str(),
            name => p.name.as_ref().map(|n| n.as_str()),
            ..ctx
        };
        let text = self.templates.render(&format!("{stem}.txt"), &ctx)?;
        let html = self.templates.render(&format!("{stem}.html"), &ctx)?;
        Ok((subject, text, html))
    }

    /// Build and send one sign-up mail; failures are logged, not shown (the
    /// answer must be the same for every address).
    pub(super) async fn send_signup_mail(
        &self,
        config: &Config,
        verp: Option<&Verp>,
        mail: SignupMail<'_>,
        p: &Preferences,
    ) {
        let kind = mail.name();
        let outgoing = match self.signup_message(mail, p) {
            Ok(mut m) => {
                // A bounce of it then names the subscriber (VERP).
                if let Some(v) = verp {
                    m.envelope_from = v.envelope_sender(Tag::Signup(p.id));
                }
                m
            }
            Err(e) => {
                tracing::error!(subscriber = p.id, error = %e, "cannot build the sign-up mail");
                return;
            }
        };
        let stem = format!(
            "signup-{}",
            outgoing
                .message_id
                .trim_start_matches("<signup.")
                .split('@')
                .next()
                .unwrap_or("mail")
        );
        let notice = Notice {
            message: &outgoing,
            file_stem: &stem,
        };
        match notice.send(&config.mail, Some(MAIL_TIMEOUT)).await {
            Ok(NoticeOutcome::Sent { .. }) => {
                tracing::info!(subscriber = p.id, kind, "sign-up mail sent");
            }
            Ok(NoticeOutcome::NotAccepted { reply }) => {
                tracing::warn!(
                    subscriber = p.id,
                    kind,
                    reply = %loggable_reply(&reply, p, &outgoing),
                    "sign-up mail not accepted"
                );
            }
            Ok(NoticeOutcome::NoAnswer) => {
                tracing::warn!(subscriber = p.id, kind, "sign-up mail: no answer in time");
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot send the sign-up mail");
            }
        }
    }

    fn signup_message(
        &self,
        mail: SignupMail<'_>,
        p: &Preferences,
    ) -> Result<Outgoing, SignupMailError> {
        let sender = self
            .sender
            .as_ref()
            .map_err(|why| SignupMailError::Sender(why.clone()))?;
        let (subject, text, html) = self.signup_bodies(mail, p)?;
        let message = crate::mail::message::notice(
            sender,
            &p.email,
            p.name.as_ref(),
            &subject,
            text,
            html,
            Utc::now(),
        )?;
        Ok(message)
    }
}

/// Why a sign-up mail could not be built (logged; the reader sees the
/// same page either way).
#[derive(Debug, thiserror::Error)]
enum SignupMailError {
    /// `mail.from`, `mail.reply_to` or the DKIM key cannot be used.
    #[error(transparent)]
    Sender(SenderError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Message(#[from] RenderError),
}

/// A sign-up mail's refusal as the log may keep it: without the address,
/// neither as the list has it (`bücher.example`) nor as it went on the wire
/// (`xn--bcher-kva.example`).
fn loggable_reply(reply: &str, p: &Preferences, sent: &Outgoing) -> String {
    let wire = sent.to.envelope().unwrap_or_default();
    without_address(reply, &[p.email.as_str(), &wire])
}

/// A server's reply with the recipient's address taken out (any case, in
/// each of its `forms`): refusals quote it ("550 5.1.1 <ann@example.org>:
/// no such user"), and the log keeps only the subscriber's id. A server
/// quotes the address it was given, the wire form (an IDN domain as its
/// A-label), so that form goes with the stored one. ASCII lowercasing
/// keeps every byte in place, so positions in the lowercased copy are
/// positions in the reply.
fn without_address(reply: &str, forms: &[&str]) -> String {
    let mut out = reply.to_string();
    for form in forms {
        out = without_one(&out, form);
    }
    out
}

fn without_one(reply: &str, address: &str) -> String {
    let needle = address.to_ascii_lowercase();
    if needle.is_empty() {
        return reply.to_string();
    }
    let lower = reply.to_ascii_lowercase();
    let mut out = String::with_capacity(reply.len());
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        out.push_str(&reply[from..from + at]);
        out.push_str("(the address)");
        from += at + needle.len();
    }
    out.push_str(&reply[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::{MailFormat, SubscriberEmail, SubscriberName, Token};
    use crate::web::pages::tests::pages;

    #[test]
    fn sign_up_mails_carry_their_links_in_both_parts() {
        let (_d, pages) = pages();
        let p = Preferences {
            id: 7,
            email: SubscriberEmail::parse("ann@example.org").unwrap(),
            name: SubscriberName::parse("Ann <b>Lee</b>").unwrap(),
            status: crate::subscribers::Status::Active,
            format: MailFormat::Html,
            token: Token::generate().unwrap(),
        };
        let url = "https://news.example.org/ledger/confirm/abc_DEF-123";
        let (subject, text, html) = pages
            .signup_bodies(SignupMail::Confirm { url }, &p)
            .unwrap();
        assert_eq!(subject, "Confirm your subscription to The <Test> Ledger");
        assert!(
            text.contains(url) && text.contains("Dear Ann <b>Lee</b>,"),
            "{text}"
        );
        assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
        assert!(html.contains("Dear Ann &lt;b&gt;Lee&lt;/b&gt;,"), "{html}");

        let (_, text, html) = pages.signup_bodies(SignupMail::Already, &p).unwrap();
        let prefs = format!("https://news.example.org/ledger/preferences/{}", p.token);
        assert!(text.contains(&prefs) && html.contains(&prefs));
        assert!(!text.contains("/confirm/") && !html.contains("/confirm/"));

        let m = pages.signup_message(SignupMail::Already, &p).unwrap();
        let raw = String::from_utf8(m.bytes).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-generated"));
        assert!(!raw.contains("List-Unsubscribe"), "not list mail");
        assert!(m.message_id.starts_with("<signup.") && m.message_id.ends_with("@example.org>"));
    }

    #[test]
    fn without_a_sender_the_mail_is_not_built_and_the_config_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[publication]\ntitle = \"Ledger\"\nbase_url = \"https://news.example.org/\"\n",
        )
        .unwrap();
        let config = crate::config::Config::load_with_env(&path, &[]).unwrap();
        let pages = Pages::load(&config).unwrap();
        let p = Preferences {
            id: 7,
            email: SubscriberEmail::parse("ann@example.org").unwrap(),
            name: None,
            status: crate::subscribers::Status::Pending,
            format: MailFormat::Html,
            token: Token::generate().unwrap(),
        };
        let e = pages.signup_message(SignupMail::Already, &p).unwrap_err();
        assert!(matches!(e, SignupMailError::Sender(_)), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("mail.from is not set in {}", path.display())),
            "{e}"
        );
    }

    #[test]
    fn a_refusal_quoting_an_idn_address_in_its_wire_form_loses_it_too() {
        let (_d, pages) = pages();
        let p = Preferences {
            id: 7,
            email: SubscriberEmail::parse("Ann@Bücher.example").unwrap(),
            name: None,
            status: crate::subscribers::Status::Pending,
            format: MailFormat::Html,
            token: Token::generate().unwrap(),
        };
        let sent = pages.signup_message(SignupMail::Already, &p).unwrap();
        assert_eq!(sent.to.envelope().unwrap(), "Ann@xn--bcher-kva.example");
        let reply = "550 5.1.1 <ann@XN--BCHER-KVA.example>: no such user here (Ann@bücher.example)";
        assert_eq!(
            loggable_reply(reply, &p, &sent),
            "550 5.1.1 <(the address)>: no such user here ((the address))"
        );
    }

    #[test]
    fn replies_lose_the_address_in_any_case() {
        assert_eq!(
            without_address(
                "550 5.1.1 <Ann.Lee@Example.org>: no such user (ann.lee@example.org)",
                &["Ann.Lee@example.org"]
            ),
            "550 5.1.1 <(the address)>: no such user ((the address))"
        );
        assert_eq!(
            without_address("451 4.3.0 try later – ü", &["x@example.org"]),
            "451 4.3.0 try later – ü"
        );
    }
}
