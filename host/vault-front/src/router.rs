//! Where a request goes: the probes, the lease endpoints, the token's own lookup, and the
//! engine's mount, each with the policy check Vault makes on its path.

use crate::acl::{Capability, Principal};
use crate::answer::{
    Answer, ApiError, empty, field_invalid, health, health_code, init_status, leader, lookup_self,
    redirect, seal_status, unsupported, unsupported_path,
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
    if front.acl.principal(token).is_none() {
        return Err(ApiError::unauthenticated());
    }
    if verb.writes() && front.acl.capabilities(token, &path).is_empty() {
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
        authorize(front, token, path, verb.capability())?;
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
            authorize(front, token, path, verb.capability())?;
            // OpenBao's routes take `renew/` and `revoke/` only with an id after the slash
            // (a LIST adds one).
            if url_id.is_none() && path.ends_with('/') {
                return Err(unsupported_path());
            }
            return Err(unsupported(method));
        }
        authorize(front, token, path, Capability::Update)?;
        let lease_id = lease_id(&data, url_id)?;
        return match endpoint {
            "lookup" => lookup(host, &lease_id).await,
            "renew" => renew(host, &lease_id, &data).await,
            _ => revoke(host, &lease_id, flag(&data, "sync", true)?).await,
        };
    }
    // Vault requires sudo on these two: one call lists, or ends, every lease of a mount.
    if let Some(prefix) = path.strip_prefix("sys/leases/lookup/") {
        authorize_sudo(front, token, path, verb.capability())?;
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
        authorize_sudo(front, token, path, verb.capability())?;
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
        authorize_sudo(front, token, path, verb.capability())?;
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
        let principal = authorize(front, token, path, verb.capability())?;
        // OpenBao takes it as a read and as an update (PUT or POST).
        if !matches!(verb, Verb::Read | Verb::Write) {
            return Err(unsupported(method));
        }
        return Ok(lookup_self(principal, token.unwrap_or_default()));
    }
    match path.strip_prefix(front.mount.as_str()) {
        // Exactly one slash after the mount goes: what follows, even another slash, is the
        // engine's path, the one the policy was checked on.
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let engine_path = rest.strip_prefix('/').unwrap_or(rest);
            engine(front, host, verb, token, path, engine_path, data).await
        }
        _ => {
            // As Vault: a token that may not touch the path learns nothing about it.
            authorize(front, token, path, verb.capability())?;
            Err(ApiError::new(
                404,
                format!("no handler for route {path:?}. route entry not found."),
            ))
        }
    }
}

fn authorize(
    front: &Front,
    token: Option<&str>,
    path: &str,
    capability: Capability,
) -> Result<Principal, ApiError> {
    front
        .acl
        .authorize(token, path, capability)
        .map_err(|_| ApiError::denied())
}

fn authorize_sudo(
    front: &Front,
    token: Option<&str>,
    path: &str,
    capability: Capability,
) -> Result<Principal, ApiError> {
    front
        .acl
        .authorize_sudo(token, path, capability)
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
            parse_duration(value).map_err(|e| field_invalid("increment", e))?
        }
        Some(_) => {
            return Err(field_invalid(
                "increment",
                "could not parse duration from input",
            ));
        }
    };
    let (record, warnings) = host.renew(lease_id, increment).await?;
    Ok(Answer {
        lease_id: record.lease_id,
        renewable: record.renewable,
        lease_duration: record.ttl,
        data: None,
        warnings,
    }
    .into_response())
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
    token: Option<&str>,
    full_path: &str,
    engine_path: &str,
    data: Value,
) -> Result<Response, ApiError> {
    let mut request = EngineRequest {
        operation: Operation::Read,
        path: engine_path.to_string(),
        data: data.to_string(),
        display_name: None,
    };
    let (operation, capability) = match verb {
        Verb::List => (Operation::List, Capability::List),
        Verb::Read => (Operation::Read, Capability::Read),
        Verb::Delete => (Operation::Delete, Capability::Delete),
        Verb::Patch => {
            // The engine declares no patch operation; OpenBao's plugin says so once the
            // policy allowed the patch.
            authorize(front, token, full_path, Capability::Patch)?;
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
    let principal: Principal = authorize(front, token, full_path, capability)?;
    request.operation = operation;
    request.display_name = Some(principal.display_name);

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
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessControl, EngineAnswer, EngineFailure, LeaseRecord, block_on};
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
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("x-vault-token", "ci-token")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let read = Cell::new(false);
        let response = block_on(handle(
            front,
            host,
            &parts,
            StubBody(b"{\"label\": \"x\"}", &read),
        ));
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status().as_u16(), body, read.get())
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
