//! `wasi:keyvalue/store` for the engine, on top of the host's [`Storage`].
//!
//! A bucket is a folder: key `k` of bucket `b` is stored as `b/k`, so the OpenBao plugin's
//! storage shows the same layout a Vault operator would expect from a Go plugin. Bucket
//! names and keys are checked here, so that no guest can reach outside its folder.

use super::HostState;
use super::bindings::keyvalue_store::{Error, Host, HostBucket, KeyResponse};
use crate::storage::StorageError;
use wasmtime::component::Resource;

/// An open bucket: the folder it maps to.
pub struct OpenBucket {
    prefix: String,
}

fn valid_bucket(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 512 && !key.contains('/') && key != "." && key != ".."
}

fn other(e: StorageError) -> Error {
    Error::Other(e.0)
}

impl HostState {
    fn key(
        &self,
        bucket: &Resource<OpenBucket>,
        key: &str,
    ) -> wasmtime::Result<Result<String, Error>> {
        let bucket = self.table.get(bucket)?;
        if !valid_key(key) {
            return Ok(Err(Error::Other(format!("invalid key {key:?}"))));
        }
        Ok(Ok(format!("{}{key}", bucket.prefix)))
    }
}

impl Host for HostState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<OpenBucket>, Error>> {
        if !valid_bucket(&identifier) {
            return Ok(Err(Error::NoSuchStore));
        }
        let bucket = OpenBucket {
            prefix: format!("{identifier}/"),
        };
        Ok(Ok(self.table.push(bucket)?))
    }
}

impl HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let key = match self.key(&bucket, &key)? {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.storage.get(&key).await.map_err(other))
    }

    async fn set(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let key = match self.key(&bucket, &key)? {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.storage.put(&key, value).await.map_err(other))
    }

    async fn delete(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let key = match self.key(&bucket, &key)? {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.storage.delete(&key).await.map_err(other))
    }

    async fn exists(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let key = match self.key(&bucket, &key)? {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self
            .storage
            .get(&key)
            .await
            .map(|v| v.is_some())
            .map_err(other))
    }

    /// All keys in one page: the engine's buckets stay small enough to list whole.
    async fn list_keys(
        &mut self,
        bucket: Resource<OpenBucket>,
        _cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let prefix = self.table.get(&bucket)?.prefix.clone();
        Ok(self
            .storage
            .list(&prefix)
            .await
            .map(|entries| KeyResponse {
                // Sub-folders are not keys of this bucket.
                keys: entries.into_iter().filter(|e| !e.ends_with('/')).collect(),
                cursor: None,
            })
            .map_err(other))
    }

    async fn drop(&mut self, bucket: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_their_folder() {
        assert!(valid_bucket("config"));
        for bad in ["", "a/b", "../x", "Config", &"b".repeat(65)] {
            assert!(!valid_bucket(bad), "{bad}");
        }
        assert!(valid_key("hoeg"));
        assert!(valid_key("0123-abcd"));
        for bad in ["", "a/b", "..", ".", &"k".repeat(513)] {
            assert!(!valid_key(bad), "{bad}");
        }
    }
}
