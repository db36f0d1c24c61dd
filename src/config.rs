//! Typed configuration (config.toml + GAZETTE_<SECTION>_<KEY> overrides).
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
