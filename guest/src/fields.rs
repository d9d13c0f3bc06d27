//! Request data, parsed against a path's declared fields.
//!
//! Like Vault's `framework.FieldData`: values are converted leniently (the CLI sends every
//! value as a string), unknown fields are ignored with a warning rather than rejected, and
//! every conversion error names the field and says what was expected.

use crate::api::{EngineError, Field, FieldKind};
use crate::duration;
use serde_json::{Map, Value};

/// A request's data together with the fields its path declares.
pub struct FieldData {
    raw: Map<String, Value>,
    fields: &'static [Field],
}

impl FieldData {
    /// Parse `data` (a JSON object as text) for a path that declares `fields`.
    pub fn parse(data: &str, fields: &'static [Field]) -> Result<FieldData, EngineError> {
        let raw = if data.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(data) {
                Ok(Value::Object(map)) => map,
                Ok(Value::Null) => Map::new(),
                Ok(_) => return Err(EngineError::invalid("request data must be a JSON object")),
                Err(e) => {
                    return Err(EngineError::invalid(format!(
                        "request data is not valid JSON: {e}"
                    )));
                }
            }
        };
        Ok(FieldData { raw, fields })
    }

    /// Warnings for fields the path does not know, in Vault's wording.
    pub fn unknown_field_warnings(&self) -> Vec<String> {
        // A name is cut short, so that a huge one does not come back whole in the answer.
        let mut unknown: Vec<String> = self
            .raw
            .keys()
            .filter(|name| !self.fields.iter().any(|f| f.name == name.as_str()))
            .map(|name| match name.char_indices().nth(64) {
                Some((end, _)) => format!("{}...", &name[..end]),
                None => name.clone(),
            })
            .collect();
        if unknown.is_empty() {
            return Vec::new();
        }
        unknown.sort_unstable();
        vec![format!(
            "Endpoint ignored these unrecognized parameters: [{}]",
            unknown.join(" ")
        )]
    }

    fn value(&self, name: &str, kind: FieldKind) -> Option<&Value> {
        debug_assert!(
            self.fields.iter().any(|f| f.name == name && f.kind == kind),
            "field {name} is not declared as {kind:?}"
        );
        self.raw.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, EngineError> {
        match self.value(name, FieldKind::String) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(EngineError::invalid(format!("{name} must be a string"))),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, EngineError> {
        let invalid = || EngineError::invalid(format!("{name} must be true or false"));
        match self.value(name, FieldKind::Boolean) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // Go's strconv.ParseBool, which Vault uses for string input.
            Some(Value::String(s)) => match s.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
                _ => Err(invalid()),
            },
            Some(_) => Err(invalid()),
        }
    }

    /// Whole seconds.
    pub fn duration(&self, name: &str) -> Result<Option<u64>, EngineError> {
        self.value(name, FieldKind::Duration)
            .map(|v| duration::parse(v).map_err(|e| EngineError::invalid(format!("{name}: {e}"))))
            .transpose()
    }

    /// A whole number, not negative: a JSON number or a decimal string (the CLI's form), as
    /// Vault's framework reads `TypeInt` (a float with a fraction is refused, not rounded).
    pub fn unsigned(&self, name: &str) -> Result<Option<u64>, EngineError> {
        let invalid = || EngineError::invalid(format!("{name} must be a whole number, 0 or more"));
        match self.value(name, FieldKind::Integer) {
            None => Ok(None),
            Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
                (Some(n), _) => Ok(Some(n)),
                (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => {
                    Ok(Some(f as u64))
                }
                _ => Err(invalid()),
            },
            Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| invalid()),
            Some(_) => Err(invalid()),
        }
    }

    /// A comma-separated string or a list of strings; blanks are dropped.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, EngineError> {
        let items: Vec<String> = match self.value(name, FieldKind::CommaStringList) {
            None => return Ok(None),
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_string()),
                    _ => Err(EngineError::invalid(format!(
                        "{name} must be a comma-separated string or a list of strings"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(EngineError::invalid(format!(
                    "{name} must be a comma-separated string or a list of strings"
                )));
            }
        };
        Ok(Some(items.into_iter().filter(|s| !s.is_empty()).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static FIELDS: &[Field] = &[
        Field {
            name: "label",
            kind: FieldKind::String,
            description: "",
            default: None,
            required: false,
            sensitive: false,
        },
        Field {
            name: "verify",
            kind: FieldKind::Boolean,
            description: "",
            default: None,
            required: false,
            sensitive: false,
        },
        Field {
            name: "ttl",
            kind: FieldKind::Duration,
            description: "",
            default: None,
            required: false,
            sensitive: false,
        },
        Field {
            name: "namespace",
            kind: FieldKind::CommaStringList,
            description: "",
            default: None,
            required: false,
            sensitive: false,
        },
        Field {
            name: "count",
            kind: FieldKind::Integer,
            description: "",
            default: None,
            required: false,
            sensitive: false,
        },
    ];

    fn data(value: serde_json::Value) -> FieldData {
        FieldData::parse(&value.to_string(), FIELDS).unwrap()
    }

    #[test]
    fn bad_json_is_a_clear_400() {
        for text in ["{", "[1]", "\"x\"", "{\"a\":}"] {
            match FieldData::parse(text, FIELDS) {
                Err(EngineError::InvalidRequest(msg)) => assert!(msg.contains("JSON"), "{msg}"),
                _ => panic!("{text} was accepted"),
            }
        }
        assert!(FieldData::parse("", FIELDS).is_ok());
        assert!(FieldData::parse("null", FIELDS).is_ok());
    }

    #[test]
    fn converts_cli_strings() {
        let d = data(
            json!({"verify": "false", "ttl": "5m", "namespace": "a, b,,c", "label": 7,
                            "count": "12"}),
        );
        assert_eq!(d.unsigned("count").unwrap(), Some(12));
        for (value, read) in [(json!(0), 0), (json!(3.0), 3), (json!(" 40 "), 40)] {
            assert_eq!(
                data(json!({ "count": value })).unsigned("count").unwrap(),
                Some(read)
            );
        }
        assert_eq!(d.boolean("verify").unwrap(), Some(false));
        assert_eq!(d.duration("ttl").unwrap(), Some(300));
        assert_eq!(
            d.list("namespace").unwrap(),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(d.string("label").unwrap(), Some("7".into()));
    }

    #[test]
    fn names_the_field_in_errors() {
        let d = data(json!({"verify": "maybe", "ttl": "soon", "namespace": {"a": 1}, "label": []}));
        for bad in [
            json!(-1),
            json!(2.5),
            json!("ten"),
            json!("-3"),
            json!(true),
            json!([1]),
        ] {
            let err = data(json!({ "count": bad })).unsigned("count").unwrap_err();
            assert_eq!(
                err,
                EngineError::invalid("count must be a whole number, 0 or more"),
                "{bad}"
            );
        }
        for err in [
            d.boolean("verify").unwrap_err(),
            d.duration("ttl").unwrap_err(),
            d.list("namespace").unwrap_err(),
            d.string("label").unwrap_err(),
        ] {
            let EngineError::InvalidRequest(msg) = err else {
                panic!("not a 400")
            };
            assert!(
                ["verify", "ttl", "namespace", "label"]
                    .iter()
                    .any(|f| msg.starts_with(f)),
                "{msg}"
            );
        }
    }

    #[test]
    fn warns_about_unknown_fields() {
        let d = data(json!({"label": "x", "colour": "red", "age": 3}));
        assert_eq!(
            d.unknown_field_warnings(),
            vec!["Endpoint ignored these unrecognized parameters: [age colour]".to_string()]
        );
        assert!(
            data(json!({"label": "x"}))
                .unknown_field_warnings()
                .is_empty()
        );
        let huge = "k".repeat(10_000);
        let warning = &data(json!({ huge.clone(): 1 })).unknown_field_warnings()[0];
        assert_eq!(
            warning,
            &format!(
                "Endpoint ignored these unrecognized parameters: [{}...]",
                &huge[..64]
            )
        );
    }
}
