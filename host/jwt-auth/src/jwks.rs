//! A remote key set (`jwks_url`, or the `jwks_uri` of `oidc_discovery_url`), cached, and
//! when it is fetched again.
//!
//! The set is fetched at the first login that needs it and kept. It is fetched again when a
//! token names a `kid` the cached set does not have (an issuer rotating its keys), and when
//! the cached set is older than [`MAX_AGE`] (so that a key the issuer removed stops being
//! trusted). Two rules keep a flood of tokens with made-up `kid`s from making serve hammer
//! the issuer: logins that need a new set while one is being fetched wait for that fetch
//! instead of starting their own, and a fetch starts at most once per
//! [`MIN_REFRESH_INTERVAL`]. A fetch that fails or times out keeps the cached set: tokens
//! signed with a key it holds still log in.

use crate::LoginError;
use crate::fetch::{self, Client};
use crate::keys::{self, Choice, PublicKey};
use jsonwebtoken::Algorithm;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// After this long the cached set is fetched again before it is used (one hour).
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// Fetches start at most this often (one second).
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How long one fetch (the discovery document, if not known yet, and the JWKS) may take
/// (10 seconds), unless [`crate::JwtAuth::with_fetch_timeout`] says otherwise.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the set is published.
pub(crate) enum Source {
    /// `jwks_url`.
    Jwks(String),
    /// `oidc_discovery_url`: the issuer, whose discovery document names the JWKS.
    Discovery(String),
}

pub(crate) struct RemoteKeys {
    source: Source,
    client: Client,
    pub timeout: Duration,
    pub max_age: Duration,
    state: RwLock<State>,
    /// Held while a fetch is under way; logins that need a new set queue here.
    refresh: tokio::sync::Mutex<Refresh>,
    /// Fetches started (of the whole set: discovery and JWKS), to tell whether one happened
    /// while a login waited for [`RemoteKeys::refresh`].
    attempts: AtomicU64,
    /// JWKS documents requested.
    jwks_fetches: AtomicU64,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<Fetched>>,
    /// Why the last fetch failed; `None` after a success.
    last_error: Option<String>,
}

struct Fetched {
    keys: Vec<PublicKey>,
    at: Instant,
}

#[derive(Default)]
struct Refresh {
    last_start: Option<Instant>,
    /// The discovery document's `jwks_uri`, once read.
    discovered: Option<String>,
}

impl RemoteKeys {
    pub fn new(source: Source, client: Client) -> RemoteKeys {
        RemoteKeys {
            source,
            client,
            timeout: FETCH_TIMEOUT,
            max_age: MAX_AGE,
            state: RwLock::default(),
            refresh: tokio::sync::Mutex::default(),
            attempts: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
        }
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The keys to check a token signed with `alg` and naming `kid` with; a 400 when the set
    /// has none for it (after fetching it again where the rules above allow), a 500 when the
    /// set could not be fetched and the cached one (if any) does not have the key.
    pub async fn choose(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<PublicKey>, LoginError> {
        let attempts = self.attempts.load(Ordering::SeqCst);
        let mut stale = None;
        if let Some(cached) = self.cached() {
            match keys::choose_jwks(&cached.keys, alg, kid) {
                Choice::Unknown => {}
                choice if cached.at.elapsed() < self.max_age => {
                    return self.answer(choice, alg, kid, None);
                }
                choice => stale = Some(choice),
            }
        }
        {
            // A set past its age that has the key is used while another login fetches
            // anew, rather than every login waiting on an issuer that may be down.
            let mut refresh = match (stale, self.refresh.try_lock()) {
                (_, Ok(refresh)) => refresh,
                (Some(choice), Err(_)) => return self.answer(choice, alg, kid, None),
                (None, Err(_)) => self.refresh.lock().await,
            };
            let fetched_meanwhile = self.attempts.load(Ordering::SeqCst) != attempts;
            let too_soon = refresh
                .last_start
                .is_some_and(|start| start.elapsed() < MIN_REFRESH_INTERVAL);
            if !fetched_meanwhile && !too_soon {
                self.fetch(&mut refresh).await;
            }
        }
        let (cached, last_error) = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            (state.keys.clone(), state.last_error.clone())
        };
        let Some(cached) = cached else {
            let why = last_error.unwrap_or_else(|| "no fetch has completed".into());
            return Err(self.unavailable(&why));
        };
        let choice = keys::choose_jwks(&cached.keys, alg, kid);
        self.answer(choice, alg, kid, last_error)
    }

    fn cached(&self) -> Option<Arc<Fetched>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.keys.clone()
    }

    fn answer(
        &self,
        choice: Choice,
        alg: Algorithm,
        kid: Option<&str>,
        last_error: Option<String>,
    ) -> Result<Vec<PublicKey>, LoginError> {
        match (choice, last_error) {
            (Choice::Keys(keys), _) => Ok(keys),
            (Choice::Refused(why), _) => Err(LoginError::bad(format!(
                "error validating token: error verifying token signature: {why}"
            ))),
            (Choice::Unknown, Some(why)) => Err(self.unavailable(&why)),
            (Choice::Unknown, None) => {
                let missing = match kid {
                    Some(kid) => format!("no key with kid {kid:?}"),
                    None => format!("no key for {alg:?}"),
                };
                Err(LoginError::bad(format!(
                    "error validating token: error verifying token signature: {missing} in \
                     {} (fetched again)",
                    self.describe()
                )))
            }
        }
    }

    fn unavailable(&self, why: &str) -> LoginError {
        LoginError::unavailable(format!(
            "error validating token: could not fetch {}: {why}",
            self.describe()
        ))
    }

    fn describe(&self) -> String {
        match &self.source {
            Source::Jwks(url) => format!("the JWKS at {url}"),
            Source::Discovery(issuer) => format!("the JWKS of {issuer}"),
        }
    }

    /// One fetch of the set, within the timeout; the cached set is replaced only by a set
    /// that has keys.
    async fn fetch(&self, refresh: &mut Refresh) {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        refresh.last_start = Some(Instant::now());
        // Stays if this login is dropped mid-fetch, for the logins queued behind it.
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .last_error = Some("the fetch was interrupted".into());
        let result = match tokio::time::timeout(self.timeout, self.fetch_keys(refresh)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(keys) => {
                state.keys = Some(Arc::new(Fetched {
                    keys,
                    at: Instant::now(),
                }));
                state.last_error = None;
            }
            Err(why) => {
                tracing::warn!(source = %self.describe(), error = %why, "fetching the JWKS failed; the cached keys stay");
                state.last_error = Some(why);
            }
        }
    }

    async fn fetch_keys(&self, refresh: &mut Refresh) -> Result<Vec<PublicKey>, String> {
        let url = match (&self.source, &refresh.discovered) {
            (Source::Jwks(url), _) => url.clone(),
            (Source::Discovery(_), Some(url)) => url.clone(),
            (Source::Discovery(issuer), None) => {
                let url = fetch::discover(&self.client, issuer).await?;
                refresh.discovered = Some(url.clone());
                url
            }
        };
        self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        let document = self.client.get_json(&url).await?;
        let (keys, skipped) = keys::from_jwks(&document).map_err(|e| format!("{url}: {e}"))?;
        if keys.is_empty() {
            return Err(format!(
                "{url} holds no signature key serve can use ({skipped} skipped)"
            ));
        }
        Ok(keys)
    }
}
