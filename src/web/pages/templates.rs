//! The page and sign-up mail templates: built-in defaults compiled in from
//! the repository's `templates/`, each replaced by a file of the same name in
//! the `templates/` folder beside config.toml, as for the digest templates.
//! Compiled once at start; every error names the file and line.

use std::path::PathBuf;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::config::Config;
use crate::content::text::push_escaped;
use crate::mail::TemplateError;
use crate::mail::render::templates_dir;

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

/// The compiled page templates.
pub struct PageTemplates {
    env: Environment<'static>,
    dir: PathBuf,
    overridden: Vec<String>,
}

impl std::fmt::Debug for PageTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTemplates")
            .field("dir", &self.dir)
            .field("overridden", &self.overridden)
            .finish_non_exhaustive()
    }
}

impl PageTemplates {
    /// Compile every template (overrides first, then the built-ins). All
    /// the files that fail are reported; the list is never empty.
    pub fn load(config: &Config) -> Result<PageTemplates, Vec<TemplateError>> {
        let dir = templates_dir(config);
        let mut env = Environment::new();
        // A typo in a variable name is an error, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Block tags on lines of their own leave no blank lines (the text mails).
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        // minijinja's HTML escaping also turns '/' into `&#x2f;`: valid, but
        // every URL in an attribute would read `https:&#x2f;&#x2f;...` to
        // anything but a browser (feed readers' autodiscovery, scripts).
        // `& < > " '` are what HTML needs escaped.
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
        // An admin's own partials come from the folder.
        env.set_loader(minijinja::path_loader(&dir));
        let mut this = PageTemplates {
            env,
            dir: dir.clone(),
            overridden: Vec::new(),
        };
        let mut errors = Vec::new();
        let mut sources = Vec::new();
        for (name, builtin) in PAGE_TEMPLATES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(s) => {
                    this.overridden.push(name.to_string());
                    sources.push((*name, s));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    sources.push((*name, builtin.to_string()));
                }
                Err(e) => errors.push(TemplateError {
                    file: path.display().to_string(),
                    line: None,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        for (name, source) in sources {
            if let Err(e) = this.env.add_template_owned(name, source) {
                errors.push(this.error(name, &e));
            }
        }
        if errors.is_empty() {
            Ok(this)
        } else {
            Err(errors)
        }
    }

    /// Render `name`; HTML templates escape what they output.
    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| self.error(name, &e))?;
        t.render(ctx).map_err(|e| self.error(name, &e))
    }

    /// Where a template came from, for messages.
    fn describe(&self, name: &str) -> String {
        if self.overridden.iter().any(|n| n == name)
            || !PAGE_TEMPLATES.iter().any(|(n, _)| *n == name)
        {
            self.dir.join(name).display().to_string()
        } else {
            format!("templates/{name} (built-in)")
        }
    }

    fn error(&self, fallback: &str, e: &minijinja::Error) -> TemplateError {
        let name = e.name().unwrap_or(fallback);
        let mut message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message.push_str(&format!("; {s}"));
            src = s.source();
        }
        TemplateError {
            file: self.describe(name),
            line: e.line(),
            message,
        }
    }
}
