//! What the end-to-end suites share: the compiled engine component running in the host
//! runtime, pointed at a fresh Docker Hub fake, with storage in memory and the host's log
//! captured so that tests can check what reached it.

pub mod cli;
pub mod differential;
pub mod gateway;
pub mod oidc;
pub mod openbao;
pub mod raft;
pub mod serve;

use dockerhub_secrets::engine::{FixedLimit, LeaseState, Operation, Request, Response, SystemView};
use dockerhub_secrets::{CallError, MemoryStorage, Runtime, RuntimeConfig};
use fakehub::{Config, FakeHub};
use serde_json::{Map, Value};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

pub const ACCOUNT: &str = "hoeg";
pub const PASSWORD: &str = "correct horse battery staple";
/// A Team organization (10 access tokens at most) that `hoeg` owns, with the repositories
/// `app` and `base`.
pub const ORGANIZATION: &str = "my-organization";

/// The fake Hub's accounts and organizations: `hoeg` with `password`, owner of
/// [`ORGANIZATION`] and of `big-organization` (Business: 100 access tokens, repository `app`).
pub fn hub_config(password: &str) -> Config {
    Config::default()
        .account(ACCOUNT, password, None)
        .organization(
            fakehub::Organization::new(ORGANIZATION, fakehub::Plan::Team)
                .owner(ACCOUNT)
                .repository("app")
                .repository("base"),
        )
        .organization(
            fakehub::Organization::new("big-organization", fakehub::Plan::Business)
                .owner(ACCOUNT)
                .repository("app"),
        )
}

/// The compiled engine, its storage, and the fake Hub it talks to.
pub struct Engine {
    /// The engine as the hosts call it, over the wasmtime runtime.
    pub layer: dockerhub_secrets::Engine,
    pub storage: Arc<MemoryStorage>,
    pub hub: FakeHub,
    /// The host's max lease TTL as the engine sees it; none by default.
    pub system_view: Arc<dyn SystemView>,
}

impl Engine {
    /// The engine component built into the host, against a fake Hub that knows `hoeg` and
    /// its organization (see [`hub_config`]).
    pub fn start() -> Engine {
        Engine::start_with(RuntimeConfig::default())
    }

    /// As [`Engine::start`], with the runtime's limits from `config` (its Hub URL is replaced).
    pub fn start_with(config: RuntimeConfig) -> Engine {
        capture_logs();
        let hub = FakeHub::start(hub_config(PASSWORD)).expect("start the fake hub");
        let runtime = Runtime::new(RuntimeConfig {
            hub_url: hub.url(),
            ..config
        })
        .expect("load the engine component");
        Engine {
            layer: dockerhub_secrets::Engine::new(Arc::new(runtime)),
            storage: Arc::new(MemoryStorage::new()),
            hub,
            system_view: Arc::new(FixedLimit(None)),
        }
    }

    pub async fn call(
        &self,
        operation: Operation,
        path: &str,
        data: Value,
    ) -> Result<Response, CallError> {
        self.send(request(operation, path, data)).await
    }

    pub async fn send(&self, request: Request) -> Result<Response, CallError> {
        self.layer
            .handle(self.storage.clone(), self.system_view.clone(), &request)
            .await
    }

    /// `config/hoeg` as the seed session writes it.
    pub async fn configure(&self) {
        let data = serde_json::json!({"namespace": "hoeg,my-organization", "password": PASSWORD});
        self.call(Operation::Update, "config/hoeg", data)
            .await
            .expect("configure hoeg");
    }

    /// Issue a token for `hoeg/my-organization`.
    pub async fn issue(&self, data: Value) -> Issued {
        let response = self
            .call(Operation::Update, "token/hoeg/my-organization", data)
            .await
            .expect("issue a token");
        Issued::from(response)
    }

    pub async fn revoke(&self, lease: &LeaseState) -> Result<Response, CallError> {
        let mut request = request(Operation::Revoke, "token/hoeg/my-organization", Value::Null);
        request.lease = Some(lease.clone());
        self.send(request).await
    }
}

/// A Vault request with `data` as its JSON body.
pub fn request(operation: Operation, path: &str, data: Value) -> Request {
    Request {
        operation,
        path: path.to_string(),
        data: if data.is_null() {
            "{}".to_string()
        } else {
            data.to_string()
        },
        display_name: None,
        entity_id: None,
        lease: None,
    }
}

/// An issued token: its response data and the lease state a host would send back.
pub struct Issued {
    pub data: Map<String, Value>,
    pub lease: LeaseState,
    pub ttl: u64,
    pub max_ttl: u64,
}

impl Issued {
    pub fn uuid(&self) -> &str {
        self.data["uuid"].as_str().expect("uuid")
    }

    pub fn token(&self) -> &str {
        self.data["token"].as_str().expect("token")
    }
}

impl From<Response> for Issued {
    fn from(response: Response) -> Issued {
        let data = response.data.expect("token data");
        let Value::Object(data) = serde_json::from_str(&data).expect("JSON data") else {
            panic!("data is not an object");
        };
        let lease = response.lease.expect("a lease");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        Issued {
            data,
            ttl: lease.ttl,
            max_ttl: lease.max_ttl,
            lease: LeaseState {
                internal_data: lease.internal_data,
                issue_time: wasmtime_datetime(now),
                ttl: lease.ttl,
                increment: 0,
            },
        }
    }
}

fn wasmtime_datetime(since_epoch: std::time::Duration) -> dockerhub_secrets::engine::Datetime {
    dockerhub_secrets::engine::Datetime {
        seconds: since_epoch.as_secs(),
        nanoseconds: since_epoch.subsec_nanos(),
    }
}

/// The response's data as a JSON object.
pub fn data(response: &Response) -> Map<String, Value> {
    match serde_json::from_str(response.data.as_deref().expect("data")) {
        Ok(Value::Object(map)) => map,
        other => panic!("data is not an object: {other:?}"),
    }
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Send every log record of this test process, at every level, into a buffer.
fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buffer.clone());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        buffer
    });
}

/// Everything logged so far by this test process.
pub fn logs() -> String {
    let buffer = LOGS.get().expect("logs are captured once an engine starts");
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// The Hub token's uuid in a `bao write -format=json dockerhub/token/...` answer.
pub fn uuid(secret: &Value) -> &str {
    secret["data"]["uuid"]
        .as_str()
        .expect("a uuid in the answer")
}

/// The lease id in such an answer.
pub fn lease_id(secret: &Value) -> &str {
    secret["lease_id"]
        .as_str()
        .expect("a lease_id in the answer")
}

/// What `docker login` would do with a token answer's `docker_config` (the text of
/// `~/.docker/config.json`): take Docker Hub's `auth` (base64 of `username:token`) and log in
/// with it, here at the fake's `POST /v2/auth/token`. Panics unless the document has exactly
/// Docker Hub's entry and the login succeeds; returns the username and token.
pub fn docker_login(hub: &FakeHub, docker_config: &str) -> (String, String) {
    use base64::Engine as _;
    let config: Value = serde_json::from_str(docker_config.trim_end())
        .unwrap_or_else(|e| panic!("docker_config is not JSON ({e}): {docker_config}"));
    let auths = config["auths"].as_object().expect("an auths object");
    assert_eq!(
        auths.keys().collect::<Vec<_>>(),
        ["https://index.docker.io/v1/"],
        "{config}"
    );
    let auth = auths["https://index.docker.io/v1/"]["auth"]
        .as_str()
        .expect("an auth string");
    let pair = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .expect("auth is base64");
    let pair = String::from_utf8(pair).expect("auth is UTF-8");
    let (username, token) = pair.split_once(':').expect("auth is username:token");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = agent
        .post(format!("{}/v2/auth/token", hub.url()))
        .send_json(serde_json::json!({"identifier": username, "secret": token}))
        .expect("the fake Hub answers")
        .status();
    assert_eq!(status, 200, "{username}:<token> does not log in at the Hub");
    (username.to_string(), token.to_string())
}

/// The value in a row of a `bao` key/value table, e.g. `ttl              5m0s`.
pub fn row<'a>(table: &'a str, key: &str) -> Option<&'a str> {
    table.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim())
    })
}

/// SIGTERM to `target` (a pid, or minus a process-group id), up to `grace` for `child` to
/// exit, then SIGKILL. A process group is always swept with SIGKILL afterwards (its other
/// members, such as plugins, may outlive the leader); a lone process only if it did not exit,
/// since its pid may already belong to someone else.
pub(crate) fn terminate(
    child: &mut std::process::Child,
    target: i32,
    grace: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    // SAFETY: signalling a process (group) this harness started.
    unsafe { libc::kill(target, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + grace;
    let mut status = None;
    while status.is_none() && std::time::Instant::now() < deadline {
        status = child.try_wait().ok().flatten();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if status.is_none() || target < 0 {
        // SAFETY: as above.
        unsafe { libc::kill(target, libc::SIGKILL) };
    }
    status.or_else(|| child.wait().ok())
}
