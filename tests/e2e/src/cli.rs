//! The real `bao` CLI, pointed at one server with one token.

use anyhow::bail;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct BaoCli {
    bao: PathBuf,
    addr: String,
    token: String,
    /// HOME for the CLI, so that no token helper file of the user's is read or written.
    home: PathBuf,
}

impl BaoCli {
    pub fn new(bao: PathBuf, addr: String, token: &str, home: &Path) -> BaoCli {
        BaoCli {
            bao,
            addr,
            token: token.to_string(),
            home: home.to_path_buf(),
        }
    }

    /// A `bao` command against the server with the default token.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_as(&self.token, args)
    }

    pub fn command_as(&self, token: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bao);
        command
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", token)
            .env("HOME", &self.home)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null());
        command
    }

    pub fn bao(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.command(args).output()?)
    }

    pub fn bao_as(&self, token: &str, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.command_as(token, args).output()?)
    }

    /// Run `bao` and return its stdout; fail with its stderr if it fails.
    pub fn bao_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        checked(args, self.bao(args)?)
    }

    /// Run `bao` with `-format=json` after the subcommand words and parse the output.
    pub fn bao_json(&self, args: &[&str]) -> anyhow::Result<Value> {
        self.bao_json_as(&self.token, args)
    }

    /// As [`BaoCli::bao_json`], with another token.
    pub fn bao_json_as(&self, token: &str, args: &[&str]) -> anyhow::Result<Value> {
        let split = args
            .iter()
            .position(|a| a.contains('/') || a.contains('='))
            .unwrap_or(args.len());
        let mut with_format: Vec<&str> = args[..split].to_vec();
        with_format.push("-format=json");
        with_format.extend(&args[split..]);
        let stdout = checked(&with_format, self.bao_as(token, &with_format)?)?;
        Ok(serde_json::from_str(&stdout)?)
    }

    /// The seed session's first command:
    /// `bao write dockerhub/config/hoeg namespace=hoeg,my-organization password=...`.
    pub fn write_seed_config(&self, password: &str) -> anyhow::Result<String> {
        self.bao_ok(&[
            "write",
            "dockerhub/config/hoeg",
            "namespace=hoeg,my-organization",
            &format!("password={password}"),
        ])
    }

    /// Run `bao` with `stdin` as its input.
    pub fn bao_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(stdin.as_bytes())?;
        checked(args, child.wait_with_output()?)
    }
}

fn checked(args: &[&str], output: Output) -> anyhow::Result<String> {
    if !output.status.success() {
        bail!(
            "bao {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}
