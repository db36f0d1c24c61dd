//! The send loop: claim due rows, compose, hand over, record. Repeats until
//! nothing is due.
//!
//! Rows are claimed in small batches (a few per connection), the next batch
//! while the last is still on the wire, and outcomes are recorded as soon as
//! a handful are in, so that a crash at any moment leaves at most about two
//! batches `sending`: those are sent again by the next run,
//! and the only possible duplicates are messages the server had accepted
//! before the crash but whose outcome was not yet recorded.
//!
//! A stop request (SIGTERM/SIGINT, Ctrl-C) takes effect within
//! [`STOP_CHECK`]: claimed rows still waiting for a connection or for the
//! rate limit are not sent and go back to `queued`; the messages already
//! handed to the transport get [`IN_FLIGHT_GRACE`] to finish, and all
//! outcomes are recorded. A message whose server is still silent then is
//! abandoned (its connection dropped) and its row queued again: it may have
//! arrived, so it may arrive twice, as after a crash. So a stop is prompt
//! however low `mail.rate_per_second` is and however slow the server, and
//! leaves no row `sending`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Outcome;
pub use super::compose::{ComposeError, Composed, Composer};
use super::ratelimit::RateLimiter;
use super::transport::{Transport, Wire};
use crate::store::{Attempt, Claimed, Store, StoreError};

/// How often the send loop looks at the stop flag while messages are out.
pub const STOP_CHECK: Duration = Duration::from_millis(50);

/// How long messages already on the wire may take to finish after a stop.
/// Well inside the 10 s a stop of `serve` is allowed (its grace is 8 s).
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(4);

/// Outcomes wait at most this long to be recorded when they trickle in
/// (a low `mail.rate_per_second`); a fast run records them in batches.
const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// What a send task did with its row.
enum Done {
    /// Handed to the transport (or failed to compose): an outcome to record.
    Tried((Claimed, String, Attempt), bool),
    /// Never sent: a stop came while it waited for its turn.
    Halted(i64),
    /// Abandoned after a stop: the server had not answered within
    /// [`IN_FLIGHT_GRACE`].
    Abandoned(i64),
}

/// Resolves once the send loop calls a halt (never, if it is gone).
async fn halted(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|h| *h).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[derive(Debug, Clone)]
pub struct SendOptions {
    pub concurrency: usize,
    pub rate_per_second: f64,
    pub retry_base: Duration,
    pub max_attempts: u32,
}

/// Told about each recorded outcome (the progress bar).
pub trait Progress: Send + Sync {
    fn start(&self, _due: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}

/// No progress display.
pub struct Quiet;
impl Progress for Quiet {}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    pub sent: u64,
    /// Deferred after a 4xx or a dropped connection; due again later.
    pub deferred: u64,
    pub failed: u64,
    pub bounced: u64,
    /// Rows a crashed run had left `sending`, sent again.
    pub recovered: u64,
    /// Queued rows of subscribers who left before they went out.
    pub cancelled: u64,
    /// When the next deferred row is due, if any.
    pub next_due: Option<String>,
    /// Stopped early because a stop was requested.
    pub interrupted: bool,
    /// Stopped early: many attempts in a row got no answer from the server.
    pub unreachable: bool,
    /// When the last attempts got no answer: why, in the words of the
    /// last one (e.g. "... does not speak TLS on this port ...").
    pub no_answer: Option<String>,
    /// Attempts that got no answer at all (refused, timed out, dropped,
    /// TLS trouble); counted in `deferred` or `failed` too.
    pub unanswered: u64,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl SendReport {
    /// Messages were tried and not one attempt got an answer from the
    /// server (down, unreachable, or refusing the session: TLS, login), so
    /// the rows wait in the queue.
    /// `gazette run` exits non-zero on it, so that cron and alerts notice.
    pub fn server_never_answered(&self) -> bool {
        let attempts = self.sent + self.deferred + self.failed + self.bounced;
        self.unanswered > 0 && self.unanswered == attempts
    }
}

/// Send everything that is due now. Call only while holding the run lock.
#[tracing::instrument(skip_all, fields(transport = ?transport))]
pub async fn send_due(
    store: &Store,
    transport: &Transport,
    composer: Arc<dyn Composer>,
    opts: &SendOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<SendReport, StoreError> {
    let started = Instant::now();
    let mut report = SendReport {
        recovered: store.requeue_stale(Utc::now()).await?,
        ..SendReport::default()
    };
    let concurrency = opts.concurrency.max(1);
    let batch = (concurrency * 4).clamp(8, 256) as u32;
    let flush_every = (concurrency * 2).max(8);
    let limiter = Arc::new(RateLimiter::new(opts.rate_per_second, concurrency as u32));
    let permits = Arc::new(Semaphore::new(concurrency));
    // Outcomes in a row without any answer from the server; this many means
    // it is down (one dropped connection now and then does not).
    let mut unanswered_in_a_row = 0usize;
    let mut last_silence = None;
    let give_up_after = (concurrency * 2).max(4);
    progress.start(store.count_due(Utc::now()).await?);

    // Rows of subscribers who left are skipped by every claim (it only takes
    // rows of active subscribers); marking them cancelled is bookkeeping,
    // done before and after the pass rather than on every batch.
    report.cancelled += store.cancel_inactive(Utc::now()).await?;
    // Raised once a stop is seen: tasks that have not yet sent give up.
    let (halt, halt_rx) = tokio::sync::watch::channel(false);
    let mut released = Vec::new();
    let mut abandoned = 0usize;
    // One pipeline, not batch after batch: the next rows are claimed while
    // fewer than `low_water` are waiting or on the wire, so the connections
    // do not idle while the last messages of a batch finish and the next
    // claim makes its round trip to SQLite. At most `low_water + batch`
    // rows are claimed at any moment (a crash leaves those `sending`, to be
    // sent by the next run), and the ones a crash can make arrive twice
    // are as before: those on the wire and the `flush_every` outcomes not
    // yet recorded.
    let low_water = concurrency * 2;
    let mut ledger = store.ledger().await?;
    let mut tasks = JoinSet::new();
    // False once no more rows are claimed: a stop came, or the server
    // stopped answering.
    let mut claiming = true;
    // The last claim found nothing due. The next waits until the messages
    // on the wire are done: a row deferred meanwhile may be due by then
    // (a short `mail.retry_base`), and is sent in this run.
    let mut dry = false;
    let mut done = Vec::with_capacity(flush_every);
    // When the oldest outcome not yet recorded came in.
    let mut oldest_unrecorded: Option<Instant> = None;
    let mut check = tokio::time::interval(STOP_CHECK);
    loop {
        if claiming && stop.load(Ordering::SeqCst) {
            report.interrupted = true;
            claiming = false;
        }
        if claiming && tasks.len() < low_water && (!dry || tasks.is_empty()) {
            let claimed = ledger.claim_due(Utc::now(), batch).await?;
            dry = claimed.is_empty();
            if dry && tasks.is_empty() {
                break;
            }
            // Rows whose subscriber values do not parse were failed by the claim.
            report.failed += claimed.failed;
            progress.advance(claimed.failed);
            for row in claimed.rows {
                tasks.spawn(send_one(
                    row,
                    composer.clone(),
                    transport.clone(),
                    limiter.clone(),
                    permits.clone(),
                    halt_rx.clone(),
                ));
            }
            continue;
        }
        if tasks.is_empty() {
            break;
        }
        // Record as outcomes come in. Even when a stop is requested, the
        // messages already on their way are finished and recorded.
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            _ = check.tick() => {
                if stop.load(Ordering::SeqCst) && !*halt.borrow() {
                    report.interrupted = true;
                    claiming = false;
                    let _ = halt.send(true);
                }
                None
            }
        };
        match joined {
            Some(Ok(Done::Tried(result, answered))) => {
                if answered {
                    unanswered_in_a_row = 0;
                } else {
                    unanswered_in_a_row += 1;
                    if let Attempt::Retry { reply } = &result.2 {
                        last_silence = Some(reply.clone());
                    }
                }
                report.unanswered += u64::from(!answered);
                oldest_unrecorded.get_or_insert_with(Instant::now);
                done.push(result);
            }
            Some(Ok(Done::Halted(id))) => released.push(id),
            Some(Ok(Done::Abandoned(id))) => {
                abandoned += 1;
                released.push(id);
            }
            Some(Err(e)) => tracing::error!("a send task failed: {e}"),
            None => {}
        }
        if claiming && unanswered_in_a_row >= give_up_after {
            // No answer for many attempts in a row: the server is down or
            // unreachable. Claim no more rather than spend an attempt of
            // every queued row; they wait, untouched, for the next run.
            report.unreachable = true;
            claiming = false;
        }
        let trickle = oldest_unrecorded.is_some_and(|t| t.elapsed() >= FLUSH_AFTER);
        if !done.is_empty() && (done.len() >= flush_every || tasks.is_empty() || trickle) {
            tally(&mut report, &done, opts.max_attempts);
            ledger
                .record_attempts(&done, Utc::now(), opts.retry_base, opts.max_attempts)
                .await?;
            progress.advance(done.len() as u64);
            done.clear();
            oldest_unrecorded = None;
        }
    }
    drop(ledger);
    if unanswered_in_a_row > 0 {
        report.no_answer = last_silence;
    }
    if abandoned > 0 {
        tracing::warn!(
            messages = abandoned,
            "stopping: the server had not answered these within {} s; queued again (they may have arrived)",
            IN_FLIGHT_GRACE.as_secs()
        );
    }
    if !released.is_empty() {
        store.release_unsent(&released, Utc::now()).await?;
        tracing::info!(
            rows = released.len(),
            "stopping: claimed messages not yet sent are queued again"
        );
    }
    progress.finish();
    report.cancelled += store.cancel_inactive(Utc::now()).await?;
    report.next_due = store.next_due().await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// One claimed row: wait for a connection and the rate limit, compose,
/// hand over, and say what happened.
async fn send_one(
    row: Claimed,
    composer: Arc<dyn Composer>,
    transport: Transport,
    limiter: Arc<RateLimiter>,
    permits: Arc<Semaphore>,
    halt_rx: tokio::sync::watch::Receiver<bool>,
) -> Done {
    // Waiting for a connection and for the rate limit ends at a
    // stop; once past both, the message goes out.
    let _permit = tokio::select! {
        biased;
        _ = halted(halt_rx.clone()) => return Done::Halted(row.delivery_id),
        p = permits.acquire_owned() => p,
    };
    let composed = match composer.compose(&row) {
        Ok(c) => c,
        Err(why) => {
            return Done::Tried(
                (
                    row,
                    String::new(),
                    Attempt::Failed {
                        reply: format!("not sent: {why}"),
                    },
                ),
                true,
            );
        }
    };
    tokio::select! {
        biased;
        _ = halted(halt_rx.clone()) => return Done::Halted(row.delivery_id),
        _ = limiter.acquire() => {}
    }
    let stem = format!("{}/{}", row.issue_slug, row.subscriber_id);
    let wire = Wire {
        envelope_from: &composed.envelope_from,
        to: &row.email,
        bytes: &composed.bytes,
        file_stem: &stem,
    };
    let abandon = async {
        halted(halt_rx).await;
        tokio::time::sleep(IN_FLIGHT_GRACE).await;
    };
    let outcome = tokio::select! {
        outcome = transport.send(wire) => outcome,
        _ = abandon => return Done::Abandoned(row.delivery_id),
    };
    let answered = !matches!(
        outcome,
        Outcome::Retry {
            answered: false,
            ..
        }
    );
    let attempt = match outcome {
        Outcome::Sent { reply } => Attempt::Sent { reply },
        Outcome::Retry { reply, .. } => Attempt::Retry { reply },
        Outcome::Failed {
            reply,
            bounce: true,
        } => Attempt::Bounced { reply },
        Outcome::Failed {
            reply,
            bounce: false,
        } => Attempt::Failed { reply },
    };
    Done::Tried((row, composed.message_id, attempt), answered)
}

fn tally(report: &mut SendReport, done: &[(Claimed, String, Attempt)], max_attempts: u32) {
    for (row, _, attempt) in done {
        match attempt {
            Attempt::Sent { .. } => report.sent += 1,
            Attempt::Retry { .. } if row.attempts < max_attempts => report.deferred += 1,
            Attempt::Retry { .. } | Attempt::Failed { .. } => report.failed += 1,
            Attempt::Bounced { .. } => report.bounced += 1,
        }
    }
}
