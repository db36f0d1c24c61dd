//! The subscriber import of the console (routes land with their slice).

use axum::Router;

use crate::web::AppState;

/// The import jobs the console runs.
#[derive(Debug, Default)]
pub struct Jobs {
    _placeholder: (),
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
