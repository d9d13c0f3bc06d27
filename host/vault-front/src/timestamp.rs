//! The moments of a lease (issued, renewed, ends, next revocation attempt), kept to the
//! nanosecond as OpenBao keeps them, and written as Go writes a `time.Time` in JSON
//! (RFC 3339 with the fraction's trailing zeros cut), so that `bao lease lookup` and every
//! client that parses OpenBao's answers read ours alike.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A moment after the Unix epoch, to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Duration);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }

    pub fn from_secs(secs: u64) -> Timestamp {
        Timestamp(Duration::from_secs(secs))
    }

    /// Whole seconds since the epoch.
    pub fn secs(self) -> u64 {
        self.0.as_secs()
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.subsec_nanos()
    }

    pub fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(Duration::from_secs(secs)))
    }

    /// How long from `earlier` until this moment; zero if it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// Whole seconds from `now` rounded to the second until this moment, negative once it
    /// has passed: OpenBao's lease `ttl` (`ExpireTime.Sub(time.Now().Round(time.Second))`,
    /// cut toward zero to an `int64` of seconds).
    pub fn ttl_from(self, now: Timestamp) -> i64 {
        let nanos = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
        let second = 1_000_000_000_i128;
        let now = nanos(now.0);
        let rounded = (now + second / 2) / second * second;
        i64::try_from((nanos(self.0) - rounded) / second).unwrap_or(i64::MAX)
    }
}

/// Go's `time.RFC3339Nano` in UTC, what `time.Time.MarshalJSON` writes:
/// `2026-12-01T02:48:41.251317885Z`, `…41.25Z`, and `…41Z` for a whole second.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.secs()))
                .to_string();
        let nanos = self.subsec_nanos();
        if nanos == 0 {
            return f.write_str(&seconds);
        }
        let fraction = format!("{nanos:09}");
        let whole = seconds.trim_end_matches('Z');
        write!(f, "{whole}.{}Z", fraction.trim_end_matches('0'))
    }
}

/// Stored as `[seconds, nanoseconds]`; stores written before nanoseconds were kept hold
/// whole seconds, which are read as such.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.secs(), self.subsec_nanos()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Seconds(u64),
            Precise(u64, u32),
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Seconds(secs) => Timestamp::from_secs(secs),
            Stored::Precise(secs, nanos) if nanos < 1_000_000_000 => {
                Timestamp(Duration::new(secs, nanos))
            }
            Stored::Precise(_, nanos) => {
                return Err(serde::de::Error::custom(format!(
                    "{nanos} nanoseconds is not a fraction of a second"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_counts_as_openbao_does() {
        let at = |secs: u64, nanos: u32| Timestamp(Duration::new(secs, nanos));
        let expire = at(1000, 0);
        assert_eq!(expire.ttl_from(at(900, 0)), 100);
        // Now is rounded to the second first: 900.4 → 900, 900.5 → 901.
        assert_eq!(expire.ttl_from(at(900, 400_000_000)), 100);
        assert_eq!(expire.ttl_from(at(900, 500_000_000)), 99);
        assert_eq!(at(1000, 700_000_000).ttl_from(at(900, 0)), 100);
        // Past the end: negative, cut toward zero.
        assert_eq!(expire.ttl_from(at(1007, 0)), -7);
        assert_eq!(at(1000, 300_000_000).ttl_from(at(1007, 0)), -6);
        assert_eq!(expire.ttl_from(expire), 0);
    }

    #[test]
    fn written_as_go_writes_a_time_in_json() {
        let at = |secs, nanos| Timestamp(Duration::new(secs, nanos)).to_string();
        assert_eq!(
            at(1_796_093_321, 251_317_885),
            "2026-12-01T02:48:41.251317885Z"
        );
        assert_eq!(at(1_796_093_321, 250_000_000), "2026-12-01T02:48:41.25Z");
        assert_eq!(at(1_796_093_321, 1), "2026-12-01T02:48:41.000000001Z");
        assert_eq!(at(1_796_093_321, 0), "2026-12-01T02:48:41Z");
    }

    #[test]
    fn stored_to_the_nanosecond_and_read_from_older_whole_seconds() {
        let precise = Timestamp(Duration::new(1_796_093_321, 251_317_885));
        let text = serde_json::to_string(&precise).unwrap();
        assert_eq!(text, "[1796093321,251317885]");
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), precise);
        assert_eq!(
            serde_json::from_str::<Timestamp>("1796093321").unwrap(),
            Timestamp::from_secs(1_796_093_321)
        );
        assert!(serde_json::from_str::<Timestamp>("[1, 1000000000]").is_err());
        assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
    }
}
