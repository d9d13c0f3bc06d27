//! `token/<account>/<namespace>`: issue a Docker Hub access token under a lease.
//!
//! The namespace in the path is what Vault policies match on: a Docker Hub PAT reaches every
//! repository its account can, so the engine's only namespace restriction is that a caller
//! allowed on `token/hoeg/my-organization` cannot ask for `token/hoeg/hoeg`. A namespace
//! outside the account's list is refused before any Hub call.
//!
//! No orphans: a write-ahead record exists before the Hub is asked to create the token and
//! until the token is recorded, so that rollback can delete a token whose creation was
//! interrupted; and the token's own Hub expiry is set to the lease's max_ttl, so the Hub
//! kills it even if every revocation fails.

use crate::api::{EngineError, Field, FieldKind, Lease, Operation, PathHelp, Request, Response};
use crate::capabilities::{Host, Level};
use crate::duration;
use crate::fields::FieldData;
use crate::hub::rfc3339;
use crate::names;
use crate::path_config::AccountConfig;
use crate::rollback::PendingCreation;
use crate::secret_token::{LeaseData, TokenRecord};
use serde_json::{Map, Value};

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
    Field {
        name: "label",
        kind: FieldKind::String,
        description: "Shown in the token's label in Docker Hub's UI, to tell who uses it \
                      (1-64 letters, digits or - _ . @ + =). Defaults to the requester's \
                      display name.",
        default: None,
        required: false,
        sensitive: false,
    },
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
                      Hub. Use the token with `docker login -u <username> --password-stdin`. \
                      Write to it, or read it for tools that can only read.",
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
    let label = match data.string("label")? {
        Some(label) => {
            names::check_label(&label)?;
            label
        }
        None => names::default_label(request.display_name.as_deref()),
    };
    let mut warnings = data.unknown_field_warnings();

    let ttl = match data.duration("ttl")? {
        None | Some(0) => config.ttl,
        Some(ttl) if ttl > config.max_ttl => {
            return Err(EngineError::invalid(format!(
                "ttl {} exceeds the max_ttl of account {account} ({})",
                duration::format(ttl),
                duration::format(config.max_ttl)
            )));
        }
        Some(ttl) => ttl,
    };
    // The host's limit (a mount's max lease TTL) wins over the account's: the token must not
    // outlive the longest lease the host will keep.
    let max_ttl = match host.max_lease_ttl() {
        Some(limit) if limit > 0 && limit < config.max_ttl => limit,
        _ => config.max_ttl,
    };
    let ttl = if ttl > max_ttl {
        warnings.push(format!(
            "ttl of {} exceeds the mount's max lease TTL of {}; capped",
            duration::format(ttl),
            duration::format(max_ttl)
        ));
        max_ttl
    } else {
        ttl
    };

    let now = host.now();
    let hub_expires_at = now + max_ttl;
    let pending = PendingCreation::begin(host, account, &label)?;
    let hub = config.hub(host, account);
    let created = match hub.create_token(&pending.token_label, &scope, hub_expires_at) {
        Ok(created) => created,
        Err(e) => {
            // A 4xx means the Hub refused and created nothing; anything else may have
            // created the token, and rollback must look for it.
            if matches!(&e, EngineError::Upstream(u) if (400..500).contains(&u.status)) {
                pending.abandon(host);
            }
            return Err(e);
        }
    };
    let record = TokenRecord {
        account: account.to_string(),
        namespace: namespace.to_string(),
        label: label.clone(),
        scope: scope.clone(),
        token_label: pending.token_label.clone(),
        issued_at: now,
        ttl,
        max_ttl,
        lease_expires_at: now + ttl,
        hub_expires_at,
    };
    if let Err(e) = record.save(host, &created.uuid) {
        // Untracked, the token must not live on; if this delete fails too, the
        // write-ahead record still leads rollback to it.
        if hub.delete_token(&created.uuid).is_ok() {
            pending.abandon(host);
        }
        return Err(e);
    }
    pending.finish(host);
    host.log(
        Level::Info,
        "token",
        &format!(
            "issued token {} ({}) for namespace {namespace}, scope {scope}, ttl {}",
            created.uuid,
            pending.token_label,
            duration::format(ttl)
        ),
    );

    let mut out = Map::new();
    out.insert("token".into(), Value::from(created.token));
    out.insert("uuid".into(), Value::from(created.uuid.clone()));
    out.insert("username".into(), Value::from(account));
    out.insert("namespace".into(), Value::from(namespace));
    out.insert("scope".into(), Value::from(scope));
    out.insert("label".into(), Value::from(label));
    out.insert("expires_at".into(), Value::from(rfc3339(hub_expires_at)));
    let internal = LeaseData {
        account: account.to_string(),
        uuid: created.uuid,
    };
    Ok(Response {
        data: Some(out),
        lease: Some(Lease {
            ttl,
            max_ttl,
            renewable: true,
            internal_data: internal.to_json(),
        }),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::Bucket;
    use crate::testing::{PASSWORD, TestHost};
    use fakehub::{Fault, FaultKind};
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
    fn the_hub_expires_the_token_at_max_ttl() {
        let host = TestHost::configured();
        let before = host.now();
        let data = host.issue(json!({})).data.unwrap();
        let expires_at = data["expires_at"].as_str().unwrap();
        assert!(
            [before + 3600, before + 3601]
                .map(rfc3339)
                .contains(&expires_at.to_string()),
            "{expires_at}"
        );
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
                json!({"label": "has space"}),
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
        request.display_name = Some("token-ci runner".into());
        let data = crate::backend::handle(&host, &request)
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["label"], "token-ci-runner");
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
        assert!(
            response.warnings[0].contains("capped"),
            "{:?}",
            response.warnings
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
        assert!(host.keys(Bucket::Wal).is_empty(), "a 429 created nothing");
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
        assert!(host.keys(Bucket::Wal).is_empty());
    }

    #[test]
    fn an_interrupted_creation_leaves_a_write_ahead_record() {
        let host = TestHost::configured();
        host.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::DropAfterProcessing,
        ));
        match issue(&host, "token/hoeg/hoeg", json!({})) {
            Err(EngineError::Upstream(u)) => assert_eq!(u.status, 0, "{}", u.message),
            other => panic!("{other:?}"),
        }
        assert_eq!(host.hub.live_tokens().len(), 1, "the Hub created it");
        assert_eq!(host.keys(Bucket::Wal).len(), 1);
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
