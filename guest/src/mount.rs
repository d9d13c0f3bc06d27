//! The mount's id, and the tag made of it that every token label carries, so that a tidy
//! deletes only tokens this mount made: two mounts (or two hosts) sharing one Docker account
//! or organization never delete each other's tokens, and tokens made by hand or by other
//! tools, whose labels carry no such tag, are never touched.
//!
//! The id is the host's when it has one (OpenBao: the mount's backend UUID, made when the
//! mount was enabled and kept in the mount table, so it survives a wipe of the mount's
//! storage and a restore of a backup). Otherwise the engine makes one, the first time it needs
//! it, and keeps it in its storage (bucket `mount`, key `id`): `serve` and the gateway, whose
//! storage is the mount.

use crate::api::EngineError;
use crate::capabilities::{Bucket, Host, Level};
use crate::storage;
use sha2::{Digest, Sha256};

/// Hex digits of the tag: the first 32 bits of the SHA-256 of the mount's id. Two mounts
/// sharing an account collide with a chance of one in 2^32.
pub const TAG_LEN: usize = 8;
const ID_KEY: &str = "id";

/// This mount's tag: [`TAG_LEN`] lowercase hex digits.
pub fn tag(host: &dyn Host) -> Result<String, EngineError> {
    let id = match host.mount_id() {
        Some(id) => id,
        None => own_id(host)?,
    };
    let digest = Sha256::digest(id.as_bytes());
    Ok(digest
        .iter()
        .take(TAG_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The description of an organization access token the engine makes for `role`: it names
/// the mount's tag, which a tidy checks besides the label's before it deletes such a token.
pub fn token_description(tag: &str, role: &str) -> String {
    format!("{DESCRIPTION_PREFIX}{tag}, role {role}")
}

/// Whether an organization access token's description says this mount (`tag`) made it.
pub fn described_as_ours(description: &str, tag: &str) -> bool {
    description
        .strip_prefix(DESCRIPTION_PREFIX)
        .and_then(|rest| rest.strip_prefix(tag))
        .is_some_and(|rest| rest.starts_with(", role "))
}

const DESCRIPTION_PREFIX: &str = "dockerhub-secrets mount ";

/// The id the engine keeps for a host that has none, made on first use.
fn own_id(host: &dyn Host) -> Result<String, EngineError> {
    if let Some(id) = storage::load::<String>(host, Bucket::Mount, ID_KEY)? {
        return Ok(id);
    }
    let id = format!("{:016x}{:016x}", host.random_u64(), host.random_u64());
    storage::save(host, Bucket::Mount, ID_KEY, &id)?;
    host.log(
        Level::Info,
        "mount",
        "made this mount's id: the host has none; tokens carry a tag of it",
    );
    Ok(id)
}
