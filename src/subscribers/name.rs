//! `SubscriberName`: a display name that is safe in a `To:` header.

use std::fmt;

use super::email::{describe_control, is_line_break};

/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A subscriber's display name: trimmed, non-empty, at most 200 characters, no
/// line breaks or other control characters (so it can never start a header).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SubscriberName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("contains a line break")]
    LineBreak,
    #[error("contains a control character ({0})")]
    Control(String),
    #[error("is {0} characters long; the limit is 200")]
    TooLong(usize),
}

impl SubscriberName {
    /// `Ok(None)` for an empty (or all-blank) name: the subscriber has none.
    pub fn parse(input: &str) -> Result<Option<SubscriberName>, NameError> {
        let s = input.trim();
        if s.chars().any(is_line_break) {
            return Err(NameError::LineBreak);
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(NameError::Control(describe_control(c)));
        }
        let len = s.chars().count();
        if len > MAX_NAME_CHARS {
            return Err(NameError::TooLong(len));
        }
        Ok((!s.is_empty()).then(|| SubscriberName(s.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SubscriberName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_empty_means_none() {
        let n = SubscriberName::parse("  Zoë Álvarez ").unwrap().unwrap();
        assert_eq!(n.as_str(), "Zoë Álvarez");
        assert_eq!(SubscriberName::parse("").unwrap(), None);
        assert_eq!(SubscriberName::parse(" \t ").unwrap(), None);
        let quoted = SubscriberName::parse("O'Brien, \"Dot\" <x>")
            .unwrap()
            .unwrap();
        assert_eq!(quoted.as_str(), "O'Brien, \"Dot\" <x>");
        let max = "é".repeat(200);
        assert!(SubscriberName::parse(&max).unwrap().is_some());
    }

    #[test]
    fn header_injection_and_long_names_are_refused() {
        let cases = [
            ("Ann\r\nBcc: all@example.org", "contains a line break"),
            ("Ann\nLee", "contains a line break"),
            ("Ann\rLee", "contains a line break"),
            ("Ann\u{2029}Lee", "contains a line break"),
            ("Ann\u{85}Lee", "contains a line break"),
            ("Ann\0", "control character (NUL)"),
            ("Ann\tLee", "control character (a tab)"),
            ("Ann\u{1b}[31m", "control character (U+001B)"),
            ("Ann\u{7f}", "control character (DEL)"),
            ("Ann\u{90}", "control character (U+0090)"),
        ];
        for (input, want) in cases {
            let e = SubscriberName::parse(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
        let long = "a".repeat(201);
        assert_eq!(
            SubscriberName::parse(&long).unwrap_err(),
            NameError::TooLong(201)
        );
    }
}
