//! Public pages: the archive, the web version of each issue, and the
//! subscribe / confirm / unsubscribe / preferences flow.

use axum::Router;

use super::{AppState, WebError};
use crate::config::Config;

/// The page templates, loaded once at start.
#[derive(Debug)]
pub struct Pages {}

impl Pages {
    pub fn load(_config: &Config) -> Result<Pages, WebError> {
        Ok(Pages {})
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
