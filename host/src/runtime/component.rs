//! The engine component built into this binary, and its precompiled form.
//!
//! Compiling the component takes Cranelift a noticeable fraction of a second; a plugin must
//! answer its handshake in milliseconds. So `just build` runs `dockerhub-secrets
//! precompile`, which serializes the compiled code, and then rebuilds the binary with it
//! embedded (see `build.rs`). Loading then only maps the code. If the embedded code does not
//! fit this machine (another CPU, another wasmtime), the component is compiled as a fallback.

use std::time::Instant;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The engine component (WebAssembly).
pub static WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/engine.wasm"));
/// Its precompiled code, empty when the binary was built without it.
static PRECOMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/engine.cwasm"));

/// SHA-256 of [`WASM`], hex.
const COMPONENT_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/engine.sha256"));

/// SHA-256 of the embedded component, hex: what `precompile` stamps on its output.
pub fn sha256() -> &'static str {
    COMPONENT_SHA256
}

/// Whether this binary carries precompiled code.
pub fn is_precompiled() -> bool {
    !PRECOMPILED.is_empty()
}

/// The embedded component, ready to instantiate.
pub fn load(engine: &Engine) -> anyhow::Result<Component> {
    if is_precompiled() {
        // SAFETY: the bytes were produced by `precompile` from this binary's own
        // component and engine configuration (build.rs checks the component hash), and
        // wasmtime checks its version and settings before using them.
        match unsafe { Component::deserialize(engine, PRECOMPILED) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!(
                error = %e,
                "the precompiled engine does not fit this machine; compiling it instead"
            ),
        }
    }
    let started = Instant::now();
    let component = Component::new(engine, WASM)?;
    tracing::debug!(elapsed = ?started.elapsed(), "compiled the engine component");
    Ok(component)
}

/// The precompiled artifact that `build.rs` embeds: the component's SHA-256 (raw bytes),
/// then wasmtime's serialized code.
pub fn precompile() -> anyhow::Result<Vec<u8>> {
    let engine = super::new_engine()?;
    let mut out = Vec::with_capacity(WASM.len() * 4);
    for pair in COMPONENT_SHA256.as_bytes().chunks(2) {
        let hex = std::str::from_utf8(pair)?;
        out.push(u8::from_str_radix(hex, 16)?);
    }
    out.extend(engine.precompile_component(WASM)?);
    Ok(out)
}
