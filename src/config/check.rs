//! One checker per section: each takes its raw section, applies the
//! defaults, pushes every bad value onto the shared [`Problems`] list (named
//! by key and line) and returns its typed section. A bad value gets a
//! placeholder so the other checks still run; the config is refused at the
//! end if the list is not empty.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::model::{
    ContentConfig, DEFAULT_SUBJECT, DatabaseConfig, DigestBody, DkimSettings, FeedsConfig,
    HttpConfig, InboundConfig, MailConfig, Publication, ScheduleConfig, Security, SmtpConfig,
    Transport,
};
use super::problems::Problems;
use super::raw::{
    RawContent, RawDatabase, RawDkim, RawFeeds, RawHttp, RawInbound, RawMail, RawPublication,
    RawSchedule, RawSmtp,
};
use super::values::{
    BounceAddress, check_cron, is_dns_name, is_env_name, is_host_port, looks_like_mailbox,
    mailbox_domain, parse_base_url, parse_duration, sqlite_path,
};

/// `[publication]`: title and base_url are required.
pub(super) fn publication(p: RawPublication, problems: &mut Problems<'_>) -> Publication {
    let title = match p.title.map(|t| t.trim().to_string()) {
        Some(t) if !t.is_empty() => t,
        Some(_) => {
            problems.bad("publication.title", "must not be empty");
            String::new()
        }
        None => {
            problems.bad("publication.title", "missing required key");
            String::new()
        }
    };
    let base_url = match p.base_url.as_deref() {
        None => {
            problems.bad("publication.base_url", "missing required key (the public address of the site, e.g. \"https://example.org/\")");
            None
        }
        Some(s) => match parse_base_url(s) {
            Ok(u) => Some(u),
            Err(m) => {
                problems.bad("publication.base_url", m);
                None
            }
        },
    };
    let timezone = match p
        .timezone
        .as_deref()
        .unwrap_or("UTC")
        .parse::<chrono_tz::Tz>()
    {
        Ok(tz) => tz,
        Err(_) => {
            problems.bad(
                "publication.timezone",
                format!(
                    "unknown time zone {:?}; use an IANA name such as \"Europe/London\" or \"UTC\"",
                    p.timezone.unwrap_or_default()
                ),
            );
            chrono_tz::UTC
        }
    };
    let language = p.language.unwrap_or_else(|| "en".into());
    if language.is_empty()
        || !language.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
    {
        problems.bad(
            "publication.language",
            format!("{language:?} is not a language tag such as \"en\" or \"en-GB\""),
        );
    }
    Publication {
        title,
        description: p.description.unwrap_or_default(),
        // A placeholder when refused: the problem list is not empty then.
        base_url: base_url
            .unwrap_or_else(|| Url::parse("https://invalid.example/").expect("literal URL")),
        language,
        timezone,
    }
}

/// `[content]`: the folder (relative to config.toml) and the article size limit.
pub(super) fn content(c: RawContent, root: &Path, problems: &mut Problems<'_>) -> ContentConfig {
    let max_article_bytes = c.max_article_bytes.unwrap_or(1024 * 1024);
    if max_article_bytes == 0 {
        problems.bad("content.max_article_bytes", "must be greater than 0");
    }
    ContentConfig {
        dir: root.join(c.dir.as_deref().unwrap_or("content")),
        max_article_bytes,
    }
}

/// `[feeds]`: the output folder and how many items the feeds carry.
pub(super) fn feeds(f: RawFeeds, root: &Path, problems: &mut Problems<'_>) -> FeedsConfig {
    let items = f.items.unwrap_or(50);
    if !(1..=100_000).contains(&items) {
        problems.bad(
            "feeds.items",
            format!("must be between 1 and 100000, not {items}"),
        );
    }
    FeedsConfig {
        dir: root.join(f.dir.as_deref().unwrap_or("feeds")),
        items: items as usize,
    }
}

/// `[database]`: a SQLite URL, its file relative to config.toml.
pub(super) fn database(d: RawDatabase, root: &Path, problems: &mut Problems<'_>) -> DatabaseConfig {
    let url = d.url.unwrap_or_else(|| "sqlite://gazette.db".into());
    let path = match sqlite_path(&url) {
        Some(p) => root.join(p),
        None => {
            problems.bad(
                "database.url",
                format!("{url:?} is not a SQLite URL such as \"sqlite://gazette.db\""),
            );
            root.join("gazette.db")
        }
    };
    DatabaseConfig { url, path }
}

/// `[schedule]`: a standard 5-field cron expression.
pub(super) fn schedule(s: RawSchedule, problems: &mut Problems<'_>) -> ScheduleConfig {
    let cron = s.cron.unwrap_or_else(|| "*/15 * * * *".into());
    if let Err(m) = check_cron(&cron) {
        problems.bad("schedule.cron", m);
    }
    ScheduleConfig { cron }
}

/// `[mail]`, with `[mail.smtp]` and `[mail.dkim]`.
pub(super) fn mail(m: RawMail, root: &Path, problems: &mut Problems<'_>) -> MailConfig {
    let subject = m.subject.unwrap_or_else(|| DEFAULT_SUBJECT.into());
    if subject.trim().is_empty() {
        problems.bad("mail.subject", "must not be empty");
    }
    let rate_per_second = m.rate_per_second.unwrap_or(50.0);
    if !(rate_per_second > 0.0 && rate_per_second.is_finite()) {
        problems.bad(
            "mail.rate_per_second",
            format!("must be a positive number, not {rate_per_second}"),
        );
    }
    let concurrency = m.concurrency.unwrap_or(4);
    if !(1..=256).contains(&concurrency) {
        problems.bad(
            "mail.concurrency",
            format!("must be between 1 and 256, not {concurrency}"),
        );
    }
    let max_attempts = m.max_attempts.unwrap_or(5);
    if !(1..=100).contains(&max_attempts) {
        problems.bad(
            "mail.max_attempts",
            format!("must be between 1 and 100, not {max_attempts}"),
        );
    }
    let skip_older_than = match parse_duration(m.skip_older_than.as_deref().unwrap_or("30d")) {
        Ok(d) => d,
        Err(msg) => {
            problems.bad("mail.skip_older_than", msg);
            Duration::from_secs(30 * 86400)
        }
    };
    let retry_base = match parse_duration(m.retry_base.as_deref().unwrap_or("5m")) {
        Ok(d) => d,
        Err(msg) => {
            problems.bad("mail.retry_base", msg);
            Duration::from_secs(300)
        }
    };
    for (key, value) in [("mail.from", &m.from), ("mail.reply_to", &m.reply_to)] {
        if let Some(v) = value
            && !looks_like_mailbox(v)
        {
            problems.bad(
                key,
                format!("{v:?} is not an address such as \"The Ledger <news@example.org>\""),
            );
        }
    }
    let bounce_address = m
        .bounce_address
        .as_deref()
        .and_then(|s| match BounceAddress::parse(s) {
            Ok(a) => Some(a),
            Err(e) => {
                problems.bad("mail.bounce_address", e);
                None
            }
        });
    let smtp = smtp(m.smtp, root, problems);
    let dkim = dkim(m.dkim, m.from.as_deref(), root, problems);
    MailConfig {
        from: m.from,
        reply_to: m.reply_to,
        transport: m.transport.unwrap_or(Transport::File),
        outbox: root.join(m.outbox.as_deref().unwrap_or("outbox")),
        subject,
        rate_per_second,
        concurrency: concurrency as usize,
        max_attempts: max_attempts as u32,
        skip_older_than,
        retry_base,
        digest: m.digest.unwrap_or(DigestBody::Full),
        smtputf8: m.smtputf8.unwrap_or(false),
        bounce_address,
        smtp,
        dkim,
    }
}

/// `[mail.smtp]`: the relay; the port defaults by security mode.
fn smtp(s: RawSmtp, root: &Path, problems: &mut Problems<'_>) -> SmtpConfig {
    let timeout = match parse_duration(s.timeout.as_deref().unwrap_or("30s")) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            problems.bad("mail.smtp.timeout", "must be at least 1s");
            Duration::from_secs(30)
        }
        Err(msg) => {
            problems.bad("mail.smtp.timeout", msg);
            Duration::from_secs(30)
        }
    };
    let security = s.security.unwrap_or(Security::Starttls);
    let port = s.port.unwrap_or(match security {
        Security::Tls => 465,
        Security::Starttls => 587,
        Security::None => 25,
    });
    if !(1..=65535).contains(&port) {
        problems.bad(
            "mail.smtp.port",
            format!("must be between 1 and 65535, not {port}"),
        );
    }
    secret_name(
        "mail.smtp.password_env",
        s.password_env.as_deref(),
        problems,
    );
    SmtpConfig {
        host: s.host.unwrap_or_else(|| "localhost".into()),
        port: port as u16,
        security,
        username: s.username,
        password_env: s.password_env,
        ca_file: s.ca_file.map(|f| root.join(f)),
        timeout,
    }
}

/// A key that names the environment variable holding a secret.
fn secret_name(key: &str, value: Option<&str>, problems: &mut Problems<'_>) {
    if let Some(v) = value
        && !is_env_name(v)
    {
        problems.bad(
            key,
            format!(
                "{v:?} must be the NAME of an environment variable (letters, digits, '_'), never the secret itself"
            ),
        );
    }
}

/// `[mail.dkim]`: all or nothing. The key file is only named here: reading
/// and parsing key material is `mail::dkim`'s job (the CLI does it right
/// after loading, so a bad key still stops every command before it starts).
fn dkim(
    d: RawDkim,
    from: Option<&str>,
    root: &Path,
    problems: &mut Problems<'_>,
) -> Option<DkimSettings> {
    if d.selector.is_none() && d.domain.is_none() && d.key_file.is_none() {
        return None;
    }
    let selector = match d.selector {
        Some(s) if is_dns_name(&s) => Some(s),
        Some(s) => {
            problems.bad(
                "mail.dkim.selector",
                format!("{s:?} is not a DNS label such as \"mail2026\""),
            );
            None
        }
        None => {
            problems.bad(
                "mail.dkim.selector",
                "missing (required when [mail.dkim] is set)",
            );
            None
        }
    };
    let from_domain = from.and_then(mailbox_domain);
    let domain = match d.domain.or(from_domain) {
        Some(s) if is_dns_name(&s) && s.contains('.') => Some(s.to_ascii_lowercase()),
        Some(s) => {
            problems.bad(
                "mail.dkim.domain",
                format!("{s:?} is not a domain such as \"example.org\""),
            );
            None
        }
        None => {
            problems.bad(
                "mail.dkim.domain",
                "missing (required when [mail.dkim] is set and mail.from is not)",
            );
            None
        }
    };
    let key_file = match d.key_file {
        None => {
            problems.bad(
                "mail.dkim.key_file",
                "missing (required when [mail.dkim] is set)",
            );
            None
        }
        Some(f) => Some(root.join(f)),
    };
    let (selector, domain, key_file) = (selector?, domain?, key_file?);
    Some(DkimSettings {
        selector,
        domain,
        key_file,
        key_file_origin: problems.origin("mail.dkim.key_file"),
    })
}

/// `[http]`: the listener, its limits, the admin token's variable, proxies.
pub(super) fn http(h: RawHttp, problems: &mut Problems<'_>) -> HttpConfig {
    secret_name(
        "http.admin_token_env",
        h.admin_token_env.as_deref(),
        problems,
    );
    let listen = h.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    if listen.parse::<SocketAddr>().is_err() && !is_host_port(&listen) {
        problems.bad(
            "http.listen",
            format!(
                "{listen:?} is not an address such as \"127.0.0.1:8080\", \"[::1]:8080\" or \"localhost:8080\""
            ),
        );
    }
    let mut timeout = |key: &str, value: Option<&str>, default: u64| match value
        .map(parse_duration)
        .unwrap_or(Ok(Duration::from_secs(default)))
    {
        Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(3600) => d,
        Ok(_) => {
            problems.bad(key, "must be between 1s and 1h");
            Duration::from_secs(default)
        }
        Err(msg) => {
            problems.bad(key, msg);
            Duration::from_secs(default)
        }
    };
    let header_timeout = timeout("http.header_timeout", h.header_timeout.as_deref(), 10);
    let body_timeout = timeout("http.body_timeout", h.body_timeout.as_deref(), 30);
    let admin_session_idle = match h
        .admin_session_idle
        .as_deref()
        .map(parse_duration)
        .unwrap_or(Ok(Duration::from_secs(2 * 3600)))
    {
        Ok(d) if d >= Duration::from_secs(60) && d <= Duration::from_secs(30 * 86_400) => d,
        Ok(_) => {
            problems.bad("http.admin_session_idle", "must be between 1m and 30d");
            Duration::from_secs(2 * 3600)
        }
        Err(msg) => {
            problems.bad("http.admin_session_idle", msg);
            Duration::from_secs(2 * 3600)
        }
    };
    let max_connections = h.max_connections.unwrap_or(512);
    if !(1..=100_000).contains(&max_connections) {
        problems.bad(
            "http.max_connections",
            format!("must be between 1 and 100000, not {max_connections}"),
        );
    }
    let mut trusted_proxies = Vec::new();
    for p in h.trusted_proxies.iter().flatten() {
        match crate::config::IpNet::parse(p) {
            Ok(net) => trusted_proxies.push(net),
            Err(e) => problems.bad("http.trusted_proxies", e),
        }
    }
    let subscribe_burst = h.subscribe_burst.unwrap_or(5);
    let subscribe_per_minute = h.subscribe_per_minute.unwrap_or(3);
    for (key, value) in [
        ("http.subscribe_burst", subscribe_burst),
        ("http.subscribe_per_minute", subscribe_per_minute),
    ] {
        if !(1..=10_000).contains(&value) {
            problems.bad(key, format!("must be between 1 and 10000, not {value}"));
        }
    }
    HttpConfig {
        listen,
        admin_token_env: h.admin_token_env,
        admin_session_idle,
        subscribe_burst: subscribe_burst as u32,
        subscribe_per_minute: subscribe_per_minute as u32,
        header_timeout,
        body_timeout,
        max_connections: max_connections as usize,
        trusted_proxies,
    }
}

/// `[inbound]`: serve's SMTP listener for returns and what is kept of them.
pub(super) fn inbound(i: RawInbound, problems: &mut Problems<'_>) -> InboundConfig {
    if let Some(listen) = &i.listen
        && listen.parse::<SocketAddr>().is_err()
        && !is_host_port(listen)
    {
        problems.bad(
            "inbound.listen",
            format!("{listen:?} is not an address such as \"127.0.0.1:2526\""),
        );
    }
    let mut int =
        |key: &str, value: Option<i64>, default: i64, range: std::ops::RangeInclusive<i64>| {
            let v = value.unwrap_or(default);
            if range.contains(&v) {
                v
            } else {
                problems.bad(
                    key,
                    format!(
                        "must be between {} and {}, not {v}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        };
    let max_message_bytes = int(
        "inbound.max_message_bytes",
        i.max_message_bytes,
        10 << 20,
        1024..=(1 << 30),
    );
    let max_sessions = int("inbound.max_sessions", i.max_sessions, 20, 1..=10_000);
    let keep_raw_bytes = int(
        "inbound.keep_raw_bytes",
        i.keep_raw_bytes,
        256 << 10,
        0..=(64 << 20),
    );
    let soft_bounce_limit = int(
        "inbound.soft_bounce_limit",
        i.soft_bounce_limit,
        3,
        0..=1000,
    );
    // One soft bounce never changes a subscriber (the contract): 0 turns
    // the rule off, else it takes at least two issues.
    if soft_bounce_limit == 1 {
        problems.bad(
            "inbound.soft_bounce_limit",
            "must be 0 (never) or at least 2: one soft bounce never marks a subscriber bounced",
        );
    }
    let mut duration =
        |key: &str, value: Option<&str>, default: &str, least: Duration| match parse_duration(
            value.unwrap_or(default),
        ) {
            Ok(d) if d >= least => d,
            Ok(_) => {
                problems.bad(key, format!("must be at least {}s", least.as_secs()));
                parse_duration(default).unwrap_or(least)
            }
            Err(msg) => {
                problems.bad(key, msg);
                parse_duration(default).unwrap_or(least)
            }
        };
    let session_timeout = duration(
        "inbound.session_timeout",
        i.session_timeout.as_deref(),
        "10m",
        Duration::from_secs(1),
    );
    let keep_raw_for = duration(
        "inbound.keep_raw_for",
        i.keep_raw_for.as_deref(),
        "30d",
        Duration::ZERO,
    );
    let soft_bounce_window = duration(
        "inbound.soft_bounce_window",
        i.soft_bounce_window.as_deref(),
        "90d",
        Duration::from_secs(86_400),
    );
    InboundConfig {
        listen: i.listen,
        max_message_bytes: max_message_bytes as usize,
        max_sessions: max_sessions as usize,
        session_timeout,
        keep_raw_for,
        keep_raw_bytes: keep_raw_bytes as usize,
        soft_bounce_limit: soft_bounce_limit as u32,
        soft_bounce_window,
    }
}
