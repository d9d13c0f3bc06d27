//! `pb.Backend`: OpenBao's requests, translated into engine calls and back.
//!
//! The translation is mechanical: operations by name, JSON passed through, durations from
//! nanoseconds to seconds, lease state into `lease-state`, the mount's max lease TTL from the
//! SystemView when the engine asks for it, and engine errors onto the error types OpenBao
//! turns into HTTP statuses. Operations the engine does not know (OpenBao 2.7's `resolve-path`, for
//! instance) are answered as unsupported, which OpenBao expects.

use super::broker::Broker;
use super::help;
use super::proto::pb::backend_server::Backend;
use super::proto::pb::{
    self, Empty, HandleExistenceCheckArgs, HandleExistenceCheckReply, HandleRequestArgs,
    HandleRequestReply, InitializeArgs, InitializeReply, InvalidateKeyArgs, LeaseOptions, Paths,
    ProtoError, Secret, SetupArgs, SetupReply, SpecialPathsReply, TypeReply,
};
use super::storage::{OpenBaoStorage, SystemViewLimits};
use crate::runtime::{Datetime, EngineError, LeaseState, Operation, Request, Response, Runtime};
use crate::{CachedStorage, CallError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tonic::Status;

/// How long `Setup` waits for the server to announce the storage connection. Registration
/// runs the plugin with no storage at all, and `Setup` must succeed then too.
const STORAGE_ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

/// OpenBao's `ErrType` values (sdk/plugin/pb/translation.go).
mod err_type {
    pub const INTERNAL: u32 = 2;
    pub const CODED: u32 = 3;
    pub const UNSUPPORTED_OPERATION: u32 = 5;
    pub const UNSUPPORTED_PATH: u32 = 6;
    pub const INVALID_REQUEST: u32 = 7;
}

/// The connection to the mount's storage and system view, made at `Setup`.
struct Mount {
    storage: Arc<CachedStorage>,
    limits: Arc<SystemViewLimits>,
}

pub struct BackendService {
    runtime: Arc<Runtime>,
    broker: Broker,
    mount: OnceLock<Mount>,
}

impl BackendService {
    pub fn new(runtime: Arc<Runtime>, broker: Broker) -> BackendService {
        BackendService {
            runtime,
            broker,
            mount: OnceLock::new(),
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
                return match self.runtime.help().await {
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
        let outcome = self
            .runtime
            .handle(mount.storage.clone(), mount.limits.clone(), &engine_request)
            .await;
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
            Ok(response) => reply(to_proto(response, issue_time)),
            Err(e) => failure(&e),
        }
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
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

#[tonic::async_trait]
impl Backend for BackendService {
    async fn handle_request(
        &self,
        request: tonic::Request<HandleRequestArgs>,
    ) -> Result<tonic::Response<HandleRequestReply>, Status> {
        let request = request
            .into_inner()
            .request
            .ok_or_else(|| Status::invalid_argument("no request"))?;
        Ok(tonic::Response::new(self.handle(request).await))
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
        let reply = match self
            .runtime
            .existence_check(mount.storage.clone(), &engine_request)
            .await
        {
            Ok(None) => HandleExistenceCheckReply::default(),
            Ok(Some(exists)) => HandleExistenceCheckReply {
                check_found: true,
                exists,
                err: None,
            },
            Err(e) => HandleExistenceCheckReply {
                err: failure(&e).err,
                ..Default::default()
            },
        };
        Ok(tonic::Response::new(reply))
    }

    async fn cleanup(&self, _: tonic::Request<Empty>) -> Result<tonic::Response<Empty>, Status> {
        tracing::debug!("cleanup: the mount is going away");
        Ok(tonic::Response::new(Empty {}))
    }

    /// The engine caches nothing in memory: every call reads storage.
    async fn invalidate_key(
        &self,
        _: tonic::Request<InvalidateKeyArgs>,
    ) -> Result<tonic::Response<Empty>, Status> {
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
                let mount = Mount {
                    storage: Arc::new(CachedStorage::new(Arc::new(OpenBaoStorage::new(
                        channel.clone(),
                    )))),
                    limits: Arc::new(SystemViewLimits::new(channel)),
                };
                if self.mount.set(mount).is_err() {
                    tracing::warn!("Setup called twice; keeping the first storage connection");
                }
                tracing::info!(
                    version = env!("CARGO_PKG_VERSION"),
                    component = crate::runtime::component::sha256(),
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
    use crate::runtime::{Lease, UpstreamError};

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
