//! Recording what ingest saw: issues and articles with their content hashes.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::time::stamp;
use super::{Store, StoreError, column};
use crate::content::Issue;
use crate::release::{self, Release};

/// What recording one ingest changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordReport {
    /// Slugs seen for the first time.
    pub new: Vec<String>,
    /// Slugs whose content hash changed.
    pub changed: Vec<String>,
    pub unchanged: usize,
    /// Slugs recorded before while held (or as drafts) that are out now.
    pub released: Vec<String>,
}

/// An issue as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRecord {
    pub slug: String,
    pub title: String,
    pub issue_date: String,
    pub content_hash: String,
    pub article_count: i64,
    pub first_seen_at: String,
    pub updated_at: String,
    /// `draft = true` when last recorded.
    pub draft: bool,
    /// RFC 3339 UTC: its publication moment (None for rows older than the
    /// column that no cycle has recorded since).
    pub release_at: Option<String>,
    /// RFC 3339 UTC: when a cycle let it out; None while held or a draft.
    pub released_at: Option<String>,
}

impl IssueRecord {
    /// Out: readers and subscribers may see it.
    pub fn released(&self) -> bool {
        self.released_at.is_some()
    }
}

/// A query for the columns [`issue_record`] reads, followed by `$rest`.
macro_rules! select_records {
    ($rest:literal) => {
        concat!(
            "SELECT slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at,
                    draft, release_at, released_at
             FROM issues ",
            $rest
        )
    };
}

/// An [`IssueRecord`] from a row with its columns (the listing and the
/// single lookup read the same ones).
fn issue_record(r: &sqlx::sqlite::SqliteRow) -> Result<IssueRecord, StoreError> {
    let slug: String = column(r, "issues", &"?", "slug")?;
    let get = |name| column(r, "issues", &slug, name);
    Ok(IssueRecord {
        title: get("title")?,
        issue_date: get("issue_date")?,
        content_hash: get("content_hash")?,
        article_count: column(r, "issues", &slug, "article_count")?,
        first_seen_at: get("first_seen_at")?,
        updated_at: get("updated_at")?,
        draft: column(r, "issues", &slug, "draft")?,
        release_at: column(r, "issues", &slug, "release_at")?,
        released_at: column(r, "issues", &slug, "released_at")?,
        slug,
    })
}

/// What the release columns of an issue should hold at `now`:
/// (draft, release_at, out).
fn release_columns(issue: &Issue, tz: Tz, now: DateTime<Utc>) -> (bool, String, bool) {
    let at = stamp(release::moment(issue, tz));
    match release::status(issue, tz, now) {
        Release::Draft => (true, at, false),
        Release::Held(_) => (false, at, false),
        Release::Out(_) => (false, at, true),
    }
}

impl Store {
    /// Record every issue in one transaction: new ones are inserted with
    /// `first_seen_at = now`; changed ones get their articles replaced and
    /// `updated_at = now`; unchanged ones are not written at all.
    ///
    /// Drafts and held issues are recorded too (the admin sees them), with
    /// their publication moment in `tz`; `released_at` is set at the first
    /// call at or after that moment and cleared while an issue is held or a
    /// draft, so it says what readers may see as of this cycle.
    pub async fn record_issues(
        &self,
        issues: &[Issue],
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<RecordReport, StoreError> {
        let at = now;
        let now = stamp(now);
        let mut report = RecordReport::default();
        let mut tx = self.write().await?;
        for issue in issues {
            let hash = issue.hash.to_hex();
            let (draft, release_at, out) = release_columns(issue, tz, at);
            let existing = sqlx::query(
                "SELECT id, content_hash, draft, release_at, released_at FROM issues WHERE slug = $1",
            )
            .bind(&issue.slug)
            .fetch_optional(&mut *tx)
            .await?;
            let slug = issue.slug.as_str();
            if let Some(row) = &existing {
                let was_out =
                    column::<Option<String>>(row, "issues", &slug, "released_at")?.is_some();
                if column::<bool>(row, "issues", &slug, "draft")? != draft
                    || column::<Option<String>>(row, "issues", &slug, "release_at")?.as_deref()
                        != Some(&release_at)
                    || was_out != out
                {
                    sqlx::query(
                        "UPDATE issues SET draft = $1, release_at = $2,
                             released_at = CASE WHEN $3 THEN COALESCE(released_at, $4) ELSE NULL END
                         WHERE id = $5",
                    )
                    .bind(draft)
                    .bind(&release_at)
                    .bind(out)
                    .bind(&now)
                    .bind(column::<i64>(row, "issues", &slug, "id")?)
                    .execute(&mut *tx)
                    .await?;
                    if out && !was_out {
                        report.released.push(issue.slug.clone());
                    }
                }
            }
            let issue_id: i64 = match existing {
                Some(row) if column::<String>(&row, "issues", &slug, "content_hash")? == hash => {
                    report.unchanged += 1;
                    continue;
                }
                Some(row) => {
                    let id: i64 = column(&row, "issues", &slug, "id")?;
                    sqlx::query("UPDATE issues SET title = $1, issue_date = $2, content_hash = $3, article_count = $4, updated_at = $5 WHERE id = $6")
                        .bind(&issue.title)
                        .bind(issue.date.to_string())
                        .bind(&hash)
                        .bind(issue.articles.len() as i64)
                        .bind(&now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    report.changed.push(issue.slug.clone());
                    id
                }
                None => {
                    let row = sqlx::query(
                        "INSERT INTO issues (slug, title, issue_date, content_hash, article_count, first_seen_at, updated_at,
                                             draft, release_at, released_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, CASE WHEN $9 THEN $6 END) RETURNING id",
                    )
                    .bind(&issue.slug)
                    .bind(&issue.title)
                    .bind(issue.date.to_string())
                    .bind(&hash)
                    .bind(issue.articles.len() as i64)
                    .bind(&now)
                    .bind(draft)
                    .bind(&release_at)
                    .bind(out)
                    .fetch_one(&mut *tx)
                    .await?;
                    report.new.push(issue.slug.clone());
                    column(&row, "issues", &slug, "id")?
                }
            };
            // Articles: upsert all of the issue's in one statement, keeping
            // first_seen_at; drop ones that are gone. One statement, not one
            // per article: each is a round trip to sqlx's SQLite thread, and
            // a first run over a 10,000-article archive spent about half a
            // second on those alone.
            let rows: Vec<serde_json::Value> = issue
                .articles
                .iter()
                .map(|a| {
                    serde_json::json!([
                        a.slug,
                        a.title,
                        serde_json::to_string(&a.authors).unwrap_or_else(|_| "[]".into()),
                        a.date.to_string(),
                        a.source.display().to_string(),
                        a.hash.to_hex(),
                    ])
                })
                .collect();
            let rows = serde_json::Value::from(rows).to_string();
            sqlx::query(
                "INSERT INTO articles (issue_id, slug, title, authors, article_date, source_path, content_hash, first_seen_at, updated_at)
                 SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, $3, $3
                 FROM json_each($2) WHERE true
                 ON CONFLICT (issue_id, slug) DO UPDATE SET
                    title = excluded.title, authors = excluded.authors, article_date = excluded.article_date,
                    source_path = excluded.source_path,
                    updated_at = CASE WHEN articles.content_hash = excluded.content_hash THEN articles.updated_at ELSE excluded.updated_at END,
                    content_hash = excluded.content_hash",
            )
            .bind(issue_id)
            .bind(&rows)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM articles WHERE issue_id = $1
                 AND slug NOT IN (SELECT value ->> 0 FROM json_each($2))",
            )
            .bind(issue_id)
            .bind(&rows)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Every released issue, newest issue date first: what readers may see
    /// (the archive). Drafts and held issues are left out.
    pub async fn issue_records(&self) -> Result<Vec<IssueRecord>, StoreError> {
        let rows = sqlx::query(select_records!(
            "WHERE released_at IS NOT NULL ORDER BY issue_date DESC, slug"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issue_record).collect()
    }

    /// Every recorded issue, drafts and held ones too, newest issue date
    /// first: for admins (the API, `issues list`).
    pub async fn all_issue_records(&self) -> Result<Vec<IssueRecord>, StoreError> {
        let rows = sqlx::query(select_records!("ORDER BY issue_date DESC, slug"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(issue_record).collect()
    }

    /// One released issue (the web version looks it up per request): None
    /// for a draft or a held issue, exactly as for an unknown slug.
    pub async fn issue_record(&self, slug: &str) -> Result<Option<IssueRecord>, StoreError> {
        let row = sqlx::query(select_records!(
            "WHERE slug = $1 AND released_at IS NOT NULL"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(issue_record).transpose()
    }

    /// Article slugs recorded for an issue, with their first-seen times.
    pub async fn article_first_seen(
        &self,
        issue_slug: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.slug, a.first_seen_at FROM articles a JOIN issues i ON i.id = a.issue_id WHERE i.slug = $1 ORDER BY a.slug",
        )
        .bind(issue_slug)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let slug: String = column(r, "articles", &"?", "slug")?;
                let seen = column(
                    r,
                    "articles",
                    &format!("{issue_slug}/{slug}"),
                    "first_seen_at",
                )?;
                Ok((slug, seen))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::content::{Article, ContentHash, SourceFormat};

    fn article(slug: &str, body: &str) -> Article {
        Article {
            slug: slug.into(),
            title: format!("Title {slug}"),
            authors: vec!["Zoë Álvarez".into()],
            date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            section: None,
            dateline: None,
            summary: "s".into(),
            html: format!("<p>{body}</p>"),
            source: PathBuf::from(format!("content/i/{slug}.md")),
            format: SourceFormat::Markdown,
            hash: ContentHash::of(body.as_bytes()),
        }
    }

    fn issue(slug: &str, articles: Vec<Article>) -> Issue {
        let mut all = Vec::new();
        for a in &articles {
            all.extend_from_slice(&a.hash.0);
        }
        Issue {
            slug: slug.into(),
            title: format!("Issue {slug}"),
            date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            number: None,
            volume: None,
            summary: None,
            publication: None,
            draft: false,
            publish_at: None,
            dir: PathBuf::from(format!("content/{slug}")),
            articles,
            hash: ContentHash::of(&all),
        }
    }

    #[tokio::test]
    async fn records_new_changed_and_unchanged_issues() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        let t1 = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
        let t2 = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();

        let v1 = vec![
            issue("a", vec![article("x", "1"), article("y", "1")]),
            issue("b", vec![article("z", "1")]),
        ];
        let r = store.record_issues(&v1, Tz::UTC, t1).await.unwrap();
        assert_eq!(r.new, vec!["a", "b"]);
        assert!(r.changed.is_empty());

        // Same content again: nothing written.
        let r = store.record_issues(&v1, Tz::UTC, t2).await.unwrap();
        assert_eq!((r.new.len(), r.changed.len(), r.unchanged), (0, 0, 2));

        // Article y edited, x removed, w added: first_seen kept for y.
        let v2 = vec![
            issue("a", vec![article("y", "2"), article("w", "1")]),
            issue("b", vec![article("z", "1")]),
        ];
        let r = store.record_issues(&v2, Tz::UTC, t2).await.unwrap();
        assert_eq!(r.changed, vec!["a"]);
        let seen = store.article_first_seen("a").await.unwrap();
        assert_eq!(
            seen,
            vec![("w".to_string(), stamp(t2)), ("y".to_string(), stamp(t1))]
        );

        let recs = store.issue_records().await.unwrap();
        let a = recs.iter().find(|r| r.slug == "a").unwrap();
        assert_eq!(store.issue_record("a").await.unwrap().as_ref(), Some(a));
        assert_eq!(store.issue_record("nope").await.unwrap(), None);
        assert_eq!(
            (
                a.first_seen_at.as_str(),
                a.updated_at.as_str(),
                a.article_count
            ),
            (stamp(t1).as_str(), stamp(t2).as_str(), 2)
        );
    }

    #[tokio::test]
    async fn held_and_draft_issues_are_recorded_but_not_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        let ny = chrono_tz::America::New_York;
        let t1 = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let mut held = issue("held", vec![article("x", "1")]);
        held.publish_at = Some(crate::content::PublishAt::Local(
            NaiveDate::from_ymd_opt(2026, 12, 20)
                .and_then(|d| d.and_hms_opt(8, 0, 0))
                .unwrap(),
        ));
        let mut draft = issue("draft", vec![article("y", "1")]);
        draft.draft = true;
        let out = issue("out", vec![article("z", "1")]);
        let all = vec![held.clone(), draft.clone(), out];

        let r = store.record_issues(&all, ny, t1).await.unwrap();
        assert_eq!(r.new.len(), 3);
        assert!(r.released.is_empty());
        let public: Vec<String> = store
            .issue_records()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.slug)
            .collect();
        assert_eq!(public, ["out"]);
        assert_eq!(store.issue_record("held").await.unwrap(), None);
        assert_eq!(store.issue_record("draft").await.unwrap(), None);
        let admin = store.all_issue_records().await.unwrap();
        assert_eq!(admin.len(), 3);
        let h = admin.iter().find(|r| r.slug == "held").unwrap();
        // 08:00 EST is 13:00 UTC.
        assert_eq!(
            (h.draft, h.release_at.as_deref(), h.released()),
            (false, Some("2026-12-20T13:00:00Z"), false)
        );
        assert!(admin.iter().any(|r| r.slug == "draft" && r.draft));

        // Same files, the moment passed: released now, first seen kept.
        let t2 = Utc.with_ymd_and_hms(2026, 12, 20, 13, 0, 5).unwrap();
        let r = store.record_issues(&all, ny, t2).await.unwrap();
        assert_eq!((r.released, r.unchanged), (vec!["held".to_string()], 3));
        let h = store.issue_record("held").await.unwrap().unwrap();
        assert_eq!(
            (h.released_at.as_deref(), h.first_seen_at.as_str()),
            (Some(stamp(t2).as_str()), stamp(t1).as_str())
        );

        // A released issue turned into a draft is taken back.
        held.draft = true;
        store.record_issues(&[held], ny, t2).await.unwrap();
        assert_eq!(store.issue_record("held").await.unwrap(), None);
    }
}
