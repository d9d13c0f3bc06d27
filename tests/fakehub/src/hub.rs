//! The fake's state and the rules over it: accounts with their personal access tokens,
//! organizations with theirs (in `org_tokens`), login sessions (JWTs), pending 2FA logins, the
//! request log, queued faults and the rate limiter.
//! One mutex guards it all and is never held across an await, so the HTTP handlers and the
//! test-facing [`crate::FakeHub`] see one consistent hub.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use time::OffsetDateTime;

mod org_tokens;

pub(crate) use org_tokens::{
    NewOrgToken, OrgAccessError, OrgTokenRefusal, OrgTokenUpdate, OrgView,
};
pub use org_tokens::{OrgTokenInfo, OrgTokenResource};

use crate::{
    Account, Config, Fault, FaultKind, RateLimit, clock,
    fault::FaultQueue,
    jwt::{self, Claims},
    ratelimit::{Limiter, Quota},
    totp,
};

/// A personal access token as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub uuid: String,
    /// The account that owns the token.
    pub username: String,
    pub label: String,
    pub scopes: Vec<String>,
    /// RFC 3339, as the fake sends it in token objects.
    pub expires_at: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    /// The secret (`dckr_pat_...`), which the API shows only once; kept here so tests can log
    /// in with it.
    pub token: String,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    /// Path and query string.
    pub path: String,
    /// The status sent; 0 when the connection was dropped without a response (or, briefly,
    /// while the request is still being handled).
    pub status: u16,
    /// The request had an `Authorization` header.
    pub authorized: bool,
    /// When the rate limit counted the request or refused it; `None` when it did not see it
    /// (no limit set, a path outside `/v2/`, or a fault answered first). A refusal's answer
    /// leaves at once, so for a 429 this is also when its `Retry-After` starts to run.
    pub checked_at: Option<Instant>,
    /// The `Retry-After` answered, in seconds (the rate limit's or a fault's).
    pub retry_after: Option<u64>,
}

/// Which expiry the fake gives a new access token, personal or organization, created through
/// the API. Docker does not document the accepted range of `expires_at`, and its docs say to
/// trust the `expires_at` of the 201 answer rather than the one asked for; these let a test
/// play a Hub that sets another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiryGrant {
    /// The expiry asked for (none when none was asked for), as the Hub does today.
    #[default]
    AsAsked,
    /// At most this long from creation: an earlier expiry than asked, or one where none was
    /// asked for.
    AtMost(Duration),
    /// None at all, whatever was asked: the token never expires.
    Never,
}

impl ExpiryGrant {
    fn apply(self, asked: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            ExpiryGrant::AsAsked => asked,
            ExpiryGrant::AtMost(limit) => {
                let cap = now + limit;
                Some(asked.map_or(cap, |at| at.min(cap)))
            }
            ExpiryGrant::Never => None,
        }
    }
}

/// How long a `login_2fa_token` from `/v2/users/login` stays usable.
const SECOND_FACTOR_WINDOW: Duration = Duration::from_secs(300);

pub(crate) struct Hub {
    base_url: String,
    key: [u8; 32],
    state: Mutex<State>,
}

struct State {
    jwt_ttl: Duration,
    /// Keyed by lower-cased username: Hub usernames are case-insensitive.
    accounts: BTreeMap<String, AccountState>,
    /// Keyed by lower-cased name, like accounts, whose names they never share.
    orgs: BTreeMap<String, org_tokens::OrgState>,
    /// Live login sessions: JWT id → expiry. A JWT not in here is refused, which is how
    /// `expire_jwts` works.
    sessions: HashMap<String, Instant>,
    pending_logins: HashMap<String, PendingLogin>,
    calls: Vec<Call>,
    faults: FaultQueue,
    limiter: Option<Limiter>,
    expiry_grant: ExpiryGrant,
    logins: usize,
    /// Orders tokens (of both kinds) by creation; timestamps can tie.
    next_seq: u64,
}

struct AccountState {
    uuid: String,
    username: String,
    password: String,
    totp_secret: Option<String>,
    tokens: Vec<Pat>,
}

struct PendingLogin {
    account: String,
    expires: Instant,
}

struct Pat {
    seq: u64,
    info: TokenInfo,
    expires: Option<OffsetDateTime>,
    creator_ip: String,
    creator_ua: String,
    last_used: Option<String>,
}

impl Pat {
    /// Usable to log in: active and not past its expiry.
    fn is_live(&self, now: OffsetDateTime) -> bool {
        self.info.is_active && self.expires.is_none_or(|at| at > now)
    }

    /// The API's token object; the secret only in the response to its creation.
    fn to_json(&self, with_secret: bool) -> Value {
        json!({
            "uuid": self.info.uuid,
            "client_id": "HUB",
            "creator_ip": self.creator_ip,
            "creator_ua": self.creator_ua,
            "created_at": self.info.created_at,
            "last_used": self.last_used,
            "generated_by": "manual",
            "is_active": self.info.is_active,
            "token": if with_secret { self.info.token.as_str() } else { "" },
            "token_label": self.info.label,
            "scopes": self.info.scopes,
            "expires_at": self.info.expires_at,
        })
    }
}

/// What a login secret turned out to be for an account, or (`Oat`) for an organization.
pub(crate) enum Credential {
    Password { account: String, two_factor: bool },
    Pat { account: String, uuid: String },
    Oat { org: String, id: String },
    Invalid,
}

/// What a JWT's login was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    Password,
    Pat,
    Oat,
}

/// The caller behind a valid bearer JWT.
pub(crate) struct Session {
    /// Key of the account in the hub; of the organization after an OAT login.
    pub account: String,
    pub login: Login,
}

pub(crate) enum AuthError {
    Missing,
    Invalid,
    Expired,
}

pub(crate) enum SecondFactorError {
    UnknownLogin,
    WrongCode,
}

/// A validated request to create a personal access token.
pub(crate) struct NewToken {
    pub label: String,
    pub scopes: Vec<String>,
    pub expires: Option<OffsetDateTime>,
    pub creator_ip: String,
    pub creator_ua: String,
}

/// An account's tokens as the list endpoint reports them, newest first.
pub(crate) struct TokenList {
    pub active_count: usize,
    pub results: Vec<Value>,
}

impl Hub {
    pub fn new(config: Config, base_url: String) -> Hub {
        let mut key = [0; 32];
        getrandom::fill(&mut key).expect("system randomness");
        let hub = Hub {
            base_url,
            key,
            state: Mutex::new(State {
                jwt_ttl: config.jwt_ttl,
                accounts: BTreeMap::new(),
                orgs: BTreeMap::new(),
                sessions: HashMap::new(),
                pending_logins: HashMap::new(),
                calls: Vec::new(),
                faults: FaultQueue::default(),
                limiter: config.rate_limit.map(Limiter::new),
                expiry_grant: ExpiryGrant::default(),
                logins: 0,
                next_seq: 0,
            }),
        };
        for account in config.accounts {
            hub.add_account(account);
        }
        {
            let mut state = hub.lock();
            for org in config.organizations {
                let key = org.name.to_lowercase();
                state.orgs.insert(key, org_tokens::OrgState::new(org));
            }
        }
        hub
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the server for the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // --- test control ---

    /// Adds an account, or replaces the credentials of an existing one (keeping its tokens).
    /// Panics on an organization's name: the two share one namespace.
    pub fn add_account(&self, account: Account) {
        let mut state = self.lock();
        assert!(
            !state.orgs.contains_key(&account.username.to_lowercase()),
            "fakehub: {:?} is an organization's name",
            account.username
        );
        let entry = state
            .accounts
            .entry(account.username.to_lowercase())
            .or_insert_with(|| AccountState {
                uuid: uuid::Uuid::new_v4().to_string(),
                username: account.username.clone(),
                password: String::new(),
                totp_secret: None,
                tokens: Vec::new(),
            });
        entry.password = account.password;
        entry.totp_secret = account.totp_secret;
    }

    pub fn set_password(&self, username: &str, password: &str) {
        let mut state = self.lock();
        let account = state
            .accounts
            .get_mut(&username.to_lowercase())
            .unwrap_or_else(|| panic!("fakehub: no account named {username:?}"));
        account.password = password.to_owned();
    }

    pub fn tokens(&self, live_only: bool) -> Vec<TokenInfo> {
        let state = self.lock();
        let now = clock::now();
        let mut pats: Vec<&Pat> = state
            .accounts
            .values()
            .flat_map(|a| &a.tokens)
            .filter(|p| !live_only || p.is_live(now))
            .collect();
        pats.sort_by_key(|p| p.seq);
        pats.into_iter().map(|p| p.info.clone()).collect()
    }

    pub fn token(&self, uuid: &str) -> Option<TokenInfo> {
        let state = self.lock();
        state
            .accounts
            .values()
            .flat_map(|a| &a.tokens)
            .find(|p| p.info.uuid == uuid)
            .map(|p| p.info.clone())
    }

    pub fn login_count(&self) -> usize {
        self.lock().logins
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults = FaultQueue::default();
    }

    pub fn set_rate_limit(&self, rate: Option<RateLimit>) {
        self.lock().limiter = rate.map(Limiter::new);
    }

    pub fn expire_jwts(&self) {
        self.lock().sessions.clear();
    }

    /// Moves the `created_at` of every token, personal and organization, back by `by`.
    pub fn age_tokens(&self, by: std::time::Duration) {
        let mut state = self.lock();
        for account in state.accounts.values_mut() {
            for pat in &mut account.tokens {
                pat.info.created_at = aged(&pat.info.created_at, by);
            }
        }
        for org in state.orgs.values_mut() {
            org.age_tokens(by);
        }
    }

    pub fn grant_expiry(&self, grant: ExpiryGrant) {
        self.lock().expiry_grant = grant;
    }

    // --- request plumbing ---

    /// Logs a request as it arrives and returns its index for [`Hub::set_call_answer`].
    pub fn record_call(&self, method: &str, path: &str, authorized: bool) -> usize {
        let mut state = self.lock();
        state.calls.push(Call {
            method: method.to_owned(),
            path: path.to_owned(),
            status: 0,
            authorized,
            checked_at: None,
            retry_after: None,
        });
        state.calls.len() - 1
    }

    /// Logs the answer to call `index`: its status and `Retry-After`.
    pub fn set_call_answer(&self, index: usize, status: u16, retry_after: Option<u64>) {
        // `clear_calls` may have run while the request was in flight.
        if let Some(call) = self.lock().calls.get_mut(index) {
            call.status = status;
            call.retry_after = retry_after;
        }
    }

    pub fn take_fault(&self, method: &str, path: &str) -> Option<FaultKind> {
        self.lock().faults.take(method, path)
    }

    /// Counts call `index` against the rate limit, if there is one, and logs when.
    pub fn admit(&self, index: usize) -> Option<Quota> {
        let mut state = self.lock();
        let now = Instant::now();
        let quota = state.limiter.as_mut()?.admit(now);
        if let Some(call) = state.calls.get_mut(index) {
            call.checked_at = Some(now);
        }
        Some(quota)
    }

    // --- login ---

    pub fn check_secret(&self, identifier: &str, secret: &str) -> Credential {
        let key = identifier.to_lowercase();
        let state = self.lock();
        // An organization has no password: only its tokens log in, with its name.
        if let Some(org) = state.orgs.get(&key) {
            return match org.live_token(secret) {
                Some(id) => Credential::Oat {
                    id: id.to_owned(),
                    org: key,
                },
                None => Credential::Invalid,
            };
        }
        let Some(account) = state.accounts.get(&key) else {
            return Credential::Invalid;
        };
        if secret == account.password {
            return Credential::Password {
                account: key,
                two_factor: account.totp_secret.is_some(),
            };
        }
        let now = clock::now();
        match account
            .tokens
            .iter()
            .find(|p| p.info.token == secret && p.is_live(now))
        {
            Some(pat) => Credential::Pat {
                uuid: pat.info.uuid.clone(),
                account: key,
            },
            None => Credential::Invalid,
        }
    }

    /// Issues a JWT for the account, counting a successful login. `pat` is the uuid of the
    /// token used to log in, if one was.
    pub fn issue_jwt(&self, account: &str, pat: Option<&str>) -> String {
        let mut state = self.lock();
        let account_state = state
            .accounts
            .get_mut(account)
            .expect("login of a known account");
        if let Some(uuid) = pat
            && let Some(token) = account_state
                .tokens
                .iter_mut()
                .find(|p| p.info.uuid == uuid)
        {
            token.last_used = Some(clock::format(clock::now()));
        }
        let (sub, username) = (account_state.uuid.clone(), account_state.username.clone());
        let login = if pat.is_some() {
            Login::Pat
        } else {
            Login::Password
        };
        self.open_session(&mut state, sub, username, login)
    }

    /// Signs a JWT for `sub`/`username` and opens its session, counting a successful login.
    fn open_session(
        &self,
        state: &mut State,
        sub: String,
        username: String,
        login: Login,
    ) -> String {
        let ttl = state.jwt_ttl;
        let iat = clock::unix_now();
        let claims = Claims {
            sub,
            username,
            iat,
            // Whole seconds; the session table below holds the precise expiry.
            exp: iat + ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0),
            jti: uuid::Uuid::new_v4().to_string(),
            iss: "fakehub".to_owned(),
            from_pat: login == Login::Pat,
            from_oat: login == Login::Oat,
        };
        state
            .sessions
            .insert(claims.jti.clone(), Instant::now() + ttl);
        state.logins += 1;
        jwt::sign(&self.key, &claims)
    }

    /// Starts the second step of a 2FA login and returns its `login_2fa_token`.
    pub fn start_second_factor(&self, account: &str) -> String {
        let login_token = random_string(32);
        let mut state = self.lock();
        let now = Instant::now();
        state.pending_logins.retain(|_, p| p.expires > now);
        state.pending_logins.insert(
            login_token.clone(),
            PendingLogin {
                account: account.to_owned(),
                expires: now + SECOND_FACTOR_WINDOW,
            },
        );
        login_token
    }

    /// Completes a 2FA login. The `login_2fa_token` is used up only by a correct code, so a
    /// mistyped code can be retried.
    pub fn finish_second_factor(
        &self,
        login_token: &str,
        code: &str,
    ) -> Result<String, SecondFactorError> {
        let account = {
            let mut state = self.lock();
            let pending = state
                .pending_logins
                .get(login_token)
                .filter(|p| p.expires > Instant::now())
                .ok_or(SecondFactorError::UnknownLogin)?;
            let account = pending.account.clone();
            let secret = state
                .accounts
                .get(&account)
                .and_then(|a| a.totp_secret.clone())
                .ok_or(SecondFactorError::UnknownLogin)?;
            if !totp::verify(&secret, code, clock::unix_now()) {
                return Err(SecondFactorError::WrongCode);
            }
            state.pending_logins.remove(login_token);
            account
        };
        Ok(self.issue_jwt(&account, None))
    }

    /// The session behind an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Session, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Invalid)?;
        // `JWT <token>` is what older Hub clients send; the Hub still takes it.
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("jwt") {
            return Err(AuthError::Invalid);
        }
        let claims = jwt::verify(&self.key, token.trim()).ok_or(AuthError::Invalid)?;
        let state = self.lock();
        match state.sessions.get(&claims.jti) {
            Some(expires) if *expires > Instant::now() => {}
            _ => return Err(AuthError::Expired),
        }
        let login = match (claims.from_pat, claims.from_oat) {
            (_, true) => Login::Oat,
            (true, _) => Login::Pat,
            _ => Login::Password,
        };
        let account = claims.username.to_lowercase();
        let known = match login {
            Login::Oat => state.orgs.contains_key(&account),
            _ => state.accounts.contains_key(&account),
        };
        if !known {
            return Err(AuthError::Invalid);
        }
        Ok(Session { account, login })
    }

    // --- personal access tokens ---

    pub fn create_token(&self, account: &str, new: NewToken) -> Value {
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        let expires = state.expiry_grant.apply(new.expires, clock::now());
        let account_state = state
            .accounts
            .get_mut(account)
            .expect("authenticated account");
        let pat = Pat {
            seq,
            info: TokenInfo {
                uuid: uuid::Uuid::new_v4().to_string(),
                username: account_state.username.clone(),
                label: new.label,
                scopes: new.scopes,
                expires_at: expires.map(clock::format),
                is_active: true,
                created_at: clock::format(clock::now()),
                token: format!("dckr_pat_{}", random_string(27)),
            },
            expires,
            creator_ip: new.creator_ip,
            creator_ua: new.creator_ua,
            last_used: None,
        };
        let body = pat.to_json(true);
        account_state.tokens.push(pat);
        body
    }

    pub fn list_tokens(&self, account: &str) -> TokenList {
        let state = self.lock();
        let mut pats: Vec<&Pat> = state.accounts[account].tokens.iter().collect();
        pats.sort_by_key(|p| std::cmp::Reverse(p.seq));
        TokenList {
            active_count: pats.iter().filter(|p| p.info.is_active).count(),
            results: pats.into_iter().map(|p| p.to_json(false)).collect(),
        }
    }

    pub fn get_token(&self, account: &str, uuid: &str) -> Option<Value> {
        let state = self.lock();
        state.accounts[account]
            .tokens
            .iter()
            .find(|p| p.info.uuid == uuid)
            .map(|p| p.to_json(false))
    }

    pub fn has_token(&self, account: &str, uuid: &str) -> bool {
        self.get_token(account, uuid).is_some()
    }

    pub fn update_token(
        &self,
        account: &str,
        uuid: &str,
        label: Option<String>,
        is_active: Option<bool>,
    ) -> Option<Value> {
        let mut state = self.lock();
        let account_state = state.accounts.get_mut(account)?;
        let pat = account_state
            .tokens
            .iter_mut()
            .find(|p| p.info.uuid == uuid)?;
        if let Some(label) = label {
            pat.info.label = label;
        }
        if let Some(is_active) = is_active {
            pat.info.is_active = is_active;
        }
        Some(pat.to_json(false))
    }

    /// Another client at work on `account`: deletes its `delete_newest` newest tokens, then
    /// creates `create` tokens labelled `other-client-<n>`.
    pub fn churn(&self, account: &str, delete_newest: usize, create: usize) {
        let account = account.to_lowercase();
        let account = account.as_str();
        {
            let mut state = self.lock();
            let Some(account_state) = state.accounts.get_mut(account) else {
                return;
            };
            account_state.tokens.sort_by_key(|p| p.seq);
            let keep = account_state.tokens.len().saturating_sub(delete_newest);
            account_state.tokens.truncate(keep);
        }
        for n in 0..create {
            self.create_token(
                account,
                NewToken {
                    label: format!("other-client-{n}"),
                    scopes: vec!["repo:read".into()],
                    expires: None,
                    creator_ip: "127.0.0.1".into(),
                    creator_ua: "another client".into(),
                },
            );
        }
    }

    pub fn delete_token(&self, account: &str, uuid: &str) -> bool {
        let mut state = self.lock();
        let Some(account_state) = state.accounts.get_mut(account) else {
            return false;
        };
        let before = account_state.tokens.len();
        account_state.tokens.retain(|p| p.info.uuid != uuid);
        account_state.tokens.len() < before
    }
}

/// `len` random characters of `[A-Za-z0-9_-]`, the alphabet of Hub token secrets.
fn random_string(len: usize) -> String {
    let mut bytes = vec![0; len];
    getrandom::fill(&mut bytes).expect("system randomness");
    let mut text = URL_SAFE_NO_PAD.encode(&bytes);
    text.truncate(len);
    text
}

/// An RFC 3339 time as the fake writes it, `by` earlier.
fn aged(at: &str, by: std::time::Duration) -> String {
    clock::parse(at).map_or_else(|| at.to_string(), |at| clock::format(at - by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_grants() {
        let now = clock::now();
        let asked = Some(now + Duration::from_secs(3600));
        assert_eq!(ExpiryGrant::AsAsked.apply(asked, now), asked);
        assert_eq!(ExpiryGrant::AsAsked.apply(None, now), None);
        let ten = now + Duration::from_secs(600);
        let at_most = ExpiryGrant::AtMost(Duration::from_secs(600));
        assert_eq!(at_most.apply(asked, now), Some(ten));
        assert_eq!(at_most.apply(None, now), Some(ten));
        let soon = Some(now + Duration::from_secs(60));
        assert_eq!(at_most.apply(soon, now), soon);
        assert_eq!(ExpiryGrant::Never.apply(asked, now), None);
    }

    #[test]
    fn random_strings_have_the_secret_alphabet() {
        let text = random_string(27);
        assert_eq!(text.len(), 27);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }
}
