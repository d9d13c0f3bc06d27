//! The front's durable state as it needs it: one bucket of a key-value store with an
//! atomic counter, the shape of `wasi:keyvalue/store` and `wasi:keyvalue/atomics`
//! (`0.2.0-draft`), as a plain Rust trait so that the lease manager unit-tests natively.

/// One bucket, shared by every gateway instance: what one instance writes, the others read
/// (an etcd-backed bucket is linearizable; the lease manager counts on reading its own and
/// the others' completed writes).
pub trait Store {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Put `value` under `key`, replacing what was there.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Remove `key`; removing an absent key is no error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Every key of the bucket, in no particular order.
    fn keys(&self) -> Result<Vec<String>, StoreError>;

    /// Add `delta` to the counter under `key` (an absent key counts from 0) and return the
    /// new value, atomically across every instance that shares the bucket.
    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError>;
}

/// A store operation failed: the store's own words, with what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);
