//! `pb.Backend`: OpenBao's requests, translated into engine calls and back.
//!
//! The translation is mechanical: operations by name, JSON passed through, durations from
//! nanoseconds to seconds, lease state into `lease-state`, the mount's max lease TTL and the
//! requester's entity from the SystemView when the engine asks for them, and engine errors onto the error types OpenBao
//! turns into HTTP statuses. Operations the engine does not know (OpenBao 2.7's `resolve-path`, for
//! instance) are answered as unsupported, which OpenBao expects.
//!
//! Two things depend on where the plugin runs. On a standby (OpenBao serves reads there,
//! and its storage is read-only), reads go straight to OpenBao's storage, a write answers
//! with OpenBao's read-only error so that OpenBao forwards the request to the active node,
//! and rollback is left to the active node. While a mount is being disabled, a token that
//! is issued anyway is deleted again, and at `Cleanup` the engine's pending token creations
//! are settled while the storage still exists.

use super::broker::Broker;
use super::help;
use super::proto::pb::backend_server::Backend;
use super::proto::pb::{
    self, Empty, HandleExistenceCheckArgs, HandleExistenceCheckReply, HandleRequestArgs,
    HandleRequestReply, InitializeArgs, InitializeReply, InvalidateKeyArgs, LeaseOptions, Paths,
    ProtoError, Secret, SetupArgs, SetupReply, SpecialPathsReply, TypeReply,
};
use super::storage::{CallStorage, MountState, OpenBaoStorage, OpenBaoSystemView};
use crate::engine::{
    Datetime, Engine, EngineError, Lease, LeaseState, Operation, Request, Response,
};
use crate::{CachedStorage, CallError, Storage};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::RwLock;
use tonic::Status;

/// How long `Setup` waits for the server to announce the storage connection. Registration
/// runs the plugin with no storage at all, and `Setup` must succeed then too.
const STORAGE_ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

/// How often an unmount looks again while it waits for pending creations to settle.
const LANDING_POLL: Duration = Duration::from_secs(3);

/// OpenBao's `ErrType` values (sdk/plugin/pb/translation.go).
mod err_type {
    /// A plain Go error: OpenBao matches its text (e.g. to forward a request).
    pub const UNKNOWN: u32 = 0;
    /// `errutil.UserError`: what Vault's framework answers when an existence check meets bad
    /// input (`FieldData.Validate`); OpenBao passes it on as a 400 with its text.
    pub const USER_ERROR: u32 = 1;
    pub const INTERNAL: u32 = 2;
    pub const CODED: u32 = 3;
    pub const UNSUPPORTED_OPERATION: u32 = 5;
    pub const UNSUPPORTED_PATH: u32 = 6;
    pub const INVALID_REQUEST: u32 = 7;
}

/// The connection to the mount's storage and system view, made at `Setup`.
struct Mount {
    /// What the engine reads and writes through.
    storage: Arc<dyn Storage>,
    /// The cache in front of the storage, on the active node only: there every write of
    /// the mount goes through this process. A standby's storage changes under it by raft
    /// replication, and OpenBao's invalidations do not cover every change (a snapshot
    /// installed from the leader purges OpenBao's own cache but tells no plugin), so a
    /// standby reads OpenBao's storage, whose cache OpenBao keeps current.
    cache: Option<Arc<CachedStorage>>,
    system_view: Arc<OpenBaoSystemView>,
    state: MountState,
    /// OpenBao said that this node is a standby.
    standby: bool,
}

pub struct BackendService {
    engine: Arc<Engine>,
    broker: Broker,
    mount: OnceLock<Mount>,
    /// Held shared by every engine call and exclusively by `Cleanup`, which so waits for
    /// the calls in flight before it settles what they may have left pending.
    calls: RwLock<()>,
    /// How long `Cleanup` waits for calls in flight: a call ends within the engine's time
    /// limit, so this is that limit and a margin.
    drain_wait: Duration,
    /// How long an unmount keeps settling pending creations (a Hub that fails the lookup, or
    /// may still carry out a creation whose answer was lost) before the mount's storage goes
    /// (`--unmount-wait`). OpenBao does not bound `Cleanup`.
    unmount_wait: Duration,
}

impl BackendService {
    /// `unmount_wait` is how long an unmount waits for Docker Hub to settle pending
    /// creations.
    pub fn new(engine: Arc<Engine>, broker: Broker, unmount_wait: Duration) -> BackendService {
        BackendService {
            drain_wait: engine.time_limit() + Duration::from_secs(5),
            engine,
            broker,
            mount: OnceLock::new(),
            calls: RwLock::new(()),
            unmount_wait,
        }
    }

    fn mount(&self) -> Result<&Mount, ProtoError> {
        self.mount.get().ok_or_else(|| ProtoError {
            err_type: err_type::INTERNAL,
            err_msg: "the plugin has no storage: OpenBao did not set up this mount".into(),
            err_code: 500,
        })
    }

    async fn handle(&self, request: pb::Request) -> HandleRequestReply {
        let operation = match operation(&request.operation) {
            Some(op) => op,
            None if request.operation == "help" => {
                return match self.engine.help().await {
                    Ok(engine_help) => reply(help::response(&engine_help, &request.path)),
                    Err(e) => failure(&e),
                };
            }
            None => {
                return HandleRequestReply {
                    response: None,
                    err: Some(ProtoError {
                        err_type: err_type::UNSUPPORTED_OPERATION,
                        err_msg: format!("unsupported operation {:?}", request.operation),
                        err_code: 405,
                    }),
                };
            }
        };
        let mount = match self.mount() {
            Ok(mount) => mount,
            Err(e) => {
                return HandleRequestReply {
                    response: None,
                    err: Some(e),
                };
            }
        };
        if operation == Operation::Rollback && mount.standby {
            // The active node runs the same rollback on the same records; a standby's view
            // may lag, and its Hub deletions would race the active node's. OpenBao's
            // rollback manager ignores a read-only answer (vault/rollback.go).
            tracing::debug!("rollback on a standby: left to the active node");
            return forward(READ_ONLY);
        }
        let issue_time = request
            .secret
            .as_ref()
            .and_then(|s| s.lease_options.as_ref())
            .and_then(|o| o.issue_time);
        let engine_request = Request {
            operation,
            path: request.path.clone(),
            data: if request.data.trim().is_empty() {
                "{}".into()
            } else {
                request.data
            },
            display_name: non_empty(request.display_name),
            entity_id: non_empty(request.entity_id),
            lease: request.secret.map(lease_state),
        };
        let storage = Arc::new(CallStorage::new(mount.storage.clone()));
        let _in_flight = self.calls.read().await;
        let outcome = self
            .engine
            .handle(storage.clone(), mount.system_view.clone(), &engine_request)
            .await;
        if let (Err(e), Some(read_only)) = (&outcome, storage.read_only()) {
            tracing::debug!(op = %request.operation, path = %request.path, error = %e, "storage is read-only on this node (a standby): OpenBao forwards the request to the active node");
            return forward(read_only);
        }
        // A 4xx is the caller's business (OpenBao's audit log has it); a 5xx is the operator's.
        match &outcome {
            Err(e) if e.http_status() >= 500 => {
                tracing::warn!(op = %request.operation, path = %request.path, status = e.http_status(), error = %e, "request failed")
            }
            Err(e) => {
                tracing::debug!(op = %request.operation, path = %request.path, status = e.http_status(), error = %e, "request refused")
            }
            Ok(_) => tracing::debug!(op = %request.operation, path = %request.path, "handled"),
        }
        match outcome {
            Ok(response) if is_empty(&response) => HandleRequestReply::default(),
            Ok(Response {
                lease: Some(lease), ..
            }) if operation != Operation::Renew && mount.state.tainted().await.unwrap_or(false) => {
                self.withdraw(mount, &engine_request.path, lease).await
            }
            Ok(response) => reply(to_proto(response, issue_time)),
            Err(e) => failure(&e),
        }
    }

    /// The answer to a request whose caller went away while the engine worked: a secret in
    /// it has no lease in OpenBao, so its token is deleted again at once.
    async fn abandoned(&self, path: &str, reply: HandleRequestReply) {
        let Some(secret) = reply.response.and_then(|r| r.secret) else {
            tracing::debug!(path, "a request ended after its caller went away");
            return;
        };
        let Ok(mount) = self.mount() else {
            return;
        };
        let lease = Lease {
            internal_data: secret.internal_data,
            ttl: secret
                .lease_options
                .map_or(0, |o| u64::try_from(o.ttl / 1_000_000_000).unwrap_or(0)),
            max_ttl: 0,
            renewable: false,
        };
        match self.delete_again(mount, path, lease).await {
            Ok(_) => tracing::warn!(
                path,
                "the caller went away before its token was issued: the token was deleted again"
            ),
            Err(e) => {
                tracing::error!(path, error = %e, "the caller went away before its token was issued, and the token could not be deleted: rollback deletes it once its lease would have ended")
            }
        }
    }

    /// A token issued while the mount is being disabled or moved. OpenBao taints the mount
    /// first and then revokes its leases (vault/mount.go `unmountInternal`): a lease
    /// registered for this token could come after that revocation, and could never be
    /// revoked once the mount is gone. The token is deleted again, and the caller gets an
    /// error instead.
    async fn withdraw(&self, mount: &Mount, path: &str, lease: Lease) -> HandleRequestReply {
        match self.delete_again(mount, path, lease).await {
            Ok(_) => tracing::info!(
                path,
                "a token issued while the mount was being disabled or moved was deleted again"
            ),
            Err(e) => {
                tracing::error!(path, error = %e, "a token issued while the mount was being disabled or moved could not be deleted: it stays at Docker Hub until the Hub expires it")
            }
        }
        HandleRequestReply {
            response: None,
            err: Some(ProtoError {
                err_type: err_type::CODED,
                err_msg: "the mount is being disabled or moved: no token is issued".into(),
                err_code: 503,
            }),
        }
    }

    /// Revoke, through the engine, a lease that OpenBao never got.
    async fn delete_again(
        &self,
        mount: &Mount,
        path: &str,
        lease: Lease,
    ) -> Result<Response, CallError> {
        let revoke = Request::revoke(path, LeaseState::now(&lease.internal_data, lease.ttl));
        self.engine
            .handle(mount.storage.clone(), mount.system_view.clone(), &revoke)
            .await
    }

    /// Delete at the Hub every token whose creation is pending (`rollback` with `immediate`),
    /// and every token the engine still tracks, whose lease OpenBao has already ended
    /// (`leases_ended`): after this the mount's storage, and with it the records that name
    /// those tokens, is deleted. While rollback fails, or the engine waits for tokens a slow Hub may
    /// still make (`awaiting_creations`), it runs again every [`LANDING_POLL`], for up to
    /// `unmount_wait`; then it logs an ERROR naming the labels of the tokens left.
    async fn settle_pending_creations(&self, mount: &Mount) {
        let started = Instant::now();
        let mut failures = 0;
        loop {
            // OpenBao has revoked every lease of the mount before `Cleanup`: a token the
            // engine still tracks is one whose lease was forced out (`lease revoke -force`).
            match self
                .engine
                .rollback(mount.storage.clone(), true, true)
                .await
            {
                Ok(response) => {
                    let labels = awaiting_creations(&response);
                    let awaiting = labels.len();
                    if awaiting == 0 {
                        tracing::info!(
                            "the mount is being disabled: every pending token creation is settled"
                        );
                        return;
                    }
                    if started.elapsed() >= self.unmount_wait {
                        tracing::error!(
                            awaiting,
                            token_labels = labels.join(", "),
                            "the mount is being disabled while Docker Hub may still carry out token creations whose answer was lost: such tokens stay at Docker Hub until the Hub expires them"
                        );
                        return;
                    }
                    tracing::info!(
                        awaiting,
                        "the mount is being disabled: waiting for Docker Hub to carry out (or not) token creations whose answer was lost"
                    );
                    tokio::time::sleep(LANDING_POLL).await;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(attempt = failures, error = %e, "settling pending token creations before the mount's storage is deleted failed");
                    if started.elapsed() >= self.unmount_wait {
                        tracing::error!(
                            error = %e,
                            "the mount is being disabled with token creations still pending (the error names their token labels): OpenBao removes the mount all the same, and their tokens stay at Docker Hub until the Hub expires them"
                        );
                        return;
                    }
                    tokio::time::sleep(LANDING_POLL).await;
                }
            }
        }
    }
}

/// The creations whose token Docker Hub does not list yet but may still
/// make, by their token labels (`awaiting_token_labels` in a rollback's answer); none when
/// the answer has none.
fn awaiting_creations(response: &Response) -> Vec<String> {
    let data = response
        .data
        .as_deref()
        .and_then(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .unwrap_or_default();
    data["awaiting_token_labels"]
        .as_array()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// OpenBao's `logical.ErrReadOnly` text (sdk/logical/storage.go).
const READ_ONLY: &str = super::storage::FORWARD_ERRORS[0];

/// An error OpenBao answers by forwarding the request to the active node: a plain error
/// carrying the text OpenBao looks for, as a Go plugin returns `logical.ErrReadOnly`.
fn forward(text: &str) -> HandleRequestReply {
    HandleRequestReply {
        response: None,
        err: Some(ProtoError {
            err_type: err_type::UNKNOWN,
            err_msg: text.to_string(),
            err_code: 0,
        }),
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// Whether an answer to this operation can carry a new secret, whose token must be deleted
/// again when its caller went away: only a write. A renewal's answer names a lease that
/// OpenBao keeps.
fn issues_secrets(operation: &str) -> bool {
    matches!(operation, "create" | "update")
}

fn operation(name: &str) -> Option<Operation> {
    Some(match name {
        "read" => Operation::Read,
        "create" => Operation::Create,
        "update" => Operation::Update,
        "delete" => Operation::Delete,
        "list" => Operation::List,
        "renew" => Operation::Renew,
        "revoke" => Operation::Revoke,
        "rollback" => Operation::Rollback,
        _ => return None,
    })
}

fn seconds(nanos: i64) -> u64 {
    u64::try_from(nanos / 1_000_000_000).unwrap_or(0)
}

fn nanos(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX / 1_000_000_000) * 1_000_000_000
}

fn lease_state(secret: Secret) -> LeaseState {
    let options = secret.lease_options.unwrap_or_default();
    let issued = options.issue_time.unwrap_or_default();
    LeaseState {
        internal_data: secret.internal_data,
        issue_time: Datetime {
            seconds: u64::try_from(issued.seconds).unwrap_or(0),
            nanoseconds: u32::try_from(issued.nanos).unwrap_or(0),
        },
        ttl: seconds(options.ttl),
        increment: seconds(options.increment),
    }
}

/// Nothing to say: OpenBao answers a read with 404 and a write with 204.
fn is_empty(response: &Response) -> bool {
    response.data.is_none() && response.lease.is_none() && response.warnings.is_empty()
}

/// A renewed lease keeps its original issue time; a new one starts now.
fn to_proto(
    response: Response,
    renewed_issue_time: Option<prost_types::Timestamp>,
) -> pb::Response {
    let secret = response.lease.map(|lease| Secret {
        lease_options: Some(LeaseOptions {
            ttl: nanos(lease.ttl),
            renewable: lease.renewable,
            increment: 0,
            issue_time: Some(
                renewed_issue_time
                    .unwrap_or_else(|| prost_types::Timestamp::from(SystemTime::now())),
            ),
            max_ttl: nanos(lease.max_ttl),
        }),
        internal_data: lease.internal_data,
        lease_id: String::new(),
    });
    pb::Response {
        secret,
        // OpenBao fails on an empty string ("unexpected end of JSON input").
        data: response.data.unwrap_or_else(|| "null".to_string()),
        warnings: response.warnings,
    }
}

fn reply(response: pb::Response) -> HandleRequestReply {
    HandleRequestReply {
        response: Some(response),
        err: None,
    }
}

/// Engine errors as OpenBao understands them. A 400 carries its message in the response's
/// `error` field, as Vault's `logical.ErrorResponse` does; other statuses are coded errors.
fn failure(error: &CallError) -> HandleRequestReply {
    let message = error.to_string();
    let (err_type, response) = match error {
        CallError::Engine(EngineError::InvalidRequest(_)) => {
            let data = serde_json::json!({ "error": message }).to_string();
            (
                err_type::INVALID_REQUEST,
                Some(pb::Response {
                    data,
                    ..Default::default()
                }),
            )
        }
        CallError::Engine(EngineError::UnsupportedPath(_)) => (err_type::UNSUPPORTED_PATH, None),
        CallError::Engine(EngineError::UnsupportedOperation(_)) => {
            (err_type::UNSUPPORTED_OPERATION, None)
        }
        _ => (err_type::CODED, None),
    };
    HandleRequestReply {
        response,
        err: Some(ProtoError {
            err_type,
            err_msg: message,
            err_code: i64::from(error.http_status()),
        }),
    }
}

// Shared, so that a write's engine call can run on its own task: OpenBao cancels the gRPC
// call when its client goes away (a CI job cancelled, a client timeout shorter than the
// Hub's latency), and a write dropped mid-way would leave a token the Hub made with neither
// a lease nor a settled write-ahead record until rollback's minimum age. Other operations
// run on the request's task: dropping them leaves nothing behind (a revocation OpenBao did
// not see succeed is retried; its Hub DELETE is idempotent).
#[tonic::async_trait]
impl Backend for Arc<BackendService> {
    async fn handle_request(
        &self,
        request: tonic::Request<HandleRequestArgs>,
    ) -> Result<tonic::Response<HandleRequestReply>, Status> {
        let request = request
            .into_inner()
            .request
            .ok_or_else(|| Status::invalid_argument("no request"))?;
        if !issues_secrets(&request.operation) {
            return Ok(tonic::Response::new(self.handle(request).await));
        }
        let service = Arc::clone(self);
        let (answer, answered) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let path = request.path.clone();
            let reply = service.handle(request).await;
            if let Err(reply) = answer.send(reply) {
                service.abandoned(&path, reply).await;
            }
        });
        let reply = answered
            .await
            .map_err(|_| Status::internal("the request's task ended without an answer"))?;
        Ok(tonic::Response::new(reply))
    }

    async fn special_paths(
        &self,
        _: tonic::Request<Empty>,
    ) -> Result<tonic::Response<SpecialPathsReply>, Status> {
        Ok(tonic::Response::new(SpecialPathsReply {
            paths: Some(Paths {
                // Where the engine keeps passwords and Hub sessions: seal-wrapped where the
                // server can.
                seal_wrap_storage: vec!["config/".into(), "session/".into()],
                ..Default::default()
            }),
        }))
    }

    async fn handle_existence_check(
        &self,
        request: tonic::Request<HandleExistenceCheckArgs>,
    ) -> Result<tonic::Response<HandleExistenceCheckReply>, Status> {
        let request = request
            .into_inner()
            .request
            .ok_or_else(|| Status::invalid_argument("no request"))?;
        let mount = match self.mount() {
            Ok(mount) => mount,
            Err(e) => {
                return Ok(tonic::Response::new(HandleExistenceCheckReply {
                    err: Some(e),
                    ..Default::default()
                }));
            }
        };
        let engine_request = Request {
            operation: operation(&request.operation).unwrap_or(Operation::Update),
            path: request.path,
            data: "{}".into(),
            display_name: None,
            entity_id: None,
            lease: None,
        };
        let outcome = {
            let _in_flight = self.calls.read().await;
            self.engine
                .existence_check(mount.storage.clone(), &engine_request)
                .await
        };
        let reply = match outcome {
            Ok(None) => HandleExistenceCheckReply::default(),
            Ok(Some(exists)) => HandleExistenceCheckReply {
                check_found: true,
                exists,
                err: None,
            },
            // Any other error from an existence check is a 500 in OpenBao ("failed to run
            // existence check"); bad input in the path is the caller's, as in Vault.
            Err(CallError::Engine(EngineError::InvalidRequest(message))) => {
                HandleExistenceCheckReply {
                    err: Some(ProtoError {
                        err_type: err_type::USER_ERROR,
                        err_msg: message,
                        err_code: 400,
                    }),
                    ..Default::default()
                }
            }
            Err(e) => HandleExistenceCheckReply {
                err: failure(&e).err,
                ..Default::default()
            },
        };
        Ok(tonic::Response::new(reply))
    }

    /// OpenBao calls `Cleanup` before it stops the plugin: at unmount (the mount's storage is
    /// deleted right after), and also at seal, step-down, plugin reload and namespace
    /// teardown, where the storage stays. Pending creations are settled only when OpenBao
    /// says the mount is being disabled (`Tainted`) and this node is the active one: an
    /// immediate rollback where the storage stays could delete at the Hub a token whose
    /// creation is in flight on another node, and where it stays the periodic rollback
    /// settles the records later anyway.
    async fn cleanup(&self, _: tonic::Request<Empty>) -> Result<tonic::Response<Empty>, Status> {
        let Some(mount) = self.mount.get() else {
            return Ok(tonic::Response::new(Empty {}));
        };
        match mount.state.tainted().await {
            Ok(true) if !mount.standby => {}
            Ok(true) => {
                tracing::debug!(
                    "cleanup: the mount is being disabled; the active node settles its pending creations"
                );
                return Ok(tonic::Response::new(Empty {}));
            }
            Ok(false) => {
                tracing::debug!(
                    "cleanup: the mount stays (seal, step-down or reload); rollback settles pending creations later"
                );
                return Ok(tonic::Response::new(Empty {}));
            }
            Err(e) => {
                tracing::warn!(error = %e.message(), "cleanup: OpenBao did not say whether the mount is being disabled; pending creations are left to rollback");
                return Ok(tonic::Response::new(Empty {}));
            }
        }
        // OpenBao's router already waited for the requests it routed here (`Router.Taint`
        // takes the route's lock); this also covers any other engine call still running.
        let _no_calls = match tokio::time::timeout(self.drain_wait, self.calls.write()).await {
            Ok(guard) => Some(guard),
            Err(_) => {
                tracing::warn!(wait = ?self.drain_wait, "cleanup: engine calls still in flight");
                None
            }
        };
        self.settle_pending_creations(mount).await;
        Ok(tonic::Response::new(Empty {}))
    }

    /// OpenBao reports a key that changed without this process writing it (on a standby,
    /// after raft replication); the cache, where there is one, forgets it.
    async fn invalidate_key(
        &self,
        request: tonic::Request<InvalidateKeyArgs>,
    ) -> Result<tonic::Response<Empty>, Status> {
        if let Some(cache) = self.mount.get().and_then(|m| m.cache.as_ref()) {
            cache.invalidate(&request.into_inner().key);
        }
        Ok(tonic::Response::new(Empty {}))
    }

    async fn setup(
        &self,
        request: tonic::Request<SetupArgs>,
    ) -> Result<tonic::Response<SetupReply>, Status> {
        let args = request.into_inner();
        match self
            .broker
            .dial(args.broker_id, STORAGE_ANNOUNCE_WAIT)
            .await
        {
            Ok(channel) => {
                let state = MountState::new(channel.clone());
                let standby = match state.standby().await {
                    Ok(standby) => Some(standby),
                    Err(e) => {
                        tracing::warn!(error = %e.message(), "OpenBao did not say whether this node is a standby; reading storage uncached");
                        None
                    }
                };
                let openbao: Arc<dyn Storage> = Arc::new(OpenBaoStorage::new(channel.clone()));
                let cache =
                    (standby == Some(false)).then(|| Arc::new(CachedStorage::new(openbao.clone())));
                let mount = Mount {
                    storage: match &cache {
                        Some(cache) => cache.clone(),
                        None => openbao,
                    },
                    cache,
                    system_view: Arc::new(OpenBaoSystemView::new(channel, &args.backend_uuid)),
                    state,
                    standby: standby == Some(true),
                };
                if self.mount.set(mount).is_err() {
                    tracing::warn!("Setup called twice; keeping the first storage connection");
                }
                tracing::info!(
                    version = env!("CARGO_PKG_VERSION"),
                    component = crate::runtime::component::sha256(),
                    standby,
                    "mounted"
                );
            }
            Err(e) => tracing::debug!(error = %e, "setup without storage (plugin registration)"),
        }
        Ok(tonic::Response::new(SetupReply::default()))
    }

    async fn initialize(
        &self,
        _: tonic::Request<InitializeArgs>,
    ) -> Result<tonic::Response<InitializeReply>, Status> {
        Ok(tonic::Response::new(InitializeReply::default()))
    }

    /// 1: a logical backend, i.e. a secrets engine.
    async fn r#type(&self, _: tonic::Request<Empty>) -> Result<tonic::Response<TypeReply>, Status> {
        Ok(tonic::Response::new(TypeReply { r#type: 1 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStorage;
    use crate::engine::UpstreamError;
    use crate::engine::stub::{Answer, StubSandbox};

    /// The plugin with a mount on `storage`, on a standby or not, and the stub engine it
    /// calls. Nothing answers the system view: these calls must not need it.
    fn mounted(
        storage: Arc<dyn Storage>,
        standby: bool,
    ) -> (Arc<BackendService>, Arc<StubSandbox>) {
        mounted_waiting(storage, standby, Duration::from_secs(120))
    }

    /// As [`mounted`], with an unmount that waits `unmount_wait` for pending creations.
    fn mounted_waiting(
        storage: Arc<dyn Storage>,
        standby: bool,
        unmount_wait: Duration,
    ) -> (Arc<BackendService>, Arc<StubSandbox>) {
        let stub = StubSandbox::new();
        let identity = super::super::tls::Identity::generate().unwrap();
        let broker =
            Broker::new(super::super::tls::client_config(&identity, &identity.cert).unwrap());
        let service =
            BackendService::new(Arc::new(Engine::new(stub.clone())), broker, unmount_wait);
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let _ = service.mount.set(Mount {
            storage,
            cache: None,
            system_view: Arc::new(OpenBaoSystemView::new(channel.clone(), "")),
            state: MountState::new(channel),
            standby,
        });
        (Arc::new(service), stub)
    }

    fn request(operation: &str, path: &str, data: serde_json::Value) -> pb::Request {
        pb::Request {
            operation: operation.into(),
            path: path.into(),
            data: data.to_string(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_write_that_meets_read_only_storage_is_forwarded() {
        let standby = Arc::new(super::super::storage::tests::Standby(MemoryStorage::new()));
        let (service, stub) = mounted(standby, true);
        stub.answer(Answer::Write {
            key: "config/hoeg".into(),
        });
        let reply = service
            .handle(request(
                "update",
                "config/hoeg",
                serde_json::json!({"namespace": "hoeg", "password": "p", "verify": false}),
            ))
            .await;
        let err = reply.err.expect("an error");
        assert_eq!(
            (err.err_type, err.err_msg.as_str()),
            (err_type::UNKNOWN, "cannot write to readonly storage"),
            "OpenBao forwards on exactly this text"
        );

        let reply = service
            .handle(request("read", "config/hoeg", serde_json::Value::Null))
            .await;
        assert!(reply.err.is_none(), "reads are answered on the standby");
    }

    #[test]
    fn only_a_writes_abandoned_answer_is_withdrawn() {
        for (operation, withdrawn) in [
            ("create", true),
            ("update", true),
            ("renew", false),
            ("read", false),
            ("revoke", false),
            ("rollback", false),
        ] {
            assert_eq!(issues_secrets(operation), withdrawn, "{operation}");
        }
    }

    #[tokio::test]
    async fn a_key_openbao_reports_changed_is_read_again() {
        let storage = Arc::new(MemoryStorage::new());
        let cache = Arc::new(CachedStorage::new(storage.clone()));
        let (mut service, _) = mounted(cache.clone(), false);
        Arc::get_mut(&mut service)
            .unwrap()
            .mount
            .get_mut()
            .unwrap()
            .cache = Some(cache.clone());
        cache.put("config/a", b"1".to_vec()).await.unwrap();
        storage.put("config/a", b"2".to_vec()).await.unwrap();
        assert_eq!(cache.get("config/a").await.unwrap(), Some(b"1".to_vec()));

        service
            .invalidate_key(tonic::Request::new(InvalidateKeyArgs {
                key: "config/a".into(),
            }))
            .await
            .unwrap();
        assert_eq!(cache.get("config/a").await.unwrap(), Some(b"2".to_vec()));
    }

    #[tokio::test]
    async fn a_standby_leaves_rollback_to_the_active_node() {
        let storage = Arc::new(MemoryStorage::new());
        // A write-ahead record of any age: rollback would read it and go to the Hub.
        storage
            .put(
                "wal/0",
                br#"{"account":"hoeg","token_label":"x","created_at":0}"#.to_vec(),
            )
            .await
            .unwrap();
        let (service, stub) = mounted(storage.clone(), true);
        let reply = service
            .handle(request("rollback", "", serde_json::Value::Null))
            .await;
        assert_eq!(
            reply.err.map(|e| e.err_msg),
            Some("cannot write to readonly storage".to_string())
        );
        assert_eq!(stub.calls(), 0, "the engine did not run");
        assert_eq!(storage.keys(), ["wal/0"]);
    }

    /// A secret in an answer nobody received: what [`BackendService::abandoned`] gets.
    fn abandoned_reply() -> HandleRequestReply {
        reply(to_proto(
            Response {
                data: Some("{}".into()),
                lease: Some(Lease {
                    ttl: 300,
                    max_ttl: 3600,
                    renewable: true,
                    internal_data: r#"{"uuid":"u-1"}"#.into(),
                }),
                warnings: vec![],
            },
            None,
        ))
    }

    #[tokio::test]
    async fn the_token_of_an_answer_nobody_received_is_revoked_again() {
        let (service, stub) = mounted(Arc::new(MemoryStorage::new()), false);
        service
            .abandoned("token/hoeg/my-organization", abandoned_reply())
            .await;
        let revoke = stub.last_request().expect("a revocation");
        assert_eq!(
            (revoke.operation, revoke.path.as_str()),
            (Operation::Revoke, "token/hoeg/my-organization")
        );
        let lease = revoke.lease.expect("the lease to revoke");
        assert_eq!(
            (lease.internal_data.as_str(), lease.ttl),
            (r#"{"uuid":"u-1"}"#, 300)
        );

        // An answer with no secret leaves nothing to revoke.
        service
            .abandoned("config/hoeg", HandleRequestReply::default())
            .await;
        assert_eq!(stub.calls(), 1);
    }

    #[tokio::test]
    async fn an_unmount_settles_pending_creations_and_ends_what_leases_left() {
        let (service, stub) = mounted(Arc::new(MemoryStorage::new()), false);
        service
            .settle_pending_creations(service.mount().unwrap())
            .await;
        let rollback = stub.requests();
        assert_eq!(rollback.len(), 1, "nothing pending: one rollback");
        assert_eq!(rollback[0].operation, Operation::Rollback);
        let data: serde_json::Value = serde_json::from_str(&rollback[0].data).unwrap();
        assert_eq!(
            data,
            serde_json::json!({"immediate": true, "leases_ended": true})
        );
    }

    #[tokio::test]
    async fn an_unmount_waits_for_creations_the_hub_may_still_make() {
        let (service, stub) = mounted(Arc::new(MemoryStorage::new()), false);
        stub.answer(Answer::Response(Response {
            data: Some(r#"{"awaiting_token_labels":["release-build"]}"#.into()),
            lease: None,
            warnings: vec![],
        }));
        stub.answer(Answer::Error(EngineError::Internal("storage".into())));
        service
            .settle_pending_creations(service.mount().unwrap())
            .await;
        assert_eq!(
            stub.calls(),
            3,
            "asked again after an awaited creation and after a failure, until settled"
        );
    }

    #[tokio::test]
    async fn an_unmount_stops_waiting_after_unmount_wait() {
        let (service, stub) =
            mounted_waiting(Arc::new(MemoryStorage::new()), false, Duration::ZERO);
        stub.answer(Answer::Error(EngineError::Internal("storage".into())));
        service
            .settle_pending_creations(service.mount().unwrap())
            .await;
        assert_eq!(stub.calls(), 1);
    }

    #[tokio::test]
    async fn existence_checks_reach_the_engine_only_where_its_help_declares_one() {
        let (service, stub) = mounted(Arc::new(MemoryStorage::new()), false);
        stub.declare_existence_check("config/[^/]+$");
        let check = |path: &str| {
            tonic::Request::new(HandleExistenceCheckArgs {
                request: Some(request("update", path, serde_json::Value::Null)),
                ..Default::default()
            })
        };
        let reply = service
            .handle_existence_check(check("token/hoeg/x"))
            .await
            .unwrap()
            .into_inner();
        assert!(!reply.check_found);
        let reply = service
            .handle_existence_check(check("config/hoeg"))
            .await
            .unwrap()
            .into_inner();
        assert!(reply.check_found && !reply.exists);
        assert_eq!(stub.existence_checks(), 1);
    }

    #[test]
    fn every_engine_error_gets_vaults_status() {
        let cases = [
            (
                EngineError::InvalidRequest("bad ttl".into()),
                err_type::INVALID_REQUEST,
                400,
            ),
            (
                EngineError::PermissionDenied("namespace x".into()),
                err_type::CODED,
                403,
            ),
            (
                EngineError::UnsupportedPath("x".into()),
                err_type::UNSUPPORTED_PATH,
                404,
            ),
            (
                EngineError::UnsupportedOperation("x".into()),
                err_type::UNSUPPORTED_OPERATION,
                405,
            ),
            (
                EngineError::Upstream(UpstreamError {
                    status: 503,
                    message: "Hub down".into(),
                    retry_after: None,
                }),
                err_type::CODED,
                502,
            ),
            (EngineError::Internal("disk".into()), err_type::CODED, 500),
        ];
        for (error, expected_type, status) in cases {
            let reply = failure(&CallError::Engine(error));
            let err = reply.err.unwrap();
            assert_eq!((err.err_type, err.err_code), (expected_type, status));
            assert!(!err.err_msg.is_empty());
            if status == 400 {
                let data: serde_json::Value =
                    serde_json::from_str(&reply.response.unwrap().data).unwrap();
                assert_eq!(data["error"], "bad ttl");
            }
        }
        let timeout = failure(&CallError::TimeLimit(Duration::from_secs(1)))
            .err
            .unwrap();
        assert_eq!((timeout.err_type, timeout.err_code), (err_type::CODED, 504));
    }

    #[test]
    fn leases_travel_in_nanoseconds_and_keep_their_issue_time() {
        let response = Response {
            data: Some("{\"token\":\"x\"}".into()),
            lease: Some(Lease {
                ttl: 300,
                max_ttl: 3600,
                renewable: true,
                internal_data: "{\"uuid\":\"u\"}".into(),
            }),
            warnings: vec![],
        };
        let issued = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        let proto = to_proto(response.clone(), Some(issued));
        let options = proto.secret.as_ref().unwrap().lease_options.unwrap();
        assert_eq!(
            (options.ttl, options.max_ttl),
            (300_000_000_000, 3_600_000_000_000)
        );
        assert_eq!(options.issue_time, Some(issued));
        let fresh = to_proto(response, None)
            .secret
            .unwrap()
            .lease_options
            .unwrap();
        assert!(fresh.issue_time.unwrap().seconds > 1_700_000_000);

        let state = lease_state(proto.secret.unwrap());
        assert_eq!((state.ttl, state.issue_time.seconds), (300, 1_700_000_000));
    }

    #[test]
    fn operations_by_name() {
        assert_eq!(operation("update"), Some(Operation::Update));
        assert_eq!(operation("rollback"), Some(Operation::Rollback));
        assert_eq!(operation("resolve-path"), None);
        assert_eq!(operation("patch"), None);
        assert_eq!(
            to_proto(
                Response {
                    data: None,
                    lease: None,
                    warnings: vec!["w".into()]
                },
                None
            )
            .data,
            "null"
        );
    }
}
