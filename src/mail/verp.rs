//! VERP: each message's envelope sender names it, so that whatever comes
//! back to that address is about exactly that message, whatever the report
//! inside says (forwarding rewrites a report's own recipient fields).
//!
//! With `mail.bounce_address = "bounces@news.example.org"`, a digest goes
//! out from `bounces+d42-<mac>@news.example.org`: `d42` is delivery row 42,
//! `s7` a sign-up mail to subscriber 7. The MAC is keyed BLAKE3 with a key
//! random per database (`meta.verp_key`, migration 0007), cut to 80 bits
//! and written in lowercase base32 (16 characters), so a TAG someone made up
//! or altered names nothing: 2^-80 to guess one. Lowercase only, because
//! some MTAs lowercase local parts; the TAG stays in `[a-z0-9-]`, within the
//! contract's `[A-Za-z0-9._=-]`.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::config::{BounceAddress, Config};

/// What a TAG names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    /// A digest: its delivery row.
    Delivery(i64),
    /// A sign-up mail (confirmation, or "already subscribed"): the subscriber.
    Signup(i64),
}

impl Tag {
    fn prefix(self) -> (char, i64) {
        match self {
            Tag::Delivery(id) => ('d', id),
            Tag::Signup(id) => ('s', id),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, id) = self.prefix();
        write!(f, "{c}{id}")
    }
}

/// The MAC key (32 bytes, `meta.verp_key`).
#[derive(Clone)]
pub struct VerpKey([u8; 32]);

impl fmt::Debug for VerpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerpKey(..)")
    }
}

/// Bytes of MAC in a TAG: 80 bits, 16 base32 characters.
const MAC_BYTES: usize = 10;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl VerpKey {
    pub fn new(key: [u8; 32]) -> VerpKey {
        VerpKey(key)
    }

    /// From the 64 hex digits kept in `meta`.
    pub fn from_hex(hex: &str) -> Option<VerpKey> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(VerpKey(key))
    }

    fn mac(&self, tag: Tag) -> [u8; MAC_BYTES] {
        let h = blake3::keyed_hash(&self.0, tag.to_string().as_bytes());
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&h.as_bytes()[..MAC_BYTES]);
        out
    }

    /// The TAG for `tag`: `d42-abcdefghijklmnop`.
    pub fn tag(&self, tag: Tag) -> String {
        format!("{tag}-{}", base32(&self.mac(tag)))
    }

    /// What a TAG names, when its MAC is right (any case). `None` for
    /// anything else: malformed, unknown prefix, or a MAC that does not
    /// match (compared in constant time).
    pub fn verify(&self, text: &str) -> Option<Tag> {
        let (head, mac) = text.split_once('-')?;
        let mut chars = head.chars();
        let kind = chars.next()?.to_ascii_lowercase();
        let digits = chars.as_str();
        if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id: i64 = digits.parse().ok()?;
        let tag = match kind {
            'd' => Tag::Delivery(id),
            's' => Tag::Signup(id),
            _ => return None,
        };
        let given = unbase32(mac)?;
        bool::from(given.ct_eq(&self.mac(tag))).then_some(tag)
    }

    /// The delivery row a Message-ID of ours names: `<slug.TAG@domain>`
    /// ([`crate::mail::message::message_id`]), the TAG after the last dot
    /// of the local part, its MAC right. `None` for anything else, such as
    /// the token-hash ids of rows sent before migration 0012 (the ledger
    /// finds those by `legacy_message_id`).
    pub fn message_tag(&self, message_id: &str) -> Option<Tag> {
        let id = message_id.trim().strip_prefix('<')?.strip_suffix('>')?;
        let (local, _domain) = id.rsplit_once('@')?;
        let (_slug, tag) = local.rsplit_once('.')?;
        match self.verify(tag)? {
            tag @ Tag::Delivery(_) => Some(tag),
            Tag::Signup(_) => None,
        }
    }
}

fn base32(bytes: &[u8; MAC_BYTES]) -> String {
    // 80 bits: 16 groups of 5, read from the top.
    let mut n: u128 = 0;
    for &b in bytes {
        n = (n << 8) | u128::from(b);
    }
    (0..16)
        .rev()
        .map(|i| BASE32[((n >> (5 * i)) & 31) as usize] as char)
        .collect()
}

fn unbase32(text: &str) -> Option<[u8; MAC_BYTES]> {
    if text.len() != 16 {
        return None;
    }
    let mut n: u128 = 0;
    for c in text.bytes() {
        let c = c.to_ascii_lowercase();
        let v = BASE32.iter().position(|&x| x == c)?;
        n = (n << 5) | v as u128;
    }
    let mut out = [0u8; MAC_BYTES];
    for (i, b) in out.iter_mut().enumerate() {
        *b = (n >> (8 * (MAC_BYTES - 1 - i))) as u8;
    }
    Some(out)
}

/// The addresses gazette owns and what each means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// `local+TAG@domain` of the bounce address, TAG authentic.
    Tagged(Tag),
    /// The plain bounce address: a report there is matched by the
    /// Message-ID of our message inside it.
    Bounce,
    /// The List-Unsubscribe `mailto:` address.
    Unsubscribe,
}

/// The bounce address, the mailto unsubscribe address and the key: all an
/// envelope sender is made from, and all it takes to read one back.
#[derive(Debug, Clone)]
pub struct Verp {
    bounce: BounceAddress,
    /// `from-local+unsubscribe@from-domain`, as the List-Unsubscribe header
    /// names it (unencoded), compared without case.
    unsubscribe: Option<String>,
    key: VerpKey,
}

impl Verp {
    pub fn new(bounce: BounceAddress, unsubscribe: Option<String>, key: VerpKey) -> Verp {
        Verp {
            bounce,
            unsubscribe: unsubscribe.map(|u| u.to_lowercase()),
            key,
        }
    }

    /// With `mail.bounce_address` set: the bounce address, the mailto
    /// unsubscribe address `mail.from` gives (as [`super::Sender`] writes
    /// it into List-Unsubscribe) and the database's key.
    pub fn from_config(config: &Config, key: [u8; 32]) -> Option<Verp> {
        let bounce = config.mail.bounce_address.clone()?;
        let unsubscribe = config
            .mail
            .from
            .as_deref()
            .and_then(|f| f.parse::<lettre::message::Mailbox>().ok())
            .map(|m| super::message::unsubscribe_address(&m));
        Some(Verp::new(bounce, unsubscribe, VerpKey::new(key)))
    }

    pub fn bounce_address(&self) -> &BounceAddress {
        &self.bounce
    }

    pub fn key(&self) -> &VerpKey {
        &self.key
    }

    /// The envelope sender (MAIL FROM) for a message `tag` names.
    pub fn envelope_sender(&self, tag: Tag) -> String {
        self.bounce.tagged(&self.key.tag(tag))
    }

    /// What `address` (as given in RCPT TO or a header, brackets removed)
    /// is to gazette, or `None` when it is not ours (or its TAG is forged).
    pub fn owns(&self, address: &str) -> Option<Owned> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@')?;
        if self
            .unsubscribe
            .as_deref()
            .is_some_and(|u| u == address.to_lowercase())
        {
            return Some(Owned::Unsubscribe);
        }
        if !domain.eq_ignore_ascii_case(self.bounce.domain()) {
            return None;
        }
        // The local part compared without case: MTAs differ in that.
        match local.split_once('+') {
            None if local.eq_ignore_ascii_case(self.bounce.local()) => Some(Owned::Bounce),
            Some((base, tag)) if base.eq_ignore_ascii_case(self.bounce.local()) => {
                self.key.verify(tag).map(Owned::Tagged)
            }
            _ => None,
        }
    }

    /// Whether `address` looks like one of our TAG addresses, authentic or
    /// not: a message to a forged one is recorded as forged (by import),
    /// not as mail to someone else.
    pub fn is_tag_shaped(&self, address: &str) -> bool {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        address.rsplit_once('@').is_some_and(|(local, domain)| {
            domain.eq_ignore_ascii_case(self.bounce.domain())
                && local
                    .split_once('+')
                    .is_some_and(|(base, _)| base.eq_ignore_ascii_case(self.bounce.local()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verp() -> Verp {
        Verp::new(
            BounceAddress::parse("bounces@news.example.org").unwrap(),
            Some("ledger+unsubscribe@news.example.org".into()),
            VerpKey::new([7; 32]),
        )
    }

    #[test]
    fn a_tag_reads_back_and_stays_in_the_contracts_characters() {
        let v = verp();
        for tag in [Tag::Delivery(1), Tag::Delivery(i64::MAX), Tag::Signup(42)] {
            let from = v.envelope_sender(tag);
            let (local, domain) = from.rsplit_once('@').unwrap();
            assert_eq!(domain, "news.example.org");
            let t = local.strip_prefix("bounces+").unwrap();
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._=-".contains(&b)),
                "{t}"
            );
            assert_eq!(v.owns(&from), Some(Owned::Tagged(tag)));
            // Some MTAs change the case of the local part.
            assert_eq!(v.owns(&from.to_uppercase()), Some(Owned::Tagged(tag)));
            assert_eq!(v.owns(&format!("<{from}>")), Some(Owned::Tagged(tag)));
        }
    }

    #[test]
    fn a_forged_or_altered_tag_names_nothing() {
        let v = verp();
        let good = v.key.tag(Tag::Delivery(42));
        let mac = good.split_once('-').unwrap().1;
        // The same MAC on another row, every one-character change of the
        // MAC, another key's tag, and shapes that are not tags.
        assert_eq!(v.owns(&format!("bounces+d43-{mac}@news.example.org")), None);
        assert_eq!(v.owns(&format!("bounces+s42-{mac}@news.example.org")), None);
        for i in 0..mac.len() {
            for c in BASE32.iter().map(|&c| c as char) {
                let mut m: Vec<char> = mac.chars().collect();
                if m[i] == c {
                    continue;
                }
                m[i] = c;
                let m: String = m.into_iter().collect();
                assert_eq!(v.key.verify(&format!("d42-{m}")), None, "{m}");
            }
        }
        let other = VerpKey::new([8; 32]).tag(Tag::Delivery(42));
        assert_eq!(v.owns(&format!("bounces+{other}@news.example.org")), None);
        for bad in [
            "d42",
            "d-abcdefghijklmnop",
            "x42-abcdefghijklmnop",
            "d42-abc",
            "d4 2-abcdefghijklmnop",
            "d99999999999999999999-abcdefghijklmnop",
            "d42-abcdefghijklmno1",
            "",
        ] {
            assert_eq!(v.key.verify(bad), None, "{bad}");
        }
        assert!(v.is_tag_shaped(&format!("bounces+d43-{mac}@news.example.org")));
    }

    #[test]
    fn a_message_id_of_ours_names_its_delivery_row() {
        let v = verp();
        let tag = v.key().tag(Tag::Delivery(42));
        let mid = crate::mail::message::message_id("2026.winter", "tok", Some(&tag), "x.org");
        assert_eq!(v.key().message_tag(&mid), Some(Tag::Delivery(42)));
        assert_eq!(
            v.key().message_tag(&format!(" {mid}\r\n")),
            Some(Tag::Delivery(42))
        );
        // Another key's, a sign-up's TAG, a token-hash id, an altered row
        // number, and shapes that are not ours.
        let other = VerpKey::new([8; 32]).tag(Tag::Delivery(42));
        let signup = v.key().tag(Tag::Signup(42));
        let mac = tag.split_once('-').unwrap().1;
        for not_ours in [
            format!("<2026.winter.{other}@x.org>"),
            format!("<2026.winter.{signup}@x.org>"),
            format!("<2026.winter.d43-{mac}@x.org>"),
            crate::mail::message::message_id("2026.winter", "tok", None, "x.org"),
            mid.trim_matches(['<', '>']).to_string(),
            format!("<{tag}@x.org>"),
            "<>".to_string(),
            String::new(),
        ] {
            assert_eq!(v.key().message_tag(&not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn only_our_addresses_are_owned() {
        let v = verp();
        assert_eq!(v.owns("bounces@news.example.org"), Some(Owned::Bounce));
        assert_eq!(v.owns("Bounces@NEWS.example.org"), Some(Owned::Bounce));
        assert_eq!(
            v.owns("Ledger+Unsubscribe@news.example.org"),
            Some(Owned::Unsubscribe)
        );
        for not_ours in [
            "bounces@example.org",
            "other@news.example.org",
            "bouncesx@news.example.org",
            "postmaster@news.example.org",
            "bounces",
            "",
            "@news.example.org",
        ] {
            assert_eq!(v.owns(not_ours), None, "{not_ours}");
        }
        assert!(!v.is_tag_shaped("bounces@news.example.org"));
    }

    #[test]
    fn base32_round_trips() {
        for seed in 0u8..=255 {
            let bytes: [u8; MAC_BYTES] =
                std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 17));
            let s = base32(&bytes);
            assert_eq!(s.len(), 16);
            assert_eq!(unbase32(&s), Some(bytes));
        }
    }
}
