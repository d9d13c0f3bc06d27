//! The `dockerhub-secrets` binary: an OpenBao/Vault plugin when a server starts it, a small
//! command-line tool otherwise.

use clap::{CommandFactory, Parser, Subcommand};
use dockerhub_secrets::plugin::{self, Launch};
use dockerhub_secrets::runtime::component;
use dockerhub_secrets::serve::{
    self, ServeConfig,
    store::{Create, KeySource},
};
use dockerhub_secrets::{RuntimeConfig, logging};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const ABOUT: &str = "\
Docker Hub access tokens with Vault leases: a secrets engine for OpenBao and Vault.

This binary is the plugin. Put it in the server's plugin directory and register it:

  bao plugin register -sha256=$(sha256sum dockerhub-secrets | cut -d' ' -f1) secret dockerhub-secrets
  bao secrets enable -path=dockerhub dockerhub-secrets

The server starts it with the settings below taken from its environment.";

#[derive(Parser)]
#[command(version, about = ABOUT)]
struct Cli {
    /// Where Docker Hub is: the real Hub, a proxy, or a fake for tests. The engine reaches
    /// this origin and nothing else.
    #[arg(
        long,
        env = "DOCKERHUB_SECRETS_HUB_URL",
        default_value = "https://hub.docker.com",
        global = true
    )]
    hub_url: String,
    /// Most memory one request may use, in MiB: 16 to 1024.
    #[arg(
        long,
        env = "DOCKERHUB_SECRETS_MEMORY_LIMIT_MB",
        default_value_t = 64,
        global = true
    )]
    memory_limit_mb: usize,
    /// Longest one request may take, waiting on Docker Hub included: 1s to 1h (e.g. 60s, 2m).
    #[arg(long, env = "DOCKERHUB_SECRETS_TIME_LIMIT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    time_limit: Duration,
    /// As a plugin: how long disabling a mount waits for Docker Hub to settle token creations
    /// whose outcome is unknown (the Hub could not be asked, or may still carry one out)
    /// before OpenBao removes the mount: 0s to 1h (e.g. 2m, 10m).
    #[arg(long, env = "DOCKERHUB_SECRETS_UNMOUNT_WAIT", default_value = "2m", value_parser = humantime::parse_duration)]
    unmount_wait: Duration,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the engine over Vault's HTTP API, with its own encrypted storage and lease
    /// timers, for sites without OpenBao or Vault.
    Serve(ServeArgs),
    /// Show the version and the embedded engine component.
    Info,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (loopback unless a TLS-terminating proxy sits in front).
    #[arg(
        long,
        env = "DOCKERHUB_SECRETS_LISTEN",
        default_value = "127.0.0.1:8200"
    )]
    listen: std::net::SocketAddr,
    /// Directory of the encrypted store.
    #[arg(long, env = "DOCKERHUB_SECRETS_DATA")]
    data: PathBuf,
    /// The tokens file: client tokens (as SHA-256) and their Vault policies, in HCL.
    #[arg(long, env = "DOCKERHUB_SECRETS_TOKENS")]
    tokens: PathBuf,
    /// The store's key file, created (mode 0600) on first start; default `<data>/key`.
    /// Not used when the key is given in DOCKERHUB_SECRETS_KEY.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Where the engine is mounted: `/v1/<mount>/...`. As a Vault secrets mount's path:
    /// leading `/`s and one trailing `/` are dropped (`/dockerhub/` is `dockerhub`); no empty,
    /// `.` or `..` segment, and not under Vault's own `sys/`, `auth/`, `audit/`, `identity/`
    /// or `cubbyhole/`.
    #[arg(long, default_value = "dockerhub")]
    mount: String,
    /// The longest a lease may last from its issue, as a Vault mount's tuned max lease TTL:
    /// it caps new leases and renewals. A lease issued before a restart with a lower value
    /// keeps its end; only its renewals are capped. At least 1s: Vault's 0 (the system
    /// default) is this flag's default, so leave the flag out for it.
    #[arg(long, default_value = "768h", value_parser = humantime::parse_duration)]
    max_lease_ttl: Duration,
    /// How often the engine cleans up interrupted work and lost leases (OpenBao: every
    /// minute); between 1s and 10m, the time Docker Hub may still take to make a token whose
    /// creation's answer was lost, during which rollback keeps looking for it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    rollback_interval: Duration,
    /// Create a new, empty store although its key exists. Without it, a store that is
    /// missing or empty while its key file exists (or the key is in DOCKERHUB_SECRETS_KEY)
    /// is refused: its configs and leases would be forgotten while their Docker Hub tokens
    /// stay live. Needed on the first start with DOCKERHUB_SECRETS_KEY; refused when the
    /// store already holds data.
    #[arg(long)]
    init: bool,
}

/// `--time-limit`'s range: at least a second, for a Docker Hub call to fit; at most an hour.
const TIME_LIMITS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);

/// `--unmount-wait`'s range: none (one attempt) to an hour.
const UNMOUNT_WAITS: std::ops::RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(3600);

/// `--rollback-interval`'s range: a pause between runs, and at most the engine's landing
/// window (10 minutes), within which rollback looks for a token whose creation's answer was
/// lost.
const ROLLBACK_INTERVALS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(600);

/// `--memory-limit-mb`'s range: room for the engine and a request, up to the most the
/// runtime's instance pool reserves per instance (1 GiB).
const MEMORY_LIMITS_MB: std::ops::RangeInclusive<usize> = 16..=1024;

impl Cli {
    fn runtime_config(&self) -> anyhow::Result<RuntimeConfig> {
        within("--time-limit", self.time_limit, &TIME_LIMITS, None)?;
        anyhow::ensure!(
            MEMORY_LIMITS_MB.contains(&self.memory_limit_mb),
            "--memory-limit-mb {}: must be between {} and {}",
            self.memory_limit_mb,
            MEMORY_LIMITS_MB.start(),
            MEMORY_LIMITS_MB.end(),
        );
        Ok(RuntimeConfig {
            hub_url: self.hub_url.clone(),
            memory_limit: self.memory_limit_mb << 20,
            time_limit: self.time_limit,
        })
    }
}

/// `--mount` as Vault takes a secrets mount's path (`bao secrets enable -path=...`).
fn mount_path(spelling: &str) -> anyhow::Result<String> {
    vault_front::mount_path(spelling).map_err(|why| anyhow::anyhow!("--mount {spelling:?}: {why}"))
}

/// A duration flag that must lie in `range`; the refusal names the range, and `why` if given.
fn within(
    flag: &str,
    value: Duration,
    range: &std::ops::RangeInclusive<Duration>,
    why: Option<&str>,
) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        range.contains(&value),
        "{flag} {}: must be between {} and {}{}",
        humantime::format_duration(value),
        humantime::format_duration(*range.start()),
        humantime::format_duration(*range.end()),
        why.map(|why| format!(" ({why})")).unwrap_or_default(),
    );
    Ok(value)
}

/// A duration flag that must be at least a second.
fn at_least_a_second(flag: &str, value: Duration, why: &str) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value >= Duration::from_secs(1),
        "{flag} {}: must be at least 1s ({why})",
        humantime::format_duration(value)
    );
    Ok(value)
}

impl ServeArgs {
    fn config(&self, runtime: RuntimeConfig) -> anyhow::Result<ServeConfig> {
        let key = match std::env::var("DOCKERHUB_SECRETS_KEY") {
            Ok(key) => KeySource::Value(key),
            Err(_) => KeySource::File(
                self.key_file
                    .clone()
                    .unwrap_or_else(|| self.data.join("key")),
            ),
        };
        Ok(ServeConfig {
            listen: self.listen,
            data: self.data.clone(),
            tokens: self.tokens.clone(),
            key,
            create: if self.init {
                Create::Init
            } else {
                Create::FirstStart
            },
            mount: mount_path(&self.mount)?,
            max_lease_ttl: at_least_a_second(
                "--max-lease-ttl",
                self.max_lease_ttl,
                "for Vault's 0, the default of 768h, leave the flag out",
            )?,
            rollback_interval: within(
                "--rollback-interval",
                self.rollback_interval,
                &ROLLBACK_INTERVALS,
                Some(
                    "rollback looks for the token of a creation whose answer was lost while \
                     Docker Hub may still make it, for 10 minutes",
                ),
            )?,
            runtime,
        })
    }
}

fn serve_plugin(cli: &Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = cli.runtime_config()?;
    let unmount_wait = within("--unmount-wait", cli.unmount_wait, &UNMOUNT_WAITS, None)?;
    runtime.block_on(plugin::serve(config, unmount_wait))
}

fn run_command(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => {
            Cli::command().print_long_help()?;
            return Ok(ExitCode::from(2));
        }
        Some(Command::Serve(ref args)) => {
            let config = args.config(cli.runtime_config()?)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve::serve(config))?;
        }
        Some(Command::Info) => {
            println!("dockerhub-secrets {}", env!("CARGO_PKG_VERSION"));
            println!("engine component sha256 {}", component::sha256());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Say why the process stops, on stderr. Unlike `eprintln!`, a stderr that is gone (its
/// reader exited) does not turn the exit into a panic.
fn report(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "dockerhub-secrets: {message}");
}

fn main() -> ExitCode {
    match plugin::launch() {
        Launch::Unsupported(message) => {
            report(&message);
            ExitCode::FAILURE
        }
        Launch::Plugin => {
            logging::init_hclog();
            let cli = Cli::parse();
            match serve_plugin(&cli) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("the plugin failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Launch::Command => {
            logging::init_text();
            match run_command(Cli::parse()) {
                Ok(code) => code,
                Err(e) => {
                    report(&format!("{e:#}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
