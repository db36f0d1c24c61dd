//! `MailFormat`: how a subscriber wants the digest.

use std::fmt;

/// The body of a subscriber's digest. Chosen on the preferences page; the
/// store keeps it in `subscribers.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailFormat {
    /// multipart/alternative: plain text and HTML (the default).
    #[default]
    Html,
    /// A single text/plain part, for readers who want no HTML at all.
    Text,
}

impl MailFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            MailFormat::Html => "html",
            MailFormat::Text => "text",
        }
    }

    /// `html` or `text`, ignoring case and surrounding blanks.
    pub fn parse(s: &str) -> Option<MailFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "html" => Some(MailFormat::Html),
            "text" => Some(MailFormat::Text),
            _ => None,
        }
    }
}

impl fmt::Display for MailFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_back() {
        for f in [MailFormat::Html, MailFormat::Text] {
            assert_eq!(MailFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(MailFormat::parse(" TEXT "), Some(MailFormat::Text));
        assert_eq!(MailFormat::parse("pdf"), None);
        assert_eq!(MailFormat::default(), MailFormat::Html);
    }
}
