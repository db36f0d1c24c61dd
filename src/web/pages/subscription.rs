//! What a reader does with the list: the subscribe form, the confirm page
//! and its button, and the pages behind a subscriber's permanent token
//! (unsubscribe, preferences). The mails a sign-up sends are
//! [`super::signup_mail`].

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use minijinja::{Value, context};

use super::Pages;
use super::render::{PRIVATE, error_values};
use super::signup_mail::SignupMail;
use crate::store::{CONFIRM_TTL, Preferences, PreferencesChange, Signup, StoreError};
use crate::subscribers::{EmailError, MailFormat, SubscriberEmail, SubscriberName, Token};
use crate::web::AppState;

/// The subscribe form's fields; a missing one is empty.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct SubscribeForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

/// Line breaks and other control characters, anywhere (before any
/// trimming): no browser sends them in a one-line field, and in an address
/// or a name they are how headers get injected.
fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

pub(super) async fn subscribe(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SubscribeForm>, FormRejection>,
) -> Response {
    let pages = &state.pages;
    let root = "./";
    if let Some(refused) = pages.cross_site(&headers, root) {
        return refused;
    }
    let form = match form {
        Ok(Form(f)) => f,
        Err(r) => return pages.rejected(root, &r),
    };
    let again = |title: &str, message: &str| {
        let mut values = error_values(StatusCode::BAD_REQUEST, title, message, true);
        // Show what was sent, minus anything that cannot be shown.
        let clean = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
        values = context! {
            form => context! { email => clean(&form.email), name => clean(&form.name) },
            ..values
        };
        pages.page(StatusCode::BAD_REQUEST, "error.html", root, values, PRIVATE)
    };
    if has_control(&form.email) || has_control(&form.name) {
        return again(
            "Line breaks are not allowed",
            "The address and the name must be on one line, without line breaks, tabs or other control characters.",
        );
    }
    let email = match SubscriberEmail::parse_new(&form.email, state.config.mail.smtputf8) {
        Ok(e) => e,
        Err(EmailError::NeedsSmtputf8) => {
            return again(
                "That address cannot be used",
                "The address is valid, but this site can only send to addresses whose part before the @ is written with ASCII letters, digits and punctuation.",
            );
        }
        Err(e) => {
            return again(
                "That is not an email address",
                &format!(
                    "The address you gave is not a valid email address ({e}). Please check it and try again."
                ),
            );
        }
    };
    let name = match SubscriberName::parse(&form.name) {
        Ok(n) => n,
        Err(e) => {
            return again(
                "That name cannot be used",
                &format!("The name {e}. Please shorten it, or leave it empty."),
            );
        }
    };
    if let Err(wait) = pages.limiter.check(client.ip(), Instant::now()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        let mut res = pages.error(
            StatusCode::TOO_MANY_REQUESTS,
            root,
            "Too many requests",
            &format!(
                "This connection has sent several sign-ups in a short time. Please wait {} and try again.",
                if secs < 90 {
                    format!("{secs} seconds")
                } else {
                    format!("{} minutes", secs.div_ceil(60))
                }
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    if let Err(why) = &pages.sender {
        // Mail cannot go out to anybody: say so (this leaks nothing).
        return pages.server_error(root, why);
    }
    match state
        .store
        .request_signup(&email, name.as_ref(), Utc::now())
        .await
    {
        Ok(Signup::Confirm(c)) => {
            let link = state
                .config
                .publication
                .url(&format!("confirm/{}", c.token));
            let p = Preferences {
                id: c.subscriber_id,
                email: c.email,
                name: c.name,
                status: crate::subscribers::Status::Pending,
                format: MailFormat::Html,
                token: c.token,
            };
            pages
                .send_signup_mail(
                    &state.config,
                    state.verp().await.as_deref(),
                    SignupMail::Confirm { url: &link },
                    &p,
                )
                .await;
        }
        Ok(Signup::AlreadyActive(p)) => {
            pages
                .send_signup_mail(
                    &state.config,
                    state.verp().await.as_deref(),
                    SignupMail::Already,
                    &p,
                )
                .await;
        }
        Ok(Signup::Throttled) => {
            tracing::info!("sign-up mail limit reached for an address; nothing sent");
        }
        Err(e) => return pages.server_error(root, &e),
    }
    pages.page(
        StatusCode::OK,
        "subscribe.html",
        root,
        pages.subscribe_values(),
        PRIVATE,
    )
}

/// The token in a path, if it is one.
fn token(path: Result<Path<String>, PathRejection>) -> Option<Token> {
    let Path(s) = path.ok()?;
    Token::parse(&s).ok()
}

/// The confirm page: who the link is for, and the button. Reads only.
pub(super) async fn confirm_page(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let pages = &state.pages;
    let Some(t) = token(path) else {
        return pages.bad_link();
    };
    match state.store.pending_confirmation(&t, Utc::now()).await {
        Ok(Some(p)) => pages.page(
            StatusCode::OK,
            "confirm-page.html",
            "../",
            pages.confirm_values(&p),
            PRIVATE,
        ),
        Ok(None) => pages.bad_link(),
        Err(e) => pages.server_error("../", &e),
    }
}

/// The confirm page's button: uses the link.
pub(super) async fn confirm(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = state.pages.cross_site(&headers, "../") {
        return refused;
    }
    let act = async |t: Token| {
        let found = state.store.confirm_signup(&t, Utc::now()).await;
        if let Ok(Some(p)) = &found {
            tracing::info!(subscriber = p.id, "subscription confirmed");
        }
        found
    };
    state.pages.token_page(path, "confirmed.html", act).await
}

pub(super) async fn unsubscribe_page(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let act = async |t: Token| state.store.preferences(&t).await;
    state.pages.token_page(path, "unsubscribe.html", act).await
}

/// The button, and RFC 8058 one-click: the body is not read (a mail
/// provider posts `List-Unsubscribe=One-Click`; a browser posts the form),
/// no cookie or CSRF token is wanted: the token in the URL is the secret.
/// No `Origin` check either: a provider's one-click POST may come from its
/// servers with no `Origin`, or from a webmail page with its own (RFC 8058
/// asks nothing of it), and a forged POST would need the secret token.
pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let act = async |t: Token| {
        let found = state.store.unsubscribe_by_token(&t, Utc::now()).await;
        if let Ok(Some(p)) = &found {
            tracing::info!(subscriber = p.id, "unsubscribed by link");
        }
        found
    };
    state.pages.token_page(path, "unsubscribed.html", act).await
}

pub(super) async fn preferences(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let act = async |t: Token| state.store.preferences(&t).await;
    state.pages.token_page(path, "preferences.html", act).await
}

/// The preferences form; a field left out is left as it is.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct PreferencesForm {
    name: Option<String>,
    format: Option<String>,
}

pub(super) async fn save_preferences(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    form: Result<Form<PreferencesForm>, FormRejection>,
) -> Response {
    let pages = &state.pages;
    if let Some(refused) = pages.cross_site(&headers, "../") {
        return refused;
    }
    // An unknown link is a 404 whatever the body: check it first.
    let Some(t) = token(path) else {
        return pages.bad_link();
    };
    match state.store.preferences(&t).await {
        Ok(Some(_)) => {}
        Ok(None) => return pages.bad_link(),
        Err(e) => return pages.server_error("../", &e),
    }
    let form = match form {
        Ok(Form(f)) => f,
        Err(r) => return pages.rejected("../", &r),
    };
    let mut change = PreferencesChange::default();
    if let Some(n) = &form.name {
        if has_control(n) {
            return pages.error(
                StatusCode::BAD_REQUEST,
                "../",
                "Line breaks are not allowed",
                "The name must be on one line, without line breaks, tabs or other control characters.",
            );
        }
        match SubscriberName::parse(n) {
            Ok(n) => change.name = Some(n),
            Err(e) => {
                return pages.error(
                    StatusCode::BAD_REQUEST,
                    "../",
                    "That name cannot be used",
                    &format!("The name {e}. Please shorten it, or leave it empty."),
                );
            }
        }
    }
    if let Some(f) = &form.format {
        match MailFormat::parse(f) {
            Some(f) => change.format = Some(f),
            None => {
                return pages.error(
                    StatusCode::BAD_REQUEST,
                    "../",
                    "Unknown email format",
                    "Choose HTML or plain text.",
                );
            }
        }
    }
    let saved = state.store.set_preferences(&t, &change, Utc::now()).await;
    pages.subscriber_page("preferences.html", saved, true)
}

impl Pages {
    pub(super) fn subscribe_values(&self) -> Value {
        context! { confirm_days => CONFIRM_TTL.as_secs() / 86_400, noindex => true }
    }

    /// A subscriber's own page: `root` is "../" for every token URL.
    pub(super) fn subscriber_values(&self, p: &Preferences, saved: bool) -> Value {
        context! {
            subscriber => context! {
                email => p.email.as_str(),
                name => p.name.as_ref().map(|n| n.as_str()),
                status => p.status.as_str(),
                format => p.format.as_str(),
            },
            saved => saved,
            preferences_url => format!("../preferences/{}", p.token),
            unsubscribe_url => format!("../unsubscribe/{}", p.token),
            noindex => true,
        }
    }

    /// The confirm page (before the button): who the link would confirm.
    pub(super) fn confirm_values(&self, p: &Preferences) -> Value {
        context! {
            subscriber => context! {
                email => p.email.as_str(),
                name => p.name.as_ref().map(|n| n.as_str()),
            },
            confirm_days => CONFIRM_TTL.as_secs() / 86_400,
            noindex => true,
        }
    }

    /// The 403 page for a form another site's page posted, or `None` when
    /// the request may go on ([`super::origin`]).
    fn cross_site(&self, headers: &HeaderMap, root: &str) -> Option<Response> {
        if self.origin.allows(headers) {
            return None;
        }
        tracing::info!(
            origin = ?headers.get(header::ORIGIN),
            "a form posted from another site was refused"
        );
        Some(self.error(
            StatusCode::FORBIDDEN,
            root,
            "This form was sent from another site",
            "Forms of this site work from its own pages only. Nothing was changed. Open the page on this site and send the form from there.",
        ))
    }

    /// The answer to an unknown, tampered, used or expired token.
    fn bad_link(&self) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "../",
            "This link does not work",
            "The link is unknown, was already used, or has expired (confirmation links work for 7 days). Check that it was copied whole. If you confirmed already, you are subscribed; otherwise subscribe again from the front page.",
        )
    }

    /// The answer at a token URL: `act` with the token in `path` (the store
    /// call), then [`Pages::subscriber_page`]; the 404 page, without
    /// calling the store, when the path is not a token at all.
    async fn token_page(
        &self,
        path: Result<Path<String>, PathRejection>,
        name: &str,
        act: impl AsyncFnOnce(Token) -> Result<Option<Preferences>, StoreError>,
    ) -> Response {
        let Some(t) = token(path) else {
            return self.bad_link();
        };
        self.subscriber_page(name, act(t).await, false)
    }

    /// A page of one subscriber's own (`name`, under a token URL), from
    /// what the store found for the token: the page for the subscriber,
    /// the 404 page for a token it does not know, the 500 page on an error.
    fn subscriber_page(
        &self,
        name: &str,
        found: Result<Option<Preferences>, StoreError>,
        saved: bool,
    ) -> Response {
        match found {
            Ok(Some(p)) => self.page(
                StatusCode::OK,
                name,
                "../",
                self.subscriber_values(&p, saved),
                PRIVATE,
            ),
            Ok(None) => self.bad_link(),
            Err(e) => self.server_error("../", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_anywhere_are_found() {
        for bad in [
            "a\r\nb",
            "a\n",
            "\ta",
            "a\u{0}",
            "a\u{85}",
            "a\u{2028}b",
            "a\u{7f}",
        ] {
            assert!(has_control(bad), "{bad:?}");
        }
        assert!(!has_control("Zoë O'Brien <x>"));
    }
}
