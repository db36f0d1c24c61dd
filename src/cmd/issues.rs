//! `gazette issues list|show|preview`: the issues in the content folder,
//! what the store has seen of them, and a sample digest. (`issues send`
//! mails, so it is in `cmd/mail.rs`.)

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use gazette::config::Config;
use gazette::content::Issue;
use gazette::cycle;
use gazette::mail::{Renderer, SampleReader};
use gazette::release::{self, Release};
use gazette::store::IssueRecord;

use super::with_store;

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

pub fn list(config: &Config, json: bool) -> Result<ExitCode> {
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

pub fn show(config: &Config, slug: &str, json: bool) -> Result<ExitCode> {
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

pub fn preview(config: &Config, slug: &str, out: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let ingest = ingest_for(config, slug)?;
    let issue = find_issue(&ingest.issues, slug)?;
    let renderer = Renderer::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let digest = renderer
        .prepare(issue)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reader = SampleReader::new()?;
    let recipient = reader.recipient();
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
