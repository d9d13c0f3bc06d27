//! What a host tells the engine about itself and the request, beyond storage and HTTP: the
//! limit it puts on the leases it keeps (`lease-limits`), the requester's identity entity
//! (`identity`), the mount's id (`mount`), and how much of a call's time limit is left
//! (`call-limits`).
//!
//! Each host says where its answers come from ([`SystemView`], OpenBao's name for the same
//! thing); the engine asks only when it needs an answer, and a call asks its host at most
//! once for each. The call's time is the runtime's own (its `--time-limit`), counted from the
//! call's start.

use super::HostState;
use super::bindings::{Entity, call_limits, identity, lease_limits, mount};
use std::time::Instant;

/// A host's view of itself and of the request's requester.
#[async_trait::async_trait]
pub trait SystemView: Send + Sync {
    /// The longest a lease may last after issue, in seconds; `None` when there is no limit
    /// (or it cannot be learnt: the implementation logs why).
    async fn max_ttl(&self) -> Option<u64>;

    /// The identity entity with this id; `Ok(None)` when there is none, or the host keeps no
    /// identities (the default); `Err` with the host's reason when it could not look.
    async fn entity(&self, _entity_id: &str) -> Result<Option<Entity>, String> {
        Ok(None)
    }

    /// The mount's id, made when it was set up (OpenBao: the backend UUID); `None` (the
    /// default) when the host has none, and the engine keeps one in its storage.
    fn mount_id(&self) -> Option<String> {
        None
    }
}

/// A limit known up front (the standalone server's `--max-lease-ttl`), or none at all; no
/// identities.
#[derive(Debug, Clone, Copy)]
pub struct FixedLimit(pub Option<u64>);

#[async_trait::async_trait]
impl SystemView for FixedLimit {
    async fn max_ttl(&self) -> Option<u64> {
        self.0
    }
}

impl lease_limits::Host for HostState {
    async fn max_ttl(&mut self) -> wasmtime::Result<Option<u64>> {
        if let Some(known) = self.max_ttl {
            return Ok(known);
        }
        let max_ttl = self.system_view.max_ttl().await;
        self.max_ttl = Some(max_ttl);
        Ok(max_ttl)
    }
}

impl identity::Host for HostState {
    async fn entity_info(
        &mut self,
        entity_id: String,
    ) -> wasmtime::Result<Result<Option<Entity>, String>> {
        Ok(self.system_view.entity(&entity_id).await)
    }
}

impl mount::Host for HostState {
    async fn instance_id(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.system_view.mount_id())
    }
}

impl call_limits::Host for HostState {
    async fn time_left(&mut self) -> wasmtime::Result<Option<u64>> {
        Ok(self.hub.call().map(|call| {
            u64::try_from(call.time_left(Instant::now()).as_nanos()).unwrap_or(u64::MAX)
        }))
    }
}
