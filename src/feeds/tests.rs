//! Tests of the feed builders on a hand-built model, including the main rules
//! of the W3C feed validator, checked by the tests themselves.

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate};
use url::Url;

use super::*;
use crate::content::{ContentHash, SourceFormat};

pub(crate) const TRICKY_TITLE: &str = "Rents > wages & “temporary” < permanent";

pub(crate) fn publication() -> Publication {
    Publication {
        title: "News & Letters".to_owned(),
        description: "Marxist-Humanist journal, “since 1955” & counting".to_owned(),
        base_url: Url::parse("https://news.example.org/gazette/").unwrap(),
        language: "en".to_owned(),
        timezone: chrono_tz::America::New_York,
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn article(
    slug: &str,
    title: &str,
    authors: &[&str],
    date: NaiveDate,
    section: Option<&str>,
    summary: &str,
    html: &str,
) -> Article {
    Article {
        slug: slug.to_owned(),
        title: title.to_owned(),
        authors: authors.iter().map(|a| (*a).to_owned()).collect(),
        date,
        section: section.map(str::to_owned),
        dateline: None,
        summary: summary.to_owned(),
        html: html.to_owned(),
        source: PathBuf::from(format!("content/x/{slug}.md")),
        format: SourceFormat::Markdown,
        hash: ContentHash::of(slug.as_bytes()),
    }
}

const RICH_HTML: &str = "<p>Mexico—The <em>border</em> regime, <strong>again</strong>.</p>\n\
<blockquote><p>“Nobody is illegal.”</p></blockquote>\n\
<ul><li>one &amp; two</li><li>3 &lt; 4</li></ul>\n\
<p><a href=\"https://example.org/report?a=1&amp;b=2\">The report</a> a]]>b survives CDATA.</p>\n\
<pre><code>if a &lt; b { c }</code></pre>";

/// Two issues, newest first; five articles.
pub(crate) fn issues() -> Vec<Issue> {
    let november = vec![
        article(
            "us-mexico-collusion",
            "U.S.-Mexico collusion against immigrants",
            &["Eugene Walker"],
            date(2021, 11, 19),
            Some("Editorial"),
            "Mexico—The border regime, again.",
            RICH_HTML,
        ),
        article(
            "rents-wages",
            TRICKY_TITLE,
            &["Ana Núñez", "Björn Ødegaard"],
            date(2021, 11, 18),
            Some("Labor & Work"),
            "Landlords & “temporary” rises < permanent losses — ça va?",
            "<p>Rents &gt; wages &amp; “temporary” &lt; permanent.</p>",
        ),
        article(
            "unsigned-note",
            "A note from the editors",
            &[],
            date(2021, 11, 17),
            None,
            "",
            "<p>Unsigned.</p>",
        ),
    ];
    let september = vec![
        article(
            "solidarity",
            "Solidarity in 東京 and Zürich",
            &["Jane Doe"],
            date(2021, 9, 20),
            Some("World"),
            "From 東京 to Zürich.",
            "<p>Grüße, 東京.</p>",
        ),
        article(
            "letters",
            "Letters: “Why?” & ‘Why not?’",
            &["Reader One"],
            date(2021, 9, 18),
            Some("Letters"),
            "Readers write.",
            "<p>Dear editors,</p>",
        ),
    ];
    vec![
        issue(
            "2021-11-november-december",
            "November-December 2021",
            date(2021, 11, 19),
            november,
        ),
        issue(
            "2021-09-september-october",
            "September-October 2021",
            date(2021, 9, 20),
            september,
        ),
    ]
}

fn issue(slug: &str, title: &str, date: NaiveDate, articles: Vec<Article>) -> Issue {
    Issue {
        slug: slug.to_owned(),
        title: title.to_owned(),
        date,
        number: None,
        volume: None,
        summary: None,
        publication: None,
        draft: false,
        publish_at: None,
        dir: PathBuf::from(format!("content/{slug}")),
        articles,
        hash: ContentHash::of(slug.as_bytes()),
    }
}

fn all_articles(issues: &[Issue]) -> Vec<(&Issue, &Article)> {
    issues
        .iter()
        .flat_map(|i| i.articles.iter().map(move |a| (i, a)))
        .collect()
}

fn expected_id(issue: &Issue, article: &Article) -> String {
    format!(
        "tag:news.example.org,{}:{}/{}",
        issue.date, issue.slug, article.slug
    )
}

fn expected_link(issue: &Issue, article: &Article) -> String {
    format!(
        "https://news.example.org/gazette/issues/{}#{}",
        issue.slug, article.slug
    )
}

fn sample() -> FeedSet {
    build(&publication(), &issues(), 50).unwrap()
}

fn parse(text: &str) -> feed_rs::model::Feed {
    feed_rs::parser::parse(text.as_bytes()).unwrap()
}

/// Raw text of every `<name>` / `<name attr…>` element (our own output only:
/// no nesting of the same name, no comments).
fn raw_elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let close = format!("</{name}>");
    let mut rest = xml;
    while let Some(start) = rest.find(&format!("<{name}")) {
        let after = &rest[start + name.len() + 1..];
        if !after.starts_with('>') && !after.starts_with(' ') {
            rest = after;
            continue;
        }
        let body_start = after.find('>').unwrap() + 1;
        let body = &after[body_start..];
        let end = body.find(&close).unwrap();
        out.push(&body[..end]);
        rest = &body[end..];
    }
    out
}

/// Anything an HTML parser would take for a tag, comment or declaration.
fn has_markup(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?')))
}

fn assert_absolute(url: &str) {
    let parsed = Url::parse(url).unwrap_or_else(|e| panic!("not an absolute URL: {url}: {e}"));
    assert!(matches!(parsed.scheme(), "https" | "http"), "{url}");
    assert!(parsed.host_str().is_some(), "{url}");
}

/// RFC 4151: `tag:` authority `,` date `:` specific, all ASCII, no spaces.
fn assert_tag_uri(id: &str) {
    let rest = id
        .strip_prefix("tag:")
        .unwrap_or_else(|| panic!("not a tag URI: {id}"));
    let (entity, specific) = rest.split_once(':').unwrap();
    let (authority, day) = entity.split_once(',').unwrap();
    assert_eq!(authority, "news.example.org");
    NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    assert!(
        !specific.is_empty() && specific.bytes().all(|b| b.is_ascii_graphic()),
        "{id}"
    );
    assert!(Url::parse(id).is_ok(), "{id}");
}

// ---------------------------------------------------------------- selection

#[test]
fn items_limit_and_order_newest_issue_first() {
    let issues = issues();
    let all = all_articles(&issues);
    for limit in [0, 1, 3, 4, 5, 50] {
        let set = build(&publication(), &issues, limit).unwrap();
        let want: Vec<String> = all
            .iter()
            .take(limit)
            .map(|(i, a)| expected_id(i, a))
            .collect();
        for text in [&set.rss, &set.atom, &set.json] {
            let got: Vec<String> = parse(text).entries.into_iter().map(|e| e.id).collect();
            assert_eq!(got, want, "limit {limit}");
        }
    }
    // The first entries are the newest issue's, in issue order.
    let set = build(&publication(), &issues, 4).unwrap();
    let ids: Vec<String> = parse(&set.atom).entries.into_iter().map(|e| e.id).collect();
    assert!(ids[0].ends_with("2021-11-november-december/us-mexico-collusion"));
    assert!(ids[2].ends_with("2021-11-november-december/unsigned-note"));
    assert!(ids[3].ends_with("2021-09-september-october/solidarity"));
}

#[test]
fn output_is_byte_identical_on_rebuild() {
    let a = sample();
    let b = build(&publication(), &issues().clone(), 50).unwrap();
    assert_eq!(a, b);
    // Also through the threaded path.
    let many = big_model(300);
    assert_eq!(
        build(&publication(), &many, 1000).unwrap(),
        build(&publication(), &many, 1000).unwrap()
    );
}

#[test]
fn parallel_spliced_build_equals_one_piece_serialization() {
    let publication = publication();
    for (issues, limit) in [(issues(), 50), (issues(), 0), (big_model(300), 1000)] {
        let ctx = Context::new(&publication, &issues, limit).unwrap();
        let whole = FeedSet {
            rss: rss::render(&ctx).unwrap(),
            atom: atom::render(&ctx).unwrap(),
            json: json::render(&ctx).unwrap(),
        };
        for chunk in [1, 2, 3, 7, 256, 10_000] {
            let spliced = build_in_pieces(&ctx, chunk).unwrap();
            assert_eq!(spliced.rss, whole.rss, "chunk {chunk}");
            assert_eq!(spliced.atom, whole.atom, "chunk {chunk}");
            assert_eq!(spliced.json, whole.json, "chunk {chunk}");
        }
    }
    // build() takes the parallel path for big feeds.
    let many = big_model(300);
    assert!(
        Context::new(&publication, &many, 1000)
            .unwrap()
            .entries
            .len()
            > parallel::CHUNK
    );
    let ctx = Context::new(&publication, &many, 1000).unwrap();
    assert_eq!(
        build(&publication, &many, 1000).unwrap().atom,
        atom::render(&ctx).unwrap()
    );
}

fn big_model(articles: usize) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (n, chunk) in (0..articles).collect::<Vec<_>>().chunks(10).enumerate() {
        let day = date(2021, 12, 31) - chrono::Duration::days(7 * n as i64);
        let arts = chunk
            .iter()
            .map(|k| {
                article(
                    &format!("a{k}"),
                    &format!("Article {k} & co"),
                    &["A. Writer"],
                    day,
                    Some("News"),
                    "Sum.",
                    "<p>x</p>",
                )
            })
            .collect();
        issues.push(issue(&format!("issue-{n}"), "Issue", day, arts));
    }
    issues
}

#[test]
fn empty_feeds_are_valid_and_dated_by_the_newest_issue() {
    let set = build(&publication(), &issues(), 0).unwrap();
    assert!(
        set.rss
            .contains("<lastBuildDate>Fri, 19 Nov 2021 00:00:00 -0500</lastBuildDate>")
    );
    assert!(
        set.atom
            .contains("<updated>2021-11-19T00:00:00-05:00</updated>")
    );
    let none = build(&publication(), &[], 10).unwrap();
    assert!(
        none.atom
            .contains("<updated>1970-01-01T00:00:00+00:00</updated>")
    );
    for text in [&none.rss, &none.atom, &none.json] {
        assert!(parse(text).entries.is_empty());
    }
}

// --------------------------------------------------------------- round trip

#[test]
fn rss_round_trip() {
    let set = sample();
    let feed = parse(&set.rss);
    assert_eq!(feed.title.unwrap().content, "News & Letters");
    assert_eq!(feed.language.as_deref(), Some("en"));
    assert_eq!(
        feed.updated.unwrap(),
        DateTime::parse_from_rfc3339("2021-11-19T05:00:00Z").unwrap()
    );
    assert!(
        feed.links
            .iter()
            .any(|l| l.href == "https://news.example.org/gazette/")
    );
    let issues = issues();
    let all = all_articles(&issues);
    assert_eq!(feed.entries.len(), all.len());
    for (entry, (issue, article)) in feed.entries.iter().zip(&all) {
        assert_eq!(entry.id, expected_id(issue, article));
        assert_eq!(entry.title.as_ref().unwrap().content, article.title);
        assert_eq!(entry.links[0].href, expected_link(issue, article));
        assert_eq!(
            entry.content.as_ref().unwrap().body.as_deref(),
            Some(article.html.as_str())
        );
        let summary = entry
            .summary
            .as_ref()
            .map(|s| s.content.as_str())
            .unwrap_or("");
        assert_eq!(summary, article.summary);
        let authors: Vec<&str> = entry
            .authors
            .iter()
            .map(|p| p.name.as_deref().unwrap())
            .collect();
        assert_eq!(authors, expected_authors(article));
        let expected_date = local_midnight(article.date, chrono_tz::America::New_York);
        assert_eq!(entry.published.unwrap(), expected_date);
        let terms: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(
            terms,
            article
                .section
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn atom_round_trip() {
    let set = sample();
    let feed = parse(&set.atom);
    assert_eq!(feed.id, "https://news.example.org/gazette/feeds/atom.xml");
    assert_eq!(feed.title.unwrap().content, "News & Letters");
    assert_eq!(feed.description.unwrap().content, publication().description);
    assert_eq!(
        feed.updated.unwrap(),
        DateTime::parse_from_rfc3339("2021-11-19T00:00:00-05:00").unwrap()
    );
    assert_eq!(feed.authors[0].name.as_deref(), Some("News & Letters"));
    assert_eq!(feed.generator.unwrap().content, "gazette");
    assert_eq!(feed.language.as_deref(), Some("en"));
    let issues = issues();
    let all = all_articles(&issues);
    assert_eq!(feed.entries.len(), all.len());
    for (entry, (issue, article)) in feed.entries.iter().zip(&all) {
        assert_eq!(entry.id, expected_id(issue, article));
        let title = entry.title.as_ref().unwrap();
        assert_eq!(title.content, article.title);
        assert_eq!(title.content_type.to_string(), "text/plain");
        let alternate = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref() == Some("alternate"))
            .unwrap();
        assert_eq!(alternate.href, expected_link(issue, article));
        let content = entry.content.as_ref().unwrap();
        assert_eq!(content.body.as_deref(), Some(article.html.as_str()));
        assert_eq!(content.content_type.to_string(), "text/html");
        match &entry.summary {
            Some(s) => {
                assert_eq!(s.content, article.summary);
                assert_eq!(s.content_type.to_string(), "text/plain");
            }
            None => assert!(article.summary.is_empty()),
        }
        let authors: Vec<&str> = entry
            .authors
            .iter()
            .map(|p| p.name.as_deref().unwrap())
            .collect();
        assert_eq!(authors, expected_authors(article));
        let expected_date = local_midnight(article.date, chrono_tz::America::New_York);
        assert_eq!(entry.published.unwrap(), expected_date);
        assert_eq!(entry.updated.unwrap(), expected_date);
        let terms: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(
            terms,
            article
                .section
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn json_round_trip() {
    let set = sample();
    assert!(set.json.ends_with("}\n"));
    let feed = parse(&set.json);
    assert_eq!(feed.title.unwrap().content, "News & Letters");
    assert_eq!(feed.language.as_deref(), Some("en"));
    let issues = issues();
    let all = all_articles(&issues);
    assert_eq!(feed.entries.len(), all.len());
    for (entry, (issue, article)) in feed.entries.iter().zip(&all) {
        assert_eq!(entry.id, expected_id(issue, article));
        assert_eq!(entry.title.as_ref().unwrap().content, article.title);
        assert_eq!(entry.links[0].href, expected_link(issue, article));
        assert_eq!(
            entry.content.as_ref().unwrap().body.as_deref(),
            Some(article.html.as_str())
        );
        let summary = entry
            .summary
            .as_ref()
            .map(|s| s.content.as_str())
            .unwrap_or("");
        assert_eq!(summary, article.summary);
        let authors: Vec<&str> = entry
            .authors
            .iter()
            .map(|p| p.name.as_deref().unwrap())
            .collect();
        assert_eq!(authors, expected_authors(article));
        let expected_date = local_midnight(article.date, chrono_tz::America::New_York);
        assert_eq!(entry.published.unwrap(), expected_date);
        assert_eq!(entry.updated.unwrap(), expected_date);
    }
    // Fields feed-rs does not carry, checked on the JSON itself.
    let value: serde_json::Value = serde_json::from_str(&set.json).unwrap();
    assert_eq!(value["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(value["home_page_url"], "https://news.example.org/gazette/");
    assert_eq!(
        value["feed_url"],
        "https://news.example.org/gazette/feeds/feed.json"
    );
    assert_eq!(value["description"], publication().description);
    assert_eq!(value["authors"][0]["name"], "News & Letters");
    assert_eq!(value["items"][0]["tags"], serde_json::json!(["Editorial"]));
    assert_eq!(
        value["items"][0]["date_published"],
        "2021-11-19T00:00:00-05:00"
    );
    assert_eq!(
        value["items"][0]["date_modified"],
        "2021-11-19T00:00:00-05:00"
    );
    assert!(value["items"][2].get("tags").is_none());
    assert!(value["items"][2].get("summary").is_none());
}

fn expected_authors(article: &Article) -> Vec<&str> {
    if article.authors.is_empty() {
        vec!["News & Letters"]
    } else {
        article.authors.iter().map(String::as_str).collect()
    }
}

#[test]
fn rss_and_atom_details() {
    let set = sample();
    // RSS: self link, guid not a permalink, one dc:creator per author, dates.
    assert!(set.rss.contains(
        "<atom:link href=\"https://news.example.org/gazette/feeds/rss.xml\" rel=\"self\" type=\"application/rss+xml\"/>"
    ));
    assert!(set.rss.contains("<guid isPermaLink=\"false\">tag:news.example.org,2021-11-19:2021-11-november-december/rents-wages</guid>"));
    assert!(set.rss.contains("<dc:creator>Ana Núñez</dc:creator>"));
    assert!(set.rss.contains("<dc:creator>Björn Ødegaard</dc:creator>"));
    assert!(
        set.rss
            .contains("<pubDate>Fri, 19 Nov 2021 00:00:00 -0500</pubDate>")
    );
    assert!(
        set.rss
            .contains("<pubDate>Mon, 20 Sep 2021 00:00:00 -0400</pubDate>")
    );
    assert!(set.rss.contains("<generator>gazette "));
    // The title is escaped once, as XML: no pre-escaping, no raw markup.
    assert!(
        set.rss
            .contains("<title>Rents &gt; wages &amp; “temporary” &lt; permanent</title>")
    );
    assert!(
        set.atom
            .contains("<title>Rents &gt; wages &amp; “temporary” &lt; permanent</title>")
    );
    assert!(
        set.json
            .contains("\"title\": \"Rents > wages & “temporary” < permanent\"")
    );
    // Atom: language, both feed links, html content.
    assert!(set.atom.contains("xml:lang=\"en\""));
    assert!(set.atom.contains(
        "<link href=\"https://news.example.org/gazette/\" rel=\"alternate\" type=\"text/html\"/>"
    ));
    assert!(
        set.atom
            .contains("<content type=\"html\">&lt;p&gt;Rents &amp;gt; wages")
    );
    assert!(set.atom.contains("<category term=\"Labor &amp; Work\"/>"));
}

// ------------------------------------------------------- validator rules

#[test]
fn self_links_equal_the_feed_urls() {
    let set = sample();
    let rss = ::rss::Channel::read_from(set.rss.as_bytes()).unwrap();
    let self_links: Vec<&str> = rss
        .atom_ext()
        .unwrap()
        .links()
        .iter()
        .filter(|l| l.rel() == "self")
        .map(|l| l.href())
        .collect();
    assert_eq!(
        self_links,
        ["https://news.example.org/gazette/feeds/rss.xml"]
    );

    let atom: atom_syndication::Feed = set.atom.parse().unwrap();
    let self_links: Vec<&str> = atom
        .links()
        .iter()
        .filter(|l| l.rel() == "self")
        .map(|l| l.href())
        .collect();
    assert_eq!(
        self_links,
        ["https://news.example.org/gazette/feeds/atom.xml"]
    );
    assert_eq!(
        atom.links()
            .iter()
            .find(|l| l.rel() == "self")
            .unwrap()
            .mime_type(),
        Some("application/atom+xml")
    );

    let json: serde_json::Value = serde_json::from_str(&set.json).unwrap();
    assert_eq!(
        json["feed_url"],
        "https://news.example.org/gazette/feeds/feed.json"
    );
}

#[test]
fn every_url_is_absolute_and_ids_are_unique_tag_uris() {
    let set = sample();
    for text in [&set.rss, &set.atom, &set.json] {
        let feed = parse(text);
        for link in &feed.links {
            assert_absolute(&link.href);
        }
        for person in &feed.authors {
            if let Some(uri) = &person.uri {
                assert_absolute(uri);
            }
        }
        let mut seen = HashSet::new();
        for entry in &feed.entries {
            assert_tag_uri(&entry.id);
            assert!(seen.insert(entry.id.clone()), "duplicate id {}", entry.id);
            assert!(!entry.links.is_empty());
            for link in &entry.links {
                assert_absolute(&link.href);
            }
        }
    }
    let atom: atom_syndication::Feed = set.atom.parse().unwrap();
    assert_absolute(atom.id());
    for href in raw_elements(&set.rss, "link") {
        assert_absolute(href);
    }
    let json: serde_json::Value = serde_json::from_str(&set.json).unwrap();
    assert_absolute(json["home_page_url"].as_str().unwrap());
    assert_absolute(json["feed_url"].as_str().unwrap());
}

#[test]
fn dates_use_rfc_2822_in_rss_and_rfc_3339_elsewhere() {
    let set = sample();
    let rss_dates: Vec<&str> = ["pubDate", "lastBuildDate"]
        .iter()
        .flat_map(|n| raw_elements(&set.rss, n))
        .collect();
    assert_eq!(rss_dates.len(), 2 + 5);
    for d in rss_dates {
        DateTime::parse_from_rfc2822(d).unwrap_or_else(|e| panic!("{d}: {e}"));
        assert!(d.ends_with("-0500") || d.ends_with("-0400"), "{d}");
    }
    let atom_dates: Vec<&str> = ["updated", "published"]
        .iter()
        .flat_map(|n| raw_elements(&set.atom, n))
        .collect();
    assert_eq!(atom_dates.len(), 1 + 2 * 5);
    for d in atom_dates {
        DateTime::parse_from_rfc3339(d).unwrap_or_else(|e| panic!("{d}: {e}"));
    }
    let json: serde_json::Value = serde_json::from_str(&set.json).unwrap();
    for item in json["items"].as_array().unwrap() {
        for key in ["date_published", "date_modified"] {
            DateTime::parse_from_rfc3339(item[key].as_str().unwrap()).unwrap();
        }
    }
}

#[test]
fn atom_entries_have_id_updated_and_author() {
    let set = sample();
    let entries = raw_elements(&set.atom, "entry");
    assert_eq!(entries.len(), 5);
    for entry in entries {
        assert_eq!(raw_elements(entry, "id").len(), 1, "{entry}");
        assert_eq!(raw_elements(entry, "updated").len(), 1, "{entry}");
        let authors = raw_elements(entry, "author");
        assert!(!authors.is_empty(), "{entry}");
        for author in authors {
            assert!(!raw_elements(author, "name")[0].trim().is_empty());
        }
    }
    // The feed itself, too.
    let head = &set.atom[..set.atom.find("<entry>").unwrap()];
    assert_eq!(raw_elements(head, "id").len(), 1);
    assert_eq!(raw_elements(head, "updated").len(), 1);
    assert_eq!(raw_elements(head, "author").len(), 1);
}

#[test]
fn no_undeclared_html_in_text_constructs() {
    let set = sample();
    let rss = ::rss::Channel::read_from(set.rss.as_bytes()).unwrap();
    let mut texts = vec![rss.title().to_owned(), rss.description().to_owned()];
    for item in rss.items() {
        texts.extend(item.title().map(str::to_owned));
        texts.extend(item.description().map(str::to_owned));
    }
    let atom: atom_syndication::Feed = set.atom.parse().unwrap();
    texts.push(atom.title().to_string());
    texts.extend(atom.subtitle().map(|t| t.to_string()));
    for entry in atom.entries() {
        assert_eq!(entry.title().r#type, atom_syndication::TextType::Text);
        texts.push(entry.title().to_string());
        if let Some(summary) = entry.summary() {
            assert_eq!(summary.r#type, atom_syndication::TextType::Text);
            texts.push(summary.to_string());
        }
    }
    let json: serde_json::Value = serde_json::from_str(&set.json).unwrap();
    for item in json["items"].as_array().unwrap() {
        texts.push(item["title"].as_str().unwrap().to_owned());
        texts.extend(
            item.get("summary")
                .and_then(|s| s.as_str())
                .map(str::to_owned),
        );
    }
    assert!(texts.len() > 20);
    for text in &texts {
        assert!(!has_markup(text), "markup in a text construct: {text}");
    }
    // The tricky title reads back as the same text from every feed.
    assert!(rss.items().iter().any(|i| i.title() == Some(TRICKY_TITLE)));
    assert!(
        atom.entries()
            .iter()
            .any(|e| e.title().as_str() == TRICKY_TITLE)
    );
    assert!(texts.iter().filter(|t| t.as_str() == TRICKY_TITLE).count() == 3);
}

#[test]
fn summaries_that_look_like_html_are_escaped_in_rss_descriptions() {
    use super::rss::plain_text_as_html;
    assert_eq!(plain_text_as_html("a < b & c > d"), "a < b & c > d");
    assert_eq!(plain_text_as_html(TRICKY_TITLE), TRICKY_TITLE);
    assert_eq!(
        plain_text_as_html("use <b> & &amp;"),
        "use &lt;b&gt; &amp; &amp;amp;"
    );
    assert_eq!(plain_text_as_html("AT&T"), "AT&amp;T");
    assert_eq!(plain_text_as_html("x &#60; y"), "x &amp;#60; y");

    let mut issues = issues();
    issues[0].articles[0].summary = "The <script> tag & AT&T".to_owned();
    let set = build(&publication(), &issues, 1).unwrap();
    let rss = ::rss::Channel::read_from(set.rss.as_bytes()).unwrap();
    assert_eq!(
        rss.items()[0].description(),
        Some("The &lt;script&gt; tag &amp; AT&amp;T")
    );
    let atom: atom_syndication::Feed = set.atom.parse().unwrap();
    assert_eq!(
        atom.entries()[0].summary().unwrap().as_str(),
        "The <script> tag & AT&T"
    );
}

// -------------------------------------------------------------- helpers

#[test]
fn dates_are_local_midnight_as_fixed_offsets() {
    let ny = chrono_tz::America::New_York;
    assert_eq!(
        local_midnight(date(2021, 11, 19), ny).to_rfc2822(),
        "Fri, 19 Nov 2021 00:00:00 -0500"
    );
    assert_eq!(
        local_midnight(date(2021, 7, 4), ny).to_rfc3339(),
        "2021-07-04T00:00:00-04:00"
    );
    // São Paulo skipped midnight on 2018-11-04 (00:00 -> 01:00).
    let sp = chrono_tz::America::Sao_Paulo;
    assert_eq!(
        local_midnight(date(2018, 11, 4), sp).to_rfc3339(),
        "2018-11-04T01:00:00-02:00"
    );
    assert_eq!(
        local_midnight(date(2021, 1, 1), chrono_tz::UTC).to_rfc3339(),
        "2021-01-01T00:00:00+00:00"
    );
}

#[test]
fn slugs_are_percent_encoded_in_links_and_ids() {
    assert_eq!(encode_segment("plain-slug_1.2"), "plain-slug_1.2");
    assert_eq!(encode_segment("a b/é#?"), "a%20b%2F%C3%A9%23%3F");
    let mut issues = issues();
    issues[0].slug = "nov dec".to_owned();
    issues[0].articles[0].slug = "été".to_owned();
    let set = build(&publication(), &issues, 1).unwrap();
    let feed = parse(&set.atom);
    assert_eq!(
        feed.entries[0].id,
        "tag:news.example.org,2021-11-19:nov%20dec/%C3%A9t%C3%A9"
    );
    assert_eq!(
        feed.entries[0].links[0].href,
        "https://news.example.org/gazette/issues/nov%20dec#%C3%A9t%C3%A9"
    );
}

#[test]
fn characters_xml_forbids_are_dropped_from_the_xml_feeds_only() {
    let mut issues = issues();
    let a = &mut issues[0].articles[1];
    a.title = "Form\u{0C}feed and bell\u{07} in a title\u{FFFF}".to_owned();
    a.html = "<p>Page\u{0C}break, ＦＵＬＬＷＩＤＴＨ, tab\tok</p>".to_owned();
    a.authors = vec!["Esc\u{1B}aped Name".to_owned()];
    a.summary = "Null\u{0} summary".to_owned();
    let set = build(&publication(), &issues, 50).unwrap();
    for text in [&set.rss, &set.atom] {
        let feed = feed_rs::parser::parse(text.as_bytes()).unwrap();
        let e = &feed.entries[1];
        assert_eq!(
            e.title.as_ref().unwrap().content,
            "Formfeed and bell in a title"
        );
        assert_eq!(
            e.content.as_ref().unwrap().body.as_deref(),
            Some("<p>Pagebreak, ＦＵＬＬＷＩＤＴＨ, tab\tok</p>")
        );
        assert_eq!(e.authors[0].name.as_deref(), Some("Escaped Name"));
        assert!(!text.contains('\u{0C}') && !text.contains('\u{FFFF}') && !text.contains('\0'));
    }
    // JSON can carry them (escaped): nothing is lost there.
    let json: serde_json::Value = serde_json::from_str(&set.json).unwrap();
    assert_eq!(json["items"][1]["title"], issues[0].articles[1].title);
    assert_eq!(json["items"][1]["summary"], "Null\u{0} summary");
}

#[test]
fn xml_text_filter() {
    assert_eq!(
        xml_text("plain “text” ＡＢ \t\r\n"),
        "plain “text” ＡＢ \t\r\n"
    );
    assert_eq!(
        xml_text("a\u{0}b\u{1F}c\u{FFFE}d\u{FFFD}e\u{10000}"),
        "abcd\u{FFFD}e\u{10000}"
    );
    let long = "x".repeat(200) + "\u{0B}" + &"y".repeat(200);
    assert_eq!(xml_text(&long), "x".repeat(200) + &"y".repeat(200));
}

#[test]
fn rebuilding_unchanged_content_leaves_the_files_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feeds");
    let first = write(&dir, &sample()).unwrap();
    assert_eq!(first.written.len(), 3);
    let again = write(&dir, &sample()).unwrap();
    assert!(!again.changed());
    assert_eq!(again.unchanged.len(), 3);
    // A change to one article changes all three feeds.
    let mut issues = issues();
    issues[1].articles[0].title.push_str(" (corrected)");
    let changed = write(&dir, &build(&publication(), &issues, 50).unwrap()).unwrap();
    assert_eq!(changed.written.len(), 3);
    assert_eq!(
        std::fs::read_to_string(dir.join(ATOM_FILE)).unwrap(),
        build(&publication(), &issues, 50).unwrap().atom
    );
}
