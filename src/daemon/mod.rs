//! `gazette serve`: cycles on the cron schedule beside the HTTP server, and a
//! graceful stop.
//!
//! One [`Cycles`] (in [`crate::cycles`], which `web` uses too) owns
//! "running a cycle": the schedule loop and `POST /api/v1/cycle` both go
//! through it, so two cycles never overlap in this process.
//!
//! Stopping (SIGTERM/SIGINT): the stop flag tells the sender to take no new
//! messages; the ones in flight finish and are recorded; the HTTP server
//! stops accepting and drains. Whatever is still busy after
//! [`STOP_GRACE`] is dropped: rows it left `sending` are what crash
//! recovery re-sends on the next start, so the ledger stays consistent
//! either way.

pub mod schedule;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use schedule::{Schedule, ScheduleError, Step};

use crate::config::Config;
use crate::cycles::Cycles;
use crate::inbound::listener::Listener;
use crate::store::{Store, StoreError};

/// How long a stop waits for the cycle in flight (the contract allows 10 s
/// from the signal to the exit).
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// The longest single sleep of the schedule loop: it re-reads the wall clock
/// at least this often, so a suspended machine or a clock change is noticed.
const MAX_NAP: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("schedule.cron: {0}")]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Listen(#[from] crate::web::server::BindError),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    #[error(transparent)]
    Inbound(#[from] crate::inbound::InboundError),
    #[error("cannot listen on {listen} (inbound.listen): {source}")]
    InboundListen {
        listen: String,
        source: std::io::Error,
    },
}

/// The schedule loop: a cycle at start, then one per due slot and one when
/// a held issue's publication moment comes, until `cycles` is stopped.
pub async fn schedule_loop(
    cycles: Arc<Cycles>,
    schedule: Schedule,
    wake: Arc<tokio::sync::Notify>,
) {
    let started = Utc::now();
    // The start cycle stands for every slot up to now (the one catch-up),
    // and releases every issue whose moment passed while the daemon was down.
    let mut last = schedule.latest_at_or_before(started).unwrap_or(started);
    let _ = cycles.run_now("start").await;
    // After a release cycle failed: not again before this (a failing cycle
    // must not spin); the next slot still runs.
    let mut release_floor: Option<DateTime<Utc>> = None;
    loop {
        if cycles.stopping() {
            return;
        }
        let now = Utc::now();
        let release = cycles
            .stats()
            .next_release
            .map(|at| release_floor.map_or(at, |floor| at.max(floor)));
        let nap = match schedule.step_with_release(last, now, release) {
            Step::Run(slot) => {
                if schedule.next_after(last).is_some_and(|n| n < slot) {
                    tracing::info!(%slot, "slots were missed; one catch-up cycle");
                }
                last = slot;
                let _ = cycles.run_now("schedule").await;
                continue;
            }
            Step::Release(at) => {
                tracing::info!(%at, "a held issue's publication moment came; cycling");
                release_floor = match cycles.run_now("release").await {
                    Ok(_) => None,
                    Err(_) => Some(Utc::now() + MAX_NAP),
                };
                continue;
            }
            Step::Wait(next) => (next - now).to_std().unwrap_or(Duration::ZERO).min(MAX_NAP),
            Step::Never => MAX_NAP,
        };
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = wake.notified() => {}
            _ = cycles.release_changed() => {}
        }
    }
}

/// The whole daemon: open the store, serve HTTP on `config.http.listen`,
/// cycle on the schedule, and return once `shutdown` resolves and the work
/// in flight has finished (or [`STOP_GRACE`] has passed).
pub async fn serve(
    config: Arc<Config>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let schedule = Schedule::new(&config.schedule.cron, config.publication.timezone)?;
    let store = Store::open(&config.database.path).await?;
    let cycles = Arc::new(Cycles::new(config.clone(), store.clone()));
    let state = crate::web::AppState::new(config.clone(), store.clone(), cycles.clone())?;
    let listeners = crate::web::server::bind(&config.http.listen).await?;
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, cron = %config.schedule.cron, "gazette serving");
        }
    }

    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let inbound = match &config.inbound.listen {
        None => None,
        Some(listen) => {
            let processor = crate::inbound::Processor::new(&config, store.clone()).await?;
            let listener = tokio::net::TcpListener::bind(listen.as_str())
                .await
                .map_err(|source| ServeError::InboundListen {
                    listen: listen.clone(),
                    source,
                })?;
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "returned mail: SMTP listening");
            }
            let mut stop = stop_rx.clone();
            let limits = Listener::limits(&config.inbound);
            Some(tokio::spawn(Listener::new(processor).run(
                listener,
                limits,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )))
        }
    };
    let http = tokio::spawn(crate::web::server::run(
        listeners,
        crate::web::app(state),
        crate::web::server::Limits::from_config(&config.http),
        stop_rx,
    ));
    let looper = tokio::spawn(schedule_loop(cycles.clone(), schedule, wake.clone()));

    shutdown.await;
    tracing::info!("stopping: no new cycles or messages; finishing the ones in flight");
    cycles.stop();
    wake.notify_one();
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    if tokio::time::timeout_at(deadline, looper).await.is_err() {
        tracing::warn!(
            "the cycle in flight did not finish in {}s; rows left `sending` are re-sent at the next start",
            STOP_GRACE.as_secs()
        );
    }
    if tokio::time::timeout_at(deadline, http).await.is_err() {
        tracing::warn!("HTTP connections still open at the stop; closed");
    }
    if let Some(inbound) = inbound
        && tokio::time::timeout_at(deadline, inbound).await.is_err()
    {
        tracing::warn!("SMTP sessions still open at the stop; closed");
    }
    // A cycle cut off above still holds a connection; do not wait for it.
    let _ = tokio::time::timeout(Duration::from_secs(1), store.close()).await;
    tracing::info!("stopped");
    Ok(())
}
