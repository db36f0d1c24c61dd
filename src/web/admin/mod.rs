//! The admin console at `/admin/`: server-rendered pages for the people who
//! run the list (sign-in, dashboard, subscribers, import, issues, audit
//! log), from templates like the public pages, working without JavaScript.
//!
//! The console does not exist until an admin does (`gazette admins add`):
//! with no account every `/admin/` path is a 404. Otherwise every page but
//! the sign-in form and the two static files needs a session ([`Admin`]):
//! without one the answer is 303 to the sign-in page and nothing else.
//! Every answer is `no-store` with a strict CSP (no inline script or
//! style); every POST passes [`guard`] (a foreign `Origin` is a 403 before
//! any handler runs) and, once signed in, [`CsrfForm`]'s token check.
//!
//! Here: [`Console`] (templates, login throttle, import jobs) and the
//! router. The parts: [`session`] (cookie, [`Admin`], CSRF), [`login`]
//! (sign-in and sign-out), [`render`] (templates into answers),
//! [`throttle`] (wrong passwords); the pages: [`dashboard`],
//! [`subscribers`], [`import`], [`issues`], [`audit`] ([`chart`] draws the
//! dashboard's SVG).

pub mod audit;
pub mod chart;
pub mod dashboard;
pub mod import;
pub mod issues;
pub mod login;
pub mod render;
pub mod session;
pub mod subscribers;
pub mod templates;
pub mod throttle;

use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

pub use session::{Admin, CsrfForm};

use super::AppState;
use super::pages::origin::SiteOrigin;
use crate::config::Config;
use crate::templates::TemplateError;
use templates::AdminTemplates;

/// Which part of the console a page belongs to (the navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Subscribers,
    Issues,
    Audit,
    /// Sign-in and error pages outside the sections.
    None,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Dashboard => "dashboard",
            Section::Subscribers => "subscribers",
            Section::Issues => "issues",
            Section::Audit => "audit",
            Section::None => "",
        }
    }
}

/// What the console keeps for its life: templates (loaded and checked at
/// start), the static files rendered from them, the sign-in throttle, the
/// import jobs, and where it lives.
pub struct Console {
    templates: AdminTemplates,
    css: String,
    js: String,
    pub throttle: throttle::Throttle,
    pub imports: import::Jobs,
    origin: SiteOrigin,
    /// The console root's absolute path as the public sees it: base_url's
    /// path + `admin/` (see [`Console::base_for`]).
    base: String,
    /// base_url's `host[:port]`, lowercased, for [`Console::base_for`].
    public_host: String,
    /// Publication title and URL, for the layout.
    publication: minijinja::Value,
    /// `Secure` on the cookie: the site is served over https.
    secure: bool,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// Compile the templates and render each against sample values, so a
    /// broken override stops `serve` at start with its file and line.
    pub fn load(config: &Config) -> Result<Console, Vec<TemplateError>> {
        let templates = AdminTemplates::load(config)?;
        let empty = minijinja::context! {};
        let css = templates
            .render("admin/admin.css", &empty)
            .map_err(|e| vec![e])?;
        let js = templates
            .render("admin/admin.js", &empty)
            .map_err(|e| vec![e])?;
        let base_url = &config.publication.base_url;
        let console = Console {
            templates,
            css,
            js,
            throttle: throttle::Throttle::default(),
            imports: import::Jobs::default(),
            origin: SiteOrigin::new(base_url),
            base: format!("{}admin/", base_url.path()),
            public_host: match base_url.port() {
                Some(p) => format!("{}:{p}", base_url.host_str().unwrap_or("")),
                None => base_url.host_str().unwrap_or("").to_string(),
            }
            .to_ascii_lowercase(),
            publication: minijinja::context! {
                title => config.publication.title.clone(),
                url => base_url.to_string(),
            },
            secure: base_url.scheme() == "https",
        };
        console.check().map_err(|e| vec![e])?;
        Ok(console)
    }

    /// Every problem with the console's templates, for `gazette check`.
    pub fn problems(config: &Config) -> Vec<TemplateError> {
        Console::load(config).err().unwrap_or_default()
    }

    /// The console root's absolute path for a request with these
    /// headers. A request to base_url's own host came through the public
    /// address (a proxy that keeps `Host`, or no proxy), so links carry
    /// base_url's path (`/news/admin/` when the site lives under `/news/`);
    /// a request to any other host (`127.0.0.1:8080` on the machine itself)
    /// reached the server directly, where the console is at `/admin/`.
    pub fn base_for(&self, headers: &axum::http::HeaderMap) -> &str {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if host.eq_ignore_ascii_case(&self.public_host) {
            &self.base
        } else {
            "/admin/"
        }
    }
}

/// Every console route under `/admin/`, behind [`guard`].
///
/// The dashboard is routed at `/admin/` here: a router nested at `/admin`
/// answers `/admin` for its `/` but not `/admin/`, the address people and
/// every link use; the bare `/admin` is sent on to it.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/", get(dashboard::dashboard))
        .nest("/admin", routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
}

/// The console's routes, relative to `/admin`.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(to_root))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/static/{file}", get(static_file))
        .merge(dashboard::routes())
        .merge(subscribers::routes())
        .merge(import::routes())
        .merge(issues::routes())
        .merge(audit::routes())
        .fallback(unknown)
}

/// `/admin` without the slash: on to `/admin/`.
async fn to_root(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    state
        .console
        .see_other_at(state.console.base_for(&headers), "")
}

/// Anything else under `/admin/`: sign in first, then a 404.
async fn unknown(State(state): State<AppState>, admin: Admin) -> Response {
    state.console.error(
        &admin,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no console page at this address.",
    )
}

/// `admin.css` and `admin.js`: needed by the sign-in page, so no session.
async fn static_file(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let (body, kind) = match file.as_str() {
        "admin.css" => (state.console.css.clone(), "text/css; charset=utf-8"),
        "admin.js" => (state.console.js.clone(), "text/javascript; charset=utf-8"),
        _ => {
            return state.console.error_at(
                state.console.base_for(&headers),
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is no such file.",
            );
        }
    };
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Small, and changed only by a restart with a new override.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    res
}

/// How much of a refused POST's body the guard reads before answering.
const REFUSED_BODY_READ: usize = 256 * 1024;

/// Around every console request: the console exists only with an admin;
/// a POST from another site's page is refused before anything runs; every
/// answer is private, framed by nobody else, under the console's CSP, and
/// says how long the server took (`Server-Timing`, for the benchmark and
/// for admins' browser tools).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let console = &state.console;
    let mut res = match state.store.has_admins().await {
        Ok(false) => console.no_console(),
        Err(e) => {
            let base = console.base_for(req.headers()).to_string();
            console.server_error_at(&base, &e)
        }
        Ok(true) => {
            if req.method() == Method::POST && !console.origin.allows(req.headers()) {
                tracing::warn!(
                    origin = ?req.headers().get(header::ORIGIN),
                    path = %req.uri().path(),
                    "console POST from another site refused"
                );
                let base = console.base_for(req.headers()).to_string();
                // Read the form before answering. Answered with its body
                // unread, the connection is closed after the answer, and a
                // client that kept it for its next request (browsers do)
                // sees that request dropped. Bounded: a refused upload is
                // not read to its end.
                let _ = axum::body::to_bytes(req.into_body(), REFUSED_BODY_READ).await;
                console.forbidden_at(&base)
            } else {
                next.run(req).await
            }
        }
    };
    let h = res.headers_mut();
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(render::CSP),
        );
    }
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        h.insert("server-timing", v);
    }
    res
}
