//! DKIM keys for `[mail.dkim]`: read the formats people actually have and hand
//! lettre the ones it takes (RSA as PKCS#1 PEM, Ed25519 as the base64 seed).
//!
//! The key file named by `[mail.dkim]` is read here, not by config (which
//! only checks the settings): [`DkimKey::load`] reads and parses it, and its
//! errors say where `mail.dkim.key_file` was set and which file it names, so a
//! bad key reads like any other config mistake. The CLI calls it right after
//! loading the config, so every command refuses a bad key before it starts;
//! [`signer`] (used by `Sender::from_config`) gets that same key, read
//! once per process.
//!
//! OpenSSL 3 writes PKCS#8 (`BEGIN PRIVATE KEY`) by default for both RSA and
//! Ed25519, so PKCS#8 is unwrapped here (a few lines of DER) instead of asking
//! admins to convert.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey, DkimSigningKeyError,
};
use lettre::message::header::HeaderName;

use crate::config::{DkimSettings, Origin};

/// Headers covered by the signature. RFC 8058 requires List-Unsubscribe and
/// List-Unsubscribe-Post to be signed for one-click unsubscribe.
pub const SIGNED_HEADERS: [&str; 7] = [
    "From",
    "Subject",
    "To",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// A checked private key, in the form lettre reads. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub algorithm: DkimAlgorithm,
    /// PKCS#1 PEM (RSA) or base64 of the 32-byte seed (Ed25519).
    material: String,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DkimKey({:?}, <redacted>)", self.algorithm)
    }
}

/// A key file that cannot be used, named like a config mistake: where
/// `mail.dkim.key_file` was set, and the file it names.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{origin}: mail.dkim.key_file: cannot read {}: {source}", path.display())]
    Read {
        origin: Origin,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: mail.dkim.key_file: {}: {problem}", path.display())]
    Key {
        origin: Origin,
        path: PathBuf,
        problem: Box<KeyError>,
    },
    /// lettre refused a key that parsed (not expected: parsing asks lettre).
    #[error("mail.dkim.key_file {}: cannot sign with it: {reason}", path.display())]
    Sign {
        path: PathBuf,
        reason: DkimSigningKeyError,
    },
}

/// Why a key file's text is not a key gazette can sign with.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key is encrypted; store it without a passphrase")]
    Encrypted,
    #[error("not a PKCS#8 private key; {}", HINT)]
    NotPkcs8,
    #[error("a malformed Ed25519 key")]
    MalformedEd25519,
    #[error("an unsupported key type; {}", HINT)]
    Unsupported,
    #[error("not a private key; {}", HINT)]
    NotAKey,
    /// lettre's reason is kept out of the error chain: its own causes
    /// (ASN.1 details) would only add noise to the message.
    #[error("not a valid {algorithm:?} private key ({reason})")]
    Invalid {
        algorithm: DkimAlgorithm,
        reason: DkimSigningKeyError,
    },
    #[error("no `{0}` line")]
    NoPemEnd(String),
    #[error("the PEM body is not base64 ({reason})")]
    NotBase64 { reason: base64::DecodeError },
}

impl DkimKey {
    /// Read and parse the key file `[mail.dkim]` names, once per process:
    /// later calls for the same file get the key read first. The CLI loads
    /// it when a command starts; a `serve` that runs for weeks then keeps
    /// signing with that key even if the file is replaced, half-written or
    /// removed meanwhile (re-reading it per cycle would fail every message
    /// of that cycle instead). A new key takes effect at the next start.
    pub fn load(settings: &DkimSettings) -> Result<DkimKey, KeyFileError> {
        static LOADED: Mutex<BTreeMap<PathBuf, DkimKey>> = Mutex::new(BTreeMap::new());
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = loaded.get(&settings.key_file) {
            return Ok(key.clone());
        }
        let key = DkimKey::read(settings)?;
        loaded.insert(settings.key_file.clone(), key.clone());
        Ok(key)
    }

    fn read(settings: &DkimSettings) -> Result<DkimKey, KeyFileError> {
        let path = &settings.key_file;
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            origin: settings.key_file_origin.clone(),
            path: path.clone(),
            source,
        })?;
        parse_key(&text).map_err(|problem| KeyFileError::Key {
            origin: settings.key_file_origin.clone(),
            path: path.clone(),
            problem: Box::new(problem),
        })
    }

    pub fn signing_key(&self) -> Result<DkimSigningKey, DkimSigningKeyError> {
        let alg = match self.algorithm {
            DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
            DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
        };
        DkimSigningKey::new(&self.material, alg)
    }
}

/// lettre's signing configuration: relaxed/relaxed over [`SIGNED_HEADERS`].
pub fn signing_config(
    selector: &str,
    domain: &str,
    key: &DkimKey,
) -> Result<DkimConfig, DkimSigningKeyError> {
    Ok(DkimConfig::new(
        selector.to_string(),
        domain.to_string(),
        key.signing_key()?,
        SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// The signing configuration for `[mail.dkim]`: its key file read and parsed.
pub fn signer(settings: &DkimSettings) -> Result<DkimConfig, KeyFileError> {
    let key = DkimKey::load(settings)?;
    signing_config(&settings.selector, &settings.domain, &key).map_err(|reason| {
        KeyFileError::Sign {
            path: settings.key_file.clone(),
            reason,
        }
    })
}

const HINT: &str = "expected an RSA private key (PEM, PKCS#1 or PKCS#8) or an Ed25519 key (PKCS#8 PEM or the base64 32-byte seed)";

/// Read a private key file's text.
pub fn parse_key(text: &str) -> Result<DkimKey, KeyError> {
    let text = text.trim();
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return checked(DkimAlgorithm::Rsa, text.to_string());
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(KeyError::Encrypted);
    }
    if let Some(der) = pem_body(text, "PRIVATE KEY") {
        let der = der?;
        let (oid, key) = pkcs8(&der).ok_or(KeyError::NotPkcs8)?;
        return match oid {
            OID_RSA => checked(DkimAlgorithm::Rsa, pem("RSA PRIVATE KEY", key)),
            OID_ED25519 => {
                // CurvePrivateKey ::= OCTET STRING (the 32-byte seed)
                let (tag, seed, _) = tlv(key).ok_or(KeyError::MalformedEd25519)?;
                if tag != 0x04 || seed.len() != 32 {
                    return Err(KeyError::MalformedEd25519);
                }
                checked(DkimAlgorithm::Ed25519, STANDARD.encode(seed))
            }
            _ => Err(KeyError::Unsupported),
        };
    }
    if text.starts_with("-----BEGIN") {
        return Err(KeyError::NotAKey);
    }
    match STANDARD.decode(text.as_bytes()) {
        Ok(seed) if seed.len() == 32 => checked(DkimAlgorithm::Ed25519, text.to_string()),
        _ => Err(KeyError::NotAKey),
    }
}

fn checked(algorithm: DkimAlgorithm, material: String) -> Result<DkimKey, KeyError> {
    let key = DkimKey {
        algorithm,
        material,
    };
    key.signing_key()
        .map_err(|reason| KeyError::Invalid { algorithm, reason })?;
    Ok(key)
}

/// The decoded body of the first `-----BEGIN {label}-----` block, if there is one.
fn pem_body(text: &str, label: &str) -> Option<Result<Vec<u8>, KeyError>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let Some(len) = text[start..].find(&end) else {
        return Some(Err(KeyError::NoPemEnd(end)));
    };
    let b64: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some(
        STANDARD
            .decode(b64.as_bytes())
            .map_err(|reason| KeyError::NotBase64 { reason }),
    )
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE { OID, params },
/// privateKey OCTET STRING }: the algorithm OID and the private key bytes.
fn pkcs8(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, info, _) = tlv(der)? else {
        return None;
    };
    let (0x02, _version, rest) = tlv(info)? else {
        return None;
    };
    let (0x30, alg, rest) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(alg)? else {
        return None;
    };
    let (0x04, key, _) = tlv(rest)? else {
        return None;
    };
    Some((oid, key))
}

/// One DER tag-length-value: (tag, value, the bytes after it).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (value, after) = rest.split_at(len);
    Some((tag, value, after))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// A fresh key from the real openssl, into a temp dir (no keys in the repo).
    pub(crate) fn openssl_key(dir: &std::path::Path, args: &[&str], name: &str) -> String {
        let path = dir.join(name);
        let out = Command::new("openssl")
            .args(args)
            .arg("-out")
            .arg(&path)
            .output()
            .expect("openssl is needed for the DKIM tests (apt-get install openssl)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn reads_rsa_pkcs8_pkcs1_and_ed25519() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 = openssl_key(
            dir.path(),
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
            ],
            "rsa8.pem",
        );
        assert!(pkcs8.contains("BEGIN PRIVATE KEY"));
        assert_eq!(parse_key(&pkcs8).unwrap().algorithm, DkimAlgorithm::Rsa);

        let out = Command::new("openssl")
            .args(["rsa", "-traditional", "-in"])
            .arg(dir.path().join("rsa8.pem"))
            .output()
            .unwrap();
        let pkcs1 = String::from_utf8(out.stdout).unwrap();
        assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
        assert_eq!(parse_key(&pkcs1).unwrap().algorithm, DkimAlgorithm::Rsa);

        let ed = openssl_key(dir.path(), &["genpkey", "-algorithm", "ed25519"], "ed.pem");
        let key = parse_key(&ed).unwrap();
        assert_eq!(key.algorithm, DkimAlgorithm::Ed25519);
        assert!(!format!("{key:?}").contains(&key.material));
        // lettre's own form: the base64 seed.
        assert_eq!(parse_key(&key.material).unwrap(), key);
    }

    /// `[mail.dkim]` from a config.toml in `dir`, as the loader checked it.
    fn settings(dir: &std::path::Path, dkim: &str) -> DkimSettings {
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[publication]\ntitle = \"T\"\nbase_url = \"https://example.org/\"\n[mail]\nfrom = \"Ledger <news@Example.org>\"\n[mail.dkim]\n{dkim}"
            ),
        )
        .unwrap();
        let config = crate::config::Config::load_with_env(&path, &[]).unwrap();
        config.mail.dkim.unwrap()
    }

    #[test]
    fn the_key_file_is_read_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        openssl_key(
            &dir.path().join("keys"),
            &["genpkey", "-algorithm", "ed25519"],
            "dkim.pem",
        );
        let d = settings(
            dir.path(),
            "selector = \"s1\"\nkey_file = \"keys/dkim.pem\"\n",
        );
        let key = DkimKey::load(&d).unwrap();
        assert_eq!(key.algorithm, DkimAlgorithm::Ed25519);
        assert!(!format!("{key:?}").contains("BEGIN"));
        assert!(signer(&d).is_ok());
        // Read once per process: a file replaced or removed later does not
        // stop a running serve from signing with the key it started with.
        std::fs::write(&d.key_file, "not a key").unwrap();
        assert_eq!(DkimKey::load(&d).unwrap(), key);
        std::fs::remove_file(&d.key_file).unwrap();
        assert!(signer(&d).is_ok());
        assert!(DkimKey::read(&d).is_err());
    }

    #[test]
    fn key_file_problems_name_the_key_its_line_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = settings(
            dir.path(),
            "selector = \"s1\"\nkey_file = \"missing.pem\"\n",
        );
        let e = DkimKey::load(&d).unwrap_err().to_string();
        assert!(
            e.contains("config.toml:8: mail.dkim.key_file: cannot read")
                && e.contains(&dir.path().join("missing.pem").display().to_string()),
            "{e}"
        );
        assert_eq!(signer(&d).unwrap_err().to_string(), e);

        std::fs::write(
            dir.path().join("bad.pem"),
            "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let d = settings(dir.path(), "selector = \"s1\"\nkey_file = \"bad.pem\"\n");
        let e = DkimKey::load(&d).unwrap_err().to_string();
        let bad = dir.path().join("bad.pem").display().to_string();
        assert!(
            e.contains(&format!("config.toml:8: mail.dkim.key_file: {bad}: "))
                && e.contains("not a valid Rsa private key"),
            "{e}"
        );
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        for bad in [
            "",
            "hello",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nMAA=\n",
            "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----",
        ] {
            assert!(parse_key(bad).is_err(), "{bad:?}");
        }
        // The words people see.
        for (bad, says) in [
            ("hello", format!("not a private key; {HINT}")),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----",
                "the key is encrypted; store it without a passphrase".into(),
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                format!("not a PKCS#8 private key; {HINT}"),
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nMAA=\n",
                "no `-----END PRIVATE KEY-----` line".into(),
            ),
        ] {
            assert_eq!(parse_key(bad).unwrap_err().to_string(), says, "{bad:?}");
        }
        let e = parse_key("-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("not a valid Rsa private key ("), "{e}");
        let e = parse_key("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("the PEM body is not base64 ("), "{e}");
    }
}
