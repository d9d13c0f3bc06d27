//! `wasi:keyvalue` kept in etcd, encrypted: the storage the engine gets in a wasm gateway.
//!
//! Gateways such as `wasmtime serve` and `jco serve` give a component no durable keyvalue.
//! Compiled to `wasm32-wasip2`, this crate is a WASI component exporting
//! `wasi:keyvalue/store` and `wasi:keyvalue/atomics@0.2.0-draft` (`wit/world.wit`); composed in
//! front of the engine, it keeps every bucket in one etcd cluster that any number of gateway
//! instances share. It imports only standard WASI: `wasi:http` to reach etcd, `wasi:random`
//! for nonces and `wasi:cli/environment` for its [`config`].
//!
//! Compiled natively it is a plain library whose logic tests without a runtime: [`bucket`]
//! implements the interfaces over any [`etcd::Transport`], [`etcd`] speaks etcd's v3 JSON
//! gateway, [`layout`] places buckets and keys in etcd, and [`seal`] encrypts values.
//! `bindings` is the thin adapter between these and the WIT world.

pub mod bucket;
pub mod config;
pub mod etcd;
pub mod layout;
pub mod seal;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use bucket::{Bucket, Error, KeyPage};
pub use config::{Config, ConfigError, Endpoint};
pub use etcd::{Client, Reply, Transport, TransportError};
