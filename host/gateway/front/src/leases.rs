//! The gateway's lease manager: what OpenBao's expiration manager does, over a key-value
//! bucket that several gateway instances share, without timers.
//!
//! Every lease the engine creates is stored before its response leaves the front; if it
//! cannot be, the engine revokes the token at once and the client gets a 500. Renewals and
//! lookups follow `serve`'s lease manager (`host/src/serve/leases.rs`) and OpenBao's texts.
//!
//! A wasm gateway has no timers: leases end when someone is there to end them. After its
//! answer, every request runs [`Leases::after_answer`]: a tidy with a small budget
//! ([`REQUEST_TIDY_BUDGET`]) when the hint says a lease may be due, or, after
//! `PUT sys/leases/tidy` (answered 202 at once, as OpenBao answers it), a tidy with
//! [`TIDY_BUDGET`] whatever the hint says. So a lease ends at
//! its expiry when requests (or a scheduled `PUT sys/leases/tidy`) keep arriving, at most
//! [`MAX_HINT_AHEAD`] seconds late when two instances race on the tidy hint, and otherwise
//! at the next request; Docker Hub's own expiry of the token (which the engine sets to the
//! lease's end) is the backstop.
//!
//! Revocations happen exactly once across instances. The record of lease `<key>` counts its
//! failed attempts; before asking the engine to revoke, an instance claims the attempt with
//! `increment("claim.<key>.<attempts>", 1)` and proceeds only if the counter became 1. The
//! winner marks the record as under way (for [`REVOCATION_UNDER_WAY_FOR`] seconds, after
//! which another instance may try again, with the next attempt's claim: the winner may have
//! died), asks the engine, and deletes the record once the engine said it is done (then its
//! claim counters), or records the error and the next attempt with capped exponential
//! backoff, as `serve` does.

use crate::engine::{Engine, EngineError, LeaseState, Operation, Request, Response};
use crate::store::{Store, StoreError};
use vault_front::{
    EngineAnswer, EngineFailure, EngineRequest, LeaseFailure, LeaseRecord, RevocationState,
    Timestamp,
};

/// The keyvalue bucket that holds the leases, their revocation claims and the tidy hint.
/// Every key follows the keyvalue hosts' rules (`host/gateway/keyvalue-etcd`, and the native
/// host's): no `/`; the claims and the hint are told from leases by a `.`.
pub const BUCKET: &str = "leases";
/// Leases a request may revoke after its answer.
pub const REQUEST_TIDY_BUDGET: usize = 2;
/// Leases `PUT sys/leases/tidy` may revoke in one call; an operator who schedules it every
/// minute ends up to this many leases a minute beside the requests' own share.
pub const TIDY_BUDGET: usize = 25;
/// The longest a request's tidy trusts the hint: however late the hint says the next lease
/// is due, requests look at every lease at least this often, in seconds.
pub const MAX_HINT_AHEAD: u64 = 60;
/// How long, in seconds, a claimed revocation may take before another instance tries again
/// (the engine's own retries take seconds; a Hub call times out after 30). Instances judge
/// it by their own clocks, which must agree to well within it.
pub const REVOCATION_UNDER_WAY_FOR: u64 = 300;
/// The longest `Retry-After` from Docker Hub a failed revocation waits for, in seconds, as
/// `serve` caps it: a longer one would hold revocations past their leases.
const MAX_RETRY_AFTER: u64 = 60;
/// The `last_error` of a lease whose revocation an instance has claimed and not finished.
pub(crate) const UNDER_WAY: &str = "revocation under way";
/// The key of the tidy hint: the earliest moment, in Unix seconds, a lease may be due.
const HINT_KEY: &str = "tidy.next-due";
/// How long a synchronous revocation waits for another instance's attempt at the same lease,
/// and how often it looks.
const CLAIMED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
const CLAIMED_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// How often, in seconds, one instance of all runs the engine's rollback, as OpenBao's
/// rollback manager runs a mount's every minute.
pub const ROLLBACK_INTERVAL: u64 = 60;
/// The key that says when the next rollback is due (Unix seconds); the first instance to
/// increment `rollback.claim.<that time>` runs it.
const ROLLBACK_KEY: &str = "rollback.next-due";

/// What one tidy call did. `due = revoked + failed + left`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TidyReport {
    /// Leases that were due (expired, or their retry time reached).
    pub due: usize,
    /// Revoked by this call: the engine said done and the record is gone.
    pub revoked: usize,
    /// The engine failed; each failure is recorded for a retry after its backoff.
    pub failed: usize,
    /// Still due as far as this call knows: beyond its budget, in another instance's hands,
    /// or gone meanwhile.
    pub left: usize,
}

/// What one revocation attempt came to.
#[derive(Debug)]
enum Revocation {
    /// The engine revoked it and its record is gone.
    Done,
    /// The lease is gone already (another instance finished it, or it never existed).
    Gone,
    /// Another instance has claimed this attempt.
    Claimed,
    /// Not due (renewed, or waiting for a retry): a tidy leaves it.
    NotDue,
    /// The engine failed; the record holds the error and when to try again.
    Failed(EngineError),
}

/// The leases of one mount, over a shared bucket and the engine.
pub struct Leases<S, E> {
    store: S,
    engine: E,
    mount: String,
    /// Set by `PUT sys/leases/tidy`: [`Leases::after_answer`] tidies with [`TIDY_BUDGET`].
    tidy_requested: std::cell::Cell<bool>,
    /// How long a synchronous revocation waits for another's attempt: [`CLAIMED_WAIT`].
    pub(crate) claimed_wait: std::time::Duration,
}

impl<S: Store, E: Engine> Leases<S, E> {
    /// A manager of the leases of `mount` (the engine's mount, the first segments of every
    /// lease id), stored in `store` (the [`BUCKET`] bucket).
    pub fn new(store: S, engine: E, mount: &str) -> Leases<S, E> {
        Leases {
            store,
            engine,
            mount: mount.to_string(),
            tidy_requested: std::cell::Cell::new(false),
            claimed_wait: CLAIMED_WAIT,
        }
    }

    fn read(&self, key: &str) -> Result<Option<LeaseRecord>, StoreError> {
        let Some(bytes) = self.store.get(key)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError(format!("stored lease {key} is corrupt: {e}")))
    }

    fn write(&self, key: &str, record: &LeaseRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).expect("a lease record always serializes");
        self.store.set(key, &bytes)
    }

    /// The lease's storage key and record, if it exists.
    fn find<'a>(&self, lease_id: &'a str) -> Result<Option<(&'a str, LeaseRecord)>, StoreError> {
        let Some(key) = LeaseRecord::storage_key(lease_id) else {
            return Ok(None);
        };
        Ok(self
            .read(key)?
            .filter(|r| r.lease_id == lease_id)
            .map(|r| (key, r)))
    }

    /// Every stored lease with its key. Keys with a `.` are the claims and the hint: a
    /// lease's key is its id's last segment, 24 letters and digits.
    fn records(&self) -> Result<Vec<(String, LeaseRecord)>, StoreError> {
        let mut records = Vec::new();
        for key in self.store.keys()? {
            if key.contains('.') {
                continue;
            }
            // Deleted since the listing: revoked meanwhile. One record that cannot be read
            // (a damaged value, one sealed with another key) must not stop every other
            // lease from ending: it is named in the log, and left.
            match self.read(&key) {
                Ok(Some(record)) => records.push((key, record)),
                Ok(None) => {}
                Err(e) => eprintln!("ERROR skipping lease {key}: {e}"),
            }
        }
        Ok(records)
    }

    /// Run `request` in the engine and store the lease of what it created before answering.
    /// `issued` is taken before the call, so that the lease ends no later than the engine's
    /// own count (as `serve`'s). If the lease cannot be stored, the engine revokes what it
    /// created at once and the answer is a 500: a token nobody could revoke must not live.
    pub fn issue(&self, request: EngineRequest) -> Result<EngineAnswer, EngineFailure> {
        let issued = Timestamp::now();
        let request = Request::from(request);
        let response = self.engine.handle(&request)?;
        let Some(lease) = &response.lease else {
            return Ok(answer(response, None));
        };
        let record = LeaseRecord::issue(
            &self.mount,
            &request.path,
            lease.ttl,
            lease.renewable,
            &lease.internal_data,
            issued,
        );
        let key = LeaseRecord::storage_key(&record.lease_id).expect("an issued id has a key");
        if let Err(e) = self.write(key, &record) {
            eprintln!("storing a new lease failed; revoking its secret: {e}");
            let undo = revocation(&record);
            if let Err(undo_error) = self.engine.handle(&undo) {
                eprintln!(
                    "revoking the secret of a lease that could not be stored failed (Docker Hub's expiry ends it): {undo_error}"
                );
            }
            return Err(EngineFailure::Plain {
                status: 500,
                message: format!("storing the lease failed: {e}"),
            });
        }
        self.lower_hint(record.expire_time);
        Ok(answer(response, Some(record)))
    }

    /// The lease with this id, if it exists.
    pub fn lookup(&self, lease_id: &str) -> Result<Option<LeaseRecord>, StoreError> {
        Ok(self.find(lease_id)?.map(|(_, record)| record))
    }

    /// The lease ids one level below the directory `prefix`, as OpenBao's
    /// `sys/leases/lookup/<prefix>` lists them (see [`vault_front::list_leases`]).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let records = self.records()?;
        Ok(vault_front::list_leases(
            prefix,
            records.iter().map(|(_, r)| r.lease_id.as_str()),
        ))
    }

    /// Extend a lease through the engine by `increment` seconds (0: the engine's default).
    /// Returns the renewed record and the warnings to show: the engine's, then OpenBao's own
    /// when the increment reaches past the lease's max TTL.
    pub fn renew(
        &self,
        lease_id: &str,
        increment: u64,
    ) -> Result<(LeaseRecord, Vec<String>), LeaseFailure> {
        let (key, record) = self
            .find(lease_id)
            .map_err(storage)?
            .ok_or(LeaseFailure::NotFound)?;
        let renewed_at = Timestamp::now();
        // OpenBao's order: an expired lease is "expired" even if it was not renewable.
        if record.expire_time <= renewed_at || record.revocation.is_some() {
            return Err(LeaseFailure::Expired);
        }
        if !record.renewable {
            return Err(LeaseFailure::NotRenewable);
        }
        let mut request = revocation(&record);
        request.operation = Operation::Renew;
        if let Some(state) = request.lease.as_mut() {
            state.increment = increment;
        }
        let response = self.engine.handle(&request).map_err(engine_failure)?;
        let Some(lease) = response.lease else {
            return Err(LeaseFailure::Engine {
                status: 500,
                message: "the engine renewed no lease".into(),
            });
        };
        let mut warnings = response.warnings;
        warnings.extend(vault_front::capped_increment(
            increment,
            lease.max_ttl,
            record.issue_time.secs(),
            renewed_at.secs(),
        ));
        // Another instance may have revoked the lease, or started to, during the engine's
        // call: its record must not come back, nor lose the claim's mark.
        match self.read(key).map_err(storage)? {
            None => return Err(LeaseFailure::NotFound),
            Some(current) if current.revocation.is_some() => return Err(LeaseFailure::Expired),
            Some(_) => {}
        }
        let renewed = LeaseRecord {
            ttl: lease.ttl,
            expire_time: renewed_at.plus_secs(lease.ttl),
            last_renewal: Some(renewed_at),
            renewable: lease.renewable,
            ..record
        };
        self.write(key, &renewed).map_err(storage)?;
        // A renewal may end the lease sooner than the hint says the next lease is due.
        self.lower_hint(renewed.expire_time);
        Ok((renewed, warnings))
    }

    /// End one lease now, whether or not the caller waits for it (`sync`): there are no
    /// timers to hand it to. As in OpenBao, a lease that does not exist is no error. With
    /// `sync`, success means the engine revoked it; a failure is returned, and recorded for
    /// a retry. Without, a failure is only recorded (the client was told "queued").
    pub fn revoke(&self, lease_id: &str, sync: bool) -> Result<(), LeaseFailure> {
        let Some((key, _)) = self.find(lease_id).map_err(storage)? else {
            return Ok(());
        };
        self.end(key, lease_id, sync)
    }

    /// [`Leases::revoke`] of the lease stored under `key`. A synchronous revocation that
    /// finds another instance (or another request's tidy) at the same lease waits for it, up
    /// to [`CLAIMED_WAIT`], and then tries itself if that attempt failed: as in `serve`, the
    /// caller learns how the lease ended, not that someone else was busy.
    fn end(&self, key: &str, lease_id: &str, sync: bool) -> Result<(), LeaseFailure> {
        let waiting_since = std::time::Instant::now();
        loop {
            match self
                .revoke_key(key, Timestamp::now(), true)
                .map_err(storage)?
            {
                Revocation::Done | Revocation::Gone | Revocation::NotDue => return Ok(()),
                _ if !sync => return Ok(()),
                Revocation::Failed(e) => return Err(engine_failure(e)),
                Revocation::Claimed => {
                    if self.find(lease_id).map_err(storage)?.is_none() {
                        return Ok(());
                    }
                    if waiting_since.elapsed() >= self.claimed_wait {
                        return Err(LeaseFailure::Engine {
                            status: 409,
                            message: format!(
                                "another gateway instance has been revoking this lease for \
                                 {}s; look it up to see when it is gone (if that instance \
                                 stopped, the revocation is tried again {}s after it began)",
                                self.claimed_wait.as_secs(),
                                REVOCATION_UNDER_WAY_FOR
                            ),
                        });
                    }
                    std::thread::sleep(CLAIMED_POLL);
                }
            }
        }
    }

    /// Revoke every lease that `prefix` names (see [`vault_front::named_by_prefix`]); with
    /// `sync`, the first failure is returned after all were tried (the failed ones stay,
    /// with their retry recorded). Returns how many leases the prefix named.
    pub fn revoke_prefix(&self, prefix: &str, sync: bool) -> Result<usize, LeaseFailure> {
        let named = self.named(prefix).map_err(storage)?;
        let mut first_error = None;
        for (key, lease_id) in &named {
            if let Err(e) = self.end(key, lease_id, sync) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(named.len()), Err)
    }

    /// `sys/leases/revoke-force/<prefix>`: revoke every lease `prefix` names now, and forget
    /// those whose revocation fails all the same, as OpenBao's `RevokeForce` ignores the
    /// engine's errors. The token of a lease forgotten so stays recorded in the engine,
    /// whose rollback revokes it once the lease would have ended. Returns how many leases
    /// it ended.
    pub fn revoke_force(&self, prefix: &str) -> Result<usize, LeaseFailure> {
        let named = self.named(prefix).map_err(storage)?;
        // Failures are what this forgets; each left its error on its record.
        let _ = self.revoke_prefix(prefix, true);
        for (key, _) in &named {
            let Some(record) = self.read(key).map_err(storage)? else {
                continue;
            };
            self.store.delete(key).map_err(storage)?;
            let attempts = attempts(&record);
            self.forget_claims(key, attempts);
            eprintln!(
                "revoking lease {} failed ({}); forgotten as forced (the engine's rollback revokes its token once the lease would have ended)",
                record.lease_id,
                record.revocation.map(|r| r.last_error).unwrap_or_default()
            );
        }
        Ok(named.len())
    }

    /// The keys and ids of the leases `prefix` names.
    fn named(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            vault_front::named_by_prefix(prefix, self.records()?, |(_, r)| r.lease_id.as_str())
                .into_iter()
                .map(|(key, record)| (key, record.lease_id))
                .collect(),
        )
    }

    /// Revoke the leases due at `now` (expired, or their retry time reached), oldest first,
    /// at most `budget` of them. Records the next moment a lease falls due as the hint
    /// [`Leases::tidy_if_due`] reads.
    pub fn tidy(&self, now: Timestamp, budget: usize) -> Result<TidyReport, StoreError> {
        let records = self.records()?;
        let mut due: Vec<(Timestamp, &str)> = records
            .iter()
            .filter(|(_, r)| r.due() <= now)
            .map(|(key, r)| (r.due(), key.as_str()))
            .collect();
        due.sort();
        let mut report = TidyReport {
            due: due.len(),
            ..TidyReport::default()
        };
        let mut earliest_retry: Option<Timestamp> = None;
        for (_, key) in due.iter().take(budget) {
            match self.revoke_key(key, now, false)? {
                Revocation::Done => report.revoked += 1,
                Revocation::Failed(_) => {
                    report.failed += 1;
                    if let Some(record) = self.read(key)? {
                        let retry = record.due();
                        earliest_retry = Some(earliest_retry.map_or(retry, |e| e.min(retry)));
                    }
                }
                Revocation::Gone | Revocation::Claimed | Revocation::NotDue => {}
            }
        }
        report.left = report.due - report.revoked - report.failed;
        let horizon = now.plus_secs(MAX_HINT_AHEAD);
        let next = if report.left > 0 {
            now
        } else {
            records
                .iter()
                .map(|(_, r)| r.due())
                .filter(|due| *due > now)
                .chain(earliest_retry)
                .chain([horizon])
                .min()
                .unwrap_or(horizon)
        };
        self.store
            .set(HINT_KEY, next.secs().to_string().as_bytes())?;
        Ok(report)
    }

    /// [`Leases::tidy`], unless the hint says no lease is due yet (one read instead of
    /// reading every lease): what each request runs after its answer. `None` when skipped.
    pub fn tidy_if_due(
        &self,
        now: Timestamp,
        budget: usize,
    ) -> Result<Option<TidyReport>, StoreError> {
        if self.hint()?.is_some_and(|next| next > now.secs()) {
            return Ok(None);
        }
        self.tidy(now, budget).map(Some)
    }

    /// What a request does once its answer is sent: the tidy `PUT sys/leases/tidy` asked
    /// for, with [`TIDY_BUDGET`], or else [`Leases::tidy_if_due`] with
    /// [`REQUEST_TIDY_BUDGET`]. `None` when the hint said nothing is due.
    pub fn after_answer(&self, now: Timestamp) -> Result<Option<TidyReport>, StoreError> {
        self.rollback_if_due(now)?;
        if !self.tidy_requested.replace(false) {
            return self.tidy_if_due(now, REQUEST_TIDY_BUDGET);
        }
        let report = self.tidy(now, TIDY_BUDGET)?;
        eprintln!(
            "tidied leases: {} due, {} revoked, {} failed, {} left",
            report.due, report.revoked, report.failed, report.left
        );
        Ok(Some(report))
    }

    /// The engine's rollback, when it is due and this instance is the first to claim it:
    /// every [`ROLLBACK_INTERVAL`] seconds across all instances, as long as requests (or a
    /// scheduled `PUT sys/leases/tidy`) arrive. It deletes the tokens of creations whose
    /// answer was lost (a store that failed after the Hub created the token) and of leases
    /// that `revoke-force` forgot, once their time has come (`guest/src/rollback.rs`).
    /// Returns whether this call ran it.
    pub fn rollback_if_due(&self, now: Timestamp) -> Result<bool, StoreError> {
        let due = self
            .store
            .get(ROLLBACK_KEY)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(0);
        if due > now.secs() {
            return Ok(false);
        }
        if self.store.increment(&format!("rollback.claim.{due}"), 1)? != 1 {
            return Ok(false);
        }
        let next = now.secs() + ROLLBACK_INTERVAL;
        self.store.set(ROLLBACK_KEY, next.to_string().as_bytes())?;
        let _ = self.store.delete(&format!("rollback.claim.{due}"));
        let rollback = Request {
            operation: Operation::Rollback,
            path: String::new(),
            data: "{}".into(),
            display_name: None,
            lease: None,
        };
        if let Err(e) = self.engine.handle(&rollback) {
            eprintln!("rollback left work for its next run: {e}");
        }
        Ok(true)
    }

    fn hint(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .store
            .get(HINT_KEY)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse().ok()))
    }

    /// Bring the hint forward to `due` if it is later. Not atomic: two instances may race
    /// and leave the later of their values, which [`MAX_HINT_AHEAD`] bounds.
    fn lower_hint(&self, due: Timestamp) {
        let lower = match self.hint() {
            Ok(Some(next)) => due.secs() < next,
            Ok(None) => false,
            Err(_) => true,
        };
        if lower && let Err(e) = self.store.set(HINT_KEY, due.secs().to_string().as_bytes()) {
            eprintln!("recording when the next lease is due failed: {e}");
        }
    }

    /// One revocation attempt of the lease under `key`, claimed so that of all the
    /// instances that try the same attempt, one asks the engine. A tidy (`explicit` false)
    /// leaves a lease that is not due at `now`; a client's revocation does not wait for a
    /// failed attempt's backoff. Neither touches a lease whose claimed revocation is under
    /// way.
    fn revoke_key(
        &self,
        key: &str,
        now: Timestamp,
        explicit: bool,
    ) -> Result<Revocation, StoreError> {
        let Some(record) = self.read(key)? else {
            return Ok(Revocation::Gone);
        };
        if under_way(&record, now) {
            return Ok(Revocation::Claimed);
        }
        if !explicit && record.due() > now {
            return Ok(Revocation::NotDue);
        }
        let attempt = attempts(&record);
        if self.store.increment(&claim_key(key, attempt), 1)? != 1 {
            return Ok(Revocation::Claimed);
        }
        // The previous claim's holder may have finished between the read and the claim.
        let record = match self.read(key)? {
            None => return Ok(Revocation::Gone),
            Some(record) if attempts(&record) != attempt => return Ok(Revocation::Claimed),
            Some(record) => record,
        };
        let marked = LeaseRecord {
            revocation: Some(RevocationState {
                attempts: attempt + 1,
                last_error: UNDER_WAY.into(),
                next_attempt: now.plus_secs(REVOCATION_UNDER_WAY_FOR),
            }),
            ..record.clone()
        };
        // Without the mark, an instance that dies now leaves the lease to `revoke-force`;
        // with or without it, the engine is asked: a token is better gone than stuck.
        if let Err(e) = self.write(key, &marked) {
            eprintln!(
                "marking lease {} as being revoked failed: {e}",
                record.lease_id
            );
        }
        match self.engine.handle(&revocation(&record)) {
            Ok(_) => {
                self.store.delete(key)?;
                self.forget_claims(key, attempt + 1);
                eprintln!("revoked lease {}", record.lease_id);
                Ok(Revocation::Done)
            }
            Err(e) => {
                let wait = vault_front::revocation_backoff(
                    attempt + 1,
                    e.retry_after().map(|s| s.min(MAX_RETRY_AFTER)),
                );
                let failed = LeaseRecord {
                    revocation: Some(RevocationState {
                        attempts: attempt + 1,
                        last_error: e.to_string(),
                        next_attempt: now.plus_secs(wait),
                    }),
                    ..record
                };
                eprintln!(
                    "revoking lease {} failed (attempt {}); will retry in {wait}s: {e}",
                    failed.lease_id,
                    attempt + 1
                );
                // A forced revocation may have forgotten the lease meanwhile: keep it gone.
                if self.read(key)?.is_some() {
                    self.write(key, &failed)?;
                    self.lower_hint(now.plus_secs(wait));
                }
                Ok(Revocation::Failed(e))
            }
        }
    }

    /// Delete the claim counters of a lease that is gone, attempts `0..=last`. What a
    /// deletion misses stays as a counter nobody reads again.
    fn forget_claims(&self, key: &str, last: u32) {
        for attempt in 0..=last {
            let _ = self.store.delete(&claim_key(key, attempt));
        }
    }
}

/// The counter whose first increment wins revocation attempt `attempt` (0 for the first)
/// of the lease under `key`.
fn claim_key(key: &str, attempt: u32) -> String {
    format!("claim.{key}.{attempt}")
}

/// The revocation attempts a lease's record counts (failed ones, and the one under way).
fn attempts(record: &LeaseRecord) -> u32 {
    record.revocation.as_ref().map_or(0, |r| r.attempts)
}

/// Whether an instance claimed the lease's revocation and may still be at it.
fn under_way(record: &LeaseRecord, now: Timestamp) -> bool {
    record
        .revocation
        .as_ref()
        .is_some_and(|r| r.last_error == UNDER_WAY && r.next_attempt > now)
}

/// The engine's revocation of a lease (a renewal sets its operation and increment).
fn revocation(record: &LeaseRecord) -> Request {
    Request {
        operation: Operation::Revoke,
        path: record.path.clone(),
        data: "{}".into(),
        display_name: None,
        lease: Some(LeaseState {
            internal_data: record.internal_data.clone(),
            issue_time: record.issue_time,
            ttl: record.ttl,
            increment: 0,
        }),
    }
}

fn answer(response: Response, lease: Option<LeaseRecord>) -> EngineAnswer {
    EngineAnswer {
        data: response.data,
        warnings: response.warnings,
        lease,
    }
}

fn storage(e: StoreError) -> LeaseFailure {
    LeaseFailure::Storage(e.0)
}

fn engine_failure(e: EngineError) -> LeaseFailure {
    LeaseFailure::Engine {
        status: e.http_status(),
        message: e.to_string(),
    }
}

/// The front's view of the gateway: the engine, and the leases in the shared bucket. Every
/// call completes before it returns, so [`vault_front::block_on`] runs them.
impl<S: Store, E: Engine> vault_front::Host for Leases<S, E> {
    async fn existence_check(
        &self,
        request: &EngineRequest,
    ) -> Result<Option<bool>, EngineFailure> {
        Ok(self
            .engine
            .existence_check(&Request::from(request.clone()))?)
    }

    async fn call(&self, request: EngineRequest) -> Result<EngineAnswer, EngineFailure> {
        self.issue(request)
    }

    async fn lease(&self, lease_id: &str) -> Result<Option<LeaseRecord>, LeaseFailure> {
        self.lookup(lease_id).map_err(storage)
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<String>, LeaseFailure> {
        self.list(prefix).map_err(storage)
    }

    async fn renew(
        &self,
        lease_id: &str,
        increment: u64,
    ) -> Result<(LeaseRecord, Vec<String>), LeaseFailure> {
        Leases::renew(self, lease_id, increment)
    }

    async fn revoke(&self, lease_id: &str, sync: bool) -> Result<(), LeaseFailure> {
        Leases::revoke(self, lease_id, sync)
    }

    async fn revoke_prefix(&self, prefix: &str, sync: bool) -> Result<(), LeaseFailure> {
        Leases::revoke_prefix(self, prefix, sync).map(|_| ())
    }

    async fn revoke_force(&self, prefix: &str) -> Result<(), LeaseFailure> {
        Leases::revoke_force(self, prefix).map(|_| ())
    }

    /// Started, as OpenBao starts it: the tidy runs once the answer is sent
    /// ([`Leases::after_answer`]).
    async fn tidy(&self) -> Result<(), LeaseFailure> {
        self.tidy_requested.set(true);
        Ok(())
    }

    /// One read of the store (the tidy hint's key): it fails when the store is unreachable,
    /// misconfigured, or sealed with another key.
    async fn ready(&self) -> Result<(), String> {
        self.hint()
            .map(|_| ())
            .map_err(|e| format!("the lease store cannot be read: {e}"))
    }
}
