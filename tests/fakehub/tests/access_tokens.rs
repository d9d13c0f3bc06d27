//! Personal access tokens through the API: create, list with pagination, read, update, delete,
//! and the validation errors in the Hub's `{"fields", "text"}` shape.

mod common;

use std::time::Duration;

use common::*;
use fakehub::ExpiryGrant;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

fn is_secret(text: &str) -> bool {
    text.strip_prefix("dckr_pat_").is_some_and(|rest| {
        rest.len() == 27
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

#[test]
fn create_returns_the_token_object_with_its_secret_once() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let reply = client.send(
        "POST",
        "/v2/access-tokens",
        Some(&jwt),
        Some(json!({
            "token_label": "vault lease 1",
            "scopes": ["repo:read"],
            "expires_at": "2999-01-01T00:00:00Z",
        })),
    );
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let token = &reply.body;
    let mut keys: Vec<&str> = token
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "created_at",
            "creator_ip",
            "creator_ua",
            "expires_at",
            "generated_by",
            "is_active",
            "last_used",
            "scopes",
            "token",
            "token_label",
            "uuid"
        ]
    );
    assert_eq!(token["client_id"], "HUB");
    assert_eq!(token["creator_ip"], "127.0.0.1");
    assert_eq!(token["creator_ua"], "fakehub-tests/1");
    assert_eq!(token["generated_by"], "manual");
    assert_eq!(token["is_active"], true);
    assert_eq!(token["last_used"], Value::Null);
    assert_eq!(token["token_label"], "vault lease 1");
    assert_eq!(token["scopes"], json!(["repo:read"]));
    assert_eq!(token["expires_at"], "2999-01-01T00:00:00Z");
    let secret = token["token"].as_str().unwrap();
    assert!(is_secret(secret), "{secret}");
    let created_at = token["created_at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
            .is_ok()
    );

    let uuid = token["uuid"].as_str().unwrap();
    let info = hub.token(uuid).unwrap();
    assert_eq!(info.username, ALICE);
    assert_eq!(info.label, "vault lease 1");
    assert_eq!(info.scopes, ["repo:read"]);
    assert_eq!(info.expires_at.as_deref(), Some("2999-01-01T00:00:00Z"));
    assert_eq!(info.token, secret);
    assert_eq!(info.created_at, created_at);
    assert!(info.is_active);

    let read = client.send(
        "GET",
        &format!("/v2/access-tokens/{uuid}"),
        Some(&jwt),
        None,
    );
    assert_eq!(read.status, 200);
    assert_eq!(read.body["token"], "");
    assert_eq!(read.body["uuid"], uuid);
}

#[test]
fn tokens_without_expiry_have_null_expires_at() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let token = client.create_token(&jwt, "forever", &["repo:admin", "repo:public_read"]);
    assert_eq!(token["expires_at"], Value::Null);
    assert_eq!(hub.tokens()[0].expires_at, None);
}

#[test]
fn the_granted_expiry_can_be_earlier_than_asked_or_none() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let create = |label: &str| {
        let reply = client.send(
            "POST",
            "/v2/access-tokens",
            Some(&jwt),
            Some(json!({
                "token_label": label,
                "scopes": ["repo:read"],
                "expires_at": "2999-01-01T00:00:00Z",
            })),
        );
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body
    };
    hub.grant_expiry(ExpiryGrant::AtMost(Duration::from_secs(600)));
    let before = OffsetDateTime::now_utc();
    let capped = create("capped");
    let at = OffsetDateTime::parse(capped["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let granted = at - before;
    assert!(
        granted <= time::Duration::seconds(601) && granted >= time::Duration::seconds(599),
        "{capped}"
    );
    assert_eq!(
        hub.token(capped["uuid"].as_str().unwrap())
            .unwrap()
            .expires_at,
        capped["expires_at"].as_str().map(str::to_owned),
        "the listing shows the expiry the answer gave"
    );
    hub.grant_expiry(ExpiryGrant::Never);
    assert_eq!(create("forever")["expires_at"], Value::Null);
    hub.grant_expiry(ExpiryGrant::AsAsked);
    assert_eq!(create("asked")["expires_at"], "2999-01-01T00:00:00Z");
}

#[test]
fn invalid_create_bodies_are_400_with_fields_and_text() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let long = "x".repeat(101);
    let cases = [
        (
            json!({"scopes": ["repo:read"]}),
            "token_label",
            "This field is required.",
        ),
        (
            json!({"token_label": "", "scopes": ["repo:read"]}),
            "token_label",
            "This field may not be blank.",
        ),
        (
            json!({"token_label": long, "scopes": ["repo:read"]}),
            "token_label",
            "Ensure this field has no more than 100 characters.",
        ),
        (
            json!({"token_label": "a"}),
            "scopes",
            "This field is required.",
        ),
        (
            json!({"token_label": "a", "scopes": []}),
            "scopes",
            "This list may not be empty.",
        ),
        (
            json!({"token_label": "a", "scopes": ["repo:everything"]}),
            "scopes",
            "\"repo:everything\" is not a valid choice.",
        ),
        (
            json!({"token_label": "a", "scopes": ["repo:read"], "expires_at": "2000-01-01T00:00:00Z"}),
            "expires_at",
            "Expiration date must be in the future.",
        ),
        (
            json!({"token_label": "a", "scopes": ["repo:read"], "expires_at": "soon"}),
            "expires_at",
            "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
        ),
    ];
    for (body, field, message) in cases {
        let reply = client.send("POST", "/v2/access-tokens", Some(&jwt), Some(body.clone()));
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(
            reply.body,
            json!({"fields": {field: [message]}, "text": message}),
            "{body}"
        );
    }
    assert!(hub.tokens().is_empty());
}

#[test]
fn unreadable_bodies_are_400_with_empty_fields() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    for body in [json!("a string"), json!([1, 2])] {
        let reply = client.send("POST", "/v2/access-tokens", Some(&jwt), Some(body));
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body["fields"], json!({}));
        assert!(
            reply.body["text"]
                .as_str()
                .unwrap()
                .starts_with("Invalid data.")
        );
    }
}

#[test]
fn list_pages_newest_first_with_links() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    for n in 0..25 {
        client.create_token(&jwt, &format!("token {n}"), &["repo:read"]);
    }
    // Another account's tokens never show up.
    bob_pat(&hub);

    let page = |query: &str| {
        client.send(
            "GET",
            &format!("/v2/access-tokens{query}"),
            Some(&jwt),
            None,
        )
    };
    let first = page("");
    assert_eq!(first.status, 200);
    assert_eq!(first.body["count"], 25);
    assert_eq!(first.body["active_count"], 25);
    assert_eq!(first.body["previous"], Value::Null);
    let url = hub.url();
    assert_eq!(
        first.body["next"],
        format!("{url}/v2/access-tokens?page=2&page_size=10")
    );
    let labels = |reply: &Reply| -> Vec<String> {
        reply.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["token"], "", "no secrets in lists");
                t["token_label"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(labels(&first).len(), 10);
    assert_eq!(labels(&first)[0], "token 24");

    let last = page("?page=3&page_size=10");
    assert_eq!(
        labels(&last),
        ["token 4", "token 3", "token 2", "token 1", "token 0"]
    );
    assert_eq!(last.body["next"], Value::Null);
    assert_eq!(
        last.body["previous"],
        format!("{url}/v2/access-tokens?page=2&page_size=10")
    );

    let beyond = page("?page=4");
    assert_detail_body(&beyond, 404, "Invalid page.");

    let capped = page("?page_size=500");
    assert_eq!(labels(&capped).len(), 25);
    assert_eq!(capped.body["next"], Value::Null);

    // Following `next` from the start walks every token once.
    let mut seen = Vec::new();
    let mut next = Some(format!("{url}/v2/access-tokens?page=1&page_size=7"));
    while let Some(link) = next {
        let reply = client.send("GET", link.strip_prefix(&url).unwrap(), Some(&jwt), None);
        seen.extend(labels(&reply));
        next = reply.body["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 25);
}

/// Creates a PAT for bob (who has 2FA) through the API and returns its secret.
fn bob_pat(hub: &fakehub::FakeHub) -> String {
    let client = Client::new(hub);
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
            "code": fakehub::totp::current_code(BOB_TOTP),
        })),
    );
    let jwt = second.body["token"].as_str().unwrap();
    client.create_token(jwt, "bob", &["repo:read"])["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn tokens_of_other_accounts_are_not_found() {
    let hub = hub();
    let client = Client::new(&hub);
    let alice = client.login(ALICE, ALICE_PASSWORD);
    let uuid = client.create_token(&alice, "alice's", &["repo:read"])["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.add_account("carol", "carol-password", None);
    let carol = client.login("carol", "carol-password");
    let path = format!("/v2/access-tokens/{uuid}");
    assert_detail_body(
        &client.send("GET", &path, Some(&carol), None),
        404,
        "Not found",
    );
    assert_detail_body(
        &client.send(
            "PATCH",
            &path,
            Some(&carol),
            Some(json!({"is_active": false})),
        ),
        404,
        "Not found",
    );
    assert_detail_body(
        &client.send("DELETE", &path, Some(&carol), None),
        404,
        "Not found",
    );
    assert!(hub.token(&uuid).unwrap().is_active);
}

#[test]
fn patch_changes_label_and_activity_only() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let uuid = client.create_token(&jwt, "before", &["repo:read"])["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v2/access-tokens/{uuid}");
    let reply = client.send(
        "PATCH",
        &path,
        Some(&jwt),
        Some(json!({"token_label": "after", "is_active": false, "scopes": ["repo:admin"]})),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["token_label"], "after");
    assert_eq!(reply.body["is_active"], false);
    assert_eq!(
        reply.body["scopes"],
        json!(["repo:read"]),
        "scopes cannot change"
    );
    assert_eq!(reply.body["token"], "");
    assert!(hub.live_tokens().is_empty());
    assert_eq!(hub.tokens().len(), 1);
    let list = client.send("GET", "/v2/access-tokens", Some(&jwt), None);
    assert_eq!(list.body["active_count"], 0);
    assert_eq!(list.body["count"], 1);

    let bad = client.send(
        "PATCH",
        &path,
        Some(&jwt),
        Some(json!({"is_active": "nope"})),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        json!({"fields": {"is_active": ["Must be a valid boolean."]}, "text": "Must be a valid boolean."})
    );
    let blank = client.send("PATCH", &path, Some(&jwt), Some(json!({"token_label": ""})));
    assert_eq!(blank.status, 400);
    assert!(blank.body["fields"]["token_label"].is_array());

    let missing = client.send(
        "PATCH",
        "/v2/access-tokens/00000000-0000-0000-0000-000000000000",
        Some(&jwt),
        Some(json!({"is_active": true})),
    );
    assert_detail_body(&missing, 404, "Not found");
}

#[test]
fn delete_is_204_then_404() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let token = client.create_token(&jwt, "doomed", &["repo:read"]);
    let uuid = token["uuid"].as_str().unwrap();
    let path = format!("/v2/access-tokens/{uuid}");

    let deleted = client.send("DELETE", &path, Some(&jwt), None);
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null, "204 has no body");
    assert!(hub.token(uuid).is_none());
    assert!(hub.tokens().is_empty());

    assert_detail_body(
        &client.send("DELETE", &path, Some(&jwt), None),
        404,
        "Not found",
    );
    assert_detail_body(
        &client.send("GET", &path, Some(&jwt), None),
        404,
        "Not found",
    );
    let login = client.send(
        "POST",
        "/v2/auth/token",
        None,
        Some(json!({"identifier": ALICE, "secret": token["token"]})),
    );
    assert_eq!(login.status, 401, "a deleted token cannot log in");
}

#[test]
fn calls_record_every_request_in_order() {
    let hub = hub();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    client.send(
        "GET",
        "/v2/access-tokens?page=1&page_size=5",
        Some(&jwt),
        None,
    );
    client.send("GET", "/nowhere", None, None);
    let calls = hub.calls();
    let summary: Vec<(&str, &str, u16, bool)> = calls
        .iter()
        .map(|c| (c.method.as_str(), c.path.as_str(), c.status, c.authorized))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", "/v2/auth/token", 200, false),
            ("GET", "/v2/access-tokens?page=1&page_size=5", 200, true),
            ("GET", "/nowhere", 404, false),
        ]
    );
    hub.clear_calls();
    assert!(hub.calls().is_empty());
}

#[test]
fn unknown_paths_and_methods_get_docker_shaped_errors() {
    let hub = hub();
    let client = Client::new(&hub);
    assert_detail_body(
        &client.send("GET", "/v2/repositories/x", None, None),
        404,
        "Not found",
    );
    assert_detail_body(&client.send("GET", "/", None, None), 404, "Not found");
    assert_detail_body(
        &client.send("PUT", "/v2/access-tokens", None, Some(json!({}))),
        405,
        "Method \"PUT\" not allowed.",
    );
}
