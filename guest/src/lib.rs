//! The dockerhub-secrets engine: Docker Hub access tokens issued under Vault leases.
//!
//! Written once, run by every host: compiled to `wasm32-wasip2` it is a WASI component
//! implementing the `engine` world of `wit/engine.wit`; compiled natively it is a plain
//! library whose logic unit-tests without any runtime. All engine logic takes its
//! capabilities through [`capabilities::Host`]; `bindings` is the thin adapter between that
//! trait and the WASI imports.
//!
//! Layout, like HashiCorp's own plugins: [`backend`] routes; `path_config`, `path_token`,
//! `path_role` and `path_creds` own their paths; `issue` creates a token under a lease for
//! both token paths; `secret_token` owns renew and revoke; `rollback` owns write-ahead
//! records and cleanup; `hub` is the only code that speaks Docker Hub's API.

pub mod api;
pub mod backend;
pub mod capabilities;
mod docker_login;
mod duration;
mod fields;
mod hub;
mod issue;
mod label_template;
mod mount;
mod names;
mod path_config;
mod path_creds;
mod path_role;
mod path_token;
mod rollback;
mod secret_token;
mod storage;
mod tidy;
mod totp;

#[cfg(target_arch = "wasm32")]
mod bindings;

#[cfg(test)]
mod testing;

pub use backend::{existence_check, handle, help};
