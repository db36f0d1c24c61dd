//! RSS 2.0 via the `rss` crate, with the Atom (self link), Dublin Core
//! (`dc:creator`) and content (`content:encoded`) namespaces.
//!
//! The crate escapes every text node itself (or writes CDATA), so values are
//! passed as they are, never pre-escaped (rss#167, rss#170). The one exception
//! is the item `description`, which RSS readers treat as HTML: see
//! [`plain_text_as_html`].

use std::borrow::Cow;

use ::rss::extension::atom::{AtomExtension, Link};
use ::rss::extension::dublincore::DublinCoreExtension;
use ::rss::{Category, Channel, Guid, Item};

use super::{Context, Entry, FeedError, GENERATOR, RSS_MEDIA_TYPE};

pub(crate) fn render(ctx: &Context<'_>) -> Result<String, FeedError> {
    let publication = ctx.publication;
    let date = ctx.updated.to_rfc2822();
    let channel = Channel {
        title: publication.title.clone(),
        link: ctx.home_url.clone(),
        description: if publication.description.is_empty() {
            publication.title.clone()
        } else {
            publication.description.clone()
        },
        language: non_empty(&publication.language),
        pub_date: Some(date.clone()),
        last_build_date: Some(date),
        generator: Some(format!("{GENERATOR} {}", env!("CARGO_PKG_VERSION"))),
        atom_ext: Some(AtomExtension {
            links: vec![Link {
                href: ctx.rss_url.clone(),
                rel: "self".to_owned(),
                mime_type: Some(RSS_MEDIA_TYPE.to_owned()),
                ..Link::default()
            }],
        }),
        items: ctx.entries.iter().map(|e| item(ctx, e)).collect(),
        ..Channel::default()
    };
    // Markup plus the HTML (CDATA) and a little per-item overhead.
    let capacity = ctx.html_bytes + ctx.entries.len() * 1024 + 1024;
    let bytes = channel
        .pretty_write_to(Vec::with_capacity(capacity), b' ', 2)
        .map_err(|e| FeedError::Serialize {
            format: "RSS",
            message: e.to_string(),
        })?;
    let mut xml = String::from_utf8(bytes).map_err(|e| FeedError::Serialize {
        format: "RSS",
        message: e.to_string(),
    })?;
    xml.push('\n');
    Ok(xml)
}

fn item(ctx: &Context<'_>, entry: &Entry<'_>) -> Item {
    let article = entry.article;
    Item {
        title: Some(article.title.clone()),
        link: Some(entry.link.clone()),
        description: (!article.summary.is_empty())
            .then(|| plain_text_as_html(&article.summary).into_owned()),
        categories: article
            .section
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| Category {
                name: s.clone(),
                domain: None,
            })
            .collect(),
        guid: Some(Guid {
            value: entry.id.clone(),
            permalink: false,
        }),
        pub_date: Some(entry.date.to_rfc2822()),
        content: Some(article.html.clone()),
        dublin_core_ext: Some(DublinCoreExtension {
            creators: entry
                .author_names(ctx.publication)
                .map(str::to_owned)
                .collect(),
            ..DublinCoreExtension::default()
        }),
        ..Item::default()
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// An RSS `description` is HTML to every reader, while our summary is plain
/// text. Text that an HTML parser reads back unchanged (no `<` starting a tag,
/// comment or declaration, no `&` starting a character reference) is passed
/// as it is, so simple readers show exactly the summary; anything else is
/// HTML-escaped, so that `<b>` in a summary shows as `<b>` and not as bold.
pub(crate) fn plain_text_as_html(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let ambiguous = bytes.windows(2).any(|w| match w[0] {
        b'<' => w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?'),
        b'&' => w[1].is_ascii_alphanumeric() || w[1] == b'#',
        _ => false,
    });
    if !ambiguous {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}
