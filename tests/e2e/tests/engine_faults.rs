//! The engine under a misbehaving Docker Hub, at scale, through the compiled component: every
//! fault the fake can play (5xx, 429, latency, connections dropped before and after the Hub
//! did the work, each for a share of requests), then a count: every token at the Hub has a
//! live record, or is gone.

use dockerhub_secrets::RuntimeConfig;
use dockerhub_secrets::Storage;
use dockerhub_secrets::engine::{LeaseState, Operation};
use dockerhub_secrets_e2e::{Engine, Issued};
use fakehub::{Fault, FaultKind};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const TOKENS: &str = "/v2/access-tokens";
const TOKEN: &str = "/v2/access-tokens/";

/// The uuids the engine keeps a token record for.
fn recorded(engine: &Engine) -> BTreeSet<String> {
    engine
        .storage
        .keys()
        .iter()
        .filter_map(|k| k.strip_prefix("token/"))
        .map(str::to_string)
        .collect()
}

fn pending_creations(engine: &Engine) -> usize {
    engine
        .storage
        .keys()
        .iter()
        .filter(|k| k.starts_with("wal/"))
        .count()
}

fn at_hub(engine: &Engine) -> BTreeSet<String> {
    engine.hub.tokens().into_iter().map(|t| t.uuid).collect()
}

/// Issue `count` tokens and return the leases of those that were issued.
async fn burst(engine: &Engine, count: usize) -> Vec<Issued> {
    let mut issued = Vec::new();
    for _ in 0..count {
        if let Ok(response) = engine
            .call(Operation::Update, "token/hoeg/my-organization", Value::Null)
            .await
        {
            issued.push(Issued::from(response));
        }
    }
    issued
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_hundred_tokens_with_15_percent_failing_deletes_needs_one_call_each() {
    let engine = Engine::start();
    engine.configure().await;
    let issued = burst(&engine, 100).await;
    assert_eq!(issued.len(), 100);
    // 3 of every 20 DELETEs fail: 503s for the first half of the tokens, dropped connections
    // for the second.
    engine
        .hub
        .inject(Fault::on("DELETE", TOKEN, FaultKind::Status(503)).ratio(3, 20));
    for (n, token) in issued.iter().enumerate() {
        if n == 50 {
            engine.hub.clear_faults();
            engine
                .hub
                .inject(Fault::on("DELETE", TOKEN, FaultKind::Drop).ratio(3, 20));
        }
        if let Err(e) = engine.revoke(&token.lease).await {
            panic!("revoke {n} failed on its first call: {e}");
        }
    }
    assert!(engine.hub.tokens().is_empty());
    assert!(recorded(&engine).is_empty());
    let deletes: Vec<u16> = engine
        .hub
        .calls()
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.status)
        .collect();
    let failed = |status| deletes.iter().filter(|s| **s == status).count();
    assert_eq!(failed(204), 100);
    assert!(
        failed(503) > 0 && failed(0) > 0 && failed(503) + failed(0) >= deletes.len() * 15 / 100,
        "the Hub failed {} of {} DELETEs with 503 and dropped {}",
        failed(503),
        deletes.len(),
        failed(0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_under_every_fault_leaves_no_token_without_a_record() {
    let engine = Engine::start();
    engine.configure().await;
    let mut leases: Vec<LeaseState> = Vec::new();
    let mut attempted = 0;

    // Each phase: a share of the requests it aims at misbehave, and the Hub's state is
    // checked after it.
    let phases: Vec<(&str, Vec<Fault>)> = vec![
        (
            "30 % of creations dropped after the Hub made the token",
            vec![Fault::on("POST", TOKENS, FaultKind::DropAfterProcessing).ratio(3, 10)],
        ),
        (
            "a quarter of creations answered 502 after the Hub made the token",
            vec![Fault::on("POST", TOKENS, FaultKind::StatusAfterProcessing(502)).ratio(1, 4)],
        ),
        (
            "a quarter of creations dropped before the Hub saw them",
            vec![Fault::on("POST", TOKENS, FaultKind::Drop).ratio(1, 4)],
        ),
        (
            "a fifth of creations answered 503 without processing",
            vec![Fault::on("POST", TOKENS, FaultKind::Status(503)).ratio(1, 5)],
        ),
        (
            "a fifth of creations rate-limited for a second",
            vec![Fault::on("POST", TOKENS, FaultKind::RateLimited { retry_after: 1 }).ratio(1, 5)],
        ),
        (
            "lost creations whose settling listing fails half the time",
            vec![
                Fault::on("POST", TOKENS, FaultKind::DropAfterProcessing).ratio(1, 3),
                Fault::on("GET", TOKENS, FaultKind::Status(500)).ratio(1, 2),
            ],
        ),
        (
            "every request slow, a third of creations lost",
            vec![
                Fault::any(FaultKind::Latency(Duration::from_millis(150))).ratio(1, 2),
                Fault::on("POST", TOKENS, FaultKind::DropAfterProcessing).ratio(1, 3),
            ],
        ),
    ];
    for (phase, faults) in phases {
        for fault in faults {
            engine.hub.inject(fault);
        }
        let issued = burst(&engine, 12).await;
        attempted += 12;
        leases.extend(issued.into_iter().map(|i| i.lease));
        let unrecorded: Vec<String> = at_hub(&engine)
            .difference(&recorded(&engine))
            .cloned()
            .collect();
        assert!(
            unrecorded.is_empty(),
            "{phase}: tokens at the Hub without a record: {unrecorded:?}"
        );
        assert_eq!(
            recorded(&engine).len(),
            leases.len(),
            "{phase}: one record per issued lease"
        );
        // Ratio faults apply for ever: the next phase starts without them.
        engine.hub.clear_faults();
    }
    assert!(
        leases.len() < attempted && leases.len() > attempted / 2,
        "{} of {attempted} issued",
        leases.len()
    );

    // Rollback clears what the calls could not settle: no token is left without a lease.
    // Records of creations that the Hub lists no token for stay, counted in its answer: the
    // Hub may still carry them out, and later runs look again.
    let response = engine
        .call(
            Operation::Rollback,
            "",
            serde_json::json!({"immediate": true}),
        )
        .await
        .unwrap();
    let data: Value = serde_json::from_str(response.data.as_deref().unwrap()).unwrap();
    let awaiting = data["awaiting_creations"].as_u64().unwrap();
    assert_eq!(pending_creations(&engine) as u64, awaiting);
    assert_eq!(at_hub(&engine), recorded(&engine));
    engine
        .hub
        .inject(Fault::on("DELETE", TOKEN, FaultKind::Status(502)).ratio(1, 5));
    for lease in &leases {
        engine.revoke(lease).await.unwrap();
    }
    assert!(engine.hub.tokens().is_empty());
    assert!(recorded(&engine).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_crash_72_pending_creations_are_settled_with_one_listing() {
    let engine = Engine::start();
    engine.configure().await;
    let kept = burst(&engine, 3).await;
    let lost = burst(&engine, 72).await;
    // A process that died after the Hub created these tokens and before it recorded them:
    // their write-ahead records remain, their token records never were.
    for (n, issued) in lost.iter().enumerate() {
        let label = engine.hub.token(issued.uuid()).unwrap().label;
        let storage = &engine.storage;
        storage
            .delete(&format!("token/{}", issued.uuid()))
            .await
            .unwrap();
        let record = serde_json::json!({"account": "hoeg", "token_label": label, "created_at": 0});
        storage
            .put(&format!("wal/{n:016x}"), record.to_string().into_bytes())
            .await
            .unwrap();
    }
    engine.hub.clear_calls();
    engine
        .call(Operation::Rollback, "", serde_json::json!({}))
        .await
        .unwrap();
    let calls = engine.hub.calls();
    let count = |method: &str| {
        calls
            .iter()
            .filter(|c| c.method == method && c.path.starts_with(TOKENS))
            .count()
    };
    // One listing of 75 tokens (one page), read twice to know it held still.
    assert_eq!(count("GET"), 2, "one listing for all 72");
    assert_eq!(count("DELETE"), 72);
    assert_eq!(pending_creations(&engine), 0);
    let left: BTreeSet<String> = kept.iter().map(|i| i.uuid().to_string()).collect();
    assert_eq!(at_hub(&engine), left);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creation_the_hub_is_too_slow_to_answer_is_settled_within_the_call() {
    // The Hub creates the token at once and takes longer than the whole call to say so. The
    // creation's request ends where the call's last quarter begins; the engine then finds the
    // token by its label, deletes it, and answers before its time limit.
    let time_limit = Duration::from_secs(4);
    let engine = Engine::start_with(RuntimeConfig {
        time_limit,
        ..RuntimeConfig::default()
    });
    engine.configure().await;
    engine.hub.inject(Fault::on(
        "POST",
        TOKENS,
        FaultKind::LatencyAfterProcessing(Duration::from_secs(10)),
    ));
    let started = Instant::now();
    let error = engine
        .call(Operation::Update, "token/hoeg/my-organization", Value::Null)
        .await
        .map(drop)
        .expect_err("no answer to the creation");
    let took = started.elapsed();
    assert!(took < time_limit, "answered after {took:?}");
    assert_eq!(error.http_status(), 502, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("did not answer the token creation")
            && message.contains("found and deleted"),
        "{message}"
    );
    let calls = engine.hub.calls();
    let made = calls
        .iter()
        .filter(|c| c.method == "POST" && c.path == TOKENS)
        .count();
    let deleted = calls
        .iter()
        .filter(|c| c.method == "DELETE" && c.path.starts_with(TOKEN) && c.status == 204)
        .count();
    assert_eq!((made, deleted), (1, 1), "{calls:?}");
    assert!(engine.hub.tokens().is_empty());
    assert_eq!(pending_creations(&engine), 0);
    assert!(recorded(&engine).is_empty());
}
