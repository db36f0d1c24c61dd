//! The typed result of loading: [`Config`] and one struct per section, with
//! defaults applied and every value checked. Paths are absolute.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::problems::Origin;
use super::values::BounceAddress;

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
    pub inbound: InboundConfig,
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
    /// `mail.bounce_address`: when set, every message goes out with the
    /// envelope sender `local+TAG@domain` of it (VERP, `mail::verp`), and
    /// what comes back to those addresses is read (`inbound`).
    pub bounce_address: Option<BounceAddress>,
    pub smtp: SmtpConfig,
    /// `[mail.dkim]`: sign every message when set.
    pub dkim: Option<DkimSettings>,
}

/// `[mail.dkim]`: checked at load without reading the key; the key file is
/// mail's to read and parse (`mail::dkim::DkimKey::load`).
#[derive(Debug, Clone)]
pub struct DkimSettings {
    /// DNS selector: the public key is the TXT record `{selector}._domainkey.{domain}`.
    pub selector: String,
    /// The signing domain (`d=`); defaults to the domain of `mail.from`.
    pub domain: String,
    /// Absolute (resolved against the folder of config.toml).
    pub key_file: PathBuf,
    /// Where `key_file` was set, so a bad key file is named like a bad key.
    pub key_file_origin: Origin,
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
    /// An admin console session ends after this long without a request.
    pub admin_session_idle: Duration,
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
    pub trusted_proxies: Vec<crate::config::IpNet>,
}

/// `[inbound]`: the SMTP listener of `serve` for returned mail, and what
/// gazette does with what comes back (`inbound` module).
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// `HOST:PORT` for `serve`'s SMTP listener; none without it.
    pub listen: Option<String>,
    /// A message larger than this is refused (552) or, on import, skipped.
    pub max_message_bytes: usize,
    /// SMTP sessions at once; more are turned away (421) at the greeting.
    pub max_sessions: usize,
    /// The longest one SMTP session may last.
    pub session_timeout: Duration,
    /// How long each processed message is kept (raw, cut to
    /// `keep_raw_bytes`) beside its decision; the decision stays.
    pub keep_raw_for: Duration,
    pub keep_raw_bytes: usize,
    /// Soft bounces for this many different issues within
    /// `soft_bounce_window` mark a subscriber bounced; 0: never.
    pub soft_bounce_limit: u32,
    pub soft_bounce_window: Duration,
}

pub const DEFAULT_SUBJECT: &str = "{{ issue.title }} | {{ publication.title }}";
