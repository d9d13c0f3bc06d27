//! `lease-limits` and `call-limits` for the engine: the limit a host puts on the leases it
//! keeps, and how much of a call's time limit is left.
//!
//! Each host says where its lease limit comes from ([`LeaseLimits`]); the engine asks only
//! while it issues or renews a lease, and a call asks its host at most once. The call's time
//! is the runtime's own (its `--time-limit`), counted from the call's start.

use super::HostState;
use super::bindings::{call_limits, lease_limits::Host};
use std::time::Instant;

/// Where a host's max lease TTL comes from.
#[async_trait::async_trait]
pub trait LeaseLimits: Send + Sync {
    /// The longest a lease may last after issue, in seconds; `None` when there is no limit
    /// (or it cannot be learnt: the implementation logs why).
    async fn max_ttl(&self) -> Option<u64>;
}

/// A limit known up front (the standalone server's `--max-lease-ttl`), or none at all.
#[derive(Debug, Clone, Copy)]
pub struct FixedLimit(pub Option<u64>);

#[async_trait::async_trait]
impl LeaseLimits for FixedLimit {
    async fn max_ttl(&self) -> Option<u64> {
        self.0
    }
}

impl Host for HostState {
    async fn max_ttl(&mut self) -> wasmtime::Result<Option<u64>> {
        if let Some(known) = self.max_ttl {
            return Ok(known);
        }
        let max_ttl = self.limits.max_ttl().await;
        self.max_ttl = Some(max_ttl);
        Ok(max_ttl)
    }
}

impl call_limits::Host for HostState {
    async fn time_left(&mut self) -> wasmtime::Result<Option<u64>> {
        Ok(self.hub.call().map(|call| {
            u64::try_from(call.time_left(Instant::now()).as_nanos()).unwrap_or(u64::MAX)
        }))
    }
}
