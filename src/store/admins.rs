//! Admin accounts, their console sessions, and the audit log.
//!
//! A session is a random token in the browser's cookie; the store keeps
//! only its BLAKE3 hash (whoever reads the database cannot sign in with
//! what is there), the admin it belongs to, the CSRF token of its forms and
//! when it was last used. A session ends when its admin signs out, when it
//! was idle for longer than `http.admin_session_idle`, or when its admin is
//! removed (cascade).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::time::{parse, stamp};
use super::{Store, StoreError};

/// An admin account as `gazette admins list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdminRecord {
    pub id: i64,
    pub email: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

/// What signing in needs to know of an account.
#[derive(Debug, Clone)]
pub struct AdminLogin {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
}

/// A live session, as a request finds it.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub admin_id: i64,
    pub email: String,
    pub csrf: String,
    pub last_seen_at: DateTime<Utc>,
}

/// One line of the audit log, as written.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// The admin's address (the CLI writes `cli`).
    pub admin: &'a str,
    /// `subscriber.erase`, `issue.retry`, ...
    pub action: &'a str,
    /// `subscriber 42`, `issue 2026-winter`: ids, never a subscriber's address.
    pub target: Option<String>,
    pub detail: Option<String>,
    pub client: Option<String>,
}

/// One line of the audit log, as read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: String,
    pub admin: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub client: Option<String>,
}

/// What [`Store::add_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAdded {
    Added,
    /// An account of that address existed; its password was replaced and
    /// its sessions ended.
    PasswordReplaced,
}

impl Store {
    /// Whether the console exists at all.
    pub async fn has_admins(&self) -> Result<bool, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM admins)")
            .fetch_one(&self.pool)
            .await?;
        Ok(n != 0)
    }

    /// Add an admin, or give an existing one a new password (which ends
    /// every session of theirs: a password is reset because it leaked).
    pub async fn add_admin(
        &self,
        email: &str,
        key: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<AdminAdded, StoreError> {
        let mut tx = self.write().await?;
        let existing: Option<(i64,)> = sqlx::query_as("SELECT id FROM admins WHERE email_key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        let outcome = if let Some((id,)) = existing {
            sqlx::query("UPDATE admins SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            AdminAdded::PasswordReplaced
        } else {
            sqlx::query(
                "INSERT INTO admins (email, email_key, password_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(email)
            .bind(key)
            .bind(password_hash)
            .bind(stamp(now))
            .execute(&mut *tx)
            .await?;
            AdminAdded::Added
        };
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn list_admins(&self) -> Result<Vec<AdminRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, email, created_at, last_login_at FROM admins ORDER BY email_key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AdminRecord {
                    id: r.try_get("id")?,
                    email: r.try_get("email")?,
                    created_at: r.try_get("created_at")?,
                    last_login_at: r.try_get("last_login_at")?,
                })
            })
            .collect()
    }

    /// Remove an admin (and so their sessions); false when there was none.
    pub async fn remove_admin(&self, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM admins WHERE email_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The account to check a password against.
    pub async fn admin_login(&self, key: &str) -> Result<Option<AdminLogin>, StoreError> {
        let row = sqlx::query("SELECT id, email, password_hash FROM admins WHERE email_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(AdminLogin {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Start a session (after a good password): the token's hash, the CSRF
    /// token of its forms, the client it came from.
    pub async fn start_admin_session(
        &self,
        admin_id: i64,
        token_hash: &str,
        csrf: &str,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO admin_sessions (token_hash, admin_id, csrf, created_at, last_seen_at, client)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash)
        .bind(admin_id)
        .bind(csrf)
        .bind(stamp(now))
        .bind(client)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE admins SET last_login_at = $1 WHERE id = $2")
            .bind(stamp(now))
            .bind(admin_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live session of a token hash: one used within `idle` of `now`.
    /// An expired one is deleted on the way (so it can never come back).
    pub async fn admin_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle: std::time::Duration,
    ) -> Result<Option<AdminSession>, StoreError> {
        let row = sqlx::query(
            "SELECT s.admin_id, a.email, s.csrf, s.last_seen_at
               FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
              WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let seen: String = r.try_get("last_seen_at")?;
        let last_seen_at = parse(&seen).ok_or_else(|| StoreError::Corrupt {
            what: format!("admin_sessions.last_seen_at {seen:?}"),
        })?;
        let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        if last_seen_at + idle <= now || last_seen_at > now + chrono::Duration::minutes(5) {
            self.end_admin_session(token_hash).await?;
            return Ok(None);
        }
        Ok(Some(AdminSession {
            admin_id: r.try_get("admin_id")?,
            email: r.try_get("email")?,
            csrf: r.try_get("csrf")?,
            last_seen_at,
        }))
    }

    /// Mark a session used now (callers do it at most once a minute: a
    /// write per page view would queue behind every cycle's writes).
    pub async fn touch_admin_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(stamp(now))
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn end_admin_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sessions idle for longer than `idle` are deleted (at each sign-in,
    /// so the table does not grow with abandoned browsers).
    pub async fn expire_admin_sessions(
        &self,
        now: DateTime<Utc>,
        idle: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        let cut = now
            .checked_sub_signed(idle)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let done = sqlx::query("DELETE FROM admin_sessions WHERE last_seen_at <= $1")
            .bind(stamp(cut))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Write one line of the audit log.
    pub async fn audit(&self, e: &AuditEntry<'_>) -> Result<(), StoreError> {
        self.audit_at(e, Utc::now()).await
    }

    pub async fn audit_at(&self, e: &AuditEntry<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, admin, action, target, detail, client) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(stamp(now))
        .bind(e.admin)
        .bind(e.action)
        .bind(e.target.as_deref())
        .bind(e.detail.as_deref())
        .bind(e.client.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The audit log, newest first: `limit` lines older than the line
    /// `before` (keyset paging by id).
    pub async fn audit_page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, admin, action, target, detail, client FROM audit_log
              WHERE $1 IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    admin: r.try_get("admin")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                    client: r.try_get("client")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn sessions_expire_when_idle_and_end_with_their_admin() {
        let (_d, s) = store().await;
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        assert!(!s.has_admins().await.unwrap());
        s.add_admin("Ed@example.org", "ed@example.org", "$h", t0)
            .await
            .unwrap();
        assert!(s.has_admins().await.unwrap());
        let a = s.admin_login("ed@example.org").await.unwrap().unwrap();
        s.start_admin_session(a.id, "h1", "c1", "127.0.0.1", t0)
            .await
            .unwrap();
        let idle = Duration::from_secs(3600);
        let live = s
            .admin_session("h1", t0 + chrono::Duration::minutes(59), idle)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (live.email.as_str(), live.csrf.as_str()),
            ("Ed@example.org", "c1")
        );
        s.touch_admin_session("h1", t0 + chrono::Duration::minutes(59))
            .await
            .unwrap();
        // Idle counts from the last use.
        assert!(
            s.admin_session("h1", t0 + chrono::Duration::minutes(118), idle)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            s.admin_session("h1", t0 + chrono::Duration::minutes(119), idle)
                .await
                .unwrap()
                .is_none()
        );
        // ... and an expired session is gone for good.
        assert!(s.admin_session("h1", t0, idle).await.unwrap().is_none());
        // A new password ends the sessions; removing the admin too.
        s.start_admin_session(a.id, "h2", "c2", "127.0.0.1", t0)
            .await
            .unwrap();
        assert_eq!(
            s.add_admin("ed@example.org", "ed@example.org", "$h2", t0)
                .await
                .unwrap(),
            AdminAdded::PasswordReplaced
        );
        assert!(s.admin_session("h2", t0, idle).await.unwrap().is_none());
        s.start_admin_session(a.id, "h3", "c3", "127.0.0.1", t0)
            .await
            .unwrap();
        assert!(s.remove_admin("ed@example.org").await.unwrap());
        assert!(s.admin_session("h3", t0, idle).await.unwrap().is_none());
        assert!(!s.remove_admin("ed@example.org").await.unwrap());
    }

    #[tokio::test]
    async fn the_audit_log_pages_newest_first() {
        let (_d, s) = store().await;
        for i in 0..5 {
            s.audit(&AuditEntry {
                admin: "ed@example.org",
                action: "subscriber.edit",
                target: Some(format!("subscriber {i}")),
                detail: None,
                client: Some("127.0.0.1".into()),
            })
            .await
            .unwrap();
        }
        let first = s.audit_page(None, 3).await.unwrap();
        let targets: Vec<_> = first.iter().map(|r| r.target.clone().unwrap()).collect();
        assert_eq!(targets, ["subscriber 4", "subscriber 3", "subscriber 2"]);
        let rest = s.audit_page(Some(first[2].id), 3).await.unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[1].target.as_deref(), Some("subscriber 0"));
    }
}
