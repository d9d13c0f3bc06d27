//! Keyless CI with `dockerhub-secrets serve`: Vault's JWT auth method declared in the tokens
//! file. A pipeline's OIDC identity token (from a test-only HTTPS issuer, GitLab- and
//! GitHub-shaped) logs in with the real `bao` CLI and with hvac, gets a Docker Hub token for
//! its one path, and that token ends with the login token: by `revoke-self`, by the login
//! token's expiry, and after a restart.

use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::oidc::{Alg, Issuer, github_claims, gitlab_claims};
use dockerhub_secrets_e2e::openbao::eventually;
use dockerhub_secrets_e2e::serve::Serve;
use fakehub::{Config, FakeHub};
use serde_json::{Value, json};
use std::time::Duration;

/// The audience the pipelines' tokens are minted for (GitLab's `id_tokens: aud:`).
const AUDIENCE: &str = "https://dockerhub-secrets.example";

fn hub() -> FakeHub {
    FakeHub::start(Config::default().account("hoeg", PASSWORD, None)).unwrap()
}

/// A string as HCL writes it (JSON's escapes are HCL's).
fn hcl_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// The tokens file's part for keyless CI, as the README shows it: the pipeline policy, and
/// `auth "jwt"` trusting `issuer` (its JWKS URL, or OIDC discovery) with `role "release"`
/// (`role_settings` inside the block).
fn auth_block(issuer: &Issuer, discovery: bool, role_settings: &str) -> String {
    let trust = match discovery {
        true => format!(
            "oidc_discovery_url = {}\n  oidc_discovery_ca_pem = {}",
            hcl_string(issuer.url()),
            hcl_string(issuer.ca_pem().unwrap())
        ),
        false => format!(
            "jwks_url = {}\n  jwks_ca_pem = {}",
            hcl_string(&issuer.jwks_url()),
            hcl_string(issuer.ca_pem().unwrap())
        ),
    };
    format!(
        r#"
policy "pipeline-acme-app" {{
  path "dockerhub/token/hoeg/my-organization" {{
    capabilities = ["create", "update"]
  }}
}}

auth "jwt" {{
  type = "jwt"
  {trust}
  bound_issuer = {iss}

  role "release" {{
    role_type       = "jwt"
    bound_audiences = [{AUDIENCE:?}]
    token_policies  = ["pipeline-acme-app"]
    {role_settings}
  }}
}}
"#,
        iss = hcl_string(issuer.url()),
    )
}

/// The GitLab role: `project_path` is the user (the display name is `jwt-<project_path>`),
/// bound to one project's protected branches.
fn gitlab_role(ttl: &str) -> String {
    format!(
        r#"user_claim      = "project_path"
    bound_claims    = {{ project_path = "acme/app", ref_protected = "true" }}
    token_ttl       = "{ttl}"
    token_max_ttl   = "1h""#
    )
}

fn start(issuer: &Issuer, discovery: bool, role_settings: &str) -> Serve {
    let serve = Serve::start_with_tokens(hub(), &[], &auth_block(issuer, discovery, role_settings))
        .expect("start serve with a jwt auth mount");
    serve.write_seed_config(PASSWORD).unwrap();
    serve
}

/// The README's login: `printf %s "$JWT" | bao write -field=token auth/jwt/login
/// role=release jwt=-`: the client token.
fn login(serve: &Serve, jwt: &str) -> anyhow::Result<String> {
    let token = serve.bao_stdin(
        &[
            "write",
            "-field=token",
            "auth/jwt/login",
            "role=release",
            "jwt=-",
        ],
        jwt,
    )?;
    Ok(token.trim().to_string())
}

fn issue(serve: &Serve, token: &str) -> Value {
    serve
        .bao_json_as(
            token,
            &["write", "dockerhub/token/hoeg/my-organization", "label="],
        )
        .unwrap()
}

fn gitlab_jwt(issuer: &Issuer, alg: Alg) -> String {
    issuer.sign(alg, gitlab_claims("acme/app", "main", true, AUDIENCE), 300)
}

#[test]
fn a_gitlab_job_gets_a_token_with_no_static_secret_and_revoke_self_ends_it() {
    let issuer = Issuer::start_https().unwrap();
    let serve = start(&issuer, false, &gitlab_role("10m"));
    let token = login(&serve, &gitlab_jwt(&issuer, Alg::Rs256)).unwrap();
    assert!(token.starts_with("s."), "{token}");

    let lookup = serve
        .bao_json_as(&token, &["token", "lookup"])
        .expect("bao token lookup");
    let data = &lookup["data"];
    assert_eq!(data["display_name"], "jwt-acme/app");
    assert_eq!(data["path"], "auth/jwt/login");
    assert_eq!(data["policies"], json!(["default", "pipeline-acme-app"]));
    assert_eq!(data["meta"]["role"], "release");
    assert!(data["ttl"].as_u64().unwrap() > 590);

    let secret = issue(&serve, &token);
    let uuid = secret["data"]["uuid"].as_str().unwrap().to_string();
    let at_hub = serve.hub.token(&uuid).expect("the token is at the Hub");
    assert!(
        at_hub.label.contains(":jwt-acme/app:"),
        "the Hub's UI names the pipeline: {}",
        at_hub.label
    );
    // The policy holds: another namespace is refused.
    let other = serve
        .bao_as(&token, &["write", "dockerhub/token/hoeg/hoeg", "label="])
        .unwrap();
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("permission denied"));

    let renewed = serve
        .bao_json_as(&token, &["token", "renew", "-increment=20m"])
        .expect("bao token renew");
    assert_eq!(renewed["auth"]["lease_duration"], 1200);

    // The job's last step, allowed by the default policy: its leases and tokens end with it.
    let revoked = serve.bao_as(&token, &["token", "revoke", "-self"]).unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        serve.hub.token(&uuid).is_none(),
        "deleted before the answer"
    );
    let after = serve.bao_as(&token, &["token", "lookup"]).unwrap();
    assert!(!after.status.success(), "the login token is gone");
}

#[test]
fn a_login_token_caps_its_leases_and_its_expiry_deletes_their_docker_hub_tokens() {
    let issuer = Issuer::start_https().unwrap();
    let serve = start(&issuer, false, &gitlab_role("8s"));
    let token = login(&serve, &gitlab_jwt(&issuer, Alg::Es256)).unwrap();
    let secret = issue(&serve, &token);
    let lease_duration = secret["lease_duration"].as_u64().unwrap();
    assert!(
        lease_duration <= 8,
        "the lease ends no later than the login token: {lease_duration}"
    );
    let uuid = secret["data"]["uuid"].as_str().unwrap().to_string();
    let at_hub = serve.hub.token(&uuid).unwrap();
    let hub_expiry = at_hub.expires_at.expect("the Hub expires it by itself");
    let hub_expiry = humantime::parse_rfc3339(&hub_expiry).unwrap();
    let out = hub_expiry
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        out <= Duration::from_secs(8 + 5),
        "the Hub's own expiry follows the login token, not the account's max_ttl: {out:?} out"
    );
    assert!(
        eventually(Duration::from_secs(30), || serve.hub.token(&uuid).is_none()),
        "the login token's end deletes the Docker Hub token"
    );
}

#[test]
fn a_github_job_logs_in_through_oidc_discovery() {
    let issuer = Issuer::start_https().unwrap();
    let serve = start(
        &issuer,
        true,
        r#"user_claim    = "repository"
    bound_subject = "repo:acme/app:ref:refs/heads/main"
    token_ttl     = "10m""#,
    );
    let jwt = issuer.sign(Alg::Rs256, github_claims("acme/app", "main", AUDIENCE), 300);
    let token = login(&serve, &jwt).unwrap();
    let secret = issue(&serve, &token);
    let uuid = secret["data"]["uuid"].as_str().unwrap();
    let label = serve.hub.token(uuid).unwrap().label;
    assert!(label.contains(":jwt-acme/app:"), "{label}");
}

#[test]
fn hvac_logs_in_with_jwt_and_revokes_itself() {
    let issuer = Issuer::start_https().unwrap();
    let serve = start(&issuer, false, &gitlab_role("10m"));
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
print(json.dumps({"policies": login["auth"]["policies"], "uuid": secret["data"]["uuid"],
                  "lease_duration": secret["lease_duration"]}))
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .env("ADDR", &serve.addr)
        .env("JWT", gitlab_jwt(&issuer, Alg::Rs256))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["policies"], json!(["default", "pipeline-acme-app"]));
    assert_eq!(answer["lease_duration"], 300);
    assert!(serve.hub.token(answer["uuid"].as_str().unwrap()).is_none());
}

#[test]
fn live_login_tokens_and_their_leases_survive_a_restart() {
    let issuer = Issuer::start_https().unwrap();
    let mut serve = start(&issuer, false, &gitlab_role("10m"));
    let token = login(&serve, &gitlab_jwt(&issuer, Alg::Rs256)).unwrap();
    let before = issue(&serve, &token);
    serve.stop();
    serve.spawn().unwrap();
    let after = issue(&serve, &token);
    let uuids: Vec<String> = [before, after]
        .iter()
        .map(|s| s["data"]["uuid"].as_str().unwrap().to_string())
        .collect();
    assert!(uuids.iter().all(|uuid| serve.hub.token(uuid).is_some()));
    let revoked = serve.bao_as(&token, &["token", "revoke", "-self"]).unwrap();
    assert!(revoked.status.success());
    assert!(
        uuids.iter().all(|uuid| serve.hub.token(uuid).is_none()),
        "both leases, from before and after the restart, ended with the token"
    );
}

#[test]
fn a_rotated_signing_key_is_picked_up_without_a_restart() {
    let issuer = Issuer::start_https().unwrap();
    let serve = start(&issuer, false, &gitlab_role("10m"));
    login(&serve, &gitlab_jwt(&issuer, Alg::Rs256)).unwrap();
    let fetched = issuer.jwks_fetches();
    for _ in 0..20 {
        login(&serve, &gitlab_jwt(&issuer, Alg::Rs256)).unwrap();
    }
    assert_eq!(issuer.jwks_fetches(), fetched, "known keys are cached");
    issuer.rotate(Alg::Rs256, "rs-2");
    let token = login(&serve, &gitlab_jwt(&issuer, Alg::Rs256)).unwrap();
    assert_eq!(
        issuer.jwks_fetches(),
        fetched + 1,
        "fetched once for the new kid"
    );
    assert!(issue(&serve, &token)["data"]["token"].is_string());
}

/// One row per refusal: each a 400 whose message names the reason and never holds the token.
#[test]
fn bad_identity_tokens_are_refused_with_the_reason_and_never_echoed() {
    let issuer = Issuer::start_https().unwrap();
    let serve = start(&issuer, false, &gitlab_role("10m"));
    let good = gitlab_jwt(&issuer, Alg::Rs256);
    let claims =
        |project: &str, protected: bool, aud: &str| gitlab_claims(project, "main", protected, aud);
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let (_, payload_and_signature) = good.split_once('.').unwrap();
    let (payload, _) = payload_and_signature.split_once('.').unwrap();
    let unsigned = format!("{}.{payload}.", b64(&json!({"alg": "none", "typ": "JWT"})));
    let hmac = format!(
        "{}.{payload}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT", "kid": "rs-1"})),
        "c2lnbmF0dXJl"
    );
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let mut no_user = claims("acme/app", true, AUDIENCE);
    no_user.as_object_mut().unwrap().remove("project_path");
    no_user["bound"] = json!("x");
    let oversized = format!("{good}{}", "A".repeat(20 * 1024));
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned, "none"),
        ("HMAC against public keys", hmac, "HS256"),
        (
            "unknown kid",
            issuer.sign_with_kid(Alg::Rs256, claims("acme/app", true, AUDIENCE), "nope"),
            "kid",
        ),
        (
            "expired",
            issuer.sign(
                Alg::Rs256,
                {
                    let mut c = claims("acme/app", true, AUDIENCE);
                    c["exp"] = json!(1_000_000_000);
                    c
                },
                300,
            ),
            "expired",
        ),
        (
            "not yet valid",
            issuer.sign(
                Alg::Rs256,
                {
                    let mut c = claims("acme/app", true, AUDIENCE);
                    c["nbf"] = json!(4_000_000_000u64);
                    c
                },
                300,
            ),
            "not yet valid",
        ),
        (
            "wrong issuer",
            issuer.sign(
                Alg::Rs256,
                {
                    let mut c = claims("acme/app", true, AUDIENCE);
                    c["iss"] = json!("https://elsewhere.example");
                    c
                },
                300,
            ),
            "iss",
        ),
        (
            "wrong audience",
            issuer.sign(
                Alg::Rs256,
                claims("acme/app", true, "https://elsewhere.example"),
                300,
            ),
            "aud",
        ),
        (
            "another project",
            issuer.sign(Alg::Rs256, claims("acme/other", true, AUDIENCE), 300),
            "project_path",
        ),
        (
            "an unprotected branch",
            issuer.sign(Alg::Rs256, claims("acme/app", false, AUDIENCE), 300),
            "ref_protected",
        ),
        (
            "missing user claim",
            issuer.sign(Alg::Rs256, no_user, 300),
            "project_path",
        ),
        ("bad signature", tampered, "signature"),
        ("oversized", oversized, "KiB"),
        ("malformed", "not.a-jwt".into(), "malformed"),
    ];
    for (why, jwt, reason) in cases {
        let body = json!({"role": "release", "jwt": jwt}).to_string();
        let (status, answer) = serve
            .http("PUT", "/v1/auth/jwt/login", None, body.as_bytes())
            .unwrap();
        let text = answer["errors"].to_string();
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(
            text.to_lowercase().contains(&reason.to_lowercase()),
            "{why}: the message names the reason ({reason}): {text}"
        );
        let signature = jwt.rsplit('.').next().unwrap_or_default();
        assert!(
            signature.len() < 8 || !text.contains(signature),
            "{why}: the token is not echoed"
        );
    }
    for (body, reason) in [
        (json!({"jwt": good}), "missing role"),
        (json!({"role": "release"}), "missing token"),
        (
            json!({"role": "nope", "jwt": good}),
            "\\\"nope\\\" could not be found",
        ),
    ] {
        let (status, answer) = serve
            .http(
                "PUT",
                "/v1/auth/jwt/login",
                None,
                body.to_string().as_bytes(),
            )
            .unwrap();
        assert_eq!(status, 400, "{answer}");
        assert!(answer["errors"].to_string().contains(reason), "{answer}");
    }
    assert!(serve.hub.live_tokens().is_empty());
}
