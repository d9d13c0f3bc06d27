//! What the engine needs from whoever runs it: storage, HTTP, time, randomness, a log, and
//! the requester's identity.
//!
//! In the component these are WASI imports (`bindings` adapts them); in native unit tests
//! they are test doubles. Engine code sees only the [`Host`] trait, so it never knows which
//! host runs it.

use std::collections::BTreeMap;
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
    /// Roles for organization access tokens, keyed by role name.
    Role,
    /// Facts about the mount itself (its id, when tidy last ran), keyed by name.
    Mount,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Config => "config",
            Bucket::Session => "session",
            Bucket::Token => "token",
            Bucket::Wal => "wal",
            Bucket::Role => "role",
            Bucket::Mount => "mount",
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
    /// What happened, as the transport tells it: for the log. A permanent failure's message is
    /// the host's own word and is also what the caller is told.
    pub message: String,
    /// Why no answer arrived, as the host classified it; the caller is told
    /// [`NoAnswer::words`].
    pub kind: NoAnswer,
    /// Whether sending the same request again may get an answer: true for a connection that
    /// dropped, timed out or was refused; false when the host will not send it as it is (its
    /// sandbox, a body over its limit, a `Retry-After` longer than the call may run) or the
    /// answer itself was unusable (too large). Only transient failures are retried.
    pub transient: bool,
    /// Whether the request certainly never reached the server, so that the server cannot
    /// have acted on it: the host refused to send it (its sandbox, a `Retry-After` that
    /// outlasts the call) or no connection was made (the name did not resolve, the connection
    /// was refused, no route). False when it may have arrived: any timeout (a host may report
    /// one that struck after the request left as a connect timeout), a connection that closed
    /// mid-answer. A creation that was not sent needs no
    /// lookup of what it may have created.
    pub unsent: bool,
}

/// Why no answer arrived: the host's transport failure (a wasi:http `error-code`, a client
/// library's error) sorted into what an operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// The host will not send the request (its sandbox, its limits).
    Denied,
    /// The server's name did not resolve.
    Unresolved,
    /// The server refused the connection.
    Refused,
    /// No connection was made for another reason (no route to the server).
    Unreachable,
    /// The server did not answer in time; the request may have arrived.
    TimedOut,
    /// The connection closed, or the answer broke HTTP, before the answer was complete.
    Closed,
    /// The TLS handshake or the server's certificate failed.
    Tls,
    /// The answer is larger than the host allows.
    TooLarge,
}

impl NoAnswer {
    /// A stream failure the host gave as text only. wasmtime-wasi-http 48 hands a failed
    /// response body to the guest as an `io/error` built from its own `Error`, which
    /// `http-error-code` cannot read back (it knows only `types::ErrorCode`), so the text
    /// (wasmtime's `Display`: "connection read timeout", "connection terminated", ...) is
    /// all there is: a timeout is [`NoAnswer::TimedOut`], anything else
    /// [`NoAnswer::Closed`].
    pub fn of_stream_failure(text: &str) -> NoAnswer {
        let text = text.to_ascii_lowercase();
        if text.contains("timeout") || text.contains("timed out") {
            NoAnswer::TimedOut
        } else {
            NoAnswer::Closed
        }
    }

    /// The failure in an operator's words, without the transport's names.
    pub fn words(self) -> &'static str {
        match self {
            NoAnswer::Denied => "the host does not allow the request",
            NoAnswer::Unresolved => "its address could not be resolved",
            NoAnswer::Refused => "it could not be reached (the connection was refused)",
            NoAnswer::Unreachable => "it could not be reached (no connection was made)",
            NoAnswer::TimedOut => "it did not answer in time",
            NoAnswer::Closed => "the connection closed without an answer",
            NoAnswer::Tls => "the secure connection failed",
            NoAnswer::TooLarge => "its answer was too large",
        }
    }
}

impl TransportError {
    /// A failure on the way, which sending again may cure.
    pub fn transient(kind: NoAnswer, message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            kind,
            transient: true,
            unsent: false,
        }
    }

    /// A failure that the same request would meet again; its message is already in an
    /// operator's words and is passed on as it is.
    pub fn permanent(kind: NoAnswer, message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            kind,
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

/// A requester's identity entity, as the host's identity store keeps it (OpenBao's
/// `logical.Entity`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    pub id: String,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    /// Its aliases, one per auth mount it logs in with.
    pub aliases: Vec<Alias>,
}

/// The entity as one auth mount knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alias {
    pub id: String,
    /// The auth mount's accessor (`auth_jwt_1f2e3d4c`), which names the alias in templates.
    pub mount_accessor: String,
    pub mount_type: String,
    pub name: String,
    /// For OpenBao's `jwt` auth: the claims the role's `claim_mappings` name.
    pub metadata: BTreeMap<String, String>,
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

    /// The identity entity with this id; `Ok(None)` when there is none (or the host keeps no
    /// identities), `Err` with the host's reason when it could not look. It may cost the host a
    /// round trip, so ask only when the entity is needed.
    fn entity(&self, entity_id: &str) -> Result<Option<Entity>, String>;

    /// The mount's id as the host knows it (OpenBao: the backend UUID), the same on every
    /// node and after restarts; `None` when the host has none.
    fn mount_id(&self) -> Option<String>;

    /// How long the current call may still run before the host stops it; `None` when the
    /// host sets no limit. Cheap: ask before every wait.
    fn time_left(&self) -> Option<Duration>;
}

#[cfg(test)]
mod tests {
    use super::NoAnswer;

    #[test]
    fn a_stream_failure_given_as_text_is_a_timeout_or_a_closed_connection() {
        for (text, kind) in [
            // wasmtime-wasi-http 48's words for its `Error`, as the adapter receives them.
            ("connection read timeout", NoAnswer::TimedOut),
            ("connection write timeout", NoAnswer::TimedOut),
            ("DNS lookup timed out", NoAnswer::TimedOut),
            ("connection terminated", NoAnswer::Closed),
            (
                "hyper error: connection closed before message completed",
                NoAnswer::Closed,
            ),
            (
                "the server stopped sending its answer: the connection closed",
                NoAnswer::Closed,
            ),
        ] {
            assert_eq!(NoAnswer::of_stream_failure(text), kind, "{text}");
        }
    }
}
