//! Command implementations of the `gazette` binary, one module per area.
//! They turn library results into output for people (or `--json`) and exit
//! codes; the work itself is in the library.

pub mod admins;
pub mod backup;
pub mod check;
pub mod feeds;
pub mod inbound;
pub mod issues;
pub mod mail;
pub mod serve;
pub mod subscribers;

use anyhow::{Context, Result};

use gazette::config::Config;
use gazette::store::Store;

/// A runtime on this thread, for the commands that run one thing at a time.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Open the store, run `f` on it, close it.
pub(crate) fn with_store<T>(
    config: &Config,
    f: impl AsyncFnOnce(&Store) -> Result<T>,
) -> Result<T> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = Store::open(&config.database.path).await?;
        let out = f(&store).await;
        store.close().await;
        out
    })
}
