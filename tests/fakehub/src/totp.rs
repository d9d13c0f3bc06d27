//! RFC 6238 time-based one-time passwords (HMAC-SHA1, 30-second step, 6 digits), as Docker Hub's
//! 2FA uses. Public so that tests can compute the code a user would type.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Length of one TOTP time step in seconds.
pub const STEP: u64 = 30;

/// The 6-digit code for `secret` (base32, case and padding ignored) at `unix_time`, or `None`
/// when the secret is not valid base32.
pub fn code(secret: &str, unix_time: u64) -> Option<String> {
    let key = decode_secret(secret)?;
    Some(hotp(&key, unix_time / STEP))
}

/// The code for `secret` right now. Panics on a secret that is not base32, since only tests
/// call this with secrets they chose.
pub fn current_code(secret: &str) -> String {
    code(secret, crate::clock::unix_now()).expect("TOTP secret must be base32")
}

/// Whether `code` is valid for `secret` at `unix_time`, allowing one step of clock drift either
/// way as authenticator apps and servers commonly do.
pub fn verify(secret: &str, code: &str, unix_time: u64) -> bool {
    let Some(key) = decode_secret(secret) else {
        return false;
    };
    let counter = unix_time / STEP;
    [counter.saturating_sub(1), counter, counter + 1]
        .iter()
        .any(|&c| hotp(&key, c) == code)
}

fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let cleaned: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(cleaned.as_bytes()).ok()
}

/// RFC 4226 HOTP truncated to 6 digits.
fn hotp(key: &[u8], counter: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset],
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", word % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Base32 of the RFC 6238 SHA-1 test seed "12345678901234567890".
    const RFC_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc6238_vectors_last_six_digits() {
        for (time, expected) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code(RFC_SEED, time).unwrap(), expected, "at {time}");
        }
    }

    #[test]
    fn verify_allows_one_step_of_drift_only() {
        let now = 1_234_567_890;
        let previous = code(RFC_SEED, now - STEP).unwrap();
        let next = code(RFC_SEED, now + STEP).unwrap();
        let far = code(RFC_SEED, now + 3 * STEP).unwrap();
        assert!(verify(RFC_SEED, &previous, now));
        assert!(verify(RFC_SEED, &next, now));
        assert!(!verify(RFC_SEED, &far, now));
    }

    #[test]
    fn secrets_are_case_and_padding_insensitive() {
        let lower = RFC_SEED.to_lowercase() + "====";
        assert_eq!(code(&lower, 59).unwrap(), "287082");
        assert!(code("not base32!", 59).is_none());
    }
}
