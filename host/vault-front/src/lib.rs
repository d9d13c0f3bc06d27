//! Vault's HTTP API in front of the dockerhub-secrets engine, as much of it as the
//! `bao`/`vault` CLI and client libraries need: `/v1/<mount>/...` for the engine,
//! `sys/leases/*` for leases (and `sys/leases/lookup/<prefix>` to list them),
//! `auth/token/lookup-self`, `renew-self` and `revoke-self`, the logins of a host that has
//! them (`auth/<mount>/login`, `serve`'s JWT auth), and `sys/health`, `sys/seal-status`, `sys/leader`, `sys/init`
//! for probes.
//!
//! It is plain Rust with no runtime of its own (no tokio, no HTTP server, no store), so that
//! every host that speaks Vault's API speaks it alike: `dockerhub-secrets serve` natively,
//! and the gateway front (`host/gateway/front`) compiled to wasm32-wasip2. A host hands over
//! a request's head and a way to read its body ([`Body`]), and supplies the engine and the
//! leases ([`Host`]); [`handle`] answers with Vault's status, headers and JSON.
//!
//! Requests and responses have Vault's shapes: a JSON body (or query parameters for reads),
//! `X-Vault-Token` or `Authorization: Bearer`, `LIST` or `?list=true`; answers carry
//! `request_id`, `lease_id`, `renewable`, `lease_duration`, `data`, `warnings`, `wrap_info`
//! and `auth`, and errors are `{"errors": [...]}` with Vault's status codes.
//!
//! A path means what it means in OpenBao, because a policy is checked on it: `%XX` escapes
//! are decoded, a path with `//`, `.` or `..` is redirected (307) to its clean form, an
//! escaped `.` or `..` segment is refused, and the path a policy is checked on is exactly the
//! path that runs (for the lease endpoints, the path as sent, id included). A request is
//! refused before its body is read unless its token may do something on its path, and
//! headers that would make Vault answer differently (response wrapping, namespaces, inline
//! authentication) are refused rather than ignored. `tests/e2e/tests/differential.rs` sends
//! the same requests to OpenBao with the plugin and compares.

pub mod acl;
mod answer;
mod input;
mod lease;
mod request;
mod router;
pub mod timestamp;
mod token;

pub use acl::AccessControl;
pub use answer::ApiError;
pub use input::{duration_setting, mount_path, parse_bool, parse_duration};
pub use lease::{
    FIRST_REVOCATION_BACKOFF, LeaseFailure, LeaseRecord, MAX_REVOCATION_BACKOFF, RevocationState,
    capped_increment, list_leases, named_by_prefix, revocation_backoff,
};
pub use request::string_field;
pub use router::handle;
pub use timestamp::Timestamp;
pub use token::{LoginToken, new_secret_and_accessor, token_hash};

/// The answer a host sends back: Vault's status, headers and body.
pub type Response = http::Response<Vec<u8>>;

/// What a host serves, beside what the [`Host`] does.
pub struct Front {
    /// Who may do what.
    pub acl: AccessControl,
    /// Where the engine is mounted: requests to `/v1/<mount>/...` go to the engine.
    pub mount: String,
    /// The `storage_type` that `sys/seal-status` reports (`redb`, `etcd`).
    pub storage_type: &'static str,
}

/// The operations the front sends to the engine: Vault's logical operations for requests
/// that clients make (renewals and revocations go through [`Host`]'s lease calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    /// A write to a path that does not exist yet, as the engine's existence check said.
    Create,
    Update,
    Delete,
    List,
}

/// One request for the engine, in the shape of the WIT contract's `request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineRequest {
    pub operation: Operation,
    /// The path below the mount, without a leading `/`.
    pub path: String,
    /// The request's fields as a JSON object.
    pub data: String,
    /// The requester's display name (`token-<name>` for a token of the tokens file, the
    /// login's for a login's token).
    pub display_name: Option<String>,
    /// The login token the request came with; `None` for a token of the tokens file. A
    /// lease it creates ends when the token does, and never lasts longer.
    pub token: Option<LoginToken>,
}

/// The engine's answer to a request that succeeded, with the lease the host stored for it.
#[derive(Debug, Clone, Default)]
pub struct EngineAnswer {
    /// The response's fields as a JSON object; `None` when there is nothing at the path.
    pub data: Option<String>,
    pub warnings: Vec<String>,
    /// The stored lease of what the request created.
    pub lease: Option<LeaseRecord>,
}

/// Why the engine did not answer, as OpenBao tells it apart for a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineFailure {
    /// Answered with the text alone: bad input (400) as OpenBao answers a plugin's
    /// `logical.ErrorResponse`, a body over the size limit (413) as its listener does, and a
    /// host's own failure around the engine call (storing the lease, 500).
    #[error("{message}")]
    Plain { status: u16, message: String },
    /// No engine path matches (404).
    #[error("unsupported path")]
    UnsupportedPath,
    /// The path does not take the operation (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// Every other failure (403, 500, 502, 504): a coded error, whose text OpenBao wraps in
    /// go-multierror's.
    #[error("{message}")]
    Coded { status: u16, message: String },
}

/// What the front needs from its host: the engine, and the leases of what it created.
///
/// Futures need no particular executor: the gateway's calls complete at once, `serve`'s
/// run on tokio.
#[allow(async_fn_in_trait)]
pub trait Host {
    /// The engine's existence check for a write: `Some(false)` when the object is absent (the
    /// write needs `create`), `None` when the path has no check (it needs `update`).
    async fn existence_check(&self, request: &EngineRequest)
    -> Result<Option<bool>, EngineFailure>;

    /// Run `request` in the engine and, when it created a lease, store the lease before
    /// answering. The call must complete even if the client goes away.
    async fn call(&self, request: EngineRequest) -> Result<EngineAnswer, EngineFailure>;

    /// The lease with this id, if it exists.
    async fn lease(&self, lease_id: &str) -> Result<Option<LeaseRecord>, LeaseFailure>;

    /// The lease ids under `prefix` (ids relative to it, as Vault lists them), sorted.
    async fn leases(&self, prefix: &str) -> Result<Vec<String>, LeaseFailure>;

    /// Extend a lease by `increment` seconds (0: the engine's default). Returns the lease as
    /// renewed and the warnings to show.
    async fn renew(
        &self,
        lease_id: &str,
        increment: u64,
    ) -> Result<(LeaseRecord, Vec<String>), LeaseFailure>;

    /// End a lease: now (`sync`), or queue its revocation.
    async fn revoke(&self, lease_id: &str, sync: bool) -> Result<(), LeaseFailure>;

    /// End every lease whose id starts with `prefix`.
    async fn revoke_prefix(&self, prefix: &str, sync: bool) -> Result<(), LeaseFailure>;

    /// End every lease whose id starts with `prefix`, even where the engine fails to.
    async fn revoke_force(&self, prefix: &str) -> Result<(), LeaseFailure>;

    /// `PUT sys/leases/tidy`: start revoking the leases that are due (expired, or a failed
    /// revocation's retry time reached) and still stored; the front answers 202 as soon as
    /// this returns, as OpenBao does. A host whose timers already do that (`serve`) does
    /// nothing more; one without timers (the gateway) does it once the answer is sent.
    async fn tidy(&self) -> Result<(), LeaseFailure>;

    /// Whether the host can serve at all; `Err` says why not (its store unreachable, or set
    /// up with a key that does not open it). `sys/health` then answers 500 with that text,
    /// so that a load balancer takes the instance out. A host that cannot start without its
    /// store (`serve`) keeps the default.
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// The engine's help for `engine_path` (a path below the mount; empty: the whole
    /// engine), as `vault path-help` prints it; `None` (the default) when the host has none,
    /// and the front answers 404.
    async fn help(&self, _engine_path: &str) -> Option<String> {
        None
    }

    /// Whether `auth/<mount>/login` is a login this host serves (`serve`'s JWT auth mounts).
    /// Hosts without logins keep the default: none.
    fn serves_login(&self, _mount: &str) -> bool {
        false
    }

    /// `auth/<mount>/login` with the request's fields: the new token's secret, its record
    /// (stored before this returns) and the TTL granted, or the refusal to answer with.
    async fn login(
        &self,
        _mount: &str,
        _data: &serde_json::Value,
    ) -> Result<(String, LoginToken, u64), ApiError> {
        Err(ApiError::new(405, "unsupported operation"))
    }

    /// The live login token whose secret is `secret`, if there is one.
    async fn token(&self, _secret: &str) -> Result<Option<LoginToken>, LeaseFailure> {
        Ok(None)
    }

    /// `auth/token/renew-self` for a login token: extend it by `increment` seconds (0: its
    /// creation TTL). Returns the token as renewed, the TTL granted and the warnings.
    async fn renew_token(
        &self,
        _secret: &str,
        _increment: u64,
    ) -> Result<(LoginToken, u64, Vec<String>), ApiError> {
        Err(ApiError::new(400, "lease is not renewable"))
    }

    /// `auth/token/revoke-self` for a login token: end the leases it created, then it.
    async fn revoke_token(&self, _secret: &str) -> Result<(), ApiError> {
        Err(ApiError::new(400, "no such token"))
    }
}

/// A request's body, read only once the request is known to be allowed somewhere.
#[allow(async_fn_in_trait)]
pub trait Body {
    /// The whole body, or the answer to give instead (too large, too slow, broken).
    async fn read(self) -> Result<Vec<u8>, ApiError>;
}

/// Run a future whose every step completes at once, as the gateway's calls do (the engine
/// and the store are imports that block): no executor, no threads.
///
/// # Panics
/// When the future waits for something (returns `Pending`): nothing would wake it.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => {
            panic!("block_on: the future waited, but only futures that complete at once run here")
        }
    }
}
