//! Write-ahead records for token creation, and the `rollback` operation that acts on them.
//!
//! Before the Hub is asked to create a token, a [`PendingCreation`] is stored with the
//! token label it will carry; it is removed once the token is recorded. A record that stays
//! behind means the creation was interrupted (crash, time limit, dropped connection), and the
//! token may exist at the Hub with no lease: rollback finds it by its label and deletes it.
//!
//! Rollback also tidies: a token whose lease ended more than [`TIDY_GRACE`] ago without a
//! revoke reaching the engine (the host lost or gave up on the lease) is revoked here.

use crate::api::{EngineError, Field, FieldKind, Request, Response};
use crate::capabilities::{Bucket, Host, Level};
use crate::fields::FieldData;
use crate::names::token_label;
use crate::path_config::AccountConfig;
use crate::secret_token::{Patience, TokenRecord, destroy};
use crate::storage;
use serde::{Deserialize, Serialize};

/// A write-ahead record younger than this may belong to a request still in flight, as in
/// Vault's framework (`WALRollbackMinAge`).
pub const WAL_MIN_AGE: u64 = 10 * 60;
/// How long after its lease ended a token is left for the host's own revoke.
pub const TIDY_GRACE: u64 = 60;
/// Bound on Hub work per rollback run; the rest waits for the next run.
const MAX_TIDY_PER_RUN: usize = 50;

static FIELDS: &[Field] = &[Field {
    name: "immediate",
    kind: FieldKind::Boolean,
    description: "Clean write-ahead records of any age (hosts set it at unmount).",
    default: Some("false"),
    required: false,
    sensitive: false,
}];

#[derive(Debug, Serialize, Deserialize)]
struct WalEntry {
    account: String,
    token_label: String,
    created_at: u64,
}

/// A token creation in progress, recorded before the Hub is called.
pub struct PendingCreation {
    id: String,
    /// The label the token will carry at the Hub; it contains `id`.
    pub token_label: String,
}

impl PendingCreation {
    pub fn begin(host: &dyn Host, account: &str, label: &str) -> Result<Self, EngineError> {
        let id = format!("{:016x}", host.random_u64());
        let token_label = token_label(label, &id);
        let entry = WalEntry {
            account: account.to_string(),
            token_label: token_label.clone(),
            created_at: host.now(),
        };
        storage::save(host, Bucket::Wal, &id, &entry)?;
        Ok(PendingCreation { id, token_label })
    }

    /// The token is recorded. If removing the write-ahead record fails, rollback will see
    /// the token's record and only drop the write-ahead record.
    pub fn finish(&self, host: &dyn Host) {
        self.remove(host);
    }

    /// Nothing was created at the Hub (or it was deleted again).
    pub fn abandon(&self, host: &dyn Host) {
        self.remove(host);
    }

    fn remove(&self, host: &dyn Host) {
        if let Err(e) = storage::remove(host, Bucket::Wal, &self.id) {
            host.log(Level::Warn, "wal", &e.to_string());
        }
    }
}

pub fn run(host: &dyn Host, request: &Request) -> Result<Response, EngineError> {
    let data = FieldData::parse(&request.data, FIELDS)?;
    let immediate = data.boolean("immediate")?.unwrap_or(false);
    let now = host.now();
    let mut failures = Vec::new();

    for id in storage::keys(host, Bucket::Wal)? {
        let Some(entry) = storage::load::<WalEntry>(host, Bucket::Wal, &id)? else {
            continue;
        };
        if !immediate && entry.created_at + WAL_MIN_AGE > now {
            continue;
        }
        if let Err(e) = undo_creation(host, &id, &entry) {
            failures.push(format!("cleaning up {}: {e}", entry.token_label));
        }
    }

    let overdue = TokenRecord::all(host)?
        .into_iter()
        .filter(|(_, r)| r.lease_expires_at + TIDY_GRACE <= now)
        .take(MAX_TIDY_PER_RUN);
    for (uuid, record) in overdue {
        host.log(
            Level::Warn,
            "rollback",
            &format!("the lease of token {uuid} ended without a revoke; revoking it now"),
        );
        if let Err(e) = destroy(host, &uuid, &record, Patience::WaitOutRateLimits) {
            failures.push(format!("revoking token {uuid}: {e}"));
        }
    }

    if failures.is_empty() {
        Ok(Response::default())
    } else {
        for failure in &failures {
            host.log(Level::Warn, "rollback", failure);
        }
        Err(EngineError::Internal(format!(
            "rollback left {} item(s) for the next run; first: {}",
            failures.len(),
            failures[0]
        )))
    }
}

/// Delete at the Hub any token carrying the interrupted creation's label that the engine
/// did not record, then drop the write-ahead record.
fn undo_creation(host: &dyn Host, id: &str, entry: &WalEntry) -> Result<(), EngineError> {
    match AccountConfig::load(host, &entry.account)? {
        Some(config) => {
            let hub = config.hub(host, &entry.account);
            for uuid in hub.tokens_labelled(&entry.token_label)? {
                if TokenRecord::load(host, &uuid)?.is_some() {
                    continue;
                }
                hub.delete_token(&uuid)?;
                host.log(
                    Level::Info,
                    "rollback",
                    &format!(
                        "deleted token {uuid} ({}) whose creation was interrupted",
                        entry.token_label
                    ),
                );
            }
        }
        None => host.log(
            Level::Warn,
            "rollback",
            &format!(
                "cannot look for {} at Docker Hub: account {} has no config any more; its \
                 Hub expiry will end it",
                entry.token_label, entry.account
            ),
        ),
    }
    storage::remove(host, Bucket::Wal, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Operation;
    use crate::testing::TestHost;
    use fakehub::{Fault, FaultKind};
    use serde_json::{Value, json};

    fn rollback(host: &TestHost, data: Value) -> Result<Response, EngineError> {
        host.call(Operation::Rollback, "", data)
    }

    fn interrupted_creation(host: &TestHost) {
        let live_before = host.hub.live_tokens().len();
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        assert!(
            host.call(Operation::Update, "token/hoeg/hoeg", json!({}))
                .is_err()
        );
        assert_eq!(
            host.hub.live_tokens().len(),
            live_before + 1,
            "the Hub created it"
        );
    }

    #[test]
    fn rollback_deletes_a_token_whose_creation_was_interrupted() {
        let host = TestHost::configured();
        let kept = host.issue(json!({})).data.unwrap()["uuid"].clone();
        interrupted_creation(&host);
        rollback(&host, json!({"immediate": true})).unwrap();
        let live: Vec<String> = host.hub.live_tokens().into_iter().map(|t| t.uuid).collect();
        assert_eq!(
            live,
            [kept.as_str().unwrap()],
            "only the recorded token is left"
        );
        assert!(host.keys(Bucket::Wal).is_empty());
        assert!(
            host.logs
                .borrow()
                .iter()
                .any(|l| l.contains("whose creation was interrupted"))
        );
    }

    #[test]
    fn young_write_ahead_records_wait_for_requests_in_flight() {
        let host = TestHost::configured();
        interrupted_creation(&host);
        rollback(&host, json!({})).unwrap();
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
        assert_eq!(host.hub.live_tokens().len(), 1);
        host.advance(WAL_MIN_AGE);
        rollback(&host, json!({})).unwrap();
        assert!(host.keys(Bucket::Wal).is_empty());
        assert!(host.hub.live_tokens().is_empty());
    }

    #[test]
    fn a_failing_hub_keeps_the_record_for_the_next_run() {
        let host = TestHost::configured();
        interrupted_creation(&host);
        host.hub.inject(Fault::on(
            "GET",
            "/v2/access-tokens",
            FaultKind::Status(500),
        ));
        assert!(matches!(
            rollback(&host, json!({"immediate": true})),
            Err(EngineError::Internal(m)) if m.contains("next run")
        ));
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
        rollback(&host, json!({"immediate": true})).unwrap();
        assert!(host.hub.live_tokens().is_empty());
    }

    #[test]
    fn tidy_revokes_tokens_whose_lease_ended_without_a_revoke() {
        let host = TestHost::configured();
        host.issue(json!({"ttl": "2m"}));
        let long = host.issue(json!({"ttl": "30m"})).data.unwrap()["uuid"].clone();
        rollback(&host, json!({})).unwrap();
        assert_eq!(
            host.hub.live_tokens().len(),
            2,
            "leases still running are left alone"
        );
        host.advance(120 + TIDY_GRACE);
        rollback(&host, json!({})).unwrap();
        let live: Vec<String> = host.hub.live_tokens().into_iter().map(|t| t.uuid).collect();
        assert_eq!(live, [long.as_str().unwrap()]);
        assert_eq!(host.keys(Bucket::Token), [long.as_str().unwrap()]);
    }
}
