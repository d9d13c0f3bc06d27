//! The small go-plugin services every plugin process serves: the controller (the server
//! asks the plugin to exit), stdio (nothing to forward: logs go to stderr), and OpenBao's
//! plugin version.

use super::proto::logical::plugin_version_server::PluginVersion;
use super::proto::logical::{self, VersionReply};
use super::proto::plugin::grpc_controller_server::GrpcController;
use super::proto::plugin::grpc_stdio_server::GrpcStdio;
use super::proto::plugin::{self as go, StdioData};
use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Ends the process when the server says so.
pub struct Controller {
    pub shutdown: watch::Sender<bool>,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<go::Empty>) -> Result<Response<go::Empty>, Status> {
        tracing::debug!("the server asked the plugin to shut down");
        self.shutdown.send_replace(true);
        Ok(Response::new(go::Empty {}))
    }
}

pub struct Stdio;

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = Pin<Box<dyn Stream<Item = Result<StdioData, Status>> + Send>>;

    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

/// The crate's semver, which becomes the version `bao plugin list` shows.
pub struct Version;

pub const PLUGIN_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

#[tonic::async_trait]
impl PluginVersion for Version {
    async fn version(&self, _: Request<logical::Empty>) -> Result<Response<VersionReply>, Status> {
        Ok(Response::new(VersionReply {
            plugin_version: PLUGIN_VERSION.to_string(),
        }))
    }
}
