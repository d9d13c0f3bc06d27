//! A real etcd for the tests: one member from Debian's `etcd-server` (`just setup` installs
//! it) on free loopback ports, its data in a fresh directory, killed when dropped. The
//! keyvalue-etcd component's tests and the gateway's end-to-end tests both start theirs here.

use anyhow::{Context, bail};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to report itself healthy.
const START_WAIT: Duration = Duration::from_secs(30);

/// One etcd member on loopback.
pub struct Etcd {
    child: Option<Child>,
    /// Its client URL, `http://127.0.0.1:<port>`.
    pub url: String,
    dir: PathBuf,
}

impl Etcd {
    /// Start etcd and wait until `GET /health` says it is healthy. Fails, saying why, when
    /// the `etcd` binary is not on `PATH` or etcd is not healthy within 30 s (with its log).
    pub fn start() -> anyhow::Result<Etcd> {
        let dir = scratch_dir()?;
        let [client, peer] = free_ports()?.map(|port| format!("http://127.0.0.1:{port}"));
        let log = std::fs::File::create(dir.join("etcd.log"))?;
        let spawned = Command::new("etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .arg(format!("--initial-cluster=test={peer}"))
            .args(["--initial-cluster-state", "new"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "the etcd binary is not on PATH: run `just setup`, which installs Debian's \
                 etcd-server package"
            ),
            Err(e) => return Err(e).context("starting etcd"),
        };
        let mut etcd = Etcd {
            child: Some(child),
            url: client,
            dir,
        };
        etcd.wait_until_healthy()?;
        Ok(etcd)
    }

    fn wait_until_healthy(&mut self) -> anyhow::Result<()> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Ok(mut answer) = agent.get(format!("{}/health", self.url)).call()
                && answer
                    .body_mut()
                    .read_to_string()
                    .unwrap_or_default()
                    .contains("true")
            {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                bail!(
                    "etcd at {} did not become healthy (exit: {exited:?}); its log:\n{}",
                    self.url,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// SIGKILL, and wait for it to be gone: etcd stays down until another [`Etcd::start`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    /// Kills etcd; its directory stays when a test is failing, for its log.
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh directory under the system's temporary one.
fn scratch_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "dockerhub-secrets-etcd-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Two loopback ports that were free a moment ago.
pub fn free_ports() -> anyhow::Result<[u16; 2]> {
    let listeners = [
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
    ];
    Ok([
        listeners[0].local_addr()?.port(),
        listeners[1].local_addr()?.port(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_starts_healthy_and_is_gone_when_killed() {
        let mut etcd = Etcd::start().unwrap();
        let url = etcd.url.clone();
        assert!(ureq::get(format!("{url}/health")).call().is_ok());
        etcd.kill();
        assert!(ureq::get(format!("{url}/health")).call().is_err());
    }
}
