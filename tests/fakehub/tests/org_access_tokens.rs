//! Organization access tokens through the API: create, list with `total` and pages, read,
//! update, delete; who may manage them; the plan's limit counting deactivated and expired
//! tokens until deleted; validation errors; logging in with the organization's name and a
//! token; faults and the rate limit on the new paths.

mod common;

use std::time::Duration;

use common::*;
use fakehub::{
    Config, ExpiryGrant, FakeHub, Fault, FaultKind, OrgTokenResource, Organization, Plan, RateLimit,
};
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

const ACME: &str = "acme";
/// A member of acme who does not own it.
const CAROL: &str = "carol";
const CAROL_PASSWORD: &str = "carol-password";
/// Owns globex, and nothing of acme.
const DAVE: &str = "dave";
const DAVE_PASSWORD: &str = "dave-password";
const TOKENS: &str = "/v2/orgs/acme/access-tokens";

/// alice owns acme (on `plan`, with repositories `app` and `web`); carol is a member of it;
/// dave owns globex (Team, repository `site`).
fn org_config(plan: Plan) -> Config {
    config()
        .account(CAROL, CAROL_PASSWORD, None)
        .account(DAVE, DAVE_PASSWORD, None)
        .organization(
            Organization::new(ACME, plan)
                .owner(ALICE)
                .member(CAROL)
                .repository("app")
                .repository("web"),
        )
        .organization(
            Organization::new("globex", Plan::Team)
                .owner(DAVE)
                .repository("site"),
        )
}

fn org_hub(plan: Plan) -> FakeHub {
    FakeHub::start(org_config(plan)).unwrap()
}

fn pull(path: &str) -> Value {
    json!({"type": "TYPE_REPO", "path": path, "scopes": ["scope-image-pull"]})
}

fn body(label: &str) -> Value {
    json!({"label": label, "resources": [pull("acme/app")]})
}

/// `POST` to acme's tokens, expecting 201; returns the answer.
fn create(client: &Client, jwt: &str, body: Value) -> Value {
    let reply = client.send("POST", TOKENS, Some(jwt), Some(body));
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

fn item(id: &Value) -> String {
    format!("{TOKENS}/{}", id.as_str().unwrap())
}

fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// A time `duration` from now, in whole seconds, as the fake answers it back unchanged.
fn rfc3339_in(duration: Duration) -> String {
    (OffsetDateTime::now_utc() + duration)
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

fn is_oat_secret(text: &str) -> bool {
    text.strip_prefix("dckr_oat_").is_some_and(|rest| {
        (27..=32).contains(&rest.len())
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

fn login_reply(client: &Client, identifier: &str, secret: &str) -> Reply {
    client.send(
        "POST",
        "/v2/auth/token",
        None,
        Some(json!({"identifier": identifier, "secret": secret})),
    )
}

#[test]
fn create_answers_the_token_with_its_secret_and_resources_once() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let resources = json!([
        {"type": "TYPE_REPO", "path": "acme/app", "scopes": ["scope-image-pull", "scope-image-push"]},
        pull("acme/*"),
        pull("*/*/public"),
    ]);
    let expires_at = rfc3339_in(MONTH);
    let token = create(
        &client,
        &jwt,
        json!({
            "label": "ci",
            "description": "pushes app",
            "expires_at": expires_at,
            "resources": resources,
        }),
    );
    assert_eq!(
        keys(&token),
        [
            "created_at",
            "created_by",
            "description",
            "expires_at",
            "id",
            "is_active",
            "label",
            "last_used_at",
            "resources",
            "token"
        ]
    );
    assert_eq!(token["label"], "ci");
    assert_eq!(token["description"], "pushes app");
    assert_eq!(token["created_by"], ALICE);
    assert_eq!(token["is_active"], true);
    assert_eq!(token["expires_at"], expires_at);
    assert_eq!(token["last_used_at"], Value::Null);
    assert_eq!(token["resources"], resources);
    let secret = token["token"].as_str().unwrap();
    assert!(is_oat_secret(secret), "{secret}");
    assert!(OffsetDateTime::parse(token["created_at"].as_str().unwrap(), &Rfc3339).is_ok());

    let id = token["id"].as_str().unwrap();
    let info = hub.org_token(id).unwrap();
    assert_eq!(info.org, ACME);
    assert_eq!(info.token, secret);
    assert_eq!(info.created_by, ALICE);
    assert_eq!(info.description, "pushes app");
    assert_eq!(
        info.resources,
        [
            OrgTokenResource::repo("acme/app", &["scope-image-pull", "scope-image-push"]),
            OrgTokenResource::repo("acme/*", &["scope-image-pull"]),
            OrgTokenResource::repo("*/*/public", &["scope-image-pull"]),
        ]
    );
    assert!(!info.expired);
    assert_eq!(hub.org_tokens(ACME), [info]);
    assert!(hub.tokens().is_empty(), "no personal token was made");

    // Read: the resources, never the secret.
    let read = client.send("GET", &item(&token["id"]), Some(&jwt), None);
    assert_eq!(read.status, 200);
    assert!(read.body.get("token").is_none(), "{:?}", read.body);
    assert_eq!(read.body["resources"], resources);
    assert_eq!(read.body["id"], token["id"]);

    // List: the spec's `orgAccessToken`, without resources or secret.
    let list = client.send("GET", TOKENS, Some(&jwt), None);
    assert_eq!(list.status, 200);
    assert_eq!(keys(&list.body), ["next", "previous", "results", "total"]);
    let listed = &list.body["results"][0];
    assert_eq!(
        keys(listed),
        [
            "created_at",
            "created_by",
            "description",
            "expires_at",
            "id",
            "is_active",
            "label",
            "last_used_at"
        ]
    );
    assert_eq!(listed["id"], token["id"]);
}

#[test]
fn tokens_without_expiry_have_null_expires_at_and_the_grant_applies() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    assert_eq!(
        create(&client, &jwt, body("forever"))["expires_at"],
        Value::Null
    );
    let explicit_null =
        json!({"label": "null", "expires_at": null, "resources": [pull("acme/app")]});
    assert_eq!(
        create(&client, &jwt, explicit_null)["expires_at"],
        Value::Null
    );

    hub.grant_expiry(ExpiryGrant::AtMost(Duration::from_secs(600)));
    let before = OffsetDateTime::now_utc();
    let capped = create(&client, &jwt, body("capped"));
    let at = OffsetDateTime::parse(capped["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let granted = at - before;
    assert!(
        granted >= time::Duration::seconds(599) && granted <= time::Duration::seconds(601),
        "{capped}"
    );
    assert_eq!(
        hub.org_token(capped["id"].as_str().unwrap())
            .unwrap()
            .expires_at,
        capped["expires_at"].as_str().map(str::to_owned)
    );
    hub.grant_expiry(ExpiryGrant::Never);
    let asked = json!({
        "label": "asked",
        "expires_at": rfc3339_in(Duration::from_secs(3600)),
        "resources": [pull("acme/app")],
    });
    assert_eq!(create(&client, &jwt, asked)["expires_at"], Value::Null);
}

#[test]
fn list_counts_total_and_pages_newest_first() {
    let hub = org_hub(Plan::Business);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    for n in 0..25 {
        create(&client, &jwt, body(&format!("token {n}")));
    }
    // Another organization's tokens never show up.
    let dave = client.login(DAVE, DAVE_PASSWORD);
    let globex = client.send(
        "POST",
        "/v2/orgs/globex/access-tokens",
        Some(&dave),
        Some(json!({"label": "site", "resources": [pull("globex/site")]})),
    );
    assert_eq!(globex.status, 201, "{:?}", globex.body);

    let page = |query: &str| client.send("GET", &format!("{TOKENS}{query}"), Some(&jwt), None);
    let labels = |reply: &Reply| -> Vec<String> {
        reply.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["label"].as_str().unwrap().to_owned())
            .collect()
    };
    let url = hub.url();
    let first = page("");
    assert_eq!(first.status, 200);
    assert_eq!(first.body["total"], 25);
    assert!(first.body.get("count").is_none(), "`total`, not `count`");
    assert_eq!(first.body["previous"], Value::Null);
    assert_eq!(
        first.body["next"],
        format!("{url}{TOKENS}?page=2&page_size=10")
    );
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
        format!("{url}{TOKENS}?page=2&page_size=10")
    );
    assert_detail_body(&page("?page=4"), 404, "Invalid page.");
    assert_eq!(page("?page=0").status, 400);
    assert_eq!(labels(&page("?page_size=500")).len(), 25);

    let mut seen = Vec::new();
    let mut next = Some(format!("{url}{TOKENS}?page=1&page_size=7"));
    while let Some(link) = next {
        let reply = client.send("GET", link.strip_prefix(&url).unwrap(), Some(&jwt), None);
        seen.extend(labels(&reply));
        next = reply.body["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 25);
}

#[test]
fn team_allows_ten_counting_deactivated_and_expired_until_one_is_deleted() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let ids: Vec<Value> = (0..9)
        .map(|n| create(&client, &jwt, body(&format!("t{n}")))["id"].clone())
        .collect();
    let deactivated = client.send(
        "PATCH",
        &item(&ids[0]),
        Some(&jwt),
        Some(json!({"is_active": false})),
    );
    assert_eq!(deactivated.status, 200);
    assert!(hub.expire_org_token(ids[1].as_str().unwrap()));
    let expired = hub.create_org_token_by_hand(
        ACME,
        "expired",
        "",
        vec![OrgTokenResource::repo("acme/app", &["scope-image-pull"])],
        Some("2020-01-01T00:00:00Z"),
    );
    assert!(expired.expired);
    let live = hub
        .org_tokens(ACME)
        .iter()
        .filter(|t| t.is_active && !t.expired)
        .count();
    assert_eq!(live, 7, "3 of the 10 are deactivated or expired");
    assert_eq!(
        client.send("GET", TOKENS, Some(&jwt), None).body["total"],
        10,
        "they are listed too"
    );

    let refused = client.send("POST", TOKENS, Some(&jwt), Some(body("eleventh")));
    assert_detail_body(
        &refused,
        403,
        "Organization access token limit reached: the Team plan allows 10 per organization, \
         expired and deactivated ones included. Delete a token to create another.",
    );
    assert_eq!(hub.org_tokens(ACME).len(), 10);

    // Deleting the expired one frees its place; the place is taken again at once.
    let deleted = client.send(
        "DELETE",
        &format!("{TOKENS}/{}", expired.id),
        Some(&jwt),
        None,
    );
    assert_eq!(deleted.status, 204);
    create(&client, &jwt, body("eleventh"));
    assert_eq!(
        client
            .send("POST", TOKENS, Some(&jwt), Some(body("twelfth")))
            .status,
        403
    );
    // A place freed behind the client's back counts as well.
    assert!(hub.delete_org_token(ids[0].as_str().unwrap()));
    create(&client, &jwt, body("twelfth"));
    assert_eq!(hub.org_tokens(ACME).len(), 10);
}

#[test]
fn business_allows_a_hundred() {
    let hub = org_hub(Plan::Business);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    for n in 0..99 {
        hub.create_org_token_by_hand(
            ACME,
            &format!("t{n}"),
            "",
            vec![OrgTokenResource::repo("acme/*", &["scope-image-pull"])],
            None,
        );
    }
    create(&client, &jwt, body("hundredth"));
    let refused = client.send("POST", TOKENS, Some(&jwt), Some(body("one more")));
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("Business plan allows 100"),
        "{:?}",
        refused.body
    );
    assert_eq!(hub.org_tokens(ACME).len(), 100);
}

#[test]
fn plans_without_organization_tokens_refuse_to_create_one() {
    for plan in [Plan::Free, Plan::Pro] {
        let hub = org_hub(plan);
        let client = Client::new(&hub);
        let jwt = client.login(ALICE, ALICE_PASSWORD);
        let refused = client.send("POST", TOKENS, Some(&jwt), Some(body("ci")));
        assert_detail_body(
            &refused,
            403,
            &format!(
                "Organization access tokens require a Team or Business subscription; this organization is on {}.",
                plan.name()
            ),
        );
        assert!(hub.org_tokens(ACME).is_empty());
    }
}

#[test]
fn only_owners_manage_tokens_and_unknown_organizations_are_404() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let alice = client.login(ALICE, ALICE_PASSWORD);
    let token = create(&client, &alice, body("ci"));
    let path = item(&token["id"]);
    let forbidden = "You do not have permission to perform this action.";
    for (who, password) in [(CAROL, CAROL_PASSWORD), (DAVE, DAVE_PASSWORD)] {
        let jwt = client.login(who, password);
        let calls = [
            ("POST", TOKENS.to_owned(), Some(body("mine"))),
            ("GET", TOKENS.to_owned(), None),
            ("GET", path.clone(), None),
            ("PATCH", path.clone(), Some(json!({"is_active": false}))),
            ("DELETE", path.clone(), None),
        ];
        for (method, path, body) in calls {
            let reply = client.send(method, &path, Some(&jwt), body);
            assert_detail_body(&reply, 403, forbidden);
        }
    }
    assert_eq!(hub.org_tokens(ACME).len(), 1);
    assert!(hub.org_tokens(ACME)[0].is_active);

    for path in [
        "/v2/orgs/nowhere/access-tokens",
        "/v2/orgs/nowhere/access-tokens/x",
    ] {
        assert_detail_body(
            &client.send("GET", path, Some(&alice), None),
            404,
            "Not found",
        );
    }
    let missing = client.send(
        "POST",
        "/v2/orgs/nowhere/access-tokens",
        Some(&alice),
        Some(body("ci")),
    );
    assert_detail_body(&missing, 404, "Not found");
    // Organization names are case-insensitive, as usernames are.
    assert_eq!(
        client
            .send("GET", "/v2/orgs/ACME/access-tokens", Some(&alice), None)
            .body["total"],
        1
    );
    let anonymous = client.send("GET", TOKENS, None, None);
    assert_detail_body(
        &anonymous,
        401,
        "Authentication credentials were not provided.",
    );
}

#[test]
fn jwts_from_access_token_logins_cannot_manage_tokens() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let password_jwt = client.login(ALICE, ALICE_PASSWORD);
    let pat = client.create_token(&password_jwt, "pat", &["repo:admin"]);
    let pat_jwt = client.login(ALICE, pat["token"].as_str().unwrap());
    let oat = create(&client, &password_jwt, body("oat"));
    let oat_jwt = client.login(ACME, oat["token"].as_str().unwrap());
    let claims = claims(&oat_jwt);
    assert!(claims.from_oat && !claims.from_pat, "{claims:?}");
    assert_eq!(claims.username, ACME);

    let path = item(&oat["id"]);
    let pat_uuid = pat["uuid"].as_str().unwrap();
    for (jwt, refusal) in [
        (
            &pat_jwt,
            "token issued from personal access token is not allowed",
        ),
        (
            &oat_jwt,
            "token issued from organization access token is not allowed",
        ),
    ] {
        let calls = [
            ("POST", TOKENS.to_owned(), Some(body("another"))),
            ("GET", TOKENS.to_owned(), None),
            ("GET", path.clone(), None),
            ("PATCH", path.clone(), Some(json!({"is_active": false}))),
            ("DELETE", path.clone(), None),
            (
                "POST",
                "/v2/access-tokens".to_owned(),
                Some(json!({"token_label": "x", "scopes": ["repo:read"]})),
            ),
            ("GET", "/v2/access-tokens".to_owned(), None),
            ("DELETE", format!("/v2/access-tokens/{pat_uuid}"), None),
        ];
        for (method, path, body) in calls {
            let reply = client.send(method, &path, Some(jwt), body);
            assert_detail_body(&reply, 403, refusal);
        }
    }
    assert_eq!(hub.org_tokens(ACME).len(), 1);
    assert!(hub.org_tokens(ACME)[0].is_active);
    assert_eq!(hub.tokens().len(), 1);
}

#[test]
fn invalid_bodies_are_400_with_fields_and_text() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let resources = json!([pull("acme/app")]);
    let too_many: Vec<Value> = (0..51).map(|_| pull("acme/app")).collect();
    let cases = [
        (
            json!({"resources": resources}),
            "label",
            "This field is required.".to_owned(),
        ),
        (
            json!({"label": "  ", "resources": resources}),
            "label",
            "This field may not be blank.".to_owned(),
        ),
        (
            json!({"label": "x".repeat(101), "resources": resources}),
            "label",
            "Ensure this field has no more than 100 characters.".to_owned(),
        ),
        (
            json!({"label": "ci", "description": 5, "resources": resources}),
            "description",
            "Not a valid string.".to_owned(),
        ),
        (
            json!({"label": "ci"}),
            "resources",
            "This field is required.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": []}),
            "resources",
            "This list may not be empty.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": too_many}),
            "resources",
            "Ensure this field has no more than 50 elements.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [pull("globex/site")]}),
            "resources",
            "resources[0].path: \"globex/site\" is not a repository of organization \"acme\"."
                .to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [pull("acme/app"), pull("acme/nope")]}),
            "resources",
            "resources[1].path: Repository \"acme/nope\" does not exist.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [pull("app")]}),
            "resources",
            "resources[0].path: \"app\" is not a repository path: use \"acme/<repository>\", \"acme/*\" or \"*/*/public\"."
                .to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [
                {"type": "TYPE_REPO", "path": "acme/app", "scopes": ["repo:write"]}
            ]}),
            "resources",
            "resources[0].scopes: \"repo:write\" is not a valid choice.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [
                {"type": "TYPE_REPO", "path": "acme/app", "scopes": []}
            ]}),
            "resources",
            "resources[0].scopes: This list may not be empty.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [
                {"type": "TYPE_REPO", "path": "*/*/public", "scopes": ["scope-image-push"]}
            ]}),
            "resources",
            "resources[0].scopes: \"*/*/public\" takes only \"scope-image-pull\".".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [
                {"type": "TYPE_ORG", "path": "acme", "scopes": ["member-read"]}
            ]}),
            "resources",
            "resources[0].type: \"TYPE_ORG\" is not a valid choice.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": [{"path": "acme/app", "scopes": ["scope-image-pull"]}]}),
            "resources",
            "resources[0].type: This field is required.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": resources, "expires_at": "next week"}),
            "expires_at",
            "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": resources, "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
            "Expiration date must be in the future.".to_owned(),
        ),
        (
            json!({"label": "ci", "resources": resources, "expires_at": rfc3339_in(Duration::from_secs(400 * 24 * 3600))}),
            "expires_at",
            "Expiration date must be within one year.".to_owned(),
        ),
    ];
    for (body, field, message) in cases {
        let reply = client.send("POST", TOKENS, Some(&jwt), Some(body.clone()));
        assert_eq!(reply.status, 400, "{body}: {:?}", reply.body);
        assert_eq!(
            reply.body,
            json!({"fields": {field: [message]}, "text": message}),
            "{body}"
        );
    }
    // Every problem is reported, the first one as `text`.
    let several = client.send(
        "POST",
        TOKENS,
        Some(&jwt),
        Some(json!({"resources": [pull("acme/nope"), pull("other/x")]})),
    );
    assert_eq!(several.status, 400);
    assert_eq!(several.body["text"], "This field is required.");
    assert_eq!(
        several.body["fields"]["resources"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let unreadable = client.send("POST", TOKENS, Some(&jwt), Some(json!([1])));
    assert_eq!(unreadable.status, 400);
    assert_eq!(unreadable.body["fields"], json!({}));
    assert!(hub.org_tokens(ACME).is_empty());
}

#[test]
fn patch_changes_label_description_resources_and_activity() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let expires_at = rfc3339_in(MONTH);
    let token = create(
        &client,
        &jwt,
        json!({"label": "before", "expires_at": expires_at, "resources": [pull("acme/app")]}),
    );
    let path = item(&token["id"]);
    let push_web = json!({"type": "TYPE_REPO", "path": "acme/web", "scopes": ["scope-image-push"]});
    let reply = client.send(
        "PATCH",
        &path,
        Some(&jwt),
        Some(json!({
            "label": "after",
            "description": "now pushes web",
            "resources": [push_web],
            "is_active": false,
            "expires_at": rfc3339_in(2 * MONTH),
        })),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["label"], "after");
    assert_eq!(reply.body["description"], "now pushes web");
    assert_eq!(reply.body["resources"], json!([push_web]));
    assert_eq!(reply.body["is_active"], false);
    assert_eq!(
        reply.body["expires_at"], expires_at,
        "the expiry cannot change"
    );
    assert!(reply.body.get("token").is_none());
    let info = hub.org_token(token["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        info.resources,
        [OrgTokenResource::repo("acme/web", &["scope-image-push"])]
    );
    assert!(!info.is_active);

    // Absent fields stay; an empty body changes nothing.
    let again = client.send("PATCH", &path, Some(&jwt), Some(json!({"is_active": true})));
    assert_eq!(again.body["label"], "after");
    assert_eq!(again.body["is_active"], true);
    assert_eq!(
        client.send("PATCH", &path, Some(&jwt), None).body["label"],
        "after"
    );

    for (body, field) in [
        (json!({"label": ""}), "label"),
        (json!({"is_active": "nope"}), "is_active"),
        (json!({"resources": []}), "resources"),
        (json!({"resources": [pull("acme/nope")]}), "resources"),
    ] {
        let bad = client.send("PATCH", &path, Some(&jwt), Some(body.clone()));
        assert_eq!(bad.status, 400, "{body}");
        assert!(
            bad.body["fields"][field].is_array(),
            "{body}: {:?}",
            bad.body
        );
    }
    assert_eq!(
        hub.org_token(token["id"].as_str().unwrap()).unwrap().label,
        "after"
    );

    // 404 before 400, for a missing token as for another organization's.
    let missing = client.send(
        "PATCH",
        &format!("{TOKENS}/00000000-0000-0000-0000-000000000000"),
        Some(&jwt),
        Some(json!({"label": ""})),
    );
    assert_detail_body(&missing, 404, "Not found");
}

#[test]
fn tokens_of_another_organization_are_not_found_there() {
    let hub = FakeHub::start(
        org_config(Plan::Team).organization(
            Organization::new("initech", Plan::Team)
                .owner(ALICE)
                .repository("tps"),
        ),
    )
    .unwrap();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let initech = client.send(
        "POST",
        "/v2/orgs/initech/access-tokens",
        Some(&jwt),
        Some(json!({"label": "tps", "resources": [pull("initech/tps")]})),
    );
    assert_eq!(initech.status, 201, "{:?}", initech.body);
    let path = item(&initech.body["id"]);
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"is_active": false}))),
        ("DELETE", None),
    ] {
        assert_detail_body(
            &client.send(method, &path, Some(&jwt), body),
            404,
            "Not found",
        );
    }
    let info = hub.org_token(initech.body["id"].as_str().unwrap()).unwrap();
    assert_eq!(info.org, "initech");
    assert!(info.is_active);
}

#[test]
fn delete_is_204_then_404_and_the_token_no_longer_logs_in() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let token = create(&client, &jwt, body("doomed"));
    let path = item(&token["id"]);
    let secret = token["token"].as_str().unwrap();
    client.login(ACME, secret);

    let deleted = client.send("DELETE", &path, Some(&jwt), None);
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null, "204 has no body");
    assert!(hub.org_tokens(ACME).is_empty());
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
    assert_eq!(login_reply(&client, ACME, secret).status, 401);
}

#[test]
fn an_oat_logs_in_with_the_organization_name_only_while_live() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let token = create(&client, &jwt, body("ci"));
    let secret = token["token"].as_str().unwrap();
    let id = token["id"].as_str().unwrap();

    let logins = hub.login_count();
    let oat_jwt = client.login("Acme", secret);
    assert_eq!(claims(&oat_jwt).username, ACME);
    assert_eq!(hub.login_count(), logins + 1);
    let used = hub.org_token(id).unwrap().last_used_at;
    assert!(used.is_some());
    assert_eq!(
        client
            .send("GET", &item(&token["id"]), Some(&jwt), None)
            .body["last_used_at"],
        json!(used)
    );

    // The organization's name and nothing else; the legacy login takes no OAT.
    for user in [ALICE, CAROL, "globex", "nobody"] {
        let reply = login_reply(&client, user, secret);
        assert_eq!(reply.status, 401, "{user}");
        assert_eq!(reply.body["errinfo"], json!({}));
    }
    assert_eq!(login_reply(&client, ACME, "dckr_oat_made-up").status, 401);
    assert_eq!(login_reply(&client, ACME, ALICE_PASSWORD).status, 401);
    let legacy = client.send(
        "POST",
        "/v2/users/login",
        None,
        Some(json!({"username": ACME, "password": secret})),
    );
    assert_eq!(legacy.status, 401);

    // Deactivated, then active again; expired for good.
    let patch = |active: bool| {
        client.send(
            "PATCH",
            &item(&token["id"]),
            Some(&jwt),
            Some(json!({"is_active": active})),
        )
    };
    assert_eq!(patch(false).status, 200);
    assert_eq!(login_reply(&client, ACME, secret).status, 401);
    assert!(hub.org_token(id).is_some(), "deactivated, not deleted");
    assert_eq!(patch(true).status, 200);
    client.login(ACME, secret);
    assert!(hub.expire_org_token(id));
    assert!(hub.org_token(id).unwrap().expired);
    assert_eq!(login_reply(&client, ACME, secret).status, 401);

    let deactivated = hub.create_org_token_by_hand(ACME, "by hand", "", vec![], None);
    client.login(ACME, &deactivated.token);
    assert!(hub.deactivate_org_token(&deactivated.id));
    assert_eq!(login_reply(&client, ACME, &deactivated.token).status, 401);
}

#[test]
fn an_expiry_reached_while_listed_makes_the_token_expired() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let token = create(
        &client,
        &jwt,
        json!({"label": "short", "expires_at": rfc3339_in(Duration::from_secs(2)), "resources": [pull("acme/app")]}),
    );
    let secret = token["token"].as_str().unwrap();
    client.login(ACME, secret);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(login_reply(&client, ACME, secret).status, 401);
    let info = hub.org_token(token["id"].as_str().unwrap()).unwrap();
    assert!(info.expired && info.is_active);
    assert_eq!(
        client.send("GET", TOKENS, Some(&jwt), None).body["total"],
        1
    );
}

#[test]
fn a_lost_answer_to_a_create_leaves_the_token_in_place() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.inject(Fault::on("POST", TOKENS, FaultKind::DropAfterProcessing));
    let outcome = client.try_send("POST", TOKENS, Some(&jwt), Some(body("ci")));
    assert!(outcome.is_err(), "expected no response, got {outcome:?}");
    let tokens = hub.org_tokens(ACME);
    assert_eq!(
        tokens.len(),
        1,
        "the token exists although the client never saw it"
    );
    assert_eq!(tokens[0].label, "ci");
    let last = hub.calls().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.status),
        ("POST", TOKENS, 0)
    );
    // The orphan is listed, and counts against the limit.
    assert_eq!(
        client.send("GET", TOKENS, Some(&jwt), None).body["total"],
        1
    );

    hub.inject(Fault::on("POST", TOKENS, FaultKind::Status(503)));
    let unavailable = client.send("POST", TOKENS, Some(&jwt), Some(body("ci")));
    assert_detail_body(&unavailable, 503, "Service Unavailable");
    assert_eq!(hub.org_tokens(ACME).len(), 1, "not processed");
}

#[test]
fn the_rate_limit_counts_the_organization_paths() {
    let hub = FakeHub::start(Config {
        rate_limit: Some(RateLimit::new(2, Duration::from_secs(600))),
        ..org_config(Plan::Team)
    })
    .unwrap();
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    let listed = client.send("GET", TOKENS, Some(&jwt), None);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.header("x-ratelimit-remaining"), Some("0"));
    let limited = client.send("POST", TOKENS, Some(&jwt), Some(body("ci")));
    assert_detail_body(&limited, 429, "Rate limit exceeded");
    assert!(limited.header("retry-after").is_some());
    assert!(hub.org_tokens(ACME).is_empty(), "not processed");
}

#[test]
fn calls_to_the_organization_paths_are_recorded() {
    let hub = org_hub(Plan::Team);
    let client = Client::new(&hub);
    let jwt = client.login(ALICE, ALICE_PASSWORD);
    hub.clear_calls();
    let token = create(&client, &jwt, body("ci"));
    let path = item(&token["id"]);
    client.send(
        "GET",
        &format!("{TOKENS}?page=1&page_size=5"),
        Some(&jwt),
        None,
    );
    client.send("DELETE", &path, Some(&jwt), None);
    client.send("PUT", TOKENS, Some(&jwt), Some(json!({})));
    let summary: Vec<(String, String, u16, bool)> = hub
        .calls()
        .into_iter()
        .map(|c| (c.method, c.path, c.status, c.authorized))
        .collect();
    let expected = [
        ("POST", TOKENS.to_owned(), 201),
        ("GET", format!("{TOKENS}?page=1&page_size=5"), 200),
        ("DELETE", path, 204),
        ("PUT", TOKENS.to_owned(), 405),
    ]
    .map(|(method, path, status)| (method.to_owned(), path, status, true));
    assert_eq!(summary, expected);
}

#[test]
fn a_config_with_unknown_people_does_not_start() {
    let config = config().organization(Organization::new(ACME, Plan::Team).owner("nobody"));
    let error = FakeHub::start(config).unwrap_err();
    assert!(error.to_string().contains("\"nobody\""), "{error}");
}

#[test]
fn age_tokens_moves_every_created_at_back() {
    let hub = FakeHub::start(org_config(Plan::Team)).unwrap();
    let oat = hub.create_org_token_by_hand(
        ACME,
        "by-hand",
        "",
        vec![OrgTokenResource::repo("acme/app", &["scope-image-pull"])],
        None,
    );
    hub.churn(ALICE, 0, 1);
    let pat = hub.tokens().pop().unwrap();
    let parse = |at: &str| OffsetDateTime::parse(at, &Rfc3339).unwrap();
    hub.age_tokens(Duration::from_secs(660));
    let aged_oat = hub.org_token(&oat.id).unwrap();
    assert_eq!(
        parse(&oat.created_at) - parse(&aged_oat.created_at),
        time::Duration::seconds(660)
    );
    let aged_pat = hub.token(&pat.uuid).unwrap();
    assert_eq!(
        parse(&pat.created_at) - parse(&aged_pat.created_at),
        time::Duration::seconds(660)
    );
}
