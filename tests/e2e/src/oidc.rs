//! A test-only OIDC issuer, as a CI system runs one (GitLab's `https://gitlab.example`,
//! GitHub's `https://token.actions.githubusercontent.com`): it serves OpenID Connect
//! discovery (`/.well-known/openid-configuration`) and its JWKS (`/jwks`) on loopback, and
//! signs identity tokens with RS256 or ES256 keys it generates (RFC 7515, RFC 7517, RFC 7518).
//!
//! Keys can be rotated (a new `kid` published; tokens signed with it) or retired, and JWKS
//! fetches are counted, for the tests of cached JWKS and rotation.
//!
//! It serves plain HTTP ([`Issuer::start`], for OpenBao, which the tests let fetch over
//! HTTP) or HTTPS ([`Issuer::start_https`], for serve, which fetches keys over HTTPS only)
//! with a certificate for `127.0.0.1` and `localhost` from a CA made for the issuer
//! ([`Issuer::ca_pem`]).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    RSA_PKCS1_SHA256,
};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The signature algorithms the issuer signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (GitLab's and GitHub's tokens).
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

struct Key {
    kid: String,
    alg: Alg,
    signer: Signer,
}

impl Key {
    fn generate(alg: Alg, kid: String) -> Key {
        let signer = match alg {
            Alg::Rs256 => Signer::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("an RSA key")),
            Alg::Es256 => Signer::Ec(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key"),
            ),
        };
        Key { kid, alg, signer }
    }

    /// The public key as a JWK (RFC 7517 §4, RFC 7518 §6).
    fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Rsa(key) => {
                let public = key.public_key();
                json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                    "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Signer::Ec(key) => {
                // The uncompressed point: 0x04 || x || y.
                let point = key.public_key().as_ref();
                json!({
                    "kty": "EC", "use": "sig", "alg": "ES256", "kid": self.kid, "crv": "P-256",
                    "x": B64.encode(&point[1..33]),
                    "y": B64.encode(&point[33..65]),
                })
            }
        }
    }

    /// A compact JWS of `claims` (RFC 7515 §7.1).
    fn sign(&self, claims: &Value) -> String {
        let alg = match self.alg {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        };
        let header = json!({"alg": alg, "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match &self.signer {
            Signer::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature)
                    .expect("RSA signing");
                signature
            }
            Signer::Ec(key) => key
                .sign(&rng, input.as_bytes())
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", B64.encode(signature))
    }
}

struct Keys {
    /// Published in the JWKS, newest last.
    published: Vec<Key>,
}

struct Shared {
    issuer: String,
    keys: Mutex<Keys>,
    jwks_fetches: AtomicUsize,
    /// Bytes of filler the JWKS carries beside its keys.
    jwks_padding: AtomicUsize,
}

/// A running issuer; stopped when dropped.
pub struct Issuer {
    shared: Arc<Shared>,
    ca_pem: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Issuer {
    /// An issuer on a free loopback port, with one RS256 and one ES256 key, over HTTP.
    pub fn start() -> anyhow::Result<Issuer> {
        Issuer::start_with(None)
    }

    /// As [`Issuer::start`], over HTTPS with a certificate that [`Issuer::ca_pem`] signs.
    pub fn start_https() -> anyhow::Result<Issuer> {
        Issuer::start_with(Some(TlsIdentity::generate()?))
    }

    fn start_with(tls: Option<TlsIdentity>) -> anyhow::Result<Issuer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = format!("{scheme}://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            issuer,
            keys: Mutex::new(Keys {
                published: vec![
                    Key::generate(Alg::Rs256, "rs-1".into()),
                    Key::generate(Alg::Es256, "es-1".into()),
                ],
            }),
            jwks_fetches: AtomicUsize::new(0),
            jwks_padding: AtomicUsize::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        let ca_pem = tls.as_ref().map(|tls| tls.ca_pem.clone());
        let acceptor = tls.map(TlsIdentity::acceptor).transpose()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async {
            let _ = stopped.await;
        };
        let thread = std::thread::Builder::new()
            .name("oidc-issuer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = match acceptor {
                        None => {
                            axum::serve(listener, app)
                                .with_graceful_shutdown(stopped)
                                .await
                        }
                        Some(acceptor) => {
                            let listener = TlsListener { listener, acceptor };
                            axum::serve(listener, app)
                                .with_graceful_shutdown(stopped)
                                .await
                        }
                    };
                });
            })?;
        Ok(Issuer {
            shared,
            ca_pem,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The CA certificate (PEM) that signed the HTTPS issuer's certificate; `None` over HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The issuer URL (`iss`, and the OIDC discovery URL), `http://127.0.0.1:<port>` (or
    /// `https://`).
    pub fn url(&self) -> &str {
        &self.shared.issuer
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.shared.issuer)
    }

    /// Make the JWKS `bytes` larger, with a filler member beside its keys.
    pub fn pad_jwks(&self, bytes: usize) {
        self.shared.jwks_padding.store(bytes, Ordering::SeqCst);
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// A token with `claims`, and `iss`, `iat`, `nbf` and `exp` (`lifetime` seconds on)
    /// added where `claims` has none, signed with the newest `alg` key.
    pub fn sign(&self, alg: Alg, claims: Value, lifetime: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let mut claims = claims;
        let object = claims.as_object_mut().expect("claims are an object");
        for (name, value) in [
            ("iss", json!(self.shared.issuer)),
            ("iat", json!(now)),
            ("nbf", json!(now)),
            ("exp", json!(now + lifetime)),
        ] {
            object.entry(name).or_insert(value);
        }
        let keys = self.shared.keys.lock().unwrap();
        let key = keys
            .published
            .iter()
            .rev()
            .find(|k| k.alg == alg)
            .expect("a key of that algorithm");
        key.sign(&claims)
    }

    /// Publish a new `alg` key with id `kid`; later tokens of that algorithm are signed with it.
    pub fn rotate(&self, alg: Alg, kid: &str) {
        let key = Key::generate(alg, kid.to_string());
        self.shared.keys.lock().unwrap().published.push(key);
    }

    /// Stop publishing the key `kid` (tokens are no longer signed with it).
    pub fn retire(&self, kid: &str) {
        let mut keys = self.shared.keys.lock().unwrap();
        keys.published.retain(|key| key.kid != kid);
    }

    /// A token signed with the newest `alg` key whose header names `kid` instead of that
    /// key's: a token from a key the issuer never published.
    pub fn sign_with_kid(&self, alg: Alg, claims: Value, kid: &str) -> String {
        let token = self.sign(alg, claims, 300);
        let (header, rest) = token.split_once('.').expect("a compact JWS");
        let mut header: Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
        header["kid"] = json!(kid);
        format!("{}.{rest}", B64.encode(header.to_string()))
    }
}

/// The issuer's HTTPS identity: a CA made for it, and a certificate for `127.0.0.1` and
/// `localhost` that the CA signed (webpki refuses a CA certificate used as its own leaf).
struct TlsIdentity {
    ca_pem: String,
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivatePkcs8KeyDer<'static>,
}

/// A P-256 key of aws-lc-rs, as rcgen signs certificates with it.
struct CertKey(EcdsaKeyPair);

impl CertKey {
    fn generate() -> anyhow::Result<CertKey> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|_| anyhow::anyhow!("generating a P-256 key"))?;
        Ok(CertKey(key))
    }
}

impl rcgen::PublicKeyData for CertKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for CertKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature = self.0.sign(&SystemRandom::new(), message);
        let signature = signature.map_err(|_| rcgen::Error::RemoteKeyError)?;
        Ok(signature.as_ref().to_vec())
    }
}

impl TlsIdentity {
    fn generate() -> anyhow::Result<TlsIdentity> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
        let ca_key = CertKey::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.serial_number = Some(serial()?);
        ca.distinguished_name
            .push(DnType::CommonName, "test OIDC issuer CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let ca_issuer = rcgen::Issuer::new(ca, ca_key);
        let key = CertKey::generate()?;
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let mut leaf = CertificateParams::new(names)?;
        leaf.serial_number = Some(serial()?);
        leaf.distinguished_name
            .push(DnType::CommonName, "test OIDC issuer");
        let cert = leaf.signed_by(&key, &ca_issuer)?;
        let pkcs8 = key
            .0
            .to_pkcs8v1()
            .map_err(|_| anyhow::anyhow!("encoding the key"))?;
        Ok(TlsIdentity {
            ca_pem: ca_cert.pem(),
            cert: cert.der().clone(),
            key: rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()),
        })
    }

    fn acceptor(self) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert], self.key.into())?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// A random positive certificate serial number (rcgen makes none without its own crypto).
fn serial() -> anyhow::Result<rcgen::SerialNumber> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| anyhow::anyhow!("no randomness"))?;
    serial[0] &= 0x7f;
    Ok(rcgen::SerialNumber::from_slice(&serial))
}

/// Loopback connections after their TLS handshake, for axum.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let Ok((tcp, address)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            // A client that never finishes its handshake must not hold up the next one.
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("{}/jwks", shared.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = shared.keys.lock().unwrap();
    axum::Json(json!({
        "keys": keys.published.iter().map(Key::jwk).collect::<Vec<_>>(),
        "filler": "x".repeat(shared.jwks_padding.load(Ordering::SeqCst)),
    }))
}

/// The claims of a GitLab CI job's `id_tokens:` token for `project_path` on `ref_name`
/// (GitLab's documented claim names).
pub fn gitlab_claims(project_path: &str, ref_name: &str, protected: bool, aud: &str) -> Value {
    let namespace = project_path.split('/').next().unwrap_or_default();
    json!({
        "aud": aud,
        "sub": format!("project_path:{project_path}:ref_type:branch:ref:{ref_name}"),
        "namespace_path": namespace,
        "project_path": project_path,
        "pipeline_source": "push",
        "ref": ref_name,
        "ref_type": "branch",
        "ref_protected": protected.to_string(),
        "job_id": "4242",
        "user_login": "jane",
    })
}

/// The claims of a GitHub Actions job's OIDC token for `repository` on `ref_name`
/// (GitHub's documented claim names).
pub fn github_claims(repository: &str, ref_name: &str, aud: &str) -> Value {
    let owner = repository.split('/').next().unwrap_or_default();
    json!({
        "aud": aud,
        "sub": format!("repo:{repository}:ref:refs/heads/{ref_name}"),
        "repository": repository,
        "repository_owner": owner,
        "ref": format!("refs/heads/{ref_name}"),
        "ref_type": "branch",
        "workflow": "release",
        "actor": "jane",
        "event_name": "push",
    })
}
