//! Organization access tokens (`roles/` and `creds/`) in OpenBao with the plugin and in
//! `serve`, driven with the real `bao` CLI against the Docker Hub fake: one pipeline gets
//! pull-only access to one repository (the README's walk-through), the token's resources at
//! the Hub, `docker_config` logging in as the organization, renewal, revocation and expiry
//! deleting the token, the organization's limit of 10 access tokens (100 on Business), expired
//! and deactivated ones counted until deleted, Docker Hub's own refusal in the same words, and
//! `path-help` on the new paths.

use dockerhub_secrets_e2e::cli::BaoCli;
use dockerhub_secrets_e2e::openbao::{OpenBao, eventually};
use dockerhub_secrets_e2e::serve::{Serve, sha256_hex};
use dockerhub_secrets_e2e::{ORGANIZATION, PASSWORD, docker_login, hub_config, lease_id};
use fakehub::{FakeHub, OrgTokenResource};
use serde_json::Value;
use std::time::Duration;

/// The pipeline's policy, as the README shows it: its role's credentials, and ending its
/// own leases.
const POLICY: &str = r#"path "dockerhub/creds/app-pull" {
  capabilities = ["create", "update"]
}
path "sys/leases/revoke/dockerhub/creds/app-pull/*" {
  capabilities = ["update"]
}
"#;
const SERVE_PIPELINE_TOKEN: &str = "hvs.app-pull-pipeline-for-tests";

fn openbao() -> (OpenBao, String) {
    let bao = OpenBao::start(PASSWORD).unwrap();
    bao.bao_stdin(&["policy", "write", "app-pull", "-"], POLICY)
        .unwrap();
    let created = bao
        .bao_json(&[
            "token",
            "create",
            "-policy=app-pull",
            "-display-name=pipeline",
        ])
        .unwrap();
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    (bao, token)
}

fn serve() -> Serve {
    let extra = format!(
        "\ntoken \"pipeline\" {{\n  sha256   = \"{}\"\n  policies = [\"app-pull\"]\n}}\n\n\
         policy \"app-pull\" {{\n{POLICY}}}\n",
        sha256_hex(SERVE_PIPELINE_TOKEN)
    );
    let hub = FakeHub::start(hub_config(PASSWORD)).unwrap();
    Serve::start_with_tokens(hub, &[], &extra).unwrap()
}

/// The operator's part: the account and the role.
fn configure(cli: &BaoCli, role: &[&str]) {
    cli.write_seed_config(PASSWORD).unwrap();
    let mut command = vec![
        "write",
        "dockerhub/roles/app-pull",
        "account=hoeg",
        "organization=my-organization",
        "pull_repositories=app",
    ];
    command.extend(role);
    cli.bao_ok(&command).unwrap();
}

fn one_pipeline_pulls_one_repository(cli: &BaoCli, hub: &FakeHub, pipeline: &str) {
    configure(cli, &[]);
    assert_eq!(
        cli.bao_ok(&["list", "dockerhub/roles"]).unwrap(),
        "Keys\n----\napp-pull\n"
    );
    let role = cli.bao_json(&["read", "dockerhub/roles/app-pull"]).unwrap();
    assert_eq!(
        role["data"]["pull_repositories"],
        serde_json::json!(["my-organization/app"])
    );

    let secret = cli
        .bao_json_as(pipeline, &["write", "-force", "dockerhub/creds/app-pull"])
        .unwrap();
    let data = &secret["data"];
    assert_eq!(secret["lease_duration"], 300, "{secret}");
    assert_eq!(secret["renewable"], true);
    assert_eq!(data["username"], ORGANIZATION);
    let id = data["id"].as_str().unwrap();
    let at_hub = hub.org_token(id).expect("the token is at the Hub");
    assert_eq!(
        at_hub.resources,
        [OrgTokenResource::repo(
            "my-organization/app",
            &["scope-image-pull"]
        )],
        "pull-only, one repository"
    );
    assert!(
        at_hub.label.starts_with("dockerhub-secrets:") && at_hub.label.contains("pipeline"),
        "the label names the requester: {}",
        at_hub.label
    );
    let (username, token) = docker_login(hub, data["docker_config"].as_str().unwrap());
    assert_eq!(
        (username.as_str(), token.as_str()),
        (ORGANIZATION, data["token"].as_str().unwrap())
    );
    assert!(hub.live_tokens().is_empty(), "no personal token was made");

    // The policy gives the pipeline this role's credentials and nothing else.
    for path in [
        "dockerhub/token/hoeg/my-organization",
        "dockerhub/roles/app-pull",
    ] {
        let denied = cli.bao_as(pipeline, &["write", "-force", path]).unwrap();
        let stderr = String::from_utf8_lossy(&denied.stderr);
        assert!(
            !denied.status.success() && stderr.contains("permission denied"),
            "{path}: {stderr}"
        );
    }

    let renewed = cli
        .bao_json(&["lease", "renew", "-increment=10m", lease_id(&secret)])
        .unwrap();
    assert_eq!(renewed["lease_duration"], 600, "{renewed}");

    cli.bao_ok(&["lease", "revoke", lease_id(&secret)]).unwrap();
    assert!(
        eventually(Duration::from_secs(30), || hub.org_token(id).is_none()),
        "deleted at the Hub, not deactivated"
    );
}

/// `path-help` on the new paths prints their help (fields with their types) and never runs
/// the path: no token is made.
fn path_help_documents_and_issues_nothing(cli: &BaoCli, hub: &FakeHub, pipeline: &str) {
    configure(cli, &[]);
    let help = cli
        .bao_ok(&["path-help", "dockerhub/roles/app-pull"])
        .unwrap();
    for field in [
        "pull_repositories (comma-string-slice)",
        "max_live_tokens (int)",
        "organization_token_limit (int)",
    ] {
        assert!(help.contains(field), "{field}: {help}");
    }
    let help = cli
        .bao_ok(&["path-help", "dockerhub/creds/app-pull"])
        .unwrap();
    assert!(help.contains("organization access token"), "{help}");
    for path in [
        "dockerhub/creds/app-pull",
        "dockerhub/token/hoeg/my-organization",
        "dockerhub/tidy",
    ] {
        let help = cli.bao_ok(&["path-help", path]).unwrap();
        assert!(help.contains("## DESCRIPTION"), "{path}: {help}");
        // Any valid token may read help, as in OpenBao.
        let output = cli.bao_as(pipeline, &["path-help", path]).unwrap();
        assert!(output.status.success(), "{path}: {output:?}");
    }
    assert!(
        hub.org_tokens(ORGANIZATION).is_empty() && hub.tokens().is_empty(),
        "path-help made a token"
    );
}

/// Twelve requests at once for three free places of the organization (a limit of 4, one token
/// made by hand), and twelve at once against an account quota of 3: never more than the places
/// between them, each refusal a 400 naming the limit.
fn racing_requests_never_pass_the_limits(cli: &BaoCli, hub: &FakeHub) {
    configure(cli, &["organization_token_limit=4"]);
    hub.create_org_token_by_hand(
        ORGANIZATION,
        "by-hand",
        "",
        vec![OrgTokenResource::repo(
            "my-organization/base",
            &["scope-image-pull"],
        )],
        None,
    );
    cli.bao_ok(&["write", "dockerhub/config/hoeg", "max_live_tokens=3"])
        .unwrap();
    for (path, limit_words, places) in [
        ("dockerhub/creds/app-pull", "access tokens", 3),
        ("dockerhub/token/hoeg/hoeg", "max_live_tokens=3", 3),
    ] {
        let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..12)
                .map(|_| scope.spawn(|| cli.bao(&["write", "-force", path]).unwrap()))
                .collect();
            runs.into_iter().map(|run| run.join().unwrap()).collect()
        });
        let issued = outputs.iter().filter(|o| o.status.success()).count();
        assert!(issued <= places, "{path}: {issued} issued");
        for refused in outputs.iter().filter(|o| !o.status.success()) {
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(
                stderr.contains("Code: 400") && stderr.contains(limit_words),
                "{path}: {stderr}"
            );
        }
        // Racing requests may all have been refused (the safe side); once they are settled,
        // the free places are there, one request at a time.
        for _ in issued..places {
            cli.bao_json(&["write", "-force", path]).unwrap();
        }
        let refused = cli.bao(&["write", "-force", path]).unwrap();
        assert!(!refused.status.success(), "{path}: full now");
    }
    assert!(hub.org_tokens(ORGANIZATION).len() <= 4);
    assert!(hub.live_tokens().len() <= 3);
}

fn expiry_deletes_the_token(cli: &BaoCli, hub: &FakeHub) {
    configure(cli, &["ttl=2s"]);
    let secret = cli
        .bao_json(&["write", "-force", "dockerhub/creds/app-pull"])
        .unwrap();
    assert_eq!(secret["lease_duration"], 2);
    let id = secret["data"]["id"].as_str().unwrap().to_string();
    assert!(hub.org_token(&id).is_some());
    assert!(
        eventually(Duration::from_secs(60), || hub.org_token(&id).is_none()),
        "the lease's expiry deleted the token"
    );
}

fn the_organizations_limit_counts_expired_and_deactivated_tokens(cli: &BaoCli, hub: &FakeHub) {
    configure(cli, &[]);
    let mut by_hand = Vec::new();
    for n in 0..9 {
        let token = hub.create_org_token_by_hand(
            ORGANIZATION,
            &format!("by-hand-{n}"),
            "",
            vec![OrgTokenResource::repo(
                "my-organization/base",
                &["scope-image-pull"],
            )],
            None,
        );
        by_hand.push(token.id);
    }
    assert!(hub.expire_org_token(&by_hand[0]));
    assert!(hub.deactivate_org_token(&by_hand[1]));
    let tenth = cli
        .bao_json(&["write", "-force", "dockerhub/creds/app-pull"])
        .unwrap();

    let refused = cli
        .bao(&["write", "-force", "dockerhub/creds/app-pull"])
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("Code: 400")
            && stderr.contains("organization my-organization holds 10 of 10 access tokens"),
        "{stderr}"
    );
    assert_eq!(
        hub.org_tokens(ORGANIZATION).len(),
        10,
        "nothing was created"
    );

    // Revoking the engine's own token frees a place, as deleting the expired one would.
    cli.bao_ok(&["lease", "revoke", lease_id(&tenth)]).unwrap();
    let tenth_id = tenth["data"]["id"].as_str().unwrap().to_string();
    assert!(eventually(Duration::from_secs(30), || hub
        .org_token(&tenth_id)
        .is_none()));
    let again: Value = cli
        .bao_json(&["write", "-force", "dockerhub/creds/app-pull"])
        .unwrap();
    assert!(again["data"]["token"].is_string(), "{again}");

    // A role that allows more than the Team plan: Docker Hub's own refusal, in the same words.
    cli.bao_ok(&[
        "write",
        "dockerhub/roles/app-pull",
        "organization_token_limit=100",
    ])
    .unwrap();
    let refused = cli
        .bao(&["write", "-force", "dockerhub/creds/app-pull"])
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("Code: 400")
            && stderr.contains(
                "organization my-organization holds 10 of 10 access tokens, as many as Docker \
                 Hub allows it"
            ),
        "{stderr}"
    );

    // A Business organization holds 100.
    cli.bao_ok(&[
        "write",
        "dockerhub/config/hoeg",
        "namespace=hoeg,my-organization,big-organization",
    ])
    .unwrap();
    cli.bao_ok(&[
        "write",
        "dockerhub/roles/big",
        "account=hoeg",
        "organization=big-organization",
        "pull_repositories=app",
        "organization_token_limit=100",
    ])
    .unwrap();
    for n in 0..99 {
        hub.create_org_token_by_hand(
            "big-organization",
            &format!("by-hand-{n}"),
            "",
            vec![OrgTokenResource::repo(
                "big-organization/app",
                &["scope-image-pull"],
            )],
            None,
        );
    }
    cli.bao_json(&["write", "-force", "dockerhub/creds/big"])
        .unwrap();
    let refused = cli
        .bao(&["write", "-force", "dockerhub/creds/big"])
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("organization big-organization holds 100 of 100 access tokens"),
        "{stderr}"
    );
}

mod in_openbao {
    use super::*;

    #[test]
    fn one_pipeline_pulls_one_repository() {
        let (bao, pipeline) = openbao();
        super::one_pipeline_pulls_one_repository(&bao, &bao.hub, &pipeline);
        assert!(
            !bao.server_log().contains(PASSWORD),
            "no password in OpenBao's log"
        );
    }

    #[test]
    fn path_help_documents_and_issues_nothing() {
        let (bao, pipeline) = openbao();
        super::path_help_documents_and_issues_nothing(&bao, &bao.hub, &pipeline);
    }

    #[test]
    fn racing_requests_never_pass_the_limits() {
        let (bao, _) = openbao();
        super::racing_requests_never_pass_the_limits(&bao, &bao.hub);
    }

    #[test]
    fn expiry_deletes_the_token() {
        let (bao, _) = openbao();
        super::expiry_deletes_the_token(&bao, &bao.hub);
    }

    #[test]
    fn the_organizations_limit_counts_expired_and_deactivated_tokens() {
        let (bao, _) = openbao();
        super::the_organizations_limit_counts_expired_and_deactivated_tokens(&bao, &bao.hub);
    }
}

mod in_serve {
    use super::*;

    #[test]
    fn one_pipeline_pulls_one_repository() {
        let serve = serve();
        super::one_pipeline_pulls_one_repository(&serve, &serve.hub, SERVE_PIPELINE_TOKEN);
    }

    #[test]
    fn path_help_documents_and_issues_nothing() {
        let serve = serve();
        super::path_help_documents_and_issues_nothing(&serve, &serve.hub, SERVE_PIPELINE_TOKEN);
    }

    #[test]
    fn racing_requests_never_pass_the_limits() {
        let serve = serve();
        super::racing_requests_never_pass_the_limits(&serve, &serve.hub);
    }

    #[test]
    fn expiry_deletes_the_token() {
        let serve = serve();
        super::expiry_deletes_the_token(&serve, &serve.hub);
    }

    #[test]
    fn the_organizations_limit_counts_expired_and_deactivated_tokens() {
        let serve = serve();
        super::the_organizations_limit_counts_expired_and_deactivated_tokens(&serve, &serve.hub);
    }
}
