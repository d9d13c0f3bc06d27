//! An auth mount's configuration: the attributes of an `auth "<path>" { type = "jwt" ... }`
//! block, with the fields and checks of OpenBao's `auth/<path>/config`
//! (`builtin/credential/jwt/path_config.go`), and its `role` blocks ([`crate::role`]).

use crate::ConfigError;
use crate::fetch::{self, Client};
use crate::fields::{self, Fields};
use crate::jwks::{RemoteKeys, Source};
use crate::keys::{self, PublicKey};
use crate::role::{self, Role};
use jsonwebtoken::Algorithm;
use std::collections::BTreeMap;
use std::str::FromStr;

/// What verifies a mount's tokens.
pub(crate) enum KeySet {
    /// `jwt_validation_pubkeys`.
    Static(Vec<PublicKey>),
    /// `jwks_url` or `oidc_discovery_url`.
    Remote(Box<RemoteKeys>),
}

/// A mount as parsed.
pub(crate) struct Mount {
    pub path: String,
    pub keys: KeySet,
    /// `bound_issuer`, or with discovery the issuer itself.
    pub bound_issuer: Option<String>,
    pub supported_algs: Vec<Algorithm>,
    pub default_role: Option<String>,
    pub roles: BTreeMap<String, Role>,
}

/// The algorithms a mount accepts when `jwt_supported_algs` is unset: every asymmetric
/// algorithm jsonwebtoken verifies. (OpenBao's list also has ES512, which jsonwebtoken does
/// not implement.)
pub const DEFAULT_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const FIELDS: &[&str] = &[
    "type",
    "description",
    "jwks_url",
    "jwks_ca_pem",
    "oidc_discovery_url",
    "oidc_discovery_ca_pem",
    "jwt_validation_pubkeys",
    "jwt_supported_algs",
    "bound_issuer",
    "default_role",
];

const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "oidc_client_id",
        " (serve takes jwt logins only, no OIDC browser flow)",
    ),
    (
        "oidc_client_secret",
        " (serve takes jwt logins only, no OIDC browser flow)",
    ),
    (
        "oidc_response_mode",
        " (serve takes jwt logins only, no OIDC browser flow)",
    ),
    (
        "oidc_response_types",
        " (serve takes jwt logins only, no OIDC browser flow)",
    ),
    (
        "namespace_in_state",
        " (serve takes jwt logins only, no OIDC browser flow)",
    ),
    ("provider_config", ""),
    ("jwks_pairs", ""),
    ("override_allowed_server_names", ""),
    ("skip_jwks_validation", ""),
];

/// The mount at `auth/<path>` declared by `body`.
pub(crate) fn parse(path: &str, body: &hcl::Body) -> Result<Mount, ConfigError> {
    let path = mount_path(path)?;
    let fields = Fields::of(body, format!("auth {path:?}"))?;
    role::refuse_other_fields(&fields, FIELDS, UNSUPPORTED)?;
    let at = fields.at.clone();
    let error = |problem: String| ConfigError::new(&at, problem);
    match fields.string("type")?.as_deref() {
        Some("jwt") => {}
        Some(other) => {
            return Err(error(format!(
                "type {other:?} is not an auth method serve has: type = \"jwt\""
            )));
        }
        None => return Err(error("type = \"jwt\" is missing".into())),
    }
    fields.string("description")?;

    let jwks_url = fields.string("jwks_url")?.filter(|s| !s.is_empty());
    let discovery_url = fields
        .string("oidc_discovery_url")?
        .filter(|s| !s.is_empty());
    let pems = fields.strings("jwt_validation_pubkeys")?;
    let jwks_ca = ca_pem(&fields, "jwks_ca_pem", jwks_url.is_some(), "jwks_url")?;
    let discovery_ca = ca_pem(
        &fields,
        "oidc_discovery_ca_pem",
        discovery_url.is_some(),
        "oidc_discovery_url",
    )?;
    let methods = [
        jwks_url.is_some(),
        discovery_url.is_some(),
        !pems.is_empty(),
    ];
    if methods.iter().filter(|set| **set).count() != 1 {
        return Err(error(
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' \
             must be set"
                .into(),
        ));
    }
    let client = |roots: Option<Vec<_>>| Client::new(roots.as_deref()).map_err(error);
    let (keys, discovered_issuer) = if let Some(url) = jwks_url {
        fetch::https_url(&url).map_err(|e| error(format!("jwks_url {e}")))?;
        let remote = RemoteKeys::new(Source::Jwks(url), client(jwks_ca)?);
        (KeySet::Remote(Box::new(remote)), None)
    } else if let Some(url) = discovery_url {
        if url.contains(".well-known/openid-configuration") {
            return Err(error(
                "'oidc_discovery_url' contains '.well-known' component: give the issuer URL".into(),
            ));
        }
        fetch::https_url(&url).map_err(|e| error(format!("oidc_discovery_url {e}")))?;
        let remote = RemoteKeys::new(Source::Discovery(url.clone()), client(discovery_ca)?);
        (KeySet::Remote(Box::new(remote)), Some(url))
    } else {
        let keys = pems
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                keys::from_pem(pem).map_err(|e| error(format!("jwt_validation_pubkeys[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        (KeySet::Static(keys), None)
    };

    let mut supported_algs = Vec::new();
    for name in fields.strings("jwt_supported_algs")? {
        let alg =
            supported_alg(&name).map_err(|e| error(format!("invalid jwt_supported_algs: {e}")))?;
        supported_algs.push(alg);
    }
    if supported_algs.is_empty() {
        supported_algs = DEFAULT_ALGS.to_vec();
    }

    let mut roles = BTreeMap::new();
    for block in &fields.blocks {
        if block.identifier() != "role" {
            return Err(error(format!(
                "unknown block {:?}: an auth block holds role blocks",
                block.identifier()
            )));
        }
        let label = fields::label(block, &at)?;
        let name = role::role_name(&label).ok_or_else(|| {
            error(format!(
                "role {label:?}: a role name is letters, digits and _, with - or . inside"
            ))
        })?;
        let role_fields = Fields::of(block.body(), format!("{at}, role {name:?}"))?;
        let role = Role::parse(name.clone(), &role_fields)?;
        if roles.insert(name.clone(), role).is_some() {
            return Err(error(format!("role {name:?} is declared twice")));
        }
    }
    let default_role = fields.string("default_role")?.filter(|s| !s.is_empty());
    let default_role = default_role.map(|name| name.to_lowercase());
    if let Some(name) = default_role
        .as_ref()
        .filter(|name| !roles.contains_key(*name))
    {
        return Err(error(format!("default_role {name:?} names no role block")));
    }
    let bound_issuer = fields.string("bound_issuer")?.filter(|s| !s.is_empty());
    Ok(Mount {
        path,
        keys,
        bound_issuer: bound_issuer.or(discovered_issuer),
        supported_algs,
        default_role,
        roles,
    })
}

/// An auth mount's path below `auth/`: no empty, `.` or `..` segment, and not `token`
/// (Vault's token store, whose `lookup-self` and friends serve answers).
fn mount_path(spelling: &str) -> Result<String, ConfigError> {
    let path = spelling.trim_matches('/');
    let at = format!("auth {spelling:?}");
    let bad_segment = path
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad_segment {
        return Err(ConfigError::new(
            &at,
            "the path has an empty, . or .. segment",
        ));
    }
    if path == "token" || path.starts_with("token/") {
        return Err(ConfigError::new(
            &at,
            "auth/token is Vault's token store, not a path for another auth method",
        ));
    }
    Ok(path.to_owned())
}

/// A `*_ca_pem` setting's certificates; only beside its URL.
fn ca_pem(
    fields: &Fields,
    field: &str,
    url_set: bool,
    url_field: &str,
) -> Result<Option<Vec<rustls::pki_types::CertificateDer<'static>>>, ConfigError> {
    let Some(pem) = fields.string(field)?.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    if !url_set {
        return Err(ConfigError::new(
            &fields.at,
            format!("{field} is set without {url_field}"),
        ));
    }
    fetch::ca_certificates(&pem)
        .map(Some)
        .map_err(|e| ConfigError::new(&fields.at, format!("{field} {e}")))
}

/// One of `jwt_supported_algs`.
fn supported_alg(name: &str) -> Result<Algorithm, String> {
    match Algorithm::from_str(name) {
        Ok(alg) if DEFAULT_ALGS.contains(&alg) => Ok(alg),
        Ok(_) => Err(format!(
            "{name} is an HMAC algorithm, which needs a shared secret, not a public key"
        )),
        Err(_) if name.eq_ignore_ascii_case("none") => {
            Err("\"none\" would accept unsigned tokens".into())
        }
        Err(_) if name == "ES512" => Err("ES512 is not supported by serve".into()),
        Err(_) => Err(format!("unsupported signing algorithm {name:?}")),
    }
}
