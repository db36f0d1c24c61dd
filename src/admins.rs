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

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};

use crate::subscribers::{EmailError, SubscriberEmail};

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
        Argon2::default()
            .hash_password(self.0.as_bytes())
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
        Argon2::default()
            .hash_password(&pw)
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
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
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
    fn addresses_are_keyed_in_any_case() {
        let a = AdminEmail::parse(" Editor@Example.ORG ").unwrap();
        assert_eq!(a.key(), "editor@example.org");
        assert!(AdminEmail::parse("no at sign").is_err());
    }
}
