//! Admin accounts for the console: who may sign in, and how a password is
//! kept and checked.
//!
//! An admin is an address and a password. The address is parsed like a
//! subscriber's (one spelling per person: the key is lowercased, the domain
//! IDNA-normalized), the password only has a length rule: at least 12
//! characters (NIST 800-63B: length, not composition rules), at most 1,024
//! (Argon2 takes any length, but a megabyte "password" is a cheap way to
//! make the server work). Passwords are stored as Argon2id PHC strings with
//! a random salt; verifying an unknown account still runs Argon2 once
//! against a fixed hash, so the answer's timing does not say which
//! addresses are admins.

use std::sync::Mutex;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};

use crate::subscribers::{EmailError, SubscriberEmail};

/// Argon2id with 7 MiB and 5 passes: one of the settings OWASP's password
/// storage sheet lists as equal in strength to the crate's default (19 MiB,
/// 2 passes), chosen for the smaller buffer, since the daemon runs in a
/// small memory budget (under 60 MB while it mails a million: issue 12)
/// and a sign-in's buffer was most of its peak. A stored hash is checked
/// with the parameters written in it, so older hashes still verify.
fn argon2() -> Argon2<'static> {
    match Params::new(7 * 1024, 5, 1, None) {
        Ok(params) => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        // The constants are valid (a test says so); never weaker than this.
        Err(_) => Argon2::default(),
    }
}

/// One Argon2 run at a time in the process: each holds its whole memory
/// buffer, so a burst of sign-in attempts from many addresses (the
/// throttle is per address) queues here instead of taking 7 MiB apiece.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time<T>(f: impl FnOnce() -> T) -> T {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f()
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted.
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{input:?} is not an address: {source}")]
    Email { input: String, source: EmailError },
    #[error("the password is too short: at least {MIN_PASSWORD_CHARS} characters, got {0}")]
    PasswordTooShort(usize),
    #[error("the password is too long: at most {MAX_PASSWORD_CHARS} characters")]
    PasswordTooLong,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// An admin's sign-in address, parsed: `key()` is what identifies the
/// account (any case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEmail(SubscriberEmail);

impl AdminEmail {
    pub fn parse(input: &str) -> Result<AdminEmail, AdminError> {
        SubscriberEmail::parse(input.trim())
            .map(AdminEmail)
            .map_err(|source| AdminError::Email {
                input: input.to_string(),
                source,
            })
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The account's key: lowercased, one per address.
    pub fn key(&self) -> String {
        self.0.key()
    }
}

impl std::fmt::Display for AdminEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new password that meets the length rule. Its `Debug` shows nothing,
/// so it cannot reach a log by accident.
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(…)")
    }
}

impl NewPassword {
    /// Surrounding line breaks (of a line read from stdin) are not part of
    /// the password; everything else, spaces included, is.
    pub fn parse(input: &str) -> Result<NewPassword, AdminError> {
        let p = input.trim_end_matches(['\r', '\n']);
        let n = p.chars().count();
        if n < MIN_PASSWORD_CHARS {
            return Err(AdminError::PasswordTooShort(n));
        }
        if n > MAX_PASSWORD_CHARS {
            return Err(AdminError::PasswordTooLong);
        }
        Ok(NewPassword(p.to_string()))
    }

    /// The Argon2id PHC string (`$argon2id$v=19$m=...`) with a fresh salt.
    pub fn hash(&self) -> Result<String, AdminError> {
        one_at_a_time(|| argon2().hash_password(self.0.as_bytes()))
            .map(|h| h.to_string())
            .map_err(|e| AdminError::Hash(e.to_string()))
    }
}

/// A stored hash that every failed lookup is checked against, so an
/// unknown address costs the same Argon2 run as a known one. Computed once
/// (it is a hash of a random password nobody knows).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut pw = [0u8; 24];
        // Without OS randomness the decoy is a fixed string: it still
        // matches no password anyone types, which is all it is for.
        let _ = getrandom::fill(&mut pw);
        one_at_a_time(|| argon2().hash_password(&pw))
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Does `password` match the stored PHC string? `None` (no such account)
/// runs Argon2 against a decoy and answers false. A stored value that is
/// not a PHC string matches nothing.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (decoy_hash(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    one_at_a_time(|| argon2().verify_password(password.as_bytes(), &parsed)).is_ok() && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_a_length_rule_and_verify_only_themselves() {
        assert!(matches!(
            NewPassword::parse("short pass\n"),
            Err(AdminError::PasswordTooShort(10))
        ));
        assert!(NewPassword::parse(&"x".repeat(1025)).is_err());
        // Twelve characters, not bytes.
        let p = NewPassword::parse("ÿÿÿÿÿÿÿÿÿÿÿÿ\r\n").unwrap();
        let h = p.hash().unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("ÿÿÿÿÿÿÿÿÿÿÿÿ", Some(&h)));
        assert!(!verify("ÿÿÿÿÿÿÿÿÿÿÿ", Some(&h)));
        assert!(!verify("ÿÿÿÿÿÿÿÿÿÿÿÿ", None));
        assert!(!verify("ÿÿÿÿÿÿÿÿÿÿÿÿ", Some("not a hash")));
        // Two hashes of one password differ (a fresh salt each time).
        assert_ne!(h, p.hash().unwrap());
        assert_eq!(format!("{p:?}"), "NewPassword(…)");
    }

    #[test]
    fn new_hashes_use_the_small_buffer_and_older_ones_still_verify() {
        assert!(Params::new(7 * 1024, 5, 1, None).is_ok());
        let p = NewPassword::parse("correct horse battery").unwrap();
        let h = p.hash().unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        // A hash made with the crate's default (19 MiB, 2 passes), as
        // gazette stored them before: checked with its own parameters.
        let old = Argon2::default()
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(verify("correct horse battery", Some(&old)));
        assert!(!verify("correct horse batterY", Some(&old)));
    }

    #[test]
    fn addresses_are_keyed_in_any_case() {
        let a = AdminEmail::parse(" Editor@Example.ORG ").unwrap();
        assert_eq!(a.key(), "editor@example.org");
        assert!(AdminEmail::parse("no at sign").is_err());
    }
}
