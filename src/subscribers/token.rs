//! `Token`: the secret in a subscriber's confirm, unsubscribe and preferences
//! links.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Characters of an encoded token.
pub const TOKEN_CHARS: usize = 43;

/// 32 random bytes from the operating system, URL-safe base64 without padding:
/// exactly 43 characters of `[A-Za-z0-9_-]`. `Debug` shows only a prefix, so
/// tokens do not end up in logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token is {TOKEN_CHARS} characters long, not {0}")]
    Length(usize),
    #[error("a token holds only letters, digits, '-' and '_'")]
    Alphabet,
    #[error("not a canonical token encoding")]
    Encoding,
}

impl Token {
    /// A fresh random token; fails only when the OS has no randomness to give.
    pub fn generate() -> Result<Token, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Token(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// `n` fresh random tokens from one draw of the OS's randomness.
    pub fn generate_many(n: usize) -> Result<Vec<Token>, getrandom::Error> {
        let mut bytes = vec![0u8; TOKEN_BYTES * n];
        getrandom::fill(&mut bytes)?;
        Ok(bytes
            .chunks_exact(TOKEN_BYTES)
            .map(|b| Token(URL_SAFE_NO_PAD.encode(b)))
            .collect())
    }

    pub fn parse(s: &str) -> Result<Token, TokenError> {
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TokenError::Alphabet);
        }
        if s.len() != TOKEN_CHARS {
            return Err(TokenError::Length(s.chars().count()));
        }
        // The last character carries 2 spare bits: only one spelling per token.
        match URL_SAFE_NO_PAD.decode(s) {
            Ok(bytes) if bytes.len() == TOKEN_BYTES => Ok(Token(s.to_string())),
            _ => Err(TokenError::Encoding),
        }
    }

    /// A stand-in for the links of a message that is no subscriber's (a
    /// preview, a test copy to an address not on the list): `label` as it
    /// is when it is URL-safe and shorter than a real token, so a link with
    /// it can never act on a subscriber ([`Token::parse`] refuses it and
    /// the pages answer 404); `placeholder` otherwise.
    pub fn placeholder(label: &'static str) -> Token {
        let usable = !label.is_empty()
            && label.len() < TOKEN_CHARS
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        Token(if usable { label } else { "placeholder" }.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}…)", self.0.get(..6).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_drawn_together_are_each_valid_and_all_different() {
        let many = Token::generate_many(500).unwrap();
        assert_eq!(many.len(), 500);
        let distinct: std::collections::HashSet<&str> = many.iter().map(Token::as_str).collect();
        assert_eq!(distinct.len(), 500);
        for t in &many {
            assert_eq!(Token::parse(t.as_str()).unwrap(), *t);
        }
        assert!(Token::generate_many(0).unwrap().is_empty());
    }

    #[test]
    fn a_placeholder_is_url_safe_and_never_a_real_token() {
        let p = Token::placeholder("preview-token");
        assert_eq!(p.as_str(), "preview-token");
        assert!(Token::parse(p.as_str()).is_err());
        for bad in [
            "",
            "a/b",
            "tok\r\nX: y",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(Token::placeholder(bad).as_str(), "placeholder", "{bad:?}");
        }
    }

    #[test]
    fn generated_tokens_are_url_safe_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let t = Token::generate().unwrap();
            assert_eq!(t.as_str().len(), TOKEN_CHARS);
            assert!(
                t.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{t}"
            );
            assert_eq!(Token::parse(t.as_str()).unwrap(), t);
            assert!(seen.insert(t.to_string()), "repeated token");
        }
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let t = Token::generate().unwrap().to_string();
        assert_eq!(Token::parse(""), Err(TokenError::Length(0)));
        assert_eq!(Token::parse(&t[..42]), Err(TokenError::Length(42)));
        assert_eq!(Token::parse(&format!("{t}A")), Err(TokenError::Length(44)));
        for bad in ['+', '/', '=', '.', '%', ' ', '\n', 'é'] {
            let mut s = t[..42].to_string();
            s.push(bad);
            assert_eq!(Token::parse(&s), Err(TokenError::Alphabet), "{s:?}");
        }
        // 'A' and 'B' differ only in the spare low bits of the last character.
        let mut a = t[..42].to_string();
        a.push('A');
        let mut b = t[..42].to_string();
        b.push('B');
        assert!(Token::parse(&a).is_ok());
        assert_eq!(Token::parse(&b), Err(TokenError::Encoding));
        assert!(format!("{:?}", Token::parse(&a).unwrap()).len() < 20);
    }
}
