//! Console pages: the subscriber list (search, status filter, keyset
//! pages), a subscriber's page (facts, history, edit, unsubscribe), adding
//! one, erasing one (a confirmation step first), and the CSV export.
//!
//! Every page reads a bounded amount however long the list is: a page of
//! the list is a keyset page of the store ([`SubscriberQuery`]), counts come
//! from the table the store's triggers keep, and the export streams in
//! pieces. Audit lines name subscribers by id, never by address or name:
//! an erasure must not leave the person in the audit log.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use minijinja::{Value, context};
use serde::Deserialize;

use super::{Admin, CsrfForm, Section};
use crate::store::{
    CheckedAdd, StoreError, SubscriberEdit, SubscriberHistory, SubscriberQuery, SubscriberRecord,
};
use crate::subscribers::csv as subscriber_csv;
use crate::subscribers::{MailFormat, Status, SubscriberEmail, SubscriberName, SubscriberRow};
use crate::web::AppState;

/// Rows per page of the list.
pub const PER_PAGE: u32 = 50;

/// Rows per piece of the streamed export: one short read each.
const EXPORT_PIECE: u32 = 2000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subscribers", get(list))
        .route("/subscribers/new", get(new_form).post(add))
        .route("/subscribers/export", get(export))
        .route("/subscribers/{id}", get(show).post(edit))
        .route(
            "/subscribers/{id}/unsubscribe",
            axum::routing::post(unsubscribe),
        )
        .route("/subscribers/{id}/erase", get(erase_form).post(erase))
}

/// The statuses, as the filter and the forms offer them.
fn status_choices() -> Vec<Value> {
    Status::ALL
        .iter()
        .map(|s| context! { value => s.as_str(), label => status_label(*s) })
        .collect()
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Active => "Active",
        Status::Pending => "Pending (not confirmed)",
        Status::Unsubscribed => "Unsubscribed",
        Status::Bounced => "Bounced",
    }
}

fn format_choices() -> Vec<Value> {
    [
        (MailFormat::Html, "HTML with a plain-text copy"),
        (MailFormat::Text, "Plain text only"),
    ]
    .iter()
    .map(|(f, label)| context! { value => f.as_str(), label => *label })
    .collect()
}

/// A subscriber as the templates see it (minijinja is built without serde).
fn record_value(r: &SubscriberRecord) -> Value {
    context! {
        id => r.id,
        email => r.email.as_str(),
        name => r.name.as_ref().map(|n| n.as_str().to_string()),
        status => r.status.as_str(),
        format => r.format.as_str(),
        created_at => r.created_at.clone(),
        confirmed_at => r.confirmed_at.clone(),
        unsubscribed_at => r.unsubscribed_at.clone(),
        bounced_at => r.bounced_at.clone(),
    }
}

fn history_value(h: &SubscriberHistory) -> Value {
    let deliveries: Vec<Value> = h
        .deliveries
        .iter()
        .map(|d| {
            context! {
                issue_slug => d.issue_slug.clone(),
                issue_title => d.issue_title.clone(),
                status => d.status.as_str(),
                attempts => d.attempts,
                last_reply => d.last_reply.clone(),
                created_at => d.created_at.clone(),
                sent_at => d.sent_at.clone(),
                updated_at => d.updated_at.clone(),
            }
        })
        .collect();
    let events: Vec<Value> = h
        .events
        .iter()
        .map(|e| context! { at => e.at.clone(), from => e.from.as_str(), to => e.to.as_str() })
        .collect();
    context! { deliveries => deliveries, events => events }
}

/// A field a form got wrong, shown next to it.
fn field_error(field: &str, message: &str) -> Value {
    context! { field => field, message => message }
}

/// A 400 page for a bad query parameter, naming it.
fn bad_parameter(state: &AppState, admin: &Admin, name: &str, why: &str) -> Response {
    state.console.error(
        admin,
        StatusCode::BAD_REQUEST,
        "This address is not right",
        &format!("The parameter “{name}” {why}."),
    )
}

/// `/subscribers/ID` paths: an id that is not a number finds nobody.
fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

fn not_found(state: &AppState, admin: &Admin) -> Response {
    state.console.error(
        admin,
        StatusCode::NOT_FOUND,
        "No such subscriber",
        "There is no subscriber with this number (or they were erased).",
    )
}

/// A store error: the unknown subscriber is a 404, the rest a 500.
fn store_failed(state: &AppState, admin: &Admin, e: &StoreError) -> Response {
    match e {
        StoreError::UnknownSubscriber { .. } => not_found(state, admin),
        other => state.console.server_error(admin, other),
    }
}

/// Write an audit line; a failure is logged, not shown: the action itself
/// is done by then, and telling the admin it failed would be wrong.
async fn audit(state: &AppState, admin: &Admin, action: &str, id: i64, detail: Option<String>) {
    let entry = admin.audit(action, Some(format!("subscriber {id}")), detail);
    super::audit::record(state, &entry).await;
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    after: Option<String>,
    notice: Option<String>,
}

/// The list's own address with these parameters (the blank ones left out).
fn list_url(base: &str, q: &str, status: &str, after: Option<i64>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    if !status.is_empty() {
        query.append_pair("status", status);
    }
    if let Some(a) = after {
        query.append_pair("after", &a.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        format!("{base}subscribers")
    } else {
        format!("{base}subscribers?{query}")
    }
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(p)) = query else {
        return bad_parameter(&state, &admin, "q", "could not be read");
    };
    let q = p.q.as_deref().unwrap_or("").trim().to_string();
    let status = match p.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match Status::parse(s) {
            Some(st) => Some(st),
            None => {
                return bad_parameter(
                    &state,
                    &admin,
                    "status",
                    "is not one of pending, active, unsubscribed or bounced",
                );
            }
        },
    };
    let after = match p.after.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(a) => match a.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return bad_parameter(&state, &admin, "after", "is not a number"),
        },
    };
    let page = match state
        .store
        .subscriber_page(&SubscriberQuery {
            status,
            search: Some(q.clone()),
            after,
            skip: 0,
            limit: PER_PAGE,
        })
        .await
    {
        Ok(p) => p,
        Err(e) => return state.console.server_error(&admin, &e),
    };
    let counts = match state.store.subscriber_counts().await {
        Ok(c) => c,
        Err(e) => return state.console.server_error(&admin, &e),
    };
    let status_str = status.map_or("", Status::as_str);
    let statuses: Vec<Value> = Status::ALL
        .iter()
        .map(|s| {
            context! { value => s.as_str(), label => status_label(*s), count => counts.get(*s) }
        })
        .collect();
    let base = admin.base.clone();
    state.console.page_noticed(
        &admin,
        "admin/subscribers.html",
        Section::Subscribers,
        p.notice.as_deref(),
        context! {
            q => q.clone(),
            status => status_str,
            statuses => statuses,
            all_count => counts.total(),
            items => page.items.iter().map(record_value).collect::<Vec<_>>(),
            total => page.total.count(),
            total_exact => page.total.is_exact(),
            searched => !q.is_empty(),
            next_url => page.next.map(|n| list_url(&base, &q, status_str, Some(n))),
            first_url => after.map(|_| list_url(&base, &q, status_str, None)),
        },
    )
}

#[derive(Debug, Deserialize)]
struct Notice {
    notice: Option<String>,
}

/// The subscriber page, with the edit form holding `form` and, after a
/// refused edit, the `error`.
async fn subscriber_page(
    state: &AppState,
    admin: &Admin,
    record: &SubscriberRecord,
    status: StatusCode,
    notice: Option<&str>,
    form: Value,
    error: Option<Value>,
) -> Response {
    let history = match state.store.subscriber_history(record.id).await {
        Ok(h) => h,
        Err(e) => return store_failed(state, admin, &e),
    };
    state.console.page_with(
        status,
        admin,
        "admin/subscriber.html",
        Section::Subscribers,
        notice,
        context! {
            subscriber => record_value(record),
            history => history_value(&history),
            statuses => status_choices(),
            formats => format_choices(),
            form => form,
            error => error,
        },
    )
}

fn form_of(record: &SubscriberRecord) -> Value {
    context! {
        name => record.name.as_ref().map_or("", |n| n.as_str()),
        status => record.status.as_str(),
        format => record.format.as_str(),
    }
}

async fn record_or_404(
    state: &AppState,
    admin: &Admin,
    raw_id: &str,
) -> Result<SubscriberRecord, Response> {
    let Some(id) = parse_id(raw_id) else {
        return Err(not_found(state, admin));
    };
    match state.store.subscriber_record(id).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(not_found(state, admin)),
        Err(e) => Err(state.console.server_error(admin, &e)),
    }
}

#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Response {
    let record = match record_or_404(&state, &admin, &id).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let form = form_of(&record);
    subscriber_page(
        &state,
        &admin,
        &record,
        StatusCode::OK,
        n.notice.as_deref(),
        form,
        None,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct EditForm {
    name: Option<String>,
    status: Option<String>,
    format: Option<String>,
    /// The values the form was shown with (hidden fields).
    was_name: Option<String>,
    was_status: Option<String>,
    was_format: Option<String>,
}

/// Whether the admin changed a field: what they posted differs from what
/// the form showed. Without the shown value (an older page), any value
/// posted counts.
fn touched(posted: Option<&str>, shown: Option<&str>) -> bool {
    posted.is_some() && shown.is_none_or(|s| Some(s) != posted)
}

/// The edit form: only what the admin changed and what differs from the
/// record is changed (and audited). Saving an untouched form changes
/// nothing, and neither does saving a page that was open while the
/// subscriber unsubscribed by link or confirmed: the status they left
/// alone is not written back over the new one.
#[tracing::instrument(skip_all)]
async fn edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(admin, form): CsrfForm<EditForm>,
) -> Response {
    let record = match record_or_404(&state, &admin, &id).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let given = context! {
        name => form.name.clone().unwrap_or_default(),
        status => form.status.clone().unwrap_or_default(),
        format => form.format.clone().unwrap_or_default(),
    };
    let refuse = |field: &'static str, message: String| {
        let state = state.clone();
        let admin = admin.clone();
        let record = record.clone();
        let given = given.clone();
        async move {
            subscriber_page(
                &state,
                &admin,
                &record,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                given,
                Some(field_error(field, &message)),
            )
            .await
        }
    };
    let mut change = SubscriberEdit::default();
    let mut changed = Vec::new();
    if let Some(raw) = form
        .name
        .as_ref()
        .filter(|_| touched(form.name.as_deref(), form.was_name.as_deref()))
    {
        let name = match SubscriberName::parse(raw) {
            Ok(n) => n,
            Err(e) => return refuse("name", format!("not a valid name: {e}")).await,
        };
        if name != record.name {
            change.name = Some(name);
            changed.push("name".to_string());
        }
    }
    if let Some(raw) = form
        .status
        .as_deref()
        .filter(|s| !s.trim().is_empty() && touched(Some(s), form.was_status.as_deref()))
    {
        let Some(status) = Status::parse(raw) else {
            return refuse("status", format!("“{raw}” is not a status")).await;
        };
        if status != record.status {
            change.status = Some(status);
            changed.push(format!(
                "status {} → {}",
                record.status.as_str(),
                status.as_str()
            ));
        }
    }
    if let Some(raw) = form
        .format
        .as_deref()
        .filter(|s| !s.trim().is_empty() && touched(Some(s), form.was_format.as_deref()))
    {
        let Some(format) = MailFormat::parse(raw) else {
            return refuse("format", format!("“{raw}” is not a format (html or text)")).await;
        };
        if format != record.format {
            change.format = Some(format);
            changed.push(format!("format {format}"));
        }
    }
    if changed.is_empty() {
        return state
            .console
            .see_other(&admin, &format!("subscribers/{}?notice=saved", record.id));
    }
    match state
        .store
        .edit_subscriber(record.id, &change, Utc::now())
        .await
    {
        Ok(_) => {}
        Err(StoreError::Suppressed { .. }) => {
            return refuse(
                "status",
                "this address asked not to be mailed (erased, or a spam complaint): only their own confirmed sign-up makes them active again".to_string(),
            )
            .await;
        }
        Err(e) => return store_failed(&state, &admin, &e),
    }
    audit(
        &state,
        &admin,
        "subscriber.edit",
        record.id,
        Some(changed.join("; ")),
    )
    .await;
    state
        .console
        .see_other(&admin, &format!("subscribers/{}?notice=saved", record.id))
}

/// No fields besides the CSRF token.
#[derive(Debug, Deserialize)]
struct NoFields {}

#[tracing::instrument(skip_all)]
async fn unsubscribe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(admin, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let record = match record_or_404(&state, &admin, &id).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    if record.status != Status::Unsubscribed {
        if let Err(e) = state
            .store
            .set_subscriber_status(record.id, Status::Unsubscribed, Utc::now())
            .await
        {
            return store_failed(&state, &admin, &e);
        }
        audit(&state, &admin, "subscriber.unsubscribe", record.id, None).await;
    }
    state.console.see_other(
        &admin,
        &format!("subscribers/{}?notice=unsubscribed", record.id),
    )
}

#[tracing::instrument(skip_all)]
async fn erase_form(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let record = match record_or_404(&state, &admin, &id).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let history = match state.store.subscriber_history(record.id).await {
        Ok(h) => h,
        Err(e) => return store_failed(&state, &admin, &e),
    };
    let queued = history
        .deliveries
        .iter()
        .filter(|d| d.status == crate::store::DeliveryStatus::Queued)
        .count();
    state.console.page(
        &admin,
        "admin/subscriber-erase.html",
        Section::Subscribers,
        context! {
            subscriber => record_value(&record),
            deliveries => history.deliveries.len(),
            queued => queued,
        },
    )
}

#[tracing::instrument(skip_all)]
async fn erase(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(admin, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found(&state, &admin);
    };
    let erased = match state.store.erase_subscriber(id, Utc::now()).await {
        Ok(e) => e,
        Err(e) => return store_failed(&state, &admin, &e),
    };
    audit(
        &state,
        &admin,
        "subscriber.erase",
        id,
        Some(format!(
            "deliveries kept without replies: {}, queued ones cancelled: {}",
            erased.deliveries_kept, erased.cancelled
        )),
    )
    .await;
    state.console.see_other(&admin, "subscribers?notice=erased")
}

#[derive(Debug, Deserialize)]
struct NewForm {
    email: Option<String>,
    name: Option<String>,
    status: Option<String>,
}

fn new_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    form: Value,
    error: Option<Value>,
) -> Response {
    state.console.page_with(
        status,
        admin,
        "admin/subscriber-new.html",
        Section::Subscribers,
        None,
        context! { form => form, statuses => status_choices(), error => error },
    )
}

async fn new_form(State(state): State<AppState>, admin: Admin) -> Response {
    new_page(
        &state,
        &admin,
        StatusCode::OK,
        context! { email => "", name => "", status => "active" },
        None,
    )
}

/// Add one subscriber: the address through [`SubscriberEmail::parse_new`]
/// (the rule every entry point applies), an erased address refused in the
/// same transaction as the insert.
#[tracing::instrument(skip_all)]
async fn add(State(state): State<AppState>, CsrfForm(admin, form): CsrfForm<NewForm>) -> Response {
    let email_raw = form.email.unwrap_or_default();
    let name_raw = form.name.unwrap_or_default();
    let status_raw = form.status.unwrap_or_default();
    let given = context! { email => email_raw.trim(), name => name_raw.clone(), status => status_raw.clone() };
    let refuse = |field: &str, message: String| {
        new_page(
            &state,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            given.clone(),
            Some(field_error(field, &message)),
        )
    };
    let email = match SubscriberEmail::parse_new(&email_raw, state.config.mail.smtputf8) {
        Ok(e) => e,
        Err(e) => return refuse("email", format!("not a valid address: {e}")),
    };
    let name = match SubscriberName::parse(&name_raw) {
        Ok(n) => n,
        Err(e) => return refuse("name", format!("not a valid name: {e}")),
    };
    let status = if status_raw.trim().is_empty() {
        Status::Active
    } else {
        match Status::parse(&status_raw) {
            Some(s) => s,
            None => return refuse("status", format!("“{status_raw}” is not a status")),
        }
    };
    let row = SubscriberRow {
        email,
        name,
        status,
    };
    match state
        .store
        .add_subscriber_unless_erased(&row, Utc::now())
        .await
    {
        Ok(CheckedAdd::Added(s)) => {
            audit(
                &state,
                &admin,
                "subscriber.add",
                s.id,
                Some(format!("status {}", s.status.as_str())),
            )
            .await;
            state
                .console
                .see_other(&admin, &format!("subscribers/{}?notice=added", s.id))
        }
        Ok(CheckedAdd::AlreadyThere(s)) => state
            .console
            .see_other(&admin, &format!("subscribers/{}?notice=exists", s.id)),
        Ok(CheckedAdd::Erased) => refuse(
            "email",
            "this address was erased at the person’s request, or they complained of spam: only their own sign-up can bring it back".to_string(),
        ),
        Err(e) => state.console.server_error(&admin, &e),
    }
}

/// The CSV export, the same bytes as `gazette subscribers export` for the
/// same rows, streamed: each piece is one short read of the store, so a
/// million rows never sit in memory and no read transaction stays open
/// while a slow client downloads. A row changed during the download shows
/// as it was when its piece was read.
#[tracing::instrument(skip_all)]
async fn export(State(state): State<AppState>, admin: Admin) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut after = None;
        let mut first = true;
        loop {
            let (rows, next) = match store.export_page(after, EXPORT_PIECE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "export failed part way");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let mut piece = Vec::with_capacity(rows.len() * 64);
            if let Err(e) = subscriber_csv::write_part(&mut piece, first, &rows) {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
            first = false;
            if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                return; // the client went away
            }
            match next {
                Some(n) => after = Some(n),
                None => return,
            }
        }
    });
    let entry = admin.audit("subscribers.export", None, None);
    super::audit::record(&state, &entry).await;
    let mut res = Response::new(Body::new(Pieces(rx)));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"subscribers.csv\""),
    );
    res
}

/// A response body fed piece by piece from a channel (the export's task
/// sends, the connection reads; the channel's bound is the backpressure).
struct Pieces(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|piece| piece.map(|r| r.map(http_body::Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_links_keep_the_search_and_filter_and_encode_them() {
        assert_eq!(list_url("/admin/", "", "", None), "/admin/subscribers");
        assert_eq!(
            list_url("/admin/", "Ødön & co", "active", Some(42)),
            "/admin/subscribers?q=%C3%98d%C3%B6n+%26+co&status=active&after=42"
        );
        assert_eq!(parse_id("12"), Some(12));
        assert_eq!(parse_id("0"), None);
        assert_eq!(parse_id("-3"), None);
        assert_eq!(parse_id("12abc"), None);
    }
}
