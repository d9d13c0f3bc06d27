//! Write-ahead records for token creation, and the `rollback` operation that acts on them.
//!
//! Before the Hub is asked to create a token, a [`PendingCreation`] is stored with the
//! token label it will carry; it is removed once the token is recorded. When the Hub's answer
//! is lost, the issuing call itself looks the token up by its label and deletes it
//! ([`PendingCreation::settle`]). A record that stays behind means that this failed too or
//! the process died (crash, time limit), and the token may exist at the Hub with no lease:
//! rollback finds it by its label and deletes it, with one token listing per account however
//! many creations are pending.
//!
//! Rollback also tidies: a token whose lease ended more than [`TIDY_GRACE`] ago without a
//! revoke reaching the engine (the host lost or gave up on the lease) is revoked here.

use crate::api::{EngineError, Field, FieldKind, Request, Response};
use crate::capabilities::{Bucket, Host, Level};
use crate::fields::FieldData;
use crate::hub::{Hub, ListedToken, ListingFailed};
use crate::names::token_label;
use crate::path_config::AccountConfig;
use crate::secret_token::{Holder, Patience, TokenRecord, destroy};
use crate::storage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A write-ahead record younger than this may belong to a request still in flight, as in
/// Vault's framework (`WALRollbackMinAge`), unless the call that wrote it marked it given up.
pub const WAL_MIN_AGE: u64 = 10 * 60;
/// How long after a creation was sent the Hub may still carry it out although its answer
/// never came (a request the Hub is slow to finish, after the engine stopped waiting):
/// rollback looks for the token until the record is this old, then drops it.
pub const LANDING_WINDOW: u64 = 10 * 60;
/// How long after its lease ended a token is left for the host's own revoke.
pub const TIDY_GRACE: u64 = 60;
/// Bound on Hub work per rollback run; the rest waits for the next run.
const MAX_TIDY_PER_RUN: usize = 50;

static FIELDS: &[Field] = &[
    Field {
        name: "leases_ended",
        kind: FieldKind::Boolean,
        description: "Every lease of the mount has ended: OpenBao revokes all of a mount's \
                      leases before it calls the plugin's Cleanup at unmount. Every token the \
                      engine still tracks then has no lease (its revoke failed and the lease \
                      was forced out, or never reached the engine) and is revoked in this run, \
                      not a minute after its lease would have ended.",
        default: Some("false"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "immediate",
        kind: FieldKind::Boolean,
        description: "Clean write-ahead records of any age, skipping the minimum age that protects \
                  creations still in flight. Hosts set it when no creation can be in flight: \
                  at the start of a fresh process, and when the mount is being removed. The \
                  answer's awaiting_creations counts creations whose token Docker Hub does not \
                  list yet but may still make (awaiting_token_labels names their tokens); their \
                  records stay, and every later run looks again.",
        default: Some("false"),
        required: false,
        sensitive: false,
    },
];

#[derive(Debug, Serialize, Deserialize)]
struct WalEntry {
    account: String,
    /// For an organization access token: its organization, whose token list rollback
    /// searches; `None` for a personal access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organization: Option<String>,
    /// For an organization access token: the role it is created for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    token_label: String,
    created_at: u64,
    /// When the call that wrote the record stopped looking for its token (Unix seconds): no
    /// call is creating it any more, so every rollback run looks for it, whatever its age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    given_up_at: Option<u64>,
    /// The Hub refused the creation (or an attempt of it), so no token is expected; a Hub
    /// or a proxy that did the work before refusing would have made one all the same. The
    /// next run looks once, deletes what carries the label and has no record, and drops the
    /// record whatever it finds: nobody waits for such a record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    check_once: bool,
}

/// A token creation in progress, recorded before the Hub is called.
pub struct PendingCreation {
    id: String,
    /// The label the token will carry at the Hub; it contains `id`.
    pub token_label: String,
}

/// What [`PendingCreation::settle`] found out.
#[derive(Debug)]
pub enum Settled {
    /// The Hub had created the token; it is deleted and the write-ahead record is gone.
    Deleted,
    /// The Hub lists no token with the label. It may still create it (a request it is slow
    /// to finish), so the write-ahead record stays for rollback to look again.
    NotFound,
    /// Looking or deleting failed; the write-ahead record stays for rollback.
    Failed(EngineError),
}

/// What settling did, for the log, in an operator's words.
impl std::fmt::Display for Settled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Settled::Deleted => f.write_str("the token it had created was found and deleted"),
            Settled::NotFound => f.write_str(
                "Docker Hub lists no such token; the write-ahead record stays for rollback",
            ),
            Settled::Failed(e) => write!(
                f,
                "looking for the token failed ({e}); the write-ahead record stays for rollback"
            ),
        }
    }
}

impl PendingCreation {
    /// Record a creation of a token of `account`: a personal one, or with
    /// `Some((organization, role))` an organization access token for a role.
    pub fn begin(
        host: &dyn Host,
        account: &str,
        organization: Option<(&str, &str)>,
        label: &str,
    ) -> Result<Self, EngineError> {
        let id = format!("{:016x}", host.random_u64());
        let token_label = token_label(label, &crate::mount::tag(host)?, &id);
        let entry = WalEntry {
            account: account.to_string(),
            organization: organization.map(|(o, _)| o.to_string()),
            role: organization.map(|(_, r)| r.to_string()),
            token_label: token_label.clone(),
            created_at: host.now(),
            given_up_at: None,
            check_once: false,
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

    /// The call stops looking for its token, which the Hub may still create: the record
    /// stays for rollback, marked so that every run looks for the token from now on.
    fn give_up(&self, host: &dyn Host) {
        self.mark(host, false);
    }

    /// The Hub refused the creation, or one of its attempts (see [`WalEntry::check_once`]):
    /// the record stays for the next rollback run to look once for a token with its label
    /// that has no record.
    pub fn check_once(&self, host: &dyn Host) {
        self.mark(host, true);
    }

    fn mark(&self, host: &dyn Host, check_once: bool) {
        let marked =
            storage::load::<WalEntry>(host, Bucket::Wal, &self.id).and_then(|entry| match entry {
                Some(entry) => storage::save(
                    host,
                    Bucket::Wal,
                    &self.id,
                    &WalEntry {
                        given_up_at: Some(host.now()),
                        check_once,
                        ..entry
                    },
                ),
                None => Ok(()),
            });
        if let Err(e) = marked {
            host.log(Level::Warn, "wal", &e.to_string());
        }
    }

    /// The Hub's answer to the creation was lost: look for the token by its label now and
    /// delete it, so that it does not live on until rollback.
    pub fn settle(&self, host: &dyn Host, hub: &Hub) -> Settled {
        // A token seen with the label exists, even on a list that did not hold still.
        let deleted = match hub.list_tokens_or_seen() {
            Ok(listing) => delete_labelled(host, hub, &listing, &self.token_label),
            Err(failed) => match delete_labelled(host, hub, &failed.seen, &self.token_label) {
                Ok(0) => Err(failed.error),
                found => found,
            },
        };
        match deleted {
            Ok(0) => {
                self.give_up(host);
                Settled::NotFound
            }
            Ok(_) => {
                self.abandon(host);
                Settled::Deleted
            }
            Err(e) => {
                self.give_up(host);
                Settled::Failed(e)
            }
        }
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
    let leases_ended = data.boolean("leases_ended")?.unwrap_or(false);
    let now = host.now();
    let mut failures = Vec::new();

    // One token listing per account and token family (its own, or an organization's).
    type Family = (String, Option<String>);
    let mut pending: BTreeMap<Family, Vec<(String, WalEntry)>> = BTreeMap::new();
    for id in storage::keys(host, Bucket::Wal)? {
        let Some(entry) = storage::load::<WalEntry>(host, Bucket::Wal, &id)? else {
            continue;
        };
        let in_flight = entry.given_up_at.is_none() && entry.created_at + WAL_MIN_AGE > now;
        if in_flight && !immediate {
            continue;
        }
        pending
            .entry((entry.account.clone(), entry.organization.clone()))
            .or_default()
            .push((id, entry));
    }
    let mut awaiting = Vec::new();
    for ((account, organization), entries) in pending {
        awaiting.extend(undo_creations(
            host,
            &account,
            organization.as_deref(),
            entries,
            now,
            &mut failures,
        )?);
    }

    let overdue = TokenRecord::all(host)?
        .into_iter()
        .filter(|(_, r)| leases_ended || r.lease_expires_at + TIDY_GRACE <= now)
        .take(if leases_ended {
            usize::MAX
        } else {
            MAX_TIDY_PER_RUN
        });
    for (uuid, record) in overdue {
        host.log(
            Level::Warn,
            "rollback",
            &format!(
                "the lease of token {uuid} ({}) ended without a revoke; revoking it now",
                record.token_label
            ),
        );
        if let Err(e) = destroy(host, &uuid, &record, Patience::WaitOutRateLimits) {
            failures.push(format!("revoking token {uuid}: {e}"));
        }
    }

    // The hourly tidy, on a host's periodic run only: a run at start or at unmount has its
    // own work and its own time limit.
    let tidied = match immediate || leases_ended {
        true => None,
        false => crate::tidy::when_due(host)?,
    };

    if failures.is_empty() {
        let mut data = serde_json::Map::new();
        data.insert("awaiting_creations".into(), awaiting.len().into());
        data.insert("awaiting_token_labels".into(), awaiting.into());
        if let Some((counts, _)) = tidied {
            data.insert("tidy".into(), counts.to_data().into());
        }
        Ok(Response::data(data))
    } else {
        for failure in &failures {
            host.log(Level::Warn, "rollback", failure);
        }
        Err(EngineError::Internal(format!(
            "rollback left {} item(s) for the next run: {}",
            failures.len(),
            failures.join("; ")
        )))
    }
}

/// How many token creations of `holder` are pending: their write-ahead records name tokens
/// that the Hub may hold and only their account's config can delete.
pub fn pending(host: &dyn Host, holder: Holder) -> Result<usize, EngineError> {
    let mut pending = 0;
    for id in storage::keys(host, Bucket::Wal)? {
        if storage::load::<WalEntry>(host, Bucket::Wal, &id)?
            .is_some_and(|e| holder.holds(&e.account, e.organization.as_deref(), e.role.as_deref()))
        {
            pending += 1;
        }
    }
    Ok(pending)
}

/// The token labels of every creation in progress or not yet settled.
pub fn pending_token_labels(
    host: &dyn Host,
) -> Result<std::collections::BTreeSet<String>, EngineError> {
    let mut labels = std::collections::BTreeSet::new();
    for id in storage::keys(host, Bucket::Wal)? {
        if let Some(entry) = storage::load::<WalEntry>(host, Bucket::Wal, &id)? {
            labels.insert(entry.token_label);
        }
    }
    Ok(labels)
}

/// Delete at the Hub every token carrying the label of one of the account's interrupted
/// creations that the engine did not record, then drop their write-ahead records. One
/// listing serves them all. A failure keeps the record for the next run; so does a token
/// not (yet) listed whose creation is younger than [`LANDING_WINDOW`], marked given up so
/// that every later run looks again. Returns the token labels of the records that wait so.
fn undo_creations(
    host: &dyn Host,
    account: &str,
    organization: Option<&str>,
    entries: Vec<(String, WalEntry)>,
    now: u64,
    failures: &mut Vec<String>,
) -> Result<Vec<String>, EngineError> {
    let Some(config) = AccountConfig::load(host, account)? else {
        for (id, entry) in entries {
            host.log(
                Level::Warn,
                "rollback",
                &format!(
                    "cannot look for {} at Docker Hub: account {account} has no config any \
                     more; its Hub expiry will end it",
                    entry.token_label
                ),
            );
            storage::remove(host, Bucket::Wal, &id)?;
        }
        return Ok(Vec::new());
    };
    let hub = config.hub(host, account);
    let hub = match organization {
        Some(organization) => hub.for_organization(organization),
        None => hub,
    };
    let listing = match hub.list_tokens_or_seen() {
        Ok(listing) => listing,
        Err(ListingFailed { error: e, seen }) => {
            // A token seen with an entry's label exists, even on a list that did not hold
            // still: it is deleted, and its record with it; the others wait for a list that
            // does.
            let mut entries = entries;
            entries.retain(|(id, entry)| {
                match delete_labelled(host, &hub, &seen, &entry.token_label) {
                    Ok(0) => true,
                    Ok(_) => {
                        if let Err(e) = storage::remove(host, Bucket::Wal, id) {
                            host.log(Level::Warn, "wal", &e.to_string());
                        }
                        false
                    }
                    Err(e) => {
                        failures.push(format!("cleaning up {}: {e}", entry.token_label));
                        false
                    }
                }
            });
            if entries.is_empty() {
                return Ok(Vec::new());
            }
            // Their labels, so that an operator can find the tokens should the records go
            // (a mount removed while the Hub cannot be asked).
            let labels: Vec<&str> = entries
                .iter()
                .map(|(_, e)| e.token_label.as_str())
                .collect();
            failures.push(format!(
                "looking for {} interrupted creation(s) of account {account} (token labels \
                 {}): {e}",
                entries.len(),
                labels.join(", ")
            ));
            return Ok(Vec::new());
        }
    };
    let mut awaiting = Vec::new();
    for (id, entry) in entries {
        match delete_labelled(host, &hub, &listing, &entry.token_label) {
            Ok(0) if !entry.check_once && entry.created_at + LANDING_WINDOW > now => {
                awaiting.push(entry.token_label.clone());
                host.log(
                    Level::Info,
                    "rollback",
                    &format!(
                        "Docker Hub lists no token {} yet; looking again until {} s after its \
                         creation was sent",
                        entry.token_label, LANDING_WINDOW
                    ),
                );
                if entry.given_up_at.is_none() {
                    let entry = WalEntry {
                        given_up_at: Some(now),
                        ..entry
                    };
                    storage::save(host, Bucket::Wal, &id, &entry)?;
                }
            }
            Ok(0) => {
                host.log(
                    Level::Info,
                    "rollback",
                    &format!(
                        "Docker Hub lists no token {}: its interrupted creation was not carried \
                         out; its record is dropped",
                        entry.token_label
                    ),
                );
                storage::remove(host, Bucket::Wal, &id)?;
            }
            Ok(_) => storage::remove(host, Bucket::Wal, &id)?,
            Err(e) => failures.push(format!("cleaning up {}: {e}", entry.token_label)),
        }
    }
    Ok(awaiting)
}

/// Delete every listed token labelled `token_label` that has no record (a recorded one has a
/// lease that will revoke it); returns how many carried the label.
fn delete_labelled(
    host: &dyn Host,
    hub: &Hub,
    listing: &[ListedToken],
    token_label: &str,
) -> Result<usize, EngineError> {
    let mut found = 0;
    for token in listing.iter().filter(|t| t.token_label == token_label) {
        found += 1;
        if TokenRecord::load(host, &token.uuid)?.is_some() {
            continue;
        }
        hub.delete_token(&token.uuid)?;
        host.log(
            Level::Info,
            "rollback",
            &format!(
                "deleted token {} ({token_label}) whose creation was interrupted",
                token.uuid
            ),
        );
    }
    Ok(found)
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

    /// A process that died after the Hub created a token and before the engine recorded it:
    /// a write-ahead record, and the token at the Hub.
    fn interrupted_creation(host: &TestHost) -> String {
        let config = AccountConfig::load(host, "hoeg").unwrap().unwrap();
        let pending = PendingCreation::begin(host, "hoeg", None, "lost").unwrap();
        config
            .hub(host, "hoeg")
            .create_token(
                &pending.token_label,
                &crate::hub::Grant::Scope("repo:read"),
                host.now() + 3600,
            )
            .map_err(|e| format!("{e:?}"))
            .unwrap()
            .uuid
    }

    #[test]
    fn rollback_deletes_a_token_whose_creation_was_interrupted() {
        let host = TestHost::configured();
        let kept = host.issue(json!({})).data.unwrap()["uuid"].clone();
        interrupted_creation(&host);
        assert_eq!(host.hub.live_tokens().len(), 2);
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
    fn one_listing_settles_every_pending_creation_of_an_account() {
        let host = TestHost::configured();
        let kept = host.issue(json!({})).data.unwrap()["uuid"].clone();
        for _ in 0..7 {
            interrupted_creation(&host);
        }
        host.hub.clear_calls();
        rollback(&host, json!({"immediate": true})).unwrap();
        let listings = host
            .hub
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path.starts_with("/v2/access-tokens"))
            .count();
        // One listing, read twice to know it held still.
        assert_eq!(listings, 2);
        let live: Vec<String> = host.hub.live_tokens().into_iter().map(|t| t.uuid).collect();
        assert_eq!(live, [kept.as_str().unwrap()]);
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn the_immediate_field_says_when_hosts_set_it() {
        let text = FIELDS
            .iter()
            .find(|f| f.name == "immediate")
            .unwrap()
            .description;
        assert!(text.contains("start of a fresh process"), "{text}");
        assert!(text.contains("mount is being removed"), "{text}");
        assert!(!text.contains("at unmount"), "{text}");
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
        host.hub.inject(
            Fault::on("GET", "/v2/access-tokens", FaultKind::Status(500))
                .times(crate::hub::RETRY_BACKOFF.len() + 1),
        );
        let label = host.hub.live_tokens()[0].label.clone();
        assert!(matches!(
            rollback(&host, json!({"immediate": true})),
            Err(EngineError::Internal(m)) if m.contains("next run") && m.contains(&label)
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
        host.advance(120 + TIDY_GRACE - 1);
        rollback(&host, json!({})).unwrap();
        assert_eq!(
            host.hub.live_tokens().len(),
            2,
            "a lease that ended less than a minute ago may still be revoked by its host"
        );
        host.advance(1);
        rollback(&host, json!({})).unwrap();
        let live: Vec<String> = host.hub.live_tokens().into_iter().map(|t| t.uuid).collect();
        assert_eq!(live, [long.as_str().unwrap()]);
        assert_eq!(host.keys(Bucket::Token), [long.as_str().unwrap()]);
    }

    #[test]
    fn when_every_lease_ended_every_tracked_token_is_revoked_at_once() {
        let host = TestHost::configured();
        host.issue(json!({"ttl": "30m"}));
        host.issue(json!({"ttl": "2m"}));
        rollback(&host, json!({"immediate": true})).unwrap();
        assert_eq!(
            host.hub.live_tokens().len(),
            2,
            "immediate alone keeps leases"
        );
        rollback(&host, json!({"immediate": true, "leases_ended": true})).unwrap();
        assert!(host.hub.live_tokens().is_empty());
        assert!(host.keys(Bucket::Token).is_empty());
    }
}
