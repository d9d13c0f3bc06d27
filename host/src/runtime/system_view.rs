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

/// Another view with its max lease TTL capped at `limit` (seconds): `serve` caps a lease made
/// with a login token at the time the token has left. Everything else is the inner view's.
pub struct CappedLimit {
    inner: std::sync::Arc<dyn SystemView>,
    limit: u64,
}

impl CappedLimit {
    pub fn new(inner: std::sync::Arc<dyn SystemView>, limit: u64) -> CappedLimit {
        CappedLimit { inner, limit }
    }
}

#[async_trait::async_trait]
impl SystemView for CappedLimit {
    async fn max_ttl(&self) -> Option<u64> {
        Some(
            self.inner
                .max_ttl()
                .await
                .map_or(self.limit, |max| max.min(self.limit)),
        )
    }

    async fn entity(&self, entity_id: &str) -> Result<Option<Entity>, String> {
        self.inner.entity(entity_id).await
    }

    fn mount_id(&self) -> Option<String> {
        self.inner.mount_id()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A view that answers everything, to see what a wrapper passes on.
    struct Known;

    #[async_trait::async_trait]
    impl SystemView for Known {
        async fn max_ttl(&self) -> Option<u64> {
            Some(600)
        }

        async fn entity(&self, entity_id: &str) -> Result<Option<Entity>, String> {
            Ok(Some(Entity {
                id: entity_id.to_string(),
                name: "ci".into(),
                metadata: Vec::new(),
                aliases: Vec::new(),
            }))
        }

        fn mount_id(&self) -> Option<String> {
            Some("mount-1".into())
        }
    }

    #[tokio::test]
    async fn a_capped_view_caps_the_max_ttl_and_passes_on_the_rest() {
        let capped = CappedLimit::new(Arc::new(Known), 60);
        assert_eq!(capped.max_ttl().await, Some(60));
        assert_eq!(
            CappedLimit::new(Arc::new(Known), 6000).max_ttl().await,
            Some(600)
        );
        assert_eq!(
            CappedLimit::new(Arc::new(FixedLimit(None)), 60)
                .max_ttl()
                .await,
            Some(60)
        );
        assert_eq!(capped.entity("e1").await.unwrap().unwrap().id, "e1");
        assert_eq!(capped.mount_id().as_deref(), Some("mount-1"));
    }
}
