//! `serve`'s side of Vault's HTTP API: connections with Vault's timeouts, bodies read with a
//! bound on memory, and the engine and the lease manager behind [`vault_front`], which
//! answers every request as OpenBao would (`tests/e2e/tests/differential.rs` compares).

use super::auth::AuthMounts;
use super::leases::Leases;
use super::tokens::LoginTokens;
use crate::engine::{
    CallError, CappedLimit, Engine, EngineError, LeaseState, MAX_REQUEST_BYTES, Operation, Request,
    Response as EngineResponse, SystemView,
};
use crate::storage::Storage;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;
use vault_front::{
    ApiError, EngineAnswer, EngineFailure, EngineRequest, Front, LeaseFailure, LeaseRecord,
    LoginToken, Timestamp,
};

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
    pub front: Front,
    pub engine: Arc<Engine>,
    /// Engine calls under way, which a shutdown waits for.
    pub tasks: tokio_util::task::TaskTracker,
    pub leases: Arc<Leases>,
    /// The tokens logins created.
    pub tokens: Arc<LoginTokens>,
    /// The auth mounts of the tokens file (`auth/<path>/login`).
    pub auth: AuthMounts,
    pub engine_storage: Arc<dyn Storage>,
    pub system_view: Arc<dyn SystemView>,
    /// Permits to receive a body: [`BODIES_IN_FLIGHT`].
    pub bodies: tokio::sync::Semaphore,
}

/// The engine's failure as the front words it: the status Vault gives each kind.
impl From<CallError> for EngineFailure {
    fn from(e: CallError) -> EngineFailure {
        match e {
            CallError::Engine(EngineError::UnsupportedPath(_)) => EngineFailure::UnsupportedPath,
            CallError::Engine(EngineError::UnsupportedOperation(_)) => {
                EngineFailure::UnsupportedOperation
            }
            e
            @ (CallError::Engine(EngineError::InvalidRequest(_)) | CallError::RequestTooLarge) => {
                EngineFailure::Plain {
                    status: e.http_status(),
                    message: e.to_string(),
                }
            }
            e => EngineFailure::Coded {
                status: e.http_status(),
                message: e.to_string(),
            },
        }
    }
}

/// The engine and the lease manager, for the front.
struct ServeHost<'a>(&'a Arc<Api>);

impl vault_front::Host for ServeHost<'_> {
    async fn help(&self, engine_path: &str) -> Option<String> {
        match self.0.engine.help().await {
            Ok(help) => Some(crate::engine::help::text(&help, engine_path)),
            Err(e) => {
                tracing::warn!(error = %e, "the engine gave no help");
                None
            }
        }
    }

    async fn existence_check(
        &self,
        request: &EngineRequest,
    ) -> Result<Option<bool>, EngineFailure> {
        Ok(self
            .0
            .engine
            .existence_check(
                self.0.engine_storage.clone(),
                &engine_request(request.clone()),
            )
            .await?)
    }

    async fn call(&self, request: EngineRequest) -> Result<EngineAnswer, EngineFailure> {
        // Run to completion even if the client goes away: a token the engine creates must
        // get its lease stored, whether or not anyone reads the answer.
        let token = request.token.clone();
        let (response, lease) = self
            .0
            .tasks
            .spawn(issue(self.0.clone(), engine_request(request), token))
            .await
            .map_err(|e| EngineFailure::Coded {
                status: 500,
                message: format!("the request failed: {e}"),
            })??;
        Ok(EngineAnswer {
            data: response.data,
            warnings: response.warnings,
            lease,
        })
    }

    async fn lease(&self, lease_id: &str) -> Result<Option<LeaseRecord>, LeaseFailure> {
        Ok(self.0.leases.lookup(lease_id))
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<String>, LeaseFailure> {
        Ok(self.0.leases.list(prefix))
    }

    async fn renew(
        &self,
        lease_id: &str,
        increment: u64,
    ) -> Result<(LeaseRecord, Vec<String>), LeaseFailure> {
        self.0.leases.renew(lease_id, increment).await
    }

    async fn revoke(&self, lease_id: &str, sync: bool) -> Result<(), LeaseFailure> {
        self.0.leases.revoke(lease_id, sync).await
    }

    async fn revoke_prefix(&self, prefix: &str, sync: bool) -> Result<(), LeaseFailure> {
        self.0.leases.revoke_prefix(prefix, sync).await?;
        Ok(())
    }

    async fn revoke_force(&self, prefix: &str) -> Result<(), LeaseFailure> {
        self.0.leases.revoke_force(prefix).await?;
        Ok(())
    }

    /// Nothing to do: the lease timers revoke every lease when it falls due.
    async fn tidy(&self) -> Result<(), LeaseFailure> {
        Ok(())
    }

    fn serves_login(&self, mount: &str) -> bool {
        self.0.auth.serves(mount)
    }

    async fn login(
        &self,
        mount: &str,
        data: &serde_json::Value,
    ) -> Result<(String, LoginToken, u64), ApiError> {
        let grant = self.0.auth.login(mount, data).await?;
        Ok(self.0.tokens.create(grant).await?)
    }

    async fn token(&self, secret: &str) -> Result<Option<LoginToken>, LeaseFailure> {
        Ok(self.0.tokens.lookup(secret))
    }

    async fn renew_token(
        &self,
        secret: &str,
        increment: u64,
    ) -> Result<(LoginToken, u64, Vec<String>), ApiError> {
        // As OpenBao's jwt renewal (`pathLoginRenew`): only while its role still exists.
        if let Some(token) = self.0.tokens.lookup(secret) {
            self.0.auth.check_renewal(&token)?;
        }
        self.0
            .tokens
            .renew(secret, increment)
            .await?
            .ok_or_else(|| ApiError::new(403, "permission denied"))
    }

    async fn revoke_token(&self, secret: &str) -> Result<(), ApiError> {
        Ok(self.0.tokens.revoke(secret).await?)
    }
}

fn engine_request(request: EngineRequest) -> Request {
    Request {
        operation: match request.operation {
            vault_front::Operation::Read => Operation::Read,
            vault_front::Operation::Create => Operation::Create,
            vault_front::Operation::Update => Operation::Update,
            vault_front::Operation::Delete => Operation::Delete,
            vault_front::Operation::List => Operation::List,
        },
        path: request.path,
        data: request.data,
        display_name: request.display_name,
        entity_id: None,
        lease: None,
    }
}

/// The system view of a request made with `token`: the server's, with its max lease TTL at
/// most the time the token has left at `issued`, so that the lease and the Hub's own expiry
/// of its token end no later than the login token does.
async fn system_view(
    api: &Api,
    token: Option<&LoginToken>,
    issued: Timestamp,
) -> Arc<dyn SystemView> {
    let Some(token) = token else {
        return api.system_view.clone();
    };
    let left = token.expire_time.since(issued).as_secs().max(1);
    Arc::new(CappedLimit::new(api.system_view.clone(), left))
}

/// A request's body as a connection delivers it.
struct IncomingBody<'a> {
    api: &'a Api,
    headers: &'a HeaderMap,
    body: Body,
    deadline: tokio::time::Instant,
}

impl vault_front::Body for IncomingBody<'_> {
    async fn read(self) -> Result<Vec<u8>, ApiError> {
        Ok(read_body(self.api, self.headers, self.body, self.deadline)
            .await?
            .to_vec())
    }
}

/// Every request, as a connection hands it over.
pub async fn handle(api: Arc<Api>, request: axum::http::Request<Body>) -> Response {
    let received = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    let body = IncomingBody {
        api: &api,
        headers: &parts.headers,
        body,
        deadline: received + BODY_READ_TIMEOUT,
    };
    vault_front::handle(&api.front, &ServeHost(&api), &parts, body)
        .await
        .map(Body::from)
}

/// The body of a write, read only once the request is known to be allowed somewhere.
async fn read_body(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
    deadline: tokio::time::Instant,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::from(EngineFailure::from(CallError::RequestTooLarge));
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

/// Call the engine and store the lease of what it created, tied to the login `token` the
/// request came with.
async fn issue(
    api: Arc<Api>,
    request: Request,
    token: Option<LoginToken>,
) -> Result<(EngineResponse, Option<LeaseRecord>), EngineFailure> {
    let issued = Timestamp::now();
    let system_view = system_view(&api, token.as_ref(), issued).await;
    let response = api
        .engine
        .handle(api.engine_storage.clone(), system_view, &request)
        .await?;
    let Some(lease) = &response.lease else {
        return Ok((response, None));
    };
    let accessor = token.map(|t| t.accessor);
    match api
        .leases
        .create(&request.path, lease, issued, accessor.clone())
        .await
    {
        Ok(record) => {
            // The token ended while the engine worked (`revoke-self`, expiry): its leases
            // were revoked before this one existed, so end this one too.
            if let Some(accessor) = accessor.filter(|a| api.tokens.by_accessor(a).is_none()) {
                tracing::info!(%accessor, lease_id = %record.lease_id, "the login token ended during the request; revoking its new lease");
                let _ = api.leases.revoke(&record.lease_id, true).await;
                return Err(EngineFailure::Plain {
                    status: 403,
                    message: "permission denied".into(),
                });
            }
            Ok((response, Some(record)))
        }
        Err(e) => {
            // The secret must not outlive a lease nobody can revoke: undo it at once.
            tracing::error!(error = %e, "storing a new lease failed; revoking its secret");
            let undo = Request::revoke(
                &request.path,
                LeaseState::now(&lease.internal_data, lease.ttl),
            );
            let _ = api
                .engine
                .handle(api.engine_storage.clone(), api.system_view.clone(), &undo)
                .await;
            Err(EngineFailure::Plain {
                status: 500,
                message: format!("storing the lease failed: {e}"),
            })
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
    use crate::engine::stub::{Answer, StubSandbox};
    use crate::engine::{FixedLimit, Lease};
    use crate::{MemoryStorage, StorageError};

    /// Lease storage that reads nothing and refuses every write (a full disk).
    struct Full;

    #[async_trait::async_trait]
    impl Storage for Full {
        async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StorageError> {
            Ok(None)
        }
        async fn put(&self, _: &str, _: Vec<u8>) -> Result<(), StorageError> {
            Err(StorageError("no space left on device".into()))
        }
        async fn delete(&self, _: &str) -> Result<(), StorageError> {
            Ok(())
        }
        async fn list(&self, _: &str) -> Result<Vec<String>, StorageError> {
            Ok(vec![])
        }
    }

    async fn api(lease_storage: Arc<dyn Storage>) -> (Arc<Api>, Arc<StubSandbox>) {
        let stub = StubSandbox::new();
        let engine = Arc::new(Engine::new(stub.clone()));
        let engine_storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let system_view: Arc<dyn SystemView> = Arc::new(FixedLimit(Some(3600)));
        let leases = Leases::load(
            lease_storage,
            engine_storage.clone(),
            engine.clone(),
            "dockerhub",
            system_view.clone(),
        )
        .await
        .unwrap();
        let tokens =
            LoginTokens::load(Arc::new(MemoryStorage::new()), leases.clone(), 3600, |_| {
                true
            })
            .await
            .unwrap();
        let api = Api {
            front: Front {
                acl: vault_front::AccessControl::parse("").unwrap(),
                mount: "dockerhub".into(),
                storage_type: "redb",
            },
            engine,
            tasks: tokio_util::task::TaskTracker::new(),
            leases,
            tokens,
            auth: AuthMounts::default(),
            engine_storage,
            system_view,
            bodies: tokio::sync::Semaphore::new(1),
        };
        (Arc::new(api), stub)
    }

    fn grant(ttl: u64) -> super::super::tokens::Grant {
        super::super::tokens::Grant {
            mount: "jwt".into(),
            role: "ci".into(),
            display_name: "jwt-acme/app".into(),
            policies: vec!["ci".into()],
            no_default_policy: false,
            meta: Default::default(),
            ttl,
            max_ttl: 0,
            explicit_max_ttl: 0,
        }
    }

    #[tokio::test]
    async fn a_lease_made_with_a_login_token_ends_no_later_than_the_token() {
        let (api, stub) = api(Arc::new(MemoryStorage::new())).await;
        let (secret, token, _) = api.tokens.create(grant(60)).await.unwrap();
        stub.answer(token_answer());
        let (_, lease) = issue(api.clone(), write(), Some(token.clone()))
            .await
            .unwrap();
        let lease = lease.unwrap();
        assert_eq!(
            lease.token_accessor.as_deref(),
            Some(token.accessor.as_str())
        );
        let limit = stub.max_ttls()[0].expect("a limit");
        assert!(
            (59..=60).contains(&limit),
            "the token's time left, not 3600: {limit}"
        );
        // Without a login token, the server's limit.
        stub.answer(token_answer());
        issue(api.clone(), write(), None).await.unwrap();
        assert_eq!(stub.max_ttls()[1], Some(3600));

        api.tokens.revoke(&secret).await.unwrap();
        assert!(api.tokens.lookup(&secret).is_none());
        assert_eq!(
            api.leases.lookup(&lease.lease_id),
            None,
            "its lease ended with it"
        );
        let revoked = stub.last_request().unwrap();
        assert_eq!(revoked.operation, Operation::Revoke);
        assert_eq!(
            api.leases
                .list("dockerhub/token/hoeg/my-organization")
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_lease_whose_token_ended_during_the_request_is_revoked_at_once() {
        let (api, stub) = api(Arc::new(MemoryStorage::new())).await;
        let (secret, token, _) = api.tokens.create(grant(60)).await.unwrap();
        api.tokens.revoke(&secret).await.unwrap();
        stub.answer(token_answer());
        let failure = issue(api.clone(), write(), Some(token)).await.unwrap_err();
        assert_eq!(ApiError::from(failure).0.as_u16(), 403);
        assert!(
            api.leases
                .list("dockerhub/token/hoeg/my-organization")
                .is_empty()
        );
        let requests = stub.requests();
        assert_eq!(requests.len(), 2, "issued, then revoked");
        assert_eq!(requests[1].operation, Operation::Revoke);
    }

    fn token_answer() -> Answer {
        Answer::Response(EngineResponse {
            data: Some(r#"{"token":"dckr_pat_x"}"#.into()),
            lease: Some(Lease {
                ttl: 300,
                max_ttl: 3600,
                renewable: true,
                internal_data: r#"{"uuid":"u-1"}"#.into(),
            }),
            warnings: vec![],
        })
    }

    fn write() -> Request {
        Request {
            operation: Operation::Update,
            path: "token/hoeg/my-organization".into(),
            data: "{}".into(),
            display_name: None,
            entity_id: None,
            lease: None,
        }
    }

    #[tokio::test]
    async fn a_token_whose_lease_is_stored_is_answered_with_it() {
        let (api, stub) = api(Arc::new(MemoryStorage::new())).await;
        stub.answer(token_answer());
        let (_, lease) = issue(api.clone(), write(), None).await.unwrap();
        let lease = lease.expect("a lease");
        assert!(
            lease
                .lease_id
                .starts_with("dockerhub/token/hoeg/my-organization/")
        );
        assert_eq!(api.leases.lookup(&lease.lease_id), Some(lease));
    }

    #[tokio::test]
    async fn a_token_whose_lease_cannot_be_stored_is_revoked_at_once() {
        let (api, stub) = api(Arc::new(Full)).await;
        stub.answer(token_answer());
        let failure = issue(api, write(), None)
            .await
            .expect_err("no lease, no token");
        let ApiError(status, errors) = ApiError::from(failure);
        assert_eq!(status.as_u16(), 500);
        assert!(errors[0].contains("no space left on device"), "{errors:?}");
        assert!(
            !errors[0].contains("dckr_pat_x"),
            "the token is not in the error"
        );
        let requests = stub.requests();
        assert_eq!(requests.len(), 2, "issued, then revoked");
        let undo = &requests[1];
        assert_eq!(
            (undo.operation, undo.path.as_str()),
            (Operation::Revoke, "token/hoeg/my-organization")
        );
        assert_eq!(
            undo.lease.as_ref().unwrap().internal_data,
            r#"{"uuid":"u-1"}"#
        );
    }

    #[test]
    fn engine_errors_are_worded_as_openbao_words_a_plugins() {
        let answer = |e: CallError| {
            let ApiError(status, errors) = ApiError::from(EngineFailure::from(e));
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
}
