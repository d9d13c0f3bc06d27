//! The standalone endpoint, `dockerhub-secrets serve`: the engine behind Vault's HTTP API,
//! for sites without Vault. The `bao`/`vault` CLI and client libraries work against it
//! unchanged.
//!
//! One process, one mount: [`api`] receives Vault's requests and hands them to
//! [`vault_front`], which answers them (with its `acl` deciding who may do what from an
//! operator's tokens file with Vault policies), [`store`] keeps everything in an encrypted,
//! crash-safe file, and [`leases`] revokes what expires, durably. The tokens file may also
//! declare JWT auth mounts ([`auth`]): their logins create tokens ([`tokens`]) whose end
//! ends the leases created with them.

mod api;
mod auth;
mod leases;
pub mod store;
mod tokens;

use crate::engine::{Engine, FixedLimit, SystemView};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::storage::{CachedStorage, PrefixedStorage, Storage};
use anyhow::Context;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the operator runs the server.
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// The directory of the store.
    pub data: PathBuf,
    /// The tokens file: who may do what.
    pub tokens: PathBuf,
    pub key: store::KeySource,
    /// Whether a new store may be created where the key already exists (`--init`).
    pub create: store::Create,
    /// Where the engine is mounted: `/v1/<mount>/...`.
    pub mount: String,
    /// The longest a lease may last from its issue, as a Vault mount's tuned max lease TTL:
    /// applied when a lease is issued or renewed.
    pub max_lease_ttl: Duration,
    /// How often the engine's rollback (cleanup) runs, as Vault's rollback manager.
    pub rollback_interval: Duration,
    pub runtime: RuntimeConfig,
}

async fn rollback(engine: &Engine, storage: &Arc<dyn Storage>, immediate: bool) {
    if let Err(e) = engine.rollback(storage.clone(), immediate, false).await {
        tracing::warn!(error = %e, "rollback left work for its next run");
    }
}

/// Resolves at SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives during start-up is not lost and does
/// not kill the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: finishing requests in flight, keeping every lease");
    }
}

/// Serve until SIGTERM or SIGINT.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let acl = vault_front::AccessControl::load(&config.tokens)
        .with_context(|| format!("loading the tokens file {}", config.tokens.display()))?;
    let auth = auth::AuthMounts::load(&acl)
        .with_context(|| format!("loading the tokens file {}", config.tokens.display()))?;
    let store: Arc<dyn Storage> =
        Arc::new(store::Store::open(&config.data, config.key, config.create)?);
    // Every write of the engine goes through this process, so its reads can be cached.
    let engine_storage: Arc<dyn Storage> = Arc::new(CachedStorage::new(Arc::new(
        PrefixedStorage::new(store.clone(), format!("logical/{}/", config.mount)),
    )));
    let lease_storage: Arc<dyn Storage> =
        Arc::new(PrefixedStorage::new(store.clone(), "sys/leases/"));
    let token_storage: Arc<dyn Storage> = Arc::new(PrefixedStorage::new(store, "sys/token/"));
    let engine = Arc::new(Engine::new(Arc::new(Runtime::new(config.runtime)?)));
    let system_view: Arc<dyn SystemView> =
        Arc::new(FixedLimit(Some(config.max_lease_ttl.as_secs())));
    let leases = leases::Leases::load(
        lease_storage,
        engine_storage.clone(),
        engine.clone(),
        &config.mount,
        system_view.clone(),
    )
    .await?;
    let tokens = tokens::LoginTokens::load(
        token_storage,
        leases.clone(),
        config.max_lease_ttl.as_secs(),
        |mount| auth.serves(mount),
    )
    .await?;

    let stopping = shutdown_signal();
    // Bound before the start-up rollback, which may call the Hub for a while: clients'
    // connections are accepted (queued by the kernel) instead of refused, and wait for it.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, mount = %config.mount, "serving");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{address}")?;
    stdout.flush()?;
    drop(stdout);

    // Nothing is in flight yet: interrupted work of any age belongs to the previous process.
    // So no request is handled before it ends: with `immediate` it would also settle the
    // creations of new requests.
    rollback(&engine, &engine_storage, true).await;
    let (stop, stopped) = watch::channel(false);
    let lease_timers = tokio::spawn(leases.clone().run(stopped.clone()));
    let token_timers = tokio::spawn(tokens.clone().run(stopped.clone()));
    let periodic_rollback = {
        let (engine, storage, mut stopped) =
            (engine.clone(), engine_storage.clone(), stopped.clone());
        let interval = config.rollback_interval;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(interval) => rollback(&engine, &storage, false).await,
                }
            }
        })
    };

    let tasks = tokio_util::task::TaskTracker::new();
    let api = Arc::new(api::Api {
        front: vault_front::Front {
            acl,
            mount: config.mount.clone(),
            storage_type: "redb",
        },
        engine,
        tasks: tasks.clone(),
        leases,
        tokens,
        auth,
        engine_storage,
        system_view,
        bodies: tokio::sync::Semaphore::new(api::BODIES_IN_FLIGHT),
    });
    api::serve_http(listener, api, stopping).await;
    tasks.close();
    tasks.wait().await;
    stop.send_replace(true);
    let _ = tokio::join!(lease_timers, token_timers, periodic_rollback);
    Ok(())
}
