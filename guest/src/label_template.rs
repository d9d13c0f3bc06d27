//! An account's `label_template`: the label of a token whose request sets none, built from the
//! requester's identity entity, so that Docker Hub's UI can tell which pipeline holds a token
//! (the display name says only who logged in).
//!
//! The placeholders are those of Vault's templated policies, with their names and their
//! syntax (`{{` and `}}`, spaces inside allowed, unbalanced braces refused): the entity's
//! `id`, `name` and `metadata.<key>`, and those of its alias at one auth mount,
//! `aliases.<mount accessor>.id`, `.name` and `.metadata.<key>` (for OpenBao's `jwt` auth, the
//! role's `claim_mappings`). A template is checked when the config is written; a placeholder
//! without a value when a token is issued (no entity, no such alias or key, an empty value)
//! makes the label the display name, as it is without a template.

use crate::api::{EngineError, Request};
use crate::capabilities::{Entity, Host};
use crate::names;

/// The longest template accepted, in characters: room for several placeholders with long
/// mount accessors and keys (the label itself is cut to [`names::MAX_LABEL_LEN`]).
pub const MAX_TEMPLATE_CHARS: usize = 512;

/// The placeholders, as an error lists them.
const PLACEHOLDERS: &str = "{{identity.entity.id}}, {{identity.entity.name}}, \
     {{identity.entity.metadata.<key>}}, {{identity.entity.aliases.<mount accessor>.id}}, \
     {{identity.entity.aliases.<mount accessor>.name}}, \
     {{identity.entity.aliases.<mount accessor>.metadata.<key>}}";

/// A checked template: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// The placeholder as written between the braces (trimmed), and what it names.
    Value(String, Placeholder),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Placeholder {
    EntityId,
    EntityName,
    EntityMetadata(String),
    AliasId(String),
    AliasName(String),
    AliasMetadata { accessor: String, key: String },
}

/// Why a label came from the display name although the config has a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoValue {
    /// The request carries no entity id, or the host knows no such entity.
    NoEntity,
    /// The entity has no value for this placeholder (as written).
    Missing(String),
}

impl NoValue {
    /// The warning the token write answers with.
    pub fn warning(&self) -> String {
        match self {
            NoValue::NoEntity => "label_template: the requester has no identity entity, so the \
                                  label is the display name"
                .to_string(),
            NoValue::Missing(placeholder) => format!(
                "label_template: {{{{{placeholder}}}}} has no value for the requester, so the \
                 label is the display name"
            ),
        }
    }
}

impl LabelTemplate {
    /// Parse `text` as Vault parses a templated policy: `}}` before the first `{{` and a
    /// `{{` without exactly one `}}` after it are unbalanced. A 400 names what is wrong.
    pub fn parse(text: &str) -> Result<LabelTemplate, EngineError> {
        names::check_length("label_template", text, MAX_TEMPLATE_CHARS, "characters")?;
        let unbalanced = || {
            EngineError::invalid(format!(
                "label_template {} has unbalanced braces: each {{{{ needs one }}}} after it, \
                 before the next {{{{",
                names::quoted(text)
            ))
        };
        let mut pieces = text.split("{{");
        let mut parts = Vec::new();
        let first = pieces.next().unwrap_or_default();
        if first.contains("}}") {
            return Err(unbalanced());
        }
        push_text(&mut parts, first);
        for piece in pieces {
            let mut halves = piece.split("}}");
            let (Some(inside), Some(after), None) = (halves.next(), halves.next(), halves.next())
            else {
                return Err(unbalanced());
            };
            let inside = inside.trim();
            let placeholder = Placeholder::parse(inside).ok_or_else(|| {
                EngineError::invalid(format!(
                    "label_template: unknown placeholder {}: use {PLACEHOLDERS}",
                    names::quoted(&format!("{{{{{inside}}}}}"))
                ))
            })?;
            parts.push(Part::Value(inside.to_string(), placeholder));
            push_text(&mut parts, after);
        }
        Ok(LabelTemplate { parts })
    }

    /// Whether rendering needs the entity: it has a placeholder.
    pub fn needs_entity(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Value(..)))
    }

    /// The template with every placeholder's value, or the first placeholder without one.
    pub fn render(&self, entity: Option<&Entity>) -> Result<String, NoValue> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(written, placeholder) => {
                    let entity = entity.ok_or(NoValue::NoEntity)?;
                    match placeholder.value(entity) {
                        Some(value) if !value.is_empty() => out.push_str(value),
                        _ => return Err(NoValue::Missing(written.clone())),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.to_string()));
    }
}

impl Placeholder {
    /// One of Vault's identity placeholders, as written between the braces.
    fn parse(inside: &str) -> Option<Placeholder> {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let entity = inside.strip_prefix("identity.entity.")?;
        Some(match entity {
            "id" => Placeholder::EntityId,
            "name" => Placeholder::EntityName,
            _ => {
                if let Some(key) = entity.strip_prefix("metadata.") {
                    Placeholder::EntityMetadata(nonempty(key)?)
                } else {
                    let (accessor, field) = entity.strip_prefix("aliases.")?.split_once('.')?;
                    let accessor = nonempty(accessor)?;
                    match field {
                        "id" => Placeholder::AliasId(accessor),
                        "name" => Placeholder::AliasName(accessor),
                        _ => Placeholder::AliasMetadata {
                            accessor,
                            key: nonempty(field.strip_prefix("metadata.")?)?,
                        },
                    }
                }
            }
        })
    }

    fn value<'e>(&self, entity: &'e Entity) -> Option<&'e str> {
        let alias = |accessor: &str| entity.aliases.iter().find(|a| a.mount_accessor == accessor);
        match self {
            Placeholder::EntityId => Some(&entity.id),
            Placeholder::EntityName => Some(&entity.name),
            Placeholder::EntityMetadata(key) => entity.metadata.get(key),
            Placeholder::AliasId(accessor) => alias(accessor).map(|a| &a.id),
            Placeholder::AliasName(accessor) => alias(accessor).map(|a| &a.name),
            Placeholder::AliasMetadata { accessor, key } => {
                alias(accessor).and_then(|a| a.metadata.get(key))
            }
        }
        .map(String::as_str)
    }
}

/// The label of a token whose request sets none: the account's template rendered for the
/// requester, made a valid label as a display name is; the display name when there is no
/// template, or a placeholder has no value (the second value is then the warning that says
/// why). The entity is looked up only when the template has a placeholder and the request
/// names an entity; a host that fails to look it up fails the request (500): a label that
/// silently named the wrong thing would defeat the template.
pub fn default_label(
    host: &dyn Host,
    template: &str,
    request: &Request,
) -> Result<(String, Option<String>), EngineError> {
    let display_name = || names::default_label(request.display_name.as_deref());
    if template.is_empty() {
        return Ok((display_name(), None));
    }
    let template = LabelTemplate::parse(template)?;
    let entity = match request.entity_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) if template.needs_entity() => host.entity(id).map_err(|why| {
            EngineError::Internal(format!(
                "the account's label_template needs the requester's identity entity {id}, \
                 and the host could not look it up: {why}. No token was issued"
            ))
        })?,
        _ => None,
    };
    let rendered = template
        .render(entity.as_ref())
        .map(|text| names::as_label(&text));
    match rendered {
        Ok(Some(label)) => Ok((label, None)),
        Ok(None) => Ok((display_name(), None)),
        Err(no_value) => Ok((display_name(), Some(no_value.warning()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::Alias;

    const ACCESSOR: &str = "auth_jwt_1f2e3d4c";

    fn entity() -> Entity {
        Entity {
            id: "6a1b-entity".into(),
            name: "entity_5d1f".into(),
            metadata: [("team".to_string(), "release".to_string())].into(),
            aliases: vec![Alias {
                id: "9c2d-alias".into(),
                mount_accessor: ACCESSOR.into(),
                mount_type: "jwt".into(),
                name: "acme/app".into(),
                metadata: [
                    ("project_path".to_string(), "acme/app".to_string()),
                    ("ref".to_string(), "main".to_string()),
                    ("empty".to_string(), String::new()),
                ]
                .into(),
            }],
        }
    }

    fn render(template: &str, entity: Option<&Entity>) -> Result<String, NoValue> {
        LabelTemplate::parse(template).unwrap().render(entity)
    }

    fn refused(template: &str) -> String {
        match LabelTemplate::parse(template) {
            Err(EngineError::InvalidRequest(message)) => message,
            other => panic!("{template:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn every_placeholder_renders_from_the_entity() {
        let e = entity();
        for (template, label) in [
            ("{{identity.entity.id}}", "6a1b-entity"),
            ("{{identity.entity.name}}", "entity_5d1f"),
            ("{{identity.entity.metadata.team}}", "release"),
            (
                &format!("{{{{identity.entity.aliases.{ACCESSOR}.id}}}}"),
                "9c2d-alias",
            ),
            (
                &format!("{{{{identity.entity.aliases.{ACCESSOR}.name}}}}"),
                "acme/app",
            ),
            (
                &format!(
                    "ci-{{{{ identity.entity.aliases.{ACCESSOR}.metadata.project_path }}}}@{{{{identity.entity.aliases.{ACCESSOR}.metadata.ref}}}}"
                ),
                "ci-acme/app@main",
            ),
            ("release build", "release build"),
        ] {
            assert_eq!(
                render(template, Some(&e)).as_deref(),
                Ok(label),
                "{template}"
            );
        }
    }

    #[test]
    fn a_placeholder_without_a_value_is_named() {
        let e = entity();
        let missing = |p: &str| Err(NoValue::Missing(p.to_string()));
        for (template, expected) in [
            (
                "ci-{{identity.entity.metadata.owner}}".to_string(),
                missing("identity.entity.metadata.owner"),
            ),
            (
                "{{identity.entity.aliases.auth_other_0.name}}".to_string(),
                missing("identity.entity.aliases.auth_other_0.name"),
            ),
            (
                format!("{{{{identity.entity.aliases.{ACCESSOR}.metadata.job}}}}"),
                missing(&format!("identity.entity.aliases.{ACCESSOR}.metadata.job")),
            ),
            (
                format!("x{{{{identity.entity.aliases.{ACCESSOR}.metadata.empty}}}}"),
                missing(&format!(
                    "identity.entity.aliases.{ACCESSOR}.metadata.empty"
                )),
            ),
        ] {
            assert_eq!(render(&template, Some(&e)), expected, "{template}");
        }
        assert_eq!(
            render("{{identity.entity.id}}", None),
            Err(NoValue::NoEntity)
        );
        // Literal text needs no entity.
        assert_eq!(render("nightly", None).as_deref(), Ok("nightly"));
    }

    #[test]
    fn unknown_placeholders_and_unbalanced_braces_are_refused_naming_them() {
        for template in [
            "{{identity.entity.email}}",
            "{{identity.entity.metadata}}",
            "{{identity.entity.metadata.}}",
            "{{identity.entity.aliases.auth_jwt_1.custom_metadata.x}}",
            "{{identity.entity.aliases.auth_jwt_1}}",
            "{{identity.entity.aliases..name}}",
            "{{identity.groups.names.ci.id}}",
            "{{time.now}}",
            "{{}}",
        ] {
            let message = refused(template);
            assert!(
                message.starts_with("label_template: unknown placeholder \"{{"),
                "{template}: {message}"
            );
            assert!(
                message.contains(template.trim_start_matches("{{").trim_end_matches("}}")),
                "{message}"
            );
            assert!(
                message.contains("{{identity.entity.aliases.<mount accessor>.metadata.<key>}}")
            );
        }
        for template in [
            "ci-{{identity.entity.id",
            "ci-}}",
            "{{identity.entity.id}}}}",
            "{{identity.entity.id{{identity.entity.name}}",
            "}}{{identity.entity.id}}",
        ] {
            let message = refused(template);
            assert!(
                message.contains("unbalanced braces"),
                "{template}: {message}"
            );
            assert!(message.contains(&format!("{template:?}")), "{message}");
        }
        let message = refused(&"x".repeat(MAX_TEMPLATE_CHARS + 1));
        assert_eq!(
            message,
            "label_template is too long: 513 characters, at most 512"
        );
        assert!(LabelTemplate::parse(&"x".repeat(MAX_TEMPLATE_CHARS)).is_ok());
    }

    #[test]
    fn only_placeholders_need_the_entity() {
        assert!(!LabelTemplate::parse("nightly").unwrap().needs_entity());
        assert!(
            LabelTemplate::parse("ci-{{identity.entity.name}}")
                .unwrap()
                .needs_entity()
        );
    }
}
