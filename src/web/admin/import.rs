//! The console's subscriber import: a form with a file field, and a job per
//! upload that runs [`crate::import`] (the use case behind the CLI and the
//! API) in the background, so a big file does not hold the request: the
//! POST waits up to [`WAIT`] and then sends the browser to the job's page,
//! which shows how far it has come (reloading itself, or polled by
//! `admin.js` for `?format=json`) and, once done, every row left out with
//! its line and reason.
//!
//! Jobs live in memory ([`Jobs`], the last [`KEEP`]): a restart forgets
//! the pages, never the import (the rows are saved in one transaction or
//! not at all). A job's id is 128 random bits: only an admin who started
//! or was shown it finds it, and every job page needs a session.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use minijinja::{Value, context};
use serde::Deserialize;

use super::{Admin, Section};
use crate::import::{self, ImportError, ImportOutcome, Progress, Stage};
use crate::web::AppState;

/// The largest upload the import form takes (the rest of the console keeps
/// the server's small body limit): about 600,000 rows of a typical export.
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// How long the POST waits for the import before showing its progress page.
pub const WAIT: Duration = Duration::from_secs(2);

/// Jobs kept for their pages.
pub const KEEP: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/subscribers/import",
            get(form)
                .post(upload)
                .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/subscribers/import/{job}", get(job_page))
}

/// One import: its file's name, its progress, and once over its result.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub file: String,
    pub started_at: String,
    pub progress: Progress,
    result: OnceLock<Result<ImportOutcome, String>>,
    done: tokio::sync::watch::Sender<bool>,
}

impl Job {
    fn new(file: String) -> Result<Job, getrandom::Error> {
        let mut bits = [0u8; 16];
        getrandom::fill(&mut bits)?;
        let id = bits.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Job {
            id,
            file,
            started_at: crate::store::ledger_time(Utc::now()),
            progress: Progress::default(),
            result: OnceLock::new(),
            done: tokio::sync::watch::channel(false).0,
        })
    }

    pub fn result(&self) -> Option<&Result<ImportOutcome, String>> {
        self.result.get()
    }

    fn finish(&self, result: Result<ImportOutcome, String>) {
        let _ = self.result.set(result);
        self.progress.finish();
        self.done.send_replace(true);
    }

    /// Wait until the job is over or `limit` has passed.
    async fn wait(&self, limit: Duration) {
        let mut rx = self.done.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|d| *d)).await;
    }
}

/// The console's import jobs: the last [`KEEP`], newest last. Imports run
/// one at a time (`running`): each holds the store's write lock for its
/// one transaction, and a second one would only wait on it, or time out.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<VecDeque<Arc<Job>>>,
    running: tokio::sync::Mutex<()>,
}

impl Jobs {
    /// Keep a new job, letting the oldest finished one go past [`KEEP`]
    /// (a running one goes only when all are running: its import still
    /// finishes, only its page is gone).
    fn add(&self, job: Arc<Job>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        while jobs.len() >= KEEP {
            let at = jobs.iter().position(|j| j.result().is_some()).unwrap_or(0);
            jobs.remove(at);
        }
        jobs.push_back(job);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().find(|j| j.id == id).cloned()
    }

    pub fn len(&self) -> usize {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn form_page(state: &AppState, admin: &Admin, status: StatusCode, error: Option<&str>) -> Response {
    state.console.page_with(
        status,
        admin,
        "admin/import.html",
        Section::Subscribers,
        None,
        context! { error => error, max_mb => IMPORT_BODY_LIMIT / (1024 * 1024) },
    )
}

async fn form(State(state): State<AppState>, admin: Admin) -> Response {
    form_page(&state, &admin, StatusCode::OK, None)
}

/// The upload: check the CSRF field, read the file, start the job, wait a
/// little, then on to the job's page.
#[tracing::instrument(skip_all)]
async fn upload(
    State(state): State<AppState>,
    admin: Admin,
    parts: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    // Not a multipart body: not this page's form, so no token either.
    let Ok(mut parts) = parts else {
        return state.console.forbidden(&admin);
    };
    let mut csrf = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match parts.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                let status = e.status();
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!(
                        "The file is larger than {} MB; split it and import the parts.",
                        IMPORT_BODY_LIMIT / (1024 * 1024)
                    )
                } else {
                    format!("The upload could not be read: {}", e.body_text())
                };
                return form_page(&state, &admin, status, Some(&message));
            }
        };
        match field.name() {
            Some("csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("file") => {
                let name = field
                    .file_name()
                    .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect())
                    .unwrap_or_else(|| "the upload".to_string());
                match field.bytes().await {
                    Ok(b) => file = Some((name, b.to_vec())),
                    Err(e) => {
                        return form_page(
                            &state,
                            &admin,
                            e.status(),
                            Some(&format!("The file could not be read: {}", e.body_text())),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if !admin.csrf_matches(&csrf) {
        return state.console.forbidden(&admin);
    }
    let Some((name, data)) = file.filter(|(_, d)| !d.is_empty()) else {
        return form_page(
            &state,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Choose a CSV file to import (the one chosen was empty)."),
        );
    };
    let job = match Job::new(name) {
        Ok(j) => Arc::new(j),
        Err(e) => return state.console.server_error(&admin, &e),
    };
    job.progress.reading(&data);
    state.console.imports.add(job.clone());
    tokio::spawn(run(state.clone(), admin.clone(), job.clone(), data));
    job.wait(WAIT).await;
    state
        .console
        .see_other(&admin, &format!("subscribers/import/{}", job.id))
}

/// The import itself: read (on the blocking pool: checking a million
/// addresses is CPU work), save with progress, audit, record the result.
async fn run(state: AppState, admin: Admin, job: Arc<Job>, data: Vec<u8>) {
    let _one_at_a_time = state.console.imports.running.lock().await;
    let smtputf8 = state.config.mail.smtputf8;
    let result = match import::open_bytes(data, smtputf8) {
        Ok(file) => file
            .import_with(&state.store, Utc::now(), &job.progress)
            .await
            .map_err(|e| match e {
                ImportError::File(e) => format!("Nothing was imported: line {}: {e}", e.line()),
                stopped => {
                    tracing::error!(error = %stopped, "console import stopped");
                    format!("The import stopped: {stopped}")
                }
            }),
        Err(e) => Err(format!("Nothing was imported: line {}: {e}", e.line())),
    };
    let detail = match &result {
        Ok(o) => format!(
            "{} imported, {} already on the list, {} not imported",
            o.imported,
            o.already_subscribed,
            o.skipped.len()
        ),
        Err(e) => e.clone(),
    };
    let entry = admin.audit(
        "subscribers.import",
        Some(format!("import {}", job.id)),
        Some(detail),
    );
    super::audit::record(&state, &entry).await;
    job.finish(result);
}

#[derive(Debug, Deserialize)]
struct JobQuery {
    format: Option<String>,
}

/// `stage`, for the page and the poller.
fn state_name(job: &Job) -> &'static str {
    match (job.result(), job.progress.stage()) {
        (Some(Ok(_)), _) => "done",
        (Some(Err(_)), _) => "failed",
        (None, Stage::Reading { .. }) => "reading",
        (None, _) => "saving",
    }
}

/// What the page and the poller show of a job while it runs.
fn numbers(job: &Job) -> (u64, u64, u64, Option<u64>) {
    match job.progress.stage() {
        Stage::Reading { lines } => (lines, 0, 0, None),
        Stage::Saving { saved, rows } => {
            let percent = (saved.saturating_mul(100))
                .checked_div(rows)
                .unwrap_or(100)
                .min(100);
            (0, rows, saved, Some(percent))
        }
        Stage::Finished => (0, 0, 0, Some(100)),
    }
}

#[tracing::instrument(skip_all)]
async fn job_page(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<JobQuery>,
) -> Response {
    let Some(job) = state.console.imports.get(&id) else {
        return state.console.error(
            &admin,
            StatusCode::NOT_FOUND,
            "No such import",
            "There is no import at this address: the server keeps the last 20 since it started.",
        );
    };
    let name = state_name(&job);
    let (lines, rows, saved, percent) = numbers(&job);
    if q.format.as_deref() == Some("json") {
        return Json(serde_json::json!({
            "state": name,
            "lines": lines,
            "rows": rows,
            "saved": saved,
            "percent": percent,
        }))
        .into_response();
    }
    let (outcome, error) = match job.result() {
        Some(Ok(o)) => (Some(outcome_value(o)), None),
        Some(Err(e)) => (None, Some(e.clone())),
        None => (None, None),
    };
    let running = job.result().is_none();
    state.console.page(
        &admin,
        "admin/import-job.html",
        Section::Subscribers,
        context! {
            job => context! {
                id => job.id.clone(),
                file => job.file.clone(),
                started_at => job.started_at.clone(),
                state => name,
                lines => lines,
                rows => rows,
                saved => saved,
                percent => percent,
                outcome => outcome,
                error => error,
            },
            refresh => running,
        },
    )
}

fn outcome_value(o: &ImportOutcome) -> Value {
    let notes = |v: Vec<(u64, String)>| -> Vec<Value> {
        v.into_iter()
            .map(|(line, reason)| context! { line => line, reason => reason })
            .collect()
    };
    context! {
        imported => o.imported,
        already_subscribed => o.already_subscribed,
        erased => o.erased(),
        skipped => notes(o.skipped.iter().map(|s| (s.line, s.reason.to_string())).collect()),
        warnings => notes(o.warnings.iter().map(|w| (w.line, w.reason.clone())).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(file: &str) -> Arc<Job> {
        let job = Arc::new(Job::new(file.into()).unwrap());
        job.finish(Err("x".into()));
        job
    }

    #[test]
    fn jobs_keep_the_last_twenty_and_ids_are_random() {
        let jobs = Jobs::default();
        let first = finished("first.csv");
        jobs.add(first.clone());
        let running = Arc::new(Job::new("running.csv".into()).unwrap());
        jobs.add(running.clone());
        for i in 0..KEEP {
            jobs.add(finished(&format!("{i}.csv")));
        }
        assert_eq!(jobs.len(), KEEP);
        assert!(jobs.get(&first.id).is_none(), "the oldest finished went");
        assert!(jobs.get(&running.id).is_some(), "a running one stays");
        assert_eq!(first.id.len(), 32);
        assert_ne!(first.id, running.id);
        assert!(jobs.get("").is_none());
    }

    #[tokio::test]
    async fn waiting_ends_when_the_job_does_or_at_the_limit() {
        let job = Arc::new(Job::new("f.csv".into()).unwrap());
        let started = std::time::Instant::now();
        job.wait(Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(state_name(&job), "reading");
        let j = job.clone();
        tokio::spawn(async move { j.finish(Err("no".into())) });
        job.wait(Duration::from_secs(30)).await;
        assert_eq!(state_name(&job), "failed");
        // Finished before anyone waits: no wait at all.
        job.wait(Duration::from_secs(30)).await;
    }
}
