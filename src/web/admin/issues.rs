//! The console's issues: the list (every recorded issue, drafts and held
//! ones too, with state and delivery counts), an issue's page (counts by
//! status, every failed or bounced delivery with the server's reply), the
//! digest preview exactly as a subscriber gets it, and the actions: retry
//! the failed deliveries, send a test copy, mail a skipped issue.
//!
//! Handlers stay thin: the store reads and acts ([`crate::store`]), the
//! preview and the test copy are the CLI's own functions
//! ([`crate::mail::SampleReader`], [`crate::delivery::test_copy`]), and
//! sending is a cycle ([`super::dashboard::start_cycle`]).

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use minijinja::context;

use super::dashboard::{NoticeQuery, start_cycle, stopping, to_value};
use super::{Admin, CsrfForm, Section};
use crate::config::Config;
use crate::content::Issue;
use crate::content::scan::is_valid_slug;
use crate::delivery::test_copy::{TestCopyError, send_test_copy};
use crate::mail::{Renderer, SampleReader};
use crate::store::{FAILED_SHOWN, IssueState, Published};
use crate::subscribers::SubscriberEmail;
use crate::web::AppState;

/// The preview's own policy: the digest's HTML runs no script, loads no
/// style or frame from anywhere, and is sandboxed (no forms, no top
/// navigation) even when opened alone; its inline styles and its images
/// (https or inline) show as a subscriber's mail client shows them.
pub const PREVIEW_CSP: &str =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:";

/// How long a test copy may take to be handed over before the page says
/// there was no answer (the message may still arrive).
const TEST_COPY_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/issues", get(list))
        .route("/issues/{slug}", get(page))
        .route("/issues/{slug}/preview.html", get(preview_html))
        .route("/issues/{slug}/preview.txt", get(preview_txt))
        .route("/issues/{slug}/retry", post(retry))
        .route("/issues/{slug}/test", post(test_copy))
        .route("/issues/{slug}/send", post(send))
}

/// `GET /admin/issues`.
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<NoticeQuery>,
) -> Response {
    match state.store.issue_progress().await {
        Ok(issues) => state.console.page_noticed(
            &admin,
            "admin/issues.html",
            Section::Issues,
            q.notice.as_deref(),
            context! { issues => to_value(&issues) },
        ),
        Err(e) => state.console.server_error(&admin, &e),
    }
}

fn not_found(state: &AppState, admin: &Admin) -> Response {
    state.console.error(
        admin,
        StatusCode::NOT_FOUND,
        "No such issue",
        "No issue with this name is recorded. The issues list has every issue a cycle has seen.",
    )
}

/// `GET /admin/issues/{slug}`.
#[tracing::instrument(skip_all, fields(slug = %slug))]
async fn page(
    State(state): State<AppState>,
    admin: Admin,
    Path(slug): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    issue_page(
        &state,
        &admin,
        &slug,
        q.notice.as_deref(),
        StatusCode::OK,
        None,
    )
    .await
}

/// What the test-copy form shows again after a refusal: the address typed
/// and what went wrong.
struct TestForm<'a> {
    email: &'a str,
    problem: String,
}

/// The issue page, with a status and the test-copy form's state.
async fn issue_page(
    state: &AppState,
    admin: &Admin,
    slug: &str,
    notice: Option<&str>,
    status: StatusCode,
    form: Option<TestForm<'_>>,
) -> Response {
    let issue = match state.store.issue_progress_of(slug).await {
        Ok(Some(issue)) => issue,
        Ok(None) => return not_found(state, admin),
        Err(e) => return state.console.server_error(admin, &e),
    };
    let failed = match state.store.failed_deliveries(slug, FAILED_SHOWN).await {
        Ok(f) => f,
        Err(e) => return state.console.server_error(admin, &e),
    };
    let values = context! {
        issue => to_value(&issue),
        failures => to_value(&failed),
        failures_total => issue.counts.failed + issue.counts.bounced,
        failures_shown => FAILED_SHOWN,
        can_send => issue.state == IssueState::Skipped,
        stopping => state.cycles.stopping(),
        test_email => form.as_ref().map(|f| f.email).unwrap_or(""),
        test_problem => form.as_ref().map(|f| f.problem.clone()).unwrap_or_default(),
    };
    state.console.page_with(
        status,
        admin,
        "admin/issue.html",
        Section::Issues,
        notice,
        values,
    )
}

/// Why an issue's digest could not be rendered for a preview or a copy.
#[derive(Debug, thiserror::Error)]
enum PreviewError {
    #[error("no issue {0:?} in the content folder")]
    Missing(String),
    #[error(transparent)]
    Scan(#[from] crate::content::ScanError),
    #[error(transparent)]
    Templates(#[from] crate::mail::TemplateError),
    #[error(transparent)]
    Render(#[from] crate::mail::RenderError),
    #[error("reading the issue stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The issue from its own folder (file reads: on the blocking pool).
async fn read_issue(config: &std::sync::Arc<Config>, slug: &str) -> Result<Issue, PreviewError> {
    let (config, owned) = (config.clone(), slug.to_string());
    tokio::task::spawn_blocking(move || crate::cycle::read_issue(&config, &owned))
        .await??
        .ok_or_else(|| PreviewError::Missing(slug.to_string()))
}

/// The digest's two bodies for the sample reader, rendered as the sender
/// renders them (templates loaded as a cycle loads them; dated as
/// published when it was).
async fn preview(state: &AppState, slug: &str) -> Result<crate::mail::Parts, PreviewError> {
    let issue = read_issue(&state.config, slug).await?;
    let published = state
        .store
        .published_at(slug)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(Utc::now);
    let digest = Renderer::load(&state.config)?.prepare_at(&issue, published)?;
    let reader = SampleReader::new()?;
    Ok(digest.parts(&reader.recipient())?)
}

/// `GET .../preview.html` and `.../preview.txt`: the body, or the error page.
async fn preview_answer(state: &AppState, admin: &Admin, slug: &str, html: bool) -> Response {
    if !is_valid_slug(slug) {
        return not_found(state, admin);
    }
    match preview(state, slug).await {
        Ok(parts) => {
            let (body, kind) = if html {
                (parts.html, "text/html; charset=utf-8")
            } else {
                (parts.text, "text/plain; charset=utf-8")
            };
            let mut res = (StatusCode::OK, body).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PREVIEW_CSP),
            );
            res
        }
        Err(PreviewError::Missing(_)) => state.console.error(
            admin,
            StatusCode::NOT_FOUND,
            "No preview",
            "The content folder has no good issue by this name (gone, or it has problems `gazette check` names), so there is nothing to preview.",
        ),
        Err(e) => state.console.server_error(admin, &e),
    }
}

#[tracing::instrument(skip_all, fields(slug = %slug))]
async fn preview_html(
    State(state): State<AppState>,
    admin: Admin,
    Path(slug): Path<String>,
) -> Response {
    preview_answer(&state, &admin, &slug, true).await
}

#[tracing::instrument(skip_all, fields(slug = %slug))]
async fn preview_txt(
    State(state): State<AppState>,
    admin: Admin,
    Path(slug): Path<String>,
) -> Response {
    preview_answer(&state, &admin, &slug, false).await
}

/// A form with no fields of its own (the CSRF token aside).
type NoFields = std::collections::HashMap<String, String>;

/// `POST .../retry`: the failed deliveries go back to the queue, and a
/// cycle sends them.
#[tracing::instrument(skip_all, fields(slug = %slug))]
async fn retry(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(admin, _): CsrfForm<NoFields>,
) -> Response {
    match state.store.issue_progress_of(&slug).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&state, &admin),
        Err(e) => return state.console.server_error(&admin, &e),
    }
    if state.cycles.stopping() {
        return stopping(&state, &admin);
    }
    let queued = match state.store.retry_failed(&slug, Utc::now()).await {
        Ok(n) => n,
        Err(e) => return state.console.server_error(&admin, &e),
    };
    let entry = admin.audit(
        "issue.retry",
        Some(format!("issue {slug}")),
        Some(format!("{queued} failed deliveries queued again")),
    );
    super::audit::record(&state, &entry).await;
    let notice = if queued > 0 {
        drop(start_cycle(&state));
        "retried"
    } else {
        "nothing-to-retry"
    };
    state
        .console
        .see_other(&admin, &format!("issues/{slug}?notice={notice}"))
}

#[derive(Debug, serde::Deserialize)]
struct TestFields {
    #[serde(default)]
    email: String,
}

/// `POST .../test` (field `email`): one copy to that address, outside the
/// ledger. The address goes neither to the log nor to the audit log (it
/// may be a subscriber's); a refusal shows the server's reply on the page.
#[tracing::instrument(skip_all, fields(slug = %slug))]
async fn test_copy(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(admin, form): CsrfForm<TestFields>,
) -> Response {
    let typed = form.email.trim();
    let again = |problem: String, status| {
        let state = state.clone();
        let admin = admin.clone();
        let slug = slug.clone();
        let typed = typed.to_string();
        async move {
            let form = TestForm {
                email: &typed,
                problem,
            };
            issue_page(&state, &admin, &slug, None, status, Some(form)).await
        }
    };
    match state.store.issue_progress_of(&slug).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&state, &admin),
        Err(e) => return state.console.server_error(&admin, &e),
    }
    let email = match SubscriberEmail::parse_new(typed, state.config.mail.smtputf8) {
        Ok(e) => e,
        Err(e) => {
            return again(
                format!("Email address: {e}."),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let issue = match read_issue(&state.config, &slug).await {
        Ok(issue) => issue,
        Err(PreviewError::Missing(_)) => {
            return again(
                "The content folder has no good issue by this name, so there is nothing to send."
                    .into(),
                StatusCode::CONFLICT,
            )
            .await;
        }
        Err(e) => return state.console.server_error(&admin, &e),
    };
    let copy = send_test_copy(
        &state.config,
        Some(&state.store),
        &issue,
        &email,
        Some(TEST_COPY_WAIT),
    )
    .await;
    let (ok, detail) = match &copy {
        Ok(c) => (c.sent(), c.reply().to_string()),
        Err(e) => (false, e.to_string()),
    };
    // The audit names the issue and the outcome, never the address.
    let entry = admin.audit(
        "issue.test",
        Some(format!("issue {slug}")),
        Some(if ok { "sent".into() } else { "not sent".into() }),
    );
    super::audit::record(&state, &entry).await;
    match copy {
        Ok(c) if c.sent() => state
            .console
            .see_other(&admin, &format!("issues/{slug}?notice=test-sent")),
        Ok(_) => {
            again(
                format!("The mail server did not take the test copy: {detail}"),
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
        Err(TestCopyError::NoSender(_)) => {
            again(
                format!("No test copy can be sent: {detail}"),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "test copy failed");
            again(
                format!("The test copy could not be sent: {detail}"),
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
    }
}

/// `POST .../send`: mail a skipped issue to the subscribers active now, as
/// `gazette issues send SLUG` does (publish, then a cycle sends).
#[tracing::instrument(skip_all, fields(slug = %slug))]
async fn send(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(admin, _): CsrfForm<NoFields>,
) -> Response {
    let issue = match state.store.issue_progress_of(&slug).await {
        Ok(Some(issue)) => issue,
        Ok(None) => return not_found(&state, &admin),
        Err(e) => return state.console.server_error(&admin, &e),
    };
    if issue.state != IssueState::Skipped {
        return state.console.error(
            &admin,
            StatusCode::CONFLICT,
            "Not a skipped issue",
            "Only an issue that was skipped (too old when it came out) is mailed from here; this one is mailed, waiting, or not out yet. Nothing was changed.",
        );
    }
    if state.cycles.stopping() {
        return stopping(&state, &admin);
    }
    // The sender composes from the folder: refuse before fixing recipients
    // for a digest that cannot be built.
    match read_issue(&state.config, &slug).await {
        Ok(_) => {}
        Err(PreviewError::Missing(_)) => {
            return state.console.error(
                &admin,
                StatusCode::CONFLICT,
                "The issue cannot be read",
                "The content folder has no good issue by this name (gone, or it has problems `gazette check` names). Nothing was changed.",
            );
        }
        Err(e) => return state.console.server_error(&admin, &e),
    }
    let recipients = match state.store.publish_issue(&slug, Utc::now()).await {
        Ok(Published::Now { recipients }) => recipients,
        Ok(Published::Already) => 0,
        Ok(Published::Unknown) => return not_found(&state, &admin),
        Err(e) => return state.console.server_error(&admin, &e),
    };
    let entry = admin.audit(
        "issue.send",
        Some(format!("issue {slug}")),
        Some(format!("published to {recipients} active subscribers")),
    );
    super::audit::record(&state, &entry).await;
    drop(start_cycle(&state));
    state
        .console
        .see_other(&admin, &format!("issues/{slug}?notice=sending"))
}
