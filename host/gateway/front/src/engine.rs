//! The engine as the front calls it: the WIT contract's `backend` interface
//! (`wit/engine.wit`) as a plain Rust trait, so that the lease manager unit-tests against a
//! stub and the component adapter (`component.rs`) is the only code that knows the bindings.

use vault_front::{EngineFailure, EngineRequest, Timestamp};

/// The engine's `handle` and `existence-check` (`backend` in `wit/engine.wit`). Calls
/// complete before they return: in the gateway they are imports of the composed engine.
pub trait Engine {
    /// Handle one request.
    fn handle(&self, request: &Request) -> Result<Response, EngineError>;

    /// Whether the object a write would touch exists: `None` when the path has no check.
    fn existence_check(&self, request: &Request) -> Result<Option<bool>, EngineError>;
}

/// The contract's `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Create,
    Update,
    Delete,
    List,
    /// Extend a lease; `Request::lease` is set.
    Renew,
    /// End a lease; `Request::lease` is set.
    Revoke,
    /// The engine's housekeeping (interrupted creations, tokens of forgotten leases), which
    /// the gateway runs about once a minute across its instances ([`crate::leases`]).
    Rollback,
}

/// The contract's `lease-state`: what the engine is told of a lease it renews or revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// The `internal-data` JSON the engine returned when it created the lease.
    pub internal_data: String,
    pub issue_time: Timestamp,
    /// The TTL currently granted, in seconds.
    pub ttl: u64,
    /// For a renewal, the extension asked for in seconds; 0 for the engine's default.
    pub increment: u64,
}

/// The contract's `request` (the front knows no entity ids: `entity-id` is always `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub operation: Operation,
    /// The path below the mount, without a leading `/`.
    pub path: String,
    /// The request's fields as a JSON object.
    pub data: String,
    pub display_name: Option<String>,
    /// Set for renewals and revocations.
    pub lease: Option<LeaseState>,
}

impl From<EngineRequest> for Request {
    fn from(request: EngineRequest) -> Request {
        Request {
            operation: match request.operation {
                vault_front::Operation::Read => Operation::Read,
                vault_front::Operation::Create => Operation::Create,
                vault_front::Operation::Update => Operation::Update,
                vault_front::Operation::Delete => Operation::Delete,
                vault_front::Operation::List => Operation::List,
            },
            path: request.path,
            data: request.data,
            display_name: request.display_name,
            lease: None,
        }
    }
}

/// The contract's `lease`: what the engine created or renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Seconds until the lease ends unless renewed.
    pub ttl: u64,
    /// Seconds after issue beyond which no renewal extends it.
    pub max_ttl: u64,
    pub renewable: bool,
    /// Opaque JSON, sent back with renewals and revocations; never a secret.
    pub internal_data: String,
}

/// The contract's `response`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The response's fields as a JSON object; `None` when there is nothing at the path.
    pub data: Option<String>,
    pub lease: Option<Lease>,
    pub warnings: Vec<String>,
}

/// The contract's `error`: why the engine failed, each kind with the status Vault gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// 400.
    #[error("{0}")]
    InvalidRequest(String),
    /// 403.
    #[error("{0}")]
    PermissionDenied(String),
    /// 404.
    #[error("{0}")]
    UnsupportedPath(String),
    /// 405.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// 502: Docker Hub failed or could not be reached; `retry_after` is the Hub's
    /// `Retry-After`, in seconds.
    #[error("{message}")]
    Upstream {
        message: String,
        retry_after: Option<u64>,
    },
    /// 500.
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// The HTTP status Vault answers this kind with (as `serve` maps the same contract).
    pub fn http_status(&self) -> u16 {
        match self {
            EngineError::InvalidRequest(_) => 400,
            EngineError::PermissionDenied(_) => 403,
            EngineError::UnsupportedPath(_) => 404,
            EngineError::UnsupportedOperation(_) => 405,
            EngineError::Upstream { .. } => 502,
            EngineError::Internal(_) => 500,
        }
    }

    /// The seconds Docker Hub asked to wait before trying again, if it asked.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            EngineError::Upstream { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// As OpenBao answers a plugin's errors (and `serve` the same contract's): bad input with the
/// text alone, an unknown path or operation in OpenBao's words, anything else coded.
impl From<EngineError> for EngineFailure {
    fn from(e: EngineError) -> EngineFailure {
        match e {
            EngineError::UnsupportedPath(_) => EngineFailure::UnsupportedPath,
            EngineError::UnsupportedOperation(_) => EngineFailure::UnsupportedOperation,
            EngineError::InvalidRequest(message) => EngineFailure::Plain {
                status: 400,
                message,
            },
            e => EngineFailure::Coded {
                status: e.http_status(),
                message: e.to_string(),
            },
        }
    }
}
