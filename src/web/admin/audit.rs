//! Console pages: audit (routes land with their slice).

use axum::Router;

use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
