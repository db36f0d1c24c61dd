//! `gazette serve`: cycles on the cron schedule beside the HTTP server, and a
//! graceful stop.
//!
//! One [`Cycles`] owns "running a cycle": the schedule loop and
//! `POST /api/v1/cycle` both go through it, so two cycles never overlap in
//! this process, and the OS run lock keeps a `gazette run` from another
//! shell out while one works. The lock is taken per cycle, not for the life
//! of the daemon, so the command line keeps working beside it.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use schedule::{Schedule, Step};

use crate::config::Config;
use crate::cycle::{self, Control, CycleReport};
use crate::delivery::send::Quiet;
use crate::store::{LockError, RunLock, Store, StoreError};

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
    Schedule(String),
    #[error(transparent)]
    Listen(#[from] crate::web::server::BindError),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
}

/// What the last cycles did, for `/metrics`. (A failed cycle's error is in
/// the log.)
#[derive(Debug, Clone, Default)]
pub struct CycleStats {
    pub runs: u64,
    pub failures: u64,
    pub running: bool,
    pub last_finished: Option<DateTime<Utc>>,
    pub last_ok: Option<bool>,
    pub last_seconds: f64,
    /// Messages sent by this process since it started.
    pub sent_total: u64,
    pub failed_total: u64,
    /// Messages per second over the last cycle that sent any.
    pub last_send_rate: f64,
    /// When the next held issue goes out, as the last cycle that succeeded
    /// found it: the schedule loop wakes for it.
    pub next_release: Option<DateTime<Utc>>,
}

/// Runs cycles, one at a time.
pub struct Cycles {
    config: Arc<Config>,
    store: Store,
    gate: tokio::sync::Mutex<()>,
    stop: AtomicBool,
    stats: std::sync::Mutex<CycleStats>,
    /// Told when a cycle found a different next release moment (a cycle
    /// from the API, say), so the schedule loop sleeps until the new one.
    release_changed: tokio::sync::Notify,
}

impl std::fmt::Debug for Cycles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cycles").finish_non_exhaustive()
    }
}

impl Cycles {
    pub fn new(config: Arc<Config>, store: Store) -> Cycles {
        Cycles {
            config,
            store,
            gate: tokio::sync::Mutex::new(()),
            stop: AtomicBool::new(false),
            stats: std::sync::Mutex::new(CycleStats::default()),
            release_changed: tokio::sync::Notify::new(),
        }
    }

    /// No new cycles, no new messages; the ones in flight finish.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> CycleStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Run one cycle now (waiting for one in flight to finish first).
    #[tracing::instrument(skip(self))]
    pub async fn run_now(&self, reason: &str) -> Result<CycleReport, String> {
        let _gate = self.gate.lock().await;
        if self.stopping() {
            return Err("gazette is stopping".into());
        }
        let started = Instant::now();
        // A lock that cannot be taken (EMFILE, a wrong owner, a read-only
        // folder) is a failed cycle like any other: logged, counted in
        // gazette_cycle_failures_total and gazette_last_cycle_success, so an
        // alert fires. Only a stop while waiting for another run is not one.
        let result = match self.run_lock().await {
            Err(e) if self.stopping() => return Err(e),
            Err(e) => Err(format!("cannot take the run lock: {e}")),
            Ok(_lock) => {
                self.update(|s| s.running = true);
                let control = Control {
                    progress: &Quiet,
                    stop: &self.stop,
                };
                cycle::run(&self.config, &self.store, Utc::now(), &control)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        let secs = started.elapsed().as_secs_f64();
        let before = self.stats().next_release;
        self.update(|s| {
            s.running = false;
            s.runs += 1;
            s.last_finished = Some(Utc::now());
            s.last_seconds = secs;
            s.last_ok = Some(result.is_ok());
            match &result {
                Ok(report) => {
                    s.next_release = report.next_release;
                    if let Some(send) = &report.mail.send {
                        s.sent_total += send.sent;
                        s.failed_total += send.failed + send.bounced;
                        let t = send.elapsed.as_secs_f64();
                        if send.sent > 0 && t > 0.0 {
                            s.last_send_rate = send.sent as f64 / t;
                        }
                    }
                }
                Err(_) => s.failures += 1,
            }
        });
        if let Ok(report) = &result
            && report.next_release != before
        {
            self.release_changed.notify_one();
        }
        match &result {
            Ok(report) => {
                for p in &report.problems {
                    tracing::warn!(problem = %p, "content problem");
                }
                tracing::info!(seconds = secs, summary = %report.summary(), "cycle done");
            }
            Err(e) => tracing::error!(error = %e, "cycle failed"),
        }
        result
    }

    fn update(&self, f: impl FnOnce(&mut CycleStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    /// The cross-process run lock; waits (without blocking the runtime)
    /// while a `gazette run` holds it, and gives up when asked to stop.
    async fn run_lock(&self) -> Result<RunLock, String> {
        let db = self.config.database.path.clone();
        let mut told = false;
        loop {
            let path = db.clone();
            let got = tokio::task::spawn_blocking(move || {
                RunLock::acquire(&path, Duration::ZERO, |_| {})
            })
            .await
            .map_err(|e| e.to_string())?;
            match got {
                Ok(lock) => return Ok(lock),
                Err(LockError::Busy { holder, .. }) => {
                    if self.stopping() {
                        return Err("gazette is stopping".into());
                    }
                    if !told {
                        tracing::info!(%holder, "waiting for another gazette run to finish");
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
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
            _ = cycles.release_changed.notified() => {}
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
    let schedule = Schedule::new(&config.schedule.cron, config.publication.timezone)
        .map_err(ServeError::Schedule)?;
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
    // A cycle cut off above still holds a connection; do not wait for it.
    let _ = tokio::time::timeout(Duration::from_secs(1), store.close()).await;
    tracing::info!("stopped");
    Ok(())
}
