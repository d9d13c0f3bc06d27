//! The engine's front door: routes each request to the path or lease logic that owns it.
//!
//! Like `backend.go` in HashiCorp's plugins, this file only wires things together.

use crate::api::{BackendHelp, EngineError, Operation, Request, Response};
use crate::capabilities::Host;
use crate::{path_config, path_creds, path_role, path_token, rollback, secret_token, tidy};

const DESCRIPTION: &str = "\
The dockerhub secrets engine issues short-lived Docker Hub access tokens under leases and \
deletes them at Docker Hub when the lease ends, so that CI jobs never hold a Docker Hub \
password or a long-lived token.

Configure an account with config/<account>, then request tokens with \
token/<account>/<namespace>; Vault policies on the token path decide who may get tokens for \
which namespace.

For tokens that reach only some repositories of an organization (organization access \
tokens), define a role with roles/<role> and request tokens with creds/<role>.";

/// The engine paths, parsed from a request path.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    ConfigList,
    Config(&'a str),
    Token(&'a str, &'a str),
    RoleList,
    Role(&'a str),
    Creds(&'a str),
    Tidy,
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["config"] | ["config", ""] => Some(Route::ConfigList),
            ["config", account] => Some(Route::Config(account)),
            ["token", account, namespace] if !account.is_empty() && !namespace.is_empty() => {
                Some(Route::Token(account, namespace))
            }
            ["roles"] | ["roles", ""] => Some(Route::RoleList),
            ["roles", role] => Some(Route::Role(role)),
            ["creds", role] if !role.is_empty() => Some(Route::Creds(role)),
            ["tidy"] => Some(Route::Tidy),
            _ => None,
        }
    }

    fn of(request: &'a Request) -> Result<Route<'a>, EngineError> {
        Route::parse(&request.path).ok_or_else(|| {
            EngineError::UnsupportedPath(format!("unsupported path: {:?}", request.path))
        })
    }
}

/// Handle one request.
pub fn handle(host: &dyn Host, request: &Request) -> Result<Response, EngineError> {
    match request.operation {
        Operation::Rollback => rollback::run(host, request),
        Operation::Renew => secret_token::renew(host, request),
        Operation::Revoke => secret_token::revoke(host, request),
        op => match (Route::of(request)?, op) {
            (Route::ConfigList, Operation::List) => path_config::list(host),
            (Route::Config(account), op) if op != Operation::List => {
                path_config::handle(host, account, request)
            }
            (Route::Token(account, namespace), _) => {
                path_token::handle(host, account, namespace, request)
            }
            (Route::RoleList, Operation::List) => path_role::list(host),
            (Route::Role(role), op) if op != Operation::List => {
                path_role::handle(host, role, request)
            }
            (Route::Creds(role), _) => path_creds::handle(host, role, request),
            (Route::Tidy, _) => tidy::handle(host, request),
            (_, op) => Err(EngineError::UnsupportedOperation(format!(
                "{} does not support {op:?}",
                request.path
            ))),
        },
    }
}

/// Whether the object a write would touch exists; `None` for paths without the check.
pub fn existence_check(host: &dyn Host, request: &Request) -> Result<Option<bool>, EngineError> {
    match Route::of(request)? {
        Route::Config(account) => path_config::exists(host, account).map(Some),
        Route::Role(role) => path_role::exists(host, role).map(Some),
        Route::ConfigList | Route::Token(..) | Route::RoleList | Route::Creds(_) | Route::Tidy => {
            Ok(None)
        }
    }
}

pub fn help() -> BackendHelp {
    BackendHelp {
        description: DESCRIPTION,
        paths: [
            path_config::help(),
            path_token::help(),
            path_role::help(),
            path_creds::help(),
            tidy::help(),
        ]
        .concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHost;
    use serde_json::json;

    #[test]
    fn routes() {
        assert_eq!(Route::parse("config"), Some(Route::ConfigList));
        assert_eq!(Route::parse("config/"), Some(Route::ConfigList));
        assert_eq!(Route::parse("config/hoeg"), Some(Route::Config("hoeg")));
        assert_eq!(
            Route::parse("token/hoeg/ns"),
            Some(Route::Token("hoeg", "ns"))
        );
        assert_eq!(Route::parse("roles"), Some(Route::RoleList));
        assert_eq!(Route::parse("roles/"), Some(Route::RoleList));
        assert_eq!(Route::parse("roles/app"), Some(Route::Role("app")));
        assert_eq!(Route::parse("creds/app"), Some(Route::Creds("app")));
        assert_eq!(Route::parse("tidy"), Some(Route::Tidy));
        for unknown in [
            "",
            "tokens/x",
            "token/hoeg",
            "token/hoeg/ns/",
            "token//ns",
            "config/a/b",
            "creds/",
            "creds/a/b",
            "roles/a/b",
        ] {
            assert_eq!(Route::parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn unknown_paths_and_operations_are_vaults_404_and_405() {
        let host = TestHost::new();
        assert!(matches!(
            host.call(Operation::Read, "nope", json!({})),
            Err(EngineError::UnsupportedPath(_))
        ));
        for (op, path) in [
            (Operation::Read, "config/"),
            (Operation::List, "config/hoeg"),
            (Operation::Delete, "token/hoeg/hoeg"),
            (Operation::List, "token/hoeg/hoeg"),
        ] {
            assert!(
                matches!(
                    host.call(op, path, json!({})),
                    Err(EngineError::UnsupportedOperation(_))
                ),
                "{op:?} {path}"
            );
        }
    }

    #[test]
    fn existence_checks() {
        let host = TestHost::configured();
        let check = |path: &str| existence_check(&host, &Request::new(Operation::Update, path));
        assert_eq!(check("config/hoeg"), Ok(Some(true)));
        assert_eq!(check("config/other"), Ok(Some(false)));
        assert_eq!(check("token/hoeg/hoeg"), Ok(None));
        assert_eq!(check("roles/app-pull"), Ok(Some(false)));
        assert_eq!(check("creds/app-pull"), Ok(None));
        assert!(check("elsewhere").is_err());
    }

    #[test]
    fn help_documents_every_path_and_field() {
        let help = help();
        let patterns: Vec<&str> = help.paths.iter().map(|p| p.pattern).collect();
        assert_eq!(
            patterns,
            [
                r"config/(?P<account>[^/]+)$",
                r"config/?$",
                r"token/(?P<account>[^/]+)/(?P<namespace>[^/]+)$",
                r"roles/(?P<role>[^/]+)$",
                r"roles/?$",
                r"creds/(?P<role>[^/]+)$",
                r"tidy$",
            ]
        );
        for path in &help.paths {
            assert!(!path.synopsis.is_empty());
            for field in &path.fields {
                assert!(!field.description.is_empty(), "{}", field.name);
            }
        }
        let password = help.paths[0]
            .fields
            .iter()
            .find(|f| f.name == "password")
            .unwrap();
        assert!(password.sensitive);
    }
}
