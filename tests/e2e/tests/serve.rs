//! `dockerhub-secrets serve`: the standalone endpoint, driven with the real `bao` CLI, plain
//! HTTP and Python's `hvac`, against the Docker Hub fake: the seed's session, policies,
//! leases that end by revoke and by expiry (also across restarts and crashes), 200
//! concurrent issuances, bad requests, and what is on disk.

use dockerhub_secrets_e2e::openbao::eventually;
use dockerhub_secrets_e2e::serve::{CI_TOKEN, ROOT_TOKEN, Serve};
use dockerhub_secrets_e2e::{PASSWORD, docker_login, lease_id, row, uuid};
use fakehub::{Config, FakeHub, Fault, FaultKind};
use serde_json::{Value, json};
use std::time::Duration;

fn hub() -> FakeHub {
    FakeHub::start(Config::default().account("hoeg", PASSWORD, None)).unwrap()
}

/// A server with `config/hoeg` written as in the seed session.
fn configured(args: &[&str]) -> Serve {
    let serve = Serve::start(hub(), args).expect("start serve");
    serve.write_seed_config(PASSWORD).unwrap();
    serve
}

fn issue(serve: &Serve, data: Value) -> Value {
    let (status, answer) = serve
        .http(
            "PUT",
            "/v1/dockerhub/token/hoeg/my-organization",
            Some(ROOT_TOKEN),
            data.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn the_seed_session_with_the_bao_cli() {
    let serve = Serve::start(hub(), &[]).unwrap();
    let written = serve.write_seed_config(PASSWORD).unwrap();
    assert_eq!(written, "Success! Data written to: dockerhub/config/hoeg\n");
    let config = serve.bao_ok(&["read", "dockerhub/config/hoeg"]).unwrap();
    assert_eq!(row(&config, "namespace"), Some("[hoeg my-organization]"));
    assert_eq!(row(&config, "ttl"), Some("5m0s"));
    assert_eq!(row(&config, "username"), Some("hoeg"));
    assert!(!config.contains(PASSWORD));
    assert_eq!(
        serve.bao_ok(&["list", "dockerhub/config"]).unwrap(),
        "Keys\n----\nhoeg\n"
    );

    let token = serve
        .bao_ok(&[
            "write",
            "dockerhub/token/hoeg/my-organization",
            "label=release-build",
        ])
        .unwrap();
    let lease = row(&token, "lease_id").unwrap().to_string();
    assert!(
        lease.starts_with("dockerhub/token/hoeg/my-organization/"),
        "{token}"
    );
    assert_eq!(row(&token, "lease_duration"), Some("5m"));
    assert_eq!(row(&token, "lease_renewable"), Some("true"));
    assert_eq!(row(&token, "namespace"), Some("my-organization"));
    assert_eq!(row(&token, "username"), Some("hoeg"));
    let uuid = row(&token, "uuid").unwrap().to_string();
    assert!(serve.hub.token(&uuid).is_some());
    let (username, secret) = docker_login(&serve.hub, row(&token, "docker_config").unwrap());
    assert_eq!(username, "hoeg");
    assert_eq!(Some(secret.as_str()), row(&token, "token"));

    let lookup = serve.bao_ok(&["lease", "lookup", &lease]).unwrap();
    assert_eq!(row(&lookup, "renewable"), Some("true"), "{lookup}");
    let renewed = serve
        .bao_json(&["lease", "renew", "-increment=10m", &lease])
        .unwrap();
    assert_eq!(renewed["lease_duration"], 600, "{renewed}");
    serve.bao_ok(&["lease", "revoke", &lease]).unwrap();
    assert!(eventually(Duration::from_secs(30), || serve
        .hub
        .token(&uuid)
        .is_none()));
    let gone = serve.bao(&["lease", "lookup", &lease]).unwrap();
    assert!(!gone.status.success(), "a revoked lease is gone");
}

#[test]
fn policies_decide_who_gets_which_namespace() {
    let serve = configured(&[]);
    let secret = serve
        .bao_json_as(
            CI_TOKEN,
            &["write", "-force", "dockerhub/token/hoeg/my-organization"],
        )
        .unwrap();
    assert_eq!(
        secret["data"]["label"], "token-ci-release",
        "the label comes from the token's name"
    );

    for args in [
        vec!["write", "-force", "dockerhub/token/hoeg/hoeg"],
        vec!["read", "dockerhub/config/hoeg"],
        vec!["lease", "revoke", "-prefix", "dockerhub/"],
    ] {
        let denied = serve.bao_as(CI_TOKEN, &args).unwrap();
        let stderr = String::from_utf8_lossy(&denied.stderr);
        assert!(
            stderr.contains("Code: 403") && stderr.contains("permission denied"),
            "{args:?}: {stderr}"
        );
    }
    for token in [None, Some("not-a-known-token")] {
        let (status, answer) = serve
            .http("GET", "/v1/dockerhub/config/hoeg", token, b"")
            .unwrap();
        assert_eq!(
            (status, answer),
            (403, json!({"errors": ["permission denied"]}))
        );
    }
    // The CI token's policy lets it end its own lease.
    let revoked = serve
        .bao_as(CI_TOKEN, &["lease", "revoke", lease_id(&secret)])
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
}

#[test]
fn expired_leases_are_revoked_and_failures_retried_until_they_succeed() {
    let serve = configured(&[]);
    let short = issue(&serve, json!({"ttl": "2s"}));
    assert_eq!(short["lease_duration"], 2);
    assert!(
        eventually(Duration::from_secs(30), || serve
            .hub
            .token(uuid(&short))
            .is_none()),
        "revoked at expiry"
    );

    // The engine sends a failing DELETE up to 4 times within one call: 4 failures fail one call.
    serve
        .hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(503)).times(4));
    let failing = issue(&serve, json!({"ttl": "1s"}));
    let id = lease_id(&failing).to_string();
    assert!(
        eventually(Duration::from_secs(30), || {
            let lookup = serve.bao_json(&["lease", "lookup", &id]);
            lookup.is_ok_and(|l| l["data"]["revocation_attempts"].as_u64() >= Some(1))
        }),
        "the failed revocation shows in lookup"
    );
    assert!(
        eventually(Duration::from_secs(60), || serve
            .hub
            .token(uuid(&failing))
            .is_none()),
        "retried until revoked"
    );
    assert!(
        !serve
            .bao(&["lease", "lookup", &id])
            .unwrap()
            .status
            .success()
    );
}

#[test]
fn a_retry_after_of_a_day_holds_revocations_for_a_minute_not_a_day() {
    let serve = configured(&[]);
    let secret = issue(&serve, json!({"ttl": "1s"}));
    serve.hub.inject(Fault::on(
        "DELETE",
        "/v2/access-tokens/",
        FaultKind::RateLimited {
            retry_after: 24 * 60 * 60,
        },
    ));
    let deletes = |serve: &Serve| {
        serve
            .hub
            .calls()
            .into_iter()
            .filter(|c| c.method == "DELETE" && c.status != 0)
            .count()
    };
    assert!(
        eventually(Duration::from_secs(30), || deletes(&serve) == 1),
        "the first revocation is refused"
    );
    let refused = std::time::Instant::now();
    // Docker Hub's limits are per minute: the wait is held for a minute, then the revocation
    // goes out again, and nothing goes to the Hub before.
    assert!(
        eventually(Duration::from_secs(120), || serve
            .hub
            .token(uuid(&secret))
            .is_none()),
        "revoked once the minute passed"
    );
    assert!(
        refused.elapsed() >= Duration::from_secs(55),
        "{:?}",
        refused.elapsed()
    );
    assert_eq!(deletes(&serve), 2, "{:?}", serve.hub.calls());
    let log = serve.log();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("asked_seconds=86400")
            && l.contains("held_seconds=60")),
        "the shortened wait is logged as a warning: {log}"
    );
}

/// A Hub (or a proxy in front of it) that makes the token and then answers with one of the
/// Hub's own refusals: the next rollback run finds and deletes what has no lease.
#[test]
fn creations_refused_after_the_work_leave_no_token() {
    let serve = Serve::start(hub(), &["--rollback-interval", "1s"]).unwrap();
    serve.write_seed_config(PASSWORD).unwrap();
    for status in [400, 401, 403, 429] {
        serve.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::StatusAfterProcessing(status),
        ));
        serve
            .http(
                "PUT",
                "/v1/dockerhub/token/hoeg/my-organization",
                Some(ROOT_TOKEN),
                br#"{"label":"refused"}"#,
            )
            .unwrap();
    }
    serve
        .bao_ok(&["lease", "revoke", "-sync", "-prefix", "dockerhub/"])
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || serve
            .hub
            .live_tokens()
            .is_empty()),
        "left at the Hub: {:?}",
        serve.hub.live_tokens()
    );
}

/// `bao lease revoke -force -prefix` ends a lease whose token the Hub refuses to delete, as
/// OpenBao does; the engine's rollback deletes that token once its lease would have ended.
#[test]
fn a_forced_revoke_ends_the_lease_and_rollback_the_token_later() {
    let serve = configured(&["--rollback-interval", "1s"]);
    let secret = issue(&serve, json!({"ttl": "2s"}));
    serve
        .hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(400)).times(8));
    assert!(
        !serve
            .bao(&["lease", "revoke", "-sync", lease_id(&secret)])
            .unwrap()
            .status
            .success(),
        "a plain revoke fails"
    );
    serve
        .bao_ok(&["lease", "revoke", "-force", "-prefix", lease_id(&secret)])
        .unwrap();
    assert!(
        !serve
            .bao(&["lease", "lookup", lease_id(&secret)])
            .unwrap()
            .status
            .success(),
        "the lease is gone"
    );
    assert!(serve.hub.token(uuid(&secret)).is_some());
    serve.hub.clear_faults();
    assert!(
        eventually(Duration::from_secs(120), || serve
            .hub
            .token(uuid(&secret))
            .is_none()),
        "rollback revoked the token"
    );
}

#[test]
fn leases_survive_a_restart_and_are_revoked_on_time_afterwards() {
    let mut serve = configured(&[]);
    let secret = issue(&serve, json!({"ttl": "6s"}));
    let kept = issue(&serve, json!({}));
    assert_eq!(
        serve.stop().map(|s| s.success()),
        Some(true),
        "SIGTERM is a clean stop"
    );
    assert!(
        serve.hub.token(uuid(&secret)).is_some(),
        "a stop revokes nothing"
    );

    serve.spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || serve
            .hub
            .token(uuid(&secret))
            .is_none()),
        "revoked at expiry after the restart"
    );
    assert!(serve.hub.token(uuid(&kept)).is_some());
    serve
        .bao_ok(&["lease", "revoke", "-sync", lease_id(&kept)])
        .unwrap();
    assert!(serve.hub.token(uuid(&kept)).is_none());
}

#[test]
fn a_crash_during_a_burst_leaves_no_orphaned_token() {
    let mut serve = configured(&["--rollback-interval", "1s"]);
    let addr = serve.addr.clone();
    // Slow creations, so that the crash lands while some are at the Hub.
    serve.hub.inject(
        Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::Latency(Duration::from_millis(300)),
        )
        .times(1000),
    );
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let url = format!("{addr}/v1/dockerhub/token/hoeg/my-organization");
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let _ = agent
                    .put(&url)
                    .header("X-Vault-Token", ROOT_TOKEN)
                    .send(r#"{"ttl": "2s"}"#);
            })
        })
        .collect();
    assert!(eventually(Duration::from_secs(20), || !serve
        .hub
        .live_tokens()
        .is_empty()));
    serve.kill();
    for request in burst {
        let _ = request.join();
    }
    let created = serve.hub.tokens().len();
    serve.spawn().unwrap();
    // Leased tokens are revoked when their 2 s leases end; a token whose lease never got
    // stored is revoked by the engine's rollback once its lease would have ended.
    assert!(
        eventually(Duration::from_secs(150), || serve
            .hub
            .live_tokens()
            .is_empty()),
        "{} of {created} tokens still live:\n{}",
        serve.hub.live_tokens().len(),
        serve.log()
    );
}

#[test]
fn two_hundred_concurrent_issuances_then_all_revoked_at_expiry() {
    let serve = configured(&[]);
    let addr = serve.addr.clone();
    let issued: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let url = format!("{addr}/v1/dockerhub/token/hoeg/my-organization");
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    agent
                        .put(&url)
                        .header("X-Vault-Token", ROOT_TOKEN)
                        .send(r#"{"ttl": "5s"}"#)
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(issued.iter().all(|s| *s == 200), "{issued:?}");
    assert_eq!(serve.hub.live_tokens().len(), 200);
    assert_eq!(
        serve.hub.login_count(),
        1,
        "the config write's session serves them all"
    );
    assert!(
        eventually(Duration::from_secs(60), || serve
            .hub
            .live_tokens()
            .is_empty()),
        "{} left",
        serve.hub.live_tokens().len()
    );
}

#[test]
fn bad_requests_get_a_4xx_that_says_why() {
    let serve = configured(&[]);
    let token = Some(ROOT_TOKEN);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "PUT",
            "/v1/dockerhub/token/hoeg/hoeg",
            b"{not json".to_vec(),
            400,
            "failed to decode JSON input",
        ),
        (
            "PUT",
            "/v1/dockerhub/token/hoeg/hoeg",
            br#"{"ttl": "soon"}"#.to_vec(),
            400,
            "ttl",
        ),
        (
            "GET",
            "/v1/dockerhub/nothing/here",
            Vec::new(),
            404,
            "unsupported path",
        ),
        (
            "GET",
            "/v1/elsewhere/x",
            Vec::new(),
            404,
            "no handler for route",
        ),
        (
            "DELETE",
            "/v1/dockerhub/token/hoeg/hoeg",
            Vec::new(),
            405,
            "unsupported operation",
        ),
        (
            "PUT",
            "/v1/sys/leases/renew",
            br#"{"lease_id": "dockerhub/x/y"}"#.to_vec(),
            400,
            "lease not found",
        ),
        (
            "PUT",
            "/v1/sys/leases/revoke",
            b"{}".to_vec(),
            400,
            "lease_id must be specified",
        ),
    ];
    for (method, path, body, status, message) in cases {
        let (got, answer) = serve.http(method, path, token, &body).unwrap();
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert!(
            answer["errors"].to_string().contains(message),
            "{method} {path}: {answer}"
        );
    }
    // An oversized body is refused from its declared length, before it is read: the
    // client may still be sending, so this speaks HTTP by hand and sends only the head.
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(serve.addr.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 << 20
    )
    .unwrap();
    let mut head = [0u8; 512];
    let read = stream.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..read]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("request body too large"), "{head}");

    let (status, _) = serve.http("GET", "/v1/sys/health", None, b"").unwrap();
    assert_eq!(status, 200);
}

#[test]
fn hvac_works_unchanged() {
    let serve = configured(&[]);
    let python = dockerhub_secrets_e2e::openbao::bao_binary()
        .unwrap()
        .with_file_name("python");
    let script = r#"
import hvac, json, os, sys
client = hvac.Client(url=os.environ["ADDR"], token=os.environ["TOKEN"])
assert client.is_authenticated()
config = client.read("dockerhub/config/hoeg")
secret = client.write("dockerhub/token/hoeg/my-organization", label="from-hvac")
client.sys.revoke_lease(secret["lease_id"])
print(json.dumps({"namespace": config["data"]["namespace"], "uuid": secret["data"]["uuid"],
                  "lease_duration": secret["lease_duration"]}))
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .env("ADDR", &serve.addr)
        .env("TOKEN", ROOT_TOKEN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["namespace"], json!(["hoeg", "my-organization"]));
    assert_eq!(answer["lease_duration"], 300);
    let uuid = answer["uuid"].as_str().unwrap().to_string();
    assert!(eventually(Duration::from_secs(30), || serve
        .hub
        .token(&uuid)
        .is_none()));
}

#[test]
fn nothing_secret_is_on_disk_and_a_wrong_key_refuses_to_start() {
    let mut serve = configured(&[]);
    let secret = issue(&serve, json!({}));
    let token = secret["data"]["token"].as_str().unwrap().to_string();
    serve.stop();
    let store = std::fs::read(serve.dir.join("data/store.redb")).unwrap();
    for needle in [PASSWORD, token.as_str()] {
        assert!(
            !store.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} is on disk in plaintext"
        );
    }
    let key_file = serve.dir.join("data/key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    let error = serve.spawn().unwrap_err().to_string();
    assert!(error.contains("key does not match"), "{error}");
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    let mut serve = configured(&[]);
    serve.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::Latency(Duration::from_secs(2)),
    ));
    let url = format!("{}/v1/dockerhub/token/hoeg/my-organization", serve.addr);
    let request = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .put(&url)
            .header("X-Vault-Token", ROOT_TOKEN)
            .send("{}")
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    });
    assert!(eventually(Duration::from_secs(10), || {
        serve
            .hub
            .calls()
            .iter()
            .any(|c| c.method == "POST" && c.path == "/v2/access-tokens")
    }));
    assert_eq!(serve.stop().map(|s| s.success()), Some(true));
    let (status, body) = request.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let secret: Value = serde_json::from_str(&body).unwrap();
    serve.spawn().unwrap();
    let lookup = serve
        .bao_json(&["lease", "lookup", lease_id(&secret)])
        .unwrap();
    assert_eq!(
        lookup["data"]["id"], secret["lease_id"],
        "its lease was stored"
    );
}

#[test]
fn revoke_prefix_ends_every_lease_below_it() {
    let serve = configured(&[]);
    let secrets: Vec<Value> = (0..3).map(|_| issue(&serve, json!({}))).collect();
    // A partial segment names nothing, as in Vault.
    serve
        .bao_ok(&["lease", "revoke", "-prefix", "-sync", "dockerhub/tok"])
        .unwrap();
    assert_eq!(serve.hub.live_tokens().len(), 3);
    serve
        .bao_ok(&[
            "lease",
            "revoke",
            "-prefix",
            "-sync",
            "dockerhub/token/hoeg",
        ])
        .unwrap();
    for secret in &secrets {
        assert!(serve.hub.token(uuid(secret)).is_none());
    }
}

#[test]
fn flags_out_of_range_stop_the_start_with_a_message() {
    let mut serve = Serve::start(hub(), &[]).unwrap();
    serve.stop();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--mount", "sys"],
            "--mount \"sys\": Vault keeps sys/ for itself",
        ),
        (&["--mount", "sys/dockerhub"], "Vault keeps sys/ for itself"),
        (&["--mount", "auth"], "Vault keeps auth/ for itself"),
        (&["--mount", "audit"], "Vault keeps audit/ for itself"),
        (
            &["--mount", "identity/"],
            "Vault keeps identity/ for itself",
        ),
        (
            &["--mount", "cubbyhole/team"],
            "Vault keeps cubbyhole/ for itself",
        ),
        (&["--mount", "a/../b"], "\"..\" is not a path segment"),
        (&["--mount", "a/./b"], "\".\" is not a path segment"),
        (&["--mount", ".."], "\"..\" is not a path segment"),
        (&["--mount", "a//b"], "\"\" is not a path segment"),
        (&["--mount", "dockerhub//"], "\"\" is not a path segment"),
        (&["--mount", ""], "--mount \"\": the path is empty"),
        (&["--mount", "/"], "the path is empty"),
        (&["--mount", "//sys/"], "Vault keeps sys/ for itself"),
        (
            &["--time-limit", "0s"],
            "--time-limit 0s: must be between 1s and 1h",
        ),
        (
            &["--time-limit", "2h"],
            "--time-limit 2h: must be between 1s and 1h",
        ),
        (
            &["--time-limit", "100000000years"],
            "must be between 1s and 1h",
        ),
        (
            &["--memory-limit-mb", "0"],
            "--memory-limit-mb 0: must be between 16 and 1024",
        ),
        (
            &["--memory-limit-mb", "17592186044480"],
            "must be between 16 and 1024",
        ),
        (
            &["--rollback-interval", "0s"],
            "--rollback-interval 0s: must be between 1s and 10m",
        ),
        (
            &["--rollback-interval", "500ms"],
            "--rollback-interval 500ms: must be between 1s and 10m",
        ),
        (
            &["--rollback-interval", "11m"],
            "--rollback-interval 11m: must be between 1s and 10m (rollback looks for",
        ),
        (
            &["--max-lease-ttl", "0"],
            "--max-lease-ttl 0s: must be at least 1s (for Vault's 0, the default of 768h, leave \
             the flag out)",
        ),
    ];
    for (flags, expected) in cases {
        let (status, stderr) = serve.refused(flags).unwrap();
        assert_eq!(status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }

    // As `bao secrets enable -path=/dockerhub/`: the leading and trailing slashes are dropped.
    serve.spawn_with(&["--mount", "/dockerhub/"]).unwrap();
    serve.write_seed_config(PASSWORD).unwrap();
    issue(&serve, json!({}));
}

#[test]
fn a_lower_max_lease_ttl_after_a_restart_caps_renewals_not_existing_leases() {
    let mut serve = configured(&[]);
    serve
        .bao_ok(&["write", "dockerhub/config/hoeg", "ttl=30m", "max_ttl=1h"])
        .unwrap();
    let secret = issue(&serve, json!({}));
    assert_eq!(secret["lease_duration"], 1800, "{secret}");
    let expire_time = |serve: &Serve| {
        serve
            .bao_json(&["lease", "lookup", lease_id(&secret)])
            .unwrap()["data"]["expire_time"]
            .clone()
    };
    let (ends, hub_expiry) = (
        expire_time(&serve),
        serve.hub.token(uuid(&secret)).unwrap().expires_at,
    );
    serve.stop();

    serve.spawn_with(&["--max-lease-ttl", "10m"]).unwrap();
    assert_eq!(expire_time(&serve), ends, "the lease keeps its end");
    assert_eq!(
        serve.hub.token(uuid(&secret)).unwrap().expires_at,
        hub_expiry,
        "and its token its Hub expiry"
    );
    let renewed = serve
        .bao_json(&["lease", "renew", "-increment=1h", lease_id(&secret)])
        .unwrap();
    let ttl = renewed["lease_duration"].as_u64().unwrap();
    assert!(0 < ttl && ttl <= 600, "a renewal is capped: {renewed}");
    assert!(
        renewed["warnings"].to_string().contains("capped"),
        "{renewed}"
    );
    let new = issue(&serve, json!({}));
    assert_eq!(new["lease_duration"], 600, "a new lease is capped: {new}");
}

#[test]
fn output_that_is_gone_ends_the_server_with_an_error_not_a_panic() {
    let mut serve = Serve::start(hub(), &[]).unwrap();
    serve.stop();
    // Its stdout gone, the server cannot announce its address and stops; saying why on a
    // stderr that is gone too must not turn that into a panic (exit status 101).
    let status = serve.with_output_gone().unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}");
}

#[test]
fn the_accounts_quota_is_a_400_that_names_it() {
    let serve = Serve::start(hub(), &[]).unwrap();
    serve.write_seed_config(PASSWORD).unwrap();
    serve
        .bao_ok(&["write", "dockerhub/config/hoeg", "max_live_tokens=1"])
        .unwrap();
    let first = serve
        .bao_json(&["write", "-force", "dockerhub/token/hoeg/my-organization"])
        .unwrap();
    let refused = serve
        .bao(&["write", "-force", "dockerhub/token/hoeg/my-organization"])
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("Code: 400")
            && stderr.contains("account hoeg holds 1 live token(s) (creations in progress included), its quota max_live_tokens=1"),
        "{stderr}"
    );
    assert_eq!(serve.hub.live_tokens().len(), 1);
    serve
        .bao_ok(&["lease", "revoke", lease_id(&first)])
        .unwrap();
    assert!(serve.hub.token(uuid(&first)).is_none());
    serve
        .bao_json(&["write", "-force", "dockerhub/token/hoeg/my-organization"])
        .unwrap();
}
