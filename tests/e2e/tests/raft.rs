//! The plugin in a three-node OpenBao raft cluster: standbys answer reads themselves and
//! forward writes, so what a standby's plugin reads must follow the leader's writes; and a
//! leader killed outright must lose no lease and leave no plugin process behind.

use dockerhub_secrets_e2e::openbao::eventually;
use dockerhub_secrets_e2e::raft::{Node, RaftCluster};
use dockerhub_secrets_e2e::{PASSWORD, uuid};
use fakehub::{Config, FakeHub};
use std::time::{Duration, Instant};

fn start() -> RaftCluster {
    let hub = FakeHub::start(
        Config::default()
            .account("hoeg", PASSWORD, None)
            .account("other", PASSWORD, None),
    )
    .expect("start the Hub fake");
    RaftCluster::start(hub).expect("start a three-node raft cluster")
}

/// The `ttl` a node's plugin reads for `account`, or the status when there is none.
fn ttl_on(node: &Node, account: &str) -> Result<String, u16> {
    match node.get(&format!("dockerhub/config/{account}")) {
        Ok((200, body)) => Ok(body["data"]["ttl"].as_str().unwrap_or_default().to_string()),
        Ok((status, _)) => Err(status),
        Err(_) => Err(0),
    }
}

#[test]
fn standbys_follow_the_leaders_config_and_forward_token_requests() {
    let cluster = start();
    let (leader, standbys) = (&cluster.nodes[0], &cluster.nodes[1..]);
    leader.write_seed_config(PASSWORD).unwrap();
    for standby in standbys {
        // Each standby's plugin reads the config, and the missing one, before they change.
        assert!(
            eventually(Duration::from_secs(10), || ttl_on(standby, "hoeg")
                == Ok("5m0s".into())),
            "{}: {:?}",
            standby.name,
            ttl_on(standby, "hoeg")
        );
        assert_eq!(ttl_on(standby, "other"), Err(404));
    }

    leader
        .bao_ok(&[
            "write",
            "dockerhub/config/hoeg",
            "ttl=7m",
            "namespace=hoeg,my-organization,newcomers",
        ])
        .unwrap();
    leader
        .bao_ok(&[
            "write",
            "dockerhub/config/other",
            "namespace=other",
            &format!("password={PASSWORD}"),
        ])
        .unwrap();
    let written = Instant::now();
    for standby in standbys {
        assert!(
            eventually(Duration::from_secs(1), || ttl_on(standby, "hoeg")
                == Ok("7m0s".into())
                && ttl_on(standby, "other") == Ok("5m0s".into())),
            "{} still answers the old config {:.1?} after the write: {:?} {:?}",
            standby.name,
            written.elapsed(),
            ttl_on(standby, "hoeg"),
            ttl_on(standby, "other")
        );
    }

    // Token requests sent to a standby: the newly allowed namespace, the newly configured
    // account. The standby's plugin meets read-only storage and OpenBao forwards them.
    for standby in standbys {
        for path in [
            "dockerhub/token/hoeg/newcomers",
            "dockerhub/token/other/other",
        ] {
            let secret = standby
                .bao_json(&["write", "-force", path])
                .unwrap_or_else(|e| panic!("{} {path}: {e}", standby.name));
            assert!(cluster.hub.token(uuid(&secret)).is_some());
        }
        let log = standby.log();
        assert!(
            log.contains("OpenBao forwards the request to the active node"),
            "{}: the plugin met read-only storage",
            standby.name
        );
        assert!(
            !log.contains("request failed"),
            "{}: a forwarded request is no failure:\n{log}",
            standby.name
        );
    }
    assert_eq!(cluster.hub.live_tokens().len(), 4);

    // Every node's plugin hears of the unmount; only the active node's settles pending
    // creations, since a standby's storage is read-only and may lag.
    leader.bao_ok(&["secrets", "disable", "dockerhub"]).unwrap();
    assert!(cluster.hub.live_tokens().is_empty());
    assert!(
        leader
            .log()
            .contains("the mount is being disabled: every pending token creation is settled")
    );
    for standby in standbys {
        assert!(
            eventually(Duration::from_secs(5), || {
                standby.log().contains(
                "cleanup: the mount is being disabled; the active node settles its pending creations"
            )
            }),
            "{}",
            standby.name
        );
        assert!(
            !standby
                .log()
                .contains("every pending token creation is settled")
        );
    }
}

#[test]
fn a_killed_leader_loses_no_lease_and_leaves_no_plugin_behind() {
    let mut cluster = start();
    let leader = &cluster.nodes[0];
    leader.write_seed_config(PASSWORD).unwrap();
    let lease = Duration::from_secs(20);
    let mut issued = Vec::new();
    for _ in 0..5 {
        let secret = leader
            .bao_json(&["write", "dockerhub/token/hoeg/my-organization", "ttl=20s"])
            .unwrap();
        issued.push((uuid(&secret).to_string(), Instant::now()));
    }
    let plugins = leader.plugin_pids();
    assert!(!plugins.is_empty(), "the leader runs the plugin");

    cluster.nodes[0].kill();
    assert!(
        eventually(Duration::from_secs(5), || cluster
            .plugin_pids()
            .iter()
            .all(|pid| !plugins.contains(pid))),
        "the killed leader's plugin processes outlived it"
    );
    assert!(
        eventually(Duration::from_secs(30), || cluster.leader().is_some()),
        "no new leader"
    );
    let new_leader = &cluster.nodes[cluster.leader().unwrap()];
    new_leader
        .bao_ok(&["write", "dockerhub/config/hoeg", "ttl=9m"])
        .unwrap();

    // Every lease ends on time at the Hub, through the new leader's expiration manager.
    let mut gone_at = vec![None; issued.len()];
    let deadline = Instant::now() + lease + Duration::from_secs(60);
    while gone_at.iter().any(Option::is_none) && Instant::now() < deadline {
        for (i, (uuid, _)) in issued.iter().enumerate() {
            if gone_at[i].is_none() && cluster.hub.token(uuid).is_none() {
                gone_at[i] = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls = cluster.hub.calls();
    for ((uuid, at), gone) in issued.iter().zip(&gone_at) {
        let gone = gone.unwrap_or_else(|| panic!("token {uuid} outlived its lease"));
        let after = gone.duration_since(*at);
        assert!(
            after >= lease - Duration::from_secs(1) && after <= lease + Duration::from_secs(15),
            "token {uuid} deleted {after:.1?} after issue, its lease was {lease:?}"
        );
        let deletes = calls
            .iter()
            .filter(|c| c.method == "DELETE" && c.path.ends_with(uuid.as_str()))
            .count();
        assert_eq!(deletes, 1, "token {uuid} was revoked {deletes} times");
    }

    // The old leader comes back as a standby with the config written while it was down.
    cluster.restart(0).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || ttl_on(
            &cluster.nodes[0],
            "hoeg"
        ) == Ok("9m0s".into())),
        "the restarted node answers {:?}",
        ttl_on(&cluster.nodes[0], "hoeg")
    );
}
