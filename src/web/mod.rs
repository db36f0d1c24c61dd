//! The HTTP side of `gazette serve`: feeds for feed readers, pages for
//! readers, the admin API, and health and metrics for operators.
//!
//! One module per audience; each exposes `routes()` and gets the shared
//! [`AppState`]. Handlers stay thin: the work is in `store`, `mail` and
//! `cycle`, as for the command line.

pub mod api;
pub mod feeds;
pub mod metrics;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::daemon::Cycles;
use crate::store::Store;

/// Request bodies larger than this are refused with 413 (a subscriber CSV
/// import is the largest thing anyone sends; the API raises its own limit).
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    Pages(String),
}

/// What every handler can reach; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub config: Arc<Config>,
    pub store: Store,
    pub cycles: Arc<Cycles>,
    pub feeds: feeds::FeedCache,
    /// The admin API token; `None` turns every API route into a 404.
    pub admin_token: Option<String>,
    pub pages: pages::Pages,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        cycles: Arc<Cycles>,
    ) -> Result<AppState, WebError> {
        let admin_token = config
            .http
            .admin_token_env
            .as_deref()
            .and_then(|var| std::env::var(var).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if admin_token.is_none() {
            tracing::info!(
                env = config
                    .http
                    .admin_token_env
                    .as_deref()
                    .unwrap_or("(http.admin_token_env unset)"),
                "no admin token set: the admin API is off"
            );
        }
        let pages = pages::Pages::load(&config)?;
        Ok(AppState(Arc::new(Inner {
            feeds: feeds::FeedCache::new(config.feeds.dir.clone()),
            config,
            store,
            cycles,
            admin_token,
            pages,
        })))
    }
}

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(metrics::healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(feeds::routes())
        .merge(pages::routes())
        .nest("/api/v1", api::routes(&state))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(
                    |res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        tracing::debug!(status = res.status().as_u16(), ?latency, "response");
                    },
                ),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every answer carries.
async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    res
}

/// The client address, as the socket saw it.
pub type ClientAddr = axum::extract::ConnectInfo<SocketAddr>;
