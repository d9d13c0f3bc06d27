//! A role: a `role "<name>" { ... }` block inside an auth block, with the fields and checks of
//! OpenBao's `auth/<path>/role/<name>` (`builtin/credential/jwt/path_role.go`, and the token
//! fields of `sdk/helper/tokenutil`), so that a role copies between OpenBao and serve.
//!
//! Only `jwt` roles exist here: an `oidc` role is a browser login, which a CI server has no
//! use for. Vault fields that serve does not implement are refused by name rather than
//! ignored, since a role that seems to restrict something must not silently allow it.

use crate::ConfigError;
use crate::claims::Expected;
use crate::fields::Fields;
use serde_json::Value;
use std::collections::BTreeMap;

/// A role's claim checks and the token a login with it gets.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub name: String,
    pub user_claim: String,
    pub user_claim_json_pointer: bool,
    pub bound_audiences: Vec<String>,
    pub bound_subject: Option<String>,
    pub bound_claims: BTreeMap<String, Vec<Expected>>,
    pub bound_claims_glob: bool,
    pub claim_mappings: BTreeMap<String, String>,
    pub token_policies: Vec<String>,
    pub token_ttl: u64,
    pub token_max_ttl: u64,
    pub token_explicit_max_ttl: u64,
    pub token_no_default_policy: bool,
    /// As configured (seconds, `None` when unset); [`crate::login`] applies Vault's rules.
    pub clock_skew_leeway: Option<i64>,
    pub expiration_leeway: Option<i64>,
    pub not_before_leeway: Option<i64>,
}

/// The fields a role takes.
const FIELDS: &[&str] = &[
    "role_type",
    "user_claim",
    "user_claim_json_pointer",
    "bound_audiences",
    "bound_subject",
    "bound_claims",
    "bound_claims_type",
    "claim_mappings",
    "token_policies",
    "token_ttl",
    "token_max_ttl",
    "token_explicit_max_ttl",
    "token_no_default_policy",
    "clock_skew_leeway",
    "expiration_leeway",
    "not_before_leeway",
];

/// Vault's role fields that serve does not implement, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("token_bound_cidrs", ""),
    ("token_strictly_bind_ip", ""),
    ("token_num_uses", ""),
    ("token_period", ""),
    ("token_type", ""),
    ("token_policies_template_claims", ""),
    ("groups_claim", " (serve has no identity groups)"),
    ("oidc_scopes", " (serve takes jwt roles only)"),
    ("allowed_redirect_uris", " (serve takes jwt roles only)"),
    ("callback_mode", " (serve takes jwt roles only)"),
    ("poll_interval", " (serve takes jwt roles only)"),
    ("max_age", " (serve takes jwt roles only)"),
    ("oidc_disable_confirmation", " (serve takes jwt roles only)"),
    ("oauth2_metadata", " (serve takes jwt roles only)"),
    ("verbose_oidc_logging", " (serve takes jwt roles only)"),
    ("policies", " (Vault's deprecated name: use token_policies)"),
    ("ttl", " (Vault's deprecated name: use token_ttl)"),
    ("max_ttl", " (Vault's deprecated name: use token_max_ttl)"),
    ("num_uses", ""),
    ("period", ""),
    ("bound_cidrs", ""),
];

/// Metadata keys a claim may not be mapped to (OpenBao's `reservedMetadata`).
const RESERVED_METADATA: &[&str] = &["role"];

/// Refuses the fields of `fields` that are neither `known` nor Vault's `unsupported` ones
/// (saying so for those).
pub(crate) fn refuse_other_fields(
    fields: &Fields,
    known: &[&str],
    unsupported: &[(&str, &str)],
) -> Result<(), ConfigError> {
    for name in fields.names() {
        if known.contains(&name.as_str()) {
            continue;
        }
        let problem = match unsupported.iter().find(|(field, _)| *field == name) {
            Some((_, why)) => format!("{name} is not supported by serve{why}"),
            None => format!("unknown field {name:?}"),
        };
        return Err(ConfigError::new(&fields.at, problem));
    }
    Ok(())
}

/// A role name as Vault takes it in `auth/<path>/role/<name>`: lower-cased
/// (`TypeLowerCaseString`), word characters with `-` and `.` inside
/// (`framework.GenericNameRegex`).
pub(crate) fn role_name(name: &str) -> Option<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let inner = |c: char| word(c) || c == '-' || c == '.';
    let ok = name.starts_with(word) && name.ends_with(word) && name.chars().all(inner);
    ok.then(|| name.to_lowercase())
}

impl Role {
    pub fn parse(name: String, fields: &Fields) -> Result<Role, ConfigError> {
        refuse_other_fields(fields, FIELDS, UNSUPPORTED)?;
        let at = fields.at.as_str();
        let error = |problem: String| ConfigError::new(at, problem);
        match fields.string("role_type")?.as_deref() {
            Some("jwt") => {}
            Some("oidc") => {
                return Err(error(
                    "role_type \"oidc\" is not supported by serve: an OIDC role is a browser \
                     login, which a CI server has no use for; use \"jwt\""
                        .into(),
                ));
            }
            Some(other) => return Err(error(format!("invalid 'role_type': {other}"))),
            None => {
                return Err(error(
                    "role_type = \"jwt\" is required (Vault's default is \"oidc\", which \
                     serve does not support)"
                        .into(),
                ));
            }
        }
        let user_claim = fields.string("user_claim")?.unwrap_or_default();
        if user_claim.is_empty() {
            return Err(error("a user claim must be defined on the role".into()));
        }
        let bound_claims_glob = match fields.string("bound_claims_type")?.as_deref() {
            None | Some("string") => false,
            Some("glob") => true,
            Some(other) => return Err(error(format!("invalid 'bound_claims_type': {other}"))),
        };
        let mut bound_claims = BTreeMap::new();
        for (claim, value) in fields.object("bound_claims")? {
            let values = match &value {
                Value::Array(items) => items.iter().map(Expected::from_json).collect(),
                scalar => Expected::from_json(scalar).map(|one| vec![one]),
            };
            let values = values.ok_or_else(|| {
                error(format!(
                    "bound_claims: {claim}: {value} is not a string, bool, number or a list of them"
                ))
            })?;
            let not_string = values.iter().find(|v| !matches!(v, Expected::String(_)));
            if let Some(other) = not_string.filter(|_| bound_claims_glob) {
                return Err(error(format!(
                    "bound_claims: {claim}: claim is not a string: {other:?} (glob claims are \
                     strings)"
                )));
            }
            bound_claims.insert(claim, values);
        }
        let claim_mappings = fields.string_map("claim_mappings")?;
        let mut targets = std::collections::BTreeSet::new();
        for key in claim_mappings.values() {
            if RESERVED_METADATA.contains(&key.as_str()) {
                return Err(error(format!(
                    "metadata key {key:?} is reserved and may not be a mapping destination"
                )));
            }
            if !targets.insert(key) {
                return Err(error(format!(
                    "multiple keys are mapped to metadata key {key:?}"
                )));
            }
        }
        let token_ttl = fields.duration("token_ttl")?;
        let token_max_ttl = fields.duration("token_max_ttl")?;
        if token_ttl > 0 && token_max_ttl > 0 && token_ttl > token_max_ttl {
            return Err(error(
                "'token_ttl' cannot be greater than 'token_max_ttl'".into(),
            ));
        }
        let role = Role {
            name,
            user_claim,
            user_claim_json_pointer: fields.bool("user_claim_json_pointer")?,
            bound_audiences: fields.strings("bound_audiences")?,
            bound_subject: fields.string("bound_subject")?.filter(|s| !s.is_empty()),
            bound_claims,
            bound_claims_glob,
            claim_mappings,
            token_policies: fields.strings("token_policies")?,
            token_ttl,
            token_max_ttl,
            token_explicit_max_ttl: fields.duration("token_explicit_max_ttl")?,
            token_no_default_policy: fields.bool("token_no_default_policy")?,
            clock_skew_leeway: fields.signed_duration("clock_skew_leeway")?,
            expiration_leeway: fields.signed_duration("expiration_leeway")?,
            not_before_leeway: fields.signed_duration("not_before_leeway")?,
        };
        let unbound = role.bound_audiences.is_empty()
            && role.bound_subject.is_none()
            && role.bound_claims.is_empty();
        if unbound {
            return Err(error(
                "must have at least one bound constraint when creating/updating a role \
                 (bound_audiences, bound_subject or bound_claims)"
                    .into(),
            ));
        }
        Ok(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_vaults() {
        assert_eq!(role_name("Acme-App.ci_1").as_deref(), Some("acme-app.ci_1"));
        assert_eq!(role_name("a").as_deref(), Some("a"));
        for bad in ["", "-a", "a-", "a/b", "a b", ".a"] {
            assert_eq!(role_name(bad), None, "{bad:?}");
        }
    }
}
