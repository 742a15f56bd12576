//! How a node connects to another node (issue 15): the listener and security protocol
//! Kafka picks, TLS (rustls) and the SASL exchange, done before the caller's first request.
//!
//! Kafka's choice (`KafkaConfig.interBrokerListenerName`, `controllerListenerNames`):
//! brokers reach each other on `inter.broker.listener.name` (or the listener named by
//! `security.inter.broker.protocol`) with `sasl.mechanism.inter.broker.protocol`; every
//! node reaches the controllers (registration, heartbeats, forwarding, the metadata log, the
//! quorum's own RPCs) on the first of `controller.listener.names` with
//! `sasl.mechanism.controller.protocol`. Both mechanisms default to GSSAPI, which this
//! broker does not have: a SASL listener needs the key set. The protocol is the listener's
//! entry of `listener.security.protocol.map`; the TLS and SASL keys are the listener's
//! (`tls_client`, `sasl_client`).
//!
//! A SASL connection authenticates as Kafka's `SaslClientAuthenticator` does with
//! SaslHandshake v1 and SaslAuthenticate requests; a refusal is
//! [`ConnectError::Authentication`] with the server's message, so the caller's log says
//! why the node cannot join. Re-authentication (KIP-368) is not done: when the server
//! closes an expired session, the caller connects again.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_response_header, encode_request};
use gregor_protocol::message::{Decodable, Request};
use gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use gregor_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use gregor_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::sasl::ScramMechanism;
use super::sasl_client::{ClientCredentials, ScramClient, plain_token};
use super::settings::ListenerKeys;
use crate::config::{Config, ConfigError, SecurityProtocol};

/// Largest frame accepted during the SASL exchange.
const MAX_SASL_FRAME: usize = 1 << 20;

/// Why a connection to another node could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// No connection (with its handshakes) within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The TLS handshake failed (an untrusted certificate, a host name it does not name...).
    #[error("TLS handshake with {addr} failed: {message}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// rustls's reason.
        message: String,
    },
    /// The other node refused this node's SASL credentials, or the exchange failed.
    #[error("SASL authentication to {addr} failed: {message}")]
    Authentication {
        /// `host:port`.
        addr: String,
        /// The server's message or the reason.
        message: String,
    },
}

/// A connection to another node, plain or TLS.
#[derive(Debug)]
pub enum NodeStream {
    /// PLAINTEXT or SASL_PLAINTEXT.
    Plain(TcpStream),
    /// SSL or SASL_SSL.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for NodeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NodeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How this node connects to one listener of other nodes (built once, cheap to clone).
#[derive(Clone)]
pub struct NodeConnector {
    /// The listener's name.
    pub listener: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    tls: Option<TlsConnector>,
    sasl: Option<Arc<ClientCredentials>>,
}

impl std::fmt::Debug for NodeConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConnector")
            .field("listener", &self.listener)
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

impl NodeConnector {
    /// Plain TCP (tests, and PLAINTEXT listeners).
    pub fn plaintext() -> NodeConnector {
        NodeConnector {
            listener: "PLAINTEXT".to_string(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }

    /// How brokers reach each other: the inter-broker listener with
    /// `sasl.mechanism.inter.broker.protocol`.
    pub fn inter_broker(config: &Config) -> Result<NodeConnector, ConfigError> {
        Self::for_listener(
            config,
            &config.inter_broker_listener_name,
            "sasl.mechanism.inter.broker.protocol",
        )
    }

    /// How this node reaches the controllers: the first controller listener with
    /// `sasl.mechanism.controller.protocol`.
    pub fn controller(config: &Config) -> Result<NodeConnector, ConfigError> {
        let Some(listener) = config.controller_listener_names.first() else {
            return Ok(Self::plaintext());
        };
        Self::for_listener(config, listener, "sasl.mechanism.controller.protocol")
    }

    /// How to reach listener `listener`, its SASL mechanism named by `mechanism_key`.
    pub fn for_listener(
        config: &Config,
        listener: &str,
        mechanism_key: &str,
    ) -> Result<NodeConnector, ConfigError> {
        let protocol = config
            .security_protocol_for(listener)
            .unwrap_or(SecurityProtocol::Plaintext);
        let keys = ListenerKeys::new(config.properties(), listener);
        let tls = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
                let client = super::tls_client::client_config(&keys, listener)?;
                Some(TlsConnector::from(Arc::new(client)))
            }
            _ => None,
        };
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                let mechanism = config.get(mechanism_key).map_or("GSSAPI", str::trim);
                Some(Arc::new(ClientCredentials::for_listener(
                    &keys,
                    listener,
                    mechanism,
                    mechanism_key,
                )?))
            }
            _ => None,
        };
        Ok(NodeConnector {
            listener: listener.to_ascii_uppercase(),
            protocol,
            tls,
            sasl,
        })
    }

    /// Connects to `host:port`, with the TLS handshake and the SASL exchange, all within
    /// `timeout`.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        client_id: &str,
        timeout: Duration,
    ) -> Result<NodeStream, ConnectError> {
        tokio::time::timeout(timeout, self.connect_now(host, port, client_id))
            .await
            .map_err(|_| ConnectError::Timeout(timeout))?
    }

    async fn connect_now(
        &self,
        host: &str,
        port: u16,
        client_id: &str,
    ) -> Result<NodeStream, ConnectError> {
        let addr = format!("{host}:{port}");
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let mut stream = match &self.tls {
            None => NodeStream::Plain(tcp),
            Some(connector) => {
                let name =
                    ServerName::try_from(host.to_string()).map_err(|e| ConnectError::Tls {
                        addr: addr.clone(),
                        message: format!("{host} is not a host name or address: {e}"),
                    })?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ConnectError::Tls {
                        addr: addr.clone(),
                        message: e.to_string(),
                    })?;
                NodeStream::Tls(Box::new(tls))
            }
        };
        if let Some(credentials) = &self.sasl {
            let mut exchange = Exchange {
                stream: &mut stream,
                addr: &addr,
                client_id,
                correlation_id: 0,
            };
            exchange.authenticate(credentials).await?;
        }
        Ok(stream)
    }
}

/// The SASL requests of one connection.
struct Exchange<'a> {
    stream: &'a mut NodeStream,
    addr: &'a str,
    client_id: &'a str,
    correlation_id: i32,
}

impl Exchange<'_> {
    fn failed(&self, message: impl Into<String>) -> ConnectError {
        ConnectError::Authentication {
            addr: self.addr.to_string(),
            message: message.into(),
        }
    }

    async fn authenticate(&mut self, credentials: &ClientCredentials) -> Result<(), ConnectError> {
        let handshake: SaslHandshakeResponse = self
            .call(
                &SaslHandshakeRequest {
                    mechanism: credentials.mechanism.as_str().into(),
                },
                1,
            )
            .await?;
        if handshake.error_code != 0 {
            let enabled: Vec<&str> = handshake.mechanisms.iter().map(|m| &**m).collect();
            return Err(self.failed(format!(
                "the listener does not enable {} (it enables {})",
                credentials.mechanism,
                enabled.join(", ")
            )));
        }
        let scram = match credentials.mechanism.as_str() {
            "PLAIN" => {
                self.token(plain_token(credentials)).await?;
                return Ok(());
            }
            name => ScramMechanism::from_name(name)
                .ok_or_else(|| self.failed(format!("unsupported mechanism {name}")))?,
        };
        let mut client = ScramClient::new(scram, &credentials.username, &credentials.password);
        let server_first = self.token(client.client_first()).await?;
        let last = client
            .client_final(&server_first)
            .map_err(|e| self.failed(e))?;
        let server_final = self.token(last).await?;
        client
            .verify_server_final(&server_final)
            .map_err(|e| self.failed(e))
    }

    /// One SaslAuthenticate round; a refusal carries the server's message.
    async fn token(&mut self, token: Vec<u8>) -> Result<Bytes, ConnectError> {
        let response: SaslAuthenticateResponse = self
            .call(
                &SaslAuthenticateRequest {
                    auth_bytes: Bytes::from(token),
                    ..Default::default()
                },
                2,
            )
            .await?;
        if response.error_code != 0 {
            let message = response.error_message.map_or_else(
                || format!("error code {}", response.error_code),
                |m| m.to_string(),
            );
            return Err(self.failed(message));
        }
        Ok(response.auth_bytes)
    }

    async fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ConnectError> {
        self.correlation_id += 1;
        let id = self.correlation_id;
        let mut frame = BytesMut::new();
        encode_request(&mut frame, request, version, id, Some(self.client_id))
            .map_err(|e| self.failed(format!("cannot encode the request: {e}")))?;
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.map_err(|e| {
            // Kafka's server closes the connection on an unexpected request or a failed
            // v0 exchange: say it was during authentication.
            self.failed(format!("the connection ended during the exchange ({e})"))
        })?;
        let size = usize::try_from(i32::from_be_bytes(size))
            .ok()
            .filter(|s| *s <= MAX_SASL_FRAME)
            .ok_or_else(|| self.failed("a response frame of a bad size"))?;
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).await?;
        let mut body = Bytes::from(body);
        let header = decode_response_header(&mut body, R::API_KEY, version)
            .map_err(|e| self.failed(e.to_string()))?;
        if header.correlation_id != id {
            return Err(self.failed("a response to another request"));
        }
        <R::Response as Decodable>::decode(&mut body, version)
            .map_err(|e| self.failed(e.to_string()))
    }
}
