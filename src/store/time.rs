//! Time stamps as the store writes and reads them.
//!
//! Every time in the database is RFC 3339 text in UTC with a `Z`, at one
//! fixed precision per kind of row, so that SQL compares them as text and
//! text order is time order: [`stamp`] (whole seconds) for subscribers,
//! issues, confirmations and suppressions, [`ledger_time`] (milliseconds)
//! for the delivery ledger, whose rows change many times a second.

use chrono::{DateTime, SecondsFormat, Utc};

/// Subscriber, issue, confirmation and suppression time stamps, to the
/// second: `2026-03-29T01:30:00Z`.
pub(super) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Ledger time stamps: one fixed format, so text order is time order:
/// `2026-03-29T01:30:00.250Z`.
pub fn ledger_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A stored time stamp (either precision) read back; `None` when the text
/// is not RFC 3339.
pub(super) fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn stamps_have_one_width_so_text_order_is_time_order() {
        let t = Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap()
            + chrono::Duration::milliseconds(250);
        assert_eq!(stamp(t), "2026-03-29T01:30:00Z");
        assert_eq!(ledger_time(t), "2026-03-29T01:30:00.250Z");
        let on_the_second = Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap();
        assert_eq!(ledger_time(on_the_second), "2026-03-29T01:30:00.000Z");

        let times = [
            Utc.with_ymd_and_hms(999, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            t,
            t + chrono::Duration::milliseconds(1),
            Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap(),
        ];
        for pair in times.windows(2) {
            assert!(ledger_time(pair[0]) < ledger_time(pair[1]), "{pair:?}");
            assert!(stamp(pair[0]) <= stamp(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn stored_stamps_read_back() {
        let t = Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap()
            + chrono::Duration::milliseconds(7);
        assert_eq!(parse(&ledger_time(t)), Some(t));
        assert_eq!(
            parse(&stamp(t)),
            Some(t - chrono::Duration::milliseconds(7))
        );
        assert_eq!(
            parse("2026-10-25T02:30:00+01:00"),
            Some(Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap())
        );
        assert_eq!(parse("2026-10-25 01:30:00"), None);
        assert_eq!(parse(""), None);
    }
}
