//! The `engine` world's bindings, generated once here and re-exported under plain names.
//!
//! Standard WASI interfaces map onto wasmtime's own implementations; only the engine's
//! `backend` export and the `wasi:keyvalue`, `wasi:logging`, `lease-limits`, `identity`,
//! `mount` and `call-limits` imports are generated.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "engine",
    imports: { default: async | trappable },
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:keyvalue/store.bucket": super::keyvalue::OpenBucket,
    },
});

pub use self::dockerhub_secrets::engine::identity::{Alias as EntityAlias, Entity};
pub use self::dockerhub_secrets::engine::types::{
    BackendHelp, Error as EngineError, Field, FieldKind, Lease, LeaseState, Operation, PathHelp,
    Request, Response, UpstreamError,
};
pub use self::dockerhub_secrets::engine::{call_limits, identity, lease_limits, mount};
pub use self::wasi::keyvalue::store as keyvalue_store;
pub use self::wasi::logging::logging;
pub use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
