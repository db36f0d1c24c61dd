//! `serve`: the daemon, on a multi-threaded runtime, until SIGTERM/SIGINT.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use gazette::config::Config;
use gazette::daemon;

/// How long the runtime may take to wind down once `daemon::serve` has
/// returned: with its stop grace and store close, the exit stays within the
/// 10 s a stop is allowed.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(500);

pub fn serve(config: Config) -> Result<ExitCode> {
    // At least two workers even on one CPU: a cycle's ingest and rendering
    // run on a worker, and with a single one HTTP would wait for them; with
    // two, the OS shares the CPU and the pages and feeds keep answering.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The library's messages already name their cause; report them as they
    // are rather than the cause a second time.
    let served = rt.block_on(async {
        // Listen before anything starts: a signal during startup (opening
        // the store, binding the port) then stops the daemon as soon as it
        // runs, gracefully, instead of killing the process.
        let stop = shutdown_signal().context("cannot listen for SIGTERM and SIGINT")?;
        daemon::serve(Arc::new(config), stop)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    });
    // Dropping the runtime would wait for every blocking thread (file
    // writes, reads of the content folder) without limit; one that never
    // returns (a hung disk or network mount) would keep the process past
    // the stop deadline. What is cut off here is what crash recovery
    // re-sends.
    rt.shutdown_timeout(RUNTIME_SHUTDOWN);
    served?;
    Ok(ExitCode::SUCCESS)
}

/// A future that resolves at the first SIGINT or SIGTERM; the handlers are
/// installed when this returns, not when the future is first polled.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
