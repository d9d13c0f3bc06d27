//! `dockerhub-secrets serve`'s leases and store, as OpenBao's expiration manager and storage
//! behave: which leases a revoke-prefix names, revoking a lease that is already gone, a failed
//! revocation retried when announced, and a store that vanished or was damaged refused at start.

use dockerhub_secrets::Storage;
use dockerhub_secrets::serve::store::{Create, KeySource, Store};
use dockerhub_secrets_e2e::openbao::eventually;
use dockerhub_secrets_e2e::serve::{ROOT_TOKEN, Serve};
use dockerhub_secrets_e2e::{PASSWORD, lease_id, uuid};
use fakehub::{Config, FakeHub, Fault, FaultKind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn configured() -> Serve {
    let hub = FakeHub::start(Config::default().account("hoeg", PASSWORD, None)).unwrap();
    let serve = Serve::start(hub, &[]).expect("start serve");
    serve.write_seed_config(PASSWORD).unwrap();
    serve
}

fn issue(serve: &Serve, namespace: &str, data: Value) -> Value {
    let (status, answer) = serve
        .http(
            "PUT",
            &format!("/v1/dockerhub/token/hoeg/{namespace}"),
            Some(ROOT_TOKEN),
            data.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    answer
}

fn live(serve: &Serve, secret: &Value) -> bool {
    serve.hub.token(uuid(secret)).is_some()
}

fn revoke_prefix(serve: &Serve, flags: &[&str], prefix: &str) {
    let mut args = vec!["lease", "revoke", "-prefix"];
    args.extend(flags);
    args.push(prefix);
    serve.bao_ok(&args).unwrap();
}

#[test]
fn revoke_prefix_names_a_whole_lease_id_or_whole_path_segments_as_openbao() {
    let serve = configured();
    let org: Vec<Value> = (0..3)
        .map(|_| issue(&serve, "my-organization", json!({})))
        .collect();
    let own = issue(&serve, "hoeg", json!({}));
    let id = lease_id(&org[0]).to_string();

    // Names nothing: a partial path segment, a partial lease id, an id with more after it.
    for prefix in [
        "dockerhub/tok",
        "dockerhub/token/hoeg/my-org",
        &id[..id.len() - 5],
        &format!("{id}/more"),
    ] {
        revoke_prefix(&serve, &["-sync"], prefix);
        assert_eq!(
            serve.hub.live_tokens().len(),
            4,
            "{prefix} revoked something"
        );
    }

    // A whole lease id names that lease and no other (OpenBao's revokePrefixCommon).
    revoke_prefix(&serve, &["-sync"], &id);
    assert!(!live(&serve, &org[0]));
    assert_eq!(serve.hub.live_tokens().len(), 3);
    // With a trailing slash too (the CLI drops it, as it does against OpenBao).
    revoke_prefix(&serve, &["-sync"], &format!("{}/", lease_id(&org[1])));
    assert!(!live(&serve, &org[1]));
    assert_eq!(serve.hub.live_tokens().len(), 2);
    // Queued (no -sync): the timer revokes it at once.
    revoke_prefix(&serve, &[], lease_id(&org[2]));
    assert!(eventually(Duration::from_secs(10), || !live(
        &serve, &org[2]
    )));
    assert!(live(&serve, &own), "another namespace's lease is kept");

    // Whole segments: the mount itself names every lease.
    let more = issue(&serve, "my-organization", json!({}));
    revoke_prefix(&serve, &["-sync"], "dockerhub");
    assert!(!live(&serve, &own) && !live(&serve, &more));
    assert!(serve.hub.live_tokens().is_empty());
}

#[test]
fn revoking_a_lease_that_expired_or_never_existed_succeeds_as_in_openbao() {
    let serve = configured();
    let short = issue(&serve, "my-organization", json!({"ttl": "1s"}));
    let id = lease_id(&short).to_string();
    assert!(
        eventually(Duration::from_secs(30), || !live(&serve, &short)
            && !serve
                .bao(&["lease", "lookup", &id])
                .unwrap()
                .status
                .success()),
        "revoked at expiry"
    );
    let never = "dockerhub/token/hoeg/my-organization/NoSuchLeaseAtAllXXXXXXXX";
    for gone in [id.as_str(), never] {
        // The README's CI recipe ends with this command; OpenBao answers success.
        let queued = serve.bao_ok(&["lease", "revoke", gone]).unwrap();
        assert_eq!(queued, "All revocation operations queued successfully!\n");
        let synced = serve.bao_ok(&["lease", "revoke", "-sync", gone]).unwrap();
        assert_eq!(synced, format!("Success! Revoked lease: {gone}\n"));
        let body = json!({"lease_id": gone, "sync": true}).to_string();
        let (status, _) = serve
            .http(
                "PUT",
                "/v1/sys/leases/revoke",
                Some(ROOT_TOKEN),
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(status, 204);

        // Renew and lookup of what is not there: OpenBao's 400s and texts.
        let body = json!({"lease_id": gone}).to_string();
        let (status, answer) = serve
            .http(
                "PUT",
                "/v1/sys/leases/renew",
                Some(ROOT_TOKEN),
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(
            (status, answer),
            (400, json!({"errors": ["lease not found"]}))
        );
        let (status, answer) = serve
            .http(
                "PUT",
                "/v1/sys/leases/lookup",
                Some(ROOT_TOKEN),
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(
            (status, answer),
            (400, json!({"errors": ["invalid lease"]}))
        );
        let renew = serve.bao(&["lease", "renew", gone]).unwrap();
        assert_eq!(renew.status.code(), Some(2));
    }
}

#[test]
fn renewing_a_lease_whose_revocation_is_pending_says_it_expired() {
    let serve = configured();
    serve
        .hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(500)).times(1000));
    let short = issue(&serve, "my-organization", json!({"ttl": "1s"}));
    let id = lease_id(&short).to_string();
    assert!(eventually(Duration::from_secs(20), || {
        serve
            .bao_json(&["lease", "lookup", &id])
            .is_ok_and(|l| l["data"]["revocation_attempts"].as_u64() >= Some(1))
    }));
    let body = json!({"lease_id": id}).to_string();
    let (status, answer) = serve
        .http(
            "PUT",
            "/v1/sys/leases/renew",
            Some(ROOT_TOKEN),
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(
        (status, answer),
        (400, json!({"errors": ["lease expired"]}))
    );
    assert!(live(&serve, &short), "the Hub refused every DELETE so far");
}

/// A failed `lease revoke -sync` announces its retry a second later; the retry must come
/// then, not at the lease's own expiry an hour away. The same for `revoke-prefix -sync`.
#[test]
fn a_failed_sync_revoke_is_retried_when_announced_not_at_expiry() {
    let serve = configured();
    for prefix in [false, true] {
        let secret = issue(&serve, "my-organization", json!({"ttl": "1h"}));
        let id = lease_id(&secret).to_string();
        // The engine sends a failing DELETE up to 4 times in one call: 4 failures fail it.
        serve
            .hub
            .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(500)).times(4));
        let args: &[&str] = if prefix {
            &["lease", "revoke", "-sync", "-prefix", &id]
        } else {
            &["lease", "revoke", "-sync", &id]
        };
        let failed = Instant::now();
        let output = serve.bao(args).unwrap();
        assert_eq!(output.status.code(), Some(2), "the Hub answered 500");
        let lookup = serve.bao_json(&["lease", "lookup", &id]).unwrap();
        assert_eq!(lookup["data"]["revocation_attempts"], 1, "{lookup}");
        assert!(
            eventually(Duration::from_secs(10), || !live(&serve, &secret)),
            "still live {:?} after the failure (prefix: {prefix})",
            failed.elapsed()
        );
        assert!(failed.elapsed() < Duration::from_secs(5));
        assert!(
            !serve
                .bao(&["lease", "lookup", &id])
                .unwrap()
                .status
                .success()
        );
    }
}

/// `lease revoke -sync` of a lease the timer is revoking waits for that revocation: its
/// success means the token is gone at the Hub, not that someone else is on it.
#[test]
fn a_sync_revoke_waits_for_a_revocation_under_way() {
    let serve = configured();
    serve.hub.inject(Fault::on(
        "DELETE",
        "/v2/access-tokens/",
        FaultKind::Latency(Duration::from_secs(3)),
    ));
    let short = issue(&serve, "my-organization", json!({"ttl": "1s"}));
    assert!(eventually(Duration::from_secs(10), || {
        serve
            .hub
            .calls()
            .iter()
            .any(|c| c.method == "DELETE" && c.path.ends_with(uuid(&short)))
    }));
    assert!(
        live(&serve, &short),
        "the timer's DELETE is still at the Hub"
    );
    serve
        .bao_ok(&["lease", "revoke", "-sync", lease_id(&short)])
        .unwrap();
    assert!(!live(&serve, &short), "gone when the revoke succeeded");
}

/// A retry scheduled before a restart comes at its time after the restart, not at the
/// lease's expiry.
#[test]
fn a_pending_retry_survives_a_restart() {
    let mut serve = configured();
    let secret = issue(&serve, "my-organization", json!({"ttl": "1h"}));
    let id = lease_id(&secret).to_string();
    serve
        .hub
        .inject(Fault::on("DELETE", "/v2/access-tokens/", FaultKind::Status(500)).times(4));
    let output = serve.bao(&["lease", "revoke", "-sync", &id]).unwrap();
    assert_eq!(output.status.code(), Some(2));
    serve.kill();
    assert!(live(&serve, &secret));
    serve.spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(15), || !live(&serve, &secret)),
        "{}",
        serve.log()
    );
}

fn data(serve: &Serve) -> std::path::PathBuf {
    serve.dir.join("data")
}

fn db(serve: &Serve) -> std::path::PathBuf {
    data(serve).join("store.redb")
}

/// Start the server on its damaged store: it must exit 1 with `expected` in its message and
/// no panic report.
fn assert_refused(serve: &Serve, extra: &[&str], expected: &str) {
    let (status, stderr) = serve.refused(extra).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

/// The stopped server's store, opened as the server opens it.
fn with_store<T>(serve: &Serve, job: impl AsyncFnOnce(&Store) -> T) -> T {
    let store = Store::open(
        &data(serve),
        KeySource::File(data(serve).join("key")),
        Create::FirstStart,
    )
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(job(&store))
}

#[test]
fn a_store_that_vanished_is_refused_until_init_and_the_old_one_still_works() {
    let mut serve = configured();
    let secret = issue(&serve, "my-organization", json!({"ttl": "1h"}));
    assert_eq!(serve.stop().map(|s| s.success()), Some(true));
    let saved = std::fs::read(db(&serve)).unwrap();

    let vanished = "is missing or empty, but the key file";
    std::fs::write(db(&serve), b"").unwrap();
    assert_refused(&serve, &[], vanished);
    std::fs::remove_file(db(&serve)).unwrap();
    assert_refused(&serve, &[], vanished);
    assert_refused(&serve, &[], "start once with --init");
    assert!(!db(&serve).exists(), "a refusal creates nothing");

    // The operator chooses to start over: a new, empty store.
    serve.spawn_with(&["--init"]).unwrap();
    let (status, _) = serve
        .http("GET", "/v1/dockerhub/config/hoeg", Some(ROOT_TOKEN), b"")
        .unwrap();
    assert_eq!(status, 404, "the new store holds no config");
    serve.stop();
    assert_refused(
        &serve,
        &["--init"],
        "already holds one; start without --init",
    );

    // The old store put back: its lease is there and revocable.
    std::fs::write(db(&serve), saved).unwrap();
    assert_refused(&serve, &["--init"], "already holds one");
    serve.spawn().unwrap();
    serve
        .bao_ok(&["lease", "revoke", "-sync", lease_id(&secret)])
        .unwrap();
    assert!(!live(&serve, &secret));
}

#[test]
fn a_damaged_store_is_refused_with_a_message_never_a_panic() {
    let mut serve = configured();
    let secret = issue(&serve, "my-organization", json!({"ttl": "1h"}));
    serve.stop();
    let good = std::fs::read(db(&serve)).unwrap();
    let restore = || std::fs::write(db(&serve), &good).unwrap();

    // Truncated, random bytes.
    std::fs::write(db(&serve), &good[..good.len() / 2]).unwrap();
    assert_refused(&serve, &[], "is damaged (DB corrupted: File truncated");
    let noise: Vec<u8> = (0..good.len()).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(db(&serve), noise).unwrap();
    assert_refused(&serve, &[], "Not a redb database");

    // Overwritten bytes in every page: each page in use is refused, none opens in part.
    let mut refused = 0;
    for page in (4096..good.len()).step_by(4096) {
        let mut bad = good.clone();
        bad[page + 100..page + 108].copy_from_slice(&[0xff; 8]);
        std::fs::write(db(&serve), &bad).unwrap();
        let (status, stderr) = serve.refused(&[]).unwrap();
        assert!(!stderr.contains("panicked"), "page {page}: {stderr}");
        if status.code() == Some(1) {
            assert!(stderr.contains("is damaged"), "page {page}: {stderr}");
            refused += 1;
        } else {
            // A page not in use: the server started, and was stopped (its SIGTERM may
            // come before the server listens for it).
            use std::os::unix::process::ExitStatusExt;
            assert!(
                status.success() || status.signal() == Some(libc::SIGTERM),
                "page {page}: {status:?} {stderr}"
            );
        }
    }
    assert!(refused > 0);
    restore();

    // Values the server cannot use: a lease that does not parse, a key below sys/leases/
    // that is not a lease, a lease of another mount.
    for (key, value, expected) in [
        (
            "sys/leases/garbage",
            b"not json".to_vec(),
            "stored lease garbage is corrupt",
        ),
        (
            "sys/leases/a/b",
            b"{}".to_vec(),
            "holds sys/leases/a/, which is not a lease",
        ),
    ] {
        with_store(&serve, async |store| store.put(key, value).await.unwrap());
        assert_refused(&serve, &[], expected);
        restore();
    }
    let elsewhere = with_store(&serve, async |store| {
        let key = lease_id(&secret).rsplit('/').next().unwrap().to_string();
        let record = store
            .get(&format!("sys/leases/{key}"))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(record).unwrap()
    });
    assert!(elsewhere.contains("dockerhub/token/hoeg/my-organization"));
    assert_refused(&serve, &["--mount", "other"], "runs with --mount \"other\"");

    // Intact again: the server starts and the lease is still there.
    serve.spawn().unwrap();
    let lookup = serve
        .bao_json(&["lease", "lookup", lease_id(&secret)])
        .unwrap();
    assert_eq!(lookup["data"]["id"], secret["lease_id"]);
}

/// The start-up rollback settles creations a crash interrupted, calling the Hub; meanwhile
/// the server already accepts connections, and answers them once the rollback is done.
#[test]
fn connections_are_accepted_while_the_start_up_rollback_runs() {
    let mut serve = configured();
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
        let _ = agent
            .put(&url)
            .header("X-Vault-Token", ROOT_TOKEN)
            .send("{}");
    });
    assert!(eventually(Duration::from_secs(10), || {
        serve
            .hub
            .calls()
            .iter()
            .any(|c| c.method == "POST" && c.path == "/v2/access-tokens")
    }));
    serve.kill();
    let _ = request.join();
    // The creation's outcome is settled at start: its listing of tokens is slow.
    serve.hub.inject(
        Fault::on(
            "GET",
            "/v2/access-tokens",
            FaultKind::Latency(Duration::from_secs(4)),
        )
        .times(10),
    );
    serve.hub.clear_calls();
    let started = Instant::now();
    serve.spawn().unwrap();
    let listening = started.elapsed();
    let (status, _) = serve.http("GET", "/v1/sys/health", None, b"").unwrap();
    let answered = started.elapsed();
    assert_eq!(status, 200);
    let listed = serve
        .hub
        .calls()
        .iter()
        .any(|c| c.method == "GET" && c.path.starts_with("/v2/access-tokens"));
    assert!(listed, "the start-up rollback listed the account's tokens");
    assert!(
        listening < Duration::from_secs(3) && answered >= Duration::from_secs(4),
        "listening after {listening:?}, answered after {answered:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || serve
            .hub
            .live_tokens()
            .is_empty()),
        "the interrupted creation's token is deleted"
    );
}

/// A lease ends no later than its token at the Hub, at issue and at every renewal: the
/// engine caps the TTL at the Hub's expiry by its clock, and `serve` counts the lease from
/// the start of the call, never from its end.
#[test]
fn leases_end_no_later_than_their_tokens_at_the_hub() {
    let serve = configured();
    serve
        .hub
        .grant_expiry(fakehub::ExpiryGrant::AtMost(Duration::from_secs(30)));
    let seconds = |rfc3339: &str| {
        humantime::parse_rfc3339_weak(rfc3339)
            .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    for _ in 0..10 {
        let secret = issue(&serve, "my-organization", json!({}));
        let hub_expiry = serve.hub.token(uuid(&secret)).unwrap().expires_at.unwrap();
        let id = lease_id(&secret).to_string();
        for renew in [false, true] {
            if renew {
                serve
                    .bao_ok(&["lease", "renew", "-increment=1h", &id])
                    .unwrap();
            }
            let lookup = serve.bao_json(&["lease", "lookup", &id]).unwrap();
            let lease_end = lookup["data"]["expire_time"].as_str().unwrap();
            assert!(
                seconds(lease_end) <= seconds(&hub_expiry),
                "renewed: {renew}: the lease ends at {lease_end}, the token at {hub_expiry}"
            );
        }
    }
}
