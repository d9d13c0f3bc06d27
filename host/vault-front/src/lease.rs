//! A lease as the front shows it (`bao lease lookup`) and as hosts store it, and why a lease
//! operation failed.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// A lease as stored under `sys/leases/<id>`. It holds no secret: the token itself is only
/// ever in the response that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// `<mount>/<path>/<id>`, as Vault names leases.
    pub lease_id: String,
    /// The engine path that created it, relative to the mount.
    pub path: String,
    pub issue_time: Timestamp,
    pub expire_time: Timestamp,
    pub last_renewal: Option<Timestamp>,
    /// The TTL granted by the last issue or renewal, in seconds. (The engine enforces the
    /// max TTL.)
    pub ttl: u64,
    pub renewable: bool,
    /// The engine's `internal-data` JSON, sent back with renewals and revocations.
    pub internal_data: String,
    /// Set once a revocation was attempted and failed.
    #[serde(default)]
    pub revocation: Option<RevocationState>,
}

impl LeaseRecord {
    /// The key a host stores the lease under: the random last segment of its id; `None`
    /// when the id has none.
    pub fn storage_key(lease_id: &str) -> Option<&str> {
        lease_id
            .rsplit_once('/')
            .map(|(_, id)| id)
            .filter(|id| !id.is_empty())
    }

    /// When a host must act on the lease: the next retry of a failed revocation, else its
    /// expiry.
    pub fn due(&self) -> Timestamp {
        self.revocation
            .as_ref()
            .map_or(self.expire_time, |r| r.next_attempt)
    }
}

/// Why a lease that should be gone is still here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationState {
    pub attempts: u32,
    pub last_error: String,
    pub next_attempt: Timestamp,
}

/// Why a lease operation failed, with the HTTP status Vault would give.
/// The messages are OpenBao's (`leaseEntry.renewable` in `vault/expiration.go`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseFailure {
    #[error("lease not found")]
    NotFound,
    /// Past its expiry, or being revoked: renewing it would revive a token on its way out.
    #[error("lease expired")]
    Expired,
    #[error("lease is not renewable")]
    NotRenewable,
    /// The engine failed to renew or revoke it: the engine's status and text.
    #[error("{message}")]
    Engine { status: u16, message: String },
    #[error("storing the lease failed: {0}")]
    Storage(String),
}

impl LeaseFailure {
    /// The HTTP status Vault would answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            LeaseFailure::NotFound | LeaseFailure::Expired | LeaseFailure::NotRenewable => 400,
            LeaseFailure::Engine { status, .. } => *status,
            LeaseFailure::Storage(_) => 500,
        }
    }
}
