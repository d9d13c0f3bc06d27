//! `token/<account>/<namespace>`: issue a Docker Hub access token under a lease.
//!
//! The namespace in the path is what Vault policies match on: a Docker Hub PAT reaches every
//! repository its account can, so the engine's only namespace restriction is that a caller
//! allowed on `token/hoeg/my-organization` cannot ask for `token/hoeg/hoeg`. A namespace
//! outside the account's list is refused before any Hub call.
//!
//! Issuance itself (write-ahead record, creation, settling, lease) is `issue`'s.

use crate::api::{EngineError, Field, FieldKind, Operation, PathHelp, Request, Response};
use crate::capabilities::Host;
use crate::fields::FieldData;
use crate::hub::Grant;
use crate::issue::{self, Issue, Quota};
use crate::names;
use crate::path_config::AccountConfig;
use crate::secret_token::{Holder, TokenRecord};
use serde_json::Value;

pub static FIELDS: &[Field] = &[
    Field {
        name: "account",
        kind: FieldKind::String,
        description: "The configured Docker Hub account that owns the token; from the path.",
        default: None,
        required: true,
        sensitive: false,
    },
    Field {
        name: "namespace",
        kind: FieldKind::String,
        description: "The namespace the token is requested for; from the path. Must be in the \
                      account's namespace list.",
        default: None,
        required: true,
        sensitive: false,
    },
    issue::LABEL_FIELD,
    Field {
        name: "scope",
        kind: FieldKind::String,
        description: "The token's scope; must be one of the account's scopes. Defaults to the \
                      account's default_scope.",
        default: None,
        required: false,
        sensitive: false,
    },
    Field {
        name: "ttl",
        kind: FieldKind::Duration,
        description: "The lease duration; at most the account's max_ttl. Defaults to the \
                      account's ttl.",
        default: None,
        required: false,
        sensitive: false,
    },
];

pub fn help() -> Vec<PathHelp> {
    vec![PathHelp {
        pattern: r"token/(?P<account>[^/]+)/(?P<namespace>[^/]+)$",
        operations: vec![Operation::Create, Operation::Update, Operation::Read],
        existence_check: false,
        synopsis: "Issue a short-lived Docker Hub access token for a namespace.",
        description: "Creates a Docker Hub personal access token for the account, under a \
                      lease: revoking the lease (or its expiry) deletes the token at Docker \
                      Hub. Use the token with `docker login -u <username> --password-stdin`; \
                      the answer also carries auth (base64 of username:token), registry and \
                      docker_config (the text of ~/.docker/config.json, which is also the \
                      .dockerconfigjson of a Kubernetes image-pull secret). Write to it, or \
                      read it for tools that can only read.",
        fields: FIELDS.to_vec(),
    }]
}

pub fn handle(
    host: &dyn Host,
    account: &str,
    namespace: &str,
    request: &Request,
) -> Result<Response, EngineError> {
    match request.operation {
        Operation::Create | Operation::Update | Operation::Read => {
            issue(host, account, namespace, request)
        }
        op => Err(EngineError::UnsupportedOperation(format!(
            "token/{account}/{namespace} does not support {op:?}"
        ))),
    }
}

fn issue(
    host: &dyn Host,
    account: &str,
    namespace: &str,
    request: &Request,
) -> Result<Response, EngineError> {
    names::check_namespace("account", account)?;
    names::check_namespace("namespace", namespace)?;
    let data = FieldData::parse(&request.data, FIELDS)?;
    let config = AccountConfig::require(host, account)?;
    if !config.namespaces.iter().any(|n| n == namespace) {
        return Err(EngineError::PermissionDenied(format!(
            "namespace {namespace} is not allowed for Docker Hub account {account} (allowed: {})",
            config.namespaces.join(", ")
        )));
    }

    let scope = data
        .string("scope")?
        .unwrap_or_else(|| config.default_scope.clone());
    names::check_scope("scope", &scope)?;
    if !config.scopes.contains(&scope) {
        return Err(EngineError::invalid(format!(
            "scope {scope} is not allowed for account {account} (allowed: {})",
            config.scopes.join(", ")
        )));
    }
    let mut warnings = data.unknown_field_warnings();
    let label = issue::label(host, &data, &config.label_template, request, &mut warnings)?;
    let (ttl, max_ttl) = issue::lease_ttls(
        host,
        data.duration("ttl")?,
        (config.ttl, config.max_ttl),
        &format!("account {account}"),
        &mut warnings,
    )?;
    let record = TokenRecord {
        account: account.to_string(),
        namespace: namespace.to_string(),
        label: label.clone(),
        scope: scope.clone(),
        token_label: String::new(),
        issued_at: 0,
        ttl: 0,
        max_ttl: 0,
        lease_expires_at: 0,
        hub_expires_at: None,
        organization: None,
        role: None,
    };
    let quota = Quota::max_live_tokens(
        Holder::Personal(account),
        config.max_live_tokens,
        format!("account {account}"),
        format!("config/{account}"),
    );
    let minted = issue::mint(
        host,
        Issue {
            hub: config.hub(host, account),
            record,
            grant: Grant::Scope(&scope),
            ttl,
            max_ttl,
            quotas: vec![quota],
        },
        &|refusal| refusal,
        &mut warnings,
    )?;

    Ok(minted.response(
        "uuid",
        account,
        label,
        vec![
            ("namespace", Value::from(namespace)),
            ("scope", Value::from(scope)),
        ],
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::UpstreamError;
    use crate::capabilities::{Alias, Bucket, Entity};
    use crate::testing::{ACCOUNT, PASSWORD, TestHost};
    use fakehub::{ExpiryGrant, Fault, FaultKind};
    use serde_json::json;

    fn issue(host: &TestHost, path: &str, data: Value) -> Result<Response, EngineError> {
        host.call(Operation::Update, path, data)
    }

    #[test]
    fn issues_a_leased_token_that_exists_at_the_hub() {
        let host = TestHost::configured();
        let response = host.issue(json!({"label": "release-build"}));
        let data = response.data.unwrap();
        assert_eq!(data["username"], "hoeg");
        assert_eq!(data["namespace"], "my-organization");
        assert_eq!(data["scope"], "repo:write");
        let token = data["token"].as_str().unwrap();
        assert!(token.starts_with("dckr_pat_"));
        let uuid = data["uuid"].as_str().unwrap();

        let lease = response.lease.unwrap();
        assert_eq!(
            (lease.ttl, lease.max_ttl, lease.renewable),
            (300, 3600, true)
        );
        assert!(
            !lease.internal_data.contains(token),
            "the lease keeps no secret"
        );

        let at_hub = host.hub.token(uuid).expect("the token exists at the Hub");
        assert_eq!(at_hub.token, token);
        assert!(
            at_hub.label.starts_with("dockerhub-secrets:release-build:"),
            "{}",
            at_hub.label
        );
        assert_eq!(at_hub.scopes, ["repo:write"]);
        assert_eq!(at_hub.expires_at.as_deref(), data["expires_at"].as_str());
        assert_eq!(host.keys(Bucket::Token), [uuid]);
        assert!(
            host.keys(Bucket::Wal).is_empty(),
            "no pending creation left behind"
        );
        assert!(!host.stored_text(Bucket::Token).contains(token));
        assert!(!host.logs.borrow().join("\n").contains(token));
    }

    #[test]
    fn the_answer_is_ready_for_docker_login_as_the_account() {
        use base64::Engine as _;
        let host = TestHost::configured();
        let data = host.issue(json!({})).data.unwrap();
        let token = data["token"].as_str().unwrap();
        assert_eq!(data["registry"], "https://index.docker.io/v1/");
        let auth = data["auth"].as_str().unwrap();
        let pair = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap();
        assert_eq!(String::from_utf8(pair).unwrap(), format!("hoeg:{token}"));
        let config: Value = serde_json::from_str(data["docker_config"].as_str().unwrap()).unwrap();
        assert_eq!(
            config,
            json!({"auths": {"https://index.docker.io/v1/": {"auth": auth}}})
        );
        // The pair logs in at the Hub, as `docker login` would send it.
        let login: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let status = login
            .post(format!("{}/v2/auth/token", host.hub.url()))
            .header("content-type", "application/json")
            .send(json!({"identifier": "hoeg", "secret": token}).to_string())
            .unwrap()
            .status();
        assert_eq!(status, 200);
        // Nothing of it is stored.
        for bucket in [Bucket::Token, Bucket::Wal, Bucket::Config] {
            assert!(!host.stored_text(bucket).contains(auth), "{bucket:?}");
        }
    }

    #[test]
    fn the_accounts_quota_refuses_before_any_hub_call() {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"max_live_tokens": 2}),
        )
        .unwrap();
        let first = host.issue(json!({}));
        host.issue(json!({}));
        host.hub.clear_calls();
        let refused = issue(&host, "token/hoeg/hoeg", json!({})).unwrap_err();
        assert_eq!(
            refused,
            EngineError::invalid(
                "account hoeg holds 2 live token(s) (creations in progress included), its quota \
                 max_live_tokens=2: revoke a lease or wait for one to end, or raise \
                 max_live_tokens in config/hoeg"
            )
        );
        assert!(host.hub.calls().is_empty(), "no Hub call");
        assert!(
            host.keys(Bucket::Wal).is_empty(),
            "no creation left pending"
        );

        // A revocation frees a place.
        let lease = first.lease.unwrap();
        host.revoke(&lease.internal_data).unwrap();
        host.issue(json!({}));
        assert_eq!(host.keys(Bucket::Token).len(), 2);

        // 0: no quota.
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"max_live_tokens": 0}),
        )
        .unwrap();
        host.issue(json!({}));
        assert_eq!(host.keys(Bucket::Token).len(), 3);
    }

    #[test]
    fn a_creation_in_flight_counts_against_the_quota() {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"max_live_tokens": 1}),
        )
        .unwrap();
        // A creation whose answer was lost and not yet settled may have made a token.
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        host.hub
            .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(500)).times(20));
        issue(&host, "token/hoeg/hoeg", json!({})).unwrap_err();
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
        host.hub.clear_faults();
        let refused = issue(&host, "token/hoeg/hoeg", json!({})).unwrap_err();
        assert!(
            refused.to_string().contains("holds 1 live token(s)"),
            "{refused}"
        );
        // Once rollback settles it (deletes the token), the place is free.
        host.advance(crate::rollback::WAL_MIN_AGE + 1);
        host.call(Operation::Rollback, "", json!({})).unwrap();
        assert!(host.keys(Bucket::Wal).is_empty());
        host.issue(json!({}));
    }

    #[test]
    fn a_namespace_outside_the_list_is_denied_without_a_hub_call() {
        let host = TestHost::configured();
        host.hub.clear_calls();
        match issue(&host, "token/hoeg/other-org", json!({})) {
            Err(EngineError::PermissionDenied(message)) => {
                assert!(message.contains("other-org"), "{message}")
            }
            other => panic!("expected permission denied, got {other:?}"),
        }
        assert!(host.hub.calls().is_empty());
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn an_unconfigured_account_is_a_clear_400() {
        let host = TestHost::new();
        match issue(&host, "token/nobody/nobody", json!({})) {
            Err(EngineError::InvalidRequest(message)) => {
                assert!(message.contains("not configured") && message.contains("config/nobody"))
            }
            other => panic!("{other:?}"),
        }
        assert!(host.hub.calls().is_empty());
    }

    #[test]
    fn bad_input_is_a_400_naming_the_problem() {
        let host = TestHost::configured();
        host.hub.clear_calls();
        for (path, data, expected) in [
            (
                "token/hoeg/my-organization",
                json!({"label": "tab\there"}),
                "label",
            ),
            (
                "token/hoeg/my-organization",
                json!({"label": "x".repeat(65)}),
                "label",
            ),
            (
                "token/hoeg/my-organization",
                json!({"scope": "repo:push"}),
                "repo:push",
            ),
            (
                "token/hoeg/my-organization",
                json!({"ttl": "2h"}),
                "exceeds the max_ttl",
            ),
            ("token/hoeg/my-organization", json!({"ttl": "-1s"}), "ttl"),
            ("token/hoeg/My_Org", json!({}), "namespace"),
        ] {
            match issue(&host, path, data.clone()) {
                Err(EngineError::InvalidRequest(message)) => {
                    assert!(message.contains(expected), "{data}: {message}")
                }
                other => panic!("{data}: {other:?}"),
            }
        }
        let mut bad_json = Request::new(Operation::Update, "token/hoeg/my-organization");
        bad_json.data = "{\"label\": ".into();
        assert!(matches!(
            crate::backend::handle(&host, &bad_json),
            Err(EngineError::InvalidRequest(m)) if m.contains("not valid JSON")
        ));
        assert!(host.hub.calls().is_empty());
    }

    #[test]
    fn a_scope_outside_the_accounts_scopes_is_refused() {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"scopes": "repo:read,repo:public_read", "default_scope": "repo:read"}),
        )
        .unwrap();
        let refused = issue(&host, "token/hoeg/hoeg", json!({"scope": "repo:admin"}));
        assert!(
            matches!(refused, Err(EngineError::InvalidRequest(m)) if m.contains("not allowed"))
        );
        let data = issue(&host, "token/hoeg/hoeg", json!({}))
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["scope"], "repo:read");
    }

    #[test]
    fn the_default_label_comes_from_the_requester() {
        let host = TestHost::configured();
        let mut request = Request::new(Operation::Update, "token/hoeg/hoeg");
        request.display_name = Some("jwt-acme/app\n".into());
        let data = crate::backend::handle(&host, &request)
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "jwt-acme/app");
        // `label=` is the default too.
        let request = request.with_data(json!({"label": ""}));
        let data = crate::backend::handle(&host, &request)
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "jwt-acme/app");
    }

    /// `hoeg` with `label_template`, and a host that knows the entity `entity-1`, logged in
    /// through the jwt mount `auth_jwt_1` with a mapped `project_path` claim.
    fn templated(template: &str) -> TestHost {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({ "label_template": template }),
        )
        .unwrap();
        host.entities.borrow_mut().insert(
            "entity-1".into(),
            Entity {
                id: "entity-1".into(),
                name: "entity_5d1f".into(),
                aliases: vec![Alias {
                    id: "alias-1".into(),
                    mount_accessor: "auth_jwt_1".into(),
                    mount_type: "jwt".into(),
                    name: "acme/app".into(),
                    metadata: [("project_path".to_string(), "acme/app".to_string())].into(),
                }],
                ..Entity::default()
            },
        );
        host
    }

    /// A token write by the requester `jwt-acme/app` with entity `entity_id`.
    fn issue_as(
        host: &TestHost,
        entity_id: Option<&str>,
        data: Value,
    ) -> Result<Response, EngineError> {
        let mut request = Request::new(Operation::Update, "token/hoeg/hoeg").with_data(data);
        request.display_name = Some("jwt-acme/app".into());
        request.entity_id = entity_id.map(String::from);
        crate::backend::handle(host, &request)
    }

    const PROJECT: &str = "ci-{{identity.entity.aliases.auth_jwt_1.metadata.project_path}}";

    #[test]
    fn the_label_template_names_the_pipeline_at_the_hub() {
        let host = templated(PROJECT);
        let response = issue_as(&host, Some("entity-1"), json!({"label": ""})).unwrap();
        assert!(response.warnings.is_empty(), "{:?}", response.warnings);
        let data = response.data.unwrap();
        assert_eq!(data["label"], "ci-acme/app");
        let at_hub = host.hub.token(data["uuid"].as_str().unwrap()).unwrap();
        assert!(
            at_hub.label.starts_with("dockerhub-secrets:ci-acme/app:"),
            "{}",
            at_hub.label
        );
        assert_eq!(*host.entities_asked.borrow(), ["entity-1"], "asked once");
    }

    #[test]
    fn a_label_in_the_request_wins_over_the_template_without_a_lookup() {
        let host = templated(PROJECT);
        let data = issue_as(&host, Some("entity-1"), json!({"label": "hotfix"}))
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "hotfix");
        assert!(host.entities_asked.borrow().is_empty());
    }

    #[test]
    fn a_placeholder_without_a_value_falls_back_to_the_display_name_with_a_warning() {
        for (template, entity_id, warning) in [
            (
                PROJECT,
                None,
                "label_template: the requester has no identity entity, so the label is the \
                 display name",
            ),
            (
                PROJECT,
                Some("entity-unknown"),
                "label_template: the requester has no identity entity, so the label is the \
                 display name",
            ),
            (
                "ci-{{identity.entity.aliases.auth_jwt_1.metadata.ref}}",
                Some("entity-1"),
                "label_template: {{identity.entity.aliases.auth_jwt_1.metadata.ref}} has no \
                 value for the requester, so the label is the display name",
            ),
            (
                "{{identity.entity.aliases.auth_approle_2.name}}",
                Some("entity-1"),
                "label_template: {{identity.entity.aliases.auth_approle_2.name}} has no value \
                 for the requester, so the label is the display name",
            ),
        ] {
            let host = templated(template);
            let response = issue_as(&host, entity_id, json!({})).unwrap();
            assert_eq!(
                response.data.unwrap()["label"],
                "jwt-acme/app",
                "{template}"
            );
            assert_eq!(response.warnings, [warning], "{template}");
        }
    }

    #[test]
    fn the_entity_is_looked_up_only_for_a_template_with_placeholders() {
        let host = templated("nightly build");
        let data = issue_as(&host, Some("entity-1"), json!({}))
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "nightly build");
        // No template: the display name, as before templates.
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"label_template": ""}),
        )
        .unwrap();
        let data = issue_as(&host, Some("entity-1"), json!({}))
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "jwt-acme/app");
        assert!(host.entities_asked.borrow().is_empty());
    }

    #[test]
    fn a_host_that_cannot_look_up_the_entity_fails_the_write_before_the_hub() {
        let host = templated(PROJECT);
        *host.entity_error.borrow_mut() = Some("identity store unavailable".into());
        host.hub.clear_calls();
        match issue_as(&host, Some("entity-1"), json!({})) {
            Err(EngineError::Internal(message)) => assert_eq!(
                message,
                "the account's label_template needs the requester's identity entity entity-1, \
                 and the host could not look it up: identity store unavailable. No token was \
                 issued"
            ),
            other => panic!("expected a 500, got {other:?}"),
        }
        assert!(host.hub.calls().is_empty(), "no token was created");
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn a_rendered_label_follows_the_label_rules() {
        let host = templated(PROJECT);
        let long = format!("acme/{}", "a".repeat(100));
        host.entities
            .borrow_mut()
            .get_mut("entity-1")
            .unwrap()
            .aliases[0]
            .metadata
            .insert("project_path".into(), long.clone());
        let data = issue_as(&host, Some("entity-1"), json!({}))
            .unwrap()
            .data
            .unwrap();
        let label = data["label"].as_str().unwrap();
        assert_eq!(
            label,
            format!("ci-{long}").chars().take(64).collect::<String>()
        );
        assert!(names::check_label(label).is_ok());

        host.entities
            .borrow_mut()
            .get_mut("entity-1")
            .unwrap()
            .aliases[0]
            .metadata
            .insert("project_path".into(), "acme/app\n".into());
        let data = issue_as(&host, Some("entity-1"), json!({}))
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "ci-acme/app");

        // A template that renders to nothing a label can keep is the display name.
        let host = templated("{{identity.entity.aliases.auth_jwt_1.metadata.project_path}}");
        host.entities
            .borrow_mut()
            .get_mut("entity-1")
            .unwrap()
            .aliases[0]
            .metadata
            .insert("project_path".into(), "\n".into());
        let data = issue_as(&host, Some("entity-1"), json!({}))
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "jwt-acme/app");
    }

    #[test]
    fn the_label_is_quoted_in_the_log_so_a_claim_cannot_read_as_more_of_the_line() {
        let host = TestHost::configured();
        let forged = "x) for namespace other-org, scope admin, ttl 768h (y";
        host.issue(json!({"label": forged}));
        let logs = host.logs.borrow();
        let issued = logs.iter().find(|l| l.contains("issued token")).unwrap();
        // The whole Hub label (prefix, label, suffix) in quotes, then the real namespace.
        let quoted = format!("(label \"dockerhub-secrets:{forged}:");
        assert!(issued.contains(&quoted), "{issued}");
        assert!(
            issued.contains("\") for namespace my-organization, scope"),
            "{issued}"
        );
    }

    #[test]
    fn the_hosts_max_lease_ttl_caps_lease_and_hub_expiry() {
        let host = TestHost::configured();
        let request =
            Request::new(Operation::Update, "token/hoeg/hoeg").with_data(json!({"ttl": "50m"}));
        host.max_lease_ttl.set(Some(1200));
        let response = crate::backend::handle(&host, &request).unwrap();
        let lease = response.lease.unwrap();
        assert_eq!((lease.ttl, lease.max_ttl), (1200, 1200));
        assert_eq!(
            response.warnings,
            [
                "ttl of 50m0s exceeds the longest lease the host allows now, 20m0s (the mount's \
              max lease TTL, or the time the requesting login token has left); capped"
            ]
        );
    }

    #[test]
    fn the_host_is_asked_for_its_limit_only_while_issuing() {
        let host = TestHost::configured();
        host.call(Operation::Read, "config/hoeg", json!({}))
            .unwrap();
        let refused = crate::backend::handle(
            &host,
            &Request::new(Operation::Update, "token/hoeg/elsewhere"),
        );
        assert!(refused.is_err());
        assert_eq!(host.max_lease_ttl_asked.get(), 0);
        host.issue(json!({}));
        assert_eq!(host.max_lease_ttl_asked.get(), 1);
    }

    #[test]
    fn many_issues_share_one_login() {
        let host = TestHost::configured();
        for _ in 0..20 {
            host.issue(json!({}));
        }
        assert_eq!(host.hub.login_count(), 1);
        assert_eq!(host.hub.live_tokens().len(), 20);
    }

    #[test]
    fn an_expired_session_means_one_new_login() {
        let host = TestHost::configured();
        host.issue(json!({}));
        host.hub.expire_jwts();
        host.issue(json!({}));
        assert_eq!(host.hub.login_count(), 2);
    }

    #[test]
    fn a_session_near_its_expiry_is_renewed_before_use() {
        let host = TestHost::configured();
        host.issue(json!({}));
        host.advance(600);
        host.issue(json!({}));
        assert_eq!(host.hub.login_count(), 2);
        assert!(
            host.hub.calls().iter().all(|c| c.status != 401),
            "no request was sent with a stale session"
        );
    }

    #[test]
    fn a_rate_limited_creation_is_retried_after_retry_after() {
        let host = TestHost::configured();
        host.issue(json!({}));
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::RateLimited { retry_after: 1 },
        ));
        let started = std::time::Instant::now();
        host.issue(json!({}));
        assert!(started.elapsed() >= std::time::Duration::from_secs(1));
        assert_eq!(host.hub.live_tokens().len(), 2);
    }

    #[test]
    fn a_long_rate_limit_is_reported_with_retry_after() {
        let host = TestHost::configured();
        host.issue(json!({}));
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::RateLimited { retry_after: 120 },
        ));
        match issue(&host, "token/hoeg/hoeg", json!({})) {
            Err(EngineError::Upstream(u)) => {
                assert_eq!((u.status, u.retry_after), (429, Some(120)), "{}", u.message)
            }
            other => panic!("{other:?}"),
        }
        // A 429 is the Hub's refusal: no lookup now, one look by the next rollback run.
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
        let response = host.call(Operation::Rollback, "", json!({})).unwrap();
        assert_eq!(response.data.unwrap()["awaiting_creations"], 0);
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn a_hub_refusal_carries_its_status_and_message() {
        let host = TestHost::configured();
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::Status(400),
        ));
        match issue(&host, "token/hoeg/hoeg", json!({})) {
            Err(EngineError::Upstream(u)) => {
                assert_eq!(u.status, 400);
                assert!(
                    u.message
                        .contains("Docker Hub refused to create an access token")
                );
                assert!(!u.message.contains(PASSWORD));
            }
            other => panic!("{other:?}"),
        }
    }

    /// The error of an issue whose Hub answer was lost, checked for operator words.
    fn lost_answer(host: &TestHost) -> UpstreamError {
        match issue(host, "token/hoeg/hoeg", json!({})) {
            Err(EngineError::Upstream(u)) => {
                for internal in ["ErrorCode", "HttpProtocolError", "Connection", "Upstream"] {
                    assert!(!u.message.contains(internal), "{}", u.message);
                }
                assert!(u.message.contains("retry the request"), "{}", u.message);
                u
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unanswered_creation_is_found_and_deleted_in_the_same_call() {
        let host = TestHost::configured();
        let kept = host.issue(json!({})).data.unwrap()["uuid"].clone();
        for after_the_fact in [
            FaultKind::DropAfterProcessing,
            FaultKind::StatusAfterProcessing(502),
            FaultKind::StatusAfterProcessing(500),
            // A replaying or caching proxy: a token object, but of another token.
            FaultKind::AnswerAfterProcessing(
                201,
                r#"{"uuid": "11111111-1111-4111-8111-111111111111", "token": "dckr_pat_x",
                    "token_label": "dockerhub-secrets:old:0000000000000000", "scopes": []}"#
                    .into(),
            ),
        ] {
            host.hub.inject(Fault::on(
                "POST",
                "/v2/access-tokens",
                after_the_fact.clone(),
            ));
            let error = lost_answer(&host);
            assert!(
                error.message.contains("found and deleted"),
                "{after_the_fact:?}: {}",
                error.message
            );
            let live: Vec<String> = host.hub.live_tokens().into_iter().map(|t| t.uuid).collect();
            assert_eq!(live, [kept.as_str().unwrap()], "{after_the_fact:?}");
            assert!(host.keys(Bucket::Wal).is_empty(), "{after_the_fact:?}");
        }
        assert_eq!(host.keys(Bucket::Token), [kept.as_str().unwrap()]);
        let posts = host
            .hub
            .calls()
            .iter()
            .filter(|c| c.method == "POST" && c.path == "/v2/access-tokens")
            .count();
        assert_eq!(posts, 5, "a creation is never sent twice");
    }

    #[test]
    fn a_creation_the_host_never_sent_needs_no_lookup_and_keeps_no_record() {
        use crate::capabilities::{NoAnswer, TransportError};
        let host = TestHost::configured();
        host.issue(json!({}));
        let refusals = [
            TransportError::permanent(
                NoAnswer::Denied,
                "the server asked for no requests for another 30 s (Retry-After), longer than \
                 this call may still run",
            ),
            TransportError::transient(NoAnswer::Refused, "ConnectionRefused"),
        ];
        for refusal in refusals {
            let calls_before = host.hub.calls().len();
            *host.refuse_next.borrow_mut() = Some(("POST", refusal.clone().unsent()));
            let error = match issue(&host, "token/hoeg/hoeg", json!({})) {
                Err(EngineError::Upstream(u)) => u,
                other => panic!("{other:?}"),
            };
            assert_eq!(error.status, 0);
            assert!(
                error
                    .message
                    .starts_with("could not create an access token at Docker Hub: "),
                "{}",
                error.message
            );
            assert!(
                !error.message.contains("did not answer"),
                "{}",
                error.message
            );
            assert!(host.keys(Bucket::Wal).is_empty(), "{}", refusal.message);
            assert_eq!(
                host.hub.calls().len(),
                calls_before,
                "no listing, nothing sent"
            );
        }
        let logged = host.logs.borrow().join("\n");
        assert!(
            logged.contains("POST /v2/access-tokens was not sent"),
            "{logged}"
        );

        // The same failure without the knowledge that nothing left is settled by label.
        *host.refuse_next.borrow_mut() = Some((
            "POST",
            TransportError::transient(NoAnswer::Refused, "ConnectionRefused"),
        ));
        let error = lost_answer(&host);
        assert!(
            error.message.contains("did not answer"),
            "{}",
            error.message
        );
        let listed = host
            .hub
            .calls()
            .iter()
            .filter(|c| c.method == "GET")
            .count();
        // One listing (read twice, to know it held still) settles it.
        assert_eq!(listed, 2, "one listing settles it");
    }

    #[test]
    fn only_the_hubs_own_refusals_mean_no_token_was_made() {
        let host = TestHost::configured();
        // A gateway in front of the Hub can fail after the Hub did the work, with a status the
        // Hub's contract never gives for a creation: the token is looked up and deleted.
        for status in [408, 409, 404, 499] {
            host.hub.inject(Fault::on(
                "POST",
                "/v2/access-tokens",
                FaultKind::StatusAfterProcessing(status),
            ));
            let error = lost_answer(&host);
            assert_eq!(error.status, status);
            assert!(
                error
                    .message
                    .contains(&format!("HTTP {status} after it may have")),
                "{}",
                error.message
            );
            assert!(
                error.message.contains("found and deleted"),
                "{}",
                error.message
            );
            assert!(host.hub.tokens().is_empty(), "HTTP {status}");
            assert!(host.keys(Bucket::Wal).is_empty(), "HTTP {status}");
        }
        // The Hub's own refusals mean no token by its contract: no lookup in the call, but the
        // record stays for one look by rollback, in case a Hub (or a proxy before it) did the
        // work first. Nobody waits for such a record.
        for (status, after_processing) in [(400, false), (403, false), (400, true), (403, true)] {
            let calls_before = host.hub.calls().len();
            host.hub.inject(Fault::on(
                "POST",
                "/v2/access-tokens",
                if after_processing {
                    FaultKind::StatusAfterProcessing(status)
                } else {
                    FaultKind::Status(status)
                },
            ));
            match issue(&host, "token/hoeg/hoeg", json!({})) {
                Err(EngineError::Upstream(u)) => {
                    assert_eq!(u.status, status);
                    assert!(u.message.starts_with("Docker Hub refused"), "{}", u.message);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(host.hub.calls().len(), calls_before + 1, "HTTP {status}");
            assert_eq!(host.keys(Bucket::Wal).len(), 1, "HTTP {status}");
            assert_eq!(host.hub.tokens().len(), usize::from(after_processing));
            let response = host.call(Operation::Rollback, "", json!({})).unwrap();
            assert_eq!(response.data.unwrap()["awaiting_creations"], 0);
            assert!(host.keys(Bucket::Wal).is_empty(), "HTTP {status}");
            assert!(host.hub.tokens().is_empty(), "HTTP {status}");
        }
    }

    #[test]
    fn a_creation_sent_again_after_a_refusal_leaves_no_second_token() {
        let host = TestHost::configured();
        host.issue(json!({}));
        // The Hub makes a token and answers 401 (or 429): the engine logs in again (or waits)
        // and sends the creation again with the same label. The issued token is kept; the one
        // the refused attempt made is deleted by the next rollback.
        for fault in [
            FaultKind::StatusAfterProcessing(401),
            FaultKind::StatusAfterProcessing(429),
        ] {
            let before = host.hub.tokens().len();
            host.hub
                .inject(Fault::on("POST", "/v2/access-tokens", fault.clone()));
            let issued = host.issue(json!({}));
            let uuid = issued.data.unwrap()["uuid"].as_str().unwrap().to_string();
            assert_eq!(host.hub.tokens().len(), before + 2, "{fault:?}");
            assert_eq!(host.keys(Bucket::Wal).len(), 1, "{fault:?}");
            let response = host.call(Operation::Rollback, "", json!({})).unwrap();
            assert_eq!(response.data.unwrap()["awaiting_creations"], 0);
            assert!(host.keys(Bucket::Wal).is_empty());
            let left: Vec<String> = host.hub.tokens().into_iter().map(|t| t.uuid).collect();
            assert_eq!(left.len(), before + 1, "{fault:?}");
            assert!(left.contains(&uuid), "the issued token stays: {fault:?}");
        }
    }

    #[test]
    fn retries_stop_where_the_calls_time_would_run_out() {
        use std::time::{Duration, Instant};
        let host = TestHost::configured();
        host.issue(json!({}));
        let gets = |host: &TestHost| {
            host.hub
                .calls()
                .iter()
                .filter(|c| c.method == "GET")
                .count()
        };
        // The creation's answer is lost and the listing fails with 503s: with no time limit
        // the listing is tried 4 times; with 2.5 s left, only while a wait leaves
        // WAIT_RESERVE, and the call answers in time with what it found out.
        for (time_left, listings) in [(None, 4), (Some(Duration::from_millis(2500)), 3)] {
            host.call_ends_at.set(time_left.map(|t| Instant::now() + t));
            host.hub
                .inject(Fault::on("POST", "/v2/access-tokens", FaultKind::Drop));
            host.hub
                .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(503)).times(10));
            let before = gets(&host);
            let error = lost_answer(&host);
            assert!(
                error
                    .message
                    .contains("looking for the token it may have created failed"),
                "{}",
                error.message
            );
            assert_eq!(gets(&host) - before, listings, "{time_left:?}");
            if let Some(end) = host.call_ends_at.get() {
                assert!(Instant::now() < end, "answered within the call");
            }
            host.hub.clear_faults();
        }
        // A Retry-After that outlasts what is left is reported at once, not waited out.
        host.call_ends_at
            .set(Some(Instant::now() + Duration::from_secs(3)));
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::RateLimited { retry_after: 2 },
        ));
        match issue(&host, "token/hoeg/hoeg", json!({})) {
            Err(EngineError::Upstream(u)) => assert_eq!((u.status, u.retry_after), (429, Some(2))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_log_of_a_settled_creation_is_in_operator_words() {
        let host = TestHost::configured();
        for fault in [FaultKind::DropAfterProcessing, FaultKind::Drop] {
            host.hub
                .inject(Fault::on("POST", "/v2/access-tokens", fault));
            lost_answer(&host);
        }
        host.hub
            .inject(Fault::on("POST", "/v2/access-tokens", FaultKind::Drop));
        host.hub.inject(Fault::on(
            "GET",
            "/v2/access-tokens",
            FaultKind::Status(400),
        ));
        lost_answer(&host);
        let logged = host.logs.borrow().join("\n");
        for expected in [
            "the token it had created was found and deleted",
            "Docker Hub lists no such token",
            "looking for the token failed (",
        ] {
            assert!(logged.contains(expected), "{expected}: {logged}");
        }
        for internal in ["Upstream(", "UpstreamError", "Failed(", "status:"] {
            assert!(!logged.contains(internal), "{internal}: {logged}");
        }
    }

    /// A creation whose answer was lost and whose token the call could not look up, left for
    /// rollback's one last look (the record is as old as the landing window): the token sits
    /// on the list's second page, behind 102 newer tokens of another client (and before 5
    /// older ones).
    fn lost_behind_a_page_edge(host: &TestHost) {
        host.hub.churn(ACCOUNT, 0, 5);
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        host.hub
            .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(500)).times(100));
        lost_answer(host);
        host.hub.clear_faults();
        host.hub.churn(ACCOUNT, 0, 102);
        host.advance(crate::rollback::LANDING_WINDOW);
    }

    fn ours(host: &TestHost) -> usize {
        let engines = |t: &&fakehub::TokenInfo| t.label.starts_with("dockerhub-secrets:");
        host.hub.live_tokens().iter().filter(engines).count()
    }

    fn shift_before_page_2(delete_newest: usize, create: usize) -> Fault {
        let churn = FaultKind::Churn {
            account: ACCOUNT.into(),
            delete_newest,
            create,
        };
        Fault::on("GET", "/v2/access-tokens", churn).with_query("page=2")
    }

    #[test]
    fn a_lost_creation_seen_on_a_list_that_never_held_still_is_deleted_in_the_call() {
        let host = TestHost::configured();
        host.hub.churn(ACCOUNT, 0, 150);
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        host.hub.inject(shift_before_page_2(0, 1).times(10));
        let error = lost_answer(&host);
        assert!(
            error.message.contains("found and deleted"),
            "{}",
            error.message
        );
        assert_eq!(ours(&host), 0);
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn rollback_reads_a_token_list_that_held_still() {
        let host = TestHost::configured();
        lost_behind_a_page_edge(&host);
        assert_eq!(ours(&host), 1);
        // Another client deletes 5 tokens between rollback's reads of page 1 and page 2: the
        // pages shift, and the lost token slips from page 2 into page 1's range unseen.
        host.hub.inject(shift_before_page_2(5, 0));
        host.call(Operation::Rollback, "", json!({})).unwrap();
        assert_eq!(ours(&host), 0, "{}", host.logs.borrow().join("\n"));
        assert!(host.keys(Bucket::Wal).is_empty());
        let logged = host.logs.borrow().join("\n");
        assert!(
            logged.contains("its count went from 108 to 103"),
            "{logged}"
        );

        // A list that never holds still proves nothing about the tokens not seen on it, but
        // a token seen with the record's label exists: it is deleted all the same.
        lost_behind_a_page_edge(&host);
        host.hub.inject(shift_before_page_2(0, 1).times(10));
        host.call(Operation::Rollback, "", json!({})).unwrap();
        let logged = host.logs.borrow().join("\n");
        assert!(
            logged.contains("a second read gave other tokens") || logged.contains("its count went"),
            "{logged}"
        );
        assert_eq!(ours(&host), 0, "{logged}");
        assert!(host.keys(Bucket::Wal).is_empty());

        // And a record whose token was not seen on such a list stays for the next run.
        host.hub
            .inject(Fault::on("POST", "/v2/access-tokens", FaultKind::Drop));
        host.hub
            .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(500)).times(100));
        lost_answer(&host);
        host.hub.clear_faults();
        host.advance(crate::rollback::LANDING_WINDOW);
        host.hub.inject(shift_before_page_2(0, 1).times(10));
        let error = host
            .call(Operation::Rollback, "", json!({}))
            .expect_err("the list kept changing");
        assert!(error.to_string().contains("kept changing"), "{error}");
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
        host.hub.clear_faults();
        host.call(Operation::Rollback, "", json!({})).unwrap();
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn a_creation_the_hub_never_made_keeps_its_record_in_case_it_lands_late() {
        let host = TestHost::configured();
        host.hub
            .inject(Fault::on("POST", "/v2/access-tokens", FaultKind::Drop));
        let error = lost_answer(&host);
        assert_eq!(error.status, 0);
        assert!(
            error.message.contains("did not answer"),
            "{}",
            error.message
        );
        assert!(error.message.contains("no such token"), "{}", error.message);
        assert!(host.hub.tokens().is_empty());
        assert_eq!(host.keys(Bucket::Wal).len(), 1, "rollback looks again");
        // The Hub may still carry the creation out: every run looks for the token until the
        // record is LANDING_WINDOW old, and says how many it still waits for.
        let record: serde_json::Value =
            serde_json::from_str(&host.stored_text(Bucket::Wal)).unwrap();
        let label = record["token_label"].clone();
        assert!(label.as_str().is_some_and(|l| !l.is_empty()), "{record}");
        for data in [json!({"immediate": true}), json!({})] {
            let response = host.call(Operation::Rollback, "", data).unwrap();
            let data = response.data.unwrap();
            assert_eq!(data["awaiting_creations"], 1);
            assert_eq!(data["awaiting_token_labels"], json!([label]));
            assert_eq!(host.keys(Bucket::Wal).len(), 1);
        }
        host.advance(crate::rollback::LANDING_WINDOW);
        let response = host.call(Operation::Rollback, "", json!({})).unwrap();
        let data = response.data.unwrap();
        assert_eq!(data["awaiting_creations"], 0);
        assert_eq!(data["awaiting_token_labels"], json!([]));
        assert!(host.keys(Bucket::Wal).is_empty());
        let logged = host.logs.borrow().join("\n");
        let dropped = format!(
            "Docker Hub lists no token {}: its interrupted creation was not carried out; its \
             record is dropped",
            label.as_str().unwrap()
        );
        assert!(logged.contains(&dropped), "{logged}");
    }

    #[test]
    fn a_creation_that_lands_after_the_timeout_is_left_to_rollback() {
        let host = TestHost::with_request_timeout(std::time::Duration::from_millis(700));
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg", "password": PASSWORD, "verify": false}),
        )
        .unwrap();
        // The Hub works on the creation for 1.5 s: the engine stops waiting at 0.7 s, and the
        // listing it settles with does not show the token yet.
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::Latency(std::time::Duration::from_millis(1500)),
        ));
        let error = lost_answer(&host);
        assert!(error.message.contains("no such token"), "{}", error.message);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert_eq!(host.hub.live_tokens().len(), 1, "the creation landed late");
        assert_eq!(host.keys(Bucket::Wal).len(), 1, "and rollback knows of it");
        // The call gave the record up, so the next periodic run (not `immediate`) deletes the
        // token at once, without waiting for the record to be WAL_MIN_AGE old.
        let response = host.call(Operation::Rollback, "", json!({})).unwrap();
        assert_eq!(response.data.unwrap()["awaiting_creations"], 0);
        assert!(host.hub.live_tokens().is_empty());
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn when_the_settling_fails_too_the_record_stays_and_the_error_says_so() {
        let host = TestHost::configured();
        host.issue(json!({}));
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        host.hub.inject(
            Fault::on("GET", "/v2/access-tokens", FaultKind::Status(503))
                .times(crate::hub::RETRY_BACKOFF.len() + 1),
        );
        let error = lost_answer(&host);
        assert!(error.message.contains("failed too"), "{}", error.message);
        assert!(error.message.contains("rollback"), "{}", error.message);
        assert_eq!(
            host.hub.live_tokens().len(),
            2,
            "the lost one is still there"
        );
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
        host.call(Operation::Rollback, "", json!({"immediate": true}))
            .unwrap();
        assert_eq!(host.hub.live_tokens().len(), 1);
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn a_refused_creation_is_looked_for_by_rollback_not_in_the_call() {
        let host = TestHost::configured();
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::Status(400),
        ));
        assert!(issue(&host, "token/hoeg/hoeg", json!({})).is_err());
        // The session died and logging in again fails: the POST was refused (401), nothing
        // was created.
        host.hub.expire_jwts();
        host.hub.set_password(ACCOUNT, "rotated");
        host.hub.clear_calls();
        assert!(issue(&host, "token/hoeg/hoeg", json!({})).is_err());
        assert!(
            !host
                .hub
                .calls()
                .iter()
                .any(|c| c.method == "GET" && c.path.starts_with("/v2/access-tokens")),
            "no listing for a creation the Hub refused: {:?}",
            host.hub.calls()
        );
        assert!(host.hub.tokens().is_empty());
        // Rollback looks once for each, when it can log in again.
        assert_eq!(host.keys(Bucket::Wal).len(), 2);
        assert!(host.call(Operation::Rollback, "", json!({})).is_err());
        assert_eq!(
            host.keys(Bucket::Wal).len(),
            2,
            "kept while the Hub cannot be asked"
        );
        host.hub.set_password(ACCOUNT, PASSWORD);
        let response = host.call(Operation::Rollback, "", json!({})).unwrap();
        assert_eq!(response.data.unwrap()["awaiting_creations"], 0);
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    /// Unix seconds now, with fractions, for checking the lease against the Hub's expiry.
    fn real_now() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    #[test]
    fn the_lease_ends_no_later_than_the_hubs_expiry() {
        let host = TestHost::configured();
        for ttl in ["5m", "1h"] {
            let response = host.issue(json!({"ttl": ttl}));
            let issued_at = real_now();
            let data = response.data.unwrap();
            let expires_at = data["expires_at"].as_str().unwrap();
            let at_hub = host.hub.token(data["uuid"].as_str().unwrap()).unwrap();
            assert_eq!(at_hub.expires_at.as_deref(), Some(expires_at));
            let hub_expiry = crate::hub::parse_rfc3339(expires_at).unwrap() as f64;
            let lease = response.lease.unwrap();
            assert_eq!(lease.max_ttl, 3600, "the full max_ttl");
            assert!(
                issued_at + lease.max_ttl as f64 <= hub_expiry,
                "{expires_at}"
            );
            assert!(
                hub_expiry - (issued_at + lease.max_ttl as f64) < 3.0,
                "the Hub ends it soon after the longest lease: {expires_at}"
            );
        }
    }

    #[test]
    fn an_earlier_hub_expiry_caps_the_lease_and_every_renewal() {
        let host = TestHost::configured();
        host.hub
            .grant_expiry(ExpiryGrant::AtMost(std::time::Duration::from_secs(600)));
        let response = host.issue(json!({"ttl": "30m"}));
        let issued_at = real_now();
        let data = response.data.unwrap();
        let uuid = data["uuid"].as_str().unwrap().to_string();
        let granted = host.hub.token(&uuid).unwrap().expires_at.unwrap();
        assert_eq!(
            data["expires_at"],
            crate::hub::rfc3339(crate::hub::parse_rfc3339(&granted).unwrap())
        );
        let hub_expiry = crate::hub::parse_rfc3339(&granted).unwrap();
        let lease = response.lease.unwrap();
        assert!(
            issued_at + lease.max_ttl as f64 <= hub_expiry as f64,
            "{lease:?} {granted}"
        );
        assert!(
            issued_at + lease.ttl as f64 <= hub_expiry as f64,
            "{lease:?} {granted}"
        );
        assert!(lease.max_ttl >= 597, "{lease:?}");
        assert!(
            response.warnings.iter().any(|w| w.contains("earlier than")),
            "{:?}",
            response.warnings
        );

        let mut state = crate::api::LeaseState {
            internal_data: lease.internal_data,
            issue_time: host.now(),
            ttl: lease.ttl,
            increment: 1800,
        };
        let renew = |state: &crate::api::LeaseState| {
            let mut request = Request::new(Operation::Renew, "token/hoeg/hoeg");
            request.lease = Some(state.clone());
            crate::backend::handle(&host, &request)
        };
        host.advance(500);
        let renewed = renew(&state).unwrap().lease.unwrap();
        assert!(
            host.now() + renewed.ttl < hub_expiry,
            "{renewed:?} vs {granted}"
        );
        state.ttl = renewed.ttl;
        host.advance(renewed.ttl);
        match renew(&state) {
            Err(EngineError::InvalidRequest(m)) => assert!(m.contains("Docker Hub expires"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hub_that_sets_no_expiry_is_reported_and_the_token_still_revoked() {
        let host = TestHost::configured();
        host.hub.grant_expiry(ExpiryGrant::Never);
        let response = host.issue(json!({}));
        let data = response.data.unwrap();
        assert_eq!(data["expires_at"], Value::Null);
        assert!(
            response.warnings.iter().any(|w| w.contains("no expiry")),
            "{:?}",
            response.warnings
        );
        let uuid = data["uuid"].as_str().unwrap();
        let record = crate::secret_token::TokenRecord::load(&host, uuid)
            .unwrap()
            .unwrap();
        assert_eq!(record.hub_expires_at, None);
        // Years later, tidy still deletes it at the Hub: no expiry there will.
        host.advance(10 * 365 * 86_400);
        host.call(Operation::Rollback, "", json!({})).unwrap();
        assert!(host.hub.tokens().is_empty());
    }

    #[test]
    fn a_token_dead_on_arrival_is_deleted_and_refused() {
        let host = TestHost::configured();
        host.hub
            .grant_expiry(ExpiryGrant::AtMost(std::time::Duration::from_millis(500)));
        match issue(&host, "token/hoeg/hoeg", json!({})) {
            Err(EngineError::Upstream(u)) => {
                assert!(u.message.contains("no time for a lease"), "{}", u.message)
            }
            other => panic!("{other:?}"),
        }
        assert!(host.hub.tokens().is_empty());
        assert!(host.keys(Bucket::Wal).is_empty());
        assert!(host.keys(Bucket::Token).is_empty());
    }

    #[test]
    fn a_token_that_cannot_be_recorded_is_deleted_again() {
        let host = TestHost::configured();
        host.failing_bucket.set(Some(Bucket::Token));
        assert!(matches!(
            issue(&host, "token/hoeg/hoeg", json!({})),
            Err(EngineError::Internal(m)) if m.contains("disk full")
        ));
        assert!(host.hub.live_tokens().is_empty());
        assert!(host.keys(Bucket::Wal).is_empty());
    }
}
