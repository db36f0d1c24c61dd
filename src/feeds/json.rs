//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>) with our own serde
//! structs, borrowing from the model so that no article HTML is copied.

use serde::Serialize;

use super::{Context, Entry, FeedError};

pub(crate) const VERSION: &str = "https://jsonfeed.org/version/1.1";

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    language: &'a str,
    authors: Vec<Author<'a>>,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    content_html: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    summary: &'a str,
    date_published: String,
    date_modified: String,
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
}

pub(crate) fn render(ctx: &Context<'_>) -> Result<String, FeedError> {
    let publication = ctx.publication;
    let feed = JsonFeed {
        version: VERSION,
        title: &publication.title,
        home_page_url: &ctx.home_url,
        feed_url: &ctx.json_url,
        description: &publication.description,
        language: &publication.language,
        authors: vec![Author {
            name: &publication.title,
            url: Some(&ctx.home_url),
        }],
        items: ctx.entries.iter().map(|e| item(ctx, e)).collect(),
    };
    // JSON escaping of HTML is mostly `"` and `/`-free; leave some headroom.
    let capacity = ctx.html_bytes + ctx.html_bytes / 8 + ctx.entries.len() * 768 + 1024;
    let mut bytes = Vec::with_capacity(capacity);
    serde_json::to_writer_pretty(&mut bytes, &feed).map_err(|e| FeedError::Serialize {
        format: "JSON",
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    String::from_utf8(bytes).map_err(|e| FeedError::Serialize {
        format: "JSON",
        message: e.to_string(),
    })
}

fn item<'a>(ctx: &'a Context<'a>, entry: &'a Entry<'a>) -> Item<'a> {
    let article = entry.article;
    let date = entry.date.to_rfc3339();
    Item {
        id: &entry.id,
        url: &entry.link,
        title: &article.title,
        content_html: &article.html,
        summary: &article.summary,
        date_published: date.clone(),
        date_modified: date,
        authors: entry
            .author_names(ctx.publication)
            .map(|name| Author { name, url: None })
            .collect(),
        tags: article
            .section
            .as_deref()
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
    }
}
