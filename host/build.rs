//! Compiles the plugin protocol's `.proto` files, and embeds the engine component in the
//! binary together with its machine code, compiled here by Cranelift.
//!
//! The component comes from `cargo build --profile wasm --target wasm32-wasip2 -p
//! dockerhub-secrets-engine` (`just build` runs it first). Compiling it here, with the very
//! settings the runtime uses (`src/runtime/engine_config.rs`, included below), is what lets
//! the binary ship without a compiler and still start in milliseconds.

#[path = "src/runtime/engine_config.rs"]
mod engine_config;

use sha2::{Digest, Sha256};
use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    compile_protos();
    embed_component();
}

/// protox parses the files in Rust, so the build needs no `protoc`.
fn compile_protos() {
    let files = [
        "proto/pb/backend.proto",
        "proto/plugin/plugin.proto",
        "proto/logical/version.proto",
        "proto/logical/identity.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"]).expect("the .proto files parse");
    tonic_prost_build::configure()
        .compile_fds(descriptors)
        .expect("generating the gRPC code");
}

fn embed_component() {
    println!("cargo:rerun-if-env-changed=DOCKERHUB_SECRETS_COMPONENT");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target"));
    let wasm = env::var_os("DOCKERHUB_SECRETS_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir.join("wasm32-wasip2/wasm/dockerhub_secrets_engine.wasm"));
    println!("cargo:rerun-if-changed={}", wasm.display());

    let component = fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "\n\nThe engine component {} cannot be read ({e}).\nBuild it first: `just build`, or \
             `cargo build --profile wasm --target wasm32-wasip2 -p dockerhub-secrets-engine`.\n\n",
            wasm.display()
        )
    });
    let digest = Sha256::digest(&component);
    let target = env::var("TARGET").expect("set by cargo");
    let precompiled = precompile(&target, &component)
        .unwrap_or_else(|e| panic!("compiling {} for {target}: {e:?}", wasm.display()));

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out.join("engine.cwasm"), &precompiled).expect("write OUT_DIR/engine.cwasm");
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(out.join("engine.sha256"), hex).expect("write OUT_DIR/engine.sha256");
}

/// Machine code for `target`'s baseline CPU: an explicit target turns off wasmtime's
/// detection of the build machine's CPU features, so the binary runs on any machine of its
/// architecture.
fn precompile(target: &str, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    let mut config = engine_config::engine_config();
    config.target(target)?;
    wasmtime::Engine::new(&config)?.precompile_component(wasm)
}
