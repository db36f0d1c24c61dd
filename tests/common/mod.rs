//! Shared test harness: a site (config + content) in a temp dir, the binary,
//! and the real external tools. A missing tool fails the test with a hint; it
//! never skips. `rng.rs` (a seeded PRNG) is not a module here: it stands
//! alone so that a test or a bench includes it with `#[path]`.
#![allow(dead_code)]

pub mod admin;
pub mod mail;
pub mod postfix;
pub mod returns;
pub mod serve;
pub mod smtp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub struct Site {
    pub dir: tempfile::TempDir,
}

pub const CONFIG: &str = r#"[publication]
title = "The Test Ledger"
description = "Fixture publication"
base_url = "https://news.example.org/ledger/"
language = "en"
timezone = "America/New_York"

[feeds]
items = 50
"#;

/// A Markdown article with everything the feeds must carry through.
pub const RENTS_MD: &str = "+++
title = \"Rents > wages & “temporary” < permanent\"
authors = [\"Zoë Álvarez\", \"Dariusz Łukasiewicz\"]
date = 2026-11-20
section = \"Housing\"
dateline = \"Gdańsk\"
summary = \"Tenants count the cost of a “temporary” rise.\"
+++

Gdańsk—The council met on *Tuesday*; the [minutes](/minutes/2026-11.html) are public.

<script>alert('x')</script><img src=\"/img/a.png\" onerror=\"alert(1)\"> <a href=\"javascript:alert(2)\">bad link</a>

- rent up 12 %
- wages up 3 %
";

/// A clipping with no by-line (the feeds credit the publication).
pub const HARBOUR_TXT: &str = "Harbour cranes return\r\n\r\nNovember 18, 2026\r\n\r\nFrom the Winter 2026 issue of The Test Ledger\r\n\r\nPort Town—Two cranes came back to the quay this week.\r\n\r\nDockers cheered.\r\n\r\n\r\nA second section begins here.\r\n\r\nLeave a Reply\r\n\r\nYour email address will not be published. Required fields are marked *";

pub const OLD_TXT: &str = "Autumn notes\n\nOctober 2, 2026\n\nFrom the Autumn 2026 issue of The Test Ledger\n\nby Ana Ruiz and Bo Chen\n\nLeaves fell.\n";

impl Site {
    /// Two issues: "2026-winter" (a Markdown article and a clipping) and
    /// "2026-autumn" (one clipping, no issue.toml).
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = Site { dir };
        site.write("config.toml", CONFIG);
        site.write(
            "content/2026-winter/issue.toml",
            "title = \"Winter 2026\"\ndate = 2026-11-20\nnumber = 7\n",
        );
        site.write("content/2026-winter/rents.md", RENTS_MD);
        site.write("content/2026-winter/harbour-cranes.txt", HARBOUR_TXT);
        site.write("content/2026-autumn/autumn-notes.txt", OLD_TXT);
        site
    }

    /// An empty site with only a config.
    pub fn empty() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = Site { dir };
        site.write("config.toml", CONFIG);
        site
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// `gazette --config <site>/config.toml ARGS...`, run from the site folder.
    pub fn gazette(&self, args: &[&str]) -> Output {
        self.gazette_env(args, &[])
    }

    pub fn gazette_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run gazette")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gazette"));
        cmd.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.path("config.toml"))
            .args(args);
        // The tests own the environment: no stray overrides from the caller.
        for (k, _) in std::env::vars() {
            if k.starts_with("GAZETTE_") {
                cmd.env_remove(k);
            }
        }
        cmd
    }
}

/// `[mail]` keys for a send that never waits: a failed try is retried at
/// once, and the rate limit is far above what a test sends.
pub const NO_WAIT: &str = "retry_base = \"0s\"\nrate_per_second = 100000\n";

/// `reader0@example.org,Reader 0` ...: `n` rows for an `email,name` CSV.
pub fn readers(n: usize) -> Vec<String> {
    (0..n)
        .map(|n| format!("reader{n}@example.org,Reader {n}"))
        .collect()
}

impl Site {
    /// Runs `f` on the site's database (a hand edit or a check a test
    /// makes beside the binary), on a runtime of its own.
    pub fn with_db<T>(&self, f: impl AsyncFnOnce(&gazette::store::Store) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let store = gazette::store::Store::open(&self.path("gazette.db"))
                .await
                .expect("open the site's database");
            let out = f(&store).await;
            store.close().await;
            out
        })
    }

    /// The fixture site with a `[mail]` section: a sender, issues never too
    /// old to mail (the fixture's dates are fixed; the tests must not depend
    /// on the day they run), then `mail` (more `[mail]` keys, ending with
    /// `smtp::via` to mail over SMTP).
    pub fn mailing(mail: &str) -> Site {
        let site = Site::new();
        site.write(
            "config.toml",
            &format!(
                "{CONFIG}\n[mail]\nfrom = \"The Test Ledger <ledger@example.org>\"\nskip_older_than = \"100000d\"\n{mail}"
            ),
        );
        site
    }

    /// `Site::mailing` with one issue to mail (2026-winter) to `readers(n)`.
    pub fn mailing_to_readers(n: usize, mail: &str) -> Site {
        let site = Site::mailing(mail);
        site.remove("content/2026-autumn");
        site.import_subscribers("email,name", &readers(n));
        site
    }

    /// `Site::mailing` with `NO_WAIT` before `mail`, and `subscribers`
    /// (`email,name,status` rows) imported.
    pub fn mailing_now<S: AsRef<str>>(mail: &str, subscribers: &[S]) -> Site {
        let site = Site::mailing(&format!("{NO_WAIT}{mail}"));
        site.import_subscribers("email,name,status", subscribers);
        site
    }

    /// Writes `subscribers.csv` (`header`, then `rows`) and imports it; the
    /// import must exit 0.
    pub fn import_subscribers<S: AsRef<str>>(&self, header: &str, rows: &[S]) {
        let mut csv = format!("{header}\n");
        for row in rows {
            csv.push_str(row.as_ref());
            csv.push('\n');
        }
        self.write("subscribers.csv", &csv);
        expect_code(
            &self.gazette(&["subscribers", "import", "subscribers.csv"]),
            0,
        );
    }

    /// Two `gazette ARGS...` started together, both streams captured, both
    /// waited for: for the tests of what two at once must not do twice.
    pub fn two_at_once(&self, args: &[&str]) -> (Output, Output) {
        let start = || {
            self.command(args)
                .stdout(std::process::Stdio::piped())
                // Captured (the one that waits says so), shown by expect_code on failure.
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn gazette")
        };
        let (a, b) = (start(), start());
        (
            a.wait_with_output().expect("wait"),
            b.wait_with_output().expect("wait"),
        )
    }

    /// Deletes a folder of the site, e.g. one of the fixture's two issues.
    pub fn remove(&self, rel: &str) {
        std::fs::remove_dir_all(self.path(rel)).unwrap_or_else(|e| panic!("remove {rel}: {e}"));
    }

    /// Rewrites the config with `from` replaced by `to` (which must occur).
    pub fn edit_config(&self, from: &str, to: &str) {
        let cfg = self.read("config.toml");
        assert!(cfg.contains(from), "{from:?} not in config.toml:\n{cfg}");
        self.write("config.toml", &cfg.replace(from, to));
    }
}

impl Site {
    /// A new issue folder dated 2026-11-27 with one short article, so the
    /// next cycle records, publishes and mails it.
    pub fn add_issue(&self, slug: &str, title: &str) {
        self.write(
            &format!("content/{slug}/issue.toml"),
            &format!("title = \"{title}\"\ndate = 2026-11-27\n"),
        );
        self.write(
            &format!("content/{slug}/news.md"),
            "+++\ntitle = \"Late news\"\ndate = 2026-11-27\n+++\n\nThe quay reopened on Friday.\n",
        );
    }

    /// `gazette ARGS...`, which must exit with `code` and print `text` on
    /// stdout; returns its output.
    #[track_caller]
    pub fn says(&self, args: &[&str], code: i32, text: &str) -> Output {
        let out = self.gazette(args);
        expect_code(&out, code);
        let said = stdout(&out);
        assert!(said.contains(text), "{args:?} should say {text:?}:\n{said}");
        out
    }

    /// Like `says`, for `text` on stderr.
    #[track_caller]
    pub fn says_on_stderr(&self, args: &[&str], code: i32, text: &str) -> Output {
        let out = self.gazette(args);
        expect_code(&out, code);
        let said = stderr(&out);
        assert!(
            said.contains(text),
            "{args:?} should say {text:?} on stderr:\n{said}"
        );
        out
    }

    /// `subscribers list --json`, by address.
    pub fn subscribers(&self) -> BTreeMap<String, Value> {
        let out = self.gazette(&["--json", "subscribers", "list"]);
        expect_code(&out, 0);
        let list: Vec<Value> =
            serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
        list.into_iter()
            .map(|s| (s["email"].as_str().unwrap_or_default().to_string(), s))
            .collect()
    }

    /// The status `subscribers list` shows for `email`, or
    /// "(not on the list)".
    pub fn status_of(&self, email: &str) -> String {
        self.subscribers()
            .get(email)
            .and_then(|s| s["status"].as_str())
            .unwrap_or("(not on the list)")
            .to_string()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON a `--json` command printed (both streams shown if it is not).
#[track_caller]
pub fn json(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

/// `mail.send.sent` and `mail.send.<other>` from `gazette --json run`'s
/// summary, e.g. `other = "failed"`.
pub fn sent_and(v: &Value, other: &str) -> (Option<u64>, Option<u64>) {
    let send = &v["mail"]["send"];
    (send["sent"].as_u64(), send[other].as_u64())
}

/// Panic with both streams unless the command exited with `code`.
#[track_caller]
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The Python with the test requirements (set by .ci/test), else the repo's .venv.
pub fn python() -> PathBuf {
    let p = std::env::var_os("GZ_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import feedparser, aiosmtpd"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} with feedparser and aiosmtpd is needed: run `bash .ci/test` (it installs the test tools)",
        p.display()
    );
    p
}

/// A tool on PATH, or a failing test that says how to get it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    // Debian puts postfix's tools in /usr/sbin, not on every user's PATH.
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("`{name}` is needed: apt-get install {package} (or run `bash .ci/test`)")
    })
}
