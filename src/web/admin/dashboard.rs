//! The dashboard at `/admin/` (placeholder until the dashboard lands).
//! `dashboard` is routed by `admin::router` (at `/admin/`, outside the
//! nested routes); `routes()` has the dashboard's other routes.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use minijinja::context;

use super::{Admin, Section};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}

pub async fn dashboard(State(state): State<AppState>, admin: Admin) -> Response {
    state.console.page(
        &admin,
        "admin/dashboard.html",
        Section::Dashboard,
        context! {},
    )
}
