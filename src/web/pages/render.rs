//! Turning a template into an answer: the values every page gets, the
//! response headers (cache policy, CSP), the error pages, and the built-in
//! last-resort page for when even the error template fails.

use axum::extract::rejection::FormRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};

use super::Pages;
use crate::content::text::push_escaped;

/// Pages of one reader (token pages, answers to a POST): never stored by
/// shared caches, never indexed.
pub(super) const PRIVATE: &str = "no-store";
/// The archive and issue pages: public, briefly cached.
pub(super) const PUBLIC: &str = "public, max-age=60";

/// Where pages may load things from: nowhere but their own inline styles
/// and images of the articles; forms post to the site only.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

impl Pages {
    /// The page's own values, then what every page gets (the page's win).
    pub(super) fn ctx(&self, root: &str, page: Value) -> Value {
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

    /// An HTML answer from `name`, or the built-in 500 page when the
    /// template fails at run time.
    pub(super) fn page(
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
    pub(super) fn error(
        &self,
        status: StatusCode,
        root: &str,
        title: &str,
        message: &str,
    ) -> Response {
        self.page(
            status,
            "error.html",
            root,
            error_values(status, title, message, false),
            PRIVATE,
        )
    }

    pub(super) fn not_found(&self, root: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            root,
            "Page not found",
            "There is no page at this address. It may have moved, or the link may be incomplete.",
        )
    }

    pub(super) fn server_error(&self, root: &str, what: &dyn std::fmt::Display) -> Response {
        tracing::error!(error = %what, "page failed");
        self.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            root,
            "Something went wrong",
            "The page could not be built because of a problem on our side. Please try again later.",
        )
    }

    /// A request body the form extractor refused.
    pub(super) fn rejected(&self, root: &str, r: &FormRejection) -> Response {
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
    pub(super) fn last_resort(&self) -> String {
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
}

pub(super) fn error_values(
    status: StatusCode,
    title: &str,
    message: &str,
    subscribe_again: bool,
) -> Value {
    context! {
        status => status.as_u16(),
        title => title,
        message => message,
        subscribe_again => subscribe_again,
        noindex => true,
    }
}

/// The site root relative to a request path: "./" at the top, "../" one
/// level down, and so on (each '/' after the first is one level).
pub(super) fn root_for(path: &str) -> String {
    let depth = path.trim_start_matches('/').matches('/').count();
    if depth == 0 {
        "./".into()
    } else {
        "../".repeat(depth)
    }
}

pub(super) fn html(status: StatusCode, body: impl IntoResponse, cache: &'static str) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::pages::tests::pages;

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
    fn roots_are_relative_to_the_page() {
        assert_eq!(root_for("/"), "./");
        assert_eq!(root_for("/subscribe"), "./");
        assert_eq!(root_for("/issues/x"), "../");
        assert_eq!(root_for("/issues/x/"), "../../");
        assert_eq!(root_for("/a/b/c"), "../../");
    }
}
