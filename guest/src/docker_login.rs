//! The fields of a token response that make it ready for `docker login` and Kubernetes, so
//! that a pipeline or a secrets operator needs no string building.
//!
//! - `registry`: Docker Hub's registry key in Docker's config, `https://index.docker.io/v1/`.
//! - `auth`: base64 (standard, padded) of `username:token`, the form Docker's config keeps.
//! - `docker_config`: the JSON text of `~/.docker/config.json`,
//!   `{"auths":{"https://index.docker.io/v1/":{"auth":"…"}}}`. It is also the payload of a
//!   Kubernetes secret of type `kubernetes.io/dockerconfigjson` (its `.dockerconfigjson` key).
//!
//! `docker_config` is text, not a nested object, so that `vault read -field=docker_config`
//! prints it as it is and a template copies it without re-encoding.
//!
//! Sources: Docker's CLI config file (`docker/cli` `configfile`, the `auths` map and its
//! `auth` field), Kubernetes "Pull an Image from a Private Registry" (the
//! `kubernetes.io/dockerconfigjson` secret type).

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The key under which Docker's CLI keeps Docker Hub's credentials.
pub const REGISTRY: &str = "https://index.docker.io/v1/";

/// Add `registry`, `auth` and `docker_config` for `username` (the account for a personal
/// token, the organization for an organization token) and its `token` to a response.
/// They hold the token: like `token`, they are secrets.
pub fn add_fields(out: &mut Map<String, Value>, username: &str, token: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
    let config = json!({ "auths": { REGISTRY: { "auth": auth } } });
    out.insert("registry".into(), Value::from(REGISTRY));
    out.insert("auth".into(), Value::from(auth));
    out.insert("docker_config".into(), Value::from(config.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(auth: &str) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn auth_and_docker_config_carry_username_and_token() {
        let mut out = Map::new();
        add_fields(&mut out, "acme", "dckr_oat_7awgM4jG5SQvxcvmNzhKj8PQjxo");
        assert_eq!(out["registry"], "https://index.docker.io/v1/");
        let auth = out["auth"].as_str().unwrap();
        assert_eq!(decode(auth), "acme:dckr_oat_7awgM4jG5SQvxcvmNzhKj8PQjxo");
        let config: Value = serde_json::from_str(out["docker_config"].as_str().unwrap()).unwrap();
        assert_eq!(
            config,
            json!({"auths": {"https://index.docker.io/v1/": {"auth": auth}}})
        );
    }

    #[test]
    fn a_token_with_any_characters_round_trips() {
        // Docker splits `auth` at the first colon: the username has none, the token may.
        let mut out = Map::new();
        add_fields(&mut out, "hoeg", "a:b/c+d=\"e\u{e9}");
        assert_eq!(
            decode(out["auth"].as_str().unwrap()),
            "hoeg:a:b/c+d=\"e\u{e9}"
        );
        let config: Value = serde_json::from_str(out["docker_config"].as_str().unwrap()).unwrap();
        assert_eq!(config["auths"][REGISTRY]["auth"], out["auth"]);
    }
}
