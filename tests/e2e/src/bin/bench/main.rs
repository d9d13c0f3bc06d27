//! `just bench`: what the engine costs in its two hosts, measured in one run on loopback
//! against the Docker Hub fake.
//!
//! - [`plugin`]: the plugin in one `bao server -dev` (request latency against builtins, start
//!   to handshake, memory, Docker Hub calls per token lifecycle), the fake answering at once;
//! - [`serve`]: the standalone server, `dockerhub-secrets serve` (issuance throughput at fixed
//!   concurrency, and the mass expiry of 10 000 leases under the fake's rate limit);
//! - [`keyless`]: `serve`'s JWT auth, a CI job's keyless login (login latency, login and
//!   issuance against issuance with a static token, JWKS fetches);
//! - [`gateway`]: the composed gateway component in `wasmtime serve` with etcd, against
//!   `serve` (sizes, cold start, issuance, etcd requests per lease).
//!
//! The machine is shared and small, so an absolute millisecond says little: every claim is a
//! ratio against a baseline measured in the same run. The report goes to stdout and to
//! `BENCHMARKS.md`. Everything started here stops when the run ends, also on error.

mod gateway;
mod keyless;
mod pacing;
mod plugin;
mod report;
mod serve;

use anyhow::{Context, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let machine = report::Machine::describe()?;
    let plugin = plugin::measure()?;
    let serve = serve::measure()?;
    let keyless = keyless::measure()?;
    let gateway = gateway::measure()?;

    let mut report = String::new();
    report::header(&mut report, &machine, &plugin.version)?;
    plugin.write(&mut report)?;
    serve.write(&mut report)?;
    keyless.write(&mut report)?;
    gateway.write(&mut report)?;
    report::goals(&mut report, plugin.goals().into_iter().chain(serve.goals()))?;

    print!("{report}");
    let out = workspace().canonicalize()?.join("BENCHMARKS.md");
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    println!("\n(written to {})", out.display());
    Ok(())
}

fn progress(step: &str) {
    eprintln!("bench: {step}");
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Vault's HTTP API (OpenBao's or `serve`'s) over one keep-alive connection, with one token.
struct Api {
    agent: ureq::Agent,
    base: String,
    /// Sent as `X-Vault-Token`; none for a login.
    token: Option<String>,
}

impl Api {
    fn new(base: &str, token: &str) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Revoking thousands of leases in one request takes a while; a hung server must
            // still end the run.
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .new_agent();
        Api {
            agent,
            base: base.to_string(),
            token: Some(token.to_string()),
        }
    }

    /// The same server over the same connections, as `token` (none: a login).
    fn as_token(&self, token: Option<&str>) -> Api {
        Api {
            agent: self.agent.clone(),
            base: self.base.clone(),
            token: token.map(str::to_string),
        }
    }

    /// Send a request and fail unless it answers `status`; returns the body.
    fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> anyhow::Result<String> {
        let (answered, text) = self.send(method, path, body)?;
        if answered != status {
            bail!("{method} {path} answered {answered} (expected {status}): {text}");
        }
        Ok(text)
    }

    /// Send a request; returns the status and the body.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<(u16, String)> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("X-Vault-Token", token);
        }
        let mut response = match body {
            Some(body) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(&body)?)?,
            ),
            None => self.agent.run(request.body(())?),
        }
        .with_context(|| format!("{method} {path}"))?;
        let text = response.body_mut().read_to_string()?;
        Ok((response.status().as_u16(), text))
    }
}

/// The fake's calls counted by (method, path with token ids as `{uuid}`, status).
fn calls_by_route(calls: &[fakehub::Call]) -> BTreeMap<(String, String, u16), usize> {
    let mut by_route = BTreeMap::new();
    for call in calls {
        let path = call.path.split('?').next().unwrap_or_default();
        let route = match path.strip_prefix("/v2/access-tokens/") {
            Some(_) => "/v2/access-tokens/{uuid}".to_string(),
            None => path.to_string(),
        };
        *by_route
            .entry((call.method.clone(), route, call.status))
            .or_insert(0) += 1;
    }
    by_route
}
