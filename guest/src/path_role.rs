//! `roles/<role>`: what an organization access token issued at `creds/<role>` may do, and
//! `roles/` to list the roles.
//!
//! A role names a configured account that owns a Docker Hub organization (its password
//! manages the organization's access tokens), the organization, the repositories its tokens
//! may pull from and push to, the lease TTLs, a quota of live tokens, and the organization's
//! limit of access tokens. Like the roles of Vault's database and AWS engines: an operator
//! writes the role, a pipeline writes to `creds/<role>`.
//!
//! Sources: Docker Hub API, "org-access-tokens" (`orgAccessTokenResource`: `TYPE_REPO`,
//! `org/repo` or `org/*`, `scope-image-pull`, `scope-image-push`); Docker's organization
//! access token docs (10 tokens per organization on Team, 100 on Business, expired ones
//! counted until deleted, at most 50 repositories per token).

use crate::api::{EngineError, Field, FieldKind, Operation, PathHelp, Request, Response};
use crate::capabilities::{Bucket, Host};
use crate::duration;
use crate::fields::FieldData;
use crate::names;
use crate::path_config::AccountConfig;
use crate::storage;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const DEFAULT_TTL: u64 = 5 * 60;
const DEFAULT_MAX_TTL: u64 = 60 * 60;
/// The limit of a Team organization, the smaller of the two plans that have access tokens.
const DEFAULT_ORGANIZATION_TOKEN_LIMIT: u64 = 10;
/// The longest max_ttl of a role: Docker Hub expires an organization access token within a
/// year of its creation, and the engine asks for an expiry just after the lease's max_ttl.
const MAX_MAX_TTL: u64 = 365 * 24 * 60 * 60;
/// Docker Hub's limit of repositories per organization access token.
pub const MAX_REPOSITORIES: usize = 50;
/// The scopes of an organization access token's repository resource.
pub const SCOPE_PULL: &str = "scope-image-pull";
pub const SCOPE_PUSH: &str = "scope-image-push";

pub static FIELDS: &[Field] = &[
    Field {
        name: "role",
        kind: FieldKind::String,
        description: "The role's name; from the path.",
        default: None,
        required: true,
        sensitive: false,
    },
    Field {
        name: "account",
        kind: FieldKind::String,
        description: "The configured account (config/<account>) whose password manages the \
                      organization's access tokens: it must be an owner of the organization. \
                      Required when the role is created.",
        default: None,
        required: true,
        sensitive: false,
    },
    Field {
        name: "organization",
        kind: FieldKind::String,
        description: "The Docker Hub organization whose access tokens the role issues; one of \
                      the account's namespaces. Tokens log in with it as their username. \
                      Required when the role is created.",
        default: None,
        required: true,
        sensitive: false,
    },
    Field {
        name: "pull_repositories",
        kind: FieldKind::CommaStringList,
        description: "Repositories of the organization that tokens may pull from: names \
                      (app, or my-organization/app), or * for all of the organization's \
                      repositories.",
        default: None,
        required: false,
        sensitive: false,
    },
    Field {
        name: "push_repositories",
        kind: FieldKind::CommaStringList,
        description: "Repositories of the organization that tokens may push to (and pull \
                      from), in the same form. pull_repositories and push_repositories \
                      together name 1 to 50 repositories.",
        default: None,
        required: false,
        sensitive: false,
    },
    Field {
        name: "ttl",
        kind: FieldKind::Duration,
        description: "Default lease duration of issued tokens.",
        default: Some("5m"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "max_ttl",
        kind: FieldKind::Duration,
        description: "Longest lease of an issued token, renewals included; Docker Hub is asked \
                      to expire the token at this age (plus 2 seconds).",
        default: Some("1h"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "max_live_tokens",
        kind: FieldKind::Integer,
        description: "The most tokens of this role that may be live at once (issued and not \
                      yet revoked, plus creations not settled); a request over it is refused \
                      with a 400 naming the quota, before any Docker Hub call. 0: no quota.",
        default: Some("0"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "verify",
        kind: FieldKind::Boolean,
        description: "When the role is created, or its account or organization changes, count \
                      the organization's access tokens at Docker Hub once, as the account, so \
                      that an account that is not an owner of the organization is refused here \
                      (400) and not in a pipeline.",
        default: Some("true"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "organization_token_limit",
        kind: FieldKind::Integer,
        description: "How many access tokens the organization may hold, by its Docker plan: 10 \
                      on Team, 100 on Business. Expired and deactivated tokens count until they \
                      are deleted, tokens made by hand and by other roles too. A request when \
                      the organization holds this many is refused with a 400 before any token \
                      is created.",
        default: Some("10"),
        required: false,
        sensitive: false,
    },
];

pub fn help() -> Vec<PathHelp> {
    vec![
        PathHelp {
            pattern: r"roles/(?P<role>[^/]+)$",
            operations: vec![
                Operation::Create,
                Operation::Update,
                Operation::Read,
                Operation::Delete,
            ],
            existence_check: true,
            synopsis: "Define what an organization access token issued for a role may do.",
            description: "An organization access token is scoped to repositories, with pull \
                          or push permission. The role names the owner account, the \
                          organization, the repositories, the lease TTLs and the quotas; \
                          creds/<role> issues the tokens. Deleting a role does not end the \
                          tokens issued for it: their leases still revoke them.",
            fields: FIELDS.to_vec(),
        },
        PathHelp {
            pattern: r"roles/?$",
            operations: vec![Operation::List],
            existence_check: false,
            synopsis: "List the roles.",
            description: "Lists the roles that issue organization access tokens.",
            fields: Vec::new(),
        },
    ]
}

/// One role as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub account: String,
    pub organization: String,
    /// Full resource paths (`my-organization/app`, `my-organization/*`), in the order given.
    pub pull_repositories: Vec<String>,
    pub push_repositories: Vec<String>,
    pub ttl: u64,
    pub max_ttl: u64,
    pub max_live_tokens: u64,
    pub organization_token_limit: u64,
}

impl Role {
    pub fn load(host: &dyn Host, role: &str) -> Result<Option<Role>, EngineError> {
        storage::load(host, Bucket::Role, role)
    }

    /// The resources an organization access token of this role is created with: one per
    /// repository, pull for `pull_repositories`, pull and push for `push_repositories`.
    pub fn resources(&self) -> Value {
        let mut paths: Vec<&String> = self.push_repositories.iter().collect();
        for path in &self.pull_repositories {
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        paths.sort();
        Value::from(
            paths
                .into_iter()
                .map(|path| {
                    let scopes = if self.push_repositories.contains(path) {
                        vec![SCOPE_PULL, SCOPE_PUSH]
                    } else {
                        vec![SCOPE_PULL]
                    };
                    json!({"type": "TYPE_REPO", "path": path, "scopes": scopes})
                })
                .collect::<Vec<_>>(),
        )
    }
}

pub fn handle(host: &dyn Host, role: &str, request: &Request) -> Result<Response, EngineError> {
    names::check_role(role)?;
    match request.operation {
        Operation::Create | Operation::Update => write(host, role, request),
        Operation::Read => read(host, role),
        Operation::Delete => {
            storage::remove(host, Bucket::Role, role)?;
            Ok(Response::default())
        }
        op => Err(EngineError::UnsupportedOperation(format!(
            "roles/{role} does not support {op:?}"
        ))),
    }
}

/// Whether the role exists. An invalid name names no role (the write then refuses it with a
/// 400, which an existence check's error would not give: OpenBao logs it as its own failure).
pub fn exists(host: &dyn Host, role: &str) -> Result<bool, EngineError> {
    if names::check_role(role).is_err() {
        return Ok(false);
    }
    Ok(Role::load(host, role)?.is_some())
}

pub fn list(host: &dyn Host) -> Result<Response, EngineError> {
    storage::key_list(host, Bucket::Role)
}

/// A repository as a resource path of `organization`: `app` and `organization/app` are
/// `organization/app`, `*` is `organization/*`. Another organization's repository is a 400.
fn resource_path(organization: &str, field: &str, repository: &str) -> Result<String, EngineError> {
    let name = match repository.split_once('/') {
        None => repository,
        Some((owner, name)) if owner == organization => name,
        Some(_) => {
            return Err(EngineError::invalid(format!(
                "{field}: {} is not a repository of organization {organization}: an \
                 organization access token reaches only its organization's repositories",
                names::quoted(repository)
            )));
        }
    };
    if name != "*" {
        names::check_namespace(field, name)?;
    }
    Ok(format!("{organization}/{name}"))
}

fn write(host: &dyn Host, role: &str, request: &Request) -> Result<Response, EngineError> {
    let data = FieldData::parse(&request.data, FIELDS)?;
    // Checked whether or not it is needed: bad input is refused, never ignored.
    let verify = data.boolean("verify")?.unwrap_or(true);
    let existing = Role::load(host, role)?;
    let required =
        |field: &str| EngineError::invalid(format!("{field} is required to create roles/{role}"));
    let account = match (data.string("account")?, &existing) {
        (Some(account), _) => account,
        (None, Some(e)) => e.account.clone(),
        (None, None) => return Err(required("account")),
    };
    names::check_namespace("account", &account)?;
    let organization = match (data.string("organization")?, &existing) {
        (Some(organization), _) => organization,
        (None, Some(e)) => e.organization.clone(),
        (None, None) => return Err(required("organization")),
    };
    names::check_namespace("organization", &organization)?;
    let config = AccountConfig::require(host, &account)?;
    if !config.namespaces.contains(&organization) {
        return Err(EngineError::invalid(format!(
            "organization {organization} is not one of the namespaces of account {account} \
             ({}): add it to config/{account} first",
            config.namespaces.join(", ")
        )));
    }

    let moved_organization = existing
        .as_ref()
        .is_some_and(|e| e.organization != organization);
    if moved_organization
        && data.list("pull_repositories")?.is_none()
        && data.list("push_repositories")?.is_none()
    {
        return Err(EngineError::invalid(format!(
            "organization changes from {} to {organization}: name the new organization's \
             repositories too (pull_repositories, push_repositories)",
            existing.as_ref().map_or("", |e| e.organization.as_str())
        )));
    }
    let repositories = |field: &str, kept: Option<&Vec<String>>| {
        let Some(list) = data.list(field)? else {
            // The other list of a role that moves: its old organization's repositories go.
            let kept = kept.filter(|_| !moved_organization);
            return Ok::<_, EngineError>(kept.cloned().unwrap_or_default());
        };
        let mut paths = Vec::with_capacity(list.len());
        for repository in list {
            let path = resource_path(&organization, field, &repository)?;
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        Ok(paths)
    };
    let pull_repositories = repositories(
        "pull_repositories",
        existing.as_ref().map(|e| &e.pull_repositories),
    )?;
    let push_repositories = repositories(
        "push_repositories",
        existing.as_ref().map(|e| &e.push_repositories),
    )?;
    let role_value = Role {
        account,
        organization,
        pull_repositories,
        push_repositories,
        ttl: data
            .duration("ttl")?
            .or(existing.as_ref().map(|e| e.ttl))
            .unwrap_or(DEFAULT_TTL),
        max_ttl: data
            .duration("max_ttl")?
            .or(existing.as_ref().map(|e| e.max_ttl))
            .unwrap_or(DEFAULT_MAX_TTL),
        max_live_tokens: data
            .unsigned("max_live_tokens")?
            .or(existing.as_ref().map(|e| e.max_live_tokens))
            .unwrap_or(0),
        organization_token_limit: data
            .unsigned("organization_token_limit")?
            .or(existing.as_ref().map(|e| e.organization_token_limit))
            .unwrap_or(DEFAULT_ORGANIZATION_TOKEN_LIMIT),
    };
    let count = role_value
        .resources()
        .as_array()
        .map_or(0, |resources| resources.len());
    if count == 0 {
        return Err(EngineError::invalid(
            "pull_repositories or push_repositories must name at least one repository of the \
             organization (or * for all of them)",
        ));
    }
    if count > MAX_REPOSITORIES {
        return Err(EngineError::invalid(format!(
            "pull_repositories and push_repositories name {count} repositories; an organization \
             access token reaches at most {MAX_REPOSITORIES} (use * for all of the \
             organization's repositories)"
        )));
    }
    if role_value.ttl == 0 || role_value.max_ttl == 0 {
        return Err(EngineError::invalid("ttl and max_ttl must be at least 1s"));
    }
    if role_value.ttl > role_value.max_ttl {
        return Err(EngineError::invalid(format!(
            "ttl ({}) must not exceed max_ttl ({})",
            duration::format(role_value.ttl),
            duration::format(role_value.max_ttl)
        )));
    }
    if role_value.max_ttl > MAX_MAX_TTL {
        return Err(EngineError::invalid(format!(
            "max_ttl ({}) must not exceed {} (Docker Hub expires organization access tokens \
             within a year)",
            duration::format(role_value.max_ttl),
            duration::format(MAX_MAX_TTL)
        )));
    }
    if role_value.organization_token_limit == 0 {
        return Err(EngineError::invalid(
            "organization_token_limit must be at least 1 (10 on Docker's Team plan, 100 on \
             Business)",
        ));
    }
    let moved = existing.as_ref().is_none_or(|e| {
        e.account != role_value.account || e.organization != role_value.organization
    });
    if verify && moved {
        check_owner(host, &config, &role_value)?;
    }
    storage::save(host, Bucket::Role, role, &role_value)?;
    Ok(Response::default().with_warnings(data.unknown_field_warnings()))
}

/// Count the organization's tokens once as the role's account: Docker Hub refuses (403, or
/// 404 for an organization it does not know) an account that cannot manage them.
fn check_owner(host: &dyn Host, config: &AccountConfig, role: &Role) -> Result<(), EngineError> {
    let hub = config
        .hub(host, &role.account)
        .for_organization(&role.organization);
    match hub.token_total() {
        Ok(_) => Ok(()),
        Err(EngineError::Upstream(u)) if matches!(u.status, 403 | 404) => {
            Err(EngineError::invalid(format!(
                "account {} cannot manage the access tokens of organization {} at Docker Hub \
                 ({}): the account must be an owner of the organization, and the organization \
                 on a Team or Business plan",
                role.account, role.organization, u.message
            )))
        }
        Err(e) => Err(e),
    }
}

fn read(host: &dyn Host, role: &str) -> Result<Response, EngineError> {
    let Some(role) = Role::load(host, role)? else {
        return Ok(Response::default());
    };
    let mut data = Map::new();
    data.insert("account".into(), Value::from(role.account));
    data.insert("organization".into(), Value::from(role.organization));
    data.insert("pull_repositories".into(), json!(role.pull_repositories));
    data.insert("push_repositories".into(), json!(role.push_repositories));
    data.insert("ttl".into(), Value::from(duration::format(role.ttl)));
    data.insert(
        "max_ttl".into(),
        Value::from(duration::format(role.max_ttl)),
    );
    data.insert("max_live_tokens".into(), Value::from(role.max_live_tokens));
    data.insert(
        "organization_token_limit".into(),
        Value::from(role.organization_token_limit),
    );
    Ok(Response::data(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHost;

    fn write(host: &TestHost, role: &str, data: Value) -> Result<Response, EngineError> {
        host.call(Operation::Update, &format!("roles/{role}"), data)
    }

    fn read(host: &TestHost, role: &str) -> Map<String, Value> {
        host.call(Operation::Read, &format!("roles/{role}"), json!({}))
            .unwrap()
            .data
            .expect("the role exists")
    }

    fn invalid(result: Result<Response, EngineError>) -> String {
        match result {
            Err(EngineError::InvalidRequest(message)) => message,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn a_role_is_read_back_with_defaults_and_full_repository_paths() {
        let host = TestHost::configured();
        write(
            &host,
            "app-pull",
            json!({"account": "hoeg", "organization": "my-organization",
                   "pull_repositories": "app, my-organization/base,app"}),
        )
        .unwrap();
        let role = read(&host, "app-pull");
        assert_eq!(
            Value::Object(role),
            json!({
                "account": "hoeg",
                "organization": "my-organization",
                "pull_repositories": ["my-organization/app", "my-organization/base"],
                "push_repositories": [],
                "ttl": "5m0s",
                "max_ttl": "1h0m0s",
                "max_live_tokens": 0,
                "organization_token_limit": 10,
            })
        );
        // An update changes only what it sets.
        write(
            &host,
            "app-pull",
            json!({"push_repositories": "*", "ttl": "10m"}),
        )
        .unwrap();
        let role = read(&host, "app-pull");
        assert_eq!(role["push_repositories"], json!(["my-organization/*"]));
        assert_eq!(role["pull_repositories"].as_array().unwrap().len(), 2);
        assert_eq!(role["ttl"], "10m0s");
        let listed = host.call(Operation::List, "roles/", json!({})).unwrap();
        assert_eq!(listed.data.unwrap()["keys"], json!(["app-pull"]));
        assert_eq!(
            host.call(Operation::Read, "roles/other", json!({}))
                .unwrap()
                .data,
            None
        );
    }

    #[test]
    fn bad_roles_are_a_400_naming_the_problem() {
        let host = TestHost::configured();
        let base = json!({"account": "hoeg", "organization": "my-organization",
                          "pull_repositories": "app"});
        let with = |extra: Value| {
            let mut data = base.clone();
            data.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            data
        };
        let many: Vec<String> = (0..51).map(|n| format!("repo{n}")).collect();
        for (data, expected) in [
            (
                json!({"organization": "my-organization", "pull_repositories": "app"}),
                "account is required to create roles/ci",
            ),
            (
                json!({"account": "hoeg", "pull_repositories": "app"}),
                "organization is required to create roles/ci",
            ),
            (
                with(json!({"account": "nobody"})),
                "Docker Hub account \"nobody\" is not configured: write config/nobody first",
            ),
            (
                with(json!({"organization": "elsewhere"})),
                "organization elsewhere is not one of the namespaces of account hoeg (hoeg, \
              my-organization): add it to config/hoeg first",
            ),
            (
                with(json!({"pull_repositories": ""})),
                "pull_repositories or push_repositories must name at least one repository of the \
              organization (or * for all of them)",
            ),
            (
                with(json!({"pull_repositories": "other-org/app"})),
                "pull_repositories: \"other-org/app\" is not a repository of organization \
              my-organization: an organization access token reaches only its organization's \
              repositories",
            ),
            (
                with(json!({"pull_repositories": many.join(",")})),
                "pull_repositories and push_repositories name 51 repositories; an organization \
              access token reaches at most 50 (use * for all of the organization's \
              repositories)",
            ),
            (
                with(json!({"ttl": "2h"})),
                "ttl (2h0m0s) must not exceed max_ttl (1h0m0s)",
            ),
            (
                with(json!({"organization_token_limit": 0})),
                "organization_token_limit must be at least 1 (10 on Docker's Team plan, 100 on \
              Business)",
            ),
            (
                with(json!({"max_live_tokens": -1})),
                "max_live_tokens must be a whole number, 0 or more",
            ),
        ] {
            assert_eq!(
                invalid(write(&host, "ci", data.clone())),
                expected,
                "{data}"
            );
        }
        let bad_name = invalid(write(
            &host,
            "ci",
            with(json!({"push_repositories": "App"})),
        ));
        assert!(bad_name.starts_with("push_repositories"), "{bad_name}");
        assert!(host.keys(Bucket::Role).is_empty(), "nothing stored");
    }

    #[test]
    fn an_account_that_cannot_manage_the_organizations_tokens_is_refused_at_the_role() {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg,my-organization,other-org,no-such-org"}),
        )
        .unwrap();
        for organization in ["other-org", "no-such-org"] {
            let message = invalid(write(
                &host,
                "ci",
                json!({"account": "hoeg", "organization": organization,
                       "pull_repositories": "site"}),
            ));
            assert!(
                message.starts_with(&format!(
                    "account hoeg cannot manage the access tokens of organization \
                     {organization} at Docker Hub (Docker Hub refused to count organization \
                     access tokens: HTTP 40"
                )),
                "{message}"
            );
        }
        assert!(host.keys(Bucket::Role).is_empty());
        // verify=false saves it unchecked; a later update of other fields is not checked.
        write(
            &host,
            "ci",
            json!({"account": "hoeg", "organization": "other-org",
                   "pull_repositories": "site", "verify": false}),
        )
        .unwrap();
        host.hub.clear_calls();
        write(&host, "ci", json!({"ttl": "1m"})).unwrap();
        assert!(
            host.hub.calls().is_empty(),
            "no Hub call for an unmoved role"
        );
    }

    #[test]
    fn max_ttl_stays_within_the_hubs_year() {
        let host = TestHost::with_role();
        assert_eq!(
            invalid(write(&host, "app-pull", json!({"max_ttl": "8761h"}))),
            "max_ttl (8761h0m0s) must not exceed 8760h0m0s (Docker Hub expires organization \
             access tokens within a year)"
        );
        write(&host, "app-pull", json!({"max_ttl": "8760h"})).unwrap();
    }

    #[test]
    fn moving_a_role_to_another_organization_needs_its_repositories() {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg,my-organization,other-org"}),
        )
        .unwrap();
        write(
            &host,
            "ci",
            json!({"account": "hoeg", "organization": "my-organization",
                   "pull_repositories": "app", "push_repositories": "base"}),
        )
        .unwrap();
        assert_eq!(
            invalid(write(
                &host,
                "ci",
                json!({"organization": "other-org", "verify": false})
            )),
            "organization changes from my-organization to other-org: name the new \
             organization's repositories too (pull_repositories, push_repositories)"
        );
        write(
            &host,
            "ci",
            json!({"organization": "other-org", "pull_repositories": "site", "verify": false}),
        )
        .unwrap();
        let role = read(&host, "ci");
        assert_eq!(role["pull_repositories"], json!(["other-org/site"]));
        assert_eq!(
            role["push_repositories"],
            json!([]),
            "my-organization's are gone"
        );
    }

    #[test]
    fn role_names_are_vaults_and_an_invalid_one_is_a_400_not_a_failed_check() {
        let host = TestHost::configured();
        let data = json!({"account": "hoeg", "organization": "my-organization",
                          "pull_repositories": "app"});
        write(&host, "R", data.clone()).unwrap();
        assert_eq!(
            crate::backend::existence_check(&host, &Request::new(Operation::Update, "roles/a b")),
            Ok(Some(false))
        );
        let message = invalid(write(&host, "a b", data));
        assert!(
            message.starts_with("role \"a b\" is not a valid role name"),
            "{message}"
        );
    }

    #[test]
    fn deleting_a_role_leaves_its_tokens_to_their_leases() {
        let host = TestHost::with_role();
        let response = host.issue_creds(json!({}));
        host.call(Operation::Delete, "roles/app-pull", json!({}))
            .unwrap();
        assert!(host.keys(Bucket::Role).is_empty());
        let id = response.data.as_ref().unwrap()["id"].as_str().unwrap();
        assert!(host.hub.org_token(id).is_some());
        host.revoke(&response.lease.unwrap().internal_data).unwrap();
        assert!(
            host.hub.org_token(id).is_none(),
            "the lease still revokes it"
        );
    }

    #[test]
    fn the_help_declares_every_field_the_role_reads_back() {
        let host = TestHost::with_role();
        let role = read(&host, "app-pull");
        for key in role.keys() {
            assert!(
                FIELDS.iter().any(|f| f.name == key),
                "{key} is not declared"
            );
        }
    }
}
