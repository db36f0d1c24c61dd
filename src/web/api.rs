//! The admin API under `/api/v1`: JSON in and out, behind a bearer token.
//! `docs/api.md` documents every route.
//!
//! Authorization is one layer over the whole nested router, fallback
//! included, so no route can forget it and an unknown path tells nothing to
//! a caller without the token: with no token configured every path answers
//! 404, with one a missing or wrong token gets 401 before routing matters.
//! Every error is JSON (`{"error": "..."}`): handlers return [`ApiError`],
//! axum's own rejections are converted where they are extracted, and a last
//! layer turns anything else (405 from the router, 413 from a body limit)
//! into the same shape.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::import::{self, ImportError, ImportOptions, ImportOutcome};
use crate::store::{
    CheckedAdd, InboundKind, InboundQuery, StoreError, SubscriberEdit, SubscriberQuery,
    SubscriberRecord,
};
use crate::subscribers::csv as subscriber_csv;
use crate::subscribers::{MailFormat, Status, SubscriberEmail, SubscriberName, SubscriberRow};

/// The largest CSV `POST /subscribers/import` takes (the rest of the server
/// keeps [`super::BODY_LIMIT`]): about 300,000 rows of a typical export.
pub const IMPORT_LIMIT: usize = 32 * 1024 * 1024;

/// Subscribers per page when the query does not say.
pub const DEFAULT_PER_PAGE: u32 = 50;
/// The most subscribers one page may hold.
pub const MAX_PER_PAGE: u32 = 500;

const STATUS_CHOICES: &str = "pending, active, unsubscribed or bounced";

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/subscribers", get(list_subscribers).post(add_subscriber))
        .route("/subscribers/export", get(export_subscribers))
        .route(
            "/subscribers/import",
            post(import_subscribers).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route(
            "/subscribers/{id}",
            get(show_subscriber)
                .patch(edit_subscriber)
                .delete(erase_subscriber),
        )
        .route("/issues", get(list_issues))
        .route("/issues/{slug}/deliveries", get(issue_deliveries))
        .route("/cycle", post(run_cycle))
        .route("/inbound", get(list_inbound))
        .route("/inbound/{id}/raw", get(inbound_raw))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::map_response(json_errors))
}

/// An error answer: a status and a message for the admin, as
/// `{"error": message, ...extra}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    extra: Vec<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<Value>) -> ApiError {
        self.extra.push((key, value.into()));
        self
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), Value::from(self.message));
        for (k, v) in self.extra {
            body.insert(k.into(), v);
        }
        (self.status, Json(Value::Object(body))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::UnknownSubscriber { who } => {
                ApiError::not_found(format!("{who} not found"))
            }
            e @ StoreError::Suppressed { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            other => {
                tracing::error!(error = %other, "admin API: store error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

/// axum's rejections carry the right status and a readable text; only the
/// shape changes (413 gets a message that names the remedy).
fn rejection(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(super::BODY_LIMIT);
    }
    ApiError::new(status, text)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than this route's limit of {} KiB",
            limit / 1024
        ),
    )
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        rejection(r.status(), r.body_text())
    }
}

/// The layer in front of every API route (see the module comment).
async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return ApiError::not_found("not found").into_response();
    };
    if !bearer_matches(req.headers(), expected) {
        let mut res = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this needs the admin token: Authorization: Bearer TOKEN",
        )
        .into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gazette admin API\""),
        );
        return res;
    }
    next.run(req).await
}

/// Does the request carry `Authorization: Bearer <expected>`? Both tokens
/// are hashed and the digests compared in constant time, so neither the
/// position of the first wrong byte nor the token's length shows in the
/// time the answer takes.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("");
    let got = blake3::hash(presented.as_bytes());
    let want = blake3::hash(expected.as_bytes());
    bool::from(got.as_bytes().ct_eq(want.as_bytes()))
}

async fn unknown_route(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no API route {} {}; see docs/api.md",
        req.method(),
        req.uri().path()
    ))
}

/// The last layer: every API answer is uncacheable, and an error that is not
/// JSON yet (the router's 405, a body limit's 413) becomes JSON, keeping its
/// status and headers. (axum adds a 405's `Allow` header outside the route
/// layers, after this has run; the message points to it.)
///
/// An error answer to a request with a body also closes the connection: the
/// body may be unread (a 401 never reads it), and hyper then closes the
/// connection anyway; saying so keeps a client from sending its next
/// request on a connection that is going away.
async fn json_errors(
    method: Method,
    OriginalUri(uri): OriginalUri,
    request: HeaderMap,
    mut res: Response,
) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let status = res.status();
    if (status.is_client_error() || status.is_server_error()) && has_body(&request) {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "{method} is not allowed on {}; the Allow header lists the methods that are",
            uri.path()
        ),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_string(),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    };
    let (parts, _) = res.into_parts();
    let mut json = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().append(name, value.clone());
        }
    }
    json
}

/// Does a request with these headers carry a body?
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{raw:?} is not a subscriber id (a positive whole number)"
        ))
    })
}

/// An address entering the list: the one rule, [`SubscriberEmail::parse_new`].
fn parse_email(raw: &str, smtputf8: bool) -> Result<SubscriberEmail, ApiError> {
    SubscriberEmail::parse_new(raw, smtputf8)
        .map_err(|e| ApiError::invalid(format!("invalid address {:?}: {e}", raw.trim())))
}

fn parse_name(raw: &str) -> Result<Option<SubscriberName>, ApiError> {
    SubscriberName::parse(raw)
        .map_err(|e| ApiError::invalid(format!("invalid name {:?}: {e}", raw.trim())))
}

fn unknown_status(raw: &str) -> String {
    format!("unknown status {raw:?}; expected {STATUS_CHOICES}")
}

#[derive(Debug, Deserialize)]
struct ListParams {
    status: Option<String>,
    q: Option<String>,
    after: Option<i64>,
    page: Option<u32>,
    per_page: Option<u32>,
}

/// Keyset pages (`after`, the `next_after` of the page before) cost the
/// same at any depth; `page` numbers are kept for existing clients and cost
/// a read of every row before the page.
async fn list_subscribers(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params?;
    let status = match p.status.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Some(Status::parse(s).ok_or_else(|| ApiError::bad_request(unknown_status(s)))?),
        None => None,
    };
    if p.after.is_some() && p.page.is_some() {
        return Err(ApiError::bad_request(
            "give either after (the next_after of the page before) or page, not both",
        ));
    }
    let page = p.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::bad_request("page starts at 1"));
    }
    let per_page = p.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad_request(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    let found = state
        .store
        .subscriber_page(&SubscriberQuery {
            status,
            search: p.q,
            after: p.after,
            skip: u64::from(page - 1) * u64::from(per_page),
            limit: per_page,
        })
        .await?;
    let mut out = json!({
        "items": found.items,
        "total": found.total.count(),
        "total_exact": found.total.is_exact(),
        "next_after": found.next,
        "per_page": per_page,
    });
    if p.after.is_none() {
        out["page"] = json!(page);
    }
    Ok(Json(out))
}

async fn show_subscriber(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SubscriberRecord>, ApiError> {
    let id = parse_id(&id?.0)?;
    match state.store.subscriber_record(id).await? {
        Some(s) => Ok(Json(s)),
        None => Err(ApiError::not_found(format!("subscriber {id} not found"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSubscriber {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// An admin adding someone vouches for them, like `subscribers add
/// --confirmed`: the status defaults to active.
async fn add_subscriber(
    State(state): State<AppState>,
    body: Result<Json<NewSubscriber>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let email = parse_email(&body.email, state.config.mail.smtputf8)?;
    let name = match &body.name {
        Some(n) => parse_name(n)?,
        None => None,
    };
    let status = match &body.status {
        Some(s) => Status::parse(s).ok_or_else(|| ApiError::invalid(unknown_status(s)))?,
        None => Status::Active,
    };
    let row = SubscriberRow {
        email,
        name,
        status,
    };
    let now = chrono::Utc::now();
    match state.store.add_subscriber_unless_erased(&row, now).await? {
        CheckedAdd::Added(s) => {
            let record = state
                .store
                .subscriber_record(s.id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("subscriber {} not found", s.id)))?;
            tracing::info!(id = s.id, status = %s.status, "admin API: subscriber added");
            let location = format!("/api/v1/subscribers/{}", s.id);
            let mut res = (StatusCode::CREATED, Json(record)).into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            Ok(res)
        }
        CheckedAdd::AlreadyThere(s) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} is already on the list as subscriber {} ({}); left as it is",
                s.email, s.id, s.status
            ),
        )
        .with("code", "already_subscribed")
        .with("id", s.id)),
        CheckedAdd::Erased => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} was erased at the person's request, or complained of spam, and cannot be added again",
                row.email
            ),
        )
        .with("code", "erased")),
    }
}

/// `Some(value)` for a present field, so `null` can mean "remove".
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    /// Absent: unchanged; `null` or "": no name.
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default)]
    status: Option<String>,
    /// `html` or `text`.
    #[serde(default)]
    format: Option<String>,
}

async fn edit_subscriber(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Edit>, JsonRejection>,
) -> Result<Json<SubscriberRecord>, ApiError> {
    let id = parse_id(&id?.0)?;
    let Json(body) = body?;
    let edit = SubscriberEdit {
        name: match &body.name {
            Some(Some(n)) => Some(parse_name(n)?),
            Some(None) => Some(None),
            None => None,
        },
        status: match &body.status {
            Some(s) => Some(Status::parse(s).ok_or_else(|| ApiError::invalid(unknown_status(s)))?),
            None => None,
        },
        format: match &body.format {
            Some(f) => Some(MailFormat::parse(f).ok_or_else(|| {
                ApiError::invalid(format!("unknown format {f:?}; expected html or text"))
            })?),
            None => None,
        },
    };
    let record = state
        .store
        .edit_subscriber(id, &edit, chrono::Utc::now())
        .await?;
    tracing::info!(id, status = %record.status, "admin API: subscriber edited");
    Ok(Json(record))
}

/// DELETE erases: the person asked to be forgotten (see `store/roster.rs`).
async fn erase_subscriber(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id?.0)?;
    let erased = state.store.erase_subscriber(id, chrono::Utc::now()).await?;
    // The id only: logs must not keep what was just erased.
    tracing::info!(
        id,
        deliveries_kept = erased.deliveries_kept,
        cancelled = erased.cancelled,
        "admin API: subscriber erased"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Is the body declared as CSV? (`text/csv`, any parameters, any case.)
fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
}

/// `import::subscribers`, the CLI's import: good rows in pieces, each its
/// own transaction; bad and erased rows come back with their lines.
async fn import_subscribers(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportOutcome>, ApiError> {
    if !is_csv(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the subscriber list as CSV with Content-Type: text/csv",
        ));
    }
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(IMPORT_LIMIT)
        } else {
            ApiError::new(r.status(), r.body_text())
        }
    })?;
    let options = ImportOptions {
        smtputf8: state.config.mail.smtputf8,
        now: chrono::Utc::now(),
    };
    let outcome = import::subscribers(&state.store, &body, options)
        .await
        .map_err(|e| match e {
            ImportError::File(e) => {
                ApiError::bad_request(format!("line {}: {e}; nothing was imported", e.line()))
                    .with("line", e.line())
            }
            stopped @ ImportError::Stopped { .. } => {
                tracing::error!(error = %stopped, "admin API: import stopped");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, stopped.to_string())
            }
        })?;
    tracing::info!(
        imported = outcome.imported,
        already_subscribed = outcome.already_subscribed,
        skipped = outcome.skipped.len(),
        erased = outcome.erased(),
        "admin API: subscribers imported"
    );
    Ok(Json(outcome))
}

/// The same bytes as `gazette subscribers export`.
async fn export_subscribers(State(state): State<AppState>) -> Result<Response, ApiError> {
    let rows = state.store.export_subscribers().await?;
    let mut out = Vec::new();
    subscriber_csv::write(&mut out, &rows).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write the export: {e}"),
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"subscribers.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

/// Every recorded issue, newest first, with its delivery counts; drafts
/// and held issues too (`status`, and `release_at`: when it goes out).
async fn list_issues(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let records = state.store.all_issue_records().await?;
    let mut counts: HashMap<String, _> = state
        .store
        .delivery_counts(None)
        .await?
        .into_iter()
        .map(|c| (c.slug.clone(), c))
        .collect();
    let items: Vec<Value> = records
        .into_iter()
        .filter_map(|r| {
            // An issue recorded between the two reads shows up next time.
            let c = counts.remove(&r.slug)?;
            let status = if r.draft {
                "draft"
            } else if r.released() {
                "out"
            } else {
                "held"
            };
            Some(json!({
                "slug": r.slug,
                "title": r.title,
                "date": r.issue_date,
                "articles": r.article_count,
                "first_seen_at": r.first_seen_at,
                "updated_at": r.updated_at,
                "status": status,
                "draft": r.draft,
                "release_at": r.release_at,
                "released_at": r.released_at,
                "mail_state": c.mail_state,
                "mail_note": c.note,
                "published_at": c.published_at,
                "deliveries": c.counts,
            }))
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Like `gazette deliveries SLUG --json`: the counts, and the deliveries
/// that did not go out with their last reply (at most
/// [`crate::store::PROBLEMS_SHOWN`], and how many there are).
async fn issue_deliveries(
    State(state): State<AppState>,
    slug: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(slug) = slug?;
    let Some(issue) = state
        .store
        .delivery_counts(Some(&slug))
        .await?
        .into_iter()
        .next()
    else {
        return Err(ApiError::not_found(format!("no issue {slug:?} recorded")));
    };
    let problems = state.store.delivery_problems(&slug).await?;
    let problems_total = state.store.delivery_problem_count(&slug).await?;
    Ok(Json(
        json!({ "issue": issue, "problems": problems, "problems_total": problems_total }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundParams {
    kind: Option<String>,
    subscriber_id: Option<i64>,
    before: Option<i64>,
    limit: Option<u32>,
}

/// Returned mail, newest first, with what gazette decided: why someone
/// was marked bounced or unsubscribed. `before` (an id) pages back.
async fn list_inbound(
    State(state): State<AppState>,
    params: Result<Query<InboundParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params?;
    let kind = match p.kind.as_deref().filter(|k| !k.trim().is_empty()) {
        Some(k) => Some(InboundKind::parse(k).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown kind {k:?}; one of: {}",
                InboundKind::ALL.map(InboundKind::as_str).join(", ")
            ))
        })?),
        None => None,
    };
    let limit = p.limit.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    let items = state
        .store
        .inbound_list(&InboundQuery {
            kind,
            subscriber_id: p.subscriber_id,
            before: p.before,
            limit,
        })
        .await?;
    let counts: serde_json::Map<String, Value> = state
        .store
        .inbound_counts()
        .await?
        .into_iter()
        .map(|(k, n)| (k.as_str().to_string(), json!(n)))
        .collect();
    Ok(Json(json!({ "items": items, "counts": counts })))
}

/// The kept copy of one returned message (cut to `inbound.keep_raw_bytes`),
/// as `message/rfc822`; 404 once it has expired or its subscriber was erased.
async fn inbound_raw(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let id = parse_id(&id)?;
    match state.store.inbound_raw(id).await? {
        Some(raw) => {
            Ok(([(axum::http::header::CONTENT_TYPE, "message/rfc822")], raw).into_response())
        }
        None => Err(ApiError::not_found(format!(
            "no kept message {id} (never recorded, expired after inbound.keep_raw_for, or erased)"
        ))),
    }
}

fn stopping() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "gazette is stopping; no new cycles",
    )
}

/// A cycle now, through the same gate as the schedule (one at a time).
///
/// The cycle runs in a task of its own: hyper drops a handler's future
/// when its client hangs up, and a cycle dropped halfway would leave the
/// rows it had claimed `sending` (and messages out but not recorded) and
/// its stats saying it still runs. The answer waits for the task; the
/// stop waits for this answer like any other (up to its grace).
async fn run_cycle(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.cycles.stopping() {
        return Err(stopping());
    }
    let cycles = state.cycles.clone();
    let ran = tokio::spawn(async move { cycles.run_now("api").await })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the cycle task failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the cycle failed: its task ended abnormally (see the log)",
            )
        })?;
    match ran {
        Ok(report) => Ok(Json(report.to_json())),
        Err(_) if state.cycles.stopping() => Err(stopping()),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the cycle failed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests;
