//! The component's configuration: three environment variables, read once per instance.
//!
//! Nothing here reaches etcd. A missing or malformed setting becomes a [`ConfigError`] that
//! names the variable and says what it must hold, which `open` returns to the engine; the
//! store key's value never appears in a message or in `Debug` output.

use crate::seal::StoreKey;

/// The etcd endpoints, comma-separated: `http://host:port` or `https://host:port`.
pub const URL_VAR: &str = "DOCKERHUB_SECRETS_ETCD_URL";
/// The folder in etcd that holds every bucket; prepended verbatim to `<bucket>/<key>`.
pub const PREFIX_VAR: &str = "DOCKERHUB_SECRETS_ETCD_PREFIX";
/// The AES-256 key that seals values: 64 hexadecimal digits.
pub const KEY_VAR: &str = "DOCKERHUB_SECRETS_STORE_KEY";
/// The prefix when [`PREFIX_VAR`] is not set.
pub const DEFAULT_PREFIX: &str = "dockerhub-secrets/";

/// A setting that is missing or malformed, in an operator's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or is empty).
    #[error("{var} is not set: it must hold {what}")]
    Missing {
        /// The variable's name.
        var: &'static str,
        /// What the variable must hold.
        what: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong, without the store key's value.
        reason: String,
    },
}

/// One etcd endpoint: a scheme and an authority (`127.0.0.1:2379`), without a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether it is reached over TLS (`https`).
    pub tls: bool,
    /// `host:port`, or a host alone for the scheme's default port.
    pub authority: String,
}

impl Endpoint {
    /// Parse `http://host:port` or `https://host:port` (a trailing `/` is allowed).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        // Not repeated: what stands before an `@` is a password, scheme or not.
        if url.contains('@') {
            return Err(
                "an endpoint must not hold credentials (user:password@); they are not sent to etcd"
                    .to_string(),
            );
        }
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("{url:?} does not start with http:// or https://"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        if let Some(c) = authority
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace())
        {
            return Err(format!(
                "{url:?} must be only a scheme, a host and a port (it holds {c:?})"
            ));
        }
        Ok(Endpoint {
            tls,
            authority: authority.to_string(),
        })
    }

    /// The URL of `path` (`/v3/kv/range`) at this endpoint.
    pub fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority)
    }
}

/// Everything the component needs to reach its storage.
#[derive(Debug, Clone)]
pub struct Config {
    /// The endpoints, in the order they are tried.
    pub endpoints: Vec<Endpoint>,
    /// The folder in etcd that holds every bucket.
    pub prefix: String,
    /// The key that seals every value.
    pub key: StoreKey,
}

impl Config {
    /// Read the configuration through `lookup`, which answers a variable's value
    /// (`std::env::var(name).ok()` natively, `wasi:cli/environment` in the component).
    /// Values are trimmed, so that a key file read with a trailing newline still works.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let read = |var: &str| {
            lookup(var)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let urls = read(URL_VAR).ok_or(ConfigError::Missing {
            var: URL_VAR,
            what: "the etcd endpoints, such as http://127.0.0.1:2379 (comma-separated when \
                   there are several)",
        })?;
        let endpoints = urls
            .split(',')
            .map(|url| Endpoint::parse(url.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| ConfigError::Invalid {
                var: URL_VAR,
                reason,
            })?;
        let prefix = match lookup(PREFIX_VAR) {
            None => DEFAULT_PREFIX.to_string(),
            Some(prefix) if prefix.trim().is_empty() => {
                return Err(ConfigError::Invalid {
                    var: PREFIX_VAR,
                    reason: format!("it is empty; unset it for the default {DEFAULT_PREFIX:?}"),
                });
            }
            Some(prefix) => prefix.trim().to_string(),
        };
        let key = read(KEY_VAR).ok_or(ConfigError::Missing {
            var: KEY_VAR,
            what: "the AES-256 key that encrypts values in etcd, as 64 hexadecimal digits \
                   (such as the output of `openssl rand -hex 32`)",
        })?;
        let key = StoreKey::from_hex(&key).map_err(|reason| ConfigError::Invalid {
            var: KEY_VAR,
            reason,
        })?;
        Ok(Config {
            endpoints,
            prefix,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "8a0f31c2d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e6f70";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn endpoints_prefix_and_key_come_from_the_environment() {
        let config = config(&[
            (URL_VAR, "http://127.0.0.1:2379, https://etcd.example:2379/"),
            (PREFIX_VAR, "gateway-a/"),
            (KEY_VAR, &format!("{KEY}\n")),
        ])
        .unwrap();
        assert_eq!(
            config.endpoints,
            [
                Endpoint {
                    tls: false,
                    authority: "127.0.0.1:2379".into()
                },
                Endpoint {
                    tls: true,
                    authority: "etcd.example:2379".into()
                },
            ]
        );
        assert_eq!(config.prefix, "gateway-a/");
        assert_eq!(
            config.endpoints[1].url("/v3/kv/put"),
            "https://etcd.example:2379/v3/kv/put"
        );
        assert!(!format!("{config:?}").contains(KEY));
    }

    #[test]
    fn the_prefix_has_a_default() {
        let config = config(&[(URL_VAR, "http://[::1]:2379"), (KEY_VAR, KEY)]).unwrap();
        assert_eq!(config.prefix, DEFAULT_PREFIX);
        assert_eq!(config.endpoints[0].to_string(), "http://[::1]:2379");
    }

    #[test]
    fn a_missing_or_bad_setting_names_its_variable_and_never_shows_the_key() {
        let cases: [(&[(&str, &str)], &str); 9] = [
            (&[(KEY_VAR, KEY)], URL_VAR),
            (&[(URL_VAR, " "), (KEY_VAR, KEY)], URL_VAR),
            (&[(URL_VAR, "127.0.0.1:2379"), (KEY_VAR, KEY)], URL_VAR),
            (&[(URL_VAR, "http://a:1,"), (KEY_VAR, KEY)], URL_VAR),
            (&[(URL_VAR, "http://a:1/v3"), (KEY_VAR, KEY)], URL_VAR),
            (&[(URL_VAR, "http://user@a:1"), (KEY_VAR, KEY)], URL_VAR),
            (
                &[(URL_VAR, "http://a:1"), (PREFIX_VAR, ""), (KEY_VAR, KEY)],
                PREFIX_VAR,
            ),
            (&[(URL_VAR, "http://a:1")], KEY_VAR),
            (&[(URL_VAR, "http://a:1"), (KEY_VAR, &KEY[..62])], KEY_VAR),
        ];
        for (vars, var) in cases {
            let message = config(vars).unwrap_err().to_string();
            assert!(message.starts_with(var), "{vars:?}: {message}");
            assert!(!message.contains(&KEY[..62]), "{message}");
        }
        for url in ["http://u:hunter2@a:1", "u:hunter2@a:1"] {
            let message = config(&[(URL_VAR, url), (KEY_VAR, KEY)])
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("credentials") && !message.contains("hunter2"),
                "{message}"
            );
        }
        assert_eq!(
            config(&[(URL_VAR, "http://a:1")]).unwrap_err().to_string(),
            "DOCKERHUB_SECRETS_STORE_KEY is not set: it must hold the AES-256 key that encrypts \
             values in etcd, as 64 hexadecimal digits (such as the output of `openssl rand -hex \
             32`)"
        );
    }
}
