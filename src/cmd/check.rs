//! `gazette check`: the config, every content file and every template,
//! with every problem listed; exit 1 on any.

use std::process::ExitCode;

use anyhow::Result;

use gazette::config::Config;
use gazette::cycle::{self, plural};

/// Every template problem, by the rules `serve` applies at start (one
/// function for both, so that nothing `check` refuses can be served).
fn template_problems(config: &Config) -> Vec<String> {
    let pages = gazette::web::pages::Pages::problems(config);
    let console = gazette::web::admin::Console::problems(config);
    pages
        .iter()
        .map(ToString::to_string)
        .chain(console.iter().map(ToString::to_string))
        .collect()
}

pub fn check(config: &Config, json: bool) -> Result<ExitCode> {
    let (_, ingest) = cycle::ingest(config)?;
    let articles: usize = ingest.issues.iter().map(|i| i.articles.len()).sum();
    let templates = template_problems(config);
    let ok = ingest.problems.is_empty() && templates.is_empty();
    if json {
        let problems: Vec<_> = ingest
            .problems
            .iter()
            .map(|p| serde_json::json!({"path": p.path, "line": p.line, "message": p.message}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"config": config.path, "issues": ingest.issues.len(), "articles": articles, "problems": problems, "templates": templates})
        );
    } else {
        for p in &ingest.problems {
            println!("{p}");
        }
        for t in &templates {
            println!("{t}");
        }
        let what = format!(
            "{}, {} in {}",
            plural(ingest.issues.len(), "issue", "issues"),
            plural(articles, "article", "articles"),
            config.content.dir.display()
        );
        if ok {
            println!(
                "ok: {} and the templates are valid; {what}.",
                config.path.display()
            );
        } else {
            println!(
                "{} problems; {what} are fine.",
                ingest.problems.len() + templates.len()
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
