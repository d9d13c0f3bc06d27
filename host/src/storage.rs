//! Where the engine's data lives: a trait every host front end implements.
//!
//! The semantics are Vault's `logical.Storage`, so that the OpenBao plugin can pass calls
//! straight through: keys are `/`-separated paths, and `list` returns the entries directly
//! below a prefix, with sub-folders ending in `/`. This module also holds the in-memory
//! implementation used by tests and by hosts without durable storage.

use lru::LruCache;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
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

/// One part of a larger storage, seen as a whole: the key `k` is `prefix + k` underneath.
/// The standalone server keeps the engine's data under `logical/<mount>/` and its leases
/// under `sys/leases/` in one store, as Vault lays out its own.
pub struct PrefixedStorage {
    inner: Arc<dyn Storage>,
    prefix: String,
}

impl PrefixedStorage {
    /// `prefix` ends in `/`.
    pub fn new(inner: Arc<dyn Storage>, prefix: impl Into<String>) -> PrefixedStorage {
        PrefixedStorage {
            inner,
            prefix: prefix.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait::async_trait]
impl Storage for PrefixedStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(&self.key(key)).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.inner.put(&self.key(key), value).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(&self.key(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(&self.key(prefix)).await
    }
}

/// Remembers what it read and wrote (missing keys too), so that a request reads the
/// account's config and Hub session from memory instead of across a process boundary.
/// Correct only where every write of the storage goes through it: the OpenBao plugin uses
/// it on the active node, and not on standbys, whose storage raft replication changes in
/// ways OpenBao does not always report. A change that is reported is forgotten with
/// [`CachedStorage::invalidate`]. Lists are not cached.
pub struct CachedStorage {
    inner: Arc<dyn Storage>,
    cache: Mutex<Cache>,
}

/// The number of keys to remember; beyond it the least recently used are forgotten, so
/// that keys every request reads (an account's config and Hub session) stay however many
/// tokens come and go.
const CACHE_CAPACITY: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

struct Cache {
    entries: LruCache<String, Option<Vec<u8>>>,
    /// Counts writes, so that a read that raced a write does not cache what it read.
    writes: u64,
}

impl CachedStorage {
    pub fn new(inner: Arc<dyn Storage>) -> CachedStorage {
        CachedStorage {
            inner,
            cache: Mutex::new(Cache {
                entries: LruCache::new(CACHE_CAPACITY),
                writes: 0,
            }),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget `key`: it changed without this process writing it.
    pub fn invalidate(&self, key: &str) {
        let mut cache = self.cache();
        cache.writes += 1;
        cache.entries.pop(key);
    }

    fn remember(&self, key: &str, value: Option<Vec<u8>>) {
        let mut cache = self.cache();
        cache.writes += 1;
        cache.entries.put(key.to_string(), value);
    }
}

#[async_trait::async_trait]
impl Storage for CachedStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let writes_before = {
            let mut cache = self.cache();
            if let Some(value) = cache.entries.get(key) {
                return Ok(value.clone());
            }
            cache.writes
        };
        let value = self.inner.get(key).await?;
        let mut cache = self.cache();
        if cache.writes == writes_before {
            cache.entries.put(key.to_string(), value.clone());
        }
        Ok(value)
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let result = self.inner.put(key, value.clone()).await;
        match &result {
            Ok(()) => self.remember(key, Some(value)),
            Err(_) => self.invalidate(key),
        }
        result
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let result = self.inner.delete(key).await;
        match &result {
            Ok(()) => self.remember(key, None),
            Err(_) => self.invalidate(key),
        }
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
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

    /// Counts reads that reach the storage underneath.
    struct Counting {
        inner: MemoryStorage,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Storage for Counting {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.get(key).await
        }
        async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
            self.inner.put(key, value).await
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.inner.delete(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list(prefix).await
        }
    }

    #[tokio::test]
    async fn a_prefixed_view_sees_only_its_part() {
        let whole: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let view = PrefixedStorage::new(whole.clone(), "logical/dockerhub/");
        view.put("config/a", b"1".to_vec()).await.unwrap();
        whole.put("sys/leases/x", b"2".to_vec()).await.unwrap();
        assert_eq!(
            whole.get("logical/dockerhub/config/a").await.unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(view.list("config/").await.unwrap(), ["a"]);
        assert_eq!(view.list("").await.unwrap(), ["config/"]);
        view.delete("config/a").await.unwrap();
        assert_eq!(view.get("config/a").await.unwrap(), None);
    }

    /// A cache over storage that counts the reads reaching it.
    fn counted() -> (Arc<Counting>, CachedStorage) {
        let counting = Arc::new(Counting {
            inner: MemoryStorage::new(),
            reads: Default::default(),
        });
        (counting.clone(), CachedStorage::new(counting))
    }

    #[tokio::test]
    async fn the_cache_serves_reads_and_follows_writes_and_invalidations() {
        let (counting, cached) = counted();
        let reads = || counting.reads.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(cached.get("config/a").await.unwrap(), None);
        assert_eq!(cached.get("config/a").await.unwrap(), None);
        assert_eq!(reads(), 1, "a missing key is remembered too");

        cached.put("config/a", b"1".to_vec()).await.unwrap();
        assert_eq!(cached.get("config/a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(reads(), 1);

        // Changed elsewhere (another node); OpenBao says so.
        counting.inner.put("config/a", b"2".to_vec()).await.unwrap();
        assert_eq!(cached.get("config/a").await.unwrap(), Some(b"1".to_vec()));
        cached.invalidate("config/a");
        assert_eq!(cached.get("config/a").await.unwrap(), Some(b"2".to_vec()));

        cached.delete("config/a").await.unwrap();
        assert_eq!(cached.get("config/a").await.unwrap(), None);
        assert_eq!(reads(), 2);
    }

    #[tokio::test]
    async fn keys_read_often_stay_cached_while_many_others_come_and_go() {
        let (counting, cached) = counted();
        let reads = || counting.reads.load(std::sync::atomic::Ordering::SeqCst);
        cached.put("config/a", b"1".to_vec()).await.unwrap();
        for n in 0..3 * CACHE_CAPACITY.get() {
            cached
                .put(&format!("token/{n}"), b"t".to_vec())
                .await
                .unwrap();
            if n % 100 == 0 {
                assert_eq!(cached.get("config/a").await.unwrap(), Some(b"1".to_vec()));
            }
        }
        assert_eq!(reads(), 0, "the hot key never left the cache");
        assert_eq!(cached.get("token/0").await.unwrap(), Some(b"t".to_vec()));
        assert_eq!(reads(), 1, "the oldest of the others did");
    }
}
