//! `wasi:logging` for the engine: records become `tracing` events with target `engine`.
//!
//! The engine promises never to log secrets; the host adds nothing of its own to a record.

use super::HostState;
use super::bindings::logging::{Host, Level};

impl Host for HostState {
    async fn log(
        &mut self,
        level: Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        match level {
            Level::Trace => tracing::trace!(target: "engine", context, "{message}"),
            Level::Debug => tracing::debug!(target: "engine", context, "{message}"),
            Level::Info => tracing::info!(target: "engine", context, "{message}"),
            Level::Warn => tracing::warn!(target: "engine", context, "{message}"),
            Level::Error | Level::Critical => {
                tracing::error!(target: "engine", context, "{message}")
            }
        }
        Ok(())
    }
}
