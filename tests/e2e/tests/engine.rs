//! The engine's whole token lifecycle, through the compiled component in the host runtime,
//! against the Docker Hub fake: configure an account, issue a token, revoke it, and
//! everything that can go wrong on the way.

use dockerhub_secrets::CallError;
use dockerhub_secrets::engine::{Operation, SystemView};
use dockerhub_secrets_e2e::{ACCOUNT, Engine, Issued, PASSWORD, data, docker_login, logs, request};
use fakehub::{ExpiryGrant, Fault, FaultKind};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn status(result: &Result<impl std::fmt::Debug, CallError>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(e) => e.http_status(),
    }
}

fn message(result: Result<impl std::fmt::Debug, CallError>) -> String {
    result.expect_err("expected an error").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_session_config_then_token_then_revoke() {
    let engine = Engine::start();
    let written = engine
        .call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg,my-organization", "password": PASSWORD}),
        )
        .await
        .unwrap();
    assert_eq!(
        written.data, None,
        "a config write answers like `Success! Data written`"
    );

    let config = data(
        &engine
            .call(Operation::Read, "config/hoeg", Value::Null)
            .await
            .unwrap(),
    );
    assert_eq!(config["namespace"], json!(["hoeg", "my-organization"]));
    assert_eq!(config["ttl"], "5m0s");
    assert_eq!(config["username"], ACCOUNT);
    assert!(!config.contains_key("password"));

    let issued = engine.issue(json!({"label": "release-build"})).await;
    assert_eq!(issued.data["namespace"], "my-organization");
    assert_eq!(issued.data["username"], ACCOUNT);
    assert_eq!((issued.ttl, issued.max_ttl), (300, 3600));
    let at_hub = engine
        .hub
        .token(issued.uuid())
        .expect("the token exists at the Hub");
    assert_eq!(at_hub.token, issued.token());
    assert!(at_hub.label.contains("release-build"), "{}", at_hub.label);
    assert_eq!(at_hub.scopes, ["repo:write"]);
    assert!(
        at_hub.expires_at.is_some(),
        "the Hub kills it at max_ttl by itself"
    );
    let (username, login) =
        docker_login(&engine.hub, issued.data["docker_config"].as_str().unwrap());
    assert_eq!(
        (username.as_str(), login.as_str()),
        (ACCOUNT, issued.token())
    );

    engine.revoke(&issued.lease).await.unwrap();
    assert!(
        engine.hub.token(issued.uuid()).is_none(),
        "revoked at the Hub"
    );
    assert!(engine.hub.live_tokens().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_keeps_one_folder_per_bucket() {
    let engine = Engine::start();
    engine.configure().await;
    let issued = engine.issue(Value::Null).await;
    let keys = engine.storage.keys();
    assert_eq!(
        keys,
        [
            "config/hoeg".to_string(),
            // The mount's id: this host has none of its own.
            "mount/id".to_string(),
            "session/hoeg".to_string(),
            format!("token/{}", issued.uuid()),
        ]
    );
    let record = String::from_utf8(engine.storage.raw(&keys[3]).unwrap()).unwrap();
    assert!(
        !record.contains(issued.token()),
        "the token record holds no secret"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_on_delete_counts_as_revoked_only_when_the_listing_agrees() {
    let engine = Engine::start();
    engine.configure().await;
    let token_records = |engine: &Engine| {
        engine
            .storage
            .keys()
            .iter()
            .filter(|k| k.starts_with("token/"))
            .count()
    };
    // A 404 from something that did not pass the DELETE on: the token is still listed.
    let kept = engine.issue(Value::Null).await;
    engine.hub.inject(Fault::on(
        "DELETE",
        "/v2/access-tokens/",
        FaultKind::Status(404),
    ));
    let error = engine.revoke(&kept.lease).await.unwrap_err().to_string();
    assert!(error.contains("still lists"), "{error}");
    assert!(engine.hub.token(kept.uuid()).is_some());
    assert_eq!(token_records(&engine), 1);
    engine.revoke(&kept.lease).await.unwrap();
    assert!(engine.hub.token(kept.uuid()).is_none());
    // Deleted at the Hub behind the engine's back: the 404 is the truth.
    let gone = engine.issue(Value::Null).await;
    assert!(engine.hub.delete_token(gone.uuid()));
    engine.revoke(&gone.lease).await.unwrap();
    assert_eq!(token_records(&engine), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flaky_delete_is_sent_again_inside_the_call_and_a_dead_hub_is_an_error() {
    let engine = Engine::start();
    engine.configure().await;
    let issued = engine.issue(Value::Null).await;
    engine
        .hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(500)).times(2));
    engine
        .hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Drop));
    engine.revoke(&issued.lease).await.unwrap();
    assert!(engine.hub.token(issued.uuid()).is_none());
    let deletes: Vec<u16> = engine
        .hub
        .calls()
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.status)
        .collect();
    assert_eq!(deletes, [500, 500, 0, 204]);

    // A Hub that keeps failing: the call gives up after its bounded attempts, and the
    // host's next revoke finishes the job.
    let second = engine.issue(Value::Null).await;
    engine
        .hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(503)).times(4));
    let failed = engine.revoke(&second.lease).await;
    assert_eq!(status(&failed), 502, "{failed:?}");
    assert!(engine.hub.token(second.uuid()).is_some());
    engine.revoke(&second.lease).await.unwrap();
    assert!(engine.hub.token(second.uuid()).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_outside_the_list_is_denied_with_no_hub_call() {
    let engine = Engine::start();
    engine.configure().await;
    engine.hub.clear_calls();
    let denied = engine
        .call(Operation::Update, "token/hoeg/someone-else", Value::Null)
        .await;
    assert_eq!(status(&denied), 403);
    assert!(message(denied).contains("someone-else"));
    assert!(engine.hub.calls().is_empty(), "{:?}", engine.hub.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_config_is_a_400_for_tokens_and_nothing_for_reads() {
    let engine = Engine::start();
    let issued = engine
        .call(Operation::Update, "token/nobody/nobody", Value::Null)
        .await;
    assert_eq!(status(&issued), 400);
    assert!(message(issued).contains("config/nobody"));
    let read = engine
        .call(Operation::Read, "config/nobody", Value::Null)
        .await
        .unwrap();
    assert_eq!(read.data, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_400_that_says_what_is_wrong() {
    let engine = Engine::start();
    engine.configure().await;
    for (path, body, expected) in [
        (
            "config/hoeg",
            json!({"ttl": "5 minutes"}).to_string(),
            "ttl: invalid duration",
        ),
        (
            "config/hoeg",
            json!({"max_ttl": "1m"}).to_string(),
            "must not exceed max_ttl",
        ),
        (
            "config/hoeg",
            json!({"scopes": "repo:everything"}).to_string(),
            "repo:everything",
        ),
        (
            "config/hoeg",
            json!({"namespace": "UPPER"}).to_string(),
            "namespace \"UPPER\"",
        ),
        (
            "token/hoeg/hoeg",
            json!({"label": "no\nline breaks"}).to_string(),
            "no control characters",
        ),
        (
            "token/hoeg/hoeg",
            json!({"scope": "write"}).to_string(),
            "write",
        ),
        (
            "token/hoeg/hoeg",
            json!({"ttl": "3h"}).to_string(),
            "exceeds the max_ttl",
        ),
        ("token/hoeg/hoeg", "{not json".to_string(), "not valid JSON"),
        ("token/hoeg/hoeg", "[1, 2]".to_string(), "JSON object"),
    ] {
        let mut bad = request(Operation::Update, path, Value::Null);
        bad.data = body.clone();
        let result = engine.send(bad).await;
        assert_eq!(status(&result), 400, "{path} {body}: {result:?}");
        let text = message(result);
        assert!(text.contains(expected), "{path} {body}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_and_operations() {
    let engine = Engine::start();
    assert_eq!(
        status(
            &engine
                .call(Operation::Read, "nothing/here", Value::Null)
                .await
        ),
        404
    );
    assert_eq!(
        status(
            &engine
                .call(Operation::Delete, "token/hoeg/hoeg", Value::Null)
                .await
        ),
        405
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_issues_need_one_login() {
    let engine = Engine::start();
    engine.configure().await;
    for _ in 0..100 {
        engine.issue(Value::Null).await;
    }
    assert_eq!(engine.hub.login_count(), 1);
    assert_eq!(engine.hub.live_tokens().len(), 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_on_create_is_waited_out_and_succeeds() {
    let engine = Engine::start();
    engine.configure().await;
    engine.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::RateLimited { retry_after: 1 },
    ));
    let issued = engine.issue(Value::Null).await;
    assert!(engine.hub.token(issued.uuid()).is_some());
    let statuses: Vec<u16> = engine
        .hub
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path.starts_with("/v2/access-tokens"))
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [429, 201]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creation_whose_answer_is_lost_is_settled_in_the_same_call() {
    let engine = Engine::start();
    engine.configure().await;
    let kept = engine.issue(Value::Null).await;
    engine.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::DropAfterProcessing,
    ));
    let lost = engine
        .call(Operation::Update, "token/hoeg/my-organization", Value::Null)
        .await;
    assert_eq!(status(&lost), 502, "{lost:?}");
    let text = message(lost);
    for words in ["did not answer", "found and deleted", "retry the request"] {
        assert!(text.contains(words), "{text}");
    }
    for internal in ["ErrorCode", "HttpProtocolError", "Upstream"] {
        assert!(!text.contains(internal), "{text}");
    }
    let live: Vec<String> = engine
        .hub
        .live_tokens()
        .into_iter()
        .map(|t| t.uuid)
        .collect();
    assert_eq!(live, [kept.uuid()], "the lost token is gone at once");
    assert!(!engine.storage.keys().iter().any(|k| k.starts_with("wal/")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_creation_is_cleaned_by_rollback() {
    let engine = Engine::start();
    engine.configure().await;
    let kept = engine.issue(Value::Null).await;
    // The answer is lost and the settling listing fails on every attempt: the write-ahead
    // record is left for rollback.
    engine.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::DropAfterProcessing,
    ));
    engine
        .hub
        .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(503)).times(4));
    let lost = engine
        .call(Operation::Update, "token/hoeg/my-organization", Value::Null)
        .await;
    assert_eq!(status(&lost), 502, "{lost:?}");
    assert!(message(lost).contains("rollback"));
    assert_eq!(
        engine.hub.live_tokens().len(),
        2,
        "the Hub created the lost token"
    );

    engine
        .call(Operation::Rollback, "", json!({"immediate": true}))
        .await
        .unwrap();
    let live: Vec<String> = engine
        .hub
        .live_tokens()
        .into_iter()
        .map(|t| t.uuid)
        .collect();
    assert_eq!(live, [kept.uuid()]);
    assert!(!engine.storage.keys().iter().any(|k| k.starts_with("wal/")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hubs_own_expiry_caps_the_lease_or_its_absence_is_a_warning() {
    let engine = Engine::start();
    engine.configure().await;
    engine
        .hub
        .grant_expiry(ExpiryGrant::AtMost(Duration::from_secs(600)));
    let response = engine
        .call(
            Operation::Update,
            "token/hoeg/my-organization",
            json!({"ttl": "30m"}),
        )
        .await
        .unwrap();
    let issued_at = SystemTime::now();
    assert!(
        response.warnings.iter().any(|w| w.contains("earlier than")),
        "{:?}",
        response.warnings
    );
    let issued = dockerhub_secrets_e2e::Issued::from(response);
    let granted = engine.hub.token(issued.uuid()).unwrap().expires_at.unwrap();
    let hub_expiry = humantime::parse_rfc3339(&granted).unwrap();
    let reported = humantime::parse_rfc3339(issued.data["expires_at"].as_str().unwrap()).unwrap();
    assert!(
        hub_expiry.duration_since(reported).unwrap() < Duration::from_secs(1),
        "the answer reports the Hub's expiry: {granted} vs {}",
        issued.data["expires_at"]
    );
    assert!(
        issued_at + Duration::from_secs(issued.max_ttl) <= hub_expiry,
        "lease max {} ends after the token {granted}",
        issued.max_ttl
    );
    assert!(issued.ttl <= issued.max_ttl && issued.max_ttl >= 597);

    engine.hub.grant_expiry(ExpiryGrant::Never);
    let response = engine
        .call(Operation::Update, "token/hoeg/my-organization", Value::Null)
        .await
        .unwrap();
    assert!(
        response.warnings.iter().any(|w| w.contains("no expiry")),
        "{:?}",
        response.warnings
    );
    let forever = dockerhub_secrets_e2e::Issued::from(response);
    assert_eq!(forever.data["expires_at"], Value::Null);
    engine.revoke(&forever.lease).await.unwrap();
    assert!(engine.hub.token(forever.uuid()).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_long_password_is_a_400_at_once() {
    let engine = Engine::start();
    let started = std::time::Instant::now();
    let refused = engine
        .call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg", "password": "p".repeat(6000)}),
        )
        .await;
    assert_eq!(status(&refused), 400, "{refused:?}");
    let text = message(refused);
    assert!(text.starts_with("password is too long"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(engine.hub.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_size_limit_is_a_413_and_never_reaches_the_sandbox() {
    use dockerhub_secrets::engine::MAX_REQUEST_BYTES;
    let engine = Engine::start_with(dockerhub_secrets::RuntimeConfig {
        memory_limit: 16 << 20,
        ..Default::default()
    });
    let body = |size: usize| {
        let mut request = request(Operation::Update, "config/hoeg", Value::Null);
        let padding = size - r#"{"namespace":"hoeg","password":""}"#.len();
        request.data = json!({"namespace": "hoeg", "password": "p".repeat(padding)}).to_string();
        assert_eq!(request.data.len(), size);
        request
    };
    let at_limit = engine.send(body(MAX_REQUEST_BYTES)).await;
    assert_eq!(status(&at_limit), 400, "the engine answers: {at_limit:?}");

    // Larger than the sandbox's whole memory: refused before the engine is called.
    for size in [MAX_REQUEST_BYTES + 1, 40 << 20] {
        let refused = engine.send(body(size)).await;
        assert_eq!(status(&refused), 413, "{size}: {refused:?}");
        let text = message(refused);
        assert!(text.starts_with("request body too large"), "{text}");
    }
    assert!(engine.hub.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_reads_errors_or_logs() {
    let engine = Engine::start();
    engine.configure().await;
    let issued = engine.issue(json!({"label": "leak-check"})).await;
    let token = issued.token().to_string();

    let mut seen = Vec::new();
    seen.push(
        serde_json::to_string(&data(
            &engine
                .call(Operation::Read, "config/hoeg", Value::Null)
                .await
                .unwrap(),
        ))
        .unwrap(),
    );
    engine.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::Status(400),
    ));
    seen.push(message(
        engine
            .call(Operation::Update, "token/hoeg/hoeg", Value::Null)
            .await,
    ));
    engine.hub.set_password(ACCOUNT, "rotated");
    engine.hub.expire_jwts();
    seen.push(message(
        engine
            .call(Operation::Update, "token/hoeg/hoeg", Value::Null)
            .await,
    ));
    seen.push(message(
        engine
            .call(
                Operation::Update,
                "config/hoeg",
                json!({"password": "a-wrong-password"}),
            )
            .await,
    ));
    engine.revoke(&issued.lease).await.ok();
    seen.push(issued.lease.internal_data.clone());

    let logs = logs();
    assert!(
        logs.contains("issued token"),
        "the engine's log reaches the host"
    );
    for text in seen.iter().chain([&logs]) {
        for secret in [PASSWORD, token.as_str(), "a-wrong-password", "rotated"] {
            assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
        }
    }
}

/// A GitLab project path, spaces and non-ASCII are labels, as Docker Hub takes them.
#[tokio::test(flavor = "multi_thread")]
async fn a_project_path_is_a_label_at_the_hub() {
    let engine = Engine::start();
    engine.configure().await;
    let issued = engine.issue(json!({"label": "acme/app: deploy ✓"})).await;
    let at_hub = engine.hub.token(issued.uuid()).unwrap();
    assert!(
        at_hub.label.contains(":acme/app: deploy ✓:"),
        "{}",
        at_hub.label
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_and_existence_checks_come_from_the_component() {
    let engine = Engine::start();
    let help = engine.layer.help().await.unwrap();
    let patterns: Vec<&str> = help.paths.iter().map(|p| p.pattern.as_str()).collect();
    assert_eq!(patterns.len(), 7, "{patterns:?}");
    assert!(help.description.contains("Docker Hub"));

    let check = async |path: &str| {
        let request = request(Operation::Update, path, Value::Null);
        engine
            .layer
            .existence_check(engine.storage.clone(), &request)
            .await
    };
    assert_eq!(check("config/hoeg").await.unwrap(), Some(false));
    engine.configure().await;
    assert_eq!(check("config/hoeg").await.unwrap(), Some(true));
    assert_eq!(check("token/hoeg/hoeg").await.unwrap(), None);
    assert_eq!(check("roles/release").await.unwrap(), Some(false));
    assert_eq!(check("creds/release").await.unwrap(), None);
    // A path without a check (per the engine's help) is answered without an instance; the
    // write itself then gets the engine's 404.
    assert_eq!(check("nowhere").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_revoke_waits_at_the_runtimes_gate_and_succeeds() {
    let engine = Engine::start();
    engine.configure().await;
    let paced = engine.issue(Value::Null).await;
    let refused = engine.issue(Value::Null).await;

    engine.hub.inject(Fault::on(
        "DELETE",
        "/v2/access-tokens/",
        FaultKind::RateLimited { retry_after: 1 },
    ));
    engine.revoke(&paced.lease).await.unwrap();
    assert!(engine.hub.token(paced.uuid()).is_none());
    let deletes: Vec<u16> = engine
        .hub
        .calls()
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.status)
        .collect();
    assert_eq!(deletes, [429, 204]);

    // Beyond the runtime's patience the error goes back to the host, with retry_after.
    engine.hub.inject(Fault::on(
        "DELETE",
        "/v2/access-tokens/",
        FaultKind::RateLimited { retry_after: 16 },
    ));
    let asked = std::time::Instant::now();
    match engine.revoke(&refused.lease).await {
        Err(CallError::Engine(dockerhub_secrets::engine::EngineError::Upstream(u))) => {
            assert_eq!(u.status, 429);
            assert!(matches!(u.retry_after, Some(15..=16)), "{u:?}");
            assert!(
                asked.elapsed() < Duration::from_secs(5),
                "reported, not waited"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(engine.hub.token(refused.uuid()).is_some());
}

/// A host limit that counts how often the engine asks for it.
struct CountedLimit {
    max_ttl: u64,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl SystemView for CountedLimit {
    async fn max_ttl(&self) -> Option<u64> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(self.max_ttl)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_max_lease_ttl_is_asked_only_while_issuing_and_caps_the_lease() {
    let mut engine = Engine::start();
    let limit = Arc::new(CountedLimit {
        max_ttl: 1200,
        asked: Default::default(),
    });
    engine.system_view = limit.clone();
    engine.configure().await;
    engine
        .call(Operation::Read, "config/hoeg", Value::Null)
        .await
        .unwrap();
    let refused = engine
        .call(Operation::Update, "token/hoeg/elsewhere", Value::Null)
        .await;
    assert_eq!(status(&refused), 403);
    assert_eq!(limit.asked.load(std::sync::atomic::Ordering::SeqCst), 0);

    let issued = engine.issue(json!({"ttl": "1h"})).await;
    assert_eq!(limit.asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!((issued.ttl, issued.max_ttl), (1200, 1200));
    let expires_at = engine.hub.token(issued.uuid()).unwrap().expires_at.unwrap();
    let left = humantime::parse_rfc3339(&expires_at)
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left.as_secs() <= 1202,
        "the Hub ends the token within the host's limit (and 2 s of slack): {expires_at}"
    );

    engine.revoke(&issued.lease).await.unwrap();
    assert_eq!(
        limit.asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a revocation needs no limit"
    );
}

#[tokio::test]
async fn the_accounts_quota_refuses_before_any_hub_call() {
    let engine = Engine::start();
    engine
        .call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "my-organization", "password": PASSWORD, "max_live_tokens": "1"}),
        )
        .await
        .unwrap();
    let first = engine.issue(json!({})).await;
    engine.hub.clear_calls();
    let refused = engine
        .call(Operation::Update, "token/hoeg/my-organization", json!({}))
        .await;
    match refused {
        Err(CallError::Engine(dockerhub_secrets::engine::EngineError::InvalidRequest(message))) => {
            assert!(
                message
                    .starts_with("account hoeg holds 1 live token(s) (creations in progress included), its quota max_live_tokens=1"),
                "{message}"
            )
        }
        other => panic!("not refused with a 400: {other:?}"),
    }
    assert!(engine.hub.calls().is_empty(), "no Hub call");
    engine.revoke(&first.lease).await.unwrap();
    engine.issue(json!({})).await;
}

#[tokio::test]
async fn an_organization_token_through_the_component() {
    let engine = Engine::start();
    engine
        .call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "my-organization", "password": PASSWORD}),
        )
        .await
        .unwrap();
    engine
        .call(
            Operation::Update,
            "roles/release",
            json!({"account": "hoeg", "organization": "my-organization",
                   "pull_repositories": "base", "push_repositories": "app"}),
        )
        .await
        .unwrap();
    let role = data(
        &engine
            .call(Operation::Read, "roles/release", Value::Null)
            .await
            .unwrap(),
    );
    assert_eq!(role["push_repositories"], json!(["my-organization/app"]));
    let listed = data(
        &engine
            .call(Operation::List, "roles/", Value::Null)
            .await
            .unwrap(),
    );
    assert_eq!(listed["keys"], json!(["release"]));

    let issued = Issued::from(
        engine
            .call(
                Operation::Update,
                "creds/release",
                json!({"label": "release"}),
            )
            .await
            .unwrap(),
    );
    let id = issued.data["id"].as_str().unwrap();
    assert!(
        engine.storage.keys().contains(&"role/release".to_string()),
        "roles are kept in their own bucket"
    );
    let at_hub = engine.hub.org_token(id).expect("the token is at the Hub");
    assert_eq!(
        at_hub.resources,
        [
            fakehub::OrgTokenResource::repo(
                "my-organization/app",
                &["scope-image-pull", "scope-image-push"]
            ),
            fakehub::OrgTokenResource::repo("my-organization/base", &["scope-image-pull"]),
        ]
    );
    let (username, token) =
        docker_login(&engine.hub, issued.data["docker_config"].as_str().unwrap());
    assert_eq!(username, "my-organization");
    assert_eq!(at_hub.token, token);

    engine.revoke(&issued.lease).await.unwrap();
    assert!(engine.hub.org_token(id).is_none(), "deleted at the Hub");
    assert!(!logs().contains(&token), "no token in the log");
}
