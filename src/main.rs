//! The `gazette` command: parse arguments, load the config, call the library,
//! and report errors for people. Exit codes: 0 ok, 1 a problem the user can
//! fix, 2 usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod cmd;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use gazette::config::Config;
use gazette::content::Issue;
use gazette::cycle::{self, plural};
use gazette::mail::{Recipient, Renderer};
use gazette::release::{self, Release};
use gazette::store::{CheckedAdd, IssueRecord, RemoveOutcome, Store, StoreError};
use gazette::subscribers::csv as subscriber_csv;
use gazette::subscribers::{
    Status, Subscriber, SubscriberEmail, SubscriberName, SubscriberRow, Token,
};

/// Big feeds and mail batches allocate and free tens of megabytes per cycle;
/// mimalloc reuses those pages where glibc returns them to the OS and faults
/// them back in (measured: bench/feeds.sh, about 15% of the build time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "gazette",
    version,
    about = "Feeds and email digests for a periodical published in issues"
)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "GAZETTE_CONFIG",
        default_value = "config.toml",
        value_name = "PATH"
    )]
    config: PathBuf,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log lines on stderr as text, or as one JSON object per line (for
    /// log collectors). The level comes from GAZETTE_LOG (default: info for
    /// serve, warn otherwise).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the config and every content file; exit 1 on any problem.
    Check,
    /// One cycle: ingest new or changed issues, record them, rebuild the
    /// feeds, then EMAIL each new issue to every active subscriber (and send
    /// the retries that are due). Exit 3: no message got through to the mail
    /// server; they stay queued.
    Run {
        /// How long to wait for another run on the same database to finish.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// Feed files.
    Feeds {
        #[command(subcommand)]
        command: FeedsCommand,
    },
    /// The issues in the content folder.
    Issues {
        #[command(subcommand)]
        command: IssuesCommand,
    },
    /// The subscriber list: add, remove, erase, list, import, export.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },
    /// Delivery counts per issue; with SLUG, what did not go out and why.
    Deliveries { slug: Option<String> },
    /// Copy the database to OUT.db, consistently, also while `serve` runs
    /// (SQLite's VACUUM INTO, then an integrity check). OUT.db must not exist.
    Backup {
        /// Where to write the copy (relative to the current folder); it
        /// must not exist.
        #[arg(value_name = "OUT.db")]
        out: PathBuf,
    },
    /// The daemon: a cycle now and on `[schedule] cron`, and the HTTP server
    /// on `[http] listen` (feeds, pages, admin API, /healthz, /metrics).
    /// SIGTERM or SIGINT stop it gracefully.
    Serve,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum FeedsCommand {
    /// Build rss.xml, atom.xml and feed.json from the content folder.
    Build,
}

#[derive(Subcommand, Debug)]
enum IssuesCommand {
    /// Every issue, newest first.
    List,
    /// One issue and its articles.
    Show { slug: String },
    /// Write the digest of an issue as a sample subscriber would get it:
    /// DIR/SLUG.eml (the whole message), DIR/SLUG.html and DIR/SLUG.txt.
    Preview {
        slug: String,
        /// Where to write [default: preview/ beside the config file]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Mail an issue now: publish it (also one skipped as too old) and send
    /// what is due. With --to, send one test copy that is not recorded.
    Send {
        slug: String,
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
        /// How long to wait for another run on the same database to finish.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
}

#[derive(Subcommand, Debug)]
enum SubscribersCommand {
    /// Add one subscriber. Without --confirmed they are pending and get no
    /// mail until they confirm. An address already on the list (ignoring
    /// case) is left as it is; an erased one is refused (exit 1).
    Add {
        /// The address, e.g. ann@example.org.
        email: String,
        /// The name shown in the To: header.
        #[arg(long)]
        name: Option<String>,
        /// They already agreed (on paper, by phone): active at once, no
        /// confirmation.
        #[arg(long)]
        confirmed: bool,
    },
    /// Unsubscribe an address. The record and its delivery history are kept.
    /// Exit 1 when the address is not on the list.
    Remove {
        /// The address (case does not matter).
        email: String,
    },
    /// Erase a subscriber at their request: address and name are deleted
    /// (also from the replies in the delivery history, whose counts stay),
    /// and only a hash of the address is kept so that no import or add
    /// brings it back. Exit 1 when the address is not on the list.
    Erase {
        /// The address (case does not matter).
        email: String,
    },
    /// Subscribers in sign-up order: a table, or a JSON array with --json.
    List {
        /// Only subscribers with this status.
        #[arg(long, value_name = "STATUS", value_parser = status_parser())]
        status: Option<Status>,
    },
    /// Import subscribers from a CSV file, all good rows in one transaction.
    #[command(
        long_about = "Import subscribers from a CSV file, all good rows in one transaction.

The first line is a header with an `email` column; `name` and `status` \
(pending, active, unsubscribed, bounced; default active) are optional, in any \
order, any case. Other columns are ignored with a warning. UTF-8 with or \
without BOM, CRLF or LF, double-quoted fields.

Each bad row is skipped and printed on stderr as FILE:LINE: reason (invalid \
address, control characters, bad status, duplicate of an earlier row). \
Addresses already on the list are left as they are and counted. Addresses \
erased at the person's request (`subscribers erase`) are never imported \
again: they are skipped and printed the same way.

Exit status: 0 when every row was imported or already there; 1 when any row \
was skipped (the good rows are still imported), or when the file cannot be \
read at all (no `email` column, not UTF-8: nothing is imported)."
    )]
    Import {
        /// The CSV file.
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
    },
    /// Write every subscriber as CSV (email,name,status), ready to import.
    Export {
        /// Write to this file (replaced atomically) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn status_parser() -> impl clap::builder::TypedValueParser<Value = Status> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Status::ALL.map(Status::as_str))
        .try_map(|s| Status::parse(&s).ok_or_else(|| format!("unknown status {s:?}")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(
        cli.log_format,
        if matches!(cli.command, Command::Serve) {
            "info"
        } else {
            "warn"
        },
    );
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each said once: library errors
/// often already quote their cause (`content folder X: No such file...`),
/// which `{:#}` would print a second time.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAZETTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn load_config(path: &std::path::Path) -> Result<Config> {
    Config::load(path)
        .map_err(|e| match e {
            gazette::config::ConfigError::Read { path, source }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                anyhow::anyhow!(
                    "there is no config file {} ({source}); run gazette in the folder that holds config.toml, or name the file with --config PATH or the GAZETTE_CONFIG environment variable",
                    path.display()
                )
            }
            e => anyhow::anyhow!("{e}"),
        })
        .context(format!(
            "the configuration {} is not usable (see README.md, \"Configuration\")",
            path.display()
        ))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Check => check(&config, cli.json),
        Command::Run { wait } => cmd::mail::run(&config, cli.json, Duration::from_secs(wait)),
        Command::Deliveries { slug } => cmd::mail::deliveries(&config, slug.as_deref(), cli.json),
        Command::Serve => cmd::serve::serve(config),
        Command::Backup { out } => cmd::backup::backup(&config, &out, cli.json),
        Command::Issues {
            command: IssuesCommand::Send { slug, to, wait },
        } => cmd::mail::issues_send(
            &config,
            &slug,
            to.as_deref(),
            cli.json,
            Duration::from_secs(wait),
        ),
        Command::Feeds {
            command: FeedsCommand::Build,
        } => feeds_build(&config, cli.json),
        Command::Issues {
            command: IssuesCommand::List,
        } => issues_list(&config, cli.json),
        Command::Issues {
            command: IssuesCommand::Show { slug },
        } => issues_show(&config, &slug, cli.json),
        Command::Subscribers { command } => match command {
            SubscribersCommand::Add {
                email,
                name,
                confirmed,
            } => subscribers_add(&config, &email, name.as_deref(), confirmed, cli.json),
            SubscribersCommand::Remove { email } => subscribers_remove(&config, &email, cli.json),
            SubscribersCommand::Erase { email } => subscribers_erase(&config, &email, cli.json),
            SubscribersCommand::List { status } => subscribers_list(&config, status, cli.json),
            SubscribersCommand::Import { file } => subscribers_import(&config, &file, cli.json),
            SubscribersCommand::Export { out } => {
                subscribers_export(&config, out.as_deref(), cli.json)
            }
        },
        Command::Issues {
            command: IssuesCommand::Preview { slug, out },
        } => issues_preview(&config, &slug, out, cli.json),
    }
}

/// Every template problem, by the rules `serve` applies at start (one
/// function for both, so that nothing `check` refuses can be served).
fn template_problems(config: &Config) -> Vec<String> {
    gazette::web::pages::Pages::problems(config)
}

fn check(config: &Config, json: bool) -> Result<ExitCode> {
    let (_, ingest) = cycle::ingest(config)?;
    let articles: usize = ingest.issues.iter().map(|i| i.articles.len()).sum();
    let templates = template_problems(config);
    let ok = ingest.problems.is_empty() && templates.is_empty();
    if json {
        let problems: Vec<_> = ingest
            .problems
            .iter()
            .map(|p| serde_json::json!({"path": p.path, "line": p.line, "message": p.message}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"config": config.path, "issues": ingest.issues.len(), "articles": articles, "problems": problems, "templates": templates})
        );
    } else {
        for p in &ingest.problems {
            println!("{p}");
        }
        for t in &templates {
            println!("{t}");
        }
        let what = format!(
            "{}, {} in {}",
            plural(ingest.issues.len(), "issue", "issues"),
            plural(articles, "article", "articles"),
            config.content.dir.display()
        );
        if ok {
            println!(
                "ok: {} and the templates are valid; {what}.",
                config.path.display()
            );
        } else {
            println!(
                "{} problems; {what} are fine.",
                ingest.problems.len() + templates.len()
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn feeds_build(config: &Config, json: bool) -> Result<ExitCode> {
    let (_, ingest) = cycle::ingest(config)?;
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
            serde_json::json!({"dir": config.feeds.dir, "items": items, "written": written, "unchanged": unchanged})
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

/// What the store has for each issue, when there is a store yet (listing
/// never creates it).
fn records(config: &Config) -> Result<std::collections::HashMap<String, IssueRecord>> {
    if !config.database.path.exists() {
        return Ok(Default::default());
    }
    with_store(config, async |store| {
        let recs = store.all_issue_records().await?;
        Ok(recs.into_iter().map(|r| (r.slug.clone(), r)).collect())
    })
}

/// First-seen times from the store, when there is one yet.
fn first_seen(config: &Config) -> Result<std::collections::HashMap<String, String>> {
    Ok(records(config)?
        .into_iter()
        .map(|(slug, r)| (slug, r.first_seen_at))
        .collect())
}

/// Where an issue stands for `issues list`: (status word, what to show).
/// "due" is an issue whose moment has passed that no cycle has let out yet.
fn issue_status(
    config: &Config,
    issue: &Issue,
    record: Option<&IssueRecord>,
    now: chrono::DateTime<chrono::Utc>,
) -> (&'static str, String) {
    let tz = config.publication.timezone;
    match release::status(issue, tz, now) {
        Release::Draft => ("draft", "draft".into()),
        Release::Held(at) => (
            "held",
            format!(
                "held until {}",
                at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
            ),
        ),
        Release::Out(_) if record.is_some_and(|r| r.released()) => ("out", "out".into()),
        Release::Out(_) => ("due", "due (at the next cycle)".into()),
    }
}

fn issues_list(config: &Config, json: bool) -> Result<ExitCode> {
    let (_, ingest) = cycle::ingest(config)?;
    for p in &ingest.problems {
        eprintln!("warning: {p}");
    }
    let records = records(config)?;
    let seen: std::collections::HashMap<&str, &str> = records
        .iter()
        .map(|(slug, r)| (slug.as_str(), r.first_seen_at.as_str()))
        .collect();
    let now = chrono::Utc::now();
    let tz = config.publication.timezone;
    let status: Vec<(&str, String)> = ingest
        .issues
        .iter()
        .map(|i| issue_status(config, i, records.get(&i.slug), now))
        .collect();
    if json {
        let rows: Vec<_> = ingest
            .issues
            .iter()
            .zip(&status)
            .map(|(i, (word, _))| {
                let record = records.get(&i.slug);
                serde_json::json!({"slug": i.slug, "title": i.title, "date": i.date.to_string(),
                    "articles": i.articles.len(), "first_seen": seen.get(i.slug.as_str()),
                    "status": word, "draft": i.draft,
                    "publish_at": release::moment(i, tz).with_timezone(&tz).to_rfc3339(),
                    "released_at": record.and_then(|r| r.released_at.clone())})
            })
            .collect();
        println!("{}", serde_json::Value::from(rows));
        return Ok(ExitCode::SUCCESS);
    }
    if ingest.issues.is_empty() {
        println!("No issues in {}.", config.content.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let w = ingest
        .issues
        .iter()
        .map(|i| i.slug.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let sw = status
        .iter()
        .map(|(_, s)| s.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<10}  {:<w$}  {:>8}  {:<20}  {:<sw$}  TITLE",
        "DATE", "SLUG", "ARTICLES", "FIRST SEEN", "STATUS"
    );
    for (i, (_, st)) in ingest.issues.iter().zip(&status) {
        let s = seen.get(i.slug.as_str()).copied().unwrap_or("not yet run");
        println!(
            "{:<10}  {:<w$}  {:>8}  {:<20}  {:<sw$}  {}",
            i.date,
            i.slug,
            i.articles.len(),
            s,
            st,
            i.title
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Ingest the content, warning about problems in the folder of `slug`.
pub(crate) fn ingest_for(config: &Config, slug: &str) -> Result<gazette::content::Ingest> {
    let (_, ingest) = cycle::ingest(config)?;
    for p in ingest
        .problems
        .iter()
        .filter(|p| p.path.starts_with(config.content.dir.join(slug)))
    {
        eprintln!("warning: {p}");
    }
    Ok(ingest)
}

pub(crate) fn find_issue<'a>(issues: &'a [Issue], slug: &str) -> Result<&'a Issue> {
    issues.iter().find(|i| i.slug == slug).ok_or_else(|| {
        let known: Vec<&str> = issues.iter().map(|i| i.slug.as_str()).collect();
        anyhow::anyhow!(
            "no issue {slug:?} in the content folder; known issues: {}",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        )
    })
}

fn issues_show(config: &Config, slug: &str, json: bool) -> Result<ExitCode> {
    let ingest = ingest_for(config, slug)?;
    let issue = find_issue(&ingest.issues, slug)?;
    let seen = first_seen(config)?;
    let url = config.publication.url(&format!("issues/{}", issue.slug));
    if json {
        let articles: Vec<_> = issue
            .articles
            .iter()
            .map(|a| {
                serde_json::json!({"slug": a.slug, "title": a.title, "authors": a.authors, "date": a.date.to_string(),
                    "section": a.section, "dateline": a.dateline, "summary": a.summary, "source": a.source})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"slug": issue.slug, "title": issue.title, "date": issue.date.to_string(), "number": issue.number,
                "volume": issue.volume, "summary": issue.summary, "url": url, "first_seen": seen.get(&issue.slug), "articles": articles})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", issue.title);
    let mut facts = vec![issue.date.format("%-d %B %Y").to_string()];
    if let Some(v) = issue.volume {
        facts.push(format!("volume {v}"));
    }
    if let Some(n) = issue.number {
        facts.push(format!("number {n}"));
    }
    println!("{}", facts.join(", "));
    println!("{url}");
    println!(
        "first seen: {}",
        seen.get(&issue.slug)
            .map(String::as_str)
            .unwrap_or("not yet (run `gazette run`)")
    );
    if let Some(s) = &issue.summary {
        println!("\n{s}");
    }
    println!();
    for (n, a) in issue.articles.iter().enumerate() {
        let by = if a.authors.is_empty() {
            String::new()
        } else {
            format!(" by {}", a.authors.join(", "))
        };
        println!("{:>2}. {}{by}", n + 1, a.title);
        let mut meta = vec![a.date.to_string()];
        meta.extend(a.section.clone());
        meta.extend(a.dateline.as_ref().map(|d| format!("dateline {d}")));
        println!("    {}  ({})", meta.join(" · "), a.source.display());
    }
    Ok(ExitCode::SUCCESS)
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

fn subscribers_add(
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
            "{} was erased at their request (`subscribers erase`); it is not added again",
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

fn subscribers_remove(config: &Config, email: &str, json: bool) -> Result<ExitCode> {
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

fn subscribers_erase(config: &Config, email: &str, json: bool) -> Result<ExitCode> {
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

fn subscribers_list(config: &Config, status: Option<Status>, json: bool) -> Result<ExitCode> {
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

fn subscribers_import(config: &Config, file: &Path, json: bool) -> Result<ExitCode> {
    let shown = file.display();
    let input = std::fs::read(file).with_context(|| format!("cannot read {shown}"))?;
    let parsed = match subscriber_csv::read(&input, config.mail.smtputf8) {
        Ok(p) => p,
        Err(e) => bail!("{shown}:{}: {e}; nothing was imported", e.line()),
    };
    for w in &parsed.warnings {
        eprintln!("{shown}:{}: warning: {}", w.line, w.reason);
    }
    for s in &parsed.skipped {
        eprintln!("{shown}:{}: {}", s.line, s.reason);
    }
    let lines: Vec<u64> = parsed.rows.iter().map(|(line, _)| *line).collect();
    let rows: Vec<SubscriberRow> = parsed.rows.into_iter().map(|(_, r)| r).collect();
    let report = with_store(config, async |store| {
        Ok(store.import_subscribers(&rows, chrono::Utc::now()).await?)
    })?;
    let erased = subscriber_csv::erased_notes(&report.erased, &lines, &rows);
    for e in &erased {
        eprintln!("{shown}:{}: {}", e.line, e.reason);
    }
    let mut skipped = parsed.skipped;
    skipped.extend(erased.iter().cloned());
    skipped.sort_by_key(|n| n.line);
    if json {
        let notes = |v: &[subscriber_csv::LineNote]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|n| serde_json::json!({"line": n.line, "reason": n.reason}))
                .collect()
        };
        println!(
            "{}",
            serde_json::json!({"file": file, "imported": report.imported, "already_subscribed": report.already_subscribed,
                "erased": erased.len(), "skipped": notes(&skipped), "warnings": notes(&parsed.warnings)})
        );
    } else {
        println!(
            "{shown}: imported {}, already subscribed {} (left as is), skipped {}{}.",
            report.imported,
            report.already_subscribed,
            skipped.len(),
            match (skipped.len(), erased.len()) {
                (0, _) => String::new(),
                (_, 0) => " (listed above)".to_string(),
                (_, n) => format!(" (listed above; {n} erased at the person's request)"),
            }
        );
    }
    Ok(if skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn subscribers_export(config: &Config, out: Option<&Path>, json: bool) -> Result<ExitCode> {
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

fn issues_preview(
    config: &Config,
    slug: &str,
    out: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let ingest = ingest_for(config, slug)?;
    let issue = find_issue(&ingest.issues, slug)?;
    let renderer = Renderer::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let digest = renderer
        .prepare(issue)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (email, name) = (
        SubscriberEmail::parse("preview@example.org")?,
        SubscriberName::parse("Preview Reader")?,
    );
    let token = Token::placeholder("preview-token");
    let recipient = Recipient {
        email: &email,
        name: name.as_ref(),
        token: &token,
    };
    let message = digest
        .message(&recipient)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let parts = digest
        .parts(&recipient)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = out.unwrap_or_else(|| match config.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("preview"),
        _ => PathBuf::from("preview"),
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (ext, bytes) in [
        ("eml", message.bytes.as_slice()),
        ("html", parts.html.as_bytes()),
        ("txt", parts.text.as_bytes()),
    ] {
        let path = dir.join(format!("{}.{ext}", issue.slug));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"subject": digest.subject(), "message_id": message.message_id, "to": message.to, "files": written})
        );
    } else {
        println!("Subject: {}", digest.subject());
        for p in &written {
            println!("{}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
