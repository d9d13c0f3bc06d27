//! `config/<account>`: the Docker Hub account the engine issues tokens for, and `config/`
//! to list them.
//!
//! The password (and TOTP seed) are write-only. A write proves the credentials with one
//! Hub login, so that a wrong password shows up when the operator configures the engine,
//! not in a CI job at 3 a.m.

use crate::api::{EngineError, Field, FieldKind, Operation, PathHelp, Request, Response};
use crate::capabilities::{Bucket, Host};
use crate::duration;
use crate::fields::FieldData;
use crate::hub::{Credentials, Hub};
use crate::label_template::LabelTemplate;
use crate::names::{self, SCOPES};
use crate::secret_token::{Holder, live_count};
use crate::{storage, totp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const DEFAULT_TTL: u64 = 5 * 60;
const DEFAULT_MAX_TTL: u64 = 60 * 60;
const DEFAULT_SCOPE: &str = "repo:write";

pub static FIELDS: &[Field] = &[
    Field {
        name: "account",
        kind: FieldKind::String,
        description: "The Docker Hub account (Docker ID) whose tokens this engine issues; taken \
                      from the path.",
        default: None,
        required: true,
        sensitive: false,
    },
    Field {
        name: "namespace",
        kind: FieldKind::CommaStringList,
        description: "The Docker Hub namespaces (the account itself, organizations it belongs \
                      to) that tokens may be requested for, as token/<account>/<namespace>. \
                      Required when the config is created.",
        default: None,
        required: true,
        sensitive: false,
    },
    Field {
        name: "password",
        kind: FieldKind::String,
        description: "The account's password (at most 512 bytes). Managing access tokens needs \
                      the real password: Docker Hub refuses sessions opened with an access token. \
                      Required when the config is created; never returned.",
        default: None,
        required: true,
        sensitive: true,
    },
    Field {
        name: "totp_secret",
        kind: FieldKind::String,
        description: "The base32 seed of the account's authenticator (at most 128 characters), \
                      when two-factor authentication is on. Never returned; write an empty value \
                      to remove it.",
        default: None,
        required: false,
        sensitive: true,
    },
    Field {
        name: "ttl",
        kind: FieldKind::Duration,
        description: "Default lease duration of issued tokens.",
        default: Some("5m"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "max_ttl",
        kind: FieldKind::Duration,
        description: "Longest lease of an issued token, renewals included. Docker Hub is asked \
                      to expire every token at this age (plus 2 seconds), so that it ends even \
                      if its revocation fails; when the Hub grants an earlier expiry, the lease \
                      ends by then.",
        default: Some("1h"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "scopes",
        kind: FieldKind::CommaStringList,
        description: "The scopes tokens may be requested with: repo:admin, repo:write, \
                      repo:read, repo:public_read.",
        default: Some("repo:admin,repo:write,repo:read,repo:public_read"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "default_scope",
        kind: FieldKind::String,
        description: "The scope of a token whose request names none; must be one of scopes.",
        default: Some(DEFAULT_SCOPE),
        required: false,
        sensitive: false,
    },
    Field {
        name: "label_template",
        kind: FieldKind::String,
        description: "The label of tokens whose request sets none, built from the requester's \
                      identity entity: literal text and Vault's identity placeholders \
                      {{identity.entity.id}}, {{identity.entity.name}}, \
                      {{identity.entity.metadata.<key>}}, and \
                      {{identity.entity.aliases.<mount accessor>.id}}, .name and \
                      .metadata.<key> (for OpenBao's jwt auth, the role's claim_mappings), such \
                      as ci-{{identity.entity.aliases.auth_jwt_1f2e3d4c.metadata.project_path}}. \
                      When a placeholder has no value for the requester, or the template is \
                      empty (the default), the label is the requester's display name. \
                      Rendered labels are made valid as display names are (cut to 64 \
                      characters). At most 512 characters; write an empty value to remove it.",
        default: None,
        required: false,
        sensitive: false,
    },
    Field {
        name: "max_live_tokens",
        kind: FieldKind::Integer,
        description: "The most personal access tokens of this account (token/ paths) that may \
                      be live at once: issued and not yet revoked, plus creations whose outcome \
                      is not settled (a role's organization tokens count against the role's own \
                      max_live_tokens). A request over \
                      it is refused with a 400 naming the quota, before any Docker Hub call. \
                      0: no quota. (Docker's fair-use terms allow throttling or charges for \
                      excessive token creation.)",
        default: Some("0"),
        required: false,
        sensitive: false,
    },
    Field {
        name: "verify",
        kind: FieldKind::Boolean,
        description: "Log in to Docker Hub once to check new credentials before saving them.",
        default: Some("true"),
        required: false,
        sensitive: false,
    },
];

pub fn help() -> Vec<PathHelp> {
    vec![
        PathHelp {
            pattern: r"config/(?P<account>[^/]+)$",
            operations: vec![
                Operation::Create,
                Operation::Update,
                Operation::Read,
                Operation::Delete,
            ],
            existence_check: true,
            synopsis: "Configure a Docker Hub account to issue access tokens for.",
            description: "Holds the account's password (write-only), the namespaces tokens may \
                          be requested for, the allowed scopes, the lease TTLs and the label \
                          template. Deleting a config is refused while tokens issued for it \
                          are still live, or their creation is not settled.",
            fields: FIELDS.to_vec(),
        },
        PathHelp {
            pattern: r"config/?$",
            operations: vec![Operation::List],
            existence_check: false,
            synopsis: "List the configured Docker Hub accounts.",
            description: "Lists the accounts that have a config.",
            fields: Vec::new(),
        },
    ]
}

/// One account's configuration as stored. `Debug` is hand-written to hide the secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountConfig {
    pub namespaces: Vec<String>,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    pub ttl: u64,
    pub max_ttl: u64,
    pub scopes: Vec<String>,
    pub default_scope: String,
    /// Empty: labels default to the display name (configs stored before templates have none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label_template: String,
    /// The most live tokens (records plus unsettled creations); 0: no quota (configs stored
    /// before quotas have none).
    #[serde(default)]
    pub max_live_tokens: u64,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("namespaces", &self.namespaces)
            .field("password", &"<redacted>")
            .field(
                "totp_secret",
                &self.totp_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("ttl", &self.ttl)
            .field("max_ttl", &self.max_ttl)
            .field("scopes", &self.scopes)
            .field("default_scope", &self.default_scope)
            .field("label_template", &self.label_template)
            .field("max_live_tokens", &self.max_live_tokens)
            .finish()
    }
}

impl AccountConfig {
    pub fn load(host: &dyn Host, account: &str) -> Result<Option<AccountConfig>, EngineError> {
        storage::load(host, Bucket::Config, account)
    }

    /// The config, or a 400 that tells the operator how to create it.
    pub fn require(host: &dyn Host, account: &str) -> Result<AccountConfig, EngineError> {
        AccountConfig::load(host, account)?.ok_or_else(|| {
            EngineError::invalid(format!(
                "Docker Hub account {} is not configured: write config/{account} first",
                names::quoted(account)
            ))
        })
    }

    pub fn hub<'a>(&'a self, host: &'a dyn Host, account: &'a str) -> Hub<'a> {
        Hub::new(
            host,
            account,
            Credentials {
                password: &self.password,
                totp_secret: self.totp_secret.as_deref(),
            },
        )
    }
}

pub fn handle(host: &dyn Host, account: &str, request: &Request) -> Result<Response, EngineError> {
    names::check_namespace("account", account)?;
    match request.operation {
        Operation::Create | Operation::Update => write(host, account, request),
        Operation::Read => read(host, account),
        Operation::Delete => delete(host, account),
        op => Err(EngineError::UnsupportedOperation(format!(
            "config/{account} does not support {op:?}"
        ))),
    }
}

/// Whether the account has a config. An invalid name has none (the write then refuses it
/// with a 400, which an existence check's error would not give: OpenBao logs it as its own
/// failure).
pub fn exists(host: &dyn Host, account: &str) -> Result<bool, EngineError> {
    if names::check_namespace("account", account).is_err() {
        return Ok(false);
    }
    Ok(AccountConfig::load(host, account)?.is_some())
}

pub fn list(host: &dyn Host) -> Result<Response, EngineError> {
    storage::key_list(host, Bucket::Config)
}

fn write(host: &dyn Host, account: &str, request: &Request) -> Result<Response, EngineError> {
    let data = FieldData::parse(&request.data, FIELDS)?;
    // Checked whether or not it is needed: bad input is refused, never ignored.
    let verify = data.boolean("verify")?.unwrap_or(true);
    let existing = AccountConfig::load(host, account)?;

    let password = match (data.string("password")?, &existing) {
        (Some(p), _) if p.is_empty() => {
            return Err(EngineError::invalid("password must not be empty"));
        }
        (Some(p), _) => {
            names::check_length("password", &p, names::MAX_PASSWORD_BYTES, "bytes")?;
            Some(p)
        }
        (None, None) => {
            return Err(EngineError::invalid(format!(
                "password is required to create config/{account}"
            )));
        }
        (None, Some(_)) => None,
    };
    if let Some(seed) = data.string("totp_secret")? {
        names::check_length(
            "totp_secret",
            &seed,
            names::MAX_TOTP_SECRET_CHARS,
            "characters",
        )?;
    }
    let totp_secret = match data.string("totp_secret")? {
        Some(seed) if seed.trim().is_empty() => Some(None),
        Some(seed) if totp::is_valid_seed(&seed) => Some(Some(seed)),
        Some(_) => {
            return Err(EngineError::invalid(
                "totp_secret is not a base32 authenticator seed",
            ));
        }
        None => None,
    };
    let credentials_changed = password.is_some() || totp_secret.is_some();

    let namespaces = match (data.list("namespace")?, &existing) {
        (Some(list), _) => unique(list),
        (None, Some(e)) => e.namespaces.clone(),
        (None, None) => Vec::new(),
    };
    if namespaces.is_empty() {
        return Err(EngineError::invalid(
            "namespace is required: list at least one Docker Hub namespace (the account itself \
             or an organization) that tokens may be requested for",
        ));
    }
    for namespace in &namespaces {
        names::check_namespace("namespace", namespace)?;
    }

    let ttl = data
        .duration("ttl")?
        .or(existing.as_ref().map(|e| e.ttl))
        .unwrap_or(DEFAULT_TTL);
    let max_ttl = data
        .duration("max_ttl")?
        .or(existing.as_ref().map(|e| e.max_ttl))
        .unwrap_or(DEFAULT_MAX_TTL);
    if ttl == 0 || max_ttl == 0 {
        return Err(EngineError::invalid("ttl and max_ttl must be at least 1s"));
    }
    if ttl > max_ttl {
        return Err(EngineError::invalid(format!(
            "ttl ({}) must not exceed max_ttl ({})",
            duration::format(ttl),
            duration::format(max_ttl)
        )));
    }

    let scopes = match (data.list("scopes")?, &existing) {
        (Some(list), _) => unique(list),
        (None, Some(e)) => e.scopes.clone(),
        (None, None) => SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    if scopes.is_empty() {
        return Err(EngineError::invalid(format!(
            "scopes must name at least one of {}",
            SCOPES.join(", ")
        )));
    }
    for scope in &scopes {
        names::check_scope("scope", scope)?;
    }
    let default_scope = match (data.string("default_scope")?, &existing) {
        (Some(s), _) => s,
        (None, Some(e)) => e.default_scope.clone(),
        (None, None) => DEFAULT_SCOPE.to_string(),
    };
    names::check_scope("default_scope", &default_scope)?;
    if !scopes.contains(&default_scope) {
        return Err(EngineError::invalid(format!(
            "default_scope {default_scope} is not one of the allowed scopes [{}]: set \
             default_scope to one of them",
            scopes.join(", ")
        )));
    }

    let label_template = match (data.string("label_template")?, &existing) {
        (Some(template), _) => {
            LabelTemplate::parse(&template)?;
            template
        }
        (None, Some(e)) => e.label_template.clone(),
        (None, None) => String::new(),
    };

    let max_live_tokens = data
        .unsigned("max_live_tokens")?
        .or(existing.as_ref().map(|e| e.max_live_tokens))
        .unwrap_or(0);

    let config = AccountConfig {
        namespaces,
        password: password.unwrap_or_else(|| {
            existing
                .as_ref()
                .map(|e| e.password.clone())
                .unwrap_or_default()
        }),
        totp_secret: totp_secret
            .unwrap_or_else(|| existing.as_ref().and_then(|e| e.totp_secret.clone())),
        ttl,
        max_ttl,
        scopes,
        default_scope,
        label_template,
        max_live_tokens,
    };

    if credentials_changed {
        // A session opened with the old credentials must not outlive them.
        storage::remove(host, Bucket::Session, account)?;
        if verify {
            config.hub(host, account).login().map_err(|e| match e {
                EngineError::Upstream(u) if u.status == 401 => {
                    EngineError::InvalidRequest(u.message)
                }
                other => other,
            })?;
        }
    }
    storage::save(host, Bucket::Config, account, &config)?;
    Ok(Response::default().with_warnings(data.unknown_field_warnings()))
}

fn read(host: &dyn Host, account: &str) -> Result<Response, EngineError> {
    let Some(config) = AccountConfig::load(host, account)? else {
        return Ok(Response::default());
    };
    let mut data = Map::new();
    data.insert("username".into(), Value::from(account));
    data.insert("namespace".into(), json!(config.namespaces));
    data.insert("ttl".into(), Value::from(duration::format(config.ttl)));
    data.insert(
        "max_ttl".into(),
        Value::from(duration::format(config.max_ttl)),
    );
    data.insert("scopes".into(), json!(config.scopes));
    data.insert("default_scope".into(), Value::from(config.default_scope));
    data.insert("label_template".into(), Value::from(config.label_template));
    data.insert(
        "max_live_tokens".into(),
        Value::from(config.max_live_tokens),
    );
    Ok(Response::data(data))
}

fn delete(host: &dyn Host, account: &str) -> Result<Response, EngineError> {
    let live = live_count(host, Holder::Account(account))?;
    if live > 0 {
        return Err(EngineError::invalid(format!(
            "account {account} still has {live} live token(s), and revoking them needs this \
             config: revoke their leases first (lease revoke -prefix <mount>/token/{account}, \
             and <mount>/creds/<role> for each role of the account)"
        )));
    }
    let pending = crate::rollback::pending(host, Holder::Account(account))?;
    if pending > 0 {
        return Err(EngineError::invalid(format!(
            "account {account} has {pending} token creation(s) whose outcome is not settled yet \
             (in flight, refused, or Docker Hub's answer was lost), and deleting a token it may \
             have made needs this config: retry once rollback has settled them (within 10 \
             minutes)"
        )));
    }
    storage::remove(host, Bucket::Config, account)?;
    storage::remove(host, Bucket::Session, account)?;
    Ok(Response::default())
}

/// Keep the first occurrence of each item, in order.
fn unique(items: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(items.len());
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{PASSWORD, TestHost};
    use serde_json::json;

    fn write(host: &TestHost, data: Value) -> Result<Response, EngineError> {
        host.call(Operation::Update, "config/hoeg", data)
    }

    fn read(host: &TestHost) -> Map<String, Value> {
        host.call(Operation::Read, "config/hoeg", json!({}))
            .unwrap()
            .data
            .expect("config exists")
    }

    fn invalid(result: Result<Response, EngineError>) -> String {
        match result {
            Err(EngineError::InvalidRequest(message)) => message,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn seed_session_write_then_read() {
        let host = TestHost::new();
        let written = write(
            &host,
            json!({"namespace": "hoeg,my-organization", "password": PASSWORD}),
        )
        .unwrap();
        assert_eq!(written, Response::default());
        assert_eq!(
            host.hub.login_count(),
            1,
            "a write verifies the credentials once"
        );

        let data = read(&host);
        assert_eq!(data["username"], "hoeg");
        assert_eq!(data["namespace"], json!(["hoeg", "my-organization"]));
        assert_eq!(data["ttl"], "5m0s");
        assert_eq!(data["max_ttl"], "1h0m0s");
        assert_eq!(
            data["scopes"],
            json!(["repo:admin", "repo:write", "repo:read", "repo:public_read"])
        );
        assert_eq!(data["default_scope"], "repo:write");
        assert!(!data.contains_key("password"));
        assert!(!Value::Object(data).to_string().contains(PASSWORD));
    }

    #[test]
    fn wrong_password_fails_at_config_time_with_the_hubs_message() {
        let host = TestHost::new();
        let message = invalid(write(
            &host,
            json!({"namespace": "hoeg", "password": "wrong"}),
        ));
        assert!(
            message.contains("rejected the credentials for account hoeg"),
            "{message}"
        );
        assert!(
            message.contains("Incorrect authentication credentials"),
            "{message}"
        );
        assert!(!message.contains("wrong"), "{message}");
        assert!(host.keys(Bucket::Config).is_empty(), "nothing stored");
    }

    #[test]
    fn a_bad_verify_is_refused_also_when_no_credentials_change() {
        let host = TestHost::configured();
        let refused = write(&host, json!({"ttl": "10m", "verify": "maybe"}));
        assert!(
            matches!(&refused, Err(EngineError::InvalidRequest(m)) if m.contains("verify")),
            "{refused:?}"
        );
    }

    #[test]
    fn verify_false_skips_the_login() {
        let host = TestHost::new();
        write(
            &host,
            json!({"namespace": "hoeg", "password": "wrong", "verify": false}),
        )
        .unwrap();
        assert_eq!(host.hub.login_count(), 0);
    }

    #[test]
    fn an_update_keeps_what_it_does_not_set_and_does_not_log_in() {
        let host = TestHost::configured();
        write(&host, json!({"ttl": "10m", "max_ttl": 7200})).unwrap();
        let data = read(&host);
        assert_eq!(data["ttl"], "10m0s");
        assert_eq!(data["max_ttl"], "2h0m0s");
        assert_eq!(data["namespace"], json!(["hoeg", "my-organization"]));
        assert_eq!(host.hub.login_count(), 0);
        let stored: AccountConfig = storage::load(&host, Bucket::Config, "hoeg")
            .unwrap()
            .unwrap();
        assert_eq!(stored.password, PASSWORD);
    }

    #[test]
    fn namespaces_as_a_list_are_deduplicated() {
        let host = TestHost::configured();
        write(&host, json!({"namespace": ["b-org", "a-org", "b-org"]})).unwrap();
        assert_eq!(read(&host)["namespace"], json!(["b-org", "a-org"]));
    }

    #[test]
    fn bad_input_is_a_400_that_says_what_is_wrong() {
        let host = TestHost::new();
        for (data, expected) in [
            (json!({"namespace": "hoeg"}), "password is required"),
            (
                json!({"password": "p", "verify": false}),
                "namespace is required",
            ),
            (
                json!({"namespace": "", "password": "p"}),
                "namespace is required",
            ),
            (
                json!({"namespace": "Hoeg", "password": "p"}),
                "namespace \"Hoeg\"",
            ),
            (
                json!({"namespace": "hoeg", "password": ""}),
                "password must not be empty",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "ttl": "2h"}),
                "must not exceed max_ttl",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "ttl": "soon"}),
                "ttl: invalid duration",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "ttl": 0}),
                "at least 1s",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "scopes": "repo:push"}),
                "repo:push",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "scopes": ""}),
                "scopes must name",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "scopes": "repo:read"}),
                "default_scope repo:write is not one of the allowed scopes",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "totp_secret": "1!"}),
                "totp_secret",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "verify": "perhaps"}),
                "verify",
            ),
        ] {
            let message = invalid(write(&host, data.clone()));
            assert!(message.contains(expected), "{data}: {message}");
        }
        assert!(
            invalid(host.call(Operation::Update, "config/Hoeg", json!({}))).contains("account")
        );
        assert_eq!(host.hub.login_count(), 0, "bad input never reaches the Hub");
        assert!(host.keys(Bucket::Config).is_empty());
    }

    #[test]
    fn over_long_fields_are_a_400_naming_them_before_any_hub_call() {
        let host = TestHost::new();
        let huge_password = "p".repeat(6000);
        for (data, field) in [
            (
                json!({"namespace": "hoeg", "password": huge_password}),
                "password is too long",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "totp_secret": "A".repeat(129)}),
                "totp_secret is too long",
            ),
            (
                json!({"namespace": format!("hoeg,{}", "n".repeat(300)), "password": "p"}),
                "namespace",
            ),
            (
                json!({"namespace": "hoeg", "password": "p", "ttl": "9".repeat(5000)}),
                "ttl",
            ),
        ] {
            let message = invalid(write(&host, data));
            assert!(message.starts_with(field), "{message}");
            assert!(message.len() < 300, "{message}");
            assert!(!message.contains(&"p".repeat(100)), "no password echoed");
        }
        let long = format!("a{}", "b".repeat(300));
        let message = invalid(host.call(Operation::Update, &format!("config/{long}"), json!({})));
        assert!(message.contains("account"), "{message}");
        assert_eq!(host.hub.calls().len(), 0, "no Hub call");
        // The largest accepted values work.
        write(
            &host,
            json!({"namespace": "hoeg", "password": "p".repeat(512), "totp_secret": "A".repeat(128), "verify": false}),
        )
        .unwrap();
    }

    #[test]
    fn a_label_template_is_checked_stored_kept_and_removed() {
        let host = TestHost::configured();
        assert_eq!(read(&host)["label_template"], "", "none by default");
        let template = "ci-{{identity.entity.aliases.auth_jwt_1f2e3d4c.metadata.project_path}}";
        write(&host, json!({ "label_template": template })).unwrap();
        assert_eq!(read(&host)["label_template"], template);
        write(&host, json!({"ttl": "10m"})).unwrap();
        assert_eq!(
            read(&host)["label_template"],
            template,
            "an update keeps it"
        );

        for (bad, expected) in [
            (
                "ci-{{identity.entity.email}}",
                "label_template: unknown placeholder \"{{identity.entity.email}}\"",
            ),
            (
                "ci-{{identity.entity.name",
                "label_template \"ci-{{identity.entity.name\" has unbalanced braces",
            ),
        ] {
            let message = invalid(write(&host, json!({ "label_template": bad })));
            assert!(message.starts_with(expected), "{message}");
        }
        assert_eq!(
            read(&host)["label_template"],
            template,
            "a refused one is not stored"
        );

        write(&host, json!({"label_template": ""})).unwrap();
        assert_eq!(read(&host)["label_template"], "");
        assert!(!host.stored_text(Bucket::Config).contains("label_template"));
    }

    #[test]
    fn max_live_tokens_is_read_back_kept_by_updates_and_checked() {
        let host = TestHost::configured();
        assert_eq!(read(&host)["max_live_tokens"], 0, "no quota by default");
        write(&host, json!({"max_live_tokens": "25"})).unwrap();
        assert_eq!(read(&host)["max_live_tokens"], 25);
        write(&host, json!({"ttl": "10m"})).unwrap();
        assert_eq!(read(&host)["max_live_tokens"], 25, "an update keeps it");
        for bad in [json!(-1), json!("many"), json!(1.5)] {
            assert_eq!(
                invalid(write(&host, json!({ "max_live_tokens": bad }))),
                "max_live_tokens must be a whole number, 0 or more"
            );
        }
        assert_eq!(read(&host)["max_live_tokens"], 25);
    }

    #[test]
    fn the_label_template_field_is_declared_once_for_help() {
        let help = help();
        let field = help[0]
            .fields
            .iter()
            .find(|f| f.name == "label_template")
            .expect("declared");
        assert!(
            field
                .description
                .contains("{{identity.entity.aliases.<mount accessor>.id}}")
        );
        assert!(field.description.contains("display name"));
    }

    #[test]
    fn unknown_fields_are_ignored_with_a_warning() {
        let host = TestHost::configured();
        let response = write(&host, json!({"colour": "blue"})).unwrap();
        assert_eq!(
            response.warnings,
            ["Endpoint ignored these unrecognized parameters: [colour]"]
        );
    }

    #[test]
    fn missing_config_reads_as_nothing() {
        let host = TestHost::new();
        let response = host
            .call(Operation::Read, "config/nobody", json!({}))
            .unwrap();
        assert_eq!(response.data, None);
        assert_eq!(exists(&host, "nobody"), Ok(false));
    }

    #[test]
    fn list_and_delete() {
        let host = TestHost::configured();
        host.hub.add_account("zed1", "pw", None);
        host.call(
            Operation::Update,
            "config/zed1",
            json!({"namespace": "zed1", "password": "pw"}),
        )
        .unwrap();
        let keys = host
            .call(Operation::List, "config/", json!({}))
            .unwrap()
            .data
            .unwrap();
        assert_eq!(keys["keys"], json!(["hoeg", "zed1"]));

        host.call(Operation::Delete, "config/zed1", json!({}))
            .unwrap();
        assert_eq!(host.keys(Bucket::Config), ["hoeg"]);
        assert!(
            host.keys(Bucket::Session).is_empty(),
            "the session goes with the config"
        );
    }

    #[test]
    fn delete_is_refused_while_tokens_are_live() {
        let host = TestHost::configured();
        host.issue(json!({}));
        let message = invalid(host.call(Operation::Delete, "config/hoeg", json!({})));
        assert!(message.contains("1 live token"), "{message}");
        assert_eq!(host.keys(Bucket::Config), ["hoeg"]);
    }

    #[test]
    fn delete_is_refused_while_a_creation_is_not_settled() {
        let host = TestHost::configured();
        host.hub.inject(fakehub::Fault::on(
            "POST",
            "/v2/access-tokens",
            fakehub::FaultKind::Drop,
        ));
        host.call(Operation::Update, "token/hoeg/hoeg", json!({}))
            .expect_err("the answer was lost");
        let message = invalid(host.call(Operation::Delete, "config/hoeg", json!({})));
        assert!(
            message.contains("1 token creation(s) whose outcome is not settled"),
            "{message}"
        );
        assert_eq!(host.keys(Bucket::Config), ["hoeg"]);
        // Once rollback is done with it (the Hub made no token), the config may go.
        host.advance(crate::rollback::LANDING_WINDOW);
        host.call(Operation::Rollback, "", json!({})).unwrap();
        host.call(Operation::Delete, "config/hoeg", json!({}))
            .unwrap();
        assert!(host.keys(Bucket::Config).is_empty());
    }

    #[test]
    fn two_factor_accounts_log_in_with_the_totp_code() {
        let host = TestHost::new();
        let seed = "JBSWY3DPEHPK3PXP";
        host.hub.add_account("twofa", "pw2", Some(seed));
        let write = |data| host.call(Operation::Update, "config/twofa", data);
        let message = invalid(write(json!({"namespace": "twofa", "password": "pw2"})));
        assert!(message.contains("rejected the credentials"), "{message}");
        assert!(
            message.contains(
                "write the TOTP seed of its authenticator app as totp_secret in config/twofa"
            ),
            "{message}"
        );
        // A wrong password on an account without a second factor gets no such hint.
        let wrong = invalid(host.call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg", "password": "wrong"}),
        ));
        assert!(!wrong.contains("totp_secret"), "{wrong}");

        write(json!({"namespace": "twofa", "password": "pw2", "totp_secret": seed})).unwrap();
        assert_eq!(host.hub.login_count(), 1);
        let data = host
            .call(Operation::Read, "config/twofa", json!({}))
            .unwrap()
            .data
            .unwrap();
        assert!(!Value::Object(data).to_string().contains(seed));
        host.call(Operation::Update, "token/twofa/twofa", json!({}))
            .unwrap();
    }

    #[test]
    fn secrets_stay_out_of_debug_output_and_logs() {
        let host = TestHost::configured();
        write(&host, json!({"password": PASSWORD, "totp_secret": ""})).unwrap();
        host.issue(json!({}));
        let config: AccountConfig = storage::load(&host, Bucket::Config, "hoeg")
            .unwrap()
            .unwrap();
        assert!(!format!("{config:?}").contains(PASSWORD));
        assert!(!host.logs.borrow().join("\n").contains(PASSWORD));
    }
}
