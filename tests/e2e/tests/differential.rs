//! The same requests to OpenBao with the plugin, to `serve` and (the main table) to the gateway
//! component in `wasmtime serve` and in `jco serve` (but for `LIST` and unknown methods, which
//! Node.js refuses), and the same answers back:
//! every spelling of a path a policy denies, the request shapes Vault clients send (list
//! flags, headers), and the lease endpoints with the id in the path or in the body, under
//! one policy text loaded by both hosts. Raw HTTP, the `bao` CLI and hvac. Answers are
//! compared by status and shape (keys, nested ones too, JSON types, the form of a timestamp),
//! and where a row says so by their error texts, which the CLI prints to its user.

use dockerhub_secrets_e2e::differential::{Answer, Host, Who, issue_lease, shape_of};
use dockerhub_secrets_e2e::gateway::Kind;
use dockerhub_secrets_e2e::openbao::eventually;
use serde_json::Value;
use std::time::Duration;

const LIMITED: Who = Who::Policy("limited");
const BODY_REVOKE: Who = Who::Policy("body-revoke");
const LEASE_LISTER: Who = Who::Policy("lease-lister");

/// One request and the status both hosts must give. `{lease}` ... `{lease4}` in
/// the target or body stand for leases the `limited` token was issued before the table runs.
struct Row {
    method: &'static str,
    target: &'static str,
    who: Who,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    status: u16,
    /// Hub tokens the request creates (on success, one for a token path).
    mints: usize,
    /// The `errors` both hosts give must be the same texts: the CLI prints them.
    texts: bool,
    /// Keys of OpenBao's answer that `serve` leaves out on purpose (see `api.rs`).
    left_out: &'static [&'static str],
}

const fn row(method: &'static str, target: &'static str, who: Who, status: u16) -> Row {
    Row {
        method,
        target,
        who,
        headers: &[],
        body: "",
        status,
        mints: 0,
        texts: false,
        left_out: &[],
    }
}

const fn with_body(mut row: Row, body: &'static str) -> Row {
    row.body = body;
    row
}

const fn with_headers(mut row: Row, headers: &'static [(&'static str, &'static str)]) -> Row {
    row.headers = headers;
    row
}

const fn minting(mut row: Row) -> Row {
    row.mints = 1;
    row
}

const fn same_texts(mut row: Row) -> Row {
    row.texts = true;
    row
}

const fn leaving_out(mut row: Row, keys: &'static [&'static str]) -> Row {
    row.left_out = keys;
    row
}

/// OpenBao names its cluster; `serve` is one server and no cluster, and leaves both out, as
/// OpenBao does when it has no cluster.
const NO_CLUSTER: &[&str] = &["cluster_name", "cluster_id"];

/// What OpenBao's token store knows of a token and `serve`'s tokens file does not: when it
/// was made, and an accessor (`serve` has no accessor endpoints to use one with).
const TOKEN_UNKNOWNS: &[&str] = &["accessor", "creation_time", "issue_time"];

const DENIED_TOKEN: &str = "/v1/dockerhub/token/hoeg/hoeg";
const MERGE_PATCH: &[(&str, &str)] = &[("Content-Type", "application/merge-patch+json")];
const HOEG_LEASES: &str = "/v1/sys/leases/lookup/dockerhub/token/hoeg/";

/// Every row, in order (the lease rows depend on it).
const ROWS: &[Row] = &[
    // The issue's attack: the policy denies `dockerhub/token/hoeg/hoeg` and
    // `dockerhub/config/*` and allows the rest of `dockerhub/*`.
    // The refusal in OpenBao's words (go-multierror's), which the CLI prints.
    same_texts(row("PUT", DENIED_TOKEN, LIMITED, 403)),
    row("GET", DENIED_TOKEN, LIMITED, 403),
    row("PUT", "/v1/dockerhub//token/hoeg/hoeg", LIMITED, 307),
    row("GET", "/v1/dockerhub//token/hoeg/hoeg", LIMITED, 307),
    row("PUT", "/v1//dockerhub/token/hoeg/hoeg", LIMITED, 307),
    row("PUT", "/v1/dockerhub/token//hoeg/hoeg", LIMITED, 307),
    row("PUT", "/v1/dockerhub/./token/hoeg/hoeg", LIMITED, 307),
    row("PUT", "/v1/dockerhub/x/../token/hoeg/hoeg", LIMITED, 307),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg/.", LIMITED, 307),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg/x/..", LIMITED, 307),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg/", LIMITED, 400),
    row("GET", "/v1/dockerhub/token/hoeg/hoeg/", LIMITED, 404),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg/", Who::Unknown, 400),
    row("PUT", "/v1/dockerhub%2Ftoken/hoeg/hoeg", LIMITED, 403),
    row("PUT", "/v1/dockerhub/token%2Fhoeg%2Fhoeg", LIMITED, 403),
    row("PUT", "/v1/dockerhub%2F%2Ftoken/hoeg/hoeg", LIMITED, 404),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg%2F", LIMITED, 400),
    row("PUT", "/v1/dockerhub/%2e/token/hoeg/hoeg", LIMITED, 400),
    row(
        "PUT",
        "/v1/dockerhub/x/%2e%2e/token/hoeg/hoeg",
        LIMITED,
        400,
    ),
    row("PUT", "/v1/dockerhub/token/hoeg/%68oeg", LIMITED, 403),
    row("PUT", "/v1/dockerhub/token/hoeg/HOEG", LIMITED, 400),
    row("PUT", "/v1/Dockerhub/token/hoeg/hoeg", LIMITED, 403),
    row("PUT", "/v1/dockerhub\\token/hoeg/hoeg", LIMITED, 403),
    row("PUT", "/v1/dockerhub/token/hoeg/+", LIMITED, 400),
    row("PUT", "/v1/dockerhub/token/hoeg/*", LIMITED, 400),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg?x=1", LIMITED, 403),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg%00", LIMITED, 400),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg%09", LIMITED, 400),
    row("PUT", "/v1/dockerhub/token/hoeg/hoeg%C2%A0", LIMITED, 400),
    row("PUT", "/v1/dockerhub/token/hoeg/ho%zzeg", LIMITED, 400),
    row("PUT", "//v1/dockerhub/token/hoeg/hoeg", LIMITED, 404),
    row("PUT", "http://x/v1/dockerhub/token/hoeg/hoeg", LIMITED, 403),
    // ... and the same for the account's config.
    with_body(
        row("PUT", "/v1/dockerhub/config/hoeg", LIMITED, 403),
        r#"{"namespace": "hoeg"}"#,
    ),
    row("DELETE", "/v1/dockerhub/config/hoeg", LIMITED, 403),
    with_body(
        row("PUT", "/v1/dockerhub//config/hoeg", LIMITED, 307),
        r#"{"namespace": "hoeg"}"#,
    ),
    row("DELETE", "/v1/dockerhub//config/hoeg", LIMITED, 307),
    row("DELETE", "/v1/dockerhub%2Fconfig/hoeg", LIMITED, 403),
    row("GET", "/v1/dockerhub/config/hoeg/", LIMITED, 403),
    row("LIST", "/v1/dockerhub/config", LIMITED, 403),
    row("GET", "/v1/dockerhub/config?list=true", LIMITED, 403),
    // What the policy allows still works, and a path that is no route.
    minting(row(
        "PUT",
        "/v1/dockerhub/token/hoeg/my-organization",
        LIMITED,
        200,
    )),
    row("GET", "/v1/dockerhub", LIMITED, 403),
    row("GET", "/v1/dockerhub", Who::Root, 404),
    row("GET", "/v1/dockerhub/", LIMITED, 404),
    row("GET", "/v1/nothing/here", LIMITED, 403),
    row("GET", "/v1/nothing/here", Who::Root, 404),
    same_texts(row("GET", "/v1/dockerhub/config/hoeg", Who::Nobody, 403)),
    same_texts(row("GET", "/v1/dockerhub/config/hoeg", Who::Unknown, 403)),
    // The engine's own refusal of a namespace outside the account's list: a coded error,
    // which OpenBao wraps as go-multierror does.
    same_texts(row(
        "PUT",
        "/v1/dockerhub/token/hoeg/not-a-namespace",
        Who::Root,
        403,
    )),
    // List flags are Go booleans, and `list` and `scan` exclude each other.
    row("GET", "/v1/dockerhub/config?list=True", Who::Root, 200),
    row("GET", "/v1/dockerhub/config?list=t", Who::Root, 200),
    row("GET", "/v1/dockerhub/config?list=1", Who::Root, 200),
    row("GET", "/v1/dockerhub/config?list=TRUE", Who::Root, 200),
    row("GET", "/v1/dockerhub/config/?list=true", Who::Root, 200),
    row("LIST", "/v1/dockerhub/config/", Who::Root, 200),
    // A bad account name in a config write: OpenBao runs the existence check first, and bad
    // input there is the caller's (400 naming it), not a failed check (500).
    with_body(
        row("PUT", "/v1/dockerhub/config/X", Who::Root, 400),
        r#"{"namespace":"hoeg","password":"p","verify":false}"#,
    ),
    with_body(
        row("POST", "/v1/dockerhub/config/-ab", Who::Root, 400),
        r#"{"namespace":"hoeg","password":"p","verify":false}"#,
    ),
    with_body(
        row("PUT", "/v1/dockerhub/config/a%20b", Who::Root, 400),
        r#"{"namespace":"hoeg","password":"p","verify":false}"#,
    ),
    // The probes: GET (HEAD for health) only, before any parsing, token or not.
    with_body(
        row("PUT", "/v1/sys/health", Who::Root, 405),
        r#"{"standbyok":true}"#,
    ),
    row("HEAD", "/v1/sys/health", Who::Unknown, 200),
    row("POST", "/v1/sys/seal-status", Who::Unknown, 405),
    row("DELETE", "/v1/sys/leader", Who::Root, 405),
    row("HEAD", "/v1/sys/leader", Who::Root, 405),
    same_texts(row("GET", "/v1/dockerhub/config?list=yes", Who::Root, 400)),
    // A body that is JSON but no object, in Go's words.
    same_texts(with_body(
        row("PUT", "/v1/dockerhub/config/hoeg", Who::Root, 400),
        "[1, 2]",
    )),
    same_texts(with_body(
        row("PUT", "/v1/dockerhub/config/hoeg", Who::Root, 400),
        "5",
    )),
    same_texts(with_body(
        row("PUT", "/v1/dockerhub/config/hoeg", Who::Root, 400),
        r#""text""#,
    )),
    row("GET", "/v1/dockerhub/config?list=tRue", Who::Root, 400),
    row(
        "GET",
        "/v1/dockerhub/config?list=true&scan=true",
        Who::Root,
        400,
    ),
    row(
        "GET",
        "/v1/dockerhub/config/hoeg?list=false",
        Who::Root,
        200,
    ),
    row("GET", "/v1/dockerhub/config/hoeg?list=", Who::Root, 200),
    row("FOO", "/v1/dockerhub/config/hoeg", Who::Root, 405),
    // `/` is OpenBao's web UI, whatever the method; any other path outside `/v1/` is not found.
    row("GET", "/", Who::Nobody, 307),
    row("HEAD", "/", Who::Nobody, 307),
    row("POST", "/?x=1", Who::Root, 307),
    row("GET", "/nothing", Who::Root, 404),
    // OPTIONS is no operation: refused once the headers were read, token or not.
    row("OPTIONS", "/v1/dockerhub/config/hoeg", Who::Root, 400),
    row(
        "OPTIONS",
        "/v1/sys/leases/lookup/dockerhub/",
        Who::Nobody,
        400,
    ),
    with_headers(
        row("OPTIONS", "/v1/dockerhub/config/hoeg", Who::Root, 404),
        &[("X-Vault-Namespace", "elsewhere")],
    ),
    row("OPTIONS", "/v1/sys/health", Who::Root, 405),
    // The probes: OpenBao's fields, with its types.
    leaving_out(row("GET", "/v1/sys/health", Who::Nobody, 200), NO_CLUSTER),
    leaving_out(
        row("GET", "/v1/sys/seal-status", Who::Nobody, 200),
        &["cluster_name", "cluster_id", "commit_date"],
    ),
    row("GET", "/v1/sys/leader", Who::Nobody, 200),
    row("GET", "/v1/sys/init", Who::Nobody, 200),
    // `sys/init`'s write initializes once (`bao operator init`); both servers already are.
    // OpenBao checks the key shares asked for first (none here: "shares must be at least
    // one"); `serve` has no key shares to check.
    row("PUT", "/v1/sys/init", Who::Nobody, 400),
    same_texts(with_body(
        row("POST", "/v1/sys/init", Who::Root, 400),
        r#"{"secret_shares": 1, "secret_threshold": 1}"#,
    )),
    same_texts(row("DELETE", "/v1/sys/init", Who::Root, 405)),
    same_texts(row("LIST", "/v1/sys/init", Who::Root, 405)),
    row("HEAD", "/v1/sys/init", Who::Root, 405),
    // sys/health's status codes come from the query, as load balancers ask for them.
    leaving_out(
        row("GET", "/v1/sys/health?activecode=297", Who::Nobody, 297),
        NO_CLUSTER,
    ),
    leaving_out(
        row(
            "GET",
            "/v1/sys/health?standbycode=200&sealedcode=200",
            Who::Nobody,
            200,
        ),
        NO_CLUSTER,
    ),
    row("HEAD", "/v1/sys/health?activecode=203", Who::Nobody, 203),
    same_texts(row(
        "GET",
        "/v1/sys/health?activecode=notacode",
        Who::Nobody,
        400,
    )),
    row(
        "HEAD",
        "/v1/sys/health?activecode=notacode",
        Who::Nobody,
        400,
    ),
    row("HEAD", "/v1/sys/health?standbyok=maybe", Who::Nobody, 400),
    leaving_out(
        row("GET", "/v1/sys/health?sealedcode=-1", Who::Nobody, 200),
        NO_CLUSTER,
    ),
    same_texts(row("GET", "/v1/sys/health?sealedcode=x", Who::Nobody, 400)),
    same_texts(row(
        "GET",
        "/v1/sys/health?standbyok=maybe",
        Who::Nobody,
        400,
    )),
    // The token's own lookup: a read, or an update as OpenBao also takes it.
    leaving_out(
        row("GET", "/v1/auth/token/lookup-self", Who::Root, 200),
        TOKEN_UNKNOWNS,
    ),
    leaving_out(
        row("PUT", "/v1/auth/token/lookup-self", Who::Root, 200),
        TOKEN_UNKNOWNS,
    ),
    // LIST adds a slash, which the lease endpoints' routes do not take without an id after it.
    same_texts(row("LIST", "/v1/sys/leases/renew", Who::Root, 404)),
    same_texts(row("LIST", "/v1/sys/leases/revoke", Who::Root, 404)),
    same_texts(row("LIST", "/v1/sys/leases/revoke-prefix", Who::Root, 404)),
    same_texts(row("LIST", "/v1/sys/leases/revoke-force", Who::Root, 404)),
    row("LIST", "/v1/sys/leases/lookup", Who::Root, 200),
    // Tidy: an update, answered 202 with OpenBao's warning as its tidy starts.
    row("PUT", "/v1/sys/leases/tidy", Who::Root, 202),
    same_texts(row("PUT", "/v1/sys/leases/tidy", LIMITED, 403)),
    same_texts(row("GET", "/v1/sys/leases/tidy", Who::Root, 405)),
    same_texts(row("LIST", "/v1/sys/leases/renew/{lease}", Who::Root, 405)),
    same_texts(row("LIST", "/v1/sys/leases/revoke/{lease}", Who::Root, 405)),
    same_texts(row("PUT", "/v1/sys/health", Who::Root, 405)),
    // PATCH takes only a JSON merge patch, which is checked before the token; then the
    // policy must grant `patch`, and neither the engine nor a lease endpoint patches.
    with_body(
        row("PATCH", "/v1/dockerhub/config/hoeg", Who::Root, 400),
        "{}",
    ),
    row("PATCH", "/v1/dockerhub/config/hoeg", Who::Nobody, 400),
    with_headers(
        row("PATCH", "/v1/dockerhub/config/hoeg", Who::Root, 415),
        &[("Content-Type", "application/json")],
    ),
    with_headers(
        row("PATCH", "/v1/dockerhub/config/hoeg", Who::Root, 400),
        &[("Content-Type", "application/merge-patch+json; x")],
    ),
    with_headers(
        with_body(
            row("PATCH", "/v1/dockerhub/config/hoeg", Who::Root, 405),
            r#"{"ttl": "1h"}"#,
        ),
        MERGE_PATCH,
    ),
    with_headers(
        with_body(
            row("PATCH", "/v1/dockerhub/config/hoeg", Who::Root, 400),
            "{x",
        ),
        MERGE_PATCH,
    ),
    with_headers(
        row("PATCH", "/v1/dockerhub/config/", Who::Root, 400),
        MERGE_PATCH,
    ),
    with_headers(
        row(
            "PATCH",
            "/v1/dockerhub/token/hoeg/my-organization",
            LIMITED,
            403,
        ),
        MERGE_PATCH,
    ),
    with_headers(row("PATCH", DENIED_TOKEN, LIMITED, 403), MERGE_PATCH),
    with_headers(
        row("PATCH", "/v1/nothing/here", Who::Root, 404),
        MERGE_PATCH,
    ),
    with_headers(
        same_texts(row("PATCH", "/v1/sys/leases/lookup", Who::Root, 405)),
        MERGE_PATCH,
    ),
    // Headers that would change the meaning of a request.
    with_headers(
        row("GET", "/v1/dockerhub/config/hoeg", Who::Root, 404),
        &[("X-Vault-Namespace", "elsewhere")],
    ),
    with_headers(
        row("GET", "/v1/dockerhub/config/hoeg", Who::Root, 200),
        &[("X-Vault-Namespace", "root")],
    ),
    with_headers(
        row(
            "PUT",
            "/v1/dockerhub/token/hoeg/my-organization",
            Who::Root,
            400,
        ),
        &[("X-Vault-Wrap-TTL", "soon")],
    ),
    with_headers(
        minting(row(
            "PUT",
            "/v1/dockerhub/token/hoeg/my-organization",
            Who::Root,
            200,
        )),
        &[("X-Vault-Wrap-TTL", "0")],
    ),
    same_texts(with_headers(
        row("GET", "/v1/dockerhub/config/hoeg", Who::Nobody, 403),
        &[("X-Vault-Inline-Auth-Path", "auth/userpass/login/hoeg")],
    )),
    with_headers(
        row("GET", "/v1/dockerhub/config/hoeg", Who::Nobody, 200),
        &[("Authorization", "Bearer ROOT")],
    ),
    with_headers(
        row("GET", "/v1/dockerhub/config/hoeg", Who::Nobody, 403),
        &[("Authorization", "bearer ROOT")],
    ),
    with_headers(
        row("GET", "/v1/dockerhub/config/hoeg", Who::Nobody, 200),
        &[("X-Vault-Token", ""), ("Authorization", "Bearer ROOT")],
    ),
    // Listing lease ids: list and sudo on `sys/leases/lookup/<prefix>`, whole segments.
    row("LIST", HOEG_LEASES, Who::Root, 200),
    row(
        "LIST",
        "/v1/sys/leases/lookup/dockerhub/token/hoeg/my-organization",
        Who::Root,
        200,
    ),
    row(
        "GET",
        "/v1/sys/leases/lookup/dockerhub/token/?list=true",
        Who::Root,
        200,
    ),
    row("LIST", "/v1/sys/leases/lookup", Who::Root, 200),
    row("LIST", "/v1/sys/leases/lookup/", Who::Root, 200),
    row(
        "LIST",
        "/v1/sys/leases/lookup/dockerhub/tok",
        Who::Root,
        404,
    ),
    row(
        "LIST",
        "/v1/sys/leases/lookup/dockerhub/token/nobody/",
        Who::Root,
        404,
    ),
    row("LIST", "/v1/sys/leases/lookup/{lease}", Who::Root, 404),
    row("LIST", "/v1/sys/leases//lookup/dockerhub/", Who::Root, 307),
    same_texts(row("GET", HOEG_LEASES, Who::Root, 405)),
    with_body(
        row(
            "PUT",
            "/v1/sys/leases/lookup/dockerhub/token/hoeg",
            Who::Root,
            405,
        ),
        "{}",
    ),
    row("LIST", HOEG_LEASES, LEASE_LISTER, 200),
    row(
        "LIST",
        "/v1/sys/leases/lookup/dockerhub/token/hoeg",
        LEASE_LISTER,
        200,
    ),
    row(
        "LIST",
        "/v1/sys/leases/lookup/dockerhub/token/hoeg/my-organization/",
        LEASE_LISTER,
        200,
    ),
    row(
        "LIST",
        "/v1/sys/leases/lookup/dockerhub/token/",
        LEASE_LISTER,
        403,
    ),
    row("GET", HOEG_LEASES, LEASE_LISTER, 403),
    same_texts(row("LIST", HOEG_LEASES, LIMITED, 403)),
    row("LIST", HOEG_LEASES, Who::Nobody, 403),
    // Lease endpoints: the policy is checked on the path as sent. A lookup has OpenBao's
    // fields and its timestamps to the fraction of a second, before and after a renewal.
    with_body(
        row("PUT", "/v1/sys/leases/lookup", LIMITED, 200),
        r#"{"lease_id": "{lease}"}"#,
    ),
    with_body(
        row("PUT", "/v1/sys/leases/renew", LIMITED, 200),
        r#"{"lease_id": "{lease}", "increment": "10m"}"#,
    ),
    with_body(
        row("PUT", "/v1/sys/leases/lookup", Who::Root, 200),
        r#"{"lease_id": "{lease}"}"#,
    ),
    with_body(
        row("PUT", "/v1/sys/leases/renew/{lease}", Who::Root, 200),
        "{}",
    ),
    // Refusals in OpenBao's words.
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/lookup", Who::Root, 400),
        "{}",
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/lookup", Who::Root, 400),
        r#"{"lease_id": ""}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/lookup", Who::Root, 400),
        r#"{"lease_id": "dockerhub/token/hoeg/my-organization/nope"}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/lookup", Who::Root, 400),
        r#"{"lease_id": 5}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        "{}",
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        r#"{"lease_id": "dockerhub/token/hoeg/my-organization/nope"}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        r#"{"lease_id": ["{lease}"]}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        r#"{"lease_id": "{lease}", "increment": -5}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        r#"{"lease_id": "{lease}", "increment": "-5"}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        r#"{"lease_id": "{lease}", "increment": true}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        r#"{"lease_id": "{lease}", "increment": "abc"}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/renew", Who::Root, 400),
        r#"{"lease_id": "{lease}", "increment": {}}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/revoke", Who::Root, 400),
        r#"{"lease_id": "{lease}", "sync": 5}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/revoke", Who::Root, 400),
        r#"{"lease_id": "{lease}", "sync": [true]}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/revoke", Who::Root, 400),
        r#"{"lease_id": "{lease}", "sync": {}}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/revoke", Who::Root, 202),
        r#"{"lease_id": "dockerhub/token/hoeg/my-organization/nope", "sync": ""}"#,
    )),
    same_texts(row("GET", "/v1/sys/leases/lookup", Who::Root, 405)),
    same_texts(row("GET", "/v1/sys/leases/renew", Who::Root, 405)),
    same_texts(row("DELETE", "/v1/sys/leases/revoke", Who::Root, 405)),
    same_texts(row("FOO", "/v1/sys/leases/lookup", Who::Root, 405)),
    same_texts(row("FOO", "/v1/dockerhub/config/hoeg", Who::Root, 405)),
    // The engine's unknown paths and operations, in OpenBao's words for a plugin's.
    same_texts(row("GET", "/v1/dockerhub/nothing-here", Who::Root, 404)),
    same_texts(row("GET", "/v1/dockerhub/", Who::Root, 404)),
    same_texts(row(
        "DELETE",
        "/v1/dockerhub/token/hoeg/my-organization",
        Who::Root,
        405,
    )),
    same_texts(row("LIST", "/v1/dockerhub/token/hoeg/", Who::Root, 404)),
    same_texts(row(
        "GET",
        "/v1/sys/leases/lookup/dockerhub/?scan=true",
        Who::Root,
        405,
    )),
    with_body(
        row("PUT", "/v1/sys/leases/revoke", LIMITED, 403),
        r#"{"lease_id": "{lease}"}"#,
    ),
    with_body(
        row("PUT", "/v1/sys/leases/revoke/{lease}", BODY_REVOKE, 403),
        r#"{"sync": true}"#,
    ),
    with_body(
        row(
            "PUT",
            "/v1/sys/leases/revoke/dockerhub/token/hoeg/hoeg/x",
            LIMITED,
            403,
        ),
        r#"{"sync": true}"#,
    ),
    with_body(
        row(
            "PUT",
            "/v1/sys/leases/revoke-prefix/dockerhub/token",
            LIMITED,
            403,
        ),
        r#"{"sync": true}"#,
    ),
    with_body(
        row("PUT", "/v1/sys/leases//revoke/{lease}", LIMITED, 307),
        r#"{"sync": true}"#,
    ),
    with_body(
        row("PUT", "/v1/sys/leases/revoke/{lease}", LIMITED, 204),
        r#"{"sync": true}"#,
    ),
    with_body(
        row("PUT", "/v1/sys/leases/revoke", BODY_REVOKE, 204),
        r#"{"lease_id": "{lease2}", "sync": "t"}"#,
    ),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/revoke", Who::Root, 400),
        r#"{"sync": true}"#,
    )),
    same_texts(with_body(
        row("PUT", "/v1/sys/leases/revoke", Who::Root, 400),
        r#"{"lease_id": "{lease3}", "sync": "maybe"}"#,
    )),
    row("GET", "/v1/sys/leases/lookup", LIMITED, 403),
    // A force revoke needs sudo, as revoke-prefix.
    row(
        "PUT",
        "/v1/sys/leases/revoke-force/dockerhub/token",
        LIMITED,
        403,
    ),
    row(
        "PUT",
        "/v1/sys/leases/revoke-force/dockerhub/token/nobody",
        Who::Root,
        204,
    ),
    same_texts(row(
        "GET",
        "/v1/sys/leases/revoke-force/dockerhub/token/nobody",
        Who::Root,
        405,
    )),
    // Queued revocations answer 202; a prefix that is a whole lease id names that lease.
    with_body(
        row("PUT", "/v1/sys/leases/revoke/{lease3}", LIMITED, 202),
        r#"{"sync": false}"#,
    ),
    with_body(
        row(
            "PUT",
            "/v1/sys/leases/revoke-prefix/{lease4}",
            Who::Root,
            204,
        ),
        r#"{"sync": true}"#,
    ),
];

fn run(host: &Host, row: &Row, leases: &[String; 4]) -> Answer {
    let root = host.token(Who::Root).expect("root has a token");
    let fill = |text: &str| {
        text.replace("{lease}", &leases[0])
            .replace("{lease2}", &leases[1])
            .replace("{lease3}", &leases[2])
            .replace("{lease4}", &leases[3])
    };
    let headers: Vec<(&str, String)> = row
        .headers
        .iter()
        .map(|(name, value)| (*name, value.replace("ROOT", &root)))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let creations = || {
        let calls = host.hub().calls();
        let creation = |c: &&fakehub::Call| c.method == "POST" && c.path == "/v2/access-tokens";
        calls.iter().filter(creation).count()
    };
    let before = creations();
    let answer = host
        .raw(
            row.method,
            &fill(row.target),
            row.who,
            &headers,
            fill(row.body).as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{}: {} {}: {e}", host.name, row.method, row.target));
    let minted = creations() - before;
    assert_eq!(
        minted, row.mints,
        "{}: {} {} created {minted} Hub tokens: {answer:?}",
        host.name, row.method, row.target
    );
    answer
}

#[test]
fn every_host_answers_every_request_alike() {
    // OpenBao, then the hosts that must answer as it does.
    let hosts = [
        Host::openbao().unwrap(),
        Host::serve().unwrap(),
        Host::gateway(Kind::Wasmtime).unwrap(),
        Host::gateway(Kind::Jco).unwrap(),
    ];
    let leases: Vec<[String; 4]> = hosts
        .iter()
        .map(|host| std::array::from_fn(|_| issue_lease(host, LIMITED).unwrap()))
        .collect();
    let mut differences = Vec::new();
    for row in ROWS {
        let answers: Vec<Answer> = hosts
            .iter()
            .zip(&leases)
            .map(|(host, leases)| run(host, row, leases))
            .collect();
        let bao = &answers[0];
        let what = format!(
            "{} {} as {:?} {:?}",
            row.method, row.target, row.who, row.headers
        );
        for ((host, answer), host_leases) in hosts.iter().zip(&answers).zip(&leases).skip(1) {
            // Node.js refuses a method it does not know (`LIST`, `FOO`) before jco sees the
            // request (400, no body): clients list with `?list=true` there, which rows of
            // their own cover.
            if host.name == "jco-serve" && matches!(row.method, "LIST" | "FOO") {
                assert_eq!(answer.status, 400, "{what}: jco-serve: {answer:?}");
                continue;
            }
            let same_location = bao.location.as_deref().map(|l| fill_none(l, &leases[0][0]))
                == answer
                    .location
                    .as_deref()
                    .map(|l| fill_none(l, &host_leases[0]));
            // Both JSON answers have the same keys; OpenBao's bodyless 400 for a
            // non-printable path is the one answer with no body that the others explain in
            // JSON.
            let comparable = matches!(bao.body, Value::Object(_)) || bao.status == 307;
            let same_shape = !comparable || bao.shape(row.left_out) == answer.shape(&[]);
            let same_texts = !row.texts || bao.body.get("errors") == answer.body.get("errors");
            if bao.status != row.status
                || answer.status != row.status
                || !same_location
                || !same_shape
                || !same_texts
            {
                differences.push(format!(
                    "{what}: expected {}\n  openbao {} {:?} {}\n  {} {} {:?} {}\n  \
                     shapes  {}\n          {}",
                    row.status,
                    bao.status,
                    bao.location,
                    bao.body,
                    host.name,
                    answer.status,
                    answer.location,
                    answer.body,
                    bao.shape(row.left_out),
                    answer.shape(&[]),
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences in {} rows:\n{}",
        differences.len(),
        ROWS.len(),
        differences.join("\n")
    );
    // One difference on purpose: a status outside 100-999 makes OpenBao's health handler
    // panic, and the client sees the connection close with no answer; the others answer 400,
    // as for any code they cannot use.
    for target in [
        "/v1/sys/health?activecode=1000",
        "/v1/sys/health?activecode=99",
        "/v1/sys/health?activecode=-200",
    ] {
        let bao = hosts[0].raw("GET", target, Who::Nobody, &[], b"");
        assert!(bao.is_err(), "openbao answered {target}: {bao:?}");
        for host in &hosts[1..] {
            let answer = host.raw("GET", target, Who::Nobody, &[], b"").unwrap();
            assert_eq!(answer.status, 400, "{}: {target}: {answer:?}", host.name);
        }
    }
    // Every lease the table revoked is gone from the Hub in every host: the two tokens the
    // table minted are all that is left.
    for host in &hosts {
        let left = || host.hub().live_tokens().len();
        let settled = eventually(Duration::from_secs(30), || left() == 2);
        assert!(
            settled,
            "{}: {} live Hub tokens\n{}",
            host.name,
            left(),
            host.log()
        );
    }
}

/// A lease id in a `Location` header names a host's own lease: compare them as `{lease}`.
fn fill_none(location: &str, lease: &str) -> String {
    location.replace(lease, "{lease}")
}

/// The same commands with the real `bao` CLI and with hvac: exit status and what they say.
#[test]
fn the_cli_and_hvac_get_the_same_answers_from_both_hosts() {
    let hosts = [Host::openbao().unwrap(), Host::serve().unwrap()];
    let mut lease_shapes = Vec::new();
    for host in &hosts {
        let limited = host.token(LIMITED).unwrap();
        let body_revoke = host.token(BODY_REVOKE).unwrap();
        let cli = host.cli();
        let mut kept = Vec::new();
        // The CLI follows the redirect of an unclean path, to the denial.
        let denied = cli
            .bao_as(&limited, &["write", "-force", "dockerhub//token/hoeg/hoeg"])
            .unwrap();
        let stderr = String::from_utf8_lossy(&denied.stderr);
        assert_eq!(denied.status.code(), Some(2), "{}: {stderr}", host.name);
        assert!(
            stderr.contains("permission denied"),
            "{}: {stderr}",
            host.name
        );
        // `bao lease revoke <id>` is `PUT sys/leases/revoke/<id>`: the policy on that path
        // allows it, and one on `sys/leases/revoke` alone does not.
        for (token, allowed) in [(&body_revoke, false), (&limited, true)] {
            let lease = issue_lease(host, LIMITED).unwrap();
            let revoked = cli
                .bao_as(token, &["lease", "revoke", "-sync", &lease])
                .unwrap();
            let stderr = String::from_utf8_lossy(&revoked.stderr);
            assert_eq!(revoked.status.success(), allowed, "{}: {stderr}", host.name);
            if !allowed {
                kept.push(lease.clone());
                assert!(
                    stderr.contains("permission denied"),
                    "{}: {stderr}",
                    host.name
                );
            }
        }
        // hvac: `list` sends `?list=True`; `revoke_lease` puts the id in the body.
        let python = dockerhub_secrets_e2e::openbao::bao_binary()
            .unwrap()
            .with_file_name("python");
        let lease = issue_lease(host, LIMITED).unwrap();
        let script = r#"
import hvac, json, os
root = hvac.Client(url=os.environ["ADDR"], token=os.environ["ROOT"])
keys = root.list("dockerhub/config")["data"]["keys"]
revoker = hvac.Client(url=os.environ["ADDR"], token=os.environ["REVOKER"])
status = revoker.sys.revoke_lease(os.environ["LEASE"]).status_code
try:
    hvac.Client(url=os.environ["ADDR"], token=os.environ["LIMITED"]).read("dockerhub/config/hoeg")
    denied = False
except hvac.exceptions.Forbidden:
    denied = True
print(json.dumps({"keys": keys, "revoke": status, "denied": denied}))
"#;
        let output = std::process::Command::new(&python)
            .args(["-c", script])
            .env("ADDR", host.addr())
            .env("ROOT", host.token(Who::Root).unwrap())
            .env("REVOKER", &body_revoke)
            .env("LIMITED", &limited)
            .env("LEASE", &lease)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            host.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"keys": ["hoeg"], "revoke": 204, "denied": true}),
            "{}",
            host.name
        );
        // `bao list sys/leases/lookup/<prefix>`: the ids of the leases still alive below it.
        let below = "dockerhub/token/hoeg/my-organization/";
        let listed = cli
            .bao_json(&["list", &format!("sys/leases/lookup/{below}")])
            .unwrap();
        let alive: Vec<&str> = kept
            .iter()
            .filter_map(|id| id.strip_prefix(below))
            .collect();
        assert_eq!(listed, serde_json::json!(alive), "{}", host.name);
        // `bao lease lookup` and `bao lease renew`, before and after a renewal: what they
        // print has the same shape from both hosts.
        let lease = issue_lease(host, LIMITED).unwrap();
        let mut printed = Vec::new();
        for args in [
            ["lease", "lookup", &lease],
            ["lease", "renew", &lease],
            ["lease", "lookup", &lease],
        ] {
            printed.push(shape_of(&cli.bao_json(&args).unwrap()));
        }
        lease_shapes.push(printed);
    }
    assert_eq!(lease_shapes[0], lease_shapes[1], "openbao, then serve");
}

/// A revocation the Hub refuses: OpenBao answers 400 "failed to revoke entry: …" for the
/// lease endpoints (its `handleError` of the expiration manager's error), and so must `serve`,
/// a 429 too (its Retry-After is the lease's next attempt, not the client's); hvac raises
/// `InvalidRequest` for both.
#[test]
fn a_failed_revocation_is_answered_alike() {
    use fakehub::FaultKind::{RateLimited, Status};
    let hosts = [Host::openbao().unwrap(), Host::serve().unwrap()];
    let mut texts = Vec::new();
    for host in &hosts {
        let mut said = Vec::new();
        // The 429 last: the host then waits out its Retry-After before any Hub call.
        for (method, target, body, fault) in [
            ("PUT", "/v1/sys/leases/revoke/{lease}", "{}", Status(500)),
            (
                "PUT",
                "/v1/sys/leases/revoke",
                r#"{"lease_id": "{lease}"}"#,
                Status(500),
            ),
            (
                "PUT",
                "/v1/sys/leases/revoke-prefix/{lease}",
                "{}",
                Status(500),
            ),
            (
                "PUT",
                "/v1/sys/leases/revoke/{lease}",
                "{}",
                RateLimited { retry_after: 3600 },
            ),
        ] {
            let lease = issue_lease(host, Who::Root).unwrap();
            host.hub()
                .inject(fakehub::Fault::on("DELETE", "/v2/access-tokens/", fault).times(1000));
            let answer = host
                .raw(
                    method,
                    &target.replace("{lease}", &lease),
                    Who::Root,
                    &[],
                    body.replace("{lease}", &lease).as_bytes(),
                )
                .unwrap();
            let error = answer.body["errors"][0].as_str().unwrap_or_default();
            assert_eq!(answer.status, 400, "{}: {target}: {answer:?}", host.name);
            assert!(
                error.contains("failed to revoke entry: "),
                "{}: {target}: {error}",
                host.name
            );
            said.push(error.replace(&lease, "{lease}"));
            host.hub().clear_faults();
        }
        texts.push(said);
    }
    // The same words, which the CLI prints, up to the lease ids.
    assert_eq!(texts[0], texts[1], "openbao, then serve");
}

/// A lease past its end whose revocation failed and waits for a retry: both hosts still know
/// it, and look it up as OpenBao does, no longer renewable and with a negative `ttl`.
#[test]
fn a_lease_past_its_end_is_looked_up_alike() {
    let hosts = [Host::openbao().unwrap(), Host::serve().unwrap()];
    let mut shapes = Vec::new();
    for host in &hosts {
        host.hub().inject(
            fakehub::Fault::on(
                "DELETE",
                "/v2/access-tokens/",
                fakehub::FaultKind::Status(500),
            )
            .times(1000),
        );
        let issued = host
            .raw(
                "PUT",
                "/v1/dockerhub/token/hoeg/my-organization",
                Who::Root,
                &[],
                br#"{"ttl": "2s"}"#,
            )
            .unwrap();
        assert_eq!(issued.status, 200, "{}: {issued:?}", host.name);
        let lease = dockerhub_secrets_e2e::lease_id(&issued.body).to_string();
        std::thread::sleep(Duration::from_secs(5));
        let answer = host
            .raw(
                "PUT",
                "/v1/sys/leases/lookup",
                Who::Root,
                &[],
                serde_json::json!({ "lease_id": lease })
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        assert_eq!(answer.status, 200, "{}: {answer:?}", host.name);
        let data = &answer.body["data"];
        assert_eq!(data["renewable"], false, "{}: {answer:?}", host.name);
        let ttl = data["ttl"].as_i64().unwrap_or_default();
        assert!((-4..=-1).contains(&ttl), "{}: {answer:?}", host.name);
        // `serve` adds what it knows of the pending revocation (see the README).
        let mut data = data.clone();
        for pending in [
            "revocation_attempts",
            "revocation_error",
            "next_revocation_attempt",
        ] {
            data.as_object_mut().unwrap().remove(pending);
        }
        shapes.push(shape_of(&data));
        host.hub().clear_faults();
    }
    assert_eq!(shapes[0], shapes[1], "openbao, then serve");
}

/// A renewal asking past the lease's max TTL: the engine caps it and says so, and OpenBao's
/// expiration manager adds its own warning in its framework's words; `serve` gives both.
#[test]
fn a_renewal_past_the_max_ttl_is_warned_alike() {
    let hosts = [Host::openbao().unwrap(), Host::serve().unwrap()];
    let mut warnings = Vec::new();
    for host in &hosts {
        let lease = issue_lease(host, Who::Root).unwrap();
        let answer = host
            .raw(
                "PUT",
                "/v1/sys/leases/renew",
                Who::Root,
                &[],
                serde_json::json!({ "lease_id": lease, "increment": "2h" })
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        assert_eq!(answer.status, 200, "{}: {answer:?}", host.name);
        let said: Vec<String> = answer.body["warnings"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: {answer:?}", host.name))
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect();
        assert_eq!(said.len(), 2, "{}: {said:?}", host.name);
        let openbaos = said
            .iter()
            .filter(|w| w.starts_with("TTL of \"2h\" exceeded the effective max_ttl of \""))
            .count();
        assert_eq!(openbaos, 1, "{}: {said:?}", host.name);
        warnings.push(said);
    }
    // The engine's own warning is the same text in both, up to the seconds left.
    let engine = |said: &[String]| {
        said.iter()
            .find(|w| !w.starts_with("TTL of \""))
            .map(|w| w.split(" of ").next().unwrap_or_default().to_string())
    };
    assert_eq!(engine(&warnings[0]), engine(&warnings[1]), "{warnings:?}");
}
