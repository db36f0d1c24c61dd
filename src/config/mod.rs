//! Typed configuration: `config.toml` plus `GAZETTE_<SECTION>_<KEY>` overrides.
//!
//! Loading happens in three layers so that every error can say *where*, and
//! every mistake is collected before the file is refused (one run shows them
//! all, not one per edit):
//! 1. `raw.rs`: the file is parsed into a spanned table; each key is then
//!    deserialized into [`RawConfig`] (all fields optional, unknown keys
//!    rejected) on its own, so an unknown key or a wrong type costs that key
//!    only and is named with its line;
//!    each environment override is deserialized on its own, so a bad one is
//!    reported with the variable's name; then it replaces the file's value;
//! 2. `check.rs`: one checker per section applies defaults and checks values
//!    (URLs, cron, time zone, ranges), each pushing onto one shared
//!    `problems.rs` list that names the key and the line it came from;
//! 3. `model.rs`: the typed result, [`Config`] and its section structs, handed
//!    out only when the list is empty.
//!
//! Adding a key is one line in its `raw_section!` plus its check in its
//! section's checker.

mod check;
mod model;
mod problems;
mod raw;
mod values;

use std::path::{Path, PathBuf};

pub use model::{
    Config, ContentConfig, DEFAULT_SUBJECT, DatabaseConfig, DigestBody, DkimSettings, FeedsConfig,
    HttpConfig, InboundConfig, MailConfig, Publication, ScheduleConfig, Security, SmtpConfig,
    Transport,
};
pub use problems::{ConfigError, KeyProblem, Origin};
pub use raw::OverrideError;
pub use raw::{
    RawConfig, RawContent, RawDatabase, RawDkim, RawFeeds, RawHttp, RawInbound, RawMail,
    RawPublication, RawSchedule, RawSmtp,
};
pub use values::{
    BaseUrlError, BounceAddress, BounceAddressError, CronError, DurationError, IpNet, IpNetError,
    parse_cron, parse_duration,
};

use problems::{Locator, Problems};

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
        let read = raw::read(path, text, env)?;
        let locator = Locator {
            path: path.to_path_buf(),
            text,
            from_env: read.from_env,
        };
        Config::from_raw(read.raw, &locator, read.problems)
    }

    /// Apply defaults and check values, one section at a time. `earlier`
    /// holds the problems found while reading; a key named there is not
    /// reported again (a `title = 5` is a wrong type, not also a missing
    /// title).
    fn from_raw(
        raw: RawConfig,
        at: &Locator<'_>,
        earlier: Vec<KeyProblem>,
    ) -> Result<Config, ConfigError> {
        let root = folder_of(&at.path);
        let bounce_given = raw.mail.bounce_address.is_some();
        let mut problems = Problems::new(at, earlier);
        let p = &mut problems;
        let config = Config {
            path: at.path.clone(),
            publication: check::publication(raw.publication, p),
            content: check::content(raw.content, &root, p),
            feeds: check::feeds(raw.feeds, &root, p),
            database: check::database(raw.database, &root, p),
            schedule: check::schedule(raw.schedule, p),
            mail: check::mail(raw.mail, &root, p),
            http: check::http(raw.http, p),
            inbound: check::inbound(raw.inbound, p),
        };
        if config.inbound.listen.is_some() && !bounce_given {
            problems.bad(
                "inbound.listen",
                "needs mail.bounce_address: gazette accepts only mail to addresses it made from it",
            );
        }
        problems.finish()?;
        Ok(config)
    }
}

/// The absolute folder of config.toml: relative paths in it are resolved here.
fn folder_of(config: &Path) -> PathBuf {
    let root = config.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    std::path::absolute(&root).unwrap_or(root)
}

#[cfg(test)]
mod tests;
