//! The suppression list: addresses erased at the person's request, kept
//! only as a keyed hash so no import or admin add brings them back.
//!
//! The key is random per database (created by migration 0005, in `meta`);
//! the hash is keyed BLAKE3 of the address's uniqueness key (the lowercased
//! address), so case never matters and the address itself is never stored.
//! Erasure (`roster.rs`) adds an entry, imports (`subscribers.rs`) and admin
//! adds check it in the same transaction as their insert, and only a
//! confirmed sign-up (`signup.rs`) lifts it. These helpers take a
//! connection so that each caller keeps its own transaction.

use std::collections::HashSet;

use sqlx::sqlite::SqliteConnection;

use super::{Store, StoreError};
use crate::subscribers::SubscriberEmail;

/// The key suppression hashes are made with (random per database, created
/// by migration 0005).
pub(super) async fn suppression_key(conn: &mut SqliteConnection) -> Result<[u8; 32], StoreError> {
    meta_key(conn, "suppression_key").await
}

/// A 32-byte key kept in `meta` as 64 hex digits (made by a migration).
pub(super) async fn meta_key(
    conn: &mut SqliteConnection,
    name: &str,
) -> Result<[u8; 32], StoreError> {
    let hex: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    let corrupt = || StoreError::Corrupt {
        what: format!("meta.{name} is missing or not 64 hex digits"),
    };
    let hex = hex.ok_or_else(corrupt)?.0;
    let mut key = [0u8; 32];
    if hex.len() != 64 {
        return Err(corrupt());
    }
    for (i, byte) in key.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).ok_or_else(corrupt)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| corrupt())?;
    }
    Ok(key)
}

/// The suppression hash of an address: keyed BLAKE3 of its uniqueness key
/// (the lowercased address), so case never matters and the address itself
/// is never stored.
pub(super) fn address_hash(key: &[u8; 32], email: &SubscriberEmail) -> String {
    key_hash(key, &email.key())
}

fn key_hash(key: &[u8; 32], email_key: &str) -> String {
    blake3::keyed_hash(key, email_key.as_bytes())
        .to_hex()
        .to_string()
}

/// Which of `hashes` are suppressed.
pub(super) async fn suppressed_among(
    conn: &mut SqliteConnection,
    hashes: &[String],
) -> Result<HashSet<String>, StoreError> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let list = serde_json::Value::from(hashes.to_vec()).to_string();
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT address_hash FROM suppressions WHERE address_hash IN (SELECT value FROM json_each($1))",
    )
    .bind(list)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}

/// Is this one address suppressed?
pub(super) async fn is_suppressed_on(
    conn: &mut SqliteConnection,
    email: &SubscriberEmail,
) -> Result<bool, StoreError> {
    is_key_suppressed(conn, &email.key()).await
}

/// Is the address whose uniqueness key is `email_key` (as a row holds it)
/// suppressed?
pub(super) async fn is_key_suppressed(
    conn: &mut SqliteConnection,
    email_key: &str,
) -> Result<bool, StoreError> {
    let key = suppression_key(conn).await?;
    let hash = key_hash(&key, email_key);
    Ok(!suppressed_among(conn, &[hash]).await?.is_empty())
}

/// Why an address is suppressed (`suppressions.reason`, migration 0007).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// Erased at the person's request.
    Erased,
    /// They complained of spam (an ARF report).
    Complaint,
}

/// Suppress the address whose uniqueness key is `email_key` (read from the
/// row), as of `at`; an entry already there stays as it is.
pub(super) async fn suppress(
    conn: &mut SqliteConnection,
    email_key: &str,
    at: &str,
    reason: Reason,
) -> Result<(), StoreError> {
    let key = suppression_key(conn).await?;
    sqlx::query(
        "INSERT INTO suppressions (address_hash, erased_at, reason) VALUES ($1, $2, $3) ON CONFLICT (address_hash) DO NOTHING",
    )
    .bind(key_hash(&key, email_key))
    .bind(at)
    .bind(match reason {
        Reason::Erased => "erased",
        Reason::Complaint => "complaint",
    })
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Lift the suppression of an address (a confirmed sign-up: the person's
/// fresh consent).
pub(super) async fn lift(
    conn: &mut SqliteConnection,
    email: &SubscriberEmail,
) -> Result<(), StoreError> {
    let key = suppression_key(conn).await?;
    sqlx::query("DELETE FROM suppressions WHERE address_hash = $1")
        .bind(address_hash(&key, email))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Was this address erased at the person's request?
    pub async fn is_suppressed(&self, email: &SubscriberEmail) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        is_suppressed_on(&mut conn, email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> SubscriberEmail {
        SubscriberEmail::parse(s).unwrap()
    }

    #[tokio::test]
    async fn an_address_is_suppressed_by_its_hash_in_any_case_until_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let ann = email("Ann@Example.org");
        assert!(!store.is_suppressed(&ann).await.unwrap());

        suppress(
            &mut conn,
            &ann.key(),
            "2026-01-01T00:00:00Z",
            Reason::Erased,
        )
        .await
        .unwrap();
        assert!(
            store
                .is_suppressed(&email("ann@EXAMPLE.ORG"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .is_suppressed(&email("bob@example.org"))
                .await
                .unwrap()
        );
        let key = suppression_key(&mut conn).await.unwrap();
        let hashes = [
            address_hash(&key, &ann),
            address_hash(&key, &email("bob@example.org")),
        ];
        let found = suppressed_among(&mut conn, &hashes).await.unwrap();
        assert_eq!(found, HashSet::from([hashes[0].clone()]));
        let (stored,): (String,) = sqlx::query_as("SELECT address_hash FROM suppressions")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(!stored.to_lowercase().contains("ann"), "{stored}");

        // Twice is one entry; lifting removes it.
        suppress(
            &mut conn,
            &ann.key(),
            "2026-01-02T00:00:00Z",
            Reason::Erased,
        )
        .await
        .unwrap();
        lift(&mut conn, &email("ANN@example.org")).await.unwrap();
        assert!(!store.is_suppressed(&ann).await.unwrap());
    }
}
