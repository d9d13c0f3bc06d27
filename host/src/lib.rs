//! Hosts for the dockerhub-secrets engine component.
//!
//! [`runtime`] loads the component and runs each request in a sandboxed instance;
//! [`storage`] is the storage every host supplies; [`plugin`] serves the engine to OpenBao
//! or Vault as a secrets-engine plugin. Nothing here knows about Docker Hub beyond routing
//! the engine's HTTP to the operator's Hub URL.

pub mod logging;
pub mod plugin;
pub mod runtime;
pub mod serve;
pub mod storage;

pub use runtime::{CallError, Runtime, RuntimeConfig};
pub use storage::{CachedStorage, MemoryStorage, PrefixedStorage, Storage, StorageError};
