//! Public pages: the archive, the web version of each issue, and the
//! subscribe / confirm / unsubscribe / preferences flow.
//!
//! Everything is plain HTML from templates (`templates/page.html` and one
//! per page, overridable like the digest templates): no JavaScript, no
//! cookies, no third-party requests. Links between pages are relative to the
//! page, so the site works at `/` and behind a proxy under `base_url`'s path;
//! links that leave the site (feeds, mail) are absolute from `base_url`.
//!
//! The sign-up flow is double opt-in:
//! - `POST /subscribe` answers the same page, with the same status, whatever
//!   the list knows about the address: a new or pending address gets a
//!   confirmation link, an unsubscribed or bounced one too (keeping its
//!   status until the link is used), an active one a notice with its
//!   settings link. Either way one mail goes out at once, so the answer
//!   takes about as long too. Requests are limited per client address
//!   ([`limit`]) and mails per address ([`crate::store::SIGNUP_MAILS_PER_DAY`]).
//! - `GET /confirm/TOKEN` shows a page with one button and changes nothing
//!   (mail scanners and link previews fetch links); the button's
//!   `POST /confirm/TOKEN` uses the link (once, within seven days).
//! - `GET|POST /unsubscribe/TOKEN` and `GET|POST /preferences/TOKEN` act on
//!   the subscriber whose permanent token it is; the POST to the unsubscribe
//!   URL is also the RFC 8058 one-click target, so it takes any body.
//! - The form POSTs (subscribe, confirm, preferences) refuse a request
//!   another site's page made the browser send ([`origin`]); the
//!   unsubscribe POST does not, so that one-click keeps working.
//!
//! A token that does not parse, is unknown, used or expired gets the 404
//! page and changes nothing.

mod cache;
mod limit;
mod origin;
mod templates;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use minijinja::{Value, context};

use super::{AppState, WebError};
use crate::config::Config;
use crate::content::scan::{is_valid_slug, read_issue_folder};
use crate::content::text::push_escaped;
use crate::cycle::scan_options;
use crate::delivery::transport::{Outcome, Transport, Wire};
use crate::mail::render::human_date;
use crate::mail::{Outgoing, Renderer, Sender, TemplateError};
use crate::store::{CONFIRM_TTL, Preferences, PreferencesChange, Signup, StoreError};
use crate::subscribers::{EmailError, MailFormat, SubscriberEmail, SubscriberName, Token};

use cache::IssueCache;
use limit::RateLimiter;
use origin::SiteOrigin;
use templates::PageTemplates;

/// How long a sign-up waits for its mail to be handed over before
/// answering anyway (the answer is the same either way).
const MAIL_TIMEOUT: Duration = Duration::from_secs(20);

/// Pages of one reader (token pages, answers to a POST): never stored by
/// shared caches, never indexed.
const PRIVATE: &str = "no-store";
/// The archive and issue pages: public, briefly cached.
const PUBLIC: &str = "public, max-age=60";

/// Where pages may load things from: nowhere but their own inline styles
/// and images of the articles; forms post to the site only.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The page templates, the digest renderer (for web versions), the issue
/// page cache and the sign-up limit: loaded once at start.
pub struct Pages {
    templates: PageTemplates,
    renderer: Renderer,
    sender: Result<Arc<Sender>, String>,
    issues: IssueCache,
    limiter: RateLimiter,
    /// Who may post the forms.
    origin: SiteOrigin,
    site: Site,
    /// `site` as the templates see it (`publication`).
    publication: Value,
}

/// What the pages and the sign-up mails say about the publication.
#[derive(Debug, Clone)]
struct Site {
    title: String,
    description: String,
    language: String,
    /// Ends with '/'.
    base_url: String,
    /// RSS, Atom, JSON Feed.
    feeds: [String; 3],
}

impl Site {
    fn new(config: &Config) -> Site {
        let p = &config.publication;
        Site {
            title: p.title.clone(),
            description: p.description.clone(),
            language: p.language.clone(),
            base_url: p.base_url.to_string(),
            feeds: [
                p.url("feeds/rss.xml"),
                p.url("feeds/atom.xml"),
                p.url("feeds/feed.json"),
            ],
        }
    }

    fn value(&self) -> Value {
        let [rss, atom, json] = self.feeds.clone();
        context! {
            title => self.title.clone(),
            description => self.description.clone(),
            url => self.base_url.clone(),
            language => self.language.clone(),
            feeds => context! { rss, atom, json },
        }
    }

    /// The absolute URL of a site path (no leading '/').
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

/// Why a page could not be built.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Render(#[from] crate::mail::RenderError),
    #[error(transparent)]
    Scan(#[from] crate::content::ScanError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Pages {
    /// Compile the page templates (and the digest templates the web
    /// versions use) and render each page once against sample values, so
    /// that a broken template stops `serve` at start with its file and line
    /// instead of failing a reader's request.
    pub fn load(config: &Config) -> Result<Pages, WebError> {
        let pages = Pages::build(config).map_err(|errors| WebError::Pages(errors.join("\n")))?;
        Ok(pages)
    }

    /// Every problem with the page templates, for `gazette check`.
    pub fn problems(config: &Config) -> Vec<String> {
        match Pages::build(config) {
            Ok(_) => Vec::new(),
            Err(errors) => errors,
        }
    }

    /// The one set of template rules `gazette check` and `serve` share:
    /// every file that does not compile (pages and digest), then the digest
    /// rendered against a sample issue (what `/issues/SLUG` shows) and every
    /// page against sample values. A missing `mail.from` is not a template
    /// problem (only sending needs it).
    fn build(config: &Config) -> Result<Pages, Vec<String>> {
        let strings =
            |errors: Vec<TemplateError>| errors.iter().map(ToString::to_string).collect::<Vec<_>>();
        let (renderer, templates) = match (
            Renderer::load_all(config).map_err(strings),
            PageTemplates::load(config).map_err(strings),
        ) {
            (Ok(r), Ok(t)) => (r, t),
            (r, t) => {
                let mut errors = r.err().unwrap_or_default();
                errors.extend(t.err().unwrap_or_default());
                return Err(errors);
            }
        };
        match renderer.check() {
            Ok(()) | Err(crate::mail::RenderError::Sender(_)) => {}
            Err(e) => return Err(vec![e.to_string()]),
        }
        let site = Site::new(config);
        let pages = Pages {
            templates,
            renderer,
            sender: Sender::from_config(config)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            issues: IssueCache::default(),
            limiter: RateLimiter::new(
                config.http.subscribe_burst,
                config.http.subscribe_per_minute,
            ),
            origin: SiteOrigin::new(&config.publication.base_url),
            publication: site.value(),
            site,
        };
        pages.check().map_err(|e| vec![e.to_string()])?;
        Ok(pages)
    }

    /// Render every template against sample values.
    fn check(&self) -> Result<(), TemplateError> {
        let sample = Preferences {
            id: 1,
            email: SubscriberEmail::parse("reader@example.org").map_err(sample_error)?,
            name: SubscriberName::parse("Sample Reader").map_err(sample_error)?,
            status: crate::subscribers::Status::Active,
            format: MailFormat::Html,
            token: Token::generate().map_err(sample_error)?,
        };
        let issues = vec![context! {
            slug => "sample-issue",
            title => "Sample issue",
            date => "2026-11-20",
            date_human => "20 November 2026",
            articles => 2,
            url => "./issues/sample-issue",
        }];
        self.templates
            .render("archive.html", &self.ctx("./", context! { issues }))?;
        self.issue_page(
            &context! {
                slug => "sample-issue",
                title => "Sample issue",
                date => "2026-11-20",
                date_human => "20 November 2026",
            },
            "<p>Sample</p>",
        )?;
        self.templates
            .render("subscribe.html", &self.ctx("./", self.subscribe_values()))?;
        for (name, values) in [
            ("confirm-page.html", self.confirm_values(&sample)),
            ("confirmed.html", self.subscriber_values(&sample, false)),
            ("unsubscribe.html", self.subscriber_values(&sample, false)),
            ("unsubscribed.html", self.subscriber_values(&sample, false)),
            ("preferences.html", self.subscriber_values(&sample, true)),
        ] {
            self.templates.render(name, &self.ctx("../", values))?;
        }
        self.templates.render(
            "error.html",
            &self.ctx("./", error_values(StatusCode::NOT_FOUND, "t", "m", true)),
        )?;
        for mail in [
            SignupMail::Confirm {
                url: "https://example.org/confirm/x",
            },
            SignupMail::Already,
        ] {
            self.signup_bodies(mail, &sample)?;
        }
        Ok(())
    }

    /// The page's own values, then what every page gets (the page's win).
    fn ctx(&self, root: &str, page: Value) -> Value {
        context! {
            ..page,
            ..context! {
                publication => self.publication.clone(),
                root => root,
                form => context! { email => "", name => "" },
                noindex => false,
            }
        }
    }

    fn subscribe_values(&self) -> Value {
        context! { confirm_days => CONFIRM_TTL.as_secs() / 86_400, noindex => true }
    }

    /// A subscriber's own page: `root` is "../" for every token URL.
    fn subscriber_values(&self, p: &Preferences, saved: bool) -> Value {
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
    fn confirm_values(&self, p: &Preferences) -> Value {
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
    /// the request may go on ([`origin`]).
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

    fn issue_page(&self, issue: &Value, digest: &str) -> Result<String, TemplateError> {
        self.templates.render(
            "issue.html",
            &self.ctx(
                "../",
                context! {
                    issue => issue.clone(),
                    digest => Value::from_safe_string(digest.to_string()),
                },
            ),
        )
    }

    /// The subject, text and HTML of a sign-up mail to `p`.
    fn signup_bodies(
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

    /// An HTML answer from `name`, or the built-in 500 page when the
    /// template fails at run time.
    fn page(
        &self,
        status: StatusCode,
        name: &str,
        root: &str,
        values: Value,
        cache: &'static str,
    ) -> Response {
        match self.templates.render(name, &self.ctx(root, values)) {
            Ok(body) => html(status, body, cache),
            Err(e) => {
                tracing::error!(error = %e, "cannot render a page");
                html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    self.last_resort(),
                    PRIVATE,
                )
            }
        }
    }

    /// An error page.
    fn error(&self, status: StatusCode, root: &str, title: &str, message: &str) -> Response {
        self.page(
            status,
            "error.html",
            root,
            error_values(status, title, message, false),
            PRIVATE,
        )
    }

    fn not_found(&self, root: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            root,
            "Page not found",
            "There is no page at this address. It may have moved, or the link may be incomplete.",
        )
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

    fn server_error(&self, root: &str, what: &dyn std::fmt::Display) -> Response {
        tracing::error!(error = %what, "page failed");
        self.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            root,
            "Something went wrong",
            "The page could not be built because of a problem on our side. Please try again later.",
        )
    }

    /// A request body the form extractor refused.
    fn rejected(&self, root: &str, r: &FormRejection) -> Response {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => self.error(
                StatusCode::PAYLOAD_TOO_LARGE,
                root,
                "Too much data",
                "The form sent more data than a form of this site ever needs.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => self.error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                root,
                "Unexpected form encoding",
                "Send the form as application/x-www-form-urlencoded, as a browser does.",
            ),
            _ => self.error(
                StatusCode::BAD_REQUEST,
                root,
                "The form could not be read",
                "The form data was not what this page expects.",
            ),
        }
    }

    /// Minimal valid HTML for when even the error template fails.
    fn last_resort(&self) -> String {
        let mut out = String::from("<!DOCTYPE html>\n<html lang=\"");
        push_escaped(&mut out, &self.site.language);
        out.push_str("\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Something went wrong</title>\n");
        let kinds = [
            "application/rss+xml",
            "application/atom+xml",
            "application/feed+json",
        ];
        for (kind, href) in kinds.iter().zip(&self.site.feeds) {
            out.push_str("<link rel=\"alternate\" type=\"");
            out.push_str(kind);
            out.push_str("\" title=\"");
            push_escaped(&mut out, &self.site.title);
            out.push_str("\" href=\"");
            push_escaped(&mut out, href);
            out.push_str("\">\n");
        }
        out.push_str("</head>\n<body>\n<main>\n<h1>Something went wrong</h1>\n<p>The page could not be built because of a problem on our side. Please try again later.</p>\n</main>\n</body>\n</html>\n");
        out
    }

    /// The web version of one issue, from its own folder only; `None` when
    /// the folder is gone or no longer holds a good issue.
    fn render_issue(&self, config: &Config, slug: &str) -> Result<Option<String>, PageError> {
        let opts = scan_options(config);
        let tree = read_issue_folder(&config.content.dir, slug, &opts)?;
        let ingest = crate::content::parse_tree(&tree, &opts);
        let Some(issue) = ingest.issues.iter().find(|i| i.slug == slug) else {
            return Ok(None);
        };
        let digest = self.renderer.web_html(issue)?;
        let values = context! {
            slug => issue.slug.clone(),
            title => issue.title.clone(),
            date => issue.date.to_string(),
            date_human => human_date(issue.date),
        };
        Ok(Some(self.issue_page(&values, body_of(&digest))?))
    }

    /// Build and send one sign-up mail; failures are logged, not shown (the
    /// answer must be the same for every address).
    async fn send_signup_mail(&self, config: &Config, mail: SignupMail<'_>, p: &Preferences) {
        let kind = mail.name();
        let outgoing = match self.signup_message(mail, p) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(subscriber = p.id, error = %e, "cannot build the sign-up mail");
                return;
            }
        };
        // One connection per sign-up mail, closed after it: sign-ups are
        // rare and rate-limited, and an SMTP connection kept open between
        // them would mostly sit idle until the server drops it.
        let transport = match Transport::from_config(&config.mail) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot send the sign-up mail");
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
        let wire = Wire {
            envelope_from: &outgoing.envelope_from,
            to: &outgoing.to,
            bytes: &outgoing.bytes,
            file_stem: &stem,
        };
        match tokio::time::timeout(MAIL_TIMEOUT, transport.send(wire)).await {
            Ok(Outcome::Sent { .. }) => {
                tracing::info!(subscriber = p.id, kind, "sign-up mail sent");
            }
            Ok(Outcome::Retry { reply, .. } | Outcome::Failed { reply, .. }) => {
                tracing::warn!(
                    subscriber = p.id,
                    kind,
                    reply = %without_address(&reply, p.email.as_str()),
                    "sign-up mail not accepted"
                );
            }
            Err(_) => {
                tracing::warn!(subscriber = p.id, kind, "sign-up mail: no answer in time");
            }
        }
        transport.close().await;
    }

    fn signup_message(&self, mail: SignupMail<'_>, p: &Preferences) -> Result<Outgoing, String> {
        let sender = self.sender.as_ref().map_err(Clone::clone)?;
        let (subject, text, html) = self.signup_bodies(mail, p).map_err(|e| e.to_string())?;
        crate::mail::message::notice(
            sender,
            &p.email,
            p.name.as_ref(),
            &subject,
            text,
            html,
            Utc::now(),
        )
        .map_err(|e| e.to_string())
    }
}

/// A server's reply with the recipient's address taken out (any case):
/// refusals quote it ("550 5.1.1 <ann@example.org>: no such user"), and
/// the log keeps only the subscriber's id. Sign-up addresses are ASCII, so
/// positions in the lowercased copy are positions in the reply.
fn without_address(reply: &str, address: &str) -> String {
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

/// The two mails a sign-up can send.
#[derive(Debug, Clone, Copy)]
enum SignupMail<'a> {
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

fn sample_error(e: impl std::fmt::Display) -> TemplateError {
    TemplateError {
        file: "the sample values".into(),
        line: None,
        message: e.to_string(),
    }
}

fn error_values(status: StatusCode, title: &str, message: &str, subscribe_again: bool) -> Value {
    context! {
        status => status.as_u16(),
        title => title,
        message => message,
        subscribe_again => subscribe_again,
        noindex => true,
    }
}

/// What is between `<body ...>` and `</body>` (the whole text when there is
/// no body element): the digest is a whole document, the page has its own.
fn body_of(html: &str) -> &str {
    let lower = html.to_ascii_lowercase();
    let start = lower
        .find("<body")
        .and_then(|at| lower[at..].find('>').map(|end| at + end + 1));
    let end = lower.rfind("</body>");
    match (start, end) {
        (Some(s), Some(e)) if s <= e => &html[s..e],
        _ => html,
    }
}

/// The site root relative to a request path: "./" at the top, "../" one
/// level down, and so on (each '/' after the first is one level).
fn root_for(path: &str) -> String {
    let depth = path.trim_start_matches('/').matches('/').count();
    if depth == 0 {
        "./".into()
    } else {
        "../".repeat(depth)
    }
}

fn html(status: StatusCode, body: impl IntoResponse, cache: &'static str) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(archive))
        .route("/issues/{slug}", get(issue))
        .route("/subscribe", post(subscribe))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(preferences).post(save_preferences),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

async fn not_found(State(state): State<AppState>, uri: Uri) -> Response {
    state.pages.not_found(&root_for(uri.path()))
}

async fn method_not_allowed(State(state): State<AppState>, uri: Uri) -> Response {
    state.pages.error(
        StatusCode::METHOD_NOT_ALLOWED,
        &root_for(uri.path()),
        "Not allowed",
        "This page cannot be used that way.",
    )
}

async fn archive(State(state): State<AppState>) -> Response {
    let records = match state.store.issue_records().await {
        Ok(r) => r,
        Err(e) => return state.pages.server_error("./", &e),
    };
    let issues: Vec<Value> = records
        .iter()
        .map(|r| {
            let date_human = NaiveDate::parse_from_str(&r.issue_date, "%Y-%m-%d")
                .map(human_date)
                .unwrap_or_else(|_| r.issue_date.clone());
            context! {
                slug => r.slug.clone(),
                title => r.title.clone(),
                date => r.issue_date.clone(),
                date_human => date_human,
                articles => r.article_count,
                url => format!("./issues/{}", r.slug),
            }
        })
        .collect();
    state.pages.page(
        StatusCode::OK,
        "archive.html",
        "./",
        context! { issues },
        PUBLIC,
    )
}

async fn issue(
    State(state): State<AppState>,
    slug: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(slug)) = slug else {
        return state.pages.not_found("../");
    };
    if !is_valid_slug(&slug) {
        return state.pages.not_found("../");
    }
    let record = match state.store.issue_record(&slug).await {
        Ok(Some(r)) => r,
        Ok(None) => return state.pages.not_found("../"),
        Err(e) => return state.pages.server_error("../", &e),
    };
    if let Some(page) = state.pages.issues.get(&slug, &record.content_hash) {
        return html(StatusCode::OK, page, PUBLIC);
    }
    let st = state.clone();
    let slug2 = slug.clone();
    let built =
        tokio::task::spawn_blocking(move || st.pages.render_issue(&st.config, &slug2)).await;
    match built {
        Ok(Ok(Some(page))) => {
            let page = Bytes::from(page);
            state
                .pages
                .issues
                .put(&slug, &record.content_hash, page.clone());
            html(StatusCode::OK, page, PUBLIC)
        }
        Ok(Ok(None)) => state.pages.not_found("../"),
        Ok(Err(e)) => state.pages.server_error("../", &e),
        Err(e) => state.pages.server_error("../", &e),
    }
}

/// The subscribe form's fields; a missing one is empty.
#[derive(Debug, Default, serde::Deserialize)]
struct SubscribeForm {
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

async fn subscribe(
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
                .send_signup_mail(&state.config, SignupMail::Confirm { url: &link }, &p)
                .await;
        }
        Ok(Signup::AlreadyActive(p)) => {
            pages
                .send_signup_mail(&state.config, SignupMail::Already, &p)
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
async fn confirm_page(
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
async fn confirm(
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

async fn unsubscribe_page(
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
async fn unsubscribe(
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

async fn preferences(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let act = async |t: Token| state.store.preferences(&t).await;
    state.pages.token_page(path, "preferences.html", act).await
}

/// The preferences form; a field left out is left as it is.
#[derive(Debug, Default, serde::Deserialize)]
struct PreferencesForm {
    name: Option<String>,
    format: Option<String>,
}

async fn save_preferences(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> (tempfile::TempDir, Pages) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[publication]\ntitle = \"The <Test> Ledger\"\nbase_url = \"https://news.example.org/ledger/\"\nlanguage = \"en-GB\"\n[mail]\nfrom = \"Ledger <ledger@example.org>\"\n",
        )
        .unwrap();
        let config = Config::load_with_env(&path, &[]).unwrap();
        let pages = Pages::load(&config).unwrap();
        (dir, pages)
    }

    #[test]
    fn the_last_resort_page_still_has_the_language_and_feed_links() {
        let (_d, pages) = pages();
        let html = pages.last_resort();
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en-GB\">"));
        for (ty, file) in [
            ("application/rss+xml", "rss.xml"),
            ("application/atom+xml", "atom.xml"),
            ("application/feed+json", "feed.json"),
        ] {
            assert!(
                html.contains(&format!(
                    "type=\"{ty}\" title=\"The &lt;Test&gt; Ledger\" href=\"https://news.example.org/ledger/feeds/{file}\""
                )),
                "{html}"
            );
        }
    }

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
    fn roots_are_relative_to_the_page() {
        assert_eq!(root_for("/"), "./");
        assert_eq!(root_for("/subscribe"), "./");
        assert_eq!(root_for("/issues/x"), "../");
        assert_eq!(root_for("/issues/x/"), "../../");
        assert_eq!(root_for("/a/b/c"), "../../");
    }

    #[test]
    fn the_body_of_a_document() {
        assert_eq!(
            body_of("<html><BODY style=\"x\">\n<p>hi</p>\n</body></html>"),
            "\n<p>hi</p>\n"
        );
        assert_eq!(body_of("<p>no body</p>"), "<p>no body</p>");
    }

    #[test]
    fn replies_lose_the_address_in_any_case() {
        assert_eq!(
            without_address(
                "550 5.1.1 <Ann.Lee@Example.org>: no such user (ann.lee@example.org)",
                "Ann.Lee@example.org"
            ),
            "550 5.1.1 <(the address)>: no such user ((the address))"
        );
        assert_eq!(
            without_address("451 4.3.0 try later – ü", "x@example.org"),
            "451 4.3.0 try later – ü"
        );
    }

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
