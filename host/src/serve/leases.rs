//! Durable lease timers: what OpenBao's expiration manager does, for the standalone server.
//!
//! Every lease the engine creates is stored before its response leaves the server, and is
//! revoked through the engine when it expires or when a client asks. A revocation that fails
//! is retried with capped exponential backoff (respecting a Hub `Retry-After` of up to
//! [`MAX_UPSTREAM_WAIT`]: a longer one would hold revocations past their leases) and is never
//! dropped: the lease stays, with its attempts and last error visible through
//! `sys/leases/lookup`, until the engine reports success. After a restart the leases are
//! loaded again and the overdue ones are revoked at once.
//!
//! As in OpenBao's `ExpirationManager`, every change to one lease (renew, revoke, schedule)
//! runs under that lease's lock, and every change that moves a lease's due time wakes the
//! timer, so that it never sleeps past the new time.

use crate::engine::{
    CallError, Datetime, Engine, EngineError, Lease, LeaseState, Request, SystemView,
};
use crate::runtime::MAX_UPSTREAM_WAIT;
use crate::storage::{Storage, StorageError};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use vault_front::{LeaseFailure, LeaseRecord, RevocationState, Timestamp};

/// Revocations running at once; the Hub's rate limit is the real bound.
const REVOKE_CONCURRENCY: usize = 16;
/// Lease locks, shared by hash: one lease's operations queue behind each other, and two
/// leases rarely wait for each other.
const LEASE_LOCKS: usize = 64;

fn now() -> Timestamp {
    Timestamp::now()
}

/// What the engine is told of a lease it renews or revokes.
fn lease_state(record: &LeaseRecord) -> LeaseState {
    LeaseState {
        internal_data: record.internal_data.clone(),
        issue_time: Datetime {
            seconds: record.issue_time.secs(),
            nanoseconds: record.issue_time.subsec_nanos(),
        },
        ttl: record.ttl,
        increment: 0,
    }
}

/// The engine's failure to renew or revoke, as the front words it: its status and text.
impl From<CallError> for LeaseFailure {
    fn from(e: CallError) -> LeaseFailure {
        LeaseFailure::Engine {
            status: e.http_status(),
            message: e.to_string(),
        }
    }
}

fn storage_failure(e: StorageError) -> LeaseFailure {
    LeaseFailure::Storage(e.to_string())
}

#[derive(Default)]
struct Index {
    records: HashMap<String, LeaseRecord>,
    /// (due, key), earliest first.
    due: BTreeSet<(Timestamp, String)>,
    /// Keys the timer has handed to a revocation task that has not finished.
    revoking: HashSet<String>,
}

impl Index {
    fn insert(&mut self, key: &str, record: LeaseRecord) {
        self.remove(key);
        self.due.insert((record.due(), key.to_string()));
        self.records.insert(key.to_string(), record);
    }

    fn remove(&mut self, key: &str) -> Option<LeaseRecord> {
        let record = self.records.remove(key)?;
        self.due.remove(&(record.due(), key.to_string()));
        Some(record)
    }
}

/// The lease manager of one mount.
pub struct Leases {
    /// `sys/leases/` of the server's store.
    storage: Arc<dyn Storage>,
    /// The engine's own storage view.
    engine_storage: Arc<dyn Storage>,
    engine: Arc<Engine>,
    mount: String,
    system_view: Arc<dyn SystemView>,
    index: Mutex<Index>,
    /// Held by every operation on one lease; see [`Leases::lock`].
    locks: Vec<tokio::sync::Mutex<()>>,
    /// Wakes the timer: a lease's due time moved.
    wake: Notify,
}

impl Leases {
    /// Load every stored lease.
    pub async fn load(
        storage: Arc<dyn Storage>,
        engine_storage: Arc<dyn Storage>,
        engine: Arc<Engine>,
        mount: &str,
        system_view: Arc<dyn SystemView>,
    ) -> anyhow::Result<Arc<Leases>> {
        let mut index = Index::default();
        // Every key is a lease; anything else means the store is damaged or not ours, and a
        // lease skipped here would be a Hub token nobody revokes.
        for key in storage.list("").await? {
            let bytes = storage.get(&key).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "the store holds sys/leases/{key}, which is not a lease: the store is damaged"
                )
            })?;
            let record: LeaseRecord = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("stored lease {key} is corrupt: {e}"))?;
            if LeaseRecord::storage_key(&record.lease_id) != Some(key.as_str()) {
                anyhow::bail!(
                    "stored lease {key} names another lease ({}): the store is damaged",
                    record.lease_id
                );
            }
            // The engine's data is kept per mount: under another mount the engine would
            // not find the account a lease needs for its revocation.
            if !record.lease_id.starts_with(&format!("{mount}/")) {
                anyhow::bail!(
                    "the store holds lease {} of mount {:?}, but the server runs with --mount {mount:?}: start it with the mount its leases were issued under",
                    record.lease_id,
                    record.lease_id.split('/').next().unwrap_or_default()
                );
            }
            index.insert(&key, record);
        }
        let overdue = index
            .due
            .iter()
            .take_while(|(due, _)| *due <= now())
            .count();
        tracing::info!(leases = index.records.len(), overdue, "loaded leases");
        Ok(Arc::new(Leases {
            storage,
            engine_storage,
            engine,
            mount: mount.to_string(),
            system_view,
            index: Mutex::new(index),
            locks: (0..LEASE_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            wake: Notify::new(),
        }))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock of the lease stored under `key`, as OpenBao's `lockForLeaseID`: a renewal
    /// and a revocation of one lease never interleave, and a revocation that finds the
    /// lease already being revoked waits for that one and then sees whether it is gone.
    async fn lock(&self, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let slot = hasher.hash_one(key) as usize % self.locks.len();
        self.locks[slot].lock().await
    }

    /// The stored record of `key`, if the lease still exists.
    fn record(&self, key: &str) -> Option<LeaseRecord> {
        self.index().records.get(key).cloned()
    }

    async fn persist(&self, key: &str, record: &LeaseRecord) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(record).expect("a lease record always serializes");
        self.storage.put(key, bytes).await
    }

    /// Store a lease the engine just created for `path`, before its response is sent.
    /// `issued` is when the request reached the engine, so that the lease ends no later than
    /// the engine's own count: its TTL is capped at the Hub's expiry from the engine's clock,
    /// and a lease counted from the end of the call could outlast the token.
    /// `token_accessor`: the login token the lease was created with, whose end ends it.
    pub async fn create(
        &self,
        path: &str,
        lease: &Lease,
        issued: Timestamp,
        token_accessor: Option<String>,
    ) -> Result<LeaseRecord, StorageError> {
        let mut record = LeaseRecord::issue(
            &self.mount,
            path,
            lease.ttl,
            lease.renewable,
            &lease.internal_data,
            issued,
        );
        record.token_accessor = token_accessor;
        let id = LeaseRecord::storage_key(&record.lease_id)
            .expect("an issued lease id has a key")
            .to_string();
        self.persist(&id, &record).await?;
        self.index().insert(&id, record.clone());
        self.wake.notify_one();
        Ok(record)
    }

    pub fn lookup(&self, lease_id: &str) -> Option<LeaseRecord> {
        self.find(lease_id).map(|(_, record)| record)
    }

    /// The lease's storage key (its last path segment) and record.
    fn find<'a>(&self, lease_id: &'a str) -> Option<(&'a str, LeaseRecord)> {
        let key = LeaseRecord::storage_key(lease_id)?;
        let record = self
            .index()
            .records
            .get(key)
            .filter(|r| r.lease_id == lease_id)
            .cloned()?;
        Some((key, record))
    }

    /// Extend a lease through the engine. Returns the new record and the engine's warnings.
    pub async fn renew(
        &self,
        lease_id: &str,
        increment: u64,
    ) -> Result<(LeaseRecord, Vec<String>), LeaseFailure> {
        let (key, _) = self.find(lease_id).ok_or(LeaseFailure::NotFound)?;
        let _lock = self.lock(key).await;
        let record = self.record(key).ok_or(LeaseFailure::NotFound)?;
        // OpenBao's order: an expired lease is "expired" even if it was not renewable.
        if record.expire_time <= now() || record.revocation.is_some() {
            return Err(LeaseFailure::Expired);
        }
        if !record.renewable {
            return Err(LeaseFailure::NotRenewable);
        }
        // Counted from before the engine's call, as in `create`.
        let renewed_at = now();
        let mut state = lease_state(&record);
        state.increment = increment;
        let request = Request::renew(&record.path, state);
        let response = self
            .engine
            .handle(
                self.engine_storage.clone(),
                self.system_view.clone(),
                &request,
            )
            .await?;
        let Some(lease) = response.lease else {
            return Err(CallError::Engine(EngineError::Internal(
                "the engine renewed no lease".into(),
            ))
            .into());
        };
        let mut warnings = response.warnings;
        warnings.extend(vault_front::capped_increment(
            increment,
            lease.max_ttl,
            record.issue_time.secs(),
            renewed_at.secs(),
        ));
        let renewed = LeaseRecord {
            ttl: lease.ttl,
            expire_time: renewed_at.plus_secs(lease.ttl),
            last_renewal: Some(renewed_at),
            renewable: lease.renewable,
            ..record
        };
        self.persist(key, &renewed).await.map_err(storage_failure)?;
        self.index().insert(key, renewed.clone());
        self.wake.notify_one();
        Ok((renewed, warnings))
    }

    /// Revoke one lease: now (`sync`), or by handing it to the timer. A lease that does not
    /// exist (never did, or was revoked already, e.g. at its expiry) is no error, as in
    /// OpenBao: the caller wants it gone, and it is.
    pub async fn revoke(&self, lease_id: &str, sync: bool) -> Result<(), LeaseFailure> {
        let Some((key, _)) = self.find(lease_id) else {
            return Ok(());
        };
        if sync {
            return self.revoke_now(key).await;
        }
        self.schedule_now(key).await.map_err(storage_failure)
    }

    /// The lease ids one level below the directory `prefix`, as OpenBao's
    /// `sys/leases/lookup/<prefix>` lists them ([`vault_front::list_leases`]).
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let index = self.index();
        vault_front::list_leases(prefix, index.records.values().map(|r| r.lease_id.as_str()))
    }

    /// The keys of the leases that `prefix` names, as OpenBao's `revokePrefixCommon`
    /// ([`vault_front::named_by_prefix`]).
    fn prefix_keys(&self, prefix: &str) -> Vec<String> {
        let index = self.index();
        vault_front::named_by_prefix(prefix, &index.records, |(_, r)| r.lease_id.as_str())
            .into_iter()
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Revoke every lease that `prefix` names (see [`Leases::prefix_keys`]); with `sync`,
    /// the first failure is returned after all were tried (the failed ones stay, scheduled
    /// for retry). Returns how many leases the prefix named.
    pub async fn revoke_prefix(
        self: &Arc<Self>,
        prefix: &str,
        sync: bool,
    ) -> Result<usize, LeaseFailure> {
        let keys = self.prefix_keys(prefix);
        if !sync {
            for key in &keys {
                self.schedule_now(key).await.map_err(storage_failure)?;
            }
            return Ok(keys.len());
        }
        self.revoke_keys(keys).await
    }

    /// Revoke the leases stored under `keys` now, some at once; the first failure is
    /// returned after all were tried (the failed ones stay, scheduled for retry).
    async fn revoke_keys(self: &Arc<Self>, keys: Vec<String>) -> Result<usize, LeaseFailure> {
        let slots = Arc::new(Semaphore::new(REVOKE_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        let count = keys.len();
        for key in keys {
            let (leases, slots) = (self.clone(), slots.clone());
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                leases.revoke_now(&key).await
            });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(e)) = joined {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(count), Err)
    }

    /// Revoke, now, every lease created with the login token `accessor` (OpenBao's
    /// `RevokeByToken`), as [`Leases::revoke_prefix`] with `sync` does: all are tried, the
    /// failed ones stay scheduled for retry, and the first failure is returned. Returns how
    /// many leases the token had.
    pub async fn revoke_token(self: &Arc<Self>, accessor: &str) -> Result<usize, LeaseFailure> {
        let keys: Vec<String> = self
            .index()
            .records
            .iter()
            .filter(|(_, r)| r.token_accessor.as_deref() == Some(accessor))
            .map(|(key, _)| key.clone())
            .collect();
        self.revoke_keys(keys).await
    }

    /// The login tokens that leases were created with, each once.
    pub fn token_accessors(&self) -> BTreeSet<String> {
        let index = self.index();
        let accessors = index.records.values();
        accessors.filter_map(|r| r.token_accessor.clone()).collect()
    }

    /// `sys/leases/revoke-force/<prefix>` (`bao lease revoke -force -prefix`): revoke every
    /// lease below `prefix` now, and forget those whose revocation fails all the same, as
    /// OpenBao's `RevokeForce` ignores the engine's errors. The token of a lease forgotten so
    /// stays recorded in the engine, whose rollback revokes it once the lease would have
    /// ended. Returns how many leases it ended.
    pub async fn revoke_force(self: &Arc<Self>, prefix: &str) -> Result<usize, LeaseFailure> {
        let keys = self.prefix_keys(prefix);
        // Failures are what this forgets; each left its error on its record.
        let _ = self.revoke_prefix(prefix, true).await;
        for key in &keys {
            let _lock = self.lock(key).await;
            let Some(record) = self.record(key) else {
                continue;
            };
            self.storage.delete(key).await.map_err(storage_failure)?;
            self.index().remove(key);
            let error = record.revocation.map(|r| r.last_error).unwrap_or_default();
            tracing::warn!(
                lease_id = %record.lease_id,
                error,
                "revoking a lease failed; forgotten as forced (the engine's rollback revokes its token once the lease would have ended)"
            );
        }
        Ok(keys.len())
    }

    /// Make a lease due now, durably, and wake the timer.
    async fn schedule_now(&self, key: &str) -> Result<(), StorageError> {
        let _lock = self.lock(key).await;
        let Some(mut record) = self.record(key) else {
            return Ok(());
        };
        let current = now();
        record.expire_time = record.expire_time.min(current);
        if let Some(r) = record.revocation.as_mut() {
            r.next_attempt = r.next_attempt.min(current);
        }
        self.persist(key, &record).await?;
        self.index().insert(key, record);
        self.wake.notify_one();
        Ok(())
    }

    /// Revoke now. If a revocation of the same lease is under way, wait for it: when it
    /// succeeded the lease is gone and this one is done; when it failed, try again, so that
    /// success here always means the token is gone at the Hub.
    async fn revoke_now(&self, key: &str) -> Result<(), LeaseFailure> {
        let _lock = self.lock(key).await;
        let Some(record) = self.record(key) else {
            return Ok(());
        };
        self.revoke_locked(key, record).await
    }

    /// Ask the engine to revoke; forget the lease on success, schedule a retry on failure.
    /// The caller holds the lease's lock.
    async fn revoke_locked(&self, key: &str, record: LeaseRecord) -> Result<(), LeaseFailure> {
        let request = Request::revoke(&record.path, lease_state(&record));
        let outcome = self
            .engine
            .handle(
                self.engine_storage.clone(),
                self.system_view.clone(),
                &request,
            )
            .await;
        let (result, retry_after) = match outcome {
            Ok(_) => match self.storage.delete(key).await {
                Ok(()) => {
                    self.index().remove(key);
                    tracing::info!(lease_id = %record.lease_id, "revoked lease");
                    return Ok(());
                }
                Err(e) => (storage_failure(e), None),
            },
            Err(e) => {
                let retry_after = e.retry_after();
                (LeaseFailure::from(e), retry_after)
            }
        };
        self.retry_later(key, record, &result, retry_after).await;
        Err(result)
    }

    /// Record a failed revocation and when to try again, and wake the timer for that time:
    /// whoever revoked (the timer, `lease revoke -sync`, `revoke-prefix`), the retry comes
    /// when it is announced, not at the lease's old due time.
    /// `retry_after`: the upstream's `Retry-After`, in seconds, when it named one.
    async fn retry_later(
        &self,
        key: &str,
        mut record: LeaseRecord,
        error: &LeaseFailure,
        retry_after: Option<u64>,
    ) {
        let attempts = record.revocation.as_ref().map_or(0, |r| r.attempts) + 1;
        let wait = vault_front::revocation_backoff(
            attempts,
            retry_after.map(|wait| wait.min(MAX_UPSTREAM_WAIT.as_secs())),
        );
        record.revocation = Some(RevocationState {
            attempts,
            last_error: error.to_string(),
            next_attempt: now().plus_secs(wait),
        });
        tracing::warn!(
            lease_id = %record.lease_id,
            attempts,
            retry_in_seconds = wait,
            error = %error,
            "revoking a lease failed; will retry"
        );
        if let Err(e) = self.persist(key, &record).await {
            tracing::error!(lease_id = %record.lease_id, error = %e, "could not store the lease's retry state");
        }
        self.index().insert(key, record);
        self.wake.notify_one();
    }

    /// Revoke leases as they fall due, until `stop` turns true; revocations under way then
    /// finish, and every lease not revoked stays stored.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(REVOKE_CONCURRENCY));
        let mut running = tokio::task::JoinSet::new();
        loop {
            let (due_now, next) = {
                let index = self.index();
                let current = now();
                let due_now: Vec<String> = index
                    .due
                    .iter()
                    .take_while(|(due, _)| *due <= current)
                    .map(|(_, key)| key.clone())
                    .filter(|key| !index.revoking.contains(key))
                    .take(REVOKE_CONCURRENCY * 4)
                    .collect();
                let next = index
                    .due
                    .iter()
                    .map(|(due, _)| *due)
                    .find(|due| *due > current);
                (due_now, next)
            };
            for key in due_now {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                if !self.index().revoking.insert(key.clone()) {
                    continue;
                }
                let leases = self.clone();
                running.spawn(async move {
                    // A client may have revoked or renewed it meanwhile: look again under
                    // the lock, and act only if it is still due.
                    {
                        let _lock = leases.lock(&key).await;
                        if let Some(record) = leases.record(&key).filter(|r| r.due() <= now()) {
                            let _ = leases.revoke_locked(&key, record).await;
                        }
                    }
                    leases.index().revoking.remove(&key);
                    drop(slot);
                });
            }
            while running.try_join_next().is_some() {}
            let sleep = match next {
                Some(due) => due.since(now()).max(Duration::from_millis(50)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = stop.changed() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
        tracing::info!(
            leases = self.index().records.len(),
            "lease timers stopped; leases kept"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStorage;
    use crate::engine::FixedLimit;
    use crate::engine::stub::{Answer, StubSandbox};

    const PATH: &str = "token/hoeg/my-organization";

    /// A lease manager over memory, its lease storage, and the stub engine it calls.
    async fn leases() -> (Arc<Leases>, Arc<MemoryStorage>, Arc<StubSandbox>) {
        let stub = StubSandbox::new();
        let storage = Arc::new(MemoryStorage::new());
        let leases = Leases::load(
            storage.clone(),
            Arc::new(MemoryStorage::new()),
            Arc::new(Engine::new(stub.clone())),
            "dockerhub",
            Arc::new(FixedLimit(None)),
        )
        .await
        .unwrap();
        (leases, storage, stub)
    }

    async fn issued(leases: &Leases) -> LeaseRecord {
        let lease = Lease {
            ttl: 300,
            max_ttl: 3600,
            renewable: true,
            internal_data: r#"{"uuid":"u-1"}"#.into(),
        };
        leases.create(PATH, &lease, now(), None).await.unwrap()
    }

    #[tokio::test]
    async fn a_failed_revocation_keeps_the_lease_with_its_error_until_one_succeeds() {
        let (leases, storage, stub) = leases().await;
        let record = issued(&leases).await;
        stub.answer(Answer::TimeLimit);
        let error = leases
            .revoke(&record.lease_id, true)
            .await
            .expect_err("the engine timed out");
        assert_eq!(error.http_status(), 504);
        let kept = leases.lookup(&record.lease_id).expect("the lease stays");
        let revocation = kept.revocation.expect("its failure is recorded");
        assert_eq!(revocation.attempts, 1);
        assert!(
            revocation.last_error.contains("time limit"),
            "{revocation:?}"
        );
        let stored: LeaseRecord =
            serde_json::from_slice(&storage.get(&storage.keys()[0]).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(stored.revocation.map(|r| r.attempts), Some(1), "durably");

        leases.revoke(&record.lease_id, true).await.unwrap();
        assert!(leases.lookup(&record.lease_id).is_none());
        assert!(storage.keys().is_empty());
        let revoke = stub.last_request().unwrap();
        assert_eq!(
            (revoke.operation, revoke.path.as_str()),
            (crate::engine::Operation::Revoke, PATH)
        );
        assert_eq!(revoke.lease.unwrap().internal_data, r#"{"uuid":"u-1"}"#);
    }

    #[tokio::test]
    async fn a_retry_after_past_the_upstream_cap_is_held_for_the_cap() {
        let (leases, _, stub) = leases().await;
        let record = issued(&leases).await;
        stub.answer(Answer::RateLimited { seconds: 3600 });
        let before = now();
        leases.revoke(&record.lease_id, true).await.unwrap_err();
        let next = leases
            .lookup(&record.lease_id)
            .unwrap()
            .revocation
            .unwrap()
            .next_attempt;
        let wait = next.since(before).as_secs();
        assert!(
            (MAX_UPSTREAM_WAIT.as_secs()..=MAX_UPSTREAM_WAIT.as_secs() + 1).contains(&wait),
            "retried {wait} s on"
        );
    }

    #[tokio::test]
    async fn a_renewal_sends_the_increment_and_keeps_the_issue_time() {
        let (leases, _, stub) = leases().await;
        let record = issued(&leases).await;
        stub.answer(Answer::Response(crate::engine::Response {
            data: None,
            lease: Some(Lease {
                ttl: 600,
                max_ttl: 3600,
                renewable: true,
                internal_data: "{}".into(),
            }),
            warnings: vec![],
        }));
        let (renewed, _) = leases.renew(&record.lease_id, 600).await.unwrap();
        assert_eq!(renewed.ttl, 600);
        assert_eq!(renewed.issue_time, record.issue_time);
        let sent = stub.last_request().unwrap().lease.unwrap();
        assert_eq!(sent.increment, 600);
        assert_eq!(sent.issue_time.seconds, record.issue_time.secs());
    }

    #[tokio::test]
    async fn a_renewal_the_engine_answers_without_a_lease_fails_and_keeps_the_lease() {
        let (leases, _, _stub) = leases().await;
        let record = issued(&leases).await;
        let error = leases
            .renew(&record.lease_id, 60)
            .await
            .expect_err("no lease in the answer");
        assert_eq!(error.http_status(), 500);
        assert_eq!(leases.lookup(&record.lease_id), Some(record));
    }

    /// A store written before lease times were kept to the nanosecond is read as it was.
    #[test]
    fn records_of_whole_seconds_are_still_read() {
        let old = r#"{"lease_id":"dockerhub/token/a/b/x","path":"token/a/b","issue_time":100,
            "expire_time":400,"last_renewal":200,"ttl":200,"renewable":true,"internal_data":"{}",
            "revocation":{"attempts":1,"last_error":"e","next_attempt":300}}"#;
        let record: LeaseRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.issue_time, Timestamp::from_secs(100));
        assert_eq!(record.expire_time, Timestamp::from_secs(400));
        assert_eq!(record.last_renewal, Some(Timestamp::from_secs(200)));
        assert_eq!(record.due(), Timestamp::from_secs(300));
        let again: LeaseRecord =
            serde_json::from_slice(&serde_json::to_vec(&record).unwrap()).unwrap();
        assert_eq!(again, record);
    }
}
