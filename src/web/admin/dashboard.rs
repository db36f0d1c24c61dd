//! The dashboard at `/admin/`: subscribers by status and their growth (a
//! chart and its table), the latest issues with their delivery progress,
//! the last cycle, what needs attention, and "Run a cycle now".
//!
//! `dashboard` is routed by `admin::router` (at `/admin/`, outside the
//! nested routes); `routes()` has the dashboard's form.

use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use chrono::Utc;
use minijinja::{Value, context};

use super::{Admin, CsrfForm, Section, chart};
use crate::cycles::RunError;
use crate::store::StoreError;
use crate::web::AppState;

/// Issues the dashboard shows with their progress.
pub const LATEST: usize = 5;

/// How long "Run a cycle now" waits for the cycle before answering: most
/// cycles take well under a second, and then the admin sees how it ended;
/// a long send goes on in the background and the dashboard says it runs.
const CYCLE_WAIT: Duration = Duration::from_secs(5);

pub fn routes() -> Router<AppState> {
    Router::new().route("/cycle", post(run_cycle))
}

/// `?notice=CODE` after a redirect.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn dashboard(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<NoticeQuery>,
) -> Response {
    match values(&state).await {
        Ok(values) => state.console.page_noticed(
            &admin,
            "admin/dashboard.html",
            Section::Dashboard,
            q.notice.as_deref(),
            values,
        ),
        Err(e) => state.console.server_error(&admin, &e),
    }
}

/// Everything the dashboard shows.
async fn values(state: &AppState) -> Result<Value, StoreError> {
    let now = Utc::now();
    let store = &state.store;
    let counts = store.subscriber_counts().await?;
    let growth = store.growth(now).await?;
    let latest = store.latest_issues(LATEST).await?;
    let attention = store.attention(now).await?;
    let last_cycle = store.last_cycle().await?;
    let stats = state.cycles.stats();
    let last_failed = last_cycle.as_ref().is_some_and(|c| !c.ok);
    let counts_list: Vec<Value> = crate::subscribers::Status::ALL
        .iter()
        .map(|s| context! { status => s.as_str(), n => counts.get(*s) })
        .collect();
    Ok(context! {
        counts => counts_list,
        total => counts.total(),
        // Drawn here from numbers only, every text escaped (chart.rs).
        chart => Value::from_safe_string(chart::growth_svg(&growth)),
        growth => to_value(&growth),
        latest => to_value(&latest),
        attention => to_value(&attention),
        needs_attention => !attention.is_empty() || last_failed,
        last_cycle => to_value(&last_cycle),
        last_failed => last_failed,
        running => stats.running,
        stopping => state.cycles.stopping(),
    })
}

/// A store value as templates see it. (minijinja is built without its
/// `serde` feature, so the store's serializable rows go through JSON, the
/// types templates know: maps, lists, strings, numbers, booleans, none.)
pub(super) fn to_value<T: serde::Serialize>(v: &T) -> Value {
    fn from_json(v: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::from(()),
            J::Bool(b) => Value::from(b),
            J::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Value::from(u),
                (None, Some(i)) => Value::from(i),
                _ => Value::from(n.as_f64().unwrap_or_default()),
            },
            J::String(s) => Value::from(s),
            J::Array(items) => Value::from(items.into_iter().map(from_json).collect::<Vec<_>>()),
            J::Object(map) => Value::from(
                map.into_iter()
                    .map(|(k, v)| (k, from_json(v)))
                    .collect::<std::collections::BTreeMap<String, Value>>(),
            ),
        }
    }
    // A value that does not serialize is none, shown as nothing: the store
    // types here always serialize.
    from_json(serde_json::to_value(v).unwrap_or_default())
}

/// Start a cycle in the background, as the schedule would: the request may
/// end (the admin closes the tab) without cutting the cycle short.
pub(super) fn start_cycle(state: &AppState) -> tokio::task::JoinHandle<Result<(), RunError>> {
    let cycles = state.cycles.clone();
    tokio::spawn(async move { cycles.run_now("admin").await.map(|_| ()) })
}

/// `POST /admin/cycle`: run one now; back to the dashboard saying how it
/// ended, or that it still runs.
#[tracing::instrument(skip_all)]
async fn run_cycle(
    State(state): State<AppState>,
    CsrfForm(admin, _): CsrfForm<std::collections::HashMap<String, String>>,
) -> Response {
    if state.cycles.stopping() {
        return stopping(&state, &admin);
    }
    if let Err(e) = state
        .store
        .audit(&admin.audit("cycle.run", None, None))
        .await
    {
        return state.console.server_error(&admin, &e);
    }
    let cycle = start_cycle(&state);
    let notice = match tokio::time::timeout(CYCLE_WAIT, cycle).await {
        Ok(Ok(Ok(()))) => "cycle-done",
        Ok(Ok(Err(RunError::Stopping))) => return stopping(&state, &admin),
        // The error is in the log and, for the dashboard, in the store.
        Ok(Ok(Err(_))) => "cycle-failed",
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the cycle task ended abnormally");
            "cycle-failed"
        }
        Err(_) => "cycle-running",
    };
    state
        .console
        .see_other(&admin, &format!("?notice={notice}"))
}

/// The answer while `serve` stops: no new cycle starts.
pub(super) fn stopping(state: &AppState, admin: &Admin) -> Response {
    state.console.error(
        admin,
        StatusCode::SERVICE_UNAVAILABLE,
        "gazette is stopping",
        "The server is shutting down, so it starts no new cycle. Nothing was changed. Try again once it is back.",
    )
}
