//! Atom 1.0 (RFC 4287) via `atom_syndication`.
//!
//! Titles and summaries are text constructs of type `text` (the default, so no
//! `type` attribute is written); content is `type="html"`, escaped by the crate.

use std::ops::Range;

use atom_syndication::{
    Category, Content, Entry as AtomEntry, Feed, Generator, Link, Person, Text, WriteConfig,
};

use super::format::{Format, Frame, Reused, fragment};
use super::{ATOM_MEDIA_TYPE, Context, Entry, FeedError, GENERATOR, push_xml_text, xml_text};

/// Where entries go in the output of [`head`].
const ENTRIES_BEFORE: &str = "\n</feed>";
/// Where the first entry starts in a pretty-printed feed.
const FIRST_ENTRY: &str = "\n  <entry>";

/// The whole feed in one piece.
pub(crate) fn render(ctx: &Context<'_>) -> Result<String, FeedError> {
    let mut feed = feed(ctx);
    feed.entries = ctx
        .entries
        .iter()
        .map(|e| {
            let mut entry = AtomEntry::default();
            fill(&mut entry, ctx, e);
            entry
        })
        .collect();
    // Escaped HTML grows a little; plus markup per entry.
    write(
        &feed,
        ctx.html_bytes + ctx.html_bytes / 4 + ctx.entries.len() * 1024 + 1024,
    )
}

/// The feed without entries.
fn head(ctx: &Context<'_>) -> Result<String, FeedError> {
    write(&feed(ctx), 4096)
}

/// Atom 1.0 as `parallel.rs` builds it in pieces.
pub(crate) struct Atom;

impl Format for Atom {
    const NAME: &'static str = "Atom";
    type Scratch = Reused<AtomEntry>;

    fn frame(ctx: &Context<'_>) -> Result<Frame, FeedError> {
        Frame::before_last::<Atom>(&head(ctx)?, ENTRIES_BEFORE, "feed")
    }

    /// The entries of a feed of their own.
    fn write(
        ctx: &Context<'_>,
        entries: &[Entry<'_>],
        buf: &mut Vec<u8>,
        scratch: &mut Reused<AtomEntry>,
    ) -> Result<Range<usize>, FeedError> {
        buf.clear();
        let feed = Feed {
            entries: scratch.fill(entries, |atom_entry, entry| fill(atom_entry, ctx, entry)),
            ..Feed::default()
        };
        let written = feed.write_with_config(&mut *buf, CONFIG);
        scratch.keep(feed.entries);
        written.map_err(|e| Atom::error(&e))?;
        fragment::<Atom>(buf, FIRST_ENTRY, ENTRIES_BEFORE)
    }
}

const CONFIG: WriteConfig = WriteConfig {
    write_document_declaration: true,
    indent_size: Some(2),
};

fn feed(ctx: &Context<'_>) -> Feed {
    let publication = ctx.publication;
    Feed {
        title: Text::plain(xml_text(&publication.title)),
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
            .then(|| Text::plain(xml_text(&publication.description))),
        lang: (!publication.language.is_empty()).then(|| xml_text(&publication.language)),
        ..Feed::default()
    }
}

fn write(feed: &Feed, capacity: usize) -> Result<String, FeedError> {
    let bytes = feed
        .write_with_config(Vec::with_capacity(capacity), CONFIG)
        .map_err(|e| Atom::error(&e))?;
    let mut xml = String::from_utf8(bytes).map_err(|e| Atom::error(&e))?;
    xml.push('\n');
    Ok(xml)
}

/// Makes `e` the Atom entry of `entry`, reusing its strings.
fn fill(e: &mut AtomEntry, ctx: &Context<'_>, entry: &Entry<'_>) {
    let article = entry.article;
    set(&mut e.title.value, &article.title);
    set(&mut e.id, ctx.id(entry));
    e.updated = entry.date;
    e.published = Some(entry.date);
    if article.authors.is_empty() {
        let publication = [(ctx.publication.title.as_str(), Some(ctx.home_url.as_str()))];
        set_people(&mut e.authors, publication.into_iter());
    } else {
        set_people(
            &mut e.authors,
            article.authors.iter().map(|a| (a.as_str(), None)),
        );
    }
    match article.section.as_deref().filter(|s| !s.is_empty()) {
        Some(section) => {
            e.categories.truncate(1);
            match e.categories.first_mut() {
                Some(category) => set(&mut category.term, section),
                None => e.categories.push(Category {
                    term: xml_text(section),
                    scheme: None,
                    label: None,
                }),
            }
        }
        None => e.categories.clear(),
    }
    e.links.truncate(1);
    match e.links.first_mut() {
        Some(link) => set(&mut link.href, ctx.link(entry)),
        None => e
            .links
            .push(link(ctx.link(entry), "alternate", "text/html")),
    }
    if article.summary.is_empty() {
        e.summary = None;
    } else {
        set(
            &mut e.summary.get_or_insert_with(Text::default).value,
            &article.summary,
        );
    }
    let content = e.content.get_or_insert_with(|| Content {
        content_type: Some("html".to_owned()),
        ..Content::default()
    });
    set(content.value.get_or_insert_with(String::new), &article.html);
}

/// Sets `slot` to `value`, reusing its allocation, minus characters XML forbids.
fn set(slot: &mut String, value: &str) {
    slot.clear();
    push_xml_text(slot, value);
}

/// Sets `people` to the (name, uri) pairs, reusing their strings.
fn set_people<'v>(
    people: &mut Vec<Person>,
    values: impl Iterator<Item = (&'v str, Option<&'v str>)>,
) {
    let mut n = 0;
    for (name, uri) in values {
        if let Some(person) = people.get_mut(n) {
            set(&mut person.name, name);
            match uri {
                Some(uri) => set(person.uri.get_or_insert_with(String::new), uri),
                None => person.uri = None,
            }
        } else {
            people.push(Person {
                name: xml_text(name),
                uri: uri.map(str::to_owned),
                ..Person::default()
            });
        }
        n += 1;
    }
    people.truncate(n);
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
        ..person(&xml_text(&ctx.publication.title))
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
