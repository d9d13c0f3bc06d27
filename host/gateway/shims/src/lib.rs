//! The gateway's shims: what the engine imports beyond standard WASI, answered from the
//! gateway's environment, and the guard on its way out.
//!
//! - `wasi:logging/logging`: records at or above `DOCKERHUB_SECRETS_LOG` (default `info`)
//!   go to stderr, one line each (the engine never logs a secret).
//! - `lease-limits.max-ttl`: `DOCKERHUB_SECRETS_MAX_LEASE_TTL` (default `768h`, as `serve`'s
//!   `--max-lease-ttl`).
//! - `identity.entity-info`: `none`. The gateway's callers are the tokens of its tokens
//!   file, which have no identity entities, so a label template always falls back.
//! - `mount.instance-id`: `none`. The engine makes the mount's id itself and keeps it in the
//!   gateway's store, which is the gateway's mount.
//! - `call-limits.time-left`: `none`. A gateway instance cannot tell when the front's call
//!   began; the gateway's own limits bound each request.
//! - `wasi:http/outgoing-handler`: only `https://hub.docker.com`, routed to
//!   `DOCKERHUB_SECRETS_HUB_URL` (default the real Hub) by the [`egress`] rule; anything else
//!   is refused with `HTTP-request-denied` and never reaches the gateway's own handler.
//!
//! The rules are plain Rust below; the WIT adapter (`bindings`) only carries them.

#[cfg(target_arch = "wasm32")]
mod bindings;

use egress::HubOrigin;
use std::time::Duration;

/// `DOCKERHUB_SECRETS_MAX_LEASE_TTL`'s default: Vault's default max lease TTL (32 days).
pub const DEFAULT_MAX_LEASE_TTL: Duration = Duration::from_secs(768 * 3600);

/// The levels of `wasi:logging`, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl Level {
    /// A level by name, as `DOCKERHUB_SECRETS_LOG` gives it (`trace` ... `critical`, any case).
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" => Level::Error,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

/// The shims' settings, read from the gateway's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where requests to `https://hub.docker.com` go; `Err` holds why the setting was refused
    /// (every Hub request is then refused with that reason).
    pub hub: Result<HubOrigin, String>,
    /// The longest a lease may last from its issue, in seconds; `Err` holds why the setting
    /// was refused (the engine is then told of no limit and the reason is logged, but the
    /// front refuses every request while the setting is bad: the gateway fails closed).
    pub max_lease_ttl: Result<u64, String>,
    /// The least severe level logged.
    pub log_level: Level,
    /// Why `DOCKERHUB_SECRETS_LOG` was not taken, when it names no level: logged as a
    /// warning once per instance, at the default level.
    pub log_level_refused: Option<String>,
}

impl Settings {
    /// The settings from `var` (the environment), with the defaults above.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Settings {
        let hub_url = var("DOCKERHUB_SECRETS_HUB_URL")
            .unwrap_or_else(|| format!("https://{}", egress::ENGINE_HUB_AUTHORITY));
        let max_lease_ttl = match var("DOCKERHUB_SECRETS_MAX_LEASE_TTL") {
            None => Ok(DEFAULT_MAX_LEASE_TTL.as_secs()),
            Some(text) => vault_front::duration_setting(&text)
                .map_err(|e| format!("DOCKERHUB_SECRETS_MAX_LEASE_TTL: {e}")),
        };
        let log = var("DOCKERHUB_SECRETS_LOG");
        let log_level = log.as_deref().and_then(Level::parse);
        Settings {
            hub: HubOrigin::parse(&hub_url).map_err(|e| format!("DOCKERHUB_SECRETS_HUB_URL: {e}")),
            max_lease_ttl,
            log_level: log_level.unwrap_or(Level::Info),
            log_level_refused: log.filter(|_| log_level.is_none()).map(|name| {
                format!(
                    "DOCKERHUB_SECRETS_LOG {name:?} names no level (trace, debug, info, warn, \
                     error, critical): logging at info"
                )
            }),
        }
    }
}

/// The destination of a request the engine sends: `(scheme, authority, path with query)` at
/// the operator's Hub, or `None` when the engine addressed anything but Docker Hub.
pub fn route(
    hub: &HubOrigin,
    scheme: &str,
    authority: &str,
    path_with_query: &str,
) -> Option<(String, String, String)> {
    let uri: http::Uri = format!("{scheme}://{authority}{path_with_query}")
        .parse()
        .ok()?;
    let target = hub.route(&uri)?;
    Some((
        target.scheme_str()?.to_string(),
        target.authority()?.to_string(),
        target.path_and_query()?.to_string(),
    ))
}

/// One log line: `<LEVEL> <context>: <message>`, with line breaks escaped so that a record
/// stays one line.
pub fn log_line(level: Level, context: &str, message: &str) -> String {
    let escape = |text: &str| text.replace('\n', "\\n").replace('\r', "\\r");
    match context {
        "" => format!("{} {}", level.name(), escape(message)),
        context => format!("{} {}: {}", level.name(), escape(context), escape(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_env(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn settings_default_to_the_real_hub_and_vaults_max_lease_ttl() {
        let defaults = settings(&[]);
        assert_eq!(
            defaults.hub,
            Ok(HubOrigin::parse("https://hub.docker.com").unwrap())
        );
        assert_eq!(defaults.max_lease_ttl, Ok(768 * 3600));
        assert_eq!(defaults.log_level, Level::Info);

        let set = settings(&[
            ("DOCKERHUB_SECRETS_HUB_URL", "http://127.0.0.1:4567"),
            ("DOCKERHUB_SECRETS_MAX_LEASE_TTL", "1h"),
            ("DOCKERHUB_SECRETS_LOG", "Debug"),
        ]);
        assert_eq!(
            set.hub,
            Ok(HubOrigin::parse("http://127.0.0.1:4567").unwrap())
        );
        assert_eq!(set.max_lease_ttl, Ok(3600));
        assert_eq!(set.log_level, Level::Debug);

        assert_eq!(set.log_level_refused, None);

        let bad = settings(&[
            ("DOCKERHUB_SECRETS_HUB_URL", "ftp://hub"),
            ("DOCKERHUB_SECRETS_MAX_LEASE_TTL", "soon"),
            ("DOCKERHUB_SECRETS_LOG", "verbose"),
        ]);
        assert_eq!(bad.log_level, Level::Info);
        assert!(
            bad.log_level_refused.as_deref().is_some_and(
                |why| why.starts_with("DOCKERHUB_SECRETS_LOG \"verbose\" names no level")
            ),
            "{:?}",
            bad.log_level_refused
        );
        assert!(
            bad.hub
                .unwrap_err()
                .starts_with("DOCKERHUB_SECRETS_HUB_URL: ")
        );
        assert!(
            bad.max_lease_ttl
                .unwrap_err()
                .starts_with("DOCKERHUB_SECRETS_MAX_LEASE_TTL: ")
        );
        let zero = settings(&[("DOCKERHUB_SECRETS_MAX_LEASE_TTL", "0s")]);
        assert!(zero.max_lease_ttl.is_err());
    }

    #[test]
    fn only_docker_hub_is_routed_and_to_the_operators_url() {
        let hub = HubOrigin::parse("http://127.0.0.1:4567/hub").unwrap();
        assert_eq!(
            route(&hub, "https", "hub.docker.com", "/v2/auth/token?x=1"),
            Some((
                "http".to_string(),
                "127.0.0.1:4567".to_string(),
                "/hub/v2/auth/token?x=1".to_string()
            ))
        );
        for (scheme, authority) in [
            ("http", "hub.docker.com"),
            ("https", "evil.example"),
            ("https", "hub.docker.com:444"),
            ("https", "127.0.0.1:4567"),
            ("https", "hub.docker.com@evil.example"),
        ] {
            assert_eq!(
                route(&hub, scheme, authority, "/v2/x"),
                None,
                "{scheme}://{authority}"
            );
        }
    }

    #[test]
    fn a_record_is_one_line_at_or_above_the_level() {
        assert!(Level::Warn > Level::Info && Level::Critical > Level::Error);
        assert_eq!(
            log_line(Level::Warn, "revoke", "a\nb"),
            "WARN revoke: a\\nb"
        );
        assert_eq!(log_line(Level::Info, "", "started"), "INFO started");
        assert_eq!(Level::parse("nonsense"), None);
    }
}
