//! What happens to an issued token over its lease: renew extends the lease within its
//! max_ttl and never past the expiry the Hub granted the token (no Hub call: that expiry
//! cannot change), revoke deletes the token at Docker Hub, sending the DELETE again inside
//! the call when the Hub fails it with a 5xx or no answer (see `hub::RETRY_BACKOFF`).
//!
//! Every issued token has a [`TokenRecord`] until it is revoked, so that nothing the engine
//! created is ever forgotten: rollback uses the records to revoke tokens whose lease ended
//! without a revoke reaching us (a host that crashed before it stored the lease, or gave up
//! retrying).

use crate::api::{EngineError, Lease, LeaseState, Request, Response};
use crate::capabilities::{Bucket, Host, Level};
use crate::duration;
use crate::hub::{Hub, rfc3339};
use crate::path_config::AccountConfig;
use crate::storage;
use serde::{Deserialize, Serialize};

/// An issued, not yet revoked token, keyed by its Hub uuid. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub account: String,
    pub namespace: String,
    pub label: String,
    pub scope: String,
    /// The label the token carries at Docker Hub.
    pub token_label: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// The lease TTL granted at issue, used as the renewal increment by default.
    pub ttl: u64,
    /// Seconds after issue beyond which the lease cannot be renewed.
    pub max_ttl: u64,
    /// When the lease ends unless renewed (Unix seconds).
    pub lease_expires_at: u64,
    /// When Docker Hub expires the token by itself (Unix seconds), as its answer said;
    /// `None`: never, so only a revocation ends it. (Records written before this could be
    /// `None` always hold a number, which reads as `Some`.)
    pub hub_expires_at: Option<u64>,
    /// For an organization access token: its organization, whose API deletes it; `None` for
    /// a personal access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// For an organization access token: the role it was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl TokenRecord {
    pub fn load(host: &dyn Host, uuid: &str) -> Result<Option<TokenRecord>, EngineError> {
        storage::load(host, Bucket::Token, uuid)
    }

    pub fn save(&self, host: &dyn Host, uuid: &str) -> Result<(), EngineError> {
        storage::save(host, Bucket::Token, uuid, self)
    }

    /// The Hub client that deletes this token: the account's, for its organization when it
    /// is an organization access token.
    pub fn hub<'a>(&'a self, config: &'a AccountConfig, host: &'a dyn Host) -> Hub<'a> {
        let hub = config.hub(host, &self.account);
        match &self.organization {
            Some(organization) => hub.for_organization(organization),
            None => hub,
        }
    }

    /// Every record, with its uuid.
    pub fn all(host: &dyn Host) -> Result<Vec<(String, TokenRecord)>, EngineError> {
        let mut records = Vec::new();
        for uuid in storage::keys(host, Bucket::Token)? {
            if let Some(record) = TokenRecord::load(host, &uuid)? {
                records.push((uuid, record));
            }
        }
        Ok(records)
    }
}

/// A set of tokens that a count, a quota or a limit concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    /// Every token made with the account's credentials, personal and organization ones.
    Account(&'a str),
    /// The account's personal access tokens.
    Personal(&'a str),
    /// The organization access tokens issued for a role.
    Role(&'a str),
    /// The organization access tokens of an organization, whichever role issued them.
    Organization(&'a str),
}

impl Holder<'_> {
    /// Whether a token made by `account`, for `organization` (`None`: a personal token) and
    /// `role`, is one of these.
    pub fn holds(self, account: &str, organization: Option<&str>, role: Option<&str>) -> bool {
        match self {
            Holder::Account(a) => a == account,
            Holder::Personal(a) => a == account && organization.is_none(),
            Holder::Role(r) => role == Some(r),
            Holder::Organization(o) => organization == Some(o),
        }
    }
}

/// How many tokens of `holder` the engine has issued and not yet revoked.
pub fn live_count(host: &dyn Host, holder: Holder) -> Result<usize, EngineError> {
    Ok(TokenRecord::all(host)?
        .iter()
        .filter(|(_, r)| holder.holds(&r.account, r.organization.as_deref(), r.role.as_deref()))
        .count())
}

/// The lease's internal data: enough to find the token again. No secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseData {
    pub account: String,
    pub uuid: String,
}

impl LeaseData {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("two strings always serialize")
    }

    fn from_lease(request: &Request) -> Result<(LeaseData, &LeaseState), EngineError> {
        let lease = request
            .lease
            .as_ref()
            .ok_or_else(|| EngineError::invalid("renew and revoke need the lease's state"))?;
        let data = serde_json::from_str(&lease.internal_data).map_err(|_| {
            EngineError::invalid("the lease's internal data was not written by this engine")
        })?;
        Ok((data, lease))
    }
}

pub fn renew(host: &dyn Host, request: &Request) -> Result<Response, EngineError> {
    let (lease_data, lease) = LeaseData::from_lease(request)?;
    let Some(mut record) = TokenRecord::load(host, &lease_data.uuid)? else {
        return Err(EngineError::invalid(format!(
            "token {} was already revoked; request a new one",
            lease_data.uuid
        )));
    };
    let now = host.now();
    let issued_at = if lease.issue_time > 0 {
        lease.issue_time
    } else {
        record.issued_at
    };
    let max_ttl = match host.max_lease_ttl() {
        Some(limit) if limit > 0 => record.max_ttl.min(limit),
        _ => record.max_ttl,
    };
    let within_max_ttl = max_ttl.saturating_sub(now.saturating_sub(issued_at));
    // As at issue: a second off the Hub's expiry, for the clock's whole seconds.
    let within_hub_expiry = record
        .hub_expires_at
        .map_or(u64::MAX, |at| at.saturating_sub(now + 1));
    let remaining = within_max_ttl.min(within_hub_expiry);
    if within_hub_expiry == 0 {
        return Err(EngineError::invalid(format!(
            "Docker Hub expires token {} at {}; the lease cannot be renewed: request a new token",
            lease_data.uuid,
            record.hub_expires_at.map(rfc3339).unwrap_or_default()
        )));
    }
    if remaining == 0 {
        return Err(EngineError::invalid(format!(
            "the lease has reached its max_ttl of {} and cannot be renewed; request a new token",
            duration::format(max_ttl)
        )));
    }
    let wanted = if lease.increment > 0 {
        lease.increment
    } else {
        record.ttl
    };
    let ttl = wanted.min(remaining);
    let mut warnings = Vec::new();
    // As Vault's framework (`CalculateTTL`) words it: the effective max_ttl is what is left
    // of it now, not the max_ttl counted from the issue.
    if ttl < wanted && within_hub_expiry < within_max_ttl {
        warnings.push(format!(
            "TTL of {} exceeded the token's expiry at Docker Hub, {} from now; TTL value is \
             capped accordingly",
            duration::format(wanted),
            duration::format(ttl)
        ));
    } else if ttl < wanted {
        warnings.push(format!(
            "TTL of {} exceeded the effective max_ttl of {}; TTL value is capped accordingly",
            duration::format(wanted),
            duration::format(ttl)
        ));
    }
    record.lease_expires_at = now + ttl;
    record.save(host, &lease_data.uuid)?;
    Ok(Response {
        data: None,
        lease: Some(Lease {
            ttl,
            max_ttl,
            renewable: true,
            internal_data: lease.internal_data.clone(),
        }),
        warnings,
    })
}

pub fn revoke(host: &dyn Host, request: &Request) -> Result<Response, EngineError> {
    let (lease_data, _) = LeaseData::from_lease(request)?;
    match TokenRecord::load(host, &lease_data.uuid)? {
        Some(record) => destroy(host, &lease_data.uuid, &record, Patience::ReportRateLimits)?,
        // Only a completed revocation removes the record: the token is gone already.
        None => host.log(
            Level::Debug,
            "revoke",
            &format!("token {} was already revoked", lease_data.uuid),
        ),
    }
    Ok(Response::default())
}

/// Whether a revocation waits out a Hub rate limit itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Wait within the request's budget (rollback, whose host does not retry).
    WaitOutRateLimits,
    /// Report the 429 with its `retry_after` at once (a lease revoke, which the host retries).
    ReportRateLimits,
}

/// Delete the token at Docker Hub, then forget it. An error leaves the record in place so
/// that the revocation is retried.
///
/// A token past its Hub expiry is deleted too: Docker Hub keeps expired tokens listed until
/// they are deleted, and an organization's count against its limit of access tokens. Only
/// when the account's config is gone (storage edited by hand: a delete of the config is
/// refused while it has tokens) is such a dead token forgotten without a Hub call.
pub fn destroy(
    host: &dyn Host,
    uuid: &str,
    record: &TokenRecord,
    patience: Patience,
) -> Result<(), EngineError> {
    let expired = record.hub_expires_at.is_some_and(|at| at <= host.now());
    match AccountConfig::load(host, &record.account)? {
        Some(config) => {
            let hub = record.hub(&config, host);
            let hub = match patience {
                Patience::WaitOutRateLimits => hub,
                Patience::ReportRateLimits => hub.without_waiting(),
            };
            hub.delete_token(uuid)?;
        }
        None if expired => host.log(
            Level::Warn,
            "revoke",
            &format!(
                "token {uuid} has expired at Docker Hub, and the config of account {} is gone: \
                 it is forgotten without being deleted there",
                record.account
            ),
        ),
        None => {
            return Err(EngineError::Internal(format!(
                "cannot revoke token {uuid}: the config of account {} is gone",
                record.account
            )));
        }
    }
    storage::remove(host, Bucket::Token, uuid)?;
    host.log(
        Level::Info,
        "revoke",
        &format!(
            "revoked token {uuid} (label {:?}) of account {}",
            record.token_label, record.account
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Operation;
    use crate::testing::{ACCOUNT, TestHost};
    use fakehub::{Fault, FaultKind};
    use serde_json::json;

    /// Issue a token; return its uuid and the lease state a host would send back.
    fn issue(host: &TestHost) -> (String, LeaseState) {
        let response = host.issue(json!({}));
        let uuid = response.data.unwrap()["uuid"].as_str().unwrap().to_string();
        let lease = response.lease.unwrap();
        let state = LeaseState {
            internal_data: lease.internal_data,
            issue_time: host.now(),
            ttl: lease.ttl,
            increment: 0,
        };
        (uuid, state)
    }

    fn lease_call(
        host: &TestHost,
        operation: Operation,
        lease: &LeaseState,
    ) -> Result<Response, EngineError> {
        let mut request = Request::new(operation, "token/hoeg/my-organization");
        request.lease = Some(lease.clone());
        crate::backend::handle(host, &request)
    }

    #[test]
    fn a_token_past_its_hub_expiry_is_deleted_too_and_forgotten_only_without_its_config() {
        let host = TestHost::configured();
        // Past the Hub's expiry by the engine's clock: still listed at the Hub, deleted.
        let (uuid, lease) = issue(&host);
        host.advance(3600 + 10);
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none(), "deleted although expired");

        // The config gone (storage edited by hand): a live token cannot be revoked...
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        host.delete(Bucket::Config, "hoeg").unwrap();
        let refused = lease_call(&host, Operation::Revoke, &lease).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("the config of account hoeg is gone"),
            "{refused}"
        );
        assert_eq!(
            host.keys(Bucket::Token),
            [uuid.as_str()],
            "kept for a retry"
        );
        // ...and once Docker Hub has ended it, it is forgotten.
        host.advance(3600 + 10);
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.keys(Bucket::Token).is_empty());
        assert!(
            host.logs
                .borrow()
                .iter()
                .any(|line| line.contains("it is forgotten without being deleted there")),
            "{:?}",
            host.logs.borrow()
        );
    }

    #[test]
    fn revoke_deletes_the_token_at_the_hub() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none());
        assert!(host.keys(Bucket::Token).is_empty());
        // A repeated revoke (a host retrying) is fine and calls nobody.
        host.hub.clear_calls();
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.calls().is_empty());
    }

    #[test]
    fn a_404_on_delete_counts_as_revoked_once_the_listing_agrees() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        // Deleted behind the engine's back: the DELETE finds nothing, the listing agrees.
        assert!(host.hub.delete_token(&uuid));
        host.hub.clear_calls();
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.keys(Bucket::Token).is_empty());
        let calls: Vec<(String, u16)> = host
            .hub
            .calls()
            .iter()
            .map(|c| (c.method.clone(), c.status))
            .collect();
        assert_eq!(
            calls,
            // The listing, read twice to know it held still.
            [
                ("DELETE".to_string(), 404),
                ("GET".to_string(), 200),
                ("GET".to_string(), 200)
            ]
        );
    }

    #[test]
    fn a_404_on_delete_is_checked_against_a_token_list_that_held_still() {
        let host = TestHost::configured();
        // 5 older and 102 newer tokens of another client: ours is on the list's second page.
        host.hub.churn(ACCOUNT, 0, 5);
        let (uuid, lease) = issue(&host);
        host.hub.churn(ACCOUNT, 0, 102);
        let shift_before_page_2 = |delete_newest, create| {
            let churn = FaultKind::Churn {
                account: ACCOUNT.into(),
                delete_newest,
                create,
            };
            Fault::on("GET", "/v2/access-tokens", churn).with_query("page=2")
        };
        let answered_404 = || Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(404));
        // Something answers the DELETE with 404 without passing it on, and another client
        // deletes 5 tokens between the reads of page 1 and page 2: ours slips past the edge.
        host.hub.inject(answered_404());
        host.hub.inject(shift_before_page_2(5, 0));
        match lease_call(&host, Operation::Revoke, &lease) {
            Err(EngineError::Upstream(u)) => {
                assert!(u.message.contains("still lists"), "{}", u.message)
            }
            other => panic!("{other:?}"),
        }
        assert!(host.hub.token(&uuid).is_some());
        assert_eq!(host.keys(Bucket::Token), [uuid.as_str()]);
        // A list that never holds still proves nothing gone.
        host.hub.inject(answered_404());
        host.hub.inject(shift_before_page_2(0, 1).times(10));
        match lease_call(&host, Operation::Revoke, &lease) {
            Err(EngineError::Upstream(u)) => {
                assert!(u.message.contains("kept changing"), "{}", u.message)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(host.keys(Bucket::Token), [uuid.as_str()]);
        host.hub.clear_faults();
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none());
    }

    #[test]
    fn a_token_list_counts_only_when_a_second_read_gives_the_same_tokens() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        assert!(host.hub.delete_token(&uuid));
        // The first read's pages add up; before the second read another client makes a
        // token. Docker promises no order, so only two equal reads show the list held still.
        let page_1 = |kind| Fault::on("GET", "/v2/access-tokens", kind).with_query("page=1");
        host.hub
            .inject(page_1(FaultKind::Latency(std::time::Duration::ZERO)));
        host.hub.inject(page_1(FaultKind::Churn {
            account: ACCOUNT.into(),
            delete_newest: 0,
            create: 1,
        }));
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.keys(Bucket::Token).is_empty());
        let logged = host.logs.borrow().join("\n");
        assert!(
            logged.contains("changed while it was read (a second read gave other tokens)"),
            "{logged}"
        );
        let listings = host
            .hub
            .calls()
            .iter()
            .filter(|c| c.method == "GET")
            .count();
        assert_eq!(listings, 4, "two reads, then two more that agree");
    }

    #[test]
    fn a_404_on_delete_for_a_token_still_listed_is_an_error_and_keeps_the_record() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        // Something at the Hub URL answers 404 without passing the DELETE on.
        host.hub.inject(Fault::on(
            "DELETE",
            "/v2/access-tokens/",
            FaultKind::Status(404),
        ));
        match lease_call(&host, Operation::Revoke, &lease) {
            Err(EngineError::Upstream(u)) => {
                assert_eq!(u.status, 404);
                assert!(u.message.contains("still lists"), "{}", u.message);
                assert!(u.message.contains(&uuid), "{}", u.message);
            }
            other => panic!("{other:?}"),
        }
        assert!(host.hub.token(&uuid).is_some());
        assert_eq!(host.keys(Bucket::Token), [uuid.as_str()]);
        // The host's next attempt gets through and deletes it.
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none());
        assert!(host.keys(Bucket::Token).is_empty());
    }

    #[test]
    fn a_delete_answered_with_a_status_docker_never_gives_counts_once_the_listing_agrees() {
        let host = TestHost::configured();
        // A proxy's login page instead of the Hub's 204: the token is still listed.
        let (uuid, lease) = issue(&host);
        host.hub.inject(Fault::on(
            "DELETE",
            "/v2/access-tokens/",
            FaultKind::Answer(200, "<html>proxy login</html>".into()),
        ));
        match lease_call(&host, Operation::Revoke, &lease) {
            Err(EngineError::Upstream(u)) => {
                assert_eq!(u.status, 200);
                assert!(u.message.contains("still lists"), "{}", u.message);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(host.keys(Bucket::Token), [uuid.as_str()]);
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none());
        // A 200 from something that did pass the DELETE on: the listing agrees it is gone.
        let (uuid, lease) = issue(&host);
        host.hub.inject(Fault::on(
            "DELETE",
            "/v2/access-tokens/",
            FaultKind::StatusAfterProcessing(200),
        ));
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none());
        assert!(host.keys(Bucket::Token).is_empty());
    }

    #[test]
    fn a_listing_without_count_and_results_is_no_listing() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        for listing in [r#"{}"#, r#"{"results": []}"#, r#"{"count": 0}"#] {
            host.hub.inject(Fault::on(
                "DELETE",
                "/v2/access-tokens/",
                FaultKind::Status(404),
            ));
            host.hub.inject(Fault::on(
                "GET",
                "/v2/access-tokens",
                FaultKind::Answer(200, listing.into()),
            ));
            match lease_call(&host, Operation::Revoke, &lease) {
                Err(EngineError::Upstream(u)) => {
                    assert!(
                        u.message.contains("not a token list"),
                        "{listing}: {}",
                        u.message
                    );
                }
                other => panic!("{listing}: {other:?}"),
            }
            assert_eq!(host.keys(Bucket::Token), [uuid.as_str()], "{listing}");
            assert!(host.hub.token(&uuid).is_some());
        }
    }

    fn delete_statuses(host: &TestHost) -> Vec<u16> {
        host.hub
            .calls()
            .iter()
            .filter(|c| c.method == "DELETE")
            .map(|c| c.status)
            .collect()
    }

    const ATTEMPTS: usize = crate::hub::RETRY_BACKOFF.len() + 1;

    #[test]
    fn a_flaky_delete_is_sent_again_within_the_call() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        host.hub.inject(Fault::on(
            "DELETE",
            "/v2/access-tokens/",
            FaultKind::Status(503),
        ));
        host.hub
            .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Drop));
        host.hub.inject(Fault::on(
            "DELETE",
            "/v2/access-tokens/",
            FaultKind::Status(500),
        ));
        let started = std::time::Instant::now();
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none());
        assert_eq!(delete_statuses(&host), [503, 0, 500, 204]);
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(1750),
            "backs off: {waited:?}"
        );
        assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn a_delete_that_keeps_failing_is_an_error_and_keeps_the_record_for_the_retry() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        host.hub.inject(
            Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(503)).times(ATTEMPTS),
        );
        match lease_call(&host, Operation::Revoke, &lease) {
            Err(EngineError::Upstream(u)) => assert_eq!(u.status, 503),
            other => panic!("{other:?}"),
        }
        assert_eq!(delete_statuses(&host), [503; ATTEMPTS]);
        assert_eq!(host.keys(Bucket::Token), [uuid.as_str()]);
        host.hub
            .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Drop).times(ATTEMPTS));
        match lease_call(&host, Operation::Revoke, &lease) {
            Err(EngineError::Upstream(u)) => {
                assert_eq!(u.status, 0);
                assert!(u.message.contains("without an answer"), "{}", u.message);
            }
            other => panic!("{other:?}"),
        }
        lease_call(&host, Operation::Revoke, &lease).unwrap();
        assert!(host.hub.token(&uuid).is_none());
    }

    #[test]
    fn no_new_attempt_starts_after_the_retry_window() {
        let host = TestHost::configured();
        let (_, lease) = issue(&host);
        host.hub.inject(
            Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(502)).times(ATTEMPTS),
        );
        // Every request takes 3 s of the engine's clock: the 3rd would start past the window.
        host.seconds_per_request.set(3);
        assert!(lease_call(&host, Operation::Revoke, &lease).is_err());
        assert_eq!(delete_statuses(&host), [502, 502]);
    }

    #[test]
    fn listings_and_logins_are_sent_again_but_a_creation_never() {
        let host = TestHost::configured();
        host.hub
            .inject(Fault::on("POST", "/v2/auth/token", FaultKind::Status(502)));
        host.issue(json!({}));
        assert_eq!(host.hub.login_count(), 1);
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::Status(503),
        ));
        host.hub.inject(Fault::on(
            "GET",
            "/v2/access-tokens",
            FaultKind::Status(503),
        ));
        assert!(
            host.call(Operation::Update, "token/hoeg/hoeg", json!({}))
                .is_err()
        );
        let calls: Vec<(String, u16)> = host
            .hub
            .calls()
            .into_iter()
            .filter(|c| c.path.starts_with("/v2/access-tokens"))
            .map(|c| (c.method, c.status))
            .collect();
        let posts: Vec<u16> = calls
            .iter()
            .filter(|(m, _)| m == "POST")
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(posts, [201, 503], "the failed creation was not sent again");
        let gets: Vec<u16> = calls
            .iter()
            .filter(|(m, _)| m == "GET")
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(
            gets,
            [503, 200, 200],
            "the settling listing was, read twice"
        );
    }

    #[test]
    fn a_rate_limited_revoke_is_reported_at_once_for_the_host_to_pace() {
        let host = TestHost::configured();
        let (uuid, lease) = issue(&host);
        host.hub.inject(Fault::on(
            "DELETE",
            "/v2/access-tokens/",
            FaultKind::RateLimited { retry_after: 3 },
        ));
        let started = std::time::Instant::now();
        match lease_call(&host, Operation::Revoke, &lease) {
            Err(EngineError::Upstream(u)) => assert_eq!((u.status, u.retry_after), (429, Some(3))),
            other => panic!("{other:?}"),
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "no wait in the engine"
        );
        assert_eq!(delete_statuses(&host), [429], "a 429 is not sent again");
        assert_eq!(
            host.keys(Bucket::Token),
            [uuid.as_str()],
            "kept for the retry"
        );
        lease_call(&host, Operation::Revoke, &lease).unwrap();
    }

    #[test]
    fn renew_extends_within_max_ttl_without_a_hub_call() {
        let host = TestHost::configured();
        let (uuid, mut lease) = issue(&host);
        host.hub.clear_calls();
        host.advance(200);
        let renewed = lease_call(&host, Operation::Renew, &lease).unwrap();
        let new_lease = renewed.lease.unwrap();
        assert_eq!((new_lease.ttl, new_lease.max_ttl), (300, 3600));
        assert_eq!(new_lease.internal_data, lease.internal_data);
        assert!(host.hub.calls().is_empty());
        let record = TokenRecord::load(&host, &uuid).unwrap().unwrap();
        assert_eq!(record.lease_expires_at, host.now() + 300);

        lease.increment = 1800;
        host.advance(3000);
        let capped = lease_call(&host, Operation::Renew, &lease).unwrap();
        let capped_ttl = capped.lease.unwrap().ttl;
        assert!((399..=400).contains(&capped_ttl), "{capped_ttl}");
        assert!(
            capped.warnings[0].starts_with(&format!(
                "TTL of 30m0s exceeded the effective max_ttl of {}; ",
                crate::duration::format(capped_ttl)
            )),
            "{:?}",
            capped.warnings
        );

        host.advance(400);
        let refused = lease_call(&host, Operation::Renew, &lease);
        assert!(matches!(refused, Err(EngineError::InvalidRequest(m)) if m.contains("max_ttl")));
    }

    #[test]
    fn renew_respects_a_lowered_mount_limit() {
        let host = TestHost::configured();
        let (_, lease) = issue(&host);
        let mut request = Request::new(Operation::Renew, "token/hoeg/my-organization");
        request.lease = Some(lease);
        host.max_lease_ttl.set(Some(120));
        let lease = crate::backend::handle(&host, &request)
            .unwrap()
            .lease
            .unwrap();
        assert!(lease.ttl <= 120 && lease.max_ttl == 120, "{lease:?}");
    }

    #[test]
    fn records_written_before_the_hub_expiry_could_be_none_still_read() {
        let old = r#"{"account":"hoeg","namespace":"hoeg","label":"l","scope":"repo:read",
            "token_label":"dockerhub-secrets:l:1","issued_at":1,"ttl":2,"max_ttl":3,
            "lease_expires_at":3,"hub_expires_at":3603}"#;
        let record: TokenRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.hub_expires_at, Some(3603));
    }

    #[test]
    fn lease_calls_without_engine_data_are_refused() {
        let host = TestHost::configured();
        let lease = LeaseState {
            internal_data: "{\"something\": \"else\"}".into(),
            issue_time: 0,
            ttl: 1,
            increment: 0,
        };
        assert!(matches!(
            lease_call(&host, Operation::Revoke, &lease),
            Err(EngineError::InvalidRequest(_))
        ));
        let no_lease = Request::new(Operation::Renew, "token/hoeg/hoeg");
        assert!(crate::backend::handle(&host, &no_lease).is_err());
    }
}
