//! Who may do what on a host that speaks Vault's HTTP API itself (`serve`, the gateway):
//! tokens and their Vault policies.
//!
//! Such a host speaks Vault's HTTP API, so it decides access the way Vault does and
//! an operator can reuse what they know: a request carries a token, the token carries policies,
//! and a policy is written in Vault's own policy syntax. There is no token store to manage at
//! runtime; the operator writes one HCL file listing the tokens, each stored only as the SHA-256
//! of its secret (so the file grants nothing if it leaks), and the policies they carry.
//!
//! Rules match as Vault documents it: a policy path is exact, ends in a `*` prefix glob, or has
//! `+` segments. Of all the rules of a token's policies that match a path only the
//! highest-priority pattern counts; the rules with that same pattern are united, and a `deny`
//! among them denies everything. The built-in `root` policy allows everything and `default` is
//! on every other token.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::LoginToken;
use hcl::{Block, Body, Structure};
use sha2::{Digest, Sha256};

/// The part of Vault's built-in `default` policy that concerns this server: a token may look
/// itself up (`bao login` does), renew and revoke itself (a login's token), ask what it may
/// do, and renew or look up its leases. The rest
/// (cubbyhole, response wrapping, identity) names features this server does not have.
const DEFAULT_POLICY: &str = r#"
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "sys/renew" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
"#;

const FILE: &str = "the tokens file";

/// An operation a policy can allow on a path: Vault's capabilities, minus `deny`, which exists
/// only inside policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    Create,
    Read,
    Update,
    Delete,
    List,
    Patch,
    Sudo,
}

/// The bit of a rule's grant that denies everything; the capabilities use the bits below it.
const DENY: u8 = 1 << 7;

impl Capability {
    pub const ALL: [Capability; 7] = [
        Self::Create,
        Self::Read,
        Self::Update,
        Self::Delete,
        Self::List,
        Self::Patch,
        Self::Sudo,
    ];
    const NAMES: [&str; 7] = [
        "create", "read", "update", "delete", "list", "patch", "sudo",
    ];

    /// The name used in policies and in Vault's API.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a capability; they are create, read, update, delete, list, patch and sudo")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let found = Self::ALL.into_iter().find(|c| c.as_str() == name);
        found.ok_or_else(|| UnknownCapability(name.to_owned()))
    }
}

/// The holder of a token, as the rest of the server (audit, lease metadata) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The label of the token's block in the tokens file; a login's token's display name.
    pub name: String,
    /// `token-<name>`, as Vault names tokens, or the login's (`jwt-acme/app`).
    pub display_name: String,
    /// As Vault reports them: sorted and with `default`, or just `root` for a root token.
    pub policies: Vec<String>,
    /// For a token a login created: its record. `None` for a token of the tokens file.
    pub login: Option<LoginToken>,
}

impl Principal {
    /// The holder of a login's token.
    pub fn of_login(login: LoginToken) -> Principal {
        Principal {
            name: login.display_name.clone(),
            display_name: login.display_name.clone(),
            policies: login.policies.clone(),
            login: Some(login),
        }
    }
}

/// Deliberately says nothing more, as Vault: whether the token exists must not leak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission denied")]
pub struct PermissionDenied;

/// Why a tokens file was refused.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("cannot read the tokens file {path}: {1}", path = .0.display())]
    Read(PathBuf, std::io::Error),
    #[error("{path}: {1}", path = .0.display())]
    InFile(PathBuf, Box<AclError>),
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A problem at a place such as `token "ci"` or `policy "ci", path "sys/*"`.
    #[error("{0}: {1}")]
    Invalid(String, Problem),
    #[error("policy \"{0}\" is built in and cannot be defined in the tokens file")]
    BuiltIn(String),
    #[error("policy \"{0}\" is defined twice")]
    DuplicatePolicy(String),
    #[error("token \"{0}\" is defined twice")]
    DuplicateToken(String),
    #[error("auth \"{0}\" is defined twice")]
    DuplicateAuth(String),
    #[error("tokens \"{0}\" and \"{1}\" have the same sha256, so the same secret")]
    DuplicateSha256(String, String),
}

/// What is wrong at one place of a tokens file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("unknown {0} `{1}` (expected {2})")]
    Unknown(&'static str, String, &'static str),
    #[error("every `{0}` block needs exactly one label, its name")]
    Label(String),
    /// Serde's words for a missing, unknown or mistyped attribute.
    #[error("{0}")]
    Attributes(String),
    #[error("invalid capability `{0}` (expected {caps} or deny)", caps = Capability::NAMES.join(", "))]
    Capability(String),
    #[error("`*` is a wildcard only at the end of a path")]
    Glob,
    #[error("sha256 must be 64 hex digits, as printed by `printf %s \"$TOKEN\" | sha256sum`")]
    Sha256,
    #[error("sha256 is that of an empty token (was $TOKEN unset?)")]
    EmptyToken,
    #[error("refers to unknown policy \"{0}\"")]
    UnknownPolicy(String),
}

/// One `path` block of a policy.
#[derive(Debug)]
struct Rule {
    /// As written, minus a leading `/`.
    pattern: String,
    /// Capability bits, and [`DENY`].
    grant: u8,
}

impl Rule {
    fn is_glob(&self) -> bool {
        self.pattern.ends_with('*')
    }

    fn is_exact(&self) -> bool {
        !self.is_glob() && !self.pattern.split('/').any(|segment| segment == "+")
    }

    fn matches(&self, path: &str) -> bool {
        let stem = self.pattern.strip_suffix('*');
        let glob = stem.is_some();
        let mut segments = stem.unwrap_or(&self.pattern).split('/').peekable();
        let mut rest = path;
        while let Some(segment) = segments.next() {
            if segments.peek().is_none() {
                return match (glob, segment == "+") {
                    (true, true) => true,
                    (true, false) => rest.starts_with(segment),
                    (false, true) => !rest.contains('/'),
                    (false, false) => rest == segment,
                };
            }
            match rest.split_once('/') {
                Some((head, tail)) if segment == "+" || segment == head => rest = tail,
                _ => return false,
            }
        }
        false
    }

    /// Vault's priority rules as a key, the higher priority the greater: the first wildcard
    /// later, no trailing `*`, fewer `+` segments, longer, lexicographically greater.
    fn priority(&self) -> impl Ord + '_ {
        let first_wildcard = self.pattern.find(['+', '*']).unwrap_or(usize::MAX);
        let pluses = self.pattern.split('/').filter(|s| *s == "+").count();
        let pattern = self.pattern.as_str();
        (
            first_wildcard,
            !self.is_glob(),
            Reverse(pluses),
            pattern.len(),
            pattern,
        )
    }
}

/// The tokens and policies of one tokens file, ready to answer requests.
#[derive(Debug)]
pub struct AccessControl {
    /// Keyed by the SHA-256 of the token's secret.
    tokens: HashMap<[u8; 32], Principal>,
    /// Includes `default`; `root` has no rules, it is a short cut.
    policies: HashMap<String, Vec<Rule>>,
    /// The file's `auth "<path>" { ... }` blocks (auth mounts, `serve`'s JWT auth), for
    /// the host to read: this file only checks that each has one label, once.
    auth: Vec<Block>,
}

impl AccessControl {
    pub fn load(path: &Path) -> Result<AccessControl, AclError> {
        let text = std::fs::read_to_string(path).map_err(|e| AclError::Read(path.into(), e))?;
        Self::parse(&text).map_err(|e| AclError::InFile(path.into(), Box::new(e)))
    }

    pub fn parse(text: &str) -> Result<AccessControl, AclError> {
        let default = parse_policy("default", &parse_hcl(DEFAULT_POLICY)?)?;
        let mut policies = HashMap::from([("default".to_owned(), default)]);
        let body = parse_hcl(text)?;
        let mut token_blocks = Vec::new();
        let mut auth = Vec::new();
        for structure in body.iter() {
            let block = match structure {
                Structure::Block(block) if block.identifier() == "token" => block,
                Structure::Block(block) if block.identifier() == "policy" => {
                    let name = label(block, FILE)?;
                    if name == "root" || name == "default" {
                        return Err(AclError::BuiltIn(name));
                    }
                    let rules = parse_policy(&name, block.body())?;
                    if policies.insert(name.clone(), rules).is_some() {
                        return Err(AclError::DuplicatePolicy(name));
                    }
                    continue;
                }
                Structure::Block(block) if block.identifier() == "auth" => {
                    let path = label(block, FILE)?;
                    if auth
                        .iter()
                        .any(|known: &Block| known.labels()[0].as_str() == path)
                    {
                        return Err(AclError::DuplicateAuth(path));
                    }
                    auth.push(block.clone());
                    continue;
                }
                other => {
                    return Err(unknown(FILE, other, "`token`, `policy` and `auth` blocks"));
                }
            };
            token_blocks.push(block);
        }
        // Tokens come second so that they may name policies defined further down.
        let mut tokens: HashMap<[u8; 32], Principal> = HashMap::new();
        for block in token_blocks {
            let (sha256, principal) = parse_token(block, &policies)?;
            let name = principal.name.clone();
            if tokens.values().any(|known| known.name == name) {
                return Err(AclError::DuplicateToken(name));
            }
            if let Some(first) = tokens.insert(sha256, principal) {
                return Err(AclError::DuplicateSha256(first.name, name));
            }
        }
        Ok(AccessControl {
            tokens,
            policies,
            auth,
        })
    }

    /// The file's `auth "<path>"` blocks, in file order, each with exactly one label.
    pub fn auth_blocks(&self) -> &[Block] {
        &self.auth
    }

    /// Whether the file defines policy `name` (or it is built in: `root`, `default`).
    pub fn has_policy(&self, name: &str) -> bool {
        name == "root" || self.policies.contains_key(name)
    }

    /// The principal behind `token` if the token is known and its policies grant `capability` on
    /// `path` (relative to `/v1/`, no leading slash: `dockerhub/token/hoeg/ns`).
    ///
    /// As in Vault, one lists a directory: `path` and `path/` are the same request, and an exact
    /// rule for either grants it.
    pub fn authorize(
        &self,
        token: Option<&str>,
        path: &str,
        capability: Capability,
    ) -> Result<Principal, PermissionDenied> {
        self.authorize_with(token, path, capability, false)
    }

    /// As [`AccessControl::authorize`], on a path Vault marks as root-protected
    /// (`PathsSpecial.Root`: `sys/leases/lookup/*`, `sys/leases/revoke-prefix/*`): the rule
    /// that grants `capability` must grant `sudo` too.
    pub fn authorize_sudo(
        &self,
        token: Option<&str>,
        path: &str,
        capability: Capability,
    ) -> Result<Principal, PermissionDenied> {
        self.authorize_with(token, path, capability, true)
    }

    fn authorize_with(
        &self,
        token: Option<&str>,
        path: &str,
        capability: Capability,
        sudo: bool,
    ) -> Result<Principal, PermissionDenied> {
        let principal = self.principal(token).ok_or(PermissionDenied)?;
        self.check(principal, path, capability, sudo)?;
        Ok(principal.clone())
    }

    /// As [`AccessControl::authorize`] (with `sudo`, [`AccessControl::authorize_sudo`]) for
    /// a principal already known, such as a login's token, whose policies are this file's.
    pub fn check(
        &self,
        principal: &Principal,
        path: &str,
        capability: Capability,
        sudo: bool,
    ) -> Result<(), PermissionDenied> {
        let bits = capability.bit() | if sudo { Capability::Sudo.bit() } else { 0 };
        let granted = if capability == Capability::List {
            let directory = path.strip_suffix('/').unwrap_or(path);
            self.granted(principal, &format!("{directory}/"), Some(directory))
        } else {
            self.granted(principal, path, None)
        };
        match granted & bits == bits {
            false => Err(PermissionDenied),
            true => Ok(()),
        }
    }

    /// The capabilities `token` has on `path`, in [`Capability::ALL`] order; empty for an unknown
    /// token, a path no rule matches, or a denied one.
    pub fn capabilities(&self, token: Option<&str>, path: &str) -> Vec<Capability> {
        match self.principal(token) {
            Some(principal) => self.capabilities_of(principal, path),
            None => Vec::new(),
        }
    }

    /// The capabilities `principal` has on `path`, in [`Capability::ALL`] order.
    pub fn capabilities_of(&self, principal: &Principal, path: &str) -> Vec<Capability> {
        let granted = self.granted(principal, path, None);
        let granted = |capability: &Capability| granted & capability.bit() != 0;
        Capability::ALL.into_iter().filter(granted).collect()
    }

    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// The holder of `token`, if it is a known token.
    pub fn principal(&self, token: Option<&str>) -> Option<&Principal> {
        let token = token.filter(|token| !token.is_empty())?;
        self.tokens.get(&<[u8; 32]>::from(Sha256::digest(token)))
    }

    /// The capability bits of the highest-priority pattern among the rules of the principal's
    /// policies that match `path`, or, when listing, that are exactly `directory`.
    fn granted(&self, principal: &Principal, path: &str, directory: Option<&str>) -> u8 {
        if principal.policies.iter().any(|policy| policy == "root") {
            return !DENY;
        }
        let applies = |rule: &&Rule| {
            rule.matches(path) || directory.is_some_and(|d| rule.is_exact() && rule.pattern == d)
        };
        let policies = principal
            .policies
            .iter()
            .filter_map(|name| self.policies.get(name));
        let matching: Vec<&Rule> = policies.flatten().filter(applies).collect();
        let Some(best) = matching.iter().max_by_key(|rule| rule.priority()) else {
            return 0;
        };
        let same_pattern = matching.iter().filter(|rule| rule.pattern == best.pattern);
        let granted = same_pattern.fold(0, |bits, rule| bits | rule.grant);
        if granted & DENY != 0 { 0 } else { granted }
    }
}

fn parse_hcl(text: &str) -> Result<Body, AclError> {
    hcl::parse(text).map_err(|error| match error {
        hcl::Error::Parse(error) => AclError::Syntax {
            line: error.location().line(),
            column: error.location().column(),
            message: error.message().to_owned(),
        },
        other => AclError::Syntax {
            line: 0,
            column: 0,
            message: other.to_string(),
        },
    })
}

fn parse_policy(name: &str, body: &Body) -> Result<Vec<Rule>, AclError> {
    let at = format!("policy \"{name}\"");
    let mut rules = Vec::new();
    for structure in body.iter() {
        let block = match structure {
            Structure::Block(block) if block.identifier() == "path" => block,
            other => return Err(unknown(&at, other, "`path` blocks")),
        };
        let label = label(block, &at)?;
        let pattern = label.strip_prefix('/').unwrap_or(&label).to_owned();
        let at = format!("{at}, path \"{pattern}\"");
        if pattern.strip_suffix('*').unwrap_or(&pattern).contains('*') {
            return Err(invalid(&at, Problem::Glob));
        }
        let PathBlock { capabilities } = attributes(block, &at)?;
        let mut grant = 0;
        for capability in capabilities {
            grant |= match capability.parse::<Capability>() {
                Ok(capability) => capability.bit(),
                Err(_) if capability == "deny" => DENY,
                Err(_) => return Err(invalid(&at, Problem::Capability(capability))),
            };
        }
        rules.push(Rule { pattern, grant });
    }
    Ok(rules)
}

fn parse_token(
    block: &Block,
    policies: &HashMap<String, Vec<Rule>>,
) -> Result<([u8; 32], Principal), AclError> {
    let name = label(block, FILE)?;
    let at = format!("token \"{name}\"");
    let TokenBlock {
        sha256,
        policies: mut names,
    } = attributes(block, &at)?;
    let sha256 = parse_sha256(&sha256).map_err(|problem| invalid(&at, problem))?;
    let defined = |name: &&String| *name == "root" || policies.contains_key(*name);
    if let Some(undefined) = names.iter().find(|name| !defined(name)) {
        return Err(invalid(&at, Problem::UnknownPolicy(undefined.clone())));
    }
    // Vault's rule: root excludes every other policy, and everyone else also has `default`.
    if names.iter().any(|policy| policy == "root") {
        names = vec!["root".to_owned()];
    } else {
        names.push("default".to_owned());
        names.sort();
        names.dedup();
    }
    let display_name = format!("token-{name}");
    let principal = Principal {
        name,
        display_name,
        policies: names,
        login: None,
    };
    Ok((sha256, principal))
}

fn parse_sha256(hex: &str) -> Result<[u8; 32], Problem> {
    let nibbles: Vec<u8> = hex
        .chars()
        .map_while(|c| c.to_digit(16))
        .map(|d| d as u8)
        .collect();
    if hex.len() != 64 || nibbles.len() != 64 {
        return Err(Problem::Sha256);
    }
    let mut sha256 = [0; 32];
    for (byte, pair) in sha256.iter_mut().zip(nibbles.chunks(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    if sha256 == <[u8; 32]>::from(Sha256::digest("")) {
        return Err(Problem::EmptyToken);
    }
    Ok(sha256)
}

fn invalid(at: &str, problem: Problem) -> AclError {
    AclError::Invalid(at.to_owned(), problem)
}

fn label(block: &Block, at: &str) -> Result<String, AclError> {
    match block.labels() {
        [label] => Ok(label.as_str().to_owned()),
        _ => Err(invalid(at, Problem::Label(block.identifier().to_owned()))),
    }
}

fn unknown(at: &str, structure: &Structure, expected: &'static str) -> AclError {
    let (kind, name) = match structure {
        Structure::Attribute(attribute) => ("attribute", attribute.key()),
        Structure::Block(block) => ("block", block.identifier()),
    };
    invalid(at, Problem::Unknown(kind, name.to_owned(), expected))
}

/// The attributes of a `token` block.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBlock {
    sha256: String,
    policies: Vec<String>,
}

/// The attributes of a policy's `path` block. Vault's parameter and wrapping constraints are
/// refused rather than ignored: a policy that seems to restrict parameters must not silently
/// allow them all.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PathBlock {
    capabilities: Vec<String>,
}

/// The attributes of `block`, refusing any other: a typo in a security file must not pass
/// silently.
fn attributes<T: serde::de::DeserializeOwned>(block: &Block, at: &str) -> Result<T, AclError> {
    let attributes = hcl::from_body(block.body().clone());
    attributes.map_err(|error| invalid(at, Problem::Attributes(error.to_string())))
}

#[cfg(test)]
mod tests {
    use super::Capability::*;
    use super::*;

    fn sha256(token: &str) -> String {
        Sha256::digest(token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Parses `text`, where `SHA(x)` stands for the SHA-256 of token `x`.
    fn parse(text: &str) -> Result<AccessControl, AclError> {
        let mut text = text.to_owned();
        for token in ["", "t", "u", "admin"] {
            text = text.replace(&format!("SHA({token})"), &sha256(token));
        }
        AccessControl::parse(&text)
    }

    /// Token `t` with the one policy `p` made of `rules`, one per line.
    fn policy(rules: &str) -> AccessControl {
        let token = "token \"t\" {\n sha256 = \"SHA(t)\"\n policies = [\"p\"]\n}";
        parse(&format!("{token}\npolicy \"p\" {{\n{rules}\n}}")).unwrap()
    }

    fn caps(acl: &AccessControl, path: &str) -> Vec<Capability> {
        acl.capabilities(Some("t"), path)
    }

    #[test]
    fn the_example_file() {
        let acl = parse(
            r#"
            # Each token is stored only as the SHA-256 (hex) of its secret
            token "ci-release" {
              sha256   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
              policies = ["ci-release"]
            }
            token "admin" {
              sha256   = "SHA(admin)"
              policies = ["root"]
            }
            policy "ci-release" {
              path "dockerhub/token/hoeg/my-organization" {
                capabilities = ["create", "update"]
              }
              path "sys/leases/revoke" {
                capabilities = ["update"]
              }
            }"#,
        )
        .unwrap();
        assert_eq!(acl.token_count(), 2);
        let (ci, path) = (Some("test"), "dockerhub/token/hoeg/my-organization");
        let principal = acl.authorize(ci, path, Create).unwrap();
        assert_eq!(principal.name, "ci-release");
        assert_eq!(principal.display_name, "token-ci-release");
        assert_eq!(principal.policies, ["ci-release", "default"]);
        assert_eq!(acl.capabilities(ci, path), [Create, Update]);
        let other = "dockerhub/token/hoeg/other";
        assert_eq!(acl.authorize(ci, other, Create), Err(PermissionDenied));
        assert_eq!(acl.capabilities(ci, "sys/leases/revoke"), [Update]);
        assert_eq!(acl.capabilities(ci, "sys/leases/renew"), [Update]);
        let admin = acl.authorize(Some("admin"), "sys/any/thing", Sudo).unwrap();
        assert_eq!(admin.policies, ["root"]);
        assert_eq!(acl.capabilities(Some("admin"), "x"), Capability::ALL);
    }

    #[test]
    fn unknown_or_absent_tokens_are_denied() {
        let acl = policy(r#"path "*" { capabilities = ["read"] }"#);
        assert!(acl.authorize(Some("t"), "a", Read).is_ok());
        for token in [None, Some(""), Some("T"), Some("other")] {
            assert_eq!(acl.authorize(token, "a", Read), Err(PermissionDenied));
            assert!(acl.capabilities(token, "a").is_empty());
        }
        assert_eq!(PermissionDenied.to_string(), "permission denied");
    }

    #[test]
    fn exact_glob_and_segment_patterns() {
        let acl = policy(
            r#"path "/exact/path" { capabilities = ["read"] }
               path "dockerhub/token/*" { capabilities = ["create"] }
               path "a/+/b" { capabilities = ["update"] }
               path "c/+/+/d/*" { capabilities = ["delete"] }"#,
        );
        assert_eq!(caps(&acl, "exact/path"), [Read]);
        assert_eq!(caps(&acl, "dockerhub/token/hoeg/ns"), [Create]);
        assert_eq!(caps(&acl, "dockerhub/token/"), [Create]);
        assert_eq!(caps(&acl, "a/x/b"), [Update]);
        assert_eq!(caps(&acl, "c/x/y/d/e/f"), [Delete]);
        for path in [
            "exact",
            "exact/path/more",
            "dockerhub/token",
            "dockerhub/tokens/x",
        ] {
            assert!(caps(&acl, path).is_empty(), "{path}");
        }
        for path in ["a/x/y/b", "a/x/b/c", "a/b", "c/x/d/e", "c/x/y/d"] {
            assert!(caps(&acl, path).is_empty(), "{path}");
        }
    }

    #[test]
    fn only_the_highest_priority_pattern_counts() {
        let acl = policy(
            r#"path "dockerhub/*" { capabilities = ["read"] }
               path "dockerhub/token/hoeg/+" { capabilities = ["update"] }
               path "a/b/*" { capabilities = ["read"] }
               path "a/b/+" { capabilities = ["update"] }
               path "c/+/+" { capabilities = ["read"] }
               path "c/+/x" { capabilities = ["update"] }
               path "d/+/x*" { capabilities = ["read"] }
               path "d/+/xy*" { capabilities = ["update"] }"#,
        );
        assert_eq!(caps(&acl, "dockerhub/token/hoeg/x"), [Update]); // first wildcard later
        assert_eq!(caps(&acl, "dockerhub/token/other/x"), [Read]);
        assert_eq!(caps(&acl, "a/b/c"), [Update]); // no trailing `*`
        assert_eq!(caps(&acl, "a/b/c/d"), [Read]);
        assert_eq!(caps(&acl, "c/y/x"), [Update]); // fewer `+`
        assert_eq!(caps(&acl, "d/y/xyz"), [Update]); // longer
    }

    #[test]
    fn policies_unite_on_equal_patterns_and_deny_wins() {
        let policies = r#"
            policy "a" {
              path "dockerhub/token/*" { capabilities = ["create"] }
              path "dockerhub/*" { capabilities = ["read"] }
              path "x/*" { capabilities = ["deny"] }
            }
            policy "b" {
              path "dockerhub/token/*" { capabilities = ["update"] }
              path "dockerhub/token/secret" { capabilities = ["deny"] }
              path "x/allowed" { capabilities = ["read"] }
              path "y" { capabilities = ["read", "deny"] }
            }
            policy "c" {
              path "dockerhub/token/*" { capabilities = ["deny"] }
            }"#;
        let token = |names| format!("token \"t\" {{\nsha256 = \"SHA(t)\"\npolicies = {names}\n}}");
        let acl = parse(&(token(r#"["a", "b"]"#) + policies)).unwrap();
        assert_eq!(caps(&acl, "dockerhub/token/ns"), [Create, Update]);
        assert_eq!(caps(&acl, "dockerhub/other"), [Read]);
        assert_eq!(caps(&acl, "x/allowed"), [Read]); // more specific than the deny, as in Vault
        for path in ["dockerhub/token/secret", "x/other", "y"] {
            assert!(caps(&acl, path).is_empty(), "{path}");
        }
        let acl = parse(&(token(r#"["a", "b", "c"]"#) + policies)).unwrap();
        assert!(caps(&acl, "dockerhub/token/ns").is_empty());
    }

    #[test]
    fn default_policy_and_root() {
        let acl = parse("token \"t\" {\n sha256 = \"SHA(t)\"\n policies = []\n}").unwrap();
        for path in ["sys/leases/renew", "sys/leases/lookup", "sys/renew"] {
            let principal = acl.authorize(Some("t"), path, Update).unwrap();
            assert_eq!(principal.policies, ["default"]);
        }
        assert!(
            acl.authorize(Some("t"), "sys/leases/revoke", Update)
                .is_err()
        );
        assert!(acl.authorize(Some("t"), "sys/leases/renew", Sudo).is_err());
        let acl = parse("token \"t\" {\n sha256 = \"SHA(t)\"\n policies = [\"root\"]\n}");
        assert!(
            acl.unwrap()
                .authorize(Some("t"), "anything", Delete)
                .is_ok()
        );
    }

    #[test]
    fn listing_is_of_a_directory() {
        for rule in [
            r#""dockerhub/roles""#,
            r#""dockerhub/roles/""#,
            r#""dockerhub/roles/*""#,
        ] {
            let acl = policy(&format!("path {rule} {{ capabilities = [\"list\"] }}"));
            assert!(
                acl.authorize(Some("t"), "dockerhub/roles", List).is_ok(),
                "{rule}"
            );
            assert!(
                acl.authorize(Some("t"), "dockerhub/roles/", List).is_ok(),
                "{rule}"
            );
        }
    }

    #[test]
    fn sudo_comes_from_the_rule_that_grants() {
        let acl = policy(
            r#"path "sys/leases/lookup/a/*" { capabilities = ["list", "sudo"] }
            path "sys/leases/lookup/*" { capabilities = ["list"] }
            path "sys/leases/lookup/b" { capabilities = ["list", "sudo"] }"#,
        );
        let lister = |path: &str| acl.authorize_sudo(Some("t"), path, List).is_ok();
        assert!(lister("sys/leases/lookup/a/"));
        assert!(lister("sys/leases/lookup/a/x/"));
        assert!(lister("sys/leases/lookup/b/"));
        assert!(!lister("sys/leases/lookup/c/"));
        assert!(
            acl.authorize(Some("t"), "sys/leases/lookup/c/", List)
                .is_ok()
        );
        assert!(
            acl.authorize_sudo(Some("t"), "sys/leases/lookup/a/", Read)
                .is_err()
        );
    }

    #[test]
    fn capability_names() {
        let message = "write".parse::<Capability>().unwrap_err().to_string();
        assert!(message.starts_with("`write` is not a capability; they are create"));
        assert_eq!("patch".parse::<Capability>(), Ok(Patch));
        assert_eq!(Sudo.to_string(), "sudo");
    }

    /// Each case: the expected message (or a part of it), then the file it refuses.
    const REFUSED: &str = r#"
policy "p", path "a/*": invalid capability `write` (expected create, read, update, delete, list, patch, sudo or deny)
policy "p" {
  path "a/*" { capabilities = ["write"] }
}
---
line 2, column 37: invalid block body
policy "p" {
  path "a" { capabilities = ["read"]
}
---
token "t": sha256 must be 64 hex digits
token "t" {
  sha256 = "abc"
  policies = []
}
---
token "t": sha256 must be 64 hex digits
token "t" {
  sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g"
  policies = []
}
---
token "t": sha256 is that of an empty token
token "t" {
  sha256 = "SHA()"
  policies = []
}
---
token "t": refers to unknown policy "nope"
token "t" {
  sha256 = "SHA(t)"
  policies = ["nope"]
}
---
token "t" is defined twice
token "t" {
  sha256 = "SHA(t)"
  policies = []
}
token "t" {
  sha256 = "SHA(u)"
  policies = []
}
---
tokens "t" and "u" have the same sha256
token "t" {
  sha256 = "SHA(t)"
  policies = []
}
token "u" {
  sha256 = "SHA(t)"
  policies = []
}
---
policy "p" is defined twice
policy "p" {}
policy "p" {}
---
policy "default" is built in
policy "default" {}
---
token "t": unknown field `sha265`, expected `sha256` or `policies`
token "t" {
  sha265 = "SHA(t)"
  policies = []
}
---
token "t": missing field `policies`
token "t" {
  sha256 = "SHA(t)"
}
---
the tokens file: unknown block `tokens` (expected `token`, `policy` and `auth` blocks)
tokens "t" {}
---
the tokens file: every `token` block needs exactly one label, its name
token {}
---
policy "p", path "a": unknown field `allowed_parameters`, expected `capabilities`
policy "p" {
  path "a" { allowed_parameters = {} }
}
---
policy "p", path "a/*/b": `*` is a wildcard only at the end of a path
policy "p" {
  path "a/*/b" { capabilities = [] }
}
---
policy "p", path "a": invalid type: string "read", expected a sequence
policy "p" {
  path "a" { capabilities = "read" }
}
---
the tokens file: every `auth` block needs exactly one label, its name
auth {}
---
auth "jwt" is defined twice
auth "jwt" { type = "jwt" }
auth "jwt" { type = "jwt" }"#;

    #[test]
    fn mistakes_are_refused_and_named() {
        for case in REFUSED.split("\n---\n") {
            let (expected, file) = case.trim_start().split_once('\n').unwrap();
            let message = parse(file).unwrap_err().to_string();
            assert!(
                message.starts_with(expected),
                "{message}\nexpected: {expected}"
            );
        }
        let message = AccessControl::load(Path::new("/nonexistent/tokens.hcl")).unwrap_err();
        assert!(
            message
                .to_string()
                .starts_with("cannot read the tokens file /nonexistent")
        );
    }
}
