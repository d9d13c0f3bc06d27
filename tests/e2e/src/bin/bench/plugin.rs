//! The plugin in OpenBao: what it costs one `bao server -dev` on loopback, with the Docker Hub
//! fake answering at once.
//!
//! 1. **Issuance latency**: `PUT dockerhub/token/...` over keep-alive HTTP, against two
//!    builtin requests of the same server (`auth/token/create`, a kv-v1 write), interleaved in
//!    small batches so that the machine's drift hits all of them alike; then the CPU time
//!    each kind of request costs the plugin and the server, which says where the time goes.
//! 2. **Start to handshake**: the plugin binary spawned as a server spawns it, from spawn to
//!    its go-plugin handshake line, against the spawn of a trivial process.
//! 3. **Memory**: the plugin process's resident set, idle after mount and after the
//!    issuances, beside the OpenBao server's own.
//! 4. **Docker Hub calls per token lifecycle** (issue, then revoke), counted at the fake.

use crate::report::{Goal, mib, ms, percentile, ratio};
use crate::{Api, calls_by_route, progress};
use anyhow::{Context, bail};
use dockerhub_secrets_e2e::PASSWORD;
use dockerhub_secrets_e2e::openbao::{OpenBao, ROOT_TOKEN, eventually, plugin_binary};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Requests of each kind before measuring, so that connections, caches and the plugin's Hub
/// session are warm.
const WARM_UP: usize = 50;
/// Measured requests of each kind: `ROUNDS` rounds of one `BATCH` per kind.
const ROUNDS: usize = 100;
const BATCH: usize = 10;
/// Requests of each kind whose CPU time is measured, in one block per kind.
const CPU_REQUESTS: usize = 300;
/// Measured plugin starts (after `START_WARM_UP` unmeasured ones that fill the page cache).
const STARTS: usize = 30;
const START_WARM_UP: usize = 3;

/// The goals this benchmark checks.
const GOAL_ISSUE_VS_TOKEN_CREATE: f64 = 1.5;
const GOAL_START: Duration = Duration::from_millis(25);
const GOAL_RSS_KB: u64 = 20 * 1024;

const TOKEN_PATH: &str = "/v1/dockerhub/token/hoeg/my-organization";
const CONFIG_PATH: &str = "/v1/dockerhub/config/hoeg";

/// What sections 1–4 found.
pub struct Plugin {
    /// `bao version`.
    pub version: String,
    latencies: Vec<Vec<Duration>>,
    starts: Starts,
    idle: MemorySample,
    busy: MemorySample,
    lifecycles: HubCalls,
    revoke_time: Duration,
    cpu: Vec<CpuCost>,
}

pub fn measure() -> anyhow::Result<Plugin> {
    progress("plugin start → handshake");
    let starts = measure_starts()?;

    progress("starting OpenBao with the plugin");
    let bao = OpenBao::start(PASSWORD)?;
    let api = Api::new(&bao.addr, ROOT_TOKEN);
    // Idle: past the mount's own start-up work.
    std::thread::sleep(Duration::from_secs(1));
    let idle = MemorySample::take(&bao).context("memory, idle after mount")?;
    api.expect(
        "PUT",
        CONFIG_PATH,
        Some(json!({"namespace": "hoeg,my-organization", "password": PASSWORD})),
        204,
    )
    .context("configuring hoeg")?;
    bao.bao_ok(&["secrets", "enable", "-version=1", "kv"])?;

    progress("request latency (warm-up, then interleaved rounds)");
    for kind in Kind::ALL {
        for n in 0..WARM_UP {
            kind.send(&api, n)?;
        }
    }
    // Warm-up tokens leave first, so that the Hub calls counted below are exactly those of
    // the measured tokens' lifecycles.
    let (_, live) = revoke_issued(&api, &bao)?;
    if live > 0 {
        bail!("{live} warm-up token(s) still live at the fake after revoke-prefix");
    }
    bao.hub.clear_calls();
    let logins_before = bao.hub.login_count();
    let latencies = measure_latencies(&api)?;

    let busy = MemorySample::take(&bao).context("memory, after the issuances")?;

    progress("revoking the issued tokens");
    let (revoke_time, live_after_revoke) = revoke_issued(&api, &bao)?;
    let issued = latencies[Kind::Issue as usize].len();
    let lifecycles = HubCalls::count(&bao, issued, logins_before, live_after_revoke);

    // After the count above, so that section 4 counts exactly the measured lifecycles.
    progress("CPU time per request");
    let cpu = Kind::ALL
        .into_iter()
        .map(|kind| CpuCost::measure(&api, &bao, kind))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (_, live) = revoke_issued(&api, &bao)?;
    if live > 0 {
        bail!("{live} token(s) of the CPU measurement still live at the fake after revoke-prefix");
    }
    let version = bao.bao_ok(&["version"])?.trim().to_string();
    Ok(Plugin {
        version,
        latencies,
        starts,
        idle,
        busy,
        lifecycles,
        revoke_time,
        cpu,
    })
}

// --- 1. request latency --------------------------------------------------------------------

/// The requests compared: the plugin's issuance, two builtins of the same server as
/// baselines, and a plugin read that calls no Hub (a diagnostic: what the plugin round trip
/// costs without the Hub call and the lease).
#[derive(Clone, Copy)]
enum Kind {
    Issue,
    TokenCreate,
    KvWrite,
    ConfigRead,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Issue,
        Kind::TokenCreate,
        Kind::KvWrite,
        Kind::ConfigRead,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Issue => "plugin: PUT dockerhub/token/hoeg/my-organization",
            Kind::TokenCreate => "builtin: POST auth/token/create (ttl 5m)",
            Kind::KvWrite => "builtin: PUT kv/bench-<n> (kv v1)",
            Kind::ConfigRead => "plugin, diagnostic: GET dockerhub/config/hoeg (no Hub call)",
        }
    }

    /// Send the `n`th request of this kind and return how long it took, body read included.
    fn send(self, api: &Api, n: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        match self {
            Kind::Issue => api.expect("PUT", TOKEN_PATH, Some(json!({"label": "bench"})), 200),
            Kind::TokenCreate => api.expect(
                "POST",
                "/v1/auth/token/create",
                Some(json!({"ttl": "5m"})),
                200,
            ),
            Kind::KvWrite => api.expect(
                "PUT",
                &format!("/v1/kv/bench-{n}"),
                Some(json!({"value": n})),
                204,
            ),
            Kind::ConfigRead => api.expect("GET", CONFIG_PATH, None, 200),
        }?;
        Ok(started.elapsed())
    }
}

/// `ROUNDS` rounds of one batch per kind; each round starts with the next kind, so that no
/// kind always follows the same one.
fn measure_latencies(api: &Api) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut samples = vec![Vec::with_capacity(ROUNDS * BATCH); Kind::ALL.len()];
    for round in 0..ROUNDS {
        for i in 0..Kind::ALL.len() {
            let kind = Kind::ALL[(round + i) % Kind::ALL.len()];
            for _ in 0..BATCH {
                let n = WARM_UP + samples[kind as usize].len();
                samples[kind as usize].push(kind.send(api, n)?);
            }
        }
    }
    Ok(samples)
}

/// Revoke every lease under `dockerhub/token`, give the deletions at the fake up to 30 s more,
/// and return how long the revoke request took and how many tokens are still live there.
fn revoke_issued(api: &Api, bao: &OpenBao) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    api.expect(
        "PUT",
        "/v1/sys/leases/revoke-prefix/dockerhub/token",
        None,
        204,
    )?;
    let took = started.elapsed();
    eventually(Duration::from_secs(30), || bao.hub.live_tokens().is_empty());
    Ok((took, bao.hub.live_tokens().len()))
}

/// CPU time (user + system) that one kind of request costs the plugin process and the server,
/// per request, over a block of [`CPU_REQUESTS`]. The client is this process and the fake runs
/// on a thread of it: neither is counted.
struct CpuCost {
    kind: Kind,
    plugin: Duration,
    server: Duration,
}

impl CpuCost {
    fn measure(api: &Api, bao: &OpenBao, kind: Kind) -> anyhow::Result<CpuCost> {
        let (plugin, server) = plugin_and_server(bao)?;
        let before = (cpu_time(plugin)?, cpu_time(server)?);
        for n in 0..CPU_REQUESTS {
            kind.send(api, WARM_UP + ROUNDS * BATCH + n)?;
        }
        let after = (cpu_time(plugin)?, cpu_time(server)?);
        if plugin_and_server(bao)?.0 != plugin {
            bail!("the plugin process changed while measuring CPU time");
        }
        let per_request = |a: Duration, b: Duration| (b - a) / CPU_REQUESTS as u32;
        Ok(CpuCost {
            kind,
            plugin: per_request(before.0, after.0),
            server: per_request(before.1, after.1),
        })
    }
}

/// The plugin process (highest pid, see [`MemorySample::take`]) and its server.
fn plugin_and_server(bao: &OpenBao) -> anyhow::Result<(i32, i32)> {
    let Some(&plugin) = bao.plugin_pids().iter().max() else {
        bail!("the server runs no plugin process");
    };
    let server = field(&proc_status(plugin)?, "PPid")?.parse()?;
    Ok((plugin, server))
}

/// User + system CPU time of a process so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: i32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no command name in /proc/<pid>/stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime: the 14th and 15th fields of the line, the 12th and 13th after `)`.
    let ticks: u64 = fields
        .get(11..13)
        .context("a short /proc/<pid>/stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&t| t > 0)
        .context("sysconf(_SC_CLK_TCK)")?;
    Ok(Duration::from_micros(ticks * 1_000_000 / per_second))
}

// --- 2. plugin start → handshake -----------------------------------------------------------

/// Time from spawn to the first line on stdout, for the plugin and for two baselines.
struct Starts {
    plugin: Vec<Duration>,
    /// `/bin/echo x`: what spawning any process costs here.
    echo: Vec<Duration>,
    /// The plugin binary with `--version`: loading this binary without serving a plugin.
    version: Vec<Duration>,
    /// Plugins still running 2 s after SIGTERM, which SIGKILL then stopped.
    killed: usize,
}

fn measure_starts() -> anyhow::Result<Starts> {
    let dir = TempDir::create("dockerhub-secrets-bench")?;
    let cert = self_signed_cert(&dir.0)?;
    let plugin = plugin_binary()?;
    let stderr = dir.0.join("stderr.log");

    let as_server_spawns = || {
        let mut command = Command::new(&plugin);
        command
            .env(
                "VAULT_BACKEND_PLUGIN",
                "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
            )
            .env("PLUGIN_PROTOCOL_VERSIONS", "5")
            .env("PLUGIN_CLIENT_CERT", &cert)
            .env("PLUGIN_UNIX_SOCKET_DIR", &dir.0)
            .env("DOCKERHUB_SECRETS_HUB_URL", "http://127.0.0.1:1");
        command
    };
    let echo = || {
        let mut command = Command::new("/bin/echo");
        command.arg("x");
        command
    };
    let version = || {
        let mut command = Command::new(&plugin);
        command.arg("--version");
        command
    };

    let mut starts = Starts {
        plugin: Vec::new(),
        echo: Vec::new(),
        version: Vec::new(),
        killed: 0,
    };
    for round in 0..START_WARM_UP + STARTS {
        let (plugin_start, line, killed) = time_first_line(as_server_spawns(), &stderr)?;
        if !is_handshake(&line) {
            bail!("the plugin's first line is not a go-plugin handshake: {line:?}");
        }
        let (echo_start, _, _) = time_first_line(echo(), &stderr)?;
        let (version_start, _, _) = time_first_line(version(), &stderr)?;
        if round >= START_WARM_UP {
            starts.plugin.push(plugin_start);
            starts.echo.push(echo_start);
            starts.version.push(version_start);
            starts.killed += usize::from(killed);
        }
    }
    Ok(starts)
}

/// `1|5|unix|<path>|grpc|<base64>`.
fn is_handshake(line: &str) -> bool {
    let parts: Vec<&str> = line.split('|').collect();
    matches!(parts.as_slice(), ["1", "5", "unix", path, "grpc", cert]
        if Path::new(path).is_absolute() && !cert.is_empty())
}

/// Spawn `command`, time it to its first stdout line, then stop it. Returns the time, the
/// line, and whether it took SIGKILL to stop it.
fn time_first_line(
    mut command: Command,
    stderr: &Path,
) -> anyhow::Result<(Duration, String, bool)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr)?);
    // SAFETY: prctl is async-signal-safe; a plugin must not outlive this process, even when
    // it is killed.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let started = Instant::now();
    let mut process = Process(command.spawn().context("spawning")?);
    let mut stdout = process.0.stdout.take().expect("piped");
    let line = read_line(&mut stdout, started + Duration::from_secs(10));
    let elapsed = started.elapsed();
    let line = line.with_context(|| {
        format!(
            "{:?}: stderr: {}",
            command.get_program(),
            std::fs::read_to_string(stderr).unwrap_or_default()
        )
    })?;
    let killed = process.stop();
    Ok((elapsed, line, killed))
}

/// Read up to the first newline, failing at `deadline`.
fn read_line(stdout: &mut ChildStdout, deadline: Instant) -> anyhow::Result<String> {
    let mut line = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut poll = libc::pollfd {
            fd: stdout.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for an open descriptor that we own.
        let ready = unsafe { libc::poll(&mut poll, 1, left.as_millis() as libc::c_int) };
        if ready == 0 {
            bail!("no line on stdout within 10 s");
        }
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error.into());
        }
        let read = stdout.read(&mut buffer)?;
        if read == 0 {
            bail!("stdout closed before a full line: {line:?}");
        }
        line.extend_from_slice(&buffer[..read]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            return Ok(String::from_utf8(line)?);
        }
    }
}

/// A process this benchmark spawned; dropping it stops it.
struct Process(Child);

impl Process {
    /// SIGTERM, then SIGKILL after 2 s; true when SIGKILL was needed.
    fn stop(&mut self) -> bool {
        if self.0.try_wait().ok().flatten().is_some() {
            return false;
        }
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(2);
        let exited = loop {
            if self.0.try_wait().ok().flatten().is_some() {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !exited {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        !exited
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create(prefix: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed P-256 certificate (PEM) standing in for the server's AutoMTLS certificate.
fn self_signed_cert(dir: &Path) -> anyhow::Result<String> {
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", "/CN=localhost", "-days", "1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .stdin(Stdio::null())
        .output()
        .context("running openssl to make a certificate (is openssl installed?)")?;
    if !output.status.success() {
        bail!(
            "openssl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

// --- 3. memory -----------------------------------------------------------------------------

/// Resident memory of the plugin process and of the server that runs it, at one moment.
struct MemorySample {
    plugin: Memory,
    server: Memory,
    /// Plugin processes the server ran at that moment (one is expected).
    plugins: usize,
}

/// From `/proc/<pid>/status`, in kB. The resident set splits into anonymous memory (heap,
/// stacks, the engine's loaded code) and file pages (the mapped executable itself).
struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
    anon_kb: u64,
    file_kb: u64,
}

impl MemorySample {
    fn take(bao: &OpenBao) -> anyhow::Result<MemorySample> {
        let pids = bao.plugin_pids();
        // One is expected; with more (a restarted plugin whose predecessor is still exiting),
        // the highest pid, and the report says so.
        let Some(&pid) = pids.iter().max() else {
            bail!("the server runs no plugin process");
        };
        let status = proc_status(pid)?;
        let server: i32 = field(&status, "PPid")?.parse()?;
        Ok(MemorySample {
            plugin: Memory::from_status(&status)?,
            server: Memory::from_status(&proc_status(server)?)?,
            plugins: pids.len(),
        })
    }
}

impl Memory {
    fn from_status(status: &str) -> anyhow::Result<Memory> {
        let kb = |name| -> anyhow::Result<u64> {
            Ok(field(status, name)?.trim_end_matches("kB").trim().parse()?)
        };
        Ok(Memory {
            rss_kb: kb("VmRSS")?,
            hwm_kb: kb("VmHWM")?,
            anon_kb: kb("RssAnon")?,
            file_kb: kb("RssFile")?,
        })
    }
}

fn proc_status(pid: i32) -> anyhow::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))
}

fn field<'a>(status: &'a str, name: &str) -> anyhow::Result<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .with_context(|| format!("no {name} in /proc/<pid>/status"))
}

// --- 4. Docker Hub calls per lifecycle -----------------------------------------------------

/// What the fake received for the measured tokens, from issue to revoke.
struct HubCalls {
    lifecycles: usize,
    /// (method, path with token ids as `{uuid}`, status) → calls.
    by_route: BTreeMap<(String, String, u16), usize>,
    logins: usize,
    live_after_revoke: usize,
}

impl HubCalls {
    fn count(
        bao: &OpenBao,
        lifecycles: usize,
        logins_before: usize,
        live_after_revoke: usize,
    ) -> HubCalls {
        // A call whose status is still 0 is in flight; let it finish.
        eventually(Duration::from_secs(10), || {
            bao.hub.calls().iter().all(|c| c.status != 0)
        });
        HubCalls {
            lifecycles,
            by_route: calls_by_route(&bao.hub.calls()),
            logins: bao.hub.login_count() - logins_before,
            live_after_revoke,
        }
    }

    fn total(&self) -> usize {
        self.by_route.values().sum()
    }
}

// --- the report ----------------------------------------------------------------------------

impl Plugin {
    /// Sections 1–4 of the report.
    pub fn write(&self, out: &mut String) -> fmt::Result {
        latencies(out, &self.latencies)?;
        cpu_costs(out, &self.cpu)?;
        starts(out, &self.starts)?;
        let issued = self.latencies[Kind::Issue as usize].len();
        memory(out, &self.idle, &self.busy, issued)?;
        hub_calls(out, &self.lifecycles, self.revoke_time)
    }

    pub fn goals(&self) -> Vec<Goal> {
        let issue_ratio = ratio(
            percentile(&self.latencies[Kind::Issue as usize], 50.0),
            percentile(&self.latencies[Kind::TokenCreate as usize], 50.0),
        );
        let floor_ratio = ratio(
            percentile(&self.latencies[Kind::ConfigRead as usize], 50.0),
            percentile(&self.latencies[Kind::TokenCreate as usize], 50.0),
        );
        let start = percentile(&self.starts.plugin, 50.0);
        let rss = self.idle.plugin.rss_kb.max(self.busy.plugin.rss_kb);
        vec![
            Goal {
                goal: format!("issuance p50 ≤ {GOAL_ISSUE_VS_TOKEN_CREATE}× token-create p50"),
                this_run: format!(
                    "{issue_ratio:.2}× (a plugin read with no Hub call and no write: \
                     {floor_ratio:.2}×)"
                ),
                met: issue_ratio <= GOAL_ISSUE_VS_TOKEN_CREATE,
            },
            Goal {
                goal: format!(
                    "plugin start → handshake, median ≤ {} ms",
                    GOAL_START.as_millis()
                ),
                this_run: format!("{} ms", ms(start)),
                met: start <= GOAL_START,
            },
            Goal {
                goal: format!(
                    "plugin VmRSS ≤ {} MiB, idle and after the issuances",
                    GOAL_RSS_KB / 1024
                ),
                this_run: mib(rss),
                met: rss <= GOAL_RSS_KB,
            },
        ]
    }
}

fn latencies(out: &mut String, samples: &[Vec<Duration>]) -> fmt::Result {
    writeln!(out, "## 1. Request latency")?;
    writeln!(out)?;
    writeln!(
        out,
        "Over one keep-alive HTTP connection as root; {WARM_UP} warm-up requests of each \
         kind, then {ROUNDS} rounds of\n{BATCH} of each kind, the kinds in rotating order."
    )?;
    writeln!(out)?;
    writeln!(out, "| request | n | p50 ms | p99 ms |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for kind in Kind::ALL {
        let s = &samples[kind as usize];
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            kind.name(),
            s.len(),
            ms(percentile(s, 50.0)),
            ms(percentile(s, 99.0))
        )?;
    }
    writeln!(out)?;
    writeln!(out, "| ratio | p50 | p99 |")?;
    writeln!(out, "|---|---:|---:|")?;
    let issue = &samples[Kind::Issue as usize];
    for base in [Kind::TokenCreate, Kind::KvWrite, Kind::ConfigRead] {
        let b = &samples[base as usize];
        writeln!(
            out,
            "| issuance / {} | {:.2}× | {:.2}× |",
            base.name().split(": ").nth(1).unwrap_or_default(),
            ratio(percentile(issue, 50.0), percentile(b, 50.0)),
            ratio(percentile(issue, 99.0), percentile(b, 99.0))
        )?;
    }
    writeln!(out)
}

fn cpu_costs(out: &mut String, costs: &[CpuCost]) -> fmt::Result {
    writeln!(
        out,
        "CPU time per request, user + system, from `/proc/<pid>/stat`: {CPU_REQUESTS} \
         requests of each kind in one block,\nafter the rounds above. The plugin's requests \
         cost the server too: OpenBao calls the plugin over gRPC\n(an existence check before \
         each write, then the request), and the plugin calls back for storage and the\nmount's \
         max lease TTL (an issuance: a write-ahead record, the token record, the write-ahead \
         record's\nremoval, as Vault's framework does with `PutWAL`/`DeleteWAL`). With every \
         process on the same two cores,\nthose round trips are what the latency ratios above \
         measure.\n"
    )?;
    writeln!(
        out,
        "| request | plugin CPU ms | server CPU ms | together ms |"
    )?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for cost in costs {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            cost.kind.name(),
            ms(cost.plugin),
            ms(cost.server),
            ms(cost.plugin + cost.server)
        )?;
    }
    let of = |kind: Kind| costs.iter().find(|c| c.kind as usize == kind as usize);
    if let (Some(issue), Some(create), Some(read)) =
        (of(Kind::Issue), of(Kind::TokenCreate), of(Kind::ConfigRead))
    {
        writeln!(
            out,
            "\n- issuance / token-create, CPU of both processes: {:.2}×; the plugin's read \
             with no Hub call and no write / token-create: {:.2}×",
            ratio(issue.plugin + issue.server, create.server + create.plugin),
            ratio(read.plugin + read.server, create.server + create.plugin)
        )?;
    }
    writeln!(out)
}

fn starts(out: &mut String, starts: &Starts) -> fmt::Result {
    writeln!(out, "## 2. Plugin start → handshake line")?;
    writeln!(
        out,
        "\n`target/release/dockerhub-secrets` spawned with the environment OpenBao gives a \
         plugin (magic cookie,\nprotocol 5, a self-signed EC client certificate, a socket \
         directory), timed from spawn to its first\nstdout line (checked to be the \
         go-plugin handshake), then stopped with SIGTERM. {START_WARM_UP} unmeasured \
         starts\nfirst; each measured start is followed by one of each baseline.\n"
    )?;
    writeln!(out, "| process | n | median ms | max ms |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for (name, s) in [
        ("plugin: spawn → handshake line", &starts.plugin),
        ("baseline: `/bin/echo x` → its line", &starts.echo),
        (
            "diagnostic: `dockerhub-secrets --version` → its line",
            &starts.version,
        ),
    ] {
        writeln!(
            out,
            "| {name} | {} | {} | {} |",
            s.len(),
            ms(percentile(s, 50.0)),
            ms(*s.iter().max().expect("samples"))
        )?;
    }
    let plugin = percentile(&starts.plugin, 50.0);
    writeln!(out)?;
    writeln!(
        out,
        "- ratio of medians, plugin / `echo`: {:.1}×; plugin / `--version`: {:.1}×",
        ratio(plugin, percentile(&starts.echo, 50.0)),
        ratio(plugin, percentile(&starts.version, 50.0))
    )?;
    writeln!(
        out,
        "- plugins that needed SIGKILL (still running 2 s after SIGTERM): {} of {}",
        starts.killed,
        starts.plugin.len()
    )?;
    writeln!(out)
}

fn memory(
    out: &mut String,
    idle: &MemorySample,
    busy: &MemorySample,
    issued: usize,
) -> fmt::Result {
    writeln!(out, "## 3. Resident memory")?;
    writeln!(
        out,
        "\nFrom `/proc/<pid>/status`. VmHWM is the peak resident set since the process \
         started; RssAnon + RssFile = VmRSS,\nRssFile being pages of the mapped executable \
         (shared with the page cache). The server is the plugin's\nparent, the \
         `bao server -dev` process. The binary carries no compiler: `build.rs` compiled the \
         engine,\nand the pages of the embedded machine code are released once wasmtime has \
         loaded it.\n"
    )?;
    writeln!(
        out,
        "| when | plugin VmRSS | plugin VmHWM | plugin RssAnon | plugin RssFile | server VmRSS | \
         server VmHWM | plugin / server VmRSS |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for (when, s) in [
        ("idle after mount".to_string(), idle),
        (
            format!(
                "after {} issuances (and as many of each other request)",
                issued + WARM_UP
            ),
            busy,
        ),
    ] {
        writeln!(
            out,
            "| {when} | {} | {} | {} | {} | {} | {} | {:.2} |",
            mib(s.plugin.rss_kb),
            mib(s.plugin.hwm_kb),
            mib(s.plugin.anon_kb),
            mib(s.plugin.file_kb),
            mib(s.server.rss_kb),
            mib(s.server.hwm_kb),
            s.plugin.rss_kb as f64 / s.server.rss_kb as f64
        )?;
    }
    if idle.plugins != 1 || busy.plugins != 1 {
        writeln!(
            out,
            "\nPlugin processes running: {} idle, {} after the issuances (the one with the \
             highest pid was measured).",
            idle.plugins, busy.plugins
        )?;
    }
    writeln!(out)
}

fn hub_calls(out: &mut String, calls: &HubCalls, revoke_time: Duration) -> fmt::Result {
    writeln!(out, "## 4. Docker Hub calls per token lifecycle")?;
    writeln!(
        out,
        "\nThe fake's calls from the first measured issuance to the end of \
         `sys/leases/revoke-prefix/dockerhub/token`\n({} lifecycles: issue, then revoke).\n",
        calls.lifecycles
    )?;
    writeln!(out, "| method | path | status | calls | per lifecycle |")?;
    writeln!(out, "|---|---|---:|---:|---:|")?;
    for ((method, path, status), n) in &calls.by_route {
        writeln!(
            out,
            "| {method} | `{path}` | {status} | {n} | {:.3} |",
            *n as f64 / calls.lifecycles as f64
        )?;
    }
    writeln!(
        out,
        "| all | | | {} | {:.3} |",
        calls.total(),
        calls.total() as f64 / calls.lifecycles as f64
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "- logins (JWTs issued by the fake) in that span: {}",
        calls.logins
    )?;
    writeln!(
        out,
        "- revoke-prefix of {} leases took {:.1} s ({} ms per lease)",
        calls.lifecycles,
        revoke_time.as_secs_f64(),
        ms(revoke_time / calls.lifecycles.max(1) as u32)
    )?;
    writeln!(
        out,
        "- live tokens at the fake after the revoke: {}",
        calls.live_after_revoke
    )?;
    writeln!(out)
}
