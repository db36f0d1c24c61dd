//! Atom 1.0 (RFC 4287) via `atom_syndication`.
//!
//! Titles and summaries are text constructs of type `text` (the default, so no
//! `type` attribute is written); content is `type="html"`, escaped by the crate.

use atom_syndication::{
    Category, Content, Entry as AtomEntry, Feed, Generator, Link, Person, Text, WriteConfig,
};

use super::{ATOM_MEDIA_TYPE, Context, Entry, FeedError, GENERATOR};

pub(crate) fn render(ctx: &Context<'_>) -> Result<String, FeedError> {
    let publication = ctx.publication;
    let feed = Feed {
        title: Text::plain(publication.title.as_str()),
        // The feed's own URL: stable, absolute and unique to this feed.
        id: ctx.atom_url.clone(),
        updated: ctx.updated,
        authors: vec![publication_person(ctx)],
        generator: Some(Generator {
            value: GENERATOR.to_owned(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
        links: vec![
            link(&ctx.atom_url, "self", ATOM_MEDIA_TYPE),
            link(&ctx.home_url, "alternate", "text/html"),
        ],
        subtitle: (!publication.description.is_empty())
            .then(|| Text::plain(publication.description.as_str())),
        entries: ctx.entries.iter().map(|e| entry(ctx, e)).collect(),
        lang: (!publication.language.is_empty()).then(|| publication.language.clone()),
        ..Feed::default()
    };
    // Escaped HTML grows a little; plus markup per entry.
    let capacity = ctx.html_bytes + ctx.html_bytes / 4 + ctx.entries.len() * 1024 + 1024;
    let config = WriteConfig {
        write_document_declaration: true,
        indent_size: Some(2),
    };
    let bytes = feed
        .write_with_config(Vec::with_capacity(capacity), config)
        .map_err(|e| FeedError::Serialize {
            format: "Atom",
            message: e.to_string(),
        })?;
    let mut xml = String::from_utf8(bytes).map_err(|e| FeedError::Serialize {
        format: "Atom",
        message: e.to_string(),
    })?;
    xml.push('\n');
    Ok(xml)
}

fn entry(ctx: &Context<'_>, entry: &Entry<'_>) -> AtomEntry {
    let article = entry.article;
    let authors = if article.authors.is_empty() {
        vec![publication_person(ctx)]
    } else {
        article.authors.iter().map(|name| person(name)).collect()
    };
    AtomEntry {
        title: Text::plain(article.title.as_str()),
        id: entry.id.clone(),
        updated: entry.date,
        published: Some(entry.date),
        authors,
        categories: article
            .section
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| Category {
                term: s.clone(),
                scheme: None,
                label: None,
            })
            .collect(),
        links: vec![link(&entry.link, "alternate", "text/html")],
        summary: (!article.summary.is_empty()).then(|| Text::plain(article.summary.as_str())),
        content: Some(Content {
            value: Some(article.html.clone()),
            content_type: Some("html".to_owned()),
            ..Content::default()
        }),
        ..AtomEntry::default()
    }
}

fn person(name: &str) -> Person {
    Person {
        name: name.to_owned(),
        ..Person::default()
    }
}

fn publication_person(ctx: &Context<'_>) -> Person {
    Person {
        uri: Some(ctx.home_url.clone()),
        ..person(&ctx.publication.title)
    }
}

fn link(href: &str, rel: &str, media_type: &str) -> Link {
    Link {
        href: href.to_owned(),
        rel: rel.to_owned(),
        mime_type: Some(media_type.to_owned()),
        ..Link::default()
    }
}
