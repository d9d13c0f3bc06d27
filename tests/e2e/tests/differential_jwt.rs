//! Vault's JWT auth API in both hosts that implement it: OpenBao's own `jwt` auth method, and
//! `serve`'s (`auth "jwt"` in its tokens file). Both trust one HTTPS test issuer
//! (`jwks_url`, `jwks_ca_pem`, `bound_issuer`) and have the same role (one JSON text, which
//! `serve` reads as HCL), granting the differential table's `limited` policy. Each gets the
//! same requests: logins, good and refused, the login token's `lookup-self`, `renew-self`
//! and `revoke-self`, and its write to the engine. Answers are compared as `differential.rs`
//! compares them: status and shape (keys, nested ones too, JSON types, the form of a
//! timestamp), which leaves out what differs by nature (ids, secrets, accessors, times,
//! `request_id`); then the values that must be the same, and the error and warning texts,
//! which the CLI prints. Where `serve` answers differently on purpose, the row says what it
//! says instead, and why.

use dockerhub_secrets_e2e::differential::{Answer, Host, JwtMount};
use dockerhub_secrets_e2e::oidc::{Alg, Issuer, gitlab_claims};
use dockerhub_secrets_e2e::openbao::eventually;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The audience the pipelines' tokens are minted for.
const AUDIENCE: &str = "https://ci.example";

/// The login token's TTL and max TTL (`token_ttl`, `token_max_ttl`), in seconds: shorter
/// than the engine's lease TTL (300 s), so that a write with the token shows what each host
/// does with a lease that would outlive it.
const TOKEN_TTL: u64 = 120;
const TOKEN_MAX_TTL: u64 = 240;

/// GitLab's role, as the README's recipe has it, with `claim_mappings` for the token's
/// metadata.
fn role() -> Value {
    json!({
        "role_type": "jwt",
        "user_claim": "project_path",
        "bound_audiences": [AUDIENCE],
        "bound_claims": {"project_path": "acme/app", "ref_protected": "true"},
        "claim_mappings": {"project_path": "project_path", "ref": "ref"},
        "token_policies": ["limited"],
        "token_ttl": format!("{TOKEN_TTL}s"),
        "token_max_ttl": format!("{TOKEN_MAX_TTL}s"),
    })
}

/// OpenBao, then `serve`, each with `auth/jwt/` trusting `issuer` and the role `release`.
fn hosts(issuer: &Issuer) -> [Host; 2] {
    let jwt = JwtMount {
        issuer,
        role: "release",
        settings: role(),
    };
    [
        Host::openbao_with_jwt(&jwt).unwrap(),
        Host::serve_with_jwt(&jwt).unwrap(),
    ]
}

const LOGIN: &str = "/v1/auth/jwt/login";

fn body(value: &Value) -> Vec<u8> {
    match value {
        Value::Null => Vec::new(),
        value => value.to_string().into_bytes(),
    }
}

/// The same request to every host, `token` being each host's own (or none).
fn send_all(
    hosts: &[Host],
    method: &str,
    target: &str,
    tokens: &[Option<&str>],
    request: &Value,
) -> Vec<Answer> {
    hosts
        .iter()
        .zip(tokens)
        .map(|(host, token)| {
            host.raw_as(method, target, *token, &[], &body(request))
                .unwrap_or_else(|e| panic!("{}: {method} {target}: {e}", host.name))
        })
        .collect()
}

fn error(answer: &Answer) -> &str {
    answer.body["errors"][0].as_str().unwrap_or_default()
}

fn warnings(answer: &Answer) -> Vec<&str> {
    answer.body["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What `serve`'s error says next to OpenBao's.
enum Words {
    /// OpenBao's words exactly.
    Same,
    /// Both begin alike (what Vault's JWT auth method says for the kind of refusal), and
    /// `serve` goes on in its own words, which hold the second text.
    Own(&'static str, &'static str),
}

/// A JWT's part, base64url without padding.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `token` with its signature's first character changed: a signature that does not match.
fn with_bad_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    format!("{signed}.{first}{}", &signature[1..])
}

/// `token` (RS256, whose 256-byte signature ends in a character that carries 2 bits and 4
/// zero bits) with one of those zero bits set: the same signature, in a base64url that
/// RFC 4648 §3.5 allows a decoder to refuse.
fn with_non_canonical_signature(token: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *token.as_bytes().last().unwrap();
    let index = ALPHABET.iter().position(|c| *c == last).unwrap();
    assert_eq!(index % 16, 0, "a canonical last character");
    let mut changed = token[..token.len() - 1].to_string();
    changed.push(ALPHABET[index + 1] as char);
    changed
}

#[test]
fn logins_and_their_refusals_are_answered_alike() {
    let issuer = Issuer::start_https().unwrap();
    let hosts = hosts(&issuer);
    let claims = || gitlab_claims("acme/app", "main", true, AUDIENCE);
    let good = issuer.sign(Alg::Rs256, claims(), 300);
    let signed = |claims: Value| issuer.sign(Alg::Rs256, claims, 300);
    let expired = signed({
        let mut c = claims();
        c["iat"] = json!(999_999_000);
        c["nbf"] = json!(999_999_000);
        c["exp"] = json!(1_000_000_000);
        c
    });
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        good.split('.').nth(1).unwrap()
    );
    let mut no_user = claims();
    no_user.as_object_mut().unwrap().remove("project_path");
    let rows: Vec<(&str, Value, Words)> = vec![
        ("no role", json!({"jwt": good}), Words::Same),
        ("no jwt", json!({"role": "release"}), Words::Same),
        (
            "an empty jwt",
            json!({"role": "release", "jwt": ""}),
            Words::Same,
        ),
        ("no body", Value::Null, Words::Same),
        (
            "an unknown role",
            json!({"role": "nope", "jwt": good}),
            Words::Same,
        ),
        // Vault's framework reads a string field from any JSON scalar, and refuses a list.
        (
            "a number for a role",
            json!({"role": 5, "jwt": good}),
            Words::Same,
        ),
        (
            "true for a role",
            json!({"role": true, "jwt": good}),
            Words::Same,
        ),
        (
            "a list for a role",
            json!({"role": ["release"], "jwt": good}),
            Words::Same,
        ),
        (
            "a list for a jwt",
            json!({"role": "release", "jwt": [good]}),
            Words::Same,
        ),
        // OpenBao passes go-jose's words on ("oidc: malformed jwt: go-jose/go-jose: compact
        // JWS format must have three parts"); `serve` verifies with jsonwebtoken, and says
        // what is wrong with the token without naming a Go library.
        (
            "a malformed jwt",
            json!({"role": "release", "jwt": "not.a-jwt"}),
            Words::Own("error validating token: ", "malformed token: 2 parts"),
        ),
        (
            "a number for a jwt",
            json!({"role": "release", "jwt": 5}),
            Words::Own("error validating token: ", "malformed token: 1 parts"),
        ),
        // OpenBao's go-jose refuses `none` as a malformed token's unexpected algorithm (and
        // lists the ones it expects); `serve` says the token is unsigned.
        (
            "an unsigned jwt",
            json!({"role": "release", "jwt": unsigned}),
            Words::Own("error validating token: ", "unsigned (alg \"none\")"),
        ),
        // OpenBao says "failed to verify id token signature" for both; `serve` names the
        // reason, as the issue asks: a signature that does not match, or an unknown key.
        (
            "a bad signature",
            json!({"role": "release", "jwt": with_bad_signature(&good)}),
            Words::Own(
                "error validating token: error verifying token signature: ",
                "the signature does not match",
            ),
        ),
        (
            "an unknown kid",
            json!({"role": "release", "jwt": issuer.sign_with_kid(Alg::Rs256, claims(), "nope")}),
            Words::Own(
                "error validating token: error verifying token signature: ",
                "no key with kid \"nope\" in the JWKS",
            ),
        ),
        (
            "a wrong audience",
            json!({"role": "release", "jwt": signed(gitlab_claims("acme/app", "main", true, "https://elsewhere.example"))}),
            Words::Same,
        ),
        (
            "an expired jwt",
            json!({"role": "release", "jwt": expired}),
            Words::Same,
        ),
        (
            "a wrong issuer",
            json!({"role": "release", "jwt": signed({
                let mut c = claims();
                c["iss"] = json!("https://elsewhere.example");
                c
            })}),
            Words::Same,
        ),
        (
            "another project",
            json!({"role": "release", "jwt": signed(gitlab_claims("acme/other", "main", true, AUDIENCE))}),
            Words::Same,
        ),
        (
            "no user claim",
            json!({"role": "release", "jwt": signed(no_user)}),
            Words::Same,
        ),
    ];
    let nobody = [None, None];
    let mut differences = Vec::new();
    for (what, request, words) in &rows {
        let answers = send_all(&hosts, "PUT", LOGIN, &nobody, request);
        let (bao, serve) = (&answers[0], &answers[1]);
        let alike = match words {
            Words::Same => bao.body == serve.body,
            Words::Own(start, serve_says) => {
                error(bao).starts_with(start)
                    && error(serve).starts_with(start)
                    && error(serve).contains(serve_says)
            }
        };
        if bao.status != 400 || serve.status != 400 || !alike {
            differences.push(format!(
                "{what}: openbao {} {}\n  serve {} {}",
                bao.status, bao.body, serve.status, serve.body
            ));
        }
    }
    // Methods a login does not take, and a login at a path where no auth method is mounted
    // (OpenBao's refusal of a request it has no route for and no token for).
    let methods = [
        ("GET", LOGIN, 405),
        ("DELETE", LOGIN, 405),
        ("LIST", LOGIN, 403),
        ("PUT", "/v1/auth/elsewhere/login", 403),
    ];
    for (method, target, status) in methods {
        let answers = send_all(
            &hosts,
            method,
            target,
            &nobody,
            &json!({"role": "release", "jwt": good}),
        );
        let (bao, serve) = (&answers[0], &answers[1]);
        if bao.status != status || serve.status != status || bao.body != serve.body {
            differences.push(format!(
                "{method} {target}: expected {status}\n  openbao {} {}\n  serve {} {}",
                bao.status, bao.body, serve.status, serve.body
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );

    // A good login: the `auth` section's keys and types, and its values but the token's own
    // (secret, accessor) and its entity: OpenBao makes an identity entity for the login's
    // alias, `serve` has no identity store and says "" (a string all the same).
    let answers = send_all(
        &hosts,
        "PUT",
        LOGIN,
        &nobody,
        &json!({"role": "release", "jwt": good}),
    );
    let (bao, serve) = (&answers[0], &answers[1]);
    assert_eq!((bao.status, serve.status), (200, 200), "{answers:?}");
    assert_eq!(bao.shape(&[]), serve.shape(&[]), "{answers:?}");
    for key in [
        "policies",
        "token_policies",
        "metadata",
        "lease_duration",
        "renewable",
        "token_type",
        "orphan",
        "num_uses",
        "mfa_requirement",
    ] {
        assert_eq!(bao.body["auth"][key], serve.body["auth"][key], "auth.{key}");
    }
    assert_eq!(
        serve.body["auth"]["policies"],
        json!(["default", "limited"])
    );
    assert_eq!(
        serve.body["auth"]["metadata"],
        json!({"project_path": "acme/app", "ref": "main", "role": "release"})
    );
    assert_eq!(serve.body["auth"]["lease_duration"], TOKEN_TTL);
    for key in [
        "data",
        "lease_id",
        "lease_duration",
        "renewable",
        "warnings",
        "wrap_info",
    ] {
        assert_eq!(bao.body[key], serve.body[key], "{key}");
    }
    assert!(!bao.body["auth"]["entity_id"].as_str().unwrap().is_empty());
    assert_eq!(serve.body["auth"]["entity_id"], "");

    // The one token both decode alike and only OpenBao takes: a signature whose last
    // character has a padding bit set (Go's base64 ignores it). `serve` refuses it as
    // malformed, as RFC 4648 lets a decoder do; no issuer writes one.
    let odd = json!({"role": "release", "jwt": with_non_canonical_signature(&good)});
    let answers = send_all(&hosts, "PUT", LOGIN, &nobody, &odd);
    assert_eq!(answers[0].status, 200, "openbao: {:?}", answers[0]);
    assert_eq!(answers[1].status, 400, "serve: {:?}", answers[1]);
    assert!(
        error(&answers[1]).starts_with("error validating token: malformed token: "),
        "{:?}",
        answers[1]
    );
}

/// Seconds as OpenBao's `humanDuration` prints them: Go's `time.Duration` text without zero
/// minutes or seconds (240 → `4m`, 238 → `3m58s`, 3600 → `1h`).
fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            text += &format!("{value}{unit}");
        }
    }
    text
}

#[test]
fn a_login_tokens_lookup_renewals_write_and_revocation_are_answered_alike() {
    let issuer = Issuer::start_https().unwrap();
    let hosts = hosts(&issuer);
    let jwt = issuer.sign(
        Alg::Rs256,
        gitlab_claims("acme/app", "main", true, AUDIENCE),
        300,
    );
    let logins = send_all(
        &hosts,
        "PUT",
        LOGIN,
        &[None, None],
        &json!({"role": "release", "jwt": jwt}),
    );
    let logged_in = Instant::now();
    let secrets: Vec<String> = logins
        .iter()
        .map(|login| {
            login.body["auth"]["client_token"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let tokens: Vec<Option<&str>> = secrets.iter().map(|s| Some(s.as_str())).collect();
    let send = |method: &str, target: &str, request: Value| {
        send_all(&hosts, method, target, &tokens, &request)
    };
    let alike = |what: &str, answers: &[Answer], status: u16| {
        let (bao, serve) = (&answers[0], &answers[1]);
        assert_eq!(
            (bao.status, serve.status),
            (status, status),
            "{what}: {answers:?}"
        );
        assert_eq!(bao.shape(&[]), serve.shape(&[]), "{what}: {answers:?}");
    };

    // `lookup-self`: every field of OpenBao's, with its type; the values that are the
    // token's own (id, accessor, times) are each host's.
    let lookups = send("GET", "/v1/auth/token/lookup-self", Value::Null);
    alike("lookup-self", &lookups, 200);
    for (lookup, (login, secret)) in lookups.iter().zip(logins.iter().zip(&secrets)) {
        let data = &lookup.body["data"];
        assert_eq!(data["id"], secret.as_str());
        assert_eq!(data["accessor"], login.body["auth"]["accessor"]);
        let ttl = data["ttl"].as_u64().unwrap();
        assert!((TOKEN_TTL - 5..=TOKEN_TTL).contains(&ttl), "{data}");
        assert!(
            data.get("last_renewal").is_none(),
            "not renewed yet: {data}"
        );
    }
    let (bao, serve) = (&lookups[0].body["data"], &lookups[1].body["data"]);
    for key in [
        "display_name",
        "path",
        "policies",
        "meta",
        "renewable",
        "creation_ttl",
        "explicit_max_ttl",
        "num_uses",
        "orphan",
        "type",
    ] {
        assert_eq!(bao[key], serve[key], "lookup-self: {key}");
    }
    assert_eq!(serve["display_name"], "jwt-acme/app");
    assert_eq!(serve["path"], "auth/jwt/login");
    // OpenBao's entity for the login's alias; `serve` knows no entities (see the login).
    assert!(!bao["entity_id"].as_str().unwrap().is_empty());
    assert_eq!(serve["entity_id"], "");

    // `renew-self` with an increment, then without one (the TTL the login granted).
    for (request, granted) in [(json!({"increment": "1m"}), 60), (json!({}), TOKEN_TTL)] {
        let renewals = send("PUT", "/v1/auth/token/renew-self", request.clone());
        alike("renew-self", &renewals, 200);
        for renewal in &renewals {
            assert_eq!(renewal.body["auth"]["lease_duration"], granted, "{request}");
            assert_eq!(renewal.body["warnings"], Value::Null, "{request}");
        }
        assert_eq!(
            renewals[0].body["auth"]["metadata"],
            renewals[1].body["auth"]["metadata"]
        );
    }
    // ... and past the max TTL, a few seconds on: capped at what is left of it, which
    // OpenBao's warning calls the effective max_ttl, counted in whole seconds.
    std::thread::sleep(Duration::from_secs(2));
    let renewals = send(
        "PUT",
        "/v1/auth/token/renew-self",
        json!({"increment": "1h"}),
    );
    alike("renew-self past the max TTL", &renewals, 200);
    let elapsed = logged_in.elapsed().as_secs();
    for (host, renewal) in hosts.iter().zip(&renewals) {
        let granted = renewal.body["auth"]["lease_duration"].as_u64().unwrap();
        assert!(
            (TOKEN_MAX_TTL - elapsed - 2..=TOKEN_MAX_TTL - elapsed + 1).contains(&granted),
            "{}: {granted} s granted {elapsed} s after the login",
            host.name
        );
        assert_eq!(
            warnings(renewal),
            [format!(
                "TTL of \"1h\" exceeded the effective max_ttl of \"{}\"; TTL value is capped \
                 accordingly",
                human_duration(granted)
            )],
            "{}",
            host.name
        );
    }
    // A renewed token's lookup says when it was renewed (`last_renewal`, and as Unix time).
    let lookups = send("GET", "/v1/auth/token/lookup-self", Value::Null);
    alike("lookup-self after renewals", &lookups, 200);
    assert!(
        lookups[1].body["data"]["last_renewal_time"].is_u64(),
        "{lookups:?}"
    );

    // The token's write to the engine. OpenBao does not cap the lease at the token's time
    // left: it says the engine's 300 s, and revokes the lease when the token ends. `serve`
    // tells the engine the token's time left as the limit of its leases (issue 9: a Docker
    // Hub token must not outlive the job's identity, not even at the Hub), so its lease,
    // and the Hub's own expiry of the token, end no later than the login token; the engine
    // warns that it capped the TTL at the longest lease the host allows now.
    let issued = send(
        "PUT",
        "/v1/dockerhub/token/hoeg/my-organization",
        json!({"label": ""}),
    );
    let (bao, serve) = (&issued[0], &issued[1]);
    assert_eq!((bao.status, serve.status), (200, 200), "{issued:?}");
    assert_eq!(bao.body["data"]["label"], serve.body["data"]["label"]);
    assert_eq!(serve.body["data"]["label"], "jwt-acme/app");
    assert_eq!(bao.body["lease_duration"], 300, "{bao:?}");
    assert_eq!(bao.body["warnings"], Value::Null, "{bao:?}");
    let token_left = lookups[1].body["data"]["ttl"].as_u64().unwrap();
    let lease = serve.body["lease_duration"].as_u64().unwrap();
    // (The lookup's `ttl` is counted from now rounded to the second: a second either way.)
    assert!(
        lease <= token_left + 1 && lease + 5 >= token_left,
        "serve's lease ends with its token: {lease} s for {token_left} s"
    );
    let engine_warning = format!(
        "ttl of 5m0s exceeds the longest lease the host allows now, {}m{}s (the mount's max \
         lease TTL, or the time the requesting login token has left); capped",
        lease / 60,
        lease % 60
    );
    assert_eq!(warnings(serve), [engine_warning], "{serve:?}");
    // Once the lease is left out of it, the same answer.
    let without_lease = |answer: &Answer| {
        let mut body = answer.body.clone();
        body["lease_duration"] = json!(0);
        body["warnings"] = Value::Null;
        Answer {
            body,
            ..answer.clone()
        }
        .shape(&[])
    };
    assert_eq!(without_lease(bao), without_lease(serve));
    let uuids: Vec<&str> = issued
        .iter()
        .map(|a| a.body["data"]["uuid"].as_str().unwrap())
        .collect();

    // `revoke-self`: 204, and the token's lease ends with it, at the Hub too.
    let revoked = send("PUT", "/v1/auth/token/revoke-self", Value::Null);
    alike("revoke-self", &revoked, 204);
    for (host, uuid) in hosts.iter().zip(&uuids) {
        assert!(
            eventually(Duration::from_secs(30), || host.hub().token(uuid).is_none()),
            "{}: the Docker Hub token ends with the login token\n{}",
            host.name,
            host.log()
        );
    }
    // Then the token is no one's: refused as an unknown token, in OpenBao's words.
    for (method, target) in [
        ("GET", "/v1/auth/token/lookup-self"),
        ("PUT", "/v1/auth/token/renew-self"),
        ("PUT", "/v1/auth/token/revoke-self"),
        ("PUT", "/v1/dockerhub/token/hoeg/my-organization"),
    ] {
        let answers = send(method, target, json!({}));
        alike(target, &answers, 403);
        assert_eq!(answers[0].body, answers[1].body, "{method} {target}");
        assert_eq!(error(&answers[1]), "permission denied");
    }
}
