//! The `fakehub` binary: a fake Docker Hub for manual runs and tests in other languages.
//! Prints `listening on http://ADDR` once ready and serves until SIGTERM or SIGINT.

use std::{io::Write, net::SocketAddr, time::Duration};

use clap::Parser;
use fakehub::{Account, Config, FakeHub, Organization, RateLimit};

#[derive(Debug, Parser)]
#[command(version, about = "A fake Docker Hub API for tests")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// An account, as user:password or user:password:totp_base32 (2FA on). Repeatable.
    #[arg(long = "account", value_name = "USER:PASSWORD[:TOTP]")]
    accounts: Vec<Account>,
    /// An organization, as NAME:PLAN:OWNER[,OWNER..][:REPO[,REPO..][:MEMBER[,MEMBER..]]], e.g.
    /// acme:team:alice:app,web. PLAN is free, pro (no access tokens), team (10) or business
    /// (100); owners and members must be --account users; a member who does not own it
    /// cannot manage its tokens. Repeatable.
    #[arg(
        long = "organization",
        value_name = "NAME:PLAN:OWNERS[:REPOS[:MEMBERS]]"
    )]
    organizations: Vec<Organization>,
    /// Lifetime of issued JWTs, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    jwt_ttl: u64,
    /// Rate limit on /v2/ requests, as N/SECS (e.g. 180/60).
    #[arg(long, value_name = "N/SECS")]
    rate_limit: Option<RateLimit>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config {
        jwt_ttl: Duration::from_secs(args.jwt_ttl),
        rate_limit: args.rate_limit,
        accounts: args.accounts,
        organizations: args.organizations,
    };
    let hub = FakeHub::start_on(config, args.listen)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", hub.url())?;
    stdout.flush()?;
    wait_for_signal().await?;
    hub.shutdown();
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
