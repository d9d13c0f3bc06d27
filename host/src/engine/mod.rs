//! The engine as the native front ends see it: one layer between them (`plugin`, `serve`)
//! and the sandbox that runs the component (`runtime`).
//!
//! [`Engine`] takes a request and answers it through a [`Sandbox`], adding what every host
//! needs around the engine's own calls and no host should repeat:
//! - **requests**: the ones hosts make on their own ([`Request::revoke`], [`Request::renew`],
//!   [`Request::rollback`]), built in one place ([`requests`]);
//! - **status mapping**: every way a call can fail, as a [`CallError`] with the HTTP status
//!   Vault gives it ([`CallError::http_status`]);
//! - **revocation pacing**: a revocation that the Hub rate-limits is retried once the Hub
//!   accepts requests again, waiting outside any instance (see [`Engine::handle`]);
//! - **existence checks** answered without an instance for paths whose help declares none.
//!
//! The front ends unit-test against a stub sandbox (`stub`, tests only); the wasmtime
//! [`Runtime`](crate::Runtime) is the one real sandbox.

pub mod help;
pub mod requests;
#[cfg(test)]
pub(crate) mod stub;

pub use crate::runtime::{
    BackendHelp, CappedLimit, Datetime, EngineError, Entity, EntityAlias, Field, FieldKind,
    FixedLimit, Lease, LeaseState, Operation, PathHelp, Request, Response, SystemView,
    UpstreamError,
};

use crate::storage::Storage;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a revocation may wait for the Hub to accept requests again before its error
/// goes back to the host's own retry (OpenBao's ladder, `serve`'s lease timers).
pub const REVOKE_RATE_LIMIT_PATIENCE: Duration = Duration::from_secs(15);
/// The least time between two attempts of one rate-limited revocation.
const MIN_REVOKE_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The most request data (the request's JSON) a call takes, in bytes. The engine's requests
/// are a few hundred bytes; a larger one is refused before the sandbox is entered, so that
/// it costs the sandbox no memory.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Why a call did not produce the engine's answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The engine answered with an error (a 4xx, or an upstream failure).
    #[error("{}", engine_error_message(.0))]
    Engine(EngineError),
    #[error("the engine exceeded its time limit of {0:?}")]
    TimeLimit(Duration),
    #[error("the engine exceeded its memory limit of {0} bytes")]
    MemoryLimit(usize),
    /// The engine crashed; the message is wasmtime's description of the trap.
    #[error("the engine failed: {0}")]
    Trap(String),
    /// The sandbox itself failed (instantiation, pool exhausted).
    #[error("the engine could not be started: {0}")]
    Runtime(String),
    /// The request's data is over [`MAX_REQUEST_BYTES`]: the engine was not called.
    #[error("request body too large: the engine takes at most {MAX_REQUEST_BYTES} bytes")]
    RequestTooLarge,
}

fn engine_error_message(e: &EngineError) -> &str {
    match e {
        EngineError::InvalidRequest(m)
        | EngineError::PermissionDenied(m)
        | EngineError::UnsupportedPath(m)
        | EngineError::UnsupportedOperation(m)
        | EngineError::Internal(m) => m,
        EngineError::Upstream(u) => &u.message,
    }
}

impl CallError {
    /// The HTTP status Vault would answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            CallError::Engine(EngineError::InvalidRequest(_)) => 400,
            CallError::Engine(EngineError::PermissionDenied(_)) => 403,
            CallError::Engine(EngineError::UnsupportedPath(_)) => 404,
            CallError::Engine(EngineError::UnsupportedOperation(_)) => 405,
            CallError::Engine(EngineError::Upstream(_)) => 502,
            CallError::TimeLimit(_) => 504,
            CallError::RequestTooLarge => 413,
            CallError::Engine(EngineError::Internal(_))
            | CallError::MemoryLimit(_)
            | CallError::Trap(_)
            | CallError::Runtime(_) => 500,
        }
    }

    /// The wait the upstream asked for, in seconds, when it refused the call's request for
    /// a while (429 or 503 with `Retry-After`, as the engine reports it).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            CallError::Engine(EngineError::Upstream(u)) => u.retry_after,
            _ => None,
        }
    }

    fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            CallError::Engine(EngineError::Upstream(UpstreamError { status: 429, .. }))
        )
    }
}

/// What runs the engine component: one call of each of its exports in a fresh, limited
/// instance, and the state of the upstream's gate that every instance's requests pass.
/// [`Runtime`](crate::Runtime) is the real one.
#[async_trait::async_trait]
pub trait Sandbox: Send + Sync + 'static {
    /// The engine's `handle`, once: no retry, no pacing.
    async fn handle(
        &self,
        storage: Arc<dyn Storage>,
        system_view: Arc<dyn SystemView>,
        request: &Request,
    ) -> Result<Response, CallError>;

    /// The engine's `existence-check`, once.
    async fn existence_check(
        &self,
        storage: Arc<dyn Storage>,
        request: &Request,
    ) -> Result<Option<bool>, CallError>;

    /// The engine's `help`.
    async fn help(&self) -> Result<BackendHelp, CallError>;

    /// Wait until the upstream accepts requests again (RFC 9110 `Retry-After`, as the
    /// sandbox's outgoing requests learnt it). Fails at once, with how long until then, if
    /// that is after `deadline`.
    async fn upstream_open(&self, deadline: Instant) -> Result<(), Duration>;

    /// The longest one call may take.
    fn time_limit(&self) -> Duration;
}

/// The engine, for a front end. One per process; share it behind an `Arc`.
pub struct Engine {
    sandbox: Arc<dyn Sandbox>,
    /// The paths whose help declares an existence check, learnt on first use.
    checked_paths: tokio::sync::OnceCell<Vec<regex::Regex>>,
}

impl Engine {
    pub fn new(sandbox: Arc<dyn Sandbox>) -> Engine {
        Engine {
            sandbox,
            checked_paths: tokio::sync::OnceCell::new(),
        }
    }

    /// Handle one request. Data over [`MAX_REQUEST_BYTES`] is refused without a call.
    ///
    /// A revocation that the upstream rate-limits (429) is retried here once the upstream
    /// accepts requests again, waiting outside any instance, for up to
    /// [`REVOKE_RATE_LIMIT_PATIENCE`] or the call's time limit, whichever is shorter, in all,
    /// and no sooner than [`MIN_REVOKE_RETRY_INTERVAL`] after the previous attempt began. A
    /// revocation also waits for a rate limit before it starts, so that a burst of them
    /// does not fill the sandbox with calls that can only wait, and is not tried at all if
    /// the limit lasts past the patience: then it fails as the engine fails a 429, with
    /// `retry_after` the whole seconds until the upstream accepts requests, so that the
    /// host's own retry waits for that.
    pub async fn handle(
        &self,
        storage: Arc<dyn Storage>,
        system_view: Arc<dyn SystemView>,
        request: &Request,
    ) -> Result<Response, CallError> {
        if request.data.len() > MAX_REQUEST_BYTES {
            return Err(CallError::RequestTooLarge);
        }
        if request.operation != Operation::Revoke {
            return self.sandbox.handle(storage, system_view, request).await;
        }
        let patience = Instant::now() + REVOKE_RATE_LIMIT_PATIENCE.min(self.sandbox.time_limit());
        if let Err(opens_in) = self.sandbox.upstream_open(patience).await {
            return Err(still_rate_limited(opens_in));
        }
        loop {
            let started = Instant::now();
            let outcome = self
                .sandbox
                .handle(storage.clone(), system_view.clone(), request)
                .await;
            let rate_limited = outcome.as_ref().is_err_and(CallError::is_rate_limited);
            // The upstream's time holds the retry; the floor keeps a 429 that names no wait
            // (or `Retry-After: 0`) from making this loop hammer the upstream.
            let retry_at = started + MIN_REVOKE_RETRY_INTERVAL;
            if !rate_limited
                || retry_at > patience
                || self.sandbox.upstream_open(patience).await.is_err()
            {
                return outcome;
            }
            tokio::time::sleep_until(retry_at.into()).await;
        }
    }

    /// Whether the object a write would touch exists (`None`: the path has no check).
    /// Hosts ask before every write; paths whose help declares no existence check are
    /// answered without a call to the sandbox.
    pub async fn existence_check(
        &self,
        storage: Arc<dyn Storage>,
        request: &Request,
    ) -> Result<Option<bool>, CallError> {
        let checked = self
            .checked_paths
            .get_or_try_init(|| async {
                let help = self.sandbox.help().await?;
                Ok::<_, CallError>(
                    help.paths
                        .iter()
                        .filter(|p| p.existence_check)
                        .filter_map(|p| regex::Regex::new(&format!("^{}", p.pattern)).ok())
                        .collect::<Vec<_>>(),
                )
            })
            .await?;
        if !checked.iter().any(|re| re.is_match(&request.path)) {
            return Ok(None);
        }
        self.sandbox.existence_check(storage, request).await
    }

    /// The engine's paths and help text.
    pub async fn help(&self) -> Result<BackendHelp, CallError> {
        self.sandbox.help().await
    }

    /// The engine's rollback (see [`Request::rollback`]), with no lease limit: it issues
    /// nothing.
    pub async fn rollback(
        &self,
        storage: Arc<dyn Storage>,
        immediate: bool,
        leases_ended: bool,
    ) -> Result<Response, CallError> {
        let request = Request::rollback(immediate, leases_ended);
        self.handle(storage, Arc::new(FixedLimit(None)), &request)
            .await
    }

    /// The longest one call may take.
    pub fn time_limit(&self) -> Duration {
        self.sandbox.time_limit()
    }
}

/// A revocation not tried because the upstream stays closed past the patience: the error the
/// engine gives for a 429, with `retry_after` the whole seconds until it opens.
fn still_rate_limited(opens_in: Duration) -> CallError {
    let seconds = opens_in.as_secs() + u64::from(opens_in.subsec_nanos() > 0);
    CallError::Engine(EngineError::Upstream(UpstreamError {
        status: 429,
        message: format!(
            "not tried: the server asked for no requests for another {seconds} s (Retry-After)"
        ),
        retry_after: Some(seconds),
    }))
}

#[cfg(test)]
mod tests {
    use super::stub::{Answer, StubSandbox};
    use super::*;
    use crate::MemoryStorage;

    fn engine(stub: &Arc<StubSandbox>) -> Engine {
        Engine::new(stub.clone())
    }

    fn storage() -> Arc<dyn Storage> {
        Arc::new(MemoryStorage::new())
    }

    fn no_limit() -> Arc<dyn SystemView> {
        Arc::new(FixedLimit(None))
    }

    fn revoke() -> Request {
        Request::revoke("token/hoeg/my-organization", LeaseState::now("{}", 300))
    }

    #[tokio::test]
    async fn a_rate_limited_revocation_is_tried_again_once_the_upstream_accepts_requests() {
        let stub = StubSandbox::new();
        stub.answer(Answer::RateLimited { seconds: 1 });
        stub.answer(Answer::Empty);
        let outcome = engine(&stub).handle(storage(), no_limit(), &revoke()).await;
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(stub.calls(), 2);
        assert!(
            stub.waited_for_upstream(),
            "the retry passed the upstream's gate"
        );
    }

    #[tokio::test]
    async fn a_revocation_is_not_tried_while_the_upstream_refuses_past_the_patience() {
        let stub = StubSandbox::new();
        stub.close_upstream(Duration::from_secs(100));
        let outcome = engine(&stub).handle(storage(), no_limit(), &revoke()).await;
        let error = outcome.expect_err("refused");
        assert_eq!(error.http_status(), 502);
        assert!(
            (99..=100).contains(&error.retry_after().unwrap()),
            "{error:?}"
        );
        assert_eq!(stub.calls(), 0, "the sandbox was not entered");
    }

    #[tokio::test]
    async fn a_revocation_still_rate_limited_past_the_patience_returns_the_429() {
        let stub = StubSandbox::new();
        stub.answer(Answer::RateLimited { seconds: 30 });
        let error = engine(&stub)
            .handle(storage(), no_limit(), &revoke())
            .await
            .expect_err("rate limited");
        assert_eq!(error.retry_after(), Some(30));
        assert_eq!(stub.calls(), 1, "no retry the patience cannot wait for");
    }

    #[tokio::test]
    async fn only_revocations_are_retried() {
        let stub = StubSandbox::new();
        stub.answer(Answer::RateLimited { seconds: 1 });
        let write = Request {
            operation: Operation::Update,
            ..revoke()
        };
        let error = engine(&stub)
            .handle(storage(), no_limit(), &write)
            .await
            .expect_err("rate limited");
        assert_eq!(error.retry_after(), Some(1));
        assert_eq!(stub.calls(), 1);
    }

    #[tokio::test]
    async fn an_oversized_request_never_reaches_the_sandbox() {
        let stub = StubSandbox::new();
        let request = Request {
            operation: Operation::Update,
            data: "x".repeat(MAX_REQUEST_BYTES + 1),
            ..revoke()
        };
        let error = engine(&stub)
            .handle(storage(), no_limit(), &request)
            .await
            .expect_err("refused");
        assert_eq!(error.http_status(), 413);
        assert_eq!(stub.calls(), 0);
    }

    #[tokio::test]
    async fn existence_checks_run_only_for_paths_whose_help_declares_one() {
        let stub = StubSandbox::new();
        stub.declare_existence_check("config/[^/]+$");
        let engine = engine(&stub);
        let on = |path: &str| Request {
            operation: Operation::Update,
            path: path.into(),
            ..revoke()
        };
        assert_eq!(
            engine
                .existence_check(storage(), &on("token/hoeg/x"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(stub.existence_checks(), 0);
        assert_eq!(
            engine
                .existence_check(storage(), &on("config/hoeg"))
                .await
                .unwrap(),
            Some(false)
        );
        assert_eq!(stub.existence_checks(), 1);
        assert_eq!(stub.help_calls(), 1, "the help is asked for once");
    }

    #[tokio::test]
    async fn a_rollback_is_the_engines_rollback_request() {
        let stub = StubSandbox::new();
        engine(&stub)
            .rollback(storage(), true, false)
            .await
            .unwrap();
        let sent = stub.last_request().unwrap();
        assert_eq!(sent.operation, Operation::Rollback);
        let data: serde_json::Value = serde_json::from_str(&sent.data).unwrap();
        assert_eq!(
            data,
            serde_json::json!({"immediate": true, "leases_ended": false})
        );
    }
}
