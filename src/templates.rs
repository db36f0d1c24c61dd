//! Loading editable templates, shared by the digest (`mail::render`) and the
//! public pages (`web::pages`): built-in defaults compiled in from the
//! repository's `templates/`, each replaced by a file of the same name in
//! the `templates/` folder beside config.toml.
//!
//! Both sets need the same rules, so they live once here: strict undefined
//! variables (a typo is an error, not an empty string), block tags on lines
//! of their own leaving no blank lines (the text parts depend on it), an
//! admin's own partials loaded from the folder, every file that fails
//! reported (not only the first), and every error naming the file (the
//! override's path or `templates/NAME (built-in)`) and the line. What
//! differs (the digest's `wrap` filter and subject, the pages' escaper) is
//! added by each caller.

use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::config::Config;

/// A template that does not compile or render: the file, the line, what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", file, line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TemplateError {
    /// The override file's path, `templates/NAME (built-in)`, or
    /// `mail.subject in CONFIG`.
    pub file: String,
    /// 1-based line within that template.
    pub line: Option<usize>,
    pub message: String,
}

/// The folder of override templates: `templates/` beside config.toml.
pub fn templates_dir(config: &Config) -> PathBuf {
    let parent = config.path.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    parent.join("templates")
}

/// A template that is not a file: its name, its source, and how errors
/// name it (e.g. the subject line from config.toml).
#[derive(Debug, Clone)]
pub struct Inline {
    pub name: &'static str,
    pub source: String,
    pub described_as: String,
}

/// Compiled templates, and where each came from (for messages).
pub struct TemplateSet {
    env: Environment<'static>,
    dir: PathBuf,
    builtins: &'static [(&'static str, &'static str)],
    overridden: Vec<String>,
    inline: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet")
            .field("dir", &self.dir)
            .field("overridden", &self.overridden)
            .finish_non_exhaustive()
    }
}

impl TemplateSet {
    /// Compile `builtins` (each overridden by the file of its name in
    /// `dir`, when there is one) and `inline`, in an environment that
    /// `setup` has added its own filters or formatter to. Every file that
    /// cannot be read or compiled is reported; the list is never empty.
    pub fn load(
        dir: PathBuf,
        builtins: &'static [(&'static str, &'static str)],
        inline: Vec<Inline>,
        setup: impl FnOnce(&mut Environment<'static>),
    ) -> Result<TemplateSet, Vec<TemplateError>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // The builder fails only on clashing delimiters, which are left at
        // their defaults here.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        // Other names (an admin's own partials) come from the folder only.
        env.set_loader(minijinja::path_loader(&dir));
        setup(&mut env);

        let mut errors = Vec::new();
        let mut overridden = Vec::new();
        let mut sources = Vec::new();
        for (name, builtin) in builtins {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(s) => {
                    overridden.push(name.to_string());
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
        let mut described = Vec::with_capacity(inline.len());
        for i in inline {
            sources.push((i.name, i.source));
            described.push((i.name, i.described_as));
        }
        let mut this = TemplateSet {
            env,
            dir,
            builtins,
            overridden,
            inline: described,
        };
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

    /// Render `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| self.error(name, &e))?;
        t.render(ctx).map_err(|e| self.error(name, &e))
    }

    /// Where a template came from, for messages: the override's path (also
    /// for an admin's own partials), the built-in, or an inline template's
    /// own description.
    pub fn describe(&self, name: &str) -> String {
        if let Some((_, d)) = self.inline.iter().find(|(n, _)| *n == name) {
            d.clone()
        } else if self.overridden.iter().any(|n| n == name)
            || !self.builtins.iter().any(|(n, _)| *n == name)
        {
            self.dir.join(name).display().to_string()
        } else {
            format!("templates/{name} (built-in)")
        }
    }

    /// A minijinja error as a [`TemplateError`] naming the template it
    /// happened in (`fallback` when minijinja does not say).
    pub fn error(&self, fallback: &str, e: &minijinja::Error) -> TemplateError {
        let name = e.name().unwrap_or(fallback);
        let mut message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        // An error inside an included template arrives wrapped; say where it came from.
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
