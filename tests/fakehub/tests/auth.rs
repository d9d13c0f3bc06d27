//! Logging in: both login flows, 2FA with a real TOTP code, PAT logins and the 403 their JWTs
//! get on the token endpoints, and how JWTs stop working (expiry, `expire_jwts`).

mod common;

use std::time::Duration;

use common::*;
use fakehub::{Config, FakeHub, totp};
use serde_json::json;

#[test]
fn auth_token_with_password_issues_a_real_jwt() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let first = claims(&jwt);
    assert_eq!(first.username, ALICE);
    assert!(!first.sub.is_empty());
    assert!(!first.from_pat);
    assert!((599..=601).contains(&(first.exp - first.iat)), "{first:?}");
    let again = claims(&client.login(ALICE, ALICE_PASSWORD));
    assert_ne!(again.jti, first.jti, "every JWT has its own id");
    assert_eq!(again.sub, first.sub);
    assert_eq!(hub.login_count(), 2);

    let listed = client.send("GET", "/v2/access-tokens", Some(&jwt), None);
    assert_eq!(listed.status, 200);
}

#[test]
fn auth_token_refuses_wrong_credentials_in_the_errinfo_shape() {
    let hub = hub();
    let client = Client::new(&hub);
    for (identifier, secret) in [(ALICE, "wrong"), ("nobody", ALICE_PASSWORD)] {
        let reply = client.send(
            "POST",
            "/v2/auth/token",
            None,
            Some(json!({"identifier": identifier, "secret": secret})),
        );
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.body,
            json!({
                "errinfo": {},
                "detail": "Incorrect authentication credentials",
                "message": "Incorrect authentication credentials",
            })
        );
    }
    assert_eq!(hub.login_count(), 0);
}

#[test]
fn auth_token_refuses_the_password_of_a_2fa_account() {
    let hub = hub();
    let client = Client::new(&hub);
    let reply = client.send(
        "POST",
        "/v2/auth/token",
        None,
        Some(json!({"identifier": BOB, "secret": BOB_PASSWORD})),
    );
    assert_eq!(reply.status, 401);
    let message = "Two-factor authentication is enabled on this account: use a personal access token or the 2FA login flow";
    assert_eq!(
        reply.body,
        json!({"errinfo": {}, "detail": message, "message": message})
    );
}

#[test]
fn users_login_without_2fa() {
    let hub = hub();
    let client = Client::new(&hub);
    let reply = client.send(
        "POST",
        "/v2/users/login",
        None,
        Some(json!({"username": ALICE, "password": ALICE_PASSWORD})),
    );
    assert_eq!(reply.status, 200);
    let jwt = reply.body["token"].as_str().unwrap();
    assert_eq!(claims(jwt).username, ALICE);

    let wrong = client.send(
        "POST",
        "/v2/users/login",
        None,
        Some(json!({"username": ALICE, "password": "nope"})),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body,
        json!({"detail": "Incorrect authentication credentials"})
    );
    assert_eq!(hub.login_count(), 1);
}

#[test]
fn users_login_with_2fa_needs_the_totp_step() {
    let hub = hub();
    let client = Client::new(&hub);
    let first = client.send(
        "POST",
        "/v2/users/login",
        None,
        Some(json!({"username": BOB, "password": BOB_PASSWORD})),
    );
    assert_eq!(first.status, 401);
    assert_eq!(
        first.body["detail"],
        "Require secondary authentication on MFA enabled account"
    );
    let login_token = first.body["login_2fa_token"].as_str().unwrap().to_owned();
    assert!(!login_token.is_empty());
    assert_eq!(hub.login_count(), 0);

    // A wrong code is refused and does not use up the login.
    let stale = wrong_code();
    let wrong = client.send(
        "POST",
        "/v2/users/2fa-login",
        None,
        Some(json!({"login_2fa_token": login_token, "code": stale})),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body["detail"].is_string());

    let second = client.send(
        "POST",
        "/v2/users/2fa-login",
        None,
        Some(json!({"login_2fa_token": login_token, "code": totp::current_code(BOB_TOTP)})),
    );
    assert_eq!(second.status, 200, "{:?}", second.body);
    let jwt = second.body["token"].as_str().unwrap();
    assert_eq!(claims(jwt).username, BOB);
    assert!(!claims(jwt).from_pat);
    assert_eq!(hub.login_count(), 1);
    // A password-and-TOTP JWT may manage tokens.
    client.create_token(jwt, "ci", &["repo:read"]);

    let reused = client.send(
        "POST",
        "/v2/users/2fa-login",
        None,
        Some(json!({"login_2fa_token": login_token, "code": totp::current_code(BOB_TOTP)})),
    );
    assert_eq!(reused.status, 401, "a login_2fa_token is single-use");
    assert!(reused.body["detail"].is_string());

    let unknown = client.send(
        "POST",
        "/v2/users/2fa-login",
        None,
        Some(json!({"login_2fa_token": "made-up", "code": "123456"})),
    );
    assert_eq!(unknown.status, 401);
    assert_eq!(hub.login_count(), 1);
}

/// A code valid in none of the time steps the fake accepts around now.
fn wrong_code() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let near: Vec<String> = (0..5)
        .map(|step| totp::code(BOB_TOTP, now + step * totp::STEP - 2 * totp::STEP).unwrap())
        .collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|code| !near.contains(code))
        .unwrap()
}

#[test]
fn a_pat_logs_in_but_its_jwt_cannot_manage_tokens() {
    let hub = hub();
    let client = Client::new(&hub);
    let password_jwt = client.login(ALICE, ALICE_PASSWORD);
    let created = client.create_token(&password_jwt, "ci", &["repo:write"]);
    let secret = created["token"].as_str().unwrap();
    let uuid = created["uuid"].as_str().unwrap();

    let pat_jwt = client.login(ALICE, secret);
    assert!(claims(&pat_jwt).from_pat);
    let refused = "token issued from personal access token is not allowed";
    for (method, path) in [
        ("GET", "/v2/access-tokens".to_owned()),
        ("GET", format!("/v2/access-tokens/{uuid}")),
        ("DELETE", format!("/v2/access-tokens/{uuid}")),
    ] {
        let reply = client.send(method, &path, Some(&pat_jwt), None);
        assert_detail_body(&reply, 403, refused);
    }
    let create = client.send(
        "POST",
        "/v2/access-tokens",
        Some(&pat_jwt),
        Some(json!({"token_label": "x", "scopes": ["repo:read"]})),
    );
    assert_detail_body(&create, 403, refused);
    assert_eq!(hub.tokens().len(), 1);

    // The legacy endpoint takes a PAT as the password too.
    let legacy = client.send(
        "POST",
        "/v2/users/login",
        None,
        Some(json!({"username": ALICE, "password": secret})),
    );
    assert_eq!(legacy.status, 200);
    assert!(claims(legacy.body["token"].as_str().unwrap()).from_pat);
    assert_eq!(hub.login_count(), 3);
    assert!(
        client
            .send(
                "GET",
                &format!("/v2/access-tokens/{uuid}"),
                Some(&password_jwt),
                None
            )
            .body["last_used"]
            .is_string()
    );
}

#[test]
fn a_pat_of_a_2fa_account_skips_the_second_factor() {
    let hub = hub();
    let client = Client::new(&hub);
    let first = client.send(
        "POST",
        "/v2/users/login",
        None,
        Some(json!({"username": BOB, "password": BOB_PASSWORD})),
    );
    let second = client.send(
        "POST",
        "/v2/users/2fa-login",
        None,
        Some(json!({
            "login_2fa_token": first.body["login_2fa_token"],
            "code": totp::current_code(BOB_TOTP),
        })),
    );
    let jwt = second.body["token"].as_str().unwrap().to_owned();
    let secret = client.create_token(&jwt, "ci", &["repo:read"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(claims(&client.login(BOB, &secret)).from_pat);
}

#[test]
fn inactive_or_expired_pats_cannot_log_in() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let disabled = client.create_token(&jwt, "disabled", &["repo:read"]);
    let uuid = disabled["uuid"].as_str().unwrap();
    let patched = client.send(
        "PATCH",
        &format!("/v2/access-tokens/{uuid}"),
        Some(&jwt),
        Some(json!({"is_active": false})),
    );
    assert_eq!(patched.status, 200);

    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let soon = (time::OffsetDateTime::now_utc() + Duration::from_secs(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let expiring = client.send(
        "POST",
        "/v2/access-tokens",
        Some(&jwt),
        Some(json!({"token_label": "expiring", "scopes": ["repo:read"], "expires_at": soon})),
    );
    assert_eq!(expiring.status, 201, "{:?}", expiring.body);
    assert_eq!(hub.live_tokens().len(), 1);
    std::thread::sleep(
        deadline.saturating_duration_since(std::time::Instant::now()) + Duration::from_secs(1),
    );

    for secret in [&disabled["token"], &expiring.body["token"]] {
        let reply = client.send(
            "POST",
            "/v2/auth/token",
            None,
            Some(json!({"identifier": ALICE, "secret": secret})),
        );
        assert_eq!(reply.status, 401);
    }
    assert!(hub.live_tokens().is_empty());
    // Expired tokens stay listed, as on the Hub.
    assert_eq!(hub.tokens().len(), 2);
    let listed = client.send("GET", "/v2/access-tokens", Some(&jwt), None);
    assert_eq!(listed.body["count"], 2);
}

#[test]
fn jwts_expire_after_their_ttl() {
    let hub = FakeHub::start(Config {
        jwt_ttl: Duration::from_secs(1),
        ..common::config()
    })
    .unwrap();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let issued = claims(&jwt);
    assert!(issued.exp - issued.iat <= 2);
    std::thread::sleep(Duration::from_secs(2));
    let reply = client.send("GET", "/v2/access-tokens", Some(&jwt), None);
    assert_eq!(reply.status, 401);
    assert!(reply.body["detail"].is_string());
    assert_eq!(reply.body["detail"], reply.body["message"]);
}

#[test]
fn expire_jwts_invalidates_every_jwt_issued_so_far() {
    let hub = hub();
    let client = Client::new(&hub);
    let old = client.login(ALICE, ALICE_PASSWORD);
    hub.expire_jwts();
    let reply = client.send("GET", "/v2/access-tokens", Some(&old), None);
    assert_eq!(reply.status, 401);
    let fresh = client.login(ALICE, ALICE_PASSWORD);
    assert_eq!(
        client
            .send("GET", "/v2/access-tokens", Some(&fresh), None)
            .status,
        200
    );
}

#[test]
fn missing_or_forged_bearer_is_401() {
    let hub = hub();
    let client = Client::new(&hub);
    let missing = client.send("GET", "/v2/access-tokens", None, None);
    assert_detail_body(
        &missing,
        401,
        "Authentication credentials were not provided.",
    );
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let mut forged = jwt.clone();
    forged.pop();
    forged.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    for bearer in ["garbage", forged.as_str()] {
        let reply = client.send("GET", "/v2/access-tokens", Some(bearer), None);
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body["detail"], reply.body["message"]);
    }
}

#[test]
fn set_password_and_add_account_change_who_can_log_in() {
    let hub = hub();
    let client = Client::new(&hub);
    hub.set_password(ALICE, "new-password");
    let old = client.send(
        "POST",
        "/v2/auth/token",
        None,
        Some(json!({"identifier": ALICE, "secret": ALICE_PASSWORD})),
    );
    assert_eq!(old.status, 401);
    client.login(ALICE, "new-password");

    hub.add_account("carol", "carol-password", None);
    client.login("carol", "carol-password");
    assert_eq!(hub.login_count(), 2);
}

#[test]
fn login_bodies_missing_fields_are_400() {
    let hub = hub();
    let client = Client::new(&hub);
    let token = client.send(
        "POST",
        "/v2/auth/token",
        None,
        Some(json!({"identifier": ALICE})),
    );
    assert_eq!(token.status, 400);
    assert_eq!(token.body["errinfo"], json!({}));
    let legacy = client.send("POST", "/v2/users/login", None, Some(json!({})));
    assert_eq!(legacy.status, 400);
    assert!(legacy.body["detail"].is_string());
}
