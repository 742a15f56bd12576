//! The broker's connection to the active controller (Kafka's `NodeToControllerChannelManager`
//! with its `RaftControllerNodeProvider`): requests go out one at a time, in order, over one
//! connection to a controller listener, and are retried on another controller when the one
//! reached is not the active controller (NOT_CONTROLLER) or the connection fails.
//!
//! Where the controllers are: `controller.quorum.voters` (`id@host:port`), or else
//! `controller.quorum.bootstrap.servers` (`host:port`, ids unknown). Which one is active: the
//! caller may pass a hint (`watch::Receiver<Option<i32>>`: on a node that is also a
//! controller the local Raft node knows the leader, `Controller::active_controller_id`);
//! without a usable hint the controllers are tried in turn, as Kafka's broker does before it
//! has learned the leader. Kafka gives each user its own channel ("heartbeat", "forwarding",
//! "alter-partition"), so a slow forwarded request never delays a heartbeat: so does the
//! broker here, one [`ControllerChannel`] each.
//!
//! The connection speaks the first controller listener's security protocol, with
//! `sasl.mechanism.controller.protocol` (`security::node_client`); a controller that refuses
//! this node's certificate or credentials is logged as an error at each attempt.

use std::time::{Duration, Instant};

use gregor_protocol::error_code;
use gregor_protocol::message::Request;
use tokio::sync::{Mutex, watch};

use crate::config::Config;
use crate::replication::client::{BrokerClient, ClientError};
use crate::security::node_client::NodeConnector;

/// The largest response accepted from a controller (a forwarded request's response can be as
/// large as a CreateTopics response for many topics).
const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// One controller this broker can contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerAddress {
    /// Its node id, when known (`controller.quorum.voters`); `None` for a bootstrap server.
    pub id: Option<i32>,
    /// Host of its controller listener.
    pub host: String,
    /// Port of its controller listener.
    pub port: u16,
}

/// A response whose top-level error code may say "not the active controller".
pub trait ControllerResponse {
    /// The response's top-level error code.
    fn top_level_error(&self) -> i16;
}

macro_rules! controller_response {
    ($($module:ident :: $ty:ident),* $(,)?) => {
        $(impl ControllerResponse for gregor_protocol::messages::$module::$ty {
            fn top_level_error(&self) -> i16 {
                self.error_code
            }
        })*
    };
}

controller_response!(
    broker_registration_response::BrokerRegistrationResponse,
    broker_heartbeat_response::BrokerHeartbeatResponse,
    controller_registration_response::ControllerRegistrationResponse,
    alter_partition_response::AlterPartitionResponse,
    envelope_response::EnvelopeResponse,
    allocate_producer_ids_response::AllocateProducerIdsResponse,
);

/// CreateTopics has no top-level error: a controller that is not active answers every
/// topic NOT_CONTROLLER.
impl ControllerResponse
    for gregor_protocol::messages::create_topics_response::CreateTopicsResponse
{
    fn top_level_error(&self) -> i16 {
        let all_not_controller = !self.topics.is_empty()
            && self
                .topics
                .iter()
                .all(|t| t.error_code == error_code::NOT_CONTROLLER);
        if all_not_controller {
            error_code::NOT_CONTROLLER
        } else {
            error_code::NONE
        }
    }
}

/// Why a request could not be answered by the active controller in time.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No controller answered before the deadline; the last failure is given.
    #[error("no active controller answered within {after:?} (last: {last})")]
    TimedOut {
        /// How long the request was tried.
        after: Duration,
        /// The last failure seen.
        last: String,
    },
    /// The controller does not serve a version of the request this broker can send.
    #[error("{0}")]
    Unsupported(String),
}

/// How a [`ControllerChannel`] behaves.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    /// The controllers, in the order tried.
    pub controllers: Vec<ControllerAddress>,
    /// The client id the requests carry (Kafka: `broker-<id>-<channel>`).
    pub client_id: String,
    /// How long one attempt (connect, or one request) may take (Kafka's request timeout of
    /// the channel).
    pub request_timeout: Duration,
    /// The first wait before trying again after a failure (`retry.backoff.ms`).
    pub retry_backoff: Duration,
    /// The longest wait between attempts (`retry.backoff.max.ms`).
    pub max_backoff: Duration,
    /// How to connect (TLS, SASL) to the controller listener.
    pub connector: NodeConnector,
}

impl ChannelOptions {
    /// The options for channel `name` of the broker configured by `config`, each attempt
    /// bounded by `request_timeout`. Refuses a controller listener whose TLS or SASL
    /// client settings are unusable and a configuration naming no controller.
    pub fn from_config(
        config: &Config,
        name: &str,
        request_timeout: Duration,
    ) -> Result<ChannelOptions, String> {
        if config.controller_listener_names.is_empty() {
            return Err(
                "controller.listener.names is empty: the broker cannot reach a controller".into(),
            );
        }
        let connector = NodeConnector::controller(config).map_err(|e| e.to_string())?;
        let mut controllers: Vec<ControllerAddress> = config
            .controller_quorum_voters
            .iter()
            .map(|v| ControllerAddress {
                id: Some(v.id),
                host: v.host.clone(),
                port: v.port,
            })
            .collect();
        if controllers.is_empty() {
            controllers = config
                .controller_quorum_bootstrap_servers
                .iter()
                .map(|s| ControllerAddress {
                    id: None,
                    host: s.host.clone(),
                    port: s.port,
                })
                .collect();
        }
        if controllers.is_empty() {
            return Err(
                "neither controller.quorum.voters nor controller.quorum.bootstrap.servers \
                 names a controller"
                    .into(),
            );
        }
        let ms = |key: &str, default: u64| {
            config
                .get(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        Ok(ChannelOptions {
            controllers,
            client_id: format!("broker-{}-{name}", config.node_id),
            request_timeout,
            retry_backoff: Duration::from_millis(ms("retry.backoff.ms", 100).max(1)),
            max_backoff: Duration::from_millis(ms("retry.backoff.max.ms", 1000).max(1)),
            connector,
        })
    }
}

/// The connection and where the next attempt goes.
struct State {
    /// The open connection and the index of the controller it goes to.
    connection: Option<(usize, BrokerClient)>,
    /// The controller tried next when no hint names one.
    next: usize,
}

/// Requests to the active controller (see the module docs).
pub struct ControllerChannel {
    options: ChannelOptions,
    hint: Option<watch::Receiver<Option<i32>>>,
    state: Mutex<State>,
}

impl ControllerChannel {
    /// A channel with `options`; `hint`, when given, tells which controller is active.
    pub fn new(
        options: ChannelOptions,
        hint: Option<watch::Receiver<Option<i32>>>,
    ) -> ControllerChannel {
        ControllerChannel {
            options,
            hint,
            state: Mutex::new(State {
                connection: None,
                next: 0,
            }),
        }
    }

    /// [`ChannelOptions::from_config`] then [`ControllerChannel::new`].
    pub fn from_config(
        config: &Config,
        name: &str,
        request_timeout: Duration,
        hint: Option<watch::Receiver<Option<i32>>>,
    ) -> Result<ControllerChannel, String> {
        Ok(ControllerChannel::new(
            ChannelOptions::from_config(config, name, request_timeout)?,
            hint,
        ))
    }

    /// The channel's options.
    pub fn options(&self) -> &ChannelOptions {
        &self.options
    }

    /// The index of the controller the hint names, if it is one of ours.
    fn hinted(&self) -> Option<usize> {
        let id = (*self.hint.as_ref()?.borrow())?;
        self.options
            .controllers
            .iter()
            .position(|c| c.id == Some(id))
    }

    /// Sends `request` (at the highest version in `floor..=ours` the controller serves) to
    /// the active controller, trying again on another controller after NOT_CONTROLLER or a
    /// failed connection, with backoff, until `deadline` has passed. Any other answer,
    /// errors included, is returned as it is.
    pub async fn send<R>(
        &self,
        request: &R,
        floor: i16,
        ours: i16,
        deadline: Duration,
    ) -> Result<R::Response, ChannelError>
    where
        R: Request,
        R::Response: ControllerResponse,
    {
        let started = Instant::now();
        let mut state = self.state.lock().await;
        let mut backoff = self.options.retry_backoff;
        // The controllers that serve no version of the request: once all of them say so
        // (or the active one does), the request cannot be sent.
        let mut unsupported_by = std::collections::BTreeSet::new();
        loop {
            let last = match self.attempt(&mut state, request, floor, ours).await {
                Ok(response) if response.top_level_error() == error_code::NOT_CONTROLLER => {
                    // Kafka's channel drops the controller it knew and finds the new one.
                    let (index, _) = state.connection.take().expect("just used");
                    state.next = index + 1;
                    format!(
                        "controller {} is not the active controller",
                        self.describe(index)
                    )
                }
                Ok(response) => return Ok(response),
                Err(AttemptError::Unsupported(index, message)) => {
                    unsupported_by.insert(index);
                    if self.hinted() == Some(index)
                        || unsupported_by.len() >= self.options.controllers.len()
                    {
                        return Err(ChannelError::Unsupported(message));
                    }
                    // One that is not active may run other software: try the others.
                    state.connection = None;
                    state.next = index + 1;
                    format!("controller {}: {message}", self.describe(index))
                }
                Err(AttemptError::Failed(index, message)) => {
                    state.connection = None;
                    state.next = index + 1;
                    format!("controller {}: {message}", self.describe(index))
                }
            };
            tracing::debug!(client = %self.options.client_id, "{last}; retrying");
            let elapsed = started.elapsed();
            if elapsed >= deadline {
                return Err(ChannelError::TimedOut {
                    after: elapsed,
                    last,
                });
            }
            tokio::time::sleep(backoff.min(deadline - elapsed)).await;
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
    }

    /// One try: connect if needed (to the hinted controller, else the next in turn), then
    /// one request.
    async fn attempt<R: Request>(
        &self,
        state: &mut State,
        request: &R,
        floor: i16,
        ours: i16,
    ) -> Result<R::Response, AttemptError> {
        let timeout = self.options.request_timeout;
        // A hint naming another controller than the one connected moves the connection.
        if let (Some(hinted), Some((index, _))) = (self.hinted(), state.connection.as_ref())
            && hinted != *index
        {
            state.connection = None;
        }
        if state.connection.is_none() {
            let count = self.options.controllers.len();
            let index = self.hinted().unwrap_or(state.next % count);
            let target = &self.options.controllers[index];
            let client = BrokerClient::connect(
                &self.options.connector,
                &target.host,
                target.port,
                &self.options.client_id,
                MAX_RESPONSE_BYTES,
                timeout,
            )
            .await
            .map_err(|e| {
                if e.is_security() {
                    tracing::error!(
                        client = %self.options.client_id,
                        listener = %self.options.connector.listener,
                        "controller {} does not accept this node: {e}",
                        self.describe(index)
                    );
                }
                AttemptError::Failed(index, e.to_string())
            })?;
            tracing::info!(client = %self.options.client_id, "connected to controller {}", self.describe(index));
            state.connection = Some((index, client));
        }
        let (index, client) = state.connection.as_mut().expect("connected above");
        let index = *index;
        let version = match client.version_for::<R>(floor, ours) {
            Ok(version) => version,
            Err(ClientError::Unsupported(message)) => {
                return Err(AttemptError::Unsupported(index, message));
            }
            Err(other) => return Err(AttemptError::Failed(index, other.to_string())),
        };
        client
            .send(request, version, timeout)
            .await
            .map_err(|e| AttemptError::Failed(index, e.to_string()))
    }

    /// `id@host:port` (or `host:port`) of controller `index`.
    fn describe(&self, index: usize) -> String {
        let c = &self.options.controllers[index % self.options.controllers.len()];
        match c.id {
            Some(id) => format!("{id}@{}:{}", c.host, c.port),
            None => format!("{}:{}", c.host, c.port),
        }
    }
}

/// How one attempt failed.
enum AttemptError {
    /// Try again elsewhere: the controller at this index failed.
    Failed(usize, String),
    /// The controller at this index serves no version of the request this broker sends.
    Unsupported(usize, String),
}
