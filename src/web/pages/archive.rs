//! The pages anyone may read: the archive, the web version of each issue
//! (built from its own folder, cached by content hash: [`super::cache`]),
//! and the answers for an unknown page or method.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::NaiveDate;
use minijinja::{Value, context};

use super::render::{PUBLIC, html, root_for};
use super::{PageError, Pages};
use crate::config::Config;
use crate::content::scan::is_valid_slug;
use crate::cycle::read_issue;
use crate::mail::TemplateError;
use crate::mail::render::human_date;
use crate::web::AppState;

pub(super) async fn not_found(State(state): State<AppState>, uri: Uri) -> Response {
    state.pages.not_found(&root_for(uri.path()))
}

pub(super) async fn method_not_allowed(State(state): State<AppState>, uri: Uri) -> Response {
    state.pages.error(
        StatusCode::METHOD_NOT_ALLOWED,
        &root_for(uri.path()),
        "Not allowed",
        "This page cannot be used that way.",
    )
}

pub(super) async fn archive(State(state): State<AppState>) -> Response {
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

pub(super) async fn issue(
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

impl Pages {
    pub(super) fn issue_page(&self, issue: &Value, digest: &str) -> Result<String, TemplateError> {
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

    /// The web version of one issue, from its own folder only; `None` when
    /// the folder is gone or no longer holds a good issue.
    fn render_issue(&self, config: &Config, slug: &str) -> Result<Option<String>, PageError> {
        let Some(issue) = read_issue(config, slug)? else {
            return Ok(None);
        };
        let digest = self.renderer.web_html(&issue)?;
        let values = context! {
            slug => issue.slug.clone(),
            title => issue.title.clone(),
            date => issue.date.to_string(),
            date_human => human_date(issue.date),
        };
        Ok(Some(self.issue_page(&values, body_of(&digest))?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_of_a_document() {
        assert_eq!(
            body_of("<html><BODY style=\"x\">\n<p>hi</p>\n</body></html>"),
            "\n<p>hi</p>\n"
        );
        assert_eq!(body_of("<p>no body</p>"), "<p>no body</p>");
    }
}
