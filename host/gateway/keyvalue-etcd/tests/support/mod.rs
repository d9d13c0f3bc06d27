//! A real etcd for the tests, started from Debian's `etcd-server` (`just setup` installs it)
//! on free loopback ports and killed when dropped, and a plain HTTP [`Transport`] to reach it.

use dockerhub_secrets_keyvalue_etcd::config::{KEY_VAR, PREFIX_VAR, URL_VAR};
use dockerhub_secrets_keyvalue_etcd::etcd::RangeRequest;
use dockerhub_secrets_keyvalue_etcd::seal::NONCE_LEN;
use dockerhub_secrets_keyvalue_etcd::{
    Bucket, Client, Config, Endpoint, Reply, Transport, TransportError,
};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A store key for the tests.
pub const KEY: &str = "5f1c0d9e8b7a69584736251403f2e1d0c0b1a2938475665748392a1b0c0d0e0f";
/// Another one.
pub const OTHER_KEY: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

/// One etcd member with its data in a temporary folder.
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Etcd {
    /// Start etcd and wait until it answers a range request. Panics, saying why, when the
    /// `etcd` binary is missing or it does not come up within 30 s.
    pub fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let [client, peer] = free_ports();
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("the etcd log file");
        let spawned = Command::new("etcd")
            .args(["--name", "test"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .args(["--initial-cluster-state", "new"])
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the etcd log file"))
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "the etcd binary is not on PATH: run `just setup`, which installs Debian's \
                 etcd-server package"
            ),
            Err(e) => panic!("etcd did not start: {e}"),
        };
        let mut etcd = Etcd {
            child: Some(child),
            dir,
            url,
        };
        etcd.wait_until_ready();
        etcd
    }

    fn wait_until_ready(&mut self) {
        let client = raw_client(&self.url);
        let started = Instant::now();
        loop {
            let probe = client.range(&RangeRequest {
                key: b"ready?".to_vec(),
                ..RangeRequest::default()
            });
            if probe.is_ok() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > Duration::from_secs(30) {
                panic!(
                    "etcd at {} did not come up ({}; exit: {exited:?}); its log:\n{}",
                    self.url,
                    probe.unwrap_err(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// Kill etcd and wait for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two loopback ports that were free a moment ago.
pub fn free_ports() -> [u16; 2] {
    let listeners = [(); 2].map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"));
    listeners.map(|l| l.local_addr().expect("its address").port())
}

/// [`Transport`] over a blocking HTTP/1.1 client, with one time limit for the whole exchange.
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// A client that gives up on an exchange after `timeout`.
    pub fn new(timeout: Duration) -> Http {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        Http { agent }
    }
}

impl Default for Http {
    fn default() -> Http {
        Http::new(Duration::from_secs(5))
    }
}

impl Transport for Http {
    fn post(&self, endpoint: &Endpoint, path: &str, body: &[u8]) -> Result<Reply, TransportError> {
        let sent = self
            .agent
            .post(endpoint.url(path))
            .header("content-type", "application/json")
            .send(body);
        let mut response = sent.map_err(|e| match &e {
            ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                TransportError::Unsent(e.to_string())
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                TransportError::Unsent("connection refused".to_string())
            }
            _ => TransportError::Failed(e.to_string()),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| TransportError::Failed(e.to_string()))?;
        Ok(Reply { status, body })
    }
}

/// Fresh random bytes from the OS.
pub fn random() -> [u8; NONCE_LEN] {
    let mut bytes = [0; NONCE_LEN];
    getrandom::fill(&mut bytes).expect("random bytes from the OS");
    bytes
}

/// The configuration of a store at `urls` under `prefix`, sealing with `key`.
pub fn config(urls: &str, prefix: &str, key: &str) -> Config {
    Config::from_lookup(|var| match var {
        URL_VAR => Some(urls.to_string()),
        PREFIX_VAR => Some(prefix.to_string()),
        KEY_VAR => Some(key.to_string()),
        _ => None,
    })
    .expect("a valid configuration")
}

/// Bucket `name` of the store at `url` under `prefix`, sealed with [`KEY`].
pub fn bucket(url: &str, prefix: &str, name: &str) -> Bucket<Http> {
    Bucket::open(&config(url, prefix, KEY), Http::default(), random, name).expect("a valid bucket")
}

/// A client of etcd itself, to look at and change what the store wrote.
pub fn raw_client(url: &str) -> Client<Http> {
    let endpoint = Endpoint::parse(url).expect("an etcd URL");
    Client::new(Http::new(Duration::from_secs(2)), vec![endpoint])
}
