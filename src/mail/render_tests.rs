use chrono::TimeZone;
use mail_parser::{MessageParser, MimeHeaders};

use super::*;
use crate::config::Config;
use crate::subscribers::{SubscriberEmail, SubscriberName, Token};

const CONFIG: &str = r#"[publication]
title = "The Test Ledger"
base_url = "https://news.example.org/ledger/"
timezone = "Europe/London"

[mail]
from = "The Test Ledger <ledger@news.example.org>"
reply_to = "letters@news.example.org"
"#;

/// A site folder with config.toml (+ `extra` appended) and optional templates.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), format!("{CONFIG}{extra}")).unwrap();
        Site { dir }
    }

    fn template(self, name: &str, text: &str) -> Site {
        let t = self.dir.path().join("templates");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join(name), text).unwrap();
        self
    }

    fn config(&self) -> Config {
        Config::load_with_env(&self.dir.path().join("config.toml"), &[]).unwrap()
    }

    fn renderer(&self) -> Renderer {
        Renderer::load(&self.config()).unwrap()
    }
}

fn issue() -> Issue {
    sample_issue()
}

fn email(s: &str) -> SubscriberEmail {
    SubscriberEmail::from_stored(s).unwrap()
}

/// A real token (43 characters) starting with `label`.
fn token(label: &str) -> Token {
    Token::parse(&format!("{label:A<43}")).unwrap()
}

const ZOE_TOKEN: &str = "tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static ZOE: std::sync::LazyLock<(SubscriberEmail, Option<SubscriberName>, Token)> =
    std::sync::LazyLock::new(|| {
        (
            email("zoe@example.net"),
            SubscriberName::parse("Zoë \"Zed\" O'Brien").unwrap(),
            Token::parse(ZOE_TOKEN).unwrap(),
        )
    });

fn zoe() -> Recipient<'static> {
    Recipient {
        email: &ZOE.0,
        name: ZOE.1.as_ref(),
        token: &ZOE.2,
        tag: None,
    }
}

fn date() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 30, 0).unwrap()
}

fn message(r: &Renderer, issue: &Issue, to: &Recipient<'_>) -> Outgoing {
    r.prepare_at(issue, date()).unwrap().message(to).unwrap()
}

fn head(bytes: &[u8]) -> String {
    let s = String::from_utf8(bytes.to_vec()).unwrap();
    s.split("\r\n\r\n").next().unwrap().to_string()
}

/// (header name, occurrences) in the top-level header block.
fn count(head: &str, name: &str) -> usize {
    format!("\r\n{head}")
        .to_ascii_lowercase()
        .matches(&format!("\r\n{}:", name.to_ascii_lowercase()))
        .count()
}

#[test]
fn the_builtin_digest_has_toc_links_feeds_and_footer() {
    let site = Site::new("");
    let d = site.renderer().prepare_at(&issue(), date()).unwrap();
    assert_eq!(d.subject(), "Sample issue | The Test Ledger");
    let p = d.parts(&zoe()).unwrap();
    let base = "https://news.example.org/ledger/";
    for needle in [
        "<h1",
        "Sample issue",
        "href=\"#first\"",
        "id=\"first\"",
        "href=\"https://news.example.org/ledger/issues/sample-issue#first\"",
        "href=\"https://news.example.org/ledger/issues/sample-issue\"",
        "https://news.example.org/ledger/feeds/atom.xml",
        "https://news.example.org/ledger/feeds/rss.xml",
        "https://news.example.org/ledger/feeds/feed.json",
        "href=\"https://news.example.org/ledger/unsubscribe/tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
        "href=\"https://news.example.org/ledger/preferences/tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
        "zoe@example.net is subscribed",
        "Ana Ruiz and Bo Chen",
        "Harbour Town",
        "20 November 2026",
        "max-width: 640px",
    ] {
        assert!(p.html.contains(needle), "html lacks {needle:?}");
    }
    // CSS is inlined, the <style> block is gone.
    assert!(!p.html.contains("<style"), "{}", p.html);
    assert!(p.html.contains("<img") || !p.html.contains("img {"));
    for needle in [
        "Dear Zoë \"Zed\" O'Brien,",
        "SAMPLE ISSUE",
        &format!("{base}issues/sample-issue#first"),
        &format!("{base}unsubscribe/tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        &format!("{base}preferences/tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        &format!("{base}feeds/atom.xml"),
        "[1]: https://example.org/",
    ] {
        assert!(
            p.text.contains(needle),
            "text lacks {needle:?}:\n{}",
            p.text
        );
    }
    assert!(
        p.text
            .lines()
            .all(|l| l.chars().count() <= 78 || l.contains("https://"))
    );
}

#[test]
fn the_web_version_and_text_have_no_recipient_parts() {
    let d = Site::new("").renderer().prepare(&issue()).unwrap();
    assert!(d.html_web().contains("Sample issue"));
    assert!(d.text().contains("SAMPLE ISSUE"));
    for s in [d.html_web(), d.text()] {
        assert!(!s.contains("unsubscribe"), "{s}");
        assert!(!s.contains("Dear"), "{s}");
        assert!(!s.contains("gz"), "a slot marker leaked: {s}");
    }
}

#[test]
fn without_a_name_the_greeting_is_generic() {
    let d = Site::new("").renderer().prepare(&issue()).unwrap();
    let p = d
        .parts(&Recipient {
            name: None,
            ..zoe()
        })
        .unwrap();
    assert!(p.html.contains("Dear reader,") && p.text.contains("Dear reader,"));
    // A blank name is no name.
    assert_eq!(SubscriberName::parse(" \t").unwrap(), None);
}

#[test]
fn summary_mode_sends_summaries() {
    let site = Site::new("digest = \"summary\"\n");
    let p = site
        .renderer()
        .prepare(&issue())
        .unwrap()
        .parts(&zoe())
        .unwrap();
    assert!(p.html.contains("A sample article for checking templates."));
    assert!(!p.html.contains("No by-line here."), "{}", p.html);
    assert!(p.html.contains("Continue reading on the web"));
    assert!(p.text.contains("Continue reading on the web"));
}

#[test]
fn a_template_in_the_config_folder_overrides_the_builtin() {
    let site = Site::new("").template(
        "digest.txt",
        "{% extends \"layout.txt\" %}{% block body %}CUSTOM {{ issue.title }}{% endblock %}",
    );
    let r = site.renderer();
    let d = r.prepare(&issue()).unwrap();
    assert!(d.text().starts_with("CUSTOM Sample issue"), "{}", d.text());
    // The others are still the built-ins.
    assert!(d.html_web().contains("In this issue"));
    r.check().unwrap();
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let site = Site::new("").template(
        "digest.html",
        "{% extends \"layout.html\" %}\n{% block body %}\n<p>{{ issue.title }</p>\n{% endblock %}\n",
    );
    let e = Renderer::load(&site.config()).unwrap_err();
    let file = site.dir.path().join("templates/digest.html");
    assert_eq!(e.file, file.display().to_string());
    assert_eq!(e.line, Some(3), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3: syntax error", file.display())),
        "{e}"
    );
}

#[test]
fn every_broken_file_is_reported() {
    let site = Site::new("subject = \"{{ issue.title \"\n")
        .template("layout.txt", "{% block body %}\n{% endblock\n")
        .template("style.css", "{% if %}");
    let errors = Renderer::load_all(&site.config()).unwrap_err();
    let files: Vec<_> = errors.iter().map(|e| e.file.clone()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(files[0].ends_with("templates/layout.txt"), "{files:?}");
    assert!(files[1].ends_with("templates/style.css"), "{files:?}");
    assert!(files[2].starts_with("mail.subject in "), "{files:?}");
}

#[test]
fn undefined_variables_are_errors_with_file_and_line() {
    let site = Site::new("").template(
        "digest.txt",
        "{% extends \"layout.txt\" %}\n{% block body %}\nfine\n{{ issue.titel }}\n{% endblock %}\n",
    );
    let r = site.renderer();
    let e = r.prepare(&issue()).unwrap_err().to_string();
    assert!(e.contains("templates/digest.txt:4: undefined value"), "{e}");
    let e = r.check().unwrap_err().to_string();
    assert!(e.contains("templates/digest.txt:4"), "{e}");
}

#[test]
fn an_error_in_the_layout_names_the_layout() {
    let site = Site::new("").template(
        "layout.html",
        "<html>\n<body>\n{% block body %}{% endblock %}\n{{ nonsense }}\n</body></html>\n",
    );
    let e = site.renderer().check().unwrap_err().to_string();
    assert!(
        e.contains("templates/layout.html:4: undefined value"),
        "{e}"
    );
}

#[test]
fn an_unknown_filter_names_the_file_and_line() {
    let site = Site::new("").template(
        "digest.html",
        "{% extends \"layout.html\" %}\n{% block body %}\n\n{{ issue.title | shout }}\n{% endblock %}\n",
    );
    let e = match Renderer::load(&site.config()) {
        Err(e) => e.to_string(),
        Ok(r) => r.check().unwrap_err().to_string(),
    };
    assert!(
        e.contains("templates/digest.html:4") && e.contains("shout"),
        "{e}"
    );
}

#[test]
fn recipient_values_outside_an_if_or_through_a_filter_are_errors() {
    let site = Site::new("").template(
        "digest.txt",
        "{% extends \"layout.txt\" %}{% block body %}Hi {{ recipient.email }}{% endblock %}",
    );
    let e = site.renderer().check().unwrap_err().to_string();
    assert!(e.contains("digest.txt"), "{e}");

    let site = Site::new("").template(
        "digest.txt",
        "{% extends \"layout.txt\" %}{% block body %}{% if recipient %}Hi {{ recipient.email | upper }}{% endif %}{% endblock %}",
    );
    let e = site.renderer().check().unwrap_err().to_string();
    assert!(e.contains("digest.txt") && e.contains("filter"), "{e}");
}

#[test]
fn subject_template_with_non_ascii_round_trips() {
    let site = Site::new("subject = \"Ausgabe «{{ issue.title }}» — {{ publication.title }} ✉\"\n");
    let out = message(&site.renderer(), &issue(), &zoe());
    assert!(out.bytes.is_ascii(), "8-bit bytes in the message");
    let m = MessageParser::default().parse(&out.bytes).unwrap();
    assert_eq!(
        m.subject(),
        Some("Ausgabe «Sample issue» — The Test Ledger ✉")
    );
}

#[test]
fn a_subject_error_names_mail_subject() {
    let site = Site::new("subject = \"{{ issue.nope }}\"\n");
    let e = site.renderer().prepare(&issue()).unwrap_err().to_string();
    assert!(
        e.starts_with("mail.subject in ") && e.contains("undefined"),
        "{e}"
    );
    let site = Site::new("subject = \"{% if false %}x{% endif %}\"\n");
    let e = site.renderer().prepare(&issue()).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn names_with_non_ascii_and_quotes_survive_headers_and_bodies() {
    let r = Site::new("").renderer();
    let d = r.prepare_at(&issue(), date()).unwrap();
    let out = d.message(&zoe()).unwrap();
    let m = MessageParser::default().parse(&out.bytes).unwrap();
    let to = m.to().unwrap().first().unwrap();
    assert_eq!(to.name.as_deref(), Some("Zoë \"Zed\" O'Brien"));
    assert_eq!(to.address.as_deref(), Some("zoe@example.net"));
    assert_eq!(out.to.envelope().unwrap(), "zoe@example.net");
    assert_eq!(out.envelope_from, "ledger@news.example.org");

    let html = m.body_html(0).unwrap().replace("\r\n", "\n");
    let text = m.body_text(0).unwrap().replace("\r\n", "\n");
    let p = d.parts(&zoe()).unwrap();
    assert_eq!(html, p.html);
    assert_eq!(text, p.text);
    assert!(
        html.contains("Dear Zoë &quot;Zed&quot; O&#39;Brien,"),
        "{html}"
    );
    assert!(text.contains("Dear Zoë \"Zed\" O'Brien,"));

    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name.as_deref(), Some("The Test Ledger"));
    let reply = m.reply_to().unwrap().first().unwrap();
    assert_eq!(reply.address.as_deref(), Some("letters@news.example.org"));
    assert_eq!(m.date().unwrap().to_rfc3339(), "2026-11-20T09:30:00Z");
}

#[test]
fn html_in_a_name_is_escaped_and_newlines_cannot_inject_headers() {
    let d = Site::new("").renderer().prepare(&issue()).unwrap();
    // A line break never reaches a name (the type refuses it, stored
    // names included), so no header can be injected through one.
    assert!(SubscriberName::parse("<b>Eve</b>\r\nBcc: victim@example.net").is_err());
    assert!(SubscriberName::from_stored("<b>Eve</b>\r\nBcc: victim@example.net").is_err());
    let (eve, name, t1) = (
        email("eve@example.net"),
        SubscriberName::parse("<b>Eve</b>  Bcc: victim@example.net").unwrap(),
        token("t1"),
    );
    let evil = Recipient {
        email: &eve,
        name: name.as_ref(),
        token: &t1,
        tag: None,
    };
    let out = d.message(&evil).unwrap();
    let h = head(&out.bytes);
    assert_eq!(count(&h, "Bcc"), 0, "{h}");
    let p = d.parts(&evil).unwrap();
    assert!(
        p.html
            .contains("&lt;b&gt;Eve&lt;/b&gt; Bcc: victim@example.net")
    );
    assert!(!p.html.contains("<b>Eve"));
}

#[test]
fn bad_recipients_are_errors_not_panics() {
    let d = Site::new("").renderer().prepare(&issue()).unwrap();
    // What cannot even be a recipient is refused by the types.
    assert!(SubscriberEmail::from_stored("not an address").is_err());
    assert!(SubscriberEmail::from_stored("zoe@exa_mple.net").is_err());
    for bad in ["", "../x", "tok\r\nX: y", "t"] {
        assert!(Token::parse(bad).is_err(), "{bad:?}");
    }
    // Older rows read leniently but without a wire form: the message fails,
    // with the reason.
    let t = token("t");
    for stored in ["zoe@xn--a.example", "zoe@xn--a.xn--a"] {
        let e = email(stored);
        let r = Recipient {
            email: &e,
            name: None,
            token: &t,
            tag: None,
        };
        let err = d.message(&r).unwrap_err().to_string();
        assert!(err.contains("cannot be mailed"), "{stored:?}: {err}");
    }
}

#[test]
fn an_idn_domain_is_written_as_idna_and_the_body_shows_it_as_given() {
    let d = Site::new("").renderer().prepare(&issue()).unwrap();
    let (reader, t) = (email("reader@bücher.example"), token("t"));
    let r = Recipient {
        email: &reader,
        name: None,
        token: &t,
        tag: None,
    };
    let out = d.message(&r).unwrap();
    assert_eq!(out.to.envelope().unwrap(), "reader@xn--bcher-kva.example");
    let h = head(&out.bytes);
    assert!(h.contains("To: reader@xn--bcher-kva.example\r\n"), "{h}");
    assert!(h.is_ascii(), "{h}");
    // A Unicode local part stays as it is (the transport asks for SMTPUTF8).
    let zoe_idn = email("zoë@bücher.example");
    let out = d
        .message(&Recipient {
            email: &zoe_idn,
            ..r
        })
        .unwrap();
    assert_eq!(out.to.envelope().unwrap(), "zoë@xn--bcher-kva.example");
}

#[test]
fn message_id_is_stable_per_issue_and_token() {
    let r = Site::new("").renderer();
    let a = message(&r, &issue(), &zoe());
    let b = message(&r, &issue(), &zoe());
    let c = message(
        &r,
        &issue(),
        &Recipient {
            token: &token("another"),
            ..zoe()
        },
    );
    let mut other = issue();
    other.slug = "other-issue".into();
    let e = message(&r, &other, &zoe());
    assert_eq!(a.message_id, b.message_id);
    assert_ne!(a.message_id, c.message_id);
    assert_ne!(a.message_id, e.message_id);
    assert!(a.message_id.starts_with("<sample-issue."));
    assert!(a.message_id.ends_with("@news.example.org>"));
    assert!(!a.message_id.contains(zoe().token.as_str()));
    let m = MessageParser::default().parse(&a.bytes).unwrap();
    assert_eq!(Some(a.message_id.trim_matches(['<', '>'])), m.message_id());
}

#[test]
fn every_header_is_present_once() {
    let out = message(&Site::new("").renderer(), &issue(), &zoe());
    let h = head(&out.bytes);
    for name in [
        "From",
        "Reply-To",
        "To",
        "Subject",
        "Date",
        "MIME-Version",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Content-Type",
    ] {
        assert_eq!(count(&h, name), 1, "{name} in\n{h}");
    }
    let unfolded = h.replace("\r\n ", " ");
    assert!(
        unfolded.contains("\r\nList-Unsubscribe: <https://news.example.org/ledger/unsubscribe/tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA>, <mailto:ledger+unsubscribe@news.example.org?subject=unsubscribe%20tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA>"),
        "{h}"
    );
    assert!(unfolded.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(unfolded.contains("\r\nList-Id: The Test Ledger <the-test-ledger.news.example.org>"));
    assert!(unfolded.contains("Content-Type: multipart/alternative;"));
    // text/plain comes before text/html
    let s = String::from_utf8(out.bytes.clone()).unwrap();
    let (t, hp) = (
        s.find("Content-Type: text/plain; charset=utf-8"),
        s.find("Content-Type: text/html; charset=utf-8"),
    );
    assert!(t.unwrap() < hp.unwrap());
    // Without reply_to there is no Reply-To.
    let site = Site::new("");
    let mut config = site.config();
    config.mail.reply_to = None;
    let out = message(&Renderer::load(&config).unwrap(), &issue(), &zoe());
    assert_eq!(count(&head(&out.bytes), "Reply-To"), 0);
}

#[test]
fn an_http_site_gets_no_one_click_header() {
    let site = Site::new("");
    let mut config = site.config();
    config.publication.base_url = url::Url::parse("http://localhost:8080/").unwrap();
    let out = message(&Renderer::load(&config).unwrap(), &issue(), &zoe());
    let h = head(&out.bytes);
    assert_eq!(count(&h, "List-Unsubscribe-Post"), 0, "{h}");
    assert!(
        h.contains("List-Unsubscribe: <http://localhost:8080/unsubscribe/tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA>,"),
        "{h}"
    );
}

#[test]
fn a_non_ascii_publication_title_makes_a_decodable_list_id() {
    let site = Site::new("");
    let mut config = site.config();
    config.publication.title =
        "Gazeta Łódzka: «Zoë's» weekly, with a rather long name indeed".into();
    let out = message(&Renderer::load(&config).unwrap(), &issue(), &zoe());
    let h = head(&out.bytes);
    assert!(h.is_ascii());
    // (only a URI in List-Unsubscribe may pass 78: it can't be folded)
    assert!(
        h.split("\r\n").all(|l| l.len() <= 78
            || l.starts_with(" <mailto:")
            || l.starts_with("List-Unsubscribe: <https://")),
        "{h}"
    );
    let m = MessageParser::default().parse(&out.bytes).unwrap();
    let id = m.list_id().as_address().and_then(|a| a.first()).unwrap();
    assert_eq!(id.name.as_deref(), Some(config.publication.title.as_str()));
    assert_eq!(
        id.address.as_deref(),
        Some("gazeta-dzka-zo-s-weekly-with-a-rather-long-name-indeed.news.example.org")
    );
}

#[test]
fn no_line_exceeds_998_octets_even_for_a_huge_word() {
    let mut i = issue();
    let word: String = "abcdéfghij".repeat(500);
    i.articles[0].html = format!("<p>{word}</p><p>{}</p>", "x".repeat(5000));
    i.articles[0].title = "y".repeat(300);
    let d = Site::new("").renderer().prepare(&i).unwrap();
    let out = d.message(&zoe()).unwrap();
    let s = String::from_utf8(out.bytes.clone()).unwrap();
    let (head, body) = s.split_once("\r\n\r\n").unwrap();
    // Bodies: quoted-printable/base64 keep lines within 76.
    for l in body.split("\r\n") {
        assert!(l.len() <= 76, "{} octets: {l}", l.len());
    }
    // Headers fold at spaces; a URI in List-Unsubscribe may pass 78, never 998.
    for l in head.split("\r\n") {
        assert!(l.len() <= 998, "{} octets: {l}", l.len());
    }
    assert!(
        out.bytes
            .windows(2)
            .filter(|w| w[1] == b'\n')
            .all(|w| w[0] == b'\r'),
        "bare LF"
    );
    // and it decodes back to the same bodies
    let m = MessageParser::default().parse(&out.bytes).unwrap();
    assert!(m.body_html(0).unwrap().contains(&word));
    assert!(m.body_text(0).unwrap().contains("abcdéfghij"));
}

#[test]
fn an_article_title_with_script_is_escaped() {
    let mut i = issue();
    i.articles[0].title = "<script>alert('x')</script> & more".into();
    i.title = "Issue <img src=x onerror=alert(1)>".into();
    let d = Site::new("").renderer().prepare(&i).unwrap();
    let p = d.parts(&zoe()).unwrap();
    assert!(!p.html.contains("<script"), "{}", p.html);
    assert!(!p.html.contains("<img src=x"), "{}", p.html);
    assert!(
        p.html
            .contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; more"),
        "{}",
        p.html
    );
    assert!(p.text.contains("<script>alert('x')</script> & more"));
    assert!(!d.html_web().contains("<script"));
}

#[test]
fn without_mail_from_there_is_a_web_version_but_no_message() {
    let site = Site::new("");
    let mut config = site.config();
    config.mail.from = None;
    let r = Renderer::load(&config).unwrap();
    let problem = r.sender_problem().unwrap();
    assert!(matches!(problem, SenderError::NoFrom { .. }), "{problem:?}");
    assert!(problem.to_string().contains("mail.from is not set in"));
    let d = r.prepare(&issue()).unwrap();
    assert!(d.html_web().contains("Sample issue"));
    let e = d.message(&zoe()).unwrap_err().to_string();
    assert!(e.contains("mail.from is not set"), "{e}");
    assert!(matches!(r.check(), Err(RenderError::Sender(_))));
}

#[test]
fn dkim_signs_the_list_headers_relaxed() {
    let site = Site::new("\n[mail.dkim]\nselector = \"gz2026\"\nkey_file = \"keys/dkim.pem\"\n");
    std::fs::create_dir_all(site.dir.path().join("keys")).unwrap();
    super::super::dkim::tests::openssl_key(
        &site.dir.path().join("keys"),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ],
        "dkim.pem",
    );
    let config = site.config();
    let dkim = config.mail.dkim.as_ref().unwrap();
    assert_eq!(dkim.domain, "news.example.org");
    let out = message(&Renderer::load(&config).unwrap(), &issue(), &zoe());
    let h = head(&out.bytes).replace("\r\n ", " ");
    let sig = h
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
        .unwrap_or_else(|| panic!("no signature in\n{h}"));
    for tag in [
        "d=news.example.org",
        "s=gz2026",
        "c=relaxed/relaxed",
        "h=from:subject:to:date:message-id:list-unsubscribe:list-unsubscribe-post",
    ] {
        assert!(
            sig.to_ascii_lowercase().contains(&tag.to_ascii_lowercase()),
            "{tag} not in {sig}"
        );
    }
}

#[test]
fn wrap_keeps_words_and_urls_whole() {
    assert_eq!(wrap("a b c", 3, ""), "a b\nc");
    assert_eq!(wrap("one two", 72, ""), "one two");
    let url = format!("https://example.org/{}", "x".repeat(80));
    assert_eq!(
        wrap(&format!("see {url} now"), 20, ""),
        format!("see\n{url}\nnow")
    );
    assert_eq!(wrap("1. aaa bbb", 6, "   "), "1. aaa\n   bbb");
    assert_eq!(wrap("p1\np2", 72, ""), "p1\np2");
}

#[test]
fn a_plain_text_subscriber_gets_one_text_part_with_the_same_headers() {
    let site = Site::new("");
    let d = site.renderer().prepare_at(&issue(), date()).unwrap();
    let both = d.message_as(&zoe(), MailFormat::Html).unwrap();
    let text = d.message_as(&zoe(), MailFormat::Text).unwrap();
    assert_eq!(text.message_id, both.message_id);
    let multipart = |bytes: &[u8]| {
        head(bytes)
            .to_ascii_lowercase()
            .contains("content-type: multipart/alternative")
    };
    assert!(
        multipart(&d.message(&zoe()).unwrap().bytes),
        "message() is multipart"
    );
    assert!(multipart(&both.bytes) && !multipart(&text.bytes));

    let parsed = MessageParser::default().parse(&text.bytes).unwrap();
    let ct = parsed.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("text", Some("plain")),
        "{}",
        head(&text.bytes)
    );
    assert_eq!(parsed.parts.len(), 1, "one part");
    let body = parsed.body_text(0).unwrap();
    assert!(body.contains("Dear Zoë \"Zed\" O'Brien,"), "{body}");
    assert!(body.contains(
        "https://news.example.org/ledger/unsubscribe/tok_AbC-123AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    ));
    assert!(!String::from_utf8_lossy(&text.bytes).contains("<html"));

    let (h_text, h_both) = (head(&text.bytes), head(&both.bytes));
    for name in [
        "From",
        "To",
        "Subject",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Reply-To",
        "Date",
    ] {
        assert_eq!(count(&h_text, name), 1, "{name} in\n{h_text}");
        assert_eq!(count(&h_both, name), 1, "{name} in\n{h_both}");
    }
    let line = |h: &str, name: &str| {
        h.lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .map(str::to_string)
    };
    for name in [
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Message-ID",
        "To",
    ] {
        assert_eq!(line(&h_text, name), line(&h_both, name), "{name}");
    }
}

#[test]
fn the_web_html_alone_matches_the_prepared_web_version() {
    let r = Site::new("").renderer();
    let web = r.web_html(&issue()).unwrap();
    assert_eq!(web, r.prepare(&issue()).unwrap().html_web());
    assert!(web.contains("id=\"first\""));
}
