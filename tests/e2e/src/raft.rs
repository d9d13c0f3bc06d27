//! A three-node OpenBao cluster on raft storage with the plugin mounted, driven with the real
//! `bao` CLI: `bao server` processes on loopback (free ports, storage in a temporary
//! directory), `operator init` with one unseal key, `raft join`, the plugin registered from
//! the cluster's plugin directory and enabled at `dockerhub/`. One Docker Hub fake serves
//! every node. Dropping the cluster stops every server and every plugin process it started,
//! also when a test fails.

use crate::cli::BaoCli;
use crate::openbao::{
    MOUNT, PLUGIN_NAME, bao_binary, eventually, free_port_pair, plugin_binary, processes_running,
};
use anyhow::{Context, bail};
use fakehub::FakeHub;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One `bao server` of the cluster.
pub struct Node {
    pub name: String,
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    cluster_port: u16,
    dir: PathBuf,
    /// The plugin binary every node runs.
    plugin: PathBuf,
    server: Option<Child>,
    token: String,
    cli: BaoCli,
}

/// `node.bao_ok(...)` and friends run the CLI against this node as root.
impl std::ops::Deref for Node {
    type Target = BaoCli;

    fn deref(&self) -> &BaoCli {
        &self.cli
    }
}

impl Node {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.server.as_ref().map(|c| c.id() as i32)
    }

    /// The plugin processes this node's server started.
    pub fn plugin_pids(&self) -> Vec<i32> {
        let Some(server) = self.pid() else {
            return Vec::new();
        };
        processes_running(&self.plugin)
            .into_iter()
            .filter(|pid| parent_of(*pid) == Some(server))
            .collect()
    }

    /// The server answers HTTP (sealed or not).
    pub fn listening(&self) -> bool {
        ureq::get(format!("{}/v1/sys/seal-status", self.addr))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .is_ok()
    }

    /// `GET /v1/sys/leader` (unauthenticated).
    pub fn leader_status(&self) -> Option<Value> {
        ureq::get(format!("{}/v1/sys/leader", self.addr))
            .call()
            .ok()?
            .body_mut()
            .read_json()
            .ok()
    }

    pub fn is_leader(&self) -> bool {
        self.leader_status()
            .is_some_and(|s| s["is_self"] == true && s["leader_address"] != "")
    }

    /// Unsealed and following a leader.
    pub fn is_standby(&self) -> bool {
        self.leader_status()
            .is_some_and(|s| s["is_self"] == false && s["leader_address"] != "")
    }

    /// A GET of `/v1/<path>` as root, answered by this node: its status and JSON body.
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let mut response = ureq::get(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token)
            .config()
            .http_status_as_error(false)
            .build()
            .call()?;
        let status = response.status().as_u16();
        Ok((
            status,
            response.body_mut().read_json().unwrap_or(Value::Null),
        ))
    }

    /// SIGKILL to the server alone: its plugins are left to notice.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SAFETY: a server this harness started.
            unsafe { libc::kill(server.id() as i32, libc::SIGKILL) };
            let _ = server.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let group = -(server.id() as i32);
            crate::terminate(&mut server, group, Duration::from_secs(15));
        }
    }
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces, so split after its last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Three nodes, one of them the leader, with the plugin enabled at `dockerhub/`.
pub struct RaftCluster {
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
    pub hub: FakeHub,
    bao: PathBuf,
    root_token: String,
    unseal_key: String,
}

impl RaftCluster {
    pub fn start(hub: FakeHub) -> anyhow::Result<RaftCluster> {
        let bao = bao_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "dockerhub-secrets-raft-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        std::fs::create_dir_all(dir.join("plugins"))?;
        std::fs::copy(plugin_binary()?, dir.join("plugins").join(PLUGIN_NAME))?;
        let mut cluster = RaftCluster {
            nodes: Vec::new(),
            dir,
            hub,
            bao,
            root_token: String::new(),
            unseal_key: String::new(),
        };
        for i in 0..3 {
            let port = free_port_pair()?;
            let name = format!("node{i}");
            let node_dir = cluster.dir.join(&name);
            std::fs::create_dir_all(node_dir.join("raft"))?;
            let addr = format!("http://127.0.0.1:{port}");
            cluster.nodes.push(Node {
                cli: BaoCli::new(cluster.bao.clone(), addr.clone(), "", &node_dir),
                name,
                addr,
                cluster_port: port + 1,
                dir: node_dir,
                plugin: cluster.dir.join("plugins").join(PLUGIN_NAME),
                server: None,
                token: String::new(),
            });
        }
        for i in 0..3 {
            cluster.spawn(i)?;
        }
        cluster.initialize()?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &self.nodes[i];
        let port = node.cluster_port - 1;
        let config = format!(
            r#"api_addr = "{addr}"
cluster_addr = "https://127.0.0.1:{cluster}"
plugin_directory = "{plugins}"
log_level = "debug"
storage "raft" {{
  path = "{raft}"
  node_id = "{name}"
  performance_multiplier = 1
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_disable = true
}}
"#,
            addr = node.addr,
            cluster = node.cluster_port,
            plugins = self.dir.join("plugins").display(),
            raft = node.dir.join("raft").display(),
            name = node.name,
        );
        std::fs::write(node.dir.join("config.hcl"), config)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("server.log"))?;
        let mut command = Command::new(&self.bao);
        command
            .arg("server")
            .arg(format!("-config={}", node.dir.join("config.hcl").display()))
            .env("DOCKERHUB_SECRETS_HUB_URL", self.hub.url())
            .env("DOCKERHUB_SECRETS_LOG", "debug")
            .env("HOME", &node.dir)
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so that the server and its plugins stop together.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; the server stops (with its plugins) if this
        // test process dies before it can stop it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let server = command.spawn().context("starting bao server")?;
        let node = &mut self.nodes[i];
        node.server = Some(server);
        if !eventually(Duration::from_secs(30), || node.listening()) {
            bail!("{} did not start listening:\n{}", node.name, node.log());
        }
        Ok(())
    }

    fn initialize(&mut self) -> anyhow::Result<()> {
        let init =
            self.nodes[0].bao_json(&["operator", "init", "-key-shares=1", "-key-threshold=1"])?;
        self.unseal_key = init["unseal_keys_b64"][0]
            .as_str()
            .context("an unseal key")?
            .to_string();
        self.root_token = init["root_token"]
            .as_str()
            .context("a root token")?
            .to_string();
        for node in &mut self.nodes {
            node.token = self.root_token.clone();
            node.cli = BaoCli::new(
                self.bao.clone(),
                node.addr.clone(),
                &self.root_token,
                &node.dir,
            );
        }
        self.unseal(0)?;
        if !eventually(Duration::from_secs(30), || self.nodes[0].is_leader()) {
            bail!("node0 did not become the leader:\n{}", self.nodes[0].log());
        }
        // Joined nodes vote once autopilot finds them stable (10 s by default).
        self.nodes[0].bao_ok(&[
            "operator",
            "raft",
            "autopilot",
            "set-config",
            "-server-stabilization-time=1s",
        ])?;
        for i in 1..3 {
            self.nodes[i].bao_ok(&["operator", "raft", "join", &self.nodes[0].addr])?;
            self.unseal(i)?;
        }
        let voters = || {
            self.nodes[0]
                .bao_json(&["operator", "raft", "list-peers"])
                .ok()
                .and_then(|peers| {
                    peers["data"]["config"]["servers"]
                        .as_array()
                        .map(|s| s.iter().filter(|server| server["voter"] == true).count())
                })
                == Some(3)
        };
        if !eventually(Duration::from_secs(60), voters) {
            bail!("the three nodes did not all become voters");
        }
        if !eventually(Duration::from_secs(30), || {
            self.nodes[1..].iter().all(Node::is_standby)
        }) {
            bail!("the joined nodes did not become standbys");
        }

        let plugin = self.dir.join("plugins").join(PLUGIN_NAME);
        let sha = sha256_hex(&plugin)?;
        self.nodes[0].bao_ok(&[
            "plugin",
            "register",
            &format!("-sha256={sha}"),
            "secret",
            PLUGIN_NAME,
        ])?;
        self.nodes[0].bao_ok(&["secrets", "enable", &format!("-path={MOUNT}"), PLUGIN_NAME])?;
        Ok(())
    }

    /// Unseal node `i` (after a start or a restart) and wait until it serves.
    pub fn unseal(&self, i: usize) -> anyhow::Result<()> {
        let node = &self.nodes[i];
        node.bao_ok(&["operator", "unseal", &self.unseal_key])?;
        if !eventually(Duration::from_secs(60), || {
            node.is_leader() || node.is_standby()
        }) {
            bail!(
                "{} did not come up after unseal:\n{}",
                node.name,
                node.log()
            );
        }
        Ok(())
    }

    /// Start node `i` again after [`Node::kill`], with its raft storage, and unseal it.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.spawn(i)?;
        self.unseal(i)
    }

    /// Every plugin process of the cluster's nodes, also of servers killed outright.
    pub fn plugin_pids(&self) -> Vec<i32> {
        processes_running(&self.dir.join("plugins").join(PLUGIN_NAME))
    }

    /// The index of the node that is the leader now, if one is.
    pub fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.server.is_some() && n.is_leader())
    }
}

fn sha256_hex(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(path)?);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

impl Drop for RaftCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        // Plugins of a server killed outright, should they have outlived it.
        for pid in processes_running(&self.dir.join("plugins").join(PLUGIN_NAME)) {
            // SAFETY: a plugin process started from this cluster's private directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::thread::panicking() {
            eprintln!("the cluster's logs are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
