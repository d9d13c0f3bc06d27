//! The engine's only way out: HTTP to Docker Hub, and nowhere else.
//!
//! The engine addresses the Hub as `https://hub.docker.com` (see `wit/engine.wit`). This
//! module routes exactly that origin to the base URL the operator chose (`--hub-url`: the
//! real Hub, a proxy, or a fake in tests) and refuses every other origin with
//! `HTTP-request-denied`, by the rule of the `egress` crate.
//!
//! Requests go through one shared, pooled client (rustls on aws-lc-rs, webpki roots), so
//! that consecutive calls reuse the TLS connection to the Hub. Every request first waits at
//! the origin's [gate](super::gate) (no request before the latest `Retry-After` the upstream
//! named), and no request outlives its call: the wait, the body upload, the first byte and
//! every later byte of the answer are all bounded by the request's end (see [`CallDeadline`]),
//! and a stall between two bytes of the answer by the guest's between-bytes timeout, so a
//! server that accepts and never answers, or never finishes an answer, ends the request with
//! an error the guest can act on while its call still has time: a request started in the first
//! three quarters of the call ends where the last quarter begins, which leaves the engine that
//! quarter to look up a token whose creation got no answer, delete it and say so.

use super::gate::{self, UpstreamGate};
use bytes::Bytes;
use egress::{HubOrigin, HubUrlError};
use http::uri::Uri;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// The engine's requests are small JSON documents.
const MAX_REQUEST_BODY: usize = 1 << 20;

type HubClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Where Docker Hub is, the client that reaches it, and its gate. Cheap to clone; every
/// clone shares the gate, and a clone made by [`HubRoute::for_call`] carries the deadline of
/// one call.
#[derive(Clone)]
pub struct HubRoute {
    inner: Arc<Inner>,
    /// The current call's time limit; `None` outside a call.
    call: Option<CallDeadline>,
}

/// When the requests of one call must end. A call of time limit `T` started at `t0` must
/// answer by `t0 + T`; its requests must leave it time to act on their failures:
/// - a request started before `t0 + ¾T` ends by `t0 + ¾T`, so that the engine has the last
///   quarter to settle what that request left unknown (a creation without an answer: list the
///   account's tokens, delete the one with its label);
/// - a request started later (that settling) ends by `t0 + T − min(T/20, 1 s)`, the rest being
///   the engine's time to write its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CallDeadline {
    last_quarter: Instant,
    answer_by: Instant,
    end: Instant,
}

/// Most of a call's end that is kept for the engine to answer after its last request.
const ANSWER_MARGIN: Duration = Duration::from_secs(1);

impl CallDeadline {
    /// The deadlines of a call started at `start` with time limit `time_limit`.
    pub(super) fn new(start: Instant, time_limit: Duration) -> CallDeadline {
        let end = start + time_limit;
        CallDeadline {
            last_quarter: end - time_limit / 4,
            answer_by: end - (time_limit / 20).min(ANSWER_MARGIN),
            end,
        }
    }

    /// How long the call may still run at `now` (the engine's `call-limits.time-left`).
    pub(super) fn time_left(&self, now: Instant) -> Duration {
        self.end.saturating_duration_since(now)
    }

    /// When a request that starts at `now` must have ended.
    fn request_end(&self, now: Instant) -> Instant {
        if now < self.last_quarter {
            self.last_quarter
        } else {
            self.answer_by
        }
    }
}

struct Inner {
    hub: HubOrigin,
    client: HubClient,
    gate: UpstreamGate,
}

impl HubRoute {
    pub fn new(hub_url: &str) -> Result<HubRoute, HubUrlError> {
        let hub = HubOrigin::parse(hub_url)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|_| HubUrlError::new(hub_url, "TLS is unavailable"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(HubRoute {
            inner: Arc::new(Inner {
                hub,
                client,
                gate: UpstreamGate::default(),
            }),
            call: None,
        })
    }

    /// This route for one call with these deadlines.
    pub(super) fn for_call(&self, call: CallDeadline) -> HubRoute {
        HubRoute {
            inner: self.inner.clone(),
            call: Some(call),
        }
    }

    /// The deadlines of the call this route serves; `None` outside a call.
    pub(super) fn call(&self) -> Option<CallDeadline> {
        self.call
    }

    /// The gate every request to this origin waits at.
    pub(super) fn gate(&self) -> &UpstreamGate {
        &self.inner.gate
    }

    /// The operator's Hub URL for a request the engine addressed to the Hub; `None` for
    /// any other destination.
    fn route(&self, uri: &Uri) -> Option<Uri> {
        self.inner.hub.route(uri)
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HubRoute {
    /// The client sets `Host` from the routed URL; the engine's `hub.docker.com` would be
    /// wrong for a proxy or a fake.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let Some(target) = self.route(request.uri()) else {
            tracing::warn!(
                destination = %request.uri(),
                "the engine tried to reach something other than Docker Hub; denied"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        let inner = self.inner.clone();
        let now = Instant::now();
        let deadline = self
            .call
            .map_or(now + RESPONSE_TIMEOUT, |call| call.request_end(now));
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(RESPONSE_TIMEOUT)
            .min(RESPONSE_TIMEOUT);
        let between_bytes = options
            .and_then(|o| o.between_bytes_timeout)
            .unwrap_or(RESPONSE_TIMEOUT)
            .min(RESPONSE_TIMEOUT);
        Box::new(async move {
            if let Err(closed) = inner.gate.pass(deadline).await {
                tracing::debug!(
                    opens_in = ?closed.opens_in,
                    "refusing a request: the upstream's Retry-After ends after the time left to the call"
                );
                return Err(Error::InternalError(Some(format!(
                    "the server asked for no requests for another {} s (Retry-After), longer \
                     than this call may still run",
                    closed.opens_in.as_secs_f64().ceil()
                ))));
            }
            let (mut parts, body) = request.into_parts();
            let body = tokio::time::timeout_at(
                deadline.into(),
                http_body_util::Limited::new(body, MAX_REQUEST_BODY).collect(),
            )
            .await
            .map_err(|_| Error::ConnectionWriteTimeout)?
            .map_err(|_| Error::HttpRequestBodySize(None))?
            .to_bytes();
            parts.uri = target;
            parts.headers.remove(http::header::HOST);
            let request = http::Request::from_parts(parts, Full::new(body));
            let first_byte = first_byte.min(deadline.saturating_duration_since(Instant::now()));
            let response = tokio::time::timeout(first_byte, inner.client.request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(|e| {
                    tracing::debug!(error = %e, "request to Docker Hub failed");
                    transport_error(&e)
                })?;
            if let Some(until) = gate::refused_until(
                response.status().as_u16(),
                response.headers(),
                Instant::now(),
                SystemTime::now(),
            ) {
                inner.gate.close_until(until);
                tracing::info!(
                    status = response.status().as_u16(),
                    wait = ?until.saturating_duration_since(Instant::now()),
                    "the upstream asked to wait; holding every request to it until then"
                );
            }
            let response = response.map(|body| {
                Timed::new(body.map_err(Error::from), between_bytes, deadline).boxed_unsync()
            });
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// A failed exchange in wasi-http's terms. A connection that closed before the answer was
/// complete is told apart from other protocol errors: the request may have taken effect.
fn transport_error(e: &hyper_util::client::legacy::Error) -> Error {
    if e.is_connect() {
        return connect_error(e);
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled())
        {
            return Error::ConnectionTerminated;
        }
        source = cause.source();
    }
    Error::HttpProtocolError
}

/// Why no connection to the Hub was made, in wasi-http's terms, so that the engine names the
/// cause to the operator: the name did not resolve, the TLS handshake failed (a certificate the
/// webpki roots do not vouch for, a proxy that speaks plain HTTP), the connection timed out
/// or had no route, or it was refused (what any other failure to connect is taken for: in all
/// of them the request never left).
fn connect_error(e: &(dyn std::error::Error + 'static)) -> Error {
    let mut cause = Some(e);
    while let Some(error) = cause {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return tls_error(tls);
        }
        // A name TLS cannot use as a server name is not a name that resolves either.
        if error
            .downcast_ref::<rustls::pki_types::InvalidDnsNameError>()
            .is_some()
        {
            return Error::DnsError {
                rcode: None,
                info_code: None,
            };
        }
        let io = error.downcast_ref::<std::io::Error>();
        if let Some(io) = io {
            // What Rust's resolver says when getaddrinfo fails, as wasmtime's own client tells it.
            if io
                .to_string()
                .starts_with("failed to lookup address information")
            {
                return Error::DnsError {
                    rcode: None,
                    info_code: None,
                };
            }
            match io.kind() {
                std::io::ErrorKind::TimedOut => return Error::ConnectionTimeout,
                std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                    return Error::DestinationUnavailable;
                }
                std::io::ErrorKind::ConnectionRefused => return Error::ConnectionRefused,
                _ => {}
            }
        }
        // An I/O error wrapping another (the TLS stream's) hides it from `source`.
        cause = match io.and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    Error::ConnectionRefused
}

fn tls_error(error: &rustls::Error) -> Error {
    match error {
        rustls::Error::InvalidCertificate(_) => Error::TlsCertificateError,
        rustls::Error::AlertReceived(alert) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::TlsProtocolError,
    }
}

/// A response body that fails with [`Error::ConnectionReadTimeout`] when the next bytes do not
/// come within `between_bytes`, or at `deadline` at the latest.
struct Timed<B> {
    inner: B,
    between_bytes: Duration,
    deadline: Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<B> Timed<B> {
    fn new(inner: B, between_bytes: Duration, deadline: Instant) -> Timed<B> {
        let timer = Box::pin(tokio::time::sleep_until(
            Timed::<B>::next_stop(between_bytes, deadline).into(),
        ));
        Timed {
            inner,
            between_bytes,
            deadline,
            timer,
        }
    }

    fn next_stop(between_bytes: Duration, deadline: Instant) -> Instant {
        (Instant::now() + between_bytes).min(deadline)
    }
}

impl<B> Body for Timed<B>
where
    B: Body<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let stop = Timed::<B>::next_stop(this.between_bytes, this.deadline);
                this.timer.as_mut().reset(stop.into());
                Poll::Ready(frame)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_is_named_by_its_cause() {
        use std::io::{Error as Io, ErrorKind};
        let kind = |e: Io| format!("{:?}", connect_error(&e));
        assert_eq!(
            kind(Io::new(ErrorKind::TimedOut, "slow")),
            "ConnectionTimeout"
        );
        assert_eq!(
            kind(Io::from(ErrorKind::HostUnreachable)),
            "DestinationUnavailable"
        );
        assert_eq!(
            kind(Io::from(ErrorKind::NetworkUnreachable)),
            "DestinationUnavailable"
        );
        assert_eq!(
            kind(Io::from(ErrorKind::ConnectionRefused)),
            "ConnectionRefused"
        );
        assert_eq!(kind(Io::other("anything else")), "ConnectionRefused");
        let bad_name = rustls::pki_types::ServerName::try_from("a..b").unwrap_err();
        assert!(kind(Io::other(bad_name)).starts_with("DnsError"));
        // The TLS stream's error, wrapped twice as hyper-rustls hands it on.
        let tls = |error: rustls::Error| Io::other(Io::new(ErrorKind::InvalidData, error));
        let unknown_issuer =
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(kind(tls(unknown_issuer)), "TlsCertificateError");
        assert_eq!(
            kind(tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::HandshakeFailure
            ))),
            "TlsAlertReceived { alert_id: Some(40), alert_message: Some(\"HandshakeFailure\") }"
        );
        assert_eq!(
            kind(tls(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            ))),
            "TlsProtocolError"
        );
    }

    #[test]
    fn requests_leave_the_last_quarter_of_a_call_to_act_on_their_failures() {
        let start = Instant::now();
        let call = CallDeadline::new(start, Duration::from_secs(8));
        let at = |ms| start + Duration::from_millis(ms);
        // Started early or late in the first three quarters: ends where the last one begins.
        assert_eq!(call.request_end(at(0)), at(6000));
        assert_eq!(call.request_end(at(5999)), at(6000));
        // Started in the last quarter: ends 0.4 s (a twentieth) before the call must answer.
        assert_eq!(call.request_end(at(6000)), at(7600));
        assert_eq!(call.request_end(at(7900)), at(7600));
        // The margin to answer is at most a second.
        let long = CallDeadline::new(start, Duration::from_secs(60));
        assert_eq!(long.request_end(at(50_000)), at(59_000));
        assert_eq!(long.request_end(at(1)), at(45_000));
    }
}
