//! Release: when an issue goes out, and which issues are out at a moment.
//!
//! An issue is held until its publication moment: `publish_at` from its
//! issue.toml (a wall-clock time in `publication.timezone`), else the start
//! of its `date` there. A draft is never out. Everything readers or
//! subscribers see (feeds, pages, mail) is built from the issues that are
//! out; `gazette check` and `issues list` see them all.
//!
//! Wall-clock times are turned into instants here, once, with the rules for
//! the nights the clocks change: a time in the hour skipped in spring is
//! released at the first instant after the gap (02:30 on a night that jumps
//! from 02:00 to 03:00 releases at 03:00), and a time in the hour repeated
//! in autumn at its first occurrence.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::content::{Issue, PublishAt};

/// Where an issue stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// `draft = true`: never out.
    Draft,
    /// Out from this moment on; not yet.
    Held(DateTime<Utc>),
    /// Out since this moment.
    Out(DateTime<Utc>),
}

/// The instant a wall-clock time in `tz` stands for: the first instant
/// whose local time is at or after it. That is the time itself on an
/// ordinary day, its first occurrence when the clocks go back, and the end
/// of the gap when they go forward over it.
pub fn local_moment(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => after_gap(tz, local),
    }
}

/// The first whole second whose local time in `tz` is at or after `local`,
/// for a `local` that does not exist (the clocks jumped over it). Zone
/// offsets stay within a day and a few hours, and time-zone transitions fall
/// on whole seconds, so a bisection over seconds finds the transition.
fn after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const SPAN: i64 = 27 * 3600;
    let naive = local.and_utc().timestamp();
    let wall =
        |secs: i64| DateTime::from_timestamp(secs, 0).map(|t| t.with_timezone(&tz).naive_local());
    // wall(lo) < local <= wall(hi)
    let (mut lo, mut hi) = (naive - SPAN, naive + SPAN);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match wall(mid) {
            Some(w) if w < local => lo = mid,
            _ => hi = mid,
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or_else(|| local.and_utc())
}

/// The moment `issue` goes out: its `publish_at`, else the start of its
/// date, in `tz`. (A draft has one too; it is just never reached.)
pub fn moment(issue: &Issue, tz: Tz) -> DateTime<Utc> {
    match issue.publish_at {
        Some(PublishAt::Local(local)) => local_moment(tz, local),
        Some(PublishAt::Exact(t)) => t.with_timezone(&Utc),
        None => local_moment(tz, issue.date.and_time(chrono::NaiveTime::MIN)),
    }
}

/// Where `issue` stands at `now`.
pub fn status(issue: &Issue, tz: Tz, now: DateTime<Utc>) -> Release {
    if issue.draft {
        return Release::Draft;
    }
    let at = moment(issue, tz);
    if at <= now {
        Release::Out(at)
    } else {
        Release::Held(at)
    }
}

/// The issues that are out at `now` (in their order), and the next moment
/// a held one goes out, if any: what a cycle builds from, and when the
/// daemon must look again.
pub fn split(issues: &[Issue], tz: Tz, now: DateTime<Utc>) -> (Vec<Issue>, Option<DateTime<Utc>>) {
    let mut out = Vec::with_capacity(issues.len());
    let mut next: Option<DateTime<Utc>> = None;
    for issue in issues {
        match status(issue, tz, now) {
            Release::Out(_) => out.push(issue.clone()),
            Release::Held(at) => next = Some(next.map_or(at, |n| n.min(at))),
            Release::Draft => {}
        }
    }
    (out, next)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::{Duration, FixedOffset, NaiveDate};

    use super::*;
    use crate::content::ContentHash;

    fn ny() -> Tz {
        chrono_tz::America::New_York
    }

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn issue(date: NaiveDate, publish_at: Option<PublishAt>, draft: bool) -> Issue {
        Issue {
            slug: "i".into(),
            title: "I".into(),
            date,
            number: None,
            volume: None,
            summary: None,
            publication: None,
            dir: PathBuf::from("content/i"),
            articles: Vec::new(),
            hash: ContentHash::of(b"i"),
            draft,
            publish_at,
        }
    }

    /// Tick a simulated clock from `from` to `to` and return the first
    /// tick at which the issue is out, checking that it stays out after.
    fn first_out(
        issue: &Issue,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tick: Duration,
    ) -> Option<DateTime<Utc>> {
        let mut now = from;
        let mut first = None;
        while now <= to {
            match (status(issue, ny(), now), first) {
                (Release::Out(_), None) => first = Some(now),
                (Release::Held(_), Some(f)) => panic!("held again at {now} after out at {f}"),
                _ => {}
            }
            now += tick;
        }
        first
    }

    #[test]
    fn an_ordinary_local_time_is_that_instant() {
        // 08:00 EST = 13:00 UTC.
        assert_eq!(
            local_moment(ny(), local(2026, 12, 20, 8, 0)),
            utc(2026, 12, 20, 13, 0)
        );
        // Without publish_at: the start of the date, local time.
        let i = issue(NaiveDate::from_ymd_opt(2026, 12, 20).unwrap(), None, false);
        assert_eq!(moment(&i, ny()), utc(2026, 12, 20, 5, 0));
        assert_eq!(
            status(&i, ny(), utc(2026, 12, 20, 4, 59)),
            Release::Held(utc(2026, 12, 20, 5, 0))
        );
        assert_eq!(
            status(&i, ny(), utc(2026, 12, 20, 5, 0)),
            Release::Out(utc(2026, 12, 20, 5, 0))
        );
        // An explicit offset is one instant whatever the zone.
        let exact = FixedOffset::east_opt(3600)
            .unwrap()
            .from_local_datetime(&local(2026, 12, 20, 8, 0))
            .unwrap();
        let i = issue(i.date, Some(PublishAt::Exact(exact)), false);
        assert_eq!(moment(&i, ny()), utc(2026, 12, 20, 7, 0));
    }

    #[test]
    fn spring_gap_releases_when_the_clock_jumps() {
        // 2026-03-08 02:00-02:59 does not exist in New York: 02:00 EST is
        // followed by 03:00 EDT (07:00 UTC).
        let at = local(2026, 3, 8, 2, 30);
        assert_eq!(local_moment(ny(), at), utc(2026, 3, 8, 7, 0));
        let i = issue(at.date(), Some(PublishAt::Local(at)), false);
        let from = utc(2026, 3, 8, 5, 0); // midnight EST
        let got = first_out(&i, from, from + Duration::hours(6), Duration::minutes(1));
        assert_eq!(got, Some(utc(2026, 3, 8, 7, 0)), "03:00 EDT");
        // Second by second across the jump: 06:59:59 UTC (01:59:59 EST) is
        // still held, 07:00:00 UTC (03:00:00 EDT) is out.
        let got = first_out(
            &i,
            utc(2026, 3, 8, 6, 59),
            utc(2026, 3, 8, 7, 1),
            Duration::seconds(1),
        );
        assert_eq!(got, Some(utc(2026, 3, 8, 7, 0)));
        // The edges of the gap: 02:00 and 02:59:59 both mean 03:00 EDT;
        // 03:00 itself exists.
        assert_eq!(
            local_moment(ny(), local(2026, 3, 8, 2, 0)),
            utc(2026, 3, 8, 7, 0)
        );
        let last = NaiveDate::from_ymd_opt(2026, 3, 8)
            .and_then(|d| d.and_hms_opt(2, 59, 59))
            .unwrap();
        assert_eq!(local_moment(ny(), last), utc(2026, 3, 8, 7, 0));
        assert_eq!(
            local_moment(ny(), local(2026, 3, 8, 3, 0)),
            utc(2026, 3, 8, 7, 0)
        );
        assert_eq!(
            local_moment(ny(), local(2026, 3, 8, 1, 59)),
            utc(2026, 3, 8, 6, 59)
        );
    }

    #[test]
    fn autumn_repeated_hour_releases_at_the_first_occurrence() {
        // 2026-11-01 01:00-01:59 happens twice in New York: first EDT
        // (05:00-05:59 UTC), then EST (06:00-06:59 UTC).
        let at = local(2026, 11, 1, 1, 30);
        assert_eq!(local_moment(ny(), at), utc(2026, 11, 1, 5, 30));
        let i = issue(at.date(), Some(PublishAt::Local(at)), false);
        let from = utc(2026, 11, 1, 4, 0); // midnight EDT
        let got = first_out(&i, from, from + Duration::hours(6), Duration::minutes(1));
        assert_eq!(
            got,
            Some(utc(2026, 11, 1, 5, 30)),
            "01:30 EDT, not 01:30 EST"
        );
    }

    #[test]
    fn drafts_are_never_out_and_split_finds_the_next_moment() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let now = utc(2026, 12, 2, 12, 0);
        let mut old = issue(day, None, false);
        old.slug = "old".into();
        let mut draft = issue(day, None, true);
        draft.slug = "draft".into();
        assert_eq!(status(&draft, ny(), now), Release::Draft);
        let mut later = issue(
            day,
            Some(PublishAt::Local(local(2026, 12, 20, 8, 0))),
            false,
        );
        later.slug = "later".into();
        let mut sooner = issue(day, Some(PublishAt::Local(local(2026, 12, 5, 8, 0))), false);
        sooner.slug = "sooner".into();
        let (out, next) = split(&[later, old, draft, sooner], ny(), now);
        let slugs: Vec<&str> = out.iter().map(|i| i.slug.as_str()).collect();
        assert_eq!(slugs, ["old"]);
        assert_eq!(next, Some(utc(2026, 12, 5, 13, 0)));
    }
}
