//! `/healthz` for load balancers and `/metrics` for Prometheus.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::subscribers::Status;

/// 200 when the database can be written; 503 otherwise.
///
/// A read (`SELECT 1`) also answers on a database that is read-only (a
/// file the service user cannot write, a read-only mount), where every
/// cycle then fails; so does `BEGIN IMMEDIATE` in WAL mode. So the probe is
/// a write that matches no row, in a transaction rolled back: SQLite
/// refuses it on a read-only database, and it changes nothing on a good
/// one. Another writer holding the lock past the busy timeout shows the
/// database is writable: 200. A failed
/// cycle does not turn this to 503 (an SMTP outage must not take the
/// pages and feeds out of a load balancer): alert on
/// `gazette_last_cycle_success` in `/metrics` for that.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let probe = async {
        let mut tx = state.store.pool().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE meta SET value = value WHERE 0")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await
    };
    match probe.await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) if is_busy(&e) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the database cannot be written");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable or read-only\n",
            )
                .into_response()
        }
    }
}

/// SQLITE_BUSY, any extended code: another connection holds the lock.
fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}

/// The Prometheus text format, version 0.0.4.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match render(&state).await {
        Ok(body) => {
            let mut res = body.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: database error");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

async fn render(state: &AppState) -> Result<String, crate::store::StoreError> {
    let mut out = String::with_capacity(2048);
    let issues = state.store.delivery_counts(None).await?;
    let subscribers = state.store.subscriber_counts().await?;

    family(
        &mut out,
        "gazette_issues",
        "gauge",
        "Issues recorded, by mail state.",
    );
    for st in ["unpublished", "published", "skipped"] {
        let n = issues.iter().filter(|i| i.mail_state == st).count();
        let _ = writeln!(out, "gazette_issues{{mail_state=\"{st}\"}} {n}");
    }

    family(
        &mut out,
        "gazette_subscribers",
        "gauge",
        "Subscribers, by status.",
    );
    for st in Status::ALL {
        let _ = writeln!(
            out,
            "gazette_subscribers{{status=\"{}\"}} {}",
            st.as_str(),
            subscribers.get(st)
        );
    }

    family(
        &mut out,
        "gazette_deliveries",
        "gauge",
        "Delivery ledger rows, by status.",
    );
    let sum = |f: fn(&crate::store::IssueDeliveries) -> u64| issues.iter().map(f).sum::<u64>();
    for (st, n) in [
        ("queued", sum(|i| i.queued)),
        ("sending", sum(|i| i.sending)),
        ("sent", sum(|i| i.sent)),
        ("failed", sum(|i| i.failed)),
        ("bounced", sum(|i| i.bounced)),
        ("cancelled", sum(|i| i.cancelled)),
    ] {
        let _ = writeln!(out, "gazette_deliveries{{status=\"{st}\"}} {n}");
    }

    let c = state.cycles.stats();
    family(
        &mut out,
        "gazette_messages_sent_total",
        "counter",
        "Messages the SMTP server (or outbox) accepted since this process started.",
    );
    let _ = writeln!(out, "gazette_messages_sent_total {}", c.sent_total);
    family(
        &mut out,
        "gazette_messages_failed_total",
        "counter",
        "Messages refused for good (5xx) since this process started.",
    );
    let _ = writeln!(out, "gazette_messages_failed_total {}", c.failed_total);
    family(
        &mut out,
        "gazette_send_rate_per_second",
        "gauge",
        "Messages per second in the last cycle that sent any.",
    );
    let _ = writeln!(out, "gazette_send_rate_per_second {:.3}", c.last_send_rate);
    family(
        &mut out,
        "gazette_feed_requests_total",
        "counter",
        "Feed requests answered since this process started, by feed and status (200 = the body, 304 = not modified).",
    );
    for f in state.feeds.requests() {
        let _ = writeln!(
            out,
            "gazette_feed_requests_total{{feed=\"{}\",status=\"200\"}} {}",
            f.name, f.full
        );
        let _ = writeln!(
            out,
            "gazette_feed_requests_total{{feed=\"{}\",status=\"304\"}} {}",
            f.name, f.not_modified
        );
    }
    family(
        &mut out,
        "gazette_cycles_total",
        "counter",
        "Cycles run since this process started.",
    );
    let _ = writeln!(out, "gazette_cycles_total {}", c.runs);
    family(
        &mut out,
        "gazette_cycle_failures_total",
        "counter",
        "Cycles that ended in an error since this process started.",
    );
    let _ = writeln!(out, "gazette_cycle_failures_total {}", c.failures);
    family(
        &mut out,
        "gazette_cycle_running",
        "gauge",
        "1 while a cycle runs.",
    );
    let _ = writeln!(out, "gazette_cycle_running {}", u8::from(c.running));
    if let Some(t) = c.last_finished {
        family(
            &mut out,
            "gazette_last_cycle_timestamp_seconds",
            "gauge",
            "When the last cycle finished (Unix time).",
        );
        let _ = writeln!(
            out,
            "gazette_last_cycle_timestamp_seconds {}",
            t.timestamp()
        );
        family(
            &mut out,
            "gazette_last_cycle_duration_seconds",
            "gauge",
            "How long the last cycle took.",
        );
        let _ = writeln!(
            out,
            "gazette_last_cycle_duration_seconds {:.3}",
            c.last_seconds
        );
        family(
            &mut out,
            "gazette_last_cycle_success",
            "gauge",
            "1 if the last cycle succeeded, 0 if it failed.",
        );
        let _ = writeln!(
            out,
            "gazette_last_cycle_success {}",
            u8::from(c.last_ok == Some(true))
        );
    }
    Ok(out)
}
