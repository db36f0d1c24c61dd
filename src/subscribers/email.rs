//! `SubscriberEmail`: an address that is safe to put in a `To:` header and to
//! hand to the mailer.

use std::fmt;

/// The longest address accepted (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_CHARS: usize = 254;
/// The longest local part (RFC 5321, 4.5.3.1.1).
pub const MAX_LOCAL_CHARS: usize = 64;
/// The longest domain label (RFC 1035).
pub const MAX_LABEL_CHARS: usize = 63;

/// A checked, normalized email address: the domain is lowercased, the local
/// part is kept as given. Two addresses are the same subscriber when their
/// [`key`](SubscriberEmail::key)s are equal (case-insensitive on the whole
/// address).
///
/// Non-ASCII domains (IDN) are accepted and kept in Unicode, lowercased; their
/// labels may hold any Unicode letters and digits. Non-ASCII letters and digits
/// are accepted in the local part too (RFC 6531); the mailer needs SMTPUTF8
/// for those.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SubscriberEmail(String);

/// Why a string is not an acceptable address. The messages say what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("is {0} characters long; the limit is 254")]
    TooLong(usize),
    #[error("contains a line break")]
    LineBreak,
    #[error("contains a control character ({0})")]
    Control(String),
    #[error("contains whitespace")]
    Whitespace,
    #[error("contains {0:?}, which an address may not")]
    Forbidden(char),
    #[error("missing @")]
    MissingAt,
    #[error("contains more than one @")]
    SeveralAt,
    #[error("nothing before the @")]
    EmptyLocal,
    #[error("nothing after the @")]
    EmptyDomain,
    #[error("the part before the @ is {0} characters long; the limit is 64")]
    LocalTooLong(usize),
    #[error("the part before the @ {0}")]
    LocalDots(&'static str),
    #[error("the part before the @ contains {0:?}, which an address may not")]
    LocalChar(char),
    #[error("the domain {0:?} has no dot")]
    NoDot(String),
    #[error("the domain {0:?} has an empty label (two dots in a row, or a dot at an end)")]
    EmptyLabel(String),
    #[error("the domain label {0:?} starts or ends with '-'")]
    LabelHyphen(String),
    #[error("the domain label {0:?} is longer than 63 characters")]
    LabelTooLong(String),
    #[error("the domain contains {0:?}; only letters, digits, '-' and '.' are allowed")]
    DomainChar(char),
    #[error("the mailer refuses it ({0})")]
    Mailer(String),
}

/// How a character that may not appear is named in messages: `U+0009` for
/// invisible ones.
pub(crate) fn describe_control(c: char) -> String {
    match c {
        '\t' => "a tab".to_string(),
        '\0' => "NUL".to_string(),
        '\u{7f}' => "DEL".to_string(),
        _ => format!("U+{:04X}", c as u32),
    }
}

/// A line break in any form: CR, LF and the Unicode line and paragraph
/// separators (also NEL, which is a C1 control).
pub(crate) fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\r' | '\n' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Characters of RFC 5322 `atext` besides letters and digits.
const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<SubscriberEmail, EmailError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        // Characters that could smuggle a header or a recipient come first, so
        // the message names the real danger.
        if s.chars().any(is_line_break) {
            return Err(EmailError::LineBreak);
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(EmailError::Control(describe_control(c)));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(EmailError::Whitespace);
        }
        if let Some(c) = s.chars().find(|c| "<>,;\"()".contains(*c)) {
            return Err(EmailError::Forbidden(c));
        }
        let len = s.chars().count();
        if len > MAX_EMAIL_CHARS {
            return Err(EmailError::TooLong(len));
        }
        let (local, domain) = s.split_once('@').ok_or(EmailError::MissingAt)?;
        if domain.contains('@') {
            return Err(EmailError::SeveralAt);
        }
        if local.is_empty() {
            return Err(EmailError::EmptyLocal);
        }
        if domain.is_empty() {
            return Err(EmailError::EmptyDomain);
        }
        check_local(local)?;
        let domain = domain.to_lowercase();
        check_domain(&domain)?;
        // Whatever passed must also be an address the mailer takes.
        lettre::Address::new(local, &domain).map_err(|e| EmailError::Mailer(e.to_string()))?;
        Ok(SubscriberEmail(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: the whole address lowercased (Unicode-aware).
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

fn check_local(local: &str) -> Result<(), EmailError> {
    let len = local.chars().count();
    if len > MAX_LOCAL_CHARS {
        return Err(EmailError::LocalTooLong(len));
    }
    if local.starts_with('.') {
        return Err(EmailError::LocalDots("starts with a dot"));
    }
    if local.ends_with('.') {
        return Err(EmailError::LocalDots("ends with a dot"));
    }
    if local.contains("..") {
        return Err(EmailError::LocalDots("has two dots in a row"));
    }
    match local
        .chars()
        .find(|&c| !(c.is_alphanumeric() || c == '.' || ATEXT_SPECIALS.contains(c)))
    {
        Some(c) => Err(EmailError::LocalChar(c)),
        None => Ok(()),
    }
}

fn check_domain(domain: &str) -> Result<(), EmailError> {
    if !domain.contains('.') {
        return Err(EmailError::NoDot(domain.to_string()));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(EmailError::EmptyLabel(domain.to_string()));
        }
        if let Some(c) = label.chars().find(|&c| !(c.is_alphanumeric() || c == '-')) {
            return Err(EmailError::DomainChar(c));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(EmailError::LabelHyphen(label.to_string()));
        }
        if label.chars().count() > MAX_LABEL_CHARS {
            return Err(EmailError::LabelTooLong(label.to_string()));
        }
    }
    Ok(())
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_parse_and_normalize() {
        let cases = [
            ("ann@example.org", "ann@example.org"),
            ("  ann@example.org\t", "ann@example.org"),
            ("Ann.Lee@Example.ORG", "Ann.Lee@example.org"),
            ("a+tag@mail.example.net", "a+tag@mail.example.net"),
            ("o'brien@example.ie", "o'brien@example.ie"),
            (
                "x_y-z@sub-domain.example.co.uk",
                "x_y-z@sub-domain.example.co.uk",
            ),
            ("1234@123.example", "1234@123.example"),
            ("zoë@bücher.example", "zoë@bücher.example"),
            ("info@BÜCHER.Example", "info@bücher.example"),
            (
                "a!#$%&*/=?^`{|}~@example.org",
                "a!#$%&*/=?^`{|}~@example.org",
            ),
        ];
        for (input, want) in cases {
            match SubscriberEmail::parse(input) {
                Ok(e) => assert_eq!(e.as_str(), want, "{input:?}"),
                Err(e) => panic!("{input:?} refused: {e}"),
            }
        }
    }

    #[test]
    fn bad_addresses_are_refused_saying_why() {
        let long_local = "a".repeat(65);
        let long_addr = format!("{}@{}.example.org", "a".repeat(60), "b".repeat(200));
        let long_label = format!("a@{}.org", "b".repeat(64));
        let cases: Vec<(&str, &str)> = vec![
            ("", "is empty"),
            ("   ", "is empty"),
            ("ann.example.org", "missing @"),
            ("ann@exa@mple.org", "more than one @"),
            ("@example.org", "nothing before the @"),
            ("ann@", "nothing after the @"),
            ("ann@localhost", "has no dot"),
            ("ann@example..org", "empty label"),
            ("ann@.example.org", "empty label"),
            ("ann@example.org.", "empty label"),
            ("ann@-example.org", "starts or ends with '-'"),
            ("ann@example-.org", "starts or ends with '-'"),
            ("ann@exa_mple.org", "only letters, digits"),
            ("ann@[127.0.0.1]", "only letters, digits"),
            ("ann\r\nBcc: all@example.org", "contains a line break"),
            (
                "ann@example.org\nBcc: x@example.org",
                "contains a line break",
            ),
            ("ann\n@example.org", "contains a line break"),
            ("ann\r@example.org", "contains a line break"),
            ("ann\u{2028}x@example.org", "contains a line break"),
            ("an\0n@example.org", "control character (NUL)"),
            ("an\tn@example.org", "control character (a tab)"),
            ("an\u{7f}n@example.org", "control character (DEL)"),
            ("an\u{9b}n@example.org", "control character (U+009B)"),
            ("ann lee@example.org", "contains whitespace"),
            ("Ann <ann@example.org>", "contains whitespace"),
            ("<ann@example.org>", "'<'"),
            ("ann@example.org>", "'>'"),
            ("ann@example.org,bob@example.org", "','"),
            ("ann@example.org;bob@example.org", "';'"),
            ("\"ann\"@example.org", "'\"'"),
            ("ann(comment)@example.org", "'('"),
            ("ann)@example.org", "')'"),
            (".ann@example.org", "starts with a dot"),
            ("ann.@example.org", "ends with a dot"),
            ("an..n@example.org", "two dots in a row"),
            ("an\\n@example.org", "before the @ contains '\\\\'"),
            ("an[n@example.org", "before the @ contains '['"),
            (&long_local, "missing @"),
            (&long_addr, "the limit is 254"),
            (&long_label, "longer than 63"),
        ];
        for (input, want) in cases {
            match SubscriberEmail::parse(input) {
                Ok(e) => panic!("{input:?} accepted as {e}"),
                Err(e) => assert!(
                    e.to_string().contains(want),
                    "{input:?}: {e} (wanted {want})"
                ),
            }
        }
        let e = SubscriberEmail::parse(&format!("{long_local}@example.org")).unwrap_err();
        assert_eq!(e, EmailError::LocalTooLong(65));
    }

    #[test]
    fn key_is_case_insensitive_on_the_whole_address() {
        let a = SubscriberEmail::parse("Ann@Example.org").unwrap();
        let b = SubscriberEmail::parse("aNN@example.ORG").unwrap();
        assert_ne!(a, b, "the local part is kept as given");
        assert_eq!(a.key(), b.key());
        assert_eq!(a.local_part(), "Ann");
        assert_eq!(a.domain(), "example.org");
        let c = SubscriberEmail::parse("ZOË@example.org").unwrap();
        let d = SubscriberEmail::parse("zoë@example.org").unwrap();
        assert_eq!(c.key(), d.key());
    }
}
