//! Organizations and their access tokens (OATs): who may manage them (the owners), the plan's
//! cap on how many exist, and logging in with one. Docker's "Organization access tokens" docs
//! are the source: Team and Business plans only, up to 10 and 100 tokens per organization,
//! expired (and deactivated) tokens counting until deleted, and `docker login` with the
//! organization's name as the username.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Hub, State, random_string};
use crate::{Organization, Plan, clock};

/// An organization access token as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgTokenInfo {
    pub id: String,
    /// The organization's name.
    pub org: String,
    pub label: String,
    /// Empty when none was given.
    pub description: String,
    /// Username of the owner who created it.
    pub created_by: String,
    pub is_active: bool,
    /// RFC 3339, as the fake sends it in token objects.
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Past its `expires_at` when this was read.
    pub expired: bool,
    pub last_used_at: Option<String>,
    pub resources: Vec<OrgTokenResource>,
    /// The secret (`dckr_oat_...`), which the API shows only once; kept here so tests can log
    /// in with it.
    pub token: String,
}

/// One of an OAT's `resources`: what it reaches and how (the spec's `orgAccessTokenResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgTokenResource {
    /// The spec's `type`: `TYPE_REPO`, the only kind the fake serves.
    pub kind: String,
    /// `<org>/<repo>`, `<org>/*` (every repository of the organization) or `*/*/public` (every
    /// public repository on the Hub).
    pub path: String,
    /// `scope-image-pull`, `scope-image-push`.
    pub scopes: Vec<String>,
}

impl OrgTokenResource {
    /// A `TYPE_REPO` resource.
    pub fn repo(path: &str, scopes: &[&str]) -> Self {
        OrgTokenResource {
            kind: "TYPE_REPO".to_owned(),
            path: path.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"type": self.kind, "path": self.path, "scopes": self.scopes})
    }
}

pub(super) struct OrgState {
    uuid: String,
    name: String,
    plan: Plan,
    /// Lower-cased usernames.
    owners: Vec<String>,
    repositories: Vec<String>,
    tokens: Vec<Oat>,
}

impl OrgState {
    /// Moves every token's `created_at` back by `by`.
    pub(super) fn age_tokens(&mut self, by: std::time::Duration) {
        for token in &mut self.tokens {
            token.created_at = super::aged(&token.created_at, by);
        }
    }

    pub(super) fn new(org: Organization) -> Self {
        OrgState {
            uuid: uuid::Uuid::new_v4().to_string(),
            name: org.name,
            plan: org.plan,
            owners: org.owners.iter().map(|o| o.to_lowercase()).collect(),
            repositories: org.repositories,
            tokens: Vec::new(),
        }
    }

    /// The id of the live token whose secret this is.
    pub(super) fn live_token(&self, secret: &str) -> Option<&str> {
        let now = clock::now();
        self.tokens
            .iter()
            .find(|t| t.secret == secret && t.is_live(now))
            .map(|t| t.id.as_str())
    }
}

struct Oat {
    seq: u64,
    id: String,
    label: String,
    description: String,
    created_by: String,
    is_active: bool,
    created_at: String,
    expires: Option<OffsetDateTime>,
    last_used_at: Option<String>,
    resources: Vec<OrgTokenResource>,
    secret: String,
}

/// Which of the spec's token objects to answer with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    /// `orgAccessToken`, in a listing: no resources, no secret.
    Listed,
    /// With `resources`: a read or an update.
    Read,
    /// With `resources` and, this once, the secret in `token`.
    Created,
}

impl Oat {
    fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// Usable to log in: active and not past its expiry.
    fn is_live(&self, now: OffsetDateTime) -> bool {
        self.is_active && !self.is_expired(now)
    }

    /// The spec has no `description` in its response schemas; the fake answers it anyway, as
    /// the Hub's UI shows it beside the label.
    fn to_json(&self, view: View) -> Value {
        let mut body = json!({
            "id": self.id,
            "label": self.label,
            "description": self.description,
            "created_by": self.created_by,
            "is_active": self.is_active,
            "created_at": self.created_at,
            "expires_at": self.expires.map(clock::format),
            "last_used_at": self.last_used_at,
        });
        if view != View::Listed {
            body["resources"] = self.resources.iter().map(|r| r.to_json()).collect();
        }
        if view == View::Created {
            body["token"] = Value::String(self.secret.clone());
        }
        body
    }

    fn info(&self, org: &str) -> OrgTokenInfo {
        OrgTokenInfo {
            id: self.id.clone(),
            org: org.to_owned(),
            label: self.label.clone(),
            description: self.description.clone(),
            created_by: self.created_by.clone(),
            is_active: self.is_active,
            created_at: self.created_at.clone(),
            expires_at: self.expires.map(clock::format),
            expired: self.is_expired(clock::now()),
            last_used_at: self.last_used_at.clone(),
            resources: self.resources.clone(),
            token: self.secret.clone(),
        }
    }
}

/// An organization as a token handler sees it, once the caller is known to own it.
pub(crate) struct OrgView {
    /// Key of the organization in the hub.
    pub key: String,
    pub name: String,
    pub repositories: Vec<String>,
}

pub(crate) enum OrgAccessError {
    NotFound,
    NotOwner,
}

/// A validated request to create an organization access token.
pub(crate) struct NewOrgToken {
    pub label: String,
    pub description: String,
    pub expires: Option<OffsetDateTime>,
    pub resources: Vec<OrgTokenResource>,
}

/// Why an organization cannot have one more token.
#[derive(Debug)]
pub(crate) enum OrgTokenRefusal {
    /// Its plan has no organization access tokens.
    NotOnPlan(Plan),
    /// It holds as many as its plan allows.
    Limit(Plan, usize),
}

/// The changes of a `PATCH`; `None` leaves a field as it is.
pub(crate) struct OrgTokenUpdate {
    pub label: Option<String>,
    pub description: Option<String>,
    pub resources: Option<Vec<OrgTokenResource>>,
    pub is_active: Option<bool>,
}

impl State {
    /// Adds a token unless the organization's plan forbids one more.
    fn add_org_token(
        &mut self,
        org: &str,
        created_by: String,
        new: NewOrgToken,
    ) -> Result<&Oat, OrgTokenRefusal> {
        let org = self.orgs.get_mut(org).expect("a known organization");
        let limit = org
            .plan
            .org_token_limit()
            .ok_or(OrgTokenRefusal::NotOnPlan(org.plan))?;
        if org.tokens.len() >= limit {
            return Err(OrgTokenRefusal::Limit(org.plan, limit));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        org.tokens.push(Oat {
            seq,
            id: uuid::Uuid::new_v4().to_string(),
            label: new.label,
            description: new.description,
            created_by,
            is_active: true,
            created_at: clock::format(clock::now()),
            expires: new.expires,
            last_used_at: None,
            resources: new.resources,
            secret: format!("dckr_oat_{}", random_string(27)),
        });
        Ok(org.tokens.last().expect("just pushed"))
    }

    fn oat(&self, org: &str, id: &str) -> Option<&Oat> {
        self.orgs.get(org)?.tokens.iter().find(|t| t.id == id)
    }

    fn oat_mut(&mut self, org: &str, id: &str) -> Option<&mut Oat> {
        self.orgs
            .get_mut(org)?
            .tokens
            .iter_mut()
            .find(|t| t.id == id)
    }

    /// The key of the organization holding token `id`.
    fn org_of_token(&self, id: &str) -> Option<String> {
        self.orgs
            .iter()
            .find(|(_, org)| org.tokens.iter().any(|t| t.id == id))
            .map(|(key, _)| key.clone())
    }
}

impl Hub {
    // --- API ---

    /// The organization named `org`, when `account` owns it.
    pub fn org_for_owner(&self, org: &str, account: &str) -> Result<OrgView, OrgAccessError> {
        let key = org.to_lowercase();
        let state = self.lock();
        let org = state.orgs.get(&key).ok_or(OrgAccessError::NotFound)?;
        if !org.owners.iter().any(|owner| owner == account) {
            return Err(OrgAccessError::NotOwner);
        }
        Ok(OrgView {
            key,
            name: org.name.clone(),
            repositories: org.repositories.clone(),
        })
    }

    /// Creates a token for `account` with the expiry [`crate::ExpiryGrant`] gives it, and
    /// answers the spec's `createOrgAccessTokenResponse`.
    pub fn create_org_token(
        &self,
        org: &str,
        account: &str,
        mut new: NewOrgToken,
    ) -> Result<Value, OrgTokenRefusal> {
        let mut state = self.lock();
        new.expires = state.expiry_grant.apply(new.expires, clock::now());
        let created_by = state.accounts[account].username.clone();
        Ok(state
            .add_org_token(org, created_by, new)?
            .to_json(View::Created))
    }

    /// The organization's tokens, newest first, as the listing shows them.
    pub fn list_org_tokens(&self, org: &str) -> Vec<Value> {
        let state = self.lock();
        let mut tokens: Vec<&Oat> = state.orgs[org].tokens.iter().collect();
        tokens.sort_by_key(|t| std::cmp::Reverse(t.seq));
        tokens
            .into_iter()
            .map(|t| t.to_json(View::Listed))
            .collect()
    }

    pub fn get_org_token(&self, org: &str, id: &str) -> Option<Value> {
        self.lock().oat(org, id).map(|t| t.to_json(View::Read))
    }

    pub fn update_org_token(&self, org: &str, id: &str, update: OrgTokenUpdate) -> Option<Value> {
        let mut state = self.lock();
        let token = state.oat_mut(org, id)?;
        if let Some(label) = update.label {
            token.label = label;
        }
        if let Some(description) = update.description {
            token.description = description;
        }
        if let Some(resources) = update.resources {
            token.resources = resources;
        }
        if let Some(is_active) = update.is_active {
            token.is_active = is_active;
        }
        Some(token.to_json(View::Read))
    }

    pub fn delete_org_token(&self, org: &str, id: &str) -> bool {
        let mut state = self.lock();
        let Some(org) = state.orgs.get_mut(org) else {
            return false;
        };
        let before = org.tokens.len();
        org.tokens.retain(|t| t.id != id);
        org.tokens.len() < before
    }

    /// Issues a JWT for the organization after a login with its token `id`, and marks the
    /// token used.
    pub fn issue_org_jwt(&self, org: &str, id: &str) -> String {
        let mut state = self.lock();
        if let Some(token) = state.oat_mut(org, id) {
            token.last_used_at = Some(clock::format(clock::now()));
        }
        let org = &state.orgs[org];
        let (sub, name) = (org.uuid.clone(), org.name.clone());
        self.open_session(&mut state, sub, name, super::Login::Oat)
    }

    // --- test control ---

    /// Every token of the organization named `org`, oldest first.
    pub fn org_tokens(&self, org: &str) -> Vec<OrgTokenInfo> {
        let state = self.lock();
        let Some(org) = state.orgs.get(&org.to_lowercase()) else {
            return Vec::new();
        };
        let mut tokens: Vec<&Oat> = org.tokens.iter().collect();
        tokens.sort_by_key(|t| t.seq);
        tokens.into_iter().map(|t| t.info(&org.name)).collect()
    }

    pub fn org_token(&self, id: &str) -> Option<OrgTokenInfo> {
        let state = self.lock();
        let key = state.org_of_token(id)?;
        let org = &state.orgs[&key];
        state.oat(&key, id).map(|t| t.info(&org.name))
    }

    /// Creates a token as the organization's first owner would in the web UI: with the expiry
    /// given (even a past one) and the resources unchecked, but within the plan's limit.
    /// Panics when there is no such organization, `expires_at` is not RFC 3339, or the plan
    /// refuses.
    pub fn create_org_token_by_hand(
        &self,
        org: &str,
        label: &str,
        description: &str,
        resources: Vec<OrgTokenResource>,
        expires_at: Option<&str>,
    ) -> OrgTokenInfo {
        let expires = expires_at.map(|text| {
            clock::parse(text)
                .unwrap_or_else(|| panic!("fakehub: expires_at {text:?} is not RFC 3339"))
        });
        let key = org.to_lowercase();
        let mut state = self.lock();
        let Some(org_state) = state.orgs.get(&key) else {
            panic!("fakehub: no organization named {org:?}");
        };
        let name = org_state.name.clone();
        let owner = &org_state.owners[0];
        let created_by = state.accounts[owner].username.clone();
        let new = NewOrgToken {
            label: label.to_owned(),
            description: description.to_owned(),
            expires,
            resources,
        };
        match state.add_org_token(&key, created_by, new) {
            Ok(token) => token.info(&name),
            Err(refusal) => panic!("fakehub: organization {org:?} refuses a token: {refusal:?}"),
        }
    }

    /// Applies `change` to token `id`, wherever it is; `false` when there is no such token.
    fn change_org_token(&self, id: &str, change: impl FnOnce(&mut Oat)) -> bool {
        let mut state = self.lock();
        let Some(key) = state.org_of_token(id) else {
            return false;
        };
        state.oat_mut(&key, id).map(change).is_some()
    }

    pub fn deactivate_org_token(&self, id: &str) -> bool {
        self.change_org_token(id, |token| token.is_active = false)
    }

    /// Sets the token's expiry to now.
    pub fn expire_org_token(&self, id: &str) -> bool {
        self.change_org_token(id, |token| token.expires = Some(clock::now()))
    }

    pub fn delete_org_token_by_id(&self, id: &str) -> bool {
        let key = self.lock().org_of_token(id);
        key.is_some_and(|key| self.delete_org_token(&key, id))
    }
}
