//! Values at rest: AES-256-GCM, with the value's full etcd key as associated data.
//!
//! A sealed value is `version (1 byte, 1) || nonce (12 bytes) || ciphertext || tag (16 bytes)`;
//! the ciphertext is as long as the value. The nonce is random for every write (96 bits, as
//! NIST SP 800-38D recommends), and binding the etcd key into the tag means that a value copied
//! to another key, bucket or prefix no longer opens: whoever can write to etcd cannot swap
//! one record for another unnoticed. The version byte leaves room for another layout later.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// The layout a sealed value starts with.
pub const VERSION: u8 = 1;
/// Bytes of nonce in a sealed value.
pub const NONCE_LEN: usize = 12;
/// Bytes of authentication tag at the end of a sealed value.
pub const TAG_LEN: usize = 16;

/// The AES-256 key that seals every value. Neither `Debug` nor any error shows it.
#[derive(Clone)]
pub struct StoreKey(Aes256Gcm);

/// A sealed value that does not open: another key sealed it, or it was changed, moved or cut.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the value does not decrypt")]
pub struct Unsealable;

/// A value too large for AES-GCM (about 64 GiB), which etcd would refuse long before.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the value is too large to encrypt")]
pub struct TooLarge;

impl StoreKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> StoreKey {
        StoreKey(Aes256Gcm::new(&bytes.into()))
    }

    /// The key from 64 hexadecimal digits (either case). The error says what is wrong with
    /// the text without repeating any of it.
    pub fn from_hex(text: &str) -> Result<StoreKey, String> {
        if text.len() != 64 {
            return Err(format!(
                "it must be 64 hexadecimal digits (32 bytes), not {} characters",
                text.chars().count()
            ));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let digit = |d: u8| char::from(d).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => *byte = (high * 16 + low) as u8,
                _ => return Err("it must hold only hexadecimal digits (0-9, a-f, A-F)".to_string()),
            }
        }
        let key = StoreKey::from_bytes(bytes);
        bytes.fill(0);
        Ok(key)
    }

    /// Seal `value` for the etcd key `aad` with `nonce`, which must never repeat under this key.
    pub fn seal(
        &self,
        aad: &[u8],
        nonce: [u8; NONCE_LEN],
        value: &[u8],
    ) -> Result<Vec<u8>, TooLarge> {
        let payload = Payload { msg: value, aad };
        let ciphertext = self
            .0
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| TooLarge)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// The value that [`StoreKey::seal`] sealed for the etcd key `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unsealable> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(Unsealable);
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(Unsealable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        self.0
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| Unsealable)
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];

    fn key() -> StoreKey {
        StoreKey::from_hex(HEX).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_for_its_own_key() {
        let sealed = key().seal(b"p/config/hoeg", NONCE, b"password").unwrap();
        assert_eq!(sealed.len(), 1 + NONCE_LEN + b"password".len() + TAG_LEN);
        assert_eq!(sealed[0], VERSION);
        assert_eq!(&sealed[1..1 + NONCE_LEN], &NONCE);
        assert!(!sealed.windows(8).any(|w| w == b"password"));
        assert_eq!(key().open(b"p/config/hoeg", &sealed).unwrap(), b"password");
        let empty = key().seal(b"p/config/hoeg", NONCE, b"").unwrap();
        assert_eq!(key().open(b"p/config/hoeg", &empty).unwrap(), b"");
    }

    #[test]
    fn hex_digits_of_either_case_give_the_same_key() {
        let sealed = key().seal(b"k", NONCE, b"v").unwrap();
        let upper = StoreKey::from_hex(&HEX.to_uppercase()).unwrap();
        assert_eq!(upper.open(b"k", &sealed).unwrap(), b"v");
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            StoreKey::from_bytes(bytes).open(b"k", &sealed).unwrap(),
            b"v"
        );
    }

    #[test]
    fn a_value_moved_to_another_etcd_key_does_not_open() {
        let sealed = key().seal(b"p/config/hoeg", NONCE, b"password").unwrap();
        for other in [
            &b"p/config/other"[..],
            b"p/token/hoeg",
            b"q/config/hoeg",
            b"",
        ] {
            assert_eq!(key().open(other, &sealed), Err(Unsealable));
        }
    }

    #[test]
    fn another_key_or_a_damaged_value_does_not_open() {
        let sealed = key().seal(b"k", NONCE, b"password").unwrap();
        let other = StoreKey::from_bytes([9; 32]);
        assert_eq!(other.open(b"k", &sealed), Err(Unsealable));
        for i in 0..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[i] ^= 1;
            assert_eq!(key().open(b"k", &damaged), Err(Unsealable), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert_eq!(
                key().open(b"k", &sealed[..len]),
                Err(Unsealable),
                "{len} bytes"
            );
        }
        assert_eq!(key().open(b"k", b"password"), Err(Unsealable));
    }

    #[test]
    fn a_bad_key_text_is_refused_without_being_repeated() {
        let not_hex = HEX.replace('a', "g");
        for bad in ["", "00", &HEX[1..], &format!("{HEX}0"), &not_hex] {
            let reason = StoreKey::from_hex(bad).unwrap_err();
            assert!(bad.len() < 2 || !reason.contains(bad), "{reason}");
        }
        assert!(
            StoreKey::from_hex(&not_hex)
                .unwrap_err()
                .contains("hexadecimal digits")
        );
        let accented = format!("é{}", &HEX[2..]);
        assert!(StoreKey::from_hex(&accented).is_err());
        assert_eq!(format!("{:?}", key()), "StoreKey(..)");
    }
}
