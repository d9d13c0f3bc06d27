//! The gateway's leases, told as stories through the front: an in-memory bucket shared by
//! instances, and an engine that records what it was asked.

use crate::engine::{Engine, EngineError, Lease, Operation, Request, Response};
use crate::leases::{self, Leases, TidyReport};
use crate::store::{Store, StoreError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;
use vault_front::{AccessControl, ApiError, Front, LeaseRecord, RevocationState, Timestamp};

/// A bucket in memory, shared by every clone as instances share one store.
#[derive(Clone, Default)]
struct MemoryStore {
    entries: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    /// Writes of lease records fail while set.
    refuse_records: Arc<AtomicBool>,
    /// Every read fails while set (etcd gone, or a store key that opens nothing).
    refuse_reads: Arc<AtomicBool>,
}

impl MemoryStore {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.lock().unwrap()
    }

    fn keys_starting(&self, prefix: &str) -> Vec<String> {
        self.entries()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn record(&self, lease_id: &str) -> Option<LeaseRecord> {
        let key = LeaseRecord::storage_key(lease_id)?;
        let bytes = self.entries().get(key)?.clone();
        Some(serde_json::from_slice(&bytes).unwrap())
    }
}

/// The keyvalue hosts' rule for a key (`host/gateway/keyvalue-etcd/src/layout.rs`):
/// a key the gateway's store would refuse fails the test.
fn check_key(key: &str) {
    assert!(
        !key.is_empty() && key.len() <= 512 && !key.contains('/') && key != "." && key != "..",
        "a keyvalue host refuses the key {key:?}"
    );
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key);
        if self.refuse_reads.load(Ordering::SeqCst) {
            return Err(StoreError("the value does not decrypt".into()));
        }
        Ok(self.entries().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(key);
        if !key.contains('.') && self.refuse_records.load(Ordering::SeqCst) {
            return Err(StoreError("etcd is unavailable".into()));
        }
        self.entries().insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key);
        self.entries().remove(key);
        Ok(())
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.entries().keys().cloned().collect())
    }

    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError> {
        check_key(key);
        let mut entries = self.entries();
        let current: u64 = entries
            .get(key)
            .map(|v| String::from_utf8_lossy(v).parse().unwrap())
            .unwrap_or(0);
        entries.insert(key.to_string(), (current + delta).to_string().into_bytes());
        Ok(current + delta)
    }
}

/// An engine that issues a token lease for every write (TTL from the request's `ttl`
/// field, 300 s by default; max TTL 3600 s), renews by the increment asked (300 s
/// by default), and revokes after `revoke_delay`, failing with the queued errors first.
#[derive(Clone, Default)]
struct StubEngine(Arc<Mutex<EngineState>>);

#[derive(Default)]
struct EngineState {
    calls: Vec<Request>,
    revoke_failures: VecDeque<EngineError>,
    revoke_delay: Duration,
}

impl StubEngine {
    fn calls(&self, operation: Operation) -> Vec<Request> {
        let state = self.0.lock().unwrap();
        state
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .cloned()
            .collect()
    }

    fn fail_revocations(&self, errors: impl IntoIterator<Item = EngineError>) {
        self.0.lock().unwrap().revoke_failures.extend(errors);
    }
}

impl Engine for StubEngine {
    fn handle(&self, request: &Request) -> Result<Response, EngineError> {
        let delay = {
            let mut state = self.0.lock().unwrap();
            state.calls.push(request.clone());
            state.revoke_delay
        };
        match request.operation {
            Operation::Create | Operation::Update => {
                let data: Value = serde_json::from_str(&request.data).unwrap();
                Ok(Response {
                    data: Some(r#"{"token": "dckr_pat_secret"}"#.into()),
                    lease: Some(Lease {
                        ttl: data["ttl"].as_u64().unwrap_or(300),
                        max_ttl: 3600,
                        renewable: true,
                        internal_data: r#"{"token_id": "t-1"}"#.into(),
                    }),
                    warnings: Vec::new(),
                })
            }
            Operation::Renew => {
                let state = request.lease.as_ref().unwrap();
                Ok(Response {
                    data: None,
                    lease: Some(Lease {
                        ttl: match state.increment {
                            0 => 300,
                            increment => increment.min(3600),
                        },
                        max_ttl: 3600,
                        renewable: true,
                        internal_data: state.internal_data.clone(),
                    }),
                    warnings: Vec::new(),
                })
            }
            Operation::Revoke => {
                std::thread::sleep(delay);
                match self.0.lock().unwrap().revoke_failures.pop_front() {
                    Some(e) => Err(e),
                    None => Ok(Response::default()),
                }
            }
            Operation::Read | Operation::Delete | Operation::List | Operation::Rollback => {
                Ok(Response::default())
            }
        }
    }

    fn existence_check(&self, _request: &Request) -> Result<Option<bool>, EngineError> {
        Ok(Some(false))
    }
}

const TOKEN: &str = "gateway-token";

fn front() -> Front {
    // The SHA-256 of `TOKEN`.
    let tokens = r#"
        token "ci" {
          sha256   = "f15ae5b5899f8327f52779c081b7b25d5217f62042ae4b6d677b0f25096e2141"
          policies = ["ci"]
        }
        policy "ci" {
          path "dockerhub/*" { capabilities = ["create", "update", "read"] }
          path "sys/leases/*" { capabilities = ["update"] }
          path "sys/leases/lookup/*" { capabilities = ["list", "sudo"] }
        }
    "#;
    Front {
        acl: AccessControl::parse(tokens).unwrap(),
        mount: "dockerhub".into(),
        storage_type: crate::config::STORAGE_TYPE,
    }
}

struct Body(Vec<u8>);

impl vault_front::Body for Body {
    async fn read(self) -> Result<Vec<u8>, ApiError> {
        Ok(self.0)
    }
}

type Gateway = Leases<MemoryStore, StubEngine>;

fn gateway(store: &MemoryStore, engine: &StubEngine) -> Gateway {
    Leases::new(store.clone(), engine.clone(), "dockerhub")
}

/// One request through the front, with the `ci` token; the status and the JSON answer.
fn send(gateway: &Gateway, method: &str, uri: &str, body: Value) -> (u16, Value) {
    let (parts, ()) = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("x-vault-token", TOKEN)
        .body(())
        .unwrap()
        .into_parts();
    let response = vault_front::block_on(vault_front::handle(
        &front(),
        gateway,
        &parts,
        Body(body.to_string().into_bytes()),
    ));
    let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

/// Issue a token with this TTL; its lease id.
fn issue(gateway: &Gateway, ttl: u64) -> String {
    let (status, body) = send(
        gateway,
        "PUT",
        "/v1/dockerhub/token/hoeg/hoeg",
        json!({"ttl": ttl}),
    );
    assert_eq!(status, 200, "{body}");
    body["lease_id"].as_str().unwrap().to_string()
}

#[test]
fn a_lease_is_stored_looked_up_renewed_and_revoked_once() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);

    let (status, body) = send(&gateway, "PUT", "/v1/dockerhub/token/hoeg/hoeg", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["token"], "dckr_pat_secret");
    let lease_id = body["lease_id"].as_str().unwrap();
    let (path, random) = lease_id.rsplit_once('/').unwrap();
    assert_eq!(path, "dockerhub/token/hoeg/hoeg");
    assert_eq!(random.len(), 24);
    let stored = store.record(lease_id).expect("the lease is stored");
    assert_eq!(
        (stored.ttl, stored.renewable, stored.path.as_str()),
        (300, true, "token/hoeg/hoeg")
    );
    assert_eq!(stored.internal_data, r#"{"token_id": "t-1"}"#);
    assert!(!String::from_utf8_lossy(&store.get(random).unwrap().unwrap()).contains("dckr_pat"));

    let (status, body) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/lookup",
        json!({"lease_id": lease_id}),
    );
    assert_eq!((status, &body["data"]["id"]), (200, &json!(lease_id)));
    let (status, body) = send(
        &gateway,
        "LIST",
        "/v1/sys/leases/lookup/dockerhub/token/hoeg",
        json!({}),
    );
    assert_eq!((status, &body["data"]["keys"]), (200, &json!(["hoeg/"])));

    // Past the max TTL (3600 s from issue): OpenBao's warning beside the engine's answer.
    let (status, body) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/renew",
        json!({"lease_id": lease_id, "increment": 7200}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lease_duration"], 3600);
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("TTL of \"2h\" exceeded the effective max_ttl of"),
        "{body}"
    );
    let renewed = store.record(lease_id).unwrap();
    assert_eq!(renewed.ttl, 3600);
    assert!(renewed.last_renewal.is_some());
    assert_eq!(
        engine.calls(Operation::Renew)[0]
            .lease
            .as_ref()
            .unwrap()
            .increment,
        7200
    );

    let (status, _) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/revoke",
        json!({"lease_id": lease_id}),
    );
    assert_eq!(status, 204);
    assert!(store.record(lease_id).is_none());
    let revocations = engine.calls(Operation::Revoke);
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].path, "token/hoeg/hoeg");
    assert_eq!(
        revocations[0].lease.as_ref().unwrap().internal_data,
        r#"{"token_id": "t-1"}"#
    );
    assert!(store.keys_starting("claim.").is_empty());

    // Gone: revoking again is no error and no engine call; renewing it is "not found".
    let (status, _) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/revoke",
        json!({"lease_id": lease_id}),
    );
    assert_eq!(status, 204);
    assert_eq!(engine.calls(Operation::Revoke).len(), 1);
    let (status, body) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/renew",
        json!({"lease_id": lease_id}),
    );
    assert_eq!(
        (status, &body["errors"][0]),
        (400, &json!("lease not found"))
    );
}

#[test]
fn a_lease_that_cannot_be_stored_has_its_token_revoked_and_the_client_gets_500() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    store.refuse_records.store(true, Ordering::SeqCst);
    let (status, body) = send(
        &gateway(&store, &engine),
        "PUT",
        "/v1/dockerhub/token/hoeg/hoeg",
        json!({}),
    );
    assert_eq!(status, 500);
    assert_eq!(
        body["errors"][0],
        "storing the lease failed: etcd is unavailable"
    );
    assert!(!body.to_string().contains("dckr_pat"));
    let revocations = engine.calls(Operation::Revoke);
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].path, "token/hoeg/hoeg");
    assert_eq!(
        revocations[0].lease.as_ref().unwrap().internal_data,
        r#"{"token_id": "t-1"}"#
    );
}

#[test]
fn two_instances_revoking_one_lease_at_once_revoke_it_once() {
    for _ in 0..20 {
        let (store, engine) = (MemoryStore::default(), StubEngine::default());
        // Expired at once, so that the tidy finds it due on the same clock as the revoke.
        let lease_id = issue(&gateway(&store, &engine), 0);
        engine.0.lock().unwrap().revoke_delay = Duration::from_millis(5);
        let start = Arc::new(Barrier::new(2));
        let instances: Vec<_> = (0..2)
            .map(|i| {
                let (store, engine) = (store.clone(), engine.clone());
                let (start, lease_id) = (start.clone(), lease_id.clone());
                std::thread::spawn(move || {
                    let instance = gateway(&store, &engine);
                    start.wait();
                    if i == 0 {
                        instance.revoke(&lease_id, true).map(|_| ())
                    } else {
                        instance
                            .tidy(Timestamp::now(), 5)
                            .map(|_| ())
                            .map_err(|e| vault_front::LeaseFailure::Storage(e.0))
                    }
                })
            })
            .collect();
        for instance in instances {
            // A synchronous revoke that loses the race waits for the winner's attempt and
            // answers how the lease ended: neither fails.
            assert_eq!(instance.join().unwrap(), Ok(()));
        }
        assert_eq!(engine.calls(Operation::Revoke).len(), 1);
        assert!(store.record(&lease_id).is_none());
    }
}

#[test]
fn interleaved_instances_revoke_once_and_a_finished_claim_is_not_redone() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let (mut one, two) = (gateway(&store, &engine), gateway(&store, &engine));
    one.claimed_wait = Duration::ZERO;
    let lease_id = issue(&one, 300);
    let key = LeaseRecord::storage_key(&lease_id).unwrap().to_string();
    // Instance two has claimed the first attempt and is calling the engine.
    assert_eq!(store.increment(&format!("claim.{key}.0"), 1), Ok(1));
    assert_eq!(
        one.revoke(&lease_id, true).map_err(|e| e.http_status()),
        Err(409),
        "done waiting for it"
    );
    assert_eq!(
        one.revoke(&lease_id, false),
        Ok(()),
        "queued: someone is at it"
    );
    assert!(engine.calls(Operation::Revoke).is_empty());
    // It finishes; whoever comes next finds the lease gone.
    store.delete(&key).unwrap();
    assert_eq!(two.revoke(&lease_id, true), Ok(()));
    assert!(engine.calls(Operation::Revoke).is_empty());
}

#[test]
fn an_instance_that_died_during_a_revocation_leaves_it_to_the_next_attempt() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let mut gateway = gateway(&store, &engine);
    gateway.claimed_wait = Duration::ZERO;
    let lease_id = issue(&gateway, 300);
    let key = LeaseRecord::storage_key(&lease_id).unwrap().to_string();
    // Claimed and marked by an instance that never came back.
    let claimed_at = Timestamp::now().plus_secs(301);
    store.increment(&format!("claim.{key}.0"), 1).unwrap();
    let mut record = store.record(&lease_id).unwrap();
    record.revocation = Some(RevocationState {
        attempts: 1,
        last_error: leases::UNDER_WAY.into(),
        next_attempt: claimed_at.plus_secs(leases::REVOCATION_UNDER_WAY_FOR),
    });
    store
        .set(&key, &serde_json::to_vec(&record).unwrap())
        .unwrap();

    assert_eq!(
        gateway.revoke(&lease_id, true).map_err(|e| e.http_status()),
        Err(409),
        "under way"
    );
    let report = gateway.tidy(claimed_at.plus_secs(10), 5).unwrap();
    assert_eq!((report.due, report.revoked), (0, 0));
    let later = claimed_at.plus_secs(leases::REVOCATION_UNDER_WAY_FOR);
    let report = gateway.tidy(later, 5).unwrap();
    assert_eq!((report.due, report.revoked), (1, 1));
    assert_eq!(engine.calls(Operation::Revoke).len(), 1);
    assert!(store.keys_starting("claim.").is_empty());
}

#[test]
fn tidy_revokes_due_leases_oldest_first_within_its_budget() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let now = Timestamp::now();
    let first = issue(&gateway, 100);
    let second = issue(&gateway, 200);
    let third = issue(&gateway, 300);

    assert_eq!(gateway.tidy(now, 5).unwrap(), TidyReport::default());
    let at = now.plus_secs(250);
    assert_eq!(
        gateway.tidy(at, 1).unwrap(),
        TidyReport {
            due: 2,
            revoked: 1,
            failed: 0,
            left: 1
        }
    );
    assert!(store.record(&first).is_none(), "the oldest goes first");
    assert!(store.record(&second).is_some());
    assert_eq!(
        gateway.tidy(at, 5).unwrap(),
        TidyReport {
            due: 1,
            revoked: 1,
            failed: 0,
            left: 0
        }
    );
    assert!(store.record(&second).is_none());
    assert!(store.record(&third).is_some(), "not due");
    assert_eq!(engine.calls(Operation::Revoke).len(), 2);
}

#[test]
fn a_failed_revocation_is_retried_only_after_its_backoff() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let lease_id = issue(&gateway, 100);
    engine.fail_revocations([
        EngineError::Upstream {
            message: "Docker Hub answered 500".into(),
            retry_after: None,
        },
        EngineError::Upstream {
            message: "Docker Hub answered 429".into(),
            retry_after: Some(30),
        },
    ]);
    let expired = Timestamp::now().plus_secs(101);
    let report = gateway.tidy(expired, 5).unwrap();
    assert_eq!((report.due, report.failed), (1, 1));
    let revocation = store.record(&lease_id).unwrap().revocation.unwrap();
    assert_eq!(revocation.attempts, 1);
    assert_eq!(revocation.last_error, "Docker Hub answered 500");
    assert_eq!(revocation.next_attempt, expired.plus_secs(1));
    // A failed lease is on its way out: not renewable, shown as such.
    let (status, body) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/renew",
        json!({"lease_id": lease_id}),
    );
    assert_eq!((status, &body["errors"][0]), (400, &json!("lease expired")));

    // Not before the backoff; then again, and the Hub's Retry-After sets the next wait.
    assert_eq!(gateway.tidy(expired, 5).unwrap().due, 0);
    assert_eq!(engine.calls(Operation::Revoke).len(), 1);
    let retry = expired.plus_secs(1);
    let report = gateway.tidy(retry, 5).unwrap();
    assert_eq!((report.due, report.failed), (1, 1));
    let revocation = store.record(&lease_id).unwrap().revocation.unwrap();
    assert_eq!(
        (revocation.attempts, revocation.next_attempt),
        (2, retry.plus_secs(30))
    );
    assert_eq!(gateway.tidy(retry.plus_secs(29), 5).unwrap().due, 0);
    let report = gateway.tidy(retry.plus_secs(30), 5).unwrap();
    assert_eq!((report.due, report.revoked), (1, 1));
    assert_eq!(engine.calls(Operation::Revoke).len(), 3);
    assert!(store.record(&lease_id).is_none());
    assert!(store.keys_starting("claim.").is_empty());
}

#[test]
fn a_client_revocation_does_not_wait_for_the_backoff_and_reports_the_failure() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let lease_id = issue(&gateway, 300);
    engine.fail_revocations([EngineError::Upstream {
        message: "Docker Hub answered 503".into(),
        retry_after: None,
    }]);
    let (status, body) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/revoke",
        json!({"lease_id": lease_id}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0],
        "failed to revoke entry: resp: (*logical.Response)(nil) err: Docker Hub answered 503"
    );
    assert_eq!(
        store
            .record(&lease_id)
            .unwrap()
            .revocation
            .unwrap()
            .attempts,
        1
    );
    let (status, _) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/revoke",
        json!({"lease_id": lease_id}),
    );
    assert_eq!(status, 204);
    assert_eq!(engine.calls(Operation::Revoke).len(), 2);
    assert!(store.record(&lease_id).is_none());
}

#[test]
fn revoke_prefix_and_force_end_every_lease_below_the_prefix() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let (one, two) = (issue(&gateway, 300), issue(&gateway, 300));
    let (status, _) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/revoke-prefix/dockerhub/token/hoeg",
        json!({}),
    );
    // The policy gives no sudo on revoke-prefix.
    assert_eq!(status, 403);
    assert_eq!(gateway.revoke_prefix("dockerhub/tok", true), Ok(0));
    engine.fail_revocations([EngineError::Internal("broken".into())]);
    assert!(gateway.revoke_prefix("dockerhub/token/hoeg", true).is_err());
    assert_eq!(
        [&one, &two]
            .map(|id| store.record(id).is_some())
            .iter()
            .filter(|kept| **kept)
            .count(),
        1,
        "the failed one stays"
    );
    engine.fail_revocations([EngineError::Internal("broken".into())]);
    assert_eq!(gateway.revoke_force("dockerhub/token/hoeg/"), Ok(1));
    assert!(store.record(&one).is_none() && store.record(&two).is_none());
    assert_eq!(store.keys_starting("claim."), Vec::<String>::new());
}

#[test]
fn a_request_tidies_only_when_the_hint_says_a_lease_may_be_due() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let now = Timestamp::now();
    assert_eq!(
        gateway.tidy_if_due(now, 2).unwrap(),
        Some(TidyReport::default())
    );
    // Nothing stored: the next look is at most a minute away.
    assert_eq!(gateway.tidy_if_due(now, 2).unwrap(), None);
    let lease_id = issue(&gateway, 30);
    assert_eq!(gateway.tidy_if_due(now.plus_secs(10), 2).unwrap(), None);
    let report = gateway.tidy_if_due(now.plus_secs(31), 2).unwrap().unwrap();
    assert_eq!((report.due, report.revoked), (1, 1));
    assert!(store.record(&lease_id).is_none());
}

#[test]
fn health_fails_while_the_lease_store_cannot_be_read() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let (status, body) = send(&gateway, "GET", "/v1/sys/health", json!(null));
    assert_eq!((status, body["sealed"].clone()), (200, json!(false)));
    store.refuse_reads.store(true, Ordering::SeqCst);
    let (status, body) = send(&gateway, "GET", "/v1/sys/health", json!(null));
    assert_eq!(status, 500);
    assert_eq!(
        body["errors"],
        json!(["the lease store cannot be read: the value does not decrypt"])
    );
    let (status, _) = send(&gateway, "HEAD", "/v1/sys/health", json!(null));
    assert_eq!(status, 500, "HEAD too, for load balancers");
}

/// The README's bound: a hint that another instance's tidy wrote last, over the lower one a
/// new lease left, hides that lease for at most [`leases::MAX_HINT_AHEAD`] seconds.
#[test]
fn a_lease_whose_hint_is_lost_in_a_race_ends_at_most_a_minute_late() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let now = Timestamp::now();
    // The racing tidy saw no lease: the latest hint a tidy writes.
    gateway.tidy(now, 2).unwrap();
    let racing = store.get("tidy.next-due").unwrap().unwrap();
    assert_eq!(
        racing,
        now.plus_secs(leases::MAX_HINT_AHEAD)
            .secs()
            .to_string()
            .into_bytes()
    );
    assert_eq!(leases::MAX_HINT_AHEAD, 60, "the README says a minute");
    let lease_id = issue(&gateway, 10);
    store.set("tidy.next-due", &racing).unwrap();
    assert_eq!(
        gateway.tidy_if_due(now.plus_secs(59), 2).unwrap(),
        None,
        "the lost hint hides the lease due at 10 s"
    );
    let report = gateway.tidy_if_due(now.plus_secs(60), 2).unwrap().unwrap();
    assert_eq!(report.revoked, 1);
    assert!(store.record(&lease_id).is_none());
}

#[test]
fn put_tidy_is_answered_202_at_once_and_tidies_after_the_answer_beyond_the_requests_budget() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let ids: Vec<String> = (0..4).map(|_| issue(&gateway, 30)).collect();
    let expired = Timestamp::now().plus_secs(31);
    // A request's own share: two.
    let report = gateway.after_answer(expired).unwrap().unwrap();
    assert_eq!((report.due, report.revoked, report.left), (4, 2, 2));

    let (status, body) = send(&gateway, "PUT", "/v1/sys/leases/tidy", json!({}));
    assert_eq!(status, 202);
    assert_eq!(
        body["warnings"],
        json!([
            "Tidy operation successfully started. Any information from the operation will be printed to OpenBao's server logs."
        ])
    );
    assert_eq!(
        engine.calls(Operation::Revoke).len(),
        2,
        "nothing before the answer"
    );
    let report = gateway.after_answer(expired).unwrap().unwrap();
    assert_eq!((report.due, report.revoked, report.left), (2, 2, 0));
    assert!(ids.iter().all(|id| store.record(id).is_none()));
    // Once: the next request is back to the hint and its own budget.
    assert_eq!(gateway.after_answer(expired).unwrap(), None);
}

/// The revocation under way elsewhere: claimed and marked by another instance.
fn claimed_elsewhere(store: &MemoryStore, lease_id: &str) {
    let key = LeaseRecord::storage_key(lease_id).unwrap();
    store.increment(&format!("claim.{key}.0"), 1).unwrap();
    let mut record = store.record(lease_id).unwrap();
    record.revocation = Some(RevocationState {
        attempts: 1,
        last_error: leases::UNDER_WAY.into(),
        next_attempt: Timestamp::now().plus_secs(leases::REVOCATION_UNDER_WAY_FOR),
    });
    store
        .set(key, &serde_json::to_vec(&record).unwrap())
        .unwrap();
}

#[test]
fn a_synchronous_revocation_waits_for_another_instances_attempt() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);

    // The other instance succeeds: the lease is gone, and the client hears so.
    let lease_id = issue(&gateway, 300);
    claimed_elsewhere(&store, &lease_id);
    let other = {
        let (store, key) = (
            store.clone(),
            LeaseRecord::storage_key(&lease_id).unwrap().to_string(),
        );
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            store.delete(&key).unwrap();
        })
    };
    let started = std::time::Instant::now();
    assert_eq!(gateway.revoke(&lease_id, true), Ok(()));
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited");
    other.join().unwrap();
    assert!(engine.calls(Operation::Revoke).is_empty());

    // The other instance fails: this one tries the next attempt itself.
    let lease_id = issue(&gateway, 300);
    claimed_elsewhere(&store, &lease_id);
    let other = {
        let store = store.clone();
        let lease_id = lease_id.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut record = store.record(&lease_id).unwrap();
            record.revocation = Some(RevocationState {
                attempts: 1,
                last_error: "Docker Hub could not be reached".into(),
                next_attempt: Timestamp::now().plus_secs(1),
            });
            let key = LeaseRecord::storage_key(&lease_id).unwrap();
            store
                .set(key, &serde_json::to_vec(&record).unwrap())
                .unwrap();
        })
    };
    assert_eq!(gateway.revoke(&lease_id, true), Ok(()));
    other.join().unwrap();
    assert_eq!(engine.calls(Operation::Revoke).len(), 1);
    assert!(store.record(&lease_id).is_none());
}

#[test]
fn a_lease_that_cannot_be_read_does_not_stop_the_others_from_ending() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    // A value sealed with another key, or damaged: the store hands back what is no record.
    store
        .entries()
        .insert("AAAAdamaged".into(), b"\xff not a lease".to_vec());
    let lease_id = issue(&gateway, 0);
    let report = gateway.tidy(Timestamp::now().plus_secs(1), 5).unwrap();
    assert_eq!((report.due, report.revoked), (1, 1));
    assert!(store.record(&lease_id).is_none());
    assert_eq!(engine.calls(Operation::Revoke).len(), 1);
}

#[test]
fn a_renewal_to_an_earlier_end_brings_the_tidy_hint_forward() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let gateway = gateway(&store, &engine);
    let now = Timestamp::now();
    let lease_id = issue(&gateway, 3000);
    // The hint now says: nothing due within the next minute.
    gateway.tidy(now, 5).unwrap();
    assert_eq!(gateway.tidy_if_due(now.plus_secs(5), 5).unwrap(), None);
    let (status, body) = send(
        &gateway,
        "PUT",
        "/v1/sys/leases/renew",
        json!({"lease_id": lease_id, "increment": 2}),
    );
    assert_eq!(status, 200, "{body}");
    let report = gateway.tidy_if_due(now.plus_secs(5), 5).unwrap();
    assert_eq!(
        report.map(|r| r.revoked),
        Some(1),
        "due, and tidied at once"
    );
}

#[test]
fn rollback_runs_once_a_minute_across_instances() {
    let (store, engine) = (MemoryStore::default(), StubEngine::default());
    let (one, two) = (gateway(&store, &engine), gateway(&store, &engine));
    let now = Timestamp::now();
    assert!(one.rollback_if_due(now).unwrap());
    assert!(!two.rollback_if_due(now).unwrap(), "one instance of all");
    assert!(!one.rollback_if_due(now.plus_secs(59)).unwrap());
    one.after_answer(now.plus_secs(leases::ROLLBACK_INTERVAL))
        .unwrap();
    let rollbacks = engine.calls(Operation::Rollback);
    assert_eq!(
        rollbacks.len(),
        2,
        "every request may run it once it is due"
    );
    assert!(
        rollbacks.iter().all(|r| r.data == "{}"),
        "never `immediate`"
    );
}
