//! A test-only OIDC issuer, as a CI system runs one (GitLab's `https://gitlab.example`,
//! GitHub's `https://token.actions.githubusercontent.com`): it serves OpenID Connect
//! discovery (`/.well-known/openid-configuration`) and its JWKS (`/jwks`) on loopback, and
//! signs identity tokens with RS256 or ES256 keys it generates (RFC 7515, RFC 7517, RFC 7518).
//!
//! Keys can be rotated (a new `kid` published; tokens signed with it) and JWKS fetches are
//! counted, for the tests of cached JWKS and rotation.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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
}

/// A running issuer; stopped when dropped.
pub struct Issuer {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Issuer {
    /// An issuer on a free loopback port, with one RS256 and one ES256 key.
    pub fn start() -> anyhow::Result<Issuer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            issuer,
            keys: Mutex::new(Keys {
                published: vec![
                    Key::generate(Alg::Rs256, "rs-1".into()),
                    Key::generate(Alg::Es256, "es-1".into()),
                ],
            }),
            jwks_fetches: AtomicUsize::new(0),
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
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("oidc-issuer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(Issuer {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The issuer URL (`iss`, and the OIDC discovery URL), `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.shared.issuer
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.shared.issuer)
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
