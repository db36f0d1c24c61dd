//! The `gazette` command: parse arguments, load the config, call the library,
//! and report errors for people. Exit codes: 0 ok, 1 a problem the user can
//! fix, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod cmd;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use gazette::config::Config;
use gazette::store::InboundKind;
use gazette::subscribers::Status;

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
    /// Returned mail (bounces, complaints, mailto unsubscribes): read it
    /// from files, Maildir folders or mbox files, or list the decisions.
    Inbound {
        #[command(subcommand)]
        command: InboundCommand,
    },
    /// Who may sign in to the admin console at /admin/ (it is off until
    /// there is one).
    Admins {
        #[command(subcommand)]
        command: AdminsCommand,
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

#[derive(Subcommand, Debug)]
enum AdminsCommand {
    /// Add an admin, or set a new password for one (ending their
    /// sessions). The password (at least 12 characters) is asked for on a
    /// terminal, else read from the first line of stdin.
    Add { email: String },
    /// Every admin, with their last sign-in.
    List,
    /// Remove an admin; their sessions end at once.
    Remove { email: String },
}

#[derive(Subcommand, Debug)]
enum InboundCommand {
    /// Process returned messages from files, Maildir folders or mbox files
    /// (the TAG address is read from Delivered-To, X-Original-To or To).
    /// Each message counts once: importing the same folder again changes
    /// nothing.
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// The latest decisions, newest first.
    List {
        /// Only this kind: hard, soft, sender, complaint, unsubscribe,
        /// auto_reply, other, forged, unmatched.
        #[arg(long, value_parser = inbound_kind_parser())]
        kind: Option<InboundKind>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

fn inbound_kind_parser() -> impl clap::builder::TypedValueParser<Value = InboundKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(InboundKind::ALL.map(InboundKind::as_str))
        .try_map(|s| InboundKind::parse(&s).ok_or_else(|| format!("unknown kind {s:?}")))
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

/// Transparent huge pages off for this process. On kernels that hand a
/// process huge pages (here, even under the `madvise` policy), every fresh
/// 2 MB of heap was zeroed whole at its first touch: perf put a third of a
/// first `run` over 10,000 articles in `clear_page_erms`, its system time
/// swung between 0.3 and 2.3 s, and an import kept 24 MB more resident
/// than it used. gazette's heaps are small and short-lived; ordinary pages
/// serve them better (bench/feeds.sh, bench/import.sh).
#[cfg(target_os = "linux")]
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; it only sets a flag on the process. A refusal (an old
    // kernel) changes nothing, so its result is not needed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    no_huge_pages();
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
    // sqlx warns of every statement that took over a second: an import's
    // pieces on a busy machine do, and the warning (the whole SQL) said
    // nothing a user could act on. `GAZETTE_LOG=sqlx::query=warn` shows it.
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAZETTE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default_level},sqlx::query=error"))
    });
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
    let config = Config::load(path)
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
        .with_context(|| not_usable(path))?;
    // The key is mail's to read, but a bad one stops every command before it
    // starts, like any other config mistake.
    if let Some(dkim) = &config.mail.dkim {
        gazette::mail::dkim::DkimKey::load(dkim).with_context(|| not_usable(path))?;
    }
    Ok(config)
}

fn not_usable(path: &std::path::Path) -> String {
    format!(
        "the configuration {} is not usable (see README.md, \"Configuration\")",
        path.display()
    )
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Check => cmd::check::check(&config, cli.json),
        Command::Run { wait } => cmd::mail::run(&config, cli.json, Duration::from_secs(wait)),
        Command::Deliveries { slug } => cmd::mail::deliveries(&config, slug.as_deref(), cli.json),
        Command::Serve => cmd::serve::serve(config),
        Command::Inbound {
            command: InboundCommand::Import { paths },
        } => cmd::inbound::import(&config, &paths, cli.json),
        Command::Inbound {
            command: InboundCommand::List { kind, limit },
        } => cmd::inbound::list(&config, kind, limit, cli.json),
        Command::Admins { command } => match command {
            AdminsCommand::Add { email } => cmd::admins::add(&config, &email, cli.json),
            AdminsCommand::List => cmd::admins::list(&config, cli.json),
            AdminsCommand::Remove { email } => cmd::admins::remove(&config, &email, cli.json),
        },
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
        } => cmd::feeds::build(&config, cli.json),
        Command::Issues {
            command: IssuesCommand::List,
        } => cmd::issues::list(&config, cli.json),
        Command::Issues {
            command: IssuesCommand::Show { slug },
        } => cmd::issues::show(&config, &slug, cli.json),
        Command::Subscribers { command } => match command {
            SubscribersCommand::Add {
                email,
                name,
                confirmed,
            } => cmd::subscribers::add(&config, &email, name.as_deref(), confirmed, cli.json),
            SubscribersCommand::Remove { email } => {
                cmd::subscribers::remove(&config, &email, cli.json)
            }
            SubscribersCommand::Erase { email } => {
                cmd::subscribers::erase(&config, &email, cli.json)
            }
            SubscribersCommand::List { status } => {
                cmd::subscribers::list(&config, status, cli.json)
            }
            SubscribersCommand::Import { file } => {
                cmd::subscribers::import(&config, &file, cli.json)
            }
            SubscribersCommand::Export { out } => {
                cmd::subscribers::export(&config, out.as_deref(), cli.json)
            }
        },
        Command::Issues {
            command: IssuesCommand::Preview { slug, out },
        } => cmd::issues::preview(&config, &slug, out, cli.json),
    }
}
