//! The host the engine's native unit tests run on: storage in a map, a clock that tests can
//! move forward, and Docker Hub played by the project's fake (`fakehub`) over real HTTP on
//! 127.0.0.1, so that engine logic is tested against the same Hub contract as the component.

use crate::api::{EngineError, Operation, Request, Response};
use crate::capabilities::{
    Bucket, Entity, Host, HttpRequest, HttpResponse, Level, NoAnswer, StorageError, TransportError,
};
use fakehub::{Config, FakeHub, Organization, Plan};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const ACCOUNT: &str = "hoeg";
pub const PASSWORD: &str = "correct horse battery staple";
/// The TOTP seed of `otp-owner`, who owns the organization `otp-org`.
pub const OTP_SEED: &str = "JBSWY3DPEHPK3PXP";
/// A Team organization (10 access tokens at most) that `hoeg` owns, with the repositories
/// `app` and `base`; one of the namespaces of [`TestHost::configured`].
pub const ORGANIZATION: &str = "my-organization";

pub struct TestHost {
    pub hub: FakeHub,
    storage: RefCell<BTreeMap<(Bucket, String), Vec<u8>>>,
    /// Seconds added to real time, so tests can jump past TTLs without sleeping.
    clock_offset: Cell<u64>,
    next_random: Cell<u64>,
    /// Every log record, as `level context: message`.
    pub logs: RefCell<Vec<String>>,
    /// A bucket whose writes fail, to test storage failures.
    pub failing_bucket: Cell<Option<Bucket>>,
    /// The host's max lease TTL (a mount's tuning); `None`: no limit.
    pub max_lease_ttl: Cell<Option<u64>>,
    /// How often the engine asked for it.
    pub max_lease_ttl_asked: Cell<u32>,
    /// The host's identity store, by entity id.
    pub entities: RefCell<BTreeMap<String, Entity>>,
    /// When set, every entity lookup fails with this reason.
    pub entity_error: RefCell<Option<String>>,
    /// Run at every sleep of the engine, before it sleeps: what other requests do meanwhile.
    #[allow(clippy::type_complexity)]
    pub on_sleep: RefCell<Option<Box<dyn Fn(&TestHost)>>>,
    /// How often the engine slept.
    pub sleeps: Cell<u32>,
    /// The mount's id as the host knows it; `None`: the engine keeps its own.
    pub mount_id: RefCell<Option<String>>,
    /// The entity ids the engine looked up, in order.
    pub entities_asked: RefCell<Vec<String>>,
    /// Seconds the clock moves on with every Hub request, to play a slow Hub without waiting.
    pub seconds_per_request: Cell<u64>,
    /// The next request with this method is not sent; the host answers this failure instead,
    /// as a host that refuses a request does.
    pub refuse_next: RefCell<Option<(&'static str, TransportError)>>,
    /// When the host would stop the call; `None`: no time limit.
    pub call_ends_at: Cell<Option<Instant>>,
    agent: ureq::Agent,
}

impl TestHost {
    /// A host whose fake Hub knows the account `hoeg`.
    pub fn new() -> TestHost {
        TestHost::with_request_timeout(Duration::from_secs(20))
    }

    /// As [`TestHost::new`], giving up on a Hub request after `timeout` (the component's
    /// adapter waits 30 s for a first byte).
    pub fn with_request_timeout(timeout: Duration) -> TestHost {
        let hub = FakeHub::start(
            Config::default()
                .account(ACCOUNT, PASSWORD, None)
                .organization(
                    Organization::new(ORGANIZATION, Plan::Team)
                        .owner(ACCOUNT)
                        .repository("app")
                        .repository("base"),
                )
                // An organization whose owner logs in with a second factor.
                .account("otp-owner", "otp password", Some(OTP_SEED))
                .organization(
                    Organization::new("otp-org", Plan::Team)
                        .owner("otp-owner")
                        .repository("app"),
                )
                // An organization `hoeg` is no owner of.
                .account("stranger", "stranger's password", None)
                .organization(
                    Organization::new("other-org", Plan::Team)
                        .owner("stranger")
                        .repository("site"),
                ),
        )
        .expect("start the fake hub");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build()
            .into();
        TestHost {
            hub,
            storage: RefCell::default(),
            clock_offset: Cell::new(0),
            next_random: Cell::new(0x5eed),
            logs: RefCell::default(),
            failing_bucket: Cell::new(None),
            max_lease_ttl: Cell::new(None),
            max_lease_ttl_asked: Cell::new(0),
            entities: RefCell::default(),
            entity_error: RefCell::default(),
            entities_asked: RefCell::default(),
            mount_id: RefCell::default(),
            on_sleep: RefCell::default(),
            sleeps: Cell::new(0),
            seconds_per_request: Cell::new(0),
            refuse_next: RefCell::default(),
            call_ends_at: Cell::new(None),
            agent,
        }
    }

    /// A host with `config/hoeg` written as in the seed session (no verification login).
    pub fn configured() -> TestHost {
        let host = TestHost::new();
        host.call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg,my-organization", "password": PASSWORD, "verify": false}),
        )
        .expect("configure hoeg");
        host
    }

    pub fn advance(&self, seconds: u64) {
        self.clock_offset.set(self.clock_offset.get() + seconds);
    }

    pub fn call(
        &self,
        operation: Operation,
        path: &str,
        data: Value,
    ) -> Result<Response, EngineError> {
        crate::backend::handle(self, &Request::new(operation, path).with_data(data))
    }

    /// [`TestHost::configured`] with the role `app-pull`: pull from `my-organization/app`.
    pub fn with_role() -> TestHost {
        let host = TestHost::configured();
        host.call(
            Operation::Update,
            "roles/app-pull",
            json!({"account": ACCOUNT, "organization": ORGANIZATION, "pull_repositories": "app"}),
        )
        .expect("write roles/app-pull");
        host
    }

    /// Issue an organization access token for the role `app-pull`; returns the response.
    pub fn issue_creds(&self, data: Value) -> Response {
        self.call(Operation::Update, "creds/app-pull", data)
            .expect("issue an organization access token")
    }

    /// Issue a token for hoeg/my-organization; returns the response.
    pub fn issue(&self, data: Value) -> Response {
        self.call(Operation::Update, "token/hoeg/my-organization", data)
            .expect("issue a token")
    }

    /// Revoke the lease whose internal data is `internal_data`, as a host does.
    pub fn revoke(&self, internal_data: &str) -> Result<Response, EngineError> {
        let mut request = Request::new(Operation::Revoke, "token/hoeg/my-organization");
        request.lease = Some(crate::api::LeaseState {
            internal_data: internal_data.to_string(),
            issue_time: self.now(),
            ttl: 0,
            increment: 0,
        });
        crate::backend::handle(self, &request)
    }

    pub fn keys(&self, bucket: Bucket) -> Vec<String> {
        self.list(bucket).expect("in-memory listing cannot fail")
    }

    /// Everything the engine stored, as text: for checking that no secret is kept where
    /// it should not be.
    pub fn stored_text(&self, bucket: Bucket) -> String {
        self.storage
            .borrow()
            .iter()
            .filter(|((b, _), _)| *b == bucket)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Host for TestHost {
    fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .storage
            .borrow()
            .get(&(bucket, key.to_string()))
            .cloned())
    }

    fn set(&self, bucket: Bucket, key: &str, value: &[u8]) -> Result<(), StorageError> {
        if self.failing_bucket.get() == Some(bucket) {
            return Err(StorageError("disk full".into()));
        }
        self.storage
            .borrow_mut()
            .insert((bucket, key.to_string()), value.to_vec());
        Ok(())
    }

    fn delete(&self, bucket: Bucket, key: &str) -> Result<(), StorageError> {
        self.storage.borrow_mut().remove(&(bucket, key.to_string()));
        Ok(())
    }

    fn list(&self, bucket: Bucket) -> Result<Vec<String>, StorageError> {
        Ok(self
            .storage
            .borrow()
            .keys()
            .filter(|(b, _)| *b == bucket)
            .map(|(_, k)| k.clone())
            .collect())
    }

    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let refusal = self
            .refuse_next
            .borrow_mut()
            .take_if(|(method, _)| *method == request.method);
        if let Some((_, error)) = refusal {
            return Err(error);
        }
        self.advance(self.seconds_per_request.get());
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(format!("{}{}", self.hub.url(), request.path));
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let http_request = builder
            .body(request.body.clone().unwrap_or_default())
            .map_err(|e| TransportError::permanent(NoAnswer::Denied, e.to_string()).unsent())?;
        let mut response = self.agent.run(http_request).map_err(transport_error)?;
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = response.body_mut().read_to_vec().map_err(transport_error)?;
        Ok(HttpResponse {
            status: response.status().as_u16(),
            headers,
            body,
        })
    }

    fn now(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        real + self.clock_offset.get()
    }

    fn sleep(&self, duration: Duration) {
        self.sleeps.set(self.sleeps.get() + 1);
        if let Some(hook) = self.on_sleep.borrow().as_ref() {
            hook(self);
        }
        std::thread::sleep(duration);
    }

    fn random_u64(&self) -> u64 {
        let next = self
            .next_random
            .get()
            .wrapping_mul(6_364_136_223_846_793_005)
            + 1;
        self.next_random.set(next);
        next
    }

    fn log(&self, level: Level, context: &str, message: &str) {
        self.logs
            .borrow_mut()
            .push(format!("{level:?} {context}: {message}"));
    }

    fn max_lease_ttl(&self) -> Option<u64> {
        self.max_lease_ttl_asked
            .set(self.max_lease_ttl_asked.get() + 1);
        self.max_lease_ttl.get()
    }

    fn entity(&self, entity_id: &str) -> Result<Option<Entity>, String> {
        self.entities_asked.borrow_mut().push(entity_id.to_string());
        if let Some(reason) = self.entity_error.borrow().clone() {
            return Err(reason);
        }
        Ok(self.entities.borrow().get(entity_id).cloned())
    }

    fn mount_id(&self) -> Option<String> {
        self.mount_id.borrow().clone()
    }

    fn time_left(&self) -> Option<Duration> {
        self.call_ends_at
            .get()
            .map(|end| end.saturating_duration_since(Instant::now()))
    }
}

/// A ureq failure as the engine's hosts report one: sorted, and unsent when no connection
/// was made.
fn transport_error(error: ureq::Error) -> TransportError {
    let kind = match &error {
        ureq::Error::Timeout(_) => NoAnswer::TimedOut,
        ureq::Error::HostNotFound => NoAnswer::Unresolved,
        ureq::Error::ConnectionFailed => NoAnswer::Unreachable,
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            NoAnswer::Refused
        }
        _ => NoAnswer::Closed,
    };
    let error = TransportError::transient(kind, error.to_string());
    match kind {
        NoAnswer::Unresolved | NoAnswer::Refused | NoAnswer::Unreachable => error.unsent(),
        _ => error,
    }
}
