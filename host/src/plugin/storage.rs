//! The mount's storage, system view (its lease limit, the requester's identity) and state,
//! served by OpenBao over the broker connection.

use super::proto::logical;
use super::proto::pb::storage_client::StorageClient;
use super::proto::pb::system_view_client::SystemViewClient;
use super::proto::pb::{
    Empty, EntityInfoArgs, StorageDeleteArgs, StorageEntry, StorageGetArgs, StorageListArgs,
    StoragePutArgs,
};
use crate::engine::{Entity, EntityAlias, SystemView};
use crate::storage::{Storage, StorageError};
use std::sync::{Arc, Mutex};
use tonic::transport::Channel;

/// [`Storage`] through OpenBao's `pb.Storage`: the same barrier-encrypted storage that
/// Go plugins get.
pub struct OpenBaoStorage {
    client: StorageClient<Channel>,
}

impl OpenBaoStorage {
    pub fn new(channel: Channel) -> OpenBaoStorage {
        OpenBaoStorage {
            client: StorageClient::new(channel),
        }
    }
}

fn failed(what: &str, key: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError(format!("OpenBao storage {what} {key:?} failed: {e}"))
}

/// OpenBao reports storage failures in the reply's `err` field.
fn check(what: &str, key: &str, err: String) -> Result<(), StorageError> {
    if err.is_empty() {
        Ok(())
    } else {
        Err(failed(what, key, err))
    }
}

#[async_trait::async_trait]
impl Storage for OpenBaoStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let reply = self
            .client
            .clone()
            .get(StorageGetArgs {
                key: key.to_string(),
            })
            .await
            .map_err(|e| failed("get", key, e.message()))?
            .into_inner();
        check("get", key, reply.err)?;
        Ok(reply.entry.map(|e| e.value))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let entry = StorageEntry {
            key: key.to_string(),
            value,
            seal_wrap: false,
        };
        let reply = self
            .client
            .clone()
            .put(StoragePutArgs { entry: Some(entry) })
            .await
            .map_err(|e| failed("put", key, e.message()))?
            .into_inner();
        check("put", key, reply.err)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let reply = self
            .client
            .clone()
            .delete(StorageDeleteArgs {
                key: key.to_string(),
            })
            .await
            .map_err(|e| failed("delete", key, e.message()))?
            .into_inner();
        check("delete", key, reply.err)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let reply = self
            .client
            .clone()
            .list(StorageListArgs {
                prefix: prefix.to_string(),
            })
            .await
            .map_err(|e| failed("list", prefix, e.message()))?
            .into_inner();
        check("list", prefix, reply.err)?;
        Ok(reply.keys)
    }
}

/// The engine's [`SystemView`] in OpenBao, asked of its `pb.SystemView` each time the engine
/// wants an answer: the mount's max lease TTL (so that a tune takes effect at the next issue
/// or renewal), and the requester's entity (`EntityInfo`, as a Go plugin's
/// `System().EntityInfo`); and the mount's backend UUID, which OpenBao sends once, at
/// `Setup` (`logical.BackendConfig.BackendUUID`, made when the mount was enabled and kept in
/// the mount table).
pub struct OpenBaoSystemView {
    client: SystemViewClient<Channel>,
    backend_uuid: Option<String>,
}

impl OpenBaoSystemView {
    /// `backend_uuid` as `SetupArgs` carries it; empty: none (an older server).
    pub fn new(channel: Channel, backend_uuid: &str) -> OpenBaoSystemView {
        OpenBaoSystemView {
            client: SystemViewClient::new(channel),
            backend_uuid: Some(backend_uuid.to_string()).filter(|id| !id.is_empty()),
        }
    }
}

#[async_trait::async_trait]
impl SystemView for OpenBaoSystemView {
    fn mount_id(&self) -> Option<String> {
        self.backend_uuid.clone()
    }

    async fn max_ttl(&self) -> Option<u64> {
        match self.client.clone().max_lease_ttl(Empty {}).await {
            Ok(reply) => u64::try_from(reply.into_inner().ttl / 1_000_000_000).ok(),
            Err(e) => {
                // OpenBao still caps the lease at the mount's limit; only the Hub-side expiry
                // falls back to the account's max_ttl.
                tracing::warn!(error = %e.message(), "could not read the mount's max lease TTL");
                None
            }
        }
    }

    /// OpenBao answers no entity for an id it does not know (and for none), and reports a
    /// failure of its identity store in the reply's `err`.
    async fn entity(&self, entity_id: &str) -> Result<Option<Entity>, String> {
        let failed = |why: &str| format!("OpenBao could not look up entity {entity_id:?}: {why}");
        let reply = self
            .client
            .clone()
            .entity_info(EntityInfoArgs {
                entity_id: entity_id.to_string(),
            })
            .await
            .map_err(|e| failed(e.message()))?
            .into_inner();
        if !reply.err.is_empty() {
            return Err(failed(&reply.err));
        }
        Ok(reply.entity.map(entity))
    }
}

/// OpenBao's `logical.Entity` as the engine's record; metadata sorted by key.
fn entity(e: logical::Entity) -> Entity {
    let sorted = |map: std::collections::HashMap<String, String>| {
        let mut pairs: Vec<_> = map.into_iter().collect();
        pairs.sort();
        pairs
    };
    Entity {
        id: e.id,
        name: e.name,
        metadata: sorted(e.metadata),
        aliases: e
            .aliases
            .into_iter()
            .map(|a| EntityAlias {
                id: a.id,
                mount_accessor: a.mount_accessor,
                mount_type: a.mount_type,
                name: a.name,
                metadata: sorted(a.metadata),
            })
            .collect(),
    }
}

/// OpenBao's `ReplicationPerformanceStandby` flag (sdk/helper/consts/replication.go: `1 << 14`),
/// set in `ReplicationState` on a standby that serves reads (ha.go, `runReadEnabledStandby`).
const PERFORMANCE_STANDBY: i32 = 1 << 14;

/// What OpenBao tells the plugin about its mount and node, asked of `pb.SystemView`.
#[derive(Clone)]
pub struct MountState {
    client: SystemViewClient<Channel>,
}

impl MountState {
    pub fn new(channel: Channel) -> MountState {
        MountState {
            client: SystemViewClient::new(channel),
        }
    }

    /// Whether the mount is being disabled or moved (`SystemView.Tainted`): OpenBao taints the
    /// mount entry before the last rollback and revocations of an unmount, and never at seal,
    /// step-down or plugin reload (vault/mount.go `unmountInternal`, `remountSecretsEngine`).
    pub async fn tainted(&self) -> Result<bool, tonic::Status> {
        Ok(self
            .client
            .clone()
            .tainted(Empty {})
            .await?
            .into_inner()
            .tainted)
    }

    /// Whether this node is a standby (its storage is read-only; OpenBao forwards writes to
    /// the active node). A plugin process lives within one HA state: OpenBao tears every
    /// mount down (`Cleanup`, then the process is killed) before a node changes state.
    pub async fn standby(&self) -> Result<bool, tonic::Status> {
        let state = self
            .client
            .clone()
            .replication_state(Empty {})
            .await?
            .into_inner()
            .state;
        Ok(state & PERFORMANCE_STANDBY != 0)
    }
}

/// The texts of OpenBao's errors that make it forward a request to the active node instead of
/// answering it (sdk/logical/error.go `ShouldForward`: `ErrReadOnly`, `ErrPerfStandbyPleaseForward`,
/// raft's "node is not the leader", `consts.ErrStandby`). OpenBao matches them as substrings
/// of the error message, so a plugin's error is forwarded when its message carries one.
pub const FORWARD_ERRORS: [&str; 4] = [
    "cannot write to readonly storage",
    "please forward to the active node",
    "node is not the leader",
    "Vault is in standby mode",
];

/// The forwarding text in a storage failure, if it has one.
pub fn forward_error(error: &StorageError) -> Option<&'static str> {
    FORWARD_ERRORS
        .into_iter()
        .find(|text| error.0.contains(text))
}

/// The mount's storage for one engine call, remembering whether a write met read-only
/// storage: whatever the engine makes of that failure, the call's answer must be OpenBao's
/// own read-only error, so that OpenBao forwards the request to the active node.
pub struct CallStorage {
    inner: Arc<dyn Storage>,
    read_only: Mutex<Option<&'static str>>,
}

impl CallStorage {
    pub fn new(inner: Arc<dyn Storage>) -> CallStorage {
        CallStorage {
            inner,
            read_only: Mutex::new(None),
        }
    }

    /// OpenBao's text for the read-only storage this call met, if it met any.
    pub fn read_only(&self) -> Option<&'static str> {
        *self.read_only.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &result
            && let Some(text) = forward_error(e)
        {
            *self.read_only.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        }
        result
    }
}

#[async_trait::async_trait]
impl Storage for CallStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.check(self.inner.get(key).await)
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.check(self.inner.put(key, value).await)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.check(self.inner.delete(key).await)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.check(self.inner.list(prefix).await)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::proto::pb::{
        EntityInfoReply, ReplicationStateReply, TaintedReply, TtlReply, system_view_server,
    };
    use super::*;
    use crate::MemoryStorage;

    /// Storage as a standby's: reads work, writes fail with OpenBao's read-only error.
    pub struct Standby(pub MemoryStorage);

    #[async_trait::async_trait]
    impl Storage for Standby {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.0.get(key).await
        }
        async fn put(&self, key: &str, _: Vec<u8>) -> Result<(), StorageError> {
            Err(failed("put", key, "cannot write to readonly storage"))
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            Err(failed("delete", key, "cannot write to readonly storage"))
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.0.list(prefix).await
        }
    }

    #[tokio::test]
    async fn a_call_remembers_that_it_met_read_only_storage() {
        let call = CallStorage::new(Arc::new(Standby(MemoryStorage::new())));
        assert_eq!(call.get("config/a").await.unwrap(), None);
        assert_eq!(call.read_only(), None, "reads are fine on a standby");
        assert!(call.put("wal/1", b"x".to_vec()).await.is_err());
        assert_eq!(call.read_only(), Some("cannot write to readonly storage"));

        let other = CallStorage::new(Arc::new(MemoryStorage::new()));
        other.put("wal/1", b"x".to_vec()).await.unwrap();
        assert_eq!(other.read_only(), None);
    }

    /// OpenBao's side of `pb.SystemView`, as far as the engine asks it: a mount limit of one
    /// hour, and `EntityInfo` answering by id as OpenBao's `dynamicSystemView` does.
    struct FakeSystemView;

    #[tonic::async_trait]
    impl system_view_server::SystemView for FakeSystemView {
        async fn default_lease_ttl(
            &self,
            _: tonic::Request<Empty>,
        ) -> Result<tonic::Response<TtlReply>, tonic::Status> {
            Ok(tonic::Response::new(TtlReply { ttl: 0 }))
        }
        async fn max_lease_ttl(
            &self,
            _: tonic::Request<Empty>,
        ) -> Result<tonic::Response<TtlReply>, tonic::Status> {
            Ok(tonic::Response::new(TtlReply {
                ttl: 3600 * 1_000_000_000,
            }))
        }
        async fn tainted(
            &self,
            _: tonic::Request<Empty>,
        ) -> Result<tonic::Response<TaintedReply>, tonic::Status> {
            Ok(tonic::Response::new(TaintedReply::default()))
        }
        async fn replication_state(
            &self,
            _: tonic::Request<Empty>,
        ) -> Result<tonic::Response<ReplicationStateReply>, tonic::Status> {
            Ok(tonic::Response::new(ReplicationStateReply::default()))
        }
        async fn entity_info(
            &self,
            request: tonic::Request<EntityInfoArgs>,
        ) -> Result<tonic::Response<EntityInfoReply>, tonic::Status> {
            let reply = match request.into_inner().entity_id.as_str() {
                "entity-1" => EntityInfoReply {
                    entity: Some(logical::Entity {
                        id: "entity-1".into(),
                        name: "entity_5d1f".into(),
                        metadata: [("team".to_string(), "release".to_string())].into(),
                        aliases: vec![logical::Alias {
                            mount_type: "jwt".into(),
                            mount_accessor: "auth_jwt_1f2e3d4c".into(),
                            name: "acme/app".into(),
                            metadata: [
                                ("ref".to_string(), "main".to_string()),
                                ("project_path".to_string(), "acme/app".to_string()),
                            ]
                            .into(),
                            id: "alias-1".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    err: String::new(),
                },
                "broken" => EntityInfoReply {
                    entity: None,
                    err: "system view identity store is nil".into(),
                },
                "refused" => return Err(tonic::Status::unavailable("connection reset")),
                _ => EntityInfoReply::default(),
            };
            Ok(tonic::Response::new(reply))
        }
    }

    #[tokio::test]
    async fn the_requesters_entity_comes_from_openbaos_entity_info() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(system_view_server::SystemViewServer::new(FakeSystemView))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect_lazy();
        let view = OpenBaoSystemView::new(channel, "");

        assert_eq!(view.max_ttl().await, Some(3600));
        let entity = view.entity("entity-1").await.unwrap().expect("an entity");
        assert_eq!(
            (entity.id.as_str(), entity.name.as_str()),
            ("entity-1", "entity_5d1f")
        );
        assert_eq!(entity.metadata, [("team".into(), "release".into())]);
        let [alias] = entity.aliases.as_slice() else {
            panic!("one alias: {:?}", entity.aliases)
        };
        assert_eq!(
            (
                alias.id.as_str(),
                alias.mount_accessor.as_str(),
                alias.mount_type.as_str(),
                alias.name.as_str()
            ),
            ("alias-1", "auth_jwt_1f2e3d4c", "jwt", "acme/app")
        );
        assert_eq!(
            alias.metadata,
            [
                ("project_path".into(), "acme/app".into()),
                ("ref".into(), "main".into())
            ],
            "sorted by key"
        );

        // No such entity is no entity; OpenBao's failure, or no answer, is an error.
        assert!(matches!(view.entity("unknown").await, Ok(None)));
        assert_eq!(
            view.entity("broken").await.unwrap_err(),
            "OpenBao could not look up entity \"broken\": system view identity store is nil"
        );
        let refused = view.entity("refused").await.unwrap_err();
        assert!(
            refused.starts_with("OpenBao could not look up entity \"refused\": connection reset"),
            "{refused}"
        );
    }

    #[test]
    fn only_openbaos_forwarding_errors_count() {
        for text in FORWARD_ERRORS {
            assert_eq!(
                forward_error(&failed("put", "k", format!("raft: {text}"))),
                Some(text)
            );
        }
        assert_eq!(forward_error(&failed("put", "k", "disk full")), None);
    }
}
