//! The gateway's front: Vault's HTTP API as a `wasi:http` component, for wasm gateways
//! (`wasmtime serve`, `jco serve`).
//!
//! It answers requests through [`vault_front`], exactly as `dockerhub-secrets serve` does,
//! and keeps the leases of what the engine creates in a keyvalue bucket that every instance
//! of the gateway shares ([`leases`]). The engine is another component, composed with this
//! one (`wac`): the front imports its `backend` interface.
//!
//! The logic is plain Rust behind two small traits, [`store::Store`] and [`engine::Engine`],
//! so that it unit-tests natively; the wit-bindgen adapter (`component`) exists only for
//! `wasm32`.

pub mod config;
pub mod engine;
pub mod leases;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests;
