//! Where a request goes: the probes, the lease endpoints, the token's own lookup, and the
//! engine's mount, each with the policy check Vault makes on its path.

use crate::acl::{Capability, Principal};
use crate::answer::{
    Answer, ApiError, auth_answer, empty, field_invalid, health, health_code, init_status, leader,
    lookup_self, redirect, seal_status, unsupported, unsupported_path,
};
use crate::input::parse_duration;
use crate::request::{
    Target, Verb, body_data, client_token, flag, lease_endpoint, lease_id, query_data,
    refuse_unsupported_headers, resolve,
};
use crate::{Body, EngineRequest, Front, Host, LeaseFailure, Operation, Response, Timestamp};
use http::StatusCode;
use http::request::Parts;
use serde_json::{Value, json};

/// Answer one request: its head, and its body, which is read only once the request is known
/// to be allowed somewhere.
pub async fn handle(front: &Front, host: &impl Host, parts: &Parts, body: impl Body) -> Response {
    match route(front, host, parts, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(
    front: &Front,
    host: &impl Host,
    parts: &Parts,
    body: impl Body,
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
        if matches!(method.as_str(), "GET" | "HEAD") {
            host.ready().await.map_err(|why| ApiError::new(500, why))?;
        }
        return match method.as_str() {
            "GET" => {
                let mut response = health();
                *response.status_mut() = code;
                Ok(response)
            }
            "HEAD" => Ok(empty(code)),
            _ => Err(ApiError::bare(StatusCode::METHOD_NOT_ALLOWED)),
        };
    }
    let probe = match path.as_str() {
        "sys/seal-status" => Some(seal_status(front.storage_type)),
        "sys/leader" => Some(leader()),
        "sys/init" => Some(init_status()),
        _ => None,
    };
    if let Some(answer) = probe {
        return match method.as_str() {
            "GET" => Ok(answer),
            // OpenBao's `sys/init` write initializes a server once; this one always is.
            "PUT" | "POST" if path == "sys/init" => {
                Err(ApiError::new(400, "Vault is already initialized"))
            }
            _ => Err(ApiError::bare(StatusCode::METHOD_NOT_ALLOWED)),
        };
    }
    // Vault's help (`?help=<anything>` on any method, or the method HELP, as its
    // `wrapHelpHandler`): the path's help text, never the operation. Any valid token may ask.
    if method.as_str() == "HELP"
        || crate::request::query_pairs(uri).any(|(key, value)| key == "help" && !value.is_empty())
    {
        let token = client_token(headers);
        principal(front, host, token).await?;
        return help(front, host, &path).await;
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
    // A login needs no token: the request is its credential (`auth/<mount>/login`).
    if let Some(mount) = login_mount(&path).filter(|mount| host.serves_login(mount)) {
        if verb != Verb::Write {
            return Err(ApiError::new(405, "unsupported operation"));
        }
        let data = body_data(headers, &body.read().await?)?;
        let (secret, login, ttl) = host.login(mount, &data).await?;
        return Ok(auth_answer(&secret, &login, ttl, Vec::new()));
    }
    // An unknown token, or one that may do nothing here, never costs a body read nor any
    // work; its request is refused before its body is received.
    let principal = principal(front, host, token).await?;
    if verb.writes() && front.acl.capabilities_of(&principal, &path).is_empty() {
        return Err(ApiError::denied());
    }
    let data = match verb.writes() {
        true => body_data(headers, &body.read().await?)?,
        false => query_data(uri),
    };
    let path = path.as_str();

    // OpenBao's `sys/leases/tidy`: an update, and not among the system backend's sudo
    // paths (`PathsSpecial.Root` in `logical_system.go`).
    if path == "sys/leases/tidy" {
        authorize(front, &principal, path, verb.capability())?;
        if verb != Verb::Write {
            return Err(unsupported(method));
        }
        host.tidy().await?;
        return Ok(tidy_started());
    }
    // Policies are checked on the path as requested, as Vault does: a policy for
    // `sys/leases/revoke/<mount>/...` governs `bao lease revoke <id>`, one for
    // `sys/leases/revoke` the same call with the id in the body.
    if let Some((endpoint, url_id)) = lease_endpoint(path) {
        if verb != Verb::Write {
            authorize(front, &principal, path, verb.capability())?;
            // OpenBao's routes take `renew/` and `revoke/` only with an id after the slash
            // (a LIST adds one).
            if url_id.is_none() && path.ends_with('/') {
                return Err(unsupported_path());
            }
            return Err(unsupported(method));
        }
        authorize(front, &principal, path, Capability::Update)?;
        let lease_id = lease_id(&data, url_id)?;
        return match endpoint {
            "lookup" => lookup(host, &lease_id).await,
            "renew" => renew(host, &lease_id, &data).await,
            _ => revoke(host, &lease_id, flag(&data, "sync", true)?).await,
        };
    }
    // Vault requires sudo on these two: one call lists, or ends, every lease of a mount.
    if let Some(prefix) = path.strip_prefix("sys/leases/lookup/") {
        authorize_sudo(front, &principal, path, verb.capability())?;
        if verb != Verb::List {
            return Err(unsupported(method));
        }
        let keys = host.leases(prefix).await?;
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
        authorize_sudo(front, &principal, path, verb.capability())?;
        if prefix.is_empty() {
            return Err(unsupported_path());
        }
        if verb != Verb::Write {
            return Err(unsupported(method));
        }
        let sync = flag(&data, "sync", true)?;
        if let Err(e) = host.revoke_prefix(prefix, sync).await {
            return Err(prefix_revocation_failed(host, prefix, e).await);
        }
        return Ok(revoked(sync));
    }
    // Vault's force revoke: the leases end even where the engine fails to revoke them.
    if let Some(prefix) = path.strip_prefix("sys/leases/revoke-force/") {
        authorize_sudo(front, &principal, path, verb.capability())?;
        if prefix.is_empty() {
            return Err(unsupported_path());
        }
        if verb != Verb::Write {
            return Err(unsupported(method));
        }
        host.revoke_force(prefix).await?;
        return Ok(revoked(true));
    }
    if path == "auth/token/lookup-self" {
        authorize(front, &principal, path, verb.capability())?;
        // OpenBao takes it as a read and as an update (PUT or POST).
        if !matches!(verb, Verb::Read | Verb::Write) {
            return Err(unsupported(method));
        }
        return Ok(lookup_self(principal, token.unwrap_or_default()));
    }
    if path == "auth/token/renew-self" || path == "auth/token/revoke-self" {
        authorize(front, &principal, path, verb.capability())?;
        if verb != Verb::Write {
            return Err(unsupported(method));
        }
        let secret = token.unwrap_or_default();
        if path.ends_with("revoke-self") {
            // A token of the tokens file lives as long as the file names it.
            if principal.login.is_none() {
                return Err(ApiError::new(
                    400,
                    "a token of the tokens file cannot be revoked: remove it from the file",
                ));
            }
            host.revoke_token(secret).await?;
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        // OpenBao's answer for a token without a TTL (a root token).
        if principal.login.is_none() {
            return Err(ApiError::new(400, "lease is not renewable"));
        }
        let increment = increment(&data)?;
        let (login, ttl, warnings) = host.renew_token(secret, increment).await?;
        return Ok(auth_answer(secret, &login, ttl, warnings));
    }
    match path.strip_prefix(front.mount.as_str()) {
        // Exactly one slash after the mount goes: what follows, even another slash, is the
        // engine's path, the one the policy was checked on.
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let engine_path = rest.strip_prefix('/').unwrap_or(rest);
            engine(front, host, verb, &principal, path, engine_path, data).await
        }
        _ => {
            // As Vault: a token that may not touch the path learns nothing about it.
            authorize(front, &principal, path, verb.capability())?;
            Err(ApiError::new(
                404,
                format!("no handler for route {path:?}. route entry not found."),
            ))
        }
    }
}

/// `{"help": text}` for a path of the engine's mount, as OpenBao answers `path-help`; a 404
/// elsewhere, or when the host has no help to give.
async fn help(front: &Front, host: &impl Host, path: &str) -> Result<Response, ApiError> {
    let engine_path = match path.strip_prefix(front.mount.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            rest.strip_prefix('/').unwrap_or(rest)
        }
        _ => return Err(ApiError::new(404, format!("no help for {path:?} here"))),
    };
    match host.help(engine_path).await {
        Some(text) => Ok(crate::answer::json_response(
            StatusCode::OK,
            &json!({ "help": text }),
        )),
        None => Err(ApiError::new(404, format!("no help for {path:?} here"))),
    }
}

/// The `auth/<mount>/login` a path names, if it names one.
fn login_mount(path: &str) -> Option<&str> {
    let mount = path.strip_prefix("auth/")?.strip_suffix("/login")?;
    (!mount.is_empty() && mount != "token").then_some(mount)
}

/// The holder of `token`: a token of the tokens file, or a live login's token.
async fn principal(
    front: &Front,
    host: &impl Host,
    token: Option<&str>,
) -> Result<Principal, ApiError> {
    if let Some(principal) = front.acl.principal(token) {
        return Ok(principal.clone());
    }
    match token.filter(|token| !token.is_empty()) {
        Some(secret) => match host.token(secret).await? {
            Some(login) => Ok(Principal::of_login(login)),
            None => Err(ApiError::unauthenticated()),
        },
        None => Err(ApiError::unauthenticated()),
    }
}

fn authorize(
    front: &Front,
    principal: &Principal,
    path: &str,
    capability: Capability,
) -> Result<(), ApiError> {
    front
        .acl
        .check(principal, path, capability, false)
        .map_err(|_| ApiError::denied())
}

fn authorize_sudo(
    front: &Front,
    principal: &Principal,
    path: &str,
    capability: Capability,
) -> Result<(), ApiError> {
    front
        .acl
        .check(principal, path, capability, true)
        .map_err(|_| ApiError::denied())
}

async fn lookup(host: &impl Host, lease_id: &str) -> Result<Response, ApiError> {
    let record = host
        .lease(lease_id)
        .await?
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

async fn renew(host: &impl Host, lease_id: &str, data: &Value) -> Result<Response, ApiError> {
    let (record, warnings) = host.renew(lease_id, increment(data)?).await?;
    Ok(Answer {
        lease_id: record.lease_id,
        renewable: record.renewable,
        lease_duration: record.ttl,
        data: None,
        warnings,
        ..Answer::default()
    }
    .into_response())
}

/// A renewal's `increment` in seconds, 0 when not given (a lease's or token's own TTL).
fn increment(data: &Value) -> Result<u64, ApiError> {
    // Refused in OpenBao's words where they are its framework's own; a text Go's duration
    // parser would word differently keeps this server's explanation after OpenBao's prefix.
    Ok(match data.get("increment") {
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
            parse_duration(value).map_err(|e| field_invalid("increment", e))?
        }
        Some(_) => {
            return Err(field_invalid(
                "increment",
                "could not parse duration from input",
            ));
        }
    })
}

async fn revoke(host: &impl Host, lease_id: &str, sync: bool) -> Result<Response, ApiError> {
    host.revoke(lease_id, sync)
        .await
        .map_err(revocation_failed)?;
    Ok(revoked(sync))
}

/// A revocation the engine could not carry out, as OpenBao's lease endpoints answer it: 400
/// with the expiration manager's text (`revokeEntry` in `expiration.go`: the plugin's nil
/// response as Go's `%#v` prints it, then its error; `handleError` in `logical_system.go`),
/// whatever the engine's own status was.
fn revocation_failed(e: LeaseFailure) -> ApiError {
    match e {
        LeaseFailure::Engine { message, .. } => ApiError::new(
            400,
            format!("failed to revoke entry: resp: (*logical.Response)(nil) err: {message}"),
        ),
        e => e.into(),
    }
}

/// A failed `revoke-prefix` whose prefix is one whole lease id: OpenBao names the lease
/// before the entry's error (`failed to revoke "<id>": …`).
async fn prefix_revocation_failed(host: &impl Host, prefix: &str, e: LeaseFailure) -> ApiError {
    let mut error = revocation_failed(e);
    if error.0 == StatusCode::BAD_REQUEST && matches!(host.lease(prefix).await, Ok(Some(_))) {
        for text in &mut error.1 {
            *text = format!("failed to revoke {prefix:?}: {text}");
        }
    }
    error
}

/// OpenBao's answer to `sys/leases/tidy` (`handleTidyLeases`), which runs the tidy in the
/// background: 202 with its warning, whatever the host did before answering.
fn tidy_started() -> Response {
    let mut response = Answer {
        warnings: vec![
            "Tidy operation successfully started. Any information from the operation will be \
             printed to OpenBao's server logs."
                .into(),
        ],
        ..Answer::default()
    }
    .into_response();
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

/// Vault's answer to a revocation: done (204), or queued (202) when not `sync`.
fn revoked(sync: bool) -> Response {
    empty(match sync {
        true => StatusCode::NO_CONTENT,
        false => StatusCode::ACCEPTED,
    })
}

/// A request for the engine.
async fn engine(
    front: &Front,
    host: &impl Host,
    verb: Verb,
    principal: &Principal,
    full_path: &str,
    engine_path: &str,
    data: Value,
) -> Result<Response, ApiError> {
    let mut request = EngineRequest {
        operation: Operation::Read,
        path: engine_path.to_string(),
        data: data.to_string(),
        display_name: None,
        token: None,
    };
    let (operation, capability) = match verb {
        Verb::List => (Operation::List, Capability::List),
        Verb::Read => (Operation::Read, Capability::Read),
        Verb::Delete => (Operation::Delete, Capability::Delete),
        Verb::Patch => {
            // The engine declares no patch operation; OpenBao's plugin says so once the
            // policy allowed the patch.
            authorize(front, principal, full_path, Capability::Patch)?;
            return Err(ApiError::new(405, "unsupported operation"));
        }
        Verb::Write => {
            request.operation = Operation::Update;
            match host.existence_check(&request).await? {
                Some(false) => (Operation::Create, Capability::Create),
                _ => (Operation::Update, Capability::Update),
            }
        }
    };
    authorize(front, principal, full_path, capability)?;
    request.operation = operation;
    request.display_name = Some(principal.display_name.clone());
    request.token = principal.login.clone();

    let answer = host.call(request).await?;
    let data: Option<Value> = answer
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
    let Some(record) = answer.lease else {
        if data.is_none() && answer.warnings.is_empty() {
            return Ok(if operation == Operation::Read {
                ApiError::not_found().into_response()
            } else {
                empty(StatusCode::NO_CONTENT)
            });
        }
        return Ok(Answer {
            data,
            warnings: answer.warnings,
            ..Answer::default()
        }
        .into_response());
    };
    Ok(Answer {
        lease_id: record.lease_id,
        renewable: record.renewable,
        lease_duration: record.ttl,
        data,
        warnings: answer.warnings,
        auth: None,
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessControl, EngineAnswer, EngineFailure, LeaseRecord, LoginToken, block_on};
    use sha2::{Digest, Sha256};
    use std::cell::{Cell, RefCell};

    /// An engine and a lease manager that answer from fixed values and record what they
    /// were asked.
    #[derive(Default)]
    struct StubHost {
        exists: Option<bool>,
        answer: EngineAnswer,
        revocation: Option<LeaseFailure>,
        tidy_failure: Option<LeaseFailure>,
        calls: RefCell<Vec<EngineRequest>>,
        tidied: Cell<usize>,
        /// A login at `auth/jwt/login` gives this token, with secret `s.login`.
        login: Option<LoginToken>,
        /// The token operations asked for: `renew <increment>`, `revoke`.
        token_calls: RefCell<Vec<String>>,
        /// The engine paths help was asked for.
        helped: RefCell<Vec<String>>,
        /// A host with no help to give (the gateway's).
        no_help: bool,
    }

    impl Host for StubHost {
        async fn existence_check(
            &self,
            _request: &EngineRequest,
        ) -> Result<Option<bool>, EngineFailure> {
            Ok(self.exists)
        }

        async fn call(&self, request: EngineRequest) -> Result<EngineAnswer, EngineFailure> {
            self.calls.borrow_mut().push(request);
            Ok(self.answer.clone())
        }

        async fn lease(&self, _lease_id: &str) -> Result<Option<LeaseRecord>, LeaseFailure> {
            Ok(None)
        }

        async fn leases(&self, _prefix: &str) -> Result<Vec<String>, LeaseFailure> {
            Ok(Vec::new())
        }

        async fn renew(
            &self,
            _lease_id: &str,
            _increment: u64,
        ) -> Result<(LeaseRecord, Vec<String>), LeaseFailure> {
            Err(LeaseFailure::NotFound)
        }

        async fn revoke(&self, _lease_id: &str, _sync: bool) -> Result<(), LeaseFailure> {
            self.revocation.clone().map_or(Ok(()), Err)
        }

        async fn revoke_prefix(&self, _prefix: &str, _sync: bool) -> Result<(), LeaseFailure> {
            Ok(())
        }

        async fn revoke_force(&self, _prefix: &str) -> Result<(), LeaseFailure> {
            Ok(())
        }

        async fn tidy(&self) -> Result<(), LeaseFailure> {
            self.tidied.set(self.tidied.get() + 1);
            self.tidy_failure.clone().map_or(Ok(()), Err)
        }

        fn serves_login(&self, mount: &str) -> bool {
            self.login.is_some() && mount == "jwt"
        }

        async fn help(&self, engine_path: &str) -> Option<String> {
            self.helped.borrow_mut().push(engine_path.to_string());
            (!self.no_help).then(|| format!("help for {engine_path:?}"))
        }

        async fn login(
            &self,
            _mount: &str,
            data: &Value,
        ) -> Result<(String, LoginToken, u64), ApiError> {
            if data["jwt"] != "good" {
                return Err(ApiError::new(400, "error validating token"));
            }
            Ok(("s.login".into(), self.login.clone().unwrap(), 60))
        }

        async fn token(&self, secret: &str) -> Result<Option<LoginToken>, LeaseFailure> {
            Ok(self.login.clone().filter(|_| secret == "s.login"))
        }

        async fn renew_token(
            &self,
            _secret: &str,
            increment: u64,
        ) -> Result<(LoginToken, u64, Vec<String>), ApiError> {
            self.token_calls
                .borrow_mut()
                .push(format!("renew {increment}"));
            Ok((self.login.clone().unwrap(), increment, vec![]))
        }

        async fn revoke_token(&self, _secret: &str) -> Result<(), ApiError> {
            self.token_calls.borrow_mut().push("revoke".into());
            Ok(())
        }
    }

    fn login_token() -> LoginToken {
        let issued = Timestamp::now();
        LoginToken {
            accessor: "acc".into(),
            path: "auth/jwt/login".into(),
            mount: "jwt".into(),
            role: "ci".into(),
            display_name: "jwt-acme/app".into(),
            policies: vec!["ci".into(), "default".into()],
            meta: [("role".to_string(), "ci".to_string())].into(),
            issue_time: issued,
            expire_time: issued.plus_secs(60),
            creation_ttl: 60,
            explicit_max_ttl: 0,
            max_expire_time: issued.plus_secs(120),
            last_renewal: None,
        }
    }

    /// A body that says whether anyone read it.
    struct StubBody<'a>(&'a [u8], &'a Cell<bool>);

    impl crate::Body for StubBody<'_> {
        async fn read(self) -> Result<Vec<u8>, ApiError> {
            self.1.set(true);
            Ok(self.0.to_vec())
        }
    }

    fn front(capabilities: &str) -> Front {
        let sha = |t: &str| format!("{:x}", Sha256::digest(t));
        let tokens = format!(
            r#"
            token "ci" {{
              sha256   = "{}"
              policies = ["ci"]
            }}
            policy "ci" {{
              path "dockerhub/token/hoeg/hoeg" {{ capabilities = [{capabilities}] }}
              path "sys/leases/revoke/dockerhub/*" {{ capabilities = ["update"] }}
            }}
            "#,
            sha("ci-token")
        );
        Front {
            acl: AccessControl::parse(&tokens).unwrap(),
            mount: "dockerhub".into(),
            storage_type: "stub",
        }
    }

    /// Send one request with the `ci` token; the answer's status, its JSON body, and
    /// whether the body was read.
    fn send(front: &Front, host: &StubHost, method: &str, uri: &str) -> (u16, Value, bool) {
        send_as(
            front,
            host,
            method,
            uri,
            Some("ci-token"),
            b"{\"label\": \"x\"}",
        )
    }

    /// As [`send`], with `token` (or none) and `body`.
    fn send_as(
        front: &Front,
        host: &StubHost,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> (u16, Value, bool) {
        let mut request = http::Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("x-vault-token", token);
        }
        let (parts, ()) = request.body(()).unwrap().into_parts();
        let read = Cell::new(false);
        let response = block_on(handle(front, host, &parts, StubBody(body, &read)));
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status().as_u16(), body, read.get())
    }

    #[test]
    fn help_is_the_paths_help_text_and_never_its_operation() {
        let host = StubHost::default();
        let front = front(r#""update""#);
        // `bao path-help` sends GET ?help=1; any method with `help` set, and HELP, are help.
        for (method, uri) in [
            ("GET", "/v1/dockerhub/token/hoeg/hoeg?help=1"),
            ("PUT", "/v1/dockerhub/token/hoeg/hoeg?help=true"),
            ("HELP", "/v1/dockerhub/token/hoeg/hoeg"),
        ] {
            let (status, body, read) = send(&front, &host, method, uri);
            assert_eq!(
                (status, body),
                (200, json!({"help": "help for \"token/hoeg/hoeg\""})),
                "{method} {uri}"
            );
            assert!(!read, "no body read");
        }
        // Any valid token may ask, even on a path its policy does not reach; nothing ran.
        let (status, _, _) = send(&front, &host, "GET", "/v1/dockerhub/creds/app?help=1");
        assert_eq!(status, 200);
        assert!(host.calls.borrow().is_empty(), "the engine was not called");
        assert_eq!(host.helped.borrow().len(), 4);
        let (status, _, _) = send(&front, &host, "GET", "/v1/dockerhub?help=1");
        assert_eq!(status, 200);
        assert_eq!(host.helped.borrow().last().unwrap(), "");
        // An unknown token gets nothing; a path outside the mount has no help here.
        let (status, _, _) = send_as(
            &front,
            &host,
            "GET",
            "/v1/dockerhub/token/hoeg/hoeg?help=1",
            Some("nobody"),
            b"",
        );
        assert_eq!(status, 403);
        let (status, _, _) = send(&front, &host, "GET", "/v1/sys/mounts?help=1");
        assert_eq!(status, 404);
        // A host with no help to give answers 404, and still runs nothing.
        let silent = StubHost {
            no_help: true,
            ..StubHost::default()
        };
        let (status, _, _) = send(
            &front,
            &silent,
            "GET",
            "/v1/dockerhub/token/hoeg/hoeg?help=1",
        );
        assert_eq!(status, 404);
        assert!(silent.calls.borrow().is_empty());
        // `help=` (empty) is no help: the read goes on, and here it is allowed.
        let (status, _, _) = send(&front, &host, "GET", "/v1/dockerhub/token/hoeg/hoeg?help=");
        assert_eq!(status, 403, "a read the ci token may not make");
    }

    #[test]
    fn a_login_needs_no_token_and_answers_with_vaults_auth_section() {
        let host = StubHost {
            login: Some(login_token()),
            ..StubHost::default()
        };
        let front = front(r#""update""#);
        let login = |body: &[u8]| send_as(&front, &host, "PUT", "/v1/auth/jwt/login", None, body);
        let (status, body, _) = login(br#"{"role": "ci", "jwt": "good"}"#);
        assert_eq!(status, 200, "{body}");
        let auth = &body["auth"];
        assert_eq!(auth["client_token"], "s.login");
        assert_eq!(auth["accessor"], "acc");
        assert_eq!(auth["policies"], json!(["ci", "default"]));
        assert_eq!(auth["token_policies"], json!(["ci", "default"]));
        assert_eq!(auth["metadata"], json!({"role": "ci"}));
        assert_eq!(auth["lease_duration"], 60);
        assert_eq!(auth["renewable"], true);
        assert_eq!(body["data"], Value::Null);
        let (status, body, _) = login(br#"{"role": "ci", "jwt": "bad"}"#);
        assert_eq!(
            (status, body),
            (400, json!({"errors": ["error validating token"]}))
        );
        let (status, body, _) = send_as(&front, &host, "GET", "/v1/auth/jwt/login", None, b"");
        assert_eq!(
            (status, body),
            (405, json!({"errors": ["unsupported operation"]}))
        );
        // Another auth path is no login: it needs a token, as OpenBao's unknown mounts do.
        let (status, _, read) = send_as(&front, &host, "PUT", "/v1/auth/other/login", None, b"{}");
        assert_eq!((status, read), (403, false));
        let without_logins = StubHost::default();
        let (status, _, read) = send_as(
            &front,
            &without_logins,
            "PUT",
            "/v1/auth/jwt/login",
            None,
            br#"{"jwt": "good"}"#,
        );
        assert_eq!((status, read), (403, false));
    }

    #[test]
    fn a_login_token_acts_with_its_policies_and_goes_with_its_requests() {
        let host = StubHost {
            login: Some(login_token()),
            exists: Some(true),
            answer: EngineAnswer {
                data: Some(r#"{"token": "t"}"#.into()),
                ..EngineAnswer::default()
            },
            ..StubHost::default()
        };
        let front = front(r#""update""#);
        let as_login = |method: &str, uri: &str, body: &[u8]| {
            send_as(&front, &host, method, uri, Some("s.login"), body)
        };
        let (status, _, _) = as_login("PUT", "/v1/dockerhub/token/hoeg/hoeg", b"{}");
        assert_eq!(status, 200);
        let (status, _, read) = as_login("PUT", "/v1/dockerhub/token/hoeg/other", b"{}");
        assert_eq!((status, read), (403, false), "only its policies' paths");
        let calls = host.calls.borrow();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].display_name.as_deref(), Some("jwt-acme/app"));
        let token = calls[0].token.as_ref().expect("the login token goes along");
        assert_eq!((token.accessor.as_str(), token.creation_ttl), ("acc", 60));

        let (status, body, _) = as_login("GET", "/v1/auth/token/lookup-self", b"");
        assert_eq!(status, 200);
        let data = &body["data"];
        assert_eq!(data["id"], "s.login");
        assert_eq!(data["accessor"], "acc");
        assert_eq!(data["path"], "auth/jwt/login");
        assert_eq!(data["display_name"], "jwt-acme/app");
        assert_eq!(data["renewable"], true);
        assert_eq!(data["creation_ttl"], 60);
        assert!(data["ttl"].as_u64().unwrap() >= 59, "{data}");
        assert_eq!(data["meta"], json!({"role": "ci"}));
        assert_eq!(data.get("last_renewal"), None, "not renewed yet: {data}");

        let (status, body, _) = as_login(
            "PUT",
            "/v1/auth/token/renew-self",
            br#"{"increment": "30s"}"#,
        );
        assert_eq!((status, &body["auth"]["lease_duration"]), (200, &json!(30)));
        let (status, _, _) = as_login("PUT", "/v1/auth/token/revoke-self", b"");
        assert_eq!(status, 204);
        assert_eq!(*host.token_calls.borrow(), ["renew 30", "revoke"]);
        let (status, _, read) = send_as(
            &front,
            &host,
            "PUT",
            "/v1/dockerhub/token/hoeg/hoeg",
            Some("s.other"),
            b"{}",
        );
        assert_eq!((status, read), (403, false), "an unknown token");
    }

    #[test]
    fn a_renewed_login_tokens_lookup_says_when_as_openbao_does() {
        let renewed_at = Timestamp::from_secs(1_796_145_928);
        let host = StubHost {
            login: Some(LoginToken {
                last_renewal: Some(renewed_at),
                ..login_token()
            }),
            ..StubHost::default()
        };
        let front = front(r#""update""#);
        let (status, body, _) = send_as(
            &front,
            &host,
            "GET",
            "/v1/auth/token/lookup-self",
            Some("s.login"),
            b"",
        );
        assert_eq!(status, 200);
        assert_eq!(body["data"]["last_renewal"], "2026-12-01T17:25:28Z");
        assert_eq!(body["data"]["last_renewal_time"], 1_796_145_928);
    }

    #[test]
    fn a_token_of_the_tokens_file_is_neither_renewed_nor_revoked() {
        let host = StubHost::default();
        let front = front(r#""update""#);
        let (status, body, _) = send(&front, &host, "PUT", "/v1/auth/token/renew-self");
        assert_eq!(
            (status, body),
            (400, json!({"errors": ["lease is not renewable"]}))
        );
        let (status, body, _) = send(&front, &host, "PUT", "/v1/auth/token/revoke-self");
        assert_eq!(status, 400);
        assert!(
            body["errors"][0]
                .as_str()
                .unwrap()
                .contains("remove it from the file")
        );
        assert!(host.token_calls.borrow().is_empty());
    }

    #[test]
    fn a_write_its_token_may_not_make_is_refused_before_its_body_is_read() {
        let host = StubHost::default();
        let (status, _, read) = send(
            &front(r#""read""#),
            &host,
            "PUT",
            "/v1/dockerhub/token/hoeg/other",
        );
        assert_eq!((status, read), (403, false));
        assert!(host.calls.borrow().is_empty());
    }

    #[test]
    fn a_write_to_an_absent_object_needs_create() {
        let host = StubHost {
            exists: Some(false),
            answer: EngineAnswer {
                data: Some(r#"{"token": "t"}"#.into()),
                ..EngineAnswer::default()
            },
            ..StubHost::default()
        };
        let path = "/v1/dockerhub/token/hoeg/hoeg";
        let (status, body, _) = send(&front(r#""update""#), &host, "PUT", path);
        assert_eq!(
            (status, &body["errors"][0]),
            (403, &json!("1 error occurred:\n\t* permission denied\n\n"))
        );
        assert!(host.calls.borrow().is_empty());

        let (status, body, read) = send(&front(r#""create""#), &host, "PUT", path);
        assert_eq!(
            (status, read, &body["data"]),
            (200, true, &json!({"token": "t"}))
        );
        let calls = host.calls.borrow();
        assert_eq!(calls[0].operation, Operation::Create);
        assert_eq!(calls[0].path, "token/hoeg/hoeg");
        assert_eq!(calls[0].data, r#"{"label":"x"}"#);
        assert_eq!(calls[0].display_name.as_deref(), Some("token-ci"));
    }

    #[test]
    fn an_answer_with_a_lease_carries_it_and_an_empty_list_is_not_found() {
        let issued = Timestamp::from_secs(1_000);
        let host = StubHost {
            answer: EngineAnswer {
                data: Some(r#"{"keys": []}"#.into()),
                lease: Some(LeaseRecord {
                    lease_id: "dockerhub/token/hoeg/hoeg/abc".into(),
                    path: "token/hoeg/hoeg".into(),
                    issue_time: issued,
                    expire_time: issued.plus_secs(300),
                    last_renewal: None,
                    ttl: 300,
                    renewable: true,
                    internal_data: "{}".into(),
                    revocation: None,
                    token_accessor: None,
                }),
                ..EngineAnswer::default()
            },
            ..StubHost::default()
        };
        let front = front(r#""create", "update", "list""#);
        let (status, body, _) = send(&front, &host, "PUT", "/v1/dockerhub/token/hoeg/hoeg");
        assert_eq!(status, 200);
        assert_eq!(body["lease_id"], "dockerhub/token/hoeg/hoeg/abc");
        assert_eq!(
            (&body["lease_duration"], &body["renewable"]),
            (&json!(300), &json!(true))
        );
        let (status, _, _) = send(&front, &host, "LIST", "/v1/dockerhub/token/hoeg/hoeg");
        assert_eq!(status, 404);
    }

    #[test]
    fn a_failed_revocation_is_worded_as_openbaos_expiration_manager_words_it() {
        let host = StubHost {
            revocation: Some(LeaseFailure::Engine {
                status: 502,
                message: "Docker Hub answered 500".into(),
            }),
            ..StubHost::default()
        };
        let uri = "/v1/sys/leases/revoke/dockerhub/token/hoeg/hoeg/abc";
        let (status, body, _) = send(&front(r#""read""#), &host, "PUT", uri);
        assert_eq!(status, 400);
        assert_eq!(
            body["errors"][0],
            "failed to revoke entry: resp: (*logical.Response)(nil) err: Docker Hub answered 500"
        );
    }

    #[test]
    fn tidy_is_an_update_answered_202_as_openbao_starts_it() {
        let host = StubHost::default();
        let front = front(r#""read""#);
        let (status, _, _) = send(&front, &host, "PUT", "/v1/sys/leases/tidy");
        assert_eq!(status, 403, "the policy gives no update on sys/leases/tidy");
        assert_eq!(host.tidied.get(), 0);

        let mut front = front;
        front.acl = AccessControl::parse(&format!(
            r#"
            token "ci" {{
              sha256   = "{:x}"
              policies = ["tidy"]
            }}
            policy "tidy" {{
              path "sys/leases/tidy" {{ capabilities = ["update", "read"] }}
            }}
            "#,
            Sha256::digest("ci-token")
        ))
        .unwrap();
        let (status, body, _) = send(&front, &host, "PUT", "/v1/sys/leases/tidy");
        assert_eq!(status, 202);
        assert_eq!(
            body["warnings"],
            json!([
                "Tidy operation successfully started. Any information from the operation will \
                 be printed to OpenBao's server logs."
            ])
        );
        assert_eq!(
            (&body["data"], &body["lease_id"]),
            (&Value::Null, &json!(""))
        );
        assert_eq!(host.tidied.get(), 1);
        let (status, _, _) = send(&front, &host, "GET", "/v1/sys/leases/tidy");
        assert_eq!(status, 405);
        assert_eq!(host.tidied.get(), 1);

        let host = StubHost {
            tidy_failure: Some(LeaseFailure::Storage("etcd is unavailable".into())),
            ..StubHost::default()
        };
        let (status, body, _) = send(&front, &host, "PUT", "/v1/sys/leases/tidy");
        assert_eq!(
            (status, &body["errors"][0]),
            (500, &json!("the lease store failed: etcd is unavailable"))
        );
    }
}
