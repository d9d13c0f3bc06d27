//! The fields of an HCL block as Vault's field types take them (OpenBao's
//! `sdk/framework/field_type.go`), so that a value written for `bao write auth/<path>/config`
//! or `auth/<path>/role/<name>` means the same in serve's tokens file: a comma-separated
//! string is a list, a duration is seconds or `"10m"`, a boolean may be Go's `"true"`.
//!
//! Each attribute is evaluated as HCL evaluates it (a heredoc is a string, indentation of
//! `<<-` stripped); variables and functions are refused, since the file has none.

use crate::ConfigError;
use hcl::eval::Evaluate;
use hcl::{Block, Body, Structure};
use serde_json::Value;
use std::collections::BTreeMap;

/// The attributes and blocks of one HCL body, for one place (`auth "gitlab"`).
pub(crate) struct Fields<'a> {
    pub at: String,
    values: BTreeMap<String, Value>,
    pub blocks: Vec<&'a Block>,
}

impl<'a> Fields<'a> {
    /// The attributes of `body`, evaluated; an attribute set twice is refused.
    pub fn of(body: &'a Body, at: String) -> Result<Fields<'a>, ConfigError> {
        let mut values = BTreeMap::new();
        let mut blocks = Vec::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attribute) => {
                    let key = attribute.key().to_owned();
                    let value = attribute
                        .expr()
                        .evaluate(&hcl::eval::Context::new())
                        .map_err(|e| ConfigError::new(&at, format!("{key}: {e}")))?;
                    let value = serde_json::to_value(value)
                        .map_err(|e| ConfigError::new(&at, format!("{key}: {e}")))?;
                    if values.insert(key.clone(), value).is_some() {
                        return Err(ConfigError::new(&at, format!("{key} is set twice")));
                    }
                }
                Structure::Block(block) => blocks.push(block),
            }
        }
        Ok(Fields { at, values, blocks })
    }

    /// The names of the attributes, in order.
    pub fn names(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }

    fn error(&self, field: &str, problem: impl std::fmt::Display) -> ConfigError {
        ConfigError::new(&self.at, format!("{field}: {problem}"))
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.values.get(field)
    }

    /// `TypeString`.
    pub fn string(&self, field: &str) -> Result<Option<String>, ConfigError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(field, format!("{other} is not a string"))),
        }
    }

    /// `TypeCommaStringSlice`: a list of strings, or one string of comma-separated items.
    pub fn strings(&self, field: &str) -> Result<Vec<String>, ConfigError> {
        let items = match self.get(field) {
            None => return Ok(Vec::new()),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.error(field, format!("{other} is not a string"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return Err(self.error(field, format!("{other} is not a list"))),
        };
        Ok(items
            .into_iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect())
    }

    /// `TypeBool`: `true`/`false`, or Go's spellings of them as a string.
    pub fn bool(&self, field: &str) -> Result<bool, ConfigError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => vault_front::parse_bool(s)
                .ok_or_else(|| self.error(field, format!("{s:?} is not a boolean"))),
            Some(other) => Err(self.error(field, format!("{other} is not a boolean"))),
        }
    }

    /// `TypeDurationSecond`: whole seconds, from a number or a duration such as `"1h30m"`;
    /// 0 when unset.
    pub fn duration(&self, field: &str) -> Result<u64, ConfigError> {
        match self.get(field) {
            None => Ok(0),
            Some(value) => vault_front::parse_duration(value).map_err(|e| self.error(field, e)),
        }
    }

    /// `TypeSignedDurationSecond`: as [`Fields::duration`], and negative values (`-1`,
    /// `"-1s"`); `None` when unset.
    pub fn signed_duration(&self, field: &str) -> Result<Option<i64>, ConfigError> {
        let value = match self.get(field) {
            None => return Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => return Ok(n.as_i64()),
            Some(value) => value,
        };
        let (negative, magnitude) = match value {
            Value::String(s) => match s.trim().strip_prefix('-') {
                Some(rest) => (true, Value::String(rest.to_owned())),
                None => (false, value.clone()),
            },
            other => (false, other.clone()),
        };
        let seconds = vault_front::parse_duration(&magnitude).map_err(|e| self.error(field, e))?;
        let seconds =
            i64::try_from(seconds).map_err(|_| self.error(field, "the duration is too long"))?;
        Ok(Some(if negative { -seconds } else { seconds }))
    }

    /// `TypeKVPairs`: an object of strings.
    pub fn string_map(&self, field: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        self.object(field)?
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(s) => Ok((key, s)),
                other => Err(self.error(field, format!("{key}: {other} is not a string"))),
            })
            .collect()
    }

    /// `TypeMap`: an object.
    pub fn object(&self, field: &str) -> Result<BTreeMap<String, Value>, ConfigError> {
        match self.get(field) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(object)) => Ok(object.clone().into_iter().collect()),
            Some(other) => Err(self.error(field, format!("{other} is not an object"))),
        }
    }
}

/// The one label of `block`, which `at` names in an error.
pub(crate) fn label(block: &Block, at: &str) -> Result<String, ConfigError> {
    match block.labels() {
        [label] => Ok(label.as_str().to_owned()),
        _ => Err(ConfigError::new(
            at,
            format!(
                "a {} block takes one label: {} \"<name>\" {{ ... }}",
                block.identifier(),
                block.identifier()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Fields<'static> {
        let body: &'static Body = Box::leak(Box::new(hcl::parse(text).unwrap()));
        Fields::of(body, "here".into()).unwrap()
    }

    #[test]
    fn lists_are_lists_or_comma_separated_strings() {
        let f = fields("a = [\"x\", \" y \"]\nb = \"x, y,,\"\n");
        assert_eq!(f.strings("a").unwrap(), ["x", "y"]);
        assert_eq!(f.strings("b").unwrap(), ["x", "y"]);
        assert!(f.strings("none").unwrap().is_empty());
    }

    #[test]
    fn durations_are_seconds_or_go_durations_and_may_be_signed() {
        let f = fields("a = 90\nb = \"1h30m\"\nc = -1\nd = \"-2m\"\ne = \"soon\"\n");
        assert_eq!(f.duration("a").unwrap(), 90);
        assert_eq!(f.duration("b").unwrap(), 5400);
        assert_eq!(f.duration("none").unwrap(), 0);
        assert!(f.duration("c").is_err());
        assert_eq!(f.signed_duration("c").unwrap(), Some(-1));
        assert_eq!(f.signed_duration("d").unwrap(), Some(-120));
        assert_eq!(f.signed_duration("none").unwrap(), None);
        let error = f.signed_duration("e").unwrap_err().to_string();
        assert_eq!(error, "here: e: time: invalid duration \"soon\"");
    }

    #[test]
    fn booleans_take_go_spellings() {
        let f = fields("a = true\nb = \"false\"\nc = \"maybe\"\n");
        assert!(f.bool("a").unwrap());
        assert!(!f.bool("b").unwrap());
        assert!(!f.bool("none").unwrap());
        assert!(f.bool("c").is_err());
    }

    #[test]
    fn heredocs_are_strings_with_their_indentation_stripped() {
        let f = fields("a = <<-EOT\n    one\n    two\n    EOT\n");
        assert_eq!(f.string("a").unwrap().unwrap(), "one\ntwo\n");
    }

    #[test]
    fn an_attribute_set_twice_or_a_variable_is_refused() {
        // The parser refuses it too; a body may also be built.
        let body = Body::builder()
            .add_attribute(("a", 1))
            .add_attribute(("a", 2))
            .build();
        let error = Fields::of(&body, "here".into()).err().unwrap();
        assert_eq!(error.to_string(), "here: a is set twice");
        let body = hcl::parse("a = var.x\n").unwrap();
        assert!(Fields::of(&body, "here".into()).is_err());
    }
}
