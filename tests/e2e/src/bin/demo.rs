//! `just demo`: the seed's session in a real OpenBao dev server with the plugin, driven with
//! the real `bao` CLI, against a local Docker Hub fake. Shows the token appearing at the
//! fake and disappearing when its lease is revoked, then stops everything it started.

use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::openbao::{OpenBao, eventually};
use std::time::Duration;

const POLICY: &str = r#"path "dockerhub/token/hoeg/my-organization" {
  capabilities = ["create", "update"]
}
"#;

/// Echo a command as a user would type it, then run it and show what `bao` printed.
fn run(bao: &OpenBao, token: &str, shown: &str, args: &[&str]) -> String {
    println!("$ {shown}");
    let output = bao.bao_as(token, args).expect("run bao");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !stdout.is_empty() && !stdout.ends_with('\n') {
        println!();
    }
    println!();
    stdout
}

fn show_hub(bao: &OpenBao, when: &str) {
    let tokens = bao.hub.live_tokens();
    println!("# Docker Hub fake, {when}: {} live token(s)", tokens.len());
    for t in tokens {
        println!(
            "#   {}  {}  {:?}  expires {}",
            t.uuid,
            t.label,
            t.scopes,
            t.expires_at.unwrap_or_default()
        );
    }
    println!();
}

fn main() -> anyhow::Result<()> {
    let bao = OpenBao::start(PASSWORD)?;
    println!("# Docker Hub fake:   {}", bao.hub.url());
    println!(
        "# OpenBao dev server: {} (plugin dockerhub-secrets mounted at dockerhub/)\n",
        bao.addr
    );
    let root = dockerhub_secrets_e2e::openbao::ROOT_TOKEN;

    run(
        &bao,
        root,
        "bao write dockerhub/config/hoeg namespace=hoeg,my-organization password=...",
        &[
            "write",
            "dockerhub/config/hoeg",
            "namespace=hoeg,my-organization",
            &format!("password={PASSWORD}"),
        ],
    );
    run(
        &bao,
        root,
        "bao read dockerhub/config/hoeg",
        &["read", "dockerhub/config/hoeg"],
    );

    println!("$ bao policy write ci-release - <<EOF\n{POLICY}EOF");
    print!(
        "{}",
        bao.bao_stdin(&["policy", "write", "ci-release", "-"], POLICY)?
    );
    println!();
    let ci = run(
        &bao,
        root,
        "bao token create -policy=ci-release -display-name=ci-runner -field=token",
        &[
            "token",
            "create",
            "-policy=ci-release",
            "-display-name=ci-runner",
            "-field=token",
        ],
    );
    let ci = ci.trim();

    println!("# As the CI job, with BAO_TOKEN={ci}:");
    let issued = run(
        &bao,
        ci,
        "bao write dockerhub/token/hoeg/my-organization label=release-build",
        &[
            "write",
            "dockerhub/token/hoeg/my-organization",
            "label=release-build",
        ],
    );
    show_hub(&bao, "after the token write");

    run(
        &bao,
        ci,
        "bao write dockerhub/token/hoeg/hoeg label=release-build    # not in the policy",
        &["write", "dockerhub/token/hoeg/hoeg", "label=release-build"],
    );

    let lease_id = issued
        .lines()
        .find_map(|l| l.strip_prefix("lease_id"))
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    run(
        &bao,
        root,
        &format!("bao lease revoke {lease_id}"),
        &["lease", "revoke", &lease_id],
    );
    eventually(Duration::from_secs(30), || bao.hub.live_tokens().is_empty());
    show_hub(&bao, "after the lease revoke");

    println!("# Stopping OpenBao and the Docker Hub fake.");
    Ok(())
}
