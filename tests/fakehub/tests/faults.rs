//! Injected faults: each kind, how faults match requests, and how they show in `calls()`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fakehub::{Fault, FaultKind};
use serde_json::json;

fn create_body() -> Option<serde_json::Value> {
    Some(json!({"token_label": "ci", "scopes": ["repo:read"]}))
}

#[test]
fn status_fault_answers_without_processing() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::Status(503),
    ));
    let reply = client.send("POST", "/v2/access-tokens", Some(&jwt), create_body());
    assert_detail_body(&reply, 503, "Service Unavailable");
    assert!(hub.tokens().is_empty());
    // Used up: the next request goes through.
    client.create_token(&jwt, "ci", &["repo:read"]);
    assert_eq!(hub.tokens().len(), 1);
}

#[test]
fn rate_limited_fault_sends_both_retry_headers() {
    let hub = hub();
    let client = Client::new(&hub);
    hub.inject(Fault::on_path(
        "/v2/auth/token",
        FaultKind::RateLimited { retry_after: 7 },
    ));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reply = client.send(
        "POST",
        "/v2/auth/token",
        None,
        Some(json!({"identifier": ALICE, "secret": ALICE_PASSWORD})),
    );
    assert_detail_body(&reply, 429, "Rate limit exceeded");
    assert_eq!(reply.header("retry-after"), Some("7"));
    let retry_at: u64 = reply.header("x-retry-after").unwrap().parse().unwrap();
    assert!(
        (before + 7..=before + 17).contains(&retry_at),
        "{retry_at} vs {before}"
    );
    assert_eq!(hub.login_count(), 0, "not processed");
}

#[test]
fn latency_fault_delays_then_processes() {
    let hub = hub();
    let client = Client::new(&hub);
    hub.inject(Fault::any(FaultKind::Latency(Duration::from_millis(300))));
    let started = Instant::now();
    client.login(ALICE, ALICE_PASSWORD);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(hub.login_count(), 1);
}

#[test]
fn latency_after_processing_does_the_work_before_the_slow_answer() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::LatencyAfterProcessing(Duration::from_millis(600)),
    ));
    let waiting = std::thread::spawn({
        let client = Client::new(&hub);
        let jwt = jwt.clone();
        move || {
            let started = Instant::now();
            let reply = client.send("POST", "/v2/access-tokens", Some(&jwt), create_body());
            (started.elapsed(), reply.status)
        }
    });
    // The token exists while the answer is still on its way.
    let deadline = Instant::now() + Duration::from_millis(500);
    while hub.tokens().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the token was not created before the answer"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (took, status) = waiting.join().unwrap();
    assert_eq!(status, 201);
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert_eq!(hub.tokens().len(), 1);
}

#[test]
fn drop_fault_closes_the_connection_without_processing() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on("POST", "/v2/access-tokens", FaultKind::Drop));
    let outcome = client.try_send("POST", "/v2/access-tokens", Some(&jwt), create_body());
    assert!(outcome.is_err(), "expected no response, got {outcome:?}");
    assert!(hub.tokens().is_empty());
    let last = hub.calls().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.status),
        ("POST", "/v2/access-tokens", 0)
    );
    // The server keeps serving new connections.
    client.create_token(&jwt, "ci", &["repo:read"]);
}

#[test]
fn drop_after_processing_creates_the_token_but_loses_the_response() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::DropAfterProcessing,
    ));
    let outcome = client.try_send("POST", "/v2/access-tokens", Some(&jwt), create_body());
    assert!(outcome.is_err(), "expected no response, got {outcome:?}");
    let tokens = hub.tokens();
    assert_eq!(
        tokens.len(),
        1,
        "the token exists although the client never saw it"
    );
    assert_eq!(tokens[0].label, "ci");
    assert_eq!(hub.calls().last().unwrap().status, 0);
    // The orphan is visible to a client that lists its tokens.
    let list = client.send("GET", "/v2/access-tokens", Some(&jwt), None);
    assert_eq!(list.body["count"], 1);
}

#[test]
fn faults_match_method_and_prefix_and_apply_in_order() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(500)).times(2));
    hub.inject(Fault::on_path("/v2/access-tokens", FaultKind::Status(502)));

    // GET does not match the first fault; it takes the second.
    let list = client.send("GET", "/v2/access-tokens", Some(&jwt), None);
    assert_eq!(list.status, 502);
    assert_eq!(
        client
            .send("GET", "/v2/access-tokens", Some(&jwt), None)
            .status,
        200
    );

    let uuid = client.create_token(&jwt, "ci", &["repo:read"])["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v2/access-tokens/{uuid}");
    assert_eq!(client.send("DELETE", &path, Some(&jwt), None).status, 500);
    assert_eq!(client.send("DELETE", &path, Some(&jwt), None).status, 500);
    assert_eq!(client.send("DELETE", &path, Some(&jwt), None).status, 204);

    let statuses: Vec<u16> = hub.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 502, 200, 201, 500, 500, 204]);
}

#[test]
fn status_after_processing_does_the_work_then_fails_the_answer() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::StatusAfterProcessing(502),
    ));
    let reply = client.send("POST", "/v2/access-tokens", Some(&jwt), create_body());
    assert_eq!(reply.status, 502);
    assert!(
        reply.body.get("token").is_none(),
        "no secret in the failure: {:?}",
        reply.body
    );
    assert_eq!(hub.tokens().len(), 1, "the token was created");
    assert_eq!(hub.calls().last().unwrap().status, 502);
}

#[test]
fn clear_faults_drops_ratio_faults_too() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on("POST", "/v2/access-tokens", FaultKind::Status(503)).ratio(1, 1));
    let reply = client.send("POST", "/v2/access-tokens", Some(&jwt), create_body());
    assert_eq!(reply.status, 503);
    hub.clear_faults();
    client.create_token(&jwt, "ci", &["repo:read"]);
    assert_eq!(hub.tokens().len(), 1);
}
