//! `SubscriberName`: a display name that is safe in a `To:` header.

use std::fmt;

use super::email::{describe_control, is_line_break};

/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A subscriber's display name: trimmed, non-empty, at most 200 characters, no
/// line breaks or other control characters (so it can never start a header),
/// and no invisible formatting that would make it read as something else
/// (see [`is_refused_format`]).
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
    #[error(
        "contains an invisible direction control ({0}), which can make text display in another order than it is written"
    )]
    Bidi(String),
    #[error("contains an invisible zero-width character ({0})")]
    ZeroWidth(String),
}

/// Bidirectional overrides, embeddings and isolates (U+202A–U+202E,
/// U+2066–U+2069): in a name they reorder what follows them, in the digest's
/// greeting, the admin listing or a mail client's `To:` line, so a name can
/// display as text it does not contain (the "Trojan Source" trick).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Zero-width characters that have no business in a name: ZERO WIDTH SPACE,
/// WORD JOINER and ZERO WIDTH NO-BREAK SPACE (the BOM). They make two names
/// that look identical differ, and hide text boundaries.
///
/// ZERO WIDTH NON-JOINER (U+200C) and ZERO WIDTH JOINER (U+200D) are kept:
/// Persian, Hindi, Malayalam and other scripts need them to spell words
/// correctly (ZWNJ separates letters that would otherwise join in Persian;
/// ZWJ selects conjunct forms in Indic scripts and builds emoji sequences).
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}')
}

/// The invisible formatting characters a name may not hold.
pub(crate) fn is_refused_format(c: char) -> bool {
    is_bidi_control(c) || is_zero_width(c)
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
        if let Some(c) = s.chars().find(|&c| is_bidi_control(c)) {
            return Err(NameError::Bidi(describe_control(c)));
        }
        if let Some(c) = s.chars().find(|&c| is_zero_width(c)) {
            return Err(NameError::ZeroWidth(describe_control(c)));
        }
        let len = s.chars().count();
        if len > MAX_NAME_CHARS {
            return Err(NameError::TooLong(len));
        }
        Ok((!s.is_empty()).then(|| SubscriberName(s.to_string())))
    }

    /// A name read back from the store. Rows written before the invisible
    /// formatting characters were refused may hold some; they are dropped
    /// here, so they never reach a header or a page again, and the row still
    /// reads.
    pub fn from_stored(input: &str) -> Result<Option<SubscriberName>, NameError> {
        let cleaned: String = input.chars().filter(|&c| !is_refused_format(c)).collect();
        SubscriberName::parse(&cleaned)
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
            ("Ann \u{202e}eeL", "direction control (U+202E)"),
            ("\u{202a}Ann", "direction control (U+202A)"),
            ("Ann\u{2066}Lee\u{2069}", "direction control (U+2066)"),
            ("Ann\u{2069}", "direction control (U+2069)"),
            ("An\u{200b}n", "zero-width character (U+200B)"),
            ("An\u{2060}n", "zero-width character (U+2060)"),
            ("\u{feff}Ann", "zero-width character (U+FEFF)"),
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

    #[test]
    fn joiners_that_scripts_need_are_kept() {
        // Persian "mi-khaham" with ZWNJ; Devanagari "ksha" half form with ZWJ.
        for name in [
            "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}",
            "\u{915}\u{94d}\u{200d}\u{937}",
        ] {
            let n = SubscriberName::parse(name).unwrap().unwrap();
            assert_eq!(n.as_str(), name);
        }
    }

    #[test]
    fn stored_names_lose_invisible_formatting_but_still_read() {
        let n = SubscriberName::from_stored("Ann \u{202e}Lee\u{200b}")
            .unwrap()
            .unwrap();
        assert_eq!(n.as_str(), "Ann Lee");
        assert_eq!(SubscriberName::from_stored("\u{feff}").unwrap(), None);
    }
}
