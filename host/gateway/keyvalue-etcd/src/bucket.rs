//! A bucket of `wasi:keyvalue/store` and `wasi:keyvalue/atomics` as plain Rust: the operations
//! on etcd that each function of the interfaces makes.
//!
//! | interface function | etcd                                                        |
//! |--------------------|-------------------------------------------------------------|
//! | `get`              | `Range` of the key                                          |
//! | `set`              | `Put`                                                       |
//! | `delete`           | `DeleteRange` of the key                                    |
//! | `exists`           | `Range` of the key with `count_only`                        |
//! | `list-keys`        | `Range` of the bucket's folder with `keys_only`, by key     |
//! | `increment`        | `Range`, then `Txn` "unchanged since read? put", retried    |
//!
//! Every value is sealed by [`crate::seal`] under its full etcd key.

use crate::config::Config;
use crate::etcd::{
    Client, Compare, DeleteRangeRequest, EtcdError, KeyValue, PutRequest, RangeRequest, RequestOp,
    Transport, TxnRequest,
};
use crate::layout::{folder, range_end, valid_bucket, valid_key};
use crate::seal::{NONCE_LEN, StoreKey};

/// The most etcd keys one `list-keys` page reads.
pub const PAGE_SIZE: u64 = 1000;
/// How many times `increment` tries its transaction before it gives up.
pub const INCREMENT_TRIES: usize = 16;

/// Bits of a `list-keys` cursor that count the keys already read; the bits above hold the
/// etcd revision the listing reads at.
const OFFSET_BITS: u32 = 24;

/// The errors of `wasi:keyvalue/store`, as this store raises them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `no-such-store`: the bucket name breaks the rules of [`crate::layout::valid_bucket`].
    #[error("no such store")]
    NoSuchStore,
    /// `other`: what failed, with the bucket and key, never a value or the store key.
    #[error("{0}")]
    Other(String),
}

/// One page of `list-keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// The bucket's keys, in ascending bytewise order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` after the last page.
    pub cursor: Option<u64>,
}

/// An open bucket: its folder in etcd, the key that seals its values and a client of etcd.
pub struct Bucket<T> {
    name: String,
    folder: Vec<u8>,
    key: StoreKey,
    etcd: Client<T>,
    random: fn() -> [u8; NONCE_LEN],
    page_size: u64,
}

impl<T: Transport> Bucket<T> {
    /// Open bucket `name` of the store that `config` describes, reaching etcd through
    /// `transport`. `random` must return fresh random bytes at every call: each sealed value's
    /// nonce, and the pause between two tries of `increment`. Nothing is sent to etcd yet.
    ///
    /// A name that breaks the bucket rules is [`Error::NoSuchStore`].
    pub fn open(
        config: &Config,
        transport: T,
        random: fn() -> [u8; NONCE_LEN],
        name: &str,
    ) -> Result<Bucket<T>, Error> {
        if !valid_bucket(name) {
            return Err(Error::NoSuchStore);
        }
        Ok(Bucket {
            name: name.to_string(),
            folder: folder(&config.prefix, name),
            key: config.key.clone(),
            etcd: Client::new(transport, config.endpoints.clone()),
            random,
            page_size: PAGE_SIZE,
        })
    }

    /// The same bucket with `list-keys` pages of at most `keys` etcd keys (at least 1)
    /// instead of [`PAGE_SIZE`].
    pub fn with_page_size(mut self, keys: u64) -> Bucket<T> {
        self.page_size = keys.max(1);
        self
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`, or `None` when it is absent.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let etcd_key = self.etcd_key(key)?;
        let found = self
            .etcd
            .range(&RangeRequest {
                key: etcd_key.clone(),
                ..RangeRequest::default()
            })
            .map_err(|e| self.failed("reading", key, e))?;
        match found.kvs.into_iter().next() {
            Some(kv) => self.unseal(key, &etcd_key, &kv.value).map(Some),
            None => Ok(None),
        }
    }

    /// Set `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        let etcd_key = self.etcd_key(key)?;
        let value = self.seal(key, &etcd_key, value)?;
        self.etcd
            .put(&PutRequest {
                key: etcd_key,
                value,
            })
            .map_err(|e| self.failed("writing", key, e))
    }

    /// Delete `key`; deleting an absent key succeeds.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        let etcd_key = self.etcd_key(key)?;
        self.etcd
            .delete_range(&DeleteRangeRequest {
                key: etcd_key,
                ..DeleteRangeRequest::default()
            })
            .map_err(|e| self.failed("deleting", key, e))
    }

    /// Whether `key` exists. The value is not read, so a value that does not decrypt still
    /// exists.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        let etcd_key = self.etcd_key(key)?;
        let found = self
            .etcd
            .range(&RangeRequest {
                key: etcd_key,
                count_only: true,
                ..RangeRequest::default()
            })
            .map_err(|e| self.failed("looking up", key, e))?;
        Ok(found.count > 0)
    }

    /// One page of the bucket's keys, in ascending bytewise order, starting at `cursor`.
    ///
    /// etcd returns a range in that order when it is not asked to sort (its index is a B-tree
    /// by key); asking for `sort_order: ASCEND` would make etcd 3.4 read the whole range before
    /// applying `limit`.
    ///
    /// The cursor is the etcd revision that the first page read at, shifted left by 24 bits,
    /// plus the number of etcd keys under the bucket's folder that the pages so far covered.
    /// Every page of one listing reads at that revision, so the pages together are one
    /// snapshot: each key that existed then is listed exactly once, whatever is written in
    /// between. Keys that are not keys of this bucket (a sub-folder's, or not UTF-8) are
    /// skipped but still counted. A listing fails when etcd has compacted away its revision
    /// (then start again without a cursor), past 2^24 keys, or past revision 2^40.
    ///
    /// etcd cannot start a range at an offset, so page `n` reads the `n * page` keys before
    /// it again: a listing costs O(keys² / page) keys read. The engine's buckets hold few keys,
    /// which one page of [`PAGE_SIZE`] returns whole with no cursor.
    pub fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, Error> {
        let (revision, offset) = match cursor {
            None => (0, 0),
            Some(cursor) => decode_cursor(cursor).ok_or_else(|| {
                Error::Other(format!(
                    "{cursor} is not a list-keys cursor of bucket {}: start again without one",
                    self.name
                ))
            })?,
        };
        let limit = offset.saturating_add(self.page_size);
        let found = self
            .etcd
            .range(&RangeRequest {
                key: self.folder.clone(),
                range_end: range_end(&self.folder),
                limit: i64::try_from(limit).unwrap_or(i64::MAX),
                revision,
                keys_only: true,
                ..RangeRequest::default()
            })
            .map_err(|e| Error::Other(format!("listing bucket {}: {e}", self.name)))?;
        let read = found.kvs.len() as u64;
        let keys = found
            .kvs
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .filter_map(|kv| self.key_of(kv))
            .collect();
        if !found.more {
            return Ok(KeyPage { keys, cursor: None });
        }
        let revision = if revision == 0 {
            found.header.revision
        } else {
            revision
        };
        let cursor = (read > offset)
            .then(|| encode_cursor(revision, read))
            .flatten()
            .ok_or_else(|| {
                Error::Other(format!(
                    "listing bucket {}: it is too large to list in pages ({read} keys read, at \
                     revision {revision})",
                    self.name
                ))
            })?;
        Ok(KeyPage {
            keys,
            cursor: Some(cursor),
        })
    }

    /// Add `delta` to the counter at `key` and return its new value; an absent key counts
    /// from 0.
    ///
    /// A counter's value is its 8 bytes, big-endian, sealed like any value, so `get` reads
    /// it. Each try reads the key, then puts the sum in an etcd transaction that holds only
    /// if the key's `mod_revision` is still the one read (0: still absent). Under concurrent
    /// increments each caller therefore gets a different value and no increment is lost.
    /// After a lost race it waits a random time below 2, 4, 8 … 256 ms, so that contenders
    /// fall out of step, and reads again; after [`INCREMENT_TRIES`] lost races it fails. When
    /// the transaction's answer is lost it fails saying the increment may or may not have
    /// happened. A value that is not 8 bytes, or a sum past `u64::MAX`, is an error and
    /// changes nothing.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        let etcd_key = self.etcd_key(key)?;
        for tries in 0..INCREMENT_TRIES {
            if tries > 0 {
                self.pause_after_lost_races(tries);
            }
            let found = self
                .etcd
                .range(&RangeRequest {
                    key: etcd_key.clone(),
                    ..RangeRequest::default()
                })
                .map_err(|e| self.failed("reading", key, e))?;
            let (mod_revision, value) = match found.kvs.first() {
                Some(kv) => (kv.mod_revision, self.counter(key, &etcd_key, kv)?),
                None => (0, 0),
            };
            let next = value.checked_add(delta).ok_or_else(|| {
                Error::Other(format!(
                    "incrementing {}/{key} by {delta} would pass the largest counter, {}",
                    self.name,
                    u64::MAX
                ))
            })?;
            let sealed = self.seal(key, &etcd_key, &next.to_be_bytes())?;
            let answer = self
                .etcd
                .txn(&TxnRequest {
                    compare: vec![Compare::mod_revision(etcd_key.clone(), mod_revision)],
                    success: vec![RequestOp::RequestPut(PutRequest {
                        key: etcd_key.clone(),
                        value: sealed,
                    })],
                })
                .map_err(|e| self.failed("incrementing", key, e))?;
            if answer.succeeded {
                return Ok(next);
            }
        }
        Err(Error::Other(format!(
            "incrementing {}/{key} failed: another writer changed it during each of \
             {INCREMENT_TRIES} tries; nothing was added",
            self.name
        )))
    }

    /// The etcd key of `key`, once it passed the key rules.
    fn etcd_key(&self, key: &str) -> Result<Vec<u8>, Error> {
        if !valid_key(key) {
            return Err(Error::Other(format!("invalid key {key:?}")));
        }
        let mut etcd_key = self.folder.clone();
        etcd_key.extend_from_slice(key.as_bytes());
        Ok(etcd_key)
    }

    /// The bucket key of an etcd key listed under the folder, unless it is no key of ours.
    fn key_of(&self, kv: KeyValue) -> Option<String> {
        let key = kv.key.strip_prefix(self.folder.as_slice())?;
        let key = std::str::from_utf8(key).ok()?;
        valid_key(key).then(|| key.to_string())
    }

    fn seal(&self, key: &str, etcd_key: &[u8], value: &[u8]) -> Result<Vec<u8>, Error> {
        self.key
            .seal(etcd_key, (self.random)(), value)
            .map_err(|e| Error::Other(format!("writing {}/{key}: {e}", self.name)))
    }

    fn unseal(&self, key: &str, etcd_key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        self.key.open(etcd_key, sealed).map_err(|_| {
            Error::Other(format!(
                "the value of {}/{key} does not decrypt: wrong DOCKERHUB_SECRETS_STORE_KEY or a \
                 damaged value",
                self.name
            ))
        })
    }

    fn counter(&self, key: &str, etcd_key: &[u8], kv: &KeyValue) -> Result<u64, Error> {
        let value = self.unseal(key, etcd_key, &kv.value)?;
        let bytes: [u8; 8] = value.as_slice().try_into().map_err(|_| {
            Error::Other(format!(
                "{}/{key} is not a counter: its value has {} bytes, a counter's has 8",
                self.name,
                value.len()
            ))
        })?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Wait a random time below `2^lost` ms, at most 256 ms ("full jitter" backoff).
    fn pause_after_lost_races(&self, lost: usize) {
        let [a, b, ..] = (self.random)();
        let bound = 1u64 << lost.min(8);
        let micros = u64::from(u16::from_le_bytes([a, b])) * bound * 1000 / 65536;
        std::thread::sleep(std::time::Duration::from_micros(micros));
    }

    fn failed(&self, doing: &str, key: &str, e: EtcdError) -> Error {
        Error::Other(format!("{doing} {}/{key}: {e}", self.name))
    }
}

/// The cursor of a listing at `revision` that has read `offset` keys, when both fit.
fn encode_cursor(revision: i64, offset: u64) -> Option<u64> {
    let revision = u64::try_from(revision).ok().filter(|r| *r > 0)?;
    if offset >> OFFSET_BITS != 0 || revision >> (64 - OFFSET_BITS) != 0 {
        return None;
    }
    Some(revision << OFFSET_BITS | offset)
}

/// The revision and offset in a cursor that [`encode_cursor`] could have made.
fn decode_cursor(cursor: u64) -> Option<(i64, u64)> {
    let revision = i64::try_from(cursor >> OFFSET_BITS)
        .ok()
        .filter(|r| *r > 0)?;
    Some((revision, cursor & ((1 << OFFSET_BITS) - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::{Reply, TransportError};
    use crate::{Endpoint, config};

    #[test]
    fn a_cursor_holds_a_revision_and_an_offset() {
        for (revision, offset) in [(1, 0), (1, 1000), (7, (1 << 24) - 1), ((1 << 40) - 1, 5)] {
            let cursor = encode_cursor(revision, offset).unwrap();
            assert_eq!(decode_cursor(cursor), Some((revision, offset)));
        }
        assert_eq!(encode_cursor(3, 1000), Some(3 << 24 | 1000));
        assert_eq!(encode_cursor(0, 1), None);
        assert_eq!(encode_cursor(-1, 1), None);
        assert_eq!(encode_cursor(1, 1 << 24), None);
        assert_eq!(encode_cursor(1 << 40, 0), None);
        // Revision 0 would mean "the latest" to etcd: no cursor holds it.
        assert_eq!(decode_cursor(0), None);
        assert_eq!(decode_cursor((1 << 24) - 1), None);
    }

    /// A transport that must never be used.
    struct Unused;

    impl Transport for Unused {
        fn post(&self, _: &Endpoint, path: &str, _: &[u8]) -> Result<Reply, TransportError> {
            panic!("{path} was sent")
        }
    }

    fn config() -> Config {
        Config::from_lookup(|var| match var {
            config::URL_VAR => Some("http://127.0.0.1:1".into()),
            config::KEY_VAR => Some("11".repeat(32)),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn bad_names_are_refused_before_etcd_is_asked() {
        let open = |name: &str| Bucket::open(&config(), Unused, || [0; NONCE_LEN], name);
        for bad in ["", "Config", "a/b", ".."] {
            assert_eq!(open(bad).err(), Some(Error::NoSuchStore), "{bad}");
        }
        let bucket = open("config").unwrap();
        assert_eq!(bucket.name(), "config");
        for bad in ["", "a/b", ".", ".."] {
            let expected = Error::Other(format!("invalid key {bad:?}"));
            assert_eq!(bucket.get(bad), Err(expected.clone()));
            assert_eq!(bucket.set(bad, b"v"), Err(expected.clone()));
            assert_eq!(bucket.delete(bad), Err(expected.clone()));
            assert_eq!(bucket.exists(bad), Err(expected.clone()));
            assert_eq!(bucket.increment(bad, 1), Err(expected));
        }
        assert_eq!(
            bucket.list_keys(Some(12)),
            Err(Error::Other(
                "12 is not a list-keys cursor of bucket config: start again without one".into()
            ))
        );
    }

    #[test]
    fn keys_live_under_the_buckets_folder() {
        let bucket = Bucket::open(&config(), Unused, || [0; NONCE_LEN], "token").unwrap();
        assert_eq!(
            bucket.etcd_key("hoeg").unwrap(),
            b"dockerhub-secrets/token/hoeg"
        );
        let listed = |key: &[u8]| {
            bucket.key_of(KeyValue {
                key: key.to_vec(),
                ..KeyValue::default()
            })
        };
        assert_eq!(listed(b"dockerhub-secrets/token/hoeg"), Some("hoeg".into()));
        assert_eq!(listed(b"dockerhub-secrets/token/sub/x"), None);
        assert_eq!(listed(b"dockerhub-secrets/token/\xff"), None);
        assert_eq!(listed(b"dockerhub-secrets/token/"), None);
        assert_eq!(listed(b"dockerhub-secrets/tokens/x"), None);
    }
}
