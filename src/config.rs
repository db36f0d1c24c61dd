//! Typed configuration: `config.toml` plus `GAZETTE_<SECTION>_<KEY>` overrides.
//!
//! Loading happens in three layers so that every error can say *where*, and
//! every mistake is collected before the file is refused (one run shows them
//! all, not one per edit):
//! 1. the file is parsed into a spanned table; each key is then deserialized
//!    into [`RawConfig`] (all fields optional, unknown keys rejected) on its
//!    own, so an unknown key or a wrong type costs that key only and is named
//!    with its line;
//! 2. each environment override is deserialized on its own, so a bad one is
//!    reported with the variable's name; then it replaces the file's value;
//! 3. [`Config::from_raw`] applies defaults and checks values (URLs, cron,
//!    time zone, ranges), naming the key and the line it came from.
//!
//! Adding a key is one line in its `raw_section!` plus its check in `from_raw`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// `[publication]`: who publishes, and where the public site lives.
#[derive(Debug, Clone)]
pub struct Publication {
    pub title: String,
    pub description: String,
    /// Absolute http(s) URL, always ending with '/'.
    pub base_url: Url,
    /// BCP 47 language tag, e.g. "en".
    pub language: String,
    pub timezone: chrono_tz::Tz,
}

impl Publication {
    /// Absolute URL of a site path such as `feeds/atom.xml` (no leading '/').
    pub fn url(&self, path: &str) -> String {
        match self.base_url.join(path.trim_start_matches('/')) {
            Ok(u) => u.to_string(),
            Err(_) => format!("{}{}", self.base_url, path.trim_start_matches('/')),
        }
    }
}

/// The whole, checked configuration. Paths are absolute (resolved against the
/// folder of config.toml).
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file this came from.
    pub path: PathBuf,
    pub publication: Publication,
    pub content: ContentConfig,
    pub feeds: FeedsConfig,
    pub database: DatabaseConfig,
    pub schedule: ScheduleConfig,
    pub mail: MailConfig,
    pub http: HttpConfig,
}

#[derive(Debug, Clone)]
pub struct ContentConfig {
    pub dir: PathBuf,
    /// Article files larger than this are reported and skipped.
    pub max_article_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct FeedsConfig {
    pub dir: PathBuf,
    /// How many of the newest articles the feeds carry.
    pub items: usize,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// As written (for messages).
    pub url: String,
    /// The SQLite file.
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Standard 5-field crontab, Sunday = 0; checked at load.
    pub cron: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestBody {
    Full,
    Summary,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Required once mail is sent; checked then.
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub transport: Transport,
    pub outbox: PathBuf,
    /// A template; the default names the issue title.
    pub subject: String,
    pub rate_per_second: f64,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub skip_older_than: Duration,
    /// First retry delay after a 4xx or a dropped connection; doubles each time.
    pub retry_base: Duration,
    pub digest: DigestBody,
    /// Whether addresses with a non-ASCII local part (`zoë@…`) may enter the
    /// list: only when the relay offers SMTPUTF8 (RFC 6531). Off by default.
    pub smtputf8: bool,
    pub smtp: SmtpConfig,
    /// `[mail.dkim]`: sign every message when set.
    pub dkim: Option<DkimSettings>,
}

/// `[mail.dkim]`: the key was read and checked at load.
#[derive(Debug, Clone)]
pub struct DkimSettings {
    /// DNS selector: the public key is the TXT record `{selector}._domainkey.{domain}`.
    pub selector: String,
    /// The signing domain (`d=`); defaults to the domain of `mail.from`.
    pub domain: String,
    pub key_file: PathBuf,
    pub key: crate::mail::dkim::DkimKey,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// The NAME of the environment variable holding the password.
    pub password_env: Option<String>,
    /// Extra trusted root certificate (PEM), e.g. a private CA's.
    pub ca_file: Option<PathBuf>,
    /// The most the server may take for a whole reply (and to connect, or
    /// to take one write); default 30 s.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `HOST:PORT`; a host name is resolved when `serve` starts.
    pub listen: String,
    /// The NAME of the environment variable holding the admin API token.
    pub admin_token_env: Option<String>,
    /// `POST /subscribe` per client address: this many at once...
    pub subscribe_burst: u32,
    /// ...then this many a minute.
    pub subscribe_per_minute: u32,
    /// A request's head must arrive within this (also the keep-alive idle limit).
    pub header_timeout: Duration,
    /// The longest wait for the next piece of a request body.
    pub body_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<crate::web::proxy::IpNet>,
}

pub const DEFAULT_SUBJECT: &str = "{{ issue.title }} | {{ publication.title }}";

// ---------------------------------------------------------------------------
// Raw layer: exactly what the file (or an override) says.

macro_rules! raw_section {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $(pub $field: Option<$ty>,)* }

        impl $name {
            /// Values set in `over` replace ours.
            fn merge(&mut self, over: $name) {
                $(if over.$field.is_some() { self.$field = over.$field; })*
            }
        }
    };
}

raw_section!(RawPublication {
    title: String,
    description: String,
    base_url: String,
    language: String,
    timezone: String
});
raw_section!(RawContent {
    dir: String,
    max_article_bytes: u64
});
raw_section!(RawFeeds {
    dir: String,
    items: i64
});
raw_section!(RawDatabase { url: String });
raw_section!(RawSchedule { cron: String });
raw_section!(RawSmtp {
    host: String,
    port: i64,
    security: Security,
    username: String,
    password_env: String,
    ca_file: String,
    timeout: String
});
raw_section!(RawDkim {
    selector: String,
    domain: String,
    key_file: String
});
raw_section!(RawHttp {
    listen: String,
    admin_token_env: String,
    subscribe_burst: i64,
    subscribe_per_minute: i64,
    header_timeout: String,
    body_timeout: String,
    max_connections: i64,
    trusted_proxies: Vec<String>
});

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub transport: Option<Transport>,
    pub outbox: Option<String>,
    pub subject: Option<String>,
    pub rate_per_second: Option<f64>,
    pub concurrency: Option<i64>,
    pub max_attempts: Option<i64>,
    pub skip_older_than: Option<String>,
    pub retry_base: Option<String>,
    pub digest: Option<DigestBody>,
    pub smtputf8: Option<bool>,
    #[serde(default)]
    pub smtp: RawSmtp,
    #[serde(default)]
    pub dkim: RawDkim,
}

impl RawMail {
    fn merge(&mut self, over: RawMail) {
        macro_rules! take {
            ($($f:ident),*) => { $(if over.$f.is_some() { self.$f = over.$f; })* };
        }
        take!(
            from,
            reply_to,
            transport,
            outbox,
            subject,
            rate_per_second,
            concurrency,
            max_attempts,
            skip_older_than,
            retry_base,
            digest,
            smtputf8
        );
        self.smtp.merge(over.smtp);
        self.dkim.merge(over.dkim);
    }
}

/// The file as written: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub publication: RawPublication,
    #[serde(default)]
    pub content: RawContent,
    #[serde(default)]
    pub feeds: RawFeeds,
    #[serde(default)]
    pub database: RawDatabase,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub http: RawHttp,
}

impl RawConfig {
    fn merge(&mut self, over: RawConfig) {
        self.publication.merge(over.publication);
        self.content.merge(over.content);
        self.feeds.merge(over.feeds);
        self.database.merge(over.database);
        self.schedule.merge(over.schedule);
        self.mail.merge(over.mail);
        self.http.merge(over.http);
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Where a value came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the config file.
    File { path: PathBuf, line: Option<usize> },
    /// An environment variable.
    Env(String),
    /// Not set anywhere: the key is missing.
    Missing { path: PathBuf },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(l),
            } => write!(f, "{}:{l}", path.display()),
            Origin::File { path, line: None } | Origin::Missing { path } => {
                write!(f, "{}", path.display())
            }
            Origin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// One bad key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    pub origin: Origin,
    /// Dotted key, e.g. `publication.base_url`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type: toml's message names line and key.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<KeyProblem>),
}

// ---------------------------------------------------------------------------
// Loading

const SECTIONS: &[&str] = &[
    "publication",
    "content",
    "feeds",
    "database",
    "schedule",
    "mail.smtp",
    "mail.dkim",
    "mail",
    "http",
];

impl Config {
    /// Load `path`, apply overrides from the process environment, check.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load_with_env(path, &env)
    }

    /// Like [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text, env)
    }

    /// Parse config text that was read from `path` (used for messages and to
    /// resolve relative paths).
    ///
    /// Every mistake is collected before anything is refused, so that one run
    /// shows them all: each key of the file is deserialized on its own (an
    /// unknown key or a wrong type costs that key only), then each override,
    /// then [`Config::from_raw`] checks the values.
    pub fn parse(path: &Path, text: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let (doc, syntax) = toml::de::DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            // Past a syntax error the document's shape is a guess: stop here.
            let message = syntax
                .iter()
                .map(|e| describe_toml_error(e, text))
                .collect::<Vec<_>>()
                .join(&format!("\n{shown}: "));
            return Err(ConfigError::Parse {
                origin: shown,
                message,
            });
        }
        let mut raw = RawConfig::default();
        let mut problems = Vec::new();
        read_keys(
            doc.get_ref(),
            &mut Vec::new(),
            &mut raw,
            &mut |key, span, message| {
                problems.push(KeyProblem {
                    origin: Origin::File {
                        path: path.to_path_buf(),
                        line: Some(line_of(text, span.start)),
                    },
                    key,
                    message,
                })
            },
        );
        let mut from_env = BTreeMap::new();
        // Variables that hold secrets named by the config are not overrides.
        let secrets = [
            raw.mail.smtp.password_env.clone(),
            raw.http.admin_token_env.clone(),
        ];
        for (var, value) in env {
            let Some(rest) = var.strip_prefix("GAZETTE_") else {
                continue;
            };
            if secrets.iter().flatten().any(|s| s == var) {
                continue;
            }
            // Only GAZETTE_<SECTION>_... is ours; other GAZETTE_ variables
            // (GAZETTE_CONFIG, GAZETTE_LOG, a token) are left alone. Within a
            // section, an unknown key is an error: it is almost surely a typo.
            let Some((section, key)) = split_env_key(rest) else {
                continue;
            };
            match env_override(&section, &key, value) {
                Ok(over) => {
                    raw.merge(over);
                    from_env.insert(format!("{section}.{key}"), var.clone());
                }
                Err(message) => problems.push(KeyProblem {
                    origin: Origin::Env(var.clone()),
                    key: format!("{section}.{key}"),
                    message,
                }),
            }
        }
        let locator = Locator {
            path: path.to_path_buf(),
            text,
            from_env,
        };
        Config::from_raw(raw, &locator, problems)
    }

    /// Apply defaults and check values. `earlier` holds the problems found
    /// while reading; a key named there is not reported again (a `title = 5`
    /// is a wrong type, not also a missing title).
    fn from_raw(
        raw: RawConfig,
        at: &Locator<'_>,
        earlier: Vec<KeyProblem>,
    ) -> Result<Config, ConfigError> {
        let root = at.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        let root = std::path::absolute(&root).unwrap_or(root);
        let reported: Vec<String> = earlier.iter().map(|p| p.key.clone()).collect();
        let mut problems = earlier;
        let mut bad = |key: &str, message: String| {
            if reported.iter().any(|k| k == key) {
                return;
            }
            problems.push(KeyProblem {
                origin: at.origin(key),
                key: key.to_string(),
                message,
            })
        };

        let p = raw.publication;
        let title = match p.title.map(|t| t.trim().to_string()) {
            Some(t) if !t.is_empty() => t,
            Some(_) => {
                bad("publication.title", "must not be empty".into());
                String::new()
            }
            None => {
                bad("publication.title", "missing required key".into());
                String::new()
            }
        };
        let base_url = match p.base_url.as_deref() {
            None => {
                bad("publication.base_url", "missing required key (the public address of the site, e.g. \"https://example.org/\")".into());
                None
            }
            Some(s) => match parse_base_url(s) {
                Ok(u) => Some(u),
                Err(m) => {
                    bad("publication.base_url", m);
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
                bad(
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
                !part.is_empty()
                    && part.len() <= 8
                    && part.chars().all(|c| c.is_ascii_alphanumeric())
            })
        {
            bad(
                "publication.language",
                format!("{language:?} is not a language tag such as \"en\" or \"en-GB\""),
            );
        }
        let description = p.description.unwrap_or_default();

        let c = raw.content;
        let content_dir = root.join(c.dir.as_deref().unwrap_or("content"));
        let max_article_bytes = c.max_article_bytes.unwrap_or(1024 * 1024);
        if max_article_bytes == 0 {
            bad("content.max_article_bytes", "must be greater than 0".into());
        }

        let f = raw.feeds;
        let feeds_dir = root.join(f.dir.as_deref().unwrap_or("feeds"));
        let items = f.items.unwrap_or(50);
        if !(1..=100_000).contains(&items) {
            bad(
                "feeds.items",
                format!("must be between 1 and 100000, not {items}"),
            );
        }

        let db_url = raw
            .database
            .url
            .unwrap_or_else(|| "sqlite://gazette.db".into());
        let db_path = match sqlite_path(&db_url) {
            Some(p) => root.join(p),
            None => {
                bad(
                    "database.url",
                    format!("{db_url:?} is not a SQLite URL such as \"sqlite://gazette.db\""),
                );
                root.join("gazette.db")
            }
        };

        let cron = raw.schedule.cron.unwrap_or_else(|| "*/15 * * * *".into());
        if let Err(m) = check_cron(&cron) {
            bad("schedule.cron", m);
        }

        let m = raw.mail;
        let subject = m.subject.unwrap_or_else(|| DEFAULT_SUBJECT.into());
        if subject.trim().is_empty() {
            bad("mail.subject", "must not be empty".into());
        }
        let rate_per_second = m.rate_per_second.unwrap_or(50.0);
        if !(rate_per_second > 0.0 && rate_per_second.is_finite()) {
            bad(
                "mail.rate_per_second",
                format!("must be a positive number, not {rate_per_second}"),
            );
        }
        let concurrency = m.concurrency.unwrap_or(4);
        if !(1..=256).contains(&concurrency) {
            bad(
                "mail.concurrency",
                format!("must be between 1 and 256, not {concurrency}"),
            );
        }
        let max_attempts = m.max_attempts.unwrap_or(5);
        if !(1..=100).contains(&max_attempts) {
            bad(
                "mail.max_attempts",
                format!("must be between 1 and 100, not {max_attempts}"),
            );
        }
        let skip_older_than = match parse_duration(m.skip_older_than.as_deref().unwrap_or("30d")) {
            Ok(d) => d,
            Err(msg) => {
                bad("mail.skip_older_than", msg);
                Duration::from_secs(30 * 86400)
            }
        };
        let retry_base = match parse_duration(m.retry_base.as_deref().unwrap_or("5m")) {
            Ok(d) => d,
            Err(msg) => {
                bad("mail.retry_base", msg);
                Duration::from_secs(300)
            }
        };
        for (key, value) in [("mail.from", &m.from), ("mail.reply_to", &m.reply_to)] {
            if let Some(v) = value
                && !looks_like_mailbox(v)
            {
                bad(
                    key,
                    format!("{v:?} is not an address such as \"The Ledger <news@example.org>\""),
                );
            }
        }
        let s = m.smtp;
        let smtp_timeout = match parse_duration(s.timeout.as_deref().unwrap_or("30s")) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                bad("mail.smtp.timeout", "must be at least 1s".into());
                Duration::from_secs(30)
            }
            Err(msg) => {
                bad("mail.smtp.timeout", msg);
                Duration::from_secs(30)
            }
        };
        let port = s
            .port
            .unwrap_or(match s.security.unwrap_or(Security::Starttls) {
                Security::Tls => 465,
                Security::Starttls => 587,
                Security::None => 25,
            });
        if !(1..=65535).contains(&port) {
            bad(
                "mail.smtp.port",
                format!("must be between 1 and 65535, not {port}"),
            );
        }
        for (key, value) in [
            ("mail.smtp.password_env", &s.password_env),
            ("http.admin_token_env", &raw.http.admin_token_env),
        ] {
            if let Some(v) = value
                && !is_env_name(v)
            {
                bad(
                    key,
                    format!(
                        "{v:?} must be the NAME of an environment variable (letters, digits, '_'), never the secret itself"
                    ),
                );
            }
        }

        let dkim = dkim_settings(m.dkim, m.from.as_deref(), &root, &mut bad);

        let listen = raw.http.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        if listen.parse::<SocketAddr>().is_err() && !is_host_port(&listen) {
            bad(
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
                bad(key, "must be between 1s and 1h".into());
                Duration::from_secs(default)
            }
            Err(msg) => {
                bad(key, msg);
                Duration::from_secs(default)
            }
        };
        let header_timeout = timeout(
            "http.header_timeout",
            raw.http.header_timeout.as_deref(),
            10,
        );
        let body_timeout = timeout("http.body_timeout", raw.http.body_timeout.as_deref(), 30);
        let max_connections = raw.http.max_connections.unwrap_or(512);
        if !(1..=100_000).contains(&max_connections) {
            bad(
                "http.max_connections",
                format!("must be between 1 and 100000, not {max_connections}"),
            );
        }
        let mut trusted_proxies = Vec::new();
        for p in raw.http.trusted_proxies.iter().flatten() {
            match crate::web::proxy::IpNet::parse(p) {
                Ok(net) => trusted_proxies.push(net),
                Err(e) => bad("http.trusted_proxies", e.to_string()),
            }
        }

        let subscribe_burst = raw.http.subscribe_burst.unwrap_or(5);
        let subscribe_per_minute = raw.http.subscribe_per_minute.unwrap_or(3);
        for (key, value) in [
            ("http.subscribe_burst", subscribe_burst),
            ("http.subscribe_per_minute", subscribe_per_minute),
        ] {
            if !(1..=10_000).contains(&value) {
                bad(key, format!("must be between 1 and 10000, not {value}"));
            }
        }

        if !problems.is_empty() {
            // File order first, then overrides, then what is missing.
            problems.sort_by_cached_key(|p| match &p.origin {
                Origin::File { line, .. } => (0, line.unwrap_or(0), String::new()),
                Origin::Env(var) => (1, 0, var.clone()),
                Origin::Missing { .. } => (2, 0, String::new()),
            });
            return Err(ConfigError::Invalid(problems));
        }
        let base_url = base_url
            .unwrap_or_else(|| Url::parse("https://invalid.example/").expect("literal URL"));
        Ok(Config {
            path: at.path.clone(),
            publication: Publication {
                title,
                description,
                base_url,
                language,
                timezone,
            },
            content: ContentConfig {
                dir: content_dir,
                max_article_bytes,
            },
            feeds: FeedsConfig {
                dir: feeds_dir,
                items: items as usize,
            },
            database: DatabaseConfig {
                url: db_url,
                path: db_path,
            },
            schedule: ScheduleConfig { cron },
            mail: MailConfig {
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
                smtp: SmtpConfig {
                    host: s.host.unwrap_or_else(|| "localhost".into()),
                    port: port as u16,
                    security: s.security.unwrap_or(Security::Starttls),
                    username: s.username,
                    password_env: s.password_env,
                    ca_file: s.ca_file.map(|f| root.join(f)),
                    timeout: smtp_timeout,
                },
                dkim,
            },
            http: HttpConfig {
                listen,
                admin_token_env: raw.http.admin_token_env,
                subscribe_burst: subscribe_burst as u32,
                subscribe_per_minute: subscribe_per_minute as u32,
                header_timeout,
                body_timeout,
                max_connections: max_connections as usize,
                trusted_proxies,
            },
        })
    }
}

/// Finds where a key was set, for messages.
struct Locator<'a> {
    path: PathBuf,
    text: &'a str,
    /// dotted key -> the environment variable that set it
    from_env: BTreeMap<String, String>,
}

impl Locator<'_> {
    fn origin(&self, dotted: &str) -> Origin {
        if let Some(var) = self.from_env.get(dotted) {
            return Origin::Env(var.clone());
        }
        match find_key_line(self.text, dotted) {
            Some(line) => Origin::File {
                path: self.path.clone(),
                line: Some(line),
            },
            None => Origin::Missing {
                path: self.path.clone(),
            },
        }
    }
}

/// The 1-based line where `section.key` is set, for the usual layout of
/// `[section]` headers followed by `key = value` lines.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.')?;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            current = h.trim_end_matches(']').trim().to_string();
            continue;
        }
        if current == section
            && let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            return Some(i + 1);
        }
    }
    None
}

/// toml's own message already shows the line, column and offending key; keep
/// it, but on one line per fact.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let src = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {msg} (in `{src}`)")
        }
        None => msg,
    }
}

/// `MAIL_SMTP_HOST` -> ("mail.smtp", "host").
fn split_env_key(rest: &str) -> Option<(String, String)> {
    let lower = rest.to_ascii_lowercase();
    SECTIONS.iter().find_map(|s| {
        let prefix = s.replace('.', "_") + "_";
        lower
            .strip_prefix(&prefix)
            .filter(|k| !k.is_empty())
            .map(|k| (s.to_string(), k.to_string()))
    })
}

/// Deserialize one override as if the file had `[section] key = value`. The
/// value is read as TOML when it is a TOML value (numbers, booleans), else as
/// a string.
fn env_override(section: &str, key: &str, value: &str) -> Result<RawConfig, String> {
    let as_string = toml::Value::String(value.to_string()).to_string();
    let mut last = String::new();
    for literal in [value, as_string.as_str()] {
        let doc = format!("[{section}]\n{key} = {literal}\n");
        match toml::from_str::<RawConfig>(&doc) {
            Ok(r) => return Ok(r),
            Err(e) => last = e.message().to_string(),
        }
    }
    Err(key_message(&last))
}

/// Deserialize every key of `table` (at `path`) on its own into `raw`, so that
/// a bad key costs that key only; `bad(dotted key, span, message)` gets each
/// problem. Known sections are walked into; anything else is a leaf, which
/// [`RawConfig`] accepts or refuses (unknown key, wrong type, bad choice).
fn read_keys(
    table: &toml::de::DeTable<'_>,
    path: &mut Vec<String>,
    raw: &mut RawConfig,
    bad: &mut impl FnMut(String, std::ops::Range<usize>, String),
) {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        let dotted = path.join(".");
        if value.get_ref().is_table() && SECTIONS.contains(&dotted.as_str()) {
            if let Some(inner) = value.get_ref().as_table() {
                read_keys(inner, path, raw, bad);
            }
        } else {
            // The leaf alone, wrapped in its sections: `{mail: {smtp: {port: 25}}}`.
            let mut doc = value.clone();
            for name in path.iter().rev() {
                let mut t = toml::de::DeTable::new();
                t.insert(toml::Spanned::new(key.span(), name.clone().into()), doc);
                doc = toml::Spanned::new(key.span(), toml::de::DeValue::Table(t));
            }
            match RawConfig::deserialize(toml::de::ValueDeserializer::from(doc)) {
                Ok(one) => raw.merge(one),
                Err(e) => {
                    // A wrong value points at the value; an unknown key at the key.
                    let span = e.span().unwrap_or(key.span());
                    bad(dotted, span, key_message(e.message()))
                }
            }
        }
        path.pop();
    }
}

/// serde speaks of fields; a config file has keys.
fn key_message(serde_message: &str) -> String {
    let m = serde_message.trim();
    match m.strip_prefix("unknown field") {
        Some(rest) => format!("unknown key{rest}"),
        None => m.to_string(),
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `HOST:PORT` with a host name (resolved when `serve` starts).
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| {
        port.parse::<u16>().is_ok()
            && !host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    })
}

fn parse_base_url(s: &str) -> Result<Url, String> {
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
fn sqlite_path(url: &str) -> Option<PathBuf> {
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

fn check_cron(expr: &str) -> Result<(), String> {
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

/// `[mail.dkim]`: all or nothing; the key file is read and parsed now so that
/// a bad key is reported by `gazette check`, not by the first send.
fn dkim_settings(
    d: RawDkim,
    from: Option<&str>,
    root: &Path,
    bad: &mut impl FnMut(&str, String),
) -> Option<DkimSettings> {
    if d.selector.is_none() && d.domain.is_none() && d.key_file.is_none() {
        return None;
    }
    let selector = match d.selector {
        Some(s) if is_dns_name(&s) => Some(s),
        Some(s) => {
            bad(
                "mail.dkim.selector",
                format!("{s:?} is not a DNS label such as \"mail2026\""),
            );
            None
        }
        None => {
            bad(
                "mail.dkim.selector",
                "missing (required when [mail.dkim] is set)".into(),
            );
            None
        }
    };
    let from_domain = from.and_then(mailbox_domain);
    let domain = match d.domain.or(from_domain) {
        Some(s) if is_dns_name(&s) && s.contains('.') => Some(s.to_ascii_lowercase()),
        Some(s) => {
            bad(
                "mail.dkim.domain",
                format!("{s:?} is not a domain such as \"example.org\""),
            );
            None
        }
        None => {
            bad(
                "mail.dkim.domain",
                "missing (required when [mail.dkim] is set and mail.from is not)".into(),
            );
            None
        }
    };
    let key = match d.key_file {
        None => {
            bad(
                "mail.dkim.key_file",
                "missing (required when [mail.dkim] is set)".into(),
            );
            None
        }
        Some(f) => {
            let path = root.join(f);
            match std::fs::read_to_string(&path) {
                Err(e) => {
                    bad(
                        "mail.dkim.key_file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    None
                }
                Ok(text) => match crate::mail::dkim::parse_key(&text) {
                    Ok(key) => Some((path, key)),
                    Err(e) => {
                        bad("mail.dkim.key_file", format!("{}: {e}", path.display()));
                        None
                    }
                },
            }
        }
    };
    let (selector, domain, (key_file, key)) = (selector?, domain?, key?);
    Some(DkimSettings {
        selector,
        domain,
        key_file,
        key,
    })
}

/// The domain of `Name <local@domain>` or `local@domain`.
fn mailbox_domain(s: &str) -> Option<String> {
    let addr = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s.trim(),
    };
    addr.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

fn is_dns_name(s: &str) -> bool {
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

fn looks_like_mailbox(s: &str) -> bool {
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

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[publication]\ntitle = \"The Ledger\"\nbase_url = \"https://example.org/paper\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/srv/gz/config.toml"), text, &[])
    }

    fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(Path::new("/srv/gz/config.toml"), text, &env)
    }

    fn err(text: &str) -> String {
        parse(text)
            .expect_err("config should be refused")
            .to_string()
    }

    #[test]
    fn minimal_config_gets_defaults_and_absolute_paths() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            c.publication.base_url.as_str(),
            "https://example.org/paper/"
        );
        assert_eq!(
            c.publication.url("feeds/atom.xml"),
            "https://example.org/paper/feeds/atom.xml"
        );
        assert_eq!(c.publication.timezone, chrono_tz::UTC);
        assert_eq!(c.content.dir, Path::new("/srv/gz/content"));
        assert_eq!(c.feeds.dir, Path::new("/srv/gz/feeds"));
        assert_eq!(c.feeds.items, 50);
        assert_eq!(c.database.path, Path::new("/srv/gz/gazette.db"));
        assert_eq!(c.schedule.cron, "*/15 * * * *");
        assert_eq!(c.mail.transport, Transport::File);
        assert_eq!(c.mail.outbox, Path::new("/srv/gz/outbox"));
        assert!(c.mail.subject.contains("issue.title"));
        assert_eq!(c.mail.skip_older_than, Duration::from_secs(30 * 86400));
        assert_eq!(c.http.listen, "127.0.0.1:8080");
    }

    #[test]
    fn the_repository_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let c = Config::load_with_env(&path, &[]).unwrap();
        assert!(!c.publication.title.is_empty());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = err(&format!(
            "{MINIMAL}\n[feeds]\nitems = 10\ncolour = \"red\"\n"
        ));
        assert!(e.contains("config.toml:7:"), "{e}");
        assert!(e.contains("colour"), "{e}");
        assert!(e.starts_with("/srv/gz/config.toml"), "{e}");
    }

    #[test]
    fn unknown_section_is_named() {
        let e = err(&format!("{MINIMAL}[feed]\nitems = 10\n"));
        assert!(e.contains("feed") && e.contains("config.toml:4:"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_its_line() {
        let e = err(&format!("{MINIMAL}[feeds]\nitems = \"fifty\"\n"));
        assert!(e.contains("config.toml:5:"), "{e}");
        assert!(e.contains("items"), "{e}");
    }

    #[test]
    fn bad_enum_value_lists_the_choices() {
        let e = err(&format!("{MINIMAL}[mail]\ntransport = \"pigeon\"\n"));
        assert!(
            e.contains("config.toml:5:") && e.contains("pigeon") && e.contains("smtp"),
            "{e}"
        );
    }

    #[test]
    fn missing_required_keys_are_all_reported() {
        let e = err("[publication]\ndescription = \"x\"\n");
        assert!(e.contains("publication.title: missing required key"), "{e}");
        assert!(
            e.contains("publication.base_url: missing required key"),
            "{e}"
        );
    }

    #[test]
    fn bad_url_is_named_with_its_line() {
        let e = err("[publication]\ntitle = \"T\"\nbase_url = \"example.org/news\"\n");
        assert!(e.contains("config.toml:3: publication.base_url"), "{e}");
        let e = err("[publication]\ntitle = \"T\"\nbase_url = \"ftp://example.org/\"\n");
        assert!(e.contains("http or https"), "{e}");
    }

    #[test]
    fn bad_cron_is_named_with_its_line() {
        for bad in [
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "0 0 * * 8",
            "every day",
        ] {
            let e = err(&format!("{MINIMAL}[schedule]\ncron = \"{bad}\"\n"));
            assert!(e.contains("config.toml:5: schedule.cron"), "{bad}: {e}");
        }
    }

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
    fn bad_time_zone_is_named_with_its_line() {
        let e = err(
            "[publication]\ntitle = \"T\"\nbase_url = \"https://x.org/\"\ntimezone = \"Mars/Olympus\"\n",
        );
        assert!(
            e.contains("config.toml:4: publication.timezone") && e.contains("Mars/Olympus"),
            "{e}"
        );
    }

    #[test]
    fn several_bad_values_are_reported_together() {
        let e = err(&format!(
            "{MINIMAL}[feeds]\nitems = 0\n[mail]\nconcurrency = 0\nfrom = \"nobody\"\n"
        ));
        assert_eq!(e.lines().count(), 3, "{e}");
    }

    #[test]
    fn every_kind_of_mistake_is_reported_in_one_run() {
        let text = "[publication]\n\
                    base_url = \"https://example.org/\"\n\
                    colour = \"red\"\n\
                    timezone = \"Mars/Olympus\"\n\
                    [feeds]\n\
                    items = \"fifty\"\n\
                    size = 3\n\
                    [mail]\n\
                    transport = \"pigeon\"\n\
                    concurrency = 0\n\
                    smtp.port = \"twenty-five\"\n\
                    [mail.dkim]\n\
                    selectr = \"s1\"\n\
                    [http]\n\
                    listen = \"everywhere\"\n\
                    [feed]\n\
                    items = 1\n";
        let e = parse_env(
            text,
            &[
                ("GAZETTE_SCHEDULE_CRON", "never"),
                ("GAZETTE_HTTP_SUBSCRIBE_BURST", "many"),
                ("GAZETTE_MAIL_COLOUR", "blue"),
            ],
        )
        .expect_err("config should be refused")
        .to_string();
        let expected = [
            "config.toml:3: publication.colour: unknown key `colour`",
            "config.toml:4: publication.timezone: unknown time zone",
            "config.toml:6: feeds.items: invalid type: string \"fifty\"",
            "config.toml:7: feeds.size: unknown key `size`",
            "config.toml:9: mail.transport: unknown variant `pigeon`",
            "config.toml:10: mail.concurrency: must be between 1 and 256",
            "config.toml:11: mail.smtp.port: invalid type",
            "config.toml:13: mail.dkim.selectr: unknown key",
            "config.toml:15: http.listen:",
            "config.toml:16: feed: unknown key `feed`",
            "environment variable GAZETTE_HTTP_SUBSCRIBE_BURST: http.subscribe_burst: invalid type",
            "environment variable GAZETTE_MAIL_COLOUR: mail.colour: unknown key",
            "environment variable GAZETTE_SCHEDULE_CRON: schedule.cron:",
            "config.toml: publication.title: missing required key",
        ];
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), expected.len(), "{e}");
        for (line, want) in lines.iter().zip(expected) {
            assert!(line.contains(want), "{want:?} not in {line:?}\n{e}");
        }
    }

    #[test]
    fn a_wrong_type_is_not_also_reported_as_missing() {
        let e = err("[publication]\ntitle = 5\nbase_url = \"https://x.org/\"\n");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.contains("config.toml:2: publication.title: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_are_reported_with_their_lines() {
        let e = err(&format!("{MINIMAL}[feeds\nitems = = 3\n"));
        assert!(e.starts_with("/srv/gz/config.toml: line 4"), "{e}");
    }

    #[test]
    fn env_overrides_win_and_are_named_in_errors() {
        let c = parse_env(
            MINIMAL,
            &[
                ("GAZETTE_FEEDS_ITEMS", "7"),
                ("GAZETTE_MAIL_SMTP_HOST", "mx.example.org"),
                ("GAZETTE_PUBLICATION_TITLE", "Other"),
            ],
        )
        .unwrap();
        assert_eq!(c.feeds.items, 7);
        assert_eq!(c.mail.smtp.host, "mx.example.org");
        assert_eq!(c.publication.title, "Other");

        let e = parse_env(MINIMAL, &[("GAZETTE_FEEDS_ITEMS", "lots")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("GAZETTE_FEEDS_ITEMS"), "{e}");
        let e = parse_env(MINIMAL, &[("GAZETTE_SCHEDULE_CRON", "nope")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("environment variable GAZETTE_SCHEDULE_CRON: schedule.cron"),
            "{e}"
        );
        let e = parse_env(MINIMAL, &[("GAZETTE_FEEDS_COLOUR", "red")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("GAZETTE_FEEDS_COLOUR") && e.contains("colour"),
            "{e}"
        );
        // Other GAZETTE_ variables are not ours: the file's name, the log
        // filter, secrets named by the config.
        let with_secret = format!("{MINIMAL}[http]\nadmin_token_env = \"GAZETTE_HTTP_TOKEN\"\n");
        let vars = [
            ("GAZETTE_CONFIG", "/elsewhere.toml"),
            ("GAZETTE_LOG", "debug"),
            ("GAZETTE_ADMIN_TOKEN", "s3cret"),
            ("GAZETTE_HTTP_TOKEN", "s3cret"),
        ];
        assert!(parse_env(&with_secret, &vars).is_ok());
    }

    #[test]
    fn the_subscribe_rate_limit_has_defaults_bounds_and_overrides() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            (c.http.subscribe_burst, c.http.subscribe_per_minute),
            (5, 3)
        );
        let c = parse(&format!(
            "{MINIMAL}[http]\nsubscribe_burst = 20\nsubscribe_per_minute = 60\n"
        ))
        .unwrap();
        assert_eq!(
            (c.http.subscribe_burst, c.http.subscribe_per_minute),
            (20, 60)
        );
        let e = err(&format!("{MINIMAL}[http]\nsubscribe_burst = 0\n"));
        assert!(
            e.contains("config.toml:5: http.subscribe_burst: must be between 1 and 10000"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}[http]\nsubscribe_per_minute = \"lots\"\n"
        ));
        assert!(
            e.contains("config.toml:5:") && e.contains("subscribe_per_minute"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}[http]\nsubscribe_limit = 3\n"));
        assert!(
            e.contains("config.toml:5:") && e.contains("subscribe_limit"),
            "{e}"
        );
        let c = parse_env(MINIMAL, &[("GAZETTE_HTTP_SUBSCRIBE_BURST", "2")]).unwrap();
        assert_eq!(c.http.subscribe_burst, 2);
        let e = parse_env(MINIMAL, &[("GAZETTE_HTTP_SUBSCRIBE_PER_MINUTE", "-1")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("environment variable GAZETTE_HTTP_SUBSCRIBE_PER_MINUTE"),
            "{e}"
        );
    }

    #[test]
    fn http_listen_takes_host_names_and_the_connection_limits_have_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            (
                c.http.header_timeout,
                c.http.body_timeout,
                c.http.max_connections
            ),
            (Duration::from_secs(10), Duration::from_secs(30), 512)
        );
        assert!(c.http.trusted_proxies.is_empty());
        for ok in ["localhost:8081", "[::1]:8080", "news-1.example.org:80"] {
            let c = parse(&format!("{MINIMAL}[http]\nlisten = \"{ok}\"\n")).unwrap();
            assert_eq!(c.http.listen, ok);
        }
        for bad in ["localhost", "localhost:http", ":8080", "a b:80", "x:99999"] {
            let e = err(&format!("{MINIMAL}[http]\nlisten = \"{bad}\"\n"));
            assert!(e.contains("config.toml:5: http.listen"), "{bad}: {e}");
        }
        let c = parse(&format!(
            "{MINIMAL}[http]\nheader_timeout = \"2s\"\nbody_timeout = \"1m\"\nmax_connections = 3\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n"
        ))
        .unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_secs(2));
        assert_eq!(c.http.body_timeout, Duration::from_secs(60));
        assert_eq!(c.http.max_connections, 3);
        assert_eq!(c.http.trusted_proxies.len(), 3);
        let e = err(&format!("{MINIMAL}[http]\nheader_timeout = \"0s\"\n"));
        assert!(
            e.contains("http.header_timeout: must be between 1s and 1h"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n"
        ));
        assert!(
            e.contains("config.toml:5: http.trusted_proxies") && e.contains("10.0.0.0/33"),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_named_not_inlined() {
        let e = err(&format!(
            "{MINIMAL}[mail.smtp]\npassword_env = \"hunter2!\"\n"
        ));
        assert!(
            e.contains("mail.smtp.password_env") && e.contains("config.toml:5"),
            "{e}"
        );
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

    fn dkim_site(dkim: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text =
            format!("{MINIMAL}[mail]\nfrom = \"Ledger <news@Example.org>\"\n[mail.dkim]\n{dkim}");
        std::fs::write(&path, text).unwrap();
        let c = Config::load_with_env(&path, &[]);
        (dir, c)
    }

    #[test]
    fn dkim_key_is_read_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        crate::mail::dkim::tests::openssl_key(
            &dir.path().join("keys"),
            &["genpkey", "-algorithm", "ed25519"],
            "dkim.pem",
        );
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!("{MINIMAL}[mail]\nfrom = \"Ledger <news@Example.org>\"\n[mail.dkim]\nselector = \"s1\"\nkey_file = \"keys/dkim.pem\"\n"),
        )
        .unwrap();
        let c = Config::load_with_env(&path, &[]).unwrap();
        let d = c.mail.dkim.unwrap();
        assert_eq!(
            d.domain, "example.org",
            "defaults to the domain of mail.from"
        );
        assert_eq!(d.selector, "s1");
        assert_eq!(d.key_file, dir.path().join("keys/dkim.pem"));
        assert!(!format!("{:?}", d.key).contains("BEGIN"));
        assert!(parse(MINIMAL).unwrap().mail.dkim.is_none());
    }

    #[test]
    fn dkim_problems_name_the_key_and_the_file() {
        let (_d, c) = dkim_site("selector = \"s1\"\nkey_file = \"missing.pem\"\n");
        let e = c.unwrap_err().to_string();
        assert!(
            e.contains("config.toml:8: mail.dkim.key_file: cannot read"),
            "{e}"
        );
        assert!(e.contains("missing.pem"), "{e}");

        let (dir, _) = dkim_site("");
        std::fs::write(
            dir.path().join("bad.pem"),
            "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, format!("{MINIMAL}[mail.dkim]\nselector = \"s1\"\ndomain = \"example.org\"\nkey_file = \"bad.pem\"\n")).unwrap();
        let e = Config::load_with_env(&path, &[]).unwrap_err().to_string();
        assert!(
            e.contains("mail.dkim.key_file")
                && e.contains("bad.pem")
                && e.contains("not a valid Rsa private key"),
            "{e}"
        );

        let (_d, c) = dkim_site("key_file = \"k.pem\"\nselector = \"bad selector\"\n");
        let e = c.unwrap_err().to_string();
        assert!(e.contains("mail.dkim.selector"), "{e}");

        let e = err(&format!("{MINIMAL}[mail.dkim]\nselector = \"s1\"\n"));
        assert!(
            e.contains("mail.dkim.domain") && e.contains("mail.dkim.key_file"),
            "{e}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = Config::load_with_env(Path::new("/nonexistent/gazette/config.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/gazette/config.toml"), "{e}");
    }

    #[test]
    fn mail_smtputf8_is_off_unless_set() {
        assert!(!parse_env(MINIMAL, &[]).unwrap().mail.smtputf8);
        let on = format!("{MINIMAL}[mail]\nsmtputf8 = true\n");
        assert!(parse_env(&on, &[]).unwrap().mail.smtputf8);
        let env = parse_env(MINIMAL, &[("GAZETTE_MAIL_SMTPUTF8", "true")]).unwrap();
        assert!(env.mail.smtputf8);
        let e = parse_env(MINIMAL, &[("GAZETTE_MAIL_SMTPUTF8", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("GAZETTE_MAIL_SMTPUTF8"), "{e}");
    }
}
