//! `tidy`: reconcile with Docker Hub. Lists the tokens of every configured account, and of
//! every organization a role or a live token names, and deletes those that **this mount**
//! made and no longer knows of: no record (its write was lost, a backup older than the token
//! was restored, an operator wiped the storage) and no creation in progress. A token is this
//! mount's when its label ends in this mount's tag ([`crate::mount`]), and for an
//! organization token when its description names the tag too (read with one request per
//! token about to be deleted: listings do not carry descriptions); every other token
//! (another mount's, another host's, one made by hand or by another tool) is never touched.
//!
//! Rollback runs it too, at most once per [`INTERVAL`], the first time an interval after the
//! mount's first rollback. Each run makes at most one token listing per account and
//! organization (each read twice, see `Hub::list_tokens`) and at most
//! [`MAX_DELETES_PER_RUN`] deletions; what is left waits for the next run.
//!
//! A token younger than [`MIN_AGE`] is kept: its creation may still be on its way to being
//! recorded (on another node, or behind a lost answer that rollback settles). For the same
//! reason the write-ahead records are read after the listing and before each token's record:
//! a creation records its token before it drops its write-ahead record, so a token listed
//! that has neither was not being recorded when the listing was read.

use crate::api::{EngineError, Field, Operation, PathHelp, Request, Response};
use crate::capabilities::{Bucket, Host, Level};
use crate::fields::FieldData;
use crate::mount;
use crate::names::mount_tag_of;
use crate::path_config::AccountConfig;
use crate::path_role::Role;
use crate::rollback;
use crate::secret_token::TokenRecord;
use crate::storage;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// How often rollback tidies, in seconds.
pub const INTERVAL: u64 = 60 * 60;
/// A token this young (by the Hub's `created_at`) is kept, in seconds: as long as rollback
/// waits before it treats a creation as interrupted (Vault's `WALRollbackMinAge`).
pub const MIN_AGE: u64 = rollback::WAL_MIN_AGE;
/// The most deletions one run sends.
pub const MAX_DELETES_PER_RUN: usize = 50;
const TIDIED_AT_KEY: &str = "tidied_at";

static FIELDS: &[Field] = &[];

pub fn help() -> Vec<PathHelp> {
    vec![PathHelp {
        pattern: r"tidy$",
        operations: vec![Operation::Update, Operation::Create],
        existence_check: false,
        synopsis: "Delete this mount's tokens at Docker Hub that it has no record of.",
        description: "Lists the tokens of every configured account and of every organization \
                      a role names, and deletes those this mount made (their label ends in its \
                      tag) that it has no record of and no creation in progress for, once \
                      they are 10 minutes old: tokens whose record was lost, by a lost write, a \
                      restored backup or storage wiped by hand. Tokens of other mounts and \
                      hosts, and tokens made by hand or by other tools, are never touched. \
                      Answers how many tokens it saw, kept (this mount's, recorded or too \
                      young), deleted and failed to delete, and how many were others'. At most \
                      50 deletions a run; rollback runs it hourly.",
        fields: FIELDS.to_vec(),
    }]
}

/// What one run did, in counts of tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Every token listed.
    pub seen: usize,
    /// This mount's tokens left in place: recorded, in creation, too young, or over the run's
    /// budget.
    pub kept: usize,
    pub deleted: usize,
    pub failed: usize,
    /// Tokens of other mounts, hosts and tools.
    pub others: usize,
    /// Token lists (one per account and organization) read, and those that failed.
    pub listings: usize,
    pub listings_failed: usize,
}

impl Counts {
    pub fn to_data(self) -> Map<String, Value> {
        let mut data = Map::new();
        for (name, count) in [
            ("seen", self.seen),
            ("kept", self.kept),
            ("deleted", self.deleted),
            ("failed", self.failed),
            ("others", self.others),
            ("listings_failed", self.listings_failed),
        ] {
            data.insert(name.into(), Value::from(count));
        }
        data
    }
}

pub fn handle(host: &dyn Host, request: &Request) -> Result<Response, EngineError> {
    match request.operation {
        Operation::Update | Operation::Create => {
            let data = FieldData::parse(&request.data, FIELDS)?;
            let (counts, mut warnings) = run(host)?;
            // Nothing could be listed: no reconciliation happened, which a caller checking
            // the status alone must see.
            if counts.listings_failed > 0 && counts.listings_failed == counts.listings {
                return Err(EngineError::Upstream(crate::api::UpstreamError {
                    status: 0,
                    message: format!("tidy could list no tokens: {}", warnings.join("; ")),
                    retry_after: None,
                }));
            }
            warnings.extend(data.unknown_field_warnings());
            Ok(Response::data(counts.to_data()).with_warnings(warnings))
        }
        op => Err(EngineError::UnsupportedOperation(format!(
            "tidy does not support {op:?}"
        ))),
    }
}

/// Run the tidy when rollback's interval has passed; the first call only starts the clock.
/// Returns the counts of a run, `None` when none was due.
pub fn when_due(host: &dyn Host) -> Result<Option<(Counts, Vec<String>)>, EngineError> {
    let now = host.now();
    match storage::load::<u64>(host, Bucket::Mount, TIDIED_AT_KEY)? {
        Some(at) if at + INTERVAL <= now => run(host).map(Some),
        Some(_) => Ok(None),
        None => {
            storage::save(host, Bucket::Mount, TIDIED_AT_KEY, &now)?;
            Ok(None)
        }
    }
}

/// One run; the warnings name what could not be done (a listing that failed, a deletion that
/// failed, work left for the next run).
pub fn run(host: &dyn Host) -> Result<(Counts, Vec<String>), EngineError> {
    let tag = mount::tag(host)?;
    let now = host.now();
    storage::save(host, Bucket::Mount, TIDIED_AT_KEY, &now)?;

    // Every account's own tokens, and every organization's that a role or a record names,
    // reached through the account that manages it.
    let mut families: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for account in storage::keys(host, Bucket::Config)? {
        families.insert((account, None));
    }
    for name in storage::keys(host, Bucket::Role)? {
        if let Some(role) = Role::load(host, &name)? {
            families.insert((role.account, Some(role.organization)));
        }
    }
    for (_, record) in TokenRecord::all(host)? {
        if let Some(organization) = record.organization {
            families.insert((record.account, Some(organization)));
        }
    }

    let mut counts = Counts::default();
    let mut warnings = Vec::new();
    let mut deferred = 0;
    for (account, organization) in families {
        let whose = match &organization {
            Some(organization) => format!("organization {organization}"),
            None => format!("account {account}"),
        };
        counts.listings += 1;
        let Some(config) = AccountConfig::load(host, &account)? else {
            counts.listings_failed += 1;
            warnings.push(format!(
                "cannot list the tokens of {whose}: account {account} has no config"
            ));
            continue;
        };
        let hub = config.hub(host, &account);
        let hub = match &organization {
            Some(organization) => hub.for_organization(organization),
            None => hub,
        };
        let listing = match hub.list_tokens() {
            Ok(listing) => listing,
            Err(e) => {
                counts.listings_failed += 1;
                warnings.push(format!("listing the tokens of {whose} failed: {e}"));
                continue;
            }
        };
        // Read after the listing: see the module's doc.
        let in_creation = rollback::pending_token_labels(host)?;
        for token in listing {
            counts.seen += 1;
            if mount_tag_of(&token.token_label) != Some(tag.as_str()) {
                counts.others += 1;
                continue;
            }
            let young = token.created_at.is_none_or(|at| at + MIN_AGE > now);
            if in_creation.contains(&token.token_label)
                || TokenRecord::load(host, &token.uuid)?.is_some()
                || young
            {
                counts.kept += 1;
                continue;
            }
            if counts.deleted + counts.failed >= MAX_DELETES_PER_RUN {
                counts.kept += 1;
                deferred += 1;
                continue;
            }
            // An organization token is this mount's when its description says so too.
            if organization.is_some() {
                match hub.token_description(&token.uuid) {
                    Ok(description) => {
                        if !description.is_some_and(|d| mount::described_as_ours(&d, &tag)) {
                            counts.others += 1;
                            continue;
                        }
                    }
                    Err(e) => {
                        counts.failed += 1;
                        warnings.push(format!(
                            "reading token {} of {whose} failed: {e}",
                            token.uuid
                        ));
                        continue;
                    }
                }
            }
            match hub.delete_token(&token.uuid) {
                Ok(()) => {
                    counts.deleted += 1;
                    host.log(
                        Level::Info,
                        "tidy",
                        &format!(
                            "deleted token {} (label {:?}) of {whose}: this mount made it and \
                             has no record of it",
                            token.uuid, token.token_label
                        ),
                    );
                }
                Err(e) => {
                    counts.failed += 1;
                    warnings.push(format!(
                        "deleting token {} of {whose} failed: {e}",
                        token.uuid
                    ));
                }
            }
        }
    }
    if deferred > 0 {
        warnings.push(format!(
            "{deferred} unrecorded token(s) of this mount are left for the next run (at most \
             {MAX_DELETES_PER_RUN} deletions a run)"
        ));
    }
    for warning in &warnings {
        host.log(Level::Warn, "tidy", warning);
    }
    Ok((counts, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ORGANIZATION, TestHost};
    use fakehub::{Fault, FaultKind, OrgTokenResource};
    use serde_json::json;

    fn tidy(host: &TestHost) -> Response {
        host.call(Operation::Update, "tidy", json!({})).unwrap()
    }

    fn counts(response: &Response) -> Value {
        Value::Object(response.data.clone().unwrap())
    }

    /// Forget a token's record, as a lost write or a restored backup would.
    fn forget(host: &TestHost, response: &Response) -> String {
        let data = response.data.as_ref().unwrap();
        let id = data
            .get("uuid")
            .or(data.get("id"))
            .unwrap()
            .as_str()
            .unwrap();
        host.delete(Bucket::Token, id).unwrap();
        id.to_string()
    }

    #[test]
    fn tidy_deletes_only_this_mounts_unrecorded_tokens() {
        let host = TestHost::with_role();
        *host.mount_id.borrow_mut() = Some("mount-a".into());
        let tag_a = mount::tag(&host).unwrap();
        let kept = host.issue(json!({"label": "kept"}));
        let lost_pat = host.issue(json!({"label": "lost"}));
        let lost_oat = host.issue_creds(json!({"label": "lost"}));
        // Another mount sharing the account and the organization; its records are not ours.
        *host.mount_id.borrow_mut() = Some("mount-b".into());
        let other_pat = host.issue(json!({"label": "other-mount"}));
        let other_oat = host.issue_creds(json!({"label": "other-mount"}));
        let (lost_pat, lost_oat) = (forget(&host, &lost_pat), forget(&host, &lost_oat));
        let (other_pat, other_oat) = (forget(&host, &other_pat), forget(&host, &other_oat));
        // Made by hand and by another tool; one by hand copies this mount's label, but not its
        // description.
        host.hub.churn("hoeg", 0, 1);
        let copied_label = host.hub.create_org_token_by_hand(
            ORGANIZATION,
            &format!("dockerhub-secrets:by-hand:{tag_a}0000abcd"),
            "made by hand",
            vec![OrgTokenResource::repo(
                "my-organization/app",
                &["scope-image-pull"],
            )],
            None,
        );
        let by_hand = host.hub.create_org_token_by_hand(
            ORGANIZATION,
            "dockerhub-secrets:by-hand:not-a-tag",
            "",
            vec![OrgTokenResource::repo(
                "my-organization/app",
                &["scope-image-pull"],
            )],
            None,
        );

        *host.mount_id.borrow_mut() = Some("mount-a".into());
        host.advance(MIN_AGE + 1);
        let response = tidy(&host);
        assert_eq!(
            counts(&response),
            json!({"seen": 8, "kept": 1, "deleted": 2, "failed": 0, "others": 5,
                   "listings_failed": 0})
        );
        assert!(
            host.hub.org_token(&copied_label.id).is_some(),
            "not its description"
        );
        let reads = host
            .hub
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path.contains(&copied_label.id))
            .count();
        assert_eq!(reads, 1, "its description was read");
        assert!(response.warnings.is_empty(), "{:?}", response.warnings);
        assert!(host.hub.token(&lost_pat).is_none());
        assert!(host.hub.org_token(&lost_oat).is_none());
        let kept = kept.data.unwrap()["uuid"].as_str().unwrap().to_string();
        assert!(host.hub.token(&kept).is_some(), "recorded: kept");
        assert!(host.hub.token(&other_pat).is_some(), "another mount's");
        assert!(host.hub.org_token(&other_oat).is_some(), "another mount's");
        assert!(host.hub.org_token(&by_hand.id).is_some(), "made by hand");
        assert_eq!(
            host.hub.live_tokens().len(),
            3,
            "kept, other mount's, other tool's"
        );
        // Nothing left to do.
        let again = tidy(&host);
        assert_eq!(counts(&again)["deleted"], 0);
    }

    #[test]
    fn young_tokens_and_creations_in_progress_are_kept() {
        let host = TestHost::configured();
        let young = forget(&host, &host.issue(json!({})));
        assert_eq!(counts(&tidy(&host))["kept"], 1);
        assert!(host.hub.token(&young).is_some(), "younger than MIN_AGE");

        // A creation whose answer was lost and could not be settled: rollback's to finish.
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        host.hub
            .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(500)).times(20));
        host.call(Operation::Update, "token/hoeg/hoeg", json!({}))
            .unwrap_err();
        host.hub.clear_faults();
        host.advance(MIN_AGE + 1);
        let response = tidy(&host);
        assert_eq!(counts(&response)["kept"], 1, "the creation in progress");
        assert_eq!(counts(&response)["deleted"], 1, "the unrecorded one");
        assert_eq!(host.hub.live_tokens().len(), 1);
    }

    #[test]
    fn one_run_deletes_at_most_its_budget() {
        let host = TestHost::configured();
        for _ in 0..MAX_DELETES_PER_RUN + 2 {
            forget(&host, &host.issue(json!({})));
        }
        host.advance(MIN_AGE + 1);
        let response = tidy(&host);
        assert_eq!(counts(&response)["deleted"], MAX_DELETES_PER_RUN);
        assert_eq!(counts(&response)["kept"], 2);
        assert_eq!(
            response.warnings,
            [
                "2 unrecorded token(s) of this mount are left for the next run (at most 50 \
              deletions a run)"
            ]
        );
        assert_eq!(counts(&tidy(&host))["deleted"], 2);
        assert!(host.hub.live_tokens().is_empty());
    }

    #[test]
    fn a_failed_listing_is_a_warning_and_the_other_families_go_on() {
        let host = TestHost::with_role();
        forget(&host, &host.issue_creds(json!({})));
        host.advance(MIN_AGE + 1);
        host.hub
            .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(403)).times(10));
        let response = tidy(&host);
        assert_eq!(counts(&response)["deleted"], 1, "the organization's");
        assert_eq!(response.warnings.len(), 1, "{:?}", response.warnings);
        assert!(
            response.warnings[0].starts_with("listing the tokens of account hoeg failed"),
            "{:?}",
            response.warnings
        );
    }

    #[test]
    fn a_tidy_that_could_list_nothing_is_an_error() {
        let host = TestHost::configured();
        host.hub
            .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(403)).times(10));
        match host.call(Operation::Update, "tidy", json!({})) {
            Err(EngineError::Upstream(u)) => assert!(
                u.message.starts_with(
                    "tidy could list no tokens: listing the tokens of account hoeg failed"
                ),
                "{}",
                u.message
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rollback_tidies_hourly_starting_an_hour_after_its_first_run() {
        let host = TestHost::configured();
        let lost = forget(&host, &host.issue(json!({})));
        host.advance(MIN_AGE + 1);
        let rollback = |host: &TestHost| {
            host.call(Operation::Rollback, "", json!({}))
                .unwrap()
                .data
                .unwrap()
        };
        assert!(
            !rollback(&host).contains_key("tidy"),
            "the first run starts the clock"
        );
        assert!(host.hub.token(&lost).is_some());
        host.advance(INTERVAL);
        let data = rollback(&host);
        assert_eq!(data["tidy"]["deleted"], 1, "{data:?}");
        assert!(host.hub.token(&lost).is_none());
        assert!(
            !rollback(&host).contains_key("tidy"),
            "not again within the hour"
        );
        // Not in a run at start or at unmount.
        host.advance(INTERVAL);
        let at_start = host
            .call(Operation::Rollback, "", json!({"immediate": true}))
            .unwrap();
        assert!(!at_start.data.unwrap().contains_key("tidy"));
    }

    #[test]
    fn the_mount_tag_comes_from_the_hosts_id_else_from_one_kept_in_storage() {
        let host = TestHost::configured();
        let own = mount::tag(&host).unwrap();
        assert_eq!(own.len(), mount::TAG_LEN);
        assert_eq!(mount::tag(&host).unwrap(), own, "kept");
        assert_eq!(host.keys(Bucket::Mount), ["id"]);
        *host.mount_id.borrow_mut() = Some("9f8e7d6c-0000-4000-8000-123456789abc".into());
        let hosts = mount::tag(&host).unwrap();
        assert_ne!(hosts, own);
        assert_eq!(hosts, "87b8b9ef", "the first 32 bits of the id's SHA-256");
        let label = host.issue(json!({})).data.unwrap()["uuid"].clone();
        let at_hub = host.hub.token(label.as_str().unwrap()).unwrap();
        assert_eq!(mount_tag_of(&at_hub.label), Some(hosts.as_str()));
    }
}
