//! The composed gateway component in two real wasi:http gateways, `wasmtime serve` and
//! `jco serve`, with its state in a real etcd, driven with the real `bao` CLI against the
//! Docker Hub fake: the seed's session, policies, leases ended by revoke and by tidy, two
//! gateway instances (one of each kind) on one etcd, a restart with live leases, and etcd
//! gone.

use dockerhub_secrets_e2e::gateway::{Etcd, Gateway, Kind};
use dockerhub_secrets_e2e::openbao::eventually;
use dockerhub_secrets_e2e::serve::{CI_TOKEN, ROOT_TOKEN};
use dockerhub_secrets_e2e::{PASSWORD, docker_login, row};
use dockerhub_secrets_gateway_compose::{Parts, compose};
use fakehub::{Config, FakeHub, Fault, FaultKind};
use std::path::Path;
use std::time::Duration;

fn hub() -> FakeHub {
    FakeHub::start(Config::default().account("hoeg", PASSWORD, None)).unwrap()
}

/// A fresh etcd prefix per test, so that tests never see each other's state.
fn prefix(test: &str) -> String {
    format!("test-{test}-{}/", std::process::id())
}

/// Issue a token with the `bao` CLI: its lease id and its Hub uuid.
fn issue(gateway: &Gateway, label: &str) -> (String, String) {
    let token = gateway
        .bao_ok(&[
            "write",
            "dockerhub/token/hoeg/my-organization",
            &format!("label={label}"),
        ])
        .unwrap();
    (
        row(&token, "lease_id").unwrap().to_string(),
        row(&token, "uuid").unwrap().to_string(),
    )
}

/// One test per gateway: `<name>_in_wasmtime_serve` and `<name>_in_jco_serve`.
macro_rules! in_both_gateways {
    ($($name:ident),* $(,)?) => {
        mod in_wasmtime_serve {
            $(#[test] fn $name() { super::$name(super::Kind::Wasmtime) })*
        }
        mod in_jco_serve {
            $(#[test] fn $name() { super::$name(super::Kind::Jco) })*
        }
    };
}

in_both_gateways!(
    the_seed_session,
    policies_allow_and_deny_as_in_serve,
    a_restart_keeps_live_leases,
    etcd_gone_is_a_clear_5xx_and_nothing_is_lost,
    a_body_that_does_not_arrive_in_time_is_answered_408,
);

fn the_seed_session(kind: Kind) {
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let gateway = Gateway::start(kind, &hub, &etcd, &prefix("seed")).unwrap();
    let written = gateway.write_seed_config(PASSWORD).unwrap();
    assert_eq!(written, "Success! Data written to: dockerhub/config/hoeg\n");
    let config = gateway.bao_ok(&["read", "dockerhub/config/hoeg"]).unwrap();
    assert_eq!(row(&config, "namespace"), Some("[hoeg my-organization]"));
    assert_eq!(row(&config, "ttl"), Some("5m0s"));
    assert_eq!(row(&config, "username"), Some("hoeg"));
    assert!(!config.contains(PASSWORD));
    // `bao list` sends `GET ?list=true`, which Node takes too.
    let listed = gateway.bao_ok(&["list", "dockerhub/config"]).unwrap();
    assert!(listed.lines().any(|line| line == "hoeg"), "{listed}");

    let token = gateway
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
    assert!(hub.token(&uuid).is_some());
    let secret = row(&token, "token").unwrap().to_string();
    let (username, login) = docker_login(&hub, row(&token, "docker_config").unwrap());
    assert_eq!(
        (username.as_str(), login.as_str()),
        ("hoeg", secret.as_str())
    );

    let renewed = gateway
        .bao_json(&["lease", "renew", "-increment=10m", &lease])
        .unwrap();
    assert_eq!(renewed["lease_duration"], 600, "{renewed}");
    gateway.bao_ok(&["lease", "revoke", &lease]).unwrap();
    assert!(hub.token(&uuid).is_none(), "revoked at the Hub");
    // The engine's records reach the gateway's stderr through the shims; no secret does.
    let log = gateway.log();
    assert!(
        log.contains("INFO hub: logged in to Docker Hub as hoeg"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD) && !log.contains(&secret), "{log}");
}

fn policies_allow_and_deny_as_in_serve(kind: Kind) {
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let gateway = Gateway::start(kind, &hub, &etcd, &prefix("policies")).unwrap();
    gateway.write_seed_config(PASSWORD).unwrap();
    let allowed = gateway
        .bao_json_as(
            CI_TOKEN,
            &["write", "dockerhub/token/hoeg/my-organization", "label=ci"],
        )
        .unwrap();
    assert!(allowed["data"]["token"].is_string(), "{allowed}");
    let denied = gateway
        .bao_as(
            CI_TOKEN,
            &["write", "dockerhub/token/hoeg/hoeg", "label=ci"],
        )
        .unwrap();
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("permission denied"),
        "{denied:?}"
    );
    let unknown = gateway
        .bao_as("no-such-token", &["read", "dockerhub/config/hoeg"])
        .unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Code: 403"));
}

#[test]
fn two_gateways_on_one_etcd_share_leases() {
    let (hub, etcd, prefix) = (hub(), Etcd::start().unwrap(), prefix("shared"));
    let wasmtime = Gateway::start(Kind::Wasmtime, &hub, &etcd, &prefix).unwrap();
    let jco = Gateway::start(Kind::Jco, &hub, &etcd, &prefix).unwrap();
    wasmtime.write_seed_config(PASSWORD).unwrap();
    for (issuer, other) in [(&wasmtime, &jco), (&jco, &wasmtime)] {
        let (lease, uuid) = issue(issuer, "shared");
        let renewed = other.bao_json(&["lease", "renew", &lease]).unwrap();
        assert_eq!(renewed["lease_id"], lease.as_str(), "{renewed}");
        other.bao_ok(&["lease", "revoke", &lease]).unwrap();
        assert!(hub.token(&uuid).is_none(), "revoked by {:?}", other.kind);
    }
}

fn a_restart_keeps_live_leases(kind: Kind) {
    let (hub, etcd, prefix) = (hub(), Etcd::start().unwrap(), prefix("restart"));
    let mut gateway = Gateway::start(kind, &hub, &etcd, &prefix).unwrap();
    gateway.write_seed_config(PASSWORD).unwrap();
    let (lease, uuid) = issue(&gateway, "before-restart");
    gateway.stop();
    drop(gateway);
    assert!(hub.token(&uuid).is_some(), "a stop revokes nothing");
    let gateway = Gateway::start(kind, &hub, &etcd, &prefix).unwrap();
    gateway.bao_ok(&["lease", "revoke", &lease]).unwrap();
    assert!(hub.token(&uuid).is_none());
}

#[test]
fn tidy_ends_expired_leases_once_however_many_gateways_tidy() {
    let (hub, etcd, prefix) = (hub(), Etcd::start().unwrap(), prefix("tidy"));
    let one = Gateway::start(Kind::Wasmtime, &hub, &etcd, &prefix).unwrap();
    let two = Gateway::start(Kind::Jco, &hub, &etcd, &prefix).unwrap();
    one.write_seed_config(PASSWORD).unwrap();
    let issued: Vec<(String, String)> = (0..4)
        .map(|i| {
            let token = one
                .bao_ok(&[
                    "write",
                    "dockerhub/token/hoeg/my-organization",
                    &format!("label=t{i}"),
                    "ttl=2s",
                ])
                .unwrap();
            let field = |name| row(&token, name).unwrap().to_string();
            (field("lease_id"), field("uuid"))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    hub.clear_calls();
    let tidy = |gateway: &Gateway| gateway.bao_ok(&["write", "-f", "sys/leases/tidy"]).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| tidy(&one));
        scope.spawn(|| tidy(&two));
    });
    assert!(eventually(Duration::from_secs(30), || issued
        .iter()
        .all(|(_, uuid)| hub.token(uuid).is_none())));
    // Each lease is revoked by one instance: its "revoked lease" line is in one log, once.
    let logs = one.log() + &two.log();
    for (lease, _) in &issued {
        let revoked = format!("revoked lease {lease}");
        assert_eq!(logs.matches(&revoked).count(), 1, "{revoked}:\n{logs}");
    }
    // And each token is deleted once at the Hub, but for a DELETE the engine sends again
    // within its own revocation when the first one's answer is lost (it logs that).
    let resent = logs
        .lines()
        .filter(|line| {
            line.contains("WARN hub: DELETE /v2/access-tokens/") && line.contains("trying again")
        })
        .count();
    let deletes = hub
        .calls()
        .iter()
        .filter(|call| call.method == "DELETE" && call.path.starts_with("/v2/access-tokens/"))
        .count();
    assert_eq!(deletes, issued.len() + resent, "each token deleted once");
    for (lease, _) in &issued {
        let lookup = one.bao(&["lease", "lookup", lease]).unwrap();
        assert!(!lookup.status.success(), "{lease} is gone");
    }
}

fn etcd_gone_is_a_clear_5xx_and_nothing_is_lost(kind: Kind) {
    let (hub, mut etcd) = (hub(), Etcd::start().unwrap());
    let gateway = Gateway::start(kind, &hub, &etcd, &prefix("etcd-gone")).unwrap();
    gateway.write_seed_config(PASSWORD).unwrap();
    etcd.kill();
    let refused = gateway
        .bao(&["write", "dockerhub/token/hoeg/my-organization", "label=x"])
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Code: 5"), "{stderr}");
    assert!(stderr.contains("etcd"), "{stderr}");
    assert!(
        hub.live_tokens().is_empty(),
        "no token lives without a lease: {:?}",
        hub.live_tokens()
    );
    // A load balancer sees it too.
    let (status, answer) = gateway.http("GET", "/v1/sys/health", None, b"").unwrap();
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer["errors"][0].as_str().unwrap().contains("etcd"),
        "{answer}"
    );
}

/// A client that sends a write's head and then stalls its body is answered 408 once
/// `DOCKERHUB_SECRETS_BODY_READ_TIMEOUT` has passed, as `serve` answers after 30 s, and the
/// gateway serves on. Meanwhile `wasmtime serve` answers other requests; `jco serve` holds
/// them until the 408 (the README says so: Node runs the component on one thread).
fn a_body_that_does_not_arrive_in_time_is_answered_408(kind: Kind) {
    use std::io::{Read, Write};
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let component = dockerhub_secrets_e2e::gateway::gateway_component().unwrap();
    let gateway = Gateway::start_component(
        kind,
        &component,
        &hub,
        &etcd,
        &prefix("stalled-body"),
        "",
        &[("DOCKERHUB_SECRETS_BODY_READ_TIMEOUT", "4s")],
    )
    .unwrap();
    let address = gateway.addr.strip_prefix("http://").unwrap();
    let mut client = std::net::TcpStream::connect(address).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        client,
        "PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: {address}\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    // Another client's request while the body stalls.
    let health = std::thread::scope(|scope| {
        let health = scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            let answer = gateway.http("GET", "/v1/sys/health", None, b"");
            (answer.map(|(status, _)| status), std::time::Instant::now())
        });
        let (mut answer, mut buffer) = (Vec::new(), [0u8; 512]);
        let mut stalled_answered = None;
        // The head and the body may come in separate reads (jco sends the body chunked).
        while !String::from_utf8_lossy(&answer).contains("did not arrive") {
            let read = client.read(&mut buffer).unwrap();
            stalled_answered.get_or_insert_with(std::time::Instant::now);
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..read]);
        }
        let stalled_answered = stalled_answered.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("the request body did not arrive within 4s"),
            "{answer}"
        );
        let (status, health_answered) = health.join().unwrap();
        assert_eq!(status.unwrap(), 200);
        health_answered < stalled_answered
    });
    match kind {
        Kind::Wasmtime => assert!(health, "wasmtime serve answers others meanwhile"),
        Kind::Jco => assert!(!health, "jco serve holds others until the 408"),
    }
    drop(client);
    let (status, _) = gateway.http("GET", "/v1/sys/health", None, b"").unwrap();
    assert_eq!(status, 200);
    assert!(hub.calls().is_empty(), "nothing reached Docker Hub");
}

/// The gateway's shims let the engine reach Docker Hub's origin only, routed to the operator's
/// Hub URL, in the real gateway: the sandbox probe (a component of the engine's world that
/// fetches any URL on request) composed in the engine's place.
#[test]
fn the_engine_reaches_only_docker_hub_through_the_shims() {
    let built = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/wasm32-wasip2/wasm")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}: run `just build`", path.display()))
    };
    let probe_gateway = compose(&Parts {
        engine: built("sandbox_probe.wasm"),
        shims: built("dockerhub_secrets_gateway_shims.wasm"),
        front: built("dockerhub_secrets_gateway_front.wasm"),
        store: Some(built("dockerhub_secrets_keyvalue_etcd.wasm")),
    })
    .unwrap();
    let component = std::env::temp_dir().join(format!("probe-gateway-{}.wasm", std::process::id()));
    std::fs::write(&component, probe_gateway).unwrap();
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let gateway = Gateway::start_component(
        Kind::Wasmtime,
        &component,
        &hub,
        &etcd,
        &prefix("egress"),
        "",
        &[],
    )
    .unwrap();
    let _ = std::fs::remove_file(&component);
    let fetch = |url: &str| {
        let body = serde_json::json!({ "url": url }).to_string();
        gateway
            .http(
                "PUT",
                "/v1/dockerhub/fetch",
                Some(ROOT_TOKEN),
                body.as_bytes(),
            )
            .unwrap()
    };

    let (status, answer) = fetch("https://hub.docker.com/v2/probe-routed");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["data"]["status"].is_number(), "{answer}");
    let paths: Vec<String> = hub.calls().into_iter().map(|call| call.path).collect();
    assert!(paths.contains(&"/v2/probe-routed".to_string()), "{paths:?}");

    let fake = hub.url();
    for elsewhere in [
        format!("{fake}/v2/probe-direct"),
        "http://hub.docker.com/v2/probe-plain".to_string(),
        "https://hub.docker.com:8443/v2/probe-port".to_string(),
        "https://example.com/".to_string(),
    ] {
        let (status, answer) = fetch(&elsewhere);
        assert_eq!(status, 502, "{elsewhere}: {answer}");
        assert!(
            answer["errors"][0]
                .as_str()
                .unwrap_or_default()
                .contains("HttpRequestDenied"),
            "{elsewhere}: {answer}"
        );
    }
    let paths: Vec<String> = hub.calls().into_iter().map(|call| call.path).collect();
    assert_eq!(
        paths,
        ["/v2/probe-routed"],
        "only the routed request reached the fake"
    );
}

/// jco's Node.js host gives a request's connect timeout (10 s, the engine's) to the socket as
/// an idle timeout and reports a slow answer as `connection-timeout`: the engine must not
/// take such a creation for one that never left, but find its token by label and delete it.
#[test]
fn a_creation_answered_late_under_jco_leaves_no_token() {
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let gateway = Gateway::start(Kind::Jco, &hub, &etcd, &prefix("late")).unwrap();
    gateway.write_seed_config(PASSWORD).unwrap();
    hub.inject(
        Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::LatencyAfterProcessing(Duration::from_secs(12)),
        )
        .times(1),
    );
    let refused = gateway
        .bao(&[
            "write",
            "dockerhub/token/hoeg/my-organization",
            "label=late",
        ])
        .unwrap();
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        eventually(Duration::from_secs(30), || hub.live_tokens().is_empty()),
        "a token outlived its failed creation: {:?}\n{}",
        hub.live_tokens(),
        gateway.log()
    );
    // The Hub made the token, and the engine deleted it.
    let deleted = hub.calls().into_iter().any(|call| {
        call.method == "DELETE" && call.path.starts_with("/v2/access-tokens/") && call.status == 204
    });
    assert!(deleted, "{:?}", hub.calls());
}

/// A setting that is not what it must be stops the gateway: every request is answered 500,
/// naming the variable, rather than run without the limit it sets.
#[test]
fn a_bad_setting_stops_the_gateway_and_names_the_variable() {
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let component = dockerhub_secrets_e2e::gateway::gateway_component().unwrap();
    for (name, value) in [
        ("DOCKERHUB_SECRETS_MAX_LEASE_TTL", "banana"),
        ("DOCKERHUB_SECRETS_TOKENS_HCL", "token {"),
        ("DOCKERHUB_SECRETS_MOUNT", "sys"),
        (
            "DOCKERHUB_SECRETS_HUB_URL",
            "http://user:hunter2@127.0.0.1:1",
        ),
        ("DOCKERHUB_SECRETS_HUB_URL", "user:hunter2@127.0.0.1:1"),
        ("DOCKERHUB_SECRETS_BODY_READ_TIMEOUT", "0"),
        ("DOCKERHUB_SECRETS_STORE_KEY", "abcd"),
        ("DOCKERHUB_SECRETS_ETCD_URL", "garbage"),
    ] {
        let gateway = Gateway::start_component(
            Kind::Wasmtime,
            &component,
            &hub,
            &etcd,
            &prefix("bad-setting"),
            "",
            &[(name, value)],
        )
        .unwrap();
        let (status, answer) = gateway
            .http(
                "PUT",
                "/v1/dockerhub/token/hoeg/my-organization",
                Some(ROOT_TOKEN),
                b"{}",
            )
            .unwrap();
        assert_eq!(status, 500, "{name}={value}: {answer}");
        assert!(
            answer.to_string().contains(name),
            "{name}={value}: {answer}"
        );
        assert!(!answer.to_string().contains("hunter2"), "{answer}");
        // So that a load balancer takes the instance out.
        let (status, health) = gateway.http("GET", "/v1/sys/health", None, b"").unwrap();
        assert_eq!(status, 500, "{name}={value}: {health}");
        assert!(
            health.to_string().contains(name),
            "{name}={value}: {health}"
        );
        assert!(!health.to_string().contains("hunter2"), "{health}");
    }
    assert!(hub.calls().is_empty(), "nothing reached Docker Hub");
}

/// A log level that is no level is said once per instance, in the log, and the gateway logs
/// at `info`.
#[test]
fn an_unknown_log_level_is_logged_as_a_warning() {
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let component = dockerhub_secrets_e2e::gateway::gateway_component().unwrap();
    let gateway = Gateway::start_component(
        Kind::Wasmtime,
        &component,
        &hub,
        &etcd,
        &prefix("log-level"),
        "",
        &[("DOCKERHUB_SECRETS_LOG", "verbose")],
    )
    .unwrap();
    gateway.write_seed_config(PASSWORD).unwrap();
    issue(&gateway, "log-level");
    let warned = eventually(Duration::from_secs(10), || {
        gateway.log().contains(
            "WARN logging: DOCKERHUB_SECRETS_LOG \"verbose\" names no level (trace, debug, info, \
             warn, error, critical): logging at info",
        )
    });
    let log = gateway.log();
    assert!(warned, "{log}");
    assert!(
        log.contains("INFO hub: logged in to Docker Hub as hoeg"),
        "{log}"
    );
    assert!(!log.contains("DEBUG "), "{log}");
}

/// The README's sizing of `wasmtime serve`'s pool: one request of the etcd variant takes 14
/// core instances, so a pool of 13 serves none, and a pool of 14 serves one request at a time
/// and answers the next with wasmtime's bare 500 while the first is in flight (here,
/// waiting for its body).
#[test]
fn a_wasmtime_pool_holds_as_many_requests_as_the_readme_says() {
    use std::io::Write;
    let (hub, etcd) = (hub(), Etcd::start().unwrap());
    let pool = |core_instances: u32| {
        Gateway::start_wasmtime_with_options(
            &hub,
            &etcd,
            &prefix("pool"),
            &[("DOCKERHUB_SECRETS_BODY_READ_TIMEOUT", "4s")],
            &[
                "-O",
                &format!("pooling-total-core-instances={core_instances}"),
            ],
        )
        .unwrap()
    };
    // wasmtime's own 500 is HTML: the status alone.
    let status = |gateway: &Gateway| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .get(format!("{}/v1/sys/health", gateway.addr))
            .call()
            .expect("an answer")
            .status()
            .as_u16()
    };
    assert_eq!(status(&pool(13)), 500, "13 are too few for one request");
    let gateway = pool(14);
    assert_eq!(status(&gateway), 200, "one request fits in 14");
    let address = gateway.addr.strip_prefix("http://").unwrap();
    let mut stalled = std::net::TcpStream::connect(address).unwrap();
    write!(
        stalled,
        "PUT /v1/dockerhub/config/hoeg HTTP/1.1\r\nHost: {address}\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
         Content-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    let refused = eventually(Duration::from_secs(3), || status(&gateway) == 500);
    assert!(refused, "a second request finds the pool full");
    drop(stalled);
    let served = eventually(Duration::from_secs(10), || status(&gateway) == 200);
    assert!(served, "and is served once the first has ended");
}
