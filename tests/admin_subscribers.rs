//! The console's subscriber pages against the real binary: search (any
//! case, beyond ASCII), keyset pages, a subscriber's page and history,
//! add / edit / unsubscribe / erase, the import with its bad rows named by
//! line and reason, and the export.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::admin::{ADMIN, AdminClient, PASSWORD};
use common::serve::{Server, StatusCode};
use common::{Site, expect_code, stdout};

fn site_with_admin() -> Site {
    let site = Site::new();
    let out = site.add_admin(ADMIN, PASSWORD);
    expect_code(&out, 0);
    site
}

/// Every `(id, address)` row of a list page, in order.
fn rows(page: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let marker = "<th scope=\"row\"><a href=\"/admin/subscribers/";
    let mut rest = page;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let id_end = rest.find('"').unwrap();
        let id: i64 = rest[..id_end].parse().unwrap();
        let text = &rest[rest.find('>').unwrap() + 1..];
        let email = &text[..text.find("</a>").unwrap()];
        out.push((id, email.to_string()));
    }
    out
}

fn emails(page: &str) -> Vec<String> {
    rows(page).into_iter().map(|(_, e)| e).collect()
}

/// The "Next page" link of a list page (HTML-unescaped), if any.
fn next_link(page: &str) -> Option<String> {
    let at = page.find("\" rel=\"next\"")?;
    let start = page[..at].rfind("href=\"")? + "href=\"".len();
    Some(page[start..at].replace("&amp;", "&"))
}

fn search(c: &AdminClient<'_>, query: &str) -> Vec<String> {
    let a = c.get(&format!("/admin/subscribers?{query}"));
    assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.body);
    emails(&a.body)
}

#[test]
fn the_list_searches_any_case_beyond_ascii_and_pages_by_keyset() {
    let site = site_with_admin();
    let mut rows_in: Vec<String> = (0..120)
        .map(|i| {
            let status = if i % 4 == 0 { "pending" } else { "active" };
            format!("reader{i:03}@example.org,Reader {i},{status}")
        })
        .collect();
    rows_in.extend([
        "emile@example.org,Émile Zola,active".to_string(),
        "oster@example.net,Kari Øster,bounced".to_string(),
        "ivan@example.com,Иван Петров,unsubscribed".to_string(),
        "nikos@example.gr,Νίκος Παπαδόπουλος,active".to_string(),
        "quote@example.org,\"Say \"\"hi\"\" <b>now</b> 100%\",active".to_string(),
    ]);
    site.import_subscribers("email,name,status", &rows_in);
    let server = site.serve();
    let c = AdminClient::sign_in(&server, ADMIN, PASSWORD);

    let first = c.get("/admin/subscribers");
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(first.body.contains("125 subscribers"), "{}", first.body);
    assert_eq!(emails(&first.body).len(), 50);
    assert_eq!(emails(&first.body)[0], "reader000@example.org");
    let timing = first
        .headers
        .get("server-timing")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(timing.starts_with("app;dur="), "{timing}");
    // Every page by its "Next page" link: no row lost or repeated.
    let mut seen = Vec::new();
    let mut page = first.body.clone();
    let mut pages = 1;
    loop {
        seen.extend(rows(&page));
        let Some(next) = next_link(&page) else { break };
        assert!(next.starts_with("/admin/subscribers?after="), "{next}");
        let a = c.get(&next);
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body.contains("First page"), "a later page links back");
        page = a.body;
        pages += 1;
    }
    assert_eq!(pages, 3);
    let ids: BTreeSet<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!((seen.len(), ids.len()), (125, 125));

    // Search: address or name, any case, Unicode, literally.
    assert_eq!(search(&c, "q=%C3%89MILE"), vec!["emile@example.org"]); // ÉMILE
    assert_eq!(search(&c, "q=%C3%B8ster"), vec!["oster@example.net"]); // øster
    assert_eq!(
        search(&c, "q=%D0%9F%D0%95%D0%A2%D0%A0"),
        vec!["ivan@example.com"]
    ); // ПЕТР
    assert_eq!(search(&c, "q=%CE%A0%CE%91%CE%A0"), vec!["nikos@example.gr"]); // ΠΑΠ
    assert_eq!(search(&c, "q=%C3%98"), vec!["oster@example.net"]); // Ø: a short needle
    assert_eq!(search(&c, "q=%22hi%22"), vec!["quote@example.org"]); // "hi"
    assert_eq!(search(&c, "q=%25"), vec!["quote@example.org"]); // %
    assert_eq!(search(&c, "q=EXAMPLE.GR"), vec!["nikos@example.gr"]);
    // Search and status together, paged with both kept in the link.
    let a = c.get("/admin/subscribers?q=READER+1&status=pending");
    let found = emails(&a.body);
    assert_eq!(found.len(), 7, "Reader 12, 16, 100..116 step 4: {found:?}");
    assert!(
        a.body.contains("7 matches with status pending"),
        "{}",
        a.body
    );
    let a = c.get("/admin/subscribers?q=reader&status=active");
    assert_eq!(emails(&a.body).len(), 50);
    let next = next_link(&a.body).unwrap();
    assert!(
        next.contains("q=reader") && next.contains("status=active"),
        "{next}"
    );
    let rest = c.get(&next);
    assert_eq!(emails(&rest.body).len(), 40);
    // The name is escaped.
    let a = c.get("/admin/subscribers?q=quote");
    assert!(
        a.body.contains("&lt;b&gt;now&lt;&#x2f;b&gt;") || a.body.contains("&lt;b&gt;now&lt;/b&gt;"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("<b>now</b>"));
    // Bad parameters are a 400 naming them.
    let a = c.get("/admin/subscribers?status=gone");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("status"), "{}", a.body);
    let a = c.get("/admin/subscribers?after=x");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // No session: sign in first.
    let anon = AdminClient::anonymous(&server);
    let a = anon.get("/admin/subscribers?q=emile");
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(!a.body.contains("emile"));
}

fn audit_lines(site: &Site) -> Vec<(String, Option<String>, Option<String>)> {
    site.with_db(async |store| {
        sqlx::query_as("SELECT action, target, detail FROM audit_log ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
    })
}

fn id_from_location(a: &common::admin::Answer) -> i64 {
    let loc = a.location().unwrap();
    let rest = loc.strip_prefix("/admin/subscribers/").unwrap();
    rest[..rest.find('?').unwrap()].parse().unwrap()
}

#[test]
fn add_edit_unsubscribe_and_erase_with_history_and_audit() {
    let site = site_with_admin();
    let server = site.serve();
    let c = AdminClient::sign_in(&server, ADMIN, PASSWORD);

    // The form, then a bad address: shown again with the message by the field.
    let form = c.get("/admin/subscribers/new");
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"csrf\""));
    let a = c.post(
        "/admin/subscribers/new",
        &[
            ("email", "ann@example"),
            ("name", "Ann"),
            ("status", "active"),
        ],
    );
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body.contains("aria-describedby=\"email-error\""),
        "{}",
        a.body
    );
    assert!(a.body.contains("id=\"email-error\""));
    assert!(
        a.body.contains("value=\"ann@example\""),
        "the input is kept"
    );
    // Without the token: 403, nothing added.
    let a = c.post_plain(
        "/admin/subscribers/new",
        &[("email", "ann@example.org"), ("status", "active")],
    );
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Added.
    let a = c.post(
        "/admin/subscribers/new",
        &[
            ("email", "Ann.Lee@Example.org"),
            ("name", "Ann <Lee>"),
            ("status", "pending"),
        ],
    );
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let id = id_from_location(&a);
    assert!(a.location().unwrap().ends_with("?notice=added"));
    let page = c.get(&format!("/admin/subscribers/{id}?notice=added"));
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("<h1>Ann.Lee@example.org</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Ann &lt;Lee&gt;"));
    assert!(page.body.contains("The subscriber was added."));
    assert!(page.body.contains("No change since they signed up"));
    // The same address again, any case: already there.
    let a = c.post(
        "/admin/subscribers/new",
        &[("email", "ann.lee@EXAMPLE.org"), ("status", "active")],
    );
    assert_eq!(
        a.location(),
        Some(format!("/admin/subscribers/{id}?notice=exists").as_str())
    );

    // Edit: name, status and format; then the page shows the status change.
    let a = c.post(
        &format!("/admin/subscribers/{id}"),
        &[
            ("name", "Ann Lee"),
            ("status", "active"),
            ("format", "text"),
        ],
    );
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = c.get(&format!("/admin/subscribers/{id}"));
    assert!(page.body.contains("plain text only"), "{}", page.body);
    assert!(
        page.body.contains("<td>pending</td><td>active</td>"),
        "{}",
        page.body
    );
    // A bad status is refused next to its field.
    let a = c.post(
        &format!("/admin/subscribers/{id}"),
        &[
            ("name", "Ann Lee"),
            ("status", "asleep"),
            ("format", "text"),
        ],
    );
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("id=\"status-error\""), "{}", a.body);
    // Unsubscribe.
    let a = c.post(&format!("/admin/subscribers/{id}/unsubscribe"), &[]);
    assert_eq!(
        a.location(),
        Some(format!("/admin/subscribers/{id}?notice=unsubscribed").as_str())
    );
    let page = c.get(&format!("/admin/subscribers/{id}"));
    assert!(
        page.body.contains("<td>active</td><td>unsubscribed</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Unsubscribed</dt>"));
    // A page left open from before the unsubscribe (it showed "active")
    // saves a new name: the status the admin left alone is not written back.
    let a = c.post(
        &format!("/admin/subscribers/{id}"),
        &[
            ("name", "Ann B. Lee"),
            ("status", "active"),
            ("format", "text"),
            ("was_name", "Ann Lee"),
            ("was_status", "active"),
            ("was_format", "text"),
        ],
    );
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = c.get(&format!("/admin/subscribers/{id}"));
    assert!(page.body.contains("Ann B. Lee"), "{}", page.body);
    assert!(
        page.body
            .contains("<span class=\"badge status-unsubscribed\">unsubscribed</span>"),
        "{}",
        page.body
    );
    // The form carries what it showed.
    assert!(
        page.body
            .contains("name=\"was_status\" value=\"unsubscribed\""),
        "{}",
        page.body
    );

    // Erase: the confirmation says what happens, changes nothing.
    let confirm = c.get(&format!("/admin/subscribers/{id}/erase"));
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.body.contains("cannot be undone"),
        "{}",
        confirm.body
    );
    assert_eq!(
        c.get(&format!("/admin/subscribers/{id}")).status,
        StatusCode::OK
    );
    let a = c.post_plain(&format!("/admin/subscribers/{id}/erase"), &[]);
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no token, no erasure");
    let a = c.post(&format!("/admin/subscribers/{id}/erase"), &[]);
    assert_eq!(a.location(), Some("/admin/subscribers?notice=erased"));
    let list = c.get("/admin/subscribers?notice=erased");
    assert!(
        list.body.contains("The subscriber was erased"),
        "{}",
        list.body
    );
    assert_eq!(
        c.get(&format!("/admin/subscribers/{id}")).status,
        StatusCode::NOT_FOUND
    );
    assert!(search(&c, "q=ann.lee").is_empty());
    assert!(search(&c, "q=Lee").is_empty());
    // Never again through the console.
    let a = c.post(
        "/admin/subscribers/new",
        &[("email", "ANN.LEE@example.org"), ("status", "active")],
    );
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("erased at the person"), "{}", a.body);

    // Every change audited, by id, never by address or name.
    let lines = audit_lines(&site);
    let actions: Vec<&str> = lines
        .iter()
        .map(|(a, _, _)| a.as_str())
        .filter(|a| a.starts_with("subscriber"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "subscriber.add",
            "subscriber.edit",
            "subscriber.unsubscribe",
            "subscriber.edit",
            "subscriber.erase"
        ]
    );
    let target = format!("subscriber {id}");
    for (action, t, detail) in &lines {
        let all = format!("{action} {t:?} {detail:?}").to_lowercase();
        assert!(!all.contains("ann"), "{all}");
        if action.starts_with("subscriber.") {
            assert_eq!(t.as_deref(), Some(target.as_str()));
        }
    }
}

/// Wait for the import job's page to say it is over.
fn finished_job(c: &AdminClient<'_>, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let json = c.get(&format!("{path}?format=json"));
        assert_eq!(json.status, StatusCode::OK, "{}", json.body);
        let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        if v["state"] == "done" || v["state"] == "failed" {
            let page = c.get(path);
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                !page.body.contains("http-equiv=\"refresh\""),
                "over: no reload"
            );
            return page.body;
        }
        assert!(Instant::now() < deadline, "the import did not finish: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn upload(c: &AdminClient<'_>, name: &str, csv: &str) -> String {
    let a = c.post_file("/admin/subscribers/import", &[], name, csv.as_bytes());
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let loc = a.location().unwrap().to_string();
    assert!(loc.starts_with("/admin/subscribers/import/"), "{loc}");
    loc
}

#[test]
fn import_names_bad_rows_by_line_and_reason_and_export_is_the_cli_export() {
    let site = site_with_admin();
    let server: Server = site.serve();
    let c = AdminClient::sign_in(&server, ADMIN, PASSWORD);
    let form = c.get("/admin/subscribers/import");
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    assert!(form.body.contains("name=\"file\""));

    let csv = "email,name,status\n\
               ann@example.org,Ann,active\n\
               bob@example,Bob,active\n\
               zoë@example.net,Zoë Álvarez,active\n\
               cat@example.org,Cat,asleep\n\
               ann@example.org,Ann again,active\n\
               dan@example.org,<script>alert(1)</script>,pending\n";
    let job = upload(&c, "list.csv", csv);
    let page = finished_job(&c, &job);
    assert!(page.contains("2 added"), "{page}");
    // Each bad row: its line and the reason.
    for (line, says) in [
        (3, "has no dot"),
        (4, "zoë@example.net"),
        (5, "asleep"),
        (6, "duplicate of line 2"),
    ] {
        let cell = format!("<th scope=\"row\">{line}</th><td>");
        let at = page
            .find(&cell)
            .unwrap_or_else(|| panic!("line {line}: {page}"));
        let reason = &page[at + cell.len()..];
        let reason = &reason[..reason.find("</td>").unwrap()];
        assert!(reason.contains(says), "line {line}: {reason}");
    }
    assert!(!page.contains("<script>alert(1)</script>"));
    // The job's page needs a session; a made-up job is a 404.
    assert_eq!(
        AdminClient::anonymous(&server).get(&job).status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        c.get("/admin/subscribers/import/0123456789abcdef0123456789abcdef")
            .status,
        StatusCode::NOT_FOUND
    );
    // A file that cannot be read at all: the job says why, nothing imported.
    let job = upload(&c, "bad.csv", "address,name\nx@example.org,X\n");
    let page = finished_job(&c, &job);
    assert!(page.contains("Nothing was imported: line 1"), "{page}");
    // Without the token: 403, nothing imported.
    let a = c.post_plain("/admin/subscribers/import", &[]);
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // Larger than one chunk: progress to the end, every row in.
    let mut big = String::from("email,name\n");
    for i in 0..3000 {
        big.push_str(&format!("r{i}@example.net,Ödön {i}\n"));
    }
    let job = upload(&c, "big.csv", &big);
    let page = finished_job(&c, &job);
    assert!(page.contains("3000 added"), "{page}");

    // Export: the CLI's bytes.
    let a = c.get("/admin/subscribers/export");
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let cli = site.gazette(&["subscribers", "export"]);
    expect_code(&cli, 0);
    assert_eq!(a.body, stdout(&cli));
    assert_eq!(a.body.lines().count(), 1 + 3002);
    let actions: Vec<String> = audit_lines(&site)
        .into_iter()
        .map(|(a, _, _)| a)
        .filter(|a| a.starts_with("subscribers."))
        .collect();
    assert_eq!(
        actions,
        vec![
            "subscribers.import",
            "subscribers.import",
            "subscribers.import",
            "subscribers.export"
        ]
    );
}
