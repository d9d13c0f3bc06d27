//! A verified token's claims as OpenBao's jwt auth method reads them (`claims.go`): a claim
//! named with a leading `/` is a JSON pointer (RFC 6901), a number is compared as the integer
//! it truncates to, `aud` is always a list; bound claims match exactly or as globs, any value
//! of a list matching any value of the other; mapped claims must be strings.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A value a role's `bound_claims` accepts, as OpenBao keeps it (JSON decoded with
/// `UseNumber`): a string matches only a string claim (GitLab's `ref_protected` is the
/// string `"true"`), a boolean only a boolean, a number only a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expected {
    String(String),
    Bool(bool),
    /// The number as written (`42`).
    Number(String),
}

impl Expected {
    /// One value of a `bound_claims` entry.
    pub fn from_json(value: &Value) -> Option<Expected> {
        match value {
            Value::String(s) => Some(Expected::String(s.clone())),
            Value::Bool(b) => Some(Expected::Bool(*b)),
            Value::Number(n) => Some(Expected::Number(n.to_string())),
            _ => None,
        }
    }
}

/// A claim as OpenBao's `getClaim` returns it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Claim<'a> {
    String(&'a str),
    Bool(bool),
    /// A number, truncated to an integer (`getClaim`'s `strconv.Itoa(int(v))`).
    Number(String),
    List(Vec<&'a Value>),
    Object,
}

/// The claim `name` (a JSON pointer if it starts with `/`); `None` when absent or null.
pub(crate) fn get<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<Claim<'a>> {
    let value = match name.starts_with('/') {
        true => pointer(claims, name)?,
        false => claims.get(name)?,
    };
    Some(match value {
        Value::Null => return None,
        // RFC 7519 §4.1.3: one audience may be a plain string.
        Value::String(_) if name == "aud" => Claim::List(vec![value]),
        Value::String(s) => Claim::String(s),
        Value::Bool(b) => Claim::Bool(*b),
        Value::Number(n) => Claim::Number(truncate(n)),
        Value::Array(items) => Claim::List(items.iter().collect()),
        Value::Object(_) => Claim::Object,
    })
}

fn pointer<'a>(claims: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let (first, rest) = match pointer[1..].split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (&pointer[1..], None),
    };
    let first = first.replace("~1", "/").replace("~0", "~");
    let value = claims.get(&first)?;
    match rest {
        None => Some(value),
        Some(rest) => value.pointer(&format!("/{rest}")),
    }
}

fn truncate(n: &serde_json::Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (_, Some(u), _) => u.to_string(),
        (_, _, Some(f)) => (f.trunc() as i64).to_string(),
        _ => n.to_string(),
    }
}

/// The user claim, as OpenBao's `createIdentity` reads it: by its name in the claims, or as
/// `getClaim` does with `user_claim_json_pointer` (so a JSON pointer if it starts with `/`);
/// it must be a string.
pub(crate) fn user<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
    json_pointer: bool,
) -> Result<&'a str, String> {
    let found = match json_pointer {
        true => get(claims, name).map(|claim| match claim {
            Claim::String(s) => Some(s),
            _ => None,
        }),
        false => match claims.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_str()),
        },
    };
    match found {
        None => Err(format!("claim {name:?} not found in token")),
        Some(Some(s)) => Ok(s),
        Some(None) => Err(format!("claim {name:?} could not be converted to string")),
    }
}

/// OpenBao's `extractMetadata`: each mapped claim that is present, under its metadata key;
/// a mapped claim that is not a string is an error.
pub(crate) fn metadata(
    claims: &Map<String, Value>,
    mappings: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut metadata = BTreeMap::new();
    for (claim, key) in mappings {
        match get(claims, claim) {
            None => {}
            Some(Claim::String(s)) => {
                metadata.insert(key.clone(), s.to_owned());
            }
            Some(_) => return Err(format!("error converting claim '{claim}' to string")),
        }
    }
    Ok(metadata)
}

/// OpenBao's `validateBoundClaims`: every bound claim is present and one of its values
/// matches one of the claim's values.
pub(crate) fn check_bound(
    claims: &Map<String, Value>,
    bound: &BTreeMap<String, Vec<Expected>>,
    globs: bool,
) -> Result<(), String> {
    for (name, expected) in bound {
        let actual = match get(claims, name) {
            None => return Err(format!("claim {name:?} is missing")),
            Some(Claim::Object) => {
                return Err(format!(
                    "received claim is not a string, bool, int or list: {}",
                    display(claims, name)
                ));
            }
            Some(Claim::List(items)) => items.into_iter().map(Actual::Item).collect(),
            Some(scalar) => vec![Actual::Top(scalar)],
        };
        let found = expected
            .iter()
            .any(|e| actual.iter().any(|a| matches(e, a, globs)));
        if !found {
            return Err(format!(
                "claim {name:?} does not match any associated bound claim values"
            ));
        }
    }
    Ok(())
}

fn display(claims: &Map<String, Value>, name: &str) -> String {
    let value = match name.starts_with('/') {
        true => pointer(claims, name),
        false => claims.get(name),
    };
    value.map(Value::to_string).unwrap_or_default()
}

/// One value of a claim: the claim itself (numbers already truncated), or an item of a
/// list claim, which OpenBao compares as decoded (a number in a list is a float64 there,
/// equal to no configured value).
enum Actual<'a> {
    Top(Claim<'a>),
    Item(&'a Value),
}

fn matches(expected: &Expected, actual: &Actual, globs: bool) -> bool {
    let actual_string = match actual {
        Actual::Top(Claim::String(s)) => Some(*s),
        Actual::Item(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if globs {
        // Only strings glob; `bound_claims_type = "glob"` takes string values only.
        return match (expected, actual_string) {
            (Expected::String(pattern), Some(subject)) => glob(pattern, subject),
            _ => false,
        };
    }
    match (expected, actual) {
        (Expected::String(e), _) => actual_string == Some(e.as_str()),
        (Expected::Bool(e), Actual::Top(Claim::Bool(a))) => e == a,
        (Expected::Bool(e), Actual::Item(Value::Bool(a))) => e == a,
        (Expected::Number(e), Actual::Top(Claim::Number(a))) => e == a,
        _ => false,
    }
}

/// `github.com/ryanuber/go-glob`'s `Glob`, which OpenBao uses: `*` matches any run of
/// characters (none included); nothing else is special.
pub(crate) fn glob(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return subject == pattern;
    }
    let leading = pattern.starts_with('*');
    let trailing = pattern.ends_with('*');
    let end = parts.len() - 1;
    let mut subject = subject;
    for (i, part) in parts[..end].iter().enumerate() {
        let Some(index) = subject.find(part) else {
            return false;
        };
        if i == 0 && !leading && index != 0 {
            return false;
        }
        subject = &subject[index + part.len()..];
    }
    trailing || subject.ends_with(parts[end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn bound(entries: &[(&str, Value)]) -> BTreeMap<String, Vec<Expected>> {
        entries
            .iter()
            .map(|(name, value)| {
                let values = match value {
                    Value::Array(items) => items
                        .iter()
                        .map(|v| Expected::from_json(v).unwrap())
                        .collect(),
                    v => vec![Expected::from_json(v).unwrap()],
                };
                (name.to_string(), values)
            })
            .collect()
    }

    #[test]
    fn go_glob() {
        for (pattern, subject, expected) in [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("main", "main", true),
            ("main", "mainline", false),
            ("release/*", "release/1.0", true),
            ("release/*", "release/", true),
            ("release/*", "xrelease/1", false),
            ("*/main", "acme/main", true),
            ("*/main", "acme/mainx", false),
            ("acme/*/app", "acme/team/app", true),
            ("acme/*/app", "acme/app", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
        ] {
            assert_eq!(
                glob(pattern, subject),
                expected,
                "{pattern:?} on {subject:?}"
            );
        }
    }

    #[test]
    fn claims_by_name_or_json_pointer() {
        let c = claims(json!({
            "project_path": "acme/app", "n": 42.9, "aud": "ci",
            "nested": {"a/b": {"c": "deep"}}, "nothing": null,
        }));
        assert_eq!(get(&c, "project_path"), Some(Claim::String("acme/app")));
        assert_eq!(get(&c, "n"), Some(Claim::Number("42".into())));
        assert_eq!(get(&c, "aud"), Some(Claim::List(vec![&json!("ci")])));
        assert_eq!(get(&c, "/nested/a~1b/c"), Some(Claim::String("deep")));
        assert_eq!(get(&c, "/nested/missing"), None);
        assert_eq!(get(&c, "nothing"), None);
        assert_eq!(get(&c, "nested"), Some(Claim::Object));
    }

    #[test]
    fn the_user_claim_is_a_string_found_by_name_or_by_pointer_when_asked() {
        let c = claims(json!({"sub": "x", "n": 1, "a": {"b": "y"}}));
        assert_eq!(user(&c, "sub", false), Ok("x"));
        assert_eq!(user(&c, "sub", true), Ok("x"));
        assert_eq!(user(&c, "/a/b", true), Ok("y"));
        assert_eq!(
            user(&c, "/a/b", false),
            Err("claim \"/a/b\" not found in token".into())
        );
        assert_eq!(
            user(&c, "n", false),
            Err("claim \"n\" could not be converted to string".into())
        );
    }

    #[test]
    fn bound_claims_match_exactly_with_lists_on_either_side() {
        let c = claims(json!({
            "project_path": "acme/app", "ref_protected": "true", "admin": true,
            "project_id": 22, "groups": ["dev", "ops"], "nested": {"x": "y"},
        }));
        let ok = |entries: &[(&str, Value)]| check_bound(&c, &bound(entries), false);
        assert_eq!(ok(&[("project_path", json!("acme/app"))]), Ok(()));
        assert_eq!(
            ok(&[("project_path", json!(["other", "acme/app"]))]),
            Ok(())
        );
        assert_eq!(ok(&[("groups", json!("ops"))]), Ok(()));
        assert_eq!(ok(&[("/nested/x", json!("y"))]), Ok(()));
        assert_eq!(ok(&[("ref_protected", json!("true"))]), Ok(()));
        assert_eq!(ok(&[("admin", json!(true))]), Ok(()));
        assert_eq!(ok(&[("project_id", json!(22))]), Ok(()));
        // Types must agree, as in OpenBao.
        assert!(ok(&[("ref_protected", json!(true))]).is_err());
        assert!(ok(&[("project_id", json!("22"))]).is_err());
        assert_eq!(
            ok(&[("project_path", json!("acme/other"))]),
            Err("claim \"project_path\" does not match any associated bound claim values".into())
        );
        assert_eq!(
            ok(&[("ref", json!("main"))]),
            Err("claim \"ref\" is missing".into())
        );
        assert!(
            ok(&[("nested", json!("y"))])
                .unwrap_err()
                .starts_with("received claim is not")
        );
    }

    #[test]
    fn bound_claims_as_globs_match_strings_only() {
        let c = claims(json!({"ref": "release/1.2", "groups": ["dev", "ops"], "n": 7}));
        let ok = |entries: &[(&str, Value)]| check_bound(&c, &bound(entries), true);
        assert_eq!(ok(&[("ref", json!("release/*"))]), Ok(()));
        assert_eq!(ok(&[("groups", json!(["adm*", "o*"]))]), Ok(()));
        assert!(ok(&[("ref", json!("main"))]).is_err());
        assert!(ok(&[("n", json!("*"))]).is_err());
    }

    #[test]
    fn mapped_claims_must_be_strings() {
        let c = claims(json!({"project_path": "acme/app", "n": 1}));
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let got = metadata(&c, &map(&[("project_path", "project"), ("absent", "x")])).unwrap();
        assert_eq!(got, map(&[("project", "acme/app")]));
        assert_eq!(
            metadata(&c, &map(&[("n", "number")])),
            Err("error converting claim 'n' to string".into())
        );
    }
}
