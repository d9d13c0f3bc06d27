//! etcd's v3 key-value API through its HTTP/JSON gateway, over any [`Transport`].
//!
//! The gateway (<https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/>; etcd 3.4 serves it at
//! `/v3/kv/range`, `/v3/kv/put`, `/v3/kv/deleterange` and `/v3/kv/txn`) takes and answers the
//! protobuf messages of `etcdserverpb` (`api/etcdserverpb/rpc.proto`) as JSON under their proto
//! field names. Bytes fields are base64; int64 fields come back as JSON strings; a field at its
//! default is left out of an answer (no `kvs` when nothing matched, no `count` when it is 0,
//! no `succeeded` when a transaction's comparison failed). Only the fields used here are
//! declared; an answer's other fields are ignored.

use crate::config::Endpoint;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::Cell;

/// The gateway path of `KV.Range`.
pub const RANGE: &str = "/v3/kv/range";
/// The gateway path of `KV.Put`.
pub const PUT: &str = "/v3/kv/put";
/// The gateway path of `KV.DeleteRange`.
pub const DELETE_RANGE: &str = "/v3/kv/deleterange";
/// The gateway path of `KV.Txn`.
pub const TXN: &str = "/v3/kv/txn";

/// One HTTP exchange with an etcd member: wasi:http in the component, a plain HTTP client in
/// native tests.
pub trait Transport {
    /// `POST` the JSON `body` to `path` (such as [`RANGE`]) at `endpoint`, with
    /// `content-type: application/json`, and return the answer whatever its status.
    fn post(&self, endpoint: &Endpoint, path: &str, body: &[u8]) -> Result<Reply, TransportError>;
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The body, whole.
    pub body: Vec<u8>,
}

/// Why an exchange brought no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection was made (refused, unresolvable, unreachable, connect timeout): etcd never
    /// saw the request, so the next endpoint may be tried.
    #[error("{0}")]
    Unsent(String),
    /// The exchange broke after the request may have reached etcd (no answer in time, a
    /// dropped connection): it may or may not have taken effect.
    #[error("{0}")]
    Failed(String),
}

/// A failed call to etcd, saying which endpoint and API path and what went wrong. It never
/// holds a value or the store key: requests' bodies are not repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint accepted a connection.
    #[error("no etcd endpoint could be reached for {path}: {reasons}")]
    Unreachable {
        /// The API path.
        path: &'static str,
        /// Each endpoint with its reason, `; `-separated.
        reasons: String,
    },
    /// The exchange broke after the request may have arrived.
    #[error(
        "the exchange with etcd at {endpoint} for {path} failed, so it may or may not have \
         taken effect: {reason}"
    )]
    Broken {
        /// The endpoint.
        endpoint: String,
        /// The API path.
        path: &'static str,
        /// What broke.
        reason: String,
    },
    /// etcd answered with an error status.
    #[error("etcd at {endpoint} answered {path} with HTTP {status}: {message}")]
    Status {
        /// The endpoint.
        endpoint: String,
        /// The API path.
        path: &'static str,
        /// The HTTP status.
        status: u16,
        /// etcd's own message (the gateway's `error` field), or the start of the body.
        message: String,
    },
    /// etcd answered 200 with a body that is not the JSON etcd's gateway sends.
    #[error("etcd at {endpoint} answered {path} with unexpected JSON: {reason}")]
    Unexpected {
        /// The endpoint.
        endpoint: String,
        /// The API path.
        path: &'static str,
        /// What the parser found wrong.
        reason: String,
    },
}

/// A client of one etcd cluster, trying its endpoints in order.
///
/// Another endpoint is tried only when a request was never sent ([`TransportError::Unsent`]);
/// a request that may have arrived is not repeated. The endpoint that answered last is tried
/// first next time.
pub struct Client<T> {
    transport: T,
    endpoints: Vec<Endpoint>,
    preferred: Cell<usize>,
}

impl<T: Transport> Client<T> {
    /// A client of the cluster at `endpoints` (at least one).
    pub fn new(transport: T, endpoints: Vec<Endpoint>) -> Client<T> {
        Client {
            transport,
            endpoints,
            preferred: Cell::new(0),
        }
    }

    /// `KV.Range`: the keys in a range, or one key.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.call(RANGE, request)
    }

    /// `KV.Put`: set one key.
    pub fn put(&self, request: &PutRequest) -> Result<(), EtcdError> {
        self.call::<_, serde::de::IgnoredAny>(PUT, request)
            .map(drop)
    }

    /// `KV.DeleteRange`: delete one key, or the keys in a range.
    pub fn delete_range(&self, request: &DeleteRangeRequest) -> Result<(), EtcdError> {
        self.call::<_, serde::de::IgnoredAny>(DELETE_RANGE, request)
            .map(drop)
    }

    /// `KV.Txn`: compare, then run `success` or `failure`, atomically.
    pub fn txn(&self, request: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        self.call(TXN, request)
    }

    fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &'static str,
        request: &Q,
    ) -> Result<A, EtcdError> {
        // Serialising these plain records cannot fail; an empty body would be refused by etcd.
        let body = serde_json::to_vec(request).unwrap_or_default();
        let count = self.endpoints.len();
        let first = self.preferred.get();
        let mut reasons = Vec::new();
        for endpoint_index in (0..count).map(|i| (first + i) % count) {
            let endpoint = &self.endpoints[endpoint_index];
            let reply = match self.transport.post(endpoint, path, &body) {
                Ok(reply) => reply,
                Err(TransportError::Unsent(reason)) => {
                    reasons.push(format!("{endpoint}: {reason}"));
                    continue;
                }
                Err(TransportError::Failed(reason)) => {
                    return Err(EtcdError::Broken {
                        endpoint: endpoint.to_string(),
                        path,
                        reason,
                    });
                }
            };
            self.preferred.set(endpoint_index);
            return parse(endpoint, path, reply);
        }
        if reasons.is_empty() {
            reasons.push("no endpoint is configured".to_string());
        }
        Err(EtcdError::Unreachable {
            path,
            reasons: reasons.join("; "),
        })
    }
}

/// The answer's message when etcd refused, the parsed answer when it did not.
fn parse<A: DeserializeOwned>(
    endpoint: &Endpoint,
    path: &'static str,
    reply: Reply,
) -> Result<A, EtcdError> {
    if reply.status != 200 {
        return Err(EtcdError::Status {
            endpoint: endpoint.to_string(),
            path,
            status: reply.status,
            message: error_message(&reply.body),
        });
    }
    serde_json::from_slice(&reply.body).map_err(|e| EtcdError::Unexpected {
        endpoint: endpoint.to_string(),
        path,
        reason: e.to_string(),
    })
}

/// The gateway's error text (`{"error": "etcdserver: ...", "code": 11}`), or the start of a
/// body that is not such JSON (a proxy's page, for instance).
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct GatewayError {
        error: Option<String>,
        message: Option<String>,
    }
    if let Ok(GatewayError { error, message }) = serde_json::from_slice(body)
        && let Some(text) = error.or(message)
    {
        return text;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".to_string();
    }
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// `RangeRequest`: `[key, range_end)`, or `key` alone when `range_end` is empty. Without a
/// `sort_order`, etcd returns the keys in ascending bytewise order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RangeRequest {
    /// The first key.
    #[serde(with = "base64_bytes")]
    pub key: Vec<u8>,
    /// The end of the range, exclusive; see [`crate::layout::range_end`].
    #[serde(with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
    /// The most keys to return; 0 for no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: i64,
    /// The revision to read at; 0 for the latest.
    #[serde(skip_serializing_if = "is_zero")]
    pub revision: i64,
    /// Return keys without their values.
    #[serde(skip_serializing_if = "is_false")]
    pub keys_only: bool,
    /// Return only the `count` of matching keys.
    #[serde(skip_serializing_if = "is_false")]
    pub count_only: bool,
}

/// `PutRequest`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PutRequest {
    /// The key.
    #[serde(with = "base64_bytes")]
    pub key: Vec<u8>,
    /// Its new value.
    #[serde(with = "base64_bytes")]
    pub value: Vec<u8>,
}

/// `DeleteRangeRequest`: `[key, range_end)`, or `key` alone when `range_end` is empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteRangeRequest {
    /// The first key.
    #[serde(with = "base64_bytes")]
    pub key: Vec<u8>,
    /// The end of the range, exclusive.
    #[serde(with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
}

/// `TxnRequest`: if every `compare` holds, `success` runs; else nothing (an empty `failure`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TxnRequest {
    /// The conditions.
    pub compare: Vec<Compare>,
    /// The operations when they all hold.
    pub success: Vec<RequestOp>,
}

/// `Compare` with `result: EQUAL` and `target: MOD`: "the key's `mod_revision` is this".
///
/// A key that does not exist compares as having `mod_revision` 0 (etcd compares a missing
/// key as an empty `KeyValue` for every target but `VALUE`), so 0 means "absent".
#[derive(Debug, Clone, Serialize)]
pub struct Compare {
    result: &'static str,
    target: &'static str,
    #[serde(with = "base64_bytes")]
    key: Vec<u8>,
    // Sent even when 0: it selects the comparison's target field.
    mod_revision: i64,
}

impl Compare {
    /// The key `key` was last modified at `mod_revision`, or is absent when it is 0.
    pub fn mod_revision(key: Vec<u8>, mod_revision: i64) -> Compare {
        Compare {
            result: "EQUAL",
            target: "MOD",
            key,
            mod_revision,
        }
    }
}

/// `RequestOp`: one operation of a transaction; only puts are sent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOp {
    /// A `PutRequest`.
    RequestPut(PutRequest),
}

/// `ResponseHeader`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResponseHeader {
    /// The store's revision when the request was served.
    #[serde(default, with = "int64")]
    pub revision: i64,
}

/// `mvccpb.KeyValue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct KeyValue {
    /// The key.
    #[serde(with = "base64_bytes")]
    pub key: Vec<u8>,
    /// The revision of the key's last creation.
    #[serde(default, with = "int64")]
    pub create_revision: i64,
    /// The revision of the key's last change.
    #[serde(default, with = "int64")]
    pub mod_revision: i64,
    /// The value; empty when the request asked for keys only.
    #[serde(default, with = "base64_bytes")]
    pub value: Vec<u8>,
}

/// `RangeResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RangeResponse {
    /// The header.
    #[serde(default)]
    pub header: ResponseHeader,
    /// The keys found, at most `limit` of them; empty (absent in JSON) when none.
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
    /// Whether the range holds more keys than `limit` let through.
    #[serde(default)]
    pub more: bool,
    /// How many keys the range holds.
    #[serde(default, with = "int64")]
    pub count: i64,
}

/// `TxnResponse`; the answers of the operations that ran are not read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TxnResponse {
    /// The header.
    #[serde(default)]
    pub header: ResponseHeader,
    /// Whether every comparison held, so that `success` ran.
    #[serde(default)]
    pub succeeded: bool,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// protobuf `bytes` in JSON: standard base64 with padding.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// protobuf `int64` in JSON: a string of digits as etcd sends it; a number is taken too.
mod int64 {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Text(String),
        Number(i64),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Int64::deserialize(d)? {
            Int64::Number(n) => Ok(n),
            Int64::Text(text) => text
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("{text:?} is not an int64"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    #[test]
    fn requests_are_etcds_json_with_base64_keys() {
        let range = RangeRequest {
            key: b"p/config/".to_vec(),
            range_end: b"p/config0".to_vec(),
            limit: 1000,
            revision: 42,
            keys_only: true,
            ..RangeRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&range).unwrap(),
            json!({"key": "cC9jb25maWcv", "range_end": "cC9jb25maWcw", "limit": 1000,
                   "revision": 42, "keys_only": true})
        );
        let one = RangeRequest {
            key: b"k".to_vec(),
            count_only: true,
            ..RangeRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&one).unwrap(),
            json!({"key": "aw==", "count_only": true})
        );
        let txn = TxnRequest {
            compare: vec![Compare::mod_revision(b"k".to_vec(), 0)],
            success: vec![RequestOp::RequestPut(PutRequest {
                key: b"k".to_vec(),
                value: vec![0xff, 0],
            })],
        };
        assert_eq!(
            serde_json::to_value(&txn).unwrap(),
            json!({
                "compare": [{"result": "EQUAL", "target": "MOD", "key": "aw==", "mod_revision": 0}],
                "success": [{"request_put": {"key": "aw==", "value": "/wA="}}],
            })
        );
    }

    #[test]
    fn answers_parse_with_int64_strings_and_absent_defaults() {
        // As etcd 3.4 answers a range that found nothing: no `kvs`, no `count`.
        let empty: RangeResponse = serde_json::from_str(
            r#"{"header":{"cluster_id":"15118495548433857066","member_id":"1","revision":"7","raft_term":"2"}}"#,
        )
        .unwrap();
        assert_eq!(empty.header.revision, 7);
        assert!(empty.kvs.is_empty());
        assert_eq!((empty.count, empty.more), (0, false));

        let found: RangeResponse = serde_json::from_str(
            r#"{"header":{"revision":"9223372036854775807"},"kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"5","version":"3","value":"Yg=="},{"key":"Yw==","create_revision":3,"mod_revision":"4","version":"1"}],"more":true,"count":"12"}"#,
        )
        .unwrap();
        assert_eq!(found.header.revision, i64::MAX);
        assert_eq!(
            found.kvs,
            [
                KeyValue {
                    key: b"a".to_vec(),
                    create_revision: 2,
                    mod_revision: 5,
                    value: b"b".to_vec()
                },
                KeyValue {
                    key: b"c".to_vec(),
                    create_revision: 3,
                    mod_revision: 4,
                    value: Vec::new()
                },
            ]
        );
        assert_eq!((found.count, found.more), (12, true));

        // A failed comparison: no `succeeded`.
        let failed: TxnResponse = serde_json::from_str(r#"{"header":{"revision":"3"}}"#).unwrap();
        assert!(!failed.succeeded);
        let succeeded: TxnResponse = serde_json::from_str(
            r#"{"header":{"revision":"3"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}]}"#,
        )
        .unwrap();
        assert!(succeeded.succeeded);
        assert_eq!(succeeded.header.revision, 3);
    }

    #[test]
    fn malformed_answers_are_refused() {
        for bad in [
            r#"{"header":{"revision":"seven"}}"#,
            r#"{"kvs":[{"key":"not base64!"}]}"#,
            r#"{"kvs":[{"value":"YQ=="}]}"#,
            r#"{"count":"1.5"}"#,
            r#""a range""#,
        ] {
            assert!(serde_json::from_str::<RangeResponse>(bad).is_err(), "{bad}");
        }
    }

    /// Answers from a script, and the endpoints asked, in order.
    struct Script {
        answers: RefCell<Vec<Result<Reply, TransportError>>>,
        asked: RefCell<Vec<String>>,
    }

    impl Transport for &Script {
        fn post(
            &self,
            endpoint: &Endpoint,
            path: &str,
            body: &[u8],
        ) -> Result<Reply, TransportError> {
            assert!(serde_json::from_slice::<serde_json::Value>(body).is_ok());
            self.asked.borrow_mut().push(endpoint.url(path));
            self.answers.borrow_mut().remove(0)
        }
    }

    fn script(answers: Vec<Result<Reply, TransportError>>) -> Script {
        Script {
            answers: RefCell::new(answers),
            asked: RefCell::new(Vec::new()),
        }
    }

    fn endpoints() -> Vec<Endpoint> {
        ["http://a:1", "http://b:2"]
            .iter()
            .map(|url| Endpoint::parse(url).unwrap())
            .collect()
    }

    fn ok(body: &str) -> Result<Reply, TransportError> {
        Ok(Reply {
            status: 200,
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn an_unreachable_endpoint_passes_to_the_next_which_is_then_tried_first() {
        let script = script(vec![
            Err(TransportError::Unsent("connection refused".into())),
            ok("{}"),
            ok("{}"),
        ]);
        let client = Client::new(&script, endpoints());
        client.put(&PutRequest::default()).unwrap();
        client.delete_range(&DeleteRangeRequest::default()).unwrap();
        assert_eq!(
            *script.asked.borrow(),
            [
                "http://a:1/v3/kv/put",
                "http://b:2/v3/kv/put",
                "http://b:2/v3/kv/deleterange"
            ]
        );
    }

    #[test]
    fn failures_say_where_and_what() {
        let unsent = || Err(TransportError::Unsent("connection refused".into()));
        let script = script(vec![
            unsent(),
            unsent(),
            Err(TransportError::Failed("no answer within 5s".into())),
            Ok(Reply {
                status: 400,
                body: br#"{"error":"etcdserver: mvcc: required revision is a future revision","code":11}"#.to_vec(),
            }),
            Ok(Reply {
                status: 502,
                body: b"<html>Bad Gateway</html>".to_vec(),
            }),
            ok(r#"{"kvs":"nope"}"#),
        ]);
        let client = Client::new(&script, endpoints());
        let range = RangeRequest::default();
        let messages: Vec<String> = (0..5)
            .map(|_| client.range(&range).unwrap_err().to_string())
            .collect();
        assert_eq!(
            messages[..4],
            [
                "no etcd endpoint could be reached for /v3/kv/range: http://a:1: connection \
                 refused; http://b:2: connection refused",
                "the exchange with etcd at http://a:1 for /v3/kv/range failed, so it may or may \
                 not have taken effect: no answer within 5s",
                "etcd at http://a:1 answered /v3/kv/range with HTTP 400: etcdserver: mvcc: \
                 required revision is a future revision",
                "etcd at http://a:1 answered /v3/kv/range with HTTP 502: <html>Bad \
                 Gateway</html>",
            ]
        );
        assert!(
            messages[4]
                .starts_with("etcd at http://a:1 answered /v3/kv/range with unexpected JSON: "),
            "{}",
            messages[4]
        );
    }

    #[test]
    fn a_long_error_body_is_cut() {
        let message = error_message("x".repeat(500).as_bytes());
        assert_eq!(message, format!("{}…", "x".repeat(200)));
        assert_eq!(error_message(b""), "(no message)");
        assert_eq!(error_message(br#"{"message":"m","code":2}"#), "m");
    }
}
