//! The wasmtime runtime that every host front end shares: it loads the engine component
//! once, runs each call in a fresh, sandboxed instance, and supplies the capabilities.
//!
//! Sandbox, per call: a memory limit (a [`ResourceLimiter`] on linear-memory growth), a time
//! limit (an epoch deadline for guest code that spins, a timer for guest code blocked on
//! I/O), outgoing HTTP only to the operator's Docker Hub URL ([`outbound`]), no files, no
//! sockets, no environment. Start-up cost is kept out of calls: the component is compiled
//! when the binary is built (see [`component`]; the binary carries no compiler), loaded once
//! per process and pre-linked with [`InstancePre`]; instances come from the pooling allocator.

mod bindings;
pub mod component;
mod engine_config;
mod gate;
mod keyvalue;
mod limits;
mod logging;
mod outbound;

pub use bindings::{
    BackendHelp, Datetime, EngineError, Field, FieldKind, Lease, LeaseState, Operation, PathHelp,
    Request, Response, UpstreamError,
};
pub use egress::HubUrlError;
pub use gate::MAX_WAIT as MAX_UPSTREAM_WAIT;
pub use limits::{FixedLimit, LeaseLimits};

use crate::storage::Storage;
use bindings::{Engine as EngineWorld, EnginePre};
use engine_config::{POOL_MAX_MEMORY, POOL_SLOTS};
use outbound::{CallDeadline, HubRoute};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How often the epoch advances; the time limit's resolution.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How long a revocation may wait at the upstream's gate (see `gate`) before its error goes
/// back to the host's own retry (OpenBao's ladder, the standalone lease timers).
const REVOKE_RATE_LIMIT_PATIENCE: Duration = Duration::from_secs(15);
/// The least time between two attempts of one rate-limited revocation.
const MIN_REVOKE_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// What the engine may write to stderr (panic messages) before it is cut off.
const STDERR_CAPACITY: usize = 16 * 1024;
/// The most request data (the request's JSON) a call takes, in bytes. The engine's requests
/// are a few hundred bytes; a larger one is refused before the engine is called, so that it
/// costs the sandbox no memory.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The operator's settings for the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where Docker Hub is: `https://hub.docker.com`, a proxy, or a fake.
    pub hub_url: String,
    /// Most linear memory one call may use, in bytes.
    pub memory_limit: usize,
    /// Longest one call may take, waiting on the Hub included.
    pub time_limit: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            hub_url: "https://hub.docker.com".to_string(),
            memory_limit: 64 << 20,
            time_limit: Duration::from_secs(60),
        }
    }
}

/// Why a call did not produce the engine's answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The engine answered with an error (a 4xx, or an upstream failure).
    #[error("{}", engine_error_message(.0))]
    Engine(EngineError),
    #[error("the engine exceeded its time limit of {0:?}")]
    TimeLimit(Duration),
    #[error("the engine exceeded its memory limit of {0} bytes")]
    MemoryLimit(usize),
    /// The engine crashed; the message is wasmtime's description of the trap.
    #[error("the engine failed: {0}")]
    Trap(String),
    /// The runtime itself failed (instantiation, pool exhausted).
    #[error("the engine could not be started: {0}")]
    Runtime(String),
    /// The request's data is over [`MAX_REQUEST_BYTES`]: the engine was not called.
    #[error("request body too large: the engine takes at most {MAX_REQUEST_BYTES} bytes")]
    RequestTooLarge,
}

fn engine_error_message(e: &EngineError) -> &str {
    match e {
        EngineError::InvalidRequest(m)
        | EngineError::PermissionDenied(m)
        | EngineError::UnsupportedPath(m)
        | EngineError::UnsupportedOperation(m)
        | EngineError::Internal(m) => m,
        EngineError::Upstream(u) => &u.message,
    }
}

impl CallError {
    /// The HTTP status Vault would answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            CallError::Engine(EngineError::InvalidRequest(_)) => 400,
            CallError::Engine(EngineError::PermissionDenied(_)) => 403,
            CallError::Engine(EngineError::UnsupportedPath(_)) => 404,
            CallError::Engine(EngineError::UnsupportedOperation(_)) => 405,
            CallError::Engine(EngineError::Upstream(_)) => 502,
            CallError::TimeLimit(_) => 504,
            CallError::RequestTooLarge => 413,
            CallError::Engine(EngineError::Internal(_))
            | CallError::MemoryLimit(_)
            | CallError::Trap(_)
            | CallError::Runtime(_) => 500,
        }
    }
}

/// Counts memory growth against the call's limit, and remembers whether it was hit.
struct Limiter {
    memory_limit: usize,
    memory_exceeded: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The store data of one call.
struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hub: HubRoute,
    storage: Arc<dyn Storage>,
    limits: Arc<dyn LeaseLimits>,
    /// The answer of `limits`, once the engine asked.
    max_ttl: Option<Option<u64>>,
    limiter: Limiter,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hub,
        }
    }
}

/// Builds the wasmtime engine that runs precompiled components.
fn new_engine() -> anyhow::Result<Engine> {
    Ok(Engine::new(&engine_config::engine_config())?)
}

/// Runs the engine component. One per process; share it behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    pre: EnginePre<HostState>,
    hub: HubRoute,
    config: RuntimeConfig,
    ticker: EpochTicker,
    slots: Semaphore,
    /// The paths whose help declares an existence check, learnt on first use.
    checked_paths: tokio::sync::OnceCell<Vec<regex::Regex>>,
}

impl Runtime {
    /// The runtime for the engine component built into this binary.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        let engine = new_engine()?;
        let component = component::load(&engine)?;
        Runtime::with_component(engine, &component, config)
    }

    /// A runtime for another component of the same world, precompiled with this runtime's
    /// settings (tests use a misbehaving one; see `engine_config.rs`).
    ///
    /// # Safety
    ///
    /// `precompiled` must come from wasmtime's `precompile_component` with
    /// [`engine_config`](engine_config::engine_config)'s settings, as wasmtime trusts the
    /// machine code in it. Version and settings mismatches are detected and refused.
    pub unsafe fn from_precompiled(
        precompiled: &[u8],
        config: RuntimeConfig,
    ) -> anyhow::Result<Runtime> {
        let engine = new_engine()?;
        // SAFETY: the caller vouches for the bytes, as this function's contract says.
        let component = unsafe { Component::deserialize(&engine, precompiled)? };
        Runtime::with_component(engine, &component, config)
    }

    fn with_component(
        engine: Engine,
        component: &Component,
        config: RuntimeConfig,
    ) -> anyhow::Result<Runtime> {
        anyhow::ensure!(
            config.memory_limit <= POOL_MAX_MEMORY,
            "the memory limit may be at most {POOL_MAX_MEMORY} bytes"
        );
        let hub = HubRoute::new(&config.hub_url)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::keyvalue_store::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::logging::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::lease_limits::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::call_limits::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let instance_pre: InstancePre<HostState> = linker.instantiate_pre(component)?;
        let pre = EnginePre::new(instance_pre)?;
        let ticker = EpochTicker::spawn(&engine);
        Ok(Runtime {
            engine,
            pre,
            hub,
            config,
            ticker,
            slots: Semaphore::new(POOL_SLOTS as usize),
            checked_paths: tokio::sync::OnceCell::new(),
        })
    }

    fn store(
        &self,
        storage: Arc<dyn Storage>,
        limits: Arc<dyn LeaseLimits>,
    ) -> (Store<HostState>, MemoryOutputPipe) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hub: self
                .hub
                .for_call(CallDeadline::new(Instant::now(), self.config.time_limit)),
            storage,
            limits,
            max_ttl: None,
            limiter: Limiter {
                memory_limit: self.config.memory_limit,
                memory_exceeded: false,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = self.config.time_limit.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        (store, stderr)
    }

    /// Run `call` on a fresh instance within the call's limits.
    async fn run<T>(
        &self,
        storage: Arc<dyn Storage>,
        limits: Arc<dyn LeaseLimits>,
        call: impl AsyncFnOnce(
            &EngineWorld,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<T, EngineError>>,
    ) -> Result<T, CallError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| CallError::Runtime("the runtime is shutting down".into()))?;
        let _busy = self.ticker.busy();
        let (mut store, stderr) = self.store(storage, limits);
        let outcome = tokio::time::timeout(self.config.time_limit, async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            call(&instance, &mut store).await
        })
        .await;
        let stderr = stderr.contents();
        if !stderr.is_empty() {
            tracing::warn!(target: "engine", "{}", String::from_utf8_lossy(&stderr).trim_end());
        }
        match outcome {
            Err(_elapsed) => Err(CallError::TimeLimit(self.config.time_limit)),
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(engine_error))) => Err(CallError::Engine(engine_error)),
            Ok(Err(_)) if store.data().limiter.memory_exceeded => {
                Err(CallError::MemoryLimit(self.config.memory_limit))
            }
            Ok(Err(e)) if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => {
                Err(CallError::TimeLimit(self.config.time_limit))
            }
            Ok(Err(e)) => Err(CallError::Trap(format!("{e:#}"))),
        }
    }

    /// Handle one request. A revocation that the upstream rate-limits is retried here once
    /// the upstream's gate opens (see `gate`), waiting outside any instance, for up to
    /// [`REVOKE_RATE_LIMIT_PATIENCE`] or the call's time limit, whichever is shorter, in all; a revocation also waits for a closed gate
    /// before it starts, so that a burst of them does not fill the instance pool with calls
    /// that can only wait, and is not tried at all if the gate stays closed past the
    /// patience (a 429 error with `retry_after` until it opens).
    pub async fn handle(
        &self,
        storage: Arc<dyn Storage>,
        limits: Arc<dyn LeaseLimits>,
        request: &Request,
    ) -> Result<Response, CallError> {
        if request.data.len() > MAX_REQUEST_BYTES {
            return Err(CallError::RequestTooLarge);
        }
        if request.operation != Operation::Revoke {
            return self.handle_once(storage, limits, request).await;
        }
        // The call's time limit covers its waits for the upstream too.
        let patience = Instant::now() + REVOKE_RATE_LIMIT_PATIENCE.min(self.config.time_limit);
        let gate = self.hub.gate();
        if let Err(closed) = gate.pass(patience).await {
            return Err(still_rate_limited(closed.opens_in));
        }
        loop {
            let started = Instant::now();
            let outcome = self
                .handle_once(storage.clone(), limits.clone(), request)
                .await;
            let rate_limited = matches!(
                &outcome,
                Err(CallError::Engine(EngineError::Upstream(UpstreamError {
                    status: 429,
                    ..
                })))
            );
            // The gate holds the retry until the upstream's time; the floor keeps a 429 that
            // names no wait (or `Retry-After: 0`) from making this loop hammer the upstream.
            let retry_at = started + MIN_REVOKE_RETRY_INTERVAL;
            if !rate_limited || retry_at > patience || gate.pass(patience).await.is_err() {
                return outcome;
            }
            tokio::time::sleep_until(retry_at.into()).await;
        }
    }

    async fn handle_once(
        &self,
        storage: Arc<dyn Storage>,
        limits: Arc<dyn LeaseLimits>,
        request: &Request,
    ) -> Result<Response, CallError> {
        self.run(storage, limits, async |engine, store| {
            engine
                .dockerhub_secrets_engine_backend()
                .call_handle(store, request)
                .await
        })
        .await
    }

    /// Whether the object a write would touch exists (`None`: the path has no check).
    /// Hosts ask before every write; paths whose help declares no existence check are
    /// answered without starting an instance.
    pub async fn existence_check(
        &self,
        storage: Arc<dyn Storage>,
        request: &Request,
    ) -> Result<Option<bool>, CallError> {
        let checked = self
            .checked_paths
            .get_or_try_init(|| async {
                let help = self.help().await?;
                Ok::<_, CallError>(
                    help.paths
                        .iter()
                        .filter(|p| p.existence_check)
                        .filter_map(|p| regex::Regex::new(&format!("^{}", p.pattern)).ok())
                        .collect::<Vec<_>>(),
                )
            })
            .await?;
        if !checked.iter().any(|re| re.is_match(&request.path)) {
            return Ok(None);
        }
        self.run(storage, no_limit(), async |engine, store| {
            engine
                .dockerhub_secrets_engine_backend()
                .call_existence_check(store, request)
                .await
        })
        .await
    }

    /// The engine's paths and help text.
    pub async fn help(&self) -> Result<BackendHelp, CallError> {
        self.run(
            Arc::new(crate::MemoryStorage::new()),
            no_limit(),
            async |engine, store| {
                engine
                    .dockerhub_secrets_engine_backend()
                    .call_help(store)
                    .await
                    .map(Ok)
            },
        )
        .await
    }
}

/// A revocation not tried because the upstream's gate stays closed past the runtime's
/// patience: the error the engine gives for a 429, with `retry_after` the whole seconds until
/// the gate opens, so that the host's own retry waits for it.
fn still_rate_limited(opens_in: Duration) -> CallError {
    let seconds = opens_in.as_secs() + u64::from(opens_in.subsec_nanos() > 0);
    CallError::Engine(EngineError::Upstream(UpstreamError {
        status: 429,
        message: format!(
            "not tried: the server asked for no requests for another {seconds} s (Retry-After)"
        ),
        retry_after: Some(seconds),
    }))
}

/// For calls that issue no lease (existence checks, help).
fn no_limit() -> Arc<dyn LeaseLimits> {
    Arc::new(FixedLimit(None))
}

/// The clock behind time limits: advances the engine's epoch every [`EPOCH_TICK`] while a
/// call runs, and sleeps while none does, so that an idle plugin does not wake 100 times a
/// second. Stops when the engine is dropped.
struct EpochTicker {
    in_flight: Arc<AtomicUsize>,
    thread: std::thread::Thread,
}

/// Keeps the ticker going while a call runs.
struct Busy<'a>(&'a EpochTicker);

impl EpochTicker {
    fn spawn(engine: &Engine) -> EpochTicker {
        let weak = engine.weak();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let running = in_flight.clone();
        let handle = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    if running.load(Ordering::Acquire) == 0 {
                        drop(engine);
                        // Woken by the first call; the timeout notices a dropped engine.
                        std::thread::park_timeout(Duration::from_secs(1));
                        continue;
                    }
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning a thread at start-up");
        EpochTicker {
            in_flight,
            thread: handle.thread().clone(),
        }
    }

    fn busy(&self) -> Busy<'_> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        Busy(self)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
