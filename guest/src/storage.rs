//! Typed JSON records on top of the host's key-value buckets.
//!
//! Every failure names the bucket and key it concerns, never the value: values can hold
//! passwords and Hub sessions.

use crate::api::{EngineError, Response};
use crate::capabilities::{Bucket, Host};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn load<T: DeserializeOwned>(
    host: &dyn Host,
    bucket: Bucket,
    key: &str,
) -> Result<Option<T>, EngineError> {
    let Some(bytes) = host.get(bucket, key).map_err(|e| {
        EngineError::Internal(format!(
            "reading {}/{key} from storage failed: {e}",
            bucket.name()
        ))
    })?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        // serde's message names the position and expected type, not the content.
        EngineError::Internal(format!(
            "stored record {}/{key} is corrupt: {e}",
            bucket.name()
        ))
    })
}

pub fn save<T: Serialize>(
    host: &dyn Host,
    bucket: Bucket,
    key: &str,
    value: &T,
) -> Result<(), EngineError> {
    let bytes = serde_json::to_vec(value).map_err(|e| {
        EngineError::Internal(format!("encoding {}/{key} failed: {e}", bucket.name()))
    })?;
    host.set(bucket, key, &bytes).map_err(|e| {
        EngineError::Internal(format!(
            "writing {}/{key} to storage failed: {e}",
            bucket.name()
        ))
    })
}

pub fn remove(host: &dyn Host, bucket: Bucket, key: &str) -> Result<(), EngineError> {
    host.delete(bucket, key).map_err(|e| {
        EngineError::Internal(format!(
            "deleting {}/{key} from storage failed: {e}",
            bucket.name()
        ))
    })
}

pub fn keys(host: &dyn Host, bucket: Bucket) -> Result<Vec<String>, EngineError> {
    let mut keys = host.list(bucket).map_err(|e| {
        EngineError::Internal(format!("listing {} in storage failed: {e}", bucket.name()))
    })?;
    keys.sort_unstable();
    Ok(keys)
}

/// A `LIST` answer with the bucket's keys, sorted: `{"keys": [...]}`.
pub fn key_list(host: &dyn Host, bucket: Bucket) -> Result<Response, EngineError> {
    let mut data = serde_json::Map::new();
    data.insert("keys".into(), serde_json::json!(keys(host, bucket)?));
    Ok(Response::data(data))
}
