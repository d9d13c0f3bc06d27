//! The component boundary: the `keyvalue-etcd` world's bindings, the configuration read from
//! `wasi:cli/environment`, and [`WasiHttp`], the [`Transport`] over
//! `wasi:http/outgoing-handler`. No store logic lives here.

use crate::bucket::{self, Bucket};
use crate::config::{Config, ConfigError, Endpoint};
use crate::etcd::{Reply, Transport, TransportError};
use crate::seal::NONCE_LEN;
use std::sync::OnceLock;
use std::time::Duration;

// The project's vendored WASI packages (`wit/deps`), each after the packages it uses, then
// this component's own world.
wit_bindgen::generate!({
    path: [
        "../../../wit/deps/io",
        "../../../wit/deps/clocks",
        "../../../wit/deps/random",
        "../../../wit/deps/filesystem",
        "../../../wit/deps/sockets",
        "../../../wit/deps/cli",
        "../../../wit/deps/http",
        "../../../wit/deps/keyvalue",
        "wit",
    ],
    world: "dockerhub-secrets:keyvalue-etcd/keyvalue-etcd",
    generate_all,
});

use exports::wasi::keyvalue::store::{self, BucketBorrow, GuestBucket, KeyResponse};
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    http_error_code,
};
use wasi::io::streams::StreamError;

/// How long to wait for a connection, for the first byte of an answer, and between bytes.
/// etcd answers in milliseconds; a member that takes this long is hung or partitioned.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read: a page of keys is well below it.
const MAX_REPLY_BYTES: usize = 64 << 20;

/// The configuration, read on the first `open` of the instance.
static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();

fn config() -> Result<&'static Config, store::Error> {
    CONFIG
        .get_or_init(|| {
            let environment = wasi::cli::environment::get_environment();
            Config::from_lookup(|name| {
                environment
                    .iter()
                    .find(|(var, _)| var == name)
                    .map(|(_, value)| value.clone())
            })
        })
        .as_ref()
        .map_err(|e| store::Error::Other(e.to_string()))
}

/// Fresh random bytes from `wasi:random`, taken as two `u64`s so that none is missing.
fn random() -> [u8; NONCE_LEN] {
    let first = wasi::random::random::get_random_u64().to_le_bytes();
    let second = wasi::random::random::get_random_u64().to_le_bytes();
    let mut bytes = [0; NONCE_LEN];
    bytes[..8].copy_from_slice(&first);
    bytes[8..].copy_from_slice(&second[..NONCE_LEN - 8]);
    bytes
}

impl From<bucket::Error> for store::Error {
    fn from(e: bucket::Error) -> store::Error {
        match e {
            bucket::Error::NoSuchStore => store::Error::NoSuchStore,
            bucket::Error::Other(message) => store::Error::Other(message),
        }
    }
}

struct Component;

/// The `bucket` resource.
struct OpenBucket(Bucket<WasiHttp>);

impl store::Guest for Component {
    type Bucket = OpenBucket;

    fn open(identifier: String) -> Result<store::Bucket, store::Error> {
        let bucket = Bucket::open(config()?, WasiHttp, random, &identifier)?;
        Ok(store::Bucket::new(OpenBucket(bucket)))
    }
}

impl GuestBucket for OpenBucket {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, store::Error> {
        Ok(self.0.get(&key)?)
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), store::Error> {
        Ok(self.0.set(&key, &value)?)
    }

    fn delete(&self, key: String) -> Result<(), store::Error> {
        Ok(self.0.delete(&key)?)
    }

    fn exists(&self, key: String) -> Result<bool, store::Error> {
        Ok(self.0.exists(&key)?)
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, store::Error> {
        let page = self.0.list_keys(cursor)?;
        Ok(KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }
}

impl exports::wasi::keyvalue::atomics::Guest for Component {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, store::Error> {
        Ok(bucket.get::<OpenBucket>().0.increment(&key, delta)?)
    }
}

export!(Component);

/// [`Transport`] over `wasi:http/outgoing-handler`, blocking on its pollables.
struct WasiHttp;

impl Transport for WasiHttp {
    fn post(&self, endpoint: &Endpoint, path: &str, body: &[u8]) -> Result<Reply, TransportError> {
        post(endpoint, path, body).map_err(|e| match e {
            Failure::Code(code) if never_sent(&code) => TransportError::Unsent(describe(&code)),
            Failure::Code(code) => TransportError::Failed(describe(&code)),
            Failure::Unsent(message) => TransportError::Unsent(message),
            Failure::Other(message) => TransportError::Failed(message),
        })
    }
}

/// Why an exchange failed: a wasi:http error code, or our own words.
enum Failure {
    Code(ErrorCode),
    /// Failed before anything was handed to the host.
    Unsent(String),
    Other(String),
}

impl From<ErrorCode> for Failure {
    fn from(code: ErrorCode) -> Failure {
        Failure::Code(code)
    }
}

/// Whether the host says no connection was made, so etcd never saw the request.
fn never_sent(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::HttpRequestDenied
            | ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpProhibited
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTimeout
    )
}

/// A wasi:http error code in an operator's words.
fn describe(code: &ErrorCode) -> String {
    let secs = TIMEOUT.as_secs();
    match code {
        ErrorCode::HttpRequestDenied => "the gateway denied the request".into(),
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
            "its name does not resolve".into()
        }
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable => "it cannot be reached".into(),
        ErrorCode::ConnectionTimeout => format!("no connection within {secs} s"),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            format!("no answer within {secs} s")
        }
        ErrorCode::ConnectionWriteTimeout => format!("the request was not taken within {secs} s"),
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => {
            "the connection closed before the answer was complete".into()
        }
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => "the TLS connection failed".into(),
        ErrorCode::HttpResponseBodySize(_) => "the answer is too large".into(),
        ErrorCode::InternalError(Some(message)) => message.clone(),
        other => format!("the HTTP exchange failed ({other:?})"),
    }
}

fn stream_failure(doing: &str, e: StreamError) -> Failure {
    match e {
        StreamError::Closed => Failure::Other(format!("{doing}: the connection closed")),
        StreamError::LastOperationFailed(e) => match http_error_code(&e) {
            Some(code) => Failure::Code(code),
            None => Failure::Other(format!("{doing}: {}", e.to_debug_string())),
        },
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One `POST`. The request is handed to the host before its body is written, because
/// wasi:http's body pipe holds little and is drained only once the request is under way.
fn post(endpoint: &Endpoint, path: &str, body: &[u8]) -> Result<Reply, Failure> {
    let invalid = |what: &str| Failure::Unsent(format!("the gateway refused the request's {what}"));
    let headers = Fields::new();
    headers
        .append("content-type", b"application/json")
        .map_err(|_| invalid("content-type"))?;
    let request = OutgoingRequest::new(headers);
    request
        .set_method(&Method::Post)
        .map_err(|_| invalid("method"))?;
    let scheme = if endpoint.tls {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|_| invalid("scheme"))?;
    request
        .set_authority(Some(&endpoint.authority))
        .map_err(|_| invalid("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|_| invalid("path"))?;
    let outgoing = request.body().map_err(|_| invalid("body"))?;

    let options = RequestOptions::new();
    // A gateway may not support a timeout; its own limits then apply.
    let _ = options.set_connect_timeout(Some(nanos(TIMEOUT)));
    let _ = options.set_first_byte_timeout(Some(nanos(TIMEOUT)));
    let _ = options.set_between_bytes_timeout(Some(nanos(TIMEOUT)));
    let pending = wasi::http::outgoing_handler::handle(request, Some(options))?;
    let written = write_body(outgoing, body);
    pending.subscribe().block();
    // When the upload failed because the host gave up on the request, its answer says why.
    let response = pending
        .get()
        .ok_or_else(|| Failure::Other("no answer after waiting for it".into()))?
        .map_err(|_| Failure::Other("the answer was taken twice".into()))??;
    written?;

    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|_| Failure::Other("the answer has no body".into()))?;
    let stream = incoming
        .stream()
        .map_err(|_| Failure::Other("the answer's body cannot be read".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_REPLY_BYTES {
                    return Err(Failure::Other(format!(
                        "the answer exceeds {MAX_REPLY_BYTES} bytes"
                    )));
                }
            }
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_failure("reading the answer", e)),
        }
    }
    drop(stream);
    IncomingBody::finish(incoming);
    Ok(Reply { status, body })
}

/// Write `bytes` to a request under way as fast as the stream takes them, then finish it.
fn write_body(body: OutgoingBody, mut rest: &[u8]) -> Result<(), Failure> {
    let writing = "sending the request";
    let stream = body
        .write()
        .map_err(|_| Failure::Other(format!("{writing}: no body stream")))?;
    while !rest.is_empty() {
        let allowed = stream
            .check_write()
            .map_err(|e| stream_failure(writing, e))?;
        if allowed == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = rest
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        stream
            .write(&rest[..n])
            .map_err(|e| stream_failure(writing, e))?;
        rest = &rest[n..];
    }
    stream
        .blocking_flush()
        .map_err(|e| stream_failure(writing, e))?;
    drop(stream);
    OutgoingBody::finish(body, None)?;
    Ok(())
}
