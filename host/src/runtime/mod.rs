//! The sandbox: the wasmtime runtime that loads the engine component once, runs each call
//! in a fresh, limited instance, and supplies the capabilities. Front ends reach it through
//! the engine layer ([`crate::engine::Engine`]), for which it is the
//! [`Sandbox`](crate::engine::Sandbox).
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
mod logging;
mod outbound;
mod system_view;

pub use bindings::{
    BackendHelp, Datetime, EngineError, Entity, EntityAlias, Field, FieldKind, Lease, LeaseState,
    Operation, PathHelp, Request, Response, UpstreamError,
};
pub use egress::HubUrlError;
pub use gate::MAX_WAIT as MAX_UPSTREAM_WAIT;
pub use system_view::{CappedLimit, FixedLimit, SystemView};

use crate::engine::{CallError, Sandbox};
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
/// What the engine may write to stderr (panic messages) before it is cut off.
const STDERR_CAPACITY: usize = 16 * 1024;

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
    system_view: Arc<dyn SystemView>,
    /// The answer of `system_view.max_ttl`, once the engine asked.
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
        bindings::identity::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::mount::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
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
        })
    }

    fn store(
        &self,
        storage: Arc<dyn Storage>,
        system_view: Arc<dyn SystemView>,
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
            system_view,
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
        system_view: Arc<dyn SystemView>,
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
        let (mut store, stderr) = self.store(storage, system_view);
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
}

/// Each call in a fresh instance within the call's limits; the gate is the Hub route's.
#[async_trait::async_trait]
impl Sandbox for Runtime {
    async fn handle(
        &self,
        storage: Arc<dyn Storage>,
        system_view: Arc<dyn SystemView>,
        request: &Request,
    ) -> Result<Response, CallError> {
        self.run(storage, system_view, async |engine, store| {
            engine
                .dockerhub_secrets_engine_backend()
                .call_handle(store, request)
                .await
        })
        .await
    }

    async fn existence_check(
        &self,
        storage: Arc<dyn Storage>,
        request: &Request,
    ) -> Result<Option<bool>, CallError> {
        self.run(storage, no_limit(), async |engine, store| {
            engine
                .dockerhub_secrets_engine_backend()
                .call_existence_check(store, request)
                .await
        })
        .await
    }

    async fn help(&self) -> Result<BackendHelp, CallError> {
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

    async fn upstream_open(&self, deadline: Instant) -> Result<(), Duration> {
        self.hub
            .gate()
            .pass(deadline)
            .await
            .map_err(|closed| closed.opens_in)
    }

    fn time_limit(&self) -> Duration {
        self.config.time_limit
    }
}

/// For calls that issue no lease (existence checks, help).
fn no_limit() -> Arc<dyn SystemView> {
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
