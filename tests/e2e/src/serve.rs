//! `dockerhub-secrets serve` as a process, with a tokens file, its own data directory and
//! a Docker Hub fake; driven with the real `bao` CLI or plain HTTP. It can be stopped,
//! killed and restarted on the same data; dropping it stops it, also when a test fails.

use crate::cli::BaoCli;
use crate::oidc::Issuer;
use crate::openbao::{bao_binary, plugin_binary};
use anyhow::{Context, bail};
use fakehub::FakeHub;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The admin's token (policy `root`) and a CI job's (policy `ci-release`).
pub const ROOT_TOKEN: &str = "hvs.admin-token-for-tests";
pub const CI_TOKEN: &str = "hvs.ci-release-token-for-tests";

/// The SHA-256 of `text` in hex, as a tokens file holds a token.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tests' tokens file: `admin` (root) and `ci-release` (a token for one namespace).
pub fn tokens_file() -> String {
    format!(
        r#"token "admin" {{
  sha256   = "{}"
  policies = ["root"]
}}

token "ci-release" {{
  sha256   = "{}"
  policies = ["ci-release"]
}}

policy "ci-release" {{
  path "dockerhub/token/hoeg/my-organization" {{
    capabilities = ["create", "update"]
  }}
  path "sys/leases/revoke/dockerhub/token/hoeg/my-organization/*" {{
    capabilities = ["update"]
  }}
}}
"#,
        sha256_hex(ROOT_TOKEN),
        sha256_hex(CI_TOKEN)
    )
}

/// The audience the pipelines' identity tokens are minted for (GitLab's `id_tokens: aud:`).
pub const JWT_AUDIENCE: &str = "https://dockerhub-secrets.example";

/// A string as HCL writes it (JSON's escapes are HCL's).
fn hcl_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// The tokens file's part for keyless CI, as the README shows it: the pipeline policy, and
/// `auth "jwt"` trusting `issuer` (its JWKS URL, or OIDC discovery; HTTPS) with
/// `role "release"` (`role_settings` inside the block).
pub fn jwt_auth_block(issuer: &Issuer, discovery: bool, role_settings: &str) -> String {
    let ca_pem = hcl_string(issuer.ca_pem().expect("an HTTPS issuer"));
    let trust = match discovery {
        true => format!(
            "oidc_discovery_url = {}\n  oidc_discovery_ca_pem = {ca_pem}",
            hcl_string(issuer.url()),
        ),
        false => format!(
            "jwks_url = {}\n  jwks_ca_pem = {ca_pem}",
            hcl_string(&issuer.jwks_url()),
        ),
    };
    format!(
        r#"
policy "pipeline-acme-app" {{
  path "dockerhub/token/hoeg/my-organization" {{
    capabilities = ["create", "update"]
  }}
}}

auth "jwt" {{
  type = "jwt"
  {trust}
  bound_issuer = {iss}

  role "release" {{
    role_type       = "jwt"
    bound_audiences = [{JWT_AUDIENCE:?}]
    token_policies  = ["pipeline-acme-app"]
    {role_settings}
  }}
}}
"#,
        iss = hcl_string(issuer.url()),
    )
}

pub struct Serve {
    child: Option<Child>,
    pub addr: String,
    pub dir: PathBuf,
    pub hub: FakeHub,
    args: Vec<String>,
    cli: BaoCli,
    agent: ureq::Agent,
}

impl std::ops::Deref for Serve {
    type Target = BaoCli;

    fn deref(&self) -> &BaoCli {
        &self.cli
    }
}

impl Serve {
    /// Start the server in a fresh directory against `hub`, with `args` added to `serve`.
    pub fn start(hub: FakeHub, args: &[&str]) -> anyhow::Result<Serve> {
        Serve::start_with_tokens(hub, args, "")
    }

    /// As [`Serve::start`], with `extra` (more `token` and `policy` blocks) in the tokens file.
    pub fn start_with_tokens(hub: FakeHub, args: &[&str], extra: &str) -> anyhow::Result<Serve> {
        let dir = std::env::temp_dir().join(format!(
            "dockerhub-secrets-serve-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("tokens.hcl"), tokens_file() + extra)?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut serve = Serve {
            child: None,
            addr: String::new(),
            cli: BaoCli::new(bao_binary()?, String::new(), ROOT_TOKEN, &dir),
            dir,
            hub,
            args: args.iter().map(|a| a.to_string()).collect(),
            agent,
        };
        serve.spawn()?;
        Ok(serve)
    }

    /// Start the process (again) on the same data directory.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        self.spawn_with(&[])
    }

    /// The server's command line on this directory, with `extra` arguments to `serve`.
    fn command(&self, extra: &[&str]) -> anyhow::Result<Command> {
        let mut command = Command::new(plugin_binary()?);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
            .arg(self.dir.join("tokens.hcl"))
            .arg("--data")
            .arg(self.dir.join("data"))
            .args(&self.args)
            .args(extra)
            .env("DOCKERHUB_SECRETS_HUB_URL", self.hub.url())
            .env("DOCKERHUB_SECRETS_LOG", "debug")
            .env_remove("DOCKERHUB_SECRETS_KEY")
            .stdin(Stdio::null());
        Ok(command)
    }

    /// Run the server expecting it to refuse to start: its exit status and its stderr. A
    /// server that starts instead (prints its address) is stopped at once, and the status is
    /// its stop's.
    pub fn refused(&self, extra: &[&str]) -> anyhow::Result<(std::process::ExitStatus, String)> {
        let mut child = self
            .command(extra)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting dockerhub-secrets serve")?;
        let mut stderr = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let stdout = child.stdout.take().expect("piped");
        let (started_tx, started) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(_)) = lines.next() {
                let _ = started_tx.send(());
            }
            for _ in lines {}
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut status = child.try_wait()?;
        while status.is_none()
            && started.try_recv().is_err()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
            status = child.try_wait()?;
        }
        let status = match status.or(child.try_wait()?) {
            Some(status) => status,
            None => {
                let pid = child.id() as i32;
                crate::terminate(&mut child, pid, Duration::from_secs(20))
                    .context("the server neither exited nor stopped")?
            }
        };
        Ok((status, reader.join().unwrap_or_default()))
    }

    /// Start `serve` with its stdout and stderr going to pipes whose readers are gone at once
    /// (a log reader that exited), and return how it ended (stopped after 30 s at the most).
    pub fn with_output_gone(&self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self
            .command(&[])?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting dockerhub-secrets serve")?;
        drop(child.stdout.take());
        drop(child.stderr.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = child.id() as i32;
        crate::terminate(&mut child, pid, Duration::from_secs(20))
            .context("the server neither exited nor stopped")
    }

    /// As [`Serve::spawn`], with `extra` arguments to `serve` this time only.
    pub fn spawn_with(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))?;
        let mut child = self
            .command(extra)?
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting dockerhub-secrets serve")?;
        let stdout = child.stdout.take().expect("piped");
        self.child = Some(child);
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = line_tx.send(line);
            }
            // Keep reading, so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = line_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow::anyhow!("serve printed no address:\n{}", self.log()))?;
        let Some(addr) = line.strip_prefix("listening on ") else {
            bail!("unexpected first line {line:?}:\n{}", self.log());
        };
        self.addr = addr.to_string();
        self.cli = BaoCli::new(bao_binary()?, self.addr.clone(), ROOT_TOKEN, &self.dir);
        Ok(())
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, and wait for the process to finish (SIGKILL after 20 s).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id() as i32;
        crate::terminate(&mut child, pid, Duration::from_secs(20))
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// One HTTP request to the server: the status and the JSON answer (`null` when empty).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.addr));
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        let mut response = self.agent.run(request.body(body.to_vec())?)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?
        };
        Ok((status, json))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("the server's log is kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
