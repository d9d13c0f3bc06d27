//! The answers the front gives, in Vault's shapes: errors as `{"errors": [...]}` with
//! OpenBao's texts, successes with Vault's envelope, redirects as Go's `http.Redirect`, and
//! the probes (`sys/health`, `sys/seal-status`, `sys/leader`, `sys/init`).

use crate::acl::Principal;
use crate::input::parse_bool;
use crate::request::query_pairs;
use crate::{EngineFailure, LeaseFailure, LoginToken, Response, Timestamp};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use serde_json::{Value, json};

/// A JSON answer with `status`.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(body.to_string().into_bytes());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer with a status and no body (204, 202, a `HEAD`).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Vec::new());
    *response.status_mut() = status;
    response
}

/// An error answer: `{"errors": [...]}` with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub StatusCode, pub Vec<String>);

impl ApiError {
    /// An answer of `status` (500 if it is no HTTP status) with one error text.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            vec![message.into()],
        )
    }

    /// OpenBao's refusal by a policy, as go-multierror wraps it.
    pub(crate) fn denied() -> ApiError {
        ApiError::new(403, multierror("permission denied"))
    }

    /// OpenBao's refusal of a request with no token or an unknown one: the bare text.
    pub(crate) fn unauthenticated() -> ApiError {
        ApiError::new(403, "permission denied")
    }

    /// Vault answers a read of nothing with 404 and no message.
    pub(crate) fn not_found() -> ApiError {
        ApiError(StatusCode::NOT_FOUND, Vec::new())
    }

    /// A status with no text, as OpenBao's HTTP layer gives some refusals.
    pub(crate) fn bare(status: StatusCode) -> ApiError {
        ApiError(status, Vec::new())
    }

    /// The answer to send.
    pub fn into_response(self) -> Response {
        json_response(self.0, &json!({ "errors": self.1 }))
    }
}

/// The engine's error as OpenBao answers it for a plugin: bad input (400) with the engine's
/// message alone, as a plugin's `logical.ErrorResponse` is; an unknown path or operation in
/// OpenBao's own words (the plugin protocol carries only the kind); any other error, which
/// OpenBao receives as a coded error, with the engine's message in go-multierror's text. A
/// body over a host's limit is refused before the engine, as OpenBao's listener does.
impl From<EngineFailure> for ApiError {
    fn from(e: EngineFailure) -> ApiError {
        match e {
            EngineFailure::UnsupportedPath => unsupported_path(),
            EngineFailure::UnsupportedOperation => ApiError::new(405, UNSUPPORTED_OPERATION),
            EngineFailure::Plain { status, message } => ApiError::new(status, message),
            EngineFailure::Coded { status, message } => ApiError::new(status, multierror(&message)),
        }
    }
}

impl From<LeaseFailure> for ApiError {
    fn from(e: LeaseFailure) -> ApiError {
        ApiError::new(e.http_status(), e.to_string())
    }
}

/// One error as OpenBao's request handling returns it: go-multierror's text for a list of
/// one (`"1 error occurred:\n\t* <text>\n\n"`), which the `bao` CLI prints as it is.
pub(crate) fn multierror(text: &str) -> String {
    format!("1 error occurred:\n\t* {text}\n\n")
}

/// OpenBao's text for `logical.ErrUnsupportedOperation`, as go-multierror wraps it.
const UNSUPPORTED_OPERATION: &str = "1 error occurred:\n\t* unsupported operation\n\n";

/// OpenBao's 405 for an operation a path does not take, in go-multierror's words. A method
/// that is no operation at all gets a 405 with no message, as OpenBao's HTTP layer gives.
pub(crate) fn unsupported(method: &Method) -> ApiError {
    match method.as_str() {
        "GET" | "LIST" | "PUT" | "POST" | "DELETE" | "PATCH" => {
            ApiError::new(405, UNSUPPORTED_OPERATION)
        }
        _ => ApiError::bare(StatusCode::METHOD_NOT_ALLOWED),
    }
}

/// OpenBao's 404 for a path under a backend that none of its routes takes.
pub(crate) fn unsupported_path() -> ApiError {
    ApiError::new(404, "1 error occurred:\n\t* unsupported path\n\n")
}

/// OpenBao's answer to a field its framework cannot convert to the field's type.
pub(crate) fn field_invalid(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        400,
        format!("Field validation failed: error converting input for field {name:?}: {why}"),
    )
}

/// A successful answer in Vault's shape.
#[derive(Default)]
pub(crate) struct Answer {
    pub lease_id: String,
    pub renewable: bool,
    pub lease_duration: u64,
    pub data: Option<Value>,
    pub warnings: Vec<String>,
    /// A login's or a token renewal's `auth` section.
    pub auth: Option<Value>,
}

impl Answer {
    pub(crate) fn into_response(self) -> Response {
        let body = json!({
            "request_id": request_id(),
            "lease_id": self.lease_id,
            "renewable": self.renewable,
            "lease_duration": self.lease_duration,
            "data": self.data,
            "wrap_info": null,
            "warnings": if self.warnings.is_empty() { Value::Null } else { json!(self.warnings) },
            "auth": self.auth,
        });
        json_response(StatusCode::OK, &body)
    }
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    // The id only tells requests apart in logs: a failing generator leaves it less unique.
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Go's `http.Redirect` with 307, as OpenBao answers an unclean path.
pub(crate) fn redirect(method: &Method, location: &str) -> Response {
    let mut response = empty(StatusCode::TEMPORARY_REDIRECT);
    if *method == Method::GET {
        let href = location
            .replace('&', "&amp;")
            .replace('"', "&#34;")
            .replace('<', "&lt;");
        *response.body_mut() =
            format!("<a href=\"{href}\">Temporary Redirect</a>.\n\n").into_bytes();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// What clients call to check their token (hvac's `is_authenticated`, `bao login`).
/// OpenBao's fields for a token of the tokens file: no expiry, no TTL, unlimited uses, no
/// parent, no entity. Left out: `accessor` (there are no accessor endpoints to use one with),
/// `creation_time` and `issue_time` (the file does not say when a token was made). A login's
/// token has them, with its TTL left, its login path and metadata, and once renewed, when.
pub(crate) fn lookup_self(principal: Principal, token: &str) -> Response {
    let data = match &principal.login {
        None => json!({
            "id": token,
            "display_name": principal.display_name,
            "policies": principal.policies,
            "path": "auth/token/create",
            "renewable": false,
            "ttl": 0,
            "creation_ttl": 0,
            "explicit_max_ttl": 0,
            "expire_time": null,
            "num_uses": 0,
            "orphan": true,
            "entity_id": "",
            "meta": null,
            "type": "service",
        }),
        // OpenBao's fields for a login's token (`handleLookup` in `vault/token_store.go`),
        // and once it was renewed, when.
        Some(login) => {
            let mut data = json!({
                "id": token,
                "accessor": login.accessor,
                "display_name": login.display_name,
                "policies": login.policies,
                "path": login.path,
                "renewable": true,
                "ttl": login.remaining(Timestamp::now()),
                "creation_time": login.issue_time.secs(),
                "creation_ttl": login.creation_ttl,
                "explicit_max_ttl": login.explicit_max_ttl,
                "issue_time": login.issue_time.to_string(),
                "expire_time": login.expire_time.to_string(),
                "num_uses": 0,
                "orphan": true,
                "entity_id": "",
                "meta": login.meta,
                "type": "service",
            });
            if let Some(renewed) = login.last_renewal {
                data["last_renewal"] = json!(renewed.to_string());
                data["last_renewal_time"] = json!(renewed.secs());
            }
            data
        }
    };
    Answer {
        data: Some(data),
        ..Answer::default()
    }
    .into_response()
}

/// A login's answer, or a token renewal's: OpenBao's `auth` section (`logical.Auth` as
/// `respondLogical` writes it) for `login`, whose secret is `token`, granted `ttl` seconds
/// by this login or renewal, with `warnings`.
pub(crate) fn auth_answer(
    token: &str,
    login: &LoginToken,
    ttl: u64,
    warnings: Vec<String>,
) -> Response {
    Answer {
        warnings,
        auth: Some(json!({
            "client_token": token,
            "accessor": login.accessor,
            "policies": login.policies,
            "token_policies": login.policies,
            "metadata": login.meta,
            "lease_duration": ttl,
            "renewable": true,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
            "mfa_requirement": null,
            "num_uses": 0,
        })),
        ..Answer::default()
    }
    .into_response()
}

const VERSION: &str = concat!("dockerhub-secrets ", env!("CARGO_PKG_VERSION"));

/// OpenBao's answer without HA: one server, always the active one.
pub(crate) fn leader() -> Response {
    json_response(StatusCode::OK, &json!({ "ha_enabled": false }))
}

/// The status `sys/health` answers with, as OpenBao's `getSysHealth` picks it from the query:
/// `activecode` (default 200), since this server is initialized, unsealed and active; the
/// other codes (`uninitcode`, `sealedcode`, `standbycode`) and `standbyok` are still checked,
/// and one that is not a number (or a Go boolean) is a 400 with no message, as is an
/// `activecode` outside 100-999.
pub(crate) fn health_code(uri: &Uri) -> Result<StatusCode, ApiError> {
    let bad = || ApiError::bare(StatusCode::BAD_REQUEST);
    let query: Vec<(String, String)> = query_pairs(uri).collect();
    // Go's `Query()[name][0]`: the first value given.
    let first = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(value) = first("standbyok") {
        parse_bool(value).ok_or_else(bad)?;
    }
    let mut code = StatusCode::OK;
    for name in ["uninitcode", "sealedcode", "standbycode", "activecode"] {
        if let Some(value) = first(name) {
            // Go's `strconv.Atoi`: a sign is allowed, and a code is checked only when used
            // (OpenBao's server fails the connection for a code outside 100-999).
            let number: i64 = value.parse().map_err(|_| bad())?;
            if name == "activecode" {
                code = u16::try_from(number)
                    .ok()
                    .and_then(|n| StatusCode::from_u16(n).ok())
                    .ok_or_else(bad)?;
            }
        }
    }
    Ok(code)
}

/// OpenBao's `sys/init` read: this server's store exists once it runs.
pub(crate) fn init_status() -> Response {
    json_response(StatusCode::OK, &json!({ "initialized": true }))
}

/// OpenBao's fields, with what is true of one server that is never sealed and replicates
/// nothing. `cluster_name` and `cluster_id` are left out, as OpenBao leaves them out when it
/// has no cluster to name: this server is not one.
pub(crate) fn health() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "initialized": true,
            "sealed": false,
            "standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": Timestamp::now().secs(),
            "version": VERSION,
        }),
    )
}

/// OpenBao's fields for a server that is unsealed, with the host's `storage_type`. The
/// store's key is read at start and there are no unseal key shares: seal type `none` with no shares and no threshold, and
/// no unseal under way (`progress`, `nonce`). No `commit_date`: a binary built by plain
/// `cargo build` knows no commit, and a made-up date would be a lie.
pub(crate) fn seal_status(storage_type: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "type": "none",
            "initialized": true,
            "sealed": false,
            "t": 0,
            "n": 0,
            "progress": 0,
            "nonce": "",
            "recovery_seal": false,
            "version": VERSION,
            "migration": false,
            "storage_type": storage_type,
        }),
    )
}
