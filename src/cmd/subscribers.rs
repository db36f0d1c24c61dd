//! `gazette subscribers add|remove|erase|list|import|export`: the list,
//! by hand or as a CSV file.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use gazette::config::Config;
use gazette::cycle::plural;
use gazette::import::{self, SkipReason};
use gazette::store::{CheckedAdd, RemoveOutcome, StoreError};
use gazette::subscribers::csv as subscriber_csv;
use gazette::subscribers::{Status, Subscriber, SubscriberEmail, SubscriberName, SubscriberRow};

use super::with_store;

fn parse_email(input: &str) -> Result<SubscriberEmail> {
    SubscriberEmail::parse(input)
        .map_err(|e| anyhow::anyhow!("invalid address {:?}: {e}", input.trim()))
}

fn subscriber_json(s: &Subscriber) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or(serde_json::Value::Null)
}

fn named(s: &Subscriber) -> String {
    match &s.name {
        Some(n) => format!("{} ({n})", s.email),
        None => s.email.to_string(),
    }
}

pub fn add(
    config: &Config,
    email: &str,
    name: Option<&str>,
    confirmed: bool,
    json: bool,
) -> Result<ExitCode> {
    let email = SubscriberEmail::parse_new(email, config.mail.smtputf8)
        .map_err(|e| anyhow::anyhow!("invalid address {:?}: {e}", email.trim()))?;
    let name = match name {
        Some(n) => SubscriberName::parse(n)
            .map_err(|e| anyhow::anyhow!("invalid name {:?}: {e}", n.trim()))?,
        None => None,
    };
    let row = SubscriberRow {
        email,
        name,
        status: if confirmed {
            Status::Active
        } else {
            Status::Pending
        },
    };
    // A pending subscriber confirms with a link of their own (not their
    // permanent token): the kind the web sign-up mails, valid for 7 days.
    let (outcome, confirm_token) = with_store(config, async |store| {
        let now = chrono::Utc::now();
        let outcome = store.add_subscriber_unless_erased(&row, now).await?;
        let token = match &outcome {
            CheckedAdd::Added(s) | CheckedAdd::AlreadyThere(s) if s.status == Status::Pending => {
                Some(store.start_confirmation(s.id, now).await?.0)
            }
            _ => None,
        };
        Ok((outcome, token))
    })?;
    let (added, s) = match &outcome {
        CheckedAdd::Added(s) => (true, s),
        CheckedAdd::AlreadyThere(s) => (false, s),
        CheckedAdd::Erased => bail!(
            "{} was erased at their request (`subscribers erase`), or complained of spam; it is not added again",
            row.email
        ),
    };
    let confirm_url = confirm_token.map(|t| config.publication.url(&format!("confirm/{t}")));
    if json {
        println!(
            "{}",
            serde_json::json!({"added": added, "subscriber": subscriber_json(s), "confirm_url": confirm_url})
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !added {
        println!(
            "{} is already on the list ({} since {}); left as it is.",
            named(s),
            s.status,
            s.created_at
        );
    } else if s.status == Status::Pending {
        println!(
            "Added {} as pending: they get no mail until they confirm with the link below.",
            named(s)
        );
    } else {
        println!(
            "Added {} as active: they get every issue published from now on.",
            named(s)
        );
    }
    if let Some(url) = confirm_url {
        println!("Confirmation link: {url}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remove(config: &Config, email: &str, json: bool) -> Result<ExitCode> {
    let email = parse_email(email)?;
    if !config.database.path.exists() {
        bail!("{email} is not on the list (there are no subscribers yet)");
    }
    let outcome = with_store(config, async |store| {
        Ok(store.remove_subscriber(&email, chrono::Utc::now()).await?)
    })?;
    let (removed, s) = match &outcome {
        RemoveOutcome::Removed(s) => (true, s),
        RemoveOutcome::AlreadyUnsubscribed(s) => (false, s),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"removed": removed, "subscriber": subscriber_json(s)})
        );
    } else if removed {
        println!(
            "Removed {}: unsubscribed, they get no more issues (the record and its delivery history are kept).",
            named(s)
        );
    } else {
        println!(
            "{} was already unsubscribed (since {}); nothing changed.",
            named(s),
            s.unsubscribed_at.as_deref().unwrap_or("an earlier import")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn erase(config: &Config, email: &str, json: bool) -> Result<ExitCode> {
    let email = parse_email(email)?;
    if !config.database.path.exists() {
        bail!("{email} is not on the list (there are no subscribers yet)");
    }
    let erased = with_store(config, async |store| {
        match store
            .erase_subscriber_by_email(&email, chrono::Utc::now())
            .await
        {
            Err(StoreError::UnknownSubscriber { .. }) if store.is_suppressed(&email).await? => {
                bail!("{email} was erased already; nothing changed")
            }
            other => Ok(other?),
        }
    })?;
    if json {
        println!("{}", serde_json::json!(erased));
    } else {
        println!(
            "Erased {email}: address and name deleted; {} kept without them{}. Imports and adds will skip this address.",
            plural(
                erased.deliveries_kept as usize,
                "delivery record",
                "delivery records"
            ),
            if erased.cancelled > 0 {
                format!(" ({} cancelled)", erased.cancelled)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(config: &Config, status: Option<Status>, json: bool) -> Result<ExitCode> {
    // Listing never creates the database.
    let list = if config.database.path.exists() {
        with_store(config, async |store| Ok(store.subscribers(status).await?))?
    } else {
        Vec::new()
    };
    if json {
        let rows: Vec<_> = list.iter().map(subscriber_json).collect();
        println!("{}", serde_json::Value::from(rows));
        return Ok(ExitCode::SUCCESS);
    }
    let which = status.map(|s| format!("{s} ")).unwrap_or_default();
    if list.is_empty() {
        println!("No {which}subscribers.");
        return Ok(ExitCode::SUCCESS);
    }
    let w = list
        .iter()
        .map(|s| s.email.as_str().chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<12}  {:<20}  {:<w$}  NAME", "STATUS", "SINCE", "EMAIL");
    for s in &list {
        let since = match s.status {
            Status::Active => s.confirmed_at.as_deref(),
            Status::Unsubscribed => s.unsubscribed_at.as_deref(),
            _ => None,
        }
        .unwrap_or(&s.created_at);
        println!(
            "{:<12}  {:<20}  {:<w$}  {}",
            s.status.as_str(),
            since,
            s.email.as_str(),
            s.name.as_ref().map_or("", |n| n.as_str())
        );
    }
    let total = plural(
        list.len(),
        &format!("{which}subscriber"),
        &format!("{which}subscribers"),
    );
    if status.is_some() {
        println!("{total}.");
    } else {
        let by_status: Vec<String> = Status::ALL
            .into_iter()
            .map(|st| (st, list.iter().filter(|s| s.status == st).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(st, n)| format!("{n} {st}"))
            .collect();
        println!("{total}: {}.", by_status.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress line on a terminal while an import runs: the share of the
/// file read, as the store takes it piece by piece. Cleared at the end.
fn progress_bar(
    progress: std::sync::Arc<import::Progress>,
    size: u64,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut shown = false;
        while progress.stage() != import::Stage::Finished {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let percent = (progress.bytes() * 100).checked_div(size).unwrap_or(100);
            eprint!("\rimporting: {percent:>3} %");
            shown = true;
        }
        if shown {
            eprint!("\r{:16}\r", "");
        }
    })
}

pub fn import(config: &Config, file: &Path, json: bool) -> Result<ExitCode> {
    let shown = file.display();
    let smtputf8 = config.mail.smtputf8;
    let refuse = |e: subscriber_csv::CsvError| {
        anyhow::anyhow!("{shown}:{}: {e}; nothing was imported", e.line())
    };
    let open = || std::fs::File::open(file).with_context(|| format!("cannot read {shown}"));
    let meta = std::fs::metadata(file).with_context(|| format!("cannot read {shown}"))?;
    // A file that cannot be read does not create the database. A regular
    // file is read twice, from disk (the encoding check, then the rows), in
    // constant memory; a pipe can be read once only, so it is held.
    let (list, size) = if meta.is_file() {
        import::check_encoding(open()?).map_err(refuse)?;
        // Unbuffered: the CSV reader has its own buffer.
        let input: Box<dyn Read + Send> = Box::new(open()?);
        let list = import::open(input, smtputf8).map_err(refuse)?;
        (list, meta.len())
    } else {
        let mut data = Vec::new();
        open()?
            .read_to_end(&mut data)
            .with_context(|| format!("cannot read {shown}"))?;
        import::check_encoding(&data[..]).map_err(refuse)?;
        let size = data.len() as u64;
        let input: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(data));
        let list = import::open(input, smtputf8).map_err(refuse)?;
        (list, size)
    };
    let progress = std::sync::Arc::new(import::Progress::default());
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| progress_bar(progress.clone(), size));
    let outcome = with_store(config, async |store| {
        Ok(list
            .import_with(store, chrono::Utc::now(), &progress)
            .await?)
    });
    // Also when the store could not be opened: the bar waits for this.
    progress.finish();
    if let Some(bar) = bar {
        let _ = bar.join();
    }
    let outcome = outcome?;
    for w in &outcome.warnings {
        eprintln!("{shown}:{}: warning: {}", w.line, w.reason);
    }
    // The rows the file got wrong, then the ones the list refused.
    let (erased, bad): (Vec<_>, Vec<_>) = outcome
        .skipped
        .iter()
        .partition(|s| matches!(s.reason, SkipReason::Erased(_)));
    for s in bad.iter().chain(&erased) {
        eprintln!("{shown}:{}: {}", s.line, s.reason);
    }
    let skipped = outcome.skipped.len();
    if json {
        let mut v = serde_json::to_value(&outcome)?;
        v["file"] = serde_json::json!(file);
        println!("{v}");
    } else {
        println!(
            "{shown}: imported {}, already subscribed {} (left as is), skipped {skipped}{}.",
            outcome.imported,
            outcome.already_subscribed,
            match (skipped, erased.len()) {
                (0, _) => String::new(),
                (_, 0) => " (listed above)".to_string(),
                (_, n) => format!(" (listed above; {n} erased at the person's request)"),
            }
        );
    }
    Ok(if skipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn export(config: &Config, out: Option<&Path>, json: bool) -> Result<ExitCode> {
    // Exporting never creates the database.
    let rows = if config.database.path.exists() {
        with_store(config, async |store| Ok(store.export_subscribers().await?))?
    } else {
        Vec::new()
    };
    let Some(path) = out else {
        return match subscriber_csv::write(std::io::stdout().lock(), &rows) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            // `gazette subscribers export | head` is fine.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe) => {
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(e).context("cannot write the export to stdout"),
        };
    };
    write_atomically(path, |w| {
        subscriber_csv::write(w, &rows).map_err(std::io::Error::other)
    })
    .with_context(|| format!("cannot write {}", path.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({"out": path, "exported": rows.len()})
        );
    } else {
        println!(
            "Exported {} to {}.",
            plural(rows.len(), "subscriber", "subscribers"),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write a file through a temporary beside it and a rename, so a reader
/// never sees half of it.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        fill(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
