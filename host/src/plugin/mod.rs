//! The OpenBao/Vault plugin host: the binary as a secrets-engine plugin that the server
//! starts and talks to over go-plugin's gRPC protocol (see
//! `../shared/docs/vault-plugin-protocol.md`).
//!
//! Start-up: check the magic cookie and protocol version, make a certificate, listen on a
//! unix socket, print the handshake line, then serve `pb.Backend` (engine requests), the
//! broker (for the storage connection back to the server), health, the controller and the
//! plugin version until the server asks the plugin to stop, or is gone. The engine component
//! is loaded precompiled, so the handshake follows process start within milliseconds.

mod backend;
mod broker;
mod go_plugin;
mod help;
mod parent;
mod proto;
mod storage;
mod tls;

use crate::{Engine, Runtime, RuntimeConfig};
use anyhow::Context;
use base64::Engine as _;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// go-plugin's handshake for Vault backend plugins.
const COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
const COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
const APP_PROTOCOL_VERSION: &str = "5";
const CORE_PROTOCOL_VERSION: &str = "1";
/// How long the plugin finishes its work once its server is gone, before it exits anyway:
/// nothing it answers can reach anyone.
const ORPHAN_EXIT_GRACE: Duration = Duration::from_secs(2);

/// How the process was started.
pub enum Launch {
    /// Not by a server: the binary is a command-line tool.
    Command,
    /// By OpenBao or Vault, as a secrets-engine plugin.
    Plugin,
    /// By a server, but not in a way this plugin speaks (another plugin type, another
    /// protocol version).
    Unsupported(String),
}

/// Read the launch from the environment the server sets.
pub fn launch() -> Launch {
    let Some(cookie) = std::env::var_os(COOKIE_KEY) else {
        return Launch::Command;
    };
    if cookie != COOKIE_VALUE {
        return Launch::Unsupported(format!(
            "{COOKIE_KEY} is set but is not the secrets-engine cookie: this binary is a secrets \
             engine plugin and cannot serve as another plugin type"
        ));
    }
    let versions = std::env::var("PLUGIN_PROTOCOL_VERSIONS").unwrap_or_default();
    if !versions
        .split(',')
        .any(|v| v.trim() == APP_PROTOCOL_VERSION)
    {
        return Launch::Unsupported(format!(
            "the server offers plugin protocol versions {versions:?}; this plugin speaks version \
             {APP_PROTOCOL_VERSION}"
        ));
    }
    Launch::Plugin
}

/// A TLS connection on the unix socket, as tonic's server takes it.
struct Connection(tokio_rustls::server::TlsStream<UnixStream>);

impl Connected for Connection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The socket file, removed when the plugin exits.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn socket_path() -> PathBuf {
    let dir = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    // RandomState is seeded randomly per process: a name no earlier plugin left behind.
    let random = std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        std::process::id(),
    );
    dir.join(format!(
        "dockerhub-secrets-{}-{random:x}",
        std::process::id()
    ))
}

/// Serve as a plugin until the server shuts the plugin down.
///
/// `unmount_wait`: how long an unmount waits for Docker Hub to settle token creations whose
/// outcome is unknown before OpenBao removes the mount's storage.
pub async fn serve(config: RuntimeConfig, unmount_wait: Duration) -> anyhow::Result<()> {
    let host_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .context("PLUGIN_CLIENT_CERT is not set: the server must run plugins with AutoMTLS")?;
    let host_cert = tls::parse_host_cert(&host_cert)?;
    tls::warm_up();
    let identity = tls::Identity::generate()?;
    let engine = Arc::new(Engine::new(Arc::new(Runtime::new(config)?)));

    let path = socket_path();
    let listener =
        UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))?;
    let _socket_file = SocketFile(path.clone());

    let broker = broker::Broker::new(tls::client_config(&identity, &host_cert)?);
    let (shutdown, mut shutdown_requested) = watch::channel(false);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    // TLS handshakes run beside the accept loop, so one slow client cannot hold up others.
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&identity, &host_cert)?);
    let (connections, incoming) = mpsc::channel::<std::io::Result<Connection>>(16);
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting on the plugin socket failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, connections) = (acceptor.clone(), connections.clone());
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let _ = connections.send(Ok(Connection(tls))).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a TLS handshake on the plugin socket failed")
                    }
                }
            });
        }
    });

    let handshake = format!(
        "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc|{}",
        path.display(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(identity.cert.as_ref())
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{handshake}")?;
    stdout.flush()?;
    drop(stdout);

    use proto::logical::plugin_version_server::PluginVersionServer;
    use proto::pb::backend_server::BackendServer;
    use proto::plugin::grpc_broker_server::GrpcBrokerServer;
    use proto::plugin::grpc_controller_server::GrpcControllerServer;
    use proto::plugin::grpc_stdio_server::GrpcStdioServer;
    let stop = async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = shutdown_requested.wait_for(|stop| *stop) => {}
            _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
            _ = parent::gone() => {
                tracing::warn!("the server that started this plugin is gone: exiting");
                tokio::spawn(async {
                    tokio::time::sleep(ORPHAN_EXIT_GRACE).await;
                    std::process::exit(1);
                });
            }
        }
    };
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(GrpcBrokerServer::new(broker.clone()))
        .add_service(GrpcControllerServer::new(go_plugin::Controller {
            shutdown,
        }))
        .add_service(GrpcStdioServer::new(go_plugin::Stdio))
        .add_service(PluginVersionServer::new(go_plugin::Version))
        .add_service(
            BackendServer::new(Arc::new(backend::BackendService::new(
                engine,
                broker,
                unmount_wait,
            )))
            // OpenBao sends a request of any size its listener took (`max_request_size`,
            // 32 MiB by default) with gRPC's limit lifted to MaxInt32. Under tonic's
            // default 4 MiB, a larger one would fail as a 500 before the engine's own
            // limit could answer 413.
            .max_decoding_message_size(i32::MAX as usize),
        )
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), stop)
        .await?;
    tracing::debug!("plugin stopped");
    Ok(())
}
