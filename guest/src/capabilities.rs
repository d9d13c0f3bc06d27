//! What the engine needs from whoever runs it: storage, HTTP, time, randomness and a log.
//!
//! In the component these are WASI imports (`bindings` adapts them); in native unit tests
//! they are test doubles. Engine code sees only the [`Host`] trait, so it never knows which
//! host runs it.

use std::time::Duration;

/// The storage buckets the engine uses. Keys within a bucket never contain `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    /// Account configurations, keyed by account.
    Config,
    /// Cached Docker Hub sessions (JWTs), keyed by account.
    Session,
    /// A record of every issued, not yet revoked token, keyed by the token's uuid.
    Token,
    /// Write-ahead records of token creations in progress, keyed by a random id.
    Wal,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Config => "config",
            Bucket::Session => "session",
            Bucket::Token => "token",
            Bucket::Wal => "wal",
        }
    }
}

/// Storage failed; the text says how (it never contains a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

/// An HTTP request to Docker Hub. `path` includes the query, e.g. `/v2/access-tokens?page=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// Docker Hub's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// No response arrived (refused, dropped, timed out, denied by the host's sandbox).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    /// What happened, as the transport tells it.
    pub message: String,
    /// Whether sending the same request again may get an answer: true for a connection that
    /// dropped, timed out or was refused; false when the host will not send it as it is (its
    /// sandbox, a body over its limit, a `Retry-After` longer than the call may run) or the
    /// answer itself was unusable (too large). Only transient failures are retried.
    pub transient: bool,
    /// Whether the request certainly never reached the server, so that the server cannot
    /// have acted on it: the host refused to send it (its sandbox, a `Retry-After` that
    /// outlasts the call) or no connection was made (the name did not resolve, the connection
    /// was refused or timed out). False when it may have arrived: a timeout waiting for the
    /// answer, a connection that closed mid-answer. A creation that was not sent needs no
    /// lookup of what it may have created.
    pub unsent: bool,
}

impl TransportError {
    /// A failure on the way, which sending again may cure.
    pub fn transient(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            transient: true,
            unsent: false,
        }
    }

    /// A failure that the same request would meet again; its message is already in an
    /// operator's words and is passed on as it is.
    pub fn permanent(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            transient: false,
            unsent: false,
        }
    }

    /// The same failure, known not to have reached the server.
    pub fn unsent(self) -> TransportError {
        TransportError {
            unsent: true,
            ..self
        }
    }
}

/// How important a log record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// The capabilities a host supplies to the engine.
pub trait Host {
    fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    fn set(&self, bucket: Bucket, key: &str, value: &[u8]) -> Result<(), StorageError>;
    /// Deleting a missing key succeeds.
    fn delete(&self, bucket: Bucket, key: &str) -> Result<(), StorageError>;
    /// Every key in the bucket, in no particular order.
    fn list(&self, bucket: Bucket) -> Result<Vec<String>, StorageError>;

    /// Send a request to Docker Hub. The host decides where Docker Hub is.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;

    /// Wall-clock time, in Unix seconds.
    fn now(&self) -> u64;
    /// Block for `duration` (waiting out a rate limit).
    fn sleep(&self, duration: Duration);
    fn random_u64(&self) -> u64;

    /// Emit a log record. Callers never pass secrets.
    fn log(&self, level: Level, context: &str, message: &str);

    /// The longest a lease may last after issue as the host enforces it (a Vault mount's max
    /// lease TTL), in seconds; `None` when the host sets no limit. It may cost the host a
    /// round trip, so ask only while issuing or renewing a lease.
    fn max_lease_ttl(&self) -> Option<u64>;

    /// How long the current call may still run before the host stops it; `None` when the
    /// host sets no limit. Cheap: ask before every wait.
    fn time_left(&self) -> Option<Duration>;
}
