//! The public pages and the sign-up flow, against the real binary
//! (`gazette serve`) over real HTTP, with mail to the file outbox or a real
//! SMTP server (aiosmtpd), and the database read back with Python's sqlite3.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::mail::{BASE, Kind, Mail, link_token, mimecheck, read_mail};
use common::serve::{Opts, Server, StatusCode};
use common::smtp::{SmtpServer, via};
use common::{NO_WAIT, Site, expect_code, stderr, stdout};
use mail_parser::MessageParser;
use serde_json::Value;

/// A site that mails (file outbox unless `mail` says otherwise), with fixture
/// issues always recent enough to mail, and a generous sign-up limit
/// (`http` replaces it).
fn site_with(mail: &str, http: &str) -> Site {
    let http = if http.is_empty() {
        "subscribe_burst = 1000\nsubscribe_per_minute = 1000\n"
    } else {
        http
    };
    Site::mailing(&format!("{NO_WAIT}{mail}\n[http]\n{http}"))
}

/// `site_with("", "")` with Ann and Bob subscribed (active).
fn ann_and_bob() -> Site {
    let site = site_with("", "");
    site.import_subscribers(
        "email,name,status",
        &["ann@example.org,Ann,active", "bob@example.org,Bob,active"],
    );
    site
}

/// SMTP to `port` with two connections at once.
fn smtp(port: u16) -> String {
    format!("concurrency = 2\n{}", via(port, "none"))
}

/// One SQL query on the site's database through Python's sqlite3 (a client
/// of its own), rows as tab-separated lines.
fn sql(site: &Site, query: &str) -> String {
    let script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=10)\nrows = c.execute(sys.argv[2]).fetchall()\nc.commit()\nfor r in rows: print('\\t'.join('' if v is None else str(v) for v in r))\n";
    let out = std::process::Command::new(common::python())
        .args(["-c", script])
        .arg(site.path("gazette.db"))
        .arg(query)
        .output()
        .expect("python sqlite3");
    assert!(out.status.success(), "{query}: {}", stderr(&out));
    stdout(&out)
}

/// Subscriber ids by address (outbox digests are named `SLUG_ID.eml`).
fn ids(site: &Site) -> BTreeMap<String, String> {
    sql(site, "SELECT email, id FROM subscribers")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(e, i)| (e.to_string(), i.to_string()))
        .collect()
}

/// Every subscriber and confirmation row, every column: to show that
/// nothing changed.
fn snapshot(site: &Site) -> String {
    sql(site, "SELECT * FROM subscribers ORDER BY id")
        + "--\n"
        + &sql(site, "SELECT * FROM confirmations ORDER BY id")
}

fn permanent_token(site: &Site, email: &str) -> String {
    sql(
        site,
        &format!("SELECT token FROM subscribers WHERE email = '{email}'"),
    )
    .trim()
    .to_string()
}

/// The `.eml` files in the outbox whose name starts with `prefix`.
fn outbox(site: &Site, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(site.path("outbox"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".eml"))
    });
    files.sort();
    files
}

/// A page must be HTML from the templates: the language, the viewport, the
/// three feed links in <head>, labels for every input, and no script.
#[track_caller]
fn assert_page(what: &str, headers: Option<&ureq::http::HeaderMap>, body: &str) {
    if let Some(h) = headers {
        let ct = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(ct.starts_with("text/html"), "{what}: content-type {ct}");
    }
    assert!(body.starts_with("<!DOCTYPE html>"), "{what}:\n{body}");
    assert!(body.contains("<html lang=\"en\">"), "{what}: lang");
    assert!(
        body.contains("<meta name=\"viewport\" content=\"width=device-width"),
        "{what}: viewport"
    );
    let head = body.split("</head>").next().unwrap_or("");
    for (ty, file) in [
        ("application/rss+xml", "rss.xml"),
        ("application/atom+xml", "atom.xml"),
        ("application/feed+json", "feed.json"),
    ] {
        let link = head
            .lines()
            .find(|l| l.contains("rel=\"alternate\"") && l.contains(&format!("type=\"{ty}\"")))
            .unwrap_or_else(|| panic!("{what}: no {ty} link in <head>:\n{head}"));
        assert!(
            link.contains(&format!("href=\"{BASE}/feeds/{file}\"")) && link.contains("title=\""),
            "{what}: {link}"
        );
    }
    assert!(
        !body.to_ascii_lowercase().contains("<script"),
        "{what}: has a script"
    );
    assert!(body.contains("<h1"), "{what}: no heading");
    // Every visible input has a label.
    for input in body.split("<input").skip(1) {
        let tag = input.split('>').next().unwrap_or("");
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        let id = tag
            .split("id=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("{what}: input without id: {tag}"));
        assert!(
            body.contains(&format!("<label for=\"{id}\"")),
            "{what}: no label for {id}"
        );
    }
}

/// POST raw bytes with a content type (no cookies: the agent keeps none).
fn post_raw(server: &Server, path: &str, content_type: &str, body: &[u8]) -> (StatusCode, String) {
    let mut r = server
        .agent()
        .post(&server.url(path))
        .header("Content-Type", content_type)
        .send(body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (r.status(), text)
}

/// POST /subscribe from a given local source address (127.0.0.x all loop
/// back on Linux), over a plain socket: (status, Retry-After).
fn subscribe_from(server: &Server, source: &str, email: &str) -> (u16, Option<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let port = server.port;
    let source: std::net::SocketAddr = format!("{source}:0").parse().expect("source address");
    let body = format!("email={}", email.replace('@', "%40"));
    let raw = rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(source).expect("bind the source address");
        let stream = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        let mut stream = stream.into_std().expect("std stream");
        stream.set_nonblocking(false).expect("blocking");
        write!(
            stream,
            "POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).expect("read");
        raw
    });
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let retry = raw
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        });
    (status, retry)
}

/// The confirm page's button: POST to the link, as the browser sends it.
fn press_confirm(server: &Server, token: &str) -> (StatusCode, String) {
    post_raw(
        server,
        &format!("/confirm/{token}"),
        "application/x-www-form-urlencoded",
        b"",
    )
}

/// A request with `method` and extra headers: (status, body).
fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(server.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let sent = if body.is_empty() {
        server.agent().run(req.body(()).expect("request"))
    } else {
        server
            .agent()
            .run(req.body(body.to_string()).expect("request"))
    };
    let mut r = sent.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (r.status(), text)
}

fn run(site: &Site) -> String {
    let out = site.gazette(&["run"]);
    expect_code(&out, 0);
    stdout(&out)
}

#[test]
fn subscribe_confirm_over_real_smtp_and_the_next_issue_arrives() {
    let mail = SmtpServer::start(&[]);
    let site = site_with(&smtp(mail.port), "");
    let server = site.serve();

    let (status, headers, home) = server.get("/");
    assert_eq!(status, StatusCode::OK);
    assert_page("/", Some(&headers), &home);
    assert!(
        home.contains("method=\"post\" action=\"./subscribe\""),
        "{home}"
    );
    assert!(home.contains("name=\"email\"") && home.contains("name=\"name\""));

    let (status, page) = server.post_form(
        "/subscribe",
        &[("email", "Ann@Example.org"), ("name", "Ann Lee")],
    );
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_page("subscribe answer", None, &page);
    // Sent at once: it is there when the answer is.
    let received = mail.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].rcpt, ["Ann@example.org"]);
    let confirmation = mail.messages_dir().join("1.eml");
    mimecheck(std::slice::from_ref(&confirmation), Kind::Personal);
    let m = read_mail(&confirmation);
    assert_eq!(m.content_type, "multipart/alternative");
    assert_eq!(
        m.header("From").as_deref(),
        Some("\"The Test Ledger\" <ledger@example.org>")
    );
    assert!(
        m.header("Message-ID")
            .is_some_and(|id| id.starts_with('<') && id.ends_with("@example.org>"))
    );
    assert!(
        m.header("To").is_some_and(|to| to.contains("Ann Lee")),
        "{:?}",
        m.header("To")
    );
    let token = link_token(&m.text, "confirm").expect("a confirm link in the text part");
    let html = m.html.as_deref().expect("an HTML part");
    assert_eq!(link_token(html, "confirm").as_deref(), Some(token.as_str()));
    assert_eq!(token.len(), 43, "256 bits, URL-safe base64: {token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_ne!(
        token,
        permanent_token(&site, "Ann@example.org"),
        "a token of its own"
    );
    assert_eq!(site.status_of("Ann@example.org"), "pending");

    // Opening the link (as a mail scanner or a link preview does, any
    // number of times, GET or HEAD) shows a page with one button and
    // changes nothing.
    let before = snapshot(&site);
    for _ in 0..2 {
        let (status, headers, page) = server.get(&format!("/confirm/{token}"));
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_page("confirm page", Some(&headers), &page);
        assert!(page.contains("Confirm your subscription"), "{page}");
        assert!(
            page.contains("Ann Lee") && page.contains("Ann@example.org"),
            "{page}"
        );
        assert!(page.contains("<form method=\"post\">"), "{page}");
        assert_eq!(headers["cache-control"], "no-store");
        let (status, _) = request(&server, "HEAD", &format!("/confirm/{token}"), &[], "");
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(snapshot(&site), before, "GET and HEAD change nothing");
    assert_eq!(site.status_of("Ann@example.org"), "pending");

    // The button confirms.
    let (status, page) = press_confirm(&server, &token);
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_page("confirmed", None, &page);
    assert!(page.contains("You are subscribed"));
    let ann = &site.subscribers()["Ann@example.org"];
    assert_eq!(ann["status"], "active");
    assert_eq!(ann["name"], "Ann Lee");
    assert!(ann["confirmed_at"].is_string(), "{ann}");
    // Used once: the link and its button are 404s now.
    let (status, _, _) = server.get(&format!("/confirm/{token}"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = press_confirm(&server, &token);
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The next issue goes to them, while serve keeps running.
    site.add_issue("2026-12-late", "Late December");
    let summary = run(&site);
    assert!(
        summary.contains("Published 2026-12-late to 1 active subscriber"),
        "{summary}"
    );
    // On a timeout, say what the ledger and the server saw: a bare
    // "timed out" under a loaded CI machine tells nobody anything.
    let waited = Instant::now();
    while mail.received().len() < 2 {
        if waited.elapsed() > Duration::from_secs(30) {
            let d = site.gazette(&["deliveries", "2026-12-late"]);
            panic!(
                "timed out: the digest\nrun said: {summary}\nthe server got: {:?}\ndeliveries: {}{}",
                mail.received(),
                stdout(&d),
                String::from_utf8_lossy(&d.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mail.received().len(), 2, "{:?}", mail.received());
    let digest = read_mail(&mail.messages_dir().join("2.eml"));
    assert_eq!(mail.received()[1].rcpt, ["Ann@example.org"]);
    assert!(
        digest
            .header("Subject")
            .is_some_and(|s| s.contains("Late December"))
    );
    let unsubscribe = digest.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(
        unsubscribe.contains(&format!(
            "{BASE}/unsubscribe/{}",
            permanent_token(&site, "Ann@example.org")
        )),
        "{unsubscribe}"
    );
    assert!(
        !unsubscribe.contains(&token),
        "the confirmation token is not the permanent one"
    );
}

#[test]
fn the_answer_to_subscribe_never_tells_who_is_on_the_list() {
    let site = site_with("", "");
    site.import_subscribers(
        "email,name,status",
        &[
            "active@example.org,Act,active",
            "pending@example.org,Pen,pending",
            "left@example.org,Left,unsubscribed",
            "dead@example.org,Dead,bounced",
        ],
    );
    let server = site.serve();
    let before = site.subscribers();
    let answer = |email: &str| {
        let r = server
            .agent()
            .post(&server.url("/subscribe"))
            .send_form([("email", email), ("name", "Someone")])
            .expect("POST /subscribe");
        let (parts, mut body) = r.into_parts();
        let mut headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        headers.sort();
        (
            parts.status,
            headers,
            body.read_to_string().unwrap_or_default(),
        )
    };
    let new = answer("new@example.org");
    assert_eq!(new.0, StatusCode::OK);
    for email in [
        "active@example.org",
        "ACTIVE@example.org",
        "pending@example.org",
        "left@example.org",
        "dead@example.org",
    ] {
        let other = answer(email);
        assert_eq!(other.0, new.0, "{email}: status");
        assert_eq!(other.2, new.2, "{email}: body");
        assert_eq!(other.1, new.1, "{email}: headers");
    }
    // Known addresses keep their status until a link is used.
    let after = site.subscribers();
    for email in [
        "active@example.org",
        "pending@example.org",
        "left@example.org",
        "dead@example.org",
    ] {
        assert_eq!(after[email]["status"], before[email]["status"], "{email}");
        assert_eq!(after[email]["name"], before[email]["name"], "{email}");
    }
    assert_eq!(after["new@example.org"]["status"], "pending");

    // Each got one mail at once: a confirmation, except the active address,
    // which is told it is subscribed already (with its settings link).
    let mails: Vec<Mail> = outbox(&site, "signup-")
        .iter()
        .map(|p| read_mail(p))
        .collect();
    assert_eq!(mails.len(), 6);
    mimecheck(&outbox(&site, "signup-"), Kind::Personal);
    let to = |m: &Mail| m.header("To").unwrap_or_default().to_ascii_lowercase();
    for m in &mails {
        let confirm = link_token(&m.text, "confirm");
        if to(m).contains("active@example.org") {
            assert_eq!(confirm, None, "no confirmation for an active address");
            let prefs = link_token(&m.text, "preferences").expect("a settings link");
            assert_eq!(prefs, permanent_token(&site, "active@example.org"));
        } else {
            assert!(confirm.is_some(), "{}", m.text);
        }
    }
    // An unsubscribed address that confirms is active again, with the new name.
    let left = mails
        .iter()
        .find(|m| to(m).contains("left@"))
        .expect("mail to left@");
    let token = link_token(&left.text, "confirm").unwrap_or_default();
    let (status, _) = press_confirm(&server, &token);
    assert_eq!(status, StatusCode::OK);
    let left = &site.subscribers()["left@example.org"];
    assert_eq!(
        (left["status"].as_str(), left["name"].as_str()),
        (Some("active"), Some("Someone"))
    );
    assert!(left["unsubscribed_at"].is_null());
}

#[test]
fn an_expired_confirmation_link_is_404_and_changes_nothing() {
    let site = site_with("", "");
    let server = site.serve();
    let (status, _) = server.post_form("/subscribe", &[("email", "ann@example.org"), ("name", "")]);
    assert_eq!(status, StatusCode::OK);
    let first = outbox(&site, "signup-");
    assert_eq!(first.len(), 1);
    let token = link_token(&read_mail(&first[0]).text, "confirm").expect("link");
    // Seven days have passed (the clock in the database, not a sleep).
    let expires = sql(&site, "SELECT expires_at FROM confirmations");
    assert_eq!(expires.lines().count(), 1, "{expires}");
    sql(
        &site,
        "UPDATE confirmations SET expires_at = '2026-01-01T00:00:00Z'",
    );
    let before = snapshot(&site);
    let (status, headers, page) = server.get(&format!("/confirm/{token}"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_page("expired link", Some(&headers), &page);
    assert!(page.contains("expired"), "{page}");
    let (status, page) = press_confirm(&server, &token);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("expired"), "{page}");
    assert_eq!(snapshot(&site), before);
    assert_eq!(site.status_of("ann@example.org"), "pending");

    // A fresh request gives a fresh link that works.
    server.post_form("/subscribe", &[("email", "ann@example.org"), ("name", "")]);
    let fresh = outbox(&site, "signup-")
        .into_iter()
        .find(|p| !first.contains(p))
        .expect("a second mail");
    let token2 = link_token(&read_mail(&fresh).text, "confirm").expect("link");
    assert_ne!(token2, token);
    let (status, _) = press_confirm(&server, &token2);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site.status_of("ann@example.org"), "active");

    // The link `subscribers add` prints is the same kind, and works too.
    let out = site.gazette(&["--json", "subscribers", "add", "bob@example.org"]);
    expect_code(&out, 0);
    let added: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let url = added["confirm_url"]
        .as_str()
        .expect("confirm_url")
        .to_string();
    let path = url.strip_prefix(BASE).expect("under base_url");
    assert_ne!(
        path.rsplit('/').next(),
        Some(permanent_token(&site, "bob@example.org").as_str())
    );
    let (status, _, _) = server.get(path);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site.status_of("bob@example.org"), "pending");
    let (status, _) = post_raw(&server, path, "application/x-www-form-urlencoded", b"");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site.status_of("bob@example.org"), "active");
}

#[test]
fn unknown_or_tampered_tokens_get_404_everywhere_and_change_nothing() {
    let site = ann_and_bob();
    let server = site.serve();
    server.post_form("/subscribe", &[("email", "cy@example.org"), ("name", "Cy")]);
    let confirm =
        link_token(&read_mail(&outbox(&site, "signup-")[0]).text, "confirm").expect("link");
    let ann = permanent_token(&site, "ann@example.org");
    let flip = |t: &str, at: usize| {
        let mut b = t.as_bytes().to_vec();
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap_or_default()
    };
    let before = snapshot(&site);
    let mut bad = vec![
        flip(&ann, 0),
        flip(&ann, 20),
        ann[..42].to_string(),
        format!("{ann}A"),
        "x".repeat(43),
        "not-a-token".to_string(),
        format!("{}%2F", &ann[..40]),
        format!("{}..", &ann[..41]),
    ];
    // The other kind of token, in the wrong place.
    for (path, wrong) in [("unsubscribe", &confirm), ("preferences", &confirm)] {
        bad.push(format!("{path}:{wrong}"));
    }
    bad.push(format!("confirm:{ann}"));
    for token in &bad {
        let (only, token) = match token.split_once(':') {
            Some((p, t)) => (Some(p), t),
            None => (None, token.as_str()),
        };
        let paths: Vec<&str> = match only {
            Some(p) => vec![p],
            None => vec!["confirm", "unsubscribe", "preferences"],
        };
        for p in paths {
            let path = format!("/{p}/{token}");
            let (status, headers, page) = server.get(&path);
            assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}");
            assert_page(&format!("GET {path}"), Some(&headers), &page);
            let (status, page) = post_raw(
                &server,
                &path,
                "application/x-www-form-urlencoded",
                b"List-Unsubscribe=One-Click&name=Mallory&format=text",
            );
            assert_eq!(status, StatusCode::NOT_FOUND, "POST {path}");
            assert_page(&format!("POST {path}"), None, &page);
        }
    }
    assert_eq!(snapshot(&site), before, "nothing changed");
    assert_eq!(site.status_of("cy@example.org"), "pending");
}

#[test]
fn one_click_from_a_real_digest_unsubscribes_that_subscriber_only() {
    let site = ann_and_bob();
    // The start cycle mails the fixture issues.
    let server = site.serve();
    let ids = ids(&site);
    let digest = site.path(&format!(
        "outbox/2026-winter_{}.eml",
        ids["ann@example.org"]
    ));
    // Ready means the start cycle finished; if that cycle failed, say why.
    assert!(
        digest.exists(),
        "no digest after the start cycle; serve's log:\n{}",
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
    let m = read_mail(&digest);
    assert_eq!(
        m.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let header = m.header("List-Unsubscribe").expect("List-Unsubscribe");
    let url = header
        .split(['<', '>'])
        .find(|u| u.starts_with("https://"))
        .expect("an https URI");
    let path = url.strip_prefix(BASE).expect("under base_url").to_string();

    // The page first: one button, posting to the same URL.
    let (status, headers, page) = server.get(&path);
    assert_eq!(status, StatusCode::OK);
    assert_page("unsubscribe page", Some(&headers), &page);
    assert!(
        page.contains("<form method=\"post\">") && page.contains("<button"),
        "{page}"
    );
    assert_eq!(
        site.status_of("ann@example.org"),
        "active",
        "a GET changes nothing"
    );

    // What a mail provider sends (RFC 8058): no cookie, no CSRF token.
    let (status, page) = post_raw(
        &server,
        &path,
        "application/x-www-form-urlencoded",
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_page("unsubscribed", None, &page);
    let list = site.subscribers();
    assert_eq!(list["ann@example.org"]["status"], "unsubscribed");
    let at = list["ann@example.org"]["unsubscribed_at"].clone();
    assert!(at.is_string());
    assert_eq!(list["bob@example.org"]["status"], "active");
    // Again: harmless.
    let (status, _) = post_raw(
        &server,
        &path,
        "application/x-www-form-urlencoded",
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site.subscribers()["ann@example.org"]["unsubscribed_at"], at);

    site.add_issue("2026-12-late", "Late December");
    let summary = run(&site);
    assert!(
        summary.contains("Published 2026-12-late to 1 active subscriber"),
        "{summary}"
    );
    assert!(
        site.path(&format!(
            "outbox/2026-12-late_{}.eml",
            ids["bob@example.org"]
        ))
        .is_file()
    );
    assert!(
        !site
            .path(&format!(
                "outbox/2026-12-late_{}.eml",
                ids["ann@example.org"]
            ))
            .exists()
    );
}

#[test]
fn preferences_change_the_name_and_the_next_digest_is_plain_text() {
    let site = ann_and_bob();
    let server = site.serve();
    let token = permanent_token(&site, "ann@example.org");
    let path = format!("/preferences/{token}");
    let (status, headers, page) = server.get(&path);
    assert_eq!(status, StatusCode::OK);
    assert_page("preferences", Some(&headers), &page);
    assert!(page.contains("value=\"Ann\""), "{page}");
    assert!(page.contains("name=\"format\" value=\"html\" checked"));

    let (status, page) =
        server.post_form(&path, &[("name", "Ann Lee-Ó Briain"), ("format", "text")]);
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_page("preferences saved", None, &page);
    assert!(
        page.contains("saved") && page.contains("value=\"Ann Lee-Ó Briain\""),
        "{page}"
    );
    assert!(page.contains("name=\"format\" value=\"text\" checked"));
    assert_eq!(
        site.subscribers()["ann@example.org"]["name"],
        "Ann Lee-Ó Briain"
    );

    // Bad values are refused and change nothing.
    let before = snapshot(&site);
    let long = "x".repeat(201);
    for form in [
        vec![("name", "Ann\r\nBcc: all@example.org")],
        vec![("format", "pdf")],
        vec![("name", long.as_str())],
    ] {
        let (status, page) = server.post_form(&path, &form);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_page("refused preferences", None, &page);
    }
    let big = format!("format=text&name={}", "x".repeat(70 * 1024));
    let (status, page) = post_raw(
        &server,
        &path,
        "application/x-www-form-urlencoded",
        big.as_bytes(),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_page("413", None, &page);
    assert_eq!(snapshot(&site), before);

    site.add_issue("2026-12-late", "Late December");
    run(&site);
    let ids = ids(&site);
    let ann = site.path(&format!(
        "outbox/2026-12-late_{}.eml",
        ids["ann@example.org"]
    ));
    let m = read_mail(&ann);
    assert_eq!(
        m.content_type,
        "text/plain",
        "{}",
        String::from_utf8_lossy(&m.raw)
    );
    assert_eq!(m.parts, 1);
    assert!(m.html.is_none());
    assert!(
        m.text.contains("Dear Ann Lee-Ó Briain,") && m.text.contains("The quay reopened"),
        "{}",
        m.text
    );
    let to = m.header("To").expect("To");
    assert!(
        to.ends_with("<ann@example.org>") && to.len() > "<ann@example.org>".len(),
        "{to}"
    );
    let parsed = MessageParser::default().parse(&m.raw).expect("parse");
    assert_eq!(
        parsed.to().and_then(|a| a.first()).and_then(|a| a.name()),
        Some("Ann Lee-Ó Briain")
    );
    for h in [
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
        "Message-ID",
    ] {
        assert!(m.header(h).is_some(), "{h} missing");
    }
    mimecheck(&[ann], Kind::Bulk);
    // The other subscriber still gets both parts.
    let bob = read_mail(&site.path(&format!(
        "outbox/2026-12-late_{}.eml",
        ids["bob@example.org"]
    )));
    assert_eq!(bob.content_type, "multipart/alternative");
    assert!(bob.html.is_some());
}

#[test]
fn bad_input_gets_html_errors_and_creates_nobody() {
    let site = site_with("", "");
    let server = site.serve();
    for (email, name) in [
        ("ann@example.org\r\nBcc: all@example.org", "Ann"),
        ("ann@example.org\n", "Ann"),
        ("ann@example.org", "Ann\r\nBcc: all@example.org"),
        ("ann@example.org", "Ann\nLee"),
        ("ann@example.org", "Ann\tLee"),
        ("ann@example.org", "Ann\u{0}"),
        ("ann\u{7f}@example.org", ""),
    ] {
        let (status, page) = server.post_form("/subscribe", &[("email", email), ("name", name)]);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email:?} {name:?}");
        assert_page("control characters", None, &page);
    }
    for email in [
        "",
        "not-an-address",
        "ann@",
        "ann@localhost",
        "a b@example.org",
    ] {
        let (status, page) = server.post_form("/subscribe", &[("email", email), ("name", "")]);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email:?}");
        assert_page("invalid address", None, &page);
        assert!(page.contains("not a valid email address"), "{page}");
        // The form comes back with what was typed.
        assert!(page.contains("name=\"email\""));
    }
    // Oversized, with and without a length up front.
    let big = format!("email=ann%40example.org&name={}", "x".repeat(70 * 1024));
    let (status, page) = post_raw(
        &server,
        "/subscribe",
        "application/x-www-form-urlencoded",
        big.as_bytes(),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_page("413", None, &page);
    let prefs = format!("/preferences/{}", "A".repeat(43));
    let (status, _) = post_raw(
        &server,
        &prefs,
        "application/x-www-form-urlencoded",
        big.as_bytes(),
    );
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unknown link is 404 whatever the body"
    );
    assert!(site.subscribers().is_empty(), "nobody was created");
    assert!(outbox(&site, "signup-").is_empty(), "nothing was mailed");

    // Other errors are pages too.
    let (status, headers, page) = server.get("/no/such/page");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_page("404", Some(&headers), &page);
    let (status, headers, page) = server.get("/issues/no-such-issue");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_page("unknown issue", Some(&headers), &page);
    let (status, headers, page) = server.get("/subscribe");
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_page("405", Some(&headers), &page);
}

#[test]
fn sign_ups_are_limited_per_client_address() {
    let site = site_with("", "subscribe_burst = 3\nsubscribe_per_minute = 1\n");
    let server = site.serve_with(Opts::default());
    for i in 0..3 {
        let (status, _) = subscribe_from(&server, "127.0.0.1", &format!("r{i}@example.org"));
        assert_eq!(status, 200, "request {i} of the burst");
    }
    let (status, retry) = subscribe_from(&server, "127.0.0.1", "r3@example.org");
    assert_eq!(status, 429);
    let retry: u64 = retry
        .and_then(|r| r.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let (status, page) =
        server.post_form("/subscribe", &[("email", "r4@example.org"), ("name", "")]);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_page("429", None, &page);
    // Another client address is not affected.
    let (status, _) = subscribe_from(&server, "127.0.0.2", "other@example.org");
    assert_eq!(status, 200);
    let list = site.subscribers();
    assert!(list.contains_key("other@example.org") && !list.contains_key("r3@example.org"));
    assert_eq!(list.len(), 4);
}

#[test]
fn the_archive_and_the_web_version_of_each_issue() {
    let site = site_with("", "");
    site.import_subscribers("email,name,status", &["ann@example.org,Ann,active"]);
    let server = site.serve();
    let (status, headers, home) = server.get("/");
    assert_eq!(status, StatusCode::OK);
    assert_page("/", Some(&headers), &home);
    let winter = home
        .find("href=\"./issues/2026-winter\"")
        .expect("winter linked");
    let autumn = home
        .find("href=\"./issues/2026-autumn\"")
        .expect("autumn linked");
    assert!(winter < autumn, "newest first");
    assert!(home.contains("Winter 2026") && home.contains("20 November 2026"));

    let (status, headers, page) = server.get("/issues/2026-winter");
    assert_eq!(status, StatusCode::OK);
    assert_page("issue", Some(&headers), &page);
    assert!(page.contains("<title>Winter 2026 | The Test Ledger</title>"));
    assert!(page.contains("Harbour cranes return") && page.contains("id=\"harbour-cranes\""));
    // The same content as the digest, without the reader's parts.
    assert!(
        !page.contains("Dear ") && !page.contains("unsubscribe/"),
        "{page}"
    );
    let digest = read_mail(&site.path("outbox/2026-winter_1.eml"));
    assert!(
        digest
            .html
            .as_deref()
            .is_some_and(|h| h.contains("Harbour cranes return"))
    );
    assert!(
        page.contains("action=\"../subscribe\""),
        "a subscribe form on the issue page"
    );

    // New content shows once a cycle has recorded it.
    site.write(
        "content/2026-winter/harbour-cranes.txt",
        &common::HARBOUR_TXT.replace("Harbour cranes return", "Harbour cranes are back"),
    );
    let (_, _, again) = server.get("/issues/2026-winter");
    assert!(
        again.contains("Harbour cranes return"),
        "until the cycle records the change"
    );
    run(&site);
    let (_, _, after) = server.get("/issues/2026-winter");
    assert!(after.contains("Harbour cranes are back"), "{after}");

    for bad in [
        "/issues/..%2Fconfig.toml",
        "/issues/.hidden",
        "/issues/2026-WINTER",
    ] {
        let (status, _, _) = server.get(bad);
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[test]
fn a_broken_page_template_is_named_with_its_line() {
    let site = site_with("", "");
    site.write(
        "templates/archive.html",
        "{% extends \"page.html\" %}\n{% block main %}\n{% for x in %}\n{% endblock %}\n",
    );
    let out = site.gazette(&["check"]);
    expect_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{}:3",
            site.path("templates/archive.html").display()
        )),
        "{text}"
    );
    // serve refuses to start (and must not hang here if it did start).
    let (status, err) = serve_until_it_exits(&site);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("templates/archive.html:3"), "{err}");
}

/// Start `serve` and wait for it to exit; panics if it is still running
/// after 20 s (it started when it should have refused).
fn serve_until_it_exits(site: &Site) -> (std::process::ExitStatus, String) {
    let port = common::smtp::free_port();
    let mut child = site
        .command(&["serve"])
        .env("GAZETTE_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with a template that check refuses");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// `check` and `serve` apply one set of template rules: a digest that
/// compiles but uses an undefined value (here a typo) is refused by both,
/// with the file, the line and the value, instead of `serve` starting and
/// `/issues/SLUG` answering 500.
#[test]
fn serve_refuses_a_digest_template_that_check_refuses() {
    let site = site_with("", "");
    let digest = include_str!("../templates/digest.html");
    assert!(digest.contains("<h1>{{ issue.title }}</h1>"));
    site.write(
        "templates/digest.html",
        &digest.replace("<h1>{{ issue.title }}</h1>", "<h1>{{ issue.titel }}</h1>"),
    );
    let line = digest
        .lines()
        .position(|l| l.contains("<h1>{{ issue.title }}</h1>"))
        .unwrap()
        + 1;
    let want = format!(
        "{}:{line}: undefined value: `issue.titel` is undefined",
        site.path("templates/digest.html").display()
    );
    let out = site.gazette(&["check"]);
    expect_code(&out, 1);
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));
    let (status, err) = serve_until_it_exits(&site);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&want), "{err}");
}

#[test]
fn an_erased_person_who_signs_up_again_and_confirms_is_on_the_list_again() {
    let site = site_with("", "");
    site.import_subscribers("email,name,status", &["ann@example.org,Ann,active"]);
    expect_code(
        &site.gazette(&["subscribers", "erase", "ann@example.org"]),
        0,
    );
    // The admin tools refuse the address now.
    let refused = site.gazette(&["subscribers", "add", "ann@example.org", "--confirmed"]);
    expect_code(&refused, 1);
    assert!(stderr(&refused).contains("erased"), "{}", stderr(&refused));

    // The person comes back through the form and confirms: fresh consent.
    let server = site.serve();
    let (status, _) = server.post_form(
        "/subscribe",
        &[("email", "ann@example.org"), ("name", "Ann")],
    );
    assert_eq!(status, StatusCode::OK);
    let mails = outbox(&site, "signup-");
    assert_eq!(mails.len(), 1, "{mails:?}");
    let token = link_token(&read_mail(&mails[0]).text, "confirm").expect("link");
    assert_eq!(site.status_of("ann@example.org"), "pending");
    let (status, _) = press_confirm(&server, &token);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site.status_of("ann@example.org"), "active");
    assert_eq!(sql(&site, "SELECT count(*) FROM suppressions").trim(), "0");
    // ... and the admin tools see an ordinary subscriber again.
    let again = site.gazette(&["subscribers", "add", "ann@example.org"]);
    expect_code(&again, 0);
    assert!(
        stdout(&again).contains("already on the list"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_refused_sign_up_mail_is_logged_without_the_address() {
    // Servers quote the address in their refusals ("550 5.1.1 <x>: no such
    // user"); the log keeps the reply, not whom it was for.
    let mail = SmtpServer::start(&["--bounce-rcpt", "Nobody"]);
    let site = site_with(&smtp(mail.port), "");
    let server = site.serve();
    let (status, _) = server.post_form(
        "/subscribe",
        &[("email", "Nobody.Here@example.org"), ("name", "")],
    );
    assert_eq!(status, StatusCode::OK);
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("sign-up mail not accepted"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        line.contains("550") && line.contains("no such user"),
        "{line}"
    );
    assert!(
        !log.to_ascii_lowercase().contains("nobody.here@example.org"),
        "{log}"
    );
}

/// The confirmation link can be copied from the raw `.eml`: the parts go
/// 7bit when they are ASCII with short enough lines, so the link is whole on
/// one line (quoted-printable cut it at 76 characters, `=` and all), and the
/// message still passes the MIME checks.
#[test]
fn the_confirmation_link_is_whole_on_one_line_of_the_raw_message() {
    let site = site_with("", "");
    let server = site.serve();
    let (status, _) = server.post_form(
        "/subscribe",
        &[("email", "ann@example.org"), ("name", "Ann")],
    );
    assert_eq!(status, StatusCode::OK);
    let files = outbox(&site, "signup-");
    assert_eq!(files.len(), 1);
    mimecheck(&files, Kind::Personal);
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    let token = link_token(&read_mail(&files[0]).text, "confirm").expect("a confirm link");
    let url = format!("{BASE}/confirm/{token}");
    assert!(
        url.len() > 76,
        "the link must be longer than a QP line: {url}"
    );
    assert!(
        raw.lines().any(|l| l.contains(&url)),
        "{url} not whole in:\n{raw}"
    );
    assert!(raw.contains("Content-Transfer-Encoding: 7bit"), "{raw}");
}

#[test]
fn forms_posted_from_another_site_are_refused_one_click_is_not() {
    let site = site_with("", "");
    site.import_subscribers("email,name,status", &["ann@example.org,Ann,active"]);
    let server = site.serve();
    let form = "application/x-www-form-urlencoded";
    let own = server.base.clone();
    let before = snapshot(&site);

    // Another site's page makes the reader's browser post the form.
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let (status, page) = request(
            &server,
            "POST",
            "/subscribe",
            &[("Origin", origin), ("Content-Type", form)],
            "email=victim%40example.org&name=",
        );
        assert_eq!(status, StatusCode::FORBIDDEN, "Origin: {origin}\n{page}");
        assert_page("403", None, &page);
        assert!(page.contains("another site"), "{page}");
    }
    assert!(outbox(&site, "signup-").is_empty(), "nothing was mailed");
    assert_eq!(snapshot(&site), before, "nothing changed");

    // The site's own pages: at base_url's origin (behind a proxy), or at the
    // address the request came to; and plain clients, with no Origin.
    for (i, origin) in [Some("https://news.example.org"), Some(own.as_str()), None]
        .into_iter()
        .enumerate()
    {
        let mut headers = vec![("Content-Type", form)];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        let (status, page) = request(
            &server,
            "POST",
            "/subscribe",
            &headers,
            &format!("email=r{i}%40example.org&name="),
        );
        assert_eq!(status, StatusCode::OK, "Origin: {origin:?}\n{page}");
    }
    assert_eq!(outbox(&site, "signup-").len(), 3);

    // The confirm button and the preferences form check it too.
    let token = link_token(&read_mail(&outbox(&site, "signup-")[0]).text, "confirm").expect("link");
    let evil = [("Origin", "https://evil.example"), ("Content-Type", form)];
    let (status, _) = request(&server, "POST", &format!("/confirm/{token}"), &evil, "");
    assert_eq!(status, StatusCode::FORBIDDEN);
    let ann = permanent_token(&site, "ann@example.org");
    let (status, _) = request(
        &server,
        "POST",
        &format!("/preferences/{ann}"),
        &evil,
        "name=Mallory&format=text",
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(site.status_of("r0@example.org"), "pending");
    assert_eq!(site.subscribers()["ann@example.org"]["name"], "Ann");

    // RFC 8058 one-click comes from the mail provider, with a foreign
    // Origin or none: it still unsubscribes (the token is the secret).
    let (status, page) = request(
        &server,
        "POST",
        &format!("/unsubscribe/{ann}"),
        &evil,
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(site.status_of("ann@example.org"), "unsubscribed");

    // Pages send a referrer policy under which the browser's own-site
    // POSTs carry their real Origin (not `null`).
    let (_, headers, _) = server.get("/");
    assert_eq!(headers["referrer-policy"], "same-origin");
}

/// POST /subscribe from 127.0.0.1 with an X-Forwarded-For: the status.
fn subscribe_forwarded(server: &Server, forwarded: &str, email: &str) -> StatusCode {
    let (status, _) = request(
        server,
        "POST",
        "/subscribe",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-For", forwarded),
        ],
        &format!("email={}", email.replace('@', "%40")),
    );
    status
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_sign_up_limit() {
    let limits = "subscribe_burst = 2\nsubscribe_per_minute = 1\n";
    let site = site_with(
        "",
        &format!("{limits}trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n"),
    );
    let server = site.serve();
    for client in ["203.0.113.7", "203.0.113.8"] {
        for i in 0..2 {
            let status = subscribe_forwarded(&server, client, &format!("{client}-{i}@example.org"));
            assert_eq!(status, StatusCode::OK, "{client} request {i}");
        }
        let status = subscribe_forwarded(&server, client, &format!("{client}-x@example.org"));
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "{client} over its limit"
        );
    }
    // What a client writes left of what the proxy appended is not believed.
    let status = subscribe_forwarded(&server, "198.51.100.1, 203.0.113.7", "spoof@example.org");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Trusted hops are skipped.
    let status = subscribe_forwarded(&server, "203.0.113.9, 10.1.2.3", "hop@example.org");
    assert_eq!(status, StatusCode::OK);
    drop(server);

    // Without the setting the header is ignored: it cannot get a client
    // past its limit.
    let site = site_with("", limits);
    let server = site.serve();
    for (i, client) in ["203.0.113.7", "203.0.113.8", "203.0.113.9"]
        .iter()
        .enumerate()
    {
        let status = subscribe_forwarded(&server, client, &format!("n{i}@example.org"));
        let want = if i < 2 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, want, "request {i}, X-Forwarded-For {client}");
    }
}

/// nginx on a free port as a reverse proxy in front of `server`, passing
/// `Host` and appending the client to `X-Forwarded-For`, as a deployment
/// would. Stopped when dropped.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstream: u16) -> Nginx {
        let bin = common::tool("nginx", "nginx-light");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = common::smtp::free_port();
        let d = dir.path().display();
        // The workers run as `nobody` when started as root: the directory
        // must be theirs to use.
        let mut mode = std::fs::metadata(dir.path()).expect("dir").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o777);
        std::fs::set_permissions(dir.path(), mode).expect("chmod");
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://127.0.0.1:{upstream};\n      proxy_set_header Host $host:$server_port;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(nginx._dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST /subscribe through nginx from a local source address, with extra
/// header lines: the status.
fn subscribe_via(port: u16, source: &str, email: &str, extra: &str) -> u16 {
    let socket = std::net::SocketAddr::new(source.parse().expect("source"), 0);
    let s = connect_from(socket, port);
    let mut stream = s;
    let body = format!("email={}", email.replace('@', "%40"));
    write!(
        stream,
        "POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A blocking connection to 127.0.0.1:`port` from `source`.
fn connect_from(source: std::net::SocketAddr, port: u16) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(source).expect("bind the source address");
        let stream = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        let stream = stream.into_std().expect("std stream");
        stream.set_nonblocking(false).expect("blocking");
        stream
    })
}

#[test]
fn behind_a_real_nginx_readers_have_their_own_limits_and_the_forms_work() {
    let site = site_with(
        "",
        "subscribe_burst = 1\nsubscribe_per_minute = 1\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let server = site.serve();
    let nginx = Nginx::start(server.port);
    // Two readers (127.0.0.2 and 127.0.0.3 loop back too): one sign-up
    // each at once, whatever the other did.
    for reader in ["127.0.0.2", "127.0.0.3"] {
        assert_eq!(
            subscribe_via(nginx.port, reader, &format!("a-{reader}@example.org"), ""),
            200
        );
        assert_eq!(
            subscribe_via(nginx.port, reader, &format!("b-{reader}@example.org"), ""),
            429,
            "{reader}: over its own limit"
        );
    }
    // A forged X-Forwarded-For does not help: nginx appends the real peer.
    assert_eq!(
        subscribe_via(
            nginx.port,
            "127.0.0.2",
            "c@example.org",
            "X-Forwarded-For: 198.51.100.9\r\n"
        ),
        429
    );
    // The browser's own Origin, as it sees the site through the proxy,
    // passes; another site's does not.
    let own = format!("Origin: http://127.0.0.1:{}\r\n", nginx.port);
    assert_eq!(
        subscribe_via(nginx.port, "127.0.0.4", "d@example.org", &own),
        200
    );
    assert_eq!(
        subscribe_via(
            nginx.port,
            "127.0.0.5",
            "e@example.org",
            "Origin: https://evil.example\r\n"
        ),
        403
    );
    // The log names the forwarded client, not the proxy.
    let log = server.log_text();
    assert!(log.contains("client=127.0.0.3"), "{log}");
}
