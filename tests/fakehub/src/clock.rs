//! Wall-clock time in the two forms the Hub API speaks: unix seconds (JWT claims, rate-limit
//! headers) and RFC 3339 timestamps (token objects).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

/// Seconds since the unix epoch.
pub fn unix_now() -> u64 {
    unix(SystemTime::now())
}

/// Seconds since the unix epoch of `at`, rounded up so that a deadline is never reported early.
pub fn unix_ceil(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    since.as_secs() + u64::from(since.subsec_nanos() > 0)
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Formats a timestamp the way the Hub (a Django REST framework service) does: UTC with `Z`,
/// and microseconds only when there are any, so `2030-01-01T00:00:00Z` sent by a client comes
/// back unchanged.
pub fn format(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    match at.microsecond() {
        0 => format!("{base}Z"),
        micros => format!("{base}.{micros:06}Z"),
    }
}

/// Parses an RFC 3339 timestamp (any offset).
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_trip_unchanged() {
        let text = "2030-01-01T00:00:00Z";
        assert_eq!(format(parse(text).unwrap()), text);
    }

    #[test]
    fn offsets_become_utc_with_microseconds() {
        let at = parse("2030-01-01T02:00:00.5+02:00").unwrap();
        assert_eq!(format(at), "2030-01-01T00:00:00.500000Z");
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse("tomorrow").is_none());
        assert!(parse("2030-01-01").is_none());
    }

    #[test]
    fn deadlines_round_up() {
        let at = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(unix_ceil(at), 2);
        assert_eq!(unix_ceil(UNIX_EPOCH + Duration::from_secs(7)), 7);
    }
}
