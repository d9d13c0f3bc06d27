//! Reading a request as Vault's HTTP layer reads it: the URL's path (decoded, cleaned,
//! checked), the verb from the method and flags, the client token, the data from the query or
//! the body, and the headers that would make Vault answer differently.

use crate::acl::Capability;
use crate::answer::{ApiError, field_invalid, unsupported};
use crate::input::{parse_bool, parse_duration};
use http::{HeaderMap, Method, StatusCode, Uri, header};
use serde_json::{Map, Value, json};

/// The client token as Vault reads it: a non-empty `X-Vault-Token` (the first one), else the
/// first `Authorization` value that starts with `Bearer `, trimmed.
pub(crate) fn client_token(headers: &HeaderMap) -> Option<&str> {
    let vault_token = headers.get("x-vault-token").and_then(|v| v.to_str().ok());
    if let Some(token) = vault_token.filter(|t| !t.is_empty()) {
        return Some(token);
    }
    headers
        .get_all("authorization")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Where a request goes once its URL is read as Vault's HTTP layer reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A path that is not clean (`//`, `.` or `..` segments): Go's `ServeMux` answers with a
    /// redirect to the clean path, and so does this server, so that the path a policy is
    /// checked on is always the path that runs.
    Redirect(String),
    /// The decoded path after `/v1/`: the path policies are checked on and requests run on.
    Path(String),
}

/// Resolve a request URL as OpenBao does: non-printable characters are refused, a path
/// outside `/v1/` is not found, an unclean one is redirected, and `%XX` escapes are decoded
/// (so `%2F` is a `/`, as in Vault) before anything looks at the path.
pub(crate) fn resolve(uri: &Uri) -> Result<Target, ApiError> {
    let raw = uri.path();
    let decoded = percent_decode(raw)
        .ok_or_else(|| ApiError::new(400, format!("invalid URL escape in {raw:?}")))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| ApiError::new(400, "the path is not valid UTF-8"))?;
    if !decoded.chars().all(is_printable) {
        return Err(ApiError::new(400, "the path has a non-printable character"));
    }
    // OpenBao with its web UI on (the dev server's default) sends `/` there, whatever the
    // method. This server has no UI; it answers `/` as OpenBao does all the same.
    if decoded == "/" {
        return Ok(Target::Redirect("/ui/".into()));
    }
    let Some(path) = decoded.strip_prefix("/v1/") else {
        return Err(ApiError::not_found());
    };
    let clean = clean_path(raw);
    if clean != raw {
        return Ok(Target::Redirect(match uri.query() {
            Some(query) => format!("{clean}?{query}"),
            None => clean,
        }));
    }
    // OpenBao's `IsRelativePath`: a `.` or `..` segment that was escaped (`%2e`) and so
    // survived the cleaning.
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(ApiError::new(400, "relative paths not supported"));
    }
    Ok(Target::Path(path.to_string()))
}

/// Go's `net/url` path unescaping: every `%` starts two hex digits.
fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |b: Option<u8>| (b? as char).to_digit(16);
        out.push((hex(bytes.next())? * 16 + hex(bytes.next())?) as u8);
    }
    Some(out)
}

/// Go's `unicode.IsPrint` as far as it matters here: control characters, and every space or
/// invisible formatting character but the ASCII space, are refused (OpenBao's
/// `PrintablePathCheckHandler`).
fn is_printable(c: char) -> bool {
    let invisible = matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}');
    c == ' ' || !(c.is_control() || c.is_whitespace() || invisible)
}

/// Go's `ServeMux` path cleaning: `path.Clean`, keeping a trailing slash.
fn clean_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut clean = format!("/{}", segments.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

/// What a request asks for, from its method (and, for `GET`, its `list` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Read,
    List,
    Write,
    Delete,
    /// A JSON merge patch, which nothing here supports once the policy allowed it.
    Patch,
}

impl Verb {
    /// The verb of a request, refused as OpenBao refuses it before any token is looked at.
    /// `OPTIONS` is no verb (`None`): OpenBao builds a request with no operation for it and
    /// refuses that only after the request's headers were checked.
    pub(crate) fn of(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Option<Verb>, ApiError> {
        Ok(Some(match method.as_str() {
            "GET" => {
                let flag = |name: &str| -> Result<bool, ApiError> {
                    let value = query_pairs(uri).find(|(key, _)| key == name);
                    match value.map(|(_, v)| v).filter(|v| !v.is_empty()) {
                        None => Ok(false),
                        // OpenBao answers a flag that is no Go boolean with 400 and no message.
                        Some(v) => {
                            parse_bool(&v).ok_or_else(|| ApiError::bare(StatusCode::BAD_REQUEST))
                        }
                    }
                };
                match (flag("list")?, flag("scan")?) {
                    (true, true) => {
                        return Err(ApiError::new(400, "list and scan exclude each other"));
                    }
                    (false, true) => return Err(unsupported(method)),
                    (true, false) => Verb::List,
                    (false, false) => Verb::Read,
                }
            }
            "LIST" => Verb::List,
            "PUT" | "POST" => Verb::Write,
            "DELETE" => Verb::Delete,
            "PATCH" => {
                merge_patch(headers)?;
                Verb::Patch
            }
            "OPTIONS" => return Ok(None),
            _ => return Err(unsupported(method)),
        }))
    }

    /// Whether the request carries data in its body, and so writes.
    pub(crate) fn writes(self) -> bool {
        matches!(self, Verb::Write | Verb::Patch)
    }

    /// The capability that decides, before anything else is known; a write may turn out to
    /// need `create` instead once the engine said whether the path exists.
    pub(crate) fn capability(self) -> Capability {
        match self {
            Verb::Read => Capability::Read,
            Verb::List => Capability::List,
            Verb::Write => Capability::Update,
            Verb::Delete => Capability::Delete,
            Verb::Patch => Capability::Patch,
        }
    }
}

/// OpenBao takes a PATCH only as a JSON merge patch, and says why not before anything else.
fn merge_patch(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media_type = media_type(&content_type).map_err(|e| ApiError::new(400, e))?;
    if media_type != "application/merge-patch+json" {
        return Err(ApiError::new(
            415,
            format!(
                "PATCH requires Content-Type of application/merge-patch+json, provided {media_type}"
            ),
        ));
    }
    Ok(())
}

/// Go's `mime.ParseMediaType`: the media type, lowercased, or Go's error message.
fn media_type(value: &str) -> Result<String, &'static str> {
    let is_token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c);
    let token = |s: &str| s.find(|c| !is_token(c)).unwrap_or(s.len());
    let mut parts = value.split(';');
    let media_type = parts.next().unwrap_or_default().trim().to_lowercase();
    let (kind, rest) = media_type.split_at(token(&media_type));
    if kind.is_empty() {
        return Err("mime: no media type");
    }
    if !rest.is_empty() {
        let rest = rest
            .strip_prefix('/')
            .ok_or("mime: expected slash after first token")?;
        let (subtype, rest) = rest.split_at(token(rest));
        if subtype.is_empty() {
            return Err("mime: expected token after slash");
        }
        if !rest.is_empty() {
            return Err("mime: unexpected content after media subtype");
        }
    }
    let params: Vec<&str> = parts.collect();
    let mut names = std::collections::HashSet::new();
    for (i, param) in params.iter().enumerate() {
        // One trailing `;` is allowed.
        if param.trim().is_empty() && i + 1 == params.len() {
            break;
        }
        let (name, value) = param.split_once('=').unwrap_or_default();
        let (name, value) = (name.trim(), value.trim());
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        let valid = |s: &str| !s.is_empty() && token(s) == s.len();
        if !valid(name) || !(quoted || valid(value)) {
            return Err("mime: invalid media parameter");
        }
        if !names.insert(name.to_ascii_lowercase()) {
            return Err("mime: duplicate parameter name");
        }
    }
    Ok(media_type)
}

pub(crate) fn query_pairs(uri: &Uri) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Query parameters as Vault's `parseQuery`: one value is a string, several a list; `help`,
/// `list` and `scan` are not data.
pub(crate) fn query_data(uri: &Uri) -> Value {
    let mut data: Map<String, Value> = Map::new();
    for (key, value) in query_pairs(uri) {
        if matches!(key.as_str(), "help" | "list" | "scan") {
            continue;
        }
        match data.get_mut(&key) {
            Some(Value::Array(values)) => values.push(Value::from(value)),
            Some(first) => *first = json!([first.take(), value]),
            None => {
                data.insert(key, Value::from(value));
            }
        }
    }
    Value::Object(data)
}

/// A write's data: the JSON body, or a form as Vault accepts one (`application/x-www-form-urlencoded`
/// and not starting like JSON; a repeated field joined with commas).
pub(crate) fn body_data(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let is_form = content_type.as_deref() == Some("application/x-www-form-urlencoded")
        && !matches!(first, Some(b'{' | b'['));
    if is_form {
        let mut data: Map<String, Value> = Map::new();
        for (key, value) in form_urlencoded::parse(body) {
            match data.get_mut(key.as_ref()) {
                Some(Value::String(joined)) => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                _ => {
                    data.insert(key.into_owned(), Value::from(value.into_owned()));
                }
            }
        }
        return Ok(Value::Object(data));
    }
    if first.is_none() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        // Go's `json.Unmarshal` into OpenBao's `map[string]interface{}`, in its words.
        Ok(other) => Err(ApiError::new(
            400,
            format!(
                "failed to decode JSON input: json: cannot unmarshal {} into Go value of type \
                 map[string]interface {{}}",
                match other {
                    Value::Array(_) => "array",
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    _ => "bool",
                }
            ),
        )),
        Err(e) => Err(ApiError::new(
            400,
            format!("failed to decode JSON input: {e}"),
        )),
    }
}

/// Headers with which Vault would answer something else than this server can: refused
/// before any work is done, rather than silently ignored.
pub(crate) fn refuse_unsupported_headers(
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").trim())
    };
    // Response wrapping would hand the secret to a wrapping token instead of the client;
    // answering in clear would defeat why the client asked.
    if let Some(ttl) = header("x-vault-wrap-ttl").filter(|ttl| !ttl.is_empty()) {
        let seconds = parse_duration(&Value::from(ttl)).map_err(|e| {
            ApiError::new(400, format!("error parsing X-Vault-Wrap-TTL header: {e}"))
        })?;
        if seconds > 0 {
            return Err(ApiError::new(
                400,
                "response wrapping (X-Vault-Wrap-TTL) is not supported by this server; \
                 the request was not run",
            ));
        }
    }
    // This server is one namespace, the root one.
    let namespace = header("x-vault-namespace").map(|ns| ns.trim_matches('/'));
    if namespace.is_some_and(|ns| !matches!(ns, "" | "root")) {
        return Err(ApiError::new(404, "namespace not found"));
    }
    // Inline authentication needs an auth method; this server has only its tokens file.
    if header("x-vault-inline-auth-path").is_some() {
        return Err(match token {
            Some(_) => ApiError::new(
                400,
                "cannot layer inline authentication with token authentication",
            ),
            None => ApiError::unauthenticated(),
        });
    }
    Ok(())
}

/// `sys/leases/{lookup,renew,revoke}` and the id in their path, if any (lookup takes it only
/// in the body).
pub(crate) fn lease_endpoint(path: &str) -> Option<(&'static str, Option<&str>)> {
    for endpoint in ["lookup", "renew", "revoke"] {
        let Some(rest) = path
            .strip_prefix("sys/leases/")
            .and_then(|p| p.strip_prefix(endpoint))
        else {
            continue;
        };
        if rest.is_empty() {
            return Some((endpoint, None));
        }
        if let Some(id) = rest.strip_prefix('/').filter(|_| endpoint != "lookup") {
            return Some((endpoint, Some(id).filter(|id| !id.is_empty())));
        }
    }
    None
}

/// The lease a lease call is about. Vault prefers the body's `lease_id` over the path's;
/// here a body naming another lease than the path is refused, so that a policy on the path
/// is never sidestepped through the body.
pub(crate) fn lease_id(data: &Value, url_id: Option<&str>) -> Result<String, ApiError> {
    let body_id = match data.get("lease_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.as_str()).filter(|id| !id.is_empty()),
        Some(_) => return Err(ApiError::new(400, "invalid lease ID")),
    };
    match (body_id, url_id) {
        (Some(body), Some(url)) if body != url => Err(ApiError::new(
            400,
            "the lease_id in the body and the one in the path differ",
        )),
        (Some(id), _) | (None, Some(id)) => Ok(id.to_string()),
        (None, None) => Err(ApiError::new(400, "lease_id must be specified")),
    }
}

/// A string field as Vault's `TypeString` reads it (mapstructure's `WeakDecode`): a string
/// as it is, a number as its JSON text, a boolean as `1` or `0`, and an absent field as Go's
/// zero value, ""; a list or an object is refused in OpenBao's words.
pub fn string_field(data: &Value, name: &str) -> Result<String, ApiError> {
    let unconvertible = |go_type: &str| {
        field_invalid(
            name,
            format!("'' expected type 'string', got unconvertible type '{go_type}'"),
        )
    };
    match data.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(if *b { "1" } else { "0" }.into()),
        Some(Value::Array(_)) => Err(unconvertible("[]interface {}")),
        Some(Value::Object(_)) => Err(unconvertible("map[string]interface {}")),
    }
}

/// A boolean field as Vault's `TypeBool` reads it: JSON `true`/`false` or a string that
/// [`parse_bool`] accepts; refused in OpenBao's words (mapstructure's and Go's `strconv`).
pub(crate) fn flag(data: &Value, name: &str, default: bool) -> Result<bool, ApiError> {
    let unparsable = "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax";
    match data.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        // mapstructure reads an empty string as false.
        Some(Value::String(s)) if s.is_empty() => Ok(false),
        Some(Value::String(s)) => parse_bool(s).ok_or_else(|| field_invalid(name, unparsable)),
        Some(Value::Number(_)) => Err(field_invalid(name, unparsable)),
        Some(Value::Array(_)) => Err(field_invalid(
            name,
            "'' expected type 'bool', got unconvertible type '[]interface {}'",
        )),
        Some(Value::Object(_)) => Err(field_invalid(
            name,
            "'' expected type 'bool', got unconvertible type 'map[string]interface {}'",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_bool;

    #[test]
    fn a_body_lease_id_never_sidesteps_the_path_one() {
        let status = |data: Value, url: Option<&str>| lease_id(&data, url).map_err(|e| e.0);
        assert_eq!(
            status(
                json!({"lease_id": "dockerhub/token/hoeg/hoeg/x"}),
                Some("dockerhub/token/hoeg/my-organization/y")
            ),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(json!({"lease_id": "a/b"}), Some("a/b")),
            Ok("a/b".into())
        );
        assert_eq!(status(json!({"lease_id": "a/b"}), None), Ok("a/b".into()));
        assert_eq!(status(json!({}), Some("a/b")), Ok("a/b".into()));
        assert_eq!(status(json!({}), None), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            status(json!({"lease_id": 7}), None),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    fn target(uri: &str) -> Result<Target, u16> {
        resolve(&uri.parse().unwrap()).map_err(|e| e.0.as_u16())
    }

    #[test]
    fn paths_resolve_as_openbao_resolves_them() {
        let path = |p: &str| Ok(Target::Path(p.to_string()));
        let redirect = |p: &str| Ok(Target::Redirect(p.to_string()));
        assert_eq!(
            target("/v1/dockerhub/token/a/b"),
            path("dockerhub/token/a/b")
        );
        assert_eq!(
            target("/v1/dockerhub/token/a/b/"),
            path("dockerhub/token/a/b/")
        );
        assert_eq!(
            target("/v1/dockerhub%2Ftoken/a/%62"),
            path("dockerhub/token/a/b")
        );
        assert_eq!(target("/v1/dockerhub%2F%2Ftoken"), path("dockerhub//token"));
        assert_eq!(
            target("/v1/dockerhub//token/a/b"),
            redirect("/v1/dockerhub/token/a/b")
        );
        assert_eq!(
            target("/v1//dockerhub/x?list=true"),
            redirect("/v1/dockerhub/x?list=true")
        );
        assert_eq!(target("/v1/a/./b/"), redirect("/v1/a/b/"));
        assert_eq!(target("/v1/a/x/../b"), redirect("/v1/a/b"));
        assert_eq!(target("/v1/a/b/.."), redirect("/v1/a"));
        assert_eq!(target("/v1/../../a"), redirect("/a"));
        assert_eq!(target("/v1/a/%2e/b"), Err(400));
        assert_eq!(target("/v1/a/%2E%2e"), Err(400));
        assert_eq!(target("/v1/a/b%zz"), Err(400));
        assert_eq!(target("/v1/a/b%2"), Err(400));
        assert_eq!(target("/v1/a/b%00"), Err(400));
        assert_eq!(target("/v1/a/b%C2%A0"), Err(400));
        assert_eq!(target("/v1/a/b%FF"), Err(400));
        assert_eq!(target("/v1/a/b%20c"), path("a/b c"));
        assert_eq!(target("//v1/a"), Err(404));
        assert_eq!(target("/"), redirect("/ui/"));
        assert_eq!(target("/?x=1"), redirect("/ui/"));
        assert_eq!(target("//"), Err(404));
        assert_eq!(target("/ui"), Err(404));
        assert_eq!(target("/v1"), Err(404));
        assert_eq!(target("/V1/a"), Err(404));
    }

    #[test]
    fn booleans_are_gos() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRue", " true", "2"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
        let list = |q: &str| {
            let uri = format!("/v1/x?{q}").parse().unwrap();
            Verb::of(&Method::GET, &uri, &HeaderMap::new()).map(Option::unwrap)
        };
        assert_eq!(list("list=True").unwrap(), Verb::List);
        assert_eq!(list("list=0").unwrap(), Verb::Read);
        assert_eq!(list("list=").unwrap(), Verb::Read);
        assert_eq!(list("list=true&list=false").unwrap(), Verb::List);
        assert_eq!(list("list=yes").unwrap_err().0, 400);
        assert_eq!(list("list=1&scan=1").unwrap_err().0, 400);
        assert_eq!(list("scan=1").unwrap_err().0, 405);
        assert!(!flag(&json!({"sync": "f"}), "sync", true).unwrap());
        assert!(flag(&json!({}), "sync", true).unwrap());
        assert_eq!(
            flag(&json!({"sync": "maybe"}), "sync", true).unwrap_err().0,
            400
        );
    }

    #[test]
    fn a_patch_is_a_merge_patch_and_options_no_verb() {
        let verb = |method: &str, content_type: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = content_type {
                headers.insert("content-type", value.parse().unwrap());
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            Verb::of(&method, &"/v1/x".parse().unwrap(), &headers)
                .map_err(|e| (e.0.as_u16(), e.1.concat()))
        };
        assert_eq!(verb("OPTIONS", None), Ok(None));
        let merge_patch = "application/merge-patch+json";
        assert_eq!(verb("PATCH", Some(merge_patch)), Ok(Some(Verb::Patch)));
        let upper = "Application/Merge-Patch+JSON; charset=utf-8;";
        assert_eq!(verb("PATCH", Some(upper)), Ok(Some(Verb::Patch)));
        for (content_type, message) in [
            (None, "mime: no media type"),
            (Some(" "), "mime: no media type"),
            (Some("a b"), "mime: expected slash after first token"),
            (Some("a/"), "mime: expected token after slash"),
            (
                Some("a/b c"),
                "mime: unexpected content after media subtype",
            ),
            (Some("a/b; x"), "mime: invalid media parameter"),
            (Some("a/b;; x=1"), "mime: invalid media parameter"),
            (Some("a/b; x=1; X=2"), "mime: duplicate parameter name"),
        ] {
            let refused = Err((400, message.to_string()));
            assert_eq!(verb("PATCH", content_type), refused, "{content_type:?}");
        }
        let text = "PATCH requires Content-Type of application/merge-patch+json, provided text";
        let refused = Err((415, text.to_string()));
        assert_eq!(verb("PATCH", Some("text; q=\"a b\"")), refused);
    }

    #[test]
    fn tokens_are_read_as_vault_reads_them() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, value.parse().unwrap());
            }
            map
        };
        let token = |pairs| client_token(&headers(pairs)).map(str::to_string);
        assert_eq!(token(&[("x-vault-token", "a")]), Some("a".into()));
        let both = [("x-vault-token", ""), ("authorization", "Bearer  b ")];
        assert_eq!(token(&both), Some("b".into()));
        let second = [("authorization", "Basic x"), ("authorization", "Bearer c")];
        assert_eq!(token(&second), Some("c".into()));
        assert_eq!(token(&[("authorization", "bearer d")]), None);
    }

    #[test]
    fn string_fields_are_converted_as_openbaos_framework_converts_them() {
        let data = json!({"s": "x", "n": 5, "f": 1.5, "t": true, "f0": false, "l": ["x"], "o": {}});
        let field = |name: &str| string_field(&data, name).map_err(|e| e.1[0].clone());
        assert_eq!(field("s"), Ok("x".into()));
        assert_eq!(field("n"), Ok("5".into()));
        assert_eq!(field("f"), Ok("1.5".into()));
        assert_eq!((field("t"), field("f0")), (Ok("1".into()), Ok("0".into())));
        assert_eq!(field("absent"), Ok(String::new()));
        assert_eq!(
            field("l"),
            Err(
                "Field validation failed: error converting input for field \"l\": '' expected \
                 type 'string', got unconvertible type '[]interface {}'"
                    .into()
            )
        );
        assert!(
            field("o")
                .unwrap_err()
                .ends_with("'map[string]interface {}'")
        );
    }

    #[test]
    fn lease_ids_from_the_path_or_the_body_never_two() {
        assert_eq!(
            lease_endpoint("sys/leases/revoke/a/b"),
            Some(("revoke", Some("a/b")))
        );
        assert_eq!(lease_endpoint("sys/leases/renew"), Some(("renew", None)));
        assert_eq!(lease_endpoint("sys/leases/lookup/a"), None);
        assert_eq!(lease_endpoint("sys/leases/revoke-prefix/a"), None);
        assert_eq!(lease_id(&json!({"lease_id": "a"}), None).unwrap(), "a");
        assert_eq!(lease_id(&json!({}), Some("b")).unwrap(), "b");
        assert_eq!(lease_id(&json!({"lease_id": "b"}), Some("b")).unwrap(), "b");
        assert_eq!(
            lease_id(&json!({"lease_id": "a"}), Some("b"))
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(lease_id(&json!({"lease_id": 1}), None).unwrap_err().0, 400);
        assert_eq!(lease_id(&json!({"lease_id": ""}), None).unwrap_err().0, 400);
    }

    #[test]
    fn forms_and_json_bodies() {
        let mut form = HeaderMap::new();
        form.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let data = body_data(&form, b"namespace=a&namespace=b&ttl=1h").unwrap();
        assert_eq!(data, json!({"namespace": "a,b", "ttl": "1h"}));
        // A form content type on a JSON body is JSON, as in Vault.
        assert_eq!(body_data(&form, b" {\"a\": 1}").unwrap(), json!({"a": 1}));
        let none = HeaderMap::new();
        assert_eq!(body_data(&none, b"  ").unwrap(), json!({}));
        assert_eq!(body_data(&none, b"null").unwrap(), json!({}));
        assert_eq!(body_data(&none, b"[1]").unwrap_err().0, 400);
        assert_eq!(body_data(&none, b"{x").unwrap_err().0, 400);
        let query: Uri = "/v1/x?a=1&a=2&b=3&list=true&help=1".parse().unwrap();
        assert_eq!(query_data(&query), json!({"a": ["1", "2"], "b": "3"}));
    }

    #[test]
    fn headers_that_would_change_the_answer_are_refused() {
        let refused = |name: &'static str, value: &'static str, token: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.parse().unwrap());
            refuse_unsupported_headers(&headers, token)
                .err()
                .map(|e| e.0.as_u16())
        };
        assert_eq!(refused("x-vault-wrap-ttl", "60", None), Some(400));
        assert_eq!(refused("x-vault-wrap-ttl", "soon", None), Some(400));
        assert_eq!(refused("x-vault-wrap-ttl", "0", None), None);
        assert_eq!(refused("x-vault-wrap-ttl", "", None), None);
        assert_eq!(refused("x-vault-namespace", "team", None), Some(404));
        for root in ["root", "/", "", "root/"] {
            assert_eq!(refused("x-vault-namespace", root, None), None, "{root}");
        }
        assert_eq!(
            refused("x-vault-inline-auth-path", "auth/x", None),
            Some(403)
        );
        assert_eq!(
            refused("x-vault-inline-auth-path", "auth/x", Some("t")),
            Some(400)
        );
        assert_eq!(refused("x-vault-request", "true", None), None);
    }
}
