//! go-plugin's connection broker: how the plugin reaches back into the server.
//!
//! The server announces, on the `StartStream` it opens, the sockets where it serves
//! services for the plugin (`ConnInfo{service_id, network, address}`). `Setup` names the
//! service id of the mount's storage; [`Broker::dial`] waits for that announcement and
//! connects with mutual TLS.

use super::proto::plugin::ConnInfo;
use super::proto::plugin::grpc_broker_server::GrpcBroker;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Response, Status, Streaming};

/// What the server has announced, and how to connect to it.
#[derive(Clone)]
pub struct Broker {
    announced: watch::Sender<HashMap<u32, ConnInfo>>,
    tls: Arc<ClientConfig>,
}

impl Broker {
    pub fn new(tls: Arc<ClientConfig>) -> Broker {
        Broker {
            announced: watch::Sender::new(HashMap::new()),
            tls,
        }
    }

    /// Connect to the service the server announces as `id`, waiting up to `wait` for it.
    pub async fn dial(&self, id: u32, wait: Duration) -> anyhow::Result<Channel> {
        let mut announced = self.announced.subscribe();
        let info = tokio::time::timeout(wait, announced.wait_for(|m| m.contains_key(&id)))
            .await
            .map_err(|_| {
                anyhow::anyhow!("the server announced no connection {id} within {wait:?}")
            })??
            .get(&id)
            .cloned()
            .expect("waited for it");
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone());
        let connector = tower::service_fn(move |_: Uri| {
            let (tls, network, address) = (tls.clone(), info.network.clone(), info.address.clone());
            async move {
                let name = ServerName::try_from("localhost").expect("a valid name");
                let stream: Box<dyn AsyncStream> = match network.as_str() {
                    "unix" => Box::new(tokio::net::UnixStream::connect(&address).await?),
                    "tcp" => Box::new(tokio::net::TcpStream::connect(&address).await?),
                    other => {
                        return Err(std::io::Error::other(format!("unknown network {other:?}")));
                    }
                };
                Ok::<_, std::io::Error>(TokioIo::new(tls.connect(name, stream).await?))
            }
        });
        Ok(Endpoint::from_static("http://localhost")
            .connect_with_connector(connector)
            .await?)
    }
}

trait AsyncStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncStream for T {}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = Pin<Box<dyn Stream<Item = Result<ConnInfo, Status>> + Send>>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut incoming = request.into_inner();
        let announced = self.announced.clone();
        tokio::spawn(async move {
            while let Some(Ok(info)) = incoming.next().await {
                tracing::debug!(id = info.service_id, network = %info.network, "broker connection announced");
                announced.send_modify(|m| {
                    m.insert(info.service_id, info);
                });
            }
        });
        // The plugin offers nothing through the broker, but its half of the stream must stay
        // open for as long as the process lives.
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}
