//! The one problem list every layer and section checker pushes onto, where
//! each problem came from (a line of the file, an environment variable, or
//! nowhere: missing), and the error that carries them all.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

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

/// Finds where a key was set, for messages.
pub(super) struct Locator<'a> {
    pub path: PathBuf,
    pub text: &'a str,
    /// dotted key -> the environment variable that set it
    pub from_env: BTreeMap<String, String>,
}

impl Locator<'_> {
    pub fn origin(&self, dotted: &str) -> Origin {
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

/// The shared list the section checkers push onto: a check never stops at
/// the first mistake, so one run reports them all.
pub(super) struct Problems<'a> {
    at: &'a Locator<'a>,
    /// Keys the raw layer already reported (a wrong type is not also missing).
    reported: Vec<String>,
    list: Vec<KeyProblem>,
}

impl<'a> Problems<'a> {
    /// Start from the problems found while reading.
    pub fn new(at: &'a Locator<'a>, earlier: Vec<KeyProblem>) -> Problems<'a> {
        Problems {
            at,
            reported: earlier.iter().map(|p| p.key.clone()).collect(),
            list: earlier,
        }
    }

    /// `key` (dotted) has a bad value, or none where one is needed: the
    /// problem is named by where the key was set.
    pub fn bad(&mut self, key: &str, message: impl ToString) {
        if self.reported.iter().any(|k| k == key) {
            return;
        }
        self.list.push(KeyProblem {
            origin: self.at.origin(key),
            key: key.to_string(),
            message: message.to_string(),
        })
    }

    /// Where `key` was set (file line, variable, or missing).
    pub fn origin(&self, key: &str) -> Origin {
        self.at.origin(key)
    }

    /// `Ok` when nothing was wrong; else every problem, file order first,
    /// then overrides, then what is missing.
    pub fn finish(mut self) -> Result<(), ConfigError> {
        if self.list.is_empty() {
            return Ok(());
        }
        self.list.sort_by_cached_key(|p| match &p.origin {
            Origin::File { line, .. } => (0, line.unwrap_or(0), String::new()),
            Origin::Env(var) => (1, 0, var.clone()),
            Origin::Missing { .. } => (2, 0, String::new()),
        });
        Err(ConfigError::Invalid(self.list))
    }
}
