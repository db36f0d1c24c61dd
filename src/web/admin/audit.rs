//! The audit log at `/admin/audit`: who did what to which target, when,
//! from where; newest first, in pages linked by keyset (`?before=ID`), so
//! a long log costs the same on every page.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;

use super::dashboard::to_value;

use super::{Admin, Section};
use crate::store::AuditEntry;
use crate::web::AppState;

/// Lines per page.
pub const PAGE: u32 = 50;

/// Write the audit line of an action that is done. A failure to write it
/// is logged, never shown: telling the admin "nothing was changed" after a
/// test copy went out or an issue was published would be wrong, and would
/// invite doing it twice.
pub async fn record(state: &AppState, entry: &AuditEntry<'_>) {
    if let Err(e) = state.store.audit(entry).await {
        tracing::error!(error = %e, action = entry.action, "cannot write the audit log");
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(page))
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuditQuery {
    /// Lines older than this id (the last one of the page before).
    before: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn page(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<AuditQuery>,
) -> Response {
    let before = match q.before.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                return state.console.error(
                    &admin,
                    StatusCode::BAD_REQUEST,
                    "Not a page of the log",
                    "The address's `before` is not a line number of the audit log. Start again from the first page.",
                );
            }
        },
    };
    let lines = match state.store.audit_page(before, PAGE).await {
        Ok(lines) => lines,
        Err(e) => return state.console.server_error(&admin, &e),
    };
    // A full page may have more after it; the next page starts below its
    // last line.
    let next = (lines.len() == PAGE as usize)
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    state.console.page(
        &admin,
        "admin/audit.html",
        Section::Audit,
        context! {
            lines => to_value(&lines),
            next => next,
            first_page => before.is_none(),
        },
    )
}
