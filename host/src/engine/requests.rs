//! The requests hosts make on their own, not on a client's behalf: revoking and renewing a
//! lease, and the engine's rollback. Their shapes are the WIT contract's (`wit/engine.wit`,
//! `request` and `lease-state`); each is built here only.

use super::{Datetime, LeaseState, Operation, Request};
use std::time::{SystemTime, UNIX_EPOCH};

impl Request {
    /// Revoke the lease `lease` at `path` (its Hub token is deleted).
    pub fn revoke(path: &str, lease: LeaseState) -> Request {
        Request::about_lease(Operation::Revoke, path, lease)
    }

    /// Renew the lease `lease` at `path`, by `lease.increment` seconds (0: the engine's
    /// default).
    pub fn renew(path: &str, lease: LeaseState) -> Request {
        Request::about_lease(Operation::Renew, path, lease)
    }

    /// The engine's rollback (`guest/src/rollback.rs`): settles interrupted token creations
    /// of some age, or all of them with `immediate` (only when no creation can be in
    /// flight); with `leases_ended`, also deletes every token it still tracks, as the host
    /// has ended all the mount's leases (an unmount).
    pub fn rollback(immediate: bool, leases_ended: bool) -> Request {
        Request {
            operation: Operation::Rollback,
            path: String::new(),
            data: serde_json::json!({ "immediate": immediate, "leases_ended": leases_ended })
                .to_string(),
            display_name: None,
            entity_id: None,
            lease: None,
        }
    }

    fn about_lease(operation: Operation, path: &str, lease: LeaseState) -> Request {
        Request {
            operation,
            path: path.to_string(),
            data: "{}".into(),
            display_name: None,
            entity_id: None,
            lease: Some(lease),
        }
    }
}

impl LeaseState {
    /// A lease with `internal_data` (as the engine returned it at creation) and `ttl` seconds,
    /// issued at `issued`.
    pub fn issued_at(internal_data: &str, issued: SystemTime, ttl: u64) -> LeaseState {
        LeaseState {
            internal_data: internal_data.to_string(),
            issue_time: datetime(issued),
            ttl,
            increment: 0,
        }
    }

    /// As [`LeaseState::issued_at`], issued now: for a lease the host never stored.
    pub fn now(internal_data: &str, ttl: u64) -> LeaseState {
        LeaseState::issued_at(internal_data, SystemTime::now(), ttl)
    }
}

/// `time` as WASI's wall-clock datetime; before 1970 counts as 1970.
pub fn datetime(time: SystemTime) -> Datetime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Datetime {
        seconds: since.as_secs(),
        nanoseconds: since.subsec_nanos(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lease_requests_carry_the_lease_and_no_fields() {
        let issued = UNIX_EPOCH + Duration::new(1_700_000_000, 7);
        let lease = LeaseState::issued_at(r#"{"uuid":"u"}"#, issued, 300);
        let revoke = Request::revoke("token/hoeg/org", lease.clone());
        assert_eq!(
            (revoke.operation, revoke.path.as_str(), revoke.data.as_str()),
            (Operation::Revoke, "token/hoeg/org", "{}")
        );
        let sent = revoke.lease.unwrap();
        assert_eq!(
            (
                sent.internal_data.as_str(),
                sent.ttl,
                sent.increment,
                sent.issue_time.seconds,
                sent.issue_time.nanoseconds
            ),
            (r#"{"uuid":"u"}"#, 300, 0, 1_700_000_000, 7)
        );
        let renew = Request::renew(
            "token/hoeg/org",
            LeaseState {
                increment: 60,
                ..lease
            },
        );
        assert_eq!(renew.operation, Operation::Renew);
        assert_eq!(renew.lease.unwrap().increment, 60);
    }

    #[test]
    fn a_time_before_1970_counts_as_1970() {
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(datetime(before).seconds, 0);
    }
}
