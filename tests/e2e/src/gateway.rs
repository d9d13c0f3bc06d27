//! The gateway component in a real wasi:http gateway (`wasmtime serve`, or `jco serve` on
//! Node.js), with its state in a real etcd and Docker Hub replaced by the fake: processes on
//! loopback, stopped when dropped, also when a test fails.

use crate::cli::BaoCli;
use crate::openbao::{bao_binary, free_port_pair};
use crate::serve::{ROOT_TOKEN, tokens_file};
use anyhow::{Context, bail};
pub use dockerhub_secrets_test_etcd::Etcd;
use fakehub::FakeHub;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The store key the tests' gateways share (AES-256, hex).
pub const STORE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The composed component, as `just build` writes it.
pub fn gateway_component() -> anyhow::Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/gateway/dockerhub-secrets-gateway-etcd.wasm");
    if !path.exists() {
        bail!("{} is missing: run `just build`", path.display());
    }
    Ok(path)
}

/// A program that `just setup` installs, found in cargo's bin directory (where `just setup`
/// puts wasmtime-cli) or on `PATH` (etcd).
fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    cargo_bin
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{name}` is not installed: run `just setup`"))
}

fn scratch_dir(what: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "dockerhub-secrets-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A wasi:http gateway that serves the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `wasmtime serve` (wasmtime-cli 48.0.8), the reference wasi:http host.
    Wasmtime,
    /// `jco serve` (`@bytecodealliance/jco` on Node.js), each request in a fresh instance.
    /// Node refuses the `LIST` method: clients list with `?list=true` there.
    Jco,
}

/// `jco`, as `just setup` installs it (`npm ci` in `tests/e2e/jco`).
fn jco_binary() -> anyhow::Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("jco/node_modules/.bin/jco");
    if !path.exists() {
        bail!("{} is missing: run `just setup`", path.display());
    }
    Ok(path)
}

/// The gateway component served by a gateway, configured through its environment.
pub struct Gateway {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    pub kind: Kind,
    dir: PathBuf,
    cli: BaoCli,
}

impl std::ops::Deref for Gateway {
    type Target = BaoCli;

    fn deref(&self) -> &BaoCli {
        &self.cli
    }
}

impl Gateway {
    /// Serve the etcd variant in `kind` against `hub`, its state in `etcd` under `prefix`,
    /// with the tests' tokens file.
    pub fn start(kind: Kind, hub: &FakeHub, etcd: &Etcd, prefix: &str) -> anyhow::Result<Gateway> {
        Gateway::start_with_tokens(kind, hub, etcd, prefix, "")
    }

    /// As [`Gateway::start`], with `extra` (more `token` and `policy` blocks) in the tokens
    /// file.
    pub fn start_with_tokens(
        kind: Kind,
        hub: &FakeHub,
        etcd: &Etcd,
        prefix: &str,
        extra: &str,
    ) -> anyhow::Result<Gateway> {
        Gateway::start_component(kind, &gateway_component()?, hub, etcd, prefix, extra, &[])
    }

    /// As [`Gateway::start_with_tokens`], serving `component` (another composition), with
    /// `settings` added to (or replacing) the environment's.
    pub fn start_component(
        kind: Kind,
        component: &Path,
        hub: &FakeHub,
        etcd: &Etcd,
        prefix: &str,
        extra: &str,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Gateway> {
        Gateway::launch(kind, component, hub, etcd, prefix, extra, settings, &[])
    }

    /// The gateway component in `wasmtime serve` with wasmtime's `options` (`-O ...`), as
    /// [`Gateway::start_component`] otherwise.
    pub fn start_wasmtime_with_options(
        hub: &FakeHub,
        etcd: &Etcd,
        prefix: &str,
        settings: &[(&str, &str)],
        options: &[&str],
    ) -> anyhow::Result<Gateway> {
        let component = gateway_component()?;
        let kind = Kind::Wasmtime;
        Gateway::launch(kind, &component, hub, etcd, prefix, "", settings, options)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        kind: Kind,
        component: &Path,
        hub: &FakeHub,
        etcd: &Etcd,
        prefix: &str,
        extra: &str,
        settings: &[(&str, &str)],
        wasmtime_options: &[&str],
    ) -> anyhow::Result<Gateway> {
        let dir = scratch_dir("gateway")?;
        let log = std::fs::File::create(dir.join("gateway.log"))?;
        let port = free_port_pair()?;
        let env = [
            ("DOCKERHUB_SECRETS_TOKENS_HCL", tokens_file() + extra),
            ("DOCKERHUB_SECRETS_HUB_URL", hub.url()),
            ("DOCKERHUB_SECRETS_ETCD_URL", etcd.url.clone()),
            ("DOCKERHUB_SECRETS_ETCD_PREFIX", prefix.to_string()),
            ("DOCKERHUB_SECRETS_STORE_KEY", STORE_KEY.to_string()),
            ("DOCKERHUB_SECRETS_LOG", "debug".to_string()),
        ];
        let env: Vec<(&str, String)> = env
            .into_iter()
            .filter(|(name, _)| !settings.iter().any(|(set, _)| set == name))
            .chain(
                settings
                    .iter()
                    .map(|(name, value)| (*name, value.to_string())),
            )
            .collect();
        let (mut command, ready_line) = match kind {
            Kind::Wasmtime => {
                let mut command = Command::new(tool("wasmtime")?);
                command.args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")]);
                command.args(wasmtime_options);
                // As the README says to: `--env NAME` hands the component the value of the
                // process's own variable, so that no secret is on the command line.
                for (name, value) in &env {
                    command.arg("--env").arg(name).env(name, value);
                }
                (command, "Serving HTTP on")
            }
            Kind::Jco => {
                let mut command = Command::new(jco_binary()?);
                command
                    .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--isolate-requests", "instance"])
                    .envs(env.iter().map(|(name, value)| (name, value)));
                (command, "Server listening @")
            }
        };
        // Its own process group: `jco` runs the server as a child `node` process, which a
        // stop must end too.
        let mut child = std::os::unix::process::CommandExt::process_group(&mut command, 0)
            .arg(component)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {kind:?}"))?;
        // The gateway says it is ready on stdout (jco) or stderr (wasmtime); both go to the
        // log, read as they come so that the gateway never blocks on a full pipe.
        let (ready_tx, ready) = mpsc::channel();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("piped"));
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("piped"));
        for stream in [out, err] {
            let (ready_tx, mut log) = (ready_tx.clone(), log.try_clone()?);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains(ready_line) {
                        let _ = ready_tx.send(());
                    }
                    let _ = std::io::Write::write_all(&mut log, format!("{line}\n").as_bytes());
                }
            });
        }
        let addr = format!("http://127.0.0.1:{port}");
        let gateway = Gateway {
            child: Some(child),
            cli: BaoCli::new(bao_binary()?, addr.clone(), ROOT_TOKEN, &dir),
            addr,
            kind,
            dir,
        };
        ready
            .recv_timeout(Duration::from_secs(120))
            .map_err(|_| anyhow::anyhow!("{kind:?} did not start:\n{}", gateway.log()))?;
        Ok(gateway)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    /// One HTTP request: the status and the JSON answer (`null` when empty).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.addr));
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        let mut response = agent.run(request.body(body.to_vec())?)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        let json = match text.trim() {
            "" => serde_json::Value::Null,
            text => serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))?,
        };
        Ok((status, json))
    }

    /// SIGTERM to the gateway's process group, then SIGKILL to what is left of it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = -(child.id() as i32);
            crate::terminate(&mut child, group, Duration::from_secs(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("the gateway's log is kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
