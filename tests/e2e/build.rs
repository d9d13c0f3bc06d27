//! Compiles the sandbox probe component (`tests/probe-guest`) ahead of time with the runtime's
//! own settings, as the host's `build.rs` does for the engine: the runtime carries no compiler.

#[path = "../../host/src/runtime/engine_config.rs"]
mod engine_config;

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../../target"));
    let wasm = target_dir.join("wasm32-wasip2/wasm/sandbox_probe.wasm");
    println!("cargo:rerun-if-changed={}", wasm.display());
    let component = fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "\n\nThe probe component {} cannot be read ({e}).\nBuild it first: `just build`, or \
             `cargo build --profile wasm --target wasm32-wasip2 -p sandbox-probe`.\n\n",
            wasm.display()
        )
    });
    let mut config = engine_config::engine_config();
    config
        .target(&env::var("TARGET").expect("set by cargo"))
        .expect("a target wasmtime supports");
    let precompiled = wasmtime::Engine::new(&config)
        .and_then(|engine| engine.precompile_component(&component))
        .unwrap_or_else(|e| panic!("compiling {}: {e:?}", wasm.display()));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out.join("sandbox_probe.cwasm"), precompiled).expect("write OUT_DIR");
}
