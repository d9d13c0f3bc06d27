//! Vault's HTTP API, as much of it as the `bao`/`vault` CLI and client libraries need to
//! use the engine: `/v1/<mount>/...` for the engine, `sys/leases/*` for leases,
//! `sys/health` and `sys/seal-status` for probes.
//!
//! Requests and responses have Vault's shapes: a JSON body (or query parameters for reads),
//! `X-Vault-Token` or `Authorization: Bearer`, `LIST` or `?list=true`; answers carry
//! `request_id`, `lease_id`, `renewable`, `lease_duration`, `data`, `warnings`, `wrap_info`
//! and `auth`, and errors are `{"errors": [...]}` with Vault's status codes.

use super::acl::{AccessControl, Capability, Principal};
use super::leases::{LeaseError, LeaseRecord, Leases};
use crate::CallError;
use crate::runtime::{LeaseLimits, Operation, Request, Response as EngineResponse, Runtime};
use crate::storage::Storage;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The largest request body accepted; the engine's requests are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Everything a request may need.
pub struct Api {
    pub runtime: Arc<Runtime>,
    /// Engine calls under way, which a shutdown waits for.
    pub tasks: tokio_util::task::TaskTracker,
    pub acl: AccessControl,
    pub leases: Arc<Leases>,
    pub engine_storage: Arc<dyn Storage>,
    pub mount: String,
    pub limits: Arc<dyn LeaseLimits>,
}

/// An error answer: `{"errors": [...]}` with a status.
struct ApiError(StatusCode, Vec<String>);

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            vec![message.into()],
        )
    }

    fn denied() -> ApiError {
        ApiError::new(403, "permission denied")
    }

    /// Vault answers a read of nothing with 404 and no message.
    fn not_found() -> ApiError {
        ApiError(StatusCode::NOT_FOUND, Vec::new())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "errors": self.1 }))).into_response()
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> ApiError {
        ApiError::new(e.http_status(), e.to_string())
    }
}

impl From<LeaseError> for ApiError {
    fn from(e: LeaseError) -> ApiError {
        ApiError::new(e.http_status(), e.to_string())
    }
}

/// A successful answer in Vault's shape.
#[derive(Default)]
struct Answer {
    lease_id: String,
    renewable: bool,
    lease_duration: u64,
    data: Option<Value>,
    warnings: Vec<String>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let body = json!({
            "request_id": request_id(),
            "lease_id": self.lease_id,
            "renewable": self.renewable,
            "lease_duration": self.lease_duration,
            "data": self.data,
            "wrap_info": null,
            "warnings": if self.warnings.is_empty() { Value::Null } else { json!(self.warnings) },
            "auth": null,
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("the system random generator works");
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

fn client_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(token);
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The request's data: the JSON body, or the query parameters of a read.
fn request_data(method: &Method, uri: &Uri, body: &Bytes) -> Result<Value, ApiError> {
    if *method == Method::GET {
        let query = uri.query().unwrap_or_default().as_bytes();
        let data: Map<String, Value> = form_urlencoded::parse(query)
            .filter(|(key, _)| key != "list")
            .map(|(key, value)| (key.into_owned(), Value::from(value.into_owned())))
            .collect();
        return Ok(Value::Object(data));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        Ok(_) => Err(ApiError::new(400, "the request body must be a JSON object")),
        Err(e) => Err(ApiError::new(
            400,
            format!("failed to parse JSON input: {e}"),
        )),
    }
}

fn is_list(method: &Method, uri: &Uri) -> bool {
    method.as_str() == "LIST"
        || (*method == Method::GET
            && uri
                .query()
                .unwrap_or_default()
                .split('&')
                .any(|p| p == "list=true" || p == "list=1"))
}

/// Every `/v1/...` request.
pub async fn handle(
    api: Arc<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Refuse a declared oversized body before reading any of it.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return ApiError::new(
            413,
            format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::new(
                413,
                format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
            )
            .into_response();
        }
    };
    match route(&api, &method, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(
    api: &Arc<Api>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let path = uri
        .path()
        .strip_prefix("/v1/")
        .ok_or_else(|| ApiError::new(404, "not found"))?
        .trim_end_matches('/');
    let token = client_token(headers);
    match path {
        "sys/health" => Ok(health()),
        "sys/seal-status" => Ok(seal_status()),
        // What clients call to check their token (hvac's `is_authenticated`).
        "auth/token/lookup-self" => {
            let principal = api
                .acl
                .authorize(token, path, Capability::Read)
                .map_err(|_| ApiError::denied())?;
            Ok(Answer {
                data: Some(json!({
                    "display_name": principal.display_name,
                    "policies": principal.policies,
                    "path": "auth/token/create",
                    "renewable": false,
                    "ttl": 0,
                    "expire_time": null,
                    "meta": null,
                    "type": "service",
                })),
                ..Answer::default()
            }
            .into_response())
        }
        "sys/leader" => Ok(axum::Json(json!({
            "ha_enabled": false,
            "is_self": true,
            "leader_address": "",
            "leader_cluster_address": "",
        }))
        .into_response()),
        "sys/leases/lookup" | "sys/leases/renew" | "sys/leases/revoke" => {
            require_write(method)?;
            api.acl
                .authorize(token, path, Capability::Update)
                .map_err(|_| ApiError::denied())?;
            let data = request_data(method, uri, body)?;
            let lease_id = data
                .get("lease_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::new(400, "missing lease_id"))?;
            match path {
                "sys/leases/lookup" => lookup(api, lease_id),
                "sys/leases/renew" => renew(api, lease_id, &data).await,
                _ => revoke(api, lease_id, sync_flag(&data)).await,
            }
        }
        _ if path.starts_with("sys/leases/renew/") || path.starts_with("sys/leases/revoke/") => {
            require_write(method)?;
            let (endpoint, lease_id) = if let Some(id) = path.strip_prefix("sys/leases/renew/") {
                ("sys/leases/renew", id)
            } else {
                (
                    "sys/leases/revoke",
                    path.strip_prefix("sys/leases/revoke/").unwrap_or_default(),
                )
            };
            api.acl
                .authorize(token, endpoint, Capability::Update)
                .map_err(|_| ApiError::denied())?;
            let data = request_data(method, uri, body)?;
            if endpoint == "sys/leases/renew" {
                renew(api, lease_id, &data).await
            } else {
                revoke(api, lease_id, sync_flag(&data)).await
            }
        }
        _ if path.starts_with("sys/leases/revoke-prefix/") => {
            require_write(method)?;
            // Vault requires sudo here: one call can end every lease of a mount.
            api.acl
                .authorize(token, path, Capability::Sudo)
                .map_err(|_| ApiError::denied())?;
            api.acl
                .authorize(token, path, Capability::Update)
                .map_err(|_| ApiError::denied())?;
            // As Vault: a prefix names whole path segments (`dockerhub/tok` is not `dockerhub/token/`).
            let prefix = format!("{}/", path.trim_start_matches("sys/leases/revoke-prefix/"));
            let data = request_data(method, uri, body)?;
            api.leases.revoke_prefix(&prefix, sync_flag(&data)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => match path.strip_prefix(api.mount.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let engine_path = rest.trim_start_matches('/');
                engine(api, method, uri, token, path, engine_path, body).await
            }
            _ => Err(ApiError::new(
                404,
                format!("no handler for route {path:?}: route entry not found"),
            )),
        },
    }
}

fn require_write(method: &Method) -> Result<(), ApiError> {
    if *method == Method::PUT || *method == Method::POST {
        Ok(())
    } else {
        Err(ApiError::new(
            405,
            format!("{method} is not allowed here; use PUT or POST"),
        ))
    }
}

/// Vault's `sync` flag; the CLI sends `false` for `lease revoke` (queued).
fn sync_flag(data: &Value) -> bool {
    match data.get("sync") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => true,
    }
}

fn health() -> Response {
    axum::Json(json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "server_time_utc": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs(),
        "version": concat!("dockerhub-secrets ", env!("CARGO_PKG_VERSION")),
    }))
    .into_response()
}

fn seal_status() -> Response {
    axum::Json(json!({
        "type": "none",
        "initialized": true,
        "sealed": false,
        "t": 0,
        "n": 0,
        "progress": 0,
        "version": concat!("dockerhub-secrets ", env!("CARGO_PKG_VERSION")),
        "storage_type": "redb",
    }))
    .into_response()
}

fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

fn lookup(api: &Api, lease_id: &str) -> Result<Response, ApiError> {
    let record = api
        .leases
        .lookup(lease_id)
        .ok_or_else(|| ApiError::new(400, "invalid lease"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut data = json!({
        "id": record.lease_id,
        "issue_time": rfc3339(record.issue_time),
        "expire_time": rfc3339(record.expire_time),
        "last_renewal": record.last_renewal.map(rfc3339),
        "renewable": record.renewable,
        "ttl": record.expire_time.saturating_sub(now),
    });
    if let Some(revocation) = &record.revocation {
        data["revocation_attempts"] = json!(revocation.attempts);
        data["revocation_error"] = json!(revocation.last_error);
        data["next_revocation_attempt"] = json!(rfc3339(revocation.next_attempt));
    }
    Ok(Answer {
        data: Some(data),
        ..Answer::default()
    }
    .into_response())
}

async fn renew(api: &Api, lease_id: &str, data: &Value) -> Result<Response, ApiError> {
    let increment = match data.get("increment") {
        None | Some(Value::Null) => 0,
        Some(value) => crate::serve::parse_duration(value)
            .map_err(|e| ApiError::new(400, format!("increment: {e}")))?,
    };
    let (record, warnings) = api.leases.renew(lease_id, increment).await?;
    Ok(Answer {
        lease_id: record.lease_id,
        renewable: record.renewable,
        lease_duration: record.ttl,
        data: None,
        warnings,
    }
    .into_response())
}

async fn revoke(api: &Api, lease_id: &str, sync: bool) -> Result<Response, ApiError> {
    api.leases.revoke(lease_id, sync).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A request for the engine.
async fn engine(
    api: &Arc<Api>,
    method: &Method,
    uri: &Uri,
    token: Option<&str>,
    full_path: &str,
    engine_path: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    // An unknown token is refused before the engine does any work for it.
    if api.acl.capabilities(token, full_path).is_empty() {
        return Err(ApiError::denied());
    }
    let data = request_data(method, uri, body)?;
    let mut request = Request {
        operation: Operation::Read,
        path: engine_path.to_string(),
        data: data.to_string(),
        display_name: None,
        entity_id: None,
        lease: None,
    };
    let (operation, capability) = if is_list(method, uri) {
        (Operation::List, Capability::List)
    } else {
        match method.as_str() {
            "GET" => (Operation::Read, Capability::Read),
            "DELETE" => (Operation::Delete, Capability::Delete),
            "PUT" | "POST" => {
                request.operation = Operation::Update;
                match api
                    .runtime
                    .existence_check(api.engine_storage.clone(), &request)
                    .await?
                {
                    Some(false) => (Operation::Create, Capability::Create),
                    _ => (Operation::Update, Capability::Update),
                }
            }
            other => return Err(ApiError::new(405, format!("unsupported method {other}"))),
        }
    };
    let principal: Principal = api
        .acl
        .authorize(token, full_path, capability)
        .map_err(|_| ApiError::denied())?;
    request.operation = operation;
    request.display_name = Some(principal.display_name);

    // Run to completion even if the client goes away: a token the engine creates must get
    // its lease stored, whether or not anyone reads the answer.
    let (response, record) = api
        .tasks
        .spawn(issue(api.clone(), request))
        .await
        .map_err(|e| ApiError::new(500, format!("the request failed: {e}")))??;
    let data: Option<Value> = response
        .data
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::new(500, format!("the engine answered with invalid JSON: {e}")))?;
    if operation == Operation::List
        && data
            .as_ref()
            .and_then(|d| d.get("keys"))
            .and_then(Value::as_array)
            .is_none_or(|keys| keys.is_empty())
    {
        return Err(ApiError::not_found());
    }
    let Some(record) = record else {
        if data.is_none() && response.warnings.is_empty() {
            return Ok(if operation == Operation::Read {
                ApiError::not_found().into_response()
            } else {
                StatusCode::NO_CONTENT.into_response()
            });
        }
        return Ok(Answer {
            data,
            warnings: response.warnings,
            ..Answer::default()
        }
        .into_response());
    };
    Ok(Answer {
        lease_id: record.lease_id,
        renewable: record.renewable,
        lease_duration: record.ttl,
        data,
        warnings: response.warnings,
    }
    .into_response())
}

/// Call the engine and store the lease of what it created.
async fn issue(
    api: Arc<Api>,
    request: Request,
) -> Result<(EngineResponse, Option<LeaseRecord>), ApiError> {
    let response = api
        .runtime
        .handle(api.engine_storage.clone(), api.limits.clone(), &request)
        .await?;
    let Some(lease) = &response.lease else {
        return Ok((response, None));
    };
    match api.leases.create(&request.path, lease).await {
        Ok(record) => Ok((response, Some(record))),
        Err(e) => {
            // The secret must not outlive a lease nobody can revoke: undo it at once.
            tracing::error!(error = %e, "storing a new lease failed; revoking its secret");
            let undo = Request {
                operation: Operation::Revoke,
                lease: Some(crate::runtime::LeaseState {
                    internal_data: lease.internal_data.clone(),
                    issue_time: crate::runtime::Datetime {
                        seconds: 0,
                        nanoseconds: 0,
                    },
                    ttl: lease.ttl,
                    increment: 0,
                }),
                ..request
            };
            let _ = api
                .runtime
                .handle(api.engine_storage.clone(), api.limits.clone(), &undo)
                .await;
            Err(ApiError::new(500, format!("storing the lease failed: {e}")))
        }
    }
}
