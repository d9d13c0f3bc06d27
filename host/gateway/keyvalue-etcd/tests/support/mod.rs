//! A real etcd for the tests (the shared launcher, `tests/etcd`), and a plain HTTP
//! [`Transport`] to reach it.

use dockerhub_secrets_keyvalue_etcd::config::{KEY_VAR, PREFIX_VAR, URL_VAR};
use dockerhub_secrets_keyvalue_etcd::seal::NONCE_LEN;
use dockerhub_secrets_keyvalue_etcd::{
    Bucket, Client, Config, Endpoint, Reply, Transport, TransportError,
};
use std::time::Duration;

/// A store key for the tests.
pub const KEY: &str = "5f1c0d9e8b7a69584736251403f2e1d0c0b1a2938475665748392a1b0c0d0e0f";
/// Another one.
pub const OTHER_KEY: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

pub use dockerhub_secrets_test_etcd::Etcd;

/// Two loopback ports that were free a moment ago.
pub fn free_ports() -> [u16; 2] {
    dockerhub_secrets_test_etcd::free_ports().expect("free loopback ports")
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
