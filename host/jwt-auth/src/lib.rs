//! Vault's JWT auth method for `dockerhub-secrets serve`, the verification half: one auth
//! mount's issuer and roles, declared in serve's tokens file, and `auth/<path>/login`.
//!
//! A CI job logs in with the identity token its CI system signs for it (GitLab's
//! `id_tokens:`, GitHub Actions' `id-token: write`) and a role; the role's claim checks decide
//! whether the token is good for it, and the role says which policies and TTLs the client
//! token gets. Storing that client token, and tying leases to it, is serve's job; this crate
//! answers [`JwtAuth::login`] with a [`Login`] or a [`LoginError`].
//!
//! Names and meanings are Vault's (the JWT auth method's API, and OpenBao's
//! `builtin/credential/jwt`: `path_config.go`, `path_role.go`, `path_login.go`,
//! `claims.go`), so that a role copies between OpenBao and serve:
//!
//! ```hcl
//! auth "jwt" {
//!   type         = "jwt"
//!   jwks_url     = "https://gitlab.example.com/oauth/discovery/keys"
//!   bound_issuer = "https://gitlab.example.com"
//!
//!   role "acme-release" {
//!     role_type       = "jwt"
//!     user_claim      = "project_path"
//!     bound_audiences = ["https://serve.example.com"]
//!     bound_claims    = { project_path = "acme/app", ref_protected = "true" }
//!     claim_mappings  = { project_path = "project", ref = "ref" }
//!     token_policies  = ["acme-release"]
//!     token_ttl       = "10m"
//!   }
//! }
//! ```
//!
//! Where serve differs from OpenBao, it refuses rather than guesses: Vault fields it does not
//! implement are refused by name, `role_type` must say `"jwt"`, a JWKS is fetched over HTTPS
//! only, and with `oidc_discovery_url` an unset `bound_issuer` is the discovered issuer
//! (OpenBao then checks no `iss` at all). Verification is jsonwebtoken's. A JWKS (`jwks_url`, or the `jwks_uri` of
//! `oidc_discovery_url`) is fetched at the first login, cached, and fetched again when a
//! token names an unknown `kid` (at most once per [`MIN_REFRESH_INTERVAL`], concurrent
//! logins sharing one fetch) and when the cache is older than [`MAX_AGE`]; a fetch is bounded
//! by [`FETCH_TIMEOUT`] and [`MAX_DOCUMENT`].
//!
//! Which key checks a token: with a `kid`, the JWKS keys with that `kid` (a key that cannot
//! verify the token's `alg`, or whose JWK `alg` is another, refuses it); without one, the
//! set's only key, or the one key of the set for the token's `alg`, and where several fit
//! the token is refused (go-oidc would try each). `jwt_validation_pubkeys` have no `kid`:
//! each key for the `alg` is tried, as OpenBao does.
//!
//! Time claims follow Vault's leeway rules: a role's `clock_skew_leeway` (default 60 s)
//! widens `exp`, `nbf` and `iat`; `expiration_leeway` and `not_before_leeway` (default
//! 150 s) only stand in for a missing `exp` or `nbf`; unset or 0 is the default, a negative
//! value none.

mod claims;
mod config;
mod fetch;
mod fields;
mod jwks;
mod keys;
mod login;
mod role;

pub use fetch::MAX_DOCUMENT;
pub use jwks::{FETCH_TIMEOUT, MAX_AGE, MIN_REFRESH_INTERVAL};
pub use login::MAX_TOKEN;

use config::{KeySet, Mount};
use std::collections::BTreeMap;
use std::time::Duration;

/// One auth mount of type jwt, as declared by an `auth "<path>" { type = "jwt" ... }` block
/// of serve's tokens file: its key source, `bound_issuer`, `jwt_supported_algs`,
/// `default_role` and `role "<name>" { ... }` blocks.
pub struct JwtAuth {
    mount: Mount,
}

impl JwtAuth {
    /// The mount at `auth/<path>`. `path`: the mount path below `auth/` (the block's label;
    /// surrounding `/`s are dropped, and `token`, Vault's token store, is refused). `body`:
    /// the block's body.
    ///
    /// Mount fields (OpenBao's `auth/<path>/config`): `type = "jwt"` (required); exactly one
    /// of `jwks_url` (with optional `jwks_ca_pem`), `oidc_discovery_url` (with optional
    /// `oidc_discovery_ca_pem`) or `jwt_validation_pubkeys` (PEM public keys or certificates:
    /// RSA, EC P-256/P-384, Ed25519); `bound_issuer` (with discovery, the issuer when unset);
    /// `jwt_supported_algs` (by default RS256/384/512, PS256/384/512, ES256/384 and EdDSA;
    /// never `none` or HS*); `default_role`; `description` (ignored). URLs must be
    /// `https://`. Nothing is fetched here: keys are fetched at the first login.
    ///
    /// Role fields (OpenBao's `auth/<path>/role/<name>`): `role_type = "jwt"` (required;
    /// `"oidc"` is refused), `user_claim` (required), `user_claim_json_pointer`,
    /// `bound_audiences`, `bound_subject`, `bound_claims` (claim, or JSON pointer starting
    /// with `/`, to a value or list of values), `bound_claims_type` (`"string"` or `"glob"`),
    /// `claim_mappings`, `token_policies`, `token_ttl`, `token_max_ttl`,
    /// `token_explicit_max_ttl`, `token_no_default_policy`, `clock_skew_leeway`,
    /// `expiration_leeway`, `not_before_leeway`. A role needs at least one of
    /// `bound_audiences`, `bound_subject` and `bound_claims`. Lists may be comma-separated
    /// strings and durations `"10m"`, as Vault takes them.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the place (`auth "gitlab", role "acme"`) and the problem: an
    /// unknown field, a Vault field serve does not support ("… is not supported by serve"),
    /// a value of the wrong type, a plain-HTTP URL, or a check OpenBao makes on write.
    pub fn from_hcl(path: &str, body: &hcl::Body) -> Result<JwtAuth, ConfigError> {
        Ok(JwtAuth {
            mount: config::parse(path, body)?,
        })
    }

    /// The same mount, with fetches of its JWKS (and discovery document) given `timeout`
    /// instead of [`FETCH_TIMEOUT`] (10 s). For tests of an issuer that does not
    /// answer; no effect with `jwt_validation_pubkeys`.
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> JwtAuth {
        if let KeySet::Remote(remote) = &mut self.mount.keys {
            remote.timeout = timeout;
        }
        self
    }

    /// The same mount, with its cached JWKS fetched again once older than `max_age` instead
    /// of [`MAX_AGE`] (an hour). For tests of a key the issuer retires; no effect with
    /// `jwt_validation_pubkeys`.
    pub fn with_max_key_age(mut self, max_age: Duration) -> JwtAuth {
        if let KeySet::Remote(remote) = &mut self.mount.keys {
            remote.max_age = max_age;
        }
        self
    }

    /// The mount path below `auth/`, as normalised (`gitlab`, `ci/gitlab`).
    pub fn path(&self) -> &str {
        &self.mount.path
    }

    /// (role name, policy name) for every policy a role names, so the caller can check them
    /// against the file's policies. Role names are lower-cased, as Vault stores them.
    pub fn role_policies(&self) -> Vec<(String, String)> {
        let roles = self.mount.roles.values();
        roles
            .flat_map(|role| {
                let policies = role.token_policies.iter();
                policies.map(|policy| (role.name.clone(), policy.clone()))
            })
            .collect()
    }

    /// Whether the mount has role `name` (case does not matter, as in Vault): a login's
    /// token is renewed only while its role exists.
    pub fn has_role(&self, name: &str) -> bool {
        self.mount.roles.contains_key(&name.to_lowercase())
    }

    /// Vault's `auth/<path>/login` with fields `role` (optional when the mount has
    /// `default_role`; case does not matter) and `jwt`: the token's signature, `alg`, issuer
    /// (`bound_issuer`), subject (`bound_subject`), audience (`bound_audiences`; a token with
    /// an audience needs a role that binds one) and times, then its user claim,
    /// `claim_mappings` and `bound_claims`, in OpenBao's order and words (`path_login.go`,
    /// and hashicorp/cap's `jwt.Validator`).
    ///
    /// # Errors
    /// A [`LoginError`]: 400 for every refused login (no role, an unknown role, no token, a
    /// token that is malformed, over 16 KiB, unsigned, HMAC-signed, signed with an algorithm
    /// the mount does not accept or by an unknown key, with a bad signature, expired or not
    /// yet valid, or whose issuer, subject, audience, user claim or bound claims do not
    /// match); 500 when the key source cannot be reached and the cached keys (if any) do not
    /// have the token's key.
    pub async fn login(&self, role: Option<&str>, jwt: Option<&str>) -> Result<Login, LoginError> {
        login::login(self, role, jwt).await
    }

    /// How many times the mount's JWKS was requested (each a GET of `jwks_url`, or of the
    /// discovered `jwks_uri`); 0 with `jwt_validation_pubkeys`.
    pub fn key_fetches(&self) -> u64 {
        match &self.mount.keys {
            KeySet::Remote(remote) => remote.jwks_fetches(),
            KeySet::Static(_) => 0,
        }
    }
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("path", &self.mount.path)
            .field("roles", &self.mount.roles.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A successful login: what the client token gets, as Vault's `logical.Auth` from the jwt
/// auth method carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The role logged in with (lower-cased).
    pub role: String,
    /// The value of the role's `user_claim` (the entity alias name in Vault).
    pub alias_name: String,
    /// As Vault shows it: `<path>-<alias_name>`, `/` in the path becoming `-` (OpenBao's
    /// `LoginCreateToken` puts the mount path before the jwt method's `DisplayName`, the
    /// alias name).
    pub display_name: String,
    /// The role's `token_policies`, as configured (the caller adds `default` unless
    /// `no_default_policy`).
    pub policies: Vec<String>,
    /// The role's `token_no_default_policy`.
    pub no_default_policy: bool,
    /// `token_ttl` in seconds; 0 = not set (the caller applies its defaults).
    pub ttl: u64,
    /// `token_max_ttl` in seconds; 0 = not set.
    pub max_ttl: u64,
    /// `token_explicit_max_ttl` in seconds; 0 = not set.
    pub explicit_max_ttl: u64,
    /// `role` = the role name, plus the claims named by `claim_mappings` under their
    /// metadata keys (Vault's alias metadata, and the token's `meta`).
    pub metadata: BTreeMap<String, String>,
}

/// A refusal: Vault's status (400 for every bad login, as Vault's jwt plugin answers with
/// `logical.ErrorResponse`; 500 only when the key source cannot be reached) and a message
/// that names the reason, in OpenBao's words where it has them, and never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LoginError {
    pub status: u16,
    pub message: String,
}

impl LoginError {
    pub(crate) fn bad(message: impl Into<String>) -> LoginError {
        LoginError {
            status: 400,
            message: message.into(),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> LoginError {
        LoginError {
            status: 500,
            message: message.into(),
        }
    }
}

/// A problem in an auth block: where (`auth "gitlab"`, `auth "gitlab", role "acme"`) and
/// what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct ConfigError {
    pub at: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(at: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            at: at.to_owned(),
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests;
