//! `path-help`: the engine's own help text, laid out the way Vault's framework does
//! (`framework.Backend`'s help template), for every host that answers `vault path-help`.

use super::{BackendHelp, FieldKind, PathHelp};
use std::fmt::Write;

fn kind(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::String => "string",
        FieldKind::Boolean => "bool",
        FieldKind::Duration => "duration (sec)",
        FieldKind::CommaStringList => "comma-string-slice",
        FieldKind::Integer => "int",
    }
}

fn matches(path: &PathHelp, request_path: &str) -> bool {
    regex::Regex::new(&format!("^{}", path.pattern)).is_ok_and(|re| re.is_match(request_path))
}

/// The help for `request_path`: one path's fields and description, or the whole engine's.
pub fn text(help: &BackendHelp, request_path: &str) -> String {
    let mut out = String::new();
    match help
        .paths
        .iter()
        .find(|p| !request_path.is_empty() && matches(p, request_path))
    {
        Some(path) => {
            let _ = write!(
                out,
                "Request:        {request_path}\nMatching Route: ^{}\n\n{}\n",
                path.pattern, path.synopsis
            );
            if !path.fields.is_empty() {
                out.push_str("\n## PARAMETERS\n");
                for field in &path.fields {
                    let _ = write!(
                        out,
                        "\n    {} ({})\n\n        {}\n",
                        field.name,
                        kind(field.kind),
                        field.description
                    );
                }
            }
            let _ = write!(out, "\n## DESCRIPTION\n\n{}\n", path.description);
        }
        None => {
            let _ = write!(
                out,
                "## DESCRIPTION\n\n{}\n\n## PATHS\n\nThe following paths are supported by this backend. To view help for\n\
                 any of the paths below, use the help command with any route matching\nthe path pattern.\n",
                help.description
            );
            for path in &help.paths {
                let _ = write!(out, "\n    ^{}\n        {}\n", path.pattern, path.synopsis);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Field, Operation};

    fn help() -> BackendHelp {
        BackendHelp {
            description: "Docker Hub tokens.".into(),
            paths: vec![PathHelp {
                pattern: "config/(?P<account>[^/]+)$".into(),
                operations: vec![Operation::Read],
                existence_check: true,
                synopsis: "Configure an account.".into(),
                description: "Holds the password.".into(),
                fields: vec![Field {
                    name: "ttl".into(),
                    kind: FieldKind::Duration,
                    description: "Default lease.".into(),
                    default: Some("5m".into()),
                    required: false,
                    sensitive: false,
                }],
            }],
        }
    }

    #[test]
    fn a_path_gets_its_fields_and_description() {
        let text = text(&help(), "config/hoeg");
        assert!(
            text.contains("Matching Route: ^config/(?P<account>[^/]+)$"),
            "{text}"
        );
        assert!(text.contains("ttl (duration (sec))"), "{text}");
        assert!(text.contains("Holds the password."), "{text}");
    }

    #[test]
    fn the_mount_gets_the_list_of_paths() {
        let text = text(&help(), "");
        assert!(text.contains("Docker Hub tokens."), "{text}");
        assert!(
            text.contains("^config/(?P<account>[^/]+)$\n        Configure an account."),
            "{text}"
        );
    }
}
