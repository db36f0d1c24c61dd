//! The admin API (`/api/v1`) against the real binary: the token, every
//! route, JSON errors, import/export, erasure, cycles.

mod common;

use common::Site;
use common::serve::{Opts, Server, StatusCode};
use serde_json::{Value, json};
use ureq::http::{HeaderMap, Request};

/// An answer: status, headers, body text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.body))
    }

    /// The `error` message of a JSON error answer with `status`.
    #[track_caller]
    fn error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/json",
            "errors are JSON: {}",
            self.body
        );
        let v = self.json();
        let msg = v["error"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty(), "an error message: {}", self.body);
        msg
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    /// The server's own token.
    Good,
    /// No Authorization header at all.
    Missing,
    /// This header value as it is.
    Header(&'a str),
}

/// Any request to `/api/v1{path}`, with full control of the header and body.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    auth: Auth<'_>,
    body: Option<(&str, &[u8])>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(server.url(&format!("/api/v1{path}")));
    let good = server.token.as_ref().map(|t| format!("Bearer {t}"));
    match auth {
        Auth::Good => {
            if let Some(g) = &good {
                req = req.header("Authorization", g);
            }
        }
        Auth::Missing => {}
        Auth::Header(h) => req = req.header("Authorization", h),
    }
    let result = match body {
        Some((content_type, bytes)) => server.agent().run(
            req.header("Content-Type", content_type)
                .body(bytes.to_vec())
                .expect("request"),
        ),
        None => server.agent().run(req.body(()).expect("request")),
    };
    let mut r = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    Answer {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn get(server: &Server, path: &str) -> Answer {
    call(server, "GET", path, Auth::Good, None)
}

/// An authenticated request with a body of `content_type`.
fn send(server: &Server, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
    call(server, method, path, Auth::Good, Some((content_type, body)))
}

fn delete(server: &Server, path: &str) -> Answer {
    call(server, "DELETE", path, Auth::Good, None)
}

fn send_json(server: &Server, method: &str, path: &str, body: Value) -> Answer {
    let text = body.to_string();
    call(
        server,
        method,
        path,
        Auth::Good,
        Some(("application/json", text.as_bytes())),
    )
}

fn import(server: &Server, csv: &str) -> Answer {
    send(
        server,
        "POST",
        "/subscribers/import",
        "text/csv",
        csv.as_bytes(),
    )
}

/// A new issue, "2026-extra" (2026-11-26, one short article), for the next
/// cycle to find.
fn add_extra_issue(site: &Site) {
    site.write(
        "content/2026-extra/issue.toml",
        "title = \"Extra 2026\"\ndate = 2026-11-26\n",
    );
    site.write(
        "content/2026-extra/news.md",
        "+++\ntitle = \"News\"\ndate = 2026-11-26\n+++\n\nFresh.\n",
    );
}

fn export_cli(site: &Site) -> Vec<u8> {
    let out = site.gazette(&["subscribers", "export"]);
    common::expect_code(&out, 0);
    out.stdout
}

fn emails(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["email"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A body: (content type, text).
type Body = Option<(&'static str, &'static str)>;

/// Every route with a request that would change something if it got
/// through (the ids and slugs exist).
const ROUTES: &[(&str, &str, Body)] = &[
    ("GET", "/subscribers", None),
    ("GET", "/subscribers?status=active&q=ann", None),
    (
        "POST",
        "/subscribers",
        Some(("application/json", r#"{"email": "intruder@example.org"}"#)),
    ),
    ("GET", "/subscribers/1", None),
    (
        "PATCH",
        "/subscribers/1",
        Some(("application/json", r#"{"status": "unsubscribed"}"#)),
    ),
    ("DELETE", "/subscribers/1", None),
    (
        "POST",
        "/subscribers/import",
        Some(("text/csv", "email\nintruder@example.org\n")),
    ),
    ("GET", "/subscribers/export", None),
    ("GET", "/issues", None),
    ("GET", "/issues/2026-winter/deliveries", None),
    ("POST", "/cycle", None),
    // Not routes: auth comes first all the same.
    ("GET", "/no-such-route", None),
    ("GET", "", None),
    ("PUT", "/subscribers/1", Some(("application/json", "{}"))),
];

#[test]
fn every_route_wants_the_token_and_changes_nothing_without_it() {
    let site = Site::new();
    let server = site.serve();
    let token = server.token.clone().expect("a token");
    let a = import(&server, "email,name\nann@example.org,Ann\n");
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let before = export_cli(&site);
    let cycles = server.metric("gazette_cycles_total");

    let same_length: String = token
        .chars()
        .map(|c| if c == 'a' { 'b' } else { 'a' })
        .collect();
    assert_eq!(same_length.len(), token.len());
    let same = format!("Bearer {same_length}");
    let shorter = format!("Bearer {}", &token[..token.len() - 1]);
    let longer = format!("Bearer {token}x");
    let basic = format!("Basic {token}");
    let wrong = [
        Auth::Missing,
        Auth::Header(""),
        Auth::Header("Bearer"),
        Auth::Header(&same),
        Auth::Header(&shorter),
        Auth::Header(&longer),
        Auth::Header("Bearer x"),
        Auth::Header(&basic),
        Auth::Header(&token),
    ];
    for (method, path, body) in ROUTES {
        for &auth in &wrong {
            let a = call(
                &server,
                method,
                path,
                auth,
                body.map(|(t, b)| (t, b.as_bytes())),
            );
            let msg = a.error(StatusCode::UNAUTHORIZED);
            assert!(msg.contains("admin token"), "{method} {path}: {msg}");
            assert!(
                a.headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"),
                "{method} {path}"
            );
        }
    }
    assert_eq!(export_cli(&site), before, "nothing changed");
    assert_eq!(
        server.metric("gazette_cycles_total"),
        cycles,
        "no cycle ran"
    );
    // And the right token does get through.
    assert_eq!(
        get(&server, "/subscribers/1").json()["email"],
        "ann@example.org"
    );
}

#[test]
fn with_no_token_configured_the_api_does_not_exist() {
    let site = Site::new();
    let server = site.serve_with(Opts {
        token: false,
        ..Opts::default()
    });
    for (method, path, body) in ROUTES {
        for auth in [
            Auth::Missing,
            Auth::Header("Bearer "),
            Auth::Header("Bearer anything"),
        ] {
            let a = call(
                &server,
                method,
                path,
                auth,
                body.map(|(t, b)| (t, b.as_bytes())),
            );
            assert_eq!(
                a.error(StatusCode::NOT_FOUND),
                "not found",
                "{method} {path}"
            );
            assert!(a.headers.get("www-authenticate").is_none());
        }
    }
    let out = site.gazette(&["subscribers", "list", "--json"]);
    assert_eq!(common::stdout(&out).trim(), "[]", "nothing was added");
}

#[test]
fn add_show_edit_erase_and_json_errors() {
    let site = Site::new();
    let server = site.serve();

    let a = send_json(
        &server,
        "POST",
        "/subscribers",
        json!({"email": " Ann@Example.ORG ", "name": "Ann"}),
    );
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let ann = a.json();
    let id = ann["id"].as_i64().expect("id");
    assert_eq!(
        a.headers["location"].to_str().unwrap(),
        format!("/api/v1/subscribers/{id}")
    );
    assert_eq!(ann["email"], "Ann@example.org");
    assert_eq!(ann["name"], "Ann");
    assert_eq!(ann["status"], "active", "an admin's add is confirmed");
    assert!(ann["confirmed_at"].is_string());
    assert!(ann["bounced_at"].is_null());
    assert!(ann.get("token").is_none(), "the token stays secret");
    let shown = get(&server, &format!("/subscribers/{id}"));
    assert_eq!(shown.json(), ann);
    assert_eq!(shown.headers["cache-control"], "no-store");

    let pending = send_json(
        &server,
        "POST",
        "/subscribers",
        json!({"email": "bob@example.org", "status": "PENDING"}),
    );
    assert_eq!(pending.status, StatusCode::CREATED);
    assert_eq!(pending.json()["status"], "pending");
    assert!(pending.json()["name"].is_null());

    // 409: already there, with the id; nothing changed.
    let a = send_json(
        &server,
        "POST",
        "/subscribers",
        json!({"email": "ann@example.org", "name": "Other"}),
    );
    let msg = a.error(StatusCode::CONFLICT);
    assert!(msg.contains("already on the list"), "{msg}");
    assert_eq!(a.json()["id"], id);
    assert_eq!(a.json()["code"], "already_subscribed");
    assert_eq!(
        get(&server, &format!("/subscribers/{id}")).json()["name"],
        "Ann"
    );

    // 422: values that do not parse; 400: JSON that does not; 415: not JSON.
    for (body, says) in [
        (json!({"email": "ann@"}), "invalid address \"ann@\""),
        (
            json!({"email": "x@example.org", "name": "Evil\r\nBcc: all"}),
            "invalid name",
        ),
        (
            json!({"email": "x@example.org", "status": "gone"}),
            "unknown status \"gone\"",
        ),
        (json!({"mail": "x@example.org"}), "unknown field"),
        (json!({"name": "No address"}), "email"),
    ] {
        let msg = send_json(&server, "POST", "/subscribers", body.clone())
            .error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let a = send(
        &server,
        "POST",
        "/subscribers",
        "application/json",
        b"{\"email\": ",
    );
    a.error(StatusCode::BAD_REQUEST);
    let a = send(
        &server,
        "POST",
        "/subscribers",
        "text/plain",
        br#"{"email": "x@example.org"}"#,
    );
    assert!(
        a.error(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .contains("application/json")
    );
    let big = json!({"email": "x@example.org", "name": "n".repeat(100_000)});
    let a = send_json(&server, "POST", "/subscribers", big);
    assert!(a.error(StatusCode::PAYLOAD_TOO_LARGE).contains("limit"));

    // PATCH: name and status together; null removes the name.
    let a = send_json(
        &server,
        "PATCH",
        &format!("/subscribers/{id}"),
        json!({"name": "Ann Lee", "status": "unsubscribed"}),
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let v = a.json();
    assert_eq!(
        (v["name"].as_str(), v["status"].as_str()),
        (Some("Ann Lee"), Some("unsubscribed"))
    );
    assert!(v["unsubscribed_at"].is_string());
    let v = send_json(
        &server,
        "PATCH",
        &format!("/subscribers/{id}"),
        json!({"name": null}),
    )
    .json();
    assert!(v["name"].is_null());
    assert_eq!(
        (&v["status"], &v["format"]),
        (&json!("unsubscribed"), &json!("html"))
    );
    let v = send_json(
        &server,
        "PATCH",
        &format!("/subscribers/{id}"),
        json!({"format": "TEXT"}),
    )
    .json();
    assert_eq!(
        (&v["status"], &v["format"]),
        (&json!("unsubscribed"), &json!("text"))
    );
    let a = send_json(
        &server,
        "PATCH",
        &format!("/subscribers/{id}"),
        json!({"format": "pdf"}),
    );
    assert!(
        a.error(StatusCode::UNPROCESSABLE_ENTITY)
            .contains("unknown format")
    );
    let a = send_json(
        &server,
        "PATCH",
        &format!("/subscribers/{id}"),
        json!({"status": "asleep"}),
    );
    a.error(StatusCode::UNPROCESSABLE_ENTITY);
    let a = send_json(
        &server,
        "PATCH",
        "/subscribers/999",
        json!({"status": "active"}),
    );
    assert_eq!(a.error(StatusCode::NOT_FOUND), "subscriber 999 not found");

    // Paths and methods.
    assert_eq!(
        get(&server, "/subscribers/999").error(StatusCode::NOT_FOUND),
        "subscriber 999 not found"
    );
    assert!(
        get(&server, "/subscribers/abc")
            .error(StatusCode::BAD_REQUEST)
            .contains("not a subscriber id")
    );
    let a = send(
        &server,
        "PUT",
        &format!("/subscribers/{id}"),
        "application/json",
        b"{}",
    );
    let msg = a.error(StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        msg.contains(&format!("PUT is not allowed on /api/v1/subscribers/{id}")),
        "{msg}"
    );
    assert!(a.headers["allow"].to_str().unwrap().contains("DELETE"));
    let a = delete(&server, "/subscribers");
    a.error(StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        get(&server, "/nope")
            .error(StatusCode::NOT_FOUND)
            .contains("no API route")
    );

    // DELETE erases: gone for good.
    let a = delete(&server, &format!("/subscribers/{id}"));
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert!(a.body.is_empty());
    get(&server, &format!("/subscribers/{id}")).error(StatusCode::NOT_FOUND);
    delete(&server, &format!("/subscribers/{id}")).error(StatusCode::NOT_FOUND);
    send_json(
        &server,
        "PATCH",
        &format!("/subscribers/{id}"),
        json!({"status": "active"}),
    )
    .error(StatusCode::NOT_FOUND);
    assert_eq!(
        emails(&get(&server, "/subscribers").json()),
        vec!["bob@example.org"]
    );
}

#[test]
fn lists_page_filter_and_search() {
    let site = Site::new();
    let server = site.serve();
    let mut csv = String::from("email,name,status\n");
    for i in 0..120 {
        let status = if i % 4 == 0 { "pending" } else { "active" };
        csv.push_str(&format!("reader{i:03}@example.org,Reader {i},{status}\n"));
    }
    csv.push_str("zoe@example.net,Zoë Álvarez,bounced\n");
    csv.push_str("under_score@example.net,,unsubscribed\n");
    let a = import(&server, &csv);
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["imported"], 122);

    let p1 = get(&server, "/subscribers").json();
    assert_eq!(
        (
            p1["total"].as_u64(),
            p1["page"].as_u64(),
            p1["per_page"].as_u64()
        ),
        (Some(122), Some(1), Some(50))
    );
    assert_eq!(emails(&p1).len(), 50);
    assert_eq!(emails(&p1)[0], "reader000@example.org", "sign-up order");
    let item = &p1["items"][0];
    for key in [
        "id",
        "email",
        "name",
        "status",
        "format",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
        "bounced_at",
    ] {
        assert!(item.get(key).is_some(), "item has {key}: {item}");
    }
    assert_eq!(
        item.as_object().unwrap().len(),
        9,
        "and nothing else: {item}"
    );
    assert_eq!(p1["total_exact"], true);
    let p2 = get(&server, "/subscribers?page=2").json();
    assert_eq!(emails(&p2)[0], "reader050@example.org");
    // Keyset pages: `after` the `next_after` of the page before.
    let next = p1["next_after"].as_i64().expect("a next page");
    assert_eq!(next, p1["items"][49]["id"].as_i64().unwrap());
    let k2 = get(&server, &format!("/subscribers?after={next}")).json();
    assert_eq!(k2["items"], p2["items"]);
    assert!(k2.get("page").is_none(), "no page number with after: {k2}");
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let p = get(&server, &format!("/subscribers?per_page=40{after}")).json();
        seen.extend(emails(&p));
        match p["next_after"].as_i64() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        emails(&get(&server, "/subscribers?per_page=500").json())
    );
    assert_eq!(seen.len(), 122);
    let p3 = get(&server, "/subscribers?page=3").json();
    assert_eq!(emails(&p3).len(), 22);
    let p4 = get(&server, "/subscribers?page=4").json();
    assert_eq!((emails(&p4).len(), p4["total"].as_u64()), (0, Some(122)));
    let all = get(&server, "/subscribers?per_page=500").json();
    assert_eq!(emails(&all).len(), 122);
    let p = get(&server, "/subscribers?per_page=7&page=3").json();
    assert_eq!(
        emails(&p).first().map(String::as_str),
        Some("reader014@example.org")
    );

    let pending = get(&server, "/subscribers?status=pending&per_page=500").json();
    assert_eq!(pending["total"], 30);
    assert!(
        pending["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "pending")
    );
    let bounced = get(&server, "/subscribers?status=bounced").json();
    assert_eq!(emails(&bounced), vec!["zoe@example.net"]);
    assert!(bounced["items"][0]["bounced_at"].is_string());

    // Search: address or name, any case (Unicode too), wildcards literal.
    assert_eq!(
        emails(&get(&server, "/subscribers?q=%C3%81LVAREZ").json()),
        vec!["zoe@example.net"]
    );
    assert_eq!(
        get(&server, "/subscribers?q=READER%2011").json()["total"],
        11,
        "Reader 11, 110..119"
    );
    assert_eq!(
        get(&server, "/subscribers?q=reader11&status=pending").json()["total"],
        2,
        "112 and 116"
    );
    assert_eq!(
        emails(&get(&server, "/subscribers?q=_").json()),
        vec!["under_score@example.net"]
    );
    assert_eq!(get(&server, "/subscribers?q=%25").json()["total"], 0);

    // Bad queries: 400 with a message.
    for (query, says) in [
        ("status=gone", "unknown status"),
        ("per_page=501", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=2&after=5", "not both"),
        ("after=x", "after"),
    ] {
        let msg = get(&server, &format!("/subscribers?{query}")).error(StatusCode::BAD_REQUEST);
        assert!(msg.contains(says), "{query}: {msg}");
    }
}

#[test]
fn import_reports_bad_rows_and_export_is_the_cli_export() {
    let site = Site::new();
    let server = site.serve();
    let csv = "\u{feff}Email,Name,Status,Source\r\n\
               ann@example.org,Ann,active,web\r\n\
               not-an-address,Nobody,,\r\n\
               bob@example.org,\"Lee, Bob\",pending,\r\n\
               ANN@example.org,Ann again,,\r\n\
               cat@example.org,Cat,sleeping,\r\n\
               \r\n\
               dan@example.org,,unsubscribed,\r\n";
    let a = import(&server, csv);
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let v = a.json();
    assert_eq!(
        (
            v["imported"].as_u64(),
            v["already_subscribed"].as_u64(),
            v["erased"].as_u64()
        ),
        (Some(3), Some(0), Some(0))
    );
    let skipped: Vec<(u64, String)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["line"].as_u64().unwrap(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![3, 5, 6]
    );
    assert!(skipped[0].1.contains("invalid address"), "{skipped:?}");
    assert!(skipped[1].1.contains("duplicate of line 2"), "{skipped:?}");
    assert!(skipped[2].1.contains("bad status"), "{skipped:?}");
    assert_eq!(v["warnings"][0]["line"], 1);
    assert!(
        v["warnings"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Source")
    );

    // Again: everything is already there.
    let v = import(&server, "email\nann@example.org\nBOB@example.org\n").json();
    assert_eq!(
        (v["imported"].as_u64(), v["already_subscribed"].as_u64()),
        (Some(0), Some(2))
    );

    // Whole-file problems: 400 with the line, nothing imported.
    let a = import(&server, "address,name\nx@example.org,X\n");
    let msg = a.error(StatusCode::BAD_REQUEST);
    assert!(
        msg.contains("no `email` column") && msg.contains("nothing was imported"),
        "{msg}"
    );
    assert_eq!(a.json()["line"], 1);
    let a = send(
        &server,
        "POST",
        "/subscribers/import",
        "text/csv",
        b"email\nok@example.org\nbad\xe9@example.org\n",
    );
    assert!(a.error(StatusCode::BAD_REQUEST).contains("not UTF-8"));
    assert_eq!(a.json()["line"], 3);
    let a = send(
        &server,
        "POST",
        "/subscribers/import",
        "application/json",
        b"email\nx@example.org\n",
    );
    assert!(
        a.error(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .contains("text/csv")
    );
    let a = call(&server, "POST", "/subscribers/import", Auth::Good, None);
    a.error(StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Larger than the server's 64 KiB: the import route has its own limit.
    let mut big = String::from("email,name\n");
    for i in 0..4000 {
        big.push_str(&format!("bulk{i:05}@example.org,Bulk Reader Number {i}\n"));
    }
    assert!(big.len() > 128 * 1024);
    let v = import(&server, &big).json();
    assert_eq!(v["imported"], 4000);

    let a = get(&server, "/subscribers/export");
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        a.body.as_bytes(),
        export_cli(&site).as_slice(),
        "same bytes as the CLI"
    );
    assert!(a.body.starts_with("email,name,status\nann@example.org,Ann,active\nbob@example.org,\"Lee, Bob\",pending\ndan@example.org,,unsubscribed\nbulk00000@example.org,"), "{}", &a.body[..200]);
}

/// The bytes of the database and its WAL.
fn database_bytes(site: &Site) -> Vec<u8> {
    let mut all = std::fs::read(site.path("gazette.db")).expect("database");
    all.extend(std::fs::read(site.path("gazette.db-wal")).unwrap_or_default());
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn erasure_forgets_the_person_keeps_the_counts_and_stops_re_imports() {
    let site = Site::new();
    let server = site.serve_with(Opts {
        env: &[("GAZETTE_MAIL_FROM", "The Test Ledger <news@example.org>")],
        ..Opts::default()
    });
    let address = "erasable.person.3141@example.org";
    let name = "Philippa Unforgettable";
    let a = send_json(
        &server,
        "POST",
        "/subscribers",
        json!({"email": address, "name": name}),
    );
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.json()["id"].as_i64().unwrap();
    let a = send_json(
        &server,
        "POST",
        "/subscribers",
        json!({"email": "stays@example.org"}),
    );
    assert_eq!(a.status, StatusCode::CREATED);
    // A renamed subscriber leaves an old copy of the row behind unless
    // freed space is zeroed.
    let a = send_json(
        &server,
        "PATCH",
        &format!("/subscribers/{id}"),
        json!({"name": format!("{name} Sr.")}),
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // An issue goes out to both.
    site.write(
        "content/2026-late/issue.toml",
        "title = \"Late Autumn 2026\"\ndate = 2026-11-27\n",
    );
    site.write(
        "content/2026-late/notes.md",
        "+++\ntitle = \"Notes\"\ndate = 2026-11-27\n+++\n\nText.\n",
    );
    server.cycle();
    let counts = |server: &Server| -> Value {
        let d = get(server, "/issues/2026-late/deliveries").json();
        json!([
            d["issue"]["sent"],
            d["issue"]["failed"],
            d["issue"]["queued"],
            d["issue"]["cancelled"]
        ])
    };
    assert_eq!(counts(&server), json!([2, 0, 0, 0]));
    let issues_before = get(&server, "/issues").json();
    // The test looks at real bytes: the address is there before.
    assert!(contains(&database_bytes(&site), address));
    let log_before = server.log_text().len();

    let a = delete(&server, &format!("/subscribers/{id}"));
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);

    // Gone from the list, search, export; the history is unchanged.
    assert_eq!(
        emails(&get(&server, "/subscribers").json()),
        vec!["stays@example.org"]
    );
    assert_eq!(get(&server, "/subscribers?q=erasable").json()["total"], 0);
    let export = get(&server, "/subscribers/export").body;
    assert_eq!(export, "email,name,status\nstays@example.org,,active\n");
    assert_eq!(counts(&server), json!([2, 0, 0, 0]));
    assert_eq!(
        get(&server, "/issues").json(),
        issues_before,
        "issue counts unchanged"
    );
    let log_after = server.log_text();
    let erasure_log = log_after.get(log_before..).unwrap_or_default();
    assert!(erasure_log.contains("subscriber erased"), "{erasure_log}");
    assert!(
        !erasure_log.contains(address),
        "the log of the erasure names them"
    );

    // And out of the database files, even before the server stops.
    let bytes = database_bytes(&site);
    assert!(
        !contains(&bytes, address),
        "the address is still in the database files"
    );
    assert!(
        !contains(&bytes, name),
        "the name is still in the database files"
    );

    // Never again: not by the API, not by an import of either kind.
    let a = send_json(
        &server,
        "POST",
        "/subscribers",
        json!({"email": address.to_uppercase()}),
    );
    let msg = a.error(StatusCode::CONFLICT);
    assert!(msg.contains("erased at the person's request"), "{msg}");
    assert_eq!(a.json()["code"], "erased");
    let v = import(
        &server,
        &format!(
            "email,name\nnew@example.org,New\n{},Again\n",
            address.to_uppercase()
        ),
    )
    .json();
    assert_eq!(
        (v["imported"].as_u64(), v["erased"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["skipped"][0]["line"], 3);
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("erased at their request"),
        "{v}"
    );
    site.write(
        "again.csv",
        &format!("email\n{address}\nother@example.org\n"),
    );
    let out = site.gazette(&["subscribers", "import", "again.csv"]);
    common::expect_code(&out, 1);
    let err = common::stderr(&out);
    assert!(
        err.contains("again.csv:2: ") && err.contains("erased at their request"),
        "{err}"
    );
    assert!(
        common::stdout(&out).contains("imported 1"),
        "{}",
        common::stdout(&out)
    );
    site.says_on_stderr(&["subscribers", "add", address, "--confirmed"], 1, "erased");
    assert!(!contains(&export_cli(&site), address));

    let (status, _, log) = server.terminate();
    assert!(status.success(), "{log}");
    let bytes = database_bytes(&site);
    assert!(
        !contains(&bytes, address) && !contains(&bytes, name),
        "after the stop"
    );
}

#[test]
fn cli_erase_uses_the_same_rules() {
    let site = Site::new();
    common::expect_code(
        &site.gazette(&[
            "subscribers",
            "add",
            "Gone@example.org",
            "--name",
            "Gone Person",
        ]),
        0,
    );
    common::expect_code(
        &site.gazette(&["subscribers", "add", "kept@example.org"]),
        0,
    );
    site.says(
        &["subscribers", "erase", "GONE@example.org"],
        0,
        "Erased GONE@example.org",
    );
    let list = common::stdout(&site.gazette(&["subscribers", "list"]));
    assert!(!list.to_lowercase().contains("gone"), "{list}");
    assert!(list.contains("kept@example.org"));
    site.says_on_stderr(
        &["subscribers", "erase", "gone@example.org"],
        1,
        "erased already",
    );
    site.says_on_stderr(
        &["subscribers", "erase", "never@example.org"],
        1,
        "not on the list",
    );
    let help = common::stdout(&site.gazette(&["subscribers", "--help"]));
    assert!(help.contains("erase"), "{help}");
}

#[test]
fn cycle_runs_now_and_issues_show_it() {
    let site = Site::new();
    let server = site.serve();
    let issues = get(&server, "/issues").json();
    let slugs: Vec<&str> = issues["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, vec!["2026-winter", "2026-autumn"], "newest first");
    let winter = &issues["items"][0];
    assert_eq!(winter["title"], "Winter 2026");
    assert_eq!(winter["date"], "2026-11-20");
    assert_eq!(winter["articles"], 2);
    assert_eq!(winter["mail_state"], "published");
    assert!(winter["published_at"].is_string());
    assert_eq!(
        winter["deliveries"],
        json!({"queued": 0, "sending": 0, "sent": 0, "failed": 0, "bounced": 0, "cancelled": 0})
    );
    assert_eq!(issues["items"][1]["mail_state"], "skipped");

    add_extra_issue(&site);
    let report = server.cycle();
    assert_eq!(report["new_issues"], json!(["2026-extra"]), "{report}");
    assert_eq!(report["content_changed"], true);
    let issues = get(&server, "/issues").json();
    let extra = &issues["items"][0];
    assert_eq!(
        (extra["slug"].as_str(), extra["mail_state"].as_str()),
        (Some("2026-extra"), Some("published"))
    );
    let d = get(&server, "/issues/2026-extra/deliveries").json();
    assert_eq!(d["issue"]["slug"], "2026-extra");
    assert_eq!(d["problems"], json!([]));
    assert_eq!(
        get(&server, "/issues/no-such-issue/deliveries").error(StatusCode::NOT_FOUND),
        "no issue \"no-such-issue\" recorded"
    );
    // A second cycle with nothing new reports no change.
    assert_eq!(server.cycle()["content_changed"], false);

    // A cycle that cannot run is a 500 that says why.
    std::fs::rename(site.path("content"), site.path("content-away")).expect("move content");
    let a = call(&server, "POST", "/cycle", Auth::Good, None);
    let msg = a.error(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        msg.starts_with("the cycle failed: ") && msg.contains("content"),
        "{msg}"
    );
}

#[test]
fn a_cycle_goes_on_when_the_client_that_asked_for_it_hangs_up() {
    // Mail to the outbox at 4 messages a second: the cycle below takes
    // about 2 s, longer than its client waits.
    let site = Site::mailing("rate_per_second = 4\nconcurrency = 1\n");
    let server = site.serve();
    site.import_subscribers("email,name", &common::readers(12));
    add_extra_issue(&site);
    let impatient: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_millis(500)))
        .build()
        .into();
    let gone = impatient
        .post(&server.url("/api/v1/cycle"))
        .header(
            "Authorization",
            &format!("Bearer {}", server.token.as_deref().unwrap_or_default()),
        )
        .send_empty();
    assert!(gone.is_err(), "the client gave up before the cycle ended");
    // The cycle finishes anyway: every message sent, nothing left
    // `sending`, and the cycle counted.
    let start = std::time::Instant::now();
    loop {
        let d = get(&server, "/issues/2026-extra/deliveries").json();
        if server.metric("gazette_cycle_running") == Some(0.0) && d["issue"]["sent"] == 12 {
            assert_eq!(d["issue"]["sending"], 0, "{d}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the cycle did not finish: {d}\n{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(server.metric("gazette_cycles_total"), Some(2.0));
}
