//! How long `Digest::message` takes per recipient. Not a timed assertion:
//! run it by hand, in release mode, and read the numbers:
//!
//!     cargo test --release --test mail_speed -- --ignored --nocapture

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use gazette::config::Config;
use gazette::content::{Article, ContentHash, Issue, SourceFormat};
use gazette::mail::{Recipient, Renderer};
use gazette::subscribers::{SubscriberEmail, SubscriberName, Token};

/// An issue of `articles` articles of ~2.4 KB of HTML each.
fn issue(articles: usize) -> Issue {
    let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let para = "<p>The harbour trust met on Tuesday; the minutes are <a href=\"https://news.example.org/minutes\">public</a>. Rents rose by 12 % while wages rose by 3 %, and the ferry surcharge, “temporary” since 2024, is still on the board — Zoë Álvarez reports.</p>\n";
    Issue {
        slug: "2026-winter".into(),
        title: "Winter 2026".into(),
        date,
        number: Some(7),
        volume: None,
        summary: Some("Ferry fares, books and letters.".into()),
        publication: None,
        draft: false,
        publish_at: None,
        dir: PathBuf::from("content/2026-winter"),
        hash: ContentHash::of(b"speed"),
        articles: (0..articles)
            .map(|i| Article {
                slug: format!("article-{i}"),
                title: format!("Article number {i}: rents > wages"),
                authors: vec!["Zoë Álvarez".into(), "Bo Chen".into()],
                date,
                section: Some("Housing".into()),
                dateline: Some("Gdańsk".into()),
                summary: "Tenants count the cost.".into(),
                html: para.repeat(9),
                source: PathBuf::from(format!("content/2026-winter/article-{i}.md")),
                format: SourceFormat::Markdown,
                hash: ContentHash::of(i.to_string().as_bytes()),
            })
            .collect(),
    }
}

fn config(dir: &std::path::Path, extra: &str) -> Config {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[publication]\ntitle = \"The Test Ledger\"\nbase_url = \"https://news.example.org/\"\n[mail]\nfrom = \"The Test Ledger <ledger@news.example.org>\"\nreply_to = \"letters@news.example.org\"\n{extra}"
        ),
    )
    .unwrap();
    Config::load_with_env(&path, &[]).unwrap()
}

fn time(label: &str, renderer: &Renderer, issue: &Issue, n: usize) {
    let t = Instant::now();
    let digest = renderer.prepare(issue).unwrap();
    let prepare = t.elapsed();
    let tokens: Vec<Token> = (0..n).map(|_| Token::generate().unwrap()).collect();
    let emails: Vec<SubscriberEmail> = (0..n)
        .map(|i| SubscriberEmail::parse(&format!("reader{i}@example.net")).unwrap())
        .collect();
    let name = SubscriberName::parse("Zoë Álvarez").unwrap();
    let mut bytes = 0;
    let t = Instant::now();
    for i in 0..n {
        let out = digest
            .message(&Recipient {
                email: &emails[i],
                name: name.as_ref(),
                token: &tokens[i],
                tag: None,
            })
            .unwrap();
        bytes += out.bytes.len();
    }
    let per = t.elapsed() / n as u32;
    println!(
        "{label}: HTML part {:.1} KB, message {:.1} KB; prepare {:.1} ms; Digest::message {:.1} µs/message ({n} messages)",
        digest.html_web().len() as f64 / 1024.0,
        bytes as f64 / n as f64 / 1024.0,
        prepare.as_secs_f64() * 1e3,
        per.as_secs_f64() * 1e6,
    );
}

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn digest_message_speed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Renderer::load(&config(dir.path(), "")).unwrap();
    time("no DKIM, 5 articles", &plain, &issue(5), 20_000);
    let issue = issue(8);
    time("no DKIM, 8 articles", &plain, &issue, 20_000);

    for (name, args) in [
        (
            "DKIM rsa-2048",
            vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        ("DKIM ed25519", vec!["-algorithm", "ed25519"]),
    ] {
        let key = dir.path().join("key.pem");
        let out = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(&args)
            .arg("-out")
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success());
        let c = config(
            dir.path(),
            "[mail.dkim]\nselector = \"s\"\nkey_file = \"key.pem\"\n",
        );
        time(name, &Renderer::load(&c).unwrap(), &issue, 2_000);
    }
}
