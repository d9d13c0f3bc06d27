//! The component boundary: the WIT `engine` world's bindings, the conversions between its
//! types and [`crate::api`], and [`WasiHost`], which implements [`Host`] over the WASI
//! imports. No engine logic lives here.

use crate::api;
use crate::capabilities::{
    Alias, Bucket, Entity, Host, HttpRequest, HttpResponse, Level, NoAnswer, StorageError,
    TransportError,
};
use std::cell::OnceCell;
use std::time::Duration;

wit_bindgen::generate!({
    path: "../wit",
    world: "engine",
    generate_all,
});

use dockerhub_secrets::engine::types as wit;
use exports::dockerhub_secrets::engine::backend::Guest;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    http_error_code,
};
use wasi::io::streams::StreamError;
use wasi::keyvalue::store;

/// Docker Hub as the engine addresses it; the host routes it where its operator wants.
const HUB_AUTHORITY: &str = "hub.docker.com";
/// The Hub answers in kilobytes; anything near this is not the Hub.
const MAX_RESPONSE_BYTES: usize = 4 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

struct Component;

impl Guest for Component {
    fn handle(request: wit::Request) -> Result<wit::Response, wit::Error> {
        crate::backend::handle(&WasiHost::default(), &request.into())
            .map(Into::into)
            .map_err(Into::into)
    }

    fn existence_check(request: wit::Request) -> Result<Option<bool>, wit::Error> {
        crate::backend::existence_check(&WasiHost::default(), &request.into()).map_err(Into::into)
    }

    fn help() -> wit::BackendHelp {
        crate::backend::help().into()
    }
}

export!(Component);

/// [`Host`] over WASI imports. Buckets are opened once per call, on first use.
#[derive(Default)]
struct WasiHost {
    buckets: [OnceCell<store::Bucket>; 6],
}

impl WasiHost {
    fn bucket(&self, bucket: Bucket) -> Result<&store::Bucket, StorageError> {
        let cell = &self.buckets[bucket as usize];
        if let Some(opened) = cell.get() {
            return Ok(opened);
        }
        let opened = store::open(bucket.name()).map_err(storage_error)?;
        Ok(cell.get_or_init(|| opened))
    }
}

fn storage_error(e: store::Error) -> StorageError {
    StorageError(match e {
        store::Error::NoSuchStore => "the host has no such bucket".to_string(),
        store::Error::AccessDenied => "the host denied access to the bucket".to_string(),
        store::Error::Other(message) => message,
    })
}

impl Host for WasiHost {
    fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.bucket(bucket)?.get(key).map_err(storage_error)
    }

    fn set(&self, bucket: Bucket, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.bucket(bucket)?.set(key, value).map_err(storage_error)
    }

    fn delete(&self, bucket: Bucket, key: &str) -> Result<(), StorageError> {
        self.bucket(bucket)?.delete(key).map_err(storage_error)
    }

    fn list(&self, bucket: Bucket) -> Result<Vec<String>, StorageError> {
        let bucket = self.bucket(bucket)?;
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = bucket.list_keys(cursor).map_err(storage_error)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        send(request).map_err(|e| {
            let message = e.to_string();
            let kind = no_answer(&e);
            let error = match e {
                // The host will not send it as it is, or the answer was unusable: the same
                // request would fail the same way.
                SendError::Http(
                    ErrorCode::HttpRequestDenied
                    | ErrorCode::HttpRequestBodySize(_)
                    | ErrorCode::HttpResponseBodySize(_)
                    | ErrorCode::InternalError(_),
                )
                | SendError::TooLarge => TransportError::permanent(kind, message),
                _ => TransportError::transient(kind, message),
            };
            match e {
                SendError::Http(code) if never_sent(&code) => error.unsent(),
                _ => error,
            }
        })
    }

    fn now(&self) -> u64 {
        wasi::clocks::wall_clock::now().seconds
    }

    fn sleep(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wasi::clocks::monotonic_clock::subscribe_duration(nanos).block();
    }

    fn random_u64(&self) -> u64 {
        wasi::random::random::get_random_u64()
    }

    fn log(&self, level: Level, context: &str, message: &str) {
        use wasi::logging::logging::{Level as L, log};
        let level = match level {
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        log(level, context, message);
    }

    fn max_lease_ttl(&self) -> Option<u64> {
        dockerhub_secrets::engine::lease_limits::max_ttl()
    }

    fn mount_id(&self) -> Option<String> {
        dockerhub_secrets::engine::mount::instance_id()
    }

    fn entity(&self, entity_id: &str) -> Result<Option<Entity>, String> {
        use dockerhub_secrets::engine::identity;
        let alias = |a: identity::Alias| Alias {
            id: a.id,
            mount_accessor: a.mount_accessor,
            mount_type: a.mount_type,
            name: a.name,
            metadata: a.metadata.into_iter().collect(),
        };
        Ok(identity::entity_info(entity_id)?.map(|e| Entity {
            id: e.id,
            name: e.name,
            metadata: e.metadata.into_iter().collect(),
            aliases: e.aliases.into_iter().map(alias).collect(),
        }))
    }

    fn time_left(&self) -> Option<Duration> {
        dockerhub_secrets::engine::call_limits::time_left().map(Duration::from_nanos)
    }
}

/// Why a request got no response: a wasi:http error code or a stream failure.
enum SendError {
    Http(ErrorCode),
    Stream(String),
    TooLarge,
}

/// What went wrong, in an operator's words; never the name of a wasi:http enum case.
impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Http(code) => f.write_str(&describe(code)),
            SendError::Stream(message) => f.write_str(message),
            SendError::TooLarge => write!(f, "the answer exceeds {MAX_RESPONSE_BYTES} bytes"),
        }
    }
}

fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => "the host denied the request".into(),
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
            "the server's name could not be resolved".into()
        }
        ErrorCode::ConnectionRefused
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable => "the server could not be reached".into(),
        ErrorCode::ConnectionTimeout => {
            "the connection to the server timed out; the request may or may not have taken effect"
                .into()
        }
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "the server did not answer in time; the request may or may not have taken effect".into()
        }
        ErrorCode::ConnectionWriteTimeout => "sending the request timed out".into(),
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => {
            "the connection closed before the answer was complete; the request may or may not \
             have taken effect"
                .into()
        }
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => "the TLS connection to the server failed".into(),
        ErrorCode::HttpRequestBodySize(_) => {
            "the request body is larger than the host allows".into()
        }
        ErrorCode::HttpResponseBodySize(_) => "the answer is larger than allowed".into(),
        ErrorCode::HttpProtocolError => {
            "the server's answer broke the HTTP protocol; the request may or may not have taken \
             effect"
                .into()
        }
        ErrorCode::InternalError(Some(message)) => message.clone(),
        other => format!("the HTTP exchange failed ({other:?})"),
    }
}

/// Why no answer arrived, sorted from the wasi:http error code (`wasi:http/types.error-code`).
fn no_answer(error: &SendError) -> NoAnswer {
    let code = match error {
        SendError::Http(code) => code,
        SendError::Stream(text) => return NoAnswer::of_stream_failure(text),
        SendError::TooLarge => return NoAnswer::TooLarge,
    };
    match code {
        ErrorCode::HttpRequestDenied
        | ErrorCode::HttpRequestBodySize(_)
        | ErrorCode::InternalError(_) => NoAnswer::Denied,
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
            NoAnswer::Unresolved
        }
        ErrorCode::ConnectionRefused => NoAnswer::Refused,
        ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable => NoAnswer::Unreachable,
        // See `never_sent`: a host may say `connection-timeout` after the request left.
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => NoAnswer::TimedOut,
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => NoAnswer::Tls,
        ErrorCode::HttpResponseBodySize(_) => NoAnswer::TooLarge,
        _ => NoAnswer::Closed,
    }
}

/// Whether a wasi:http error code says the request never reached the server: the host
/// refused it (`HTTP-request-denied`; `internal-error`, which the engine's hosts use only for
/// a request they will not send, as `wit/engine.wit` says) or no connection was made. A
/// timeout or a closed connection while waiting for the answer is not one of them: the
/// request may have arrived. Nor is `connection-timeout`: jco's Node.js host gives its
/// connect timeout to the socket as an idle timeout, which also fires while the server is
/// working on a request it received, and answers `connection-timeout` then.
fn never_sent(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::HttpRequestDenied
            | ErrorCode::InternalError(_)
            | ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpProhibited
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::ConnectionRefused
    )
}

impl From<ErrorCode> for SendError {
    fn from(e: ErrorCode) -> SendError {
        SendError::Http(e)
    }
}

/// A stream failure: the wasi:http error behind it when there is one.
fn stream_error(doing: &str, e: StreamError) -> SendError {
    match e {
        StreamError::Closed => SendError::Stream(format!("{doing}: the connection closed")),
        StreamError::LastOperationFailed(e) => match http_error_code(&e) {
            Some(code) => SendError::Http(code),
            None => SendError::Stream(format!("{doing}: {}", e.to_debug_string())),
        },
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One exchange. The request starts before its body is written: wasi:http's body pipe holds
/// little (one write in wasmtime), so a body written whole first would wait for a reader that
/// is only started by `handle`. The body then goes out in the pieces the stream accepts.
fn send(request: &HttpRequest) -> Result<HttpResponse, SendError> {
    let headers = Fields::new();
    for (name, value) in &request.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| SendError::Stream(format!("header {name}: {e:?}")))?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    let invalid = |what: &str| SendError::Stream(format!("invalid {what}"));
    outgoing
        .set_method(&method)
        .map_err(|_| invalid("method"))?;
    outgoing
        .set_scheme(Some(&Scheme::Https))
        .map_err(|_| invalid("scheme"))?;
    outgoing
        .set_authority(Some(HUB_AUTHORITY))
        .map_err(|_| invalid("authority"))?;
    outgoing
        .set_path_with_query(Some(&request.path))
        .map_err(|_| invalid("path"))?;

    let body = outgoing.body().map_err(|_| invalid("body"))?;
    let options = RequestOptions::new();
    // A host may refuse to set timeouts; its own per-call time limit still applies.
    let _ = options.set_connect_timeout(Some(nanos(CONNECT_TIMEOUT)));
    let _ = options.set_first_byte_timeout(Some(nanos(RESPONSE_TIMEOUT)));
    let _ = options.set_between_bytes_timeout(Some(nanos(RESPONSE_TIMEOUT)));
    let pending = wasi::http::outgoing_handler::handle(outgoing, Some(options))?;
    let written = write_body(body, request.body.as_deref());
    pending.subscribe().block();
    // When the upload failed because the host gave up on the request, its answer says why.
    let response = pending
        .get()
        .ok_or_else(|| SendError::Stream("response not ready after waiting".into()))?
        .map_err(|_| SendError::Stream("response taken twice".into()))??;
    written?;

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|_| invalid("response body"))?;
    let stream = incoming.stream().map_err(|_| invalid("response stream"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_RESPONSE_BYTES {
                    return Err(SendError::TooLarge);
                }
            }
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error("the server stopped sending its answer", e)),
        }
    }
    drop(stream);
    IncomingBody::finish(incoming);
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Write `bytes` (if any) to a started request's body, as fast as the stream takes them,
/// then finish the body.
fn write_body(body: OutgoingBody, bytes: Option<&[u8]>) -> Result<(), SendError> {
    if let Some(mut rest) = bytes {
        let stream = body
            .write()
            .map_err(|_| SendError::Stream("invalid body stream".into()))?;
        let writing = "sending the request body failed";
        while !rest.is_empty() {
            let allowed = stream.check_write().map_err(|e| stream_error(writing, e))?;
            if allowed == 0 {
                stream.subscribe().block();
                continue;
            }
            let n = rest
                .len()
                .min(usize::try_from(allowed).unwrap_or(usize::MAX));
            stream
                .write(&rest[..n])
                .map_err(|e| stream_error(writing, e))?;
            rest = &rest[n..];
        }
        stream
            .blocking_flush()
            .map_err(|e| stream_error(writing, e))?;
    }
    OutgoingBody::finish(body, None)?;
    Ok(())
}

impl From<wit::Operation> for api::Operation {
    fn from(op: wit::Operation) -> api::Operation {
        match op {
            wit::Operation::Read => api::Operation::Read,
            wit::Operation::Create => api::Operation::Create,
            wit::Operation::Update => api::Operation::Update,
            wit::Operation::Delete => api::Operation::Delete,
            wit::Operation::List => api::Operation::List,
            wit::Operation::Renew => api::Operation::Renew,
            wit::Operation::Revoke => api::Operation::Revoke,
            wit::Operation::Rollback => api::Operation::Rollback,
        }
    }
}

impl From<api::Operation> for wit::Operation {
    fn from(op: api::Operation) -> wit::Operation {
        match op {
            api::Operation::Read => wit::Operation::Read,
            api::Operation::Create => wit::Operation::Create,
            api::Operation::Update => wit::Operation::Update,
            api::Operation::Delete => wit::Operation::Delete,
            api::Operation::List => wit::Operation::List,
            api::Operation::Renew => wit::Operation::Renew,
            api::Operation::Revoke => wit::Operation::Revoke,
            api::Operation::Rollback => wit::Operation::Rollback,
        }
    }
}

impl From<wit::Request> for api::Request {
    fn from(r: wit::Request) -> api::Request {
        api::Request {
            operation: r.operation.into(),
            path: r.path,
            data: r.data,
            display_name: r.display_name,
            entity_id: r.entity_id,
            lease: r.lease.map(|l| api::LeaseState {
                internal_data: l.internal_data,
                issue_time: l.issue_time.seconds,
                ttl: l.ttl,
                increment: l.increment,
            }),
        }
    }
}

impl From<api::Response> for wit::Response {
    fn from(r: api::Response) -> wit::Response {
        wit::Response {
            data: r.data.map(|d| serde_json::Value::Object(d).to_string()),
            lease: r.lease.map(|l| wit::Lease {
                ttl: l.ttl,
                max_ttl: l.max_ttl,
                renewable: l.renewable,
                internal_data: l.internal_data,
            }),
            warnings: r.warnings,
        }
    }
}

impl From<api::EngineError> for wit::Error {
    fn from(e: api::EngineError) -> wit::Error {
        match e {
            api::EngineError::InvalidRequest(m) => wit::Error::InvalidRequest(m),
            api::EngineError::PermissionDenied(m) => wit::Error::PermissionDenied(m),
            api::EngineError::UnsupportedPath(m) => wit::Error::UnsupportedPath(m),
            api::EngineError::UnsupportedOperation(m) => wit::Error::UnsupportedOperation(m),
            api::EngineError::Upstream(u) => wit::Error::Upstream(wit::UpstreamError {
                status: u.status,
                message: u.message,
                retry_after: u.retry_after,
            }),
            api::EngineError::Internal(m) => wit::Error::Internal(m),
        }
    }
}

impl From<api::BackendHelp> for wit::BackendHelp {
    fn from(h: api::BackendHelp) -> wit::BackendHelp {
        wit::BackendHelp {
            description: h.description.to_string(),
            paths: h
                .paths
                .into_iter()
                .map(|p| wit::PathHelp {
                    pattern: p.pattern.to_string(),
                    operations: p.operations.into_iter().map(Into::into).collect(),
                    existence_check: p.existence_check,
                    synopsis: p.synopsis.to_string(),
                    description: p.description.to_string(),
                    fields: p
                        .fields
                        .into_iter()
                        .map(|f| wit::Field {
                            name: f.name.to_string(),
                            kind: match f.kind {
                                api::FieldKind::String => wit::FieldKind::String,
                                api::FieldKind::Boolean => wit::FieldKind::Boolean,
                                api::FieldKind::Duration => wit::FieldKind::Duration,
                                api::FieldKind::CommaStringList => wit::FieldKind::CommaStringList,
                                api::FieldKind::Integer => wit::FieldKind::Integer,
                            },
                            description: f.description.to_string(),
                            default: f.default.map(str::to_string),
                            required: f.required,
                            sensitive: f.sensitive,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
