//! The mount's storage and lease limits, served by OpenBao over the broker connection.

use super::proto::pb::storage_client::StorageClient;
use super::proto::pb::system_view_client::SystemViewClient;
use super::proto::pb::{
    Empty, StorageDeleteArgs, StorageEntry, StorageGetArgs, StorageListArgs, StoragePutArgs,
};
use crate::runtime::TtlLimits;
use crate::storage::{Storage, StorageError};
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

/// The mount's default and maximum lease TTL (tunable per mount), in seconds.
pub async fn lease_limits(system: &SystemViewClient<Channel>) -> Result<TtlLimits, tonic::Status> {
    let (mut a, mut b) = (system.clone(), system.clone());
    let (default, max) =
        tokio::try_join!(a.default_lease_ttl(Empty {}), b.max_lease_ttl(Empty {}))?;
    let seconds = |nanos: i64| u64::try_from(nanos / 1_000_000_000).unwrap_or(0);
    Ok(TtlLimits {
        default_ttl: seconds(default.into_inner().ttl),
        max_ttl: seconds(max.into_inner().ttl),
    })
}
