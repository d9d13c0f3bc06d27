//! What counts as a valid account, namespace, scope and label.
//!
//! Checked before anything is stored or sent to Docker Hub, so that a typo is a 400 that
//! names the mistake instead of a confusing Hub error later.

use crate::api::EngineError;

/// Docker Hub's PAT scopes, broadest first: each includes the ones after it.
pub const SCOPES: [&str; 4] = ["repo:admin", "repo:write", "repo:read", "repo:public_read"];

/// The longest label a caller may choose, in characters: the Hub's `token_label` allows 100
/// (its OpenAPI description, `maxLength: 100`) and [`token_label`] adds a prefix and an id.
pub const MAX_LABEL_LEN: usize = 64;

/// The longest password accepted, in bytes. Password managers generate at most 64 to 128
/// characters, and a personal access token (which the Hub also accepts as the secret) has
/// about 40: no password an account really uses comes near this. Checked before any Hub
/// call, so that an absurd value is a 400 naming the field, not a stalled login request.
pub const MAX_PASSWORD_BYTES: usize = 512;

/// The longest TOTP seed accepted, in characters: 128 base32 characters are 640 bits, four
/// times the 160-bit key RFC 4226 (section 4) recommends and authenticator apps use.
pub const MAX_TOTP_SECRET_CHARS: usize = 128;

/// At most this many characters of a rejected value are quoted back in an error.
const MAX_QUOTED_CHARS: usize = 64;

/// A field over its limit: a 400 that names the field and its limit, and never quotes the
/// value (it may be a password).
pub fn check_length(field: &str, value: &str, max: usize, unit: &str) -> Result<(), EngineError> {
    let length = match unit {
        "bytes" => value.len(),
        _ => value.chars().count(),
    };
    if length > max {
        return Err(EngineError::invalid(format!(
            "{field} is too long: {length} {unit}, at most {max}"
        )));
    }
    Ok(())
}

/// A rejected value as an error quotes it: in full when short, else its start and its length,
/// so that a huge value does not come back whole in the answer or the log.
pub fn quoted(value: &str) -> String {
    let count = value.chars().count();
    if count <= MAX_QUOTED_CHARS {
        format!("{value:?}")
    } else {
        let start: String = value.chars().take(MAX_QUOTED_CHARS).collect();
        format!("{start:?}... ({count} characters)")
    }
}

/// The longest role name, in characters.
pub const MAX_ROLE_NAME: usize = 128;

/// Role names are the engine's own, as Vault's roles: 1 to 128 letters, digits, `_`, `-` and
/// `.`, starting with a letter or digit.
pub fn check_role(name: &str) -> Result<(), EngineError> {
    let valid = (1..=MAX_ROLE_NAME).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(EngineError::invalid(format!(
            "role {} is not a valid role name: use 1 to {MAX_ROLE_NAME} letters, digits, '_', \
             '-' and '.', starting with a letter or digit",
            quoted(name)
        )))
    }
}

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
            "{what} {} is not a valid Docker Hub name: use 2 to 255 lowercase letters and \
             digits, optionally joined by single '.', '_' or '-'",
            quoted(name)
        )))
    }
}

pub fn check_scope(what: &str, scope: &str) -> Result<(), EngineError> {
    if SCOPES.contains(&scope) {
        Ok(())
    } else {
        Err(EngineError::invalid(format!(
            "{what} {} is not a Docker Hub scope: use one of {}",
            quoted(scope),
            SCOPES.join(", ")
        )))
    }
}

/// What Docker Hub shows as a label: any character but a control character (a line break,
/// a tab, an escape), which would garble its UI and our logs.
fn is_label_char(c: char) -> bool {
    !c.is_control()
}

/// A label a caller chose: 1 to [`MAX_LABEL_LEN`] characters, no control characters, no
/// space at either end. A GitLab project path (`acme/app`), a pipeline name with spaces or
/// a job URL are labels.
pub fn check_label(label: &str) -> Result<(), EngineError> {
    let length = label.chars().count();
    if length == 0
        || length > MAX_LABEL_LEN
        || !label.chars().all(is_label_char)
        || label.trim() != label
    {
        return Err(EngineError::invalid(format!(
            "label {} is not valid: use 1 to {MAX_LABEL_LEN} characters, with no control \
             characters and no space at either end",
            quoted(label)
        )));
    }
    Ok(())
}

/// The label used when a caller sets none: the requester's display name made a valid label
/// (Vault display names look like `token-ci-runner`, `approle` or `jwt-acme/app`), as
/// [`as_label`] makes one; `vault` when nothing is left.
pub fn default_label(display_name: Option<&str>) -> String {
    display_name
        .and_then(as_label)
        .unwrap_or_else(|| "vault".to_string())
}

/// `text` made a valid label, the way a label the engine chooses (a display name, a rendered
/// `label_template`) is made one: control characters become `-`, spaces and `-` at either
/// end go, and it is cut to [`MAX_LABEL_LEN`] characters; `None` when nothing is left.
pub fn as_label(text: &str) -> Option<String> {
    let label: String = text
        .chars()
        .map(|c| if is_label_char(c) { c } else { '-' })
        .collect();
    let label: String = label
        .trim_matches(|c: char| c == '-' || c.is_whitespace())
        .chars()
        .take(MAX_LABEL_LEN)
        .collect();
    match label.trim_end() {
        "" => None,
        label => Some(label.to_string()),
    }
}

/// The `token_label` shown in Docker Hub's UI (a personal token's `token_label`, an
/// organization token's `label`): says which engine made the token, for which label, and
/// ends in this mount's tag (see [`crate::mount`]) and the first 8 hex digits of the
/// write-ahead id, which let rollback find a token whose creation was interrupted and tidy
/// tell this mount's tokens from any other's: `dockerhub-secrets:<label>:<tag><id>`. At most
/// 18 + 64 + 1 + 16 = 99 characters, within the Hub's 100.
pub fn token_label(label: &str, mount_tag: &str, wal_id: &str) -> String {
    let id: String = wal_id.chars().take(8).collect();
    format!("{TOKEN_LABEL_PREFIX}{label}:{mount_tag}{id}")
}

const TOKEN_LABEL_PREFIX: &str = "dockerhub-secrets:";

/// The mount tag in a token label made by [`token_label`]; `None` for any other label (a
/// token made by hand, by another tool, or by this engine before labels carried a tag, whose
/// 16 digits then read as a tag that matches no mount's but by chance).
pub fn mount_tag_of(token_label: &str) -> Option<&str> {
    let rest = token_label.strip_prefix(TOKEN_LABEL_PREFIX)?;
    let (_, suffix) = rest.rsplit_once(':')?;
    let hex = suffix.len() == 16
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| &suffix[..crate::mount::TAG_LEN])
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
    fn over_long_values_are_named_not_quoted_whole() {
        let huge = "x".repeat(100_000);
        for err in [
            check_namespace("namespace", &huge).unwrap_err(),
            check_scope("scope", &huge).unwrap_err(),
            check_label(&huge).unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(text.len() < 400, "{}", &text[..400]);
            assert!(text.contains("100000 characters"), "{text}");
        }
        let secret = "p".repeat(MAX_PASSWORD_BYTES + 1);
        let text = check_length("password", &secret, MAX_PASSWORD_BYTES, "bytes")
            .unwrap_err()
            .to_string();
        assert_eq!(text, "password is too long: 513 bytes, at most 512");
        assert!(check_length("password", &secret[1..], MAX_PASSWORD_BYTES, "bytes").is_ok());
        // Bytes, not characters: 200 four-byte characters are 800 bytes.
        assert!(check_length("password", &"😀".repeat(200), 512, "bytes").is_err());
        assert!(check_length("totp_secret", &"😀".repeat(128), 128, "characters").is_ok());
        assert_eq!(quoted("short"), "\"short\"");
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
        for ok in [
            "release-build",
            "acme/app",
            "acme/app: deploy #42",
            "ünïcødé ✓",
            "https://gitlab.example/acme/app/-/jobs/7",
            &"a".repeat(64),
            &"ü".repeat(64),
        ] {
            assert!(check_label(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " x",
            "x ",
            "line\nbreak",
            "tab\there",
            "\u{1b}[31m",
            &"a".repeat(65),
        ] {
            let err = check_label(bad).unwrap_err().to_string();
            assert!(err.contains("no control characters"), "{bad}: {err}");
        }
    }

    #[test]
    fn default_labels_are_valid() {
        assert_eq!(default_label(Some("token-ci-runner")), "token-ci-runner");
        assert_eq!(default_label(Some("jwt-acme/app")), "jwt-acme/app");
        assert_eq!(default_label(Some("oidc-Jane Doe")), "oidc-Jane Doe");
        assert_eq!(default_label(Some("a\nb")), "a-b");
        assert_eq!(default_label(Some("  ")), "vault");
        assert_eq!(default_label(None), "vault");
        for long in ["x".repeat(300), format!("{} y", "x".repeat(63))] {
            let label = default_label(Some(&long));
            assert!(check_label(&label).is_ok(), "{label:?}");
        }
    }

    #[test]
    fn labels_the_engine_makes_follow_the_label_rules() {
        assert_eq!(as_label("ci-acme/app").as_deref(), Some("ci-acme/app"));
        assert_eq!(as_label("ci-\tacme\n").as_deref(), Some("ci--acme"));
        assert_eq!(as_label(" \n "), None);
        let long = format!("ci-{}", "ü".repeat(100));
        let label = as_label(&long).unwrap();
        assert_eq!(label.chars().count(), MAX_LABEL_LEN);
        assert!(check_label(&label).is_ok());
        // Cut just after a space: the space goes too.
        let label = as_label(&format!("{} y", "x".repeat(63))).unwrap();
        assert_eq!(label, "x".repeat(63));
    }

    #[test]
    fn role_names() {
        for ok in ["r", "App_Pull", "ci.release-2", &"a".repeat(128)] {
            assert!(check_role(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-r", ".r", "a/b", "a b", "ü", &"a".repeat(129)] {
            let err = check_role(bad).unwrap_err();
            assert!(
                err.to_string().contains("not a valid role name"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn token_label_fits_the_hub_limit() {
        let label = token_label(&"ü".repeat(MAX_LABEL_LEN), "0a1b2c3d", "0123456789abcdef");
        assert_eq!(label.chars().count(), 99);
    }

    #[test]
    fn the_mount_tag_is_read_back_only_from_the_engines_labels() {
        let label = token_label("acme/app: deploy:1", "0a1b2c3d", "fedcba9876543210");
        assert_eq!(
            label,
            "dockerhub-secrets:acme/app: deploy:1:0a1b2c3dfedcba98"
        );
        assert_eq!(mount_tag_of(&label), Some("0a1b2c3d"));
        for other in [
            "release-build",
            "dockerhub-secrets:x:0a1b2c3d",
            "dockerhub-secrets:x:0a1b2c3dfedcba9",
            "dockerhub-secrets:x:0A1B2C3DFEDCBA98",
            "dockerhub-secretsx:0a1b2c3dfedcba98",
            "my-dockerhub-secrets:x:0a1b2c3dfedcba98",
            "dockerhub-secrets:x:0a1b2c3dfedcba98 ",
        ] {
            assert_eq!(mount_tag_of(other), None, "{other}");
        }
    }
}
