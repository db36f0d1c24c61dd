//! The connections of `gazette serve`: binding `http.listen`, accepting,
//! limits and timeouts, and the graceful stop.
//!
//! A connection costs a file descriptor for as long as it is open, and the
//! schedule needs descriptors too (the database, content files, SMTP). So
//! nothing a client does keeps one open for long:
//! - the request head must arrive within `http.header_timeout`, counted
//!   from when the server waits for it (the connection opened, or the
//!   previous answer went out): idle, keep-alive and slowly sent heads all
//!   end there;
//! - a request body that sends nothing for `http.body_timeout` fails (the
//!   handler answers 400 and the connection closes);
//! - at most `http.max_connections` are open. At the cap, connections
//!   with no request in progress (idle, or sending a head) are closed to
//!   make room (they hold nothing but a descriptor), those with one close
//!   after its answer, and the accept loop waits for a free place;
//! - an accept that fails (out of descriptors) is logged and retried after
//!   a pause; it never stops the server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tower_service::Service;

use super::App;

/// How long the accept loop pauses after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How often the accept loop, at the cap, asks idle connections again to
/// make room.
const SHED_EVERY: Duration = Duration::from_millis(250);

/// `http.header_timeout`, `http.body_timeout`, `http.max_connections`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(http: &crate::config::HttpConfig) -> Limits {
        Limits {
            header_timeout: http.header_timeout,
            body_timeout: http.body_timeout,
            max_connections: http.max_connections,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot resolve {listen} (http.listen): {source}")]
    Resolve {
        listen: String,
        source: std::io::Error,
    },
    #[error("{listen} (http.listen) resolves to no address")]
    NoAddress { listen: String },
    #[error("cannot listen on {addr} (http.listen): {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Listen on `listen` (`HOST:PORT`). An IP address is bound as it is; a
/// host name on every address it resolves to (`localhost`: 127.0.0.1 and
/// ::1), as long as one of them binds: an address that cannot (no IPv6 on
/// the host) is logged and left out.
pub async fn bind(listen: &str) -> Result<Vec<TcpListener>, BindError> {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError::Listen { addr, source })?;
        return Ok(vec![l]);
    }
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|source| BindError::Resolve {
            listen: listen.to_string(),
            source,
        })?
        .collect();
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(*a));
    let mut listeners = Vec::new();
    let mut first_error = None;
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(l) => listeners.push(l),
            Err(source) => {
                tracing::warn!(%addr, error = %source, listen, "cannot listen on one address of http.listen");
                first_error.get_or_insert(BindError::Listen { addr, source });
            }
        }
    }
    if listeners.is_empty() {
        return Err(first_error.unwrap_or(BindError::NoAddress {
            listen: listen.to_string(),
        }));
    }
    Ok(listeners)
}

/// Serve `app` on `listeners` until `stop` turns true; then stop
/// accepting, let each connection finish the request it is on, and return
/// once every connection is closed.
pub async fn run(
    listeners: Vec<TcpListener>,
    app: App,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let shed = Arc::new(Notify::new());
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(
            listener,
            app.clone(),
            limits,
            places.clone(),
            shed.clone(),
            stop.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}
    // Every connection holds a place until it closes.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = places.acquire_many(all).await;
}

async fn accept_loop(
    listener: TcpListener,
    app: App,
    limits: Limits,
    places: Arc<Semaphore>,
    shed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut told_full = false;
    loop {
        let place = match places.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !told_full {
                    tracing::warn!(
                        max = limits.max_connections,
                        "connection limit reached (http.max_connections): closing idle connections"
                    );
                    told_full = true;
                }
                let wait = async {
                    loop {
                        shed.notify_waiters();
                        tokio::select! {
                            p = places.clone().acquire_owned() => return p,
                            _ = tokio::time::sleep(SHED_EVERY) => {}
                        }
                    }
                };
                tokio::select! {
                    p = wait => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors (EMFILE, ENFILE) or memory, or a
                // connection reset before it was accepted: the listener
                // is fine; pause so as not to spin, and make room.
                tracing::warn!(error = %e, "cannot accept a connection; retrying");
                shed.notify_waiters();
                drop(place);
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        if places.available_permits() > limits.max_connections / 2 {
            told_full = false;
        }
        // Answers are written in one go; Nagle's algorithm would only hold
        // back the tail of a large feed until the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let front = app.connection(peer);
        let shed = shed.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            connection(tcp, front, limits, shed, stop).await;
            drop(place);
        });
    }
}

/// One connection, HTTP/1.1, until the client or a timeout closes it.
async fn connection(
    tcp: tokio::net::TcpStream,
    front: super::Front,
    limits: Limits,
    shed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let body_timeout = limits.body_timeout;
    // Requests whose answer is not yet fully sent: with none, the
    // connection waits for (or is receiving) a request head, holds nothing
    // else, and may be closed to make room.
    let busy = Arc::new(AtomicUsize::new(0));
    let counter = busy.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = Busy::new(&counter);
        let mut front = front.clone();
        let req = req.map(|b| axum::body::Body::new(TimedBody::new(b, body_timeout)));
        let answer = front.call(req);
        async move {
            let res = answer.await?;
            Ok::<_, Infallible>(res.map(|b| {
                axum::body::Body::new(Guarded {
                    inner: b,
                    _guard: guard,
                })
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection closed");
                }
                return;
            }
            // Closed now when it has no request in progress; else after
            // the answer.
            _ = shed.notified(), if !closing => {
                if busy.load(Ordering::SeqCst) == 0 {
                    tracing::debug!("idle connection closed to make room");
                    return;
                }
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// One request in progress on a connection, until its answer is sent.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(counter: &Arc<AtomicUsize>) -> Busy {
        counter.fetch_add(1, Ordering::SeqCst);
        Busy(counter.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer's body, holding its request's [`Busy`] until sent (or dropped).
struct Guarded {
    inner: axum::body::Body,
    _guard: Busy,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails when the client sends nothing for the
/// timeout (from the request head on, then between pieces).
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> TimedBody {
        TimedBody {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

/// The request body stalled past `http.body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for {0:?} (http.body_timeout)")]
struct BodyStalled(Duration);

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyStalled(this.timeout).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
