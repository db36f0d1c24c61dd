//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>) with our own serde
//! structs, borrowing from the model so that no article HTML is copied.

use std::ops::Range;

use serde::Serialize;

use super::format::{Format, Frame, fragment};
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
    items: Items<'a>,
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
    date_published: &'a str,
    date_modified: &'a str,
    authors: Authors<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<[&'a str; 1]>,
}

/// The items of `entries`, serialized straight from the model.
struct Items<'a> {
    ctx: &'a Context<'a>,
    entries: &'a [Entry<'a>],
}

impl Serialize for Items<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries.iter().map(|e| item(self.ctx, e)))
    }
}

/// An entry's by-line, or the publication when there is none.
struct Authors<'a> {
    ctx: &'a Context<'a>,
    entry: &'a Entry<'a>,
}

impl Serialize for Authors<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let names = self.entry.author_names(self.ctx.publication);
        serializer.collect_seq(names.map(|name| Author { name, url: None }))
    }
}

/// Where items go in a serialized feed (between the brackets).
const ITEMS_AFTER: &str = "\"items\": [";
/// The end of the items array in a pretty-printed feed: a line break and
/// the indentation of the closing bracket, then the bracket.
const ITEMS_END: &str = "\n  ]";
const ITEMS_END_INDENT: &str = "\n  ";

/// The whole feed in one piece.
pub(crate) fn render(ctx: &Context<'_>) -> Result<String, FeedError> {
    let mut feed = feed(ctx);
    feed.items.entries = &ctx.entries;
    // to_string_pretty skips a UTF-8 re-validation of the output.
    let mut json = serde_json::to_string_pretty(&feed).map_err(|e| Json::error(&e))?;
    json.push('\n');
    Ok(json)
}

/// JSON Feed 1.1 as `parallel.rs` builds it in pieces.
pub(crate) struct Json;

impl Format for Json {
    const NAME: &'static str = "JSON";
    /// serde serializes borrowed entries: nothing to keep.
    type Scratch = ();

    /// Item chunks, joined by commas, go between the brackets of
    /// `"items": []`, which close on a line of their own when there are
    /// items.
    fn frame(ctx: &Context<'_>) -> Result<Frame, FeedError> {
        let mut head = serde_json::to_string_pretty(&feed(ctx)).map_err(|e| Json::error(&e))?;
        head.push('\n');
        let at = head
            .rfind(ITEMS_AFTER)
            .map(|at| at + ITEMS_AFTER.len())
            .ok_or_else(|| Json::error(&"unexpected serializer output: no items"))?;
        let frame = Frame::split(&head, at, ",")
            .ok_or_else(|| Json::error(&"unexpected serializer output: bad items"))?;
        Ok(if ctx.entries.is_empty() {
            frame
        } else {
            Frame {
                suffix: format!("{ITEMS_END_INDENT}{}", frame.suffix),
                ..frame
            }
        })
    }

    /// The items of an items array of their own.
    fn write(
        ctx: &Context<'_>,
        entries: &[Entry<'_>],
        buf: &mut Vec<u8>,
        _: &mut (),
    ) -> Result<Range<usize>, FeedError> {
        #[derive(Serialize)]
        struct ItemsOnly<'a> {
            items: Items<'a>,
        }
        buf.clear();
        let items = ItemsOnly {
            items: Items { ctx, entries },
        };
        serde_json::to_writer_pretty(&mut *buf, &items).map_err(|e| Json::error(&e))?;
        let range = fragment::<Json>(buf, ITEMS_AFTER, ITEMS_END)?;
        Ok(range.start + ITEMS_AFTER.len()..range.end)
    }
}

fn feed<'a>(ctx: &'a Context<'a>) -> JsonFeed<'a> {
    let publication = ctx.publication;
    JsonFeed {
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
        items: Items { ctx, entries: &[] },
    }
}

fn item<'a>(ctx: &'a Context<'a>, entry: &'a Entry<'a>) -> Item<'a> {
    let article = entry.article;
    let date = ctx.stamp(entry).rfc3339.as_str();
    Item {
        id: ctx.id(entry),
        url: ctx.link(entry),
        title: &article.title,
        content_html: &article.html,
        summary: &article.summary,
        date_published: date,
        date_modified: date,
        authors: Authors { ctx, entry },
        tags: article
            .section
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| [s]),
    }
}
