//! Public pages: the archive, the web version of each issue, and the
//! subscribe / confirm / unsubscribe / preferences flow.
//!
//! Everything is plain HTML from templates (`templates/page.html` and one
//! per page, overridable like the digest templates): no JavaScript, no
//! cookies, no third-party requests. Links between pages are relative to the
//! page, so the site works at `/` and behind a proxy under `base_url`'s path;
//! links that leave the site (feeds, mail) are absolute from `base_url`.
//!
//! The sign-up flow is double opt-in:
//! - `POST /subscribe` answers the same page, with the same status, whatever
//!   the list knows about the address: a new or pending address gets a
//!   confirmation link, an unsubscribed or bounced one too (keeping its
//!   status until the link is used), an active one a notice with its
//!   settings link. Either way one mail goes out at once, so the answer
//!   takes about as long too. Requests are limited per client address
//!   ([`limit`]) and mails per address ([`crate::store::SIGNUP_MAILS_PER_DAY`]).
//! - `GET /confirm/TOKEN` shows a page with one button and changes nothing
//!   (mail scanners and link previews fetch links); the button's
//!   `POST /confirm/TOKEN` uses the link (once, within seven days).
//! - `GET|POST /unsubscribe/TOKEN` and `GET|POST /preferences/TOKEN` act on
//!   the subscriber whose permanent token it is; the POST to the unsubscribe
//!   URL is also the RFC 8058 one-click target, so it takes any body.
//! - The form POSTs (subscribe, confirm, preferences) refuse a request
//!   another site's page made the browser send ([`origin`]); the
//!   unsubscribe POST does not, so that one-click keeps working.
//!
//! A token that does not parse, is unknown, used or expired gets the 404
//! page and changes nothing.
//!
//! Here: [`Pages`] (loaded and checked once) and the router. The parts, by
//! job: [`render`] (templates into answers, error pages, headers),
//! [`mod@archive`] (the archive and issue pages), [`subscription`] (the form,
//! confirm, unsubscribe and preferences handlers), [`signup_mail`] (the
//! mails a sign-up sends), and the helpers [`cache`], [`limit`],
//! [`origin`], [`templates`].

mod archive;
mod cache;
mod limit;
pub(crate) mod origin;
mod render;
mod signup_mail;
mod subscription;
pub(crate) mod templates;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use minijinja::{Value, context};

use super::{AppState, WebError};
use crate::config::Config;
use crate::mail::{Renderer, Sender, SenderError, TemplateError};
use crate::store::{Preferences, StoreError};
use crate::subscribers::{MailFormat, SubscriberEmail, SubscriberName, Token};

use archive::{archive, issue, method_not_allowed, not_found};
use cache::IssueCache;
use limit::RateLimiter;
use origin::SiteOrigin;
use render::error_values;
use signup_mail::SignupMail;
use subscription::{
    confirm, confirm_page, preferences, save_preferences, subscribe, unsubscribe, unsubscribe_page,
};
use templates::PageTemplates;

/// The page templates, the digest renderer (for web versions), the issue
/// page cache and the sign-up limit: loaded once at start.
pub struct Pages {
    templates: PageTemplates,
    renderer: Renderer,
    sender: Result<Arc<Sender>, SenderError>,
    issues: IssueCache,
    limiter: RateLimiter,
    /// Who may post the forms.
    origin: SiteOrigin,
    site: Site,
    /// `site` as the templates see it (`publication`).
    publication: Value,
}

/// What the pages and the sign-up mails say about the publication.
#[derive(Debug, Clone)]
struct Site {
    title: String,
    description: String,
    language: String,
    /// Ends with '/'.
    base_url: String,
    /// RSS, Atom, JSON Feed.
    feeds: [String; 3],
}

impl Site {
    fn new(config: &Config) -> Site {
        let p = &config.publication;
        Site {
            title: p.title.clone(),
            description: p.description.clone(),
            language: p.language.clone(),
            base_url: p.base_url.to_string(),
            feeds: [
                p.url("feeds/rss.xml"),
                p.url("feeds/atom.xml"),
                p.url("feeds/feed.json"),
            ],
        }
    }

    fn value(&self) -> Value {
        let [rss, atom, json] = self.feeds.clone();
        context! {
            title => self.title.clone(),
            description => self.description.clone(),
            url => self.base_url.clone(),
            language => self.language.clone(),
            feeds => context! { rss, atom, json },
        }
    }

    /// The absolute URL of a site path (no leading '/').
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

/// Why a page could not be built.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Render(#[from] crate::mail::RenderError),
    #[error(transparent)]
    Scan(#[from] crate::content::ScanError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One problem with the page or digest templates, as `serve` refuses to
/// start with and `gazette check` lists: it names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum PageProblem {
    /// A template that does not compile, or fails on sample values.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The digest fails on a sample issue (what `/issues/SLUG` shows).
    #[error(transparent)]
    Digest(#[from] crate::mail::RenderError),
}

/// Every [`PageProblem`] of a start, one a line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PageProblems(pub Vec<PageProblem>);

impl Pages {
    /// Compile the page templates (and the digest templates the web
    /// versions use) and render each page once against sample values, so
    /// that a broken template stops `serve` at start with its file and line
    /// instead of failing a reader's request.
    pub fn load(config: &Config) -> Result<Pages, WebError> {
        let pages = Pages::build(config).map_err(|errors| WebError::Pages(PageProblems(errors)))?;
        Ok(pages)
    }

    /// Every problem with the page templates, for `gazette check`.
    pub fn problems(config: &Config) -> Vec<PageProblem> {
        match Pages::build(config) {
            Ok(_) => Vec::new(),
            Err(errors) => errors,
        }
    }

    /// The one set of template rules `gazette check` and `serve` share:
    /// every file that does not compile (pages and digest), then the digest
    /// rendered against a sample issue (what `/issues/SLUG` shows) and every
    /// page against sample values. A missing `mail.from` is not a template
    /// problem (only sending needs it).
    fn build(config: &Config) -> Result<Pages, Vec<PageProblem>> {
        let problems = |errors: Vec<TemplateError>| {
            errors
                .into_iter()
                .map(PageProblem::Template)
                .collect::<Vec<_>>()
        };
        let (renderer, templates) = match (
            Renderer::load_all(config).map_err(problems),
            PageTemplates::load(config).map_err(problems),
        ) {
            (Ok(r), Ok(t)) => (r, t),
            (r, t) => {
                let mut errors = r.err().unwrap_or_default();
                errors.extend(t.err().unwrap_or_default());
                return Err(errors);
            }
        };
        match renderer.check() {
            Ok(()) | Err(crate::mail::RenderError::Sender(_)) => {}
            Err(e) => return Err(vec![e.into()]),
        }
        let site = Site::new(config);
        let pages = Pages {
            templates,
            renderer,
            sender: Sender::from_config(config).map(Arc::new),
            issues: IssueCache::default(),
            limiter: RateLimiter::new(
                config.http.subscribe_burst,
                config.http.subscribe_per_minute,
            ),
            origin: SiteOrigin::new(&config.publication.base_url),
            publication: site.value(),
            site,
        };
        pages.check().map_err(|e| vec![e.into()])?;
        Ok(pages)
    }

    /// Render every template against sample values.
    fn check(&self) -> Result<(), TemplateError> {
        let sample = Preferences {
            id: 1,
            email: SubscriberEmail::parse("reader@example.org").map_err(sample_error)?,
            name: SubscriberName::parse("Sample Reader").map_err(sample_error)?,
            status: crate::subscribers::Status::Active,
            format: MailFormat::Html,
            token: Token::generate().map_err(sample_error)?,
        };
        let issues = vec![context! {
            slug => "sample-issue",
            title => "Sample issue",
            date => "2026-11-20",
            date_human => "20 November 2026",
            articles => 2,
            url => "./issues/sample-issue",
        }];
        self.templates
            .render("archive.html", &self.ctx("./", context! { issues }))?;
        self.issue_page(
            &context! {
                slug => "sample-issue",
                title => "Sample issue",
                date => "2026-11-20",
                date_human => "20 November 2026",
            },
            "<p>Sample</p>",
        )?;
        self.templates
            .render("subscribe.html", &self.ctx("./", self.subscribe_values()))?;
        for (name, values) in [
            ("confirm-page.html", self.confirm_values(&sample)),
            ("confirmed.html", self.subscriber_values(&sample, false)),
            ("unsubscribe.html", self.subscriber_values(&sample, false)),
            ("unsubscribed.html", self.subscriber_values(&sample, false)),
            ("preferences.html", self.subscriber_values(&sample, true)),
        ] {
            self.templates.render(name, &self.ctx("../", values))?;
        }
        self.templates.render(
            "error.html",
            &self.ctx("./", error_values(StatusCode::NOT_FOUND, "t", "m", true)),
        )?;
        for mail in [
            SignupMail::Confirm {
                url: "https://example.org/confirm/x",
            },
            SignupMail::Already,
        ] {
            self.signup_bodies(mail, &sample)?;
        }
        Ok(())
    }
}

fn sample_error(e: impl std::fmt::Display) -> TemplateError {
    TemplateError {
        file: "the sample values".into(),
        line: None,
        message: e.to_string(),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(archive))
        .route("/issues/{slug}", get(issue))
        .route("/subscribe", post(subscribe))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(preferences).post(save_preferences),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages from a small config, for the tests of every part.
    pub(super) fn pages() -> (tempfile::TempDir, Pages) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[publication]\ntitle = \"The <Test> Ledger\"\nbase_url = \"https://news.example.org/ledger/\"\nlanguage = \"en-GB\"\n[mail]\nfrom = \"Ledger <ledger@example.org>\"\n",
        )
        .unwrap();
        let config = Config::load_with_env(&path, &[]).unwrap();
        let pages = Pages::load(&config).unwrap();
        (dir, pages)
    }
}
