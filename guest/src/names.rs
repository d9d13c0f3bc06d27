//! What counts as a valid account, namespace, scope and label.
//!
//! Checked before anything is stored or sent to Docker Hub, so that a typo is a 400 that
//! names the mistake instead of a confusing Hub error later.

use crate::api::EngineError;

/// Docker Hub's PAT scopes, broadest first: each includes the ones after it.
pub const SCOPES: [&str; 4] = ["repo:admin", "repo:write", "repo:read", "repo:public_read"];

/// The longest label a caller may choose: the Hub's `token_label` allows 100 characters
/// and [`token_label`] adds a prefix and an id.
pub const MAX_LABEL_LEN: usize = 64;

/// Accounts and namespaces follow the registry's repository-namespace grammar:
/// lowercase alphanumeric runs joined by single `.`, `_` or `-`.
pub fn check_namespace(what: &str, name: &str) -> Result<(), EngineError> {
    let valid = (2..=255).contains(&name.len())
        && name.split(['.', '_', '-']).all(|run| {
            !run.is_empty()
                && run
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if valid {
        Ok(())
    } else {
        Err(EngineError::invalid(format!(
            "{what} {name:?} is not a valid Docker Hub name: use 2 to 255 lowercase letters and \
             digits, optionally joined by single '.', '_' or '-'"
        )))
    }
}

pub fn check_scope(what: &str, scope: &str) -> Result<(), EngineError> {
    if SCOPES.contains(&scope) {
        Ok(())
    } else {
        Err(EngineError::invalid(format!(
            "{what} {scope:?} is not a Docker Hub scope: use one of {}",
            SCOPES.join(", ")
        )))
    }
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | '=')
}

pub fn check_label(label: &str) -> Result<(), EngineError> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN || !label.chars().all(is_label_char) {
        return Err(EngineError::invalid(format!(
            "label {label:?} is not valid: use 1 to {MAX_LABEL_LEN} letters, digits or '-', '_', \
             '.', '@', '+', '='"
        )));
    }
    Ok(())
}

/// The label used when a caller sets none: the requester's display name made valid
/// (Vault display names look like `token-ci-runner` or `approle`), else `vault`.
pub fn default_label(display_name: Option<&str>) -> String {
    let label: String = display_name
        .unwrap_or_default()
        .chars()
        .map(|c| if is_label_char(c) { c } else { '-' })
        .take(MAX_LABEL_LEN)
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "vault".to_string()
    } else {
        label.to_string()
    }
}

/// The `token_label` shown in Docker Hub's UI: says which engine made the token, for which
/// label, and carries the write-ahead id that lets rollback find a token whose creation
/// was interrupted.
pub fn token_label(label: &str, wal_id: &str) -> String {
    format!("dockerhub-secrets:{label}:{wal_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["hoeg", "my-organization", "a1", "team.ci_bot-2"] {
            assert!(check_namespace("namespace", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "x", "Hoeg", "my--org", "-org", "org-", "my org", "a/b", "ørg", "a..b",
        ] {
            let err = check_namespace("namespace", bad).unwrap_err();
            assert!(err.to_string().contains("namespace"), "{bad}: {err}");
        }
        assert!(check_namespace("namespace", &"a".repeat(256)).is_err());
    }

    #[test]
    fn scopes() {
        for s in SCOPES {
            assert!(check_scope("scope", s).is_ok());
        }
        let err = check_scope("scope", "repo:push").unwrap_err().to_string();
        assert!(
            err.contains("repo:push") && err.contains("repo:admin"),
            "{err}"
        );
    }

    #[test]
    fn labels() {
        assert!(check_label("release-build").is_ok());
        assert!(check_label(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "semi;colon", "ünï", &"a".repeat(65)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_labels_are_valid() {
        assert_eq!(default_label(Some("token-ci-runner")), "token-ci-runner");
        assert_eq!(default_label(Some("root")), "root");
        assert_eq!(default_label(Some("oidc-Jane Doe")), "oidc-Jane-Doe");
        assert_eq!(default_label(Some("  ")), "vault");
        assert_eq!(default_label(None), "vault");
        let long = default_label(Some(&"x".repeat(300)));
        assert!(check_label(&long).is_ok());
    }

    #[test]
    fn token_label_fits_the_hub_limit() {
        let label = token_label(&"a".repeat(MAX_LABEL_LEN), "0123456789abcdef");
        assert!(label.len() <= 100, "{}", label.len());
    }
}
