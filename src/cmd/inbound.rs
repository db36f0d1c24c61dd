//! `gazette inbound import PATH...` and `gazette inbound list`: returned
//! mail read from files, Maildir folders or mbox files (for setups where
//! returns land in a mailbox), and the latest decisions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;

use gazette::config::Config;
use gazette::inbound::{Incoming, Processor, mailbox};
use gazette::store::{InboundKind, InboundQuery, Via};

/// Read every message under `paths`; each is processed once (a second
/// import of the same folder changes nothing). A message that cannot be
/// read is named and skipped; the rest go on. Exit 1 when any was skipped.
pub fn import(config: &Config, paths: &[PathBuf], json: bool) -> Result<ExitCode> {
    super::with_store(config, async |store| {
        let processor = Processor::new(config, store.clone()).await?;
        let mut counts: std::collections::BTreeMap<&'static str, u64> = Default::default();
        let (mut new, mut seen, mut unreadable) = (0u64, 0u64, 0u64);
        let mut decisions = Vec::new();
        for found in mailbox::read(paths, processor.max_message_bytes()) {
            let found = match found {
                Ok(f) => f,
                Err(e) => {
                    unreadable += 1;
                    eprintln!("skipped: {e}");
                    continue;
                }
            };
            let recipients = mailbox::header_recipients(&found.raw);
            let recorded = processor
                .process(Incoming {
                    via: Via::Import,
                    origin: Some(&found.origin),
                    recipients: &recipients,
                    raw: found.raw,
                })
                .await?;
            if recorded.duplicate {
                seen += 1;
            } else {
                new += 1;
                *counts.entry(recorded.kind.as_str()).or_default() += 1;
            }
            if json {
                decisions.push(serde_json::json!({
                    "origin": found.origin,
                    "id": recorded.id,
                    "kind": recorded.kind.as_str(),
                    "duplicate": recorded.duplicate,
                    "subscriber_id": recorded.subscriber_id,
                    "delivery_id": recorded.delivery_id,
                    "decision": recorded.decision,
                }));
            } else {
                println!(
                    "{}: {} ({})",
                    found.origin, recorded.decision, recorded.kind
                );
            }
        }
        expire(config, store).await?;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "processed": new, "seen_before": seen, "unreadable": unreadable,
                    "kinds": counts, "messages": decisions,
                })
            );
        } else {
            let kinds: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            println!(
                "{new} processed{}, {seen} seen before, {unreadable} unreadable.",
                if kinds.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", kinds.join(", "))
                }
            );
        }
        Ok(if unreadable > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// Drop raw messages older than `inbound.keep_raw_for`.
async fn expire(config: &Config, store: &gazette::store::Store) -> Result<()> {
    if let Ok(keep) = chrono::Duration::from_std(config.inbound.keep_raw_for) {
        store.expire_inbound_raw(Utc::now() - keep).await?;
    }
    Ok(())
}

/// The latest decisions, newest first.
pub fn list(
    config: &Config,
    kind: Option<InboundKind>,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    super::with_store(config, async |store| {
        let rows = store
            .inbound_list(&InboundQuery {
                kind,
                limit,
                ..Default::default()
            })
            .await?;
        if json {
            println!("{}", serde_json::to_string(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
        if rows.is_empty() {
            println!("No returned mail recorded.");
        }
        for r in &rows {
            let who = r.email.as_deref().unwrap_or("-");
            let what = [r.issue.as_deref(), r.status.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "{:>6}  {}  {:<11} {}  {}{}",
                r.id,
                r.received_at.get(..19).unwrap_or(&r.received_at),
                r.kind,
                who,
                r.decision,
                if what.is_empty() {
                    String::new()
                } else {
                    format!(" [{what}]")
                }
            );
            if let Some(d) = &r.diagnostic {
                println!("        {d}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
