//! The engine's only way out, as a rule every host applies: HTTP to Docker Hub, and nowhere
//! else.
//!
//! The engine addresses the Hub as `https://hub.docker.com` (see `wit/engine.wit`). A host
//! routes exactly that origin to the base URL the operator chose (the real Hub, a proxy, or a
//! fake in tests) and refuses every other origin with `HTTP-request-denied`. The Hub URL is a
//! host setting on purpose: no API user can point a stored password at another server.
//!
//! Plain Rust, so that the native runtime (`host/src/runtime/outbound.rs`) and the gateway's
//! egress guard (a wasm component) apply the same rule.

use http::uri::{Authority, PathAndQuery, Scheme, Uri};

/// The authority the engine uses for Docker Hub, always over `https`.
pub const ENGINE_HUB_AUTHORITY: &str = "hub.docker.com";

/// A bad Hub URL setting (`--hub-url`, `DOCKERHUB_SECRETS_HUB_URL`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Docker Hub URL {url:?}: {reason}")]
pub struct HubUrlError {
    url: String,
    reason: &'static str,
}

impl HubUrlError {
    /// A Hub URL refused for `reason`, such as a host's own (no TLS to reach it with). The
    /// error shows the URL without its credentials, if it holds any (see [`redacted`]).
    pub fn new(url: &str, reason: &'static str) -> HubUrlError {
        HubUrlError {
            url: redacted(url),
            reason,
        }
    }
}

/// `url` with whatever stands before the last `@` of its authority (user and password,
/// RFC 3986 §3.2.1) replaced by `***`: safe to show in an error. The authority runs from
/// after `://` (or from the start, when a scheme is missing) to the next `/`, `?` or `#`.
pub fn redacted(url: &str) -> String {
    let start = url.find("://").map_or(0, |at| at + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_string(),
    }
}

/// Where the operator's Docker Hub is: `http` or `https`, a host with an optional port, and
/// an optional path prefix; no credentials, no query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOrigin {
    scheme: Scheme,
    authority: Authority,
    /// A path prefix of the base URL, without a trailing `/` (empty for the real Hub).
    base_path: String,
}

impl HubOrigin {
    /// Read a Hub URL such as `https://hub.docker.com`, `https://proxy.example/dockerhub/`
    /// or `http://127.0.0.1:4567`.
    ///
    /// # Errors
    /// [`HubUrlError`] naming why: not a URL, no or another scheme, no host, credentials, a
    /// port that is no number from 0 to 65535, a query.
    pub fn parse(hub_url: &str) -> Result<HubOrigin, HubUrlError> {
        let invalid = |reason| HubUrlError::new(hub_url, reason);
        let uri: Uri = hub_url.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| invalid("no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(invalid("the scheme must be http or https"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not allowed"));
        }
        let port = authority.as_str().strip_prefix(authority.host());
        let port_ok = match port {
            Some("") => true,
            Some(port) => port
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .is_some(),
            None => false,
        };
        if !port_ok {
            return Err(invalid("the port is not a number from 0 to 65535"));
        }
        if uri.query().is_some() {
            return Err(invalid("a query is not allowed"));
        }
        Ok(HubOrigin {
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The operator's URL for a request the engine addressed to the Hub (`https`, authority
    /// exactly `hub.docker.com`): the same path and query below the base URL. `None` for any
    /// other destination, which the host refuses.
    pub fn route(&self, uri: &Uri) -> Option<Uri> {
        let is_hub = uri.scheme() == Some(&Scheme::HTTPS)
            && uri.authority().map(Authority::as_str) == Some(ENGINE_HUB_AUTHORITY);
        if !is_hub {
            return None;
        }
        let path = uri
            .path_and_query()
            .map(PathAndQuery::as_str)
            .unwrap_or("/");
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{path}", self.base_path))
            .build()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(hub_url: &str, uri: &str) -> Option<String> {
        HubOrigin::parse(hub_url)
            .unwrap()
            .route(&uri.parse().unwrap())
            .map(|u| u.to_string())
    }

    #[test]
    fn routes_only_the_hub_origin() {
        let fake = "http://127.0.0.1:4567";
        assert_eq!(
            routed(fake, "https://hub.docker.com/v2/access-tokens?page=2").as_deref(),
            Some("http://127.0.0.1:4567/v2/access-tokens?page=2")
        );
        assert_eq!(
            routed(
                "https://proxy.example/dockerhub/",
                "https://hub.docker.com/v2/auth/token"
            )
            .as_deref(),
            Some("https://proxy.example/dockerhub/v2/auth/token")
        );
        for elsewhere in [
            "https://evil.example/v2/auth/token",
            "http://hub.docker.com/v2/auth/token",
            "https://hub.docker.com:8443/v2/auth/token",
            "http://127.0.0.1:4567/v2/auth/token",
        ] {
            assert_eq!(routed(fake, elsewhere), None, "{elsewhere}");
        }
    }

    #[test]
    fn rejects_bad_hub_urls() {
        for bad in [
            "",
            "hub.docker.com",
            "ftp://hub",
            "https://user:pw@hub",
            "https://hub/?x=1",
            "http://127.0.0.1:18902,--time-limit=4s",
            "http://127.0.0.1:99999",
        ] {
            assert!(HubOrigin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_url_is_shown_without_its_credentials() {
        for url in [
            "https://user:hunter2@hub.example/x",
            "http://user:hunter2@127.0.0.1:1?x=1",
            "http://a@b:hunter2@hub.example",
            "http://user:hunter2 @hub",
            "user:hunter2@127.0.0.1:8080",
            "user:hunter2@hub.example/path",
        ] {
            let message = HubOrigin::parse(url).unwrap_err().to_string();
            assert!(!message.contains("hunter2"), "{message}");
            assert!(message.contains("***@"), "{message}");
        }
        assert_eq!(
            redacted("https://hub.docker.com/@x"),
            "https://hub.docker.com/@x"
        );
        assert_eq!(redacted("not a url"), "not a url");
    }
}
