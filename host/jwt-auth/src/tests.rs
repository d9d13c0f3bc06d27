//! Logins against `jwt_validation_pubkeys` keys made here: one GitLab-shaped token that
//! logs in, and one refused token per reason; and the configuration mistakes refused.

use super::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://gitlab.example.com";
const AUDIENCE: &str = "https://serve.example.com";

/// The signing keys of the test issuer, made once.
struct Keys {
    rsa: RsaKeyPair,
    p256: EcdsaKeyPair,
    p384: EcdsaKeyPair,
    ed25519: Ed25519KeyPair,
    /// A key the mount does not trust.
    stranger: EcdsaKeyPair,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
    p256: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
    p384: EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
    ed25519: Ed25519KeyPair::generate().unwrap(),
    stranger: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
});

fn pem(spki: &[u8]) -> String {
    let body = STANDARD.encode(spki);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn rsa_pem() -> String {
    pem(KEYS.rsa.public_key().as_der().unwrap().as_ref())
}

fn pems() -> Vec<String> {
    let k = &*KEYS;
    vec![
        rsa_pem(),
        pem(k.p256.public_key().as_der().unwrap().as_ref()),
        pem(k.p384.public_key().as_der().unwrap().as_ref()),
        pem(k.ed25519.public_key().as_der().unwrap().as_ref()),
    ]
}

/// A compact JWS of `header` and `claims` (any bytes, to make malformed ones), signed as
/// `header.alg` says with the test keys.
fn sign_raw(header: &Value, claims: &[u8]) -> String {
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims));
    let rng = SystemRandom::new();
    let k = &*KEYS;
    let rsa = |padding| {
        let mut signature = vec![0; k.rsa.public_modulus_len()];
        k.rsa
            .sign(padding, &rng, input.as_bytes(), &mut signature)
            .unwrap();
        signature
    };
    let ec = |key: &EcdsaKeyPair| key.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec();
    let signature = match header["alg"].as_str().unwrap_or_default() {
        "RS256" => rsa(&RSA_PKCS1_SHA256),
        "PS256" => rsa(&RSA_PSS_SHA256),
        "ES256" if header["kid"] == "stranger" => ec(&k.stranger),
        "ES256" => ec(&k.p256),
        "ES384" => ec(&k.p384),
        "EdDSA" => k.ed25519.sign(input.as_bytes()).as_ref().to_vec(),
        "HS256" => {
            // The classic confusion: the public key's PEM as the HMAC secret.
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, rsa_pem().as_bytes());
            aws_lc_rs::hmac::sign(&key, input.as_bytes())
                .as_ref()
                .to_vec()
        }
        _ => Vec::new(),
    };
    format!("{input}.{}", B64.encode(signature))
}

fn sign(alg: &str, claims: &Value) -> String {
    sign_raw(
        &json!({"alg": alg, "typ": "JWT"}),
        claims.to_string().as_bytes(),
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A GitLab CI job's identity token's claims (GitLab's documented names), valid for 5 minutes.
fn gitlab(project_path: &str, ref_name: &str, protected: bool) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("project_path:{project_path}:ref_type:branch:ref:{ref_name}"),
        "namespace_path": project_path.split('/').next().unwrap(),
        "project_path": project_path,
        "project_id": "22",
        "ref": ref_name,
        "ref_type": "branch",
        "ref_protected": protected.to_string(),
        "iat": now, "nbf": now, "exp": now + 300,
    })
}

/// `claims` with `changes` merged in (a null removes a claim).
fn with(claims: &Value, changes: Value) -> Value {
    let mut claims = claims.clone();
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            value => claims
                .as_object_mut()
                .unwrap()
                .insert(name.clone(), value.clone()),
        };
    }
    claims
}

fn heredocs(pems: &[String]) -> String {
    let items: Vec<String> = pems.iter().map(|p| format!("<<EOT\n{p}EOT\n")).collect();
    format!("[\n{}]", items.join(",\n"))
}

/// The mount the tests log in to: the test keys, GitLab's issuer, and roles for one project.
fn mount_text(extra: &str) -> String {
    format!(
        r#"
        type                   = "jwt"
        jwt_validation_pubkeys = {keys}
        jwt_supported_algs     = ["RS256", "PS256", "ES256", "EdDSA"]
        bound_issuer           = "{ISSUER}"
        {extra}

        role "acme" {{
          role_type       = "jwt"
          user_claim      = "project_path"
          bound_audiences = ["{AUDIENCE}"]
          bound_claims    = {{ project_path = "acme/app", ref_protected = "true" }}
          claim_mappings  = {{ project_path = "project", ref = "ref" }}
          token_policies  = ["acme-release", "audit"]
          token_ttl       = "10m"
          token_max_ttl   = 3600
        }}

        role "main-only" {{
          role_type         = "jwt"
          user_claim        = "sub"
          bound_audiences   = "{AUDIENCE}"
          bound_subject     = "project_path:acme/app:ref_type:branch:ref:main"
          bound_claims_type = "glob"
          bound_claims      = {{ "/project_path" = ["acme/*", "tools/*"] }}
        }}

        role "no-audience" {{
          role_type    = "jwt"
          user_claim   = "project_path"
          bound_claims = {{ namespace_path = "acme" }}
        }}

        role "numbers" {{
          role_type       = "jwt"
          user_claim      = "n"
          bound_audiences = ["{AUDIENCE}"]
        }}
        "#,
        keys = heredocs(&pems()),
    )
}

fn mount(extra: &str) -> JwtAuth {
    let body = hcl::parse(&mount_text(extra)).unwrap();
    JwtAuth::from_hcl("jwt", &body).unwrap()
}

/// A role as parsed, for tests of what a role's settings do.
pub(crate) fn role() -> role::Role {
    mount("").mount.roles["acme"].clone()
}

async fn login(auth: &JwtAuth, role: Option<&str>, jwt: &str) -> Result<Login, LoginError> {
    auth.login(role, Some(jwt)).await
}

#[tokio::test]
async fn a_gitlab_job_logs_in_with_its_identity_token() {
    let auth = mount("");
    let token = sign("RS256", &gitlab("acme/app", "main", true));
    let login = login(&auth, Some("acme"), &token).await.unwrap();
    let metadata = [("project", "acme/app"), ("ref", "main"), ("role", "acme")];
    assert_eq!(
        login,
        Login {
            role: "acme".into(),
            alias_name: "acme/app".into(),
            display_name: "jwt-acme/app".into(),
            policies: vec!["acme-release".into(), "audit".into()],
            no_default_policy: false,
            ttl: 600,
            max_ttl: 3600,
            explicit_max_ttl: 0,
            metadata: metadata
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    );
    assert_eq!(auth.path(), "jwt");
    assert_eq!(auth.key_fetches(), 0);
}

#[tokio::test]
async fn every_key_kind_and_accepted_algorithm_verifies() {
    let auth = mount("");
    let claims = gitlab("acme/app", "main", true);
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let token = format!("{}\n", sign(alg, &claims));
        let result = login(&auth, Some("ACME"), &token).await;
        assert_eq!(result.map(|l| l.role), Ok("acme".into()), "{alg}");
    }
}

#[tokio::test]
async fn glob_bound_claims_by_json_pointer_and_bound_subject() {
    let auth = mount("");
    let token = sign("ES256", &gitlab("acme/app", "main", true));
    let login = login(&auth, Some("main-only"), &token).await.unwrap();
    assert_eq!(
        login.display_name,
        "jwt-project_path:acme/app:ref_type:branch:ref:main"
    );
    assert_eq!(login.metadata.len(), 1);
}

#[tokio::test]
async fn the_default_role_stands_in_for_a_missing_role() {
    let auth = mount("default_role = \"ACME\"");
    let token = sign("RS256", &gitlab("acme/app", "main", true));
    for role in [None, Some("")] {
        assert_eq!(login(&auth, role, &token).await.unwrap().role, "acme");
    }
}

#[tokio::test]
async fn a_nested_mount_path_shows_in_the_display_name() {
    let body = hcl::parse(&mount_text("")).unwrap();
    let auth = JwtAuth::from_hcl("/ci/gitlab/", &body).unwrap();
    assert_eq!(auth.path(), "ci/gitlab");
    let token = sign("RS256", &gitlab("acme/app", "main", true));
    let login = login(&auth, Some("acme"), &token).await.unwrap();
    assert_eq!(login.display_name, "ci-gitlab-acme/app");
}

#[test]
fn role_policies_pairs_each_role_with_each_policy() {
    let pairs = mount("").role_policies();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(r, p)| (r.as_str(), p.as_str()))
        .collect();
    assert_eq!(pairs, [("acme", "acme-release"), ("acme", "audit")]);
}

/// One row per refusal: the role, the token, and words the message must have.
#[tokio::test]
async fn refused_logins_answer_400_naming_the_reason_never_the_token() {
    let now = now();
    let good = gitlab("acme/app", "main", true);
    let header = |alg: &str| json!({"alg": alg, "typ": "JWT"});
    let signed = sign("RS256", &good);
    // A character in the middle of the signature changed: still base64url, another value.
    let mut bad_signature = signed.clone().into_bytes();
    let at = signed.rfind('.').unwrap() + 10;
    bad_signature[at] = if bad_signature[at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let bad_signature = String::from_utf8(bad_signature).unwrap();
    let parts: Vec<&str> = signed.split('.').collect();
    let big = with(&good, json!({"padding": "x".repeat(MAX_TOKEN)}));
    let rows: Vec<(&str, Option<&str>, String, &str)> = vec![
        ("no role", None, signed.clone(), "missing role"),
        (
            "unknown role",
            Some("other"),
            signed.clone(),
            "role \"other\" could not be found",
        ),
        ("no token", Some("acme"), String::new(), "missing token"),
        (
            "alg none",
            Some("acme"),
            sign_raw(&header("none"), good.to_string().as_bytes()),
            "the token is unsigned (alg \"none\")",
        ),
        (
            "HMAC with the public key",
            Some("acme"),
            sign("HS256", &good),
            "HS256 is an HMAC algorithm",
        ),
        (
            "alg not in jwt_supported_algs",
            Some("acme"),
            sign("ES384", &good),
            "unexpected algorithm ES384",
        ),
        (
            "unknown alg",
            Some("acme"),
            sign_raw(&header("XS256"), b"{}"),
            "\"XS256\" is not a JWS algorithm",
        ),
        (
            "another key",
            Some("acme"),
            sign_raw(
                &json!({"alg": "ES256", "kid": "stranger"}),
                good.to_string().as_bytes(),
            ),
            "the signature does not match",
        ),
        (
            "bad signature",
            Some("acme"),
            bad_signature,
            "the signature does not match",
        ),
        (
            "expired",
            Some("acme"),
            sign(
                "RS256",
                &with(
                    &good,
                    json!({"iat": now - 600, "nbf": now - 600, "exp": now - 61}),
                ),
            ),
            "token is expired",
        ),
        (
            "not yet valid",
            Some("acme"),
            sign("RS256", &with(&good, json!({"nbf": now + 120}))),
            "token not yet valid",
        ),
        (
            "issued in the future",
            Some("acme"),
            sign("RS256", &with(&good, json!({"iat": now + 120}))),
            "token issued in the future",
        ),
        (
            "no time claims",
            Some("acme"),
            sign(
                "RS256",
                &with(&good, json!({"iat": null, "nbf": null, "exp": null})),
            ),
            "no issued at (iat), not before (nbf), or expiration time (exp)",
        ),
        (
            "wrong issuer",
            Some("acme"),
            sign(
                "RS256",
                &with(&good, json!({"iss": "https://evil.example"})),
            ),
            "invalid issuer (iss) claim",
        ),
        (
            "no issuer",
            Some("acme"),
            sign("RS256", &with(&good, json!({"iss": null}))),
            "invalid issuer (iss) claim",
        ),
        (
            "wrong audience",
            Some("acme"),
            sign(
                "RS256",
                &with(&good, json!({"aud": ["https://other.example"]})),
            ),
            "invalid audience (aud) claim",
        ),
        (
            "audience the role does not bind",
            Some("no-audience"),
            signed.clone(),
            "audience claim found in JWT but no audiences bound to the role",
        ),
        (
            "wrong subject",
            Some("main-only"),
            sign("RS256", &gitlab("acme/app", "dev", true)),
            "invalid subject (sub) claim",
        ),
        (
            "claim mismatch",
            Some("acme"),
            sign("RS256", &gitlab("acme/other", "main", true)),
            "claim \"project_path\" does not match any associated bound claim values",
        ),
        (
            "unprotected ref",
            Some("acme"),
            sign("RS256", &gitlab("acme/app", "main", false)),
            "claim \"ref_protected\" does not match",
        ),
        (
            "bound claim missing",
            Some("acme"),
            sign("RS256", &with(&good, json!({"ref_protected": null}))),
            "claim \"ref_protected\" is missing",
        ),
        (
            "glob mismatch",
            Some("main-only"),
            sign(
                "RS256",
                &with(
                    &gitlab("other/app", "main", true),
                    json!({"sub": good["sub"]}),
                ),
            ),
            "claim \"/project_path\" does not match",
        ),
        (
            "missing user claim",
            Some("acme"),
            sign("RS256", &with(&good, json!({"project_path": null}))),
            "claim \"project_path\" not found in token",
        ),
        (
            "user claim not a string",
            Some("numbers"),
            sign("RS256", &with(&good, json!({"n": 5}))),
            "claim \"n\" could not be converted to string",
        ),
        (
            "mapped claim not a string",
            Some("acme"),
            sign("RS256", &with(&good, json!({"ref": ["main"]}))),
            "error converting claim 'ref' to string",
        ),
        (
            "over 16 KiB",
            Some("acme"),
            sign("RS256", &big),
            "more than the 16384 bytes (16 KiB)",
        ),
        (
            "two parts",
            Some("acme"),
            format!("{}.{}", parts[0], parts[1]),
            "2 parts where a JWT has three base64url parts",
        ),
        (
            "four parts",
            Some("acme"),
            format!("{signed}.x"),
            "4 parts where a JWT has three base64url parts",
        ),
        (
            "header not base64url",
            Some("acme"),
            format!("*{}", &signed[1..]),
            "the header is not base64url",
        ),
        (
            "header not JSON",
            Some("acme"),
            format!("{}.{}.{}", B64.encode("{alg"), parts[1], parts[2]),
            "malformed token: header",
        ),
        (
            "header without alg",
            Some("acme"),
            sign_raw(&json!({"typ": "JWT"}), b"{}"),
            "the header has no alg",
        ),
        (
            "claims not JSON",
            Some("acme"),
            sign_raw(&header("RS256"), b"{\"iss\":"),
            "malformed token: claims",
        ),
        (
            "claims not an object",
            Some("acme"),
            sign_raw(&header("RS256"), b"[1]"),
            "malformed token: claims",
        ),
        (
            "aud not strings",
            Some("acme"),
            sign("RS256", &with(&good, json!({"aud": [1]}))),
            "the aud claim is not a string or list of strings",
        ),
        (
            "exp not a number",
            Some("acme"),
            sign("RS256", &with(&good, json!({"exp": "soon"}))),
            "the exp claim is not a number",
        ),
    ];
    let auth = mount("");
    for (name, role, token, reason) in rows {
        let error = login(&auth, role, &token).await.unwrap_err();
        assert_eq!(error.status, 400, "{name}: {error}");
        assert!(error.message.contains(reason), "{name}: {error}");
        let signature = token.rsplit('.').next().unwrap_or_default();
        let leaked = !token.is_empty() && error.message.contains(&token)
            || signature.len() > 8 && error.message.contains(signature);
        assert!(!leaked, "{name}: the message holds the token: {error}");
    }
}

#[tokio::test]
async fn the_clock_skew_leeway_is_the_roles() {
    let strict = format!(
        "{}\nrole \"strict\" {{\n role_type = \"jwt\"\n user_claim = \"sub\"\n \
         bound_audiences = [\"{AUDIENCE}\"]\n clock_skew_leeway = -1\n}}\n",
        mount_text("")
    );
    let auth = JwtAuth::from_hcl("jwt", &hcl::parse(&strict).unwrap()).unwrap();
    let now = now();
    let just_expired = sign(
        "RS256",
        &with(&gitlab("acme/app", "main", true), json!({"exp": now - 30})),
    );
    assert!(login(&auth, Some("acme"), &just_expired).await.is_ok());
    let error = login(&auth, Some("strict"), &just_expired)
        .await
        .unwrap_err();
    assert!(error.message.contains("token is expired"), "{error}");
}

/// One row per mistake: the auth block's body (beside `type`, unless it sets it) and the
/// error's text.
#[test]
fn configuration_mistakes_are_refused_naming_the_place() {
    let key = heredocs(&pems()[..1]);
    let role = |body: &str| {
        format!(
            "jwks_url = \"https://gitlab.example.com/oauth/discovery/keys\"\n\
             role \"acme\" {{\n role_type = \"jwt\"\n user_claim = \"sub\"\n {body}\n}}"
        )
    };
    let bound = "bound_audiences = [\"x\"]";
    let with_bound = |body: &str| role(&format!("{bound}\n{body}"));
    let rows: Vec<(String, &str)> = vec![
        ("# no type".into(), "auth \"jwt\": type = \"jwt\" is missing"),
        ("type = \"userpass\"".into(), "auth \"jwt\": type \"userpass\" is not an auth method serve has"),
        ("type = \"jwt\"\njwks_uri = \"https://x\"".into(), "auth \"jwt\": unknown field \"jwks_uri\""),
        ("type = \"jwt\"\noidc_client_id = \"x\"".into(), "auth \"jwt\": oidc_client_id is not supported by serve"),
        ("type = \"jwt\"".into(), "auth \"jwt\": exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set"),
        (format!("type = \"jwt\"\njwks_url = \"https://x.example\"\njwt_validation_pubkeys = {key}"), "exactly one of"),
        ("type = \"jwt\"\njwks_url = \"http://gitlab.example.com/keys\"".into(), "auth \"jwt\": jwks_url \"http://gitlab.example.com/keys\" is plain HTTP: serve fetches keys over HTTPS only"),
        ("type = \"jwt\"\noidc_discovery_url = \"http://gitlab.example.com\"".into(), "oidc_discovery_url \"http://gitlab.example.com\" is plain HTTP"),
        ("type = \"jwt\"\noidc_discovery_url = \"https://x.example/.well-known/openid-configuration\"".into(), "'oidc_discovery_url' contains '.well-known' component"),
        ("type = \"jwt\"\njwks_url = \"gitlab.example.com/keys\"".into(), "is not an https:// URL"),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\njwks_ca_pem = \"x\""), "jwks_ca_pem is set without jwks_url"),
        ("type = \"jwt\"\njwks_url = \"https://x.example\"\njwks_ca_pem = \"not pem\"".into(), "jwks_ca_pem holds no PEM CERTIFICATE"),
        ("type = \"jwt\"\njwt_validation_pubkeys = [\"not a key\"]".into(), "auth \"jwt\": jwt_validation_pubkeys[0]: no PEM block"),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\njwt_supported_algs = [\"HS256\"]"), "invalid jwt_supported_algs: HS256 is an HMAC algorithm"),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\njwt_supported_algs = \"none\""), "\"none\" would accept unsigned tokens"),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\njwt_supported_algs = \"ES512\""), "ES512 is not supported by serve"),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\ndefault_role = \"nobody\""), "default_role \"nobody\" names no role block"),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\nrules {{}}"), "unknown block \"rules\""),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\nrole \"a\" \"b\" {{}}"), "a role block takes one label"),
        (format!("type = \"jwt\"\njwt_validation_pubkeys = {key}\nrole \"a/b\" {{}}"), "role \"a/b\": a role name is letters"),
        (format!("type = \"jwt\"\n{}\nrole \"ACME\" {{\nrole_type = \"jwt\"\nuser_claim = \"sub\"\n{bound}\n}}", with_bound("")), "role \"acme\" is declared twice"),
        (format!("type = \"jwt\"\n{}", role(bound).replace("role_type = \"jwt\"", "")), "auth \"jwt\", role \"acme\": role_type = \"jwt\" is required"),
        (format!("type = \"jwt\"\n{}", role(bound).replace("\"jwt\"\n", "\"oidc\"\n")), "auth \"jwt\", role \"acme\": role_type \"oidc\" is not supported by serve"),
        (format!("type = \"jwt\"\n{}", role(bound).replace("\"jwt\"\n", "\"ldap\"\n")), "invalid 'role_type': ldap"),
        (format!("type = \"jwt\"\n{}", role(bound).replace("user_claim = \"sub\"", "")), "auth \"jwt\", role \"acme\": a user claim must be defined on the role"),
        (format!("type = \"jwt\"\n{}", role("")), "must have at least one bound constraint"),
        (format!("type = \"jwt\"\n{}", with_bound("claims_to_metadata = {}")), "auth \"jwt\", role \"acme\": unknown field \"claims_to_metadata\""),
        (format!("type = \"jwt\"\n{}", with_bound("leeway = 5")), "unknown field \"leeway\""),
        (format!("type = \"jwt\"\n{}", with_bound("token_bound_cidrs = [\"10.0.0.0/8\"]")), "token_bound_cidrs is not supported by serve"),
        (format!("type = \"jwt\"\n{}", with_bound("oidc_scopes = [\"openid\"]")), "oidc_scopes is not supported by serve"),
        (format!("type = \"jwt\"\n{}", with_bound("allowed_redirect_uris = [\"https://x\"]")), "allowed_redirect_uris is not supported by serve"),
        (format!("type = \"jwt\"\n{}", with_bound("verbose_oidc_logging = true")), "verbose_oidc_logging is not supported by serve"),
        (format!("type = \"jwt\"\n{}", with_bound("token_num_uses = 1")), "token_num_uses is not supported by serve"),
        (format!("type = \"jwt\"\n{}", with_bound("token_period = 60")), "token_period is not supported by serve"),
        (format!("type = \"jwt\"\n{}", with_bound("token_type = \"batch\"")), "token_type is not supported by serve"),
        (format!("type = \"jwt\"\n{}", with_bound("policies = [\"a\"]")), "policies is not supported by serve (Vault's deprecated name: use token_policies)"),
        (format!("type = \"jwt\"\n{}", with_bound("bound_claims_type = \"regex\"")), "invalid 'bound_claims_type': regex"),
        (format!("type = \"jwt\"\n{}", with_bound("bound_claims_type = \"glob\"\nbound_claims = { n = 1 }")), "bound_claims: n: claim is not a string"),
        (format!("type = \"jwt\"\n{}", with_bound("bound_claims = { a = { b = \"c\" } }")), "bound_claims: a: {\"b\":\"c\"} is not a string, bool, number or a list of them"),
        (format!("type = \"jwt\"\n{}", with_bound("claim_mappings = { sub = \"role\" }")), "metadata key \"role\" is reserved and may not be a mapping destination"),
        (format!("type = \"jwt\"\n{}", with_bound("claim_mappings = { sub = \"x\", ref = \"x\" }")), "multiple keys are mapped to metadata key \"x\""),
        (format!("type = \"jwt\"\n{}", with_bound("claim_mappings = { sub = 1 }")), "claim_mappings: sub: 1 is not a string"),
        (format!("type = \"jwt\"\n{}", with_bound("token_ttl = \"2h\"\ntoken_max_ttl = \"1h\"")), "'token_ttl' cannot be greater than 'token_max_ttl'"),
        (format!("type = \"jwt\"\n{}", with_bound("token_ttl = \"soon\"")), "auth \"jwt\", role \"acme\": token_ttl: time: invalid duration \"soon\""),
        (format!("type = \"jwt\"\n{}", with_bound("token_ttl = -5")), "token_ttl: -5 is not a number of seconds"),
        (format!("type = \"jwt\"\n{}", with_bound("token_no_default_policy = \"maybe\"")), "token_no_default_policy: \"maybe\" is not a boolean"),
        (format!("type = \"jwt\"\n{}", role("bound_audiences = 5")), "bound_audiences: 5 is not a list"),
    ];
    for (body, expected) in rows {
        let body = hcl::parse(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        match JwtAuth::from_hcl("jwt", &body) {
            Ok(_) => panic!("accepted: {expected}"),
            Err(error) => assert!(
                error.to_string().contains(expected),
                "{error} does not say {expected}"
            ),
        }
    }
    let body = hcl::parse("type = \"jwt\"").unwrap();
    let error = JwtAuth::from_hcl("token", &body).unwrap_err();
    assert!(error.to_string().contains("Vault's token store"), "{error}");
}

#[test]
fn the_crate_documentation_example_is_an_auth_block() {
    let lib = include_str!("lib.rs");
    let start = lib.find("//! ```hcl\n").unwrap() + "//! ```hcl\n".len();
    let end = start + lib[start..].find("//! ```").unwrap();
    let text: String = lib[start..end]
        .lines()
        .map(|line| line.strip_prefix("//!").unwrap().trim_start())
        .map(|line| format!("{line}\n"))
        .collect();
    let file = hcl::parse(&text).unwrap();
    let block = file.blocks().next().unwrap();
    let auth = JwtAuth::from_hcl(block.labels()[0].as_str(), block.body()).unwrap();
    assert_eq!(auth.path(), "jwt");
    let policies = [("acme-release".to_string(), "acme-release".to_string())];
    assert_eq!(auth.role_policies(), policies);
}

#[test]
fn vault_field_forms_are_taken() {
    let text = format!(
        r#"type = "jwt"
        description = "GitLab CI"
        jwt_validation_pubkeys = {keys}
        role "acme" {{
          role_type               = "jwt"
          user_claim              = "/project/path"
          user_claim_json_pointer = "true"
          bound_audiences         = "a, b"
          bound_claims            = {{ ref = "main", protected = true, project_id = 22 }}
          token_policies          = "x,y"
          token_ttl               = 300
          token_explicit_max_ttl  = "1h30m"
          token_no_default_policy = true
          clock_skew_leeway       = "-1s"
          expiration_leeway       = "2m"
          not_before_leeway       = 0
        }}"#,
        keys = heredocs(&pems())
    );
    let auth = JwtAuth::from_hcl("jwt", &hcl::parse(&text).unwrap()).unwrap();
    let role = &auth.mount.roles["acme"];
    assert!(role.user_claim_json_pointer);
    assert_eq!(role.bound_audiences, ["a", "b"]);
    assert_eq!(role.token_policies, ["x", "y"]);
    assert_eq!((role.token_ttl, role.token_explicit_max_ttl), (300, 5400));
    assert!(role.token_no_default_policy);
    let leeways = (
        role.clock_skew_leeway,
        role.expiration_leeway,
        role.not_before_leeway,
    );
    assert_eq!(leeways, (Some(-1), Some(120), Some(0)));
    assert_eq!(role.bound_claims.len(), 3);
    assert_eq!(auth.mount.supported_algs, config::DEFAULT_ALGS);
    assert!(matches!(&auth.mount.keys, config::KeySet::Static(keys) if keys.len() == 4));
}
