//! A lease as the front shows it (`bao lease lookup`) and as hosts store it, why a lease
//! operation failed, and the rules every host's lease manager follows alike: lease ids,
//! listing, which leases a prefix names, renewal caps, and the pace of revocation retries.

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
    /// The accessor of the login token that created the lease, which ends it when the token
    /// ends; `None` for a token of the tokens file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_accessor: Option<String>,
}

impl LeaseRecord {
    /// The record of a lease the engine just created at `path` (relative to `mount`), with
    /// a new id `<mount>/<path>/<24 random characters>`, as Vault names leases. `issued` is
    /// when the request reached the engine: the lease ends `ttl` seconds after it.
    pub fn issue(
        mount: &str,
        path: &str,
        ttl: u64,
        renewable: bool,
        internal_data: &str,
        issued: Timestamp,
    ) -> LeaseRecord {
        LeaseRecord {
            lease_id: format!("{mount}/{path}/{}", random_id()),
            path: path.to_string(),
            issue_time: issued,
            expire_time: issued.plus_secs(ttl),
            last_renewal: None,
            ttl,
            renewable,
            internal_data: internal_data.to_string(),
            revocation: None,
            token_accessor: None,
        }
    }

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
    /// Reading or writing the host's lease store failed.
    #[error("the lease store failed: {0}")]
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

/// 24 random characters from [A-Za-z0-9], as Vault's lease ids end.
///
/// # Panics
/// When the system's random generator fails: a guessable lease id is not an option.
pub(crate) fn random_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the system random generator works");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The lease ids one level below the directory `prefix`, as OpenBao's
/// `sys/leases/lookup/<prefix>` lists its lease store: a lease's last segment, or a deeper
/// directory with its trailing `/`; sorted, each once. `dockerhub/token` and
/// `dockerhub/token/` are the same directory, and `dockerhub/tok` holds nothing.
pub fn list_leases<'a>(prefix: &str, lease_ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut directory = prefix.to_string();
    if !directory.is_empty() && !directory.ends_with('/') {
        directory.push('/');
    }
    let keys: std::collections::BTreeSet<String> = lease_ids
        .into_iter()
        .filter_map(|id| id.strip_prefix(&directory))
        .map(|below| match below.split_once('/') {
            Some((child, _)) => format!("{child}/"),
            None => below.to_string(),
        })
        .collect();
    keys.into_iter().collect()
}

/// The leases that `prefix` names, as OpenBao's `revokePrefixCommon`: a prefix that is a
/// whole lease id names that lease; any other prefix names whole path segments, so
/// `dockerhub/tok` names nothing and `dockerhub/token/hoeg` every lease of account `hoeg`.
/// A trailing slash is dropped first: the CLI drops it too (OpenBao's HTTP layer refuses a
/// raw write to a path ending in `/`), so `<lease id>/` is that lease. `lease_id` tells
/// each lease's id.
pub fn named_by_prefix<T>(
    prefix: &str,
    leases: impl IntoIterator<Item = T>,
    lease_id: impl Fn(&T) -> &str,
) -> Vec<T> {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    let mut leases: Vec<T> = leases.into_iter().collect();
    if let Some(whole) = leases.iter().position(|lease| lease_id(lease) == prefix) {
        return vec![leases.swap_remove(whole)];
    }
    let below = format!("{prefix}/");
    leases.retain(|lease| lease_id(lease).starts_with(&below));
    leases
}

/// OpenBao's own warning when a renewal's increment reaches past the lease's max TTL: its
/// expiration manager runs Vault's `CalculateTTL` on the engine's answer and says so beside
/// the engine's warnings, counting in whole seconds from the lease's issue. All arguments
/// in seconds (`issued` and `now` since the Unix epoch). `None` when the increment fits (or
/// none was asked).
pub fn capped_increment(increment: u64, max_ttl: u64, issued: u64, now: u64) -> Option<String> {
    let left = (issued + max_ttl)
        .checked_sub(now)
        .filter(|left| *left > 0)?;
    (increment > left).then(|| {
        format!(
            "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped \
             accordingly",
            go_human_duration(increment),
            go_human_duration(left)
        )
    })
}

/// A whole number of seconds as OpenBao's framework prints one (`humanDuration`): Go's
/// `time.Duration` text without its zero parts (`2h`, `59m59s`, `1h1s`, `0s`).
fn go_human_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::new();
    if h > 0 {
        text += &format!("{h}h");
    }
    if m > 0 {
        text += &format!("{m}m");
    }
    if s > 0 || text.is_empty() {
        text += &format!("{s}s");
    }
    text
}

/// The first wait after a failed revocation, in seconds; it doubles with every failed
/// attempt up to [`MAX_REVOCATION_BACKOFF`].
pub const FIRST_REVOCATION_BACKOFF: u64 = 1;
/// The longest wait between two revocation attempts, in seconds, unless the upstream asks
/// for longer.
pub const MAX_REVOCATION_BACKOFF: u64 = 300;

/// How long to wait, in seconds, after revocation attempt `attempts` (1 for the first)
/// failed: capped exponential backoff, or the upstream's `Retry-After` (`retry_after`
/// seconds, which the host caps as it sees fit) when that is longer.
pub fn revocation_backoff(attempts: u32, retry_after: Option<u64>) -> u64 {
    let backoff = (FIRST_REVOCATION_BACKOFF << attempts.saturating_sub(1).min(16))
        .min(MAX_REVOCATION_BACKOFF);
    backoff.max(retry_after.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_openbaos_framework_prints_them() {
        for (seconds, text) in [
            (0, "0s"),
            (1, "1s"),
            (60, "1m"),
            (61, "1m1s"),
            (3599, "59m59s"),
            (3600, "1h"),
            (3601, "1h1s"),
            (3660, "1h1m"),
            (7200, "2h"),
            (36_000, "10h"),
        ] {
            assert_eq!(go_human_duration(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn an_increment_past_the_max_ttl_gets_openbaos_warning() {
        // Issued at 1000 with a max TTL of 1h; renewed at 1001 with 2h asked.
        assert_eq!(
            capped_increment(7200, 3600, 1000, 1001).as_deref(),
            Some(
                "TTL of \"2h\" exceeded the effective max_ttl of \"59m59s\"; TTL value is \
                 capped accordingly"
            )
        );
        assert_eq!(capped_increment(3599, 3600, 1000, 1001), None);
        assert_eq!(capped_increment(0, 3600, 1000, 1001), None);
        assert_eq!(capped_increment(10, 3600, 1000, 4600), None, "past the max");
    }

    #[test]
    fn revocation_retries_back_off_exponentially_up_to_a_cap_or_the_upstreams_wish() {
        let waits: Vec<u64> = (1..=10).map(|n| revocation_backoff(n, None)).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(revocation_backoff(40, None), 300);
        assert_eq!(revocation_backoff(1, Some(30)), 30);
        assert_eq!(revocation_backoff(9, Some(30)), 256);
    }

    #[test]
    fn listings_and_prefixes_follow_openbaos_segments() {
        let ids = [
            "dockerhub/token/hoeg/hoeg/a",
            "dockerhub/token/hoeg/org/b",
            "dockerhub/token/other/x/c",
        ];
        assert_eq!(list_leases("dockerhub/token", ids), ["hoeg/", "other/"]);
        assert_eq!(list_leases("dockerhub/token/hoeg/hoeg/", ids), ["a"]);
        assert!(list_leases("dockerhub/tok", ids).is_empty());
        let named = |prefix| named_by_prefix(prefix, ids, |id| id);
        assert_eq!(named("dockerhub/token/hoeg"), [ids[0], ids[1]]);
        assert_eq!(named("dockerhub/token/hoeg/hoeg/a/"), [ids[0]]);
        assert!(named("dockerhub/tok").is_empty());
    }

    #[test]
    fn an_issued_lease_has_a_vault_style_id_and_ends_ttl_after_its_issue() {
        let issued = Timestamp::from_secs(1_000);
        let record = LeaseRecord::issue("dockerhub", "token/a/b", 300, true, "{}", issued);
        let (path, id) = record.lease_id.rsplit_once('/').unwrap();
        assert_eq!(path, "dockerhub/token/a/b");
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(LeaseRecord::storage_key(&record.lease_id), Some(id));
        assert_eq!(record.expire_time, Timestamp::from_secs(1_300));
        let other = LeaseRecord::issue("dockerhub", "token/a/b", 300, true, "{}", issued);
        assert_ne!(other.lease_id, record.lease_id);
    }
}
