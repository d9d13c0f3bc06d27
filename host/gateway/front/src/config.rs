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
/// Where Docker Hub is (the gateway shims route the engine's requests there); checked here
/// too, so that a bad one stops the gateway, `sys/health` included, instead of failing each
/// engine call.
pub const HUB_URL: &str = "DOCKERHUB_SECRETS_HUB_URL";
/// How long a client may take to send a request's body once its head arrived: Vault's
/// listener `http_read_timeout` (`serve` waits 30 s). A body later than that is answered 408.
pub const BODY_READ_TIMEOUT: &str = "DOCKERHUB_SECRETS_BODY_READ_TIMEOUT";
/// [`BODY_READ_TIMEOUT`] when it is not set, in seconds.
pub const DEFAULT_BODY_READ_TIMEOUT: u64 = 30;
/// The mount when [`MOUNT`] is not set.
pub const DEFAULT_MOUNT: &str = "dockerhub";
/// The `storage_type` that `sys/seal-status` reports.
pub const STORAGE_TYPE: &str = "keyvalue";

/// What the gateway serves.
pub struct Config {
    pub front: Front,
    /// [`BODY_READ_TIMEOUT`], in seconds.
    pub body_read_timeout: u64,
}

/// Why the gateway cannot serve: every request is answered 500 with this text.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{TOKENS} is not set or empty: give the gateway the tokens file's HCL text in it")]
    NoTokens,
    #[error("{TOKENS} does not hold a valid tokens file: {0}")]
    BadTokens(String),
    #[error("{MOUNT} {spelling:?}: {why}")]
    BadMount { spelling: String, why: String },
    #[error("{MAX_LEASE_TTL}: {0}")]
    BadMaxLeaseTtl(String),
    #[error("{BODY_READ_TIMEOUT}: {0}")]
    BadBodyReadTimeout(String),
    /// The URL is shown without its credentials.
    #[error("{HUB_URL}: {0}")]
    BadHubUrl(egress::HubUrlError),
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
            vault_front::duration_setting(&text).map_err(ConfigError::BadMaxLeaseTtl)?;
        }
        if let Some(url) = var(HUB_URL) {
            egress::HubOrigin::parse(&url).map_err(ConfigError::BadHubUrl)?;
        }
        let body_read_timeout = match var(BODY_READ_TIMEOUT) {
            None => DEFAULT_BODY_READ_TIMEOUT,
            Some(text) => {
                vault_front::duration_setting(&text).map_err(ConfigError::BadBodyReadTimeout)?
            }
        };
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
            body_read_timeout,
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
    fn a_bad_hub_url_or_body_read_timeout_stops_the_gateway_and_hides_credentials() {
        let ok = config(&[
            (TOKENS, TOKENS_TEXT),
            (HUB_URL, "http://127.0.0.1:4567"),
            (BODY_READ_TIMEOUT, "5s"),
        ])
        .unwrap();
        assert_eq!(ok.body_read_timeout, 5);
        assert_eq!(
            config(&[(TOKENS, TOKENS_TEXT)]).unwrap().body_read_timeout,
            DEFAULT_BODY_READ_TIMEOUT
        );
        for (name, bad) in [
            (HUB_URL, "garbage"),
            (HUB_URL, "https://user:hunter2@hub.example"),
            (HUB_URL, "user:hunter2@127.0.0.1:8080"),
            (BODY_READ_TIMEOUT, "0"),
            (BODY_READ_TIMEOUT, "soon"),
        ] {
            let Err(e) = config(&[(TOKENS, TOKENS_TEXT), (name, bad)]) else {
                panic!("{name}={bad} is refused");
            };
            let message = e.to_string();
            assert!(message.starts_with(&format!("{name}: ")), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
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
