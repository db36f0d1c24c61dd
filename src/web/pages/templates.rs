//! The page and sign-up mail templates: built-in defaults compiled in from
//! the repository's `templates/`, each replaced by a file of the same name in
//! the `templates/` folder beside config.toml, as for the digest templates.
//! Compiled once at start by the loader the digest uses
//! ([`crate::templates`]); every error names the file and line. What is
//! the pages' own is the escaper.

use minijinja::{AutoEscape, Value};

use crate::config::Config;
use crate::content::text::push_escaped;
use crate::templates::{TemplateError, TemplateSet, templates_dir};

/// The editable defaults of the public pages and the sign-up mails.
pub const PAGE_TEMPLATES: &[(&str, &str)] = &[
    ("page.html", include_str!("../../../templates/page.html")),
    ("page.css", include_str!("../../../templates/page.css")),
    (
        "subscribe_form.html",
        include_str!("../../../templates/subscribe_form.html"),
    ),
    (
        "archive.html",
        include_str!("../../../templates/archive.html"),
    ),
    ("issue.html", include_str!("../../../templates/issue.html")),
    (
        "subscribe.html",
        include_str!("../../../templates/subscribe.html"),
    ),
    (
        "confirm-page.html",
        include_str!("../../../templates/confirm-page.html"),
    ),
    (
        "confirmed.html",
        include_str!("../../../templates/confirmed.html"),
    ),
    (
        "unsubscribe.html",
        include_str!("../../../templates/unsubscribe.html"),
    ),
    (
        "unsubscribed.html",
        include_str!("../../../templates/unsubscribed.html"),
    ),
    (
        "preferences.html",
        include_str!("../../../templates/preferences.html"),
    ),
    ("error.html", include_str!("../../../templates/error.html")),
    (
        "confirm.txt",
        include_str!("../../../templates/confirm.txt"),
    ),
    (
        "confirm.html",
        include_str!("../../../templates/confirm.html"),
    ),
    (
        "already-subscribed.txt",
        include_str!("../../../templates/already-subscribed.txt"),
    ),
    (
        "already-subscribed.html",
        include_str!("../../../templates/already-subscribed.html"),
    ),
];

/// HTML escaping for pages (public and console): `& < > " '` only.
///
/// minijinja's own HTML escaping also turns '/' into `&#x2f;`: valid, but
/// every URL in an attribute would read `https:&#x2f;&#x2f;...` to anything
/// but a browser (feed readers' autodiscovery, scripts).
pub(crate) fn set_html_escaper(env: &mut minijinja::Environment<'static>) {
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), AutoEscape::Html)
            && !value.is_safe()
            && let Some(s) = value.as_str()
        {
            let mut escaped = String::with_capacity(s.len() + 16);
            push_escaped(&mut escaped, s);
            return out.write_str(&escaped).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
}

/// The compiled page templates.
#[derive(Debug)]
pub struct PageTemplates(TemplateSet);

impl PageTemplates {
    /// Compile every template (overrides first, then the built-ins). All
    /// the files that fail are reported; the list is never empty.
    pub fn load(config: &Config) -> Result<PageTemplates, Vec<TemplateError>> {
        TemplateSet::load(
            templates_dir(config),
            PAGE_TEMPLATES,
            Vec::new(),
            set_html_escaper,
        )
        .map(PageTemplates)
    }

    /// Render `name`; HTML templates escape what they output.
    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        self.0.render(name, ctx)
    }
}
