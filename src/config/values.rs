//! Parsers for single values, shared by the section checkers (and by the
//! scheduler, for cron): each says in plain words what it expected.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// `HOST:PORT` with a host name (resolved when `serve` starts).
pub(super) fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| {
        port.parse::<u16>().is_ok()
            && !host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    })
}

/// Why `publication.base_url` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error("{input:?} is not an absolute URL ({source}); write it like \"https://example.org/\"")]
    NotAbsolute {
        input: String,
        source: url::ParseError,
    },
    #[error("{0:?} must be an http or https URL")]
    NotHttp(String),
    #[error("{0:?} has no host")]
    NoHost(String),
    #[error("{0:?} must not have a query or fragment")]
    QueryOrFragment(String),
}

/// An absolute http(s) URL without query or fragment, its path ending in '/'.
pub(super) fn parse_base_url(s: &str) -> Result<Url, BaseUrlError> {
    let mut url = Url::parse(s).map_err(|source| BaseUrlError::NotAbsolute {
        input: s.to_string(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BaseUrlError::NotHttp(s.to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BaseUrlError::NoHost(s.to_string()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BaseUrlError::QueryOrFragment(s.to_string()));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// `sqlite://gazette.db`, `sqlite:gazette.db`, `sqlite:///abs/path.db`.
pub(super) fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or("");
    if rest.is_empty() || rest == ":memory:" {
        return None;
    }
    Some(PathBuf::from(rest))
}

/// Why a cron expression was refused.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(
        "{expr:?} has {fields} fields; use the standard 5 (minute hour day-of-month month day-of-week), e.g. \"*/15 * * * *\""
    )]
    Fields { expr: String, fields: usize },
    #[error("{expr:?} is not a valid cron expression: {source}")]
    Invalid {
        expr: String,
        source: croner::errors::CronError,
    },
}

/// Standard 5-field crontab (Sunday = 0); seconds or a 6th field are refused
/// so that "every minute" can't be mistaken for "every second".
pub fn parse_cron(expr: &str) -> Result<croner::Cron, CronError> {
    let fields = expr.split_whitespace().count();
    if fields != 5 && !expr.trim_start().starts_with('@') {
        return Err(CronError::Fields {
            expr: expr.to_string(),
            fields,
        });
    }
    croner::Cron::from_str(expr).map_err(|source| CronError::Invalid {
        expr: expr.to_string(),
        source,
    })
}

pub(super) fn check_cron(expr: &str) -> Result<(), CronError> {
    parse_cron(expr).map(|_| ())
}

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration such as \"30d\", \"12h\", \"5m\" or \"2w\"")]
    NotANumber(String),
    #[error("{input:?}: unknown unit {unit:?}; use d, h, m, s or w")]
    UnknownUnit { input: String, unit: String },
}

/// "30d", "12h", "90m", "45s", "2w" or a bare number of days.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError::NotANumber(s.to_string()))?;
    let secs = match unit.trim() {
        "" | "d" | "day" | "days" => 86_400,
        "h" | "hour" | "hours" => 3_600,
        "m" | "min" | "minutes" => 60,
        "s" | "sec" | "seconds" => 1,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => {
            return Err(DurationError::UnknownUnit {
                input: s.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// The domain of `Name <local@domain>` or `local@domain`.
pub(super) fn mailbox_domain(s: &str) -> Option<String> {
    let addr = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s.trim(),
    };
    addr.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

pub(super) fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

pub(super) fn looks_like_mailbox(s: &str) -> bool {
    let addr = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s.trim(),
    };
    match addr.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !addr.contains(char::is_whitespace)
                && !s.contains(['\r', '\n'])
        }
        None => false,
    }
}

pub(super) fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// An address or a network in CIDR form (`10.0.0.0/8`, `::1`): one entry of
/// `http.trusted_proxies`, whose `X-Forwarded-For` the web side believes
/// (see `web::proxy`). A config value, so it lives here and web uses it,
/// not the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A `http.trusted_proxies` entry that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an address or network such as \"127.0.0.1\", \"10.0.0.0/8\" or \"::1\"")]
pub struct IpNetError {
    /// The entry as written.
    pub input: String,
}

impl IpNet {
    pub fn parse(s: &str) -> Result<IpNet, IpNetError> {
        let bad = || IpNetError {
            input: s.to_string(),
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer on an IPv6 socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_is_standard_with_sunday_zero() {
        use chrono::{Datelike, TimeZone};
        let cron = parse_cron("0 9 * * 0").unwrap();
        let from = chrono::Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap(); // a Friday
        let next = cron.find_next_occurrence(&from, false).unwrap();
        assert_eq!(next.weekday(), chrono::Weekday::Sun);
        assert!(parse_cron("*/15 * * * *").is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86400)
        );
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3y").is_err());
    }

    /// The typed errors say what the strings said before them.
    #[test]
    fn errors_keep_their_words() {
        assert_eq!(
            parse_duration("soon").unwrap_err().to_string(),
            "\"soon\" is not a duration such as \"30d\", \"12h\", \"5m\" or \"2w\""
        );
        assert_eq!(
            parse_duration("3y").unwrap_err().to_string(),
            "\"3y\": unknown unit \"y\"; use d, h, m, s or w"
        );
        assert_eq!(
            parse_cron("* * * *").unwrap_err().to_string(),
            "\"* * * *\" has 4 fields; use the standard 5 (minute hour day-of-month month day-of-week), e.g. \"*/15 * * * *\""
        );
        assert!(
            parse_cron("61 * * * *")
                .unwrap_err()
                .to_string()
                .starts_with("\"61 * * * *\" is not a valid cron expression: ")
        );
        assert_eq!(
            parse_base_url("ftp://example.org/")
                .unwrap_err()
                .to_string(),
            "\"ftp://example.org/\" must be an http or https URL"
        );
        assert_eq!(
            parse_base_url("https://example.org/?a=1")
                .unwrap_err()
                .to_string(),
            "\"https://example.org/?a=1\" must not have a query or fragment"
        );
        assert_eq!(
            parse_base_url("example.org/news").unwrap_err().to_string(),
            "\"example.org/news\" is not an absolute URL (relative URL without a base); write it like \"https://example.org/\""
        );
        assert_eq!(
            parse_base_url("https://example.org/paper")
                .unwrap()
                .as_str(),
            "https://example.org/paper/"
        );
    }
}

/// `mail.bounce_address`: where returned mail goes, and the base of every
/// envelope sender when it is set (`local+TAG@domain`, VERP). Plain ASCII
/// `local@domain`, no display name; the local part may not hold `+`, which
/// separates the TAG (it is also the `recipient_delimiter` an MTA in front
/// is told about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceAddress {
    local: String,
    /// Lowercased.
    domain: String,
}

/// Why `mail.bounce_address` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BounceAddressError {
    #[error("{0:?} is not an address such as \"bounces@news.example.org\" (no display name)")]
    Shape(String),
    #[error(
        "{0:?}: the local part may not contain '+', which gazette puts before each message's tag"
    )]
    Plus(String),
}

impl BounceAddress {
    pub fn parse(s: &str) -> Result<BounceAddress, BounceAddressError> {
        let shape = || BounceAddressError::Shape(s.to_string());
        let (local, domain) = s.trim().rsplit_once('@').ok_or_else(shape)?;
        // The characters of a dot-atom that no MTA treats specially.
        let atom_ok = !local.is_empty()
            && local.len() <= 40
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        if !atom_ok || !is_dns_name(domain) || !domain.contains('.') {
            return Err(shape());
        }
        if local.contains('+') {
            return Err(BounceAddressError::Plus(s.to_string()));
        }
        Ok(BounceAddress {
            local: local.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `local+tag@domain`.
    pub fn tagged(&self, tag: &str) -> String {
        format!("{}+{tag}@{}", self.local, self.domain)
    }
}

impl std::fmt::Display for BounceAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}
