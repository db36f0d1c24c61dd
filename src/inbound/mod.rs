//! Returned mail: bounces, complaints and mailto unsubscribes.
//!
//! ```text
//! serve's SMTP listener (smtpd) ─┐
//!                                ├─► Processor::process ─► report::classify (what it is)
//! `inbound import` (mailbox) ────┘        │                 mail::verp (whom its address names)
//!                                         └─► store::record_inbound (what it does, once)
//! ```
//!
//! The address a message came to decides whom it is about (a VERP TAG names
//! one delivery; forwarding rewrites a report's own recipient fields, so
//! those are not trusted); its content decides what it is: a
//! delivery-status or feedback-report part wins over any `Auto-Submitted`
//! header. A message to the plain bounce address is matched by the
//! Message-ID of our message quoted inside it.

pub mod listener;
pub mod mailbox;
pub mod report;
pub mod smtpd;

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::mail::verp::{Owned, Tag, Verp, VerpKey};
use crate::store::{About, BounceRules, InboundKind, NewInbound, Recorded, Store, StoreError, Via};
use crate::subscribers::Token;
use report::{Report, ReportKind, Severity};

/// Why returned mail cannot be read with this config.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(
        "mail.bounce_address is not set in {}: gazette reads only mail to addresses it made (set it, e.g. bounce_address = \"bounces@news.example.org\")",
        .0.display()
    )]
    NoBounceAddress(std::path::PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime is shutting down: the message is not recorded (the
    /// listener answers 451; the MTA sends it again).
    #[error("returned mail cannot be recorded: gazette is stopping")]
    WriterStopped,
}

/// One message to process. The bytes are handed over, not borrowed: they
/// go to the classifier's thread and on to the writer without a copy.
pub struct Incoming<'a> {
    pub via: Via,
    /// The SMTP peer, or the file (and line) it was read from.
    pub origin: Option<&'a str>,
    /// The envelope recipients (SMTP), or the addresses its headers name
    /// (import: Delivered-To, X-Original-To, To).
    pub recipients: &'a [String],
    pub raw: Vec<u8>,
}

/// Reads returned messages and records what they do. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Processor {
    store: Store,
    verp: Arc<Verp>,
    max_message_bytes: usize,
    /// The one writer: messages from parallel sessions are recorded
    /// together, a batch per transaction ([`writer`]).
    writer: mpsc::Sender<Job>,
}

/// One message for the writer, and where its outcome goes.
struct Job {
    msg: OwnedInbound,
    done: oneshot::Sender<Result<Recorded, StoreError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// [`NewInbound`] with owned values, to cross to the writer task.
struct OwnedInbound {
    via: Via,
    origin: Option<String>,
    recipient: Option<String>,
    raw: Vec<u8>,
    d: Decision,
}

impl OwnedInbound {
    fn as_new(&self) -> NewInbound<'_> {
        NewInbound {
            via: self.via,
            origin: self.origin.as_deref(),
            recipient: self.recipient.as_deref(),
            raw: &self.raw,
            kind: self.d.kind,
            about: self.d.about.clone(),
            status: self.d.status.clone(),
            diagnostic: self.d.diagnostic.clone(),
            note: self.d.note.clone(),
        }
    }
}

/// Most messages recorded in one transaction.
const BATCH: usize = 64;

/// Records what the sessions hand it: whatever has queued up while the
/// last transaction ran goes into the next one. SQLite has one writer at a
/// time; parallel sessions each taking the write lock for one small
/// transaction wait on each other (busy waits), batches do not. If a batch
/// fails, its messages are recorded one by one, so each gets its own
/// outcome (a bad one then fails alone).
async fn writer(store: Store, rules: BounceRules, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        let now = Utc::now();
        let result = {
            let msgs: Vec<NewInbound<'_>> = batch.iter().map(|j| j.msg.as_new()).collect();
            store.record_inbound_batch(&msgs, &rules, now).await
        };
        match result {
            Ok(recorded) => {
                for (job, r) in batch.drain(..).zip(recorded) {
                    let _ = job.done.send(Ok(r));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = batch.len(), "returned mail: a batch failed; recording its messages one by one");
                for job in batch.drain(..) {
                    let r = store.record_inbound(&job.msg.as_new(), &rules, now).await;
                    let _ = job.done.send(r);
                }
            }
        }
    }
}

impl Processor {
    /// With `mail.bounce_address` set, else [`InboundError::NoBounceAddress`].
    pub async fn new(config: &Config, store: Store) -> Result<Processor, InboundError> {
        let key = store.verp_key().await?;
        let verp = Verp::from_config(config, key)
            .ok_or_else(|| InboundError::NoBounceAddress(config.path.clone()))?;
        let i = &config.inbound;
        let rules = BounceRules {
            soft_limit: i.soft_bounce_limit,
            soft_window: chrono::Duration::from_std(i.soft_bounce_window)
                .unwrap_or(chrono::Duration::days(90)),
            keep_raw_bytes: i.keep_raw_bytes,
        };
        let (tx, rx) = mpsc::channel(BATCH * 4);
        tokio::spawn(writer(store.clone(), rules, rx));
        Ok(Processor {
            store,
            verp: Arc::new(verp),
            max_message_bytes: i.max_message_bytes,
            writer: tx,
        })
    }

    pub fn verp(&self) -> &Verp {
        &self.verp
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Classify one message and record its effect (once per message).
    #[tracing::instrument(level = "debug", skip_all, fields(via = ?msg.via, bytes = msg.raw.len()))]
    pub async fn process(&self, msg: Incoming<'_>) -> Result<Recorded, InboundError> {
        // Parsing up to 10 MB is CPU work: off the async workers, so that
        // HTTP and the other SMTP sessions keep answering meanwhile. The
        // bytes come back with the report (a panic is caught there, so they
        // always do); only a runtime that is shutting down keeps them.
        let limit = self.max_message_bytes;
        let raw = msg.raw;
        let (raw, report) = tokio::task::spawn_blocking(move || {
            let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                report::classify(&raw[..raw.len().min(limit)])
            }));
            (raw, report)
        })
        .await
        .map_err(|_| InboundError::WriterStopped)?;
        let report = report.unwrap_or_else(|_| {
            tracing::error!("returned mail: the classifier failed; counted as other mail");
            Report {
                kind: ReportKind::Other,
                original_message_id: None,
                subject: None,
            }
        });
        let (recipient, owned) = self.address(msg.recipients);
        let d = decide(owned, &report).with_message_tag(self.verp.key());
        let (done, outcome) = oneshot::channel();
        let job = Job {
            msg: OwnedInbound {
                via: msg.via,
                origin: msg.origin.map(str::to_string),
                recipient: recipient.map(str::to_string),
                raw,
                d,
            },
            done,
        };
        let recorded = match self.writer.send(job).await {
            Ok(()) => outcome.await.map_err(|_| InboundError::WriterStopped)??,
            Err(_) => return Err(InboundError::WriterStopped),
        };
        tracing::info!(
            id = recorded.id,
            kind = %recorded.kind,
            duplicate = recorded.duplicate,
            subscriber = recorded.subscriber_id,
            "returned mail: {}",
            recorded.decision
        );
        Ok(recorded)
    }

    /// The first of `recipients` that is ours, and what it is; a TAG
    /// address with a wrong MAC counts as ours but forged.
    fn address<'r>(&self, recipients: &'r [String]) -> (Option<&'r str>, Address) {
        for r in recipients {
            if let Some(owned) = self.verp.owns(r) {
                return (Some(r), Address::Ours(owned));
            }
        }
        for r in recipients {
            if self.verp.is_tag_shaped(r) {
                return (Some(r), Address::Forged);
            }
        }
        (recipients.first().map(String::as_str), Address::NotOurs)
    }
}

/// What a message's address is to gazette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Address {
    Ours(Owned),
    /// Our TAG's shape with a MAC gazette did not make.
    Forged,
    NotOurs,
}

/// What a message is and whom it is about, before the store looks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    kind: InboundKind,
    about: About,
    status: Option<String>,
    diagnostic: Option<String>,
    note: Option<String>,
}

impl Decision {
    /// Counted, nothing else; still tied to whom its address names, so an
    /// admin sees it in that subscriber's history.
    fn ignored(kind: InboundKind, about: About, note: impl Into<String>) -> Decision {
        Decision {
            kind,
            about,
            status: None,
            diagnostic: None,
            note: Some(note.into()),
        }
    }
}

impl Decision {
    /// A quoted Message-ID that carries its delivery's TAG (every digest
    /// since migration 0012) names that row, as a TAG address would.
    fn with_message_tag(mut self, key: &VerpKey) -> Decision {
        if let About::MessageId(mid) = &self.about
            && let Some(Tag::Delivery(id)) = key.message_tag(mid)
        {
            self.about = About::Delivery(id);
        }
        self
    }
}

/// The pure part of processing: the address and the report decide.
fn decide(address: Address, report: &Report) -> Decision {
    let owned = match address {
        Address::Ours(o) => o,
        Address::Forged => {
            return Decision::ignored(
                InboundKind::Forged,
                About::Nobody,
                "the tag is not one gazette made",
            );
        }
        Address::NotOurs => {
            return Decision::ignored(
                InboundKind::Other,
                About::Nobody,
                "not addressed to an address of ours",
            );
        }
    };
    let about = match owned {
        Owned::Unsubscribe => return unsubscribe(report),
        Owned::Tagged(Tag::Delivery(id)) => About::Delivery(id),
        Owned::Tagged(Tag::Signup(id)) => About::Subscriber(id),
        Owned::Bounce => match &report.original_message_id {
            Some(mid) => About::MessageId(mid.clone()),
            None => About::Nobody,
        },
    };
    let unmatched_note = (about == About::Nobody)
        .then(|| "ignored: no Message-ID of ours in the report".to_string());
    match &report.kind {
        ReportKind::Bounce(recipients) => {
            // The worst of the report's recipients speaks for it: with a
            // TAG address there is one, and a hard failure outweighs a
            // delay of the same message.
            let pick = recipients.iter().max_by_key(|r| match r.severity() {
                Severity::Hard => 2,
                Severity::Sender => 1,
                Severity::Soft => 0,
            });
            let Some(r) = pick else {
                return Decision::ignored(
                    InboundKind::Other,
                    about,
                    "a delivery report without a failure",
                );
            };
            let kind = match r.severity() {
                Severity::Hard => InboundKind::Hard,
                Severity::Soft => InboundKind::Soft,
                Severity::Sender => InboundKind::Sender,
            };
            Decision {
                kind,
                about,
                status: r.status.as_ref().map(ToString::to_string),
                diagnostic: r.diagnostic.clone(),
                note: unmatched_note,
            }
        }
        ReportKind::Feedback { feedback_type } if feedback_type == "abuse" => Decision {
            kind: InboundKind::Complaint,
            about,
            status: None,
            diagnostic: None,
            note: unmatched_note,
        },
        ReportKind::Feedback { feedback_type } => Decision::ignored(
            InboundKind::Other,
            about,
            format!("a feedback report of type {feedback_type:?}"),
        ),
        ReportKind::AutoReply => {
            Decision::ignored(InboundKind::AutoReply, about, "an automatic reply")
        }
        ReportKind::Other => {
            Decision::ignored(InboundKind::Other, about, "not a report gazette acts on")
        }
    }
}

/// A mail to the List-Unsubscribe address acts only with the token from
/// that header's subject: `From` can be forged, the token cannot be guessed.
fn unsubscribe(report: &Report) -> Decision {
    let token = report.subject.as_deref().and_then(subject_token);
    match token {
        Some(t) => Decision {
            kind: InboundKind::Unsubscribe,
            about: About::Token(t),
            status: None,
            diagnostic: None,
            note: None,
        },
        None => Decision::ignored(
            InboundKind::Unsubscribe,
            About::Nobody,
            "no valid token in the subject (\"unsubscribe TOKEN\"); nothing changed",
        ),
    }
}

/// `unsubscribe TOKEN`, any case, with a reply prefix or stray spaces
/// tolerated (some clients add "Re: " or keep the whole mailto subject).
fn subject_token(subject: &str) -> Option<Token> {
    let words: Vec<&str> = subject.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("unsubscribe"))?;
    Token::parse(words.get(at + 1)?).ok()
}

#[cfg(test)]
mod tests;
