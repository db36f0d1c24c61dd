//! RSS 2.0 via the `rss` crate, with the Atom (self link), Dublin Core
//! (`dc:creator`) and content (`content:encoded`) namespaces.
//!
//! The crate escapes every text node itself (or writes CDATA), so values are
//! passed as they are, never pre-escaped (rss#167, rss#170). The one exception
//! is the item `description`, which RSS readers treat as HTML: see
//! [`plain_text_as_html`].

use std::borrow::Cow;
use std::ops::Range;

use ::rss::extension::atom::{AtomExtension, Link};
use ::rss::extension::dublincore::DublinCoreExtension;
use ::rss::{Category, Channel, Guid, Item};

use super::format::{Format, Frame, Reused, fragment};
use super::{Context, Entry, FeedError, GENERATOR, RSS_MEDIA_TYPE, push_xml_text, xml_text};

/// Where items go in the output of [`head`].
const ITEMS_BEFORE: &str = "\n  </channel>";
/// Where the first item starts in a pretty-printed channel.
const FIRST_ITEM: &str = "\n    <item>";

/// The whole feed in one piece.
pub(crate) fn render(ctx: &Context<'_>) -> Result<String, FeedError> {
    let mut channel = channel(ctx);
    channel.items = ctx
        .entries
        .iter()
        .map(|e| {
            let mut item = Item::default();
            fill(&mut item, ctx, e);
            item
        })
        .collect();
    write(&channel, ctx.html_bytes + ctx.entries.len() * 1024 + 1024)
}

/// The feed without items, its root declaring the namespaces items use.
fn head(ctx: &Context<'_>) -> Result<String, FeedError> {
    let mut channel = channel(ctx);
    let declared = if ctx.entries.is_empty() {
        &[][..]
    } else {
        &[
            ("content", "http://purl.org/rss/1.0/modules/content/"),
            ("dc", ::rss::extension::dublincore::NAMESPACE),
        ][..]
    };
    for &(prefix, uri) in declared {
        channel.namespaces.insert(prefix.to_owned(), uri.to_owned());
    }
    write(&channel, 4096)
}

/// RSS 2.0 as `parallel.rs` builds it in pieces.
pub(crate) struct Rss;

impl Format for Rss {
    const NAME: &'static str = "RSS";
    type Scratch = Reused<Item>;

    fn frame(ctx: &Context<'_>) -> Result<Frame, FeedError> {
        Frame::before_last::<Rss>(&head(ctx)?, ITEMS_BEFORE, "channel")
    }

    /// The items of a channel of their own.
    fn write(
        ctx: &Context<'_>,
        entries: &[Entry<'_>],
        buf: &mut Vec<u8>,
        scratch: &mut Reused<Item>,
    ) -> Result<Range<usize>, FeedError> {
        buf.clear();
        let channel = Channel {
            items: scratch.fill(entries, |item, entry| fill(item, ctx, entry)),
            ..Channel::default()
        };
        let written = channel.pretty_write_to(&mut *buf, b' ', 2);
        scratch.keep(channel.items);
        written.map_err(|e| Rss::error(&e))?;
        fragment::<Rss>(buf, FIRST_ITEM, ITEMS_BEFORE)
    }
}

fn channel(ctx: &Context<'_>) -> Channel {
    let publication = ctx.publication;
    let date = ctx.updated.to_rfc2822();
    Channel {
        title: xml_text(&publication.title),
        link: ctx.home_url.clone(),
        description: if publication.description.is_empty() {
            xml_text(&publication.title)
        } else {
            xml_text(&publication.description)
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
        ..Channel::default()
    }
}

fn write(channel: &Channel, capacity: usize) -> Result<String, FeedError> {
    let bytes = channel
        .pretty_write_to(Vec::with_capacity(capacity), b' ', 2)
        .map_err(|e| Rss::error(&e))?;
    let mut xml = String::from_utf8(bytes).map_err(|e| Rss::error(&e))?;
    xml.push('\n');
    Ok(xml)
}

/// Makes `item` the item of `entry`, reusing its strings.
fn fill(item: &mut Item, ctx: &Context<'_>, entry: &Entry<'_>) {
    let article = entry.article;
    set_some(&mut item.title, &article.title);
    set_some(&mut item.link, ctx.link(entry));
    if article.summary.is_empty() {
        item.description = None;
    } else {
        set_some(&mut item.description, &plain_text_as_html(&article.summary));
    }
    match article.section.as_deref().filter(|s| !s.is_empty()) {
        Some(section) => {
            item.categories.truncate(1);
            match item.categories.first_mut() {
                Some(category) => {
                    set(&mut category.name, section);
                    category.domain = None;
                }
                None => item.categories.push(Category {
                    name: xml_text(section),
                    domain: None,
                }),
            }
        }
        None => item.categories.clear(),
    }
    let guid = item.guid.get_or_insert_with(Guid::default);
    set(&mut guid.value, ctx.id(entry));
    guid.permalink = false;
    set_some(&mut item.pub_date, &ctx.stamp(entry).rfc2822);
    set_some(&mut item.content, &article.html);
    let dc = item
        .dublin_core_ext
        .get_or_insert_with(DublinCoreExtension::default);
    set_all(&mut dc.creators, entry.author_names(ctx.publication));
}

/// Sets `slot` to `value`, reusing its allocation, minus characters XML forbids.
fn set(slot: &mut String, value: &str) {
    slot.clear();
    push_xml_text(slot, value);
}

fn set_some(slot: &mut Option<String>, value: &str) {
    set(slot.get_or_insert_with(String::new), value);
}

fn set_all<'v>(slots: &mut Vec<String>, values: impl Iterator<Item = &'v str>) {
    let mut n = 0;
    for value in values {
        match slots.get_mut(n) {
            Some(slot) => set(slot, value),
            None => slots.push(xml_text(value)),
        }
        n += 1;
    }
    slots.truncate(n);
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| xml_text(s))
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
