//! `serve`: the daemon, on a multi-threaded runtime, until SIGTERM/SIGINT.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use gazette::config::Config;
use gazette::daemon;

pub fn serve(config: Config) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The library's messages already name their cause; report them as they
    // are rather than the cause a second time.
    rt.block_on(daemon::serve(Arc::new(config), shutdown_signal()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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
