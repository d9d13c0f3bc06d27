//! The Docker Hub client: the one place that speaks the Hub's API.
//!
//! Logging in too often locks a Hub account, so the session JWT is cached in storage until
//! shortly before its `exp` and shared by every issue and revoke of the account. A 401 on a
//! token call means the session died early: one fresh login, one retry. A 429 is waited
//! out as long as the Hub's `Retry-After` fits the time budget of one request; otherwise
//! (and always for revocations, see [`Hub::without_waiting`]) the error carries
//! `retry_after` so that the host retries later. Errors say what was
//! attempted and quote the Hub's message; no request body (which holds the password) and
//! no success body (which holds a token) ever reaches an error or a log.

use crate::api::{EngineError, UpstreamError};
use crate::capabilities::{Bucket, Host, HttpRequest, HttpResponse, Level};
use crate::{storage, totp};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Renew the cached session when it has less than this many seconds left.
const SESSION_REFRESH_MARGIN: u64 = 60;
/// How long a session is trusted when its JWT carries no readable `exp`.
const SESSION_FALLBACK_LIFETIME: u64 = 300;
/// The most one request may spend waiting out rate limits before giving up.
const MAX_RATE_LIMIT_WAIT: u64 = 15;
/// The Hub's largest page size for listing tokens, and how many pages rollback searches.
const PAGE_SIZE: usize = 100;
const MAX_PAGES: usize = 100;

/// A cached Hub session. It is a credential: never logged, never returned.
#[derive(Serialize, Deserialize)]
struct Session {
    jwt: String,
    /// Unix seconds.
    expires: u64,
}

/// A freshly created personal access token.
#[derive(Deserialize)]
pub struct CreatedToken {
    pub uuid: String,
    /// The secret; only the response to the caller may contain it.
    pub token: String,
}

/// What the engine logs in with. `Debug` is not derived: it would print the password.
pub struct Credentials<'a> {
    pub password: &'a str,
    pub totp_secret: Option<&'a str>,
}

/// A client for one account.
pub struct Hub<'a> {
    host: &'a dyn Host,
    account: &'a str,
    credentials: Credentials<'a>,
    /// Seconds one request may spend waiting out 429s.
    rate_limit_patience: u64,
}

impl<'a> Hub<'a> {
    pub fn new(host: &'a dyn Host, account: &'a str, credentials: Credentials<'a>) -> Hub<'a> {
        Hub {
            host,
            account,
            credentials,
            rate_limit_patience: MAX_RATE_LIMIT_WAIT,
        }
    }

    /// Report a 429 at once instead of waiting it out. For revocations: their host retries
    /// them and can pace all of them together against the Hub's window, whereas each
    /// instance sleeping from its own 429 leaves the Hub idle after every window.
    pub fn without_waiting(mut self) -> Hub<'a> {
        self.rate_limit_patience = 0;
        self
    }

    /// Log in now, ignoring the cache, and cache the new session. Proves the credentials.
    pub fn login(&self) -> Result<String, EngineError> {
        let jwt = match self.credentials.totp_secret {
            None => self.login_with_password()?,
            Some(seed) => self.login_with_second_factor(seed)?,
        };
        let expires = jwt_expiry(&jwt).unwrap_or(self.host.now() + SESSION_FALLBACK_LIFETIME);
        let session = Session {
            jwt: jwt.clone(),
            expires,
        };
        storage::save(self.host, Bucket::Session, self.account, &session)?;
        self.host.log(
            Level::Info,
            "hub",
            &format!("logged in to Docker Hub as {}", self.account),
        );
        Ok(jwt)
    }

    fn login_with_password(&self) -> Result<String, EngineError> {
        let body = json!({"identifier": self.account, "secret": self.credentials.password});
        let response = self.send("POST", "/v2/auth/token", Some(&body), None, "log in")?;
        if response.status != 200 {
            return Err(self.login_failed(&response));
        }
        string_field(&response, "access_token")
            .ok_or_else(|| malformed("log in", "no access_token in the answer"))
    }

    /// Docker's older login flow, the one that supports a TOTP second factor.
    fn login_with_second_factor(&self, seed: &str) -> Result<String, EngineError> {
        let body = json!({"username": self.account, "password": self.credentials.password});
        let response = self.send("POST", "/v2/users/login", Some(&body), None, "log in")?;
        if response.status == 200 {
            return string_field(&response, "token")
                .ok_or_else(|| malformed("log in", "no token in the answer"));
        }
        let Some(login_2fa_token) = string_field(&response, "login_2fa_token") else {
            return Err(self.login_failed(&response));
        };
        let code = totp::code(seed, self.host.now())
            .ok_or_else(|| EngineError::Internal("the stored TOTP seed is not base32".into()))?;
        let body = json!({"login_2fa_token": login_2fa_token, "code": code});
        let response = self.send("POST", "/v2/users/2fa-login", Some(&body), None, "log in")?;
        if response.status != 200 {
            return Err(self.login_failed(&response));
        }
        string_field(&response, "token")
            .ok_or_else(|| malformed("log in", "no token in the answer"))
    }

    fn login_failed(&self, response: &HttpResponse) -> EngineError {
        let account = self.account;
        let message = match response.status {
            401 => format!(
                "Docker Hub rejected the credentials for account {account}: {}",
                hub_message(response)
            ),
            status => format!(
                "logging in to Docker Hub as {account} failed: HTTP {status}: {}",
                hub_message(response)
            ),
        };
        upstream(response, message)
    }

    /// The cached session's JWT, logging in when there is none or it is about to expire.
    fn session(&self) -> Result<String, EngineError> {
        let cached: Option<Session> = storage::load(self.host, Bucket::Session, self.account)?;
        match cached {
            Some(s) if s.expires > self.host.now() + SESSION_REFRESH_MARGIN => Ok(s.jwt),
            _ => self.login(),
        }
    }

    /// Create a personal access token that the Hub itself expires at `expires_at`.
    pub fn create_token(
        &self,
        token_label: &str,
        scope: &str,
        expires_at: u64,
    ) -> Result<CreatedToken, EngineError> {
        let body = json!({
            "token_label": token_label,
            "scopes": [scope],
            "expires_at": rfc3339(expires_at),
        });
        let what = "create an access token";
        let response = self.authorized("POST", "/v2/access-tokens", Some(&body), what)?;
        if response.status != 201 && response.status != 200 {
            return Err(refused(&response, what));
        }
        serde_json::from_slice::<CreatedToken>(&response.body)
            .ok()
            .filter(|t| !t.uuid.is_empty() && !t.token.is_empty())
            .ok_or_else(|| malformed(what, "the answer has no uuid or token"))
    }

    /// Delete a token. A 404 means it is gone already, which is what we wanted.
    pub fn delete_token(&self, uuid: &str) -> Result<(), EngineError> {
        let path = format!("/v2/access-tokens/{uuid}");
        let what = "delete an access token";
        let response = self.authorized("DELETE", &path, None, what)?;
        match response.status {
            200..=299 | 404 => Ok(()),
            _ => Err(refused(&response, what)),
        }
    }

    /// The uuids of the account's tokens whose label is exactly `token_label`.
    pub fn tokens_labelled(&self, token_label: &str) -> Result<Vec<String>, EngineError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            next: Option<String>,
            #[serde(default)]
            results: Vec<Listed>,
        }
        #[derive(Deserialize)]
        struct Listed {
            uuid: String,
            #[serde(default)]
            token_label: String,
        }
        let what = "list access tokens";
        let mut found = Vec::new();
        for page in 1..=MAX_PAGES {
            let path = format!("/v2/access-tokens?page={page}&page_size={PAGE_SIZE}");
            let response = self.authorized("GET", &path, None, what)?;
            if response.status != 200 {
                return Err(refused(&response, what));
            }
            let page: Page = serde_json::from_slice(&response.body)
                .map_err(|_| malformed(what, "the answer is not a token list"))?;
            let last = page.next.is_none() || page.results.len() < PAGE_SIZE;
            found.extend(
                page.results
                    .into_iter()
                    .filter(|t| t.token_label == token_label)
                    .map(|t| t.uuid),
            );
            if last {
                break;
            }
        }
        Ok(found)
    }

    /// A call with the session JWT: re-login once on 401.
    fn authorized(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<HttpResponse, EngineError> {
        let response = self.send(method, path, body, Some(&self.session()?), what)?;
        if response.status != 401 {
            return Ok(response);
        }
        self.host.log(
            Level::Info,
            "hub",
            &format!(
                "Docker Hub refused the cached session of {}; logging in again",
                self.account
            ),
        );
        let jwt = self.login()?;
        self.send(method, path, body, Some(&jwt), what)
    }

    /// One request, waiting out 429s within the client's patience.
    fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        jwt: Option<&str>,
        what: &str,
    ) -> Result<HttpResponse, EngineError> {
        let mut headers = vec![
            ("accept".to_string(), "application/json".to_string()),
            (
                "user-agent".to_string(),
                concat!("dockerhub-secrets/", env!("CARGO_PKG_VERSION")).to_string(),
            ),
        ];
        if body.is_some() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        if let Some(jwt) = jwt {
            headers.push(("authorization".to_string(), format!("Bearer {jwt}")));
        }
        let request = HttpRequest {
            method,
            path: path.to_string(),
            headers,
            body: body.map(|b| b.to_string().into_bytes()),
        };
        let mut waited = 0;
        loop {
            let response = self.host.send(&request).map_err(|e| UpstreamError {
                status: 0,
                message: format!("could not {what} at Docker Hub: {e}"),
                retry_after: None,
            })?;
            if response.status != 429 {
                return Ok(response);
            }
            let wait = retry_after(&response, self.host.now());
            if waited + wait > self.rate_limit_patience {
                return Err(EngineError::Upstream(UpstreamError {
                    status: 429,
                    message: format!(
                        "Docker Hub rate-limited the request to {what}; retry after {wait}s: {}",
                        hub_message(&response)
                    ),
                    retry_after: Some(wait),
                }));
            }
            self.host.log(
                Level::Warn,
                "hub",
                &format!(
                    "Docker Hub rate limit on {method} {}: waiting {wait}s",
                    path_only(path)
                ),
            );
            self.host.sleep(Duration::from_secs(wait));
            waited += wait;
        }
    }
}

/// Seconds to wait after a 429: `Retry-After` (seconds), else `X-Retry-After` (Unix time,
/// from an older spec), else the reset time of the rate-limit window; at least 1.
fn retry_after(response: &HttpResponse, now: u64) -> u64 {
    let header = |name| {
        response
            .header(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    header("retry-after")
        .or_else(|| header("x-retry-after").map(|at| at.saturating_sub(now)))
        .or_else(|| header("x-ratelimit-reset").map(|at| at.saturating_sub(now)))
        .unwrap_or(1)
        .max(1)
}

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn string_field(response: &HttpResponse, name: &str) -> Option<String> {
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    body.get(name)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The Hub's explanation: the first of `message`, `detail`, `text` (its error bodies come in
/// several shapes), else a short plain-text body.
pub fn hub_message(response: &HttpResponse) -> String {
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&response.body) {
        for key in ["message", "detail", "text"] {
            if let Some(text) = body
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return text.to_string();
            }
        }
        if let Some(fields) = body.get("fields").filter(|f| f.is_object()) {
            return fields.to_string();
        }
    }
    let text = String::from_utf8_lossy(&response.body);
    let text = text.trim();
    if text.is_empty() || text.len() > 200 || text.starts_with('<') {
        "no explanation given".to_string()
    } else {
        text.to_string()
    }
}

fn upstream(response: &HttpResponse, message: String) -> EngineError {
    EngineError::Upstream(UpstreamError {
        status: response.status,
        message,
        retry_after: None,
    })
}

fn refused(response: &HttpResponse, what: &str) -> EngineError {
    upstream(
        response,
        format!(
            "Docker Hub refused to {what}: HTTP {}: {}",
            response.status,
            hub_message(response)
        ),
    )
}

/// A success status with a body we cannot use. Never quotes the body: it may hold a token.
fn malformed(what: &str, problem: &str) -> EngineError {
    EngineError::Upstream(UpstreamError {
        status: 200,
        message: format!("Docker Hub's answer to the request to {what} is unusable: {problem}"),
        retry_after: None,
    })
}

/// The `exp` claim of a JWT, read without verifying the signature (the Hub verifies it;
/// we only need to know when to log in again).
fn jwt_expiry(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_u64()
}

/// Unix seconds as RFC 3339 in UTC, the format of the Hub's `expires_at`.
pub fn rfc3339(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn hub_messages_from_every_body_shape() {
        for (body, expected) in [
            (r#"{"errinfo":{},"detail":"d","message":"m"}"#, "m"),
            (r#"{"detail":"Not found"}"#, "Not found"),
            (r#"{"fields":{},"text":"bad label"}"#, "bad label"),
            (
                r#"{"fields":{"scopes":["required"]}}"#,
                r#"{"scopes":["required"]}"#,
            ),
            ("upstream timeout", "upstream timeout"),
            ("<html>gateway</html>", "no explanation given"),
            ("", "no explanation given"),
        ] {
            assert_eq!(hub_message(&response(400, &[], body)), expected, "{body}");
        }
    }

    #[test]
    fn retry_after_prefers_seconds_then_unix_time() {
        let now = 1_000;
        assert_eq!(
            retry_after(&response(429, &[("Retry-After", "7")], ""), now),
            7
        );
        assert_eq!(
            retry_after(&response(429, &[("X-Retry-After", "1004")], ""), now),
            4
        );
        assert_eq!(
            retry_after(&response(429, &[("X-RateLimit-Reset", "1010")], ""), now),
            10
        );
        assert_eq!(
            retry_after(&response(429, &[("Retry-After", "0")], ""), now),
            1
        );
        assert_eq!(retry_after(&response(429, &[], ""), now), 1);
    }

    #[test]
    fn jwt_expiry_reads_exp() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1234}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")), Some(1234));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }
}
