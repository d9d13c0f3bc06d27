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
//!    the revocations use, how many 429s the fake answered, and what is left behind.

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
/// The fake's rate limit during the expiry: 100 requests per second, so that 10 000
/// deletions take 100 s at the advertised rate.
const RATE_LIMIT: u32 = 100;
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// How long the expiry may take before the run fails.
const EXPIRY_BOUND: Duration = Duration::from_secs(600);
/// How often the fake's calls are read during the expiry.
const POLL: Duration = Duration::from_millis(100);
/// The timeline of deletions in the report, in buckets of this length.
const TIMELINE_BUCKET: Duration = Duration::from_secs(10);

/// The goal: revocations use at least this share of the advertised limit.
const GOAL_LIMIT_SHARE: f64 = 0.95;

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
    let serve = configured()?;
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

/// A server against a fresh fake, with `config/hoeg` written as in the seed session.
fn configured() -> anyhow::Result<Serve> {
    let hub = FakeHub::start(Config::default().account("hoeg", PASSWORD, None))?;
    let serve = Serve::start(hub, &[])?;
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
    watched: Watched,
    /// 429s the fake answered, and the requests it counted against the limit.
    limited: usize,
    counted: usize,
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

    fn throughput(&self) -> f64 {
        self.watched.deleted as f64 / self.watched.span.as_secs_f64()
    }

    fn share(&self) -> f64 {
        self.throughput() / self.limit_per_second()
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
    let serve = configured()?;
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
    let log = serve.log();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    Ok(MassExpiry {
        issue_time,
        ttls,
        watched,
        limited: calls.iter().filter(|c| c.status == 429).count(),
        counted: calls
            .iter()
            .filter(|c| ![0, 429].contains(&c.status))
            .count(),
        logins: serve.hub.login_count() - logins_before,
        by_route: calls_by_route(&calls),
        tokens_left: serve.hub.tokens().len(),
        leases_left,
        guest_waits: lines("Docker Hub rate limit on DELETE"),
        retries: lines("revoking a lease failed; will retry"),
        tidied: lines("ended without a revoke; revoking it now"),
    })
}

/// The deletions at the fake, as the benchmark saw them.
struct Watched {
    /// From the common deadline to the first DELETE the fake received.
    reaction: Duration,
    /// From the first DELETE to the last successful one.
    span: Duration,
    deleted: usize,
    /// Successful deletions per [`TIMELINE_BUCKET`] from the first DELETE.
    timeline: Vec<usize>,
    /// The share of the time that the benchmark's reads held the fake's lock.
    reading: f64,
}

/// Watch the fake from just before `deadline` (Unix seconds) until it holds no token,
/// failing after [`EXPIRY_BOUND`].
fn watch_deletions(hub: &FakeHub, deadline: u64) -> anyhow::Result<Watched> {
    let until_deadline = (UNIX_EPOCH + Duration::from_secs(deadline))
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let deadline = Instant::now() + until_deadline;
    std::thread::sleep(until_deadline.saturating_sub(Duration::from_secs(1)));
    let mut first: Option<Instant> = None;
    let mut last = (0, deadline);
    // (time since the first DELETE, deletions so far)
    let mut samples: Vec<(Duration, usize)> = Vec::new();
    // Reading the fake holds its lock, which delays its answers: how long, in all.
    let mut reading = Duration::ZERO;
    for poll in 1.. {
        let read = Instant::now();
        let calls = hub.calls();
        let now = Instant::now();
        reading += now - read;
        if first.is_none() && calls.iter().any(|c| c.method == "DELETE") {
            first = Some(now);
        }
        let deleted = calls
            .iter()
            .filter(|c| c.method == "DELETE" && (200..300).contains(&c.status))
            .count();
        if deleted > last.0 {
            last = (deleted, now);
        }
        if let Some(first) = first {
            samples.push((now - first, deleted));
        }
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
    let first = first.context("the tokens left the fake without a DELETE")?;
    let span = last.1 - first;
    let buckets = (span.as_secs_f64() / TIMELINE_BUCKET.as_secs_f64()).ceil() as u32;
    let mut before = 0;
    let timeline = (1..=buckets)
        .map(|b| {
            let total = samples
                .iter()
                .take_while(|(t, _)| *t <= TIMELINE_BUCKET * b)
                .last()
                .map_or(0, |(_, n)| *n);
            let in_bucket = total - before;
            before = total;
            in_bucket
        })
        .collect();
    Ok(Watched {
        reaction: first.saturating_duration_since(deadline),
        span,
        deleted: last.0,
        timeline,
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
                "`serve`, mass expiry of {MASS} leases: revocations ≥ {:.0} % of the Hub's \
                 advertised rate limit, 0 tokens left",
                GOAL_LIMIT_SHARE * 100.0
            ),
            this_run: format!("{:.1} %, {} left", e.share() * 100.0, e.left()),
            met: e.share() >= GOAL_LIMIT_SHARE && e.left() == 0,
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
        writeln!(
            out,
            "## 6. Standalone server: mass expiry under the Hub's rate limit"
        )?;
        writeln!(
            out,
            "\nA fresh server and fake. {MASS} tokens issued by {MASS_CLIENTS} clients with the \
             fake's rate limit off, each\nwith the TTL left to one common deadline ({} s for \
             the first, {} s for the last), so that every lease\nfalls due in the same second. \
             Then the fake's rate limit goes on: **{RATE_LIMIT} requests per {} s window**\n\
             (fixed windows; every `/v2/` request counts, logins too; a request over the limit \
             gets 429 with\n`Retry-After`, the seconds left in the window, at least 1). The \
             server's lease timers do the rest;\nthe benchmark reads the fake's calls every \
             {} ms, and at the end looks up every lease.\n",
            self.ttls.0,
            self.ttls.1,
            RATE_WINDOW.as_secs(),
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
            self.watched.reaction.as_secs_f64()
        )?;
        writeln!(
            out,
            "| first DELETE → last successful DELETE | {:.1} s |",
            self.watched.span.as_secs_f64()
        )?;
        writeln!(
            out,
            "| tokens deleted at the fake | {} |",
            self.watched.deleted
        )?;
        writeln!(
            out,
            "| revocation throughput | {:.1}/s |",
            self.throughput()
        )?;
        writeln!(
            out,
            "| the fake's advertised limit | {:.1}/s |",
            self.limit_per_second()
        )?;
        writeln!(
            out,
            "| **throughput / advertised limit** | **{:.1} %** |",
            self.share() * 100.0
        )?;
        writeln!(out, "| 429s the fake answered | {} |", self.limited)?;
        writeln!(
            out,
            "| logins at the fake during the expiry | {} |",
            self.logins
        )?;
        writeln!(out, "| tokens left at the fake | {} |", self.tokens_left)?;
        writeln!(out, "| leases left at the server | {} |", self.leases_left)?;
        writeln!(out)?;
        let last_bucket = self.watched.span.as_secs_f64() % TIMELINE_BUCKET.as_secs_f64();
        writeln!(
            out,
            "Successful deletions per {} s from the first DELETE (the advertised limit allows \
             {:.0}; the last bucket\nis {last_bucket:.1} s): {}\n",
            TIMELINE_BUCKET.as_secs(),
            self.limit_per_second() * TIMELINE_BUCKET.as_secs_f64(),
            self.watched
                .timeline
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        // The first DELETE opened the first window, the last successful one is in the last.
        let windows = self.counted.div_ceil(RATE_LIMIT as usize).max(2);
        let period = self.watched.span / (windows as u32 - 1);
        writeln!(
            out,
            "Where the rest of the limit went. The fake counted {} requests, so it opened {windows} \
             windows, one every\n{} ms on average: each {} ms window was followed by {} ms in \
             which no counted request arrived.\nRevocations report a 429 at once and wait at \
             the runtime's gate, which opens when the latest\n`Retry-After` received ends, \
             counted from its receipt as RFC 9110 says (host/src/runtime/gate.rs): with\n\
             whole-second `Retry-After` and 1 s windows, each window costs the time its budget \
             took to spend. From the\nserver's \
             log: 429s waited out inside the engine (its rollback): {} ({:.1} per window); \
             revocations\nthe lease manager rescheduled with backoff: {}; tokens the engine's \
             rollback revoked because their\nlease had ended more than 60 s before: {} (a 404 \
             is a token that it and the lease manager both\ndeleted).\n",
            self.counted,
            period.as_millis(),
            RATE_WINDOW.as_millis(),
            period.saturating_sub(RATE_WINDOW).as_millis(),
            self.guest_waits,
            self.guest_waits as f64 / windows as f64,
            self.retries,
            self.tidied
        )?;
        writeln!(
            out,
            "The fake's windows are fixed, so the budget of n windows fits in n − 1 periods \
             plus the last burst: a\nclient that filled every window would score about 1/n \
             above 100 % here. The benchmark's reads of\nthe fake held its lock for {:.1} % \
             of the expiry.\n",
            self.watched.reading * 100.0
        )?;
        writeln!(out, "| method | path | status | calls |")?;
        writeln!(out, "|---|---|---:|---:|")?;
        for ((method, path, status), n) in &self.by_route {
            writeln!(out, "| {method} | `{path}` | {status} | {n} |")?;
        }
        writeln!(out)
    }
}
