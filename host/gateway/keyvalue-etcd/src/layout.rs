//! Where a bucket's keys live in etcd, and which names are allowed.
//!
//! Key `k` of bucket `b` is the etcd key `<prefix>b/k`: a bucket is the folder `<prefix>b/`,
//! listed as the etcd range from the folder to its [`range_end`]. Names are checked by the same
//! rules as the native host's (`host/src/runtime/keyvalue.rs`), so that the engine meets one set
//! of rules in every host and no name reaches outside its folder.

/// Whether `name` may name a bucket: 1 to 64 characters of `a-z`, `0-9`, `-` and `_`.
pub fn valid_bucket(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `key` may name a key in a bucket: 1 to 512 bytes, no `/`, and neither `.` nor `..`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 512 && !key.contains('/') && key != "." && key != ".."
}

/// The etcd folder that holds bucket `bucket` under `prefix`: `<prefix><bucket>/`.
pub fn folder(prefix: &str, bucket: &str) -> Vec<u8> {
    format!("{prefix}{bucket}/").into_bytes()
}

/// The `range_end` that makes an etcd range cover every key starting with `start`.
///
/// etcd's rule (`RangeRequest.range_end` in `rpc.proto`): the range is `[key, range_end)`, and
/// "key plus one" is `start` with its last byte below `0xff` increased by one and the bytes
/// after it dropped (`"a/"` → `"a0"`, `"a\xff"` → `"b"`). When every byte is `0xff` no such key
/// exists and the answer is `"\0"`, which etcd reads as "every key from `start` on".
pub fn range_end(start: &[u8]) -> Vec<u8> {
    let mut end = start.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_native_hosts_rules() {
        assert!(valid_bucket("config"));
        assert!(valid_bucket("a-b_0"));
        assert!(valid_bucket(&"b".repeat(64)));
        for bad in ["", "a/b", "../x", "Config", "a.b", &"b".repeat(65)] {
            assert!(!valid_bucket(bad), "{bad}");
        }
        assert!(valid_key("hoeg"));
        assert!(valid_key("0123-abcd"));
        assert!(valid_key("..."));
        assert!(valid_key(&"k".repeat(512)));
        for bad in ["", "a/b", "/", "..", ".", &"k".repeat(513)] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn a_bucket_is_a_folder_under_the_prefix() {
        assert_eq!(
            folder("dockerhub-secrets/", "config"),
            b"dockerhub-secrets/config/"
        );
        assert_eq!(folder("", "token"), b"token/");
    }

    #[test]
    fn range_end_is_the_first_key_after_every_key_with_the_prefix() {
        assert_eq!(
            range_end(b"dockerhub-secrets/config/"),
            b"dockerhub-secrets/config0"
        );
        assert_eq!(range_end(b"a"), b"b");
        assert_eq!(range_end(b"a\xff"), b"b");
        assert_eq!(range_end(b"a\xfe\xff\xff"), b"a\xff");
        assert_eq!(range_end(b"\xff\xff"), b"\0");
        assert_eq!(range_end(b""), b"\0");
        // Every key with the prefix sorts below the end, and the end does not have the prefix.
        let start = b"p/config/".as_slice();
        let end = range_end(start);
        for key in [
            b"p/config/".as_slice(),
            b"p/config/\xff\xff",
            b"p/config/zzz",
        ] {
            assert!(key >= start && key < end.as_slice());
        }
        assert!(b"p/config0".as_slice() >= end.as_slice());
        assert!(b"p/configs/x".as_slice() >= end.as_slice());
    }
}
