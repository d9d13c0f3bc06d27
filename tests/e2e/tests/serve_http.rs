//! `serve`'s HTTP front against hostile and slow clients: response wrapping refused before
//! any token exists, the token checked before a body is read, Vault's read timeouts, memory
//! that stays bounded under a flood of unauthenticated bodies, and a SIGTERM that ends the
//! process even with half-sent requests open.

use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::serve::{CI_TOKEN, ROOT_TOKEN, Serve};
use fakehub::{Config, FakeHub};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn configured() -> Serve {
    let hub = FakeHub::start(Config::default().account("hoeg", PASSWORD, None)).unwrap();
    let serve = Serve::start(hub, &[]).expect("start serve");
    serve.write_seed_config(PASSWORD).unwrap();
    serve
}

fn connect(serve: &Serve) -> TcpStream {
    let stream = TcpStream::connect(serve.addr.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// Everything the server sends until it closes the connection.
fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn creations(serve: &Serve) -> usize {
    let calls = serve.hub.calls();
    let creation = |c: &&fakehub::Call| c.method == "POST" && c.path == "/v2/access-tokens";
    calls.iter().filter(creation).count()
}

/// A kB figure of `/proc/<pid>/status`, such as `VmRSS` or `VmHWM`.
fn memory_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

#[test]
fn response_wrapping_is_refused_before_any_token_exists() {
    let serve = configured();
    let path = "/v1/dockerhub/token/hoeg/my-organization";
    let answer = |wrap_ttl: &str| {
        let mut stream = connect(&serve);
        write!(
            stream,
            "PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
             X-Vault-Wrap-TTL: {wrap_ttl}\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .unwrap();
        read_all(&mut stream)
    };
    for wrap_ttl in ["60", "5m", "1s"] {
        let refused = answer(wrap_ttl);
        assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
        assert!(refused.contains("response wrapping"), "{refused}");
        assert!(!refused.contains("dckr_pat"), "{refused}");
    }
    // The CLI's -wrap-ttl sends the same header.
    let wrapped = serve
        .bao(&["write", "-wrap-ttl=60s", "-force", &path[4..]])
        .unwrap();
    assert_eq!(wrapped.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrapped.stderr).contains("response wrapping"));
    assert_eq!(creations(&serve), 0, "no token was created at the Hub");
    // A zero TTL means no wrapping, as in Vault.
    assert!(answer("0").starts_with("HTTP/1.1 200"));
    assert_eq!(creations(&serve), 1);
}

#[test]
fn a_token_is_checked_before_its_body_is_read() {
    let serve = configured();
    for (token, path) in [
        ("hvs.unknown", "/v1/dockerhub/config/hoeg"),
        // Known, but its policy gives it nothing on this path.
        (CI_TOKEN, "/v1/dockerhub/config/hoeg"),
    ] {
        let mut stream = connect(&serve);
        // A head announcing a large body, and none of the body: the answer must come anyway.
        write!(
            stream,
            "PUT {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {token}\r\n\
             Content-Length: 1000000\r\n\r\n"
        )
        .unwrap();
        let started = Instant::now();
        let mut head = [0u8; 256];
        let read = stream.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..read]);
        assert!(head.starts_with("HTTP/1.1 403"), "{token}: {head}");
        assert!(started.elapsed() < Duration::from_secs(5), "{token}");
    }
}

#[test]
fn slow_clients_get_vaults_timeouts() {
    let serve = configured();
    // A head that never ends: closed after the header timeout (10 s).
    let mut slow_head = connect(&serve);
    slow_head
        .write_all(b"PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A body that never ends: answered 408 after the body timeout (30 s).
    let mut slow_body = connect(&serve);
    write!(
        slow_body,
        "PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
         Content-Length: 100\r\n\r\n{{\"ttl\":"
    )
    .unwrap();
    let started = Instant::now();
    let head_answer = read_all(&mut slow_head);
    let head_closed = started.elapsed();
    assert!(
        (Duration::from_secs(8)..Duration::from_secs(20)).contains(&head_closed),
        "closed after {head_closed:?}: {head_answer}"
    );
    let body_answer = read_all(&mut slow_body);
    let body_closed = started.elapsed();
    assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer}");
    assert!(
        body_answer.contains("did not arrive within 30s"),
        "{body_answer}"
    );
    assert!(
        (Duration::from_secs(28)..Duration::from_secs(45)).contains(&body_closed),
        "answered after {body_closed:?}"
    );
    // The server still serves everyone else.
    let (status, config) = serve
        .http("GET", "/v1/dockerhub/config/hoeg", Some(ROOT_TOKEN), b"")
        .unwrap();
    assert_eq!(status, 200, "{config}");
    assert_eq!(
        config["data"]["ttl"], "5m0s",
        "the half-sent write changed nothing"
    );
}

#[test]
fn memory_stays_bounded_under_unauthenticated_bodies() {
    let serve = configured();
    let pid = serve.pid().unwrap();
    let addr = serve.addr.trim_start_matches("http://").to_string();
    let before = memory_kb(pid, "VmRSS");
    let body = vec![b'x'; 1 << 20];
    let refused = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..100 {
            scope.spawn(|| {
                for _ in 0..20 {
                    let Ok(mut stream) = TcpStream::connect(&addr) else {
                        continue;
                    };
                    let head = format!(
                        "PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: x\r\n\
                         X-Vault-Token: hvs.unknown\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    // The server may answer and close before the body is all sent.
                    let _ = stream
                        .write_all(head.as_bytes())
                        .and_then(|()| stream.write_all(&body));
                    let answer = read_all(&mut stream);
                    if answer.starts_with("HTTP/1.1 403") {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let refused = refused.into_inner();
    assert!(refused >= 1900, "only {refused} of 2000 were answered 403");
    let (after, peak) = (memory_kb(pid, "VmRSS"), memory_kb(pid, "VmHWM"));
    eprintln!("RSS {before} kB before, peak {peak} kB, {after} kB after");
    // 2000 bodies of 1 MiB are 2000 MiB; none of them may have been held.
    assert!(
        peak.saturating_sub(before) < 32 * 1024,
        "RSS {before} kB before, peak {peak} kB, {after} kB after"
    );
    let (status, _) = serve
        .http("GET", "/v1/dockerhub/config/hoeg", Some(ROOT_TOKEN), b"")
        .unwrap();
    assert_eq!(status, 200);
}

#[test]
fn sigterm_exits_within_a_bound_with_half_sent_requests_open() {
    let mut serve = configured();
    let mut half_head = connect(&serve);
    half_head
        .write_all(b"PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut half_body = connect(&serve);
    write!(
        half_body,
        "PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
         Content-Length: 100\r\n\r\n{{\"ttl\":"
    )
    .unwrap();
    // An idle keep-alive connection too.
    let mut idle = connect(&serve);
    write!(idle, "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut health = [0u8; 64];
    assert!(idle.read(&mut health).unwrap() > 0);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = serve.stop();
    let stopped = started.elapsed();
    assert_eq!(status.map(|s| s.success()), Some(true), "a clean exit");
    assert!(
        stopped < Duration::from_secs(15),
        "stopped after {stopped:?}"
    );
    for stream in [&mut half_head, &mut half_body, &mut idle] {
        read_all(stream);
    }
}
