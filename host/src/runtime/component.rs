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
    let component = unsafe { Component::deserialize(engine, PRECOMPILED) }.map_err(|e| {
        anyhow::anyhow!(
            "the engine's precompiled code cannot run on this machine ({e}); build the binary \
             on or for this architecture"
        )
    })?;
    release_pages(PRECOMPILED);
    Ok(component)
}

/// Lets go of the resident pages of bytes that were read once and are not needed again
/// (wasmtime copied the code into memory of its own): a megabyte of the plugin's resident
/// set. Only whole pages inside `bytes` are released, and the bytes stay valid: the pages
/// belong to the executable's read-only file mapping, so a later read maps them again from
/// the file, unchanged.
fn release_pages(bytes: &'static [u8]) {
    // SAFETY: sysconf only reads a configuration value.
    let Ok(page) = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) else {
        return;
    };
    if page == 0 {
        return;
    }
    let start = (bytes.as_ptr() as usize).next_multiple_of(page);
    let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
    if end > start {
        // SAFETY: the range is page-aligned and lies within `bytes`, a read-only static in a
        // private file mapping that nothing writes; MADV_DONTNEED drops only the mapping of
        // those pages, which a later access refills from the file with the same contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_code_loads_and_its_bytes_stay_readable_after_release() {
        let engine = Engine::new(&super::super::engine_config::engine_config()).unwrap();
        let copy = PRECOMPILED.to_vec();
        load(&engine).unwrap();
        assert!(
            PRECOMPILED == copy.as_slice(),
            "released pages read back unchanged"
        );
        load(&engine).unwrap();
        assert_eq!(sha256().len(), 64);
    }
}
