//! The state every handler shares: configuration, identity, the controller (which owns the
//! metadata log and the current metadata image) and the partition logs.
//!
//! Start-up order: `meta.properties` (formatted on first start, as `kafka-storage.sh
//! format` would), replay of `__cluster_metadata`, the controller (bootstrap records and
//! this broker's registration), then the partition directories are reconciled with the
//! image (topics created or deleted before a crash finish here), then the logs are opened.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use crate::cluster::controller::{
    ApiError, Applied, Controller, ControllerError, ControllerOptions, CreatePartitionsResult,
    CreateTopicResult, CreatedPartition, NewPartitions, NewTopic, PartitionStore, TopicDelta,
};
use crate::cluster::controller::{MutationQuota, Unbounded};
use crate::cluster::meta_properties::MetaProperties;
use crate::cluster::reconcile::{PartitionDir, PartitionMetadata, reconcile};
use crate::cluster::{self, MetadataImage};
use crate::config::Config;
use crate::storage::{LogConfig, LogManager, parse_partition_dir_name};
use crate::topic_config;
use gregor_protocol::error_code::KAFKA_STORAGE_ERROR;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be served as it is written (security it asks for and this
    /// broker does not implement).
    #[error("{0}")]
    Unenforceable(#[from] crate::config::ConfigError),
    /// The data directory is not usable.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Replaying or opening the metadata log failed.
    #[error("cannot load the metadata log: {0}")]
    Metadata(String),
    /// Opening the partition logs failed.
    #[error("cannot open the partition logs: {0}")]
    Storage(String),
    /// The configuration cannot be put to use (an override host that does not resolve).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {address} ({listener}): {source}")]
    Bind {
        /// The listener name.
        listener: String,
        /// The address.
        address: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Shared broker state.
pub struct Broker {
    /// The configuration.
    pub config: Config,
    /// This node's id.
    pub node_id: i32,
    /// The cluster id from `meta.properties`.
    pub cluster_id: String,
    /// The single-node KRaft controller: metadata log and image.
    pub controller: Arc<Controller>,
    /// The partition logs.
    pub logs: LogManager,
    /// The broker's defaults for partition logs (`log.*` keys, with the dynamic broker
    /// configs: see [`Self::refresh_dynamic_configs`]).
    default_log_config: RwLock<LogConfig>,
    /// The group coordinator (consumer groups and committed offsets).
    pub groups: crate::groups::GroupCoordinator,
    /// The transaction coordinator (transactional ids, `__transaction_state`).
    pub transactions: crate::transactions::TransactionCoordinator,
    /// The incremental fetch sessions (KIP-227).
    pub fetch_sessions: crate::fetch_sessions::FetchManager,
    /// Client telemetry (KIP-714): subscriptions and client instances.
    pub telemetry: crate::telemetry::ClientMetricsManager,
    /// The connection limits, once the listeners are bound (`server::run`); dynamic broker
    /// configs change them through [`Self::refresh_dynamic_configs`].
    pub connection_quotas: std::sync::OnceLock<Arc<crate::connection_quotas::ConnectionQuotas>>,
    /// The budget of request bytes held at once (`queued.max.request.bytes`), one permit
    /// a byte; `None` when unlimited. A connection acquires a request's size from its size
    /// prefix, before reading the rest, and releases it once the response is written
    /// (`connection.rs`), as Kafka's `SimpleMemoryPool` mutes a channel until its request
    /// fits. The config guarantees that one request of `socket.request.max.bytes` fits.
    pub request_bytes: Option<Arc<tokio::sync::Semaphore>>,
    /// The authorizer (`authorizer.class.name`), `None` when ACLs are not enforced.
    pub authorizer: Option<crate::authorizer::Authorizer>,
    /// The clients' rates against their quotas (`quotas/`).
    pub client_quotas: crate::quotas::ClientQuotaManager,
    /// Partition replication: the roles the metadata gave this broker's partitions, the
    /// led partitions' ISR and high watermark, the follower fetchers.
    pub replicas: Arc<crate::replication::ReplicaManager>,
    /// How this broker reaches the other brokers' inter-broker listener (follower fetches,
    /// transaction markers; `security::node_client`).
    pub inter_broker_connector: crate::security::node_client::NodeConnector,
    /// In a multi-node cluster, the link to the active controller (lifecycle, forwarding,
    /// AlterPartition), started by `server::run` once the listeners are bound.
    pub controller_link: std::sync::OnceLock<Arc<crate::cluster::controller_link::ControllerLink>>,
    /// Internal topics being created through the active controller (cluster mode; see
    /// [`Self::ensure_internal_topic`]).
    internal_creations: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The ReplicaManager's ISR changes, until the controller link takes them (cluster
    /// mode only).
    pub pending_isr_changes:
        std::sync::Mutex<Option<crate::replication::alter_partition::AlterPartitionReceiver>>,
}

/// The semaphore behind [`Broker::request_bytes`] for `queued.max.request.bytes`.
fn request_bytes_budget(bytes: i64) -> Option<Arc<tokio::sync::Semaphore>> {
    let bytes = usize::try_from(bytes).ok().filter(|&b| b > 0)?;
    Some(Arc::new(tokio::sync::Semaphore::new(
        bytes.min(tokio::sync::Semaphore::MAX_PERMITS),
    )))
}

impl Broker {
    /// Opens the data directory (blocking file I/O; call before serving).
    pub fn open(config: Config) -> Result<Arc<Broker>, StartError> {
        Broker::open_with(config, None)
    }

    /// [`Self::open`] for a cluster controller: its metadata is `quorum`'s (opened by
    /// `server::run`, see `server_quorum.rs`) rather than a local log. In cluster mode
    /// every directory must have been formatted (`gregor format`): the nodes of a cluster
    /// share one cluster id, which a node must not make up.
    pub fn open_with(
        config: Config,
        quorum: Option<crate::cluster::quorum::Quorum>,
    ) -> Result<Arc<Broker>, StartError> {
        Broker::open_following(config, quorum, None)
    }

    /// [`Self::open_with`], or for a broker-only node of a cluster, opened on the
    /// `observer` that follows the metadata log (`server_observer.rs`).
    pub fn open_following(
        config: Config,
        quorum: Option<crate::cluster::quorum::Quorum>,
        observer: Option<crate::cluster::observer::Observer>,
    ) -> Result<Arc<Broker>, StartError> {
        if config.is_cluster() {
            for dir in crate::cluster::storage_tool::directories(&config) {
                let missing = crate::cluster::meta_properties::MetaProperties::read(&dir)
                    .map_err(|e| StartError::DataDir {
                        path: dir.display().to_string(),
                        message: e.to_string(),
                    })?
                    .is_none();
                if missing {
                    return Err(StartError::DataDir {
                        path: dir.display().to_string(),
                        message: crate::cluster::storage_tool::unformatted_message(&dir),
                    });
                }
            }
        }
        let authorizer =
            crate::authorizer::Authorizer::from_config(&config).map_err(StartError::Config)?;
        let dir = config.primary_log_dir().to_path_buf();
        let data_dir_error = |message: String| StartError::DataDir {
            path: dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&dir).map_err(|e| data_dir_error(e.to_string()))?;
        let (meta, formatted) = MetaProperties::load_or_format(&dir, config.node_id, None)
            .map_err(|e| data_dir_error(e.to_string()))?;
        if formatted {
            tracing::info!(
                "formatted {} with new cluster id {}",
                dir.display(),
                meta.cluster_id
            );
        }
        let metadata_dir = config.effective_metadata_log_dir().to_path_buf();
        let mut options = ControllerOptions::from_config(&config, &meta);
        // Every log directory is formatted with the cluster id and a directory id of its own,
        // as `kafka-storage.sh format` does, and registered (Kafka's JBOD, KIP-858).
        for log_dir in config.log_dirs.iter().filter(|d| d.as_path() != dir) {
            let formatted = std::fs::create_dir_all(log_dir)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    MetaProperties::load_or_format(log_dir, config.node_id, Some(&meta.cluster_id))
                        .map_err(|e| e.to_string())
                });
            match formatted {
                Ok((other, _)) => {
                    if let Some(id) = other.directory_id
                        && !options.directory_ids.contains(&id)
                    {
                        options.directory_ids.push(id);
                    }
                }
                // An unusable directory is offline; the logs report it when they open.
                Err(error) => {
                    tracing::warn!(dir = %log_dir.display(), %error, "log directory offline")
                }
            }
        }
        let controller = match quorum {
            // A cluster controller's quorum replayed the metadata itself.
            Some(quorum) => Controller::open_quorum(options, quorum),
            // A broker-only node's observer replayed its local copy.
            None if let Some(observer) = observer => Controller::open_observer(options, observer),
            None => {
                let loaded = cluster::load(&metadata_dir)
                    .map_err(|e| StartError::Metadata(e.to_string()))?;
                let (controller, report) = Controller::open(options, loaded)
                    .map_err(|e| StartError::Metadata(e.to_string()))?;
                tracing::debug!(?report, "controller ready");
                controller
            }
        };
        let controller = Arc::new(controller);
        let image = controller.image();

        // In a cluster the image at start-up may lag behind the quorum (a broker-only node
        // has none yet): the metadata publisher settles the directories with the first
        // committed image instead (cluster/publisher.rs), never deleting on a stale one.
        if !config.is_cluster() {
            reconcile_directories(&config, &image).map_err(StartError::Storage)?;
        }
        let effective =
            crate::dynamic_broker_config::effective_config(&config, &image, config.node_id);
        let default_log_config = LogConfig::from_broker(&effective);
        let topic_configs: HashMap<String, LogConfig> = image
            .topics()
            .filter_map(|topic| {
                let overrides = image.topic_config(&topic.name)?;
                Some((
                    topic.name.clone(),
                    topic_config::log_config(&default_log_config, overrides),
                ))
            })
            .collect();
        let logs =
            LogManager::open_with(&config.log_dirs, default_log_config.clone(), topic_configs)
                .map_err(|e| StartError::Storage(e.to_string()))?;
        for problem in logs.errors() {
            tracing::warn!("{problem:?}");
        }
        crate::replication::hold_replicated_high_watermarks(&image, &logs);
        let groups = crate::groups::GroupCoordinator::new(&config);
        let transactions = crate::transactions::TransactionCoordinator::new(&config);
        let fetch_sessions = crate::fetch_sessions::FetchManager::new(
            usize::try_from(config.max_incremental_fetch_session_cache_slots).unwrap_or(0),
        );
        let telemetry = crate::telemetry::ClientMetricsManager::new(
            config.telemetry_max_bytes,
            config
                .get("metric.reporters")
                .is_some_and(|v| !v.trim().is_empty()),
        );
        let config_queued_bytes = config.queued_max_request_bytes;
        let client_quotas = crate::quotas::ClientQuotaManager::from_config(&config);
        let replication = crate::replication::ReplicationConfig::from_config(&config)
            .map_err(StartError::Config)?;
        // In a cluster the leader's ISR changes go to the controller (AlterPartition).
        let (alter, pending_isr_changes) = if config.is_cluster() {
            let (sender, receiver) = crate::replication::alter_partition::channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let inter_broker_connector =
            crate::security::node_client::NodeConnector::inter_broker(&config)
                .map_err(|e| StartError::Config(e.to_string()))?;
        let replicas = Arc::new(
            crate::replication::ReplicaManager::new(config.node_id, replication, alter)
                .with_node_connector(inter_broker_connector.clone()),
        );
        let broker = Arc::new(Broker {
            node_id: config.node_id,
            cluster_id: meta.cluster_id.clone(),
            config,
            controller,
            logs,
            default_log_config: RwLock::new(default_log_config),
            groups,
            transactions,
            fetch_sessions,
            telemetry,
            inter_broker_connector,
            connection_quotas: std::sync::OnceLock::new(),
            request_bytes: request_bytes_budget(config_queued_bytes),
            authorizer,
            client_quotas,
            replicas,
            controller_link: std::sync::OnceLock::new(),
            pending_isr_changes: std::sync::Mutex::new(pending_isr_changes),
            internal_creations: std::sync::Mutex::new(std::collections::HashSet::new()),
        });
        broker.groups.start(&broker);
        let markers = Arc::new(BrokerMarkers {
            broker: Arc::downgrade(&broker),
        });
        broker.transactions.start(&broker, markers);
        for future in broker.logs.resume_moves() {
            broker.spawn_move(future);
        }
        Ok(broker)
    }

    /// Runs a replica move between log directories on a thread of its own.
    pub fn spawn_move(self: &Arc<Self>, future: Arc<crate::storage::FutureReplica>) {
        let broker = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("alter-log-dir".into())
            .spawn(move || {
                let _ = broker.logs.run_move(&future);
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a replica move");
        }
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// The host and port clients should use, for the listener a request arrived on.
    pub fn advertised_endpoint(&self, listener: &str) -> (String, u16) {
        let advertised = self
            .config
            .advertised_listener_for(listener)
            .or_else(|| self.config.broker_listeners().next());
        match advertised {
            Some(l) if !l.host.is_empty() => (l.host.clone(), l.port),
            Some(l) => ("localhost".to_string(), l.port),
            None => ("localhost".to_string(), 9092),
        }
    }

    /// The data directory holding `meta.properties`.
    pub fn data_dir(&self) -> &Path {
        self.config.primary_log_dir()
    }

    /// Applies what a controller operation made durable to the partition logs: deletes the
    /// removed topics' partitions and updates the configs of reconfigured topics (new
    /// partitions already have their logs: see [`PartitionStore`]). Blocking file I/O.
    pub fn apply_delta(&self, delta: &TopicDelta) {
        if self.config.is_cluster() {
            // The metadata publisher applies the committed image on every broker.
            return;
        }
        for deleted in &delta.deleted {
            for partition in &deleted.partitions {
                if let Err(err) = self.logs.remove(&deleted.name, *partition) {
                    tracing::error!(
                        "cannot delete partition {}-{partition}: {err}",
                        deleted.name
                    );
                }
            }
            self.logs.clear_topic_config(&deleted.name);
        }
        let defaults = self.default_log_config();
        for topic in &delta.reconfigured {
            let config = topic_config::log_config(&defaults, &topic.config);
            self.logs.set_topic_config(&topic.name, config);
        }
    }

    /// The broker's current defaults for partition logs.
    pub fn default_log_config(&self) -> LogConfig {
        self.default_log_config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies the dynamic broker configs of the current image (after a change to a BROKER
    /// resource): new log defaults for every partition log, topics' own overrides kept on
    /// top (Kafka's `DynamicLogConfig.reconfigure`). Call under the controller's lock, so
    /// changes apply in the order they were written.
    pub fn refresh_dynamic_configs(&self) {
        let image = self.image();
        let effective =
            crate::dynamic_broker_config::effective_config(&self.config, &image, self.node_id);
        if let Some(quotas) = self.connection_quotas.get() {
            // `max.connections*` are dynamic in Kafka (DynamicListenerConfig); an override
            // host that no longer resolves keeps the limits in force, with a log line.
            match quotas.apply(&effective) {
                Ok(true) => tracing::info!("connection limits changed by dynamic broker configs"),
                Ok(false) => {}
                Err(e) => tracing::error!("connection limits not changed: {e}"),
            }
        }
        let defaults = LogConfig::from_broker(&effective);
        {
            let mut current = self
                .default_log_config
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if *current == defaults {
                return;
            }
            *current = defaults.clone();
        }
        self.logs.set_default_config(defaults.clone());
        for topic in image.topics() {
            match image.topic_config(&topic.name) {
                Some(overrides) => self
                    .logs
                    .set_topic_config(&topic.name, topic_config::log_config(&defaults, overrides)),
                None => self.logs.clear_topic_config(&topic.name),
            }
        }
    }

    /// The partition of internal topic `topic` that coordinator key `key` (a group or
    /// transactional id) maps to, as Kafka's `partitionFor` (Java's String.hashCode): its
    /// log, index and leader epoch; `UNKNOWN_TOPIC_OR_PARTITION` when it is not there.
    pub fn coordinator_partition(
        &self,
        topic: &str,
        key: &str,
    ) -> Result<(Arc<crate::storage::PartitionLog>, i32, i32), i16> {
        use gregor_protocol::error_code::UNKNOWN_TOPIC_OR_PARTITION;
        let image = self.image();
        let found = image.topic(topic).ok_or(UNKNOWN_TOPIC_OR_PARTITION)?;
        let partition = crate::groups::partition_for(key, found.partitions.len() as i32);
        let leader_epoch = found
            .partition(partition)
            .map(|p| p.leader_epoch)
            .ok_or(UNKNOWN_TOPIC_OR_PARTITION)?;
        let log = self
            .logs
            .get(topic, partition)
            .ok_or(UNKNOWN_TOPIC_OR_PARTITION)?;
        Ok((log, partition, leader_epoch))
    }

    /// Creates an internal topic (`__consumer_offsets`, `__transaction_state`) on first use
    /// unless it exists, one creation at a time through `creating`; any failure (for example
    /// a replication factor above the broker count, named by `replication_key`) is
    /// `COORDINATOR_NOT_AVAILABLE`, as Kafka's coordinators answer then. In a cluster the
    /// creation goes to the active controller in the background (Kafka's
    /// `AutoTopicCreationManager`) and the caller gets `COORDINATOR_NOT_AVAILABLE` at once,
    /// which clients retry: a request waiting on the controller would hold up the
    /// connection's next requests, and without a quorum it would wait for the timeout.
    pub async fn ensure_internal_topic(
        self: &Arc<Self>,
        creating: &tokio::sync::Mutex<()>,
        topic: NewTopic,
        replication_key: &str,
    ) -> Result<(), i16> {
        use gregor_protocol::error_code::COORDINATOR_NOT_AVAILABLE;
        if self.image().topic(&topic.name).is_some() {
            return Ok(());
        }
        if self.config.is_cluster() {
            let name = topic.name.clone();
            if crate::storage::unpoison(self.internal_creations.lock()).insert(name.clone()) {
                let this = Arc::clone(self);
                let replication_key = replication_key.to_string();
                tokio::spawn(async move {
                    let _ = this.create_internal_topic(topic, &replication_key).await;
                    crate::storage::unpoison(this.internal_creations.lock()).remove(&name);
                });
            }
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        let _creating = creating.lock().await;
        if self.image().topic(&topic.name).is_some() {
            return Ok(());
        }
        self.create_internal_topic(topic, replication_key).await
    }

    /// Creates `topic` (see [`Self::ensure_internal_topic`]).
    async fn create_internal_topic(
        self: &Arc<Self>,
        topic: NewTopic,
        replication_key: &str,
    ) -> Result<(), i16> {
        use gregor_protocol::error_code::{COORDINATOR_NOT_AVAILABLE, TOPIC_ALREADY_EXISTS};
        let (name, partitions, replication) = (
            topic.name.clone(),
            topic.num_partitions,
            topic.replication_factor,
        );
        match self.create_topics(vec![topic], false).await {
            Ok(applied) => match applied.results.into_iter().next().and_then(|r| r.error) {
                None => {
                    tracing::info!("created {name} with {partitions} partitions");
                    Ok(())
                }
                Some(error) if error.code == TOPIC_ALREADY_EXISTS => Ok(()),
                Some(error) => {
                    tracing::warn!(
                        "cannot create {name} ({replication_key}={replication}): {} {}",
                        error.code,
                        error.message.unwrap_or_default()
                    );
                    Err(COORDINATOR_NOT_AVAILABLE)
                }
            },
            Err(err) => {
                tracing::warn!("cannot create {name}: {err}");
                Err(COORDINATOR_NOT_AVAILABLE)
            }
        }
    }

    /// The next producer id for an idempotent or transactional producer: on a single node
    /// from the local controller's block; in a cluster from the block the active
    /// controller handed this broker over AllocateProducerIds (`cluster/controller_link.rs`).
    pub async fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        if let Some(link) = self.controller_link.get() {
            return link
                .allocate_producer_id(
                    self.node_id,
                    self.replicas.broker_epoch(),
                    // Kafka's `request.timeout.ms` default: the producer retries after it.
                    std::time::Duration::from_secs(30),
                )
                .await;
        }
        self.controller
            .run(|controller| controller.allocate_producer_id())
            .await
    }

    /// CreateTopics through the controller, each topic's logs made before its records are
    /// written (a topic whose logs cannot be made gets `KAFKA_STORAGE_ERROR`).
    pub async fn create_topics(
        self: &Arc<Self>,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<Applied<CreateTopicResult>, ControllerError> {
        self.create_topics_limited(topics, validate_only, Arc::new(Unbounded))
            .await
    }

    /// [`Self::create_topics`] with each topic charged to a controller mutation quota.
    pub async fn create_topics_limited(
        self: &Arc<Self>,
        topics: Vec<NewTopic>,
        validate_only: bool,
        quota: Arc<dyn MutationQuota>,
    ) -> Result<Applied<CreateTopicResult>, ControllerError> {
        // In a cluster, a node that is not the active controller asks it (Kafka's
        // AutoTopicCreationManager); client CreateTopics requests are forwarded before this.
        if let Some(link) = self.controller_link.get()
            && (!self.config.is_controller() || !self.controller.is_active())
        {
            let timeout = std::time::Duration::from_secs(30);
            return Ok(Applied {
                results: link.create_topics(&topics, validate_only, timeout).await,
                delta: TopicDelta::default(),
                offsets: None,
            });
        }
        let broker = self.clone();
        self.controller
            .run(move |controller| {
                let store = broker.as_ref();
                controller.create_topics_limited(&topics, validate_only, store, quota.as_ref())
            })
            .await
    }

    /// CreatePartitions through the controller, as [`Self::create_topics`].
    pub async fn create_partitions(
        self: &Arc<Self>,
        topics: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Result<Applied<CreatePartitionsResult>, ControllerError> {
        self.create_partitions_limited(topics, validate_only, Arc::new(Unbounded))
            .await
    }

    /// [`Self::create_partitions`] with each topic charged to a controller mutation quota.
    pub async fn create_partitions_limited(
        self: &Arc<Self>,
        topics: Vec<NewPartitions>,
        validate_only: bool,
        quota: Arc<dyn MutationQuota>,
    ) -> Result<Applied<CreatePartitionsResult>, ControllerError> {
        let broker = self.clone();
        self.controller
            .run(move |controller| {
                let store = broker.as_ref();
                controller.create_partitions_limited(&topics, validate_only, store, quota.as_ref())
            })
            .await
    }

    /// Removes the logs of `partitions` made for a topic that is not created after all, and
    /// forgets its config if the topic does not exist.
    fn remove_logs(&self, partitions: &[CreatedPartition]) {
        for created in partitions {
            if let Err(err) = self.logs.remove(&created.topic, created.partition) {
                tracing::error!(
                    "cannot remove the log of partition {}-{}: {err}",
                    created.topic,
                    created.partition
                );
            }
        }
        if let Some(first) = partitions.first()
            && self.image().topic(&first.topic).is_none()
        {
            self.logs.clear_topic_config(&first.topic);
        }
    }

    /// Creates topics with the broker's defaults (`num.partitions`, replication 1), as
    /// auto-creation does; returns the error of each topic that could not be created.
    pub async fn auto_create_topics(
        self: &Arc<Self>,
        names: Vec<String>,
    ) -> BTreeMap<String, ApiError> {
        if names.is_empty() {
            return BTreeMap::new();
        }
        let topics: Vec<NewTopic> = names
            .iter()
            .map(|name| NewTopic::new(name.clone(), -1, -1))
            .collect();
        match self.create_topics(topics, false).await {
            Ok(applied) => {
                for created in applied.results.iter().filter(|r| r.error.is_none()) {
                    tracing::info!("auto-created topic {}", created.name);
                }
                applied
                    .results
                    .into_iter()
                    .filter_map(|r| r.error.map(|e| (r.name, e)))
                    .collect()
            }
            Err(err) => names
                .into_iter()
                .map(|name| (name, err.to_api_error()))
                .collect(),
        }
    }

    /// Flushes every log and writes the clean-shutdown markers, with this broker's
    /// registration epoch (blocking).
    pub fn shutdown(&self) {
        if let Err(err) = self.logs.shutdown_at_epoch(self.replicas.broker_epoch()) {
            tracing::error!("flushing the logs at shutdown: {err}");
        }
    }
}

/// The broker makes the logs of new partitions in its log directories, each with its
/// `partition.metadata`, before the controller writes their records.
impl PartitionStore for Broker {
    fn prepare(&self, partitions: &[CreatedPartition]) -> Result<(), ApiError> {
        let Some(first) = partitions.first() else {
            return Ok(());
        };
        if self.config.is_cluster() {
            // Each replica's broker makes its log when the committed image reaches it
            // (cluster/publisher.rs), as Kafka's brokers do.
            return Ok(());
        }
        let config = topic_config::log_config(&self.default_log_config(), &first.config);
        self.logs.set_topic_config(&first.topic, config);
        for (made, created) in partitions.iter().enumerate() {
            let outcome = self
                .logs
                .create(&created.topic, created.partition)
                .map_err(|e| e.to_string())
                .and_then(|log| {
                    PartitionMetadata::new(created.topic_id)
                        .write(log.dir())
                        .map_err(|e| e.to_string())
                });
            if let Err(err) = outcome {
                tracing::error!(
                    "cannot create the log of partition {}-{}: {err}",
                    created.topic,
                    created.partition
                );
                self.remove_logs(&partitions[..=made]);
                return Err(ApiError::new(
                    KAFKA_STORAGE_ERROR,
                    format!(
                        "Cannot create the log of partition {}-{}: {err}",
                        created.topic, created.partition
                    ),
                ));
            }
        }
        Ok(())
    }

    fn abort(&self, partitions: &[CreatedPartition]) {
        if self.config.is_cluster() {
            return;
        }
        let mut start = 0;
        while start < partitions.len() {
            let topic = &partitions[start].topic;
            let end = partitions[start..]
                .iter()
                .position(|p| &p.topic != topic)
                .map_or(partitions.len(), |n| start + n);
            self.remove_logs(&partitions[start..end]);
            start = end;
        }
    }
}

/// Makes the partition directories match the image: the metadata log is durable before any
/// directory changes, so after a crash a created topic may lack directories and a deleted
/// one may still have them.
fn reconcile_directories(config: &Config, image: &MetadataImage) -> Result<(), String> {
    let mut dirs = Vec::new();
    for log_dir in &config.log_dirs {
        let Ok(entries) = std::fs::read_dir(log_dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((topic, partition)) = parse_partition_dir_name(&name) {
                dirs.push(PartitionDir::read(path.clone(), topic, partition));
            }
        }
    }
    let plan = reconcile(image, config.node_id, &dirs);
    for (dir, reason) in &plan.to_delete {
        tracing::warn!(
            "deleting partition directory {} ({reason:?})",
            dir.path.display()
        );
        std::fs::remove_dir_all(&dir.path).map_err(|e| format!("{}: {e}", dir.path.display()))?;
    }
    let first_dir: &PathBuf = config.log_dirs.first().ok_or("no log.dirs configured")?;
    for missing in &plan.to_create {
        let path = first_dir.join(crate::storage::partition_dir_name(
            &missing.topic,
            missing.partition,
        ));
        tracing::info!("creating missing partition directory {}", path.display());
        // One partition that cannot be made does not stop the broker: it stays without a
        // log, reported offline (Metadata) and answered KAFKA_STORAGE_ERROR (Produce,
        // Fetch, ListOffsets), like a partition of an offline log dir in Kafka.
        let made = std::fs::create_dir_all(&path)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                PartitionMetadata::new(missing.topic_id)
                    .write(&path)
                    .map_err(|e| e.to_string())
            });
        if let Err(err) = made {
            tracing::error!(
                "cannot create the directory of partition {}-{} ({}): {err}; the partition is offline",
                missing.topic,
                missing.partition,
                path.display()
            );
        }
    }
    for (path, id) in &plan.to_stamp {
        PartitionMetadata::new(*id)
            .write(path)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The broker's side of [`crate::transactions::markers::MarkerWriter`]: transaction
/// markers appended to this node's partition logs.
pub struct BrokerMarkers {
    /// The broker (weak: the coordinator lives inside it).
    pub broker: std::sync::Weak<Broker>,
}

impl crate::transactions::markers::MarkerWriter for BrokerMarkers {
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<(), i16> {
        let Some(broker) = self.broker.upgrade() else {
            return Err(gregor_protocol::error_code::NOT_LEADER_OR_FOLLOWER);
        };
        let image = broker.image();
        let Some(topic_image) = image.topic(topic) else {
            // A deleted topic has nothing left to mark (Kafka drops such partitions from
            // the markers it sends).
            return Ok(());
        };
        let Some(leader_epoch) = topic_image.partition(partition).map(|p| p.leader_epoch) else {
            return Err(gregor_protocol::error_code::UNKNOWN_TOPIC_OR_PARTITION);
        };
        // A follower's log takes only what its leader has; a leader under
        // `min.insync.replicas` refuses, as Kafka's `acks=all` marker append does.
        crate::cluster::coordinator_partitions::check_write(&broker.replicas, topic, partition)?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match broker.logs.append_txn_marker(
            topic,
            partition,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            commit,
            leader_epoch,
            now_ms,
        ) {
            Ok(Some(info)) => {
                // Kafka writes markers with `acks=all`: the marker is written once the ISR
                // has it, so a new leader elected from the ISR has it too (called from a
                // blocking thread of the runtime).
                tokio::runtime::Handle::current().block_on(
                    crate::cluster::coordinator_partitions::wait_replicated(
                        &broker.replicas,
                        topic,
                        partition,
                        info.last_offset + 1,
                        crate::cluster::coordinator_partitions::TRANSACTION_WRITE_TIMEOUT,
                    ),
                )?;
            }
            // The partition has no log on this broker (offline or being made).
            Ok(None) => return Err(gregor_protocol::error_code::NOT_LEADER_OR_FOLLOWER),
            Err(crate::storage::StorageError::Producer(error)) => return Err(error.code()),
            Err(
                crate::storage::StorageError::Closed { .. }
                | crate::storage::StorageError::Deleted { .. },
            ) => return Err(gregor_protocol::error_code::NOT_LEADER_OR_FOLLOWER),
            Err(error) => {
                tracing::error!(topic, partition, %error, "cannot write a transaction marker");
                return Err(gregor_protocol::error_code::KAFKA_STORAGE_ERROR);
            }
        }
        if topic == crate::groups::OFFSETS_TOPIC {
            // Kafka's `GroupCoordinator.onTransactionCompleted`: the marker makes the
            // transaction's pending offsets committed (or drops them). Markers are written
            // from a blocking thread of the runtime.
            let groups = &broker.groups;
            tokio::runtime::Handle::current().block_on(groups.on_transaction_completed(
                partition,
                producer_id,
                commit,
            ));
        }
        Ok(())
    }
}
