//! The host's sandbox, proved with a component that misbehaves on purpose
//! (`tests/probe-guest`): it may reach Docker Hub and nothing else, and a call that spins,
//! hoards memory, blocks or panics ends with a clear error while the runtime carries on.

use dockerhub_secrets::Sandbox;
use dockerhub_secrets::engine::{FixedLimit, Operation};
use dockerhub_secrets::{CallError, MemoryStorage, Runtime, RuntimeConfig};
use dockerhub_secrets_e2e::request;
use fakehub::{Config, FakeHub};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The probe component, compiled by `build.rs`.
static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandbox_probe.cwasm"));

struct Probe {
    runtime: Runtime,
    hub: FakeHub,
}

impl Probe {
    fn start(time_limit: Duration, memory_limit: usize) -> Probe {
        let hub = FakeHub::start(Config::default()).unwrap();
        let config = RuntimeConfig {
            hub_url: hub.url(),
            time_limit,
            memory_limit,
        };
        Probe {
            // SAFETY: compiled by this crate's build.rs with the runtime's engine settings.
            runtime: unsafe { Runtime::from_precompiled(PROBE, config) }.unwrap(),
            hub,
        }
    }

    fn new() -> Probe {
        Probe::start(Duration::from_secs(20), 64 << 20)
    }

    async fn call(&self, path: &str, data: Value) -> Result<Value, CallError> {
        let response = self
            .runtime
            .handle(
                Arc::new(MemoryStorage::new()),
                Arc::new(FixedLimit(None)),
                &request(Operation::Read, path, data),
            )
            .await?;
        Ok(serde_json::from_str(&response.data.unwrap()).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_reaches_the_hub_through_the_operators_url() {
    let probe = Probe::new();
    let answer = probe
        .call(
            "fetch",
            json!({"url": "https://hub.docker.com/v2/access-tokens"}),
        )
        .await
        .unwrap();
    assert_eq!(
        answer["status"], 401,
        "the fake Hub answered (no session given)"
    );
    assert_eq!(probe.hub.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_cannot_reach_another_origin() {
    let probe = Probe::new();
    let elsewhere = FakeHub::start(Config::default()).unwrap();
    let other_port = elsewhere.url().rsplit(':').next().unwrap().to_string();
    for url in [
        format!("{}/v2/auth/token", elsewhere.url()),
        format!("https://127.0.0.1:{other_port}/v2/auth/token"),
        "https://registry-1.docker.io/v2/".to_string(),
        "http://hub.docker.com/v2/auth/token".to_string(),
    ] {
        let denied = probe.call("fetch", json!({"url": url})).await;
        let message = denied.expect_err(&url).to_string();
        assert!(message.contains("HttpRequestDenied"), "{url}: {message}");
    }
    let connect = probe
        .call(
            "connect",
            json!({"addr": format!("127.0.0.1:{other_port}")}),
        )
        .await;
    assert!(connect.is_err(), "{connect:?}");
    assert!(elsewhere.calls().is_empty(), "nothing arrived elsewhere");
    assert!(probe.hub.calls().is_empty(), "nor at the Hub");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_sees_no_files() {
    let probe = Probe::new();
    for path in ["/etc/passwd", "Cargo.toml", "."] {
        assert!(
            probe
                .call("read-file", json!({"path": path}))
                .await
                .is_err(),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spinning_guest_is_stopped_by_the_time_limit() {
    let probe = Probe::start(Duration::from_millis(500), 64 << 20);
    let stopped = probe.call("spin", Value::Null).await;
    assert!(
        matches!(stopped, Err(CallError::TimeLimit(_))),
        "{stopped:?}"
    );
    assert_eq!(stopped.unwrap_err().http_status(), 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_blocked_on_io_is_stopped_by_the_time_limit() {
    let probe = Probe::start(Duration::from_millis(500), 64 << 20);
    let stopped = probe.call("sleep", json!({"seconds": "3600"})).await;
    assert!(
        matches!(stopped, Err(CallError::TimeLimit(_))),
        "{stopped:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hoarding_guest_is_stopped_by_the_memory_limit() {
    let probe = Probe::start(Duration::from_secs(20), 32 << 20);
    let stopped = probe.call("allocate", Value::Null).await;
    match stopped {
        Err(CallError::MemoryLimit(limit)) => assert_eq!(limit, 32 << 20),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_guest_fails_one_call_not_the_runtime() {
    let probe = Probe::new();
    let crashed = probe.call("panic", Value::Null).await;
    assert!(matches!(crashed, Err(CallError::Trap(_))), "{crashed:?}");
    assert_eq!(crashed.unwrap_err().http_status(), 500);
    let answer = probe
        .call(
            "fetch",
            json!({"url": "https://hub.docker.com/v2/access-tokens"}),
        )
        .await
        .unwrap();
    assert_eq!(
        answer["status"], 401,
        "the next call runs in a fresh instance"
    );
}
