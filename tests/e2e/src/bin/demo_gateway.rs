//! `just demo-gateway`: the seed's session against the composed gateway component in
//! `wasmtime serve`, its state in a local etcd, driven with the real `bao` CLI against a local
//! Docker Hub fake. Shows the token appearing at the fake and disappearing when its lease is
//! revoked, then stops everything it started.

use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::gateway::{Etcd, Gateway, Kind};
use dockerhub_secrets_e2e::serve::CI_TOKEN;
use fakehub::{Config, FakeHub};

/// Echo a command as a user would type it, then run it and show what `bao` printed.
fn run(gateway: &Gateway, token: &str, shown: &str, args: &[&str]) -> String {
    println!("$ {shown}");
    let output = gateway.bao_as(token, args).expect("run bao");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    println!();
    stdout
}

fn show_hub(hub: &FakeHub, when: &str) {
    let tokens = hub.live_tokens();
    println!("# Docker Hub fake, {when}: {} live token(s)", tokens.len());
    for t in tokens {
        println!("#   {}  {}  {:?}", t.uuid, t.label, t.scopes);
    }
    println!();
}

fn main() -> anyhow::Result<()> {
    let hub = FakeHub::start(Config::default().account("hoeg", PASSWORD, None))?;
    let etcd = Etcd::start()?;
    let gateway = Gateway::start(Kind::Wasmtime, &hub, &etcd, "demo/")?;
    println!("# Docker Hub fake: {}", hub.url());
    println!("# etcd:            {}", etcd.url);
    println!(
        "# wasmtime serve:  {} (target/gateway/dockerhub-secrets-gateway-etcd.wasm, engine at dockerhub/)\n",
        gateway.addr
    );
    let root = dockerhub_secrets_e2e::serve::ROOT_TOKEN;
    run(
        &gateway,
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
        &gateway,
        root,
        "bao read dockerhub/config/hoeg",
        &["read", "dockerhub/config/hoeg"],
    );
    let token = run(
        &gateway,
        CI_TOKEN,
        "BAO_TOKEN=<ci-release token> bao write dockerhub/token/hoeg/my-organization label=release-build",
        &[
            "write",
            "dockerhub/token/hoeg/my-organization",
            "label=release-build",
        ],
    );
    show_hub(&hub, "after the write");
    let lease = dockerhub_secrets_e2e::row(&token, "lease_id")
        .ok_or_else(|| anyhow::anyhow!("no lease_id in the answer"))?
        .to_string();
    run(
        &gateway,
        root,
        &format!("bao lease revoke {lease}"),
        &["lease", "revoke", &lease],
    );
    show_hub(&hub, "after the revoke");
    Ok(())
}
