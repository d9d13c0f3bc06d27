//! Tokens that a login created (`serve`'s JWT auth), as hosts store them and as the front
//! shows them: `auth/<mount>/login`'s `auth` answer, `auth/token/lookup-self`,
//! `renew-self` and `revoke-self`, in OpenBao's shapes (`logical.Auth` in
//! `sdk/logical/auth.go`, `handleLookup` in `vault/token_store.go`).
//!
//! A host keeps only the SHA-256 of a token's secret ([`token_hash`]) with its
//! [`LoginToken`]; the secret itself is in the login's answer and nowhere else.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A token a login created, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginToken {
    /// 24 random characters, as OpenBao's accessors: names the token without granting it.
    pub accessor: String,
    /// The login that created it: `auth/<mount>/login`.
    pub path: String,
    /// The auth mount (below `auth/`) and its role, which a renewal checks again.
    pub mount: String,
    pub role: String,
    /// `<mount>-<alias name>`, as OpenBao names a login's token (`jwt-acme/app`).
    pub display_name: String,
    /// As Vault reports them: sorted, with `default` unless the role left it out.
    pub policies: Vec<String>,
    /// The login's metadata: `role` and the role's `claim_mappings`.
    pub meta: BTreeMap<String, String>,
    pub issue_time: Timestamp,
    pub expire_time: Timestamp,
    /// The TTL granted at login, in seconds; a renewal without increment grants it again.
    pub creation_ttl: u64,
    /// The role's `token_explicit_max_ttl` in seconds, 0 for none.
    pub explicit_max_ttl: u64,
    /// No renewal goes past this moment: issue time plus the effective max TTL.
    pub max_expire_time: Timestamp,
    /// The latest renewal, none before the first (and in tokens stored before it was kept).
    #[serde(default)]
    pub last_renewal: Option<Timestamp>,
}

impl LoginToken {
    /// Seconds left at `now`, 0 once expired, as OpenBao counts a token's `ttl`
    /// ([`Timestamp::ttl_from`]).
    pub fn remaining(&self, now: Timestamp) -> u64 {
        u64::try_from(self.expire_time.ttl_from(now)).unwrap_or(0)
    }

    /// Whether the token has ended at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expire_time <= now
    }

    /// The token after a renewal at `now` by `increment` seconds (0: its creation TTL), the
    /// TTL granted (seconds), and the warning to show when its max TTL cut the increment.
    /// As OpenBao's `framework.CalculateTTL`: times are cut to the second, and the
    /// warning's "effective max_ttl" is what is left of the max TTL now.
    pub fn renewed(&self, now: Timestamp, increment: u64) -> (LoginToken, u64, Option<String>) {
        let wanted = if increment == 0 {
            self.creation_ttl
        } else {
            increment
        };
        let max_ttl = self.max_expire_time.since(self.issue_time).as_secs();
        let left = (self.issue_time.secs() + max_ttl).saturating_sub(now.secs());
        let mut renewed = self.clone();
        let granted = wanted.min(left);
        renewed.expire_time = now.plus_secs(granted);
        renewed.last_renewal = Some(now);
        let warning = (wanted > left).then(|| {
            format!(
                "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped \
                 accordingly",
                crate::input::format_duration(wanted),
                crate::input::format_duration(left),
            )
        });
        (renewed, granted, warning)
    }
}

/// The key a host stores a token under: the lowercase hex SHA-256 of its secret.
pub fn token_hash(secret: &str) -> String {
    Sha256::digest(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new token's secret, `s.` and 24 random characters from [A-Za-z0-9] (OpenBao's service
/// tokens), and its accessor (24 such characters).
///
/// # Panics
/// When the system's random generator fails: a guessable token is not an option.
pub fn new_secret_and_accessor() -> (String, String) {
    (
        format!("s.{}", crate::lease::random_id()),
        crate::lease::random_id(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued: Timestamp) -> LoginToken {
        LoginToken {
            accessor: "a".into(),
            path: "auth/jwt/login".into(),
            mount: "jwt".into(),
            role: "ci".into(),
            display_name: "jwt-x".into(),
            policies: vec!["default".into()],
            meta: BTreeMap::new(),
            issue_time: issued,
            expire_time: issued.plus_secs(60),
            creation_ttl: 60,
            explicit_max_ttl: 0,
            max_expire_time: issued.plus_secs(120),
            last_renewal: None,
        }
    }

    #[test]
    fn a_renewal_grants_the_increment_or_the_creation_ttl_up_to_the_max_ttl() {
        let issued = Timestamp::from_secs(1_000);
        let now = issued.plus_secs(10);
        let (renewed, granted, warning) = token(issued).renewed(now, 30);
        assert_eq!(
            (renewed.expire_time, granted, warning),
            (now.plus_secs(30), 30, None)
        );
        assert_eq!(renewed.last_renewal, Some(now));
        let (renewed, granted, _) = token(issued).renewed(now, 0);
        assert_eq!((renewed.expire_time, granted), (now.plus_secs(60), 60));
        assert_eq!(renewed.issue_time, issued, "a renewal keeps the issue time");
    }

    #[test]
    fn a_renewal_past_the_max_ttl_is_capped_to_what_is_left_in_openbaos_words() {
        let issued = Timestamp::from_secs(1_000);
        let (renewed, granted, warning) = token(issued).renewed(issued, 3600);
        assert_eq!((renewed.expire_time, granted), (issued.plus_secs(120), 120));
        assert_eq!(
            warning.as_deref(),
            Some(
                "TTL of \"1h\" exceeded the effective max_ttl of \"2m\"; TTL value is capped \
                 accordingly"
            )
        );
        // Later, what is left: whole seconds, as OpenBao cuts both times to the second.
        let at = |secs: u64, nanos: u32| -> Timestamp {
            serde_json::from_value(serde_json::json!([secs, nanos])).unwrap()
        };
        let (issued, now) = (at(1_000, 900_000_000), at(1_010, 100_000_000));
        let (renewed, granted, warning) = token(issued).renewed(now, 3600);
        assert_eq!((renewed.expire_time, granted), (now.plus_secs(110), 110));
        assert!(warning.unwrap().contains("effective max_ttl of \"1m50s\""));
    }

    #[test]
    fn only_the_hash_of_a_secret_is_kept_and_secrets_differ() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (a, b) = (new_secret_and_accessor(), new_secret_and_accessor());
        assert!(a.0.starts_with("s.") && a.0.len() == 26 && a.1.len() == 24);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a.0).len(), 64);
        assert_ne!(token_hash(&a.0), token_hash(&b.0));
    }
}
