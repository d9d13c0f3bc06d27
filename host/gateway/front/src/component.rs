//! The component boundary: the `front` world's bindings (`wit/world.wit`), and the adapters
//! between them and the plain Rust parts: `wasi:http` requests and responses around
//! [`vault_front::handle`], [`Store`] over `wasi:keyvalue`, and [`Engine`] over the engine's
//! `backend` import. No front or lease logic lives here.

use crate::config::Config;
use crate::engine::{self, Engine, EngineError};
use crate::leases::{self, Leases};
use crate::store::{Store, StoreError};
use std::cell::OnceCell;
use vault_front::{ApiError, Timestamp};

wit_bindgen::generate!({
    // The engine's package (and the WASI packages it depends on) first, then this world's.
    path: ["../../../wit", "wit"],
    world: "dockerhub-secrets:gateway-front/front",
    generate_all,
});

use dockerhub_secrets::engine::backend;
use dockerhub_secrets::engine::types as wit;
use exports::wasi::http::incoming_handler::Guest;
use wasi::clocks::monotonic_clock;
use wasi::clocks::wall_clock::Datetime;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::poll;
use wasi::io::streams::StreamError;
use wasi::keyvalue::{atomics, store};

/// As `serve` takes at most: a body larger than this is refused with 413.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// The most bytes one write to a response body stream may carry (`wasi:io` guarantees 4096).
const WRITE_CHUNK: usize = 4096;

struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let config = match Config::from_env(|name| std::env::var(name).ok()) {
            Ok(config) => config,
            Err(e) => {
                return send(
                    response_out,
                    ApiError::new(500, e.to_string()).into_response(),
                );
            }
        };
        let leases = Leases::new(KeyValue::default(), Backend, &config.front.mount);
        send(response_out, answer(&config, &leases, request));
        // After the answer: the client does not wait for other leases' revocations.
        if let Err(e) = leases.after_answer(Timestamp::now()) {
            eprintln!("tidying leases after a request failed: {e}");
        }
    }
}

export!(Component);

/// The front's answer to one request.
fn answer(
    config: &Config,
    leases: &Leases<KeyValue, Backend>,
    request: IncomingRequest,
) -> vault_front::Response {
    let parts = match head(&request) {
        Ok(parts) => parts,
        Err(e) => return e.into_response(),
    };
    let body = RequestBody {
        request,
        timeout: config.body_read_timeout,
        declared: parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    };
    vault_front::block_on(vault_front::handle(&config.front, leases, &parts, body))
}

/// The request's method, path and query, and headers, as `http` holds them.
fn head(request: &IncomingRequest) -> Result<http::request::Parts, ApiError> {
    let method = match request.method() {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
        Method::Connect => http::Method::CONNECT,
        Method::Options => http::Method::OPTIONS,
        Method::Trace => http::Method::TRACE,
        Method::Patch => http::Method::PATCH,
        Method::Other(other) => http::Method::from_bytes(other.as_bytes())
            .map_err(|_| ApiError::new(400, format!("invalid method {other:?}")))?,
    };
    let target = request.path_with_query().unwrap_or_else(|| "/".into());
    let mut builder = http::Request::builder().method(method).uri(target.as_str());
    let headers = request.headers();
    for (name, value) in headers.entries() {
        builder = builder.header(name, value);
    }
    drop(headers);
    let (parts, ()) = builder
        .body(())
        .map_err(|e| ApiError::new(400, format!("invalid request: {e}")))?
        .into_parts();
    Ok(parts)
}

/// The incoming request's body, read only when the front asks for it.
struct RequestBody {
    request: IncomingRequest,
    /// How long the body may take, in seconds, from when the front asks for it.
    timeout: u64,
    /// The `Content-Length` the client declared, if any.
    declared: Option<usize>,
}

impl vault_front::Body for RequestBody {
    async fn read(self) -> Result<Vec<u8>, ApiError> {
        // `serve`'s words for a body over the engine's limit.
        let too_large = || {
            ApiError::new(
                413,
                format!(
                    "request body too large: the engine takes at most {MAX_REQUEST_BYTES} bytes"
                ),
            )
        };
        if self
            .declared
            .is_some_and(|length| length > MAX_REQUEST_BYTES)
        {
            return Err(too_large());
        }
        let broken =
            |what: &str| ApiError::new(400, format!("error reading the request body: {what}"));
        let body = self
            .request
            .consume()
            .map_err(|()| broken("the body was taken already"))?;
        let stream = body
            .stream()
            .map_err(|()| broken("the body's stream was taken already"))?;
        // `serve`'s answer to a body that does not arrive in time.
        let timed_out = ApiError::new(
            408,
            format!("the request body did not arrive within {}s", self.timeout),
        );
        let deadline =
            monotonic_clock::subscribe_duration(self.timeout.saturating_mul(1_000_000_000));
        let readable = stream.subscribe();
        let mut bytes = Vec::new();
        let outcome = loop {
            if !poll::poll(&[&readable, &deadline]).contains(&0) {
                break Err(timed_out);
            }
            match stream.read((MAX_REQUEST_BYTES + 1 - bytes.len()) as u64) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_REQUEST_BYTES {
                        break Err(too_large());
                    }
                }
                Err(StreamError::Closed) => break Ok(bytes),
                Err(StreamError::LastOperationFailed(e)) => {
                    break Err(broken(&e.to_debug_string()));
                }
            }
        };
        // A pollable goes before the stream it belongs to.
        drop(readable);
        drop(stream);
        outcome
    }
}

/// Send `response` through `out`: status, headers, and the whole body.
fn send(out: ResponseOutparam, response: vault_front::Response) {
    let entries: Vec<(String, Vec<u8>)> = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect();
    let fields = match Fields::from_list(&entries) {
        Ok(fields) => fields,
        Err(e) => {
            eprintln!("the front's answer has headers wasi:http refuses: {e:?}");
            Fields::new()
        }
    };
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status().as_u16());
    let body = outgoing.body();
    ResponseOutparam::set(out, Ok(outgoing));
    let Ok(body) = body else {
        return;
    };
    if let Ok(stream) = body.write() {
        for chunk in response.body().chunks(WRITE_CHUNK) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                eprintln!("sending the answer failed: {e:?}");
                break;
            }
        }
    }
    if let Err(e) = OutgoingBody::finish(body, None) {
        eprintln!("finishing the answer failed: {e:?}");
    }
}

/// The bucket [`leases::BUCKET`], opened on first use: probes answer without it.
#[derive(Default)]
struct KeyValue {
    bucket: OnceCell<store::Bucket>,
}

impl KeyValue {
    fn bucket(&self) -> Result<&store::Bucket, StoreError> {
        if let Some(bucket) = self.bucket.get() {
            return Ok(bucket);
        }
        let opened = store::open(leases::BUCKET).map_err(|e| {
            StoreError(format!(
                "opening the bucket {:?} failed: {}",
                leases::BUCKET,
                store_error(e)
            ))
        })?;
        Ok(self.bucket.get_or_init(|| opened))
    }
}

fn store_error(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "the host has no such bucket".into(),
        store::Error::AccessDenied => "the host denied access to the bucket".into(),
        store::Error::Other(message) => message,
    }
}

impl Store for KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket()?
            .get(key)
            .map_err(|e| StoreError(format!("reading {key:?} failed: {}", store_error(e))))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bucket()?
            .set(key, value)
            .map_err(|e| StoreError(format!("writing {key:?} failed: {}", store_error(e))))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bucket()?
            .delete(key)
            .map_err(|e| StoreError(format!("deleting {key:?} failed: {}", store_error(e))))
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let bucket = self.bucket()?;
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = bucket.list_keys(cursor).map_err(|e| {
                StoreError(format!("listing the leases failed: {}", store_error(e)))
            })?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError> {
        atomics::increment(self.bucket()?, key, delta)
            .map_err(|e| StoreError(format!("incrementing {key:?} failed: {}", store_error(e))))
    }
}

/// The engine, through its `backend` import.
struct Backend;

impl Engine for Backend {
    fn handle(&self, request: &engine::Request) -> Result<engine::Response, EngineError> {
        backend::handle(&to_wit(request))
            .map(from_wit)
            .map_err(error_from_wit)
    }

    fn existence_check(&self, request: &engine::Request) -> Result<Option<bool>, EngineError> {
        backend::existence_check(&to_wit(request)).map_err(error_from_wit)
    }
}

fn to_wit(request: &engine::Request) -> wit::Request {
    use engine::Operation as O;
    wit::Request {
        operation: match request.operation {
            O::Read => wit::Operation::Read,
            O::Create => wit::Operation::Create,
            O::Update => wit::Operation::Update,
            O::Delete => wit::Operation::Delete,
            O::List => wit::Operation::List,
            O::Renew => wit::Operation::Renew,
            O::Revoke => wit::Operation::Revoke,
            O::Rollback => wit::Operation::Rollback,
        },
        path: request.path.clone(),
        data: request.data.clone(),
        display_name: request.display_name.clone(),
        entity_id: None,
        lease: request.lease.as_ref().map(|lease| wit::LeaseState {
            internal_data: lease.internal_data.clone(),
            issue_time: Datetime {
                seconds: lease.issue_time.secs(),
                nanoseconds: lease.issue_time.subsec_nanos(),
            },
            ttl: lease.ttl,
            increment: lease.increment,
        }),
    }
}

fn from_wit(response: wit::Response) -> engine::Response {
    engine::Response {
        data: response.data,
        lease: response.lease.map(|lease| engine::Lease {
            ttl: lease.ttl,
            max_ttl: lease.max_ttl,
            renewable: lease.renewable,
            internal_data: lease.internal_data,
        }),
        warnings: response.warnings,
    }
}

fn error_from_wit(e: wit::Error) -> EngineError {
    match e {
        wit::Error::InvalidRequest(m) => EngineError::InvalidRequest(m),
        wit::Error::PermissionDenied(m) => EngineError::PermissionDenied(m),
        wit::Error::UnsupportedPath(m) => EngineError::UnsupportedPath(m),
        wit::Error::UnsupportedOperation(m) => EngineError::UnsupportedOperation(m),
        wit::Error::Upstream(u) => EngineError::Upstream {
            message: u.message,
            retry_after: u.retry_after,
        },
        wit::Error::Internal(m) => EngineError::Internal(m),
    }
}
