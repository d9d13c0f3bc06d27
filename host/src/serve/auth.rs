//! The auth mounts of `serve`'s tokens file: `auth "<path>" { type = "jwt" ... }` blocks,
//! each Vault's JWT auth method at `auth/<path>/` ([`jwt_auth`] verifies the logins), so that
//! a CI job's OIDC identity token buys a client token with no static secret.

use super::tokens::Grant;
use std::collections::BTreeMap;
use vault_front::{AccessControl, ApiError, LoginToken, string_field};

/// The auth mounts, by path below `auth/`.
#[derive(Default)]
pub struct AuthMounts(BTreeMap<String, jwt_auth::JwtAuth>);

impl AuthMounts {
    /// The `auth` blocks of a tokens file ([`jwt_auth::JwtAuth::from_hcl`] says what they
    /// hold); every policy their roles name must be defined in the file, and none is `root`.
    pub fn load(acl: &AccessControl) -> anyhow::Result<AuthMounts> {
        let mut mounts = BTreeMap::new();
        for block in acl.auth_blocks() {
            let label = block.labels()[0].as_str();
            let at = format!("auth \"{label}\"");
            let auth = jwt_auth::JwtAuth::from_hcl(label, block.body())?;
            for (role, policy) in auth.role_policies() {
                if !acl.has_policy(&policy) {
                    anyhow::bail!("{at}, role \"{role}\": refers to unknown policy \"{policy}\"");
                }
                if policy == "root" {
                    anyhow::bail!(
                        "{at}, role \"{role}\": a login never gets the root policy; write a policy for what the role needs"
                    );
                }
            }
            let path = auth.path().to_string();
            if mounts.insert(path.clone(), auth).is_some() {
                anyhow::bail!("two auth blocks name the mount auth/{path}");
            }
        }
        Ok(AuthMounts(mounts))
    }

    /// Whether `auth/<mount>/login` is one of these.
    pub fn serves(&self, mount: &str) -> bool {
        self.0.contains_key(mount)
    }

    /// Verify a login: `data`'s `role` and `jwt`, as Vault's JWT auth method takes them.
    pub async fn login(&self, mount: &str, data: &serde_json::Value) -> Result<Grant, ApiError> {
        let auth = self
            .0
            .get(mount)
            .ok_or_else(|| ApiError::new(403, "permission denied"))?;
        let (role, jwt) = (string_field(data, "role")?, string_field(data, "jwt")?);
        let login = auth
            .login(Some(role.as_str()).filter(|r| !r.is_empty()), Some(&jwt))
            .await
            .map_err(|e| ApiError::new(e.status, e.message))?;
        Ok(Grant {
            mount: mount.to_string(),
            role: login.role,
            display_name: login.display_name,
            policies: login.policies,
            no_default_policy: login.no_default_policy,
            meta: login.metadata,
            ttl: login.ttl,
            max_ttl: login.max_ttl,
            explicit_max_ttl: login.explicit_max_ttl,
        })
    }

    /// Whether `token` may still be renewed: its mount and role still exist (OpenBao's jwt
    /// `pathLoginRenew`).
    pub fn check_renewal(&self, token: &LoginToken) -> Result<(), ApiError> {
        let exists = self
            .0
            .get(&token.mount)
            .is_some_and(|auth| auth.has_role(&token.role));
        match exists {
            true => Ok(()),
            false => Err(ApiError::new(
                400,
                format!("role {:?} could not be found during renewal", token.role),
            )),
        }
    }
}
