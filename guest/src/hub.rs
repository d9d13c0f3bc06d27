//! The Docker Hub client: the one place that speaks the Hub's API.
//!
//! Logging in too often locks a Hub account, so the session JWT is cached in storage until
//! shortly before its `exp` and shared by every issue and revoke of the account. A 401 on a
//! token call means the session died early: one fresh login, one retry. A 429 is waited
//! out as long as the Hub's `Retry-After` fits the time budget of one request; otherwise
//! (and always for revocations, see [`Hub::without_waiting`]) the error carries
//! `retry_after` so that the host retries later.
//!
//! A request that may safely be repeated (logging in with the password, listing, deleting)
//! and fails with a 5xx or no answer at all is sent again inside the call, within
//! [`RETRY_BACKOFF`] and [`RETRY_WINDOW`]. Creating a token is never repeated: a second POST
//! would create a second token; [`Hub::create_token`] says instead whether the Hub may have
//! created one.
//!
//! A client manages one family of tokens ([`Tokens`]): the account's personal access tokens,
//! or, with [`Hub::for_organization`], the organization access tokens of an organization the
//! account owns. Both live under the same session and obey the same rules; only their paths
//! and field names differ (`uuid`/`token_label`/`count` for personal tokens,
//! `id`/`label`/`total` for organization tokens).
//!
//! Errors say what was attempted and quote the Hub's message; no request body (which holds
//! the password) and no success body (which holds a token) ever reaches an error or a log.

use crate::api::{EngineError, UpstreamError};
use crate::capabilities::{Bucket, Host, HttpRequest, HttpResponse, Level, TransportError};
use crate::{storage, totp};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Renew the cached session when it has less than this many seconds left.
const SESSION_REFRESH_MARGIN: u64 = 60;
/// How long a session is trusted when its JWT carries no readable `exp`.
const SESSION_FALLBACK_LIFETIME: u64 = 300;
/// The most one request may spend waiting out rate limits before giving up.
const MAX_RATE_LIMIT_WAIT: u64 = 15;
/// The Hub's largest page size for listing tokens, and how many pages rollback searches.
const PAGE_SIZE: usize = 100;
const MAX_PAGES: usize = 100;
/// Reads of the token list before a list that keeps changing is an error.
const LISTING_ATTEMPTS: usize = 3;
/// The waits before the 2nd, 3rd and 4th attempt of a repeatable request that failed with a
/// 5xx or no answer: at most 4 attempts and 1.75 s of waiting. Short, because the whole call
/// runs under the host's time limit (60 s by default) and a revocation that still fails is
/// retried by its host anyway.
pub const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];
/// No new attempt starts once this many seconds (of the engine's whole-second clock) have
/// passed since the first: an attempt that hung until its own timeout (30 s) is not repeated,
/// so that retries never push a call past the host's time limit.
pub const RETRY_WINDOW: u64 = 5;

/// What a wait inside a call must leave of the call's time (as the host tells it, see
/// [`Host::time_left`]): a host ends the requests of a call up to 1 s before the call's end
/// (the engine's time to answer), and the attempt after the wait gets at least the other
/// half second. A wait that would leave less is not made: the call answers with the failure
/// it has, rather than being stopped by its host with no answer at all.
pub const WAIT_RESERVE: Duration = Duration::from_millis(1500);

/// The statuses with which Docker Hub refuses a token creation before doing any work: the
/// contract of `POST /v2/access-tokens` (docs.docker.com, "Create a personal access token")
/// names 400 (invalid fields), 401 (not authenticated) and 429 (rate limited); 403 is its
/// general refusal. The request answers these at once; should a proxy in front of the Hub
/// have let it make the token first, rollback's one look by label finds it
/// ([`CreateFailure::Refused`]). Any other answer (a gateway's 408, 409, 499, a 5xx) may come
/// after the Hub made the token, so the request itself looks it up before answering.
const REFUSED_BEFORE_CREATION: [u16; 4] = [400, 401, 403, 429];
/// The same for `POST /v2/orgs/{org}/access-tokens`, whose contract also names 404 (no such
/// organization) among its refusals.
const ORG_REFUSED_BEFORE_CREATION: [u16; 5] = [400, 401, 403, 404, 429];

/// Which of the Hub's token families a client manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens<'a> {
    /// The logged-in account's personal access tokens, `/v2/access-tokens`.
    Personal,
    /// The organization access tokens of this organization,
    /// `/v2/orgs/{org}/access-tokens` (Docker Hub API, "org-access-tokens").
    Organization(&'a str),
}

impl Tokens<'_> {
    /// The collection's path, without a query.
    fn collection(self) -> String {
        match self {
            Tokens::Personal => "/v2/access-tokens".to_string(),
            Tokens::Organization(org) => format!("/v2/orgs/{org}/access-tokens"),
        }
    }

    /// What one token is called in errors: "access token", "organization access token".
    fn noun(self) -> &'static str {
        match self {
            Tokens::Personal => "access token",
            Tokens::Organization(_) => "organization access token",
        }
    }
}

/// What an issued token may do. An organization token's grant is its resources, as the
/// Hub's `orgAccessTokenResource`: `{"type": "TYPE_REPO", "path": "org/repo" | "org/*",
/// "scopes": ["scope-image-pull", "scope-image-push"]}`.
pub enum Grant<'g> {
    /// A personal token's one scope (`repo:read`, ...).
    Scope(&'g str),
    /// An organization token's description and resources (a JSON array).
    Resources {
        description: &'g str,
        resources: &'g Value,
    },
}

/// A cached Hub session. It is a credential: never logged, never returned.
#[derive(Serialize, Deserialize)]
struct Session {
    jwt: String,
    /// Unix seconds.
    expires: u64,
}

/// A freshly created personal access token.
pub struct CreatedToken {
    pub uuid: String,
    /// The secret; only the response to the caller may contain it.
    pub token: String,
    /// When the Hub expires the token by itself, as its answer says (Unix seconds, rounded
    /// down); `None` when the answer carries no expiry (or one we cannot read): the token
    /// lives until it is deleted.
    pub expires_at: Option<u64>,
    /// The creation was sent more than once with the same label (again after a 401, or
    /// after a 429 was waited out): a refused attempt may have made a token too.
    pub resent: bool,
}

/// Why a token creation failed, and whether the Hub may have created the token anyway.
#[derive(Debug)]
pub enum CreateFailure {
    /// The Hub was never asked (the request was not sent, or a login before it failed): no
    /// token exists.
    NotCreated(EngineError),
    /// The Hub answered with one of its refusals ([`REFUSED_BEFORE_CREATION`]). By its
    /// contract no token exists, but a Hub (or a proxy before it) that did the work first
    /// would have made one: worth one look by label, not a wait.
    Refused(EngineError),
    /// The Hub's answer was lost or unusable (no answer, a 5xx, another 4xx, a 2xx without a
    /// token): the token may exist, and only a lookup by its label can tell.
    Unknown(EngineError),
}

/// A request that got no usable answer.
struct Failed {
    error: UpstreamError,
    /// The request never reached the Hub (see [`TransportError::unsent`]).
    unsent: bool,
}

/// One token in the Hub's listing (for an organization token, `uuid` is its `id` and
/// `token_label` its `label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedToken {
    pub uuid: String,
    pub token_label: String,
    /// When the Hub says it was created (Unix seconds); `None` when the listing does not
    /// say, or not readably.
    pub created_at: Option<u64>,
}

/// A token list that could not be read as one list: why, and the tokens seen on the pages
/// that were read.
#[derive(Debug)]
pub struct ListingFailed {
    pub error: EngineError,
    pub seen: Vec<ListedToken>,
}

/// Each token once, in the order first seen.
fn once_each(tokens: Vec<ListedToken>) -> Vec<ListedToken> {
    let mut uuids = std::collections::HashSet::new();
    tokens
        .into_iter()
        .filter(|t| uuids.insert(t.uuid.clone()))
        .collect()
}

/// Whether a request may be sent again after a 5xx or no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Repeating it does no harm: a listing, a delete, a password login.
    Safe,
    /// A creation, or a login step whose proof is used up by the first attempt.
    Never,
}

/// What the engine logs in with. `Debug` is not derived: it would print the password.
pub struct Credentials<'a> {
    pub password: &'a str,
    pub totp_secret: Option<&'a str>,
}

/// A client for one account.
pub struct Hub<'a> {
    host: &'a dyn Host,
    account: &'a str,
    credentials: Credentials<'a>,
    tokens: Tokens<'a>,
    /// Seconds one request may spend waiting out 429s.
    rate_limit_patience: u64,
    /// How many requests reached the Hub (or may have), for [`Hub::create_token`] to tell
    /// whether its POST went out more than once.
    sent: std::cell::Cell<u32>,
}

impl<'a> Hub<'a> {
    pub fn new(host: &'a dyn Host, account: &'a str, credentials: Credentials<'a>) -> Hub<'a> {
        Hub {
            host,
            account,
            credentials,
            tokens: Tokens::Personal,
            rate_limit_patience: MAX_RATE_LIMIT_WAIT,
            sent: std::cell::Cell::new(0),
        }
    }

    /// Manage the organization access tokens of `organization` (which the account must own)
    /// instead of the account's personal ones; same session.
    pub fn for_organization(mut self, organization: &'a str) -> Hub<'a> {
        self.tokens = Tokens::Organization(organization);
        self
    }

    /// Report a 429 at once instead of waiting it out. For revocations: their host retries
    /// them and can pace all of them together against the Hub's window, whereas each
    /// instance sleeping from its own 429 leaves the Hub idle after every window.
    pub fn without_waiting(mut self) -> Hub<'a> {
        self.rate_limit_patience = 0;
        self
    }

    /// Log in now, ignoring the cache, and cache the new session. Proves the credentials.
    pub fn login(&self) -> Result<String, EngineError> {
        let jwt = match self.credentials.totp_secret {
            None => self.login_with_password()?,
            Some(seed) => self.login_with_second_factor(seed)?,
        };
        let expires = jwt_expiry(&jwt).unwrap_or(self.host.now() + SESSION_FALLBACK_LIFETIME);
        let session = Session {
            jwt: jwt.clone(),
            expires,
        };
        storage::save(self.host, Bucket::Session, self.account, &session)?;
        self.host.log(
            Level::Info,
            "hub",
            &format!("logged in to Docker Hub as {}", self.account),
        );
        Ok(jwt)
    }

    fn login_with_password(&self) -> Result<String, EngineError> {
        let body = json!({"identifier": self.account, "secret": self.credentials.password});
        let response = self.send(
            "POST",
            "/v2/auth/token",
            Some(&body),
            None,
            "log in",
            Repeat::Safe,
        )?;
        if response.status != 200 {
            return Err(self.login_failed(&response));
        }
        string_field(&response, "access_token")
            .ok_or_else(|| malformed("log in", "no access_token in the answer"))
    }

    /// Docker's older login flow, the one that supports a TOTP second factor.
    fn login_with_second_factor(&self, seed: &str) -> Result<String, EngineError> {
        let body = json!({"username": self.account, "password": self.credentials.password});
        let response = self.send(
            "POST",
            "/v2/users/login",
            Some(&body),
            None,
            "log in",
            Repeat::Safe,
        )?;
        if response.status == 200 {
            return string_field(&response, "token")
                .ok_or_else(|| malformed("log in", "no token in the answer"));
        }
        let Some(login_2fa_token) = string_field(&response, "login_2fa_token") else {
            return Err(self.login_failed(&response));
        };
        let code = totp::code(seed, self.host.now())
            .ok_or_else(|| EngineError::Internal("the stored TOTP seed is not base32".into()))?;
        let body = json!({"login_2fa_token": login_2fa_token, "code": code});
        // The one-time code may be used up by an attempt whose answer was lost: not repeated.
        let response = self.send(
            "POST",
            "/v2/users/2fa-login",
            Some(&body),
            None,
            "log in",
            Repeat::Never,
        )?;
        if response.status != 200 {
            return Err(self.login_failed(&response));
        }
        string_field(&response, "token")
            .ok_or_else(|| malformed("log in", "no token in the answer"))
    }

    fn login_failed(&self, response: &HttpResponse) -> EngineError {
        let account = self.account;
        let message = match response.status {
            401 => format!(
                "Docker Hub rejected the credentials for account {account}: {}{}",
                hub_message(response),
                self.second_factor_hint(response)
            ),
            status => format!(
                "logging in to Docker Hub as {account} failed: HTTP {status}: {}",
                hub_message(response)
            ),
        };
        upstream(response, message)
    }

    /// When the Hub refused a password login for want of a second factor and the config has
    /// no TOTP seed: where the seed goes.
    fn second_factor_hint(&self, response: &HttpResponse) -> String {
        let said = hub_message(response).to_lowercase();
        let second_factor = ["two-factor", "2fa", "mfa", "secondary authentication"]
            .iter()
            .any(|word| said.contains(word));
        match second_factor && self.credentials.totp_secret.is_none() {
            true => format!(
                " (the account has two-factor authentication on: write the TOTP seed of its \
                 authenticator app as totp_secret in config/{}, with the password)",
                self.account
            ),
            false => String::new(),
        }
    }

    /// The cached session's JWT, logging in when there is none or it is about to expire.
    fn session(&self) -> Result<String, EngineError> {
        let cached: Option<Session> = storage::load(self.host, Bucket::Session, self.account)?;
        match cached {
            Some(s) if s.expires > self.host.now() + SESSION_REFRESH_MARGIN => Ok(s.jwt),
            _ => self.login(),
        }
    }

    /// Create a token of the client's family, asking the Hub to expire it at `expires_at`
    /// (Unix seconds); the Hub's answer says which expiry it really set. Sent once: a
    /// repeated POST would make a second token. `grant` must fit the family (a scope for a
    /// personal token, resources for an organization token).
    pub fn create_token(
        &self,
        token_label: &str,
        grant: &Grant,
        expires_at: u64,
    ) -> Result<CreatedToken, CreateFailure> {
        let body = match (self.tokens, grant) {
            (Tokens::Personal, Grant::Scope(scope)) => json!({
                "token_label": token_label,
                "scopes": [scope],
                "expires_at": rfc3339(expires_at),
            }),
            (
                Tokens::Organization(_),
                Grant::Resources {
                    description,
                    resources,
                },
            ) => json!({
                "label": token_label,
                "description": description,
                "resources": resources,
                "expires_at": rfc3339(expires_at),
            }),
            _ => {
                return Err(CreateFailure::NotCreated(EngineError::Internal(format!(
                    "a {} cannot be created with that grant",
                    self.tokens.noun()
                ))));
            }
        };
        let what = format!("create an {}", self.tokens.noun());
        let what = what.as_str();
        let path = self.tokens.collection();
        let post = |jwt: &str| {
            self.exchange("POST", &path, Some(&body), Some(jwt), what, Repeat::Never)
                .map_err(|failed| {
                    // A request that never left created nothing; a 429 is the Hub's refusal; any
                    // other failure is an answer that was lost.
                    let status = failed.error.status;
                    let error = EngineError::Upstream(failed.error);
                    if failed.unsent {
                        CreateFailure::NotCreated(error)
                    } else if status == 429 {
                        CreateFailure::Refused(error)
                    } else {
                        CreateFailure::Unknown(error)
                    }
                })
        };
        // How many times the POST reached the Hub (or may have): `exchange` sends it again
        // after a 429 it waits out, and here it goes again after a 401.
        let mut posts = 0;
        let mut counted = |jwt: &str| {
            let before = self.sent.get();
            let outcome = post(jwt);
            posts += self.sent.get() - before;
            outcome
        };
        let mut response = counted(&self.session().map_err(CreateFailure::NotCreated)?);
        if matches!(&response, Ok(r) if r.status == 401) {
            self.log_stale_session();
            // The first POST was refused as unauthenticated: a login that fails now leaves
            // that refusal as the outcome.
            let jwt = self.login().map_err(CreateFailure::Refused)?;
            response = counted(&jwt);
        }
        let resent = posts > 1;
        let response = response.map_err(|failure| match failure {
            // A later attempt failed without reaching the Hub, but an earlier one did.
            CreateFailure::NotCreated(e) if resent => CreateFailure::Refused(e),
            other => other,
        })?;
        match response.status {
            200..=299 => {}
            status
                if match self.tokens {
                    Tokens::Personal => REFUSED_BEFORE_CREATION.contains(&status),
                    Tokens::Organization(_) => ORG_REFUSED_BEFORE_CREATION.contains(&status),
                } =>
            {
                return Err(CreateFailure::Refused(refused(&response, what)));
            }
            _ => return Err(CreateFailure::Unknown(refused(&response, what))),
        }
        // A personal token's object has `uuid` and `token_label`, an organization token's
        // `id` and `label`.
        #[derive(Deserialize)]
        struct Created {
            #[serde(alias = "id")]
            uuid: String,
            token: String,
            #[serde(alias = "label")]
            token_label: String,
            #[serde(default)]
            expires_at: Option<String>,
        }
        // The token object names the label it was made with: an answer about another token
        // (a replaying or caching proxy) is no answer, and the token is looked up by label.
        serde_json::from_slice::<Created>(&response.body)
            .ok()
            .filter(|t| !t.uuid.is_empty() && !t.token.is_empty())
            .filter(|t| t.token_label == token_label)
            .map(|t| CreatedToken {
                expires_at: t.expires_at.as_deref().and_then(parse_rfc3339),
                uuid: t.uuid,
                token: t.token,
                resent,
            })
            .ok_or_else(|| {
                CreateFailure::Unknown(malformed(
                    what,
                    "the answer has no id or token, or names another token label",
                ))
            })
    }

    /// Delete a token. Docker's contract for `DELETE /v2/access-tokens/{uuid}` answers 204
    /// (202 on the legacy alias): done. A 404 means it is gone already, and any other 2xx is
    /// not the Hub's answer but may be a success: both count once the account's token listing
    /// agrees that the token is gone, since a proxy or gateway at the Hub URL that answers
    /// without passing the request on would otherwise leave the token live until its Hub
    /// expiry. A token still listed then is an error with that status, so that the host tries
    /// the revocation again.
    /// The same holds for `DELETE /v2/orgs/{org}/access-tokens/{id}`, which answers 204.
    pub fn delete_token(&self, uuid: &str) -> Result<(), EngineError> {
        let path = format!("{}/{uuid}", self.tokens.collection());
        let what = format!("delete an {}", self.tokens.noun());
        let what = what.as_str();
        let response = self.authorized("DELETE", &path, None, what, Repeat::Safe)?;
        match response.status {
            202 | 204 => Ok(()),
            status @ (200..=299 | 404) if self.list_tokens()?.iter().any(|t| t.uuid == uuid) => {
                Err(EngineError::Upstream(UpstreamError {
                    status,
                    message: format!(
                        "Docker Hub answered {status} to the request to {what} {uuid}, but \
                         still lists that token: is something other than Docker Hub \
                         answering at its URL?"
                    ),
                    retry_after: None,
                }))
            }
            200..=299 | 404 => Ok(()),
            _ => Err(refused(&response, what)),
        }
    }

    /// How many tokens of the family exist, as the first page of the listing counts them
    /// (`count`, or `total` for an organization, whose limit counts expired and deactivated
    /// tokens until they are deleted). One request.
    pub fn token_total(&self) -> Result<u64, EngineError> {
        #[derive(Deserialize)]
        struct Counted {
            #[serde(alias = "total")]
            count: u64,
        }
        let what = format!("count {}s", self.tokens.noun());
        let path = format!("{}?page=1&page_size=1", self.tokens.collection());
        let response = self.authorized("GET", &path, None, &what, Repeat::Safe)?;
        if response.status != 200 {
            return Err(refused(&response, &what));
        }
        serde_json::from_slice::<Counted>(&response.body)
            .map(|c| c.count)
            .map_err(|_| malformed(&what, "the answer is not a token list"))
    }

    /// The description of an organization access token (`GET
    /// /v2/orgs/{org}/access-tokens/{id}`): `Ok(None)` when the token is gone (404) or has no
    /// description. A personal token has none: `Ok(None)` without a request.
    pub fn token_description(&self, id: &str) -> Result<Option<String>, EngineError> {
        if self.tokens == Tokens::Personal {
            return Ok(None);
        }
        let what = format!("read an {}", self.tokens.noun());
        let path = format!("{}/{id}", self.tokens.collection());
        let response = self.authorized("GET", &path, None, &what, Repeat::Safe)?;
        match response.status {
            200 => Ok(string_field(&response, "description")),
            404 => Ok(None),
            _ => Err(refused(&response, &what)),
        }
    }

    /// Every token of the account, all pages, read as one list.
    ///
    /// The pages are read one request at a time, and a token made or deleted by another
    /// client between two reads shifts them: a token at a page's edge can slip past unseen,
    /// and a lookup would call a live token gone. Docker does not promise an order, so a
    /// read counts only when its pages add up (every page gives the same `count`, no token
    /// appears twice, the tokens read are `count` in all) and a second read right after it
    /// gives the very same tokens in the same order: a token that slipped past an edge in
    /// the first read would have to slip past again, the same way, in the second. Otherwise
    /// the list is read again, up to [`LISTING_ATTEMPTS`] times; then it is an error, so
    /// that nothing is concluded from it.
    pub fn list_tokens(&self) -> Result<Vec<ListedToken>, EngineError> {
        self.list_tokens_or_seen().map_err(|failed| failed.error)
    }

    /// [`Hub::list_tokens`], and when it fails, every token seen on any page it read: a
    /// token seen exists (or did a moment ago) even when the list as a whole proves nothing
    /// about the tokens not seen.
    pub fn list_tokens_or_seen(&self) -> Result<Vec<ListedToken>, ListingFailed> {
        let mut seen = Vec::new();
        let mut shifted = String::new();
        for attempt in 1..=LISTING_ATTEMPTS {
            let why = match self.read_twice(&mut seen) {
                Ok(Ok(tokens)) => return Ok(tokens),
                Ok(Err(why)) => why,
                Err(error) => {
                    return Err(ListingFailed {
                        error,
                        seen: once_each(seen),
                    });
                }
            };
            self.host.log(
                Level::Info,
                "hub",
                &format!(
                    "Docker Hub's token list changed while it was read ({why}); \
                     attempt {attempt} of {LISTING_ATTEMPTS}"
                ),
            );
            shifted = why;
        }
        let error = EngineError::Upstream(UpstreamError {
            status: 200,
            message: format!(
                "Docker Hub's token list kept changing while it was read page by page \
                 ({LISTING_ATTEMPTS} attempts; last: {shifted}), so it cannot tell which \
                 tokens exist; try again"
            ),
            retry_after: None,
        });
        Err(ListingFailed {
            error,
            seen: once_each(seen),
        })
    }

    /// Two passes over the pages that must agree: the tokens, or why they do not.
    fn read_twice(
        &self,
        seen: &mut Vec<ListedToken>,
    ) -> Result<Result<Vec<ListedToken>, String>, EngineError> {
        let first = match self.read_token_list(seen)? {
            Ok(first) => first,
            Err(why) => return Ok(Err(why)),
        };
        Ok(match self.read_token_list(seen)? {
            Ok(second) if second == first => Ok(first),
            Ok(_) => Err("a second read gave other tokens".to_string()),
            Err(why) => Err(why),
        })
    }

    /// One pass over the pages: the tokens, or why the pages do not add up to one list.
    /// Every token on a page read is added to `seen`.
    fn read_token_list(
        &self,
        seen: &mut Vec<ListedToken>,
    ) -> Result<Result<Vec<ListedToken>, String>, EngineError> {
        // `count` and `results` are required: an answer without them (`{}`, a proxy's own
        // JSON) is not a listing, and reading it as an empty one would call live tokens gone.
        // A personal token list counts in `count`, an organization token list in `total`.
        #[derive(Deserialize)]
        struct Page {
            #[serde(alias = "total")]
            count: u64,
            #[serde(default)]
            next: Option<String>,
            results: Vec<Listed>,
        }
        #[derive(Deserialize)]
        struct Listed {
            #[serde(alias = "id")]
            uuid: String,
            #[serde(default, alias = "label")]
            token_label: String,
            #[serde(default)]
            created_at: Option<String>,
        }
        let what = format!("list {}s", self.tokens.noun());
        let what = what.as_str();
        let mut found: Vec<ListedToken> = Vec::new();
        let mut uuids = std::collections::HashSet::new();
        let mut count = None;
        for page in 1..=MAX_PAGES {
            let path = format!(
                "{}?page={page}&page_size={PAGE_SIZE}",
                self.tokens.collection()
            );
            let response = self.authorized("GET", &path, None, what, Repeat::Safe)?;
            if response.status != 200 {
                return Err(refused(&response, what));
            }
            let page: Page = serde_json::from_slice(&response.body)
                .map_err(|_| malformed(what, "the answer is not a token list"))?;
            seen.extend(page.results.iter().map(|t| ListedToken {
                uuid: t.uuid.clone(),
                token_label: t.token_label.clone(),
                created_at: t.created_at.as_deref().and_then(parse_rfc3339),
            }));
            if let Some(before) = count.replace(page.count)
                && before != page.count
            {
                return Ok(Err(format!(
                    "its count went from {before} to {}",
                    page.count
                )));
            }
            let last = page.next.is_none() || page.results.len() < PAGE_SIZE;
            for token in page.results {
                if !uuids.insert(token.uuid.clone()) {
                    return Ok(Err(format!("token {} is on two pages", token.uuid)));
                }
                found.push(ListedToken {
                    created_at: token.created_at.as_deref().and_then(parse_rfc3339),
                    uuid: token.uuid,
                    token_label: token.token_label,
                });
            }
            if last {
                if found.len() as u64 != page.count {
                    return Ok(Err(format!(
                        "{} tokens on its pages, {} by its count",
                        found.len(),
                        page.count
                    )));
                }
                return Ok(Ok(found));
            }
        }
        Err(malformed(
            what,
            &format!("it has more than {MAX_PAGES} pages of {PAGE_SIZE} tokens"),
        ))
    }

    /// A call with the session JWT: re-login once on 401.
    fn authorized(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        what: &str,
        repeat: Repeat,
    ) -> Result<HttpResponse, EngineError> {
        let response = self.send(method, path, body, Some(&self.session()?), what, repeat)?;
        if response.status != 401 {
            return Ok(response);
        }
        self.log_stale_session();
        let jwt = self.login()?;
        self.send(method, path, body, Some(&jwt), what, repeat)
    }

    fn log_stale_session(&self) {
        self.host.log(
            Level::Info,
            "hub",
            &format!(
                "Docker Hub refused the cached session of {}; logging in again",
                self.account
            ),
        );
    }

    /// `response` with every secret this client sent (password, TOTP seed, session JWT), as
    /// is or JSON-escaped, replaced by `<redacted>` in a failure's body: a Hub or a proxy that
    /// echoes the request must not carry them into an error or a log. Success bodies are
    /// left whole (they hold the tokens being issued, never what was sent).
    fn scrubbed(&self, mut response: HttpResponse, jwt: Option<&str>) -> HttpResponse {
        if (200..300).contains(&response.status) {
            return response;
        }
        let Ok(mut text) = String::from_utf8(std::mem::take(&mut response.body)) else {
            // Not text: never quoted (see `hub_message`), so nothing to scrub.
            response.body = b"(a body that is not text)".to_vec();
            return response;
        };
        let secrets = [
            Some(self.credentials.password),
            self.credentials.totp_secret,
            jwt,
        ];
        for secret in secrets.into_iter().flatten().filter(|s| !s.is_empty()) {
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            for form in [secret, escaped] {
                if !form.is_empty() {
                    text = text.replace(form, "<redacted>");
                }
            }
        }
        response.body = text.into_bytes();
        response
    }

    /// One request, waiting out 429s within the client's patience and, when `repeat` allows,
    /// sending it again after a 5xx or no answer (see [`RETRY_BACKOFF`]).
    fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        jwt: Option<&str>,
        what: &str,
        repeat: Repeat,
    ) -> Result<HttpResponse, EngineError> {
        self.exchange(method, path, body, jwt, what, repeat)
            .map_err(|failed| EngineError::Upstream(failed.error))
    }

    /// Whether waiting `wait` leaves the call [`WAIT_RESERVE`] to try again and answer.
    fn time_allows(&self, wait: Duration) -> bool {
        self.host
            .time_left()
            .is_none_or(|left| left >= wait + WAIT_RESERVE)
    }

    /// [`Hub::send`], telling a request that never reached the Hub apart.
    fn exchange(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        jwt: Option<&str>,
        what: &str,
        repeat: Repeat,
    ) -> Result<HttpResponse, Failed> {
        let mut headers = vec![
            ("accept".to_string(), "application/json".to_string()),
            (
                "user-agent".to_string(),
                concat!("dockerhub-secrets/", env!("CARGO_PKG_VERSION")).to_string(),
            ),
        ];
        if body.is_some() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        if let Some(jwt) = jwt {
            headers.push(("authorization".to_string(), format!("Bearer {jwt}")));
        }
        let request = HttpRequest {
            method,
            path: path.to_string(),
            headers,
            body: body.map(|b| b.to_string().into_bytes()),
        };
        let mut waited = 0;
        let started = self.host.now();
        let mut retries = RETRY_BACKOFF.iter();
        loop {
            let outcome = self.host.send(&request).map(|r| self.scrubbed(r, jwt));
            if !matches!(&outcome, Err(e) if e.unsent) {
                self.sent.set(self.sent.get() + 1);
            }
            let transient = match &outcome {
                Err(e) => e.transient,
                Ok(response) => (500..=599).contains(&response.status),
            };
            if transient
                && repeat == Repeat::Safe
                && self.host.now().saturating_sub(started) < RETRY_WINDOW
                && let Some(backoff) = retries.next()
                && self.time_allows(*backoff)
            {
                let failure = match &outcome {
                    Err(e) => format!("no answer ({})", e.message),
                    Ok(response) => format!("HTTP {}", response.status),
                };
                self.host.log(
                    Level::Warn,
                    "hub",
                    &format!(
                        "{method} {} failed with {failure}; trying again in {} ms",
                        path_only(path),
                        backoff.as_millis()
                    ),
                );
                self.host.sleep(*backoff);
                continue;
            }
            let response = outcome.map_err(|e| {
                let sent = if e.unsent {
                    "was not sent"
                } else {
                    "got no answer"
                };
                self.host.log(
                    Level::Warn,
                    "hub",
                    &format!("{method} {} {sent}: {}", path_only(path), e.message),
                );
                Failed {
                    error: UpstreamError {
                        status: 0,
                        message: format!("could not {what} at Docker Hub: {}", no_answer(&e)),
                        retry_after: None,
                    },
                    unsent: e.unsent,
                }
            })?;
            if response.status != 429 {
                return Ok(response);
            }
            let wait = retry_after(&response, self.host.now());
            if waited + wait > self.rate_limit_patience
                || !self.time_allows(Duration::from_secs(wait))
            {
                return Err(Failed {
                    error: UpstreamError {
                        status: 429,
                        message: format!(
                            "Docker Hub rate-limited the request to {what}; retry after {wait}s: {}",
                            hub_message(&response)
                        ),
                        retry_after: Some(wait),
                    },
                    unsent: false,
                });
            }
            self.host.log(
                Level::Warn,
                "hub",
                &format!(
                    "Docker Hub rate limit on {method} {}: waiting {wait}s",
                    path_only(path)
                ),
            );
            self.host.sleep(Duration::from_secs(wait));
            waited += wait;
        }
    }
}

/// Seconds to wait after a 429: `Retry-After` (seconds), else `X-Retry-After` (Unix time,
/// from an older spec), else the reset time of the rate-limit window; at least 1. A number
/// too large for `u64` is the longest wait, not a value to ignore.
fn retry_after(response: &HttpResponse, now: u64) -> u64 {
    let header = |name| {
        let value = response.header(name)?.trim();
        let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| value.parse::<u64>().unwrap_or(u64::MAX))
    };
    header("retry-after")
        .or_else(|| header("x-retry-after").map(|at| at.saturating_sub(now)))
        .or_else(|| header("x-ratelimit-reset").map(|at| at.saturating_sub(now)))
        .unwrap_or(1)
        .max(1)
}

/// Why no answer arrived, in an operator's words. The transport's own text (a wasi:http
/// error code name, a library message) goes to the log, not to the caller.
/// A permanent failure is the host's own word (its sandbox, its limits) and is passed on.
fn no_answer(transport: &TransportError) -> &str {
    if transport.transient {
        transport.kind.words()
    } else {
        &transport.message
    }
}

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn string_field(response: &HttpResponse, name: &str) -> Option<String> {
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    body.get(name)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The Hub's explanation: the first of `message`, `detail`, `text` (its error bodies come in
/// several shapes), else a short plain-text body.
pub fn hub_message(response: &HttpResponse) -> String {
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&response.body) {
        for key in ["message", "detail", "text"] {
            if let Some(text) = body
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return text.to_string();
            }
        }
        if let Some(fields) = body.get("fields").filter(|f| f.is_object()) {
            return fields.to_string();
        }
    }
    let text = String::from_utf8_lossy(&response.body);
    let text = text.trim();
    if text.is_empty() || text.len() > 200 || text.starts_with('<') {
        "no explanation given".to_string()
    } else {
        text.to_string()
    }
}

fn upstream(response: &HttpResponse, message: String) -> EngineError {
    EngineError::Upstream(UpstreamError {
        status: response.status,
        message,
        retry_after: None,
    })
}

fn refused(response: &HttpResponse, what: &str) -> EngineError {
    upstream(
        response,
        format!(
            "Docker Hub refused to {what}: HTTP {}: {}",
            response.status,
            hub_message(response)
        ),
    )
}

/// A success status with a body we cannot use. Never quotes the body: it may hold a token.
fn malformed(what: &str, problem: &str) -> EngineError {
    EngineError::Upstream(UpstreamError {
        status: 200,
        message: format!("Docker Hub's answer to the request to {what} is unusable: {problem}"),
        retry_after: None,
    })
}

/// The `exp` claim of a JWT, read without verifying the signature (the Hub verifies it;
/// we only need to know when to log in again).
fn jwt_expiry(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_u64()
}

/// An RFC 3339 time (`2030-01-01T00:00:00Z`, `...00.123456Z`, `...00+02:00`) as Unix
/// seconds, fractions dropped; `None` when it is not one. The Hub sends `expires_at` so.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (60) counts as the last second of its minute.
    let second = second.min(59);
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .filter(|&end| end > 0)?;
        rest = &fraction[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(unix).ok()
}

/// Unix seconds as RFC 3339 in UTC, the format of the Hub's `expires_at`.
pub fn rfc3339(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_parses_what_it_formats_and_the_hubs_variants() {
        for unix in [0, 951_782_400, 1_795_000_000, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(unix)), Some(unix));
        }
        for (text, unix) in [
            ("2026-11-18T11:06:40.999999Z", 1_795_000_000),
            ("2026-11-18T13:06:40+02:00", 1_795_000_000),
            ("2026-11-18T10:06:40.5-01:00", 1_795_000_000),
            ("2026-11-18t11:06:40z", 1_795_000_000),
        ] {
            assert_eq!(parse_rfc3339(text), Some(unix), "{text}");
        }
        for bad in [
            "",
            "tomorrow",
            "2026-11-18",
            "2026-11-18T11:06:40",
            "2026-13-18T11:06:40Z",
            "2026-11-18T11:06:40.Z",
            "2026-11-18T11:06:40+0200",
            "1969-12-31T23:59:59Z",
            "２026-11-18T11:06:40Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_answer_is_told_in_words_without_the_transports_names() {
        use crate::capabilities::NoAnswer;
        let error = TransportError::transient(NoAnswer::Closed, "HttpProtocolError");
        assert_eq!(no_answer(&error), "the connection closed without an answer");
        for kind in [
            NoAnswer::Denied,
            NoAnswer::Unresolved,
            NoAnswer::Refused,
            NoAnswer::Unreachable,
            NoAnswer::TimedOut,
            NoAnswer::Closed,
            NoAnswer::Tls,
            NoAnswer::TooLarge,
        ] {
            let error = TransportError::transient(kind, "ErrorCode::Whatever");
            let text = no_answer(&error);
            assert!(!text.contains("Error"), "{text}");
            assert_eq!(text, kind.words());
        }
    }

    #[test]
    fn a_hub_that_echoes_the_request_gets_no_secret_into_the_message() {
        let host = crate::testing::TestHost::new();
        let hub = Hub::new(
            &host,
            "hoeg",
            Credentials {
                password: r#"pa"ss\word"#,
                totp_secret: Some("JBSWY3DPEHPK3PXP"),
            },
        );
        let echo = r#"{"message": "echo: {'secret': 'pa\"ss\\word', 'totp': 'JBSWY3DPEHPK3PXP', 'auth': 'Bearer jwt.abc', 'raw': 'pa"ss\word'}"}"#;
        let scrubbed = hub.scrubbed(response(400, &[], echo), Some("jwt.abc"));
        let text = hub_message(&scrubbed);
        for secret in [r#"pa\"ss"#, "pa\"ss", "JBSWY3DPEHPK3PXP", "jwt.abc"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("<redacted>"), "{text}");
        // A success body is the Hub's own (it holds the token being issued): left whole.
        let issued = hub.scrubbed(
            response(201, &[], r#"{"token": "jwt.abc"}"#),
            Some("jwt.abc"),
        );
        assert_eq!(issued.body, br#"{"token": "jwt.abc"}"#);
    }

    #[test]
    fn the_hosts_own_refusal_is_passed_on_in_its_words() {
        let refusal = "the request body is larger than the host allows";
        let error = TransportError::permanent(crate::capabilities::NoAnswer::Denied, refusal);
        assert_eq!(no_answer(&error), refusal);
    }

    #[test]
    fn hub_messages_from_every_body_shape() {
        for (body, expected) in [
            (r#"{"errinfo":{},"detail":"d","message":"m"}"#, "m"),
            (r#"{"detail":"Not found"}"#, "Not found"),
            (r#"{"fields":{},"text":"bad label"}"#, "bad label"),
            (
                r#"{"fields":{"scopes":["required"]}}"#,
                r#"{"scopes":["required"]}"#,
            ),
            ("upstream timeout", "upstream timeout"),
            ("<html>gateway</html>", "no explanation given"),
            ("", "no explanation given"),
        ] {
            assert_eq!(hub_message(&response(400, &[], body)), expected, "{body}");
        }
    }

    #[test]
    fn retry_after_prefers_seconds_then_unix_time() {
        let now = 1_000;
        assert_eq!(
            retry_after(&response(429, &[("Retry-After", "7")], ""), now),
            7
        );
        assert_eq!(
            retry_after(&response(429, &[("X-Retry-After", "1004")], ""), now),
            4
        );
        assert_eq!(
            retry_after(&response(429, &[("X-RateLimit-Reset", "1010")], ""), now),
            10
        );
        assert_eq!(
            retry_after(&response(429, &[("Retry-After", "0")], ""), now),
            1
        );
        assert_eq!(retry_after(&response(429, &[], ""), now), 1);
        for huge in ["99999999999999999999999999", "18446744073709551616"] {
            let asked = response(429, &[("Retry-After", huge)], "");
            assert_eq!(retry_after(&asked, now), u64::MAX, "{huge}");
        }
        let garbage = response(429, &[("Retry-After", "-5")], "");
        assert_eq!(retry_after(&garbage, now), 1);
    }

    #[test]
    fn jwt_expiry_reads_exp() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1234}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")), Some(1234));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }
}
