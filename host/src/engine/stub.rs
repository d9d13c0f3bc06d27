//! A sandbox that runs no component, for the front ends' unit tests: it answers from a
//! script, records what it was asked, and has an upstream gate the test opens and closes.

use super::{
    BackendHelp, CallError, EngineError, PathHelp, Request, Response, Sandbox, SystemView,
    UpstreamError,
};
use crate::storage::Storage;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer to `handle`; once the script is used up, every call answers
/// [`Answer::Empty`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// A response with nothing in it.
    Empty,
    Response(Response),
    Error(EngineError),
    /// The Hub answered 429 with `Retry-After: seconds`: the gate closes for that long and
    /// the engine reports the 429.
    RateLimited {
        seconds: u64,
    },
    /// The engine writes `key` to its storage; a storage error is the engine's internal
    /// error, as the engine reports it.
    Write {
        key: String,
    },
    /// The sandbox stopped the call.
    TimeLimit,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
pub struct StubSandbox {
    script: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Request>>,
    existence_checks: AtomicUsize,
    help_calls: AtomicUsize,
    /// Patterns whose help declares an existence check.
    checked: Mutex<Vec<String>>,
    /// Closed until then.
    upstream_open_at: Mutex<Option<Instant>>,
    waited: AtomicBool,
    /// The host's max lease TTL each `handle` was given, in call order.
    max_ttls: Mutex<Vec<Option<u64>>>,
}

impl StubSandbox {
    pub fn new() -> Arc<StubSandbox> {
        Arc::new(StubSandbox::default())
    }

    /// The answer to the next `handle` not yet scripted.
    pub fn answer(&self, answer: Answer) {
        lock(&self.script).push_back(answer);
    }

    /// The upstream refuses requests for `wait` from now.
    pub fn close_upstream(&self, wait: Duration) {
        *lock(&self.upstream_open_at) = Some(Instant::now() + wait);
    }

    pub fn declare_existence_check(&self, pattern: &str) {
        lock(&self.checked).push(pattern.to_string());
    }

    /// How many times `handle` was called.
    pub fn calls(&self) -> usize {
        lock(&self.requests).len()
    }

    pub fn requests(&self) -> Vec<Request> {
        lock(&self.requests).clone()
    }

    pub fn last_request(&self) -> Option<Request> {
        lock(&self.requests).last().cloned()
    }

    pub fn existence_checks(&self) -> usize {
        self.existence_checks.load(Ordering::SeqCst)
    }

    pub fn help_calls(&self) -> usize {
        self.help_calls.load(Ordering::SeqCst)
    }

    /// The host's max lease TTL each `handle` was given, in call order.
    pub fn max_ttls(&self) -> Vec<Option<u64>> {
        lock(&self.max_ttls).clone()
    }

    /// Whether a call waited for the upstream to accept requests again.
    pub fn waited_for_upstream(&self) -> bool {
        self.waited.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Sandbox for StubSandbox {
    async fn handle(
        &self,
        storage: Arc<dyn Storage>,
        system_view: Arc<dyn SystemView>,
        request: &Request,
    ) -> Result<Response, CallError> {
        let max_ttl = system_view.max_ttl().await;
        lock(&self.max_ttls).push(max_ttl);
        lock(&self.requests).push(request.clone());
        let answer = lock(&self.script).pop_front().unwrap_or(Answer::Empty);
        match answer {
            Answer::Empty => Ok(Response {
                data: None,
                lease: None,
                warnings: vec![],
            }),
            Answer::Response(response) => Ok(response),
            Answer::Error(e) => Err(CallError::Engine(e)),
            Answer::RateLimited { seconds } => {
                self.close_upstream(Duration::from_secs(seconds));
                Err(CallError::Engine(EngineError::Upstream(UpstreamError {
                    status: 429,
                    message: "rate limit exceeded".into(),
                    retry_after: Some(seconds),
                })))
            }
            Answer::Write { key } => match storage.put(&key, b"{}".to_vec()).await {
                Ok(()) => Ok(Response {
                    data: None,
                    lease: None,
                    warnings: vec![],
                }),
                Err(e) => Err(CallError::Engine(EngineError::Internal(e.to_string()))),
            },
            Answer::TimeLimit => Err(CallError::TimeLimit(self.time_limit())),
        }
    }

    async fn existence_check(
        &self,
        _storage: Arc<dyn Storage>,
        _request: &Request,
    ) -> Result<Option<bool>, CallError> {
        self.existence_checks.fetch_add(1, Ordering::SeqCst);
        Ok(Some(false))
    }

    async fn help(&self) -> Result<BackendHelp, CallError> {
        self.help_calls.fetch_add(1, Ordering::SeqCst);
        Ok(BackendHelp {
            description: "a stub".into(),
            paths: lock(&self.checked)
                .iter()
                .map(|pattern| PathHelp {
                    pattern: pattern.clone(),
                    operations: vec![],
                    existence_check: true,
                    synopsis: String::new(),
                    description: String::new(),
                    fields: vec![],
                })
                .collect(),
        })
    }

    async fn upstream_open(&self, deadline: Instant) -> Result<(), Duration> {
        loop {
            let now = Instant::now();
            let Some(at) = lock(&self.upstream_open_at).filter(|at| *at > now) else {
                return Ok(());
            };
            if at > deadline {
                return Err(at - now);
            }
            self.waited.store(true, Ordering::SeqCst);
            tokio::time::sleep_until(at.into()).await;
        }
    }

    fn time_limit(&self) -> Duration {
        Duration::from_secs(60)
    }
}
