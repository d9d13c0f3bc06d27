//! The public keys a mount trusts, as read from `jwt_validation_pubkeys` (PEM) or from a
//! JWKS (RFC 7517), and the rule that picks the keys a token is checked with.
//!
//! Only signature keys that jsonwebtoken verifies are kept: RSA (RS256/384/512,
//! PS256/384/512), EC P-256 (ES256), EC P-384 (ES384) and Ed25519 (EdDSA). A JWKS entry that
//! is anything else (a symmetric `oct` key, an encryption key, P-521) is skipped, never
//! offered to a token: an `oct` key would let a token signed with HS256 verify against a
//! secret the issuer published.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use serde_json::Value;
use std::str::FromStr;

/// What a key is, which decides the algorithms it verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// Whether a token signed with `alg` can be verified with a key of this kind.
    pub fn verifies(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::P256 => "a P-256 key",
            KeyKind::P384 => "a P-384 key",
            KeyKind::Ed25519 => "an Ed25519 key",
        }
    }
}

/// One trusted key.
#[derive(Debug, Clone)]
pub(crate) struct PublicKey {
    pub kind: KeyKind,
    /// The JWK's `kid`; PEM keys have none.
    pub kid: Option<String>,
    /// The JWK's `alg`: when present, the only algorithm the key verifies (RFC 7517 §4.4).
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl PublicKey {
    fn verifies(&self, alg: Algorithm) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|only| only == alg)
    }
}

/// A key of `jwt_validation_pubkeys`: one PEM block, a `PUBLIC KEY` (SubjectPublicKeyInfo)
/// or a `CERTIFICATE` whose key is taken, as OpenBao's `certutil.ParsePublicKeyPEM` accepts.
/// RSA keys have 2048 to 8192 bits, as aws-lc-rs verifies them.
pub(crate) fn from_pem(pem: &str) -> Result<PublicKey, String> {
    let mut sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes());
    let (kind, der) = match sections.next() {
        Some(Ok(section)) => section,
        Some(Err(e)) => return Err(format!("not PEM: {e}")),
        None => return Err("no PEM block".into()),
    };
    if sections.next().is_some() {
        return Err("more than one PEM block in one key".into());
    }
    let spki = match kind {
        SectionKind::PublicKey => SubjectPublicKeyInfoDer::from(der),
        SectionKind::Certificate => {
            let cert = CertificateDer::from(der);
            let cert = webpki::EndEntityCert::try_from(&cert)
                .map_err(|e| format!("not a readable certificate: {e}"))?;
            cert.subject_public_key_info()
        }
        other => {
            return Err(format!(
                "a {other:?} PEM block, not a PUBLIC KEY or CERTIFICATE"
            ));
        }
    };
    let kind = spki_kind(&spki).ok_or(
        "not an RSA (2048 to 8192 bits), EC P-256, EC P-384 or Ed25519 public key".to_string(),
    )?;
    let key = match kind {
        KeyKind::Rsa => DecodingKey::from_rsa_der(&spki),
        KeyKind::P256 | KeyKind::P384 => DecodingKey::from_ec_der(&spki),
        KeyKind::Ed25519 => DecodingKey::from_ed_der(&spki),
    };
    Ok(PublicKey {
        kind,
        kid: None,
        alg: None,
        key,
    })
}

/// The kind of a SubjectPublicKeyInfo, as aws-lc-rs parses it (the verifier jsonwebtoken
/// uses, so a key kept here is one it can use).
fn spki_kind(spki: &[u8]) -> Option<KeyKind> {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
        UnparsedPublicKey, VerificationAlgorithm,
    };
    let kinds: [(&'static dyn VerificationAlgorithm, KeyKind); 4] = [
        (&RSA_PKCS1_2048_8192_SHA256, KeyKind::Rsa),
        (&ECDSA_P256_SHA256_FIXED, KeyKind::P256),
        (&ECDSA_P384_SHA384_FIXED, KeyKind::P384),
        (&ED25519, KeyKind::Ed25519),
    ];
    kinds
        .into_iter()
        .find(|(algorithm, _)| UnparsedPublicKey::new(*algorithm, spki).parse().is_ok())
        .map(|(_, kind)| kind)
}

/// The signature keys of a JWKS document (`{"keys": [...]}`), and how many entries were
/// skipped as unusable.
pub(crate) fn from_jwks(document: &Value) -> Result<(Vec<PublicKey>, usize), String> {
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWKS: no \"keys\" list")?;
    let keys: Vec<PublicKey> = entries.iter().filter_map(from_jwk).collect();
    let skipped = entries.len() - keys.len();
    Ok((keys, skipped))
}

fn from_jwk(entry: &Value) -> Option<PublicKey> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        // Encryption and HMAC algorithms, and names jsonwebtoken does not know.
        Some(named) => match Algorithm::from_str(&named.to_string()) {
            Ok(alg) if alg.family() != jsonwebtoken::AlgorithmFamily::Hmac => Some(alg),
            _ => return None,
        },
    };
    let (kind, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => (
            KeyKind::Rsa,
            DecodingKey::from_rsa_components(&rsa.n, &rsa.e),
        ),
        AlgorithmParameters::EllipticCurve(ec) => {
            let kind = match ec.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => return None,
            };
            (kind, DecodingKey::from_ec_components(&ec.x, &ec.y))
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            (KeyKind::Ed25519, DecodingKey::from_ed_components(&okp.x))
        }
        _ => return None,
    };
    let key = PublicKey {
        kind,
        kid: jwk.common.key_id.clone(),
        alg,
        key: key.ok()?,
    };
    key.alg.is_none_or(|alg| kind.verifies(alg)).then_some(key)
}

/// Which keys a token is checked with.
#[derive(Clone)]
pub(crate) enum Choice {
    /// These, in order; the first that verifies the signature wins.
    Keys(Vec<PublicKey>),
    /// None of the set: a newer set may have it.
    Unknown,
    /// The set has the key but it cannot verify this token; the reason.
    Refused(String),
}

/// The static keys of `jwt_validation_pubkeys` that could verify a token signed with `alg`:
/// each in turn, as OpenBao's static key set tries them (PEM keys have no `kid`).
pub(crate) fn choose_static(keys: &[PublicKey], alg: Algorithm) -> Choice {
    let fitting: Vec<PublicKey> = keys.iter().filter(|k| k.verifies(alg)).cloned().collect();
    if fitting.is_empty() {
        return Choice::Refused(format!(
            "no key of jwt_validation_pubkeys verifies {alg:?} tokens"
        ));
    }
    Choice::Keys(fitting)
}

/// The key of a JWKS for a token with `alg` and `kid`:
/// - with a `kid`, the keys with that `kid` (RFC 7515 §4.1.4); if none is for `alg`, the token
///   is refused rather than tried with another key;
/// - without a `kid`, the set's only key; or, in a set of several, the one key for `alg`.
///   Where several could verify it the token is refused: go-oidc would try each, but a token
///   that does not say which key signed it should not make serve try every key the issuer
///   publishes.
pub(crate) fn choose_jwks(keys: &[PublicKey], alg: Algorithm, kid: Option<&str>) -> Choice {
    let Some(kid) = kid else {
        if let [only] = keys {
            return match only.verifies(alg) {
                true => Choice::Keys(vec![only.clone()]),
                false => Choice::Refused(misfit(only, alg)),
            };
        }
        let fitting: Vec<&PublicKey> = keys.iter().filter(|k| k.verifies(alg)).collect();
        return match fitting[..] {
            [] => Choice::Unknown,
            [one] => Choice::Keys(vec![one.clone()]),
            _ => Choice::Refused(format!(
                "the token has no kid and {} keys of the JWKS verify {alg:?}: serve needs \
                 the kid to choose one",
                fitting.len()
            )),
        };
    };
    let named: Vec<&PublicKey> = keys
        .iter()
        .filter(|k| k.kid.as_deref() == Some(kid))
        .collect();
    let Some(first) = named.first() else {
        return Choice::Unknown;
    };
    let fitting: Vec<PublicKey> = named
        .iter()
        .filter(|k| k.verifies(alg))
        .map(|k| (*k).clone())
        .collect();
    match fitting.is_empty() {
        true => Choice::Refused(misfit(first, alg)),
        false => Choice::Keys(fitting),
    }
}

fn misfit(key: &PublicKey, alg: Algorithm) -> String {
    let name = match &key.kid {
        Some(kid) => format!("key {kid:?}"),
        None => "the JWKS's one key".to_string(),
    };
    match key.alg {
        Some(only) if key.kind.verifies(alg) => {
            format!("{name} is for {only:?} only, and the token is signed with {alg:?}")
        }
        _ => format!(
            "{name} is {}, which cannot verify a token signed with {alg:?}",
            key.kind.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwk(kty_fields: Value, kid: &str) -> Value {
        let mut entry = kty_fields;
        entry["kid"] = json!(kid);
        entry
    }

    fn rsa() -> Value {
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})
    }

    fn p256() -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB"})
    }

    fn kids(choice: &Choice) -> Vec<Option<String>> {
        match choice {
            Choice::Keys(keys) => keys.iter().map(|k| k.kid.clone()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_jwks_keeps_only_signature_keys_jsonwebtoken_verifies() {
        let document = json!({"keys": [
            jwk(rsa(), "rsa"),
            jwk(p256(), "ec"),
            jwk(json!({"kty": "EC", "crv": "P-384", "x": "AQAB", "y": "AQAB"}), "p384"),
            jwk(json!({"kty": "OKP", "crv": "Ed25519", "x": "AQAB"}), "ed"),
            jwk(json!({"kty": "EC", "crv": "P-521", "x": "AQAB", "y": "AQAB"}), "p521"),
            jwk(json!({"kty": "oct", "k": "c2VjcmV0"}), "secret"),
            jwk(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc"}), "enc"),
            jwk(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RSA-OAEP"}), "oaep"),
            jwk(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "HS256"}), "hs"),
            jwk(json!({"kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB", "alg": "RS256"}), "odd"),
            json!({"kty": "RSA"}),
        ]});
        let (keys, skipped) = from_jwks(&document).unwrap();
        let kinds: Vec<(Option<&str>, KeyKind)> =
            keys.iter().map(|k| (k.kid.as_deref(), k.kind)).collect();
        assert_eq!(
            kinds,
            [
                (Some("rsa"), KeyKind::Rsa),
                (Some("ec"), KeyKind::P256),
                (Some("p384"), KeyKind::P384),
                (Some("ed"), KeyKind::Ed25519),
            ]
        );
        assert_eq!(skipped, 7);
        assert!(from_jwks(&json!({"keys": {}})).is_err());
    }

    #[test]
    fn a_kid_names_the_key_and_a_missing_kid_needs_an_unambiguous_set() {
        let (keys, _) = from_jwks(&json!({"keys": [
            jwk(rsa(), "rs-1"), jwk(rsa(), "rs-2"), jwk(p256(), "es-1"),
        ]}))
        .unwrap();
        let rs256 = Algorithm::RS256;
        assert_eq!(
            kids(&choose_jwks(&keys, rs256, Some("rs-2"))),
            [Some("rs-2".into())]
        );
        assert!(matches!(
            choose_jwks(&keys, rs256, Some("rs-9")),
            Choice::Unknown
        ));
        let Choice::Refused(why) = choose_jwks(&keys, rs256, Some("es-1")) else {
            panic!("an EC key offered for RS256");
        };
        assert_eq!(
            why,
            "key \"es-1\" is a P-256 key, which cannot verify a token signed with RS256"
        );
        // No kid: the one ES256 key, but two RSA keys are ambiguous.
        assert_eq!(
            kids(&choose_jwks(&keys, Algorithm::ES256, None)),
            [Some("es-1".into())]
        );
        let Choice::Refused(why) = choose_jwks(&keys, rs256, None) else {
            panic!("an ambiguous kid-less token accepted");
        };
        assert!(why.contains("no kid and 2 keys"), "{why}");
        assert!(matches!(
            choose_jwks(&keys, Algorithm::EdDSA, None),
            Choice::Unknown
        ));
        // A set of one: its key, whatever its kid.
        let one = &keys[2..];
        assert_eq!(
            kids(&choose_jwks(one, Algorithm::ES256, None)),
            [Some("es-1".into())]
        );
        assert!(matches!(choose_jwks(one, rs256, None), Choice::Refused(_)));
    }

    #[test]
    fn a_jwk_alg_restricts_its_key() {
        let mut entry = jwk(rsa(), "rs");
        entry["alg"] = json!("RS256");
        let (keys, _) = from_jwks(&json!({"keys": [entry]})).unwrap();
        assert_eq!(
            kids(&choose_jwks(&keys, Algorithm::RS256, Some("rs"))).len(),
            1
        );
        let Choice::Refused(why) = choose_jwks(&keys, Algorithm::PS256, Some("rs")) else {
            panic!("an RS256 key used for PS256");
        };
        assert_eq!(
            why,
            "key \"rs\" is for RS256 only, and the token is signed with PS256"
        );
    }

    #[test]
    fn pem_keys_are_public_keys_or_certificates() {
        assert!(from_pem("").unwrap_err().contains("no PEM block"));
        let junk = "-----BEGIN PUBLIC KEY-----\nAQAB\n-----END PUBLIC KEY-----\n";
        assert!(from_pem(junk).unwrap_err().starts_with("not an RSA"));
        let private = "-----BEGIN PRIVATE KEY-----\nAQAB\n-----END PRIVATE KEY-----\n";
        assert!(from_pem(private).unwrap_err().contains("not a PUBLIC KEY"));
    }
}
