//! The store against a real etcd: what an engine sees through `wasi:keyvalue`, and what
//! lands in etcd.

mod support;

use dockerhub_secrets_keyvalue_etcd::etcd::{PutRequest, RangeRequest};
use dockerhub_secrets_keyvalue_etcd::seal::{NONCE_LEN, TAG_LEN, VERSION};
use dockerhub_secrets_keyvalue_etcd::{Bucket, Error, KeyPage};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use support::{Etcd, Http, KEY, OTHER_KEY, bucket, config, free_ports, random, raw_client};

const PREFIX: &str = "dockerhub-secrets/";

fn raw_value(etcd: &Etcd, key: &str) -> Option<Vec<u8>> {
    let found = raw_client(&etcd.url)
        .range(&RangeRequest {
            key: key.as_bytes().to_vec(),
            ..RangeRequest::default()
        })
        .unwrap();
    found.kvs.into_iter().next().map(|kv| kv.value)
}

fn raw_put(etcd: &Etcd, key: &str, value: &[u8]) {
    raw_client(&etcd.url)
        .put(&PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
        })
        .unwrap();
}

/// Every key of a bucket, page after page.
fn all_keys(bucket: &Bucket<Http>) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket.list_keys(cursor).unwrap();
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
}

fn strings(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[test]
fn a_value_is_written_read_and_deleted() {
    let etcd = Etcd::start().unwrap();
    let config = bucket(&etcd.url, PREFIX, "config");
    assert_eq!(config.get("hoeg"), Ok(None));
    assert_eq!(config.exists("hoeg"), Ok(false));

    config.set("hoeg", br#"{"password":"p"}"#).unwrap();
    assert_eq!(
        config.get("hoeg"),
        Ok(Some(br#"{"password":"p"}"#.to_vec()))
    );
    assert_eq!(config.exists("hoeg"), Ok(true));

    let every_byte: Vec<u8> = (0..=255).collect();
    config.set("hoeg", &every_byte).unwrap();
    assert_eq!(config.get("hoeg"), Ok(Some(every_byte)));
    config.set("empty", b"").unwrap();
    assert_eq!(config.get("empty"), Ok(Some(Vec::new())));
    assert_eq!(config.exists("empty"), Ok(true));

    config.delete("hoeg").unwrap();
    assert_eq!(config.get("hoeg"), Ok(None));
    assert_eq!(config.exists("hoeg"), Ok(false));
    config.delete("hoeg").unwrap();
    // Another instance, as a second gateway would open it, sees the same store.
    assert_eq!(
        bucket(&etcd.url, PREFIX, "config").get("empty"),
        Ok(Some(Vec::new()))
    );
    assert_eq!(
        raw_value(&etcd, "dockerhub-secrets/config/empty").map(|v| v.len()),
        Some(1 + NONCE_LEN + TAG_LEN)
    );
}

#[test]
fn a_bucket_lists_only_its_own_keys() {
    let etcd = Etcd::start().unwrap();
    let config = bucket(&etcd.url, PREFIX, "config");
    let token = bucket(&etcd.url, PREFIX, "token");
    let elsewhere = bucket(&etcd.url, "gateway-b/", "config");
    assert_eq!(
        config.list_keys(None),
        Ok(KeyPage {
            keys: Vec::new(),
            cursor: None
        })
    );
    for key in ["c", "a", "b-1", "b"] {
        config.set(key, b"v").unwrap();
    }
    token.set("t", b"v").unwrap();
    elsewhere.set("z", b"v").unwrap();
    // Neighbours in etcd's key order that are not keys of `config`.
    raw_put(&etcd, "dockerhub-secrets/config/sub/x", b"v");
    raw_put(&etcd, "dockerhub-secrets/configs/y", b"v");
    raw_put(&etcd, "dockerhub-secrets/config", b"v");
    raw_put(&etcd, "dockerhub-secrets/config0", b"v");

    assert_eq!(
        config.list_keys(None),
        Ok(KeyPage {
            keys: strings(&["a", "b", "b-1", "c"]),
            cursor: None
        })
    );
    assert_eq!(all_keys(&token), ["t"]);
    assert_eq!(all_keys(&elsewhere), ["z"]);
    assert_eq!(
        all_keys(&bucket(&etcd.url, PREFIX, "wal")),
        Vec::<String>::new()
    );
}

#[test]
fn the_pages_of_a_listing_are_one_snapshot() {
    let etcd = Etcd::start().unwrap();
    let token = bucket(&etcd.url, PREFIX, "token").with_page_size(3);
    for i in 0..8 {
        token.set(&format!("k{i}"), b"v").unwrap();
    }
    let first = token.list_keys(None).unwrap();
    assert_eq!(first.keys, ["k0", "k1", "k2"]);
    let cursor = first.cursor.expect("more pages");

    // Writes between pages: one listed key and one not yet listed go, two keys come.
    token.delete("k1").unwrap();
    token.delete("k4").unwrap();
    token.set("k35", b"v").unwrap();
    token.set("k9", b"v").unwrap();

    let second = token.list_keys(Some(cursor)).unwrap();
    assert_eq!(second.keys, ["k3", "k4", "k5"]);
    let third = token.list_keys(second.cursor).unwrap();
    assert_eq!(third.keys, ["k6", "k7"]);
    assert_eq!(third.cursor, None);
    // A cursor can be used again while etcd keeps its revision.
    assert_eq!(token.list_keys(Some(cursor)), Ok(second));

    // A new listing reads the store as it is now; a full last page ends the listing.
    assert_eq!(
        all_keys(&token),
        ["k0", "k2", "k3", "k35", "k5", "k6", "k7", "k9"]
    );
    let six = bucket(&etcd.url, PREFIX, "six").with_page_size(3);
    for i in 0..6 {
        six.set(&format!("k{i}"), b"v").unwrap();
    }
    let page = six.list_keys(None).unwrap();
    let last = six.list_keys(page.cursor).unwrap();
    assert_eq!((last.keys.len(), last.cursor), (3, None));

    // A cursor past etcd's revision is refused by etcd, in its words.
    let future = six
        .list_keys(Some((1 << 30) << 24))
        .unwrap_err()
        .to_string();
    assert!(future.contains("listing bucket six: etcd at"), "{future}");
    assert!(
        future.contains("required revision is a future revision"),
        "{future}"
    );
}

#[test]
fn values_in_etcd_are_sealed_to_their_key() {
    let etcd = Etcd::start().unwrap();
    let config = bucket(&etcd.url, PREFIX, "config");
    let secret = b"hub-password-Zq81";
    config.set("hoeg", secret).unwrap();
    let sealed = raw_value(&etcd, "dockerhub-secrets/config/hoeg").unwrap();
    assert_eq!(sealed.len(), 1 + NONCE_LEN + secret.len() + TAG_LEN);
    assert_eq!(sealed[0], VERSION);
    assert!(!sealed.windows(secret.len()).any(|w| w == secret));
    assert!(!sealed.windows(4).any(|w| w == b"hub-"));
    // A fresh nonce for every write: the same value is sealed differently.
    config.set("hoeg", secret).unwrap();
    let again = raw_value(&etcd, "dockerhub-secrets/config/hoeg").unwrap();
    assert_ne!(again, sealed);

    // Copied to another key, bucket or prefix, the value does not open.
    raw_put(&etcd, "dockerhub-secrets/config/other", &sealed);
    raw_put(&etcd, "dockerhub-secrets/session/hoeg", &sealed);
    raw_put(&etcd, "gateway-b/config/hoeg", &sealed);
    assert_eq!(
        config.get("other"),
        Err(Error::Other(
            "the value of config/other does not decrypt: wrong DOCKERHUB_SECRETS_STORE_KEY or a \
             damaged value"
                .into()
        ))
    );
    let session = bucket(&etcd.url, PREFIX, "session").get("hoeg");
    assert!(
        session
            .unwrap_err()
            .to_string()
            .contains("session/hoeg does not decrypt")
    );
    let moved = bucket(&etcd.url, "gateway-b/", "config").get("hoeg");
    assert!(
        moved
            .unwrap_err()
            .to_string()
            .contains("config/hoeg does not decrypt")
    );
    assert_eq!(config.get("hoeg"), Ok(Some(secret.to_vec())));
}

#[test]
fn a_wrong_store_key_gives_a_clear_error() {
    let etcd = Etcd::start().unwrap();
    bucket(&etcd.url, PREFIX, "session")
        .set("hoeg", b"session")
        .unwrap();
    let wrong = Bucket::open(
        &config(&etcd.url, PREFIX, OTHER_KEY),
        Http::default(),
        random,
        "session",
    )
    .unwrap();
    let error = wrong.get("hoeg").unwrap_err();
    assert_eq!(
        error,
        Error::Other(
            "the value of session/hoeg does not decrypt: wrong DOCKERHUB_SECRETS_STORE_KEY or a \
             damaged value"
                .into()
        )
    );
    assert_eq!(wrong.increment("hoeg", 1), Err(error));
    assert_eq!(wrong.exists("hoeg"), Ok(true));
    assert_eq!(wrong.list_keys(None).unwrap().keys, ["hoeg"]);
}

#[test]
fn concurrent_increments_each_get_their_own_value() {
    let etcd = Etcd::start().unwrap();
    const THREADS: u64 = 4;
    const EACH: u64 = 25;
    let values: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    // Each thread is its own instance, as gateway instances are.
                    let wal = bucket(&etcd.url, PREFIX, "wal");
                    (0..EACH)
                        .map(|_| wal.increment("revocations", 1).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let distinct: BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(values.len() as u64, THREADS * EACH);
    assert_eq!(distinct, (1..=THREADS * EACH).collect());

    let wal = bucket(&etcd.url, PREFIX, "wal");
    // A counter is its value as 8 bytes, big-endian.
    assert_eq!(
        wal.get("revocations"),
        Ok(Some((THREADS * EACH).to_be_bytes().to_vec()))
    );
    assert_eq!(wal.increment("revocations", 0), Ok(THREADS * EACH));
    assert_eq!(wal.increment("fresh", 5), Ok(5));
    assert_eq!(wal.increment("fresh", 1 << 40), Ok(5 + (1 << 40)));

    wal.set("text", b"not a counter").unwrap();
    assert_eq!(
        wal.increment("text", 1),
        Err(Error::Other(
            "wal/text is not a counter: its value has 13 bytes, a counter's has 8".into()
        ))
    );
    wal.set("full", &(u64::MAX - 1).to_be_bytes()).unwrap();
    assert_eq!(wal.increment("full", 1), Ok(u64::MAX));
    assert!(wal.increment("full", 1).is_err());
    assert_eq!(wal.get("full"), Ok(Some(u64::MAX.to_be_bytes().to_vec())));
}

#[test]
fn a_stopped_etcd_fails_fast_with_a_clear_error() {
    let mut etcd = Etcd::start().unwrap();
    let config = bucket(&etcd.url, PREFIX, "config");
    config.set("hoeg", b"v").unwrap();
    etcd.kill();

    let started = Instant::now();
    let failures = [
        config.get("hoeg").unwrap_err(),
        config.set("hoeg", b"v").unwrap_err(),
        config.delete("hoeg").unwrap_err(),
        config.exists("hoeg").unwrap_err(),
        config.list_keys(None).unwrap_err(),
        config.increment("n", 1).unwrap_err(),
    ];
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let unreachable = format!(
        "no etcd endpoint could be reached for /v3/kv/range: {}: ",
        etcd.url
    );
    assert_eq!(
        failures[0].to_string(),
        format!("reading config/hoeg: {unreachable}connection refused")
    );
    for failure in &failures {
        let message = failure.to_string();
        assert!(
            message.contains("no etcd endpoint could be reached"),
            "{message}"
        );
        assert!(message.contains(&etcd.url), "{message}");
        assert!(!message.contains(KEY), "{message}");
    }
}

#[test]
fn a_hung_etcd_gives_an_error_after_the_timeout() {
    // A server that takes connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let config = Bucket::open(
        &config(&url, PREFIX, KEY),
        Http::new(Duration::from_secs(1)),
        random,
        "config",
    )
    .unwrap();
    let started = Instant::now();
    let message = config.get("hoeg").unwrap_err().to_string();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(
        message.starts_with(&format!(
            "reading config/hoeg: the exchange with etcd at {url} for /v3/kv/range failed, so it \
             may or may not have taken effect: "
        )),
        "{message}"
    );
}

#[test]
fn the_next_endpoint_serves_when_the_first_is_down() {
    let etcd = Etcd::start().unwrap();
    let [down, _] = free_ports();
    let urls = format!("http://127.0.0.1:{down}, {}", etcd.url);
    let config = Bucket::open(
        &config(&urls, PREFIX, KEY),
        Http::default(),
        random,
        "config",
    )
    .unwrap();
    config.set("hoeg", b"v").unwrap();
    assert_eq!(config.get("hoeg"), Ok(Some(b"v".to_vec())));
    assert_eq!(
        bucket(&etcd.url, PREFIX, "config").get("hoeg"),
        Ok(Some(b"v".to_vec()))
    );
}
