//! What the Hub's rate-limit answers allowed a client, read back from the fake's log.
//!
//! The fake opens a window of `W` at the first request it checks after the previous window
//! ended, counts up to its budget in it, and refuses the rest with 429 and a whole-second
//! `Retry-After` (tests/fakehub/src/ratelimit.rs). A client that honours `Retry-After` exactly
//! may send again at the first 429's time plus its `Retry-After` (or at the window's end when
//! no 429 came); whatever passes between that moment and the next window's first request is
//! the client's own delay, not the Hub's.

use std::time::Duration;

/// One answer of the fake, as its log holds it.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// When the fake's rate limit checked the request; a 429 leaves at once, so its
    /// `Retry-After` runs from here (the client receives it a little later, so the client's
    /// own delay comes out, if anything, too long).
    pub at: Duration,
    pub status: u16,
    /// The `Retry-After` answered, in seconds.
    pub retry_after: Option<u64>,
    /// A DELETE answered 2xx: one revocation done.
    pub revoked: bool,
}

/// One window of the fake's rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Its first request: the fake opens a window there.
    pub opened: Duration,
    /// Requests counted against the budget (every answer but 429), and revocations among them.
    pub counted: usize,
    pub revoked: usize,
    pub refused: usize,
    /// The first 429's time and `Retry-After`.
    pub first_429: Option<(Duration, u64)>,
    /// The earliest a client honouring `Retry-After` may send again: the first 429's time
    /// plus its `Retry-After`, or the window's end when no 429 came.
    pub allowed: Duration,
    /// When a client honouring every 429 of the window may send again: later 429s, of
    /// requests already in flight, can name a later time than the first.
    pub gate: Duration,
    /// The next window's first request; `None` for the last window.
    pub next: Option<Duration>,
}

impl Window {
    /// How long the Hub's answers held the client: from the opening to the earliest allowed
    /// time (or to the next window, when a request already in flight opened it sooner).
    /// `None` for the last window.
    pub fn held(&self) -> Option<Duration> {
        Some(self.next?.min(self.allowed) - self.opened)
    }

    /// From the earliest allowed time to the next window's first request: the client's own.
    pub fn own_delay(&self) -> Option<Duration> {
        Some(self.next?.saturating_sub(self.allowed))
    }

    /// The part of [`Window::own_delay`] that later 429s of the window asked for.
    pub fn later_429s(&self) -> Option<Duration> {
        Some(self.next?.min(self.gate).saturating_sub(self.allowed))
    }
}

/// The windows of a rate limit of `length` as the fake made them, from its answers in any
/// order.
pub fn windows(answers: &[Answer], length: Duration) -> Vec<Window> {
    let mut answers = answers.to_vec();
    answers.sort_by_key(|a| a.at);
    let mut windows: Vec<Window> = Vec::new();
    for answer in answers {
        let window = match windows.last_mut() {
            Some(window) if answer.at < window.opened + length => window,
            _ => {
                if let Some(previous) = windows.last_mut() {
                    previous.next = Some(answer.at);
                }
                windows.push(Window {
                    opened: answer.at,
                    counted: 0,
                    revoked: 0,
                    refused: 0,
                    first_429: None,
                    allowed: answer.at + length,
                    gate: answer.at + length,
                    next: None,
                });
                windows.last_mut().expect("just pushed")
            }
        };
        if answer.status != 429 {
            window.counted += 1;
            window.revoked += usize::from(answer.revoked);
            continue;
        }
        let retry_after = answer.retry_after.unwrap_or(0);
        let again = answer.at + Duration::from_secs(retry_after);
        if window.first_429.is_none() {
            window.first_429 = Some((answer.at, retry_after));
            (window.allowed, window.gate) = (again, again);
        }
        window.gate = window.gate.max(again);
        window.refused += 1;
    }
    windows
}

/// The complete windows (all but the last, which holds only the remainder) summed up.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacing {
    pub complete: usize,
    /// From the first window's opening to the last one's.
    pub span: Duration,
    pub revoked: usize,
    /// The sums of [`Window::held`], [`Window::own_delay`] and [`Window::later_429s`].
    pub held: Duration,
    pub own_delay: Duration,
    pub later_429s: Duration,
}

impl Pacing {
    /// `None` without at least one complete window.
    pub fn of(windows: &[Window]) -> Option<Pacing> {
        let (first, last) = (windows.first()?, windows.last()?);
        let complete = &windows[..windows.len() - 1];
        let sum = |f: fn(&Window) -> Option<Duration>| complete.iter().filter_map(f).sum();
        (!complete.is_empty()).then(|| Pacing {
            complete: complete.len(),
            span: last.opened - first.opened,
            revoked: complete.iter().map(|w| w.revoked).sum(),
            held: sum(Window::held),
            own_delay: sum(Window::own_delay),
            later_429s: sum(Window::later_429s),
        })
    }

    /// Revocations per second over the complete windows.
    pub fn throughput(&self) -> f64 {
        self.revoked as f64 / self.span.as_secs_f64()
    }

    /// Requests per second the Hub's answers allowed: the budget of every complete window
    /// over the time they held the client.
    pub fn attainable(&self, budget: u32) -> f64 {
        f64::from(budget) * self.complete as f64 / self.held.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ok(at: u64) -> Answer {
        Answer {
            at: ms(at),
            status: 204,
            retry_after: None,
            revoked: true,
        }
    }

    fn refused(at: u64, retry_after: u64) -> Answer {
        Answer {
            at: ms(at),
            status: 429,
            retry_after: Some(retry_after),
            revoked: false,
        }
    }

    #[test]
    fn a_window_reopens_for_the_client_at_the_first_429_plus_its_retry_after() {
        // Budget spent 1.3 s in; the 429 at 1.4 s says 9 s (ceil 8.6): allowed at 10.4 s,
        // 0.4 s after the window's end. The next request comes 50 ms after that.
        let log = [ok(0), ok(1_300), refused(1_400, 9), ok(10_450), ok(10_500)];
        let windows = windows(&log, W);
        assert_eq!(windows.len(), 2);
        let first = &windows[0];
        assert_eq!((first.counted, first.revoked, first.refused), (2, 2, 1));
        assert_eq!(first.first_429, Some((ms(1_400), 9)));
        assert_eq!(first.allowed, ms(10_400));
        assert_eq!(first.next, Some(ms(10_450)));
        assert_eq!(first.held(), Some(ms(10_400)));
        assert_eq!(first.own_delay(), Some(ms(50)));
        assert_eq!(first.later_429s(), Some(Duration::ZERO));
        assert_eq!((windows[1].counted, windows[1].next), (2, None));
        assert_eq!(windows[1].held(), None);
    }

    #[test]
    fn a_window_without_a_429_holds_the_client_until_its_end() {
        let windows = windows(&[ok(0), ok(5_000), ok(12_000)], W);
        assert_eq!(windows[0].allowed, ms(10_000));
        assert_eq!(windows[0].own_delay(), Some(ms(2_000)));
        assert_eq!(windows[1].opened, ms(12_000));
    }

    #[test]
    fn later_429s_move_the_gate_but_count_as_the_clients_own() {
        // Two requests in flight when the first 429 came: the second one's Retry-After ends
        // 0.3 s later. A request already in flight may also open the next window before the
        // client was allowed to send: it then held the client only until that opening.
        let log = [
            ok(0),
            refused(1_100, 9),
            refused(1_400, 9),
            ok(10_500),
            refused(11_000, 10),
            ok(21_050),
        ];
        let windows = windows(&log, W);
        assert_eq!(windows.len(), 3);
        assert_eq!(
            (windows[0].allowed, windows[0].gate),
            (ms(10_100), ms(10_400))
        );
        assert_eq!(windows[0].own_delay(), Some(ms(400)));
        assert_eq!(windows[0].later_429s(), Some(ms(300)));
        assert_eq!(windows[1].allowed, ms(21_000));

        let early = [ok(0), refused(9_500, 1), ok(10_200), ok(21_000)];
        let early = super::windows(&early, W);
        assert_eq!(early[0].allowed, ms(10_500));
        assert_eq!(early[0].held(), Some(ms(10_200)));
        assert_eq!(early[0].own_delay(), Some(Duration::ZERO));
    }

    #[test]
    fn the_fake_opens_a_window_at_the_first_request_at_or_past_the_end() {
        let windows = windows(&[ok(9_999), ok(0), ok(10_000)], W);
        let opened: Vec<Duration> = windows.iter().map(|w| w.opened).collect();
        assert_eq!(opened, [ms(0), ms(10_000)]);
        assert_eq!(windows[0].counted, 2);
    }

    #[test]
    fn the_summary_takes_the_complete_windows_only() {
        // Budget 2 per 10 s. Window 1: held 10.4 s, own 0.1 s; window 2: held 10.3 s (its
        // 429 at 10.8 s says 10 s, ceil 9.7), own 0.3 s; window 3, the remainder, is left out.
        let log = [
            ok(0),
            ok(300),
            refused(1_400, 9),
            ok(10_500),
            ok(10_700),
            refused(10_800, 10),
            ok(21_100),
        ];
        let pacing = Pacing::of(&windows(&log, W)).unwrap();
        assert_eq!(pacing.complete, 2);
        assert_eq!(pacing.span, ms(21_100));
        assert_eq!(pacing.revoked, 4);
        assert_eq!(pacing.held, ms(20_700));
        assert_eq!(pacing.own_delay, ms(400));
        assert_eq!(pacing.held + pacing.own_delay, pacing.span);
        assert!((pacing.attainable(2) - 4.0 / 20.7).abs() < 1e-12);
        assert!((pacing.throughput() - 4.0 / 21.1).abs() < 1e-12);

        assert_eq!(Pacing::of(&windows(&[ok(0), ok(1)], W)), None);
        assert_eq!(Pacing::of(&[]), None);
    }
}
