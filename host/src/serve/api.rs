//! Vault's HTTP API, as much of it as the `bao`/`vault` CLI and client libraries need to
//! use the engine: `/v1/<mount>/...` for the engine, `sys/leases/*` for leases (and
//! `sys/leases/lookup/<prefix>` to list them), `sys/health` and `sys/seal-status` for probes.
//!
//! Requests and responses have Vault's shapes: a JSON body (or query parameters for reads),
//! `X-Vault-Token` or `Authorization: Bearer`, `LIST` or `?list=true`; answers carry
//! `request_id`, `lease_id`, `renewable`, `lease_duration`, `data`, `warnings`, `wrap_info`
//! and `auth`, and errors are `{"errors": [...]}` with Vault's status codes.
//!
//! A path means what it means in OpenBao, because a policy is checked on it: `%XX` escapes
//! are decoded, a path with `//`, `.` or `..` is redirected (307) to its clean form, an
//! escaped `.` or `..` segment is refused, and the path a policy is checked on is exactly the
//! path that runs (for the lease endpoints, the path as sent, id included). A request is
//! refused before its body is read unless its token may do something on its path, and
//! headers that would make Vault answer differently (response wrapping, namespaces, inline
//! authentication) are refused rather than ignored. `tests/e2e/tests/differential.rs` sends
//! the same requests to OpenBao with the plugin and compares.

use super::acl::{AccessControl, Capability, Principal};
use super::leases::{LeaseError, LeaseRecord, Leases};
use super::timestamp::Timestamp;
use crate::CallError;
use crate::runtime::{
    EngineError, LeaseLimits, MAX_REQUEST_BYTES, Operation, Request, Response as EngineResponse,
    Runtime,
};
use crate::storage::Storage;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Vault's listener defaults (`http_read_header_timeout`, `http_read_timeout`): a client has
/// this long to send a request's head, and then its body. The header timeout also closes a
/// keep-alive connection that stays idle that long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After SIGTERM, how long an open connection may take to finish its request before it is
/// closed; engine calls already under way are not cut, the shutdown waits for them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Bodies being received at once, so that memory stays bounded by this many
/// [`MAX_REQUEST_BYTES`] whatever the number of clients.
pub const BODIES_IN_FLIGHT: usize = 32;

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
    /// Permits to receive a body: [`BODIES_IN_FLIGHT`].
    pub bodies: tokio::sync::Semaphore,
}

/// An error answer: `{"errors": [...]}` with a status.
#[derive(Debug)]
struct ApiError(StatusCode, Vec<String>);

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            vec![message.into()],
        )
    }

    /// OpenBao's refusal by a policy, as go-multierror wraps it.
    fn denied() -> ApiError {
        ApiError::new(403, multierror("permission denied"))
    }

    /// OpenBao's refusal of a request with no token or an unknown one: the bare text.
    fn unauthenticated() -> ApiError {
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

/// One error as OpenBao's request handling returns it: go-multierror's text for a list of
/// one (`"1 error occurred:\n\t* <text>\n\n"`), which the `bao` CLI prints as it is.
fn multierror(text: &str) -> String {
    format!("1 error occurred:\n\t* {text}\n\n")
}

/// The engine's error as OpenBao answers it for a plugin: bad input (400) with the engine's
/// message alone, as a plugin's `logical.ErrorResponse` is; an unknown path or operation in
/// OpenBao's own words (the plugin protocol carries only the kind); any other error, which
/// OpenBao receives as a coded error, with the engine's message in go-multierror's text. A
/// body over this server's limit is refused before the engine, as OpenBao's listener does.
impl From<CallError> for ApiError {
    fn from(e: CallError) -> ApiError {
        match e {
            CallError::Engine(EngineError::UnsupportedPath(_)) => unsupported_path(),
            CallError::Engine(EngineError::UnsupportedOperation(_)) => {
                ApiError::new(405, UNSUPPORTED_OPERATION)
            }
            e
            @ (CallError::Engine(EngineError::InvalidRequest(_)) | CallError::RequestTooLarge) => {
                ApiError::new(e.http_status(), e.to_string())
            }
            e => ApiError::new(e.http_status(), multierror(&e.to_string())),
        }
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

/// The client token as Vault reads it: a non-empty `X-Vault-Token` (the first one), else the
/// first `Authorization` value that starts with `Bearer `, trimmed.
fn client_token(headers: &HeaderMap) -> Option<&str> {
    let vault_token = headers.get("x-vault-token").and_then(|v| v.to_str().ok());
    if let Some(token) = vault_token.filter(|t| !t.is_empty()) {
        return Some(token);
    }
    headers
        .get_all("authorization")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Go's `strconv.ParseBool`, which Vault uses for query flags and boolean fields.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Where a request goes once its URL is read as Vault's HTTP layer reads it.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A path that is not clean (`//`, `.` or `..` segments): Go's `ServeMux` answers with a
    /// redirect to the clean path, and so does this server, so that the path a policy is
    /// checked on is always the path that runs.
    Redirect(String),
    /// The decoded path after `/v1/`: the path policies are checked on and requests run on.
    Path(String),
}

/// Resolve a request URL as OpenBao does: non-printable characters are refused, a path
/// outside `/v1/` is not found, an unclean one is redirected, and `%XX` escapes are decoded
/// (so `%2F` is a `/`, as in Vault) before anything looks at the path.
fn resolve(uri: &Uri) -> Result<Target, ApiError> {
    let raw = uri.path();
    let decoded = percent_decode(raw)
        .ok_or_else(|| ApiError::new(400, format!("invalid URL escape in {raw:?}")))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| ApiError::new(400, "the path is not valid UTF-8"))?;
    if !decoded.chars().all(is_printable) {
        return Err(ApiError::new(400, "the path has a non-printable character"));
    }
    // OpenBao with its web UI on (the dev server's default) sends `/` there, whatever the
    // method. This server has no UI; it answers `/` as OpenBao does all the same.
    if decoded == "/" {
        return Ok(Target::Redirect("/ui/".into()));
    }
    let Some(path) = decoded.strip_prefix("/v1/") else {
        return Err(ApiError::not_found());
    };
    let clean = clean_path(raw);
    if clean != raw {
        return Ok(Target::Redirect(match uri.query() {
            Some(query) => format!("{clean}?{query}"),
            None => clean,
        }));
    }
    // OpenBao's `IsRelativePath`: a `.` or `..` segment that was escaped (`%2e`) and so
    // survived the cleaning.
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(ApiError::new(400, "relative paths not supported"));
    }
    Ok(Target::Path(path.to_string()))
}

/// Go's `net/url` path unescaping: every `%` starts two hex digits.
fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |b: Option<u8>| (b? as char).to_digit(16);
        out.push((hex(bytes.next())? * 16 + hex(bytes.next())?) as u8);
    }
    Some(out)
}

/// Go's `unicode.IsPrint` as far as it matters here: control characters, and every space or
/// invisible formatting character but the ASCII space, are refused (OpenBao's
/// `PrintablePathCheckHandler`).
fn is_printable(c: char) -> bool {
    let invisible = matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}');
    c == ' ' || !(c.is_control() || c.is_whitespace() || invisible)
}

/// Go's `ServeMux` path cleaning: `path.Clean`, keeping a trailing slash.
fn clean_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut clean = format!("/{}", segments.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

/// What a request asks for, from its method (and, for `GET`, its `list` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Read,
    List,
    Write,
    Delete,
    /// A JSON merge patch, which nothing here supports once the policy allowed it.
    Patch,
}

impl Verb {
    /// The verb of a request, refused as OpenBao refuses it before any token is looked at.
    /// `OPTIONS` is no verb (`None`): OpenBao builds a request with no operation for it and
    /// refuses that only after the request's headers were checked.
    fn of(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Option<Verb>, ApiError> {
        Ok(Some(match method.as_str() {
            "GET" => {
                let flag = |name: &str| -> Result<bool, ApiError> {
                    let value = query_pairs(uri).find(|(key, _)| key == name);
                    match value.map(|(_, v)| v).filter(|v| !v.is_empty()) {
                        None => Ok(false),
                        // OpenBao answers a flag that is no Go boolean with 400 and no message.
                        Some(v) => parse_bool(&v)
                            .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, Vec::new())),
                    }
                };
                match (flag("list")?, flag("scan")?) {
                    (true, true) => {
                        return Err(ApiError::new(400, "list and scan exclude each other"));
                    }
                    (false, true) => return Err(unsupported(method)),
                    (true, false) => Verb::List,
                    (false, false) => Verb::Read,
                }
            }
            "LIST" => Verb::List,
            "PUT" | "POST" => Verb::Write,
            "DELETE" => Verb::Delete,
            "PATCH" => {
                merge_patch(headers)?;
                Verb::Patch
            }
            "OPTIONS" => return Ok(None),
            _ => return Err(unsupported(method)),
        }))
    }

    /// Whether the request carries data in its body, and so writes.
    fn writes(self) -> bool {
        matches!(self, Verb::Write | Verb::Patch)
    }

    /// The capability that decides, before anything else is known; a write may turn out to
    /// need `create` instead once the engine said whether the path exists.
    fn capability(self) -> Capability {
        match self {
            Verb::Read => Capability::Read,
            Verb::List => Capability::List,
            Verb::Write => Capability::Update,
            Verb::Delete => Capability::Delete,
            Verb::Patch => Capability::Patch,
        }
    }
}

/// OpenBao takes a PATCH only as a JSON merge patch, and says why not before anything else.
fn merge_patch(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media_type = media_type(&content_type).map_err(|e| ApiError::new(400, e))?;
    if media_type != "application/merge-patch+json" {
        return Err(ApiError::new(
            415,
            format!(
                "PATCH requires Content-Type of application/merge-patch+json, provided {media_type}"
            ),
        ));
    }
    Ok(())
}

/// Go's `mime.ParseMediaType`: the media type, lowercased, or Go's error message.
fn media_type(value: &str) -> Result<String, &'static str> {
    let is_token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c);
    let token = |s: &str| s.find(|c| !is_token(c)).unwrap_or(s.len());
    let mut parts = value.split(';');
    let media_type = parts.next().unwrap_or_default().trim().to_lowercase();
    let (kind, rest) = media_type.split_at(token(&media_type));
    if kind.is_empty() {
        return Err("mime: no media type");
    }
    if !rest.is_empty() {
        let rest = rest
            .strip_prefix('/')
            .ok_or("mime: expected slash after first token")?;
        let (subtype, rest) = rest.split_at(token(rest));
        if subtype.is_empty() {
            return Err("mime: expected token after slash");
        }
        if !rest.is_empty() {
            return Err("mime: unexpected content after media subtype");
        }
    }
    let params: Vec<&str> = parts.collect();
    let mut names = std::collections::HashSet::new();
    for (i, param) in params.iter().enumerate() {
        // One trailing `;` is allowed.
        if param.trim().is_empty() && i + 1 == params.len() {
            break;
        }
        let (name, value) = param.split_once('=').unwrap_or_default();
        let (name, value) = (name.trim(), value.trim());
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        let valid = |s: &str| !s.is_empty() && token(s) == s.len();
        if !valid(name) || !(quoted || valid(value)) {
            return Err("mime: invalid media parameter");
        }
        if !names.insert(name.to_ascii_lowercase()) {
            return Err("mime: duplicate parameter name");
        }
    }
    Ok(media_type)
}

/// OpenBao's text for `logical.ErrUnsupportedOperation`, as go-multierror wraps it.
const UNSUPPORTED_OPERATION: &str = "1 error occurred:\n\t* unsupported operation\n\n";

/// OpenBao's 405 for an operation a path does not take, in go-multierror's words. A method
/// that is no operation at all gets a 405 with no message, as OpenBao's HTTP layer gives.
fn unsupported(method: &Method) -> ApiError {
    match method.as_str() {
        "GET" | "LIST" | "PUT" | "POST" | "DELETE" | "PATCH" => {
            ApiError::new(405, UNSUPPORTED_OPERATION)
        }
        _ => ApiError(StatusCode::METHOD_NOT_ALLOWED, Vec::new()),
    }
}

/// OpenBao's 404 for a path under a backend that none of its routes takes.
fn unsupported_path() -> ApiError {
    ApiError::new(404, "1 error occurred:\n\t* unsupported path\n\n")
}

/// OpenBao's answer to a field its framework cannot convert to the field's type.
fn field_invalid(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        400,
        format!("Field validation failed: error converting input for field {name:?}: {why}"),
    )
}

fn query_pairs(uri: &Uri) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Query parameters as Vault's `parseQuery`: one value is a string, several a list; `help`,
/// `list` and `scan` are not data.
fn query_data(uri: &Uri) -> Value {
    let mut data: Map<String, Value> = Map::new();
    for (key, value) in query_pairs(uri) {
        if matches!(key.as_str(), "help" | "list" | "scan") {
            continue;
        }
        match data.get_mut(&key) {
            Some(Value::Array(values)) => values.push(Value::from(value)),
            Some(first) => *first = json!([first.take(), value]),
            None => {
                data.insert(key, Value::from(value));
            }
        }
    }
    Value::Object(data)
}

/// A write's data: the JSON body, or a form as Vault accepts one (`application/x-www-form-urlencoded`
/// and not starting like JSON; a repeated field joined with commas).
fn body_data(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let is_form = content_type.as_deref() == Some("application/x-www-form-urlencoded")
        && !matches!(first, Some(b'{' | b'['));
    if is_form {
        let mut data: Map<String, Value> = Map::new();
        for (key, value) in form_urlencoded::parse(body) {
            match data.get_mut(key.as_ref()) {
                Some(Value::String(joined)) => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                _ => {
                    data.insert(key.into_owned(), Value::from(value.into_owned()));
                }
            }
        }
        return Ok(Value::Object(data));
    }
    if first.is_none() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        // Go's `json.Unmarshal` into OpenBao's `map[string]interface{}`, in its words.
        Ok(other) => Err(ApiError::new(
            400,
            format!(
                "failed to decode JSON input: json: cannot unmarshal {} into Go value of type \
                 map[string]interface {{}}",
                match other {
                    Value::Array(_) => "array",
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    _ => "bool",
                }
            ),
        )),
        Err(e) => Err(ApiError::new(
            400,
            format!("failed to decode JSON input: {e}"),
        )),
    }
}

/// Headers with which Vault would answer something else than this server can: refused
/// before any work is done, rather than silently ignored.
fn refuse_unsupported_headers(headers: &HeaderMap, token: Option<&str>) -> Result<(), ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").trim())
    };
    // Response wrapping would hand the secret to a wrapping token instead of the client;
    // answering in clear would defeat why the client asked.
    if let Some(ttl) = header("x-vault-wrap-ttl").filter(|ttl| !ttl.is_empty()) {
        let seconds = crate::serve::parse_duration(&Value::from(ttl)).map_err(|e| {
            ApiError::new(400, format!("error parsing X-Vault-Wrap-TTL header: {e}"))
        })?;
        if seconds > 0 {
            return Err(ApiError::new(
                400,
                "response wrapping (X-Vault-Wrap-TTL) is not supported by this server; \
                 the request was not run",
            ));
        }
    }
    // This server is one namespace, the root one.
    let namespace = header("x-vault-namespace").map(|ns| ns.trim_matches('/'));
    if namespace.is_some_and(|ns| !matches!(ns, "" | "root")) {
        return Err(ApiError::new(404, "namespace not found"));
    }
    // Inline authentication needs an auth method; this server has only its tokens file.
    if header("x-vault-inline-auth-path").is_some() {
        return Err(match token {
            Some(_) => ApiError::new(
                400,
                "cannot layer inline authentication with token authentication",
            ),
            None => ApiError::unauthenticated(),
        });
    }
    Ok(())
}

/// Every request, as a connection hands it over.
pub async fn handle(api: Arc<Api>, request: axum::http::Request<Body>) -> Response {
    let received = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    match route(&api, &parts, body, received + BODY_READ_TIMEOUT).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The body of a write, read only once the request is known to be allowed somewhere.
async fn read_body(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
    deadline: tokio::time::Instant,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::from(CallError::RequestTooLarge);
    // Refuse a declared oversized body before reading any of it.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_REQUEST_BYTES) {
        return Err(too_large());
    }
    let timed_out = || {
        ApiError::new(
            408,
            format!(
                "the request body did not arrive within {}s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )
    };
    let read = async {
        let _permit = api.bodies.acquire().await;
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_REQUEST_BYTES))
            .await
    };
    match tokio::time::timeout_at(deadline, read).await {
        Err(_) => Err(timed_out()),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::new(
            400,
            format!("error reading the request body: {e}"),
        )),
    }
}

async fn route(
    api: &Arc<Api>,
    parts: &axum::http::request::Parts,
    body: Body,
    deadline: tokio::time::Instant,
) -> Result<Response, ApiError> {
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let mut path = match resolve(uri)? {
        Target::Redirect(location) => return Ok(redirect(method, &location)),
        Target::Path(path) => path,
    };
    // The probes answer before any request parsing, as OpenBao's own handlers do: GET (and
    // HEAD for health), anything else 405 with no message; no token, no query flags.
    if path == "sys/health" {
        let code = health_code(uri)?;
        return match method.as_str() {
            "GET" => Ok((code, health()).into_response()),
            "HEAD" => Ok(code.into_response()),
            _ => Err(ApiError(StatusCode::METHOD_NOT_ALLOWED, Vec::new())),
        };
    }
    let probe = match path.as_str() {
        "sys/seal-status" => Some(seal_status as fn() -> Response),
        "sys/leader" => Some(leader as fn() -> Response),
        "sys/init" => Some(init_status as fn() -> Response),
        _ => None,
    };
    if let Some(answer) = probe {
        return match method.as_str() {
            "GET" => Ok(answer()),
            // OpenBao's `sys/init` write initializes a server once; this one always is.
            "PUT" | "POST" if path == "sys/init" => {
                Err(ApiError::new(400, "Vault is already initialized"))
            }
            _ => Err(ApiError(StatusCode::METHOD_NOT_ALLOWED, Vec::new())),
        };
    }
    let verb = Verb::of(method, uri, headers)?;
    let token = client_token(headers);
    refuse_unsupported_headers(headers, token)?;
    let Some(verb) = verb else {
        return Err(ApiError::new(
            400,
            "cannot handle internal-only request operation",
        ));
    };
    // As Vault: a write to `foo/` is ambiguous (a key named `foo/`, or a directory?).
    if verb.writes() && path.ends_with('/') {
        return Err(ApiError::new(400, "cannot write to a path ending in '/'"));
    }
    // As Vault: a list is of a directory.
    if verb == Verb::List && !path.ends_with('/') {
        path.push('/');
    }
    // An unknown token, or one that may do nothing here, never costs a body read nor any
    // work; its request is refused before its body is received.
    if api.acl.principal(token).is_none() {
        return Err(ApiError::unauthenticated());
    }
    if verb.writes() && api.acl.capabilities(token, &path).is_empty() {
        return Err(ApiError::denied());
    }
    let data = match verb.writes() {
        true => body_data(headers, &read_body(api, headers, body, deadline).await?)?,
        false => query_data(uri),
    };
    let path = path.as_str();

    // Policies are checked on the path as requested, as Vault does: a policy for
    // `sys/leases/revoke/<mount>/...` governs `bao lease revoke <id>`, one for
    // `sys/leases/revoke` the same call with the id in the body.
    if let Some((endpoint, url_id)) = lease_endpoint(path) {
        if verb != Verb::Write {
            authorize(api, token, path, verb.capability())?;
            // OpenBao's routes take `renew/` and `revoke/` only with an id after the slash
            // (a LIST adds one).
            if url_id.is_none() && path.ends_with('/') {
                return Err(unsupported_path());
            }
            return Err(unsupported(method));
        }
        authorize(api, token, path, Capability::Update)?;
        let lease_id = lease_id(&data, url_id)?;
        return match endpoint {
            "lookup" => lookup(api, &lease_id),
            "renew" => renew(api, &lease_id, &data).await,
            _ => revoke(api, &lease_id, flag(&data, "sync", true)?).await,
        };
    }
    // Vault requires sudo on these two: one call lists, or ends, every lease of a mount.
    if let Some(prefix) = path.strip_prefix("sys/leases/lookup/") {
        authorize_sudo(api, token, path, verb.capability())?;
        if verb != Verb::List {
            return Err(unsupported(method));
        }
        let keys = api.leases.list(prefix);
        if keys.is_empty() {
            return Err(ApiError::not_found());
        }
        return Ok(Answer {
            data: Some(json!({ "keys": keys })),
            ..Answer::default()
        }
        .into_response());
    }
    if let Some(prefix) = path.strip_prefix("sys/leases/revoke-prefix/") {
        authorize_sudo(api, token, path, verb.capability())?;
        if prefix.is_empty() {
            return Err(unsupported_path());
        }
        if verb != Verb::Write {
            return Err(unsupported(method));
        }
        let sync = flag(&data, "sync", true)?;
        api.leases
            .revoke_prefix(prefix, sync)
            .await
            .map_err(|e| prefix_revocation_failed(api, prefix, e))?;
        return Ok(revoked(sync));
    }
    // Vault's force revoke: the leases end even where the engine fails to revoke them.
    if let Some(prefix) = path.strip_prefix("sys/leases/revoke-force/") {
        authorize_sudo(api, token, path, verb.capability())?;
        if prefix.is_empty() {
            return Err(unsupported_path());
        }
        if verb != Verb::Write {
            return Err(unsupported(method));
        }
        api.leases.revoke_force(prefix).await?;
        return Ok(revoked(true));
    }
    if path == "auth/token/lookup-self" {
        let principal = authorize(api, token, path, verb.capability())?;
        // OpenBao takes it as a read and as an update (PUT or POST).
        if !matches!(verb, Verb::Read | Verb::Write) {
            return Err(unsupported(method));
        }
        return Ok(lookup_self(principal, token.unwrap_or_default()));
    }
    match path.strip_prefix(api.mount.as_str()) {
        // Exactly one slash after the mount goes: what follows, even another slash, is the
        // engine's path, the one the policy was checked on.
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let engine_path = rest.strip_prefix('/').unwrap_or(rest);
            engine(api, verb, token, path, engine_path, data).await
        }
        _ => {
            // As Vault: a token that may not touch the path learns nothing about it.
            authorize(api, token, path, verb.capability())?;
            Err(ApiError::new(
                404,
                format!("no handler for route {path:?}. route entry not found."),
            ))
        }
    }
}

fn authorize(
    api: &Api,
    token: Option<&str>,
    path: &str,
    capability: Capability,
) -> Result<Principal, ApiError> {
    api.acl
        .authorize(token, path, capability)
        .map_err(|_| ApiError::denied())
}

fn authorize_sudo(
    api: &Api,
    token: Option<&str>,
    path: &str,
    capability: Capability,
) -> Result<Principal, ApiError> {
    api.acl
        .authorize_sudo(token, path, capability)
        .map_err(|_| ApiError::denied())
}

/// `sys/leases/{lookup,renew,revoke}` and the id in their path, if any (lookup takes it only
/// in the body).
fn lease_endpoint(path: &str) -> Option<(&'static str, Option<&str>)> {
    for endpoint in ["lookup", "renew", "revoke"] {
        let Some(rest) = path
            .strip_prefix("sys/leases/")
            .and_then(|p| p.strip_prefix(endpoint))
        else {
            continue;
        };
        if rest.is_empty() {
            return Some((endpoint, None));
        }
        if let Some(id) = rest.strip_prefix('/').filter(|_| endpoint != "lookup") {
            return Some((endpoint, Some(id).filter(|id| !id.is_empty())));
        }
    }
    None
}

/// The lease a lease call is about. Vault prefers the body's `lease_id` over the path's;
/// here a body naming another lease than the path is refused, so that a policy on the path
/// is never sidestepped through the body.
fn lease_id(data: &Value, url_id: Option<&str>) -> Result<String, ApiError> {
    let body_id = match data.get("lease_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.as_str()).filter(|id| !id.is_empty()),
        Some(_) => return Err(ApiError::new(400, "invalid lease ID")),
    };
    match (body_id, url_id) {
        (Some(body), Some(url)) if body != url => Err(ApiError::new(
            400,
            "the lease_id in the body and the one in the path differ",
        )),
        (Some(id), _) | (None, Some(id)) => Ok(id.to_string()),
        (None, None) => Err(ApiError::new(400, "lease_id must be specified")),
    }
}

/// A boolean field as Vault's `TypeBool` reads it: JSON `true`/`false` or a string that
/// [`parse_bool`] accepts; refused in OpenBao's words (mapstructure's and Go's `strconv`).
fn flag(data: &Value, name: &str, default: bool) -> Result<bool, ApiError> {
    let unparsable = "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax";
    match data.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        // mapstructure reads an empty string as false.
        Some(Value::String(s)) if s.is_empty() => Ok(false),
        Some(Value::String(s)) => parse_bool(s).ok_or_else(|| field_invalid(name, unparsable)),
        Some(Value::Number(_)) => Err(field_invalid(name, unparsable)),
        Some(Value::Array(_)) => Err(field_invalid(
            name,
            "'' expected type 'bool', got unconvertible type '[]interface {}'",
        )),
        Some(Value::Object(_)) => Err(field_invalid(
            name,
            "'' expected type 'bool', got unconvertible type 'map[string]interface {}'",
        )),
    }
}

/// Go's `http.Redirect` with 307, as OpenBao answers an unclean path.
fn redirect(method: &Method, location: &str) -> Response {
    let mut response = if *method == Method::GET {
        let href = location
            .replace('&', "&amp;")
            .replace('"', "&#34;")
            .replace('<', "&lt;");
        let mut response =
            format!("<a href=\"{href}\">Temporary Redirect</a>.\n\n").into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    } else {
        Response::new(Body::empty())
    };
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(location) = axum::http::HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    response
}

/// What clients call to check their token (hvac's `is_authenticated`, `bao login`).
/// OpenBao's fields for a token of the tokens file: no expiry, no TTL, unlimited uses, no
/// parent, no entity. Left out: `accessor` (there are no accessor endpoints to use one with),
/// `creation_time` and `issue_time` (the file does not say when a token was made).
fn lookup_self(principal: Principal, token: &str) -> Response {
    Answer {
        data: Some(json!({
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
        })),
        ..Answer::default()
    }
    .into_response()
}

const VERSION: &str = concat!("dockerhub-secrets ", env!("CARGO_PKG_VERSION"));

/// OpenBao's answer without HA: one server, always the active one.
fn leader() -> Response {
    axum::Json(json!({ "ha_enabled": false })).into_response()
}

/// The status `sys/health` answers with, as OpenBao's `getSysHealth` picks it from the query:
/// `activecode` (default 200), since this server is initialized, unsealed and active; the
/// other codes (`uninitcode`, `sealedcode`, `standbycode`) and `standbyok` are still checked,
/// and one that is not a number (or a Go boolean) is a 400 with no message, as is an
/// `activecode` outside 100-999.
fn health_code(uri: &Uri) -> Result<StatusCode, ApiError> {
    let bad = || ApiError(StatusCode::BAD_REQUEST, Vec::new());
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
fn init_status() -> Response {
    axum::Json(json!({ "initialized": true })).into_response()
}

/// OpenBao's fields, with what is true of one server that is never sealed and replicates
/// nothing. `cluster_name` and `cluster_id` are left out, as OpenBao leaves them out when it
/// has no cluster to name: this server is not one.
fn health() -> Response {
    axum::Json(json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": Timestamp::now().secs(),
        "version": VERSION,
    }))
    .into_response()
}

/// OpenBao's fields for a server that is unsealed. The store's key is read at start and
/// there are no unseal key shares: seal type `none` with no shares and no threshold, and
/// no unseal under way (`progress`, `nonce`). No `commit_date`: a binary built by plain
/// `cargo build` knows no commit, and a made-up date would be a lie.
fn seal_status() -> Response {
    axum::Json(json!({
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
        "storage_type": "redb",
    }))
    .into_response()
}

fn lookup(api: &Api, lease_id: &str) -> Result<Response, ApiError> {
    let record = api
        .leases
        .lookup(lease_id)
        .ok_or_else(|| ApiError::new(400, "invalid lease"))?;
    // OpenBao's `path` is the request path that created the lease: its id without the
    // random last segment.
    let path = record
        .lease_id
        .rsplit_once('/')
        .map_or("", |(path, _)| path);
    // As OpenBao: a lease past its end (its revocation failed and waits for a retry) is not
    // renewable, and its `ttl` is negative.
    let now = Timestamp::now();
    let mut data = json!({
        "id": record.lease_id,
        "path": path,
        "issue_time": record.issue_time.to_string(),
        "expire_time": record.expire_time.to_string(),
        "last_renewal": record.last_renewal.map(|t| t.to_string()),
        "renewable": record.renewable && record.expire_time >= now,
        "ttl": record.expire_time.ttl_from(now),
    });
    if let Some(revocation) = &record.revocation {
        data["revocation_attempts"] = json!(revocation.attempts);
        data["revocation_error"] = json!(revocation.last_error);
        data["next_revocation_attempt"] = json!(revocation.next_attempt.to_string());
    }
    Ok(Answer {
        data: Some(data),
        ..Answer::default()
    }
    .into_response())
}

async fn renew(api: &Api, lease_id: &str, data: &Value) -> Result<Response, ApiError> {
    // Refused in OpenBao's words where they are its framework's own; a text Go's duration
    // parser would word differently keeps this server's explanation after OpenBao's prefix.
    let increment = match data.get("increment") {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) if s.is_empty() => 0,
        Some(value @ (Value::Number(_) | Value::String(_))) => {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            if text.starts_with('-') {
                return Err(field_invalid(
                    "increment",
                    format!("cannot provide negative value '{text}'"),
                ));
            }
            crate::serve::parse_duration(value).map_err(|e| field_invalid("increment", e))?
        }
        Some(_) => {
            return Err(field_invalid(
                "increment",
                "could not parse duration from input",
            ));
        }
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
    api.leases
        .revoke(lease_id, sync)
        .await
        .map_err(revocation_failed)?;
    Ok(revoked(sync))
}

/// A revocation the engine could not carry out, as OpenBao's lease endpoints answer it: 400
/// with the expiration manager's text (`revokeEntry` in `expiration.go`: the plugin's nil
/// response as Go's `%#v` prints it, then its error; `handleError` in `logical_system.go`),
/// whatever the engine's own status was.
fn revocation_failed(e: LeaseError) -> ApiError {
    match e {
        LeaseError::Engine(e) => ApiError::new(
            400,
            format!("failed to revoke entry: resp: (*logical.Response)(nil) err: {e}"),
        ),
        e => e.into(),
    }
}

/// A failed `revoke-prefix` whose prefix is one whole lease id: OpenBao names the lease
/// before the entry's error (`failed to revoke "<id>": …`).
fn prefix_revocation_failed(api: &Api, prefix: &str, e: LeaseError) -> ApiError {
    let mut error = revocation_failed(e);
    if error.0 == StatusCode::BAD_REQUEST && api.leases.lookup(prefix).is_some() {
        for text in &mut error.1 {
            *text = format!("failed to revoke {prefix:?}: {text}");
        }
    }
    error
}

/// Vault's answer to a revocation: done (204), or queued (202) when not `sync`.
fn revoked(sync: bool) -> Response {
    match sync {
        true => StatusCode::NO_CONTENT.into_response(),
        false => StatusCode::ACCEPTED.into_response(),
    }
}

/// A request for the engine.
async fn engine(
    api: &Arc<Api>,
    verb: Verb,
    token: Option<&str>,
    full_path: &str,
    engine_path: &str,
    data: Value,
) -> Result<Response, ApiError> {
    let mut request = Request {
        operation: Operation::Read,
        path: engine_path.to_string(),
        data: data.to_string(),
        display_name: None,
        entity_id: None,
        lease: None,
    };
    let (operation, capability) = match verb {
        Verb::List => (Operation::List, Capability::List),
        Verb::Read => (Operation::Read, Capability::Read),
        Verb::Delete => (Operation::Delete, Capability::Delete),
        Verb::Patch => {
            // The engine declares no patch operation; OpenBao's plugin says so once the
            // policy allowed the patch.
            authorize(api, token, full_path, Capability::Patch)?;
            return Err(ApiError::new(405, "unsupported operation"));
        }
        Verb::Write => {
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
    let issued = Timestamp::now();
    let response = api
        .runtime
        .handle(api.engine_storage.clone(), api.limits.clone(), &request)
        .await?;
    let Some(lease) = &response.lease else {
        return Ok((response, None));
    };
    match api.leases.create(&request.path, lease, issued).await {
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

/// Serve connections from `listener` until `shutdown` completes; then stop accepting, let
/// each open connection finish its request for up to [`SHUTDOWN_GRACE`], and close it.
///
/// Each connection has Vault's read timeouts ([`HEADER_READ_TIMEOUT`], [`BODY_READ_TIMEOUT`]),
/// so neither a slow client nor a half-sent request can hold the server, or its shutdown.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    api: Arc<Api>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = tokio_util::task::TaskTracker::new();
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for connections to end.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let api = api.clone();
        let service = hyper::service::service_fn(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let api = api.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(handle(api, request.map(Body::new)).await)
                }
            },
        );
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let mut closed = closed.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = closed.wait_for(|closing| *closing) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
        });
    }
    drop(listener);
    closing.send_replace(true);
    connections.close();
    connections.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_are_worded_as_openbao_words_a_plugins() {
        let answer = |e: CallError| {
            let ApiError(status, errors) = ApiError::from(e);
            (status.as_u16(), errors)
        };
        let wrapped = |text: &str| vec![format!("1 error occurred:\n\t* {text}\n\n")];
        assert_eq!(
            answer(CallError::Engine(EngineError::InvalidRequest("bad".into()))),
            (400, vec!["bad".to_string()])
        );
        assert_eq!(
            answer(CallError::Engine(EngineError::PermissionDenied(
                "namespace x is not allowed".into()
            ))),
            (403, wrapped("namespace x is not allowed"))
        );
        assert_eq!(
            answer(CallError::Engine(EngineError::Internal("broken".into()))),
            (500, wrapped("broken"))
        );
        assert_eq!(
            answer(CallError::RequestTooLarge),
            (413, vec![CallError::RequestTooLarge.to_string()])
        );
    }

    #[test]
    fn a_body_lease_id_never_sidesteps_the_path_one() {
        let status = |data: Value, url: Option<&str>| lease_id(&data, url).map_err(|e| e.0);
        assert_eq!(
            status(
                json!({"lease_id": "dockerhub/token/hoeg/hoeg/x"}),
                Some("dockerhub/token/hoeg/my-organization/y")
            ),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(json!({"lease_id": "a/b"}), Some("a/b")),
            Ok("a/b".into())
        );
        assert_eq!(status(json!({"lease_id": "a/b"}), None), Ok("a/b".into()));
        assert_eq!(status(json!({}), Some("a/b")), Ok("a/b".into()));
        assert_eq!(status(json!({}), None), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            status(json!({"lease_id": 7}), None),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    fn target(uri: &str) -> Result<Target, u16> {
        resolve(&uri.parse().unwrap()).map_err(|e| e.0.as_u16())
    }

    #[test]
    fn paths_resolve_as_openbao_resolves_them() {
        let path = |p: &str| Ok(Target::Path(p.to_string()));
        let redirect = |p: &str| Ok(Target::Redirect(p.to_string()));
        assert_eq!(
            target("/v1/dockerhub/token/a/b"),
            path("dockerhub/token/a/b")
        );
        assert_eq!(
            target("/v1/dockerhub/token/a/b/"),
            path("dockerhub/token/a/b/")
        );
        assert_eq!(
            target("/v1/dockerhub%2Ftoken/a/%62"),
            path("dockerhub/token/a/b")
        );
        assert_eq!(target("/v1/dockerhub%2F%2Ftoken"), path("dockerhub//token"));
        assert_eq!(
            target("/v1/dockerhub//token/a/b"),
            redirect("/v1/dockerhub/token/a/b")
        );
        assert_eq!(
            target("/v1//dockerhub/x?list=true"),
            redirect("/v1/dockerhub/x?list=true")
        );
        assert_eq!(target("/v1/a/./b/"), redirect("/v1/a/b/"));
        assert_eq!(target("/v1/a/x/../b"), redirect("/v1/a/b"));
        assert_eq!(target("/v1/a/b/.."), redirect("/v1/a"));
        assert_eq!(target("/v1/../../a"), redirect("/a"));
        assert_eq!(target("/v1/a/%2e/b"), Err(400));
        assert_eq!(target("/v1/a/%2E%2e"), Err(400));
        assert_eq!(target("/v1/a/b%zz"), Err(400));
        assert_eq!(target("/v1/a/b%2"), Err(400));
        assert_eq!(target("/v1/a/b%00"), Err(400));
        assert_eq!(target("/v1/a/b%C2%A0"), Err(400));
        assert_eq!(target("/v1/a/b%FF"), Err(400));
        assert_eq!(target("/v1/a/b%20c"), path("a/b c"));
        assert_eq!(target("//v1/a"), Err(404));
        assert_eq!(target("/"), redirect("/ui/"));
        assert_eq!(target("/?x=1"), redirect("/ui/"));
        assert_eq!(target("//"), Err(404));
        assert_eq!(target("/ui"), Err(404));
        assert_eq!(target("/v1"), Err(404));
        assert_eq!(target("/V1/a"), Err(404));
    }

    #[test]
    fn booleans_are_gos() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRue", " true", "2"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
        let list = |q: &str| {
            let uri = format!("/v1/x?{q}").parse().unwrap();
            Verb::of(&Method::GET, &uri, &HeaderMap::new()).map(Option::unwrap)
        };
        assert_eq!(list("list=True").unwrap(), Verb::List);
        assert_eq!(list("list=0").unwrap(), Verb::Read);
        assert_eq!(list("list=").unwrap(), Verb::Read);
        assert_eq!(list("list=true&list=false").unwrap(), Verb::List);
        assert_eq!(list("list=yes").unwrap_err().0, 400);
        assert_eq!(list("list=1&scan=1").unwrap_err().0, 400);
        assert_eq!(list("scan=1").unwrap_err().0, 405);
        assert!(!flag(&json!({"sync": "f"}), "sync", true).unwrap());
        assert!(flag(&json!({}), "sync", true).unwrap());
        assert_eq!(
            flag(&json!({"sync": "maybe"}), "sync", true).unwrap_err().0,
            400
        );
    }

    #[test]
    fn a_patch_is_a_merge_patch_and_options_no_verb() {
        let verb = |method: &str, content_type: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = content_type {
                headers.insert("content-type", value.parse().unwrap());
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            Verb::of(&method, &"/v1/x".parse().unwrap(), &headers)
                .map_err(|e| (e.0.as_u16(), e.1.concat()))
        };
        assert_eq!(verb("OPTIONS", None), Ok(None));
        let merge_patch = "application/merge-patch+json";
        assert_eq!(verb("PATCH", Some(merge_patch)), Ok(Some(Verb::Patch)));
        let upper = "Application/Merge-Patch+JSON; charset=utf-8;";
        assert_eq!(verb("PATCH", Some(upper)), Ok(Some(Verb::Patch)));
        for (content_type, message) in [
            (None, "mime: no media type"),
            (Some(" "), "mime: no media type"),
            (Some("a b"), "mime: expected slash after first token"),
            (Some("a/"), "mime: expected token after slash"),
            (
                Some("a/b c"),
                "mime: unexpected content after media subtype",
            ),
            (Some("a/b; x"), "mime: invalid media parameter"),
            (Some("a/b;; x=1"), "mime: invalid media parameter"),
            (Some("a/b; x=1; X=2"), "mime: duplicate parameter name"),
        ] {
            let refused = Err((400, message.to_string()));
            assert_eq!(verb("PATCH", content_type), refused, "{content_type:?}");
        }
        let text = "PATCH requires Content-Type of application/merge-patch+json, provided text";
        let refused = Err((415, text.to_string()));
        assert_eq!(verb("PATCH", Some("text; q=\"a b\"")), refused);
    }

    #[test]
    fn tokens_are_read_as_vault_reads_them() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, value.parse().unwrap());
            }
            map
        };
        let token = |pairs| client_token(&headers(pairs)).map(str::to_string);
        assert_eq!(token(&[("x-vault-token", "a")]), Some("a".into()));
        let both = [("x-vault-token", ""), ("authorization", "Bearer  b ")];
        assert_eq!(token(&both), Some("b".into()));
        let second = [("authorization", "Basic x"), ("authorization", "Bearer c")];
        assert_eq!(token(&second), Some("c".into()));
        assert_eq!(token(&[("authorization", "bearer d")]), None);
    }

    #[test]
    fn lease_ids_from_the_path_or_the_body_never_two() {
        assert_eq!(
            lease_endpoint("sys/leases/revoke/a/b"),
            Some(("revoke", Some("a/b")))
        );
        assert_eq!(lease_endpoint("sys/leases/renew"), Some(("renew", None)));
        assert_eq!(lease_endpoint("sys/leases/lookup/a"), None);
        assert_eq!(lease_endpoint("sys/leases/revoke-prefix/a"), None);
        assert_eq!(lease_id(&json!({"lease_id": "a"}), None).unwrap(), "a");
        assert_eq!(lease_id(&json!({}), Some("b")).unwrap(), "b");
        assert_eq!(lease_id(&json!({"lease_id": "b"}), Some("b")).unwrap(), "b");
        assert_eq!(
            lease_id(&json!({"lease_id": "a"}), Some("b"))
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(lease_id(&json!({"lease_id": 1}), None).unwrap_err().0, 400);
        assert_eq!(lease_id(&json!({"lease_id": ""}), None).unwrap_err().0, 400);
    }

    #[test]
    fn forms_and_json_bodies() {
        let mut form = HeaderMap::new();
        form.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let data = body_data(&form, b"namespace=a&namespace=b&ttl=1h").unwrap();
        assert_eq!(data, json!({"namespace": "a,b", "ttl": "1h"}));
        // A form content type on a JSON body is JSON, as in Vault.
        assert_eq!(body_data(&form, b" {\"a\": 1}").unwrap(), json!({"a": 1}));
        let none = HeaderMap::new();
        assert_eq!(body_data(&none, b"  ").unwrap(), json!({}));
        assert_eq!(body_data(&none, b"null").unwrap(), json!({}));
        assert_eq!(body_data(&none, b"[1]").unwrap_err().0, 400);
        assert_eq!(body_data(&none, b"{x").unwrap_err().0, 400);
        let query: Uri = "/v1/x?a=1&a=2&b=3&list=true&help=1".parse().unwrap();
        assert_eq!(query_data(&query), json!({"a": ["1", "2"], "b": "3"}));
    }

    #[test]
    fn headers_that_would_change_the_answer_are_refused() {
        let refused = |name: &'static str, value: &'static str, token: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.parse().unwrap());
            refuse_unsupported_headers(&headers, token)
                .err()
                .map(|e| e.0.as_u16())
        };
        assert_eq!(refused("x-vault-wrap-ttl", "60", None), Some(400));
        assert_eq!(refused("x-vault-wrap-ttl", "soon", None), Some(400));
        assert_eq!(refused("x-vault-wrap-ttl", "0", None), None);
        assert_eq!(refused("x-vault-wrap-ttl", "", None), None);
        assert_eq!(refused("x-vault-namespace", "team", None), Some(404));
        for root in ["root", "/", "", "root/"] {
            assert_eq!(refused("x-vault-namespace", root, None), None, "{root}");
        }
        assert_eq!(
            refused("x-vault-inline-auth-path", "auth/x", None),
            Some(403)
        );
        assert_eq!(
            refused("x-vault-inline-auth-path", "auth/x", Some("t")),
            Some(400)
        );
        assert_eq!(refused("x-vault-request", "true", None), None);
    }
}
