//! The raw layer: exactly what the file and the `GAZETTE_<SECTION>_<KEY>`
//! overrides say, every key optional, before defaults and checks.
//!
//! Each key of the file is deserialized on its own (an unknown key or a wrong
//! type costs that key only, named with its line), then each override (a bad
//! one is named by its variable); the good ones are merged, later replacing
//! earlier.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::model::{DigestBody, Security, Transport};
use super::problems::{ConfigError, KeyProblem, Origin};

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
    trusted_proxies: Vec<String>,
    admin_session_idle: String
});
raw_section!(RawInbound {
    listen: String,
    max_message_bytes: i64,
    max_sessions: i64,
    session_timeout: String,
    keep_raw_for: String,
    keep_raw_bytes: i64,
    soft_bounce_limit: i64,
    soft_bounce_window: String
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
    pub bounce_address: Option<String>,
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
            smtputf8,
            bounce_address
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
    #[serde(default)]
    pub inbound: RawInbound,
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
        self.inbound.merge(over.inbound);
    }
}
/// What [`read`] found: the merged raw values, the problems met on the way,
/// and which dotted keys an environment variable set (for messages).
pub(super) struct Read {
    pub raw: RawConfig,
    pub problems: Vec<KeyProblem>,
    pub from_env: BTreeMap<String, String>,
}

/// Read config text (from `path`, for messages) and the overrides in `env`.
/// A TOML syntax error stops here (past it the document's shape is a guess);
/// anything else is a problem in the list, and reading goes on.
pub(super) fn read(path: &Path, text: &str, env: &[(String, String)]) -> Result<Read, ConfigError> {
    let shown = path.display().to_string();
    let (doc, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
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
            Err(e) => problems.push(KeyProblem {
                origin: Origin::Env(var.clone()),
                key: format!("{section}.{key}"),
                message: e.to_string(),
            }),
        }
    }
    Ok(Read {
        raw,
        problems,
        from_env,
    })
}

/// The sections a key may belong to (tables walked into, `GAZETTE_` prefixes).
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
    "inbound",
];
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
fn env_override(section: &str, key: &str, value: &str) -> Result<RawConfig, OverrideError> {
    let as_string = toml::Value::String(value.to_string()).to_string();
    let mut last = String::new();
    for literal in [value, as_string.as_str()] {
        let doc = format!("[{section}]\n{key} = {literal}\n");
        match toml::from_str::<RawConfig>(&doc) {
            Ok(r) => return Ok(r),
            Err(e) => last = e.message().to_string(),
        }
    }
    Err(OverrideError(key_message(&last)))
}

/// An override that is not a value of its key's type, or names no key:
/// toml's message, in a config file's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OverrideError(String);

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
