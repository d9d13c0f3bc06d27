//! The `dockerhub-secrets` binary.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dockerhub_secrets::runtime::component;
use std::path::PathBuf;

/// Docker Hub access tokens with Vault leases.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the version and the embedded engine component.
    Info,
    /// Compile the embedded engine component ahead of time (used by `just build`).
    Precompile {
        /// Where to write the precompiled artifact.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Info => {
            println!("dockerhub-secrets {}", env!("CARGO_PKG_VERSION"));
            println!("engine component sha256 {}", component::sha256());
            println!("precompiled {}", component::is_precompiled());
        }
        Command::Precompile { out } => {
            let artifact = component::precompile()?;
            std::fs::write(&out, artifact).with_context(|| format!("writing {}", out.display()))?;
        }
    }
    Ok(())
}
