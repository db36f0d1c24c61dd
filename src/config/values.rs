//! Parsers for single values, shared by the section checkers (and by the
//! scheduler, for cron): each says in plain words what it expected.

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

pub(super) fn parse_base_url(s: &str) -> Result<Url, String> {
    let mut url = Url::parse(s).map_err(|e| {
        format!("{s:?} is not an absolute URL ({e}); write it like \"https://example.org/\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?} must not have a query or fragment"));
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

/// Standard 5-field crontab (Sunday = 0); seconds or a 6th field are refused
/// so that "every minute" can't be mistaken for "every second".
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 && !expr.trim_start().starts_with('@') {
        return Err(format!(
            "{expr:?} has {fields} fields; use the standard 5 (minute hour day-of-month month day-of-week), e.g. \"*/15 * * * *\""
        ));
    }
    croner::Cron::from_str(expr)
        .map_err(|e| format!("{expr:?} is not a valid cron expression: {e}"))
}

pub(super) fn check_cron(expr: &str) -> Result<(), String> {
    parse_cron(expr).map(|_| ())
}

/// "30d", "12h", "90m", "45s", "2w" or a bare number of days.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("{s:?} is not a duration such as \"30d\", \"12h\", \"5m\" or \"2w\"")
    })?;
    let secs = match unit.trim() {
        "" | "d" | "day" | "days" => 86_400,
        "h" | "hour" | "hours" => 3_600,
        "m" | "min" | "minutes" => 60,
        "s" | "sec" | "seconds" => 1,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use d, h, m, s or w")),
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
