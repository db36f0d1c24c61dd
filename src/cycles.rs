//! Running a cycle in `gazette serve`: one at a time, with stats.
//!
//! One [`Cycles`] owns "running a cycle": the schedule loop (`daemon`) and
//! `POST /api/v1/cycle` (`web`) both go through it, so two cycles never
//! overlap in this process, and the OS run lock keeps a `gazette run` from
//! another shell out while one works. The lock is taken per cycle, not for
//! the life of the daemon, so the command line keeps working beside it.
//!
//! It is a module of its own, below both `daemon` and `web`, so that the
//! daemon may start the web server and the web server may run cycles
//! without the two importing each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::cycle::CycleError;
use crate::cycle::{self, Control, CycleReport};
use crate::delivery::send::Quiet;
use crate::store::{LockError, RunLock, Store};

/// Why [`Cycles::run_now`] ran no cycle, or the cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A stop was asked for: no new cycles.
    #[error("gazette is stopping")]
    Stopping,
    /// The OS run lock could not be taken (EMFILE, a wrong owner, a
    /// read-only folder...).
    #[error("cannot take the run lock: {0}")]
    Lock(LockError),
    /// The blocking task that takes the lock ended abnormally.
    #[error("cannot take the run lock: {0}")]
    LockTask(tokio::task::JoinError),
    #[error(transparent)]
    Cycle(#[from] CycleError),
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
    pub async fn run_now(&self, reason: &str) -> Result<CycleReport, RunError> {
        let _gate = self.gate.lock().await;
        if self.stopping() {
            return Err(RunError::Stopping);
        }
        let started = Instant::now();
        // A lock that cannot be taken (EMFILE, a wrong owner, a read-only
        // folder) is a failed cycle like any other: logged, counted in
        // gazette_cycle_failures_total and gazette_last_cycle_success, so an
        // alert fires. Only a stop while waiting for another run is not one.
        let result = match self.run_lock().await {
            Err(e) if self.stopping() => return Err(e),
            Err(e) => Err(e),
            Ok(_lock) => {
                self.update(|s| s.running = true);
                let control = Control {
                    progress: &Quiet,
                    stop: &self.stop,
                };
                cycle::run(&self.config, &self.store, Utc::now(), &control)
                    .await
                    .map_err(RunError::from)
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
        self.remember(&result, reason).await;
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

    /// Keep how the cycle ended in the store ([`crate::store::LastCycle`]),
    /// for the admin console: the stats above start empty at each restart.
    /// A store that cannot take it is logged; the cycle's result stands.
    async fn remember(&self, result: &Result<CycleReport, RunError>, reason: &str) {
        let (ok, summary) = match result {
            Ok(report) => (true, report.summary()),
            Err(e) => (false, e.to_string()),
        };
        let last = crate::store::LastCycle::new(Utc::now(), ok, summary, reason);
        if let Err(e) = self.store.set_last_cycle(&last).await {
            tracing::warn!(error = %e, "cannot record the last cycle for the admin console");
        }
    }

    /// Resolves when a cycle found a different next release moment than
    /// the one before it (the schedule loop then sleeps until the new one).
    pub async fn release_changed(&self) {
        self.release_changed.notified().await
    }

    fn update(&self, f: impl FnOnce(&mut CycleStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    /// The cross-process run lock; waits (without blocking the runtime)
    /// while a `gazette run` holds it, and gives up when asked to stop.
    async fn run_lock(&self) -> Result<RunLock, RunError> {
        let db = self.config.database.path.clone();
        let mut told = false;
        loop {
            let path = db.clone();
            let got = tokio::task::spawn_blocking(move || {
                RunLock::acquire(&path, Duration::ZERO, |_| {})
            })
            .await
            .map_err(RunError::LockTask)?;
            match got {
                Ok(lock) => return Ok(lock),
                Err(LockError::Busy { holder, .. }) => {
                    if self.stopping() {
                        return Err(RunError::Stopping);
                    }
                    if !told {
                        tracing::info!(%holder, "waiting for another gazette run to finish");
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(RunError::Lock(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cycles_in(dir: &std::path::Path) -> Cycles {
        let config = Config::parse(
            &dir.join("config.toml"),
            "[publication]\ntitle = \"T\"\nbase_url = \"https://example.org/\"\n",
            &[],
        )
        .unwrap();
        let store = Store::open(&config.database.path).await.unwrap();
        Cycles::new(Arc::new(config), store)
    }

    #[tokio::test]
    async fn no_cycle_runs_once_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let cycles = cycles_in(dir.path()).await;
        cycles.stop();
        let e = cycles.run_now("test").await.unwrap_err();
        assert!(matches!(e, RunError::Stopping), "{e:?}");
        assert_eq!(e.to_string(), "gazette is stopping");
        assert_eq!(cycles.stats().runs, 0, "a refused cycle is not a run");
    }

    #[tokio::test]
    async fn a_lock_that_cannot_be_taken_is_a_failed_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let cycles = cycles_in(dir.path()).await;
        // A directory where the lock file goes: opening it fails.
        std::fs::create_dir(RunLock::path_for(&cycles.config.database.path)).unwrap();
        let e = cycles.run_now("test").await.unwrap_err();
        assert!(matches!(e, RunError::Lock(LockError::Open { .. })), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("cannot take the run lock: cannot open lock file"),
            "{e}"
        );
        let stats = cycles.stats();
        assert_eq!(
            (stats.runs, stats.failures, stats.last_ok),
            (1, 1, Some(false))
        );
        // Kept for the console, which outlives this process's stats.
        let last = cycles.store.last_cycle().await.unwrap().unwrap();
        assert!(!last.ok);
        assert_eq!(last.reason, "test");
        assert_eq!(last.summary, e.to_string());
    }

    #[tokio::test]
    async fn a_cycle_that_worked_is_kept_with_its_summary() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("content")).unwrap();
        let cycles = cycles_in(dir.path()).await;
        let report = cycles.run_now("admin").await.unwrap();
        let last = cycles.store.last_cycle().await.unwrap().unwrap();
        assert_eq!(
            (last.ok, last.reason.as_str(), last.summary.clone()),
            (true, "admin", report.summary())
        );
        assert!(last.finished().is_some());
    }
}
