//! Everything a node of a multi-node cluster ([`Config::is_cluster`]) sends to the active
//! controller, started once the listeners are bound (Kafka's `BrokerServer.startup` order):
//! the broker's lifecycle ([`super::broker_lifecycle`]: registration, heartbeats,
//! controlled shutdown), the forwarding channel the admin handlers use
//! (`handlers/forwarding.rs`), the AlterPartition sender ([`super::alter_partition_sender`])
//! and, on a node that is also a controller, its ControllerRegistration (Kafka's
//! `ControllerRegistrationManager`). Each has a channel of its own, as in Kafka.
//!
//! Nothing here runs on a single node: `server.rs` starts it only when `is_cluster()`.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::error_code;
use gregor_protocol::messages::controller_registration_request::{
    ControllerRegistrationRequest, Feature, Listener,
};
use tokio::sync::watch;

use super::Controller;
use super::broker_lifecycle::{BrokerLifecycle, LifecycleOptions, MetadataOffset};
use super::controller_channel::ControllerChannel;
use crate::config::Config;
use crate::replication::ReplicaManager;
use crate::replication::alter_partition::AlterPartitionReceiver;

/// How long a controlled shutdown may wait for the controller (Kafka's broker shutdown
/// deadline: five minutes).
pub const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(300);

/// The running link to the controllers.
pub struct ControllerLink {
    /// The channel forwarded admin requests go through.
    pub forwarding: ControllerChannel,
    /// The broker's registration and heartbeats (`None` on a controller-only node).
    pub lifecycle: Option<Arc<BrokerLifecycle>>,
    controlled_shutdown: bool,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The rest of the producer-id block the active controller gave this broker last:
    /// `[next, end)` (Kafka's `RPCProducerIdManager`).
    producer_ids: tokio::sync::Mutex<Option<(i64, i64)>>,
}

impl ControllerLink {
    /// Starts the link for the node configured by `config` (cluster id `cluster_id`), whose
    /// local `controller` gives the endpoints, directory ids and, on a controller node, the
    /// active controller; `alter` is the ReplicaManager's ISR change channel;
    /// `previous_broker_epoch` is the epoch of the last clean shutdown (KIP-966), -1 if none.
    pub fn start(
        config: &Config,
        cluster_id: &str,
        controller: &Arc<Controller>,
        replicas: &Arc<ReplicaManager>,
        alter: Option<AlterPartitionReceiver>,
        previous_broker_epoch: i64,
    ) -> Result<Arc<ControllerLink>, String> {
        let mut tasks = Vec::new();
        // On a controller node the local Raft node knows the leader (Kafka's
        // `RaftControllerNodeProvider`); a broker-only node tries the voters in turn.
        let hint = if config.is_controller() {
            let (tx, rx) = watch::channel(controller.active_controller_id());
            let local = Arc::clone(controller);
            tasks.push(tokio::spawn(async move {
                let mut images = local.subscribe();
                loop {
                    tx.send_if_modified(|known| {
                        let now = local.active_controller_id();
                        let changed = *known != now;
                        *known = now;
                        changed
                    });
                    // A new leader is seen with the next image or within a moment.
                    tokio::select! {
                        _ = images.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    if tx.is_closed() {
                        return;
                    }
                }
            }));
            Some(rx)
        } else {
            None
        };
        let session_timeout = Duration::from_millis(config.broker_session_timeout_ms.max(1) as u64);
        let request_timeout = Duration::from_millis(
            config
                .get("request.timeout.ms")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(30_000)
                .max(1),
        );
        // Kafka's heartbeat channel times requests out at half the session (KAFKA-14392).
        let heartbeat_channel =
            ControllerChannel::from_config(config, "heartbeat", session_timeout / 2, hint.clone())?;
        let forwarding =
            ControllerChannel::from_config(config, "forwarding", request_timeout, hint.clone())?;
        let options = controller.options();
        // A controller's image follows the quorum, a broker-only node's the metadata log it
        // fetches (`cluster/observer/`): either way the offset of its last applied record.
        let offsets = MetadataOffset::Image(controller.subscribe());
        let (epoch_tx, epoch_rx) = watch::channel(-1i64);
        let epoch_replicas = Arc::clone(replicas);
        let lifecycle = config.is_broker().then(|| {
            BrokerLifecycle::start(
                LifecycleOptions {
                    node_id: config.node_id,
                    cluster_id: cluster_id.to_owned(),
                    incarnation_id: super::random_uuid(),
                    listeners: options.endpoints.clone(),
                    rack: options.rack.clone(),
                    log_dirs: options.directory_ids.clone(),
                    previous_broker_epoch,
                    heartbeat_interval: Duration::from_millis(
                        config.broker_heartbeat_interval_ms.max(1) as u64,
                    ),
                    session_timeout,
                },
                heartbeat_channel,
                offsets,
                move |epoch| {
                    epoch_replicas.set_broker_epoch(epoch);
                    epoch_tx.send_replace(epoch);
                },
            )
        });
        if let Some(changes) = alter {
            let channel = Arc::new(ControllerChannel::from_config(
                config,
                "alter-partition",
                request_timeout,
                hint.clone(),
            )?);
            tasks.push(tokio::spawn(super::alter_partition_sender::run(
                config.node_id,
                changes,
                channel,
                epoch_rx,
            )));
        }
        if config.is_controller() {
            let channel =
                ControllerChannel::from_config(config, "registration", request_timeout, hint)?;
            let request = controller_registration(config, controller);
            tasks.push(tokio::spawn(register_controller(channel, request)));
        }
        Ok(Arc::new(ControllerLink {
            forwarding,
            lifecycle,
            controlled_shutdown: config.get("controlled.shutdown.enable").map(str::trim)
                != Some("false"),
            tasks: std::sync::Mutex::new(tasks),
            producer_ids: tokio::sync::Mutex::new(None),
        }))
    }

    /// The next producer id for this broker (Kafka's `RPCProducerIdManager`): from the
    /// block the active controller handed out last, asking it for another block with
    /// AllocateProducerIds (as `broker_id` in `broker_epoch`) once that one is used up.
    /// The rest of a block is lost at shutdown, as in Kafka. A controller that does not
    /// answer within `timeout` gives COORDINATOR_LOAD_IN_PROGRESS, which clients retry
    /// (Kafka's manager answers so while its block request is pending).
    pub async fn allocate_producer_id(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        timeout: Duration,
    ) -> Result<i64, super::ApiError> {
        use gregor_protocol::messages::allocate_producer_ids_request::AllocateProducerIdsRequest;
        let mut block = self.producer_ids.lock().await;
        if let Some((next, end)) = block.as_mut()
            && *next < *end
        {
            let id = *next;
            *next += 1;
            return Ok(id);
        }
        let request = AllocateProducerIdsRequest {
            broker_id,
            broker_epoch,
            ..Default::default()
        };
        let pending = || {
            super::ApiError::new(
                error_code::COORDINATOR_LOAD_IN_PROGRESS,
                "the active controller has not handed out a block of producer ids yet",
            )
        };
        let response = match self.forwarding.send(&request, 0, 0, timeout).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!("AllocateProducerIds: {e}");
                return Err(pending());
            }
        };
        if response.error_code != error_code::NONE {
            tracing::warn!(code = response.error_code, "AllocateProducerIds refused");
            return Err(match response.error_code {
                error_code::STALE_BROKER_EPOCH | error_code::NOT_CONTROLLER => pending(),
                code => super::ApiError::with_default_message(code),
            });
        }
        let first = response.producer_id_start;
        let end = first + i64::from(response.producer_id_len.max(1));
        tracing::debug!(
            first,
            end,
            "the controller handed out a block of producer ids"
        );
        *block = Some((first + 1, end));
        Ok(first)
    }

    /// Kafka's `BrokerServer.shutdown` start: the controlled shutdown (unless
    /// `controlled.shutdown.enable=false`), then no more requests to the controller. Call
    /// before the listeners close.
    pub async fn shutdown(&self) {
        if let Some(lifecycle) = &self.lifecycle {
            if self.controlled_shutdown {
                lifecycle
                    .controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT)
                    .await;
            }
            lifecycle.stop();
        }
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

/// The ControllerRegistration of this controller node: its controller listeners and the
/// features it supports.
fn controller_registration(
    config: &Config,
    controller: &Controller,
) -> ControllerRegistrationRequest {
    ControllerRegistrationRequest {
        controller_id: config.node_id,
        incarnation_id: super::random_uuid(),
        zk_migration_ready: false,
        listeners: controller
            .options()
            .controller_endpoints
            .iter()
            .map(|e| Listener {
                name: e.listener.clone().into(),
                host: e.host.clone().into(),
                port: e.port,
                security_protocol: e.security_protocol,
                ..Default::default()
            })
            .collect(),
        features: super::controller::supported_features()
            .into_iter()
            .map(|(name, range)| Feature {
                name: name.into(),
                min_supported_version: range.min,
                max_supported_version: range.max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Sends `request` until the active controller accepts it (Kafka's
/// `ControllerRegistrationManager` retries with backoff after an error).
async fn register_controller(channel: ControllerChannel, request: ControllerRegistrationRequest) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match channel.send(&request, 0, 0, Duration::from_secs(30)).await {
            Ok(response) if response.error_code == error_code::NONE => {
                tracing::info!(
                    controller = request.controller_id,
                    "registered the controller with the active controller"
                );
                return;
            }
            Ok(response) => tracing::warn!(
                error = response.error_code,
                "the active controller refused the controller registration; retrying"
            ),
            Err(error) => tracing::warn!(%error, "cannot register the controller; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

impl ControllerLink {
    /// Kafka's `AutoTopicCreationManager`: topics this node creates by itself (auto-created
    /// topics, `__consumer_offsets`, `__transaction_state`) are created by the active
    /// controller, with a CreateTopics request of the broker's own (not in an Envelope:
    /// there is no client principal to carry for internal topics). A request the
    /// controller does not answer in time fails every topic with REQUEST_TIMED_OUT.
    pub async fn create_topics(
        &self,
        topics: &[super::controller::NewTopic],
        validate_only: bool,
        timeout: Duration,
    ) -> Vec<super::controller::CreateTopicResult> {
        use gregor_protocol::messages::create_topics_request::{
            CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
        };
        let request = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|t| CreatableTopic {
                    name: t.name.clone().into(),
                    num_partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                    assignments: t
                        .assignments
                        .iter()
                        .map(|a| CreatableReplicaAssignment {
                            partition_index: a.partition,
                            broker_ids: a.broker_ids.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    configs: t
                        .configs
                        .iter()
                        .map(|(name, value)| CreatableTopicConfig {
                            name: name.clone().into(),
                            value: value.clone().map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            validate_only,
            ..Default::default()
        };
        let failed = |code: i16, message: String| {
            topics
                .iter()
                .map(|t| super::controller::CreateTopicResult {
                    name: t.name.clone(),
                    error: Some(super::ApiError::new(code, message.clone())),
                    topic_id: gregor_protocol::Uuid::nil(),
                    num_partitions: -1,
                    replication_factor: -1,
                    configs: Vec::new(),
                })
                .collect()
        };
        match self.forwarding.send(&request, 5, 7, timeout).await {
            Ok(response) => response
                .topics
                .into_iter()
                .map(|t| super::controller::CreateTopicResult {
                    name: t.name.to_string(),
                    error: (t.error_code != error_code::NONE).then(|| super::ApiError {
                        code: t.error_code,
                        message: t.error_message.map(|m| m.to_string()),
                    }),
                    topic_id: t.topic_id,
                    num_partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                    configs: Vec::new(),
                })
                .collect(),
            Err(error) => failed(error_code::REQUEST_TIMED_OUT, error.to_string()),
        }
    }
}
