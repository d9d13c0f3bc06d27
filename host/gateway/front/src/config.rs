//! The gateway's configuration: environment variables, as `wasmtime serve --env` and
//! `jco serve` hand them to a component (`wasi:cli/environment`), read once per request.

use vault_front::{AccessControl, Front};

/// The tokens file's HCL text: tokens (by SHA-256) and their policies, the format of
/// `dockerhub-secrets serve`'s tokens file (`serve`'s `DOCKERHUB_SECRETS_TOKENS` names the file instead).
pub const TOKENS: &str = "DOCKERHUB_SECRETS_TOKENS_HCL";
/// Where the engine is mounted: `/v1/<mount>/...`, taken as `serve --mount` takes it.
pub const MOUNT: &str = "DOCKERHUB_SECRETS_MOUNT";
/// The longest a lease may last (the gateway shims give it to the engine); checked here too,
/// so that a typo stops the gateway instead of lifting the limit.
pub const MAX_LEASE_TTL: &str = "DOCKERHUB_SECRETS_MAX_LEASE_TTL";
/// The mount when [`MOUNT`] is not set.
pub const DEFAULT_MOUNT: &str = "dockerhub";
/// The `storage_type` that `sys/seal-status` reports.
pub const STORAGE_TYPE: &str = "keyvalue";

/// What the gateway serves.
pub struct Config {
    pub front: Front,
}

/// Why the gateway cannot serve: every request is answered 500 with this text.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{TOKENS} is not set: give the gateway the tokens file's HCL text in it")]
    NoTokens,
    #[error("{TOKENS} does not hold a valid tokens file: {0}")]
    BadTokens(String),
    #[error("{MOUNT} {spelling:?}: {why}")]
    BadMount { spelling: String, why: String },
    #[error("{MAX_LEASE_TTL}: {0}")]
    BadMaxLeaseTtl(String),
}

impl Config {
    /// The configuration from the variables `var` returns (`std::env::var` in the gateway).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let tokens = var(TOKENS)
            .filter(|text| !text.trim().is_empty())
            .ok_or(ConfigError::NoTokens)?;
        let acl =
            AccessControl::parse(&tokens).map_err(|e| ConfigError::BadTokens(e.to_string()))?;
        if let Some(text) = var(MAX_LEASE_TTL) {
            vault_front::max_lease_ttl(&text).map_err(ConfigError::BadMaxLeaseTtl)?;
        }
        let spelling = var(MOUNT).unwrap_or_else(|| DEFAULT_MOUNT.to_string());
        let mount = vault_front::mount_path(&spelling).map_err(|why| ConfigError::BadMount {
            spelling: spelling.clone(),
            why,
        })?;
        Ok(Config {
            front: Front {
                acl,
                mount,
                storage_type: STORAGE_TYPE,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKENS_TEXT: &str = r#"
        token "ci" {
          sha256   = "0000000000000000000000000000000000000000000000000000000000000000"
          policies = ["default"]
        }
    "#;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_mount_defaults_to_dockerhub_and_is_taken_as_serve_takes_it() {
        let config = config(&[(TOKENS, TOKENS_TEXT)]).unwrap();
        assert_eq!(config.front.mount, "dockerhub");
        assert_eq!(config.front.storage_type, "keyvalue");
        let config = self::config(&[(TOKENS, TOKENS_TEXT), (MOUNT, "/hub/")]).unwrap();
        assert_eq!(config.front.mount, "hub");
        let Err(e) = self::config(&[(TOKENS, TOKENS_TEXT), (MOUNT, "sys")]) else {
            panic!("sys/ is Vault's");
        };
        assert!(
            e.to_string()
                .starts_with("DOCKERHUB_SECRETS_MOUNT \"sys\": "),
            "{e}"
        );
    }

    #[test]
    fn a_bad_max_lease_ttl_stops_the_gateway_rather_than_lift_the_limit() {
        assert!(config(&[(TOKENS, TOKENS_TEXT), (MAX_LEASE_TTL, "30s")]).is_ok());
        for bad in ["banana", "0", "-5s"] {
            let Err(e) = config(&[(TOKENS, TOKENS_TEXT), (MAX_LEASE_TTL, bad)]) else {
                panic!("{bad} is no max lease TTL");
            };
            assert!(
                e.to_string()
                    .starts_with("DOCKERHUB_SECRETS_MAX_LEASE_TTL: "),
                "{e}"
            );
        }
    }

    #[test]
    fn a_missing_or_bad_tokens_file_names_the_variable() {
        for vars in [&[][..], &[(TOKENS, " ")], &[(TOKENS, "token {")]] {
            let Err(e) = config(vars) else {
                panic!("{vars:?} is no tokens file");
            };
            assert!(
                e.to_string().starts_with("DOCKERHUB_SECRETS_TOKENS_HCL "),
                "{e}"
            );
        }
    }
}
