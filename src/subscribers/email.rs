//! `SubscriberEmail`: an address that is safe to put in a `To:` header and to
//! hand to the mailer, and that gazette knows how to mail.

use std::fmt;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// The longest address accepted (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_CHARS: usize = 254;
/// The longest local part (RFC 5321, 4.5.3.1.1).
pub const MAX_LOCAL_CHARS: usize = 64;
/// The longest domain label (RFC 1035).
pub const MAX_LABEL_CHARS: usize = 63;

/// A checked, normalized email address.
///
/// The domain goes through IDNA (UTS 46 mapping, then IDNA 2008 validity), so
/// every spelling of one domain is one value: `reader@BÜCHER.example`,
/// `reader@bücher.example` and `reader@xn--bcher-kva.example` are the same
/// address. What is stored and shown ([`as_str`](SubscriberEmail::as_str)) is
/// the local part as given and the domain in its Unicode form (U-labels),
/// because that is what the person typed and can read back; what goes on the
/// wire ([`envelope`](SubscriberEmail::envelope), the `To:` header) has the
/// domain in its ASCII form (A-labels, `xn--`), which every server takes.
///
/// Non-ASCII letters and digits are accepted in the local part (RFC 6531),
/// but such an address can only be mailed with SMTPUTF8
/// ([`needs_smtputf8`](SubscriberEmail::needs_smtputf8)); whether a new one
/// is accepted at all is [`SubscriberEmail::parse_new`]'s decision.
///
/// Two addresses are the same subscriber when their
/// [`key`](SubscriberEmail::key)s are equal: case-insensitive on the local
/// part, the domain as IDNA normalizes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberEmail {
    /// `local@domain`, the domain in Unicode form.
    address: String,
    /// The domain's A-label form. `None` only for an address read back from
    /// an older database whose domain IDNA refuses (see
    /// [`SubscriberEmail::from_stored`]): it is listed, but cannot be mailed.
    ascii_domain: Option<String>,
}

impl serde::Serialize for SubscriberEmail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.address)
    }
}

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
    #[error("the domain {0:?} is not a valid internationalized domain name (IDNA)")]
    Idna(String),
    #[error(
        "the part before the @ is not ASCII; such an address needs SMTPUTF8, which this publication does not use (mail.smtputf8 is off)"
    )]
    NeedsSmtputf8,
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
    /// An address as gazette reads it anywhere: syntax, then IDNA for the
    /// domain. A Unicode local part passes; see [`SubscriberEmail::parse_new`]
    /// for addresses that are entering the list.
    pub fn parse(input: &str) -> Result<SubscriberEmail, EmailError> {
        let (local, domain) = split_checked(input)?;
        let (ascii, unicode) = idna_domain(&domain)?;
        let address = format!("{local}@{unicode}");
        let wire_len = local.chars().count() + 1 + ascii.len();
        if wire_len > MAX_EMAIL_CHARS {
            return Err(EmailError::TooLong(wire_len));
        }
        // Whatever passed must also be an address the mailer takes.
        lettre::Address::new(local, &ascii).map_err(|e| EmailError::Mailer(e.to_string()))?;
        Ok(SubscriberEmail {
            address,
            ascii_domain: Some(ascii),
        })
    }

    /// The one rule for an address entering the list (CSV import,
    /// `subscribers add`, the API, the sign-up form): [`parse`], and a
    /// Unicode local part only when `smtputf8` (the `mail.smtputf8` setting)
    /// says the relay takes SMTPUTF8. Refusing here is the point: an address
    /// accepted as active must be one gazette can mail, not one whose every
    /// digest fails later.
    ///
    /// [`parse`]: SubscriberEmail::parse
    pub fn parse_new(input: &str, smtputf8: bool) -> Result<SubscriberEmail, EmailError> {
        let email = SubscriberEmail::parse(input)?;
        if email.needs_smtputf8() && !smtputf8 {
            return Err(EmailError::NeedsSmtputf8);
        }
        Ok(email)
    }

    /// An address read back from the store. Rows written before IDNA
    /// normalization may hold a domain IDNA refuses; such a row still reads
    /// (listing, export and erasure keep working) but has no wire form, so
    /// its deliveries fail with the reason instead of the whole read failing.
    pub fn from_stored(input: &str) -> Result<SubscriberEmail, EmailError> {
        match SubscriberEmail::parse(input) {
            Ok(e) => Ok(e),
            Err(EmailError::Idna(_) | EmailError::Mailer(_) | EmailError::TooLong(_)) => {
                let (local, domain) = split_checked(input)?;
                Ok(SubscriberEmail {
                    address: format!("{local}@{domain}"),
                    ascii_domain: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The address as stored and shown: the domain in Unicode form.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The uniqueness key: the local part lowercased (Unicode-aware), `@`,
    /// the domain as IDNA normalizes it (lowercase, Unicode form). For an
    /// ASCII domain this is the whole address lowercased, as it always was.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local_part().to_lowercase(), self.domain())
    }

    pub fn local_part(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(l, _)| l)
    }

    /// The domain in Unicode form, as shown.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The domain in ASCII (A-label) form, for the envelope and headers.
    pub fn ascii_domain(&self) -> Result<&str, EmailError> {
        self.ascii_domain
            .as_deref()
            .ok_or_else(|| EmailError::Idna(self.domain().to_string()))
    }

    /// The address as it goes on the wire (`RCPT TO`, the `To:` header): the
    /// local part as given, the domain in A-label form. It is all ASCII
    /// unless [`needs_smtputf8`](SubscriberEmail::needs_smtputf8).
    pub fn envelope(&self) -> Result<String, EmailError> {
        Ok(format!("{}@{}", self.local_part(), self.ascii_domain()?))
    }

    /// [`envelope`](SubscriberEmail::envelope) as lettre's address, for the
    /// `To:` header. [`SubscriberEmail::parse`] made sure lettre takes it.
    pub fn mailbox(&self) -> Result<lettre::Address, EmailError> {
        lettre::Address::new(self.local_part(), self.ascii_domain()?)
            .map_err(|e| EmailError::Mailer(e.to_string()))
    }

    /// Whether mailing this address needs the server's SMTPUTF8 (RFC 6531):
    /// only a non-ASCII local part does, since the domain is sent as IDNA.
    pub fn needs_smtputf8(&self) -> bool {
        !self.local_part().is_ascii()
    }
}

/// The syntax checks, in the order that names the real danger first; the
/// local part as given and the domain lowercased.
fn split_checked(input: &str) -> Result<(&str, String), EmailError> {
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
    Ok((local, domain))
}

/// UTS 46 processing of a domain that passed [`check_domain`]: the A-label
/// form (ToASCII with the STD3 rules, hyphens checked at the ends of labels
/// only, DNS lengths verified) and the Unicode form of that same result, so
/// that every spelling of a domain yields one pair.
fn idna_domain(domain: &str) -> Result<(String, String), EmailError> {
    let uts46 = Uts46::new();
    let refused = || EmailError::Idna(domain.to_string());
    let ascii = uts46
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .map_err(|_| refused())?
        .into_owned();
    let (unicode, ok) = uts46.to_unicode(
        ascii.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
    );
    ok.map_err(|_| refused())?;
    let unicode = unicode.into_owned();
    Ok((ascii, unicode))
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
        f.write_str(&self.address)
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.address
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

    #[test]
    fn every_spelling_of_an_idn_domain_is_one_address() {
        let spellings = [
            "reader@bücher.example",
            "reader@BÜCHER.example",
            "reader@xn--bcher-kva.example",
            "reader@XN--BCHER-KVA.EXAMPLE",
        ];
        for s in spellings {
            let e = SubscriberEmail::parse(s).unwrap();
            assert_eq!(e.as_str(), "reader@bücher.example", "{s}");
            assert_eq!(e.key(), "reader@bücher.example", "{s}");
            assert_eq!(e.envelope().unwrap(), "reader@xn--bcher-kva.example", "{s}");
            assert!(!e.needs_smtputf8());
        }
        // ASCII domains keep the key they always had.
        let e = SubscriberEmail::parse("Ann@Example.ORG").unwrap();
        assert_eq!(e.key(), "ann@example.org");
        assert_eq!(e.envelope().unwrap(), "Ann@example.org");
        // UTS 46 mapping: a full-width letter is its ASCII letter.
        let e = SubscriberEmail::parse("ann@ｅxample.org").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.as_str(), "ann@example.org");
    }

    #[test]
    fn a_unicode_local_part_needs_smtputf8_and_enters_only_when_it_is_on() {
        let e = SubscriberEmail::parse("zoë@bücher.example").unwrap();
        assert!(e.needs_smtputf8());
        assert_eq!(e.envelope().unwrap(), "zoë@xn--bcher-kva.example");
        assert_eq!(
            SubscriberEmail::parse_new("zoë@bücher.example", false).unwrap_err(),
            EmailError::NeedsSmtputf8
        );
        assert_eq!(
            SubscriberEmail::parse_new("zoë@bücher.example", true).unwrap(),
            e
        );
        // An ASCII local part with a Unicode domain needs nothing special.
        assert!(SubscriberEmail::parse_new("zoe@bücher.example", false).is_ok());
    }

    #[test]
    fn domains_idna_refuses_are_refused_and_old_rows_still_read() {
        for bad in ["ann@xn--a.example", "ann@xn--bcher-kva-.example"] {
            match SubscriberEmail::parse(bad) {
                Err(EmailError::Idna(_)) | Err(EmailError::LabelHyphen(_)) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
        // Hyphens in the third and fourth place of an ASCII label are fine.
        assert!(SubscriberEmail::parse("ann@ab--cd.example").is_ok());
        let old = SubscriberEmail::from_stored("ann@xn--a.example").unwrap();
        assert_eq!(old.as_str(), "ann@xn--a.example");
        assert!(matches!(old.envelope(), Err(EmailError::Idna(_))));
        assert!(SubscriberEmail::from_stored("no-at-sign").is_err());
    }
}
