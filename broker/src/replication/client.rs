//! A small Kafka client for node-to-node requests (the follower's Fetch and ListOffsets
//! to the leader, the controller channels, the metadata observer): one connection (TLS and
//! SASL as `security::node_client` makes it), one request at a time, the generated types for every
//! message, versions agreed with ApiVersions first (as Kafka's `NetworkClient` does).
//!
//! Responses are size-checked before anything is allocated (`max_response_bytes`), every
//! wait is bounded by a timeout, and any error ends the connection: the caller connects
//! again after its backoff.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_response_header, encode_request};
use gregor_protocol::message::{Decodable, Request};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::security::node_client::{ConnectError, NodeConnector, NodeStream};

/// Why a request to another broker failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The bytes received are not the response expected.
    #[error("bad response: {0}")]
    Protocol(String),
    /// The other broker does not serve a version this broker can send.
    #[error("{0}")]
    Unsupported(String),
    /// The TLS handshake or the SASL exchange failed: the other node does not accept this
    /// one (see [`ConnectError`]).
    #[error("{0}")]
    Security(ConnectError),
}

impl From<ConnectError> for ClientError {
    fn from(e: ConnectError) -> ClientError {
        match e {
            ConnectError::Io(e) => ClientError::Io(e),
            ConnectError::Timeout(t) => ClientError::Timeout(t),
            other => ClientError::Security(other),
        }
    }
}

impl ClientError {
    /// Whether the other node refused this one (TLS or SASL): worth a warning, not a retry
    /// in silence.
    pub fn is_security(&self) -> bool {
        matches!(self, ClientError::Security(_))
    }
}

/// One connection to another broker.
#[derive(Debug)]
pub struct BrokerClient {
    stream: NodeStream,
    client_id: String,
    correlation_id: i32,
    /// The versions the other broker serves, by API key (from ApiVersions).
    versions: Vec<(i16, i16, i16)>,
    max_response_bytes: usize,
}

impl BrokerClient {
    /// Connects to `host:port` through `connector` (TLS and SASL as the listener asks)
    /// within `timeout` and asks for the broker's versions.
    pub async fn connect(
        connector: &NodeConnector,
        host: &str,
        port: u16,
        client_id: &str,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Result<BrokerClient, ClientError> {
        let stream = connector.connect(host, port, client_id, timeout).await?;
        let mut client = BrokerClient {
            stream,
            client_id: client_id.to_owned(),
            correlation_id: 0,
            versions: Vec::new(),
            max_response_bytes,
        };
        let request = ApiVersionsRequest {
            client_software_name: "gregor-broker".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let response: ApiVersionsResponse = client.send(&request, 3, timeout).await?;
        if response.error_code != 0 {
            return Err(ClientError::Protocol(format!(
                "ApiVersions answered error {}",
                response.error_code
            )));
        }
        client.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        Ok(client)
    }

    /// The highest version of `R` both sides serve, at most `ours` and at least `floor`.
    pub fn version_for<R: Request>(&self, floor: i16, ours: i16) -> Result<i16, ClientError> {
        let key = R::API_KEY.key();
        let theirs = self
            .versions
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, min, max)| (*min, *max));
        match theirs {
            Some((min, max)) if max.min(ours) >= min.max(floor) => Ok(max.min(ours)),
            _ => Err(ClientError::Unsupported(format!(
                "the broker serves no version of API {key} in [{floor}, {ours}]"
            ))),
        }
    }

    /// Sends `request` at `version` and waits at most `timeout` for its response.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        match tokio::time::timeout(timeout, self.round_trip(request, version)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let mut buf = BytesMut::new();
        encode_request(
            &mut buf,
            request,
            version,
            correlation_id,
            Some(&self.client_id),
        )
        .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        self.stream.write_all(&buf).await?;
        self.stream.flush().await?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await?;
        let size = usize::try_from(i32::from_be_bytes(size))
            .map_err(|_| ClientError::Protocol("negative frame size".into()))?;
        if size > self.max_response_bytes {
            return Err(ClientError::Protocol(format!(
                "a {size}-byte response is over the {} bytes allowed",
                self.max_response_bytes
            )));
        }
        let mut frame = vec![0u8; size];
        self.stream.read_exact(&mut frame).await?;
        let mut frame = Bytes::from(frame);
        let header = decode_response_header(&mut frame, R::API_KEY, version)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Protocol(format!(
                "correlation id {} answers {correlation_id}",
                header.correlation_id
            )));
        }
        let response = <R::Response as Decodable>::decode(&mut frame, version)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if !frame.is_empty() {
            return Err(ClientError::Protocol(format!(
                "{} bytes after the response",
                frame.len()
            )));
        }
        Ok(response)
    }
}
