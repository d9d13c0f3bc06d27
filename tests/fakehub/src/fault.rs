//! Faults a test queues to see how a client copes with a misbehaving Hub: error statuses,
//! 429s, slow answers, and connections that close with no response (before or after the
//! request took effect, the case that makes a lost token creation possible).

use std::time::Duration;

/// A misbehaviour applied to the next `times` requests that match `method` (when set),
/// `path_prefix` (when set; compared with the path, not the query string) and
/// `query_contains` (when set; a part of the query string, such as `page=2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    pub query_contains: Option<String>,
    pub kind: FaultKind,
    pub times: usize,
    /// `Some((k, n))`: of every `n` matching requests, the first `k` get the fault (the 1st..k-th,
    /// then the (n+1)-th..(n+k)-th, ...), and the others pass; `times` still bounds how many
    /// applications there are in all.
    pub ratio: Option<(usize, usize)>,
    /// Matching requests seen so far, for `ratio`.
    seen: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status and a Docker-shaped error body, without processing.
    Status(u16),
    /// 429 with `Retry-After` (seconds) and `X-Retry-After` (unix time), without processing.
    RateLimited { retry_after: u64 },
    /// Sleep, then process normally, even when the client stopped waiting meanwhile.
    Latency(Duration),
    /// Close the connection without a response, without processing.
    Drop,
    /// Process the request (e.g. create the token), then close the connection without a response.
    DropAfterProcessing,
    /// Process the request at once, then wait this long before answering: a Hub that did the
    /// work and is slow to say so, so that a client which stops waiting misses the answer.
    LatencyAfterProcessing(Duration),
    /// Process the request, then answer with this status and a Docker-shaped error body
    /// instead of the real answer: a gateway that failed after the Hub did the work.
    StatusAfterProcessing(u16),
    /// Another client changes the account's tokens first (deletes its `delete_newest` newest,
    /// then creates `create` labelled `other-client-<n>`), then the request is processed
    /// normally: a token list read page by page sees its pages shift between two reads.
    Churn {
        account: String,
        delete_newest: usize,
        create: usize,
    },
    /// Answer with this status and this body (JSON or not, as given), without processing: a
    /// proxy's own answer.
    Answer(u16, String),
    /// Process the request, then answer with this status and body instead of the real
    /// answer: a proxy that rewrote, cached or replayed the Hub's answer.
    AnswerAfterProcessing(u16, String),
}

impl Fault {
    /// A fault on the next request with this method whose path starts with `path_prefix`.
    pub fn on(method: &str, path_prefix: &str, kind: FaultKind) -> Fault {
        Fault {
            method: Some(method.to_owned()),
            path_prefix: Some(path_prefix.to_owned()),
            query_contains: None,
            kind,
            times: 1,
            ratio: None,
            seen: 0,
        }
    }

    /// A fault on the next request with any method whose path starts with `path_prefix`.
    pub fn on_path(path_prefix: &str, kind: FaultKind) -> Fault {
        Fault {
            method: None,
            path_prefix: Some(path_prefix.to_owned()),
            query_contains: None,
            kind,
            times: 1,
            ratio: None,
            seen: 0,
        }
    }

    /// A fault on the next request, whatever it is.
    pub fn any(kind: FaultKind) -> Fault {
        Fault {
            method: None,
            path_prefix: None,
            query_contains: None,
            kind,
            times: 1,
            ratio: None,
            seen: 0,
        }
    }

    /// Matches only requests whose query string contains `part` (e.g. `page=2`).
    pub fn with_query(self, part: &str) -> Fault {
        Fault {
            query_contains: Some(part.to_owned()),
            ..self
        }
    }

    /// Applies the fault to the next `times` matching requests instead of one.
    pub fn times(self, times: usize) -> Fault {
        Fault { times, ..self }
    }

    /// Applies the fault to `k` of every `n` matching requests, for ever (or up to
    /// [`Fault::times`] when that is set after this), e.g. `ratio(3, 10)` for 30 %.
    /// Deterministic, so a test can count what it expects. Panics unless `0 < k <= n`.
    pub fn ratio(self, k: usize, n: usize) -> Fault {
        assert!(0 < k && k <= n, "a ratio k of n needs 0 < k <= n");
        Fault {
            ratio: Some((k, n)),
            times: usize::MAX,
            ..self
        }
    }

    /// `target`: the request's path and query string.
    fn matches(&self, method: &str, target: &str) -> bool {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
            && self
                .query_contains
                .as_deref()
                .is_none_or(|part| query.contains(part))
    }
}

/// Injected faults, oldest first.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(Vec<Fault>);

impl FaultQueue {
    pub fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.0.push(fault);
        }
    }

    /// Uses up one application of the oldest fault matching the request (`target`: its path
    /// and query string).
    pub fn take(&mut self, method: &str, target: &str) -> Option<FaultKind> {
        let index = self.0.iter_mut().position(|f| {
            if !f.matches(method, target) {
                return false;
            }
            let Some((k, n)) = f.ratio else { return true };
            let turn = f.seen % n;
            f.seen += 1;
            turn < k
        })?;
        let fault = &mut self.0[index];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.0.remove(index);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_part_narrows_a_fault_to_the_requests_that_carry_it() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::on("GET", "/v2/access-tokens", FaultKind::Drop).with_query("page=2"));
        assert_eq!(
            queue.take("GET", "/v2/access-tokens?page=1&page_size=100"),
            None
        );
        assert_eq!(queue.take("GET", "/v2/access-tokens"), None);
        assert_eq!(
            queue.take("GET", "/v2/access-tokens?page=2&page_size=100"),
            Some(FaultKind::Drop)
        );
        assert_eq!(
            queue.take("GET", "/v2/access-tokens?page=2"),
            None,
            "used up"
        );
    }

    #[test]
    fn faults_apply_in_order_and_run_out() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::on("post", "/v2/access-tokens", FaultKind::Drop).times(2));
        queue.push(Fault::any(FaultKind::Status(500)));
        assert_eq!(
            queue.take("GET", "/v2/access-tokens"),
            Some(FaultKind::Status(500))
        );
        assert_eq!(
            queue.take("POST", "/v2/access-tokens"),
            Some(FaultKind::Drop)
        );
        assert_eq!(
            queue.take("POST", "/v2/access-tokens/x"),
            Some(FaultKind::Drop)
        );
        assert_eq!(queue.take("POST", "/v2/access-tokens"), None);
    }

    #[test]
    fn a_ratio_applies_to_k_of_every_n_and_lets_others_through() {
        let mut queue = FaultQueue::default();
        queue.push(
            Fault::on("POST", "/v2/access-tokens", FaultKind::DropAfterProcessing).ratio(3, 10),
        );
        let hits: Vec<bool> = (0..25)
            .map(|_| queue.take("POST", "/v2/access-tokens").is_some())
            .collect();
        let expected: Vec<bool> = (0..25).map(|i| i % 10 < 3).collect();
        assert_eq!(hits, expected);
        assert_eq!(queue.take("GET", "/v2/access-tokens"), None);
    }

    #[test]
    fn a_ratio_fault_passes_its_turns_to_the_next_matching_fault() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::any(FaultKind::Drop).ratio(1, 2));
        queue.push(Fault::any(FaultKind::Status(500)).times(1));
        assert_eq!(queue.take("GET", "/"), Some(FaultKind::Drop));
        assert_eq!(queue.take("GET", "/"), Some(FaultKind::Status(500)));
        assert_eq!(queue.take("GET", "/"), Some(FaultKind::Drop));
        assert_eq!(queue.take("GET", "/"), None);
    }

    #[test]
    fn zero_times_is_never_applied() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::any(FaultKind::Drop).times(0));
        assert_eq!(queue.take("GET", "/"), None);
    }
}
