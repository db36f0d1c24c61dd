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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The library's messages already name their cause; report them as they
    // are rather than the cause a second time.
    let served = rt.block_on(daemon::serve(Arc::new(config), shutdown_signal()));
    // Dropping the runtime would wait for every blocking thread (file
    // writes, reads of the content folder) without limit; one that never
    // returns (a hung disk or network mount) would keep the process past
    // the stop deadline. What is cut off here is what crash recovery
    // re-sends.
    rt.shutdown_timeout(RUNTIME_SHUTDOWN);
    served.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves at the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
