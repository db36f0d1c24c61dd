//! `gazette backup OUT.db`: a consistent copy of the live database (see
//! `store::backup`), safe to run beside `serve` or a `run`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use gazette::config::Config;
use gazette::store::Store;

pub fn backup(config: &Config, out: &Path, json: bool) -> Result<ExitCode> {
    let db = &config.database.path;
    // Opening would create an empty database: there is nothing to back up.
    if !db.exists() {
        bail!(
            "there is no database at {} yet (database.url); nothing to back up",
            db.display()
        );
    }
    let rt = super::runtime()?;
    let backup = rt.block_on(async {
        let store = Store::open(db).await?;
        let backup = store.backup(out).await;
        store.close().await;
        anyhow::Ok(backup?)
    })?;
    if json {
        println!(
            "{}",
            serde_json::json!({"database": db, "backup": backup.path, "bytes": backup.bytes})
        );
    } else {
        println!(
            "Backed up {} to {} ({} bytes, integrity checked).",
            db.display(),
            backup.path.display(),
            backup.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}
