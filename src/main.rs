//! The `gazette` command: parse arguments, load the config, call the library,
//! and report errors for people. Exit codes: 0 ok, 1 a problem the user can
//! fix, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use gazette::config::Config;
use gazette::content::Issue;
use gazette::cycle::{self, plural};
use gazette::mail::{Recipient, RenderError, Renderer};
use gazette::store::{RunLock, Store};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the config and every content file; exit 1 on any problem.
    Check,
    /// One cycle: ingest new or changed issues, record them, rebuild the feeds.
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAZETTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(path: &std::path::Path) -> Result<Config> {
    Config::load(path)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context(format!(
            "the configuration {} is not usable (see README.md, \"Configuration\")",
            path.display()
        ))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Check => check(&config, cli.json),
        Command::Run { wait } => run(&config, cli.json, Duration::from_secs(wait)),
        Command::Feeds {
            command: FeedsCommand::Build,
        } => feeds_build(&config, cli.json),
        Command::Issues {
            command: IssuesCommand::List,
        } => issues_list(&config, cli.json),
        Command::Issues {
            command: IssuesCommand::Show { slug },
        } => issues_show(&config, &slug, cli.json),
        Command::Issues {
            command: IssuesCommand::Preview { slug, out },
        } => issues_preview(&config, &slug, out, cli.json),
    }
}

/// Every template problem: compile errors of each file, else the first
/// render error against the sample issue. A missing `mail.from` is not one
/// (only sending needs it).
fn template_problems(config: &Config) -> Vec<String> {
    match Renderer::load_all(config) {
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
        Ok(r) => match r.check() {
            Ok(()) | Err(RenderError::Sender(_)) => Vec::new(),
            Err(e) => vec![e.to_string()],
        },
    }
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

fn run(config: &Config, json: bool, wait: Duration) -> Result<ExitCode> {
    let _lock = RunLock::acquire(&config.database.path, wait, |holder| {
        eprintln!("waiting for another gazette run to finish ({holder}) ...");
    })?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let store = Store::open(&config.database.path).await?;
        let report = cycle::run(config, &store, chrono::Utc::now()).await;
        store.close().await;
        anyhow::Ok(report?)
    })?;
    if json {
        println!("{}", report.to_json());
    } else {
        for p in &report.problems {
            eprintln!("warning: {p}");
        }
        println!("{}", report.summary());
    }
    Ok(ExitCode::SUCCESS)
}

fn feeds_build(config: &Config, json: bool) -> Result<ExitCode> {
    let (_, ingest) = cycle::ingest(config)?;
    for p in &ingest.problems {
        eprintln!("warning: {p}");
    }
    let outcome = cycle::build_feeds(config, &ingest)?;
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

/// First-seen times from the store, when there is one yet (listing never creates it).
fn first_seen(config: &Config) -> Result<std::collections::HashMap<String, String>> {
    if !config.database.path.exists() {
        return Ok(Default::default());
    }
    let rt = runtime()?;
    rt.block_on(async {
        let store = Store::open(&config.database.path).await?;
        let recs = store.issue_records().await?;
        store.close().await;
        Ok(recs
            .into_iter()
            .map(|r| (r.slug, r.first_seen_at))
            .collect())
    })
}

fn issues_list(config: &Config, json: bool) -> Result<ExitCode> {
    let (_, ingest) = cycle::ingest(config)?;
    for p in &ingest.problems {
        eprintln!("warning: {p}");
    }
    let seen = first_seen(config)?;
    if json {
        let rows: Vec<_> = ingest
            .issues
            .iter()
            .map(|i| serde_json::json!({"slug": i.slug, "title": i.title, "date": i.date.to_string(), "articles": i.articles.len(), "first_seen": seen.get(&i.slug)}))
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
    println!(
        "{:<10}  {:<w$}  {:>8}  {:<20}  TITLE",
        "DATE", "SLUG", "ARTICLES", "FIRST SEEN"
    );
    for i in &ingest.issues {
        let s = seen
            .get(&i.slug)
            .map(String::as_str)
            .unwrap_or("not yet run");
        println!(
            "{:<10}  {:<w$}  {:>8}  {:<20}  {}",
            i.date,
            i.slug,
            i.articles.len(),
            s,
            i.title
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn find_issue<'a>(issues: &'a [Issue], slug: &str) -> Result<&'a Issue> {
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
    let (_, ingest) = cycle::ingest(config)?;
    for p in ingest
        .problems
        .iter()
        .filter(|p| p.path.starts_with(config.content.dir.join(slug)))
    {
        eprintln!("warning: {p}");
    }
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

fn issues_preview(
    config: &Config,
    slug: &str,
    out: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let (_, ingest) = cycle::ingest(config)?;
    for p in ingest
        .problems
        .iter()
        .filter(|p| p.path.starts_with(config.content.dir.join(slug)))
    {
        eprintln!("warning: {p}");
    }
    let issue = find_issue(&ingest.issues, slug)?;
    let renderer = Renderer::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let digest = renderer
        .prepare(issue)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let recipient = Recipient {
        email: "preview@example.org",
        name: Some("Preview Reader"),
        token: "preview-token",
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
