//! Where the engine's data lives: a trait every host front end implements.
//!
//! The semantics are Vault's `logical.Storage`, so that the OpenBao plugin can pass calls
//! straight through: keys are `/`-separated paths, and `list` returns the entries directly
//! below a prefix, with sub-folders ending in `/`. This module also holds the in-memory
//! implementation used by tests and by hosts without durable storage.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A storage failure, described without the value involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

/// Durable key-value storage for one engine mount.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    /// Deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// The entries directly below `prefix` (which ends in `/`), relative to it, sorted;
    /// an entry that has entries below it is returned once, ending in `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
}

/// Storage in a map: fast, and gone with the process.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-written: every
        // operation is a single map call.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every key stored, for tests that inspect what the engine keeps.
    pub fn keys(&self) -> Vec<String> {
        self.entries().keys().cloned().collect()
    }

    /// The raw value of a key, for tests.
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.entries().get(key).cloned()
    }
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.entries().get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.entries().insert(key.to_string(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.entries().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let entries = self.entries();
        let mut out: Vec<String> = Vec::new();
        for key in entries.keys().filter(|k| k.starts_with(prefix)) {
            let rest = &key[prefix.len()..];
            let entry = match rest.find('/') {
                Some(i) => &rest[..=i],
                None => rest,
            };
            if out.last().map(String::as_str) != Some(entry) {
                out.push(entry.to_string());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_one_level_like_vault() {
        let s = MemoryStorage::new();
        for key in ["config/a", "config/b", "token/x", "token/y/z", "tokens"] {
            s.put(key, b"v".to_vec()).await.unwrap();
        }
        assert_eq!(s.list("config/").await.unwrap(), ["a", "b"]);
        assert_eq!(s.list("token/").await.unwrap(), ["x", "y/"]);
        assert_eq!(s.list("").await.unwrap(), ["config/", "token/", "tokens"]);
        assert!(s.list("wal/").await.unwrap().is_empty());
        s.delete("config/a").await.unwrap();
        s.delete("config/missing").await.unwrap();
        assert_eq!(s.get("config/a").await.unwrap(), None);
        assert_eq!(s.get("config/b").await.unwrap(), Some(b"v".to_vec()));
    }
}
