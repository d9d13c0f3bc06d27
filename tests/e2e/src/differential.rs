//! One scenario, several hosts: OpenBao with the plugin, `dockerhub-secrets serve`, and the
//! gateway component in `wasmtime serve` (with etcd), each with its own Docker Hub fake, the
//! seed's config, and the same policy texts bound to tokens of the same names. A test sends
//! each host the same request, byte for byte, and compares what comes back.

use crate::cli::BaoCli;
use crate::gateway::{Etcd, Gateway, Kind};
use crate::oidc::Issuer;
use crate::openbao::OpenBao;
use crate::serve::{Serve, sha256_hex};
use crate::{PASSWORD, lease_id};
use fakehub::{Config, FakeHub};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The policies both hosts load, by name: the issue's attack policy (everything under the
/// mount but the `hoeg` namespace and the configs, plus revoking its own leases by path, as
/// `bao lease revoke <id>` sends it), one that allows revoking only with the id in the
/// body (what hvac's `revoke_lease` sends), and one that may list the leases of account
/// `hoeg` (list with sudo) but not those of every account (list alone).
pub const POLICIES: [(&str, &str); 3] = [
    (
        "limited",
        r#"
path "dockerhub/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "dockerhub/token/hoeg/hoeg" {
  capabilities = ["deny"]
}
path "dockerhub/config/*" {
  capabilities = ["deny"]
}
path "sys/leases/revoke/dockerhub/token/hoeg/my-organization/*" {
  capabilities = ["update"]
}
"#,
    ),
    (
        "body-revoke",
        r#"
path "sys/leases/revoke" {
  capabilities = ["update"]
}
"#,
    ),
    (
        "lease-lister",
        r#"
path "sys/leases/lookup/dockerhub/token/hoeg/*" {
  capabilities = ["list", "sudo"]
}
path "sys/leases/lookup/dockerhub/token/*" {
  capabilities = ["list"]
}
"#,
    ),
];

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Root,
    /// A token with the policy of the same name in [`POLICIES`].
    Policy(&'static str),
    /// No token header at all.
    Nobody,
    /// A token neither host knows.
    Unknown,
}

enum Server {
    OpenBao(OpenBao),
    Serve(Serve),
    /// The gateway, then what it needs: dropped in this order.
    Gateway(Box<(Gateway, Etcd, FakeHub)>),
}

/// A host with the seed's config written and a token per policy.
pub struct Host {
    pub name: &'static str,
    server: Server,
    tokens: BTreeMap<&'static str, String>,
}

/// What came back: the status, the `Location` header, and the body (JSON, or the raw text
/// as a JSON string, or `null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: Value,
}

impl Answer {
    /// The answer's shape: for a JSON object its keys, each with the shape of its value, but
    /// those in `left_out` (at any depth); else what kind of body it is. Values differ between
    /// hosts, shapes must not: see [`shape_of`].
    pub fn shape(&self, left_out: &[&str]) -> String {
        match &self.body {
            Value::Object(_) => shape_leaving_out(&self.body, left_out),
            Value::Null => "empty".into(),
            _ => "text".into(),
        }
    }
}

/// A JSON value's shape: an object's keys with their values' shapes, nested objects
/// included; for anything else its JSON type, and for a string that is a timestamp which
/// form of RFC 3339 it has (Go writes a `time.Time` with the fraction of its second, and
/// cuts only the fraction's trailing zeros).
pub fn shape_of(value: &Value) -> String {
    shape_leaving_out(value, &[])
}

/// [`shape_of`], without the keys in `left_out` wherever they are.
fn shape_leaving_out(value: &Value, left_out: &[&str]) -> String {
    match value {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(key, _)| !left_out.contains(&key.as_str()))
                .map(|(key, value)| format!("{key}:{}", shape_leaving_out(value, left_out)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::Array(_) => "array".into(),
        Value::String(text) => match humantime::parse_rfc3339(text) {
            Ok(_) if text.contains('.') => "time(fraction)".into(),
            Ok(_) => "time(seconds)".into(),
            Err(_) => "string".into(),
        },
    }
}

/// [`POLICIES`] as tokens-file blocks, one token per policy, and the tokens by name (root's
/// included).
fn tokens_file_policies() -> (String, BTreeMap<&'static str, String>) {
    let mut extra = String::new();
    let mut tokens = BTreeMap::new();
    for (name, policy) in POLICIES {
        let token = format!("hvs.{name}-token-for-tests");
        extra += &format!(
            "token \"{name}\" {{\n  sha256 = \"{}\"\n  policies = [\"{name}\"]\n}}\n\
             policy \"{name}\" {{\n{policy}}}\n",
            sha256_hex(&token)
        );
        tokens.insert(name, token);
    }
    tokens.insert("root", crate::serve::ROOT_TOKEN.to_string());
    (extra, tokens)
}

fn hub() -> FakeHub {
    FakeHub::start(Config::default().account("hoeg", PASSWORD, None)).expect("start the fake hub")
}

/// A `jwt` auth mount at `auth/jwt/`, set up alike in both hosts: it trusts `issuer`'s keys
/// (its JWKS over HTTPS: `jwks_url`, `jwks_ca_pem`, `bound_issuer`) and has one role, `role`,
/// whose `settings` are Vault's role fields as JSON, which OpenBao takes as they are and
/// `serve`'s tokens file as HCL.
pub struct JwtMount<'a> {
    pub issuer: &'a Issuer,
    pub role: &'a str,
    pub settings: Value,
}

impl JwtMount<'_> {
    /// The mount's config, as OpenBao's `auth/jwt/config` takes it.
    fn config(&self) -> Value {
        serde_json::json!({
            "jwks_url": self.issuer.jwks_url(),
            "jwks_ca_pem": self.issuer.ca_pem().expect("an HTTPS issuer"),
            "bound_issuer": self.issuer.url(),
        })
    }

    /// The same as a tokens-file block: `auth "jwt"` with the config and the role.
    fn hcl(&self) -> String {
        let attributes = |object: &Value, indent: &str| -> String {
            let fields = object.as_object().expect("an object");
            fields
                .iter()
                .map(|(name, value)| format!("{indent}{name} = {}\n", hcl_value(value)))
                .collect()
        };
        format!(
            "auth \"jwt\" {{\n  type = \"jwt\"\n{}  role {:?} {{\n{}  }}\n}}\n",
            attributes(&self.config(), "  "),
            self.role,
            attributes(&self.settings, "    "),
        )
    }
}

/// A JSON value as an HCL expression: JSON's strings, numbers and lists are HCL's; an
/// object's keys are quoted.
fn hcl_value(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(hcl_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("{key:?} = {}", hcl_value(value)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

impl Host {
    /// OpenBao with the plugin: policies written with `bao policy write`, tokens created
    /// with `bao token create`.
    pub fn openbao() -> anyhow::Result<Host> {
        Host::openbao_with(None)
    }

    /// [`Host::openbao`] with OpenBao's own `jwt` auth method enabled at `auth/jwt/` as
    /// `jwt` says.
    pub fn openbao_with_jwt(jwt: &JwtMount) -> anyhow::Result<Host> {
        Host::openbao_with(Some(jwt))
    }

    fn openbao_with(jwt: Option<&JwtMount>) -> anyhow::Result<Host> {
        let bao = OpenBao::start_with_hub(hub())?;
        bao.write_seed_config(PASSWORD)?;
        let mut tokens = BTreeMap::new();
        for (name, policy) in POLICIES {
            bao.bao_stdin(&["policy", "write", name, "-"], policy)?;
            let created = bao.bao_json(&["token", "create", &format!("-policy={name}")])?;
            let token = created["auth"]["client_token"].as_str().unwrap_or_default();
            tokens.insert(name, token.to_string());
        }
        tokens.insert("root", crate::openbao::ROOT_TOKEN.to_string());
        if let Some(jwt) = jwt {
            bao.bao_ok(&["auth", "enable", "jwt"])?;
            bao.bao_stdin(
                &["write", "auth/jwt/config", "-"],
                &jwt.config().to_string(),
            )?;
            let role = format!("auth/jwt/role/{}", jwt.role);
            bao.bao_stdin(&["write", &role, "-"], &jwt.settings.to_string())?;
        }
        Ok(Host {
            name: "openbao",
            server: Server::OpenBao(bao),
            tokens,
        })
    }

    /// `serve` with the same policies in its tokens file.
    pub fn serve() -> anyhow::Result<Host> {
        Host::serve_with(None)
    }

    /// [`Host::serve`] with `jwt` as an `auth "jwt"` block of its tokens file.
    pub fn serve_with_jwt(jwt: &JwtMount) -> anyhow::Result<Host> {
        Host::serve_with(Some(jwt))
    }

    fn serve_with(jwt: Option<&JwtMount>) -> anyhow::Result<Host> {
        let (mut extra, tokens) = tokens_file_policies();
        extra += &jwt.map(JwtMount::hcl).unwrap_or_default();
        let serve = Serve::start_with_tokens(hub(), &[], &extra)?;
        serve.write_seed_config(PASSWORD)?;
        Ok(Host {
            name: "serve",
            server: Server::Serve(serve),
            tokens,
        })
    }

    /// The gateway component in `kind` with etcd, the same policies in its tokens file.
    pub fn gateway(kind: Kind) -> anyhow::Result<Host> {
        let (extra, tokens) = tokens_file_policies();
        let (hub, etcd) = (hub(), Etcd::start()?);
        let gateway = Gateway::start_with_tokens(kind, &hub, &etcd, "differential/", &extra)?;
        gateway.write_seed_config(PASSWORD)?;
        Ok(Host {
            name: match kind {
                Kind::Wasmtime => "wasmtime-serve",
                Kind::Jco => "jco-serve",
            },
            server: Server::Gateway(Box::new((gateway, etcd, hub))),
            tokens,
        })
    }

    pub fn addr(&self) -> &str {
        match &self.server {
            Server::OpenBao(bao) => &bao.addr,
            Server::Serve(serve) => &serve.addr,
            Server::Gateway(parts) => &parts.0.addr,
        }
    }

    pub fn hub(&self) -> &FakeHub {
        match &self.server {
            Server::OpenBao(bao) => &bao.hub,
            Server::Serve(serve) => &serve.hub,
            Server::Gateway(parts) => &parts.2,
        }
    }

    /// The `bao` CLI against this host, as root.
    pub fn cli(&self) -> &BaoCli {
        match &self.server {
            Server::OpenBao(bao) => bao,
            Server::Serve(serve) => serve,
            Server::Gateway(parts) => &parts.0,
        }
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        match &self.server {
            Server::OpenBao(bao) => bao.server_log(),
            Server::Serve(serve) => serve.log(),
            Server::Gateway(parts) => parts.0.log(),
        }
    }

    /// The secret of `who`'s token, if `who` sends one.
    pub fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Root => Some(self.tokens["root"].clone()),
            Who::Policy(name) => Some(self.tokens[name].clone()),
            Who::Nobody => None,
            Who::Unknown => Some("hvs.a-token-nobody-issued".into()),
        }
    }

    /// Send one request exactly as given: `target` is the request line's target, unchanged
    /// (no client library would send `//` or `%2e` as written).
    pub fn raw(
        &self,
        method: &str,
        target: &str,
        who: Who,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        self.raw_as(method, target, self.token(who).as_deref(), headers, body)
    }

    /// [`Host::raw`] with `token` (a login's, say) as the request's token, or none.
    pub fn raw_as(
        &self,
        method: &str,
        target: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let mut stream = TcpStream::connect(self.addr().trim_start_matches("http://"))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        if let Some(token) = token {
            head += &format!("X-Vault-Token: {token}\r\n");
        }
        for (name, value) in headers {
            head += &format!("{name}: {value}\r\n");
        }
        head += &format!("Content-Length: {}\r\n\r\n", body.len());
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        parse_answer(&answer)
    }
}

/// An HTTP/1.1 answer read to the end of a `Connection: close` stream.
fn parse_answer(raw: &[u8]) -> anyhow::Result<Answer> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of head in {:?}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut payload = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        payload = dechunk(&payload);
    }
    let text = String::from_utf8_lossy(&payload);
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
    };
    Ok(Answer {
        status,
        location: header("location"),
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16);
        let Ok(size) = size else { break };
        if size == 0 || raw.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 4 + size).min(raw.len())..];
    }
    out
}

/// Issue a token for `hoeg/my-organization` as `who` and return the answer's lease id.
pub fn issue_lease(host: &Host, who: Who) -> anyhow::Result<String> {
    let answer = host.raw(
        "PUT",
        "/v1/dockerhub/token/hoeg/my-organization",
        who,
        &[],
        b"{}",
    )?;
    anyhow::ensure!(answer.status == 200, "{}: {answer:?}", host.name);
    Ok(lease_id(&answer.body).to_string())
}
