//! What a fake hub starts with: its accounts, its organizations, how long JWTs live, and an
//! optional rate limit. The `FromStr` impls are the command-line forms the `fakehub` binary
//! accepts.

use std::{collections::BTreeSet, str::FromStr, time::Duration};

/// How a [`crate::FakeHub`] starts. `Config::default()` has no accounts, no organizations,
/// 10-minute JWTs (as the Hub documents) and no rate limit.
#[derive(Debug, Clone)]
pub struct Config {
    /// Lifetime of every JWT issued by a login endpoint.
    pub jwt_ttl: Duration,
    /// Requests allowed to `/v2/` per window; `None` means unlimited.
    pub rate_limit: Option<RateLimit>,
    pub accounts: Vec<Account>,
    /// Their owners and members must be among `accounts`; see [`Config::check`].
    pub organizations: Vec<Organization>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            jwt_ttl: Duration::from_secs(600),
            rate_limit: None,
            accounts: Vec::new(),
            organizations: Vec::new(),
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

    /// Adds an organization; for building a config in one expression.
    pub fn organization(mut self, organization: Organization) -> Self {
        self.organizations.push(organization);
        self
    }

    /// What [`crate::FakeHub::start`] refuses: an organization without an owner, an owner or
    /// member who is not an account, a repository name with a `/`, and a name used twice
    /// (Hub usernames and organization names share one namespace, case-insensitively, which
    /// is what lets `/v2/auth/token` tell an OAT login from a user's).
    pub fn check(&self) -> Result<(), String> {
        let accounts: BTreeSet<String> = self
            .accounts
            .iter()
            .map(|a| a.username.to_lowercase())
            .collect();
        let mut names = accounts.clone();
        for org in &self.organizations {
            let name = &org.name;
            if name.is_empty() || name.contains('/') {
                return Err(format!("organization name {name:?} is empty or has a '/'"));
            }
            if !names.insert(name.to_lowercase()) {
                return Err(format!(
                    "organization {name:?}: the name is already an account's or another organization's"
                ));
            }
            if org.owners.is_empty() {
                return Err(format!("organization {name:?} has no owner"));
            }
            if let Some(user) = org
                .owners
                .iter()
                .chain(&org.members)
                .find(|user| !accounts.contains(&user.to_lowercase()))
            {
                return Err(format!(
                    "organization {name:?}: {user:?} is not an account (add it with --account)"
                ));
            }
            if let Some(repo) = org
                .repositories
                .iter()
                .find(|repo| repo.is_empty() || repo.contains('/'))
            {
                return Err(format!(
                    "organization {name:?}: repository {repo:?} must be a bare name, without the organization"
                ));
            }
        }
        Ok(())
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

/// A Docker Hub organization: a namespace of repositories run by its owners. Only owners
/// manage its organization access tokens (Docker's "Organization access tokens" docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub name: String,
    pub plan: Plan,
    /// Usernames of accounts that own it.
    pub owners: Vec<String>,
    /// Usernames of accounts that belong to it without owning it: they cannot manage its tokens.
    pub members: Vec<String>,
    /// Repository names without the organization: `app` is `<name>/app`.
    pub repositories: Vec<String>,
}

impl Organization {
    /// An organization with no owner, member or repository yet.
    pub fn new(name: &str, plan: Plan) -> Self {
        Organization {
            name: name.to_owned(),
            plan,
            owners: Vec::new(),
            members: Vec::new(),
            repositories: Vec::new(),
        }
    }

    pub fn owner(mut self, username: &str) -> Self {
        self.owners.push(username.to_owned());
        self
    }

    pub fn member(mut self, username: &str) -> Self {
        self.members.push(username.to_owned());
        self
    }

    /// Adds the repository `<name>/<repository>`.
    pub fn repository(mut self, repository: &str) -> Self {
        self.repositories.push(repository.to_owned());
        self
    }
}

/// `NAME:PLAN:OWNER[,OWNER..][:REPO[,REPO..][:MEMBER[,MEMBER..]]]`, e.g.
/// `acme:team:alice:app,web` or `acme:business:alice,carol:app:bob`.
impl FromStr for Organization {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(':');
        let (Some(name), Some(plan), Some(owners)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "organization {text:?} is not NAME:PLAN:OWNER[,OWNER..][:REPO[,REPO..][:MEMBER[,MEMBER..]]]"
            ));
        };
        let list = |part: Option<&str>| -> Vec<String> {
            part.unwrap_or_default()
                .split(',')
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let organization = Organization {
            name: name.to_owned(),
            plan: plan.parse()?,
            owners: list(Some(owners)),
            repositories: list(parts.next()),
            members: list(parts.next()),
        };
        if parts.next().is_some() {
            return Err(format!(
                "organization {text:?} has more than five ':' parts"
            ));
        }
        if organization.name.is_empty() || organization.owners.is_empty() {
            return Err(format!("organization {text:?} needs a name and an owner"));
        }
        Ok(organization)
    }
}

/// An organization's Docker subscription, which decides whether it has organization access
/// tokens and how many: Docker's docs give Team up to 10 per organization and Business up to
/// 100; other plans have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Free,
    Pro,
    Team,
    Business,
}

impl Plan {
    /// How many organization access tokens an organization may hold, expired and deactivated
    /// ones included; `None` when the plan has no such tokens.
    pub fn org_token_limit(self) -> Option<usize> {
        match self {
            Plan::Free | Plan::Pro => None,
            Plan::Team => Some(10),
            Plan::Business => Some(100),
        }
    }

    /// The plan's name as Docker writes it.
    pub fn name(self) -> &'static str {
        match self {
            Plan::Free => "Free",
            Plan::Pro => "Pro",
            Plan::Team => "Team",
            Plan::Business => "Business",
        }
    }
}

/// `free`, `pro`, `team` or `business`, in any case.
impl FromStr for Plan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Plan::Free, Plan::Pro, Plan::Team, Plan::Business]
            .into_iter()
            .find(|plan| plan.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("plan {text:?} is not one of free, pro, team, business"))
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
    fn organizations_parse_with_optional_repositories_and_members() {
        assert_eq!(
            "acme:team:alice".parse::<Organization>().unwrap(),
            Organization::new("acme", Plan::Team).owner("alice")
        );
        assert_eq!(
            "acme:Business:alice,carol:app,web:bob"
                .parse::<Organization>()
                .unwrap(),
            Organization::new("acme", Plan::Business)
                .owner("alice")
                .owner("carol")
                .repository("app")
                .repository("web")
                .member("bob")
        );
        assert_eq!(
            "acme:free:alice::bob".parse::<Organization>().unwrap(),
            Organization::new("acme", Plan::Free)
                .owner("alice")
                .member("bob")
        );
        for bad in [
            "acme",
            "acme:team",
            "acme:gold:alice",
            "acme:team:",
            ":team:alice",
        ] {
            assert!(bad.parse::<Organization>().is_err(), "{bad}");
        }
        assert!("acme:team:alice:app:bob:x".parse::<Organization>().is_err());
    }

    #[test]
    fn check_refuses_unknown_people_and_clashing_names() {
        let base = Config::default().account("alice", "pw", None);
        let ok = base
            .clone()
            .organization(Organization::new("acme", Plan::Team).owner("Alice"));
        assert_eq!(ok.check(), Ok(()));
        let bad = [
            Organization::new("acme", Plan::Team),
            Organization::new("acme", Plan::Team).owner("nobody"),
            Organization::new("acme", Plan::Team)
                .owner("alice")
                .member("nobody"),
            Organization::new("ALICE", Plan::Team).owner("alice"),
            Organization::new("acme", Plan::Team)
                .owner("alice")
                .repository("acme/app"),
        ];
        for org in bad {
            let config = base.clone().organization(org.clone());
            assert!(config.check().is_err(), "{org:?}");
        }
        let twice = ok.organization(Organization::new("Acme", Plan::Business).owner("alice"));
        assert!(twice.check().is_err());
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
