use std::path::Path;
use std::time::Duration;

use super::*;

const MINIMAL: &str =
    "[publication]\ntitle = \"The Ledger\"\nbase_url = \"https://example.org/paper\"\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/srv/gz/config.toml"), text, &[])
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<_> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::parse(Path::new("/srv/gz/config.toml"), text, &env)
}

fn err(text: &str) -> String {
    parse(text)
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn minimal_config_gets_defaults_and_absolute_paths() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        c.publication.base_url.as_str(),
        "https://example.org/paper/"
    );
    assert_eq!(
        c.publication.url("feeds/atom.xml"),
        "https://example.org/paper/feeds/atom.xml"
    );
    assert_eq!(c.publication.timezone, chrono_tz::UTC);
    assert_eq!(c.content.dir, Path::new("/srv/gz/content"));
    assert_eq!(c.feeds.dir, Path::new("/srv/gz/feeds"));
    assert_eq!(c.feeds.items, 50);
    assert_eq!(c.database.path, Path::new("/srv/gz/gazette.db"));
    assert_eq!(c.schedule.cron, "*/15 * * * *");
    assert_eq!(c.mail.transport, Transport::File);
    assert_eq!(c.mail.outbox, Path::new("/srv/gz/outbox"));
    assert!(c.mail.subject.contains("issue.title"));
    assert_eq!(c.mail.skip_older_than, Duration::from_secs(30 * 86400));
    assert_eq!(c.http.listen, "127.0.0.1:8080");
}

#[test]
fn the_repository_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let c = Config::load_with_env(&path, &[]).unwrap();
    assert!(!c.publication.title.is_empty());
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let e = err(&format!(
        "{MINIMAL}\n[feeds]\nitems = 10\ncolour = \"red\"\n"
    ));
    assert!(e.contains("config.toml:7:"), "{e}");
    assert!(e.contains("colour"), "{e}");
    assert!(e.starts_with("/srv/gz/config.toml"), "{e}");
}

#[test]
fn unknown_section_is_named() {
    let e = err(&format!("{MINIMAL}[feed]\nitems = 10\n"));
    assert!(e.contains("feed") && e.contains("config.toml:4:"), "{e}");
}

#[test]
fn wrong_type_is_named_with_its_line() {
    let e = err(&format!("{MINIMAL}[feeds]\nitems = \"fifty\"\n"));
    assert!(e.contains("config.toml:5:"), "{e}");
    assert!(e.contains("items"), "{e}");
}

#[test]
fn bad_enum_value_lists_the_choices() {
    let e = err(&format!("{MINIMAL}[mail]\ntransport = \"pigeon\"\n"));
    assert!(
        e.contains("config.toml:5:") && e.contains("pigeon") && e.contains("smtp"),
        "{e}"
    );
}

#[test]
fn missing_required_keys_are_all_reported() {
    let e = err("[publication]\ndescription = \"x\"\n");
    assert!(e.contains("publication.title: missing required key"), "{e}");
    assert!(
        e.contains("publication.base_url: missing required key"),
        "{e}"
    );
}

#[test]
fn bad_url_is_named_with_its_line() {
    let e = err("[publication]\ntitle = \"T\"\nbase_url = \"example.org/news\"\n");
    assert!(e.contains("config.toml:3: publication.base_url"), "{e}");
    let e = err("[publication]\ntitle = \"T\"\nbase_url = \"ftp://example.org/\"\n");
    assert!(e.contains("http or https"), "{e}");
}

#[test]
fn bad_cron_is_named_with_its_line() {
    for bad in [
        "* * * *",
        "0 0 * * * *",
        "61 * * * *",
        "0 0 * * 8",
        "every day",
    ] {
        let e = err(&format!("{MINIMAL}[schedule]\ncron = \"{bad}\"\n"));
        assert!(e.contains("config.toml:5: schedule.cron"), "{bad}: {e}");
    }
}

#[test]
fn bad_time_zone_is_named_with_its_line() {
    let e = err(
        "[publication]\ntitle = \"T\"\nbase_url = \"https://x.org/\"\ntimezone = \"Mars/Olympus\"\n",
    );
    assert!(
        e.contains("config.toml:4: publication.timezone") && e.contains("Mars/Olympus"),
        "{e}"
    );
}

#[test]
fn several_bad_values_are_reported_together() {
    let e = err(&format!(
        "{MINIMAL}[feeds]\nitems = 0\n[mail]\nconcurrency = 0\nfrom = \"nobody\"\n"
    ));
    assert_eq!(e.lines().count(), 3, "{e}");
}

#[test]
fn every_kind_of_mistake_is_reported_in_one_run() {
    let text = "[publication]\n\
                base_url = \"https://example.org/\"\n\
                colour = \"red\"\n\
                timezone = \"Mars/Olympus\"\n\
                [feeds]\n\
                items = \"fifty\"\n\
                size = 3\n\
                [mail]\n\
                transport = \"pigeon\"\n\
                concurrency = 0\n\
                smtp.port = \"twenty-five\"\n\
                [mail.dkim]\n\
                selectr = \"s1\"\n\
                [http]\n\
                listen = \"everywhere\"\n\
                [feed]\n\
                items = 1\n";
    let e = parse_env(
        text,
        &[
            ("GAZETTE_SCHEDULE_CRON", "never"),
            ("GAZETTE_HTTP_SUBSCRIBE_BURST", "many"),
            ("GAZETTE_MAIL_COLOUR", "blue"),
        ],
    )
    .expect_err("config should be refused")
    .to_string();
    let expected = [
        "config.toml:3: publication.colour: unknown key `colour`",
        "config.toml:4: publication.timezone: unknown time zone",
        "config.toml:6: feeds.items: invalid type: string \"fifty\"",
        "config.toml:7: feeds.size: unknown key `size`",
        "config.toml:9: mail.transport: unknown variant `pigeon`",
        "config.toml:10: mail.concurrency: must be between 1 and 256",
        "config.toml:11: mail.smtp.port: invalid type",
        "config.toml:13: mail.dkim.selectr: unknown key",
        "config.toml:15: http.listen:",
        "config.toml:16: feed: unknown key `feed`",
        "environment variable GAZETTE_HTTP_SUBSCRIBE_BURST: http.subscribe_burst: invalid type",
        "environment variable GAZETTE_MAIL_COLOUR: mail.colour: unknown key",
        "environment variable GAZETTE_SCHEDULE_CRON: schedule.cron:",
        "config.toml: publication.title: missing required key",
    ];
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{e}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.contains(want), "{want:?} not in {line:?}\n{e}");
    }
}

/// Each section's checker adds to the same list: a value mistake in every
/// section at once is reported in one run, in file order.
#[test]
fn a_value_mistake_in_every_section_is_reported_in_one_run() {
    let text = "[publication]\n\
                title = \"T\"\n\
                base_url = \"https://example.org/\"\n\
                language = \"en_GB\"\n\
                [content]\n\
                max_article_bytes = 0\n\
                [feeds]\n\
                items = 0\n\
                [database]\n\
                url = \"postgres://db\"\n\
                [schedule]\n\
                cron = \"0 0 * * * *\"\n\
                [mail]\n\
                rate_per_second = -1.0\n\
                [mail.smtp]\n\
                timeout = \"0s\"\n\
                [mail.dkim]\n\
                selector = \"bad selector\"\n\
                domain = \"example.org\"\n\
                key_file = \"dkim.pem\"\n\
                [http]\n\
                max_connections = 0\n";
    let e = err(text);
    let expected = [
        "config.toml:4: publication.language: \"en_GB\" is not a language tag",
        "config.toml:6: content.max_article_bytes: must be greater than 0",
        "config.toml:8: feeds.items: must be between 1 and 100000, not 0",
        "config.toml:10: database.url: \"postgres://db\" is not a SQLite URL",
        "config.toml:12: schedule.cron: \"0 0 * * * *\" has 6 fields",
        "config.toml:14: mail.rate_per_second: must be a positive number, not -1",
        "config.toml:16: mail.smtp.timeout: must be at least 1s",
        "config.toml:18: mail.dkim.selector: \"bad selector\" is not a DNS label",
        "config.toml:22: http.max_connections: must be between 1 and 100000, not 0",
    ];
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{e}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.contains(want), "{want:?} not in {line:?}\n{e}");
    }
}

#[test]
fn a_wrong_type_is_not_also_reported_as_missing() {
    let e = err("[publication]\ntitle = 5\nbase_url = \"https://x.org/\"\n");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("config.toml:2: publication.title: invalid type"),
        "{e}"
    );
}

#[test]
fn syntax_errors_are_reported_with_their_lines() {
    let e = err(&format!("{MINIMAL}[feeds\nitems = = 3\n"));
    assert!(e.starts_with("/srv/gz/config.toml: line 4"), "{e}");
}

#[test]
fn env_overrides_win_and_are_named_in_errors() {
    let c = parse_env(
        MINIMAL,
        &[
            ("GAZETTE_FEEDS_ITEMS", "7"),
            ("GAZETTE_MAIL_SMTP_HOST", "mx.example.org"),
            ("GAZETTE_PUBLICATION_TITLE", "Other"),
        ],
    )
    .unwrap();
    assert_eq!(c.feeds.items, 7);
    assert_eq!(c.mail.smtp.host, "mx.example.org");
    assert_eq!(c.publication.title, "Other");

    let e = parse_env(MINIMAL, &[("GAZETTE_FEEDS_ITEMS", "lots")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("GAZETTE_FEEDS_ITEMS"), "{e}");
    let e = parse_env(MINIMAL, &[("GAZETTE_SCHEDULE_CRON", "nope")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("environment variable GAZETTE_SCHEDULE_CRON: schedule.cron"),
        "{e}"
    );
    let e = parse_env(MINIMAL, &[("GAZETTE_FEEDS_COLOUR", "red")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("GAZETTE_FEEDS_COLOUR") && e.contains("colour"),
        "{e}"
    );
    // Other GAZETTE_ variables are not ours: the file's name, the log
    // filter, secrets named by the config.
    let with_secret = format!("{MINIMAL}[http]\nadmin_token_env = \"GAZETTE_HTTP_TOKEN\"\n");
    let vars = [
        ("GAZETTE_CONFIG", "/elsewhere.toml"),
        ("GAZETTE_LOG", "debug"),
        ("GAZETTE_ADMIN_TOKEN", "s3cret"),
        ("GAZETTE_HTTP_TOKEN", "s3cret"),
    ];
    assert!(parse_env(&with_secret, &vars).is_ok());
}

#[test]
fn the_subscribe_rate_limit_has_defaults_bounds_and_overrides() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        (c.http.subscribe_burst, c.http.subscribe_per_minute),
        (5, 3)
    );
    let c = parse(&format!(
        "{MINIMAL}[http]\nsubscribe_burst = 20\nsubscribe_per_minute = 60\n"
    ))
    .unwrap();
    assert_eq!(
        (c.http.subscribe_burst, c.http.subscribe_per_minute),
        (20, 60)
    );
    let e = err(&format!("{MINIMAL}[http]\nsubscribe_burst = 0\n"));
    assert!(
        e.contains("config.toml:5: http.subscribe_burst: must be between 1 and 10000"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}[http]\nsubscribe_per_minute = \"lots\"\n"
    ));
    assert!(
        e.contains("config.toml:5:") && e.contains("subscribe_per_minute"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}[http]\nsubscribe_limit = 3\n"));
    assert!(
        e.contains("config.toml:5:") && e.contains("subscribe_limit"),
        "{e}"
    );
    let c = parse_env(MINIMAL, &[("GAZETTE_HTTP_SUBSCRIBE_BURST", "2")]).unwrap();
    assert_eq!(c.http.subscribe_burst, 2);
    let e = parse_env(MINIMAL, &[("GAZETTE_HTTP_SUBSCRIBE_PER_MINUTE", "-1")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("environment variable GAZETTE_HTTP_SUBSCRIBE_PER_MINUTE"),
        "{e}"
    );
}

#[test]
fn http_listen_takes_host_names_and_the_connection_limits_have_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        (
            c.http.header_timeout,
            c.http.body_timeout,
            c.http.max_connections
        ),
        (Duration::from_secs(10), Duration::from_secs(30), 512)
    );
    assert!(c.http.trusted_proxies.is_empty());
    for ok in ["localhost:8081", "[::1]:8080", "news-1.example.org:80"] {
        let c = parse(&format!("{MINIMAL}[http]\nlisten = \"{ok}\"\n")).unwrap();
        assert_eq!(c.http.listen, ok);
    }
    for bad in ["localhost", "localhost:http", ":8080", "a b:80", "x:99999"] {
        let e = err(&format!("{MINIMAL}[http]\nlisten = \"{bad}\"\n"));
        assert!(e.contains("config.toml:5: http.listen"), "{bad}: {e}");
    }
    let c = parse(&format!(
        "{MINIMAL}[http]\nheader_timeout = \"2s\"\nbody_timeout = \"1m\"\nmax_connections = 3\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n"
    ))
    .unwrap();
    assert_eq!(c.http.header_timeout, Duration::from_secs(2));
    assert_eq!(c.http.body_timeout, Duration::from_secs(60));
    assert_eq!(c.http.max_connections, 3);
    assert_eq!(c.http.trusted_proxies.len(), 3);
    let e = err(&format!("{MINIMAL}[http]\nheader_timeout = \"0s\"\n"));
    assert!(
        e.contains("http.header_timeout: must be between 1s and 1h"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n"
    ));
    assert!(
        e.contains("config.toml:5: http.trusted_proxies") && e.contains("10.0.0.0/33"),
        "{e}"
    );
}

#[test]
fn secrets_are_named_not_inlined() {
    let e = err(&format!(
        "{MINIMAL}[mail.smtp]\npassword_env = \"hunter2!\"\n"
    ));
    assert!(
        e.contains("mail.smtp.password_env") && e.contains("config.toml:5"),
        "{e}"
    );
}

#[test]
fn dkim_settings_are_checked_without_reading_the_key() {
    // No key file exists: reading it is mail::dkim's job.
    let text = format!(
        "{MINIMAL}[mail]\nfrom = \"Ledger <news@Example.org>\"\n[mail.dkim]\nselector = \"s1\"\nkey_file = \"keys/dkim.pem\"\n"
    );
    let d = parse(&text).unwrap().mail.dkim.unwrap();
    assert_eq!(
        d.domain, "example.org",
        "defaults to the domain of mail.from"
    );
    assert_eq!(d.selector, "s1");
    assert_eq!(d.key_file, Path::new("/srv/gz/keys/dkim.pem"));
    assert_eq!(d.key_file_origin.to_string(), "/srv/gz/config.toml:8");
    let d = parse_env(&text, &[("GAZETTE_MAIL_DKIM_KEY_FILE", "/etc/k.pem")])
        .unwrap()
        .mail
        .dkim
        .unwrap();
    assert_eq!(d.key_file, Path::new("/etc/k.pem"));
    assert_eq!(
        d.key_file_origin,
        Origin::Env("GAZETTE_MAIL_DKIM_KEY_FILE".into())
    );
    assert!(parse(MINIMAL).unwrap().mail.dkim.is_none());
}

#[test]
fn dkim_problems_name_the_key() {
    let e = err(&format!(
        "{MINIMAL}[mail.dkim]\nkey_file = \"k.pem\"\nselector = \"bad selector\"\ndomain = \"example.org\"\n"
    ));
    assert!(e.contains("config.toml:6: mail.dkim.selector"), "{e}");
    let e = err(&format!("{MINIMAL}[mail.dkim]\nselector = \"s1\"\n"));
    assert!(
        e.contains("mail.dkim.domain") && e.contains("mail.dkim.key_file"),
        "{e}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let e = Config::load_with_env(Path::new("/nonexistent/gazette/config.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/gazette/config.toml"), "{e}");
}

#[test]
fn mail_smtputf8_is_off_unless_set() {
    assert!(!parse_env(MINIMAL, &[]).unwrap().mail.smtputf8);
    let on = format!("{MINIMAL}[mail]\nsmtputf8 = true\n");
    assert!(parse_env(&on, &[]).unwrap().mail.smtputf8);
    let env = parse_env(MINIMAL, &[("GAZETTE_MAIL_SMTPUTF8", "true")]).unwrap();
    assert!(env.mail.smtputf8);
    let e = parse_env(MINIMAL, &[("GAZETTE_MAIL_SMTPUTF8", "maybe")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("GAZETTE_MAIL_SMTPUTF8"), "{e}");
}

#[test]
fn inbound_keys_have_defaults_and_need_a_bounce_address() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.mail.bounce_address, None);
    assert_eq!(c.inbound.listen, None);
    assert_eq!(c.inbound.max_message_bytes, 10 << 20);
    assert_eq!(c.inbound.soft_bounce_limit, 3);
    assert_eq!(c.inbound.keep_raw_for, Duration::from_secs(30 * 86400));

    let c = parse(&format!(
        "{MINIMAL}[mail]\nbounce_address = \"Bounces@News.Example.org\"\n[inbound]\nlisten = \"127.0.0.1:2526\"\nsoft_bounce_limit = 0\n"
    ))
    .unwrap();
    let b = c.mail.bounce_address.unwrap();
    assert_eq!(b.to_string(), "Bounces@news.example.org");
    assert_eq!(b.tagged("d1-x"), "Bounces+d1-x@news.example.org");
    assert_eq!(c.inbound.soft_bounce_limit, 0);

    let e = err(&format!("{MINIMAL}[inbound]\nsoft_bounce_limit = 1\n"));
    assert!(
        e.contains(":5: inbound.soft_bounce_limit: must be 0 (never) or at least 2"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}[inbound]\nlisten = \"127.0.0.1:2526\"\n"
    ));
    assert!(
        e.contains("inbound.listen") && e.contains("mail.bounce_address"),
        "{e}"
    );
}

#[test]
fn bad_inbound_values_are_named_with_their_lines() {
    let e = err(&format!(
        "{MINIMAL}[mail]\nbounce_address = \"bounces+x@news.example.org\"\n[inbound]\nmax_sessions = 0\nsession_timeout = \"soon\"\nlisten = \"nowhere\"\n"
    ));
    for want in [
        ":5: mail.bounce_address: \"bounces+x@news.example.org\": the local part may not contain '+'",
        ":7: inbound.max_sessions: must be between 1 and 10000, not 0",
        ":8: inbound.session_timeout: \"soon\" is not a duration",
        ":9: inbound.listen: \"nowhere\" is not an address",
    ] {
        assert!(e.contains(want), "{want} missing in:\n{e}");
    }
    // A bounce address that was given but refused is one problem, not two.
    assert_eq!(e.matches("inbound.listen").count(), 1, "{e}");
    for bad in [
        "Bounces <b@news.example.org>",
        "bounces",
        "b@localhost",
        "bö@news.example.org",
    ] {
        assert!(
            crate::config::BounceAddress::parse(bad).is_err(),
            "{bad} should be refused"
        );
    }
}
