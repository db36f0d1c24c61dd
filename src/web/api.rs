//! The admin API under `/api/v1`, behind a bearer token.

use axum::Router;

use super::AppState;

pub fn routes(_state: &AppState) -> Router<AppState> {
    Router::new()
}
