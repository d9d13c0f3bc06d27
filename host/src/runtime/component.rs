//! The engine component built into this binary, compiled ahead of time.
//!
//! Cranelift compiling the component takes a noticeable fraction of a second, and a plugin
//! must answer its handshake in milliseconds. So `build.rs` compiles it when the binary is
//! built, for the target's baseline CPU (any machine of the architecture runs it), and embeds
//! the machine code; loading it only maps the code. The binary itself carries no compiler:
//! it is smaller, and it runs no code but what it was built with.

use wasmtime::Engine;
use wasmtime::component::Component;

/// The engine component's machine code, serialized by wasmtime.
static PRECOMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/engine.cwasm"));

/// SHA-256 of the component (WebAssembly) the code was compiled from, hex.
const COMPONENT_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/engine.sha256"));

/// SHA-256 of the component the embedded code was compiled from, hex: compare it with
/// `sha256sum target/wasm32-wasip2/wasm/dockerhub_secrets_engine.wasm`.
pub fn sha256() -> &'static str {
    COMPONENT_SHA256
}

/// The embedded component, ready to instantiate.
pub fn load(engine: &Engine) -> anyhow::Result<Component> {
    // SAFETY: the bytes were produced by this binary's own build script, from the embedded
    // component, with the engine settings this binary uses (`engine_config.rs`); wasmtime
    // still checks its version, the settings and the CPU's features before using them.
    unsafe { Component::deserialize(engine, PRECOMPILED) }.map_err(|e| {
        anyhow::anyhow!(
            "the engine's precompiled code cannot run on this machine ({e}); build the binary \
             on or for this architecture"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_code_loads() {
        let engine = Engine::new(&super::super::engine_config::engine_config()).unwrap();
        load(&engine).unwrap();
        assert_eq!(sha256().len(), 64);
    }
}
