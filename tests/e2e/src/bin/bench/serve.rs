//! The standalone server, `dockerhub-secrets serve`, as the end-to-end harness starts it
//! ([`dockerhub_secrets_e2e::serve::Serve`]: a tokens file, its own encrypted store, a fresh
//! Docker Hub fake), driven over Vault's HTTP API as root.
//!
//! 5. **Issuance at fixed concurrency**: throughput and p50/p99 of `PUT dockerhub/token/...`
//!    with 1 and with 8 clients, each on its own keep-alive connection, against two requests
//!    of the same server that call no Hub: `GET dockerhub/config/hoeg` (the engine's round trip
//!    and a storage read) and `GET auth/token/lookup-self` (HTTP and the ACL only). The kinds
//!    take turns in batches, so that the machine's drift hits all of them alike.
//! 6. **Mass expiry**: 10 000 leases that all end in the same second, revoked by the server's
//!    own lease timers while the fake enforces a rate limit: how much of the advertised limit
//!    and of what the fake's `Retry-After` answers allowed ([`crate::pacing`]) the
//!    revocations use, how long the server itself took to resume, and what is left behind.

use crate::pacing::{self, Answer, Pacing, Window};
use crate::report::{Goal, ms, percentile, ratio};
use crate::{Api, calls_by_route, progress};
use anyhow::{Context, bail};
use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::serve::{ROOT_TOKEN, Serve};
use fakehub::{Config, FakeHub, RateLimit};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Clients sending at once, each level measured on its own.
const CLIENTS: [usize; 2] = [1, 8];
/// Unmeasured requests of each kind per level: connections, caches, the engine's session.
const WARM_UP: usize = 100;
/// Measured requests of each kind per level, in `ROUNDS` batches.
const REQUESTS: usize = 2000;
const ROUNDS: usize = 4;

/// Leases in the mass expiry, issued by `MASS_CLIENTS` clients.
const MASS: usize = 10_000;
const MASS_CLIENTS: usize = 8;
/// The fake's rate limit during the expiry: 100 requests per second advertised, in windows
/// of seconds as the Hub's are (its limits are per minute), so that 10 000 deletions take
/// ten windows.
const RATE_LIMIT: u32 = 1000;
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// How long the expiry may take before the run fails.
const EXPIRY_BOUND: Duration = Duration::from_secs(600);
/// How often the fake's calls are read during the expiry.
const POLL: Duration = Duration::from_millis(100);

/// The goal: revocations use at least these shares of the rate the fake's `Retry-After`
/// answers allowed, and of its advertised limit.
const GOAL_ALLOWED_SHARE: f64 = 0.95;
const GOAL_LIMIT_SHARE: f64 = 0.90;

const TOKEN_PATH: &str = "/v1/dockerhub/token/hoeg/my-organization";
const CONFIG_PATH: &str = "/v1/dockerhub/config/hoeg";

/// What sections 5–6 found.
pub struct Standalone {
    levels: Vec<Level>,
    revoke_all: Duration,
    revoked: usize,
    left_after_revoke: usize,
    logins: usize,
    expiry: MassExpiry,
}

pub fn measure() -> anyhow::Result<Standalone> {
    progress("starting dockerhub-secrets serve");
    let serve = configured("")?;
    let mut levels = Vec::new();
    for clients in CLIENTS {
        progress(&format!("serve: issuance with {clients} client(s)"));
        levels.push(measure_level(&serve, clients)?);
    }
    let revoked = serve.hub.live_tokens().len();
    progress(&format!(
        "serve: revoking {revoked} leases (revoke-prefix, sync)"
    ));
    let started = Instant::now();
    Api::new(&serve.addr, ROOT_TOKEN).expect(
        "PUT",
        "/v1/sys/leases/revoke-prefix/dockerhub/token",
        Some(json!({"sync": true})),
        204,
    )?;
    let revoke_all = started.elapsed();
    let left_after_revoke = serve.hub.tokens().len();
    let logins = serve.hub.login_count();
    drop(serve);

    // Issuing the mass at the rate just measured, with room to spare.
    let rate = levels.last().expect("levels").throughput(Kind::Issue);
    let expiry = mass_expiry(rate)?;
    Ok(Standalone {
        levels,
        revoke_all,
        revoked,
        left_after_revoke,
        logins,
        expiry,
    })
}

/// A server against a fresh fake, `tokens` added to the harness's tokens file, with
/// `config/hoeg` written as in the seed session.
pub fn configured(tokens: &str) -> anyhow::Result<Serve> {
    let hub = FakeHub::start(Config::default().account("hoeg", PASSWORD, None))?;
    let serve = Serve::start_with_tokens(hub, &[], tokens)?;
    Api::new(&serve.addr, ROOT_TOKEN)
        .expect(
            "PUT",
            CONFIG_PATH,
            Some(json!({"namespace": "hoeg,my-organization", "password": PASSWORD})),
            204,
        )
        .context("configuring hoeg")?;
    Ok(serve)
}

// --- 5. issuance at fixed concurrency --------------------------------------------------------

/// The requests compared: the issuance, and two of the same server that call no Hub.
#[derive(Clone, Copy)]
enum Kind {
    Issue,
    ConfigRead,
    LookupSelf,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Issue, Kind::ConfigRead, Kind::LookupSelf];

    fn name(self) -> &'static str {
        match self {
            Kind::Issue => "PUT dockerhub/token/hoeg/my-organization (ttl 10m)",
            Kind::ConfigRead => "baseline: GET dockerhub/config/hoeg (engine, no Hub call)",
            Kind::LookupSelf => "floor: GET auth/token/lookup-self (HTTP and ACL only)",
        }
    }

    fn send(self, api: &Api) -> anyhow::Result<String> {
        match self {
            Kind::Issue => api.expect(
                "PUT",
                TOKEN_PATH,
                Some(json!({"label": "bench", "ttl": "10m"})),
                200,
            ),
            Kind::ConfigRead => api.expect("GET", CONFIG_PATH, None, 200),
            Kind::LookupSelf => api.expect("GET", "/v1/auth/token/lookup-self", None, 200),
        }
    }
}

/// One concurrency level: each kind's latencies, and the wall time its batches took.
struct Level {
    clients: usize,
    latencies: Vec<Vec<Duration>>,
    wall: Vec<Duration>,
}

impl Level {
    /// Requests per second, over the batches of `kind`.
    fn throughput(&self, kind: Kind) -> f64 {
        self.latencies[kind as usize].len() as f64 / self.wall[kind as usize].as_secs_f64()
    }
}

fn measure_level(serve: &Serve, clients: usize) -> anyhow::Result<Level> {
    let apis: Vec<Api> = (0..clients)
        .map(|_| Api::new(&serve.addr, ROOT_TOKEN))
        .collect();
    for kind in Kind::ALL {
        concurrently(&apis, WARM_UP, |api, _| kind.send(api).map(drop))?;
    }
    let mut level = Level {
        clients,
        latencies: vec![Vec::with_capacity(REQUESTS); Kind::ALL.len()],
        wall: vec![Duration::ZERO; Kind::ALL.len()],
    };
    for round in 0..ROUNDS {
        for i in 0..Kind::ALL.len() {
            let kind = Kind::ALL[(round + i) % Kind::ALL.len()];
            let started = Instant::now();
            let latencies = concurrently(&apis, REQUESTS / ROUNDS, |api, _| {
                let sent = Instant::now();
                kind.send(api)?;
                Ok(sent.elapsed())
            })?;
            level.wall[kind as usize] += started.elapsed();
            level.latencies[kind as usize].extend(latencies);
        }
    }
    Ok(level)
}

/// `total` calls of `call(api, n)`, one thread per client, each thread taking the next `n`
/// until all are taken; the results in no particular order.
fn concurrently<T: Send>(
    apis: &[Api],
    total: usize,
    call: impl Fn(&Api, usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let per_client: Vec<anyhow::Result<Vec<T>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = apis
            .iter()
            .map(|api| {
                let (next, call) = (&next, &call);
                scope.spawn(move || {
                    let mut results = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            return Ok(results);
                        }
                        results.push(call(api, n)?);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a client thread panicked"))
            .collect()
    });
    let mut results = Vec::with_capacity(total);
    for r in per_client {
        results.extend(r?);
    }
    Ok(results)
}

// --- 6. mass expiry under the rate limit ---------------------------------------------------

struct MassExpiry {
    issue_time: Duration,
    /// The TTL of the first lease issued and of the last.
    ttls: (u64, u64),
    /// From the common deadline to the first DELETE the fake received.
    reaction: Duration,
    /// From the first DELETE to the last successful one.
    wall: Duration,
    deleted: usize,
    /// The fake's rate-limit windows, and their complete ones summed up.
    windows: Vec<Window>,
    pacing: Pacing,
    /// The share of the time that the benchmark's reads held the fake's lock.
    reading: f64,
    logins: usize,
    by_route: BTreeMap<(String, String, u16), usize>,
    tokens_left: usize,
    leases_left: usize,
    /// Lines of the server's log: 429s waited out in the engine, revocations rescheduled by
    /// the lease manager, tokens revoked by the engine's rollback.
    guest_waits: usize,
    retries: usize,
    tidied: usize,
}

impl MassExpiry {
    fn limit_per_second(&self) -> f64 {
        f64::from(RATE_LIMIT) / RATE_WINDOW.as_secs_f64()
    }

    fn limit_share(&self) -> f64 {
        self.pacing.throughput() / self.limit_per_second()
    }

    fn allowed_share(&self) -> f64 {
        self.pacing.throughput() / self.pacing.attainable(RATE_LIMIT)
    }

    fn left(&self) -> usize {
        self.tokens_left + self.leases_left
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn mass_expiry(issue_rate: f64) -> anyhow::Result<MassExpiry> {
    progress("serve: starting a fresh server for the mass expiry");
    let serve = configured("")?;
    let planned = (MASS as f64 / issue_rate * 1.5).ceil() as u64 + 10;
    let deadline = unix_now() + planned;
    progress(&format!(
        "serve: issuing {MASS} tokens, all leases ending in {planned} s"
    ));
    let apis: Vec<Api> = (0..MASS_CLIENTS)
        .map(|_| Api::new(&serve.addr, ROOT_TOKEN))
        .collect();
    let started = Instant::now();
    let issued = concurrently(&apis, MASS, |api, _| {
        // Counted down, so that every lease ends at the deadline.
        let ttl = deadline.saturating_sub(unix_now());
        if ttl < 2 {
            bail!("issuing {MASS} tokens took longer than the {planned} s planned");
        }
        let body = json!({"label": "mass-expiry", "ttl": format!("{ttl}s")});
        let answer: Value =
            serde_json::from_str(&api.expect("PUT", TOKEN_PATH, Some(body), 200)?)?;
        let lease_id = answer["lease_id"]
            .as_str()
            .context("no lease_id in the answer")?
            .to_string();
        Ok((ttl, lease_id))
    })?;
    let issue_time = started.elapsed();
    let ttls = (
        issued.iter().map(|(ttl, _)| *ttl).max().unwrap_or(0),
        issued.iter().map(|(ttl, _)| *ttl).min().unwrap_or(0),
    );

    // Nothing reaches the fake until the deadline: what it sees from now on is the expiry.
    serve.hub.clear_calls();
    let logins_before = serve.hub.login_count();
    let limit_on = Instant::now();
    serve
        .hub
        .set_rate_limit(Some(RateLimit::new(RATE_LIMIT, RATE_WINDOW)));
    progress(&format!(
        "serve: issued in {:.1} s; rate limit {RATE_LIMIT} per {} s on; waiting for the expiry",
        issue_time.as_secs_f64(),
        RATE_WINDOW.as_secs()
    ));
    let watched = watch_deletions(&serve.hub, deadline)?;

    let lease_ids: Vec<String> = issued.into_iter().map(|(_, id)| id).collect();
    let leases_left = leases_left(&apis, &lease_ids)?;
    let calls = serve.hub.calls();
    let answers: Vec<Answer> = calls
        .iter()
        .filter_map(|c| {
            Some(Answer {
                at: c.checked_at?.saturating_duration_since(limit_on),
                status: c.status,
                retry_after: c.retry_after,
                revoked: c.method == "DELETE" && (200..300).contains(&c.status),
            })
        })
        .collect();
    // (when the fake checked it, done)
    let deletions: Vec<(Instant, bool)> = calls
        .iter()
        .filter(|c| c.method == "DELETE")
        .filter_map(|c| Some((c.checked_at?, (200..300).contains(&c.status))))
        .collect();
    let first = deletions
        .iter()
        .map(|d| d.0)
        .min()
        .context("the tokens left the fake without a DELETE")?;
    let last = deletions.iter().filter(|d| d.1).map(|d| d.0).max();
    let windows = pacing::windows(&answers, RATE_WINDOW);
    let pacing = Pacing::of(&windows).with_context(|| {
        format!(
            "the expiry took {} window(s) of {} s: none complete to measure",
            windows.len(),
            RATE_WINDOW.as_secs()
        )
    })?;
    let log = serve.log();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    Ok(MassExpiry {
        issue_time,
        ttls,
        reaction: first.saturating_duration_since(watched.deadline),
        wall: last.unwrap_or(first) - first,
        deleted: deletions.iter().filter(|d| d.1).count(),
        windows,
        pacing,
        reading: watched.reading,
        logins: serve.hub.login_count() - logins_before,
        by_route: calls_by_route(&calls),
        tokens_left: serve.hub.tokens().len(),
        leases_left,
        guest_waits: lines("Docker Hub rate limit on DELETE"),
        retries: lines("revoking a lease failed; will retry"),
        tidied: lines("ended without a revoke; revoking it now"),
    })
}

/// The expiry as the benchmark waited for it.
struct Watched {
    /// The common deadline of the leases.
    deadline: Instant,
    /// The share of the time that the benchmark's reads held the fake's lock.
    reading: f64,
}

/// Wait from just before `deadline` (Unix seconds) until the fake holds no token, failing
/// after [`EXPIRY_BOUND`].
fn watch_deletions(hub: &FakeHub, deadline: u64) -> anyhow::Result<Watched> {
    let until_deadline = (UNIX_EPOCH + Duration::from_secs(deadline))
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let deadline = Instant::now() + until_deadline;
    std::thread::sleep(until_deadline.saturating_sub(Duration::from_secs(1)));
    // Reading the fake holds its lock, which delays its answers: how long, in all.
    let mut reading = Duration::ZERO;
    for poll in 1.. {
        let read = Instant::now();
        let deleted = hub
            .calls()
            .iter()
            .filter(|c| c.method == "DELETE" && (200..300).contains(&c.status))
            .count();
        let now = Instant::now();
        reading += now - read;
        // Reading every token is costly while thousands are live: every 5 s, or when all
        // may be gone.
        if deleted >= MASS || poll % 50 == 0 {
            let empty = hub.tokens().is_empty();
            reading += now.elapsed();
            if empty {
                break;
            }
        }
        if now.saturating_duration_since(deadline) > EXPIRY_BOUND {
            bail!(
                "the leases ended {} s ago and {} of {MASS} tokens are still at the fake \
                 ({deleted} deleted)",
                EXPIRY_BOUND.as_secs(),
                hub.tokens().len()
            );
        }
        std::thread::sleep(POLL);
    }
    Ok(Watched {
        deadline,
        reading: reading.as_secs_f64() / deadline.elapsed().as_secs_f64(),
    })
}

/// Look up every lease until none is left (the fake is empty a moment before the server
/// forgets the last leases), for at most 30 s; returns how many are still there.
fn leases_left(apis: &[Api], lease_ids: &[String]) -> anyhow::Result<usize> {
    let until = Instant::now() + Duration::from_secs(30);
    let mut left = lease_ids.to_vec();
    while !left.is_empty() && Instant::now() < until {
        let found = concurrently(apis, left.len(), |api, n| {
            let (status, text) = api.send(
                "PUT",
                "/v1/sys/leases/lookup",
                Some(json!({"lease_id": left[n]})),
            )?;
            match status {
                200 => Ok(Some(left[n].clone())),
                400 if text.contains("invalid lease") => Ok(None),
                _ => bail!("looking up {} answered {status}: {text}", left[n]),
            }
        })?;
        left = found.into_iter().flatten().collect();
        if !left.is_empty() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    Ok(left.len())
}

// --- the report ----------------------------------------------------------------------------

impl Standalone {
    /// Sections 5–6 of the report.
    pub fn write(&self, out: &mut String) -> fmt::Result {
        self.issuance(out)?;
        self.expiry.write(out)
    }

    pub fn goals(&self) -> Vec<Goal> {
        let e = &self.expiry;
        vec![Goal {
            goal: format!(
                "`serve`, mass expiry of {MASS} leases under {RATE_LIMIT} requests per {} s: \
                 revocations ≥ {:.0} % of the rate the Hub's `Retry-After` allowed and ≥ {:.0} % \
                 of its advertised limit, 0 tokens left",
                RATE_WINDOW.as_secs(),
                GOAL_ALLOWED_SHARE * 100.0,
                GOAL_LIMIT_SHARE * 100.0
            ),
            this_run: format!(
                "{:.1} % and {:.1} %, {} left",
                e.allowed_share() * 100.0,
                e.limit_share() * 100.0,
                e.left()
            ),
            met: e.allowed_share() >= GOAL_ALLOWED_SHARE
                && e.limit_share() >= GOAL_LIMIT_SHARE
                && e.left() == 0,
        }]
    }

    fn issuance(&self, out: &mut String) -> fmt::Result {
        writeln!(
            out,
            "## 5. Standalone server: issuance at fixed concurrency"
        )?;
        writeln!(
            out,
            "\n`dockerhub-secrets serve` as the end-to-end harness starts it (tokens file, \
             encrypted store in a temporary\ndirectory, debug log), the fake answering at \
             once; requests as root. Each client is a thread with its\nown keep-alive \
             connection. Per level, {WARM_UP} warm-up requests of each kind, then {ROUNDS} \
             rounds of {} of each\nkind, the kinds in rotating order; throughput is a kind's \
             requests over the wall time of its batches.\nThe clients, the server and the fake \
             share the machine's CPUs.\n",
            REQUESTS / ROUNDS
        )?;
        writeln!(
            out,
            "| clients | request | n | requests/s | p50 ms | p99 ms |"
        )?;
        writeln!(out, "|---:|---|---:|---:|---:|---:|")?;
        for level in &self.levels {
            for kind in Kind::ALL {
                let s = &level.latencies[kind as usize];
                writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {} | {} |",
                    level.clients,
                    kind.name(),
                    s.len(),
                    level.throughput(kind),
                    ms(percentile(s, 50.0)),
                    ms(percentile(s, 99.0))
                )?;
            }
        }
        writeln!(out)?;
        writeln!(out, "| clients | ratio | throughput | p50 | p99 |")?;
        writeln!(out, "|---:|---|---:|---:|---:|")?;
        for level in &self.levels {
            let issue = &level.latencies[Kind::Issue as usize];
            for base in [Kind::ConfigRead, Kind::LookupSelf] {
                let b = &level.latencies[base as usize];
                writeln!(
                    out,
                    "| {} | issuance / {} | {:.2}× | {:.2}× | {:.2}× |",
                    level.clients,
                    base.name().split(": ").nth(1).unwrap_or_default(),
                    level.throughput(Kind::Issue) / level.throughput(base),
                    ratio(percentile(issue, 50.0), percentile(b, 50.0)),
                    ratio(percentile(issue, 99.0), percentile(b, 99.0))
                )?;
            }
        }
        if let [one, .., many] = self.levels.as_slice() {
            writeln!(out)?;
            writeln!(
                out,
                "- issuance throughput, {} clients / {} client: {:.2}× (baseline: {:.2}×)",
                many.clients,
                one.clients,
                many.throughput(Kind::Issue) / one.throughput(Kind::Issue),
                many.throughput(Kind::ConfigRead) / one.throughput(Kind::ConfigRead)
            )?;
        }
        writeln!(
            out,
            "- `sys/leases/revoke-prefix/dockerhub/token` (sync) of the {} issued leases: \
             {:.1} s ({} ms per lease)",
            self.revoked,
            self.revoke_all.as_secs_f64(),
            ms(self.revoke_all / self.revoked.max(1) as u32)
        )?;
        writeln!(
            out,
            "- tokens left at the fake after it: {}; logins at the fake in this section: {}",
            self.left_after_revoke, self.logins
        )?;
        writeln!(out)
    }
}

impl MassExpiry {
    fn write(&self, out: &mut String) -> fmt::Result {
        let window = RATE_WINDOW.as_secs();
        let p = &self.pacing;
        writeln!(
            out,
            "## 6. Standalone server: mass expiry under the Hub's rate limit"
        )?;
        writeln!(
            out,
            "\nA fresh server and fake. {MASS} tokens issued by {MASS_CLIENTS} clients with the \
             fake's rate limit off, each\nwith the TTL left to one common deadline ({} s for \
             the first, {} s for the last), so that every lease\nfalls due in the same second. \
             Then the fake's rate limit goes on:\n**{RATE_LIMIT} requests per {window} s window** \
             ({:.0}/s advertised; windows of seconds, as the Hub's limits are per\nminute). The \
             fake opens a window at the first request after the last one ended; every `/v2/` \
             request\ncounts, logins too; one over the budget gets 429 with `Retry-After`, the \
             seconds left in the window\nrounded up, at least 1. The server's lease timers do \
             the rest; the benchmark waits, reading the fake's\ncalls every {} ms, then looks \
             up every lease. Times below are the fake's, from its log: when its rate\nlimit \
             checked each request.\n",
            self.ttls.0,
            self.ttls.1,
            self.limit_per_second(),
            POLL.as_millis()
        )?;
        writeln!(out, "| | |")?;
        writeln!(out, "|---|---:|")?;
        writeln!(
            out,
            "| issuing {MASS} tokens ({MASS_CLIENTS} clients) | {:.1} s ({:.0}/s) |",
            self.issue_time.as_secs_f64(),
            MASS as f64 / self.issue_time.as_secs_f64()
        )?;
        writeln!(
            out,
            "| deadline → first DELETE at the fake | {:.2} s |",
            self.reaction.as_secs_f64()
        )?;
        writeln!(
            out,
            "| first DELETE → last successful DELETE | {:.1} s |",
            self.wall.as_secs_f64()
        )?;
        writeln!(out, "| tokens deleted at the fake | {} |", self.deleted)?;
        writeln!(
            out,
            "| windows the fake opened (complete: all but the last) | {} ({}) |",
            self.windows.len(),
            p.complete
        )?;
        writeln!(
            out,
            "| revocations in the complete windows, first opening → last | {} in {:.1} s |",
            p.revoked,
            p.span.as_secs_f64()
        )?;
        writeln!(
            out,
            "| revocation throughput, over the complete windows | {:.1}/s |",
            p.throughput()
        )?;
        writeln!(
            out,
            "| the fake's advertised limit | {:.1}/s |",
            self.limit_per_second()
        )?;
        writeln!(
            out,
            "| the rate the fake's `Retry-After` allowed: {} × {RATE_LIMIT} requests in {:.3} s \
             | {:.1}/s |",
            p.complete,
            p.held.as_secs_f64(),
            p.attainable(RATE_LIMIT)
        )?;
        writeln!(
            out,
            "| **throughput / advertised limit** | **{:.1} %** |",
            self.limit_share() * 100.0
        )?;
        writeln!(
            out,
            "| **throughput / rate `Retry-After` allowed** | **{:.1} %** |",
            self.allowed_share() * 100.0
        )?;
        writeln!(
            out,
            "| the server's own delay, allowed time → next window (of which later 429s moved \
             the gate) | {} ms ({} ms) |",
            ms(p.own_delay),
            ms(p.later_429s)
        )?;
        writeln!(
            out,
            "| 429s the fake answered | {} |",
            self.windows.iter().map(|w| w.refused).sum::<usize>()
        )?;
        writeln!(
            out,
            "| logins at the fake during the expiry | {} |",
            self.logins
        )?;
        writeln!(out, "| tokens left at the fake | {} |", self.tokens_left)?;
        writeln!(out, "| leases left at the server | {} |", self.leases_left)?;
        writeln!(out)?;
        writeln!(
            out,
            "Why the goal is stated against what `Retry-After` allowed: the header carries \
             whole seconds and the\nruntime honours it from its receipt \
             (host/src/runtime/gate.rs), so a window whose first 429 comes s\nseconds in \
             reopens for the server at s + ceil({window} − s), up to 1 s after the window's \
             end, and no client\nthat obeys the header can do better. What the server itself \
             adds is the time from that allowed\nmoment (the window's first 429 plus its \
             `Retry-After`, or the window's end if no 429 came) to the next\nwindow's first \
             request; the advertised-limit goal bounds what the whole-second header costs at \
             this\nwindow length. Later 429s, to requests already in flight, move the \
             runtime's gate a little past the\nfirst one's; that time counts as the server's \
             own. Rates are over the complete windows, first opening\nto last: the last window \
             holds only the remainder, which fits in a burst, and counting it would score\n\
             about 1/n above the limit with n windows. The server receives a 429 a little \
             after the fake checked\nthe request, so its own delay comes out, if anything, too \
             long.\n"
        )?;
        writeln!(
            out,
            "| window | opened s | counted | revoked | 429s | first 429 s + `Retry-After` | \
             allowed s | next opened s | own delay ms |"
        )?;
        writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
        for (n, w) in self.windows.iter().enumerate() {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                n + 1,
                secs(w.opened),
                w.counted,
                w.revoked,
                w.refused,
                w.first_429
                    .map_or("—".to_string(), |(at, s)| format!("{} + {s}", secs(at))),
                secs(w.allowed),
                w.next.map_or("—".to_string(), secs),
                w.own_delay().map_or("—".to_string(), ms)
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "From the server's log: 429s waited out inside the engine (its rollback): {}; \
             revocations the lease\nmanager rescheduled with backoff: {}; tokens the engine's \
             rollback revoked because their lease had\nended more than 60 s before: {} (a 404 \
             is a token that it and the lease manager both deleted). The\nbenchmark's reads of \
             the fake held its lock for {:.1} % of the expiry.\n",
            self.guest_waits,
            self.retries,
            self.tidied,
            self.reading * 100.0
        )?;
        writeln!(out, "| method | path | status | calls |")?;
        writeln!(out, "|---|---|---:|---:|")?;
        for ((method, path, status), n) in &self.by_route {
            writeln!(out, "| {method} | `{path}` | {status} | {n} |")?;
        }
        writeln!(out)
    }
}
