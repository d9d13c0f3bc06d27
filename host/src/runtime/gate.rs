//! Pacing revocations against an upstream rate limit.
//!
//! The engine reports a rate-limited revocation at once, with the upstream's `Retry-After`,
//! instead of sleeping in its instance. Every revocation then waits here, at one gate:
//! closed until the refusing window ends, open for all at once when it does. The window's
//! end is estimated from the start of the burst that used it up (when the gate last
//! opened) plus `Retry-After`, not from when each call got its 429: those arrive after the
//! window's budget is spent, and waiting from them would leave the upstream idle after
//! every window. Reopening a little early costs a short probe, not a whole window: a
//! refusal before any call of the new burst succeeded means the old window had not ended.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct UpstreamGate {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Closed until then.
    open_at: Option<Instant>,
    /// When the gate last opened: the start of the current burst.
    opened_at: Option<Instant>,
    /// Whether a call of the current burst got through.
    burst_succeeded: bool,
}

/// Reopen this much after the estimated end of a window, for clocks and network delay.
const MARGIN: Duration = Duration::from_millis(10);
/// How soon to try again when the gate reopened before the window ended.
const PROBE: Duration = Duration::from_millis(25);

impl UpstreamGate {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until calls may go out.
    pub(super) async fn pass(&self) {
        while let Some(wait) = self.pass_at(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }

    /// `None` if a call may go out at `now`, else how long to wait. The first call through
    /// after the gate was closed marks the start of a new burst.
    fn pass_at(&self, now: Instant) -> Option<Duration> {
        let mut state = self.state();
        let at = state.open_at?;
        if at > now {
            return Some(at - now);
        }
        state.open_at = None;
        state.opened_at = Some(at);
        state.burst_succeeded = false;
        None
    }

    /// A call went through: the current burst has a window to spend.
    pub(super) fn succeeded(&self) {
        self.state().burst_succeeded = true;
    }

    /// The upstream refused a call for `retry_after`: close until the window that refused it
    /// ends.
    pub(super) fn close(&self, retry_after: Duration) {
        self.close_at(Instant::now(), retry_after);
    }

    fn close_at(&self, now: Instant, retry_after: Duration) {
        let mut state = self.state();
        let end = match state.opened_at {
            // Reopened before the old window ended: look again shortly.
            Some(start) if !state.burst_succeeded && now < start + retry_after => now + PROBE,
            // The burst spent a window that began with it.
            Some(start) if start + retry_after > now => start + retry_after + MARGIN,
            // A burst start further back does not explain this refusal: count from now.
            _ => now + retry_after,
        };
        state.open_at = Some(state.open_at.map_or(end, |at| at.max(end)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn reopens_when_the_refusing_window_ends() {
        let gate = UpstreamGate::default();
        let t0 = Instant::now();
        assert_eq!(gate.pass_at(t0), None, "open at first");

        // No burst known yet: wait the whole Retry-After from the refusal.
        gate.close_at(t0, SECOND);
        assert_eq!(gate.pass_at(t0 + 300 * MS), Some(700 * MS));
        assert_eq!(
            gate.pass_at(t0 + SECOND),
            None,
            "a burst starts at t0 + 1 s"
        );

        // It spends the window's budget in 80 ms; then every call is refused.
        gate.succeeded();
        let refused = t0 + SECOND + 80 * MS;
        for _ in 0..16 {
            gate.close_at(refused, SECOND);
        }
        assert_eq!(
            gate.pass_at(refused),
            Some(930 * MS),
            "open one second (and a margin) after the burst began, not after the refusals"
        );
        assert_eq!(gate.pass_at(t0 + 2 * SECOND + 10 * MS), None);
    }

    #[test]
    fn reopening_too_early_costs_a_probe_not_a_window() {
        let gate = UpstreamGate::default();
        let t0 = Instant::now();
        gate.close_at(t0, SECOND);
        assert_eq!(gate.pass_at(t0 + SECOND), None);
        // Refused 2 ms into the burst, nothing through yet: the old window is not over.
        gate.close_at(t0 + SECOND + 2 * MS, SECOND);
        assert_eq!(gate.pass_at(t0 + SECOND + 2 * MS), Some(PROBE));
    }

    #[test]
    fn a_refusal_long_after_the_burst_counts_from_now() {
        let gate = UpstreamGate::default();
        let t0 = Instant::now();
        gate.close_at(t0, SECOND);
        assert_eq!(gate.pass_at(t0 + SECOND), None);
        gate.succeeded();
        let later = t0 + 10 * SECOND;
        gate.close_at(later, 2 * SECOND);
        assert_eq!(gate.pass_at(later), Some(2 * SECOND));
    }
}
