//! The WIT adapter: the exports of `wit/world.wit`, each carrying one rule of the crate root.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "dockerhub-secrets:gateway-shims/shims",
    generate_all,
});

use crate::{Level, Settings, log_line, route};
use exports::dockerhub_secrets::engine::{call_limits, identity, lease_limits, mount};
use exports::wasi::http::outgoing_handler;
use exports::wasi::logging::logging;
use std::sync::OnceLock;
use wasi::http::types::{
    ErrorCode, FutureIncomingResponse, OutgoingRequest, RequestOptions, Scheme,
};

/// The settings, read once per instance.
fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let settings = Settings::from_env(|name| std::env::var(name).ok());
        if let Some(why) = &settings.log_level_refused {
            eprintln!("{}", log_line(Level::Warn, "logging", why));
        }
        settings
    })
}

struct Shims;

impl logging::Guest for Shims {
    fn log(level: logging::Level, context: String, message: String) {
        let level = match level {
            logging::Level::Trace => Level::Trace,
            logging::Level::Debug => Level::Debug,
            logging::Level::Info => Level::Info,
            logging::Level::Warn => Level::Warn,
            logging::Level::Error => Level::Error,
            logging::Level::Critical => Level::Critical,
        };
        if level >= settings().log_level {
            eprintln!("{}", log_line(level, &context, &message));
        }
    }
}

impl lease_limits::Guest for Shims {
    fn max_ttl() -> Option<u64> {
        match &settings().max_lease_ttl {
            Ok(seconds) => Some(*seconds),
            Err(why) => {
                eprintln!("{}", log_line(Level::Error, "lease-limits", why));
                None
            }
        }
    }
}

impl identity::Guest for Shims {
    fn entity_info(_entity_id: String) -> Result<Option<identity::Entity>, String> {
        Ok(None)
    }
}

impl mount::Guest for Shims {
    fn instance_id() -> Option<String> {
        None
    }
}

impl call_limits::Guest for Shims {
    fn time_left() -> Option<u64> {
        None
    }
}

impl outgoing_handler::Guest for Shims {
    fn handle(
        request: OutgoingRequest,
        options: Option<RequestOptions>,
    ) -> Result<FutureIncomingResponse, ErrorCode> {
        let hub = match &settings().hub {
            Ok(hub) => hub,
            Err(why) => return Err(ErrorCode::InternalError(Some(why.clone()))),
        };
        let scheme = match request.scheme() {
            Some(Scheme::Http) => "http".to_string(),
            Some(Scheme::Https) | None => "https".to_string(),
            Some(Scheme::Other(other)) => other,
        };
        let authority = request.authority().unwrap_or_default();
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let Some((scheme, authority, path)) = route(hub, &scheme, &authority, &path) else {
            return Err(ErrorCode::HttpRequestDenied);
        };
        let scheme = match scheme.as_str() {
            "http" => Scheme::Http,
            _ => Scheme::Https,
        };
        let set = request.set_scheme(Some(&scheme)).is_ok()
            && request.set_authority(Some(&authority)).is_ok()
            && request.set_path_with_query(Some(&path)).is_ok();
        if !set {
            return Err(ErrorCode::HttpRequestDenied);
        }
        wasi::http::outgoing_handler::handle(request, options)
    }
}

export!(Shims);
