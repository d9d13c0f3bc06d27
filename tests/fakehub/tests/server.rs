//! The fake as a process and a library: usable from async tests of any runtime flavour, and the
//! `fakehub` binary's command line, startup line and signal handling.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use fakehub::totp;
use serde_json::json;

#[tokio::test(flavor = "current_thread")]
async fn works_from_a_current_thread_runtime() {
    let hub = hub();
    let url = hub.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));
    // The blocking client runs off the runtime, as an async client would not block it at all.
    let status = tokio::task::spawn_blocking({
        let client = Client::new(&hub);
        move || client.login(ALICE, ALICE_PASSWORD)
    })
    .await
    .unwrap();
    assert!(!status.is_empty());
    assert_eq!(hub.login_count(), 1);
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_a_multi_thread_runtime() {
    let hub = hub();
    let client = Client::new(&hub);
    // Blocking inside the runtime is fine: the fake has its own thread and runtime.
    client.login(ALICE, ALICE_PASSWORD);
    hub.shutdown();
}

#[test]
fn shutdown_closes_the_port() {
    let hub = hub();
    let addr = hub.addr();
    std::net::TcpStream::connect(addr).unwrap();
    assert_eq!(listening_here(addr.port()), 1, "the fake listens");
    hub.shutdown();
    // The listener is gone once `shutdown` returns: this process holds no listening socket on
    // the port. (Connecting is no proof: on loopback a connect to a free ephemeral port can pick
    // that very port as its source and connect to itself. Binding the port again is none either:
    // another test or process may have been given it meanwhile.)
    assert_eq!(
        listening_here(addr.port()),
        0,
        "port still held after shutdown"
    );
}

/// How many listening IPv4 TCP sockets of this process are bound to `port`, from
/// `/proc/net/tcp` (state `0A` is LISTEN) and the socket inodes in `/proc/self/fd`.
fn listening_here(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let inode = fields.get(9)?;
            let listening = fields.get(3) == Some(&"0A");
            (listening && u16::from_str_radix(local_port, 16).ok() == Some(port))
                .then(|| format!("socket:[{inode}]"))
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| {
            inodes
                .iter()
                .any(|inode| target.as_os_str() == inode.as_str())
        })
        .count()
}

/// Kills the child process if a failed assertion leaves it running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(unix)]
#[test]
fn binary_serves_until_sigterm() {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_fakehub"))
            .args([
                "--account",
                "alice:pw",
                "--account",
                &format!("bob:pw:{BOB_TOTP}"),
                "--jwt-ttl",
                "60",
                "--rate-limit",
                "100/60",
                "--organization",
                "acme:team:alice:app",
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent();
    let mut reply = agent
        .post(format!("{url}/v2/auth/token"))
        .send_json(json!({"identifier": "alice", "secret": "pw"}))
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["x-ratelimit-limit"], "100");
    let body: serde_json::Value = reply.body_mut().read_json().unwrap();
    let jwt = body["access_token"].as_str().unwrap();
    let jwt_claims = claims(jwt);
    assert_eq!(jwt_claims.exp - jwt_claims.iat, 60);

    let oat: serde_json::Value = agent
        .post(format!("{url}/v2/orgs/acme/access-tokens"))
        .header("Authorization", format!("Bearer {jwt}"))
        .send_json(json!({
            "label": "ci",
            "resources": [{"type": "TYPE_REPO", "path": "acme/app", "scopes": ["scope-image-pull"]}],
        }))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let oat_login = agent
        .post(format!("{url}/v2/auth/token"))
        .send_json(json!({"identifier": "acme", "secret": oat["token"]}))
        .unwrap();
    assert_eq!(oat_login.status(), 200, "{oat}");

    let first: serde_json::Value = agent
        .post(format!("{url}/v2/users/login"))
        .send_json(json!({"username": "bob", "password": "pw"}))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let second = agent
        .post(format!("{url}/v2/users/2fa-login"))
        .send_json(json!({
            "login_2fa_token": first["login_2fa_token"],
            "code": totp::current_code(BOB_TOTP),
        }))
        .unwrap();
    assert_eq!(second.status(), 200);

    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            panic!("fakehub did not exit on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn binary_rejects_bad_arguments() {
    for args in [
        ["--account", "no-password"],
        ["--rate-limit", "ten"],
        ["--organization", "acme:gold:alice"],
        // Parses, but alice is no account: refused at start.
        ["--organization", "acme:team:alice"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_fakehub"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty());
    }
}
