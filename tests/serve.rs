//! `gazette serve`: feeds over HTTP, health, metrics, and stopping.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::Site;
use common::serve::StatusCode;

#[test]
fn feeds_are_served_with_validators_and_304s() {
    let site = Site::new();
    let server = site.serve();
    for (path, media) in [
        ("/feeds/rss.xml", "application/rss+xml"),
        ("/feeds/atom.xml", "application/atom+xml"),
        ("/feeds/feed.json", "application/feed+json"),
    ] {
        let file = std::fs::read(site.path(&format!("feeds/{}", &path[7..]))).expect("feed file");
        let r = server.get_bytes(path, &[]);
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert_eq!(h["content-type"], media, "{path}");
        assert!(
            h.get("content-encoding").is_none(),
            "{path}: gzip without asking"
        );
        assert_eq!(r.body(), &file, "{path}: the bytes on disk");
        assert_eq!(h["cache-control"], "public, max-age=300");
        let etag = h["etag"].to_str().unwrap().to_string();
        let modified = h["last-modified"].to_str().unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong ETag: {etag}"
        );

        // Revalidation, both ways.
        let r = server.get_bytes(path, &[("If-None-Match", &etag)]);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path} If-None-Match");
        assert!(r.body().is_empty());
        assert_eq!(r.headers()["etag"], etag.as_str());
        let r = server.get_bytes(path, &[("If-Modified-Since", &modified)]);
        assert_eq!(
            r.status(),
            StatusCode::NOT_MODIFIED,
            "{path} If-Modified-Since"
        );
        // A different tag wins over a matching date.
        let r = server.get_bytes(
            path,
            &[
                ("If-None-Match", "\"other\""),
                ("If-Modified-Since", &modified),
            ],
        );
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{path}: a stale ETag gets the body"
        );
        let r = server.get_bytes(
            path,
            &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        );
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{path}: older date gets the body"
        );

        // gzip when asked, and it decodes to the file.
        let r = server.get_bytes(path, &[("Accept-Encoding", "gzip, deflate")]);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(r.headers()["vary"], "accept-encoding");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&r.body()[..])
            .read_to_end(&mut plain)
            .expect("valid gzip");
        assert_eq!(plain, file, "{path}: gunzipped bytes");
        assert!(r.body().len() < file.len(), "{path}: gzip is smaller");
        let gz_tag = r.headers()["etag"].to_str().unwrap().to_string();
        assert_ne!(gz_tag, etag, "each encoding has its own tag");
        let r = server.get_bytes(
            path,
            &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_tag)],
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }
    let (status, _, _) = server.get("/feeds/nope.xml");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn a_rebuilt_feed_is_served_with_a_new_etag() {
    let site = Site::new();
    let server = site.serve();
    let before = server.get_bytes("/feeds/atom.xml", &[]);
    let tag = before.headers()["etag"].to_str().unwrap().to_string();
    // Rebuilt from another shell while the daemon runs.
    site.write(
        "content/2026-winter/late-news.md",
        "+++\ntitle = \"Late news\"\ndate = 2026-11-21\n+++\n\nJust in.\n",
    );
    let out = site.gazette(&["feeds", "build"]);
    common::expect_code(&out, 0);
    std::thread::sleep(Duration::from_millis(1100));
    let after = server.get_bytes("/feeds/atom.xml", &[("If-None-Match", &tag)]);
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the old tag no longer matches"
    );
    assert!(String::from_utf8_lossy(after.body()).contains("Late news"));
}

#[test]
fn health_and_metrics() {
    let site = Site::new();
    let server = site.serve();
    let (status, _, body) = server.get("/healthz");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.trim(), "ok");
    let (status, headers, body) = server.get("/metrics");
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    // Two issues in the fixture: both recorded; the autumn one is more than
    // 30 days older than its first sighting, so it is skipped for mail.
    assert_eq!(
        server.metric("gazette_issues{mail_state=\"published\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        server.metric("gazette_issues{mail_state=\"skipped\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        server.metric("gazette_subscribers{status=\"active\"}"),
        Some(0.0)
    );
    assert_eq!(server.metric("gazette_cycles_total"), Some(1.0));
    assert_eq!(server.metric("gazette_last_cycle_success"), Some(1.0));
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line.rsplit_once(' ').expect("name value");
        assert!(value.parse::<f64>().is_ok(), "bad sample: {line}");
        assert!(name.starts_with("gazette_"), "{line}");
        let family = name.split('{').next().unwrap();
        assert!(
            body.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}"
        );
    }
}

#[test]
fn sigterm_when_idle_exits_zero_quickly() {
    let site = Site::new();
    let server = site.serve();
    let (status, took, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let site = Site::new();
    let port = common::smtp::free_port();
    let log = site.path("json.log");
    let child = site
        .command(&["--log-format", "json", "serve"])
        .env("GAZETTE_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("GAZETTE_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn");
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("cycle done")
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no cycle logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut messages = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        messages.push(v["message"].as_str().unwrap_or("").to_string());
    }
    assert!(
        messages.iter().any(|m| m == "gazette serving"),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m == "stopped"), "{messages:?}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let site = Site::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap().to_string();
    let out = site.gazette_env(&["serve"], &[("GAZETTE_HTTP_LISTEN", &addr)]);
    common::expect_code(&out, 1);
    let err = common::stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on {addr} (http.listen)")),
        "{err}"
    );
}

/// A scheduled cycle that cannot take the run lock is a failed cycle: an
/// error in the log and in the metrics an alert watches, not a silent
/// return. (A folder where the lock file should be fails even for root.)
#[test]
fn a_cycle_that_cannot_take_the_run_lock_is_a_logged_and_counted_failure() {
    let site = Site::new();
    std::fs::create_dir(site.path("gazette.db.lock")).unwrap();
    let server = site.serve();
    assert_eq!(server.metric("gazette_cycles_total"), Some(1.0));
    assert_eq!(server.metric("gazette_cycle_failures_total"), Some(1.0));
    assert_eq!(server.metric("gazette_last_cycle_success"), Some(0.0));
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("cycle failed"))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(
        line.contains("ERROR")
            && line.contains("cannot take the run lock")
            && line.contains("gazette.db.lock"),
        "{line}"
    );
}

/// A site whose [http] section is `http` (timeouts, the connection cap).
fn site_with_http(http: &str) -> Site {
    let site = Site::new();
    site.write(
        "config.toml",
        &format!("{}\n[http]\n{http}", common::CONFIG),
    );
    site
}

/// Open a connection, send `bytes`, and return how long until the server
/// closed it (reading whatever it answered), and what it answered.
fn until_closed(port: u16, bytes: &[u8], limit: Duration) -> (Duration, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(limit)).expect("read timeout");
    let start = std::time::Instant::now();
    s.write_all(bytes).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (start.elapsed(), String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is the server closing too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (start.elapsed(), String::from_utf8_lossy(&got).into_owned());
            }
            Err(e) => panic!(
                "still open after {:?} ({e}); got {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[test]
fn idle_partial_and_stalled_connections_are_closed_after_their_timeouts() {
    let site = site_with_http("header_timeout = \"2s\"\nbody_timeout = \"2s\"\n");
    let server = site.serve();
    let limit = Duration::from_secs(15);
    // Idle: connected, nothing sent.
    let (took, got) = until_closed(server.port, b"", limit);
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    // Half a request head, then nothing.
    let (took, _) = until_closed(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", limit);
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    // A body announced as 100 bytes, 10 sent: the form cannot be read.
    let (took, got) = until_closed(
        server.port,
        b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a%40",
        limit,
    );
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    // Keep-alive: after an answer, an idle connection is closed too.
    let (took, got) = until_closed(
        server.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        limit,
    );
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // The site still answers, and no subscriber came of the stalled form.
    let (status, _, _) = server.get("/healthz");
    assert_eq!(status, StatusCode::OK);
    assert!(site.subscribers().is_empty());
}

#[test]
fn more_idle_connections_than_the_cap_do_not_stop_the_site() {
    // A long header timeout: only the cap's shedding can make room.
    let site = site_with_http("header_timeout = \"10m\"\nmax_connections = 8\n");
    let server = site.serve();
    let idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect"))
        .collect();
    // Some hold half a request head.
    for s in idle.iter().step_by(2) {
        let mut s = s;
        s.write_all(b"GET / HTTP/1.1\r\n").expect("write");
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = std::time::Instant::now();
    for _ in 0..3 {
        let (status, _, body) = server.get("/healthz");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert!(server.log_text().contains("connection limit reached"));
    drop(idle);
    // And it still stops gracefully.
    let (status, took, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn listen_takes_a_host_name_and_names_the_key_when_it_does_not_resolve() {
    let site = Site::new();
    let server = site.serve_with(common::serve::Opts {
        host: "localhost",
        ..Default::default()
    });
    let (status, _, _) = server.get("/healthz");
    assert_eq!(status, StatusCode::OK);
    assert!(
        server
            .log_text()
            .contains(&format!("addr=127.0.0.1:{}", server.port)),
        "{}",
        server.log_text()
    );
    drop(server);

    let out = site.gazette_env(
        &["serve"],
        &[("GAZETTE_HTTP_LISTEN", "no-such-host.invalid:8080")],
    );
    common::expect_code(&out, 1);
    let err = common::stderr(&out);
    assert!(
        err.contains("cannot resolve no-such-host.invalid:8080 (http.listen)"),
        "{err}"
    );
}

#[test]
fn healthz_is_503_when_the_database_cannot_be_written() {
    let site = Site::new();
    common::expect_code(&site.gazette(&["run"]), 0);
    // The database file read-only for the daemon's user, as after a wrong
    // chown or on a read-only mount. Root writes a file whatever its mode,
    // so as root the daemon runs as `nobody`, who then owns the site.
    let uid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id -u");
    let root = common::stdout(&uid).trim() == "0";
    let prefix: &[&str] = if root {
        let owned = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(site.dir.path())
            .status()
            .expect("chown");
        assert!(owned.success(), "chown the site to nobody");
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
    } else {
        &[]
    };
    let db = site.path("gazette.db");
    let mut mode = std::fs::metadata(&db).expect("database").permissions();
    mode.set_readonly(true);
    std::fs::set_permissions(&db, mode).expect("chmod");
    let server = site.serve_with(common::serve::Opts {
        prefix,
        healthy: false,
        token: false,
        ..Default::default()
    });
    let (status, _, body) = server.get("/healthz");
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{body}\n{}",
        server.log_text()
    );
    assert!(body.contains("read-only"), "{body}");
    assert!(
        server
            .log_text()
            .contains("health check: the database cannot be written"),
        "{}",
        server.log_text()
    );
}

#[test]
fn running_out_of_file_descriptors_does_not_stop_the_accept_loop() {
    // The cap above the process's descriptor limit (a unit without
    // LimitNOFILE): accepts fail with EMFILE before the cap is reached.
    let site = site_with_http("header_timeout = \"10m\"\nmax_connections = 5000\n");
    let server = site.serve_with(common::serve::Opts {
        prefix: &["prlimit", "--nofile=96:96", "--"],
        ..Default::default()
    });
    let idle: Vec<std::net::TcpStream> = (0..150)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).ok())
        .collect();
    assert!(idle.len() > 96, "only {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let (status, _, body) = server.get("/healthz");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let log = server.log_text();
    assert!(
        log.contains("cannot accept a connection; retrying"),
        "{log}"
    );
    drop(idle);
    let (status, took, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
