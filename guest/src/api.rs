//! The engine's requests, responses and errors as plain Rust.
//!
//! These mirror the WIT `types` interface one to one, so that the engine's logic builds and
//! tests natively; `bindings` converts between the two at the component boundary.

use serde_json::{Map, Value};

/// Vault's logical operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Create,
    Update,
    Delete,
    List,
    Renew,
    Revoke,
    Rollback,
}

/// What the host knows about a lease, sent with `renew` and `revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// The JSON the engine put into the lease when it created it.
    pub internal_data: String,
    /// Unix seconds.
    pub issue_time: u64,
    pub ttl: u64,
    /// 0 when the caller asked for no particular extension.
    pub increment: u64,
}

/// One request, as a host hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub operation: Operation,
    pub path: String,
    /// A JSON object as text; parsed by the engine so that bad JSON is the engine's 400.
    pub data: String,
    pub display_name: Option<String>,
    pub entity_id: Option<String>,
    pub lease: Option<LeaseState>,
}

impl Request {
    /// A request with no data, requester or lease: the common case in tests.
    pub fn new(operation: Operation, path: impl Into<String>) -> Request {
        Request {
            operation,
            path: path.into(),
            data: "{}".to_string(),
            display_name: None,
            entity_id: None,
            lease: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Request {
        self.data = data.to_string();
        self
    }
}

/// A lease the host must track and later send back for `renew` and `revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ttl: u64,
    pub max_ttl: u64,
    pub renewable: bool,
    pub internal_data: String,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    /// `None`: nothing at this path (a read answers 404).
    pub data: Option<Map<String, Value>>,
    pub lease: Option<Lease>,
    pub warnings: Vec<String>,
}

impl Response {
    pub fn data(data: Map<String, Value>) -> Response {
        Response {
            data: Some(data),
            ..Response::default()
        }
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Response {
        self.warnings.extend(warnings);
        self
    }
}

/// A failure reported by Docker Hub, or the failure to reach it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamError {
    /// The Hub's HTTP status; 0 when no response arrived.
    pub status: u16,
    /// Says what was attempted and carries the Hub's message. Never a secret.
    pub message: String,
    /// Seconds the Hub asked us to wait (429).
    pub retry_after: Option<u64>,
}

/// Why a request failed, in Vault's categories.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// 400
    #[error("{0}")]
    InvalidRequest(String),
    /// 403
    #[error("{0}")]
    PermissionDenied(String),
    /// 404: no path matches.
    #[error("{0}")]
    UnsupportedPath(String),
    /// 405
    #[error("{0}")]
    UnsupportedOperation(String),
    /// 502
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// 500
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    pub fn invalid(message: impl Into<String>) -> EngineError {
        EngineError::InvalidRequest(message.into())
    }
}

/// The type of a request field, as `path-help` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Boolean,
    Duration,
    CommaStringList,
    Integer,
}

/// One field a path accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub description: &'static str,
    pub default: Option<&'static str>,
    pub required: bool,
    pub sensitive: bool,
}

/// Help for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathHelp {
    pub pattern: &'static str,
    pub operations: Vec<Operation>,
    pub existence_check: bool,
    pub synopsis: &'static str,
    pub description: &'static str,
    pub fields: Vec<Field>,
}

/// Help for the whole engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendHelp {
    pub description: &'static str,
    pub paths: Vec<PathHelp>,
}
