//! `/healthz` for load balancers and `/metrics` for Prometheus.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::subscribers::Status;

/// 200 when the database answers and can be written; 503 otherwise.
///
/// A read (`SELECT 1`) also answers on a database that is read-only (a
/// file the service user cannot write, a read-only mount), where every
/// cycle then fails. So the probe also asks the OS whether the database
/// file (and its WAL) may be written, which it refuses in both cases.
/// It takes no SQLite lock on purpose: a probe that took the write lock
/// (`BEGIN IMMEDIATE`, or a write that matches no row) made a cycle's
/// transaction that was upgrading from a read fail at once with
/// SQLITE_BUSY ("database is locked"), whatever the busy timeout, since
/// SQLite refuses such an upgrade instead of waiting. A failed cycle does
/// not turn this to 503 (an SMTP outage must not take the pages and feeds
/// out of a load balancer): alert on `gazette_last_cycle_success` in
/// `/metrics` for that.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let answers = sqlx::query("SELECT 1").execute(state.store.pool()).await;
    let problem = match answers {
        Err(e) => Some(e.to_string()),
        Ok(_) => {
            let db = state.store.path().to_path_buf();
            tokio::task::spawn_blocking(move || writable(&db).err().map(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Some(e.to_string()))
        }
    };
    match problem {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(e) => {
            tracing::error!(error = %e, "health check: the database cannot be written");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable or read-only\n",
            )
                .into_response()
        }
    }
}

/// Asks the OS whether this process may write the database file, and its
/// `-wal` file when present, with `access(2)`. It does not open them: closing
/// any descriptor of a database file drops every POSIX lock this process
/// holds on it, SQLite's included.
fn writable(db: &std::path::Path) -> Result<(), NotWritable> {
    use std::os::unix::ffi::OsStrExt;
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    for path in [db, wal.as_path()] {
        if path == wal && !wal.exists() {
            continue;
        }
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|source| {
            NotWritable::NulInPath {
                path: path.to_path_buf(),
                source,
            }
        })?;
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            return Err(NotWritable::Refused {
                path: path.to_path_buf(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Why [`writable`] says no: the file and the OS's reason.
#[derive(Debug, thiserror::Error)]
enum NotWritable {
    /// A path with a NUL byte cannot be asked about (nor opened by SQLite).
    #[error("{}: {source}", path.display())]
    NulInPath {
        path: std::path::PathBuf,
        source: std::ffi::NulError,
    },
    /// `access(2)` refused write access (read-only file or mount, owner).
    #[error("{}: {source}", path.display())]
    Refused {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
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
    for st in crate::store::MailState::ALL {
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
    let all: crate::store::DeliveryCounts = issues.iter().map(|i| i.counts).sum();
    for (st, n) in all.by_status() {
        let _ = writeln!(out, "gazette_deliveries{{status=\"{st}\"}} {n}");
    }

    family(
        &mut out,
        "gazette_inbound_messages",
        "gauge",
        "Returned messages processed (bounces, complaints, mailto unsubscribes, ignored mail), by kind; kept in the database.",
    );
    for (kind, n) in state.store.inbound_counts().await? {
        let _ = writeln!(out, "gazette_inbound_messages{{kind=\"{kind}\"}} {n}");
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

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use super::*;

    #[test]
    fn a_writable_database_and_its_wal_pass() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gazette.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(dir.path().join("gazette.db-wal"), b"").unwrap();
        assert!(writable(&db).is_ok());
    }

    #[test]
    fn the_refusal_names_the_file_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("missing.db");
        let e = writable(&db).unwrap_err();
        assert!(matches!(e, NotWritable::Refused { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("{}: No such file or directory (os error 2)", db.display())
        );
    }

    #[test]
    fn a_path_with_a_nul_byte_is_refused_not_asked() {
        let db = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\0b.db"));
        let e = writable(db).unwrap_err();
        assert!(matches!(e, NotWritable::NulInPath { .. }), "{e:?}");
        assert!(e.to_string().starts_with("/tmp/a\0b.db: "), "{e}");
    }
}
