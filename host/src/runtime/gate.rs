//! One "not before" for the upstream origin, shared by every request of the runtime.
//!
//! When the upstream refuses a request for a while (429, or 503 with `Retry-After`), it
//! means the client, not that one request: RFC 9110 §10.2.3 and §15.5.30 (429, RFC 6585 §4).
//! So the refusal closes one gate, and every outgoing request of every instance (logins,
//! creations, listings, deletions alike) waits at it until the latest time the upstream
//! named. A request whose call would run out of time before the gate opens fails at once
//! with [`Closed`] instead of holding its instance until the time limit.
//!
//! The time is counted from when the refusal was received, as RFC 9110 says for
//! `Retry-After: <seconds>`; never from an earlier estimate, since a guessed-early reopening
//! sends requests the upstream asked not to get.

use http::HeaderMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest wait a refusal can impose. Docker Hub's API limits count requests per minute
/// (its OpenAPI description, tag `rate-limiting`), so a `Retry-After` of its own never needs
/// longer. A longer one (anti-abuse, a proxy, a bogus value) is held for this long and then
/// tried again: held whole, it would stop every revocation due meanwhile and so keep tokens
/// alive past their leases, up to their expiry at the Hub.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The wait after a 429 that names no time: the shortest `Retry-After` can express.
const UNNAMED_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct UpstreamGate {
    /// Closed until then; `None` or a past instant: open.
    open_at: Mutex<Option<Instant>>,
}

/// The gate opens after the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Closed {
    /// How long after now the gate opens.
    pub opens_in: Duration,
}

impl UpstreamGate {
    /// When requests may go out again; `None` if they may now.
    pub(super) fn open_at(&self, now: Instant) -> Option<Instant> {
        let open_at = *self.open_at.lock().unwrap_or_else(|p| p.into_inner());
        open_at.filter(|at| *at > now)
    }

    /// Wait until the gate is open. Fails at once, without waiting, if it opens after
    /// `deadline`. Re-checks after every wait: a refusal received meanwhile moves the
    /// opening later.
    pub(super) async fn pass(&self, deadline: Instant) -> Result<(), Closed> {
        loop {
            let now = Instant::now();
            let Some(at) = self.open_at(now) else {
                return Ok(());
            };
            if at > deadline {
                return Err(Closed { opens_in: at - now });
            }
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// The upstream refused a request: closed until `until`, or later if an earlier
    /// refusal said so.
    pub(super) fn close_until(&self, until: Instant) {
        let mut open_at = self.open_at.lock().unwrap_or_else(|p| p.into_inner());
        *open_at = Some(open_at.map_or(until, |at| at.max(until)));
    }
}

/// Until when a response asks for no further requests: for a 429 or a 503, the first of
/// `Retry-After` (seconds, or an HTTP-date), `X-Retry-After` (unix seconds, an older
/// convention) and, for a 429 only, `X-RateLimit-Reset` (unix seconds, when the rate-limit
/// window ends); a 429 naming none waits [`UNNAMED_WAIT`]. `received` and `wall` are the
/// same moment on the two clocks. `None` for every other response, and for a 503 that
/// names no time (an outage, not a request to slow down). At most [`MAX_WAIT`] away; a longer
/// wait asked for is logged as a warning.
pub(super) fn refused_until(
    status: u16,
    headers: &HeaderMap,
    received: Instant,
    wall: SystemTime,
) -> Option<Instant> {
    if status != 429 && status != 503 {
        return None;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let unix = |name: &str| {
        header(name)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
    };
    let until_wall = |at: SystemTime| at.duration_since(wall).unwrap_or(Duration::ZERO);
    let wait = header("retry-after")
        .and_then(|v| match v.parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            // Seconds too many for a u64: a wait past the cap like any other.
            Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Some(Duration::MAX),
            Err(_) => httpdate::parse_http_date(v).ok().map(until_wall),
        })
        .or_else(|| unix("x-retry-after").map(until_wall))
        .or_else(|| {
            (status == 429)
                .then(|| unix("x-ratelimit-reset").map(until_wall))
                .flatten()
        })
        .or((status == 429).then_some(UNNAMED_WAIT))?;
    if wait > MAX_WAIT {
        tracing::warn!(
            status,
            asked_seconds = wait.as_secs(),
            held_seconds = MAX_WAIT.as_secs(),
            "the upstream asked for no requests for longer than its per-minute rate limits \
             explain; holding requests for the shorter time, so that revocations due \
             meanwhile are not held past their leases"
        );
    }
    Some(received + wait.min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECOND: Duration = Duration::from_secs(1);

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// `refused_until` as a wait from the moment of receipt.
    fn wait(status: u16, pairs: &[(&'static str, &str)], wall: SystemTime) -> Option<Duration> {
        let received = Instant::now();
        refused_until(status, &headers(pairs), received, wall).map(|at| at - received)
    }

    #[test]
    fn retry_after_in_seconds_counts_from_receipt() {
        let wall = SystemTime::now();
        assert_eq!(wait(429, &[("retry-after", "3")], wall), Some(3 * SECOND));
        assert_eq!(
            wait(503, &[("retry-after", " 45 ")], wall),
            Some(45 * SECOND)
        );
        assert_eq!(
            wait(429, &[("retry-after", "0")], wall),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_as_an_http_date() {
        // 1994-11-06 08:49:37 UTC, RFC 9110's example, in all three forms it allows.
        let example = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let wall = example - 5 * SECOND;
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                wait(429, &[("retry-after", date)], wall),
                Some(5 * SECOND),
                "{date}"
            );
        }
        // A date already past: no wait, but the refusal still counts.
        assert_eq!(
            wait(
                429,
                &[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")],
                example + SECOND
            ),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn the_older_headers_when_retry_after_is_missing() {
        let wall = UNIX_EPOCH + Duration::from_millis(1_000_000_000_500);
        let in_ten = "1000000010";
        assert_eq!(
            wait(429, &[("x-retry-after", in_ten)], wall),
            Some(Duration::from_millis(9_500))
        );
        assert_eq!(
            wait(429, &[("x-ratelimit-reset", in_ten)], wall),
            Some(Duration::from_millis(9_500))
        );
        assert_eq!(
            wait(
                429,
                &[
                    ("retry-after", "2"),
                    ("x-retry-after", in_ten),
                    ("x-ratelimit-reset", in_ten)
                ],
                wall
            ),
            Some(2 * SECOND),
            "Retry-After first"
        );
        // The rate-limit window says nothing about an outage.
        assert_eq!(wait(503, &[("x-ratelimit-reset", in_ten)], wall), None);
        assert_eq!(
            wait(503, &[("x-retry-after", in_ten)], wall),
            Some(Duration::from_millis(9_500))
        );
    }

    #[test]
    fn only_refusals_close_the_gate() {
        let wall = SystemTime::now();
        assert_eq!(wait(429, &[], wall), Some(UNNAMED_WAIT));
        assert_eq!(
            wait(429, &[("retry-after", "soon")], wall),
            Some(UNNAMED_WAIT)
        );
        assert_eq!(wait(503, &[], wall), None);
        for status in [200, 201, 204, 401, 404, 500, 502] {
            assert_eq!(
                wait(status, &[("retry-after", "3")], wall),
                None,
                "{status}"
            );
        }
    }

    #[test]
    fn a_wait_longer_than_a_minute_is_capped() {
        let wall = SystemTime::now();
        assert_eq!(MAX_WAIT, 60 * SECOND);
        assert_eq!(wait(429, &[("retry-after", "60")], wall), Some(MAX_WAIT));
        for asked in ["61", "86400", "99999999999", "99999999999999999999999999"] {
            assert_eq!(wait(429, &[("retry-after", asked)], wall), Some(MAX_WAIT));
        }
        assert_eq!(
            wait(429, &[("x-retry-after", "99999999999")], wall),
            Some(MAX_WAIT)
        );
    }

    #[test]
    fn the_latest_refusal_wins() {
        let gate = UpstreamGate::default();
        let now = Instant::now();
        assert_eq!(gate.open_at(now), None, "open at first");
        gate.close_until(now + 3 * SECOND);
        gate.close_until(now + SECOND);
        assert_eq!(gate.open_at(now), Some(now + 3 * SECOND), "never earlier");
        gate.close_until(now + 5 * SECOND);
        assert_eq!(gate.open_at(now), Some(now + 5 * SECOND));
        assert_eq!(
            gate.open_at(now + 5 * SECOND),
            None,
            "open once the time passed"
        );
    }

    #[tokio::test]
    async fn pass_waits_until_open_or_fails_at_once_past_the_deadline() {
        let gate = UpstreamGate::default();
        let start = Instant::now();
        let wait = Duration::from_millis(300);
        gate.close_until(start + wait);

        let refused = gate.pass(start + wait / 2).await;
        assert!(
            matches!(refused, Err(Closed { opens_in }) if opens_in > wait / 2),
            "{refused:?}"
        );
        assert!(start.elapsed() < wait / 2, "failed without waiting");

        assert_eq!(gate.pass(start + 10 * wait).await, Ok(()));
        assert!(start.elapsed() >= wait, "passed once open, not before");
    }
}
