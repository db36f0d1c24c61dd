//! Listing and searching the roster, fast at a million rows.
//!
//! Pages are keyset pages in id order (`id > after ORDER BY id LIMIT n+1`):
//! each page costs the same however deep it is, and a row added or erased
//! between two pages neither repeats nor hides another. A search of 3
//! characters or more goes through the trigram index of migration 0009
//! (`subscribers_fts`), which SQLite walks in rowid order, so the first page
//! of a search that matches half the list stops after a page too. Shorter
//! needles have no trigram to look up: they scan in id order and stop once
//! the page is full. Counting a search stops at [`SEARCH_COUNT_CAP`] matches
//! (a short needle is not counted beyond its page: counting 1000 matches of
//! two letters found in one name in fifty reads 50,000 rows, 55 ms at a
//! million), so no request reads every match to print a number; the count
//! of a plain listing is read from `subscriber_counts`, kept by triggers. A
//! short needle that few rows hold still reads the whole table to find
//! them (about a second at a million): the one search that is not fast.

use sqlx::{QueryBuilder, Sqlite};

use super::{SubscriberRecord, record};
use crate::store::{Store, StoreError};
use crate::subscribers::Status;

/// A search counts its matches up to this many, then says "at least".
pub const SEARCH_COUNT_CAP: u64 = 1000;

/// Which subscribers to list, and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberQuery {
    pub status: Option<Status>,
    /// A piece of the address or the name, any case (Unicode), taken
    /// literally (no wildcards); blank is no search.
    pub search: Option<String>,
    /// Only subscribers with a larger id: the `next` of the page before.
    pub after: Option<i64>,
    /// Rows to skip before the page: the admin API's `page` number. Costs a
    /// read of every skipped row; `after` costs nothing, prefer it.
    pub skip: u64,
    /// Rows per page (at least 1).
    pub limit: u32,
}

/// How many subscribers match a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "count", rename_all = "snake_case")]
pub enum Total {
    Exact(u64),
    /// A search that matched more than [`SEARCH_COUNT_CAP`]: at least this many.
    AtLeast(u64),
}

impl Total {
    /// The number, exact or not.
    pub fn count(self) -> u64 {
        match self {
            Total::Exact(n) | Total::AtLeast(n) => n,
        }
    }

    pub fn is_exact(self) -> bool {
        matches!(self, Total::Exact(_))
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberPage {
    pub items: Vec<SubscriberRecord>,
    /// The `after` of the next page; `None` on the last page.
    pub next: Option<i64>,
    pub total: Total,
}

/// A search needle as both paths need it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Needle {
    /// 3 characters or more: an FTS5 phrase query (the trigram tokenizer
    /// folds case through Unicode itself).
    Trigram(String),
    /// 1 or 2 characters: the lowercased needle, matched against
    /// `email_key` (stored lowercased), and every upper/lower spelling of
    /// it, matched against the name as given.
    Short {
        lower: String,
        spellings: Vec<String>,
    },
}

impl Needle {
    fn new(search: Option<&str>) -> Option<Needle> {
        let lower = search?.trim().to_lowercase();
        if lower.is_empty() {
            return None;
        }
        if lower.chars().count() >= 3 {
            return Some(Needle::Trigram(phrase(&lower)));
        }
        let spellings = spellings(&lower);
        Some(Needle::Short { lower, spellings })
    }
}

/// An FTS5 string literal: the whole needle as one phrase, `"` doubled, so
/// no character of it is query syntax (`AND`, `*`, `^`, `:`, parentheses).
fn phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

/// Every way a short needle can be cased, one character lower or upper at
/// a time: 2 spellings for one character, 4 for two. SQLite's own `lower()`
/// folds only ASCII, and registering a Unicode collation on every pooled
/// connection is more machinery than two characters need; `instr` over
/// these spellings is exact for every character whose case mapping is one
/// upper and one lower form (all of Latin, Greek, Cyrillic, Armenian…).
fn spellings(lower: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for c in lower.chars() {
        let forms: Vec<String> = {
            let l: String = c.to_lowercase().collect();
            let u: String = c.to_uppercase().collect();
            if l == u { vec![l] } else { vec![l, u] }
        };
        out = out
            .iter()
            .flat_map(|prefix| forms.iter().map(move |f| format!("{prefix}{f}")))
            .collect();
    }
    out.sort();
    out.dedup();
    out
}

/// The part of a query that says which rows match, after `WHERE`: listed
/// (not erased) rows of the status, matching the needle. `s` is the
/// subscribers table; with a trigram needle the FTS table is joined before.
fn push_filter(qb: &mut QueryBuilder<Sqlite>, status: Option<Status>, needle: Option<&Needle>) {
    // Literally `s.erased_at IS NULL`: the partial index of migration 0009
    // is used only for a query that says what its WHERE says.
    qb.push("s.erased_at IS NULL");
    if let Some(st) = status {
        qb.push(" AND s.status = ").push_bind(st.as_str());
    }
    match needle {
        None => {}
        Some(Needle::Trigram(p)) => {
            qb.push(" AND subscribers_fts MATCH ").push_bind(p.clone());
        }
        Some(Needle::Short { lower, spellings }) => {
            qb.push(" AND (instr(s.email_key, ")
                .push_bind(lower.clone())
                .push(") > 0");
            for sp in spellings {
                qb.push(" OR instr(s.name, ")
                    .push_bind(sp.clone())
                    .push(") > 0");
            }
            qb.push(")");
        }
    }
}

/// `FROM` for a needle: the trigram index first (CROSS JOIN keeps SQLite
/// from starting at the status index and probing the index per row), then
/// the row by its id.
fn from(needle: Option<&Needle>) -> &'static str {
    match needle {
        Some(Needle::Trigram(_)) => {
            " FROM subscribers_fts CROSS JOIN subscribers s ON s.id = subscribers_fts.rowid WHERE "
        }
        _ => " FROM subscribers s WHERE ",
    }
}

/// The column pages are ordered and cut by. With the trigram index it is
/// the index's rowid (the same number as `s.id`): SQLite knows the FTS5
/// table hands rows out in rowid order, and gives it `rowid > after` to
/// start from, where `s.id` would make it collect and sort every match.
fn key(needle: Option<&Needle>) -> &'static str {
    match needle {
        Some(Needle::Trigram(_)) => "subscribers_fts.rowid",
        _ => "s.id",
    }
}

impl Store {
    /// One page of subscribers (never erased ones) in id order (sign-up
    /// order for all but hand-edited rows), filtered by status and search
    /// text, with how many match (see the module comment).
    #[tracing::instrument(skip(self, q), fields(status = ?q.status, after = ?q.after, limit = q.limit))]
    pub async fn subscriber_page(&self, q: &SubscriberQuery) -> Result<SubscriberPage, StoreError> {
        let needle = Needle::new(q.search.as_deref());
        let limit = i64::from(q.limit.max(1));
        // One read transaction: the count and the page agree.
        let mut tx = self.pool.begin().await?;

        let mut qb = QueryBuilder::new(concat!(
            "SELECT s.id, s.email, s.name, s.status, s.format, s.created_at, s.confirmed_at, ",
            "s.unsubscribed_at, s.bounced_at"
        ));
        qb.push(from(needle.as_ref()));
        push_filter(&mut qb, q.status, needle.as_ref());
        let key = key(needle.as_ref());
        if let Some(after) = q.after {
            qb.push(format!(" AND {key} > ")).push_bind(after);
        }
        qb.push(format!(" ORDER BY {key} LIMIT "))
            .push_bind(limit + 1)
            .push(" OFFSET ")
            .push_bind(i64::try_from(q.skip).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&mut *tx).await?;
        let mut items = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            items.last().map(|s| s.id)
        } else {
            None
        };

        let total = match &needle {
            // Kept by triggers (migration 0009): no count of the rows.
            None => {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COALESCE(SUM(n), 0) FROM subscriber_counts WHERE $1 IS NULL OR status = $1",
                )
                .bind(q.status.map(Status::as_str))
                .fetch_one(&mut *tx)
                .await?;
                Total::Exact(u64::try_from(n).unwrap_or(0))
            }
            // No index: a count would scan the rows the page already
            // scanned, and, for a needle that few rows hold, the whole
            // table a second time. The page says what it saw.
            Some(Needle::Short { .. }) => {
                let page = u64::try_from(items.len()).unwrap_or(0);
                if more || q.after.is_some() || q.skip > 0 {
                    Total::AtLeast(page)
                } else {
                    Total::Exact(page)
                }
            }
            Some(n) => {
                let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1");
                qb.push(from(Some(n)));
                push_filter(&mut qb, q.status, Some(n));
                let cap = i64::try_from(SEARCH_COUNT_CAP).unwrap_or(i64::MAX);
                qb.push(" LIMIT ").push_bind(cap + 1).push(")");
                let (n,): (i64,) = qb.build_query_as().fetch_one(&mut *tx).await?;
                let n = u64::try_from(n).unwrap_or(0);
                if n > SEARCH_COUNT_CAP {
                    Total::AtLeast(SEARCH_COUNT_CAP)
                } else {
                    Total::Exact(n)
                }
            }
        };
        tx.commit().await?;
        Ok(SubscriberPage { items, next, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_needles_get_every_casing_and_long_ones_a_quoted_phrase() {
        assert_eq!(Needle::new(Some("  ")), None);
        assert_eq!(Needle::new(None), None);
        assert_eq!(
            Needle::new(Some(" Éa ")),
            Some(Needle::Short {
                lower: "éa".into(),
                spellings: vec!["ÉA".into(), "Éa".into(), "éA".into(), "éa".into()],
            })
        );
        assert_eq!(
            Needle::new(Some("%")),
            Some(Needle::Short {
                lower: "%".into(),
                spellings: vec!["%".into()],
            })
        );
        assert_eq!(
            Needle::new(Some("Say \"hi\" OR *")),
            Some(Needle::Trigram("\"say \"\"hi\"\" or *\"".into()))
        );
        // Characters, not bytes: "ØS" is two characters (four bytes).
        assert!(matches!(
            Needle::new(Some("ØS")),
            Some(Needle::Short { .. })
        ));
        assert!(matches!(Needle::new(Some("ØST")), Some(Needle::Trigram(_))));
    }
}
