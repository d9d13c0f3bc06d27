//! A plain HTTP client for the fake, as a Hub client would see it: no redirects, no TLS, error
//! statuses returned rather than raised, and helpers for the calls most tests make.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use fakehub::{Claims, FakeHub};
use serde_json::{Value, json};

pub const ALICE: &str = "alice";
pub const ALICE_PASSWORD: &str = "alice-password";
pub const BOB: &str = "bob";
pub const BOB_PASSWORD: &str = "bob-password";
/// Bob has 2FA on with this seed.
pub const BOB_TOTP: &str = "JBSWY3DPEHPK3PXP";

/// A response: status, headers and the body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    pub fn new(hub: &FakeHub) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            // A hung fake must fail the test, not hang it.
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        Client {
            agent,
            base: hub.url(),
        }
    }

    /// Sends a request; `Err` when there was no HTTP response at all.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("User-Agent", "fakehub-tests/1");
        if let Some(jwt) = bearer {
            request = request.header("Authorization", format!("Bearer {jwt}"));
        }
        let mut response = match body {
            Some(body) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(&body).unwrap())
                    .unwrap(),
            )?,
            None => self.agent.run(request.body(()).unwrap())?,
        };
        let text = response.body_mut().read_to_string()?;
        Ok(Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
            },
        })
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.try_send(method, path, bearer, body)
            .unwrap_or_else(|error| panic!("{method} {path}: no response: {error}"))
    }

    /// `POST /v2/auth/token`, expecting success; returns the JWT.
    pub fn login(&self, identifier: &str, secret: &str) -> String {
        let reply = self.send(
            "POST",
            "/v2/auth/token",
            None,
            Some(json!({"identifier": identifier, "secret": secret})),
        );
        assert_eq!(reply.status, 200, "login of {identifier}: {:?}", reply.body);
        reply.body["access_token"].as_str().unwrap().to_owned()
    }

    /// `POST /v2/access-tokens`, expecting 201; returns the token object.
    pub fn create_token(&self, jwt: &str, label: &str, scopes: &[&str]) -> Value {
        let reply = self.send(
            "POST",
            "/v2/access-tokens",
            Some(jwt),
            Some(json!({"token_label": label, "scopes": scopes})),
        );
        assert_eq!(reply.status, 201, "create {label}: {:?}", reply.body);
        reply.body
    }
}

/// A hub with alice (password only) and bob (2FA).
pub fn hub() -> FakeHub {
    FakeHub::start(config()).unwrap()
}

pub fn config() -> fakehub::Config {
    fakehub::Config::default()
        .account(ALICE, ALICE_PASSWORD, None)
        .account(BOB, BOB_PASSWORD, Some(BOB_TOTP))
}

/// The claims of a JWT, read without checking the signature, as a client would.
pub fn claims(jwt: &str) -> Claims {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `{"detail": message, "message": message}` and nothing else.
pub fn assert_detail_body(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"detail": message, "message": message}));
}
