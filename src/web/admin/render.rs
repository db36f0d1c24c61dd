//! Console templates into answers: the values every page gets, redirects,
//! and the error pages (with a built-in last resort for when the error
//! template itself fails).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};

use super::{Admin, Console, Section};
use crate::templates::TemplateError;
use crate::web::AppState;

/// The console's Content-Security-Policy: its own stylesheet and script
/// only (no inline code or style, so an injected tag does nothing), forms
/// posting to the site, frames (the digest preview) from the site only.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'";

impl Console {
    /// The values every console template gets, then the page's (which win).
    fn ctx(
        &self,
        base: &str,
        admin: Option<&Admin>,
        section: Section,
        notice: Option<&str>,
        page: Value,
    ) -> Value {
        context! {
            ..page,
            ..context! {
                admin => admin.map(|a| context! { email => a.email.clone() }),
                csrf => admin.map(|a| a.csrf.clone()).unwrap_or_default(),
                base => base,
                publication => self.publication.clone(),
                section => section.as_str(),
                notice => notice.unwrap_or(""),
            }
        }
    }

    /// A console page (200).
    pub fn page(&self, admin: &Admin, template: &str, section: Section, values: Value) -> Response {
        self.page_with(StatusCode::OK, admin, template, section, None, values)
    }

    /// A console page with a notice (`?notice=CODE` after a redirect; the
    /// template says what each code means).
    pub fn page_noticed(
        &self,
        admin: &Admin,
        template: &str,
        section: Section,
        notice: Option<&str>,
        values: Value,
    ) -> Response {
        self.page_with(StatusCode::OK, admin, template, section, notice, values)
    }

    /// Any page of a signed-in admin, any status.
    pub fn page_with(
        &self,
        status: StatusCode,
        admin: &Admin,
        template: &str,
        section: Section,
        notice: Option<&str>,
        values: Value,
    ) -> Response {
        self.render_at(
            &admin.base,
            status,
            Some(admin),
            template,
            section,
            notice,
            values,
        )
    }

    /// A page for whoever asks, with links from `base`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn render_at(
        &self,
        base: &str,
        status: StatusCode,
        admin: Option<&Admin>,
        template: &str,
        section: Section,
        notice: Option<&str>,
        values: Value,
    ) -> Response {
        match self
            .templates
            .render(template, &self.ctx(base, admin, section, notice, values))
        {
            Ok(body) => html(status, body),
            Err(e) => {
                tracing::error!(error = %e, "cannot render a console page");
                html(StatusCode::INTERNAL_SERVER_ERROR, last_resort())
            }
        }
    }

    /// The error page for a signed-in admin.
    pub fn error(&self, admin: &Admin, status: StatusCode, title: &str, message: &str) -> Response {
        self.error_page(&admin.base, Some(admin), status, title, message)
    }

    /// The error page for whoever asks.
    pub fn error_at(&self, base: &str, status: StatusCode, title: &str, message: &str) -> Response {
        self.error_page(base, None, status, title, message)
    }

    fn error_page(
        &self,
        base: &str,
        admin: Option<&Admin>,
        status: StatusCode,
        title: &str,
        message: &str,
    ) -> Response {
        self.render_at(
            base,
            status,
            admin,
            "admin/error.html",
            Section::None,
            None,
            context! { status => status.as_u16(), title => title, message => message },
        )
    }

    pub fn forbidden(&self, admin: &Admin) -> Response {
        self.forbidden_page(&admin.base, Some(admin))
    }

    pub(super) fn forbidden_at(&self, base: &str) -> Response {
        self.forbidden_page(base, None)
    }

    fn forbidden_page(&self, base: &str, admin: Option<&Admin>) -> Response {
        self.error_page(
            base,
            admin,
            StatusCode::FORBIDDEN,
            "Refused",
            "This form did not come from this console's own page (or the page was too old). Nothing was changed. Go back, reload the page and try again.",
        )
    }

    pub fn server_error(&self, admin: &Admin, what: &dyn std::fmt::Display) -> Response {
        self.server_error_page(&admin.base, Some(admin), what)
    }

    pub(super) fn server_error_at(&self, base: &str, what: &dyn std::fmt::Display) -> Response {
        self.server_error_page(base, None, what)
    }

    fn server_error_page(
        &self,
        base: &str,
        admin: Option<&Admin>,
        what: &dyn std::fmt::Display,
    ) -> Response {
        tracing::error!(error = %what, "console page failed");
        self.error_page(
            base,
            admin,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The page could not be built because of a problem on the server; the server's log says what. Nothing was changed by this request unless the page said so.",
        )
    }

    /// 303 to a console path (relative to the console root, e.g.
    /// `subscribers/42?notice=saved`).
    pub fn see_other(&self, admin: &Admin, path: &str) -> Response {
        self.see_other_at(&admin.base, path)
    }

    pub(super) fn see_other_at(&self, base: &str, path: &str) -> Response {
        let location = format!("{base}{}", path.trim_start_matches('/'));
        let mut res = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        res
    }

    /// No session: 303 to the sign-in page (a 404 while no admin exists).
    pub(super) async fn sign_in_first(&self, state: &AppState, base: &str) -> Response {
        match state.store.has_admins().await {
            Ok(true) => self.see_other_at(base, "login"),
            Ok(false) => self.no_console(),
            Err(e) => self.server_error_at(base, &e),
        }
    }

    /// The answer to every console path while no admin exists.
    pub(super) fn no_console(&self) -> Response {
        let body = "The admin console is off: no admin account exists. Add one with `gazette admins add EMAIL`.\n";
        let mut res = (StatusCode::NOT_FOUND, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }

    /// Render every template that needs no data against sample values.
    pub(super) fn check(&self) -> Result<(), TemplateError> {
        let sample = Admin {
            id: 1,
            email: "editor@example.org".into(),
            csrf: "sample".into(),
            client: std::net::IpAddr::from([127, 0, 0, 1]),
            token_hash: String::new(),
            base: self.base.clone(),
        };
        self.templates.render(
            "admin/login.html",
            &self.ctx(
                &self.base,
                None,
                Section::None,
                None,
                context! { email => "", problem => "", signed_out => false },
            ),
        )?;
        self.templates.render(
            "admin/error.html",
            &self.ctx(
                &self.base,
                Some(&sample),
                Section::None,
                None,
                context! { status => 404, title => "t", message => "m" },
            ),
        )?;
        Ok(())
    }
}

fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// Minimal valid HTML for when even the error template fails.
fn last_resort() -> String {
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Something went wrong</title>\n</head>\n<body>\n<main>\n<h1>Something went wrong</h1>\n<p>A console template failed; the server's log names the file and line.</p>\n</main>\n</body>\n</html>\n".to_string()
}
