//! `gazette feeds build`: the feed files from the content folder, without
//! a database (only the parse cache beside where it would be).

use std::process::ExitCode;

use anyhow::{Result, bail};

use gazette::config::Config;
use gazette::cycle;
use gazette::release;

pub fn build(config: &Config, json: bool) -> Result<ExitCode> {
    let (ingest, cache) = cycle::ingest_kept(config)?;
    let parse = cache.counts();
    for p in &ingest.problems {
        eprintln!("warning: {p}");
    }
    // No database here: the issues out are those whose moment has passed
    // on the clock (drafts and held issues stay out of the feeds).
    let (released, _) = release::split(
        &ingest.issues,
        config.publication.timezone,
        chrono::Utc::now(),
    );
    let outcome = cycle::build_feeds(config, &released)?;
    // Only once the feeds are built: a failed build keeps the old cache.
    cache.keep();
    let cycle::FeedsOutcome::Built {
        written,
        unchanged,
        items,
    } = outcome
    else {
        bail!("feeds were not built")
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"dir": config.feeds.dir, "items": items, "written": written, "unchanged": unchanged,
                "article_files": parse})
        );
    } else {
        println!(
            "Feeds in {} ({items} items): {} written, {} unchanged.",
            config.feeds.dir.display(),
            if written.is_empty() {
                "none".into()
            } else {
                written.join(", ")
            },
            if unchanged.is_empty() {
                "none".into()
            } else {
                unchanged.join(", ")
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}
