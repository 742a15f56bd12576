//! The transaction coordinator's connections to the other brokers of a cluster: one
//! connection per destination broker (Kafka's `TransactionMarkerChannelManager` and
//! `AddPartitionsToTxnManager` each keep one `NetworkClient` connection per node; here
//! each has its own [`BrokerChannels`] too), over
//! the replication fetcher's [`BrokerClient`] to the destination's
//! `inter.broker.listener.name` endpoint in the metadata image.
//!
//! A request holds its destination's connection for its round trip, so requests to one
//! broker go one after the other and requests to different brokers run side by side.
//! Any failure drops the connection; the next request connects again (the endpoint is
//! looked up in the image each time, so a broker that moved is found where it is now).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_protocol::message::Request;

use crate::cluster::image::MetadataImage;
use crate::replication::LeaderEndpoint;
use crate::replication::client::{BrokerClient, ClientError};
use crate::security::node_client::NodeConnector;
use crate::storage::unpoison;

/// The largest response accepted from another broker (WriteTxnMarkers and
/// AddPartitionsToTxn answers are small: a code per partition).
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// How long connecting and asking ApiVersions may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One destination's connection, once made.
#[derive(Debug)]
struct Connection {
    endpoint: LeaderEndpoint,
    client: BrokerClient,
}

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The image gives the broker no endpoint on the inter-broker listener (not
    /// registered, or gone).
    #[error("broker {0} has no endpoint on the inter-broker listener")]
    NoEndpoint(i32),
    /// The other broker does not serve the versions asked for.
    #[error("{0}")]
    Unsupported(String),
    /// Connecting, sending or receiving failed, or timed out.
    #[error("{0}")]
    Network(String),
}

/// The connections, by destination broker id (see the module docs).
#[derive(Debug, Default)]
pub struct BrokerChannels {
    connections: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
}

impl BrokerChannels {
    /// No connection yet.
    pub fn new() -> BrokerChannels {
        BrokerChannels::default()
    }

    /// Sends `request` to broker `destination` at the highest version both serve in
    /// `[floor, ours]` and waits at most `timeout` for the answer. `client_id` names this
    /// broker in the other's logs.
    #[allow(clippy::too_many_arguments)]
    pub async fn call<R: Request>(
        &self,
        image: &MetadataImage,
        connector: &NodeConnector,
        client_id: &str,
        destination: i32,
        request: &R,
        floor: i16,
        ours: i16,
        timeout: Duration,
    ) -> Result<R::Response, ChannelError> {
        let endpoint = crate::replication::leader_endpoint(image, destination, &connector.listener)
            .ok_or(ChannelError::NoEndpoint(destination))?;
        let slot = unpoison(self.connections.lock())
            .entry(destination)
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if slot.as_ref().is_some_and(|c| c.endpoint != endpoint) {
            // The broker re-registered elsewhere: its old connection is of no use.
            *slot = None;
        }
        if slot.is_none() {
            let client = BrokerClient::connect(
                connector,
                &endpoint.host,
                endpoint.port,
                client_id,
                MAX_RESPONSE_BYTES,
                CONNECT_TIMEOUT.min(timeout),
            )
            .await
            .map_err(|e| {
                ChannelError::Network(format!("connecting to broker {destination}: {e}"))
            })?;
            *slot = Some(Connection { endpoint, client });
        }
        let connection = slot.as_mut().expect("connected above");
        let version = match connection.client.version_for::<R>(floor, ours) {
            Ok(version) => version,
            Err(e) => return Err(ChannelError::Unsupported(e.to_string())),
        };
        match connection.client.send(request, version, timeout).await {
            Ok(response) => Ok(response),
            Err(e) => {
                // Any failure leaves the stream in an unknown state (a response may still
                // come): the next request connects again.
                *slot = None;
                Err(match e {
                    ClientError::Unsupported(message) => ChannelError::Unsupported(message),
                    other => ChannelError::Network(format!("broker {destination}: {other}")),
                })
            }
        }
    }
}
