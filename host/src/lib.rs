//! Hosts for the dockerhub-secrets engine component.
//!
//! [`runtime`] loads the component and runs each request in a sandboxed instance;
//! [`engine`] is what the front ends call: the engine's exports, the requests hosts make on
//! their own, status mapping and revocation pacing, over the runtime as its sandbox;
//! [`storage`] is the storage every host supplies; [`plugin`] serves the engine to OpenBao
//! or Vault as a secrets-engine plugin. Nothing here knows about Docker Hub beyond routing
//! the engine's HTTP to the operator's Hub URL.

pub mod engine;
pub mod logging;
pub mod plugin;
pub mod runtime;
pub mod serve;
pub mod storage;

pub use engine::{CallError, Engine, Sandbox};
pub use runtime::{Runtime, RuntimeConfig};
pub use storage::{CachedStorage, MemoryStorage, PrefixedStorage, Storage, StorageError};
