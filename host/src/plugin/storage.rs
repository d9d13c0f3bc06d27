//! The mount's storage and lease limits, served by OpenBao over the broker connection.

use super::proto::pb::storage_client::StorageClient;
use super::proto::pb::system_view_client::SystemViewClient;
use super::proto::pb::{
    Empty, StorageDeleteArgs, StorageEntry, StorageGetArgs, StorageListArgs, StoragePutArgs,
};
use crate::runtime::LeaseLimits;
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

/// The mount's max lease TTL (tunable per mount), asked of OpenBao's `pb.SystemView` each
/// time the engine wants it: a tune takes effect at the next issue or renewal.
pub struct SystemViewLimits {
    client: SystemViewClient<Channel>,
}

impl SystemViewLimits {
    pub fn new(channel: Channel) -> SystemViewLimits {
        SystemViewLimits {
            client: SystemViewClient::new(channel),
        }
    }
}

#[async_trait::async_trait]
impl LeaseLimits for SystemViewLimits {
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
}
