//! The gateway component (`target/gateway/dockerhub-secrets-gateway-etcd.wasm`) in
//! `wasmtime serve` with a local etcd, against `dockerhub-secrets serve`, both on one Docker
//! Hub fake:
//!
//! 8. **Gateway**: the components' sizes; the cold start of each process (spawn to its
//!    "serving" line, the two alternated); issuance latency and throughput with one client,
//!    the two servers taking turns in batches; and the etcd requests an issuance and a
//!    revocation cost, from etcd's own counters (`grpc_server_handled_total` of the KV
//!    service, which its JSON gateway goes through).

use crate::report::{ms, percentile, ratio};
use crate::{Api, progress, workspace};
use anyhow::Context;
use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::gateway::{Etcd, Gateway, Kind};
use dockerhub_secrets_e2e::serve::{ROOT_TOKEN, Serve};
use fakehub::{Config, FakeHub};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

/// Process starts of each kind, alternated, after one unmeasured start of each.
const STARTS: usize = 5;
/// Unmeasured issuances of each server, then `ROUNDS` batches of `BATCH`, taking turns.
const WARM_UP: usize = 20;
const ROUNDS: usize = 4;
const BATCH: usize = 50;
/// Issuances and revocations counted at etcd.
const COUNTED: usize = 20;

const TOKEN_PATH: &str = "/v1/dockerhub/token/hoeg/my-organization";
const CONFIG_PATH: &str = "/v1/dockerhub/config/hoeg";

/// What section 8 found.
pub struct GatewayBench {
    /// (component, bytes).
    sizes: Vec<(&'static str, u64)>,
    /// Start times: `serve`, then the gateway.
    starts: [Vec<Duration>; 2],
    /// Issuance latencies and the wall time of their batches: `serve`, then the gateway.
    latencies: [Vec<Duration>; 2],
    wall: [Duration; 2],
    /// etcd KV requests by method, per issuance and per revocation.
    etcd_per_issue: BTreeMap<String, f64>,
    etcd_per_revoke: BTreeMap<String, f64>,
}

pub fn measure() -> anyhow::Result<GatewayBench> {
    let sizes = sizes()?;
    let hub = FakeHub::start(Config::default().account("hoeg", PASSWORD, None))?;
    let etcd = Etcd::start()?;
    progress("gateway: cold starts (wasmtime serve and serve, alternated)");
    let starts = cold_starts(&hub, &etcd)?;

    progress("gateway: issuance, taking turns with serve");
    let serve = Serve::start(
        FakeHub::start(Config::default().account("hoeg", PASSWORD, None))?,
        &[],
    )?;
    // Both on one fake: the gateway's Hub is `serve`'s.
    let gateway = Gateway::start(Kind::Wasmtime, &serve.hub, &etcd, "bench/")?;
    let apis = [
        Api::new(&serve.addr, ROOT_TOKEN),
        Api::new(&gateway.addr, ROOT_TOKEN),
    ];
    for api in &apis {
        api.expect(
            "PUT",
            CONFIG_PATH,
            Some(json!({"namespace": "hoeg,my-organization", "password": PASSWORD})),
            204,
        )
        .context("configuring hoeg")?;
        for _ in 0..WARM_UP {
            issue(api)?;
        }
    }
    let mut latencies = [Vec::new(), Vec::new()];
    let mut wall = [Duration::ZERO; 2];
    for round in 0..ROUNDS {
        for i in 0..2 {
            let which = (round + i) % 2;
            let started = Instant::now();
            for _ in 0..BATCH {
                let sent = Instant::now();
                issue(&apis[which])?;
                latencies[which].push(sent.elapsed());
            }
            wall[which] += started.elapsed();
        }
    }

    progress("gateway: etcd requests per issuance and per revocation");
    let before = etcd_requests(&etcd)?;
    let leases: Vec<String> = (0..COUNTED)
        .map(|_| issue(&apis[1]))
        .collect::<anyhow::Result<_>>()?;
    let issued = etcd_requests(&etcd)?;
    for lease in &leases {
        apis[1].expect("PUT", &format!("/v1/sys/leases/revoke/{lease}"), None, 204)?;
    }
    let revoked = etcd_requests(&etcd)?;
    let per = |after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
        after
            .iter()
            .map(|(method, n)| {
                let n = n - before.get(method).copied().unwrap_or(0);
                (method.clone(), n as f64 / COUNTED as f64)
            })
            .filter(|(_, n)| *n > 0.0)
            .collect()
    };
    Ok(GatewayBench {
        sizes,
        starts,
        latencies,
        wall,
        etcd_per_issue: per(&issued, &before),
        etcd_per_revoke: per(&revoked, &issued),
    })
}

/// Issue one token; its lease id.
fn issue(api: &Api) -> anyhow::Result<String> {
    let answer: Value = serde_json::from_str(&api.expect(
        "PUT",
        TOKEN_PATH,
        Some(json!({"label": "bench", "ttl": "10m"})),
        200,
    )?)?;
    Ok(answer["lease_id"]
        .as_str()
        .context("no lease_id in the answer")?
        .to_string())
}

fn sizes() -> anyhow::Result<Vec<(&'static str, u64)>> {
    let target = workspace().join("target");
    [
        ("engine", "wasm32-wasip2/wasm/dockerhub_secrets_engine.wasm"),
        (
            "front",
            "wasm32-wasip2/wasm/dockerhub_secrets_gateway_front.wasm",
        ),
        (
            "shims",
            "wasm32-wasip2/wasm/dockerhub_secrets_gateway_shims.wasm",
        ),
        (
            "keyvalue-etcd",
            "wasm32-wasip2/wasm/dockerhub_secrets_keyvalue_etcd.wasm",
        ),
        (
            "composed, host keyvalue",
            "gateway/dockerhub-secrets-gateway.wasm",
        ),
        (
            "composed, etcd",
            "gateway/dockerhub-secrets-gateway-etcd.wasm",
        ),
    ]
    .into_iter()
    .map(|(name, path)| {
        let path = target.join(path);
        let bytes = std::fs::metadata(&path)
            .with_context(|| format!("{}: run `just build`", path.display()))?
            .len();
        Ok((name, bytes))
    })
    .collect()
}

/// Spawn to ready, `serve` and the gateway alternated; each process stopped before the next.
fn cold_starts(hub: &FakeHub, etcd: &Etcd) -> anyhow::Result<[Vec<Duration>; 2]> {
    let mut starts = [Vec::new(), Vec::new()];
    for n in 0..=STARTS {
        let serve_hub = FakeHub::start(Config::default().account("hoeg", PASSWORD, None))?;
        let started = Instant::now();
        let serve = Serve::start(serve_hub, &[])?;
        let serve_start = started.elapsed();
        drop(serve);
        let started = Instant::now();
        let gateway = Gateway::start(Kind::Wasmtime, hub, etcd, "bench-starts/")?;
        let gateway_start = started.elapsed();
        drop(gateway);
        if n > 0 {
            starts[0].push(serve_start);
            starts[1].push(gateway_start);
        }
    }
    Ok(starts)
}

/// etcd's count of handled KV requests by method (`Range`, `Put`, `Txn`, ...).
fn etcd_requests(etcd: &Etcd) -> anyhow::Result<BTreeMap<String, u64>> {
    let text = ureq::get(format!("{}/metrics", etcd.url))
        .call()?
        .body_mut()
        .read_to_string()?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(labels) = line.strip_prefix("grpc_server_handled_total{") else {
            continue;
        };
        if !labels.contains("grpc_service=\"etcdserverpb.KV\"") {
            continue;
        }
        let method = labels
            .split("grpc_method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *counts.entry(method.to_string()).or_insert(0) += value as u64;
    }
    Ok(counts)
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 50.0)
}

impl GatewayBench {
    pub fn write(&self, out: &mut String) -> fmt::Result {
        writeln!(
            out,
            "## 8. Gateway: the composed component in `wasmtime serve`"
        )?;
        writeln!(
            out,
            "\n`target/gateway/dockerhub-secrets-gateway-etcd.wasm` in `wasmtime serve` \
             (wasmtime-cli 48.0.8, a fresh instance\nper request), its state in a local etcd, \
             against `dockerhub-secrets serve` on the same Docker Hub fake.\n"
        )?;
        writeln!(out, "| component | bytes |\n|---|---:|")?;
        for (name, bytes) in &self.sizes {
            writeln!(out, "| {name} | {bytes} |")?;
        }
        let engine = self.sizes[0].1 as f64;
        let etcd = self.sizes.last().map_or(0.0, |(_, b)| *b as f64);
        writeln!(
            out,
            "\n- composed (etcd) / engine alone: {:.2}×\n",
            etcd / engine
        )?;

        writeln!(
            out,
            "Cold start: spawn to the process's \"serving\" line (`serve`: `listening on`; \
             `wasmtime serve`:\n`Serving HTTP on`, after compiling the component), \
             alternated, {STARTS} of each after one unmeasured.\n"
        )?;
        writeln!(
            out,
            "| process | n | median ms | max ms |\n|---|---:|---:|---:|"
        )?;
        for (name, samples) in [
            ("dockerhub-secrets serve", &self.starts[0]),
            ("wasmtime serve, gateway (etcd)", &self.starts[1]),
        ] {
            let max = samples.iter().max().copied().unwrap_or_default();
            writeln!(
                out,
                "| {name} | {} | {} | {} |",
                samples.len(),
                ms(median(samples)),
                ms(max)
            )?;
        }
        writeln!(
            out,
            "\n- gateway / serve, median start: {:.2}×\n",
            ratio(median(&self.starts[1]), median(&self.starts[0]))
        )?;

        writeln!(
            out,
            "Issuance, `PUT dockerhub/token/hoeg/my-organization` (ttl 10m), one client on a \
             keep-alive connection:\n{WARM_UP} unmeasured of each, then {ROUNDS} rounds of \
             {BATCH}, the two servers taking turns.\n"
        )?;
        writeln!(
            out,
            "| server | n | p50 ms | p99 ms | per second |\n|---|---:|---:|---:|---:|"
        )?;
        let throughput = |i: usize| self.latencies[i].len() as f64 / self.wall[i].as_secs_f64();
        for (i, name) in ["dockerhub-secrets serve", "gateway in wasmtime serve"]
            .iter()
            .enumerate()
        {
            writeln!(
                out,
                "| {name} | {} | {} | {} | {:.1} |",
                self.latencies[i].len(),
                ms(percentile(&self.latencies[i], 50.0)),
                ms(percentile(&self.latencies[i], 99.0)),
                throughput(i)
            )?;
        }
        writeln!(
            out,
            "\n- gateway / serve: p50 {:.2}×, p99 {:.2}×, throughput {:.2}×\n",
            ratio(
                percentile(&self.latencies[1], 50.0),
                percentile(&self.latencies[0], 50.0)
            ),
            ratio(
                percentile(&self.latencies[1], 99.0),
                percentile(&self.latencies[0], 99.0)
            ),
            throughput(1) / throughput(0)
        )?;

        writeln!(
            out,
            "etcd requests ({COUNTED} issuances, then their {COUNTED} revocations by \
             `sys/leases/revoke`), by KV method, per operation:\n"
        )?;
        writeln!(
            out,
            "| etcd method | per issuance | per revocation |\n|---|---:|---:|"
        )?;
        let methods: std::collections::BTreeSet<&String> = self
            .etcd_per_issue
            .keys()
            .chain(self.etcd_per_revoke.keys())
            .collect();
        let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
        for method in methods {
            writeln!(
                out,
                "| {method} | {:.1} | {:.1} |",
                self.etcd_per_issue.get(method).copied().unwrap_or(0.0),
                self.etcd_per_revoke.get(method).copied().unwrap_or(0.0)
            )?;
        }
        writeln!(
            out,
            "| all | {:.1} | {:.1} |\n",
            total(&self.etcd_per_issue),
            total(&self.etcd_per_revoke)
        )
    }
}
