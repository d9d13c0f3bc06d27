//! The one place that speaks to an issuer: HTTPS GETs of its OpenID Connect discovery
//! document and its JWKS, with hyper and rustls on aws-lc-rs, trusting webpki's roots or,
//! when the mount sets `jwks_ca_pem` / `oidc_discovery_ca_pem`, only those certificates.
//!
//! Plain HTTP is refused: a key set read in clear text could be replaced on the way, and
//! whoever replaces it mints logins. A document is read up to [`MAX_DOCUMENT`] bytes; the
//! caller bounds the time ([`crate::jwks`]).

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use std::sync::Arc;

/// The most a discovery document or a JWKS may weigh (1 MiB): GitLab's and GitHub's are a
/// few kilobytes.
pub const MAX_DOCUMENT: usize = 1 << 20;

/// `url` if it is an absolute `https://` URL; the error says what is wrong with it.
pub(crate) fn https_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("{url:?} is not an https:// URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => Ok(uri),
        (Some("http"), _) => Err(format!(
            "{url:?} is plain HTTP: serve fetches keys over HTTPS only, since a key set read \
             in clear text could be replaced on the way"
        )),
        _ => Err(format!("{url:?} is not an https:// URL")),
    }
}

/// The certificates of a `*_ca_pem` setting.
pub(crate) fn ca_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {}", pem_error(e)))?;
    if certificates.is_empty() {
        return Err("holds no PEM CERTIFICATE".into());
    }
    Ok(certificates)
}

/// A PEM parser's error in words: rustls-pki-types prints the markers it names as bytes.
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => format!(
            "a section has no -----END {}----- line",
            String::from_utf8_lossy(&end_marker)
        ),
        Error::IllegalSectionStart { line } => format!(
            "a section starts with a malformed line ({})",
            String::from_utf8_lossy(&line)
        ),
        other => other.to_string(),
    }
}

/// An HTTPS client for one mount's issuer.
pub(crate) struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Client {
    /// Trusting `roots` only, or webpki's roots when `None`.
    pub fn new(roots: Option<&[CertificateDer<'static>]>) -> Result<Client, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match roots {
            None => builder
                .with_provider_and_webpki_roots(provider)
                .map_err(|e| format!("TLS is unavailable: {e}"))?,
            Some(roots) => {
                let mut store = rustls::RootCertStore::empty();
                for root in roots {
                    store
                        .add(root.clone())
                        .map_err(|e| format!("a CA certificate is not usable: {e}"))?;
                }
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS is unavailable: {e}"))?
                    .with_root_certificates(store)
                    .with_no_client_auth();
                builder.with_tls_config(config)
            }
        };
        let https = builder.https_only().enable_http1().build();
        let http = HyperClient::builder(TokioExecutor::new()).build(https);
        Ok(Client { http })
    }

    /// The JSON document at `url`, which must answer 200.
    pub async fn get_json(&self, url: &str) -> Result<Value, String> {
        let uri = https_url(url)?;
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| format!("GET {url}: {}", chain(&e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| match e.is::<http_body_util::LengthLimitError>() {
                true => {
                    format!("GET {url}: the answer is larger than {MAX_DOCUMENT} bytes (1 MiB)")
                }
                false => format!("GET {url}: reading the answer: {e}"),
            })?
            .to_bytes();
        if status != http::StatusCode::OK {
            return Err(format!("GET {url}: {status}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

/// An error and its sources, since hyper's own text ("client error (Connect)") hides why.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The JWKS URL an issuer publishes in its discovery document
/// (`<issuer>/.well-known/openid-configuration`, OpenID Connect Discovery 1.0 §4), whose
/// `issuer` must be the configured URL exactly, as OpenBao (hashicorp/cap's
/// `NewOIDCDiscoveryKeySet`) checks.
pub(crate) async fn discover(client: &Client, issuer: &str) -> Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document = client.get_json(&url).await?;
    let field = |name: &str| document.get(name).and_then(Value::as_str);
    match field("issuer") {
        Some(found) if found == issuer => {}
        found => {
            return Err(format!(
                "the discovery document at {url} names issuer {found:?}, not {issuer:?}"
            ));
        }
    }
    let jwks_uri = field("jwks_uri").ok_or(format!("{url} has no jwks_uri"))?;
    https_url(jwks_uri).map_err(|e| format!("{url}: jwks_uri {e}"))?;
    Ok(jwks_uri.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_are_taken() {
        assert!(https_url("https://gitlab.example.com/oauth/discovery/keys").is_ok());
        let error = https_url("http://gitlab.example.com/keys").unwrap_err();
        assert!(error.contains("plain HTTP"), "{error}");
        assert!(https_url("gitlab.example.com/keys").is_err());
        assert!(https_url("ftp://gitlab.example.com/keys").is_err());
        assert!(https_url("https://").is_err());
    }

    #[test]
    fn a_ca_pem_must_hold_certificates() {
        assert_eq!(ca_certificates("").unwrap_err(), "holds no PEM CERTIFICATE");
        let key = "-----BEGIN PUBLIC KEY-----\nAQAB\n-----END PUBLIC KEY-----\n";
        assert!(ca_certificates(key).is_err());
        let cut = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert_eq!(
            ca_certificates(cut).unwrap_err(),
            "not PEM: a section has no -----END CERTIFICATE----- line"
        );
    }
}
