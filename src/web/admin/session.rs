//! Who is asking: the session cookie, the [`Admin`] it names, and the CSRF
//! check of every form that changes something ([`CsrfForm`]).
//!
//! The cookie holds 256 random bits; the store has only their BLAKE3 hash
//! (a copy of the database signs nobody in). A session is found by that
//! hash, must have been used within `http.admin_session_idle`, and is
//! marked used at most once a minute. Each session has its own CSRF token,
//! which every state-changing form carries in a hidden `csrf` field and
//! which is compared in constant time; with the Origin check of
//! [`super::guard`] (a foreign `Origin` is refused before any handler),
//! another site can neither read nor forge a console form.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::store::AuditEntry;
use crate::web::AppState;

/// The cookie's name.
pub const COOKIE: &str = "gazette_admin";

/// A signed-in admin, for handlers: extracting it answers 303 to the
/// sign-in page when there is no live session (404 when no admin exists:
/// then the console does not exist).
#[derive(Debug, Clone)]
pub struct Admin {
    pub id: i64,
    pub email: String,
    pub csrf: String,
    pub client: IpAddr,
    /// The hash of the session's token (for sign-out).
    pub(super) token_hash: String,
    /// The console root's path for this request ([`super::Console::base_for`]).
    pub base: String,
}

impl Admin {
    /// A line of the audit log by this admin.
    pub fn audit<'a>(
        &'a self,
        action: &'a str,
        target: Option<String>,
        detail: Option<String>,
    ) -> AuditEntry<'a> {
        AuditEntry {
            admin: &self.email,
            action,
            target,
            detail,
            client: Some(self.client.to_string()),
        }
    }

    /// Does a form's `csrf` value belong to this session?
    pub fn csrf_matches(&self, given: &str) -> bool {
        !given.is_empty() && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The hash under which a session token is stored.
pub(super) fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// The session token in the request's cookies, if any.
pub(super) fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The client's address as the front door put it (see `web::proxy`).
pub(super) fn client(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, Response> {
        let console = &state.console;
        let base = console.base_for(&parts.headers).to_string();
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(console.sign_in_first(state, &base).await);
        };
        let hash = token_hash(token);
        let now = Utc::now();
        let idle = state.config.http.admin_session_idle;
        let session = match state.store.admin_session(&hash, now, idle).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(console.sign_in_first(state, &base).await),
            Err(e) => return Err(console.server_error_at(&base, &e)),
        };
        if now - session.last_seen_at > chrono::Duration::seconds(60)
            && let Err(e) = state.store.touch_admin_session(&hash, now).await
        {
            // The page can still be shown; the session just ages sooner.
            tracing::warn!(error = %e, "cannot mark an admin session used");
        }
        Ok(Admin {
            id: session.admin_id,
            email: session.email,
            csrf: session.csrf,
            client: client(parts),
            token_hash: hash,
            base,
        })
    }
}

/// A urlencoded form from a signed-in admin whose `csrf` field matches
/// their session: `CsrfForm(admin, fields)`. A missing or wrong token is a
/// 403 page and nothing is read further. `T` gets the other fields (it must
/// not have one named `csrf`).
#[derive(Debug)]
pub struct CsrfForm<T>(pub Admin, pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<CsrfForm<T>, Response> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let console = &state.console;
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        let bytes = match axum::body::to_bytes(body, crate::web::BODY_LIMIT).await {
            Ok(b) => b,
            Err(_) => {
                return Err(console.error(
                    &admin,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too much data",
                    "The form sent more data than a console form ever needs.",
                ));
            }
        };
        let given = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !is_form || !admin.csrf_matches(&given) {
            return Err(console.forbidden(&admin));
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
            .filter(|(k, _)| k != "csrf")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let rebuilt = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        match serde_urlencoded::from_str::<T>(&rebuilt) {
            Ok(fields) => Ok(CsrfForm(admin, fields)),
            Err(e) => Err(console.error(
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                "The form could not be read",
                &format!("The form's fields were not what this page expects: {e}."),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; gazette_admin=tok123; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h), Some("tok123"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "gazette_admin_x=1".parse().unwrap());
        h.append(header::COOKIE, "gazette_admin=".parse().unwrap());
        assert_eq!(cookie_token(&h), None);
        assert_eq!(token_hash("t").len(), 64);
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        let a = Admin {
            id: 1,
            email: "ed@example.org".into(),
            csrf: "abcdef".into(),
            client: IpAddr::from([127, 0, 0, 1]),
            token_hash: String::new(),
            base: "/admin/".into(),
        };
        assert!(a.csrf_matches("abcdef"));
        assert!(!a.csrf_matches("abcde"));
        assert!(!a.csrf_matches(""));
        assert!(!a.csrf_matches("abcdefg"));
    }
}
