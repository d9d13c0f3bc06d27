//! What a fake hub starts with: its accounts, how long JWTs live, and an optional rate limit.
//! The `FromStr` impls are the command-line forms the `fakehub` binary accepts.

use std::{str::FromStr, time::Duration};

/// How a [`crate::FakeHub`] starts. `Config::default()` has no accounts, 10-minute JWTs (as the
/// Hub documents) and no rate limit.
#[derive(Debug, Clone)]
pub struct Config {
    /// Lifetime of every JWT issued by a login endpoint.
    pub jwt_ttl: Duration,
    /// Requests allowed to `/v2/` per window; `None` means unlimited.
    pub rate_limit: Option<RateLimit>,
    pub accounts: Vec<Account>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            jwt_ttl: Duration::from_secs(600),
            rate_limit: None,
            accounts: Vec::new(),
        }
    }
}

impl Config {
    /// Adds an account; for building a config in one expression.
    pub fn account(mut self, username: &str, password: &str, totp_secret: Option<&str>) -> Self {
        self.accounts
            .push(Account::new(username, password, totp_secret));
        self
    }
}

/// A Docker Hub user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub username: String,
    pub password: String,
    /// Base32 RFC 6238 seed; `Some` means 2FA is on for the account.
    pub totp_secret: Option<String>,
}

impl Account {
    pub fn new(username: &str, password: &str, totp_secret: Option<&str>) -> Self {
        Account {
            username: username.to_owned(),
            password: password.to_owned(),
            totp_secret: totp_secret.map(str::to_owned),
        }
    }
}

/// `user:password` or `user:password:totp_base32`. The password cannot contain `:`.
impl FromStr for Account {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.splitn(3, ':');
        let (Some(username), Some(password)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "account {text:?} is not user:password[:totp_base32]"
            ));
        };
        if username.is_empty() {
            return Err(format!("account {text:?} has an empty username"));
        }
        let totp_secret = parts.next().filter(|s| !s.is_empty());
        if let Some(secret) = totp_secret
            && crate::totp::code(secret, 0).is_none()
        {
            return Err(format!("TOTP secret of account {username:?} is not base32"));
        }
        Ok(Account::new(username, password, totp_secret))
    }
}

/// At most `limit` requests per `window`, counted over fixed windows that start with the first
/// request after the previous window ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
}

impl RateLimit {
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimit { limit, window }
    }
}

/// `N/SECS`, e.g. `180/60`.
impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text.split_once('/').and_then(|(limit, secs)| {
            Some((limit.trim().parse().ok()?, secs.trim().parse::<u64>().ok()?))
        });
        match parsed {
            Some((limit, secs)) if secs > 0 => Ok(RateLimit::new(limit, Duration::from_secs(secs))),
            _ => Err(format!("rate limit {text:?} is not N/SECS with SECS > 0")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_with_and_without_totp() {
        assert_eq!(
            "alice:pw".parse::<Account>().unwrap(),
            Account::new("alice", "pw", None)
        );
        assert_eq!(
            "bob:pw:JBSWY3DPEHPK3PXP".parse::<Account>().unwrap(),
            Account::new("bob", "pw", Some("JBSWY3DPEHPK3PXP"))
        );
        assert!("alice".parse::<Account>().is_err());
        assert!(":pw".parse::<Account>().is_err());
        assert!("bob:pw:not-base32!".parse::<Account>().is_err());
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            "180/60".parse::<RateLimit>().unwrap(),
            RateLimit::new(180, Duration::from_secs(60))
        );
        assert!("180".parse::<RateLimit>().is_err());
        assert!("10/0".parse::<RateLimit>().is_err());
        assert!("x/60".parse::<RateLimit>().is_err());
    }
}
