//! Hosts for the dockerhub-secrets engine component.
//!
//! [`runtime`] loads the component and runs each request in a sandboxed instance;
//! [`storage`] is the storage every host supplies. The front ends that receive requests
//! (the OpenBao plugin, the standalone endpoint) build on these. Nothing here knows about
//! Docker Hub beyond routing the engine's HTTP to the operator's Hub URL.

pub mod runtime;
pub mod storage;

pub use runtime::{CallError, Runtime, RuntimeConfig};
pub use storage::{MemoryStorage, Storage, StorageError};
