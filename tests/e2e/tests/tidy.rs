//! `tidy` against the Docker Hub fake, in OpenBao with the plugin and in `serve`: a mount
//! deletes the tokens it made and has no record of (records wiped by an operator, a backup
//! restored), and never a token of another mount or host sharing the account, or one made by
//! hand.

use dockerhub_secrets_e2e::openbao::OpenBao;
use dockerhub_secrets_e2e::serve::Serve;
use dockerhub_secrets_e2e::{PASSWORD, hub_config, uuid};
use fakehub::{Config, FakeHub};
use serde_json::Value;
use std::time::Duration;

/// The mount tag a token label made by the engine ends in (see `names::token_label`).
fn tag(label: &str) -> &str {
    let suffix = label.rsplit(':').next().unwrap();
    assert_eq!(suffix.len(), 16, "{label}");
    &suffix[..8]
}

fn issue(cli: &dockerhub_secrets_e2e::cli::BaoCli, mount: &str) -> Value {
    cli.bao_json(&["write", "-force", &format!("{mount}/token/hoeg/hoeg")])
        .unwrap()
}

fn tidy(cli: &dockerhub_secrets_e2e::cli::BaoCli, mount: &str) -> Value {
    cli.bao_json(&["write", "-force", &format!("{mount}/tidy")])
        .unwrap()["data"]
        .clone()
}

#[test]
fn in_openbao_a_mount_deletes_only_its_own_unrecorded_tokens() {
    let bao = OpenBao::start(PASSWORD).unwrap();
    bao.bao_ok(&["secrets", "enable", "-path=dockerhub2", "dockerhub-secrets"])
        .unwrap();
    for mount in ["dockerhub", "dockerhub2"] {
        bao.bao_ok(&[
            "write",
            &format!("{mount}/config/hoeg"),
            "namespace=hoeg",
            &format!("password={PASSWORD}"),
        ])
        .unwrap();
    }
    let kept = issue(&bao, "dockerhub");
    let wiped = issue(&bao, "dockerhub");
    let other_mount = issue(&bao, "dockerhub2");
    bao.hub.churn("hoeg", 0, 1);
    let label = |secret: &Value| bao.hub.token(uuid(secret)).unwrap().label;
    assert_eq!(tag(&label(&kept)), tag(&label(&wiped)));
    assert_ne!(
        tag(&label(&kept)),
        tag(&label(&other_mount)),
        "each mount marks its tokens with its own tag"
    );

    // An operator wipes a record of the first mount (sys/raw), and reloads the plugin, as the
    // README says to.
    let mounts = bao.bao_json(&["secrets", "list"]).unwrap();
    let mount_uuid = mounts["dockerhub/"]["uuid"].as_str().unwrap();
    bao.bao_ok(&[
        "delete",
        &format!("sys/raw/logical/{mount_uuid}/token/{}", uuid(&wiped)),
    ])
    .unwrap();
    bao.bao_ok(&["plugin", "reload", "-mounts=dockerhub"])
        .unwrap();

    // Too young yet: a creation may still be on its way to its record.
    let counts = tidy(&bao, "dockerhub");
    assert_eq!(counts["deleted"], 0, "{counts}");
    assert!(bao.hub.token(uuid(&wiped)).is_some());
    // ...so that this test need not wait ten minutes, the Hub's clock says it is older.
    bao.hub.age_tokens(Duration::from_secs(11 * 60));
    let counts = tidy(&bao, "dockerhub");
    assert_eq!(
        counts,
        serde_json::json!({"seen": 4, "kept": 1, "deleted": 1, "failed": 0, "others": 2,
                           "listings_failed": 0}),
    );
    assert!(
        bao.hub.token(uuid(&wiped)).is_none(),
        "the unrecorded token"
    );
    assert!(bao.hub.token(uuid(&kept)).is_some(), "the recorded one");
    assert!(
        bao.hub.token(uuid(&other_mount)).is_some(),
        "the other mount's"
    );
    assert_eq!(bao.hub.live_tokens().len(), 3, "and the hand-made one");

    // The plugin takes OpenBao's id of the mount; it keeps none of its own.
    assert!(
        !bao.server_log().contains("made this mount's id"),
        "the engine made an id although OpenBao gives one"
    );
}

#[test]
fn in_serve_a_restored_backup_is_reconciled_and_another_host_is_left_alone() {
    let hub = FakeHub::start(hub_config(PASSWORD)).unwrap();
    let hub_url = hub.url();
    let mut serve = Serve::start(hub, &[]).unwrap();
    serve.write_seed_config(PASSWORD).unwrap();
    let kept = issue(&serve, "dockerhub");

    // A second host with its own storage, sharing the account.
    let other = Serve::start(
        FakeHub::start(Config::default()).unwrap(),
        &["--hub-url", &hub_url],
    )
    .unwrap();
    other.write_seed_config(PASSWORD).unwrap();
    let other_host = issue(&other, "dockerhub");

    // A backup of the first host's storage, then a token it issues, then the backup restored.
    serve.stop();
    let data = serve.dir.join("data");
    let backup = serve.dir.join("data.backup");
    copy_dir(&data, &backup);
    serve.spawn().unwrap();
    let after_backup = issue(&serve, "dockerhub");
    serve.stop();
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::rename(&backup, &data).unwrap();
    serve.spawn().unwrap();

    serve.hub.age_tokens(Duration::from_secs(11 * 60));
    let counts = tidy(&serve, "dockerhub");
    assert_eq!(
        counts,
        serde_json::json!({"seen": 3, "kept": 1, "deleted": 1, "failed": 0, "others": 1,
                           "listings_failed": 0}),
    );
    assert!(serve.hub.token(uuid(&after_backup)).is_none());
    assert!(serve.hub.token(uuid(&kept)).is_some());
    assert!(serve.hub.token(uuid(&other_host)).is_some());
    // serve has no mount id of its own to give: the engine made one, kept in its storage.
    assert!(serve.log().contains("made this mount's id"));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
