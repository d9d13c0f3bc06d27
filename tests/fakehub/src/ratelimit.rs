//! The Hub's API rate limit: a request budget per fixed window, reported in `X-RateLimit-*`
//! headers on every counted response and enforced with 429 + `Retry-After`.

use std::time::{Duration, Instant, SystemTime};

use crate::{RateLimit, clock};

/// Where a counted request stands against the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds at which the window ends.
    pub reset: u64,
    /// Set when the request is over the limit: seconds until the window ends, at least 1.
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Limiter {
    rate: RateLimit,
    window: Option<Window>,
}

#[derive(Debug)]
struct Window {
    ends: Instant,
    ends_wall: SystemTime,
    used: u32,
}

impl Limiter {
    pub fn new(rate: RateLimit) -> Self {
        Limiter { rate, window: None }
    }

    /// Counts one request made at `now`.
    pub fn admit(&mut self, now: Instant) -> Quota {
        let window = match &mut self.window {
            Some(window) if now < window.ends => window,
            stale => stale.insert(Window {
                ends: now + self.rate.window,
                ends_wall: SystemTime::now() + self.rate.window,
                used: 0,
            }),
        };
        let over = window.used >= self.rate.limit;
        if !over {
            window.used += 1;
        }
        let wait = window.ends.saturating_duration_since(now);
        Quota {
            limit: self.rate.limit,
            remaining: self.rate.limit - window.used,
            reset: clock::unix_ceil(window.ends_wall),
            retry_after: over.then(|| ceil_secs(wait).max(1)),
        }
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_runs_out_then_refills_after_the_window() {
        let mut limiter = Limiter::new(RateLimit::new(2, Duration::from_secs(60)));
        let start = Instant::now();
        let first = limiter.admit(start);
        assert_eq!((first.remaining, first.retry_after), (1, None));
        assert_eq!(limiter.admit(start).remaining, 0);
        let refused = limiter.admit(start + Duration::from_millis(500));
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, Some(60));
        assert_eq!(refused.reset, first.reset);
        let later = limiter.admit(start + Duration::from_secs(61));
        assert_eq!((later.remaining, later.retry_after), (1, None));
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let mut limiter = Limiter::new(RateLimit::new(0, Duration::from_secs(1)));
        let start = Instant::now();
        limiter.admit(start);
        let quota = limiter.admit(start + Duration::from_millis(999));
        assert_eq!(quota.retry_after, Some(1));
    }
}
