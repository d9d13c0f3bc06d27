//! A CI job's keyless login to `dockerhub-secrets serve`: Vault's JWT auth method in the
//! tokens file (`auth "jwt"`, role `release`, as `tests/e2e/tests/serve_jwt.rs` declares it),
//! trusting the test OIDC issuer over HTTPS ([`dockerhub_secrets_e2e::oidc::Issuer`]), whose
//! GitLab-shaped identity tokens are signed RS256.
//!
//! 7. **Keyless CI login**: one client on a keep-alive connection, three kinds of work taking
//!    turns in batches: a job with a static token (issue, then revoke the lease), a keyless
//!    job (`auth/jwt/login`, issue with the login's token, `revoke-self`), and the floor,
//!    `lookup-self`. Each step is timed on its own and each job as a whole; the identity
//!    tokens are signed before the timing starts. Then the JWKS fetches the issuer counted:
//!    over the measured logins (the key cached), and when a new `kid` appears.

use crate::report::{ms, percentile, ratio};
use crate::serve::configured;
use crate::{Api, progress};
use anyhow::Context;
use dockerhub_secrets_e2e::oidc::{Alg, Issuer, gitlab_claims};
use dockerhub_secrets_e2e::serve::{CI_TOKEN, JWT_AUDIENCE, jwt_auth_block};
use serde_json::{Value, json};
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

/// Unmeasured jobs of each kind: connections, the engine's Hub session, the issuer's keys.
const WARM_UP: usize = 20;
/// Measured jobs of each kind: `ROUNDS` rounds of one `BATCH` per kind.
const ROUNDS: usize = 20;
const BATCH: usize = 50;
/// Logins signed with a key the issuer publishes after the measured ones.
const ROTATED: usize = 100;
/// How long an identity token is valid: past the section's run, on a loaded machine too.
const JWT_LIFETIME: u64 = 600;

/// The role: one project's protected branches; its tokens live 2 minutes unless revoked.
const ROLE: &str = r#"user_claim      = "project_path"
    bound_claims    = { project_path = "acme/app", ref_protected = "true" }
    token_ttl       = "2m"
    token_max_ttl   = "10m""#;
/// Both kinds of job ask for the same lease; a login token's is capped at its own TTL.
const LEASE_TTL: &str = "2m";

const LOGIN_PATH: &str = "/v1/auth/jwt/login";
const TOKEN_PATH: &str = "/v1/dockerhub/token/hoeg/my-organization";

/// The jobs compared.
#[derive(Clone, Copy)]
enum Job {
    Static,
    Keyless,
    Floor,
}

impl Job {
    const ALL: [Job; 3] = [Job::Static, Job::Keyless, Job::Floor];
}

/// What is timed: each request of a job, and spans of them.
#[derive(Clone, Copy)]
enum Step {
    Lookup,
    StaticIssue,
    LeaseRevoke,
    StaticJob,
    Login,
    KeylessIssue,
    RevokeSelf,
    LoginAndIssue,
    KeylessJob,
}

impl Step {
    const ALL: [Step; 9] = [
        Step::Lookup,
        Step::StaticIssue,
        Step::LeaseRevoke,
        Step::StaticJob,
        Step::Login,
        Step::KeylessIssue,
        Step::RevokeSelf,
        Step::LoginAndIssue,
        Step::KeylessJob,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Lookup => "floor: GET auth/token/lookup-self (static token)",
            Step::StaticIssue => "static token: PUT dockerhub/token/hoeg/my-organization",
            Step::LeaseRevoke => "static token: PUT sys/leases/revoke/<lease>",
            Step::StaticJob => "static token, the job: issuance + lease revoke",
            Step::Login => "keyless: PUT auth/jwt/login (RS256, key cached)",
            Step::KeylessIssue => "keyless: PUT dockerhub/token/hoeg/my-organization",
            Step::RevokeSelf => "keyless: PUT auth/token/revoke-self (token, lease, Hub token)",
            Step::LoginAndIssue => "keyless: login + issuance",
            Step::KeylessJob => "keyless, the job: login + issuance + revoke-self",
        }
    }
}

/// Latencies by [`Step`].
struct Samples(Vec<Vec<Duration>>);

impl Samples {
    fn new() -> Samples {
        Samples(vec![Vec::new(); Step::ALL.len()])
    }

    fn push(&mut self, step: Step, d: Duration) {
        self.0[step as usize].push(d);
    }

    fn of(&self, step: Step) -> &[Duration] {
        &self.0[step as usize]
    }
}

/// What section 7 found.
pub struct Keyless {
    samples: Samples,
    /// JWKS fetches before any login, over the warm-up, over the measured logins, and over
    /// the logins after a new `kid`.
    fetches_at_start: usize,
    fetches_warm_up: usize,
    fetches_cached: usize,
    fetches_rotated: usize,
    /// The first login with the new `kid`.
    rotated_login: Duration,
    /// The answers to one identity token presented twice.
    twice: [u16; 2],
    logins: usize,
    revoked_self: usize,
    tokens_left: usize,
    live_left: usize,
    hub_logins: usize,
}

pub fn measure() -> anyhow::Result<Keyless> {
    progress("keyless: starting the OIDC issuer (HTTPS) and serve with auth \"jwt\"");
    let issuer = Issuer::start_https()?;
    let serve = configured(&jwt_auth_block(&issuer, false, ROLE))?;
    let static_token = Api::new(&serve.addr, CI_TOKEN);
    let mut jobs = Jobs {
        login: static_token.as_token(None),
        static_token,
        logins: 0,
        revoked_self: 0,
    };

    // Every identity token is a CI job's own: signed now, each with its own `jti`.
    let mut minted = 0;
    let mut mint = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                minted += 1;
                let mut claims = gitlab_claims("acme/app", "main", true, JWT_AUDIENCE);
                claims["jti"] = json!(format!("bench-{minted}"));
                issuer.sign(Alg::Rs256, claims, JWT_LIFETIME)
            })
            .collect()
    };
    let mut warm_up_jwts = mint(WARM_UP).into_iter();
    let twice_jwt = mint(1).remove(0);
    let mut jwts = mint(ROUNDS * BATCH).into_iter();

    progress("keyless: warm-up");
    let fetches_at_start = issuer.jwks_fetches();
    let mut unmeasured = Samples::new();
    for _ in 0..WARM_UP {
        for job in Job::ALL {
            jobs.run(job, &mut warm_up_jwts, &mut unmeasured)?;
        }
    }
    let twice = jobs.login_twice(&twice_jwt)?;
    let fetches_warm_up = issuer.jwks_fetches() - fetches_at_start;

    progress(&format!(
        "keyless: {ROUNDS} rounds of {BATCH} jobs of each kind"
    ));
    let mut samples = Samples::new();
    let before = issuer.jwks_fetches();
    for round in 0..ROUNDS {
        for i in 0..Job::ALL.len() {
            let job = Job::ALL[(round + i) % Job::ALL.len()];
            for _ in 0..BATCH {
                jobs.run(job, &mut jwts, &mut samples)?;
            }
        }
    }
    let fetches_cached = issuer.jwks_fetches() - before;

    progress(&format!(
        "keyless: a new kid, then {ROTATED} logins signed with it"
    ));
    issuer.rotate(Alg::Rs256, "rs-2");
    let rotated = mint(ROTATED);
    let before = issuer.jwks_fetches();
    let mut rotated_login = Duration::ZERO;
    for (n, jwt) in rotated.iter().enumerate() {
        let sent = Instant::now();
        let token = jobs.login(jwt)?;
        if n == 0 {
            rotated_login = sent.elapsed();
        }
        jobs.revoke_self(&token)?;
    }
    let fetches_rotated = issuer.jwks_fetches() - before;

    Ok(Keyless {
        samples,
        fetches_at_start,
        fetches_warm_up,
        fetches_cached,
        fetches_rotated,
        rotated_login,
        twice,
        logins: jobs.logins,
        revoked_self: jobs.revoked_self,
        tokens_left: serve.hub.tokens().len(),
        live_left: serve.hub.live_tokens().len(),
        hub_logins: serve.hub.login_count(),
    })
}

/// The jobs, on one connection: a static token's requests, and the logins' and their tokens'.
struct Jobs {
    /// A token of the tokens file (`ci-release`).
    static_token: Api,
    /// No token: the logins.
    login: Api,
    logins: usize,
    revoked_self: usize,
}

impl Jobs {
    /// One `job`, its steps' latencies into `samples`; a keyless job logs in with the next
    /// of `jwts`.
    fn run(
        &mut self,
        job: Job,
        jwts: &mut impl Iterator<Item = String>,
        samples: &mut Samples,
    ) -> anyhow::Result<()> {
        let jwt = match job {
            Job::Keyless => jwts.next().context("an identity token per login")?,
            Job::Static | Job::Floor => String::new(),
        };
        let started = Instant::now();
        match job {
            Job::Floor => {
                self.static_token
                    .expect("GET", "/v1/auth/token/lookup-self", None, 200)?;
                samples.push(Step::Lookup, started.elapsed());
            }
            Job::Static => {
                let lease = issue(&self.static_token)?;
                let issued = started.elapsed();
                self.static_token.expect(
                    "PUT",
                    &format!("/v1/sys/leases/revoke/{lease}"),
                    None,
                    204,
                )?;
                let done = started.elapsed();
                samples.push(Step::StaticIssue, issued);
                samples.push(Step::LeaseRevoke, done - issued);
                samples.push(Step::StaticJob, done);
            }
            Job::Keyless => {
                let token = self.login(&jwt)?;
                let logged_in = started.elapsed();
                issue(&self.login.as_token(Some(&token)))?;
                let issued = started.elapsed();
                self.revoke_self(&token)?;
                let done = started.elapsed();
                samples.push(Step::Login, logged_in);
                samples.push(Step::KeylessIssue, issued - logged_in);
                samples.push(Step::RevokeSelf, done - issued);
                samples.push(Step::LoginAndIssue, issued);
                samples.push(Step::KeylessJob, done);
            }
        }
        Ok(())
    }

    /// `auth/jwt/login` as the role `release`: the client token.
    fn login(&mut self, jwt: &str) -> anyhow::Result<String> {
        let body = json!({"role": "release", "jwt": jwt});
        let answer: Value =
            serde_json::from_str(&self.login.expect("PUT", LOGIN_PATH, Some(body), 200)?)?;
        self.logins += 1;
        Ok(answer["auth"]["client_token"]
            .as_str()
            .context("no auth.client_token in the login's answer")?
            .to_string())
    }

    fn revoke_self(&mut self, token: &str) -> anyhow::Result<()> {
        self.login
            .as_token(Some(token))
            .expect("PUT", "/v1/auth/token/revoke-self", None, 204)?;
        self.revoked_self += 1;
        Ok(())
    }

    /// Present one identity token twice; each login's token is revoked. The two answers.
    fn login_twice(&mut self, jwt: &str) -> anyhow::Result<[u16; 2]> {
        let mut statuses = [0; 2];
        for status in &mut statuses {
            let body = json!({"role": "release", "jwt": jwt});
            let (answered, text) = self.login.send("PUT", LOGIN_PATH, Some(body))?;
            *status = answered;
            if answered == 200 {
                self.logins += 1;
                let answer: Value = serde_json::from_str(&text)?;
                let token = answer["auth"]["client_token"]
                    .as_str()
                    .context("no auth.client_token in the login's answer")?;
                self.revoke_self(token)?;
            }
        }
        Ok(statuses)
    }
}

/// Issue one token as `api`'s token; its lease id.
fn issue(api: &Api) -> anyhow::Result<String> {
    let body = json!({"ttl": LEASE_TTL});
    let answer: Value = serde_json::from_str(&api.expect("PUT", TOKEN_PATH, Some(body), 200)?)?;
    Ok(answer["lease_id"]
        .as_str()
        .context("no lease_id in the answer")?
        .to_string())
}

impl Keyless {
    pub fn write(&self, out: &mut String) -> fmt::Result {
        writeln!(out, "## 7. Standalone server: keyless CI login (JWT auth)")?;
        writeln!(
            out,
            "\n`dockerhub-secrets serve` as in section 5, with Vault's JWT auth method in its \
             tokens file: `auth \"jwt\"`\ntrusting the test OIDC issuer over HTTPS (`jwks_url`, \
             its own CA), role `release` bound to `project_path`\nand `ref_protected`, \
             `token_ttl` 2m. Identity tokens GitLab-shaped, RS256 (2048-bit key), each with its \
             own\n`jti`, all signed before the timing starts. One client on a keep-alive \
             connection; {WARM_UP} unmeasured jobs\nof each kind, then {ROUNDS} rounds of \
             {BATCH} of each kind, the kinds in rotating order:\n\n\
             - static token: `PUT dockerhub/token/hoeg/my-organization` (ttl {LEASE_TTL}) with a \
             token of the tokens file\n  (policy `ci-release`), then `PUT \
             sys/leases/revoke/<lease>`;\n\
             - keyless: `PUT auth/jwt/login` with no token, the same issuance with the login's \
             token, then\n  `PUT auth/token/revoke-self`, which ends the token, its lease and \
             the Docker Hub token;\n\
             - floor: `GET auth/token/lookup-self` with the static token (HTTP and the ACL \
             only).\n\nEach request is timed on its own and each job as a whole; \"login + \
             issuance\" runs from the login's\nrequest to the issuance's answer, its \
             `revoke-self` outside it.\n"
        )?;
        writeln!(out, "| step | n | p50 ms | p99 ms |")?;
        writeln!(out, "|---|---:|---:|---:|")?;
        for step in Step::ALL {
            let s = self.samples.of(step);
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                step.name(),
                s.len(),
                ms(percentile(s, 50.0)),
                ms(percentile(s, 99.0))
            )?;
        }
        writeln!(out)?;
        writeln!(out, "| ratio | p50 | p99 |")?;
        writeln!(out, "|---|---:|---:|")?;
        for (name, a, b) in [
            ("login / floor (lookup-self)", Step::Login, Step::Lookup),
            (
                "login / issuance with the static token",
                Step::Login,
                Step::StaticIssue,
            ),
            (
                "**login + issuance / issuance with the static token**",
                Step::LoginAndIssue,
                Step::StaticIssue,
            ),
            (
                "issuance with the login's token / with the static token",
                Step::KeylessIssue,
                Step::StaticIssue,
            ),
            (
                "revoke-self / lease revoke",
                Step::RevokeSelf,
                Step::LeaseRevoke,
            ),
            (
                "keyless job / static-token job",
                Step::KeylessJob,
                Step::StaticJob,
            ),
        ] {
            let (a, b) = (self.samples.of(a), self.samples.of(b));
            writeln!(
                out,
                "| {name} | {:.2}× | {:.2}× |",
                ratio(percentile(a, 50.0), percentile(b, 50.0)),
                ratio(percentile(a, 99.0), percentile(b, 99.0))
            )?;
        }
        let measured = self.samples.of(Step::Login).len();
        writeln!(
            out,
            "\nJWKS fetches, counted by the issuer:\n\n| logins | JWKS fetches |\n|---|---:|"
        )?;
        writeln!(
            out,
            "| none (the server started) | {} |",
            self.fetches_at_start
        )?;
        writeln!(
            out,
            "| the {} unmeasured (the warm-up, one token presented twice), the first with \
             nothing cached | {} |",
            WARM_UP + self.twice.iter().filter(|s| **s == 200).count(),
            self.fetches_warm_up
        )?;
        writeln!(
            out,
            "| **the {measured} measured, key `rs-1` cached** (per 1000: {:.1}) | **{}** |",
            self.fetches_cached as f64 * 1000.0 / measured.max(1) as f64,
            self.fetches_cached
        )?;
        writeln!(
            out,
            "| **a new key `rs-2` published, then {ROTATED} signed with it** | **{}** |",
            self.fetches_rotated
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "- the first login with `rs-2` (one sample, its JWKS fetch over HTTPS included): \
             {} ms, {:.2}× the measured logins' p50",
            ms(self.rotated_login),
            ratio(
                self.rotated_login,
                percentile(self.samples.of(Step::Login), 50.0)
            )
        )?;
        let twice = match self.twice {
            [200, 200] => "both accepted (no `jti` is remembered, as in OpenBao's jwt auth)",
            [200, _] => "the second refused",
            _ => "refused",
        };
        writeln!(
            out,
            "- one identity token presented twice: {} then {}, {twice}",
            self.twice[0], self.twice[1]
        )?;
        writeln!(
            out,
            "- login tokens created: {}, ended by `revoke-self`: {}",
            self.logins, self.revoked_self
        )?;
        writeln!(
            out,
            "- tokens left at the fake after the section: {} (live: {}); logins at the fake in \
             this section: {}",
            self.tokens_left, self.live_left, self.hub_logins
        )?;
        writeln!(out)
    }
}
