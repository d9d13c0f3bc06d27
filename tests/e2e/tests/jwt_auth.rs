//! serve's JWT auth against a real issuer over loopback TLS: the test OIDC issuer serves its
//! JWKS and discovery document over HTTPS, and `JwtAuth` (host/jwt-auth) fetches, caches and
//! fetches them again as a CI fleet's logins need, never more often than its rules allow.

use dockerhub_secrets_e2e::oidc::{Alg, Issuer, github_claims, gitlab_claims};
use jwt_auth::{JwtAuth, MIN_REFRESH_INTERVAL};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The audience the pipelines' tokens are minted for.
const AUDIENCE: &str = "https://serve.example";

/// How the mount finds the issuer's keys.
enum Trust<'a> {
    Jwks(&'a Issuer),
    Discovery(&'a Issuer),
    /// A `jwks_url` that is not the issuer's (nothing there, or no answer), with its CA.
    Url(&'a str, &'a str),
}

/// An auth mount `jwt` trusting the issuer, with a GitLab role (`gitlab`: one project's
/// protected branches) and a GitHub role (`github`: one repository).
fn mount(trust: Trust) -> JwtAuth {
    let source = match trust {
        Trust::Jwks(issuer) => format!(
            "jwks_url = \"{}\"\njwks_ca_pem = <<EOT\n{}EOT\nbound_issuer = \"{}\"",
            issuer.jwks_url(),
            issuer.ca_pem().unwrap(),
            issuer.url()
        ),
        // No bound_issuer: with discovery it is the issuer.
        Trust::Discovery(issuer) => format!(
            "oidc_discovery_url = \"{}\"\noidc_discovery_ca_pem = <<EOT\n{}EOT",
            issuer.url(),
            issuer.ca_pem().unwrap()
        ),
        Trust::Url(url, ca_pem) => {
            format!("jwks_url = \"{url}\"\njwks_ca_pem = <<EOT\n{ca_pem}EOT")
        }
    };
    let text = format!(
        r#"
        type = "jwt"
        {source}

        role "gitlab" {{
          role_type       = "jwt"
          user_claim      = "project_path"
          bound_audiences = ["{AUDIENCE}"]
          bound_claims    = {{ project_path = "acme/app", ref_protected = "true" }}
          claim_mappings  = {{ project_path = "project", ref = "ref" }}
          token_policies  = ["acme-release"]
          token_ttl       = "20s"
        }}

        role "github" {{
          role_type       = "jwt"
          user_claim      = "repository"
          bound_audiences = ["{AUDIENCE}"]
          bound_subject   = "repo:acme/app:ref:refs/heads/main"
          token_policies  = ["acme-release"]
        }}
        "#
    );
    JwtAuth::from_hcl("jwt", &hcl::parse(&text).unwrap()).expect("the auth block")
}

fn gitlab() -> serde_json::Value {
    gitlab_claims("acme/app", "main", true, AUDIENCE)
}

/// A login with the GitLab role must succeed.
async fn gitlab_login(auth: &JwtAuth, token: &str) {
    let login = auth.login(Some("gitlab"), Some(token)).await;
    let login = login.unwrap_or_else(|e| panic!("the GitLab login was refused: {e}"));
    assert_eq!(login.display_name, "jwt-acme/app");
}

#[tokio::test]
async fn gitlab_and_github_tokens_log_in_through_the_jwks_url() {
    let issuer = Issuer::start_https().unwrap();
    let auth = mount(Trust::Jwks(&issuer));
    assert_eq!(auth.key_fetches(), 0, "nothing is fetched before a login");
    gitlab_login(&auth, &issuer.sign(Alg::Rs256, gitlab(), 300)).await;
    let github = issuer.sign(Alg::Es256, github_claims("acme/app", "main", AUDIENCE), 300);
    let login = auth.login(Some("github"), Some(&github)).await.unwrap();
    assert_eq!(login.alias_name, "acme/app");
    assert_eq!(login.display_name, "jwt-acme/app");
    assert_eq!((auth.key_fetches(), issuer.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_bounds_the_issuer() {
    let issuer = Issuer::start_https().unwrap();
    let auth = mount(Trust::Discovery(&issuer));
    gitlab_login(&auth, &issuer.sign(Alg::Es256, gitlab(), 300)).await;
    assert_eq!((auth.key_fetches(), issuer.jwks_fetches()), (1, 1));
    // Signed by the issuer's key, but naming another issuer.
    let mut claims = gitlab();
    claims["iss"] = "https://gitlab.example.com".into();
    let token = issuer.sign(Alg::Rs256, claims, 300);
    let error = auth.login(Some("gitlab"), Some(&token)).await.unwrap_err();
    assert_eq!(error.status, 400);
    assert!(
        error.message.contains("invalid issuer (iss) claim"),
        "{error}"
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_without_a_restart() {
    let issuer = Issuer::start_https().unwrap();
    let auth = mount(Trust::Jwks(&issuer));
    let before = issuer.sign(Alg::Rs256, gitlab(), 300);
    gitlab_login(&auth, &before).await;
    issuer.rotate(Alg::Rs256, "rs-2");
    tokio::time::sleep(MIN_REFRESH_INTERVAL + Duration::from_millis(100)).await;
    let after = issuer.sign(Alg::Rs256, gitlab(), 300);
    for _ in 0..3 {
        gitlab_login(&auth, &after).await;
        gitlab_login(&auth, &before).await;
    }
    assert_eq!((auth.key_fetches(), issuer.jwks_fetches()), (2, 2));
}

#[tokio::test]
async fn a_thousand_logins_with_the_cached_key_fetch_nothing() {
    let issuer = Issuer::start_https().unwrap();
    let auth = mount(Trust::Jwks(&issuer));
    let token = issuer.sign(Alg::Rs256, gitlab(), 300);
    gitlab_login(&auth, &token).await;
    let fetched = auth.key_fetches();
    for _ in 0..1000 {
        gitlab_login(&auth, &token).await;
    }
    assert_eq!(auth.key_fetches() - fetched, 0);
    assert_eq!(issuer.jwks_fetches(), 1);
}

/// Tokens naming made-up kids, at once and then in a stream: the concurrent ones share one
/// fetch, and fetches never come faster than one per MIN_REFRESH_INTERVAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_cannot_make_serve_hammer_the_issuer() {
    let issuer = Issuer::start_https().unwrap();
    let auth = Arc::new(mount(Trust::Jwks(&issuer)));
    gitlab_login(&auth, &issuer.sign(Alg::Rs256, gitlab(), 300)).await;
    tokio::time::sleep(MIN_REFRESH_INTERVAL).await;

    let tokens: Vec<String> = (0..100)
        .map(|i| issuer.sign_with_kid(Alg::Rs256, gitlab(), &format!("made-up-{i}")))
        .collect();
    let mut logins = tokio::task::JoinSet::new();
    for token in tokens {
        let auth = auth.clone();
        logins.spawn(async move { auth.login(Some("gitlab"), Some(&token)).await });
    }
    while let Some(result) = logins.join_next().await {
        let error = result.unwrap().unwrap_err();
        assert_eq!(error.status, 400, "{error}");
        assert!(
            error.message.contains("no key with kid \"made-up-"),
            "{error}"
        );
        assert!(error.message.contains("(fetched again)"), "{error}");
    }
    assert_eq!(
        auth.key_fetches(),
        2,
        "100 concurrent unknown kids, one fetch"
    );

    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        let token = issuer.sign_with_kid(Alg::Es256, gitlab(), &format!("stream-{i}"));
        let error = auth.login(Some("gitlab"), Some(&token)).await.unwrap_err();
        assert_eq!(error.status, 400, "{error}");
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stream_fetches = auth.key_fetches() - 2;
    let most = start.elapsed().as_secs_f64() / MIN_REFRESH_INTERVAL.as_secs_f64();
    assert!(i > 100, "only {i} logins were tried");
    assert!(
        (1..=most.ceil() as u64).contains(&stream_fetches),
        "{stream_fetches} fetches for {i} unknown kids in {:?}",
        start.elapsed()
    );
    assert_eq!(issuer.jwks_fetches() as u64, auth.key_fetches());
    // The real key still logs in, from the cache.
    gitlab_login(&auth, &issuer.sign(Alg::Rs256, gitlab(), 300)).await;
}

#[tokio::test]
async fn an_unreachable_or_silent_jwks_url_is_a_500_within_the_timeout() {
    let issuer = Issuer::start_https().unwrap();
    let token = issuer.sign(Alg::Rs256, gitlab(), 300);
    let ca_pem = issuer.ca_pem().unwrap().to_owned();

    // Nothing listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/jwks", closed.local_addr().unwrap());
    drop(closed);
    let auth = mount(Trust::Url(&url, &ca_pem));
    let error = auth.login(Some("gitlab"), Some(&token)).await.unwrap_err();
    assert_eq!(error.status, 500, "{error}");
    assert!(
        error.message.contains("could not fetch the JWKS at"),
        "{error}"
    );
    assert!(!error.message.contains(&token));

    // A server that takes the connection and never answers (not even the TLS handshake).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/jwks", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            connections.push(connection);
        }
    });
    let timeout = Duration::from_millis(500);
    let auth = Arc::new(mount(Trust::Url(&url, &ca_pem)).with_fetch_timeout(timeout));
    let start = Instant::now();
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (auth, token) = (auth.clone(), token.clone());
        logins.spawn(async move { auth.login(Some("gitlab"), Some(&token)).await });
    }
    while let Some(result) = logins.join_next().await {
        let error = result.unwrap().unwrap_err();
        assert_eq!(error.status, 500, "{error}");
        assert!(error.message.contains("no answer within 500ms"), "{error}");
    }
    // Bounded, not timed: a loaded machine may add seconds, a hang would add forever.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= timeout && elapsed < timeout * 20,
        "5 logins behind one silent fetch took {elapsed:?}"
    );
    assert_eq!(
        auth.key_fetches(),
        1,
        "the waiting logins shared the one fetch"
    );
    held.abort();

    // The default timeout is 10 s.
    assert_eq!(jwt_auth::FETCH_TIMEOUT, Duration::from_secs(10));
}

#[tokio::test]
async fn a_jwks_over_a_mebibyte_is_refused_not_read_whole() {
    let issuer = Issuer::start_https().unwrap();
    issuer.pad_jwks(jwt_auth::MAX_DOCUMENT);
    let auth = mount(Trust::Jwks(&issuer));
    let token = issuer.sign(Alg::Rs256, gitlab(), 300);
    let error = auth.login(Some("gitlab"), Some(&token)).await.unwrap_err();
    assert_eq!(error.status, 500, "{error}");
    assert!(
        error.message.contains("larger than 1048576 bytes (1 MiB)"),
        "{error}"
    );
    assert!(!error.message.contains(&token));
    // The same issuer with a JWKS just under the limit works.
    issuer.pad_jwks(jwt_auth::MAX_DOCUMENT - 64 * 1024);
    tokio::time::sleep(MIN_REFRESH_INTERVAL).await;
    gitlab_login(&auth, &token).await;
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_cached_keys() {
    let issuer = Issuer::start_https().unwrap();
    let auth = mount(Trust::Jwks(&issuer));
    let token = issuer.sign(Alg::Rs256, gitlab(), 300);
    let stranger = issuer.sign_with_kid(Alg::Rs256, gitlab(), "made-up");
    gitlab_login(&auth, &token).await;
    drop(issuer);
    tokio::time::sleep(MIN_REFRESH_INTERVAL).await;
    // An unknown kid needs the issuer, which is gone: serve cannot tell, so 500.
    let error = auth
        .login(Some("gitlab"), Some(&stranger))
        .await
        .unwrap_err();
    assert_eq!(error.status, 500, "{error}");
    assert_eq!(auth.key_fetches(), 2);
    // The key the cache holds still verifies.
    gitlab_login(&auth, &token).await;
}

#[tokio::test]
async fn a_key_set_past_its_age_is_fetched_again_so_retired_keys_stop_working() {
    let issuer = Issuer::start_https().unwrap();
    let max_age = MIN_REFRESH_INTERVAL + Duration::from_millis(500);
    let auth = mount(Trust::Jwks(&issuer)).with_max_key_age(max_age);
    let token = issuer.sign(Alg::Rs256, gitlab(), 300);
    gitlab_login(&auth, &token).await;
    issuer.rotate(Alg::Rs256, "rs-2");
    issuer.retire("rs-1");
    gitlab_login(&auth, &token).await;
    assert_eq!(auth.key_fetches(), 1, "a young set is used as it is");
    tokio::time::sleep(max_age).await;
    let error = auth.login(Some("gitlab"), Some(&token)).await.unwrap_err();
    assert_eq!(error.status, 400, "{error}");
    assert!(
        error.message.contains("no key with kid \"rs-1\""),
        "{error}"
    );
    assert_eq!(auth.key_fetches(), 2);

    // Past its age again with the issuer gone: the cached key still verifies.
    let token = issuer.sign(Alg::Rs256, gitlab(), 300);
    drop(issuer);
    tokio::time::sleep(max_age).await;
    gitlab_login(&auth, &token).await;
    assert_eq!(auth.key_fetches(), 3);
}

#[test]
fn a_plain_http_key_source_is_refused_at_load() {
    // The issuer over HTTP, as the OpenBao tests use it, serves its JWKS...
    let issuer = Issuer::start().unwrap();
    let mut response = ureq::get(issuer.jwks_url()).call().unwrap();
    let jwks: serde_json::Value = response.body_mut().read_json().unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(issuer.jwks_fetches(), 1);
    // ...which serve will not fetch.
    for source in [
        format!("jwks_url = \"{}\"", issuer.jwks_url()),
        format!("oidc_discovery_url = \"{}\"", issuer.url()),
    ] {
        let text = format!("type = \"jwt\"\n{source}\n");
        let error = JwtAuth::from_hcl("jwt", &hcl::parse(&text).unwrap()).unwrap_err();
        let error = error.to_string();
        assert!(error.starts_with("auth \"jwt\": "), "{error}");
        assert!(
            error.contains("is plain HTTP: serve fetches keys over HTTPS only"),
            "{error}"
        );
    }
}
