//! `fakehub`: a faithful fake of the Docker Hub API, for tests of code that logs in to the Hub
//! and manages personal access tokens (PATs) and organization access tokens (OATs).
//!
//! It follows the contract in `docs/dockerhub-api.md` and the Hub's OpenAPI spec (excerpts in
//! `reference/dockerhub-openapi/`): the same paths, field names, status codes and error body
//! shapes, including the behaviours observed on the real Hub (a JWT obtained with a PAT is refused
//! on the token endpoints; 2FA accounts need the `/v2/users/2fa-login` step; expired PATs stay
//! listed) and, for OATs, the rules of Docker's "Organization access tokens" docs (owners
//! only; 10 tokens on Team, 100 on Business, expired and deactivated ones counting until
//! deleted; up to 50 repositories a token; login with the organization's name). What it serves:
//!
//! - `POST /v2/auth/token` (password, PAT, or an OAT with the organization's name),
//!   `POST /v2/users/login`, `POST /v2/users/2fa-login` (TOTP, RFC 6238);
//! - `POST|GET /v2/access-tokens`, `GET|PATCH|DELETE /v2/access-tokens/{uuid}`;
//! - `POST|GET /v2/orgs/{org}/access-tokens`, `GET|PATCH|DELETE /v2/orgs/{org}/access-tokens/{id}`
//!   for the [`Organization`]s of the [`Config`];
//! - the `X-RateLimit-*` headers and 429s of the Hub's rate limit, when configured.
//!
//! Tests drive and inspect it through [`FakeHub`]: accounts, the tokens that exist (of both
//! kinds), every call received, the number of logins, [`Fault`]s that make the next requests
//! fail, stall, or lose their response, and the [`ExpiryGrant`] that decides which expiry new
//! tokens really get. The server listens on `127.0.0.1` on a free port and runs on its own
//! thread, so the API is synchronous and usable from sync and async tests alike; dropping the
//! [`FakeHub`] stops it.
//!
//! ```no_run
//! use fakehub::{Config, FakeHub, Fault, FaultKind, Organization, Plan};
//!
//! let hub = FakeHub::start(
//!     Config::default()
//!         .account("alice", "s3cret", None)
//!         .organization(Organization::new("acme", Plan::Team).owner("alice").repository("app")),
//! )
//! .unwrap();
//! hub.inject(Fault::on("POST", "/v2/access-tokens", FaultKind::DropAfterProcessing));
//! // ... point the client under test at hub.url() ...
//! assert_eq!(hub.login_count(), 0);
//! assert!(hub.org_tokens("acme").is_empty());
//! ```

mod clock;
mod config;
mod errors;
mod fault;
mod fields;
mod hub;
mod jwt;
mod path_access_tokens;
mod path_auth;
mod path_org_access_tokens;
mod ratelimit;
mod routes;
mod server;
pub mod totp;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;

pub use config::{Account, Config, Organization, Plan, RateLimit};
pub use fault::{Fault, FaultKind};
pub use hub::{Call, ExpiryGrant, OrgTokenInfo, OrgTokenResource, TokenInfo};
pub use jwt::Claims;

use hub::Hub;
use server::Server;

/// A running fake Docker Hub. Dropping it (or [`FakeHub::shutdown`]) stops the server and joins
/// its thread.
pub struct FakeHub {
    hub: Arc<Hub>,
    addr: SocketAddr,
    server: Server,
}

impl FakeHub {
    /// Starts a fake hub on `127.0.0.1` on a free port.
    pub fn start(config: Config) -> anyhow::Result<FakeHub> {
        FakeHub::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a fake hub on `listen`; for the binary. Tests should use [`FakeHub::start`].
    /// Fails on a config that [`Config::check`] refuses.
    pub fn start_on(config: Config, listen: SocketAddr) -> anyhow::Result<FakeHub> {
        config.check().map_err(anyhow::Error::msg)?;
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("binding the fake hub to {listen}"))?;
        let addr = listener.local_addr()?;
        let hub = Arc::new(Hub::new(config, format!("http://{addr}")));
        let server = Server::spawn(Arc::clone(&hub), listener)
            .context("starting the fake hub's server thread")?;
        Ok(FakeHub { hub, addr, server })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.hub.base_url().to_owned()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds an account, or replaces the password and TOTP secret of an existing one. Panics
    /// on an organization's name.
    pub fn add_account(&self, username: &str, password: &str, totp_secret: Option<&str>) {
        self.hub
            .add_account(Account::new(username, password, totp_secret));
    }

    /// Changes an account's password; JWTs and PATs already issued stay valid. Panics when
    /// there is no such account.
    pub fn set_password(&self, username: &str, password: &str) {
        self.hub.set_password(username, password);
    }

    /// Every PAT created and not deleted, on all accounts, oldest first.
    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.hub.tokens(false)
    }

    /// The PATs that can be used to log in: active and not expired.
    pub fn live_tokens(&self) -> Vec<TokenInfo> {
        self.hub.tokens(true)
    }

    pub fn token(&self, uuid: &str) -> Option<TokenInfo> {
        self.hub.token(uuid)
    }

    /// Another client at work on `account`'s tokens: deletes its `delete_newest` newest,
    /// then creates `create` labelled `other-client-<n>` (as [`FaultKind::Churn`] does).
    pub fn churn(&self, account: &str, delete_newest: usize, create: usize) {
        self.hub.churn(account, delete_newest, create);
    }

    /// Deletes a PAT as its owner would in Docker Hub's web UI, behind the engine's back;
    /// `false` when there is no such token.
    pub fn delete_token(&self, uuid: &str) -> bool {
        self.hub
            .token(uuid)
            .is_some_and(|t| self.hub.delete_token(&t.username, uuid))
    }

    /// Every token of the organization named `org` that is not deleted, oldest first;
    /// deactivated and expired ones included (see [`OrgTokenInfo::expired`]).
    pub fn org_tokens(&self, org: &str) -> Vec<OrgTokenInfo> {
        self.hub.org_tokens(org)
    }

    /// The organization access token with this id, in whichever organization.
    pub fn org_token(&self, id: &str) -> Option<OrgTokenInfo> {
        self.hub.org_token(id)
    }

    /// Creates an organization access token as its first owner would in Docker Hub's web UI,
    /// behind the client's back, and returns it with its secret. `expires_at` (RFC 3339) may
    /// be past, for an already expired token; the resources are not checked. The plan's limit
    /// holds: panics when the organization is unknown, its plan has no tokens or no room for
    /// one more, or `expires_at` does not parse.
    pub fn create_org_token_by_hand(
        &self,
        org: &str,
        label: &str,
        description: &str,
        resources: Vec<OrgTokenResource>,
        expires_at: Option<&str>,
    ) -> OrgTokenInfo {
        self.hub
            .create_org_token_by_hand(org, label, description, resources, expires_at)
    }

    /// Deactivates an organization access token as an owner would in the web UI; `false`
    /// when there is no such token.
    pub fn deactivate_org_token(&self, id: &str) -> bool {
        self.hub.deactivate_org_token(id)
    }

    /// Makes an organization access token expire now; `false` when there is no such token.
    pub fn expire_org_token(&self, id: &str) -> bool {
        self.hub.expire_org_token(id)
    }

    /// Deletes an organization access token as an owner would in the web UI; `false` when
    /// there is no such token.
    pub fn delete_org_token(&self, id: &str) -> bool {
        self.hub.delete_org_token_by_id(id)
    }

    /// Moves the `created_at` of every token, personal and organization, back by `by`: the
    /// tokens then look that much older to a client, without a test waiting for it.
    pub fn age_tokens(&self, by: std::time::Duration) {
        self.hub.age_tokens(by);
    }

    /// Successful logins (JWTs issued) on any login endpoint.
    pub fn login_count(&self) -> usize {
        self.hub.login_count()
    }

    /// Every request received, in order of arrival.
    pub fn calls(&self) -> Vec<Call> {
        self.hub.calls()
    }

    pub fn clear_calls(&self) {
        self.hub.clear_calls();
    }

    /// Queues a fault; see [`Fault`].
    pub fn inject(&self, fault: Fault) {
        self.hub.inject(fault);
    }

    /// Replaces the rate limit, starting a fresh window; `None` lifts it.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.hub.set_rate_limit(limit);
    }

    /// Drops every queued fault, including ratio faults, which otherwise apply for ever.
    pub fn clear_faults(&self) {
        self.hub.clear_faults();
    }

    /// Sets which expiry new tokens get (the one asked for, an earlier one, or none); see
    /// [`ExpiryGrant`].
    pub fn grant_expiry(&self, grant: ExpiryGrant) {
        self.hub.grant_expiry(grant);
    }

    /// Makes every JWT issued so far invalid, as if it had expired.
    pub fn expire_jwts(&self) {
        self.hub.expire_jwts();
    }

    /// Stops the server and joins its thread (as dropping does).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.server.stop();
    }
}

impl std::fmt::Debug for FakeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHub").field("url", &self.url()).finish()
    }
}
