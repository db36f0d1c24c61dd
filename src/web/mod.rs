//! The HTTP side of `gazette serve`: feeds for feed readers, pages for
//! readers, the admin API, and health and metrics for operators.
//!
//! One module per audience; each exposes `routes()` and gets the shared
//! [`AppState`]. Handlers stay thin: the work is in `store`, `mail` and
//! `cycle`, as for the command line.

pub mod admin;
pub mod api;
pub mod feeds;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod server;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use tower_http::trace::TraceLayer;
use tower_service::Service;

use crate::config::Config;
use crate::cycles::Cycles;
use crate::mail::verp::Verp;
use crate::store::Store;

/// Request bodies larger than this are refused with 413 (a subscriber CSV
/// import is the largest thing anyone sends; the API raises its own limit).
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Pages(pages::PageProblems),
    /// The console's templates (each names its file and line).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Console(Vec<crate::templates::TemplateError>),
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
    pub console: admin::Console,
    /// The VERP envelope senders of sign-up mails (with
    /// `mail.bounce_address`), read from the store at first use.
    verp: tokio::sync::OnceCell<Arc<Verp>>,
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
        let console = admin::Console::load(&config).map_err(WebError::Console)?;
        Ok(AppState(Arc::new(Inner {
            feeds: feeds::FeedCache::new(config.feeds.dir.clone()),
            config,
            store,
            cycles,
            admin_token,
            pages,
            console,
            verp: tokio::sync::OnceCell::new(),
        })))
    }
}

impl AppState {
    /// With `mail.bounce_address` set: what makes each sign-up mail's
    /// envelope sender. A database that cannot give the key is logged and
    /// the mail goes out from `mail.from`, as without a bounce address.
    pub async fn verp(&self) -> Option<Arc<Verp>> {
        self.config.mail.bounce_address.as_ref()?;
        // A failed read is not kept: the next sign-up mail tries again.
        let got = self
            .verp
            .get_or_try_init(|| async {
                let key = self.store.verp_key().await?;
                Verp::from_config(&self.config, key).map(Arc::new).ok_or(
                    crate::store::StoreError::Corrupt {
                        what: "mail.bounce_address vanished".into(),
                    },
                )
            })
            .await;
        match got {
            Ok(v) => Some(v.clone()),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the VERP key; this sign-up mail goes out from mail.from");
                None
            }
        }
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
        .merge(admin::router(&state))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let client = req
                        .extensions()
                        .get::<ClientAddr>()
                        .map(|c| c.0.ip().to_string())
                        .unwrap_or_default();
                    tracing::debug_span!("http", method = %req.method(), path = %loggable_path(req.uri().path()), client = %client)
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

/// The path as logs show it: the token of a confirm, unsubscribe or
/// preferences link is a secret (whoever has it acts for the subscriber), so
/// it is replaced by `…`.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/confirm/", "/unsubscribe/", "/preferences/"] {
        if path.starts_with(prefix) && path.len() > prefix.len() {
            return format!("{prefix}…").into();
        }
    }
    path.into()
}

/// Headers every answer carries.
async fn security_headers(mut res: Response) -> Response {
    add_security_headers(res.headers_mut());
    res
}

fn add_security_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: nothing (no token in a page's
    // URL) leaves for another site, and the browser still sends the real
    // `Origin` with the site's own form POSTs, which check it
    // (`no-referrer` would make it `null`).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// What [`server`] runs: per connection, a [`Front`].
///
/// Feed readers' polls are nearly all the traffic, and for them the
/// router's machinery (boxed services and futures, the trace and header
/// layers, the matched-path and client-address extensions) costs more than
/// the answer itself. So a `GET` of a feed file is answered here, from the
/// same cache and with the same headers as through the router; everything
/// else goes to [`router`] with the client's address (`ConnectInfo`; see
/// [`proxy`]).
#[derive(Clone, Debug)]
pub struct App {
    state: AppState,
    router: Router,
}

/// [`router`] behind the feeds' fast path.
pub fn app(state: AppState) -> App {
    App {
        router: router(state.clone()),
        state,
    }
}

impl App {
    /// The service for one connection from `peer`.
    pub fn connection(&self, peer: SocketAddr) -> Front {
        Front {
            state: self.state.clone(),
            router: self.router.clone(),
            peer,
        }
    }
}

/// One connection's service (see [`App`]).
#[derive(Clone, Debug)]
pub struct Front {
    state: AppState,
    router: Router,
    /// The TCP peer (a proxy, when there is one).
    peer: SocketAddr,
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> FrontFuture {
        if let Some(mut res) = feeds::fast_path(
            &self.state.feeds,
            req.method(),
            req.uri().path(),
            req.headers(),
        ) {
            add_security_headers(res.headers_mut());
            // What the trace layer logs for the other routes (but the
            // latency: an answer from memory takes microseconds).
            tracing::debug!(
                method = %req.method(),
                path = %req.uri().path(),
                status = res.status().as_u16(),
                "response"
            );
            return FrontFuture::Ready(Some(res));
        }
        let client = proxy::client_addr(
            self.peer,
            req.headers(),
            &self.state.config.http.trusted_proxies,
        );
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(client));
        FrontFuture::Router(Box::pin(self.router.call(req)))
    }
}

/// The answer of a [`Front`]: ready at once (a feed) or the router's.
pub enum FrontFuture {
    Ready(Option<Response>),
    Router(Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>),
}

impl Future for FrontFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            FrontFuture::Ready(res) => Poll::Ready(Ok(res
                .take()
                .expect("FrontFuture polled after it was ready"))),
            FrontFuture::Router(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// The client's address: the TCP peer's, or the one a trusted proxy
/// forwarded ([`proxy`]).
pub type ClientAddr = axum::extract::ConnectInfo<SocketAddr>;

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn tokens_never_reach_the_log() {
        let t = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg";
        for p in ["/confirm/", "/unsubscribe/", "/preferences/"] {
            let logged = loggable_path(&format!("{p}{t}")).into_owned();
            assert!(!logged.contains(t), "{logged}");
            assert!(logged.starts_with(p));
        }
        assert_eq!(loggable_path("/issues/2026-winter"), "/issues/2026-winter");
        assert_eq!(loggable_path("/feeds/atom.xml"), "/feeds/atom.xml");
    }
}
