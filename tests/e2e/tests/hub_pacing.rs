//! The engine's HTTP to the Hub, through the compiled component in the host runtime, against
//! a small loopback server of this file that timestamps every request and answers as each
//! test needs (the Docker Hub fake records no arrival times and cannot stall on purpose):
//!
//! - `Retry-After` holds every request of the runtime, of every kind and every instance,
//!   until the latest time the Hub named, and work resumes as soon as it passes; a call that
//!   cannot outlast the wait fails at once, saying why.
//! - Request bodies of any size the host allows reach the Hub whole (they used to hang once
//!   past wasi-http's pipe capacity).
//! - A Hub that never answers, never finishes an answer, or answers too much ends the call
//!   with a clear error by its time limit, and other calls go on meanwhile.

use dockerhub_secrets::engine::{
    EngineError, FixedLimit, Operation, Request, Response, SystemView,
};
use dockerhub_secrets::{CallError, MemoryStorage, Runtime, RuntimeConfig, Storage};
use dockerhub_secrets_e2e::{Issued, request};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ACCOUNT: &str = "hoeg";
const MS: Duration = Duration::from_millis(1);

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Arrival {
    /// When its first byte arrived.
    at: Instant,
    method: String,
    path: String,
    body: Vec<u8>,
    /// What the server answered (status 0: nothing) and when it started sending it.
    status: u16,
    answered_at: Option<Instant>,
}

/// What the server does with a request.
enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Keep the connection open and never answer.
    Silent,
    /// Send the head and a few bytes of a longer body, then nothing more.
    Unfinished,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply::Answer {
            status,
            headers: vec![],
            body: vec![],
        }
    }
}

type Handler = dyn Fn(&Arrival, &[Arrival]) -> Reply + Send + Sync;

/// A loopback HTTP/1.1 server: one request per connection, answered by `handler` (which
/// also sees every earlier arrival). Stops when dropped.
struct Server {
    url: String,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(
        handler: impl Fn(&Arrival, &[Arrival]) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = arrivals.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                connections.spawn(serve(socket, handler.clone(), recorded.clone()));
            }
        });
        Server {
            url,
            arrivals,
            task,
        }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }
}

async fn serve(mut socket: TcpStream, handler: Arc<Handler>, arrivals: Arc<Mutex<Vec<Arrival>>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let mut at = None;
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                at.get_or_insert_with(Instant::now);
                buffer.extend_from_slice(&chunk[..n]);
            }
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let mut arrival = Arrival {
        at: at.expect("bytes arrived"),
        method,
        path,
        body,
        status: 0,
        answered_at: None,
    };
    let reply = {
        let mut arrivals = arrivals.lock().unwrap();
        let reply = handler(&arrival, &arrivals);
        if let Reply::Answer { status, .. } = &reply {
            arrival.status = *status;
            arrival.answered_at = Some(Instant::now());
        }
        arrivals.push(arrival);
        reply
    };
    match reply {
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        }
        Reply::Silent => std::future::pending().await,
        Reply::Unfinished => {
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(b"{\"access_token\": \"").await;
            std::future::pending().await
        }
    }
}

/// The answers of a working Hub for the calls the engine makes.
fn hub(arrival: &Arrival) -> Reply {
    let path = arrival.path.split('?').next().unwrap_or_default();
    match (arrival.method.as_str(), path) {
        ("POST", "/v2/auth/token") => Reply::json(200, json!({"access_token": "a.b.c"})),
        ("POST", "/v2/access-tokens") => {
            let asked: Value = serde_json::from_slice(&arrival.body).unwrap_or_default();
            static CREATED: AtomicUsize = AtomicUsize::new(0);
            let uuid = format!("token-{}", CREATED.fetch_add(1, Ordering::Relaxed));
            Reply::json(
                201,
                json!({
                    "uuid": uuid,
                    "token": "dckr_pat_not-a-real-one",
                    "token_label": asked["token_label"],
                    "scopes": asked["scopes"],
                    "expires_at": asked["expires_at"],
                }),
            )
        }
        ("GET", "/v2/access-tokens") => {
            Reply::json(200, json!({"count": 0, "next": null, "results": []}))
        }
        ("DELETE", p) if p.starts_with("/v2/access-tokens/") => Reply::empty(204),
        _ => Reply::json(404, json!({"message": "not found"})),
    }
}

fn rate_limited(seconds: u64) -> Reply {
    Reply::Answer {
        status: 429,
        headers: vec![("retry-after", seconds.to_string())],
        body: br#"{"message": "rate limit exceeded"}"#.to_vec(),
    }
}

/// The compiled engine against `server`, with storage in memory.
struct Engine {
    layer: dockerhub_secrets::Engine,
    storage: Arc<MemoryStorage>,
}

impl Engine {
    fn start(server: &Server, time_limit: Duration) -> Engine {
        Engine::at(&server.url, time_limit)
    }

    /// An engine whose Hub is at `hub_url`.
    fn at(hub_url: &str, time_limit: Duration) -> Engine {
        let runtime = Runtime::new(RuntimeConfig {
            hub_url: hub_url.to_string(),
            time_limit,
            ..RuntimeConfig::default()
        })
        .expect("load the engine component");
        Engine {
            layer: dockerhub_secrets::Engine::new(Arc::new(runtime)),
            storage: Arc::new(MemoryStorage::new()),
        }
    }

    async fn send(&self, request: Request) -> Result<Response, CallError> {
        let system_view: Arc<dyn SystemView> = Arc::new(FixedLimit(None));
        self.layer
            .handle(self.storage.clone(), system_view, &request)
            .await
    }

    async fn configure(&self, account: &str, password: &str) -> Result<Response, CallError> {
        let data = json!({"namespace": format!("{account},my-organization"), "password": password});
        self.send(request(
            Operation::Update,
            &format!("config/{account}"),
            data,
        ))
        .await
    }

    /// Replaces the stored password of `account` as it is, past the engine's own limit on
    /// the field (a record from before the limit): the one way left to make the engine send
    /// a request body larger than a few hundred bytes.
    async fn store_password(&self, account: &str, password: &str) {
        let key = format!("config/{account}");
        let stored = self.storage.get(&key).await.unwrap().expect("configured");
        let mut config: Value = serde_json::from_slice(&stored).unwrap();
        config["password"] = json!(password);
        let bytes = serde_json::to_vec(&config).unwrap();
        self.storage.put(&key, bytes).await.unwrap();
    }

    async fn issue(&self) -> Result<Issued, CallError> {
        let data = json!({"label": "pacing"});
        self.send(request(
            Operation::Update,
            "token/hoeg/my-organization",
            data,
        ))
        .await
        .map(Issued::from)
    }

    async fn revoke(&self, issued: &Issued) -> Result<Response, CallError> {
        let mut revoke = request(Operation::Revoke, "token/hoeg/my-organization", Value::Null);
        revoke.lease = Some(issued.lease.clone());
        self.send(revoke).await
    }
}

/// Wait until `server` has answered a request with `status`.
async fn answered(server: &Server, status: u16) -> Arrival {
    let start = Instant::now();
    loop {
        if let Some(a) = server.arrivals().into_iter().find(|a| a.status == status) {
            return a;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {status} was answered"
        );
        tokio::time::sleep(5 * MS).await;
    }
}

const RETRY_AFTER: Duration = Duration::from_secs(3);
/// A request that reached the server this soon after a 429 left may have left the host before
/// the 429 reached it.
const IN_FLIGHT: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread")]
async fn no_request_of_any_kind_goes_out_before_the_hubs_retry_after() {
    // The first two DELETEs get `Retry-After: 3`, and so does any request that arrives
    // before the latest time a 429 named: the Hub as it would treat a client that ignores it.
    let server = Server::start(|arrival, earlier| {
        let closed = earlier
            .iter()
            .filter(|a| a.status == 429)
            .filter_map(|a| a.answered_at)
            .any(|sent| arrival.at < sent + RETRY_AFTER);
        let refused_deletes = earlier
            .iter()
            .filter(|a| a.method == "DELETE" && a.status == 429)
            .count();
        if closed || (arrival.method == "DELETE" && refused_deletes < 2) {
            return rate_limited(RETRY_AFTER.as_secs());
        }
        hub(arrival)
    })
    .await;
    let engine = Arc::new(Engine::start(&server, Duration::from_secs(60)));
    engine.configure(ACCOUNT, "pw").await.expect("configure");
    let first = engine.issue().await.expect("issue a token");
    let second = engine.issue().await.expect("issue another");

    // The first revocation is refused; while its Retry-After runs, calls of every kind start.
    let revoking = tokio::spawn({
        let engine = engine.clone();
        async move { engine.revoke(&first).await }
    });
    let refusal = answered(&server, 429).await;
    let announced = refusal.answered_at.unwrap() + RETRY_AFTER;
    tokio::time::sleep(IN_FLIGHT).await;
    let (revoked, issued, configured, rolled_back) = tokio::join!(
        engine.revoke(&second),
        engine.issue(),
        engine.configure("other", "pw"),
        engine.send(request(Operation::Rollback, "", json!({"immediate": true}))),
    );
    let revoked_first = revoking.await.unwrap();
    let done = Instant::now();
    for (what, outcome) in [
        ("the first revocation", revoked_first.map(drop)),
        ("the second revocation", revoked.map(drop)),
        ("the issue", issued.map(drop)),
        ("the config write", configured.map(drop)),
        ("the rollback", rolled_back.map(drop)),
    ] {
        outcome.unwrap_or_else(|e| panic!("{what} failed: {e}"));
    }

    let arrivals = server.arrivals();
    // Requests already on their way when a 429 was sent are refused too (and their
    // refusals count as the Hub's word): the two the test set up, and perhaps such.
    let refusals: Vec<Instant> = arrivals
        .iter()
        .filter(|a| a.status == 429)
        .filter_map(|a| a.answered_at)
        .collect();
    assert!(refusals.len() >= 2, "{arrivals:#?}");
    for a in &arrivals {
        for sent in &refusals {
            if a.at > *sent + IN_FLIGHT {
                assert!(
                    a.at >= *sent + RETRY_AFTER,
                    "{} {} arrived {:?} after a 429 with Retry-After: 3",
                    a.method,
                    a.path,
                    a.at - *sent
                );
            }
        }
    }
    let held: Vec<&Arrival> = arrivals.iter().filter(|a| a.at > refusal.at).collect();
    for (method, path) in [
        ("DELETE", "/v2/access-tokens/"),
        ("POST", "/v2/access-tokens"),
        ("POST", "/v2/auth/token"),
    ] {
        assert!(
            held.iter()
                .any(|a| a.method == method && a.path.starts_with(path) && a.at >= announced),
            "a {method} {path} went out once the window passed: {held:#?}"
        );
    }
    // The second refusal came at the first window's end; all work was done promptly after
    // the second window's end.
    let last_window_end = *refusals.iter().max().unwrap() + RETRY_AFTER;
    let first_after = arrivals
        .iter()
        .filter(|a| a.at >= last_window_end)
        .map(|a| a.at)
        .min()
        .expect("requests after the last window");
    assert!(
        first_after - last_window_end < Duration::from_millis(500),
        "work resumed {:?} after the window",
        first_after - last_window_end
    );
    assert!(
        done - last_window_end < Duration::from_secs(2),
        "every call finished {:?} after the window",
        done - last_window_end
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_cannot_outlast_the_wait_fails_at_once_and_says_why() {
    let server = Server::start(|arrival, _| {
        if arrival.method == "DELETE" {
            return rate_limited(30);
        }
        hub(arrival)
    })
    .await;
    let time_limit = Duration::from_secs(5);
    let engine = Engine::start(&server, time_limit);
    engine.configure(ACCOUNT, "pw").await.expect("configure");
    let issued = engine.issue().await.expect("issue a token");

    let start = Instant::now();
    let refused = engine.revoke(&issued).await.expect_err("rate-limited");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(refused.to_string().contains("retry after 30s"), "{refused}");
    let before = server.arrivals().len();

    // Thirty seconds exceed the issue's time limit: it fails at once.
    let start = Instant::now();
    let error = engine
        .issue()
        .await
        .map(drop)
        .expect_err("the Hub asked for 30 s of quiet")
        .to_string();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(
        error.contains("asked for no requests for another") && error.contains("Retry-After"),
        "{error}"
    );
    // Nothing was sent, so there is nothing to look up: not said to be a lost answer.
    assert!(
        error.starts_with("could not create an access token at Docker Hub")
            && !error.contains("did not answer"),
        "{error}"
    );
    // And the runtime's patience for revocations: not tried, with the time to come back.
    let start = Instant::now();
    match engine.revoke(&issued).await {
        Err(CallError::Engine(EngineError::Upstream(u))) => {
            assert_eq!(u.status, 429);
            assert!(matches!(u.retry_after, Some(29 | 30)), "{u:?}");
            assert!(
                u.message.contains("asked for no requests for another"),
                "{u:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.arrivals().len(), before, "nothing reached the Hub");
}

/// The bytes of a login body with a password of `n` bytes, past the password itself.
async fn login_overhead() -> usize {
    let server = Server::start(|a, _| hub(a)).await;
    let engine = Engine::start(&server, Duration::from_secs(10));
    engine.configure(ACCOUNT, "pw").await.unwrap();
    server.arrivals()[0].body.len() - 2
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_of_any_size_reach_the_hub_whole() {
    // The Hub refuses every login, quoting the size it received; the engine quotes the Hub.
    let server = Server::start(|arrival, _| {
        Reply::json(
            401,
            json!({"message": format!("received {} bytes", arrival.body.len())}),
        )
    })
    .await;
    let engine = Engine::start(&server, Duration::from_secs(20));
    let overhead = login_overhead().await;
    let configured = engine
        .send(request(
            Operation::Update,
            &format!("config/{ACCOUNT}"),
            json!({"namespace": "my-organization", "password": "pw", "verify": false}),
        ))
        .await;
    assert!(configured.is_ok(), "{configured:?}");
    let mut sizes = vec![4095, 4096, 4097, 6000 + overhead, 65 * 1024, 1 << 20];
    sizes.retain(|s| *s > overhead);
    for size in sizes {
        // The issuance logs in with the stored password first.
        let password = "p".repeat(size - overhead);
        engine.store_password(ACCOUNT, &password).await;
        let start = Instant::now();
        let Err(error) = engine.issue().await else {
            panic!("the Hub refuses the login of a {size}-byte body");
        };
        let error = error.to_string();
        assert!(
            error.contains(&format!("received {size} bytes")),
            "a {size}-byte body: {error}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "a {size}-byte body took {:?}",
            start.elapsed()
        );
        let arrival = server.arrivals().pop().unwrap();
        assert_eq!(arrival.body.len(), size);
        assert!(
            !error.contains(&password),
            "the password stays out of errors"
        );
    }

    // Past what the host accepts: a clear error at once, and nothing sent.
    let before = server.arrivals().len();
    engine
        .store_password(ACCOUNT, &"p".repeat((1 << 20) + 1 - overhead))
        .await;
    let start = Instant::now();
    let Err(error) = engine.issue().await else {
        panic!("a body past the host's limit is refused");
    };
    let error = error.to_string();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        error.contains("the request body is larger than the host allows"),
        "{error}"
    );
    assert_eq!(server.arrivals().len(), before);
}

/// A call to a Hub that misbehaves as `reply` ends within the time limit with a clear error,
/// while a call that needs no Hub goes on meanwhile.
async fn ends_by_the_time_limit(reply: fn() -> Reply, expected: &str) {
    let server = Server::start(move |_, _| reply()).await;
    let time_limit = Duration::from_secs(3);
    let engine = Arc::new(Engine::start(&server, time_limit));
    let start = Instant::now();
    let stuck = tokio::spawn({
        let engine = engine.clone();
        async move { engine.configure(ACCOUNT, "pw").await }
    });
    while server.arrivals().is_empty() {
        assert!(
            start.elapsed() < time_limit,
            "the login never reached the server"
        );
        tokio::time::sleep(5 * MS).await;
    }
    let other = Instant::now();
    let help = engine
        .send(request(Operation::Read, "config/nobody", Value::Null))
        .await;
    assert!(
        other.elapsed() < Duration::from_millis(500),
        "another call waited {:?}",
        other.elapsed()
    );
    assert!(
        matches!(help, Ok(_) | Err(CallError::Engine(_))),
        "{help:?}"
    );

    let error = stuck.await.unwrap().expect_err("no usable answer");
    let took = start.elapsed();
    assert!(
        took < time_limit + Duration::from_secs(1),
        "ended after {took:?}"
    );
    // The engine keeps the end of the call to answer: an error that says what happened, not
    // the host's bare time-limit error.
    let message = error.to_string();
    assert!(
        matches!(error, CallError::Engine(_)) && message.contains(expected),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_time_limit_still_gets_an_answer_that_says_what_happened() {
    // The creation gets no answer and every listing a 503: the engine stops retrying where
    // the call's time would run out, and answers with what it knows instead of being stopped.
    let server = Server::start(|arrival, _| match arrival.method.as_str() {
        "POST" if arrival.path == "/v2/access-tokens" => Reply::Silent,
        "GET" => Reply::json(503, json!({"message": "unavailable"})),
        _ => hub(arrival),
    })
    .await;
    let engine = Engine::start(&server, Duration::from_secs(4));
    engine.configure(ACCOUNT, "pw").await.unwrap();
    let Err(error) = engine.issue().await else {
        panic!("a token was issued")
    };
    let message = error.to_string();
    assert!(
        matches!(error, CallError::Engine(EngineError::Upstream(_))),
        "{error:?}"
    );
    assert!(
        message.contains("did not answer the token creation"),
        "{message}"
    );
    assert!(
        message.contains("looking for the token it may have created failed"),
        "{message}"
    );
    let listings = server
        .arrivals()
        .iter()
        .filter(|a| a.method == "GET")
        .count();
    assert!(listings >= 1, "it looked: {listings}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creation_whose_connection_is_refused_was_never_sent_and_needs_no_lookup() {
    let server = Server::start(|arrival, _| hub(arrival)).await;
    let engine = Engine::start(&server, Duration::from_secs(10));
    engine.configure(ACCOUNT, "pw").await.unwrap();
    // The session is cached; then the Hub's port closes: every connection is refused.
    drop(server);
    tokio::time::sleep(50 * MS).await;
    let Err(error) = engine.issue().await else {
        panic!("a token was issued")
    };
    let message = error.to_string();
    assert!(
        message
            .starts_with("could not create an access token at Docker Hub: it could not be reached"),
        "{message}"
    );
    assert!(!message.contains("did not answer"), "{message}");
    assert_eq!(
        engine.storage.list("wal/").await.unwrap(),
        Vec::<String>::new(),
        "no write-ahead record stays for a creation that never left"
    );
    assert_eq!(engine.storage.list("config/").await.unwrap().len(), 1);
}

/// Why no connection was made is named to the operator, and none of them is taken for a
/// refused connection: a Hub URL whose name does not resolve, and an `https` Hub URL at a
/// server that answers in plain HTTP (a proxy set up without TLS).
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_was_never_made_says_why() {
    // A label longer than DNS allows (63 bytes): the resolver fails it without asking anyone.
    // Over https too, where the name is first refused as a TLS server name.
    for scheme in ["http", "https"] {
        let unresolvable = format!("{scheme}://{}.invalid:1", "a".repeat(64));
        let engine = Engine::at(&unresolvable, Duration::from_secs(10));
        let error = engine
            .configure(ACCOUNT, "pw")
            .await
            .expect_err("no such host");
        let message = error.to_string();
        assert!(
            message.contains("its address could not be resolved"),
            "{scheme}: {message}"
        );
    }

    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", plain.local_addr().unwrap());
    let proxy = tokio::spawn(async move {
        while let Ok((mut socket, _)) = plain.accept().await {
            let mut hello = [0u8; 512];
            let _ = socket.read(&mut hello).await;
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let engine = Engine::at(&url, Duration::from_secs(10));
    let error = engine.configure(ACCOUNT, "pw").await.expect_err("no TLS");
    let message = error.to_string();
    assert!(
        message.contains("the secure connection failed"),
        "{message}"
    );
    assert!(!message.contains("refused"), "{message}");
    proxy.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_that_never_answers_ends_at_the_time_limit() {
    ends_by_the_time_limit(|| Reply::Silent, "did not answer in time").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_never_ends_ends_at_the_time_limit() {
    // The answer's body stalls: the host ends it at the request's deadline, a read timeout.
    ends_by_the_time_limit(|| Reply::Unfinished, "did not answer in time").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_too_large_is_refused_without_waiting() {
    let server = Server::start(|_, _| Reply::Answer {
        status: 200,
        headers: vec![],
        body: vec![b' '; 5 << 20],
    })
    .await;
    let engine = Engine::start(&server, Duration::from_secs(10));
    let start = Instant::now();
    let error = engine
        .configure(ACCOUNT, "pw")
        .await
        .expect_err("too large");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(error.to_string().contains("the answer exceeds"), "{error}");

    // A large answer within the bound is read whole (and found not to be a login answer).
    let server = Server::start(|_, _| Reply::Answer {
        status: 200,
        headers: vec![],
        body: vec![b' '; 3 << 20],
    })
    .await;
    let engine = Engine::start(&server, Duration::from_secs(10));
    let error = engine.configure(ACCOUNT, "pw").await.expect_err("not JSON");
    assert!(error.to_string().contains("no access_token"), "{error}");
}

/// A revocation whose every DELETE is answered 429 `Retry-After: retry_after`, in an engine
/// with `time_limit`: how long it took and when each DELETE arrived.
async fn always_rate_limited_revocation(
    retry_after: u64,
    time_limit: Duration,
) -> (Duration, Vec<Instant>) {
    let server = Server::start(move |arrival, _| {
        if arrival.method == "DELETE" {
            return rate_limited(retry_after);
        }
        hub(arrival)
    })
    .await;
    let engine = Engine::start(&server, time_limit);
    engine.configure(ACCOUNT, "pw").await.expect("configure");
    let issued = engine.issue().await.expect("issue a token");

    let start = Instant::now();
    let refused = engine.revoke(&issued).await.expect_err("always refused");
    let took = start.elapsed();
    assert!(refused.to_string().contains("rate-limited"), "{refused}");
    let deletes = server
        .arrivals()
        .iter()
        .filter(|a| a.method == "DELETE")
        .map(|a| a.at)
        .collect();
    (took, deletes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_refused_with_retry_after_zero_is_retried_once_a_second_at_most() {
    let (took, deletes) = always_rate_limited_revocation(0, Duration::from_secs(60)).await;
    // Fifteen seconds of the runtime's patience, one attempt a second at most.
    assert!(took < Duration::from_secs(17), "{took:?}");
    assert!(
        (10..=16).contains(&deletes.len()),
        "{} attempts",
        deletes.len()
    );
    for pair in deletes.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(900),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

/// The waits for a rate-limited revocation count against the call's time limit.
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_revocation_ends_within_the_time_limit() {
    let (took, deletes) = always_rate_limited_revocation(1, Duration::from_secs(4)).await;
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(
        (2..=5).contains(&deletes.len()),
        "{} attempts",
        deletes.len()
    );
}
