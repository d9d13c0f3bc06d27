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
    /// Most memory one request may use, in MiB.
    #[arg(
        long,
        env = "DOCKERHUB_SECRETS_MEMORY_LIMIT_MB",
        default_value_t = 64,
        global = true
    )]
    memory_limit_mb: usize,
    /// Longest one request may take, waiting on Docker Hub included (e.g. 60s, 2m).
    #[arg(long, env = "DOCKERHUB_SECRETS_TIME_LIMIT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    time_limit: Duration,
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
    /// Where the engine is mounted: `/v1/<mount>/...`.
    #[arg(long, default_value = "dockerhub")]
    mount: String,
    /// No lease outlives this (as Vault's mount max).
    #[arg(long, default_value = "768h", value_parser = humantime::parse_duration)]
    max_lease_ttl: Duration,
    /// How often the engine cleans up interrupted work and lost leases.
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

impl Cli {
    fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            hub_url: self.hub_url.clone(),
            memory_limit: self.memory_limit_mb << 20,
            time_limit: self.time_limit,
        }
    }
}

fn serve_plugin(cli: &Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(plugin::serve(cli.runtime_config()))
}

fn run_command(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => {
            Cli::command().print_long_help()?;
            return Ok(ExitCode::from(2));
        }
        Some(Command::Serve(ref args)) => {
            let key = match std::env::var("DOCKERHUB_SECRETS_KEY") {
                Ok(key) => KeySource::Value(key),
                Err(_) => KeySource::File(
                    args.key_file
                        .clone()
                        .unwrap_or_else(|| args.data.join("key")),
                ),
            };
            let config = ServeConfig {
                listen: args.listen,
                data: args.data.clone(),
                tokens: args.tokens.clone(),
                key,
                create: if args.init {
                    Create::Init
                } else {
                    Create::FirstStart
                },
                mount: args.mount.trim_matches('/').to_string(),
                max_lease_ttl: args.max_lease_ttl,
                rollback_interval: args.rollback_interval,
                runtime: cli.runtime_config(),
            };
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

fn main() -> ExitCode {
    match plugin::launch() {
        Launch::Unsupported(message) => {
            eprintln!("dockerhub-secrets: {message}");
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
                    eprintln!("dockerhub-secrets: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
