//! Compiles the plugin protocol's `.proto` files, and embeds the engine component (and its
//! precompiled form, when one matches) in the binary.
//!
//! The component comes from `cargo build --profile wasm --target wasm32-wasip2 -p
//! dockerhub-secrets-engine` (`just build` runs it first). `dockerhub-secrets precompile`
//! writes `<component>.cwasm`: the SHA-256 of the component it was compiled from, then
//! wasmtime's serialized code. It is embedded only when that hash matches, so a stale
//! precompiled artifact can never pair with a newer component.

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
    // Watching the directory catches both the component and a precompiled artifact
    // appearing later; watching a missing file would rebuild on every run.
    if let Some(dir) = wasm.parent() {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!("cargo:rerun-if-changed={}", wasm.display());

    let component = fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "\n\nThe engine component {} cannot be read ({e}).\nBuild it first: `just build`, or \
             `cargo build --profile wasm --target wasm32-wasip2 -p dockerhub-secrets-engine`.\n\n",
            wasm.display()
        )
    });
    let digest = Sha256::digest(&component);
    let precompiled = fs::read(wasm.with_extension("cwasm"))
        .ok()
        .filter(|bytes| bytes.len() > digest.len() && bytes[..digest.len()] == digest[..])
        .map(|bytes| bytes[digest.len()..].to_vec())
        .unwrap_or_default();

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out.join("engine.wasm"), &component).expect("write OUT_DIR/engine.wasm");
    fs::write(out.join("engine.cwasm"), &precompiled).expect("write OUT_DIR/engine.cwasm");
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(out.join("engine.sha256"), hex).expect("write OUT_DIR/engine.sha256");
}
