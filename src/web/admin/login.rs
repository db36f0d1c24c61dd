//! Signing in and out.
//!
//! `POST /admin/login` takes `email` and `password`. Before the password is
//! looked at, the [`super::throttle`] may refuse (429, with `Retry-After`);
//! the check itself runs Argon2 on the blocking pool (tens of milliseconds
//! of CPU that must not stall the runtime's other requests) and costs the
//! same for an unknown address. A good password starts a session: a fresh
//! random token in an HttpOnly, SameSite=Lax cookie (Secure when the site
//! is https), only its hash stored. A wrong one re-shows the form with one
//! message for both an unknown address and a wrong password.
//!
//! The sign-in form carries no CSRF token (there is no session to tie it
//! to); the Origin check of [`super::guard`] keeps other sites' pages from
//! posting it. `POST /admin/logout` is a normal console form: it needs the
//! session's token, and deletes the session on the server.

use std::time::Instant;

use axum::Form;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use minijinja::context;
use serde::Deserialize;

use super::session::{COOKIE, token_hash};
use super::{Admin, Console, CsrfForm, Section};
use crate::admins::{AdminEmail, verify};
use crate::store::AuditEntry;
use crate::subscribers::Token;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct LoginFields {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `?signed_out=1`: where sign-out leads, so the form can say it happened.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    signed_out: Option<String>,
}

/// `GET /admin/login`: the form (or, when signed in, on to the dashboard).
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
    admin: Result<Admin, Response>,
) -> Response {
    if let Ok(admin) = admin {
        return state.console.see_other(&admin, "");
    }
    let base = state.console.base_for(&headers);
    let signed_out = query.is_ok_and(|Query(q)| q.signed_out.is_some());
    login_page(&state.console, base, StatusCode::OK, "", "", signed_out)
}

fn login_page(
    console: &Console,
    base: &str,
    status: StatusCode,
    email: &str,
    problem: &str,
    signed_out: bool,
) -> Response {
    console.render_at(
        base,
        status,
        None,
        "admin/login.html",
        Section::None,
        None,
        context! { email => email, problem => problem, signed_out => signed_out },
    )
}

/// `POST /admin/login`.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginFields>, axum::extract::rejection::FormRejection>,
) -> Response {
    let console = &state.console;
    let base = console.base_for(&headers);
    let ip = peer.ip();
    let Form(fields) = form.unwrap_or_default();
    let account = AdminEmail::parse(&fields.email)
        .map(|e| e.key())
        .unwrap_or_else(|_| fields.email.trim().to_lowercase());
    if let Err(wait) = console.throttle.attempt(ip, &account, Instant::now()) {
        tracing::warn!(client = %ip, "console sign-in refused: too many wrong passwords");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut res = login_page(
            console,
            base,
            StatusCode::TOO_MANY_REQUESTS,
            &fields.email,
            &format!(
                "Too many wrong passwords. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
            false,
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let found = match state.store.admin_login(&account).await {
        Ok(f) => f,
        Err(e) => return console.server_error_at(base, &e),
    };
    let stored = found.as_ref().map(|a| a.password_hash.clone());
    let password = fields.password;
    let good = tokio::task::spawn_blocking(move || verify(&password, stored.as_deref()))
        .await
        .unwrap_or(false);
    let Some(admin) = found.filter(|_| good) else {
        tracing::warn!(client = %ip, "console sign-in failed: wrong address or password");
        return login_page(
            console,
            base,
            StatusCode::OK,
            &fields.email,
            "That address and password do not match an admin account.",
            false,
        );
    };
    console.throttle.succeeded(ip, &account);
    let (token, csrf) = match (Token::generate(), Token::generate()) {
        (Ok(t), Ok(c)) => (t, c),
        (Err(e), _) | (_, Err(e)) => return console.server_error_at(base, &e),
    };
    let now = Utc::now();
    let idle = state.config.http.admin_session_idle;
    if let Err(e) = state.store.expire_admin_sessions(now, idle).await {
        tracing::warn!(error = %e, "cannot delete expired console sessions");
    }
    if let Err(e) = state
        .store
        .start_admin_session(
            admin.id,
            &token_hash(token.as_str()),
            csrf.as_str(),
            &ip.to_string(),
            now,
        )
        .await
    {
        return console.server_error_at(base, &e);
    }
    let entry = AuditEntry {
        admin: &admin.email,
        action: "admin.login",
        target: None,
        detail: None,
        client: Some(ip.to_string()),
    };
    super::audit::record(&state, &entry).await;
    tracing::info!(admin = %admin.email, client = %ip, "console sign-in");
    let mut res = console.see_other_at(base, "");
    if let Ok(v) = HeaderValue::from_str(&console.cookie(token.as_str())) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// `POST /admin/logout`: the session ends on the server, the cookie in
/// the browser.
pub async fn sign_out(
    State(state): State<AppState>,
    CsrfForm(admin, _): CsrfForm<std::collections::HashMap<String, String>>,
) -> Response {
    let console = &state.console;
    if let Err(e) = state.store.end_admin_session(&admin.token_hash).await {
        return console.server_error(&admin, &e);
    }
    super::audit::record(&state, &admin.audit("admin.logout", None, None)).await;
    let mut res = console.see_other(&admin, "login?signed_out=1");
    if let Ok(v) = HeaderValue::from_str(&console.expired_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

impl Console {
    fn cookie_attributes(&self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("Path=/; HttpOnly; SameSite=Lax{secure}")
    }

    pub(super) fn cookie(&self, token: &str) -> String {
        format!("{COOKIE}={token}; {}", self.cookie_attributes())
    }

    pub(super) fn expired_cookie(&self) -> String {
        format!("{COOKIE}=; Max-Age=0; {}", self.cookie_attributes())
    }
}
