//! Quoted-printable (RFC 2045, 6.7) for bodies assembled from pieces.
//!
//! A digest body is the same for every recipient except a few slots. Each
//! literal piece is encoded once per issue, starting at column 0 and ending
//! with a soft line break (`=` CRLF); a slot value is encoded the same way per
//! message. Soft line breaks vanish in decoding, so the concatenation of
//! encoded pieces decodes to the concatenation of the inputs, and no encoded
//! line is longer than 76 characters. Line ends in the input (LF or CRLF)
//! become CRLF.

/// Longest encoded line, the `=` of a soft line break included.
const MAX_LINE: usize = 76;

/// Append the encoding of `s` to `out`, ending with a soft line break.
pub fn encode_piece(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + bytes.len() / 8 + 8);
    let mut col = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push_str("\r\n");
            col = 0;
            i += if b == b'\r' { 2 } else { 1 };
            continue;
        }
        // A space or tab right before a line end must be encoded; before the
        // soft line break that ends the piece it may stay.
        let before_break = matches!(bytes.get(i + 1), Some(b'\n' | b'\r'));
        let literal = match b {
            b' ' | b'\t' => !before_break,
            b'=' => false,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        if col + width > MAX_LINE - 1 {
            out.push_str("=\r\n");
            col = 0;
        }
        if literal {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        col += width;
        i += 1;
    }
    out.push_str("=\r\n");
}

/// Drop the soft line break that ends the last piece, unless it protects
/// whitespace that would otherwise end the body (and so a line).
pub fn finish(mut body: String) -> String {
    if body.ends_with("=\r\n") && !body.ends_with(" =\r\n") && !body.ends_with("\t=\r\n") {
        body.truncate(body.len() - 3);
    }
    body
}

/// Longest line a 7bit body may have, CRLF not counted (RFC 5322, 2.1.1).
const MAX_RAW_LINE: usize = 998;

/// `s` as a 7bit body (RFC 2045, 2.7) with CRLF line ends, when it can be
/// one: ASCII, no NUL, no bare CR, no line over 998 octets. Then a link
/// stays whole on its line, as written, in the raw message (QP would cut it
/// with soft line breaks at 76 characters and turn `=` into `=3D`). Else
/// `None`: the body goes quoted-printable. (8bit would do the same for
/// UTF-8, but only with `BODY=8BITMIME` on the wire, which the SMTP clients
/// do not send.)
pub fn seven_bit(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + s.len() / 32 + 2);
    for line in s.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_RAW_LINE || !line.bytes().all(|b| b.is_ascii() && b != 0 && b != b'\r')
        {
            return None;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    // `split` gives one piece more than there are line ends.
    out.truncate(out.len() - 2);
    Some(out)
}

/// Whether every literal piece could go 7bit (a cheap first test, so a
/// UTF-8 digest is not assembled twice per message).
pub fn is_seven_bit_text(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii() && b != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_bit_keeps_ascii_lines_whole_and_refuses_the_rest() {
        let url = format!(
            "https://news.example.org/ledger/confirm/{}?a=b",
            "x".repeat(100)
        );
        assert_eq!(
            seven_bit(&format!("Confirm:\n{url}\r\nend\n")).as_deref(),
            Some(format!("Confirm:\r\n{url}\r\nend\r\n").as_str())
        );
        assert_eq!(seven_bit("").as_deref(), Some(""));
        assert_eq!(seven_bit(&"y".repeat(998)).map(|s| s.len()), Some(998));
        assert_eq!(seven_bit(&"y".repeat(999)), None);
        assert_eq!(seven_bit("Zoë"), None);
        assert_eq!(seven_bit("bare\rcr"), None);
        assert_eq!(seven_bit("nul\0"), None);
    }

    /// A straightforward decoder, to check the encoder against.
    fn decode(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'=' if b[i + 1..].starts_with(b"\r\n") => i += 3,
                b'=' if i + 2 == b.len() => panic!("truncated escape"),
                b'=' => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    }

    fn check(pieces: &[&str]) {
        let mut enc = String::new();
        for p in pieces {
            encode_piece(p, &mut enc);
        }
        let enc = finish(enc);
        for line in enc.split("\r\n") {
            assert!(line.len() <= MAX_LINE, "{} > 76: {line:?}", line.len());
            assert!(line.is_ascii());
            // no whitespace left dangling at a hard line end
            if !line.ends_with('=') {
                assert!(!line.ends_with(' ') && !line.ends_with('\t'), "{line:?}");
            }
        }
        assert!(!enc.replace("\r\n", "").contains('\n') && !enc.replace("\r\n", "").contains('\r'));
        let want = pieces.concat().replace("\r\n", "\n").replace('\n', "\r\n");
        assert_eq!(String::from_utf8(decode(&enc)).unwrap(), want);
    }

    #[test]
    fn pieces_decode_to_their_concatenation() {
        check(&[
            "Dear ",
            "Zoë \"Z\" O'Brien",
            ",\n\nThe = sign, tabs\tand trailing spaces   \nend",
        ]);
        check(&["", "a", "", "b\n"]);
        check(&[
            &"x".repeat(5000),
            &"é".repeat(700),
            "\r\nline\r\n",
            &" ".repeat(200),
        ]);
        check(&["ends with a space ", "\nnext"]);
        check(&["=", "==", "\u{0}\u{7f}"]);
        let mixed: String = (0..3000)
            .map(|i| char::from_u32(32 + (i * 7919) % 700).unwrap())
            .collect();
        check(&[&mixed, "\n", &mixed]);
    }
}
