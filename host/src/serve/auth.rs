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
            // As OpenBao's router: one mount may not sit inside another.
            let nested = |a: &str, b: &str| b.starts_with(&format!("{a}/"));
            if let Some(other) = mounts
                .keys()
                .find(|other: &&String| nested(other, &path) || nested(&path, other))
            {
                anyhow::bail!(
                    "{at}: auth/{path} and auth/{other} overlap; OpenBao refuses a mount inside another"
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEX4WUKtR+vPoRfoAzh5aQN0MhT886
79go6hEcd/nOBbbuENdH/+O7LNNW1Rr1OZ/W9lRWmmcf5MU2kbNwh4xgiw==
-----END PUBLIC KEY-----
";

    fn file(policies: &str) -> String {
        format!(
            r#"
policy "ci" {{
  path "dockerhub/token/hoeg/hoeg" {{ capabilities = ["update"] }}
}}
auth "jwt" {{
  type = "jwt"
  jwt_validation_pubkeys = [{key:?}]
  role "release" {{
    role_type       = "jwt"
    user_claim      = "sub"
    bound_audiences = ["a"]
    token_policies  = [{policies}]
  }}
}}
"#,
            key = KEY
        )
    }

    fn load(text: &str) -> anyhow::Result<AuthMounts> {
        AuthMounts::load(&AccessControl::parse(text).unwrap())
    }

    #[test]
    fn roles_may_name_only_the_files_policies_and_never_root() {
        let mounts = load(&file(r#""ci""#)).unwrap();
        assert!(mounts.serves("jwt"));
        assert!(!mounts.serves("other"));
        let unknown = load(&file(r#""ci", "nope""#)).err().unwrap().to_string();
        assert_eq!(
            unknown,
            "auth \"jwt\", role \"release\": refers to unknown policy \"nope\""
        );
        let root = load(&file(r#""root""#)).err().unwrap().to_string();
        assert!(root.contains("never gets the root policy"), "{root}");
        // `/jwt/` is the mount `jwt`, as Vault reads a path: one mount, declared twice.
        let block = file(r#""ci""#);
        let auth = &block[block.find("auth").unwrap()..];
        let twice = format!(
            "{block}\n{}",
            auth.replace("auth \"jwt\"", "auth \"/jwt/\"")
        );
        let twice = load(&twice).err().unwrap().to_string();
        assert_eq!(twice, "two auth blocks name the mount auth/jwt");
        for (first, second) in [("jwt", "jwt/gitlab"), ("jwt/gitlab", "jwt")] {
            let block = file(r#""ci""#).replace("auth \"jwt\"", &format!("auth \"{first}\""));
            let auth = &block[block.find("auth").unwrap()..];
            let nested = format!("{block}\n{}", auth.replacen(first, second, 1));
            let nested = load(&nested).err().unwrap().to_string();
            assert!(
                nested.ends_with("overlap; OpenBao refuses a mount inside another"),
                "{nested}"
            );
        }
    }

    #[test]
    fn a_renewal_needs_the_role_still_there() {
        let mounts = load(&file(r#""ci""#)).unwrap();
        let issued = vault_front::Timestamp::now();
        let mut token = LoginToken {
            accessor: "a".into(),
            path: "auth/jwt/login".into(),
            mount: "jwt".into(),
            role: "release".into(),
            display_name: "jwt-x".into(),
            policies: vec!["default".into()],
            meta: Default::default(),
            issue_time: issued,
            expire_time: issued.plus_secs(60),
            creation_ttl: 60,
            explicit_max_ttl: 0,
            max_expire_time: issued.plus_secs(60),
            last_renewal: None,
        };
        assert!(mounts.check_renewal(&token).is_ok());
        token.role = "gone".into();
        let ApiError(status, errors) = mounts.check_renewal(&token).unwrap_err();
        assert_eq!(status.as_u16(), 400);
        assert_eq!(errors, ["role \"gone\" could not be found during renewal"]);
    }
}
