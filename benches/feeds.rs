//! Feed generation benchmark (run through `bench/feeds.sh`, or alone with
//! `cargo bench --bench feeds`).
//!
//! Builds a deterministic in-memory model of 10,000 articles (~2 KB of HTML
//! each, 100 issues), times `feeds::build` with `items = 10000` (best of a few
//! runs) and each feed alone, and writes the entries as a JSON Feed to
//! `$GAZETTE_BENCH_ENTRIES` so the peer generators get exactly the same data.
//! `$GAZETTE_BENCH_RESULT` receives `key=value` lines for the driver script.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use gazette::config::Publication;
use gazette::content::{Article, ContentHash, Issue, SourceFormat};
use gazette::feeds;

/// Big feeds and mail batches allocate and free tens of megabytes per cycle;
/// mimalloc reuses those pages where glibc returns them to the OS and faults
/// them back in (measured: bench/feeds.sh, about 15% of the build time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ARTICLES: usize = 10_000;
const PER_ISSUE: usize = 100;
const RUNS: usize = 7;

/// The tests' seeded PRNG, so every run sees the same model.
#[path = "../tests/common/rng.rs"]
mod rng;
use rng::Rng;

const WORDS: &[&str] = &[
    "workers",
    "strike",
    "rent",
    "wages",
    "solidarity",
    "freedom",
    "the",
    "of",
    "and",
    "in",
    "union",
    "city",
    "border",
    "immigrants",
    "women",
    "youth",
    "labor",
    "capital",
    "crisis",
    "movement",
    "Zürich",
    "東京",
    "São Paulo",
    "café",
    "naïve",
    "dialectic",
    "history",
    "reason",
    "revolt",
    "council",
    "press",
    "letters",
    "editors",
    "housing",
    "climate",
    "factory",
    "to",
    "a",
    "from",
    "against",
    "with",
    "for",
    "new",
    "old",
    "many",
    "few",
    "public",
    "private",
];
const SECTIONS: &[&str] = &[
    "Editorial",
    "Labor & Work",
    "World",
    "Women’s Liberation",
    "Letters",
    "Youth",
];
const PEOPLE: &[&str] = &[
    "Eugene Walker",
    "Ana Núñez",
    "Björn Ødegaard",
    "Terry Moon",
    "Franklin Dmitryev",
    "Jane Doe",
    "Reader One",
    "Urszula Wiśniewska",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

/// About 2 KB of rich, sanitized-looking HTML.
fn html(rng: &mut Rng, n: usize) -> String {
    let mut out = String::with_capacity(2300);
    while out.len() < 1900 {
        match rng.below(6) {
            0 => out.push_str(&format!(
                "<p>{} <a href=\"https://example.org/story/{n}?ref=gazette&amp;p={}\">{}</a>.</p>\n",
                sentence(rng, 12),
                rng.below(100),
                sentence(rng, 3)
            )),
            1 => out.push_str(&format!("<blockquote><p>“{}”</p></blockquote>\n", sentence(rng, 14))),
            2 => out.push_str(&format!(
                "<ul><li>{}</li><li>{} &amp; {}</li></ul>\n",
                sentence(rng, 5),
                sentence(rng, 3),
                sentence(rng, 3)
            )),
            _ => out.push_str(&format!(
                "<p>{} <em>{}</em>, {} — 3 &lt; 4.</p>\n",
                sentence(rng, 18),
                sentence(rng, 2),
                sentence(rng, 10)
            )),
        }
    }
    out
}

fn model() -> (Publication, Vec<Issue>) {
    let publication = Publication {
        title: "News & Letters".to_owned(),
        description: "A Marxist-Humanist periodical".to_owned(),
        base_url: url::Url::parse("https://news.example.org/").expect("static URL"),
        language: "en".to_owned(),
        timezone: chrono_tz::America::Chicago,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let newest = NaiveDate::from_ymd_opt(2026, 11, 20).expect("static date");
    let mut issues = Vec::with_capacity(ARTICLES / PER_ISSUE);
    for i in 0..ARTICLES / PER_ISSUE {
        let date = newest - chrono::Duration::days(14 * i as i64);
        let articles = (0..PER_ISSUE)
            .map(|k| {
                let n = i * PER_ISSUE + k;
                let authors = match rng.below(5) {
                    0 => Vec::new(),
                    1 => vec![rng.pick(PEOPLE).to_owned(), rng.pick(PEOPLE).to_owned()],
                    _ => vec![rng.pick(PEOPLE).to_owned()],
                };
                let title = if n.is_multiple_of(7) {
                    format!("Rents > wages & “temporary” < permanent ({n})")
                } else {
                    format!("{} {n}", sentence(&mut rng, 6))
                };
                Article {
                    slug: format!("article-{n}"),
                    title,
                    authors,
                    date: date - chrono::Duration::days((k % 7) as i64),
                    section: Some(rng.pick(SECTIONS).to_owned()),
                    dateline: None,
                    summary: sentence(&mut rng, 25),
                    html: html(&mut rng, n),
                    source: PathBuf::from(format!("content/issue-{i}/article-{n}.md")),
                    format: SourceFormat::Markdown,
                    hash: ContentHash::of(n.to_string().as_bytes()),
                }
            })
            .collect();
        issues.push(Issue {
            slug: format!("{}-issue-{i}", date.format("%Y-%m")),
            title: format!("Issue {i}"),
            date,
            number: Some(u32::try_from(1000 - i).expect("small")),
            volume: None,
            summary: None,
            publication: None,
            draft: false,
            publish_at: None,
            dir: PathBuf::from(format!("content/issue-{i}")),
            articles,
            hash: ContentHash::of(i.to_string().as_bytes()),
        });
    }
    (publication, issues)
}

/// Best wall time of `RUNS` runs of `f`.
fn best<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = std::hint::black_box(f());
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("RUNS > 0"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let (publication, issues) = model();
    let html_bytes: usize = issues
        .iter()
        .flat_map(|i| &i.articles)
        .map(|a| a.html.len())
        .sum();
    println!(
        "model: {} issues, {ARTICLES} articles, {:.1} MB of HTML ({} B/article)",
        issues.len(),
        html_bytes as f64 / 1e6,
        html_bytes / ARTICLES
    );

    // Profiling aid: `GAZETTE_BENCH_PROFILE=rss|atom|json|all` loops one
    // builder (e.g. under `perf record`) and skips the report.
    if let Ok(which) = std::env::var("GAZETTE_BENCH_PROFILE") {
        for _ in 0..20 {
            let bytes = match which.as_str() {
                "rss" => feeds::build_rss(&publication, &issues, ARTICLES)
                    .expect("rss")
                    .len(),
                "atom" => feeds::build_atom(&publication, &issues, ARTICLES)
                    .expect("atom")
                    .len(),
                "json" => feeds::build_json(&publication, &issues, ARTICLES)
                    .expect("json")
                    .len(),
                "model" => 0,
                _ => feeds::build(&publication, &issues, ARTICLES)
                    .expect("build")
                    .rss
                    .len(),
            };
            std::hint::black_box(bytes);
        }
        return;
    }

    let (total, set) = best(|| feeds::build(&publication, &issues, ARTICLES).expect("build"));
    let (rss, _) = best(|| feeds::build_rss(&publication, &issues, ARTICLES).expect("rss"));
    let (atom, _) = best(|| feeds::build_atom(&publication, &issues, ARTICLES).expect("atom"));
    let (json, _) = best(|| feeds::build_json(&publication, &issues, ARTICLES).expect("json"));
    println!(
        "gazette build (3 feeds, threaded) best of {RUNS}: {:8.2} ms",
        ms(total)
    );
    println!(
        "  rss  alone: {:8.2} ms  {:>6.1} MB",
        ms(rss),
        set.rss.len() as f64 / 1e6
    );
    println!(
        "  atom alone: {:8.2} ms  {:>6.1} MB",
        ms(atom),
        set.atom.len() as f64 / 1e6
    );
    println!(
        "  json alone: {:8.2} ms  {:>6.1} MB",
        ms(json),
        set.json.len() as f64 / 1e6
    );
    println!("  rss+atom sequential: {:8.2} ms", ms(rss + atom));

    if let Some(path) = std::env::var_os("GAZETTE_BENCH_ENTRIES") {
        std::fs::write(&path, &set.json).expect("write entries");
        println!("entries exported to {}", PathBuf::from(path).display());
    }
    if let Some(path) = std::env::var_os("GAZETTE_BENCH_RESULT") {
        let lines = format!(
            "total_ms={:.3}\nrss_ms={:.3}\natom_ms={:.3}\njson_ms={:.3}\n",
            ms(total),
            ms(rss),
            ms(atom),
            ms(json)
        );
        std::fs::write(path, lines).expect("write result");
    }
}
