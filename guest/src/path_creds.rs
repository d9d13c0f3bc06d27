//! `creds/<role>`: issue a Docker Hub organization access token (OAT) for a role, under a
//! lease. The token reaches only the role's repositories, with the role's permissions;
//! revoking the lease (or its expiry) deletes it at Docker Hub, never merely deactivates it,
//! since an organization's deactivated and expired tokens count against its limit until they
//! are deleted.
//!
//! The organization's limit is checked before the token is created: first against the
//! tokens this engine holds for the organization (no Hub call), then against the
//! organization's own count at the Hub (one listing request), which also counts tokens made by
//! hand or by other tools. A creation the Hub refuses while the organization is full gets the
//! same answer.

use crate::api::{EngineError, Field, FieldKind, Operation, PathHelp, Request, Response};
use crate::capabilities::Host;
use crate::fields::FieldData;
use crate::hub::Grant;
use crate::issue::{self, Issue, Quota};
use crate::mount;
use crate::names;
use crate::path_config::AccountConfig;
use crate::path_role::Role;
use crate::rollback;
use crate::secret_token::{Holder, TokenRecord, live_count};
use serde_json::Value;

pub static FIELDS: &[Field] = &[
    Field {
        name: "role",
        kind: FieldKind::String,
        description: "The role to issue a token for; from the path.",
        default: None,
        required: true,
        sensitive: false,
    },
    issue::LABEL_FIELD,
    Field {
        name: "ttl",
        kind: FieldKind::Duration,
        description: "The lease duration; at most the role's max_ttl. Defaults to the role's \
                      ttl.",
        default: None,
        required: false,
        sensitive: false,
    },
];

pub fn help() -> Vec<PathHelp> {
    vec![PathHelp {
        pattern: r"creds/(?P<role>[^/]+)$",
        operations: vec![Operation::Create, Operation::Update, Operation::Read],
        existence_check: false,
        synopsis: "Issue a short-lived Docker Hub organization access token for a role.",
        description: "Creates an organization access token that reaches only the role's \
                      repositories, under a lease: revoking the lease (or its expiry) deletes \
                      the token at Docker Hub. Log in with the organization as the username \
                      (`docker login -u <username> --password-stdin`); the answer also carries \
                      auth, registry and docker_config, as token/ does. Write to it, or read it \
                      for tools that can only read.",
        fields: FIELDS.to_vec(),
    }]
}

pub fn handle(host: &dyn Host, role: &str, request: &Request) -> Result<Response, EngineError> {
    match request.operation {
        Operation::Create | Operation::Update | Operation::Read => issue(host, role, request),
        op => Err(EngineError::UnsupportedOperation(format!(
            "creds/{role} does not support {op:?}"
        ))),
    }
}

/// The refusal for a full organization, in the words the issue asks for.
fn organization_full(organization: &str, held: u64, limit: u64, role: &str) -> EngineError {
    EngineError::invalid(format!(
        "organization {organization} holds {held} of {limit} access tokens (expired and \
         deactivated ones count until they are deleted): revoke leases, delete unused tokens \
         at Docker Hub, or raise organization_token_limit in roles/{role} if the \
         organization's plan allows more"
    ))
}

/// The refusal for an organization whose tokens and creations in progress reach the limit.
fn organization_filling(
    organization: &str,
    live: u64,
    in_progress: u64,
    limit: u64,
) -> EngineError {
    EngineError::invalid(format!(
        "organization {organization} holds {live} of {limit} access tokens, and {in_progress} \
         more are being created (expired and deactivated ones count until they are deleted): \
         retry once they are settled, revoke leases, or delete unused tokens at Docker Hub"
    ))
}

/// The limit of a Team organization, the smaller of the two plans that have access tokens.
const SMALLEST_PLAN_LIMIT: u64 = 10;

/// The refusal for an organization that Docker Hub says is full below the role's limit: the
/// role's `organization_token_limit` is more than the organization's plan allows.
fn organization_full_below_role(
    organization: &str,
    held: u64,
    limit: u64,
    role: &str,
) -> EngineError {
    EngineError::invalid(format!(
        "organization {organization} holds {held} of {held} access tokens, as many as Docker \
         Hub allows it (expired and deactivated ones count until they are deleted), fewer than \
         the organization_token_limit of {limit} in roles/{role}: revoke leases or delete \
         unused tokens at Docker Hub, and set organization_token_limit to the plan's limit \
         (10 on Team, 100 on Business)"
    ))
}

fn issue(host: &dyn Host, role_name: &str, request: &Request) -> Result<Response, EngineError> {
    names::check_role(role_name)?;
    let data = FieldData::parse(&request.data, FIELDS)?;
    let role = Role::load(host, role_name)?.ok_or_else(|| {
        EngineError::invalid(format!(
            "role {} does not exist: write roles/{role_name} first",
            names::quoted(role_name)
        ))
    })?;
    let account = role.account.as_str();
    let organization = role.organization.as_str();
    let config = AccountConfig::require(host, account)?;
    if !config.namespaces.iter().any(|n| n == organization) {
        return Err(EngineError::PermissionDenied(format!(
            "organization {organization} of role {role_name} is no longer a namespace of \
             account {account} (allowed: {})",
            config.namespaces.join(", ")
        )));
    }
    let mut warnings = data.unknown_field_warnings();
    let label = issue::label(host, &data, &config.label_template, request, &mut warnings)?;
    let (ttl, max_ttl) = issue::lease_ttls(
        host,
        data.duration("ttl")?,
        (role.ttl, role.max_ttl),
        &format!("role {role_name}"),
        &mut warnings,
    )?;

    let quota = Quota::max_live_tokens(
        Holder::Role(role_name),
        role.max_live_tokens,
        format!("role {role_name}"),
        format!("roles/{role_name}"),
    );
    quota.check(host, false)?;
    let limit = role.organization_token_limit;
    let holder = Holder::Organization(organization);
    let (live, in_progress) = (
        live_count(host, holder)? as u64,
        rollback::pending(host, holder)? as u64,
    );
    if live + in_progress >= limit {
        return Err(match in_progress {
            0 => organization_full(organization, live, limit, role_name),
            _ => organization_filling(organization, live, in_progress, limit),
        });
    }
    let hub = || config.hub(host, account).for_organization(organization);
    // The engine's own tokens (`live`, counted above) were counted before the Hub's total is
    // read: one recorded meanwhile then counts as another's, on the safe side.
    let at_hub = hub().token_total()?;
    if at_hub >= limit {
        return Err(organization_full(organization, at_hub, limit, role_name));
    }
    // The organization's limit is checked again once this creation's write-ahead record is
    // stored, with the engine's own tokens and creations counted afresh (so that requests
    // racing for the last places see each other) and the others' as the Hub counted them.
    let organization_limit = Quota {
        holder,
        max: limit,
        others: at_hub.saturating_sub(live),
        refusal: Box::new(move |held| organization_full(organization, held, limit, role_name)),
    };

    let resources = role.resources();
    let record = TokenRecord {
        account: account.to_string(),
        namespace: organization.to_string(),
        label: label.clone(),
        scope: String::new(),
        token_label: String::new(),
        issued_at: 0,
        ttl: 0,
        max_ttl: 0,
        lease_expires_at: 0,
        hub_expires_at: None,
        organization: Some(organization.to_string()),
        role: Some(role_name.to_string()),
    };
    let description = mount::token_description(&mount::tag(host)?, role_name);
    // The Hub refused the creation: when the organization is full, say so in the same words
    // as the check before it (the Hub's own words for it are not published). A 403 while the
    // organization holds at least the smallest plan's limit is the Hub's limit too, below
    // the role's: the account may manage the organization's tokens, it counted them just now.
    let refused = |refusal: EngineError| match &refusal {
        // The Hub's validation refused what the role asks for (a repository it does not
        // know): the role's mistake, a 400 that names the role.
        EngineError::Upstream(u) if u.status == 400 => EngineError::invalid(format!(
            "{}; check pull_repositories and push_repositories of roles/{role_name}",
            u.message
        )),
        EngineError::Upstream(u) if u.status != 429 => match hub().token_total() {
            Ok(held) if held >= limit => organization_full(organization, held, limit, role_name),
            Ok(held) if u.status == 403 && held >= SMALLEST_PLAN_LIMIT => {
                organization_full_below_role(organization, held, limit, role_name)
            }
            _ => refusal,
        },
        _ => refusal,
    };
    let minted = issue::mint(
        host,
        Issue {
            hub: hub(),
            record,
            grant: Grant::Resources {
                description: &description,
                resources: &resources,
            },
            ttl,
            max_ttl,
            quotas: vec![quota, organization_limit],
        },
        &refused,
        &mut warnings,
    )?;

    Ok(minted.response(
        "id",
        organization,
        label,
        vec![
            ("organization", Value::from(organization)),
            ("role", Value::from(role_name)),
            ("resources", resources),
        ],
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LeaseState;
    use crate::capabilities::Bucket;
    use crate::testing::{ORGANIZATION, TestHost};
    use fakehub::{Fault, FaultKind, OrgTokenResource};
    use serde_json::json;

    fn creds(host: &TestHost, data: Value) -> Result<Response, EngineError> {
        host.call(Operation::Update, "creds/app-pull", data)
    }

    fn invalid(result: Result<Response, EngineError>) -> String {
        match result {
            Err(EngineError::InvalidRequest(message)) => message,
            other => panic!("not a 400: {other:?}"),
        }
    }

    /// Fill the organization with tokens made by hand: one expired, one deactivated, the rest
    /// live.
    fn fill_by_hand(host: &TestHost, count: usize) {
        for n in 0..count {
            let token = host.hub.create_org_token_by_hand(
                ORGANIZATION,
                &format!("by-hand-{n}"),
                "",
                vec![OrgTokenResource::repo(
                    "my-organization/app",
                    &["scope-image-pull"],
                )],
                None,
            );
            match n {
                0 => assert!(host.hub.expire_org_token(&token.id)),
                1 => assert!(host.hub.deactivate_org_token(&token.id)),
                _ => {}
            }
        }
    }

    fn posts(host: &TestHost) -> usize {
        host.hub
            .calls()
            .iter()
            .filter(|c| c.method == "POST" && c.path.contains("/access-tokens"))
            .count()
    }

    #[test]
    fn issues_an_organization_token_for_the_roles_repositories() {
        let host = TestHost::with_role();
        let response = host.issue_creds(json!({"label": "release-build"}));
        let data = response.data.unwrap();
        let token = data["token"].as_str().unwrap();
        assert!(token.starts_with("dckr_oat_"), "{token}");
        assert_eq!(data["username"], ORGANIZATION);
        assert_eq!(data["organization"], ORGANIZATION);
        assert_eq!(data["role"], "app-pull");
        assert_eq!(data["label"], "release-build");
        assert_eq!(
            data["resources"],
            json!([{"type": "TYPE_REPO", "path": "my-organization/app",
                    "scopes": ["scope-image-pull"]}])
        );
        let lease = response.lease.unwrap();
        assert_eq!(
            (lease.ttl, lease.max_ttl, lease.renewable),
            (300, 3600, true)
        );
        assert!(!lease.internal_data.contains(token));

        let id = data["id"].as_str().unwrap();
        let at_hub = host.hub.org_token(id).expect("the token exists at the Hub");
        assert_eq!(at_hub.org, ORGANIZATION);
        assert_eq!(at_hub.token, token);
        assert!(at_hub.is_active);
        assert!(
            at_hub.label.starts_with("dockerhub-secrets:release-build:"),
            "{}",
            at_hub.label
        );
        assert_eq!(
            at_hub.description,
            format!(
                "dockerhub-secrets mount {}, role app-pull",
                crate::mount::tag(&host).unwrap()
            )
        );
        assert_eq!(
            at_hub.resources,
            [OrgTokenResource::repo(
                "my-organization/app",
                &["scope-image-pull"]
            )]
        );
        assert_eq!(at_hub.expires_at.as_deref(), data["expires_at"].as_str());
        assert_eq!(host.keys(Bucket::Token), [id]);
        assert!(host.keys(Bucket::Wal).is_empty());
        for bucket in [Bucket::Token, Bucket::Wal, Bucket::Role] {
            assert!(!host.stored_text(bucket).contains(token), "{bucket:?}");
        }
        assert_eq!(host.hub.live_tokens().len(), 0, "no personal token");
    }

    #[test]
    fn docker_config_logs_in_as_the_organization() {
        use base64::Engine as _;
        let host = TestHost::with_role();
        let data = host.issue_creds(json!({})).data.unwrap();
        let token = data["token"].as_str().unwrap();
        let config: Value = serde_json::from_str(data["docker_config"].as_str().unwrap()).unwrap();
        let auth = config["auths"]["https://index.docker.io/v1/"]["auth"]
            .as_str()
            .unwrap();
        assert_eq!(auth, data["auth"]);
        let pair = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap();
        assert_eq!(
            String::from_utf8(pair).unwrap(),
            format!("{ORGANIZATION}:{token}")
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let login = |identifier: &str| {
            agent
                .post(format!("{}/v2/auth/token", host.hub.url()))
                .header("content-type", "application/json")
                .send(json!({"identifier": identifier, "secret": token}).to_string())
                .unwrap()
                .status()
        };
        assert_eq!(login(ORGANIZATION), 200);
        assert_eq!(
            login("hoeg"),
            401,
            "an organization token is not the account's"
        );
    }

    #[test]
    fn push_repositories_get_pull_and_push_and_star_is_every_repository() {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "roles/release",
            json!({"account": "hoeg", "organization": ORGANIZATION,
                   "pull_repositories": "*", "push_repositories": "app"}),
        )
        .unwrap();
        let data = host
            .call(Operation::Update, "creds/release", json!({}))
            .unwrap()
            .data
            .unwrap();
        let at_hub = host.hub.org_token(data["id"].as_str().unwrap()).unwrap();
        assert_eq!(
            at_hub.resources,
            [
                OrgTokenResource::repo("my-organization/*", &["scope-image-pull"]),
                OrgTokenResource::repo(
                    "my-organization/app",
                    &["scope-image-pull", "scope-image-push"]
                ),
            ]
        );
    }

    fn lease_state(host: &TestHost, response: &Response, increment: u64) -> LeaseState {
        let lease = response.lease.as_ref().unwrap();
        LeaseState {
            internal_data: lease.internal_data.clone(),
            issue_time: host.now(),
            ttl: lease.ttl,
            increment,
        }
    }

    #[test]
    fn revoke_deletes_it_renew_extends_it() {
        let host = TestHost::with_role();
        let response = host.issue_creds(json!({}));
        let id = response.data.as_ref().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut renew = Request::new(Operation::Renew, "creds/app-pull");
        renew.lease = Some(lease_state(&host, &response, 1800));
        let renewed = crate::backend::handle(&host, &renew).unwrap();
        assert_eq!(renewed.lease.unwrap().ttl, 1800);
        assert!(host.hub.calls().iter().all(|c| c.method != "PATCH"));

        host.revoke(&response.lease.unwrap().internal_data).unwrap();
        assert!(
            host.hub.org_token(&id).is_none(),
            "deleted, not deactivated"
        );
        assert!(host.keys(Bucket::Token).is_empty());
    }

    #[test]
    fn a_token_expired_at_the_hub_is_still_deleted_it_counts_against_the_limit() {
        let host = TestHost::with_role();
        let response = host.issue_creds(json!({}));
        let id = response.data.as_ref().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(host.hub.expire_org_token(&id));
        host.advance(3700);
        host.call(Operation::Rollback, "", json!({})).unwrap();
        assert!(host.hub.org_token(&id).is_none());
        assert!(host.keys(Bucket::Token).is_empty());
    }

    #[test]
    fn a_full_organization_is_refused_before_the_creation() {
        let host = TestHost::with_role();
        // Ten by hand, an expired and a deactivated one among them: the Team plan's limit.
        fill_by_hand(&host, 10);
        host.hub.clear_calls();
        assert_eq!(
            invalid(creds(&host, json!({}))),
            "organization my-organization holds 10 of 10 access tokens (expired and deactivated \
             ones count until they are deleted): revoke leases, delete unused tokens at Docker \
             Hub, or raise organization_token_limit in roles/app-pull if the organization's \
             plan allows more"
        );
        assert_eq!(posts(&host), 0, "no creation sent");
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn the_engines_own_tokens_fill_the_organization_without_a_hub_call() {
        let host = TestHost::with_role();
        host.call(
            Operation::Update,
            "roles/app-pull",
            json!({"organization_token_limit": 2}),
        )
        .unwrap();
        host.issue_creds(json!({}));
        host.issue_creds(json!({}));
        host.hub.clear_calls();
        let refused = invalid(creds(&host, json!({})));
        assert!(
            refused.starts_with("organization my-organization holds 2 of 2 access tokens"),
            "{refused}"
        );
        assert!(host.hub.calls().is_empty(), "no Hub call at all");
    }

    #[test]
    fn creations_in_progress_count_against_the_organizations_limit() {
        let host = TestHost::with_role();
        host.call(
            Operation::Update,
            "roles/app-pull",
            json!({"organization_token_limit": 2}),
        )
        .unwrap();
        host.issue_creds(json!({}));
        // A creation whose answer was lost and could not be settled yet.
        host.hub.inject(Fault::on(
            "POST",
            "/v2/orgs/my-organization/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        host.hub.inject(
            Fault::on(
                "GET",
                "/v2/orgs/my-organization/access-tokens",
                FaultKind::Status(500),
            )
            .with_query("page_size=100")
            .times(20),
        );
        creds(&host, json!({})).unwrap_err();
        host.hub.clear_faults();
        assert_eq!(
            invalid(creds(&host, json!({}))),
            "organization my-organization holds 1 of 2 access tokens, and 1 more are being \
             created (expired and deactivated ones count until they are deleted): retry once \
             they are settled, revoke leases, or delete unused tokens at Docker Hub"
        );
    }

    #[test]
    fn the_hubs_refusal_of_a_full_organization_gets_the_same_answer() {
        let host = TestHost::with_role();
        fill_by_hand(&host, 10);
        // The count read before the creation is stale (another client made the tenth token
        // since): the Hub itself refuses the creation.
        host.hub.inject(Fault::on(
            "GET",
            "/v2/orgs/my-organization/access-tokens",
            FaultKind::Answer(
                200,
                r#"{"total": 9, "next": null, "previous": null, "results": []}"#.into(),
            ),
        ));
        let refused = invalid(creds(&host, json!({})));
        assert!(
            refused.starts_with("organization my-organization holds 10 of 10 access tokens"),
            "{refused}"
        );
        assert_eq!(posts(&host), 1, "the Hub refused the one creation");
        // A role that allows more than the plan: the Hub's refusal names the Hub's limit.
        let host = TestHost::with_role();
        host.call(
            Operation::Update,
            "roles/app-pull",
            json!({"organization_token_limit": 100}),
        )
        .unwrap();
        fill_by_hand(&host, 10);
        let refused = invalid(creds(&host, json!({})));
        assert!(
            refused.starts_with(
                "organization my-organization holds 10 of 10 access tokens, as many as Docker Hub \
                 allows it"
            ) && refused.contains("organization_token_limit of 100 in roles/app-pull"),
            "{refused}"
        );
        // Another refusal (the account is no owner any more) keeps the Hub's words.
        let host = TestHost::with_role();
        host.hub.inject(Fault::on(
            "POST",
            "/v2/orgs/my-organization/access-tokens",
            FaultKind::Status(403),
        ));
        match creds(&host, json!({})) {
            Err(EngineError::Upstream(u)) => {
                assert_eq!(u.status, 403);
                assert!(
                    u.message.starts_with(
                        "Docker Hub refused to create an organization access token: HTTP 403"
                    ),
                    "{}",
                    u.message
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_roles_quota_counts_only_its_own_tokens() {
        let host = TestHost::with_role();
        host.call(
            Operation::Update,
            "roles/app-pull",
            json!({"max_live_tokens": 1}),
        )
        .unwrap();
        host.issue_creds(json!({}));
        // The account's personal tokens do not count against the role's quota.
        host.issue(json!({}));
        host.hub.clear_calls();
        assert_eq!(
            invalid(creds(&host, json!({}))),
            "role app-pull holds 1 live token(s) (creations in progress included), its quota \
             max_live_tokens=1: revoke a lease or wait for one to end, or raise max_live_tokens \
             in roles/app-pull"
        );
        assert!(host.hub.calls().is_empty());
        // Nor do the role's organization tokens count against the account's quota.
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"max_live_tokens": 2}),
        )
        .unwrap();
        host.issue(json!({}));
    }

    #[test]
    fn a_lost_answer_is_settled_in_the_organizations_list() {
        let host = TestHost::with_role();
        host.hub.inject(Fault::on(
            "POST",
            "/v2/orgs/my-organization/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        let error = creds(&host, json!({})).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the token it had created was found and deleted"),
            "{error}"
        );
        assert!(host.hub.org_tokens(ORGANIZATION).is_empty());
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn an_interrupted_creation_is_found_by_rollback_in_the_organizations_list() {
        let host = TestHost::with_role();
        host.hub.inject(Fault::on(
            "POST",
            "/v2/orgs/my-organization/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        // The listing that would settle it in the call fails; the count before the creation
        // (one token a page) goes through.
        host.hub.inject(
            Fault::on(
                "GET",
                "/v2/orgs/my-organization/access-tokens",
                FaultKind::Status(500),
            )
            .with_query("page_size=100")
            .times(20),
        );
        creds(&host, json!({})).unwrap_err();
        assert_eq!(host.hub.org_tokens(ORGANIZATION).len(), 1);
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
        host.hub.clear_faults();
        host.call(Operation::Rollback, "", json!({"immediate": true}))
            .unwrap();
        assert!(host.hub.org_tokens(ORGANIZATION).is_empty());
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn an_owner_with_a_second_factor_manages_the_organizations_tokens() {
        let host = TestHost::new();
        host.call(
            Operation::Update,
            "config/otp-owner",
            json!({"namespace": "otp-org", "password": "otp password",
                   "totp_secret": crate::testing::OTP_SEED}),
        )
        .unwrap();
        host.call(
            Operation::Update,
            "roles/otp",
            json!({"account": "otp-owner", "organization": "otp-org", "pull_repositories": "app"}),
        )
        .unwrap();
        let response = host
            .call(Operation::Update, "creds/otp", json!({}))
            .unwrap();
        let id = response.data.as_ref().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(host.hub.org_token(&id).unwrap().org, "otp-org");
        host.revoke(&response.lease.unwrap().internal_data).unwrap();
        assert!(host.hub.org_token(&id).is_none());
    }

    #[test]
    fn a_repository_the_hub_does_not_know_is_the_roles_400() {
        let host = TestHost::with_role();
        host.call(
            Operation::Update,
            "roles/app-pull",
            json!({"pull_repositories": "nosuchrepo"}),
        )
        .unwrap();
        let message = invalid(creds(&host, json!({})));
        assert!(
            message
                .starts_with("Docker Hub refused to create an organization access token: HTTP 400")
                && message
                    .ends_with("; check pull_repositories and push_repositories of roles/app-pull"),
            "{message}"
        );
        assert!(host.keys(Bucket::Token).is_empty());
    }

    #[test]
    fn an_unknown_role_or_a_namespace_removed_is_refused_before_the_hub() {
        let host = TestHost::with_role();
        assert_eq!(
            invalid(host.call(Operation::Update, "creds/nope", json!({}))),
            "role \"nope\" does not exist: write roles/nope first"
        );
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg"}),
        )
        .unwrap();
        host.hub.clear_calls();
        assert!(matches!(
            creds(&host, json!({})),
            Err(EngineError::PermissionDenied(_))
        ));
        assert!(host.hub.calls().is_empty());
    }
}
