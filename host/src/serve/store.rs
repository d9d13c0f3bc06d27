//! The standalone server's storage: one redb file, every value encrypted.
//!
//! `dockerhub-secrets serve` has no Vault underneath to keep the engine's data, so this module
//! keeps it in `<dir>/store.redb`. Each put or delete is one write transaction committed with
//! immediate durability, so a crash leaves the old or the new value, never a torn one.
//!
//! Values (Docker Hub credentials, tokens) are sealed with AES-256-GCM under a key the operator
//! supplies ([`KeySource`]); the entry's key is the associated data, so a value moved to another
//! key fails to open. Keys stay plaintext so that `list` is a range scan: they are paths such as
//! `logical/dockerhub/config/hoeg` or `sys/leases/<id>` and hold no secrets. A sealed check
//! record, written when the store is created, lets a wrong key be refused at start instead of on
//! the first read.
//!
//! A store that vanished is not silently replaced: when the key already exists (a key file, or
//! a key supplied in the environment) but the database file is missing or empty, opening is
//! refused unless the operator asks for a new store ([`Create::Init`]); the leases it held
//! would otherwise be forgotten while their Docker Hub tokens live on. A damaged store is
//! refused too, never opened in part: at open, redb verifies every page checksum and this
//! module opens every value, and a panic of redb on a malformed file is caught and reported.

use std::cell::{Cell, RefCell};
use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use redb::{TableDefinition, WriteTransaction};

use crate::storage::{Storage, StorageError};

/// The engine's entries: path → nonce‖ciphertext‖tag.
const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
/// Records about the store itself, apart from the engine's keys.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CHECK_KEY: &str = "key-check";
const CHECK_PLAINTEXT: &[u8] = b"dockerhub-secrets store key check v1";

/// Whether opening may create a new, empty store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Only on a first start: when neither the store nor the key existed (the key file is
    /// created now). A missing or empty store whose key exists is refused.
    FirstStart,
    /// The operator asked for a new store (`serve --init`): create it even though the key
    /// exists; refused if a store with data is already there.
    Init,
}

/// Where the 256-bit key comes from.
pub enum KeySource {
    /// A key file: created with 32 random bytes (hex-encoded text, one line) and mode 0600 on
    /// first start if it does not exist; refused if it exists with looser permissions (group or
    /// other bits set) or holds anything but 64 hex characters.
    File(PathBuf),
    /// The key itself, e.g. from an environment variable: 64 hex characters, or standard base64
    /// of 32 bytes.
    Value(String),
}

/// Why the store could not be opened. No message contains the key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the store directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} is accessible to group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("key file {path} must hold exactly 64 hex characters (a 256-bit key)")]
    KeyFileMalformed { path: PathBuf },
    #[error(
        "key file {key_file} is missing, but {store} already holds data sealed with a key; restore the key file instead of starting over"
    )]
    KeyFileMissing { key_file: PathBuf, store: PathBuf },
    #[error("the store key must be 64 hex characters or standard base64 of 32 bytes")]
    KeyValueMalformed,
    #[error("store {path} is in use by another process (its database file is locked)")]
    InUse { path: PathBuf },
    #[error(
        "the key does not match the data in {path}: check the key file or the environment variable that supplies the key"
    )]
    WrongKey { path: PathBuf },
    #[error("cannot open store {path}: {source}")]
    Database { path: PathBuf, source: redb::Error },
    #[error(
        "the store {path} is missing or empty, but {key} exists: the configs and leases it held are gone, and the Docker Hub tokens of those leases stay live until Docker Hub expires them. Restore the store from a backup, or start once with --init to begin with a new, empty store"
    )]
    Vanished { path: PathBuf, key: String },
    #[error(
        "--init asks for a new store, but {path} already holds one; start without --init to use it"
    )]
    AlreadyInitialized { path: PathBuf },
    #[error(
        "the store {path} is damaged ({detail}); refusing to start rather than lose what it holds: restore it from a backup"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the store {path} was damaged, and redb rolled it back to its last intact state: its most recent changes may be lost (a lease lost there leaves its Docker Hub token live until Docker Hub expires it). Restore it from a backup, or start again to use the rolled-back store"
    )]
    RolledBack { path: PathBuf },
}

/// Encrypted, crash-safe storage in one redb file. Cheap to share: clone the `Arc` around it.
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    key: LessSafeKey,
}

impl Store {
    /// Open (or create, see [`Create`]) the store in directory `dir` (database file
    /// `dir/store.redb`; `dir` is created with mode 0700 if missing). Every value is checked
    /// to open under the key before the store is returned.
    pub fn open(dir: &Path, key: KeySource, create: Create) -> Result<Store, StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        let path = dir.join("store.redb");
        let had_data = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        let key_existed = match &key {
            KeySource::Value(_) => Some("the key supplied in the environment".to_string()),
            KeySource::File(file) => file
                .exists()
                .then(|| format!("the key file {}", file.display())),
        };
        let vanished = |key: &Option<String>| match key {
            Some(key) if create == Create::FirstStart => Err(StoreError::Vanished {
                path: path.clone(),
                key: key.clone(),
            }),
            _ => Ok(()),
        };
        if !had_data {
            vanished(&key_existed)?;
        }
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &load_key(key, &path)?).expect("a 32-byte key"),
        );
        // The database gets the key file's strictness: created 0600 before redb fills it.
        let db_err = |source: redb::Error| StoreError::Database {
            path: path.clone(),
            source,
        };
        let damaged = |detail: String| StoreError::Damaged {
            path: path.clone(),
            detail,
        };
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| db_err(e.into()))?;
        // redb's default page cache is 1 GiB; the engine keeps kilobytes to megabytes.
        let opened = quiet_panics(|| Database::builder().set_cache_size(16 << 20).create(&path))
            .map_err(&damaged)?;
        let mut db = match opened {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse { path });
            }
            Err(e @ redb::DatabaseError::Storage(_)) => return Err(damaged(e.to_string())),
            Err(e) => return Err(db_err(e.into())),
        };
        // Cheap next to a lost lease: reads every page once. A store redb had to roll back
        // has lost its latest commits, which the operator must hear of.
        match quiet_panics(|| db.check_integrity()).map_err(&damaged)? {
            Ok(true) => {}
            Ok(false) => return Err(StoreError::RolledBack { path }),
            Err(e) => return Err(damaged(e.to_string())),
        }
        let inner = Inner { db, key };
        let state = quiet_panics(|| inner.check_key())
            .map_err(&damaged)?
            .map_err(|e| damaged(e.to_string()))?;
        let entries = match state {
            KeyCheck::Matches { .. } | KeyCheck::WrongKey if create == Create::Init => {
                return Err(StoreError::AlreadyInitialized { path });
            }
            KeyCheck::Matches { entries } => entries,
            KeyCheck::WrongKey => return Err(StoreError::WrongKey { path }),
            KeyCheck::Unsealed { entries: 0 } => {
                // An empty database file (a first start that stopped early, or a file
                // replaced by a blank one) is a store that vanished as much as a missing one.
                if had_data {
                    vanished(&key_existed)?;
                }
                quiet_panics(|| inner.write_check())
                    .map_err(&damaged)?
                    .map_err(|e| damaged(e.to_string()))?;
                0
            }
            KeyCheck::Unsealed { entries } => {
                return Err(damaged(format!(
                    "it holds {entries} entries but not the record that checks the key"
                )));
            }
        };
        quiet_panics(|| inner.verify_entries())
            .map_err(&damaged)?
            .map_err(damaged)?;
        let created = !had_data;
        tracing::info!(path = %path.display(), created, entries, "opened the encrypted store");
        Ok(Store {
            inner: Arc::new(inner),
        })
    }
}

/// What the store's check record says about the key.
enum KeyCheck {
    Matches {
        entries: u64,
    },
    WrongKey,
    /// No check record: a new database, or a damaged one if it holds entries.
    Unsealed {
        entries: u64,
    },
}

thread_local! {
    /// Set while [`quiet_panics`] runs on this thread.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// The message of the panic [`quiet_panics`] caught.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run `job`, turning a panic into an error message, without the panic's report on stderr.
///
/// redb trusts the file it reads: on a malformed one it can panic (`from_utf8(..).unwrap()` on
/// a key, an assertion in its page allocator). A damaged store must be refused with a clear
/// message instead, so the store's opening runs under this guard. Other threads' panics are
/// reported as before.
fn quiet_panics<T>(job: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown failure".into());
                CAUGHT.with(|c| *c.borrow_mut() = Some(message));
            } else {
                previous(info);
            }
        }));
    });
    let was_quiet = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    QUIET.with(|q| q.set(was_quiet));
    result.map_err(|_| {
        let message = CAUGHT.with(|c| c.borrow_mut().take());
        format!(
            "redb failed reading it: {}",
            message.as_deref().unwrap_or("unknown failure")
        )
    })
}

impl Inner {
    /// What the check record says about the key, and how many entries the store holds.
    fn check_key(&self) -> Result<KeyCheck, redb::Error> {
        let txn = self.db.begin_read()?;
        let entries = match txn.open_table(ENTRIES) {
            Ok(table) => table.len()?,
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(e.into()),
        };
        let check = match txn.open_table(META) {
            Ok(table) => table.get(CHECK_KEY)?.map(|v| v.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let Some(sealed) = check else {
            return Ok(KeyCheck::Unsealed { entries });
        };
        Ok(
            if self.open_sealed(CHECK_KEY, sealed).as_deref() == Some(CHECK_PLAINTEXT) {
                KeyCheck::Matches { entries }
            } else {
                KeyCheck::WrongKey
            },
        )
    }

    /// Make a new store: the check record, and the entries table.
    fn write_check(&self) -> Result<(), redb::Error> {
        let txn = self.begin_write()?;
        let sealed = self.seal(CHECK_KEY, CHECK_PLAINTEXT)?;
        txn.open_table(META)?.insert(CHECK_KEY, sealed.as_slice())?;
        txn.open_table(ENTRIES)?;
        Ok(txn.commit()?)
    }

    /// Every entry opens under the key it is stored at, so that no value is found unreadable
    /// later, when it is needed (a config to revoke a lease, a lease to revoke a token).
    fn verify_entries(&self) -> Result<(), String> {
        let error = |e: &dyn std::fmt::Display| e.to_string();
        let txn = self.db.begin_read().map_err(|e| error(&e))?;
        let table = txn.open_table(ENTRIES).map_err(|e| error(&e))?;
        for item in table.iter().map_err(|e| error(&e))? {
            let (key, value) = item.map_err(|e| error(&e))?;
            let key = key.value();
            if self.open_sealed(key, value.value().to_vec()).is_none() {
                return Err(format!(
                    "the value of {key} does not decrypt: it is corrupt or was not written under this key"
                ));
            }
        }
        Ok(())
    }

    fn begin_write(&self) -> Result<WriteTransaction, redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }

    /// nonce‖ciphertext‖tag, with `key` as associated data.
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, redb::Error> {
        let nonce = random::<NONCE_LEN>()?;
        let mut sealed = plaintext.to_vec();
        let aad = Aad::from(key.as_bytes());
        (self.key)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad, &mut sealed)
            .map_err(|_| std::io::Error::other("the value is too large to seal"))?;
        sealed.splice(0..0, nonce);
        Ok(sealed)
    }

    /// The plaintext, or `None` if `sealed` was not sealed under this key for `key`.
    fn open_sealed(&self, key: &str, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
        let len = self
            .key
            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut sealed[NONCE_LEN..])
            .ok()?
            .len();
        sealed.drain(..NONCE_LEN);
        sealed.truncate(len);
        Some(sealed)
    }
}

/// The 32 key bytes from `source`; `store` is the database file, to refuse a missing key file
/// for a store that already exists.
fn load_key(source: KeySource, store: &Path) -> Result<Vec<u8>, StoreError> {
    let path = match source {
        KeySource::Value(text) => {
            let text = text.trim();
            return decode_hex(text)
                .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .filter(|key| key.len() == 32)
                .ok_or(StoreError::KeyValueMalformed);
        }
        KeySource::File(path) => path,
    };
    let io_err = |source| StoreError::KeyFileIo {
        path: path.clone(),
        source,
    };
    let meta = match std::fs::metadata(&path) {
        Err(e) if e.kind() == ErrorKind::NotFound && store.exists() => {
            return Err(StoreError::KeyFileMissing {
                key_file: path,
                store: store.to_path_buf(),
            });
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let key = random::<32>().map_err(io_err)?;
            let hex = key.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n";
            // `create_new`: of two first starts racing, one writes and both read its key.
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            return match file {
                Ok(mut file) => {
                    (file
                        .write_all(hex.as_bytes())
                        .and_then(|()| file.sync_all()))
                    .map_err(io_err)?;
                    tracing::info!(path = %path.display(), "created a new store key file");
                    Ok(key.to_vec())
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    load_key(KeySource::File(path), store)
                }
                Err(e) => Err(io_err(e)),
            };
        }
        meta => meta.map_err(io_err)?,
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::KeyFilePermissions { path, mode });
    }
    let text = std::fs::read_to_string(&path).map_err(io_err)?;
    decode_hex(text.trim()).ok_or(StoreError::KeyFileMalformed { path })
}

/// 32 bytes from exactly 64 hex characters.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&text[i..i + 2], 16).ok();
    (0..64).step_by(2).map(byte).collect()
}

fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    (SystemRandom::new().fill(&mut bytes))
        .map_err(|_| std::io::Error::other("the system random generator failed"))?;
    Ok(bytes)
}

impl Store {
    /// Runs `job` on the blocking pool: redb reads and fsyncs would stall the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        what: String,
        job: impl FnOnce(&Inner) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = self.inner.clone();
        let error = |e: &dyn std::fmt::Display| StorageError(format!("store: {what}: {e}"));
        match tokio::task::spawn_blocking(move || job(&inner)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(error(&e)),
            Err(e) => Err(error(&e)),
        }
    }
}

#[async_trait::async_trait]
impl Storage for Store {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let owned = key.to_string();
        let sealed = self
            .blocking(format!("reading {key}"), move |inner| {
                let table = inner.db.begin_read()?.open_table(ENTRIES)?;
                Ok(table.get(owned.as_str())?.map(|v| v.value().to_vec()))
            })
            .await?;
        match sealed {
            None => Ok(None),
            Some(sealed) => self.inner.open_sealed(key, sealed).map(Some).ok_or_else(|| {
                StorageError(format!(
                    "store: the value of {key} does not decrypt: it is corrupt or was not written under this key"
                ))
            }),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let key = key.to_string();
        self.blocking(format!("writing {key}"), move |inner| {
            let sealed = inner.seal(&key, &value)?;
            let txn = inner.begin_write()?;
            txn.open_table(ENTRIES)?
                .insert(key.as_str(), sealed.as_slice())?;
            Ok(txn.commit()?)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let key = key.to_string();
        self.blocking(format!("deleting {key}"), move |inner| {
            let txn = inner.begin_write()?;
            txn.open_table(ENTRIES)?.remove(key.as_str())?;
            Ok(txn.commit()?)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = prefix.to_string();
        self.blocking(format!("listing {prefix}"), move |inner| {
            let table = inner.db.begin_read()?.open_table(ENTRIES)?;
            let mut out = Vec::new();
            let mut from = prefix.clone();
            // One range scan per sub-folder met: after `a/` the scan resumes at `a0`, the first
            // key past everything below `a/` ('0' follows '/'), so a folder of a million leases
            // costs one step.
            'scan: loop {
                for item in table.range(from.as_str()..)? {
                    let (key, _) = item?;
                    let Some(rest) = key
                        .value()
                        .strip_prefix(prefix.as_str())
                        .map(str::to_string)
                    else {
                        break 'scan;
                    };
                    if let Some(i) = rest.find('/') {
                        from = format!("{prefix}{}0", &rest[..i]);
                        out.push(rest[..=i].to_string());
                        continue 'scan;
                    }
                    out.push(rest);
                }
                break;
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir =
                std::env::temp_dir().join(format!("store-test-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
        fn store(&self) -> PathBuf {
            self.0.join("store")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Open the store with the key in hand, as `serve --init` the first time.
    fn open(dir: &TempDir) -> Result<Store, StoreError> {
        let create = if dir.store().join("store.redb").exists() {
            Create::FirstStart
        } else {
            Create::Init
        };
        Store::open(&dir.store(), KeySource::Value(HEX_KEY.into()), create)
    }

    fn db_file(dir: &TempDir) -> PathBuf {
        dir.store().join("store.redb")
    }

    #[tokio::test]
    async fn lists_one_level_like_vault_and_persists_across_reopen() {
        let dir = TempDir::new("list");
        let s = open(&dir).unwrap();
        let keys = "config/a config/b token/x token/y/z tokens token. token0";
        for key in keys.split(' ') {
            s.put(key, b"v".to_vec()).await.unwrap();
        }
        assert_eq!(s.list("config/").await.unwrap(), ["a", "b"]);
        assert_eq!(s.list("token/").await.unwrap(), ["x", "y/"]);
        assert_eq!(
            s.list("").await.unwrap(),
            ["config/", "token.", "token/", "token0", "tokens"]
        );
        assert!(s.list("wal/").await.unwrap().is_empty());
        s.delete("config/a").await.unwrap();
        s.delete("config/missing").await.unwrap();
        assert_eq!(s.get("config/a").await.unwrap(), None);
        s.put("config/b", b"new".to_vec()).await.unwrap();
        drop(s);

        let s = open(&dir).unwrap();
        assert_eq!(s.get("config/a").await.unwrap(), None);
        assert_eq!(s.get("config/b").await.unwrap(), Some(b"new".to_vec()));
        assert_eq!(s.list("token/y/").await.unwrap(), ["z"]);
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_and_a_second_opener_is_told_the_store_is_in_use() {
        let dir = TempDir::new("wrong");
        let s = open(&dir).unwrap();
        let second = open(&dir).err().unwrap().to_string();
        assert!(second.contains("in use"), "{second}");
        drop(s);
        let other = KeySource::Value(HEX_KEY.replace('0', "f"));
        let err = Store::open(&dir.store(), other, Create::FirstStart)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("key does not match") && err.contains("store.redb"),
            "{err}"
        );
        open(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_key_file_is_created_private_reused_and_refused_when_loose_or_malformed() {
        let dir = TempDir::new("keyfile");
        let key_file = dir.0.join("key");
        std::fs::create_dir_all(&dir.0).unwrap();
        let open = || {
            Store::open(
                &dir.store(),
                KeySource::File(key_file.clone()),
                Create::FirstStart,
            )
        };
        let s = open().unwrap();
        s.put("config/a", b"1".to_vec()).await.unwrap();
        drop(s);
        let meta = std::fs::metadata(&key_file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(dir.store()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let text = std::fs::read_to_string(&key_file).unwrap();
        assert!(decode_hex(text.trim()).is_some() && text.ends_with('\n'));

        let s = open().unwrap();
        assert_eq!(s.get("config/a").await.unwrap(), Some(b"1".to_vec()));
        drop(s);

        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = open().err().unwrap();
        assert!(
            matches!(err, StoreError::KeyFilePermissions { mode: 0o640, .. }),
            "{err}"
        );

        std::fs::write(&key_file, "not a key\n").unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = open().err().unwrap();
        assert!(matches!(err, StoreError::KeyFileMalformed { .. }), "{err}");

        std::fs::remove_file(&key_file).unwrap();
        let err = open().err().unwrap();
        assert!(matches!(err, StoreError::KeyFileMissing { .. }), "{err}");
    }

    #[test]
    fn key_values_in_hex_or_base64_are_accepted_and_others_refused() {
        let bytes: Vec<u8> = (0..32).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let load = |v: &str| load_key(KeySource::Value(v.into()), Path::new("/nonexistent"));
        assert_eq!(load(HEX_KEY).unwrap(), bytes);
        assert_eq!(
            load(&format!(" {}\n", HEX_KEY.to_uppercase())).unwrap(),
            bytes
        );
        assert_eq!(load(&b64).unwrap(), bytes);
        for bad in [
            "",
            &HEX_KEY[..62],
            &format!("{HEX_KEY}00"),
            &HEX_KEY.replace('a', "g"),
            &HEX_KEY.replace("0a", "+a"),
            "AAAA",
        ] {
            assert!(
                matches!(load(bad), Err(StoreError::KeyValueMalformed)),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn values_are_not_on_disk_in_plaintext_and_are_bound_to_their_key() {
        let dir = TempDir::new("sealed");
        let s = open(&dir).unwrap();
        let secret = b"dckr_pat_VERY-DISTINCTIVE-SECRET-0123456789";
        s.put("config/hoeg", secret.to_vec()).await.unwrap();
        let raw = std::fs::read(dir.store().join("store.redb")).unwrap();
        assert!(!raw.windows(secret.len()).any(|w| w == secret));
        assert!(
            raw.windows(11).any(|w| w == b"config/hoeg"),
            "keys stay plaintext"
        );

        // Move the sealed value to another key behind the store's back.
        let txn = s.inner.begin_write().unwrap();
        {
            let mut table = txn.open_table(ENTRIES).unwrap();
            let sealed = table.get("config/hoeg").unwrap().unwrap().value().to_vec();
            table.insert("config/other", sealed.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        let err = s.get("config/other").await.unwrap_err();
        assert!(
            err.0.contains("config/other") && err.0.contains("does not decrypt"),
            "{err}"
        );
        assert_eq!(s.get("config/hoeg").await.unwrap(), Some(secret.to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_puts_all_land() {
        let dir = TempDir::new("concurrent");
        let s: Arc<dyn Storage> = Arc::new(open(&dir).unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(
                    async move { s.put(&format!("sys/leases/{i:03}"), vec![i as u8]).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let listed = s.list("sys/leases/").await.unwrap();
        assert_eq!(
            listed,
            (0..64).map(|i| format!("{i:03}")).collect::<Vec<_>>()
        );
        assert_eq!(s.get("sys/leases/042").await.unwrap(), Some(vec![42]));
    }

    #[tokio::test]
    async fn a_store_that_vanished_while_its_key_exists_is_refused_unless_init() {
        let dir = TempDir::new("vanished");
        let key_file = dir.0.join("key");
        let open = |create| Store::open(&dir.store(), KeySource::File(key_file.clone()), create);
        // A first start (no key, no store) needs no flag.
        let s = open(Create::FirstStart).unwrap();
        s.put("sys/leases/a", b"lease".to_vec()).await.unwrap();
        drop(s);

        let refused = |create| {
            let err = open(create).err().unwrap();
            assert!(matches!(err, StoreError::Vanished { .. }), "{err}");
            let text = err.to_string();
            assert!(
                text.contains("store.redb") && text.contains("--init") && text.contains("key file"),
                "{text}"
            );
        };
        let saved = std::fs::read(db_file(&dir)).unwrap();
        std::fs::write(db_file(&dir), b"").unwrap();
        refused(Create::FirstStart);
        std::fs::remove_file(db_file(&dir)).unwrap();
        refused(Create::FirstStart);
        // A valid database file that holds nothing at all (as redb leaves it before the
        // store's first commit) is just as empty.
        drop(Database::create(db_file(&dir)).unwrap());
        refused(Create::FirstStart);

        let s = open(Create::Init).unwrap();
        assert!(s.list("").await.unwrap().is_empty());
        drop(s);
        open(Create::FirstStart).unwrap();
        let err = open(Create::Init).err().unwrap();
        assert!(
            matches!(err, StoreError::AlreadyInitialized { .. }),
            "{err}"
        );

        // The old store, put back, opens with its data; `--init` leaves it alone.
        std::fs::write(db_file(&dir), &saved).unwrap();
        assert!(matches!(
            open(Create::Init).err().unwrap(),
            StoreError::AlreadyInitialized { .. }
        ));
        let s = open(Create::FirstStart).unwrap();
        assert_eq!(
            s.get("sys/leases/a").await.unwrap(),
            Some(b"lease".to_vec())
        );
        drop(s);

        // A key from the environment always exists: a missing store needs --init.
        let env = TempDir::new("vanished-env");
        let key = || KeySource::Value(HEX_KEY.into());
        let err = Store::open(&env.store(), key(), Create::FirstStart)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("the key supplied in the environment"),
            "{err}"
        );
        Store::open(&env.store(), key(), Create::Init).unwrap();
        Store::open(&env.store(), key(), Create::FirstStart).unwrap();
    }

    /// Damage `dir`'s store with `damage`, then expect opening to be refused as damaged with
    /// a message containing `expected`.
    fn refused_as_damaged(dir: &TempDir, expected: &str) {
        let err = open(dir).err().expect("a damaged store is refused");
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("is damaged") && text.contains(expected),
            "{text}"
        );
    }

    /// A store with a few entries, closed.
    async fn filled(name: &str) -> TempDir {
        let dir = TempDir::new(name);
        let s = open(&dir).unwrap();
        for i in 0..20 {
            s.put(&format!("sys/leases/lease{i:02}"), vec![b'x'; 300])
                .await
                .unwrap();
        }
        dir
    }

    fn raw_write(dir: &TempDir, job: impl FnOnce(&WriteTransaction)) {
        let db = Database::create(db_file(dir)).unwrap();
        let txn = db.begin_write().unwrap();
        job(&txn);
        txn.commit().unwrap();
    }

    #[tokio::test]
    async fn a_damaged_store_is_refused_with_a_message_and_never_opened_in_part() {
        // A value that does not decrypt (here: moved to another key).
        let dir = filled("undecryptable").await;
        raw_write(&dir, |txn| {
            let mut table = txn.open_table(ENTRIES).unwrap();
            let sealed = table
                .get("sys/leases/lease03")
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            table.insert("sys/leases/moved", sealed.as_slice()).unwrap();
        });
        refused_as_damaged(&dir, "the value of sys/leases/moved does not decrypt");

        // Entries without the record that checks the key.
        let dir = filled("no-check").await;
        raw_write(&dir, |txn| {
            txn.delete_table(META).unwrap();
        });
        refused_as_damaged(
            &dir,
            "holds 20 entries but not the record that checks the key",
        );

        // The entries table with another type.
        let dir = filled("wrong-type").await;
        raw_write(&dir, |txn| {
            txn.delete_table(ENTRIES).unwrap();
            let wrong: TableDefinition<&str, u64> = TableDefinition::new("entries");
            txn.open_table(wrong).unwrap().insert("x", 1).unwrap();
        });
        refused_as_damaged(&dir, "entries");

        // A truncated file, random bytes, and bytes overwritten in every page.
        let dir = filled("truncated").await;
        let len = std::fs::metadata(db_file(&dir)).unwrap().len();
        let file = OpenOptions::new().write(true).open(db_file(&dir)).unwrap();
        file.set_len(len / 2).unwrap();
        refused_as_damaged(&dir, "truncated");

        let dir = filled("random").await;
        std::fs::write(db_file(&dir), random::<4096>().unwrap()).unwrap();
        refused_as_damaged(&dir, "Not a redb database");

        let dir = filled("flipped").await;
        let good = std::fs::read(db_file(&dir)).unwrap();
        let mut refused = 0;
        for page in (4096..good.len()).step_by(4096) {
            let mut bad = good.clone();
            bad[page + 64..page + 72].copy_from_slice(&[0xff; 8]);
            std::fs::write(db_file(&dir), &bad).unwrap();
            // A page redb does not use may change freely; every other change is refused.
            match open(&dir) {
                Ok(s) => {
                    assert_eq!(s.list("sys/leases/").await.unwrap().len(), 20);
                }
                Err(StoreError::Damaged { .. }) => refused += 1,
                Err(other) => panic!("page {page}: {other}"),
            }
        }
        assert!(refused > 0, "no page of {} bytes was in use", good.len());
    }
}
