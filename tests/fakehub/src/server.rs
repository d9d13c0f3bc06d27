//! The HTTP side of the fake: a hyper accept loop on its own thread and tokio runtime, so the
//! library stays synchronous and works from any test, sync or async. Our own loop (rather than
//! `axum::serve`) is what lets a fault close a connection without a response: every request
//! passes through [`handle`], which logs it, applies queued faults and the rate limit, and only
//! then hands it to the router.

use std::{
    convert::Infallible, fmt, net::SocketAddr, sync::Arc, thread::JoinHandle, time::Duration,
};

use axum::{
    Router,
    extract::ConnectInfo,
    http::{HeaderName, HeaderValue, Request, header::AUTHORIZATION},
    response::Response,
};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::oneshot};
use tower::ServiceExt;

use crate::{FaultKind, clock, errors, hub::Hub, ratelimit::Quota, routes};

/// The running server; stopping it ends the accept loop, drops every open connection and joins
/// the thread.
pub(crate) struct Server {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn spawn(hub: Arc<Hub>, listener: std::net::TcpListener) -> anyhow::Result<Server> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("fakehub".to_owned())
            .spawn(move || {
                runtime.block_on(accept_loop(hub, listener, stopped));
                // Dropping the runtime here cancels the connection tasks still running.
            })?;
        Ok(Server {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(hub: Arc<Hub>, listener: TcpListener, mut stopped: oneshot::Receiver<()>) {
    let router = routes::router(Arc::clone(&hub));
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let hub = Arc::clone(&hub);
        let router = router.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request| handle(Arc::clone(&hub), router.clone(), peer, request));
            // A connection error is the client's business (or a dropped-connection fault).
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection without writing a response.
#[derive(Debug)]
struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    hub: Arc<Hub>,
    router: Router,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response, Dropped> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |target| target.as_str().to_owned());
    let call = hub.record_call(
        &method,
        &target,
        request.headers().contains_key(AUTHORIZATION),
    );
    let mut drop_after_processing = false;
    let mut answer_after_processing = None;
    let mut latency = None;
    let mut latency_after = None;
    match hub.take_fault(&method, &target) {
        Some(FaultKind::Status(code)) => return Ok(finish(&hub, call, errors::status(code))),
        Some(FaultKind::RateLimited { retry_after }) => {
            let mut response = errors::rate_limited();
            set_retry_after(&mut response, retry_after);
            return Ok(finish(&hub, call, response));
        }
        // The call keeps status 0: no response was sent.
        Some(FaultKind::Drop) => return Err(Dropped),
        Some(FaultKind::Latency(delay)) => latency = Some(delay),
        Some(FaultKind::DropAfterProcessing) => drop_after_processing = true,
        Some(FaultKind::LatencyAfterProcessing(delay)) => latency_after = Some(delay),
        Some(FaultKind::StatusAfterProcessing(code)) => {
            answer_after_processing = Some(errors::status(code));
        }
        Some(FaultKind::Answer(code, body)) => {
            return Ok(finish(&hub, call, errors::raw(code, &body)));
        }
        Some(FaultKind::AnswerAfterProcessing(code, body)) => {
            answer_after_processing = Some(errors::raw(code, &body));
        }
        Some(FaultKind::Churn {
            account,
            delete_newest,
            create,
        }) => hub.churn(&account, delete_newest, create),
        None => {}
    }
    // The work runs on its own task, as a real server finishes a request whose client went
    // away: a creation slower than the client's patience still happens.
    let worker_hub = Arc::clone(&hub);
    let work = tokio::spawn(async move {
        if let Some(delay) = latency {
            tokio::time::sleep(delay).await;
        }
        process(&worker_hub, call, router, peer, &path, request).await
    });
    let Ok(response) = work.await else {
        return Err(Dropped);
    };
    if let Some(delay) = latency_after {
        tokio::time::sleep(delay).await;
    }
    if drop_after_processing {
        return Err(Dropped);
    }
    if let Some(answer) = answer_after_processing {
        return Ok(finish(&hub, call, answer));
    }
    Ok(finish(&hub, call, response))
}

fn finish(hub: &Hub, call: usize, response: Response) -> Response {
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok()?.parse().ok());
    hub.set_call_answer(call, response.status().as_u16(), retry_after);
    response
}

/// The rate limit, then the router.
async fn process(
    hub: &Hub,
    call: usize,
    router: Router,
    peer: SocketAddr,
    path: &str,
    mut request: Request<Incoming>,
) -> Response {
    let quota = if path.starts_with("/v2/") {
        hub.admit(call)
    } else {
        None
    };
    let mut response = match quota {
        Some(Quota {
            retry_after: Some(retry_after),
            ..
        }) => {
            let mut response = errors::rate_limited();
            set_retry_after(&mut response, retry_after);
            response
        }
        _ => {
            request.extensions_mut().insert(ConnectInfo(peer));
            let result: Result<Response, Infallible> = router.oneshot(request).await;
            result.unwrap_or_else(|never| match never {})
        }
    };
    if let Some(quota) = quota {
        set_header(&mut response, "x-ratelimit-limit", quota.limit);
        set_header(&mut response, "x-ratelimit-remaining", quota.remaining);
        set_header(&mut response, "x-ratelimit-reset", quota.reset);
    }
    response
}

/// `Retry-After` in seconds, and the older `X-Retry-After` as the unix time to retry at.
fn set_retry_after(response: &mut Response, seconds: u64) {
    set_header(response, "retry-after", seconds);
    set_header(response, "x-retry-after", clock::unix_now() + seconds);
}

fn set_header(response: &mut Response, name: &'static str, value: impl fmt::Display) {
    let value = HeaderValue::from_str(&value.to_string()).expect("numbers are valid header values");
    response
        .headers_mut()
        .insert(HeaderName::from_static(name), value);
}
