//! The components `just build` composed: the engine inside is the one the other hosts run,
//! byte for byte, and what the whole imports is standard WASI only.

use dockerhub_secrets_gateway_compose::{INCOMING_HANDLER, exports, imports};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn built(path: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../target")
        .join(path);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}): run `just build`", path.display()))
}

const VARIANTS: [&str; 2] = [
    "gateway/dockerhub-secrets-gateway.wasm",
    "gateway/dockerhub-secrets-gateway-etcd.wasm",
];

/// The SHA-256 of every component nested in `bytes`, at any depth.
fn nested_components(bytes: &[u8]) -> Vec<[u8; 32]> {
    let mut hashes = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::ComponentSection {
            unchecked_range, ..
        } = payload.expect("the composed component parses")
        {
            let range = unchecked_range.start as usize..unchecked_range.end as usize;
            hashes.push(Sha256::digest(&bytes[range]).into());
        }
    }
    hashes
}

#[test]
fn the_engine_inside_is_byte_for_byte_the_one_the_other_hosts_run() {
    // The file the plugin's and serve's binary embeds (host/build.rs).
    let engine: [u8; 32] =
        Sha256::digest(built("wasm32-wasip2/wasm/dockerhub_secrets_engine.wasm")).into();
    for variant in VARIANTS {
        let nested = nested_components(&built(variant));
        assert!(
            nested.contains(&engine),
            "{variant} holds the engine as built"
        );
    }
}

#[test]
fn the_gateway_imports_only_standard_wasi_and_exports_a_handler() {
    for variant in VARIANTS {
        let bytes = built(variant);
        let imports = imports(&bytes).unwrap();
        let keyvalue = !variant.ends_with("-etcd.wasm");
        for name in &imports {
            let interface = name.split('@').next().unwrap();
            let standard = [
                "wasi:cli/",
                "wasi:clocks/",
                "wasi:io/",
                "wasi:random/",
                "wasi:http/",
            ]
            .iter()
            .any(|package| interface.starts_with(package));
            let store =
                keyvalue && matches!(interface, "wasi:keyvalue/store" | "wasi:keyvalue/atomics");
            assert!(standard || store, "{variant} imports {name}");
        }
        // The etcd variant asks the gateway for no store: etcd is reached over wasi:http.
        assert_eq!(
            imports
                .iter()
                .any(|name| name.starts_with("wasi:keyvalue/")),
            keyvalue,
            "{variant}: {imports:?}"
        );
        assert!(imports.contains(&"wasi:http/outgoing-handler@0.2.12".to_string()));
        assert_eq!(exports(&bytes).unwrap(), [INCOMING_HANDLER], "{variant}");
    }
}
