//! `run`, `issues send`, `deliveries`: the commands that mail.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};

use gazette::config::Config;
use gazette::cycle::{self, Control};
use gazette::delivery::send::{Progress, Quiet};
use gazette::delivery::test_copy::send_test_copy as send_test_copy_with;
use gazette::release::{self, Release};
use gazette::store::{DeliveryStatus, LastCycle, Published, RunLock, Store};
use gazette::subscribers::SubscriberEmail;

/// A progress bar with rate and ETA, on a terminal only.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, due: u64) {
        self.0.set_length(due);
        self.0.reset_eta();
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn progress(json: bool) -> Box<dyn Progress> {
    if json || !std::io::stderr().is_terminal() {
        return Box::new(Quiet);
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("sending {bar:30} {pos}/{len} · {per_sec} · ETA {eta}")
    {
        bar.set_style(style);
    }
    Box::new(Bar(bar))
}

/// SIGINT or SIGTERM: stop sending; messages in flight finish and are recorded.
fn stop_on_signal(rt: &tokio::runtime::Runtime) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    rt.spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        eprintln!("stopping: finishing the messages in flight; the rest stays queued");
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

fn lock(config: &Config, wait: Duration) -> Result<RunLock> {
    Ok(RunLock::acquire(&config.database.path, wait, |holder| {
        eprintln!("waiting for another gazette run to finish ({holder}) ...");
    })?)
}

pub fn run(config: &Config, json: bool, wait: Duration) -> Result<ExitCode> {
    let _lock = lock(config, wait)?;
    let rt = super::runtime()?;
    let stop = stop_on_signal(&rt);
    let bar = progress(json);
    let (report, waiting) = rt.block_on(async {
        let store = Store::open(&config.database.path).await?;
        let control = Control {
            progress: bar.as_ref(),
            stop: &stop,
        };
        let report = cycle::run(config, &store, Utc::now(), &control).await;
        // For the admin console's dashboard, as `serve`'s cycles are kept.
        let (ok, summary) = match &report {
            Ok(r) => (true, r.summary()),
            Err(e) => (false, e.to_string()),
        };
        let last = LastCycle::new(Utc::now(), ok, summary, "run");
        if let Err(e) = store.set_last_cycle(&last).await {
            eprintln!("warning: cannot record this run for the admin console: {e}");
        }
        // When the server never answered: every message that waits for it.
        let waiting = match report.as_ref().ok().and_then(|r| r.mail.send.as_ref()) {
            Some(send) if send.server_never_answered() => Some(
                store
                    .delivery_counts(None)
                    .await?
                    .iter()
                    .map(|i| i.counts.pending())
                    .sum::<u64>(),
            ),
            _ => None,
        };
        store.close().await;
        anyhow::Ok((report?, waiting))
    })?;
    if json {
        println!("{}", report.to_json());
    } else {
        for p in &report.problems {
            eprintln!("warning: {p}");
        }
        println!("{}", report.summary());
    }
    if let Some(n) = waiting {
        eprintln!(
            "error: no message got through to the mail server ({}): it did not answer, or refused the session (TLS, login); {n} messages wait in the queue for the next run (`gazette deliveries` has the errors)",
            mail_server(config)
        );
        return Ok(ExitCode::from(EXIT_SERVER_UNREACHABLE));
    }
    Ok(ExitCode::SUCCESS)
}

/// `gazette run`'s exit code when messages were due and not one attempt got
/// an answer from the mail server (connection refused or timed out, TLS or
/// login refused): distinct from 1 (a problem in gazette's input or
/// files) so that an alert can tell them apart.
pub const EXIT_SERVER_UNREACHABLE: u8 = 3;

/// The mail server as configured, for messages.
fn mail_server(config: &Config) -> String {
    match config.mail.transport {
        gazette::config::Transport::Smtp => {
            format!("{}:{}", config.mail.smtp.host, config.mail.smtp.port)
        }
        gazette::config::Transport::File => {
            format!("outbox {}", config.mail.outbox.display())
        }
    }
}

/// `issues send SLUG`: publish now (even an issue skipped as too old) and
/// send what is due; `--to EMAIL`: one test copy, not recorded.
pub fn issues_send(
    config: &Config,
    slug: &str,
    to: Option<&str>,
    json: bool,
    wait: Duration,
) -> Result<ExitCode> {
    let ingest = super::issues::ingest_for(config, slug)?;
    let issue = super::issues::find_issue(&ingest.issues, slug)?;
    let rt = super::runtime()?;
    if let Some(to) = to {
        let email = SubscriberEmail::parse(to)
            .map_err(|e| anyhow::anyhow!("{to:?} is not a usable address: {e}"))?;
        return rt.block_on(send_test_copy(config, issue, &email, json));
    }
    // A test copy (above) is how a draft is proofread; the list gets only
    // what is out.
    let tz = config.publication.timezone;
    match release::status(issue, tz, Utc::now()) {
        Release::Draft => bail!(
            "{slug} is a draft (draft = true in its issue.toml): it is not mailed; \
             `--to EMAIL` sends a test copy"
        ),
        Release::Held(at) => bail!(
            "{slug} is held until {} (publish_at or date in its issue.toml): it is mailed then; \
             `--to EMAIL` sends a test copy",
            at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
        ),
        Release::Out(_) => {}
    }
    let _lock = lock(config, wait)?;
    let stop = stop_on_signal(&rt);
    let bar = progress(json);
    let (published, report) = rt.block_on(async {
        let store = Store::open(&config.database.path).await?;
        store
            .record_issues(std::slice::from_ref(issue), tz, Utc::now())
            .await?;
        let published = store.publish_issue(slug, Utc::now()).await?;
        let due = store.issues_due(Utc::now()).await?;
        let control = Control {
            progress: bar.as_ref(),
            stop: &stop,
        };
        let report = cycle::send_mail(config, &store, &ingest, &due, &control).await;
        store.close().await;
        anyhow::Ok((published, report?))
    })?;
    if json {
        println!(
            "{}",
            serde_json::json!({"slug": slug, "published_now": matches!(published, Published::Now { .. }), "send": report})
        );
        return Ok(ExitCode::SUCCESS);
    }
    match published {
        Published::Now { recipients } => {
            println!("Published {slug} to {recipients} active subscribers.")
        }
        _ => println!("{slug} was published before; sending what is still due."),
    }
    println!(
        "Sent {}, deferred {}, failed {}, bounced {}. `gazette deliveries {slug}` lists what did not go out.",
        report.sent, report.deferred, report.failed, report.bounced
    );
    Ok(ExitCode::SUCCESS)
}

async fn send_test_copy(
    config: &Config,
    issue: &gazette::content::Issue,
    email: &SubscriberEmail,
    json: bool,
) -> Result<ExitCode> {
    // A subscriber's own links when the address is on the list.
    let store = if config.database.path.exists() {
        Some(Store::open(&config.database.path).await?)
    } else {
        None
    };
    let copy = send_test_copy_with(config, store.as_ref(), issue, email, None).await;
    if let Some(store) = store {
        store.close().await;
    }
    let copy = copy?;
    let (ok, reply) = (copy.sent(), copy.reply());
    if json {
        println!(
            "{}",
            serde_json::json!({"to": email.as_str(), "sent": ok, "reply": reply, "message_id": copy.message_id})
        );
    } else if ok {
        println!(
            "Sent a test copy of {} to {} ({reply}). It is not recorded in the ledger.",
            issue.slug,
            email.as_str()
        );
    } else {
        eprintln!("The test copy to {} was not sent: {reply}", email.as_str());
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `deliveries [SLUG]`: counts per status per issue; with SLUG, what did not go out and why.
pub fn deliveries(config: &Config, slug: Option<&str>, json: bool) -> Result<ExitCode> {
    if !config.database.path.exists() {
        bail!(
            "no database yet at {}: run `gazette run` first",
            config.database.path.display()
        );
    }
    let (counts, (problems, problems_total)) = super::with_store(config, async |store| {
        let counts = store.delivery_counts(slug).await?;
        let problems = match slug {
            Some(s) => (
                store.delivery_problems(s).await?,
                store.delivery_problem_count(s).await?,
            ),
            None => (Vec::new(), 0),
        };
        Ok((counts, problems))
    })?;
    if let Some(s) = slug
        && counts.is_empty()
    {
        bail!("no issue {s:?} recorded (see `gazette issues list`)");
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"issues": counts, "problems": problems, "problems_total": problems_total})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:<11} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "ISSUE", "MAIL", "QUEUED", "SENDING", "SENT", "FAILED", "BOUNCED", "CANCELLED"
    );
    for c in &counts {
        let n = c.counts;
        println!(
            "{:<28} {:<11} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
            c.slug, c.mail_state, n.queued, n.sending, n.sent, n.failed, n.bounced, n.cancelled
        );
        if let Some(note) = c.note.as_deref().filter(|_| slug.is_some()) {
            println!("  {note}");
        }
    }
    if slug.is_some() {
        if problems.is_empty() {
            println!("\nNo failures.");
        } else {
            println!(
                "\n{:<36} {:<9} {:>8}  LAST REPLY",
                "SUBSCRIBER", "STATUS", "ATTEMPTS"
            );
            for p in &problems {
                let next = if p.status == DeliveryStatus::Queued {
                    format!(" (next try {})", p.next_attempt_at)
                } else {
                    String::new()
                };
                println!(
                    "{:<36} {:<9} {:>8}  {}{next}",
                    p.email,
                    p.status,
                    p.attempts,
                    p.last_reply.as_deref().unwrap_or("-")
                );
            }
            let more = problems_total.saturating_sub(problems.len() as u64);
            if more > 0 {
                println!(
                    "... and {more} more (the first {} by status and address are shown)",
                    problems.len()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
