//! The configured rate limit: `X-RateLimit-*` on every counted response, 429 with `Retry-After`
//! and `X-Retry-After` past the limit, nothing processed while limited.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use fakehub::{Config, FakeHub, RateLimit};
use serde_json::json;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn login_body() -> Option<serde_json::Value> {
    Some(json!({"identifier": ALICE, "secret": ALICE_PASSWORD}))
}

#[test]
fn responses_carry_the_quota_and_429_past_it() {
    // A window far longer than the test, so it cannot roll over midway.
    let hub = FakeHub::start(Config {
        rate_limit: Some(RateLimit::new(3, Duration::from_secs(600))),
        ..common::config()
    })
    .unwrap();
    let client = Client::new(&hub);
    let started = unix_now();
    let mut resets = Vec::new();
    for remaining in ["2", "1", "0"] {
        let reply = client.send("POST", "/v2/auth/token", None, login_body());
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(reply.header("x-ratelimit-remaining"), Some(remaining));
        resets.push(
            reply
                .header("x-ratelimit-reset")
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert!(
        resets.windows(2).all(|w| w[0] == w[1]),
        "one window: {resets:?}"
    );
    assert!((started + 600..=started + 610).contains(&resets[0]));

    let limited = client.send("POST", "/v2/auth/token", None, login_body());
    assert_detail_body(&limited, 429, "Rate limit exceeded");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry_after));
    let retry_at: u64 = limited.header("x-retry-after").unwrap().parse().unwrap();
    assert!(retry_at >= started + retry_after);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        hub.login_count(),
        3,
        "the limited request was not processed"
    );

    // Every /v2/ request counts, including 404s; others are not counted.
    assert_eq!(
        client.send("GET", "/v2/nothing-here", None, None).status,
        429
    );
    let outside = client.send("GET", "/elsewhere", None, None);
    assert_eq!(outside.status, 404);
    assert_eq!(outside.header("x-ratelimit-limit"), None);

    hub.set_rate_limit(None);
    let free = client.send("POST", "/v2/auth/token", None, login_body());
    assert_eq!(free.status, 200);
    assert_eq!(free.header("x-ratelimit-limit"), None);

    hub.set_rate_limit(Some(RateLimit::new(1, Duration::from_secs(600))));
    let fresh = client.send("POST", "/v2/auth/token", None, login_body());
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        client.send("GET", "/v2/access-tokens", None, None).status,
        429
    );

    let statuses: Vec<u16> = hub.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429, 404, 200, 200, 429]);
}

#[test]
fn the_window_refills() {
    let hub = FakeHub::start(Config {
        rate_limit: Some(RateLimit::new(1, Duration::from_secs(1))),
        ..common::config()
    })
    .unwrap();
    let client = Client::new(&hub);
    assert_eq!(
        client
            .send("POST", "/v2/auth/token", None, login_body())
            .status,
        200
    );
    let limited = client.send("POST", "/v2/auth/token", None, login_body());
    if limited.status == 429 {
        assert_eq!(limited.header("retry-after"), Some("1"));
    }
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        client
            .send("POST", "/v2/auth/token", None, login_body())
            .status,
        200
    );
}

#[test]
fn the_log_says_when_the_limit_checked_each_call_and_the_retry_after_it_sent() {
    let hub = FakeHub::start(Config {
        rate_limit: Some(RateLimit::new(1, Duration::from_secs(600))),
        ..common::config()
    })
    .unwrap();
    let client = Client::new(&hub);
    let before = std::time::Instant::now();
    client.send("POST", "/v2/auth/token", None, login_body());
    let limited = client.send("POST", "/v2/auth/token", None, login_body());
    client.send("GET", "/elsewhere", None, None);
    let after = std::time::Instant::now();

    let calls = hub.calls();
    let statuses: Vec<(u16, Option<u64>)> =
        calls.iter().map(|c| (c.status, c.retry_after)).collect();
    let sent: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(statuses, [(200, None), (429, Some(sent)), (404, None)]);
    let (first, second) = (calls[0].checked_at.unwrap(), calls[1].checked_at.unwrap());
    assert!(before <= first && first <= second && second <= after);
    assert_eq!(calls[2].checked_at, None, "outside /v2/: not checked");

    hub.set_rate_limit(None);
    client.send("POST", "/v2/auth/token", None, login_body());
    assert_eq!(hub.calls()[3].checked_at, None, "no limit: not checked");
}
