//! HS256 JSON Web Tokens, signed with a key that lives only as long as the fake. Real JWTs so
//! that clients which read the `exp` claim to cache their login see what the Hub would send.
//! Whether a token is still honoured is decided by the hub's session table, not here.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The claims of a JWT the fake issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account's uuid.
    pub sub: String,
    pub username: String,
    pub iat: u64,
    pub exp: u64,
    /// Unique per login; the key of the hub's session table.
    pub jti: String,
    pub iss: String,
    /// The login used a personal access token rather than the password; such JWTs are refused
    /// on the access-token endpoints.
    pub from_pat: bool,
    /// The login used an organization access token (`username` is then the organization's
    /// name); such JWTs are refused on the access-token endpoints too.
    pub from_oat: bool,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

pub fn sign(key: &[u8], claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = URL_SAFE_NO_PAD.encode(mac(key, &signing_input).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The claims of `token` when it is a well-formed HS256 JWT signed with `key`.
pub fn verify(key: &[u8], token: &str) -> Option<Claims> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    mac(key, signing_input).verify_slice(&signature).ok()?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header["alg"] != "HS256" {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn mac(key: &[u8], input: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(input.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sub: "uuid".into(),
            username: "alice".into(),
            iat: 1,
            exp: 2,
            jti: "j".into(),
            iss: "fakehub".into(),
            from_pat: false,
            from_oat: false,
        }
    }

    #[test]
    fn round_trip() {
        let token = sign(b"key", &claims());
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(verify(b"key", &token), Some(claims()));
    }

    #[test]
    fn other_key_or_tampering_is_rejected() {
        let token = sign(b"key", &claims());
        assert_eq!(verify(b"other", &token), None);
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                from_pat: true,
                ..claims()
            })
            .unwrap(),
        );
        assert_eq!(
            verify(b"key", &format!("{head}.{forged_payload}.{sig}")),
            None
        );
        assert_eq!(verify(b"key", "not-a-jwt"), None);
    }
}
