//! `auth/<path>/login`: a role's checks on a JWT, in the order and words of OpenBao's
//! `pathLogin` (`builtin/credential/jwt/path_login.go`) and of hashicorp/cap's
//! `jwt.Validator.Validate`, which it calls.
//!
//! The signature is verified by jsonwebtoken, with the key [`crate::keys`] picks for the
//! token's `alg` and `kid`. Before that, only the header is read (to refuse `alg: none`, HMAC
//! and algorithms the mount does not accept by name, and to find the key); after it, the
//! registered claims are checked as cap checks them, jsonwebtoken's own time and audience
//! checks being off because their rules differ (cap's leeways, below).
//!
//! Time claims, with the role's leeways (seconds; unset or 0 means Vault's default, a
//! negative value means none):
//! - at least one of `iat`, `nbf`, `exp` must be present;
//! - a missing `exp` is the later of `iat` and `nbf` plus `expiration_leeway` (default 150);
//! - a missing `nbf` is `iat`, or without `iat` the `exp` less `not_before_leeway` (150);
//! - the token is refused when now + `clock_skew_leeway` (default 60) is before `nbf` or
//!   `iat`, or now − `clock_skew_leeway` is after `exp`.
//!
//! So, as in Vault, `expiration_leeway` and `not_before_leeway` only stand in for a missing
//! claim; the clock skew leeway is what widens the window of a token that has them.

use crate::claims::{self, Claim};
use crate::config::KeySet;
use crate::keys::{self, Choice};
use crate::role::Role;
use crate::{JwtAuth, Login, LoginError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest token taken, in bytes (16 KiB): CI identity tokens are around 1 KiB.
pub const MAX_TOKEN: usize = 16 * 1024;

/// Vault's default `expiration_leeway` and `not_before_leeway` (cap's
/// `DefaultLeewaySeconds`).
const DEFAULT_LEEWAY: i64 = 150;
/// Vault's default `clock_skew_leeway` (go-jose's `jwt.DefaultLeeway`).
const DEFAULT_CLOCK_SKEW: i64 = 60;

pub(crate) async fn login(
    auth: &JwtAuth,
    role: Option<&str>,
    jwt: Option<&str>,
) -> Result<Login, LoginError> {
    let mount = &auth.mount;
    let role_name = match role.map(str::to_lowercase).filter(|r| !r.is_empty()) {
        Some(name) => name,
        None => mount
            .default_role
            .clone()
            .ok_or_else(|| LoginError::bad("missing role"))?,
    };
    let role = mount
        .roles
        .get(&role_name)
        .ok_or_else(|| LoginError::bad(format!("role {role_name:?} could not be found")))?;
    // go-jose, which OpenBao parses with, strips whitespace: a token read with its newline
    // logs in there too.
    let token = jwt.unwrap_or_default().trim();
    if token.is_empty() {
        return Err(LoginError::bad("missing token"));
    }
    let claims = verify(auth, role, token, now()).await?;

    // OpenBao's strict audience rule: a token for some audience needs a role that names it.
    let audience = claims::get(&claims, "aud");
    if matches!(audience, Some(Claim::List(aud)) if !aud.is_empty())
        && role.bound_audiences.is_empty()
    {
        return Err(LoginError::bad(
            "audience claim found in JWT but no audiences bound to the role",
        ));
    }
    let alias_name = claims::user(&claims, &role.user_claim, role.user_claim_json_pointer)
        .map_err(LoginError::bad)?
        .to_owned();
    let mut metadata = claims::metadata(&claims, &role.claim_mappings).map_err(LoginError::bad)?;
    metadata.insert("role".into(), role.name.clone());
    claims::check_bound(&claims, &role.bound_claims, role.bound_claims_glob)
        .map_err(|e| LoginError::bad(format!("error validating claims: {e}")))?;

    // Vault's token store puts the mount's path before the login's display name.
    let display_name = format!("{}-{alias_name}", mount.path.replace('/', "-"));
    Ok(Login {
        role: role.name.clone(),
        display_name: display_name.trim_end_matches('-').to_owned(),
        alias_name,
        policies: role.token_policies.clone(),
        no_default_policy: role.token_no_default_policy,
        ttl: role.token_ttl,
        max_ttl: role.token_max_ttl,
        explicit_max_ttl: role.token_explicit_max_ttl,
        metadata,
    })
}

fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |d| d.as_secs() as i64)
}

fn invalid(problem: impl std::fmt::Display) -> LoginError {
    LoginError::bad(format!("error validating token: {problem}"))
}

fn malformed(problem: impl std::fmt::Display) -> LoginError {
    invalid(format!("malformed token: {problem}"))
}

/// The token's claims once its signature, issuer, subject, audience and times are checked
/// (cap's `Validate`), at `now` (seconds since the epoch).
pub(crate) async fn verify(
    auth: &JwtAuth,
    role: &Role,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, LoginError> {
    let mount = &auth.mount;
    if token.len() > MAX_TOKEN {
        return Err(invalid(format!(
            "the token is {} bytes, more than the {MAX_TOKEN} bytes (16 KiB) serve accepts",
            token.len()
        )));
    }
    let (alg, kid) = header(token)?;
    if !mount.supported_algs.contains(&alg) {
        return Err(invalid(format!(
            "invalid algorithm (alg) header parameter: token signed with unexpected algorithm \
             {alg:?} (jwt_supported_algs: {:?})",
            mount.supported_algs
        )));
    }
    let candidates = match &mount.keys {
        KeySet::Static(keys) => match keys::choose_static(keys, alg) {
            Choice::Keys(keys) => keys,
            Choice::Refused(why) => {
                return Err(invalid(format!("error verifying token signature: {why}")));
            }
            Choice::Unknown => Vec::new(),
        },
        KeySet::Remote(remote) => remote.choose(alg, kid.as_deref()).await?,
    };
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let mut failure = None;
    let mut claims = None;
    for candidate in &candidates {
        match jsonwebtoken::decode::<Map<String, Value>>(token, &candidate.key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => failure = Some(e),
        }
    }
    let Some(claims) = claims else {
        let why = match failure.as_ref().map(|e| e.kind()) {
            Some(ErrorKind::InvalidSignature) | None => "the signature does not match".into(),
            Some(ErrorKind::Json(e)) => return Err(malformed(format!("claims: {e}"))),
            Some(ErrorKind::Base64(_)) => return Err(malformed("a part is not base64url")),
            Some(ErrorKind::Utf8(_)) => return Err(malformed("claims are not UTF-8")),
            Some(other) => format!("{other:?}"),
        };
        return Err(invalid(format!("error verifying token signature: {why}")));
    };
    check_registered(&claims, mount.bound_issuer.as_deref(), role, now)?;
    Ok(claims)
}

/// The header's `alg` and `kid`, read only to choose the key: a JWS in compact form is three
/// base64url parts (RFC 7515 §7.1); `alg: none` and HMAC are refused here.
fn header(token: &str) -> Result<(Algorithm, Option<String>), LoginError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed(format!(
            "{} parts where a JWT has three base64url parts separated by dots",
            parts.len()
        )));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|_| malformed("the header is not base64url"))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| malformed(format!("header: {e}")))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        _ => return Err(malformed("the header has no alg")),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(malformed("the header's kid is not a string")),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(invalid(
            "invalid algorithm (alg) header parameter: the token is unsigned (alg \"none\")",
        ));
    }
    let alg = match Algorithm::from_str(alg) {
        Ok(alg) => alg,
        Err(_) => {
            return Err(invalid(format!(
                "invalid algorithm (alg) header parameter: {alg:?} is not a JWS algorithm \
                 serve verifies"
            )));
        }
    };
    if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
        return Err(invalid(format!(
            "invalid algorithm (alg) header parameter: {alg:?} is an HMAC algorithm, which \
             needs a shared secret: public keys cannot verify it"
        )));
    }
    Ok((alg, kid))
}

/// cap's checks of `iss`, `sub`, `aud`, `exp`, `nbf` and `iat`, with its messages.
fn check_registered(
    claims: &Map<String, Value>,
    bound_issuer: Option<&str>,
    role: &Role,
    now: i64,
) -> Result<(), LoginError> {
    let string = |name: &str| match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(malformed(format!("the {name} claim is not a string"))),
    };
    let issuer = string("iss")?;
    let subject = string("sub")?;
    let audience: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str())
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("the aud claim is not a string or list of strings"))?,
        Some(_) => {
            return Err(malformed(
                "the aud claim is not a string or list of strings",
            ));
        }
    };
    if bound_issuer.is_some_and(|expected| issuer != Some(expected)) {
        return Err(invalid("invalid issuer (iss) claim"));
    }
    if role
        .bound_subject
        .as_deref()
        .is_some_and(|expected| subject != Some(expected))
    {
        return Err(invalid("invalid subject (sub) claim"));
    }
    let bound = &role.bound_audiences;
    if !bound.is_empty() && !bound.iter().any(|b| audience.contains(&b.as_str())) {
        return Err(invalid(
            "invalid audience (aud) claim: audience claim does not match any expected audience",
        ));
    }
    let time = |name: &str| match claims.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(n.as_f64().map_or(0, |f| f as i64)),
        Some(_) => Err(malformed(format!("the {name} claim is not a number"))),
    };
    check_times(
        time("iat")?,
        time("nbf")?,
        time("exp")?,
        Leeways::of(role),
        now,
    )
}

/// A role's leeways with Vault's defaults applied (seconds, never negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leeways {
    pub clock_skew: i64,
    pub expiration: i64,
    pub not_before: i64,
}

impl Leeways {
    pub fn of(role: &Role) -> Leeways {
        let effective = |configured: Option<i64>, default: i64| match configured {
            None | Some(0) => default,
            Some(seconds) if seconds < 0 => 0,
            Some(seconds) => seconds,
        };
        Leeways {
            clock_skew: effective(role.clock_skew_leeway, DEFAULT_CLOCK_SKEW),
            expiration: effective(role.expiration_leeway, DEFAULT_LEEWAY),
            not_before: effective(role.not_before_leeway, DEFAULT_LEEWAY),
        }
    }
}

/// cap's time rules (see the module's documentation); 0 is an absent claim, as in go-jose.
pub(crate) fn check_times(
    iat: i64,
    nbf: i64,
    exp: i64,
    leeways: Leeways,
    now: i64,
) -> Result<(), LoginError> {
    if iat == 0 && nbf == 0 && exp == 0 {
        return Err(invalid(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
        ));
    }
    let exp = match exp {
        0 => iat.max(nbf) + leeways.expiration,
        exp => exp,
    };
    let nbf = match (nbf, iat) {
        (0, 0) => exp - leeways.not_before,
        (0, iat) => iat,
        (nbf, _) => nbf,
    };
    let skew = leeways.clock_skew;
    if now + skew < nbf {
        return Err(invalid(
            "invalid not before (nbf) claim: token not yet valid",
        ));
    }
    if now - skew > exp {
        return Err(invalid(
            "invalid expiration time (exp) claim: token is expired",
        ));
    }
    if iat != 0 && now + skew < iat {
        return Err(invalid(
            "invalid issued at (iat) claim: token issued in the future",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DEFAULTS: Leeways = Leeways {
        clock_skew: 60,
        expiration: 150,
        not_before: 150,
    };
    const NONE: Leeways = Leeways {
        clock_skew: 0,
        expiration: 0,
        not_before: 0,
    };

    fn ok(iat: i64, nbf: i64, exp: i64, leeways: Leeways) -> bool {
        check_times(iat, nbf, exp, leeways, NOW).is_ok()
    }

    #[test]
    fn the_clock_skew_leeway_widens_exp_nbf_and_iat() {
        assert!(ok(NOW - 100, NOW - 100, NOW - 59, DEFAULTS));
        assert!(!ok(NOW - 100, NOW - 100, NOW - 61, DEFAULTS));
        assert!(ok(NOW + 59, NOW + 59, NOW + 600, DEFAULTS));
        assert!(!ok(NOW, NOW + 61, NOW + 600, DEFAULTS));
        assert!(!ok(NOW + 61, 0, NOW + 600, DEFAULTS));
        // A negative leeway is none at all.
        assert!(!ok(NOW - 100, NOW - 100, NOW - 1, NONE));
        assert!(ok(NOW - 100, NOW - 100, NOW, NONE));
    }

    #[test]
    fn the_expiration_and_not_before_leeways_stand_in_for_missing_claims() {
        // No exp: valid until the later of iat and nbf plus expiration_leeway (+ skew).
        assert!(ok(NOW - 200, 0, 0, DEFAULTS));
        assert!(!ok(NOW - 211, 0, 0, DEFAULTS));
        assert!(ok(NOW - 300, NOW - 100, 0, DEFAULTS));
        // A present exp is not extended by expiration_leeway.
        let long = Leeways {
            expiration: 3600,
            ..DEFAULTS
        };
        assert!(!ok(NOW - 300, 0, NOW - 100, long));
        // No nbf and no iat: valid from exp less not_before_leeway (- skew).
        assert!(ok(0, 0, NOW + 200, DEFAULTS));
        assert!(!ok(0, 0, NOW + 211, DEFAULTS));
    }

    #[test]
    fn a_token_needs_one_time_claim() {
        let error = check_times(0, 0, 0, DEFAULTS, NOW).unwrap_err();
        assert!(error.message.contains("no issued at (iat)"), "{error}");
    }

    #[test]
    fn unset_or_zero_leeways_are_vaults_defaults_and_negative_ones_none() {
        let role = |c, e, n| Role {
            clock_skew_leeway: c,
            expiration_leeway: e,
            not_before_leeway: n,
            ..crate::tests::role()
        };
        assert_eq!(Leeways::of(&role(None, None, None)), DEFAULTS);
        assert_eq!(Leeways::of(&role(Some(0), Some(0), Some(0))), DEFAULTS);
        assert_eq!(Leeways::of(&role(Some(-1), Some(-5), Some(-1))), NONE);
        let set = Leeways::of(&role(Some(5), Some(10), Some(20)));
        assert_eq!(
            (set.clock_skew, set.expiration, set.not_before),
            (5, 10, 20)
        );
    }
}
