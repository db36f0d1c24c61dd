//! The console's templates: built-ins compiled in from `templates/admin/`,
//! each replaced by `templates/admin/NAME` beside config.toml, through the
//! loader the digest and the public pages use ([`crate::templates`]), with
//! the pages' HTML escaper. `admin.css` and `admin.js` are templates too
//! (rendered once at start) so that an override restyles the console
//! without a rebuild.

use minijinja::Value;

use crate::config::Config;
use crate::templates::{TemplateError, TemplateSet, templates_dir};
use crate::web::pages::templates::set_html_escaper;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$((concat!("admin/", $name), include_str!(concat!("../../../templates/admin/", $name)))),*]
    };
}

/// Every console template, by name.
pub const ADMIN_TEMPLATES: &[(&str, &str)] = builtin!(
    "layout.html",
    "login.html",
    "error.html",
    "admin.css",
    "admin.js",
    "macros.html",
    "dashboard.html",
    "issues.html",
    "issue.html",
    "audit.html",
    "subscribers.html",
    "subscriber.html",
    "subscriber-new.html",
    "subscriber-erase.html",
    "import.html",
    "import-job.html",
);

#[derive(Debug)]
pub struct AdminTemplates(TemplateSet);

impl AdminTemplates {
    pub fn load(config: &Config) -> Result<AdminTemplates, Vec<TemplateError>> {
        TemplateSet::load(templates_dir(config), ADMIN_TEMPLATES, Vec::new(), |env| {
            set_html_escaper(env);
            env.add_filter("when", when);
        })
        .map(AdminTemplates)
    }

    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        self.0.render(name, ctx)
    }
}

/// `{{ t|when }}`: a stored time stamp (RFC 3339, UTC) as
/// `2026-12-02 21:30 UTC`; nothing for none; anything else as it is.
fn when(v: Value) -> String {
    let Some(s) = v.as_str() else {
        return if v.is_none() || v.is_undefined() {
            String::new()
        } else {
            v.to_string()
        };
    };
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        Err(_) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(
            when(Value::from("2026-12-02T21:30:59.250Z")),
            "2026-12-02 21:30 UTC"
        );
        assert_eq!(
            when(Value::from("2026-12-02T22:30:00+01:00")),
            "2026-12-02 21:30 UTC"
        );
        assert_eq!(when(Value::from(())), "");
        assert_eq!(when(Value::from("soon")), "soon");
    }
}
