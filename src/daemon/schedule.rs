//! When the daemon cycles: a 5-field crontab in the publication's time zone.
//!
//! The daemon remembers the last slot it served and asks [`Schedule::step`]
//! what to do next. That one rule gives both guarantees the contract asks
//! for:
//! - every slot fires at most once, also on the night the clocks go back
//!   (croner walks absolute time, so a repeated 01:30 is one slot, not two);
//! - slots missed while the process slept, was suspended or ran a long cycle
//!   make *one* catch-up cycle, labelled with the newest missed slot.
//!
//! A held issue's publication moment is a reason to cycle too, between
//! slots ([`Schedule::step_with_release`]): the daemon waits for whichever
//! comes first. That moment is already an instant (see [`crate::release`]
//! for the nights the clocks change), so no wall-clock rule applies here.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A cron expression bound to a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

/// A cron expression that [`Schedule::new`] refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// What `config::parse_cron` said about the expression.
    #[error("{0}")]
    Cron(String),
}

/// What the daemon does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Cycle now for this slot (the newest one that is due; older missed
    /// slots are folded into it).
    Run(DateTime<Utc>),
    /// No slot is due, but a held issue's publication moment (this one)
    /// has come: cycle now without consuming a slot.
    Release(DateTime<Utc>),
    /// Nothing is due before this time.
    Wait(DateTime<Utc>),
    /// The expression never matches again (e.g. "0 0 30 2 *").
    Never,
}

impl Schedule {
    /// `expr` must already have passed `config::parse_cron`.
    pub fn new(expr: &str, tz: Tz) -> Result<Schedule, ScheduleError> {
        Ok(Schedule {
            cron: crate::config::parse_cron(expr).map_err(ScheduleError::Cron)?,
            tz,
        })
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The newest slot at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Given the last slot served, what to do at `now`.
    pub fn step(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Step {
        match self.next_after(last) {
            None => Step::Never,
            Some(next) if next > now => Step::Wait(next),
            Some(next) => Step::Run(self.latest_at_or_before(now).unwrap_or(next).max(next)),
        }
    }

    /// [`Schedule::step`], also waking for `release`, the next moment a
    /// held issue goes out (as the last cycle found it): a slot that is due
    /// runs (that cycle releases it too); else a moment that has come is a
    /// cycle of its own; else wait for whichever comes first.
    pub fn step_with_release(
        &self,
        last: DateTime<Utc>,
        now: DateTime<Utc>,
        release: Option<DateTime<Utc>>,
    ) -> Step {
        match (self.step(last, now), release) {
            (step @ Step::Run(_), _) | (step, None) => step,
            (_, Some(at)) if at <= now => Step::Release(at),
            (Step::Wait(next), Some(at)) => Step::Wait(next.min(at)),
            (_, Some(at)) => Step::Wait(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate, TimeZone};

    fn ny() -> Tz {
        "America/New_York".parse().unwrap()
    }

    fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Drive the daemon's rule with a clock that ticks every `tick` from
    /// `from` to `to`, as the real loop would (it wakes at least that often).
    fn fires(
        s: &Schedule,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tick: Duration,
    ) -> Vec<DateTime<Utc>> {
        let mut last = from;
        let mut now = from;
        let mut out = Vec::new();
        while now <= to {
            if let Step::Run(slot) = s.step(last, now) {
                out.push(slot);
                last = slot;
            }
            now += tick;
        }
        out
    }

    #[test]
    fn sunday_is_zero() {
        let s = Schedule::new("0 9 * * 0", ny()).unwrap();
        // Saturday 2026-11-28 noon -> Sunday 2026-11-29 09:00 New York.
        let next = s.next_after(local(ny(), 2026, 11, 28, 12, 0)).unwrap();
        assert_eq!(next, local(ny(), 2026, 11, 29, 9, 0));
        assert_eq!(
            next.with_timezone(&ny()).date_naive(),
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
        );
    }

    #[test]
    fn every_quarter_hour_fires_once_per_slot() {
        let s = Schedule::new("*/15 * * * *", ny()).unwrap();
        let from = local(ny(), 2026, 6, 1, 0, 0);
        let got = fires(&s, from, from + Duration::hours(2), Duration::seconds(20));
        assert_eq!(got.len(), 8, "{got:?}");
        for w in got.windows(2) {
            assert_eq!(w[1] - w[0], Duration::minutes(15));
        }
    }

    #[test]
    fn autumn_night_repeated_hour_fires_once() {
        // 2026-11-01 01:00-01:59 happens twice in New York.
        let s = Schedule::new("30 1 * * *", ny()).unwrap();
        let from = local(ny(), 2026, 10, 31, 12, 0);
        let got = fires(&s, from, from + Duration::hours(48), Duration::minutes(1));
        assert_eq!(got.len(), 2, "one on Nov 1, one on Nov 2: {got:?}");
        let days: Vec<_> = got
            .iter()
            .map(|t| t.with_timezone(&ny()).date_naive())
            .collect();
        assert_eq!(days[0], NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(days[1], NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
        // Every quarter hour through the repeated hour: absolute time, so the
        // second 01:00-01:45 are new slots, 15 minutes apart, never the same
        // instant twice.
        let q = Schedule::new("*/15 * * * *", ny()).unwrap();
        let start = local(ny(), 2026, 11, 1, 0, 0);
        let got = fires(&q, start, start + Duration::hours(4), Duration::minutes(1));
        assert_eq!(got.len(), 16, "4 real hours, 3 on the wall clock: {got:?}");
        for w in got.windows(2) {
            assert_eq!(w[1] - w[0], Duration::minutes(15), "{got:?}");
        }
    }

    #[test]
    fn spring_night_missing_hour_fires_once() {
        // 2026-03-08 02:00-02:59 does not exist in New York.
        let s = Schedule::new("30 2 * * *", ny()).unwrap();
        let from = local(ny(), 2026, 3, 7, 12, 0);
        let got = fires(&s, from, from + Duration::hours(48), Duration::minutes(1));
        let days: Vec<_> = got
            .iter()
            .map(|t| t.with_timezone(&ny()).date_naive())
            .collect();
        assert_eq!(
            days,
            vec![
                NaiveDate::from_ymd_opt(2026, 3, 8).unwrap(),
                NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()
            ],
            "{got:?}"
        );
        // The skipped 02:30 runs when the clock jumps, at 03:00 EDT.
        assert_eq!(got[0], local(ny(), 2026, 3, 8, 3, 0), "{got:?}");
    }

    #[test]
    fn missed_slots_make_one_catch_up() {
        let s = Schedule::new("*/15 * * * *", ny()).unwrap();
        let last = local(ny(), 2026, 6, 1, 9, 0);
        // Down from 09:00 to 13:07: sixteen slots missed, one cycle, for 13:00.
        let now = local(ny(), 2026, 6, 1, 13, 7);
        assert_eq!(s.step(last, now), Step::Run(local(ny(), 2026, 6, 1, 13, 0)));
        // After it, wait for 13:15.
        let slot = local(ny(), 2026, 6, 1, 13, 0);
        assert_eq!(
            s.step(slot, now),
            Step::Wait(local(ny(), 2026, 6, 1, 13, 15))
        );
    }

    /// The daemon's loop against a simulated clock and a content folder
    /// holding issues due at `moments`: each cycle lets out every issue
    /// whose moment has passed and reports the next one, as
    /// `cycle::run` does. Returns (kind, time) of every cycle.
    fn cycles_with_held(
        s: &Schedule,
        moments: &[DateTime<Utc>],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tick: Duration,
    ) -> Vec<(&'static str, DateTime<Utc>)> {
        let next_after = |now: DateTime<Utc>| moments.iter().copied().filter(|m| *m > now).min();
        let mut last = s.latest_at_or_before(from).unwrap_or(from);
        // The start cycle.
        let mut release = next_after(from);
        let mut now = from;
        let mut out = Vec::new();
        while now <= to {
            let step = s.step_with_release(last, now, release);
            match step {
                Step::Run(slot) => {
                    last = slot;
                    out.push(("slot", now));
                }
                Step::Release(_) => out.push(("release", now)),
                Step::Wait(until) => {
                    // The loop sleeps until then; it never sleeps past it.
                    assert!(until > now, "{until} <= {now}");
                    if let Some(r) = release {
                        assert!(until <= r, "sleeps past a held issue's moment");
                    }
                }
                Step::Never => {}
            }
            if matches!(step, Step::Run(_) | Step::Release(_)) {
                release = next_after(now);
            }
            now += tick;
        }
        out
    }

    #[test]
    fn wakes_for_held_issues_between_slots_on_dst_nights() {
        // Once a year: only the held issues can wake the daemon.
        let s = Schedule::new("0 0 1 1 *", ny()).unwrap();
        let spring = crate::release::local_moment(
            ny(),
            NaiveDate::from_ymd_opt(2026, 3, 8)
                .and_then(|d| d.and_hms_opt(2, 30, 0))
                .unwrap(),
        );
        let autumn = crate::release::local_moment(
            ny(),
            NaiveDate::from_ymd_opt(2026, 11, 1)
                .and_then(|d| d.and_hms_opt(1, 30, 0))
                .unwrap(),
        );
        // Spring: one cycle, when the clock jumps to 03:00 EDT.
        let from = local(ny(), 2026, 3, 7, 23, 0);
        let got = cycles_with_held(
            &s,
            &[spring],
            from,
            from + Duration::hours(6),
            Duration::seconds(10),
        );
        assert_eq!(got, vec![("release", local(ny(), 2026, 3, 8, 3, 0))]);
        // Autumn: one cycle, at the first 01:30 (EDT), none at the second.
        let from = local(ny(), 2026, 10, 31, 23, 0);
        let got = cycles_with_held(
            &s,
            &[autumn],
            from,
            from + Duration::hours(6),
            Duration::seconds(10),
        );
        assert_eq!(
            got,
            vec![(
                "release",
                Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0).unwrap()
            )]
        );
    }

    #[test]
    fn a_slot_and_a_release_together_make_one_cycle() {
        let s = Schedule::new("0 * * * *", ny()).unwrap();
        let from = local(ny(), 2026, 6, 1, 8, 30);
        let at = local(ny(), 2026, 6, 1, 9, 0);
        let between = local(ny(), 2026, 6, 1, 9, 20);
        let got = cycles_with_held(
            &s,
            &[at, between],
            from,
            local(ny(), 2026, 6, 1, 10, 0),
            Duration::minutes(1),
        );
        assert_eq!(
            got,
            vec![
                ("slot", at),
                ("release", between),
                ("slot", local(ny(), 2026, 6, 1, 10, 0))
            ]
        );
        // A moment already past (the cycle for it failed, say) is due at once.
        assert_eq!(
            s.step_with_release(from, from, Some(from - Duration::hours(1))),
            Step::Release(from - Duration::hours(1))
        );
        assert_eq!(s.step_with_release(from, from, None), s.step(from, from));
    }

    #[test]
    fn impossible_date_never_fires() {
        let s = Schedule::new("0 0 30 2 *", ny()).unwrap();
        assert_eq!(s.step(Utc::now(), Utc::now()), Step::Never);
    }

    #[test]
    fn a_refused_expression_says_why() {
        let e = Schedule::new("0 0 9 * * 0", ny()).unwrap_err();
        assert!(
            e.to_string().contains("has 6 fields; use the standard 5"),
            "{e}"
        );
        let e = Schedule::new("61 * * * *", ny()).unwrap_err();
        assert!(
            e.to_string().contains("is not a valid cron expression"),
            "{e}"
        );
    }
}
