//! Sign-up from the web and what a subscriber's own links do: double opt-in
//! confirmations, unsubscribing, and preferences (name and mail format).
//!
//! Two kinds of secret are in play:
//! - the subscriber's permanent token (`subscribers.token`), in every
//!   digest's unsubscribe and preferences links: it identifies the
//!   subscriber for as long as they exist;
//! - a confirmation token per sign-up request (`confirmations`), mailed once,
//!   valid for [`CONFIRM_TTL`] and consumed when used. Only its blake3 hash
//!   is stored.
//!
//! Every function that acts on a token does so in one statement keyed by
//! that token, so a token never acts on another subscriber, and an unknown
//! token changes nothing. Each transaction starts with its write, so SQLite
//! takes the write lock first (waiting on the busy timeout) instead of
//! failing a read-then-write upgrade when another writer got in between.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::time::stamp;
use super::{Store, StoreError};
use crate::subscribers::{MailFormat, Status, SubscriberEmail, SubscriberName, Token};

/// How long a confirmation link works.
pub const CONFIRM_TTL: Duration = Duration::from_secs(7 * 86_400);

/// At most this many sign-up mails (confirmations or notices) go to one
/// address in 24 hours, whoever asks: the public form must not be a way to
/// flood a stranger's mailbox from many client addresses. Requests past the
/// limit get the same answer and no mail.
pub const SIGNUP_MAILS_PER_DAY: i64 = 5;

/// What a sign-up request should lead to. The web answer is the same for
/// each (it must not tell whether an address is on the list); only the mail
/// differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signup {
    /// Mail this confirmation link. The subscriber is pending (new, or as
    /// before for a pending one) or keeps the status it had (unsubscribed,
    /// bounced) until the link is used.
    Confirm(Confirmation),
    /// The address is active already: nothing changed. A notice with their
    /// own preferences link may be mailed instead of a confirmation.
    AlreadyActive(Preferences),
    /// The address had [`SIGNUP_MAILS_PER_DAY`] sign-up mails today: send none.
    Throttled,
}

/// A fresh confirmation link's secret and what the mail needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub subscriber_id: i64,
    pub email: SubscriberEmail,
    /// The name given with the request, else the one on record.
    pub name: Option<SubscriberName>,
    /// The last segment of the confirmation URL. Never stored as such.
    pub token: Token,
    pub expires_at: DateTime<Utc>,
    /// The request created the subscriber.
    pub new: bool,
}

/// A subscriber as their own pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub id: i64,
    pub email: SubscriberEmail,
    pub name: Option<SubscriberName>,
    pub status: Status,
    pub format: MailFormat,
    /// The permanent token (unsubscribe and preferences links).
    pub token: Token,
}

/// A change on the preferences page; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferencesChange {
    /// `Some(None)` removes the name.
    pub name: Option<Option<SubscriberName>>,
    pub format: Option<MailFormat>,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

/// The hash under which a confirmation token is stored.
fn token_hash(token: &Token) -> String {
    blake3::hash(token.as_str().as_bytes()).to_hex().to_string()
}

/// Columns read by [`preferences_row`], as a literal (sqlx takes only static SQL).
macro_rules! pref_columns {
    () => {
        "id, email, name, status, format, token"
    };
}

fn preferences_row(r: &SqliteRow) -> Result<Preferences, StoreError> {
    let id: i64 = r.try_get("id")?;
    let email: String = r.try_get("email")?;
    let name: Option<String> = r.try_get("name")?;
    let status: String = r.try_get("status")?;
    let format: String = r.try_get("format")?;
    let token: String = r.try_get("token")?;
    let bad = |what: String| corrupt(format!("subscriber {id}: {what}"));
    Ok(Preferences {
        id,
        email: SubscriberEmail::from_stored(&email)
            .map_err(|e| bad(format!("address {email:?} {e}")))?,
        name: match name {
            Some(n) => {
                SubscriberName::from_stored(&n).map_err(|e| bad(format!("name {n:?} {e}")))?
            }
            None => None,
        },
        status: Status::parse(&status).ok_or_else(|| bad(format!("unknown status {status:?}")))?,
        format: MailFormat::parse(&format)
            .ok_or_else(|| bad(format!("unknown mail format {format:?}")))?,
        token: Token::parse(&token).map_err(|e| bad(format!("bad token: {e}")))?,
    })
}

impl Store {
    /// A sign-up from the web form: add the address as pending when it is
    /// new, and say which mail to send. An address on the list keeps its
    /// status, name and token; a confirmation is attached to it (its name
    /// waits in the confirmation until the link is used).
    pub async fn request_signup(
        &self,
        email: &SubscriberEmail,
        name: Option<&SubscriberName>,
        now: DateTime<Utc>,
    ) -> Result<Signup, StoreError> {
        let at = stamp(now);
        let day_ago = stamp(now - chrono::Duration::days(1));
        let permanent = Token::generate().map_err(StoreError::Random)?;
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO subscribers (email, email_key, name, status, token, created_at, updated_at)
             VALUES ($1, $2, $3, 'pending', $4, $5, $5)
             ON CONFLICT (email_key) DO NOTHING RETURNING id",
        )
        .bind(email.as_str())
        .bind(email.key())
        .bind(name.map(SubscriberName::as_str))
        .bind(permanent.as_str())
        .bind(&at)
        .fetch_optional(&mut *tx)
        .await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            pref_columns!(),
            " FROM subscribers WHERE email_key = $1"
        ))
        .bind(email.key())
        .fetch_one(&mut *tx)
        .await?;
        let subscriber = preferences_row(&row)?;

        sqlx::query("DELETE FROM signup_mails WHERE sent_at <= $1")
            .bind(&day_ago)
            .execute(&mut *tx)
            .await?;
        let (mailed,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM signup_mails WHERE subscriber_id = $1 AND sent_at > $2",
        )
        .bind(subscriber.id)
        .bind(&day_ago)
        .fetch_one(&mut *tx)
        .await?;
        if mailed >= SIGNUP_MAILS_PER_DAY {
            tx.commit().await?;
            return Ok(Signup::Throttled);
        }
        sqlx::query("INSERT INTO signup_mails (subscriber_id, sent_at) VALUES ($1, $2)")
            .bind(subscriber.id)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        if subscriber.status == Status::Active {
            tx.commit().await?;
            return Ok(Signup::AlreadyActive(subscriber));
        }
        let (token, expires_at) = insert_confirmation(&mut tx, subscriber.id, name, now).await?;
        tx.commit().await?;
        Ok(Signup::Confirm(Confirmation {
            subscriber_id: subscriber.id,
            name: name.cloned().or(subscriber.name),
            email: subscriber.email,
            token,
            expires_at,
            new: inserted.is_some(),
        }))
    }

    /// A confirmation link for a subscriber an admin added as pending
    /// (`gazette subscribers add`): no per-address limit.
    pub async fn start_confirmation(
        &self,
        subscriber_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(Token, DateTime<Utc>), StoreError> {
        let mut tx = self.write().await?;
        let made = insert_confirmation(&mut tx, subscriber_id, None, now).await?;
        tx.commit().await?;
        Ok(made)
    }

    /// Use a confirmation link: the subscriber becomes active (confirmed
    /// now, the name given with the request applied) and every confirmation
    /// of theirs is consumed. `None` for an unknown, used or expired token;
    /// then nothing changes.
    pub async fn confirm_signup(
        &self,
        token: &Token,
        now: DateTime<Utc>,
    ) -> Result<Option<Preferences>, StoreError> {
        let at = stamp(now);
        let hash = token_hash(token);
        let update = concat!(
            "UPDATE subscribers SET status = 'active', confirmed_at = $2, unsubscribed_at = NULL,
                 name = COALESCE((SELECT c.name FROM confirmations c WHERE c.token_hash = $1), name),
                 updated_at = $2
             WHERE id = (SELECT c.subscriber_id FROM confirmations c
                         WHERE c.token_hash = $1 AND c.expires_at > $2)
               AND erased_at IS NULL
             RETURNING ",
            pref_columns!()
        );
        let Some((mut tx, subscriber)) = self.act_on_token(update, &hash, &at).await? else {
            return Ok(None);
        };
        // A person who had their data erased and now signs up again and
        // confirms has given fresh consent: the suppression entry goes, so
        // the admin tools treat the address like any other again.
        super::suppression::lift(&mut tx, &subscriber.email).await?;
        tx.commit().await?;
        Ok(Some(subscriber))
    }

    /// Who a confirmation link would confirm, without using it: the page
    /// at the link shows this and a button (link scanners fetch links; only
    /// the button's POST confirms). The name is the one given with the
    /// request, else the one on record. `None` exactly when
    /// [`Store::confirm_signup`] would find nothing.
    pub async fn pending_confirmation(
        &self,
        token: &Token,
        now: DateTime<Utc>,
    ) -> Result<Option<Preferences>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id, s.email, COALESCE(c.name, s.name) AS name, s.status, s.format, s.token
             FROM confirmations c JOIN subscribers s ON s.id = c.subscriber_id
             WHERE c.token_hash = $1 AND c.expires_at > $2 AND s.erased_at IS NULL",
        )
        .bind(token_hash(token))
        .bind(stamp(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(preferences_row).transpose()
    }

    /// Unsubscribe the holder of a permanent token (the digest's link and
    /// RFC 8058 one-click). Pending and active subscribers become
    /// unsubscribed and their open confirmations are dropped; unsubscribed
    /// and bounced ones are left as they are, so repeating is harmless.
    /// `None` for an unknown token: nothing changes. An erasure's
    /// suppression stays: only a confirmed sign-up is consent to lift it.
    pub async fn unsubscribe_by_token(
        &self,
        token: &Token,
        now: DateTime<Utc>,
    ) -> Result<Option<Preferences>, StoreError> {
        let at = stamp(now);
        // SET expressions all see the row as it was.
        let update = concat!(
            "UPDATE subscribers SET
                 unsubscribed_at = CASE WHEN status IN ('pending', 'active') THEN $2 ELSE unsubscribed_at END,
                 updated_at = CASE WHEN status IN ('pending', 'active') THEN $2 ELSE updated_at END,
                 status = CASE WHEN status IN ('pending', 'active') THEN 'unsubscribed' ELSE status END
             WHERE token = $1
             RETURNING ",
            pref_columns!()
        );
        let Some((tx, subscriber)) = self.act_on_token(update, token.as_str(), &at).await? else {
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(subscriber))
    }

    /// The first steps of a token's action, in a transaction that starts
    /// with the write: `update` (an `UPDATE subscribers ... RETURNING`
    /// `pref_columns!`, keyed by `$1` = `key`, `$2` = `at`), then every
    /// open confirmation of the subscriber it found is dropped (used, or no
    /// longer wanted). `None`, rolled back, when no row matched. The caller
    /// adds what is its own and commits.
    async fn act_on_token(
        &self,
        update: &'static str,
        key: &str,
        at: &str,
    ) -> Result<Option<(sqlx::Transaction<'static, sqlx::Sqlite>, Preferences)>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(update)
            .bind(key)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let subscriber = preferences_row(&row)?;
        sqlx::query("DELETE FROM confirmations WHERE subscriber_id = $1")
            .bind(subscriber.id)
            .execute(&mut *tx)
            .await?;
        Ok(Some((tx, subscriber)))
    }

    /// The holder of a permanent token, for their pages.
    pub async fn preferences(&self, token: &Token) -> Result<Option<Preferences>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            pref_columns!(),
            " FROM subscribers WHERE token = $1"
        ))
        .bind(token.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(preferences_row).transpose()
    }

    /// Change the name and/or mail format of the holder of a permanent
    /// token. The status is left alone. `None` for an unknown token.
    pub async fn set_preferences(
        &self,
        token: &Token,
        change: &PreferencesChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Preferences>, StoreError> {
        let new_name = change
            .name
            .as_ref()
            .and_then(|n| n.as_ref().map(|n| n.as_str()));
        let row = sqlx::query(concat!(
            "UPDATE subscribers SET
                 name = CASE WHEN $2 THEN $3 ELSE name END,
                 format = COALESCE($4, format),
                 updated_at = $5
             WHERE token = $1
             RETURNING ",
            pref_columns!()
        ))
        .bind(token.as_str())
        .bind(change.name.is_some())
        .bind(new_name)
        .bind(change.format.map(MailFormat::as_str))
        .bind(stamp(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(preferences_row).transpose()
    }
}

/// Add a confirmation for `subscriber_id` inside `tx`, pruning expired ones
/// of anybody on the way.
async fn insert_confirmation(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    subscriber_id: i64,
    name: Option<&SubscriberName>,
    now: DateTime<Utc>,
) -> Result<(Token, DateTime<Utc>), StoreError> {
    let at = stamp(now);
    let expires_at = now + chrono::Duration::from_std(CONFIRM_TTL).unwrap_or_default();
    let token = Token::generate().map_err(StoreError::Random)?;
    sqlx::query("DELETE FROM confirmations WHERE expires_at <= $1")
        .bind(&at)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO confirmations (subscriber_id, token_hash, name, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(subscriber_id)
    .bind(token_hash(&token))
    .bind(name.map(SubscriberName::as_str))
    .bind(&at)
    .bind(stamp(expires_at))
    .execute(&mut **tx)
    .await?;
    Ok((token, expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AddOutcome;
    use crate::subscribers::SubscriberRow;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        (dir, store)
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn email(s: &str) -> SubscriberEmail {
        SubscriberEmail::parse(s).unwrap()
    }

    fn name(s: &str) -> SubscriberName {
        SubscriberName::parse(s).unwrap().unwrap()
    }

    fn confirmation(s: Signup) -> Confirmation {
        match s {
            Signup::Confirm(c) => c,
            other => panic!("expected a confirmation, got {other:?}"),
        }
    }

    /// The subscriber's permanent token (digest links), not a confirmation's.
    async fn permanent_token(store: &Store, e: &str) -> Token {
        store
            .subscriber_by_email(&email(e))
            .await
            .unwrap()
            .unwrap()
            .token
    }

    async fn status(store: &Store, e: &str) -> (String, Option<String>, Option<String>) {
        sqlx::query_as("SELECT status, confirmed_at, name FROM subscribers WHERE email_key = $1")
            .bind(e.to_lowercase())
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_new_address_is_pending_until_its_link_is_used_once() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let c = confirmation(
            store
                .request_signup(&email("Ann@Example.org"), Some(&name("Ann")), now)
                .await
                .unwrap(),
        );
        assert!(c.new);
        assert_eq!(c.expires_at, t("2026-11-27T10:00:00Z"));
        assert_eq!(c.name, Some(name("Ann")));
        assert_eq!(
            status(&store, "ann@example.org").await,
            ("pending".into(), None, Some("Ann".into()))
        );
        // The link's token is not the permanent one and is not stored as is.
        let permanent = permanent_token(&store, "ann@example.org").await;
        assert_ne!(permanent, c.token);
        let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM confirmations")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0].0, c.token.as_str());
        // The permanent token does not confirm.
        assert_eq!(store.confirm_signup(&permanent, now).await.unwrap(), None);
        assert_eq!(
            store.pending_confirmation(&permanent, now).await.unwrap(),
            None
        );
        // Looking at the link changes nothing, however often.
        for _ in 0..2 {
            let seen = store.pending_confirmation(&c.token, now).await.unwrap();
            assert_eq!(
                seen.map(|p| (p.status, p.name)),
                Some((Status::Pending, Some(name("Ann"))))
            );
        }
        assert_eq!(status(&store, "ann@example.org").await.0, "pending");

        let later = t("2026-11-21T09:00:00Z");
        let s = store
            .confirm_signup(&c.token, later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.token, permanent);
        assert_eq!(
            status(&store, "ann@example.org").await,
            (
                "active".into(),
                Some("2026-11-21T09:00:00Z".into()),
                Some("Ann".into())
            )
        );
        // Consumed: a second use is unknown and changes nothing.
        assert_eq!(store.confirm_signup(&c.token, later).await.unwrap(), None);
        assert_eq!(
            store.pending_confirmation(&c.token, later).await.unwrap(),
            None
        );
        let left: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM confirmations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(left.0, 0);
    }

    #[tokio::test]
    async fn an_expired_or_unknown_link_changes_nothing() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let c = confirmation(
            store
                .request_signup(&email("ann@example.org"), None, now)
                .await
                .unwrap(),
        );
        let stranger = Token::generate().unwrap();
        assert_eq!(store.confirm_signup(&stranger, now).await.unwrap(), None);
        let expired = now + chrono::Duration::days(7);
        assert_eq!(store.confirm_signup(&c.token, expired).await.unwrap(), None);
        assert_eq!(
            store.pending_confirmation(&c.token, expired).await.unwrap(),
            None
        );
        assert_eq!(
            status(&store, "ann@example.org").await,
            ("pending".into(), None, None)
        );
        // One second before the end it still works.
        let just_in_time = expired - chrono::Duration::seconds(1);
        assert!(
            store
                .confirm_signup(&c.token, just_in_time)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn known_addresses_keep_their_status_until_they_confirm() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        for (e, st) in [
            ("act@example.org", Status::Active),
            ("left@example.org", Status::Unsubscribed),
            ("dead@example.org", Status::Bounced),
        ] {
            let row = SubscriberRow {
                email: email(e),
                name: Some(name("Old Name")),
                status: st,
            };
            assert!(matches!(
                store.add_subscriber(&row, now).await.unwrap(),
                AddOutcome::Added(_)
            ));
        }
        // Active: nothing changes, no confirmation.
        let Signup::AlreadyActive(p) = store
            .request_signup(&email("ACT@example.org"), Some(&name("New")), now)
            .await
            .unwrap()
        else {
            panic!("active address")
        };
        assert_eq!(p.name, Some(name("Old Name")));
        assert_eq!(status(&store, "act@example.org").await.0, "active");

        // Unsubscribed: stays so until the link is used; the new name waits.
        let c = confirmation(
            store
                .request_signup(&email("left@example.org"), Some(&name("New")), now)
                .await
                .unwrap(),
        );
        assert!(!c.new);
        assert_eq!(
            status(&store, "left@example.org").await,
            ("unsubscribed".into(), None, Some("Old Name".into()))
        );
        let s = store.confirm_signup(&c.token, now).await.unwrap().unwrap();
        assert_eq!((s.status, s.name), (Status::Active, Some(name("New"))));
        let (unsub_at,): (Option<String>,) =
            sqlx::query_as("SELECT unsubscribed_at FROM subscribers WHERE id = $1")
                .bind(s.id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(unsub_at, None);

        // Bounced: a blank name keeps the old one on confirmation.
        let c = confirmation(
            store
                .request_signup(&email("dead@example.org"), None, now)
                .await
                .unwrap(),
        );
        assert_eq!(status(&store, "dead@example.org").await.0, "bounced");
        let s = store.confirm_signup(&c.token, now).await.unwrap().unwrap();
        assert_eq!((s.status, s.name), (Status::Active, Some(name("Old Name"))));
    }

    #[tokio::test]
    async fn a_pending_address_gets_fresh_links_up_to_the_daily_limit() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let mut tokens = Vec::new();
        for i in 0..SIGNUP_MAILS_PER_DAY {
            let at = now + chrono::Duration::minutes(i);
            let c = confirmation(
                store
                    .request_signup(&email("ann@example.org"), None, at)
                    .await
                    .unwrap(),
            );
            assert_eq!(c.new, i == 0);
            tokens.push(c.token);
        }
        let over = now + chrono::Duration::hours(1);
        assert_eq!(
            store
                .request_signup(&email("ann@example.org"), None, over)
                .await
                .unwrap(),
            Signup::Throttled
        );
        // A day later the address can be mailed again.
        let next_day = now + chrono::Duration::hours(25);
        assert!(matches!(
            store
                .request_signup(&email("ann@example.org"), None, next_day)
                .await
                .unwrap(),
            Signup::Confirm(_)
        ));
        // Any of the earlier links works (until it expires); using one
        // consumes them all.
        assert!(
            store
                .confirm_signup(&tokens[1], over)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.confirm_signup(&tokens[0], over).await.unwrap(), None);
    }

    #[tokio::test]
    async fn tokens_act_only_on_their_own_subscriber() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let mut who = Vec::new();
        for e in ["ann@example.org", "bob@example.org"] {
            let row = SubscriberRow {
                email: email(e),
                name: None,
                status: Status::Active,
            };
            let AddOutcome::Added(s) = store.add_subscriber(&row, now).await.unwrap() else {
                panic!()
            };
            who.push(s);
        }
        let change = PreferencesChange {
            name: Some(Some(name("Ann Lee"))),
            format: Some(MailFormat::Text),
        };
        let p = store
            .set_preferences(&who[0].token, &change, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.email.as_str(), p.format, p.name.clone()),
            ("ann@example.org", MailFormat::Text, Some(name("Ann Lee")))
        );
        let bob = store.preferences(&who[1].token).await.unwrap().unwrap();
        assert_eq!((bob.format, bob.name), (MailFormat::Html, None));

        // Leaving fields out leaves them as they are; Some(None) clears the name.
        let p = store
            .set_preferences(&who[0].token, &PreferencesChange::default(), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.format, p.name.clone()),
            (MailFormat::Text, Some(name("Ann Lee")))
        );
        let p = store
            .set_preferences(
                &who[0].token,
                &PreferencesChange {
                    name: Some(None),
                    format: None,
                },
                now,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.name, None);

        let stranger = Token::generate().unwrap();
        assert_eq!(store.preferences(&stranger).await.unwrap(), None);
        assert_eq!(
            store
                .set_preferences(&stranger, &change, now)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.unsubscribe_by_token(&stranger, now).await.unwrap(),
            None
        );

        let later = t("2026-11-22T10:00:00Z");
        let p = store
            .unsubscribe_by_token(&who[1].token, later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.email.as_str(), p.status),
            ("bob@example.org", Status::Unsubscribed)
        );
        // Again: harmless, the first time is kept.
        let again = t("2026-11-23T10:00:00Z");
        store
            .unsubscribe_by_token(&who[1].token, again)
            .await
            .unwrap()
            .unwrap();
        let bob = store
            .subscriber_by_email(&email("bob@example.org"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob.unsubscribed_at.as_deref(), Some("2026-11-22T10:00:00Z"));
        let ann = store.preferences(&who[0].token).await.unwrap().unwrap();
        assert_eq!(ann.status, Status::Active);
    }

    #[tokio::test]
    async fn unsubscribing_drops_open_confirmations() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let c = confirmation(
            store
                .request_signup(&email("ann@example.org"), None, now)
                .await
                .unwrap(),
        );
        let permanent = permanent_token(&store, "ann@example.org").await;
        let p = store
            .unsubscribe_by_token(&permanent, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.status, Status::Unsubscribed);
        assert_eq!(store.confirm_signup(&c.token, now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn unsubscribing_does_not_lift_an_erasure() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let row = SubscriberRow {
            email: email("ann@example.org"),
            name: Some(name("Ann")),
            status: Status::Active,
        };
        store.add_subscriber(&row, now).await.unwrap();
        store
            .erase_subscriber_by_email(&email("ann@example.org"), now)
            .await
            .unwrap();
        // Anyone can put the address into the form: a pending row, not yet
        // anybody's consent.
        confirmation(
            store
                .request_signup(&email("ann@example.org"), None, now)
                .await
                .unwrap(),
        );
        let permanent = permanent_token(&store, "ann@example.org").await;
        let p = store
            .unsubscribe_by_token(&permanent, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.status, Status::Unsubscribed);
        assert!(
            store
                .is_suppressed(&email("ann@example.org"))
                .await
                .unwrap(),
            "only a confirmed sign-up lifts the suppression"
        );
    }

    #[tokio::test]
    async fn erasure_voids_open_confirmation_links_and_their_names() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let c = confirmation(
            store
                .request_signup(&email("ann@example.org"), Some(&name("Ann Lee")), now)
                .await
                .unwrap(),
        );
        store.erase_subscriber(c.subscriber_id, now).await.unwrap();
        let (left,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM confirmations WHERE subscriber_id = $1")
                .bind(c.subscriber_id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(left, 0, "the name given with the request is personal data");
        assert_eq!(store.confirm_signup(&c.token, now).await.unwrap(), None);
        let (status, name): (String, Option<String>) =
            sqlx::query_as("SELECT status, name FROM subscribers WHERE id = $1")
                .bind(c.subscriber_id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((status.as_str(), name), ("unsubscribed", None));
    }

    #[tokio::test]
    async fn admins_can_start_a_confirmation_without_the_limit() {
        let (_d, store) = store().await;
        let now = t("2026-11-20T10:00:00Z");
        let row = SubscriberRow {
            email: email("ann@example.org"),
            name: None,
            status: Status::Pending,
        };
        let AddOutcome::Added(s) = store.add_subscriber(&row, now).await.unwrap() else {
            panic!()
        };
        for _ in 0..SIGNUP_MAILS_PER_DAY + 2 {
            store.start_confirmation(s.id, now).await.unwrap();
        }
        let (token, _) = store.start_confirmation(s.id, now).await.unwrap();
        let p = store.confirm_signup(&token, now).await.unwrap().unwrap();
        assert_eq!(p.status, Status::Active);
    }
}
