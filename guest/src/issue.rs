//! Issuing a token under a lease, for every path that issues one (`token/...` makes personal
//! access tokens, `creds/...` organization access tokens): the lease's TTLs, the label, the
//! quota, and the creation itself.
//!
//! No orphans: a write-ahead record exists before the Hub is asked to create the token and
//! until the token is recorded; when the Hub's answer is lost, this call looks the token up
//! by its label and deletes it, and rollback does so for a call that could not. The token's
//! own Hub expiry is asked for at the lease's max_ttl, so the Hub kills it even if every
//! revocation fails; the lease never ends after the expiry the Hub actually granted.

use crate::api::{EngineError, Field, FieldKind, Lease, Request, Response, UpstreamError};
use crate::capabilities::{Host, Level};
use crate::docker_login;
use crate::duration;
use crate::fields::FieldData;
use crate::hub::{CreateFailure, Grant, Hub, rfc3339};
use crate::label_template;
use crate::names;
use crate::rollback::{self, PendingCreation, Settled};
use crate::secret_token::{Holder, LeaseData, TokenRecord, live_count};
use serde_json::{Map, Value};
use std::time::Duration;

/// Seconds added to the expiry asked of the Hub beyond the longest lease: the engine's clock
/// reads whole seconds, and the lease starts when the host records it, after the Hub answered.
/// With this slack the lease keeps its full max_ttl unless the Hub took over a second; the
/// token dies at most this long after the longest lease could end.
pub const HUB_EXPIRY_SLACK: u64 = 2;

/// How often a creation refused only for others' creations in progress counts again, after a
/// random wait of 50 to 300 ms each time.
const CONTENTION_TRIES: u32 = 4;

/// The label of a token: the request's `label`, else the account's label template rendered for
/// the requester, else the requester's display name (see [`label_template`]). `label=`
/// (empty) asks for the default, so that a write with nothing else to say needs no `-force`
/// in the CLI. A fallback adds its warning to `warnings`.
pub fn label(
    host: &dyn Host,
    data: &FieldData,
    template: &str,
    request: &Request,
    warnings: &mut Vec<String>,
) -> Result<String, EngineError> {
    match data.string("label")?.filter(|label| !label.is_empty()) {
        Some(label) => {
            names::check_label(&label)?;
            Ok(label)
        }
        None => {
            let (label, fell_back) = label_template::default_label(host, template, request)?;
            warnings.extend(fell_back);
            Ok(label)
        }
    }
}

/// The lease's TTL and max TTL for a request asking for `requested` (`None` or 0: the
/// default), under `default_ttl` and `max_ttl` of `owner` (`account hoeg`, `role app-pull`).
/// A TTL over the owner's max is a 400; the host's own limit (a mount's max lease TTL, or in
/// `serve` also the time the requesting login token has left) wins over the owner's, with a
/// warning when it cuts the TTL: the token must not outlive the longest lease the host keeps.
pub fn lease_ttls(
    host: &dyn Host,
    requested: Option<u64>,
    (default_ttl, max_ttl): (u64, u64),
    owner: &str,
    warnings: &mut Vec<String>,
) -> Result<(u64, u64), EngineError> {
    let ttl = match requested {
        None | Some(0) => default_ttl,
        Some(ttl) if ttl > max_ttl => {
            return Err(EngineError::invalid(format!(
                "ttl {} exceeds the max_ttl of {owner} ({})",
                duration::format(ttl),
                duration::format(max_ttl)
            )));
        }
        Some(ttl) => ttl,
    };
    let max_ttl = match host.max_lease_ttl() {
        Some(limit) if limit > 0 && limit < max_ttl => limit,
        _ => max_ttl,
    };
    if ttl > max_ttl {
        warnings.push(format!(
            "ttl of {} exceeds the longest lease the host allows now, {} (the mount's max \
             lease TTL, or the time the requesting login token has left); capped",
            duration::format(ttl),
            duration::format(max_ttl)
        ));
        return Ok((max_ttl, max_ttl));
    }
    Ok((ttl, max_ttl))
}

/// A limit on live tokens: at most `max` tokens of `holder` (0: no limit), plus `others` that
/// count besides the engine's own (an organization's tokens made by hand or by other mounts,
/// as the Hub counted them). `refusal` words the refusal, given how many are held.
pub struct Quota<'a> {
    pub holder: Holder<'a>,
    pub max: u64,
    pub others: u64,
    pub refusal: Box<dyn Fn(u64) -> EngineError + 'a>,
}

impl<'a> Quota<'a> {
    /// A `max_live_tokens` quota of `what` (`account hoeg`), set in `where_set`
    /// (`config/hoeg`).
    pub fn max_live_tokens(holder: Holder<'a>, max: u64, what: String, where_set: String) -> Self {
        Quota {
            holder,
            max,
            others: 0,
            refusal: Box::new(move |held| {
                EngineError::invalid(format!(
                    "{what} holds {held} live token(s) (creations in progress included), its \
                     quota max_live_tokens={max}: revoke a lease or wait for one to end, or raise \
                     max_live_tokens in {where_set}"
                ))
            }),
        }
    }

    /// Whether the live tokens alone (and the others') leave a place: a refusal is then owed
    /// to creations in progress only.
    fn fits_without_creations(&self, host: &dyn Host) -> Result<bool, EngineError> {
        Ok(self.max == 0 || (live_count(host, self.holder)? as u64 + self.others) < self.max)
    }

    /// Refuse when the limit is reached. [`mint`] calls it once this creation's own
    /// write-ahead record is stored (`own_record_stored`), counting every such record: of two
    /// requests racing for the last place, the later to count sees the other's record, so
    /// the limit holds (under such a race both may be refused: the safe side). A path that
    /// calls the Hub before it mints checks first without its own record, so that a request
    /// over the limit makes no Hub call at all.
    pub fn check(&self, host: &dyn Host, own_record_stored: bool) -> Result<(), EngineError> {
        if self.max == 0 {
            return Ok(());
        }
        let held = live_count(host, self.holder)? + rollback::pending(host, self.holder)?;
        // This creation's own record is one of those pending.
        let held = held.saturating_sub(usize::from(own_record_stored)) as u64 + self.others;
        if held >= self.max {
            return Err((self.refusal)(held));
        }
        Ok(())
    }
}

/// One token to create, its request checked.
pub struct Issue<'a> {
    /// The client for the token's family (the account's own, or an organization's).
    pub hub: Hub<'a>,
    /// What the record keeps (its `issued_at`, TTLs and Hub fields are filled in here).
    pub record: TokenRecord,
    pub grant: Grant<'a>,
    pub ttl: u64,
    pub max_ttl: u64,
    pub quotas: Vec<Quota<'a>>,
}

/// The `label` field of a path that issues tokens.
pub const LABEL_FIELD: Field = Field {
    name: "label",
    kind: FieldKind::String,
    description: "Shown in the token's label in Docker Hub's UI, to tell who uses it \
                  (1-64 characters, no control characters, no space at either end; \
                  acme/app is a label). Empty or unset: the account's label_template \
                  rendered for the requester, else the requester's display name.",
    default: None,
    required: false,
    sensitive: false,
};

/// A token created and recorded.
pub struct Minted {
    pub uuid: String,
    /// The secret, for the caller's answer only.
    pub token: String,
    pub expires_at: Option<u64>,
    pub lease: Lease,
}

impl Minted {
    /// The answer to the request: the token, its id at the Hub as `id_field` (a personal
    /// token's `uuid`, an organization token's `id`), `username` (who logs in with it),
    /// `label`, `expires_at`, the fields for `docker login` (see [`docker_login`]), then
    /// `fields`; with the lease and `warnings`.
    pub fn response(
        self,
        id_field: &str,
        username: &str,
        label: String,
        fields: Vec<(&str, Value)>,
        warnings: Vec<String>,
    ) -> Response {
        let mut out = Map::new();
        docker_login::add_fields(&mut out, username, &self.token);
        out.insert("token".into(), Value::from(self.token));
        out.insert(id_field.into(), Value::from(self.uuid));
        out.insert("username".into(), Value::from(username));
        out.insert("label".into(), Value::from(label));
        out.insert(
            "expires_at".into(),
            self.expires_at
                .map(rfc3339)
                .map_or(Value::Null, Value::from),
        );
        for (name, value) in fields {
            out.insert(name.into(), value);
        }
        Response {
            data: Some(out),
            lease: Some(self.lease),
            warnings,
        }
    }
}

/// Create the token at the Hub and record it. `refused` turns the Hub's refusal of the
/// creation into the error the caller gets (an organization's limit, in its words).
pub fn mint(
    host: &dyn Host,
    issue: Issue,
    refused: &dyn Fn(EngineError) -> EngineError,
    warnings: &mut Vec<String>,
) -> Result<Minted, EngineError> {
    let Issue {
        hub,
        mut record,
        grant,
        ttl,
        max_ttl,
        quotas,
    } = issue;
    let requested_expiry = host.now() + max_ttl + HUB_EXPIRY_SLACK;
    let organization = record.organization.as_deref().zip(record.role.as_deref());
    let mut tries = 0;
    let pending = loop {
        let pending = PendingCreation::begin(host, &record.account, organization, &record.label)?;
        let Err(refusal) = quotas.iter().try_for_each(|q| q.check(host, true)) else {
            break pending;
        };
        pending.abandon(host);
        // Requests racing for the last places count each other's creations in progress and
        // may all be refused. When only such creations stand in the way (they settle within
        // moments, recorded or refused), wait a random moment and count again.
        let wait = Duration::from_millis(50 + host.random_u64() % 250);
        let contended = quotas
            .iter()
            .map(|q| q.fits_without_creations(host))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .all(|fits| fits);
        let time_allows = host
            .time_left()
            .is_none_or(|left| left >= wait + Duration::from_secs(5));
        if tries >= CONTENTION_TRIES || !contended || !time_allows {
            return Err(refusal);
        }
        tries += 1;
        host.sleep(wait);
    };
    let created = match hub.create_token(&pending.token_label, &grant, requested_expiry) {
        Ok(created) => created,
        Err(CreateFailure::NotCreated(e)) => {
            pending.abandon(host);
            return Err(e);
        }
        Err(CreateFailure::Refused(e)) => {
            pending.check_once(host);
            return Err(refused(e));
        }
        Err(CreateFailure::Unknown(e)) => return Err(settle(host, &hub, &pending, e)),
    };

    let now = host.now();
    // The lease starts when the host records it, a moment after `now`, which the clock
    // reports up to a second late: a second off the Hub's expiry keeps the lease inside it.
    let hub_left = created.expires_at.map(|at| at.saturating_sub(now + 1));
    let lease_max = match hub_left {
        Some(0) => {
            let expiry = created.expires_at.map(rfc3339).unwrap_or_default();
            return Err(discard(
                host,
                &hub,
                &pending,
                &created.uuid,
                EngineError::Upstream(UpstreamError {
                    status: 201,
                    message: format!(
                        "Docker Hub created the token with an expiry of {expiry}, which leaves \
                         no time for a lease; the token was deleted again"
                    ),
                    retry_after: None,
                }),
            ));
        }
        Some(left) if left < max_ttl => {
            if created.expires_at < Some(requested_expiry - HUB_EXPIRY_SLACK) {
                warnings.push(format!(
                    "Docker Hub expires this token at {}, earlier than the {} asked for; the \
                     lease ends by then and cannot be renewed beyond it",
                    created.expires_at.map(rfc3339).unwrap_or_default(),
                    duration::format(max_ttl)
                ));
            }
            left
        }
        Some(_) => max_ttl,
        None => {
            warnings.push(format!(
                "Docker Hub's answer gives token {} no expiry (none, or none the engine can \
                 read): it lives until it is revoked, so keep its lease (or the engine's \
                 rollback) able to revoke it",
                created.uuid
            ));
            max_ttl
        }
    };
    let ttl = ttl.min(lease_max);
    record.token_label = pending.token_label.clone();
    record.issued_at = now;
    record.ttl = ttl;
    record.max_ttl = lease_max;
    record.lease_expires_at = now + ttl;
    record.hub_expires_at = created.expires_at;
    if let Err(e) = record.save(host, &created.uuid) {
        return Err(discard(host, &hub, &pending, &created.uuid, e));
    }
    if created.resent {
        // An attempt before this one was refused, and may have made a token with the same
        // label; rollback deletes any that has no record (this one has).
        pending.check_once(host);
    } else {
        pending.finish(host);
    }
    let whose = match &record.organization {
        Some(organization) => format!("organization {organization}"),
        None => format!("namespace {}", record.namespace),
    };
    let what = match &record.role {
        Some(role) => format!("role {role}"),
        None => format!("scope {}", record.scope),
    };
    host.log(
        Level::Info,
        "token",
        &format!(
            // The label quoted: it may hold a claim, which must not read as more of the line.
            "issued token {} (label {:?}) for {whose}, {what}, ttl {}",
            created.uuid,
            pending.token_label,
            duration::format(ttl)
        ),
    );
    let internal = LeaseData {
        account: record.account.clone(),
        uuid: created.uuid.clone(),
    };
    Ok(Minted {
        uuid: created.uuid,
        token: created.token,
        expires_at: created.expires_at,
        lease: Lease {
            ttl,
            max_ttl: lease_max,
            renewable: true,
            internal_data: internal.to_json(),
        },
    })
}

/// A token the engine cannot keep (unrecordable, or dead on arrival) must not live on: delete
/// it again. If that fails too, the write-ahead record still leads rollback to it.
fn discard(
    host: &dyn Host,
    hub: &Hub,
    pending: &PendingCreation,
    uuid: &str,
    error: EngineError,
) -> EngineError {
    if hub.delete_token(uuid).is_ok() {
        pending.abandon(host);
    }
    error
}

/// The Hub's answer to the creation was lost (`cause`): settle it now, and say in an
/// operator's words what happened and what to do.
fn settle(
    host: &dyn Host,
    hub: &Hub,
    pending: &PendingCreation,
    cause: EngineError,
) -> EngineError {
    let EngineError::Upstream(cause) = cause else {
        return cause;
    };
    let what = match cause.status {
        0 => "Docker Hub did not answer the token creation".to_string(),
        200..=299 => "Docker Hub's answer to the token creation was unusable".to_string(),
        status => format!(
            "Docker Hub failed the token creation with HTTP {status} after it may have created \
             the token"
        ),
    };
    let outcome = pending.settle(host, hub);
    host.log(
        Level::Warn,
        "token",
        &format!("{what} ({}): {outcome}", pending.token_label),
    );
    let message = match outcome {
        Settled::Deleted => format!(
            "{what}; the token it had created was found and deleted. No token was issued: \
             retry the request"
        ),
        Settled::NotFound => format!(
            "{what}, and lists no such token. No token was issued: retry the request. Should \
             Docker Hub still create it, the engine's rollback deletes it"
        ),
        Settled::Failed(e) => format!(
            "{what}, and looking for the token it may have created failed too ({e}). No token \
             was issued: retry the request; the engine's rollback deletes that token once \
             Docker Hub answers"
        ),
    };
    EngineError::Upstream(UpstreamError {
        status: cause.status,
        message,
        retry_after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ORGANIZATION, TestHost};

    #[test]
    fn a_limit_counts_creations_in_progress_and_the_others_tokens() {
        let host = TestHost::with_role();
        let holder = Holder::Organization(ORGANIZATION);
        let limit = |max: u64| Quota {
            holder,
            max,
            others: 1,
            refusal: Box::new(|held| EngineError::invalid(format!("full at {held}"))),
        };
        // Two requests racing: each has stored its write-ahead record before it counts.
        for _ in 0..2 {
            PendingCreation::begin(&host, "hoeg", Some((ORGANIZATION, "app-pull")), "racing")
                .unwrap();
        }
        // Each sees the other's record, and the Hub's token made by hand.
        assert_eq!(
            limit(2).check(&host, true),
            Err(EngineError::invalid("full at 2"))
        );
        assert_eq!(limit(3).check(&host, true), Ok(()));
        // Before its own record is stored, a request counts every record it sees.
        assert_eq!(
            limit(3).check(&host, false),
            Err(EngineError::invalid("full at 3"))
        );
        // Another holder's records do not count.
        let personal = Quota {
            holder: Holder::Personal("hoeg"),
            max: 1,
            others: 0,
            refusal: Box::new(|held| EngineError::invalid(format!("full at {held}"))),
        };
        assert_eq!(personal.check(&host, false), Ok(()));
    }

    #[test]
    fn a_request_refused_only_for_a_creation_in_progress_counts_again() {
        use crate::capabilities::Bucket;
        let host = TestHost::configured();
        host.call(
            crate::api::Operation::Update,
            "config/hoeg",
            serde_json::json!({"max_live_tokens": 1}),
        )
        .unwrap();
        // Another request's creation is in progress; it is refused (its record goes) while
        // this one waits.
        PendingCreation::begin(&host, "hoeg", None, "racing").unwrap();
        *host.on_sleep.borrow_mut() = Some(Box::new(|host: &TestHost| {
            for key in host.keys(Bucket::Wal) {
                host.delete(Bucket::Wal, &key).unwrap();
            }
        }));
        host.issue(serde_json::json!({}));
        assert_eq!(host.sleeps.get(), 1);

        // A creation that stays in progress: four more counts, then the refusal.
        *host.on_sleep.borrow_mut() = None;
        host.call(
            crate::api::Operation::Update,
            "config/hoeg",
            serde_json::json!({"max_live_tokens": 2}),
        )
        .unwrap();
        PendingCreation::begin(&host, "hoeg", None, "stuck").unwrap();
        host.sleeps.set(0);
        let refused = host
            .call(
                crate::api::Operation::Update,
                "token/hoeg/hoeg",
                serde_json::json!({}),
            )
            .unwrap_err();
        assert!(
            refused.to_string().contains("max_live_tokens=2"),
            "{refused}"
        );
        assert_eq!(host.sleeps.get(), CONTENTION_TRIES);

        // A quota full of live tokens is refused at once.
        host.sleeps.set(0);
        for key in host.keys(Bucket::Wal) {
            host.delete(Bucket::Wal, &key).unwrap();
        }
        host.issue(serde_json::json!({}));
        host.call(
            crate::api::Operation::Update,
            "token/hoeg/hoeg",
            serde_json::json!({}),
        )
        .unwrap_err();
        assert_eq!(host.sleeps.get(), 0);
    }
}
