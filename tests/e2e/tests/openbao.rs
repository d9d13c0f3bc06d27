//! The plugin in a real OpenBao (`bao server -dev` from PyPI), driven with the real `bao`
//! CLI, against the Docker Hub fake: the seed's session verbatim, policies, leases that end
//! by revoke, by expiry and at unmount, renewals, a killed plugin, a failing Hub, creations
//! whose answer was lost when the mount is disabled or reloaded (and an unmount that cannot
//! settle them in time), a killed server.

use dockerhub_secrets_e2e::openbao::{OpenBao, ROOT_TOKEN, eventually};
use dockerhub_secrets_e2e::{PASSWORD, docker_login, lease_id, row, uuid};
use fakehub::{Config, FakeHub, Fault, FaultKind};
use serde_json::Value;
use std::time::Duration;

fn start() -> OpenBao {
    OpenBao::start(PASSWORD).expect("start OpenBao with the plugin")
}

fn configure(bao: &OpenBao) {
    bao.write_seed_config(PASSWORD).unwrap();
}

/// `secrets disable dockerhub`, after which no token of the mount may be live at the Hub.
fn disable_and_expect_no_token(bao: &OpenBao) {
    bao.bao_ok(&["secrets", "disable", "dockerhub"]).unwrap();
    let left: Vec<String> = bao.hub.live_tokens().into_iter().map(|t| t.label).collect();
    assert!(
        left.is_empty(),
        "left at the Hub after the unmount: {left:?}"
    );
}

fn issue(bao: &OpenBao, args: &[&str]) -> Value {
    let mut command = vec!["write", "-force", "dockerhub/token/hoeg/my-organization"];
    command.extend(args);
    bao.bao_json(&command).unwrap()
}

#[test]
fn the_seed_session_verbatim() {
    let bao = start();
    let written = bao.write_seed_config(PASSWORD).unwrap();
    assert_eq!(written, "Success! Data written to: dockerhub/config/hoeg\n");

    let config = bao.bao_ok(&["read", "dockerhub/config/hoeg"]).unwrap();
    assert_eq!(
        row(&config, "namespace"),
        Some("[hoeg my-organization]"),
        "{config}"
    );
    assert_eq!(row(&config, "ttl"), Some("5m0s"), "{config}");
    assert_eq!(row(&config, "username"), Some("hoeg"), "{config}");
    assert!(
        !config.contains("password") && !config.contains(PASSWORD),
        "{config}"
    );

    let token = bao
        .bao_ok(&[
            "write",
            "dockerhub/token/hoeg/my-organization",
            "label=release-build",
        ])
        .unwrap();
    assert!(
        row(&token, "lease_id")
            .unwrap()
            .starts_with("dockerhub/token/hoeg/my-organization/")
    );
    assert_eq!(row(&token, "lease_duration"), Some("5m"), "{token}");
    assert_eq!(row(&token, "lease_renewable"), Some("true"), "{token}");
    assert_eq!(row(&token, "namespace"), Some("my-organization"), "{token}");
    assert_eq!(row(&token, "username"), Some("hoeg"), "{token}");
    let secret = row(&token, "token").unwrap();
    let at_hub = bao
        .hub
        .token(row(&token, "uuid").unwrap())
        .expect("the token is at the Hub");
    assert_eq!(at_hub.token, secret);
    assert!(at_hub.label.contains("release-build"), "{}", at_hub.label);

    let log = bao.server_log();
    assert!(
        log.contains("issued token"),
        "the plugin's hclog lines reach OpenBao's log"
    );
    assert!(
        !log.contains(PASSWORD) && !log.contains(secret),
        "no secret in OpenBao's log"
    );
}

#[test]
fn the_answer_is_ready_for_docker_login_and_kubernetes() {
    let bao = start();
    configure(&bao);
    let secret = issue(&bao, &[]);
    let data = &secret["data"];
    assert_eq!(data["registry"], "https://index.docker.io/v1/");
    let (username, token) = docker_login(&bao.hub, data["docker_config"].as_str().unwrap());
    assert_eq!(
        (username.as_str(), token.as_str()),
        ("hoeg", data["token"].as_str().unwrap())
    );

    // `-field=docker_config` prints the document as it is: what a pipeline writes to
    // ~/.docker/config.json, or to a Kubernetes secret's .dockerconfigjson.
    let config = bao
        .bao_ok(&[
            "write",
            "-field=docker_config",
            "dockerhub/token/hoeg/my-organization",
            "label=k8s-pull",
        ])
        .unwrap();
    let (username, _) = docker_login(&bao.hub, &config);
    assert_eq!(username, "hoeg");
    assert!(
        !bao.server_log().contains(data["auth"].as_str().unwrap()),
        "no auth in OpenBao's log"
    );
}

#[test]
fn the_accounts_quota_is_a_400_that_names_it() {
    let bao = start();
    configure(&bao);
    bao.bao_ok(&["write", "dockerhub/config/hoeg", "max_live_tokens=1"])
        .unwrap();
    let config = bao.bao_ok(&["read", "dockerhub/config/hoeg"]).unwrap();
    assert_eq!(row(&config, "max_live_tokens"), Some("1"), "{config}");
    let first = issue(&bao, &[]);
    let refused = bao
        .bao(&["write", "-force", "dockerhub/token/hoeg/my-organization"])
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("Code: 400")
            && stderr.contains("account hoeg holds 1 live token(s) (creations in progress included), its quota max_live_tokens=1"),
        "{stderr}"
    );
    assert_eq!(bao.hub.live_tokens().len(), 1);
    bao.bao_ok(&["lease", "revoke", lease_id(&first)]).unwrap();
    assert!(eventually(Duration::from_secs(30), || bao
        .hub
        .token(uuid(&first))
        .is_none()));
    issue(&bao, &[]);
}

#[test]
fn policies_decide_who_gets_which_namespace() {
    let bao = start();
    configure(&bao);
    bao.bao_stdin(
        &["policy", "write", "ci-release", "-"],
        "path \"dockerhub/token/hoeg/my-organization\" {\n  capabilities = [\"create\", \"update\"]\n}\n",
    )
    .unwrap();
    let created = bao
        .bao_json(&[
            "token",
            "create",
            "-policy=ci-release",
            "-display-name=ci-runner",
        ])
        .unwrap();
    let ci = created["auth"]["client_token"].as_str().unwrap();

    let secret = bao
        .bao_json_as(
            ci,
            &["write", "-force", "dockerhub/token/hoeg/my-organization"],
        )
        .unwrap();
    let label = bao.hub.token(uuid(&secret)).unwrap().label;
    assert!(
        label.contains("token-ci-runner"),
        "the label comes from the display name: {label}"
    );

    for args in [
        vec!["write", "-force", "dockerhub/token/hoeg/hoeg"],
        vec!["read", "dockerhub/config/hoeg"],
    ] {
        let denied = bao.bao_as(ci, &args).unwrap();
        let stderr = String::from_utf8_lossy(&denied.stderr);
        assert!(!denied.status.success(), "{args:?} was allowed");
        assert!(
            stderr.contains("permission denied") && stderr.contains("403"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(bao.hub.live_tokens().len(), 1);
}

#[test]
fn a_namespace_outside_the_accounts_list_is_refused_by_the_engine() {
    let bao = start();
    configure(&bao);
    let refused = bao
        .bao(&["write", "-force", "dockerhub/token/hoeg/someone-else"])
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Code: 403") && stderr.contains("someone-else"),
        "{stderr}"
    );
    let bad = bao
        .bao(&["write", "dockerhub/token/hoeg/hoeg", "ttl=soon"])
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("Code: 400") && stderr.contains("ttl: invalid duration"),
        "{stderr}"
    );
    assert!(bao.hub.live_tokens().is_empty());
}

#[test]
fn a_body_over_the_engines_limit_is_a_413_and_the_plugin_carries_on() {
    let bao = start();
    configure(&bao);
    let plugins = bao.plugin_pids();
    // Larger than tonic's default gRPC message limit (4 MiB), within OpenBao's 32 MiB.
    let big = bao.dir.join("big-password");
    std::fs::write(&big, "p".repeat(5 << 20)).unwrap();
    let password = format!("password=@{}", big.display());
    let refused = bao
        .bao(&[
            "write",
            "dockerhub/config/hoeg",
            "namespace=hoeg",
            &password,
        ])
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("Code: 413") && stderr.contains("request body too large"),
        "{stderr}"
    );

    assert_eq!(bao.plugin_pids(), plugins, "the same plugin process");
    let config = bao.bao_ok(&["read", "dockerhub/config/hoeg"]).unwrap();
    assert_eq!(
        row(&config, "username"),
        Some("hoeg"),
        "unchanged: {config}"
    );
    issue(&bao, &[]);
    assert_eq!(bao.hub.live_tokens().len(), 1);
}

#[test]
fn a_setting_out_of_range_stops_the_plugin_with_a_message() {
    for (variable, value, message) in [
        (
            "DOCKERHUB_SECRETS_TIME_LIMIT",
            "0s",
            "--time-limit 0s: must be between 1s and 1h",
        ),
        (
            "DOCKERHUB_SECRETS_UNMOUNT_WAIT",
            "2h",
            "--unmount-wait 2h: must be between 0s and 1h",
        ),
    ] {
        let plugin = dockerhub_secrets_e2e::openbao::plugin_binary().unwrap();
        let output = std::process::Command::new(plugin)
            .env(
                "VAULT_BACKEND_PLUGIN",
                "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
            )
            .env("PLUGIN_PROTOCOL_VERSIONS", "5")
            .env(variable, value)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert!(output.stdout.is_empty(), "no handshake");
    }
}

#[test]
fn lease_revoke_and_lease_expiry_delete_the_token() {
    let bao = start();
    configure(&bao);
    let revoked = issue(&bao, &[]);
    let expiring = issue(&bao, &["ttl=2s"]);
    assert_eq!(expiring["lease_duration"], 2);

    // `lease revoke` queues the revocation; OpenBao calls the plugin right after.
    bao.bao_ok(&["lease", "revoke", lease_id(&revoked)])
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || bao
            .hub
            .token(uuid(&revoked))
            .is_none()),
        "revoked at the Hub"
    );

    assert!(
        eventually(Duration::from_secs(60), || bao
            .hub
            .token(uuid(&expiring))
            .is_none()),
        "OpenBao's expiration manager revoked the 2s lease"
    );
}

#[test]
fn renewal_extends_the_lease_up_to_max_ttl_and_no_further() {
    let bao = start();
    configure(&bao);
    bao.bao_ok(&["write", "dockerhub/config/hoeg", "ttl=10s", "max_ttl=30s"])
        .unwrap();
    let secret = issue(&bao, &[]);
    assert_eq!(secret["lease_duration"], 10);

    let renewed = bao
        .bao_json(&["lease", "renew", "-increment=20s", lease_id(&secret)])
        .unwrap();
    let ttl = renewed["lease_duration"].as_u64().unwrap();
    assert!((18..=20).contains(&ttl), "{renewed}");

    let capped = bao
        .bao_json(&["lease", "renew", "-increment=1h", lease_id(&secret)])
        .unwrap();
    let ttl = capped["lease_duration"].as_u64().unwrap();
    assert!(ttl <= 30, "never beyond max_ttl: {capped}");
    let warnings = capped["warnings"].to_string();
    assert!(warnings.contains("capped"), "{capped}");

    let at_hub = bao.hub.token(uuid(&secret)).unwrap();
    assert!(
        at_hub.expires_at.is_some(),
        "the Hub itself ends the token at max_ttl"
    );
}

#[test]
fn a_killed_plugin_is_restarted_and_nothing_is_lost() {
    let bao = start();
    configure(&bao);
    let before = issue(&bao, &[]);
    let pids = bao.plugin_pids();
    assert!(!pids.is_empty(), "a plugin process runs");
    for pid in &pids {
        // SAFETY: the plugin process this test's server started.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert!(eventually(Duration::from_secs(10), || bao
        .plugin_pids()
        .iter()
        .all(|p| !pids.contains(p))));

    let after = issue(&bao, &[]);
    assert!(bao.hub.token(uuid(&after)).is_some());
    let config = bao.bao_ok(&["read", "dockerhub/config/hoeg"]).unwrap();
    assert_eq!(row(&config, "username"), Some("hoeg"));
    bao.bao_ok(&["lease", "revoke", "-sync", lease_id(&before)])
        .unwrap();
    assert!(
        bao.hub.token(uuid(&before)).is_none(),
        "the lease from before the kill still revokes"
    );
    assert_eq!(
        bao.hub.login_count(),
        1,
        "the Hub session survived in storage"
    );
}

#[test]
fn disabling_the_mount_deletes_every_token_it_issued() {
    let bao = start();
    configure(&bao);
    for _ in 0..3 {
        issue(&bao, &[]);
    }
    assert_eq!(bao.hub.live_tokens().len(), 3);
    bao.bao_ok(&["secrets", "disable", "dockerhub"]).unwrap();
    assert!(bao.hub.live_tokens().is_empty());
}

#[test]
fn a_hub_that_fails_revocation_is_retried_until_the_token_is_gone() {
    let bao = start();
    configure(&bao);
    let secret = issue(&bao, &["ttl=2s"]);
    // The engine sends a failing DELETE up to 4 times within one call: 8 failures fail two
    // revoke calls, so OpenBao's own retry has to bring the third.
    bao.hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(503)).times(8));
    assert!(
        eventually(Duration::from_secs(150), || bao
            .hub
            .token(uuid(&secret))
            .is_none()),
        "OpenBao kept retrying the revocation"
    );
    let deletes = bao
        .hub
        .calls()
        .iter()
        .filter(|c| c.method == "DELETE")
        .count();
    assert!(
        deletes >= 9,
        "two failed revoke calls of four attempts each, then success: {deletes} DELETE calls"
    );
}

#[test]
fn the_plugin_reports_its_version_and_help() {
    let bao = start();
    let plugins = bao.bao_ok(&["plugin", "list", "secret"]).unwrap();
    let line = plugins
        .lines()
        .find(|l| l.starts_with("dockerhub-secrets"))
        .unwrap();
    assert!(
        line.contains(&format!("v{}", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    let help = bao.bao_ok(&["path-help", "dockerhub/config/hoeg"]).unwrap();
    assert!(
        help.contains("password") && help.contains("namespace"),
        "{help}"
    );
}

#[test]
fn settings_reach_the_plugin_as_registration_arguments() {
    let bao = start();
    let proxy = FakeHub::start(Config::default().account("hoeg", PASSWORD, None)).unwrap();
    register(
        &bao,
        "dockerhub-via-proxy",
        &format!("--hub-url={}", proxy.url()),
    );
    bao.bao_ok(&["secrets", "enable", "-path=proxied", "dockerhub-via-proxy"])
        .unwrap();
    bao.bao_ok(&[
        "write",
        "proxied/config/hoeg",
        "namespace=hoeg",
        &format!("password={PASSWORD}"),
    ])
    .unwrap();
    assert_eq!(
        proxy.login_count(),
        1,
        "the engine logged in where the argument says"
    );
    assert_eq!(
        bao.hub.login_count(),
        0,
        "not at the URL from the environment"
    );
}

#[test]
fn the_mounts_max_lease_ttl_caps_lease_and_hub_expiry() {
    let bao = start();
    configure(&bao);
    bao.bao_ok(&["secrets", "tune", "-max-lease-ttl=2m", "dockerhub"])
        .unwrap();
    let secret = issue(&bao, &[]);
    assert_eq!(secret["lease_duration"], 120, "{secret}");
    assert!(
        secret["warnings"].to_string().contains("capped"),
        "{secret}"
    );
    let expires_at = bao.hub.token(uuid(&secret)).unwrap().expires_at.unwrap();
    let left = humantime::parse_rfc3339(&expires_at)
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left <= Duration::from_secs(122),
        "the Hub ends the token within the mount's limit (+ the engine's 2 s slack): {expires_at}"
    );
}

/// How many `GET /v2/access-tokens` answers fail while tokens are issued: more than the
/// engine asks in those calls, so that none of them can look a lost token up.
const LISTING_FAULTS: usize = 200;

/// Use up what is left of the listing faults, so that the Hub answers listings again.
fn restore_listings(hub: &FakeHub) {
    for _ in 0..=LISTING_FAULTS {
        let status = ureq::get(format!("{}/v2/access-tokens", hub.url()))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap()
            .status()
            .as_u16();
        if status != 503 {
            return;
        }
    }
    panic!("the listing faults never ran out");
}

/// Lose the Hub's answer to 3 of every 10 creations (the token exists at the Hub, the engine
/// does not know it), and fail every listing, so that the engine cannot settle them in the
/// call and their write-ahead records stay.
fn lose_creation_answers(hub: &FakeHub, k: usize, n: usize) {
    hub.inject(Fault::on("POST", "/v2/access-tokens", FaultKind::DropAfterProcessing).ratio(k, n));
    hub.inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(503)).times(LISTING_FAULTS));
}

/// Configure `hoeg` and issue one token whose creation answer is lost and cannot be settled
/// in the call; then the Hub answers listings again. Returns the orphan's uuid.
fn one_lost_creation(bao: &OpenBao) -> Vec<String> {
    configure(bao);
    lose_creation_answers(&bao.hub, 1, 1);
    let lost = bao
        .bao(&["write", "-force", "dockerhub/token/hoeg/my-organization"])
        .unwrap();
    assert!(!lost.status.success());
    let orphan = orphans(bao, &[]);
    assert_eq!(orphan.len(), 1);
    restore_listings(&bao.hub);
    orphan
}

/// Tokens at the Hub that no lease names.
fn orphans(bao: &OpenBao, leased: &[String]) -> Vec<String> {
    bao.hub
        .live_tokens()
        .into_iter()
        .map(|t| t.uuid)
        .filter(|uuid| !leased.contains(uuid))
        .collect()
}

#[test]
fn disabling_the_mount_deletes_tokens_whose_creation_answer_was_lost() {
    let bao = start();
    configure(&bao);
    lose_creation_answers(&bao.hub, 3, 10);
    let mut leased = Vec::new();
    let mut failed = 0;
    for _ in 0..30 {
        match bao.bao_json(&["write", "-force", "dockerhub/token/hoeg/my-organization"]) {
            Ok(secret) => leased.push(uuid(&secret).to_string()),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 9, "3 of every 10 answers were lost");
    assert_eq!(
        orphans(&bao, &leased).len(),
        failed,
        "each lost answer left a token at the Hub that no lease names"
    );
    restore_listings(&bao.hub);

    // At once: the write-ahead records are far younger than rollback's 10 minutes.
    bao.bao_ok(&["secrets", "disable", "dockerhub"]).unwrap();
    let left = bao.hub.live_tokens();
    assert!(
        left.is_empty(),
        "{} token(s) outlived the mount: {left:?}",
        left.len()
    );
}

#[test]
fn a_plugin_reload_keeps_pending_creations_for_rollback() {
    let bao = start();
    let orphan = one_lost_creation(&bao);

    // A reload (like a seal or a step-down) calls Cleanup too, but the storage stays: a
    // pending creation there may be in flight on another node, so nothing is deleted.
    let before = bao.plugin_pids();
    bao.bao_ok(&["plugin", "reload", "-plugin=dockerhub-secrets"])
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        let now = bao.plugin_pids();
        !now.is_empty() && now.iter().all(|p| !before.contains(p))
    }));
    assert!(
        bao.hub.token(&orphan[0]).is_some(),
        "a reload deleted a pending creation's token"
    );

    bao.bao_ok(&["secrets", "disable", "dockerhub"]).unwrap();
    assert!(
        bao.hub.live_tokens().is_empty(),
        "the unmount after the reload settled it"
    );
}

#[test]
fn the_plugin_exits_when_its_server_is_killed() {
    let mut bao = start();
    configure(&bao);
    let plugins = bao.plugin_pids();
    assert!(!plugins.is_empty(), "a plugin process runs");
    bao.kill_server();
    assert!(
        eventually(Duration::from_secs(5), || bao.plugin_pids().is_empty()),
        "plugin processes outlived their server: {:?}",
        bao.plugin_pids()
    );
}

#[test]
fn a_token_whose_creation_races_the_unmount_is_deleted_again() {
    let bao = start();
    configure(&bao);
    let writer = slow_creation(
        &bao,
        Duration::from_secs(3),
        &["write", "-force", "dockerhub/token/hoeg/my-organization"],
    );

    // OpenBao revokes the mount's leases before the creation ends; a lease registered after
    // that could never be revoked.
    bao.bao_ok(&["secrets", "disable", "dockerhub"]).unwrap();
    let answer = writer.wait_with_output().unwrap();
    assert!(
        !answer.status.success(),
        "a mount being disabled handed out a token: {}",
        String::from_utf8_lossy(&answer.stdout)
    );
    assert!(
        bao.hub.live_tokens().is_empty(),
        "the token outlived its mount"
    );
}

#[test]
fn disabling_the_mount_waits_for_a_creation_the_hub_carries_out_late() {
    // A plugin whose calls may take 4 s: a creation's request ends after 3 s. The Hub makes
    // the token only after 7 s, long after the engine stopped waiting and found no token.
    let bao = start();
    register(&bao, "dockerhub-4s", "--time-limit=4s");
    bao.bao_ok(&["secrets", "enable", "-path=brief", "dockerhub-4s"])
        .unwrap();
    bao.bao_ok(&[
        "write",
        "brief/config/hoeg",
        "namespace=hoeg",
        &format!("password={PASSWORD}"),
    ])
    .unwrap();
    let writer = slow_creation(
        &bao,
        Duration::from_secs(7),
        &["write", "brief/token/hoeg/hoeg", "label=late"],
    );
    let posted = std::time::Instant::now();

    bao.bao_ok(&["secrets", "disable", "brief"]).unwrap();
    // Look only once the Hub has surely made the token.
    std::thread::sleep(
        (posted + Duration::from_secs(8)).saturating_duration_since(std::time::Instant::now()),
    );
    let answer = writer.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&answer.stderr);
    assert!(
        !answer.status.success() && stderr.contains("no such token"),
        "{stderr}"
    );
    let calls = bao.hub.calls();
    // The Hub made the token after the engine's call had ended (its answer went nowhere,
    // status 0), and the unmount waited for it and deleted it.
    let deleted = calls
        .iter()
        .filter(|c| c.method == "DELETE" && c.status == 204)
        .count();
    assert_eq!(deleted, 1, "{calls:?}");
    assert!(
        bao.hub.live_tokens().is_empty(),
        "the token outlived its mount"
    );
}

/// Register the plugin binary again as the secrets plugin `name`, started with `args`.
fn register(bao: &OpenBao, name: &str, args: &str) {
    let plugin = bao.dir.join("plugins/dockerhub-secrets");
    let sha = std::process::Command::new("sha256sum")
        .arg(&plugin)
        .output()
        .unwrap();
    let sha = String::from_utf8(sha.stdout).unwrap();
    let sha = sha.split_whitespace().next().unwrap();
    bao.bao_ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "-command=dockerhub-secrets",
        &format!("-args={args}"),
        "secret",
        name,
    ])
    .unwrap();
}

/// Start the `bao` command `args`, a token write whose creation the Hub carries out only
/// after `latency`, and return it once the creation has reached the Hub.
fn slow_creation(bao: &OpenBao, latency: Duration, args: &[&str]) -> std::process::Child {
    bao.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::Latency(latency),
    ));
    let writer = bao
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || bao
            .hub
            .calls()
            .iter()
            .any(|c| c.method == "POST" && c.path == "/v2/access-tokens")),
        "the creation reached the Hub"
    );
    writer
}

#[test]
fn disabling_the_mount_keeps_trying_while_the_hub_fails_the_lookup() {
    let bao = start();
    one_lost_creation(&bao);
    // The unmount's first rollbacks meet failing listings (each tried 4 times in the call):
    // more failures than the three rollbacks an unmount used to try before it gave up.
    bao.hub
        .inject(Fault::on("GET", "/v2/access-tokens", FaultKind::Status(500)).times(16));

    bao.bao_ok(&["secrets", "disable", "dockerhub"]).unwrap();
    let left = bao.hub.live_tokens();
    assert!(left.is_empty(), "the token outlived its mount: {left:?}");
}

/// A Hub (or a proxy in front of it) that makes the token and then answers with one of the
/// Hub's own refusals: the engine answers without a lookup, and the look it leaves for
/// rollback runs at unmount, so no token survives the mount. After a 401 or a 429 the
/// engine sends the creation again: that second token has a lease and is revoked with it.
#[test]
fn unmount_after_creations_refused_after_the_work_leaves_no_token() {
    let bao = start();
    configure(&bao);
    for status in [400, 401, 403, 429] {
        bao.hub.inject(Fault::on(
            "POST",
            "/v2/access-tokens",
            FaultKind::StatusAfterProcessing(status),
        ));
        bao.bao(&[
            "write",
            "dockerhub/token/hoeg/my-organization",
            "label=refused",
        ])
        .unwrap();
    }
    assert_eq!(
        bao.hub.live_tokens().len(),
        6,
        "4 refused, 2 issued on a second try"
    );
    disable_and_expect_no_token(&bao);
}

/// `bao lease revoke -force` after a failed DELETE ends the lease in OpenBao and leaves the
/// token to rollback's tidy; an unmount before that tidy runs deletes the token with the
/// mount's other pending work, since OpenBao has ended every lease of the mount by then.
#[test]
fn unmount_after_a_forced_revoke_leaves_no_token() {
    let bao = start();
    configure(&bao);
    let lease = lease_id(&issue(&bao, &[])).to_string();
    bao.hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(500)).times(100));
    bao.bao_ok(&["lease", "revoke", "-force", "-prefix", &lease])
        .unwrap();
    assert_eq!(bao.hub.live_tokens().len(), 1, "the Hub refused the DELETE");
    bao.hub.clear_faults();
    disable_and_expect_no_token(&bao);
}

/// A client that gives up on a token request while the Hub is still answering (a CI job
/// cancelled, a client timeout shorter than the Hub's latency): OpenBao cancels the plugin's
/// call, no lease is made, and the token the Hub made is deleted as soon as its answer
/// arrives, not ten minutes later by rollback.
#[test]
fn a_token_whose_caller_went_away_is_deleted_at_once() {
    let bao = start();
    configure(&bao);
    bao.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::LatencyAfterProcessing(Duration::from_secs(4)),
    ));
    let impatient: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(1500)))
        .build()
        .into();
    let gave_up = impatient
        .put(format!(
            "{}/v1/dockerhub/token/hoeg/my-organization",
            bao.addr
        ))
        .header("X-Vault-Token", ROOT_TOKEN)
        .send("{}");
    assert!(gave_up.is_err(), "the client timed out: {gave_up:?}");
    assert_eq!(bao.hub.tokens().len(), 1, "the Hub made the token");
    assert!(
        eventually(Duration::from_secs(15), || bao.hub.live_tokens().is_empty()),
        "the token of a request nobody waits for is still live"
    );
    let leases = bao.bao(&[
        "list",
        "sys/leases/lookup/dockerhub/token/hoeg/my-organization/",
    ]);
    assert!(
        !leases.unwrap().status.success(),
        "OpenBao made no lease for it"
    );
}

/// Lines of OpenBao's log that the plugin logged at ERROR and that name `text`.
fn plugin_errors_naming(bao: &OpenBao, text: &str) -> Vec<String> {
    bao.server_log()
        .lines()
        .filter(|line| line.contains("[ERROR]") && line.contains(text))
        .map(str::to_string)
        .collect()
}

/// An unmount that cannot settle a pending creation within `--unmount-wait`: OpenBao removes
/// the mount all the same (a plugin cannot refuse), and the plugin's ERROR names the label
/// of the token that may be left, whether Docker Hub could not be asked or does not list it
/// yet.
#[test]
fn an_unmount_that_cannot_settle_in_time_names_the_tokens_left() {
    let bao = start();
    register(&bao, "dockerhub-impatient", "--unmount-wait=3s");
    let enable = || {
        bao.bao_ok(&[
            "secrets",
            "enable",
            "-path=impatient",
            "dockerhub-impatient",
        ])
        .unwrap();
        bao.bao_ok(&[
            "write",
            "impatient/config/hoeg",
            "namespace=hoeg,my-organization",
            &format!("password={PASSWORD}"),
        ])
        .unwrap();
    };
    let issue_lost = || {
        let lost = bao
            .bao(&["write", "-force", "impatient/token/hoeg/my-organization"])
            .unwrap();
        assert!(!lost.status.success());
    };

    // The Hub made the token, lost the answer, and cannot be asked for its tokens.
    enable();
    lose_creation_answers(&bao.hub, 1, 1);
    issue_lost();
    let left = bao.hub.live_tokens();
    assert_eq!(left.len(), 1, "{left:?}");
    bao.bao_ok(&["secrets", "disable", "impatient"]).unwrap();
    let errors = plugin_errors_naming(&bao, &left[0].label);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("token creations still pending")),
        "{}",
        bao.server_log()
    );
    assert_eq!(bao.hub.live_tokens().len(), 1, "its Hub expiry ends it");
    assert!(left[0].expires_at.is_some(), "{left:?}");
    bao.hub.clear_faults();

    // The creation's answer was lost before the Hub made anything: the Hub lists no such
    // token, and may still make it.
    enable();
    bao.hub
        .inject(Fault::on("POST", "/v2/access-tokens", FaultKind::Drop));
    issue_lost();
    bao.bao_ok(&["secrets", "disable", "impatient"]).unwrap();
    let log = bao.server_log();
    let label = log
        .split("lists no token ")
        .nth(1)
        .and_then(|rest| rest.split([' ', ';']).next())
        .unwrap_or_else(|| panic!("no waiting for a token:\n{log}"))
        .to_string();
    let errors = plugin_errors_naming(&bao, &label);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("may still carry out token creations")),
        "{label}: {}",
        bao.server_log()
    );
}

/// A Hub slow to answer a creation: OpenBao counts a lease from when the plugin answered, the
/// engine from when it asked the Hub. The lease still ends no later than its token's expiry
/// at the Hub (here the Hub grants 2 minutes, less than the lease asked for).
#[test]
fn a_slow_creation_still_ends_its_lease_by_the_hubs_expiry() {
    let bao = start();
    configure(&bao);
    bao.hub
        .grant_expiry(fakehub::ExpiryGrant::AtMost(Duration::from_secs(120)));
    bao.hub.inject(Fault::on(
        "POST",
        "/v2/access-tokens",
        FaultKind::LatencyAfterProcessing(Duration::from_secs(3)),
    ));
    let secret = issue(&bao, &["ttl=1h"]);
    let at_hub = bao.hub.token(uuid(&secret)).unwrap();
    let hub_expiry = humantime::parse_rfc3339_weak(at_hub.expires_at.as_deref().unwrap()).unwrap();
    let lookup = bao
        .bao_json(&["lease", "lookup", lease_id(&secret)])
        .unwrap();
    let expire_time = lookup["data"]["expire_time"].as_str().unwrap();
    let lease_end = humantime::parse_rfc3339_weak(expire_time).unwrap();
    assert!(
        lease_end <= hub_expiry,
        "the lease ends at {expire_time}, the token at the Hub at {:?}",
        at_hub.expires_at
    );
}
