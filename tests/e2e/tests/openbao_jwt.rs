//! Keyless CI in plugin mode: a pipeline's OIDC identity token (from a test-only issuer,
//! GitLab- and GitHub-shaped) logs in with OpenBao's own `jwt` auth method and gets a Docker
//! Hub token for its one path; the token ends with the login token, whether the job revokes
//! it (`bao token revoke -self`) or it expires. The account's label template names the
//! pipeline at the Hub from the login's alias metadata.

use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::oidc::{Alg, Issuer, github_claims, gitlab_claims};
use dockerhub_secrets_e2e::openbao::{OpenBao, eventually};
use serde_json::{Value, json};
use std::time::Duration;

/// The audience the pipelines' tokens are minted for (GitLab's `id_tokens: aud:`).
const AUDIENCE: &str = "https://openbao.example";

/// The README's pipeline policy: one token path, nothing else.
const POLICY: &str = r#"
path "dockerhub/token/hoeg/my-organization" {
  capabilities = ["create", "update"]
}
"#;

/// OpenBao with the plugin and an account, `jwt` auth trusting `issuer` (by its JWKS URL, or
/// by OIDC discovery), the pipeline policy, and `role` on `jwt`.
fn start(issuer: &Issuer, discovery: bool, role: &str, role_config: Value) -> OpenBao {
    let bao = OpenBao::start(PASSWORD).expect("start OpenBao with the plugin");
    bao.write_seed_config(PASSWORD).unwrap();
    bao.bao_stdin(&["policy", "write", "ci-release", "-"], POLICY)
        .unwrap();
    bao.bao_ok(&["auth", "enable", "jwt"]).unwrap();
    let trust = if discovery {
        format!("oidc_discovery_url={}", issuer.url())
    } else {
        format!("jwks_url={}", issuer.jwks_url())
    };
    bao.bao_ok(&[
        "write",
        "auth/jwt/config",
        &trust,
        &format!("bound_issuer={}", issuer.url()),
    ])
    .unwrap();
    bao.bao_stdin(
        &["write", &format!("auth/jwt/role/{role}"), "-"],
        &role_config.to_string(),
    )
    .unwrap();
    bao
}

/// A GitLab role: `project_path` is the user (so the display name is `jwt-<project_path>`),
/// bound to one project's protected branches, and kept in the alias's metadata
/// (`claim_mappings`) for the account's label template.
fn gitlab_role(project_path: &str, ttl: &str) -> Value {
    json!({
        "role_type": "jwt",
        "user_claim": "project_path",
        "bound_audiences": [AUDIENCE],
        "bound_claims": {"project_path": project_path, "ref_protected": "true"},
        "claim_mappings": {"project_path": "project_path"},
        "token_policies": ["ci-release"],
        "token_ttl": ttl,
        "token_max_ttl": ttl,
    })
}

/// The README's login: `printf %s "$JWT" | bao write -field=token auth/jwt/login
/// role=<role> jwt=-` (the identity token on stdin, off the command line): the client token.
fn login(bao: &OpenBao, role: &str, jwt: &str) -> anyhow::Result<String> {
    let token = bao.bao_stdin(
        &[
            "write",
            "-field=token",
            "auth/jwt/login",
            &format!("role={role}"),
            "jwt=-",
        ],
        jwt,
    )?;
    Ok(token.trim().to_string())
}

/// The pipeline's write, as the README's recipe makes it: `label=` asks for the default label.
fn issue(bao: &OpenBao, token: &str) -> Value {
    bao.bao_json_as(
        token,
        &["write", "dockerhub/token/hoeg/my-organization", "label="],
    )
    .unwrap()
}

#[test]
fn a_gitlab_job_gets_a_token_with_no_static_secret_and_revoke_self_ends_it() {
    let issuer = Issuer::start().unwrap();
    let bao = start(&issuer, false, "release", gitlab_role("acme/app", "10m"));
    let jwt = issuer.sign(
        Alg::Rs256,
        gitlab_claims("acme/app", "main", true, AUDIENCE),
        300,
    );
    let token = login(&bao, "release", &jwt).unwrap();

    let secret = issue(&bao, &token);
    let uuid = secret["data"]["uuid"].as_str().unwrap().to_string();
    let at_hub = bao.hub.token(&uuid).expect("the token is at the Hub");
    assert!(
        at_hub.label.contains(":jwt-acme/app:"),
        "the Hub's UI names the pipeline: {}",
        at_hub.label
    );
    // The policy holds: another namespace is refused.
    let other = bao
        .bao_as(&token, &["write", "dockerhub/token/hoeg/hoeg", "label="])
        .unwrap();
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("permission denied"));

    // The job's last step, allowed by the default policy: its leases and tokens end with it.
    let revoked = bao.bao_as(&token, &["token", "revoke", "-self"]).unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        eventually(Duration::from_secs(30), || bao.hub.token(&uuid).is_none()),
        "the Docker Hub token is deleted with the login token"
    );
}

#[test]
fn a_login_token_that_expires_takes_its_docker_hub_tokens_with_it() {
    let issuer = Issuer::start().unwrap();
    let bao = start(&issuer, false, "release", gitlab_role("acme/app", "15s"));
    let jwt = issuer.sign(
        Alg::Es256,
        gitlab_claims("acme/app", "main", true, AUDIENCE),
        300,
    );
    let token = login(&bao, "release", &jwt).unwrap();
    let secret = issue(&bao, &token);
    let uuid = secret["data"]["uuid"].as_str().unwrap().to_string();
    assert!(bao.hub.token(&uuid).is_some());
    assert!(
        eventually(Duration::from_secs(90), || bao.hub.token(&uuid).is_none()),
        "OpenBao revokes the leases of an expired token, and the engine deletes the Hub token"
    );
}

#[test]
fn a_github_job_logs_in_through_oidc_discovery() {
    let issuer = Issuer::start().unwrap();
    let role = json!({
        "role_type": "jwt",
        "user_claim": "repository",
        "bound_audiences": [AUDIENCE],
        "bound_subject": "repo:acme/app:ref:refs/heads/main",
        "token_policies": ["ci-release"],
        "token_ttl": "15m",
        "token_max_ttl": "15m",
    });
    let bao = start(&issuer, true, "release", role);
    let jwt = issuer.sign(Alg::Rs256, github_claims("acme/app", "main", AUDIENCE), 300);
    let token = login(&bao, "release", &jwt).unwrap();
    // As the README's GitHub job runs it: vault-action exports the token as `VAULT_TOKEN`,
    // and the address is `VAULT_ADDR`.
    let output = bao
        .command(&[
            "write",
            "-format=json",
            "dockerhub/token/hoeg/my-organization",
            "label=",
        ])
        .env_remove("BAO_TOKEN")
        .env_remove("BAO_ADDR")
        .env("VAULT_TOKEN", &token)
        .env("VAULT_ADDR", &bao.addr)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secret: Value = serde_json::from_slice(&output.stdout).unwrap();
    let uuid = secret["data"]["uuid"].as_str().unwrap();
    assert!(
        bao.hub
            .token(uuid)
            .unwrap()
            .label
            .contains(":jwt-acme/app:"),
        "{:?}",
        bao.hub.token(uuid)
    );
    let revoked = bao
        .command(&["token", "revoke", "-self"])
        .env_remove("BAO_TOKEN")
        .env("VAULT_TOKEN", &token)
        .status()
        .unwrap();
    assert!(revoked.success());
    assert!(
        eventually(Duration::from_secs(30), || bao.hub.token(uuid).is_none()),
        "the job's last step ends its Docker Hub token"
    );
}

#[test]
fn another_projects_identity_is_refused_at_login() {
    let issuer = Issuer::start().unwrap();
    let bao = start(&issuer, false, "release", gitlab_role("acme/app", "10m"));
    for (claims, why) in [
        (
            gitlab_claims("acme/other", "main", true, AUDIENCE),
            "another project",
        ),
        (
            gitlab_claims("acme/app", "feature", false, AUDIENCE),
            "an unprotected branch",
        ),
        (
            gitlab_claims("acme/app", "main", true, "https://elsewhere.example"),
            "another audience",
        ),
    ] {
        let jwt = issuer.sign(Alg::Rs256, claims, 300);
        let refused = login(&bao, "release", &jwt);
        assert!(refused.is_err(), "{why} must not log in");
    }
    assert!(bao.hub.live_tokens().is_empty());
}

/// The issuer publishes a new key: OpenBao fetches the JWKS again for the unknown `kid`, with
/// no restart and no change to its config.
#[test]
fn a_rotated_signing_key_is_picked_up_without_a_restart() {
    let issuer = Issuer::start().unwrap();
    let bao = start(&issuer, false, "release", gitlab_role("acme/app", "10m"));
    let claims = || gitlab_claims("acme/app", "main", true, AUDIENCE);
    login(&bao, "release", &issuer.sign(Alg::Rs256, claims(), 300)).unwrap();
    let fetched = issuer.jwks_fetches();
    assert!(fetched >= 1);
    issuer.rotate(Alg::Rs256, "rs-2");
    let rotated = issuer.sign(Alg::Rs256, claims(), 300);
    let token = login(&bao, "release", &rotated).unwrap();
    assert!(
        issuer.jwks_fetches() > fetched,
        "fetched again for the new kid"
    );
    assert!(issue(&bao, &token)["data"]["token"].is_string());
}

/// The README's label template: `ci-` and the `project_path` claim, which the role's
/// `claim_mappings` keep in the metadata of the entity's alias at the `jwt` mount, found by
/// the mount's accessor (`bao auth list -format=json | jq -r '."jwt/".accessor'`).
fn set_label_template(bao: &OpenBao, key: &str) {
    let mounts = bao.bao_json(&["auth", "list"]).unwrap();
    let accessor = mounts["jwt/"]["accessor"].as_str().unwrap();
    assert!(accessor.starts_with("auth_jwt_"), "{accessor}");
    bao.bao_ok(&[
        "write",
        "dockerhub/config/hoeg",
        &format!("label_template=ci-{{{{identity.entity.aliases.{accessor}.metadata.{key}}}}}"),
    ])
    .unwrap();
}

#[test]
fn the_label_template_names_the_pipeline_at_the_hub() {
    let issuer = Issuer::start().unwrap();
    let bao = start(&issuer, false, "release", gitlab_role("acme/app", "10m"));
    set_label_template(&bao, "project_path");
    let jwt = issuer.sign(
        Alg::Rs256,
        gitlab_claims("acme/app", "main", true, AUDIENCE),
        300,
    );
    let token = login(&bao, "release", &jwt).unwrap();

    let secret = issue(&bao, &token);
    assert_eq!(secret["data"]["label"], "ci-acme/app", "{secret}");
    assert_eq!(secret["warnings"], Value::Null, "{secret}");
    let at_hub = bao
        .hub
        .token(secret["data"]["uuid"].as_str().unwrap())
        .unwrap();
    assert!(
        at_hub.label.starts_with("dockerhub-secrets:ci-acme/app:"),
        "{}",
        at_hub.label
    );
    // A label in the request still wins.
    let chosen = bao
        .bao_json_as(
            &token,
            &[
                "write",
                "dockerhub/token/hoeg/my-organization",
                "label=hotfix",
            ],
        )
        .unwrap();
    assert_eq!(chosen["data"]["label"], "hotfix");
}

#[test]
fn a_label_template_without_a_value_falls_back_to_the_display_name() {
    let issuer = Issuer::start().unwrap();
    let bao = start(&issuer, false, "release", gitlab_role("acme/app", "10m"));
    // No claim is mapped to `environment`.
    set_label_template(&bao, "environment");
    let jwt = issuer.sign(
        Alg::Rs256,
        gitlab_claims("acme/app", "main", true, AUDIENCE),
        300,
    );
    let token = login(&bao, "release", &jwt).unwrap();

    let secret = issue(&bao, &token);
    assert_eq!(secret["data"]["label"], "jwt-acme/app", "{secret}");
    let warning = secret["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.starts_with("label_template: {{identity.entity.aliases.auth_jwt_")
            && warning.ends_with(
                ".metadata.environment}} has no value for the requester, so the label is the \
                 display name"
            ),
        "{secret}"
    );
    let at_hub = bao
        .hub
        .token(secret["data"]["uuid"].as_str().unwrap())
        .unwrap();
    assert!(at_hub.label.contains(":jwt-acme/app:"), "{}", at_hub.label);
}

/// hvac, as a Python pipeline would: `auth.jwt.jwt_login`, the write, `auth.token.revoke_self`,
/// and the Docker Hub token ends with the login token.
#[test]
fn hvac_logs_in_with_jwt_and_its_revoke_self_ends_the_docker_hub_token() {
    let issuer = Issuer::start().unwrap();
    let bao = start(&issuer, false, "release", gitlab_role("acme/app", "10m"));
    let python = dockerhub_secrets_e2e::openbao::bao_binary()
        .unwrap()
        .with_file_name("python");
    let script = r#"
import hvac, json, os
client = hvac.Client(url=os.environ["ADDR"])
login = client.auth.jwt.jwt_login(role="release", jwt=os.environ["JWT"])
assert client.is_authenticated()
secret = client.write("dockerhub/token/hoeg/my-organization", label="")
client.auth.token.revoke_self()
print(json.dumps({"policies": login["auth"]["policies"], "uuid": secret["data"]["uuid"]}))
"#;
    let jwt = issuer.sign(
        Alg::Rs256,
        gitlab_claims("acme/app", "main", true, AUDIENCE),
        300,
    );
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .env("ADDR", &bao.addr)
        .env("JWT", jwt)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["policies"], json!(["ci-release", "default"]));
    let uuid = answer["uuid"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(30), || bao.hub.token(&uuid).is_none()),
        "the Docker Hub token is deleted with the login token"
    );
}

/// OpenBao keeps one alias per `user_claim` value and overwrites its metadata at each login:
/// a claim that differs between jobs of one project (`ref`, `job_id`) shows the latest
/// login's, not the requester's. The README says to template only claims that are the same
/// for every login of the alias.
#[test]
fn alias_metadata_is_the_latest_logins_so_only_per_project_claims_label_reliably() {
    let issuer = Issuer::start().unwrap();
    let mut role = gitlab_role("acme/app", "10m");
    role["claim_mappings"] = json!({"project_path": "project_path", "ref": "ref"});
    let bao = start(&issuer, false, "release", role);
    set_label_template(&bao, "ref");
    let first = issuer.sign(
        Alg::Rs256,
        gitlab_claims("acme/app", "main", true, AUDIENCE),
        300,
    );
    let first = login(&bao, "release", &first).unwrap();
    let second = issuer.sign(
        Alg::Rs256,
        gitlab_claims("acme/app", "release-2", true, AUDIENCE),
        300,
    );
    login(&bao, "release", &second).unwrap();
    let secret = issue(&bao, &first);
    assert_eq!(
        secret["data"]["label"], "ci-release-2",
        "the first job's token is labelled with the second login's ref: {secret}"
    );
}
