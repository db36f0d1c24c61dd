//! One cycle of the daemon (and all of `gazette run`): ingest -> record ->
//! feeds -> publish -> send.
//!
//! A cycle that finds the content exactly as the last one left it (same
//! fingerprint over every file's hash, same feed-relevant settings, same
//! gazette version, feed files present) stops after reading: it does not
//! parse, write the database or touch the feeds. That keeps a 10,000-article
//! archive cheap to poll every few minutes. The mail half runs every cycle:
//! retries come due without any file changing.
//!
//! Held issues (a `publish_at` or a date still ahead) and drafts are parsed
//! and recorded but left out of the feeds and the mail (see
//! [`crate::release`]). Their moment passing changes what the feeds hold
//! without any file changing, so the last full cycle also saves the next
//! such moment, and a cycle at or after it is a full one.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::content::{
    self, Ingest, Issue, ParseCache, ParseCounts, Problem, ScanError, ScanOptions, SourceTree,
};
use crate::delivery::compose::{DigestComposer, Unprepared};
use crate::delivery::publish::{self, Decision};
use crate::delivery::send::{self, Progress, SendOptions, SendReport};
use crate::delivery::transport::{Transport, TransportError};
use crate::feeds::{self, FeedError};
use crate::mail::verp::{Verp, VerpKey};
use crate::mail::{Renderer, TemplateError};
use crate::release;
use crate::store::{RecordReport, Store, StoreError};

const META_FINGERPRINT: &str = "ingest.fingerprint";
const META_PROBLEMS: &str = "ingest.problems";
const META_COUNTS: &str = "ingest.counts";
/// RFC 3339 UTC: the next moment a held issue goes out, as of the last full
/// cycle ("" when none is held).
const META_NEXT_RELEASE: &str = "ingest.next_release";

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Feeds(#[from] FeedError),
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "{queued} messages are due but mail.from is not set in {}: add `from = \"Name <address@example.org>\"` under [mail]",
        config.display()
    )]
    NoSender { queued: u64, config: PathBuf },
}

/// How a cycle is watched and stopped.
pub struct Control<'a> {
    pub progress: &'a dyn Progress,
    /// Set (by a signal handler) to stop sending: messages in flight finish
    /// and are recorded; the rest stay queued.
    pub stop: &'a AtomicBool,
}

/// The mail half of a cycle.
#[derive(Debug, Clone, Default)]
pub struct MailReport {
    pub decisions: Vec<Decision>,
    /// None when nothing was due.
    pub send: Option<SendReport>,
}

/// What the feeds step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedsOutcome {
    /// Content and settings as last time: nothing rebuilt.
    UpToDate,
    /// Rebuilt; files whose bytes changed were replaced, the others left alone.
    Built {
        written: Vec<String>,
        unchanged: Vec<String>,
        items: usize,
    },
}

/// Everything a cycle did, for the summary a person reads and for `--json`.
#[derive(Debug, Clone)]
pub struct CycleReport {
    pub content_dir: PathBuf,
    pub feeds_dir: PathBuf,
    pub folders: usize,
    pub files: usize,
    pub issues: usize,
    pub articles: usize,
    /// Of `issues`: held until a later moment, and drafts.
    pub held: usize,
    pub drafts: usize,
    /// When the next held issue goes out: the daemon wakes for it.
    pub next_release: Option<DateTime<Utc>>,
    /// False when the fingerprint matched the last cycle's.
    pub content_changed: bool,
    /// Article files parsed in this cycle, and those whose parse was
    /// taken from the last one (same path, same bytes).
    pub article_files: ParseCounts,
    pub recorded: RecordReport,
    pub problems: Vec<Problem>,
    pub feeds: FeedsOutcome,
    pub mail: MailReport,
    pub elapsed: Duration,
}

/// Ingest options from the config.
pub fn scan_options(config: &Config) -> ScanOptions {
    ScanOptions {
        base_url: config.publication.base_url.clone(),
        max_article_bytes: config.content.max_article_bytes,
    }
}

/// Read and parse the whole content folder, taking unchanged files'
/// parses from the cache (see [`parse_kept`]): `feeds build`.
pub fn ingest_kept(config: &Config) -> Result<(Ingest, ParseCache), ScanError> {
    let opts = scan_options(config);
    let tree = content::read_tree(&config.content.dir, &opts)?;
    Ok(parse_kept(config, &tree, &opts))
}

/// Read and parse the whole content folder, writing nothing (no cache):
/// `check` and the `issues` commands.
pub fn ingest(config: &Config) -> Result<(SourceTree, Ingest), ScanError> {
    let opts = scan_options(config);
    let tree = content::read_tree(&config.content.dir, &opts)?;
    let ingest = content::parse_tree(&tree, &opts);
    Ok((tree, ingest))
}

/// One issue, read and parsed from its own folder only (a big archive is
/// not read for it), drafts and held ones too; `None` when the folder is
/// missing, not a slug inside the content folder, or holds no good issue.
/// The web version of an issue and the admin console's preview and test
/// copy read it so.
pub fn read_issue(config: &Config, slug: &str) -> Result<Option<Issue>, ScanError> {
    let opts = scan_options(config);
    let tree = content::scan::read_issue_folder(&config.content.dir, slug, &opts)?;
    let ingest = content::parse_tree(&tree, &opts);
    Ok(ingest.issues.into_iter().find(|i| i.slug == slug))
}

/// Build the feeds from the released issues and write them (atomically;
/// unchanged files untouched). Callers pass only issues that are out
/// ([`release::split`]): the feeds never hold a draft or a held issue.
pub fn build_feeds(config: &Config, released: &[Issue]) -> Result<FeedsOutcome, FeedError> {
    let set = feeds::build(&config.publication, released, config.feeds.items)?;
    let report = feeds::write(&config.feeds.dir, &set)?;
    let items = released
        .iter()
        .map(|i| i.articles.len())
        .sum::<usize>()
        .min(config.feeds.items);
    let names = |paths: Vec<PathBuf>| {
        paths
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    };
    Ok(FeedsOutcome::Built {
        written: names(report.written),
        unchanged: names(report.unchanged),
        items,
    })
}

/// Everything besides the content that shapes the feeds: if any of it changes,
/// the feeds are rebuilt even though no file did.
fn cycle_key(config: &Config, tree: &SourceTree) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&tree.fingerprint().0);
    let p = &config.publication;
    for part in [
        env!("CARGO_PKG_VERSION"),
        // Bumped when what a full cycle records changes within a version
        // (v1: release columns), so an upgraded database gets one full
        // cycle even though no file changed.
        "release-v1",
        &p.title,
        &p.description,
        p.base_url.as_str(),
        &p.language,
        p.timezone.name(),
        &config.feeds.items.to_string(),
        &config.feeds.dir.display().to_string(),
        &config.content.max_article_bytes.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex().to_string()
}

fn feeds_present(config: &Config) -> bool {
    [feeds::RSS_FILE, feeds::ATOM_FILE, feeds::JSON_FILE]
        .iter()
        .all(|name| config.feeds.dir.join(name).is_file())
}

/// One cycle. `now` is the time recorded as first-seen (and published) for
/// new issues. Call only while holding the run lock.
#[tracing::instrument(skip_all, fields(content = %config.content.dir.display()))]
pub async fn run(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    control: &Control<'_>,
) -> Result<CycleReport, CycleError> {
    let started = Instant::now();
    let (mut report, tree, parsed) = ingest_and_build_feeds(config, store, now).await?;
    report.mail.decisions = publish::publish_pending(
        store,
        config.publication.timezone,
        config.mail.skip_older_than,
        now,
    )
    .await?;
    let due = store.issues_due(Utc::now()).await?;
    if !due.is_empty() {
        let ingest = match parsed {
            Some(i) => i,
            None => {
                let (ingest, cache) = parse_kept(config, &tree, &scan_options(config));
                cache.keep();
                ingest
            }
        };
        report.mail.send = Some(send_mail(config, store, &ingest, &due, control).await?);
    }
    // Returned messages are kept for inbound.keep_raw_for; their
    // decisions stay (a partial index makes this cheap when nothing is due).
    if let Ok(keep) = chrono::Duration::from_std(config.inbound.keep_raw_for) {
        store.expire_inbound_raw(now - keep).await?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Send every due message of the issues `due` (slugs), composing from `ingest`.
pub async fn send_mail(
    config: &Config,
    store: &Store,
    ingest: &Ingest,
    due: &[String],
    control: &Control<'_>,
) -> Result<SendReport, CycleError> {
    if config.mail.from.is_none() {
        return Err(CycleError::NoSender {
            queued: store.count_due(Utc::now()).await?,
            config: config.path.clone(),
        });
    }
    let renderer = Renderer::load(config)?;
    let key = store.verp_key().await?;
    let verp = Verp::from_config(config, key).map(Arc::new);
    let mut composer = DigestComposer::new(VerpKey::new(key), verp);
    for slug in due {
        let digest = match ingest.issues.iter().find(|i| &i.slug == slug) {
            Some(issue) => {
                let date = store.published_at(slug).await?.unwrap_or_else(Utc::now);
                renderer
                    .prepare_at(issue, date)
                    .map_err(|e| Unprepared::Render {
                        slug: slug.clone(),
                        error: Arc::new(e),
                    })
            }
            None => Err(Unprepared::Missing { slug: slug.clone() }),
        };
        if let Err(why) = &digest {
            tracing::error!("{why}");
        }
        composer.insert(slug, digest);
    }
    let transport = Transport::from_config(&config.mail)?;
    let m = &config.mail;
    let opts = SendOptions {
        concurrency: m.concurrency,
        rate_per_second: m.rate_per_second,
        retry_base: m.retry_base,
        max_attempts: m.max_attempts,
    };
    let report = send::send_due(
        store,
        &transport,
        Arc::new(composer),
        &opts,
        control.progress,
        control.stop,
    )
    .await;
    transport.close().await;
    Ok(report?)
}

/// The content half: read, and unless nothing changed, parse, record and
/// rebuild the feeds. Returns the parse when it was done.
async fn ingest_and_build_feeds(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<(CycleReport, SourceTree, Option<Ingest>), CycleError> {
    let opts = scan_options(config);
    let tree = content::read_tree(&config.content.dir, &opts)?;
    let key = cycle_key(config, &tree);
    let files = tree.folders.iter().map(|f| f.files.len()).sum();
    let mut report = CycleReport {
        content_dir: config.content.dir.clone(),
        feeds_dir: config.feeds.dir.clone(),
        folders: tree.folders.len(),
        files,
        issues: 0,
        articles: 0,
        held: 0,
        drafts: 0,
        next_release: None,
        content_changed: true,
        article_files: ParseCounts::default(),
        recorded: RecordReport::default(),
        problems: Vec::new(),
        feeds: FeedsOutcome::UpToDate,
        mail: MailReport::default(),
        elapsed: Duration::ZERO,
    };

    let next_release = store.meta_time(META_NEXT_RELEASE).await?;
    if store.meta(META_FINGERPRINT).await?.as_deref() == Some(key.as_str())
        && feeds_present(config)
        && next_release.is_none_or(|t| now < t)
    {
        // Nothing changed and no held issue came due: repeat the last
        // cycle's counts and problems, so a problem is reported every cycle
        // until it is fixed.
        if let Some(counts) = store.meta(META_COUNTS).await? {
            let mut n = counts.split(' ').map(|n| n.parse::<usize>().unwrap_or(0));
            report.issues = n.next().unwrap_or(0);
            report.articles = n.next().unwrap_or(0);
            report.held = n.next().unwrap_or(0);
            report.drafts = n.next().unwrap_or(0);
        }
        report.next_release = next_release;
        report.problems = decode_problems(store.meta(META_PROBLEMS).await?.as_deref());
        report.content_changed = false;
        tracing::debug!("content unchanged; nothing to ingest");
        return Ok((report, tree, None));
    }

    let (ingest, cache) = parse_kept(config, &tree, &opts);
    report.article_files = cache.counts();
    let tz = config.publication.timezone;
    let (released, next_release) = release::split(&ingest.issues, tz, now);
    report.issues = ingest.issues.len();
    report.articles = ingest.issues.iter().map(|i| i.articles.len()).sum();
    report.drafts = ingest.issues.iter().filter(|i| i.draft).count();
    report.held = ingest.issues.len() - released.len() - report.drafts;
    report.next_release = next_release;
    report.problems = ingest.problems.clone();
    report.recorded = store.record_issues(&ingest.issues, tz, now).await?;
    report.feeds = build_feeds(config, &released)?;
    // Only after everything succeeded: a failed cycle is retried in full.
    store
        .set_meta(
            META_COUNTS,
            &format!(
                "{} {} {} {}",
                report.issues, report.articles, report.held, report.drafts
            ),
        )
        .await?;
    store
        .set_meta(META_PROBLEMS, &encode_problems(&report.problems))
        .await?;
    store.set_meta_time(META_NEXT_RELEASE, next_release).await?;
    store.set_meta(META_FINGERPRINT, &key).await?;
    cache.keep();
    Ok((report, tree, Some(ingest)))
}

/// Parses `tree`, taking each unchanged article file's parse from the
/// cache file beside the database (`gazette.db.parsed`, kept by the last
/// parse): after one new issue, the rest of a large archive is not parsed
/// again. The cache's new file is not in place yet: the entries parsed
/// now are in its temporary file, and [`ParseCache::keep`] adds the reused
/// ones and renames it. Dropped unkept (a failed cycle), the temporary
/// file goes and the old cache stays.
pub fn parse_kept(config: &Config, tree: &SourceTree, opts: &ScanOptions) -> (Ingest, ParseCache) {
    let cache = ParseCache::load(opts, &ParseCache::path_for(&config.database.path));
    let ingest = content::parse_tree_with(tree, opts, Some(&cache));
    let counts = cache.counts();
    tracing::debug!(
        parsed = counts.parsed,
        reused = counts.reused,
        "article files"
    );
    (ingest, cache)
}

fn encode_problems(problems: &[Problem]) -> String {
    let rows: Vec<(String, Option<usize>, &str)> = problems
        .iter()
        .map(|p| (p.path.display().to_string(), p.line, p.message.as_str()))
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
}

fn decode_problems(s: Option<&str>) -> Vec<Problem> {
    let rows: Vec<(String, Option<usize>, String)> = s
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    rows.into_iter()
        .map(|(path, line, message)| Problem::new(path, line, message))
        .collect()
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl CycleReport {
    /// The one-paragraph summary `gazette run` ends with.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "Read {} ({}) in {}",
            plural(self.folders, "issue folder", "issue folders"),
            plural(self.files, "file", "files"),
            self.content_dir.display()
        );
        if self.content_changed {
            s += &format!(
                ": {} with {} ingested; {} new, {} changed, {} unchanged since the last run",
                plural(self.issues, "issue", "issues"),
                plural(self.articles, "article", "articles"),
                self.recorded.new.len(),
                self.recorded.changed.len(),
                self.recorded.unchanged,
            );
            if !self.recorded.new.is_empty() {
                s += &format!(" (new: {})", self.recorded.new.join(", "));
            }
            let ParseCounts { parsed, reused } = self.article_files;
            if reused > 0 {
                s += &format!(
                    " ({} parsed, {reused} unchanged since the last parse)",
                    plural(parsed, "article file", "article files"),
                );
            }
            s += ".";
            if !self.recorded.released.is_empty() {
                s += &format!(
                    " Their publication moment came: {} out now.",
                    self.recorded.released.join(", ")
                );
            }
        } else {
            s += &format!(
                ": nothing changed since the last run ({}, {}).",
                plural(self.issues, "issue", "issues"),
                plural(self.articles, "article", "articles")
            );
        }
        if self.drafts > 0 {
            s += &format!(
                " {} (draft = true) left out of feeds, pages and mail.",
                plural(self.drafts, "draft", "drafts")
            );
        }
        if let Some(next) = self.next_release {
            s += &format!(
                " {} held; the next goes out at {next}.",
                plural(self.held, "issue", "issues")
            );
        }
        match &self.problems.len() {
            0 => s += " No content problems.",
            n => {
                s += &format!(
                    " {} skipped (listed above; `gazette check` shows them all).",
                    plural(*n, "problem", "problems")
                )
            }
        }
        match &self.feeds {
            FeedsOutcome::UpToDate => {
                s += &format!(" Feeds in {} are up to date.", self.feeds_dir.display())
            }
            FeedsOutcome::Built {
                written,
                unchanged,
                items,
            } => {
                s += &format!(
                    " Feeds ({}) in {}: ",
                    plural(*items, "item", "items"),
                    self.feeds_dir.display()
                );
                if written.is_empty() {
                    s += "rebuilt, all byte-identical, left untouched.";
                } else {
                    s += &format!("wrote {}", written.join(", "));
                    if !unchanged.is_empty() {
                        s += &format!("; {} unchanged", unchanged.join(", "));
                    }
                    s += ".";
                }
            }
        }
        s += &self.mail_summary();
        s += &format!(" Took {} ms.", self.elapsed.as_millis());
        s
    }

    fn mail_summary(&self) -> String {
        let mut s = String::new();
        for d in &self.mail.decisions {
            match d {
                Decision::Published { slug, recipients } => {
                    s += &format!(
                        " Published {slug} to {}.",
                        plural(
                            *recipients as usize,
                            "active subscriber",
                            "active subscribers"
                        )
                    )
                }
                Decision::Skipped { slug, reason } => {
                    s += &format!(" Not mailing {slug}: {reason}.")
                }
                Decision::Unreadable { reason } => s += &format!(" Not mailing: {reason}."),
            }
        }
        match &self.mail.send {
            None => s += " Mail: nothing due.",
            Some(r) => {
                s += &format!(" Mail: {} sent", r.sent);
                if r.deferred > 0 {
                    s += &format!(", {} deferred after temporary failures", r.deferred);
                }
                if r.failed > 0 {
                    s += &format!(", {} failed", r.failed);
                }
                if r.bounced > 0 {
                    s += &format!(", {} bounced (subscribers marked bounced)", r.bounced);
                }
                if r.cancelled > 0 {
                    s += &format!(", {} cancelled (subscriber left)", r.cancelled);
                }
                if r.recovered > 0 {
                    s += &format!(
                        "; {} left sending by an interrupted run were sent again",
                        r.recovered
                    );
                }
                s += &format!(" in {:.1} s", r.elapsed.as_secs_f64());
                if r.unreachable {
                    s += "; stopped early: the mail server did not answer (the rest stays queued for the next run)";
                }
                if let Some(why) = &r.no_answer {
                    s += &format!("; the last attempt got no answer: {why}");
                }
                if r.interrupted {
                    s += "; stopped early on request (the rest stays queued)";
                }
                if let Some(t) = &r.next_due {
                    s += &format!("; next retry due {t}");
                }
                s += ". `gazette deliveries` has the details.";
            }
        }
        s
    }

    pub fn to_json(&self) -> serde_json::Value {
        let feeds = match &self.feeds {
            FeedsOutcome::UpToDate => serde_json::json!({"status": "up_to_date"}),
            FeedsOutcome::Built {
                written,
                unchanged,
                items,
            } => {
                serde_json::json!({"status": "built", "written": written, "unchanged": unchanged, "items": items})
            }
        };
        serde_json::json!({
            "content_dir": self.content_dir,
            "folders": self.folders,
            "files": self.files,
            "issues": self.issues,
            "articles": self.articles,
            "content_changed": self.content_changed,
            "article_files": self.article_files,
            "new_issues": self.recorded.new,
            "changed_issues": self.recorded.changed,
            "released_issues": self.recorded.released,
            "held": self.held,
            "drafts": self.drafts,
            "next_release": self.next_release,
            "problems": self.problems.iter().map(|p| serde_json::json!({"path": p.path, "line": p.line, "message": p.message})).collect::<Vec<_>>(),
            "feeds": feeds,
            "mail": {
                "decisions": self.mail.decisions,
                "send": self.mail.send.as_ref().map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    v["elapsed_ms"] = serde_json::Value::from(r.elapsed.as_millis() as u64);
                    v
                }),
            },
            "elapsed_ms": self.elapsed.as_millis() as u64,
        })
    }
}
